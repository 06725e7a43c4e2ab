//! Requests to a provider through the outbound port (its SSRF guard, no
//! redirects followed), with the connection's deadline and a cap on the
//! answer, and strict reading of what comes back: a redirect, another media
//! type or something that is not a JSON object is an error.

use http::Method;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Map, Value};

use super::provider::Provider;
use super::{UpstreamError, quoted};
use crate::context::Core;
use crate::outbound::{OutboundError, Request, Response};

/// The cap on a provider's answer (tokens, userinfo, discovery).
pub(crate) const MAX_ANSWER: usize = 64 * 1024;

/// A request to `url` for `provider`, asking for JSON.
pub(crate) fn request(provider: &Provider, method: Method, url: &str) -> Request {
    let mut r = Request::new(method, url, provider.timeout, provider.access);
    r.max_response_bytes = MAX_ANSWER;
    r.headers
        .insert(ACCEPT, HeaderValue::from_static("application/json"));
    r
}

/// `request` with a form body.
pub(crate) fn form(provider: &Provider, url: &str, fields: &[(&str, &str)]) -> Request {
    let mut r = request(provider, Method::POST, url);
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        body.append_pair(k, v);
    }
    r.body = body.finish().into_bytes();
    r.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    r
}

/// `Authorization: Basic` of the client (RFC 6749 2.3.1: each part
/// form-encoded first).
pub(crate) fn basic_auth(r: &mut Request, client_id: &str, secret: &str) {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(client_id), enc(secret));
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers.insert(AUTHORIZATION, v);
    }
}

/// `Authorization: Bearer`.
pub(crate) fn bearer(r: &mut Request, token: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
        r.headers.insert(AUTHORIZATION, v);
    }
}

/// Sends it. A transport failure, a redirect and a server error are errors
/// here; other statuses are the caller's to read.
pub(crate) async fn send(core: &Core, request: Request) -> Result<Response, UpstreamError> {
    let cap = request.max_response_bytes;
    let response = core.outside.http.send(request).await.map_err(|e| match e {
        OutboundError::TooLarge(_) => {
            UpstreamError::Protocol(format!("the answer is larger than {cap} bytes"))
        }
        OutboundError::InvalidUrl => UpstreamError::Config("an endpoint URL is not usable".into()),
        e @ OutboundError::Refused(_) => UpstreamError::Config(e.to_string()),
        e @ (OutboundError::Connect | OutboundError::Timeout | OutboundError::Interrupted) => {
            UpstreamError::Unreachable(e.to_string())
        }
    })?;
    if response.status.is_redirection() {
        return Err(UpstreamError::Protocol(format!(
            "it answered a redirect ({}), which latchkey does not follow",
            response.status.as_u16()
        )));
    }
    if response.status.is_server_error() {
        return Err(UpstreamError::Unreachable(format!(
            "it answered {}",
            response.status.as_u16()
        )));
    }
    Ok(response)
}

/// The media type of an answer, lowercased, without parameters.
fn media_type(response: &Response) -> String {
    response
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether an answer says it is JSON (`application/json` or `…+json`).
pub(crate) fn is_json(response: &Response) -> bool {
    let t = media_type(response);
    t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
}

/// The answer's JSON object, if it is one.
pub(crate) fn json_object(
    response: &Response,
    what: &str,
) -> Result<Map<String, Value>, UpstreamError> {
    if !is_json(response) {
        return Err(UpstreamError::Protocol(format!(
            "its {what} is not JSON (content type {:?})",
            quoted(&media_type(response))
        )));
    }
    match serde_json::from_slice(&response.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(UpstreamError::Protocol(format!(
            "its {what} is not a JSON object"
        ))),
    }
}

/// A token endpoint's answer as an object: JSON, or the form encoding some
/// providers (GitHub, unless asked otherwise) answer with.
pub(crate) fn token_answer(response: &Response) -> Result<Map<String, Value>, UpstreamError> {
    if media_type(response) == "application/x-www-form-urlencoded" {
        return Ok(url::form_urlencoded::parse(&response.body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect());
    }
    json_object(response, "token answer")
}

/// An OAuth error answer (`{error, error_description}`) as a refusal, else
/// a protocol error naming the status.
pub(crate) fn refusal(response: &Response, what: &str) -> UpstreamError {
    let error = token_answer(response).ok().and_then(|m| {
        let error = m.get("error")?.as_str().map(quoted)?;
        let description = m
            .get("error_description")
            .and_then(Value::as_str)
            .map(quoted);
        Some(UpstreamError::Refused { error, description })
    });
    error.unwrap_or_else(|| {
        UpstreamError::Protocol(format!("its {what} answered {}", response.status.as_u16()))
    })
}

/// A string member of an answer, bounded.
pub(crate) fn string<'m>(map: &'m Map<String, Value>, key: &str, max: usize) -> Option<&'m str> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= max)
}

/// A number of seconds, written as a number or a string of digits (some
/// providers quote it).
pub(crate) fn seconds(map: &Map<String, Value>, key: &str) -> Option<i64> {
    match map.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n| *n >= 0)
}
