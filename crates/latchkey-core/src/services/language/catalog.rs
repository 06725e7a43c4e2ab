//! The message bundles: one JSON file a language in `bundles/`, built into
//! the binary and parsed once. Each holds `prompts` (prompt → screen → key
//! → text, Auth0's custom-text shape, for the hosted pages) and `messages`
//! (message → key → text, for the code emails, SMS and calls, and the
//! emails of mailed links). English is the reference: every other bundle
//! has exactly its keys (the tests say so), and what a tenant may override
//! is what English has.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::Language;

/// A screen's texts by key.
pub(super) type Keys = BTreeMap<String, String>;
/// One language's custom text in a tenant file: prompt → screen → key →
/// text.
pub type CustomText = BTreeMap<String, BTreeMap<String, Keys>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Bundle {
    pub(super) prompts: BTreeMap<String, BTreeMap<String, Keys>>,
    pub(super) messages: BTreeMap<String, Keys>,
}

pub(super) const SOURCES: [(Language, &str); 6] = [
    (Language::En, include_str!("bundles/en.json")),
    (Language::Fr, include_str!("bundles/fr.json")),
    (Language::De, include_str!("bundles/de.json")),
    (Language::Es, include_str!("bundles/es.json")),
    (Language::PtBr, include_str!("bundles/pt-BR.json")),
    (Language::Ja, include_str!("bundles/ja.json")),
];

pub(super) fn parse(source: &str) -> Result<Bundle, serde_json::Error> {
    serde_json::from_str(source)
}

fn bundles() -> &'static [Bundle] {
    static BUNDLES: OnceLock<Vec<Bundle>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(language, source)| {
                parse(source).unwrap_or_else(|e| {
                    // The tests parse every bundle: this cannot ship.
                    tracing::error!(%language, error = %e, "message bundle does not parse");
                    Bundle::default()
                })
            })
            .collect()
    })
}

fn bundle(language: Language) -> Option<&'static Bundle> {
    let i = SOURCES.iter().position(|(l, _)| *l == language)?;
    bundles().get(i)
}

/// A page's text in `language`, if its bundle has it.
pub(super) fn prompt_text(
    language: Language,
    prompt: &str,
    screen: &str,
    key: &str,
) -> Option<&'static str> {
    bundle(language)?
        .prompts
        .get(prompt)?
        .get(screen)?
        .get(key)
        .map(String::as_str)
}

/// What a key no bundle has reads as: the key itself, so a mistake shows.
pub(super) fn missing(key: &str) -> &'static str {
    tracing::error!(key, "text key missing from the bundles");
    "…"
}

/// The built-in text `key` of message `name` (`code-email`, `code-sms`,
/// `code-voice`, `verify-email`, `reset-email`, `link-email`) in
/// `language` (English where it lacks one), placeholders unfilled.
pub fn message(language: Language, name: &str, key: &str) -> &'static str {
    let find = |l: Language| -> Option<&'static str> {
        bundle(l)?.messages.get(name)?.get(key).map(String::as_str)
    };
    find(language)
        .or_else(|| find(Language::En))
        .unwrap_or_else(|| missing(key))
}

/// Whether a tenant's custom text may set `prompt.screen.key`: the English
/// bundle has it. The error says what is wrong and what would be right.
pub fn check_custom_text(prompt: &str, screen: &str, key: &str) -> Result<(), (usize, String)> {
    let list = |names: Vec<&String>| {
        names
            .into_iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(en) = bundle(Language::En) else {
        return Err((0, "no English bundle".into()));
    };
    let Some(screens) = en.prompts.get(prompt) else {
        return Err((
            0,
            format!(
                "unknown prompt {prompt:?}; the prompts are: {}",
                list(en.prompts.keys().collect())
            ),
        ));
    };
    let Some(keys) = screens.get(screen) else {
        return Err((
            1,
            format!(
                "unknown screen {screen:?} of prompt {prompt:?}; its screens are: {}",
                list(screens.keys().collect())
            ),
        ));
    };
    if keys.contains_key(key) {
        Ok(())
    } else {
        Err((
            2,
            format!(
                "unknown key {key:?} of screen {prompt}.{screen}; its keys are: {}",
                list(keys.keys().collect())
            ),
        ))
    }
}
