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
