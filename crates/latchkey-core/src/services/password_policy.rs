//! Checks a proposed password against a connection's password policy, the
//! way Auth0's Flexible Password Policy does.
//!
//! The rules, in the order their violations are reported:
//!
//! - **Control characters** (U+0000–U+001F, U+007F–U+009F) are always
//!   refused, wherever they appear in the password.
//! - **Length.** `min_length` counts characters (Unicode scalar values). The
//!   maximum is [`MAX_PASSWORD_BYTES`] bytes of UTF-8; a longer password is
//!   cut to the last character boundary within it (`truncate`) or refused
//!   (`error`). Every rule below looks at the password as it will be stored,
//!   that is after truncation, because that is the secret that will
//!   authenticate.
//! - **Character types.** Lowercase and uppercase follow Unicode
//!   (`char::is_lowercase`, `char::is_uppercase`); a number is a decimal digit
//!   (general category Nd, which includes `0`–`9`); special is anything else
//!   that is neither a letter (`char::is_alphabetic`) nor a digit, space
//!   included. Letters without case (CJK, Arabic, …) count as no type.
//!   `all` needs every listed type, `three_of_four` any three of the four.
//! - **Identical characters:** three of the same character in a row (`aaa`,
//!   `111`, `!!!`), compared exactly, so `aAa` passes.
//! - **Sequential characters:** three characters in a row that step by +1 or
//!   −1 through the ASCII alphabet (case-insensitive: `abc`, `CbA`, `xyz`) or
//!   through the digits of one decimal script (`123`, `987`, `٣٤٥`). There is
//!   no wrap-around (`yza` and `890` pass) and a sequence does not cross from
//!   letters to digits.
//! - **Dictionary:** the whole password, compared case-insensitively, must not
//!   be an entry of the built-in list or of the custom `entries`. A password
//!   that merely contains a common word (`Dragon2026!`) passes, as it does in
//!   Auth0, whose documentation describes the check as a case-insensitive
//!   comparison with the listed passwords.
//! - **Profile data:** the password must not contain, case-insensitively, the
//!   value of a blocked field, nor any word of it (a run of letters and
//!   digits), as in Auth0 "any part of their personal data"; for `email`, the
//!   address and its local part and the words of the local part (the domain
//!   is not personal). Only values and words of at least 3 characters count.
//! - **History:** the password must not match any of the newest `size` stored
//!   hashes.
//!
//! Nothing is normalised (no NFC/NFKC): `é` typed as one code point and as
//! `e` plus a combining accent are different passwords, as they are to the
//! hash.

use std::borrow::Cow;

use serde_json::{Value, json};

use crate::tenant::{
    AllowOrBlock, CharacterType, CharacterTypeRule, DictionaryName, MaxLengthExceeded,
    PasswordPolicy,
};

/// Auth0's maximum password length in bytes (passwords longer are truncated
/// or refused per policy). 72 is bcrypt's input limit and the maximum Auth0
/// documents for database-connection passwords; the Flexible Password Policy
/// caps `min_length` at 72 as well and adds `max_length_exceeded` to choose
/// between truncating and refusing beyond the maximum.
pub(crate) const MAX_PASSWORD_BYTES: usize = 72;

/// The shortest profile value (or word of one) that the profile-data rule
/// looks for; shorter ones would refuse too many passwords.
const MIN_PROFILE_TOKEN_CHARS: usize = 3;

/// The built-in dictionaries: common passwords, lowercase, sorted bytewise,
/// one per line. `en_10k` is the 10,000 most common; `en_100k` is two real
/// common-password lists together, a superset of `en_10k` (see
/// `data/passwords/README.md`).
const EN_10K: &str = include_str!("../../data/passwords/en_10k.txt");
const EN_100K: &str = include_str!("../../data/passwords/en_100k.txt");

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    TooShort {
        min_length: u32,
    },
    /// Only when `max_length_exceeded` is `error`.
    TooLong {
        max_bytes: usize,
    },
    /// C0/C1 control characters (U+0000–U+001F, U+007F–U+009F) are always
    /// refused.
    ControlCharacters,
    CharacterTypes {
        required: Vec<CharacterType>,
        rule: CharacterTypeRule,
    },
    /// Three or more identical consecutive characters, when blocked.
    IdenticalCharacters,
    /// Three or more sequential characters (`abc`, `123`, `cba`, `321`), when
    /// blocked.
    SequentialCharacters,
    /// Equals one of the last `size` passwords.
    InHistory {
        size: u32,
    },
    /// The password, compared case-insensitively, is a dictionary entry.
    InDictionary,
    /// Contains the value (or a word of the value) of the blocked profile
    /// field `field`.
    ContainsProfileData {
        field: String,
    },
}

impl Violation {
    /// A sentence for an error's `detail`. It never repeats the password.
    pub fn detail(&self) -> String {
        match self {
            Self::TooShort { min_length } => {
                let unit = if *min_length == 1 {
                    "character"
                } else {
                    "characters"
                };
                format!("The password must be at least {min_length} {unit} long.")
            }
            Self::TooLong { max_bytes } => {
                format!("The password must not be longer than {max_bytes} bytes.")
            }
            Self::ControlCharacters => {
                "The password must not contain control characters.".to_string()
            }
            Self::CharacterTypes { required, rule } => character_types_detail(required, *rule),
            Self::IdenticalCharacters => {
                "The password must not contain more than 2 identical characters in a row."
                    .to_string()
            }
            Self::SequentialCharacters => {
                "The password must not contain 3 or more sequential characters, such as abc or 123."
                    .to_string()
            }
            Self::InHistory { size } => {
                if *size == 1 {
                    "The password must not be the same as the previous password.".to_string()
                } else {
                    format!(
                        "The password must not be the same as any of the last {size} passwords."
                    )
                }
            }
            Self::InDictionary => {
                "The password is too common; choose one that is harder to guess.".to_string()
            }
            Self::ContainsProfileData { field } => {
                format!(
                    "The password must not contain personal data from the profile field {field:?}."
                )
            }
        }
    }
}

