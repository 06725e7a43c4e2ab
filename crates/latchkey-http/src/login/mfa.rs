//! The second step's answers on the hosted pages: `POST /login/mfa`
//! (another factor), `POST /login/mfa/verify` (a code),
//! `POST /login/mfa/key/challenge` and `POST /login/mfa/key` (a WebAuthn
//! key), `POST /login/mfa/push/status` (where a push notification stands,
//! JSON for the page's script) and `POST /login/mfa/push` (the login
//! finishes once it is approved). The step runs on the MFA API's machinery: an `mfa_token` (HttpOnly
//! cookie, bound to this browser beside the login transaction's) holds the
//! first factor, is spent by the first right answer, and dies after five
//! wrong ones. The pages are `pages/second_step.rs`; enrollment of a first
//! factor is `mfa_enroll.rs`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::{
    LoginForm, Script, finish, json_no_store, json_refused, json_unavailable, open_session, tx_form,
};
use crate::app::{AppState, SharedState};
use crate::http::{ClientIp, cookies, user_agent};
use crate::pages;
use crate::pages::second_step::{self, Step};
use latchkey_core::services::authorize::AuthorizeRequest;
use latchkey_core::services::factors::{self, AnswerKind};
use latchkey_core::services::login_flow::{self, CodeAnswer};
use latchkey_core::services::mfa::{self, Answer, MfaError, Pending};
use latchkey_core::services::push_step::{self, SendMode};
use latchkey_core::store::MethodRow;
use latchkey_core::tenant::{Client, FactorType, Tenant};

/// The browser's second step: its transaction and `mfa_token` cookies, the
/// request, and the user the token was issued for.
pub(super) struct Ctx {
    pub(super) req: AuthorizeRequest,
    pub(super) token: String,
    pub(super) user_id: String,
    pending: Pending,
    pub(super) languages: Vec<String>,
    pub(super) user_agent: String,
}

impl Ctx {
    /// Who answers this step's challenge, for the checks and the tenant log.
    pub(super) fn answer<'a>(&'a self, client: &'a Client, ip: &'a str) -> Answer<'a> {
        Answer {
            client,
            token: &self.token,
            ip,
            user_agent: &self.user_agent,
            via: "login_page",
        }
    }
}

/// The second step of the login transaction whose request is `req`: its
/// `mfa_token` cookie and what the token holds.
pub(super) async fn context(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    req: AuthorizeRequest,
) -> Result<Ctx, Response> {
    let Some(token) = cookies::get(headers, cookies::MFA).filter(|t| t.len() <= 128) else {
        return Err(pages::expired(state, tenant));
    };
    let client = tenant.client(&req.client_id);
    let (row, pending) = match mfa::lookup(state, tenant, &token, client).await {
        Ok(found) => found,
        Err(e) => return Err(second_step::failure(state, tenant, e)),
    };
    let languages = pages::language::wanted();
    Ok(Ctx {
        req,
        token,
        user_id: row.user_id,
        pending,
        languages,
        user_agent: user_agent(headers),
    })
}

macro_rules! step {
    ($state:expr, $tenant:expr, $host:expr, $tx:expr, $ctx:expr, $ip:expr) => {{
        let Some(client) = $tenant.client(&$ctx.req.client_id) else {
            return pages::expired($state, $tenant);
        };
        Step {
            state: $state,
            tenant: $tenant,
            host: $host,
            tx: $tx,
            client,
            token: &$ctx.token,
            user_id: &$ctx.user_id,
            languages: &$ctx.languages,
            ip: $ip,
            user_agent: &$ctx.user_agent,
        }
    }};
}
pub(super) use step;

