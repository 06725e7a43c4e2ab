//! The hosted page's second step: after the first factor (a password, or
//! the browser's session when a request steps up), the user answers with a
//! second factor they have — an authenticator app's code, a code sent by
//! email, SMS or voice call, a recovery code, or a WebAuthn key — or, having
//! none while one is required, enrolls one.
//!
//! The step runs on the MFA API's machinery: an `mfa_token` (HttpOnly
//! cookie, bound to this browser beside the login transaction's) holds the
//! first factor, is spent by the first right answer, and dies after five
//! wrong ones. Enrollment at login is only open to a user without any
//! second factor, so a stolen password cannot add the thief's own.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::submit::{expired, finish_login, open_session, transaction};
use crate::app::{AppState, SharedState};
use crate::crypto::hash::secret_digest;
use crate::http::{ClientIp, cookies, user_agent};
use crate::oauth::authorize::{self, AuthorizeRequest};
use crate::oauth::wire::OAuthTenant;
use crate::services::enrollment::{self, Challenge, EnrollError, Proof, Start, Who};
use crate::services::mfa::{self, Answer, MfaError, Need, Pending};
use crate::store::{Completion, MethodRow, UserRow};
use crate::tenant::{Client, FactorType, Tenant};

/// What the first factor established.
pub struct FirstFactor<'a> {
    pub user: &'a UserRow,
    pub amr: &'a [String],
    pub auth_time: i64,
}

/// The second step for a user who passed the first: a challenge with one of
/// their factors, or the enrollment of one. The response sets the
/// `mfa_token` cookie.
#[allow(clippy::too_many_arguments)]
pub async fn second_factor(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    tx: &str,
    req: &AuthorizeRequest,
    first: &FirstFactor<'_>,
    need: Need,
    languages: &[String],
) -> Response {
    let Some(client) = tenant.client(&req.client_id) else {
        return expired(state, tenant);
    };
    let pending = Pending {
        audience: req.audience.clone(),
        scope: req.scope.clone(),
        amr: first.amr.to_vec(),
        auth_time: first.auth_time,
        gty: "authorization_code".into(),
    };
    let token = match mfa::issue_token(state, tenant, client, &first.user.user_id, &pending).await {
        Ok(t) => t,
        Err(e) => return failure(state, tenant, e),
    };
    let step = Step {
        state,
        tenant,
        host,
        tx,
        client,
        token: &token,
        user_id: &first.user.user_id,
        languages,
    };
    let mut res = match need {
        Need::Enroll => step.enroll_choice(None).await,
        _ => step.challenge(None, None).await,
    };
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(host, cookies::MFA, &token, mfa::MFA_TOKEN_TTL),
    );
    res
}

fn failure(state: &AppState, tenant: &Tenant, e: MfaError) -> Response {
    match e {
        MfaError::Store(e) => authorize::store_error(state, tenant, e),
        MfaError::BadToken | MfaError::Wrong { .. } => {
            let html = state.templates.render_error(
                Some(tenant),
                "This sign-in can no longer be completed (it expired, or too many wrong codes \
                 were entered). Go back to the application and start again.",
            );
            (StatusCode::BAD_REQUEST, Html(html)).into_response()
        }
        other => authorize::internal(state, tenant, format!("{other:?}")),
    }
}

/// One browser's second step in progress.
struct Step<'a> {
    state: &'a AppState,
    tenant: &'a Tenant,
    host: &'a str,
    tx: &'a str,
    client: &'a Client,
    token: &'a str,
    user_id: &'a str,
    languages: &'a [String],
}

