//! Connected accounts and their connect transactions.

use std::sync::LazyLock;

use super::rows::{Columns, connect_row, connected_account_row};
use super::{Conn, Dialect, Runs, Statement, to_json};
use crate::{
    AccountCursor, ConnectRow, ConnectStage, ConnectedAccountRow, FinishConnect, RefreshedTokens,
    StoreResult,
};
use latchkey_core::clock::Timestamp;

/// An account's columns, as `rows::connected_account_row` reads them.
pub(crate) const ACCOUNT_COLUMNS: &str = "id, user_id, connection, subject, scopes, \
     sealed_access_token, access_expires_at, sealed_refresh_token, refresh_expires_at, \
     sealed_id_token, status, version, refresh_lock_until, created_at, updated_at";

/// A transaction's columns, as `rows::connect_row` reads them.
pub(crate) const CONNECT_COLUMNS: &str = "session_digest, user_id, client_id, connection, host, \
     redirect_uri, app_state, code_challenge, scopes, authorization_params, stage, state_digest, \
     browser_digest, sealed_upstream, code_digest, sealed_result, attempts, created_at, expires_at";

pub(crate) fn create_connect<'a>(
    tenant_id: &'a str,
    session_digest: &'a str,
    ticket_digest: &'a str,
    row: &'a ConnectRow,
) -> Statement<'a> {
    Statement::new(
        "INSERT INTO connect_transactions (session_digest, tenant_id, ticket_digest, user_id, \
           client_id, connection, host, redirect_uri, app_state, code_challenge, scopes, \
           authorization_params, stage, state_digest, browser_digest, sealed_upstream, code_digest, \
           sealed_result, attempts, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
           $19, $20, $21)",
    )
    .text(session_digest)
    .text(tenant_id)
    .text(ticket_digest)
    .text(&row.user_id)
    .text(&row.client_id)
    .text(&row.connection)
    .text(&row.host)
    .text(&row.redirect_uri)
    .text_or_null(row.app_state.as_deref())
    .text_or_null(row.code_challenge.as_deref())
    .owned(to_json(&row.scopes))
    .owned(to_json(&row.authorization_params))
    .text(row.stage.as_str())
    .text_or_null(row.state_digest.as_deref())
    .text_or_null(row.browser_digest.as_deref())
    .text_or_null(row.sealed_upstream.as_deref())
    .text_or_null(row.code_digest.as_deref())
    .text_or_null(row.sealed_result.as_deref())
    .int(row.attempts)
    .int(row.created_at)
    .int(row.expires_at)
}

/// A live transaction at `stage` whose `column` is `digest`.
fn connect_where<'a>(
    column: &'static str,
    tenant_id: &'a str,
    digest: &'a str,
    stage: Option<ConnectStage>,
    now: Timestamp,
) -> Statement<'a> {
    let stage_filter = match stage {
        Some(_) => " AND stage = $4",
        None => " AND $4 = ''",
    };
    Statement::composed(format!(
        "SELECT {CONNECT_COLUMNS} FROM connect_transactions \
         WHERE {column} = $1 AND tenant_id = $2 AND expires_at > $3{stage_filter}"
    ))
    .text(digest)
    .text(tenant_id)
    .int(now)
    .text(stage.map_or("", ConnectStage::as_str))
}

pub(crate) fn connect_by_ticket<'a>(
    tenant_id: &'a str,
    ticket_digest: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    connect_where(
        "ticket_digest",
        tenant_id,
        ticket_digest,
        Some(ConnectStage::Created),
        now,
    )
}

pub(crate) fn connect_by_state<'a>(
    tenant_id: &'a str,
    state_digest: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    connect_where(
        "state_digest",
        tenant_id,
        state_digest,
        Some(ConnectStage::Redirected),
        now,
    )
}

