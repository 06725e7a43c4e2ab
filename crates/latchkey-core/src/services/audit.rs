//! Tenant log events, in the shape of Auth0's log events
//! (`my_account_authentication_method_succeeded` / `_failed`, `s`, `f`,
//! `ss`).

use serde_json::{Value, json};

use crate::context::Core;
use crate::rng::RngExt;
use crate::store::AuditEvent;

pub const METHOD_SUCCEEDED: &str = "my_account_authentication_method_succeeded";
pub const METHOD_FAILED: &str = "my_account_authentication_method_failed";
/// An account connected or deleted through the My Account API.
pub const CONNECTED_ACCOUNT_SUCCEEDED: &str = "my_account_connected_account_succeeded";

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
    let event = AuditEvent {
        id: format!("log_{}", state.rng.alnum(24)),
        event_type: event_type.to_string(),
        date: state.clock.now(),
        client_id: Some(actor.client_id.to_string()),
        user_id: user_id.map(str::to_string),
        ip: Some(actor.ip.to_string()),
        user_agent: Some(actor.user_agent.to_string()),
        details,
    };
    if let Err(e) = state.store.record_audit(actor.tenant_id, &event).await {
        tracing::error!(error = %e, event = event_type, "audit event not recorded");
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
