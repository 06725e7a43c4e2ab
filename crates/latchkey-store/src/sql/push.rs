//! The statements of `PushTransactionStore`: push-notification logins'
//! transactions, each change one conditional `UPDATE`.

use super::rows::{Columns, json};
use super::{Statement, to_json};
use crate::{PushKey, PushStatus, PushTransactionRow, StoreError, StoreResult};
use latchkey_core::clock::Timestamp;

pub(crate) fn create_push_transaction<'a>(
    tenant_id: &'a str,
    row: &'a PushTransactionRow,
) -> Statement<'a> {
    Statement::new(
        "INSERT INTO push_transactions (id, tenant_id, user_id, method_id, client_id, \
           login_digest, token_digest, challenge_digest, oob_digest, binding_code, status, \
           reason, context, created_at, expires_at, polled_at, resolved_at, consumed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .text(&row.id)
    .text(tenant_id)
    .text(&row.user_id)
    .text(&row.method_id)
    .text(&row.client_id)
    .text(&row.login_digest)
    .text(&row.token_digest)
    .text(&row.challenge_digest)
    .text(&row.oob_digest)
    .text_or_null(row.binding_code.as_deref())
    .text(row.status.as_str())
    .text_or_null(row.reason.as_deref())
    .owned(to_json(&row.context))
    .int(row.created_at)
    .int(row.expires_at)
    .int_or_null(row.polled_at)
    .int_or_null(row.resolved_at)
    .int_or_null(row.consumed_at)
}

/// The transaction's columns, read in the tenant (`$1`).
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, method_id, client_id, login_digest, token_digest, \
             challenge_digest, oob_digest, binding_code, status, reason, context, created_at, \
             expires_at, polled_at, resolved_at, consumed_at FROM push_transactions \
             WHERE tenant_id = $1 AND ",
            $rest
        )
    };
}

pub(crate) fn push_transaction<'a>(tenant_id: &'a str, by: PushKey<'a>) -> Statement<'a> {
    let (sql, key) = match by {
        PushKey::Id(id) => (select!("id = $2"), id),
        PushKey::Token(d) => (select!("token_digest = $2"), d),
        PushKey::Oob(d) => (select!("oob_digest = $2"), d),
        // The login's newest transaction ("send again" makes another).
        PushKey::Login(d) => (
            select!("login_digest = $2 ORDER BY created_at DESC, id DESC LIMIT 1"),
            d,
        ),
    };
    Statement::new(sql).text(tenant_id).text(key)
}

pub(crate) fn push_transaction_row(r: &impl Columns) -> StoreResult<PushTransactionRow> {
    let status = r.text("status");
    Ok(PushTransactionRow {
        id: r.text("id"),
        user_id: r.text("user_id"),
        method_id: r.text("method_id"),
        client_id: r.text("client_id"),
        login_digest: r.text("login_digest"),
        token_digest: r.text("token_digest"),
        challenge_digest: r.text("challenge_digest"),
        oob_digest: r.text("oob_digest"),
        binding_code: r.text_or_null("binding_code"),
        status: PushStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("push transaction status {status:?}")))?,
        reason: r.text_or_null("reason"),
        context: json(&r.text("context"))?,
        created_at: r.int("created_at"),
        expires_at: r.int("expires_at"),
        polled_at: r.int_or_null("polled_at"),
        resolved_at: r.int_or_null("resolved_at"),
        consumed_at: r.int_or_null("consumed_at"),
    })
}

/// Pending and unexpired → `status`: one statement decides the one winner.
pub(crate) fn resolve_push_transaction<'a>(
    tenant_id: &'a str,
    id: &'a str,
    status: PushStatus,
    reason: Option<&'a str>,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE push_transactions SET status = $3, reason = $4, resolved_at = $5 \
         WHERE tenant_id = $1 AND id = $2 AND status = 'pending' AND expires_at > $5",
    )
    .text(tenant_id)
    .text(id)
    .text(status.as_str())
    .text_or_null(reason)
    .int(now)
}

pub(crate) fn poll_push_transaction<'a>(
    tenant_id: &'a str,
    id: &'a str,
    now: Timestamp,
    interval: i64,
) -> Statement<'a> {
    Statement::new(
        "UPDATE push_transactions SET polled_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND (polled_at IS NULL OR polled_at <= $4)",
    )
    .text(tenant_id)
    .text(id)
    .int(now)
    .int(now.saturating_sub(interval))
}

pub(crate) fn consume_push_transaction<'a>(
    tenant_id: &'a str,
    id: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE push_transactions SET consumed_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND status = 'approved' AND consumed_at IS NULL",
    )
    .text(tenant_id)
    .text(id)
    .int(now)
}
