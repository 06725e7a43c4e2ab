//! The device's request bodies (`docs/push-notifications.md`), read
//! strictly: the enrollment's and the update's fields, each with its
//! length, and the device key (an RSA public JWK for RS256, 2048 to 4096
//! bits, normalised without leading zero bytes).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::crypto::jose::{Alg, PublicKey};
use crate::services::factors::push::PushService;

/// The longest `identifier` and `name`, characters.
pub const MAX_NAME: usize = 256;
/// The longest push token, characters.
pub const MAX_PUSH_TOKEN: usize = 4096;
/// RSA moduli a device key may have, bits.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;
/// The longest base64url member of a JWK read, characters.
const MAX_MEMBER: usize = 1024;

/// A refused body: why, for the device's `invalid_body`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadBody(pub String);

fn bad(m: impl Into<String>) -> BadBody {
    BadBody(m.into())
}

/// Push credentials as the device sent them (the token in the clear).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushCredentials {
    pub service: PushService,
    pub token: String,
}

/// `POST /api/enroll`'s body.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollBody {
    pub identifier: String,
    pub name: String,
    pub push_credentials: Option<PushCredentials>,
    /// Normalised.
    pub public_key: Map<String, Value>,
}

/// `PATCH /api/device-accounts/{id}`'s body: what is absent or null stays.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateBody {
    pub identifier: Option<String>,
    pub name: Option<String>,
    pub push_credentials: Option<PushCredentials>,
}

fn object(body: &Value) -> Result<&Map<String, Value>, BadBody> {
    body.as_object()
        .ok_or_else(|| bad("The body must be a JSON object."))
}

/// A string member of 1 to `max` characters; None when absent or null.
fn text(o: &Map<String, Value>, name: &str, max: usize) -> Result<Option<String>, BadBody> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err(bad(format!("{name} is empty."))),
        Some(Value::String(s)) if s.chars().count() > max => {
            Err(bad(format!("{name} is longer than {max} characters.")))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("{name} must be a string."))),
    }
}

fn push_credentials(o: &Map<String, Value>) -> Result<Option<PushCredentials>, BadBody> {
    let c = match o.get("push_credentials") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(c)) => c,
        Some(_) => return Err(bad("push_credentials must be an object.")),
    };
    let service = match c.get("service") {
        Some(Value::String(s)) => PushService::parse(s)
            .ok_or_else(|| bad("push_credentials.service must be APNS, GCM or FCM."))?,
        _ => return Err(bad("push_credentials.service must be APNS, GCM or FCM.")),
    };
    let token = text(c, "token", MAX_PUSH_TOKEN)
        .map_err(|BadBody(m)| bad(format!("push_credentials.{m}")))?
        .ok_or_else(|| bad("push_credentials.token is missing."))?;
    Ok(Some(PushCredentials { service, token }))
}

/// Decodes a base64url JWK member, its leading zero bytes dropped.
fn unsigned(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, BadBody> {
    let s = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("public_key.{name} is missing or not a string.")))?;
    if s.len() > MAX_MEMBER {
        return Err(bad(format!("public_key.{name} is too long.")));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| bad(format!("public_key.{name} is not base64url.")))?;
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    Ok(bytes[zeros..].to_vec())
}

