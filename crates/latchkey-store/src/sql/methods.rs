//! Authentication methods, enrollments, password history, audit events.

use std::sync::LazyLock;

use super::rows::{Columns, method_row, user_row};
use super::sessions::joined_columns;
use super::tenants::{USER_COLUMNS, insert_user};
use super::{Conn, Dialect, Statement, to_json};
use crate::{
    AuditSearch, Completion, EnrollmentRow, Finish, MethodRow, Removal, StoreResult, UserRow,
};
use latchkey_core::clock::Timestamp;

/// A method's columns, as `rows::method_row` reads them.
pub(crate) const METHOD_COLUMNS: &str =
    "id, user_id, type, name, data, created_at, last_auth_at, last_otp_step, credential_id";

/// The user's methods, oldest first (then by ID, in byte order).
pub(crate) fn methods<'a, DB: Dialect>(tenant_id: &'a str, user_id: &'a str) -> Statement<'a> {
    Statement::composed(format!(
        "SELECT {METHOD_COLUMNS} FROM authentication_methods WHERE tenant_id = $1 AND user_id = $2 \
         ORDER BY created_at, id{}",
        DB::BYTE_ORDER
    ))
    .text(tenant_id)
    .text(user_id)
}

/// One statement, one trip to the database: the user's columns on every
/// row, the method's (if any) prefixed with `m_`, ordered as [`methods`].
pub(crate) fn user_with_methods<'a, DB: Dialect>(
    tenant_id: &'a str,
    user_id: &'a str,
) -> Statement<'a> {
    Statement::composed(format!(
        "SELECT {} FROM users u LEFT JOIN authentication_methods m \
         ON m.tenant_id = u.tenant_id AND m.user_id = u.user_id \
         WHERE u.tenant_id = $1 AND u.user_id = $2 ORDER BY m.created_at, m.id{}",
        joined_columns(USER_COLUMNS, METHOD_COLUMNS),
        DB::BYTE_ORDER
    ))
    .text(tenant_id)
    .text(user_id)
}

/// The user and their methods from the rows of [`user_with_methods`]; None
/// when the user does not exist.
pub(crate) fn user_and_methods(
    rows: &[impl Columns],
) -> StoreResult<Option<(UserRow, Vec<MethodRow>)>> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let user = user_row(first)?;
    let mut methods = Vec::new();
    for r in rows {
        if r.text_or_null("m_id").is_some() {
            methods.push(method_row(r, "m_")?);
        }
    }
    Ok(Some((user, methods)))
}

pub(crate) fn method<'a>(tenant_id: &'a str, user_id: &'a str, id: &'a str) -> Statement<'a> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {METHOD_COLUMNS} FROM authentication_methods \
             WHERE tenant_id = $1 AND user_id = $2 AND id = $3"
        )
    });
    Statement::new(SQL.as_str())
        .text(tenant_id)
        .text(user_id)
        .text(id)
}

pub(crate) fn method_by_credential<'a>(
    tenant_id: &'a str,
    credential_id: &'a str,
) -> Statement<'a> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {METHOD_COLUMNS} FROM authentication_methods \
             WHERE tenant_id = $1 AND credential_id = $2"
        )
    });
    Statement::new(SQL.as_str())
        .text(tenant_id)
        .text(credential_id)
}

/// Replaces the data if it still is `previous`; the owner's ID when it did.
pub(crate) fn update_method_data<'a>(
    tenant_id: &'a str,
    id: &'a str,
    previous: &serde_json::Value,
    data: &serde_json::Value,
    last_auth_at: Option<Timestamp>,
) -> Statement<'a> {
    Statement::new(
        "UPDATE authentication_methods SET data = $1, last_auth_at = COALESCE($2, last_auth_at) \
         WHERE tenant_id = $3 AND id = $4 AND data = $5 RETURNING user_id",
    )
    .owned(to_json(data))
    .int_or_null(last_auth_at)
    .text(tenant_id)
    .text(id)
    .owned(to_json(previous))
}

