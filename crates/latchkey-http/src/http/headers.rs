//! The outermost layer, one for every request: a request with more than
//! one `Host` header is answered 400, and every response carries the same
//! headers: no content sniffing, no referrer leaving the site, pages that
//! cannot be framed, and HSTS on HTTPS hosts.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_core::services::ratelimit::Decision;

/// Sent to other sites: nothing (a login page's address carries the
/// authorization request). Same-origin requests keep it, and unlike
/// `no-referrer` this keeps the `Origin` of the pages' own POSTs.
pub(crate) const REFERRER_POLICY: &str = "same-origin";

/// One year; subdomains are not ours to decide (custom domains).
pub(crate) const HSTS: &str = "max-age=31536000";

pub(crate) async fn edge(req: Request, next: Next) -> Response {
    let duplicate_host = super::duplicate_host(req.headers());
    let https = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| !super::is_local_host(&h.trim().to_ascii_lowercase()));
    let mut res = next.run(req).await;
    // Areas that resolve a tenant have already refused it in their own
    // dialect (see `http::tenant_for`); anything else gets a plain 400.
    if duplicate_host && res.status() != axum::http::StatusCode::BAD_REQUEST {
        res = (axum::http::StatusCode::BAD_REQUEST, super::DUPLICATE_HOST).into_response();
    }
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::REFERRER_POLICY) {
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static(REFERRER_POLICY),
        );
    }
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/html"));
    // A page that set its own policy (the `web_message` answer, framed by
    // the app on purpose) keeps it; every other page refuses to be framed.
    if html && !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    res
}

/// Auth0's rate-limit headers of an API answer (My Account, Management).
pub(crate) fn rate_limit(res: &mut Response, d: &Decision) {
    let h = res.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(d.reset));
}

/// `Cache-Control: no-store` on an answer that says nothing of caching
/// (API answers carry personal data and secrets).
pub(crate) fn no_store_unless_set(res: &mut Response) {
    if !res.headers().contains_key(header::CACHE_CONTROL) {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
