//! SQLite: connected accounts and their connect transactions (the
//! statements and the trait's implementation are `sql::accounts`'s), and
//! completing a transaction on the one writer.

use sqlx::{Connection, Sqlite};

use super::SqliteStore;
use crate::errors::db;
use crate::sql::accounts::{self as sql, connected_account_store};
use crate::*;
use latchkey_core::clock::Timestamp;

connected_account_store!(SqliteStore, Sqlite);

impl SqliteStore {
    /// `ConnectedAccountStore::finish_connect`: IMMEDIATE takes the write
    /// lock up front, and the single writer makes two completions for one
    /// provider account take turns.
    async fn finish_connect_in_transaction(
        &self,
        tenant_id: &str,
        session_digest: &str,
        code_digest: &str,
        account: &ConnectedAccountRow,
        now: Timestamp,
    ) -> StoreResult<FinishConnect> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
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
