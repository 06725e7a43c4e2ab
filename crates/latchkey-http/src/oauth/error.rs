//! The OAuth/OIDC error dialect: `{error, error_description}` with RFC 6749
//! status codes, but Auth0's where its SDKs read them (403 `invalid_grant`). Every failure of this area answers in it, including
//! malformed input; an unexpected failure is a bare 500 whose cause is
//! logged, never shown.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use latchkey_core::services::connected_accounts::VaultError;
use latchkey_core::services::grants::{BadAccessToken, BadParameter, Bound, GrantError};
use latchkey_core::services::login::LoginError;
use latchkey_core::services::mfa::MfaError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OAuthError {
    InvalidRequest(String),
    InvalidClient(String),
    InvalidGrant(String),
    InvalidScope(String),
    UnauthorizedClient(String),
    UnsupportedGrantType(String),
    AccessDenied(String),
    /// 403 `invalid_grant` "Wrong email or password.": the password grants'
    /// answer to a wrong password and to an unknown user alike (Auth0's
    /// `/oauth/token`; `invalid_user_password` is its legacy `/oauth/ro`'s).
    WrongEmailOrPassword,
    /// 403 `invalid_grant` with Auth0's answer to a wrong passwordless code
    /// ("Wrong email or verification code.", or "phone number").
    WrongVerificationCode(&'static str),
    TooManyAttempts,
    InvalidToken(String),
    /// 403 `insufficient_scope` (RFC 6750): a token without the scope the
    /// operation needs (named), as Auth0's APIs word it.
    InsufficientScope {
        scope: &'static str,
        description: String,
    },
    /// 401 with an error code of its own: a Token Vault exchange whose
    /// subject token or connected account is not there (Auth0 answers
    /// these 401).
    Unauthorized {
        error: &'static str,
        description: String,
    },
    /// 400 with an error code of its own (`slow_down`, `expired_token`:
    /// a push notification polled too fast, or answered too late).
    Coded {
        error: &'static str,
        description: String,
    },
    /// 503: an upstream identity provider did not answer in time, or
    /// answered garbage; nothing changed, retry later.
    UpstreamUnavailable,
    /// 403: a second factor is needed; the app continues with `mfa_token`.
    MfaRequired {
        mfa_token: String,
        requirements: serde_json::Value,
    },
    /// The Default Policy cannot be met (no second factor, window passed).
    UnmetAuthenticationRequirements(String),
    /// 429: too many codes sent; retry after that many seconds.
    TooManyRequests(i64),
    /// 400 `authorization_pending`: the push device has not answered yet
    /// (Auth0's answer to an mfa-oob grant polled too early).
    AuthorizationPending,
    /// 429 `too_many_attempts` (Suspicious IP Throttling): too many failed
    /// credentials from this IP; retry after that many seconds.
    Throttled(i64),
    /// 503: the password hashing queue is full; retry shortly.
    Busy,
    /// 400 `invalid_dpop_proof` (RFC 9449).
    InvalidDpopProof(String),
    /// 400 `use_dpop_nonce`, with the nonce to retry with (`DPoP-Nonce`).
    UseDpopNonce(String),
    /// 401 at a resource endpoint, with a DPoP challenge.
    DpopChallenge(latchkey_core::services::dpop::Challenge),
    NotFound,
    /// 503: the database cannot be reached right now.
    Unavailable(String),
    Internal(String),
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl OAuthError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    pub(crate) fn parts(&self) -> (StatusCode, &'static str, &str) {
        use OAuthError::*;
        match self {
            InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", d),
            InvalidClient(d) => (StatusCode::UNAUTHORIZED, "invalid_client", d),
            // Auth0 answers every `invalid_grant` 403 (RFC 6749 says 400);
            // its SDKs read the status (Auth0.Android's
            // `isRefreshTokenDeleted` needs the 403).
            InvalidGrant(d) => (StatusCode::FORBIDDEN, "invalid_grant", d),
            InvalidScope(d) => (StatusCode::BAD_REQUEST, "invalid_scope", d),
            UnauthorizedClient(d) => (StatusCode::FORBIDDEN, "unauthorized_client", d),
            UnsupportedGrantType(d) => (StatusCode::BAD_REQUEST, "unsupported_grant_type", d),
            AccessDenied(d) => (StatusCode::FORBIDDEN, "access_denied", d),
            WrongEmailOrPassword => (
                StatusCode::FORBIDDEN,
                "invalid_grant",
                "Wrong email or password.",
            ),
            TooManyAttempts => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "Your account has been blocked after multiple consecutive login attempts.",
            ),
            InvalidToken(d) => (StatusCode::UNAUTHORIZED, "invalid_token", d),
            WrongVerificationCode(d) => (StatusCode::FORBIDDEN, "invalid_grant", d),
            InsufficientScope { description, .. } => {
                (StatusCode::FORBIDDEN, "insufficient_scope", description)
            }
            Unauthorized { error, description } => (StatusCode::UNAUTHORIZED, *error, description),
            Coded { error, description } => (StatusCode::BAD_REQUEST, *error, description),
            UpstreamUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The identity provider of the connection did not answer as it should. Try again \
                 shortly.",
            ),
            InvalidDpopProof(d) => (StatusCode::BAD_REQUEST, "invalid_dpop_proof", d),
            DpopChallenge(c) => (StatusCode::UNAUTHORIZED, c.error, &c.detail),
            UseDpopNonce(_) => (
                StatusCode::BAD_REQUEST,
                "use_dpop_nonce",
                "Authorization server requires nonce in DPoP proof",
            ),
            MfaRequired { .. } => (
                StatusCode::FORBIDDEN,
                "mfa_required",
                "Multifactor authentication required",
            ),
            UnmetAuthenticationRequirements(d) => (
                StatusCode::FORBIDDEN,
                "unmet_authentication_requirements",
                d,
            ),
            TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many codes were sent; try again later.",
            ),
            AuthorizationPending => (
                StatusCode::BAD_REQUEST,
                "authorization_pending",
                "Authorization pending: please repeat the request in a few seconds.",
            ),
            Throttled(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "We have detected suspicious login behavior and further attempts will be blocked. \
                 Please contact the administrator.",
            ),
            Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "Too many logins are being checked at once. Try again shortly.",
            ),
            NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The service is temporarily unavailable. Try again shortly.",
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "The server could not complete the request.",
            ),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        match &self {
            OAuthError::Internal(cause) => tracing::error!(%cause, "oauth request failed"),
            OAuthError::Unavailable(cause) => tracing::warn!(%cause, "database unavailable"),
            _ => {}
        }
        let (status, error, description) = self.parts();
        let mut res = match &self {
            OAuthError::MfaRequired {
                mfa_token,
                requirements,
            } => (
                status,
                Json(serde_json::json!({
                    "error": error,
                    "error_description": description,
                    "mfa_token": mfa_token,
                    "mfa_requirements": requirements,
                })),
            )
                .into_response(),
            _ => (
                status,
                Json(Body {
                    error,
                    error_description: description,
                }),
            )
                .into_response(),
        };
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        match &self {
            OAuthError::InvalidClient(_) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"latchkey\""),
                );
            }
            OAuthError::InvalidToken(_) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            OAuthError::InsufficientScope { scope, .. } => {
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
                )) {
                    h.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            OAuthError::Unavailable(_) | OAuthError::UpstreamUnavailable => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            OAuthError::DpopChallenge(c) => {
                if let Ok(v) =
                    HeaderValue::from_str(&latchkey_core::services::dpop::www_authenticate(c))
                {
                    h.insert(header::WWW_AUTHENTICATE, v);
                }
                if let Some(n) = c
                    .nonce
                    .as_deref()
                    .and_then(|n| HeaderValue::from_str(n).ok())
                {
                    h.insert("dpop-nonce", n);
                }
            }
            OAuthError::UseDpopNonce(nonce) => {
                if let Ok(v) = HeaderValue::from_str(nonce) {
                    h.insert("dpop-nonce", v);
                }
            }
            OAuthError::Busy => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            OAuthError::TooManyRequests(seconds) | OAuthError::Throttled(seconds) => {
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(seconds.max(&1).to_owned()),
                );
            }
            _ => {}
        }
        res
    }
}

