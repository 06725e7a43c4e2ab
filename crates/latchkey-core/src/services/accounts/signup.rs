//! Sign-up into a database connection: Auth0's `POST /dbconnections/signup`
//! and the hosted page's sign-up screen. The connection must take sign-ups;
//! the address is taken in its normal form; the password must pass the
//! connection's policy; a sign-up whose address is taken answers as any
//! other refused sign-up (`invalid_signup`) after the same work (the
//! password hashed, the insert tried), so neither the answer nor its time
//! tells whether the address has an account. The new user's verification
//! email follows, off the request.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Mailing, limit, mail_link};
use crate::context::Core;
use crate::crypto::hashing::HashingError;
use crate::rng::RngExt;
use crate::services::audit::{self, Actor, Entry, codes};
use crate::services::email_address;
use crate::services::password_policy::{self, Candidate, Profile, Violation};
use crate::store::{StoreError, TicketKind, UserRow};
use crate::tenant::{Connection, PasswordPolicy, Tenant};

/// Sign-ups a client IP may make in an hour.
pub const SIGNUPS_PER_IP_HOUR: u32 = 20;
/// The profile fields a sign-up may set, as Auth0 names them.
pub const PROFILE_FIELDS: [&str; 5] = ["given_name", "family_name", "name", "nickname", "picture"];
/// The longest profile value (`picture`: the longest URL).
const MAX_FIELD_CHARS: usize = 300;
const MAX_PICTURE_CHARS: usize = 2000;
/// `user_metadata`: at most this many properties, names of at most 100
/// characters, string values of at most 500 (Auth0's limits).
const MAX_METADATA_KEYS: usize = 10;
const MAX_METADATA_NAME: usize = 100;
const MAX_METADATA_VALUE: usize = 500;

/// A sign-up as the caller asked for it.
pub struct SignUp<'a> {
    pub client_id: &'a str,
    pub connection: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub username: Option<&'a str>,
    /// Values of [`PROFILE_FIELDS`] the caller gave (other keys are refused).
    pub profile: Map<String, Value>,
    pub user_metadata: Option<&'a Value>,
    pub ip: &'a str,
    pub user_agent: &'a str,
    pub mailing: Mailing,
}

#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error("unknown client")]
    UnknownClient,
    /// No connection of this name.
    #[error("the connection does not exist")]
    UnknownConnection,
    /// An upstream connection: its users sign up at their provider.
    #[error("the connection is not a database connection")]
    NotDatabase,
    /// `disable_signup`.
    #[error("public signup is disabled")]
    Disabled,
    /// A field is missing or malformed: its name, and why.
    #[error("{field}: {detail}")]
    Field { field: &'static str, detail: String },
    /// The password fails the connection's policy.
    #[error("the password fails the connection's policy")]
    Password {
        violations: Vec<Violation>,
        policy: Box<PasswordPolicy>,
    },
    /// Refused without saying why (the address has an account).
    #[error("invalid sign up")]
    Invalid,
    /// The username belongs to another user of the connection (Auth0 says
    /// so: usernames are chosen to be shown, not kept secret).
    #[error("the username already exists")]
    UsernameTaken,
    /// Too many sign-ups from this IP: retry after that many seconds.
    #[error("too many sign-ups")]
    Throttled(i64),
    /// The hashing queue is full.
    #[error("the password hashing queue is full")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// Makes the user, records `ss` (or `fs`), and mails the verification
/// link. The user as stored.
pub async fn sign_up(
    state: &Arc<Core>,
    tenant: &Arc<Tenant>,
    req: SignUp<'_>,
) -> Result<UserRow, SignUpError> {
    let outcome = create(state, tenant, &req).await;
    let actor = Actor {
        tenant_id: &tenant.id,
        client_id: req.client_id,
        user_id: "",
        ip: req.ip,
        user_agent: req.user_agent,
    };
    let client_name = tenant.client(req.client_id).map(|c| c.name.as_str());
    match &outcome {
        Ok(user) => {
            let entry = Entry {
                user_id: Some(&user.user_id),
                user_name: Some(&user.email),
                client_name,
                connection: Some(&user.connection),
                error: None,
            };
            audit::record_login(state, &actor, codes::SUCCESS_SIGNUP, entry).await;
            mail_link(
                state,
                tenant,
                &user.user_id,
                &user.email,
                req.client_id,
                TicketKind::VerifyEmail,
                req.mailing.clone(),
            );
        }
        Err(SignUpError::Store(_) | SignUpError::Busy | SignUpError::Internal(_)) => {}
        Err(e) => {
            let entry = Entry {
                user_name: Some(req.email),
                client_name,
                connection: Some(req.connection),
                error: Some(e.to_string()),
                ..Entry::default()
            };
            audit::record_login(state, &actor, codes::FAILED_SIGNUP, entry).await;
        }
    }
    outcome
}

/// The connection a sign-up goes to.
pub fn connection<'t>(tenant: &'t Tenant, name: &str) -> Result<&'t Connection, SignUpError> {
    match tenant.config.connections.iter().find(|c| c.name == name) {
        None => Err(SignUpError::UnknownConnection),
        Some(c) if c.strategy.is_upstream() => Err(SignUpError::NotDatabase),
        Some(c) if c.disable_signup => Err(SignUpError::Disabled),
        Some(c) => Ok(c),
    }
}

