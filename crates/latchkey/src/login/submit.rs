//! `POST /login` (the hosted form's password) and the passkey sign-in of the
//! same page: `POST /login/passkey/challenge` and `POST /login/passkey`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::app::SharedState;
use crate::crypto::hash::{constant_time_eq, secret_digest};
use crate::http::user_agent;
use crate::http::{ClientIp, cookies};
use crate::oauth::authorize::{self, AuthorizeRequest, Back};
use crate::oauth::wire::OAuthTenant;
use crate::rng::RngExt;
use crate::services::enrollment::{self, Challenge, Proof, Start, Who};
use crate::services::login::{self, LoginError, PasswordLogin};
use crate::services::passkey_login::{self, PasskeyError};
use crate::store::{SessionRow, UserRow};
use crate::tenant::{FactorType, Tenant};

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    tx: String,
    username: String,
    password: String,
}

pub(super) fn expired(state: &AppState, tenant: &Tenant) -> Response {
    let html = state.templates.render_error(
        Some(tenant),
        "Your login page has expired. Go back to the application and start again.",
    );
    (StatusCode::BAD_REQUEST, Html(html)).into_response()
}

/// The login transaction behind a form, if it belongs to this browser (the
/// cookie set with the page: login CSRF) and is still alive.
pub(super) async fn transaction(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    tx: &str,
) -> Result<AuthorizeRequest, Response> {
    let bound = cookies::get(headers, cookies::TRANSACTION)
        .is_some_and(|c| constant_time_eq(c.as_bytes(), tx.as_bytes()));
    if !bound || tx.len() > 128 {
        return Err(expired(state, tenant));
    }
    match state
        .store
        .login_transaction(&tenant.id, &secret_digest(tx), state.clock.now())
        .await
    {
        Ok(Some(json)) => {
            serde_json::from_str(&json).map_err(|e| authorize::internal(state, tenant, e))
        }
        Ok(None) => Err(expired(state, tenant)),
        Err(e) => Err(authorize::store_error(state, tenant, e)),
    }
}

fn login_page(
    state: &AppState,
    tenant: &Tenant,
    tx: &str,
    username: &str,
    message: &str,
) -> Response {
    let html = state
        .templates
        .render_login(tenant, tx, username, Some(message));
    let mut res = (StatusCode::OK, Html(html)).into_response();
    authorize::frame_guard(&mut res);
    res
}

/// A new session for `user` (the old one, if any, ends): its cookie.
pub(super) async fn open_session(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    headers: &HeaderMap,
    user: &UserRow,
    amr: &[String],
) -> Result<HeaderValue, Response> {
    let now = state.clock.now();
    if let Some((old, _)) = authorize::current_session(state, tenant, headers).await {
        let _ = state.store.revoke_session(&tenant.id, &old, now).await;
    }
    let lifetime = 3600 * i64::from(tenant.config.tenant.session_lifetime_hours);
    let session_id = state.rng.token(32);
    let session = SessionRow {
        user_id: user.user_id.clone(),
        auth_time: now,
        amr: amr.to_vec(),
        expires_at: now + lifetime,
    };
    state
        .store
        .create_session(&tenant.id, &secret_digest(&session_id), &session, now)
        .await
        .map_err(|e| authorize::store_error(state, tenant, e))?;
    Ok(cookies::set(host, cookies::SESSION, &session_id, lifetime))
}

/// The login is over: the transaction goes, the code goes back to the app.
#[allow(clippy::too_many_arguments)]
pub(super) async fn finish_login(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    tx: &str,
    req: &AuthorizeRequest,
    user: &UserRow,
    auth_time: i64,
    amr: &[String],
    session_cookie: Option<HeaderValue>,
) -> Response {
    if let Err(e) = state
        .store
        .delete_login_transaction(&tenant.id, &secret_digest(tx))
        .await
    {
        return authorize::store_error(state, tenant, e);
    }
    let back = Back::for_request(req);
    let mut res = authorize::complete(state, tenant, host, req, user, auth_time, amr, &back).await;
    let h = res.headers_mut();
    if let Some(c) = session_cookie {
        h.append(header::SET_COOKIE, c);
    }
    h.append(
        header::SET_COOKIE,
        cookies::clear(host, cookies::TRANSACTION),
    );
    res
}

/// The user is authenticated: a new session, and the code back to the app.
#[allow(clippy::too_many_arguments)]
async fn signed_in(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    headers: &HeaderMap,
    tx: &str,
    req: &AuthorizeRequest,
    user: &UserRow,
    amr: Vec<String>,
) -> Response {
    let cookie = match open_session(state, tenant, host, headers, user, &amr).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let now = state.clock.now();
    finish_login(state, tenant, host, tx, req, user, now, &amr, Some(cookie)).await
}