impl From<latchkey_core::store::StoreError> for OAuthError {
    fn from(e: latchkey_core::store::StoreError) -> Self {
        if e.is_unavailable() {
            Self::Unavailable(e.to_string())
        } else {
            Self::internal(e)
        }
    }
}

impl From<latchkey_core::services::tokens::TokenError> for OAuthError {
    fn from(e: latchkey_core::services::tokens::TokenError) -> Self {
        use latchkey_core::services::tokens::TokenError;
        match e {
            TokenError::Store(s) => s.into(),
            TokenError::Keys(k) => k.into(),
            e @ TokenError::Sign => Self::internal(e),
        }
    }
}

impl From<latchkey_core::services::keys::KeyError> for OAuthError {
    fn from(e: latchkey_core::services::keys::KeyError) -> Self {
        use latchkey_core::services::keys::KeyError;
        match e {
            KeyError::Store(s) => s.into(),
            e @ (KeyError::Open(..)
            | KeyError::Generate
            | KeyError::Invalid
            | KeyError::UnknownKey
            | KeyError::CurrentKey) => Self::internal(e),
        }
    }
}

impl From<latchkey_core::services::policy::PolicyError> for OAuthError {
    fn from(e: latchkey_core::services::policy::PolicyError) -> Self {
        match e {
            latchkey_core::services::policy::PolicyError::Denied(d) => Self::AccessDenied(d),
            latchkey_core::services::policy::PolicyError::Unauthorized(d) => {
                Self::UnauthorizedClient(d)
            }
        }
    }
}

