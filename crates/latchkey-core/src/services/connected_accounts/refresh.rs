//! An account's upstream access token for the Token Vault: the stored one
//! while it lives, else refreshed at the provider, once for all nodes.
//!
//! On a node, requests for one account share one refresh ([`Refreshes`]:
//! the first runs it, the others wait for its outcome, a failure
//! included). Across nodes the store decides (`ARCHITECTURE.md`, "Connected
//! accounts and their refresh"): `claim_refresh` gives one node a hold on
//! the account's version; it refreshes with no lock or transaction open,
//! and `store_refresh` writes the new tokens, the rotated refresh token
//! among them, over that version before anyone is answered. The others
//! read the account again until its version moves and answer what was
//! stored, or until the hold is given up with nothing stored (the provider
//! failed: so do they) or has passed (its node died: they claim it). A
//! provider's `invalid_grant` is stored as the account's `revoked` mark; a
//! provider down, slow or answering garbage changes nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{open_token, seal_tokens};
use crate::clock::Timestamp;
use crate::context::Core;
use crate::services::upstream::{self, Provider, TokenSet, UpstreamError};
use crate::store::{AccountStatus, ConnectedAccountRow, RefreshedTokens, StoreError};
use crate::tenant::{Connection, Tenant};

/// A stored access token with less than this left is refreshed first: the
/// app gets a token it has time to use.
const EXPIRY_MARGIN: i64 = 60;
/// The `expires_in` answered for a token whose provider gave no lifetime
/// (GitHub's OAuth apps): the app asks again within the hour.
const UNKNOWN_LIFETIME: i64 = 3600;
/// Beyond the provider's two requests (discovery, token) a hold lasts this
/// much longer.
const HOLD_MARGIN: i64 = 5;
/// How often a node waiting for another's refresh reads the account.
const POLL: Duration = Duration::from_millis(50);

/// An account's upstream access token, as answered.
#[derive(Clone)]
pub struct Served {
    pub access_token: String,
    pub expires_in: i64,
    pub scopes: Vec<String>,
    /// Whether this request's refresh got it (rather than the store).
    pub refreshed: bool,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("expires_in", &self.expires_in)
            .field("refreshed", &self.refreshed)
            .finish_non_exhaustive()
    }
}

/// Why an account's access token cannot be had. Cloned to every request
/// that waited on the refresh that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The account went (deleted while the request was under way).
    #[error("the account is gone")]
    Gone,
    /// The provider no longer honours the account's refresh token (the
    /// account is marked `revoked`).
    #[error("the provider refused the refresh token (invalid_grant)")]
    Revoked,
    /// The access token ran out and there is no refresh token to renew it.
    #[error("the access token expired and there is no refresh token")]
    NoRefreshToken,
    /// The provider refused the refresh with another error (its text).
    #[error("the provider refused the refresh: {0}")]
    Refused(String),
    /// The provider could not be reached, was too slow or answered
    /// garbage; nothing was changed, and a later request may succeed.
    #[error("{0}")]
    Unreachable(String),
    /// Another node's refresh did not end in time.
    #[error("another refresh of the account did not finish in time")]
    Busy,
    /// The database cannot take the request now.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            Self::Unavailable(e.to_string())
        } else {
            Self::Internal(e.to_string())
        }
    }
}

type Outcome = Result<Served, VaultError>;
type Flight = tokio::sync::OnceCell<Outcome>;

/// The refreshes under way on this node, one an account: requests for an
/// account being refreshed wait for that refresh's outcome.
#[derive(Default)]
pub struct Refreshes {
    flights: Mutex<HashMap<String, Arc<Flight>>>,
}

impl Refreshes {
    pub fn new() -> Self {
        Self::default()
    }

    /// The account's refresh under way, or a new one.
    fn join(&self, key: &str) -> Aboard<'_> {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        let flight = flights.entry(key.to_owned()).or_default().clone();
        Aboard {
            refreshes: self,
            key: key.to_owned(),
            flight,
        }
    }
}

/// A request's part in a refresh: when it is over (or its request went
/// away and nobody else waits), the refresh is forgotten, so the next
/// request reads the store afresh.
struct Aboard<'r> {
    refreshes: &'r Refreshes,
    key: String,
    flight: Arc<Flight>,
}

