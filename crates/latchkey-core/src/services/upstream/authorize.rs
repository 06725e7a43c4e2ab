//! The authorization request sent to a provider: latchkey's own `state`,
//! `nonce` (OpenID providers) and PKCE S256 code challenge, always, whatever
//! the app sent latchkey; the connection's scopes and the app's; the extra
//! parameters the app may pass on. The caller keeps the three secrets (the
//! state as a digest, the verifier and nonce sealed) to check the callback.

use super::UpstreamError;
use super::discovery::metadata;
use super::provider::{Provider, Quirks};
use crate::context::Core;
use crate::crypto::hash::sha256_b64url;
use crate::rng::RngExt;

/// The extra authorization parameters an app may pass on to the provider
/// (the My Account API's `authorization_params`), as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthorizeExtras {
    pub params: Vec<(String, String)>,
}

/// A request ready to send the browser to, and what checks its answer.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The provider's authorization endpoint with every parameter.
    pub url: String,
    pub state: String,
    pub nonce: Option<String>,
    pub code_verifier: String,
    /// The scopes asked, as sent.
    pub scopes: Vec<String>,
}

/// Scopes of the connection, then the app's, each once.
fn merged_scopes(provider: &Provider, requested: &[String]) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    let openid = provider.is_openid().then(|| "openid".to_owned());
    for s in openid
        .iter()
        .chain(&provider.scopes)
        .chain(requested.iter())
    {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    scopes
}

/// The authorization request for `provider`, answering at `redirect_uri`.
pub async fn authorization_request(
    core: &Core,
    provider: &Provider,
    redirect_uri: &str,
    requested_scopes: &[String],
    extras: &AuthorizeExtras,
) -> Result<AuthorizeRequest, UpstreamError> {
    let meta = metadata(core, provider).await?;
    let mut url = url::Url::parse(&meta.authorization)
        .map_err(|_| UpstreamError::Config("the authorization endpoint is not a URL".into()))?;
    let state = core.rng.token(32);
    let code_verifier = core.rng.token(32);
    let nonce = provider.is_openid().then(|| core.rng.token(32));
    let mut scopes = merged_scopes(provider, requested_scopes);
    let mut extra: Vec<(String, String)> = Vec::new();
    match provider.quirks {
        Quirks::Google if scopes.iter().any(|s| s == "offline_access") => {
            // Google refuses the scope and asks for these instead.
            scopes.retain(|s| s != "offline_access");
            extra.push(("access_type".into(), "offline".into()));
            if !extras.params.iter().any(|(k, _)| k == "prompt") {
                extra.push(("prompt".into(), "consent".into()));
            }
        }
        Quirks::Apple => extra.push(("response_mode".into(), "form_post".into())),
        Quirks::Google | Quirks::Github | Quirks::None => {}
    }
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("code_challenge", &sha256_b64url(code_verifier.as_bytes()))
            .append_pair("code_challenge_method", "S256");
        if let Some(n) = &nonce {
            q.append_pair("nonce", n);
        }
        for (k, v) in extras.params.iter().chain(&extra) {
            q.append_pair(k, v);
        }
    }
    Ok(AuthorizeRequest {
        url: url.into(),
        state,
        nonce,
        code_verifier,
        scopes,
    })
}