/// The wire form of a grant's refusal (`services::grants`): every case
/// named, with the descriptions clients and tests read.
impl From<GrantError> for OAuthError {
    fn from(e: GrantError) -> Self {
        let invalid_grant = |d: &str| Self::InvalidGrant(d.into());
        match e {
            GrantError::BadParameter(BadParameter(key)) => {
                Self::InvalidRequest(format!("Parameter '{key}' must be a string"))
            }
            GrantError::MissingParameter(key) => {
                Self::InvalidRequest(format!("Missing required parameter: {key}"))
            }
            GrantError::NotAllowed(gt) => Self::UnauthorizedClient(format!(
                "Grant type '{}' not allowed for the client.",
                gt.as_str()
            )),
            GrantError::InvalidCode => invalid_grant("Invalid authorization code"),
            GrantError::CodeFromAnotherHost => {
                invalid_grant("The authorization code was issued on another host of the tenant")
            }
            GrantError::RedirectUriMismatch => invalid_grant(
                "redirect_uri does not match the one used in the authorization request",
            ),
            GrantError::VerifierMismatch => invalid_grant("Failed to verify code verifier"),
            GrantError::VerifierMissing => {
                invalid_grant("Missing required parameter: code_verifier")
            }
            GrantError::VerifierUnexpected => invalid_grant(
                "code_verifier given, but the authorization request had no code_challenge",
            ),
            GrantError::OtherDpopKey(what) => {
                Self::InvalidDpopProof(format!("The {} is bound to another DPoP key", bound(what)))
            }
            GrantError::NoDpopProof(what) => Self::InvalidDpopProof(format!(
                "The {} is bound to a DPoP key: send a proof by it",
                bound(what)
            )),
            // An audience a refresh token may not reach is answered as
            // Auth0 answers it, which SDKs take as the cue to fall back
            // to a full authorization for that audience.
            GrantError::InvalidRefreshToken | GrantError::AudienceNotAllowed => {
                invalid_grant("Unknown or invalid refresh token.")
            }
            GrantError::RefreshFromAnotherHost => {
                invalid_grant("The refresh token was issued on another host of the tenant")
            }
            GrantError::ScopeNotGranted(extra) => Self::InvalidScope(format!(
                "The scope '{extra}' was not granted to this refresh token"
            )),
            GrantError::UserBlocked => invalid_grant("user is blocked"),
            GrantError::UserGone => invalid_grant("The user no longer exists"),
            GrantError::RefreshTokenUserGone => invalid_grant(
                "The refresh_token was generated for a user who doesn't exist anymore.",
            ),
            GrantError::MfaRequired {
                mfa_token,
                requirements,
            } => Self::MfaRequired {
                mfa_token,
                requirements,
            },
            GrantError::NoSecondFactor => Self::UnmetAuthenticationRequirements(
                "The My Account API requires a second factor within the last \
                 authentication window and the user has none; log in again."
                    .into(),
            ),
            GrantError::SubjectRefused(inner) => match Self::from(*inner) {
                Self::InvalidGrant(description) => Self::Unauthorized {
                    error: "invalid_grant",
                    description,
                },
                other => other,
            },
            GrantError::BadAccessToken(why) => invalid_grant(match why {
                BadAccessToken::Invalid => "Invalid access token.",
                BadAccessToken::Expired => "The access token has expired.",
                BadAccessToken::Revoked => "The access token has been revoked.",
                BadAccessToken::WrongIssuer => {
                    "The access token was issued on another host of the tenant"
                }
                BadAccessToken::OtherApi => {
                    "The access token was not issued for this client's API."
                }
            }),
            GrantError::AccessTokenNotAllowed => Self::UnauthorizedClient(
                "Only a Custom API Client (app_type resource_server) may exchange an access token"
                    .into(),
            ),
            GrantError::UnknownConnection(name) => {
                Self::InvalidRequest(format!("Unknown connection: {name}"))
            }
            GrantError::NotAVaultConnection(name) => Self::UnauthorizedClient(format!(
                "The connection {name} does not hold connected accounts"
            )),
            GrantError::ClientNotEnabled(name) => Self::UnauthorizedClient(format!(
                "The client is not enabled for the connection {name}"
            )),
            GrantError::NoConnectedAccount => no_connected_account(),
            GrantError::SeveralAccounts(name) => Self::InvalidRequest(format!(
                "The user has several accounts at the connection {name}: name one with login_hint"
            )),
            GrantError::VaultScope(scope) => Self::InvalidScope(format!(
                "The scope '{scope}' was not granted to the connected account"
            )),
            GrantError::Vault(e) => match e {
                VaultError::Gone | VaultError::NoRefreshToken => no_connected_account(),
                VaultError::Revoked | VaultError::Refused(_) => Self::Unauthorized {
                    error: "federated_connection_refresh_token_flow_failed",
                    description: "Refresh Token flow for the Federated Connection failed".into(),
                },
                VaultError::Unreachable(_) | VaultError::Busy => Self::UpstreamUnavailable,
                VaultError::Unavailable(m) => Self::Unavailable(m),
                VaultError::Internal(m) => Self::Internal(m),
            },
            GrantError::Login(e) => match e {
                LoginError::WrongCredentials(_) => Self::WrongEmailOrPassword,
                LoginError::TooManyAttempts(_) => Self::TooManyAttempts,
                LoginError::Throttled(seconds) => Self::Throttled(seconds),
                LoginError::Busy => Self::Busy,
                // Auth0 answers a blocked user's right password 401
                // `unauthorized` "user is blocked" (a wrong one stays "Wrong
                // email or password.": blocking tells nobody without it).
                LoginError::Blocked(_) => Self::Unauthorized {
                    error: "unauthorized",
                    description: "user is blocked".into(),
                },
                LoginError::EmailNotVerified(_) => {
                    Self::AccessDenied("Please verify your email before logging in.".into())
                }
                LoginError::UnknownConnection(c) => {
                    Self::InvalidRequest(format!("Unknown realm: {c}"))
                }
                LoginError::Store(s) => s.into(),
            },
            GrantError::Mfa(e) => mfa_error(e),
            GrantError::Passkey(e) => e.into(),
            GrantError::Passwordless(e) => passwordless_grant_error(e),
            GrantError::Policy(e) => e.into(),
            GrantError::Token(e) => e.into(),
            GrantError::Keys(e) => e.into(),
            GrantError::Store(e) => e.into(),
            GrantError::Internal(cause) => Self::Internal(cause),
        }
    }
}

