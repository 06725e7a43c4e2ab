//! Password reset: Auth0's `POST /dbconnections/change_password` (and the
//! hosted page's "Forgot password?") mails a reset link to the address if
//! it has an account, and answers the same either way; the link's page
//! takes a new password under the connection's policy and its history,
//! and setting it ends all the user holds (grants with their refresh and
//! access tokens, login sessions), in the transaction that uses the link.

use std::sync::Arc;

use serde_json::Value;

use super::{MAX_TICKET_ATTEMPTS, Mailing, TicketError, limit, live, mail_link, spend};
use crate::context::Core;
use crate::services::audit::{self, Actor, Entry, codes};
use crate::services::email_address;
use crate::services::password_policy::{self, Violation};
use crate::store::{StoreError, TicketKind, TicketUse, UserRow};
use crate::tenant::{PasswordPolicy, Tenant};

/// Reset requests a client IP may make in an hour.
pub const REQUESTS_PER_IP_HOUR: u32 = 20;
/// Reset requests for one address in an hour, whoever asks (counted for
/// addresses without an account too).
pub const REQUESTS_PER_EMAIL_HOUR: u32 = 5;

/// A request for a reset email.
pub struct ResetRequest<'a> {
    pub client_id: &'a str,
    pub connection: &'a str,
    pub email: &'a str,
    pub ip: &'a str,
    pub mailing: Mailing,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("unknown client")]
    UnknownClient,
    #[error("the connection does not exist")]
    UnknownConnection,
    #[error("{0}")]
    BadEmail(String),
    /// Too many requests from this IP or for this address.
    #[error("too many requests")]
    Throttled(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Mails a reset link when the address has an account in the connection
/// (not blocked): the same answer, and the same work on the request,
/// either way.
pub async fn request(
    state: &Arc<Core>,
    tenant: &Arc<Tenant>,
    req: ResetRequest<'_>,
) -> Result<(), RequestError> {
    if tenant.client(req.client_id).is_none() {
        return Err(RequestError::UnknownClient);
    }
    let conn = tenant
        .database_connection(req.connection)
        .ok_or(RequestError::UnknownConnection)?;
    let email = email_address::normalize(req.email)
        .map_err(|e| RequestError::BadEmail(format!("The email {e}.")))?;
    limit(
        state,
        &format!("reset-ip:{}:{}", tenant.id, req.ip),
        REQUESTS_PER_IP_HOUR,
        3600,
    )
    .map_err(RequestError::Throttled)?;
    limit(
        state,
        &format!(
            "reset-email:{}:{}:{}",
            tenant.id,
            conn.name,
            email_address::key(&email)
        ),
        REQUESTS_PER_EMAIL_HOUR,
        3600,
    )
    .map_err(RequestError::Throttled)?;
    let user = state
        .store
        .user_by_email(&tenant.id, &conn.name, &email)
        .await?;
    if let Some(user) = user.filter(|u| !u.blocked) {
        mail_link(
            state,
            tenant,
            &user.user_id,
            &user.email,
            req.client_id,
            TicketKind::ResetPassword,
            req.mailing,
        );
    }
    Ok(())
}

/// What the reset page shows: whose password it sets, under which policy.
#[derive(Debug)]
pub struct Opened {
    pub email: String,
    pub policy: Value,
}

impl Opened {
    fn of(user: &UserRow, policy: &PasswordPolicy) -> Self {
        Self {
            email: user.email.clone(),
            policy: password_policy::policy_json(policy),
        }
    }
}

/// The reset page of a live link.
pub async fn open(state: &Core, tenant: &Tenant, ticket: &str) -> Result<Opened, TicketError> {
    let (_, row) = live(state, tenant, ticket, TicketKind::ResetPassword).await?;
    let user = state
        .store
        .user_by_id(&tenant.id, &row.user_id)
        .await?
        .ok_or(TicketError::Unknown)?;
    let conn = tenant
        .database_connection(&user.connection)
        .ok_or(TicketError::Unknown)?;
    Ok(Opened::of(&user, &conn.password_policy))
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// The new password fails the policy; the link works `remaining` more
    /// times, on the page `page` (as [`open`] would show it: the refusal
    /// counted its attempt only while the link was live).
    #[error("the password fails the connection's policy")]
    Password {
        violations: Vec<Violation>,
        remaining: i64,
        page: Opened,
    },
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ResetError {
    fn from(e: StoreError) -> Self {
        Self::Ticket(TicketError::Store(e))
    }
}

/// Who follows a link, for the log.
pub struct Follower<'a> {
    pub ip: &'a str,
    pub user_agent: &'a str,
}

/// Sets the new password of the link's user, ending all they hold;
/// records `scp` (or `fcp`).
pub async fn reset(
    state: &Core,
    tenant: &Tenant,
    ticket: &str,
    new_password: &str,
    who: &Follower<'_>,
) -> Result<UserRow, ResetError> {
    let (digest, row) = live(state, tenant, ticket, TicketKind::ResetPassword).await?;
    let outcome = set_password(state, tenant, &digest, &row.user_id, new_password).await;
    let actor = Actor {
        tenant_id: &tenant.id,
        client_id: &row.client_id,
        user_id: &row.user_id,
        ip: who.ip,
        user_agent: who.user_agent,
    };
    let (code, error) = match &outcome {
        Ok(_) => (codes::SUCCESS_CHANGE_PASSWORD, None),
        Err(e) => (codes::FAILED_CHANGE_PASSWORD, Some(e.to_string())),
    };
    let user = outcome.as_ref().ok();
    let entry = Entry {
        user_id: Some(&row.user_id),
        user_name: user.map(|u| u.email.as_str()),
        client_name: tenant.client(&row.client_id).map(|c| c.name.as_str()),
        connection: user.map(|u| u.connection.as_str()),
        error,
    };
    audit::record_login(state, &actor, code, entry).await;
    outcome
}

async fn set_password(
    state: &Core,
    tenant: &Tenant,
    digest: &str,
    user_id: &str,
    new_password: &str,
) -> Result<UserRow, ResetError> {
    let user = state
        .store
        .user_by_id(&tenant.id, user_id)
        .await?
        .ok_or(TicketError::Unknown)?;
    let conn = tenant
        .database_connection(&user.connection)
        .ok_or(TicketError::Unknown)?;
    let policy = &conn.password_policy;
    let checked = check(state, tenant, policy, &user, new_password).await?;
    let password = match checked {
        Ok(p) => p,
        Err(violations) => {
            let attempts = state
                .store
                .account_ticket_failed(
                    &tenant.id,
                    digest,
                    TicketKind::ResetPassword,
                    state.clock.now(),
                )
                .await?
                .unwrap_or(MAX_TICKET_ATTEMPTS);
            return Err(ResetError::Password {
                violations,
                remaining: (MAX_TICKET_ATTEMPTS - attempts).max(0),
                page: Opened::of(&user, policy),
            });
        }
    };
    let hash = state
        .hash_password(&password)
        .await
        .map_err(|e| ResetError::Internal(e.to_string()))?;
    let action = TicketUse::ResetPassword {
        hash: &hash,
        reason: "password_reset",
    };
    spend(state, tenant, digest, TicketKind::ResetPassword, &action).await?;
    Ok(user)
}

/// The policy's verdict on the new password (with the user's profile and
/// history).
async fn check(
    state: &Core,
    tenant: &Tenant,
    policy: &PasswordPolicy,
    user: &UserRow,
    new_password: &str,
) -> Result<Result<String, Vec<Violation>>, ResetError> {
    password_policy::check_for_user(state, &tenant.id, policy, user, new_password)
        .await
        .map_err(|e| match e {
            password_policy::UserCheckError::Store(e) => e.into(),
            password_policy::UserCheckError::Internal(e) => ResetError::Internal(e),
        })
}
