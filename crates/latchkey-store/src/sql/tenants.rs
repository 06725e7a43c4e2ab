//! Tenants and their domains, signing keys, the meta table, users.

use super::rows::Columns;
use super::{Conn, Dialect, Statement, to_json};
use crate::{SigningKeyRow, StoreError, StoreResult, UserRow};
use latchkey_core::clock::Timestamp;

pub(crate) fn tenant_by_domain(domain: &str) -> Statement<'_> {
    Statement::new(
        "SELECT t.id, t.name, t.config, t.revision FROM tenant_domains d \
         JOIN tenants t ON t.id = d.tenant_id WHERE d.domain = $1",
    )
    .text(domain)
}

pub(crate) fn tenant_by_name(name: &str) -> Statement<'_> {
    Statement::new("SELECT id, name, config, revision FROM tenants WHERE name = $1").text(name)
}

/// Every tenant, by name in byte order.
pub(crate) fn list_tenants<DB: Dialect>() -> Statement<'static> {
    Statement::composed(format!(
        "SELECT id, name, config, revision FROM tenants ORDER BY name{}",
        DB::BYTE_ORDER
    ))
}

/// `TenantStore::upsert_tenant` inside the backend's transaction, once the
/// backend made it the only one writing tenant `name` (SQLite's single
/// writer, PostgreSQL's advisory lock). Returns the tenant ID.
pub(crate) async fn upsert_tenant(
    tx: &mut impl Conn,
    name: &str,
    new_id: &str,
    config: &str,
    domains: &[String],
    now: Timestamp,
) -> StoreResult<String> {
    let existing = Statement::new("SELECT id, config FROM tenants WHERE name = $1")
        .text(name)
        .fetch_optional_in(tx)
        .await?;
    let id = match existing {
        Some(row) => {
            let id = row.text("id");
            if row.text("config") != config {
                Statement::new(
                    "UPDATE tenants SET config = $1, revision = revision + 1, updated_at = $2 \
                     WHERE id = $3",
                )
                .text(config)
                .int(now)
                .text(&id)
                .execute_in(tx)
                .await?;
            }
            id
        }
        None => {
            Statement::new(
                "INSERT INTO tenants (id, name, config, revision, created_at, updated_at) \
                 VALUES ($1, $2, $3, 1, $4, $4)",
            )
            .text(new_id)
            .text(name)
            .text(config)
            .int(now)
            .execute_in(tx)
            .await?;
            new_id.to_string()
        }
    };
    set_domains(tx, &id, domains).await?;
    Ok(id)
}

/// `TenantStore::replace_tenant_config` inside the backend's transaction,
/// once the backend made it the only one writing tenant `name`: false when
/// the tenant is gone or its revision is no longer `revision`.
pub(crate) async fn replace_tenant_config(
    tx: &mut impl Conn,
    name: &str,
    revision: i64,
    config: &str,
    domains: Option<&[String]>,
    now: Timestamp,
) -> StoreResult<bool> {
    let Some(row) = Statement::new("SELECT id, config, revision FROM tenants WHERE name = $1")
        .text(name)
        .fetch_optional_in(tx)
        .await?
    else {
        return Ok(false);
    };
    if row.int("revision") != revision {
        return Ok(false);
    }
    let id = row.text("id");
    if row.text("config") != config {
        Statement::new(
            "UPDATE tenants SET config = $1, revision = revision + 1, updated_at = $2 WHERE id = $3",
        )
        .text(config)
        .int(now)
        .text(&id)
        .execute_in(tx)
        .await?;
    }
    if let Some(domains) = domains {
        set_domains(tx, &id, domains).await?;
    }
    Ok(true)
}

