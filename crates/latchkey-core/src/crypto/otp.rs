//! RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30-second steps, the parameters every
//! authenticator app understands) and RFC 4648 base32 for its secrets.

use aws_lc_rs::hmac;

use super::hash::constant_time_eq;

pub const DIGITS: u32 = 6;
pub const PERIOD: i64 = 30;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Base32 without padding, as `otpauth://` URIs carry it.
pub fn base32(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for &b in data {
        buffer = (buffer << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Base32 (RFC 4648) as people write it: case and spaces do not matter,
/// padding may be left off. `None` for any other character, or trailing
/// bits that are not zero (a secret mistyped, not one written by an app).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes().filter(|c| *c != b' ') {
        let value = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | value as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    (buffer & ((1 << bits) - 1) == 0).then_some(out)
}

/// The code for time step `step`.
pub fn code_at(secret: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let h = tag.as_ref();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let bin = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    format!(
        "{:0width$}",
        bin % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

pub fn step_of(unix_time: i64) -> i64 {
    unix_time.div_euclid(PERIOD)
}

/// The step `code` matches within one step of `now` (clock drift), newest
/// first, never a step at or before `last_used` (a code works once).
pub fn verify(secret: &[u8], code: &str, now: i64, last_used: Option<i64>) -> Option<i64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_of(now);
    let mut matched = None;
    // Compare against every candidate so timing does not tell which matched.
    for step in [current + 1, current, current - 1] {
        if constant_time_eq(code_at(secret, step).as_bytes(), code.as_bytes())
            && last_used.is_none_or(|l| step > l)
            && matched.is_none()
        {
            matched = Some(step);
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA-1 secret "12345678901234567890" (8-digit
    // vectors, truncated here to their last 6 digits).
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, step_of(59)), "287082");
        assert_eq!(code_at(secret, step_of(1_111_111_109)), "081804");
        assert_eq!(code_at(secret, step_of(1_234_567_890)), "005924");
        assert_eq!(code_at(secret, step_of(2_000_000_000)), "279037");
    }

    #[test]
    fn base32_rfc4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"fo"), "MZXQ");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn base32_decodes_what_it_encodes() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            assert_eq!(base32_decode(&base32(data)).unwrap(), data);
        }
        assert_eq!(base32_decode("mzxw 6ytb oi======").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW6YTBO1"), None, "1 is not base32");
        assert_eq!(base32_decode("my"), Some(b"f".to_vec()));
        assert_eq!(base32_decode("MZ"), None, "trailing bits set");
    }

    #[test]
    fn window_and_replay() {
        let secret = b"0123456789abcdefghij";
        let now = 1_800_000_000;
        let code = code_at(secret, step_of(now) - 1);
        let step = verify(secret, &code, now, None).unwrap();
        assert_eq!(step, step_of(now) - 1);
        assert_eq!(verify(secret, &code, now, Some(step)), None, "used once");
        let old = code_at(secret, step_of(now) - 2);
        assert_eq!(verify(secret, &old, now, None), None, "outside the window");
        assert_eq!(verify(secret, "12345", now, None), None);
        assert_eq!(verify(secret, "abcdef", now, None), None);
    }
}
