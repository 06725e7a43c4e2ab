//! DPoP at the token endpoint and the resource servers: a proof checked by
//! [`crate::crypto::dpop`], its `jti` never accepted twice while the proof
//! could still be valid ([`ReplayCache`]), and, where the tenant requires
//! them, server nonces.
//!
//! Nonces are stateless: a MAC (under a key derived from the master key) of
//! the tenant and a five-minute window, so any node issues and accepts the
//! same ones; the current and the previous window's are accepted.
//!
//! The replay cache here is the single-node one (in memory); nodes that
//! share it implement [`ReplayCache`] on a shared store.

use std::collections::HashMap;
use std::sync::Mutex;

use http::{HeaderMap, header};
use serde_json::{Map, Value};

use crate::clock::{SharedClock, Timestamp};
use crate::context::Core;
use crate::crypto::dpop::{self, Expect, MAX_AGE, MAX_SKEW, Proof, ProofError};
use crate::crypto::hash::constant_time_eq;
use crate::tenant::{Tenant, issuer_for_host};

/// How long one nonce window lasts, seconds.
pub(crate) const NONCE_WINDOW: i64 = 300;

/// Remembers proof IDs while their proofs could still be accepted.
pub trait ReplayCache: Send + Sync {
    /// Records `key`, kept until `until`; false when it was there already.
    fn first_use(&self, key: &str, until: Timestamp) -> bool;
}

pub(crate) struct MemoryReplayCache {
    clock: SharedClock,
    seen: Mutex<HashMap<String, Timestamp>>,
}

impl MemoryReplayCache {
    pub(crate) fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            seen: Mutex::new(HashMap::new()),
        }
    }
}

impl ReplayCache for MemoryReplayCache {
    fn first_use(&self, key: &str, until: Timestamp) -> bool {
        let now = self.clock.now();
        let Ok(mut seen) = self.seen.lock() else {
            // A poisoned lock: refuse rather than let a replay through.
            return false;
        };
        if seen.len() > 50_000 {
            seen.retain(|_, until| *until >= now);
        }
        match seen.get(key) {
            Some(kept) if *kept >= now => false,
            _ => {
                seen.insert(key.to_string(), until);
                true
            }
        }
    }
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpopError {
    /// `invalid_dpop_proof`.
    Invalid(String),
    /// `use_dpop_nonce`: retry with this nonce.
    UseNonce(String),
}

/// The nonce of `tenant` for the window holding `at`.
fn nonce_at(state: &Core, tenant: &Tenant, at: Timestamp) -> String {
    let window = at.div_euclid(NONCE_WINDOW);
    state
        .sealer
        .mac("dpop-nonce", format!("{}\0{window}", tenant.id).as_bytes())
}

/// The nonce to hand out now (`DPoP-Nonce`).
pub fn current_nonce(state: &Core, tenant: &Tenant) -> String {
    nonce_at(state, tenant, state.clock.now())
}

/// Checks the `DPoP` header of a request for `method` `url` (with
/// `access_token` at resource servers): the proof, the tenant's nonce rule,
/// and that its `jti` was not seen before.
pub fn check(
    state: &Core,
    tenant: &Tenant,
    proof: &str,
    method: &str,
    url: &str,
    access_token: Option<&str>,
) -> Result<Proof, DpopError> {
    let now = state.clock.now();
    let nonces = tenant.config.dpop.require_nonce.then(|| {
        vec![
            nonce_at(state, tenant, now),
            nonce_at(state, tenant, now - NONCE_WINDOW),
        ]
    });
    let expect = Expect {
        method,
        url,
        now,
        access_token,
        nonces: nonces.as_deref(),
    };
    let proof = dpop::verify(proof, &expect).map_err(|e| match e {
        ProofError::Invalid(m) => DpopError::Invalid(m),
        ProofError::UseNonce => DpopError::UseNonce(current_nonce(state, tenant)),
    })?;
    let key = format!("{}\0{}\0{}", tenant.id, proof.jkt, proof.jti);
    // A proof is accepted while now is within [iat - skew, iat + max age].
    if !state
        .replay
        .first_use(&key, proof.iat + MAX_AGE.max(MAX_SKEW) + 1)
    {
        return Err(DpopError::Invalid("the proof's jti was used before".into()));
    }
    Ok(proof)
}

/// How an access token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Dpop,
}

