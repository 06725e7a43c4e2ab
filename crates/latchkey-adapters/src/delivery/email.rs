//! Email over SMTP: one connection per message, plain, STARTTLS or implicit
//! TLS as the tenant configures, bounded in time from connect to QUIT.
//!
//! Error mapping:
//! - [`DeliveryError::Config`]: the tenant's settings cannot work (a malformed
//!   `from`, a `username` without `password_env`, a named password variable
//!   that is not set), or the caller passed a malformed recipient. Retrying
//!   the same call cannot succeed.
//! - [`DeliveryError::Failed`]: the server refused the connection, rejected a
//!   command (authentication, sender, recipient, data), broke the TLS
//!   handshake, or did not answer within `timeout_seconds`.
//!
//! Error texts name the server and the reason, never a credential.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use latchkey_core::services::delivery::{DeliveryError, Secrets};
use latchkey_core::tenant::model::{SmtpSecurity, SmtpSettings};

/// One message to one recipient, with a plain-text and an HTML rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    /// The recipient: `address` or `Name <address>`.
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Sends a multipart/alternative (text + HTML) message. Bounded by
/// `settings.timeout_seconds` overall (connect + send; a value of 0 counts as
/// 1 second), never blocking a runtime worker.
///
/// A malformed recipient (`message.to`) is reported as
/// [`DeliveryError::Config`] (`invalid recipient …`): it is the caller's input
/// and sending it again cannot succeed.
pub async fn send_email(
    settings: &SmtpSettings,
    message: &EmailMessage,
    secrets: &dyn Secrets,
) -> Result<(), DeliveryError> {
    let email = build_message(settings, message)?;
    let credentials = credentials(settings, secrets)?;
    let budget = Duration::from_secs(u64::from(settings.timeout_seconds.max(1)));
    let roots = match &settings.ca_file {
        Some(path) => Some(tokio::fs::read(path).await.map_err(|err| {
            DeliveryError::Config(format!("cannot read smtp.ca_file {path}: {err}"))
        })?),
        None => None,
    };
    let transport = transport(settings, credentials, budget, roots.as_deref())?;
    let envelope: Envelope = email.envelope().clone();
    let raw = email.formatted();

    match tokio::time::timeout(budget, transport.send_raw(&envelope, &raw)).await {
        Ok(Ok(_response)) => Ok(()),
        Ok(Err(err)) => Err(DeliveryError::Failed(format!(
            "SMTP delivery through {}:{} failed: {err}",
            settings.host, settings.port
        ))),
        Err(_elapsed) => Err(DeliveryError::Failed(format!(
            "SMTP server {}:{} did not complete the delivery within {} s",
            settings.host,
            settings.port,
            budget.as_secs()
        ))),
    }
}

fn build_message(
    settings: &SmtpSettings,
    message: &EmailMessage,
) -> Result<Message, DeliveryError> {
    let from: Mailbox = settings.from.trim().parse().map_err(|err| {
        DeliveryError::Config(format!("invalid sender address {:?}: {err}", settings.from))
    })?;
    let to: Mailbox = message.to.trim().parse().map_err(|err| {
        DeliveryError::Config(format!("invalid recipient {:?}: {err}", message.to))
    })?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(message.subject.as_str())
        .multipart(MultiPart::alternative_plain_html(
            message.text.clone(),
            message.html.clone(),
        ))
        .map_err(|err| DeliveryError::Config(format!("cannot build the message: {err}")))
}

fn credentials(
    settings: &SmtpSettings,
    secrets: &dyn Secrets,
) -> Result<Option<Credentials>, DeliveryError> {
    let Some(username) = &settings.username else {
        return Ok(None);
    };
    let Some(variable) = &settings.password_env else {
        return Err(DeliveryError::Config(
            "smtp.username is set but smtp.password_env is not".to_owned(),
        ));
    };
    let password = secrets.get(variable).ok_or_else(|| {
        DeliveryError::Config(format!("the SMTP password variable {variable} is not set"))
    })?;
    Ok(Some(Credentials::new(username.clone(), password)))
}

fn transport(
    settings: &SmtpSettings,
    credentials: Option<Credentials>,
    budget: Duration,
    roots: Option<&[u8]>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
    let tls = match settings.security {
        SmtpSecurity::None => Tls::None,
        SmtpSecurity::Starttls => Tls::Required(tls_parameters(&settings.host, roots)?),
        SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(&settings.host, roots)?),
    };
    // The per-command timeout keeps lettre from waiting on a silent socket
    // forever; the overall budget in `send_email` bounds the whole exchange.
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
        .port(settings.port)
        .timeout(Some(budget))
        .tls(tls);
    if let Some(credentials) = credentials {
        builder = builder.credentials(credentials);
    }
    Ok(builder.build())
}

/// TLS towards `host`: the system's trust, or only the CAs of `roots` (PEM).
fn tls_parameters(host: &str, roots: Option<&[u8]>) -> Result<TlsParameters, DeliveryError> {
    let fail = |err: lettre::transport::smtp::Error| {
        DeliveryError::Config(format!("cannot set up TLS for {host}: {err}"))
    };
    let Some(pem) = roots else {
        return TlsParameters::new(host.to_owned()).map_err(fail);
    };
    let no_certificate =
        || DeliveryError::Config("smtp.ca_file holds no PEM certificate".to_string());
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(no_certificate());
    }
    let certificate = Certificate::from_pem(pem).map_err(|err| {
        DeliveryError::Config(format!("smtp.ca_file holds no usable certificate: {err}"))
    })?;
    TlsParameters::builder(host.to_owned())
        .certificate_store(CertificateStore::None)
        .add_root_certificate(certificate)
        .build()
        .map_err(fail)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use latchkey_core::services::delivery::MapSecrets;

    fn settings() -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".to_owned(),
            port: 1,
            security: SmtpSecurity::None,
            from: "Latchkey <no-reply@example.com>".to_owned(),
            username: None,
            password_env: None,
            timeout_seconds: 1,
            ca_file: None,
        }
    }

    fn message(to: &str) -> EmailMessage {
        EmailMessage {
            to: to.to_owned(),
            subject: "Code".to_owned(),
            text: "123456".to_owned(),
            html: "<p>123456</p>".to_owned(),
        }
    }

    #[tokio::test]
    async fn malformed_sender_is_a_config_error() {
        let mut settings = settings();
        settings.from = "not an address".to_owned();
        let err = send_email(&settings, &message("a@example.com"), &MapSecrets::default())
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Config(m) if m.contains("sender")));
    }

    #[tokio::test]
    async fn username_without_password_env_is_a_config_error() {
        let mut settings = settings();
        settings.username = Some("user".to_owned());
        let err = send_email(&settings, &message("a@example.com"), &MapSecrets::default())
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Config(m) if m.contains("password_env")));
    }

    #[test]
    fn credentials_come_from_the_named_secret() {
        let mut settings = settings();
        settings.username = Some("user".to_owned());
        settings.password_env = Some("SMTP_PASSWORD".to_owned());
        let secrets = MapSecrets(HashMap::from([(
            "SMTP_PASSWORD".to_owned(),
            "s3cret".to_owned(),
        )]));
        assert_eq!(
            credentials(&settings, &secrets).unwrap(),
            Some(Credentials::new("user".to_owned(), "s3cret".to_owned()))
        );
    }
}
