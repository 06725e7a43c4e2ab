//! The hosted pages' views, shared by `/authorize` and the login pages:
//! minijinja templates (themable per tenant, overridable from
//! `LATCHKEY_TEMPLATES_DIR`), the pages' scripts, and the error pages every
//! hosted page answers with. `second_step.rs` presents a login's second
//! step; `language.rs` the request's language and the templates' words
//! (`t`). Handlers render here; nothing here calls back into them.

pub(crate) mod language;
pub(crate) mod second_step;

use std::path::Path;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Serialize;

use crate::app::AppState;
use latchkey_core::services::authorize::AuthorizeRequest;
use latchkey_core::tenant::Tenant;

const TEMPLATES: [(&str, &str); 13] = [
    ("signup.html", include_str!("templates/signup.html")),
    (
        "passwordless.html",
        include_str!("templates/passwordless.html"),
    ),
    (
        "forgot_password.html",
        include_str!("templates/forgot_password.html"),
    ),
    (
        "reset_password.html",
        include_str!("templates/reset_password.html"),
    ),
    ("notice.html", include_str!("templates/notice.html")),
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

/// The pages' scripts, each after the WebAuthn helpers they share: the login
/// page's passkey sign-in (button and autofill), progressive enrollment of a
/// passkey, and the second step's WebAuthn keys (used and created).
pub(crate) const PASSKEY_JS: &str = concat!(
    include_str!("templates/webauthn.js"),
    include_str!("templates/passkey.js")
);
pub(crate) const ADD_PASSKEY_JS: &str = concat!(
    include_str!("templates/webauthn.js"),
    include_str!("templates/add-passkey.js")
);
pub(crate) const MFA_JS: &str = concat!(
    include_str!("templates/webauthn.js"),
    include_str!("templates/mfa-key.js")
);
/// The push option's waiting panel: polls the step's status, finishes on
/// approval.
pub(crate) const MFA_PUSH_JS: &str = include_str!("templates/mfa-push.js");

pub(crate) fn script(body: &'static str) -> Response {
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

/// `Cache-Control: no-store`, for pages that carry a login's state.
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// An error the user's browser sees as a page.
pub(crate) fn error_page(
    state: &AppState,
    tenant: Option<&Tenant>,
    status: StatusCode,
    message: &str,
) -> Response {
    let html = state.templates.render_error(tenant, message);
    (status, no_store(), Html(html)).into_response()
}

/// The login transaction behind a form is gone (or was never this
/// browser's).
pub(crate) fn expired(state: &AppState, tenant: &Tenant) -> Response {
    let message = language::texts(Some(tenant)).get("common.error.expired", &[]);
    let html = state.templates.render_error(Some(tenant), &message);
    (StatusCode::BAD_REQUEST, Html(html)).into_response()
}

/// A failure we did not expect: logged, a bare page.
pub(crate) fn internal(
    state: &AppState,
    tenant: &Tenant,
    cause: impl std::fmt::Display,
) -> Response {
    tracing::error!(%cause, tenant = %tenant.name, "authorize failed");
    error_page(
        state,
        Some(tenant),
        StatusCode::INTERNAL_SERVER_ERROR,
        &language::texts(Some(tenant)).get("common.error.internal", &[]),
    )
}

/// A page asking to come back in `seconds` (with `retry-after`): 429 when
/// the caller made too many attempts, 503 when the server is too busy.
pub(crate) fn retry_page(
    state: &AppState,
    tenant: &Tenant,
    status: StatusCode,
    message: &str,
    seconds: i64,
) -> Response {
    let mut res = error_page(state, Some(tenant), status, message);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    res
}

/// The page of an IP throttled for too many failed logins (Suspicious IP
/// Throttling): 429, to come back in `seconds`.
pub(crate) fn ip_blocked(state: &AppState, tenant: &Tenant, seconds: i64) -> Response {
    retry_page(
        state,
        tenant,
        StatusCode::TOO_MANY_REQUESTS,
        &language::texts(Some(tenant)).get("login.login.ip-blocked", &[]),
        seconds,
    )
}

/// A page for a store failure: 503 when the database is out of reach (it
/// heals by itself), 500 otherwise.
pub(crate) fn store_error(
    state: &AppState,
    tenant: &Tenant,
    e: latchkey_core::store::StoreError,
) -> Response {
    if e.is_unavailable() {
        tracing::warn!(error = %e, tenant = %tenant.name, "database unavailable");
        let mut res = error_page(
            state,
            Some(tenant),
            StatusCode::SERVICE_UNAVAILABLE,
            &language::texts(Some(tenant)).get("common.error.unavailable", &[]),
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return res;
    }
    internal(state, tenant, e)
}

/// The page for a login flow's failure.
pub(crate) fn flow_error(
    state: &AppState,
    tenant: &Tenant,
    e: latchkey_core::services::login_flow::FlowError,
) -> Response {
    use latchkey_core::services::login_flow::FlowError;
    match e {
        FlowError::Expired => expired(state, tenant),
        FlowError::Store(e) => store_error(state, tenant, e),
        FlowError::Internal(cause) => internal(state, tenant, cause),
    }
}

/// Pages with forms must not be framed by other sites.
pub(crate) fn frame_guard(res: &mut Response) {
    res.headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
}

/// Whose login page it is: the application, and the passwordless
/// connection `connection=` on `/authorize` named, which the page then
/// offers alone (as Universal Login does).
#[derive(Clone, Copy)]
pub(crate) struct LoginOf<'a> {
    pub client_id: &'a str,
    pub only: Option<&'a str>,
}

impl<'a> LoginOf<'a> {
    /// The login page of a stored request.
    pub(crate) fn request(tenant: &Tenant, req: &'a AuthorizeRequest) -> Self {
        let only = req.connection.as_deref().filter(|name| {
            tenant
                .config
                .connections
                .iter()
                .any(|c| c.name == *name && c.passwordless_for(&req.client_id))
        });
        Self {
            client_id: &req.client_id,
            only,
        }
    }
}

/// The login form of a transaction, not to be framed.
pub(crate) fn login_form(
    state: &AppState,
    tenant: &Tenant,
    tx: &str,
    username: &str,
    of: LoginOf<'_>,
) -> Response {
    let html = state.templates.render_login(tenant, tx, username, of, None);
    let mut res = (StatusCode::OK, no_store(), Html(html)).into_response();
    frame_guard(&mut res);
    res
}

/// The login form again, with what went wrong with a passwordless
/// connection's address (`value`, as typed), beside its field.
pub(crate) fn passwordless_refused(
    state: &AppState,
    tenant: &Tenant,
    tx: &str,
    of: LoginOf<'_>,
    refused: &PasswordlessField<'_>,
) -> Response {
    let html = state
        .templates
        .render_login_with(tenant, tx, "", of, None, Some(refused));
    let mut res = (StatusCode::BAD_REQUEST, no_store(), Html(html)).into_response();
    frame_guard(&mut res);
    res
}

/// A passwordless connection's field of the login form that was refused.
pub(crate) struct PasswordlessField<'a> {
    pub connection: &'a str,
    pub value: &'a str,
    pub error: &'a str,
}

/// The code screen of a passwordless login (Auth0's
/// `login-passwordless-email-code`, `login-passwordless-sms-otp`).
pub(crate) fn passwordless_code(
    state: &AppState,
    tenant: &Tenant,
    status: StatusCode,
    screen: &PasswordlessCode<'_>,
) -> Response {
    let html = state.templates.render_passwordless(tenant, screen);
    let mut res = (status, no_store(), Html(html)).into_response();
    frame_guard(&mut res);
    res
}

/// What the code screen shows.
#[derive(Serialize, Default)]
pub(crate) struct PasswordlessCode<'a> {
    pub tx: &'a str,
    pub connection: &'a str,
    /// The code went by SMS (else by email).
    pub sms: bool,
    /// The address or number, in its normal form.
    pub to: &'a str,
    /// The code field's error.
    pub error: Option<&'a str>,
    /// News (a new code sent).
    pub notice: Option<&'a str>,
    /// An error of the screen (too many codes).
    pub alert: Option<&'a str>,
}

