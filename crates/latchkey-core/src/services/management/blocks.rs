//! `/user-blocks`: the brute-force blocks on a user's logins (too many
//! wrong passwords from one IP, see `services::login`), read and lifted by
//! support through the Management API, by user ID or by identifier (an
//! email, or a username of a database connection). Auth0's shape:
//! `{blocked_for: [{identifier, ip, connection}]}`. Lifting is logged
//! (`sapi`).

use serde_json::{Value, json};

use super::{Caller, ManagementError, record};
use crate::context::Core;
use crate::store::UserRow;

/// Users an identifier may name, at most.
const MAX_USERS: i64 = 50;

/// With `consider_brute_force_enablement`, a tenant whose protection is
/// off has no blocks to show (Auth0's).
fn shown(caller: &Caller<'_>, consider_enablement: bool) -> bool {
    !consider_enablement || caller.tenant.config.tenant.brute_force_protection.enabled
}

async fn blocks_of(
    state: &Core,
    caller: &Caller<'_>,
    users: &[UserRow],
) -> Result<Value, ManagementError> {
    let now = state.clock.now();
    let mut blocked_for = Vec::new();
    for user in users {
        let identifier = if user.email.is_empty() {
            user.user_id.as_str()
        } else {
            user.email.as_str()
        };
        for (ip, _) in state
            .store
            .user_blocks(&caller.tenant.id, &user.user_id, now)
            .await?
        {
            blocked_for.push(json!({
                "identifier": identifier,
                "ip": ip,
                "connection": user.connection,
            }));
        }
    }
    Ok(json!({ "blocked_for": blocked_for }))
}

async fn user(state: &Core, caller: &Caller<'_>, id: &str) -> Result<UserRow, ManagementError> {
    state
        .store
        .user_by_id(&caller.tenant.id, id)
        .await?
        .ok_or(ManagementError::UserNotFound)
}

/// The users an identifier names: those with that email (without regard
/// to case), and those of a database connection with that username.
async fn named(
    state: &Core,
    caller: &Caller<'_>,
    identifier: &str,
) -> Result<Vec<UserRow>, ManagementError> {
    if identifier.trim().is_empty() || identifier.chars().count() > 320 {
        return Err(ManagementError::InvalidQuery(
            "Query validation error: 'identifier must be an email, a username or a phone number' \
             on property identifier."
                .into(),
        ));
    }
    let tenant = &caller.tenant;
    let mut users = state
        .store
        .users_by_email(&tenant.id, identifier, MAX_USERS)
        .await?;
    for connection in tenant
        .config
        .connections
        .iter()
        .filter(|c| c.strategy.is_database())
    {
        if let Some(u) = state
            .store
            .user_by_username(&tenant.id, &connection.name, identifier)
            .await?
            && !users.iter().any(|x| x.user_id == u.user_id)
        {
            users.push(u);
        }
    }
    Ok(users)
}

/// `GET /user-blocks/{id}`.
pub async fn of_user(
    state: &Core,
    caller: &Caller<'_>,
    id: &str,
    consider_enablement: bool,
) -> Result<Value, ManagementError> {
    let u = user(state, caller, id).await?;
    if !shown(caller, consider_enablement) {
        return Ok(json!({ "blocked_for": [] }));
    }
    blocks_of(state, caller, &[u]).await
}

/// `GET /user-blocks?identifier=`.
pub async fn of_identifier(
    state: &Core,
    caller: &Caller<'_>,
    identifier: &str,
    consider_enablement: bool,
) -> Result<Value, ManagementError> {
    let users = named(state, caller, identifier).await?;
    if !shown(caller, consider_enablement) {
        return Ok(json!({ "blocked_for": [] }));
    }
    blocks_of(state, caller, &users).await
}

/// `DELETE /user-blocks/{id}`: every IP's block of the user lifted.
pub async fn unblock_user(
    state: &Core,
    caller: &Caller<'_>,
    id: &str,
) -> Result<(), ManagementError> {
    let outcome = match user(state, caller, id).await {
        Ok(u) => state
            .store
            .clear_login_failures(&caller.tenant.id, &u.user_id, None)
            .await
            .map_err(ManagementError::from),
        Err(e) => Err(e),
    };
    record(state, caller, "Unblock a user", Some(id), &outcome).await;
    outcome
}

/// `DELETE /user-blocks?identifier=`: the blocks of every user it names.
pub async fn unblock_identifier(
    state: &Core,
    caller: &Caller<'_>,
    identifier: &str,
) -> Result<(), ManagementError> {
    let users = named(state, caller, identifier).await?;
    for u in &users {
        let outcome = state
            .store
            .clear_login_failures(&caller.tenant.id, &u.user_id, None)
            .await
            .map_err(ManagementError::from);
        record(state, caller, "Unblock a user", Some(&u.user_id), &outcome).await;
        outcome?;
    }
    Ok(())
}
