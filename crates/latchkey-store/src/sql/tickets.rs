//! The statements of `AccountTicketStore`: the tickets of the links mailed
//! about accounts, and what using one writes, as one transaction body both
//! backends run.

use super::rows::Columns;
use super::{Conn, Statement, methods, sessions};
use crate::{AccountTicketRow, Completion, StoreError, StoreResult, TicketKind, TicketUse};
use latchkey_core::clock::Timestamp;

pub(crate) fn create_account_ticket<'a>(
    tenant_id: &'a str,
    digest: &'a str,
    row: &'a AccountTicketRow,
) -> Statement<'a> {
    Statement::new(
        "INSERT INTO account_tickets (digest, tenant_id, user_id, client_id, kind, created_at, \
           expires_at, used_at, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .text(digest)
    .text(tenant_id)
    .text(&row.user_id)
    .text(&row.client_id)
    .text(row.kind.as_str())
    .int(row.created_at)
    .int(row.expires_at)
    .int_or_null(row.used_at)
    .int(row.attempts)
}

pub(crate) fn account_ticket<'a>(tenant_id: &'a str, digest: &'a str) -> Statement<'a> {
    Statement::new(
        "SELECT user_id, client_id, kind, created_at, expires_at, used_at, attempts FROM account_tickets \
         WHERE tenant_id = $1 AND digest = $2",
    )
    .text(tenant_id)
    .text(digest)
}

pub(crate) fn account_ticket_row(r: &impl Columns) -> StoreResult<AccountTicketRow> {
    let kind = r.text("kind");
    Ok(AccountTicketRow {
        user_id: r.text("user_id"),
        client_id: r.text("client_id"),
        kind: TicketKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("account ticket kind {kind:?}")))?,
        created_at: r.int("created_at"),
        expires_at: r.int("expires_at"),
        used_at: r.int_or_null("used_at"),
        attempts: r.int("attempts"),
    })
}

/// One more failed attempt at a live ticket; `RETURNING` the count.
pub(crate) fn account_ticket_failed<'a>(
    tenant_id: &'a str,
    digest: &'a str,
    kind: TicketKind,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE account_tickets SET attempts = attempts + 1 \
         WHERE tenant_id = $1 AND digest = $2 AND kind = $3 AND used_at IS NULL \
           AND expires_at > $4 RETURNING attempts",
    )
    .text(tenant_id)
    .text(digest)
    .text(kind.as_str())
    .int(now)
}

/// Uses the ticket if it is live; `RETURNING` its user.
fn take<'a>(
    tenant_id: &'a str,
    digest: &'a str,
    kind: TicketKind,
    now: Timestamp,
    max_attempts: i64,
) -> Statement<'a> {
    Statement::new(
        "UPDATE account_tickets SET used_at = $4 \
         WHERE tenant_id = $1 AND digest = $2 AND kind = $3 AND used_at IS NULL \
           AND expires_at > $4 AND attempts < $5 RETURNING user_id",
    )
    .text(tenant_id)
    .text(digest)
    .text(kind.as_str())
    .int(now)
    .int(max_attempts)
}

/// The body of `use_account_ticket` in the backend's transaction: the
/// ticket taken, then what it is for. `None` (the caller rolls back) when
/// the ticket is not live.
pub(crate) async fn use_ticket(
    tx: &mut impl Conn,
    tenant_id: &str,
    digest: &str,
    kind: TicketKind,
    now: Timestamp,
    max_attempts: i64,
    action: &TicketUse<'_>,
) -> StoreResult<Option<String>> {
    let Some(row) = take(tenant_id, digest, kind, now, max_attempts)
        .fetch_optional_in(tx)
        .await?
    else {
        return Ok(None);
    };
    let user_id = row.text("user_id");
    Statement::new(
        "UPDATE account_tickets SET used_at = $4 \
         WHERE tenant_id = $1 AND user_id = $2 AND kind = $3 AND used_at IS NULL",
    )
    .text(tenant_id)
    .text(&user_id)
    .text(kind.as_str())
    .int(now)
    .execute_in(tx)
    .await?;
    match action {
        TicketUse::VerifyEmail => {
            Statement::new(
                "UPDATE users SET email_verified = $1, updated_at = $2 \
                 WHERE tenant_id = $3 AND user_id = $4",
            )
            .flag(true)
            .int(now)
            .text(tenant_id)
            .text(&user_id)
            .execute_in(tx)
            .await?;
        }
        TicketUse::ResetPassword { hash, reason } => {
            let completion = Completion::SetPassword {
                user_id: user_id.clone(),
                hash: (*hash).to_string(),
                at: now,
            };
            methods::complete(tx, tenant_id, &completion, None).await?;
            sessions::revoke_user_grants(tenant_id, &user_id, reason, now)
                .execute_in(tx)
                .await?;
            sessions::revoke_user_sessions(tenant_id, &user_id, now)
                .execute_in(tx)
                .await?;
        }
    }
    Ok(Some(user_id))
}
