//! Tokens revoked at the provider when an account goes: RFC 7009 at the
//! revocation endpoint the provider publishes (the refresh token, which
//! takes its access tokens with it, else the access token), or GitHub's own
//! API, which revokes the whole authorization given its access token. A
//! provider with neither cannot be told.

use http::Method;
use http::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};

use super::UpstreamError;
use super::discovery::metadata;
use super::fetch::{self, basic_auth, refusal, send};
use super::provider::{Provider, Quirks};
use crate::context::Core;
use crate::tenant::UpstreamAuthMethod;

/// What revoking did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The provider took the revocation (or knew the token no longer).
    Done,
    /// The provider offers no way to revoke, or there was no token.
    Unsupported,
}

/// Revokes what `refresh_token` or `access_token` grants.
pub async fn revoke(
    core: &Core,
    provider: &Provider,
    refresh_token: Option<&str>,
    access_token: Option<&str>,
) -> Result<Revoked, UpstreamError> {
    let meta = metadata(core, provider).await?;
    let Some(endpoint) = meta.revocation.as_deref() else {
        return Ok(Revoked::Unsupported);
    };
    let secret = provider.client_secret.as_str();
    if provider.quirks == Quirks::Github {
        let Some(token) = access_token else {
            return Ok(Revoked::Unsupported);
        };
        let client =
            url::form_urlencoded::byte_serialize(provider.client_id.as_bytes()).collect::<String>();
        let url = endpoint.replace("{client_id}", &client);
        let mut request = fetch::request(provider, Method::DELETE, &url);
        request.body = serde_json::json!({ "access_token": token })
            .to_string()
            .into_bytes();
        request
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        request
            .headers
            .insert(USER_AGENT, HeaderValue::from_static("latchkey"));
        basic_auth(&mut request, &provider.client_id, secret);
        let response = send(core, request).await?;
        // 404: GitHub knows the token no longer.
        return match response.status.as_u16() {
            200..=299 | 404 => Ok(Revoked::Done),
            _ => Err(refusal(&response, "revocation")),
        };
    }
    let (token, hint) = match (refresh_token, access_token) {
        (Some(rt), _) => (rt, "refresh_token"),
        (None, Some(at)) => (at, "access_token"),
        (None, None) => return Ok(Revoked::Unsupported),
    };
    let mut fields = vec![("token", token), ("token_type_hint", hint)];
    let post = meta.auth_method == UpstreamAuthMethod::ClientSecretPost;
    if post {
        fields.push(("client_id", &provider.client_id));
        fields.push(("client_secret", secret));
    }
    let mut request = fetch::form(provider, endpoint, &fields);
    if !post {
        basic_auth(&mut request, &provider.client_id, secret);
    }
    let response = send(core, request).await?;
    if response.status.is_success() {
        Ok(Revoked::Done)
    } else {
        Err(refusal(&response, "revocation endpoint"))
    }
}
