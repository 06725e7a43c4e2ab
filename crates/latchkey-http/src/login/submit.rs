//! `POST /login` (the hosted form's password) and the passkey sign-in of the
//! same page: `POST /login/passkey/challenge` and `POST /login/passkey`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{LoginForm, Script, finish, json_no_store, json_refused, open_session, tx_form};
use crate::app::{AppState, SharedState};
use crate::http::{ClientIp, user_agent};
use crate::pages;
use crate::pages::second_step::{self, Browser, FirstFactor};
use latchkey_core::services::authorize::AuthorizeRequest;
use latchkey_core::services::login::{self, LoginError, PasswordLogin};
use latchkey_core::services::login_flow::{self, Next};
use latchkey_core::services::passkey_login::{self, PasskeyError};
use latchkey_core::store::UserRow;
use latchkey_core::tenant::Tenant;

#[derive(Debug, Deserialize)]
pub(super) struct PasswordForm {
    tx: String,
    username: String,
    password: String,
}

tx_form!(PasswordForm, ChallengeForm, PasskeyForm);

pub(super) async fn submit(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<PasswordForm>,
) -> Response {
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
        Err(e) => {
            if let Some(client) = tenant.client(&req.client_id) {
                let ua = user_agent(&headers);
                let from = login::Origin {
                    client,
                    ip: &ip,
                    user_agent: &ua,
                };
                login::log_refused(&state, &tenant, &from, None, &form.username, &e).await;
            }
            return refused(&state, &tenant, &form, &req, e);
        }
    };
    let amr = vec!["pwd".to_string()];
    let login = Login {
        state: &state,
        tenant: &tenant,
        host: &host,
        headers: &headers,
        tx: &form.tx,
        req: &req,
        ip: &ip,
    };
    first_factor_passed(&login, &user, amr).await
}

/// A login of this browser, under its transaction.
pub(super) struct Login<'a> {
    pub(super) state: &'a AppState,
    pub(super) tenant: &'a Tenant,
    pub(super) host: &'a str,
    pub(super) headers: &'a HeaderMap,
    pub(super) tx: &'a str,
    pub(super) req: &'a AuthorizeRequest,
    /// The browser's address, for what a push device shows of the login.
    pub(super) ip: &'a str,
}

/// The first factor established `amr` for `user` (a password, or the
/// upstream provider's login): the second step if the request needs one, a
/// passkey offered, or the code.
pub(super) async fn first_factor_passed(
    login: &Login<'_>,
    user: &UserRow,
    amr: Vec<String>,
) -> Response {
    let Login {
        state,
        tenant,
        host,
        headers,
        tx,
        req,
        ip,
    } = *login;
    match login_flow::after_first_factor(state, tenant, host, req, user, &amr).await {
        Ok(Next::Complete) => signed_in(state, tenant, host, headers, ip, tx, req, user, amr).await,
        Ok(Next::OfferPasskey) => {
            let by = (req.client_id.as_str(), ip);
            offer_passkey(state, tenant, host, headers, by, tx, user, &amr).await
        }
        Ok(Next::SecondFactor(need)) => {
            let first = FirstFactor {
                user,
                amr: &amr,
                auth_time: state.clock.now(),
            };
            let languages = pages::language::wanted();
            let browser = Browser {
                ip,
                user_agent: &user_agent(headers),
            };
            second_step::start(
                state, tenant, host, tx, req, &first, need, &languages, &browser,
            )
            .await
        }
        Err(e) => pages::flow_error(state, tenant, e),
    }
}

/// The page for a password login that failed.
fn refused(
    state: &AppState,
    tenant: &Tenant,
    form: &PasswordForm,
    req: &AuthorizeRequest,
    e: LoginError,
) -> Response {
    let texts = pages::language::texts(Some(tenant));
    let key = match e {
        LoginError::Store(err) => return pages::store_error(state, tenant, err),
        LoginError::Throttled(seconds) => {
            return pages::ip_blocked(state, tenant, seconds);
        }
        LoginError::Busy => {
            return pages::retry_page(
                state,
                tenant,
                StatusCode::SERVICE_UNAVAILABLE,
                &texts.get("login.login.too-many-checks", &[]),
                1,
            );
        }
        LoginError::WrongCredentials(_) => "login.login.wrong-credentials",
        LoginError::TooManyAttempts(_) => "login.login.user-blocked",
        LoginError::Blocked(_) => "login.login.blocked-user",
        LoginError::EmailNotVerified(_) => {
            return verify_email_first(state, tenant, &form.tx, &form.username);
        }
        LoginError::UnknownConnection(_) => "login.login.no-db-connection",
    };
    pages::login_page(
        state,
        tenant,
        &form.tx,
        &form.username,
        pages::LoginOf::request(tenant, req),
        &texts.get(key, &[]),
    )
}

