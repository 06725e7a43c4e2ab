//! GitHub's web side of an OAuth app: the authorize redirect and the token
//! endpoint, with GitHub's answers and quirks (see `mod.rs`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey::crypto::hash::sha256_b64url;
use latchkey::rng::{RngExt, SystemRng};
use serde_json::{Value, json};

use super::{
    ACCESS_TOKEN_TTL, Code, GithubApp, Inner, REFRESH_TOKEN_TTL, Refresh, Shared, Token, basic,
    hex, params,
};

const CODE_TTL: i64 = 600;

/// Scopes as GitHub takes them: separated by spaces or commas.
fn scopes(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in s.split([' ', ',']).filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

/// GitHub accepts a redirect URI on the callback's host and port whose path
/// is the callback's or below it.
fn redirect_allowed(callback: &str, redirect: &str) -> bool {
    let (Ok(cb), Ok(r)) = (url::Url::parse(callback), url::Url::parse(redirect)) else {
        return false;
    };
    let dir = cb.path().trim_end_matches('/');
    cb.scheme() == r.scheme()
        && cb.host_str() == r.host_str()
        && cb.port_or_known_default() == r.port_or_known_default()
        && (r.path() == cb.path() || r.path().starts_with(&format!("{dir}/")))
}

/// A redirect to `redirect` with `pairs` and the request's `state` added.
fn back_to(redirect: &str, pairs: &[(&str, &str)], state: Option<&str>) -> Response {
    let mut url = url::Url::parse(redirect).unwrap();
    {
        let mut query = url.query_pairs_mut();
        query.extend_pairs(pairs);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

const AUTHORIZE_ERRORS: &str = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/";

pub(super) async fn authorize(State(s): State<Shared>, RawQuery(query): RawQuery) -> Response {
    s.count("authorize");
    let q = params(query.as_deref());
    let Some(app) = q.get("client_id").and_then(|id| s.app(id)) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let state = q.get("state").map(String::as_str);
    if let Some(r) = q.get("redirect_uri")
        && !redirect_allowed(&app.callback_url, r)
    {
        let uri = format!("{AUTHORIZE_ERRORS}#redirect-uri-mismatch");
        let pairs = [
            ("error", "redirect_uri_mismatch"),
            (
                "error_description",
                "The redirect_uri MUST match the registered callback URL for this application.",
            ),
            ("error_uri", uri.as_str()),
        ];
        return back_to(&app.callback_url, &pairs, state);
    }
    let redirect = q.get("redirect_uri").unwrap_or(&app.callback_url);
    let (user_id, refuse) = {
        let world = s.world.lock().unwrap();
        (world.signed_in, world.refuse)
    };
    let Some(user_id) = user_id else {
        return (
            StatusCode::OK,
            "<html><body>Sign in to GitHub</body></html>",
        )
            .into_response();
    };
    if refuse {
        let uri = format!("{AUTHORIZE_ERRORS}#access-denied");
        let pairs = [
            ("error", "access_denied"),
            (
                "error_description",
                "The user has denied your application access.",
            ),
            ("error_uri", uri.as_str()),
        ];
        return back_to(redirect, &pairs, state);
    }
    let challenge = match (q.get("code_challenge"), q.get("code_challenge_method")) {
        (None, _) => None,
        (Some(c), Some(m)) if m == "S256" => Some(c.clone()),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "code_challenge_method must be S256",
            )
                .into_response();
        }
    };
    let code = hex(10);
    s.world.lock().unwrap().codes.insert(
        code.clone(),
        Code {
            client_id: app.client_id.clone(),
            user_id,
            scopes: scopes(q.get("scope").map(String::as_str).unwrap_or("")),
            redirect_uri: q.get("redirect_uri").cloned(),
            challenge,
            expires_at: s.now() + CODE_TTL,
        },
    );
    back_to(redirect, &[("code", &code)], state)
}

/// The request's parameters: the query, then a form or JSON body.
fn token_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let mut p = params(query);
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            for (k, v) in map {
                if let Some(v) = v.as_str() {
                    p.insert(k, v.to_string());
                }
            }
        }
    } else {
        p.extend(url::form_urlencoded::parse(body).into_owned());
    }
    p
}

/// The token endpoint's answer, in the format the request accepts.
fn token_answer(headers: &HeaderMap, fields: Vec<(&str, Value)>) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        let map: serde_json::Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        return axum::Json(Value::Object(map)).into_response();
    }
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        match v {
            Value::String(s) => form.append_pair(k, &s),
            other => form.append_pair(k, &other.to_string()),
        };
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        form.finish(),
    )
        .into_response()
}

fn token_error(headers: &HeaderMap, error: &str, description: &str) -> Response {
    token_answer(
        headers,
        vec![
            ("error", json!(error)),
            ("error_description", json!(description)),
            (
                "error_uri",
                json!(format!(
                    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#{}",
                    error.replace('_', "-")
                )),
            ),
        ],
    )
}

