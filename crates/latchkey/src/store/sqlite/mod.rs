//! The embedded default: SQLite in WAL mode, one file in the data directory.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Row};
use tokio::sync::MutexGuard;

use super::errors::{OpenError, db};
use super::*;

mod cache;
mod conns;
mod methods;
mod rotations;
mod sweep;
use crate::clock::{SharedClock, Timestamp};
use cache::ReadCache;
use conns::{Connections, Writer};
use rotations::{Rotation, Rotations};

/// Read-only connections beside the writer.
const READERS: usize = 8;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How the SQLite store behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How long a write waits for its turn at the writer, and then for a
    /// lock another process holds on the file, before it fails as
    /// unavailable (503).
    pub write_wait: Duration,
    /// The most pages (4 KiB each) the file may grow to (SQLite's
    /// `max_page_count`): past it, writes fail as they do on a full disk.
    /// `None`: as large as the disk allows.
    pub max_pages: Option<u64>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            write_wait: Duration::from_secs(5),
            max_pages: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    conns: Arc<Connections>,
    rotations: Arc<Rotations>,
    cache: Arc<ReadCache>,
}

impl SqliteStore {
    /// Opens (and migrates) the database at `path`. `clock` times the read
    /// cache's entries (see `cache.rs`).
    pub async fn open(path: &Path, clock: SharedClock) -> Result<Self, OpenError> {
        Self::open_with(path, clock, &SqliteOptions::default()).await
    }

    /// [`SqliteStore::open`] with `options`.
    pub async fn open_with(
        path: &Path,
        clock: SharedClock,
        options: &SqliteOptions,
    ) -> Result<Self, OpenError> {
        let mut opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(db)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.write_wait);
        if let Some(pages) = options.max_pages {
            opts = opts.pragma("max_page_count", pages.to_string());
        }
        let conns = Connections::open(&opts, READERS, options.write_wait).await?;
        MIGRATOR
            .run(&mut *conns.writer().await?)
            .await
            .map_err(OpenError::migrate)?;
        Ok(Self {
            conns: Arc::new(conns),
            rotations: Arc::default(),
            cache: Arc::new(ReadCache::new(clock)),
        })
    }

    /// The connection for writes, in turn and clean (see `conns.rs`).
    async fn writer(&self) -> StoreResult<Writer> {
        self.conns.writer().await
    }

    /// A connection for reads.
    async fn reader(&self) -> MutexGuard<'_, SqliteConnection> {
        self.conns.reader().await
    }
}

