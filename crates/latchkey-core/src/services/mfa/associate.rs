//! A first factor enrolled through the MFA API (`POST /mfa/associate`),
//! for a user who has none, confirmed by the mfa-otp or mfa-oob grant with
//! the same `mfa_token`.

use serde_json::Value;

use super::api::{Caller, Credential};
use super::{Answer, MfaError, Pending, answering, factors_of, lookup, second_factors, wrong};
use crate::context::Core;
use crate::crypto::hash::{constant_time_eq, secret_digest};
use crate::services::factors::{Answered, AuthenticatorType, Channel};
use crate::store::{Completion, EnrollmentRow, StoreError};
use crate::tenant::{Client, FactorType, Tenant};

/// What `POST /mfa/associate` enrolls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Associate {
    Otp,
    Phone {
        number: String,
        voice: bool,
    },
    /// To `address`, else the user's own address.
    Email {
        address: Option<String>,
    },
    /// A push device (`oob` over the `auth0` channel).
    Push,
}

/// The MFA API's `oob_channel` of push notifications (Auth0 Guardian's).
pub const PUSH_CHANNEL: &str = "auth0";

/// What `POST /mfa/associate` answers.
#[derive(Debug)]
pub struct Association {
    /// `otp` or `oob`.
    pub authenticator_type: &'static str,
    pub secret: Option<String>,
    pub barcode_uri: Option<String>,
    pub oob_channel: Option<&'static str>,
    pub oob_code: Option<String>,
    pub recovery_codes: Vec<String>,
}

/// The enrollment sessions of an association, derived from its `mfa_token`
/// (so nothing but their digests is stored): the factor's, and the first
/// recovery code's.
fn association_sessions(token: &str) -> (String, String) {
    use crate::crypto::hash::sha256_b64url;
    (
        sha256_b64url(format!("latchkey-mfa-associate\0{token}").as_bytes()),
        sha256_b64url(format!("latchkey-mfa-associate-recovery\0{token}").as_bytes()),
    )
}

#[derive(Debug)]
pub enum AssociateError {
    /// The user has a second factor: it must be used, not replaced.
    AlreadyEnrolled,
    Mfa(MfaError),
    Enroll(crate::services::enrollment::EnrollError),
}

impl From<StoreError> for AssociateError {
    fn from(e: StoreError) -> Self {
        Self::Mfa(MfaError::Store(e))
    }
}

/// The client of an association: the one the request authenticated as
/// when it named one (it must be the credential's), else the credential's
/// own, as Auth0's guide and SDKs send only the bearer token. A credential
/// whose client was removed from the tenant since is dead.
pub fn associating_client<'t>(
    tenant: &'t Tenant,
    caller: &Caller,
    named: Option<&'t Client>,
) -> Result<&'t Client, MfaError> {
    match named {
        Some(c) if c.client_id == caller.client_id => Ok(c),
        Some(_) => Err(MfaError::BadToken),
        None => tenant.client(&caller.client_id).ok_or(MfaError::BadToken),
    }
}

