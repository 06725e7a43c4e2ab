//! SMS and voice delivery through the tenant's provider: a Twilio-compatible
//! REST API, or a signed JSON webhook the tenant operates itself, both over
//! the outbound HTTP port (so the provider's URL passes its guard).
//!
//! Every attempt is bounded by the provider's `timeout_seconds`, and every
//! outcome other than a clear acceptance is an error: an unreachable or
//! refused provider, a refusal, or an answer that does not look like an
//! accepted message.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use super::escape_markup;
use latchkey_core::outbound::{HttpClient, NetworkAccess, OutboundError, Request};
use latchkey_core::services::delivery::{DeliveryError, Secrets};
use latchkey_core::tenant::model::{SmsProvider, TwilioSettings, WebhookSettings};

/// The header carrying the webhook signature: `t=<timestamp>,v1=<hex>`.
pub(crate) const SIGNATURE_HEADER: &str = "X-Latchkey-Signature";

/// At most this much of a provider's error text is kept in an error.
const MAX_PROVIDER_TEXT: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sms,
    Voice,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneMessage {
    /// The recipient, E.164 (`+15551234567`).
    pub to: String,
    pub channel: Channel,
    /// The SMS body, or what the call says. The wording (repeating a code,
    /// spacing its digits so it is read slowly) is the caller's.
    pub text: String,
    /// The language of `text` (`fr-FR`), when known: a call's voice speaks
    /// it (Twilio's `<Say language>`); the webhook passes it on.
    pub language: Option<String>,
}

/// How a provider is reached: the outbound HTTP port, and the networks the
/// tenant's requests may reach.
#[derive(Clone, Copy)]
pub struct Outbound<'a> {
    pub http: &'a dyn HttpClient,
    pub access: NetworkAccess,
}

/// Sends through the tenant's provider, bounded by its `timeout_seconds`;
/// never a silent success.
pub async fn send(
    provider: &SmsProvider,
    message: &PhoneMessage,
    secrets: &dyn Secrets,
    outbound: Outbound<'_>,
    now: i64,
) -> Result<(), DeliveryError> {
    match provider {
        SmsProvider::Twilio(settings) => send_twilio(settings, message, secrets, outbound).await,
        SmsProvider::Webhook(settings) => {
            send_webhook(settings, message, secrets, outbound, now).await
        }
    }
}

/// The lowercase hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`:
/// the `v1` part of the `X-Latchkey-Signature` header.
pub fn webhook_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    hex(ctx.sign().as_ref())
}

/// The TwiML a voice call plays: the text, escaped, in one `<Say>`,
/// in its language when known.
pub(crate) fn twiml_say(text: &str, language: Option<&str>) -> String {
    match language {
        Some(l) => format!(
            "<Response><Say language=\"{}\">{}</Say></Response>",
            escape_markup(l),
            escape_markup(text)
        ),
        None => format!("<Response><Say>{}</Say></Response>", escape_markup(text)),
    }
}

pub(crate) fn secret(
    secrets: &dyn Secrets,
    name: &str,
    what: &str,
) -> Result<String, DeliveryError> {
    secrets
        .get(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| DeliveryError::Config(format!("the {what} ({name}) is not set")))
}

pub(crate) fn timeout(seconds: u32) -> Duration {
    // Zero would fail every request at once; a second is the floor.
    Duration::from_secs(u64::from(seconds.max(1)))
}

