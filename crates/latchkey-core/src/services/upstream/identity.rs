//! Who the account at the provider is. OpenID providers say it in the ID
//! token, which is verified (signature against the provider's JWKS, issuer,
//! audience, nonce, times) before a word of it is believed. OAuth 2.0
//! providers are asked at their userinfo endpoint with the new access
//! token: its `sub`, or its `id` (GitHub's number); GitHub's verified
//! primary email comes from `/user/emails` beside it.

use http::Method;
use serde_json::{Map, Value};

use super::discovery::metadata;
use super::fetch::{self, bearer, json_object, send};
use super::provider::{Provider, Quirks};
use super::{TokenSet, UpstreamError, quoted};
use crate::context::Core;

/// The longest subject accepted.
const MAX_SUBJECT: usize = 255;

/// The account at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The provider's stable identifier of the account.
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// The claims (ID token) or userinfo the identity was read from.
    pub claims: Map<String, Value>,
}

/// The identity behind `tokens`; `nonce` is the one sent with the
/// authorization request (OpenID providers).
pub async fn identify(
    core: &Core,
    provider: &Provider,
    tokens: &TokenSet,
    nonce: Option<&str>,
) -> Result<Identity, UpstreamError> {
    if provider.is_openid() {
        let id_token = tokens
            .id_token
            .as_deref()
            .ok_or_else(|| UpstreamError::IdToken("the provider answered no ID token".into()))?;
        let claims = super::id_token::verify(core, provider, id_token, nonce).await?;
        return identity_of(claims);
    }
    let meta = metadata(core, provider).await?;
    let url = meta
        .userinfo
        .as_deref()
        .ok_or_else(|| UpstreamError::Config("no userinfo endpoint is set".into()))?;
    let mut info = get_json(core, provider, url, &tokens.access_token, "userinfo").await?;
    if provider.quirks == Quirks::Github && !info.contains_key("email_verified") {
        let emails = format!("{}/emails", url.trim_end_matches('/'));
        if let Some(email) =
            github_primary_email(core, provider, &emails, &tokens.access_token).await?
        {
            info.insert("email".into(), Value::String(email));
            info.insert("email_verified".into(), Value::Bool(true));
        } else {
            info.insert("email_verified".into(), Value::Bool(false));
        }
    }
    identity_of(info)
}

/// A GET with the access token, answered by a JSON object.
async fn get_json(
    core: &Core,
    provider: &Provider,
    url: &str,
    access_token: &str,
    what: &str,
) -> Result<Map<String, Value>, UpstreamError> {
    let mut request = fetch::request(provider, Method::GET, url);
    bearer(&mut request, access_token);
    if provider.quirks == Quirks::Github {
        // GitHub refuses requests without a User-Agent.
        request.headers.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static("latchkey"),
        );
    }
    let response = send(core, request).await?;
    if !response.status.is_success() {
        return Err(UpstreamError::Protocol(format!(
            "its {what} answered {}",
            response.status.as_u16()
        )));
    }
    json_object(&response, what)
}

/// GitHub's primary email, if verified.
async fn github_primary_email(
    core: &Core,
    provider: &Provider,
    url: &str,
    access_token: &str,
) -> Result<Option<String>, UpstreamError> {
    let mut request = fetch::request(provider, Method::GET, url);
    bearer(&mut request, access_token);
    request.headers.insert(
        http::header::USER_AGENT,
        http::HeaderValue::from_static("latchkey"),
    );
    let response = send(core, request).await?;
    // Without the user:email scope GitHub answers 403/404: no email then.
    if !response.status.is_success() {
        return Ok(None);
    }
    let list: Vec<Value> = match serde_json::from_slice(&response.body) {
        Ok(Value::Array(list)) if fetch::is_json(&response) => list,
        _ => {
            return Err(UpstreamError::Protocol(
                "its email list is not a JSON array".into(),
            ));
        }
    };
    Ok(list.iter().find_map(|e| {
        let primary = e.get("primary").and_then(Value::as_bool) == Some(true);
        let verified = e.get("verified").and_then(Value::as_bool) == Some(true);
        let email = e.get("email").and_then(Value::as_str)?;
        (primary && verified && email.len() <= 320).then(|| email.to_owned())
    }))
}

/// The identity in claims or userinfo: `sub`, or a string or integer `id`.
fn identity_of(claims: Map<String, Value>) -> Result<Identity, UpstreamError> {
    let subject = match claims.get("sub").or_else(|| claims.get("id")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        _ => {
            return Err(UpstreamError::Protocol(
                "it names no account (no sub or id)".into(),
            ));
        }
    };
    if subject.is_empty() || subject.len() > MAX_SUBJECT || subject.chars().any(char::is_control) {
        return Err(UpstreamError::Protocol(format!(
            "its account identifier {:?} is unusable",
            quoted(&subject)
        )));
    }
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .filter(|e| e.len() <= 320)
        .map(str::to_owned);
    let email_verified = claims.get("email_verified") == Some(&Value::Bool(true));
    Ok(Identity {
        subject,
        email,
        email_verified,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(v: Value) -> Result<Identity, UpstreamError> {
        match v {
            Value::Object(m) => identity_of(m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_account_is_its_sub_or_id() {
        assert_eq!(of(json!({"sub": "abc"})).unwrap().subject, "abc");
        assert_eq!(
            of(json!({"id": 583231, "login": "octocat"}))
                .unwrap()
                .subject,
            "583231"
        );
        let i = of(json!({"sub": "s", "email": "a@b.test", "email_verified": true})).unwrap();
        assert_eq!(
            (i.email.as_deref(), i.email_verified),
            (Some("a@b.test"), true)
        );
        // "true" as a string is not a verification.
        assert!(
            !of(json!({"sub": "s", "email_verified": "true"}))
                .unwrap()
                .email_verified
        );
        for bad in [
            json!({}),
            json!({"sub": ""}),
            json!({"sub": "a\nb"}),
            json!({"id": 1.5}),
            json!({"sub": "x".repeat(256)}),
            json!({"sub": ["a"]}),
        ] {
            assert!(of(bad.clone()).is_err(), "{bad}");
        }
    }
}
