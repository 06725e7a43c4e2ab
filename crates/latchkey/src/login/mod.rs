//! Hosted pages: the login form and the pages that carry an authorization
//! response back to the application. Server-rendered from minijinja
//! templates; operators theme them per tenant (title, colour, logo) or
//! replace the templates with their own files (`LATCHKEY_TEMPLATES_DIR`).

mod mfa;
mod submit;

pub use mfa::{FirstFactor, second_factor};

use std::path::Path;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Serialize;

use crate::app::SharedState;
use crate::tenant::Tenant;

const TEMPLATES: [(&str, &str); 8] = [
    (
        "add_passkey.html",
        include_str!("templates/add_passkey.html"),
    ),
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("mfa.html", include_str!("templates/mfa.html")),
    ("error.html", include_str!("templates/error.html")),
    ("logged_out.html", include_str!("templates/logged_out.html")),
    ("form_post.html", include_str!("templates/form_post.html")),
    (
        "web_message.html",
        include_str!("templates/web_message.html"),
    ),
];

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/login", post(submit::submit))
        .route("/login/passkey/challenge", post(submit::passkey_challenge))
        .route("/login/continue", post(submit::continue_login))
        .route(
            "/login/passkey/create/challenge",
            post(submit::create_challenge),
        )
        .route("/login/passkey/create", post(submit::create_passkey))
        .route(
            "/login/add-passkey.js",
            get(|| async { script(ADD_PASSKEY_JS) }),
        )
        .route("/login/passkey", post(submit::passkey_submit))
        .route("/login/mfa", post(mfa::choose))
        .route("/login/mfa/verify", post(mfa::verify))
        .route("/login/mfa/key/challenge", post(mfa::key_challenge))
        .route("/login/mfa/key", post(mfa::key))
        .route("/login/mfa/enroll", post(mfa::enroll))
        .route("/login/mfa/enroll/verify", post(mfa::enroll_verify))
        .route(
            "/login/mfa/enroll/key/challenge",
            post(mfa::enroll_key_challenge),
        )
        .route("/login/mfa.js", get(|| async { script(MFA_JS) }))
        .route("/login/passkey.js", get(|| async { script(PASSKEY_JS) }))
}

/// The pages' scripts, each after the WebAuthn helpers they share: the login
/// page's passkey sign-in (button and autofill), progressive enrollment of a
/// passkey, and the second step's WebAuthn keys (used and created).
const PASSKEY_JS: &str = concat!(
    include_str!("templates/webauthn.js"),
    include_str!("templates/passkey.js")
);
const ADD_PASSKEY_JS: &str = concat!(
    include_str!("templates/webauthn.js"),
    include_str!("templates/add-passkey.js")
);
const MFA_JS: &str = concat!(
    include_str!("templates/webauthn.js"),
    include_str!("templates/mfa-key.js")
);

fn script(body: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

pub struct Templates {
    env: Environment<'static>,
}

#[derive(Serialize)]
struct Page {
    title: String,
    primary_color: String,
    logo_url: Option<String>,
}

fn page(tenant: Option<&Tenant>) -> Page {
    let lp = tenant.map(|t| &t.config.tenant.login_page);
    Page {
        title: lp
            .and_then(|l| l.title.clone())
            .or_else(|| tenant.and_then(|t| t.config.tenant.friendly_name.clone()))
            .or_else(|| tenant.map(|t| t.name.clone()))
            .unwrap_or_else(|| "latchkey".into()),
        primary_color: lp
            .and_then(|l| l.primary_color.clone())
            .unwrap_or_else(|| "#4f46e5".into()),
        logo_url: lp.and_then(|l| l.logo_url.clone()),
    }
}

impl Templates {
    /// The built-in templates, each replaced by a file of the same name in
    /// `LATCHKEY_TEMPLATES_DIR` when that is set.
    pub fn new() -> anyhow::Result<Self> {
        let dir = std::env::var_os("LATCHKEY_TEMPLATES_DIR");
        Self::with_overrides(dir.as_deref().map(Path::new))
    }

    pub fn with_overrides(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        for (name, builtin) in TEMPLATES {
            let source = match dir.map(|d| d.join(name)) {
                Some(p) if p.is_file() => std::fs::read_to_string(&p)?,
                _ => builtin.to_string(),
            };
            env.add_template_owned(name, source)?;
        }
        Ok(Self { env })
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> String {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(template = name, error = %e, "template failed to render");
                "<!doctype html><title>Error</title><p>Something went wrong.</p>".into()
            }
        }
    }

    pub fn render_login(
        &self,
        tenant: &Tenant,
        tx: &str,
        username: &str,
        error: Option<&str>,
    ) -> String {
        self.render(
            "login.html",
            context! {
                page => Value::from(Serde(page(Some(tenant)))), tx, username, error,
                passkeys => tenant.config.factors.contains(&crate::tenant::FactorType::Passkey),
            },
        )
    }

    pub fn render_add_passkey(
        &self,
        tenant: &Tenant,
        tx: &str,
        email: &str,
        error: Option<&str>,
    ) -> String {
        self.render(
            "add_passkey.html",
            context! { page => Value::from(Serde(page(Some(tenant)))), tx, email, error },
        )
    }

    /// A page of a login's second step; `view` says which (see mfa.html).
    pub fn render_mfa(&self, tenant: &Tenant, view: &serde_json::Value) -> String {
        self.render(
            "mfa.html",
            context! { page => Value::from(Serde(page(Some(tenant)))), view => Value::from(Serde(view)) },
        )
    }

    pub fn render_error(&self, tenant: Option<&Tenant>, message: &str) -> String {
        self.render(
            "error.html",
            context! { page => Value::from(Serde(page(tenant))), message },
        )
    }

    pub fn render_logged_out(&self, tenant: &Tenant) -> String {
        self.render(
            "logged_out.html",
            context! { page => Value::from(Serde(page(Some(tenant)))) },
        )
    }

    pub fn render_form_post(&self, action: &str, params: &[(&str, String)]) -> String {
        self.render(
            "form_post.html",
            context! { action, params => Value::from(Serde(params)) },
        )
    }

    pub fn render_web_message(
        &self,
        origin: &str,
        params: &[(&str, String)],
        nonce: &str,
    ) -> String {
        let response: serde_json::Map<String, serde_json::Value> = params
            .iter()
            .map(|(k, v)| ((*k).to_string(), serde_json::Value::String(v.clone())))
            .collect();
        self.render(
            "web_message.html",
            context! { origin, response => Value::from(Serde(&response)), nonce },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_message_escapes_for_script_context() {
        let t = Templates::with_overrides(None).unwrap();
        let html = t.render_web_message(
            "http://localhost:5173",
            &[("state", "</script><script>alert(1)</script>".into())],
            "n0nce",
        );
        assert!(!html.contains("</script><script>alert(1)"));
        assert!(
            html.contains("\"type\": \"authorization_response\"")
                || html.contains("authorization_response")
        );
    }

    #[test]
    fn login_escapes_username() {
        let t = Templates::with_overrides(None).unwrap();
        let html = t.render("login.html", context! {
            page => Value::from(Serde(page(None))), tx => "t", username => "\"><script>x</script>", error => None::<String>
        });
        assert!(!html.contains("<script>x</script>"));
    }
}