/// Makes `domains` the tenant's, the first its canonical one; `Conflict`
/// when one belongs to another tenant.
async fn set_domains(tx: &mut impl Conn, id: &str, domains: &[String]) -> StoreResult<()> {
    let taken = |d: &str| format!("domain {d} already belongs to another tenant");
    for d in domains {
        let owner = Statement::new("SELECT tenant_id FROM tenant_domains WHERE domain = $1")
            .text(d)
            .fetch_optional_in(tx)
            .await?;
        if owner.is_some_and(|owner| owner.text("tenant_id") != id) {
            return Err(StoreError::Conflict(taken(d)));
        }
    }
    Statement::new("DELETE FROM tenant_domains WHERE tenant_id = $1")
        .text(id)
        .execute_in(tx)
        .await?;
    for (i, d) in domains.iter().enumerate() {
        // A conflict here: another tenant claimed it concurrently (its
        // transaction committed after the check above).
        Statement::new(
            "INSERT INTO tenant_domains (domain, tenant_id, canonical) VALUES ($1, $2, $3)",
        )
        .text(d)
        .text(id)
        .flag(i == 0)
        .execute_or_conflict_in(tx, taken(d))
        .await?;
    }
    Ok(())
}

/// The tenant's signing keys, newest first.
pub(crate) fn signing_keys<DB: Dialect>(tenant_id: &str) -> Statement<'_> {
    Statement::composed(format!(
        "SELECT kid, sealed_private, public_jwk, created_at, superseded_at FROM signing_keys \
         WHERE tenant_id = $1 ORDER BY created_at DESC, {} DESC",
        DB::ROW_AGE
    ))
    .text(tenant_id)
}

/// `KeyStore::add_signing_key` inside the backend's transaction, once the
/// backend made it the only one changing the tenant's keys.
pub(crate) async fn add_signing_key(
    tx: &mut impl Conn,
    tenant_id: &str,
    key: &SigningKeyRow,
) -> StoreResult<()> {
    Statement::new(
        "UPDATE signing_keys SET superseded_at = $1 WHERE tenant_id = $2 AND superseded_at IS NULL",
    )
    .int(key.created_at)
    .text(tenant_id)
    .execute_in(tx)
    .await?;
    Statement::new(
        "INSERT INTO signing_keys (tenant_id, kid, sealed_private, public_jwk, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .text(tenant_id)
    .text(&key.kid)
    .text(&key.sealed_private)
    .text(&key.public_jwk)
    .int(key.created_at)
    .execute_in(tx)
    .await?;
    Ok(())
}

pub(crate) fn delete_signing_key<'a>(tenant_id: &'a str, kid: &'a str) -> Statement<'a> {
    Statement::new(
        "DELETE FROM signing_keys WHERE tenant_id = $1 AND kid = $2 AND superseded_at IS NOT NULL",
    )
    .text(tenant_id)
    .text(kid)
}

pub(crate) fn meta_get(key: &str) -> Statement<'_> {
    Statement::new("SELECT value FROM meta WHERE key = $1").text(key)
}

pub(crate) fn meta_init<'a>(key: &'a str, value: &'a str) -> Statement<'a> {
    Statement::new("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .text(key)
        .text(value)
}

/// The write the readiness probe makes, in a transaction it rolls back.
pub(crate) const PROBE_WRITE: &str = "UPDATE meta SET value = value WHERE key = 'master_key_check'";

/// A user's columns, as `rows::user_row` reads them.
pub(crate) const USER_COLUMNS: &str = "user_id, connection, email, email_verified, password_hash, profile, \
     blocked, last_password_reset, created_at, updated_at, signed_up, seeded_password";

pub(crate) fn user_by_id<'a>(tenant_id: &'a str, user_id: &'a str) -> Statement<'a> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND user_id = $2")
    });
    Statement::new(SQL.as_str()).text(tenant_id).text(user_id)
}

/// By the lowercase of `email`, as kept in `users.email_lower`.
pub(crate) fn user_by_email<'a>(
    tenant_id: &'a str,
    connection: &'a str,
    email: &'a str,
) -> Statement<'a> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE tenant_id = $1 AND connection = $2 AND email_lower = $3"
        )
    });
    Statement::new(SQL.as_str())
        .text(tenant_id)
        .text(connection)
        .owned(email.to_lowercase())
}

