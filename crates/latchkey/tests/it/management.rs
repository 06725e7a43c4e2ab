//! What the Management API tests share: a tenant with machine-to-machine
//! clients granted Management API scopes, a second tenant beside it, tokens
//! and calls.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

pub const ADMIN_SECRET: &str = "admin-secret-value";
/// Every users scope.
pub const USERS_SCOPES: &str = "read:users create:users update:users delete:users";
/// Every clients scope.
pub const CLIENTS_SCOPES: &str =
    "read:clients create:clients update:clients delete:clients update:client_keys";

/// The tenant of the Management API tests, on `port`.
pub fn tenant(port: u16) -> String {
    format!(
        r#"
tenant: {{ name: acme, domains: ["localhost:{port}"] }}
factors: [password, totp, recovery-code]
connections:
  - name: Username-Password-Authentication
    password_policy: {{ min_length: 10, history: {{ active: true, size: 3 }} }}
  - name: Usernames
    requires_username: true
  - name: acme-idp
    strategy: oidc
    options: {{ issuer: "https://idp.acme.test/", client_id: latchkey, client_secret_env: IDP_CLIENT_SECRET }}
clients:
  - {{ client_id: spa, app_type: spa, callbacks: ["{APP}/cb"],
      grant_types: [authorization_code, refresh_token, password,
                    "http://auth0.com/oauth/grant-type/password-realm"] }}
  - {{ client_id: admin, client_secret: "{ADMIN_SECRET}", app_type: non_interactive, grant_types: [client_credentials] }}
  - {{ client_id: reader, client_secret: "{ADMIN_SECRET}", app_type: non_interactive, grant_types: [client_credentials] }}
  - {{ client_id: stranger, client_secret: "{ADMIN_SECRET}", app_type: non_interactive, grant_types: [client_credentials] }}
client_grants:
  - {{ client_id: spa, audience: "http://localhost:{port}/me/", subject_type: user,
      scope: [read:me:factors, create:me:authentication_methods, read:me:authentication_methods] }}
  - {{ client_id: admin, audience: "http://localhost:{port}/api/v2/", allow_all_scopes: true }}
  - {{ client_id: reader, audience: "https://localhost:{port}/api/v2/", scope: [read:users, update:users_app_metadata] }}
resource_servers: [{{ identifier: "{API}", scopes: [read:things, write:things] }}]
roles:
  - {{ name: support, description: Support staff,
      permissions: [{{ resource_server_identifier: "{API}", permission_name: read:things }}] }}
users:
  - {{ email: {ALICE}, password: "{ALICE_PASSWORD}", connection: Username-Password-Authentication,
      email_verified: true, user_id: "auth0|alice", name: Alice Example, roles: [support] }}
"#
    )
}

/// A second tenant on `127.0.0.1:{port}`, with a client of its own granted
/// the Management API there.
pub fn other(port: u16) -> String {
    format!(
        r#"
tenant: {{ name: other, domains: ["127.0.0.1:{port}"] }}
connections: [{{ name: Username-Password-Authentication }}]
clients:
  - {{ client_id: admin, client_secret: "{ADMIN_SECRET}", app_type: non_interactive, grant_types: [client_credentials] }}
client_grants:
  - {{ client_id: admin, audience: "http://127.0.0.1:{port}/api/v2/",
      scope: [read:users, delete:users, read:clients, update:clients, delete:clients, update:client_keys,
              read:client_grants, update:client_grants, delete:client_grants,
              read:resource_servers, update:resource_servers, delete:resource_servers,
              read:connections, update:connections, delete:connections,
              read:roles, update:roles, delete:roles] }}
users:
  - {{ email: carol@example.com, password: "Carol-has-a-password", connection: Username-Password-Authentication, user_id: "auth0|carol" }}
"#
    )
}

pub async fn server() -> TestServer {
    TestServer::with_tenants(&[tenant, other]).await
}

/// The base URL of the other tenant.
pub fn other_base(s: &TestServer) -> String {
    format!("http://127.0.0.1:{}", s.port)
}

