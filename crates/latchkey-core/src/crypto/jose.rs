//! JOSE with keys latchkey does not hold: ID tokens of upstream OpenID
//! providers verified against their published JWKS, and the pieces the
//! other JWS readers share (the compact form, public keys from JWKs).
//!
//! Four algorithms, each tied to one key type: RS256 and PS256 to RSA keys
//! of 2048 to 8192 bits, ES256 to P-256, EdDSA to Ed25519. A token's `alg`
//! must be one the caller allows, fit the type of the key its `kid` names,
//! and agree with the key's own `alg` when the JWK states one; `none`, HMAC
//! and anything else never verify. Claim checks for ID tokens (OpenID
//! Connect Core 3.1.3.7) are a separate step, [`check_id_token_claims`].

use std::str::FromStr;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::hash::constant_time_eq;
use super::jws::MAX_TOKEN_LEN;

/// The largest JWKS document read, bytes.
pub(crate) const MAX_JWKS_LEN: usize = 256 * 1024;
/// The most entries a JWKS may list.
pub(crate) const MAX_JWKS_KEYS: usize = 100;
/// A token without `kid` is tried against at most this many keys.
const MAX_KIDLESS_CANDIDATES: usize = 4;
/// RSA moduli accepted, bits (aws-lc verifies 2048 to 8192).
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;
/// Members only a private JWK has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A signature algorithm latchkey verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Ps256,
    Es256,
    EdDsa,
}

impl Alg {
    pub(crate) const ALL: [Alg; 4] = [Alg::Rs256, Alg::Ps256, Alg::Es256, Alg::EdDsa];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Ps256 => "PS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// The JWK `kty` of the keys this algorithm signs with.
    fn kty(self) -> &'static str {
        match self {
            Alg::Rs256 | Alg::Ps256 => "RSA",
            Alg::Es256 => "EC",
            Alg::EdDsa => "OKP",
        }
    }
}

impl FromStr for Alg {
    type Err = JoseError;

    /// Exact, case-sensitive names as in discovery's
    /// `id_token_signing_alg_values_supported`; anything else (`none`,
    /// `HS256`, `RS384`…) is refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Alg::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(JoseError::Algorithm(
                "an algorithm latchkey does not verify",
            ))
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JoseError {
    /// The token is not a compact JWS latchkey reads.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The token's `alg` is not allowed or does not fit the key it names.
    #[error("algorithm refused: {0}")]
    Algorithm(&'static str),
    /// No key of the set has the token's `kid` (or, for a token without
    /// one, fits its `alg`): the upstream may have rotated its keys, so the
    /// caller may refetch the JWKS once.
    #[error("no key in the JWKS has the token's kid")]
    UnknownKid,
    #[error("bad signature")]
    Signature,
    /// The JWKS document itself is unusable.
    #[error("unusable JWKS: {0}")]
    Jwks(&'static str),
}

fn b64(part: &str, what: &'static str) -> Result<Vec<u8>, &'static str> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| what)
}

/// A compact JWS split and its header and signature decoded. The payload
/// is decoded only by [`Compact::claims`], to be called once the signature
/// has been checked. Errors are short reasons for the reader's own dialect.
pub(crate) struct Compact<'t> {
    header: Map<String, Value>,
    payload: &'t str,
    signed: &'t [u8],
    signature: Vec<u8>,
}

impl<'t> Compact<'t> {
    /// Splits `token`, refusing what no reader here understands: more than
    /// `max_len` bytes, JWE (five parts), a header that is not a JSON
    /// object, `crit` extensions, and unencoded payloads (`b64: false`).
    pub(crate) fn parse(token: &'t str, max_len: usize) -> Result<Self, &'static str> {
        if token.len() > max_len {
            return Err("the token is too long");
        }
        let parts: Vec<&str> = token.splitn(6, '.').collect();
        let [h, p, s] = parts[..] else {
            return Err(if parts.len() == 5 {
                "an encrypted token (JWE) is not accepted"
            } else {
                "not a compact JWS"
            });
        };
        let header = b64(h, "the header is not base64url")?;
        let header: Map<String, Value> =
            serde_json::from_slice(&header).map_err(|_| "the header is not a JSON object")?;
        if header.contains_key("crit") {
            return Err("the header names critical extensions");
        }
        if header.get("b64").is_some_and(|v| v != &Value::Bool(true)) {
            return Err("an unencoded payload (b64) is not accepted");
        }
        Ok(Self {
            header,
            payload: p,
            signed: &token.as_bytes()[..h.len() + 1 + p.len()],
            signature: b64(s, "the signature is not base64url")?,
        })
    }

    pub(crate) fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// The header's `alg`, when it is a string.
    pub(crate) fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// Checks the signature with `key` under `alg`.
    pub(crate) fn verify(&self, key: &PublicKey, alg: Alg) -> Result<(), JoseError> {
        key.verify(alg, self.signed, &self.signature)
    }

    /// The decoded payload, which must be a JSON object. Only meaningful
    /// after the signature has been checked.
    pub(crate) fn claims(&self) -> Result<Map<String, Value>, &'static str> {
        let payload = b64(self.payload, "the payload is not base64url")?;
        serde_json::from_slice(&payload).map_err(|_| "the payload is not a JSON object")
    }
}

