//! SQLite: push-notification logins' transactions; every change goes
//! through the single writer, so of racing changes one wins.

use async_trait::async_trait;

use super::SqliteStore;
use crate::sql::push as sql;
use crate::*;
use latchkey_core::clock::Timestamp;

#[async_trait]
impl PushTransactionStore for SqliteStore {
    async fn create_push_transaction(
        &self,
        tenant_id: &str,
        row: &PushTransactionRow,
    ) -> StoreResult<()> {
        sql::create_push_transaction(tenant_id, row)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn push_transaction(
        &self,
        tenant_id: &str,
        by: PushKey<'_>,
    ) -> StoreResult<Option<PushTransactionRow>> {
        let row = sql::push_transaction(tenant_id, by)
            .fetch_optional(&mut *self.reader().await)
            .await?;
        row.as_ref().map(sql::push_transaction_row).transpose()
    }

    async fn resolve_push_transaction(
        &self,
        tenant_id: &str,
        id: &str,
        status: PushStatus,
        reason: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let changed = sql::resolve_push_transaction(tenant_id, id, status, reason, now)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(changed == 1)
    }

    async fn poll_push_transaction(
        &self,
        tenant_id: &str,
        id: &str,
        now: Timestamp,
        interval: i64,
    ) -> StoreResult<bool> {
        let changed = sql::poll_push_transaction(tenant_id, id, now, interval)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(changed == 1)
    }

    async fn consume_push_transaction(
        &self,
        tenant_id: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let changed = sql::consume_push_transaction(tenant_id, id, now)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(changed == 1)
    }
}
