//! The hosted pages of accounts users make and recover themselves: the
//! sign-up screen (`GET`/`POST /login/signup`; a new user is logged in, as
//! Universal Login does, unless the connection requires a verified email),
//! "Forgot password?" (`/login/forgot-password`), the verification email
//! sent again (`POST /login/verify-email/resend`), the login form again
//! (`GET /login/form`), and the pages the mailed links open:
//! `GET /u/email-verification?ticket=` and `GET`/`POST /u/reset-password`.
//! Every text comes from the bundles (`signup`, `reset-password` and
//! `email-verification` prompts, `common.password-policy`), in the login's
//! language; a link's pages speak the language of its `ui_locales` (the
//! mail's), else the browser's.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::submit::{Login, first_factor_passed};
use super::{LoginForm, LoginQuery, tx_form};
use crate::app::{AppState, SharedState};
use crate::http::{ClientIp, user_agent};
use crate::oauth::wire::OAuthTenant;
use crate::pages::{self, Notice, ResetView, language};
use latchkey_core::services::accounts::reset::{self, Follower, ResetError, ResetRequest};
use latchkey_core::services::accounts::signup::{self, SignUp, SignUpError};
use latchkey_core::services::accounts::verification::{self, Resend, ResendError};
use latchkey_core::services::accounts::{Mailing, TicketError};
use latchkey_core::services::language::policy;
use latchkey_core::tenant::Tenant;

#[derive(Debug, Deserialize)]
pub(super) struct TxQuery {
    tx: String,
}

type FormResult<T> = Result<Form<T>, axum::extract::rejection::FormRejection>;

tx_form!(TxQuery, SignUpForm, EmailForm);

/// A link mailed from a page of this login: in the login's languages
/// (its `ui_locales`, then the browser's).
fn mailing(host: &str) -> Mailing {
    Mailing {
        host: host.to_string(),
        languages: language::wanted(),
    }
}

/// The text of `key` in the page's language.
fn say(tenant: &Tenant, key: &str) -> String {
    language::texts(Some(tenant)).get(key, &[])
}

/// The name of the connection the hosted page signs up and resets in.
fn database(tenant: &Tenant) -> Option<&str> {
    tenant
        .config
        .connections
        .iter()
        .find(|c| !c.strategy.is_upstream())
        .map(|c| c.name.as_str())
}

/// `GET /login/form`: the login form of this browser's transaction again.
pub(super) async fn login_form(
    State(state): State<SharedState>,
    LoginQuery { tenant, tx, req }: LoginQuery,
) -> Response {
    pages::login_form(
        &state,
        &tenant,
        &tx,
        "",
        pages::LoginOf::request(&tenant, &req),
    )
}

/// `GET /login/signup`: the sign-up screen.
pub(super) async fn signup_form(
    State(state): State<SharedState>,
    LoginQuery { tenant, tx, .. }: LoginQuery,
) -> Response {
    if !pages::signup_open(&tenant) {
        return pages::error_page(
            &state,
            Some(&tenant),
            StatusCode::FORBIDDEN,
            &say(&tenant, "signup.signup.signup-disabled"),
        );
    }
    pages::signup_form(&state, &tenant, &tx, ("", ""), None)
}

#[derive(Debug, Deserialize)]
pub(super) struct SignUpForm {
    tx: String,
    email: String,
    password: String,
    /// Asked for when the connection has usernames.
    #[serde(default)]
    username: String,
}

/// `POST /login/signup`: a new user, logged in (or asked to verify their
/// email first).
pub(super) async fn signup_submit(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<SignUpForm>,
) -> Response {
    let Some(connection) = database(&tenant) else {
        return pages::expired(&state, &tenant);
    };
    let signed_up = signup::sign_up(
        &state.core,
        &tenant,
        SignUp {
            client_id: &req.client_id,
            connection,
            email: &form.email,
            password: &form.password,
            username: (!form.username.is_empty()).then_some(form.username.as_str()),
            profile: serde_json::Map::new(),
            user_metadata: None,
            ip: &ip,
            user_agent: &user_agent(&headers),
            mailing: mailing(&host),
        },
    )
    .await;
    let user = match signed_up {
        Ok(user) => user,
        Err(e) => return signup_refused(&state, &tenant, &form, e),
    };
    let verify_first = tenant
        .database_connection(connection)
        .is_some_and(|c| c.require_email_verification);
    if verify_first {
        return pages::notice(
            &state,
            &tenant,
            StatusCode::OK,
            &Notice {
                heading: &say(&tenant, "email-verification.email-verification-sent.title"),
                message: &say(
                    &tenant,
                    "email-verification.email-verification-sent.description",
                ),
                ..Notice::default()
            },
        );
    }
    let login = Login {
        state: &state,
        tenant: &tenant,
        host: &host,
        headers: &headers,
        tx: &form.tx,
        req: &req,
        ip: &ip,
    };
    first_factor_passed(&login, &user, vec!["pwd".to_string()]).await
}

