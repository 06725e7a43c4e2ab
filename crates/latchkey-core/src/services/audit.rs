//! Tenant log events, in the shape of Auth0's log events
//! (`my_account_authentication_method_succeeded` / `_failed`, and the login
//! event type codes: `s`, `f`, `fp`, `fu`, `slo`, `seacft`, `sertft`, …, with
//! their `description`, `client_name`, `connection` and `user_name` kept in
//! `details`, where `latchkey logs` lifts them from).

use serde_json::{Value, json};

use crate::context::Core;
use crate::rng::RngExt;
use crate::store::{AuditEvent, Store};

pub const METHOD_SUCCEEDED: &str = "my_account_authentication_method_succeeded";
pub const METHOD_FAILED: &str = "my_account_authentication_method_failed";
/// An account connected or deleted through the My Account API.
pub const CONNECTED_ACCOUNT_SUCCEEDED: &str = "my_account_connected_account_succeeded";

/// A user brought in by an import (`services::import`), with what they
/// brought; and an import's run, with its totals.
pub const USER_IMPORTED: &str = "user_imported";
pub const USERS_IMPORTED: &str = "users_imported";

/// Auth0's log event type codes for logins, exchanges and throttling.
pub mod codes {
    /// Success Login.
    pub const SUCCESS_LOGIN: &str = "s";
    /// Failed Login (neither a wrong password nor an unknown user: a blocked
    /// user, an upstream provider's refusal, …).
    pub const FAILED_LOGIN: &str = "f";
    /// Failed Login (Incorrect Password).
    pub const WRONG_PASSWORD: &str = "fp";
    /// Failed Login (Invalid Email/Username).
    pub const UNKNOWN_USER: &str = "fu";
    /// Success Logout.
    pub const SUCCESS_LOGOUT: &str = "slo";
    /// Success Exchange (Authorization Code for Access Token).
    pub const SUCCESS_CODE_EXCHANGE: &str = "seacft";
    /// Failed Exchange (Authorization Code for Access Token).
    pub const FAILED_CODE_EXCHANGE: &str = "feacft";
    /// Success Exchange (Refresh Token for Access Token).
    pub const SUCCESS_REFRESH_EXCHANGE: &str = "sertft";
    /// Failed Exchange (Refresh Token for Access Token).
    pub const FAILED_REFRESH_EXCHANGE: &str = "fertft";
    /// Blocked Account: too many failed logins to one account from an IP
    /// (brute-force protection).
    pub const BLOCKED_ACCOUNT: &str = "limit_wc";
    /// Blocked IP Address: too many failed attempts from an IP, whoever
    /// they were for (Suspicious IP Throttling).
    pub const BLOCKED_IP: &str = "limit_mu";
    /// Success Signup.
    pub const SUCCESS_SIGNUP: &str = "ss";
    /// Failed Signup.
    pub const FAILED_SIGNUP: &str = "fs";
    /// Success Change Password.
    pub const SUCCESS_CHANGE_PASSWORD: &str = "scp";
    /// Failed Change Password.
    pub const FAILED_CHANGE_PASSWORD: &str = "fcp";
    /// Success Verification Email.
    pub const SUCCESS_VERIFICATION_EMAIL: &str = "sv";
    /// Failed Verification Email.
    pub const FAILED_VERIFICATION_EMAIL: &str = "fv";
    /// Code/Link Sent: a passwordless login's code sent by email.
    pub const CODE_LINK_SENT: &str = "cls";
    /// Code Sent: a passwordless login's code sent by SMS.
    pub const CODE_SENT: &str = "cs";
}

/// Auth0's `description` of a login event type code; none for the other
/// events (theirs are in their `details`).
pub fn description(code: &str) -> Option<&'static str> {
    use codes::*;
    Some(match code {
        SUCCESS_LOGIN => "Success Login",
        FAILED_LOGIN => "Failed Login",
        WRONG_PASSWORD => "Wrong email or password.",
        UNKNOWN_USER => "Wrong email or password.",
        SUCCESS_LOGOUT => "Success Logout",
        SUCCESS_CODE_EXCHANGE => "Authorization Code for Access Token",
        FAILED_CODE_EXCHANGE => "Failed Exchange (Authorization Code for Access Token)",
        SUCCESS_REFRESH_EXCHANGE => "Refresh Token for Access Token",
        FAILED_REFRESH_EXCHANGE => "Failed Exchange (Refresh Token for Access Token)",
        BLOCKED_ACCOUNT => "Blocked Account",
        BLOCKED_IP => "Blocked IP Address",
        SUCCESS_SIGNUP => "Success Signup",
        FAILED_SIGNUP => "Failed Signup",
        SUCCESS_CHANGE_PASSWORD => "Success Change Password",
        FAILED_CHANGE_PASSWORD => "Failed Change Password",
        SUCCESS_VERIFICATION_EMAIL => "Success Verification Email",
        FAILED_VERIFICATION_EMAIL => "Failed Verification Email",
        CODE_LINK_SENT => "Passwordless login code/link has been sent",
        CODE_SENT => "Passwordless login code has been sent",
        _ => return None,
    })
}

