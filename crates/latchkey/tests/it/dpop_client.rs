//! The client side of DPoP (RFC 9449) for the tests: a key of each
//! algorithm latchkey accepts, its public JWK and RFC 7638 thumbprint
//! (computed here independently of the server), and proofs. Used by the
//! integration tests and, through `#[path]`, by the server's unit tests.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

fn b64(x: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(x)
}

/// base64url(SHA-256(data)).
pub fn sha256_b64url(data: &[u8]) -> String {
    b64(digest::digest(&digest::SHA256, data).as_ref())
}

pub enum Key {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
    Ps256(RsaKeyPair),
}

impl Key {
    pub fn es256() -> Self {
        Self::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    pub fn eddsa() -> Self {
        Self::EdDsa(Ed25519KeyPair::generate().unwrap())
    }

    pub fn rs256() -> Self {
        Self::Rs256(RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
    }

    pub fn ps256() -> Self {
        Self::Ps256(RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::EdDsa(_) => "EdDSA",
            Self::Rs256(_) => "RS256",
            Self::Ps256(_) => "PS256",
        }
    }

    pub fn public_jwk(&self) -> Value {
        match self {
            Self::Es256(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])})
            }
            Self::EdDsa(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
            Self::Rs256(k) | Self::Ps256(k) => {
                let p = k.public_key();
                json!({"kty": "RSA",
                       "n": b64(p.modulus().big_endian_without_leading_zero()),
                       "e": b64(p.exponent().big_endian_without_leading_zero())})
            }
        }
    }

    /// The key's RFC 7638 thumbprint: SHA-256 of the required members in
    /// lexicographic order, without whitespace.
    pub fn jkt(&self) -> String {
        let j = self.public_jwk();
        let s = |k: &str| j[k].as_str().unwrap().to_string();
        let canonical = match self {
            Self::Es256(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                s("x"),
                s("y")
            ),
            Self::EdDsa(_) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, s("x")),
            Self::Rs256(_) | Self::Ps256(_) => {
                format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e"), s("n"))
            }
        };
        sha256_b64url(canonical.as_bytes())
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "a test client, not the server: it draws from the system generator itself"
    )]
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Self::Es256(k) => k.sign(&rng, input).unwrap().as_ref().to_vec(),
            Self::EdDsa(k) => k.sign(input).as_ref().to_vec(),
            Self::Rs256(k) | Self::Ps256(k) => {
                let alg = if matches!(self, Self::Rs256(_)) {
                    &signature::RSA_PKCS1_SHA256
                } else {
                    &signature::RSA_PSS_SHA256
                };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(alg, &rng, input, &mut sig).unwrap();
                sig
            }
        }
    }

    /// A compact JWS of `header` and `claims`, signed with this key.
    pub fn jws(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(header).unwrap()),
            b64(&serde_json::to_vec(claims).unwrap())
        );
        let sig = b64(&self.sign(input.as_bytes()));
        format!("{input}.{sig}")
    }

    /// A proof for `method` `url` at `iat` (a fresh `jti`), bound to an
    /// access token (`ath`) and carrying a nonce when given.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        iat: i64,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.public_jwk()});
        #[allow(
            clippy::disallowed_methods,
            reason = "a test client, not the server: it draws from the system generator itself"
        )]
        let jti = aws_lc_rs::rand::generate::<[u8; 16]>(&SystemRandom::new())
            .unwrap()
            .expose();
        let mut claims = json!({"jti": b64(&jti), "htm": method, "htu": url, "iat": iat});
        if let Some(t) = access_token {
            claims["ath"] = json!(sha256_b64url(t.as_bytes()));
        }
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        self.jws(&header, &claims)
    }
}
