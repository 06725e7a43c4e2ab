//! The checks of message templates and of the email and SMS providers.

use super::*;

impl<'a> Validator<'a> {
    pub(super) fn messages(&self) -> Check {
        let lang_ok = |l: &str| {
            let mut parts = l.split('-');
            let lang = parts.next().unwrap_or("");
            let region = parts.next();
            (2..=3).contains(&lang.len())
                && lang.bytes().all(|b| b.is_ascii_lowercase())
                && region.is_none_or(|r| {
                    (2..=3).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
                })
                && parts.next().is_none()
        };
        let compiles = |path: String, source: &str| -> Check {
            self.templates
                .check(source)
                .map_err(|e| self.error(path, format!("is not a valid template: {e}")))
        };
        let m = &self.file.messages;
        for (lang, t) in &m.code_email {
            let base = format!("messages.code_email.{lang}");
            self.ensure(
                lang_ok(lang),
                base.clone(),
                format!("{lang:?} is not a language tag"),
            )?;
            compiles(format!("{base}.subject"), &t.subject)?;
            compiles(format!("{base}.text"), &t.text)?;
            compiles(format!("{base}.html"), &t.html)?;
        }
        for (name, map) in [("code_sms", &m.code_sms), ("code_voice", &m.code_voice)] {
            for (lang, t) in map {
                let path = format!("messages.{name}.{lang}");
                self.ensure(
                    lang_ok(lang),
                    path.clone(),
                    format!("{lang:?} is not a language tag"),
                )?;
                compiles(path, t)?;
            }
        }
        Ok(())
    }

    pub(super) fn providers(&self) -> Check {
        if let Some(email) = &self.file.email_provider {
            let smtp = &email.smtp;
            self.ensure(
                !smtp.host.is_empty()
                    && smtp.host.len() <= 253
                    && !smtp.host.contains(char::is_whitespace),
                "email_provider.smtp.host",
                format!("{:?} is not a host name", smtp.host),
            )?;
            self.ensure(
                smtp.port != 0,
                "email_provider.smtp.port",
                "must be 1 to 65535".to_string(),
            )?;
            self.ensure(
                smtp.from.contains('@') && smtp.from.len() <= 320,
                "email_provider.smtp.from",
                format!("{:?} is not an address", smtp.from),
            )?;
            if let Some(v) = &smtp.password_env {
                self.ensure(
                    is_env_name(v),
                    "email_provider.smtp.password_env",
                    "is not an environment variable name".to_string(),
                )?;
            }
            if let Some(path) = &smtp.ca_file {
                self.ensure(
                    !path.trim().is_empty(),
                    "email_provider.smtp.ca_file",
                    "must name a PEM file".to_string(),
                )?;
                self.ensure(
                    smtp.security != SmtpSecurity::None,
                    "email_provider.smtp.ca_file",
                    "needs security starttls or tls".to_string(),
                )?;
            }
            self.in_range(
                "email_provider.smtp.timeout_seconds",
                smtp.timeout_seconds,
                1..=120,
            )?;
        }
        match &self.file.sms_provider {
            Some(SmsProvider::Twilio(t)) => {
                check_url(&t.base_url, false)
                    .map_err(|m| self.error("sms_provider.twilio.base_url", m))?;
                self.ensure(
                    !t.account_sid.is_empty()
                        && t.account_sid.bytes().all(|b| b.is_ascii_alphanumeric()),
                    "sms_provider.twilio.account_sid",
                    "must be letters and digits".to_string(),
                )?;
                self.ensure(
                    is_env_name(&t.auth_token_env),
                    "sms_provider.twilio.auth_token_env",
                    "is not an environment variable name".to_string(),
                )?;
                self.ensure(
                    t.from.starts_with('+')
                        && t.from.len() > 4
                        && t.from[1..].bytes().all(|b| b.is_ascii_digit()),
                    "sms_provider.twilio.from",
                    "must be an E.164 number (+15550001111)".to_string(),
                )?;
                self.in_range(
                    "sms_provider.twilio.timeout_seconds",
                    t.timeout_seconds,
                    1..=120,
                )?;
            }
            Some(SmsProvider::Webhook(w)) => {
                check_url(&w.url, false).map_err(|m| self.error("sms_provider.webhook.url", m))?;
                self.ensure(
                    is_env_name(&w.secret_env),
                    "sms_provider.webhook.secret_env",
                    "is not an environment variable name".to_string(),
                )?;
                self.in_range(
                    "sms_provider.webhook.timeout_seconds",
                    w.timeout_seconds,
                    1..=120,
                )?;
            }
            None => {}
        }
        Ok(())
    }
}