fn signup_refused(
    state: &AppState,
    tenant: &Tenant,
    form: &SignUpForm,
    e: SignUpError,
) -> Response {
    let texts = language::texts(Some(tenant));
    let key = match e {
        SignUpError::Store(err) => return pages::store_error(state, tenant, err),
        SignUpError::Internal(cause) => return pages::internal(state, tenant, cause),
        SignUpError::Throttled(seconds) => {
            return pages::retry_page(
                state,
                tenant,
                StatusCode::TOO_MANY_REQUESTS,
                &texts.get("signup.signup.ip-signup-blocked", &[]),
                seconds,
            );
        }
        SignUpError::Busy => {
            return pages::retry_page(
                state,
                tenant,
                StatusCode::SERVICE_UNAVAILABLE,
                &texts.get("signup.signup.too-many-checks", &[]),
                1,
            );
        }
        SignUpError::Password { violations, .. } => {
            let message = policy::violations(&texts, &violations);
            let values = (form.email.as_str(), form.username.as_str());
            return pages::signup_form(state, tenant, &form.tx, values, Some(&message));
        }
        SignUpError::UsernameTaken => "signup.signup.username-taken",
        SignUpError::Field { field: "email", .. } => "signup.signup.invalid-email-format",
        SignUpError::Field {
            field: "password", ..
        } => "signup.signup.no-password",
        SignUpError::Field {
            field: "username", ..
        } => "signup.signup.invalid-username",
        // The page asks for these alone: any other field is not the
        // person's to fix.
        SignUpError::Field { .. } | SignUpError::Invalid => "signup.signup.invalid-signup",
        SignUpError::Disabled
        | SignUpError::UnknownClient
        | SignUpError::UnknownConnection
        | SignUpError::NotDatabase => "signup.signup.signup-disabled",
    };
    let message = texts.get(key, &[]);
    let values = (form.email.as_str(), form.username.as_str());
    pages::signup_form(state, tenant, &form.tx, values, Some(&message))
}

/// `GET /login/forgot-password`: the address to send a reset link to.
pub(super) async fn forgot_form(
    State(state): State<SharedState>,
    LoginQuery { tenant, tx, .. }: LoginQuery,
) -> Response {
    let html = state
        .templates
        .render_forgot_password(&tenant, &tx, "", None);
    let mut res = (StatusCode::OK, pages::no_store(), Html(html)).into_response();
    pages::frame_guard(&mut res);
    res
}

#[derive(Debug, Deserialize)]
pub(super) struct EmailForm {
    tx: String,
    email: String,
}

/// `POST /login/forgot-password`: Auth0's sentence, whether the address
/// has an account or not.
pub(super) async fn forgot_submit(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<EmailForm>,
) -> Response {
    let Some(connection) = database(&tenant) else {
        return pages::expired(&state, &tenant);
    };
    let asked = reset::request(
        &state.core,
        &tenant,
        ResetRequest {
            client_id: &req.client_id,
            connection,
            email: &form.email,
            ip: &ip,
            mailing: mailing(&host),
        },
    )
    .await;
    use latchkey_core::services::accounts::reset::RequestError;
    match asked {
        Ok(()) => sent(
            &state,
            &tenant,
            &form.tx,
            [
                "reset-password.reset-password-email.title",
                "reset-password.reset-password-email.emailDescription",
                "reset-password.reset-password-email.backToLoginLinkText",
            ],
        ),
        Err(RequestError::BadEmail(_)) => {
            let message = say(
                &tenant,
                "reset-password.reset-password-request.invalid-email-format",
            );
            let html = state.templates.render_forgot_password(
                &tenant,
                &form.tx,
                &form.email,
                Some(&message),
            );
            let mut res = (StatusCode::BAD_REQUEST, pages::no_store(), Html(html)).into_response();
            pages::frame_guard(&mut res);
            res
        }
        Err(RequestError::Throttled(seconds)) => too_many(
            &state,
            &tenant,
            "reset-password.reset-password-request.too-many-email",
            seconds,
        ),
        Err(RequestError::Store(e)) => pages::store_error(&state, &tenant, e),
        Err(RequestError::UnknownClient | RequestError::UnknownConnection) => {
            pages::expired(&state, &tenant)
        }
    }
}