pub(crate) fn connect<'a>(
    tenant_id: &'a str,
    session_digest: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    connect_where("session_digest", tenant_id, session_digest, None, now)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn connect_redirected<'a>(
    tenant_id: &'a str,
    session_digest: &'a str,
    state_digest: &'a str,
    browser_digest: &'a str,
    sealed_upstream: &'a str,
    expires_at: Timestamp,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE connect_transactions SET stage = 'redirected', state_digest = $1, \
           browser_digest = $2, sealed_upstream = $3, expires_at = $4 \
         WHERE session_digest = $5 AND tenant_id = $6 AND stage = 'created' AND expires_at > $7",
    )
    .text(state_digest)
    .text(browser_digest)
    .text(sealed_upstream)
    .int(expires_at)
    .text(session_digest)
    .text(tenant_id)
    .int(now)
}

pub(crate) fn claim_connect_callback<'a>(
    tenant_id: &'a str,
    session_digest: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE connect_transactions SET stage = 'exchanging' \
         WHERE session_digest = $1 AND tenant_id = $2 AND stage = 'redirected' AND expires_at > $3",
    )
    .text(session_digest)
    .text(tenant_id)
    .int(now)
}

pub(crate) fn connect_returned<'a>(
    tenant_id: &'a str,
    session_digest: &'a str,
    code_digest: &'a str,
    sealed_result: &'a str,
    expires_at: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE connect_transactions SET stage = 'returned', code_digest = $1, sealed_result = $2, \
           expires_at = $3 \
         WHERE session_digest = $4 AND tenant_id = $5 AND stage = 'exchanging'",
    )
    .text(code_digest)
    .text(sealed_result)
    .int(expires_at)
    .text(session_digest)
    .text(tenant_id)
}

/// Counts a wrong attempt; the attempts made.
pub(crate) fn connect_failed<'a>(tenant_id: &'a str, session_digest: &'a str) -> Statement<'a> {
    Statement::new(
        "UPDATE connect_transactions SET attempts = attempts + 1 \
         WHERE session_digest = $1 AND tenant_id = $2 RETURNING attempts",
    )
    .text(session_digest)
    .text(tenant_id)
}

pub(crate) fn delete_connect<'a>(tenant_id: &'a str, session_digest: &'a str) -> Statement<'a> {
    Statement::new("DELETE FROM connect_transactions WHERE session_digest = $1 AND tenant_id = $2")
        .text(session_digest)
        .text(tenant_id)
}

/// `ConnectedAccountStore::finish_connect` in the backend's transaction
/// (SQLite's single writer; PostgreSQL's lock on the provider account):
/// consumes the transaction, then inserts or replaces the account. On
/// `Conflict` and `Gone` the caller drops the transaction, which rolls
/// back.
pub(crate) async fn finish_connect(
    tx: &mut impl Conn,
    tenant_id: &str,
    session_digest: &str,
    code_digest: &str,
    account: &ConnectedAccountRow,
    now: Timestamp,
) -> StoreResult<FinishConnect> {
    let consumed = Statement::new(
        "DELETE FROM connect_transactions WHERE session_digest = $1 AND tenant_id = $2 \
           AND code_digest = $3 AND stage = 'returned' AND expires_at > $4",
    )
    .text(session_digest)
    .text(tenant_id)
    .text(code_digest)
    .int(now)
    .execute_in(tx)
    .await?;
    if consumed != 1 {
        return Ok(FinishConnect::Gone);
    }
    static EXISTING: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {ACCOUNT_COLUMNS} FROM connected_accounts \
             WHERE tenant_id = $1 AND connection = $2 AND subject = $3"
        )
    });
    let existing = Statement::new(EXISTING.as_str())
        .text(tenant_id)
        .text(&account.connection)
        .text(&account.subject)
        .fetch_optional_in(tx)
        .await?
        .map(|r| connected_account_row(&r))
        .transpose()?;
    let stored = match existing {
        Some(old) if old.user_id != account.user_id => return Ok(FinishConnect::Conflict),
        Some(old) => {
            let t = &account.tokens;
            Statement::new(
                "UPDATE connected_accounts SET scopes = $1, sealed_access_token = $2, \
                   access_expires_at = $3, sealed_refresh_token = $4, refresh_expires_at = $5, \
                   sealed_id_token = $6, status = $7, version = version + 1, \
                   refresh_lock_until = NULL, updated_at = $8 \
                 WHERE tenant_id = $9 AND id = $10",
            )
            .owned(to_json(&account.scopes))
            .text_or_null(t.access_token.as_deref())
            .int_or_null(t.access_expires_at)
            .text_or_null(t.refresh_token.as_deref())
            .int_or_null(t.refresh_expires_at)
            .text_or_null(t.id_token.as_deref())
            .text(account.status.as_str())
            .int(account.updated_at)
            .text(tenant_id)
            .text(&old.id)
            .execute_in(tx)
            .await?;
            ConnectedAccountRow {
                id: old.id,
                created_at: old.created_at,
                version: old.version + 1,
                refresh_lock_until: None,
                ..account.clone()
            }
        }
        None => {
            insert_account(tenant_id, account).execute_in(tx).await?;
            account.clone()
        }
    };
    Ok(FinishConnect::Done(Box::new(stored)))
}

