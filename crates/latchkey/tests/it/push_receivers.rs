//! Local receivers for push notifications that check what they are sent the
//! way the real services would, for every test that sends one: the signed
//! webhook's endpoint (its signature, its timestamp against the test clock,
//! the body of docs/push-notifications.md), and HTTPS receivers playing
//! Google (the OAuth token endpoint verifying the service account's RS256
//! assertion, FCM's `messages:send`) and Apple (APNs over HTTP/2 only,
//! verifying the ES256 provider token), with a test CA (`PushCa`) the
//! server is told to trust through `--outbound-ca-file`'s option.

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

// ---------------------------------------------------------------------------
// HTTPS receivers: Google's token endpoint and FCM, Apple's APNs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicUsize;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, KeyPair as _};
use axum::extract::Path;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// A CA made for one test and a certificate it issued for 127.0.0.1.
pub struct PushCa {
    /// The file holding the CA certificate (PEM), for
    /// `ReqwestClient::with_ca_file` or `--outbound-ca-file`.
    pub file: tempfile::NamedTempFile,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: Vec<u8>,
}

impl PushCa {
    pub fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "latchkey push test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), ca.pem()).unwrap();
        Self {
            file,
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: leaf_key.serialize_der(),
        }
    }

    /// A TLS acceptor offering `alpn` (in order).
    fn acceptor(&self, alpn: &[&[u8]]) -> TlsAcceptor {
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.key.clone().into());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(self.chain.clone(), key)
        .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsAcceptor::from(Arc::new(config))
    }
}

/// Serves `app` over TLS on 127.0.0.1: HTTP/2 only when `h2_only` (ALPN
/// `h2` and nothing else, as APNs), else HTTP/1.1 and HTTP/2.
fn serve_tls(ca: &PushCa, listener: TcpListener, app: Router, h2_only: bool) -> JoinHandle<()> {
    let acceptor = if h2_only {
        ca.acceptor(&[b"h2"])
    } else {
        ca.acceptor(&[b"h2", b"http/1.1"])
    };
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let io = hyper_util::rt::TokioIo::new(tls);
                let service = hyper_util::service::TowerToHyperService::new(app);
                let executor = hyper_util::rt::TokioExecutor::new();
                if h2_only {
                    let _ = hyper::server::conn::http2::Builder::new(executor)
                        .serve_connection(io, service)
                        .await;
                } else {
                    let _ = hyper_util::server::conn::auto::Builder::new(executor)
                        .serve_connection(io, service)
                        .await;
                }
            });
        }
    })
}

/// The three parts of a compact JWS, the first two decoded.
fn jws_parts(jwt: &str) -> Option<(Value, Value, Vec<u8>, String)> {
    let mut parts = jwt.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = |p: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(p).ok()?).ok();
    Some((
        json(h)?,
        json(c)?,
        URL_SAFE_NO_PAD.decode(s).ok()?,
        format!("{h}.{c}"),
    ))
}

/// A PKCS#8 key as a PEM `PRIVATE KEY` block.
pub fn pkcs8_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

// --- Google ------------------------------------------------------------------

pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// A service account: its JSON key (for the environment) and the public half
/// Google would verify its assertions with.
pub struct ServiceAccount {
    pub json: String,
    pub client_email: String,
    pub project_id: String,
    public_key: Vec<u8>,
}

impl ServiceAccount {
    /// A new RSA key for `client_email` in `project_id`, its token endpoint
    /// `token_uri`.
    pub fn new(project_id: &str, client_email: &str, token_uri: &str) -> Self {
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
        let json = json!({
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": "0123456789abcdef",
            "private_key": pkcs8_pem(pkcs8.as_ref()),
            "client_email": client_email,
            "client_id": "1234567890",
            "token_uri": token_uri,
        })
        .to_string();
        Self {
            json,
            client_email: client_email.to_owned(),
            project_id: project_id.to_owned(),
            public_key: key.public_key().as_ref().to_vec(),
        }
    }
}

/// One message FCM accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct FcmMessage {
    pub token: String,
    /// The data message, every value a string.
    pub data: HashMap<String, String>,
    pub ttl: String,
}

struct FcmState {
    client_email: String,
    project_id: String,
    public_key: Vec<u8>,
    token_uri: String,
    clock: SharedClock,
    issued: Mutex<HashSet<String>>,
    token_requests: AtomicUsize,
    unregistered: Mutex<HashSet<String>>,
    received: Mutex<Vec<FcmMessage>>,
    refused: Mutex<Vec<String>>,
}

