//! Password hashing: Argon2id for everything we hash; hashes imported from
//! another identity provider (bcrypt, Argon2 in PHC form, PBKDF2 in the PHC
//! form Auth0's `custom_password_hash` takes) are verified as they are,
//! until the first login that verifies one replaces it by Argon2id
//! ([`PasswordHasherConfig::needs_rehash`]).

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

    /// Verifies in constant time (inside argon2, bcrypt or aws-lc's PBKDF2).
    /// Imported hashes verify too (bcrypt `$2a$`, `$2b$`, `$2y$`; Argon2 of
    /// any variant; PBKDF2 `$pbkdf2-sha1|sha256|sha512$i=…,l=…$salt$hash`),
    /// so users migrated from Auth0 keep their passwords. A malformed stored
    /// hash, or one whose cost is beyond [`imported`]'s bounds, is simply a
    /// mismatch.
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        match imported(stored) {
            Ok(Format::Bcrypt) => bcrypt::verify(password, stored).unwrap_or(false),
            Ok(Format::Pbkdf2(digest)) => verify_pbkdf2(digest, password, stored),
            Ok(Format::Argon2(_)) => PasswordVerifier::<str>::verify_password(
                &self.argon2(),
                password.as_bytes(),
                stored,
            )
            .is_ok(),
            Err(_) => false,
        }
    }

    /// Whether a hash whose password just verified is to be replaced by
    /// this configuration's Argon2id: every hash latchkey did not make
    /// (bcrypt, PBKDF2, Argon2i or Argon2d), and Argon2id at a lower memory
    /// or time cost.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Some(phc) = Phc::parse(stored).filter(|p| p.id == "argon2id") else {
            return true;
        };
        let below = |name: &str, ours: u32| phc.param(name).is_none_or(|v| v < u64::from(ours));
        below("m", self.memory_kib) || below("t", self.iterations)
    }
}

/// A stored password hash latchkey can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Bcrypt,
    /// `argon2id`, `argon2i` or `argon2d`.
    Argon2(&'static str),
    /// PBKDF2-HMAC with this digest (`sha1`, `sha256`, `sha512`).
    Pbkdf2(&'static str),
}

impl Format {
    /// Its name, as reports say it (`bcrypt`, `argon2id`, `pbkdf2-sha256`).
    pub fn name(self) -> String {
        match self {
            Format::Bcrypt => "bcrypt".into(),
            Format::Argon2(variant) => variant.into(),
            Format::Pbkdf2(digest) => format!("pbkdf2-{digest}"),
        }
    }
}

/// The most a stored hash may cost to verify: a hash beyond them would let
/// one login take a core for seconds (or memory by the gigabyte).
const MAX_BCRYPT_COST: u32 = 14;
const MAX_ARGON2_MEMORY_KIB: u64 = 256 * 1024;
const MAX_ARGON2_TIME: u64 = 16;
const MAX_ARGON2_LANES: u64 = 16;
const MAX_PBKDF2_ITERATIONS: u64 = 10_000_000;

/// Whether `stored` is a hash latchkey verifies, and which; or why not, in
/// words that name the format (`md5-crypt ($1$) is not supported`,
/// `bcrypt cost 16 is above 14`). Every hash a store keeps passes here
/// before it is kept.
pub fn imported(stored: &str) -> Result<Format, String> {
    if let Some(rest) = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .find_map(|p| stored.strip_prefix(p))
    {
        return bcrypt_cost(rest).map(|()| Format::Bcrypt);
    }
    for (prefix, name) in [
        ("$1$", "md5-crypt ($1$)"),
        ("$2$", "bcrypt $2$"),
        ("$2x$", "bcrypt $2x$"),
        ("$5$", "sha256-crypt ($5$)"),
        ("$6$", "sha512-crypt ($6$)"),
        ("$apr1$", "apr1-md5 ($apr1$)"),
        ("$sha1$", "sha1-crypt ($sha1$)"),
        ("$y$", "yescrypt ($y$)"),
        ("$7$", "scrypt ($7$)"),
        ("$scrypt$", "scrypt"),
    ] {
        if stored.starts_with(prefix) {
            return Err(format!("{name} is not supported"));
        }
    }
    let Some(phc) = Phc::parse(stored) else {
        return Err(
            "the hash is not in a format latchkey knows (bcrypt, or a PHC string of \
                    argon2 or pbkdf2)"
                .into(),
        );
    };
    match phc.id {
        "argon2id" | "argon2i" | "argon2d" => argon2_costs(&phc),
        "pbkdf2-sha1" | "pbkdf2-sha256" | "pbkdf2-sha512" => pbkdf2_parts(&phc).map(|p| p.0),
        other => Err(format!("{other} is not supported")),
    }
}

fn bcrypt_cost(rest: &str) -> Result<(), String> {
    let (cost, body) = rest
        .split_once('$')
        .ok_or_else(|| "the bcrypt hash is malformed".to_string())?;
    let cost: u32 = match (cost.len(), cost.parse()) {
        (2, Ok(c)) => c,
        _ => return Err("the bcrypt hash is malformed".into()),
    };
    let alphabet = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
    if body.len() != 53 || !body.chars().all(alphabet) {
        return Err("the bcrypt hash is malformed".into());
    }
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(format!(
            "bcrypt cost {cost} is outside 4 to {MAX_BCRYPT_COST}"
        ));
    }
    Ok(())
}