fn insert_account<'a>(tenant_id: &'a str, a: &'a ConnectedAccountRow) -> Statement<'a> {
    let t = &a.tokens;
    Statement::new(
        "INSERT INTO connected_accounts (tenant_id, id, user_id, connection, subject, scopes, \
           sealed_access_token, access_expires_at, sealed_refresh_token, refresh_expires_at, \
           sealed_id_token, status, version, refresh_lock_until, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .text(tenant_id)
    .text(&a.id)
    .text(&a.user_id)
    .text(&a.connection)
    .text(&a.subject)
    .owned(to_json(&a.scopes))
    .text_or_null(t.access_token.as_deref())
    .int_or_null(t.access_expires_at)
    .text_or_null(t.refresh_token.as_deref())
    .int_or_null(t.refresh_expires_at)
    .text_or_null(t.id_token.as_deref())
    .text(a.status.as_str())
    .int(a.version)
    .int_or_null(a.refresh_lock_until)
    .int(a.created_at)
    .int(a.updated_at)
}

/// The user's accounts, oldest first, filtered and paged (see the trait).
pub(crate) fn connected_accounts<'a, DB: Dialect>(
    tenant_id: &'a str,
    user_id: &'a str,
    connections: &'a [String],
    after: Option<&'a AccountCursor>,
    limit: i64,
) -> Statement<'a> {
    // `$7…` one a connection: the text is made of placeholders only.
    let filter = if connections.is_empty() {
        String::new()
    } else {
        let marks: Vec<String> = (0..connections.len())
            .map(|i| format!("${}", i + 7))
            .collect();
        format!(" AND connection IN ({})", marks.join(", "))
    };
    let mut st = Statement::composed(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM connected_accounts WHERE tenant_id = $1 AND user_id = $2 \
           AND ($3 = 0 OR created_at > $4 OR (created_at = $4 AND id{order} > $5{order})){filter} \
         ORDER BY created_at, id{order} LIMIT $6",
        order = DB::BYTE_ORDER,
    ))
    .text(tenant_id)
    .text(user_id)
    .int(i64::from(after.is_some()))
    .int(after.map_or(0, |c| c.created_at))
    .text(after.map_or("", |c| c.id.as_str()))
    .int_or_null(DB::limit(limit));
    for c in connections {
        st = st.text(c);
    }
    st
}

pub(crate) fn connected_account<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    id: &'a str,
) -> Statement<'a> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {ACCOUNT_COLUMNS} FROM connected_accounts \
             WHERE tenant_id = $1 AND user_id = $2 AND id = $3"
        )
    });
    Statement::new(SQL.as_str())
        .text(tenant_id)
        .text(user_id)
        .text(id)
}