/// Whether to offer this user a passkey after a password login.
async fn offer_passkey(state: &AppState, tenant: &Tenant, user: &UserRow) -> bool {
    let passkeys = &tenant.config.tenant.passkeys;
    if !passkeys.progressive_enrollment || !tenant.config.factors.contains(&FactorType::Passkey) {
        return false;
    }
    match state.store.methods(&tenant.id, &user.user_id).await {
        Ok(methods) => !methods
            .iter()
            .any(|m| m.method_type == FactorType::Passkey.as_str()),
        Err(_) => false,
    }
}

pub async fn submit(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return expired(&state, &tenant);
    };
    let req = match transaction(&state, &tenant, &headers, &form.tx).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let attempt = login::authenticate(
        &state,
        PasswordLogin {
            tenant: &tenant,
            realm: None,
            username: &form.username,
            password: &form.password,
            ip: &ip,
        },
    )
    .await;
    let user = match attempt {
        Ok(u) => u,
        Err(LoginError::Store(err)) => return authorize::store_error(&state, &tenant, err),
        Err(LoginError::Throttled(seconds)) => {
            return authorize::retry_page(
                &state,
                &tenant,
                StatusCode::TOO_MANY_REQUESTS,
                "We have detected suspicious login behavior and further attempts will be \
                 blocked. Please contact the administrator.",
                seconds,
            );
        }
        Err(LoginError::Busy) => {
            return authorize::retry_page(
                &state,
                &tenant,
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many logins are being checked at once. Please try again in a moment.",
                1,
            );
        }
        Err(e) => {
            let message = match &e {
                LoginError::WrongCredentials => "Wrong email or password.",
                LoginError::TooManyAttempts => {
                    "Your account has been blocked after multiple consecutive login attempts."
                }
                LoginError::Blocked => "This account is blocked.",
                LoginError::UnknownConnection(_) => "Logging in with a password is not available.",
                LoginError::Store(_) | LoginError::Throttled(_) | LoginError::Busy => {
                    "Something went wrong. Please try again."
                }
            };
            return login_page(&state, &tenant, &form.tx, &form.username, message);
        }
    };
    let amr = vec!["pwd".to_string()];
    let Some(client) = tenant.client(&req.client_id) else {
        return expired(&state, &tenant);
    };
    let need = crate::services::mfa::need(
        &state,
        &tenant,
        &host,
        client,
        req.audience.as_deref(),
        &user.user_id,
        &amr,
        req.require_mfa,
    )
    .await;
    match need {
        Ok(crate::services::mfa::Need::Nothing) => {}
        Ok(need) => {
            let first = super::FirstFactor {
                user: &user,
                amr: &amr,
                auth_time: state.clock.now(),
            };
            let languages = crate::http::accept_languages(&headers);
            return super::second_factor(
                &state, &tenant, &host, &form.tx, &req, &first, need, &languages,
            )
            .await;
        }
        Err(e) => return authorize::store_error(&state, &tenant, e),
    }
    if offer_passkey(&state, &tenant, &user).await {
        // Signed in already; the code waits for the passkey question.
        let cookie = match open_session(&state, &tenant, &host, &headers, &user, &amr).await {
            Ok(c) => c,
            Err(res) => return res,
        };
        let html = state
            .templates
            .render_add_passkey(&tenant, &form.tx, &user.email, None);
        let mut res = (StatusCode::OK, Html(html)).into_response();
        res.headers_mut().append(header::SET_COOKIE, cookie);
        authorize::frame_guard(&mut res);
        return res;
    }
    signed_in(&state, &tenant, &host, &headers, &form.tx, &req, &user, amr).await
}

/// The signed-in user of this browser and their login transaction: the
/// steps after a password login (continue, or add a passkey first).
async fn signed_in_user(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    tx: &str,
) -> Result<(AuthorizeRequest, UserRow, SessionRow), Response> {
    let req = transaction(state, tenant, headers, tx).await?;
    let Some((_, session)) = authorize::current_session(state, tenant, headers).await else {
        return Err(expired(state, tenant));
    };
    match state.store.user_by_id(&tenant.id, &session.user_id).await {
        Ok(Some(user)) if !user.blocked => Ok((req, user, session)),
        Ok(_) => Err(expired(state, tenant)),
        Err(e) => Err(authorize::store_error(state, tenant, e)),
    }
}

/// `POST /login/continue`: on without a passkey.
pub async fn continue_login(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    headers: HeaderMap,
    form: Result<Form<ChallengeForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return expired(&state, &tenant);
    };
    match signed_in_user(&state, &tenant, &headers, &form.tx).await {
        Ok((req, user, session)) => {
            finish_login(
                &state,
                &tenant,
                &host,
                &form.tx,
                &req,
                &user,
                session.auth_time,
                &session.amr,
                None,
            )
            .await
        }
        Err(res) => res,
    }
}

fn who<'a>(
    tenant: &'a Tenant,
    host: &'a str,
    req: &'a AuthorizeRequest,
    user: &'a UserRow,
    ua: &'a str,
) -> Who<'a> {
    Who {
        tenant,
        host,
        user_id: &user.user_id,
        client_id: &req.client_id,
        user_agent: ua,
        languages: &[],
    }
}