/// The login form again, with what went wrong.
pub(crate) fn login_page(
    state: &AppState,
    tenant: &Tenant,
    tx: &str,
    username: &str,
    of: LoginOf<'_>,
    message: &str,
) -> Response {
    let html = state
        .templates
        .render_login(tenant, tx, username, of, Some(message));
    let mut res = (StatusCode::OK, no_store(), Html(html)).into_response();
    frame_guard(&mut res);
    res
}

/// Whether the hosted page offers sign-up: the tenant's database
/// connection takes sign-ups.
pub(crate) fn signup_open(tenant: &Tenant) -> bool {
    tenant
        .config
        .connections
        .iter()
        .find(|c| !c.strategy.is_upstream())
        .is_some_and(|c| !c.disable_signup)
}

/// Whether the hosted page's database connection has usernames
/// (`requires_username`): the login form then takes a username or an
/// email, and the sign-up form asks for a username too.
pub(crate) fn usernames(tenant: &Tenant) -> bool {
    tenant
        .config
        .connections
        .iter()
        .find(|c| c.strategy.is_database())
        .is_some_and(|c| c.requires_username)
}

/// The sign-up screen of a login transaction, not to be framed; `values`
/// the email and username given (kept when the form comes back).
pub(crate) fn signup_form(
    state: &AppState,
    tenant: &Tenant,
    tx: &str,
    values: (&str, &str),
    error: Option<&str>,
) -> Response {
    let html = state.templates.render_signup(tenant, tx, values, error);
    let mut res = (StatusCode::OK, no_store(), Html(html)).into_response();
    frame_guard(&mut res);
    res
}

