//! The grants of the token endpoint: one module per grant (or family), each
//! taking a [`TokenRequest`] (the authenticated client, where the request
//! came from, the grant's own parameters, decoded) and answering tokens or
//! a [`GrantError`]. The endpoint decodes and maps to its dialect; the
//! protocol is here, and the store is reached from here only.

mod authorization_code;
mod client_credentials;
mod mfa;
mod password;
mod passwordless;
mod refresh_target;
mod refresh_token;
mod token_vault;
mod webauthn;

pub use authorization_code::AuthorizationCode;
pub(crate) use authorization_code::CodeRequest;
pub use client_credentials::ClientCredentials;
pub use mfa::{MfaOob, MfaOtp, MfaRecoveryCode};
pub use password::Password;
pub use passwordless::PasswordlessOtp;
pub use refresh_token::RefreshToken;
pub use token_vault::{BadAccessToken, FEDERATED_CONNECTION_ACCESS_TOKEN, Subject, TokenVault};
pub use webauthn::Webauthn;

use std::sync::Arc;

use crate::clock::Timestamp;
use crate::context::Core;
use crate::crypto::hash::constant_time_eq;
use crate::services::audit::{self, Entry, codes};
use crate::services::connected_accounts::VaultError;
use crate::services::keys::KeyError;
use crate::services::login::LoginError;
use crate::services::mfa::MfaError;
use crate::services::passkey_login::PasskeyError;
use crate::services::passwordless::PasswordlessError;
use crate::services::policy::{self, Granted, PolicyError};
use crate::services::tokens::{self, Refresh, TokenError, TokenResponse, UserTokens};
use crate::store::{Redeem, StoreError, UserRow};
use crate::tenant::{Client, GrantType, Tenant};

/// A token request whose client is authenticated, and the grant it makes.
pub struct TokenRequest<'a> {
    /// The tenant as the tenant cache shares it (a sign-up's mail task
    /// keeps it without a copy).
    pub tenant: &'a Arc<Tenant>,
    /// The host the request came to: tokens carry its issuer.
    pub host: &'a str,
    pub client: &'a Client,
    /// The caller's IP (the tenant log of second factors).
    pub ip: &'a str,
    /// The end user's IP, which brute-force protection and throttling of
    /// passwords count: relayed by a trusted confidential client, else `ip`.
    pub user_ip: &'a str,
    pub user_agent: &'a str,
    /// The caller's languages (`Accept-Language`), most preferred first:
    /// what a mail the grant sends is worded in.
    pub languages: &'a [String],
    /// The thumbprint of the key a valid DPoP proof came with: tokens are
    /// bound to it.
    pub dpop_jkt: Option<&'a str>,
    pub grant: Grant<'a>,
}

