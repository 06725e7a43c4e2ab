//! `GET /mfa/authenticators`: the authenticators of the user behind an
//! `mfa_token` (the token is the bearer credential).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::error::OAuthError;
use super::session::bearer;
use super::wire::OAuthTenant;
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
    let methods = state.store.methods(&tenant.id, &row.user_id).await?;
    let list = mfa::authenticators(&mfa::second_factors(&methods));
    Ok(Json(list).into_response())
}
