//! SQLite: the tickets of the links mailed about accounts; a ticket is
//! used on the single writer, in one transaction with what it does.

use async_trait::async_trait;
use sqlx::Connection;

use super::SqliteStore;
use crate::errors::db;
use crate::sql::rows::Columns;
use crate::sql::tickets as sql;
use crate::*;
use latchkey_core::clock::Timestamp;

#[async_trait]
impl AccountTicketStore for SqliteStore {
    async fn create_account_ticket(
        &self,
        tenant_id: &str,
        digest: &str,
        row: &AccountTicketRow,
    ) -> StoreResult<()> {
        sql::create_account_ticket(tenant_id, digest, row)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn account_ticket(
        &self,
        tenant_id: &str,
        digest: &str,
    ) -> StoreResult<Option<AccountTicketRow>> {
        let row = sql::account_ticket(tenant_id, digest)
            .fetch_optional(&mut *self.reader().await)
            .await?;
        row.as_ref().map(sql::account_ticket_row).transpose()
    }

    async fn account_ticket_failed(
        &self,
        tenant_id: &str,
        digest: &str,
        kind: TicketKind,
        now: Timestamp,
    ) -> StoreResult<Option<i64>> {
        let row = sql::account_ticket_failed(tenant_id, digest, kind, now)
            .fetch_optional(&mut *self.writer().await?)
            .await?;
        Ok(row.map(|r| r.int("attempts")))
    }

    async fn use_account_ticket(
        &self,
        tenant_id: &str,
        digest: &str,
        kind: TicketKind,
        now: Timestamp,
        max_attempts: i64,
        action: &TicketUse<'_>,
    ) -> StoreResult<Option<String>> {
        // IMMEDIATE takes the write lock up front (see mod.rs).
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let used =
            sql::use_ticket(&mut *tx, tenant_id, digest, kind, now, max_attempts, action).await?;
        let Some(user_id) = used else {
            // Dropped, the transaction rolls back.
            return Ok(None);
        };
        tx.commit().await.map_err(db)?;
        self.cache.forget_user(tenant_id, &user_id);
        if matches!(action, TicketUse::ResetPassword { .. }) {
            self.cache.forget_grants();
        }
        Ok(Some(user_id))
    }
}
