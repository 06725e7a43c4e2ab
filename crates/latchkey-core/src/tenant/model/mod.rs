//! The typed contents of a tenant file. Key names follow Auth0's Management
//! API wherever Auth0 has an equivalent, so operators can carry settings over.
//!
//! Every struct refuses unknown keys; optional keys carry their defaults
//! here, while checks that span several fields live in [`super::file`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The scopes of the My Account API, in the order Auth0 documents them.
pub(crate) const MY_ACCOUNT_SCOPES: [&str; 10] = [
    "create:me:authentication_methods",
    "read:me:authentication_methods",
    "update:me:authentication_methods",
    "delete:me:authentication_methods",
    "read:me:factors",
    "create:me:connected_accounts",
    "read:me:connected_accounts",
    "delete:me:connected_accounts",
    "read:me:consents",
    "read:me:organizations",
];

/// The scopes of the Management API (`{issuer}api/v2/`), as Auth0 names
/// them: those of the endpoints latchkey serves or is to serve (users and
/// their authentication methods, roles and sessions; clients, client
/// grants, resource servers, connections, roles, logs, signing keys, tenant
/// settings). A client grant to the API may name any of them.
pub const MANAGEMENT_API_SCOPES: [&str; 47] = [
    "read:users",
    "create:users",
    "update:users",
    "delete:users",
    "update:users_app_metadata",
    "read:user_idp_tokens",
    "create:user_tickets",
    "read:authentication_methods",
    "create:authentication_methods",
    "update:authentication_methods",
    "delete:authentication_methods",
    "read:sessions",
    "delete:sessions",
    "read:refresh_tokens",
    "delete:refresh_tokens",
    "read:clients",
    "create:clients",
    "update:clients",
    "delete:clients",
    "read:client_keys",
    "update:client_keys",
    "read:client_grants",
    "create:client_grants",
    "update:client_grants",
    "delete:client_grants",
    "read:resource_servers",
    "create:resource_servers",
    "update:resource_servers",
    "delete:resource_servers",
    "read:connections",
    "create:connections",
    "update:connections",
    "delete:connections",
    "read:roles",
    "create:roles",
    "update:roles",
    "delete:roles",
    "read:role_members",
    "create:role_members",
    "delete:role_members",
    "read:logs",
    "read:logs_users",
    "read:signing_keys",
    "create:signing_keys",
    "update:signing_keys",
    "read:tenant_settings",
    "update:tenant_settings",
];

/// Declares a closed set of keywords as a fieldless enum that reads and
/// writes as its keyword. Anything else is refused with an error naming
/// `$what` and listing the accepted keywords.
macro_rules! keyword_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $($(#[$variant_meta:meta])* $variant:ident = $keyword:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $keyword,)+
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(keyword: String) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|variant| variant.as_str() == keyword)
                    .ok_or_else(|| {
                        let expected: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        format!(
                            "unknown {} {keyword:?} (expected one of: {})",
                            $what,
                            expected.join(", ")
                        )
                    })
            }
        }

        impl From<$name> for &'static str {
            fn from(value: $name) -> Self {
                value.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A whole tenant file. Only `tenant` is required.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    pub tenant: TenantSettings,
    #[serde(default)]
    pub my_account_api: MyAccountApi,
    #[serde(default)]
    pub management_api: ManagementApi,
    #[serde(default = "default_factors")]
    pub factors: Vec<FactorType>,
    #[serde(default)]
    pub connections: Vec<Connection>,
    #[serde(default)]
    pub clients: Vec<Client>,
    #[serde(default)]
    pub client_grants: Vec<ClientGrant>,
    #[serde(default)]
    pub resource_servers: Vec<ResourceServer>,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub users: Vec<User>,
    /// How codes are sent by email.
    #[serde(default)]
    pub email_provider: Option<EmailProvider>,
    /// How codes are sent by SMS and voice call.
    #[serde(default)]
    pub sms_provider: Option<SmsProvider>,
    /// How push-notification logins reach the user's device.
    #[serde(default)]
    pub push_notifications: PushNotifications,
    /// The tenant's wording of the messages that carry codes, per language.
    #[serde(default)]
    pub messages: Messages,
    /// When logins need a second factor.
    #[serde(default)]
    pub mfa: MfaSettings,
    /// DPoP (RFC 9449) settings.
    #[serde(default)]
    pub dpop: DpopSettings,
    /// Where the tenant's outbound requests (its SMS and push providers) may go.
    #[serde(default)]
    pub outbound: OutboundSettings,
    /// The hosted pages' texts the tenant words itself.
    #[serde(default)]
    pub prompts: Prompts,
    /// What the Management API made, which applying a tenant file that does
    /// not list it leaves alone. Kept by latchkey in the stored
    /// configuration; a tenant file may not set it.
    #[serde(default, skip_serializing_if = "ApiOwned::is_empty")]
    pub api_owned: ApiOwned,
}