/// What a login event names besides its actor, as Auth0's log entries do.
#[derive(Default)]
pub struct Entry<'a> {
    pub user_id: Option<&'a str>,
    pub user_name: Option<&'a str>,
    pub client_name: Option<&'a str>,
    pub connection: Option<&'a str>,
    /// The error an app was answered, when it failed.
    pub error: Option<String>,
}

/// Records a login event `code` (see [`codes`]) with its `description`,
/// `client_name`, `connection` and `user_name` in `details`.
pub async fn record_login(state: &Core, actor: &Actor<'_>, code: &str, entry: Entry<'_>) {
    let event = login_event(state, actor, code, entry);
    keep(state.store.as_ref(), actor.tenant_id, &event).await;
}

/// The event [`record_login`] records, for a caller that records it later
/// (with [`keep`], off the request's path).
pub fn login_event(state: &Core, actor: &Actor<'_>, code: &str, entry: Entry<'_>) -> AuditEvent {
    let mut d = serde_json::Map::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            d.insert(k.to_string(), json!(v));
        }
    };
    put("description", description(code));
    put("client_name", entry.client_name);
    put("connection", entry.connection);
    put("user_name", entry.user_name);
    put("error", entry.error.as_deref());
    event(state, actor, entry.user_id, code, Value::Object(d))
}

/// An event in the shape of an Auth0 log entry (`GET /api/v2/logs`,
/// `latchkey logs`): `log_id`, `type`, `date` (RFC 3339), `client_id`,
/// `user_id`, `ip`, `user_agent`, the login events' `description`,
/// `client_name`, `connection` and `user_name` lifted from `details`, and
/// the rest under `details`.
pub fn log_entry(e: AuditEvent) -> Value {
    let mut details = e.details;
    let mut entry = serde_json::Map::new();
    entry.insert("log_id".into(), json!(e.id));
    entry.insert("_id".into(), json!(e.id));
    entry.insert("type".into(), json!(e.event_type));
    entry.insert("date".into(), json!(crate::clock::rfc3339(e.date)));
    entry.insert("client_id".into(), json!(e.client_id));
    entry.insert("user_id".into(), json!(e.user_id));
    entry.insert("ip".into(), json!(e.ip));
    entry.insert("user_agent".into(), json!(e.user_agent));
    if let Some(d) = details.as_object_mut() {
        for key in ["description", "client_name", "connection", "user_name"] {
            if let Some(v) = d.remove(key) {
                entry.insert(key.to_string(), v);
            }
        }
    }
    entry.insert("details".into(), details);
    Value::Object(entry)
}

/// Who did it and from where.
pub struct Actor<'a> {
    pub tenant_id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

/// Records an event. A failure to record is logged, never fatal to the
/// request it describes.
pub async fn record(state: &Core, actor: &Actor<'_>, event_type: &str, details: Value) {
    record_with(state, actor, Some(actor.user_id), event_type, details).await;
}

/// [`record`], naming `user_id` (none: an event before the user was
/// known, such as a login that failed at its provider).
pub async fn record_with(
    state: &Core,
    actor: &Actor<'_>,
    user_id: Option<&str>,
    event_type: &str,
    details: Value,
) {
    let event = event(state, actor, user_id, event_type, details);
    keep(state.store.as_ref(), actor.tenant_id, &event).await;
}

fn event(
    state: &Core,
    actor: &Actor<'_>,
    user_id: Option<&str>,
    event_type: &str,
    details: Value,
) -> AuditEvent {
    AuditEvent {
        id: format!("log_{}", state.rng.alnum(24)),
        event_type: event_type.to_string(),
        date: state.clock.now(),
        client_id: Some(actor.client_id.to_string()),
        user_id: user_id.map(str::to_string),
        ip: Some(actor.ip.to_string()),
        user_agent: Some(actor.user_agent.to_string()),
        details,
    }
}

/// Writes `event` to the tenant log. A failure is logged, never fatal to
/// the request it describes.
pub async fn keep(store: &dyn Store, tenant_id: &str, event: &AuditEvent) {
    if let Err(e) = store.record_audit(tenant_id, event).await {
        tracing::error!(error = %e, event = %event.event_type, "audit event not recorded");
    }
}

/// The `details` of a My Account method event.
pub fn method_details(
    operation: &str,
    method_type: Option<&str>,
    method_id: Option<&str>,
    request: (&str, &str),
    error: Option<&(&str, u16, &str, String)>,
) -> Value {
    let mut d = json!({
        "operation": operation,
        "request": { "method": request.0, "path": request.1 },
    });
    if let Some(obj) = d.as_object_mut() {
        if let Some(t) = method_type {
            obj.insert("authentication_method".into(), json!(t));
        }
        if let Some(id) = method_id {
            obj.insert("authentication_method_id".into(), json!(id));
        }
        if let Some((type_, status, title, detail)) = error {
            obj.insert(
                "error".into(),
                json!({ "type": type_, "status": status, "title": title, "detail": detail }),
            );
        }
    }
    d
}
