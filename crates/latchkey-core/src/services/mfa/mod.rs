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
use crate::crypto::hash::secret_digest;
use crate::rng::RngExt;
use crate::services::factors::{self, AuthenticatorType, codes, destination, masked};
use crate::store::{Completion, EnrollmentRow, MethodRow, StoreError};
use crate::tenant::{Client, FactorType, MfaPolicy, Tenant};

pub mod api;
mod associate;

pub(crate) use associate::confirm_association;
pub use associate::{Associate, AssociateError, PUSH_CHANNEL, associate, associating_client};

/// Lifetime of an `mfa_token`, seconds.
pub const MFA_TOKEN_TTL: i64 = 600;
/// Wrong answers an `mfa_token` survives.
pub(crate) const MAX_ATTEMPTS: i64 = 5;
/// Wrong second-factor answers one user may give per window, across all
/// their logins (so a known password cannot buy endless guesses, five per
/// token): 10 per 15 minutes.
pub(crate) const USER_FAILURES: (u32, i64) = (10, 900);

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
pub(crate) fn multi_factor(amr: &[String]) -> bool {
    amr.iter().any(|a| a == "mfa" || a == "webauthn")
}

/// What an `amr` says of the first factor alone. latchkey writes a login's
/// `amr` as the first factor's values, then `mfa` and the second factor's
/// (`["pwd", "mfa", "otp"]`); the first factor may itself be an `otp` (a
/// passwordless code: `["otp", "mfa"]`), so the values before `mfa` are
/// the first factor's, whatever they are.
pub(crate) fn first_factor_amr(amr: &[String]) -> Vec<String> {
    amr.iter().take_while(|a| *a != "mfa").cloned().collect()
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
    /// Not answered yet (a push device has not enrolled or approved): the
    /// app polls again.
    AuthorizationPending,
    /// Too many codes sent; retry after that many seconds.
    Throttled(i64),
    /// The provider did not take the message.
    Delivery(String),
    /// A push transaction polled again too soon (`slow_down`).
    SlowDown,
    /// The push device rejected the login.
    Rejected,
    /// The push transaction ended unanswered (`expired_token`).
    Expired,
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
    always(tenant, client)
        || default_policy_applies(tenant, host, audience)
        || audience.is_some_and(|a| tenant.is_mfa_api_audience(host, a))
}

/// The factors a login that needs a second factor asks for. A token for
/// the MFA API alone asks only a user enrolled with a factor other than
/// email (Auth0: a user with none, or with email only, gets the token
/// without a challenge, and may enroll with it).
pub fn gate_factors<'m>(
    tenant: &Tenant,
    host: &str,
    client: &Client,
    audience: Option<&str>,
    methods: &'m [MethodRow],
) -> Vec<&'m MethodRow> {
    let only_mfa_api = !(always(tenant, client) || default_policy_applies(tenant, host, audience));
    second_factors(methods)
        .into_iter()
        .filter(|m| !only_mfa_api || m.method_type != FactorType::Email)
        .collect()
}

/// Whether the application's (else the tenant's) MFA policy is `always`.
pub fn always(tenant: &Tenant, client: &Client) -> bool {
    client.mfa_policy.unwrap_or(tenant.config.mfa.policy) == MfaPolicy::Always
}

/// Whether the My Account API's Default Policy covers a token for
/// `audience`. My Account tokens are only granted for the request's own
/// host, so that host's audience is the one to compare.
pub(crate) fn default_policy_applies(tenant: &Tenant, host: &str, audience: Option<&str>) -> bool {
    tenant.config.my_account_api.require_2fa
        && audience.is_some_and(|a| tenant.is_my_account_audience(host, a))
}

/// Whether the Default Policy's window has passed for a token of
/// `audience` whose last authentication was at `auth_time`.
pub(crate) fn two_factor_window_passed(
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
    let asked = if demanded {
        second_factors(&methods)
    } else {
        gate_factors(tenant, host, client, audience, &methods)
    };
    if !asked.is_empty() {
        Ok(Need::Challenge)
    } else if demanded || always(tenant, client) {
        Ok(Need::Enroll)
    } else {
        Ok(Need::Nothing)
    }
}

