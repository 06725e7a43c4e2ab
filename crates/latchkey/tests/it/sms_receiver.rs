//! SMS and voice delivery against a real local HTTP receiver that plays a
//! Twilio-compatible API and a signed webhook endpoint, checking what it is
//! sent the way the real thing would.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey::adapters::delivery::sms::{Channel, Outbound, PhoneMessage, send, webhook_signature};
use latchkey::adapters::http_client::ReqwestClient;
use latchkey::outbound::NetworkAccess;
use latchkey::services::delivery::{DeliveryError, MapSecrets};
use latchkey::tenant::model::{SmsProvider, TwilioSettings, WebhookSettings};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// One accepted request, as the receiver understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// `sms`, `voice`, `webhook-sms` or `webhook-voice`.
    pub kind: String,
    pub to: String,
    /// The sending number (Twilio); empty for the webhook.
    pub from: String,
    /// The SMS body; for a Twilio call, the raw `Twiml` field; for the
    /// webhook, its `text`.
    pub text: String,
}

struct Inner {
    account_sid: String,
    auth_token: String,
    webhook_secret: String,
    received: Mutex<Vec<Received>>,
    fail_next: AtomicU16,
}

type Shared = Arc<Inner>;

/// A local HTTP server on 127.0.0.1 that records what it accepts.
pub struct SmsReceiver {
    /// `http://127.0.0.1:<port>`: the Twilio `base_url`.
    pub base_url: String,
    /// `<base_url>/webhook`: the webhook `url`.
    pub webhook_url: String,
    inner: Shared,
    task: JoinHandle<()>,
}

impl SmsReceiver {
    pub async fn start(account_sid: &str, auth_token: &str, webhook_secret: &str) -> Self {
        let inner = Arc::new(Inner {
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            webhook_secret: webhook_secret.to_owned(),
            received: Mutex::new(Vec::new()),
            fail_next: AtomicU16::new(0),
        });
        let app = Router::new()
            .route("/2010-04-01/Accounts/{sid}/{resource}", post(twilio_route))
            .route("/webhook", post(webhook_route))
            .with_state(inner.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let base_url = format!("http://{addr}");
        SmsReceiver {
            webhook_url: format!("{base_url}/webhook"),
            base_url,
            inner,
            task,
        }
    }

    /// Everything accepted so far, in order.
    pub async fn messages(&self) -> Vec<Received> {
        self.inner.received.lock().await.clone()
    }

    /// Waits (at most 10 s) until `n` requests were accepted.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.messages().await;
            if got.len() >= n {
                return got;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("expected {n} deliveries, got {}: {got:?}", got.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The next request, whatever it is, is answered with `status`.
    pub fn fail_next(&self, status: u16) {
        self.inner.fail_next.store(status, Ordering::SeqCst);
    }
}

impl Drop for SmsReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections and never answers; returns its base URL.
pub async fn silent_http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    format!("http://{addr}")
}

/// A provider that accepts a connection, says so on `accepted`, and holds it
/// unanswered until `release` fires (then closes it). Returns its base URL.
pub async fn held_http_server() -> (
    String,
    tokio::sync::mpsc::Receiver<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted_tx, accepted_rx) = tokio::sync::mpsc::channel(4);
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let _ = accepted_tx.send(()).await;
        let _ = release_rx.await;
        drop(stream);
    });
    (format!("http://{addr}"), accepted_rx, release_tx)
}

/// A base URL nothing listens on.
async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "code": code, "message": message, "status": status.as_u16() })),
    )
        .into_response()
}

fn injected_failure(inner: &Inner) -> Option<Response> {
    let status = inner.fail_next.swap(0, Ordering::SeqCst);
    (status != 0).then(|| {
        let status = StatusCode::from_u16(status).unwrap();
        twilio_error(status, 20500, "Simulated failure")
    })
}

