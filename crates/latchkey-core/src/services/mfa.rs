//! Second factors at login for embedded apps (Auth0's MFA API): when a
//! password login needs one, the token endpoint answers `mfa_required` with
//! an `mfa_token` instead of tokens; the app lists the user's authenticators
//! with it and trades it, with a one-time code or a recovery code, for the
//! tokens.
//!
//! The `mfa_token` is 256 random bits, stored as a digest like an enrollment
//! (kind `mfa-login`): bound to the client and the user, alive 10 minutes,
//! consumed by its first success, dead after 5 wrong answers. It carries the
//! original request (audience, scope) and the first factor's `amr` and time.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::email_address;
use crate::clock::Timestamp;
use crate::context::Core;
use crate::crypto::hash::{constant_time_eq, secret_digest};
use crate::crypto::otp;
use crate::rng::RngExt;
use crate::store::{Completion, EnrollmentRow, MethodRow, StoreError};
use crate::tenant::{Client, FactorType, MfaPolicy, Tenant};

use super::factors::{self, Answered, AuthenticatorType, Channel};
pub use super::factors::{destination, masked};

/// Lifetime of an `mfa_token`, seconds.
pub const MFA_TOKEN_TTL: i64 = 600;
/// Wrong answers an `mfa_token` survives.
pub const MAX_ATTEMPTS: i64 = 5;
/// Wrong second-factor answers one user may give per window, across all
/// their logins (so a known password cannot buy endless guesses, five per
/// token): 10 per 15 minutes.
pub const USER_FAILURES: (u32, i64) = (10, 900);

fn failures_key(tenant: &Tenant, user_id: &str) -> String {
    format!("mfa:wrong:{}:{user_id}", tenant.id)
}

/// Refuses answers from a user past [`USER_FAILURES`] (`Throttled`).
fn check_user(state: &Core, tenant: &Tenant, user_id: &str) -> Result<(), MfaError> {
    let d = state.limiter.peek(
        &failures_key(tenant, user_id),
        USER_FAILURES.0,
        USER_FAILURES.1,
    );
    if d.allowed {
        Ok(())
    } else {
        Err(MfaError::Throttled(d.retry_after(state.clock.now())))
    }
}
const KIND: &str = "mfa-login";
/// The `acr` of a multi-factor authentication (OpenID PAPE).
pub const MULTI_FACTOR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// Whether `amr` records a multi-factor authentication (a second factor, or
/// a passkey: possession plus user verification).
pub fn multi_factor(amr: &[String]) -> bool {
    amr.iter().any(|a| a == "mfa" || a == "webauthn")
}

/// Whether an `amr` value records a second factor (RFC 8176 values latchkey
/// adds after the first factor).
pub fn is_second_factor_amr(value: &str) -> bool {
    matches!(value, "mfa" | "otp" | "sms" | "tel" | "hwk" | "swk")
}

/// What the first factor established, kept with the `mfa_token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub audience: Option<String>,
    pub scope: Vec<String>,
    pub amr: Vec<String>,
    pub auth_time: Timestamp,
    /// The grant that authenticated the first factor (`password`).
    pub gty: String,
}

