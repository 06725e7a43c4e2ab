//! `push_notifications`: how the tenant's push-notification logins reach the
//! user's device. APNs (token-based auth with a `.p8` key), FCM (HTTP v1 with
//! a service account), and a signed webhook for what has no provider of its
//! own. The file names environment variables, never the credentials.

use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PushNotifications {
    /// The login page shows a two-digit code the user picks on the device.
    pub number_matching: bool,
    /// Apple Push Notification service, for devices enrolled with `APNS`.
    pub apns: Option<ApnsSettings>,
    /// Firebase Cloud Messaging, for devices enrolled with `GCM` or `FCM`.
    pub fcm: Option<FcmSettings>,
    /// A signed JSON webhook, for devices no other provider serves.
    pub webhook: Option<WebhookSettings>,
}

impl PushNotifications {
    /// Whether any provider is configured.
    pub fn has_provider(&self) -> bool {
        self.apns.is_some() || self.fcm.is_some() || self.webhook.is_some()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApnsSettings {
    /// The Apple developer team ID (10 characters), the token's `iss`.
    pub team_id: String,
    /// The ID of the signing key (10 characters), the token's `kid`.
    pub key_id: String,
    /// The environment variable holding the key's `.p8` PEM.
    pub private_key_env: String,
    /// The app's bundle ID, sent as `apns-topic`.
    pub topic: String,
    #[serde(default)]
    pub environment: ApnsEnvironment,
    /// Replaces the environment's host (a proxy, a test receiver).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_push_timeout")]
    pub timeout_seconds: u32,
}

impl ApnsSettings {
    /// Where requests go: `base_url`, else the environment's host.
    pub fn endpoint(&self) -> &str {
        match (&self.base_url, self.environment) {
            (Some(url), _) => url.trim_end_matches('/'),
            (None, ApnsEnvironment::Production) => "https://api.push.apple.com",
            (None, ApnsEnvironment::Sandbox) => "https://api.sandbox.push.apple.com",
        }
    }
}

keyword_enum! {
    /// Which APNs environment the app's push tokens belong to.
    #[derive(Default)]
    pub enum ApnsEnvironment ("APNs environment") {
        #[default]
        Production = "production",
        Sandbox = "sandbox",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FcmSettings {
    /// The environment variable holding the service account's JSON key.
    pub service_account_env: String,
    /// Replaces `https://fcm.googleapis.com` (a proxy, a test receiver).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_push_timeout")]
    pub timeout_seconds: u32,
}

impl FcmSettings {
    pub fn endpoint(&self) -> &str {
        self.base_url
            .as_deref()
            .map_or("https://fcm.googleapis.com", |u| u.trim_end_matches('/'))
    }
}

fn default_push_timeout() -> u32 {
    10
}