/// "Check your email" (the keys of its heading, message and button), with
/// the way back to the login form.
fn sent(
    state: &AppState,
    tenant: &Tenant,
    tx: &str,
    [heading, message, button]: [&str; 3],
) -> Response {
    pages::notice(
        state,
        tenant,
        StatusCode::OK,
        &Notice {
            heading: &say(tenant, heading),
            message: &say(tenant, message),
            action: Some("/login/back"),
            fields: vec![("tx", tx)],
            button: Some(&say(tenant, button)),
            ..Notice::default()
        },
    )
}

fn too_many(state: &AppState, tenant: &Tenant, key: &str, seconds: i64) -> Response {
    pages::retry_page(
        state,
        tenant,
        StatusCode::TOO_MANY_REQUESTS,
        &say(tenant, key),
        seconds,
    )
}

/// `POST /login/verify-email/resend`: a new verification link, whether the
/// address has an account or not.
pub(super) async fn resend(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<EmailForm>,
) -> Response {
    let asked = verification::resend(
        &state.core,
        &tenant,
        Resend {
            client_id: &req.client_id,
            connection: None,
            email: &form.email,
            ip: &ip,
            mailing: mailing(&host),
        },
    )
    .await;
    match asked {
        Ok(()) => sent(
            &state,
            &tenant,
            &form.tx,
            [
                "email-verification.email-verification-resent.title",
                "email-verification.email-verification-resent.description",
                "email-verification.email-verification-resent.buttonText",
            ],
        ),
        Err(ResendError::Throttled(seconds)) => too_many(
            &state,
            &tenant,
            "email-verification.email-verification-resent.too-many-email",
            seconds,
        ),
        Err(ResendError::Store(e)) => pages::store_error(&state, &tenant, e),
        Err(ResendError::UnknownConnection) => pages::expired(&state, &tenant),
    }
}

/// `POST /login/back`: the login form of this browser's transaction.
pub(super) async fn back(
    State(state): State<SharedState>,
    LoginForm {
        tenant, form, req, ..
    }: LoginForm<TxQuery>,
) -> Response {
    pages::login_form(
        &state,
        &tenant,
        &form.tx,
        "",
        pages::LoginOf::request(&tenant, &req),
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct TicketQuery {
    #[serde(default)]
    ticket: String,
    /// The language the mail spoke (see `services::accounts::mail_link`).
    ui_locales: Option<String>,
}

/// Which link a page is about.
#[derive(Debug, Clone, Copy)]
enum Link {
    VerifyEmail,
    ResetPassword,
}

/// The page of a link that does not work, in the words of its prompt.
fn dead_link(state: &AppState, tenant: &Tenant, link: Link, e: TicketError) -> Response {
    const VERIFY_TITLE: &str = "email-verification.email-verification-result.errorTitle";
    const RESET_TITLE: &str = "reset-password.reset-password-error.eventTitleGeneric";
    let (heading, message) = match (link, e) {
        (_, TicketError::Store(e)) => return pages::store_error(state, tenant, e),
        (Link::VerifyEmail, TicketError::Used) => (
            VERIFY_TITLE,
            "email-verification.email-verification-result.auth0-users-used-ticket",
        ),
        (Link::VerifyEmail, TicketError::Expired) => (
            VERIFY_TITLE,
            "email-verification.email-verification-result.auth0-users-expired-ticket",
        ),
        (Link::VerifyEmail, TicketError::Exhausted) => (
            VERIFY_TITLE,
            "email-verification.email-verification-result.too-many-attempts",
        ),
        (Link::VerifyEmail, TicketError::Unknown) => (
            VERIFY_TITLE,
            "email-verification.email-verification-result.invalidAccountOrCodeDescription",
        ),
        (Link::ResetPassword, TicketError::Used) => (
            "reset-password.reset-password-error.eventTitleUsed",
            "reset-password.reset-password-error.descriptionUsed",
        ),
        (Link::ResetPassword, TicketError::Expired) => (
            "reset-password.reset-password-error.eventTitleExpired",
            "reset-password.reset-password-error.descriptionExpired",
        ),
        (Link::ResetPassword, TicketError::Exhausted) => (
            RESET_TITLE,
            "reset-password.reset-password-error.descriptionExhausted",
        ),
        (Link::ResetPassword, TicketError::Unknown) => (
            RESET_TITLE,
            "reset-password.reset-password-error.descriptionGeneric",
        ),
    };
    pages::notice(
        state,
        tenant,
        StatusCode::BAD_REQUEST,
        &Notice {
            heading: &say(tenant, heading),
            message: &say(tenant, message),
            error: true,
            ..Notice::default()
        },
    )
}

/// The language a mailed link names (`ui_locales`, one tag of latchkey's
/// as the mail wrote it), as latchkey's own tag: anything else in the
/// link is dropped, not carried into the page and its form.
fn link_language(ui_locales: Option<&str>) -> Option<&'static str> {
    ui_locales
        .and_then(latchkey_core::services::language::Language::matching)
        .map(latchkey_core::services::language::Language::tag)
}

fn follower(ip: &str, headers: &HeaderMap) -> (String, String) {
    (ip.to_string(), user_agent(headers))
}

/// `GET /u/email-verification?ticket=`: the email is verified.
pub(super) async fn verify_email(
    State(state): State<SharedState>,
    OAuthTenant { tenant, .. }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    query: Result<Query<TicketQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return dead_link(&state, &tenant, Link::VerifyEmail, TicketError::Unknown);
    };
    language::for_link(&tenant, link_language(q.ui_locales.as_deref()));
    let (ip, user_agent) = follower(&ip, &headers);
    let who = Follower {
        ip: &ip,
        user_agent: &user_agent,
    };
    match verification::verify(&state, &tenant, &q.ticket, &who).await {
        Ok(_) => pages::notice(
            &state,
            &tenant,
            StatusCode::OK,
            &Notice {
                heading: &say(
                    &tenant,
                    "email-verification.email-verification-result.verifiedTitle",
                ),
                message: &say(
                    &tenant,
                    "email-verification.email-verification-result.verifiedDescription",
                ),
                ..Notice::default()
            },
        ),
        Err(e) => dead_link(&state, &tenant, Link::VerifyEmail, e),
    }
}