#[derive(Debug)]
pub enum MfaError {
    /// The token is unknown, expired, used, or another client's.
    BadToken,
    /// The answer was wrong; the token survives `attempts_left` more.
    Wrong {
        attempts_left: i64,
    },
    /// The user has no authenticator of that kind.
    NoAuthenticator(&'static str),
    /// Too many codes sent; retry after that many seconds.
    Throttled(i64),
    /// The provider did not take the message.
    Delivery(String),
    Store(StoreError),
    Internal(String),
}

impl From<StoreError> for MfaError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Whether a login by `client` for `audience` needs a second factor: the
/// application's or tenant's MFA policy, or the My Account API's Default
/// Policy for its audience.
pub fn required(tenant: &Tenant, host: &str, client: &Client, audience: Option<&str>) -> bool {
    always(tenant, client) || default_policy_applies(tenant, host, audience)
}

/// Whether the application's (else the tenant's) MFA policy is `always`.
pub fn always(tenant: &Tenant, client: &Client) -> bool {
    client.mfa_policy.unwrap_or(tenant.config.mfa.policy) == MfaPolicy::Always
}

/// Whether the My Account API's Default Policy covers a token for
/// `audience`. My Account tokens are only granted for the request's own
/// host, so that host's audience is the one to compare.
fn default_policy_applies(tenant: &Tenant, host: &str, audience: Option<&str>) -> bool {
    tenant.config.my_account_api.require_2fa
        && audience.is_some_and(|a| tenant.is_my_account_audience(host, a))
}

/// Whether the Default Policy's window has passed for a token of
/// `audience` whose last authentication was at `auth_time`.
pub fn two_factor_window_passed(
    tenant: &Tenant,
    host: &str,
    audience: Option<&str>,
    auth_time: Timestamp,
    now: Timestamp,
) -> bool {
    default_policy_applies(tenant, host, audience)
        && now - auth_time > i64::from(tenant.config.my_account_api.two_factor_window_seconds)
}

/// What a login still needs before it may finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: no second factor is asked for, or one was given already.
    Nothing,
    /// A second factor: the user has at least one to answer with.
    Challenge,
    /// The user has none and must enroll one first.
    Enroll,
}

/// What a login that authenticated with `amr` still needs. A second factor
/// is needed when the application's or tenant's policy, the My Account
/// API's Default Policy, or the request itself (`acr_values`, `demanded`)
/// asks for one and the login used none (a passkey is one already). A user
/// without a factor enrolls one, except under the Default Policy alone,
/// which lets such a user through (MYACCOUNT.md 6.4).
#[allow(clippy::too_many_arguments)]
pub async fn need(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    client: &Client,
    audience: Option<&str>,
    user_id: &str,
    amr: &[String],
    demanded: bool,
) -> Result<Need, StoreError> {
    if multi_factor(amr) || !(demanded || required(tenant, host, client, audience)) {
        return Ok(Need::Nothing);
    }
    let methods = factors_of(state, tenant, user_id).await?;
    if !second_factors(&methods).is_empty() {
        Ok(Need::Challenge)
    } else if demanded || always(tenant, client) {
        Ok(Need::Enroll)
    } else {
        Ok(Need::Nothing)
    }
}

/// ID of the email factor a verified email address stands for.
pub const VERIFIED_EMAIL: &str = "email|verified";

