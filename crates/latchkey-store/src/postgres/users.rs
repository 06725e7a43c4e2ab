//! PostgreSQL: the Management API's users. A change and a deletion each run
//! in one transaction under the user's lock, so they take turns with the
//! user's other writes (an enrollment, a password reset).

use async_trait::async_trait;
use sqlx::Postgres;

use super::methods::user_lock;
use super::{PostgresStore, advisory_lock};
use crate::errors::db;
use crate::sql::identities::identity_row;
use crate::sql::rows::{Columns, user_row};
use crate::sql::{tenants, users as sql};
use crate::*;

#[async_trait]
impl UserAdminStore for PostgresStore {
    async fn create_user(&self, tenant_id: &str, user: &UserRow) -> StoreResult<()> {
        tenants::insert_user(tenant_id, user)
            .execute_or_conflict(self.pool(), tenants::user_taken(user))
            .await
            .map(|_| ())
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
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(identity_row).collect()
    }

    async fn search_users(
        &self,
        tenant_id: &str,
        search: &UserSearch<'_>,
    ) -> StoreResult<(Vec<UserRow>, Option<i64>)> {
        let rows = sql::search::<Postgres>(tenant_id, search)
            .fetch_all(self.pool())
            .await?;
        let users = rows.iter().map(user_row).collect::<StoreResult<Vec<_>>>()?;
        let total = if search.count {
            let row = sql::count::<Postgres>(tenant_id, search)
                .fetch_one(self.pool())
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
            .fetch_all(self.pool())
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
        let mut tx = self.pool().begin().await.map_err(db)?;
        advisory_lock(&mut tx, &user_lock(tenant_id, &previous.user_id)).await?;
        let now = next.updated_at;
        let done = sql::update_user(&mut *tx, tenant_id, previous, next, change, now).await?;
        if done == UserWrite::Done {
            tx.commit().await.map_err(db)?;
        }
        Ok(done)
    }

    async fn delete_user(&self, tenant_id: &str, user_id: &str) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        advisory_lock(&mut tx, &user_lock(tenant_id, user_id)).await?;
        let gone = sql::delete_user(&mut *tx, tenant_id, user_id).await?;
        if gone {
            tx.commit().await.map_err(db)?;
        }
        Ok(gone)
    }

    async fn unlink_connection(&self, tenant_id: &str, connection: &str) -> StoreResult<u64> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        let gone = sql::unlink_connection(&mut *tx, tenant_id, connection).await?;
        tx.commit().await.map_err(db)?;
        Ok(gone)
    }
}
