//! `GET /authorize` (the code flow with PKCE, and the implicit and hybrid
//! response types): decodes the request, has `services::authorize` validate and decide it, and answers:
//! an error page, the client's redirect (a code or an error), or a login
//! transaction handed to the hosted pages (the login form, a step-up's
//! second step, or with `connection=` the upstream provider, whose callback
//! comes back to the login pages), which carry it to the answer one way.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::respond;
use super::wire::{AuthorizeQuery, OAuthTenant};
use crate::app::{AppState, SharedState};
use crate::http::cookies;
use crate::pages::{self, second_step};
use latchkey_core::services::authorize::{
    self, AuthorizeRequest, Decision, Invalid, Params, Reply, StepUp,
};
use latchkey_core::services::login_flow::{self, LOGIN_TTL};
use latchkey_core::services::pushed_request;
use latchkey_core::services::upstream_login::{self, StartError};
use latchkey_core::store::StoreError;
use latchkey_core::tenant::Tenant;

pub(crate) async fn authorize(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    query: Result<Query<AuthorizeQuery>, axum::extract::rejection::QueryRejection>,
    crate::http::ClientIp(ip): crate::http::ClientIp,
    headers: HeaderMap,
) -> Response {
    let Ok(Query(q)) = query else {
        return bad_request(&state, &tenant, "The authorization request is malformed.");
    };
    let validated = match q.request_uri.as_deref() {
        Some(uri) => match pushed(&state, &tenant, q.client_id.as_deref(), uri).await {
            Ok(taken) => taken,
            Err(e) => return pages::store_error(&state, &tenant, e),
        },
        None => authorize::validate(&tenant, &host, &params(&q)),
    };
    let (req, reply) = match validated {
        Ok(valid) => valid,
        Err(Invalid::Page(message)) => return bad_request(&state, &tenant, message),
        Err(Invalid::Client {
            reply,
            error,
            description,
        }) => return respond::error(&state, &reply, error, &description),
    };
    pages::language::for_request(&tenant, &req);
    let cookie = cookies::get(&headers, cookies::SESSION);
    let session = if req.prompt_login {
        None
    } else {
        login_flow::current_session(&state, &tenant, cookie.as_deref()).await
    };
    match authorize::decide(&state, &tenant, &host, &req, session.map(|(_, s)| s)).await {
        Ok(Decision::Refuse { error, description }) => {
            respond::error(&state, &reply, error, description)
        }
        Ok(Decision::Issued(issued)) => respond::issued(&state, &reply, &issued),
        Ok(Decision::Login) => {
            let signup = q.screen_hint.as_deref() == Some("signup");
            login(&state, &tenant, &host, &req, &reply, &ip, signup).await
        }
        Ok(Decision::StepUp(up)) => step_up(&state, &tenant, &host, &req, *up, &headers, &ip).await,
        Err(e) => pages::flow_error(&state, &tenant, e),
    }
}

/// A pushed request (RFC 9126 §4): taken once, by the client that pushed
/// it; the parameters sent beside it are ignored. Unknown, used or expired,
/// its redirect URI is not known: a page.
async fn pushed(
    state: &AppState,
    tenant: &Tenant,
    client_id: Option<&str>,
    request_uri: &str,
) -> Result<Result<(AuthorizeRequest, Reply), Invalid>, StoreError> {
    let Some(client_id) = client_id else {
        return Ok(Err(Invalid::Page("Missing required parameter: client_id")));
    };
    Ok(
        match pushed_request::take(state, tenant, client_id, request_uri).await? {
            Some(valid) => Ok(valid),
            None => Err(Invalid::Page(
                "The request_uri is unknown, was used already, or has expired.",
            )),
        },
    )
}

fn bad_request(state: &AppState, tenant: &Tenant, message: &str) -> Response {
    pages::error_page(state, Some(tenant), StatusCode::BAD_REQUEST, message)
}

