//! The push devices' API under `{issuer}appliance-mfa/api/` (Auth0
//! Guardian's device protocol, `docs/push-notifications.md`): enrolling
//! with a ticket, a device's account updated or removed, and a login's
//! transaction resolved (`resolve-transaction`) or read
//! (`{issuer}rich-consents/{txlnkid}`, beside the API). Answers in
//! Guardian's error shape ([`error::GuardianError`]); bodies are JSON, at
//! most [`MAX_BODY`] bytes; the tenant is the request's host's. No CORS:
//! devices are not browsers.

pub(crate) mod device;
pub(crate) mod error;
pub(crate) mod transactions;
pub(crate) mod wire;

use axum::Router;
use axum::routing::{get, patch, post};

use crate::app::SharedState;
use error::GuardianError;

async fn not_found() -> GuardianError {
    GuardianError::not_found()
}

async fn method_not_allowed() -> GuardianError {
    GuardianError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed.",
    )
}

pub(crate) fn routes() -> Router<SharedState> {
    let api = Router::new()
        .route("/enroll", post(device::enroll))
        .route(
            "/device-accounts/{id}",
            patch(device::update).delete(device::remove),
        )
        .route("/resolve-transaction", post(transactions::resolve))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/appliance-mfa/api", api)
        .route("/rich-consents/{id}", get(transactions::details))
}
