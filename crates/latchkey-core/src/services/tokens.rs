//! Minting and checking tokens: JWT access tokens, OpenID Connect ID tokens,
//! and opaque refresh tokens (stored as digests, rotated on every use).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::policy::Granted;
use crate::clock::Timestamp;
use crate::context::Core;
use crate::crypto::hash::{half_hash_b64url, secret_digest};
use crate::crypto::jws::SigningKey;
use crate::rng::RngExt;
use crate::services::keys::KeyError;
use crate::store::{RefreshTokenRow, StoreError, UserRow};
use crate::tenant::{Client, Tenant, TokenEndpointAuthMethod, issuer_for_host};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing failed")]
    Sign,
}

/// What `/oauth/token` answers on success.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub expires_in: i64,
    pub token_type: &'static str,
    /// What a token exchange issued (RFC 8693), e.g. the Token Vault's
    /// upstream access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// A new recovery code, after the old one was used (shown once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
    /// The user the tokens are for (the tenant log's), never sent.
    #[serde(skip)]
    pub user_id: Option<String>,
}

/// Everything needed to issue tokens for a user after an authentication.
pub(crate) struct UserTokens<'a> {
    pub tenant: &'a Tenant,
    pub host: &'a str,
    pub client: &'a Client,
    pub user: &'a UserRow,
    pub granted: &'a Granted,
    pub grant_id: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: Timestamp,
    pub amr: &'a [String],
    /// Grant type recorded in the `gty` claim (Auth0 sets it for ROPG).
    pub gty: Option<&'a str>,
    /// The refresh token's absolute expiry carried over on rotation.
    pub refresh_expires_at: Option<Timestamp>,
    /// Whether the answer carries a refresh token, and who stores it.
    pub refresh: Refresh,
    /// The thumbprint of the DPoP key the request proved: the access token
    /// is bound to it (`cnf.jkt`), and a public client's refresh token too.
    pub dpop_jkt: Option<&'a str>,
}

/// The refresh token of an answer.
pub enum Refresh {
    /// None (no `offline_access`; a refresh grant without rotation).
    None,
    /// A new one, minted and stored by [`issue_user_tokens`].
    New,
    /// One the caller minted with [`mint_refresh_token`] and stored: a
    /// rotation stores the successor in the same step that spends the token.
    Stored(String),
}

/// A new refresh token for these tokens' grant, and the row to store under
/// its digest.
pub(crate) fn mint_refresh_token(
    state: &Core,
    t: &UserTokens<'_>,
    now: Timestamp,
) -> (String, RefreshTokenRow) {
    let rt = &t.client.refresh_token;
    let row = RefreshTokenRow {
        grant_id: t.grant_id.to_string(),
        client_id: t.client.client_id.clone(),
        user_id: t.user.user_id.clone(),
        scope: t.granted.scope_string(),
        audience: t.granted.audience.clone(),
        auth_time: t.auth_time,
        amr: t.amr.to_vec(),
        created_at: now,
        expires_at: t
            .refresh_expires_at
            .unwrap_or(now + i64::from(rt.token_lifetime)),
        idle_expires_at: now + i64::from(rt.idle_token_lifetime),
        rotated_at: None,
        // RFC 9449 §5: a public client's refresh token is bound to its
        // key; a confidential client's is bound by client authentication.
        dpop_jkt: t
            .dpop_jkt
            .filter(|_| t.client.auth_method() == TokenEndpointAuthMethod::None)
            .map(str::to_string),
        host: Some(t.host.to_string()),
    };
    (state.rng.token(32), row)
}

fn aud_claim(issuer: &str, granted: &Granted) -> Value {
    let userinfo = format!("{issuer}userinfo");
    match &granted.audience {
        Some(a) if granted.has("openid") => json!([a, userinfo]),
        Some(a) => json!(a),
        None => json!(userinfo),
    }
}

fn jti(state: &Core, grant_id: &str) -> String {
    // The grant ID is part of the token ID so a resource server can check
    // with one lookup whether the grant was revoked (code replay, family reuse).
    format!("{grant_id}.{}", state.rng.token(12))
}

/// The grant an access token belongs to, if it was issued to a user.
pub(crate) fn grant_of_jti(jti: &str) -> Option<&str> {
    jti.split_once('.').map(|(g, _)| g)
}

/// Whether a code or refresh token minted on `minted_on` (`None`: before
/// tokens knew their host, so the tenant's canonical host) may be used on
/// `host`: only where it was minted, as tokens minted there carry that
/// host's issuer.
pub(crate) fn minted_here(tenant: &Tenant, minted_on: Option<&str>, host: &str) -> bool {
    match minted_on {
        Some(h) => h == host,
        None => tenant.config.canonical_domain().eq_ignore_ascii_case(host),
    }
}