pub(crate) fn rename_method<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    id: &'a str,
    name: Option<&'a str>,
) -> Statement<'a> {
    Statement::new(
        "UPDATE authentication_methods SET name = $1 WHERE tenant_id = $2 AND user_id = $3 AND id = $4",
    )
    .text_or_null(name)
    .text(tenant_id)
    .text(user_id)
    .text(id)
}

/// Whether the method is there (after a removal that did not happen).
pub(crate) fn method_exists<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    id: &'a str,
) -> Statement<'a> {
    Statement::new(
        "SELECT 1 FROM authentication_methods WHERE tenant_id = $1 AND user_id = $2 AND id = $3",
    )
    .text(tenant_id)
    .text(user_id)
    .text(id)
}

/// Whether the user has a password (after a removal that did not happen).
pub(crate) fn password_exists<'a>(tenant_id: &'a str, user_id: &'a str) -> Statement<'a> {
    Statement::new(
        "SELECT 1 FROM users WHERE tenant_id = $1 AND user_id = $2 AND password_hash IS NOT NULL",
    )
    .text(tenant_id)
    .text(user_id)
}

/// A removal's outcome: done, refused (the thing is still there), missing.
pub(crate) fn removal(removed: bool, still_there: bool) -> Removal {
    match (removed, still_there) {
        (true, _) => Removal::Removed,
        (false, true) => Removal::LastLogin,
        (false, false) => Removal::Missing,
    }
}

/// Records OTP step `step` unless it or a later one was used.
pub(crate) fn consume_otp_step<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    id: &'a str,
    step: i64,
    at: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE authentication_methods SET last_otp_step = $1, last_auth_at = $2 \
         WHERE tenant_id = $3 AND user_id = $4 AND id = $5 \
           AND (last_otp_step IS NULL OR last_otp_step < $1)",
    )
    .int(step)
    .int(at)
    .text(tenant_id)
    .text(user_id)
    .text(id)
}

pub(crate) fn create_enrollment<'a>(
    tenant_id: &'a str,
    session_digest: &'a str,
    ticket_digest: Option<&'a str>,
    row: &'a EnrollmentRow,
) -> Statement<'a> {
    Statement::new(
        "INSERT INTO enrollments (session_digest, tenant_id, user_id, client_id, method_type, \
           method_id, state, attempts, created_at, expires_at, ticket_digest) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .text(session_digest)
    .text(tenant_id)
    .text(&row.user_id)
    .text(&row.client_id)
    .text(&row.method_type)
    .text(&row.method_id)
    .owned(to_json(&row.state))
    .int(row.attempts)
    .int(row.created_at)
    .int(row.expires_at)
    .text_or_null(ticket_digest)
}

/// The live enrollment of an unspent ticket, with its session's digest.
pub(crate) fn enrollment_by_ticket<'a>(
    tenant_id: &'a str,
    ticket_digest: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "SELECT session_digest, user_id, client_id, method_type, method_id, state, attempts, \
           created_at, expires_at \
         FROM enrollments WHERE ticket_digest = $1 AND tenant_id = $2 AND expires_at > $3",
    )
    .text(ticket_digest)
    .text(tenant_id)
    .int(now)
}

/// Spends a ticket: the new state written and the ticket forgotten in one
/// statement, if the state still is `previous`.
pub(crate) fn spend_enrollment_ticket<'a>(
    tenant_id: &'a str,
    ticket_digest: &'a str,
    previous: &serde_json::Value,
    state: &serde_json::Value,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE enrollments SET state = $1, ticket_digest = NULL \
         WHERE ticket_digest = $2 AND tenant_id = $3 AND expires_at > $4 AND state = $5",
    )
    .owned(to_json(state))
    .text(ticket_digest)
    .text(tenant_id)
    .int(now)
    .owned(to_json(previous))
}

pub(crate) fn method_by_id<'a>(tenant_id: &'a str, id: &'a str) -> Statement<'a> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {METHOD_COLUMNS} FROM authentication_methods WHERE tenant_id = $1 AND id = $2"
        )
    });
    Statement::new(SQL.as_str()).text(tenant_id).text(id)
}