/// The entities of a tenant's configuration the Management API made (or
/// last changed, for one no tenant file lists), by their keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiOwned {
    /// `client_id`s.
    pub clients: std::collections::BTreeSet<String>,
    /// Connection names.
    pub connections: std::collections::BTreeSet<String>,
    /// Resource server identifiers.
    pub resource_servers: std::collections::BTreeSet<String>,
    /// Client grants, by client, audience and subject type.
    pub client_grants: std::collections::BTreeSet<GrantKey>,
    /// Role names.
    pub roles: std::collections::BTreeSet<String>,
}

/// What tells client grants apart: one per client, audience and subject type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantKey {
    pub client_id: String,
    pub audience: String,
    pub subject_type: SubjectType,
}

impl GrantKey {
    pub fn of(grant: &ClientGrant) -> Self {
        Self {
            client_id: grant.client_id.clone(),
            audience: grant.audience.clone(),
            subject_type: grant.subject_type,
        }
    }

    /// The grant's ID in the Management API (Auth0's `cgr_…`): `cgr_` and
    /// the first 16 hexadecimal digits of the SHA-256 of its client ID,
    /// audience and subject type, each followed by a newline. The same grant
    /// has the same ID whoever made it, a tenant file or the API.
    pub fn id(&self) -> String {
        format!(
            "cgr_{}",
            short_digest(
                &[&self.client_id, &self.audience, self.subject_type.as_str()],
                8
            )
        )
    }
}

/// The first `bytes` bytes of the SHA-256 of `parts` (each followed by a
/// newline), in lowercase hexadecimal: stable IDs derived from keys.
pub fn short_digest(parts: &[&str], bytes: usize) -> String {
    let mut text = String::new();
    for part in parts {
        text.push_str(part);
        text.push('\n');
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest
        .as_ref()
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ApiOwned {
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
            && self.connections.is_empty()
            && self.resource_servers.is_empty()
            && self.client_grants.is_empty()
            && self.roles.is_empty()
    }
}

/// Auth0's prompts settings: `custom_text`, language → prompt → screen →
/// key → text, over the built-in bundles (see `services::language`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Prompts {
    pub custom_text: BTreeMap<String, crate::services::language::CustomText>,
}

