//! The tenant's WebAuthn relying party, and what latchkey reads itself from
//! a registration's authenticator data (AAGUID, backup flags, the COSE public
//! key) to describe a passkey the way the My Account API does.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use webauthn_rs::prelude::{Url, Uuid, Webauthn, WebauthnBuilder};

use crate::crypto::hash::sha256;
use crate::tenant::{Tenant, issuer_for_host};

/// A relying party for requests on one host of a tenant.
pub(crate) struct RelyingParty {
    pub webauthn: Webauthn,
    pub rp_id: String,
}

#[derive(Debug, thiserror::Error)]
#[error("passkeys are not configured correctly for this host: {0}")]
pub(crate) struct SetupError(String);

/// The host's name without its port.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

pub(crate) fn relying_party(tenant: &Tenant, host: &str) -> Result<RelyingParty, SetupError> {
    let settings = &tenant.config.tenant.passkeys;
    let rp_id = settings
        .rp_id
        .clone()
        .unwrap_or_else(|| host_name(host).to_string());
    let rp_name = settings
        .rp_name
        .clone()
        .unwrap_or_else(|| tenant.display_name().to_string());
    let origin = issuer_for_host(host);
    let origin = Url::parse(origin.trim_end_matches('/')).map_err(|e| SetupError(e.to_string()))?;
    let mut builder = WebauthnBuilder::new(&rp_id, &origin)
        .map_err(|e| SetupError(e.to_string()))?
        .rp_name(&rp_name);
    for extra in &settings.origins {
        let url = Url::parse(extra).map_err(|e| SetupError(e.to_string()))?;
        builder = builder.append_allowed_origin(&url);
    }
    let webauthn = builder.build().map_err(|e| SetupError(e.to_string()))?;
    Ok(RelyingParty { webauthn, rp_id })
}

