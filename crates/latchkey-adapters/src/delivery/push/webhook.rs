//! The signed push webhook: `POST` of the notification and the device's push
//! credentials as JSON, signed in `X-Latchkey-Signature` with the SMS
//! webhook's scheme (HMAC-SHA256 of `"<t>.<body>"`), for operators who bridge
//! to their own push system. The body is docs/push-notifications.md's.

use serde::Serialize;
use serde_json::Value;

use latchkey_core::services::delivery::{DeliveryError, PushMessage, Secrets};
use latchkey_core::tenant::model::WebhookSettings;

use crate::delivery::sms::{Outbound, post_signed, secret};

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: i64,
    issuer: &'a str,
    push_credentials: Credentials<'a>,
    expires_at: i64,
    notification: Value,
}

#[derive(Serialize)]
struct Credentials<'a> {
    service: &'static str,
    token: &'a str,
}

/// The request body for `message` at `now`.
pub fn body(message: &PushMessage<'_>, now: i64) -> Result<Vec<u8>, DeliveryError> {
    serde_json::to_vec(&Body {
        kind: "push_notification",
        timestamp: now,
        issuer: &message.notification.issuer,
        push_credentials: Credentials {
            service: message.service.as_str(),
            token: message.token,
        },
        expires_at: message.expires_at,
        notification: message.notification.to_json(),
    })
    .map_err(|e| DeliveryError::Failed(format!("the push webhook body could not be built: {e}")))
}

/// Posts the signed notification; any answer but a 2xx is a failure.
pub async fn send(
    settings: &WebhookSettings,
    message: &PushMessage<'_>,
    secrets: &dyn Secrets,
    outbound: Outbound<'_>,
    now: i64,
) -> Result<(), DeliveryError> {
    let key = secret(secrets, &settings.secret_env, "push webhook signing secret")?;
    let body = body(message, now)?;
    let status = post_signed(settings, &key, body, outbound, now, "push webhook").await?;
    if status.is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Failed(format!(
            "the push webhook refused the notification with {status}"
        )))
    }
}