/// The networks beyond the public internet the tenant's outbound requests
/// may reach (see `outbound.rs`); loopback is the server's to allow.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundSettings {
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 and fc00::/7 (a provider on
    /// the operator's own network). Link-local and metadata never.
    pub allow_private_networks: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DpopSettings {
    /// Whether DPoP proofs must carry a server-issued nonce (`use_dpop_nonce`
    /// and a `DPoP-Nonce` header tell the client which).
    pub require_nonce: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MfaSettings {
    pub policy: MfaPolicy,
}

keyword_enum! {
    /// Whether a login needs a second factor (besides the Default Policy of
    /// the My Account API).
    #[derive(Default)]
    pub enum MfaPolicy ("MFA policy") {
        #[default]
        Never = "never",
        Always = "always",
    }
}

/// Message templates by language tag (`en`, `fr`, `pt-BR`). Templates use
/// minijinja syntax with `code`, `code_spoken` (digits separated for voice),
/// `tenant` and `minutes` (how long the code lives); the built-in English
/// wording applies where a tenant gives none.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Messages {
    pub code_email: BTreeMap<String, EmailTemplate>,
    pub code_sms: BTreeMap<String, String>,
    pub code_voice: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailTemplate {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// An email provider; `smtp` is the one kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailProvider {
    pub smtp: SmtpSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub security: SmtpSecurity,
    /// `Name <address>` or an address.
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable holding the password (never the password).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Seconds to wait for the server before giving up.
    #[serde(default = "default_provider_timeout")]
    pub timeout_seconds: u32,
    /// A PEM file of CA certificates to trust for this server instead of the
    /// system's (a relay with a private CA); needs `starttls` or `tls`.
    #[serde(default)]
    pub ca_file: Option<String>,
}

keyword_enum! {
    /// How the SMTP connection is protected.
    #[derive(Default)]
    pub enum SmtpSecurity ("SMTP security") {
        None = "none",
        #[default]
        Starttls = "starttls",
        Tls = "tls",
    }
}

/// An SMS and voice provider: Twilio (or a Twilio-compatible API), or a
/// signed webhook.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SmsProvider {
    Twilio(TwilioSettings),
    Webhook(WebhookSettings),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    #[serde(default = "default_twilio_base_url")]
    pub base_url: String,
    pub account_sid: String,
    /// The environment variable holding the auth token.
    pub auth_token_env: String,
    /// The sending number (E.164).
    pub from: String,
    #[serde(default = "default_provider_timeout")]
    pub timeout_seconds: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub url: String,
    /// The environment variable holding the HMAC-SHA256 signing secret.
    pub secret_env: String,
    #[serde(default = "default_provider_timeout")]
    pub timeout_seconds: u32,
}

fn default_provider_timeout() -> u32 {
    10
}

fn default_twilio_base_url() -> String {
    "https://api.twilio.com".into()
}

impl TenantFile {
    /// The first of `tenant.domains`, used to build URLs the server hands out.
    pub fn canonical_domain(&self) -> &str {
        self.tenant.domains.first().map_or("", String::as_str)
    }
}

/// Whether `host` (with or without a port) names the local machine.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(address, _)| address),
        None => host.split_once(':').map_or(host, |(name, _)| name),
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

/// The issuer for requests arriving on `host`: plain HTTP for the local
/// machine, HTTPS everywhere else.
pub fn issuer_for_host(host: &str) -> String {
    let scheme = if is_loopback_host(host) {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{host}/")
}

/// The audience of the My Account API served on `host`.
pub fn my_account_audience(host: &str) -> String {
    issuer_for_host(host) + "me/"
}

/// Whether `audience` names the MFA API served on `host` (Auth0's built-in
/// `{issuer}mfa/`), or on a loopback host also its `https://` form, as for
/// the My Account API.
pub fn names_mfa_api(host: &str, audience: &str) -> bool {
    audience == issuer_for_host(host) + "mfa/"
        || (is_loopback_host(host)
            && audience
                .strip_prefix("https://")
                .and_then(|rest| rest.strip_prefix(host))
                == Some("/mfa/"))
}

/// The audience of the Management API served on `host`.
pub fn management_audience(host: &str) -> String {
    issuer_for_host(host) + "api/v2/"
}

/// Whether `audience` names the Management API served on `host`: its
/// audience, or on a loopback host also its `https://` form, as for the My
/// Account API.
pub fn names_management_api(host: &str, audience: &str) -> bool {
    audience == management_audience(host)
        || (is_loopback_host(host)
            && audience
                .strip_prefix("https://")
                .and_then(|rest| rest.strip_prefix(host))
                == Some("/api/v2/"))
}

/// Whether `audience` names the My Account API served on `host`: its
/// audience, or on a loopback host also its `https://` form (what an app
/// written for Auth0 builds from its domain, and what tenant files may name).
pub fn names_my_account_api(host: &str, audience: &str) -> bool {
    audience == my_account_audience(host)
        || (is_loopback_host(host)
            && audience
                .strip_prefix("https://")
                .and_then(|rest| rest.strip_prefix(host))
                == Some("/me/"))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    pub name: String,
    /// `host` or `host:port`; the first is canonical.
    pub domains: Vec<String>,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default = "default_session_lifetime_hours")]
    pub session_lifetime_hours: u32,
    #[serde(default = "default_idle_session_lifetime_hours")]
    pub idle_session_lifetime_hours: u32,
    #[serde(default)]
    pub brute_force_protection: BruteForceProtection,
    #[serde(default)]
    pub suspicious_ip_throttling: SuspiciousIpThrottling,
    #[serde(default)]
    pub login_page: LoginPage,
    #[serde(default)]
    pub passkeys: PasskeySettings,
    /// The languages the hosted pages and code messages speak, the first
    /// the default (Auth0's `enabled_locales`); empty: every language, English
    /// first.
    #[serde(default)]
    pub enabled_locales: Vec<crate::services::language::Language>,
}

