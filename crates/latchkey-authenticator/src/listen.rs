//! `listen`: the HTTP listener for latchkey's signed webhook, and the loop that
//! answers each of this device's notifications one at a time: fetch the
//! login's details with an `MFA-DPoP` proof, show them, take the answer (from
//! the command line, or a line of stdin), and resolve the transaction with a
//! challenge response signed by the device key.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::{Mutex, mpsc};

use crate::api::Client;
use crate::error::Error;
use crate::key::{Answer, DeviceKey, challenge_response_claims};
use crate::output::Output;
use crate::state::State;
use crate::sys;
use crate::webhook::{self, Delivery};

/// A webhook body larger than this is refused.
const MAX_BODY: usize = 64 * 1024;
/// Notifications waiting for an answer beyond this many are refused (503).
const QUEUE: usize = 16;
/// An `auth0_guardian_reason` is at most this long.
const MAX_REASON: usize = 256;

/// Characters kept as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Approve,
    Reject(Option<String>),
    Ask,
}

pub struct Options {
    pub addr: SocketAddr,
    pub secret: Vec<u8>,
    pub mode: Mode,
}

struct Shared {
    secret: Vec<u8>,
    state: State,
    out: Output,
    queue: mpsc::Sender<Delivery>,
}

pub async fn run(state: State, options: Options, out: Output) -> Result<(), Error> {
    let key = state.key()?;
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|e| Error::new(format!("cannot listen on {}: {e}", options.addr)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::new(format!("cannot read the bound address: {e}")))?;

    let (queue, deliveries) = mpsc::channel(QUEUE);
    let shared = Arc::new(Shared {
        secret: options.secret,
        state: state.clone(),
        out,
        queue,
    });
    let app = Router::new()
        .fallback(receive)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared);

    let answerer = Answerer {
        state,
        key,
        client: Client::new()?,
        mode: options.mode,
        out,
        lines: Mutex::new(stdin_lines()),
    };
    tokio::spawn(answerer.run(deliveries));

    out.event(
        json!({"event": "listening", "addr": bound.to_string()}),
        &format!("Listening for latchkey's webhook on http://{bound}/ (Ctrl-C to stop)"),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| Error::new(format!("the listener failed: {e}")))
}

async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// The webhook: any path, `POST` only.
async fn receive(
    AxumState(shared): AxumState<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "only POST is accepted");
    }
    let now = sys::now();
    let header = headers
        .get(webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    if let Err(e) = webhook::verify(&shared.secret, header, &body, now) {
        shared
            .out
            .error(None, &format!("webhook refused: {}", e.describe()));
        return reply(StatusCode::UNAUTHORIZED, e.describe());
    }
    let delivery: Delivery = match serde_json::from_slice(&body) {
        Ok(delivery) => delivery,
        Err(e) => {
            let message = format!("the webhook's body is not a push notification: {e}");
            shared.out.error(None, &message);
            return reply(StatusCode::BAD_REQUEST, &message);
        }
    };
    if let Err(why) = webhook::for_me(&delivery, &shared.state, now) {
        shared.out.event(
            json!({"event": "ignored", "txlnkid": delivery.notification.txlnkid, "reason": why.describe()}),
            &format!("Ignored a notification {}", why.describe()),
        );
        let status = match why {
            webhook::NotMine::NotANotification | webhook::NotMine::Expired => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::NOT_FOUND,
        };
        return reply(status, why.describe());
    }
    match shared.queue.try_send(delivery) {
        Ok(()) => reply(StatusCode::ACCEPTED, "accepted"),
        Err(_) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many notifications waiting for an answer",
        ),
    }
}

fn reply(status: StatusCode, message: &str) -> Response {
    let body = json!({"message": message}).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// Lines of stdin, read as they come.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).await.is_err() {
                break;
            }
        }
    });
    rx
}

struct Answerer {
    state: State,
    key: DeviceKey,
    client: Client,
    mode: Mode,
    out: Output,
    lines: Mutex<mpsc::Receiver<String>>,
}

/// What the device shows of a login.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginContext {
    pub application: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub started_at: Option<String>,
    pub binding_message: Option<String>,
    pub number_matching: bool,
}

/// Reads the rich-consent answer: `requested_details.binding_message` and the
/// `login` authorization detail.
pub fn login_context(consent: &Value) -> LoginContext {
    let details = &consent["requested_details"];
    let text = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Object(o) => o
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| (!o.is_empty()).then(|| v.to_string())),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let login = details["authorization_details"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["type"] == "login"))
        .cloned()
        .unwrap_or(Value::Null);
    LoginContext {
        application: text(&login["application"]),
        ip: text(&login["ip"]),
        user_agent: text(&login["user_agent"]),
        started_at: text(&login["started_at"]),
        binding_message: text(&details["binding_message"]),
        number_matching: login["number_matching"] == Value::Bool(true),
    }
}

impl Answerer {
    async fn run(self, mut deliveries: mpsc::Receiver<Delivery>) {
        while let Some(delivery) = deliveries.recv().await {
            let txlnkid = delivery.notification.txlnkid.clone();
            if let Err(e) = self.answer(delivery).await {
                self.out.error(Some(&txlnkid), e.message());
            }
        }
    }

