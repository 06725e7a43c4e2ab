//! The entities a tenant file declares, keyed as in Auth0's Management API:
//! applications (clients), APIs (resource servers) and the grants between
//! them, roles and users.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::*;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub client_id: String,
    /// Defaults to `client_id`.
    #[serde(default)]
    pub name: String,
    pub app_type: AppType,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The environment variable holding the client secret, instead of
    /// `client_secret` (what `tenant export` writes, so that an exported
    /// file holds no secret). Read when the file is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// Filled in from `app_type` when absent; see [`Client::auth_method`].
    #[serde(default)]
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    #[serde(default)]
    pub callbacks: Vec<String>,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub web_origins: Vec<String>,
    #[serde(default)]
    pub allowed_logout_urls: Vec<String>,
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<GrantType>,
    #[serde(default = "default_true")]
    pub first_party: bool,
    #[serde(default)]
    pub jwt_configuration: JwtConfiguration,
    #[serde(default)]
    pub refresh_token: RefreshTokenSettings,
    /// Overrides the tenant's `mfa.policy` for this application.
    #[serde(default)]
    pub mfa_policy: Option<MfaPolicy>,
    /// Tokens only with a DPoP proof (Auth0's name for sender-constrained
    /// tokens).
    #[serde(default)]
    pub require_proof_of_possession: bool,
    /// Authorization requests only through `POST /oauth/par` (RFC 9126;
    /// Auth0's name): `/authorize` refuses one sent in the URL.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// Auth0's "Trust Token Endpoint IP Header": this confidential client
    /// (a backend relaying its users' logins) names the user's IP in the
    /// `auth0-forwarded-for` header of its password grants.
    #[serde(default)]
    pub token_endpoint_ip_header_trusted: bool,
    /// A Custom API Client (`app_type: resource_server`): the identifier of
    /// the API it is the client of. Such a client exchanges the access
    /// tokens its API receives at the Token Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_server_identifier: Option<String>,
}

impl Client {
    /// The token endpoint authentication method in force: the configured
    /// one, else `none` for public applications and `client_secret_post`
    /// for the rest.
    pub fn auth_method(&self) -> TokenEndpointAuthMethod {
        self.token_endpoint_auth_method
            .unwrap_or(match self.app_type {
                AppType::Spa | AppType::Native => TokenEndpointAuthMethod::None,
                AppType::RegularWeb | AppType::NonInteractive | AppType::ResourceServer => {
                    TokenEndpointAuthMethod::ClientSecretPost
                }
            })
    }
}

keyword_enum! {
    pub enum AppType ("app type") {
        Spa = "spa",
        Native = "native",
        RegularWeb = "regular_web",
        NonInteractive = "non_interactive",
        /// Auth0's Custom API Client: an API acting as a client of its own.
        ResourceServer = "resource_server",
    }
}

keyword_enum! {
    pub enum TokenEndpointAuthMethod ("token endpoint auth method") {
        None = "none",
        ClientSecretPost = "client_secret_post",
        ClientSecretBasic = "client_secret_basic",
    }
}

