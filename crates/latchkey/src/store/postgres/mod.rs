//! PostgreSQL, for several server processes sharing one database.
//!
//! Behaves exactly like the SQLite backend; where SQLite gets atomicity from
//! its single writer, this backend gets it from guarded statements
//! (`UPDATE … WHERE used_at IS NULL`, `DELETE` deciding a winner, upserts) and,
//! for read-then-write sequences, from transaction-scoped advisory locks.

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};

use super::errors::{OpenError, db};
use super::*;

mod methods;
mod sweep;
use crate::clock::Timestamp;

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
    sqlx::query(
        "SELECT pg_advisory_xact_lock(\
           hashtextextended(coalesce(current_schema(), '') || ':' || $1, 0))",
    )
    .bind(key)
    .execute(tx)
    .await
    .map_err(db)?;
    Ok(())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(e) if e.is_unique_violation())
}

fn json_vec(s: &str) -> StoreResult<Vec<String>> {
    json(s)
}

fn json<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn refresh_token_row(r: &PgRow) -> StoreResult<RefreshTokenRow> {
    refresh_token_row_as(r, "")
}

/// A refresh token from columns named with `prefix`.
fn refresh_token_row_as(r: &PgRow, prefix: &str) -> StoreResult<RefreshTokenRow> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(RefreshTokenRow {
        grant_id: r.get(c("grant_id").as_str()),
        client_id: r.get(c("client_id").as_str()),
        user_id: r.get(c("user_id").as_str()),
        scope: r.get(c("scope").as_str()),
        audience: r.get(c("audience").as_str()),
        auth_time: r.get(c("auth_time").as_str()),
        amr: json_vec(r.get::<&str, _>(c("amr").as_str()))?,
        created_at: r.get(c("created_at").as_str()),
        expires_at: r.get(c("expires_at").as_str()),
        idle_expires_at: r.get(c("idle_expires_at").as_str()),
        rotated_at: r.get(c("rotated_at").as_str()),
        dpop_jkt: r.get(c("dpop_jkt").as_str()),
        host: r.get(c("host").as_str()),
    })
}

fn tenant_row(r: &PgRow) -> TenantRow {
    TenantRow {
        id: r.get("id"),
        name: r.get("name"),
        config: r.get("config"),
        revision: r.get("revision"),
    }
}

