//! An in-process latchkey on an ephemeral port, with a temporary SQLite
//! file, a manual clock and fast password hashing, driven over real HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::app::AppState;
use latchkey::clock::ManualClock;
use latchkey::crypto::hash::sha256_b64url;
use latchkey::crypto::password::PasswordHasherConfig;
pub use latchkey::http::serve::ServeOptions;
use latchkey::rng::{RngExt, SystemRng};
use latchkey::server::{Database, MasterKeySource, Options};
use latchkey::store::postgres::PoolOptions;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;

pub const START: i64 = 1_800_000_000;
pub const ALICE: &str = "alice@example.com";
pub const ALICE_PASSWORD: &str = "Tr0ub4dor&3-horse";
pub const API: &str = "https://api.acme.test/";
pub const BACKEND_SECRET: &str = "s3cret-value";
pub const APP: &str = "http://localhost:5173";
/// Provider secrets the test servers know, by environment-variable name.
pub const SMTP_PASSWORD: &str = "smtp-test-password";
pub const TWILIO_TOKEN: &str = "twilio-test-token";
pub const WEBHOOK_SECRET: &str = "webhook-test-secret";

/// The tenant file most tests use, for a server on `port`.
pub fn acme(port: u16) -> String {
    format!(
        r#"
tenant: {{ name: acme, domains: ["localhost:{port}"] }}
my_account_api: {{ active: true, user_policy: require_client_grant, require_2fa: false,
                  rate_limits: {{ tenant_per_second: 25, user_per_minute: 0 }} }}
factors: [password, totp, recovery-code]
connections:
  - name: Username-Password-Authentication
    password_policy: {{ min_length: 8 }}
  - name: Partners
clients:
  - {{ client_id: spa, name: Demo SPA, app_type: spa, callbacks: ["{APP}/cb"],
      allowed_origins: ["{APP}"], web_origins: ["{APP}"], allowed_logout_urls: ["{APP}/"],
      grant_types: [authorization_code, refresh_token, password,
                    "http://auth0.com/oauth/grant-type/password-realm"] }}
  - {{ client_id: web, app_type: regular_web, client_secret: "web-secret-value",
      callbacks: ["https://web.acme.test/callback"], grant_types: [authorization_code, refresh_token] }}
  - {{ client_id: backend, client_secret: "{BACKEND_SECRET}", app_type: regular_web, grant_types: [client_credentials] }}
  - {{ client_id: nogrants, app_type: spa, callbacks: ["{APP}/cb"], grant_types: [authorization_code] }}
client_grants:
  - {{ client_id: spa, audience: "http://localhost:{port}/me/", subject_type: user,
      scope: [read:me:authentication_methods, create:me:authentication_methods,
              update:me:authentication_methods, delete:me:authentication_methods, read:me:factors] }}
  - {{ client_id: backend, audience: "{API}", subject_type: client, scope: [read:things] }}
resource_servers: [{{ identifier: "{API}", scopes: [read:things, write:things] }}]
users:
  - {{ email: {ALICE}, password: "{ALICE_PASSWORD}", connection: Username-Password-Authentication,
      email_verified: true, user_id: "auth0|alice", name: Alice Example }}
  - {{ email: bob@example.com, password: "B0b-has-a-long-password", connection: Partners, user_id: "auth0|bob" }}
"#
    )
}

/// A second tenant on the same server, reached as `127.0.0.1:{port}`.
pub fn other_tenant(port: u16) -> String {
    format!(
        r#"
tenant: {{ name: other, domains: ["127.0.0.1:{port}"] }}
connections: [{{ name: Username-Password-Authentication }}]
clients:
  - {{ client_id: spa, app_type: spa, callbacks: ["{APP}/cb"],
      grant_types: [authorization_code, refresh_token, password] }}
client_grants:
  - {{ client_id: spa, audience: "http://127.0.0.1:{port}/me/", subject_type: user, scope: [read:me:factors] }}
users:
  - {{ email: {ALICE}, password: "{ALICE_PASSWORD}", connection: Username-Password-Authentication, user_id: "auth0|alice" }}
"#
    )
}