pub(crate) fn connected_account_by_subject<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    connection: &'a str,
    subject: &'a str,
) -> Statement<'a> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {ACCOUNT_COLUMNS} FROM connected_accounts \
             WHERE tenant_id = $1 AND connection = $2 AND subject = $3 AND user_id = $4"
        )
    });
    Statement::new(SQL.as_str())
        .text(tenant_id)
        .text(connection)
        .text(subject)
        .text(user_id)
}

pub(crate) fn delete_connected_account<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    id: &'a str,
) -> Statement<'a> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "DELETE FROM connected_accounts WHERE tenant_id = $1 AND user_id = $2 AND id = $3 \
             RETURNING {ACCOUNT_COLUMNS}"
        )
    });
    Statement::new(SQL.as_str())
        .text(tenant_id)
        .text(user_id)
        .text(id)
}

pub(crate) fn claim_refresh<'a>(
    tenant_id: &'a str,
    id: &'a str,
    version: i64,
    now: Timestamp,
    hold_until: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE connected_accounts SET refresh_lock_until = $1 \
         WHERE tenant_id = $2 AND id = $3 AND version = $4 \
           AND (refresh_lock_until IS NULL OR refresh_lock_until <= $5)",
    )
    .int(hold_until)
    .text(tenant_id)
    .text(id)
    .int(version)
    .int(now)
}

pub(crate) fn release_refresh<'a>(
    tenant_id: &'a str,
    id: &'a str,
    version: i64,
    hold_until: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE connected_accounts SET refresh_lock_until = NULL \
         WHERE tenant_id = $1 AND id = $2 AND version = $3 AND refresh_lock_until = $4",
    )
    .text(tenant_id)
    .text(id)
    .int(version)
    .int(hold_until)
}

pub(crate) fn store_refresh<'a>(
    tenant_id: &'a str,
    id: &'a str,
    version: i64,
    r: &'a RefreshedTokens,
    now: Timestamp,
) -> Statement<'a> {
    let t = &r.tokens;
    Statement::new(
        "UPDATE connected_accounts SET sealed_access_token = $1, access_expires_at = $2, \
           sealed_refresh_token = $3, refresh_expires_at = $4, sealed_id_token = $5, status = $6, \
           version = version + 1, refresh_lock_until = NULL, updated_at = $7 \
         WHERE tenant_id = $8 AND id = $9 AND version = $10",
    )
    .text_or_null(t.access_token.as_deref())
    .int_or_null(t.access_expires_at)
    .text_or_null(t.refresh_token.as_deref())
    .int_or_null(t.refresh_expires_at)
    .text_or_null(t.id_token.as_deref())
    .text(r.status.as_str())
    .int(now)
    .text(tenant_id)
    .text(id)
    .int(version)
}

/// The session digest and transaction of a row read with [`CONNECT_COLUMNS`].
pub(crate) fn with_session(r: &impl Columns) -> StoreResult<(String, ConnectRow)> {
    Ok((r.text("session_digest"), connect_row(r)?))
}

/// Counts a wrong attempt on `store`; at `max_attempts` the transaction
/// goes. The attempts left.
pub(crate) async fn count_failure(
    store: &impl Runs,
    tenant_id: &str,
    session_digest: &str,
    max_attempts: i64,
) -> StoreResult<i64> {
    let row = store
        .write_returning(connect_failed(tenant_id, session_digest))
        .await?;
    let attempts = row.map_or(max_attempts, |r| r.int("attempts"));
    if attempts >= max_attempts {
        store
            .write(delete_connect(tenant_id, session_digest))
            .await?;
    }
    Ok((max_attempts - attempts).max(0))
}

