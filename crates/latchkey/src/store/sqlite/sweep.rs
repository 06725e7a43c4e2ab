//! SQLite: the sweep's deletes. Each statement deletes one chunk and takes
//! the writer for that statement only, so requests' writes go between
//! chunks; the walk over grants reads on a reader and deletes on the writer.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::clock::Timestamp;
use crate::store::*;

/// A chunked delete: rows of `table` in the tenant that match `filter`,
/// whose one parameter is the moment the rows ended by.
struct Chunk {
    table: &'static str,
    filter: &'static str,
}

const REFRESH_TOKENS: Chunk = Chunk {
    table: "refresh_tokens",
    filter: "MIN(expires_at, idle_expires_at) < ?",
};
const AUTH_CODES: Chunk = Chunk {
    table: "auth_codes",
    filter: "expires_at < ? AND (used_at IS NULL OR NOT EXISTS \
             (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = auth_codes.grant_id))",
};
const SESSIONS_ENDED: Chunk = Chunk {
    table: "sessions",
    filter: "expires_at <= ?",
};
const LOGIN_TRANSACTIONS: Chunk = Chunk {
    table: "login_transactions",
    filter: "expires_at <= ?",
};
const ENROLLMENTS: Chunk = Chunk {
    table: "enrollments",
    filter: "expires_at <= ?",
};
const LOGIN_FAILURES: Chunk = Chunk {
    table: "login_failures",
    filter: "blocked_until IS NOT NULL AND blocked_until <= ?",
};

impl SqliteStore {
    async fn delete_chunk(
        &self,
        c: &Chunk,
        tenant_id: &str,
        at: Timestamp,
        limit: i64,
    ) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} WHERE tenant_id = ? AND {f} LIMIT ?)",
            t = c.table,
            f = c.filter
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(at)
            .bind(limit)
            .execute(&mut *self.writer().await)
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl SweepStore for SqliteStore {
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
            "DELETE FROM sessions WHERE rowid IN \
               (SELECT rowid FROM sessions WHERE tenant_id = ? AND revoked_at IS NOT NULL LIMIT ?)",
        )
        .bind(tenant_id)
        .bind(limit)
        .execute(&mut *self.writer().await)
        .await?
        .rows_affected();
        // A revoked grant goes with what it issued (ON DELETE CASCADE); it
        // reads as revoked once unknown, as it did before.
        let gone: Vec<String> = sqlx::query_scalar(
            "DELETE FROM grants WHERE rowid IN \
               (SELECT rowid FROM grants WHERE tenant_id = ? AND revoked_at IS NOT NULL LIMIT ?) \
             RETURNING id",
        )
        .bind(tenant_id)
        .bind(limit)
        .fetch_all(&mut *self.writer().await)
        .await?;
        for id in &gone {
            self.cache.forget_grant(tenant_id, id);
        }
        swept.grants = gone.len() as u64;
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
             FROM grants g WHERE g.tenant_id = ? AND g.created_at < ? AND (g.created_at, g.id) > (?, ?) \
             ORDER BY g.created_at, g.id LIMIT ?",
        )
        .bind(tenant_id)
        .bind(before)
        .bind(after_at)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&mut *self.reader().await)
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
        // Checked again under the writer: nothing may have been added since
        // the read (a grant gains codes and refresh tokens only while it has
        // some, or when it is created), but the delete does not rely on it.
        let list = vec!["?"; spent.len()].join(", ");
        let sql = format!(
            "DELETE FROM grants WHERE tenant_id = ? AND created_at < ? AND id IN ({list}) \
               AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id) \
               AND NOT EXISTS (SELECT 1 FROM auth_codes c WHERE c.grant_id = grants.id) \
             RETURNING id"
        );
        let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(before);
        for id in &spent {
            q = q.bind(id);
        }
        let gone = q.fetch_all(&mut *self.writer().await).await?;
        for id in &gone {
            self.cache.forget_grant(tenant_id, id);
        }
        Ok((gone.len() as u64, next))
    }
}
