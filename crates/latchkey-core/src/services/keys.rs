//! Per-tenant RS256 signing keys: generated on first use, sealed at rest,
//! cached open in memory, rotated on demand. A superseded key stays published
//! in the JWKS until every token it signed has expired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{Map, Value};

use crate::clock::{SharedClock, Timestamp};
use crate::crypto::hash::sha256;
use crate::crypto::jws::{self, Jwk, SigningKey, VerifyingKey};
use crate::crypto::seal::Sealer;
use crate::rng::{RngExt, SharedRng};
use crate::store::{SigningKeyRow, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {0} could not be opened: {1}")]
    Open(String, String),
    #[error("key generation failed")]
    Generate,
    #[error("the token is malformed or not signed by a key of the tenant")]
    Invalid,
    #[error("no signing key of the tenant has that kid")]
    UnknownKey,
    #[error("the key signing now cannot be revoked: rotate first")]
    CurrentKey,
}

/// How many verified tokens are remembered; past it, expired ones go, and
/// if that is not enough, all of them.
const VERIFIED_CAPACITY: usize = 16_384;

/// A token whose signature checked out: by which key, until when.
struct Verified {
    kid: String,
    exp: Timestamp,
    claims: Arc<Map<String, Value>>,
}

struct TenantKeys {
    loaded_at: Timestamp,
    current: Arc<SigningKey>,
    published: Vec<Published>,
}

/// A key of the tenant's JWKS, with its parsed form for verification.
struct Published {
    superseded_at: Option<Timestamp>,
    jwk: Jwk,
    key: Arc<VerifyingKey>,
}

pub struct KeyService {
    store: Arc<dyn Store>,
    sealer: Arc<Sealer>,
    clock: SharedClock,
    rng: SharedRng,
    cache: RwLock<HashMap<String, Arc<TenantKeys>>>,
    ttl: i64,
    /// Tokens already verified, by the digest of tenant and token: a token
    /// presented again is not verified again while its key is published.
    verified: Mutex<HashMap<[u8; 32], Verified>>,
}

fn context(tenant_id: &str, kid: &str) -> String {
    format!("signing-key:{tenant_id}:{kid}")
}

