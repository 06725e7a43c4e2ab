//! PostgreSQL: the sweep's deletes (the rules are `sql::sweep::SWEEP_RULES`),
//! a chunk a statement. Several nodes may sweep at once: each delete is its
//! own statement, and deleting a row twice deletes nothing.

use async_trait::async_trait;
use sqlx::Postgres;

use super::PostgresStore;
use crate::sql::sweep::{SWEEP_RULES, delete_spent, grant_walk, walked};
use crate::*;
use latchkey_core::clock::Timestamp;

#[async_trait]
impl SweepStore for PostgresStore {
    async fn sweep_expired(
        &self,
        tenant_id: &str,
        now: Timestamp,
        grace: i64,
        limit: i64,
    ) -> StoreResult<Swept> {
        let mut swept = Swept::default();
        for rule in SWEEP_RULES {
            *(rule.count)(&mut swept) += rule
                .delete::<Postgres>(tenant_id, now, grace, limit)
                .execute(self.pool())
                .await?;
        }
        Ok(swept)
    }

    async fn sweep_grants(
        &self,
        tenant_id: &str,
        before: Timestamp,
        from: Option<&GrantCursor>,
        limit: i64,
    ) -> StoreResult<(u64, Option<GrantCursor>)> {
        let rows = grant_walk(tenant_id, before, from, limit)
            .fetch_all(self.pool())
            .await?;
        let (spent, next) = walked(&rows, limit);
        if spent.is_empty() {
            return Ok((0, next));
        }
        let gone = delete_spent(tenant_id, before, &spent)
            .fetch_all(self.pool())
            .await?;
        Ok((gone.len() as u64, next))
    }
}