/// The user's methods, with their verified email address standing as an
/// email factor when the tenant offers email codes and the user enrolled no
/// method for that address: Auth0 counts a verified email as a factor
/// (MYACCOUNT.md 6.4: "no enrollable factor" is "no verified email and no
/// enrolled factor").
pub async fn factors_of(
    state: &Core,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Vec<MethodRow>, StoreError> {
    let mut methods = state.store.methods(&tenant.id, user_id).await?;
    if !tenant.config.factors.contains(&FactorType::Email) {
        return Ok(methods);
    }
    let Some(user) = state.store.user_by_id(&tenant.id, user_id).await? else {
        return Ok(methods);
    };
    let enrolled = methods.iter().any(|m| {
        m.method_type == FactorType::Email
            && destination(m).is_some_and(|d| email_address::same(d, &user.email))
    });
    if user.email_verified && !user.email.is_empty() && !enrolled {
        methods.push(MethodRow {
            id: VERIFIED_EMAIL.to_string(),
            user_id: user_id.to_string(),
            method_type: FactorType::Email,
            name: None,
            data: json!({ "email": user.email }),
            created_at: user.created_at,
            last_auth_at: None,
            last_otp_step: None,
            credential_id: None,
        });
    }
    Ok(methods)
}

/// The user's confirmed second factors that a login may use.
pub fn second_factors(methods: &[MethodRow]) -> Vec<&MethodRow> {
    methods
        .iter()
        .filter(|m| factors::is_second_factor(m.method_type))
        .collect()
}

/// The second factors the MFA API can challenge (WebAuthn keys need the
/// hosted page).
pub fn api_factors(methods: &[MethodRow]) -> Vec<&MethodRow> {
    second_factors(methods)
        .into_iter()
        .filter(|m| factors::authenticator_type(m.method_type).is_some())
        .collect()
}

/// `mfa_requirements.challenge`: the kinds of challenge the user can answer.
pub fn challenge_types(methods: &[&MethodRow]) -> Vec<Value> {
    AuthenticatorType::ALL
        .into_iter()
        .filter(|t| {
            methods
                .iter()
                .any(|m| factors::authenticator_type(m.method_type) == Some(*t))
        })
        .map(|t| json!({ "type": t.as_str() }))
        .collect()
}

/// Starts the second step: stores the pending login, returns the token.
pub async fn issue_token(
    state: &Core,
    tenant: &Tenant,
    client: &Client,
    user_id: &str,
    pending: &Pending,
) -> Result<String, MfaError> {
    let token = state.rng.alnum(43);
    let now = state.clock.now();
    let row = EnrollmentRow {
        user_id: user_id.to_string(),
        client_id: client.client_id.clone(),
        method_type: KIND.to_string(),
        method_id: "mfa|login".to_string(),
        state: serde_json::to_value(pending).map_err(|e| MfaError::Internal(e.to_string()))?,
        attempts: 0,
        created_at: now,
        expires_at: now + MFA_TOKEN_TTL,
    };
    state
        .store
        .create_enrollment(&tenant.id, &secret_digest(&token), &row)
        .await?;
    Ok(token)
}

/// The pending login an answer is for, whose user may still answer (not
/// past the per-user limit on wrong answers).
async fn answering(
    state: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
) -> Result<(EnrollmentRow, Pending), MfaError> {
    let (row, pending) = lookup(state, tenant, answer.token, Some(answer.client)).await?;
    check_user(state, tenant, &row.user_id)?;
    Ok((row, pending))
}

/// A challenge stored for the `mfa_token` (an out-of-band code, a key
/// ceremony), found by its own secret; anything else is a bad token.
async fn ceremony(
    state: &Core,
    tenant: &Tenant,
    token: &str,
    user_id: &str,
    secret: &str,
    kind: &str,
) -> Result<EnrollmentRow, MfaError> {
    let token_digest = secret_digest(token);
    state
        .store
        .enrollment(&tenant.id, &secret_digest(secret), state.clock.now())
        .await?
        .filter(|c| {
            c.method_type == kind
                && c.user_id == user_id
                && c.state.get("mfa_token").and_then(Value::as_str) == Some(token_digest.as_str())
        })
        .ok_or(MfaError::BadToken)
}

/// The live pending login behind `token`, if `client` (when given) is the
/// one it was issued to.
pub async fn lookup(
    state: &Core,
    tenant: &Tenant,
    token: &str,
    client: Option<&Client>,
) -> Result<(EnrollmentRow, Pending), MfaError> {
    let digest = secret_digest(token);
    let Some(row) = state
        .store
        .enrollment(&tenant.id, &digest, state.clock.now())
        .await?
    else {
        return Err(MfaError::BadToken);
    };
    if row.method_type != KIND || client.is_some_and(|c| c.client_id != row.client_id) {
        return Err(MfaError::BadToken);
    }
    // A login of a user blocked (or deleted) since cannot be finished: its
    // token is as good as expired, on every MFA endpoint and grant.
    match state.store.user_by_id(&tenant.id, &row.user_id).await? {
        Some(user) if !user.blocked => {}
        _ => return Err(MfaError::BadToken),
    }
    let pending: Pending =
        serde_json::from_value(row.state.clone()).map_err(|e| MfaError::Internal(e.to_string()))?;
    Ok((row, pending))
}

/// Who answers a challenge, for the tenant log.
pub struct Answer<'a> {
    pub client: &'a Client,
    pub token: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
    /// Where the answer came: `mfa_api` or `login_page`.
    pub via: &'static str,
}

