//! A server speaking what GitHub speaks to an OAuth app, on 127.0.0.1 and a
//! free port, checking what GitHub checks (from GitHub's documentation):
//!
//! - `GET /login/oauth/authorize` (`client_id`, `redirect_uri`, `scope`,
//!   `state`, optional PKCE `code_challenge` with S256): the signed-in user
//!   is the one the test chose ([`GithubServer::sign_in`]), who has already
//!   authorized the app, so the browser goes straight back with `code` and
//!   `state`. A `redirect_uri` outside the registered callback (same host
//!   and port, a path under its path) goes back to the registered callback
//!   with `error=redirect_uri_mismatch`; a refusal with `error=access_denied`.
//! - `POST /login/oauth/access_token` (parameters in the query, a form or
//!   JSON; the client's credentials in them or in HTTP Basic): JSON when the
//!   request accepts `application/json`, form-encoded otherwise, and every
//!   error a 200 with an `error` field: `incorrect_client_credentials`,
//!   `bad_verification_code` (unknown, expired after 10 minutes, already
//!   used, another app's, or a PKCE verifier that does not match),
//!   `redirect_uri_mismatch`, `bad_refresh_token`. Codes are single use.
//!   An app with expiring tokens (what GitHub Apps get) is answered
//!   `expires_in`, `refresh_token` and `refresh_token_expires_in`, and takes
//!   `grant_type=refresh_token`, which rotates both tokens.
//! - `GET /user` and `GET /user/emails` (`Authorization: Bearer …` or
//!   `token …`; a `User-Agent` header, as GitHub's API demands, else 403):
//!   401 `Bad credentials` for an unknown, expired or revoked token,
//!   `/user/emails` 404 without the `user` or `user:email` scope; both tell
//!   the token's scopes in `X-OAuth-Scopes`.
//! - `DELETE /applications/{client_id}/grant` and `…/token` (HTTP Basic with
//!   the app's credentials, JSON `{"access_token": …}`): 204, revoking every
//!   token the user gave the app, or the one token; 404 for wrong
//!   credentials, 422 for a token the app does not know.
//!
//! Every request is counted by endpoint ([`GithubServer::count`]); the token
//! endpoint can be made to fail. Time is the clock the test gives.

mod api;
mod oauth;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::{delete, get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey::clock::SharedClock;
use latchkey::rng::{Rng, SystemRng};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{Landing, walk};

/// GitHub's lifetimes of expiring user tokens: 8 hours, 6 months.
pub const ACCESS_TOKEN_TTL: i64 = 28_800;
pub const REFRESH_TOKEN_TTL: i64 = 15_897_600;

/// A registered app.
#[derive(Debug, Clone)]
pub struct GithubApp {
    pub client_id: String,
    pub client_secret: String,
    /// The registered callback URL.
    pub callback_url: String,
    /// Expiring user tokens with refresh tokens (GitHub Apps), instead of
    /// tokens that last until revoked (OAuth apps).
    pub expiring_tokens: bool,
}

impl GithubApp {
    pub fn new(client_id: &str, client_secret: &str, callback_url: &str) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            callback_url: callback_url.into(),
            expiring_tokens: false,
        }
    }

    pub fn expiring(mut self) -> Self {
        self.expiring_tokens = true;
        self
    }
}