/// Auth0's answer when the Token Vault holds no account (or no refresh
/// token) for the user at the connection: the app's cue to connect one.
fn no_connected_account() -> OAuthError {
    OAuthError::Unauthorized {
        error: "federated_connection_refresh_token_not_found",
        description: "Federated connection Refresh Token not found.".into(),
    }
}

/// What a DPoP-bound code or token is called in a refusal.
fn bound(what: Bound) -> &'static str {
    match what {
        Bound::AuthorizationCode => "authorization code",
        Bound::RefreshToken => "refresh token",
    }
}

/// A refused passwordless code at the token endpoint, as Auth0 answers
/// the `passwordless/otp` grant: a wrong, expired, spent or dead code is
/// 403 `invalid_grant`.
pub(super) fn passwordless_grant_error(
    e: latchkey_core::services::passwordless::PasswordlessError,
) -> OAuthError {
    use latchkey_core::services::passwordless::PasswordlessError as E;
    match e {
        E::UnknownConnection => OAuthError::InvalidRequest(
            "The realm is not a passwordless connection of this tenant".into(),
        ),
        E::Disabled => {
            OAuthError::UnauthorizedClient("The connection is not enabled for this client".into())
        }
        E::WrongCode(answer) => OAuthError::WrongVerificationCode(answer),
        E::BadEmail(_) | E::BadPhoneNumber(_) | E::LinkUnsupported | E::BadAuthParams(..) => {
            OAuthError::InvalidRequest(
                "The username is not an address or number of this connection".into(),
            )
        }
        E::Blocked => OAuthError::Unauthorized {
            error: "unauthorized",
            description: "user is blocked".into(),
        },
        E::Throttled(seconds) => OAuthError::Throttled(seconds),
        E::Store(s) => s.into(),
        E::Internal(m) => OAuthError::Internal(m),
    }
}

