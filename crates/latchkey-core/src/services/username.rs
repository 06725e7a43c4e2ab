//! Usernames, the second name of a user of a database connection with
//! `requires_username`: given at sign-up beside the email, kept as chosen in
//! `profile.username`, unique in the connection without regard to case (the
//! stores keep the lowercase in `users.username_lower`), and a name a
//! password login may be given instead of the email.
//!
//! A username is 1 to 128 ASCII letters, digits or `_+-.!#$'^`~@`, the
//! characters Auth0 allows: ASCII only, so that two usernames a person
//! cannot tell apart (a Cyrillic `а` for a Latin `a`, a full-width `Ａ`) are
//! never two accounts.

/// The longest username, in characters.
pub(crate) const MAX_CHARS: usize = 128;

/// Punctuation a username may hold beside ASCII letters and digits.
const PUNCTUATION: &str = "_+-.!#$'^`~@";

/// Whether `raw` is a username as given (no trimming, no folding).
pub fn is_valid(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= MAX_CHARS
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || PUNCTUATION.contains(c))
}

/// What the rule says, for a refusal.
pub const RULE: &str = "The username must be 1 to 128 letters (a-z, A-Z), digits or _+-.!#$'^`~@";

/// The username a sign-up to a connection gives (every way of signing up:
/// `/dbconnections/signup`, the hosted page, a native passkey): required
/// and well formed where the connection has usernames (`requires_username`),
/// refused where it has none. The refusal says why.
pub(crate) fn for_signup(
    requires_username: bool,
    given: Option<&str>,
) -> Result<Option<&str>, &'static str> {
    match (requires_username, given) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err("The connection does not use usernames"),
        (true, None) => Err("Missing required property: username"),
        (true, Some(u)) if is_valid(u) => Ok(Some(u)),
        (true, Some(_)) => Err(RULE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_letters_digits_and_auth0s_punctuation() {
        for ok in ["a", "Bob_99", "x.y+z-w!#$'^`~@", &"a".repeat(MAX_CHARS)] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            " bob",
            "bob ",
            "bo b",
            "аlice", // Cyrillic а
            "ＡＬＩＣＥ",
            "bob\u{200b}",
            "bob\0",
            "a/b",
            "a\"b",
            &"a".repeat(MAX_CHARS + 1),
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }
}
