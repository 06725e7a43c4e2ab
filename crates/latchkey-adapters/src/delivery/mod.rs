//! The message delivery port over real providers: email over SMTP
//! (`email.rs`, lettre), SMS and voice calls through an HTTP provider
//! (`sms.rs`, over the outbound HTTP port), worded with the tenant's
//! templates (`messages.rs`, minijinja); push notifications through the
//! tenant's push providers (`push/`, over the outbound HTTP port).

pub mod email;
pub mod messages;
pub mod push;
pub mod sms;

use latchkey_core::clock::SharedClock;
use latchkey_core::outbound::{NetworkAccess, SharedHttpClient};
use latchkey_core::services::delivery::{
    CodeChannel, CodeMessage, Delivery, DeliveryError, LinkMessage, PushMessage, SharedSecrets,
};
use latchkey_core::tenant::file::TemplateSyntax;

/// Sends through the tenant's providers with the secrets the tenant file
/// names; SMS and voice providers are reached through `http`, within what
/// the server (`access`) and the tenant allow.
pub struct MessageDelivery {
    secrets: SharedSecrets,
    http: SharedHttpClient,
    clock: SharedClock,
    access: NetworkAccess,
    push: push::PushState,
}

impl MessageDelivery {
    pub fn new(
        secrets: SharedSecrets,
        http: SharedHttpClient,
        clock: SharedClock,
        access: NetworkAccess,
    ) -> Self {
        Self {
            secrets,
            http,
            clock,
            access,
            push: push::PushState::default(),
        }
    }
}

impl TemplateSyntax for MessageDelivery {
    fn check(&self, source: &str) -> Result<(), String> {
        messages::check_template(source)
    }
}

#[async_trait::async_trait]
impl Delivery for MessageDelivery {
    async fn send_code(&self, m: &CodeMessage<'_>) -> Result<(), DeliveryError> {
        let config = &m.tenant.config;
        if m.channel == CodeChannel::Email {
            let provider = config
                .email_provider
                .as_ref()
                .ok_or(DeliveryError::NotConfigured)?;
            let message = messages::code_email(m.tenant, m.languages, m.to, m.code, m.purpose);
            return email::send_email(&provider.smtp, &message, &*self.secrets).await;
        }
        let provider = config
            .sms_provider
            .as_ref()
            .ok_or(DeliveryError::NotConfigured)?;
        let (channel, text, language) = if m.channel == CodeChannel::Voice {
            let (words, language) = messages::code_voice(m.tenant, m.languages, m.code);
            (sms::Channel::Voice, words, language)
        } else {
            (
                sms::Channel::Sms,
                messages::code_sms(m.tenant, m.languages, m.code),
                None,
            )
        };
        let message = sms::PhoneMessage {
            to: m.to.to_string(),
            channel,
            text,
            language,
        };
        let outbound = sms::Outbound {
            http: &*self.http,
            access: self.access.for_tenant(&config.outbound),
        };
        sms::send(
            provider,
            &message,
            &*self.secrets,
            outbound,
            self.clock.now(),
        )
        .await
    }

    async fn send_link(&self, m: &LinkMessage<'_>) -> Result<(), DeliveryError> {
        let provider = m
            .tenant
            .config
            .email_provider
            .as_ref()
            .ok_or(DeliveryError::NotConfigured)?;
        let message = messages::link_email(m);
        email::send_email(&provider.smtp, &message, &*self.secrets).await
    }

    async fn send_push(&self, m: &PushMessage<'_>) -> Result<(), DeliveryError> {
        let outbound = sms::Outbound {
            http: &*self.http,
            access: self.access.for_tenant(&m.tenant.config.outbound),
        };
        push::send(&self.push, m, &*self.secrets, outbound, self.clock.now()).await
    }
}

/// `text` made safe in HTML and XML (the link emails, TwiML), in a text
/// node or a quoted attribute alike: the five characters markup gives a
/// meaning escaped (the apostrophe as `&#39;`, which HTML 4 knows too,
/// unlike `&apos;`), control characters other than tab and newlines (which
/// XML forbids and HTML calls errors) as spaces.
pub(crate) fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_for_text_and_attributes_alike() {
        assert_eq!(
            escape_markup("<a href=\"x\">Tom & Jerry's</a>\u{0}\u{1b}\t\n"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;  \t\n"
        );
    }
}