/// A client-credentials answer for `audience` on `base`.
pub async fn client_token(
    s: &TestServer,
    base: &str,
    client: &str,
    audience: &str,
    scope: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", client),
        ("client_secret", ADMIN_SECRET),
        ("audience", audience),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let res = s
        .http()
        .post(format!("{base}/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

/// A Management API token of `client` on this tenant with `scope`.
pub async fn token(s: &TestServer, client: &str, scope: &str) -> String {
    let audience = format!("{}api/v2/", s.issuer);
    let (status, body) = client_token(s, &s.base, client, &audience, Some(scope)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// The answer of a Management API call.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts Auth0's error shape, exactly its four keys, and returns
    /// `(errorCode, message)`.
    pub fn error(&self) -> (String, String) {
        let obj = self
            .body
            .as_object()
            .unwrap_or_else(|| panic!("not an object ({}): {}", self.status, self.body));
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["error", "errorCode", "message", "statusCode"],
            "{}",
            self.body
        );
        assert_eq!(
            self.body["statusCode"],
            self.status.as_u16(),
            "{}",
            self.body
        );
        assert_eq!(
            self.body["error"],
            self.status.canonical_reason().unwrap(),
            "{}",
            self.body
        );
        (
            self.body["errorCode"].as_str().unwrap().to_string(),
            self.body["message"].as_str().unwrap().to_string(),
        )
    }
}

/// Calls `{base}/api/v2{path}`.
pub async fn call_at(
    s: &TestServer,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut req = s.http().request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{base}/api/v2{path}"),
    );
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
    Answer {
        status,
        headers,
        body,
    }
}

/// Calls `/api/v2{path}` on this tenant.
pub async fn call(
    s: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    call_at(s, &s.base, method, path, token, body).await
}

/// Creates a user through the API; its answer.
pub async fn create(s: &TestServer, token: &str, body: Value) -> Value {
    let a = call(s, "POST", "/users", Some(token), Some(body)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body
}

/// The tenant's log events of `event_type`, newest last.
pub async fn events(s: &TestServer, event_type: &str) -> Vec<Value> {
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    s.state
        .store
        .audit_events(&tenant.id, 500)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == event_type)
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

/// The other tenant's Management API token (its grant's scopes).
pub async fn other_token(s: &TestServer) -> String {
    let audience = format!("{}/api/v2/", other_base(s));
    let (status, body) = client_token(s, &other_base(s), "admin", &audience, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// The acme tenant's stored configuration and revision.
pub async fn stored(s: &TestServer) -> (latchkey::tenant::TenantFile, i64) {
    let row = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    (serde_json::from_str(&row.config).unwrap(), row.revision)
}

/// The acme tenant's stored configuration as it is written.
pub async fn stored_text(s: &TestServer) -> String {
    let row = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    row.config
}

/// Applies the Management API tests' tenant file (or `text`) again.
pub async fn apply(s: &TestServer, text: &str) -> latchkey::tenant::apply::ApplyReport {
    latchkey::tenant::apply::apply_text(&s.state, text)
        .await
        .unwrap()
}

/// A client-credentials answer for `client` with `secret`, for `audience`.
pub async fn client_credentials(
    s: &TestServer,
    client: &str,
    secret: &str,
    audience: &str,
) -> (StatusCode, Value) {
    let res = s
        .http()
        .post(format!("{}/oauth/token", s.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret),
            ("audience", audience),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

/// Whether `/authorize` serves the login page for `client_id`.
pub async fn authorize_serves(s: &TestServer, client_id: &str) -> bool {
    let mut req = AuthRequest::new("openid");
    req.client_id = Box::leak(client_id.to_string().into_boxed_str());
    let res = s.http().get(req.url(s)).send().await.unwrap();
    res.status() == StatusCode::OK
}

/// `s` percent-encoded as a path segment, as the SDKs send identifiers.
pub fn encoded(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
