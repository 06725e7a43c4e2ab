//! The statements of `UpstreamLoginStore`: logins waiting for their
//! provider's callback, and the identities users log in with.

use std::sync::LazyLock;

use super::rows::{Columns, json, user_row};
use super::tenants::{INSERT_USER, USER_COLUMNS, user_values};
use super::{Conn, Statement, to_json};
use crate::{IdentityRow, StoreResult, UpstreamLoginRow, UserRow};
use latchkey_core::clock::Timestamp;

pub(crate) fn create_upstream_login<'a>(
    tenant_id: &'a str,
    state_digest: &'a str,
    row: &'a UpstreamLoginRow,
) -> Statement<'a> {
    Statement::new(
        "INSERT INTO upstream_logins (state_digest, tenant_id, tx_digest, connection, host, \
           sealed_secrets, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .text(state_digest)
    .text(tenant_id)
    .text(&row.tx_digest)
    .text(&row.connection)
    .text(&row.host)
    .text(&row.sealed_secrets)
    .int(row.created_at)
    .int(row.expires_at)
}

pub(crate) fn upstream_login<'a>(
    tenant_id: &'a str,
    state_digest: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "SELECT tx_digest, connection, host, sealed_secrets, created_at, expires_at \
         FROM upstream_logins WHERE state_digest = $1 AND tenant_id = $2 AND expires_at > $3",
    )
    .text(state_digest)
    .text(tenant_id)
    .int(now)
}

pub(crate) fn upstream_login_row(r: &impl Columns) -> UpstreamLoginRow {
    UpstreamLoginRow {
        tx_digest: r.text("tx_digest"),
        connection: r.text("connection"),
        host: r.text("host"),
        sealed_secrets: r.text("sealed_secrets"),
        created_at: r.int("created_at"),
        expires_at: r.int("expires_at"),
    }
}

/// Deletes it while live: one statement decides the one winner.
pub(crate) fn spend_upstream_login<'a>(
    tenant_id: &'a str,
    state_digest: &'a str,
    now: Timestamp,
) -> Statement<'a> {
    Statement::new(
        "DELETE FROM upstream_logins WHERE state_digest = $1 AND tenant_id = $2 AND expires_at > $3",
    )
    .text(state_digest)
    .text(tenant_id)
    .int(now)
}

/// An identity's columns, named `i_…` beside a user's.
pub(crate) const IDENTITY_COLUMNS: &str = "i.user_id AS i_user_id, i.connection AS i_connection, \
     i.provider AS i_provider, i.provider_user_id AS i_provider_user_id, \
     i.is_social AS i_is_social, i.profile_data AS i_profile_data, \
     i.created_at AS i_created_at, i.updated_at AS i_updated_at";

pub(crate) fn identity_row(r: &impl Columns) -> StoreResult<IdentityRow> {
    Ok(IdentityRow {
        user_id: r.text("i_user_id"),
        connection: r.text("i_connection"),
        provider: r.text("i_provider"),
        provider_user_id: r.text("i_provider_user_id"),
        is_social: r.flag("i_is_social"),
        profile_data: json(&r.text("i_profile_data"))?,
        created_at: r.int("i_created_at"),
        updated_at: r.int("i_updated_at"),
    })
}

/// The identity and its user, in one read.
pub(crate) fn identity<'a>(
    tenant_id: &'a str,
    connection: &'a str,
    provider_user_id: &'a str,
) -> Statement<'a> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let user_columns = USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "SELECT {IDENTITY_COLUMNS}, {user_columns} \
             FROM user_identities i \
             JOIN users u ON u.tenant_id = i.tenant_id AND u.user_id = i.user_id \
             WHERE i.tenant_id = $1 AND i.connection = $2 AND i.provider_user_id = $3"
        )
    });
    Statement::new(SQL.as_str())
        .text(tenant_id)
        .text(connection)
        .text(provider_user_id)
}

/// Both halves of an `identity` row.
pub(crate) fn identity_and_user(r: &impl Columns) -> StoreResult<(IdentityRow, UserRow)> {
    Ok((identity_row(r)?, user_row(r)?))
}

