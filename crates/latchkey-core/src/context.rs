//! What the services work with: the ports (store, clock, randomness, rate
//! limits, replay cache, outbound HTTP, message delivery), the
//! tenant cache, signing keys and password hashing. It knows nothing of
//! HTTP: the HTTP layer's state (`app::AppState`) holds a `Core` beside its
//! own parts (page templates, trusted proxies).

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::crypto::password::PasswordHasherConfig;
use crate::crypto::seal::Sealer;
use crate::rng::SharedRng;
use crate::services::keys::KeyService;
use crate::store::Store;
use crate::tenant::TenantCache;

pub struct Core {
    pub store: Arc<dyn Store>,
    pub clock: SharedClock,
    pub rng: SharedRng,
    pub sealer: Arc<Sealer>,
    pub tenants: TenantCache,
    pub keys: KeyService,
    pub passwords: PasswordHasherConfig,
    /// A hash verified against when a user does not exist, to keep timing flat.
    pub dummy_hash: String,
    /// Request limits (My Account API) and code-sending throttles.
    pub limiter: Arc<dyn crate::services::ratelimit::Limiter>,
    /// What reaches outside: outbound HTTP and message delivery.
    pub outside: Outside,
    /// DPoP proof IDs seen (replay protection).
    pub replay: Arc<dyn crate::services::dpop::ReplayCache>,
    /// Password hashing, one thread per core.
    pub hashing: crate::crypto::hashing::HashingThreads,
    /// What upstream identity providers publish (discovery, keys), cached.
    pub upstreams: crate::services::upstream::Upstreams,
    /// The refreshes of connected accounts' tokens under way on this node.
    pub refreshes: crate::services::connected_accounts::Refreshes,
}

/// The ports to the outside world, implemented by the adapters the binary
/// wires in.
#[derive(Clone)]
pub struct Outside {
    /// Every outbound HTTP request, guarded ([`crate::outbound`]).
    pub http: crate::outbound::SharedHttpClient,
    /// The networks beyond the public internet the server lets requests
    /// reach (widened per tenant by `outbound.allow_private_networks`).
    pub access: crate::outbound::NetworkAccess,
    /// Codes by email, SMS and voice.
    pub delivery: crate::services::delivery::SharedDelivery,
    /// The environment variables tenant files name for provider and
    /// upstream-connection secrets.
    pub secrets: crate::services::delivery::SharedSecrets,
}

/// Password verifications that may wait for a hashing thread, per core,
/// unless `--hash-queue` says otherwise: at about 20 ms a hash, the last
/// waits some 600 ms.
pub const HASHING_QUEUE_PER_CORE: usize = 32;

impl Core {
    pub fn new(
        store: Arc<dyn Store>,
        clock: SharedClock,
        rng: SharedRng,
        sealer: Arc<Sealer>,
        passwords: PasswordHasherConfig,
        outside: Outside,
        hashing_queue: Option<usize>,
    ) -> anyhow::Result<Self> {
        let dummy_hash = passwords
            .hash(&*rng, "latchkey-dummy-password")
            .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            limiter: Arc::new(crate::services::ratelimit::MemoryLimiter::new(
                clock.clone(),
            )),
            replay: Arc::new(crate::services::dpop::MemoryReplayCache::new(clock.clone())),
            hashing: crate::crypto::hashing::HashingThreads::start(
                cores,
                hashing_queue.unwrap_or(HASHING_QUEUE_PER_CORE * cores),
            )?,
            tenants: TenantCache::new(store.clone(), clock.clone(), 2),
            keys: KeyService::new(store.clone(), sealer.clone(), clock.clone(), rng.clone()),
            upstreams: crate::services::upstream::Upstreams::new(),
            refreshes: crate::services::connected_accounts::Refreshes::new(),
            store,
            clock,
            rng,
            sealer,
            passwords,
            dummy_hash,
            outside,
        })
    }

    /// A fresh grant ID (the family of tokens from one authentication).
    pub(crate) fn new_grant_id(&self) -> String {
        use crate::rng::RngExt;
        format!("g_{}", self.rng.alnum(22))
    }

    /// Argon2id off the async workers, on the hashing threads (one per core;
    /// the rest wait their turn, as many as the queue holds). Refused at once
    /// when the queue is full; never run when the caller goes away first.
    pub(crate) async fn verify_password(
        &self,
        password: &str,
        hash: &str,
    ) -> Result<bool, crate::crypto::hashing::HashingError> {
        let (p, h, cfg) = (password.to_string(), hash.to_string(), self.passwords);
        self.hashing.run(move || cfg.verify(&p, &h)).await
    }

    /// Hashes a password again (an imported hash replaced at login), on the
    /// hashing threads if the queue has room; `None` otherwise, or if hashing
    /// failed: the next login tries again.
    pub(crate) async fn rehash_password(&self, password: &str) -> Option<String> {
        let (p, cfg, rng) = (password.to_string(), self.passwords, self.rng.clone());
        self.hashing
            .run(move || cfg.hash(&*rng, &p))
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Hashes a new password; waits its turn however long the queue is (a
    /// caller with a token, or a tenant file being applied).
    pub(crate) async fn hash_password(&self, password: &str) -> anyhow::Result<String> {
        let (p, cfg, rng) = (password.to_string(), self.passwords, self.rng.clone());
        self.hashing
            .run_unbounded(move || cfg.hash(&*rng, &p))
            .await
            .map_err(|e| anyhow::anyhow!("hashing: {e}"))?
            .map_err(|e| anyhow::anyhow!("hashing: {e}"))
    }
}
