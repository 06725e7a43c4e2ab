//! The device's own clock and randomness. The authenticator is a client
//! process with no injected `Clock` or `Rng`: these two functions are the only
//! places it reads the system's, and everything below them takes the time and
//! the random bytes as arguments so tests can choose them.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::error::Error;

/// Seconds since the Unix epoch on this machine's clock.
#[allow(clippy::disallowed_methods)] // the device's clock: see the module comment
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The system's secure random generator.
#[allow(clippy::disallowed_methods)] // the device's randomness: see the module comment
pub fn rng() -> SystemRandom {
    SystemRandom::new()
}

/// `N` random bytes from the system's generator.
pub fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    rng()
        .fill(&mut bytes)
        .map_err(|_| Error::new("the system's random generator failed"))?;
    Ok(bytes)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The bytes of lowercase or uppercase hex, or `None` when it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00abFF"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