/// A token that may not make an MFA API call: `invalid_token`, or
/// `insufficient_scope` naming the scope it lacks.
pub(super) fn mfa_caller_error(e: latchkey_core::services::mfa::api::CallerError) -> OAuthError {
    use latchkey_core::services::mfa::api::CallerError;
    match e {
        CallerError::Invalid(d) => OAuthError::InvalidToken(d.into()),
        CallerError::InsufficientScope(scope) => OAuthError::InsufficientScope {
            scope,
            description: format!("Insufficient scope, expected any of: {scope}"),
        },
        CallerError::Mfa(e) => mfa_error(e),
    }
}

/// The wire form of a failed second factor (the MFA API's grants and
/// endpoints).
pub(super) fn mfa_error(e: MfaError) -> OAuthError {
    match e {
        MfaError::BadToken => {
            OAuthError::InvalidGrant("Malformed, expired or already used mfa_token.".into())
        }
        MfaError::Wrong { attempts_left } if attempts_left > 0 => {
            OAuthError::InvalidGrant("Invalid otp_code or recovery code.".into())
        }
        MfaError::Wrong { .. } => OAuthError::InvalidGrant(
            "Too many wrong answers: this mfa_token can no longer be used; log in again.".into(),
        ),
        MfaError::NoAuthenticator(kind) => {
            OAuthError::InvalidGrant(format!("The user has no {kind} authenticator."))
        }
        MfaError::Throttled(seconds) => OAuthError::TooManyRequests(seconds),
        MfaError::AuthorizationPending => OAuthError::AuthorizationPending,
        MfaError::Delivery(m) => {
            OAuthError::InvalidRequest(format!("The code could not be sent: {m}"))
        }
        MfaError::SlowDown => OAuthError::Coded {
            error: "slow_down",
            description: "You are polling faster than allowed. Try again in 5 seconds.".into(),
        },
        // Auth0's documented answer to a push the user rejected.
        MfaError::Rejected => OAuthError::InvalidGrant("MFA Authorization rejected.".into()),
        MfaError::Expired => OAuthError::Coded {
            error: "expired_token",
            description: "The push notification expired: challenge again.".into(),
        },
        MfaError::Store(s) => s.into(),
        MfaError::Internal(m) => OAuthError::Internal(m),
    }
}
