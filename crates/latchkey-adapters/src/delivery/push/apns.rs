//! APNs for devices enrolled with `APNS`: token-based authentication (an
//! ES256 JWT with `kid` the key ID and `iss` the team ID, signed with the
//! `.p8` key from the environment) over HTTP/2. A provider token is reused
//! for 40 minutes (Apple refuses tokens older than an hour and more than one
//! new token per 20 minutes) and renewed early when Apple says it expired.
//! The alert says only that a login waits for approval; the Guardian payload
//! rides under `mfa`.

use std::collections::HashMap;
use std::sync::Mutex;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use latchkey_core::outbound::Request;
use latchkey_core::services::delivery::{DeliveryError, PushMessage, Secrets};
use latchkey_core::tenant::model::ApnsSettings;

use super::jwt;
use crate::delivery::sms::{Outbound, clip, secret, timeout, unreachable};

/// How long a provider token is reused.
const TOKEN_REUSE: i64 = 40 * 60;
/// The category Guardian.swift's notification actions answer to.
const CATEGORY: &str = "com.auth0.notification.authentication";

/// Tenant, team and key.
type TokenKey = (String, String, String);

/// Provider tokens by tenant, team and key: `(token, issued_at)`.
#[derive(Default)]
pub(super) struct ProviderTokens(Mutex<HashMap<TokenKey, (String, i64)>>);

impl ProviderTokens {
    fn get(&self, key: &TokenKey, now: i64) -> Option<String> {
        let map = self.0.lock().ok()?;
        map.get(key)
            .filter(|(_, issued_at)| now - issued_at < TOKEN_REUSE && *issued_at <= now)
            .map(|(token, _)| token.clone())
    }

    fn put(&self, key: TokenKey, token: String, issued_at: i64) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(key, (token, issued_at));
        }
    }

    fn drop_token(&self, key: &TokenKey) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(key);
        }
    }
}

pub(super) async fn send(
    tokens: &ProviderTokens,
    settings: &ApnsSettings,
    message: &PushMessage<'_>,
    secrets: &dyn Secrets,
    outbound: Outbound<'_>,
    now: i64,
) -> Result<(), DeliveryError> {
    let key = (
        message.tenant.id.clone(),
        settings.team_id.clone(),
        settings.key_id.clone(),
    );
    // A token Apple calls expired is made anew once.
    for attempt in 0..2 {
        let token = match tokens.get(&key, now) {
            Some(token) => token,
            None => {
                let token = provider_token(settings, secrets, now)?;
                tokens.put(key.clone(), token.clone(), now);
                token
            }
        };
        match post(settings, &token, message, outbound, now).await {
            Err(Refusal::ExpiredToken(why)) => {
                tokens.drop_token(&key);
                if attempt == 1 {
                    return Err(DeliveryError::Failed(why));
                }
            }
            Err(Refusal::Other(error)) => {
                if matches!(&error, DeliveryError::Config(_)) {
                    // A token Apple refused is not kept for the next one.
                    tokens.drop_token(&key);
                }
                return Err(error);
            }
            Ok(()) => return Ok(()),
        }
    }
    Err(DeliveryError::Failed(
        "APNs refused the provider token".into(),
    ))
}

fn provider_token(
    settings: &ApnsSettings,
    secrets: &dyn Secrets,
    now: i64,
) -> Result<String, DeliveryError> {
    let pem = secret(secrets, &settings.private_key_env, "APNs key")?;
    let config = |why: String| {
        DeliveryError::Config(format!(
            "the APNs key ({}) is not usable: {why}",
            settings.private_key_env
        ))
    };
    let key = jwt::ec_key(&pem).map_err(config)?;
    jwt::sign_es256(
        &key,
        &json!({"alg": "ES256", "kid": settings.key_id}),
        &json!({"iss": settings.team_id, "iat": now}),
    )
    .map_err(config)
}

enum Refusal {
    /// 403 ExpiredProviderToken: make a new one.
    ExpiredToken(String),
    Other(DeliveryError),
}

