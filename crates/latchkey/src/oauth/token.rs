//! `POST /oauth/token`: one function per grant type, dispatched explicitly.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::client_auth;
use super::error::OAuthError;
use super::wire::{OAuthTenant, Params};
use crate::app::SharedState;
use crate::clock::Timestamp;
use crate::crypto::hash::{constant_time_eq, secret_digest, sha256_b64url};
use crate::http::ClientIp;
use crate::services::dpop;
use crate::services::login::{self, LoginError, PasswordLogin};
use crate::services::mfa;
use crate::services::policy::{self, Granted, split_scope};
use crate::services::tokens::{self, Refresh, TokenResponse, UserTokens};
use crate::store::{Redeem, UserRow};
use crate::tenant::{Client, GrantType, RotationType, Tenant};

pub const PASSWORD_REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";
pub const WEBAUTHN: &str = "urn:okta:params:oauth:grant-type:webauthn";
pub const MFA_OTP: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
pub const MFA_RECOVERY_CODE: &str = "http://auth0.com/oauth/grant-type/mfa-recovery-code";
pub const MFA_OOB: &str = "http://auth0.com/oauth/grant-type/mfa-oob";

/// What an authorization code stands for, stored (as JSON) under its digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRequest {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub requested_scope: Vec<String>,
    pub audience: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
    /// `dpop_jkt` of the authorization request: the code is bound to that
    /// key (RFC 9449 §10).
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    /// The host the code was issued on: it is exchanged there only (tokens
    /// minted there carry that host's issuer). Absent in codes issued
    /// before codes knew their host: the tenant's canonical host.
    #[serde(default)]
    pub host: Option<String>,
}

pub async fn token(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: axum::http::HeaderMap,
    params: Params,
) -> Result<Response, OAuthError> {
    let user_agent = crate::http::user_agent(&headers);
    let grant_type = params.required("grant_type")?.to_string();
    let client = client_auth::authenticate(&state, &tenant, &params, &ip)?;
    let dpop = proof_of_possession(&state, &tenant, &host, &headers)?;
    if client.require_proof_of_possession && dpop.is_none() {
        return Err(OAuthError::InvalidRequest(
            "This client must send a DPoP proof (require_proof_of_possession)".into(),
        ));
    }
    let user_ip = relayed_ip(client, &headers)?.unwrap_or_else(|| ip.clone());
    let ctx = Ctx {
        state: &state,
        tenant: &tenant,
        host: &host,
        client,
        params: &params,
        ip: &ip,
        user_agent: &user_agent,
        dpop_jkt: dpop.as_deref(),
    };
    let response = match grant_type.as_str() {
        "authorization_code" => ctx.authorization_code().await?,
        "refresh_token" => ctx.refresh_token().await?,
        "password" => ctx.password(None, &user_ip).await?,
        PASSWORD_REALM => {
            ctx.password(Some(params.required("realm")?), &user_ip)
                .await?
        }
        "client_credentials" => ctx.client_credentials().await?,
        WEBAUTHN => ctx.webauthn().await?,
        MFA_OTP => ctx.mfa_otp().await?,
        MFA_RECOVERY_CODE => ctx.mfa_recovery_code().await?,
        MFA_OOB => ctx.mfa_oob().await?,
        other => {
            return Err(OAuthError::UnsupportedGrantType(format!(
                "Unsupported grant type: {}",
                other.chars().take(100).collect::<String>()
            )));
        }
    };
    let mut res = Json(response).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if tenant.config.dpop.require_nonce
        && let Ok(v) = HeaderValue::from_str(&dpop::current_nonce(&state, &tenant))
    {
        res.headers_mut().insert("dpop-nonce", v);
    }
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(res)
}

