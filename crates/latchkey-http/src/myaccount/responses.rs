//! What `/me/v1` answers, as types: serialized on the wire and described in
//! the API's own OpenAPI document (`openapi.rs`) by the same definitions.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use latchkey_core::clock::rfc3339;
use latchkey_core::services::connected_accounts::Account;
use latchkey_core::services::enrollment::{Challenge, Started};
use latchkey_core::services::methods::{Method, has_name, is_primary};
use latchkey_core::tenant::FactorType;

/// Authentication factor types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = FactorTypeEnum)]
pub(crate) enum FactorTypeEnum {
    Password,
    Passkey,
    WebauthnPlatform,
    WebauthnRoaming,
    Totp,
    Phone,
    Email,
    PushNotification,
    RecoveryCode,
}

impl From<FactorType> for FactorTypeEnum {
    fn from(k: FactorType) -> Self {
        match k {
            FactorType::Password => Self::Password,
            FactorType::Passkey => Self::Passkey,
            FactorType::WebauthnPlatform => Self::WebauthnPlatform,
            FactorType::WebauthnRoaming => Self::WebauthnRoaming,
            FactorType::Totp => Self::Totp,
            FactorType::Phone => Self::Phone,
            FactorType::Email => Self::Email,
            FactorType::PushNotification => Self::PushNotification,
            FactorType::RecoveryCode => Self::RecoveryCode,
        }
    }
}

/// Primary and/or secondary factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum UsageEnum {
    Primary,
    Secondary,
}

fn usage(kind: FactorType) -> Vec<UsageEnum> {
    vec![if is_primary(kind) {
        UsageEnum::Primary
    } else {
        UsageEnum::Secondary
    }]
}

/// A factor the user may enroll.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Factor {
    #[serde(rename = "type")]
    pub kind: FactorTypeEnum,
    pub usage: Vec<UsageEnum>,
}

