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

use crate::app::AppState;
use crate::clock::{SharedClock, Timestamp};
use crate::crypto::dpop::{self, Expect, MAX_AGE, MAX_SKEW, Proof, ProofError};
use crate::tenant::Tenant;

/// How long one nonce window lasts, seconds.
pub const NONCE_WINDOW: i64 = 300;

/// Remembers proof IDs while their proofs could still be accepted.
pub trait ReplayCache: Send + Sync {
    /// Records `key`, kept until `until`; false when it was there already.
    fn first_use(&self, key: &str, until: Timestamp) -> bool;
}

pub struct MemoryReplayCache {
    clock: SharedClock,
    seen: Mutex<HashMap<String, Timestamp>>,
}

impl MemoryReplayCache {
    pub fn new(clock: SharedClock) -> Self {
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
fn nonce_at(state: &AppState, tenant: &Tenant, at: Timestamp) -> String {
    let window = at.div_euclid(NONCE_WINDOW);
    state
        .sealer
        .mac("dpop-nonce", format!("{}\0{window}", tenant.id).as_bytes())
}

/// The nonce to hand out now (`DPoP-Nonce`).
pub fn current_nonce(state: &AppState, tenant: &Tenant) -> String {
    nonce_at(state, tenant, state.clock.now())
}

/// Checks the `DPoP` header of a request for `method` `url` (with
/// `access_token` at resource servers): the proof, the tenant's nonce rule,
/// and that its `jti` was not seen before.
pub fn check(
    state: &AppState,
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
