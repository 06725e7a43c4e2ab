//! The JWTs the push providers want, signed with keys from the environment:
//! RS256 with a service account's PKCS#8 RSA key (Google's OAuth token
//! request), ES256 with an APNs `.p8` key (PKCS#8, P-256). Keys arrive as PEM.

use aws_lc_rs::signature::{self, EcdsaKeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

/// The DER inside a PEM `PRIVATE KEY` block (PKCS#8), or why not. JSON
/// escapes (`\n` already decoded by the JSON parser) and CRLFs are fine.
pub(super) fn pkcs8_der(pem: &str) -> Result<Vec<u8>, String> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let start = pem
        .find(BEGIN)
        .ok_or("it is not a PEM \"PRIVATE KEY\" (PKCS#8) block")?
        + BEGIN.len();
    let end = pem[start..]
        .find(END)
        .ok_or("its PEM block is not closed")?
        + start;
    let body: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(body)
        .map_err(|_| "its PEM block is not base64".to_owned())
}

pub(super) fn rsa_key(pem: &str) -> Result<RsaKeyPair, String> {
    let der = pkcs8_der(pem)?;
    RsaKeyPair::from_pkcs8(&der).map_err(|e| format!("it is not an RSA key: {e}"))
}

pub(super) fn ec_key(pem: &str) -> Result<EcdsaKeyPair, String> {
    let der = pkcs8_der(pem)?;
    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
        .map_err(|e| format!("it is not a P-256 key: {e}"))
}

fn signing_input(header: &Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}", part(header), part(claims))
}

pub(super) fn sign_rs256(
    key: &RsaKeyPair,
    header: &Value,
    claims: &Value,
) -> Result<String, String> {
    let input = signing_input(header, claims);
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &signature::RSA_PKCS1_SHA256,
        &latchkey_core::rng::system_random(),
        input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| "RS256 signing failed".to_owned())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

pub(super) fn sign_es256(
    key: &EcdsaKeyPair,
    header: &Value,
    claims: &Value,
) -> Result<String, String> {
    let input = signing_input(header, claims);
    let sig = key
        .sign(&latchkey_core::rng::system_random(), input.as_bytes())
        .map_err(|_| "ES256 signing failed".to_owned())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_read_or_refused_with_a_reason() {
        let pem = "-----BEGIN PRIVATE KEY-----\r\nAAEC\nAw==\n-----END PRIVATE KEY-----\n";
        assert_eq!(pkcs8_der(pem).unwrap(), vec![0, 1, 2, 3]);
        assert!(
            pkcs8_der("-----BEGIN RSA PRIVATE KEY-----\nAA==\n")
                .unwrap_err()
                .contains("PKCS#8")
        );
        assert!(
            pkcs8_der("-----BEGIN PRIVATE KEY-----\nAA==\n")
                .unwrap_err()
                .contains("closed")
        );
        assert!(rsa_key(pem).is_err());
        assert!(ec_key(pem).is_err());
    }
}