fn argon2_costs(phc: &Phc<'_>) -> Result<Format, String> {
    let variant = match phc.id {
        "argon2id" => "argon2id",
        "argon2i" => "argon2i",
        _ => "argon2d",
    };
    let (Some(m), Some(t), Some(p)) = (phc.param("m"), phc.param("t"), phc.param("p")) else {
        return Err(format!("the {variant} hash lacks its m, t or p parameter"));
    };
    if phc.version.is_some_and(|v| v != "19" && v != "16") {
        return Err(format!(
            "{variant} version {:?} is not supported",
            phc.version
        ));
    }
    if m > MAX_ARGON2_MEMORY_KIB || t > MAX_ARGON2_TIME || p > MAX_ARGON2_LANES {
        return Err(format!(
            "the {variant} hash costs more than latchkey verifies (m={m}, t={t}, p={p}; at most \
             m={MAX_ARGON2_MEMORY_KIB}, t={MAX_ARGON2_TIME}, p={MAX_ARGON2_LANES})"
        ));
    }
    if b64(phc.salt).is_none() || b64(phc.hash).is_none_or(|h| h.len() < 16) {
        return Err(format!("the {variant} hash's salt or output is malformed"));
    }
    Ok(Format::Argon2(variant))
}

/// A PBKDF2 hash's digest, iterations, salt and derived key.
fn pbkdf2_parts(phc: &Phc<'_>) -> Result<(Format, u32, Vec<u8>, Vec<u8>), String> {
    let digest = match phc.id {
        "pbkdf2-sha1" => "sha1",
        "pbkdf2-sha256" => "sha256",
        _ => "sha512",
    };
    let name = phc.id;
    let iterations = phc
        .param("i")
        .ok_or_else(|| format!("the {name} hash lacks its iteration count (i=)"))?;
    if !(1..=MAX_PBKDF2_ITERATIONS).contains(&iterations) {
        return Err(format!(
            "{name} with {iterations} iterations is outside 1 to {MAX_PBKDF2_ITERATIONS}"
        ));
    }
    let (Some(salt), Some(key)) = (b64(phc.salt), b64(phc.hash)) else {
        return Err(format!(
            "the {name} hash's salt or key is not B64 (base64 without padding)"
        ));
    };
    if salt.is_empty() || !(16..=128).contains(&key.len()) {
        return Err(format!(
            "the {name} hash needs a salt and a key of 16 to 128 bytes"
        ));
    }
    if phc.param("l").is_some_and(|l| l != key.len() as u64) {
        return Err(format!(
            "the {name} hash's key length (l=) is not the length of its key"
        ));
    }
    let iterations = u32::try_from(iterations).map_err(|e| e.to_string())?;
    Ok((Format::Pbkdf2(digest), iterations, salt, key))
}

fn verify_pbkdf2(digest: &str, password: &str, stored: &str) -> bool {
    use aws_lc_rs::pbkdf2;
    let Some(phc) = Phc::parse(stored) else {
        return false;
    };
    let Ok((_, iterations, salt, key)) = pbkdf2_parts(&phc) else {
        return false;
    };
    let algorithm = match digest {
        "sha1" => pbkdf2::PBKDF2_HMAC_SHA1,
        "sha256" => pbkdf2::PBKDF2_HMAC_SHA256,
        _ => pbkdf2::PBKDF2_HMAC_SHA512,
    };
    let Some(iterations) = std::num::NonZeroU32::new(iterations) else {
        return false;
    };
    pbkdf2::verify(algorithm, iterations, &salt, password.as_bytes(), &key).is_ok()
}

/// B64 of the PHC string format: standard base64, padding left off (and
/// tolerated when present).
fn b64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
}

/// A PHC string: `$id[$v=version][$param=value,…]$salt$hash`.
struct Phc<'a> {
    id: &'a str,
    version: Option<&'a str>,
    params: Vec<(&'a str, &'a str)>,
    salt: &'a str,
    hash: &'a str,
}

