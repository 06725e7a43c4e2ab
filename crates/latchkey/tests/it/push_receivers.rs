//! Local receivers for push notifications that check what they are sent the
//! way the real services would, for every test that sends one: the signed
//! webhook's endpoint (its signature, its timestamp against the test clock,
//! the body of docs/push-notifications.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use latchkey::adapters::delivery::sms::webhook_signature;
use latchkey::clock::SharedClock;
use latchkey::crypto::hash::constant_time_eq;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

/// How far the signed `t` may be from the receiver's clock.
const SIGNATURE_TOLERANCE: i64 = 300;

/// One notification the webhook accepted, as the device would get it.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookPush {
    /// `APNS`, `GCM` or `FCM`.
    pub service: String,
    /// The device's push token.
    pub token: String,
    pub issuer: String,
    pub timestamp: i64,
    pub expires_at: i64,
    /// `{txtkn, txlnkid, dai, sh, c, d, s}`.
    pub notification: Value,
}

struct WebhookState {
    secret: String,
    clock: SharedClock,
    received: Mutex<Vec<WebhookPush>>,
    refused: Mutex<Vec<String>>,
    sender: mpsc::UnboundedSender<WebhookPush>,
    fail_next: AtomicU16,
}

/// The push webhook's endpoint on 127.0.0.1: refuses (401) a bad or stale
/// signature, 400 a body not shaped as documented, and records the rest.
pub struct PushWebhookReceiver {
    /// `http://127.0.0.1:<port>/push`.
    pub url: String,
    state: Arc<WebhookState>,
    next: Mutex<mpsc::UnboundedReceiver<WebhookPush>>,
    task: JoinHandle<()>,
}

impl PushWebhookReceiver {
    /// A receiver checking signatures made with `secret`, and their `t`
    /// against `clock` (the server's test clock).
    pub async fn start(secret: &str, clock: SharedClock) -> Self {
        let (sender, next) = mpsc::unbounded_channel();
        let state = Arc::new(WebhookState {
            secret: secret.to_owned(),
            clock,
            received: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
            sender,
            fail_next: AtomicU16::new(0),
        });
        let app = Router::new()
            .route("/push", post(webhook_route))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}/push"),
            state,
            next: Mutex::new(next),
            task,
        }
    }

    /// Everything accepted so far, in order.
    pub async fn received(&self) -> Vec<WebhookPush> {
        self.state.received.lock().await.clone()
    }

    /// Why requests were refused, in order.
    pub async fn refused(&self) -> Vec<String> {
        self.state.refused.lock().await.clone()
    }

    /// The next accepted notification not yet taken (waits at most 10 s).
    pub async fn next(&self) -> WebhookPush {
        let mut next = self.next.lock().await;
        tokio::time::timeout(Duration::from_secs(10), next.recv())
            .await
            .expect("no push notification arrived within 10 s")
            .expect("the receiver stopped")
    }

    /// The next request is answered with `status` (and not recorded).
    pub fn fail_next(&self, status: u16) {
        self.state.fail_next.store(status, Ordering::SeqCst);
    }
}

impl Drop for PushWebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn webhook_route(
    State(state): State<Arc<WebhookState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match check_webhook(&state, &headers, &body) {
        Ok(push) => {
            let failure = state.fail_next.swap(0, Ordering::SeqCst);
            if failure != 0 {
                return StatusCode::from_u16(failure).unwrap().into_response();
            }
            state.received.lock().await.push(push.clone());
            let _ = state.sender.send(push);
            StatusCode::NO_CONTENT.into_response()
        }
        Err((status, why)) => {
            state.refused.lock().await.push(why.clone());
            (status, why).into_response()
        }
    }
}