/// `GET /u/reset-password?ticket=`: the form for a new password.
pub(super) async fn reset_form(
    State(state): State<SharedState>,
    OAuthTenant { tenant, .. }: OAuthTenant,
    query: Result<Query<TicketQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return dead_link(&state, &tenant, Link::ResetPassword, TicketError::Unknown);
    };
    let ui_locales = link_language(q.ui_locales.as_deref());
    language::for_link(&tenant, ui_locales);
    match reset::open(&state, &tenant, &q.ticket).await {
        Ok(opened) => reset_page(&state, &tenant, (&q.ticket, ui_locales), &opened, None),
        Err(e) => dead_link(&state, &tenant, Link::ResetPassword, e),
    }
}

fn reset_page(
    state: &AppState,
    tenant: &Tenant,
    (ticket, ui_locales): (&str, Option<&str>),
    opened: &reset::Opened,
    error: Option<&str>,
) -> Response {
    let view = ResetView {
        ticket,
        email: &opened.email,
        policy: &opened.policy,
        error,
        ui_locales,
    };
    let html = state.templates.render_reset_password(tenant, &view);
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut res = (status, pages::no_store(), Html(html)).into_response();
    pages::frame_guard(&mut res);
    res
}

#[derive(Debug, Deserialize)]
pub(super) struct ResetForm {
    ticket: String,
    password: String,
    /// The link's, posted back by its page.
    ui_locales: Option<String>,
}

/// `POST /u/reset-password`: the new password set, all the user held ended.
pub(super) async fn reset_submit(
    State(state): State<SharedState>,
    OAuthTenant { tenant, .. }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: FormResult<ResetForm>,
) -> Response {
    let Ok(Form(form)) = form else {
        return dead_link(&state, &tenant, Link::ResetPassword, TicketError::Unknown);
    };
    let ui_locales = link_language(form.ui_locales.as_deref());
    language::for_link(&tenant, ui_locales);
    let (ip, user_agent) = follower(&ip, &headers);
    let who = Follower {
        ip: &ip,
        user_agent: &user_agent,
    };
    match reset::reset(&state, &tenant, &form.ticket, &form.password, &who).await {
        Ok(_) => pages::notice(
            &state,
            &tenant,
            StatusCode::OK,
            &Notice {
                heading: &say(&tenant, "reset-password.reset-password-success.eventTitle"),
                message: &say(&tenant, "reset-password.reset-password-success.description"),
                ..Notice::default()
            },
        ),
        Err(ResetError::Ticket(e)) => dead_link(&state, &tenant, Link::ResetPassword, e),
        Err(ResetError::Internal(cause)) => pages::internal(&state, &tenant, cause),
        Err(ResetError::Password {
            violations,
            remaining,
            page,
        }) => {
            if remaining == 0 {
                return dead_link(&state, &tenant, Link::ResetPassword, TicketError::Exhausted);
            }
            let message = policy::violations(&language::texts(Some(&tenant)), &violations);
            let ticket = (form.ticket.as_str(), ui_locales);
            reset_page(&state, &tenant, ticket, &page, Some(&message))
        }
    }
}
