//! Importing users from Auth0 without anyone re-enrolling: Auth0's bulk user
//! format (`auth0.rs`), each user judged on its own (`plan.rs`: the email,
//! username and phone rules of sign-up, the password hash latchkey can
//! verify, the MFA factors with their secrets sealed, the passkeys of the
//! authentication-methods file under the tenant's relying party), then
//! written in one transaction of its own (the user and their methods, all
//! or nothing). A user who exists already (the same `user_id`, or the same
//! email in the connection) is skipped with the reason and left as they
//! are, so importing a file again changes nothing. What happened, user by
//! user and in totals, is the [`Report`]; it never holds a secret, and
//! neither do the logs.
//!
//! `latchkey import auth0` runs it; so will the Management API's
//! `POST /api/v2/jobs/users-imports`.

mod auth0;
mod methods;
mod plan;
mod report;

use serde_json::json;

pub use report::{Outcome, Report, Totals, UserReport};

use crate::context::Core;
use crate::rng::RngExt;
use crate::services::audit;
use crate::store::{AuditEvent, ImportRefusal, StoreError};
use crate::tenant::Tenant;

/// The largest users file (or authentication-methods file) taken, in bytes.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// The most users one file may hold.
pub const MAX_USERS: usize = 100_000;

/// What to import, and where.
pub struct Auth0Import<'a> {
    pub tenant: &'a Tenant,
    /// A database connection of the tenant.
    pub connection: &'a str,
    /// The users file: a JSON array in Auth0's bulk import format.
    pub users: &'a [u8],
    /// The users' authentication methods as Auth0's Management API lists
    /// them, by user ID (`methods.rs`): their passkeys and WebAuthn keys.
    pub authentication_methods: Option<&'a [u8]>,
    /// Users whose password hash latchkey cannot verify, or who have none,
    /// are imported without a password (they reset it, or log in with a
    /// passkey) instead of being skipped.
    pub passwordless_first: bool,
}

/// Why nothing was imported: the request as a whole is refused, before
/// anything is written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Imports the users of `req`; the report of what became of each.
pub async fn auth0(state: &Core, req: &Auth0Import<'_>) -> Result<Report, ImportError> {
    let tenant = req.tenant;
    let connection = tenant.database_connection(req.connection).ok_or_else(|| {
        ImportError::Invalid(format!(
            "tenant {} has no database connection named {}",
            tenant.name, req.connection
        ))
    })?;
    if req.users.len() > MAX_FILE_BYTES {
        return Err(ImportError::Invalid(format!(
            "the users file is larger than {MAX_FILE_BYTES} bytes: split it"
        )));
    }
    let users = auth0::read_users(req.users).map_err(ImportError::Invalid)?;
    let mut listed = match req.authentication_methods {
        Some(text) if text.len() > MAX_FILE_BYTES => {
            return Err(ImportError::Invalid(format!(
                "the authentication methods file is larger than {MAX_FILE_BYTES} bytes: split it"
            )));
        }
        Some(text) => methods::read(text).map_err(ImportError::Invalid)?,
        None => methods::ByUser::new(),
    };
    if users.len() > MAX_USERS {
        return Err(ImportError::Invalid(format!(
            "the users file holds {} users, more than {MAX_USERS}: split it",
            users.len()
        )));
    }
    let mut report = Report::new(&tenant.name, &connection.name);
    let rules = plan::Rules {
        tenant,
        connection,
        passwordless_first: req.passwordless_first,
        rp_ids: crate::services::webauthn::tenant_rp_ids(tenant),
    };
    for (index, user) in users.iter().enumerate() {
        let mut entry = UserReport::new(index, user.user_id.as_deref(), user.email.as_deref());
        match plan::plan(state, &rules, user, &mut listed).await? {
            Err(reason) => entry.skip(reason),
            Ok(planned) => {
                entry.user_id = Some(planned.user.user_id.clone());
                entry.email = Some(planned.user.email.clone());
                match state
                    .store
                    .import_user(&tenant.id, &planned.user, &planned.methods)
                    .await?
                {
                    Ok(()) => {
                        entry.imported(&planned);
                        record(state, tenant, &planned).await;
                    }
                    Err(refusal) => entry.skip(refused(&refusal)),
                }
            }
        }
        report.add(entry);
    }
    let mut unmatched: Vec<String> = listed.into_keys().collect();
    unmatched.sort();
    report.authentication_methods_without_user = unmatched;
    record_run(state, tenant, &report).await;
    Ok(report)
}

/// Why the store wrote nothing for a user.
fn refused(refusal: &ImportRefusal) -> String {
    match refusal {
        ImportRefusal::UserId => "a user with this user_id exists".into(),
        ImportRefusal::Email(other) => {
            format!("a user of the connection has this email ({other})")
        }
        ImportRefusal::Username => "a user of the connection has this username".into(),
        ImportRefusal::Credential => "one of the user's passkeys is registered already".into(),
    }
}

/// The tenant log's event of an imported user.
async fn record(state: &Core, tenant: &Tenant, planned: &plan::Planned) {
    let event = AuditEvent {
        id: format!("log_{}", state.rng.alnum(24)),
        event_type: audit::USER_IMPORTED.into(),
        date: state.clock.now(),
        client_id: None,
        user_id: Some(planned.user.user_id.clone()),
        ip: None,
        user_agent: None,
        details: json!({
            "description": "User imported from Auth0",
            "connection": planned.user.connection,
            "user_name": planned.user.email,
            "password": planned.password,
            "authentication_methods": planned.method_types(),
        }),
    };
    audit::keep(state.store.as_ref(), &tenant.id, &event).await;
}

/// The tenant log's event of the run: its totals.
async fn record_run(state: &Core, tenant: &Tenant, report: &Report) {
    let event = AuditEvent {
        id: format!("log_{}", state.rng.alnum(24)),
        event_type: audit::USERS_IMPORTED.into(),
        date: state.clock.now(),
        client_id: None,
        user_id: None,
        ip: None,
        user_agent: None,
        details: json!({
            "description": "Users import from Auth0",
            "connection": report.connection,
            "totals": report.totals,
        }),
    };
    audit::keep(state.store.as_ref(), &tenant.id, &event).await;
}
