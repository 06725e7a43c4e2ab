//! Authenticating the client at the token and revocation endpoints:
//! `client_secret_basic`, `client_secret_post`, or none for public clients.

use super::error::OAuthError;
use super::wire::Params;
use crate::app::AppState;
use latchkey_core::crypto::hash::constant_time_eq;
use latchkey_core::services::login;
use latchkey_core::tenant::{Client, Tenant, TokenEndpointAuthMethod};

/// The client a request from `ip` authenticated as. Secrets are compared in
/// constant time; a public client presenting a secret, or a confidential one
/// presenting none, is refused. A secret presented is a credential attempt
/// (Suspicious IP Throttling): a wrong one counts against the IP and the
/// tenant, and none is checked once their attempts are spent.
pub(super) fn authenticate<'t>(
    state: &AppState,
    tenant: &'t Tenant,
    params: &Params,
    ip: &str,
) -> Result<&'t Client, OAuthError> {
    let body_id = params.str("client_id")?;
    let body_secret = params.str("client_secret")?;
    let (client_id, secret, method) = match (&params.basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::InvalidRequest(
                "Use only one client authentication method".into(),
            ));
        }
        (Some((id, _)), Some(body), _) if body != id => {
            return Err(OAuthError::InvalidClient(
                "client_id does not match the credentials".into(),
            ));
        }
        (Some((id, s)), _, _) => (
            id.as_str(),
            Some(s.as_str()),
            TokenEndpointAuthMethod::ClientSecretBasic,
        ),
        (None, Some(id), Some(s)) => (id, Some(s), TokenEndpointAuthMethod::ClientSecretPost),
        (None, Some(id), None) => (id, None, TokenEndpointAuthMethod::None),
        (None, None, _) => {
            return Err(OAuthError::InvalidRequest(
                "Missing required parameter: client_id".into(),
            ));
        }
    };
    let unknown = || OAuthError::InvalidClient("Unknown client or wrong credentials".into());
    let attempt = match secret {
        Some(_) => Some(login::attempt(state, tenant, ip).map_err(OAuthError::Throttled)?),
        None => None,
    };
    let checked = check(state, tenant, client_id, secret, unknown);
    if let Some(attempt) = attempt {
        match &checked {
            Ok(_) => attempt.passed(),
            Err(OAuthError::InvalidClient(_)) => attempt.failed(),
            Err(_) => attempt.not_made(),
        }
    }
    // Either secret method is accepted once the secret is right; `method`
    // is kept for auditing.
    let _ = method;
    checked
}

/// The client `client_id`, if `secret` is what it must present.
fn check<'t>(
    state: &AppState,
    tenant: &'t Tenant,
    client_id: &str,
    secret: Option<&str>,
    unknown: impl Fn() -> OAuthError,
) -> Result<&'t Client, OAuthError> {
    let client = tenant.client(client_id).ok_or_else(&unknown)?;
    let expected = client.auth_method();
    match (expected, secret) {
        (TokenEndpointAuthMethod::None, None) => Ok(client),
        (TokenEndpointAuthMethod::None, Some(_)) => Err(OAuthError::InvalidClient(
            "This client is public: it has no secret to present".into(),
        )),
        (_, None) => Err(OAuthError::InvalidClient(
            "Client authentication is required for this client".into(),
        )),
        (_, Some(given)) => {
            let stored = client.client_secret.as_deref().ok_or_else(&unknown)?;
            let plain = state
                .sealer
                .open(
                    &latchkey_core::tenant::apply::client_secret_context(
                        &tenant.id,
                        &client.client_id,
                    ),
                    stored,
                )
                .map_err(|e| OAuthError::internal(format!("client secret: {e}")))?;
            if !constant_time_eq(&plain, given.as_bytes()) {
                return Err(unknown());
            }
            Ok(client)
        }
    }
}