/// ID of the email factor a verified email address stands for.
pub(crate) const VERIFIED_EMAIL: &str = "email|verified";

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
pub(crate) fn challenge_types(methods: &[&MethodRow]) -> Vec<Value> {
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
pub(crate) async fn issue_token(
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
pub(crate) async fn answering(
    state: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
) -> Result<(EnrollmentRow, Pending), MfaError> {
    let (row, pending) = lookup(state, tenant, answer.token, Some(answer.client)).await?;
    check_user(state, tenant, &row.user_id)?;
    Ok((row, pending))
}

/// [`answering`] for an answer that may be a guess (a code): an attempt of
/// the `mfa_token`'s is taken before the answer is judged, so answers racing
/// at one token cannot share a count ([`MAX_ATTEMPTS`] are judged, no
/// more). The token's row as counted; a wrong answer then goes to
/// [`wrong_guess`].
pub(crate) async fn guessing(
    state: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
) -> Result<(EnrollmentRow, Pending), MfaError> {
    let (_, pending) = answering(state, tenant, answer).await?;
    let row = state
        .store
        .take_enrollment_attempt(
            &tenant.id,
            &secret_digest(answer.token),
            MAX_ATTEMPTS,
            state.clock.now(),
        )
        .await?
        .filter(|r| r.method_type == KIND)
        .ok_or(MfaError::BadToken)?;
    Ok((row, pending))
}

/// A challenge stored for the `mfa_token` (an out-of-band code, a key
/// ceremony), found by its own secret; anything else is a bad token.
pub(crate) async fn ceremony(
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

/// A wrong answer whose attempt [`guessing`] took (`taken`, the token's row
/// as counted): logged and counted against the user; the token dies with its
/// last attempt.
pub(crate) async fn wrong_guess(
    state: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
    taken: &EnrollmentRow,
    factor: &str,
) -> MfaError {
    refused(state, tenant, answer, &taken.user_id, factor).await;
    let left = match state
        .store
        .wrong_answer_taken(
            &tenant.id,
            &secret_digest(answer.token),
            taken,
            MAX_ATTEMPTS,
            state.clock.now(),
        )
        .await
    {
        Ok(left) => left,
        Err(e) => return MfaError::Store(e),
    };
    MfaError::Wrong {
        attempts_left: left,
    }
}

async fn refused(state: &Core, tenant: &Tenant, answer: &Answer<'_>, user_id: &str, factor: &str) {
    audit(state, tenant, answer, user_id, factor, Some("wrong code")).await;
    state.limiter.hit(
        &failures_key(tenant, user_id),
        USER_FAILURES.0,
        USER_FAILURES.1,
    );
}

/// A wrong answer that is no guess (a key's signature): logged, counted
/// against the user and the token.
pub(crate) async fn wrong(
    state: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
    user_id: &str,
    factor: &str,
) -> MfaError {
    refused(state, tenant, answer, user_id, factor).await;
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
            let mut device_name = None;
            if m.method_type == FactorType::PushNotification {
                // Guardian's channel, as Auth0 lists a push authenticator.
                v["oob_channel"] = json!("auth0");
                device_name = m.data.get("device_name").and_then(Value::as_str);
            }
            if let Some(name) = m.name.as_deref().or(device_name) {
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
    /// A push notification is on its way; poll the mfa-oob grant with the
    /// `oob_code`. With number matching, the login shows `binding_code`.
    Push {
        oob_code: String,
        binding_code: Option<String>,
    },
}

/// Where a challenge was asked from: the host (its issuer goes in a push
/// notification), and what the device may show about the login.
pub struct Requester<'a> {
    pub host: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

/// `POST /mfa/challenge`: picks the authenticator (the one named, else the
/// first of the accepted types, one-time codes first) and, for email and
/// phone, sends a code; for a push method, sends the notification.
#[allow(clippy::too_many_arguments)]
pub async fn challenge(
    state: &Core,
    tenant: &Tenant,
    client: &Client,
    token: &str,
    types: &[&str],
    authenticator_id: Option<&str>,
    languages: &[String],
    from: &Requester<'_>,
) -> Result<Challenge, MfaError> {
    let (row, pending) = lookup(state, tenant, token, Some(client)).await?;
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
    match factors::authenticator_type(method.method_type) {
        Some(AuthenticatorType::Otp) => return Ok(Challenge::Otp),
        Some(AuthenticatorType::Oob) => {}
        // Not accepted above.
        Some(AuthenticatorType::RecoveryCode) | None => {
            return Err(MfaError::NoAuthenticator("matching"));
        }
    }
    if method.method_type == FactorType::PushNotification {
        return push_challenge(state, tenant, client, token, &row, &pending, method, from).await;
    }
    let channel = factors::channel(method)
        .ok_or_else(|| MfaError::Internal("a code method without its channel".into()))?;
    let oob_code = codes::send_login_code(
        state, tenant, client, token, &row, method, channel, languages,
    )
    .await?;
    Ok(Challenge::Oob {
        oob_code,
        channel: channel.as_str(),
    })
}

/// Notifications one login may send, and the window (its `mfa_token`'s life).
const PUSHES_PER_LOGIN: (u32, i64) = (5, MFA_TOKEN_TTL);
/// Notifications one user may be sent across logins, and the window.
const PUSHES_PER_USER: (u32, i64) = (10, 900);

/// Sends a push notification to `method` for the pending login `row`.
#[allow(clippy::too_many_arguments)]
async fn push_challenge(
    state: &Core,
    tenant: &Tenant,
    client: &Client,
    token: &str,
    row: &EnrollmentRow,
    pending: &Pending,
    method: &MethodRow,
    from: &Requester<'_>,
) -> Result<Challenge, MfaError> {
    use crate::services::push::transactions::{self, Start, StartError};
    // Against prompt bombing: a login sends a few notifications, and a
    // user (whose password an attacker may hold) a few more across logins.
    let now = state.clock.now();
    for (key, (limit, window)) in [
        (
            format!("push:login:{}:{}", tenant.id, secret_digest(token)),
            PUSHES_PER_LOGIN,
        ),
        (
            format!("push:user:{}:{}", tenant.id, row.user_id),
            PUSHES_PER_USER,
        ),
    ] {
        let d = state.limiter.hit(&key, limit, window);
        if !d.allowed {
            return Err(MfaError::Throttled(d.retry_after(now)));
        }
    }
    let issuer = crate::tenant::issuer_for_host(from.host);
    let started = transactions::start(
        state,
        &Start {
            tenant,
            issuer: &issuer,
            client,
            user_id: &row.user_id,
            method,
            login_digest: secret_digest(token),
            login_expires_at: row.expires_at,
            started_at: pending.auth_time,
            ip: from.ip,
            user_agent: from.user_agent,
            audience: pending.audience.as_deref(),
            scope: &pending.scope,
        },
    )
    .await
    .map_err(|e| match e {
        StartError::Unreachable(m) | StartError::Delivery(m) => MfaError::Delivery(m),
        StartError::Store(e) => MfaError::Store(e),
        StartError::Internal(m) => MfaError::Internal(m),
    })?;
    Ok(Challenge::Push {
        oob_code: started.oob_code,
        binding_code: started.binding_code,
    })
}

/// `mfa_requirements.enroll`: what a user without a factor could enroll
/// through `POST /mfa/associate` (`otp`; `oob` for phone or email).
pub fn enrollable(tenant: &Tenant) -> Vec<Value> {
    let enabled = &tenant.config.factors;
    [AuthenticatorType::Otp, AuthenticatorType::Oob]
        .into_iter()
        .filter(|t| {
            enabled
                .iter()
                .any(|f| factors::authenticator_type(*f) == Some(*t))
        })
        .map(|t| json!({ "type": t.as_str() }))
        .collect()
}

/// A login's second step given up (the hosted page's "Not you?"): its
/// `mfa_token` is spent, so it answers nothing more, whoever holds it.
pub async fn abandon(state: &Core, tenant: &Tenant, token: &str) -> Result<(), StoreError> {
    state
        .store
        .complete_enrollment(
            &tenant.id,
            &secret_digest(token),
            &Completion::Consume,
            state.clock.now(),
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod first_factor_tests {
    use super::first_factor_amr;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_values_before_mfa_are_the_first_factors() {
        assert_eq!(first_factor_amr(&v(&["pwd", "mfa", "otp"])), v(&["pwd"]));
        assert_eq!(first_factor_amr(&v(&["otp", "mfa"])), v(&["otp"]));
        assert_eq!(first_factor_amr(&v(&["otp", "mfa", "hwk"])), v(&["otp"]));
        assert_eq!(first_factor_amr(&v(&["webauthn"])), v(&["webauthn"]));
        assert_eq!(first_factor_amr(&v(&["pwd"])), v(&["pwd"]));
    }
}