fn user_row(r: &PgRow) -> StoreResult<UserRow> {
    Ok(UserRow {
        user_id: r.get("user_id"),
        connection: r.get("connection"),
        email: r.get("email"),
        email_verified: r.get("email_verified"),
        password_hash: r.get("password_hash"),
        profile: json(r.get::<&str, _>("profile"))?,
        blocked: r.get("blocked"),
        last_password_reset: r.get("last_password_reset"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        signed_up: r.get("signed_up"),
        seeded_password: r.get("seeded_password"),
    })
}

#[async_trait]
impl TenantStore for PostgresStore {
    async fn tenant_by_domain(&self, domain: &str) -> StoreResult<Option<TenantRow>> {
        let row = sqlx::query(
            "SELECT t.id, t.name, t.config, t.revision FROM tenant_domains d \
             JOIN tenants t ON t.id = d.tenant_id WHERE d.domain = $1",
        )
        .bind(domain)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.as_ref().map(tenant_row))
    }

    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRow>> {
        let row = sqlx::query("SELECT id, name, config, revision FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.as_ref().map(tenant_row))
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantRow>> {
        // COLLATE "C": byte order, as SQLite's default BINARY collation.
        let rows = sqlx::query(
            "SELECT id, name, config, revision FROM tenants ORDER BY name COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
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
        let existing = sqlx::query("SELECT id, config FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let id = match existing {
            Some(row) => {
                let id: String = row.get("id");
                let old: String = row.get("config");
                if old != config {
                    sqlx::query(
                        "UPDATE tenants SET config = $1, revision = revision + 1, updated_at = $2 \
                         WHERE id = $3",
                    )
                    .bind(config)
                    .bind(now)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                }
                id
            }
            None => {
                sqlx::query(
                    "INSERT INTO tenants (id, name, config, revision, created_at, updated_at) \
                     VALUES ($1, $2, $3, 1, $4, $5)",
                )
                .bind(new_id)
                .bind(name)
                .bind(config)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                new_id.to_string()
            }
        };
        let taken =
            |d: &str| StoreError::Conflict(format!("domain {d} already belongs to another tenant"));
        for d in domains {
            let owner = sqlx::query("SELECT tenant_id FROM tenant_domains WHERE domain = $1")
                .bind(d)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if let Some(owner) = owner {
                let owner: String = owner.get("tenant_id");
                if owner != id {
                    return Err(taken(d));
                }
            }
        }
        sqlx::query("DELETE FROM tenant_domains WHERE tenant_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for (i, d) in domains.iter().enumerate() {
            let res = sqlx::query(
                "INSERT INTO tenant_domains (domain, tenant_id, canonical) VALUES ($1, $2, $3)",
            )
            .bind(d)
            .bind(&id)
            .bind(i == 0)
            .execute(&mut *tx)
            .await;
            match res {
                Ok(_) => {}
                // Another tenant claimed it concurrently (its transaction
                // committed after our check above).
                Err(e) if is_unique_violation(&e) => return Err(taken(d)),
                Err(e) => return Err(db(e)),
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(id)
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn signing_keys(&self, tenant_id: &str) -> StoreResult<Vec<SigningKeyRow>> {
        let rows = sqlx::query(
            "SELECT kid, sealed_private, public_jwk, created_at, superseded_at FROM signing_keys \
             WHERE tenant_id = $1 ORDER BY created_at DESC, seq DESC",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| SigningKeyRow {
                kid: r.get("kid"),
                sealed_private: r.get("sealed_private"),
                public_jwk: r.get("public_jwk"),
                created_at: r.get("created_at"),
                superseded_at: r.get("superseded_at"),
            })
            .collect())
    }

    async fn add_signing_key(&self, tenant_id: &str, key: &SigningKeyRow) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Without it, two concurrent rotations would each supersede only the
        // keys committed before they started, leaving two current keys.
        advisory_lock(&mut tx, &format!("latchkey:keys:{tenant_id}")).await?;
        sqlx::query(
            "UPDATE signing_keys SET superseded_at = $1 WHERE tenant_id = $2 AND superseded_at IS NULL",
        )
        .bind(key.created_at)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await.map_err(db)?;
        sqlx::query(
            "INSERT INTO signing_keys (tenant_id, kid, sealed_private, public_jwk, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant_id)
        .bind(&key.kid)
        .bind(&key.sealed_private)
        .bind(&key.public_jwk)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn delete_signing_key(&self, tenant_id: &str, kid: &str) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM signing_keys WHERE tenant_id = $1 AND kid = $2 AND superseded_at IS NOT NULL",
        )
        .bind(tenant_id)
        .bind(kid)
        .execute(&self.pool)
        .await.map_err(db)?;
        Ok(())
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.map(|r| r.get("value")))
    }

    async fn meta_init(&self, key: &str, value: &str) -> StoreResult<String> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        self.meta_get(key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("meta {key} vanished")))
    }

    async fn probe_write(&self) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE meta SET value = value WHERE key = 'master_key_check'")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.rollback().await.map_err(db)?;
        Ok(())
    }
}

const USER_COLUMNS: &str = "user_id, connection, email, email_verified, password_hash, profile, \
     blocked, last_password_reset, created_at, updated_at, signed_up, seeded_password";