async fn create(state: &Core, tenant: &Tenant, req: &SignUp<'_>) -> Result<UserRow, SignUpError> {
    if tenant.client(req.client_id).is_none() {
        return Err(SignUpError::UnknownClient);
    }
    let conn = connection(tenant, req.connection)?;
    limit(
        state,
        &format!("signup:{}:{}", tenant.id, req.ip),
        SIGNUPS_PER_IP_HOUR,
        3600,
    )
    .map_err(SignUpError::Throttled)?;
    let email = email_address::normalize(req.email).map_err(|e| SignUpError::Field {
        field: "email",
        detail: format!("The email {e}."),
    })?;
    if req.password.is_empty() {
        return Err(SignUpError::Field {
            field: "password",
            detail: "Missing required property: password".into(),
        });
    }
    let mut profile = profile(&req.profile)?;
    if let Some(username) = username(conn, req.username)? {
        // Checked before the password's work; two sign-ups racing for one
        // name meet the store's unique index, and the later is `Invalid`.
        if state
            .store
            .user_by_username(&tenant.id, &conn.name, &username)
            .await?
            .is_some()
        {
            return Err(SignUpError::UsernameTaken);
        }
        profile.insert("username".into(), Value::String(username));
    }
    if let Some(metadata) = req.user_metadata {
        profile.insert("user_metadata".into(), metadata_checked(metadata)?);
    }
    let password = checked_password(&conn.password_policy, req.password, &email, &profile)?;
    // Hashed whether or not the address has an account: the same work.
    let (cfg, rng) = (state.passwords, state.rng.clone());
    let hash = state
        .hashing
        .run(move || cfg.hash(&*rng, &password))
        .await
        .map_err(|e| match e {
            HashingError::Busy => SignUpError::Busy,
            HashingError::Gone => SignUpError::Internal("the hashing threads are gone".into()),
        })?
        .map_err(|e| SignUpError::Internal(format!("hashing: {e}")))?;
    let now = state.clock.now();
    let user = UserRow {
        user_id: format!("auth0|{}", state.rng.alnum(24).to_lowercase()),
        connection: conn.name.clone(),
        email,
        email_verified: false,
        password_hash: Some(hash),
        profile: Value::Object(profile),
        blocked: false,
        last_password_reset: None,
        created_at: now,
        updated_at: now,
        signed_up: true,
        seeded_password: None,
    };
    match state.store.upsert_user(&tenant.id, &user).await {
        Ok(()) => Ok(user),
        Err(StoreError::Conflict(_)) => Err(SignUpError::Invalid),
        Err(e) => Err(e.into()),
    }
}

fn profile(given: &Map<String, Value>) -> Result<Map<String, Value>, SignUpError> {
    let mut out = Map::new();
    for field in PROFILE_FIELDS {
        let Some(value) = given.get(field) else {
            continue;
        };
        let Value::String(s) = value else {
            return Err(SignUpError::Field {
                field,
                detail: format!("Expected type string but found type {}", json_type(value)),
            });
        };
        let max = if field == "picture" {
            MAX_PICTURE_CHARS
        } else {
            MAX_FIELD_CHARS
        };
        if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
            return Err(SignUpError::Field {
                field,
                detail: format!(
                    "String is empty, too long (at most {max} characters) or has control characters"
                ),
            });
        }
        if field == "picture" && !(s.starts_with("https://") || s.starts_with("http://")) {
            return Err(SignUpError::Field {
                field,
                detail: "Object didn't pass validation for format absolute-uri".into(),
            });
        }
        out.insert(field.to_string(), value.clone());
    }
    Ok(out)
}

fn username(conn: &Connection, given: Option<&str>) -> Result<Option<String>, SignUpError> {
    crate::services::username::for_signup(conn.requires_username, given)
        .map(|u| u.map(str::to_string))
        .map_err(|detail| SignUpError::Field {
            field: "username",
            detail: detail.to_string(),
        })
}

fn metadata_checked(metadata: &Value) -> Result<Value, SignUpError> {
    let bad = |detail: String| SignUpError::Field {
        field: "user_metadata",
        detail,
    };
    let Value::Object(map) = metadata else {
        return Err(bad(format!(
            "Expected type object but found type {}",
            json_type(metadata)
        )));
    };
    if map.len() > MAX_METADATA_KEYS {
        return Err(bad(format!(
            "Too many properties: at most {MAX_METADATA_KEYS}"
        )));
    }
    for (k, v) in map {
        let ok = !k.is_empty()
            && k.chars().count() <= MAX_METADATA_NAME
            && v.as_str()
                .is_some_and(|s| s.chars().count() <= MAX_METADATA_VALUE);
        if !ok {
            return Err(bad(format!(
                "Properties must have names of 1 to {MAX_METADATA_NAME} characters and string values of at most {MAX_METADATA_VALUE}"
            )));
        }
    }
    Ok(metadata.clone())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The password as it will be stored, or the policy's refusal. A new
/// account has no history.
fn checked_password(
    policy: &PasswordPolicy,
    password: &str,
    email: &str,
    profile: &Map<String, Value>,
) -> Result<String, SignUpError> {
    let mut values: Vec<(String, String)> = vec![("email".into(), email.to_string())];
    values.extend(password_policy::profile_values(profile));
    let candidate = Candidate {
        password,
        profile: Profile {
            values: values
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        },
        history: &[],
    };
    password_policy::check(policy, &candidate, &|_, _| false).map_err(|violations| {
        SignUpError::Password {
            violations,
            policy: Box::new(policy.clone()),
        }
    })
}
