//! Email verification: the link mailed after a sign-up (or sent again on
//! request) sets the user's `email_verified` when followed, once. Sending
//! it again answers the same whether the address has an account or not.

use std::sync::Arc;

use super::reset::Follower;
use super::{Mailing, TicketError, limit, live, mail_link, spend};
use crate::context::Core;
use crate::services::audit::{self, Actor, Entry, codes};
use crate::services::email_address;
use crate::store::{TicketKind, TicketUse, UserRow};
use crate::tenant::Tenant;

/// Verification emails a client IP may ask for in an hour.
pub const RESENDS_PER_IP_HOUR: u32 = 10;
/// Verification emails for one address in an hour (counted for addresses
/// without an account too).
pub const RESENDS_PER_EMAIL_HOUR: u32 = 3;

/// Verifies the email of the link's user; records `sv` (or `fv`).
pub async fn verify(
    state: &Core,
    tenant: &Tenant,
    ticket: &str,
    who: &Follower<'_>,
) -> Result<UserRow, TicketError> {
    let outcome = use_ticket(state, tenant, ticket).await;
    let (user_id, client_id) = match &outcome {
        Ok((user, client_id)) => (Some(user.user_id.as_str()), client_id.as_str()),
        Err(_) => (None, ""),
    };
    let actor = Actor {
        tenant_id: &tenant.id,
        client_id,
        user_id: user_id.unwrap_or(""),
        ip: who.ip,
        user_agent: who.user_agent,
    };
    let (code, error) = match &outcome {
        Ok(_) => (codes::SUCCESS_VERIFICATION_EMAIL, None),
        Err(TicketError::Store(_)) => return outcome.map(|(u, _)| u),
        Err(e) => (codes::FAILED_VERIFICATION_EMAIL, Some(e.to_string())),
    };
    let user = outcome.as_ref().ok().map(|(u, _)| u);
    let entry = Entry {
        user_id,
        user_name: user.map(|u| u.email.as_str()),
        client_name: tenant.client(client_id).map(|c| c.name.as_str()),
        connection: user.map(|u| u.connection.as_str()),
        error,
    };
    audit::record_login(state, &actor, code, entry).await;
    outcome.map(|(u, _)| u)
}

async fn use_ticket(
    state: &Core,
    tenant: &Tenant,
    ticket: &str,
) -> Result<(UserRow, String), TicketError> {
    let (digest, row) = live(state, tenant, ticket, TicketKind::VerifyEmail).await?;
    spend(
        state,
        tenant,
        &digest,
        TicketKind::VerifyEmail,
        &TicketUse::VerifyEmail,
    )
    .await?;
    let user = state
        .store
        .user_by_id(&tenant.id, &row.user_id)
        .await?
        .ok_or(TicketError::Unknown)?;
    Ok((user, row.client_id))
}

/// A request to send the verification email again.
pub struct Resend<'a> {
    pub client_id: &'a str,
    /// The connection; the tenant's first database connection when absent.
    pub connection: Option<&'a str>,
    pub email: &'a str,
    pub ip: &'a str,
    pub mailing: Mailing,
}

/// Mails a new verification link when the address has an account whose
/// email is not verified yet; the same answer either way. The seconds to
/// wait when too many were asked for (from this IP, or for this address).
pub async fn resend(
    state: &Arc<Core>,
    tenant: &Arc<Tenant>,
    req: Resend<'_>,
) -> Result<(), ResendError> {
    let conn = match req.connection {
        Some(name) => tenant.database_connection(name),
        None => tenant.default_connection(),
    }
    .ok_or(ResendError::UnknownConnection)?;
    let Ok(email) = email_address::normalize(req.email) else {
        return Ok(());
    };
    limit(
        state,
        &format!("verify-ip:{}:{}", tenant.id, req.ip),
        RESENDS_PER_IP_HOUR,
        3600,
    )
    .map_err(ResendError::Throttled)?;
    limit(
        state,
        &format!(
            "verify-email:{}:{}:{}",
            tenant.id,
            conn.name,
            email_address::key(&email)
        ),
        RESENDS_PER_EMAIL_HOUR,
        3600,
    )
    .map_err(ResendError::Throttled)?;
    let user = state
        .store
        .user_by_email(&tenant.id, &conn.name, &email)
        .await
        .map_err(ResendError::Store)?;
    if let Some(user) = user.filter(|u| !u.blocked && !u.email_verified) {
        mail_link(
            state,
            tenant,
            &user.user_id,
            &user.email,
            req.client_id,
            TicketKind::VerifyEmail,
            req.mailing,
        );
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error("the connection does not exist")]
    UnknownConnection,
    #[error("too many requests")]
    Throttled(i64),
    #[error(transparent)]
    Store(crate::store::StoreError),
}
