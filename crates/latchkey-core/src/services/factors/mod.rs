//! What each factor type is at login, decided by one exhaustive `match` per
//! question, so a new `FactorType` does not compile until every place that
//! dispatches on it says what the factor does there.

use serde_json::Value;

use crate::store::MethodRow;
use crate::tenant::FactorType;

/// How a second factor is answered on the hosted login's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// A code from an authenticator app.
    Otp,
    /// A code sent by email, text message or voice call.
    Oob,
    RecoveryCode,
    /// A WebAuthn key's signature.
    Key,
}

impl AnswerKind {
    /// The name the page's template knows it by.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Otp => "otp",
            Self::Oob => "oob",
            Self::RecoveryCode => "recovery-code",
            Self::Key => "key",
        }
    }
}

/// How a method of `kind` answers a login's second step; `None` for types
/// that are not second factors (the password and passkeys are first
/// factors; push notifications are not supported yet).
pub const fn answer_kind(kind: FactorType) -> Option<AnswerKind> {
    match kind {
        FactorType::Totp => Some(AnswerKind::Otp),
        FactorType::Email | FactorType::Phone => Some(AnswerKind::Oob),
        FactorType::RecoveryCode => Some(AnswerKind::RecoveryCode),
        FactorType::WebauthnRoaming | FactorType::WebauthnPlatform => Some(AnswerKind::Key),
        FactorType::Password | FactorType::Passkey | FactorType::PushNotification => None,
    }
}

/// Whether a confirmed method of `kind` may answer a login's second step.
pub const fn is_second_factor(kind: FactorType) -> bool {
    answer_kind(kind).is_some()
}

/// The MFA API's `authenticator_type` (and challenge type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthenticatorType {
    Otp,
    Oob,
    RecoveryCode,
}

impl AuthenticatorType {
    /// In the order `mfa_requirements.challenge` lists them.
    pub const ALL: [Self; 3] = [Self::Otp, Self::Oob, Self::RecoveryCode];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Otp => "otp",
            Self::Oob => "oob",
            Self::RecoveryCode => "recovery-code",
        }
    }
}

/// How the MFA API lists a method of `kind`; `None` for types it does not
/// offer (WebAuthn keys need the hosted page; first factors are not second
/// ones; push notifications are not supported yet).
pub const fn authenticator_type(kind: FactorType) -> Option<AuthenticatorType> {
    match kind {
        FactorType::Totp => Some(AuthenticatorType::Otp),
        FactorType::Email | FactorType::Phone => Some(AuthenticatorType::Oob),
        FactorType::RecoveryCode => Some(AuthenticatorType::RecoveryCode),
        FactorType::WebauthnRoaming
        | FactorType::WebauthnPlatform
        | FactorType::Password
        | FactorType::Passkey
        | FactorType::PushNotification => None,
    }
}

/// The way a one-time code travels (the MFA API's `oob_channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
    Voice,
}

impl Channel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Voice => "voice",
        }
    }

    /// A phone's channel from its `preferred_authentication_method`: a
    /// voice call when it says so, else a text message.
    pub fn of_phone(preferred: Option<&str>) -> Self {
        if preferred == Some("voice") {
            Self::Voice
        } else {
            Self::Sms
        }
    }

    /// The channel written with a challenge (`email`, `voice`, else `sms`).
    pub fn stored(name: Option<&str>) -> Self {
        match name {
            Some("email") => Self::Email,
            Some("voice") => Self::Voice,
            _ => Self::Sms,
        }
    }
}

/// The channel a phone or email method's codes travel by; `None` for the
/// types no code is sent to.
pub fn channel(m: &MethodRow) -> Option<Channel> {
    match m.method_type {
        FactorType::Email => Some(Channel::Email),
        FactorType::Phone => Some(Channel::of_phone(
            m.data
                .get("preferred_authentication_method")
                .and_then(Value::as_str),
        )),
        FactorType::Totp
        | FactorType::RecoveryCode
        | FactorType::WebauthnRoaming
        | FactorType::WebauthnPlatform
        | FactorType::Password
        | FactorType::Passkey
        | FactorType::PushNotification => None,
    }
}

/// What answered a login's second step, for the tokens' `amr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    Otp,
    Code(Channel),
    RecoveryCode,
    /// A WebAuthn key: `synced` when a platform credential may be synced
    /// (backup eligible), and so is not bound to one device.
    Key {
        synced: bool,
    },
}