/// The second factor is given: a session with both factors in its `amr`,
/// then the code back to the app — or first, for a used recovery code, its
/// replacement, shown this once.
#[allow(clippy::too_many_arguments)]
pub(super) async fn done(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    headers: &HeaderMap,
    ip: &str,
    tx: &str,
    ctx: &Ctx,
    added: &[&str],
    recovery_code: Option<String>,
) -> Response {
    let user = match login_flow::active_user(state, tenant, &ctx.user_id).await {
        Ok(Some(u)) => u,
        Ok(None) => return pages::expired(state, tenant),
        Err(e) => return pages::store_error(state, tenant, e),
    };
    let mut amr = ctx.pending.amr.clone();
    for a in std::iter::once(&"mfa").chain(added) {
        if !amr.iter().any(|x| x == a) {
            amr.push((*a).to_string());
        }
    }
    let by = (ctx.req.client_id.as_str(), ip);
    let cookie = match open_session(state, tenant, host, headers, by, &user, &amr).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let mut res = match recovery_code {
        Some(code) => second_step::page(
            state,
            tenant,
            json!({ "step": "recovery-code", "tx": tx, "recovery_code": code }),
        ),
        // A password login offers a passkey (progressive enrollment) after
        // its second factor too; the offer's page goes on to the app.
        None if login_flow::offers_passkey(state, tenant, &user, &amr).await => {
            let html = state
                .templates
                .render_add_passkey(tenant, tx, &user.email, None);
            let mut res = (StatusCode::OK, Html(html)).into_response();
            pages::frame_guard(&mut res);
            res
        }
        None => {
            let now = state.clock.now();
            finish(state, tenant, host, tx, &ctx.req, &user, now, &amr, None).await
        }
    };
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, cookie);
    h.append(header::SET_COOKIE, cookies::clear(host, cookies::MFA));
    res
}

#[derive(Debug, Deserialize)]
pub(super) struct RestartForm {
    tx: String,
}

tx_form!(
    RestartForm,
    ChooseForm,
    PushForm,
    VerifyForm,
    KeyChallengeForm,
    KeyForm
);

/// `POST /login/mfa/restart`: "Not you?" — the second step is given up (its
/// `mfa_token` spent, its cookie cleared) and the login form shown again for
/// the same request, so another person can log in.
pub(super) async fn restart(
    State(state): State<SharedState>,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<RestartForm>,
) -> Response {
    if let Some(token) = cookies::get(&headers, cookies::MFA).filter(|t| t.len() <= 128)
        && let Err(e) = mfa::abandon(&state, &tenant, &token).await
    {
        return pages::store_error(&state, &tenant, e);
    }
    let mut res = pages::login_form(
        &state,
        &tenant,
        &form.tx,
        "",
        pages::LoginOf::request(&tenant, &req),
    );
    res.headers_mut()
        .append(header::SET_COOKIE, cookies::clear(&host, cookies::MFA));
    res
}

#[derive(Debug, Deserialize)]
pub(super) struct ChooseForm {
    tx: String,
    #[serde(default)]
    method: String,
    /// `1`: a push method's notification sent again.
    #[serde(default)]
    again: String,
}

/// `POST /login/mfa`: answer with another of the user's factors (choosing
/// a push method sends its notification unless one is waiting; `again`
/// sends a new one).
pub(super) async fn choose(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<ChooseForm>,
) -> Response {
    let ctx = match context(&state, &tenant, &headers, req).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let step = step!(&state, &tenant, &host, &form.tx, ctx, &ip);
    if form.again == "1" {
        let factors = match step.factors().await {
            Ok(f) => f,
            Err(res) => return res,
        };
        if let Some(method) = factors.iter().find(|m| m.id == form.method && is_push(m)) {
            return step
                .push_challenge(&factors, method, SendMode::Again, None)
                .await;
        }
    }
    step.challenge(Some(&form.method), None).await
}

fn is_push(method: &MethodRow) -> bool {
    factors::answer_kind(method.method_type) == Some(AnswerKind::Push)
}

#[derive(Debug, Deserialize)]
pub(super) struct PushForm {
    tx: String,
    #[serde(default)]
    method: String,
}

/// `POST /login/mfa/push/status`: where the step's push notification
/// stands, `{status: pending | approved | rejected | expired | failed |
/// none}`, for
/// the page's script; it changes nothing.
pub(super) async fn push_status(
    State(state): State<SharedState>,
    headers: HeaderMap,
    LoginForm { tenant, req, .. }: LoginForm<PushForm, Script>,
) -> Response {
    let Ok(ctx) = context(&state, &tenant, &headers, req).await else {
        return json_refused("login_expired");
    };
    match push_step::status(&state, &tenant, &ctx.token).await {
        Ok(status) => json_no_store(json!({ "status": status.as_str() })),
        Err(e) => {
            tracing::error!(error = %e, tenant = %tenant.name, "push status not read");
            json_unavailable()
        }
    }
}