fn label(m: &MethodRow) -> String {
    let dest = |key: &str| {
        m.data
            .get(key)
            .and_then(Value::as_str)
            .map(mfa::masked)
            .unwrap_or_default()
    };
    let named = |fallback: &str| m.name.clone().unwrap_or_else(|| fallback.to_string());
    match m.method_type.as_str() {
        "totp" => named("Authenticator app"),
        "recovery-code" => "Recovery code".into(),
        "email" => format!("Email a code to {}", dest("email")),
        "phone" => {
            let voice = m
                .data
                .get("preferred_authentication_method")
                .and_then(Value::as_str)
                == Some("voice");
            let how = if voice { "Call" } else { "Text a code to" };
            format!("{how} {}", dest("phone_number"))
        }
        "webauthn-roaming" => named("Security key"),
        _ => named("This device (fingerprint, face or screen lock)"),
    }
}

/// How a factor is answered on the page.
fn answer_kind(m: &MethodRow) -> &'static str {
    match m.method_type.as_str() {
        "totp" => "otp",
        "email" | "phone" => "oob",
        "recovery-code" => "recovery-code",
        _ => "key",
    }
}

/// The order factors are offered in: codes the user has at hand first, the
/// recovery code last.
fn rank(m: &MethodRow) -> u8 {
    match m.method_type.as_str() {
        "totp" => 0,
        "webauthn-roaming" | "webauthn-platform" => 1,
        "phone" => 2,
        "email" => 3,
        _ => 4,
    }
}

fn page(state: &AppState, tenant: &Tenant, view: Value) -> Response {
    let html = state.templates.render_mfa(tenant, &view);
    let mut res = (
        StatusCode::OK,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Html(html),
    )
        .into_response();
    authorize::frame_guard(&mut res);
    res
}

impl Step<'_> {
    fn who<'w>(&'w self, req_client: &'w str, ua: &'w str) -> Who<'w> {
        Who {
            tenant: self.tenant,
            host: self.host,
            user_id: self.user_id,
            client_id: req_client,
            user_agent: ua,
            languages: self.languages,
        }
    }

    async fn factors(&self) -> Result<Vec<MethodRow>, Response> {
        let methods = mfa::factors_of(self.state, self.tenant, self.user_id)
            .await
            .map_err(|e| authorize::store_error(self.state, self.tenant, e))?;
        let mut factors: Vec<MethodRow> =
            mfa::second_factors(&methods).into_iter().cloned().collect();
        factors.sort_by_key(rank);
        Ok(factors)
    }

    /// The challenge page for the chosen factor (else the first). Choosing
    /// an email or phone factor sends its code.
    async fn challenge(&self, chosen: Option<&str>, error: Option<&str>) -> Response {
        let factors = match self.factors().await {
            Ok(f) => f,
            Err(res) => return res,
        };
        let Some(current) = chosen
            .and_then(|id| factors.iter().find(|m| m.id == id))
            .or_else(|| factors.first())
        else {
            return self.enroll_choice(None).await;
        };
        let mut error = error.map(str::to_string);
        let mut oob_code = None;
        if answer_kind(current) == "oob" {
            match mfa::challenge(
                self.state,
                self.tenant,
                self.client,
                self.token,
                &["oob"],
                Some(&current.id),
                self.languages,
            )
            .await
            {
                Ok(mfa::Challenge::Oob { oob_code: c, .. }) => oob_code = Some(c),
                Ok(mfa::Challenge::Otp) => {}
                Err(MfaError::Throttled(_)) => {
                    error = Some(
                        "Too many codes were sent. Wait a few minutes, or choose another method."
                            .into(),
                    );
                }
                Err(MfaError::Delivery(e)) => {
                    tracing::warn!(error = %e, tenant = %self.tenant.name, "login code not sent");
                    error = Some(
                        "The code could not be sent. Choose another method, or try again.".into(),
                    );
                }
                Err(e) => return failure(self.state, self.tenant, e),
            }
        }
        self.challenge_page(&factors, current, oob_code.as_deref(), error.as_deref())
    }

    fn challenge_page(
        &self,
        factors: &[MethodRow],
        current: &MethodRow,
        oob_code: Option<&str>,
        error: Option<&str>,
    ) -> Response {
        let methods: Vec<Value> = factors
            .iter()
            .map(|m| json!({ "id": m.id, "label": label(m), "selected": m.id == current.id }))
            .collect();
        page(
            self.state,
            self.tenant,
            json!({
                "step": "challenge",
                "tx": self.tx,
                "error": error,
                "methods": methods,
                "current": {
                    "id": current.id,
                    "kind": answer_kind(current),
                    "type": current.method_type,
                    "label": label(current),
                    "oob_code": oob_code,
                },
            }),
        )
    }

    fn enrollable(&self) -> Vec<(FactorType, &'static str)> {
        let enabled = &self.tenant.config.factors;
        [
            (FactorType::Totp, "Authenticator app"),
            (FactorType::WebauthnRoaming, "Security key"),
            (
                FactorType::WebauthnPlatform,
                "This device (fingerprint, face or screen lock)",
            ),
            (FactorType::Phone, "Text message or voice call"),
            (FactorType::Email, "Email"),
        ]
        .into_iter()
        .filter(|(f, _)| enabled.contains(f))
        .collect()
    }

    async fn enroll_choice(&self, error: Option<&str>) -> Response {
        let factors: Vec<Value> = self
            .enrollable()
            .iter()
            .map(|(f, l)| json!({ "factor": f.as_str(), "label": l }))
            .collect();
        page(
            self.state,
            self.tenant,
            json!({
                "step": "enroll-choose",
                "tx": self.tx,
                "error": error.or(factors.is_empty().then_some(
                    "A second factor is required, but none can be set up here. Contact the \
                     site's administrator."
                )),
                "factors": factors,
            }),
        )
    }

    fn enroll_page(&self, factor: FactorType, extra: Value, error: Option<&str>) -> Response {
        let label = self
            .enrollable()
            .into_iter()
            .find(|(f, _)| *f == factor)
            .map(|(_, l)| l)
            .unwrap_or("");
        let mut view = json!({
            "step": "enroll",
            "tx": self.tx,
            "error": error,
            "enroll": { "factor": factor.as_str(), "label": label },
        });
        if let (Some(dst), Some(src)) = (view["enroll"].as_object_mut(), extra.as_object()) {
            dst.extend(src.clone());
        }
        page(self.state, self.tenant, view)
    }

    /// Enrollment at login is for users without any second factor.
    async fn may_enroll(&self) -> Result<(), Response> {
        let factors = self.factors().await?;
        if factors.is_empty() {
            Ok(())
        } else {
            Err(self
                .challenge(
                    None,
                    Some("You have a second factor already: use it to sign in."),
                )
                .await)
        }
    }
}

