use std::collections::BTreeSet;

use super::catalog::{self, Bundle, SOURCES};
use super::*;
use crate::tenant::file::{TemplateSyntax, TenantFileError};
use crate::tenant::{TenantFile, parse_tenant_file};

/// Templates are the delivery adapter's to check.
struct AnyTemplate;

impl TemplateSyntax for AnyTemplate {
    fn check(&self, _: &str) -> Result<(), String> {
        Ok(())
    }
}

fn parse(text: &str) -> Result<TenantFile, TenantFileError> {
    parse_tenant_file(text, &AnyTemplate)
}

fn for_tests(config: TenantFile) -> Tenant {
    Tenant {
        id: "t".into(),
        name: "acme".into(),
        revision: 1,
        config,
    }
}

fn keys(b: &Bundle) -> BTreeSet<String> {
    let prompts = b.prompts.iter().flat_map(|(p, screens)| {
        screens
            .iter()
            .flat_map(move |(s, keys)| keys.keys().map(move |k| format!("prompts.{p}.{s}.{k}")))
    });
    let messages = b
        .messages
        .iter()
        .flat_map(|(m, keys)| keys.keys().map(move |k| format!("messages.{m}.{k}")));
    prompts.chain(messages).collect()
}

fn text<'b>(b: &'b Bundle, key: &str) -> &'b str {
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["prompts", p, s, k] => &b.prompts[*p][*s][*k],
        ["messages", m, k] => &b.messages[*m][*k],
        _ => unreachable!(),
    }
}

/// The `${name}` placeholders of a text.
fn placeholders(text: &str) -> BTreeSet<&str> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}

#[test]
fn every_bundle_has_exactly_the_keys_and_placeholders_of_english() {
    let en = catalog::parse(SOURCES[0].1).unwrap();
    let en_keys = keys(&en);
    assert!(en_keys.len() > 100, "{}", en_keys.len());
    assert_eq!(SOURCES.len(), Language::ALL.len());
    for (language, source) in SOURCES {
        let bundle = catalog::parse(source).unwrap_or_else(|e| panic!("{language}: {e}"));
        let these = keys(&bundle);
        let missing: Vec<_> = en_keys.difference(&these).collect();
        let extra: Vec<_> = these.difference(&en_keys).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{language}: missing {missing:?}, not in English {extra:?}"
        );
        for key in &en_keys {
            let t = text(&bundle, key);
            assert!(!t.trim().is_empty(), "{language} {key} is empty");
            assert_eq!(
                placeholders(t),
                placeholders(text(&en, key)),
                "{language} {key}: {t}"
            );
            if language != Language::En && key.contains(".title") {
                assert_ne!(t, text(&en, key), "{language} {key} is not translated");
            }
        }
    }
}

#[test]
fn tags_match_case_insensitively_and_regions_fall_back() {
    assert_eq!(Language::matching("FR"), Some(Language::Fr));
    assert_eq!(Language::matching("fr-CA"), Some(Language::Fr));
    assert_eq!(Language::matching("en-us"), Some(Language::En));
    assert_eq!(Language::matching("en_GB"), Some(Language::En));
    assert_eq!(Language::matching("it"), None);
    assert_eq!(Language::matching(""), None);
    assert_eq!(Language::from_tag("fr-CA"), None);
    assert_eq!(Language::try_from("Fr".to_string()), Ok(Language::Fr));
    assert!(
        Language::try_from("xx".to_string())
            .unwrap_err()
            .contains("one of: en, fr")
    );
}

fn tenant(extra: &str) -> Tenant {
    let file = parse(&format!(
        "tenant: {{ name: acme, domains: [\"localhost:3917\"]{extra} }}\n"
    ))
    .unwrap();
    for_tests(file)
}

#[test]
fn ui_locales_come_first_then_the_browser_then_the_default() {
    let t = tenant("");
    let accept = vec!["fr-CA".to_string(), "en".to_string()];
    assert_eq!(negotiate(&t, &wanted(None, &accept)), Language::Fr);
    assert_eq!(negotiate(&t, &wanted(Some("en fr"), &accept)), Language::En);
    // The first supported of ui_locales wins; unknown ones are skipped.
    assert_eq!(negotiate(&t, &wanted(Some("it  fr-FR"), &[])), Language::Fr);
    assert_eq!(
        negotiate(&t, &wanted(Some("it"), &["it".into()])),
        Language::En
    );
    assert_eq!(negotiate(&t, &[]), Language::En);
}

