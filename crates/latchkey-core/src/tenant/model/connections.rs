//! Connections: where a tenant's users come from. The built-in database
//! (`auth0`), or an upstream identity provider that latchkey reaches as a
//! confidential OAuth 2.0 / OpenID Connect client: for logging in and for
//! connected accounts (Token Vault). Keys follow Auth0's Management API
//! (`options.issuer`, `options.authorizationURL`, `authentication.active`,
//! `connected_accounts.active`, `enabled_clients`, `display_name`); the
//! client secret is never in the file, only the name of the environment
//! variable holding it.

use serde::{Deserialize, Deserializer, Serialize};

use super::*;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub name: String,
    #[serde(default)]
    pub strategy: ConnectionStrategy,
    /// Database connections only. Defaults are left out of the stored
    /// form (the validator refuses these keys on upstream connections).
    #[serde(default, skip_serializing_if = "is_default")]
    pub password_policy: PasswordPolicy,
    /// Database and passwordless connections.
    #[serde(default, skip_serializing_if = "is_default")]
    pub disable_signup: bool,
    /// Database connections only.
    #[serde(default, skip_serializing_if = "is_default")]
    pub requires_username: bool,
    /// Database connections only: a user whose email is not verified may
    /// not log in (Auth0 leaves them in; its tenants deny them with an
    /// Action, whose answer latchkey gives: `access_denied`, "Please verify
    /// your email before logging in.").
    #[serde(default, skip_serializing_if = "is_default")]
    pub require_email_verification: bool,
    /// Upstream connections only: how the identity provider is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<UpstreamOptions>,
    /// Upstream connections only: the name its button shows on the login
    /// page; the connection's name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Upstream connections only: whether users may log in with it (a
    /// button on the login page, `connection=` on `/authorize`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub authentication: AuthenticationPurpose,
    /// Upstream connections only: an upstream login whose email the
    /// provider says is verified joins the user who has that email,
    /// verified too, instead of making a user of its own.
    #[serde(default, skip_serializing_if = "is_default")]
    pub link_by_verified_email: bool,
    /// Upstream connections only: whether users may link an account of this
    /// provider through the My Account API (Token Vault).
    #[serde(default, skip_serializing_if = "is_default")]
    pub connected_accounts: ConnectedAccountsPurpose,
    /// Upstream and passwordless connections: the applications that may
    /// use it. None when absent, as in Auth0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enabled_clients: Vec<String>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl Connection {
    /// Whether this is an upstream connection that users may link accounts
    /// of, from the application `client_id`.
    pub fn connectable_from(&self, client_id: &str) -> bool {
        self.strategy.is_upstream()
            && self.connected_accounts.active
            && self.enabled_clients.iter().any(|c| c == client_id)
    }

    /// Whether this is an upstream connection that users of the application
    /// `client_id` may log in with.
    pub fn login_from(&self, client_id: &str) -> bool {
        self.strategy.is_upstream()
            && self.authentication.active
            && self.enabled_clients.iter().any(|c| c == client_id)
    }

    /// Whether this is a passwordless connection the application
    /// `client_id` may use (Auth0's `enabled_clients`).
    pub fn passwordless_for(&self, client_id: &str) -> bool {
        self.strategy.is_passwordless() && self.enabled_clients.iter().any(|c| c == client_id)
    }

    /// The name users see.
    pub fn shown_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

keyword_enum! {
    /// Where a connection's users live: the built-in database, or an
    /// upstream identity provider. `oidc` and `oauth2` are generic; the rest
    /// are presets that fill in a provider's endpoints and quirks.
    #[derive(Default)]
    pub enum ConnectionStrategy ("connection strategy") {
        #[default]
        Auth0 = "auth0",
        Oidc = "oidc",
        Oauth2 = "oauth2",
        Github = "github",
        GoogleOauth2 = "google-oauth2",
        Windowslive = "windowslive",
        Apple = "apple",
        /// Passwordless: a one-time code sent by email.
        Email = "email",
        /// Passwordless: a one-time code sent by SMS.
        Sms = "sms",
    }
}