/// The browser's second step: its transaction and `mfa_token` cookies, the
/// request, and the user the token was issued for.
struct Ctx {
    req: AuthorizeRequest,
    token: String,
    user_id: String,
    pending: Pending,
    languages: Vec<String>,
    user_agent: String,
}

impl Ctx {
    /// Who answers this step's challenge, for the checks and the tenant log.
    fn answer<'a>(&'a self, client: &'a Client, ip: &'a str) -> Answer<'a> {
        Answer {
            client,
            token: &self.token,
            ip,
            user_agent: &self.user_agent,
            via: "login_page",
        }
    }
}

async fn context(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    tx: &str,
) -> Result<Ctx, Response> {
    let req = transaction(state, tenant, headers, tx).await?;
    let Some(token) = cookies::get(headers, cookies::MFA).filter(|t| t.len() <= 128) else {
        return Err(expired(state, tenant));
    };
    let client = tenant.client(&req.client_id);
    let (row, pending) = match mfa::lookup(state, tenant, &token, client).await {
        Ok(found) => found,
        Err(e) => return Err(failure(state, tenant, e)),
    };
    let languages = crate::http::accept_languages(headers);
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
    ($state:expr, $tenant:expr, $host:expr, $tx:expr, $ctx:expr) => {{
        let Some(client) = $tenant.client(&$ctx.req.client_id) else {
            return expired($state, $tenant);
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
        }
    }};
}