fn character_types_detail(required: &[CharacterType], rule: CharacterTypeRule) -> String {
    let noun = |t: &CharacterType| match t {
        CharacterType::Lowercase => "lowercase letter",
        CharacterType::Uppercase => "uppercase letter",
        CharacterType::Number => "number",
        CharacterType::Special => "special character",
    };
    match rule {
        CharacterTypeRule::ThreeOfFour => {
            let plural: Vec<String> = required.iter().map(|t| format!("{}s", noun(t))).collect();
            format!(
                "The password must contain at least {} of the following {} types of characters: {}.",
                three_of(required.len()),
                required.len(),
                english_list(&plural),
            )
        }
        CharacterTypeRule::All => {
            let each: Vec<String> = required
                .iter()
                .map(|t| format!("one {}", noun(t)))
                .collect();
            format!(
                "The password must contain at least {}.",
                english_list(&each)
            )
        }
    }
}

/// "a", "a and b", "a, b and c".
fn english_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// How many of `listed` types `three_of_four` requires: three, or all of them
/// when fewer are listed (the tenant-file validator requires all four).
fn three_of(listed: usize) -> usize {
    listed.min(3)
}

/// The profile values the profile_data rule compares against: field name ->
/// value, e.g. ("name", "Alice Example"), ("email", "alice@example.com"),
/// ("user_metadata.first", "Al").
pub struct Profile<'a> {
    pub values: Vec<(&'a str, &'a str)>,
}

/// Deliberately not `Debug`: it holds the password.
pub struct Candidate<'a> {
    pub password: &'a str,
    pub profile: Profile<'a>,
    /// Stored hashes of previous passwords, newest first (may be longer than
    /// history.size; only the first `size` count).
    pub history: &'a [String],
}

/// Checks `c` against `policy`. On success returns the password to store
/// (truncated to [`MAX_PASSWORD_BYTES`] at a char boundary when
/// max_length_exceeded = truncate). All violations are reported, not just the
/// first. `verify(password, hash) -> bool` compares against a stored hash (the
/// caller passes an Argon2id/bcrypt verifier); it is only called when history
/// is active, at most `history.size` times, and not at all for a password
/// refused as too long (no stored password can be longer than the maximum).
pub fn check(
    policy: &PasswordPolicy,
    c: &Candidate<'_>,
    verify: &dyn Fn(&str, &str) -> bool,
) -> Result<String, Vec<Violation>> {
    let mut violations = Vec::new();

    if c.password.chars().any(is_control) {
        violations.push(Violation::ControlCharacters);
    }

    let too_long = c.password.len() > MAX_PASSWORD_BYTES;
    let effective = match policy.max_length_exceeded {
        MaxLengthExceeded::Truncate if too_long => truncate(c.password, MAX_PASSWORD_BYTES),
        _ => c.password,
    };

    if effective.chars().count() < usize::try_from(policy.min_length).unwrap_or(usize::MAX) {
        violations.push(Violation::TooShort {
            min_length: policy.min_length,
        });
    }
    if too_long && policy.max_length_exceeded == MaxLengthExceeded::Error {
        violations.push(Violation::TooLong {
            max_bytes: MAX_PASSWORD_BYTES,
        });
    }

    if !character_types_ok(policy, effective) {
        violations.push(Violation::CharacterTypes {
            required: policy.character_types.clone(),
            rule: policy.character_type_rule,
        });
    }

    let chars: Vec<char> = effective.chars().collect();
    if policy.identical_characters == AllowOrBlock::Block && has_identical_run(&chars) {
        violations.push(Violation::IdenticalCharacters);
    }
    if policy.sequential_characters == AllowOrBlock::Block && has_sequential_run(&chars) {
        violations.push(Violation::SequentialCharacters);
    }

    if policy.dictionary.active && in_dictionary(policy, effective) {
        violations.push(Violation::InDictionary);
    }

    if policy.profile_data.active {
        let lowered = lowercase(effective);
        for field in &policy.profile_data.blocked_fields {
            let hit = c
                .profile
                .values
                .iter()
                .filter(|(name, _)| *name == field.as_str())
                .any(|(name, value)| {
                    profile_tokens(name, value)
                        .iter()
                        .any(|token| lowered.contains(token.as_str()))
                });
            let violation = Violation::ContainsProfileData {
                field: field.clone(),
            };
            if hit && !violations.contains(&violation) {
                violations.push(violation);
            }
        }
    }

    if policy.history.active
        && !(too_long && policy.max_length_exceeded == MaxLengthExceeded::Error)
    {
        let size = usize::try_from(policy.history.size).unwrap_or(usize::MAX);
        if c.history
            .iter()
            .take(size)
            .any(|hash| verify(effective, hash))
        {
            violations.push(Violation::InHistory {
                size: policy.history.size,
            });
        }
    }

    if violations.is_empty() {
        Ok(effective.to_string())
    } else {
        Err(violations)
    }
}

/// The policy as the My Account API shows it (`PasswordAuthenticationMethodPolicy`
/// of the official OpenAPI document). Custom dictionary entries are not shown.
pub fn policy_json(policy: &PasswordPolicy) -> Value {
    let types: Vec<&str> = policy.character_types.iter().map(|t| t.as_str()).collect();
    json!({
        "complexity": {
            "min_length": policy.min_length,
            "character_types": types,
            "character_type_rule": policy.character_type_rule.as_str(),
            "identical_characters": policy.identical_characters.as_str(),
            "sequential_characters": policy.sequential_characters.as_str(),
            "max_length_exceeded": policy.max_length_exceeded.as_str(),
        },
        "profile_data": {
            "active": policy.profile_data.active,
            "blocked_fields": policy.profile_data.blocked_fields,
        },
        "history": {
            "active": policy.history.active,
            "size": policy.history.size,
        },
        "dictionary": {
            "active": policy.dictionary.active,
            "default": policy.dictionary.default.as_str(),
        },
    })
}

/// Whether `word` is in the named built-in dictionary or the policy's custom
/// `entries` (case-insensitive; entries are compared without surrounding
/// whitespace). Looks regardless of `dictionary.active`; [`check`] only asks
/// when it is set.
pub(crate) fn in_dictionary(policy: &PasswordPolicy, word: &str) -> bool {
    let word = lowercase(word);
    let list = match policy.dictionary.default {
        DictionaryName::En10k => EN_10K,
        DictionaryName::En100k => EN_100K,
    };
    sorted_lines_contain(list, &word)
        || policy
            .dictionary
            .entries
            .iter()
            .any(|entry| lowercase_chars(entry.trim()).eq(word.chars()))
}

