//! Phone numbers in E.164: `+`, a country code, at most 15 digits in all.

/// Normalises what a person typed (`+1 (555) 123-4567`, `0044 20 7946 0958`)
/// to E.164 (`+15551234567`). Numbers without a country code are refused:
/// there is no region to guess it from.
pub(crate) fn normalise(input: &str) -> Result<String, String> {
    let trimmed = input.trim();
    if trimmed.len() > 40 {
        return Err("is too long to be a phone number".into());
    }
    let mut digits = String::new();
    let mut plus = false;
    for (i, c) in trimmed.chars().enumerate() {
        match c {
            '+' if i == 0 => plus = true,
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(format!("contains {c:?}, which no phone number has")),
        }
    }
    if !plus {
        match digits.strip_prefix("00") {
            Some(rest) => digits = rest.to_string(),
            None => {
                return Err(
                    "must start with + and the country code (E.164, e.g. +15551234567)".into(),
                );
            }
        }
    }
    if digits.starts_with('0') {
        return Err("has no valid country code".into());
    }
    if !(8..=15).contains(&digits.len()) {
        return Err("must have 8 to 15 digits with the country code".into());
    }
    Ok(format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_e164() {
        assert_eq!(normalise("+1 (555) 123-4567").unwrap(), "+15551234567");
        assert_eq!(normalise("0044 20 7946 0958").unwrap(), "+442079460958");
        assert_eq!(normalise(" +33.6.12.34.56.78 ").unwrap(), "+33612345678");
        assert_eq!(normalise("+15551234567").unwrap(), "+15551234567");
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for bad in [
            "5551234567",
            "+1 555",
            "+1234567890123456",
            "+0 555 123 4567",
            "+1 555 CALL NOW",
            "1+555",
            "",
        ] {
            assert!(normalise(bad).is_err(), "{bad}");
        }
    }
}