/// The end user's IP that a confidential client relays in Auth0's
/// `auth0-forwarded-for` header, when the client is trusted to
/// (`token_endpoint_ip_header_trusted`) and has authenticated with its
/// secret: brute-force protection and Suspicious IP Throttling of its
/// password grants count that IP instead of the client's own. From any other
/// client the header is ignored.
fn relayed_ip(
    client: &Client,
    headers: &axum::http::HeaderMap,
) -> Result<Option<String>, OAuthError> {
    use crate::tenant::TokenEndpointAuthMethod;
    if !client.token_endpoint_ip_header_trusted
        || client.auth_method() == TokenEndpointAuthMethod::None
    {
        return Ok(None);
    }
    let mut values = headers.get_all("auth0-forwarded-for").iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    let ip = first
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
        .filter(|_| values.next().is_none())
        .ok_or_else(|| {
            OAuthError::InvalidRequest("auth0-forwarded-for must be one IP address".into())
        })?;
    Ok(Some(ip.to_canonical().to_string()))
}

/// The request's `DPoP` proof, checked for `POST /oauth/token` on this
/// host: the thumbprint of its key, or None without one.
fn proof_of_possession(
    state: &crate::app::AppState,
    tenant: &Tenant,
    host: &str,
    headers: &axum::http::HeaderMap,
) -> Result<Option<String>, OAuthError> {
    let mut proofs = headers.get_all("dpop").iter();
    let Some(first) = proofs.next() else {
        return Ok(None);
    };
    if proofs.next().is_some() {
        return Err(OAuthError::InvalidDpopProof(
            "Only one DPoP header is allowed".into(),
        ));
    }
    let proof = first
        .to_str()
        .map_err(|_| OAuthError::InvalidDpopProof("The DPoP header is not text".into()))?;
    let url = format!("{}oauth/token", crate::tenant::issuer_for_host(host));
    match dpop::check(state, tenant, proof, "POST", &url, None) {
        Ok(p) => Ok(Some(p.jkt)),
        Err(dpop::DpopError::Invalid(m)) => Err(OAuthError::InvalidDpopProof(m)),
        Err(dpop::DpopError::UseNonce(n)) => Err(OAuthError::UseDpopNonce(n)),
    }
}

struct Ctx<'a> {
    state: &'a SharedState,
    tenant: &'a Tenant,
    host: &'a str,
    client: &'a Client,
    params: &'a Params,
    ip: &'a str,
    user_agent: &'a str,
    /// The key a valid `DPoP` proof came with: tokens are bound to it.
    dpop_jkt: Option<&'a str>,
}

