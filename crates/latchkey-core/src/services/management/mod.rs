//! The Management API's decisions (`{issuer}api/v2/`): who may call
//! ([`Caller`], a client with a token for the API, and [`Scopes`], what its
//! token lets it do), what each operation on users does (`users.rs`), how
//! a search of users is read (`query.rs`), and the refusals they answer
//! ([`ManagementError`]), each mapped to Auth0's `{statusCode, error,
//! message, errorCode}` by the HTTP area. Every change is logged in the
//! tenant log as Auth0 logs Management API operations: `sapi` when it was
//! done, `fapi` when it was refused.

pub mod blocks;
pub mod client_grants;
pub mod clients;
pub mod config;
mod connection_options;
pub mod connections;
pub mod keys;
pub mod logs;
pub mod query;
pub mod resource_servers;
pub mod roles;
pub mod users;

use std::sync::Arc;

use serde_json::json;

use crate::context::Core;
use crate::services::audit::{self, Actor};
use crate::services::password_policy::Violation;
use crate::store::StoreError;
use crate::tenant::Tenant;

/// Successful Management API operation (Auth0's log type).
pub const SUCCESS_API_OPERATION: &str = "sapi";
/// Failed Management API operation.
pub const FAILED_API_OPERATION: &str = "fapi";

/// A client calling the Management API with a verified token of the
/// tenant.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// As the tenant cache shares it (the mail tasks it causes keep it).
    pub tenant: &'a Arc<Tenant>,
    /// The host the request came to (links mailed point there).
    pub host: &'a str,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    pub ip: &'a str,
    pub user_agent: &'a str,
    /// The caller's languages (`Accept-Language`), for mails it causes.
    pub languages: &'a [String],
}

impl Caller<'_> {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    fn actor(&self) -> Actor<'_> {
        Actor {
            tenant_id: &self.tenant.id,
            client_id: self.client_id,
            user_id: "",
            ip: self.ip,
            user_agent: self.user_agent,
        }
    }
}

/// Why an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManagementError {
    /// 400 `invalid_body`: the body breaks the operation's schema.
    #[error("{0}")]
    InvalidBody(String),
    /// 400 `invalid_query_string`: a query parameter is wrong.
    #[error("{0}")]
    InvalidQuery(String),
    /// 400 with another of Auth0's codes (`operation_not_supported`,
    /// `inexistent_connection`, …).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 400: the password fails the connection's policy (or its history).
    #[error("the password fails the connection's policy")]
    Password(Vec<Violation>),
    /// 403: the token's scopes do not cover what the request asks for.
    #[error("Insufficient scope, expected any of: {}", .0.join(","))]
    InsufficientScope(Vec<&'static str>),
    /// 404 `inexistent_user`.
    #[error("The user does not exist.")]
    UserNotFound,
    /// 409 `user_exists`.
    #[error("The user already exists.")]
    UserExists,
    /// 404 `inexistent_key`.
    #[error("The signing key does not exist.")]
    KeyNotFound,
    /// 404 `inexistent_log`.
    #[error("The log does not exist.")]
    LogNotFound,
    /// 404 with Auth0's code for the kind of thing not found
    /// (`inexistent_client`, …).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// 409 with Auth0's code (`already_exists`, …).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 503: other changes to the tenant's configuration kept coming first.
    #[error("the tenant's configuration kept changing")]
    ConfigBusy,
    /// 503: the password hashing queue is full.
    #[error("the password hashing queue is full")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl ManagementError {
    /// Whether the refusal is the caller's (a `fapi` is logged), rather
    /// than the server's.
    fn is_callers(&self) -> bool {
        !matches!(
            self,
            Self::Store(_) | Self::Internal(_) | Self::Busy | Self::ConfigBusy
        )
    }
}

/// Auth0's wording of a password refused by the connection's policy:
/// the error's name for the first rule broken, then every rule's sentence.
pub fn password_message(violations: &[Violation]) -> String {
    let name = match violations.first() {
        Some(Violation::InHistory { .. }) => {
            "PasswordHistoryError: Password has previously been used"
        }
        Some(Violation::InDictionary) => "PasswordDictionaryError: Password is too common",
        Some(Violation::ContainsProfileData { .. }) => {
            "PasswordNoUserInfoError: Password contains user information"
        }
        _ => "PasswordStrengthError: Password is too weak",
    };
    let details: Vec<String> = violations.iter().map(Violation::detail).collect();
    format!("{name}. {}", details.join(" "))
}

/// Logs an operation on a user: `sapi` with its description, or `fapi`
/// with the refusal (a failure of the server's own is logged elsewhere).
async fn record<T>(
    state: &Core,
    caller: &Caller<'_>,
    description: &str,
    user_id: Option<&str>,
    outcome: &Result<T, ManagementError>,
) {
    let (code, error) = match outcome {
        Ok(_) => (SUCCESS_API_OPERATION, None),
        Err(e) if e.is_callers() => (FAILED_API_OPERATION, Some(e.to_string())),
        Err(_) => return,
    };
    let mut details = json!({ "description": description });
    if let (Some(e), Some(obj)) = (error, details.as_object_mut()) {
        obj.insert("error".into(), json!(e));
    }
    audit::record_with(state, &caller.actor(), user_id, code, details).await;
}
