//! Sealing secrets at rest (signing keys, TOTP seeds, upstream tokens) with
//! AES-256-GCM under the master key. Every sealed value is bound to a context
//! string (its purpose and owner) as associated data, so a sealed value copied
//! into another row does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::rng::Rng;

const PREFIX: &str = "v1.";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the master key must be 32 bytes")]
    BadKey,
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not open with this master key")]
    WrongKey,
}

pub struct Sealer {
    key: LessSafeKey,
    /// For MACs of server-issued values (DPoP nonces): a key derived from the
    /// master key, so every node computes the same.
    mac: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(master_key: &[u8]) -> Result<Self, SealError> {
        if master_key.len() != 32 {
            return Err(SealError::BadKey);
        }
        let unbound = UnboundKey::new(&AES_256_GCM, master_key).map_err(|_| SealError::BadKey)?;
        let mut derivation = b"latchkey-mac-key\0".to_vec();
        derivation.extend_from_slice(master_key);
        let mac_key = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &derivation);
        Ok(Self {
            key: LessSafeKey::new(unbound),
            mac: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, mac_key.as_ref()),
        })
    }

    /// HMAC-SHA256 of `data` under the master key's MAC key, bound to
    /// `context`; base64url of its first 16 bytes.
    pub fn mac(&self, context: &str, data: &[u8]) -> String {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.mac);
        ctx.update(context.as_bytes());
        ctx.update(b"\0");
        ctx.update(data);
        URL_SAFE_NO_PAD.encode(&ctx.sign().as_ref()[..16])
    }

    pub fn seal(&self, rng: &dyn Rng, context: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce);
        let mut buf = plaintext.to_vec();
        // Sealing only fails for inputs larger than GCM's limit (64 GiB).
        if self
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .is_err()
        {
            buf.clear();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let body = sealed.strip_prefix(PREFIX).ok_or(SealError::Malformed)?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Malformed)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed)?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| SealError::WrongKey)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SystemRng;

    #[test]
    fn round_trip_and_context_binding() {
        let s = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = s.seal(&SystemRng, "totp:u1", b"seed");
        assert_eq!(s.open("totp:u1", &sealed).unwrap(), b"seed");
        assert_eq!(s.open("totp:u2", &sealed), Err(SealError::WrongKey));
        let other = Sealer::new(&[8u8; 32]).unwrap();
        assert_eq!(other.open("totp:u1", &sealed), Err(SealError::WrongKey));
        assert_eq!(s.open("totp:u1", "v1.AAAA"), Err(SealError::Malformed));
        assert!(!sealed.contains("seed"));
    }
}
