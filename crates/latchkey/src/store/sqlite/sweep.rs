//! SQLite: the sweep's deletes (the rules are `store::SWEEP_RULES`). Each
//! statement deletes one chunk and takes the writer for that statement only,
//! so requests' writes go between chunks; the walk over grants reads on a
//! reader and deletes on the writer.

use async_trait::async_trait;

use super::SqliteStore;
use crate::clock::Timestamp;
use crate::store::errors::db;
use crate::store::*;

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
            let sql = format!(
                "DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} WHERE tenant_id = ? AND {f} LIMIT ?)",
                t = rule.table,
                f = rule.filter("?", "MIN"),
            );
            *(rule.count)(&mut swept) += sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(rule.moment(now, grace))
                .bind(limit)
                .execute(&mut *self.writer().await?)
                .await
                .map_err(db)?
                .rows_affected();
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
        let (after_at, after_id) = GrantCursor::after(from);
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(grant_walk_sql().replace('$', "?")))
            .bind(tenant_id)
            .bind(before)
            .bind(after_at)
            .bind(after_id)
            .bind(limit)
            .fetch_all(&mut *self.reader().await)
            .await
            .map_err(db)?;
        let (spent, next) = GrantCursor::step(rows, limit);
        if spent.is_empty() {
            return Ok((0, next));
        }
        // Checked again under the writer: a grant gains codes and refresh
        // tokens only while it has some, or when it is created, but the
        // delete does not rely on it.
        let list = vec!["?"; spent.len()].join(", ");
        let sql = format!(
            "DELETE FROM grants WHERE tenant_id = ? AND created_at < ? AND id IN ({list}) \
               AND {GRANT_IS_SPENT} RETURNING id"
        );
        let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(before);
        for id in &spent {
            q = q.bind(id);
        }
        let gone = q.fetch_all(&mut *self.writer().await?).await.map_err(db)?;
        // These read as unrevoked until now.
        for id in &gone {
            self.cache.forget_grant(tenant_id, id);
        }
        Ok((gone.len() as u64, next))
    }
}
