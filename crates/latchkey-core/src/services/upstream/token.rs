//! The provider's token endpoint: an authorization code exchanged (with the
//! PKCE verifier), a refresh token used. The client authenticates as the
//! provider prefers (`client_secret_basic` or `_post`). An answer is a
//! token set only when it is a 200 with an access token of type Bearer; an
//! `error` is a refusal even in a 200 (GitHub answers its errors so).

use serde_json::{Map, Value};

use super::discovery::{Metadata, metadata};
use super::fetch::{self, basic_auth, refusal, seconds, send, string, token_answer};
use super::provider::Provider;
use super::{UpstreamError, quoted};
use crate::clock::Timestamp;
use crate::context::Core;
use crate::tenant::UpstreamAuthMethod;

/// The longest token accepted from a provider.
const MAX_TOKEN: usize = 16 * 1024;

/// What a token endpoint answered.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    /// When the access token ends, if the provider said.
    pub expires_at: Option<Timestamp>,
    pub refresh_token: Option<String>,
    /// When the refresh token ends, if the provider said (GitHub does).
    pub refresh_expires_at: Option<Timestamp>,
    /// The scopes granted, when the provider said which.
    pub scopes: Option<Vec<String>>,
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| ".."))
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Exchanges `code` (answered at `redirect_uri`) with its PKCE verifier.
pub async fn exchange_code(
    core: &Core,
    provider: &Provider,
    code: &str,
    redirect_uri: &str,
    code_verifier: &str,
) -> Result<TokenSet, UpstreamError> {
    let meta = metadata(core, provider).await?;
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", code_verifier),
    ];
    call(core, provider, &meta, &fields).await
}

/// Uses `refresh_token`. A provider that no longer honours it answers
/// `invalid_grant` ([`UpstreamError::is_invalid_grant`]).
pub async fn refresh(
    core: &Core,
    provider: &Provider,
    refresh_token: &str,
) -> Result<TokenSet, UpstreamError> {
    let meta = metadata(core, provider).await?;
    let fields = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    call(core, provider, &meta, &fields).await
}

/// A request to the token endpoint, the client authenticated.
async fn call(
    core: &Core,
    provider: &Provider,
    meta: &Metadata,
    fields: &[(&str, &str)],
) -> Result<TokenSet, UpstreamError> {
    let mut fields = fields.to_vec();
    let secret = provider.client_secret.as_str();
    let post = meta.auth_method == UpstreamAuthMethod::ClientSecretPost;
    if post {
        fields.push(("client_id", &provider.client_id));
        fields.push(("client_secret", secret));
    }
    let mut request = fetch::form(provider, &meta.token, &fields);
    if !post {
        basic_auth(&mut request, &provider.client_id, secret);
    }
    let response = send(core, request).await?;
    if !response.status.is_success() {
        return Err(refusal(&response, "token endpoint"));
    }
    let answer = token_answer(&response)?;
    token_set(&answer, core.clock.now())
}

/// A token set from a 200's object.
fn token_set(answer: &Map<String, Value>, now: Timestamp) -> Result<TokenSet, UpstreamError> {
    if let Some(error) = answer.get("error").and_then(Value::as_str) {
        return Err(UpstreamError::Refused {
            error: quoted(error),
            description: answer
                .get("error_description")
                .and_then(Value::as_str)
                .map(quoted),
        });
    }
    let access_token = string(answer, "access_token", MAX_TOKEN).ok_or_else(|| {
        UpstreamError::Protocol("its token answer has no usable access_token".into())
    })?;
    let token_type = answer
        .get("token_type")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(UpstreamError::Protocol(format!(
            "its token answer's token_type is {:?}, not Bearer",
            quoted(token_type)
        )));
    }
    let optional = |key: &str| -> Result<Option<String>, UpstreamError> {
        match answer.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => string(answer, key, MAX_TOKEN)
                .map(|s| Some(s.to_owned()))
                .ok_or_else(|| {
                    UpstreamError::Protocol(format!("its token answer's {key} is unusable"))
                }),
        }
    };
    let scopes = answer.get("scope").and_then(Value::as_str).map(|s| {
        // RFC 6749 separates scopes by spaces; GitHub by commas.
        s.split([' ', ','])
            .filter(|s| !s.is_empty())
            .take(100)
            .map(str::to_owned)
            .collect()
    });
    let at = |seconds: Option<i64>| seconds.map(|s| now.saturating_add(s));
    Ok(TokenSet {
        access_token: access_token.to_owned(),
        expires_at: at(seconds(answer, "expires_in")),
        refresh_token: optional("refresh_token")?,
        refresh_expires_at: at(seconds(answer, "refresh_token_expires_in")),
        scopes,
        id_token: optional("id_token")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(v: Value) -> Result<TokenSet, UpstreamError> {
        match v {
            Value::Object(m) => token_set(&m, 1000),
            _ => unreachable!(),
        }
    }

    #[test]
    fn token_answers_are_read_strictly() {
        let t = set(
            json!({"access_token": "at", "token_type": "bearer", "expires_in": "3600",
            "refresh_token": "rt", "refresh_token_expires_in": 100, "scope": "repo,read:user"}),
        )
        .unwrap();
        assert_eq!(t.expires_at, Some(4600));
        assert_eq!(t.refresh_expires_at, Some(1100));
        assert_eq!(t.scopes.unwrap(), ["repo", "read:user"]);
        assert!(
            !format!(
                "{:?}",
                set(json!({"access_token": "secret-at", "token_type": "Bearer",
            "refresh_token": "secret-rt"}))
            )
            .contains("secret")
        );
        // GitHub's errors come in a 200.
        let e = set(
            json!({"error": "bad_verification_code", "error_description": "The code\r\n is wrong"}),
        )
        .unwrap_err();
        assert_eq!(
            e,
            UpstreamError::Refused {
                error: "bad_verification_code".into(),
                description: Some("The code is wrong".into())
            }
        );
        for bad in [
            json!({"token_type": "Bearer"}),
            json!({"access_token": "", "token_type": "Bearer"}),
            json!({"access_token": 7, "token_type": "Bearer"}),
            json!({"access_token": "at", "token_type": "mac"}),
            json!({"access_token": "at"}),
            json!({"access_token": "at", "token_type": "Bearer", "refresh_token": 5}),
            json!({"access_token": "x".repeat(MAX_TOKEN + 1), "token_type": "Bearer"}),
        ] {
            assert!(
                matches!(set(bad.clone()), Err(UpstreamError::Protocol(_))),
                "{bad}"
            );
        }
    }
}
