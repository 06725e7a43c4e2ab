//! HTTP plumbing shared by every area: which host (and so which tenant) a
//! request is for, who is calling from where, cookies, and CORS.

pub mod cookies;
pub mod cors;
pub mod headers;
pub mod proxy;
pub mod serve;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::app::SharedState;
use crate::store::StoreError;
use crate::tenant::Tenant;

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
        .map(crate::services::delivery::languages)
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

/// Whether a store failure means the database cannot take the request right
/// now (answered with 503 and `retry-after`, and expected to heal by itself:
/// a database away, busy or locked, a full disk, an I/O error, a read-only
/// file), rather than a bug.
pub fn store_unavailable(e: &crate::store::StoreError) -> bool {
    use crate::store::StoreError;
    match e {
        StoreError::Unavailable(_) => true,
        StoreError::Database(db) => match db {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(d) => {
                let sqlite = d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
                d.code().is_some_and(|c| {
                    if sqlite {
                        sqlite_unavailable(&c)
                    } else {
                        postgres_unavailable(&c)
                    }
                })
            }
            _ => false,
        },
        _ => false,
    }
}

/// SQLite result codes (extended ones carry their primary code in the low
/// byte) of a database that cannot take a request now: busy (5), locked (6),
/// out of memory (7), read-only (8), I/O error (10), full (13), cannot open
/// (14), a lock protocol failure (15).
fn sqlite_unavailable(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14 | 15))
}

/// PostgreSQL SQLSTATEs of a database that cannot take a request now:
/// connection exceptions (class 08), insufficient resources (class 53: disk
/// full, out of memory, too many connections), a lock not available within
/// `lock_timeout` (55P03), shutdowns and "cannot connect now" (57P01–57P03),
/// an I/O error (58030), a read-only transaction (25006: a standby after a
/// failover).
fn postgres_unavailable(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "55P03" | "57P01" | "57P02" | "57P03" | "58030" | "25006"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_codes_of_a_database_that_cannot_take_a_request_now() {
        // Primary codes and extended ones: busy, busy snapshot, locked,
        // nomem, read-only, read-only (file moved), I/O error, a short read,
        // a failed write, a failed fsync, full, cannot open, lock protocol.
        for code in [
            "5", "517", "6", "262", "7", "8", "1032", "10", "522", "778", "1034", "13", "14", "15",
        ] {
            assert!(sqlite_unavailable(code), "{code}");
        }
        // Bugs and bad data stay 500: error, constraint (unique, foreign
        // key, trigger), corrupt, mismatch, not a database.
        for code in ["1", "19", "2067", "787", "1811", "11", "20", "26", "x"] {
            assert!(!sqlite_unavailable(code), "{code}");
        }
    }

    #[test]
    fn postgres_codes_of_a_database_that_cannot_take_a_request_now() {
        for code in [
            "08006", "08001", "53000", "53100", "53200", "53300", "55P03", "57P01", "57P03",
            "58030", "25006",
        ] {
            assert!(postgres_unavailable(code), "{code}");
        }
        for code in ["23505", "23503", "42P01", "22001"] {
            assert!(!postgres_unavailable(code), "{code}");
        }
    }
}