keyword_enum! {
    pub enum GrantType ("grant type") {
        AuthorizationCode = "authorization_code",
        /// The authorization endpoint's own tokens (`response_type` with
        /// `token` or `id_token`, alone or beside `code`).
        Implicit = "implicit",
        RefreshToken = "refresh_token",
        Password = "password",
        PasswordRealm = "http://auth0.com/oauth/grant-type/password-realm",
        ClientCredentials = "client_credentials",
        Webauthn = "urn:okta:params:oauth:grant-type:webauthn",
        MfaOtp = "http://auth0.com/oauth/grant-type/mfa-otp",
        MfaOob = "http://auth0.com/oauth/grant-type/mfa-oob",
        MfaRecoveryCode = "http://auth0.com/oauth/grant-type/mfa-recovery-code",
        /// A passwordless login's one-time code.
        PasswordlessOtp = "http://auth0.com/oauth/grant-type/passwordless/otp",
        /// The Token Vault: a user's token exchanged for the access token of
        /// their connected account at an upstream provider.
        TokenVault = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfiguration {
    /// ID token lifetime.
    pub lifetime_in_seconds: u32,
}

impl Default for JwtConfiguration {
    fn default() -> Self {
        Self {
            lifetime_in_seconds: 36_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RefreshTokenSettings {
    pub rotation_type: RotationType,
    /// Absolute lifetime in seconds.
    pub token_lifetime: u32,
    /// Lifetime in seconds without use.
    pub idle_token_lifetime: u32,
    /// Seconds during which a rotated token may still be reused.
    pub leeway: u32,
    /// Auth0's multi-resource refresh token: the APIs (and their scopes) a
    /// refresh token of this client may also mint access tokens for.
    pub policies: Vec<RefreshTokenPolicy>,
}

/// One API of a client's multi-resource refresh token policies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RefreshTokenPolicy {
    /// A resource server's identifier or the My Account audience.
    pub audience: String,
    /// The scopes a refresh token may ask for on that API.
    pub scope: Vec<String>,
}

impl Default for RefreshTokenSettings {
    fn default() -> Self {
        Self {
            rotation_type: RotationType::Rotating,
            token_lifetime: 2_592_000,
            idle_token_lifetime: 1_296_000,
            leeway: 0,
            policies: Vec::new(),
        }
    }
}

keyword_enum! {
    pub enum RotationType ("rotation type") {
        Rotating = "rotating",
        NonRotating = "non-rotating",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientGrant {
    pub client_id: String,
    pub audience: String,
    #[serde(default)]
    pub subject_type: SubjectType,
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(default)]
    pub allow_all_scopes: bool,
}

keyword_enum! {
    /// Whether a grant lets the client act for users or for itself.
    #[derive(Default)]
    pub enum SubjectType ("subject type") {
        User = "user",
        #[default]
        Client = "client",
    }
}

/// An API that clients may request tokens for. `scopes` may be written as
/// plain names or as Auth0's `{value, description}` objects.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(from = "ResourceServerEntry", into = "ResourceServerEntry")]
pub struct ResourceServer {
    pub identifier: String,
    /// Defaults to `identifier`.
    pub name: String,
    pub scopes: Vec<String>,
    /// Descriptions of those scopes that have one.
    pub scope_descriptions: BTreeMap<String, String>,
    /// Access token lifetime in seconds.
    pub token_lifetime: u32,
    pub enforce_policies: bool,
    pub allow_offline_access: bool,
}

/// How a resource server is written in the file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceServerEntry {
    identifier: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scopes: Vec<ScopeEntry>,
    #[serde(default = "default_resource_server_token_lifetime")]
    token_lifetime: u32,
    #[serde(default)]
    enforce_policies: bool,
    #[serde(default)]
    allow_offline_access: bool,
}

impl From<ResourceServerEntry> for ResourceServer {
    fn from(entry: ResourceServerEntry) -> Self {
        let mut scopes = Vec::with_capacity(entry.scopes.len());
        let mut scope_descriptions = BTreeMap::new();
        for scope in entry.scopes {
            if let Some(description) = scope.description {
                scope_descriptions.insert(scope.value.clone(), description);
            }
            scopes.push(scope.value);
        }
        Self {
            identifier: entry.identifier,
            name: entry.name,
            scopes,
            scope_descriptions,
            token_lifetime: entry.token_lifetime,
            enforce_policies: entry.enforce_policies,
            allow_offline_access: entry.allow_offline_access,
        }
    }
}

impl From<ResourceServer> for ResourceServerEntry {
    fn from(server: ResourceServer) -> Self {
        let mut descriptions = server.scope_descriptions;
        let scopes = server
            .scopes
            .into_iter()
            .map(|value| ScopeEntry {
                description: descriptions.remove(&value),
                value,
            })
            .collect();
        Self {
            identifier: server.identifier,
            name: server.name,
            scopes,
            token_lifetime: server.token_lifetime,
            enforce_policies: server.enforce_policies,
            allow_offline_access: server.allow_offline_access,
        }
    }
}

/// A scope written either as `read:things` or as
/// `{value: read:things, description: ...}`.
struct ScopeEntry {
    value: String,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeObject {
    value: String,
    #[serde(default)]
    description: Option<String>,
}

impl<'de> Deserialize<'de> for ScopeEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScopeVisitor;

        impl<'de> Visitor<'de> for ScopeVisitor {
            type Value = ScopeEntry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scope name or a {value, description} mapping")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<ScopeEntry, E> {
                Ok(ScopeEntry {
                    value: value.to_owned(),
                    description: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ScopeEntry, A::Error> {
                let object = ScopeObject::deserialize(MapAccessDeserializer::new(map))?;
                Ok(ScopeEntry {
                    value: object.value,
                    description: object.description,
                })
            }
        }

        deserializer.deserialize_any(ScopeVisitor)
    }
}

impl Serialize for ScopeEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.description {
            None => serializer.serialize_str(&self.value),
            Some(description) => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("value", &self.value)?;
                map.serialize_entry("description", description)?;
                map.end()
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    pub resource_server_identifier: String,
    pub permission_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub email: String,
    /// Plain text, hashed when the file is applied.
    #[serde(default)]
    pub password: Option<String>,
    /// An imported Argon2id or bcrypt hash.
    #[serde(default)]
    pub password_hash: Option<String>,
    pub connection: String,
    #[serde(default)]
    pub email_verified: bool,
    /// `auth0|…`; generated when absent.
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub picture: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub user_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub app_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub blocked: bool,
}