/// A public key read from a JWK, parsed once for each algorithm it may
/// verify: RSA for RS256 and PS256, P-256 for ES256, Ed25519 for EdDSA,
/// narrowed by the JWK's own `alg` and by what the reader allows.
pub(crate) struct PublicKey {
    verifiers: Vec<(Alg, ParsedPublicKey)>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algs: Vec<Alg> = self.verifiers.iter().map(|(a, _)| *a).collect();
        f.debug_struct("PublicKey").field("algs", &algs).finish()
    }
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, &'static str> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or("a key member is missing or not a string")
}

impl PublicKey {
    /// Reads `jwk` as a key for the algorithms of `algs` it fits. Refused:
    /// private members, a `kty` or `crv` other than the four algorithms',
    /// undecodable or wrong-sized material, points off the curve, RSA
    /// outside 2048 to 8192 bits, and a key that fits none of `algs`.
    pub(crate) fn from_jwk(jwk: &Map<String, Value>, algs: &[Alg]) -> Result<Self, &'static str> {
        if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err("the key holds private members");
        }
        let kty = member(jwk, "kty")?;
        let stated = match jwk.get("alg") {
            None => None,
            Some(Value::String(a)) => Some(
                a.parse::<Alg>()
                    .map_err(|_| "the key's alg is not one latchkey verifies")?,
            ),
            Some(_) => return Err("the key's alg is not a string"),
        };
        let wanted: Vec<Alg> = algs
            .iter()
            .copied()
            .filter(|a| a.kty() == kty && stated.is_none_or(|s| s == *a))
            .collect();
        if wanted.is_empty() {
            return Err("the key does not fit the algorithm");
        }
        let bad = |_| "the key's material is invalid";
        let verifiers = match kty {
            "RSA" => {
                let n = b64(member(jwk, "n")?, "the key's n is not base64url")?;
                let e = b64(member(jwk, "e")?, "the key's e is not base64url")?;
                let n = &n[n.iter().take_while(|b| **b == 0).count()..];
                let bits = n.first().map_or(0, |top| {
                    (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
                });
                if !RSA_BITS.contains(&bits) {
                    return Err("the RSA key is not 2048 to 8192 bits");
                }
                let key = RsaPublicKeyComponents { n, e: &e[..] };
                wanted
                    .into_iter()
                    .map(|alg| {
                        let params = if alg == Alg::Rs256 {
                            &signature::RSA_PKCS1_2048_8192_SHA256
                        } else {
                            &signature::RSA_PSS_2048_8192_SHA256
                        };
                        Ok((alg, key.to_parsed_public_key(params).map_err(bad)?))
                    })
                    .collect::<Result<_, &'static str>>()?
            }
            "EC" => {
                if member(jwk, "crv")? != "P-256" {
                    return Err("the EC key is not on P-256");
                }
                let x = b64(member(jwk, "x")?, "the key's x is not base64url")?;
                let y = b64(member(jwk, "y")?, "the key's y is not base64url")?;
                if x.len() != 32 || y.len() != 32 {
                    return Err("the P-256 key's coordinates are not 32 bytes");
                }
                let point = [&[4u8][..], &x, &y].concat();
                let key = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .map_err(bad)?;
                vec![(Alg::Es256, key)]
            }
            "OKP" => {
                if member(jwk, "crv")? != "Ed25519" {
                    return Err("the OKP key is not Ed25519");
                }
                let x = b64(member(jwk, "x")?, "the key's x is not base64url")?;
                if x.len() != 32 {
                    return Err("the Ed25519 key is not 32 bytes");
                }
                vec![(
                    Alg::EdDsa,
                    ParsedPublicKey::new(&signature::ED25519, x).map_err(bad)?,
                )]
            }
            _ => return Err("the key type is not supported"),
        };
        Ok(Self { verifiers })
    }

    fn fits(&self, alg: Alg) -> bool {
        self.verifiers.iter().any(|(a, _)| *a == alg)
    }

    /// Checks `sig` over `signed` under `alg`, which must be one this key
    /// was read for.
    pub(crate) fn verify(&self, alg: Alg, signed: &[u8], sig: &[u8]) -> Result<(), JoseError> {
        let (_, key) = self
            .verifiers
            .iter()
            .find(|(a, _)| *a == alg)
            .ok_or(JoseError::Algorithm("the algorithm does not fit the key"))?;
        key.verify_sig(signed, sig)
            .map_err(|_| JoseError::Signature)
    }
}

/// An upstream provider's signing keys, read from its JWKS.
#[derive(Debug)]
pub(crate) struct UpstreamKeys {
    keys: Vec<(Option<String>, PublicKey)>,
}

