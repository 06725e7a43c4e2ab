//! The Authentication API: `/authorize`, `/oauth/token`, `/oauth/revoke`,
//! `/oauth/par`, `/passwordless/start` and `/passwordless/verify`, `/userinfo`, `/v2/logout` and the
//! discovery documents.

pub(crate) mod authorize;
mod client_auth;
mod discovery;
pub(crate) mod error;
mod mfa;
mod par;
mod passkey;
mod passwordless;
pub(crate) mod respond;
mod session;
pub(crate) mod token;
pub(crate) mod wire;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post};

use crate::app::SharedState;
use crate::http::cors::{self, CorsPolicy};

pub(crate) fn routes(state: SharedState) -> Router<SharedState> {
    let public = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .layer(from_fn_with_state(
            (state.clone(), cors::PUBLIC),
            cors::apply,
        ));
    let api = Router::new()
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(session::revoke))
        .route("/oauth/par", post(par::push))
        .route("/mfa/authenticators", get(mfa::authenticators))
        .route("/mfa/authenticators/{id}", delete(mfa::remove))
        .route("/mfa/challenge", post(mfa::challenge))
        .route("/mfa/associate", post(mfa::associate))
        .route("/passwordless/start", post(passwordless::start))
        .route("/passwordless/verify", post(passwordless::verify))
        .route("/passkey/register", post(passkey::register))
        .route("/passkey/challenge", post(passkey::challenge))
        .route("/userinfo", get(session::userinfo).post(session::userinfo))
        .layer(from_fn_with_state((state, OAUTH_CORS), cors::apply))
        .layer(DefaultBodyLimit::max(wire::MAX_BODY));
    let browser = Router::new()
        .route("/authorize", get(authorize::authorize))
        .route("/v2/logout", get(session::logout))
        .route("/oidc/logout", get(session::oidc_logout));
    public.merge(api).merge(browser)
}

const OAUTH_CORS: CorsPolicy = cors::OAUTH;