impl Ctx<'_> {
    /// A `what` bound to a DPoP key (`bound`) is only usable with a proof by
    /// that key.
    fn proved_key(&self, bound: Option<&str>, what: &str) -> Result<(), OAuthError> {
        let Some(bound) = bound else {
            return Ok(());
        };
        match self.dpop_jkt {
            Some(jkt) if constant_time_eq(jkt.as_bytes(), bound.as_bytes()) => Ok(()),
            Some(_) => Err(OAuthError::InvalidDpopProof(format!(
                "The {what} is bound to another DPoP key"
            ))),
            None => Err(OAuthError::InvalidDpopProof(format!(
                "The {what} is bound to a DPoP key: send a proof by it"
            ))),
        }
    }

    fn require_grant_type(&self, gt: GrantType) -> Result<(), OAuthError> {
        if self.client.grant_types.contains(&gt) {
            Ok(())
        } else {
            Err(OAuthError::UnauthorizedClient(format!(
                "Grant type '{}' not allowed for the client.",
                gt.as_str()
            )))
        }
    }

    async fn user(&self, user_id: &str) -> Result<UserRow, OAuthError> {
        active_user(
            self.state
                .store
                .user_by_id(&self.tenant.id, user_id)
                .await?,
        )
    }

    fn permissions(&self, user: &UserRow) -> impl Fn(&str) -> Vec<String> + '_ {
        let roles: Vec<String> = user
            .profile
            .get("roles")
            .and_then(|r| serde_json::from_value(r.clone()).ok())
            .unwrap_or_default();
        move |aud: &str| policy::role_permissions(self.tenant, &roles, aud)
    }

    /// A new refresh token with `offline_access`, for a client that may use it.
    fn new_refresh(&self, granted: &Granted) -> Refresh {
        if granted.has("offline_access")
            && self.client.grant_types.contains(&GrantType::RefreshToken)
        {
            Refresh::New
        } else {
            Refresh::None
        }
    }

    async fn authorization_code(&self) -> Result<TokenResponse, OAuthError> {
        self.require_grant_type(GrantType::AuthorizationCode)?;
        let code = self.params.required("code")?;
        let digest = secret_digest(code);
        let now = self.state.clock.now();
        // Read first and do all that can fail before the code is spent: a
        // code spent while the answer is an error cannot be tried again
        // (presented again, it revokes its grant).
        let read = self.state.store.code(&self.tenant.id, &digest, now).await?;
        let (grant_id, raw) = self.live_code(read, now).await?;
        let req: CodeRequest = serde_json::from_str(&raw).map_err(OAuthError::internal)?;
        let (user, granted) = match self.check_code(&req).await {
            Ok(checked) => checked,
            Err(e @ (OAuthError::Unavailable(_) | OAuthError::Internal(_))) => return Err(e),
            Err(refused) => {
                // A failed exchange spends the code, as it always has.
                let spent = self
                    .state
                    .store
                    .redeem_code(&self.tenant.id, &digest, now)
                    .await?;
                self.live_code(spent, now).await?;
                return Err(refused);
            }
        };
        let key = self.state.keys.signing_key(&self.tenant.id).await?;
        let mut answer = UserTokens {
            tenant: self.tenant,
            host: self.host,
            client: self.client,
            user: &user,
            granted: &granted,
            grant_id: &grant_id,
            nonce: req.nonce.as_deref(),
            auth_time: req.auth_time,
            amr: &req.amr,
            gty: None,
            refresh_expires_at: None,
            refresh: Refresh::None,
            dpop_jkt: self.dpop_jkt,
        };
        if let Refresh::New = self.new_refresh(&granted) {
            // Stored before the code is spent: should the spend not happen,
            // it is a token nobody was ever given.
            let (token, row) = tokens::mint_refresh_token(self.state, &answer, now);
            self.state
                .store
                .create_refresh_token(&self.tenant.id, &secret_digest(&token), &row)
                .await?;
            answer.refresh = Refresh::Stored(token);
        }
        let spent = self
            .state
            .store
            .redeem_code(&self.tenant.id, &digest, now)
            .await?;
        self.live_code(spent, now).await?;
        Ok(tokens::sign_user_tokens(self.state, &key, answer).await?)
    }

    /// A usable code (as the store found it); a used one revokes its grant.
    async fn live_code<T>(&self, found: Redeem<T>, now: Timestamp) -> Result<T, OAuthError> {
        match found {
            Redeem::Fresh(v) => Ok(v),
            Redeem::Replayed { grant_id } => {
                // A code used twice means it leaked: revoke all it produced.
                self.state
                    .store
                    .revoke_grant(&self.tenant.id, &grant_id, "authorization code reused", now)
                    .await?;
                tracing::warn!(tenant = %self.tenant.name, "authorization code replayed; grant revoked");
                Err(OAuthError::InvalidGrant(
                    "Invalid authorization code".into(),
                ))
            }
            Redeem::Missing => Err(OAuthError::InvalidGrant(
                "Invalid authorization code".into(),
            )),
        }
    }

    /// Whether this request may exchange the code `req` stands for: its
    /// client, host, redirect URI, PKCE verifier and DPoP key, and a user
    /// who may still have tokens, with what they are granted today.
    async fn check_code(&self, req: &CodeRequest) -> Result<(UserRow, Granted), OAuthError> {
        let redirect_uri = self.params.str("redirect_uri")?;
        let verifier = self.params.str("code_verifier")?;
        if req.client_id != self.client.client_id {
            return Err(OAuthError::InvalidGrant(
                "Invalid authorization code".into(),
            ));
        }
        if !tokens::minted_here(self.tenant, req.host.as_deref(), self.host) {
            return Err(OAuthError::InvalidGrant(
                "The authorization code was issued on another host of the tenant".into(),
            ));
        }
        if redirect_uri != Some(req.redirect_uri.as_str()) {
            return Err(OAuthError::InvalidGrant(
                "redirect_uri does not match the one used in the authorization request".into(),
            ));
        }
        match (&req.code_challenge, verifier) {
            (Some(challenge), Some(v)) => {
                let well_formed = (43..=128).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
                if !well_formed
                    || !constant_time_eq(
                        sha256_b64url(v.as_bytes()).as_bytes(),
                        challenge.as_bytes(),
                    )
                {
                    return Err(OAuthError::InvalidGrant(
                        "Failed to verify code verifier".into(),
                    ));
                }
            }
            (Some(_), None) => {
                return Err(OAuthError::InvalidGrant(
                    "Missing required parameter: code_verifier".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::InvalidGrant(
                    "code_verifier given, but the authorization request had no code_challenge"
                        .into(),
                ));
            }
            (None, None) => {}
        }
        self.proved_key(req.dpop_jkt.as_deref(), "authorization code")?;
        let user = self.user(&req.user_id).await?;
        let granted = policy::user_grant(
            self.tenant,
            self.host,
            &self.client.client_id,
            req.audience.as_deref(),
            &req.requested_scope,
            &self.permissions(&user),
        )?;
        Ok((user, granted))
    }

    async fn refresh_token(&self) -> Result<TokenResponse, OAuthError> {
        self.require_grant_type(GrantType::RefreshToken)?;
        let token = self.params.required("refresh_token")?;
        let now = self.state.clock.now();
        let rotate = self.client.refresh_token.rotation_type == RotationType::Rotating;
        let digest = secret_digest(token);
        // Validate against a read first, so a request that fails a check
        // does not spend a good token; spend it once everything holds.
        let leeway = i64::from(self.client.refresh_token.leeway);
        let read = self
            .state
            .store
            .refresh_token_and_user(&self.tenant.id, &digest, now, leeway)
            .await?;
        let (row, user) = self.live_refresh_token(read, now).await?;
        if row.client_id != self.client.client_id {
            return Err(OAuthError::InvalidGrant(
                "Unknown or invalid refresh token.".into(),
            ));
        }
        if !tokens::minted_here(self.tenant, row.host.as_deref(), self.host) {
            return Err(OAuthError::InvalidGrant(
                "The refresh token was issued on another host of the tenant".into(),
            ));
        }
        let user = active_user(user)?;
        let original = split_scope(Some(&row.scope));
        let requested = match self.params.str("scope")? {
            None => original.clone(),
            Some(s) => {
                let asked = split_scope(Some(s));
                if let Some(extra) = asked.iter().find(|s| !original.contains(s)) {
                    return Err(OAuthError::InvalidScope(format!(
                        "The scope '{extra}' was not granted to this refresh token"
                    )));
                }
                asked
            }
        };
        if let Some(aud) = self.params.str("audience")?
            && Some(aud) != row.audience.as_deref()
        {
            return Err(OAuthError::InvalidRequest(
                "The refresh token was not issued for this audience".into(),
            ));
        }
        // A refresh token bound to a DPoP key (public clients) needs a proof
        // from that key; checked before the token is spent.
        self.proved_key(row.dpop_jkt.as_deref(), "refresh token")?;
        if mfa::two_factor_window_passed(
            self.tenant,
            self.host,
            row.audience.as_deref(),
            row.auth_time,
            now,
        ) {
            self.default_policy_on_refresh(&row, &requested, now)
                .await?;
        }
        let granted = policy::user_grant(
            self.tenant,
            self.host,
            &self.client.client_id,
            row.audience.as_deref(),
            &requested,
            &self.permissions(&user),
        )?;
        let mut answer = UserTokens {
            tenant: self.tenant,
            host: self.host,
            client: self.client,
            user: &user,
            granted: &granted,
            grant_id: &row.grant_id,
            nonce: None,
            auth_time: row.auth_time,
            amr: &row.amr,
            gty: None,
            refresh_expires_at: Some(row.expires_at),
            refresh: Refresh::None,
            dpop_jkt: self.dpop_jkt,
        };
        // The signing key before the token is spent: once it is, nothing
        // left can fail for want of the database.
        let key = self.state.keys.signing_key(&self.tenant.id).await?;
        // Everything checked: spend the token, storing its successor in
        // the same step.
        if rotate {
            let (next, next_row) = tokens::mint_refresh_token(self.state, &answer, now);
            let successor = (secret_digest(&next), next_row);
            let spent = self
                .state
                .store
                .redeem_refresh_token(
                    &self.tenant.id,
                    &digest,
                    now,
                    Some((&successor.0, &successor.1)),
                    leeway,
                )
                .await?;
            self.live_refresh_token(spent, now).await?;
            answer.refresh = Refresh::Stored(next);
        }
        Ok(tokens::sign_user_tokens(self.state, &key, answer).await?)
    }

    /// A usable refresh token (as the store found it); a replayed one
    /// revokes its family.
    async fn live_refresh_token<T>(
        &self,
        found: Redeem<T>,
        now: Timestamp,
    ) -> Result<T, OAuthError> {
        match found {
            Redeem::Fresh(row) => Ok(row),
            Redeem::Replayed { grant_id } => {
                // A rotated token came back: someone holds a stolen copy.
                self.state
                    .store
                    .revoke_grant(&self.tenant.id, &grant_id, "refresh token reused", now)
                    .await?;
                tracing::warn!(tenant = %self.tenant.name, "refresh token reused; family revoked");
                Err(OAuthError::InvalidGrant(
                    "Unknown or invalid refresh token.".into(),
                ))
            }
            Redeem::Missing => Err(OAuthError::InvalidGrant(
                "Unknown or invalid refresh token.".into(),
            )),
        }
    }

    async fn password(&self, realm: Option<&str>, ip: &str) -> Result<TokenResponse, OAuthError> {
        match realm {
            Some(_) => self.require_grant_type(GrantType::PasswordRealm)?,
            None => self.require_grant_type(GrantType::Password)?,
        }
        let username = self.params.required("username")?;
        let password = self.params.required("password")?;
        let requested = split_scope(self.params.str("scope")?);
        let audience = self.params.str("audience")?;
        let user = match login::authenticate(
            self.state,
            PasswordLogin {
                tenant: self.tenant,
                realm,
                username,
                password,
                ip,
            },
        )
        .await
        {
            Ok(u) => u,
            Err(LoginError::WrongCredentials) => return Err(OAuthError::InvalidUserPassword),
            Err(LoginError::TooManyAttempts) => return Err(OAuthError::TooManyAttempts),
            Err(LoginError::Throttled(seconds)) => return Err(OAuthError::Throttled(seconds)),
            Err(LoginError::Busy) => return Err(OAuthError::Busy),
            Err(LoginError::Blocked) => {
                return Err(OAuthError::UnauthorizedClient("user is blocked".into()));
            }
            Err(LoginError::UnknownConnection(c)) => {
                return Err(OAuthError::InvalidRequest(format!("Unknown realm: {c}")));
            }
            Err(LoginError::Store(e)) => return Err(e.into()),
        };
        let granted = policy::user_grant(
            self.tenant,
            self.host,
            &self.client.client_id,
            audience,
            &requested,
            &self.permissions(&user),
        )?;
        let now = self.state.clock.now();
        self.second_factor_gate(&user, audience, &requested, "password", now)
            .await?;
        self.new_grant_tokens(&user, &granted, now, &["pwd".to_string()], Some("password"))
            .await
    }

    /// Native passkey sign-up or login: the answer to `/passkey/register`
    /// or `/passkey/challenge`.
    async fn webauthn(&self) -> Result<TokenResponse, OAuthError> {
        super::passkey::require_webauthn(self.client)?;
        crate::services::passkey_login::native_allowed(self.tenant, self.host)?;
        let auth_session = self.params.required("auth_session")?;
        let response =
            super::passkey::object_param(self.params, "authn_response")?.ok_or_else(|| {
                OAuthError::InvalidRequest("Missing required parameter: authn_response".into())
            })?;
        let user = crate::services::passkey_login::finish(
            self.state,
            self.tenant,
            self.host,
            self.client,
            auth_session,
            &response,
        )
        .await?;
        let requested = split_scope(self.params.str("scope")?);
        let granted = policy::user_grant(
            self.tenant,
            self.host,
            &self.client.client_id,
            self.params.str("audience")?,
            &requested,
            &self.permissions(&user),
        )?;
        let now = self.state.clock.now();
        self.new_grant_tokens(&user, &granted, now, &["webauthn".to_string()], None)
            .await
    }

    /// Answers `mfa_required` when this login needs a second factor the user
    /// has (or, under an `always` policy, must enroll).
    async fn second_factor_gate(
        &self,
        user: &UserRow,
        audience: Option<&str>,
        requested: &[String],
        gty: &str,
        now: Timestamp,
    ) -> Result<(), OAuthError> {
        if !mfa::required(self.tenant, self.host, self.client, audience) {
            return Ok(());
        }
        let methods = mfa::factors_of(self.state, self.tenant, &user.user_id).await?;
        let factors = mfa::second_factors(&methods);
        let requirements = if factors.is_empty() {
            if !mfa::always(self.tenant, self.client) {
                // The Default Policy lets a user without a factor through.
                return Ok(());
            }
            serde_json::json!({ "enroll": mfa::enrollable(self.tenant) })
        } else {
            serde_json::json!({ "challenge": mfa::challenge_types(&factors) })
        };
        let pending = mfa::Pending {
            audience: audience.map(str::to_string),
            scope: requested.to_vec(),
            amr: vec!["pwd".to_string()],
            auth_time: now,
            gty: gty.to_string(),
        };
        let mfa_token = mfa::issue_token(
            self.state,
            self.tenant,
            self.client,
            &user.user_id,
            &pending,
        )
        .await
        .map_err(mfa_error)?;
        Err(OAuthError::MfaRequired {
            mfa_token,
            requirements,
        })
    }

    /// The Default Policy's window has passed for this refresh token: a user
    /// with a factor is challenged again (`mfa_required`; the refresh token
    /// stays as it is); a user without one cannot meet the policy, and the
    /// refresh token dies with its grant.
    async fn default_policy_on_refresh(
        &self,
        row: &crate::store::RefreshTokenRow,
        requested: &[String],
        now: Timestamp,
    ) -> Result<(), OAuthError> {
        let methods = mfa::factors_of(self.state, self.tenant, &row.user_id).await?;
        let factors = mfa::second_factors(&methods);
        if factors.is_empty() {
            self.state
                .store
                .revoke_grant(
                    &self.tenant.id,
                    &row.grant_id,
                    "two-factor window passed",
                    now,
                )
                .await?;
            return Err(OAuthError::UnmetAuthenticationRequirements(
                "The My Account API requires a second factor within the last \
                 authentication window and the user has none; log in again."
                    .into(),
            ));
        }
        let pending = mfa::Pending {
            audience: row.audience.clone(),
            scope: requested.to_vec(),
            amr: row.amr.clone(),
            auth_time: row.auth_time,
            gty: "refresh_token".into(),
        };
        let mfa_token =
            mfa::issue_token(self.state, self.tenant, self.client, &row.user_id, &pending)
                .await
                .map_err(mfa_error)?;
        Err(OAuthError::MfaRequired {
            mfa_token,
            requirements: serde_json::json!({ "challenge": mfa::challenge_types(&factors) }),
        })
    }

    /// The MFA API's one-time-password grant (a TOTP code).
    async fn mfa_otp(&self) -> Result<TokenResponse, OAuthError> {
        self.require_grant_type(GrantType::MfaOtp)?;
        let token = self.params.required("mfa_token")?;
        let otp = self.params.required("otp")?;
        let answer = mfa::Answer {
            client: self.client,
            token,
            ip: self.ip,
            user_agent: self.user_agent,
            via: "mfa_api",
        };
        if let Some((user_id, pending, _)) =
            mfa::confirm_association(self.state, self.tenant, self.host, &answer, otp, None)
                .await
                .map_err(mfa_error)?
        {
            mfa::audit(self.state, self.tenant, &answer, &user_id, "otp", None).await;
            return self
                .after_second_factor(&user_id, pending, "otp", None)
                .await;
        }
        let (user_id, pending) = mfa::verify_otp(self.state, self.tenant, &answer, otp)
            .await
            .map_err(mfa_error)?;
        mfa::audit(self.state, self.tenant, &answer, &user_id, "otp", None).await;
        self.after_second_factor(&user_id, pending, "otp", None)
            .await
    }

    /// The MFA API's out-of-band grant: the code sent by email, SMS or voice
    /// call after `POST /mfa/challenge`, as `binding_code`.
    async fn mfa_oob(&self) -> Result<TokenResponse, OAuthError> {
        self.require_grant_type(GrantType::MfaOob)?;
        let token = self.params.required("mfa_token")?;
        let oob_code = self.params.required("oob_code")?;
        let binding_code = self.params.required("binding_code")?;
        let answer = mfa::Answer {
            client: self.client,
            token,
            ip: self.ip,
            user_agent: self.user_agent,
            via: "mfa_api",
        };
        if let Some((user_id, pending, channel)) = mfa::confirm_association(
            self.state,
            self.tenant,
            self.host,
            &answer,
            binding_code,
            Some(oob_code),
        )
        .await
        .map_err(mfa_error)?
        {
            mfa::audit(self.state, self.tenant, &answer, &user_id, "oob", None).await;
            return self
                .after_second_factor(&user_id, pending, channel, None)
                .await;
        }
        let (user_id, pending, channel) =
            mfa::verify_oob(self.state, self.tenant, &answer, oob_code, binding_code)
                .await
                .map_err(mfa_error)?;
        mfa::audit(self.state, self.tenant, &answer, &user_id, "oob", None).await;
        self.after_second_factor(&user_id, pending, channel, None)
            .await
    }

    /// The MFA API's recovery-code grant: the code is replaced, and the new
    /// one is in the response (`recovery_code`), to be shown once.
    async fn mfa_recovery_code(&self) -> Result<TokenResponse, OAuthError> {
        self.require_grant_type(GrantType::MfaRecoveryCode)?;
        let token = self.params.required("mfa_token")?;
        let code = self.params.required("recovery_code")?;
        let answer = mfa::Answer {
            client: self.client,
            token,
            ip: self.ip,
            user_agent: self.user_agent,
            via: "mfa_api",
        };
        let (user_id, pending, fresh) =
            mfa::verify_recovery_code(self.state, self.tenant, &answer, code)
                .await
                .map_err(mfa_error)?;
        mfa::audit(
            self.state,
            self.tenant,
            &answer,
            &user_id,
            "recovery-code",
            None,
        )
        .await;
        self.after_second_factor(&user_id, pending, "recovery-code", Some(fresh))
            .await
    }

    async fn after_second_factor(
        &self,
        user_id: &str,
        pending: mfa::Pending,
        factor: &str,
        recovery_code: Option<String>,
    ) -> Result<TokenResponse, OAuthError> {
        let user = self.user(user_id).await?;
        let granted = policy::user_grant(
            self.tenant,
            self.host,
            &self.client.client_id,
            pending.audience.as_deref(),
            &pending.scope,
            &self.permissions(&user),
        )?;
        let mut amr = pending.amr.clone();
        // RFC 8176 has no value for a recovery code: "mfa" alone says it.
        let extra: &[&str] = match factor {
            "otp" => &["mfa", "otp"],
            "sms" => &["mfa", "sms"],
            "voice" => &["mfa", "tel"],
            _ => &["mfa"],
        };
        for m in extra {
            if !amr.iter().any(|a| a == m) {
                amr.push(m.to_string());
            }
        }
        let now = self.state.clock.now();
        let mut response = self
            .new_grant_tokens(&user, &granted, now, &amr, Some(pending.gty.as_str()))
            .await?;
        response.recovery_code = recovery_code;
        Ok(response)
    }

    /// A new grant for a user who just authenticated at `now`, and its tokens.
    async fn new_grant_tokens(
        &self,
        user: &UserRow,
        granted: &Granted,
        now: Timestamp,
        amr: &[String],
        gty: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_id = self.state.new_grant_id();
        self.state
            .store
            .create_grant(
                &self.tenant.id,
                &grant_id,
                &self.client.client_id,
                Some(&user.user_id),
                now,
            )
            .await?;
        Ok(tokens::issue_user_tokens(
            self.state,
            UserTokens {
                tenant: self.tenant,
                host: self.host,
                client: self.client,
                user,
                granted,
                grant_id: &grant_id,
                nonce: None,
                auth_time: now,
                amr,
                gty,
                refresh_expires_at: None,
                refresh: self.new_refresh(granted),
                dpop_jkt: self.dpop_jkt,
            },
        )
        .await?)
    }

    async fn client_credentials(&self) -> Result<TokenResponse, OAuthError> {
        self.require_grant_type(GrantType::ClientCredentials)?;
        let requested = split_scope(self.params.str("scope")?);
        let granted = policy::client_grant(
            self.tenant,
            self.host,
            &self.client.client_id,
            self.params.str("audience")?,
            &requested,
        )?;
        Ok(tokens::issue_client_token(
            self.state,
            self.tenant,
            self.host,
            self.client,
            &granted,
            self.dpop_jkt,
        )
        .await?)
    }
}

