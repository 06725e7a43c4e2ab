//! The development tenant created when the server starts on an empty data
//! directory with no tenant file: one SPA client, one user, ready to log in.

/// A fixed, well-known password: this tenant exists for local development
/// only and is never created when a tenant file is given.
pub const DEMO_EMAIL: &str = "demo@example.com";
pub const DEMO_PASSWORD: &str = "Latchkey-demo-2026!";
pub const DEMO_CLIENT: &str = "demo-spa";

/// The tenant file of the development tenant for `localhost:{port}`.
pub fn dev_tenant_yaml(port: u16) -> String {
    let host = format!("localhost:{port}");
    format!(
        r#"tenant: {{ name: dev, domains: ["{host}", "127.0.0.1:{port}"], friendly_name: "latchkey (development)" }}
my_account_api: {{ active: true, user_policy: require_client_grant }}
factors: [password, totp, recovery-code]
connections:
  - name: Username-Password-Authentication
    password_policy: {{ min_length: 8 }}
clients:
  - client_id: {DEMO_CLIENT}
    name: Demo SPA
    app_type: spa
    callbacks: ["http://localhost:5173/callback", "http://{host}/callback"]
    allowed_origins: ["http://localhost:5173"]
    web_origins: ["http://localhost:5173"]
    allowed_logout_urls: ["http://localhost:5173/"]
    grant_types: [authorization_code, refresh_token]
client_grants:
  - client_id: {DEMO_CLIENT}
    audience: "http://{host}/me/"
    subject_type: user
    scope: [read:me:authentication_methods, create:me:authentication_methods,
            update:me:authentication_methods, delete:me:authentication_methods, read:me:factors]
users:
  - {{ email: {DEMO_EMAIL}, password: "{DEMO_PASSWORD}", connection: Username-Password-Authentication,
      email_verified: true, name: Demo User }}
"#
    )
}
