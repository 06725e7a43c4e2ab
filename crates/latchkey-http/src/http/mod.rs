//! HTTP plumbing shared by every area: which host (and so which tenant) a
//! request is for, who is calling from where, cookies, and CORS.

pub(crate) mod cookies;
pub(crate) mod cors;
pub(crate) mod headers;
pub mod proxy;
pub mod serve;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::app::SharedState;
use latchkey_core::store::StoreError;
use latchkey_core::tenant::Tenant;

/// The request's host, lowercased, port included (`localhost:3917`).
pub fn request_host(parts: &Parts) -> Option<String> {
    let raw = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_string()))?;
    let host = raw.trim().to_ascii_lowercase();
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    ok.then_some(host)
}

/// Whether the request carries more than one `Host` header, which
/// RFC 9112 §3.2 requires a server to refuse with 400.
pub fn duplicate_host(headers: &HeaderMap) -> bool {
    headers.get_all(header::HOST).iter().nth(1).is_some()
}

#[derive(Debug)]
pub enum TenantLookupError {
    /// No `Host` header, or one that is not a host: 400 (RFC 9112 §3.2).
    BadHost,
    /// A host no tenant is served on.
    UnknownHost,
    /// More than one `Host` header: which tenant is meant is ambiguous.
    DuplicateHost,
    Store(StoreError),
}

/// The message of a request refused for its two `Host` headers.
pub const DUPLICATE_HOST: &str = "The request has more than one Host header.";

/// The message of a request refused for a missing or malformed `Host`.
pub const BAD_HOST: &str = "The request has no valid Host header.";

/// Resolves the tenant a request is for.
pub async fn tenant_for(
    state: &SharedState,
    parts: &Parts,
) -> Result<(Arc<Tenant>, String), TenantLookupError> {
    if duplicate_host(&parts.headers) {
        return Err(TenantLookupError::DuplicateHost);
    }
    let host = request_host(parts).ok_or(TenantLookupError::BadHost)?;
    match state.tenants.by_host(&host).await {
        Ok(Some(t)) => Ok((t, host)),
        Ok(None) => Err(TenantLookupError::UnknownHost),
        Err(e) => Err(TenantLookupError::Store(e)),
    }
}

/// The caller's IP address: the socket peer, or, when the peer is a trusted
/// proxy (`--trusted-proxies`), the client it forwards for (see
/// [`proxy::TrustedProxies::client_ip`]). Every area takes the caller's
/// address from here: brute-force counts, limits and audit events.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

/// The caller's address for a request (see [`ClientIp`]); `None` when the
/// connection's peer is unknown (a request not served over a socket).
pub fn client_ip(state: &crate::app::AppState, parts: &Parts) -> Option<std::net::IpAddr> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some(state.trusted_proxies.client_ip(peer, &parts.headers))
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp
where
    SharedState: axum::extract::FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, Self::Rejection> {
        let state = <SharedState as axum::extract::FromRef<S>>::from_ref(s);
        let ip = client_ip(&state, parts).map_or_else(|| "unknown".into(), |ip| ip.to_string());
        Ok(Self(ip))
    }
}

/// The caller's languages (`Accept-Language`), most preferred first: for
/// the wording of the codes sent.
pub fn accept_languages(headers: &HeaderMap) -> Vec<String> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(latchkey_core::services::delivery::languages)
        .unwrap_or_default()
}

pub fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(512)
        .collect()
}

/// Whether a host is a development host served over plain HTTP.
pub fn is_local_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// `302 Found` to `location`, as OAuth redirects are conventionally sent.
pub fn found(location: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    match axum::http::HeaderValue::from_str(location) {
        Ok(v) => (axum::http::StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => axum::http::StatusCode::BAD_REQUEST.into_response(),
    }
}
