//! The checks of message templates and of the email, SMS and push providers.

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

    pub(super) fn push_providers(&self) -> Check {
        let push = &self.file.push_notifications;
        if let Some(apns) = &push.apns {
            let apple_id = |v: &str| {
                v.len() == 10 && is_word(v, 10, |b| b.is_ascii_uppercase() || b.is_ascii_digit())
            };
            self.ensure(
                apple_id(&apns.team_id),
                "push_notifications.apns.team_id",
                "must be the 10-character Apple team ID (A-Z, 0-9)".to_string(),
            )?;
            self.ensure(
                apple_id(&apns.key_id),
                "push_notifications.apns.key_id",
                "must be the 10-character ID of the APNs key (A-Z, 0-9)".to_string(),
            )?;
            self.ensure(
                is_env_name(&apns.private_key_env),
                "push_notifications.apns.private_key_env",
                "is not an environment variable name".to_string(),
            )?;
            self.ensure(
                is_word(&apns.topic, 255, |b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')
                }),
                "push_notifications.apns.topic",
                format!("{:?} is not a bundle ID", apns.topic),
            )?;
            if let Some(url) = &apns.base_url {
                // APNs speaks HTTP/2, which needs TLS to be negotiated.
                check_url(url, false)
                    .and_then(|()| {
                        if url.starts_with("https://") {
                            Ok(())
                        } else {
                            Err(format!(
                                "{url:?} must be an https URL (APNs speaks HTTP/2 over TLS)"
                            ))
                        }
                    })
                    .map_err(|m| self.error("push_notifications.apns.base_url", m))?;
            }
            self.in_range(
                "push_notifications.apns.timeout_seconds",
                apns.timeout_seconds,
                1..=60,
            )?;
        }
        if let Some(fcm) = &push.fcm {
            self.ensure(
                is_env_name(&fcm.service_account_env),
                "push_notifications.fcm.service_account_env",
                "is not an environment variable name".to_string(),
            )?;
            if let Some(url) = &fcm.base_url {
                check_url(url, false)
                    .map_err(|m| self.error("push_notifications.fcm.base_url", m))?;
            }
            self.in_range(
                "push_notifications.fcm.timeout_seconds",
                fcm.timeout_seconds,
                1..=60,
            )?;
        }
        if let Some(w) = &push.webhook {
            check_url(&w.url, false)
                .map_err(|m| self.error("push_notifications.webhook.url", m))?;
            self.ensure(
                is_env_name(&w.secret_env),
                "push_notifications.webhook.secret_env",
                "is not an environment variable name".to_string(),
            )?;
            self.in_range(
                "push_notifications.webhook.timeout_seconds",
                w.timeout_seconds,
                1..=60,
            )?;
        }
        if let Some(i) = self
            .file
            .factors
            .iter()
            .position(|f| *f == FactorType::PushNotification)
        {
            self.ensure(
                push.has_provider(),
                index_path("factors", i),
                "push-notification needs a push provider: configure \
                 push_notifications.apns, push_notifications.fcm or push_notifications.webhook"
                    .to_string(),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::panic)] // Failing loudly is what a test is for.
mod tests {
    use crate::services::delivery::MapSecrets;
    use crate::tenant::apply::check_secrets;
    use crate::tenant::file::{TemplateSyntax, TenantFileError, parse_tenant_file};
    use crate::tenant::model::*;

    struct AnyTemplate;

    impl TemplateSyntax for AnyTemplate {
        fn check(&self, _: &str) -> Result<(), String> {
            Ok(())
        }
    }

    const HEAD: &str = "tenant: { name: acme, domains: [\"localhost:3917\"] }\n";

    fn parse(rest: &str) -> Result<TenantFile, TenantFileError> {
        parse_tenant_file(&format!("{HEAD}{rest}"), &AnyTemplate)
    }

    fn refused(rest: &str, line: usize, path: &str, part: &str) {
        match parse(rest) {
            Ok(file) => panic!("expected a refusal, got {:?}", file.push_notifications),
            Err(e) => {
                assert_eq!(e.line, Some(line), "{e}");
                assert_eq!(e.path, path, "{e}");
                assert!(e.message.contains(part), "{e}");
            }
        }
    }