/// `POST /login/mfa/push`: the login finishes if the step's notification
/// was approved (the page's script posts it then; without script, the
/// user's "I approved it" does); else the panel again, saying why.
pub(super) async fn push_continue(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<PushForm>,
) -> Response {
    let ctx = match context(&state, &tenant, &headers, req).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let step = step!(&state, &tenant, &host, &form.tx, ctx, &ip);
    let answer = ctx.answer(step.client, &ip);
    let e = match push_step::answer(&state, &tenant, &answer).await {
        Ok(given) => {
            let amr: Vec<&str> = given.amr().into_iter().collect();
            return done(
                &state, &tenant, &host, &headers, &ip, &form.tx, &ctx, &amr, None,
            )
            .await;
        }
        Err(e) => e,
    };
    let message = match e {
        MfaError::AuthorizationPending => Some(
            pages::language::texts(Some(&tenant))
                .get("mfa-push.mfa-push-challenge-push.not-approved", &[]),
        ),
        // The panel says what became of it.
        MfaError::Rejected | MfaError::Expired | MfaError::NoAuthenticator(_) => None,
        e => return second_step::failure(&state, &tenant, e),
    };
    let factors = match step.factors().await {
        Ok(f) => f,
        Err(res) => return res,
    };
    match factors.iter().find(|m| m.id == form.method && is_push(m)) {
        Some(method) => {
            step.push_challenge(&factors, method, SendMode::Never, message.as_deref())
                .await
        }
        None => step.challenge(None, message.as_deref()).await,
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct VerifyForm {
    tx: String,
    method: String,
    code: String,
    #[serde(default)]
    oob_code: String,
}

/// `POST /login/mfa/verify`: a code for the chosen factor.
pub(super) async fn verify(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<VerifyForm>,
) -> Response {
    let ctx = match context(&state, &tenant, &headers, req).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let step = step!(&state, &tenant, &host, &form.tx, ctx, &ip);
    let factors = match step.factors().await {
        Ok(f) => f,
        Err(res) => return res,
    };
    let Some(method) = factors.iter().find(|m| m.id == form.method) else {
        return step.challenge(None, None).await;
    };
    let answer = ctx.answer(step.client, &ip);
    let Some(kind) = code_answer(method, &form.oob_code) else {
        return step.challenge(Some(&method.id), None).await;
    };
    let code = form.code.trim();
    match login_flow::answer_code(&state, &tenant, &answer, &ctx.user_id, kind, code).await {
        Ok(a) => {
            done(
                &state,
                &tenant,
                &host,
                &headers,
                &ip,
                &form.tx,
                &ctx,
                &a.amr,
                a.recovery_code,
            )
            .await
        }
        Err(e) => wrong_code(&step, &factors, method, &form.oob_code, e).await,
    }
}

/// How the chosen factor is answered with a code (a key is not).
fn code_answer<'a>(method: &MethodRow, oob_code: &'a str) -> Option<CodeAnswer<'a>> {
    match factors::answer_kind(method.method_type) {
        // A push method's app shows TOTP codes too.
        Some(AnswerKind::Otp | AnswerKind::Push) => Some(CodeAnswer::Otp),
        Some(AnswerKind::Oob) => Some(CodeAnswer::Oob { oob_code }),
        Some(AnswerKind::RecoveryCode) => Some(CodeAnswer::RecoveryCode),
        // Keys answer at `/login/mfa/key`; other types are no second factor.
        Some(AnswerKind::Key) | None => None,
    }
}

/// The challenge again after a code that was not right (or too many).
async fn wrong_code(
    step: &Step<'_>,
    factors: &[MethodRow],
    method: &MethodRow,
    oob_code: &str,
    e: MfaError,
) -> Response {
    let oob = (!oob_code.is_empty()).then_some(oob_code);
    let message = match e {
        MfaError::Wrong { attempts_left } if attempts_left > 0 => {
            pages::language::texts(Some(step.tenant)).count(
                "mfa.mfa-challenge.invalid-code",
                "attempts",
                attempts_left,
                &[],
            )
        }
        MfaError::Throttled(seconds) => too_many(step.tenant, seconds),
        MfaError::NoAuthenticator(_) => return step.challenge(None, None).await,
        e => return second_step::failure(step.state, step.tenant, e),
    };
    if is_push(method) {
        // The panel stays as it was: no new notification.
        return step
            .push_panel(factors, method, SendMode::Never, Some(&message), true)
            .await;
    }
    step.challenge_page(factors, method, oob, Some(&message))
}