impl ConnectionStrategy {
    /// Every strategy but the built-in database and the passwordless ones:
    /// an identity provider elsewhere.
    pub fn is_upstream(self) -> bool {
        !matches!(
            self,
            ConnectionStrategy::Auth0 | ConnectionStrategy::Email | ConnectionStrategy::Sms
        )
    }

    /// The built-in database (users with passwords).
    pub fn is_database(self) -> bool {
        self == ConnectionStrategy::Auth0
    }

    /// A passwordless connection (`email`, `sms`): users sign in with a
    /// one-time code sent to them.
    pub fn is_passwordless(self) -> bool {
        matches!(self, ConnectionStrategy::Email | ConnectionStrategy::Sms)
    }

    /// Whether the provider is found through OpenID Connect discovery and
    /// answers ID tokens (`issuer`, `discovery_url`, `*_endpoint`), rather
    /// than through fixed OAuth 2.0 endpoints (`authorizationURL`, …).
    pub fn is_openid(self) -> bool {
        matches!(
            self,
            ConnectionStrategy::Oidc
                | ConnectionStrategy::GoogleOauth2
                | ConnectionStrategy::Windowslive
                | ConnectionStrategy::Apple
        )
    }
}

/// Auth0's `authentication` purpose of a connection: on unless turned off.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationPurpose {
    pub active: bool,
}

impl Default for AuthenticationPurpose {
    fn default() -> Self {
        Self { active: true }
    }
}

/// Auth0's `connected_accounts` purpose of a connection.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConnectedAccountsPurpose {
    pub active: bool,
}

/// The options of an upstream connection. Which keys a strategy takes is
/// checked by the validator: OpenID strategies name their provider by
/// `issuer` or `discovery_url` and may override discovered endpoints with
/// OpenID names; `oauth2` and `github` give endpoints with Auth0's OAuth2
/// names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamOptions {
    /// `back_channel`: latchkey is a confidential client that exchanges the
    /// code at the token endpoint (the only kind).
    #[serde(rename = "type", default)]
    pub channel: UpstreamChannel,
    pub client_id: String,
    /// The environment variable holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// Refused with a message saying where secrets go (never stored).
    #[serde(default, skip_serializing)]
    pub client_secret: Option<serde_json::Value>,
    /// Scopes always asked of the provider, a list or a space-separated
    /// string; a preset's when absent.
    #[serde(
        default,
        deserialize_with = "scope_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub scope: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(
        rename = "authorizationURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub authorization_url: Option<String>,
    #[serde(rename = "tokenURL", default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(
        rename = "userInfoURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_info_url: Option<String>,
    #[serde(
        rename = "revocationURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub revocation_url: Option<String>,
    /// How latchkey authenticates at the token endpoint; by default what
    /// the discovery document prefers, else `client_secret_basic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<UpstreamAuthMethod>,
    /// Seconds each request to the provider may take.
    #[serde(default = "default_upstream_timeout")]
    pub timeout_seconds: u32,
}

keyword_enum! {
    /// Auth0's `options.type` of an OpenID connection.
    #[derive(Default)]
    pub enum UpstreamChannel ("connection type") {
        #[default]
        BackChannel = "back_channel",
        FrontChannel = "front_channel",
    }
}

keyword_enum! {
    /// How the client secret is presented at the provider's token endpoint.
    pub enum UpstreamAuthMethod ("token endpoint auth method") {
        ClientSecretBasic = "client_secret_basic",
        ClientSecretPost = "client_secret_post",
    }
}

fn default_upstream_timeout() -> u32 {
    10
}

/// A scope given as a list of names or as one space-separated string
/// (Auth0's OpenID connections write it so).
fn scope_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scope {
        Text(String),
        List(Vec<String>),
    }
    Ok(Option::<Scope>::deserialize(d)?.map(|scope| match scope {
        Scope::Text(text) => text.split_whitespace().map(str::to_owned).collect(),
        Scope::List(list) => list,
    }))
}