/// The WebAuthn relying party of the tenant. Each field defaults from the
/// request's host: `rp_id` its name without port, `origins` its own origin.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PasskeySettings {
    /// Shown by authenticators; defaults to the tenant's friendly name.
    pub rp_name: Option<String>,
    /// The relying party ID (a registrable domain of the hosts).
    pub rp_id: Option<String>,
    /// Origins allowed in WebAuthn responses, besides the request's own.
    pub origins: Vec<String>,
    /// After a password login, offer users without a passkey to create one
    /// (Auth0's progressive enrollment).
    pub progressive_enrollment: bool,
    /// The Passkey API (`/passkey/register`, `/passkey/challenge` and the
    /// webauthn grant) answers on custom domains only, as Auth0's does.
    pub require_custom_domain: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BruteForceProtection {
    pub enabled: bool,
    pub max_attempts: u32,
    pub block_minutes: u32,
}

impl Default for BruteForceProtection {
    fn default() -> Self {
        Self {
            enabled: true,
            max_attempts: 10,
            block_minutes: 60,
        }
    }
}

/// Auth0's Suspicious IP Throttling, in its Management API shape: each stage
/// a bucket of `max_attempts`, one more granted every `rate` milliseconds.
/// `pre-login` is Auth0's (failed password and client-secret attempts per
/// IP); `pre-login-tenant` (the same, every IP together) and
/// `login-transaction` (login pages opened per IP by `GET /authorize`, each
/// a stored login transaction) are latchkey's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SuspiciousIpThrottling {
    pub enabled: bool,
    pub stage: ThrottlingStages,
}

impl Default for SuspiciousIpThrottling {
    fn default() -> Self {
        Self {
            enabled: true,
            stage: ThrottlingStages::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottlingStages {
    #[serde(rename = "pre-login")]
    pub pre_login: Throttle,
    #[serde(rename = "pre-login-tenant")]
    pub pre_login_tenant: Throttle,
    #[serde(rename = "login-transaction")]
    pub login_transaction: Throttle,
}

impl Default for ThrottlingStages {
    fn default() -> Self {
        Self {
            // Auth0's defaults: 100 a day per IP.
            pre_login: Throttle {
                max_attempts: 100,
                rate: 864_000,
            },
            // 2,000 at once, then 20 a second.
            pre_login_tenant: Throttle {
                max_attempts: 2_000,
                rate: 50,
            },
            // 300 at once, then one every 2 seconds per IP: with the
            // 15 minutes a login page lives, at most 750 stored per IP.
            login_transaction: Throttle {
                max_attempts: 300,
                rate: 2_000,
            },
        }
    }
}

/// A bucket: at most `max_attempts`, one more every `rate` milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    pub max_attempts: u32,
    pub rate: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LoginPage {
    pub title: Option<String>,
    /// `#rrggbb`.
    pub primary_color: Option<String>,
    pub logo_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MyAccountApi {
    pub active: bool,
    pub user_policy: MyAccountUserPolicy,
    pub require_2fa: bool,
    /// With `require_2fa`: how recent the second factor must be, seconds.
    pub two_factor_window_seconds: u32,
    pub enforce_policies: bool,
    /// Access token lifetime in seconds.
    pub token_lifetime: u32,
    pub rate_limits: MyAccountRateLimits,
}

impl Default for MyAccountApi {
    fn default() -> Self {
        Self {
            active: true,
            user_policy: MyAccountUserPolicy::RequireClientGrant,
            require_2fa: false,
            two_factor_window_seconds: 900,
            enforce_policies: false,
            token_lifetime: 600,
            rate_limits: MyAccountRateLimits::default(),
        }
    }
}

/// The Management API (`{issuer}api/v2/`): its tokens and request limits.
/// Clients reach it with `client_credentials` and a client grant naming its
/// audience; users never do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ManagementApi {
    /// Access token lifetime in seconds (Auth0's default: a day).
    pub token_lifetime: u32,
    pub rate_limits: ManagementRateLimits,
}

impl Default for ManagementApi {
    fn default() -> Self {
        Self {
            token_lifetime: 86_400,
            rate_limits: ManagementRateLimits::default(),
        }
    }
}

/// Request limits for the Management API; 0 means unlimited.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ManagementRateLimits {
    /// Requests with a verified token, every client together.
    pub tenant_per_second: u32,
    /// Requests without a verified token (none, or one refused), per IP.
    pub anonymous_per_ip_per_second: u32,
}

impl Default for ManagementRateLimits {
    fn default() -> Self {
        Self {
            tenant_per_second: 50,
            anonymous_per_ip_per_second: 20,
        }
    }
}

keyword_enum! {
    /// Which applications may obtain My Account tokens for users.
    pub enum MyAccountUserPolicy ("user policy") {
        AllowAll = "allow_all",
        RequireClientGrant = "require_client_grant",
        DenyAll = "deny_all",
    }
}

/// Request limits for the My Account API; 0 means unlimited.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MyAccountRateLimits {
    /// Requests with a verified token, every user together.
    pub tenant_per_second: u32,
    pub user_per_minute: u32,
    /// Requests without a verified token (none, or one refused), per IP.
    pub anonymous_per_ip_per_second: u32,
}

impl Default for MyAccountRateLimits {
    fn default() -> Self {
        Self {
            tenant_per_second: 25,
            user_per_minute: 0,
            anonymous_per_ip_per_second: 20,
        }
    }
}

keyword_enum! {
    /// An authentication factor users may enrol.
    pub enum FactorType ("factor") {
        Password = "password",
        Totp = "totp",
        RecoveryCode = "recovery-code",
        Email = "email",
        Phone = "phone",
        PushNotification = "push-notification",
        Passkey = "passkey",
        WebauthnRoaming = "webauthn-roaming",
        WebauthnPlatform = "webauthn-platform",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    pub min_length: u32,
    pub character_types: Vec<CharacterType>,
    pub character_type_rule: CharacterTypeRule,
    pub identical_characters: AllowOrBlock,
    pub sequential_characters: AllowOrBlock,
    pub max_length_exceeded: MaxLengthExceeded,
    pub history: PasswordHistory,
    pub dictionary: PasswordDictionary,
    pub profile_data: PasswordProfileData,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            character_types: Vec::new(),
            character_type_rule: CharacterTypeRule::All,
            identical_characters: AllowOrBlock::Allow,
            sequential_characters: AllowOrBlock::Allow,
            max_length_exceeded: MaxLengthExceeded::Truncate,
            history: PasswordHistory::default(),
            dictionary: PasswordDictionary::default(),
            profile_data: PasswordProfileData::default(),
        }
    }
}

