//! Randomness, injected. Secrets come from a [`Rng`]; production uses the
//! operating system's generator through aws-lc.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub trait Rng: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);
}

pub type SharedRng = Arc<dyn Rng>;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRng;

impl Rng for SystemRng {
    fn fill(&self, buf: &mut [u8]) {
        use aws_lc_rs::rand::SecureRandom;
        // The system generator only fails when the OS has no entropy source,
        // in which case no secret can be produced safely at all.
        if system_random().fill(buf).is_err() {
            std::process::abort();
        }
    }
}

/// The operating system's generator as aws-lc takes it, for the aws-lc calls
/// that want one (RSA PKCS#1 v1.5 signing, which is deterministic and draws
/// nothing from it). The one place it is constructed.
#[allow(
    clippy::disallowed_methods,
    reason = "the system generator is made here and nowhere else"
)]
pub fn system_random() -> aws_lc_rs::rand::SystemRandom {
    aws_lc_rs::rand::SystemRandom::new()
}

/// Helpers over any generator.
pub trait RngExt {
    fn bytes<const N: usize>(&self) -> [u8; N];
    /// `n` random bytes, base64url without padding.
    fn token(&self, n: usize) -> String;
    /// `len` characters from `[A-Za-z0-9]`, without modulo bias.
    fn alnum(&self, len: usize) -> String;
}

impl<R: Rng + ?Sized> RngExt for R {
    fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }

    fn token(&self, n: usize) -> String {
        let mut b = vec![0u8; n];
        self.fill(&mut b);
        URL_SAFE_NO_PAD.encode(b)
    }

    fn alnum(&self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut out = String::with_capacity(len);
        while out.len() < len {
            let mut b = [0u8; 32];
            self.fill(&mut b);
            for x in b {
                // 248 = 62 * 4: reject the tail to keep the distribution uniform.
                if x < 248 && out.len() < len {
                    out.push(ALPHABET[(x % 62) as usize] as char);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alnum_has_requested_length_and_alphabet() {
        let s = SystemRng.alnum(16);
        assert_eq!(s.len(), 16);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(SystemRng.token(32), SystemRng.token(32));
    }
}
