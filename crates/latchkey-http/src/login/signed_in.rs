//! Signed in, before the code: a passkey offered after a password login
//! (progressive enrollment; `POST /login/passkey/create/challenge` and
//! `POST /login/passkey/create` add one), and `POST /login/continue`, on
//! without one (or after a new recovery code was shown).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use super::submit::{ChallengeForm, PasskeyForm};
use super::{LoginForm, Opaque, finish, json_no_store, json_refused};
use crate::app::{AppState, SharedState};
use crate::http::{cookies, user_agent};
use crate::pages;
use latchkey_core::services::authorize::AuthorizeRequest;
use latchkey_core::services::enrollment::{self, Challenge, Proof, Start, Who};
use latchkey_core::services::login_flow;
use latchkey_core::store::{SessionRow, UserRow};
use latchkey_core::tenant::Tenant;

/// The signed-in user of this browser, under the login transaction whose
/// request is `req`: the steps after a password login (continue, or add a
/// passkey first).
async fn signed_in_user(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    req: AuthorizeRequest,
) -> Result<(AuthorizeRequest, UserRow, SessionRow), Response> {
    let Some((_, session)) = login_flow::current_session(
        state,
        tenant,
        cookies::get(headers, cookies::SESSION).as_deref(),
    )
    .await
    else {
        return Err(pages::expired(state, tenant));
    };
    match login_flow::active_user(state, tenant, &session.user_id).await {
        Ok(Some(user)) => Ok((req, user, session)),
        Ok(None) => Err(pages::expired(state, tenant)),
        Err(e) => Err(pages::store_error(state, tenant, e)),
    }
}

/// `POST /login/continue`: on without a passkey.
pub(super) async fn continue_login(
    State(state): State<SharedState>,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<ChallengeForm>,
) -> Response {
    match signed_in_user(&state, &tenant, &headers, req).await {
        Ok((req, user, session)) => {
            finish(
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
pub(super) async fn create_challenge(
    State(state): State<SharedState>,
    headers: HeaderMap,
    LoginForm {
        tenant, host, req, ..
    }: LoginForm<ChallengeForm, Opaque>,
) -> Response {
    let refused = || json_refused("invalid_request");
    let Ok((req, user, _)) = signed_in_user(&state, &tenant, &headers, req).await else {
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
                json_no_store(json!({"auth_session": started.auth_session, "options": options}))
            }
            _ => refused(),
        },
        // The user can add nothing more (the cap on methods): the page's
        // script shows this, in the page's language.
        Err(enrollment::EnrollError::TooManyMethods(max)) => {
            let detail = pages::language::texts(Some(&tenant)).get(
                "common.error.too-many-methods",
                &[("max", &max.to_string())],
            );
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_request", "error_description": detail})),
            )
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "passkey creation challenge failed");
            refused()
        }
    }
}

/// `POST /login/passkey/create`: the new passkey, then on to the app.
pub(super) async fn create_passkey(
    State(state): State<SharedState>,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<PasskeyForm>,
) -> Response {
    let (req, user, session) = match signed_in_user(&state, &tenant, &headers, req).await {
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
            finish(
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
        Err(enrollment::EnrollError::Store(e)) => pages::store_error(&state, &tenant, e),
        Err(e) => {
            tracing::info!(error = %e, tenant = %tenant.name, "passkey creation refused");
            let html = state.templates.render_add_passkey(
                &tenant,
                &form.tx,
                &user.email,
                Some(
                    &pages::language::texts(Some(&tenant))
                        .get("passkeys.passkey-enrollment.save-failed", &[]),
                ),
            );
            let mut res = (StatusCode::OK, Html(html)).into_response();
            pages::frame_guard(&mut res);
            res
        }
    }
}