/// The second factor is given: a session with both factors in its `amr`,
/// then the code back to the app — or first, for a used recovery code, its
/// replacement, shown this once.
#[allow(clippy::too_many_arguments)]
async fn done(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    headers: &HeaderMap,
    tx: &str,
    ctx: &Ctx,
    added: &[&str],
    recovery_code: Option<String>,
) -> Response {
    let user = match state.store.user_by_id(&tenant.id, &ctx.user_id).await {
        Ok(Some(u)) if !u.blocked => u,
        Ok(_) => return expired(state, tenant),
        Err(e) => return authorize::store_error(state, tenant, e),
    };
    let mut amr = ctx.pending.amr.clone();
    for a in std::iter::once(&"mfa").chain(added) {
        if !amr.iter().any(|x| x == a) {
            amr.push((*a).to_string());
        }
    }
    let cookie = match open_session(state, tenant, host, headers, &user, &amr).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let mut res = match recovery_code {
        Some(code) => page(
            state,
            tenant,
            json!({ "step": "recovery-code", "tx": tx, "recovery_code": code }),
        ),
        None => {
            let now = state.clock.now();
            finish_login(state, tenant, host, tx, &ctx.req, &user, now, &amr, None).await
        }
    };
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, cookie);
    h.append(header::SET_COOKIE, cookies::clear(host, cookies::MFA));
    res
}

#[derive(Debug, Deserialize)]
pub struct ChooseForm {
    tx: String,
    #[serde(default)]
    method: String,
}

/// `POST /login/mfa`: answer with another of the user's factors.
pub async fn choose(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    headers: HeaderMap,
    form: Result<Form<ChooseForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return expired(&state, &tenant);
    };
    let ctx = match context(&state, &tenant, &headers, &form.tx).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let step = step!(&state, &tenant, &host, &form.tx, ctx);
    step.challenge(Some(&form.method), None).await
}

#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    tx: String,
    method: String,
    code: String,
    #[serde(default)]
    oob_code: String,
}

/// `POST /login/mfa/verify`: a code for the chosen factor.
pub async fn verify(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: Result<Form<VerifyForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return expired(&state, &tenant);
    };
    let ctx = match context(&state, &tenant, &headers, &form.tx).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let step = step!(&state, &tenant, &host, &form.tx, ctx);
    let factors = match step.factors().await {
        Ok(f) => f,
        Err(res) => return res,
    };
    let Some(method) = factors.iter().find(|m| m.id == form.method) else {
        return step.challenge(None, None).await;
    };
    let answer = ctx.answer(step.client, &ip);
    let code = form.code.trim();
    let (factor, outcome) = match answer_kind(method) {
        "otp" => (
            "otp",
            mfa::verify_otp(&state, &tenant, &answer, code)
                .await
                .map(|_| (vec!["otp"], None)),
        ),
        "oob" => (
            "oob",
            mfa::verify_oob(&state, &tenant, &answer, &form.oob_code, code)
                .await
                .map(|(_, _, channel)| {
                    let amr = match channel {
                        "sms" => vec!["sms"],
                        "voice" => vec!["tel"],
                        _ => vec![],
                    };
                    (amr, None)
                }),
        ),
        "recovery-code" => (
            "recovery-code",
            mfa::verify_recovery_code(&state, &tenant, &answer, code)
                .await
                .map(|(_, _, fresh)| (vec![], Some(fresh))),
        ),
        _ => return step.challenge(Some(&method.id), None).await,
    };
    match outcome {
        Ok((amr, fresh)) => {
            mfa::audit(&state, &tenant, &answer, &ctx.user_id, factor, None).await;
            done(
                &state, &tenant, &host, &headers, &form.tx, &ctx, &amr, fresh,
            )
            .await
        }
        Err(MfaError::Wrong { attempts_left }) if attempts_left > 0 => {
            let oob = (!form.oob_code.is_empty()).then_some(form.oob_code.as_str());
            step.challenge_page(
                &factors,
                method,
                oob,
                Some(&format!(
                    "That code is not right. {attempts_left} attempt{} left.",
                    if attempts_left == 1 { "" } else { "s" }
                )),
            )
        }
        Err(MfaError::Throttled(seconds)) => {
            let oob = (!form.oob_code.is_empty()).then_some(form.oob_code.as_str());
            step.challenge_page(&factors, method, oob, Some(&too_many(seconds)))
        }
        Err(MfaError::NoAuthenticator(_)) => step.challenge(None, None).await,
        Err(e) => failure(&state, &tenant, e),
    }
}