pub(crate) fn identities<'a>(tenant_id: &'a str, user_id: &'a str) -> Statement<'a> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {IDENTITY_COLUMNS} FROM user_identities i \
             WHERE i.tenant_id = $1 AND i.user_id = $2 \
             ORDER BY i.created_at, i.connection, i.provider_user_id"
        )
    });
    Statement::new(SQL.as_str()).text(tenant_id).text(user_id)
}

/// The most users a verified address is looked up for.
const MAX_SAME_EMAIL: i64 = 20;

pub(crate) fn users_with_verified_email<'a>(tenant_id: &'a str, email: &'a str) -> Statement<'a> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE tenant_id = $1 AND email_key = $2 AND email_key <> '' AND email_verified = $3 \
             ORDER BY created_at, user_id LIMIT $4"
        )
    });
    Statement::new(SQL.as_str())
        .text(tenant_id)
        .owned(email.to_lowercase())
        .flag(true)
        .int(MAX_SAME_EMAIL)
}

/// What a conflicting identity or user ID is answered.
pub(crate) fn identity_taken(identity: &IdentityRow) -> String {
    format!(
        "the identity {} of connection {} belongs to a user already",
        identity.provider_user_id, identity.connection
    )
}

fn insert_identity<'a>(tenant_id: &'a str, identity: &'a IdentityRow) -> Statement<'a> {
    Statement::new(
        "INSERT INTO user_identities (tenant_id, connection, provider_user_id, user_id, provider, \
           is_social, profile_data, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .text(tenant_id)
    .text(&identity.connection)
    .text(&identity.provider_user_id)
    .text(&identity.user_id)
    .text(&identity.provider)
    .flag(identity.is_social)
    .owned(to_json(&identity.profile_data))
    .int(identity.created_at)
    .int(identity.updated_at)
}

/// `UpstreamLoginStore::create_upstream_user` in the backend's transaction:
/// the user (its `email_lower` its user ID: it never logs in by email),
/// then its identity.
pub(crate) async fn create_upstream_user(
    tx: &mut impl Conn,
    tenant_id: &str,
    user: &UserRow,
    identity: &IdentityRow,
) -> StoreResult<()> {
    user_values(
        Statement::new(INSERT_USER),
        tenant_id,
        user,
        user.user_id.clone(),
    )
    .execute_or_conflict_in(tx, identity_taken(identity))
    .await?;
    insert_identity(tenant_id, identity)
        .execute_or_conflict_in(tx, identity_taken(identity))
        .await?;
    Ok(())
}

pub(crate) fn add_identity<'a>(tenant_id: &'a str, identity: &'a IdentityRow) -> Statement<'a> {
    insert_identity(tenant_id, identity)
}

/// `UpstreamLoginStore::update_identity` in the backend's transaction.
pub(crate) async fn update_identity(
    tx: &mut impl Conn,
    tenant_id: &str,
    identity: &IdentityRow,
    user: Option<&UserRow>,
) -> StoreResult<()> {
    Statement::new(
        "UPDATE user_identities SET profile_data = $1, updated_at = $2 \
         WHERE tenant_id = $3 AND connection = $4 AND provider_user_id = $5",
    )
    .owned(to_json(&identity.profile_data))
    .int(identity.updated_at)
    .text(tenant_id)
    .text(&identity.connection)
    .text(&identity.provider_user_id)
    .execute_in(tx)
    .await?;
    if let Some(user) = user {
        Statement::new(
            "UPDATE users SET email = $1, email_key = $2, email_verified = $3, profile = $4, \
               updated_at = $5 \
             WHERE tenant_id = $6 AND user_id = $7",
        )
        .text(&user.email)
        .owned(user.email.to_lowercase())
        .flag(user.email_verified)
        .owned(to_json(&user.profile))
        .int(user.updated_at)
        .text(tenant_id)
        .text(&user.user_id)
        .execute_in(tx)
        .await?;
    }
    Ok(())
}
