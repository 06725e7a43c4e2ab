//! PostgreSQL: imported users, each in one transaction under the user's
//! lock; a racing import of the same address meets the unique keys.

use async_trait::async_trait;

use super::methods::user_lock;
use super::{PostgresStore, advisory_lock};
use crate::errors::db;
use crate::sql::imports as sql;
use crate::*;

#[async_trait]
impl ImportStore for PostgresStore {
    async fn import_user(
        &self,
        tenant_id: &str,
        user: &UserRow,
        methods: &[MethodRow],
    ) -> StoreResult<Result<(), ImportRefusal>> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        advisory_lock(&mut tx, &user_lock(tenant_id, &user.user_id)).await?;
        let done = sql::import_user(&mut *tx, tenant_id, user, methods).await?;
        if done.is_err() {
            // Dropped, the transaction rolls back.
            return Ok(done);
        }
        tx.commit().await.map_err(db)?;
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
            .execute(self.pool())
            .await?;
        Ok(changed == 1)
    }
}
