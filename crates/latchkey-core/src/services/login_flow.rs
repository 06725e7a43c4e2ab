//! A login on the hosted pages, from the authorization request to its code:
//! the stored login transaction (created by `/authorize`, loaded by every
//! page, ended by the completion), the browser's login session, what follows
//! the first factor, the second step's factors, and the completion that
//! issues the code. The pages call in here; nothing here knows the pages.

use super::authorize::AuthorizeRequest;
use super::enrollment::{self, Challenge, Proof, Start, Who};
use super::factors;
use super::front_channel;
use super::grants::CodeRequest;
use super::methods::Method;
use super::mfa::{self, Answer, MfaError, Need, Pending};
use crate::clock::Timestamp;
use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::rng::RngExt;
use crate::store::{Completion, MethodRow, SessionRow, StoreError, UserRow};
use crate::tenant::{Client, FactorType, Tenant};

/// How long an authorization code lives.
pub(crate) const CODE_TTL: i64 = 60;
/// How long a login page stays usable.
pub const LOGIN_TTL: i64 = 15 * 60;

/// Why a step of the flow cannot go on.
#[derive(Debug)]
pub enum FlowError {
    /// The transaction (or what it names) is gone: start again.
    Expired,
    Store(StoreError),
    /// A failure we did not expect (logged, never shown).
    Internal(String),
}

