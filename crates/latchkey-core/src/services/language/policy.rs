//! The password policy's refusals in a page's language: each
//! [`Violation`] worded from the bundles' `common.password-policy` screen
//! (the API dialects keep `Violation::detail`, in English as Auth0's).

use super::Texts;
use crate::services::password_policy::Violation;
use crate::tenant::{CharacterType, CharacterTypeRule};

const SCREEN: &str = "common.password-policy";

fn key(name: &str) -> String {
    format!("{SCREEN}.{name}")
}

/// One refusal as a sentence. It never repeats the password.
pub fn violation(texts: &Texts<'_>, v: &Violation) -> String {
    let count = |name: &str, n: i64| texts.count(&key(name), "count", n, &[]);
    match v {
        Violation::TooShort { min_length } => count("too-short", i64::from(*min_length)),
        Violation::TooLong { max_bytes } => {
            texts.get(&key("too-long"), &[("bytes", &max_bytes.to_string())])
        }
        Violation::ControlCharacters => texts.get(&key("control-characters"), &[]),
        Violation::CharacterTypes { required, rule } => {
            let types = required
                .iter()
                .map(|t| texts.get(&key(type_key(*t)), &[]))
                .collect::<Vec<_>>()
                .join(texts.raw(&key("list-separator")));
            match rule {
                CharacterTypeRule::All => {
                    texts.get(&key("character-types-all"), &[("types", &types)])
                }
                CharacterTypeRule::ThreeOfFour => texts.get(
                    &key("character-types-some"),
                    &[
                        ("count", &required.len().min(3).to_string()),
                        ("total", &required.len().to_string()),
                        ("types", &types),
                    ],
                ),
            }
        }
        Violation::IdenticalCharacters => texts.get(&key("identical-characters"), &[]),
        Violation::SequentialCharacters => texts.get(&key("sequential-characters"), &[]),
        Violation::InHistory { size } => count("history", i64::from(*size)),
        Violation::InDictionary => texts.get(&key("dictionary"), &[]),
        Violation::ContainsProfileData { field } => {
            texts.get(&key("profile-data"), &[("field", field)])
        }
    }
}

/// Every refusal, one sentence after another.
pub fn violations(texts: &Texts<'_>, all: &[Violation]) -> String {
    all.iter()
        .map(|v| violation(texts, v))
        .collect::<Vec<_>>()
        .join(" ")
}

fn type_key(t: CharacterType) -> &'static str {
    match t {
        CharacterType::Lowercase => "lower-case",
        CharacterType::Uppercase => "upper-case",
        CharacterType::Number => "numbers",
        CharacterType::Special => "special-characters",
    }
}
