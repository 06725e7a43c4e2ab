//! The tenant's WebAuthn relying party (and every RP ID its passkeys can be
//! for), what latchkey reads itself from a registration's authenticator data
//! (AAGUID, backup flags, the COSE public key) to describe a passkey the way
//! the My Account API does, the credential ID and user handle an assertion
//! names (any handle, an imported passkey's too), and credentials made
//! elsewhere turned into what webauthn-rs verifies (`imported_credential`).

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

/// Every relying party ID the tenant's passkeys can be for: its
/// `passkeys.rp_id`, or else the host name of each of its domains.
pub(crate) fn tenant_rp_ids(tenant: &Tenant) -> Vec<String> {
    match &tenant.config.tenant.passkeys.rp_id {
        Some(rp_id) => vec![rp_id.clone()],
        None => {
            let mut ids: Vec<String> = tenant
                .config
                .tenant
                .domains
                .iter()
                .map(|d| host_name(d).to_ascii_lowercase())
                .collect();
            ids.sort();
            ids.dedup();
            ids
        }
    }
}

/// A credential registered elsewhere (another identity provider's passkey
/// or WebAuthn key, imported), as latchkey keeps what webauthn-rs verifies
/// it with: the JSON of a `Passkey` (or `SecurityKey`, the same shape)
/// built from its ID, its COSE public key and counter, and the flags it was
/// registered with. Only ES256 (P-256) keys, what passkey providers make.
pub(crate) fn imported_credential(
    credential_id: &[u8],
    cose_key: &[u8],
    counter: u32,
    backup_eligible: bool,
    backed_up: bool,
) -> Result<serde_json::Value, String> {
    let (x, y) = cose::es256(cose_key)?;
    Ok(serde_json::json!({
        "cred": {
            "cred_id": b64url(credential_id),
            "cred": {
                "type_": "ES256",
                "key": { "EC_EC2": { "curve": "SECP256R1", "x": b64url(&x), "y": b64url(&y) } }
            },
            "counter": counter,
            "transports": null,
            "user_verified": true,
            "backup_eligible": backup_eligible,
            "backup_state": backed_up,
            "registration_policy": "required",
            "extensions": {
                "cred_protect": "Ignored",
                "hmac_create_secret": "NotRequested",
                "appid": "NotRequested",
                "cred_props": "Ignored"
            },
            "attestation": { "data": "None", "metadata": "None" },
            "attestation_format": "none"
        }
    }))
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

/// The credential ID and user handle an assertion names (`rawId`,
/// `response.userHandle` of its JSON), whatever the handle's length: a
/// passkey made with another identity provider carries that provider's
/// handle, not latchkey's 16 bytes. Its signature is checked afterwards,
/// against the key stored for that credential.
pub(crate) fn asserted_ids(response: &serde_json::Value) -> Option<(Vec<u8>, Vec<u8>)> {
    let decode = |pointer: &str| {
        response
            .pointer(pointer)
            .and_then(serde_json::Value::as_str)
            .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
            .filter(|b| !b.is_empty())
    };
    Some((decode("/rawId")?, decode("/response/userHandle")?))
}

/// The user handle a passkey method answers with: the one it was
/// registered with (kept in its data), or latchkey's own for its user.
pub(crate) fn handle_of(tenant_id: &str, method: &crate::store::MethodRow) -> Vec<u8> {
    method
        .data
        .get("user_handle")
        .and_then(serde_json::Value::as_str)
        .and_then(|h| URL_SAFE_NO_PAD.decode(h.trim_end_matches('=')).ok())
        .unwrap_or_else(|| user_handle(tenant_id, &method.user_id).as_bytes().to_vec())
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

/// COSE keys (RFC 9053) as authenticators write them.
mod cose {
    use super::cbor;

    /// The coordinates of an EC2 P-256 ES256 COSE key: a map with kty 2,
    /// alg -7 (when given), crv 1, x and y of 32 bytes each. Any other key
    /// is refused, naming its algorithm.
    pub(crate) fn es256(key: &[u8]) -> Result<([u8; 32], [u8; 32]), String> {
        let entries = cbor::int_map(key).ok_or("the public key is not a COSE key")?;
        let int = |label: i64| {
            entries.iter().find_map(|(k, v)| match v {
                cbor::Item::Int(n) if *k == label => Some(*n),
                _ => None,
            })
        };
        let bytes = |label: i64| {
            entries.iter().find_map(|(k, v)| match v {
                cbor::Item::Bytes(b) if *k == label => Some(b.as_slice()),
                _ => None,
            })
        };
        let alg = int(3);
        let name = match alg {
            Some(-7) | None => "ES256",
            Some(-8) => "EdDSA",
            Some(-35) => "ES384",
            Some(-36) => "ES512",
            Some(-257) => "RS256",
            Some(-37) => "PS256",
            Some(_) => "an unknown algorithm",
        };
        if int(1) != Some(2) || name != "ES256" || int(-1) != Some(1) {
            return Err(format!(
                "its key ({name}) is not supported: only ES256 keys on P-256 are"
            ));
        }
        match (
            bytes(-2).map(<[u8; 32]>::try_from),
            bytes(-3).map(<[u8; 32]>::try_from),
        ) {
            (Some(Ok(x)), Some(Ok(y))) => Ok((x, y)),
            _ => Err("its P-256 key lacks 32-byte coordinates".into()),
        }
    }
}

/// Just enough CBOR (RFC 8949) to walk an attestation object.
mod cbor {
    /// A value of a map whose keys are integers (a COSE key's).
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) enum Item {
        Int(i64),
        Bytes(Vec<u8>),
        Other,
    }

    /// A map with integer keys, its values read where they are integers or
    /// byte strings; `None` when `data` is not one item that is such a map.
    pub(crate) fn int_map(data: &[u8]) -> Option<Vec<(i64, Item)>> {
        let (major, pairs, mut at) = head(data)?;
        if major != 5 || item_len(data)? != data.len() || pairs > 32 {
            return None;
        }
        let mut out = Vec::new();
        for _ in 0..pairs {
            let key = int(data.get(at..)?)?;
            at += item_len(data.get(at..)?)?;
            let rest = data.get(at..)?;
            let value = match head(rest)? {
                (0 | 1, _, _) => Item::Int(int(rest)?),
                (2, len, h) => Item::Bytes(rest.get(h..h + usize::try_from(len).ok()?)?.to_vec()),
                _ => Item::Other,
            };
            at += item_len(rest)?;
            out.push((key, value));
        }
        Some(out)
    }

    /// An integer item (major type 0 or 1).
    fn int(data: &[u8]) -> Option<i64> {
        match head(data)? {
            (0, n, _) => i64::try_from(n).ok(),
            (1, n, _) => i64::try_from(n).ok().map(|n| -1 - n),
            _ => None,
        }
    }

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

    /// What an authenticator wrote (an ES256 COSE key, the test
    /// authenticator's), as webauthn-rs reads a passkey and a security key.
    #[test]
    fn imported_credentials_read_as_webauthn_rs_keys() {
        use webauthn_rs::prelude::{Passkey, SecurityKey};
        let cose = URL_SAFE_NO_PAD
            .decode(
                "pQECAyYgASFYIPhAXoUAzB2kR7NorzUPgMhU8YFjXbxQxLjfp2GX4kZaIlggpYOwz54ycKGRj8_i930wp-CXDVxcIGOZf5i4Y7PDHl8",
            )
            .unwrap();
        let v = imported_credential(b"credential-id-16", &cose, 7, true, false).unwrap();
        let passkey: Passkey = serde_json::from_value(v.clone()).unwrap();
        let id: &[u8] = passkey.cred_id().as_ref();
        assert_eq!(id, b"credential-id-16");
        let key: SecurityKey = serde_json::from_value(v).unwrap();
        let id: &[u8] = key.cred_id().as_ref();
        assert_eq!(id, b"credential-id-16");
        // RS256 (kty 3, alg -257) and EdDSA are named; a stray byte refused.
        let rsa = [0xa2, 0x01, 0x03, 0x03, 0x39, 0x01, 0x00];
        let e = imported_credential(b"id", &rsa, 0, false, false).unwrap_err();
        assert!(e.contains("RS256"), "{e}");
        let eddsa = [0xa3, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06];
        assert!(
            imported_credential(b"id", &eddsa, 0, false, false)
                .unwrap_err()
                .contains("EdDSA")
        );
        let mut long = cose.clone();
        long.push(0);
        assert!(
            imported_credential(b"id", &long, 0, false, false)
                .unwrap_err()
                .contains("not a COSE key")
        );
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("localhost:3917"), "localhost");
        assert_eq!(host_name("login.acme.test"), "login.acme.test");
        assert_eq!(host_name("[::1]:80"), "::1");
    }
}