impl From<FactorType> for Factor {
    fn from(k: FactorType) -> Self {
        Self {
            kind: k.into(),
            usage: usage(k),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ListFactorsResponseContent {
    pub factors: Vec<Factor>,
}

/// The user's password.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuthenticationMethodPassword {
    pub id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub usage: Vec<UsageEnum>,
    /// The ID of the user identity the password belongs to.
    pub identity_user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub last_password_reset: Option<String>,
}

/// A second factor (TOTP, recovery code, …).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuthenticationMethodMfa {
    pub id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub usage: Vec<UsageEnum>,
    /// Always true: unconfirmed enrollments are not methods.
    pub confirmed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub last_auth_at: Option<String>,
    /// The friendly name (not for recovery codes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A passkey.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuthenticationMethodPasskey {
    pub id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub usage: Vec<UsageEnum>,
    pub identity_user_id: String,
    /// The credential ID, base64url.
    pub key_id: String,
    /// The COSE public key, base64url.
    pub public_key: String,
    /// `multi_device` (may be synced) or `single_device`.
    pub credential_device_type: String,
    pub credential_backed_up: bool,
    /// The WebAuthn user handle, base64url.
    pub user_handle: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transports: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aaguid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relying_party_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub last_auth_at: Option<String>,
    /// A name the user gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An authentication method of the user, by `type`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type")]
pub(crate) enum AuthenticationMethod {
    #[serde(rename = "password")]
    Password(AuthenticationMethodPassword),
    #[serde(rename = "passkey")]
    Passkey(Box<AuthenticationMethodPasskey>),
    #[serde(rename = "totp")]
    Totp(AuthenticationMethodMfa),
    #[serde(rename = "recovery-code")]
    RecoveryCode(AuthenticationMethodMfa),
    #[serde(rename = "push-notification")]
    PushNotification(AuthenticationMethodMfa),
    #[serde(rename = "email")]
    Email(AuthenticationMethodEmail),
    #[serde(rename = "phone")]
    Phone(AuthenticationMethodPhone),
    #[serde(rename = "webauthn-platform")]
    WebauthnPlatform(AuthenticationMethodWebAuthn),
    #[serde(rename = "webauthn-roaming")]
    WebauthnRoaming(AuthenticationMethodWebAuthn),
}

impl AuthenticationMethod {
    /// The wire form of a method (None for a passkey whose stored data is
    /// incomplete).
    pub(crate) fn of(m: &Method) -> Option<Self> {
        if m.kind == FactorType::Passkey {
            let p = m.passkey.as_ref()?;
            return Some(Self::Passkey(Box::new(AuthenticationMethodPasskey {
                id: m.id.clone(),
                created_at: rfc3339(m.created_at),
                usage: usage(m.kind),
                identity_user_id: m.identity_user_id.clone().unwrap_or_default(),
                key_id: p.key_id.clone(),
                public_key: p.public_key.clone(),
                credential_device_type: if p.backup_eligible {
                    "multi_device"
                } else {
                    "single_device"
                }
                .into(),
                credential_backed_up: p.backed_up,
                user_handle: p.user_handle.clone(),
                transports: p.transports.clone(),
                user_agent: p.user_agent.clone(),
                aaguid: p.aaguid.clone(),
                relying_party_id: p.relying_party_id.clone(),
                last_auth_at: m.last_auth_at.map(rfc3339),
                name: m.name.clone(),
            })));
        }
        if m.kind == FactorType::Password {
            return Some(Self::Password(AuthenticationMethodPassword {
                id: m.id.clone(),
                created_at: rfc3339(m.created_at),
                usage: usage(m.kind),
                identity_user_id: m.identity_user_id.clone().unwrap_or_default(),
                last_password_reset: m.last_password_reset.map(rfc3339),
            }));
        }
        let mfa = AuthenticationMethodMfa {
            id: m.id.clone(),
            created_at: rfc3339(m.created_at),
            usage: usage(m.kind),
            confirmed: true,
            last_auth_at: m.last_auth_at.map(rfc3339),
            name: m.name.clone().filter(|_| has_name(m.kind)),
        };
        Some(match m.kind {
            FactorType::Totp => Self::Totp(mfa),
            FactorType::RecoveryCode => Self::RecoveryCode(mfa),
            FactorType::PushNotification => Self::PushNotification(mfa),
            FactorType::Email => Self::Email(AuthenticationMethodEmail {
                base: mfa,
                email: m.contact.clone()?,
            }),
            FactorType::Phone => Self::Phone(AuthenticationMethodPhone {
                base: mfa,
                phone_number: m.contact.clone()?,
                preferred_authentication_method: m
                    .preferred_phone_method
                    .clone()
                    .unwrap_or_else(|| "sms".into()),
            }),
            FactorType::WebauthnPlatform | FactorType::WebauthnRoaming => {
                let key = AuthenticationMethodWebAuthn {
                    base: mfa,
                    key_id: m.passkey.as_ref().map(|k| k.key_id.clone()),
                    public_key: m.passkey.as_ref().map(|k| k.public_key.clone()),
                };
                if m.kind == FactorType::WebauthnPlatform {
                    Self::WebauthnPlatform(key)
                } else {
                    Self::WebauthnRoaming(key)
                }
            }
            FactorType::Password | FactorType::Passkey => return None,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ListAuthenticationMethodsResponseContent {
    pub authentication_methods: Vec<AuthenticationMethod>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordComplexityPolicy {
    pub min_length: u32,
    pub character_types: Vec<String>,
    pub character_type_rule: String,
    pub identical_characters: String,
    pub sequential_characters: String,
    pub max_length_exceeded: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordProfileDataPolicy {
    pub active: bool,
    pub blocked_fields: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordHistoryPolicy {
    pub active: bool,
    pub size: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordDictionaryPolicy {
    pub active: bool,
    pub default: String,
}

/// The connection's password policy.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordAuthenticationMethodPolicy {
    pub complexity: PasswordComplexityPolicy,
    pub profile_data: PasswordProfileDataPolicy,
    pub history: PasswordHistoryPolicy,
    pub dictionary: PasswordDictionaryPolicy,
}

/// Password enrollment started.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PasswordCreationResponse {
    /// `password|new`
    pub id: String,
    pub auth_session: String,
    #[schema(value_type = PasswordAuthenticationMethodPolicy)]
    pub policy: Value,
}

/// TOTP or push enrollment started: the URI to scan, once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QrCodeCreationResponse {
    pub id: String,
    pub auth_session: String,
    /// `otpauth://totp/…` (for push, with the enrollment ticket and the
    /// device API's URL)
    pub barcode_uri: String,
    /// The secret, base32 (TOTP only: a push device enrolls by the code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual_input_code: Option<String>,
}

/// Recovery-code enrollment started: the code, once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecoveryCodeCreationResponse {
    pub id: String,
    pub auth_session: String,
    pub recovery_code: String,
}

/// Passkey enrollment started: the options for `navigator.credentials.create()`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PasskeyCreationResponse {
    pub auth_session: String,
    /// `PublicKeyCredentialCreationOptions` (WebAuthn JSON, base64url binary).
    #[schema(value_type = Object)]
    pub authn_params_public_key: Value,
}

/// Email or phone enrollment started: a code is on its way.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MfaBaseCreationResponse {
    pub id: String,
    pub auth_session: String,
}

/// A WebAuthn key used as a second factor (a security key, or the device's
/// platform authenticator).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuthenticationMethodWebAuthn {
    #[serde(flatten)]
    pub base: AuthenticationMethodMfa,
    /// The credential ID, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The COSE public key, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// An email address for one-time codes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuthenticationMethodEmail {
    #[serde(flatten)]
    pub base: AuthenticationMethodMfa,
    pub email: String,
}

/// A phone number for one-time codes by SMS or voice.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuthenticationMethodPhone {
    #[serde(flatten)]
    pub base: AuthenticationMethodMfa,
    pub phone_number: String,
    /// `sms` or `voice`.
    pub preferred_authentication_method: String,
}

/// The 202 body of an enrollment, by the type requested.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum CreateAuthenticationMethodResponseContent {
    Passkey(PasskeyCreationResponse),
    Code(MfaBaseCreationResponse),
    Password(PasswordCreationResponse),
    QrCode(QrCodeCreationResponse),
    RecoveryCode(RecoveryCodeCreationResponse),
}

impl From<&Started> for CreateAuthenticationMethodResponseContent {
    fn from(s: &Started) -> Self {
        let (id, auth_session) = (s.method_id.clone(), s.auth_session.clone());
        match &s.challenge {
            Challenge::Password { policy } => Self::Password(PasswordCreationResponse {
                id,
                auth_session,
                policy: policy.clone(),
            }),
            Challenge::Totp {
                barcode_uri,
                manual_input_code,
            } => Self::QrCode(QrCodeCreationResponse {
                id,
                auth_session,
                barcode_uri: barcode_uri.clone(),
                manual_input_code: Some(manual_input_code.clone()),
            }),
            Challenge::Push { barcode_uri } => Self::QrCode(QrCodeCreationResponse {
                id,
                auth_session,
                barcode_uri: barcode_uri.clone(),
                manual_input_code: None,
            }),
            Challenge::Passkey { options } => Self::Passkey(PasskeyCreationResponse {
                auth_session,
                authn_params_public_key: options.clone(),
            }),
            Challenge::CodeSent => Self::Code(MfaBaseCreationResponse { id, auth_session }),
            Challenge::RecoveryCode { recovery_code } => {
                Self::RecoveryCode(RecoveryCodeCreationResponse {
                    id,
                    auth_session,
                    recovery_code: recovery_code.clone(),
                })
            }
        }
    }
}

/// The ticket to send the browser with.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectParams {
    pub ticket: String,
}