/// Writes `gd_auth_succeed`/`gd_auth_failed` (one-time codes) or
/// `gd_recovery_succeed`/`gd_recovery_failed` (recovery codes).
pub async fn audit(
    state: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
    user_id: &str,
    factor: &str,
    error: Option<&str>,
) {
    let base = if factor == "recovery-code" {
        "gd_recovery"
    } else {
        "gd_auth"
    };
    let event = match error {
        None => format!("{base}_succeed"),
        Some(_) => format!("{base}_failed"),
    };
    let actor = crate::services::audit::Actor {
        tenant_id: &tenant.id,
        client_id: &answer.client.client_id,
        user_id,
        ip: answer.ip,
        user_agent: answer.user_agent,
    };
    let mut details = json!({ "factor": factor, "via": answer.via });
    if let Some(e) = error {
        details["error"] = json!(e);
    }
    crate::services::audit::record(state, &actor, &event, details).await;
}

async fn wrong(
    state: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
    user_id: &str,
    factor: &str,
) -> MfaError {
    audit(state, tenant, answer, user_id, factor, Some("wrong code")).await;
    state.limiter.hit(
        &failures_key(tenant, user_id),
        USER_FAILURES.0,
        USER_FAILURES.1,
    );
    let token = answer.token;
    match state
        .store
        .enrollment_failed(&tenant.id, &secret_digest(token), MAX_ATTEMPTS)
        .await
    {
        Ok(left) => MfaError::Wrong {
            attempts_left: left,
        },
        Err(e) => MfaError::Store(e),
    }
}

/// Answers the challenge with a TOTP code. On success the token is consumed
/// and the code's time step can never be used again.
pub async fn verify_otp(
    state: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
    code: &str,
) -> Result<(String, Pending), MfaError> {
    let token = answer.token;
    let (row, pending) = answering(state, tenant, answer).await?;
    let methods = state.store.methods(&tenant.id, &row.user_id).await?;
    let totps: Vec<&MethodRow> = methods
        .iter()
        .filter(|m| m.method_type == FactorType::Totp)
        .collect();
    if totps.is_empty() {
        return Err(MfaError::NoAuthenticator("otp"));
    }
    let now = state.clock.now();
    for m in totps {
        let Some(sealed) = m.data.get("secret").and_then(Value::as_str) else {
            continue;
        };
        let secret = state
            .sealer
            .open(
                &crate::services::enrollment::totp_context(&tenant.id, &m.id),
                sealed,
            )
            .map_err(|e| MfaError::Internal(format!("opening a TOTP secret: {e}")))?;
        let Some(step) = otp::verify(&secret, code.trim(), now, m.last_otp_step) else {
            continue;
        };
        // The step first (a replayed code loses here), then the token.
        if state
            .store
            .consume_otp_step(&tenant.id, &row.user_id, &m.id, step, now)
            .await?
            && state
                .store
                .complete_enrollment(&tenant.id, &secret_digest(token), &Completion::Consume, now)
                .await?
        {
            return Ok((row.user_id, pending));
        }
        return Err(MfaError::BadToken);
    }
    Err(wrong(state, tenant, answer, &row.user_id, "otp").await)
}