/// Google's token endpoint (`/token`) and FCM (`/v1/projects/…`) on one
/// HTTPS server.
pub struct FcmReceiver {
    /// `https://127.0.0.1:<port>`: the FCM `base_url`.
    pub base_url: String,
    /// `<base_url>/token`: the service account's `token_uri`.
    pub token_uri: String,
    state: Arc<FcmState>,
    task: JoinHandle<()>,
}

impl FcmReceiver {
    /// An HTTPS server on 127.0.0.1 and a service account whose
    /// `token_uri` is its `/token`.
    pub async fn start(
        ca: &PushCa,
        project_id: &str,
        client_email: &str,
        clock: SharedClock,
    ) -> (Self, ServiceAccount) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("https://{}", listener.local_addr().unwrap());
        let token_uri = format!("{base_url}/token");
        let account = ServiceAccount::new(project_id, client_email, &token_uri);
        let state = Arc::new(FcmState {
            client_email: account.client_email.clone(),
            project_id: account.project_id.clone(),
            public_key: account.public_key.clone(),
            token_uri: token_uri.clone(),
            clock,
            issued: Mutex::new(HashSet::new()),
            token_requests: AtomicUsize::new(0),
            unregistered: Mutex::new(HashSet::new()),
            received: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/token", post(google_token))
            .route("/v1/projects/{project}/{action}", post(fcm_send))
            .with_state(state.clone());
        let task = serve_tls(ca, listener, app, false);
        let receiver = Self {
            base_url,
            token_uri,
            state,
            task,
        };
        (receiver, account)
    }

    /// Access tokens issued so far.
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Every access token issued so far stops working (answered 401).
    pub async fn revoke_tokens(&self) {
        self.state.issued.lock().await.clear();
    }

    /// The app at `token` was uninstalled: FCM answers 404 UNREGISTERED.
    pub async fn unregister(&self, token: &str) {
        self.state
            .unregistered
            .lock()
            .await
            .insert(token.to_owned());
    }

    pub async fn received(&self) -> Vec<FcmMessage> {
        self.state.received.lock().await.clone()
    }

    pub async fn refused(&self) -> Vec<String> {
        self.state.refused.lock().await.clone()
    }
}

impl Drop for FcmReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn google_token(State(state): State<Arc<FcmState>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        state.refused.lock().await.push("grant_type".into());
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type",
        );
    }
    let verified = form
        .get("assertion")
        .and_then(|a| jws_parts(a))
        .filter(|(h, _, sig, input)| {
            h["alg"] == "RS256"
                && signature::UnparsedPublicKey::new(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    &state.public_key,
                )
                .verify(input.as_bytes(), sig)
                .is_ok()
        });
    let Some((_, claims, _, _)) = verified else {
        state.refused.lock().await.push("signature".into());
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT Signature.",
        );
    };
    let now = state.clock.now();
    let iat = claims["iat"].as_i64().unwrap_or(i64::MIN);
    let exp = claims["exp"].as_i64().unwrap_or(i64::MIN);
    let claims_ok = claims["iss"] == state.client_email.as_str()
        && claims["scope"] == FCM_SCOPE
        && claims["aud"] == state.token_uri.as_str()
        && (iat - now).abs() <= 300
        && exp > now
        && exp - iat <= 3600;
    if !claims_ok {
        state.refused.lock().await.push(format!("claims {claims}"));
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe.",
        );
    }
    let n = state.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("ya29.test-{n}-{}", URL_SAFE_NO_PAD.encode(rand_bytes()));
    state.issued.lock().await.insert(token.clone());
    axum::Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

fn rand_bytes() -> [u8; 16] {
    use latchkey::rng::{Rng, SystemRng};
    let mut b = [0u8; 16];
    SystemRng.fill(&mut b);
    b
}

