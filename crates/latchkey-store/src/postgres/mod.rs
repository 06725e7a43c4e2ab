//! PostgreSQL, for several server processes sharing one database.
//!
//! Behaves exactly like the SQLite backend; where SQLite gets atomicity from
//! its single writer, this backend gets it from guarded statements
//! (`UPDATE … WHERE used_at IS NULL`, `DELETE` deciding a winner, upserts) and,
//! for read-then-write sequences, from transaction-scoped advisory locks.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use super::errors::{OpenError, db};
use super::sql::rows::{Columns, signing_key_row, tenant_row, user_row};
use super::sql::{Statement, sessions, tenants};
use super::*;

mod accounts;
mod identities;
mod imports;
mod methods;
mod push;
mod sweep;
mod tickets;
mod users;
use latchkey_core::clock::Timestamp;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How the connection pool behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOptions {
    pub max_connections: u32,
    /// Connections kept open even when idle.
    pub min_connections: u32,
    /// How long a query waits for a free connection, and a statement for a
    /// lock, before failing (at least a second for the lock).
    pub acquire_timeout_secs: u64,
    /// A schema to work in instead of the role's default `search_path`
    /// (`[a-z_][a-z0-9_]*`). It must exist; the tables and the migration
    /// history are created in it.
    pub schema: Option<String>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout_secs: 5,
            schema: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?…`)
    /// and applies pending migrations. The pool replaces broken connections
    /// by itself: every connection is checked before it is handed out, so a
    /// database restart costs failed requests while it is down, not the pool.
    pub async fn connect(url: &str, options: PoolOptions) -> Result<Self, OpenError> {
        let mut connect = PgConnectOptions::from_str(url).map_err(db)?;
        if let Some(schema) = &options.schema {
            if !valid_schema_name(schema) {
                return Err(OpenError::Config(format!("invalid schema name {schema:?}")));
            }
            connect = connect.options([("search_path", schema)]);
        }
        // A statement waiting for a lock (a table locked by hand, a stuck
        // transaction) gives up as a request waiting for a connection does,
        // and is answered 503 (`lock_not_available`). Migrations are not
        // requests: they run on a connection of their own, without it, so
        // nodes starting together wait their turn at the migration lock.
        let migrating = connect.clone();
        let lock_timeout = format!("{}s", options.acquire_timeout_secs.max(1));
        let connect = connect.options([("lock_timeout", lock_timeout.as_str())]);
        let max = options.max_connections.max(1);
        let timeout = Duration::from_secs(options.acquire_timeout_secs);
        let pool = match PgPoolOptions::new()
            .max_connections(max)
            .min_connections(options.min_connections.min(max))
            .acquire_timeout(timeout)
            .test_before_acquire(true)
            .connect_with(connect.clone())
            .await
        {
            Ok(pool) => pool,
            Err(e) => return Err(unreachable(&connect, e, timeout).await.into()),
        };
        if let Some(schema) = &options.schema {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                    .bind(schema)
                    .fetch_one(&pool)
                    .await
                    .map_err(db)?;
            if !exists {
                return Err(OpenError::Config(format!("schema {schema} does not exist")));
            }
        }
        let migrating = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(options.acquire_timeout_secs))
            .connect_with(migrating)
            .await
            .map_err(db)?;
        let migrated = MIGRATOR.run(&migrating).await;
        migrating.close().await;
        migrated.map_err(OpenError::migrate)?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Why the database could not be reached at start, naming where it was
/// looked for. A pool that timed out only says it waited: one direct
/// connection attempt finds out what stood in the way (refused, unknown
/// host, authentication, no answer).
async fn unreachable(connect: &PgConnectOptions, e: sqlx::Error, timeout: Duration) -> StoreError {
    use sqlx::Connection;
    let cause = match e {
        sqlx::Error::PoolTimedOut => {
            match tokio::time::timeout(timeout, sqlx::PgConnection::connect_with(connect)).await {
                Ok(Err(cause)) => cause.to_string(),
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    format!(
                        "{e} (a direct connection succeeded: the pool is too small or too slow)"
                    )
                }
                Err(_) => format!("no answer within {} s", timeout.as_secs()),
            }
        }
        e => e.to_string(),
    };
    StoreError::Unavailable(format!(
        "cannot connect to PostgreSQL at {}:{} (database {:?}, user {:?}): {cause}",
        connect.get_host(),
        connect.get_port(),
        connect.get_database().unwrap_or_default(),
        connect.get_username(),
    ))
}

fn valid_schema_name(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Serializes the transaction `tx` with every other transaction that takes
/// the same `key`, on any server process, until it commits or rolls back.
/// Advisory locks are per database: the key includes the schema, so that
/// installations sharing a database in different schemas do not wait on
/// each other. (A hash collision only costs an unneeded wait.)
async fn advisory_lock(tx: &mut sqlx::PgConnection, key: &str) -> StoreResult<()> {
    Statement::new(
        "SELECT pg_advisory_xact_lock(\
           hashtextextended(coalesce(current_schema(), '') || ':' || $1, 0))",
    )
    .text(key)
    .execute(tx)
    .await?;
    Ok(())
}

#[async_trait]
impl crate::sql::Runs for PostgresStore {
    type Row = sqlx::postgres::PgRow;

    async fn read_optional(&self, st: Statement<'_>) -> StoreResult<Option<Self::Row>> {
        st.fetch_optional(self.pool()).await
    }

    async fn read_all(&self, st: Statement<'_>) -> StoreResult<Vec<Self::Row>> {
        st.fetch_all(self.pool()).await
    }

    async fn write(&self, st: Statement<'_>) -> StoreResult<u64> {
        st.execute(self.pool()).await
    }

    async fn write_returning(&self, st: Statement<'_>) -> StoreResult<Option<Self::Row>> {
        st.fetch_optional(self.pool()).await
    }
}

#[async_trait]
impl TenantStore for PostgresStore {
    async fn tenant_by_domain(&self, domain: &str) -> StoreResult<Option<TenantRow>> {
        let row = tenants::tenant_by_domain(domain)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(tenant_row))
    }

    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRow>> {
        let row = tenants::tenant_by_name(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(tenant_row))
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantRow>> {
        let rows = tenants::list_tenants::<Postgres>()
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(tenant_row).collect())
    }

    async fn upsert_tenant(
        &self,
        name: &str,
        new_id: &str,
        config: &str,
        domains: &[String],
        now: Timestamp,
    ) -> StoreResult<String> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Two nodes applying the same tenant file take turns; the second one
        // then sees the first one's tenant (READ COMMITTED: each statement
        // reads what is committed when it starts).
        advisory_lock(&mut tx, &format!("latchkey:tenant:{name}")).await?;
        let id = tenants::upsert_tenant(&mut *tx, name, new_id, config, domains, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    async fn replace_tenant_config(
        &self,
        name: &str,
        revision: i64,
        config: &str,
        domains: Option<&[String]>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        advisory_lock(&mut tx, &format!("latchkey:tenant:{name}")).await?;
        let done =
            tenants::replace_tenant_config(&mut *tx, name, revision, config, domains, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(done)
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn signing_keys(&self, tenant_id: &str) -> StoreResult<Vec<SigningKeyRow>> {
        let rows = tenants::signing_keys::<Postgres>(tenant_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(signing_key_row).collect())
    }

    async fn add_signing_key(&self, tenant_id: &str, key: &SigningKeyRow) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Without it, two concurrent rotations would each supersede only the
        // keys committed before they started, leaving two current keys.
        advisory_lock(&mut tx, &format!("latchkey:keys:{tenant_id}")).await?;
        tenants::add_signing_key(&mut *tx, tenant_id, key).await?;
        tx.commit().await.map_err(db)
    }

    async fn delete_signing_key(&self, tenant_id: &str, kid: &str) -> StoreResult<()> {
        tenants::delete_signing_key(tenant_id, kid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<String>> {
        let row = tenants::meta_get(key).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.text("value")))
    }

    async fn meta_init(&self, key: &str, value: &str) -> StoreResult<String> {
        tenants::meta_init(key, value).execute(&self.pool).await?;
        self.meta_get(key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("meta {key} vanished")))
    }

    async fn probe_write(&self) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        Statement::new(tenants::PROBE_WRITE)
            .execute(&mut *tx)
            .await?;
        tx.rollback().await.map_err(db)
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn user_by_id(&self, tenant_id: &str, user_id: &str) -> StoreResult<Option<UserRow>> {
        let row = tenants::user_by_id(tenant_id, user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn user_by_email(
        &self,
        tenant_id: &str,
        connection: &str,
        email: &str,
    ) -> StoreResult<Option<UserRow>> {
        let row = tenants::user_by_email(tenant_id, connection, email)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn user_by_username(
        &self,
        tenant_id: &str,
        connection: &str,
        username: &str,
    ) -> StoreResult<Option<UserRow>> {
        let row = tenants::user_by_username(tenant_id, connection, username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn upsert_user(&self, tenant_id: &str, user: &UserRow) -> StoreResult<()> {
        tenants::upsert_user(tenant_id, user)
            .execute_or_conflict(&self.pool, tenants::email_taken(user))
            .await?;
        Ok(())
    }

    async fn count_users(&self, tenant_id: &str) -> StoreResult<i64> {
        let row = tenants::count_users(tenant_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.int("n"))
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(
        &self,
        tenant_id: &str,
        id_digest: &str,
        s: &SessionRow,
        now: Timestamp,
    ) -> StoreResult<()> {
        sessions::create_session(tenant_id, id_digest, s, now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session(
        &self,
        tenant_id: &str,
        id_digest: &str,
        now: Timestamp,
        idle_seconds: i64,
    ) -> StoreResult<Option<SessionRow>> {
        let row = sessions::session(tenant_id, id_digest, now, idle_seconds)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let (session, touch) = sessions::seen_session(&r, tenant_id, id_digest, now)?;
        if let Some(touch) = touch {
            touch.execute(&self.pool).await?;
        }
        Ok(Some(session))
    }

    async fn revoke_session(
        &self,
        tenant_id: &str,
        id_digest: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        sessions::revoke_session(tenant_id, id_digest, now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_login_transaction(
        &self,
        tenant_id: &str,
        id_digest: &str,
        request: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sessions::create_login_transaction(tenant_id, id_digest, request, now, expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn login_transaction(
        &self,
        tenant_id: &str,
        id_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<String>> {
        let row = sessions::login_transaction(tenant_id, id_digest, now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.text("request")))
    }

    async fn take_login_transaction(
        &self,
        tenant_id: &str,
        id_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<String>> {
        let row = sessions::take_login_transaction(tenant_id, id_digest, now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.text("request")))
    }

    async fn delete_login_transaction(&self, tenant_id: &str, id_digest: &str) -> StoreResult<()> {
        sessions::delete_login_transaction(tenant_id, id_digest)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn login_failures(
        &self,
        tenant_id: &str,
        user_id: &str,
        ip: &str,
    ) -> StoreResult<(i64, Option<Timestamp>)> {
        let row = sessions::login_failures(tenant_id, user_id, ip)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map_or((0, None), |r| {
            (r.int("failures"), r.int_or_null("blocked_until"))
        }))
    }

    async fn record_login_failure(
        &self,
        tenant_id: &str,
        user_id: &str,
        ip: &str,
        now: Timestamp,
        block_at: i64,
        block_until: Timestamp,
    ) -> StoreResult<()> {
        sessions::record_login_failure(tenant_id, user_id, ip, now, block_at, block_until)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn clear_login_failures(
        &self,
        tenant_id: &str,
        user_id: &str,
        ip: Option<&str>,
    ) -> StoreResult<()> {
        sessions::clear_login_failures(tenant_id, user_id, ip)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn user_blocks(
        &self,
        tenant_id: &str,
        user_id: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<(String, Timestamp)>> {
        let rows = sessions::user_blocks(tenant_id, user_id, now)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.text("ip"), r.int("blocked_until")))
            .collect())
    }
}

#[async_trait]
impl GrantStore for PostgresStore {
    async fn create_grant(
        &self,
        tenant_id: &str,
        grant_id: &str,
        client_id: &str,
        user_id: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()> {
        sessions::create_grant(tenant_id, grant_id, client_id, user_id, now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn grant_revoked(&self, tenant_id: &str, grant_id: &str) -> StoreResult<bool> {
        let row = sessions::grant_revoked(tenant_id, grant_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(sessions::revoked(row))
    }

    async fn revoke_grant(
        &self,
        tenant_id: &str,
        grant_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        sessions::revoke_grant(tenant_id, grant_id, reason, now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn revoke_user(
        &self,
        tenant_id: &str,
        user_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        // One statement: the grants and the sessions end together.
        Statement::new(
            "WITH g AS (UPDATE grants SET revoked_at = $1, revoke_reason = $2 \
               WHERE tenant_id = $3 AND user_id = $4 AND revoked_at IS NULL RETURNING 1) \
             UPDATE sessions SET revoked_at = $1 \
             WHERE tenant_id = $3 AND user_id = $4 AND revoked_at IS NULL",
        )
        .int(now)
        .text(reason)
        .text(tenant_id)
        .text(user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_code(
        &self,
        tenant_id: &str,
        code_digest: &str,
        grant_id: &str,
        request: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sessions::create_code(tenant_id, code_digest, grant_id, request, expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn code(
        &self,
        tenant_id: &str,
        code_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Redeem<(String, String)>> {
        let row = sessions::code(tenant_id, code_digest)
            .fetch_optional(&self.pool)
            .await?;
        Ok(sessions::unclaimed_code(row, now))
    }

    async fn redeem_code(
        &self,
        tenant_id: &str,
        code_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Redeem<(String, String)>> {
        let claimed = sessions::claim_code(tenant_id, code_digest, now)
            .fetch_optional(&self.pool)
            .await?;
        let used = match claimed {
            Some(_) => None,
            None => {
                sessions::used_code(tenant_id, code_digest)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        Ok(sessions::redeemed_code(claimed, used))
    }

    async fn create_refresh_token(
        &self,
        tenant_id: &str,
        token_digest: &str,
        row: &RefreshTokenRow,
    ) -> StoreResult<()> {
        sessions::create_refresh_token(tenant_id, token_digest, row)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn redeem_refresh_token(
        &self,
        tenant_id: &str,
        token_digest: &str,
        now: Timestamp,
        next: Option<(&str, &RefreshTokenRow)>,
        leeway: i64,
    ) -> StoreResult<Redeem<RefreshTokenRow>> {
        if let Some((next_digest, n)) = next {
            // One statement: a guarded UPDATE claims it (of two racing
            // requests exactly one gets the row back) and the successor is
            // inserted from the claimed row only.
            static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                format!(
                    "WITH claimed AS ( \
                       UPDATE refresh_tokens SET rotated_at = $15 \
                       WHERE token_digest = $16 AND tenant_id = $3 AND rotated_at IS NULL \
                         AND expires_at > $15 AND idle_expires_at > $15 \
                         AND EXISTS (SELECT 1 FROM grants g \
                           WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL) \
                       RETURNING {}), \
                     successor AS ( \
                       INSERT INTO {} \
                       SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
                       FROM claimed) \
                     SELECT * FROM claimed",
                    sessions::REFRESH_TOKEN_COLUMNS,
                    sessions::REFRESH_TOKEN_INSERT
                )
            });
            let claimed = sessions::refresh_token_values(
                Statement::new(SQL.as_str()),
                tenant_id,
                next_digest,
                n,
            )
            .int(now)
            .text(token_digest)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(r) = claimed {
                return Ok(Redeem::Fresh(super::sql::rows::refresh_token_row(&r, "")?));
            }
        }
        // Only read, or not claimed: tell a replay from a dead token.
        let row = sessions::refresh_token(tenant_id, token_digest)
            .fetch_optional(&self.pool)
            .await?;
        let outcome = sessions::unclaimed_token(row, now, next.is_some(), leeway)?;
        // Redeemed again within the leeway: its successor is stored too.
        if let (Redeem::Fresh(_), Some((next_digest, n))) = (&outcome, next) {
            self.create_refresh_token(tenant_id, next_digest, n).await?;
        }
        Ok(outcome)
    }

    async fn refresh_token_and_user(
        &self,
        tenant_id: &str,
        token_digest: &str,
        now: Timestamp,
        leeway: i64,
    ) -> StoreResult<Redeem<(RefreshTokenRow, Option<UserRow>)>> {
        let row = sessions::refresh_token_and_user(tenant_id, token_digest)
            .fetch_optional(&self.pool)
            .await?;
        sessions::token_and_user(row, now, leeway)
    }

    async fn refresh_token_grant(
        &self,
        tenant_id: &str,
        token_digest: &str,
    ) -> StoreResult<Option<(String, String)>> {
        let row = sessions::refresh_token_grant(tenant_id, token_digest)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.text("grant_id"), r.text("client_id"))))
    }
}
