//! The OAuth 2.0 / OpenID Connect client latchkey is at upstream identity
//! providers: what connected accounts, the Token Vault grant and logging in
//! with a provider call. One module a concern:
//!
//! - `provider.rs`: a connection resolved (presets, overrides, the secret);
//! - `fetch.rs`: every request, through the outbound port, bounded in size
//!   and time, its answer read strictly;
//! - `discovery.rs`: discovery documents and JWKS, cached per connection;
//! - `authorize.rs`: the authorization request (its own state, nonce and
//!   PKCE S256, always);
//! - `token.rs`: the code exchanged, a refresh token used;
//! - `identity.rs`: who the account is (the ID token, or the userinfo of
//!   OAuth 2.0 providers and GitHub);
//! - `revoke.rs`: tokens revoked (RFC 7009, or GitHub's own API).
//!
//! A provider that answers garbage, too much, too slowly, a redirect or the
//! wrong media type is an [`UpstreamError`], never a panic or a hang; its
//! texts never carry a token or a secret.

mod authorize;
mod discovery;
mod fetch;
mod id_token;
mod identity;
mod provider;
mod revoke;
mod token;

pub use authorize::{AuthorizeExtras, AuthorizeRequest, authorization_request};
pub use discovery::{Upstreams, check_response_issuer};
pub use identity::{Identity, identify};
pub use provider::{Provider, scopes_of};
pub use revoke::{Revoked, revoke};
pub use token::{TokenSet, exchange_code, refresh};

/// Why a request to a provider did not give what was needed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The connection cannot work as configured (a secret not set).
    #[error("the connection is misconfigured: {0}")]
    Config(String),
    /// The provider could not be reached, or did not answer in time.
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
    /// The provider answered something latchkey does not take.
    #[error("the identity provider answered unexpectedly: {0}")]
    Protocol(String),
    /// The provider refused, with an OAuth error (`invalid_grant` for a
    /// code or refresh token it no longer honours).
    #[error("the identity provider refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        error: String,
        description: Option<String>,
    },
    /// The ID token is not one to believe.
    #[error("the identity provider's ID token was refused: {0}")]
    IdToken(String),
}

impl UpstreamError {
    /// Whether the provider said the grant behind a token is gone (the user
    /// revoked access, or the token expired there): `invalid_grant`, which
    /// GitHub calls `bad_refresh_token` when it refuses a refresh token.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, UpstreamError::Refused { error, .. }
            if error == "invalid_grant" || error == "bad_refresh_token")
    }
}

/// At most this much of a provider's own text is kept in an error.
const MAX_QUOTED: usize = 200;

/// A provider's text made safe to show and log: printable ASCII, short.
pub(crate) fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(MAX_QUOTED)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_is_short_and_printable() {
        assert_eq!(quoted("bad\r\nthing\u{7}é"), "badthing");
        assert_eq!(quoted(&"x".repeat(500)).len(), MAX_QUOTED);
    }
}
