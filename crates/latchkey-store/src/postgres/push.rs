//! PostgreSQL: push-notification logins' transactions; every change is one
//! conditional `UPDATE`, and the row lock orders racing ones.

use async_trait::async_trait;

use super::PostgresStore;
use crate::sql::push as sql;
use crate::*;
use latchkey_core::clock::Timestamp;

#[async_trait]
impl PushTransactionStore for PostgresStore {
    async fn create_push_transaction(
        &self,
        tenant_id: &str,
        row: &PushTransactionRow,
    ) -> StoreResult<()> {
        sql::create_push_transaction(tenant_id, row)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn push_transaction(
        &self,
        tenant_id: &str,
        by: PushKey<'_>,
    ) -> StoreResult<Option<PushTransactionRow>> {
        let row = sql::push_transaction(tenant_id, by)
            .fetch_optional(self.pool())
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
            .execute(self.pool())
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
            .execute(self.pool())
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
            .execute(self.pool())
            .await?;
        Ok(changed == 1)
    }
}
