//! `POST /oauth/token`: the client authenticated, its DPoP proof checked,
//! the grant's parameters decoded into a typed request, one call to
//! `services::grants`, and its answer or refusal in this area's dialect.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::OAuthError;
use super::wire::{OAuthTenant, Params};
use super::{client_auth, passkey};
use crate::app::SharedState;
use crate::http::ClientIp;
use latchkey_core::services::dpop;
use latchkey_core::services::grants::{self, BadParameter, Grant, Later, TokenRequest};
use latchkey_core::services::passkey_login;
use latchkey_core::services::policy::split_scope;
use latchkey_core::tenant::{Client, GrantType, Tenant};

pub(crate) const PASSWORD_REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";
pub(crate) const WEBAUTHN: &str = "urn:okta:params:oauth:grant-type:webauthn";
pub(crate) const MFA_OTP: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
pub(crate) const MFA_RECOVERY_CODE: &str = "http://auth0.com/oauth/grant-type/mfa-recovery-code";
pub(crate) const MFA_OOB: &str = "http://auth0.com/oauth/grant-type/mfa-oob";
pub(crate) const PASSWORDLESS_OTP: &str = "http://auth0.com/oauth/grant-type/passwordless/otp";
const TOKEN_VAULT: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
const REFRESH_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

pub(crate) async fn token(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: axum::http::HeaderMap,
    params: Params,
) -> Result<Response, OAuthError> {
    let user_agent = crate::http::user_agent(&headers);
    let grant_type = params.required("grant_type")?;
    let client = client_auth::authenticate(&state, &tenant, &params, &ip)?;
    let dpop = proof_of_possession(&state, &tenant, &host, &headers)?;
    if client.require_proof_of_possession && dpop.is_none() {
        return Err(OAuthError::InvalidRequest(
            "This client must send a DPoP proof (require_proof_of_possession)".into(),
        ));
    }
    let user_ip = relayed_ip(client, &headers)?.unwrap_or_else(|| ip.clone());
    let grant = decode(&tenant, &host, client, grant_type, &params)?;
    let languages = crate::http::accept_languages(&headers);
    let req = TokenRequest {
        tenant: &tenant,
        host: &host,
        client,
        ip: &ip,
        user_ip: &user_ip,
        user_agent: &user_agent,
        languages: &languages,
        dpop_jkt: dpop.as_deref(),
        grant,
    };
    let response = grants::exchange(&state, &req).await?;
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
    use latchkey_core::tenant::TokenEndpointAuthMethod;
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
    let url = format!(
        "{}oauth/token",
        latchkey_core::tenant::issuer_for_host(host)
    );
    match dpop::check(state, tenant, proof, "POST", &url, None) {
        Ok(p) => Ok(Some(p.jkt)),
        Err(dpop::DpopError::Invalid(m)) => Err(OAuthError::InvalidDpopProof(m)),
        Err(dpop::DpopError::UseNonce(n)) => Err(OAuthError::UseDpopNonce(n)),
    }
}

