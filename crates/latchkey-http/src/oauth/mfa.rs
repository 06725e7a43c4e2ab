//! The MFA API's endpoints besides the grants: `GET /mfa/authenticators`,
//! `DELETE /mfa/authenticators/{id}`, `POST /mfa/associate` (their bearer:
//! a login's `mfa_token` or an access token for the MFA API with the
//! operation's scope, `services::mfa::api`) and `POST /mfa/challenge`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use serde_json::json;

use super::client_auth;
use super::error::OAuthError;
use super::session::bearer;
use super::wire::{OAuthTenant, Params};
use crate::app::SharedState;
use latchkey_core::services::mfa::{self, MfaError, api};

/// `GET /mfa/authenticators`: the bearer is a login's `mfa_token` or an
/// MFA API access token with `read:authenticators`.
pub(super) async fn authenticators(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let caller = mfa_caller(&state, &tenant, &host, &headers, api::Operation::Read).await?;
    let list = api::list(&state, &tenant, &caller).await?;
    Ok(Json(list).into_response())
}

/// `DELETE /mfa/authenticators/{id}`: an MFA API access token with
/// `remove:authenticators` removes one of its user's authenticators; 204.
pub(super) async fn remove(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    crate::http::ClientIp(ip): crate::http::ClientIp,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let caller = mfa_caller(&state, &tenant, &host, &headers, api::Operation::Remove).await?;
    let client =
        mfa::associating_client(&tenant, &caller, None).map_err(super::error::mfa_error)?;
    let ua = crate::http::user_agent(&headers);
    match api::remove(&state, &tenant, &caller, client, (&ip, &ua), &id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(api::RemoveError::NotFound) => Err(OAuthError::NotFound),
        Err(api::RemoveError::Refused(m)) => Err(OAuthError::InvalidRequest(m)),
        Err(api::RemoveError::Store(e)) => Err(e.into()),
    }
}

/// The caller of an MFA API endpoint, from its bearer token.
async fn mfa_caller(
    state: &SharedState,
    tenant: &latchkey_core::tenant::Tenant,
    host: &str,
    headers: &HeaderMap,
    op: api::Operation,
) -> Result<api::Caller, OAuthError> {
    let token = bearer(headers)
        .ok_or_else(|| OAuthError::InvalidToken("Missing mfa_token as bearer token".into()))?;
    api::caller(state, tenant, host, token, op)
        .await
        .map_err(super::error::mfa_caller_error)
}

/// `POST /mfa/challenge`: `mfa_token`, `challenge_type` (`otp`, `oob`, or
/// both, space-separated) and optionally `authenticator_id`. For an email or
/// phone authenticator the code is sent and the answer carries the
/// `oob_code` to present with it.
pub(super) async fn challenge(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    crate::http::ClientIp(ip): crate::http::ClientIp,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, OAuthError> {
    let client = client_auth::authenticate(&state, &tenant, &params, &ip)?;
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
    let languages = crate::http::accept_languages(&headers);
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let started = mfa::challenge(
        &state,
        &tenant,
        client,
        token,
        &types,
        params.str("authenticator_id")?,
        &languages,
        &mfa::Requester {
            host: &host,
            ip: &ip,
            user_agent,
        },
    )
    .await
    .map_err(super::error::mfa_error)?;
    let body = match started {
        mfa::Challenge::Otp => json!({ "challenge_type": "otp" }),
        mfa::Challenge::Oob { oob_code, .. } => json!({
            "challenge_type": "oob",
            "oob_code": oob_code,
            "binding_method": "prompt",
        }),
        // As Auth0 answers a Guardian push; the number the login shows
        // with number matching (docs/push-notifications.md).
        mfa::Challenge::Push {
            oob_code,
            binding_code,
        } => {
            let mut body = json!({ "challenge_type": "oob", "oob_code": oob_code });
            if let Some(code) = binding_code {
                body["latchkey_binding_code"] = json!(code);
            }
            body
        }
    };
    Ok(Json(body).into_response())
}

/// A parameter that is a list: a JSON array of strings, or (form bodies) one
/// string of space- or comma-separated values.
fn list(params: &Params, key: &str) -> Result<Vec<String>, OAuthError> {
    let bad = || OAuthError::InvalidRequest(format!("Parameter '{key}' must be a list of strings"));
    let values: Vec<String> = match params.value(key) {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) => s
            .split([' ', ','])
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad()),
    };
    if values.len() > 8 || values.iter().any(|v| v.len() > 32) {
        return Err(bad());
    }
    Ok(values)
}

