//! The wording of messages that carry codes (and of the link emails:
//! email verification, password reset): the tenant's templates
//! (minijinja) for the caller's language (from `Accept-Language`), else the
//! built-in English; and the check of those templates' syntax.

use minijinja::{Environment, context};

use super::email::EmailMessage;
use latchkey_core::services::delivery::{LinkMessage, LinkPurpose, Purpose};
use latchkey_core::tenant::Tenant;
use latchkey_core::tenant::file::TemplateSyntax;

const EMAIL_SUBJECT: &str = "{{ code }} is your {{ tenant }} verification code";
const EMAIL_TEXT: &str = "Your verification code is {{ code }}.\n\nEnter it to {% if purpose == \"login\" %}finish signing in to{% else %}add this email address to{% endif %} your \
     {{ tenant }} account. It expires in {{ minutes }} minutes. If you did not ask for it, you can ignore this \
     message.\n";
const EMAIL_HTML: &str = "<!doctype html><html><body style=\"font-family:system-ui,sans-serif\">\
     <p>Your verification code is</p><p style=\"font-size:28px;font-weight:700;letter-spacing:4px\">{{ code }}</p>\
     <p>Enter it to {% if purpose == \"login\" %}finish signing in to{% else %}add this email address to{% endif %} your {{ tenant }} account. It expires in {{ minutes }} minutes. \
     If you did not ask for it, you can ignore this message.</p></body></html>";
const SMS: &str =
    "{{ code }} is your {{ tenant }} verification code. It expires in {{ minutes }} minutes.";
const VOICE: &str =
    "Your {{ tenant }} verification code is {{ code_spoken }}. Again: {{ code_spoken }}.";

/// The template for the first language the tenant has (exact tag, then its
/// primary language).
fn pick<'a, T>(
    map: &'a std::collections::BTreeMap<String, T>,
    languages: &[String],
) -> Option<&'a T> {
    for lang in languages {
        let lower = lang.to_ascii_lowercase();
        if let Some((_, t)) = map.iter().find(|(k, _)| k.to_ascii_lowercase() == lower) {
            return Some(t);
        }
        let primary = lower.split('-').next().unwrap_or("");
        if let Some(t) = map.get(primary) {
            return Some(t);
        }
    }
    None
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
    let name = tenant
        .config
        .tenant
        .friendly_name
        .clone()
        .unwrap_or_else(|| tenant.name.clone());
    let spoken = code
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(", ");
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

pub fn code_email(
    tenant: &Tenant,
    languages: &[String],
    to: &str,
    code: &str,
    purpose: Purpose,
) -> EmailMessage {
    let chosen = pick(&tenant.config.messages.code_email, languages);
    let (subject, text, html) = match chosen {
        Some(t) => (t.subject.as_str(), t.text.as_str(), t.html.as_str()),
        None => (EMAIL_SUBJECT, EMAIL_TEXT, EMAIL_HTML),
    };
    EmailMessage {
        to: to.to_string(),
        subject: render(subject, false, tenant, code, purpose).replace(['\r', '\n'], " "),
        text: render(text, false, tenant, code, purpose),
        html: render(html, true, tenant, code, purpose),
    }
}

/// The wording of a link email: (subject, text, HTML) with `{{ link }}`,
/// `{{ tenant }}` and `{{ hours }}` in them.
fn link_texts(purpose: LinkPurpose) -> (&'static str, &'static str, &'static str) {
    match purpose {
        LinkPurpose::VerifyEmail => (
            "Verify your email for {{ tenant }}",
            "Welcome to {{ tenant }}.\n\nTo verify your email address, open this link:\n\n{{ link }}\n\n\
             It works once, for {{ hours }} hours. If you did not create an account, you can ignore this message.\n",
            "<!doctype html><html><body style=\"font-family:system-ui,sans-serif\">\
             <p>Welcome to {{ tenant }}.</p><p>To verify your email address, follow this link:</p>\
             <p><a href=\"{{ link }}\">Verify my email address</a></p>\
             <p>It works once, for {{ hours }} hours. If you did not create an account, you can ignore this message.</p>\
             </body></html>",
        ),
        LinkPurpose::ResetPassword => (
            "Reset your {{ tenant }} password",
            "Someone asked to reset the password of your {{ tenant }} account.\n\nTo choose a new password, open this link:\n\n\
             {{ link }}\n\nIt works once, for {{ hours }} hours. If you did not ask for it, you can ignore this message: \
             your password stays as it is.\n",
            "<!doctype html><html><body style=\"font-family:system-ui,sans-serif\">\
             <p>Someone asked to reset the password of your {{ tenant }} account.</p>\
             <p><a href=\"{{ link }}\">Choose a new password</a></p>\
             <p>It works once, for {{ hours }} hours. If you did not ask for it, you can ignore this message: \
             your password stays as it is.</p></body></html>",
        ),
    }
}

/// A link email (email verification, password reset), in the built-in
/// wording.
pub fn link_email(m: &LinkMessage<'_>) -> EmailMessage {
    let (subject, text, html) = link_texts(m.purpose);
    let name = tenant_name(m.tenant);
    let hours = (m.valid_minutes + 59) / 60;
    let render = |source: &str, escape: bool| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(move |_| {
            if escape {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        let ctx =
            context! { link => m.link, tenant => &name, hours, purpose => m.purpose.as_str() };
        env.render_str(source, ctx).unwrap_or_else(|e| {
            tracing::error!(error = %e, "link email template failed");
            String::new()
        })
    };
    EmailMessage {
        to: m.to.to_string(),
        subject: render(subject, false).replace(['\r', '\n'], " "),
        text: render(text, false),
        html: render(html, true),
    }
}

fn tenant_name(tenant: &Tenant) -> String {
    tenant
        .config
        .tenant
        .friendly_name
        .clone()
        .unwrap_or_else(|| tenant.name.clone())
}

pub fn code_sms(tenant: &Tenant, languages: &[String], code: &str) -> String {
    let t = pick(&tenant.config.messages.code_sms, languages).map_or(SMS, String::as_str);
    render(t, false, tenant, code, Purpose::Enroll)
}

pub fn code_voice(tenant: &Tenant, languages: &[String], code: &str) -> String {
    let t = pick(&tenant.config.messages.code_voice, languages).map_or(VOICE, String::as_str);
    render(t, false, tenant, code, Purpose::Enroll)
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::tenant::parse_tenant_file;

    const TENANT: &str = "tenant: { name: acme, domains: [\"localhost:3917\"] }\n";

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
