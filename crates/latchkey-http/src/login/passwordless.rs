//! Passwordless login on the hosted page (Auth0's `login-passwordless`
//! prompt): `POST /login/passwordless` (an email address or phone number
//! from the login form, or the code screen's "Resend": a code sent, the
//! code screen) and `POST /login/passwordless/verify` (the code: on as
//! after a password, `submit::first_factor_passed`). The codes, their
//! limits and the user found or made are `services::passwordless`'s, as for
//! `/passwordless/start` and the `passwordless/otp` grant.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use super::submit::{Login, first_factor_passed};
use super::{LoginForm, tx_form};
use crate::app::{AppState, SharedState};
use crate::http::cookies;
use crate::http::{ClientIp, user_agent};
use crate::oauth::respond;
use crate::oauth::wire::{AuthorizeQuery, OAuthTenant};
use crate::pages::{self, PasswordlessCode, PasswordlessField};
use latchkey_core::services::authorize::{self, AuthorizeRequest, Invalid};
use latchkey_core::services::login::Origin;
use latchkey_core::services::login_flow;
use latchkey_core::services::passwordless::{
    self, PasswordlessError, Send, StartRequest, VerifyRequest,
};
use latchkey_core::tenant::{ConnectionStrategy, Tenant};

/// The `amr` of a passwordless login: a one-time code (RFC 8176), as the
/// `passwordless/otp` grant's.
const AMR: &str = "otp";

#[derive(Debug, Deserialize)]
pub(super) struct StartForm {
    tx: String,
    connection: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone_number: String,
    /// `1`: the code screen's "Resend".
    #[serde(default)]
    resend: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct VerifyForm {
    tx: String,
    connection: String,
    /// The address or number the code was sent to.
    username: String,
    code: String,
}

tx_form!(StartForm, VerifyForm);

/// Whether the passwordless connection `name` sends its codes by SMS: which
/// field of the form holds the address, which screen shows. Whether the
/// application may use it at all is `services::passwordless`'s to say.
fn by_sms(tenant: &Tenant, name: &str) -> bool {
    tenant
        .passwordless_connection(name)
        .is_some_and(|c| c.strategy == ConnectionStrategy::Sms)
}

/// The words of the code screen (of SMS codes or email codes): `key` of it.
fn screen_key(tenant: &Tenant, sms: bool, key: &str) -> String {
    let screen = if sms {
        "login-passwordless.login-passwordless-sms-otp"
    } else {
        "login-passwordless.login-passwordless-email-code"
    };
    pages::language::texts(Some(tenant)).get(&format!("{screen}.{key}"), &[])
}

/// `POST /login/passwordless`: a code to the address or number given (the
/// same answer whether or not it has a user), and the code screen.
pub(super) async fn start(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LoginForm {
        tenant, form, req, ..
    }: LoginForm<StartForm>,
) -> Response {
    let Some(client) = tenant.client(&req.client_id) else {
        return pages::expired(&state, &tenant);
    };
    let sms = by_sms(&tenant, &form.connection);
    let to = if sms { &form.phone_number } else { &form.email };
    let ua = user_agent(&headers);
    let languages = pages::language::wanted();
    let started = passwordless::start(
        &state.core,
        &StartRequest {
            tenant: &tenant,
            from: Origin {
                client,
                ip: &ip,
                user_agent: &ua,
            },
            connection: &form.connection,
            to: to.trim(),
            send: Send::Code,
            languages: &languages,
        },
    )
    .await;
    let texts = pages::language::texts(Some(&tenant));
    let resend = form.resend == "1";
    let mut screen = PasswordlessCode {
        tx: &form.tx,
        connection: &form.connection,
        sms,
        to,
        ..PasswordlessCode::default()
    };
    match started {
        Ok(started) => {
            let resent = resend.then(|| screen_key(&tenant, sms, "code-resent"));
            screen.to = &started.to;
            screen.notice = resent.as_deref();
            pages::passwordless_code(&state, &tenant, StatusCode::OK, &screen)
        }
        Err(PasswordlessError::BadEmail(_) | PasswordlessError::BadPhoneNumber(_)) => {
            let key = if sms {
                "login.login.invalid-phone-format"
            } else {
                "login.login.invalid-email-format"
            };
            let refused = PasswordlessField {
                connection: &form.connection,
                value: to,
                error: &texts.get(key, &[]),
            };
            pages::passwordless_refused(
                &state,
                &tenant,
                &form.tx,
                pages::LoginOf::request(&tenant, &req),
                &refused,
            )
        }
        Err(PasswordlessError::Throttled(seconds)) => {
            let message = texts.get("login.login.too-many-codes", &[]);
            if !resend {
                return pages::retry_page(
                    &state,
                    &tenant,
                    StatusCode::TOO_MANY_REQUESTS,
                    &message,
                    seconds,
                );
            }
            // The code sent last still stands: the screen stays for it.
            screen.alert = Some(&message);
            let mut res =
                pages::passwordless_code(&state, &tenant, StatusCode::TOO_MANY_REQUESTS, &screen);
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds.max(1)),
            );
            res
        }
        Err(PasswordlessError::UnknownConnection | PasswordlessError::Disabled) => {
            unavailable(&state, &tenant, &form.tx, &req)
        }
        Err(e) => failed(&state, &tenant, e),
    }
}