/// The notification's body: a generic alert, the payload under `mfa`.
pub fn body(message: &PushMessage<'_>) -> Value {
    let title = message.tenant.display_name();
    json!({
        "aps": {
            "alert": {"title": title, "body": "A login is waiting for your approval."},
            "category": CATEGORY,
            "sound": "default",
        },
        "mfa": message.notification.to_json(),
    })
}

fn header(value: &str) -> Result<HeaderValue, Refusal> {
    HeaderValue::from_str(value).map_err(|_| {
        Refusal::Other(DeliveryError::Config(
            "an APNs header value is not usable (the topic?)".into(),
        ))
    })
}

async fn post(
    settings: &ApnsSettings,
    token: &str,
    message: &PushMessage<'_>,
    outbound: Outbound<'_>,
    now: i64,
) -> Result<(), Refusal> {
    let url = format!(
        "{}/3/device/{}",
        settings.endpoint(),
        utf8_percent_encode(message.token, NON_ALPHANUMERIC)
    );
    let mut request = Request::new(
        http::Method::POST,
        &url,
        timeout(settings.timeout_seconds),
        outbound.access,
    );
    let mut bearer = header(&format!("bearer {token}"))?;
    bearer.set_sensitive(true);
    let headers = &mut request.headers;
    headers.insert(AUTHORIZATION, bearer);
    headers.insert(
        HeaderName::from_static("apns-topic"),
        header(&settings.topic)?,
    );
    headers.insert(
        HeaderName::from_static("apns-push-type"),
        HeaderValue::from_static("alert"),
    );
    headers.insert(
        HeaderName::from_static("apns-priority"),
        HeaderValue::from_static("10"),
    );
    headers.insert(
        HeaderName::from_static("apns-expiration"),
        header(&message.expires_at.max(now).to_string())?,
    );
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    request.body = body(message).to_string().into_bytes();
    let response = outbound
        .http
        .send(request)
        .await
        .map_err(|e| Refusal::Other(unreachable("APNs", &e)))?;
    let status = response.status;
    if status == http::StatusCode::OK {
        return Ok(());
    }
    let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let reason = answer["reason"].as_str().unwrap_or_default();
    let failed = |why: String| {
        Refusal::Other(DeliveryError::Failed(format!(
            "APNs refused the notification with {status} {}: {why}",
            clip(reason)
        )))
    };
    let config = |why: String| {
        Refusal::Other(DeliveryError::Config(format!(
            "APNs refused the notification with {status} {}: {why}",
            clip(reason)
        )))
    };
    Err(match reason {
        "ExpiredProviderToken" => Refusal::ExpiredToken(format!(
            "APNs refused the notification with {status} {reason}: the provider token \
             expired twice in a row (is the server's clock right?)"
        )),
        "Unregistered" => failed(
            "the device's push token is no longer valid (the app was uninstalled or \
             notifications turned off): the device must update its push credentials or enroll again"
                .into(),
        ),
        "BadDeviceToken" => failed(format!(
            "the device's push token is not one of this app's in the {} environment \
             (a development build's token sent to production, or the reverse?)",
            settings.environment
        )),
        "DeviceTokenNotForTopic" => failed(format!(
            "the device's push token belongs to another app than {}",
            settings.topic
        )),
        "InvalidProviderToken" => config(format!(
            "Apple does not accept the provider token: check team_id {}, key_id {} and the key \
             in {}",
            settings.team_id, settings.key_id, settings.private_key_env
        )),
        "TopicDisallowed" | "BadTopic" | "MissingTopic" => config(format!(
            "the topic {:?} is not allowed for this key: it must be the app's bundle ID",
            settings.topic
        )),
        "TooManyProviderTokenUpdates" => failed(
            "the provider token was renewed too often; it is renewed at most every 40 minutes \
             per server, so several servers may share the key"
                .into(),
        ),
        "TooManyRequests" => {
            failed("too many notifications to this device; try again later".into())
        }
        "InternalServerError" | "ServiceUnavailable" | "Shutdown" => {
            failed("APNs is unavailable; try again later".into())
        }
        _ => failed("see Apple's documentation of this reason".into()),
    })
}