async fn twilio_route(
    State(inner): State<Shared>,
    Path((sid, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(failure) = injected_failure(&inner) {
        return failure;
    }
    let kind = match resource.as_str() {
        "Messages.json" => "sms",
        "Calls.json" => "voice",
        _ => return twilio_error(StatusCode::NOT_FOUND, 20404, "Not found"),
    };
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", inner.account_sid, inner.auth_token))
    );
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !authorized || sid != inner.account_sid {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return twilio_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, 20415, "Expected a form");
    }
    let form: HashMap<String, String> = match serde_urlencoded::from_bytes(&body) {
        Ok(form) => form,
        Err(_) => return twilio_error(StatusCode::BAD_REQUEST, 20001, "Malformed form"),
    };
    let field = |name: &str| form.get(name).cloned().filter(|v| !v.is_empty());
    let (Some(to), Some(from)) = (field("To"), field("From")) else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "'To' and 'From' are required",
        );
    };
    let content = if kind == "sms" { "Body" } else { "Twiml" };
    let Some(text) = field(content) else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21602,
            "Message content is required",
        );
    };
    let count = {
        let mut received = inner.received.lock().await;
        received.push(Received {
            kind: kind.into(),
            to,
            from,
            text,
        });
        received.len()
    };
    let prefix = if kind == "sms" { "SM" } else { "CA" };
    let sid = format!("{prefix}{count:032x}");
    (
        StatusCode::CREATED,
        axum::Json(json!({ "sid": sid, "status": "queued" })),
    )
        .into_response()
}