/// A live enrollment.
pub(crate) fn enrollment<'a>(
    tenant_id: &'a str,
    session_digest: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "SELECT user_id, client_id, method_type, method_id, state, attempts, created_at, expires_at \
         FROM enrollments WHERE session_digest = $1 AND tenant_id = $2 AND expires_at > $3",
    )
    .text(session_digest)
    .text(tenant_id)
    .int(now)
}

/// Counts a wrong attempt; the attempts made.
pub(crate) fn enrollment_failed<'a>(tenant_id: &'a str, session_digest: &'a str) -> Statement<'a> {
    Statement::new(
        "UPDATE enrollments SET attempts = attempts + 1 WHERE session_digest = $1 AND tenant_id = $2 \
         RETURNING attempts",
    )
    .text(session_digest)
    .text(tenant_id)
}

/// Takes an attempt at a live enrollment with attempts left, before its
/// answer is judged: racing answers each take their own. The row as counted.
pub(crate) fn take_enrollment_attempt<'a>(
    tenant_id: &'a str,
    session_digest: &'a str,
    max_attempts: i64,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE enrollments SET attempts = attempts + 1 \
         WHERE session_digest = $1 AND tenant_id = $2 AND expires_at > $3 AND attempts < $4 \
         RETURNING user_id, client_id, method_type, method_id, state, attempts, created_at, expires_at",
    )
    .text(session_digest)
    .text(tenant_id)
    .int(now)
    .int(max_attempts)
}

/// Gives an attempt back, if the enrollment still holds `state`.
pub(crate) fn return_enrollment_attempt<'a>(
    tenant_id: &'a str,
    session_digest: &'a str,
    state: &serde_json::Value,
) -> Statement<'a> {
    Statement::new(
        "UPDATE enrollments SET attempts = attempts - 1 \
         WHERE session_digest = $1 AND tenant_id = $2 AND attempts > 0 AND state = $3",
    )
    .text(session_digest)
    .text(tenant_id)
    .owned(to_json(state))
}

/// Deletes a live enrollment if it still holds `state`.
pub(crate) fn remove_enrollment_if<'a>(
    tenant_id: &'a str,
    session_digest: &'a str,
    state: &serde_json::Value,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "DELETE FROM enrollments \
         WHERE session_digest = $1 AND tenant_id = $2 AND expires_at > $3 AND state = $4",
    )
    .text(session_digest)
    .text(tenant_id)
    .int(now)
    .owned(to_json(state))
}

pub(crate) fn delete_enrollment<'a>(tenant_id: &'a str, session_digest: &'a str) -> Statement<'a> {
    Statement::new("DELETE FROM enrollments WHERE session_digest = $1 AND tenant_id = $2")
        .text(session_digest)
        .text(tenant_id)
}

/// Consumes a live enrollment: of racing consumers, one deletes it.
pub(crate) fn consume_enrollment<'a>(
    tenant_id: &'a str,
    session_digest: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "DELETE FROM enrollments WHERE session_digest = $1 AND tenant_id = $2 AND expires_at > $3",
    )
    .text(session_digest)
    .text(tenant_id)
    .int(now)
}

/// How many methods a user has, the password counted: what
/// `GET /me/v1/authentication-methods` lists.
fn method_count<'a>(tenant_id: &'a str, user_id: &'a str) -> Statement<'a> {
    Statement::new(
        "SELECT \
           (SELECT COUNT(*) FROM authentication_methods WHERE tenant_id = $1 AND user_id = $2) \
           + (SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND user_id = $2 \
                AND password_hash IS NOT NULL) AS n",
    )
    .text(tenant_id)
    .text(user_id)
}

