//! The wording of messages that carry codes: the tenant's templates for the
//! caller's language (from `Accept-Language`), else the built-in English.

use minijinja::{Environment, context};

use super::email::EmailMessage;
use crate::tenant::Tenant;

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

/// Languages from an `Accept-Language` header, most preferred first.
pub fn languages(accept_language: &str) -> Vec<String> {
    let mut tagged: Vec<(f32, usize, String)> = accept_language
        .split(',')
        .take(20)
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next()?.trim();
            if tag.is_empty() || tag == "*" || tag.len() > 35 {
                return None;
            }
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((q, i, tag.to_string()))
        })
        .collect();
    tagged.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    tagged.into_iter().map(|(_, _, t)| t).collect()
}

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

/// Why a code is sent: to confirm a new method, or to sign in with one.
/// Templates see it as `purpose` (`enroll` or `login`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Enroll,
    Login,
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

    #[test]
    fn accept_language_in_preference_order() {
        assert_eq!(
            languages("fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5"),
            vec!["fr-CH", "fr", "en"]
        );
        assert_eq!(languages("en;q=0.2, de"), vec!["de", "en"]);
        assert!(languages("").is_empty());
    }
}
