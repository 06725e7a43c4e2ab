//! CORS from tenant data: an origin is allowed when one of the tenant's
//! clients lists it in `allowed_origins` or `web_origins`. Preflights are
//! answered here, without a token. Public documents (discovery, JWKS) are
//! readable from any origin.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::SharedState;

/// What one area allows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CorsPolicy {
    pub methods: &'static str,
    pub allow_headers: &'static str,
    pub expose_headers: &'static str,
    /// Any origin may read (public documents).
    pub public: bool,
}

pub(crate) const OAUTH: CorsPolicy = CorsPolicy {
    methods: "GET, POST, DELETE, OPTIONS",
    allow_headers: "Authorization, Content-Type, Auth0-Client, DPoP",
    expose_headers: "DPoP-Nonce, WWW-Authenticate",
    public: false,
};

pub(crate) const PUBLIC: CorsPolicy = CorsPolicy {
    methods: "GET, OPTIONS",
    allow_headers: "Content-Type, Auth0-Client",
    expose_headers: "",
    public: true,
};

async fn origin_allowed(
    state: &SharedState,
    req_parts: &axum::http::request::Parts,
    origin: &str,
) -> bool {
    match super::tenant_for(state, req_parts).await {
        Ok((tenant, _)) => tenant
            .allowed_origins()
            .any(|o| o.trim_end_matches('/') == origin),
        Err(_) => false,
    }
}

pub(crate) async fn apply(
    State((state, policy)): State<(SharedState, CorsPolicy)>,
    req: Request,
    next: Next,
) -> Response {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string)
    else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let allowed = policy.public || origin_allowed(&state, &parts, &origin).await;
    let preflight = parts.method == Method::OPTIONS
        && parts
            .headers
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut res = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(Request::from_parts(parts, body)).await
    };
    let h = res.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if !allowed {
        return res;
    }
    let allow_origin = if policy.public {
        HeaderValue::from_static("*")
    } else {
        HeaderValue::from_str(&origin).unwrap_or_else(|_| HeaderValue::from_static("null"))
    };
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(policy.methods),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(policy.allow_headers),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    } else if !policy.expose_headers.is_empty() {
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(policy.expose_headers),
        );
    }
    res
}