/// `POST /mfa/associate`: with an `mfa_token`, starts enrolling the first
/// factor of a user who has none (anyone else must answer with the factor
/// they have); with an MFA API access token carrying `enroll`, one more
/// factor of its user. The factor is confirmed by the mfa-otp or mfa-oob
/// grant with the same token as `mfa_token`, which then issues the tokens
/// (for an access token: a new one for the MFA API with its scopes). With
/// recovery codes on the tenant, the first one is made now and shown in the
/// answer; it becomes usable with the factor.
#[allow(clippy::too_many_arguments)]
pub async fn associate(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    client: &Client,
    caller: &Caller,
    token: &str,
    what: Associate,
    user_agent: &str,
    languages: &[String],
) -> Result<Association, AssociateError> {
    use crate::services::enrollment::{self, Challenge, Start, Who};
    if let Credential::AccessToken { .. } = caller.credential {
        access_token_login(state, tenant, host, client, caller, token)
            .await
            .map_err(AssociateError::Mfa)?;
    }
    let (row, _) = lookup(state, tenant, token, Some(client))
        .await
        .map_err(AssociateError::Mfa)?;
    let methods = factors_of(state, tenant, &row.user_id).await?;
    if caller.credential == Credential::MfaToken && !second_factors(&methods).is_empty() {
        return Err(AssociateError::AlreadyEnrolled);
    }
    let what = match what {
        Associate::Email { address: None } => Associate::Email {
            address: Some(
                state
                    .store
                    .user_by_id(&tenant.id, &row.user_id)
                    .await?
                    .map(|u| u.email)
                    .unwrap_or_default(),
            ),
        },
        other => other,
    };
    let who = Who {
        tenant,
        host,
        user_id: &row.user_id,
        client_id: &client.client_id,
        user_agent,
        languages,
    };
    let (session, recovery_session) = association_sessions(token);
    let (start, channel) = match &what {
        Associate::Otp => (Start::Totp, None),
        Associate::Phone { number, voice } => {
            let channel = if *voice { Channel::Voice } else { Channel::Sms };
            (
                Start::Phone {
                    phone_number: number.clone(),
                    preferred: Some(channel.as_str().into()),
                },
                Some(channel),
            )
        }
        Associate::Email { address } => (
            Start::Email {
                email: address.clone().unwrap_or_default(),
            },
            Some(Channel::Email),
        ),
        Associate::Push => (Start::PushNotification, None),
    };
    let started = enrollment::start_with_session(state, &who, start, session.clone())
        .await
        .map_err(AssociateError::Enroll)?;
    let mut recovery_codes = Vec::new();
    if tenant.config.factors.contains(&FactorType::RecoveryCode)
        && let Ok(rc) =
            enrollment::start_with_session(state, &who, Start::RecoveryCode, recovery_session).await
        && let Challenge::RecoveryCode { recovery_code } = rc.challenge
    {
        recovery_codes.push(recovery_code);
    }
    Ok(match started.challenge {
        Challenge::Totp {
            barcode_uri,
            manual_input_code,
        } => Association {
            authenticator_type: AuthenticatorType::Otp.as_str(),
            secret: Some(manual_input_code),
            barcode_uri: Some(barcode_uri),
            oob_channel: None,
            oob_code: None,
            recovery_codes,
        },
        Challenge::CodeSent => Association {
            authenticator_type: AuthenticatorType::Oob.as_str(),
            secret: None,
            barcode_uri: None,
            oob_channel: channel.map(Channel::as_str),
            oob_code: Some(session),
            recovery_codes,
        },
        Challenge::Push { barcode_uri } => Association {
            authenticator_type: AuthenticatorType::Oob.as_str(),
            secret: None,
            barcode_uri: Some(barcode_uri),
            oob_channel: Some(PUSH_CHANNEL),
            oob_code: Some(session),
            recovery_codes,
        },
        // Not what a TOTP, phone, email or push enrollment starts with.
        Challenge::Password { .. } | Challenge::RecoveryCode { .. } | Challenge::Passkey { .. } => {
            return Err(AssociateError::Mfa(MfaError::Internal(
                "an association started without a code".into(),
            )));
        }
    })
}

/// The pending login an association by an MFA API access token is
/// confirmed through: stored under the token's digest as an `mfa_token`'s
/// (so the grants take the access token as `mfa_token`), once, alive as
/// long as an `mfa_token` or the access token, whichever ends first. What
/// it issues is a new token for the MFA API with the same scopes.
async fn access_token_login(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    client: &Client,
    caller: &Caller,
    token: &str,
) -> Result<(), MfaError> {
    let Credential::AccessToken {
        scopes,
        amr,
        auth_time,
        expires_at,
    } = &caller.credential
    else {
        return Ok(());
    };
    let digest = secret_digest(token);
    let now = state.clock.now();
    if state
        .store
        .enrollment(&tenant.id, &digest, now)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let pending = Pending {
        audience: Some(crate::tenant::issuer_for_host(host) + "mfa/"),
        scope: scopes.clone(),
        amr: amr.clone(),
        auth_time: *auth_time,
        gty: "mfa".to_string(),
    };
    let row = EnrollmentRow {
        user_id: caller.user_id.clone(),
        client_id: client.client_id.clone(),
        method_type: super::KIND.to_string(),
        method_id: "mfa|login".to_string(),
        state: serde_json::to_value(&pending).map_err(|e| MfaError::Internal(e.to_string()))?,
        attempts: 0,
        created_at: now,
        expires_at: (*expires_at).min(now + super::MFA_TOKEN_TTL),
    };
    match state
        .store
        .create_enrollment(&tenant.id, &digest, &row)
        .await
    {
        // Another request with the same token stored it first.
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(MfaError::Store(e)),
    }
}