pub(super) async fn access_token(
    State(s): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = token_params(query.as_deref(), &headers, &body);
    let grant_type = p
        .get("grant_type")
        .map_or("authorization_code", String::as_str);
    s.count("access_token");
    s.count(&format!("access_token:{grant_type}"));
    {
        let mut world = s.world.lock().unwrap();
        if world.fail.1 > 0 {
            world.fail.1 -= 1;
            let status = StatusCode::from_u16(world.fail.0).unwrap();
            return (
                status,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body>No server is currently available to service your request.</body></html>",
            )
                .into_response();
        }
    }
    let (client_id, secret) = match basic(&headers) {
        Some(pair) => pair,
        None => (
            p.get("client_id").cloned().unwrap_or_default(),
            p.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    let Some(app) = s.app(&client_id).filter(|a| a.client_secret == secret) else {
        return token_error(
            &headers,
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    };
    match grant_type {
        "refresh_token" => refresh(&s, app, &p, &headers),
        _ => exchange_code(&s, app, &p, &headers),
    }
}

fn exchange_code(
    s: &Inner,
    app: &GithubApp,
    p: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let bad_code = || {
        token_error(
            headers,
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        )
    };
    // Taken out at the first attempt: a code is good once.
    let code = p
        .get("code")
        .and_then(|c| s.world.lock().unwrap().codes.remove(c));
    let Some(code) = code.filter(|c| c.client_id == app.client_id && c.expires_at > s.now()) else {
        return bad_code();
    };
    let redirect_ok = match (p.get("redirect_uri"), &code.redirect_uri) {
        (None, _) => true,
        (Some(given), Some(sent)) => given == sent,
        (Some(given), None) => redirect_allowed(&app.callback_url, given),
    };
    if !redirect_ok {
        return token_error(
            headers,
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    }
    if let Some(challenge) = &code.challenge {
        let verified = p
            .get("code_verifier")
            .is_some_and(|v| sha256_b64url(v.as_bytes()) == *challenge);
        if !verified {
            return bad_code();
        }
    }
    issue(s, app, code.user_id, code.scopes, headers)
}

fn refresh(
    s: &Inner,
    app: &GithubApp,
    p: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let now = s.now();
    let old = {
        let mut world = s.world.lock().unwrap();
        let found = p.get("refresh_token").and_then(|t| world.refresh.remove(t));
        match found {
            Some(r) if r.client_id == app.client_id && r.expires_at > now => {
                // Once used, the refresh token and its access token are done.
                world.tokens.remove(&r.access_token);
                Some(r)
            }
            Some(r) => {
                // Another app's: it stays where it was.
                if r.client_id != app.client_id {
                    let key = p["refresh_token"].clone();
                    world.refresh.insert(key, r);
                }
                None
            }
            None => None,
        }
    };
    match old {
        Some(r) if app.expiring_tokens => issue(s, app, r.user_id, r.scopes, headers),
        _ => token_error(
            headers,
            "bad_refresh_token",
            "The refresh token passed is incorrect or expired.",
        ),
    }
}

fn issue(
    s: &Inner,
    app: &GithubApp,
    user_id: u64,
    scopes: Vec<String>,
    headers: &HeaderMap,
) -> Response {
    let now = s.now();
    let scope = scopes.join(",");
    let mut world = s.world.lock().unwrap();
    if !app.expiring_tokens {
        let access = format!("gho_{}", SystemRng.alnum(36));
        world.tokens.insert(
            access.clone(),
            Token {
                client_id: app.client_id.clone(),
                user_id,
                scopes,
                expires_at: None,
            },
        );
        return token_answer(
            headers,
            vec![
                ("access_token", json!(access)),
                ("scope", json!(scope)),
                ("token_type", json!("bearer")),
            ],
        );
    }
    let access = format!("ghu_{}", SystemRng.alnum(36));
    let refresh = format!("ghr_{}", SystemRng.alnum(76));
    world.tokens.insert(
        access.clone(),
        Token {
            client_id: app.client_id.clone(),
            user_id,
            scopes: scopes.clone(),
            expires_at: Some(now + ACCESS_TOKEN_TTL),
        },
    );
    world.refresh.insert(
        refresh.clone(),
        Refresh {
            client_id: app.client_id.clone(),
            user_id,
            scopes,
            expires_at: now + REFRESH_TOKEN_TTL,
            access_token: access.clone(),
        },
    );
    token_answer(
        headers,
        vec![
            ("access_token", json!(access)),
            ("expires_in", json!(ACCESS_TOKEN_TTL)),
            ("refresh_token", json!(refresh)),
            ("refresh_token_expires_in", json!(REFRESH_TOKEN_TTL)),
            ("scope", json!(scope)),
            ("token_type", json!("bearer")),
        ],
    )
}
