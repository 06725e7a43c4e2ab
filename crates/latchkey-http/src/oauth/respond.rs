//! The authorization response: a code, the authorization endpoint's
//! tokens, or an error sent back to the client's
//! redirect URI in the request's response mode (query, fragment, a
//! self-posting form, or a `postMessage` page for silent authentication).
//! `/authorize` answers with it, and the login pages when a login completes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::app::AppState;
use crate::pages::no_store;
use latchkey_core::rng::RngExt;
use latchkey_core::services::authorize::{Reply, ResponseMode};
use latchkey_core::services::login_flow::Issued;

/// What was issued, or the error the completion came to.
pub(crate) fn issued(app: &AppState, to: &Reply, issued: &Issued) -> Response {
    match issued {
        Issued::Answer(params) => send(app, to, params.clone()),
        Issued::Refused { error, description } => self::error(app, to, error, description),
    }
}

/// An error for the client.
pub(crate) fn error(app: &AppState, to: &Reply, error: &str, description: &str) -> Response {
    send(
        app,
        to,
        vec![
            ("error", error.to_string()),
            ("error_description", description.to_string()),
        ],
    )
}

fn send(app: &AppState, to: &Reply, mut params: Vec<(&str, String)>) -> Response {
    if let Some(s) = &to.state {
        params.push(("state", s.clone()));
    }
    match to.mode {
        ResponseMode::Query | ResponseMode::Fragment => {
            let encoded = serde_urlencoded::to_string(&params).unwrap_or_default();
            let sep = if to.mode == ResponseMode::Fragment {
                '#'
            } else if to.redirect_uri.contains('?') {
                '&'
            } else {
                '?'
            };
            let mut res = crate::http::found(&format!("{}{sep}{encoded}", to.redirect_uri));
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        ResponseMode::FormPost => {
            let html = app.templates.render_form_post(&to.redirect_uri, &params);
            (StatusCode::OK, no_store(), Html(html)).into_response()
        }
        ResponseMode::WebMessage => {
            let origin = url::Url::parse(&to.redirect_uri)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default();
            let nonce = app.rng.token(16);
            let html = app.templates.render_web_message(&origin, &params, &nonce);
            let mut res = (StatusCode::OK, no_store(), Html(html)).into_response();
            if let Ok(csp) =
                HeaderValue::from_str(&format!("default-src 'none'; script-src 'nonce-{nonce}'"))
            {
                res.headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, csp);
            }
            res
        }
    }
}