impl Drop for Aboard<'_> {
    fn drop(&mut self) {
        let mut flights = self
            .refreshes
            .flights
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let ours = flights
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight));
        // Held by the map and this request alone: nobody else waits.
        if ours && (self.flight.initialized() || Arc::strong_count(&self.flight) <= 2) {
            flights.remove(&self.key);
        }
    }
}

/// The account's access token: as stored while it has more than
/// [`EXPIRY_MARGIN`] left, else refreshed at the provider of `connection`.
pub async fn access_token(
    core: &Core,
    tenant: &Tenant,
    connection: &Connection,
    account: &ConnectedAccountRow,
) -> Result<Served, VaultError> {
    let now = core.clock.now();
    if let Some(served) = usable(core, tenant, account, now)? {
        return Ok(served);
    }
    let aboard = core
        .refreshes
        .join(&format!("{}:{}", tenant.id, account.id));
    aboard
        .flight
        .get_or_init(|| refresh(core, tenant, connection, &account.user_id, &account.id))
        .await
        .clone()
}

/// What the stored row answers without the provider: its token while it
/// lives, its mark when revoked; `None` when it must be refreshed.
fn usable(
    core: &Core,
    tenant: &Tenant,
    row: &ConnectedAccountRow,
    now: Timestamp,
) -> Result<Option<Served>, VaultError> {
    if row.status == AccountStatus::Revoked {
        return Err(VaultError::Revoked);
    }
    let lives = row
        .tokens
        .access_expires_at
        .is_none_or(|at| at - EXPIRY_MARGIN > now);
    if row.tokens.access_token.is_none() || !lives {
        return Ok(None);
    }
    let access_token = open_token(core, &tenant.id, row, "access_token")
        .ok_or_else(|| VaultError::Internal("a sealed access token does not open".into()))?;
    Ok(Some(Served {
        access_token,
        expires_in: row
            .tokens
            .access_expires_at
            .map_or(UNKNOWN_LIFETIME, |at| at - now),
        scopes: row.scopes.clone(),
        refreshed: false,
    }))
}