/// The mfa-otp and mfa-oob grants for a token with a pending association:
/// the code confirms the new factor (and the recovery code made with it),
/// and the token is spent. `Ok(None)` when the token has no association
/// (or, for oob, `oob_code` is not the association's): the grant goes on as
/// a challenge. Returns the user, the pending login and the channel
/// (`otp`, `sms`, `voice`, `email`).
pub(crate) async fn confirm_association(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    answer: &Answer<'_>,
    code: &str,
    oob_code: Option<&str>,
) -> Result<Option<(String, Pending, Answered)>, MfaError> {
    use crate::services::enrollment::{self, EnrollError, Proof, Who};
    let token = answer.token;
    let (session, recovery_session) = association_sessions(token);
    if oob_code.is_some_and(|c| !constant_time_eq(c.as_bytes(), session.as_bytes())) {
        return Ok(None);
    }
    let (row, pending) = answering(state, tenant, answer).await?;
    let now = state.clock.now();
    let Some(enrolling) = state
        .store
        .enrollment(&tenant.id, &secret_digest(&session), now)
        .await?
        .filter(|e| e.user_id == row.user_id)
    else {
        return Ok(None);
    };
    let Ok(kind) = FactorType::try_from(enrolling.method_type.clone()) else {
        return Ok(None);
    };
    let answered = match (kind, oob_code.is_some()) {
        (FactorType::Totp, false) => Answered::Otp,
        (FactorType::PushNotification, true) => {
            // Confirmed once the device has enrolled; until then the app
            // polls on, at most once every POLL_INTERVAL seconds (as a
            // login's transaction is polled), and nothing is spent or counted.
            if crate::services::factors::push::Pending::of(&enrolling)
                .map_err(MfaError::Internal)?
                .device
                .is_none()
            {
                use crate::services::push::transactions::POLL_INTERVAL;
                let key = format!("push:associate:{}:{}", tenant.id, secret_digest(&session));
                let interval_ms = u64::try_from(POLL_INTERVAL * 1000).unwrap_or(5000);
                return Err(if state.limiter.take(&key, 1, interval_ms).allowed {
                    MfaError::AuthorizationPending
                } else {
                    MfaError::SlowDown
                });
            }
            Answered::Push
        }
        // A code sent needs its code: without one the grant goes on, and
        // asks for it.
        (FactorType::Email | FactorType::Phone, true) if code.trim().is_empty() => {
            return Ok(None);
        }
        (FactorType::Email, true) => Answered::Code(Channel::Email),
        (FactorType::Phone, true) => Answered::Code(Channel::of_phone(
            enrolling
                .state
                .get("preferred_authentication_method")
                .and_then(Value::as_str),
        )),
        // The grant does not fit what is enrolling, or the MFA API does not
        // enroll that type: the grant goes on as a challenge.
        (FactorType::Totp, true)
        | (FactorType::Email | FactorType::Phone, false)
        | (
            FactorType::Password
            | FactorType::Passkey
            | FactorType::WebauthnRoaming
            | FactorType::WebauthnPlatform
            | FactorType::RecoveryCode,
            _,
        )
        | (FactorType::PushNotification, false) => return Ok(None),
    };
    // The tenant log names the answer by its channel (`otp` for TOTP).
    let channel = match answered {
        Answered::Code(c) => c.as_str(),
        Answered::Push => PUSH_CHANNEL,
        Answered::Otp | Answered::RecoveryCode | Answered::Key { .. } => "otp",
    };
    let who = Who {
        tenant,
        host,
        user_id: &row.user_id,
        client_id: &answer.client.client_id,
        user_agent: answer.user_agent,
        languages: &[],
    };
    let proof = if answered == Answered::Push {
        Proof::Session
    } else {
        Proof::Otp {
            code: code.trim().to_string(),
        }
    };
    match enrollment::verify(state, &who, &enrolling.method_id, &session, proof).await {
        Ok(_) => {}
        Err(EnrollError::Store(e)) => return Err(MfaError::Store(e)),
        Err(_) => return Err(wrong(state, tenant, answer, &row.user_id, channel).await),
    }
    if !state
        .store
        .complete_enrollment(&tenant.id, &secret_digest(token), &Completion::Consume, now)
        .await?
    {
        return Err(MfaError::BadToken);
    }
    if let Ok(Some(rc)) = state
        .store
        .enrollment(&tenant.id, &secret_digest(&recovery_session), now)
        .await
        && let Err(e) = enrollment::verify(
            state,
            &who,
            &rc.method_id,
            &recovery_session,
            Proof::Session,
        )
        .await
    {
        tracing::warn!(error = %e, "the recovery code of an association was not kept");
    }
    Ok(Some((row.user_id, pending, answered)))
}
