//! The hosted pages of accounts users make and recover themselves: the
//! sign-up screen (`GET`/`POST /login/signup`; a new user is logged in, as
//! Universal Login does, unless the connection requires a verified email),
//! "Forgot password?" (`/login/forgot-password`), the verification email
//! sent again (`POST /login/verify-email/resend`), the login form again
//! (`GET /login/form`), and the pages the mailed links open:
//! `GET /u/email-verification?ticket=` and `GET`/`POST /u/reset-password`.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::submit::{Login, first_factor_passed};
use super::{LoginForm, LoginQuery, tx_form};
use crate::app::{AppState, SharedState};
use crate::dbconnections::RESET_SENT;
use crate::http::{ClientIp, accept_languages, user_agent};
use crate::oauth::wire::OAuthTenant;
use crate::pages::{self, Notice};
use latchkey_core::services::accounts::reset::{self, Follower, ResetError, ResetRequest};
use latchkey_core::services::accounts::signup::{self, SignUp, SignUpError};
use latchkey_core::services::accounts::verification::{self, Resend, ResendError};
use latchkey_core::services::accounts::{Mailing, TicketError};
use latchkey_core::tenant::Tenant;

#[derive(Debug, Deserialize)]
pub(super) struct TxQuery {
    tx: String,
}

type FormResult<T> = Result<Form<T>, axum::extract::rejection::FormRejection>;

tx_form!(TxQuery, SignUpForm, EmailForm);

fn mailing(host: &str, headers: &HeaderMap) -> Mailing {
    Mailing {
        host: host.to_string(),
        languages: accept_languages(headers),
    }
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
    pages::login_form(&state, &tenant, &tx, "", &req.client_id)
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
            "Sign-up is not available.",
        );
    }
    pages::signup_form(&state, &tenant, &tx, "", None)
}

#[derive(Debug, Deserialize)]
pub(super) struct SignUpForm {
    tx: String,
    email: String,
    password: String,
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
            username: None,
            profile: serde_json::Map::new(),
            user_metadata: None,
            ip: &ip,
            user_agent: &user_agent(&headers),
            mailing: mailing(&host, &headers),
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
                heading: "Verify your email",
                message: "We've sent you an email with a link to verify your address. Follow it, then log in.",
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
    let message = match e {
        SignUpError::Store(err) => return pages::store_error(state, tenant, err),
        SignUpError::Internal(cause) => return pages::internal(state, tenant, cause),
        SignUpError::Throttled(seconds) => {
            return pages::retry_page(
                state,
                tenant,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ups from your network. Please try again later.",
                seconds,
            );
        }
        SignUpError::Busy => {
            return pages::retry_page(
                state,
                tenant,
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many requests are being handled at once. Please try again in a moment.",
                1,
            );
        }
        SignUpError::Password { violations, .. } => violations
            .iter()
            .map(|v| v.detail())
            .collect::<Vec<_>>()
            .join(" "),
        SignUpError::Field { field: "email", .. } => "Please enter a valid email address.".into(),
        SignUpError::Invalid => {
            "We could not sign you up with these details. If you have an account, log in.".into()
        }
        SignUpError::UsernameTaken => "This username is already taken.".into(),
        SignUpError::Disabled
        | SignUpError::UnknownClient
        | SignUpError::UnknownConnection
        | SignUpError::NotDatabase => "Sign-up is not available.".into(),
        SignUpError::Field { detail, .. } => detail,
    };
    pages::signup_form(state, tenant, &form.tx, &form.email, Some(&message))
}

/// `GET /login/forgot-password`: the address to send a reset link to.
pub(super) async fn forgot_form(
    State(state): State<SharedState>,
    LoginQuery { tenant, tx, .. }: LoginQuery,
) -> Response {
    let html = state.templates.render_forgot_password(&tenant, &tx, "");
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
    headers: HeaderMap,
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
            mailing: mailing(&host, &headers),
        },
    )
    .await;
    use latchkey_core::services::accounts::reset::RequestError;
    match asked {
        Ok(()) => sent(&state, &tenant, &form.tx, RESET_SENT),
        Err(RequestError::BadEmail(_)) => {
            let html = state
                .templates
                .render_forgot_password(&tenant, &form.tx, &form.email);
            (StatusCode::BAD_REQUEST, pages::no_store(), Html(html)).into_response()
        }
        Err(RequestError::Throttled(seconds)) => too_many(&state, &tenant, seconds),
        Err(RequestError::Store(e)) => pages::store_error(&state, &tenant, e),
        Err(RequestError::UnknownClient | RequestError::UnknownConnection) => {
            pages::expired(&state, &tenant)
        }
    }
}

