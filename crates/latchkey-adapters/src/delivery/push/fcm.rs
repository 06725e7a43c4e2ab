//! FCM HTTP v1 for devices enrolled with `GCM` or `FCM`. The service
//! account's JSON key (from the environment) signs an RS256 JWT that Google's
//! token endpoint exchanges for an access token (cached per tenant and
//! account until a minute before it expires, dropped on a 401); the
//! notification is a data message (`messages:send`) whose values are all
//! strings, as Guardian.Android reads them, high priority, living as long as
//! the transaction.

use std::collections::HashMap;
use std::sync::Mutex;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value, json};

use latchkey_core::outbound::Request;
use latchkey_core::services::delivery::{DeliveryError, PushMessage, Secrets};
use latchkey_core::tenant::model::FcmSettings;

use super::jwt;
use crate::delivery::sms::{Outbound, clip, secret, timeout, unreachable};

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long the assertion asks for (Google's maximum).
const ASSERTION_LIFETIME: i64 = 3600;
/// A cached access token is renewed this long before it expires.
const RENEW_BEFORE: i64 = 60;

/// The fields of a service account key that latchkey uses.
#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    token_uri: String,
    project_id: String,
}

/// Access tokens by tenant and service account: `(token, expires_at)`.
#[derive(Default)]
pub(super) struct AccessTokens(Mutex<HashMap<(String, String), (String, i64)>>);

impl AccessTokens {
    fn get(&self, key: &(String, String), now: i64) -> Option<String> {
        let map = self.0.lock().ok()?;
        map.get(key)
            .filter(|(_, expires_at)| now < expires_at - RENEW_BEFORE)
            .map(|(token, _)| token.clone())
    }

    fn put(&self, key: (String, String), token: String, expires_at: i64) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(key, (token, expires_at));
        }
    }

    fn drop_token(&self, key: &(String, String)) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(key);
        }
    }
}

pub(super) async fn send(
    tokens: &AccessTokens,
    settings: &FcmSettings,
    message: &PushMessage<'_>,
    secrets: &dyn Secrets,
    outbound: Outbound<'_>,
    now: i64,
) -> Result<(), DeliveryError> {
    let json = secret(
        secrets,
        &settings.service_account_env,
        "FCM service account",
    )?;
    let account: ServiceAccount = serde_json::from_str(&json).map_err(|e| {
        DeliveryError::Config(format!(
            "the FCM service account ({}) is not a service account JSON key: {}",
            settings.service_account_env,
            // serde's message names the missing field, never a value.
            clip(&e.to_string())
        ))
    })?;
    let key = (message.tenant.id.clone(), account.client_email.clone());
    // A token revoked before its time is answered 401: drop it, try once more.
    for attempt in 0..2 {
        let token = match tokens.get(&key, now) {
            Some(token) => token,
            None => {
                let (token, expires_at) = access_token(settings, &account, outbound, now).await?;
                tokens.put(key.clone(), token.clone(), expires_at);
                token
            }
        };
        match send_message(settings, &account, &token, message, outbound, now).await {
            Err(Refusal::Unauthorized(why)) => {
                tokens.drop_token(&key);
                if attempt == 1 {
                    return Err(DeliveryError::Failed(why));
                }
            }
            Err(Refusal::Other(error)) => return Err(error),
            Ok(()) => return Ok(()),
        }
    }
    Err(DeliveryError::Failed("FCM refused the access token".into()))
}

/// Exchanges a signed assertion for an access token: `(token, expires_at)`.
async fn access_token(
    settings: &FcmSettings,
    account: &ServiceAccount,
    outbound: Outbound<'_>,
    now: i64,
) -> Result<(String, i64), DeliveryError> {
    let config = |why: String| {
        DeliveryError::Config(format!(
            "the FCM service account's private_key is not usable: {why}"
        ))
    };
    let key = jwt::rsa_key(&account.private_key).map_err(config)?;
    let assertion = jwt::sign_rs256(
        &key,
        &json!({"alg": "RS256", "typ": "JWT"}),
        &json!({
            "iss": account.client_email,
            "scope": SCOPE,
            "aud": account.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }),
    )
    .map_err(config)?;
    let mut request = Request::new(
        http::Method::POST,
        &account.token_uri,
        timeout(settings.timeout_seconds),
        outbound.access,
    );
    request.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    request.body = format!(
        "grant_type={}&assertion={assertion}",
        utf8_percent_encode(GRANT_TYPE, NON_ALPHANUMERIC)
    )
    .into_bytes();
    let response = outbound
        .http
        .send(request)
        .await
        .map_err(|e| unreachable("FCM token endpoint", &e))?;
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    if !response.status.is_success() {
        let error = body["error"].as_str().unwrap_or("no error code");
        let description = body["error_description"].as_str().unwrap_or_default();
        return Err(DeliveryError::Config(format!(
            "Google refused the FCM service account's token request with {}: {} {}; \
             check the service account key (revoked, or from another project?)",
            response.status,
            clip(error),
            clip(description)
        )));
    }
    match (body["access_token"].as_str(), body["expires_in"].as_i64()) {
        (Some(token), Some(expires_in)) if !token.is_empty() && expires_in > 0 => {
            Ok((token.to_owned(), now + expires_in))
        }
        _ => Err(DeliveryError::Failed(
            "Google's token endpoint answered without an access token".into(),
        )),
    }
}

