//! The embedded default: SQLite in WAL mode, one file in the data directory.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Sqlite};
use tokio::sync::MutexGuard;

use super::errors::{OpenError, db};
use super::sql::rows::{Columns, signing_key_row, tenant_row, user_row};
use super::sql::{sessions, tenants};
use super::*;

mod accounts;
mod cache;
mod conns;
mod identities;
mod imports;
mod methods;
mod push;
mod rotations;
mod sweep;
mod tickets;
mod users;
use cache::ReadCache;
use conns::{Connections, Writer};
use latchkey_core::clock::{SharedClock, Timestamp};
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

#[async_trait]
impl crate::sql::Runs for SqliteStore {
    type Row = sqlx::sqlite::SqliteRow;

    async fn read_optional(&self, st: crate::sql::Statement<'_>) -> StoreResult<Option<Self::Row>> {
        st.fetch_optional(&mut *self.reader().await).await
    }

    async fn read_all(&self, st: crate::sql::Statement<'_>) -> StoreResult<Vec<Self::Row>> {
        st.fetch_all(&mut *self.reader().await).await
    }

    async fn write(&self, st: crate::sql::Statement<'_>) -> StoreResult<u64> {
        st.execute(&mut *self.writer().await?).await
    }

    async fn write_returning(
        &self,
        st: crate::sql::Statement<'_>,
    ) -> StoreResult<Option<Self::Row>> {
        st.fetch_optional(&mut *self.writer().await?).await
    }
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn tenant_by_domain(&self, domain: &str) -> StoreResult<Option<TenantRow>> {
        let row = tenants::tenant_by_domain(domain)
            .fetch_optional(&mut *self.reader().await)
            .await?;
        Ok(row.as_ref().map(tenant_row))
    }

    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRow>> {
        let row = tenants::tenant_by_name(name)
            .fetch_optional(&mut *self.reader().await)
            .await?;
        Ok(row.as_ref().map(tenant_row))
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantRow>> {
        let rows = tenants::list_tenants::<Sqlite>()
            .fetch_all(&mut *self.reader().await)
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
        // IMMEDIATE takes the write lock up front: a read-then-write
        // transaction would otherwise fail under concurrency instead of waiting.
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
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
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let done =
            tenants::replace_tenant_config(&mut *tx, name, revision, config, domains, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(done)
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self, tenant_id: &str) -> StoreResult<Vec<SigningKeyRow>> {
        let rows = tenants::signing_keys::<Sqlite>(tenant_id)
            .fetch_all(&mut *self.reader().await)
            .await?;
        Ok(rows.iter().map(signing_key_row).collect())
    }

    async fn add_signing_key(&self, tenant_id: &str, key: &SigningKeyRow) -> StoreResult<()> {
        // IMMEDIATE takes the write lock up front (see `upsert_tenant`).
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        tenants::add_signing_key(&mut *tx, tenant_id, key).await?;
        tx.commit().await.map_err(db)
    }

    async fn delete_signing_key(&self, tenant_id: &str, kid: &str) -> StoreResult<()> {
        tenants::delete_signing_key(tenant_id, kid)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<String>> {
        let row = tenants::meta_get(key)
            .fetch_optional(&mut *self.reader().await)
            .await?;
        Ok(row.map(|r| r.text("value")))
    }

    async fn meta_init(&self, key: &str, value: &str) -> StoreResult<String> {
        tenants::meta_init(key, value)
            .execute(&mut *self.writer().await?)
            .await?;
        self.meta_get(key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("meta {key} vanished")))
    }

    async fn probe_write(&self) -> StoreResult<()> {
        self.conns.probe().await
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn user_by_id(&self, tenant_id: &str, user_id: &str) -> StoreResult<Option<UserRow>> {
        let row = tenants::user_by_id(tenant_id, user_id)
            .fetch_optional(&mut *self.reader().await)
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
            .fetch_optional(&mut *self.reader().await)
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
            .fetch_optional(&mut *self.reader().await)
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn upsert_user(&self, tenant_id: &str, user: &UserRow) -> StoreResult<()> {
        let res = tenants::upsert_user(tenant_id, user)
            .execute_or_conflict(&mut *self.writer().await?, tenants::email_taken(user))
            .await;
        self.cache.forget_user(tenant_id, &user.user_id);
        res.map(|_| ())
    }

    async fn count_users(&self, tenant_id: &str) -> StoreResult<i64> {
        let row = tenants::count_users(tenant_id)
            .fetch_one(&mut *self.reader().await)
            .await?;
        Ok(row.int("n"))
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
        sessions::create_session(tenant_id, id_digest, s, now)
            .execute(&mut *self.writer().await?)
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
            .fetch_optional(&mut *self.reader().await)
            .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let (session, touch) = sessions::seen_session(&r, tenant_id, id_digest, now)?;
        if let Some(touch) = touch {
            touch.execute(&mut *self.writer().await?).await?;
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
            .execute(&mut *self.writer().await?)
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
            .execute(&mut *self.writer().await?)
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
            .fetch_optional(&mut *self.reader().await)
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
            .fetch_optional(&mut *self.writer().await?)
            .await?;
        Ok(row.map(|r| r.text("request")))
    }

    async fn delete_login_transaction(&self, tenant_id: &str, id_digest: &str) -> StoreResult<()> {
        sessions::delete_login_transaction(tenant_id, id_digest)
            .execute(&mut *self.writer().await?)
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
            .fetch_optional(&mut *self.reader().await)
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
            .execute(&mut *self.writer().await?)
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
            .execute(&mut *self.writer().await?)
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
            .fetch_all(&mut *self.reader().await)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.text("ip"), r.int("blocked_until")))
            .collect())
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
        sessions::create_grant(tenant_id, grant_id, client_id, user_id, now)
            .execute(&mut *self.writer().await?)
            .await?;
        // An unknown grant reads as revoked; it is known from now on.
        self.cache.forget_grant(tenant_id, grant_id);
        Ok(())
    }

    async fn grant_revoked(&self, tenant_id: &str, grant_id: &str) -> StoreResult<bool> {
        let ticket = match self.cache.grant_revoked(tenant_id, grant_id) {
            Ok(revoked) => return Ok(revoked),
            Err(ticket) => ticket,
        };
        let row = sessions::grant_revoked(tenant_id, grant_id)
            .fetch_optional(&mut *self.reader().await)
            .await?;
        let revoked = sessions::revoked(row);
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
        sessions::revoke_grant(tenant_id, grant_id, reason, now)
            .execute(&mut *self.writer().await?)
            .await?;
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
        // Two statements (SQLite has no UPDATE in a WITH clause), each on
        // the writer in its turn.
        sessions::revoke_user_grants(tenant_id, user_id, reason, now)
            .execute(&mut *self.writer().await?)
            .await?;
        self.cache.forget_grants();
        sessions::revoke_user_sessions(tenant_id, user_id, now)
            .execute(&mut *self.writer().await?)
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
            .execute(&mut *self.writer().await?)
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
            .fetch_optional(&mut *self.reader().await)
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
            .fetch_optional(&mut *self.writer().await?)
            .await?;
        let used = match claimed {
            Some(_) => None,
            None => {
                sessions::used_code(tenant_id, code_digest)
                    .fetch_optional(&mut *self.reader().await)
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
            .execute(&mut *self.writer().await?)
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
        let row = sessions::refresh_token(tenant_id, token_digest)
            .fetch_optional(&mut *self.reader().await)
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
            .fetch_optional(&mut *self.reader().await)
            .await?;
        sessions::token_and_user(row, now, leeway)
    }

    async fn refresh_token_grant(
        &self,
        tenant_id: &str,
        token_digest: &str,
    ) -> StoreResult<Option<(String, String)>> {
        let row = sessions::refresh_token_grant(tenant_id, token_digest)
            .fetch_optional(&mut *self.reader().await)
            .await?;
        Ok(row.map(|r| (r.text("grant_id"), r.text("client_id"))))
    }
}
