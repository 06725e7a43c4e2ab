//! PostgreSQL: the sweep's deletes (the rules are `store::SWEEP_RULES`), a
//! chunk a statement. Several nodes may sweep at once: each delete is its
//! own statement, and deleting a row twice deletes nothing.

use async_trait::async_trait;

use super::PostgresStore;
use crate::clock::Timestamp;
use crate::store::errors::db;
use crate::store::*;

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
            let sql = format!(
                "DELETE FROM {t} WHERE ctid IN (SELECT ctid FROM {t} WHERE tenant_id = $1 AND {f} LIMIT $3)",
                t = rule.table,
                f = rule.filter("$2", "LEAST"),
            );
            *(rule.count)(&mut swept) += sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(rule.moment(now, grace))
                .bind(limit)
                .execute(self.pool())
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
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(grant_walk_sql()))
            .bind(tenant_id)
            .bind(before)
            .bind(after_at)
            .bind(after_id)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(db)?;
        let (spent, next) = GrantCursor::step(rows, limit);
        if spent.is_empty() {
            return Ok((0, next));
        }
        let gone = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM grants WHERE tenant_id = $1 AND created_at < $2 AND id = ANY($3) AND {GRANT_IS_SPENT}"
        )))
        .bind(tenant_id)
        .bind(before)
        .bind(&spent)
        .execute(self.pool())
        .await.map_err(db)?
        .rows_affected();
        Ok((gone, next))
    }
}
