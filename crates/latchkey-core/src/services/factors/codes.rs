//! One-time codes sent by email, SMS or voice, shared by the email and phone
//! factors: six random digits, stored only as a digest keyed by a secret
//! that travels with them (an enrollment's `auth_session`, a login's
//! `oob_code`), so the digest cannot be brute-forced without it, compared in
//! constant time; sending is throttled per destination and per user. At
//! login (the MFA API's `oob` challenge, the page's "send a code"), a code
//! is sent for the `mfa_token` and answered with the `oob_code` it returns.

use serde_json::{Value, json};

use super::{Answered, Channel, destination};
use crate::context::Core;
use crate::crypto::hash::{constant_time_eq, secret_digest, sha256_b64url};
use crate::rng::RngExt;
use crate::services::delivery::{CodeChannel, Purpose, send_code};
use crate::services::enrollment::EnrollError;
use crate::services::mfa::{Answer, MfaError, Pending, ceremony, guessing, wrong_guess};
use crate::store::{Completion, EnrollmentRow, MethodRow};
use crate::tenant::{Client, Tenant};

/// Codes one destination may be sent per window, and the window.
const PER_DESTINATION: (u32, i64) = (3, 300);
/// Codes one user may have sent per window, and the window.
const PER_USER: (u32, i64) = (10, 3600);

pub(crate) fn new_code(state: &Core) -> String {
    loop {
        let mut b = [0u8; 4];
        state.rng.fill(&mut b);
        let n = u32::from_be_bytes(b);
        // 4_000_000_000 is a multiple of 10^6: no modulo bias.
        if n < 4_000_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

pub(crate) fn code_digest(auth_session: &str, code: &str) -> String {
    secret_digest(&format!("{auth_session}\0{code}"))
}

pub(crate) fn code_matches(stored: &str, auth_session: &str, code: &str) -> bool {
    constant_time_eq(
        stored.as_bytes(),
        code_digest(auth_session, code.trim()).as_bytes(),
    )
}

/// Counts a send to `destination` for `user_id`; refuses past the limits.
pub(crate) fn throttle(
    state: &Core,
    tenant_id: &str,
    user_id: &str,
    destination: &str,
) -> Result<(), EnrollError> {
    let now = state.clock.now();
    let dest = state.limiter.hit(
        &format!(
            "otp:to:{tenant_id}:{}",
            sha256_b64url(destination.to_lowercase().as_bytes())
        ),
        PER_DESTINATION.0,
        PER_DESTINATION.1,
    );
    if !dest.allowed {
        return Err(EnrollError::Throttled(dest.retry_after(now)));
    }
    let user = state.limiter.hit(
        &format!("otp:user:{tenant_id}:{user_id}"),
        PER_USER.0,
        PER_USER.1,
    );
    if !user.allowed {
        return Err(EnrollError::Throttled(user.retry_after(now)));
    }
    Ok(())
}

const OOB_KIND: &str = "mfa-oob";

/// Sends a login's code to `method` (an email address or phone number) by
/// `channel`, for the pending login `row` of `token`; returns the
/// `oob_code` the answer comes with.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send_login_code(
    state: &Core,
    tenant: &Tenant,
    client: &Client,
    token: &str,
    row: &EnrollmentRow,
    method: &MethodRow,
    channel: Channel,
    languages: &[String],
) -> Result<String, MfaError> {
    let to = destination(method)
        .ok_or_else(|| MfaError::Internal("a method without its destination".into()))?
        .to_string();
    match throttle(state, &tenant.id, &row.user_id, &to) {
        Ok(()) => {}
        Err(EnrollError::Throttled(retry_after)) => return Err(MfaError::Throttled(retry_after)),
        Err(_) => return Err(MfaError::Throttled(60)),
    }
    let code = new_code(state);
    let oob_code = state.rng.alnum(32);
    let now = state.clock.now();
    let by = match channel {
        Channel::Email => CodeChannel::Email,
        Channel::Voice => CodeChannel::Voice,
        Channel::Sms => CodeChannel::Sms,
    };
    send_code(state, tenant, languages, by, &to, &code, Purpose::Login)
        .await
        .map_err(|e| MfaError::Delivery(e.to_string()))?;
    let oob = EnrollmentRow {
        user_id: row.user_id.clone(),
        client_id: client.client_id.clone(),
        method_type: OOB_KIND.to_string(),
        method_id: method.id.clone(),
        state: json!({
            "mfa_token": secret_digest(token),
            "channel": channel.as_str(),
            "code_digest": code_digest(&oob_code, &code),
        }),
        attempts: 0,
        created_at: now,
        expires_at: row.expires_at.min(now + 300),
    };
    state
        .store
        .create_enrollment(&tenant.id, &secret_digest(&oob_code), &oob)
        .await?;
    Ok(oob_code)
}

/// Answers an out-of-band challenge with the code the user received
/// (`binding_code`). Wrong codes count against the `mfa_token`.
pub(crate) async fn verify_oob(
    state: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
    oob_code: &str,
    binding_code: &str,
) -> Result<(String, Pending, Answered), MfaError> {
    let token = answer.token;
    let (row, pending) = guessing(state, tenant, answer).await?;
    let now = state.clock.now();
    let oob = ceremony(state, tenant, token, &row.user_id, oob_code, OOB_KIND).await?;
    let stored = oob
        .state
        .get("code_digest")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !code_matches(stored, oob_code, binding_code) {
        return Err(wrong_guess(state, tenant, answer, &row, "oob").await);
    }
    let channel = Channel::stored(oob.state.get("channel").and_then(Value::as_str));
    if !state
        .store
        .complete_enrollment(&tenant.id, &secret_digest(token), &Completion::Consume, now)
        .await?
    {
        return Err(MfaError::BadToken);
    }
    state
        .store
        .complete_enrollment(
            &tenant.id,
            &secret_digest(oob_code),
            &Completion::Consume,
            now,
        )
        .await?;
    Ok((row.user_id, pending, Answered::Code(channel)))
}
