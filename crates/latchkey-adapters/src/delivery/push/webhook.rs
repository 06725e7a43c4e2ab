//! The signed push webhook: `POST` of the notification and the device's push
//! credentials as JSON, signed in `X-Latchkey-Signature` with the SMS
//! webhook's scheme (HMAC-SHA256 of `"<t>.<body>"`), for operators who bridge
//! to their own push system. The body is docs/push-notifications.md's.

use http::header::{CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use serde_json::Value;

use latchkey_core::outbound::Request;
use latchkey_core::services::delivery::{DeliveryError, PushMessage, Secrets};
use latchkey_core::tenant::model::WebhookSettings;

use crate::delivery::sms::{
    Outbound, SIGNATURE_HEADER, secret, timeout, unreachable, webhook_signature,
};

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
    let signature = format!(
        "t={now},v1={}",
        webhook_signature(key.as_bytes(), now, &body)
    );
    let mut request = Request::new(
        http::Method::POST,
        &settings.url,
        timeout(settings.timeout_seconds),
        outbound.access,
    );
    request
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    request.headers.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(&signature)
            .map_err(|_| DeliveryError::Failed("the webhook signature is not a header".into()))?,
    );
    request.body = body;
    let response = outbound
        .http
        .send(request)
        .await
        .map_err(|e| unreachable("push webhook", &e))?;
    if response.status.is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Failed(format!(
            "the push webhook refused the notification with {}",
            response.status
        )))
    }
}