/// By the lowercase of `username`, as kept in `users.username_lower`.
pub(crate) fn user_by_username<'a>(
    tenant_id: &'a str,
    connection: &'a str,
    username: &'a str,
) -> Statement<'a> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE tenant_id = $1 AND connection = $2 AND username_lower = $3"
        )
    });
    Statement::new(SQL.as_str())
        .text(tenant_id)
        .text(connection)
        .owned(username.to_lowercase())
}

/// The insert of a user; `ON CONFLICT …` after it makes it an upsert.
pub(crate) const INSERT_USER: &str = "INSERT INTO users (tenant_id, user_id, connection, email, \
       email_lower, email_verified, password_hash, profile, blocked, last_password_reset, \
       created_at, updated_at, signed_up, seeded_password, email_key, username_lower) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

/// The values of `INSERT_USER`; `email_lower` is what password logins find
/// the user by, and `username_lower` (from `profile.username`) what they
/// find them by when given a username.
pub(crate) fn user_values<'a>(
    st: Statement<'a>,
    tenant_id: &'a str,
    user: &'a UserRow,
    email_lower: String,
) -> Statement<'a> {
    st.text(tenant_id)
        .text(&user.user_id)
        .text(&user.connection)
        .text(&user.email)
        .owned(email_lower)
        .flag(user.email_verified)
        .text_or_null(user.password_hash.as_deref())
        .owned(to_json(&user.profile))
        .flag(user.blocked)
        .int_or_null(user.last_password_reset)
        .int(user.created_at)
        .int(user.updated_at)
        .flag(user.signed_up)
        .text_or_null(user.seeded_password.as_deref())
        .owned(user.email.to_lowercase())
        .owned_or_null(username_key(user))
}

/// What a user's username is found and kept unique by: the lowercase of
/// `profile.username`, if they have one.
pub(crate) fn username_key(user: &UserRow) -> Option<String> {
    user.profile
        .get("username")
        .and_then(serde_json::Value::as_str)
        .map(str::to_lowercase)
}

/// A new user (a passkey sign-up).
pub(crate) fn insert_user<'a>(tenant_id: &'a str, user: &'a UserRow) -> Statement<'a> {
    user_values(
        Statement::new(INSERT_USER),
        tenant_id,
        user,
        user.email.to_lowercase(),
    )
}

/// Inserts or updates by (tenant, user_id).
pub(crate) fn upsert_user<'a>(tenant_id: &'a str, user: &'a UserRow) -> Statement<'a> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{INSERT_USER} ON CONFLICT (tenant_id, user_id) DO UPDATE SET \
               connection = excluded.connection, email = excluded.email, \
               email_lower = excluded.email_lower, email_verified = excluded.email_verified, \
               password_hash = excluded.password_hash, profile = excluded.profile, \
               blocked = excluded.blocked, last_password_reset = excluded.last_password_reset, \
               updated_at = excluded.updated_at, signed_up = excluded.signed_up, \
               seeded_password = excluded.seeded_password, email_key = excluded.email_key, \
               username_lower = excluded.username_lower"
        )
    });
    user_values(
        Statement::new(SQL.as_str()),
        tenant_id,
        user,
        user.email.to_lowercase(),
    )
}

/// What `upsert_user` answers when the email (or the username) belongs to
/// another user.
pub(crate) fn email_taken(user: &UserRow) -> String {
    match user
        .profile
        .get("username")
        .and_then(serde_json::Value::as_str)
    {
        Some(username) => format!(
            "the email {} or the username {username} is already used by another user",
            user.email
        ),
        None => format!("the email {} is already used by another user", user.email),
    }
}

/// What `create_user` answers when the user exists: the same user ID, or
/// another user of the connection with the email or username.
pub(crate) fn user_taken(user: &UserRow) -> String {
    format!(
        "the user {} exists, or another user of {} has its email or username",
        user.user_id, user.connection
    )
}

pub(crate) fn count_users(tenant_id: &str) -> Statement<'_> {
    Statement::new("SELECT COUNT(*) AS n FROM users WHERE tenant_id = $1").text(tenant_id)
}
