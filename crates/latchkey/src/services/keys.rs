//! Per-tenant RS256 signing keys: generated on first use, sealed at rest,
//! cached open in memory, rotated on demand. A superseded key stays published
//! in the JWKS until every token it signed has expired.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::clock::{SharedClock, Timestamp};
use crate::crypto::jws::{Jwk, SigningKey};
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
}

struct TenantKeys {
    loaded_at: Timestamp,
    current: Arc<SigningKey>,
    rows: Vec<SigningKeyRow>,
}

pub struct KeyService {
    store: Arc<dyn Store>,
    sealer: Arc<Sealer>,
    clock: SharedClock,
    rng: SharedRng,
    cache: RwLock<HashMap<String, Arc<TenantKeys>>>,
    ttl: i64,
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
        let keys = Arc::new(TenantKeys {
            loaded_at: now,
            current,
            rows,
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
        let now = self.clock.now();
        Ok(keys
            .rows
            .iter()
            .filter(|r| r.superseded_at.is_none_or(|s| s + max_token_lifetime > now))
            .filter_map(|r| serde_json::from_str(&r.public_jwk).ok())
            .collect())
    }

    /// Deletes keys no token can still carry. Returns how many went.
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
