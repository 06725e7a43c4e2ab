//! Login sessions, login transactions and failures; grants, authorization
//! codes and refresh tokens.

use std::sync::LazyLock;

use super::rows::{Columns, refresh_token_row, user_row};
use super::tenants::USER_COLUMNS;
use super::{Statement, to_json};
use crate::{Redeem, RefreshTokenRow, SessionRow, StoreResult, UserRow};
use latchkey_core::clock::Timestamp;

pub(crate) fn create_session<'a>(
    tenant_id: &'a str,
    id_digest: &'a str,
    s: &'a SessionRow,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "INSERT INTO sessions (id_digest, tenant_id, user_id, auth_time, amr, created_at, \
           last_seen, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
    )
    .text(id_digest)
    .text(tenant_id)
    .text(&s.user_id)
    .int(s.auth_time)
    .owned(to_json(&s.amr))
    .int(now)
    .int(s.expires_at)
}

/// A live session, with when it was last seen.
pub(crate) fn session<'a>(
    tenant_id: &'a str,
    id_digest: &'a str,
    now: Timestamp,
    idle_seconds: i64,
) -> Statement<'a> {
    Statement::new(
        "SELECT user_id, auth_time, amr, expires_at, last_seen FROM sessions \
         WHERE id_digest = $1 AND tenant_id = $2 AND revoked_at IS NULL AND expires_at > $3 \
           AND last_seen > $4",
    )
    .text(id_digest)
    .text(tenant_id)
    .int(now)
    .int(now - idle_seconds)
}

/// Activity is recorded at most once a minute, to keep reads cheap: the
/// session read, and the write to make when one is due.
pub(crate) fn seen_session<'a>(
    r: &impl Columns,
    tenant_id: &'a str,
    id_digest: &'a str,
    now: Timestamp,
) -> StoreResult<(SessionRow, Option<Statement<'a>>)> {
    let touch = (now - r.int("last_seen") >= 60).then(|| {
        Statement::new("UPDATE sessions SET last_seen = $1 WHERE id_digest = $2 AND tenant_id = $3")
            .int(now)
            .text(id_digest)
            .text(tenant_id)
    });
    Ok((super::rows::session_row(r)?, touch))
}

pub(crate) fn revoke_session<'a>(
    tenant_id: &'a str,
    id_digest: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE sessions SET revoked_at = $1 \
         WHERE id_digest = $2 AND tenant_id = $3 AND revoked_at IS NULL",
    )
    .int(now)
    .text(id_digest)
    .text(tenant_id)
}

pub(crate) fn create_login_transaction<'a>(
    tenant_id: &'a str,
    id_digest: &'a str,
    request: &'a str,
    now: Timestamp,
    expires_at: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "INSERT INTO login_transactions (id_digest, tenant_id, request, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .text(id_digest)
    .text(tenant_id)
    .text(request)
    .int(now)
    .int(expires_at)
}

pub(crate) fn login_transaction<'a>(
    tenant_id: &'a str,
    id_digest: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "SELECT request FROM login_transactions \
         WHERE id_digest = $1 AND tenant_id = $2 AND expires_at > $3",
    )
    .text(id_digest)
    .text(tenant_id)
    .int(now)
}

pub(crate) fn take_login_transaction<'a>(
    tenant_id: &'a str,
    id_digest: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "DELETE FROM login_transactions \
         WHERE id_digest = $1 AND tenant_id = $2 AND expires_at > $3 RETURNING request",
    )
    .text(id_digest)
    .text(tenant_id)
    .int(now)
}

pub(crate) fn delete_login_transaction<'a>(
    tenant_id: &'a str,
    id_digest: &'a str,
) -> Statement<'a> {
    Statement::new("DELETE FROM login_transactions WHERE id_digest = $1 AND tenant_id = $2")
        .text(id_digest)
        .text(tenant_id)
}

pub(crate) fn login_failures<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    ip: &'a str,
) -> Statement<'a> {
    Statement::new(
        "SELECT failures, blocked_until FROM login_failures \
         WHERE tenant_id = $1 AND user_id = $2 AND ip = $3",
    )
    .text(tenant_id)
    .text(user_id)
    .text(ip)
}