fn bits(n: &[u8]) -> usize {
    n.first().map_or(0, |top| {
        (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
    })
}

/// Reads the device key: `kty` RSA, `alg` RS256 and `use` sig where given,
/// no private members, a 2048- to 4096-bit modulus, and an odd public
/// exponent of at least 3 that fits 32 bits. Returns the JWK latchkey
/// keeps: `{kty, alg, use, n, e}`, `n` and `e` without leading zeros.
pub fn public_key(v: &Value) -> Result<Map<String, Value>, BadBody> {
    let jwk = v
        .as_object()
        .ok_or_else(|| bad("public_key must be a JSON Web Key object."))?;
    if jwk.get("kty").and_then(Value::as_str) != Some("RSA") {
        return Err(bad("public_key.kty must be RSA."));
    }
    if jwk.get("alg").is_some_and(|a| a != "RS256") {
        return Err(bad("public_key.alg must be RS256."));
    }
    if jwk.get("use").is_some_and(|u| u != "sig") {
        return Err(bad("public_key.use must be sig."));
    }
    if ["d", "p", "q", "dp", "dq", "qi", "oth"]
        .iter()
        .any(|m| jwk.contains_key(*m))
    {
        return Err(bad("public_key must be a public key."));
    }
    let n = unsigned(jwk, "n")?;
    let e = unsigned(jwk, "e")?;
    if !RSA_BITS.contains(&bits(&n)) {
        return Err(bad("public_key must be an RSA key of 2048 to 4096 bits."));
    }
    let e_value = if e.len() <= 4 {
        e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    } else {
        0
    };
    if e_value < 3 || e_value % 2 == 0 {
        return Err(bad(
            "public_key.e must be an odd exponent of at least 3 (65537).",
        ));
    }
    let normalised = json!({
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(&n),
        "e": URL_SAFE_NO_PAD.encode(&e),
    });
    let Value::Object(normalised) = normalised else {
        return Err(bad("public_key is unusable."));
    };
    PublicKey::from_jwk(&normalised, &[Alg::Rs256])
        .map_err(|m| bad(format!("public_key is unusable: {m}.")))?;
    Ok(normalised)
}

/// Reads an enrollment's body.
pub fn enroll(body: &Value) -> Result<EnrollBody, BadBody> {
    let o = object(body)?;
    let identifier =
        text(o, "identifier", MAX_NAME)?.ok_or_else(|| bad("identifier is missing."))?;
    let name = text(o, "name", MAX_NAME)?.ok_or_else(|| bad("name is missing."))?;
    let public_key = public_key(
        o.get("public_key")
            .ok_or_else(|| bad("public_key is missing."))?,
    )?;
    Ok(EnrollBody {
        identifier,
        name,
        push_credentials: push_credentials(o)?,
        public_key,
    })
}

/// Reads an update's body.
pub fn update(body: &Value) -> Result<UpdateBody, BadBody> {
    let o = object(body)?;
    Ok(UpdateBody {
        identifier: text(o, "identifier", MAX_NAME)?,
        name: text(o, "name", MAX_NAME)?,
        push_credentials: push_credentials(o)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(bits: usize) -> Vec<u8> {
        let mut n = vec![0xC5u8; bits / 8];
        n[bits / 8 - 1] |= 1;
        n
    }

    fn jwk(n: &[u8], e: &[u8]) -> Value {
        json!({ "kty": "RSA", "alg": "RS256", "use": "sig",
                "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e) })
    }

    #[test]
    fn key_sizes_and_exponents() {
        let e = [1u8, 0, 1];
        assert!(public_key(&jwk(&n(2048), &e)).is_ok());
        assert!(public_key(&jwk(&n(4096), &e)).is_ok());
        assert!(public_key(&jwk(&n(1024), &e)).is_err());
        assert!(public_key(&jwk(&n(4104), &e)).is_err());
        assert!(public_key(&jwk(&n(2048), &[2])).is_err());
        assert!(public_key(&jwk(&n(2048), &[1])).is_err());
        assert!(public_key(&jwk(&n(2048), &[3])).is_ok());
        assert!(public_key(&jwk(&n(2048), &[1, 0, 0, 0, 1])).is_err());
    }

    #[test]
    fn leading_zeros_are_dropped() {
        let plain = n(2048);
        let signed = [&[0u8][..], &plain].concat();
        let k = public_key(&jwk(&signed, &[0, 1, 0, 1])).unwrap();
        assert_eq!(k["n"], json!(URL_SAFE_NO_PAD.encode(&plain)));
        assert_eq!(k["e"], json!("AQAB"));
    }

    #[test]
    fn refusals() {
        let e = [1u8, 0, 1];
        let mut k = jwk(&n(2048), &e);
        k["alg"] = json!("none");
        assert!(public_key(&k).is_err());
        let mut k = jwk(&n(2048), &e);
        k["kty"] = json!("EC");
        assert!(public_key(&k).is_err());
        let mut k = jwk(&n(2048), &e);
        k["d"] = json!("AQAB");
        assert!(public_key(&k).is_err());
        let body =
            json!({ "identifier": "x".repeat(257), "name": "n", "public_key": jwk(&n(2048), &e) });
        assert!(enroll(&body).is_err());
        let body = json!({ "identifier": "i", "name": "n", "public_key": jwk(&n(2048), &e),
                           "push_credentials": { "service": "SMS", "token": "t" } });
        assert!(enroll(&body).is_err());
        let body = json!({ "identifier": "i", "name": "n", "public_key": jwk(&n(2048), &e),
                           "push_credentials": { "service": "FCM", "token": "t" } });
        assert_eq!(
            enroll(&body).unwrap().push_credentials.unwrap().service,
            PushService::Fcm
        );
        assert!(update(&json!([])).is_err());
        assert_eq!(update(&json!({})).unwrap(), UpdateBody::default());
    }
}