/// The WebAuthn user handle of a user: derived from the tenant and user IDs,
/// stable, and revealing neither.
pub(crate) fn user_handle(tenant_id: &str, user_id: &str) -> Uuid {
    let digest = sha256(format!("latchkey-user-handle\0{tenant_id}\0{user_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // A version-8 (custom) UUID, RFC 9562.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// What a registration's authenticator data says about the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttestedCredential {
    pub credential_id: Vec<u8>,
    pub aaguid: Uuid,
    /// The COSE_Key, as the authenticator encoded it.
    pub public_key: Vec<u8>,
    pub backup_eligible: bool,
    pub backed_up: bool,
}

/// Reads `authData` out of a CBOR attestation object and its attested
/// credential data. The signature and the rest were verified by the relying
/// party already; this only extracts fields.
pub(crate) fn attested_credential(attestation_object: &[u8]) -> Option<AttestedCredential> {
    let auth_data = cbor::map_bytes(attestation_object, "authData")?;
    // rpIdHash (32) | flags (1) | signCount (4) | aaguid (16) | credIdLen (2) | credId | COSE key
    let flags = *auth_data.get(32)?;
    if flags & 0x40 == 0 {
        return None; // no attested credential data
    }
    let aaguid = Uuid::from_slice(auth_data.get(37..53)?).ok()?;
    let len = usize::from(u16::from_be_bytes([
        *auth_data.get(53)?,
        *auth_data.get(54)?,
    ]));
    let credential_id = auth_data.get(55..55 + len)?.to_vec();
    let key_start = 55 + len;
    let key_len = cbor::item_len(auth_data.get(key_start..)?)?;
    Some(AttestedCredential {
        credential_id,
        aaguid,
        public_key: auth_data.get(key_start..key_start + key_len)?.to_vec(),
        backup_eligible: flags & 0x08 != 0,
        backed_up: flags & 0x10 != 0,
    })
}

/// The attested credential of a registration response (the JSON of a
/// `PublicKeyCredential`), read from its `attestationObject`.
pub(crate) fn attested_in(response: &serde_json::Value) -> Option<AttestedCredential> {
    let object = response
        .pointer("/response/attestationObject")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())?;
    attested_credential(&object)
}

/// The transports a registration response lists (each at most 32 bytes;
/// none when absent).
pub(crate) fn transports_in(response: &serde_json::Value) -> Vec<String> {
    response
        .pointer("/response/transports")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(serde_json::Value::as_str)
                .filter(|t| t.len() <= 32)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Just enough CBOR (RFC 8949) to walk an attestation object.
mod cbor {
    /// (major type, argument, header length).
    fn head(data: &[u8]) -> Option<(u8, u64, usize)> {
        let first = *data.first()?;
        let major = first >> 5;
        let info = first & 0x1f;
        let (arg, len) = match info {
            0..=23 => (u64::from(info), 1),
            24 => (u64::from(*data.get(1)?), 2),
            25 => (
                u64::from(u16::from_be_bytes(data.get(1..3)?.try_into().ok()?)),
                3,
            ),
            26 => (
                u64::from(u32::from_be_bytes(data.get(1..5)?.try_into().ok()?)),
                5,
            ),
            27 => (u64::from_be_bytes(data.get(1..9)?.try_into().ok()?), 9),
            _ => return None, // indefinite lengths do not occur in WebAuthn
        };
        Some((major, arg, len))
    }

    /// The length in bytes of the first item of `data`.
    pub(crate) fn item_len(data: &[u8]) -> Option<usize> {
        item_len_at(data, 0)
    }

    fn item_len_at(data: &[u8], depth: usize) -> Option<usize> {
        if depth > 16 {
            return None;
        }
        let (major, arg, mut len) = head(data)?;
        let arg = usize::try_from(arg).ok()?;
        match major {
            0 | 1 | 7 => {}
            2 | 3 => len = len.checked_add(arg)?,
            4 | 5 => {
                let items = if major == 5 { arg.checked_mul(2)? } else { arg };
                for _ in 0..items {
                    len += item_len_at(data.get(len..)?, depth + 1)?;
                }
            }
            6 => len += item_len_at(data.get(len..)?, depth + 1)?,
            _ => return None,
        }
        (len <= data.len()).then_some(len)
    }

    /// The byte string under text key `key` of a top-level map.
    pub(crate) fn map_bytes<'a>(data: &'a [u8], key: &str) -> Option<&'a [u8]> {
        let (major, pairs, mut at) = head(data)?;
        if major != 5 {
            return None;
        }
        for _ in 0..pairs {
            let (kmaj, klen, kh) = head(data.get(at..)?)?;
            let key_end = at + kh + usize::try_from(klen).ok()?;
            let is_key = kmaj == 3 && data.get(at + kh..key_end)? == key.as_bytes();
            at = key_end;
            let value_len = item_len(data.get(at..)?)?;
            if is_key {
                let (vmaj, vlen, vh) = head(data.get(at..)?)?;
                if vmaj != 2 {
                    return None;
                }
                return data.get(at + vh..at + vh + usize::try_from(vlen).ok()?);
            }
            at += value_len;
        }
        None
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn walks_maps_and_finds_byte_strings() {
            // {"fmt": "none", "attStmt": {}, "authData": h'010203'}
            let mut obj = vec![0xa3, 0x63];
            obj.extend(b"fmt");
            obj.push(0x64);
            obj.extend(b"none");
            obj.push(0x67);
            obj.extend(b"attStmt");
            obj.push(0xa0);
            obj.push(0x68);
            obj.extend(b"authData");
            obj.extend([0x43, 1, 2, 3]);
            assert_eq!(map_bytes(&obj, "authData"), Some(&[1u8, 2, 3][..]));
            assert_eq!(map_bytes(&obj, "nope"), None);
            assert_eq!(item_len(&obj), Some(obj.len()));
            assert_eq!(item_len(&obj[..obj.len() - 1]), None, "truncated");
            assert_eq!(
                item_len(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
                None
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_handles_are_stable_and_distinct() {
        assert_eq!(user_handle("t1", "auth0|a"), user_handle("t1", "auth0|a"));
        assert_ne!(user_handle("t1", "auth0|a"), user_handle("t2", "auth0|a"));
        assert_ne!(user_handle("t1", "auth0|a"), user_handle("t1", "auth0|b"));
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("localhost:3917"), "localhost");
        assert_eq!(host_name("login.acme.test"), "login.acme.test");
        assert_eq!(host_name("[::1]:80"), "::1");
    }
}
