//! The Management API, `{issuer}api/v2/`, in Auth0's dialect (`error.rs`):
//! for clients with a `client_credentials` token for its audience, behind
//! the gate (`gate.rs`: token, limits; each handler's [`gate::Scoped`]
//! checks the operation's scopes). Users (`users.rs`), the tenant log (`logs.rs`), signing keys (`keys.rs`), brute-force blocks (`blocks.rs`); bodies and queries
//! read strictly and user objects shaped as Auth0's (`wire.rs`). No CORS:
//! the API is for servers, not browsers.

mod blocks;
mod client_grants;
mod clients;
mod connections;
pub(crate) mod error;
pub(crate) mod gate;
mod keys;
mod logs;
mod resource_servers;
mod roles;
mod users;
pub(crate) mod wire;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::SharedState;
use error::MgmtError;

async fn not_found() -> MgmtError {
    MgmtError::not_found()
}

async fn method_not_allowed() -> MgmtError {
    MgmtError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method Not Allowed",
    )
}

/// Answers a 405 from axum's method router in this dialect, and a path
/// whose parameters do not decode (bad percent-encoding) as a 404.
async fn dialect(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let res = next.run(req).await;
    let plain = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none_or(|ct| !ct.as_bytes().starts_with(b"application/json"));
    if !plain || !(res.status().is_client_error() || res.status().is_server_error()) {
        return res;
    }
    let allow = res.headers().get(axum::http::header::ALLOW).cloned();
    let mut new = match res.status() {
        axum::http::StatusCode::METHOD_NOT_ALLOWED => method_not_allowed().await,
        axum::http::StatusCode::NOT_FOUND => MgmtError::not_found(),
        status => MgmtError::new(
            status,
            "invalid_request",
            status.canonical_reason().unwrap_or("Bad Request"),
        ),
    }
    .into_response();
    if let Some(a) = allow {
        new.headers_mut().insert(axum::http::header::ALLOW, a);
    }
    new
}

pub(crate) fn routes(state: SharedState) -> Router<SharedState> {
    let api = Router::new()
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/users-by-email", get(users::by_email))
        .route("/users/{id}/logs", get(logs::of_user))
        .route("/logs", get(logs::list))
        .route("/logs/{id}", get(logs::get))
        .route(
            "/user-blocks",
            get(blocks::of_identifier).delete(blocks::unblock_identifier),
        )
        .route(
            "/user-blocks/{id}",
            get(blocks::of_user).delete(blocks::unblock_user),
        )
        .route("/keys/signing", get(keys::list))
        .route("/keys/signing/rotate", axum::routing::post(keys::rotate))
        .route("/keys/signing/{kid}", get(keys::get))
        .route(
            "/keys/signing/{kid}/revoke",
            axum::routing::put(keys::revoke),
        )
        .route("/clients", get(clients::list).post(clients::create))
        .route(
            "/clients/{id}",
            get(clients::get)
                .patch(clients::update)
                .delete(clients::delete),
        )
        .route(
            "/client-grants",
            get(client_grants::list).post(client_grants::create),
        )
        .route(
            "/client-grants/{id}",
            get(client_grants::get)
                .patch(client_grants::update)
                .delete(client_grants::delete),
        )
        .route(
            "/resource-servers",
            get(resource_servers::list).post(resource_servers::create),
        )
        .route(
            "/resource-servers/{id}",
            get(resource_servers::get)
                .patch(resource_servers::update)
                .delete(resource_servers::delete),
        )
        .route(
            "/connections",
            get(connections::list).post(connections::create),
        )
        .route(
            "/connections/{id}",
            get(connections::get)
                .patch(connections::update)
                .delete(connections::delete),
        )
        .route("/roles", get(roles::list).post(roles::create))
        .route(
            "/roles/{id}",
            get(roles::get).patch(roles::update).delete(roles::delete),
        )
        .route(
            "/roles/{id}/permissions",
            get(roles::permissions)
                .post(roles::add_permissions)
                .delete(roles::remove_permissions),
        )
        .route(
            "/clients/{id}/rotate-secret",
            axum::routing::post(clients::rotate_secret),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn(dialect))
        // The gate also marks every answer of an operation `no-store`.
        .layer(from_fn_with_state(state, gate::gate));
    Router::new().nest("/api/v2", api)
}
