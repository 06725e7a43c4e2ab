//! The language a hosted page or a code message speaks, and its words.
//!
//! Negotiation: the languages a request asks for, most wanted first — the
//! authorization request's `ui_locales` (kept with its login transaction),
//! then the browser's `Accept-Language` — are matched against the languages
//! the tenant offers (`tenant.enabled_locales`, the first its default); the
//! first match wins, else the default. Tags match case-insensitively, a
//! region falls back to its language (`fr-CA` → `fr`), and Portuguese is
//! Brazilian (`pt`, `pt-PT` → `pt-BR`).
//!
//! Words: `catalog.rs` holds one bundle a language (`bundles/*.json`),
//! keyed Auth0's way (prompt → screen → key); [`Texts`] reads them for one
//! language with the tenant's `prompts.custom_text` over them;
//! `policy.rs` words the password policy's refusals with them.

mod catalog;
pub mod policy;

use serde::{Deserialize, Serialize};

pub use catalog::{CustomText, check_custom_text, message};

use crate::tenant::Tenant;

/// A language latchkey speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Language {
    En,
    Fr,
    De,
    Es,
    PtBr,
    Ja,
}

impl Language {
    /// Every language, English (the default) first.
    pub const ALL: [Self; 6] = [Self::En, Self::Fr, Self::De, Self::Es, Self::PtBr, Self::Ja];

    /// The BCP 47 tag (`lang="…"`, tenant files).
    pub const fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Fr => "fr",
            Self::De => "de",
            Self::Es => "es",
            Self::PtBr => "pt-BR",
            Self::Ja => "ja",
        }
    }

    /// The language of exactly this tag (any case): how tenant files name
    /// languages.
    pub fn from_tag(tag: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(tag))
    }

    /// The language that serves someone asking for `tag`: itself, else its
    /// primary language (`fr-CA` → `fr`, `de-DE` → `de`), Portuguese of
    /// any region being Brazilian Portuguese.
    pub fn matching(tag: &str) -> Option<Self> {
        let tag = tag.trim();
        if let Some(l) = Self::from_tag(tag) {
            return Some(l);
        }
        let primary = tag.split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("pt") {
            return Some(Self::PtBr);
        }
        Self::from_tag(primary)
    }

    /// The plural form `n` takes, as the bundles' keys end: `one` or
    /// `other`.
    pub fn plural(self, n: i64) -> &'static str {
        if self.singular(n) { "one" } else { "other" }
    }

    /// What parts two sentences run together in one paragraph: a space,
    /// nothing in Japanese (its full stop `。` ends a sentence on its own).
    pub const fn sentence_gap(self) -> &'static str {
        match self {
            Self::Ja => "",
            Self::En | Self::Fr | Self::De | Self::Es | Self::PtBr => " ",
        }
    }

    /// Which plural form a count takes: French counts 0 and 1 as singular,
    /// Japanese has one form, the others singular for 1 alone.
    fn singular(self, n: i64) -> bool {
        match self {
            Self::Fr | Self::PtBr => n.abs() <= 1,
            Self::Ja => false,
            Self::En | Self::De | Self::Es => n == 1,
        }
    }
}

impl TryFrom<String> for Language {
    type Error = String;

    fn try_from(tag: String) -> Result<Self, String> {
        Self::from_tag(&tag).ok_or_else(|| {
            format!(
                "{tag:?} is not a language latchkey speaks; one of: {}",
                Self::ALL.map(Self::tag).join(", ")
            )
        })
    }
}

impl From<Language> for &'static str {
    fn from(l: Language) -> Self {
        l.tag()
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.tag())
    }
}

/// The languages a request asks for, most wanted first: `ui_locales`
/// (space-separated, in its order), then the browser's preferences (as
/// [`crate::services::delivery::languages`] reads `Accept-Language`).
pub fn wanted(ui_locales: Option<&str>, accept_language: &[String]) -> Vec<String> {
    ui_locales
        .unwrap_or("")
        .split_ascii_whitespace()
        .take(10)
        .filter(|t| t.len() <= 35)
        .map(str::to_string)
        .chain(accept_language.iter().cloned())
        .collect()
}

/// The languages `tenant` offers, its default first.
pub fn offered(tenant: &Tenant) -> &[Language] {
    match tenant.config.tenant.enabled_locales.as_slice() {
        [] => &Language::ALL,
        some => some,
    }
}

/// The first language of `wanted` that `tenant` offers, if any.
pub fn asked_for(tenant: &Tenant, wanted: &[String]) -> Option<Language> {
    let offered = offered(tenant);
    wanted
        .iter()
        .filter_map(|t| Language::matching(t))
        .find(|l| offered.contains(l))
}

/// The language `tenant` answers someone who wants `wanted` in: the first
/// wanted one it offers, else its default.
pub fn negotiate(tenant: &Tenant, wanted: &[String]) -> Language {
    asked_for(tenant, wanted).unwrap_or(offered(tenant)[0])
}

/// The words of one language for one tenant: its custom text over the
/// bundle, the English bundle under both.
#[derive(Debug, Clone, Copy)]
pub struct Texts<'a> {
    pub language: Language,
    custom: Option<&'a CustomText>,
}

impl<'a> Texts<'a> {
    pub fn new(tenant: Option<&'a Tenant>, language: Language) -> Self {
        Self::with_custom(language, tenant.and_then(|t| custom_text(t, language)))
    }

    /// The words of `language` with `custom` (a tenant's for it) over them.
    pub fn with_custom(language: Language, custom: Option<&'a CustomText>) -> Self {
        Self { language, custom }
    }

    /// The text of `key` (`prompt.screen.key`) as written, placeholders
    /// (`${name}`) and all. A key no bundle has reads as itself (the tests
    /// prove every key used exists).
    pub fn raw(&self, key: &str) -> &'a str {
        let mut parts = key.splitn(3, '.');
        let (Some(prompt), Some(screen), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            return catalog::missing(key);
        };
        if let Some(t) = self
            .custom
            .and_then(|c| c.get(prompt))
            .and_then(|s| s.get(screen))
            .and_then(|k| k.get(name))
        {
            return t;
        }
        catalog::prompt_text(self.language, prompt, screen, name)
            .or_else(|| catalog::prompt_text(Language::En, prompt, screen, name))
            .unwrap_or_else(|| catalog::missing(key))
    }

    /// The text of `key` with its placeholders filled from `vars`.
    pub fn get(&self, key: &str, vars: &[(&str, &str)]) -> String {
        fill(self.raw(key), vars)
    }

    /// The text of `key` for the count `n` (`${name}` in it): `key-one` or
    /// `key-other`, as the language counts.
    pub fn count(&self, key: &str, name: &str, n: i64, vars: &[(&str, &str)]) -> String {
        let form = self.language.plural(n);
        let n = n.to_string();
        let mut all = vec![(name, n.as_str())];
        all.extend_from_slice(vars);
        fill(self.raw(&format!("{key}-{form}")), &all)
    }
}

/// `tenant`'s custom text for `language`, if it has some.
pub fn custom_text(tenant: &Tenant, language: Language) -> Option<&CustomText> {
    tenant
        .config
        .prompts
        .custom_text
        .iter()
        .find(|(tag, _)| Language::from_tag(tag) == Some(language))
        .map(|(_, text)| text)
}

/// `text` with each `${name}` of `vars` replaced by its value (once: a
/// value's own `${…}` stays as it is). Unknown placeholders stay.
pub fn fill(text: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match vars.iter().find(|(n, _)| *n == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[start..start + 2 + end + 1]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
