//! One module per factor type, each holding what the factor is: its
//! enrollment (the `start`/`finish` that `enrollment` dispatches to), its
//! answer at login (checked against the `mfa_token` of `mfa`), and its parts
//! on the second-step page ([`SecondFactor`]). What a type is at login is
//! decided by one exhaustive `match` per question here, so a new
//! `FactorType` does not compile until its module says what it does.
//!
//! `codes` holds what email and phone share: one-time codes sent, at
//! enrollment and at login. `webauthn` holds both kinds of WebAuthn key
//! (security keys and the device's own); `passkey` the passkey's enrollment
//! (its login is `passkey_login`'s).

pub(crate) mod codes;
pub(crate) mod email;
pub(crate) mod passkey;
pub(crate) mod password;
pub(crate) mod phone;
pub mod push;
pub(crate) mod recovery_code;
pub(crate) mod totp;
pub mod webauthn;

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
    /// A push device's approval; its app's TOTP code answers too.
    Push,
}

impl AnswerKind {
    /// The name the page's template knows it by.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Otp => "otp",
            Self::Oob => "oob",
            Self::RecoveryCode => "recovery-code",
            Self::Key => "key",
            Self::Push => "push",
        }
    }
}

/// A second factor's parts at login, as its module declares them.
#[derive(Clone, Copy)]
pub struct SecondFactor {
    /// How the page asks for it.
    pub answer: AnswerKind,
    /// How the MFA API lists it; `None` where the API does not offer it.
    pub api: Option<AuthenticatorType>,
    /// Where the page offers it: codes the user has at hand first.
    pub rank: u8,
    /// How the page names it among what may be enrolled at login (a key of
    /// the texts' `mfa.mfa-begin-enroll-options` screen); `None` when it is
    /// not enrolled there.
    pub enroll_label: Option<&'static str>,
    /// How the page names one of the user's methods of this type.
    pub label: fn(&MethodRow) -> Label,
}

/// How a page names one of a user's methods: the name the user gave it,
/// else the text of `key` (of the texts' `mfa.mfa-login-options` screen)
/// with `${destination}` the masked address or number its codes go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub name: Option<String>,
    pub key: &'static str,
    pub destination: String,
}

impl Label {
    pub(crate) fn named(m: &MethodRow, key: &'static str) -> Self {
        Self {
            name: m.name.clone(),
            key,
            destination: String::new(),
        }
    }
}

/// What a method of `kind` is at a login's second step; `None` for types
/// that are not second factors.
pub(crate) const fn second_factor(kind: FactorType) -> Option<SecondFactor> {
    match kind {
        FactorType::Totp => Some(totp::SECOND_FACTOR),
        FactorType::RecoveryCode => Some(recovery_code::SECOND_FACTOR),
        FactorType::Email => Some(email::SECOND_FACTOR),
        FactorType::Phone => Some(phone::SECOND_FACTOR),
        FactorType::WebauthnRoaming => Some(webauthn::ROAMING),
        FactorType::WebauthnPlatform => Some(webauthn::PLATFORM),
        FactorType::Password => password::SECOND_FACTOR,
        FactorType::Passkey => passkey::SECOND_FACTOR,
        FactorType::PushNotification => push::SECOND_FACTOR,
    }
}

/// How a method of `kind` answers a login's second step.
pub const fn answer_kind(kind: FactorType) -> Option<AnswerKind> {
    match second_factor(kind) {
        Some(f) => Some(f.answer),
        None => None,
    }
}

/// Whether a confirmed method of `kind` may answer a login's second step.
pub(crate) const fn is_second_factor(kind: FactorType) -> bool {
    second_factor(kind).is_some()
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
/// offer.
pub const fn authenticator_type(kind: FactorType) -> Option<AuthenticatorType> {
    match second_factor(kind) {
        Some(f) => f.api,
        None => None,
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
    pub(crate) fn of_phone(preferred: Option<&str>) -> Self {
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
    /// A push device's approval (or its enrollment confirmed).
    Push,
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
            // RFC 8176 has none for a push approval, and Auth0 adds none.
            Self::Push => None,
            Self::Key { synced: true } => Some("swk"),
            Self::Key { synced: false } => Some("hwk"),
        }
    }
}

/// Where a method of `kind` is offered on the second-step page (types that
/// are no second factor are never offered: last).
pub const fn rank(kind: FactorType) -> u8 {
    match second_factor(kind) {
        Some(f) => f.rank,
        None => u8::MAX,
    }
}

/// What a user without a second factor may enroll at the login, as the
/// page names it (a text key); `None` for types not enrolled there.
pub const fn enroll_label(kind: FactorType) -> Option<&'static str> {
    match second_factor(kind) {
        Some(f) => f.enroll_label,
        None => None,
    }
}

/// A destination with all but its last characters hidden.
pub(crate) fn masked(destination: &str) -> String {
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
pub(crate) fn destination(m: &MethodRow) -> Option<&str> {
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

/// How the second-step page names a method (as its type's module says;
/// types that are no second factor are never on the page).
pub fn label(m: &MethodRow) -> Label {
    match second_factor(m.method_type) {
        Some(f) => (f.label)(m),
        None => Label::named(m, ""),
    }
}

/// The masked destination held under `key` in a method's data.
fn masked_at(m: &MethodRow, key: &str) -> String {
    m.data
        .get(key)
        .and_then(Value::as_str)
        .map(masked)
        .unwrap_or_default()
}