/// One statement: concurrent failures each count (on PostgreSQL the
/// conflicting insert waits for the row, then updates the committed count).
pub(crate) fn record_login_failure<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    ip: &'a str,
    now: Timestamp,
    block_at: i64,
    block_until: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "INSERT INTO login_failures AS f (tenant_id, user_id, ip, failures, blocked_until, updated_at) \
         VALUES ($1, $2, $3, 1, CASE WHEN 1 >= $4 THEN $5 END, $6) \
         ON CONFLICT (tenant_id, user_id, ip) DO UPDATE SET failures = f.failures + 1, \
           blocked_until = CASE WHEN f.failures + 1 >= $4 THEN $5 ELSE f.blocked_until END, \
           updated_at = excluded.updated_at",
    )
    .text(tenant_id)
    .text(user_id)
    .text(ip)
    .int(block_at)
    .int(block_until)
    .int(now)
}

/// The user's live blocks: the IPs and until when.
pub(crate) fn user_blocks<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "SELECT ip, blocked_until FROM login_failures \
         WHERE tenant_id = $1 AND user_id = $2 AND blocked_until > $3 \
         ORDER BY updated_at, ip",
    )
    .text(tenant_id)
    .text(user_id)
    .int(now)
}

/// A NULL ip matches every IP of the user.
pub(crate) fn clear_login_failures<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    ip: Option<&'a str>,
) -> Statement<'a> {
    Statement::new(
        "DELETE FROM login_failures \
         WHERE tenant_id = $1 AND user_id = $2 AND (CAST($3 AS TEXT) IS NULL OR ip = $3)",
    )
    .text(tenant_id)
    .text(user_id)
    .text_or_null(ip)
}

pub(crate) fn create_grant<'a>(
    tenant_id: &'a str,
    grant_id: &'a str,
    client_id: &'a str,
    user_id: Option<&'a str>,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "INSERT INTO grants (id, tenant_id, client_id, user_id, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .text(grant_id)
    .text(tenant_id)
    .text(client_id)
    .text_or_null(user_id)
    .int(now)
}

/// The grant's revocation; no row for an unknown grant.
pub(crate) fn grant_revoked<'a>(tenant_id: &'a str, grant_id: &'a str) -> Statement<'a> {
    Statement::new("SELECT revoked_at FROM grants WHERE id = $1 AND tenant_id = $2")
        .text(grant_id)
        .text(tenant_id)
}

/// An unknown grant is treated as revoked: nothing vouches for it.
pub(crate) fn revoked(row: Option<impl Columns>) -> bool {
    row.is_none_or(|r| r.int_or_null("revoked_at").is_some())
}

pub(crate) fn revoke_grant<'a>(
    tenant_id: &'a str,
    grant_id: &'a str,
    reason: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE grants SET revoked_at = $1, revoke_reason = $2 \
         WHERE id = $3 AND tenant_id = $4 AND revoked_at IS NULL",
    )
    .int(now)
    .text(reason)
    .text(grant_id)
    .text(tenant_id)
}

/// Revokes every grant of a user (with `revoke_user_sessions`, what
/// `GrantStore::revoke_user` does where one statement cannot do both).
pub(crate) fn revoke_user_grants<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    reason: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE grants SET revoked_at = $1, revoke_reason = $2 \
         WHERE tenant_id = $3 AND user_id = $4 AND revoked_at IS NULL",
    )
    .int(now)
    .text(reason)
    .text(tenant_id)
    .text(user_id)
}

/// Ends every login session of a user.
pub(crate) fn revoke_user_sessions<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE sessions SET revoked_at = $1 \
         WHERE tenant_id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .int(now)
    .text(tenant_id)
    .text(user_id)
}

pub(crate) fn create_code<'a>(
    tenant_id: &'a str,
    code_digest: &'a str,
    grant_id: &'a str,
    request: &'a str,
    expires_at: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "INSERT INTO auth_codes (code_digest, grant_id, tenant_id, request, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .text(code_digest)
    .text(grant_id)
    .text(tenant_id)
    .text(request)
    .int(expires_at)
}

/// A code as it is, used or not.
pub(crate) fn code<'a>(tenant_id: &'a str, code_digest: &'a str) -> Statement<'a> {
    Statement::new(
        "SELECT grant_id, request, used_at, expires_at FROM auth_codes \
         WHERE code_digest = $1 AND tenant_id = $2",
    )
    .text(code_digest)
    .text(tenant_id)
}

