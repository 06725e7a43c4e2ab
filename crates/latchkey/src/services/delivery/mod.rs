//! Delivery of one-time codes to the outside world: email over SMTP, SMS and
//! voice calls through an HTTP provider. A failure is an error the caller
//! sees, never a silent success; every attempt is bounded in time.

pub mod email;
pub mod messages;
pub mod sms;

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

/// Sends `code` to `to` by `channel` through the tenant's provider, worded
/// in the caller's language for `purpose`.
pub async fn send_code(
    state: &crate::context::Core,
    tenant: &crate::tenant::Tenant,
    languages: &[String],
    channel: CodeChannel,
    to: &str,
    code: &str,
    purpose: messages::Purpose,
) -> Result<(), DeliveryError> {
    let config = &tenant.config;
    if channel == CodeChannel::Email {
        let provider = config
            .email_provider
            .as_ref()
            .ok_or(DeliveryError::NotConfigured)?;
        let message = messages::code_email(tenant, languages, to, code, purpose);
        return email::send_email(&provider.smtp, &message, &*state.secrets).await;
    }
    let provider = config
        .sms_provider
        .as_ref()
        .ok_or(DeliveryError::NotConfigured)?;
    let (channel, text) = if channel == CodeChannel::Voice {
        (
            sms::Channel::Voice,
            messages::code_voice(tenant, languages, code),
        )
    } else {
        (
            sms::Channel::Sms,
            messages::code_sms(tenant, languages, code),
        )
    };
    let message = sms::PhoneMessage {
        to: to.to_string(),
        channel,
        text,
    };
    sms::send(
        provider,
        &message,
        &*state.secrets,
        &state.http,
        state.clock.now(),
    )
    .await
}
