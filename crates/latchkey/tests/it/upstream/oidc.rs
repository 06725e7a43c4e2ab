//! An OpenID provider as a real process: `tests/upstream/oidc/server.mjs`
//! (`oidc-provider`, pinned in its `package-lock.json`) started with the
//! clients and users a test gives, on 127.0.0.1 and a free port. The process
//! is killed when the handle drops (a panicking test included) and exits by
//! itself when this process goes, its standard input closing.
//!
//! Its npm packages are installed on first use when missing (`npm ci`, once,
//! under a file lock, so parallel tests and test binaries do not race);
//! without node or npm the test fails, saying so.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Landing, form_action, walk};

/// A client registered at the provider (any other client metadata of
/// `oidc-provider` goes in `extra`).
#[derive(Debug, Clone, Serialize)]
pub struct OidcClient {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub redirect_uris: Vec<String>,
    /// `client_secret_basic` (the default), `client_secret_post`, `none`…
    pub token_endpoint_auth_method: String,
    /// RS256 (the default), PS256, ES256 or EdDSA.
    pub id_token_signed_response_alg: String,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl OidcClient {
    /// A confidential client authenticating with HTTP Basic, ID tokens in RS256.
    pub fn confidential(client_id: &str, secret: &str, redirect_uri: &str) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(secret.into()),
            redirect_uris: vec![redirect_uri.into()],
            token_endpoint_auth_method: "client_secret_basic".into(),
            id_token_signed_response_alg: "RS256".into(),
            extra: serde_json::Map::new(),
        }
    }

    pub fn alg(mut self, alg: &str) -> Self {
        self.id_token_signed_response_alg = alg.into();
        self
    }

    pub fn auth_method(mut self, method: &str) -> Self {
        self.token_endpoint_auth_method = method.into();
        self
    }
}

/// A user who can sign in at the provider with their email (or `sub`) and
/// password.
#[derive(Debug, Clone, Serialize)]
pub struct OidcUser {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub password: String,
}

impl OidcUser {
    /// A user with a verified email.
    pub fn new(sub: &str, email: &str, password: &str) -> Self {
        Self {
            sub: sub.into(),
            email: Some(email.into()),
            email_verified: true,
            name: None,
            password: password.into(),
        }
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn unverified(mut self) -> Self {
        self.email_verified = false;
        self
    }
}

/// What the provider is started with; lifetimes in seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OidcConfig {
    pub clients: Vec<OidcClient>,
    pub users: Vec<OidcUser>,
    /// The provider's clock, frozen at these epoch seconds until moved
    /// ([`OidcProvider::set_clock`]); the wall clock when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub now: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_ttl: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_ttl: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl: Option<u64>,
    /// `true`: profile and email claims at userinfo only, as the OpenID
    /// specification has it for the code flow; `false` (the default): also
    /// in the ID token, as Google and Auth0 do.
    pub conform_id_token_claims: bool,
}

/// How the next ID tokens are spoiled ([`OidcProvider::tamper_id_tokens`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Another `nonce`, re-signed with the real key.
    Nonce,
    /// Another `aud`, re-signed with the real key.
    Audience,
    /// Another `iss`, re-signed with the real key.
    Issuer,
    /// Expired an hour ago, re-signed with the real key.
    Expired,
    /// One byte of the signature changed.
    Signature,
    /// Signed by a key not in the JWKS, under the `kid` of one that is.
    ForeignKey,
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256 keyed with the RSA public key.
    AlgConfusion,
}

impl Tamper {
    fn mode(self) -> &'static str {
        match self {
            Tamper::Nonce => "nonce",
            Tamper::Audience => "audience",
            Tamper::Issuer => "issuer",
            Tamper::Expired => "expired",
            Tamper::Signature => "signature",
            Tamper::ForeignKey => "foreign_key",
            Tamper::AlgNone => "alg_none",
            Tamper::AlgConfusion => "alg_confusion",
        }
    }
}

/// How a login attempt at the provider ended.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The provider sent the browser back: the URL it sent it to (the
    /// callback, with `code` or `error`), not visited.
    Redirected(String),
    /// The provider answered a page instead: the login form again (wrong
    /// password), or an error page.
    Page { status: StatusCode, body: String },
}

