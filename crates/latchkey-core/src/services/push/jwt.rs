//! JWTs signed by a push device's key (`docs/push-notifications.md`): the
//! bearer of the device's own calls, and the challenge responses of a
//! login's transactions. RS256 only, verified against the key the device
//! enrolled with; `aud`, `exp` and `iat` checked here, the other claims by
//! the caller.

use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::crypto::jose::{Alg, Compact};
use crate::services::factors::push::PushDevice;

/// The longest device JWT read, bytes.
pub const MAX_JWT_LEN: usize = 8 * 1024;
/// How far in the future a JWT's `iat` may be (clock skew), seconds.
pub const MAX_SKEW: i64 = 60;
/// The longest life of a device JWT authenticating the device's own calls:
/// the SDKs give it two hours.
pub const ACCOUNT_JWT_LIFETIME: i64 = 2 * 3600 + 5 * 60;

/// Why a device JWT was refused (never shown to the device in detail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceJwtError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("the algorithm is not RS256")]
    Algorithm,
    #[error("the device's key is unusable: {0}")]
    Key(&'static str),
    #[error("bad signature")]
    Signature,
    #[error("the audience is not {0}")]
    Audience(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token lives longer than allowed")]
    TooLong,
    #[error("claim {0} is missing or not a number")]
    Claim(&'static str),
}

fn numeric(claims: &Map<String, Value>, name: &'static str) -> Result<i64, DeviceJwtError> {
    claims
        .get(name)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        .ok_or(DeviceJwtError::Claim(name))
}

/// Verifies `jwt` as signed by `device`'s key for `expected_aud` at `now`:
/// `alg` RS256 (`none` and every other algorithm refused), the signature,
/// `aud` (a string, or an array holding it), `exp` after `now`, `iat` at
/// most [`MAX_SKEW`] ahead of `now`, and `exp - iat` at most
/// `max_lifetime` seconds. Returns the claims for the caller's own checks
/// (`iss`, `sub`, and the rest).
pub fn verify_device_jwt(
    device: &PushDevice,
    jwt: &str,
    expected_aud: &str,
    now: Timestamp,
    max_lifetime: i64,
) -> Result<Map<String, Value>, DeviceJwtError> {
    let compact = Compact::parse(jwt, MAX_JWT_LEN).map_err(DeviceJwtError::Malformed)?;
    if compact.alg() != Some(Alg::Rs256.as_str()) {
        return Err(DeviceJwtError::Algorithm);
    }
    let key = device.verifying_key().map_err(DeviceJwtError::Key)?;
    compact
        .verify(&key, Alg::Rs256)
        .map_err(|_| DeviceJwtError::Signature)?;
    let claims = compact.claims().map_err(DeviceJwtError::Malformed)?;
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == expected_aud,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expected_aud)),
        _ => false,
    };
    if !aud_ok {
        return Err(DeviceJwtError::Audience(expected_aud.to_string()));
    }
    let exp = numeric(&claims, "exp")?;
    let iat = numeric(&claims, "iat")?;
    if exp <= now {
        return Err(DeviceJwtError::Expired);
    }
    if iat > now.saturating_add(MAX_SKEW) {
        return Err(DeviceJwtError::IssuedInFuture);
    }
    if exp.saturating_sub(iat) > max_lifetime {
        return Err(DeviceJwtError::TooLong);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    use super::*;

    const NOW: Timestamp = 1_800_000_000;
    const AUD: &str = "https://auth.acme.test/appliance-mfa/api/device-accounts";

    fn b64(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    fn device(key: &KeyPair) -> PushDevice {
        let p = key.public_key();
        let jwk = json!({ "kty": "RSA", "alg": "RS256", "use": "sig",
            "n": b64(p.modulus().big_endian_without_leading_zero()),
            "e": b64(p.exponent().big_endian_without_leading_zero()) });
        PushDevice {
            device_account_id: "dev_0123456789abcdef".into(),
            identifier: "phone".into(),
            device_name: "Phone".into(),
            push_service: None,
            push_token: None,
            public_key: jwk.as_object().cloned().unwrap_or_default(),
            token_digest: String::new(),
            totp_secret: String::new(),
        }
    }

    fn sign(key: &KeyPair, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut sig = vec![0; key.public_modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &crate::rng::system_random(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{input}.{}", b64(&sig))
    }

    #[test]
    fn checks_alg_signature_audience_and_times() {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let other = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let d = device(&key);
        let rs = json!({ "alg": "RS256" });
        let claims = |aud: Value, iat: i64, exp: i64| json!({ "aud": aud, "iat": iat, "exp": exp });
        let check = |jwt: &str| verify_device_jwt(&d, jwt, AUD, NOW, 300);

        assert!(check(&sign(&key, &rs, &claims(json!(AUD), NOW, NOW + 300))).is_ok());
        assert!(check(&sign(&key, &rs, &claims(json!(["x", AUD]), NOW, NOW + 30))).is_ok());
        assert!(check(&sign(&key, &rs, &claims(json!(AUD), NOW + 60, NOW + 90))).is_ok());
        let refused = [
            (
                sign(&other, &rs, &claims(json!(AUD), NOW, NOW + 30)),
                DeviceJwtError::Signature,
            ),
            (
                sign(
                    &key,
                    &json!({ "alg": "none" }),
                    &claims(json!(AUD), NOW, NOW + 30),
                ),
                DeviceJwtError::Algorithm,
            ),
            (
                sign(
                    &key,
                    &json!({ "alg": "PS256" }),
                    &claims(json!(AUD), NOW, NOW + 30),
                ),
                DeviceJwtError::Algorithm,
            ),
            (
                sign(
                    &key,
                    &rs,
                    &claims(json!("https://elsewhere/"), NOW, NOW + 30),
                ),
                DeviceJwtError::Audience(AUD.into()),
            ),
            (
                sign(&key, &rs, &claims(json!(AUD), NOW - 60, NOW)),
                DeviceJwtError::Expired,
            ),
            (
                sign(&key, &rs, &claims(json!(AUD), NOW + 61, NOW + 90)),
                DeviceJwtError::IssuedInFuture,
            ),
            (
                sign(&key, &rs, &claims(json!(AUD), NOW, NOW + 301)),
                DeviceJwtError::TooLong,
            ),
            (
                sign(&key, &rs, &json!({ "aud": AUD, "exp": NOW + 30 })),
                DeviceJwtError::Claim("iat"),
            ),
        ];
        for (jwt, why) in refused {
            assert_eq!(check(&jwt), Err(why));
        }
        let long = format!("{}.e30.{}", "a".repeat(MAX_JWT_LEN), "a");
        assert!(matches!(check(&long), Err(DeviceJwtError::Malformed(_))));
    }
}
