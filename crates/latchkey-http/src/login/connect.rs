//! The browser's part of connecting an account (My Account API):
//! `GET /connected-accounts/connect?ticket=…` sends it to the provider with
//! a cookie binding it to the transaction, and `{issuer}login/callback`
//! (Auth0's callback path, by GET or, for providers answering by
//! `form_post`, POST) takes the provider's answer and sends it back to the
//! app. The callback is dispatched on the transaction its `state` names: a
//! login at a provider (`upstream.rs` takes it on), else a connect
//! transaction. Failures the app can hear of are redirects to it with
//! `error`; the rest (an unknown or used link, another browser) are pages.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use super::upstream;
use crate::app::{AppState, SharedState};
use crate::http::{ClientIp, cookies, found};
use crate::oauth::wire::OAuthTenant;
use crate::pages;
use latchkey_core::services::connected_accounts::{
    self, Callback, CallbackError, TicketOutcome, UPSTREAM_LIFETIME,
};
use latchkey_core::services::upstream_login;
use latchkey_core::tenant::Tenant;

#[derive(Debug, Deserialize)]
pub(super) struct TicketQuery {
    ticket: Option<String>,
}

/// `GET /connected-accounts/connect?ticket=…`
pub(super) async fn ticket(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    query: Result<Query<TicketQuery>, QueryRejection>,
) -> Response {
    let ticket = query.ok().and_then(|Query(q)| q.ticket).unwrap_or_default();
    match connected_accounts::open_ticket(&state, &tenant, &host, &ticket).await {
        Ok(TicketOutcome::Provider { url, browser }) => {
            let mut res = found(&url);
            res.headers_mut().append(
                header::SET_COOKIE,
                cookies::set(&host, cookies::CONNECT, &browser, UPSTREAM_LIFETIME),
            );
            res
        }
        Ok(TicketOutcome::App(answer)) => found(&answer.url),
        Err(e) => refused(&state, &tenant, e),
    }
}

/// What a provider sends back (RFC 6749 4.1.2, RFC 9207's `iss`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /login/callback`
pub(super) async fn callback_query(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    params: Result<Query<CallbackParams>, QueryRejection>,
) -> Response {
    let params = params.map(|Query(p)| p).unwrap_or_default();
    callback(&state, &tenant, &host, &ip, &headers, &params).await
}

/// `POST /login/callback` (`response_mode=form_post`)
pub(super) async fn callback_form(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    params: Result<Form<CallbackParams>, FormRejection>,
) -> Response {
    let params = params.map(|Form(p)| p).unwrap_or_default();
    callback(&state, &tenant, &host, &ip, &headers, &params).await
}

async fn callback(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    ip: &str,
    headers: &HeaderMap,
    p: &CallbackParams,
) -> Response {
    // A login at a provider?
    let login_state = p.state.as_deref().unwrap_or_default();
    match upstream_login::owns(state, tenant, login_state).await {
        Ok(true) => {
            let answer = upstream::Answer {
                state: login_state,
                code: p.code.as_deref(),
                iss: p.iss.as_deref(),
                error: p.error.as_deref(),
                error_description: p.error_description.as_deref(),
            };
            return upstream::login_callback(state, tenant, host, ip, headers, &answer).await;
        }
        Ok(false) => {}
        Err(e) => return pages::store_error(state, tenant, e),
    }
    let answer = Callback {
        state: p.state.as_deref(),
        code: p.code.as_deref(),
        error: p.error.as_deref(),
        error_description: p.error_description.as_deref(),
    };
    let browser = cookies::get(headers, cookies::CONNECT);
    match connected_accounts::callback(state, tenant, host, answer, browser.as_deref()).await {
        Ok(app) => {
            let mut res = found(&app.url);
            res.headers_mut()
                .append(header::SET_COOKIE, cookies::clear(host, cookies::CONNECT));
            res
        }
        Err(e) => refused(state, tenant, e),
    }
}

/// A page for what cannot go back to the app.
fn refused(state: &AppState, tenant: &Tenant, e: CallbackError) -> Response {
    match e {
        CallbackError::Expired => pages::error_page(
            state,
            Some(tenant),
            StatusCode::BAD_REQUEST,
            &pages::language::texts(Some(tenant)).get("common.error.link-expired", &[]),
        ),
        CallbackError::OtherBrowser => pages::error_page(
            state,
            Some(tenant),
            StatusCode::BAD_REQUEST,
            &pages::language::texts(Some(tenant)).get("common.error.other-browser", &[]),
        ),
        CallbackError::Store(e) => pages::store_error(state, tenant, e),
        CallbackError::Internal(cause) => pages::internal(state, tenant, cause),
    }
}
