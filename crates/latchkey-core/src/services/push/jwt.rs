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
