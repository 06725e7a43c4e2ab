//! PostgreSQL: the sweep's deletes, a chunk a statement (see the SQLite
//! twin). Several nodes may sweep at once: each delete is its own statement
//! and deleting a row twice deletes nothing.

use async_trait::async_trait;
use sqlx::Row;

use super::PostgresStore;
use crate::clock::Timestamp;
use crate::store::*;

/// A chunked delete: rows of `table` in the tenant that match `filter`,
/// whose one parameter (`$2`) is the moment the rows ended by.
struct Chunk {
    table: &'static str,
    filter: &'static str,
}

const REFRESH_TOKENS: Chunk = Chunk {
    table: "refresh_tokens",
    filter: "LEAST(expires_at, idle_expires_at) < $2",
};
const AUTH_CODES: Chunk = Chunk {
    table: "auth_codes",
    filter: "expires_at < $2 AND (used_at IS NULL OR NOT EXISTS \
             (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = auth_codes.grant_id))",
};
const SESSIONS_ENDED: Chunk = Chunk {
    table: "sessions",
    filter: "expires_at <= $2",
};
const LOGIN_TRANSACTIONS: Chunk = Chunk {
    table: "login_transactions",
    filter: "expires_at <= $2",
};
const ENROLLMENTS: Chunk = Chunk {
    table: "enrollments",
    filter: "expires_at <= $2",
};
const LOGIN_FAILURES: Chunk = Chunk {
    table: "login_failures",
    filter: "blocked_until IS NOT NULL AND blocked_until <= $2",
};

impl PostgresStore {
    async fn delete_chunk(
        &self,
        c: &Chunk,
        tenant_id: &str,
        at: Timestamp,
        limit: i64,
    ) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM {t} WHERE ctid IN (SELECT ctid FROM {t} WHERE tenant_id = $1 AND {f} LIMIT $3)",
            t = c.table,
            f = c.filter
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(at)
            .bind(limit)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl SweepStore for PostgresStore {
    async fn sweep_expired(
        &self,
        tenant_id: &str,
        now: Timestamp,
        grace: i64,
        limit: i64,
    ) -> StoreResult<Swept> {
        let ended = now.saturating_sub(grace);
        let mut swept = Swept {
            refresh_tokens: self
                .delete_chunk(&REFRESH_TOKENS, tenant_id, ended, limit)
                .await?,
            auth_codes: self
                .delete_chunk(&AUTH_CODES, tenant_id, ended, limit)
                .await?,
            sessions: self
                .delete_chunk(&SESSIONS_ENDED, tenant_id, now, limit)
                .await?,
            login_transactions: self
                .delete_chunk(&LOGIN_TRANSACTIONS, tenant_id, now, limit)
                .await?,
            enrollments: self
                .delete_chunk(&ENROLLMENTS, tenant_id, now, limit)
                .await?,
            login_failures: self
                .delete_chunk(&LOGIN_FAILURES, tenant_id, now, limit)
                .await?,
            ..Swept::default()
        };
        swept.sessions += sqlx::query(
            "DELETE FROM sessions WHERE ctid IN \
               (SELECT ctid FROM sessions WHERE tenant_id = $1 AND revoked_at IS NOT NULL LIMIT $2)",
        )
        .bind(tenant_id)
        .bind(limit)
        .execute(self.pool())
        .await?
        .rows_affected();
        // A revoked grant goes with what it issued (ON DELETE CASCADE); it
        // reads as revoked once unknown, as it did before.
        swept.grants = sqlx::query(
            "DELETE FROM grants WHERE ctid IN \
               (SELECT ctid FROM grants WHERE tenant_id = $1 AND revoked_at IS NOT NULL LIMIT $2)",
        )
        .bind(tenant_id)
        .bind(limit)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(swept)
    }

    async fn sweep_grants(
        &self,
        tenant_id: &str,
        before: Timestamp,
        from: Option<&GrantCursor>,
        limit: i64,
    ) -> StoreResult<(u64, Option<GrantCursor>)> {
        let (after_at, after_id) = match from {
            Some(c) => (c.created_at, c.id.as_str()),
            None => (Timestamp::MIN, ""),
        };
        let rows = sqlx::query(
            "SELECT g.id, g.created_at, \
               NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id) \
               AND NOT EXISTS (SELECT 1 FROM auth_codes c WHERE c.grant_id = g.id) AS spent \
             FROM grants g WHERE g.tenant_id = $1 AND g.created_at < $2 AND (g.created_at, g.id) > ($3, $4) \
             ORDER BY g.created_at, g.id LIMIT $5",
        )
        .bind(tenant_id)
        .bind(before)
        .bind(after_at)
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let next = match rows.last() {
            Some(r) if rows.len() as i64 >= limit => Some(GrantCursor {
                created_at: r.get("created_at"),
                id: r.get("id"),
            }),
            _ => None,
        };
        let spent: Vec<String> = rows
            .iter()
            .filter(|r| r.get::<bool, _>("spent"))
            .map(|r| r.get("id"))
            .collect();
        if spent.is_empty() {
            return Ok((0, next));
        }
        let gone = sqlx::query(
            "DELETE FROM grants WHERE tenant_id = $1 AND created_at < $2 AND id = ANY($3) \
               AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id) \
               AND NOT EXISTS (SELECT 1 FROM auth_codes c WHERE c.grant_id = grants.id)",
        )
        .bind(tenant_id)
        .bind(before)
        .bind(&spent)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok((gone, next))
    }
}