pub(crate) async fn issue_user_tokens(
    state: &Core,
    t: UserTokens<'_>,
) -> Result<TokenResponse, TokenError> {
    let key = state.keys.signing_key(&t.tenant.id).await?;
    sign_user_tokens(state, &key, t).await
}

/// [`issue_user_tokens`] with a signing key loaded beforehand: a grant that
/// spends a code or a refresh token loads it before spending, so that what
/// remains after the spend cannot fail for want of the database.
pub(crate) async fn sign_user_tokens(
    state: &Core,
    key: &SigningKey,
    t: UserTokens<'_>,
) -> Result<TokenResponse, TokenError> {
    let now = state.clock.now();
    let issuer = issuer_for_host(t.host);
    let access_token = sign_access_token(state, key, &t, &issuer, now)?;
    let id_token = if t.granted.has("openid") {
        Some(sign_id_token(
            key,
            &t,
            &issuer,
            now,
            Some(&access_token),
            None,
        )?)
    } else {
        None
    };

    let refresh_token = match &t.refresh {
        Refresh::None => None,
        Refresh::New => {
            let (token, row) = mint_refresh_token(state, &t, now);
            state
                .store
                .create_refresh_token(&t.tenant.id, &secret_digest(&token), &row)
                .await?;
            Some(token)
        }
        Refresh::Stored(token) => Some(token.clone()),
    };

    Ok(TokenResponse {
        access_token,
        refresh_token,
        id_token,
        scope: t.granted.scope_string(),
        expires_in: t.granted.lifetime,
        token_type: token_type(t.dpop_jkt),
        issued_token_type: None,
        recovery_code: None,
        user_id: Some(t.user.user_id.clone()),
    })
}

/// The user's access token (`t.dpop_jkt`: bound to that key).
pub(crate) fn sign_access_token(
    state: &Core,
    key: &SigningKey,
    t: &UserTokens<'_>,
    issuer: &str,
    now: Timestamp,
) -> Result<String, TokenError> {
    let mut at = json!({
        "iss": issuer,
        "sub": t.user.user_id,
        "aud": aud_claim(issuer, t.granted),
        "iat": now,
        "exp": now + t.granted.lifetime,
        "scope": t.granted.scope_string(),
        "azp": t.client.client_id,
        "jti": jti(state, t.grant_id),
    });
    if let (Some(gty), Some(obj)) = (t.gty, at.as_object_mut()) {
        obj.insert("gty".into(), json!(gty));
    }
    // How the user authenticated (RFC 8176 values: pwd, otp, mfa, …).
    if let (false, Some(obj)) = (t.amr.is_empty(), at.as_object_mut()) {
        obj.insert("amr".into(), json!(t.amr));
    }
    if let (Some(jkt), Some(obj)) = (t.dpop_jkt, at.as_object_mut()) {
        obj.insert("cnf".into(), json!({ "jkt": jkt }));
    }
    key.sign("JWT", &at).map_err(|_| TokenError::Sign)
}