/// `MethodStore::finish_enrollment` once the enrollment is consumed, in
/// the backend's transaction and with the user's writes made one at a time
/// (SQLite's single writer, PostgreSQL's advisory lock on the user): writes
/// `completion`, counting the user's methods before and after when capped
/// at `max_methods`. On `Full`, the caller drops the transaction, which
/// rolls back: the enrollment stays.
pub(crate) async fn complete(
    tx: &mut impl Conn,
    tenant_id: &str,
    completion: &Completion,
    max_methods: Option<i64>,
) -> StoreResult<Finish> {
    let capped = max_methods.zip(completion.user_id());
    let before = match capped {
        Some((_, user_id)) => method_count(tenant_id, user_id)
            .fetch_one_in(tx)
            .await?
            .int("n"),
        None => 0,
    };
    match completion {
        Completion::Consume => {}
        Completion::SignUp { user, row } => {
            insert_user(tenant_id, user)
                .execute_or_conflict_in(tx, "a user with this email already exists".into())
                .await?;
            insert_method(tenant_id, row)
                .execute_or_conflict_in(tx, credential_taken())
                .await?;
        }
        Completion::AddMethod { row, replace_type } => {
            if *replace_type {
                Statement::new(
                    "DELETE FROM authentication_methods \
                     WHERE tenant_id = $1 AND user_id = $2 AND type = $3",
                )
                .text(tenant_id)
                .text(&row.user_id)
                .text(row.method_type.as_str())
                .execute_in(tx)
                .await?;
            }
            insert_method(tenant_id, row)
                .execute_or_conflict_in(tx, credential_taken())
                .await?;
        }
        Completion::SetPassword { user_id, hash, at } => {
            let old = Statement::new(
                "SELECT password_hash FROM users WHERE tenant_id = $1 AND user_id = $2",
            )
            .text(tenant_id)
            .text(user_id)
            .fetch_optional_in(tx)
            .await?;
            if let Some(old) = old.and_then(|r| r.text_or_null("password_hash")) {
                Statement::new(
                    "INSERT INTO password_history (tenant_id, user_id, hash, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .text(tenant_id)
                .text(user_id)
                .owned(old)
                .int(*at)
                .execute_in(tx)
                .await?;
            }
            Statement::new(
                "UPDATE users SET password_hash = $1, last_password_reset = $2, updated_at = $2 \
                 WHERE tenant_id = $3 AND user_id = $4",
            )
            .text(hash)
            .int(*at)
            .text(tenant_id)
            .text(user_id)
            .execute_in(tx)
            .await?;
            Statement::new("DELETE FROM login_failures WHERE tenant_id = $1 AND user_id = $2")
                .text(tenant_id)
                .text(user_id)
                .execute_in(tx)
                .await?;
        }
    }
    if let Some((max, user_id)) = capped {
        let after = method_count(tenant_id, user_id)
            .fetch_one_in(tx)
            .await?
            .int("n");
        if after > max && after > before {
            return Ok(Finish::Full);
        }
    }
    Ok(Finish::Done)
}

/// A new method; a credential already registered in the tenant is a
/// conflict ([`credential_taken`]).
pub(crate) fn insert_method<'a>(tenant_id: &'a str, row: &'a MethodRow) -> Statement<'a> {
    Statement::new(
        "INSERT INTO authentication_methods (tenant_id, id, user_id, type, name, data, created_at, \
           last_auth_at, last_otp_step, credential_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .text(tenant_id)
    .text(&row.id)
    .text(&row.user_id)
    .text(row.method_type.as_str())
    .text_or_null(row.name.as_deref())
    .owned(to_json(&row.data))
    .int(row.created_at)
    .int_or_null(row.last_auth_at)
    .int_or_null(row.last_otp_step)
    .text_or_null(row.credential_id.as_deref())
}

pub(crate) fn credential_taken() -> String {
    "this credential is already registered".into()
}

/// The user's previous password hashes, newest first, at most `limit`.
pub(crate) fn password_history<'a, DB: Dialect>(
    tenant_id: &'a str,
    user_id: &'a str,
    limit: i64,
) -> Statement<'a> {
    Statement::composed(format!(
        "SELECT hash FROM password_history WHERE tenant_id = $1 AND user_id = $2 \
         ORDER BY created_at DESC, {} DESC LIMIT $3",
        DB::ROW_AGE
    ))
    .text(tenant_id)
    .text(user_id)
    .int_or_null(DB::limit(limit))
}

