//! The message delivery port: the services decide what to send (which code,
//! by which channel, for what purpose, to whom, in which languages; which
//! push notification to which device) and hand it to a [`Delivery`]; the
//! adapter (`adapters::delivery`: SMTP, the SMS and voice providers, APNs,
//! FCM and the push webhook over the outbound HTTP port, the tenant's
//! templates) words and sends it. A failure is an error the caller sees,
//! never a silent success; every attempt is bounded in time.

use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryError {
    /// The tenant has no provider for this channel.
    #[error("no provider is configured for this channel")]
    NotConfigured,
    /// The provider's configuration cannot work (a missing secret, a bad address).
    #[error("the provider is misconfigured: {0}")]
    Config(String),
    /// The provider refused, failed, or did not answer in time.
    #[error("the provider failed: {0}")]
    Failed(String),
}

/// Where provider secrets come from: the environment variables a tenant file
/// names (`password_env`, `auth_token_env`, `secret_env`).
pub trait Secrets: Send + Sync {
    fn get(&self, name: &str) -> Option<String>;
}

pub type SharedSecrets = Arc<dyn Secrets>;

/// The process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct EnvSecrets;

impl Secrets for EnvSecrets {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// Fixed values (tests, embedding).
#[derive(Debug, Default, Clone)]
pub struct MapSecrets(pub HashMap<String, String>);

impl Secrets for MapSecrets {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// How a one-time code travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChannel {
    Email,
    Sms,
    Voice,
}

/// Why a code is sent: to confirm a new method, or to sign in with one.
/// Templates see it as `purpose` (`enroll` or `login`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Enroll,
    Login,
}

/// One code to send, as the services decide it.
#[derive(Debug, Clone, Copy)]
pub struct CodeMessage<'a> {
    pub tenant: &'a crate::tenant::Tenant,
    /// The caller's languages, most preferred first (see [`languages`]).
    pub languages: &'a [String],
    pub channel: CodeChannel,
    /// An email address, or an E.164 phone number.
    pub to: &'a str,
    pub code: &'a str,
    pub purpose: Purpose,
}

/// What a mailed link is for. Templates see it as `purpose`
/// (`verify_email` or `reset_password`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Following it verifies the account's email address.
    VerifyEmail,
    /// Following it opens the page that sets a new password.
    ResetPassword,
    /// Following it logs in (a passwordless connection's magic link).
    PasswordlessLogin,
}

impl LinkPurpose {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::PasswordlessLogin => "passwordless_login",
        }
    }
}

/// One link to mail, as the services decide it. The link is a secret: the
/// adapter sends it and never logs it.
#[derive(Debug, Clone, Copy)]
pub struct LinkMessage<'a> {
    pub tenant: &'a crate::tenant::Tenant,
    /// The language to word it in, chosen from the caller's with the
    /// tenant's (the link's page speaks it too).
    pub language: crate::services::language::Language,
    /// An email address.
    pub to: &'a str,
    /// The whole URL to follow.
    pub link: &'a str,
    pub purpose: LinkPurpose,
    /// How long the link works, in minutes (what the message says).
    pub valid_minutes: i64,
}

pub use super::push_message::{PushMessage, PushNotification, PushService, PushSource, Software};

/// Sends messages through the tenant's providers, worded with the tenant's
/// templates; it also checks templates when a tenant file is read.
#[async_trait::async_trait]
pub trait Delivery: crate::tenant::file::TemplateSyntax {
    /// Sends `message.code` by `message.channel` through the tenant's
    /// provider ([`DeliveryError::NotConfigured`] when it has none).
    async fn send_code(&self, message: &CodeMessage<'_>) -> Result<(), DeliveryError>;

    /// Mails `message.link` through the tenant's email provider, worded in
    /// the caller's language for its purpose
    /// ([`DeliveryError::NotConfigured`] when the tenant has none).
    async fn send_link(&self, message: &LinkMessage<'_>) -> Result<(), DeliveryError>;

    /// Sends `message.notification` to the device's push token through the
    /// provider its service routes to: `APNS` to APNs, `GCM`/`FCM` to FCM,
    /// and what has no provider of its own to the tenant's webhook
    /// ([`DeliveryError::NotConfigured`] when none applies).
    async fn send_push(&self, message: &PushMessage<'_>) -> Result<(), DeliveryError>;
}

pub(crate) type SharedDelivery = Arc<dyn Delivery>;

/// Sends `code` to `to` by `channel` through the tenant's provider, worded
/// in the caller's language for `purpose`.
pub async fn send_code(
    state: &crate::context::Core,
    tenant: &crate::tenant::Tenant,
    languages: &[String],
    channel: CodeChannel,
    to: &str,
    code: &str,
    purpose: Purpose,
) -> Result<(), DeliveryError> {
    state
        .outside
        .delivery
        .send_code(&CodeMessage {
            tenant,
            languages,
            channel,
            to,
            code,
            purpose,
        })
        .await
}

/// Sends `notification` to a device (its push `service` and opened push
/// `token`), through the tenant's provider for that service. `expires_at`
/// (unix seconds) is when the transaction ends: a provider holding the
/// notification for an offline device drops it then.
pub async fn send_push(
    state: &crate::context::Core,
    tenant: &crate::tenant::Tenant,
    service: PushService,
    token: &str,
    notification: &PushNotification,
    expires_at: i64,
) -> Result<(), DeliveryError> {
    state
        .outside
        .delivery
        .send_push(&PushMessage {
            tenant,
            service,
            token,
            notification,
            expires_at,
        })
        .await
}

/// Languages from an `Accept-Language` header, most preferred first.
pub fn languages(accept_language: &str) -> Vec<String> {
    let mut tagged: Vec<(f32, usize, String)> = accept_language
        .split(',')
        .take(20)
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next()?.trim();
            if tag.is_empty() || tag == "*" || tag.len() > 35 {
                return None;
            }
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((q, i, tag.to_string()))
        })
        .collect();
    tagged.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    tagged.into_iter().map(|(_, _, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_in_preference_order() {
        assert_eq!(
            languages("fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5"),
            vec!["fr-CH", "fr", "en"]
        );
        assert_eq!(languages("en;q=0.2, de"), vec!["de", "en"]);
        assert!(languages("").is_empty());
    }
}