/// The user's ID token; `at_hash` for the access token and `c_hash` for
/// the code it is issued with (OpenID Connect Core 3.3.2.11), if any.
pub(crate) fn sign_id_token(
    key: &SigningKey,
    t: &UserTokens<'_>,
    issuer: &str,
    now: Timestamp,
    access_token: Option<&str>,
    code: Option<&str>,
) -> Result<String, TokenError> {
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(issuer));
    claims.insert("sub".into(), json!(t.user.user_id));
    claims.insert("aud".into(), json!(t.client.client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert(
        "exp".into(),
        json!(now + i64::from(t.client.jwt_configuration.lifetime_in_seconds)),
    );
    claims.insert("auth_time".into(), json!(t.auth_time));
    claims.insert("azp".into(), json!(t.client.client_id));
    if let Some(at) = access_token {
        claims.insert("at_hash".into(), json!(half_hash_b64url(at.as_bytes())));
    }
    if let Some(code) = code {
        claims.insert("c_hash".into(), json!(half_hash_b64url(code.as_bytes())));
    }
    claims.insert("sid".into(), json!(t.grant_id));
    if !t.amr.is_empty() {
        claims.insert("amr".into(), json!(t.amr));
    }
    if crate::services::mfa::multi_factor(t.amr) {
        claims.insert("acr".into(), json!(crate::services::mfa::MULTI_FACTOR));
    }
    if let Some(n) = t.nonce {
        claims.insert("nonce".into(), json!(n));
    }
    profile_claims(&mut claims, t.user, &t.granted.scopes);
    key.sign("JWT", &Value::Object(claims))
        .map_err(|_| TokenError::Sign)
}

/// The OpenID Connect standard claims a user has, filtered by scope.
pub fn profile_claims(claims: &mut Map<String, Value>, user: &UserRow, scopes: &[String]) {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    if has("profile") {
        for k in ["name", "given_name", "family_name", "nickname", "picture"] {
            if let Some(v) = user.profile.get(k).filter(|v| !v.is_null()) {
                claims.insert(k.into(), v.clone());
            }
        }
        if !claims.contains_key("name") {
            claims.insert("name".into(), json!(user.email));
        }
        if !claims.contains_key("nickname") {
            let nick = user.email.split('@').next().unwrap_or_default();
            claims.insert("nickname".into(), json!(nick));
        }
        claims.insert(
            "updated_at".into(),
            json!(crate::clock::rfc3339(user.updated_at)),
        );
    }
    if has("email") {
        claims.insert("email".into(), json!(user.email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
}

/// `DPoP` for a token bound to a key, else `Bearer`.
fn token_type(dpop_jkt: Option<&str>) -> &'static str {
    if dpop_jkt.is_some() { "DPoP" } else { "Bearer" }
}

/// A client-credentials access token.
pub(crate) async fn issue_client_token(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    client: &Client,
    granted: &Granted,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, TokenError> {
    let now = state.clock.now();
    let issuer = issuer_for_host(host);
    let key = state.keys.signing_key(&tenant.id).await?;
    let mut claims = json!({
        "iss": issuer,
        "sub": format!("{}@clients", client.client_id),
        "aud": granted.audience,
        "iat": now,
        "exp": now + granted.lifetime,
        "scope": granted.scope_string(),
        "azp": client.client_id,
        "gty": "client-credentials",
        "jti": state.rng.token(16),
    });
    if let Some(jkt) = dpop_jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    let access_token = key.sign("JWT", &claims).map_err(|_| TokenError::Sign)?;
    Ok(TokenResponse {
        access_token,
        refresh_token: None,
        id_token: None,
        scope: granted.scope_string(),
        expires_in: granted.lifetime,
        token_type: token_type(dpop_jkt),
        issued_token_type: None,
        recovery_code: None,
        user_id: None,
    })
}

/// A verified access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub claims: Arc<Map<String, Value>>,
    pub sub: String,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessTokenError {
    #[error("the token is malformed or its signature is invalid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued for another host")]
    WrongIssuer,
    #[error("the token has been revoked")]
    Revoked,
    #[error("the database is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

fn store_failure(e: &StoreError) -> AccessTokenError {
    if e.is_unavailable() {
        AccessTokenError::Unavailable
    } else {
        AccessTokenError::Internal
    }
}

/// Leeway for clock skew between nodes, in seconds.
pub(crate) const LEEWAY: i64 = 30;

/// Verifies an access token presented on `host`: signature by this tenant's
/// keys, issuer of this host, expiry, and that its grant is not revoked.
pub async fn verify_access_token(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    token: &str,
) -> Result<AccessToken, AccessTokenError> {
    let claims = state
        .keys
        .verify_token(&tenant.id, token, max_token_lifetime(tenant))
        .await
        .map_err(|e| match &e {
            KeyError::Store(s) => store_failure(s),
            KeyError::Invalid => AccessTokenError::Invalid,
            _ => AccessTokenError::Internal,
        })?;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer_for_host(host).as_str()) {
        return Err(AccessTokenError::WrongIssuer);
    }
    let now = state.clock.now();
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(AccessTokenError::Invalid)?;
    if exp + LEEWAY <= now {
        return Err(AccessTokenError::Expired);
    }
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or(AccessTokenError::Invalid)?
        .to_string();
    let audiences = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    let scopes = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    // A token of a client deleted since (through the Management API, or by
    // a tenant file without it) is no longer good anywhere.
    if let Some(azp) = claims.get("azp").and_then(Value::as_str)
        && tenant.client(azp).is_none()
    {
        return Err(AccessTokenError::Revoked);
    }
    if claims.get("gty").and_then(Value::as_str) != Some("client-credentials") {
        let grant = claims
            .get("jti")
            .and_then(Value::as_str)
            .and_then(grant_of_jti)
            .ok_or(AccessTokenError::Invalid)?;
        if state
            .store
            .grant_revoked(&tenant.id, grant)
            .await
            .map_err(|e| store_failure(&e))?
        {
            return Err(AccessTokenError::Revoked);
        }
    }
    Ok(AccessToken {
        claims,
        sub,
        scopes,
        audiences,
    })
}

/// The longest any token of this tenant lives: how long a superseded key
/// stays published.
pub fn max_token_lifetime(tenant: &Tenant) -> i64 {
    let c = &tenant.config;
    let apis = c
        .resource_servers
        .iter()
        .map(|r| i64::from(r.token_lifetime))
        .chain([
            i64::from(c.my_account_api.token_lifetime),
            i64::from(c.management_api.token_lifetime),
            86_400,
        ]);
    let ids = c
        .clients
        .iter()
        .map(|cl| i64::from(cl.jwt_configuration.lifetime_in_seconds));
    apis.chain(ids).max().unwrap_or(86_400) + LEEWAY
}