/// One of a user's email addresses, as `/user/emails` lists it.
#[derive(Debug, Clone)]
pub struct GithubEmail {
    pub email: String,
    pub primary: bool,
    pub verified: bool,
    /// `public`, `private`, or none.
    pub visibility: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GithubUser {
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    pub emails: Vec<GithubEmail>,
}

impl GithubUser {
    /// A user whose one address is primary and verified; `public` puts it
    /// in `/user`'s `email` too.
    pub fn new(id: u64, login: &str, email: &str, public: bool) -> Self {
        Self {
            id,
            login: login.into(),
            name: None,
            emails: vec![GithubEmail {
                email: email.into(),
                primary: true,
                verified: true,
                visibility: Some(if public { "public" } else { "private" }.into()),
            }],
        }
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// `/user`'s `email`: the public primary address, else null.
    fn public_email(&self) -> Option<&str> {
        self.emails
            .iter()
            .find(|e| e.primary && e.visibility.as_deref() == Some("public"))
            .map(|e| e.email.as_str())
    }
}

struct Code {
    client_id: String,
    user_id: u64,
    scopes: Vec<String>,
    redirect_uri: Option<String>,
    challenge: Option<String>,
    expires_at: i64,
}

struct Token {
    client_id: String,
    user_id: u64,
    scopes: Vec<String>,
    expires_at: Option<i64>,
}

struct Refresh {
    client_id: String,
    user_id: u64,
    scopes: Vec<String>,
    expires_at: i64,
    access_token: String,
}

#[derive(Default)]
struct World {
    signed_in: Option<u64>,
    refuse: bool,
    codes: HashMap<String, Code>,
    tokens: HashMap<String, Token>,
    refresh: HashMap<String, Refresh>,
    counts: HashMap<String, u64>,
    /// The next `.1` token requests are answered `.0`.
    fail: (u16, u32),
}

struct Inner {
    apps: Vec<GithubApp>,
    users: Vec<GithubUser>,
    clock: SharedClock,
    world: Mutex<World>,
}

type Shared = Arc<Inner>;

impl Inner {
    fn now(&self) -> i64 {
        self.clock.now()
    }

    fn app(&self, client_id: &str) -> Option<&GithubApp> {
        self.apps.iter().find(|a| a.client_id == client_id)
    }

    fn count(&self, key: &str) {
        *self
            .world
            .lock()
            .unwrap()
            .counts
            .entry(key.to_string())
            .or_default() += 1;
    }
}

/// The running server. Dropping it stops it.
pub struct GithubServer {
    /// `http://127.0.0.1:PORT`: both github.com's part (`/login/oauth/…`)
    /// and api.github.com's (`/user`, `/applications/…`).
    pub base: String,
    inner: Shared,
    task: JoinHandle<()>,
}

impl Drop for GithubServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GithubServer {
    pub async fn start(apps: Vec<GithubApp>, users: Vec<GithubUser>, clock: SharedClock) -> Self {
        let inner = Arc::new(Inner {
            apps,
            users,
            clock,
            world: Mutex::new(World::default()),
        });
        let app = Router::new()
            .route("/login/oauth/authorize", get(oauth::authorize))
            .route("/login/oauth/access_token", post(oauth::access_token))
            .route("/user", get(api::user))
            .route("/user/emails", get(api::user_emails))
            .route("/applications/{client_id}/{what}", delete(api::delete))
            .with_state(inner.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        GithubServer {
            base: format!("http://{addr}"),
            inner,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The user signed in at "GitHub" from now on, by login.
    pub fn sign_in(&self, login: &str) {
        let user = self.inner.users.iter().find(|u| u.login == login);
        self.inner.world.lock().unwrap().signed_in = Some(user.expect("a configured user").id);
    }

    /// From now on the signed-in user refuses (or grants) the authorization.
    pub fn refuse(&self, refuse: bool) {
        self.inner.world.lock().unwrap().refuse = refuse;
    }

    /// Requests so far to `authorize`, `access_token` (also by grant type:
    /// `access_token:authorization_code`, `access_token:refresh_token`),
    /// `user`, `user/emails`, `applications/grant`, `applications/token`.
    pub fn count(&self, endpoint: &str) -> u64 {
        let world = self.inner.world.lock().unwrap();
        world.counts.get(endpoint).copied().unwrap_or(0)
    }

    /// The next `count` requests to the token endpoint are answered `status`
    /// with an HTML page, unprocessed.
    pub fn fail_token_endpoint(&self, status: u16, count: u32) {
        self.inner.world.lock().unwrap().fail = (status, count);
    }

    /// Goes to `url` (the authorize URL, or a latchkey URL that redirects
    /// there) and returns where "GitHub" sent the browser back to.
    pub async fn authorize(&self, browser: &reqwest::Client, url: &str) -> String {
        match walk(browser, url, &self.base).await {
            Landing::Left(to) => to,
            Landing::Page { url, status, body } => {
                panic!("GitHub did not send the browser back from {url}: {status}\n{body}")
            }
        }
    }
}

fn params(query: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `bytes` random bytes in hexadecimal, like GitHub's codes.
fn hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    SystemRng.fill(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// `(user, password)` of an HTTP Basic header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}