#[async_trait]
impl UserStore for PostgresStore {
    async fn user_by_id(&self, tenant_id: &str, user_id: &str) -> StoreResult<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND user_id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(user_row).transpose()
    }

    async fn user_by_email(
        &self,
        tenant_id: &str,
        connection: &str,
        email: &str,
    ) -> StoreResult<Option<UserRow>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE tenant_id = $1 AND connection = $2 AND email_lower = $3"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(connection)
            .bind(email.to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(user_row).transpose()
    }

    async fn upsert_user(&self, tenant_id: &str, user: &UserRow) -> StoreResult<()> {
        let res = sqlx::query(
            "INSERT INTO users (tenant_id, user_id, connection, email, email_lower, email_verified, \
               password_hash, profile, blocked, last_password_reset, created_at, updated_at, \
               signed_up, seeded_password) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET connection = excluded.connection, \
               email = excluded.email, email_lower = excluded.email_lower, \
               email_verified = excluded.email_verified, password_hash = excluded.password_hash, \
               profile = excluded.profile, blocked = excluded.blocked, \
               last_password_reset = excluded.last_password_reset, updated_at = excluded.updated_at, \
               signed_up = excluded.signed_up, seeded_password = excluded.seeded_password",
        )
        .bind(tenant_id)
        .bind(&user.user_id)
        .bind(&user.connection)
        .bind(&user.email)
        .bind(user.email.to_lowercase())
        .bind(user.email_verified)
        .bind(&user.password_hash)
        .bind(to_json(&user.profile))
        .bind(user.blocked)
        .bind(user.last_password_reset)
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(user.signed_up)
        .bind(&user.seeded_password)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "the email {} is already used by another user",
                user.email
            ))),
            Err(e) => Err(db(e)),
        }
    }

    async fn count_users(&self, tenant_id: &str) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(row.get("n"))
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
        sqlx::query(
            "INSERT INTO sessions (id_digest, tenant_id, user_id, auth_time, amr, created_at, \
               last_seen, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id_digest)
        .bind(tenant_id)
        .bind(&s.user_id)
        .bind(s.auth_time)
        .bind(to_json(&s.amr))
        .bind(now)
        .bind(now)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn session(
        &self,
        tenant_id: &str,
        id_digest: &str,
        now: Timestamp,
        idle_seconds: i64,
    ) -> StoreResult<Option<SessionRow>> {
        let row = sqlx::query(
            "SELECT user_id, auth_time, amr, expires_at, last_seen FROM sessions \
             WHERE id_digest = $1 AND tenant_id = $2 AND revoked_at IS NULL AND expires_at > $3 \
               AND last_seen > $4",
        )
        .bind(id_digest)
        .bind(tenant_id)
        .bind(now)
        .bind(now - idle_seconds)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        // Activity is recorded at most once a minute, to keep reads cheap.
        if let Some(r) = &row
            && now - r.get::<i64, _>("last_seen") >= 60
        {
            sqlx::query(
                "UPDATE sessions SET last_seen = $1 WHERE id_digest = $2 AND tenant_id = $3",
            )
            .bind(now)
            .bind(id_digest)
            .bind(tenant_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        }
        row.map(|r| {
            Ok(SessionRow {
                user_id: r.get("user_id"),
                auth_time: r.get("auth_time"),
                amr: json_vec(r.get::<&str, _>("amr"))?,
                expires_at: r.get("expires_at"),
            })
        })
        .transpose()
    }

    async fn revoke_session(
        &self,
        tenant_id: &str,
        id_digest: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 \
             WHERE id_digest = $2 AND tenant_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id_digest)
        .bind(tenant_id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
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
        sqlx::query(
            "INSERT INTO login_transactions (id_digest, tenant_id, request, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_digest)
        .bind(tenant_id)
        .bind(request)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await.map_err(db)?;
        Ok(())
    }

    async fn login_transaction(
        &self,
        tenant_id: &str,
        id_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<String>> {
        let row = sqlx::query(
            "SELECT request FROM login_transactions \
             WHERE id_digest = $1 AND tenant_id = $2 AND expires_at > $3",
        )
        .bind(id_digest)
        .bind(tenant_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.map(|r| r.get("request")))
    }

    async fn delete_login_transaction(&self, tenant_id: &str, id_digest: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_transactions WHERE id_digest = $1 AND tenant_id = $2")
            .bind(id_digest)
            .bind(tenant_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn login_failures(
        &self,
        tenant_id: &str,
        user_id: &str,
        ip: &str,
    ) -> StoreResult<(i64, Option<Timestamp>)> {
        let row = sqlx::query(
            "SELECT failures, blocked_until FROM login_failures \
             WHERE tenant_id = $1 AND user_id = $2 AND ip = $3",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(ip)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.map_or((0, None), |r| (r.get("failures"), r.get("blocked_until"))))
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
        // One statement: concurrent failures each count (the conflicting
        // insert waits for the row, then updates the committed count).
        sqlx::query(
            "INSERT INTO login_failures AS f (tenant_id, user_id, ip, failures, blocked_until, updated_at) \
             VALUES ($1, $2, $3, 1, CASE WHEN 1 >= $4 THEN $5 END, $6) \
             ON CONFLICT (tenant_id, user_id, ip) DO UPDATE SET failures = f.failures + 1, \
               blocked_until = CASE WHEN f.failures + 1 >= $4 THEN $5 ELSE f.blocked_until END, \
               updated_at = excluded.updated_at",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(ip)
        .bind(block_at)
        .bind(block_until)
        .bind(now)
        .execute(&self.pool)
        .await.map_err(db)?;
        Ok(())
    }

    async fn clear_login_failures(
        &self,
        tenant_id: &str,
        user_id: &str,
        ip: Option<&str>,
    ) -> StoreResult<()> {
        // A NULL ip matches every IP of the user.
        sqlx::query(
            "DELETE FROM login_failures \
             WHERE tenant_id = $1 AND user_id = $2 AND ($3::TEXT IS NULL OR ip = $3)",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(ip)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
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
        sqlx::query(
            "INSERT INTO grants (id, tenant_id, client_id, user_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(grant_id)
        .bind(tenant_id)
        .bind(client_id)
        .bind(user_id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn grant_revoked(&self, tenant_id: &str, grant_id: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT revoked_at FROM grants WHERE id = $1 AND tenant_id = $2")
            .bind(grant_id)
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        // An unknown grant is treated as revoked: nothing vouches for it.
        Ok(row.is_none_or(|r| r.get::<Option<i64>, _>("revoked_at").is_some()))
    }

    async fn revoke_grant(
        &self,
        tenant_id: &str,
        grant_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE grants SET revoked_at = $1, revoke_reason = $2 \
             WHERE id = $3 AND tenant_id = $4 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(grant_id)
        .bind(tenant_id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
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
        sqlx::query(
            "WITH g AS (UPDATE grants SET revoked_at = $1, revoke_reason = $2 \
               WHERE tenant_id = $3 AND user_id = $4 AND revoked_at IS NULL RETURNING 1) \
             UPDATE sessions SET revoked_at = $1 \
             WHERE tenant_id = $3 AND user_id = $4 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(tenant_id)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
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
        sqlx::query(
            "INSERT INTO auth_codes (code_digest, grant_id, tenant_id, request, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(code_digest)
        .bind(grant_id)
        .bind(tenant_id)
        .bind(request)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn code(
        &self,
        tenant_id: &str,
        code_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Redeem<(String, String)>> {
        let row = sqlx::query(
            "SELECT grant_id, request, used_at, expires_at FROM auth_codes \
             WHERE code_digest = $1 AND tenant_id = $2",
        )
        .bind(code_digest)
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(match row {
            None => Redeem::Missing,
            Some(r) => unclaimed_code(
                r.get("grant_id"),
                r.get("request"),
                r.get::<Option<i64>, _>("used_at").is_some(),
                r.get("expires_at"),
                now,
            ),
        })
    }

    async fn redeem_code(
        &self,
        tenant_id: &str,
        code_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Redeem<(String, String)>> {
        // Concurrent claims queue on the row lock; the ones after the winner
        // re-check `used_at IS NULL` against its committed update and match
        // nothing.
        let claimed = sqlx::query(
            "UPDATE auth_codes SET used_at = $1 WHERE code_digest = $2 AND tenant_id = $3 \
             AND used_at IS NULL AND expires_at > $1 RETURNING grant_id, request",
        )
        .bind(now)
        .bind(code_digest)
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if let Some(r) = claimed {
            return Ok(Redeem::Fresh((r.get("grant_id"), r.get("request"))));
        }
        let used = sqlx::query(
            "SELECT grant_id FROM auth_codes \
             WHERE code_digest = $1 AND tenant_id = $2 AND used_at IS NOT NULL",
        )
        .bind(code_digest)
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(match used {
            Some(r) => Redeem::Replayed {
                grant_id: r.get("grant_id"),
            },
            None => Redeem::Missing,
        })
    }

    async fn create_refresh_token(
        &self,
        tenant_id: &str,
        token_digest: &str,
        row: &RefreshTokenRow,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_digest, grant_id, tenant_id, client_id, user_id, scope, \
               audience, auth_time, amr, created_at, expires_at, idle_expires_at, dpop_jkt, host) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(token_digest)
        .bind(&row.grant_id)
        .bind(tenant_id)
        .bind(&row.client_id)
        .bind(&row.user_id)
        .bind(&row.scope)
        .bind(&row.audience)
        .bind(row.auth_time)
        .bind(to_json(&row.amr))
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(row.idle_expires_at)
        .bind(&row.dpop_jkt)
        .bind(&row.host)
        .execute(&self.pool)
        .await.map_err(db)?;
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
            let claimed = sqlx::query(
                "WITH claimed AS ( \
                   UPDATE refresh_tokens SET rotated_at = $1 WHERE token_digest = $2 AND tenant_id = $3 \
                     AND rotated_at IS NULL AND expires_at > $1 AND idle_expires_at > $1 \
                     AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL) \
                     RETURNING grant_id, client_id, user_id, scope, audience, auth_time, amr, created_at, \
                       expires_at, idle_expires_at, rotated_at, dpop_jkt, host), \
                 successor AS ( \
                   INSERT INTO refresh_tokens (token_digest, grant_id, tenant_id, client_id, user_id, scope, \
                     audience, auth_time, amr, created_at, expires_at, idle_expires_at, dpop_jkt, host) \
                   SELECT $4, $5, $3, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16 FROM claimed) \
                 SELECT * FROM claimed",
            )
            .bind(now)
            .bind(token_digest)
            .bind(tenant_id)
            .bind(next_digest)
            .bind(&n.grant_id)
            .bind(&n.client_id)
            .bind(&n.user_id)
            .bind(&n.scope)
            .bind(&n.audience)
            .bind(n.auth_time)
            .bind(to_json(&n.amr))
            .bind(n.created_at)
            .bind(n.expires_at)
            .bind(n.idle_expires_at)
            .bind(&n.dpop_jkt)
            .bind(&n.host)
            .fetch_optional(&self.pool)
            .await.map_err(db)?;
            if let Some(r) = claimed {
                return Ok(Redeem::Fresh(refresh_token_row(&r)?));
            }
        }
        // Only read, or not claimed: tell a replay from a dead token.
        let row = sqlx::query(
            "SELECT r.grant_id, r.client_id, r.user_id, r.scope, r.audience, r.auth_time, r.amr, \
               r.created_at, r.expires_at, r.idle_expires_at, r.rotated_at, r.dpop_jkt, r.host, g.revoked_at \
             FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
             WHERE r.token_digest = $1 AND r.tenant_id = $2",
        )
        .bind(token_digest)
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await.map_err(db)?;
        let Some(r) = row else {
            return Ok(Redeem::Missing);
        };
        let revoked = r.get::<Option<i64>, _>("revoked_at").is_some();
        let outcome =
            unclaimed_refresh_token(refresh_token_row(&r)?, revoked, now, next.is_some(), leeway);
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
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
                 LEFT JOIN users u ON u.tenant_id = r.tenant_id AND u.user_id = r.user_id \
                 WHERE r.token_digest = $1 AND r.tenant_id = $2",
                refresh_token_and_user_columns(USER_COLUMNS)
            )
        });
        let row = sqlx::query(sqlx::AssertSqlSafe(SQL.as_str()))
            .bind(token_digest)
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let Some(r) = row else {
            return Ok(Redeem::Missing);
        };
        let revoked = r.get::<Option<i64>, _>("rt_revoked_at").is_some();
        let user = match r.get::<Option<String>, _>("user_id") {
            Some(_) => Some(user_row(&r)?),
            None => None,
        };
        let token = refresh_token_row_as(&r, "rt_")?;
        Ok(unclaimed_refresh_token(token, revoked, now, false, leeway).map(|t| (t, user)))
    }

    async fn refresh_token_grant(
        &self,
        tenant_id: &str,
        token_digest: &str,
    ) -> StoreResult<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT grant_id, client_id FROM refresh_tokens WHERE token_digest = $1 AND tenant_id = $2",
        )
        .bind(token_digest)
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await.map_err(db)?;
        Ok(row.map(|r| (r.get("grant_id"), r.get("client_id"))))
    }
}