impl UpstreamKeys {
    /// Reads a JWKS document (at most [`MAX_JWKS_LEN`] bytes and
    /// [`MAX_JWKS_KEYS`] entries). Entries latchkey cannot or must not use
    /// are skipped, not fatal: encryption keys (`use` other than `sig`,
    /// `key_ops` without `verify`), other key types and curves, malformed
    /// or private members, weak RSA. Two usable keys under one `kid` that
    /// fit the same algorithm cannot be told apart, so neither is kept (one
    /// `kid` for keys of different types is allowed, RFC 7517 4.5).
    pub(crate) fn from_jwks(bytes: &[u8]) -> Result<Self, JoseError> {
        if bytes.len() > MAX_JWKS_LEN {
            return Err(JoseError::Jwks("the document is too large"));
        }
        let doc: Map<String, Value> = serde_json::from_slice(bytes)
            .map_err(|_| JoseError::Jwks("the document is not a JSON object"))?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JoseError::Jwks("the document has no keys array"));
        };
        if entries.len() > MAX_JWKS_KEYS {
            return Err(JoseError::Jwks("the document lists too many keys"));
        }
        let usable: Vec<(Option<String>, PublicKey)> = entries
            .iter()
            .filter_map(|entry| {
                let jwk = entry.as_object()?;
                if !for_verifying(jwk) {
                    return None;
                }
                let kid = match jwk.get("kid") {
                    None => None,
                    Some(Value::String(kid)) => Some(kid.clone()),
                    Some(_) => return None,
                };
                Some((kid, PublicKey::from_jwk(jwk, &Alg::ALL).ok()?))
            })
            .collect();
        let alike = |i: usize| {
            let (kid, key) = &usable[i];
            kid.is_some()
                && usable.iter().enumerate().any(|(j, (other, o))| {
                    i != j && other == kid && key.verifiers.iter().any(|(a, _)| o.fits(*a))
                })
        };
        let ambiguous: Vec<bool> = (0..usable.len()).map(alike).collect();
        let mut keys = Vec::with_capacity(usable.len());
        for (entry, ambiguous) in usable.into_iter().zip(ambiguous) {
            if ambiguous {
                tracing::warn!(
                    kid = entry.0.as_deref(),
                    "the JWKS lists keys alike under one kid; none of them is used"
                );
            } else {
                keys.push(entry);
            }
        }
        Ok(Self { keys })
    }

    /// Verifies a compact JWS signed with one of these keys under one of
    /// `allowed`, and returns its claims (a JSON object). A `kid` selects
    /// the key; without one, the few keys fitting `alg` are tried.
    pub(crate) fn verify(&self, token: &str, allowed: &[Alg]) -> Result<Value, JoseError> {
        let jws = Compact::parse(token, MAX_TOKEN_LEN).map_err(JoseError::Malformed)?;
        let alg: Alg = jws
            .alg()
            .ok_or(JoseError::Malformed("the header has no alg"))?
            .parse()?;
        if !allowed.contains(&alg) {
            return Err(JoseError::Algorithm("the algorithm is not allowed here"));
        }
        let candidates: Vec<&PublicKey> = match jws.header().get("kid") {
            Some(Value::String(kid)) => {
                let named: Vec<&PublicKey> = self
                    .keys
                    .iter()
                    .filter(|(k, _)| k.as_deref() == Some(kid.as_str()))
                    .map(|(_, key)| key)
                    .collect();
                if named.is_empty() {
                    return Err(JoseError::UnknownKid);
                }
                let fitting: Vec<&PublicKey> = named.into_iter().filter(|k| k.fits(alg)).collect();
                if fitting.is_empty() {
                    return Err(JoseError::Algorithm("the algorithm does not fit the key"));
                }
                fitting
            }
            None => {
                let fitting: Vec<&PublicKey> = self
                    .keys
                    .iter()
                    .map(|(_, key)| key)
                    .filter(|k| k.fits(alg))
                    .collect();
                if fitting.is_empty() {
                    return Err(JoseError::UnknownKid);
                }
                if fitting.len() > MAX_KIDLESS_CANDIDATES {
                    return Err(JoseError::Malformed(
                        "the token has no kid and too many keys could have signed it",
                    ));
                }
                fitting
            }
            Some(_) => return Err(JoseError::Malformed("the header's kid is not a string")),
        };
        if !candidates.iter().any(|key| jws.verify(key, alg).is_ok()) {
            return Err(JoseError::Signature);
        }
        Ok(Value::Object(jws.claims().map_err(JoseError::Malformed)?))
    }
}

/// Whether a JWKS entry is meant for verifying signatures: `use`, when
/// present, is `sig`, and `key_ops`, when present, lists `verify`.
fn for_verifying(jwk: &Map<String, Value>) -> bool {
    let use_ok = jwk.get("use").is_none_or(|u| u == "sig");
    let ops_ok = jwk.get("key_ops").is_none_or(|ops| {
        ops.as_array()
            .is_some_and(|ops| ops.iter().any(|o| o == "verify"))
    });
    use_ok && ops_ok
}

/// What an upstream's ID token must say.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdTokenExpectations<'a> {
    /// The upstream's issuer, exactly as its discovery document names it.
    pub(crate) issuer: &'a str,
    /// latchkey's client ID at the upstream.
    pub(crate) client_id: &'a str,
    /// The nonce sent with the authorization request. `None` only for an ID
    /// token from a refresh, where none was sent (OpenID Connect Core 12.2).
    pub(crate) nonce: Option<&'a str>,
    /// Seconds since the epoch.
    pub(crate) now: i64,
    /// Clock skew tolerated on `exp`, `iat` and `nbf`, seconds.
    pub(crate) leeway: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ClaimError {
    #[error("the ID token's iss is not the upstream's issuer")]
    Issuer,
    #[error("the ID token's aud does not name this client")]
    Audience,
    #[error("the ID token has several audiences and its azp is not this client")]
    AuthorizedParty,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token is not valid yet (iat or nbf in the future)")]
    NotYetValid,
    #[error("the ID token's nonce is not the one sent")]
    Nonce,
    #[error("the ID token's sub is missing, empty, too long or holds control characters")]
    Subject,
    #[error("the ID token's {0} is missing or not a number")]
    Time(&'static str),
}

/// A JSON NumericDate: seconds, possibly fractional (truncated).
fn numeric_date(claims: &Value, name: &'static str) -> Result<Option<i64>, ClaimError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or(ClaimError::Time(name)),
    }
}

