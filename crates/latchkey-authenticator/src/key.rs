//! The device key (RSA-2048, kept as PKCS#8 in the state file) and the JWTs the
//! device signs with it, shaped as the Guardian SDKs shape them: the device JWT
//! for its own account, the challenge response that resolves a transaction, and
//! the `MFA-DPoP` proof that fetches a transaction's details.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::error::Error;
use crate::sys;

/// How long the device JWT lives: two hours, as the SDKs make it.
pub const DEVICE_JWT_SECONDS: i64 = 2 * 60 * 60;
/// How long a challenge response lives: 30 seconds, as the SDKs make it.
pub const CHALLENGE_RESPONSE_SECONDS: i64 = 30;

pub struct DeviceKey {
    pair: KeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(…)")
    }
}

impl DeviceKey {
    pub fn generate() -> Result<Self, Error> {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| Error::new("could not make an RSA key"))?;
        let pkcs8 = pair
            .as_der()
            .map_err(|_| Error::new("could not encode the RSA key"))?
            .as_ref()
            .to_vec();
        Ok(DeviceKey { pair, pkcs8 })
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, Error> {
        let pair = KeyPair::from_pkcs8(pkcs8)
            .map_err(|_| Error::new("the state file's device key is not an RSA PKCS#8 key"))?;
        Ok(DeviceKey {
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as the JWK the device enrolls with.
    pub fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// A compact RS256 JWS of `claims` under `header`.
    pub fn sign_jwt(&self, header: &Value, claims: &Value) -> Result<String, Error> {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &sys::rng(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| Error::new("could not sign with the device key"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// The device JWT for `{base}/api/device-accounts`: `iss` the device
    /// account ID, `sub` the user ID, two hours.
    pub fn device_jwt(
        &self,
        audience: &str,
        device_account: &str,
        user_id: &str,
        now: i64,
    ) -> Result<String, Error> {
        self.sign_jwt(
            &json!({"alg": "RS256", "typ": "JWT"}),
            &json!({
                "iat": now,
                "exp": now + DEVICE_JWT_SECONDS,
                "aud": audience,
                "iss": device_account,
                "sub": user_id,
            }),
        )
    }

    /// The `MFA-DPoP` proof for `GET {url}` with the transaction token.
    pub fn dpop_proof(
        &self,
        url: &str,
        transaction_token: &str,
        jti: &str,
        now: i64,
    ) -> Result<String, Error> {
        self.sign_jwt(
            &json!({"alg": "RS256", "typ": "dpop+jwt", "jwk": self.jwk()}),
            &json!({
                "htu": url,
                "htm": "GET",
                "ath": token_hash(transaction_token),
                "jti": jti,
                "iat": now,
            }),
        )
    }
}

/// What the device answers to a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub accepted: bool,
    pub reason: Option<String>,
    /// The number the login page shows, when the login asks for it.
    pub binding_code: Option<String>,
}

/// The claims of a challenge response (`challenge_response` of `resolve-transaction`).
pub fn challenge_response_claims(
    audience: &str,
    identifier: &str,
    challenge: &str,
    answer: &Answer,
    now: i64,
) -> Value {
    let mut claims = json!({
        "iat": now,
        "exp": now + CHALLENGE_RESPONSE_SECONDS,
        "aud": audience,
        "iss": identifier,
        "sub": challenge,
        "auth0_guardian_method": "push",
        "auth0_guardian_accepted": answer.accepted,
    });
    if let Some(reason) = &answer.reason {
        claims["auth0_guardian_reason"] = json!(reason);
    }
    if let Some(code) = &answer.binding_code {
        claims["latchkey_binding_code"] = json!(code);
    }
    claims
}

/// base64url(SHA-256(token)): the `ath` of a DPoP proof.
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        token.as_bytes(),
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};

    /// Verifies a compact RS256 JWS with the JWK's `n` and `e`; returns (header, claims).
    pub(crate) fn verify(jwt: &str, jwk: &Value) -> (Value, Value) {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        RsaPublicKeyComponents { n: &n, e: &e }
            .verify(
                &RSA_PKCS1_2048_8192_SHA256,
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &signature,
            )
            .expect("the signature verifies with the JWK");
        let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        (header, claims)
    }

    #[test]
    fn the_jwk_is_an_rsa_2048_signing_key_and_survives_pkcs8() {
        let key = DeviceKey::generate().unwrap();
        let jwk = key.jwk();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["n"].as_str().unwrap())
                .unwrap()
                .len(),
            256
        );
        assert_eq!(jwk["e"], "AQAB");
        let again = DeviceKey::from_pkcs8(key.pkcs8()).unwrap();
        assert_eq!(again.jwk(), jwk);
        assert!(DeviceKey::from_pkcs8(b"not a key").is_err());
        assert_eq!(format!("{key:?}"), "DeviceKey(…)");
    }

    #[test]
    fn the_device_jwt_has_the_sdks_claims() {
        let key = DeviceKey::generate().unwrap();
        let jwt = key
            .device_jwt(
                "https://a.example/appliance-mfa/api/device-accounts",
                "dev_x",
                "auth0|u",
                1000,
            )
            .unwrap();
        let (header, claims) = verify(&jwt, &key.jwk());
        assert_eq!(header, json!({"alg": "RS256", "typ": "JWT"}));
        assert_eq!(
            claims,
            json!({"iat": 1000, "exp": 1000 + 7200, "aud": "https://a.example/appliance-mfa/api/device-accounts",
                   "iss": "dev_x", "sub": "auth0|u"})
        );
        // Another key's JWK does not verify it.
        let other = DeviceKey::generate().unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let n = URL_SAFE_NO_PAD
            .decode(other.jwk()["n"].as_str().unwrap())
            .unwrap();
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert!(
            RsaPublicKeyComponents {
                n: n.as_slice(),
                e: &[1u8, 0, 1][..]
            }
            .verify(
                &RSA_PKCS1_2048_8192_SHA256,
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &sig
            )
            .is_err()
        );
    }

    #[test]
    fn the_dpop_proof_carries_the_jwk_and_binds_the_token() {
        let key = DeviceKey::generate().unwrap();
        let proof = key
            .dpop_proof(
                "https://a.example/rich-consents/tx1",
                "txtkn-secret",
                "jti-1",
                50,
            )
            .unwrap();
        let (header, claims) = verify(&proof, &key.jwk());
        assert_eq!(
            header,
            json!({"alg": "RS256", "typ": "dpop+jwt", "jwk": key.jwk()})
        );
        assert_eq!(
            claims,
            json!({"htu": "https://a.example/rich-consents/tx1", "htm": "GET",
                   "ath": token_hash("txtkn-secret"), "jti": "jti-1", "iat": 50})
        );
        // RFC 9449's example: ath of "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU".
        assert_eq!(
            token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn the_challenge_response_says_allow_or_reject() {
        let key = DeviceKey::generate().unwrap();
        let allow = Answer {
            accepted: true,
            reason: None,
            binding_code: Some("42".into()),
        };
        let claims = challenge_response_claims("aud", "device-1", "chal", &allow, 10);
        let jwt = key
            .sign_jwt(&json!({"alg": "RS256", "typ": "JWT"}), &claims)
            .unwrap();
        let (_, claims) = verify(&jwt, &key.jwk());
        assert_eq!(
            claims,
            json!({"iat": 10, "exp": 40, "aud": "aud", "iss": "device-1", "sub": "chal",
                   "auth0_guardian_method": "push", "auth0_guardian_accepted": true,
                   "latchkey_binding_code": "42"})
        );
        let reject = Answer {
            accepted: false,
            reason: Some("not me".into()),
            binding_code: None,
        };
        let claims = challenge_response_claims("aud", "device-1", "chal", &reject, 10);
        assert_eq!(claims["auth0_guardian_accepted"], false);
        assert_eq!(claims["auth0_guardian_reason"], "not me");
        assert!(claims.get("latchkey_binding_code").is_none());
    }
}
