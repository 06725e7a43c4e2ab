//! The hosted login's handlers: the password and passkey sign-in of the
//! login form (`submit.rs`), sign-up, password reset and email verification
//! with the pages their mailed links open (`account.rs`), the login with an upstream identity provider
//! (`upstream.rs`), with a code sent to an email address or phone number
//! (`passwordless.rs`), the steps between signing in and the code
//! (`signed_in.rs`: a passkey offered, or on), the second step's answers
//! and enrollment (`mfa.rs`, `mfa_enroll.rs`), and the browser's part of
//! connecting an account with the providers' shared callback, which hands a
//! login's answer to `upstream.rs` (`connect.rs`). `/authorize` hands them a
//! login transaction; they carry it through `services::login_flow` and, when it
//! completes, answer in the request's response mode (`oauth::respond`). A
//! handler receives its form and the transaction through this module's
//! extractors ([`LoginForm`], [`LoginQuery`]), which refuse anything but
//! this browser's live login with the page (or a script's JSON) every login
//! form answers. The pages themselves (templates, scripts, error pages) are
//! `pages/`.

mod account;
mod connect;
mod mfa;
mod mfa_enroll;
mod passwordless;
mod signed_in;
mod submit;
mod upstream;

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::app::{AppState, SharedState};
use crate::http::cookies;
use crate::oauth::respond;
use crate::oauth::wire::OAuthTenant;
use crate::pages::{self, ADD_PASSKEY_JS, MFA_JS, MFA_PUSH_JS, PASSKEY_JS, script};
use latchkey_core::crypto::hash::constant_time_eq;
use latchkey_core::services::authorize::{AuthorizeRequest, Reply};
use latchkey_core::services::{login, login_flow};
use latchkey_core::store::UserRow;
use latchkey_core::tenant::Tenant;

pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/login", post(submit::submit))
        .route(
            "/passwordless/verify_redirect",
            axum::routing::get(passwordless::verify_redirect),
        )
        .route("/login/passkey/challenge", post(submit::passkey_challenge))
        .route("/login/continue", post(signed_in::continue_login))
        .route(
            "/login/passkey/create/challenge",
            post(signed_in::create_challenge),
        )
        .route("/login/passkey/create", post(signed_in::create_passkey))
        .route(
            "/login/add-passkey.js",
            get(|| async { script(ADD_PASSKEY_JS) }),
        )
        .route("/login/passkey", post(submit::passkey_submit))
        .route("/login/upstream", post(upstream::go))
        .route("/login/passwordless", post(passwordless::start))
        .route("/login/passwordless/verify", post(passwordless::verify))
        .route("/login/mfa", post(mfa::choose))
        .route("/login/mfa/verify", post(mfa::verify))
        .route("/login/mfa/key/challenge", post(mfa::key_challenge))
        .route("/login/mfa/key", post(mfa::key))
        .route("/login/mfa/restart", post(mfa::restart))
        .route("/login/mfa/push", post(mfa::push_continue))
        .route("/login/mfa/push/status", post(mfa::push_status))
        .route("/login/mfa-push.js", get(|| async { script(MFA_PUSH_JS) }))
        .route("/login/mfa/enroll", post(mfa_enroll::enroll))
        .route("/login/mfa/enroll/verify", post(mfa_enroll::enroll_verify))
        .route(
            "/login/mfa/enroll/key/challenge",
            post(mfa_enroll::enroll_key_challenge),
        )
        .route("/login/mfa.js", get(|| async { script(MFA_JS) }))
        .route("/login/passkey.js", get(|| async { script(PASSKEY_JS) }))
        .route("/login/form", get(account::login_form))
        .route("/login/back", post(account::back))
        .route(
            "/login/signup",
            get(account::signup_form).post(account::signup_submit),
        )
        .route(
            "/login/forgot-password",
            get(account::forgot_form).post(account::forgot_submit),
        )
        .route("/login/verify-email/resend", post(account::resend))
        .route("/u/email-verification", get(account::verify_email))
        .route(
            "/u/reset-password",
            get(account::reset_form).post(account::reset_submit),
        )
        .route("/connected-accounts/connect", get(connect::ticket))
        .route(
            "/login/callback",
            get(connect::callback_query).post(connect::callback_form),
        )
}

/// The login transaction behind a form, if it belongs to this browser (the
/// cookie set with the page, `cookie`: login CSRF) and is still alive.
async fn transaction(
    state: &AppState,
    tenant: &Tenant,
    cookie: Option<&str>,
    tx: &str,
) -> Result<AuthorizeRequest, Response> {
    let bound = cookie.is_some_and(|c| constant_time_eq(c.as_bytes(), tx.as_bytes()));
    if !bound || tx.len() > 128 {
        return Err(pages::expired(state, tenant));
    }
    let req = login_flow::load(state, tenant, tx)
        .await
        .map_err(|e| pages::flow_error(state, tenant, e))?;
    // Every page of this login speaks the language its request asked for.
    pages::language::for_request(tenant, &req);
    Ok(req)
}

/// A form of the hosted login: it names its login transaction (`tx`).
pub(super) trait TxForm {
    fn tx(&self) -> &str;
}

/// Implements [`TxForm`] for forms whose `tx` field is the transaction.
macro_rules! tx_form {
    ($($form:ty),+ $(,)?) => {
        $(impl super::TxForm for $form {
            fn tx(&self) -> &str {
                &self.tx
            }
        })+
    };
}
use tx_form;