fn fcm_error(status: StatusCode, code: &str, fcm_code: Option<&str>, message: &str) -> Response {
    let details: Vec<Value> = fcm_code
        .map(|c| json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": c}))
        .into_iter()
        .collect();
    (
        status,
        axum::Json(
            json!({"error": {"code": status.as_u16(), "message": message,
                                    "status": code, "details": details}}),
        ),
    )
        .into_response()
}

async fn fcm_send(
    State(state): State<Arc<FcmState>>,
    Path((project, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !state.issued.lock().await.contains(bearer) {
        state.refused.lock().await.push("bearer".into());
        return fcm_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            None,
            "Request had invalid authentication credentials.",
        );
    }
    if project != state.project_id || action != "messages:send" {
        state
            .refused
            .lock()
            .await
            .push(format!("path {project}/{action}"));
        return fcm_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            None,
            "Permission denied.",
        );
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return fcm_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            None,
            "Invalid JSON payload",
        );
    };
    let message = &payload["message"];
    let keys = |v: &Value| {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    let ttl = message["android"]["ttl"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let shape_ok = keys(&payload) == ["message"]
        && keys(message) == ["android", "data", "token"]
        && keys(&message["android"]) == ["priority", "ttl"]
        && message["android"]["priority"] == "high"
        && ttl
            .strip_suffix('s')
            .is_some_and(|n| n.parse::<u32>().is_ok());
    let data_ok = check_notification(&message["data"], true);
    let token = message["token"].as_str().unwrap_or_default().to_owned();
    if !shape_ok || data_ok.is_err() || token.is_empty() {
        state
            .refused
            .lock()
            .await
            .push(format!("shape {data_ok:?}"));
        return fcm_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            Some("INVALID_ARGUMENT"),
            "Invalid value at 'message'",
        );
    }
    if state.unregistered.lock().await.contains(&token) {
        return fcm_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            Some("UNREGISTERED"),
            "Requested entity was not found.",
        );
    }
    let data = message["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let mut received = state.received.lock().await;
    received.push(FcmMessage { token, data, ttl });
    axum::Json(
        json!({"name": format!("projects/{}/messages/{}", state.project_id, received.len())}),
    )
    .into_response()
}

// --- Apple -------------------------------------------------------------------

/// An APNs signing key: its `.p8` PEM (for the environment) and public half.
pub struct ApnsKey {
    pub pem: String,
    public_key: Vec<u8>,
}

impl ApnsKey {
    pub fn new() -> Self {
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &latchkey::rng::system_random(),
        )
        .unwrap();
        let pair = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
        )
        .unwrap();
        Self {
            pem: pkcs8_pem(pkcs8.as_ref()),
            public_key: pair.public_key().as_ref().to_vec(),
        }
    }
}

/// One notification APNs accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ApnsNotification {
    pub device_token: String,
    pub expiration: i64,
    /// The whole body: `{aps, mfa}`.
    pub body: Value,
}

struct ApnsState {
    team_id: String,
    key_id: String,
    topic: String,
    public_key: Vec<u8>,
    clock: SharedClock,
    provider_tokens: Mutex<HashSet<String>>,
    expired: Mutex<HashSet<String>>,
    unregistered: Mutex<HashSet<String>>,
    received: Mutex<Vec<ApnsNotification>>,
    refused: Mutex<Vec<String>>,
}

/// APNs on 127.0.0.1, HTTP/2 only, as Apple's.
pub struct ApnsReceiver {
    /// `https://127.0.0.1:<port>`: the APNs `base_url`.
    pub base_url: String,
    state: Arc<ApnsState>,
    task: JoinHandle<()>,
}