fn too_many(tenant: &Tenant, seconds: i64) -> String {
    let minutes = (seconds + 59) / 60;
    pages::language::texts(Some(tenant)).count(
        "mfa.mfa-challenge.too-many-failures",
        "minutes",
        minutes,
        &[],
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct KeyChallengeForm {
    tx: String,
    /// `webauthn-roaming` or `webauthn-platform`.
    #[serde(deserialize_with = "key_kind")]
    kind: FactorType,
}

/// A type of WebAuthn key answered at `/login/mfa/key`, from its wire name;
/// another name leaves the form undecoded (the script's `invalid_request`).
pub(super) fn key_kind<'de, D: Deserializer<'de>>(d: D) -> Result<FactorType, D::Error> {
    let kind = String::deserialize(d)?;
    FactorType::try_from(kind)
        .ok()
        .filter(|k| factors::answer_kind(*k) == Some(AnswerKind::Key))
        .ok_or_else(|| serde::de::Error::custom("not a kind of key"))
}

/// What a key request of the page's script (JSON) works on: the second
/// step's context of the login transaction whose request is `req`, and its
/// client; else the JSON refusal.
pub(super) async fn key_context<'t>(
    state: &AppState,
    tenant: &'t Tenant,
    headers: &HeaderMap,
    req: AuthorizeRequest,
) -> Result<(Ctx, &'t Client), Response> {
    let Ok(ctx) = context(state, tenant, headers, req).await else {
        return Err(json_refused("login_expired"));
    };
    let Some(client) = tenant.client(&ctx.req.client_id) else {
        return Err(json_refused("login_expired"));
    };
    Ok((ctx, client))
}

/// `POST /login/mfa/key/challenge`: request options naming the user's keys
/// of one kind (JSON, for the page's script).
pub(super) async fn key_challenge(
    State(state): State<SharedState>,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<KeyChallengeForm, Script>,
) -> Response {
    let kind = form.kind;
    let (ctx, client) = match key_context(&state, &tenant, &headers, req).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    match factors::webauthn::key_challenge(&state, &tenant, &host, client, &ctx.token, kind).await {
        Ok((auth_session, options)) => {
            json_no_store(json!({ "auth_session": auth_session, "options": options }))
        }
        Err(e) => {
            tracing::info!(error = ?e, "key challenge refused");
            json_refused("invalid_request")
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct KeyForm {
    tx: String,
    auth_session: String,
    credential: String,
}

/// `POST /login/mfa/key`: the key's assertion.
pub(super) async fn key(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<KeyForm>,
) -> Response {
    let ctx = match context(&state, &tenant, &headers, req).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let step = step!(&state, &tenant, &host, &form.tx, ctx, &ip);
    let answer = ctx.answer(step.client, &ip);
    let response = if form.credential.len() > 16 * 1024 || form.auth_session.len() > 128 {
        Value::Null
    } else {
        serde_json::from_str(&form.credential).unwrap_or(Value::Null)
    };
    match factors::webauthn::verify_key(
        &state,
        &tenant,
        &host,
        &answer,
        &form.auth_session,
        &response,
    )
    .await
    {
        Ok((_, _, given)) => {
            let amr: Vec<&str> = given.amr().into_iter().collect();
            mfa::audit(&state, &tenant, &answer, &ctx.user_id, "webauthn", None).await;
            done(
                &state, &tenant, &host, &headers, &ip, &form.tx, &ctx, &amr, None,
            )
            .await
        }
        Err(MfaError::Wrong { attempts_left }) if attempts_left > 0 => {
            let message = pages::language::texts(Some(&tenant))
                .get("mfa-webauthn.mfa-webauthn-error.not-verified", &[]);
            step.challenge(None, Some(&message)).await
        }
        Err(MfaError::Throttled(seconds)) => {
            let message = too_many(&tenant, seconds);
            step.challenge(None, Some(&message)).await
        }
        Err(e) => second_step::failure(&state, &tenant, e),
    }
}
