//! DPoP proofs (RFC 9449): a JWS the client signs with its own key for one
//! request. Checked here completely but for what needs state (replay of
//! `jti`, which nonces are current): `typ` `dpop+jwt`; `alg` one of ES256,
//! EdDSA (Ed25519), RS256, PS256, matching the key's type; a public `jwk`
//! in the header (no private members) that verifies the signature; `htm`
//! and `htu` (scheme, host, port and path; query and fragment ignored) of
//! this request; `iat` within the window; `jti`; `ath` when an access token
//! is presented; `nonce` when one is required.

use serde_json::{Map, Value};

use super::hash::{constant_time_eq, sha256_b64url};
use super::jose::{Alg, Compact, JoseError, PublicKey};

/// The algorithms accepted, as `WWW-Authenticate` advertises them.
pub const ALGS: &str = "ES256 EdDSA RS256 PS256";
/// How old a proof's `iat` may be, seconds.
pub(crate) const MAX_AGE: i64 = 300;
/// How far in the future a proof's `iat` may be (clock skew), seconds.
pub(crate) const MAX_SKEW: i64 = 60;
/// Longest proof accepted, bytes.
const MAX_LEN: usize = 8 * 1024;

/// What the request the proof must be for looks like.
pub struct Expect<'a> {
    /// `htm`: the request's method.
    pub method: &'a str,
    /// `htu`: the request's absolute URL (query and fragment are ignored).
    pub url: &'a str,
    pub now: i64,
    /// The access token presented with the proof (resource requests): its
    /// hash must be the proof's `ath`.
    pub access_token: Option<&'a str>,
    /// When the server requires a nonce: the nonces it accepts now.
    pub nonces: Option<&'a [String]>,
}

/// A verified proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The JWK SHA-256 thumbprint of the proof's key (RFC 7638), base64url:
    /// what a bound token's `cnf.jkt` holds.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// `invalid_dpop_proof`, with what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// A nonce is required and the proof has none or an old one:
    /// `use_dpop_nonce`.
    #[error("a DPoP nonce is required")]
    UseNonce,
}

fn invalid(what: impl Into<String>) -> ProofError {
    ProofError::Invalid(what.into())
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, ProofError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("the jwk has no {name}")))
}

/// The RFC 7638 thumbprint of a public JWK (EC P-256, OKP Ed25519, RSA).
pub fn thumbprint(jwk: &Map<String, Value>) -> Result<String, ProofError> {
    // The required members only, in lexicographic order, no whitespace.
    let canonical = match member(jwk, "kty")? {
        "EC" => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            Value::from(member(jwk, "crv")?),
            Value::from(member(jwk, "x")?),
            Value::from(member(jwk, "y")?)
        ),
        "OKP" => format!(
            r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
            Value::from(member(jwk, "crv")?),
            Value::from(member(jwk, "x")?)
        ),
        "RSA" => format!(
            r#"{{"e":{},"kty":"RSA","n":{}}}"#,
            Value::from(member(jwk, "e")?),
            Value::from(member(jwk, "n")?)
        ),
        other => return Err(invalid(format!("unsupported key type {other:?}"))),
    };
    Ok(sha256_b64url(canonical.as_bytes()))
}

/// `htu` and the request's URL name the same resource: scheme, host, port
/// and path equal (after URL normalisation); query and fragment ignored.
fn same_target(htu: &str, url: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(htu), url::Url::parse(url)) else {
        return false;
    };
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
}