/// The parameters of an authorization request as `/authorize` reads them
/// (also `/passwordless/verify_redirect`'s).
pub(crate) fn params(q: &AuthorizeQuery) -> Params<'_> {
    Params {
        response_type: q.response_type.as_deref(),
        client_id: q.client_id.as_deref(),
        redirect_uri: q.redirect_uri.as_deref(),
        scope: q.scope.as_deref(),
        state: q.state.as_deref(),
        nonce: q.nonce.as_deref(),
        audience: q.audience.as_deref(),
        code_challenge: q.code_challenge.as_deref(),
        code_challenge_method: q.code_challenge_method.as_deref(),
        prompt: q.prompt.as_deref(),
        max_age: q.max_age.as_deref(),
        login_hint: q.login_hint.as_deref(),
        acr_values: q.acr_values.as_deref(),
        dpop_jkt: q.dpop_jkt.as_deref(),
        response_mode: q.response_mode.as_deref(),
        connection: q.connection.as_deref(),
        ui_locales: q.ui_locales.as_deref(),
        pushed: false,
    }
}

/// A new login transaction, bound to this browser by a cookie: the login
/// form (the sign-up screen with `screen_hint=signup`), or the upstream
/// provider `connection=` names.
async fn login(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    req: &AuthorizeRequest,
    reply: &Reply,
    ip: &str,
    signup: bool,
) -> Response {
    if let Err(seconds) = login_flow::anonymous_transaction(state, tenant, ip) {
        return pages::retry_page(
            state,
            tenant,
            StatusCode::TOO_MANY_REQUESTS,
            &pages::language::texts(Some(tenant)).get("common.error.too-many-transactions", &[]),
            seconds,
        );
    }
    let tx = match login_flow::create(state, tenant, req).await {
        Ok(tx) => tx,
        Err(e) => return pages::flow_error(state, tenant, e),
    };
    let of = pages::LoginOf::request(tenant, req);
    let mut res = match &req.connection {
        Some(_) if of.only.is_some() => {
            let hint = req.login_hint.as_deref().unwrap_or("");
            pages::login_form(state, tenant, &tx, hint, of)
        }
        Some(connection) => {
            match upstream_login::start(state, tenant, host, &tx, req, connection).await {
                Ok(url) => crate::http::found(&url),
                Err(e) => return upstream_unavailable(state, tenant, reply, e),
            }
        }
        None => {
            let hint = req.login_hint.as_deref().unwrap_or("");
            if signup && pages::signup_open(tenant) {
                pages::signup_form(state, tenant, &tx, (hint, ""), None)
            } else {
                pages::login_form(state, tenant, &tx, hint, of)
            }
        }
    };
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(host, cookies::TRANSACTION, &tx, LOGIN_TTL),
    );
    res
}

/// The provider of `connection=` cannot be asked: the app is told.
fn upstream_unavailable(
    state: &AppState,
    tenant: &Tenant,
    reply: &Reply,
    e: StartError,
) -> Response {
    match e {
        StartError::NotEnabled => respond::error(
            state,
            reply,
            "invalid_request",
            "the connection was disabled",
        ),
        StartError::Upstream(e) => {
            tracing::warn!(tenant = %tenant.name, error = %e, "upstream login could not start");
            let (error, description) = upstream_login::upstream_failure(&e);
            respond::error(state, reply, error, description)
        }
        StartError::Store(e) => pages::store_error(state, tenant, e),
    }
}

/// A login transaction whose first factor is the browser's session: the
/// second step alone.
async fn step_up(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    req: &AuthorizeRequest,
    up: StepUp,
    headers: &HeaderMap,
    ip: &str,
) -> Response {
    let tx = match login_flow::create(state, tenant, req).await {
        Ok(tx) => tx,
        Err(e) => return pages::flow_error(state, tenant, e),
    };
    let languages = pages::language::wanted();
    let first = second_step::FirstFactor {
        user: &up.user,
        amr: &up.amr,
        auth_time: up.auth_time,
    };
    let browser = second_step::Browser {
        ip,
        user_agent: &crate::http::user_agent(headers),
    };
    let mut res = second_step::start(
        state, tenant, host, &tx, req, &first, up.need, &languages, &browser,
    )
    .await;
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(host, cookies::TRANSACTION, &tx, LOGIN_TTL),
    );
    res
}
