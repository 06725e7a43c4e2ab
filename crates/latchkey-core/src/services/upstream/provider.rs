//! A connection's provider as the client sees it: the preset's endpoints
//! and quirks with the tenant file's overrides applied, the client
//! credentials (the secret read from the environment now), and the network
//! the requests may reach.

use crate::context::Core;
use crate::outbound::NetworkAccess;
use crate::tenant::{Connection, ConnectionStrategy, Tenant, UpstreamAuthMethod, UpstreamOptions};

use super::UpstreamError;

/// How the provider is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Locator {
    /// OpenID Connect: a discovery document, at `{issuer}/.well-known/…`
    /// (whose `issuer` must be this one) or at a URL of its own.
    Discovery { url: String, issuer: Option<String> },
    /// OAuth 2.0 with fixed endpoints and no ID token.
    Fixed,
}

/// What sets a preset apart from the generic strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quirks {
    None,
    /// Tokens answered as JSON only when asked, errors in a 200, the
    /// account's emails beside `/user`, and revocation through its own API.
    Github,
    /// `offline_access` is asked as `access_type=offline&prompt=consent`.
    Google,
    /// Answers by `form_post`.
    Apple,
}

/// A resolved upstream connection.
#[derive(Debug, Clone)]
pub struct Provider {
    pub(crate) tenant_id: String,
    pub(crate) connection: String,
    pub(crate) locator: Locator,
    pub(crate) quirks: Quirks,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    /// Scopes always asked.
    pub(crate) scopes: Vec<String>,
    pub(crate) auth_method: Option<UpstreamAuthMethod>,
    /// Endpoints given in the file (over discovery's, or the fixed ones).
    pub(crate) endpoints: Endpoints,
    pub(crate) timeout: std::time::Duration,
    pub(crate) access: NetworkAccess,
    /// A fingerprint of the configuration: what is cached for the
    /// connection (discovery, keys) is dropped when it changes.
    pub(crate) fingerprint: String,
}

/// Endpoints, each possibly unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Endpoints {
    pub(crate) authorization: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) userinfo: Option<String>,
    pub(crate) jwks: Option<String>,
    pub(crate) revocation: Option<String>,
}

const GITHUB_AUTHORIZE: &str = "https://github.com/login/oauth/authorize";
const GITHUB_TOKEN: &str = "https://github.com/login/oauth/access_token";
const GITHUB_USER: &str = "https://api.github.com/user";
const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const MICROSOFT_DISCOVERY: &str =
    "https://login.microsoftonline.com/consumers/v2.0/.well-known/openid-configuration";
const APPLE_ISSUER: &str = "https://appleid.apple.com";

/// The scopes a preset asks when the file names none.
fn preset_scopes(strategy: ConnectionStrategy) -> &'static [&'static str] {
    match strategy {
        ConnectionStrategy::Github => &["read:user", "user:email"],
        ConnectionStrategy::GoogleOauth2 => &["openid", "profile", "email"],
        ConnectionStrategy::Windowslive => &["openid", "profile", "email", "offline_access"],
        ConnectionStrategy::Apple => &["openid", "name", "email"],
        ConnectionStrategy::Oidc => &["openid"],
        ConnectionStrategy::Oauth2
        | ConnectionStrategy::Auth0
        | ConnectionStrategy::Email
        | ConnectionStrategy::Sms => &[],
    }
}