/// Which database the integration tests run on: SQLite by default,
/// PostgreSQL with `LATCHKEY_TEST_BACKEND=postgres` (and
/// `LATCHKEY_TEST_POSTGRES_URL`), each server in a fresh schema.
pub fn postgres_url() -> Option<String> {
    match std::env::var("LATCHKEY_TEST_BACKEND").as_deref() {
        Ok("postgres") => Some(
            std::env::var("LATCHKEY_TEST_POSTGRES_URL")
                .expect("LATCHKEY_TEST_BACKEND=postgres needs LATCHKEY_TEST_POSTGRES_URL"),
        ),
        Ok("sqlite") | Err(_) => None,
        Ok(other) => panic!("unknown LATCHKEY_TEST_BACKEND {other}"),
    }
}

/// A fresh, empty schema in the test database.
pub async fn fresh_schema(url: &str) -> String {
    let schema = format!("lk_{}", SystemRng.alnum(12).to_lowercase());
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    schema
}

/// The database of a test server, for the command line: extra arguments.
pub async fn database_args() -> Vec<String> {
    match postgres_url() {
        None => Vec::new(),
        Some(url) => {
            let schema = fresh_schema(&url).await;
            vec![
                "--database-url".into(),
                url,
                "--database-schema".into(),
                schema,
            ]
        }
    }
}

