//! Password: the enrollment shows the connection's policy; verification
//! checks the new password against all of it and sets it.

use serde_json::{Value, json};

use super::SecondFactor;
use crate::context::Core;
use crate::services::enrollment::{Challenge, EnrollError, Outcome, Who};
use crate::services::password_policy;
use crate::store::{Completion, UserRow};

async fn user(state: &Core, who: &Who<'_>) -> Result<UserRow, EnrollError> {
    state
        .store
        .user_by_id(&who.tenant.id, who.user_id)
        .await?
        .ok_or_else(|| EnrollError::Invalid("The user no longer exists.".into()))
}

pub(crate) async fn start(
    state: &Core,
    who: &Who<'_>,
    connection: Option<String>,
    identity_user_id: Option<String>,
) -> Result<(String, Value, Challenge), EnrollError> {
    let user = user(state, who).await?;
    if let Some(c) = &connection
        && *c != user.connection
    {
        return Err(EnrollError::Field {
            pointer: "/connection",
            detail: format!("The user has no identity in the connection {c}."),
        });
    }
    if let Some(id) = &identity_user_id
        && *id != user.user_id
    {
        return Err(EnrollError::Field {
            pointer: "/identity_user_id",
            detail: "No such identity for this user.".into(),
        });
    }
    let conn = who
        .tenant
        .database_connection(&user.connection)
        .ok_or_else(|| EnrollError::Invalid("The user's connection no longer exists.".into()))?;
    Ok((
        "password|new".to_string(),
        json!({}),
        Challenge::Password {
            policy: password_policy::policy_json(&conn.password_policy),
        },
    ))
}

pub(crate) async fn finish(
    state: &Core,
    who: &Who<'_>,
    new_password: &str,
) -> Result<Outcome, EnrollError> {
    let user = user(state, who).await?;
    let conn = who
        .tenant
        .database_connection(&user.connection)
        .ok_or_else(|| EnrollError::Invalid("The user's connection no longer exists.".into()))?;
    let policy = &conn.password_policy;
    let checked =
        password_policy::check_for_user(state, &who.tenant.id, policy, &user, new_password)
            .await
            .map_err(|e| match e {
                password_policy::UserCheckError::Store(e) => EnrollError::from(e),
                password_policy::UserCheckError::Internal(e) => EnrollError::Internal(e),
            })?;
    let password = match checked {
        Ok(p) => p,
        Err(violations) => {
            let detail = violations
                .iter()
                .map(|v| v.detail())
                .collect::<Vec<_>>()
                .join(" ");
            return Ok(Outcome::Refused {
                pointer: "/new_password",
                detail,
            });
        }
    };
    let hash = state
        .hash_password(&password)
        .await
        .map_err(|e| EnrollError::Internal(e.to_string()))?;
    Ok(Outcome::Done(Box::new(Completion::SetPassword {
        user_id: user.user_id.clone(),
        hash,
        at: state.clock.now(),
    })))
}

/// Not a second factor: the first factor.
pub(crate) const SECOND_FACTOR: Option<SecondFactor> = None;
