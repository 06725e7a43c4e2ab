//! Logging in with an upstream identity provider: `POST /login/upstream`
//! (a button of the login page) sends the browser to the provider, and
//! the providers' shared callback (`connect.rs`'s `/login/callback`, which
//! dispatches on the kind of transaction its `state` names) hands a
//! login's answer here: the login goes on as after a password
//! (`submit::first_factor_passed`), or ends with the provider's error given
//! back to the application.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use super::submit::{Login, first_factor_passed};
use super::{LoginForm, tx_form};
use crate::app::{AppState, SharedState};
use crate::http::{ClientIp, cookies, user_agent};
use crate::oauth::respond;
use crate::pages;
use latchkey_core::services::login_flow;
use latchkey_core::services::upstream_login::{
    self, Callback, CallbackError, Returned, SignedIn, StartError,
};
use latchkey_core::tenant::Tenant;

#[derive(Debug, Deserialize)]
pub(super) struct UpstreamForm {
    tx: String,
    connection: String,
}

tx_form!(UpstreamForm);

/// `POST /login/upstream`: to the provider of the button pressed.
pub(super) async fn go(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<UpstreamForm>,
) -> Response {
    // Each press stores a login waiting for its provider, as each login
    // page stores a transaction.
    if let Err(seconds) = login_flow::anonymous_transaction(&state, &tenant, &ip) {
        return pages::retry_page(
            &state,
            &tenant,
            StatusCode::TOO_MANY_REQUESTS,
            &pages::language::texts(Some(&tenant)).get("login.login.too-many-upstream", &[]),
            seconds,
        );
    }
    let started =
        upstream_login::start(&state, &tenant, &host, &form.tx, &req, &form.connection).await;
    let again = |key: &str| {
        let message = pages::language::texts(Some(&tenant)).get(key, &[]);
        pages::login_page(
            &state,
            &tenant,
            &form.tx,
            "",
            pages::LoginOf::request(&tenant, &req),
            &message,
        )
    };
    match started {
        Ok(url) => crate::http::found(&url),
        Err(StartError::NotEnabled) => again("login.login.connection-disabled"),
        Err(StartError::Upstream(e)) => {
            tracing::warn!(tenant = %tenant.name, connection = %form.connection, error = %e,
                "upstream login could not start");
            again("login.login.idp-unreachable")
        }
        Err(StartError::Store(e)) => pages::store_error(&state, &tenant, e),
    }
}

/// A callback nothing waits for (unknown, spent, expired, another
/// browser's): a page, never a redirect.
fn invalid(state: &AppState, tenant: &Tenant) -> Response {
    pages::error_page(
        state,
        Some(tenant),
        StatusCode::BAD_REQUEST,
        &pages::language::texts(Some(tenant)).get("common.error.sign-in-invalid", &[]),
    )
}

/// What a provider sent back to `/login/callback` (`connect.rs` takes it).
pub(super) struct Answer<'a> {
    pub(super) state: &'a str,
    pub(super) code: Option<&'a str>,
    /// RFC 9207's `iss`.
    pub(super) iss: Option<&'a str>,
    pub(super) error: Option<&'a str>,
    pub(super) error_description: Option<&'a str>,
}

/// A login's callback (its state is a login's: `upstream_login::owns`):
/// on to the MFA policy and the code, or the provider's refusal back to
/// the application.
pub(super) async fn login_callback(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    ip: &str,
    headers: &HeaderMap,
    answer: &Answer<'_>,
) -> Response {
    let tx_cookie = cookies::get(headers, cookies::TRANSACTION);
    let cb = Callback {
        host,
        state: answer.state,
        code: answer.code,
        iss: answer.iss,
        error: answer.error,
        error_description: answer.error_description,
        tx_cookie: tx_cookie.as_deref(),
        ip,
        user_agent: &user_agent(headers),
    };
    match upstream_login::callback(state, tenant, &cb).await {
        Ok(Returned::SignedIn(signed_in)) => {
            let SignedIn { tx, req, user, amr } = *signed_in;
            let login = Login {
                state,
                tenant,
                host,
                headers,
                tx: &tx,
                req: &req,
                ip,
            };
            first_factor_passed(&login, &user, amr).await
        }
        Ok(Returned::Refused {
            reply,
            error,
            description,
        }) => {
            let mut res = respond::error(state, &reply, &error, &description);
            res.headers_mut().append(
                header::SET_COOKIE,
                cookies::clear(host, cookies::TRANSACTION),
            );
            res
        }
        Err(CallbackError::Expired) => invalid(state, tenant),
        Err(CallbackError::Throttled(seconds)) => pages::ip_blocked(state, tenant, seconds),
        Err(CallbackError::Store(e)) => pages::store_error(state, tenant, e),
        Err(CallbackError::Internal(cause)) => pages::internal(state, tenant, cause),
    }
}
