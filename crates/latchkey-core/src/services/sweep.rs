//! The sweep: deletes what can no longer be used, so the store holds what
//! is live and not every token, code and session ever issued.
//!
//! `latchkey serve` sweeps every tenant when it starts and then every
//! `--sweep-interval` seconds; `latchkey sweep` does one pass and exits (for
//! deployments that prefer to schedule it). What goes, and how long after it
//! ended, is in [`SweepStore`]: refresh tokens and codes are kept for the
//! longest token lifetime of their tenant past their own end, and a grant
//! until nothing it issued can still be presented, so deleting never turns a
//! valid token invalid or a replay into something else than a refusal.
//!
//! Work is done a chunk of rows at a time, each its own short statement, so
//! requests' writes go between chunks (SQLite has one writer).

use std::time::Duration;

use crate::context::Core;
use crate::services::tokens;
use crate::store::{StoreError, Swept};
use crate::tenant::Tenant;

/// Rows per delete statement (and grants looked at per read).
pub(crate) const CHUNK: i64 = 500;

/// Sweeps one tenant as of the clock's `now`.
pub async fn sweep_tenant(state: &Core, tenant: &Tenant) -> Result<Swept, StoreError> {
    let store = &state.store;
    let now = state.clock.now();
    let grace = tokens::max_token_lifetime(tenant);
    let mut total = Swept::default();
    loop {
        let round = store.sweep_expired(&tenant.id, now, grace, CHUNK).await?;
        total.add(&round);
        if !round.reached(CHUNK.unsigned_abs()) {
            break;
        }
        tokio::task::yield_now().await;
    }
    // Grants that issued nothing that is left: walked oldest first.
    let mut from = None;
    loop {
        let (gone, next) = store
            .sweep_grants(&tenant.id, now.saturating_sub(grace), from.as_ref(), CHUNK)
            .await?;
        total.grants += gone;
        match next {
            Some(cursor) => from = Some(cursor),
            None => break,
        }
        tokio::task::yield_now().await;
    }
    Ok(total)
}

/// Sweeps every tenant; returns what was deleted in all of them. A tenant
/// that fails does not keep the others from being swept: the first failure
/// is returned once all have been tried.
pub async fn sweep_all(state: &Core) -> Result<Swept, StoreError> {
    let mut total = Swept::default();
    let mut failed = None;
    for row in state.store.list_tenants().await? {
        let swept = match Tenant::from_row(&row) {
            Ok(tenant) => sweep_tenant(state, &tenant).await,
            Err(e) => Err(e),
        };
        let swept = match swept {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(tenant = %row.name, error = %e, "the sweep of this tenant failed");
                failed.get_or_insert(e);
                continue;
            }
        };
        if swept.total() > 0 {
            tracing::info!(
                tenant = %row.name,
                refresh_tokens = swept.refresh_tokens,
                auth_codes = swept.auth_codes,
                grants = swept.grants,
                sessions = swept.sessions,
                login_transactions = swept.login_transactions,
                enrollments = swept.enrollments,
                login_failures = swept.login_failures,
                connect_transactions = swept.connect_transactions,
                "swept what can no longer be used"
            );
        }
        total.add(&swept);
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// Sweeps now and then every `every`, for as long as the server runs. A
/// failed pass is logged and tried again at the next tick.
pub async fn run(state: std::sync::Arc<Core>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = sweep_all(&state).await {
            tracing::warn!(error = %e, "the sweep failed; it runs again at the next interval");
        }
    }
}
