//! Push notifications through the tenant's providers (`push_notifications`
//! in its file), every request over the outbound HTTP port: APNs
//! (`apns.rs`) for `APNS` devices, FCM HTTP v1 (`fcm.rs`) for `GCM` and
//! `FCM` devices, and the signed webhook (`webhook.rs`) for devices no other
//! configured provider serves. `jwt.rs` signs the providers' tokens.
//!
//! A delivery is an error unless the provider clearly accepted it; errors
//! say what an operator can act on, never the device's push token or a
//! credential. The providers' access tokens live in [`PushState`], one per
//! process, reused until shortly before they expire.

pub mod apns;
pub mod fcm;
mod jwt;
pub mod webhook;

use latchkey_core::services::delivery::{DeliveryError, PushMessage, PushService, Secrets};

use super::sms::Outbound;

/// What the push providers keep between notifications: their access tokens.
#[derive(Default)]
pub struct PushState {
    apns: apns::ProviderTokens,
    fcm: fcm::AccessTokens,
}

/// Sends `message` through the provider its push service routes to.
pub async fn send(
    state: &PushState,
    message: &PushMessage<'_>,
    secrets: &dyn Secrets,
    outbound: Outbound<'_>,
    now: i64,
) -> Result<(), DeliveryError> {
    let config = &message.tenant.config.push_notifications;
    match (message.service, &config.apns, &config.fcm, &config.webhook) {
        (PushService::Apns, Some(settings), _, _) => {
            apns::send(&state.apns, settings, message, secrets, outbound, now).await
        }
        (PushService::Gcm | PushService::Fcm, _, Some(settings), _) => {
            fcm::send(&state.fcm, settings, message, secrets, outbound, now).await
        }
        (_, _, _, Some(settings)) => webhook::send(settings, message, secrets, outbound, now).await,
        _ => Err(DeliveryError::NotConfigured),
    }
}
