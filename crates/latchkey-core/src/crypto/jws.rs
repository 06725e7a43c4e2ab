//! Compact JWS with RS256 only: signing with a tenant's private key and
//! verification against its published keys. RS256 is what Auth0 SDKs accept
//! for ID tokens, and accepting exactly one algorithm rules out algorithm
//! confusion (`none`, HS256-with-public-key) by construction.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::jose::{Alg, Compact, PublicKey};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwsError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm")]
    Algorithm,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("key error")]
    Key,
}

/// The longest compact JWS accepted for verification.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A public RSA key as published in a JWKS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
    pub kid: String,
    pub n: String,
    pub e: String,
}

/// A published key parsed once for verification: the RSA key and its
/// Montgomery constants are built when the key is loaded, not per token.
pub(crate) struct VerifyingKey {
    kid: String,
    key: PublicKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .finish()
    }
}

impl VerifyingKey {
    pub(crate) fn new(jwk: &Jwk) -> Result<Self, JwsError> {
        if jwk.kty != "RSA" || jwk.alg != "RS256" {
            return Err(JwsError::Key);
        }
        let Ok(Value::Object(members)) = serde_json::to_value(jwk) else {
            return Err(JwsError::Key);
        };
        let key = PublicKey::from_jwk(&members, &[Alg::Rs256]).map_err(|_| JwsError::Key)?;
        Ok(Self {
            kid: jwk.kid.clone(),
            key,
        })
    }

    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }
}

impl AsRef<VerifyingKey> for VerifyingKey {
    fn as_ref(&self) -> &VerifyingKey {
        self
    }
}

/// A private signing key with its key ID.
pub struct SigningKey {
    kid: String,
    pair: KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

impl SigningKey {
    /// A fresh RSA-2048 key; returns the key and its PKCS#8 DER for sealing.
    pub fn generate(kid: String) -> Result<(Self, Vec<u8>), JwsError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| JwsError::Key)?;
        let der = pair.as_der().map_err(|_| JwsError::Key)?.as_ref().to_vec();
        Ok((Self { kid, pair }, der))
    }

    pub(crate) fn from_pkcs8(kid: String, der: &[u8]) -> Result<Self, JwsError> {
        let pair = KeyPair::from_pkcs8(der).map_err(|_| JwsError::Key)?;
        Ok(Self { kid, pair })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_jwk(&self) -> Jwk {
        let public = self.pair.public_key();
        Jwk {
            kty: "RSA".into(),
            use_: "sig".into(),
            alg: "RS256".into(),
            kid: self.kid.clone(),
            n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        }
    }

    /// Signs `claims` as a compact JWS with `typ` as the header type.
    pub fn sign(&self, typ: &str, claims: &Value) -> Result<String, JwsError> {
        let header = serde_json::json!({ "alg": "RS256", "typ": typ, "kid": self.kid });
        let mut input = String::with_capacity(512);
        input.push_str(&b64_json(&header)?);
        input.push('.');
        input.push_str(&b64_json(claims)?);
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        let rng = crate::rng::system_random();
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &rng,
                input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| JwsError::Key)?;
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Ok(input)
    }
}

fn b64_json(v: &Value) -> Result<String, JwsError> {
    let bytes = serde_json::to_vec(v).map_err(|_| JwsError::Malformed)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Decodes a compact JWS, checks that it is RS256 and signed by one of
/// `keys`, and returns that key and the claims. Claim checks (exp, iss, aud) are the
/// caller's.
pub(crate) fn verify<'k, K: AsRef<VerifyingKey>>(
    token: &str,
    keys: &'k [K],
) -> Result<(&'k VerifyingKey, Value), JwsError> {
    let jws = Compact::parse(token, MAX_TOKEN_LEN).map_err(|_| JwsError::Malformed)?;
    if jws.alg() != Some(Alg::Rs256.as_str()) {
        return Err(JwsError::Algorithm);
    }
    let kid = jws
        .header()
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(JwsError::UnknownKey)?;
    let key = keys
        .iter()
        .map(AsRef::as_ref)
        .find(|k| k.kid == kid)
        .ok_or(JwsError::UnknownKey)?;
    jws.verify(&key.key, Alg::Rs256)
        .map_err(|_| JwsError::Signature)?;
    let claims = jws.claims().map_err(|_| JwsError::Malformed)?;
    Ok((key, Value::Object(claims)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sign_verify_and_tamper() {
        let (key, der) = SigningKey::generate("k1".into()).unwrap();
        let again = SigningKey::from_pkcs8("k1".into(), &der).unwrap();
        assert_eq!(key.public_jwk(), again.public_jwk());
        let jwk = key.public_jwk();
        assert_eq!(jwk.e, "AQAB");
        let jwk = VerifyingKey::new(&jwk).unwrap();
        let token = key.sign("JWT", &json!({"sub": "u1"})).unwrap();
        assert_eq!(
            verify(&token, std::slice::from_ref(&jwk)).unwrap().1["sub"],
            "u1"
        );

        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#);
        parts[1] = &forged;
        assert_eq!(
            verify(&parts.join("."), std::slice::from_ref(&jwk)).map(|(_, c)| c),
            Err(JwsError::Signature)
        );

        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
        let none = format!("{none_header}.{forged}.");
        assert_eq!(
            verify(&none, std::slice::from_ref(&jwk)).map(|(_, c)| c),
            Err(JwsError::Algorithm)
        );

        let (other, _) = SigningKey::generate("k2".into()).unwrap();
        let other = VerifyingKey::new(&other.public_jwk()).unwrap();
        assert_eq!(verify(&token, &[other]).unwrap_err(), JwsError::UnknownKey);

        // Another key under the same kid does not verify.
        let (impostor, _) = SigningKey::generate("k1".into()).unwrap();
        let impostor = VerifyingKey::new(&impostor.public_jwk()).unwrap();
        assert_eq!(
            verify(&token, std::slice::from_ref(&impostor)).map(|(_, c)| c),
            Err(JwsError::Signature)
        );
        assert_eq!(verify("a.b", &[jwk]).unwrap_err(), JwsError::Malformed);
    }

    #[test]
    fn verifying_keys_are_rsa_rs256_only() {
        let (key, _) = SigningKey::generate("k1".into()).unwrap();
        let good = key.public_jwk();
        assert!(VerifyingKey::new(&good).is_ok());
        let other_alg = Jwk {
            alg: "PS256".into(),
            ..good.clone()
        };
        assert_eq!(VerifyingKey::new(&other_alg).unwrap_err(), JwsError::Key);
        let bad_modulus = Jwk {
            n: "!!".into(),
            ..good
        };
        assert_eq!(VerifyingKey::new(&bad_modulus).unwrap_err(), JwsError::Key);
    }
}
