//! `push_notifications`: how the tenant's push-notification logins reach the
//! user's device: a signed webhook for what has no provider of its own. The
//! file names environment variables, never the credentials.

use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PushNotifications {
    /// The login page shows a two-digit code the user picks on the device.
    pub number_matching: bool,
    /// A signed JSON webhook, for devices no other provider serves.
    pub webhook: Option<WebhookSettings>,
}

impl PushNotifications {
    /// Whether any provider is configured.
    pub fn has_provider(&self) -> bool {
        self.webhook.is_some()
    }
}
