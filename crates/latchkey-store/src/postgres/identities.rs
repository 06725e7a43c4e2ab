//! PostgreSQL: upstream logins and the identities users log in with. A
//! callback's state is spent by one `DELETE`; a user and its first identity
//! are written in one transaction, and the primary keys decide races.

use async_trait::async_trait;

use super::PostgresStore;
use crate::errors::db;
use crate::sql::identities as sql;
use crate::sql::rows::user_row;
use crate::*;
use latchkey_core::clock::Timestamp;

#[async_trait]
impl UpstreamLoginStore for PostgresStore {
    async fn create_upstream_login(
        &self,
        tenant_id: &str,
        state_digest: &str,
        row: &UpstreamLoginRow,
    ) -> StoreResult<()> {
        sql::create_upstream_login(tenant_id, state_digest, row)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn upstream_login(
        &self,
        tenant_id: &str,
        state_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<UpstreamLoginRow>> {
        let row = sql::upstream_login(tenant_id, state_digest, now)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(sql::upstream_login_row))
    }

    async fn spend_upstream_login(
        &self,
        tenant_id: &str,
        state_digest: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let spent = sql::spend_upstream_login(tenant_id, state_digest, now)
            .execute(self.pool())
            .await?;
        Ok(spent == 1)
    }

    async fn identity(
        &self,
        tenant_id: &str,
        connection: &str,
        provider_user_id: &str,
    ) -> StoreResult<Option<(IdentityRow, UserRow)>> {
        let row = sql::identity(tenant_id, connection, provider_user_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(sql::identity_and_user).transpose()
    }

    async fn identities(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<IdentityRow>> {
        let rows = sql::identities(tenant_id, user_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(sql::identity_row).collect()
    }

    async fn users_with_verified_email(
        &self,
        tenant_id: &str,
        email: &str,
    ) -> StoreResult<Vec<UserRow>> {
        let rows = sql::users_with_verified_email(tenant_id, email)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_row).collect()
    }

    async fn create_upstream_user(
        &self,
        tenant_id: &str,
        user: &UserRow,
        identity: &IdentityRow,
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        // On a conflict the transaction is dropped, which rolls it back.
        sql::create_upstream_user(&mut *tx, tenant_id, user, identity).await?;
        tx.commit().await.map_err(db)
    }

    async fn add_identity(&self, tenant_id: &str, identity: &IdentityRow) -> StoreResult<()> {
        sql::add_identity(tenant_id, identity)
            .execute_or_conflict(self.pool(), sql::identity_taken(identity))
            .await?;
        Ok(())
    }

    async fn update_identity(
        &self,
        tenant_id: &str,
        identity: &IdentityRow,
        user: Option<&UserRow>,
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        sql::update_identity(&mut *tx, tenant_id, identity, user).await?;
        tx.commit().await.map_err(db)
    }
}