/// The grant's own parameters, read after the check that its client may
/// use it, in the order the grant has always read them. A parameter some
/// grants read only after their first checks is handed on as [`Later`].
fn decode<'a>(
    tenant: &Tenant,
    host: &str,
    client: &Client,
    grant_type: &str,
    params: &'a Params,
) -> Result<Grant<'a>, OAuthError> {
    let later = |key: &'static str| -> Later<Option<&'a str>> {
        params.str(key).map_err(|_| BadParameter(key))
    };
    let allowed = |gt: GrantType| grants::allowed(client, gt);
    Ok(match grant_type {
        "authorization_code" => {
            allowed(GrantType::AuthorizationCode)?;
            Grant::AuthorizationCode(grants::AuthorizationCode {
                code: params.required("code")?,
                redirect_uri: later("redirect_uri"),
                code_verifier: later("code_verifier"),
            })
        }
        "refresh_token" => {
            allowed(GrantType::RefreshToken)?;
            Grant::RefreshToken(grants::RefreshToken {
                refresh_token: params.required("refresh_token")?,
                scope: later("scope").map(|s| s.map(|s| split_scope(Some(s)))),
                audience: later("audience"),
            })
        }
        "password" => {
            allowed(GrantType::Password)?;
            password(params, None)?
        }
        PASSWORD_REALM => {
            let realm = params.required("realm")?;
            allowed(GrantType::PasswordRealm)?;
            password(params, Some(realm))?
        }
        "client_credentials" => {
            allowed(GrantType::ClientCredentials)?;
            Grant::ClientCredentials(grants::ClientCredentials {
                scope: split_scope(params.str("scope")?),
                audience: params.str("audience")?,
            })
        }
        WEBAUTHN => {
            passkey::require_webauthn(client)?;
            passkey_login::native_allowed(tenant, host)?;
            let auth_session = params.required("auth_session")?;
            let authn_response =
                passkey::object_param(params, "authn_response")?.ok_or_else(|| {
                    OAuthError::InvalidRequest("Missing required parameter: authn_response".into())
                })?;
            Grant::Webauthn(grants::Webauthn {
                auth_session,
                authn_response,
                scope: later("scope").map(split_scope),
                audience: later("audience"),
            })
        }
        MFA_OTP => {
            allowed(GrantType::MfaOtp)?;
            Grant::MfaOtp(grants::MfaOtp {
                mfa_token: params.required("mfa_token")?,
                otp: params.required("otp")?,
            })
        }
        MFA_RECOVERY_CODE => {
            allowed(GrantType::MfaRecoveryCode)?;
            Grant::MfaRecoveryCode(grants::MfaRecoveryCode {
                mfa_token: params.required("mfa_token")?,
                recovery_code: params.required("recovery_code")?,
            })
        }
        MFA_OOB => {
            allowed(GrantType::MfaOob)?;
            Grant::MfaOob(grants::MfaOob {
                mfa_token: params.required("mfa_token")?,
                oob_code: params.required("oob_code")?,
                binding_code: params.str("binding_code")?,
            })
        }
        PASSWORDLESS_OTP => {
            allowed(GrantType::PasswordlessOtp)?;
            Grant::PasswordlessOtp(grants::PasswordlessOtp {
                realm: params.required("realm")?,
                username: params.required("username")?,
                otp: params.required("otp")?,
                scope: split_scope(params.str("scope")?),
                audience: params.str("audience")?,
            })
        }
        TOKEN_VAULT => {
            allowed(GrantType::TokenVault)?;
            token_vault(params)?
        }
        other => {
            return Err(OAuthError::UnsupportedGrantType(format!(
                "Unsupported grant type: {}",
                other.chars().take(100).collect::<String>()
            )));
        }
    })
}

fn password<'a>(params: &'a Params, realm: Option<&'a str>) -> Result<Grant<'a>, OAuthError> {
    Ok(Grant::Password(grants::Password {
        realm,
        username: params.required("username")?,
        password: params.required("password")?,
        scope: split_scope(params.str("scope")?),
        audience: params.str("audience")?,
    }))
}

/// The Token Vault's parameters (RFC 8693's names): the subject token by
/// its type, the token type asked for, the connection, and which of the
/// user's accounts there.
fn token_vault(params: &Params) -> Result<Grant<'_>, OAuthError> {
    let subject_token_type = params.required("subject_token_type")?;
    let subject_token = params.required("subject_token")?;
    let subject = match subject_token_type {
        REFRESH_TOKEN_TYPE => grants::Subject::RefreshToken(subject_token),
        ACCESS_TOKEN_TYPE => grants::Subject::AccessToken(subject_token),
        other => {
            return Err(OAuthError::InvalidRequest(format!(
                "Unsupported subject_token_type: {}",
                other.chars().take(100).collect::<String>()
            )));
        }
    };
    let requested = params.required("requested_token_type")?;
    if requested != grants::FEDERATED_CONNECTION_ACCESS_TOKEN {
        return Err(OAuthError::InvalidRequest(format!(
            "Unsupported requested_token_type: {}",
            requested.chars().take(100).collect::<String>()
        )));
    }
    Ok(Grant::TokenVault(grants::TokenVault {
        subject,
        connection: params.required("connection")?,
        login_hint: params.str("login_hint")?,
        scope: params.str("scope")?.map(|s| split_scope(Some(s))),
    }))
}