/// Answers the challenge with the user's recovery code. On success the code
/// is replaced by a new one (returned, to be shown once) in the same
/// transaction that consumes the token.
pub async fn verify_recovery_code(
    state: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
    code: &str,
) -> Result<(String, Pending, String), MfaError> {
    let token = answer.token;
    let (row, pending) = answering(state, tenant, answer).await?;
    let methods = state.store.methods(&tenant.id, &row.user_id).await?;
    let Some(current) = methods
        .iter()
        .find(|m| m.method_type == FactorType::RecoveryCode)
    else {
        return Err(MfaError::NoAuthenticator("recovery-code"));
    };
    let stored = current
        .data
        .get("code_digest")
        .and_then(Value::as_str)
        .unwrap_or("");
    let given = crate::services::enrollment::recovery_code_digest(code);
    if stored.is_empty() || !constant_time_eq(stored.as_bytes(), given.as_bytes()) {
        return Err(wrong(state, tenant, answer, &row.user_id, "recovery-code").await);
    }
    let (fresh, digest) = crate::services::enrollment::new_recovery_code(state);
    let now = state.clock.now();
    let replacement = MethodRow {
        id: format!("recovery-code|dev_{}", state.rng.alnum(16)),
        user_id: row.user_id.clone(),
        method_type: FactorType::RecoveryCode,
        name: None,
        data: json!({ "code_digest": digest }),
        created_at: now,
        last_auth_at: None,
        last_otp_step: None,
        credential_id: None,
    };
    let done = state
        .store
        .complete_enrollment(
            &tenant.id,
            &secret_digest(token),
            &Completion::AddMethod {
                row: replacement,
                replace_type: true,
            },
            now,
        )
        .await?;
    if !done {
        return Err(MfaError::BadToken);
    }
    Ok((row.user_id, pending, fresh))
}

/// `GET /mfa/authenticators`: the user's authenticators as Auth0 lists them.
pub fn authenticators(methods: &[&MethodRow]) -> Vec<Value> {
    methods
        .iter()
        .filter_map(|m| {
            let kind = factors::authenticator_type(m.method_type)?;
            let mut v = json!({ "id": m.id, "authenticator_type": kind.as_str(), "active": true });
            if let Some(channel) = factors::channel(m) {
                v["oob_channel"] = json!(channel.as_str());
            }
            if let Some(name) = &m.name {
                v["name"] = json!(name);
            } else if let Some(d) = destination(m) {
                v["name"] = json!(masked(d));
            }
            Some(v)
        })
        .collect()
}

/// What `POST /mfa/challenge` started.
pub enum Challenge {
    /// Answer with the mfa-otp grant.
    Otp,
    /// A code is on its way; answer with the mfa-oob grant.
    Oob {
        oob_code: String,
        channel: &'static str,
    },
}

/// `POST /mfa/challenge`: picks the authenticator (the one named, else the
/// first of the accepted types, one-time codes first) and, for email and
/// phone, sends a code.
pub async fn challenge(
    state: &Core,
    tenant: &Tenant,
    client: &Client,
    token: &str,
    types: &[&str],
    authenticator_id: Option<&str>,
    languages: &[String],
) -> Result<Challenge, MfaError> {
    let (row, _) = lookup(state, tenant, token, Some(client)).await?;
    let methods = factors_of(state, tenant, &row.user_id).await?;
    let factors = second_factors(&methods);
    let accepts = |m: &MethodRow| match factors::authenticator_type(m.method_type) {
        Some(t @ (AuthenticatorType::Otp | AuthenticatorType::Oob)) => types.contains(&t.as_str()),
        // Answered without a challenge, or not on the MFA API.
        Some(AuthenticatorType::RecoveryCode) | None => false,
    };
    let chosen = match authenticator_id {
        Some(id) => factors.iter().find(|m| m.id == id).copied(),
        None => factors
            .iter()
            .find(|m| m.method_type == FactorType::Totp && accepts(m))
            .or_else(|| factors.iter().find(|m| accepts(m)))
            .copied(),
    };
    let Some(method) = chosen.filter(|m| accepts(m)) else {
        return Err(MfaError::NoAuthenticator("matching"));
    };
    let Some(channel) = factors::channel(method) else {
        return Ok(Challenge::Otp);
    };
    let to = destination(method)
        .ok_or_else(|| MfaError::Internal("a method without its destination".into()))?
        .to_string();
    crate::services::enrollment::throttle_send(state, &tenant.id, &row.user_id, &to)
        .map_err(MfaError::Throttled)?;
    let code = crate::services::enrollment::new_otp_code(state);
    let oob_code = state.rng.alnum(32);
    let now = state.clock.now();
    use crate::services::delivery::{CodeChannel, Purpose, send_code};
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
            "code_digest": crate::services::enrollment::sent_code_digest(&oob_code, &code),
        }),
        attempts: 0,
        created_at: now,
        expires_at: row.expires_at.min(now + 300),
    };
    state
        .store
        .create_enrollment(&tenant.id, &secret_digest(&oob_code), &oob)
        .await?;
    Ok(Challenge::Oob {
        oob_code,
        channel: channel.as_str(),
    })
}