/// A page that says where things stand (a link followed, an email sent),
/// with at most one form to go on; `status` as the outcome is.
pub(crate) fn notice(
    state: &AppState,
    tenant: &Tenant,
    status: StatusCode,
    notice: &Notice<'_>,
) -> Response {
    let html = state.templates.render_notice(tenant, notice);
    let mut res = (status, no_store(), Html(html)).into_response();
    frame_guard(&mut res);
    res
}

/// What a notice page says.
#[derive(Serialize, Default)]
pub(crate) struct Notice<'a> {
    pub heading: &'a str,
    pub message: &'a str,
    /// An error (role alert) rather than news.
    pub error: bool,
    /// A form to go on with: where it posts, its hidden fields, its button.
    pub action: Option<&'a str>,
    pub fields: Vec<(&'a str, &'a str)>,
    pub button: Option<&'a str>,
}

/// What the page a reset link opens shows.
pub(crate) struct ResetView<'a> {
    pub ticket: &'a str,
    pub email: &'a str,
    pub policy: &'a serde_json::Value,
    pub error: Option<&'a str>,
    /// The link's `ui_locales`, if it has one.
    pub ui_locales: Option<&'a str>,
}

pub struct Templates {
    env: Environment<'static>,
}

/// A button of the login page: an upstream connection to log in with.
#[derive(Serialize)]
struct Button<'a> {
    /// The connection's name, posted back.
    name: &'a str,
    /// What the button says.
    label: &'a str,
}

/// A passwordless connection of the login page (its address field).
#[derive(Serialize)]
struct Passwordless<'a> {
    name: &'a str,
    sms: bool,
    /// What was typed, when it was refused.
    value: &'a str,
    error: Option<&'a str>,
}

/// The passwordless connections the application's users may log in with,
/// in the file's order; `refused`'s with its value and error.
fn passwordless<'a>(
    tenant: &'a Tenant,
    of: LoginOf<'_>,
    refused: Option<&PasswordlessField<'a>>,
) -> Vec<Passwordless<'a>> {
    tenant
        .config
        .connections
        .iter()
        .filter(|c| c.passwordless_for(of.client_id))
        .filter(|c| of.only.is_none_or(|only| c.name == only))
        .map(|c| {
            let refused = refused.filter(|r| r.connection == c.name);
            Passwordless {
                name: &c.name,
                sms: c.strategy == latchkey_core::tenant::ConnectionStrategy::Sms,
                value: refused.map_or("", |r| r.value),
                error: refused.map(|r| r.error),
            }
        })
        .collect()
}

/// Whether the login page has the password form: the tenant has a database
/// connection (every application may use it). Without one, a passwordless
/// connection is the page's way in.
fn password_form(tenant: &Tenant) -> bool {
    tenant
        .config
        .connections
        .iter()
        .any(|c| c.strategy.is_database())
}