/// `POST /login/passwordless/verify`: the code; a right one signs the user
/// in (made now at a first login) and the login goes on as after a
/// password: the tenant's MFA policy, the session, the code to the app.
pub(super) async fn verify(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LoginForm {
        tenant,
        host,
        form,
        req,
        ..
    }: LoginForm<VerifyForm>,
) -> Response {
    let Some(client) = tenant.client(&req.client_id) else {
        return pages::expired(&state, &tenant);
    };
    let ua = user_agent(&headers);
    let verified = passwordless::verify(
        &state.core,
        &VerifyRequest {
            tenant: &tenant,
            from: Origin {
                client,
                ip: &ip,
                user_agent: &ua,
            },
            connection: &form.connection,
            to: &form.username,
            code: &form.code,
            link: None,
        },
    )
    .await;
    let texts = pages::language::texts(Some(&tenant));
    match verified {
        Ok(user) => {
            let login = Login {
                state: &state,
                tenant: &tenant,
                host: &host,
                headers: &headers,
                tx: &form.tx,
                req: &req,
                ip: &ip,
            };
            first_factor_passed(&login, &user, vec![AMR.to_string()]).await
        }
        Err(PasswordlessError::WrongCode(_)) => {
            let sms = by_sms(&tenant, &form.connection);
            let error = screen_key(&tenant, sms, "invalid-code");
            let screen = PasswordlessCode {
                tx: &form.tx,
                connection: &form.connection,
                sms,
                to: &form.username,
                error: Some(&error),
                ..PasswordlessCode::default()
            };
            pages::passwordless_code(&state, &tenant, StatusCode::BAD_REQUEST, &screen)
        }
        Err(PasswordlessError::Throttled(seconds)) => pages::ip_blocked(&state, &tenant, seconds),
        Err(PasswordlessError::Blocked) => pages::login_page(
            &state,
            &tenant,
            &form.tx,
            "",
            pages::LoginOf::request(&tenant, &req),
            &texts.get("login.login.blocked-user", &[]),
        ),
        Err(PasswordlessError::UnknownConnection | PasswordlessError::Disabled) => {
            unavailable(&state, &tenant, &form.tx, &req)
        }
        Err(e) => failed(&state, &tenant, e),
    }
}

/// The login form again: the connection named is not this application's.
fn unavailable(state: &AppState, tenant: &Tenant, tx: &str, req: &AuthorizeRequest) -> Response {
    let message = pages::language::texts(Some(tenant)).get("login.login.connection-disabled", &[]);
    pages::login_page(
        state,
        tenant,
        tx,
        "",
        pages::LoginOf::request(tenant, req),
        &message,
    )
}