/// How a request of the hosted login that is not this browser's live login
/// is answered: a page, or JSON for a page's script.
pub(super) trait Refusal {
    /// The body (or query) did not decode.
    fn malformed(state: &AppState, tenant: &Tenant) -> Response;
    /// The transaction is another browser's, gone or unreadable; `page` is
    /// what a page answers (`pages::expired`, `pages::flow_error`).
    fn not_live(page: Response) -> Response;
}

/// Refused with a page: `pages::expired`, or the transaction's own error page.
pub(super) struct Page;

impl Refusal for Page {
    fn malformed(state: &AppState, tenant: &Tenant) -> Response {
        pages::expired(state, tenant)
    }
    fn not_live(page: Response) -> Response {
        page
    }
}

/// Refused with JSON for a page's script: `invalid_request` for a body that
/// did not decode, `login_expired` for a login that is not live.
pub(super) struct Script;

impl Refusal for Script {
    fn malformed(_: &AppState, _: &Tenant) -> Response {
        json_refused("invalid_request")
    }
    fn not_live(_: Response) -> Response {
        json_refused("login_expired")
    }
}

/// Refused with JSON saying no more than `invalid_request`, whatever failed.
pub(super) struct Opaque;

impl Refusal for Opaque {
    fn malformed(_: &AppState, _: &Tenant) -> Response {
        json_refused("invalid_request")
    }
    fn not_live(_: Response) -> Response {
        json_refused("invalid_request")
    }
}

/// A form posted by a hosted login page, extracted only for this browser's
/// live login: the host's tenant, the decoded form and the stored request
/// (the page's language set from it). Anything else is refused as `R` says.
pub(super) struct LoginForm<T, R = Page> {
    pub(super) tenant: Arc<Tenant>,
    pub(super) host: String,
    pub(super) form: T,
    pub(super) req: AuthorizeRequest,
    refusal: PhantomData<R>,
}

impl<T, R> FromRequest<SharedState> for LoginForm<T, R>
where
    T: DeserializeOwned + TxForm + Send,
    R: Refusal,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let OAuthTenant { tenant, host } = OAuthTenant::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let cookie = cookies::get(&parts.headers, cookies::TRANSACTION);
        let request = Request::from_parts(parts, body);
        let Ok(Form(form)) = Form::<T>::from_request(request, state).await else {
            return Err(R::malformed(state, &tenant));
        };
        let req = transaction(state, &tenant, cookie.as_deref(), form.tx())
            .await
            .map_err(R::not_live)?;
        Ok(Self {
            tenant,
            host,
            form,
            req,
            refusal: PhantomData,
        })
    }
}

#[derive(Debug, Deserialize)]
struct TxQuery {
    tx: String,
}

/// `?tx=` of a hosted login page's link, extracted only for this browser's
/// live login: the host's tenant, the transaction and its stored request;
/// anything else is refused with a page, as [`Page`] refuses.
pub(super) struct LoginQuery {
    pub(super) tenant: Arc<Tenant>,
    pub(super) tx: String,
    pub(super) req: AuthorizeRequest,
}

impl FromRequestParts<SharedState> for LoginQuery {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Response> {
        let OAuthTenant { tenant, .. } = OAuthTenant::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Ok(Query(TxQuery { tx })) = Query::<TxQuery>::from_request_parts(parts, state).await
        else {
            return Err(pages::expired(state, &tenant));
        };
        let cookie = cookies::get(&parts.headers, cookies::TRANSACTION);
        let req = transaction(state, &tenant, cookie.as_deref(), &tx).await?;
        Ok(Self { tenant, tx, req })
    }
}

/// A new session for `user` (the browser's old one, if any, ends): its
/// cookie. The login is complete: it is logged (`s`) for the client and
/// address `by`.
async fn open_session(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    headers: &HeaderMap,
    (client_id, ip): (&str, &str),
    user: &UserRow,
    amr: &[String],
) -> Result<HeaderValue, Response> {
    let old = cookies::get(headers, cookies::SESSION);
    let (id, lifetime) = login_flow::open_session(state, tenant, old.as_deref(), user, amr)
        .await
        .map_err(|e| pages::store_error(state, tenant, e))?;
    if let Some(client) = tenant.client(client_id) {
        let ua = crate::http::user_agent(headers);
        let from = login::Origin {
            client,
            ip,
            user_agent: &ua,
        };
        login_flow::log_completed(state, tenant, &from, user, amr).await;
    }
    Ok(cookies::set(host, cookies::SESSION, &id, lifetime))
}

/// The login is over: the transaction goes, the code (in the response mode)
/// goes back to the app with the session's cookie, if a new one.
#[allow(clippy::too_many_arguments)]
async fn finish(
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
    let completed = login_flow::complete(state, tenant, host, tx, req, user, auth_time, amr).await;
    let mut res = match completed {
        Ok(Ok(issued)) => respond::issued(state, &Reply::to(req), &issued),
        Ok(Err(e)) => pages::flow_error(state, tenant, e),
        // The transaction stays: nothing was issued, no cookie is set.
        Err(e) => return pages::store_error(state, tenant, e),
    };
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

/// A refusal for a page's script.
fn json_refused(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response()
}

/// A page's script is told to try again later (the store failed).
fn json_unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "error": "temporarily_unavailable" })),
    )
        .into_response()
}

/// JSON for a page's script, never cached.
fn json_no_store(body: Value) -> Response {
    let mut res = Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
