//! The MFA API's grants: an `mfa_token` from `mfa_required` traded, with a
//! one-time password, an out-of-band code or a recovery code, for the
//! tokens the first factor asked for. A first factor enrolled through
//! `/mfa/associate` is confirmed by its first answer here.

use super::{GrantError, TokenRequest};
use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::services::factors::{self, Answered};
use crate::services::mfa::{self, Answer, MfaError, Pending};
use crate::services::push::transactions::{self, Poll};
use crate::services::tokens::TokenResponse;
use crate::store::Completion;
use crate::tenant::Tenant;

/// `grant_type=http://auth0.com/oauth/grant-type/mfa-otp`: a TOTP code.
pub struct MfaOtp<'a> {
    pub mfa_token: &'a str,
    pub otp: &'a str,
}

/// `grant_type=http://auth0.com/oauth/grant-type/mfa-oob`: the code sent by
/// email, SMS or voice call after `POST /mfa/challenge`, as `binding_code`;
/// or, for a push notification, the `oob_code` alone, polled.
pub struct MfaOob<'a> {
    pub mfa_token: &'a str,
    pub oob_code: &'a str,
    pub binding_code: Option<&'a str>,
}

/// `grant_type=http://auth0.com/oauth/grant-type/mfa-recovery-code`.
pub struct MfaRecoveryCode<'a> {
    pub mfa_token: &'a str,
    pub recovery_code: &'a str,
}

fn answer<'a>(req: &TokenRequest<'a>, token: &'a str) -> Answer<'a> {
    Answer {
        client: req.client,
        token,
        ip: req.ip,
        user_agent: req.user_agent,
        via: "mfa_api",
    }
}

pub(super) async fn otp(
    core: &Core,
    req: &TokenRequest<'_>,
    grant: &MfaOtp<'_>,
) -> Result<TokenResponse, GrantError> {
    let answer = answer(req, grant.mfa_token);
    let tenant = req.tenant;
    if let Some((user_id, pending, _)) =
        mfa::confirm_association(core, tenant, req.host, &answer, grant.otp, None).await?
    {
        mfa::audit(core, tenant, &answer, &user_id, "otp", None).await;
        return after_second_factor(core, req, &user_id, pending, Answered::Otp, None).await;
    }
    let (user_id, pending) = factors::totp::verify_otp(core, tenant, &answer, grant.otp).await?;
    mfa::audit(core, tenant, &answer, &user_id, "otp", None).await;
    after_second_factor(core, req, &user_id, pending, Answered::Otp, None).await
}

pub(super) async fn oob(
    core: &Core,
    req: &TokenRequest<'_>,
    grant: &MfaOob<'_>,
) -> Result<TokenResponse, GrantError> {
    let answer = answer(req, grant.mfa_token);
    let tenant = req.tenant;
    let binding_code = grant.binding_code.unwrap_or("");
    if let Some((user_id, pending, answered)) = mfa::confirm_association(
        core,
        tenant,
        req.host,
        &answer,
        binding_code,
        Some(grant.oob_code),
    )
    .await?
    {
        mfa::audit(core, tenant, &answer, &user_id, "oob", None).await;
        return after_second_factor(core, req, &user_id, pending, answered, None).await;
    }
    if let Some((user_id, pending)) = push(core, tenant, &answer, grant.oob_code).await? {
        return after_second_factor(core, req, &user_id, pending, Answered::Push, None).await;
    }
    let Some(binding_code) = grant.binding_code else {
        return Err(GrantError::MissingParameter("binding_code"));
    };
    let (user_id, pending, answered) =
        factors::codes::verify_oob(core, tenant, &answer, grant.oob_code, binding_code).await?;
    mfa::audit(core, tenant, &answer, &user_id, "oob", None).await;
    after_second_factor(core, req, &user_id, pending, answered, None).await
}

/// A poll of the push transaction of `oob_code`, if it is one of this
/// login's: pending, too soon, rejected or expired are errors the app
/// reads; approved consumes the transaction, then the `mfa_token`.
async fn push(
    core: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
    oob_code: &str,
) -> Result<Option<(String, Pending)>, GrantError> {
    let (row, pending) = mfa::answering(core, tenant, answer).await?;
    let token_digest = secret_digest(answer.token);
    let Some(tx) = transactions::by_oob_code(core, tenant, oob_code).await? else {
        return Ok(None);
    };
    // Another login's transaction.
    if !transactions::belongs(&tx, &token_digest, &row.client_id) {
        return Err(MfaError::BadToken.into());
    }
    let outcome = match transactions::poll(core, tenant, &tx).await? {
        Poll::Approved => {
            let now = core.clock.now();
            if !core
                .store
                .complete_enrollment(&tenant.id, &token_digest, &Completion::Consume, now)
                .await?
            {
                return Err(MfaError::BadToken.into());
            }
            mfa::audit(
                core,
                tenant,
                answer,
                &row.user_id,
                "push-notification",
                None,
            )
            .await;
            return Ok(Some((row.user_id, pending)));
        }
        Poll::Pending => MfaError::AuthorizationPending,
        Poll::SlowDown => MfaError::SlowDown,
        Poll::Rejected => MfaError::Rejected,
        Poll::Expired => MfaError::Expired,
        Poll::Gone => MfaError::BadToken,
        Poll::Removed => MfaError::NoAuthenticator("push-notification"),
    };
    Err(outcome.into())
}

/// The code is replaced, and the new one is in the response
/// (`recovery_code`), to be shown once.
pub(super) async fn recovery_code(
    core: &Core,
    req: &TokenRequest<'_>,
    grant: &MfaRecoveryCode<'_>,
) -> Result<TokenResponse, GrantError> {
    let answer = answer(req, grant.mfa_token);
    let (user_id, pending, fresh) = factors::recovery_code::verify_recovery_code(
        core,
        req.tenant,
        &answer,
        grant.recovery_code,
    )
    .await?;
    mfa::audit(core, req.tenant, &answer, &user_id, "recovery-code", None).await;
    after_second_factor(
        core,
        req,
        &user_id,
        pending,
        Answered::RecoveryCode,
        Some(fresh),
    )
    .await
}

async fn after_second_factor(
    core: &Core,
    req: &TokenRequest<'_>,
    user_id: &str,
    pending: Pending,
    answered: Answered,
    recovery_code: Option<String>,
) -> Result<TokenResponse, GrantError> {
    let user = req.user(core, user_id).await?;
    let granted = req.user_grant(&user, pending.audience.as_deref(), &pending.scope)?;
    let mut amr = pending.amr.clone();
    for m in std::iter::once("mfa").chain(answered.amr()) {
        if !amr.iter().any(|a| a == m) {
            amr.push(m.to_string());
        }
    }
    let now = core.clock.now();
    let mut response = req
        .new_grant_tokens(core, &user, &granted, now, &amr, Some(pending.gty.as_str()))
        .await?;
    response.recovery_code = recovery_code;
    Ok(response)
}