/// What a code read without being used means.
pub(crate) fn unclaimed_code(
    row: Option<impl Columns>,
    now: Timestamp,
) -> Redeem<(String, String)> {
    match row {
        None => Redeem::Missing,
        Some(r) if r.int_or_null("used_at").is_some() => Redeem::Replayed {
            grant_id: r.text("grant_id"),
        },
        Some(r) if r.int("expires_at") > now => {
            Redeem::Fresh((r.text("grant_id"), r.text("request")))
        }
        Some(_) => Redeem::Missing,
    }
}

/// Claims a code: of racing claims, one gets (grant_id, request) back. On
/// PostgreSQL they queue on the row lock, and the ones after the winner
/// re-check `used_at IS NULL` against its committed update.
pub(crate) fn claim_code<'a>(
    tenant_id: &'a str,
    code_digest: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "UPDATE auth_codes SET used_at = $1 WHERE code_digest = $2 AND tenant_id = $3 \
         AND used_at IS NULL AND expires_at > $1 RETURNING grant_id, request",
    )
    .int(now)
    .text(code_digest)
    .text(tenant_id)
}

/// A code already used, when it was not claimed.
pub(crate) fn used_code<'a>(tenant_id: &'a str, code_digest: &'a str) -> Statement<'a> {
    Statement::new(
        "SELECT grant_id FROM auth_codes \
         WHERE code_digest = $1 AND tenant_id = $2 AND used_at IS NOT NULL",
    )
    .text(code_digest)
    .text(tenant_id)
}

/// The outcome of `redeem_code` from the claim and, without one, the read of
/// a used code.
pub(crate) fn redeemed_code(
    claimed: Option<impl Columns>,
    used: Option<impl Columns>,
) -> Redeem<(String, String)> {
    match (claimed, used) {
        (Some(r), _) => Redeem::Fresh((r.text("grant_id"), r.text("request"))),
        (None, Some(r)) => Redeem::Replayed {
            grant_id: r.text("grant_id"),
        },
        (None, None) => Redeem::Missing,
    }
}

/// A refresh token's columns, as `rows::refresh_token_row` reads them.
pub(crate) const REFRESH_TOKEN_COLUMNS: &str = "grant_id, client_id, user_id, scope, audience, \
     auth_time, amr, created_at, expires_at, idle_expires_at, rotated_at, dpop_jkt, host";

/// The columns a refresh token is inserted with, in the order of
/// [`refresh_token_values`].
pub(crate) const REFRESH_TOKEN_INSERT: &str = "refresh_tokens (token_digest, grant_id, tenant_id, \
     client_id, user_id, scope, audience, auth_time, amr, created_at, expires_at, idle_expires_at, \
     dpop_jkt, host)";

/// The values of a new refresh token (bound in the order of
/// [`REFRESH_TOKEN_INSERT`]).
pub(crate) fn refresh_token_values<'a>(
    st: Statement<'a>,
    tenant_id: &'a str,
    token_digest: &'a str,
    row: &'a RefreshTokenRow,
) -> Statement<'a> {
    st.text(token_digest)
        .text(&row.grant_id)
        .text(tenant_id)
        .text(&row.client_id)
        .text(&row.user_id)
        .text(&row.scope)
        .text_or_null(row.audience.as_deref())
        .int(row.auth_time)
        .owned(to_json(&row.amr))
        .int(row.created_at)
        .int(row.expires_at)
        .int(row.idle_expires_at)
        .text_or_null(row.dpop_jkt.as_deref())
        .text_or_null(row.host.as_deref())
}

pub(crate) fn create_refresh_token<'a>(
    tenant_id: &'a str,
    token_digest: &'a str,
    row: &'a RefreshTokenRow,
) -> Statement<'a> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO {REFRESH_TOKEN_INSERT} \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )
    });
    refresh_token_values(Statement::new(SQL.as_str()), tenant_id, token_digest, row)
}

