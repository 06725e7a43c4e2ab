//! PostgreSQL: the tickets of the links mailed about accounts; a ticket is
//! used in one transaction with what it does, under the user's lock, so
//! its writes take turns with the user's other ones.

use async_trait::async_trait;

use super::methods::user_lock;
use super::{PostgresStore, advisory_lock};
use crate::errors::db;
use crate::sql::rows::Columns;
use crate::sql::tickets as sql;
use crate::*;
use latchkey_core::clock::Timestamp;

#[async_trait]
impl AccountTicketStore for PostgresStore {
    async fn create_account_ticket(
        &self,
        tenant_id: &str,
        digest: &str,
        row: &AccountTicketRow,
    ) -> StoreResult<()> {
        sql::create_account_ticket(tenant_id, digest, row)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn account_ticket(
        &self,
        tenant_id: &str,
        digest: &str,
    ) -> StoreResult<Option<AccountTicketRow>> {
        let row = sql::account_ticket(tenant_id, digest)
            .fetch_optional(self.pool())
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
            .fetch_optional(self.pool())
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
        let Some(ticket) = self.account_ticket(tenant_id, digest).await? else {
            return Ok(None);
        };
        let mut tx = self.pool().begin().await.map_err(db)?;
        // The user's writes one at a time (a password set here and by an
        // enrollment at once keep both in the history).
        advisory_lock(&mut tx, &user_lock(tenant_id, &ticket.user_id)).await?;
        let used =
            sql::use_ticket(&mut *tx, tenant_id, digest, kind, now, max_attempts, action).await?;
        if used.is_none() {
            return Ok(None);
        }
        tx.commit().await.map_err(db)?;
        Ok(used)
    }
}