/// The upstream connections the application's users may log in with, in
/// the file's order.
fn buttons<'t>(tenant: &'t Tenant, client_id: &str) -> Vec<Button<'t>> {
    tenant
        .config
        .connections
        .iter()
        .filter(|c| c.login_from(client_id))
        .map(|c| Button {
            name: &c.name,
            label: c.shown_name(),
        })
        .collect()
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
            .or_else(|| tenant.map(|t| t.display_name().to_string()))
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

    /// Renders `name` in the request's language (`lang`), with the words of
    /// that language (`t`, `tenant`'s custom text over the bundle).
    fn render(&self, name: &str, tenant: Option<&Tenant>, ctx: minijinja::Value) -> String {
        let lang = language::of(tenant);
        let ctx = context! { t => language::Words::value(tenant, lang), lang => lang.tag(), ..ctx };
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(template = name, error = %e, "template failed to render");
                "<!doctype html><title>Error</title><p>Something went wrong.</p>".into()
            }
        }
    }

    pub(crate) fn render_login(
        &self,
        tenant: &Tenant,
        tx: &str,
        username: &str,
        of: LoginOf<'_>,
        error: Option<&str>,
    ) -> String {
        self.render_login_with(tenant, tx, username, of, error, None)
    }

    /// The login page, a passwordless connection's field refused. With
    /// `of.only`, that connection's field alone.
    fn render_login_with(
        &self,
        tenant: &Tenant,
        tx: &str,
        username: &str,
        of: LoginOf<'_>,
        error: Option<&str>,
        refused: Option<&PasswordlessField<'_>>,
    ) -> String {
        let all = of.only.is_none();
        let passkeys = all
            && tenant
                .config
                .factors
                .contains(&latchkey_core::tenant::FactorType::Passkey);
        let connections = if all {
            buttons(tenant, of.client_id)
        } else {
            Vec::new()
        };
        self.render(
            "login.html",
            Some(tenant),
            context! {
                page => Value::from(Serde(page(Some(tenant)))), tx, username, error,
                client_name => tenant.client(of.client_id).map(|c| c.name.clone()),
                passkeys,
                connections => Value::from(Serde(connections)),
                passwordless => Value::from(Serde(passwordless(tenant, of, refused))),
                passwordless_only => !all || !password_form(tenant),
                signup => signup_open(tenant),
                usernames => usernames(tenant),
            },
        )
    }

    /// A passwordless login's code screen.
    pub(crate) fn render_passwordless(
        &self,
        tenant: &Tenant,
        screen: &PasswordlessCode<'_>,
    ) -> String {
        self.render(
            "passwordless.html",
            Some(tenant),
            context! { page => Value::from(Serde(page(Some(tenant)))), ..Value::from(Serde(screen)) },
        )
    }

    pub fn render_signup(
        &self,
        tenant: &Tenant,
        tx: &str,
        (email, username): (&str, &str),
        error: Option<&str>,
    ) -> String {
        self.render(
            "signup.html",
            Some(tenant),
            context! {
                page => Value::from(Serde(page(Some(tenant)))), tx, email, username, error,
                usernames => usernames(tenant),
            },
        )
    }

    pub fn render_forgot_password(
        &self,
        tenant: &Tenant,
        tx: &str,
        email: &str,
        error: Option<&str>,
    ) -> String {
        self.render(
            "forgot_password.html",
            Some(tenant),
            context! { page => Value::from(Serde(page(Some(tenant)))), tx, email, error },
        )
    }

    /// The page a reset link opens; `policy` as the My Account API shows it,
    /// `ui_locales` the link's (posted back, so the answer speaks it too).
    pub(crate) fn render_reset_password(&self, tenant: &Tenant, form: &ResetView<'_>) -> String {
        self.render(
            "reset_password.html",
            Some(tenant),
            context! {
                page => Value::from(Serde(page(Some(tenant)))), ticket => form.ticket,
                email => form.email, error => form.error, ui_locales => form.ui_locales,
                min_length => form.policy["complexity"]["min_length"].as_u64().unwrap_or(0),
            },
        )
    }

    pub(crate) fn render_notice(&self, tenant: &Tenant, notice: &Notice<'_>) -> String {
        self.render(
            "notice.html",
            Some(tenant),
            context! { page => Value::from(Serde(page(Some(tenant)))), notice => Value::from(Serde(notice)) },
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
            Some(tenant),
            context! { page => Value::from(Serde(page(Some(tenant)))), tx, email, error },
        )
    }

    /// A page of a login's second step; `view` says which (see mfa.html).
    pub fn render_mfa(&self, tenant: &Tenant, view: &serde_json::Value) -> String {
        self.render(
            "mfa.html",
            Some(tenant),
            context! { page => Value::from(Serde(page(Some(tenant)))), view => Value::from(Serde(view)) },
        )
    }

    pub fn render_error(&self, tenant: Option<&Tenant>, message: &str) -> String {
        self.render(
            "error.html",
            tenant,
            context! { page => Value::from(Serde(page(tenant))), message },
        )
    }

    pub fn render_logged_out(&self, tenant: &Tenant) -> String {
        self.render(
            "logged_out.html",
            Some(tenant),
            context! { page => Value::from(Serde(page(Some(tenant)))) },
        )
    }

    pub fn render_form_post(&self, action: &str, params: &[(&str, String)]) -> String {
        self.render(
            "form_post.html",
            None,
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
            None,
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

    /// The keys `t("…")` and `t.around("…", …)` name in a template, and the
    /// screens it builds keys from (`t(screen ~ "key")`).
    fn template_keys(source: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for opener in ["t(\"", "t.around(\""] {
            for piece in source.split(opener).skip(1) {
                if let Some((key, _)) = piece.split_once('"') {
                    keys.push(key.to_string());
                }
            }
        }
        for piece in source.split("{% set screen = \"").skip(1) {
            let Some((prefix, rest)) = piece.split_once('"') else {
                continue;
            };
            let Some((_, rest)) = rest.split_once("(\"") else {
                continue;
            };
            let Some((kind, rest)) = rest.split_once('"') else {
                continue;
            };
            let Some((_, rest)) = rest.split_once("else \"") else {
                continue;
            };
            let other = rest.split('"').next().unwrap_or("");
            let suffix = rest.split("~ \"").nth(1).and_then(|s| s.split('"').next());
            for k in [kind, other] {
                for key in ["description", "buttonText"] {
                    keys.push(format!("{prefix}{k}{}{key}", suffix.unwrap_or("")));
                }
            }
        }
        keys
    }

    /// The keys a Rust source names as literals: strings of three dotted
    /// parts whose first two are a prompt and one of its screens
    /// (`"login.login.wrong-credentials"`).
    fn source_keys(source: &str) -> Vec<String> {
        use latchkey_core::services::language::check_custom_text;
        source
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|s| {
                let parts: Vec<&str> = s.split('.').collect();
                match parts.as_slice() {
                    [prompt, screen, key] => {
                        key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                            && !matches!(check_custom_text(prompt, screen, key), Err((0 | 1, _)))
                    }
                    _ => false,
                }
            })
            .map(str::to_string)
            .collect()
    }

    fn exists(key: &str) -> bool {
        use latchkey_core::services::language::{Language, Texts};
        let en = Texts::new(None, Language::En);
        let found = |k: &str| en.raw(k) != "…";
        found(key) || (found(&format!("{key}-one")) && found(&format!("{key}-other")))
    }

    #[test]
    fn every_key_the_pages_use_exists() {
        let mut used = Vec::new();
        for (name, source) in TEMPLATES {
            let keys = template_keys(source);
            used.extend(keys.into_iter().map(|k| (name.to_string(), k)));
        }
        // The handlers' messages.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![dir];
        let mut files = 0;
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let source = std::fs::read_to_string(&path).unwrap();
                    let keys = source_keys(&source);
                    files += usize::from(!keys.is_empty());
                    used.extend(keys.into_iter().map(|k| (path.display().to_string(), k)));
                }
            }
        }
        assert!(files >= 8, "{files}");
        assert!(used.len() > 100, "{}", used.len());
        let missing: Vec<_> = used.iter().filter(|(_, k)| !exists(k)).collect();
        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn pages_speak_the_language_they_say_and_escape_custom_text() {
        use latchkey_core::services::language::Language;
        let t = Templates::with_overrides(None).unwrap();
        let ctx = context! {
            page => Value::from(Serde(page(None))), tx => "t", username => "", error => None::<String>
        };
        let html = t.render("login.html", None, ctx);
        assert!(html.contains("<html lang=\"en\">"), "{html}");
        assert!(html.contains("Log in to latchkey"), "{html}");
        let words = language::Words::value(None, Language::Fr);
        let html = t
            .env
            .get_template("login.html")
            .unwrap()
            .render(context! {
                t => words, lang => "fr", page => Value::from(Serde(page(None))), tx => "t",
                username => "", error => None::<String>,
            })
            .unwrap();
        assert!(html.contains("<html lang=\"fr\">"), "{html}");
        assert!(html.contains("Se connecter à latchkey"), "{html}");
        assert!(html.contains("Mot de passe"), "{html}");
    }

    #[test]
    fn login_escapes_username() {
        let t = Templates::with_overrides(None).unwrap();
        let html = t.render("login.html", None, context! {
            page => Value::from(Serde(page(None))), tx => "t", username => "\"><script>x</script>", error => None::<String>
        });
        assert!(!html.contains("<script>x</script>"));
    }
}