/// What the page could not have caused.
fn failed(state: &AppState, tenant: &Tenant, e: PasswordlessError) -> Response {
    match e {
        PasswordlessError::Store(e) => pages::store_error(state, tenant, e),
        e => pages::internal(state, tenant, format!("{e:?}")),
    }
}

/// `GET /passwordless/verify_redirect` (auth0-js's `passwordlessVerify`
/// sends the browser here once `/passwordless/verify` said yes): the
/// authorization request in the query is validated as `/authorize`
/// validates it (before the code is touched: a bad client or redirect URI
/// is a page and spends nothing), then the code is spent and the login goes
/// on as after the page's code form: the MFA policy, the session, the
/// answer in the response type and mode.
pub(crate) async fn verify_redirect(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    authorize_query: Result<Query<AuthorizeQuery>, QueryRejection>,
) -> Response {
    let (Ok(Query(q)), Ok(Query(aq))) = (query, authorize_query) else {
        return bad_page(&state, &tenant, "The authorization request is malformed.");
    };
    let get = |k: &str| q.get(k).map(String::as_str);
    let params = authorize::Params {
        // `connection` here is the passwordless one, not an upstream's.
        connection: None,
        ..crate::oauth::authorize::params(&aq)
    };
    let (req, reply) = match authorize::validate(&tenant, &host, &params) {
        Ok(valid) => valid,
        Err(Invalid::Page(message)) => return bad_page(&state, &tenant, message),
        Err(Invalid::Client {
            reply,
            error,
            description,
        }) => return respond::error(&state, &reply, error, &description),
    };
    pages::language::for_request(&tenant, &req);
    let Some(client) = tenant.client(&req.client_id) else {
        return pages::expired(&state, &tenant);
    };
    let (Some(connection), Some(code)) = (get("connection"), get("verification_code")) else {
        return respond::error(
            &state,
            &reply,
            "invalid_request",
            "Missing required parameter: connection and verification_code",
        );
    };
    // The address the connection's codes go to, as `/passwordless/verify`
    // reads it.
    let field = if by_sms(&tenant, connection) {
        "phone_number"
    } else {
        "email"
    };
    let to = get(field).unwrap_or("");
    let ua = user_agent(&headers);
    let verified = passwordless::verify(
        &state.core,
        &VerifyRequest {
            tenant: &tenant,
            from: Origin {
                client,
                ip: &ip,
                user_agent: &ua,
            },
            connection,
            to,
            code,
            link: Some(&params),
        },
    )
    .await;
    let user = match verified {
        Ok(user) => user,
        Err(PasswordlessError::WrongCode(answer)) => {
            return respond::error(&state, &reply, "access_denied", answer);
        }
        Err(PasswordlessError::Blocked) => {
            return respond::error(&state, &reply, "unauthorized", "user is blocked");
        }
        Err(PasswordlessError::UnknownConnection | PasswordlessError::Disabled) => {
            return respond::error(
                &state,
                &reply,
                "invalid_request",
                "the connection was not found or is not enabled for this client",
            );
        }
        Err(PasswordlessError::Throttled(seconds)) => {
            return pages::ip_blocked(&state, &tenant, seconds);
        }
        Err(e) => return failed(&state, &tenant, e),
    };
    let tx = match login_flow::create(&state, &tenant, &req).await {
        Ok(tx) => tx,
        Err(e) => return pages::flow_error(&state, &tenant, e),
    };
    let login = Login {
        state: &state,
        tenant: &tenant,
        host: &host,
        headers: &headers,
        tx: &tx,
        req: &req,
        ip: &ip,
    };
    let mut res = first_factor_passed(&login, &user, vec![AMR.to_string()]).await;
    // The second step, when one follows, is this browser's transaction.
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(&host, cookies::TRANSACTION, &tx, login_flow::LOGIN_TTL),
    );
    res
}

fn bad_page(state: &AppState, tenant: &Tenant, message: &str) -> Response {
    pages::error_page(state, Some(tenant), StatusCode::BAD_REQUEST, message)
}
