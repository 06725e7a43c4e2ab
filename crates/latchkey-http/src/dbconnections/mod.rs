//! Auth0's database-connection endpoints: `POST /dbconnections/signup` and
//! `POST /dbconnections/change_password`, in their own dialect
//! (`{name, code, description, statusCode}`, `error.rs`), with the CORS of
//! the Authentication API. Bodies are JSON (auth0-js) or form-encoded.

mod error;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};

use crate::app::SharedState;
use crate::http::cors;
use crate::http::{ClientIp, accept_languages, user_agent};
use crate::oauth::wire::OAuthTenant;
use error::DbError;
use latchkey_core::services::accounts::Mailing;
use latchkey_core::services::accounts::reset::{self, ResetRequest};
use latchkey_core::services::accounts::signup::{self, PROFILE_FIELDS, SignUp};

/// Largest body read.
const MAX_BODY: usize = 16 * 1024;

/// Auth0's answer to every accepted reset request, known address or not.
pub(crate) const RESET_SENT: &str = "We've just sent you an email to reset your password.";

pub(crate) fn routes(state: SharedState) -> Router<SharedState> {
    Router::new()
        .route("/dbconnections/signup", post(signup))
        .route("/dbconnections/change_password", post(change_password))
        .layer(from_fn_with_state((state, cors::OAUTH), cors::apply))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The body's members: a JSON object, or a form (every value a string).
fn members(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, DbError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "application/json" => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(DbError::bad(
                "invalid_body",
                "The body is not a JSON object",
            )),
        },
        "application/x-www-form-urlencoded" => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                .map_err(|_| DbError::bad("invalid_body", "Malformed form body"))?;
            let mut map = Map::new();
            for (k, v) in pairs {
                if map.insert(k, Value::String(v)).is_some() {
                    return Err(DbError::bad("invalid_body", "A parameter is given twice"));
                }
            }
            Ok(map)
        }
        _ => Err(DbError::bad(
            "invalid_body",
            "The body must be JSON or form-encoded",
        )),
    }
}

/// A string member: `None` when absent or empty; another type is refused.
fn text<'a>(m: &'a Map<String, Value>, key: &'static str) -> Result<Option<&'a str>, DbError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DbError::field(key, "Expected type string")),
    }
}

fn required<'a>(m: &'a Map<String, Value>, key: &'static str) -> Result<&'a str, DbError> {
    text(m, key)?.ok_or_else(|| DbError::field(key, &format!("Missing required property: {key}")))
}

fn mailing(host: &str, headers: &HeaderMap) -> Mailing {
    Mailing {
        host: host.to_string(),
        languages: accept_languages(headers),
    }
}

/// `POST /dbconnections/signup`: the new user as Auth0 answers it.
async fn signup(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DbError> {
    let m = members(&headers, &body)?;
    let client_id = required(&m, "client_id")?;
    let connection = required(&m, "connection")?;
    let email = required(&m, "email")?;
    let password = required(&m, "password")?;
    let profile: Map<String, Value> = PROFILE_FIELDS
        .iter()
        .filter_map(|f| m.get(*f).map(|v| ((*f).to_string(), v.clone())))
        .collect();
    let req = SignUp {
        client_id,
        connection,
        email,
        password,
        username: text(&m, "username")?,
        profile,
        user_metadata: m.get("user_metadata"),
        ip: &ip,
        user_agent: &user_agent(&headers),
        mailing: mailing(&host, &headers),
    };
    let user = signup::sign_up(&state.core, &tenant, req).await?;
    let mut body = json!({
        "_id": user.user_id.strip_prefix("auth0|").unwrap_or(&user.user_id),
        "email": user.email,
        "email_verified": user.email_verified,
    });
    if let (Some(out), Some(profile)) = (body.as_object_mut(), user.profile.as_object()) {
        for (k, v) in profile {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// `POST /dbconnections/change_password`: Auth0's sentence, as plain
/// text, whether the address has an account or not.
async fn change_password(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DbError> {
    let m = members(&headers, &body)?;
    let req = ResetRequest {
        client_id: required(&m, "client_id")?,
        connection: required(&m, "connection")?,
        email: required(&m, "email")?,
        ip: &ip,
        mailing: mailing(&host, &headers),
    };
    reset::request(&state.core, &tenant, req).await?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        RESET_SENT,
    )
        .into_response())
}
