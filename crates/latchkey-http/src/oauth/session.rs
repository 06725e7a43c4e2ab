//! `/userinfo`, `/oauth/revoke`, and logout (`/v2/logout`, `/oidc/logout`).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::client_auth;
use super::error::OAuthError;
use super::wire::{LogoutQuery, OAuthTenant, Params};
use crate::app::SharedState;
use crate::http::cookies;
use latchkey_core::services::login_flow;
use latchkey_core::services::revocation::{self, Revocation};
use latchkey_core::services::tokens::{self, AccessTokenError, profile_claims};
use latchkey_core::tenant::issuer_for_host;

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

pub(super) async fn userinfo(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let (scheme, token) = match latchkey_core::services::dpop::authorization(&headers) {
        Some(Ok(found)) => found,
        _ => return Err(OAuthError::InvalidToken("Missing bearer token".into())),
    };
    let at = match tokens::verify_access_token(&state, &tenant, &host, token).await {
        Ok(at) => at,
        Err(AccessTokenError::Internal) => return Err(OAuthError::internal("verifying a token")),
        Err(AccessTokenError::Unavailable) => {
            return Err(OAuthError::Unavailable("verifying a token".into()));
        }
        Err(e) => return Err(OAuthError::InvalidToken(e.to_string())),
    };
    let request = latchkey_core::services::dpop::Request {
        host: &host,
        method: method.as_str(),
        path: "/userinfo",
        headers: &headers,
    };
    latchkey_core::services::dpop::check_binding(
        &state, &tenant, &request, scheme, token, &at.claims,
    )
    .map_err(OAuthError::DpopChallenge)?;
    let userinfo_aud = format!("{}userinfo", issuer_for_host(&host));
    if !at.audiences.contains(&userinfo_aud) || !at.scopes.iter().any(|s| s == "openid") {
        return Err(OAuthError::InvalidToken(
            "The token is not valid for /userinfo (it needs the openid scope)".into(),
        ));
    }
    let user = login_flow::active_user(&state, &tenant, &at.sub)
        .await?
        .ok_or_else(|| OAuthError::InvalidToken("The user no longer exists".into()))?;
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.user_id));
    profile_claims(&mut claims, &user, &at.scopes);
    Ok(Json(Value::Object(claims)).into_response())
}

/// RFC 7009: revoking a refresh token revokes its whole grant (every token
/// of that family, and the access tokens it produced). Unknown tokens are
/// not an error.
pub(super) async fn revoke(
    State(state): State<SharedState>,
    OAuthTenant { tenant, .. }: OAuthTenant,
    crate::http::ClientIp(ip): crate::http::ClientIp,
    params: Params,
) -> Result<Response, OAuthError> {
    let client = client_auth::authenticate(&state, &tenant, &params, &ip)?;
    let token = params.required("token")?;
    match revocation::revoke_refresh_token(&state, &tenant, token, &client.client_id).await? {
        Revocation::Revoked | Revocation::Unknown => Ok(StatusCode::OK.into_response()),
        Revocation::OtherClient => Err(OAuthError::InvalidRequest(
            "The token was not issued to this client".into(),
        )),
    }
}

/// Ends the login session and sends the browser to an allowed URL.
#[allow(clippy::too_many_arguments)]
async fn end_session(
    state: &SharedState,
    tenant: &latchkey_core::tenant::Tenant,
    host: &str,
    ip: &str,
    headers: &HeaderMap,
    client_id: Option<&str>,
    return_to: Option<String>,
    state_param: Option<&str>,
) -> Response {
    let allowed = |url: &str| match client_id.and_then(|id| tenant.client(id)) {
        Some(c) => c.allowed_logout_urls.iter().any(|u| u == url),
        None if client_id.is_some() => false,
        None => tenant
            .config
            .clients
            .iter()
            .any(|c| c.allowed_logout_urls.iter().any(|u| u == url)),
    };
    if let Some(url) = &return_to
        && !allowed(url)
    {
        let html = state.templates.render_error(
            Some(tenant),
            "The returnTo URL is not among this application's Allowed Logout URLs.",
        );
        return (StatusCode::BAD_REQUEST, Html(html)).into_response();
    }
    if let Some(raw) = cookies::get(headers, cookies::SESSION)
        && let Err(e) = login_flow::end_session(
            state,
            tenant,
            &raw,
            &login_flow::Logout {
                client_id,
                ip,
                user_agent: &crate::http::user_agent(headers),
            },
        )
        .await
    {
        return crate::pages::store_error(state, tenant, e);
    }
    let mut res = match return_to {
        Some(url) => {
            let target = match state_param {
                Some(s) => {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    let q = serde_urlencoded::to_string([("state", s)]).unwrap_or_default();
                    format!("{url}{sep}{q}")
                }
                None => url,
            };
            crate::http::found(&target)
        }
        None => Html(state.templates.render_logged_out(tenant)).into_response(),
    };
    res.headers_mut()
        .append(header::SET_COOKIE, cookies::clear(host, cookies::SESSION));
    res
}

pub(super) async fn logout(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    crate::http::ClientIp(ip): crate::http::ClientIp,
    headers: HeaderMap,
    query: Result<Query<LogoutQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    end_session(
        &state,
        &tenant,
        &host,
        &ip,
        &headers,
        q.client_id.as_deref(),
        q.return_to,
        None,
    )
    .await
}

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct OidcLogoutQuery {
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    id_token_hint: Option<String>,
}

/// OpenID Connect RP-initiated logout.
pub(super) async fn oidc_logout(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    crate::http::ClientIp(ip): crate::http::ClientIp,
    headers: HeaderMap,
    query: Result<Query<OidcLogoutQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    // The client may be named by the ID token's audience instead.
    let hinted = q.id_token_hint.as_deref().and_then(|t| {
        let payload = t.split('.').nth(1)?;
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .ok()?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        v.get("aud").and_then(Value::as_str).map(String::from)
    });
    let client_id = q.client_id.or(hinted);
    let return_to = q.post_logout_redirect_uri;
    if client_id.is_none() && return_to.is_some() {
        let html = state.templates.render_error(
            Some(&tenant),
            "post_logout_redirect_uri needs client_id or id_token_hint.",
        );
        return (StatusCode::BAD_REQUEST, Html(html)).into_response();
    }
    end_session(
        &state,
        &tenant,
        &host,
        &ip,
        &headers,
        client_id.as_deref(),
        return_to,
        q.state.as_deref(),
    )
    .await
}