/// The grant types, each with its own parameters.
pub enum Grant<'a> {
    AuthorizationCode(AuthorizationCode<'a>),
    RefreshToken(RefreshToken<'a>),
    /// `password`, and `password-realm` with its realm.
    Password(Password<'a>),
    ClientCredentials(ClientCredentials<'a>),
    /// The answer to a native passkey sign-up or login.
    Webauthn(Webauthn<'a>),
    MfaOtp(MfaOtp<'a>),
    MfaOob(MfaOob<'a>),
    MfaRecoveryCode(MfaRecoveryCode<'a>),
    /// A code sent by `POST /passwordless/start`.
    PasswordlessOtp(PasswordlessOtp<'a>),
    /// A user's token for their connected account's upstream access token.
    TokenVault(TokenVault<'a>),
}

/// A parameter that came as something other than a string, named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadParameter(pub &'static str);

/// A parameter decoded by the endpoint whose fault (not a string) the
/// grant reports at the step that reads it: after the checks that have
/// always come before it.
pub type Later<T> = Result<T, BadParameter>;

fn later<T: Clone>(param: &Later<T>) -> Result<T, GrantError> {
    param.clone().map_err(GrantError::BadParameter)
}

/// What the bound DPoP key of a refused request was bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    AuthorizationCode,
    RefreshToken,
}

/// Why a grant gives no tokens.
#[derive(Debug)]
pub enum GrantError {
    BadParameter(BadParameter),
    /// A parameter this grant needs here is missing (`binding_code` for a
    /// code sent by email, SMS or voice).
    MissingParameter(&'static str),
    /// The client may not use this grant type.
    NotAllowed(GrantType),
    /// The code is unknown, used, expired or another client's.
    InvalidCode,
    CodeFromAnotherHost,
    RedirectUriMismatch,
    /// The PKCE verifier is malformed or does not match the challenge.
    VerifierMismatch,
    VerifierMissing,
    /// A verifier for a code whose request had no challenge.
    VerifierUnexpected,
    /// The code or refresh token is bound to another DPoP key than the
    /// request's proof.
    OtherDpopKey(Bound),
    /// The code or refresh token is bound to a DPoP key, and the request
    /// came without a proof.
    NoDpopProof(Bound),
    /// The refresh token is unknown, rotated, expired or another client's.
    InvalidRefreshToken,
    RefreshFromAnotherHost,
    /// A scope the refresh token was not granted.
    ScopeNotGranted(String),
    /// An audience the refresh token was not issued for, and that no
    /// policy of its client's refresh tokens names.
    AudienceNotAllowed,
    UserBlocked,
    UserGone,
    /// The refresh token's user was deleted since (Auth0's own answer to
    /// it, which its mobile SDKs read to drop the stored credentials).
    RefreshTokenUserGone,
    /// A second factor is needed first: the app goes on with `mfa_token`.
    MfaRequired {
        mfa_token: String,
        requirements: serde_json::Value,
    },
    /// The My Account API's Default Policy wants a second factor the user
    /// does not have: the grant is revoked.
    NoSecondFactor,
    /// The Token Vault's subject token identifies nobody: the refusal
    /// inside says why (the same as the refresh grant's).
    SubjectRefused(Box<GrantError>),
    /// The subject access token is no good.
    BadAccessToken(BadAccessToken),
    /// An access token as the subject, from a client other than a Custom
    /// API Client.
    AccessTokenNotAllowed,
    /// No connection of the tenant has this name.
    UnknownConnection(String),
    /// The connection holds no connected accounts (the database, or
    /// `connected_accounts.active` off).
    NotAVaultConnection(String),
    /// The client is not among the connection's `enabled_clients`.
    ClientNotEnabled(String),
    /// The user has no account at the connection (with the `login_hint`).
    NoConnectedAccount,
    /// The user has several accounts at the connection, and no
    /// `login_hint` says which.
    SeveralAccounts(String),
    /// A scope asked of the Token Vault the account was not granted.
    VaultScope(String),
    /// The account's token could not be had.
    Vault(VaultError),
    Login(LoginError),
    Mfa(MfaError),
    Passkey(PasskeyError),
    Passwordless(PasswordlessError),
    Policy(PolicyError),
    Token(TokenError),
    Keys(KeyError),
    Store(StoreError),
    Internal(String),
}

impl GrantError {
    /// Whether the request was refused on its merits, rather than left
    /// undone by a failure of the server (database, keys, signing).
    pub fn refused(&self) -> bool {
        match self {
            Self::Token(_)
            | Self::Keys(_)
            | Self::Store(_)
            | Self::Internal(_)
            | Self::Login(LoginError::Store(_) | LoginError::Busy)
            | Self::Mfa(MfaError::Store(_) | MfaError::Internal(_))
            | Self::Passkey(PasskeyError::Store(_) | PasskeyError::Internal(_))
            | Self::Passwordless(PasswordlessError::Store(_) | PasswordlessError::Internal(_))
            | Self::Vault(VaultError::Unavailable(_) | VaultError::Internal(_)) => false,
            Self::SubjectRefused(inner) => inner.refused(),
            Self::BadParameter(_)
            | Self::MissingParameter(_)
            | Self::NotAllowed(_)
            | Self::InvalidCode
            | Self::CodeFromAnotherHost
            | Self::RedirectUriMismatch
            | Self::VerifierMismatch
            | Self::VerifierMissing
            | Self::VerifierUnexpected
            | Self::OtherDpopKey(_)
            | Self::NoDpopProof(_)
            | Self::InvalidRefreshToken
            | Self::RefreshFromAnotherHost
            | Self::ScopeNotGranted(_)
            | Self::AudienceNotAllowed
            | Self::UserBlocked
            | Self::UserGone
            | Self::RefreshTokenUserGone
            | Self::MfaRequired { .. }
            | Self::NoSecondFactor
            | Self::BadAccessToken(_)
            | Self::AccessTokenNotAllowed
            | Self::UnknownConnection(_)
            | Self::NotAVaultConnection(_)
            | Self::ClientNotEnabled(_)
            | Self::NoConnectedAccount
            | Self::SeveralAccounts(_)
            | Self::VaultScope(_)
            | Self::Vault(_)
            | Self::Login(_)
            | Self::Mfa(_)
            | Self::Passkey(_)
            | Self::Passwordless(_)
            | Self::Policy(_) => true,
        }
    }
}

impl From<StoreError> for GrantError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<TokenError> for GrantError {
    fn from(e: TokenError) -> Self {
        Self::Token(e)
    }
}

impl From<KeyError> for GrantError {
    fn from(e: KeyError) -> Self {
        Self::Keys(e)
    }
}

impl From<PolicyError> for GrantError {
    fn from(e: PolicyError) -> Self {
        Self::Policy(e)
    }
}

impl From<MfaError> for GrantError {
    fn from(e: MfaError) -> Self {
        Self::Mfa(e)
    }
}

impl From<PasskeyError> for GrantError {
    fn from(e: PasskeyError) -> Self {
        Self::Passkey(e)
    }
}

/// Tokens for the request's grant.
pub async fn exchange(core: &Core, req: &TokenRequest<'_>) -> Result<TokenResponse, GrantError> {
    match &req.grant {
        Grant::AuthorizationCode(g) => {
            let done = authorization_code::exchange(core, req, g).await;
            let codes = (codes::SUCCESS_CODE_EXCHANGE, codes::FAILED_CODE_EXCHANGE);
            log_exchange(core, req, &done, codes).await;
            done
        }
        Grant::RefreshToken(g) => {
            let done = refresh_token::exchange(core, req, g).await;
            let codes = (
                codes::SUCCESS_REFRESH_EXCHANGE,
                codes::FAILED_REFRESH_EXCHANGE,
            );
            log_exchange(core, req, &done, codes).await;
            done
        }
        Grant::Password(g) => password::exchange(core, req, g).await,
        Grant::ClientCredentials(g) => client_credentials::exchange(core, req, g).await,
        Grant::Webauthn(g) => webauthn::exchange(core, req, g).await,
        Grant::MfaOtp(g) => mfa::otp(core, req, g).await,
        Grant::MfaOob(g) => mfa::oob(core, req, g).await,
        Grant::MfaRecoveryCode(g) => mfa::recovery_code(core, req, g).await,
        Grant::PasswordlessOtp(g) => passwordless::exchange(core, req, g).await,
        Grant::TokenVault(g) => token_vault::exchange(core, req, g).await,
    }
}

/// A code or refresh token exchanged, in the tenant log: its success code
/// with the user, or its failure code with the error answered. A failure of
/// ours (the store, signing) is no failed exchange and logs nothing.
async fn log_exchange(
    core: &Core,
    req: &TokenRequest<'_>,
    done: &Result<TokenResponse, GrantError>,
    (succeeded, failed): (&str, &str),
) {
    let (code, user_id, error) = match done {
        Ok(t) => (succeeded, t.user_id.as_deref(), None),
        // The variant's name alone: what a variant holds may be a secret
        // (an `mfa_token`).
        Err(e) if e.refused() => {
            let name = format!("{e:?}");
            let end = name.find(['(', ' ', '{']).unwrap_or(name.len());
            (failed, None, Some(name[..end].to_string()))
        }
        Err(_) => return,
    };
    let entry = Entry {
        user_id,
        client_name: Some(&req.client.name),
        error,
        ..Entry::default()
    };
    audit::record_login(core, &req.actor(user_id.unwrap_or_default()), code, entry).await;
}

/// Whether `client` may use grant type `gt`: checked before its parameters
/// are read.
pub fn allowed(client: &Client, gt: GrantType) -> Result<(), GrantError> {
    if client.grant_types.contains(&gt) {
        Ok(())
    } else {
        Err(GrantError::NotAllowed(gt))
    }
}

impl TokenRequest<'_> {
    /// Who the tenant log names for this request's events: its client, the
    /// end user's IP and the user agent.
    pub(crate) fn actor<'u>(&'u self, user_id: &'u str) -> crate::services::audit::Actor<'u> {
        crate::services::audit::Actor {
            tenant_id: &self.tenant.id,
            client_id: &self.client.client_id,
            user_id,
            ip: self.user_ip,
            user_agent: self.user_agent,
        }
    }

    /// A code or refresh token bound to a DPoP key (`bound`) is only usable
    /// with a proof by that key.
    fn proved_key(&self, bound: Option<&str>, what: Bound) -> Result<(), GrantError> {
        let Some(bound) = bound else {
            return Ok(());
        };
        match self.dpop_jkt {
            Some(jkt) if constant_time_eq(jkt.as_bytes(), bound.as_bytes()) => Ok(()),
            Some(_) => Err(GrantError::OtherDpopKey(what)),
            None => Err(GrantError::NoDpopProof(what)),
        }
    }

    /// The user a token is issued to: one that exists and is not blocked.
    async fn user(&self, core: &Core, user_id: &str) -> Result<UserRow, GrantError> {
        active_user(core.store.user_by_id(&self.tenant.id, user_id).await?)
    }

    /// What `user` is granted today for `audience` and `requested`.
    fn user_grant(
        &self,
        user: &UserRow,
        audience: Option<&str>,
        requested: &[String],
    ) -> Result<Granted, GrantError> {
        let roles: Vec<String> = user
            .profile
            .get("roles")
            .and_then(|r| serde_json::from_value(r.clone()).ok())
            .unwrap_or_default();
        let permissions = move |aud: &str| policy::role_permissions(self.tenant, &roles, aud);
        Ok(policy::user_grant(
            self.tenant,
            self.host,
            &self.client.client_id,
            audience,
            requested,
            &permissions,
        )?)
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

    /// A new grant for a user who just authenticated at `now`, and its tokens.
    async fn new_grant_tokens(
        &self,
        core: &Core,
        user: &UserRow,
        granted: &Granted,
        now: Timestamp,
        amr: &[String],
        gty: Option<&str>,
    ) -> Result<TokenResponse, GrantError> {
        let grant_id = core.new_grant_id();
        core.store
            .create_grant(
                &self.tenant.id,
                &grant_id,
                &self.client.client_id,
                Some(&user.user_id),
                now,
            )
            .await?;
        Ok(tokens::issue_user_tokens(
            core,
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
}

/// The user a token is issued to: one that exists and is not blocked.
fn active_user(found: Option<UserRow>) -> Result<UserRow, GrantError> {
    match found {
        Some(u) if !u.blocked => Ok(u),
        Some(_) => Err(GrantError::UserBlocked),
        None => Err(GrantError::UserGone),
    }
}

/// A single-use secret (`what`: a code, a refresh token) as the store found
/// it when spending it: a fresh one is the caller's; one spent before means
/// it leaked, and the grant it belonged to is revoked with all it issued.
/// A replayed or unknown one is `refused`.
async fn live<T>(
    core: &Core,
    req: &TokenRequest<'_>,
    found: Redeem<T>,
    now: Timestamp,
    what: &str,
    refused: GrantError,
) -> Result<T, GrantError> {
    match found {
        Redeem::Fresh(v) => Ok(v),
        Redeem::Replayed { grant_id } => {
            core.store
                .revoke_grant(&req.tenant.id, &grant_id, &format!("{what} reused"), now)
                .await?;
            tracing::warn!(tenant = %req.tenant.name, "{what} reused; grant revoked");
            Err(refused)
        }
        Redeem::Missing => Err(refused),
    }
}