/// Checks the claims of a verified upstream ID token (OpenID Connect Core
/// 3.1.3.7) and returns its `sub`. `aud` is a string or an array that
/// names the client; with several audiences `azp` must be the client, and
/// an `azp` present is always the client. `exp` and `iat` are required;
/// `exp` may be past by at most the leeway, `iat` and `nbf` ahead by at
/// most the leeway. The nonce is compared in constant time. `sub` is 1 to
/// 255 bytes without control characters.
pub(crate) fn check_id_token_claims<'c>(
    claims: &'c Value,
    expect: &IdTokenExpectations<'_>,
) -> Result<&'c str, ClaimError> {
    if claims.get("iss").and_then(Value::as_str) != Some(expect.issuer) {
        return Err(ClaimError::Issuer);
    }
    let client = Value::from(expect.client_id);
    let several = match claims.get("aud") {
        Some(aud @ Value::String(_)) if *aud == client => false,
        Some(Value::Array(auds)) if auds.iter().all(Value::is_string) && auds.contains(&client) => {
            auds.len() > 1
        }
        _ => return Err(ClaimError::Audience),
    };
    match claims.get("azp") {
        Some(azp) if *azp != client => return Err(ClaimError::AuthorizedParty),
        None if several => return Err(ClaimError::AuthorizedParty),
        _ => {}
    }
    let exp = numeric_date(claims, "exp")?.ok_or(ClaimError::Time("exp"))?;
    if exp.saturating_add(expect.leeway) <= expect.now {
        return Err(ClaimError::Expired);
    }
    let iat = numeric_date(claims, "iat")?.ok_or(ClaimError::Time("iat"))?;
    let latest = expect.now.saturating_add(expect.leeway);
    if iat > latest || numeric_date(claims, "nbf")?.is_some_and(|nbf| nbf > latest) {
        return Err(ClaimError::NotYetValid);
    }
    if let Some(sent) = expect.nonce {
        let got = claims.get("nonce").and_then(Value::as_str);
        if !got.is_some_and(|got| constant_time_eq(got.as_bytes(), sent.as_bytes())) {
            return Err(ClaimError::Nonce);
        }
    }
    claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control))
        .ok_or(ClaimError::Subject)
}

#[cfg(test)]
mod tests {
    use super::super::test_keys::Key;
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::hmac;
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
    use serde_json::json;

    fn claims() -> Value {
        json!({"iss": "https://idp.acme.test/", "sub": "u1", "aud": "latchkey"})
    }

    fn jwk(key: &Key, kid: &str) -> Value {
        let mut jwk = key.public_jwk();
        jwk["kid"] = json!(kid);
        jwk
    }

    fn parse(keys: &[Value]) -> UpstreamKeys {
        UpstreamKeys::from_jwks(&serde_json::to_vec(&json!({ "keys": keys })).unwrap()).unwrap()
    }

    /// A token signed by `key` under a header naming `alg` and `kid`.
    fn token(key: &Key, alg: &str, kid: Option<&str>) -> String {
        let mut header = json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        key.jws(&header, &claims())
    }

    fn verifies(keys: &UpstreamKeys, key: &Key, alg: &str, kid: Option<&str>) {
        assert_eq!(
            keys.verify(&token(key, alg, kid), &Alg::ALL),
            Ok(claims()),
            "{alg} {kid:?}"
        );
    }