/// The scopes always asked of `connection`'s provider: the file's, else
/// the preset's.
pub fn scopes_of(connection: &Connection) -> Vec<String> {
    match connection.options.as_ref().and_then(|o| o.scope.clone()) {
        Some(scopes) => scopes,
        None => preset_scopes(connection.strategy)
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

/// `{issuer}/.well-known/openid-configuration`, one slash between.
pub(crate) fn discovery_url_of(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

impl Provider {
    /// The provider of `connection` (an upstream connection of `tenant`),
    /// its secret read from the environment now.
    pub fn of(
        core: &Core,
        tenant: &Tenant,
        connection: &Connection,
    ) -> Result<Self, UpstreamError> {
        let strategy = connection.strategy;
        let options = connection
            .options
            .as_ref()
            .filter(|_| strategy.is_upstream())
            .ok_or_else(|| {
                UpstreamError::Config(format!("{} is not an upstream connection", connection.name))
            })?;
        let variable = options.client_secret_env.as_deref().unwrap_or_default();
        let client_secret = core
            .outside
            .secrets
            .get(variable)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                UpstreamError::Config(format!(
                    "the client secret of connection {} ({variable}) is not set",
                    connection.name
                ))
            })?;
        let (locator, quirks, endpoints) = locate(strategy, options)?;
        let scopes = scopes_of(connection);
        let fingerprint = crate::crypto::hash::sha256_b64url(
            serde_json::to_string(options)
                .unwrap_or_default()
                .as_bytes(),
        );
        Ok(Self {
            tenant_id: tenant.id.clone(),
            connection: connection.name.clone(),
            locator,
            quirks,
            client_id: options.client_id.clone(),
            client_secret,
            scopes,
            auth_method: options.token_endpoint_auth_method,
            endpoints,
            timeout: std::time::Duration::from_secs(u64::from(options.timeout_seconds.max(1))),
            access: core.outside.access.for_tenant(&tenant.config.outbound),
            fingerprint,
        })
    }

    /// Whether the provider answers ID tokens (OpenID Connect).
    pub(crate) fn is_openid(&self) -> bool {
        matches!(self.locator, Locator::Discovery { .. })
    }
}

/// The locator, quirks and file-given endpoints of a strategy.
fn locate(
    strategy: ConnectionStrategy,
    o: &UpstreamOptions,
) -> Result<(Locator, Quirks, Endpoints), UpstreamError> {
    // The issuer the document is held to: the file's, else (with no
    // discovery URL of the file's own) the preset's.
    let openid = |preset_issuer: Option<&str>, preset_discovery: Option<&str>| {
        let issuer = match (&o.issuer, &o.discovery_url) {
            (Some(issuer), _) => Some(issuer.clone()),
            (None, Some(_)) => None,
            (None, None) => preset_issuer.map(str::to_owned),
        };
        let url = o
            .discovery_url
            .clone()
            .or_else(|| o.issuer.as_deref().map(discovery_url_of))
            .or_else(|| preset_discovery.map(str::to_owned))
            .or_else(|| issuer.as_deref().map(discovery_url_of))
            .ok_or_else(|| UpstreamError::Config("no issuer or discovery_url".into()))?;
        Ok::<_, UpstreamError>(Locator::Discovery { url, issuer })
    };
    let openid_endpoints = Endpoints {
        authorization: o.authorization_endpoint.clone(),
        token: o.token_endpoint.clone(),
        userinfo: o.userinfo_endpoint.clone(),
        jwks: o.jwks_uri.clone(),
        revocation: o.revocation_endpoint.clone(),
    };
    Ok(match strategy {
        ConnectionStrategy::Oidc => (openid(None, None)?, Quirks::None, openid_endpoints),
        ConnectionStrategy::GoogleOauth2 => (
            openid(Some(GOOGLE_ISSUER), None)?,
            Quirks::Google,
            openid_endpoints,
        ),
        ConnectionStrategy::Windowslive => (
            openid(None, Some(MICROSOFT_DISCOVERY))?,
            Quirks::None,
            openid_endpoints,
        ),
        ConnectionStrategy::Apple => (
            openid(Some(APPLE_ISSUER), None)?,
            Quirks::Apple,
            openid_endpoints,
        ),
        ConnectionStrategy::Oauth2 => (
            Locator::Fixed,
            Quirks::None,
            Endpoints {
                authorization: o.authorization_url.clone(),
                token: o.token_url.clone(),
                userinfo: o.user_info_url.clone(),
                jwks: None,
                revocation: o.revocation_url.clone(),
            },
        ),
        ConnectionStrategy::Github => {
            let user = o
                .user_info_url
                .clone()
                .unwrap_or_else(|| GITHUB_USER.to_owned());
            (
                Locator::Fixed,
                Quirks::Github,
                Endpoints {
                    authorization: Some(
                        o.authorization_url
                            .clone()
                            .unwrap_or_else(|| GITHUB_AUTHORIZE.to_owned()),
                    ),
                    token: Some(
                        o.token_url
                            .clone()
                            .unwrap_or_else(|| GITHUB_TOKEN.to_owned()),
                    ),
                    revocation: Some(o.revocation_url.clone().unwrap_or_else(|| {
                        format!(
                            "{}/applications/{{client_id}}/grant",
                            github_api_base(&user)
                        )
                    })),
                    userinfo: Some(user),
                    jwks: None,
                },
            )
        }
        ConnectionStrategy::Auth0 | ConnectionStrategy::Email | ConnectionStrategy::Sms => {
            return Err(UpstreamError::Config(
                "the database and passwordless connections are not upstream connections".into(),
            ));
        }
    })
}

/// GitHub's API base: its user endpoint without the final `/user`.
pub(crate) fn github_api_base(user_url: &str) -> &str {
    user_url
        .trim_end_matches('/')
        .strip_suffix("/user")
        .unwrap_or(user_url)
}