impl KeyService {
    pub fn new(
        store: Arc<dyn Store>,
        sealer: Arc<Sealer>,
        clock: SharedClock,
        rng: SharedRng,
    ) -> Self {
        Self {
            store,
            sealer,
            clock,
            rng,
            cache: RwLock::new(HashMap::new()),
            ttl: 5,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Creates the tenant's first key when it has none.
    pub async fn ensure(&self, tenant_id: &str) -> Result<(), KeyError> {
        if self.store.signing_keys(tenant_id).await?.is_empty() {
            self.rotate(tenant_id).await?;
        }
        Ok(())
    }

    /// Adds a new signing key; the previous one keeps verifying.
    pub async fn rotate(&self, tenant_id: &str) -> Result<String, KeyError> {
        let kid = self.rng.token(12);
        let (key, der) = SigningKey::generate(kid.clone()).map_err(|_| KeyError::Generate)?;
        let jwk = serde_json::to_string(&key.public_jwk()).map_err(|_| KeyError::Generate)?;
        let row = SigningKeyRow {
            sealed_private: self
                .sealer
                .seal(&*self.rng, &context(tenant_id, &kid), &der),
            kid: kid.clone(),
            public_jwk: jwk,
            created_at: self.clock.now(),
            superseded_at: None,
        };
        self.store.add_signing_key(tenant_id, &row).await?;
        if let Ok(mut c) = self.cache.write() {
            c.remove(tenant_id);
        }
        Ok(kid)
    }

    async fn load(&self, tenant_id: &str) -> Result<Arc<TenantKeys>, KeyError> {
        let now = self.clock.now();
        if let Ok(c) = self.cache.read()
            && let Some(k) = c.get(tenant_id)
            && now - k.loaded_at < self.ttl
        {
            return Ok(k.clone());
        }
        let mut rows = self.store.signing_keys(tenant_id).await?;
        if rows.is_empty() {
            self.rotate(tenant_id).await?;
            rows = self.store.signing_keys(tenant_id).await?;
        }
        let newest = rows
            .iter()
            .find(|r| r.superseded_at.is_none())
            .or_else(|| rows.first())
            .ok_or(KeyError::Generate)?;
        let current = match self.cached_key(tenant_id, &newest.kid) {
            Some(k) => k,
            None => {
                let der = self
                    .sealer
                    .open(&context(tenant_id, &newest.kid), &newest.sealed_private)
                    .map_err(|e| KeyError::Open(newest.kid.clone(), e.to_string()))?;
                Arc::new(
                    SigningKey::from_pkcs8(newest.kid.clone(), &der)
                        .map_err(|e| KeyError::Open(newest.kid.clone(), e.to_string()))?,
                )
            }
        };
        let mut published = Vec::with_capacity(rows.len());
        for r in &rows {
            // A public key that does not parse is left out of the JWKS and
            // verifies nothing; the others keep working.
            let parsed = serde_json::from_str::<Jwk>(&r.public_jwk)
                .map_err(|e| e.to_string())
                .and_then(|jwk| Ok((VerifyingKey::new(&jwk).map_err(|e| e.to_string())?, jwk)));
            match parsed {
                Ok((key, jwk)) => published.push(Published {
                    superseded_at: r.superseded_at,
                    jwk,
                    key: Arc::new(key),
                }),
                Err(e) => {
                    tracing::error!(tenant = tenant_id, kid = %r.kid, "unusable public key: {e}")
                }
            }
        }
        let keys = Arc::new(TenantKeys {
            loaded_at: now,
            current,
            published,
        });
        if let Ok(mut c) = self.cache.write() {
            c.insert(tenant_id.to_string(), keys.clone());
        }
        Ok(keys)
    }

    fn cached_key(&self, tenant_id: &str, kid: &str) -> Option<Arc<SigningKey>> {
        let c = self.cache.read().ok()?;
        let k = c.get(tenant_id)?;
        (k.current.kid() == kid).then(|| k.current.clone())
    }

    /// The key that signs new tokens.
    pub async fn signing_key(&self, tenant_id: &str) -> Result<Arc<SigningKey>, KeyError> {
        Ok(self.load(tenant_id).await?.current.clone())
    }

    /// Keys that verify: the current one, and superseded ones for
    /// `max_token_lifetime` seconds after they were superseded.
    pub async fn published(
        &self,
        tenant_id: &str,
        max_token_lifetime: i64,
    ) -> Result<Vec<Jwk>, KeyError> {
        let keys = self.load(tenant_id).await?;
        Ok(self
            .live(&keys, max_token_lifetime)
            .map(|p| p.jwk.clone())
            .collect())
    }

    /// The claims of `token` if a published key of the tenant signed it.
    /// Expiry, issuer and audience are the caller's to check.
    pub(crate) async fn verify_token(
        &self,
        tenant_id: &str,
        token: &str,
        max_token_lifetime: i64,
    ) -> Result<Arc<Map<String, Value>>, KeyError> {
        if token.len() > jws::MAX_TOKEN_LEN {
            return Err(KeyError::Invalid);
        }
        let keys = self.load(tenant_id).await?;
        let live: Vec<&Arc<VerifyingKey>> = self
            .live(&keys, max_token_lifetime)
            .map(|p| &p.key)
            .collect();
        let mut input = Vec::with_capacity(tenant_id.len() + 1 + token.len());
        input.extend_from_slice(tenant_id.as_bytes());
        input.push(0);
        input.extend_from_slice(token.as_bytes());
        let digest = sha256(&input);
        if let Some(v) = self.verified().get(&digest)
            && live.iter().any(|k| k.kid() == v.kid)
        {
            return Ok(v.claims.clone());
        }
        let (key, claims) = jws::verify(token, &live).map_err(|_| KeyError::Invalid)?;
        let Value::Object(claims) = claims else {
            return Err(KeyError::Invalid);
        };
        let claims = Arc::new(claims);
        if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
            let now = self.clock.now();
            let mut verified = self.verified();
            if verified.len() >= VERIFIED_CAPACITY {
                verified.retain(|_, v| v.exp > now);
                if verified.len() >= VERIFIED_CAPACITY {
                    verified.clear();
                }
            }
            verified.insert(
                digest,
                Verified {
                    kid: key.kid().to_string(),
                    exp,
                    claims: claims.clone(),
                },
            );
        }
        Ok(claims)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Verified>> {
        // Every update is one insert, retain or clear: a panic elsewhere
        // cannot leave the map half-changed.
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live<'a>(
        &self,
        keys: &'a TenantKeys,
        max_token_lifetime: i64,
    ) -> impl Iterator<Item = &'a Published> {
        let now = self.clock.now();
        keys.published
            .iter()
            .filter(move |p| p.superseded_at.is_none_or(|s| s + max_token_lifetime > now))
    }

    /// Deletes keys no token can still carry. Returns how many went.
    /// The tenant's keys, newest first (the first signs now).
    pub async fn list(&self, tenant_id: &str) -> Result<Vec<SigningKeyRow>, KeyError> {
        self.load(tenant_id).await?;
        Ok(self.store.signing_keys(tenant_id).await?)
    }

    /// Withdraws a superseded key at once, before the tokens it signed
    /// expire (it leaked): out of the JWKS, and what it signed no longer
    /// verifies (on other nodes once their key cache renews, within its
    /// lifetime). The key signing now cannot be: rotate first.
    pub async fn revoke(&self, tenant_id: &str, kid: &str) -> Result<(), KeyError> {
        let rows = self.store.signing_keys(tenant_id).await?;
        let row = rows
            .iter()
            .find(|r| r.kid == kid)
            .ok_or(KeyError::UnknownKey)?;
        if row.superseded_at.is_none() {
            return Err(KeyError::CurrentKey);
        }
        self.store.delete_signing_key(tenant_id, kid).await?;
        if let Ok(mut c) = self.cache.write() {
            c.remove(tenant_id);
        }
        Ok(())
    }

    pub async fn prune(&self, tenant_id: &str, max_token_lifetime: i64) -> Result<usize, KeyError> {
        let now = self.clock.now();
        let mut n = 0;
        for r in self.store.signing_keys(tenant_id).await? {
            if r.superseded_at
                .is_some_and(|s| s + max_token_lifetime <= now)
            {
                self.store.delete_signing_key(tenant_id, &r.kid).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}