/// Verifies a DPoP proof for the request `expect` describes.
pub fn verify(proof: &str, expect: &Expect<'_>) -> Result<Proof, ProofError> {
    let jws = Compact::parse(proof, MAX_LEN).map_err(|why| invalid(format!("the proof: {why}")))?;
    let header = jws.header();
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(invalid("the proof's typ is not dpop+jwt"));
    }
    let alg = jws.alg().ok_or_else(|| invalid("the proof has no alg"))?;
    let alg: Alg = alg
        .parse()
        .ok()
        .filter(|a: &Alg| ALGS.split(' ').any(|name| name == a.as_str()))
        .ok_or_else(|| invalid(format!("the algorithm {alg:?} is not accepted")))?;
    let jwk = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("the proof's header has no jwk"))?;
    let key = PublicKey::from_jwk(jwk, &[alg])
        .map_err(|why| invalid(format!("the proof's jwk is refused for {alg}: {why}")))?;
    jws.verify(&key, alg).map_err(|e| match e {
        JoseError::Signature => invalid("the proof's signature does not verify"),
        other => invalid(other.to_string()),
    })?;
    let claims = jws
        .claims()
        .map_err(|why| invalid(format!("the proof: {why}")))?;
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| invalid("the proof has no usable jti"))?;
    if claims.get("htm").and_then(Value::as_str) != Some(expect.method) {
        return Err(invalid("the proof's htm is not this request's method"));
    }
    let htu = claims
        .get("htu")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the proof has no htu"))?;
    if !same_target(htu, expect.url) {
        return Err(invalid("the proof's htu is not this request's URL"));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("the proof has no iat"))?;
    if iat < expect.now - MAX_AGE || iat > expect.now + MAX_SKEW {
        return Err(invalid("the proof's iat is outside the accepted window"));
    }
    if let Some(token) = expect.access_token {
        let ath = claims.get("ath").and_then(Value::as_str).unwrap_or("");
        if !constant_time_eq(ath.as_bytes(), sha256_b64url(token.as_bytes()).as_bytes()) {
            return Err(invalid("the proof's ath is not the access token's hash"));
        }
    }
    if let Some(nonces) = expect.nonces {
        let given = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !nonces
            .iter()
            .any(|n| constant_time_eq(n.as_bytes(), given.as_bytes()))
        {
            return Err(ProofError::UseNonce);
        }
    }
    Ok(Proof {
        jkt: thumbprint(jwk)?,
        jti: jti.to_string(),
        iat,
    })
}

/// The client side (keys, proofs), shared with the integration tests.
#[cfg(test)]
mod tests {
    use super::super::test_keys::Key;
    use super::*;
    use serde_json::json;

    const URL: &str = "https://login.acme.test/me/v1/authentication-methods";
    const NOW: i64 = 1_800_000_000;

    fn expect<'a>() -> Expect<'a> {
        Expect {
            method: "GET",
            url: URL,
            now: NOW,
            access_token: None,
            nonces: None,
        }
    }

    #[test]
    fn every_algorithm_verifies_and_gives_its_thumbprint() {
        for key in [Key::es256(), Key::eddsa(), Key::rs256(), Key::ps256()] {
            let proof = key.proof("GET", URL, NOW, None, None);
            let got = verify(&proof, &expect()).unwrap_or_else(|e| panic!("{}: {e}", key.alg()));
            assert_eq!(got.jkt, key.jkt(), "{}", key.alg());
            assert_eq!(got.iat, NOW);
        }
    }

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(jwk.as_object().unwrap()).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    fn refused(proof: &str, e: &Expect<'_>) -> String {
        match verify(proof, e) {
            Err(ProofError::Invalid(m)) => m,
            other => panic!("expected invalid_dpop_proof, got {other:?}"),
        }
    }