const OOB_KIND: &str = "mfa-oob";

/// Answers an out-of-band challenge with the code the user received
/// (`binding_code`). Wrong codes count against the `mfa_token`.
pub async fn verify_oob(
    state: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
    oob_code: &str,
    binding_code: &str,
) -> Result<(String, Pending, Answered), MfaError> {
    let token = answer.token;
    let (row, pending) = answering(state, tenant, answer).await?;
    let now = state.clock.now();
    let oob = ceremony(state, tenant, token, &row.user_id, oob_code, OOB_KIND).await?;
    let stored = oob
        .state
        .get("code_digest")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !crate::services::enrollment::sent_code_matches(stored, oob_code, binding_code) {
        return Err(wrong(state, tenant, answer, &row.user_id, "oob").await);
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

/// `mfa_requirements.enroll`: what a user without a factor could enroll
/// through `POST /mfa/associate` (`otp`; `oob` for phone or email).
pub fn enrollable(tenant: &Tenant) -> Vec<Value> {
    let factors = &tenant.config.factors;
    let mut out = Vec::new();
    if factors.contains(&FactorType::Totp) {
        out.push(json!({"type": "otp"}));
    }
    if factors.contains(&FactorType::Phone) || factors.contains(&FactorType::Email) {
        out.push(json!({"type": "oob"}));
    }
    out
}

const KEY_KIND: &str = "mfa-key";

/// The `amr` value a WebAuthn key's signature adds (RFC 8176): `hwk` for a
/// key held in hardware, `swk` for a platform credential that may be synced
/// (backup eligible) and so is not bound to one device.
fn key_answer(m: &MethodRow) -> Answered {
    let eligible = m
        .data
        .get("backup_eligible")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Answered::Key {
        synced: m.method_type == FactorType::WebauthnPlatform && eligible,
    }
}

fn key_internal(e: impl std::fmt::Display) -> MfaError {
    MfaError::Internal(e.to_string())
}

/// Request options naming the user's keys of `kind` (`webauthn-roaming` or
/// `webauthn-platform`); the ceremony waits, tied to the `mfa_token`, under
/// the returned session.
pub async fn key_challenge(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    client: &Client,
    token: &str,
    kind: FactorType,
) -> Result<(String, Value), MfaError> {
    use webauthn_rs::prelude::{Passkey, SecurityKey};
    let (row, _) = lookup(state, tenant, token, Some(client)).await?;
    let methods = state.store.methods(&tenant.id, &row.user_id).await?;
    let keys: Vec<&MethodRow> = methods.iter().filter(|m| m.method_type == kind).collect();
    if keys.is_empty() {
        return Err(MfaError::NoAuthenticator("webauthn"));
    }
    let rp = crate::services::webauthn::relying_party(tenant, host).map_err(key_internal)?;
    let credential = |m: &&MethodRow| m.data.get("credential").cloned();
    let (options, ceremony) = if kind == FactorType::WebauthnPlatform {
        let creds: Vec<Passkey> = keys
            .iter()
            .filter_map(credential)
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        let (rcr, auth) = rp
            .webauthn
            .start_passkey_authentication(&creds)
            .map_err(key_internal)?;
        (
            serde_json::to_value(&rcr).map_err(key_internal)?,
            serde_json::to_value(&auth).map_err(key_internal)?,
        )
    } else {
        let creds: Vec<SecurityKey> = keys
            .iter()
            .filter_map(credential)
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        let (rcr, auth) = rp
            .webauthn
            .start_securitykey_authentication(&creds)
            .map_err(key_internal)?;
        (
            serde_json::to_value(&rcr).map_err(key_internal)?,
            serde_json::to_value(&auth).map_err(key_internal)?,
        )
    };
    let options = options
        .get("publicKey")
        .cloned()
        .ok_or_else(|| key_internal("request options without publicKey"))?;
    let session = state.rng.token(32);
    let now = state.clock.now();
    let pending = EnrollmentRow {
        user_id: row.user_id.clone(),
        client_id: client.client_id.clone(),
        method_type: KEY_KIND.to_string(),
        method_id: kind.as_str().to_string(),
        state: json!({
            "mfa_token": secret_digest(token),
            "authentication": ceremony,
            "rp_id": rp.rp_id,
        }),
        attempts: 0,
        created_at: now,
        expires_at: row.expires_at.min(now + 300),
    };
    state
        .store
        .create_enrollment(&tenant.id, &secret_digest(&session), &pending)
        .await?;
    Ok((session, options))
}

/// Answers a key challenge with the browser's assertion. Returns the user,
/// the pending login and the `amr` value of the key (`hwk` or `swk`). A
/// failed signature counts against the `mfa_token`; the key's signature
/// counter is kept, and one that goes backwards (a cloned key) is refused.
pub async fn verify_key(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    answer: &Answer<'_>,
    session: &str,
    response: &Value,
) -> Result<(String, Pending, Answered), MfaError> {
    use webauthn_rs::prelude::{
        Passkey, PasskeyAuthentication, PublicKeyCredential, SecurityKey, SecurityKeyAuthentication,
    };
    let token = answer.token;
    let (row, pending) = answering(state, tenant, answer).await?;
    let now = state.clock.now();
    let ceremony = ceremony(state, tenant, token, &row.user_id, session, KEY_KIND).await?;
    let kind = FactorType::try_from(ceremony.method_id.clone()).map_err(key_internal)?;
    let rp = crate::services::webauthn::relying_party(tenant, host).map_err(key_internal)?;
    if ceremony.state.get("rp_id").and_then(Value::as_str) != Some(rp.rp_id.as_str()) {
        return Err(MfaError::BadToken);
    }
    let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(response.clone()) else {
        return Err(wrong(state, tenant, answer, &row.user_id, "webauthn").await);
    };
    let stored = ceremony
        .state
        .get("authentication")
        .cloned()
        .unwrap_or(Value::Null);
    let result = if kind == FactorType::WebauthnPlatform {
        let auth: PasskeyAuthentication = serde_json::from_value(stored).map_err(key_internal)?;
        rp.webauthn
            .finish_passkey_authentication(&credential, &auth)
    } else {
        let auth: SecurityKeyAuthentication =
            serde_json::from_value(stored).map_err(key_internal)?;
        rp.webauthn
            .finish_securitykey_authentication(&credential, &auth)
    };
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, tenant = %tenant.name, "WebAuthn key refused at login");
            return Err(wrong(state, tenant, answer, &row.user_id, "webauthn").await);
        }
    };
    let methods = state.store.methods(&tenant.id, &row.user_id).await?;
    let id = crate::services::webauthn::b64url(result.cred_id().as_ref());
    let Some(method) = methods
        .iter()
        .find(|m| m.method_type == kind && m.credential_id.as_deref() == Some(&id))
    else {
        return Err(wrong(state, tenant, answer, &row.user_id, "webauthn").await);
    };
    // The signature counter: webauthn-rs refuses a counter that went
    // backwards (CredentialPossibleCompromise) above; here the new one is
    // kept.
    let mut data = method.data.clone();
    let updated = if kind == FactorType::WebauthnPlatform {
        data.get("credential")
            .cloned()
            .and_then(|v| serde_json::from_value::<Passkey>(v).ok())
            .and_then(|mut k| {
                k.update_credential(&result)?;
                serde_json::to_value(&k).ok()
            })
    } else {
        data.get("credential")
            .cloned()
            .and_then(|v| serde_json::from_value::<SecurityKey>(v).ok())
            .and_then(|mut k| {
                k.update_credential(&result)?;
                serde_json::to_value(&k).ok()
            })
    };
    if let (Some(k), Some(obj)) = (updated, data.as_object_mut()) {
        obj.insert("credential".into(), k);
    }
    // The new counter is kept only over the one this answer was checked
    // against (two logins with one key at once cannot move it backwards).
    if !state
        .store
        .update_method_data(&tenant.id, &method.id, &method.data, &data, Some(now))
        .await?
    {
        return Err(wrong(state, tenant, answer, &row.user_id, "webauthn").await);
    }
    for digest in [secret_digest(session), secret_digest(token)] {
        if !state
            .store
            .complete_enrollment(&tenant.id, &digest, &Completion::Consume, now)
            .await?
        {
            return Err(MfaError::BadToken);
        }
    }
    Ok((row.user_id, pending, key_answer(method)))
}