/// `ConnectedAccountStore` for a store that [`Runs`] statements, on the
/// dialect `$db`, with `finish_connect` its own (the transaction differs).
macro_rules! connected_account_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::ConnectedAccountStore for $store {
            async fn create_connect(
                &self,
                tenant_id: &str,
                session_digest: &str,
                ticket_digest: &str,
                row: &$crate::ConnectRow,
            ) -> $crate::StoreResult<()> {
                use $crate::sql::Runs;
                let st = $crate::sql::accounts::create_connect(
                    tenant_id,
                    session_digest,
                    ticket_digest,
                    row,
                );
                self.write(st).await.map(|_| ())
            }

            async fn connect_by_ticket(
                &self,
                tenant_id: &str,
                ticket_digest: &str,
                now: latchkey_core::clock::Timestamp,
            ) -> $crate::StoreResult<Option<(String, $crate::ConnectRow)>> {
                use $crate::sql::Runs;
                let st = $crate::sql::accounts::connect_by_ticket(tenant_id, ticket_digest, now);
                let row = self.read_optional(st).await?;
                row.as_ref()
                    .map($crate::sql::accounts::with_session)
                    .transpose()
            }

            async fn connect_redirected(
                &self,
                tenant_id: &str,
                session_digest: &str,
                state_digest: &str,
                browser_digest: &str,
                sealed_upstream: &str,
                expires_at: latchkey_core::clock::Timestamp,
                now: latchkey_core::clock::Timestamp,
            ) -> $crate::StoreResult<bool> {
                use $crate::sql::Runs;
                let st = $crate::sql::accounts::connect_redirected(
                    tenant_id,
                    session_digest,
                    state_digest,
                    browser_digest,
                    sealed_upstream,
                    expires_at,
                    now,
                );
                Ok(self.write(st).await? == 1)
            }

            async fn connect_by_state(
                &self,
                tenant_id: &str,
                state_digest: &str,
                now: latchkey_core::clock::Timestamp,
            ) -> $crate::StoreResult<Option<(String, $crate::ConnectRow)>> {
                use $crate::sql::Runs;
                let st = $crate::sql::accounts::connect_by_state(tenant_id, state_digest, now);
                let row = self.read_optional(st).await?;
                row.as_ref()
                    .map($crate::sql::accounts::with_session)
                    .transpose()
            }

            async fn claim_connect_callback(
                &self,
                tenant_id: &str,
                session_digest: &str,
                now: latchkey_core::clock::Timestamp,
            ) -> $crate::StoreResult<bool> {
                use $crate::sql::Runs;
                let st =
                    $crate::sql::accounts::claim_connect_callback(tenant_id, session_digest, now);
                Ok(self.write(st).await? == 1)
            }

            async fn connect_returned(
                &self,
                tenant_id: &str,
                session_digest: &str,
                code_digest: &str,
                sealed_result: &str,
                expires_at: latchkey_core::clock::Timestamp,
            ) -> $crate::StoreResult<bool> {
                use $crate::sql::Runs;
                let st = $crate::sql::accounts::connect_returned(
                    tenant_id,
                    session_digest,
                    code_digest,
                    sealed_result,
                    expires_at,
                );
                Ok(self.write(st).await? == 1)
            }

            async fn connect(
                &self,
                tenant_id: &str,
                session_digest: &str,
                now: latchkey_core::clock::Timestamp,
            ) -> $crate::StoreResult<Option<$crate::ConnectRow>> {
                use $crate::sql::Runs;
                let st = $crate::sql::accounts::connect(tenant_id, session_digest, now);
                let row = self.read_optional(st).await?;
                row.as_ref().map($crate::sql::rows::connect_row).transpose()
            }

            async fn connect_failed(
                &self,
                tenant_id: &str,
                session_digest: &str,
                max_attempts: i64,
            ) -> $crate::StoreResult<i64> {
                $crate::sql::accounts::count_failure(self, tenant_id, session_digest, max_attempts)
                    .await
            }

            async fn delete_connect(
                &self,
                tenant_id: &str,
                session_digest: &str,
            ) -> $crate::StoreResult<()> {
                use $crate::sql::Runs;
                let st = $crate::sql::accounts::delete_connect(tenant_id, session_digest);
                self.write(st).await.map(|_| ())
            }

            async fn finish_connect(
                &self,
                tenant_id: &str,
                session_digest: &str,
                code_digest: &str,
                account: &$crate::ConnectedAccountRow,
                now: latchkey_core::clock::Timestamp,
            ) -> $crate::StoreResult<$crate::FinishConnect> {
                self.finish_connect_in_transaction(
                    tenant_id,
                    session_digest,
                    code_digest,
                    account,
                    now,
                )
                .await
            }

            async fn connected_accounts(
                &self,
                tenant_id: &str,
                user_id: &str,
                connections: &[String],
                after: Option<&$crate::AccountCursor>,
                limit: i64,
            ) -> $crate::StoreResult<Vec<$crate::ConnectedAccountRow>> {
                use $crate::sql::Runs;
                let st = $crate::sql::accounts::connected_accounts::<$db>(
                    tenant_id,
                    user_id,
                    connections,
                    after,
                    limit,
                );
                let rows = self.read_all(st).await?;
                rows.iter()
                    .map($crate::sql::rows::connected_account_row)
                    .collect()
            }

            async fn connected_account(
                &self,
                tenant_id: &str,
                user_id: &str,
                id: &str,
            ) -> $crate::StoreResult<Option<$crate::ConnectedAccountRow>> {
                use $crate::sql::Runs;
                let st = $crate::sql::accounts::connected_account(tenant_id, user_id, id);
                let row = self.read_optional(st).await?;
                row.as_ref()
                    .map($crate::sql::rows::connected_account_row)
                    .transpose()
            }

            async fn connected_account_by_subject(
                &self,
                tenant_id: &str,
                user_id: &str,
                connection: &str,
                subject: &str,
            ) -> $crate::StoreResult<Option<$crate::ConnectedAccountRow>> {
                use $crate::sql::Runs;
                let st = $crate::sql::accounts::connected_account_by_subject(
                    tenant_id, user_id, connection, subject,
                );
                let row = self.read_optional(st).await?;
                row.as_ref()
                    .map($crate::sql::rows::connected_account_row)
                    .transpose()
            }

            async fn delete_connected_account(
                &self,
                tenant_id: &str,
                user_id: &str,
                id: &str,
            ) -> $crate::StoreResult<Option<$crate::ConnectedAccountRow>> {
                use $crate::sql::Runs;
                let st = $crate::sql::accounts::delete_connected_account(tenant_id, user_id, id);
                let row = self.write_returning(st).await?;
                row.as_ref()
                    .map($crate::sql::rows::connected_account_row)
                    .transpose()
            }

            async fn claim_refresh(
                &self,
                tenant_id: &str,
                id: &str,
                version: i64,
                now: latchkey_core::clock::Timestamp,
                hold_until: latchkey_core::clock::Timestamp,
            ) -> $crate::StoreResult<bool> {
                use $crate::sql::Runs;
                let st =
                    $crate::sql::accounts::claim_refresh(tenant_id, id, version, now, hold_until);
                Ok(self.write(st).await? == 1)
            }

            async fn release_refresh(
                &self,
                tenant_id: &str,
                id: &str,
                version: i64,
                hold_until: latchkey_core::clock::Timestamp,
            ) -> $crate::StoreResult<bool> {
                use $crate::sql::Runs;
                let st = $crate::sql::accounts::release_refresh(tenant_id, id, version, hold_until);
                Ok(self.write(st).await? == 1)
            }

            async fn store_refresh(
                &self,
                tenant_id: &str,
                id: &str,
                version: i64,
                refreshed: &$crate::RefreshedTokens,
                now: latchkey_core::clock::Timestamp,
            ) -> $crate::StoreResult<bool> {
                use $crate::sql::Runs;
                let st =
                    $crate::sql::accounts::store_refresh(tenant_id, id, version, refreshed, now);
                Ok(self.write(st).await? == 1)
            }
        }
    };
}
pub(crate) use connected_account_store;