/// The token of an `Authorization` header: None without one, `Err` for one
/// that is neither `Bearer <token>` nor `DPoP <token>`.
pub fn authorization(headers: &HeaderMap) -> Option<Result<(Scheme, &str), ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let Ok(value) = value.to_str() else {
        return Some(Err(()));
    };
    Some(match value.split_once(' ') {
        Some((scheme, token)) if !token.trim().is_empty() => {
            if scheme.eq_ignore_ascii_case("bearer") {
                Ok((Scheme::Bearer, token.trim()))
            } else if scheme.eq_ignore_ascii_case("dpop") {
                Ok((Scheme::Dpop, token.trim()))
            } else {
                Err(())
            }
        }
        _ => Err(()),
    })
}

/// The request a resource server checks a token's binding for.
pub struct Request<'a> {
    pub host: &'a str,
    pub method: &'a str,
    /// The path the client called (as sent, before any routing).
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

/// A refusal with a DPoP challenge (RFC 9449 §7.1): `error` is
/// `invalid_token`, `invalid_dpop_proof` or `use_dpop_nonce` (with the nonce
/// to retry with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub error: &'static str,
    pub detail: String,
    pub nonce: Option<String>,
}

fn challenge(error: &'static str, detail: impl Into<String>) -> Challenge {
    Challenge {
        error,
        detail: detail.into(),
        nonce: None,
    }
}

/// RFC 9449 §7: a token bound to a key (`cnf.jkt`) comes with the DPoP
/// scheme and a proof by that key for this request; an unbound one with
/// the Bearer scheme.
pub fn check_binding(
    state: &Core,
    tenant: &Tenant,
    request: &Request<'_>,
    scheme: Scheme,
    token: &str,
    claims: &Map<String, Value>,
) -> Result<(), Challenge> {
    let bound = claims
        .get("cnf")
        .and_then(|c| c.get("jkt"))
        .and_then(Value::as_str);
    let jkt = match (bound, scheme) {
        (None, Scheme::Bearer) => return Ok(()),
        (None, Scheme::Dpop) => {
            return Err(challenge(
                "invalid_token",
                "The token is not bound to a DPoP key: present it with the Bearer scheme.",
            ));
        }
        (Some(_), Scheme::Bearer) => {
            return Err(challenge(
                "invalid_token",
                "The token is bound to a DPoP key: present it with the DPoP scheme and a proof.",
            ));
        }
        (Some(jkt), Scheme::Dpop) => jkt,
    };
    let mut proofs = request.headers.get_all("dpop").iter();
    let (Some(proof), None) = (proofs.next(), proofs.next()) else {
        return Err(challenge(
            "invalid_dpop_proof",
            "Exactly one DPoP proof header is required.",
        ));
    };
    let proof = proof
        .to_str()
        .map_err(|_| challenge("invalid_dpop_proof", "The DPoP header is not text."))?;
    let url = format!(
        "{}{}",
        issuer_for_host(request.host).trim_end_matches('/'),
        request.path
    );
    match check(state, tenant, proof, request.method, &url, Some(token)) {
        Ok(p) if constant_time_eq(p.jkt.as_bytes(), jkt.as_bytes()) => Ok(()),
        Ok(_) => Err(challenge(
            "invalid_dpop_proof",
            "The proof's key is not the one the token is bound to.",
        )),
        Err(DpopError::Invalid(m)) => Err(challenge("invalid_dpop_proof", m)),
        Err(DpopError::UseNonce(n)) => Err(Challenge {
            error: "use_dpop_nonce",
            detail: "Resource server requires nonce in DPoP proof.".into(),
            nonce: Some(n),
        }),
    }
}

/// The `WWW-Authenticate` value of a challenge.
pub fn www_authenticate(c: &Challenge) -> String {
    let description: String = c
        .detail
        .chars()
        .filter(|ch| *ch != '"' && *ch != '\\' && !ch.is_control())
        .collect();
    format!(
        "DPoP algs=\"{}\", error=\"{}\", error_description=\"{description}\"",
        dpop::ALGS,
        c.error
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    #[test]
    fn a_key_is_refused_again_until_it_expires() {
        let clock = ManualClock::new(1_000);
        let cache = MemoryReplayCache::new(Arc::new(clock.clone()));
        assert!(cache.first_use("a", 1_300));
        assert!(!cache.first_use("a", 1_300));
        assert!(cache.first_use("b", 1_300));
        clock.advance(301);
        assert!(cache.first_use("a", 1_700), "expired entries are forgotten");
    }
}