    async fn answer(&self, delivery: Delivery) -> Result<(), Error> {
        let n = &delivery.notification;
        let consent_url = format!(
            "{}rich-consents/{}",
            self.state.issuer_url(),
            utf8_percent_encode(&n.txlnkid, SEGMENT)
        );
        let jti = sys::hex(&sys::random::<16>()?);
        let proof = self
            .key
            .dpop_proof(&consent_url, &n.txtkn, &jti, sys::now())?;
        let consent = self.client.consent(&consent_url, &n.txtkn, &proof).await?;
        let context = login_context(&consent);
        let started_at = context.started_at.clone().or_else(|| n.d.clone());
        let source = n.source();

        let mut lines = vec![format!(
            "Login request for {} at {}",
            self.state.enrollment.account, self.state.enrollment.issuer
        )];
        let mut show = |label: &str, value: &Option<String>| {
            if let Some(value) = value {
                lines.push(format!("  {label:<12} {value}"));
            }
        };
        show("application:", &context.application);
        show("started:", &started_at);
        show("IP address:", &context.ip);
        show("browser:", &source);
        show("user agent:", &context.user_agent);
        show("message:", &context.binding_message);
        self.out.event(
            json!({
                "event": "notification",
                "txlnkid": n.txlnkid,
                "application": context.application,
                "started_at": started_at,
                "ip": context.ip,
                "browser": source,
                "user_agent": context.user_agent,
                "binding_message": context.binding_message,
                "number_matching": context.number_matching,
            }),
            &lines.join("\n"),
        );

        let remaining = (delivery.expires_at - sys::now()).max(1);
        let answer = tokio::time::timeout(
            Duration::from_secs(remaining.unsigned_abs()),
            self.decide(context.number_matching),
        )
        .await
        .map_err(|_| Error::new("the login expired before it was answered"))??;

        let resolve_url = self.state.api_url("resolve-transaction");
        let claims = challenge_response_claims(
            &resolve_url,
            &self.state.device.identifier,
            &n.c,
            &answer,
            sys::now(),
        );
        let jwt = self
            .key
            .sign_jwt(&json!({"alg": "RS256", "typ": "JWT"}), &claims)?;
        self.client.resolve(&resolve_url, &n.txtkn, &jwt).await?;
        let said = if answer.accepted {
            "Approved"
        } else {
            "Rejected"
        };
        self.out.event(
            json!({"event": "resolved", "txlnkid": n.txlnkid, "accepted": answer.accepted, "reason": answer.reason}),
            &format!("{said}."),
        );
        Ok(())
    }

    async fn decide(&self, number_matching: bool) -> Result<Answer, Error> {
        let (accepted, reason) = match &self.mode {
            Mode::Approve => (true, None),
            Mode::Reject(reason) => (false, reason.clone()),
            Mode::Ask => loop {
                let line = self
                    .ask("Approve? [y/n] (n may be followed by a reason)")
                    .await?;
                let line = line.trim();
                let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                match word.to_ascii_lowercase().as_str() {
                    "y" | "yes" => break (true, None),
                    "n" | "no" => {
                        let rest = rest.trim();
                        break (false, (!rest.is_empty()).then(|| rest.to_owned()));
                    }
                    _ => self.out.prompt("Please answer y or n."),
                }
            },
        };
        let reason = reason.map(|r| r.chars().take(MAX_REASON).collect());
        // Only an approval carries the number; a rejection needs none.
        let binding_code = if accepted && number_matching {
            loop {
                let line = self
                    .ask("Enter the number shown on the login page:")
                    .await?;
                let code = line.trim();
                if !code.is_empty() && code.len() <= 8 && code.chars().all(|c| c.is_ascii_digit()) {
                    break Some(code.to_owned());
                }
                self.out
                    .prompt("The number is the digits the login page shows.");
            }
        } else {
            None
        };
        Ok(Answer {
            accepted,
            reason,
            binding_code,
        })
    }

    async fn ask(&self, prompt: &str) -> Result<String, Error> {
        self.out.prompt(prompt);
        self.lines
            .lock()
            .await
            .recv()
            .await
            .ok_or_else(|| Error::new("stdin is closed: no answer can be read"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_login_context_from_the_consent() {
        let consent = json!({
            "id": "tx1",
            "requested_details": {
                "audience": "https://api.example/", "scope": [],
                "binding_message": "Enter the number shown on the login page",
                "authorization_details": [
                    {"type": "other", "application": "nope"},
                    {"type": "login", "application": {"name": "Acme App"}, "ip": "203.0.113.9",
                     "user_agent": "Mozilla/5.0", "started_at": "2026-12-07T12:00:00.000Z", "number_matching": true}
                ]
            }
        });
        assert_eq!(
            login_context(&consent),
            LoginContext {
                application: Some("Acme App".into()),
                ip: Some("203.0.113.9".into()),
                user_agent: Some("Mozilla/5.0".into()),
                started_at: Some("2026-12-07T12:00:00.000Z".into()),
                binding_message: Some("Enter the number shown on the login page".into()),
                number_matching: true,
            }
        );
        let plain = json!({"requested_details": {"authorization_details": [{"type": "login", "application": "App"}]}});
        let context = login_context(&plain);
        assert_eq!(context.application.as_deref(), Some("App"));
        assert!(!context.number_matching);
        assert_eq!(login_context(&json!(null)), LoginContext::default());
    }
}
