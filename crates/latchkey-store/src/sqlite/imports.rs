//! SQLite: imported users, each in one transaction on the single writer.

use async_trait::async_trait;
use sqlx::Connection;

use super::SqliteStore;
use crate::errors::db;
use crate::sql::imports as sql;
use crate::*;

#[async_trait]
impl ImportStore for SqliteStore {
    async fn import_user(
        &self,
        tenant_id: &str,
        user: &UserRow,
        methods: &[MethodRow],
    ) -> StoreResult<Result<(), ImportRefusal>> {
        // IMMEDIATE takes the write lock up front (see mod.rs).
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let done = sql::import_user(&mut *tx, tenant_id, user, methods).await?;
        if done.is_err() {
            // Dropped, the transaction rolls back.
            return Ok(done);
        }
        tx.commit().await.map_err(db)?;
        self.cache.forget_user(tenant_id, &user.user_id);
        Ok(done)
    }

    async fn rehash_password(
        &self,
        tenant_id: &str,
        user_id: &str,
        previous: &str,
        hash: &str,
    ) -> StoreResult<bool> {
        let changed = sql::rehash_password(tenant_id, user_id, previous, hash)
            .execute(&mut *self.writer().await?)
            .await?;
        self.cache.forget_user(tenant_id, user_id);
        Ok(changed == 1)
    }
}