    #[test]
    fn push_notifications_parse_with_defaults() {
        let file = parse("factors: [password]\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.push_notifications, PushNotifications::default());
        assert!(!file.push_notifications.number_matching);
        let file = parse(
            "factors: [password, push-notification]
push_notifications:
  number_matching: true
  webhook:
    url: https://push.acme.test/hook
    secret_env: PUSH_HOOK_SECRET
",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let push = &file.push_notifications;
        assert!(push.number_matching);
        let hook = push
            .webhook
            .as_ref()
            .unwrap_or_else(|| panic!("no webhook"));
        assert_eq!(hook.url, "https://push.acme.test/hook");
        assert_eq!(hook.secret_env, "PUSH_HOOK_SECRET");
        assert_eq!(hook.timeout_seconds, 10);
    }

    #[test]
    fn apns_and_fcm_parse_with_their_defaults() {
        let file = parse(
            "factors: [push-notification]
push_notifications:
  apns: { team_id: ABCDE12345, key_id: KEY1234567, private_key_env: APNS_KEY, topic: com.acme.app }
  fcm: { service_account_env: FCM_ACCOUNT }
",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let push = &file.push_notifications;
        let apns = push.apns.as_ref().unwrap_or_else(|| panic!("no apns"));
        assert_eq!(apns.environment, ApnsEnvironment::Production);
        assert_eq!(apns.endpoint(), "https://api.push.apple.com");
        assert_eq!(apns.timeout_seconds, 10);
        let fcm = push.fcm.as_ref().unwrap_or_else(|| panic!("no fcm"));
        assert_eq!(fcm.endpoint(), "https://fcm.googleapis.com");
        let file = parse(
            "push_notifications:
  apns: { team_id: ABCDE12345, key_id: KEY1234567, private_key_env: K, topic: com.acme.app,
          environment: sandbox }
  fcm: { service_account_env: F, base_url: \"http://fcm-proxy.acme.test/\" }
",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let push = &file.push_notifications;
        let apns = push.apns.as_ref().unwrap_or_else(|| panic!("no apns"));
        assert_eq!(apns.endpoint(), "https://api.sandbox.push.apple.com");
        let fcm = push.fcm.as_ref().unwrap_or_else(|| panic!("no fcm"));
        assert_eq!(fcm.endpoint(), "http://fcm-proxy.acme.test");
    }

    #[test]
    fn bad_apns_and_fcm_settings_are_refused_at_their_line() {
        let apns = |field: &str| {
            format!(
                "push_notifications:\n  apns:\n    team_id: ABCDE12345\n    key_id: KEY1234567\n    \
                 private_key_env: K\n    topic: com.acme.app\n    {field}\n"
            )
        };
        refused(
            &apns("environment: staging"),
            8,
            "push_notifications.apns.environment",
            "production, sandbox",
        );
        refused(
            &apns("base_url: http://127.0.0.1:8443"),
            8,
            "push_notifications.apns.base_url",
            "https",
        );
        refused(
            &apns("timeout_seconds: 61"),
            8,
            "push_notifications.apns.timeout_seconds",
            "between 1 and 60",
        );
        refused(
            &apns("team_id: abc").replace("    team_id: ABCDE12345\n", ""),
            7,
            "push_notifications.apns.team_id",
            "10-character",
        );
        refused(&apns("pem: x"), 8, "push_notifications.apns", "pem");
        refused(
            "push_notifications:\n  fcm: { service_account_env: \"GOOGLE-KEY\" }\n",
            3,
            "push_notifications.fcm.service_account_env",
            "environment variable",
        );
        refused(
            "push_notifications:\n  fcm: { service_account_env: G, base_url: \"fcm.googleapis.com\" }\n",
            3,
            "push_notifications.fcm.base_url",
            "not a valid URL",
        );
    }

    #[test]
    fn push_notification_without_a_provider_is_refused() {
        refused(
            "factors:\n  - password\n  - push-notification\n",
            4,
            "factors[1]",
            "push-notification needs a push provider",
        );
        refused(
            "factors: [push-notification]\npush_notifications: { number_matching: true }\n",
            2,
            "factors[0]",
            "push_notifications.webhook",
        );
    }

    #[test]
    fn bad_push_settings_are_refused_at_their_line() {
        refused(
            "push_notifications:\n  webhook:\n    url: ftp://x.test/\n    secret_env: S\n",
            4,
            "push_notifications.webhook.url",
            "http or https",
        );
        refused(
            "push_notifications:\n  webhook:\n    url: https://x.test/\n    secret_env: \"A B\"\n",
            5,
            "push_notifications.webhook.secret_env",
            "environment variable",
        );
        refused(
            "push_notifications:\n  webhook: { url: \"https://x.test/\", secret_env: S, timeout_seconds: 0 }\n",
            3,
            "push_notifications.webhook.timeout_seconds",
            "between 1 and 60",
        );
        refused(
            "push_notifications:\n  number_matching: yes please\n",
            3,
            "push_notifications.number_matching",
            "",
        );
        refused(
            "push_notifications:\n  pager: {}\n",
            3,
            "push_notifications",
            "pager",
        );
    }

    #[test]
    fn push_credentials_must_be_in_the_environment_at_apply() {
        let file = parse(
            "push_notifications: { webhook: { url: \"https://x.test/\", secret_env: PUSH_SECRET } }\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let none = MapSecrets::default();
        let why = check_secrets(&file, &none).err().unwrap_or_default();
        assert!(
            why.contains("push_notifications.webhook.secret_env") && why.contains("PUSH_SECRET"),
            "{why}"
        );
        let set = MapSecrets([("PUSH_SECRET".to_owned(), "s".to_owned())].into());
        assert_eq!(check_secrets(&file, &set), Ok(()));
        let file = parse(
            "push_notifications:\n  apns: { team_id: ABCDE12345, key_id: KEY1234567, private_key_env: APNS_KEY, topic: a.b }\n  fcm: { service_account_env: FCM_ACCOUNT }\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let why = check_secrets(&file, &none).err().unwrap_or_default();
        assert!(why.contains("APNS_KEY"), "{why}");
        let apns_only = MapSecrets([("APNS_KEY".to_owned(), "k".to_owned())].into());
        let why = check_secrets(&file, &apns_only).err().unwrap_or_default();
        assert!(
            why.contains("push_notifications.fcm.service_account_env"),
            "{why}"
        );
    }
}