/// Binary search in `list`, a text of lines sorted bytewise (each ended by
/// `\n`, the last one optionally not), for a line equal to `word`. Works on
/// the text in place: no index, no allocation.
fn sorted_lines_contain(list: &str, word: &str) -> bool {
    let bytes = list.as_bytes();
    let needle = word.as_bytes();
    // `lo` is always the start of a line and `hi` the end of the text or the
    // start of a line: the lines in between are the ones still possible.
    let (mut lo, mut hi) = (0, bytes.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let (Some(before), Some(rest)) = (bytes.get(lo..mid), bytes.get(mid..hi)) else {
            return false;
        };
        let start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(lo, |i| lo + i + 1);
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(hi, |i| mid + i);
        let Some(line) = bytes.get(start..end) else {
            return false;
        };
        match line.cmp(needle) {
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Less => lo = end + 1,
            std::cmp::Ordering::Greater => hi = start,
        }
    }
    false
}

fn lowercase_chars(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(char::to_lowercase)
}

/// `s` lowercased character by character (the same mapping as the lists);
/// borrowed when it already is.
fn lowercase(s: &str) -> Cow<'_, str> {
    if lowercase_chars(s).eq(s.chars()) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(lowercase_chars(s).collect())
    }
}

fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character
/// boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// The character type of `c`, if it has one.
fn character_type(c: char) -> Option<CharacterType> {
    if is_control(c) {
        None
    } else if c.is_lowercase() {
        Some(CharacterType::Lowercase)
    } else if c.is_uppercase() {
        Some(CharacterType::Uppercase)
    } else if decimal_digit(c).is_some() {
        Some(CharacterType::Number)
    } else if c.is_alphabetic() {
        None
    } else {
        Some(CharacterType::Special)
    }
}

fn character_types_ok(policy: &PasswordPolicy, password: &str) -> bool {
    let listed = &policy.character_types;
    if listed.is_empty() {
        return true;
    }
    let mut present = [false; 4];
    for t in password.chars().filter_map(character_type) {
        present[type_index(t)] = true;
    }
    let found = listed.iter().filter(|t| present[type_index(**t)]).count();
    match policy.character_type_rule {
        CharacterTypeRule::All => found == listed.len(),
        CharacterTypeRule::ThreeOfFour => found >= three_of(listed.len()),
    }
}

fn type_index(t: CharacterType) -> usize {
    match t {
        CharacterType::Lowercase => 0,
        CharacterType::Uppercase => 1,
        CharacterType::Number => 2,
        CharacterType::Special => 3,
    }
}

fn has_identical_run(chars: &[char]) -> bool {
    chars.windows(3).any(|w| w[0] == w[1] && w[1] == w[2])
}

fn has_sequential_run(chars: &[char]) -> bool {
    chars.windows(3).any(|w| {
        match (
            sequence_position(w[0]),
            sequence_position(w[1]),
            sequence_position(w[2]),
        ) {
            (Some((s0, p0)), Some((s1, p1)), Some((s2, p2))) if s0 == s1 && s1 == s2 => {
                let step = p1 - p0;
                step.abs() == 1 && p2 - p1 == step
            }
            _ => false,
        }
    })
}

/// Where `c` sits in a sequence: (which sequence, position). Sequence 0 is
/// the ASCII alphabet, any case; a decimal script's sequence is named by the
/// code point of its zero.
fn sequence_position(c: char) -> Option<(u32, i64)> {
    if c.is_ascii_alphabetic() {
        Some((0, i64::from(u32::from(c.to_ascii_lowercase()))))
    } else {
        decimal_digit(c).map(|(zero, value)| (zero, i64::from(value)))
    }
}

/// For a decimal digit (general category Nd): the code point of its script's
/// zero and its value.
fn decimal_digit(c: char) -> Option<(u32, u32)> {
    let code = u32::from(c);
    let after = DECIMAL_ZEROS.partition_point(|&zero| zero <= code);
    let zero = *DECIMAL_ZEROS.get(after.checked_sub(1)?)?;
    let value = code - zero;
    (value < 10).then_some((zero, value))
}

/// The zero of every run of decimal digits (general category Nd) in Unicode
/// 16.0; each run is the ten digits 0–9 in order.
const DECIMAL_ZEROS: [u32; 76] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x10D40, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
    0x11650, 0x116C0, 0x116D0, 0x116DA, 0x11730, 0x118E0, 0x11950, 0x11BF0, 0x11C50, 0x11D50,
    0x11DA0, 0x11F50, 0x16130, 0x16A60, 0x16AC0, 0x16B50, 0x16D70, 0x1CCF0, 0x1D7CE, 0x1D7D8,
    0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0, 0x1E5F1, 0x1E950, 0x1FBF0,
];

/// The lowercased strings of a profile value that a password must not
/// contain: the value and its words; for `email`, the address, its local
/// part and the local part's words. Only those of at least
/// [`MIN_PROFILE_TOKEN_CHARS`] characters.
fn profile_tokens(field: &str, value: &str) -> Vec<String> {
    let value = value.trim();
    let mut tokens = vec![value];
    let words_of = if field == "email" {
        let local = value.rsplit_once('@').map_or(value, |(local, _)| local);
        tokens.push(local);
        local
    } else {
        value
    };
    tokens.extend(words_of.split(|c: char| !c.is_alphanumeric()));
    let mut out: Vec<String> = Vec::new();
    for token in tokens {
        if token.chars().count() >= MIN_PROFILE_TOKEN_CHARS {
            let token = lowercase(token).into_owned();
            if !out.contains(&token) {
                out.push(token);
            }
        }
    }
    out
}

