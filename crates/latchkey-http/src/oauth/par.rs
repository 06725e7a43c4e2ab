//! `POST /oauth/par` (RFC 9126, pushed authorization requests): the client
//! authenticates as at the token endpoint (a public client by its
//! `client_id`, as RFC 9126 §2 allows, within the per-IP bound on stored
//! login transactions), its authorization request is
//! validated as `/authorize` would and kept, and it gets the `request_uri`
//! that stands for it (201, `{request_uri, expires_in}`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_auth;
use super::error::OAuthError;
use super::wire::{OAuthTenant, Params};
use crate::app::SharedState;
use latchkey_core::services::authorize;
use latchkey_core::services::login_flow;
use latchkey_core::services::pushed_request::{self, PushError};
use latchkey_core::tenant::TokenEndpointAuthMethod;

pub(super) async fn push(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    crate::http::ClientIp(ip): crate::http::ClientIp,
    params: Params,
) -> Result<Response, OAuthError> {
    let client = client_auth::authenticate(&state, &tenant, &params, &ip)?;
    // Anyone may push for a public client: what that makes the store hold
    // is bounded per IP as the login pages' transactions are.
    if client.auth_method() == TokenEndpointAuthMethod::None {
        login_flow::anonymous_transaction(&state, &tenant, &ip)
            .map_err(OAuthError::TooManyRequests)?;
    }
    // RFC 9126 §2.1: a request_uri cannot itself be pushed; request
    // objects are not supported (discovery says so).
    if params.str("request_uri")?.is_some() {
        return Err(OAuthError::InvalidRequest(
            "request_uri cannot be pushed".into(),
        ));
    }
    if params.str("request")?.is_some() {
        return Err(OAuthError::Coded {
            error: "request_not_supported",
            description: "Request objects are not supported".into(),
        });
    }
    let q = authorize::Params {
        response_type: params.str("response_type")?,
        client_id: Some(client.client_id.as_str()),
        redirect_uri: params.str("redirect_uri")?,
        scope: params.str("scope")?,
        state: params.str("state")?,
        nonce: params.str("nonce")?,
        audience: params.str("audience")?,
        code_challenge: params.str("code_challenge")?,
        code_challenge_method: params.str("code_challenge_method")?,
        prompt: params.str("prompt")?,
        max_age: params.str("max_age")?,
        login_hint: params.str("login_hint")?,
        acr_values: params.str("acr_values")?,
        dpop_jkt: params.str("dpop_jkt")?,
        response_mode: params.str("response_mode")?,
        connection: params.str("connection")?,
        ui_locales: params.str("ui_locales")?,
        pushed: true,
    };
    match pushed_request::push(&state, &tenant, &host, &client.client_id, &q).await {
        Ok((request_uri, expires_in)) => Ok((
            StatusCode::CREATED,
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            Json(json!({ "request_uri": request_uri, "expires_in": expires_in })),
        )
            .into_response()),
        Err(PushError::Refused { error, description }) => {
            Err(OAuthError::Coded { error, description })
        }
        Err(PushError::Store(e)) => Err(e.into()),
    }
}