#[test]
fn a_tenant_offers_its_languages_and_defaults_to_its_first() {
    let t = tenant(", enabled_locales: [fr]");
    assert_eq!(offered(&t), &[Language::Fr]);
    assert_eq!(negotiate(&t, &["en".to_string()]), Language::Fr);
    assert_eq!(negotiate(&t, &[]), Language::Fr);
}

#[test]
fn placeholders_are_filled_once() {
    assert_eq!(
        fill("Log in to ${companyName} ${x}", &[("companyName", "${x}")]),
        "Log in to ${x} ${x}"
    );
    assert_eq!(fill("50% ${", &[]), "50% ${");
}

#[test]
fn counts_take_the_language_plural() {
    let en = Texts::new(None, Language::En);
    let fr = Texts::new(None, Language::Fr);
    let key = "mfa.mfa-challenge.invalid-code";
    assert_eq!(
        en.count(key, "attempts", 1, &[]),
        "That code is not right. 1 attempt left."
    );
    assert_eq!(
        en.count(key, "attempts", 2, &[]),
        "That code is not right. 2 attempts left."
    );
    assert_eq!(
        fr.count(key, "attempts", 1, &[]),
        "Ce code est incorrect. Il vous reste 1 tentative."
    );
}

#[test]
fn custom_text_wins_over_the_bundle_for_its_language_only() {
    let file = parse(
        "tenant: { name: acme, domains: [\"localhost:3917\"] }\n\
         prompts: { custom_text: { fr: { login: { login: { title: \"Bienvenue chez ${companyName}\" } } } } }\n",
    )
    .unwrap();
    let t = for_tests(file);
    let fr = Texts::new(Some(&t), Language::Fr);
    assert_eq!(
        fr.get("login.login.title", &[("companyName", "Acme")]),
        "Bienvenue chez Acme"
    );
    assert_eq!(fr.raw("login.login.buttonText"), "Continuer");
    let en = Texts::new(Some(&t), Language::En);
    assert_eq!(en.raw("login.login.title"), "Log in to ${companyName}");
}

#[test]
fn custom_text_outside_the_bundles_is_refused_with_its_path() {
    for (body, path, says) in [
        (
            "{ xx: { login: { login: { title: a } } } }",
            "prompts.custom_text.xx",
            "is not a language",
        ),
        (
            "{ fr: { logn: { login: { title: a } } } }",
            "prompts.custom_text.fr.logn",
            "unknown prompt \"logn\"",
        ),
        (
            "{ fr: { login: { lgin: { title: a } } } }",
            "prompts.custom_text.fr.login.lgin",
            "unknown screen \"lgin\"",
        ),
        (
            "{ en: { login: { login: { titel: a } } } }",
            "prompts.custom_text.en.login.login.titel",
            "unknown key \"titel\" of screen login.login",
        ),
    ] {
        let e = parse(&format!(
            "tenant: {{ name: acme, domains: [\"localhost:3917\"] }}\nprompts: {{ custom_text: {body} }}\n"
        ))
        .unwrap_err();
        assert_eq!(e.path, path, "{e}");
        assert!(e.message.contains(says), "{e}");
        assert_eq!(e.line, Some(2), "{e}");
    }
    let e =
        parse("tenant: { name: acme, domains: [\"localhost:3917\"], enabled_locales: [fr, xx] }\n")
            .unwrap_err();
    assert_eq!(e.path, "tenant.enabled_locales[1]", "{e}");
    let e =
        parse("tenant: { name: acme, domains: [\"localhost:3917\"], enabled_locales: [fr, FR] }\n")
            .unwrap_err();
    assert_eq!(e.path, "tenant.enabled_locales[1]", "{e}");
}