/// The strings of a profile the personal-data rule looks for: its string
/// fields, and `user_metadata`'s as `user_metadata.KEY`.
pub(crate) fn profile_values(profile: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for (k, val) in profile {
        match val {
            Value::String(s) => v.push((k.clone(), s.clone())),
            Value::Object(inner) if k == "user_metadata" => {
                for (ik, iv) in inner {
                    if let Some(s) = iv.as_str() {
                        v.push((format!("user_metadata.{ik}"), s.to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    v
}

/// Why a user's new password could not be checked (not the policy's verdict).
#[derive(Debug)]
pub(crate) enum UserCheckError {
    Store(crate::store::StoreError),
    /// The hashing thread failed.
    Internal(String),
}

/// A user's new password against their connection's `policy`, the verdict
/// [`check`]'s: the personal-data rule reads the user's email and profile,
/// the history rule their current hash and the last `history.size` ones.
/// Those comparisons are Argon2 work, so the check runs off the async
/// workers. Changing a password (My Account) and resetting it both ask here.
pub(crate) async fn check_for_user(
    state: &crate::context::Core,
    tenant_id: &str,
    policy: &PasswordPolicy,
    user: &crate::store::UserRow,
    new_password: &str,
) -> Result<Result<String, Vec<Violation>>, UserCheckError> {
    let mut history: Vec<String> = Vec::new();
    if policy.history.active {
        history.extend(user.password_hash.clone());
        history.extend(
            state
                .store
                .password_history(tenant_id, &user.user_id, i64::from(policy.history.size))
                .await
                .map_err(UserCheckError::Store)?,
        );
    }
    let mut values = vec![("email".to_string(), user.email.clone())];
    if let Some(profile) = user.profile.as_object() {
        values.extend(profile_values(profile));
    }
    let (policy, new_password, hasher) =
        (policy.clone(), new_password.to_string(), state.passwords);
    tokio::task::spawn_blocking(move || {
        let candidate = Candidate {
            password: &new_password,
            profile: Profile {
                values: values
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            },
            history: &history,
        };
        let verify = |p: &str, h: &str| hasher.verify(p, h);
        check(&policy, &candidate, &verify)
    })
    .await
    .map_err(|e| UserCheckError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::tenant::{PasswordDictionary, PasswordHistory, PasswordProfileData};

    const ALL_TYPES: [CharacterType; 4] = [
        CharacterType::Lowercase,
        CharacterType::Uppercase,
        CharacterType::Number,
        CharacterType::Special,
    ];

    /// The example tenant's policy.
    fn example_policy() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 8,
            character_types: ALL_TYPES.to_vec(),
            character_type_rule: CharacterTypeRule::ThreeOfFour,
            identical_characters: AllowOrBlock::Block,
            sequential_characters: AllowOrBlock::Block,
            max_length_exceeded: MaxLengthExceeded::Error,
            history: PasswordHistory {
                active: true,
                size: 5,
            },
            dictionary: PasswordDictionary {
                active: true,
                default: DictionaryName::En10k,
                entries: Vec::new(),
            },
            profile_data: PasswordProfileData {
                active: true,
                blocked_fields: vec!["name".to_string(), "email".to_string()],
            },
        }
    }

    /// Minimum length 1 and nothing else, so one rule at a time can be added.
    fn lax_policy() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 1,
            ..PasswordPolicy::default()
        }
    }

    const ALICE: [(&str, &str); 2] = [("name", "Alice Example"), ("email", "alice@example.com")];

    /// A stand-in for a password hash: the password with a prefix.
    fn fake_hash(password: &str) -> String {
        format!("hash:{password}")
    }

    fn fake_verify(password: &str, hash: &str) -> bool {
        hash.strip_prefix("hash:") == Some(password)
    }

    fn no_verify(_: &str, _: &str) -> bool {
        panic!("verify must not be called")
    }

    fn run_with(
        policy: &PasswordPolicy,
        password: &str,
        profile: &[(&str, &str)],
        history: &[String],
    ) -> Result<String, Vec<Violation>> {
        let candidate = Candidate {
            password,
            profile: Profile {
                values: profile.to_vec(),
            },
            history,
        };
        check(policy, &candidate, &fake_verify)
    }

    fn run(policy: &PasswordPolicy, password: &str) -> Result<String, Vec<Violation>> {
        run_with(policy, password, &[], &[])
    }

    fn violations(policy: &PasswordPolicy, password: &str) -> Vec<Violation> {
        run(policy, password).err().unwrap_or_default()
    }

    fn example_history() -> Vec<String> {
        ["0ld-Secret!", "Winter-Is-Here7", "Correct=Horse8"]
            .iter()
            .map(|p| fake_hash(p))
            .collect()
    }

    fn example(password: &str) -> Result<String, Vec<Violation>> {
        run_with(&example_policy(), password, &ALICE, &example_history())
    }

    fn lines(list: &str) -> Vec<&str> {
        list.lines().collect()
    }

    // ---- The example policy ----

    #[test]
    fn example_policy_accepts_a_strong_password() {
        assert_eq!(
            example("Tr0ub4dor&3-horse"),
            Ok("Tr0ub4dor&3-horse".to_string())
        );
    }

    #[test]
    fn example_policy_refuses_password1() {
        assert!(lines(EN_10K).contains(&"password1"));
        assert_eq!(
            example("password1"),
            Err(vec![
                Violation::CharacterTypes {
                    required: ALL_TYPES.to_vec(),
                    rule: CharacterTypeRule::ThreeOfFour,
                },
                Violation::InDictionary,
            ])
        );
    }

    #[test]
    fn example_policy_refuses_a_common_password_that_meets_the_complexity_rules() {
        assert!(lines(EN_10K).contains(&"passw0rd"));
        assert_eq!(example("Passw0rd"), Err(vec![Violation::InDictionary]));
    }

    #[test]
    fn example_policy_refuses_identical_characters() {
        assert_eq!(
            example("aaa-Bbb-1!"),
            Err(vec![Violation::IdenticalCharacters])
        );
    }

    #[test]
    fn example_policy_refuses_sequential_characters() {
        assert_eq!(
            example("abc-XYZ-19!"),
            Err(vec![Violation::SequentialCharacters])
        );
    }

    #[test]
    fn example_policy_refuses_profile_data() {
        // "alice" is a word of the name and the local part of the email.
        assert_eq!(
            example("Alice-2026!x"),
            Err(vec![
                Violation::ContainsProfileData {
                    field: "name".to_string()
                },
                Violation::ContainsProfileData {
                    field: "email".to_string()
                },
            ])
        );
    }

    #[test]
    fn example_policy_refuses_a_recent_password() {
        assert_eq!(
            example("Winter-Is-Here7"),
            Err(vec![Violation::InHistory { size: 5 }])
        );
    }

    #[test]
    fn several_violations_are_reported_together_in_a_fixed_order() {
        let mut policy = example_policy();
        policy.dictionary.entries = vec!["aaa\u{1}".to_string()];
        assert_eq!(
            run_with(
                &policy,
                "aaa\u{1}",
                &[("name", "AAA Corp")],
                &[fake_hash("aaa\u{1}")]
            ),
            Err(vec![
                Violation::ControlCharacters,
                Violation::TooShort { min_length: 8 },
                Violation::CharacterTypes {
                    required: ALL_TYPES.to_vec(),
                    rule: CharacterTypeRule::ThreeOfFour,
                },
                Violation::IdenticalCharacters,
                Violation::InDictionary,
                Violation::ContainsProfileData {
                    field: "name".to_string()
                },
                Violation::InHistory { size: 5 },
            ])
        );
        assert_eq!(
            violations(&example_policy(), "abcc1"),
            vec![
                Violation::TooShort { min_length: 8 },
                Violation::CharacterTypes {
                    required: ALL_TYPES.to_vec(),
                    rule: CharacterTypeRule::ThreeOfFour,
                },
                Violation::SequentialCharacters,
            ]
        );
    }

    // ---- Length ----

    #[test]
    fn too_short_counts_characters_not_bytes() {
        let policy = PasswordPolicy::default();
        assert_eq!(policy.min_length, 8);
        assert_eq!(
            violations(&policy, "short"),
            vec![Violation::TooShort { min_length: 8 }]
        );
        assert_eq!(
            violations(&policy, "ééééééé"), // 7 characters, 14 bytes
            vec![Violation::TooShort { min_length: 8 }]
        );
        assert_eq!(run(&policy, "éééééééé"), Ok("éééééééé".to_string()));
        assert_eq!(run(&policy, "12345678"), Ok("12345678".to_string()));
        assert_eq!(
            violations(&policy, ""),
            vec![Violation::TooShort { min_length: 8 }]
        );
    }

    #[test]
    fn too_long_when_the_policy_says_error() {
        let policy = PasswordPolicy {
            max_length_exceeded: MaxLengthExceeded::Error,
            ..PasswordPolicy::default()
        };
        let at_limit = "x".repeat(MAX_PASSWORD_BYTES);
        assert_eq!(run(&policy, &at_limit), Ok(at_limit.clone()));
        assert_eq!(
            violations(&policy, &format!("{at_limit}y")),
            vec![Violation::TooLong { max_bytes: 72 }]
        );
        // The limit is in bytes: 37 two-byte characters are 74 bytes.
        assert_eq!(
            violations(&policy, &"é".repeat(37)),
            vec![Violation::TooLong { max_bytes: 72 }]
        );
        assert_eq!(run(&policy, &"é".repeat(36)), Ok("é".repeat(36)));
    }

    #[test]
    fn max_is_72_bytes() {
        assert_eq!(MAX_PASSWORD_BYTES, 72);
    }

    #[test]
    fn truncation_stops_at_a_character_boundary() {
        let policy = PasswordPolicy::default();
        assert_eq!(policy.max_length_exceeded, MaxLengthExceeded::Truncate);

        let ascii = "y".repeat(100);
        assert_eq!(run(&policy, &ascii), Ok("y".repeat(72)));

        // 1 + 36 × 2 = 73 bytes: byte 72 falls inside the last "é".
        let two_byte = format!("a{}", "é".repeat(36));
        let stored = run(&policy, &two_byte).unwrap();
        assert_eq!(stored, format!("a{}", "é".repeat(35)));
        assert_eq!(stored.len(), 71);

        // 70 + 4 = 74 bytes: the emoji is dropped whole.
        let four_byte = format!("{}😀z", "b".repeat(70));
        assert_eq!(run(&policy, &four_byte), Ok("b".repeat(70)));

        // 69 + 3 = 72 bytes: kept as is.
        let exact = format!("{}€", "c".repeat(69));
        assert_eq!(run(&policy, &exact), Ok(exact.clone()));
    }

    #[test]
    fn rules_apply_to_the_truncated_password() {
        let policy = PasswordPolicy {
            character_types: vec![CharacterType::Number],
            ..PasswordPolicy::default()
        };
        // The only digit is cut off, so the stored password has none.
        let password = format!("{}1", "q".repeat(72));
        assert_eq!(
            violations(&policy, &password),
            vec![Violation::CharacterTypes {
                required: vec![CharacterType::Number],
                rule: CharacterTypeRule::All,
            }]
        );
        // History compares the stored (truncated) password.
        let policy = PasswordPolicy {
            history: PasswordHistory {
                active: true,
                size: 1,
            },
            ..PasswordPolicy::default()
        };
        let stored = "w".repeat(72);
        assert_eq!(
            run_with(&policy, &"w".repeat(80), &[], &[fake_hash(&stored)]),
            Err(vec![Violation::InHistory { size: 1 }])
        );
    }

    // ---- Control characters ----

    #[test]
    fn control_characters_are_always_refused() {
        let policy = lax_policy();
        for c in [
            '\u{0}', '\t', '\n', '\r', '\u{1b}', '\u{1f}', '\u{7f}', '\u{85}', '\u{9f}',
        ] {
            assert_eq!(
                violations(&policy, &format!("pass{c}word")),
                vec![Violation::ControlCharacters],
                "{:?}",
                c
            );
        }
        // Non-breaking space, soft hyphen and ordinary space are not control
        // characters.
        for c in ['\u{a0}', '\u{ad}', ' ', '\u{2028}'] {
            assert!(run(&policy, &format!("pass{c}word")).is_ok(), "{c:?}");
        }
        // Even past the truncation point.
        let late = format!("{}\u{7}", "v".repeat(80));
        assert_eq!(
            violations(&policy, &late),
            vec![Violation::ControlCharacters]
        );
    }

    // ---- Character types ----

    #[test]
    fn all_listed_character_types_are_required() {
        let policy = PasswordPolicy {
            character_types: vec![CharacterType::Lowercase, CharacterType::Number],
            ..lax_policy()
        };
        assert_eq!(
            violations(&policy, "onlyletters"),
            vec![Violation::CharacterTypes {
                required: vec![CharacterType::Lowercase, CharacterType::Number],
                rule: CharacterTypeRule::All,
            }]
        );
        assert_eq!(
            violations(&policy, "ONLYUPPER7"),
            vec![Violation::CharacterTypes {
                required: vec![CharacterType::Lowercase, CharacterType::Number],
                rule: CharacterTypeRule::All,
            }]
        );
        assert!(run(&policy, "letters7").is_ok());
        // With no types listed, anything goes.
        assert!(run(&lax_policy(), "%%").is_ok());
    }

    #[test]
    fn three_of_four_character_types() {
        let policy = PasswordPolicy {
            character_types: ALL_TYPES.to_vec(),
            character_type_rule: CharacterTypeRule::ThreeOfFour,
            ..lax_policy()
        };
        let refused = vec![Violation::CharacterTypes {
            required: ALL_TYPES.to_vec(),
            rule: CharacterTypeRule::ThreeOfFour,
        }];
        assert_eq!(violations(&policy, "lowerUPPER"), refused);
        assert_eq!(violations(&policy, "UPPER 2468"), vec![]);
        assert_eq!(violations(&policy, "lower2468"), refused);
        assert_eq!(violations(&policy, "!!@@##"), refused);
        assert!(run(&policy, "lowerUPPER7").is_ok());
        assert!(run(&policy, "lower-UPPER").is_ok());
        assert!(run(&policy, "lower 2468 X").is_ok());
    }

    #[test]
    fn character_types_follow_unicode() {
        assert_eq!(character_type('a'), Some(CharacterType::Lowercase));
        assert_eq!(character_type('é'), Some(CharacterType::Lowercase));
        assert_eq!(character_type('ß'), Some(CharacterType::Lowercase));
        assert_eq!(character_type('ж'), Some(CharacterType::Lowercase));
        assert_eq!(character_type('Z'), Some(CharacterType::Uppercase));
        assert_eq!(character_type('É'), Some(CharacterType::Uppercase));
        assert_eq!(character_type('Ж'), Some(CharacterType::Uppercase));
        assert_eq!(character_type('0'), Some(CharacterType::Number));
        assert_eq!(character_type('٣'), Some(CharacterType::Number)); // Arabic-Indic 3
        assert_eq!(character_type('९'), Some(CharacterType::Number)); // Devanagari 9
        assert_eq!(character_type('７'), Some(CharacterType::Number)); // fullwidth 7
        assert_eq!(character_type('𝟘'), Some(CharacterType::Number)); // mathematical 0
        assert_eq!(character_type(' '), Some(CharacterType::Special));
        assert_eq!(character_type('!'), Some(CharacterType::Special));
        assert_eq!(character_type('€'), Some(CharacterType::Special));
        assert_eq!(character_type('²'), Some(CharacterType::Special)); // not a decimal digit
        assert_eq!(character_type('½'), Some(CharacterType::Special));
        assert_eq!(character_type('😀'), Some(CharacterType::Special));
        assert_eq!(character_type('\u{a0}'), Some(CharacterType::Special));
        assert_eq!(character_type('中'), None); // a letter without case
        assert_eq!(character_type('\u{7f}'), None);
    }

    #[test]
    fn decimal_digit_table_is_sound() {
        assert!(DECIMAL_ZEROS.windows(2).all(|w| w[0] + 10 <= w[1]));
        for zero in DECIMAL_ZEROS {
            for value in 0..10 {
                let c = char::from_u32(zero + value).unwrap();
                assert!(c.is_numeric() && !c.is_alphabetic(), "{c:?}");
                assert_eq!(decimal_digit(c), Some((zero, value)));
            }
        }
        for c in '0'..='9' {
            assert_eq!(decimal_digit(c), Some((0x30, u32::from(c) - 0x30)));
        }
        for c in ['/', ':', 'a', '\u{0}', '²', 'Ⅻ', '\u{10FFFF}'] {
            assert_eq!(decimal_digit(c), None, "{c:?}");
        }
    }

    // ---- Identical and sequential characters ----

    #[test]
    fn identical_characters_when_blocked() {
        let policy = PasswordPolicy {
            identical_characters: AllowOrBlock::Block,
            ..lax_policy()
        };
        for refused in ["aaa", "x111y", "pass!!!", "ab   cd", "ééé", "zzzz"] {
            assert_eq!(
                violations(&policy, refused),
                vec![Violation::IdenticalCharacters],
                "{refused}"
            );
        }
        for accepted in ["aab", "aAa", "abab", "11-11", "a", "aa"] {
            assert!(run(&policy, accepted).is_ok(), "{accepted}");
        }
        assert!(run(&lax_policy(), "aaa").is_ok());
    }

    #[test]
    fn sequential_characters_when_blocked() {
        let policy = PasswordPolicy {
            sequential_characters: AllowOrBlock::Block,
            ..lax_policy()
        };
        for refused in [
            "abc",
            "cba",
            "ABC",
            "aBc",
            "CbA",
            "xyz",
            "ZYX",
            "123",
            "321",
            "789",
            "-012-",
            "x9876",
            "٣٤٥",
            "４５６",
        ] {
            assert_eq!(
                violations(&policy, refused),
                vec![Violation::SequentialCharacters],
                "{refused}"
            );
        }
        for accepted in [
            "ab", "12", "ace", "13579", "abd", "aba", "121", "yza", "890", "9ab", "ab1", "z12",
            "a-b-c", "1٢3", "αβγ",
        ] {
            assert!(run(&policy, accepted).is_ok(), "{accepted}");
        }
        assert!(run(&lax_policy(), "abc123").is_ok());
    }

    // ---- History ----

    #[test]
    fn history_checks_only_the_newest_size_hashes() {
        let policy = PasswordPolicy {
            history: PasswordHistory {
                active: true,
                size: 2,
            },
            ..lax_policy()
        };
        let history: Vec<String> = ["newest", "older", "oldest"]
            .iter()
            .map(|p| fake_hash(p))
            .collect();
        for refused in ["newest", "older"] {
            assert_eq!(
                run_with(&policy, refused, &[], &history),
                Err(vec![Violation::InHistory { size: 2 }])
            );
        }
        assert!(run_with(&policy, "oldest", &[], &history).is_ok());
        assert!(run_with(&policy, "brand-new", &[], &history).is_ok());

        let calls = Cell::new(0);
        let counting = |password: &str, hash: &str| {
            calls.set(calls.get() + 1);
            fake_verify(password, hash)
        };
        let candidate = Candidate {
            password: "brand-new",
            profile: Profile { values: vec![] },
            history: &history,
        };
        assert!(check(&policy, &candidate, &counting).is_ok());
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn history_is_not_consulted_when_inactive_or_too_long() {
        let history = vec![fake_hash("same-as-before")];
        let candidate = Candidate {
            password: "same-as-before",
            profile: Profile { values: vec![] },
            history: &history,
        };
        let inactive = PasswordPolicy {
            history: PasswordHistory {
                active: false,
                size: 5,
            },
            ..lax_policy()
        };
        assert_eq!(
            check(&inactive, &candidate, &no_verify),
            Ok("same-as-before".to_string())
        );

        let too_long = "t".repeat(73);
        let candidate = Candidate {
            password: &too_long,
            profile: Profile { values: vec![] },
            history: &history,
        };
        let error = PasswordPolicy {
            max_length_exceeded: MaxLengthExceeded::Error,
            history: PasswordHistory {
                active: true,
                size: 5,
            },
            ..lax_policy()
        };
        assert_eq!(
            check(&error, &candidate, &no_verify),
            Err(vec![Violation::TooLong { max_bytes: 72 }])
        );
    }

    // ---- Dictionary ----

    fn dictionary_policy(default: DictionaryName, entries: &[&str]) -> PasswordPolicy {
        PasswordPolicy {
            dictionary: PasswordDictionary {
                active: true,
                default,
                entries: entries.iter().map(|e| e.to_string()).collect(),
            },
            ..lax_policy()
        }
    }

    #[test]
    fn dictionary_refuses_whole_passwords_case_insensitively() {
        let policy = dictionary_policy(DictionaryName::En10k, &[]);
        for refused in [
            "password", "PASSWORD", "PassWord", "dragon", "123456", "qwerty",
        ] {
            assert_eq!(
                violations(&policy, refused),
                vec![Violation::InDictionary],
                "{refused}"
            );
        }
        // Only the whole password counts: a common word with more around it
        // passes.
        for accepted in ["Dragon2026!", "my password", "xpassword", "passwordx"] {
            assert!(run(&policy, accepted).is_ok(), "{accepted}");
        }
        // Inactive: not checked.
        let inactive = PasswordPolicy {
            dictionary: PasswordDictionary {
                active: false,
                ..policy.dictionary.clone()
            },
            ..lax_policy()
        };
        assert!(run(&inactive, "password").is_ok());
    }

    #[test]
    fn the_100k_list_holds_more_than_the_10k_list() {
        let small = dictionary_policy(DictionaryName::En10k, &[]);
        let large = dictionary_policy(DictionaryName::En100k, &[]);
        assert!(!lines(EN_10K).contains(&"iloveyou!"));
        assert!(lines(EN_100K).contains(&"iloveyou!"));
        assert!(!in_dictionary(&small, "ILoveYou!"));
        assert!(in_dictionary(&large, "ILoveYou!"));
        assert!(run(&small, "ILoveYou!").is_ok());
        assert_eq!(
            violations(&large, "ILoveYou!"),
            vec![Violation::InDictionary]
        );
        // Both know the commonest.
        assert!(in_dictionary(&small, "Password1"));
        assert!(in_dictionary(&large, "Password1"));
    }

    #[test]
    fn custom_entries_are_refused_case_insensitively() {
        let policy = dictionary_policy(DictionaryName::En10k, &["Acme-Rocket-2026", " Ünïcode "]);
        assert_eq!(
            violations(&policy, "acme-rocket-2026"),
            vec![Violation::InDictionary]
        );
        assert_eq!(
            violations(&policy, "ACME-ROCKET-2026"),
            vec![Violation::InDictionary]
        );
        assert_eq!(
            violations(&policy, "üNÏCODE"),
            vec![Violation::InDictionary]
        );
        assert!(run(&policy, "acme-rocket-2027").is_ok());
        assert!(run(&policy, " Ünïcode ").is_ok()); // entries are trimmed; the password is not
        assert!(in_dictionary(&policy, "Acme-Rocket-2026"));
    }

    #[test]
    fn in_dictionary_ignores_the_active_flag() {
        let policy = PasswordPolicy::default();
        assert!(!policy.dictionary.active);
        assert!(in_dictionary(&policy, "letmein"));
        assert!(!in_dictionary(&policy, "Tr0ub4dor&3-horse"));
        assert!(!in_dictionary(&policy, ""));
    }

    #[test]
    fn sorted_lines_search() {
        let with_newline = "apple\nbanana\ncherry\n";
        let without_newline = "apple\nbanana\ncherry";
        for list in [with_newline, without_newline] {
            for word in ["apple", "banana", "cherry"] {
                assert!(sorted_lines_contain(list, word), "{word}");
            }
            for word in [
                "",
                "a",
                "appl",
                "apples",
                "b",
                "cherryx",
                "zzz",
                "banana\ncherry",
            ] {
                assert!(!sorted_lines_contain(list, word), "{word:?}");
            }
        }
        assert!(sorted_lines_contain("only", "only"));
        assert!(!sorted_lines_contain("", ""));
        assert!(!sorted_lines_contain("", "x"));
    }

    // ---- The lists ----

    fn check_list(list: &str, expected: usize) {
        assert!(list.ends_with('\n'));
        let words = lines(list);
        assert_eq!(words.len(), expected);
        for pair in words.windows(2) {
            assert!(pair[0].as_bytes() < pair[1].as_bytes(), "{pair:?}");
        }
        for word in &words {
            assert!(!word.is_empty());
            assert!(!word.contains(char::is_whitespace), "{word:?}");
            assert!(!word.contains(is_control), "{word:?}");
            assert_eq!(lowercase(word), *word, "{word:?}");
            assert!(sorted_lines_contain(list, word), "{word:?}");
        }
    }

    #[test]
    fn en_10k_is_sorted_deduplicated_lowercase() {
        check_list(EN_10K, 10_000);
    }

    #[test]
    fn en_100k_is_sorted_deduplicated_lowercase() {
        check_list(EN_100K, 115_641);
    }

    #[test]
    fn en_10k_is_part_of_en_100k() {
        let large = dictionary_policy(DictionaryName::En100k, &[]);
        assert!(EN_10K.lines().all(|word| in_dictionary(&large, word)));
    }

    // ---- Profile data ----

    fn profile_policy(fields: &[&str]) -> PasswordPolicy {
        PasswordPolicy {
            profile_data: PasswordProfileData {
                active: true,
                blocked_fields: fields.iter().map(|f| f.to_string()).collect(),
            },
            ..lax_policy()
        }
    }

    fn profile_violations(
        policy: &PasswordPolicy,
        password: &str,
        profile: &[(&str, &str)],
    ) -> Vec<Violation> {
        run_with(policy, password, profile, &[])
            .err()
            .unwrap_or_default()
    }

    fn contains(field: &str) -> Violation {
        Violation::ContainsProfileData {
            field: field.to_string(),
        }
    }

    #[test]
    fn profile_values_and_their_words_are_refused() {
        let policy = profile_policy(&["name", "email"]);
        assert_eq!(
            profile_violations(&policy, "xxALICE EXAMPLExx", &ALICE),
            vec![contains("name"), contains("email")]
        );
        assert_eq!(
            profile_violations(&policy, "my-example-pw", &ALICE),
            vec![contains("name")]
        );
        assert!(profile_violations(&policy, "Ali-Exampl", &ALICE).is_empty());
    }

    #[test]
    fn email_counts_the_address_and_local_part_not_the_domain() {
        let policy = profile_policy(&["email"]);
        let profile = [("email", "john.smith@example.com")];
        for refused in [
            "JOHN.SMITH@EXAMPLE.COM!",
            "x-john.smith-y",
            "John1234",
            "smith-2026",
        ] {
            assert_eq!(
                profile_violations(&policy, refused, &profile),
                vec![contains("email")],
                "{refused}"
            );
        }
        for accepted in ["example-2026", "dotcom-99", "jo-sm"] {
            assert!(
                profile_violations(&policy, accepted, &profile).is_empty(),
                "{accepted}"
            );
        }
    }

    #[test]
    fn short_profile_values_do_not_count() {
        let policy = profile_policy(&["user_metadata.first", "nickname"]);
        let profile = [("user_metadata.first", "Al"), ("nickname", "Bo B")];
        assert!(profile_violations(&policy, "Albatross-Bob", &profile).is_empty());
        let profile = [("user_metadata.first", "Ali"), ("nickname", "Bob")];
        assert_eq!(
            profile_violations(&policy, "Albatross-Bob", &profile),
            vec![contains("nickname")]
        );
        assert_eq!(
            profile_violations(&policy, "Alibi-Bob", &profile),
            vec![contains("user_metadata.first"), contains("nickname")]
        );
    }

    #[test]
    fn only_blocked_fields_count_and_only_when_active() {
        let policy = profile_policy(&["email"]);
        assert!(profile_violations(&policy, "Example-Alice", &[("name", "Alice")]).is_empty());
        let inactive = PasswordPolicy {
            profile_data: PasswordProfileData {
                active: false,
                blocked_fields: vec!["name".to_string()],
            },
            ..lax_policy()
        };
        assert!(profile_violations(&inactive, "Alice-2026!x", &ALICE).is_empty());
        // A field blocked twice, or with two values, is reported once.
        let policy = profile_policy(&["name", "name"]);
        assert_eq!(
            profile_violations(
                &policy,
                "alice-and-bob",
                &[("name", "Alice"), ("name", "Bobby Bob")]
            ),
            vec![contains("name")]
        );
    }

    // ---- Details ----

    #[test]
    fn details_are_sentences_that_never_echo_the_password() {
        let password = "Secret-Value-1";
        let all = [
            Violation::TooShort { min_length: 12 },
            Violation::TooLong { max_bytes: 72 },
            Violation::ControlCharacters,
            Violation::CharacterTypes {
                required: ALL_TYPES.to_vec(),
                rule: CharacterTypeRule::ThreeOfFour,
            },
            Violation::CharacterTypes {
                required: vec![CharacterType::Number],
                rule: CharacterTypeRule::All,
            },
            Violation::IdenticalCharacters,
            Violation::SequentialCharacters,
            Violation::InHistory { size: 5 },
            Violation::InHistory { size: 1 },
            Violation::InDictionary,
            contains("email"),
        ];
        for v in &all {
            let detail = v.detail();
            assert!(detail.starts_with("The password "), "{detail}");
            assert!(detail.ends_with('.'), "{detail}");
            assert!(!detail.contains(password), "{detail}");
        }
        assert_eq!(
            Violation::TooShort { min_length: 8 }.detail(),
            "The password must be at least 8 characters long."
        );
        assert_eq!(
            Violation::TooShort { min_length: 1 }.detail(),
            "The password must be at least 1 character long."
        );
        assert_eq!(
            Violation::TooLong { max_bytes: 72 }.detail(),
            "The password must not be longer than 72 bytes."
        );
        assert_eq!(
            Violation::CharacterTypes {
                required: ALL_TYPES.to_vec(),
                rule: CharacterTypeRule::ThreeOfFour,
            }
            .detail(),
            "The password must contain at least 3 of the following 4 types of characters: \
             lowercase letters, uppercase letters, numbers and special characters."
        );
        assert_eq!(
            Violation::CharacterTypes {
                required: vec![CharacterType::Uppercase, CharacterType::Number],
                rule: CharacterTypeRule::All,
            }
            .detail(),
            "The password must contain at least one uppercase letter and one number."
        );
        assert_eq!(
            Violation::InHistory { size: 5 }.detail(),
            "The password must not be the same as any of the last 5 passwords."
        );
        assert_eq!(
            contains("email").detail(),
            "The password must not contain personal data from the profile field \"email\"."
        );
    }

    // ---- policy_json ----

    #[test]
    fn policy_json_of_the_example_policy() {
        let mut policy = example_policy();
        policy.dictionary.entries = vec!["not-shown".to_string()];
        assert_eq!(
            policy_json(&policy),
            json!({
                "complexity": {
                    "min_length": 8,
                    "character_types": ["lowercase", "uppercase", "number", "special"],
                    "character_type_rule": "three_of_four",
                    "identical_characters": "block",
                    "sequential_characters": "block",
                    "max_length_exceeded": "error",
                },
                "profile_data": { "active": true, "blocked_fields": ["name", "email"] },
                "history": { "active": true, "size": 5 },
                "dictionary": { "active": true, "default": "en_10k" },
            })
        );
    }

    #[test]
    fn policy_json_of_the_default_policy_has_every_field() {
        assert_eq!(
            policy_json(&PasswordPolicy::default()),
            json!({
                "complexity": {
                    "min_length": 8,
                    "character_types": [],
                    "character_type_rule": "all",
                    "identical_characters": "allow",
                    "sequential_characters": "allow",
                    "max_length_exceeded": "truncate",
                },
                "profile_data": { "active": false, "blocked_fields": [] },
                "history": { "active": false, "size": 5 },
                "dictionary": { "active": false, "default": "en_10k" },
            })
        );
        let large = dictionary_policy(DictionaryName::En100k, &[]);
        assert_eq!(policy_json(&large)["dictionary"]["default"], "en_100k");
    }
}