/// Signed in already; the code waits for the passkey question.
#[allow(clippy::too_many_arguments)]
async fn offer_passkey(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    headers: &HeaderMap,
    by: (&str, &str),
    tx: &str,
    user: &UserRow,
    amr: &[String],
) -> Response {
    let cookie = match open_session(state, tenant, host, headers, by, user, amr).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let html = state
        .templates
        .render_add_passkey(tenant, tx, &user.email, None);
    let mut res = (StatusCode::OK, Html(html)).into_response();
    res.headers_mut().append(header::SET_COOKIE, cookie);
    pages::frame_guard(&mut res);
    res
}

/// The user is authenticated: a new session, and the code back to the app.
#[allow(clippy::too_many_arguments)]
async fn signed_in(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    headers: &HeaderMap,
    ip: &str,
    tx: &str,
    req: &AuthorizeRequest,
    user: &UserRow,
    amr: Vec<String>,
) -> Response {
    let by = (req.client_id.as_str(), ip);
    let cookie = match open_session(state, tenant, host, headers, by, user, &amr).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let now = state.clock.now();
    finish(state, tenant, host, tx, req, user, now, &amr, Some(cookie)).await
}

#[derive(Debug, Deserialize)]
pub(super) struct ChallengeForm {
    pub(super) tx: String,
}

/// `POST /login/passkey/challenge`: a discoverable challenge for this login
/// page (JSON, for the page's script).
pub(super) async fn passkey_challenge(
    State(state): State<SharedState>,
    LoginForm {
        tenant, host, req, ..
    }: LoginForm<ChallengeForm, Script>,
) -> Response {
    let Some(client) = tenant.client(&req.client_id) else {
        return json_refused("login_expired");
    };
    match passkey_login::challenge(&state, &tenant, &host, client, None).await {
        Ok((auth_session, options)) => {
            json_no_store(json!({"auth_session": auth_session, "options": options}))
        }
        Err(PasskeyError::NotEnabled) => {
            (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "passkey challenge failed");
            json_refused("invalid_request")
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct PasskeyForm {
    pub(super) tx: String,
    pub(super) auth_session: String,
    pub(super) credential: String,
}

/// `POST /login/passkey`: the page's passkey assertion.
pub(super) async fn passkey_submit(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<PasskeyForm>,
) -> Response {
    let Some(client) = tenant.client(&req.client_id) else {
        return pages::expired(&state, &tenant);
    };
    let failed = |state: &AppState| {
        pages::login_page(
            state,
            &tenant,
            &form.tx,
            "",
            pages::LoginOf::request(&tenant, &req),
            &pages::language::texts(Some(&tenant)).get("login.login.passkey-failed", &[]),
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
        &crate::http::accept_languages(&headers),
    )
    .await
    {
        Ok(user) => {
            signed_in(
                &state,
                &tenant,
                &host,
                &headers,
                &ip,
                &form.tx,
                &req,
                &user,
                vec!["webauthn".into()],
            )
            .await
        }
        Err(PasskeyError::Store(e)) => pages::store_error(&state, &tenant, e),
        Err(PasskeyError::EmailNotVerified { email }) => {
            verify_email_first(&state, &tenant, &form.tx, &email)
        }
        Err(e) => {
            tracing::info!(error = %e, tenant = %tenant.name, "passkey sign-in refused");
            failed(&state)
        }
    }
}

/// The notice of a right password or passkey whose user must verify their
/// email first, with the way to have the link sent again.
fn verify_email_first(state: &AppState, tenant: &Tenant, tx: &str, email: &str) -> Response {
    let texts = pages::language::texts(Some(tenant));
    let say = |key: &str| texts.get(key, &[]);
    pages::notice(
        state,
        tenant,
        StatusCode::FORBIDDEN,
        &pages::Notice {
            heading: &say("email-verification.email-verification-required.title"),
            message: &say("email-verification.email-verification-required.description"),
            error: true,
            action: Some("/login/verify-email/resend"),
            fields: vec![("tx", tx), ("email", email)],
            button: Some(&say(
                "email-verification.email-verification-required.buttonText",
            )),
        },
    )
}