fn sent(state: &AppState, tenant: &Tenant, tx: &str, message: &str) -> Response {
    pages::notice(
        state,
        tenant,
        StatusCode::OK,
        &Notice {
            heading: "Check your email",
            message,
            action: Some("/login/back"),
            fields: vec![("tx", tx)],
            button: Some("Back to log in"),
            ..Notice::default()
        },
    )
}

fn too_many(state: &AppState, tenant: &Tenant, seconds: i64) -> Response {
    pages::retry_page(
        state,
        tenant,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many emails were asked for. Please try again later.",
        seconds,
    )
}

/// `POST /login/verify-email/resend`: a new verification link, whether the
/// address has an account or not.
pub(super) async fn resend(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
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
            mailing: mailing(&host, &headers),
        },
    )
    .await;
    match asked {
        Ok(()) => sent(
            &state,
            &tenant,
            &form.tx,
            "If your email address still needs verifying, we've just sent you a new link.",
        ),
        Err(ResendError::Throttled(seconds)) => too_many(&state, &tenant, seconds),
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
    pages::login_form(&state, &tenant, &form.tx, "", &req.client_id)
}

#[derive(Debug, Deserialize)]
pub(super) struct TicketQuery {
    ticket: String,
}

/// The page of a link that does not work.
fn dead_link(state: &AppState, tenant: &Tenant, e: TicketError) -> Response {
    let message = match e {
        TicketError::Store(e) => return pages::store_error(state, tenant, e),
        TicketError::Used => "This link has already been used.",
        TicketError::Expired => "This link has expired. Ask for a new one.",
        TicketError::Exhausted => "This link was tried too many times. Ask for a new one.",
        TicketError::Unknown => "This link is not valid.",
    };
    pages::notice(
        state,
        tenant,
        StatusCode::BAD_REQUEST,
        &Notice {
            heading: "This link does not work",
            message,
            error: true,
            ..Notice::default()
        },
    )
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
        return dead_link(&state, &tenant, TicketError::Unknown);
    };
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
                heading: "Email verified",
                message: "Your email address was verified. You can now log in.",
                ..Notice::default()
            },
        ),
        Err(e) => dead_link(&state, &tenant, e),
    }
}

/// `GET /u/reset-password?ticket=`: the form for a new password.
pub(super) async fn reset_form(
    State(state): State<SharedState>,
    OAuthTenant { tenant, .. }: OAuthTenant,
    query: Result<Query<TicketQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return dead_link(&state, &tenant, TicketError::Unknown);
    };
    match reset::open(&state, &tenant, &q.ticket).await {
        Ok(opened) => reset_page(&state, &tenant, &q.ticket, &opened, None),
        Err(e) => dead_link(&state, &tenant, e),
    }
}

fn reset_page(
    state: &AppState,
    tenant: &Tenant,
    ticket: &str,
    opened: &reset::Opened,
    error: Option<&str>,
) -> Response {
    let html =
        state
            .templates
            .render_reset_password(tenant, ticket, &opened.email, &opened.policy, error);
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
        return dead_link(&state, &tenant, TicketError::Unknown);
    };
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
                heading: "Password changed",
                message: "Your password has been changed. Log in with your new password.",
                ..Notice::default()
            },
        ),
        Err(ResetError::Ticket(e)) => dead_link(&state, &tenant, e),
        Err(ResetError::Internal(cause)) => pages::internal(&state, &tenant, cause),
        Err(ResetError::Password {
            violations,
            remaining,
        }) => {
            if remaining == 0 {
                return dead_link(&state, &tenant, TicketError::Exhausted);
            }
            let message = violations
                .iter()
                .map(|v| v.detail())
                .collect::<Vec<_>>()
                .join(" ");
            match reset::open(&state, &tenant, &form.ticket).await {
                Ok(opened) => reset_page(&state, &tenant, &form.ticket, &opened, Some(&message)),
                Err(e) => dead_link(&state, &tenant, e),
            }
        }
    }
}
