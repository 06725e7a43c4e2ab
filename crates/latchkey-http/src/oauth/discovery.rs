//! `/.well-known/openid-configuration` and `/.well-known/jwks.json`: what the
//! server really supports, nothing more.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::OAuthError;
use super::token::{MFA_OOB, MFA_OTP, MFA_RECOVERY_CODE, PASSWORD_REALM, WEBAUTHN};
use super::wire::OAuthTenant;
use crate::app::SharedState;
use latchkey_core::services::authorize::ResponseType;
use latchkey_core::services::tokens::max_token_lifetime;
use latchkey_core::tenant::issuer_for_host;

pub(super) async fn openid_configuration(OAuthTenant { host, .. }: OAuthTenant) -> Response {
    let iss = issuer_for_host(&host);
    let doc = json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}authorize"),
        "token_endpoint": format!("{iss}oauth/token"),
        "userinfo_endpoint": format!("{iss}userinfo"),
        "jwks_uri": format!("{iss}.well-known/jwks.json"),
        "revocation_endpoint": format!("{iss}oauth/revoke"),
        "pushed_authorization_request_endpoint": format!("{iss}oauth/par"),
        "require_pushed_authorization_requests": false,
        "end_session_endpoint": format!("{iss}oidc/logout"),
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "response_types_supported": ResponseType::SUPPORTED,
        "response_modes_supported": ["query", "fragment", "form_post", "web_message"],
        "grant_types_supported": [
            "authorization_code", "implicit", "refresh_token", "password", PASSWORD_REALM, "client_credentials", WEBAUTHN,
            MFA_OTP, MFA_OOB, MFA_RECOVERY_CODE
        ],
        "subject_types_supported": ["public"],
        "acr_values_supported": [latchkey_core::services::mfa::MULTI_FACTOR],
        "dpop_signing_alg_values_supported": latchkey_core::crypto::dpop::ALGS.split(' ').collect::<Vec<_>>(),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "aud", "auth_time", "email", "email_verified", "exp", "family_name", "given_name", "iat",
            "iss", "name", "nickname", "picture", "sub", "updated_at", "nonce", "at_hash", "c_hash", "azp", "sid",
            "amr", "acr"
        ],
        "request_uri_parameter_supported": false,
        "request_parameter_supported": false,
        "claims_parameter_supported": false,
    });
    let mut res = Json(doc).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

pub(super) async fn jwks(
    State(state): State<SharedState>,
    OAuthTenant { tenant, .. }: OAuthTenant,
) -> Result<Response, OAuthError> {
    let keys = state
        .keys
        .published(&tenant.id, max_token_lifetime(&tenant))
        .await?;
    let mut res = Json(json!({ "keys": keys })).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(res)
}