enum Refusal {
    /// 401: the access token was refused.
    Unauthorized(String),
    Other(DeliveryError),
}

async fn send_message(
    settings: &FcmSettings,
    account: &ServiceAccount,
    access_token: &str,
    message: &PushMessage<'_>,
    outbound: Outbound<'_>,
    now: i64,
) -> Result<(), Refusal> {
    let url = format!(
        "{}/v1/projects/{}/messages:send",
        settings.endpoint(),
        utf8_percent_encode(&account.project_id, NON_ALPHANUMERIC)
    );
    let ttl = (message.expires_at - now).max(0);
    let body = json!({
        "message": {
            "token": message.token,
            "data": message.notification.to_data(),
            "android": {"priority": "high", "ttl": format!("{ttl}s")},
        }
    });
    let mut request = Request::new(
        http::Method::POST,
        &url,
        timeout(settings.timeout_seconds),
        outbound.access,
    );
    let mut bearer = HeaderValue::from_str(&format!("Bearer {access_token}")).map_err(|_| {
        Refusal::Other(DeliveryError::Failed(
            "Google's access token is not a header value".into(),
        ))
    })?;
    bearer.set_sensitive(true);
    request.headers.insert(AUTHORIZATION, bearer);
    request
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    request.body = body.to_string().into_bytes();
    let response = outbound
        .http
        .send(request)
        .await
        .map_err(|e| Refusal::Other(unreachable("FCM", &e)))?;
    let status = response.status;
    let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    if status.is_success() {
        return if answer["name"].as_str().is_some_and(|n| !n.is_empty()) {
            Ok(())
        } else {
            Err(Refusal::Other(DeliveryError::Failed(format!(
                "FCM answered {status} without a message name"
            ))))
        };
    }
    let error = &answer["error"];
    let text = clip(error["message"].as_str().unwrap_or_default()).replace(message.token, "…");
    let code = error["details"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|d| d["errorCode"].as_str())
        .or_else(|| error["status"].as_str())
        .unwrap_or_default();
    let why = match code {
        "UNREGISTERED" => "the device's push token is no longer registered (the app was \
                           uninstalled or its token changed): the device must update its push \
                           credentials or enroll again"
            .to_owned(),
        "SENDER_ID_MISMATCH" => format!(
            "the device's push token belongs to another Firebase project than {}",
            account.project_id
        ),
        "THIRD_PARTY_AUTH_ERROR" => "FCM could not deliver to Apple: the APNs key or \
                                     certificate of the Firebase project is not valid"
            .to_owned(),
        "QUOTA_EXCEEDED" => {
            "the Firebase project's sending quota is exceeded; try again later".to_owned()
        }
        "UNAVAILABLE" | "INTERNAL" => "FCM is unavailable; try again later".to_owned(),
        "INVALID_ARGUMENT" => {
            format!("FCM refused the message as invalid (a malformed push token?): {text}")
        }
        _ if status == http::StatusCode::FORBIDDEN || code == "PERMISSION_DENIED" => format!(
            "the service account {} may not send messages for project {}: {text}",
            account.client_email, account.project_id
        ),
        _ => format!("{} {text}", clip(code)),
    };
    let why = format!("FCM refused the notification with {status}: {why}");
    if status == http::StatusCode::UNAUTHORIZED {
        Err(Refusal::Unauthorized(why))
    } else {
        Err(Refusal::Other(DeliveryError::Failed(why)))
    }
}
