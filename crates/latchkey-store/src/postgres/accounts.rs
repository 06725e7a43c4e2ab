//! PostgreSQL: connected accounts and their connect transactions (the
//! statements and the trait's implementation are `sql::accounts`'s), and
//! completing a transaction under the provider account's lock.

use sqlx::Postgres;

use super::{PostgresStore, advisory_lock};
use crate::errors::db;
use crate::sql::accounts::{self as sql, connected_account_store};
use crate::*;
use latchkey_core::clock::Timestamp;

connected_account_store!(PostgresStore, Postgres);

impl PostgresStore {
    /// `ConnectedAccountStore::finish_connect`: two completions for one
    /// provider account take turns under its lock, so the second sees the
    /// first's row.
    async fn finish_connect_in_transaction(
        &self,
        tenant_id: &str,
        session_digest: &str,
        code_digest: &str,
        account: &ConnectedAccountRow,
        now: Timestamp,
    ) -> StoreResult<FinishConnect> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        let key = format!(
            "latchkey:connected-account:{tenant_id}:{}:{}",
            account.connection, account.subject
        );
        advisory_lock(&mut tx, &key).await?;
        let finish = sql::finish_connect(
            &mut *tx,
            tenant_id,
            session_digest,
            code_digest,
            account,
            now,
        )
        .await?;
        if matches!(finish, FinishConnect::Done(_)) {
            tx.commit().await.map_err(db)?;
        }
        Ok(finish)
    }
}