/// What `POST /mfa/associate` enrolls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Associate {
    Otp,
    Phone { number: String, voice: bool },
    Email { address: String },
}

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

/// `POST /mfa/associate` with an `mfa_token`: starts enrolling the first
/// factor of a user who has none (anyone else must answer with the factor
/// they have). The factor is confirmed by the mfa-otp or mfa-oob grant with
/// the same token, which then issues the tokens. With recovery codes on the
/// tenant, the first one is made now and shown in the answer; it becomes
/// usable with the factor.
#[allow(clippy::too_many_arguments)]
pub async fn associate(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    client: &Client,
    token: &str,
    what: Associate,
    user_agent: &str,
    languages: &[String],
) -> Result<Association, AssociateError> {
    use crate::services::enrollment::{self, Challenge, Start, Who};
    let (row, _) = lookup(state, tenant, token, Some(client))
        .await
        .map_err(AssociateError::Mfa)?;
    let methods = factors_of(state, tenant, &row.user_id).await?;
    if !second_factors(&methods).is_empty() {
        return Err(AssociateError::AlreadyEnrolled);
    }
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
        Associate::Phone { number, voice } => (
            Start::Phone {
                phone_number: number.clone(),
                preferred: Some(if *voice { "voice" } else { "sms" }.into()),
            },
            Some(if *voice { "voice" } else { "sms" }),
        ),
        Associate::Email { address } => (
            Start::Email {
                email: address.clone(),
            },
            Some("email"),
        ),
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
            authenticator_type: "otp",
            secret: Some(manual_input_code),
            barcode_uri: Some(barcode_uri),
            oob_channel: None,
            oob_code: None,
            recovery_codes,
        },
        _ => Association {
            authenticator_type: "oob",
            secret: None,
            barcode_uri: None,
            oob_channel: channel,
            oob_code: Some(session),
            recovery_codes,
        },
    })
}

/// The mfa-otp and mfa-oob grants for a token with a pending association:
/// the code confirms the new factor (and the recovery code made with it),
/// and the token is spent. `Ok(None)` when the token has no association
/// (or, for oob, `oob_code` is not the association's): the grant goes on as
/// a challenge. Returns the user, the pending login and the channel
/// (`otp`, `sms`, `voice`, `email`).
pub async fn confirm_association(
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
            | FactorType::RecoveryCode
            | FactorType::PushNotification,
            _,
        ) => return Ok(None),
    };
    // The tenant log names the answer by its channel (`otp` for TOTP).
    let channel = match answered {
        Answered::Code(c) => c.as_str(),
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
    let proof = Proof::Otp {
        code: code.trim().to_string(),
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