    fn b64json(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    /// Two handles on one RSA key: one signs PKCS#1 v1.5, one PSS.
    fn rsa_pair(size: KeySize) -> (Key, Key) {
        let der = RsaKeyPair::generate(size).unwrap().as_der().unwrap();
        let der = der.as_ref();
        (
            Key::Rs256(RsaKeyPair::from_pkcs8(der).unwrap()),
            Key::Ps256(RsaKeyPair::from_pkcs8(der).unwrap()),
        )
    }

    #[test]
    fn each_key_type_verifies_its_algorithms() {
        let (rs, ps) = rsa_pair(KeySize::Rsa2048);
        let (big, _) = rsa_pair(KeySize::Rsa4096);
        let (es, ed) = (Key::es256(), Key::eddsa());
        let keys = parse(&[
            jwk(&rs, "rsa"),
            jwk(&big, "big"),
            jwk(&es, "ec"),
            jwk(&ed, "ed"),
        ]);
        assert_eq!(keys.keys.len(), 4);
        // An RSA key without `alg` verifies both RS256 and PS256.
        for (key, alg, kid) in [
            (&rs, "RS256", "rsa"),
            (&ps, "PS256", "rsa"),
            (&big, "RS256", "big"),
            (&es, "ES256", "ec"),
            (&ed, "EdDSA", "ed"),
        ] {
            verifies(&keys, key, alg, Some(kid));
        }
    }

    #[test]
    fn algorithm_confusion_is_refused() {
        let (rs, ps) = rsa_pair(KeySize::Rsa2048);
        let (es, ed) = (Key::es256(), Key::eddsa());
        let mut ps_only = jwk(&ps, "ps-only");
        ps_only["alg"] = json!("PS256");
        let keys = parse(&[jwk(&rs, "rsa"), jwk(&es, "ec"), jwk(&ed, "ed"), ps_only]);
        let algorithm = |token: &str, allowed: &[Alg]| {
            matches!(keys.verify(token, allowed), Err(JoseError::Algorithm(_)))
        };
        // An algorithm of another key type, whoever signed.
        for (key, kid, foreign) in [
            (&rs, "rsa", ["ES256", "EdDSA"]),
            (&es, "ec", ["RS256", "EdDSA"]),
            (&ed, "ed", ["ES256", "PS256"]),
        ] {
            for alg in foreign {
                assert!(
                    algorithm(&token(key, alg, Some(kid)), &Alg::ALL),
                    "{alg} {kid}"
                );
            }
        }
        // The JWK says PS256: an RS256 signature by the same key is refused.
        assert!(algorithm(&token(&rs, "RS256", Some("ps-only")), &Alg::ALL));
        verifies(&keys, &ps, "PS256", Some("ps-only"));
        // A good token under an algorithm the caller does not allow.
        assert!(algorithm(&token(&es, "ES256", Some("ec")), &[Alg::Rs256]));
        // `none`, in any spelling, with or without a signature.
        for none in ["none", "None", "NONE", ""] {
            let unsigned = format!(
                "{}.{}.",
                b64json(&json!({"alg": none, "kid": "rsa"})),
                b64json(&claims())
            );
            assert!(algorithm(&unsigned, &Alg::ALL), "{none:?}");
        }
        // HS256 keyed with the RSA key's public modulus, and with its JWK.
        let rsa_jwk = jwk(&rs, "rsa");
        let modulus = URL_SAFE_NO_PAD
            .decode(rsa_jwk["n"].as_str().unwrap())
            .unwrap();
        for secret in [modulus, serde_json::to_vec(&rsa_jwk).unwrap()] {
            let input = format!(
                "{}.{}",
                b64json(&json!({"alg": "HS256", "kid": "rsa"})),
                b64json(&claims())
            );
            let tag = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, &secret),
                input.as_bytes(),
            );
            let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
            assert!(algorithm(&forged, &Alg::ALL));
        }
        // Names close to an accepted one.
        for alg in ["RS384", "ES256K", "rs256", "Ed25519", "HS512"] {
            assert!(algorithm(&token(&rs, alg, Some("rsa")), &Alg::ALL), "{alg}");
        }
        let no_alg = rs.jws(&json!({"kid": "rsa"}), &claims());
        assert_eq!(
            keys.verify(&no_alg, &Alg::ALL),
            Err(JoseError::Malformed("the header has no alg"))
        );
    }

    #[test]
    fn wrong_keys_and_tampering_are_refused() {
        let (a, b, es) = (Key::rs256(), Key::rs256(), Key::es256());
        let keys = parse(&[jwk(&a, "a"), jwk(&b, "b"), jwk(&es, "ec")]);
        // Signed by one key, naming another of the same type.
        assert_eq!(
            keys.verify(&token(&a, "RS256", Some("b")), &Alg::ALL),
            Err(JoseError::Signature)
        );
        assert_eq!(
            keys.verify(&token(&a, "RS256", Some("rotated")), &Alg::ALL),
            Err(JoseError::UnknownKid)
        );
        // Another key of the wrong type under an unknown kid is still unknown.
        assert_eq!(
            keys.verify(&token(&Key::eddsa(), "EdDSA", Some("x")), &Alg::ALL),
            Err(JoseError::UnknownKid)
        );
        // A key the header carries is never used.
        let attacker = Key::es256();
        let embedded = attacker.jws(
            &json!({"alg": "ES256", "kid": "ec", "jwk": attacker.public_jwk(),
                    "jku": "https://evil.test/jwks", "x5u": "https://evil.test/cert"}),
            &claims(),
        );
        assert_eq!(keys.verify(&embedded, &Alg::ALL), Err(JoseError::Signature));
        let good = token(&es, "ES256", Some("ec"));
        let parts: Vec<&str> = good.split('.').collect();
        let admin =
            b64json(&json!({"iss": "https://idp.acme.test/", "sub": "admin", "aud": "latchkey"}));
        let other_header = b64json(&json!({"alg": "ES256", "kid": "ec", "typ": "at+jwt"}));
        let mut flipped = parts[2].to_string();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'Q' } else { 'A' });
        for forged in [
            format!("{}.{admin}.{}", parts[0], parts[2]),
            format!("{other_header}.{}.{}", parts[1], parts[2]),
            format!("{}.{}.{flipped}", parts[0], parts[1]),
            format!("{}.{}.", parts[0], parts[1]),
        ] {
            assert_eq!(keys.verify(&forged, &Alg::ALL), Err(JoseError::Signature));
        }
    }

    #[test]
    fn weak_and_oversized_rsa_keys_are_not_kept() {
        let good = Key::rs256();
        let modulus = |bytes: usize| {
            let mut n = vec![0xffu8; bytes];
            n[bytes - 1] = 0xfb;
            URL_SAFE_NO_PAD.encode(n)
        };
        let weak = json!({"kty": "RSA", "kid": "weak", "n": modulus(128), "e": "AQAB"});
        let almost = json!({"kty": "RSA", "kid": "almost", "n": modulus(255), "e": "AQAB"});
        let huge = json!({"kty": "RSA", "kid": "huge", "n": modulus(1025), "e": "AQAB"});
        // A leading zero byte does not make a 2047-bit key 2048.
        let mut padded = vec![0u8];
        padded.extend(vec![0x7fu8; 256]);
        let padded =
            json!({"kty": "RSA", "kid": "pad", "n": URL_SAFE_NO_PAD.encode(padded), "e": "AQAB"});
        let keys = parse(&[weak, almost, huge, padded, jwk(&good, "good")]);
        assert_eq!(keys.keys.len(), 1);
        assert_eq!(
            keys.verify(&token(&good, "RS256", Some("weak")), &Alg::ALL),
            Err(JoseError::UnknownKid)
        );
        // A 2048-bit modulus written with a leading zero byte is kept.
        let mut jwk = good.public_jwk();
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        jwk["n"] = json!(URL_SAFE_NO_PAD.encode([&[0u8][..], &n].concat()));
        jwk["kid"] = json!("zero");
        let keys = parse(&[jwk]);
        verifies(&keys, &good, "RS256", Some("zero"));
    }

    #[test]
    fn keys_alike_under_one_kid_are_dropped_but_types_may_share_one() {
        let (e1, e2, rs) = (Key::es256(), Key::es256(), Key::rs256());
        let keys = parse(&[jwk(&e1, "dup"), jwk(&e2, "dup"), jwk(&rs, "dup")]);
        assert_eq!(keys.keys.len(), 1);
        for key in [&e1, &e2] {
            assert_eq!(
                keys.verify(&token(key, "ES256", Some("dup")), &Alg::ALL),
                Err(JoseError::Algorithm("the algorithm does not fit the key"))
            );
        }
        verifies(&keys, &rs, "RS256", Some("dup"));
        // An EC and an RSA key may share a kid: the algorithm picks.
        let keys = parse(&[jwk(&e1, "k"), jwk(&rs, "k")]);
        assert_eq!(keys.keys.len(), 2);
        verifies(&keys, &e1, "ES256", Some("k"));
        verifies(&keys, &rs, "RS256", Some("k"));
        // Two RSA keys under one kid, one stated PS256 and one RS256, do not
        // overlap and both stay.
        let (r1, p2) = (Key::rs256(), Key::ps256());
        let (mut j1, mut j2) = (jwk(&r1, "r"), jwk(&p2, "r"));
        j1["alg"] = json!("RS256");
        j2["alg"] = json!("PS256");
        let keys = parse(&[j1, j2]);
        verifies(&keys, &r1, "RS256", Some("r"));
        verifies(&keys, &p2, "PS256", Some("r"));
    }

    #[test]
    fn tokens_without_kid_try_the_few_fitting_keys() {
        let es: Vec<Key> = (0..5).map(|_| Key::es256()).collect();
        let ed = Key::eddsa();
        let mut kidless = ed.public_jwk();
        kidless["use"] = json!("sig");
        let keys = parse(&[jwk(&es[0], "e0"), jwk(&es[1], "e1"), kidless]);
        verifies(&keys, &es[1], "ES256", None);
        verifies(&keys, &ed, "EdDSA", None);
        assert_eq!(
            keys.verify(&token(&es[2], "ES256", None), &Alg::ALL),
            Err(JoseError::Signature)
        );
        assert_eq!(
            keys.verify(&token(&Key::rs256(), "RS256", None), &Alg::ALL),
            Err(JoseError::UnknownKid)
        );
        // A kid never falls back to keys without one.
        assert_eq!(
            keys.verify(&token(&ed, "EdDSA", Some("ed")), &Alg::ALL),
            Err(JoseError::UnknownKid)
        );
        let many: Vec<Value> = es
            .iter()
            .enumerate()
            .map(|(i, k)| jwk(k, &format!("e{i}")))
            .collect();
        assert!(matches!(
            parse(&many).verify(&token(&es[0], "ES256", None), &Alg::ALL),
            Err(JoseError::Malformed(_))
        ));
        verifies(&parse(&many[..4]), &es[3], "ES256", None);
    }

    #[test]
    fn token_shapes_outside_compact_jws_are_refused() {
        let es = Key::es256();
        let keys = parse(&[jwk(&es, "ec")]);
        let malformed = |token: &str| match keys.verify(token, &Alg::ALL) {
            Err(JoseError::Malformed(why)) => why,
            other => panic!("{token}: {other:?}"),
        };
        let header = json!({"alg": "ES256", "kid": "ec"});
        let with = |extra: Value| {
            let mut h = header.clone();
            h.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            es.jws(&h, &claims())
        };
        assert!(malformed("a.b.c.d.e").contains("JWE"));
        assert!(malformed("a.b").contains("compact"));
        assert!(malformed("a.b.c.d").contains("compact"));
        assert!(malformed("a.b.c.d.e.f").contains("compact"));
        assert!(malformed(&"a".repeat(MAX_TOKEN_LEN + 1)).contains("too long"));
        assert!(malformed(&with(json!({"crit": ["exp"], "exp": 1}))).contains("critical"));
        assert!(malformed(&with(json!({"b64": false}))).contains("b64"));
        assert!(malformed(&with(json!({"b64": "false"}))).contains("b64"));
        assert_eq!(
            keys.verify(&with(json!({"b64": true})), &Alg::ALL),
            Ok(claims())
        );
        assert!(malformed(&with(json!({"kid": 7}))).contains("kid"));
        assert!(malformed("!!.e30.").contains("base64url"));
        let not_object = format!("{}.e30.", URL_SAFE_NO_PAD.encode(b"[1]"));
        assert!(malformed(&not_object).contains("JSON object"));
        let padded = format!("{}=", token(&es, "ES256", Some("ec")));
        assert!(malformed(&padded).contains("signature"));
        // A good signature over a payload that is not a JSON object.
        let input = format!(
            "{}.{}",
            b64json(&header),
            URL_SAFE_NO_PAD.encode(b"[\"sub\"]")
        );
        let array = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(es.sign(input.as_bytes()))
        );
        assert!(malformed(&array).contains("payload"));
    }

    #[test]
    fn jwks_documents_are_bounded_and_must_have_keys() {
        let refused = |doc: &[u8]| match UpstreamKeys::from_jwks(doc) {
            Err(JoseError::Jwks(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(refused(b"not json").contains("JSON"));
        assert!(refused(b"[]").contains("JSON"));
        assert!(refused(b"{}").contains("keys"));
        assert!(refused(br#"{"keys": {}}"#).contains("keys"));
        let es = Key::es256();
        let entries =
            |n: usize| -> Vec<Value> { (0..n).map(|i| jwk(&es, &i.to_string())).collect() };
        let doc = |keys: Vec<Value>| serde_json::to_vec(&json!({ "keys": keys })).unwrap();
        assert!(refused(&doc(entries(MAX_JWKS_KEYS + 1))).contains("too many"));
        assert_eq!(
            UpstreamKeys::from_jwks(&doc(entries(MAX_JWKS_KEYS)))
                .unwrap()
                .keys
                .len(),
            MAX_JWKS_KEYS
        );
        let mut big = json!({"keys": [jwk(&es, "ec")]});
        big["padding"] = json!("x".repeat(MAX_JWKS_LEN));
        assert!(refused(&serde_json::to_vec(&big).unwrap()).contains("too large"));
        assert!(parse(&[]).keys.is_empty());
    }

    #[test]
    fn jwks_entries_latchkey_cannot_use_are_skipped() {
        let (rs, es, ed) = (Key::rs256(), Key::es256(), Key::eddsa());
        let edit = |key: &Key, kid: &str, change: Value| {
            let mut j = jwk(key, kid);
            for (k, v) in change.as_object().unwrap() {
                if v.is_null() {
                    j.as_object_mut().unwrap().remove(k);
                } else {
                    j[k] = v.clone();
                }
            }
            j
        };
        let b = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let skipped = vec![
            json!("not an object"),
            json!(["RSA"]),
            edit(&rs, "enc", json!({"use": "enc"})),
            edit(&rs, "use-other", json!({"use": "wrap"})),
            edit(&rs, "use-number", json!({"use": 1})),
            edit(&rs, "ops-encrypt", json!({"key_ops": ["encrypt"]})),
            edit(&rs, "ops-string", json!({"key_ops": "verify"})),
            json!({"kty": "oct", "kid": "hmac", "k": b(b"shared secret")}),
            edit(&rs, "no-kty", json!({"kty": null})),
            edit(&rs, "kty-lower", json!({"kty": "rsa"})),
            edit(&rs, "rs384", json!({"alg": "RS384"})),
            edit(&rs, "oaep", json!({"alg": "RSA-OAEP"})),
            edit(&rs, "rsa-es256", json!({"alg": "ES256"})),
            edit(&rs, "alg-number", json!({"alg": 256})),
            edit(&rs, "bad-n", json!({"n": "not base64url!"})),
            edit(&rs, "no-e", json!({"e": null})),
            edit(&rs, "private-rsa", json!({"d": "AQAB"})),
            edit(&rs, "kid-number", json!({"kid": 7})),
            edit(&es, "p384", json!({"crv": "P-384"})),
            edit(&es, "secp256k1", json!({"crv": "secp256k1"})),
            edit(&es, "short-x", json!({"x": b(&[1; 31])})),
            edit(&es, "no-y", json!({"y": null})),
            edit(
                &es,
                "off-curve",
                json!({"x": b(&[1; 32]), "y": b(&[2; 32])}),
            ),
            edit(&es, "private-ec", json!({"d": b(&[1; 32])})),
            edit(&es, "ec-eddsa", json!({"alg": "EdDSA"})),
            edit(&ed, "x25519", json!({"crv": "X25519"})),
            edit(&ed, "ed448", json!({"crv": "Ed448", "x": b(&[1; 57])})),
            edit(&ed, "long-x", json!({"x": b(&[1; 33])})),
            edit(&ed, "crv-number", json!({"crv": 25519})),
        ];
        assert!(parse(&skipped).keys.is_empty());
        let kept = vec![
            edit(&rs, "sig", json!({"use": "sig", "alg": "RS256"})),
            edit(&es, "ops", json!({"key_ops": ["verify"], "alg": "ES256"})),
            edit(&ed, "x5c", json!({"x5c": ["ignored"], "alg": "EdDSA"})),
        ];
        let keys = parse(&[skipped, kept].concat());
        assert_eq!(keys.keys.len(), 3);
        for (key, alg, kid) in [
            (&rs, "RS256", "sig"),
            (&es, "ES256", "ops"),
            (&ed, "EdDSA", "x5c"),
        ] {
            verifies(&keys, key, alg, Some(kid));
        }
    }

    #[test]
    fn algorithm_names_are_exact() {
        for alg in Alg::ALL {
            assert_eq!(alg.as_str().parse::<Alg>(), Ok(alg));
            assert_eq!(alg.to_string(), alg.as_str());
        }
        for name in [
            "none", "HS256", "rs256", "RS384", "ES512", "Ed25519", "", " RS256",
        ] {
            assert!(name.parse::<Alg>().is_err(), "{name}");
        }
    }

    const NOW: i64 = 1_800_000_000;

    fn expect() -> IdTokenExpectations<'static> {
        IdTokenExpectations {
            issuer: "https://idp.acme.test/",
            client_id: "latchkey",
            nonce: Some("n-0S6_WzA2Mj"),
            now: NOW,
            leeway: 60,
        }
    }

    fn id_claims() -> Value {
        json!({
            "iss": "https://idp.acme.test/",
            "sub": "248289761001",
            "aud": "latchkey",
            "nonce": "n-0S6_WzA2Mj",
            "exp": NOW + 300,
            "iat": NOW,
        })
    }

    fn with(changes: Value) -> Value {
        let mut c = id_claims();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    #[test]
    fn id_token_claims_that_pass() {
        let ok = |c: Value, e: &IdTokenExpectations<'_>| {
            check_id_token_claims(&c, e).map(str::to_string)
        };
        let sub = Ok("248289761001".to_string());
        assert_eq!(ok(id_claims(), &expect()), sub);
        for changes in [
            json!({"aud": ["latchkey"]}),
            json!({"aud": ["latchkey", "api"], "azp": "latchkey"}),
            json!({"aud": "latchkey", "azp": "latchkey"}),
            // Within the leeway on either side.
            json!({"exp": NOW - 59}),
            json!({"iat": NOW + 60, "nbf": NOW + 60}),
            json!({"exp": NOW as f64 + 0.5, "iat": NOW as f64 - 0.25}),
        ] {
            assert_eq!(ok(with(changes.clone()), &expect()), sub, "{changes}");
        }
        for long_or_odd in ["x".repeat(255), "Ünïcödé|with spaces".into()] {
            let c = with(json!({ "sub": long_or_odd }));
            assert_eq!(ok(c, &expect()), Ok(long_or_odd));
        }
        // No nonce was sent (an ID token from a refresh).
        let refresh = IdTokenExpectations {
            nonce: None,
            ..expect()
        };
        assert_eq!(ok(with(json!({"nonce": null})), &refresh), sub);
        assert_eq!(ok(id_claims(), &refresh), sub);
    }

    #[test]
    fn id_token_claims_refused() {
        let cases = [
            (json!({"iss": "https://idp.acme.test"}), ClaimError::Issuer),
            (json!({"iss": "https://evil.test/"}), ClaimError::Issuer),
            (json!({"iss": null}), ClaimError::Issuer),
            (
                json!({"iss": ["https://idp.acme.test/"]}),
                ClaimError::Issuer,
            ),
            (json!({"aud": "other"}), ClaimError::Audience),
            (json!({"aud": "Latchkey"}), ClaimError::Audience),
            (json!({"aud": null}), ClaimError::Audience),
            (json!({"aud": []}), ClaimError::Audience),
            (json!({"aud": ["other", "api"]}), ClaimError::Audience),
            (json!({"aud": ["latchkey", 7]}), ClaimError::Audience),
            (json!({"aud": {"latchkey": true}}), ClaimError::Audience),
            (
                json!({"aud": ["latchkey", "api"]}),
                ClaimError::AuthorizedParty,
            ),
            (
                json!({"aud": ["latchkey", "api"], "azp": "api"}),
                ClaimError::AuthorizedParty,
            ),
            (json!({"azp": "other"}), ClaimError::AuthorizedParty),
            (json!({"exp": NOW - 60}), ClaimError::Expired),
            (json!({"exp": null}), ClaimError::Time("exp")),
            (json!({"exp": "soon"}), ClaimError::Time("exp")),
            (json!({"iat": NOW + 61}), ClaimError::NotYetValid),
            (json!({"iat": null}), ClaimError::Time("iat")),
            (json!({"nbf": NOW + 61}), ClaimError::NotYetValid),
            (json!({"nbf": "later"}), ClaimError::Time("nbf")),
            (json!({"nonce": "n-0S6_WzA2Mk"}), ClaimError::Nonce),
            (json!({"nonce": "n-0S6_WzA2Mj "}), ClaimError::Nonce),
            (json!({"nonce": null}), ClaimError::Nonce),
            (json!({"nonce": 1}), ClaimError::Nonce),
            (json!({"sub": null}), ClaimError::Subject),
            (json!({"sub": ""}), ClaimError::Subject),
            (json!({"sub": 248_289_761_001_u64}), ClaimError::Subject),
            (json!({"sub": "x".repeat(256)}), ClaimError::Subject),
            (json!({"sub": "user\u{0}id"}), ClaimError::Subject),
            (json!({"sub": "user\nid"}), ClaimError::Subject),
        ];
        for (changes, error) in cases {
            assert_eq!(
                check_id_token_claims(&with(changes.clone()), &expect()),
                Err(error),
                "{changes}"
            );
        }
        assert_eq!(
            check_id_token_claims(&json!("not an object"), &expect()),
            Err(ClaimError::Issuer)
        );
    }
}
