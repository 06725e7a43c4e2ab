//! `POST /login`: the hosted login form's submission.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::app::SharedState;
use crate::crypto::hash::{constant_time_eq, secret_digest};
use crate::http::{ClientIp, cookies};
use crate::oauth::authorize::{self, AuthorizeRequest, Back};
use crate::oauth::wire::OAuthTenant;
use crate::rng::RngExt;
use crate::services::login::{self, LoginError, PasswordLogin};
use crate::store::SessionRow;

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    tx: String,
    username: String,
    password: String,
}

pub async fn submit(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let expired = |status| {
        let html = state.templates.render_error(
            Some(&tenant),
            "Your login page has expired. Go back to the application and start again.",
        );
        (status, Html(html)).into_response()
    };
    let Ok(Form(form)) = form else {
        return expired(StatusCode::BAD_REQUEST);
    };
    // The transaction must belong to this browser (login CSRF).
    let bound = cookies::get(&headers, cookies::TRANSACTION)
        .is_some_and(|c| constant_time_eq(c.as_bytes(), form.tx.as_bytes()));
    if !bound || form.tx.len() > 128 {
        return expired(StatusCode::BAD_REQUEST);
    }
    let tx_digest = secret_digest(&form.tx);
    let now = state.clock.now();
    let req: AuthorizeRequest = match state
        .store
        .login_transaction(&tenant.id, &tx_digest, now)
        .await
    {
        Ok(Some(json)) => match serde_json::from_str(&json) {
            Ok(r) => r,
            Err(e) => return authorize::internal(&state, &tenant, e),
        },
        Ok(None) => return expired(StatusCode::BAD_REQUEST),
        Err(e) => return authorize::store_error(&state, &tenant, e),
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
        Err(e) => {
            let message = match &e {
                LoginError::WrongCredentials => "Wrong email or password.",
                LoginError::TooManyAttempts => {
                    "Your account has been blocked after multiple consecutive login attempts."
                }
                LoginError::Blocked => "This account is blocked.",
                LoginError::UnknownConnection(_) => "Logging in with a password is not available.",
                LoginError::Store(_) => "Something went wrong. Please try again.",
            };
            let html =
                state
                    .templates
                    .render_login(&tenant, &form.tx, &form.username, Some(message));
            let mut res = (StatusCode::OK, Html(html)).into_response();
            authorize::frame_guard(&mut res);
            return res;
        }
    };
    if let Err(e) = state
        .store
        .delete_login_transaction(&tenant.id, &tx_digest)
        .await
    {
        return authorize::store_error(&state, &tenant, e);
    }
    // A new session on every login; the old one (if any) ends.
    if let Some((old, _)) = authorize::current_session(&state, &tenant, &headers).await {
        let _ = state.store.revoke_session(&tenant.id, &old, now).await;
    }
    let lifetime = 3600 * i64::from(tenant.config.tenant.session_lifetime_hours);
    let session_id = state.rng.token(32);
    let amr = vec!["pwd".to_string()];
    let session = SessionRow {
        user_id: user.user_id.clone(),
        auth_time: now,
        amr: amr.clone(),
        expires_at: now + lifetime,
    };
    if let Err(e) = state
        .store
        .create_session(&tenant.id, &secret_digest(&session_id), &session, now)
        .await
    {
        return authorize::store_error(&state, &tenant, e);
    }
    let back = Back::for_request(&req);
    let mut res = authorize::complete(&state, &tenant, &host, &req, &user, now, &amr, &back).await;
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        cookies::set(&host, cookies::SESSION, &session_id, lifetime),
    );
    h.append(
        header::SET_COOKIE,
        cookies::clear(&host, cookies::TRANSACTION),
    );
    res
}