/// `POST /login/passkey/create/challenge`: creation options for the
/// signed-in user (JSON, for the page's script).
pub async fn create_challenge(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    headers: HeaderMap,
    form: Result<Form<ChallengeForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let refused = || {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request"})),
        )
            .into_response()
    };
    let Ok(Form(form)) = form else {
        return refused();
    };
    let Ok((req, user, _)) = signed_in_user(&state, &tenant, &headers, &form.tx).await else {
        return refused();
    };
    let ua = user_agent(&headers);
    let start = Start::Passkey {
        connection: None,
        identity_user_id: None,
        exclude_existing: true,
    };
    match enrollment::start(&state, &who(&tenant, &host, &req, &user, &ua), start).await {
        Ok(started) => match started.challenge {
            Challenge::Passkey { options } => {
                let body = json!({"auth_session": started.auth_session, "options": options});
                let mut res = Json(body).into_response();
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                res
            }
            _ => refused(),
        },
        // Said as it is when the user can add nothing more (the cap on
        // methods): the page's script shows it.
        Err(enrollment::EnrollError::Invalid(detail)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": detail})),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "passkey creation challenge failed");
            refused()
        }
    }
}

/// `POST /login/passkey/create`: the new passkey, then on to the app.
pub async fn create_passkey(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    headers: HeaderMap,
    form: Result<Form<PasskeyForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return expired(&state, &tenant);
    };
    let (req, user, session) = match signed_in_user(&state, &tenant, &headers, &form.tx).await {
        Ok(found) => found,
        Err(res) => return res,
    };
    let ua = user_agent(&headers);
    let verified = if form.credential.len() > 16 * 1024 || form.auth_session.len() > 128 {
        Err(enrollment::EnrollError::Invalid("too large".into()))
    } else {
        let response = serde_json::from_str::<Value>(&form.credential).unwrap_or(Value::Null);
        enrollment::verify(
            &state,
            &who(&tenant, &host, &req, &user, &ua),
            "passkey|new",
            &form.auth_session,
            Proof::Passkey { response },
        )
        .await
    };
    match verified {
        Ok(_) => {
            finish_login(
                &state,
                &tenant,
                &host,
                &form.tx,
                &req,
                &user,
                session.auth_time,
                &session.amr,
                None,
            )
            .await
        }
        Err(enrollment::EnrollError::Store(e)) => authorize::store_error(&state, &tenant, e),
        Err(e) => {
            tracing::info!(error = %e, tenant = %tenant.name, "passkey creation refused");
            let html = state.templates.render_add_passkey(
                &tenant,
                &form.tx,
                &user.email,
                Some("That passkey could not be saved. Try again, or continue without one."),
            );
            let mut res = (StatusCode::OK, Html(html)).into_response();
            authorize::frame_guard(&mut res);
            res
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ChallengeForm {
    tx: String,
}

/// `POST /login/passkey/challenge`: a discoverable challenge for this login
/// page (JSON, for the page's script).
pub async fn passkey_challenge(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    headers: HeaderMap,
    form: Result<Form<ChallengeForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    };
    let req = match transaction(&state, &tenant, &headers, &form.tx).await {
        Ok(r) => r,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "login_expired"})),
            )
                .into_response();
        }
    };
    let Some(client) = tenant.client(&req.client_id) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "login_expired"})),
        )
            .into_response();
    };
    match passkey_login::challenge(&state, &tenant, &host, client, None).await {
        Ok((auth_session, options)) => {
            let mut res =
                Json(json!({"auth_session": auth_session, "options": options})).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(PasskeyError::NotEnabled) => {
            (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "passkey challenge failed");
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_request"})),
            )
                .into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PasskeyForm {
    tx: String,
    auth_session: String,
    credential: String,
}

/// `POST /login/passkey`: the page's passkey assertion.
pub async fn passkey_submit(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    headers: HeaderMap,
    form: Result<Form<PasskeyForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return expired(&state, &tenant);
    };
    let req = match transaction(&state, &tenant, &headers, &form.tx).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let Some(client) = tenant.client(&req.client_id) else {
        return expired(&state, &tenant);
    };
    let failed = |state: &AppState| {
        login_page(
            state,
            &tenant,
            &form.tx,
            "",
            "That passkey could not be used to sign in.",
        )
    };
    let Ok(response) = serde_json::from_str::<Value>(&form.credential) else {
        return failed(&state);
    };
    if form.credential.len() > 16 * 1024 || form.auth_session.len() > 128 {
        return failed(&state);
    }
    match passkey_login::finish(
        &state,
        &tenant,
        &host,
        client,
        &form.auth_session,
        &response,
    )
    .await
    {
        Ok(user) => {
            signed_in(
                &state,
                &tenant,
                &host,
                &headers,
                &form.tx,
                &req,
                &user,
                vec!["webauthn".into()],
            )
            .await
        }
        Err(PasskeyError::Store(e)) => authorize::store_error(&state, &tenant, e),
        Err(e) => {
            tracing::info!(error = %e, tenant = %tenant.name, "passkey sign-in refused");
            failed(&state)
        }
    }
}
