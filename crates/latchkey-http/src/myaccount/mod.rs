//! The My Account API, `/me/v1`: a signed-in user's own authentication
//! methods, enrollable factors and connected accounts. Every response is in
//! this area's dialect (`error.rs`), behind the gate (`gate.rs`).

mod connected;
mod enroll;
pub(crate) mod error;
pub(crate) mod gate;
mod methods;
pub(crate) mod openapi;
pub(crate) mod responses;
pub(crate) mod wire;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{delete, get, post};

use crate::app::SharedState;
use crate::http::cors::{self, CorsPolicy};
use error::ApiError;

pub(crate) const CORS: CorsPolicy = CorsPolicy {
    methods: "GET, POST, PATCH, DELETE, OPTIONS",
    allow_headers: "Authorization, Content-Type, DPoP, Auth0-Client",
    expose_headers: "Location, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, retry-after, x-auth0-error-kind, WWW-Authenticate, DPoP-Nonce",
    public: false,
};

async fn not_found() -> ApiError {
    ApiError::NotFound("No such resource.".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Answers a 405 from axum's method router in this dialect.
async fn dialect_405(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let res = next.run(req).await;
    if res.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED
        && res
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_none()
    {
        let allow = res.headers().get(axum::http::header::ALLOW).cloned();
        let mut new = ApiError::MethodNotAllowed.into_response();
        if let Some(a) = allow {
            new.headers_mut().insert(axum::http::header::ALLOW, a);
        }
        return new;
    }
    res
}

pub(crate) fn routes(state: SharedState) -> Router<SharedState> {
    let api = Router::new()
        .route("/factors", get(methods::factors))
        .route(
            "/authentication-methods",
            get(methods::list).post(enroll::create),
        )
        .route(
            "/authentication-methods/{id}",
            get(methods::get)
                .patch(methods::update)
                .delete(methods::delete),
        )
        .route("/authentication-methods/{id}/verify", post(enroll::verify))
        .route("/connected-accounts/connect", post(connected::connect))
        .route("/connected-accounts/complete", post(connected::complete))
        .route("/connected-accounts/accounts", get(connected::accounts))
        .route(
            "/connected-accounts/accounts/{id}",
            delete(connected::delete),
        )
        .route(
            "/connected-accounts/connections",
            get(connected::connections),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn(dialect_405))
        // The gate also marks every answer of an operation `no-store`.
        .layer(from_fn_with_state(state.clone(), gate::gate))
        .layer(from_fn_with_state((state.clone(), CORS), cors::apply));
    // The document is public: no token, readable from any origin.
    let doc = Router::new()
        .route("/me/v1/openapi.json", get(openapi::document))
        .layer(from_fn_with_state((state, cors::PUBLIC), cors::apply));
    Router::new().merge(doc).nest("/me/v1", api)
}
