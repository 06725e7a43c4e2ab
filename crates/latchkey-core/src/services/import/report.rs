//! What an import did, user by user and in totals: printed by
//! `latchkey import`, kept (totals) in the tenant log. It names users by
//! their user ID and email, and what they brought by kind (`bcrypt`,
//! `totp`): never a hash, a secret or a key.

use std::collections::BTreeMap;

use serde::Serialize;

use super::plan::Planned;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    pub tenant: String,
    pub connection: String,
    pub totals: Totals,
    pub users: Vec<UserReport>,
    /// User IDs of the authentication-methods file that no user of the
    /// users file has: their methods were not imported.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authentication_methods_without_user: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    /// Users in the file.
    pub users: usize,
    pub imported: usize,
    pub skipped: usize,
    /// Imported users without a password (passwordless-first).
    pub without_password: usize,
    /// Methods imported, by type (`totp`, `phone`, `email`, `passkey`, …).
    pub authentication_methods: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Imported,
    Skipped,
}

/// One user of the file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserReport {
    /// Its place in the file, from 0.
    pub index: usize,
    /// The user ID it has (or would have had) here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub outcome: Outcome,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The format of the password it was imported with (`bcrypt`,
    /// `pbkdf2-sha256`, …); none when imported without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The types of the methods imported with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authentication_methods: Vec<String>,
    /// What was imported other than as it was (a password hash refused
    /// with passwordless-first, methods the file lists that are not
    /// imported).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl UserReport {
    pub(crate) fn new(index: usize, user_id: Option<&str>, email: Option<&str>) -> Self {
        Self {
            index,
            user_id: user_id.map(str::to_string),
            email: email.map(str::to_string),
            outcome: Outcome::Skipped,
            reason: None,
            password: None,
            authentication_methods: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub(crate) fn skip(&mut self, reason: String) {
        self.outcome = Outcome::Skipped;
        self.reason = Some(reason);
    }

    pub(crate) fn imported(&mut self, planned: &Planned) {
        self.outcome = Outcome::Imported;
        self.password = planned.password.clone();
        self.authentication_methods = planned.method_types();
        self.notes = planned.notes.clone();
    }
}

impl Report {
    pub(crate) fn new(tenant: &str, connection: &str) -> Self {
        Self {
            tenant: tenant.to_string(),
            connection: connection.to_string(),
            totals: Totals::default(),
            users: Vec::new(),
            authentication_methods_without_user: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, user: UserReport) {
        let t = &mut self.totals;
        t.users += 1;
        match user.outcome {
            Outcome::Imported => {
                t.imported += 1;
                if user.password.is_none() {
                    t.without_password += 1;
                }
                for m in &user.authentication_methods {
                    *t.authentication_methods.entry(m.clone()).or_default() += 1;
                }
            }
            Outcome::Skipped => t.skipped += 1,
        }
        self.users.push(user);
    }
}