impl<'a> Phc<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.strip_prefix('$')?.split('$');
        let id = parts.next().filter(|id| !id.is_empty())?;
        let mut rest: Vec<&str> = parts.collect();
        let version = match rest.first() {
            Some(v) if v.starts_with("v=") => Some(&rest.remove(0)[2..]),
            _ => None,
        };
        let params = match rest.first() {
            Some(p) if p.contains('=') => rest
                .remove(0)
                .split(',')
                .map(|kv| kv.split_once('='))
                .collect::<Option<Vec<_>>>()?,
            _ => Vec::new(),
        };
        let [salt, hash] = rest[..] else {
            return None;
        };
        Some(Self {
            id,
            version,
            params,
            salt,
            hash,
        })
    }

    /// A decimal parameter.
    fn param(&self, name: &str) -> Option<u64> {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse().ok())
    }
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
        assert_eq!(imported(&h), Ok(Format::Bcrypt));
        assert!(c.needs_rehash(&h));
    }

    /// RFC 7914 section 11's PBKDF2-HMAC-SHA256 vector (P="passwd",
    /// S="salt", c=1, dkLen=64), and one made by the standard library of
    /// another language for sha512, both in Auth0's PHC form.
    #[test]
    fn pbkdf2_phc_hashes_verify() {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD_NO_PAD.encode(b);
        let key = [
            0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16, 0x91, 0xc2, 0x25, 0x44,
            0xb6, 0x05, 0xf9, 0x41, 0x85, 0x21, 0x6d, 0xde, 0x04, 0x65, 0xe6, 0x8b, 0x9d, 0x57,
            0xc2, 0x0d, 0xac, 0xbc, 0x49, 0xca, 0x9c, 0xcc, 0xf1, 0x79, 0xb6, 0x45, 0x99, 0x16,
            0x64, 0xb3, 0x9d, 0x77, 0xef, 0x31, 0x7c, 0x71, 0xb8, 0x45, 0xb1, 0xe3, 0x0b, 0xd5,
            0x09, 0x11, 0x20, 0x41, 0xd3, 0xa1, 0x97, 0x83,
        ];
        let stored = format!("$pbkdf2-sha256$i=1,l=64${}${}", b64(b"salt"), b64(&key));
        let c = PasswordHasherConfig::fast_for_tests();
        assert_eq!(imported(&stored), Ok(Format::Pbkdf2("sha256")));
        assert!(c.verify("passwd", &stored));
        assert!(!c.verify("passwe", &stored));
        assert!(c.needs_rehash(&stored));
        // Padding tolerated; a wrong l= refused.
        assert!(c.verify("passwd", &format!("{stored}==")));
        let wrong_l = stored.replace("l=64", "l=32");
        assert!(imported(&wrong_l).unwrap_err().contains("key length"));
        assert!(!c.verify("passwd", &wrong_l));
        let mut out = [0u8; 64];
        aws_lc_rs::pbkdf2::derive(
            aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA512,
            std::num::NonZeroU32::new(1000).unwrap(),
            b"NaCl-salt",
            b"correct horse",
            &mut out,
        );
        let sha512 = format!(
            "$pbkdf2-sha512$i=1000,l=64${}${}",
            b64(b"NaCl-salt"),
            b64(&out)
        );
        assert!(c.verify("correct horse", &sha512));
        let too_many = sha512.replace("i=1000", "i=20000000");
        assert!(imported(&too_many).unwrap_err().contains("iterations"));
    }

    #[test]
    fn formats_refused_by_name() {
        for (stored, name) in [
            ("$1$saltsalt$abcdefghijklmnopqrstuv", "md5-crypt"),
            ("$6$rounds=5000$salt$hash", "sha512-crypt"),
            ("$md5$x$y", "md5 is not supported"),
            ("5f4dcc3b5aa765d61d8327deb882cf99", "not in a format"),
            (
                "$2b$31$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
                "cost 31",
            ),
            (
                "$argon2id$v=19$m=4194304,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                "costs more",
            ),
        ] {
            let e = imported(stored).unwrap_err();
            assert!(e.contains(name), "{stored}: {e}");
            assert!(!PasswordHasherConfig::fast_for_tests().verify("x", stored));
        }
    }

    #[test]
    fn argon2id_of_our_costs_is_kept() {
        let c = PasswordHasherConfig::fast_for_tests();
        let h = c.hash(&SystemRng, "Tr0ub4dor&3").unwrap();
        assert_eq!(imported(&h), Ok(Format::Argon2("argon2id")));
        assert!(!c.needs_rehash(&h));
        assert!(
            PasswordHasherConfig::default().needs_rehash(&h),
            "weaker than ours"
        );
        let argon2i = h.replace("$argon2id$", "$argon2i$");
        assert!(c.needs_rehash(&argon2i));
    }
}