#[test]
fn every_factor_names_itself_with_a_key_the_bundles_have() {
    use crate::services::factors;
    use crate::store::MethodRow;
    use crate::tenant::FactorType;
    let en = Texts::new(None, Language::En);
    for kind in FactorType::ALL {
        if let Some(key) = factors::enroll_label(*kind) {
            assert!(
                catalog::prompt_text(Language::En, "mfa", "mfa-begin-enroll-options", key)
                    .is_some(),
                "{key}"
            );
        }
        for preferred in ["sms", "voice"] {
            let m = MethodRow {
                id: "m".into(),
                user_id: "u".into(),
                method_type: *kind,
                name: None,
                data: serde_json::json!({
                    "email": "alice@example.com",
                    "phone_number": "+15550100",
                    "preferred_authentication_method": preferred,
                }),
                created_at: 0,
                last_auth_at: None,
                last_otp_step: None,
                credential_id: None,
            };
            if factors::rank(*kind) == u8::MAX {
                continue;
            }
            let label = factors::label(&m);
            let text = en.get(
                &format!("mfa.mfa-login-options.{}", label.key),
                &[("destination", &label.destination)],
            );
            assert!(
                catalog::prompt_text(Language::En, "mfa", "mfa-login-options", label.key).is_some(),
                "{kind:?}: {}",
                label.key
            );
            assert!(!text.contains("${"), "{kind:?}: {text}");
        }
    }
    let en_labels = |m: &str| {
        Texts::new(None, Language::En).get(
            "mfa.mfa-login-options.authenticatorNamesSMS",
            &[("destination", m)],
        )
    };
    assert_eq!(en_labels("+1*****0100"), "Text a code to +1*****0100");
}

#[test]
fn every_policy_refusal_is_worded_in_every_language() {
    use crate::services::password_policy::Violation;
    use crate::tenant::{CharacterType, CharacterTypeRule};
    let all_types = vec![
        CharacterType::Lowercase,
        CharacterType::Uppercase,
        CharacterType::Number,
        CharacterType::Special,
    ];
    let refusals = [
        Violation::TooShort { min_length: 1 },
        Violation::TooShort { min_length: 8 },
        Violation::TooLong { max_bytes: 72 },
        Violation::ControlCharacters,
        Violation::CharacterTypes {
            required: all_types.clone(),
            rule: CharacterTypeRule::ThreeOfFour,
        },
        Violation::CharacterTypes {
            required: vec![CharacterType::Lowercase, CharacterType::Number],
            rule: CharacterTypeRule::All,
        },
        Violation::IdenticalCharacters,
        Violation::SequentialCharacters,
        Violation::InHistory { size: 1 },
        Violation::InHistory { size: 3 },
        Violation::InDictionary,
        Violation::ContainsProfileData {
            field: "name".into(),
        },
    ];
    for language in Language::ALL {
        let texts = Texts::new(None, language);
        for v in &refusals {
            let s = policy::violation(&texts, v);
            assert!(
                !s.contains("${") && !s.contains('…'),
                "{language} {v:?}: {s}"
            );
            if language != Language::En {
                assert_ne!(
                    s,
                    policy::violation(&Texts::new(None, Language::En), v),
                    "{language} {v:?}"
                );
            }
        }
    }
    let en = Texts::new(None, Language::En);
    assert_eq!(
        policy::violations(&en, &refusals[1..2]),
        "The password must be at least 8 characters long."
    );
    assert_eq!(
        policy::violation(&en, &refusals[4]),
        "The password must contain at least 3 of the following 4 types of characters: \
         lowercase letters (a–z), uppercase letters (A–Z), numbers (0–9), special characters (such as !@#$%^&*)."
    );
    let fr = Texts::new(None, Language::Fr);
    assert_eq!(
        policy::violation(&fr, &refusals[0]),
        "Le mot de passe doit comporter au moins 1 caractère."
    );
    let ja = Texts::new(None, Language::Ja);
    assert_eq!(
        policy::violation(&ja, &refusals[5]),
        "パスワードには次の種類の文字をそれぞれ 1 文字以上含めてください: 小文字 (a–z)、数字 (0–9)。"
    );
}
