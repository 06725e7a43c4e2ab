//! Password: the enrollment shows the connection's policy; verification
//! checks the new password against all of it and sets it.

use serde_json::{Value, json};

use super::SecondFactor;
use crate::context::Core;
use crate::services::enrollment::{Challenge, EnrollError, Outcome, Who};
use crate::services::password_policy::{self, Candidate, Profile};
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

fn profile_values(user: &UserRow) -> Vec<(String, String)> {
    let mut v = vec![("email".to_string(), user.email.clone())];
    if let Some(obj) = user.profile.as_object() {
        for (k, val) in obj {
            match val {
                Value::String(s) => v.push((k.clone(), s.clone())),
                Value::Object(inner) if k == "user_metadata" => {
                    for (ik, iv) in inner {
                        if let Some(s) = iv.as_str() {
                            v.push((format!("user_metadata.{ik}"), s.to_string()));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    v
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
    let mut history: Vec<String> = Vec::new();
    if policy.history.active {
        history.extend(user.password_hash.clone());
        history.extend(
            state
                .store
                .password_history(
                    &who.tenant.id,
                    &user.user_id,
                    i64::from(policy.history.size),
                )
                .await?,
        );
    }
    let values = profile_values(&user);
    let (policy, new_password, hasher) =
        (policy.clone(), new_password.to_string(), state.passwords);
    // History comparisons are Argon2 work: off the async workers.
    let checked = tokio::task::spawn_blocking(move || {
        let candidate = Candidate {
            password: &new_password,
            profile: Profile {
                values: values
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            },
            history: &history,
        };
        let verify = |p: &str, h: &str| hasher.verify(p, h);
        password_policy::check(&policy, &candidate, &verify)
    })
    .await
    .map_err(|e| EnrollError::Internal(e.to_string()))?;
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