/// The client an association names, if it names one (`client_id`, with
/// its secret if it has one); else none, and the credential's own is used.
fn named_client<'t>(
    state: &SharedState,
    tenant: &'t latchkey_core::tenant::Tenant,
    params: &Params,
    ip: &str,
) -> Result<Option<&'t latchkey_core::tenant::Client>, OAuthError> {
    let names_one = params.basic.is_some()
        || params.str("client_id")?.is_some()
        || params.str("client_secret")?.is_some();
    if !names_one {
        return Ok(None);
    }
    client_auth::authenticate(state, tenant, params, ip).map(Some)
}

/// `POST /mfa/associate`: the `mfa_token` (bearer) of a user without a
/// second factor enrolls one (the client: the token's, unless one is named) — `authenticator_types: ["otp"]`, or `["oob"]`
/// with `oob_channels` `sms`/`voice` (and `phone_number`) or `email` (and
/// `email`, else the user's address) or `auth0` (a push device, which
/// enrolls with the `barcode_uri`). Confirmed with the mfa-otp or mfa-oob
/// grant and the same token.
pub(super) async fn associate(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    crate::http::ClientIp(ip): crate::http::ClientIp,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, OAuthError> {
    let token = bearer(&headers)
        .ok_or_else(|| OAuthError::InvalidToken("Missing mfa_token as bearer token".into()))?;
    let named = named_client(&state, &tenant, &params, &ip)?;
    let caller = api::caller(&state, &tenant, &host, token, api::Operation::Enroll)
        .await
        .map_err(|e| match e {
            // An unknown mfa_token is answered as the grants answer it.
            api::CallerError::Invalid(_) if !token.contains('.') => {
                super::error::mfa_error(MfaError::BadToken)
            }
            e => super::error::mfa_caller_error(e),
        })?;
    let client =
        mfa::associating_client(&tenant, &caller, named).map_err(super::error::mfa_error)?;
    let types = list(&params, "authenticator_types")?;
    let channels = list(&params, "oob_channels")?;
    let what = match types
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["otp"] => mfa::Associate::Otp,
        ["oob"] => match channels
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            [c] if *c == mfa::PUSH_CHANNEL => mfa::Associate::Push,
            [c @ ("sms" | "voice")] => mfa::Associate::Phone {
                number: params.required("phone_number")?.to_string(),
                voice: *c == "voice",
            },
            ["email"] => mfa::Associate::Email {
                address: params.str("email")?.map(str::to_string),
            },
            _ => {
                return Err(OAuthError::InvalidRequest(
                    "oob_channels must be one of [\"sms\"], [\"voice\"], [\"email\"] or [\"auth0\"]"
                        .into(),
                ));
            }
        },
        _ => {
            return Err(OAuthError::InvalidRequest(
                "authenticator_types must be [\"otp\"] or [\"oob\"]".into(),
            ));
        }
    };
    let languages = crate::http::accept_languages(&headers);
    let ua = crate::http::user_agent(&headers);
    let done = mfa::associate(
        &state, &tenant, &host, client, &caller, token, what, &ua, &languages,
    )
    .await;
    let a = match done {
        Ok(a) => a,
        Err(mfa::AssociateError::AlreadyEnrolled) => {
            return Err(OAuthError::AccessDenied("User is already enrolled.".into()));
        }
        Err(mfa::AssociateError::Mfa(e)) => return Err(super::error::mfa_error(e)),
        Err(mfa::AssociateError::Enroll(e)) => return Err(enroll_error(e)),
    };
    let mut body = json!({ "authenticator_type": a.authenticator_type });
    if let Some(s) = a.secret {
        body["secret"] = json!(s);
    }
    if let Some(b) = a.barcode_uri {
        body["barcode_uri"] = json!(b);
    }
    if let Some(c) = a.oob_channel {
        body["oob_channel"] = json!(c);
        body["binding_method"] = json!("prompt");
    }
    if let Some(c) = a.oob_code {
        body["oob_code"] = json!(c);
    }
    if !a.recovery_codes.is_empty() {
        body["recovery_codes"] = json!(a.recovery_codes);
    }
    let mut res = Json(body).into_response();
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

fn enroll_error(e: latchkey_core::services::enrollment::EnrollError) -> OAuthError {
    use latchkey_core::services::enrollment::EnrollError;
    match e {
        EnrollError::Store(s) => s.into(),
        EnrollError::Throttled(seconds) => OAuthError::TooManyRequests(seconds),
        EnrollError::Delivery(m) => {
            OAuthError::InvalidRequest(format!("The code could not be sent: {m}"))
        }
        EnrollError::Internal(m) => OAuthError::Internal(m),
        EnrollError::Field { pointer, detail } => {
            OAuthError::InvalidRequest(format!("{}: {detail}", pointer.trim_start_matches('/')))
        }
        EnrollError::Invalid(m) => OAuthError::InvalidRequest(m),
        e @ (EnrollError::Wrong { .. } | EnrollError::TooManyMethods(_)) => {
            OAuthError::InvalidRequest(e.to_string())
        }
    }
}