fn too_many(seconds: i64) -> String {
    let minutes = (seconds + 59) / 60;
    format!(
        "Too many wrong codes. Try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    )
}

#[derive(Debug, Deserialize)]
pub struct KeyChallengeForm {
    tx: String,
    /// `webauthn-roaming` or `webauthn-platform`.
    kind: String,
}

fn json_refused(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response()
}

fn json_no_store(body: Value) -> Response {
    let mut res = Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn key_kind(kind: &str) -> Option<FactorType> {
    match kind {
        "webauthn-roaming" => Some(FactorType::WebauthnRoaming),
        "webauthn-platform" => Some(FactorType::WebauthnPlatform),
        _ => None,
    }
}

/// `POST /login/mfa/key/challenge`: request options naming the user's keys
/// of one kind (JSON, for the page's script).
pub async fn key_challenge(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    headers: HeaderMap,
    form: Result<Form<KeyChallengeForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return json_refused("invalid_request");
    };
    let Some(kind) = key_kind(&form.kind) else {
        return json_refused("invalid_request");
    };
    let Ok(ctx) = context(&state, &tenant, &headers, &form.tx).await else {
        return json_refused("login_expired");
    };
    let Some(client) = tenant.client(&ctx.req.client_id) else {
        return json_refused("login_expired");
    };
    match mfa::key_challenge(&state, &tenant, &host, client, &ctx.token, kind).await {
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
pub struct KeyForm {
    tx: String,
    auth_session: String,
    credential: String,
}

/// `POST /login/mfa/key`: the key's assertion.
pub async fn key(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: Result<Form<KeyForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return expired(&state, &tenant);
    };
    let ctx = match context(&state, &tenant, &headers, &form.tx).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let step = step!(&state, &tenant, &host, &form.tx, ctx);
    let answer = ctx.answer(step.client, &ip);
    let response = if form.credential.len() > 16 * 1024 || form.auth_session.len() > 128 {
        Value::Null
    } else {
        serde_json::from_str(&form.credential).unwrap_or(Value::Null)
    };
    match mfa::verify_key(
        &state,
        &tenant,
        &host,
        &answer,
        &form.auth_session,
        &response,
    )
    .await
    {
        Ok((_, _, amr)) => {
            mfa::audit(&state, &tenant, &answer, &ctx.user_id, "webauthn", None).await;
            done(
                &state,
                &tenant,
                &host,
                &headers,
                &form.tx,
                &ctx,
                &[amr],
                None,
            )
            .await
        }
        Err(MfaError::Wrong { attempts_left }) if attempts_left > 0 => {
            step.challenge(None, Some("That key could not be verified. Try again."))
                .await
        }
        Err(MfaError::Throttled(seconds)) => step.challenge(None, Some(&too_many(seconds))).await,
        Err(e) => failure(&state, &tenant, e),
    }
}

#[derive(Debug, Deserialize)]
pub struct EnrollForm {
    tx: String,
    factor: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone_number: String,
    #[serde(default)]
    channel: String,
}

fn enroll_error(e: &EnrollError) -> String {
    match e {
        EnrollError::Throttled(_) => "Too many codes were sent. Wait a few minutes.".into(),
        EnrollError::Delivery(_) => "The code could not be sent. Check it, or try again.".into(),
        EnrollError::Field { detail, .. } => detail.clone(),
        EnrollError::Invalid(detail) => detail.clone(),
        _ => "Something went wrong. Please try again.".into(),
    }
}

/// `POST /login/mfa/enroll`: set up the chosen factor (a user without any).
pub async fn enroll(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    headers: HeaderMap,
    form: Result<Form<EnrollForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return expired(&state, &tenant);
    };
    let ctx = match context(&state, &tenant, &headers, &form.tx).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let step = step!(&state, &tenant, &host, &form.tx, ctx);
    if let Err(res) = step.may_enroll().await {
        return res;
    }
    let Some((factor, _)) = step
        .enrollable()
        .into_iter()
        .find(|(f, _)| f.as_str() == form.factor)
    else {
        return step.enroll_choice(None).await;
    };
    let start = match factor {
        FactorType::Totp => Start::Totp,
        FactorType::Email if form.email.trim().is_empty() => {
            return step.enroll_page(factor, json!({ "ask": true }), None);
        }
        FactorType::Email => Start::Email {
            email: form.email.trim().to_string(),
        },
        FactorType::Phone if form.phone_number.trim().is_empty() => {
            return step.enroll_page(factor, json!({ "ask": true }), None);
        }
        FactorType::Phone => Start::Phone {
            phone_number: form.phone_number.trim().to_string(),
            preferred: Some(
                if form.channel == "voice" {
                    "voice"
                } else {
                    "sms"
                }
                .to_string(),
            ),
        },
        // The page's script asks for the creation options.
        _ => return step.enroll_page(factor, json!({ "key": true }), None),
    };
    let who = step.who(&ctx.req.client_id, &ctx.user_agent);
    match enrollment::start(&state, &who, start).await {
        Ok(started) => {
            let mut extra = json!({
                "method_id": started.method_id,
                "auth_session": started.auth_session,
                "email": form.email.trim(),
                "phone_number": form.phone_number.trim(),
            });
            if let Challenge::Totp {
                barcode_uri,
                manual_input_code,
            } = &started.challenge
            {
                extra["manual_input_code"] = json!(manual_input_code);
                extra["qr_svg"] = json!(qr_svg(barcode_uri));
            }
            step.enroll_page(factor, extra, None)
        }
        Err(EnrollError::Store(e)) => authorize::store_error(&state, &tenant, e),
        Err(e) => step.enroll_page(factor, json!({ "ask": true }), Some(&enroll_error(&e))),
    }
}

/// The `otpauth://` URI as an SVG QR code.
fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .build(),
        Err(_) => String::new(),
    }
}