pub(super) fn json_vec(s: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn refresh_token_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<RefreshTokenRow> {
    refresh_token_row_as(r, "")
}

/// A refresh token from columns named with `prefix`.
pub(super) fn refresh_token_row_as(
    r: &sqlx::sqlite::SqliteRow,
    prefix: &str,
) -> StoreResult<RefreshTokenRow> {
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

fn tenant_row(r: &sqlx::sqlite::SqliteRow) -> TenantRow {
    TenantRow {
        id: r.get("id"),
        name: r.get("name"),
        config: r.get("config"),
        revision: r.get("revision"),
    }
}

fn user_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<UserRow> {
    let profile: String = r.get("profile");
    Ok(UserRow {
        user_id: r.get("user_id"),
        connection: r.get("connection"),
        email: r.get("email"),
        email_verified: r.get::<i64, _>("email_verified") != 0,
        password_hash: r.get("password_hash"),
        profile: serde_json::from_str(&profile).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        blocked: r.get::<i64, _>("blocked") != 0,
        last_password_reset: r.get("last_password_reset"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        signed_up: r.get::<i64, _>("signed_up") != 0,
        seeded_password: r.get("seeded_password"),
    })
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn tenant_by_domain(&self, domain: &str) -> StoreResult<Option<TenantRow>> {
        let row = sqlx::query(
            "SELECT t.id, t.name, t.config, t.revision FROM tenant_domains d \
             JOIN tenants t ON t.id = d.tenant_id WHERE d.domain = ?",
        )
        .bind(domain)
        .fetch_optional(&mut *self.reader().await)
        .await
        .map_err(db)?;
        Ok(row.as_ref().map(tenant_row))
    }

    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRow>> {
        let row = sqlx::query("SELECT id, name, config, revision FROM tenants WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *self.reader().await)
            .await
            .map_err(db)?;
        Ok(row.as_ref().map(tenant_row))
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantRow>> {
        let rows = sqlx::query("SELECT id, name, config, revision FROM tenants ORDER BY name")
            .fetch_all(&mut *self.reader().await)
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
        // IMMEDIATE takes the write lock up front: a read-then-write
        // transaction would otherwise fail under concurrency instead of waiting.
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let existing = sqlx::query("SELECT id, config FROM tenants WHERE name = ?")
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
                        "UPDATE tenants SET config = ?, revision = revision + 1, updated_at = ? WHERE id = ?",
                    )
                    .bind(config)
                    .bind(now)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await.map_err(db)?;
                }
                id
            }
            None => {
                sqlx::query(
                    "INSERT INTO tenants (id, name, config, revision, created_at, updated_at) \
                     VALUES (?, ?, ?, 1, ?, ?)",
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
        for d in domains {
            let owner = sqlx::query("SELECT tenant_id FROM tenant_domains WHERE domain = ?")
                .bind(d)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if let Some(owner) = owner {
                let owner: String = owner.get("tenant_id");
                if owner != id {
                    return Err(StoreError::Conflict(format!(
                        "domain {d} already belongs to another tenant"
                    )));
                }
            }
        }
        sqlx::query("DELETE FROM tenant_domains WHERE tenant_id = ?")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for (i, d) in domains.iter().enumerate() {
            sqlx::query(
                "INSERT INTO tenant_domains (domain, tenant_id, canonical) VALUES (?, ?, ?)",
            )
            .bind(d)
            .bind(&id)
            .bind(i64::from(i == 0))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(id)
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self, tenant_id: &str) -> StoreResult<Vec<SigningKeyRow>> {
        let rows = sqlx::query(
            "SELECT kid, sealed_private, public_jwk, created_at, superseded_at FROM signing_keys \
             WHERE tenant_id = ? ORDER BY created_at DESC, rowid DESC",
        )
        .bind(tenant_id)
        .fetch_all(&mut *self.reader().await)
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
        // IMMEDIATE takes the write lock up front: a read-then-write
        // transaction would otherwise fail under concurrency instead of waiting.
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        sqlx::query(
            "UPDATE signing_keys SET superseded_at = ? WHERE tenant_id = ? AND superseded_at IS NULL",
        )
        .bind(key.created_at)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await.map_err(db)?;
        sqlx::query(
            "INSERT INTO signing_keys (tenant_id, kid, sealed_private, public_jwk, created_at) \
             VALUES (?, ?, ?, ?, ?)",
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
        sqlx::query("DELETE FROM signing_keys WHERE tenant_id = ? AND kid = ? AND superseded_at IS NOT NULL")
            .bind(tenant_id)
            .bind(kid)
            .execute(&mut *self.writer().await?)
            .await.map_err(db)?;
        Ok(())
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&mut *self.reader().await)
            .await
            .map_err(db)?;
        Ok(row.map(|r| r.get("value")))
    }

    async fn meta_init(&self, key: &str, value: &str) -> StoreResult<String> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&mut *self.writer().await?)
            .await
            .map_err(db)?;
        self.meta_get(key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("meta {key} vanished")))
    }

    async fn probe_write(&self) -> StoreResult<()> {
        self.conns.probe().await
    }
}

const USER_COLUMNS: &str = "user_id, connection, email, email_verified, password_hash, profile, \
     blocked, last_password_reset, created_at, updated_at, signed_up, seeded_password";

#[async_trait]
impl UserStore for SqliteStore {
    async fn user_by_id(&self, tenant_id: &str, user_id: &str) -> StoreResult<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = ? AND user_id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(user_id)
            .fetch_optional(&mut *self.reader().await)
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
            "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = ? AND connection = ? AND email_lower = ?"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(connection)
            .bind(email.to_lowercase())
            .fetch_optional(&mut *self.reader().await)
            .await
            .map_err(db)?;
        row.as_ref().map(user_row).transpose()
    }

    async fn upsert_user(&self, tenant_id: &str, user: &UserRow) -> StoreResult<()> {
        let res = sqlx::query(
            "INSERT INTO users (tenant_id, user_id, connection, email, email_lower, email_verified, \
               password_hash, profile, blocked, last_password_reset, created_at, updated_at, \
               signed_up, seeded_password) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
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
        .bind(i64::from(user.email_verified))
        .bind(&user.password_hash)
        .bind(to_json(&user.profile))
        .bind(i64::from(user.blocked))
        .bind(user.last_password_reset)
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(i64::from(user.signed_up))
        .bind(&user.seeded_password)
        .execute(&mut *self.writer().await?)
        .await;
        self.cache.forget_user(tenant_id, &user.user_id);
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("the email {} is already used by another user", user.email),
            )),
            Err(e) => Err(db(e)),
        }
    }

    async fn count_users(&self, tenant_id: &str) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE tenant_id = ?")
            .bind(tenant_id)
            .fetch_one(&mut *self.reader().await)
            .await
            .map_err(db)?;
        Ok(row.get("n"))
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(
        &self,
        tenant_id: &str,
        id_digest: &str,
        s: &SessionRow,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_digest, tenant_id, user_id, auth_time, amr, created_at, last_seen, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id_digest)
        .bind(tenant_id)
        .bind(&s.user_id)
        .bind(s.auth_time)
        .bind(to_json(&s.amr))
        .bind(now)
        .bind(now)
        .bind(s.expires_at)
        .execute(&mut *self.writer().await?)
        .await.map_err(db)?;
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
             WHERE id_digest = ? AND tenant_id = ? AND revoked_at IS NULL AND expires_at > ? AND last_seen > ?",
        )
        .bind(id_digest)
        .bind(tenant_id)
        .bind(now)
        .bind(now - idle_seconds)
        .fetch_optional(&mut *self.reader().await)
        .await.map_err(db)?;
        // Activity is recorded at most once a minute, to keep reads cheap.
        if let Some(r) = &row
            && now - r.get::<i64, _>("last_seen") >= 60
        {
            sqlx::query("UPDATE sessions SET last_seen = ? WHERE id_digest = ? AND tenant_id = ?")
                .bind(now)
                .bind(id_digest)
                .bind(tenant_id)
                .execute(&mut *self.writer().await?)
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
        sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id_digest = ? AND tenant_id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(id_digest)
            .bind(tenant_id)
            .execute(&mut *self.writer().await?)
            .await.map_err(db)?;
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
            "INSERT INTO login_transactions (id_digest, tenant_id, request, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id_digest)
        .bind(tenant_id)
        .bind(request)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *self.writer().await?)
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
            "SELECT request FROM login_transactions WHERE id_digest = ? AND tenant_id = ? AND expires_at > ?",
        )
        .bind(id_digest)
        .bind(tenant_id)
        .bind(now)
        .fetch_optional(&mut *self.reader().await)
        .await.map_err(db)?;
        Ok(row.map(|r| r.get("request")))
    }

    async fn delete_login_transaction(&self, tenant_id: &str, id_digest: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_transactions WHERE id_digest = ? AND tenant_id = ?")
            .bind(id_digest)
            .bind(tenant_id)
            .execute(&mut *self.writer().await?)
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
            "SELECT failures, blocked_until FROM login_failures WHERE tenant_id = ? AND user_id = ? AND ip = ?",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(ip)
        .fetch_optional(&mut *self.reader().await)
        .await.map_err(db)?;
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
        sqlx::query(
            "INSERT INTO login_failures (tenant_id, user_id, ip, failures, blocked_until, updated_at) \
             VALUES (?, ?, ?, 1, CASE WHEN 1 >= ? THEN ? END, ?) \
             ON CONFLICT (tenant_id, user_id, ip) DO UPDATE SET failures = failures + 1, \
               blocked_until = CASE WHEN failures + 1 >= ? THEN ? ELSE blocked_until END, \
               updated_at = excluded.updated_at",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(ip)
        .bind(block_at)
        .bind(block_until)
        .bind(now)
        .bind(block_at)
        .bind(block_until)
        .execute(&mut *self.writer().await?)
        .await.map_err(db)?;
        Ok(())
    }

    async fn clear_login_failures(
        &self,
        tenant_id: &str,
        user_id: &str,
        ip: Option<&str>,
    ) -> StoreResult<()> {
        match ip {
            Some(ip) => sqlx::query(
                "DELETE FROM login_failures WHERE tenant_id = ? AND user_id = ? AND ip = ?",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(ip)
            .execute(&mut *self.writer().await?)
            .await
            .map_err(db)?,
            None => sqlx::query("DELETE FROM login_failures WHERE tenant_id = ? AND user_id = ?")
                .bind(tenant_id)
                .bind(user_id)
                .execute(&mut *self.writer().await?)
                .await
                .map_err(db)?,
        };
        Ok(())
    }
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn create_grant(
        &self,
        tenant_id: &str,
        grant_id: &str,
        client_id: &str,
        user_id: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO grants (id, tenant_id, client_id, user_id, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(grant_id)
            .bind(tenant_id)
            .bind(client_id)
            .bind(user_id)
            .bind(now)
            .execute(&mut *self.writer().await?)
            .await.map_err(db)?;
        // An unknown grant reads as revoked; it is known from now on.
        self.cache.forget_grant(tenant_id, grant_id);
        Ok(())
    }

    async fn grant_revoked(&self, tenant_id: &str, grant_id: &str) -> StoreResult<bool> {
        let ticket = match self.cache.grant_revoked(tenant_id, grant_id) {
            Ok(revoked) => return Ok(revoked),
            Err(ticket) => ticket,
        };
        let row = sqlx::query("SELECT revoked_at FROM grants WHERE id = ? AND tenant_id = ?")
            .bind(grant_id)
            .bind(tenant_id)
            .fetch_optional(&mut *self.reader().await)
            .await
            .map_err(db)?;
        // An unknown grant is treated as revoked: nothing vouches for it.
        let revoked = row.is_none_or(|r| r.get::<Option<i64>, _>("revoked_at").is_some());
        self.cache.put_grant(ticket, tenant_id, grant_id, revoked);
        Ok(revoked)
    }

    async fn revoke_grant(
        &self,
        tenant_id: &str,
        grant_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE grants SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND tenant_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(grant_id)
        .bind(tenant_id)
        .execute(&mut *self.writer().await?)
        .await.map_err(db)?;
        self.cache.forget_grant(tenant_id, grant_id);
        Ok(())
    }

    async fn revoke_user(
        &self,
        tenant_id: &str,
        user_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE grants SET revoked_at = ?, revoke_reason = ? \
             WHERE tenant_id = ? AND user_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(tenant_id)
        .bind(user_id)
        .execute(&mut *self.writer().await?)
        .await
        .map_err(db)?;
        self.cache.forget_grants();
        sqlx::query(
            "UPDATE sessions SET revoked_at = ? \
             WHERE tenant_id = ? AND user_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(tenant_id)
        .bind(user_id)
        .execute(&mut *self.writer().await?)
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
            "INSERT INTO auth_codes (code_digest, grant_id, tenant_id, request, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(code_digest)
        .bind(grant_id)
        .bind(tenant_id)
        .bind(request)
        .bind(expires_at)
        .execute(&mut *self.writer().await?)
        .await.map_err(db)?;
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
             WHERE code_digest = ? AND tenant_id = ?",
        )
        .bind(code_digest)
        .bind(tenant_id)
        .fetch_optional(&mut *self.reader().await)
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
        let claimed = sqlx::query(
            "UPDATE auth_codes SET used_at = ? WHERE code_digest = ? AND tenant_id = ? \
             AND used_at IS NULL AND expires_at > ? RETURNING grant_id, request",
        )
        .bind(now)
        .bind(code_digest)
        .bind(tenant_id)
        .bind(now)
        .fetch_optional(&mut *self.writer().await?)
        .await
        .map_err(db)?;
        if let Some(r) = claimed {
            return Ok(Redeem::Fresh((r.get("grant_id"), r.get("request"))));
        }
        let used = sqlx::query(
            "SELECT grant_id FROM auth_codes WHERE code_digest = ? AND tenant_id = ? AND used_at IS NOT NULL",
        )
        .bind(code_digest)
        .bind(tenant_id)
        .fetch_optional(&mut *self.reader().await)
        .await.map_err(db)?;
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
            "INSERT INTO refresh_tokens (token_digest, grant_id, tenant_id, client_id, user_id, scope, audience, \
               auth_time, amr, created_at, expires_at, idle_expires_at, dpop_jkt, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&mut *self.writer().await?)
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
            // Claimed and its successor stored in one step, together with
            // the rotations queued beside it (`rotations.rs`).
            let rotation = Rotation {
                now,
                tenant_id: tenant_id.to_string(),
                token_digest: token_digest.to_string(),
                next_digest: next_digest.to_string(),
                next: n.clone(),
            };
            if let Some(row) = self.rotations.rotate(&self.conns, rotation).await? {
                return Ok(Redeem::Fresh(row));
            }
        }
        // Only read, or not claimed: tell a replay from a dead token.
        let row = sqlx::query(
            "SELECT r.grant_id, r.client_id, r.user_id, r.scope, r.audience, r.auth_time, r.amr, r.created_at, \
               r.expires_at, r.idle_expires_at, r.rotated_at, r.dpop_jkt, r.host, g.revoked_at \
             FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
             WHERE r.token_digest = ? AND r.tenant_id = ?",
        )
        .bind(token_digest)
        .bind(tenant_id)
        .fetch_optional(&mut *self.reader().await)
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
                 WHERE r.token_digest = ? AND r.tenant_id = ?",
                refresh_token_and_user_columns(USER_COLUMNS)
            )
        });
        let row = sqlx::query(sqlx::AssertSqlSafe(SQL.as_str()))
            .bind(token_digest)
            .bind(tenant_id)
            .fetch_optional(&mut *self.reader().await)
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
            "SELECT grant_id, client_id FROM refresh_tokens WHERE token_digest = ? AND tenant_id = ?",
        )
        .bind(token_digest)
        .bind(tenant_id)
        .fetch_optional(&mut *self.reader().await)
        .await.map_err(db)?;
        Ok(row.map(|r| (r.get("grant_id"), r.get("client_id"))))
    }
}