    #[test]
    fn each_rejection_reason() {
        let key = Key::es256();
        let good_header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()});
        let good_claims = json!({"jti": "j1", "htm": "GET", "htu": URL, "iat": NOW});
        let with = |h: &Value, c: &Value| key.jws(h, c);
        let edit = |v: &Value, k: &str, x: Value| {
            let mut v = v.clone();
            if x.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = x;
            }
            v
        };
        assert!(verify(&with(&good_header, &good_claims), &expect()).is_ok());
        let cases: Vec<(String, &str)> = vec![
            (
                with(&edit(&good_header, "typ", json!("JWT")), &good_claims),
                "typ",
            ),
            (
                with(&edit(&good_header, "typ", Value::Null), &good_claims),
                "typ",
            ),
            (
                with(&edit(&good_header, "alg", json!("HS256")), &good_claims),
                "not accepted",
            ),
            (
                with(&edit(&good_header, "alg", json!("none")), &good_claims),
                "not accepted",
            ),
            (
                with(&edit(&good_header, "alg", json!("RS256")), &good_claims),
                "does not fit",
            ),
            (
                with(&edit(&good_header, "jwk", Value::Null), &good_claims),
                "no jwk",
            ),
            (
                with(
                    &edit(&good_header, "jwk", {
                        let mut j = key.public_jwk();
                        j["d"] = json!("c2VjcmV0");
                        j
                    }),
                    &good_claims,
                ),
                "private",
            ),
            (
                with(
                    &edit(&good_header, "jwk", Key::es256().public_jwk()),
                    &good_claims,
                ),
                "signature",
            ),
            (
                with(&good_header, &edit(&good_claims, "jti", Value::Null)),
                "jti",
            ),
            (
                with(&good_header, &edit(&good_claims, "htm", json!("POST"))),
                "htm",
            ),
            (
                with(
                    &good_header,
                    &edit(
                        &good_claims,
                        "htu",
                        json!("https://login.acme.test/me/v1/factors"),
                    ),
                ),
                "htu",
            ),
            (
                with(
                    &good_header,
                    &edit(
                        &good_claims,
                        "htu",
                        json!("https://other.acme.test/me/v1/authentication-methods"),
                    ),
                ),
                "htu",
            ),
            (
                with(&good_header, &edit(&good_claims, "htu", Value::Null)),
                "htu",
            ),
            (
                with(
                    &good_header,
                    &edit(&good_claims, "iat", json!(NOW - MAX_AGE - 1)),
                ),
                "iat",
            ),
            (
                with(
                    &good_header,
                    &edit(&good_claims, "iat", json!(NOW + MAX_SKEW + 1)),
                ),
                "iat",
            ),
            (
                with(&good_header, &edit(&good_claims, "iat", json!("now"))),
                "iat",
            ),
            ("a.b".to_string(), "compact"),
            ("!!.!!.!!".to_string(), "base64url"),
        ];
        for (proof, why) in cases {
            let m = refused(&proof, &expect());
            assert!(m.contains(why), "{why}: {m}");
        }
        // A tampered signature.
        let mut p = with(&good_header, &good_claims);
        let last = p.pop().unwrap();
        p.push(if last == 'A' { 'B' } else { 'A' });
        assert!(refused(&p, &expect()).contains("signature"));
    }

    #[test]
    fn query_and_fragment_do_not_matter_but_port_and_scheme_do() {
        let key = Key::eddsa();
        let p = key.proof("GET", &format!("{URL}?x=1#f"), NOW, None, None);
        assert!(verify(&p, &expect()).is_ok());
        let p = key.proof(
            "GET",
            "https://login.acme.test:443/me/v1/authentication-methods",
            NOW,
            None,
            None,
        );
        assert!(verify(&p, &expect()).is_ok());
        let p = key.proof(
            "GET",
            "http://login.acme.test/me/v1/authentication-methods",
            NOW,
            None,
            None,
        );
        assert!(verify(&p, &expect()).is_err());
        let p = key.proof(
            "GET",
            "https://login.acme.test:8443/me/v1/authentication-methods",
            NOW,
            None,
            None,
        );
        assert!(verify(&p, &expect()).is_err());
    }

    #[test]
    fn ath_binds_the_access_token() {
        let key = Key::es256();
        let e = Expect {
            access_token: Some("token-a"),
            ..expect()
        };
        assert!(verify(&key.proof("GET", URL, NOW, Some("token-a"), None), &e).is_ok());
        assert!(refused(&key.proof("GET", URL, NOW, Some("token-b"), None), &e).contains("ath"));
        assert!(refused(&key.proof("GET", URL, NOW, None, None), &e).contains("ath"));
    }

    #[test]
    fn nonces_when_required() {
        let key = Key::es256();
        let current = vec!["n-now".to_string(), "n-before".to_string()];
        let e = Expect {
            nonces: Some(&current),
            ..expect()
        };
        assert_eq!(
            verify(&key.proof("GET", URL, NOW, None, None), &e),
            Err(ProofError::UseNonce)
        );
        assert_eq!(
            verify(&key.proof("GET", URL, NOW, None, Some("stale")), &e),
            Err(ProofError::UseNonce)
        );
        assert!(verify(&key.proof("GET", URL, NOW, None, Some("n-before")), &e).is_ok());
    }
}
