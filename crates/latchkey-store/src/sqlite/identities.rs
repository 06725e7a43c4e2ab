//! SQLite: upstream logins and the identities users log in with.

use async_trait::async_trait;
use sqlx::Connection;

use super::SqliteStore;
use crate::errors::db;
use crate::sql::identities as sql;
use crate::sql::rows::user_row;
use crate::*;
use latchkey_core::clock::Timestamp;

#[async_trait]
impl UpstreamLoginStore for SqliteStore {
    async fn create_upstream_login(
        &self,
        tenant_id: &str,
        state_digest: &str,
        row: &UpstreamLoginRow,
    ) -> StoreResult<()> {
        sql::create_upstream_login(tenant_id, state_digest, row)
            .execute(&mut *self.writer().await?)
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
            .fetch_optional(&mut *self.reader().await)
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
            .execute(&mut *self.writer().await?)
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
            .fetch_optional(&mut *self.reader().await)
            .await?;
        row.as_ref().map(sql::identity_and_user).transpose()
    }

    async fn identities(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<IdentityRow>> {
        let rows = sql::identities(tenant_id, user_id)
            .fetch_all(&mut *self.reader().await)
            .await?;
        rows.iter().map(sql::identity_row).collect()
    }

    async fn users_with_verified_email(
        &self,
        tenant_id: &str,
        email: &str,
    ) -> StoreResult<Vec<UserRow>> {
        let rows = sql::users_with_verified_email(tenant_id, email)
            .fetch_all(&mut *self.reader().await)
            .await?;
        rows.iter().map(user_row).collect()
    }

    async fn create_upstream_user(
        &self,
        tenant_id: &str,
        user: &UserRow,
        identity: &IdentityRow,
    ) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        // On a conflict the transaction is dropped, which rolls it back.
        sql::create_upstream_user(&mut *tx, tenant_id, user, identity).await?;
        tx.commit().await.map_err(db)?;
        self.cache.forget_user(tenant_id, &user.user_id);
        Ok(())
    }

    async fn add_identity(&self, tenant_id: &str, identity: &IdentityRow) -> StoreResult<()> {
        sql::add_identity(tenant_id, identity)
            .execute_or_conflict(&mut *self.writer().await?, sql::identity_taken(identity))
            .await?;
        Ok(())
    }

    async fn update_identity(
        &self,
        tenant_id: &str,
        identity: &IdentityRow,
        user: Option<&UserRow>,
    ) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        sql::update_identity(&mut *tx, tenant_id, identity, user).await?;
        tx.commit().await.map_err(db)?;
        if let Some(user) = user {
            self.cache.forget_user(tenant_id, &user.user_id);
        }
        Ok(())
    }
}