/// A refresh token with its grant's revocation (`revoked_at`), whatever its
/// state: to tell a replay from a dead token.
pub(crate) fn refresh_token<'a>(tenant_id: &'a str, token_digest: &'a str) -> Statement<'a> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}, g.revoked_at FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
             WHERE r.token_digest = $1 AND r.tenant_id = $2",
            aliased_columns("r", "", REFRESH_TOKEN_COLUMNS)
        )
    });
    Statement::new(SQL.as_str())
        .text(token_digest)
        .text(tenant_id)
}

/// What a refresh token read by [`refresh_token`] means; `rotating` when
/// the caller tried to rotate it and did not claim it.
pub(crate) fn unclaimed_token(
    row: Option<impl Columns>,
    now: Timestamp,
    rotating: bool,
    leeway: i64,
) -> StoreResult<Redeem<RefreshTokenRow>> {
    let Some(r) = row else {
        return Ok(Redeem::Missing);
    };
    let revoked = r.int_or_null("revoked_at").is_some();
    let token = refresh_token_row(&r, "")?;
    Ok(unclaimed_refresh_token(
        token, revoked, now, rotating, leeway,
    ))
}

/// A refresh token with its grant's revocation (`rt_revoked_at`) and its
/// user: the token's columns prefixed `rt_`, the user's as they are, NULL
/// without a user.
pub(crate) fn refresh_token_and_user<'a>(
    tenant_id: &'a str,
    token_digest: &'a str,
) -> Statement<'a> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}, g.revoked_at AS rt_revoked_at, {} \
             FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
             LEFT JOIN users u ON u.tenant_id = r.tenant_id AND u.user_id = r.user_id \
             WHERE r.token_digest = $1 AND r.tenant_id = $2",
            aliased_columns("r", "rt_", REFRESH_TOKEN_COLUMNS),
            aliased_columns("u", "", USER_COLUMNS)
        )
    });
    Statement::new(SQL.as_str())
        .text(token_digest)
        .text(tenant_id)
}

/// What [`refresh_token_and_user`] read means.
pub(crate) fn token_and_user(
    row: Option<impl Columns>,
    now: Timestamp,
    leeway: i64,
) -> StoreResult<Redeem<(RefreshTokenRow, Option<UserRow>)>> {
    let Some(r) = row else {
        return Ok(Redeem::Missing);
    };
    let revoked = r.int_or_null("rt_revoked_at").is_some();
    let user = match r.text_or_null("user_id") {
        Some(_) => Some(user_row(&r)?),
        None => None,
    };
    let token = refresh_token_row(&r, "rt_")?;
    Ok(unclaimed_refresh_token(token, revoked, now, false, leeway).map(|t| (t, user)))
}

/// The grant and client of a refresh token, whatever its state.
pub(crate) fn refresh_token_grant<'a>(tenant_id: &'a str, token_digest: &'a str) -> Statement<'a> {
    Statement::new(
        "SELECT grant_id, client_id FROM refresh_tokens WHERE token_digest = $1 AND tenant_id = $2",
    )
    .text(token_digest)
    .text(tenant_id)
}

/// The select list of `users u` joined with `authentication_methods m`: the
/// user's columns under their own names, the method's as `m_<column>`.
pub(crate) fn joined_columns(user_columns: &str, method_columns: &str) -> String {
    format!(
        "{}, {}",
        aliased_columns("u", "", user_columns),
        aliased_columns("m", "m_", method_columns)
    )
}

/// `columns` of `table`, each renamed with `prefix`.
pub(crate) fn aliased_columns(table: &str, prefix: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| {
            let c = c.trim();
            format!("{table}.{c} AS {prefix}{c}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a refresh token that was read but not claimed means: `rotating`
/// when the caller tried to rotate it.
fn unclaimed_refresh_token(
    token: RefreshTokenRow,
    revoked: bool,
    now: Timestamp,
    rotating: bool,
    leeway: i64,
) -> Redeem<RefreshTokenRow> {
    if revoked || token.expires_at <= now || token.idle_expires_at <= now {
        return Redeem::Missing;
    }
    match token.rotated_at {
        None if rotating => Redeem::Missing, // expired between claim and read
        None => Redeem::Fresh(token),
        Some(rotated) if leeway > 0 && now - rotated <= leeway => Redeem::Fresh(token),
        Some(_) => Redeem::Replayed {
            grant_id: token.grant_id,
        },
    }
}
