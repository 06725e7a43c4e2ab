//! The wording of messages that carry codes: the tenant's templates
//! (minijinja) for the language chosen as the pages choose it
//! (`services::language`: `ui_locales`, `Accept-Language`, the tenant's
//! languages), else the built-in texts of that language's bundle; the link
//! emails (email verification, password reset) in their bundle's texts for
//! the language the service chose; and the check of those templates'
//! syntax.

use minijinja::{Environment, context};

use super::email::EmailMessage;
use super::escape_markup as escape;
use latchkey_core::services::delivery::{LinkMessage, LinkPurpose, Purpose};
use latchkey_core::services::language::{self, Language, fill};
use latchkey_core::tenant::Tenant;
use latchkey_core::tenant::file::TemplateSyntax;

/// How long a code lives, as the messages say.
const MINUTES: &str = "5";

/// What to word a message with: the tenant's own template for a language
/// the person wants at least as much as the chosen one (exact tag, then
/// its primary language), else the built-in texts of the chosen language.
enum Wording<'a, T> {
    /// The template, and the language tag it is kept under.
    Tenant(&'a str, &'a T),
    Builtin(Language),
}

fn pick<'a, T>(
    map: &'a std::collections::BTreeMap<String, T>,
    tenant: &Tenant,
    languages: &[String],
) -> Wording<'a, T> {
    let chosen = language::negotiate(tenant, languages);
    let find = |lang: &str| {
        let lower = lang.to_ascii_lowercase();
        if let Some(found) = map.iter().find(|(k, _)| k.to_ascii_lowercase() == lower) {
            return Some(found);
        }
        let primary = lower.split('-').next().unwrap_or("");
        map.get_key_value(primary)
    };
    for lang in languages {
        if let Some((tag, t)) = find(lang) {
            return Wording::Tenant(tag, t);
        }
        if Language::matching(lang) == Some(chosen) {
            break;
        }
    }
    match find(chosen.tag()) {
        Some((tag, t)) => Wording::Tenant(tag, t),
        None => Wording::Builtin(chosen),
    }
}