pub(crate) fn record_audit<'a>(tenant_id: &'a str, e: &'a crate::AuditEvent) -> Statement<'a> {
    Statement::new(
        "INSERT INTO audit_events (id, tenant_id, type, date, client_id, user_id, ip, user_agent, \
           details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .text(&e.id)
    .text(tenant_id)
    .text(&e.event_type)
    .int(e.date)
    .text_or_null(e.client_id.as_deref())
    .text_or_null(e.user_id.as_deref())
    .text_or_null(e.ip.as_deref())
    .text_or_null(e.user_agent.as_deref())
    .owned(to_json(&e.details))
}

/// The filter of a log search; `$1` the tenant, `$2`–`$5` the type, user,
/// client and checkpoint (each null when not asked).
fn audit_filter<DB: Dialect>() -> String {
    format!(
        "tenant_id = $1 AND (CAST($2 AS TEXT) IS NULL OR type = $2) \
         AND (CAST($3 AS TEXT) IS NULL OR user_id = $3) \
         AND (CAST($4 AS TEXT) IS NULL OR client_id = $4) \
         AND (CAST($5 AS TEXT) IS NULL OR {age} > \
              (SELECT {age} FROM audit_events WHERE tenant_id = $1 AND id = $5))",
        age = DB::ROW_AGE
    )
}

fn audit_params<'a>(st: Statement<'a>, tenant_id: &'a str, s: &AuditSearch<'a>) -> Statement<'a> {
    st.text(tenant_id)
        .text_or_null(s.event_type)
        .text_or_null(s.user_id)
        .text_or_null(s.client_id)
        .text_or_null(s.after)
}

/// A page of a log search.
pub(crate) fn search_audit<'a, DB: Dialect>(
    tenant_id: &'a str,
    s: &AuditSearch<'a>,
) -> Statement<'a> {
    let order = match (s.after.is_some(), s.newest_first) {
        (true, _) => format!("{} ASC", DB::ROW_AGE),
        (false, true) => format!("date DESC, {} DESC", DB::ROW_AGE),
        (false, false) => format!("date ASC, {} ASC", DB::ROW_AGE),
    };
    let sql = format!(
        "SELECT id, type, date, client_id, user_id, ip, user_agent, details FROM audit_events \
         WHERE {filter} ORDER BY {order} LIMIT $6 OFFSET $7",
        filter = audit_filter::<DB>()
    );
    audit_params(Statement::composed(sql), tenant_id, s)
        .int(s.limit)
        .int(s.offset)
}

/// How many events a log search finds.
pub(crate) fn count_audit<'a, DB: Dialect>(
    tenant_id: &'a str,
    s: &AuditSearch<'a>,
) -> Statement<'a> {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM audit_events WHERE {}",
        audit_filter::<DB>()
    );
    audit_params(Statement::composed(sql), tenant_id, s)
}

pub(crate) fn audit_event<'a>(tenant_id: &'a str, id: &'a str) -> Statement<'a> {
    Statement::new(
        "SELECT id, type, date, client_id, user_id, ip, user_agent, details FROM audit_events \
         WHERE tenant_id = $1 AND id = $2",
    )
    .text(tenant_id)
    .text(id)
}

/// The newest `limit` events, oldest first.
pub(crate) fn audit_events<DB: Dialect>(tenant_id: &str, limit: i64) -> Statement<'_> {
    Statement::composed(format!(
        "SELECT id, type, date, client_id, user_id, ip, user_agent, details FROM \
         (SELECT {age} AS age, id, type, date, client_id, user_id, ip, user_agent, details \
          FROM audit_events WHERE tenant_id = $1 ORDER BY date DESC, {age} DESC LIMIT $2) AS newest \
         ORDER BY date, age",
        age = DB::ROW_AGE
    ))
    .text(tenant_id)
    .int_or_null(DB::limit(limit))
}