pub struct TestServer {
    pub port: u16,
    /// `http://localhost:PORT`
    pub base: String,
    pub issuer: String,
    pub state: Arc<AppState>,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL URL and schema, when the tests run on PostgreSQL.
    pub postgres: Option<(String, String)>,
    /// The master key its secrets are sealed with.
    pub master_key: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with_tenants(&[acme, other_tenant]).await
    }

    pub async fn with_tenants(files: &[fn(u16) -> String]) -> Self {
        Self::configured(files, |_| {}).await
    }

    /// A server whose options the test adjusts before it opens.
    pub async fn configured(
        files: &[fn(u16) -> String],
        configure: impl FnOnce(&mut Options),
    ) -> Self {
        Self::serving(files, configure, ServeOptions::default()).await
    }

    /// A server with the edge's limits of `serve` (timeouts, connections).
    pub async fn serving(
        files: &[fn(u16) -> String],
        configure: impl FnOnce(&mut Options),
        serve: ServeOptions,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let clock = ManualClock::new(START);
        let key: [u8; 32] = SystemRng.bytes();
        let master_key = URL_SAFE_NO_PAD.encode(key);
        let mut opts = Options::new(
            dir.path().to_path_buf(),
            MasterKeySource::Value(master_key.clone()),
        );
        opts.clock = Arc::new(clock.clone());
        opts.passwords = PasswordHasherConfig::fast_for_tests();
        opts.secrets = Arc::new(latchkey::services::delivery::MapSecrets(
            [
                ("SMTP_PASSWORD", SMTP_PASSWORD),
                ("TWILIO_TOKEN", TWILIO_TOKEN),
                ("SMS_WEBHOOK_SECRET", WEBHOOK_SECRET),
                ("IDP_CLIENT_SECRET", crate::idp::IDP_SECRET),
                // The variables `tenant export` names the acme clients' secrets by.
                ("LATCHKEY_CLIENT_SECRET_WEB", "web-secret-value"),
                ("LATCHKEY_CLIENT_SECRET_BACKEND", BACKEND_SECRET),
                ("LATCHKEY_CLIENT_SECRET_API_APP", "api-app-secret-value"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ));
        // The SMS receivers of the tests listen on loopback.
        opts.outbound.loopback = true;
        if let Some(url) = postgres_url() {
            let schema = fresh_schema(&url).await;
            opts.database = Database::Postgres {
                url,
                pool: PoolOptions {
                    schema: Some(schema),
                    max_connections: 5,
                    ..PoolOptions::default()
                },
            };
        }
        configure(&mut opts);
        let master_key = match &opts.master_key {
            MasterKeySource::Value(k) => k.clone(),
            _ => master_key,
        };
        let postgres = match &opts.database {
            Database::Postgres { url, pool } => {
                pool.schema.clone().map(|schema| (url.clone(), schema))
            }
            Database::Sqlite => None,
        };
        let state = latchkey::server::open(opts).await.unwrap();
        for f in files {
            latchkey::tenant::apply::apply_text(&state, &f(port))
                .await
                .unwrap();
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        tokio::spawn(async move {
            let _ = latchkey::app::serve_with(
                listener,
                served,
                serve,
                async {
                    let _ = rx.await;
                },
                std::future::pending(),
            )
            .await;
        });
        let host = format!("localhost:{port}");
        Self {
            port,
            base: format!("http://{host}"),
            issuer: format!("http://{host}/"),
            state,
            clock,
            dir,
            postgres,
            master_key,
            shutdown: Some(tx),
        }
    }

    /// Two nodes on one PostgreSQL schema (`LATCHKEY_TEST_POSTGRES_URL`,
    /// whichever backend the suite runs on), as a cluster has them: the
    /// same master key and clock, each its own caches and refreshes under
    /// way; `files` applied through the first. The second serves the first's
    /// hosts: reach it with [`TestServer::as_host`].
    pub async fn postgres_pair(files: &[fn(u16) -> String]) -> (TestServer, TestServer) {
        let url = std::env::var("LATCHKEY_TEST_POSTGRES_URL").expect(
            "two nodes need PostgreSQL: set LATCHKEY_TEST_POSTGRES_URL (scripts/test does)",
        );
        let schema = fresh_schema(&url).await;
        let on_schema = |opts: &mut Options| {
            opts.database = Database::Postgres {
                url: url.clone(),
                pool: PoolOptions {
                    schema: Some(schema.clone()),
                    max_connections: 5,
                    ..PoolOptions::default()
                },
            };
        };
        let first = Self::configured(files, on_schema).await;
        let (key, clock) = (first.master_key.clone(), first.clock.clone());
        let mut second = Self::configured(&[], |opts| {
            on_schema(opts);
            opts.master_key = MasterKeySource::Value(key);
            opts.clock = Arc::new(clock);
        })
        .await;
        second.clock = first.clock.clone();
        (first, second)
    }

    /// A request to this server for `path` on `host` (another node's
    /// public host), as a load balancer would send it.
    pub fn as_host(
        &self,
        method: reqwest::Method,
        host: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http()
            .request(method, format!("http://127.0.0.1:{}{path}", self.port))
            .header(reqwest::header::HOST, host)
    }

    /// Everything the database holds, as bytes, to search for secrets.
    pub async fn database_dump(&self) -> Vec<u8> {
        match &self.postgres {
            None => {
                let url = format!("sqlite://{}", self.dir.path().join("latchkey.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                let mut all = Vec::new();
                for entry in std::fs::read_dir(self.dir.path()).unwrap() {
                    let p = entry.unwrap().path();
                    if p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("latchkey.db")
                    {
                        all.extend(std::fs::read(&p).unwrap());
                    }
                }
                all
            }
            Some((url, schema)) => {
                use sqlx::Row;
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                let tables: Vec<String> = sqlx::query(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                )
                .bind(schema)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("table_name"))
                .collect();
                assert!(tables.len() > 5, "{tables:?}");
                let mut all = Vec::new();
                for t in tables {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT row_to_json(x)::text AS j FROM {schema}.{t} x"
                    )))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                    for r in rows {
                        all.extend(r.get::<String, _>("j").into_bytes());
                    }
                }
                pool.close().await;
                all
            }
        }
    }

    /// Runs `sql` (statements separated by `;`) on the server's database,
    /// beside the server: on PostgreSQL in the server's schema.
    pub async fn sql(&self, sql: &str) {
        use sqlx::Connection;
        match &self.postgres {
            None => {
                let url = format!("sqlite://{}", self.dir.path().join("latchkey.db").display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
            }
            Some((url, schema)) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "SET search_path TO {schema}; {sql}"
                )))
                .execute(&mut c)
                .await
                .unwrap();
                c.close().await.unwrap();
            }
        }
    }

    pub fn clock_now(&self) -> i64 {
        use latchkey::clock::Clock;
        self.clock.now()
    }

    pub fn my_account_audience(&self) -> String {
        format!("{}me/", self.issuer)
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "a test client of the server under test, not an outbound request of latchkey"
    )]
    fn builder(&self) -> reqwest::ClientBuilder {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        reqwest::Client::builder()
            .redirect(Policy::none())
            .resolve("localhost", addr)
    }

    /// A plain HTTP client: no cookies, no redirects followed.
    pub fn http(&self) -> reqwest::Client {
        self.builder().build().unwrap()
    }

    /// A browser whose cookies the test can read: a client, and its jar
    /// (`jar.cookies(&url)` is the `Cookie` header it would send there).
    pub fn browser_with_jar(&self) -> (reqwest::Client, std::sync::Arc<reqwest::cookie::Jar>) {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let client = self.builder().cookie_provider(jar.clone()).build().unwrap();
        (client, jar)
    }

    /// A client that keeps cookies, like a browser.
    pub fn browser(&self) -> reqwest::Client {
        self.builder().cookie_store(true).build().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a form to `/oauth/token`.
    pub async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let res = self
            .http()
            .post(self.url("/oauth/token"))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    /// The refresh-token grant for the `spa` client.
    pub async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// Revokes a refresh token of the `spa` client (`/oauth/revoke`).
    pub async fn revoke(&self, refresh_token: &str) -> StatusCode {
        self.http()
            .post(self.url("/oauth/revoke"))
            .form(&[("client_id", "spa"), ("token", refresh_token)])
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn password_login(&self, scope: &str, audience: Option<&str>) -> Value {
        let mut form = vec![
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("scope", scope),
        ];
        if let Some(a) = audience {
            form.push(("audience", a));
        }
        let (status, body) = self.token(&form).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

/// The claims of a JWT, unverified (tests verify signatures separately).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub fn pkce() -> (String, String) {
    let verifier = SystemRng.token(32);
    let challenge = sha256_b64url(verifier.as_bytes());
    (verifier, challenge)
}

/// Pulls `name="…" value="…"` out of an HTML form.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html_unescape(&html[start..start + end]))
}

/// `form` posted to `path` from `browser` (its cookies with it).
pub async fn post_form(
    s: &TestServer,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser.post(s.url(path)).form(form).send().await.unwrap()
}

/// A page's body, after checking its status (the body in the message).
pub async fn page_body(res: reqwest::Response, status: StatusCode) -> String {
    let got = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    body
}

/// A six-digit code other than `right`.
pub fn wrong_code(right: &str) -> String {
    if right == "000000" {
        "000001"
    } else {
        "000000"
    }
    .to_string()
}

/// Undoes the HTML escaping of attribute values.
pub fn html_unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// An authorization request as a browser would make it.
pub struct AuthRequest {
    pub client_id: &'static str,
    pub redirect_uri: String,
    pub scope: String,
    pub audience: Option<String>,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub challenge: String,
    pub extra: Vec<(&'static str, String)>,
}

impl AuthRequest {
    pub fn new(scope: &str) -> Self {
        let (verifier, challenge) = pkce();
        Self {
            client_id: "spa",
            redirect_uri: format!("{APP}/cb"),
            scope: scope.to_string(),
            audience: None,
            state: SystemRng.token(12),
            nonce: SystemRng.token(12),
            verifier,
            challenge,
            extra: Vec::new(),
        }
    }

    pub fn audience(mut self, a: &str) -> Self {
        self.audience = Some(a.to_string());
        self
    }

    pub fn param(mut self, k: &'static str, v: &str) -> Self {
        self.extra.push((k, v.to_string()));
        self
    }

    pub fn url(&self, server: &TestServer) -> String {
        let mut q: Vec<(&str, String)> = vec![
            ("response_type", "code".into()),
            ("client_id", self.client_id.into()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("scope", self.scope.clone()),
            ("state", self.state.clone()),
            ("nonce", self.nonce.clone()),
            ("code_challenge", self.challenge.clone()),
            ("code_challenge_method", "S256".into()),
        ];
        if let Some(a) = &self.audience {
            q.push(("audience", a.clone()));
        }
        q.extend(self.extra.iter().cloned());
        format!(
            "{}?{}",
            server.url("/authorize"),
            serde_urlencoded::to_string(&q).unwrap()
        )
    }
}

/// Opens the login page, signs in, and returns the final response (the
/// redirect back to the app, or the page in the chosen response mode).
pub async fn login_through_page(
    server: &TestServer,
    browser: &reqwest::Client,
    req: &AuthRequest,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = browser.get(req.url(server)).send().await.unwrap();
    if page.status() == StatusCode::FOUND {
        // Already signed in: single sign-on answers at once.
        return page;
    }
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    submit_login(browser, &server.url("/login"), &html, email, password).await
}

/// `/authorize` with exactly these parameters (no defaults added).
pub fn authorize_url(s: &TestServer, params: &[(&str, &str)]) -> String {
    format!(
        "{}?{}",
        s.url("/authorize"),
        serde_urlencoded::to_string(params).unwrap()
    )
}

/// Opens `url`, signs Alice in on the login page if it shows, and returns
/// the final answer (a refusal or a single sign-on answer as it came).
pub async fn sign_in_alice(
    s: &TestServer,
    browser: &reqwest::Client,
    url: &str,
) -> reqwest::Response {
    let res = browser.get(url).send().await.unwrap();
    if res.status() != StatusCode::OK {
        return res;
    }
    let html = res.text().await.unwrap();
    submit_login(browser, &s.url("/login"), &html, ALICE, ALICE_PASSWORD).await
}

/// Submits the hosted login form `html` to `action` as `email`.
pub async fn submit_login(
    browser: &reqwest::Client,
    action: &str,
    html: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let tx = hidden_input(html, "tx").expect("login form has a transaction");
    browser
        .post(action)
        .form(&[
            ("tx", tx.as_str()),
            ("username", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// Logs Alice in through the hosted page and returns the code.
pub async fn code_for(server: &TestServer, browser: &reqwest::Client, req: &AuthRequest) -> String {
    let res = login_through_page(server, browser, req, ALICE, ALICE_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&req.redirect_uri), "{location}");
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some(req.state.as_str())
    );
    query_param(&location, "code").expect("code in the redirect")
}

pub async fn exchange(server: &TestServer, req: &AuthRequest, code: &str) -> (StatusCode, Value) {
    server
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", req.client_id),
            ("code", code),
            ("redirect_uri", &req.redirect_uri),
            ("code_verifier", &req.verifier),
        ])
        .await
}

pub async fn userinfo(server: &TestServer, access_token: &str) -> (StatusCode, Value) {
    let res = server
        .http()
        .get(server.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Every My Account scope Alice's SPA may hold under the acme tenant's grant.
pub const ME_SCOPES: &str = "read:me:authentication_methods create:me:authentication_methods \
     update:me:authentication_methods delete:me:authentication_methods read:me:factors";

/// The answer of a `/me/v1` call.
#[derive(Debug)]
pub struct MeResponse {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl MeResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the ErrorResponse shape and returns its `type`.
    pub fn error_type(&self) -> String {
        let obj = self
            .body
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {}", self.body));
        for k in obj.keys() {
            assert!(
                ["type", "status", "title", "detail", "validation_errors"].contains(&k.as_str()),
                "unexpected key {k} in {}",
                self.body
            );
        }
        assert_eq!(self.body["status"], self.status.as_u16(), "{}", self.body);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        self.body["type"].as_str().unwrap().to_string()
    }
}

impl TestServer {
    /// A My Account token for `user` (Alice by default) with `scope`.
    pub async fn me_token_for(
        &self,
        username: &str,
        password: &str,
        realm: Option<&str>,
        scope: &str,
    ) -> String {
        let aud = self.my_account_audience();
        let mut form = vec![
            ("client_id", "spa"),
            ("username", username),
            ("password", password),
            ("audience", aud.as_str()),
            ("scope", scope),
        ];
        match realm {
            Some(r) => {
                form.push((
                    "grant_type",
                    "http://auth0.com/oauth/grant-type/password-realm",
                ));
                form.push(("realm", r));
            }
            None => form.push(("grant_type", "password")),
        }
        let (status, body) = self.token(&form).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn me_token(&self, scope: &str) -> String {
        self.me_token_for(ALICE, ALICE_PASSWORD, None, scope).await
    }

    /// Calls `/me/v1{path}`.
    /// Confirms an enrollment `started` by `POST /me/v1/authentication-methods`
    /// with the one-time code the user received.
    pub async fn me_verify_code(
        &self,
        token: &str,
        started: &MeResponse,
        code: &str,
    ) -> MeResponse {
        let location = started.header("location").unwrap().to_string();
        self.me(
            "POST",
            &format!("{location}/verify"),
            Some(token),
            Some(
                serde_json::json!({"auth_session": started.body["auth_session"], "otp_code": code}),
            ),
        )
        .await
    }

    pub async fn me(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> MeResponse {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.url(&format!("/me/v1{path}"))
        };
        let mut req = self
            .http()
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        MeResponse {
            status,
            headers,
            body,
        }
    }
}

/// The current TOTP code for a base32 secret, as an authenticator app shows it.
pub fn totp_now(manual_input_code: &str, now: i64) -> String {
    let secret = base32_decode(manual_input_code);
    latchkey::crypto::otp::code_at(&secret, latchkey::crypto::otp::step_of(now))
}

pub fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u64, 0);
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u64;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The method ID at the end of a `Location`, decoded as SDKs do.
pub fn id_from_location(location: &str) -> String {
    let last = location.rsplit('/').next().unwrap();
    percent_encoding::percent_decode_str(last)
        .decode_utf8()
        .unwrap()
        .into_owned()
}
