//! Email addresses as the names of accounts. Every path that creates a user
//! or finds one by email (sign-up, login, tenant files, email enrollment)
//! takes the address through [`normalize`], so that spellings a person
//! cannot tell apart are one account.
//!
//! The normal form is the address trimmed, in Unicode NFKC (full-width
//! `ＡＬＩＣＥ` is `ALICE`), without the final dot of a fully qualified
//! domain; its case is kept for display. Two addresses are the same account
//! when their normal forms are equal without regard to case ([`key`], which
//! the stores keep in `users.email_lower`). Control characters, invisible
//! ones (zero-width spaces and joiners, soft hyphens, byte order marks) and
//! those that change the direction of text are refused outright: they have
//! no place in an address and only serve to make two look alike.

use unicode_normalization::UnicodeNormalization;

/// The longest address accepted, in characters.
pub(crate) const MAX_CHARS: usize = 320;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is not an email address")]
    Malformed,
    #[error("contains a control, invisible or text-direction character")]
    Hidden,
    #[error("is longer than {MAX_CHARS} characters")]
    TooLong,
}

/// The address in its normal form, or why it is not one.
pub fn normalize(raw: &str) -> Result<String, EmailError> {
    if raw.chars().any(is_hidden) {
        return Err(EmailError::Hidden);
    }
    let folded: String = raw.trim().nfkc().collect();
    // Compatibility forms may fold into characters refused above.
    if folded.chars().any(is_hidden) {
        return Err(EmailError::Hidden);
    }
    let email = folded.strip_suffix('.').unwrap_or(&folded);
    if email.chars().count() > MAX_CHARS {
        return Err(EmailError::TooLong);
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(EmailError::Malformed);
    };
    let well_formed = !local.is_empty()
        && !domain.is_empty()
        && !local.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(char::is_whitespace);
    if !well_formed {
        return Err(EmailError::Malformed);
    }
    Ok(email.to_string())
}

/// What addresses in normal form are compared by.
pub fn key(normal: &str) -> String {
    normal.to_lowercase()
}

/// Whether two addresses in normal form name the same account.
pub fn same(a: &str, b: &str) -> bool {
    key(a) == key(b)
}

/// Control characters, and the format characters that render as nothing or
/// reorder text (Unicode's `Cf` and the fillers and selectors that act alike).
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{034f}'
                | '\u{061c}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{17b4}'
                | '\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0000}'..='\u{e0fff}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_address_have_one_key() {
        let keys: Vec<String> = [
            "alice@example.com",
            " alice@example.com",
            "alice@example.com ",
            "alice@example.com.",
            "ALICE@Example.COM",
            "\u{ff21}\u{ff2c}\u{ff29}\u{ff23}\u{ff25}@example.com",
            "\u{3000}alice@\u{ff45}xample.com",
        ]
        .iter()
        .map(|e| key(&normalize(e).unwrap()))
        .collect();
        assert!(keys.iter().all(|k| k == "alice@example.com"), "{keys:?}");
        // Case is kept for display.
        assert_eq!(normalize(" Bob@Example.com. ").unwrap(), "Bob@Example.com");
        assert!(same("Bob@Example.com", "bob@example.COM"));
    }

    #[test]
    fn hidden_characters_and_malformed_addresses_are_refused() {
        for e in [
            "alice\u{200b}@example.com",
            "\u{feff}alice@example.com",
            "alice@example.com\u{202e}",
            "al\u{2066}ice@example.com",
            "alice\u{00ad}@example.com",
            "alice@example.com\n",
            "ali\u{0}ce@example.com",
        ] {
            assert_eq!(normalize(e), Err(EmailError::Hidden), "{e:?}");
        }
        for e in [
            "alice",
            "@example.com",
            "alice@",
            "alice@@example.com",
            "alice@example.com..",
            "alice@.example.com",
            "alice@exa..mple.com",
            "ali ce@example.com",
            "",
            " ",
        ] {
            assert_eq!(normalize(e), Err(EmailError::Malformed), "{e:?}");
        }
        let long = format!("{}@example.com", "a".repeat(MAX_CHARS));
        assert_eq!(normalize(&long), Err(EmailError::TooLong));
    }
}
