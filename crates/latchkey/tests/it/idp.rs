//! A second latchkey acting as an upstream OpenID provider of the first:
//! its own server, database and tenant (`idp`, reached as
//! `127.0.0.1:PORT`, so that browsers keep its cookies apart from the
//! first's on `localhost`), with a confidential client `rp` whose callback
//! is the first server's `/login/callback`, and a user Bob who logs in at
//! its real login page.

use reqwest::StatusCode;

use crate::support::*;

pub const IDP_SECRET: &str = "idp-client-secret-value";
pub const BOB: &str = "bob@idp.test";
pub const BOB_PASSWORD: &str = "B0b-at-the-idp-2026";

/// The upstream's tenant, for the first server on `rp_port`. Its second
/// domain (`localhost:PORT`) signs with the same keys under another issuer.
pub fn idp_tenant(idp_port: u16, rp_port: u16) -> String {
    format!(
        r#"
tenant: {{ name: idp, domains: ["127.0.0.1:{idp_port}", "localhost:{idp_port}"] }}
connections: [{{ name: Username-Password-Authentication }}]
clients:
  - {{ client_id: rp, app_type: regular_web, client_secret: "{IDP_SECRET}",
      token_endpoint_auth_method: client_secret_basic,
      callbacks: ["http://localhost:{rp_port}/login/callback"],
      grant_types: [authorization_code, refresh_token] }}
  - {{ client_id: other-rp, app_type: regular_web, client_secret: "{IDP_SECRET}",
      callbacks: ["http://localhost:{rp_port}/login/callback"],
      grant_types: [authorization_code, refresh_token] }}
users:
  - {{ email: {BOB}, password: "{BOB_PASSWORD}", connection: Username-Password-Authentication,
      email_verified: true, user_id: "auth0|bob" }}
"#
    )
}

/// The connection of the first server's tenant to the upstream.
pub fn idp_connection(idp_port: u16) -> String {
    format!(
        r#"  - name: idp
    strategy: oidc
    options: {{ issuer: "http://127.0.0.1:{idp_port}/", client_id: rp, client_secret_env: IDP_CLIENT_SECRET,
               scope: [openid, profile, email], timeout_seconds: 5 }}
    connected_accounts: {{ active: true }}
    enabled_clients: [spa]
"#
    )
}

/// The acme tenant with `connections` (YAML list items) added, and the
/// connected-accounts scopes granted to its SPA.
pub fn acme_with(rp_port: u16, connections: &str) -> String {
    acme(rp_port)
        .replace(
            "  - name: Partners\n",
            &format!("  - name: Partners\n{connections}"),
        )
        .replace(
            "delete:me:authentication_methods, read:me:factors]",
            "delete:me:authentication_methods, read:me:factors, create:me:connected_accounts, \
             read:me:connected_accounts, delete:me:connected_accounts]",
        )
}

/// The two servers, their tenants applied.
pub struct Pair {
    pub idp: TestServer,
    pub rp: TestServer,
}

impl Pair {
    /// The upstream, and the first server with the `idp` connection and
    /// `extra` connections (YAML list items, given the upstream's port).
    pub async fn start(extra: impl Fn(u16) -> String) -> Self {
        let idp = TestServer::with_tenants(&[]).await;
        let rp = TestServer::with_tenants(&[other_tenant]).await;
        let apply = |server: &TestServer, text: String| {
            let state = server.state.clone();
            async move {
                latchkey::tenant::apply::apply_text(&state, &text)
                    .await
                    .unwrap()
            }
        };
        apply(&idp, idp_tenant(idp.port, rp.port)).await;
        let connections = idp_connection(idp.port) + &extra(idp.port);
        apply(&rp, acme_with(rp.port, &connections)).await;
        Self { idp, rp }
    }

    pub fn idp_issuer(&self) -> String {
        format!("http://127.0.0.1:{}/", self.idp.port)
    }

    /// The first server's callback, registered at the upstream.
    pub fn callback(&self) -> String {
        format!("http://localhost:{}/login/callback", self.rp.port)
    }
}

/// Logs `email` in at the upstream's page the browser was sent to
/// (`authorize_url`) and returns the upstream's redirect.
pub async fn login_at_idp(
    browser: &reqwest::Client,
    authorize_url: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = browser.get(authorize_url).send().await.unwrap();
    if page.status() == StatusCode::FOUND {
        return page;
    }
    assert_eq!(page.status(), StatusCode::OK, "{authorize_url}");
    let action = url::Url::parse(authorize_url)
        .unwrap()
        .join("/login")
        .unwrap();
    let html = page.text().await.unwrap();
    submit_login(browser, action.as_str(), &html, email, password).await
}

/// A browser: keeps cookies, follows no redirects.
#[allow(
    clippy::disallowed_methods,
    reason = "a test browser, not an outbound request of latchkey"
)]
pub fn browser() -> reqwest::Client {
    // `localhost` is the test servers' 127.0.0.1 (the URL gives the port).
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("localhost", ([127, 0, 0, 1], 0).into())
        .cookie_store(true)
        .build()
        .unwrap()
}
