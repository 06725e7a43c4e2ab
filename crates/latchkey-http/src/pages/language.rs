//! The language of the page a request answers with. A layer around every
//! request keeps what the browser asks for (`Accept-Language`) for the
//! request's duration; once a handler knows the authorization request (at
//! `/authorize`, or the login transaction behind a form), its `ui_locales`
//! go first. `services::language` decides between them and the tenant's
//! languages; the templates read the words through [`words`], the handlers
//! through [`texts`].

use std::cell::RefCell;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use minijinja::value::{Kwargs, Object, Value, from_args};
use minijinja::{Error, ErrorKind, State};

use latchkey_core::services::authorize::AuthorizeRequest;
use latchkey_core::services::language::{self, CustomText, Language, Texts};
use latchkey_core::tenant::Tenant;

#[derive(Debug, Default)]
struct Wanted {
    /// The browser's languages, most wanted first.
    browser: Vec<String>,
    /// The authorization request's `ui_locales`, once known.
    ui_locales: Option<String>,
    /// The language chosen with the request's tenant, once known.
    chosen: Option<Language>,
}

tokio::task_local! {
    static WANTED: RefCell<Wanted>;
}

/// Keeps the browser's languages for the request's duration.
pub(crate) async fn layer(req: Request, next: Next) -> Response {
    let browser = crate::http::accept_languages(req.headers());
    let wanted = RefCell::new(Wanted {
        browser,
        ..Wanted::default()
    });
    WANTED.scope(wanted, next.run(req)).await
}

/// The request the page belongs to is known: its `ui_locales` come before
/// the browser's languages, and the language is chosen with its tenant.
pub(crate) fn for_request(tenant: &Tenant, req: &AuthorizeRequest) {
    let _ = WANTED.try_with(|w| {
        let mut w = w.borrow_mut();
        w.ui_locales.clone_from(&req.ui_locales);
        w.chosen = None;
    });
    of(Some(tenant));
}

/// A page a mailed link opens: the language the mail spoke (the link's
/// `ui_locales`) comes before the browser's.
pub(crate) fn for_link(tenant: &Tenant, ui_locales: Option<&str>) {
    let _ = WANTED.try_with(|w| {
        let mut w = w.borrow_mut();
        w.ui_locales = ui_locales.map(str::to_string);
        w.chosen = None;
    });
    of(Some(tenant));
}

/// The languages asked for, most wanted first (for messages that carry
/// codes: the adapter chooses among them as the pages do).
pub(crate) fn wanted() -> Vec<String> {
    WANTED
        .try_with(|w| {
            let w = w.borrow();
            language::wanted(w.ui_locales.as_deref(), &w.browser)
        })
        .unwrap_or_default()
}

/// The page's language: the one chosen already for this request (by
/// `for_request`, `for_link` or an earlier call), else negotiated with
/// `tenant`'s languages and kept, else the best of every language.
pub(crate) fn of(tenant: Option<&Tenant>) -> Language {
    if let Some(chosen) = WANTED.try_with(|w| w.borrow().chosen).ok().flatten() {
        return chosen;
    }
    match tenant {
        Some(t) => {
            let l = language::negotiate(t, &wanted());
            let _ = WANTED.try_with(|w| w.borrow_mut().chosen = Some(l));
            l
        }
        None => wanted()
            .iter()
            .find_map(|t| Language::matching(t))
            .unwrap_or(Language::En),
    }
}

/// The words of the page's language, `tenant`'s custom text over them.
pub(crate) fn texts(tenant: Option<&Tenant>) -> Texts<'_> {
    Texts::new(tenant, of(tenant))
}

/// What the templates call `t`: `t("prompt.screen.key", name=value…)` is
/// that text with its placeholders filled (the template escapes it);
/// `t.around("key", "name", value, …)` the text's two sides of the first
/// `${name}` (the others filled with `value`), for markup around a value.
#[derive(Debug)]
pub(crate) struct Words {
    language: Language,
    custom: Option<CustomText>,
}

impl Words {
    pub(crate) fn value(tenant: Option<&Tenant>, language: Language) -> Value {
        let custom = tenant.and_then(|t| language::custom_text(t, language).cloned());
        Value::from_object(Self { language, custom })
    }

    fn text(&self, key: &str, kwargs: &Kwargs) -> Result<String, Error> {
        let mut vars = Vec::new();
        for name in kwargs.args() {
            let v: Value = kwargs.get(name)?;
            vars.push((name.to_string(), v.to_string()));
        }
        let vars: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let texts = Texts::with_custom(self.language, self.custom.as_ref());
        Ok(texts.get(key, &vars))
    }
}

impl Object for Words {
    fn call(self: &Arc<Self>, _: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (key, kwargs): (&str, Kwargs) = from_args(args)?;
        Ok(Value::from(self.text(key, &kwargs)?))
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "around" {
            return Err(Error::new(ErrorKind::UnknownMethod, method.to_string()));
        }
        let (key, name, value, kwargs): (&str, &str, Value, Kwargs) = from_args(args)?;
        let text = self.text(key, &kwargs)?;
        let mark = format!("${{{name}}}");
        let (before, after) = text.split_once(&mark).unwrap_or((text.as_str(), ""));
        let value = value.to_string();
        let fill = |s: &str| language::fill(s, &[(name, value.as_str())]);
        Ok(Value::from(vec![fill(before), fill(after)]))
    }
}