impl From<StoreError> for FlowError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The end of a login: what the response type asks for (`code`,
/// `access_token` with `token_type`, `expires_in` and `scope`, `id_token`),
/// or an error for the client (should a path have missed the second factor
/// the request needs, or the user no longer be granted what it asks).
#[derive(Debug)]
pub enum Issued {
    Answer(Vec<(&'static str, String)>),
    Refused {
        error: &'static str,
        description: String,
    },
}

/// The live login session under the session cookie's value, with its digest.
pub async fn current_session(
    core: &Core,
    tenant: &Tenant,
    cookie: Option<&str>,
) -> Option<(String, SessionRow)> {
    let digest = secret_digest(cookie?);
    let idle = 3600 * i64::from(tenant.config.tenant.idle_session_lifetime_hours);
    let s = core
        .store
        .session(&tenant.id, &digest, core.clock.now(), idle)
        .await
        .ok()??;
    Some((digest, s))
}

/// A new session for `user` (the browser's old one, if any, ends): its ID
/// and lifetime in seconds, for the cookie.
pub async fn open_session(
    core: &Core,
    tenant: &Tenant,
    old_cookie: Option<&str>,
    user: &UserRow,
    amr: &[String],
) -> Result<(String, i64), StoreError> {
    let now = core.clock.now();
    if let Some((old, _)) = current_session(core, tenant, old_cookie).await {
        let _ = core.store.revoke_session(&tenant.id, &old, now).await;
    }
    let lifetime = 3600 * i64::from(tenant.config.tenant.session_lifetime_hours);
    let session_id = core.rng.token(32);
    let session = SessionRow {
        user_id: user.user_id.clone(),
        auth_time: now,
        amr: amr.to_vec(),
        expires_at: now + lifetime,
    };
    core.store
        .create_session(&tenant.id, &secret_digest(&session_id), &session, now)
        .await?;
    Ok((session_id, lifetime))
}

/// First factors whose success the hosted page itself logs (`s`) when its
/// login completes: a password, a passkey (and a passwordless code, told by
/// the user's connection). An upstream provider's login is logged by its
/// callback (`upstream_login`), so not again here.
const LOGGED_AT_COMPLETION: [&str; 2] = ["pwd", "webauthn"];

/// A hosted login completed with `amr` (its session opened, after the
/// second factor if one was asked): `s` in the tenant log, under the user's
/// connection, unless its first factor logged its own.
pub async fn log_completed(
    core: &Core,
    tenant: &Tenant,
    from: &crate::services::login::Origin<'_>,
    user: &UserRow,
    amr: &[String],
) {
    let passwordless = tenant.passwordless_connection(&user.connection).is_some();
    if passwordless
        || amr
            .iter()
            .any(|a| LOGGED_AT_COMPLETION.contains(&a.as_str()))
    {
        let connection = Some(user.connection.as_str());
        crate::services::login::log_signed_in(core, tenant, from, connection, user).await;
    }
}

/// Who logs out: the client named and where the request came from.
pub struct Logout<'a> {
    pub client_id: Option<&'a str>,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

/// The session under the cookie's value ends (logout); a live one's end is
/// `slo` in the tenant log, with its user.
pub async fn end_session(
    core: &Core,
    tenant: &Tenant,
    cookie: &str,
    who: &Logout<'_>,
) -> Result<(), StoreError> {
    let live = current_session(core, tenant, Some(cookie)).await;
    core.store
        .revoke_session(&tenant.id, &secret_digest(cookie), core.clock.now())
        .await?;
    if let Some((_, session)) = live {
        use crate::services::audit;
        let client = who.client_id.and_then(|id| tenant.client(id));
        let actor = audit::Actor {
            tenant_id: &tenant.id,
            client_id: client.map_or("", |c| c.client_id.as_str()),
            user_id: &session.user_id,
            ip: who.ip,
            user_agent: who.user_agent,
        };
        let entry = audit::Entry {
            user_id: Some(&session.user_id),
            client_name: client.map(|c| c.name.as_str()),
            ..audit::Entry::default()
        };
        audit::record_login(core, &actor, audit::codes::SUCCESS_LOGOUT, entry).await;
    }
    Ok(())
}

/// The user, unless gone or blocked.
pub async fn active_user(
    core: &Core,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Option<UserRow>, StoreError> {
    Ok(core
        .store
        .user_by_id(&tenant.id, user_id)
        .await?
        .filter(|u| !u.blocked))
}

/// Whether `ip` may have one more login transaction stored without being
/// signed in (the `login-transaction` stage of Suspicious IP Throttling):
/// the seconds to wait if not. Bounds what anonymous callers make the store
/// hold; the sweep deletes what expires.
pub fn anonymous_transaction(core: &Core, tenant: &Tenant, ip: &str) -> Result<(), i64> {
    let throttling = &tenant.config.tenant.suspicious_ip_throttling;
    if !throttling.enabled {
        return Ok(());
    }
    let stage = throttling.stage.login_transaction;
    let d = core.limiter.take(
        &format!("login-transaction:{}:{ip}", tenant.id),
        stage.max_attempts,
        u64::from(stage.rate),
    );
    if d.allowed {
        return Ok(());
    }
    tracing::warn!(tenant = %tenant.name, %ip, "too many login transactions from one IP");
    Err(d.retry_after(core.clock.now()))
}

/// A login transaction for `req`: the handle the hosted pages carry.
pub async fn create(
    core: &Core,
    tenant: &Tenant,
    req: &AuthorizeRequest,
) -> Result<String, FlowError> {
    let now = core.clock.now();
    let tx = core.rng.token(32);
    let json = serde_json::to_string(req)
        .map_err(|_| FlowError::Internal("serialising the login transaction".into()))?;
    core.store
        .create_login_transaction(&tenant.id, &secret_digest(&tx), &json, now, now + LOGIN_TTL)
        .await?;
    Ok(tx)
}

/// The request of a live login transaction.
pub async fn load(core: &Core, tenant: &Tenant, tx: &str) -> Result<AuthorizeRequest, FlowError> {
    match core
        .store
        .login_transaction(&tenant.id, &secret_digest(tx), core.clock.now())
        .await?
    {
        Some(json) => serde_json::from_str(&json).map_err(|e| FlowError::Internal(e.to_string())),
        None => Err(FlowError::Expired),
    }
}

/// What follows a first factor (a password, or a provider's login).
#[derive(Debug)]
pub enum Next {
    /// The second step, for what the request needs.
    SecondFactor(Need),
    /// Signed in; a passkey is offered before the code.
    OfferPasskey,
    /// Signed in: on to the code.
    Complete,
}

/// Decides what follows the first factor of a login for `req` (`amr`: what
/// it established).
pub async fn after_first_factor(
    core: &Core,
    tenant: &Tenant,
    host: &str,
    req: &AuthorizeRequest,
    user: &UserRow,
    amr: &[String],
) -> Result<Next, FlowError> {
    let Some(client) = tenant.client(&req.client_id) else {
        return Err(FlowError::Expired);
    };
    let need = mfa::need(
        core,
        tenant,
        host,
        client,
        req.audience.as_deref(),
        &user.user_id,
        amr,
        req.require_mfa,
    )
    .await?;
    if need != Need::Nothing {
        return Ok(Next::SecondFactor(need));
    }
    if offers_passkey(core, tenant, user, amr).await {
        return Ok(Next::OfferPasskey);
    }
    Ok(Next::Complete)
}

/// Whether to offer this user a passkey after a login of `amr`: one with a
/// password, whether or not a second factor followed (a login at an
/// upstream provider is not offered one: its user's way in is the
/// provider).
pub async fn offers_passkey(core: &Core, tenant: &Tenant, user: &UserRow, amr: &[String]) -> bool {
    if !amr.iter().any(|a| a == "pwd") {
        return false;
    }
    let passkeys = &tenant.config.tenant.passkeys;
    if !passkeys.progressive_enrollment || !tenant.config.factors.contains(&FactorType::Passkey) {
        return false;
    }
    match core.store.methods(&tenant.id, &user.user_id).await {
        Ok(methods) => !methods.iter().any(|m| m.method_type == FactorType::Passkey),
        Err(_) => false,
    }
}

/// The second step begins: the `mfa_token` that holds the first factor
/// until a second is given.
pub async fn begin_second_step(
    core: &Core,
    tenant: &Tenant,
    client: &Client,
    req: &AuthorizeRequest,
    user_id: &str,
    amr: &[String],
    auth_time: Timestamp,
) -> Result<String, MfaError> {
    let pending = Pending {
        audience: req.audience.clone(),
        scope: req.scope.clone(),
        amr: amr.to_vec(),
        auth_time,
        gty: "authorization_code".into(),
    };
    mfa::issue_token(core, tenant, client, user_id, &pending).await
}

/// The user's second factors in the order the page offers them: codes the
/// user has at hand first, the recovery code last.
pub async fn second_factors(
    core: &Core,
    tenant: &Tenant,
    user_id: &str,
) -> Result<Vec<MethodRow>, StoreError> {
    let methods = mfa::factors_of(core, tenant, user_id).await?;
    let mut factors: Vec<MethodRow> = mfa::second_factors(&methods).into_iter().cloned().collect();
    factors.sort_by_key(|m| factors::rank(m.method_type));
    Ok(factors)
}

/// A code given in the second step, by how it is checked.
#[derive(Debug, Clone, Copy)]
pub enum CodeAnswer<'a> {
    /// An authenticator app's code.
    Otp,
    /// A code sent by email, SMS or voice call, for the challenge
    /// `oob_code` names.
    Oob {
        oob_code: &'a str,
    },
    RecoveryCode,
}

/// What a right answer adds to the login: the `amr` values of the factor,
/// and for a used recovery code its replacement (shown once).
#[derive(Debug)]
pub struct Answered {
    pub amr: Vec<&'static str>,
    pub recovery_code: Option<String>,
}

/// Checks a code of the second step; a right one is logged as the user's.
pub async fn answer_code(
    core: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
    user_id: &str,
    kind: CodeAnswer<'_>,
    code: &str,
) -> Result<Answered, MfaError> {
    let (factor, given, recovery_code) = match kind {
        CodeAnswer::Otp => {
            factors::totp::verify_otp(core, tenant, answer, code).await?;
            ("otp", factors::Answered::Otp, None)
        }
        CodeAnswer::Oob { oob_code } => {
            let (_, _, given) =
                factors::codes::verify_oob(core, tenant, answer, oob_code, code).await?;
            ("oob", given, None)
        }
        CodeAnswer::RecoveryCode => {
            let (_, _, fresh) =
                factors::recovery_code::verify_recovery_code(core, tenant, answer, code).await?;
            (
                "recovery-code",
                factors::Answered::RecoveryCode,
                Some(fresh),
            )
        }
    };
    mfa::audit(core, tenant, answer, user_id, factor, None).await;
    Ok(Answered {
        amr: given.amr().into_iter().collect(),
        recovery_code,
    })
}

/// A factor enrolled at login is the user's: the login's `mfa_token` is
/// spent with it (refused when spent already), the event is logged, and a
/// first recovery code is made when the tenant offers them. What the new
/// factor adds to the login.
pub async fn enrolled(
    core: &Core,
    answer: &Answer<'_>,
    who: &Who<'_>,
    factor: FactorType,
    method: &Method,
) -> Result<Answered, MfaError> {
    let tenant = who.tenant;
    if !spend_mfa_token(core, tenant, answer.token).await? {
        return Err(MfaError::BadToken);
    }
    mfa::audit(core, tenant, answer, who.user_id, factor.as_str(), None).await;
    let given = match factor {
        FactorType::Totp => Some(factors::Answered::Otp),
        FactorType::Phone => Some(factors::Answered::Code(factors::Channel::of_phone(
            method.preferred_phone_method.as_deref(),
        ))),
        FactorType::Email => Some(factors::Answered::Code(factors::Channel::Email)),
        FactorType::WebauthnRoaming => Some(factors::Answered::Key { synced: false }),
        FactorType::WebauthnPlatform => Some(factors::Answered::Key {
            synced: method.passkey.as_ref().is_some_and(|p| p.backup_eligible),
        }),
        FactorType::RecoveryCode => Some(factors::Answered::RecoveryCode),
        // Not enrolled at the login: nothing but `mfa`.
        FactorType::Password | FactorType::Passkey | FactorType::PushNotification => None,
    };
    let amr = given.and_then(factors::Answered::amr).into_iter().collect();
    let recovery_code = first_recovery_code(core, tenant, who).await?;
    Ok(Answered { amr, recovery_code })
}

/// The login's `mfa_token` is spent; false when it was spent already.
async fn spend_mfa_token(core: &Core, tenant: &Tenant, token: &str) -> Result<bool, StoreError> {
    core.store
        .complete_enrollment(
            &tenant.id,
            &secret_digest(token),
            &Completion::Consume,
            core.clock.now(),
        )
        .await
}

/// A recovery code for a user who enrolled their first factor, when the
/// tenant offers them: shown once, so a lost device does not lock them out.
async fn first_recovery_code(
    core: &Core,
    tenant: &Tenant,
    who: &Who<'_>,
) -> Result<Option<String>, StoreError> {
    if !tenant.config.factors.contains(&FactorType::RecoveryCode) {
        return Ok(None);
    }
    let methods = core.store.methods(&tenant.id, who.user_id).await?;
    if methods
        .iter()
        .any(|m| m.method_type == FactorType::RecoveryCode)
    {
        return Ok(None);
    }
    let started = match enrollment::start(core, who, Start::RecoveryCode).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no recovery code at login enrollment");
            return Ok(None);
        }
    };
    let Challenge::RecoveryCode { recovery_code } = started.challenge else {
        return Ok(None);
    };
    match enrollment::verify(
        core,
        who,
        &started.method_id,
        &started.auth_session,
        Proof::Session,
    )
    .await
    {
        Ok(_) => Ok(Some(recovery_code)),
        Err(e) => {
            tracing::warn!(error = %e, "no recovery code at login enrollment");
            Ok(None)
        }
    }
}

/// The login is over: the transaction goes, then the code is issued. The
/// outer error: the transaction could not be ended, and nothing was issued.
#[allow(clippy::too_many_arguments)]
pub async fn complete(
    core: &Core,
    tenant: &Tenant,
    host: &str,
    tx: &str,
    req: &AuthorizeRequest,
    user: &UserRow,
    auth_time: Timestamp,
    amr: &[String],
) -> Result<Result<Issued, FlowError>, StoreError> {
    core.store
        .delete_login_transaction(&tenant.id, &secret_digest(tx))
        .await?;
    Ok(issue_code(core, tenant, host, req, user, auth_time, amr).await)
}

/// Issues what the request's response type asks for an authenticated user:
/// a new grant, and under it the code and the authorization endpoint's
/// tokens.
pub(crate) async fn issue_code(
    core: &Core,
    tenant: &Tenant,
    host: &str,
    req: &AuthorizeRequest,
    user: &UserRow,
    auth_time: Timestamp,
    amr: &[String],
) -> Result<Issued, FlowError> {
    // Every path here has met the second factor the request needs; this is
    // the last line should one not have.
    let Some(client) = tenant.client(&req.client_id) else {
        return Err(FlowError::Internal(
            "the client of a validated request is gone".into(),
        ));
    };
    let need = mfa::need(
        core,
        tenant,
        host,
        client,
        req.audience.as_deref(),
        &user.user_id,
        amr,
        req.require_mfa,
    )
    .await?;
    if need != Need::Nothing {
        tracing::error!(tenant = %tenant.name, "a login reached the code without its second factor");
        return Ok(Issued::Refused {
            error: if req.prompt_none {
                "login_required"
            } else {
                "access_denied"
            },
            description: "Multifactor authentication required".into(),
        });
    }
    let rt = req.response_type;
    // What the authorization endpoint's tokens would carry, decided before
    // anything is stored.
    let granted = if rt.front_channel() {
        match front_channel::granted(tenant, host, client, user, req) {
            Ok(g) => Some(g),
            Err((error, description)) => return Ok(Issued::Refused { error, description }),
        }
    } else {
        None
    };
    let now = core.clock.now();
    let grant_id = core.new_grant_id();
    core.store
        .create_grant(
            &tenant.id,
            &grant_id,
            &req.client_id,
            Some(&user.user_id),
            now,
        )
        .await?;
    let mut answer = Vec::new();
    let code = if rt.code {
        let code = new_code(core, tenant, host, req, user, auth_time, amr, &grant_id).await?;
        answer.push(("code", code.clone()));
        Some(code)
    } else {
        None
    };
    if let Some(granted) = &granted {
        let tokens = front_channel::Issue {
            tenant,
            host,
            client,
            user,
            req,
            granted,
            grant_id: &grant_id,
            auth_time,
            amr,
            code: code.as_deref(),
        };
        answer.extend(front_channel::tokens(core, &tokens).await?);
    }
    Ok(Issued::Answer(answer))
}

/// A code standing for `req` under the grant `grant_id`.
#[allow(clippy::too_many_arguments)]
async fn new_code(
    core: &Core,
    tenant: &Tenant,
    host: &str,
    req: &AuthorizeRequest,
    user: &UserRow,
    auth_time: Timestamp,
    amr: &[String],
    grant_id: &str,
) -> Result<String, FlowError> {
    let code = core.rng.token(32);
    let stored = CodeRequest {
        client_id: req.client_id.clone(),
        user_id: user.user_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        requested_scope: req.scope.clone(),
        audience: req.audience.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time,
        amr: amr.to_vec(),
        dpop_jkt: req.dpop_jkt.clone(),
        host: Some(host.to_string()),
    };
    let json = serde_json::to_string(&stored)
        .map_err(|_| FlowError::Internal("serialising the code".into()))?;
    core.store
        .create_code(
            &tenant.id,
            &secret_digest(&code),
            grant_id,
            &json,
            core.clock.now() + CODE_TTL,
        )
        .await?;
    Ok(code)
}