impl Answered {
    /// The `amr` value (RFC 8176) the answer adds beside `mfa`: `otp`,
    /// `sms`, `tel`, `hwk` or `swk`. RFC 8176 has none for an emailed or a
    /// recovery code: `mfa` alone says it.
    pub const fn amr(self) -> Option<&'static str> {
        match self {
            Self::Otp => Some("otp"),
            Self::Code(Channel::Sms) => Some("sms"),
            Self::Code(Channel::Voice) => Some("tel"),
            Self::Code(Channel::Email) | Self::RecoveryCode => None,
            Self::Key { synced: true } => Some("swk"),
            Self::Key { synced: false } => Some("hwk"),
        }
    }
}

/// Where a method of `kind` is offered on the second-step page: codes the
/// user has at hand first, the recovery code last.
pub const fn rank(kind: FactorType) -> u8 {
    match kind {
        FactorType::Totp => 0,
        FactorType::WebauthnRoaming | FactorType::WebauthnPlatform => 1,
        FactorType::Phone => 2,
        FactorType::Email => 3,
        FactorType::RecoveryCode => 4,
        // Not second factors: never offered, placed last.
        FactorType::Password | FactorType::Passkey | FactorType::PushNotification => 4,
    }
}

/// What a user without a second factor may enroll at the login, as the
/// page names it; `None` for types not enrolled there.
pub const fn enroll_label(kind: FactorType) -> Option<&'static str> {
    match kind {
        FactorType::Totp => Some("Authenticator app"),
        FactorType::WebauthnRoaming => Some("Security key"),
        FactorType::WebauthnPlatform => Some("This device (fingerprint, face or screen lock)"),
        FactorType::Phone => Some("Text message or voice call"),
        FactorType::Email => Some("Email"),
        // A recovery code comes with the first factor; the rest are not
        // second factors (push notifications are not supported yet).
        FactorType::RecoveryCode
        | FactorType::Password
        | FactorType::Passkey
        | FactorType::PushNotification => None,
    }
}

/// A destination with all but its last characters hidden.
pub fn masked(destination: &str) -> String {
    if let Some(at) = destination.find('@') {
        let first = destination.chars().next().unwrap_or('*');
        return format!("{first}***{}", &destination[at..]);
    }
    // A phone number (ASCII, E.164): its last four digits stay.
    let hidden = destination.len().saturating_sub(4);
    destination
        .char_indices()
        .map(|(i, c)| {
            if i < hidden && c.is_ascii_digit() {
                '*'
            } else {
                c
            }
        })
        .collect()
}

/// Where a method's codes go (its email address or phone number).
pub fn destination(m: &MethodRow) -> Option<&str> {
    let key = match m.method_type {
        FactorType::Email => "email",
        FactorType::Phone => "phone_number",
        FactorType::Totp
        | FactorType::RecoveryCode
        | FactorType::WebauthnRoaming
        | FactorType::WebauthnPlatform
        | FactorType::Password
        | FactorType::Passkey
        | FactorType::PushNotification => return None,
    };
    m.data.get(key).and_then(Value::as_str)
}

/// How the second-step page names a method.
pub fn label(m: &MethodRow) -> String {
    let dest = |key: &str| {
        m.data
            .get(key)
            .and_then(Value::as_str)
            .map(masked)
            .unwrap_or_default()
    };
    let named = |fallback: &str| m.name.clone().unwrap_or_else(|| fallback.to_string());
    match m.method_type {
        FactorType::Totp => named("Authenticator app"),
        FactorType::RecoveryCode => "Recovery code".into(),
        FactorType::Email => format!("Email a code to {}", dest("email")),
        FactorType::Phone => {
            let how = match channel(m) {
                Some(Channel::Voice) => "Call",
                Some(Channel::Sms | Channel::Email) | None => "Text a code to",
            };
            format!("{how} {}", dest("phone_number"))
        }
        FactorType::WebauthnRoaming => named("Security key"),
        FactorType::WebauthnPlatform => named("This device (fingerprint, face or screen lock)"),
        // Not offered on the page (not second factors); named as listed.
        FactorType::Password | FactorType::Passkey | FactorType::PushNotification => {
            named("This device (fingerprint, face or screen lock)")
        }
    }
}