fn check_webhook(
    state: &WebhookState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<WebhookPush, (StatusCode, String)> {
    let unauthorized = |why: &str| (StatusCode::UNAUTHORIZED, why.to_owned());
    let bad = |why: &str| (StatusCode::BAD_REQUEST, why.to_owned());
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "application/json");
    if !is_json {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not application/json".into(),
        ));
    }
    let (t, v1) = headers
        .get("x-latchkey-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (t, v1) = v.split_once(',')?;
            let t: i64 = t.strip_prefix("t=")?.parse().ok()?;
            Some((t, v1.strip_prefix("v1=")?.to_owned()))
        })
        .ok_or_else(|| unauthorized("no signature"))?;
    let expected = webhook_signature(state.secret.as_bytes(), t, body);
    if !constant_time_eq(expected.as_bytes(), v1.as_bytes()) {
        return Err(unauthorized("bad signature"));
    }
    if (state.clock.now() - t).abs() > SIGNATURE_TOLERANCE {
        return Err(unauthorized("stale signature"));
    }
    let payload: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    let object = payload.as_object().ok_or_else(|| bad("not an object"))?;
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys
        != [
            "expires_at",
            "issuer",
            "notification",
            "push_credentials",
            "timestamp",
            "type",
        ]
    {
        return Err(bad("unexpected keys"));
    }
    if payload["type"] != "push_notification" {
        return Err(bad("wrong type"));
    }
    if payload["timestamp"].as_i64() != Some(t) {
        return Err(unauthorized("the signed t is not the body's timestamp"));
    }
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let credentials = &payload["push_credentials"];
    let (Some(service), Some(token)) = (text(&credentials["service"]), text(&credentials["token"]))
    else {
        return Err(bad("no push credentials"));
    };
    if !["APNS", "GCM", "FCM"].contains(&service.as_str()) || token.is_empty() {
        return Err(bad("bad push credentials"));
    }
    let notification = payload["notification"].clone();
    check_notification(&notification, false).map_err(|why| bad(&why))?;
    let (Some(issuer), Some(expires_at)) =
        (text(&payload["issuer"]), payload["expires_at"].as_i64())
    else {
        return Err(bad("no issuer or expiry"));
    };
    if notification["sh"] != payload["issuer"] || expires_at <= t {
        return Err(bad("issuer or expiry inconsistent"));
    }
    Ok(WebhookPush {
        service,
        token,
        issuer,
        timestamp: t,
        expires_at,
        notification,
    })
}

/// Whether `n` is the notification payload as the Guardian SDKs read it:
/// exactly `txtkn, txlnkid, dai, sh, c, d, s`; every value a string when
/// `strings_only` (FCM's data, `s` a JSON string), else `s` an object.
pub fn check_notification(n: &Value, strings_only: bool) -> Result<(), String> {
    let object = n.as_object().ok_or("the notification is not an object")?;
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys != ["c", "d", "dai", "s", "sh", "txlnkid", "txtkn"] {
        return Err(format!("unexpected notification keys {keys:?}"));
    }
    for key in ["txtkn", "txlnkid", "dai", "sh", "c", "d"] {
        if n[key].as_str().is_none_or(str::is_empty) {
            return Err(format!("{key} is not a non-empty string"));
        }
    }
    if !n["sh"].as_str().unwrap_or_default().starts_with("http") {
        return Err("sh is not a URL".into());
    }
    if !n["dai"].as_str().unwrap_or_default().starts_with("dev_") {
        return Err("dai is not a device account ID".into());
    }
    // yyyy-MM-dd'T'HH:mm:ss.SSS'Z'
    let d = n["d"].as_str().unwrap_or_default();
    let shape_ok = d.len() == 24
        && d.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            23 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(format!("d {d:?} is not yyyy-MM-ddTHH:mm:ss.SSSZ"));
    }
    let source = if strings_only {
        let s = n["s"].as_str().ok_or("s is not a string")?;
        serde_json::from_str::<Value>(s).map_err(|_| "s is not a JSON string")?
    } else {
        n["s"].clone()
    };
    let source = source.as_object().ok_or("s is not an object")?;
    for (key, part) in source {
        if !["b", "os"].contains(&key.as_str()) {
            return Err(format!("s has an unexpected {key}"));
        }
        let part = part.as_object().ok_or("s parts are objects")?;
        if part.keys().any(|k| k != "n" && k != "v") || part.values().any(|v| !v.is_string()) {
            return Err("s parts are {n, v} strings".into());
        }
    }
    Ok(())
}