#[derive(Debug, Deserialize)]
pub struct EnrollVerifyForm {
    tx: String,
    factor: String,
    method_id: String,
    auth_session: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    credential: String,
}

/// `POST /login/mfa/enroll/verify`: the first code from the new factor (or
/// the new key's attestation), then the login finishes.
pub async fn enroll_verify(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: Result<Form<EnrollVerifyForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return expired(&state, &tenant);
    };
    let ctx = match context(&state, &tenant, &headers, &form.tx).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let step = step!(&state, &tenant, &host, &form.tx, ctx);
    if let Err(res) = step.may_enroll().await {
        return res;
    }
    let Some((factor, _)) = step
        .enrollable()
        .into_iter()
        .find(|(f, _)| f.as_str() == form.factor)
    else {
        return step.enroll_choice(None).await;
    };
    if form.auth_session.len() > 128 || form.credential.len() > 16 * 1024 {
        return step.enroll_choice(None).await;
    }
    let is_key = matches!(
        factor,
        FactorType::WebauthnRoaming | FactorType::WebauthnPlatform
    );
    let proof = if is_key {
        Proof::Passkey {
            response: serde_json::from_str(&form.credential).unwrap_or(Value::Null),
        }
    } else {
        Proof::Otp {
            code: form.code.trim().to_string(),
        }
    };
    let who = step.who(&ctx.req.client_id, &ctx.user_agent);
    let method =
        match enrollment::verify(&state, &who, &form.method_id, &form.auth_session, proof).await {
            Ok(m) => m,
            Err(EnrollError::Store(e)) => return authorize::store_error(&state, &tenant, e),
            Err(e) => {
                let extra = if is_key {
                    json!({ "key": true })
                } else {
                    json!({
                        "method_id": form.method_id,
                        "auth_session": form.auth_session,
                    })
                };
                return step.enroll_page(factor, extra, Some(&enroll_error(&e)));
            }
        };
    // The factor is the user's: the login's token is spent with it.
    let now = state.clock.now();
    match state
        .store
        .complete_enrollment(
            &tenant.id,
            &secret_digest(&ctx.token),
            &Completion::Consume,
            now,
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => return failure(&state, &tenant, MfaError::BadToken),
        Err(e) => return authorize::store_error(&state, &tenant, e),
    }
    let answer = ctx.answer(step.client, &ip);
    mfa::audit(
        &state,
        &tenant,
        &answer,
        &ctx.user_id,
        factor.as_str(),
        None,
    )
    .await;
    let amr: Vec<&str> = match factor {
        FactorType::Totp => vec!["otp"],
        FactorType::Phone => match method.preferred_phone_method.as_deref() {
            Some("voice") => vec!["tel"],
            _ => vec!["sms"],
        },
        FactorType::WebauthnRoaming => vec!["hwk"],
        FactorType::WebauthnPlatform => {
            let synced = method.passkey.as_ref().is_some_and(|p| p.backup_eligible);
            vec![if synced { "swk" } else { "hwk" }]
        }
        _ => vec![],
    };
    let recovery = match first_recovery_code(&state, &tenant, &who).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    done(
        &state, &tenant, &host, &headers, &form.tx, &ctx, &amr, recovery,
    )
    .await
}

