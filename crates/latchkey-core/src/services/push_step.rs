//! The hosted login's push option (docs/push-notifications.md, "The hosted
//! page"): a login's second step answered by approving it on a push device.
//! The page sends a notification through the MFA API's challenge (the login
//! is its `mfa_token`), at most one every 10 seconds and five per step; it
//! reads where the login's newest transaction stands without changing it;
//! and it finishes once, when that transaction is approved: the transaction
//! is consumed, then the `mfa_token` spent. A transaction whose notification
//! the provider refused is closed at once (rejected, with a reason only this
//! module writes), so the page says it was not sent rather than waiting for
//! it, and choosing the method again sends a new one.

use crate::clock::Timestamp;
use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::services::factors::Answered;
use crate::services::mfa::{self, Answer, Challenge, MfaError, Requester};
use crate::services::push::transactions::{self, Poll};
use crate::store::{Completion, MethodRow, PushStatus, PushTransactionRow, StoreError};
use crate::tenant::{Client, FactorType, Tenant};

/// The shortest time between two notifications of one step, milliseconds.
pub const SEND_SPACING_MS: u64 = 10_000;
/// The most notifications one step sends.
pub const SENDS_PER_STEP: u32 = 5;
/// The reason a transaction that never reached its device is closed with.
const UNDELIVERED: &str = "latchkey:undelivered";

/// Whether a notification is sent when the push option is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// A new one ("send again").
    Again,
    /// One unless the step has one waiting for this method.
    UnlessWaiting,
    /// None: the page shows where the newest stands.
    Never,
}

/// Why no notification was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSent {
    /// The last one was sent less than 10 seconds ago: seconds to wait.
    TooSoon(i64),
    /// This step sent as many as it may.
    Exhausted,
    /// The MFA API's own limits (a login's, or the user's across logins):
    /// seconds to wait.
    Throttled(i64),
    /// The provider did not take it (or the device has no push
    /// credentials): the message is for the log.
    Failed(String),
}

/// Where the step's newest transaction stands, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// None was sent (or none is left).
    None,
    /// Sent to `method_id`, waiting; with number matching, the code the
    /// page shows.
    Waiting {
        method_id: String,
        binding_code: Option<String>,
        expires_at: Timestamp,
    },
    /// Approved on the device: the page may finish the login.
    Approved,
    Rejected,
    /// Unanswered at its end.
    Expired,
    /// Its notification was not sent.
    Undelivered,
}

impl Status {
    /// The name the page's script knows it by.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Waiting { .. } => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Undelivered => "failed",
        }
    }
}

/// The step's (the `mfa_token`'s) newest transaction.
async fn newest(
    core: &Core,
    tenant: &Tenant,
    token: &str,
) -> Result<Option<PushTransactionRow>, StoreError> {
    transactions::of_login(core, tenant, &secret_digest(token)).await
}

fn status_of(row: Option<PushTransactionRow>, now: Timestamp) -> Status {
    let Some(row) = row else {
        return Status::None;
    };
    if row.consumed_at.is_some() {
        return Status::None;
    }
    match row.status {
        PushStatus::Approved => Status::Approved,
        PushStatus::Rejected if row.reason.as_deref() == Some(UNDELIVERED) => Status::Undelivered,
        PushStatus::Rejected => Status::Rejected,
        PushStatus::Pending if row.expires_at <= now => Status::Expired,
        PushStatus::Pending => Status::Waiting {
            method_id: row.method_id,
            binding_code: row.binding_code,
            expires_at: row.expires_at,
        },
    }
}

/// Where the step of `token` stands (read only: the page polls this).
pub async fn status(core: &Core, tenant: &Tenant, token: &str) -> Result<Status, StoreError> {
    Ok(status_of(
        newest(core, tenant, token).await?,
        core.clock.now(),
    ))
}

/// Sends a notification to `method` for the step of `token`, as `send`
/// says and within the step's limits. The step must be alive (a dead one
/// is [`MfaError::BadToken`]).
#[allow(clippy::too_many_arguments)]
pub async fn send(
    core: &Core,
    tenant: &Tenant,
    client: &Client,
    token: &str,
    method: &MethodRow,
    send: SendMode,
    languages: &[String],
    from: &Requester<'_>,
) -> Result<Result<(), NotSent>, MfaError> {
    if method.method_type != FactorType::PushNotification {
        return Err(MfaError::NoAuthenticator("push"));
    }
    match send {
        SendMode::Never => return Ok(Ok(())),
        SendMode::UnlessWaiting => {
            let waiting = matches!(
                status(core, tenant, token).await?,
                Status::Waiting { method_id, .. } if method_id == method.id
            );
            if waiting {
                return Ok(Ok(()));
            }
        }
        SendMode::Again => {}
    }
    // The step must be alive before anything is counted.
    mfa::lookup(core, tenant, token, Some(client)).await?;
    let digest = secret_digest(token);
    let spacing = format!("push-step-spacing:{}:{digest}", tenant.id);
    let now = core.clock.now();
    let d = core.limiter.take(&spacing, 1, SEND_SPACING_MS);
    if !d.allowed {
        return Ok(Err(NotSent::TooSoon(d.retry_after(now))));
    }
    // One bucket of five for the step's whole life.
    let step_ms = u64::try_from(mfa::MFA_TOKEN_TTL * 1000).unwrap_or(u64::MAX);
    let d = core.limiter.take(
        &format!("push-step-sends:{}:{digest}", tenant.id),
        SENDS_PER_STEP,
        step_ms,
    );
    if !d.allowed {
        core.limiter.give_back(&spacing, SEND_SPACING_MS);
        return Ok(Err(NotSent::Exhausted));
    }
    let before = core.clock.now();
    match mfa::challenge(
        core,
        tenant,
        client,
        token,
        &["oob"],
        Some(&method.id),
        languages,
        from,
    )
    .await
    {
        Ok(Challenge::Push { .. }) => Ok(Ok(())),
        Ok(_) => Err(MfaError::Internal(
            "a push method was challenged without a notification".into(),
        )),
        Err(MfaError::Delivery(why)) => {
            close_undelivered(core, tenant, token, method, before).await?;
            Ok(Err(NotSent::Failed(why)))
        }
        Err(MfaError::Throttled(seconds)) => Ok(Err(NotSent::Throttled(seconds))),
        Err(e) => Err(e),
    }
}