/// A connect request started: send the browser to `connect_uri?ticket=…`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreateConnectedAccountsResponseContent {
    pub connect_uri: String,
    /// Keep it for `complete`.
    pub auth_session: String,
    pub connect_params: ConnectParams,
    /// Seconds until the ticket expires.
    pub expires_in: i64,
}

/// A connected account.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectedAccount {
    pub id: String,
    pub connection: String,
    /// Always `offline`: latchkey keeps the tokens.
    pub access_type: String,
    pub scopes: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When the refresh token expires, when the provider said.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

impl From<&Account> for ConnectedAccount {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.clone(),
            connection: a.connection.clone(),
            access_type: "offline".into(),
            scopes: a.scopes.clone(),
            created_at: rfc3339(a.created_at),
            expires_at: a.expires_at.map(rfc3339),
        }
    }
}

/// The account `complete` stored: a connected account.
pub(crate) type CompleteConnectedAccountsResponseContent = ConnectedAccount;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ListConnectedAccountsResponseContent {
    pub accounts: Vec<ConnectedAccount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A connection offered for linking.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectedAccountConnection {
    pub name: String,
    pub strategy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ListConnectedAccountsConnectionsResponseContent {
    pub connections: Vec<ConnectedAccountConnection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::services::password_policy::policy_json;
    use latchkey_core::tenant::PasswordPolicy;

    #[test]
    fn the_published_policy_matches_its_schema_type() {
        let v = policy_json(&PasswordPolicy::default());
        let typed: PasswordAuthenticationMethodPolicy = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(typed).unwrap(), v);
    }

    #[test]
    fn methods_serialize_with_their_type_tag() {
        let m = Method {
            id: "totp|dev_AAAAAAAAAAAAAAAA".into(),
            kind: FactorType::Totp,
            name: Some("Phone".into()),
            created_at: 0,
            last_auth_at: None,
            identity_user_id: None,
            last_password_reset: None,
            passkey: None,
            contact: None,
            preferred_phone_method: None,
        };
        let v = serde_json::to_value(AuthenticationMethod::of(&m).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "totp", "id": "totp|dev_AAAAAAAAAAAAAAAA",
                "created_at": "1970-01-01T00:00:00.000Z", "usage": ["secondary"], "confirmed": true,
                "name": "Phone"})
        );
    }
}
