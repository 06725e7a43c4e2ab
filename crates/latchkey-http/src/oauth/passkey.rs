//! `POST /passkey/register` and `POST /passkey/challenge` (Auth0's Passkey
//! API for native sign-up and login); the answer goes to `/oauth/token` with
//! the webauthn grant.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::client_auth;
use super::error::OAuthError;
use super::wire::{OAuthTenant, Params};
use crate::app::SharedState;
use latchkey_core::services::passkey_login::{self, PasskeyError};
use latchkey_core::tenant::{Client, GrantType};

impl From<PasskeyError> for OAuthError {
    fn from(e: PasskeyError) -> Self {
        match e {
            PasskeyError::NotEnabled => OAuthError::NotFound,
            PasskeyError::InvalidRequest(d) => OAuthError::InvalidRequest(d),
            e @ (PasskeyError::SignupDisabled | PasskeyError::EmailNotVerified { .. }) => {
                OAuthError::AccessDenied(e.to_string())
            }
            PasskeyError::InvalidGrant(d) => OAuthError::InvalidGrant(d),
            PasskeyError::Store(s) => s.into(),
            PasskeyError::Internal(d) => OAuthError::Internal(d),
        }
    }
}

pub(super) fn require_webauthn(client: &Client) -> Result<(), OAuthError> {
    if client.grant_types.contains(&GrantType::Webauthn) {
        Ok(())
    } else {
        Err(OAuthError::UnauthorizedClient(format!(
            "Grant type '{}' not allowed for the client.",
            GrantType::Webauthn.as_str()
        )))
    }
}

/// A structured parameter: a JSON object in a JSON body, or a JSON string
/// in a form body.
pub(super) fn object_param(params: &Params, key: &str) -> Result<Option<Value>, OAuthError> {
    match params.value(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => Ok(Some(v)),
            _ => Err(OAuthError::InvalidRequest(format!(
                "Parameter '{key}' must be an object"
            ))),
        },
        Some(_) => Err(OAuthError::InvalidRequest(format!(
            "Parameter '{key}' must be an object"
        ))),
    }
}

fn answer(auth_session: String, options: Value) -> Response {
    let mut res = Json(json!({
        "auth_session": auth_session,
        "authn_params_public_key": options,
    }))
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub(super) async fn register(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    crate::http::ClientIp(ip): crate::http::ClientIp,
    params: Params,
) -> Result<Response, OAuthError> {
    let client = client_auth::authenticate(&state, &tenant, &params, &ip)?;
    require_webauthn(client)?;
    passkey_login::native_allowed(&tenant, &host)?;
    let profile = object_param(&params, "user_profile")?.ok_or_else(|| {
        OAuthError::InvalidRequest("Missing required parameter: user_profile".into())
    })?;
    let metadata = object_param(&params, "user_metadata")?;
    let (auth_session, options) = passkey_login::register(
        &state,
        &tenant,
        &host,
        client,
        params.str("realm")?,
        &profile,
        metadata.as_ref(),
    )
    .await?;
    Ok(answer(auth_session, options))
}

pub(super) async fn challenge(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    crate::http::ClientIp(ip): crate::http::ClientIp,
    params: Params,
) -> Result<Response, OAuthError> {
    let client = client_auth::authenticate(&state, &tenant, &params, &ip)?;
    require_webauthn(client)?;
    passkey_login::native_allowed(&tenant, &host)?;
    let (auth_session, options) =
        passkey_login::challenge(&state, &tenant, &host, client, params.str("realm")?).await?;
    Ok(answer(auth_session, options))
}
