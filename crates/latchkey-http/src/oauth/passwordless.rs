//! `POST /passwordless/start`: a one-time code sent by email or SMS for a
//! passwordless connection (`services::passwordless`), answered as Auth0
//! answers it: `{_id, email, email_verified}` or `{_id, phone_number,
//! phone_verified, request_language}`, the same whether or not the address
//! has a user. The code is traded at `/oauth/token` (the
//! `passwordless/otp` grant); `POST /passwordless/verify` checks it first
//! without spending it, as auth0-js's `passwordless.verify` does.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::client_auth;
use super::error::OAuthError;
use super::wire::{OAuthTenant, Params};
use crate::app::SharedState;
use crate::http::ClientIp;
use latchkey_core::services::authorize;
use latchkey_core::services::login::Origin;
use latchkey_core::services::passwordless::{
    self, LinkTo, PasswordlessError, Send, StartRequest, VerifyRequest,
};
use latchkey_core::tenant::ConnectionStrategy;

pub(super) async fn start(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, OAuthError> {
    let client = client_auth::authenticate(&state, &tenant, &params, &ip)?;
    let connection = params.required("connection")?;
    let strategy = tenant
        .passwordless_connection(connection)
        .map(|c| c.strategy)
        .ok_or_else(|| start_error(PasswordlessError::UnknownConnection))?;
    let (key, link_by_default) = match strategy {
        ConnectionStrategy::Sms => ("phone_number", false),
        _ => ("email", true),
    };
    let to = params.required(key)?;
    let auth_params = match params.value("authParams") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => {
            return Err(OAuthError::InvalidRequest(
                "authParams must be an object".into(),
            ));
        }
    };
    let link = match params.str("send")? {
        None => link_by_default,
        Some("code") => false,
        Some("link") => true,
        Some(_) => {
            return Err(OAuthError::InvalidRequest(
                "send must be \"code\" or \"link\"".into(),
            ));
        }
    };
    // A code's authParams are not read.
    let link_to = match link {
        true => Some(LinkTo {
            host: &host,
            params: link_params(&client.client_id, auth_params)?,
        }),
        false => None,
    };
    let send = link_to.as_ref().map_or(Send::Code, Send::Link);
    let ua = crate::http::user_agent(&headers);
    let languages = languages(&headers);
    let started = passwordless::start(
        &state,
        &StartRequest {
            tenant: &tenant,
            from: Origin {
                client,
                ip: &ip,
                user_agent: &ua,
            },
            connection,
            to,
            send,
            languages: &languages,
        },
    )
    .await
    .map_err(start_error)?;
    let body = match started.strategy {
        ConnectionStrategy::Sms => json!({
            "_id": started.id,
            "phone_number": started.to,
            "phone_verified": false,
            "request_language": headers
                .get("x-request-language")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(35).collect::<String>()),
        }),
        _ => json!({ "_id": started.id, "email": started.to, "email_verified": false }),
    };
    Ok(Json(body).into_response())
}

/// `POST /passwordless/verify` (`client_id`, `connection`,
/// `verification_code`, `email` or `phone_number`): `{}` when the code is
/// right, left unspent; refused as the `passwordless/otp` grant refuses it.
pub(super) async fn verify(
    State(state): State<SharedState>,
    OAuthTenant { tenant, .. }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, OAuthError> {
    let client = client_auth::authenticate(&state, &tenant, &params, &ip)?;
    let connection = params.required("connection")?;
    let code = params.required("verification_code")?;
    let key = match tenant
        .passwordless_connection(connection)
        .map(|c| c.strategy)
    {
        Some(ConnectionStrategy::Sms) => "phone_number",
        _ => "email",
    };
    let to = params.required(key)?;
    let ua = crate::http::user_agent(&headers);
    passwordless::check_code(
        &state,
        &VerifyRequest {
            tenant: &tenant,
            from: Origin {
                client,
                ip: &ip,
                user_agent: &ua,
            },
            connection,
            to,
            code,
            link: None,
        },
    )
    .await
    .map_err(super::error::passwordless_grant_error)?;
    Ok(Json(json!({})).into_response())
}

/// The authorization request of a magic link, from `authParams` (snake
/// case, as auth0-js and auth0-python send it) and the caller's client.
fn link_params<'a>(
    client_id: &'a str,
    auth: Option<&'a serde_json::Map<String, Value>>,
) -> Result<authorize::Params<'a>, OAuthError> {
    let get = |key: &str| -> Result<Option<&'a str>, OAuthError> {
        match auth.and_then(|a| a.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(OAuthError::InvalidRequest(format!(
                "authParams.{key} must be a string"
            ))),
        }
    };
    Ok(authorize::Params {
        client_id: Some(client_id),
        response_type: get("response_type")?,
        redirect_uri: get("redirect_uri")?,
        scope: get("scope")?,
        state: get("state")?,
        nonce: get("nonce")?,
        audience: get("audience")?,
        code_challenge: get("code_challenge")?,
        code_challenge_method: get("code_challenge_method")?,
        response_mode: get("response_mode")?,
        prompt: get("prompt")?,
        max_age: get("max_age")?,
        login_hint: get("login_hint")?,
        acr_values: get("acr_values")?,
        dpop_jkt: get("dpop_jkt")?,
        ui_locales: get("ui_locales")?,
        connection: None,
        pushed: false,
    })
}

/// The caller's languages: auth0.js's `x-request-language`, then
/// `Accept-Language`.
fn languages(headers: &HeaderMap) -> Vec<String> {
    let mut languages: Vec<String> = headers
        .get("x-request-language")
        .and_then(|v| v.to_str().ok())
        .map(latchkey_core::services::delivery::languages)
        .unwrap_or_default();
    languages.extend(crate::http::accept_languages(headers));
    languages
}

/// A refused start, in Auth0's words for `/passwordless/start`.
fn start_error(e: PasswordlessError) -> OAuthError {
    let coded = |error: &'static str, description: String| OAuthError::Coded { error, description };
    match e {
        PasswordlessError::UnknownConnection => {
            coded("bad.connection", "Connection does not exist".into())
        }
        PasswordlessError::Disabled => coded(
            "bad.connection",
            "The connection is not enabled for this client".into(),
        ),
        PasswordlessError::BadEmail(why) => coded("bad.email", format!("The email {why}")),
        PasswordlessError::BadPhoneNumber(why) => {
            coded("bad.phone_number", format!("The phone number {why}"))
        }
        PasswordlessError::LinkUnsupported => coded(
            "bad.send",
            "Links are sent by email only: send \"code\" for this connection".into(),
        ),
        PasswordlessError::BadAuthParams(error, description) => coded(error, description),
        PasswordlessError::Throttled(seconds) => OAuthError::TooManyRequests(seconds),
        PasswordlessError::Store(s) => s.into(),
        PasswordlessError::Internal(m) => OAuthError::Internal(m),
        // Not what starting answers.
        PasswordlessError::WrongCode(_) | PasswordlessError::Blocked => {
            OAuthError::Internal("a start refused as an answer".into())
        }
    }
}
