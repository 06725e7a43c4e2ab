//! SQLite: the sweep's deletes (the rules are `sql::sweep::SWEEP_RULES`).
//! Each statement deletes one chunk and takes the writer for that statement
//! only, so requests' writes go between chunks; the walk over grants reads
//! on a reader and deletes on the writer.

use async_trait::async_trait;
use sqlx::Sqlite;

use super::SqliteStore;
use crate::sql::rows::Columns;
use crate::sql::sweep::{SWEEP_RULES, delete_spent, grant_walk, walked};
use crate::*;
use latchkey_core::clock::Timestamp;

#[async_trait]
impl SweepStore for SqliteStore {
    async fn sweep_expired(
        &self,
        tenant_id: &str,
        now: Timestamp,
        grace: i64,
        limit: i64,
    ) -> StoreResult<Swept> {
        // The read cache needs nothing dropped: a revoked grant read as
        // revoked, and reads as revoked once unknown.
        let mut swept = Swept::default();
        for rule in SWEEP_RULES {
            *(rule.count)(&mut swept) += rule
                .delete::<Sqlite>(tenant_id, now, grace, limit)
                .execute(&mut *self.writer().await?)
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
            .fetch_all(&mut *self.reader().await)
            .await?;
        let (spent, next) = walked(&rows, limit);
        if spent.is_empty() {
            return Ok((0, next));
        }
        let gone = delete_spent(tenant_id, before, &spent)
            .fetch_all(&mut *self.writer().await?)
            .await?;
        // These read as unrevoked until now.
        for r in &gone {
            self.cache.forget_grant(tenant_id, &r.text("id"));
        }
        Ok((gone.len() as u64, next))
    }
}