async fn webhook_route(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(failure) = injected_failure(&inner) {
        return failure;
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "application/json");
    if !is_json {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    // t=<timestamp>,v1=<hex>
    let parsed = headers
        .get("x-latchkey-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (t, v1) = v.split_once(',')?;
            let t: i64 = t.strip_prefix("t=")?.parse().ok()?;
            Some((t, v1.strip_prefix("v1=")?.to_owned()))
        });
    let Some((t, v1)) = parsed else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    if webhook_signature(inner.webhook_secret.as_bytes(), t, &body) != v1 {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let kind = match payload["type"].as_str() {
        Some("sms") => "webhook-sms",
        Some("voice") => "webhook-voice",
        _ => return StatusCode::BAD_REQUEST.into_response(),
    };
    // The signed timestamp is the one in the body.
    if payload["timestamp"].as_i64() != Some(t) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let (Some(to), Some(text)) = (payload["to"].as_str(), payload["text"].as_str()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    inner.received.lock().await.push(Received {
        kind: kind.into(),
        to: to.into(),
        from: String::new(),
        text: text.into(),
    });
    StatusCode::NO_CONTENT.into_response()
}

// ---------------------------------------------------------------------------

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-auth-token-value";
const HOOK_SECRET: &str = "webhook-signing-secret";
const FROM: &str = "+15550001111";
const TO: &str = "+15557654321";
const NOW: i64 = 1_800_000_000;

fn secrets() -> MapSecrets {
    MapSecrets(HashMap::from([
        ("TWILIO_TOKEN".to_owned(), TOKEN.to_owned()),
        ("HOOK_SECRET".to_owned(), HOOK_SECRET.to_owned()),
        ("WRONG_TOKEN".to_owned(), "not-the-token".to_owned()),
        ("WRONG_SECRET".to_owned(), "not-the-secret".to_owned()),
    ]))
}

fn twilio(base_url: &str, token_env: &str, timeout_seconds: u32) -> SmsProvider {
    SmsProvider::Twilio(TwilioSettings {
        base_url: base_url.to_owned(),
        account_sid: SID.to_owned(),
        auth_token_env: token_env.to_owned(),
        from: FROM.to_owned(),
        timeout_seconds,
    })
}

fn hook(url: &str, secret_env: &str, timeout_seconds: u32) -> SmsProvider {
    SmsProvider::Webhook(WebhookSettings {
        url: url.to_owned(),
        secret_env: secret_env.to_owned(),
        timeout_seconds,
    })
}

fn sms(text: &str) -> PhoneMessage {
    PhoneMessage {
        to: TO.into(),
        channel: Channel::Sms,
        text: text.into(),
        language: None,
    }
}

fn voice(text: &str) -> PhoneMessage {
    PhoneMessage {
        to: TO.into(),
        channel: Channel::Voice,
        text: text.into(),
        language: None,
    }
}

/// The receivers listen on loopback, which the tests allow.
const LOOPBACK: NetworkAccess = NetworkAccess {
    private_networks: false,
    loopback: true,
};

async fn deliver(provider: &SmsProvider, message: &PhoneMessage) -> Result<(), DeliveryError> {
    let http = ReqwestClient::new().unwrap();
    let outbound = Outbound {
        http: &http,
        access: LOOPBACK,
    };
    send(provider, message, &secrets(), outbound, NOW).await
}

fn failed(result: Result<(), DeliveryError>) -> String {
    match result {
        Err(DeliveryError::Failed(why)) => why,
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn twilio_sms_arrives_with_form_fields_and_auth() {
    let rx = SmsReceiver::start(SID, TOKEN, HOOK_SECRET).await;
    let text = "Your Acme code is 123456 & expires soon";
    deliver(&twilio(&rx.base_url, "TWILIO_TOKEN", 5), &sms(text))
        .await
        .unwrap();
    let got = rx.wait_for(1).await;
    assert_eq!(
        got,
        vec![Received {
            kind: "sms".into(),
            to: TO.into(),
            from: FROM.into(),
            text: text.into(),
        }]
    );
}

#[tokio::test]
async fn twilio_voice_says_the_escaped_text() {
    // A trailing slash on base_url is tolerated.
    let rx = SmsReceiver::start(SID, TOKEN, HOOK_SECRET).await;
    let provider = twilio(&format!("{}/", rx.base_url), "TWILIO_TOKEN", 5);
    deliver(&provider, &voice("Your code is 1 2 3. <Acme> & \"Co\"'s"))
        .await
        .unwrap();
    let got = rx.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, "voice");
    assert_eq!(got[0].to, TO);
    assert_eq!(got[0].from, FROM);
    assert_eq!(
        got[0].text,
        "<Response><Say>Your code is 1 2 3. &lt;Acme&gt; &amp; &quot;Co&quot;&#39;s</Say></Response>"
    );
}

#[tokio::test]
async fn twilio_voice_speaks_the_words_language() {
    let rx = SmsReceiver::start(SID, TOKEN, HOOK_SECRET).await;
    let provider = twilio(&rx.base_url, "TWILIO_TOKEN", 5);
    let call = PhoneMessage {
        language: Some("fr-FR".into()),
        ..voice("Votre code est 1 2 3.")
    };
    deliver(&provider, &call).await.unwrap();
    let got = rx.wait_for(1).await;
    assert_eq!(
        got[0].text,
        "<Response><Say language=\"fr-FR\">Votre code est 1 2 3.</Say></Response>"
    );
}

#[tokio::test]
async fn twilio_wrong_token_fails_with_twilios_message_not_the_token() {
    let rx = SmsReceiver::start(SID, TOKEN, HOOK_SECRET).await;
    let why = failed(deliver(&twilio(&rx.base_url, "WRONG_TOKEN", 5), &sms("hi")).await);
    assert!(why.contains("Authenticate"), "{why}");
    assert!(why.contains("20003"), "{why}");
    assert!(why.contains("401"), "{why}");
    assert!(
        !why.contains("not-the-token") && !why.contains(TOKEN),
        "{why}"
    );
    assert!(rx.messages().await.is_empty());
}

#[tokio::test]
async fn twilio_missing_token_env_is_a_config_error() {
    let rx = SmsReceiver::start(SID, TOKEN, HOOK_SECRET).await;
    let result = deliver(&twilio(&rx.base_url, "UNSET_TOKEN", 5), &sms("hi")).await;
    assert!(
        matches!(&result, Err(DeliveryError::Config(why)) if why.contains("UNSET_TOKEN")),
        "{result:?}"
    );
    assert!(rx.messages().await.is_empty());
}

#[tokio::test]
async fn webhook_delivers_signed_sms_and_voice() {
    let rx = SmsReceiver::start(SID, TOKEN, HOOK_SECRET).await;
    let provider = hook(&rx.webhook_url, "HOOK_SECRET", 5);
    deliver(&provider, &sms("code 123456")).await.unwrap();
    deliver(&provider, &voice("1 2 3 4 5 6")).await.unwrap();
    let got = rx.wait_for(2).await;
    assert_eq!(
        got,
        vec![
            Received {
                kind: "webhook-sms".into(),
                to: TO.into(),
                from: String::new(),
                text: "code 123456".into(),
            },
            Received {
                kind: "webhook-voice".into(),
                to: TO.into(),
                from: String::new(),
                text: "1 2 3 4 5 6".into(),
            },
        ]
    );
}

#[tokio::test]
async fn webhook_secret_mismatch_fails() {
    let rx = SmsReceiver::start(SID, TOKEN, HOOK_SECRET).await;
    let why = failed(deliver(&hook(&rx.webhook_url, "WRONG_SECRET", 5), &sms("hi")).await);
    assert!(why.contains("401"), "{why}");
    assert!(!why.contains("not-the-secret"), "{why}");
    assert!(rx.messages().await.is_empty());
}

#[tokio::test]
async fn webhook_missing_secret_env_is_a_config_error() {
    let rx = SmsReceiver::start(SID, TOKEN, HOOK_SECRET).await;
    let result = deliver(&hook(&rx.webhook_url, "UNSET_SECRET", 5), &sms("hi")).await;
    assert!(
        matches!(result, Err(DeliveryError::Config(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn provider_error_status_fails_then_recovers() {
    let rx = SmsReceiver::start(SID, TOKEN, HOOK_SECRET).await;
    let provider = twilio(&rx.base_url, "TWILIO_TOKEN", 5);
    rx.fail_next(500);
    let why = failed(deliver(&provider, &sms("hi")).await);
    assert!(why.contains("500"), "{why}");
    assert!(why.contains("Simulated failure"), "{why}");
    assert!(rx.messages().await.is_empty());
    // Only the next request fails.
    deliver(&provider, &sms("hi")).await.unwrap();
    assert_eq!(rx.wait_for(1).await.len(), 1);

    let webhook = hook(&rx.webhook_url, "HOOK_SECRET", 5);
    rx.fail_next(503);
    let why = failed(deliver(&webhook, &voice("1 2 3")).await);
    assert!(why.contains("503"), "{why}");
}

#[tokio::test]
async fn connection_refused_fails() {
    let base = closed_port_url().await;
    let why = failed(deliver(&twilio(&base, "TWILIO_TOKEN", 5), &sms("hi")).await);
    assert!(
        why.contains("could not be reached") && why.contains("connection"),
        "{why}"
    );
    let why = failed(
        deliver(
            &hook(&format!("{base}/webhook"), "HOOK_SECRET", 5),
            &sms("hi"),
        )
        .await,
    );
    assert!(
        why.contains("could not be reached") && why.contains("connection"),
        "{why}"
    );
}

#[tokio::test]
async fn never_answering_provider_times_out() {
    let base = silent_http_server().await;
    let why = failed(deliver(&twilio(&base, "TWILIO_TOKEN", 1), &sms("hi")).await);
    assert!(
        why.contains("could not be reached") && why.contains("in time"),
        "{why}"
    );
    let why = failed(
        deliver(
            &hook(&format!("{base}/webhook"), "HOOK_SECRET", 1),
            &voice("1"),
        )
        .await,
    );
    assert!(
        why.contains("could not be reached") && why.contains("in time"),
        "{why}"
    );
}