async fn send_twilio(
    settings: &TwilioSettings,
    message: &PhoneMessage,
    secrets: &dyn Secrets,
    outbound: Outbound<'_>,
) -> Result<(), DeliveryError> {
    let token = secret(secrets, &settings.auth_token_env, "Twilio auth token")?;
    if settings.account_sid.is_empty() {
        return Err(DeliveryError::Config(
            "the Twilio account SID is empty".into(),
        ));
    }
    let resource = match message.channel {
        Channel::Sms => "Messages.json",
        Channel::Voice => "Calls.json",
    };
    let url = format!(
        "{}/2010-04-01/Accounts/{}/{resource}",
        settings.base_url.trim_end_matches('/'),
        utf8_percent_encode(&settings.account_sid, NON_ALPHANUMERIC),
    );
    let content = match message.channel {
        Channel::Sms => ("Body", message.text.clone()),
        Channel::Voice => (
            "Twiml",
            twiml_say(&message.text, message.language.as_deref()),
        ),
    };
    let form = [
        ("To", message.to.as_str()),
        ("From", settings.from.as_str()),
        (content.0, content.1.as_str()),
    ];
    let mut request = Request::new(
        http::Method::POST,
        &url,
        timeout(settings.timeout_seconds),
        outbound.access,
    );
    let credentials = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{token}", settings.account_sid));
    let mut authorization = HeaderValue::from_str(&format!("Basic {credentials}"))
        .map_err(|_| DeliveryError::Config("the Twilio credentials are not usable".into()))?;
    authorization.set_sensitive(true);
    request.headers.insert(AUTHORIZATION, authorization);
    request.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    request.body = serde_urlencoded::to_string(form)
        .map_err(|e| DeliveryError::Failed(format!("the Twilio form could not be built: {e}")))?
        .into_bytes();
    let response = outbound
        .http
        .send(request)
        .await
        .map_err(|e| unreachable("Twilio", &e))?;
    let status = response.status;
    let json: Option<serde_json::Value> = serde_json::from_slice(&response.body).ok();
    if status.is_success() {
        let has_sid = json
            .as_ref()
            .and_then(|v| v.get("sid"))
            .and_then(serde_json::Value::as_str)
            .is_some_and(|s| !s.is_empty());
        return if has_sid {
            Ok(())
        } else {
            Err(DeliveryError::Failed(format!(
                "Twilio answered {status} without a {} SID",
                match message.channel {
                    Channel::Sms => "message",
                    Channel::Voice => "call",
                }
            )))
        };
    }
    let mut detail = String::new();
    if let Some(v) = &json {
        if let Some(m) = v.get("message").and_then(serde_json::Value::as_str) {
            detail.push_str(": ");
            detail.push_str(&clip(m));
        }
        if let Some(c) = v.get("code").filter(|c| c.is_number() || c.is_string()) {
            let code = c.as_str().map_or_else(|| c.to_string(), str::to_owned);
            detail.push_str(&format!(" (code {})", clip(&code)));
        }
    }
    // A provider echoing the credential back must not put it in our logs.
    let detail = detail.replace(&token, "[redacted]");
    Err(DeliveryError::Failed(format!(
        "Twilio refused the {} with {status}{detail}",
        match message.channel {
            Channel::Sms => "message",
            Channel::Voice => "call",
        }
    )))
}

#[derive(Serialize)]
struct WebhookBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    to: &'a str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
    timestamp: i64,
}

async fn send_webhook(
    settings: &WebhookSettings,
    message: &PhoneMessage,
    secrets: &dyn Secrets,
    outbound: Outbound<'_>,
    now: i64,
) -> Result<(), DeliveryError> {
    let key = secret(secrets, &settings.secret_env, "webhook signing secret")?;
    let body = serde_json::to_vec(&WebhookBody {
        kind: message.channel.as_str(),
        to: &message.to,
        text: &message.text,
        language: message.language.as_deref(),
        timestamp: now,
    })
    .map_err(|e| DeliveryError::Failed(format!("the webhook body could not be built: {e}")))?;
    let status = post_signed(settings, &key, body, outbound, now, "SMS webhook").await?;
    if status.is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Failed(format!(
            "the SMS webhook refused the {} with {status}",
            message.channel.as_str()
        )))
    }
}

/// Posts `body` (JSON) to a signed webhook: `X-Latchkey-Signature`
/// `t=<now>,v1=<HMAC-SHA256 of "<now>.<body>" under key>`, the settings'
/// deadline, through the outbound port. Returns the answer's status; the
/// caller says what a refusal means. `what` names the webhook in errors.
pub(crate) async fn post_signed(
    settings: &WebhookSettings,
    key: &str,
    body: Vec<u8>,
    outbound: Outbound<'_>,
    now: i64,
    what: &str,
) -> Result<http::StatusCode, DeliveryError> {
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
        .map_err(|e| unreachable(what, &e))?;
    Ok(response.status)
}

/// A transport failure, described without the URL (a webhook URL may carry
/// a credential in its query).
pub(crate) fn unreachable(provider: &str, error: &OutboundError) -> DeliveryError {
    let why = match error {
        OutboundError::Timeout => "it did not answer in time",
        OutboundError::Connect => "the connection failed",
        OutboundError::InvalidUrl => {
            return DeliveryError::Config(format!("the {provider} URL is not usable"));
        }
        OutboundError::Refused(why) => {
            return DeliveryError::Config(format!("the {provider} URL is refused: {why}"));
        }
        OutboundError::TooLarge(_) => "its answer was too large",
        OutboundError::Interrupted => "the exchange was interrupted",
    };
    DeliveryError::Failed(format!("the {provider} could not be reached: {why}"))
}

pub(crate) fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_PROVIDER_TEXT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twiml_escapes_the_text() {
        assert_eq!(
            twiml_say("Your code: 1 2 <3> & \"4\"", None),
            "<Response><Say>Your code: 1 2 &lt;3&gt; &amp; &quot;4&quot;</Say></Response>"
        );
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2 checks the HMAC and hex encoding; the second
        // assertion checks what is signed: "<timestamp>.<body>".
        let mac = {
            let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
            hex(hmac::sign(&key, b"what do ya want for nothing?").as_ref())
        };
        assert_eq!(
            mac,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            webhook_signature(b"k", 12, b"{}"),
            hex(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"k"), b"12.{}").as_ref())
        );
    }

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text() {
        assert_eq!(clip("short"), "short");
        assert_eq!(
            clip(&"x".repeat(500)).chars().count(),
            MAX_PROVIDER_TEXT + 1
        );
    }
}
