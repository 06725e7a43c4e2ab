//! Push notifications through the tenant's providers (`push_notifications`
//! in its file), every request over the outbound HTTP port: the signed
//! webhook (`webhook.rs`) takes every device.
//!
//! A delivery is an error unless the provider clearly accepted it; errors
//! say what an operator can act on, never the device's push token.

pub mod webhook;

use latchkey_core::services::delivery::{DeliveryError, PushMessage, Secrets};

use super::sms::Outbound;

/// Sends `message` through the provider its push service routes to.
pub async fn send(
    message: &PushMessage<'_>,
    secrets: &dyn Secrets,
    outbound: Outbound<'_>,
    now: i64,
) -> Result<(), DeliveryError> {
    let config = &message.tenant.config.push_notifications;
    match &config.webhook {
        Some(settings) => webhook::send(settings, message, secrets, outbound, now).await,
        None => Err(DeliveryError::NotConfigured),
    }
}
