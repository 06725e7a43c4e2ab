//! Users imported from another identity provider: the transaction body
//! both backends run for one user (the backend begins it, makes the user's
//! writes take turns, and commits), and the rehash of a password at its
//! first login.

use super::methods::insert_method;
use super::rows::Columns;
use super::tenants::{email_taken, insert_user, username_key};
use super::{Conn, Statement};
use crate::{ImportRefusal, MethodRow, StoreError, StoreResult, UserRow};

/// Whether any row answers `st` (a `SELECT 1 …`).
async fn exists(tx: &mut impl Conn, st: Statement<'_>) -> StoreResult<bool> {
    Ok(st.fetch_optional_in(tx).await?.is_some())
}

/// `ImportStore::import_user` inside the backend's transaction: what the
/// user would take is looked at first, so a refusal says which it is; then
/// the user and their methods are inserted. A unique key broken by a
/// writer the checks did not see (another process's import, racing) is a
/// refusal as well. On a refusal the caller drops the transaction: it
/// rolls back, nothing is written.
pub(crate) async fn import_user(
    tx: &mut impl Conn,
    tenant_id: &str,
    user: &UserRow,
    methods: &[MethodRow],
) -> StoreResult<Result<(), ImportRefusal>> {
    let by_id = Statement::new("SELECT 1 AS one FROM users WHERE tenant_id = $1 AND user_id = $2")
        .text(tenant_id)
        .text(&user.user_id);
    if exists(tx, by_id).await? {
        return Ok(Err(ImportRefusal::UserId));
    }
    let by_email = Statement::new(
        "SELECT user_id FROM users WHERE tenant_id = $1 AND connection = $2 AND email_lower = $3",
    )
    .text(tenant_id)
    .text(&user.connection)
    .owned(user.email.to_lowercase())
    .fetch_optional_in(tx)
    .await?;
    if let Some(row) = by_email {
        return Ok(Err(ImportRefusal::Email(row.text("user_id"))));
    }
    if let Some(username) = username_key(user) {
        let by_username = Statement::new(
            "SELECT 1 AS one FROM users \
             WHERE tenant_id = $1 AND connection = $2 AND username_lower = $3",
        )
        .text(tenant_id)
        .text(&user.connection)
        .owned(username);
        if exists(tx, by_username).await? {
            return Ok(Err(ImportRefusal::Username));
        }
    }
    for m in methods {
        if let Some(credential) = &m.credential_id {
            let taken = Statement::new(
                "SELECT 1 AS one FROM authentication_methods \
                 WHERE tenant_id = $1 AND credential_id = $2",
            )
            .text(tenant_id)
            .text(credential);
            if exists(tx, taken).await? {
                return Ok(Err(ImportRefusal::Credential));
            }
        }
    }
    match insert_user(tenant_id, user)
        .execute_or_conflict_in(tx, email_taken(user))
        .await
    {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) => return Ok(Err(ImportRefusal::UserId)),
        Err(e) => return Err(e),
    }
    for m in methods {
        match insert_method(tenant_id, m)
            .execute_or_conflict_in(tx, String::new())
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => return Ok(Err(ImportRefusal::Credential)),
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(()))
}

/// `ImportStore::rehash_password`: the new hash over the old one, if the
/// old one is still the user's.
pub(crate) fn rehash_password<'a>(
    tenant_id: &'a str,
    user_id: &'a str,
    previous: &'a str,
    hash: &'a str,
) -> Statement<'a> {
    Statement::new(
        "UPDATE users SET password_hash = $1 \
         WHERE tenant_id = $2 AND user_id = $3 AND password_hash = $4",
    )
    .text(hash)
    .text(tenant_id)
    .text(user_id)
    .text(previous)
}
