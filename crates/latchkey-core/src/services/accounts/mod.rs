//! Accounts users make and recover themselves: sign-up (`signup.rs`),
//! email verification (`verification.rs`) and password reset (`reset.rs`),
//! and what they share here: the tickets of the links mailed about an
//! account, and the mailing of those links.
//!
//! A ticket is 256 random bits, base64url, carried in the link; the store
//! keeps its digest, its user, its kind and its end, and uses it once in
//! the transaction that does what it is for. A link is mailed off the
//! request (a task of its own), so that an answer takes as long whether an
//! email was sent or not, and a slow mail server delays nobody.

pub mod reset;
pub mod signup;
pub mod verification;

use std::sync::Arc;

use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::rng::RngExt;
use crate::services::delivery::{LinkMessage, LinkPurpose};
use crate::services::language;
use crate::store::{AccountTicketRow, StoreError, TicketKind, TicketUse};
use crate::tenant::{Tenant, issuer_for_host};

/// How long a verification link works: five days, as Auth0's.
pub const VERIFY_EMAIL_TTL: i64 = 5 * 24 * 3600;
/// How long a reset link works: one hour.
pub const RESET_PASSWORD_TTL: i64 = 3600;
/// New passwords the policy refuses at one reset link before it stops
/// working.
pub const MAX_TICKET_ATTEMPTS: i64 = 5;
/// The longest ticket looked up (the ones issued are 43 characters).
const MAX_TICKET_CHARS: usize = 128;

/// The path (under the issuer) a link of `kind` opens, as Auth0's
/// Universal Login names them.
pub fn link_path(kind: TicketKind) -> &'static str {
    match kind {
        TicketKind::VerifyEmail => "u/email-verification",
        TicketKind::ResetPassword => "u/reset-password",
    }
}

fn ttl(kind: TicketKind) -> i64 {
    match kind {
        TicketKind::VerifyEmail => VERIFY_EMAIL_TTL,
        TicketKind::ResetPassword => RESET_PASSWORD_TTL,
    }
}

/// Why a link does not work.
#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    /// Not a ticket of this tenant (or of this kind).
    #[error("unknown ticket")]
    Unknown,
    #[error("the ticket was used already")]
    Used,
    #[error("the ticket has expired")]
    Expired,
    /// Too many refused attempts at it.
    #[error("too many attempts")]
    Exhausted,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The live ticket of `kind` behind `ticket`: its digest and row.
pub(crate) async fn live(
    state: &Core,
    tenant: &Tenant,
    ticket: &str,
    kind: TicketKind,
) -> Result<(String, AccountTicketRow), TicketError> {
    if ticket.is_empty() || ticket.len() > MAX_TICKET_CHARS {
        return Err(TicketError::Unknown);
    }
    let digest = secret_digest(ticket);
    let row = state
        .store
        .account_ticket(&tenant.id, &digest)
        .await?
        .filter(|r| r.kind == kind)
        .ok_or(TicketError::Unknown)?;
    if row.used_at.is_some() {
        return Err(TicketError::Used);
    }
    if row.expires_at <= state.clock.now() {
        return Err(TicketError::Expired);
    }
    if row.attempts >= MAX_TICKET_ATTEMPTS {
        return Err(TicketError::Exhausted);
    }
    Ok((digest, row))
}

/// Spends the live ticket `digest` of `kind` on `action`, in one
/// transaction: `Used` when another request spent it first (or it ended
/// since it was looked at), and then nothing of `action` is done.
pub(crate) async fn spend(
    state: &Core,
    tenant: &Tenant,
    digest: &str,
    kind: TicketKind,
    action: &TicketUse<'_>,
) -> Result<(), TicketError> {
    let used = state
        .store
        .use_account_ticket(
            &tenant.id,
            digest,
            kind,
            state.clock.now(),
            MAX_TICKET_ATTEMPTS,
            action,
        )
        .await?;
    used.map(|_| ()).ok_or(TicketError::Used)
}

/// Who a link is mailed to, and where and how.
#[derive(Debug, Clone)]
pub struct Mailing {
    /// The host the request came to: the link points there.
    pub host: String,
    /// The caller's languages, most preferred first.
    pub languages: Vec<String>,
}

/// What the mailing task takes of `Core`.
struct Mailer {
    store: Arc<dyn crate::store::Store>,
    rng: crate::rng::SharedRng,
    clock: crate::clock::SharedClock,
    delivery: crate::services::delivery::SharedDelivery,
}

/// Issues a ticket of `kind` for the user and mails its link, in a task of
/// its own (see the module's comment). A failure is logged, without the
/// link.
pub(crate) fn mail_link(
    state: &Core,
    tenant: &Arc<Tenant>,
    user_id: &str,
    email: &str,
    client_id: &str,
    kind: TicketKind,
    mailing: Mailing,
) {
    let state = Mailer {
        store: state.store.clone(),
        rng: state.rng.clone(),
        clock: state.clock.clone(),
        delivery: state.outside.delivery.clone(),
    };
    let tenant = Arc::clone(tenant);
    let (user_id, email, client_id) = (
        user_id.to_string(),
        email.to_string(),
        client_id.to_string(),
    );
    tokio::spawn(async move {
        let ticket = state.rng.token(32);
        let now = state.clock.now();
        let row = AccountTicketRow {
            user_id,
            client_id,
            kind,
            created_at: now,
            expires_at: now + ttl(kind),
            used_at: None,
            attempts: 0,
        };
        let stored = state
            .store
            .create_account_ticket(&tenant.id, &secret_digest(&ticket), &row)
            .await;
        if let Err(e) = stored {
            tracing::warn!(tenant = %tenant.name, kind = kind.as_str(), error = %e, "link not issued");
            return;
        }
        // The mail speaks the language chosen as the pages choose it; when
        // that is one the caller asked for, the link names it, so that its
        // page speaks it too (else the page follows the browser that opens
        // it).
        let asked = language::asked_for(&tenant, &mailing.languages);
        let mut link = format!(
            "{}{}?ticket={ticket}",
            issuer_for_host(&mailing.host),
            link_path(kind)
        );
        if let Some(l) = asked {
            link.push_str("&ui_locales=");
            link.push_str(l.tag());
        }
        let purpose = match kind {
            TicketKind::VerifyEmail => LinkPurpose::VerifyEmail,
            TicketKind::ResetPassword => LinkPurpose::ResetPassword,
        };
        let message = LinkMessage {
            tenant: &tenant,
            language: asked.unwrap_or_else(|| language::negotiate(&tenant, &[])),
            to: &email,
            link: &link,
            purpose,
            valid_minutes: ttl(kind) / 60,
        };
        if let Err(e) = state.delivery.send_link(&message).await {
            tracing::warn!(tenant = %tenant.name, kind = kind.as_str(), error = %e, "link email not sent");
        }
    });
}

/// Takes one request from the fixed window `key` (`limit` per `window`
/// seconds): the seconds to wait when it is spent.
pub(crate) fn limit(state: &Core, key: &str, limit: u32, window: i64) -> Result<(), i64> {
    let d = state.limiter.hit(key, limit, window);
    if d.allowed {
        Ok(())
    } else {
        Err(d.retry_after(state.clock.now()))
    }
}