/// Whether `source` compiles as a message template; the error says why not.
/// Tenant files are checked with it when they are read.
pub(crate) fn check_template(source: &str) -> Result<(), String> {
    Environment::new()
        .template_from_str(source)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The syntax of message templates (minijinja), for tenant-file validation.
#[derive(Debug, Default, Clone, Copy)]
pub struct MessageTemplates;

impl TemplateSyntax for MessageTemplates {
    fn check(&self, source: &str) -> Result<(), String> {
        check_template(source)
    }
}

fn render(source: &str, html: bool, tenant: &Tenant, code: &str, purpose: Purpose) -> String {
    let mut env = Environment::new();
    env.set_auto_escape_callback(move |_| {
        if html {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    let name = tenant.display_name();
    let spoken = spoken(code);
    let purpose = match purpose {
        Purpose::Enroll => "enroll",
        Purpose::Login => "login",
    };
    let ctx = context! { code, code_spoken => spoken, tenant => name, minutes => 5, purpose };
    match env.render_str(source, ctx) {
        Ok(s) => s,
        Err(e) => {
            // Templates are checked when the tenant file is applied; this
            // only guards a failure at render time.
            tracing::error!(error = %e, "message template failed; sending the bare code");
            code.to_string()
        }
    }
}

fn spoken(code: &str) -> String {
    code.chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn code_email(
    tenant: &Tenant,
    languages: &[String],
    to: &str,
    code: &str,
    purpose: Purpose,
) -> EmailMessage {
    let (subject, text, html) = match pick(&tenant.config.messages.code_email, tenant, languages) {
        Wording::Tenant(_, t) => (
            render(&t.subject, false, tenant, code, purpose),
            render(&t.text, false, tenant, code, purpose),
            render(&t.html, true, tenant, code, purpose),
        ),
        Wording::Builtin(lang) => {
            let vars = [
                ("code", code),
                ("companyName", tenant.display_name()),
                ("minutes", MINUTES),
            ];
            let text = |key: &str| fill(language::message(lang, "code-email", key), &vars);
            let body = text(match purpose {
                Purpose::Login => "login",
                Purpose::Enroll => "enroll",
            });
            let html = format!(
                "<!doctype html><html lang=\"{}\"><body style=\"font-family:system-ui,sans-serif\">\
                 <p>{}</p><p style=\"font-size:28px;font-weight:700;letter-spacing:4px\">{}</p>\
                 <p>{}</p></body></html>",
                lang.tag(),
                escape(&text("codeIntro")),
                escape(code),
                escape(&body),
            );
            (
                text("subject"),
                format!("{}\n\n{body}\n", text("codeLine")),
                html,
            )
        }
    };
    EmailMessage {
        to: to.to_string(),
        subject: subject.replace(['\r', '\n'], " "),
        text,
        html,
    }
}

/// A text message or a call's words: the tenant's template, else the
/// bundle's `name` text (`${code}` said as `code`); and the language tag
/// they are in.
fn short<'a>(
    map: &'a std::collections::BTreeMap<String, String>,
    name: &str,
    tenant: &Tenant,
    languages: &[String],
    code: &str,
    said: &str,
) -> (String, &'a str) {
    match pick(map, tenant, languages) {
        Wording::Tenant(tag, t) => (render(t, false, tenant, code, Purpose::Enroll), tag),
        Wording::Builtin(lang) => (
            fill(
                language::message(lang, name, "text"),
                &[
                    ("code", said),
                    ("companyName", tenant.display_name()),
                    ("minutes", MINUTES),
                ],
            ),
            lang.tag(),
        ),
    }
}

/// A link email (email verification, password reset, a passwordless login)
/// in the language the service chose (`m.language`), from its bundle's
/// `verify-email`, `reset-email` or `login-email` texts and `link-email`'s
/// validity.
pub fn link_email(m: &LinkMessage<'_>) -> EmailMessage {
    let lang = m.language;
    let name = m.tenant.display_name();
    let message = match m.purpose {
        LinkPurpose::VerifyEmail => "verify-email",
        LinkPurpose::ResetPassword => "reset-email",
        LinkPurpose::PasswordlessLogin => "login-email",
    };
    let text = |key: &str| {
        fill(
            language::message(lang, message, key),
            &[("companyName", name)],
        )
    };
    let (greeting, action, button, ignore) = (
        text("greeting"),
        text("action"),
        text("button"),
        text("ignore"),
    );
    let validity = validity(lang, m.valid_minutes);
    let gap = lang.sentence_gap();
    let body = format!(
        "{greeting}\n\n{action}\n\n{}\n\n{validity}{gap}{ignore}\n",
        m.link
    );
    let html = format!(
        "<!doctype html><html lang=\"{}\"><body style=\"font-family:system-ui,sans-serif\">\
         <p>{}</p><p>{}</p><p><a href=\"{}\">{}</a></p><p>{}{gap}{}</p></body></html>",
        lang.tag(),
        escape(&greeting),
        escape(&action),
        escape(m.link),
        escape(&button),
        escape(&validity),
        escape(&ignore),
    );
    EmailMessage {
        to: m.to.to_string(),
        subject: text("subject").replace(['\r', '\n'], " "),
        text: body,
        html,
    }
}

/// How long a link works, as the message says it: in days when it is a
/// whole number of them, in minutes under an hour, else in hours (rounded
/// up).
fn validity(lang: Language, minutes: i64) -> String {
    let (unit, n) = if minutes >= 1440 && minutes % 1440 == 0 {
        ("days", minutes / 1440)
    } else if minutes < 60 {
        ("minutes", minutes.max(1))
    } else {
        ("hours", (minutes + 59) / 60)
    };
    let key = format!("{unit}-{}", lang.plural(n));
    fill(
        language::message(lang, "link-email", &key),
        &[("count", &n.to_string())],
    )
}

pub fn code_sms(tenant: &Tenant, languages: &[String], code: &str) -> String {
    let map = &tenant.config.messages.code_sms;
    short(map, "code-sms", tenant, languages, code, code).0
}

/// A code call's words, and the language they are in as Twilio's
/// `<Say language>` names it: the tenant template's tag as written when it
/// names a region (`fr-CA`), else latchkey's voice for the language (`fr`
/// is `fr-FR`, `ja` is `ja-JP`); `None` for a template of a language
/// without a region latchkey does not know (the provider's default voice
/// reads it).
pub fn code_voice(tenant: &Tenant, languages: &[String], code: &str) -> (String, Option<String>) {
    let map = &tenant.config.messages.code_voice;
    let (words, tag) = short(map, "code-voice", tenant, languages, code, &spoken(code));
    (words, say_language(tag))
}

fn say_language(tag: &str) -> Option<String> {
    if let Some((primary, region)) = tag.split_once(['-', '_']) {
        let well_formed = (2..=3).contains(&primary.len())
            && primary.chars().all(|c| c.is_ascii_alphabetic())
            && (region.len() == 2 && region.chars().all(|c| c.is_ascii_alphabetic()));
        return well_formed.then(|| {
            format!(
                "{}-{}",
                primary.to_ascii_lowercase(),
                region.to_ascii_uppercase()
            )
        });
    }
    let region = match Language::matching(tag)? {
        Language::En => "en-US",
        Language::Fr => "fr-FR",
        Language::De => "de-DE",
        Language::Es => "es-ES",
        Language::PtBr => "pt-BR",
        Language::Ja => "ja-JP",
    };
    Some(region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::tenant::parse_tenant_file;

    const TENANT: &str = "tenant: { name: acme, domains: [\"localhost:3917\"] }\n";

    #[test]
    fn calls_say_which_language_their_words_are_in() {
        let tenant = |messages: &str| Tenant {
            id: "t".into(),
            name: "acme".into(),
            revision: 1,
            config: parse_tenant_file(&format!("{TENANT}{messages}"), &MessageTemplates).unwrap(),
        };
        let plain = tenant("");
        let langs = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let said = |t: &Tenant, l: &[&str]| code_voice(t, &langs(l), "123").1;
        assert_eq!(said(&plain, &["fr-CA"]).as_deref(), Some("fr-FR"));
        assert_eq!(said(&plain, &["ja"]).as_deref(), Some("ja-JP"));
        assert_eq!(said(&plain, &["pt-PT"]).as_deref(), Some("pt-BR"));
        assert_eq!(said(&plain, &["it"]).as_deref(), Some("en-US"));
        assert_eq!(said(&plain, &[]).as_deref(), Some("en-US"));
        let own = tenant(
            "messages: { code_voice: { fr-CA: \"Votre code : {{ code }}\", it: \"Il codice: {{ code }}\" } }\n",
        );
        assert_eq!(said(&own, &["fr-CA"]).as_deref(), Some("fr-CA"));
        assert_eq!(said(&own, &["it"]), None);
        assert_eq!(said(&own, &["de"]).as_deref(), Some("de-DE"));
    }

    #[test]
    fn tenant_files_with_templates_that_do_not_compile_are_refused() {
        let error = parse_tenant_file(
            &format!("{TENANT}messages: {{ code_sms: {{ fr: \"{{{{ code \" }} }}\n"),
            &MessageTemplates,
        )
        .unwrap_err();
        assert!(error.path.starts_with("messages.code_sms"), "{error}");
        assert!(
            error.message.starts_with("is not a valid template: "),
            "{error}"
        );
        let file = parse_tenant_file(
            &format!(
                "{TENANT}messages: {{ code_sms: {{ fr: \"{{{{ code }}}} est votre code\" }} }}\n"
            ),
            &MessageTemplates,
        )
        .unwrap();
        assert!(file.messages.code_sms.contains_key("fr"));
    }

    #[test]
    fn link_emails_are_worded_in_every_language() {
        let tenant = Tenant {
            id: "t".into(),
            name: "acme".into(),
            revision: 1,
            config: parse_tenant_file(TENANT, &MessageTemplates).unwrap(),
        };
        let link = "https://login.acme.test/u/reset-password?ticket=abc&ui_locales=fr";
        for language in Language::ALL {
            for (purpose, minutes) in [
                (LinkPurpose::VerifyEmail, 5 * 24 * 60),
                (LinkPurpose::ResetPassword, 60),
                (LinkPurpose::ResetPassword, 90),
                (LinkPurpose::PasswordlessLogin, 5),
                (LinkPurpose::PasswordlessLogin, 1),
            ] {
                let mail = link_email(&LinkMessage {
                    tenant: &tenant,
                    language,
                    to: "a@example.com",
                    link,
                    purpose,
                    valid_minutes: minutes,
                });
                for part in [&mail.subject, &mail.text, &mail.html] {
                    assert!(
                        !part.contains('…') && !part.contains("${"),
                        "{language} {purpose:?}: {part}"
                    );
                }
                assert!(mail.subject.contains("acme"), "{}", mail.subject);
                assert!(
                    mail.text.contains(&format!("\n\n{link}\n\n")),
                    "{}",
                    mail.text
                );
                assert!(
                    mail.html
                        .contains(&format!("<html lang=\"{}\">", language.tag())),
                    "{}",
                    mail.html
                );
                assert!(
                    mail.html
                        .contains("href=\"https://login.acme.test/u/reset-password?ticket=abc&amp;ui_locales=fr\""),
                    "{}",
                    mail.html
                );
            }
        }
        let english = |minutes| validity(Language::En, minutes);
        assert_eq!(english(60), "It works once, for 1 hour.");
        assert_eq!(english(90), "It works once, for 2 hours.");
        assert_eq!(english(5 * 24 * 60), "It works once, for 5 days.");
        assert_eq!(english(24 * 60), "It works once, for 1 day.");
        assert_eq!(english(5), "It works once, for 5 minutes.");
        assert_eq!(english(1), "It works once, for 1 minute.");
        assert_eq!(
            validity(Language::De, 5),
            "Er funktioniert einmal, 5 Minuten lang."
        );
        assert_eq!(
            validity(Language::Fr, 24 * 60),
            "Il ne fonctionne qu'une fois, pendant 1 jour."
        );
    }

    #[test]
    fn dev_tenant_parses() {
        let f = parse_tenant_file(
            &latchkey_core::tenant::dev::dev_tenant_yaml(3000),
            &MessageTemplates,
        )
        .unwrap();
        assert_eq!(f.tenant.domains[0], "localhost:3000");
        assert_eq!(f.users.len(), 1);
    }
}