/// A running provider. Dropping it kills the process.
pub struct OidcProvider {
    issuer: String,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const READY_TIMEOUT: Duration = Duration::from_secs(60);

impl OidcProvider {
    /// Starts the provider and waits for its readiness line.
    pub async fn start(config: OidcConfig) -> Self {
        let mut config = serde_json::to_value(&config).unwrap();
        config["port"] = json!(0);
        tokio::task::spawn_blocking(move || Self::spawn(&config.to_string()))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    fn spawn(config: &str) -> Self {
        let dir = package_dir();
        ensure_installed(&dir);
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .env("OIDC_PROVIDER_CONFIG", config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node (Node.js 20.19 or newer is needed): {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut provider = OidcProvider {
            issuer: String::new(),
            child,
            stderr,
        };
        let line = rx.recv_timeout(READY_TIMEOUT).unwrap_or_default();
        let ready: Value = serde_json::from_str(line.trim()).unwrap_or(Value::Null);
        let Some(issuer) = ready["issuer"].as_str() else {
            let status = provider.child.try_wait().ok().flatten();
            panic!(
                "the OpenID provider did not start (exit: {status:?}); stdout: {line:?}; stderr:\n{}",
                provider.stderr()
            );
        };
        provider.issuer = issuer.to_string();
        provider
    }

    /// What the process wrote on standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `http://127.0.0.1:PORT/`, trailing slash included.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `path` (starting with `/`) on the provider.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer.trim_end_matches('/'), path)
    }

    /// Goes to `url` (the provider's authorization URL, or a latchkey URL
    /// that redirects there), signs in through the provider's login form
    /// and returns the URL the provider sent the browser back to. Panics
    /// unless the provider redirected back.
    pub async fn login(
        &self,
        browser: &reqwest::Client,
        url: &str,
        user: &str,
        password: &str,
    ) -> String {
        match self.submit_login(browser, url, user, password).await {
            LoginOutcome::Redirected(to) => to,
            LoginOutcome::Page { status, body } => {
                panic!("the provider did not send the browser back: {status}\n{body}")
            }
        }
    }

    /// Like [`login`](Self::login), telling how it ended. A browser already
    /// signed in at the provider is sent back without a form.
    pub async fn submit_login(
        &self,
        browser: &reqwest::Client,
        url: &str,
        user: &str,
        password: &str,
    ) -> LoginOutcome {
        let fields = [("username", user), ("password", password)];
        self.through_form(browser, url, "login", &fields).await
    }

    /// Goes to `url` and presses the login page's Cancel button: the
    /// provider sends the browser back with `error=access_denied`.
    pub async fn cancel_login(&self, browser: &reqwest::Client, url: &str) -> String {
        match self.through_form(browser, url, "abort", &[]).await {
            LoginOutcome::Redirected(to) => to,
            LoginOutcome::Page { status, body } => {
                panic!("cancel did not redirect: {status}\n{body}")
            }
        }
    }

    async fn through_form(
        &self,
        browser: &reqwest::Client,
        url: &str,
        form_id: &str,
        fields: &[(&str, &str)],
    ) -> LoginOutcome {
        let (page_url, html) = match walk(browser, url, &self.issuer).await {
            Landing::Left(to) => return LoginOutcome::Redirected(to),
            Landing::Page { url, status, body } => {
                if !body.contains("<form id=\"login\"") {
                    return LoginOutcome::Page { status, body };
                }
                (url, body)
            }
        };
        let action = form_action(&page_url, &html, form_id).expect("the login page has the form");
        let res = browser.post(&action).form(fields).send().await.unwrap();
        let base = url::Url::parse(&action).unwrap();
        match super::redirect_target(&base, &res) {
            Some(next) => match walk(browser, next.as_str(), &self.issuer).await {
                Landing::Left(to) => LoginOutcome::Redirected(to),
                Landing::Page { status, body, .. } => LoginOutcome::Page { status, body },
            },
            None => LoginOutcome::Page {
                status: res.status(),
                body: res.text().await.unwrap(),
            },
        }
    }

    async fn test_call(&self, path: &str, body: Option<Value>) -> Value {
        let client = super::http();
        let url = self.url(&format!("/__test{path}"));
        let req = match body {
            Some(b) => client.post(url).json(&b),
            None => client.get(url),
        };
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "/__test{path}");
        res.json().await.unwrap()
    }

    /// Requests per endpoint (`discovery`, `jwks`, `authorization`, `token`,
    /// `userinfo`, `revocation`, `introspection`) under `requests`, and token
    /// requests per grant type under `token`, since start or the last reset.
    pub async fn counters(&self) -> Value {
        self.test_call("/counters", None).await
    }

    /// Token requests with this `grant_type`, failed ones included.
    pub async fn token_requests(&self, grant_type: &str) -> u64 {
        self.counters().await["token"][grant_type]
            .as_u64()
            .unwrap_or(0)
    }

    /// Requests to one endpoint (see [`counters`](Self::counters)).
    pub async fn requests(&self, endpoint: &str) -> u64 {
        self.counters().await["requests"][endpoint]
            .as_u64()
            .unwrap_or(0)
    }

    pub async fn reset_counters(&self) {
        self.test_call("/counters/reset", Some(json!({}))).await;
    }

    /// Revokes every grant of the user and what was issued under them, as
    /// the user would in the provider's settings: their refresh tokens then
    /// answer `invalid_grant`. Returns how many grants there were.
    pub async fn revoke_grants(&self, sub: &str) -> u64 {
        let path = format!("/users/{}/revoke-grants", urlencode(sub));
        self.test_call(&path, Some(json!({}))).await["revoked"]
            .as_u64()
            .unwrap()
    }

    /// The next `count` token requests are answered `status` (a plain-text
    /// body), without being processed.
    pub async fn fail_token_endpoint(&self, status: u16, count: u32) {
        let body = json!({ "count": count, "fail_status": status });
        self.test_call("/token-endpoint", Some(body)).await;
    }

    /// The next `count` token requests wait `delay` before being processed.
    pub async fn slow_token_endpoint(&self, delay: Duration, count: u32) {
        let body = json!({ "count": count, "delay_ms": delay.as_millis() as u64 });
        self.test_call("/token-endpoint", Some(body)).await;
    }

    /// The next `count` ID tokens the token endpoint answers are spoiled.
    pub async fn tamper_id_tokens(&self, how: Tamper, count: u32) {
        let body = json!({ "count": count, "tamper": how.mode() });
        self.test_call("/id-token", Some(body)).await;
    }

    /// Sets the provider's clock (epoch seconds); it stays there until moved.
    pub async fn set_clock(&self, now: i64) {
        self.test_call("/clock", Some(json!({ "now": now }))).await;
    }

    /// Moves the provider's clock; returns the new time.
    pub async fn advance_clock(&self, seconds: i64) -> i64 {
        self.test_call("/clock", Some(json!({ "advance": seconds })))
            .await["now"]
            .as_i64()
            .unwrap()
    }
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `crates/latchkey/tests/upstream/oidc`.
pub fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upstream/oidc")
}

/// Installs the provider's npm packages when they are missing or older than
/// the lock file: once per process, under a file lock across processes.
fn ensure_installed(dir: &Path) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let lock_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("upstream-oidc-npm.lock");
        let lock = std::fs::File::create(&lock_path).unwrap();
        lock.lock().unwrap();
        if !installed(dir) {
            let status = Command::new("npm")
                .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
                .current_dir(dir)
                .stdout(Stdio::null())
                .status()
                .unwrap_or_else(|e| panic!("cannot run npm (needed for the OpenID provider): {e}"));
            assert!(status.success(), "npm ci failed in {}", dir.display());
            assert!(installed(dir), "npm ci left {} incomplete", dir.display());
        }
        lock.unlock().unwrap();
    });
}

/// Whether `node_modules` is there and no older than `package-lock.json`
/// (npm writes `node_modules/.package-lock.json` on every install).
pub fn installed(dir: &Path) -> bool {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        modified(dir.join("node_modules/.package-lock.json")),
        modified(dir.join("package-lock.json")),
    ) {
        (Some(stamp), Some(lock)) => {
            stamp >= lock && dir.join("node_modules/oidc-provider/package.json").exists()
        }
        _ => false,
    }
}