pub(super) fn mfa_error(e: mfa::MfaError) -> OAuthError {
    match e {
        mfa::MfaError::BadToken => {
            OAuthError::InvalidGrant("Malformed, expired or already used mfa_token.".into())
        }
        mfa::MfaError::Wrong { attempts_left } if attempts_left > 0 => {
            OAuthError::InvalidGrant("Invalid otp_code or recovery code.".into())
        }
        mfa::MfaError::Wrong { .. } => OAuthError::InvalidGrant(
            "Too many wrong answers: this mfa_token can no longer be used; log in again.".into(),
        ),
        mfa::MfaError::NoAuthenticator(kind) => {
            OAuthError::InvalidGrant(format!("The user has no {kind} authenticator."))
        }
        mfa::MfaError::Throttled(seconds) => OAuthError::TooManyRequests(seconds),
        mfa::MfaError::Delivery(m) => {
            OAuthError::InvalidRequest(format!("The code could not be sent: {m}"))
        }
        mfa::MfaError::Store(s) => s.into(),
        mfa::MfaError::Internal(m) => OAuthError::Internal(m),
    }
}

/// The user a token is issued to: one that exists and is not blocked.
fn active_user(found: Option<UserRow>) -> Result<UserRow, OAuthError> {
    match found {
        Some(u) if !u.blocked => Ok(u),
        Some(_) => Err(OAuthError::InvalidGrant("user is blocked".into())),
        None => Err(OAuthError::InvalidGrant("The user no longer exists".into())),
    }
}
