//! SQLite: the Management API's users. Changes and deletions run on the
//! single writer, each in one transaction, and drop what the read cache
//! holds of the user (and of grants) once committed.

use async_trait::async_trait;
use sqlx::{Connection, Sqlite};

use super::SqliteStore;
use crate::errors::db;
use crate::sql::identities::identity_row;
use crate::sql::rows::{Columns, user_row};
use crate::sql::{tenants, users as sql};
use crate::*;

#[async_trait]
impl UserAdminStore for SqliteStore {
    async fn create_user(&self, tenant_id: &str, user: &UserRow) -> StoreResult<()> {
        let res = tenants::insert_user(tenant_id, user)
            .execute_or_conflict(&mut *self.writer().await?, tenants::user_taken(user))
            .await;
        self.cache.forget_user(tenant_id, &user.user_id);
        res.map(|_| ())
    }

    async fn identities_of(
        &self,
        tenant_id: &str,
        user_ids: &[String],
    ) -> StoreResult<Vec<IdentityRow>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sql::identities_of(tenant_id, user_ids)
            .fetch_all(&mut *self.reader().await)
            .await?;
        rows.iter().map(identity_row).collect()
    }

    async fn search_users(
        &self,
        tenant_id: &str,
        search: &UserSearch<'_>,
    ) -> StoreResult<(Vec<UserRow>, Option<i64>)> {
        let mut reader = self.reader().await;
        let rows = sql::search::<Sqlite>(tenant_id, search)
            .fetch_all(&mut *reader)
            .await?;
        let users = rows.iter().map(user_row).collect::<StoreResult<Vec<_>>>()?;
        let total = if search.count {
            let row = sql::count::<Sqlite>(tenant_id, search)
                .fetch_one(&mut *reader)
                .await?;
            Some(row.int("n"))
        } else {
            None
        };
        Ok((users, total))
    }

    async fn users_by_email(
        &self,
        tenant_id: &str,
        email: &str,
        limit: i64,
    ) -> StoreResult<Vec<UserRow>> {
        let rows = sql::users_by_email(tenant_id, email, limit)
            .fetch_all(&mut *self.reader().await)
            .await?;
        rows.iter().map(user_row).collect()
    }

    async fn update_user(
        &self,
        tenant_id: &str,
        previous: &UserRow,
        next: &UserRow,
        change: &UserChange<'_>,
    ) -> StoreResult<UserWrite> {
        // IMMEDIATE takes the write lock up front (see mod.rs).
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let now = next.updated_at;
        let done = sql::update_user(&mut *tx, tenant_id, previous, next, change, now).await?;
        if done != UserWrite::Done {
            // Dropped, the transaction rolls back.
            return Ok(done);
        }
        tx.commit().await.map_err(db)?;
        self.cache.forget_user(tenant_id, &next.user_id);
        if change.end_sessions.is_some() {
            self.cache.forget_grants();
        }
        Ok(done)
    }

    async fn delete_user(&self, tenant_id: &str, user_id: &str) -> StoreResult<bool> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        if !sql::delete_user(&mut *tx, tenant_id, user_id).await? {
            return Ok(false);
        }
        tx.commit().await.map_err(db)?;
        self.cache.forget_user(tenant_id, user_id);
        self.cache.forget_grants();
        Ok(true)
    }

    async fn unlink_connection(&self, tenant_id: &str, connection: &str) -> StoreResult<u64> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let gone = sql::unlink_connection(&mut *tx, tenant_id, connection).await?;
        tx.commit().await.map_err(db)?;
        Ok(gone)
    }
}