keyword_enum! {
    pub enum CharacterType ("character type") {
        Lowercase = "lowercase",
        Uppercase = "uppercase",
        Number = "number",
        Special = "special",
    }
}

keyword_enum! {
    /// Whether every listed character type is required, or any three of the
    /// four.
    pub enum CharacterTypeRule ("character type rule") {
        All = "all",
        ThreeOfFour = "three_of_four",
    }
}

keyword_enum! {
    pub enum AllowOrBlock ("setting") {
        Allow = "allow",
        Block = "block",
    }
}

keyword_enum! {
    /// What happens to a password longer than the hasher accepts.
    pub enum MaxLengthExceeded ("max_length_exceeded setting") {
        Truncate = "truncate",
        Error = "error",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordHistory {
    pub active: bool,
    /// How many previous passwords may not be reused.
    pub size: u32,
}

impl Default for PasswordHistory {
    fn default() -> Self {
        Self {
            active: false,
            size: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordDictionary {
    pub active: bool,
    pub default: DictionaryName,
    /// Extra words to refuse, on top of the built-in list.
    pub entries: Vec<String>,
}

impl Default for PasswordDictionary {
    fn default() -> Self {
        Self {
            active: false,
            default: DictionaryName::En10k,
            entries: Vec::new(),
        }
    }
}

keyword_enum! {
    /// A built-in list of common passwords.
    pub enum DictionaryName ("dictionary") {
        En10k = "en_10k",
        En100k = "en_100k",
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordProfileData {
    pub active: bool,
    /// Profile attributes whose values may not appear in the password.
    pub blocked_fields: Vec<String>,
}

fn default_factors() -> Vec<FactorType> {
    vec![FactorType::Password]
}

fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
}

fn default_true() -> bool {
    true
}

fn default_session_lifetime_hours() -> u32 {
    72
}

fn default_idle_session_lifetime_hours() -> u32 {
    24
}

fn default_resource_server_token_lifetime() -> u32 {
    86_400
}

mod connections;
mod entities;
mod push;
pub use connections::*;
pub use entities::*;
pub use push::*;
