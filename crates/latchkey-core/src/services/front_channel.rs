//! The tokens the authorization endpoint itself issues, for a response type
//! with `token` or `id_token` (the implicit and hybrid flows): what the user
//! is granted, and the access token and ID token sent back through the
//! browser. Never a refresh token; the ID token carries the request's
//! `nonce`, and `at_hash`/`c_hash` for the access token and code beside it.

use super::authorize::AuthorizeRequest;
use super::login_flow::FlowError;
use super::policy::{self, Granted, PolicyError};
use super::tokens::{self, Refresh, TokenError, UserTokens};
use crate::clock::Timestamp;
use crate::context::Core;
use crate::store::UserRow;
use crate::tenant::{Client, Tenant, issuer_for_host};

/// What `user` is granted for `req` today, without `offline_access` (no
/// refresh token leaves the authorization endpoint); an error for the
/// client when nothing may be granted.
pub(crate) fn granted(
    tenant: &Tenant,
    host: &str,
    client: &Client,
    user: &UserRow,
    req: &AuthorizeRequest,
) -> Result<Granted, (&'static str, String)> {
    let roles: Vec<String> = user
        .profile
        .get("roles")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default();
    let permissions = |aud: &str| policy::role_permissions(tenant, &roles, aud);
    let requested: Vec<String> = req
        .scope
        .iter()
        .filter(|s| *s != "offline_access")
        .cloned()
        .collect();
    policy::user_grant(
        tenant,
        host,
        &client.client_id,
        req.audience.as_deref(),
        &requested,
        &permissions,
    )
    .map_err(|e| match e {
        PolicyError::Denied(d) => ("access_denied", d),
        PolicyError::Unauthorized(d) => ("unauthorized_client", d),
    })
}

/// Everything the authorization endpoint's tokens are made of.
pub(crate) struct Issue<'a> {
    pub tenant: &'a Tenant,
    pub host: &'a str,
    pub client: &'a Client,
    pub user: &'a UserRow,
    pub req: &'a AuthorizeRequest,
    pub granted: &'a Granted,
    pub grant_id: &'a str,
    pub auth_time: Timestamp,
    pub amr: &'a [String],
    /// The code issued beside them, if the response type has `code`.
    pub code: Option<&'a str>,
}

/// The access token (`access_token`, `token_type`, `expires_in`, `scope`)
/// and the ID token (`id_token`) the response type asks for, as response
/// parameters.
pub(crate) async fn tokens(
    core: &Core,
    i: &Issue<'_>,
) -> Result<Vec<(&'static str, String)>, FlowError> {
    let rt = i.req.response_type;
    let key = core.keys.signing_key(&i.tenant.id).await.map_err(|e| {
        FlowError::Internal(format!(
            "no signing key for the authorization response: {e}"
        ))
    })?;
    let t = UserTokens {
        tenant: i.tenant,
        host: i.host,
        client: i.client,
        user: i.user,
        granted: i.granted,
        grant_id: i.grant_id,
        nonce: i.req.nonce.as_deref(),
        auth_time: i.auth_time,
        amr: i.amr,
        gty: None,
        refresh_expires_at: None,
        refresh: Refresh::None,
        dpop_jkt: None,
    };
    let now = core.clock.now();
    let issuer = issuer_for_host(i.host);
    let mut answer = Vec::new();
    let access_token = if rt.token {
        let at = tokens::sign_access_token(core, &key, &t, &issuer, now).map_err(failed)?;
        answer.push(("access_token", at.clone()));
        answer.push(("token_type", "Bearer".to_string()));
        answer.push(("expires_in", i.granted.lifetime.to_string()));
        answer.push(("scope", i.granted.scope_string()));
        Some(at)
    } else {
        None
    };
    if rt.id_token {
        let id = tokens::sign_id_token(&key, &t, &issuer, now, access_token.as_deref(), i.code)
            .map_err(failed)?;
        answer.push(("id_token", id));
    }
    Ok(answer)
}

fn failed(e: TokenError) -> FlowError {
    match e {
        TokenError::Store(s) => FlowError::Store(s),
        e => FlowError::Internal(format!("signing the authorization response: {e}")),
    }
}
