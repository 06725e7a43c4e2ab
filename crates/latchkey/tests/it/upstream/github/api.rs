//! GitHub's API side: the user, their email addresses, and revoking what
//! the user gave an app (see `mod.rs`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{GithubApp, GithubUser, Inner, Shared, basic};

const DOCS: &str = "https://docs.github.com/rest";

/// An API request GitHub turns away, and how.
enum Refusal {
    /// No `User-Agent` header.
    NoUserAgent,
    /// 401 with this message.
    Unauthorized(&'static str),
    /// 404, naming the scopes that would have been accepted.
    NotFound(Option<&'static str>),
    /// 422.
    Invalid,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, message, accepted) = match self {
            Refusal::NoUserAgent => {
                return (
                    StatusCode::FORBIDDEN,
                    "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.\n",
                )
                    .into_response();
            }
            Refusal::Unauthorized(message) => (StatusCode::UNAUTHORIZED, message, None),
            Refusal::NotFound(accepted) => (StatusCode::NOT_FOUND, "Not Found", accepted),
            Refusal::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed", None),
        };
        let body = json!({
            "message": message,
            "documentation_url": DOCS,
            "status": status.as_u16().to_string(),
        });
        let mut res = (status, axum::Json(body)).into_response();
        if let Some(accepted) = accepted {
            res.headers_mut().insert(
                "x-accepted-oauth-scopes",
                HeaderValue::from_static(accepted),
            );
        }
        res
    }
}

/// The user and scopes of the request's token.
fn caller(s: &Inner, headers: &HeaderMap) -> Result<(GithubUser, Vec<String>), Refusal> {
    if !headers.contains_key(header::USER_AGENT) {
        return Err(Refusal::NoUserAgent);
    }
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(Refusal::Unauthorized("Requires authentication"));
    };
    let token = value.split_once(' ').and_then(|(scheme, token)| {
        (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
            .then_some(token.trim())
    });
    let now = s.now();
    let world = s.world.lock().unwrap();
    let found = token
        .and_then(|t| world.tokens.get(t))
        .filter(|t| t.expires_at.is_none_or(|e| e > now));
    let Some(t) = found else {
        return Err(Refusal::Unauthorized("Bad credentials"));
    };
    let user = s.users.iter().find(|u| u.id == t.user_id).unwrap().clone();
    Ok((user, t.scopes.clone()))
}

fn with_scopes(mut res: Response, scopes: &[String], accepted: &str) -> Response {
    let h = res.headers_mut();
    h.insert(
        "x-oauth-scopes",
        HeaderValue::from_str(&scopes.join(", ")).unwrap(),
    );
    h.insert(
        "x-accepted-oauth-scopes",
        HeaderValue::from_str(accepted).unwrap(),
    );
    res
}

pub(super) async fn user(State(s): State<Shared>, headers: HeaderMap) -> Response {
    s.count("user");
    let (user, scopes) = match caller(&s, &headers) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let body = json!({
        "login": user.login,
        "id": user.id,
        "node_id": STANDARD.encode(format!("04:User{}", user.id)),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", user.id),
        "url": format!("https://api.github.com/users/{}", user.login),
        "html_url": format!("https://github.com/{}", user.login),
        "type": "User",
        "site_admin": false,
        "name": user.name,
        "company": null,
        "blog": "",
        "location": null,
        "email": user.public_email(),
        "hireable": null,
        "bio": null,
        "public_repos": 0,
        "followers": 0,
        "following": 0,
        "created_at": "2011-01-25T18:44:36Z",
        "updated_at": "2026-01-01T00:00:00Z",
    });
    with_scopes(axum::Json(body).into_response(), &scopes, "")
}

pub(super) async fn user_emails(State(s): State<Shared>, headers: HeaderMap) -> Response {
    s.count("user/emails");
    let (user, scopes) = match caller(&s, &headers) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    const ACCEPTED: &str = "user, user:email";
    if !scopes.iter().any(|s| s == "user" || s == "user:email") {
        return with_scopes(
            Refusal::NotFound(Some(ACCEPTED)).into_response(),
            &scopes,
            ACCEPTED,
        );
    }
    let list: Vec<Value> = user
        .emails
        .iter()
        .map(|e| {
            json!({
                "email": e.email, "primary": e.primary, "verified": e.verified,
                "visibility": e.visibility,
            })
        })
        .collect();
    with_scopes(axum::Json(list).into_response(), &scopes, ACCEPTED)
}

/// The app behind an `/applications/{client_id}/…` request with its
/// credentials in HTTP Basic, and the `access_token` of its JSON body.
fn app_request<'a>(
    s: &'a Inner,
    client_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(&'a GithubApp, String), Refusal> {
    let app = basic(headers)
        .filter(|(id, _)| id == client_id)
        .and_then(|(id, secret)| s.app(&id).filter(|a| a.client_secret == secret));
    let Some(app) = app else {
        return Err(Refusal::NotFound(None));
    };
    let token = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["access_token"].as_str().map(str::to_string));
    let known = token.as_ref().is_some_and(|t| {
        let world = s.world.lock().unwrap();
        world
            .tokens
            .get(t)
            .is_some_and(|t| t.client_id == app.client_id)
    });
    match token {
        Some(t) if known => Ok((app, t)),
        _ => Err(Refusal::Invalid),
    }
}

/// `DELETE /applications/{client_id}/grant`: every token the user gave the
/// app; `…/token`: the one token.
pub(super) async fn delete(
    State(s): State<Shared>,
    Path((client_id, what)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if what != "grant" && what != "token" {
        return Refusal::NotFound(None).into_response();
    }
    s.count(&format!("applications/{what}"));
    let (app, token) = match app_request(&s, &client_id, &headers, &body) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let mut world = s.world.lock().unwrap();
    if what == "token" {
        world.tokens.remove(&token);
        world.refresh.retain(|_, r| r.access_token != token);
    } else {
        let user_id = world.tokens[&token].user_id;
        let mine = |c: &str, u: u64| c == app.client_id && u == user_id;
        world.tokens.retain(|_, t| !mine(&t.client_id, t.user_id));
        world.refresh.retain(|_, r| !mine(&r.client_id, r.user_id));
    }
    StatusCode::NO_CONTENT.into_response()
}
