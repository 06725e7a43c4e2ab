//! The MFA API's endpoints besides the grants: `GET /mfa/authenticators`
//! (the `mfa_token` is the bearer credential) and `POST /mfa/challenge`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use serde_json::json;

use super::client_auth;
use super::error::OAuthError;
use super::session::bearer;
use super::wire::{OAuthTenant, Params};
use crate::app::SharedState;
use crate::services::mfa::{self, MfaError};

pub async fn authenticators(
    State(state): State<SharedState>,
    OAuthTenant { tenant, .. }: OAuthTenant,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let token = bearer(&headers)
        .ok_or_else(|| OAuthError::InvalidToken("Missing mfa_token as bearer token".into()))?;
    let (row, _) = match mfa::lookup(&state, &tenant, token, None).await {
        Ok(found) => found,
        Err(MfaError::Store(e)) => return Err(e.into()),
        Err(MfaError::Internal(m)) => return Err(OAuthError::Internal(m)),
        Err(_) => {
            return Err(OAuthError::InvalidToken(
                "The mfa_token is invalid, has expired or was already used.".into(),
            ));
        }
    };
    let methods = mfa::factors_of(&state, &tenant, &row.user_id).await?;
    let list = mfa::authenticators(&mfa::api_factors(&methods));
    Ok(Json(list).into_response())
}

/// `POST /mfa/challenge`: `mfa_token`, `challenge_type` (`otp`, `oob`, or
/// both, space-separated) and optionally `authenticator_id`. For an email or
/// phone authenticator the code is sent and the answer carries the
/// `oob_code` to present with it.
pub async fn challenge(
    State(state): State<SharedState>,
    OAuthTenant { tenant, .. }: OAuthTenant,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, OAuthError> {
    let client = client_auth::authenticate(&state, &tenant, &params)?;
    let token = params.required("mfa_token")?;
    let types: Vec<&str> = params
        .str("challenge_type")?
        .unwrap_or("otp oob")
        .split_whitespace()
        .collect();
    if let Some(bad) = types.iter().find(|t| !matches!(**t, "otp" | "oob")) {
        return Err(OAuthError::InvalidRequest(format!(
            "Unsupported challenge_type: {}",
            bad.chars().take(40).collect::<String>()
        )));
    }
    let languages = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(crate::services::delivery::messages::languages)
        .unwrap_or_default();
    let started = mfa::challenge(
        &state,
        &tenant,
        client,
        token,
        &types,
        params.str("authenticator_id")?,
        &languages,
    )
    .await
    .map_err(super::token::mfa_error)?;
    let body = match started {
        mfa::Challenge::Otp => json!({ "challenge_type": "otp" }),
        mfa::Challenge::Oob { oob_code, .. } => json!({
            "challenge_type": "oob",
            "oob_code": oob_code,
            "binding_method": "prompt",
        }),
    };
    Ok(Json(body).into_response())
}