/// Closes the transaction this send stored (the step's newest, for this
/// method, made since `since`) when its notification was not sent; a
/// device without push credentials stored none, and an older one is left.
async fn close_undelivered(
    core: &Core,
    tenant: &Tenant,
    token: &str,
    method: &MethodRow,
    since: Timestamp,
) -> Result<(), StoreError> {
    let Some(row) = newest(core, tenant, token).await? else {
        return Ok(());
    };
    if row.status == PushStatus::Pending && row.method_id == method.id && row.created_at >= since {
        core.store
            .resolve_push_transaction(
                &tenant.id,
                &row.id,
                PushStatus::Rejected,
                Some(UNDELIVERED),
                core.clock.now(),
            )
            .await?;
    }
    Ok(())
}

/// The step answered by its newest transaction, approved: consumed (once),
/// then the `mfa_token` spent; the answer is logged as the user's. Not
/// approved (yet) is [`MfaError::AuthorizationPending`], and rejected and
/// expired their own errors.
pub async fn answer(
    core: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
) -> Result<Answered, MfaError> {
    let (row, _) = mfa::answering(core, tenant, answer).await?;
    let Some(tx) = newest(core, tenant, answer.token).await? else {
        return Err(MfaError::NoAuthenticator("push"));
    };
    match transactions::poll(core, tenant, &tx).await? {
        Poll::Approved => {}
        Poll::Pending | Poll::SlowDown => return Err(MfaError::AuthorizationPending),
        Poll::Rejected => return Err(MfaError::Rejected),
        Poll::Expired => return Err(MfaError::Expired),
        Poll::Gone => return Err(MfaError::BadToken),
        Poll::Removed => return Err(MfaError::NoAuthenticator("push-notification")),
    }
    let spent = core
        .store
        .complete_enrollment(
            &tenant.id,
            &secret_digest(answer.token),
            &Completion::Consume,
            core.clock.now(),
        )
        .await?;
    if !spent {
        return Err(MfaError::BadToken);
    }
    mfa::audit(
        core,
        tenant,
        answer,
        &row.user_id,
        FactorType::PushNotification.as_str(),
        None,
    )
    .await;
    Ok(Answered::Push)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(status: PushStatus, expires_at: Timestamp) -> PushTransactionRow {
        PushTransactionRow {
            id: "txl_1".into(),
            user_id: "auth0|u".into(),
            method_id: "push-notification|dev_1".into(),
            client_id: "app".into(),
            login_digest: "d".into(),
            token_digest: "t".into(),
            challenge_digest: "c".into(),
            oob_digest: "o".into(),
            binding_code: Some("42".into()),
            status,
            reason: None,
            context: json!({}),
            created_at: 0,
            expires_at,
            polled_at: None,
            resolved_at: None,
            consumed_at: None,
        }
    }

    #[test]
    fn a_transaction_reads_as_the_page_shows_it() {
        assert_eq!(status_of(None, 10), Status::None);
        assert_eq!(
            status_of(Some(row(PushStatus::Pending, 300)), 10),
            Status::Waiting {
                method_id: "push-notification|dev_1".into(),
                binding_code: Some("42".into()),
                expires_at: 300
            }
        );
        assert_eq!(
            status_of(Some(row(PushStatus::Pending, 300)), 300),
            Status::Expired
        );
        assert_eq!(
            status_of(Some(row(PushStatus::Approved, 300)), 400),
            Status::Approved
        );
        assert_eq!(
            status_of(Some(row(PushStatus::Rejected, 300)), 10),
            Status::Rejected
        );
        let mut undelivered = row(PushStatus::Rejected, 300);
        undelivered.reason = Some(UNDELIVERED.into());
        assert_eq!(status_of(Some(undelivered), 10), Status::Undelivered);
        let mut consumed = row(PushStatus::Approved, 300);
        consumed.consumed_at = Some(20);
        assert_eq!(status_of(Some(consumed), 30), Status::None);
    }
}