/// A recovery code for a user who enrolled their first factor, when the
/// tenant offers them: shown once, so a lost device does not lock them out.
async fn first_recovery_code(
    state: &AppState,
    tenant: &Tenant,
    who: &Who<'_>,
) -> Result<Option<String>, Response> {
    if !tenant.config.factors.contains(&FactorType::RecoveryCode) {
        return Ok(None);
    }
    let methods = state
        .store
        .methods(&tenant.id, who.user_id)
        .await
        .map_err(|e| authorize::store_error(state, tenant, e))?;
    if methods.iter().any(|m| m.method_type == "recovery-code") {
        return Ok(None);
    }
    let started = match enrollment::start(state, who, Start::RecoveryCode).await {
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
        state,
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

#[derive(Debug, Deserialize)]
pub struct EnrollKeyForm {
    tx: String,
    factor: String,
}

/// `POST /login/mfa/enroll/key/challenge`: creation options for a new
/// WebAuthn key (JSON, for the page's script).
pub async fn enroll_key_challenge(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    headers: HeaderMap,
    form: Result<Form<EnrollKeyForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return json_refused("invalid_request");
    };
    let Some(kind) = key_kind(&form.factor) else {
        return json_refused("invalid_request");
    };
    let Ok(ctx) = context(&state, &tenant, &headers, &form.tx).await else {
        return json_refused("login_expired");
    };
    let Some(client) = tenant.client(&ctx.req.client_id) else {
        return json_refused("login_expired");
    };
    let step = Step {
        state: &state,
        tenant: &tenant,
        host: &host,
        tx: &form.tx,
        client,
        token: &ctx.token,
        user_id: &ctx.user_id,
        languages: &ctx.languages,
    };
    if step.may_enroll().await.is_err() {
        return json_refused("invalid_request");
    }
    let who = step.who(&ctx.req.client_id, &ctx.user_agent);
    let start = Start::WebauthnKey {
        platform: kind == FactorType::WebauthnPlatform,
    };
    match enrollment::start(&state, &who, start).await {
        Ok(started) => match started.challenge {
            Challenge::Passkey { options } => json_no_store(json!({
                "auth_session": started.auth_session,
                "method_id": started.method_id,
                "options": options,
            })),
            _ => json_refused("invalid_request"),
        },
        Err(e) => {
            tracing::info!(error = %e, "key creation challenge refused");
            json_refused("invalid_request")
        }
    }
}