/// Refreshes the account unless another node does, bounded in time: the
/// loop of the module comment.
async fn refresh(
    core: &Core,
    tenant: &Tenant,
    connection: &Connection,
    user_id: &str,
    id: &str,
) -> Outcome {
    let provider =
        Provider::of(core, tenant, connection).map_err(|e| VaultError::Internal(e.to_string()))?;
    // Discovery and the token request, each within the connection's
    // timeout, and a margin.
    let timeout = i64::try_from(provider.timeout.as_secs()).unwrap_or(60);
    let hold = 2 * timeout + HOLD_MARGIN;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(hold.unsigned_abs() + 1);
    // The version another node was seen holding.
    let mut held = None;
    loop {
        let row = core
            .store
            .connected_account(&tenant.id, user_id, id)
            .await?
            .ok_or(VaultError::Gone)?;
        let now = core.clock.now();
        if let Some(served) = usable(core, tenant, &row, now)? {
            return Ok(served);
        }
        match row.refresh_lock_until {
            // Another node holds it: wait for what it stores.
            Some(until) if until > now => held = Some(row.version),
            // Given up with nothing stored: that refresh failed.
            None if held == Some(row.version) => {
                return Err(VaultError::Unreachable(
                    "the provider failed another request's refresh of the account".into(),
                ));
            }
            // Free, or its holder's time is up: claim it.
            _ => {
                held = None;
                let refresh_token =
                    match row.tokens.refresh_token {
                        None => return Err(VaultError::NoRefreshToken),
                        Some(_) => open_token(core, &tenant.id, &row, "refresh_token").ok_or_else(
                            || VaultError::Internal("a sealed refresh token does not open".into()),
                        )?,
                    };
                let hold_until = now + hold;
                if core
                    .store
                    .claim_refresh(&tenant.id, id, row.version, now, hold_until)
                    .await?
                {
                    let done =
                        refresh_held(core, tenant, &provider, &row, &refresh_token, hold_until);
                    match done.await? {
                        Some(served) => return Ok(served),
                        // The tokens moved meanwhile: read them again.
                        None => continue,
                    }
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(VaultError::Busy);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The refresh at the provider, this node holding the account's version:
/// its outcome stored over that version, or the hold given up. `None` when
/// the version moved meanwhile (`complete` connected the account again).
async fn refresh_held(
    core: &Core,
    tenant: &Tenant,
    provider: &Provider,
    row: &ConnectedAccountRow,
    refresh_token: &str,
    hold_until: Timestamp,
) -> Result<Option<Served>, VaultError> {
    let outcome = upstream::refresh(core, provider, refresh_token).await;
    let now = core.clock.now();
    let stored = |refreshed: RefreshedTokens| async move {
        core.store
            .store_refresh(&tenant.id, &row.id, row.version, &refreshed, now)
            .await
    };
    match outcome {
        Ok(set) => {
            let tokens = renewed(core, tenant, row, set.clone(), refresh_token);
            if !stored(RefreshedTokens {
                tokens,
                status: AccountStatus::Active,
            })
            .await?
            {
                return Ok(None);
            }
            tracing::info!(tenant = %tenant.name, account = %row.id, connection = %row.connection,
                rotated = set.refresh_token.is_some(), "upstream tokens refreshed");
            Ok(Some(Served {
                access_token: set.access_token,
                expires_in: set.expires_at.map_or(UNKNOWN_LIFETIME, |at| at - now),
                scopes: row.scopes.clone(),
                refreshed: true,
            }))
        }
        Err(e) if e.is_invalid_grant() => {
            let revoked = RefreshedTokens {
                tokens: Default::default(),
                status: AccountStatus::Revoked,
            };
            if !stored(revoked).await? {
                return Ok(None);
            }
            tracing::warn!(tenant = %tenant.name, account = %row.id, connection = %row.connection,
                "the provider refused the refresh token: account marked revoked");
            Err(VaultError::Revoked)
        }
        Err(e) => {
            // Nothing stored: give the hold up, so that the next request
            // tries again at once and those waiting answer this failure.
            if let Err(s) = core
                .store
                .release_refresh(&tenant.id, &row.id, row.version, hold_until)
                .await
            {
                tracing::warn!(error = %s, account = %row.id, "a refresh hold was not given up");
            }
            tracing::warn!(tenant = %tenant.name, account = %row.id, connection = %row.connection,
                error = %e, "refreshing upstream tokens failed");
            Err(match e {
                UpstreamError::Refused { .. } => VaultError::Refused(e.to_string()),
                UpstreamError::Config(m) => VaultError::Internal(m),
                UpstreamError::Unreachable(_)
                | UpstreamError::Protocol(_)
                | UpstreamError::IdToken(_) => VaultError::Unreachable(e.to_string()),
            })
        }
    }
}

/// The account's tokens after a refresh, sealed: the new access token; the
/// rotated refresh token, or the one used when the provider keeps it; the
/// ID token of the connection (one answered by a refresh is not verified,
/// so not kept).
fn renewed(
    core: &Core,
    tenant: &Tenant,
    row: &ConnectedAccountRow,
    mut set: TokenSet,
    used: &str,
) -> crate::store::SealedTokens {
    if set.refresh_token.is_none() {
        set.refresh_token = Some(used.to_owned());
        set.refresh_expires_at = row.tokens.refresh_expires_at;
    }
    set.id_token = None;
    let mut tokens = seal_tokens(core, &tenant.id, row, &set);
    tokens.id_token = row.tokens.id_token.clone();
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn under_way(r: &Refreshes) -> usize {
        r.flights.lock().unwrap().len()
    }

    #[tokio::test]
    async fn one_refresh_an_account_shared_then_forgotten() {
        let r = Refreshes::new();
        let first = r.join("t:cac_1");
        let second = r.join("t:cac_1");
        assert!(Arc::ptr_eq(&first.flight, &second.flight));
        let other = r.join("t:cac_2");
        assert!(!Arc::ptr_eq(&first.flight, &other.flight));
        // The last request for an account going away, unfinished: forgotten.
        drop(other);
        assert_eq!(under_way(&r), 1);
        // One of two going away leaves it to the other.
        drop(second);
        assert_eq!(under_way(&r), 1);
        // Finished: whoever joins now gets its outcome, and once its
        // requests are answered it is forgotten.
        first.flight.set(Err(VaultError::Busy)).unwrap();
        let late = r.join("t:cac_1");
        assert!(matches!(late.flight.get(), Some(Err(VaultError::Busy))));
        drop(first);
        assert_eq!(under_way(&r), 0);
        let next = r.join("t:cac_1");
        drop(late);
        assert!(next.flight.get().is_none(), "a new refresh");
        assert_eq!(under_way(&r), 1);
    }
}
