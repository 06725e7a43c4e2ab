//! Password hashing: Argon2id for everything we hash, and verification of
//! imported bcrypt hashes is left to the migration path.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::rng::{Rng, RngExt};

/// Argon2id cost. Production uses OWASP's recommendation (19 MiB, t=2, p=1);
/// tests may lower it through [`PasswordHasherConfig::fast_for_tests`].
#[derive(Debug, Clone, Copy)]
pub struct PasswordHasherConfig {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Default for PasswordHasherConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
        }
    }
}

impl PasswordHasherConfig {
    pub fn fast_for_tests() -> Self {
        Self {
            memory_kib: 1024,
            iterations: 1,
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        let params = Params::new(self.memory_kib, self.iterations, 1, None)
            .unwrap_or_else(|_| Params::default());
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    pub fn hash(
        &self,
        rng: &dyn Rng,
        password: &str,
    ) -> Result<String, argon2::password_hash::Error> {
        let salt: [u8; 16] = rng.bytes();
        Ok(self
            .argon2()
            .hash_password_with_salt(password.as_bytes(), &salt)?
            .to_string())
    }

    /// Verifies in constant time (inside argon2 or bcrypt). Imported bcrypt
    /// hashes (`$2a$`, `$2b$`, `$2y$`) verify too, so users migrated from
    /// Auth0 keep their passwords; they are verified as they are, never
    /// rewritten. A malformed stored hash is simply a mismatch.
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        if is_bcrypt(stored) {
            return bcrypt::verify(password, stored).unwrap_or(false);
        }
        PasswordVerifier::<str>::verify_password(&self.argon2(), password.as_bytes(), stored)
            .is_ok()
    }
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SystemRng;

    #[test]
    fn hash_and_verify() {
        let c = PasswordHasherConfig::fast_for_tests();
        let h = c.hash(&SystemRng, "Tr0ub4dor&3").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(c.verify("Tr0ub4dor&3", &h));
        assert!(!c.verify("Tr0ub4dor&4", &h));
        assert!(!c.verify("x", "not a hash"));
    }

    #[test]
    fn imported_bcrypt_hashes_verify() {
        let c = PasswordHasherConfig::fast_for_tests();
        let h = bcrypt::hash("hunter2-horse", 4).unwrap();
        assert!(c.verify("hunter2-horse", &h));
        assert!(!c.verify("hunter3-horse", &h));
    }
}