impl ApnsReceiver {
    pub async fn start(
        ca: &PushCa,
        key: &ApnsKey,
        team_id: &str,
        key_id: &str,
        topic: &str,
        clock: SharedClock,
    ) -> Self {
        let state = Arc::new(ApnsState {
            team_id: team_id.to_owned(),
            key_id: key_id.to_owned(),
            topic: topic.to_owned(),
            public_key: key.public_key.clone(),
            clock,
            provider_tokens: Mutex::new(HashSet::new()),
            expired: Mutex::new(HashSet::new()),
            unregistered: Mutex::new(HashSet::new()),
            received: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/3/device/{token}", post(apns_route))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("https://{}", listener.local_addr().unwrap());
        let task = serve_tls(ca, listener, app, true);
        Self {
            base_url,
            state,
            task,
        }
    }

    /// How many distinct provider tokens were accepted.
    pub async fn provider_tokens(&self) -> usize {
        self.state.provider_tokens.lock().await.len()
    }

    /// Every provider token seen so far is answered ExpiredProviderToken.
    pub async fn expire_provider_tokens(&self) {
        let seen = self.state.provider_tokens.lock().await.clone();
        self.state.expired.lock().await.extend(seen);
    }

    /// The app at `token` was uninstalled: 410 Unregistered.
    pub async fn unregister(&self, token: &str) {
        self.state
            .unregistered
            .lock()
            .await
            .insert(token.to_owned());
    }

    pub async fn received(&self) -> Vec<ApnsNotification> {
        self.state.received.lock().await.clone()
    }

    pub async fn refused(&self) -> Vec<String> {
        self.state.refused.lock().await.clone()
    }
}

impl Drop for ApnsReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn apns_error(status: StatusCode, reason: &str) -> Response {
    (status, axum::Json(json!({"reason": reason}))).into_response()
}

async fn apns_route(
    State(state): State<Arc<ApnsState>>,
    Path(device_token): Path<String>,
    request_version: axum::http::Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let refuse = |why: String| {
        let state = state.clone();
        async move { state.refused.lock().await.push(why) }
    };
    if request_version != axum::http::Version::HTTP_2 {
        refuse("not HTTP/2".into()).await;
        return apns_error(StatusCode::BAD_REQUEST, "BadRequest");
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    // The provider token.
    let jwt = header("authorization");
    let Some(jwt) = jwt.strip_prefix("bearer ") else {
        refuse("no bearer".into()).await;
        return apns_error(StatusCode::FORBIDDEN, "MissingProviderToken");
    };
    let verified = jws_parts(jwt).filter(|(h, _, sig, input)| {
        h["alg"] == "ES256"
            && signature::UnparsedPublicKey::new(
                &signature::ECDSA_P256_SHA256_FIXED,
                &state.public_key,
            )
            .verify(input.as_bytes(), sig)
            .is_ok()
    });
    let Some((head, claims, _, _)) = verified else {
        refuse("signature".into()).await;
        return apns_error(StatusCode::FORBIDDEN, "InvalidProviderToken");
    };
    if head["kid"] != state.key_id.as_str() || claims["iss"] != state.team_id.as_str() {
        refuse(format!("kid/iss {head} {claims}")).await;
        return apns_error(StatusCode::FORBIDDEN, "InvalidProviderToken");
    }
    let now = state.clock.now();
    let iat = claims["iat"].as_i64().unwrap_or(i64::MIN);
    if iat > now + 60 {
        refuse("iat in the future".into()).await;
        return apns_error(StatusCode::FORBIDDEN, "InvalidProviderToken");
    }
    if now - iat > 3600 || state.expired.lock().await.contains(jwt) {
        refuse("expired provider token".into()).await;
        return apns_error(StatusCode::FORBIDDEN, "ExpiredProviderToken");
    }
    state.provider_tokens.lock().await.insert(jwt.to_owned());
    // The headers.
    if header("apns-topic") != state.topic {
        refuse(format!("topic {}", header("apns-topic"))).await;
        return apns_error(StatusCode::BAD_REQUEST, "DeviceTokenNotForTopic");
    }
    if header("apns-push-type") != "alert" {
        return apns_error(StatusCode::BAD_REQUEST, "InvalidPushType");
    }
    if header("apns-priority") != "10" {
        return apns_error(StatusCode::BAD_REQUEST, "BadPriority");
    }
    let Ok(expiration) = header("apns-expiration").parse::<i64>() else {
        return apns_error(StatusCode::BAD_REQUEST, "BadExpirationDate");
    };
    // The device token: 32 bytes, hex.
    if device_token.len() != 64 || !device_token.bytes().all(|b| b.is_ascii_hexdigit()) {
        refuse("device token".into()).await;
        return apns_error(StatusCode::BAD_REQUEST, "BadDeviceToken");
    }
    if state.unregistered.lock().await.contains(&device_token) {
        return (
            StatusCode::GONE,
            axum::Json(json!({"reason": "Unregistered", "timestamp": now * 1000})),
        )
            .into_response();
    }
    // The payload.
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return apns_error(StatusCode::BAD_REQUEST, "PayloadEmpty");
    };
    let aps = &payload["aps"];
    let aps_ok = aps["alert"]["title"].is_string()
        && aps["alert"]["body"].is_string()
        && aps["category"] == "com.auth0.notification.authentication"
        && aps["sound"] == "default";
    let mfa_ok = check_notification(&payload["mfa"], false);
    if !aps_ok || mfa_ok.is_err() || body.len() > 4096 {
        refuse(format!("payload {mfa_ok:?} {payload}")).await;
        return apns_error(StatusCode::BAD_REQUEST, "BadPayload");
    }
    state.received.lock().await.push(ApnsNotification {
        device_token,
        expiration,
        body: payload,
    });
    (
        StatusCode::OK,
        [("apns-id", "00000000-0000-4000-8000-000000000000")],
    )
        .into_response()
}
