//! Real upstream identity providers on loopback, for the tests of connected
//! accounts and upstream login: an OpenID provider (`oidc-provider` from npm,
//! a Node process; `oidc.rs`) and a server speaking GitHub's OAuth apps
//! dialect (in process; `github.rs`). Both count what they were asked and
//! can be made to misbehave; a test drives their login pages with a
//! cookie-keeping client that follows no redirects by itself
//! ([`browser`], or `TestServer::browser`), as a browser would.

pub mod github;
pub mod oidc;

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use url::Url;

/// A client that keeps cookies and follows no redirects: what the login
/// helpers take. Within a latchkey test, `TestServer::browser()` is one.
#[allow(
    clippy::disallowed_methods,
    reason = "a test client standing in for a browser, not an outbound request of latchkey"
)]
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// A plain client: no cookies, no redirects followed.
#[allow(
    clippy::disallowed_methods,
    reason = "a test client of the upstream, not an outbound request of latchkey"
)]
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Where a walk through redirects ended.
#[derive(Debug)]
pub enum Landing {
    /// A redirect that leaves the origin the walk was confined to: its
    /// absolute URL, not visited.
    Left(String),
    /// A page that is not a redirect, on the origin.
    Page {
        url: String,
        status: StatusCode,
        body: String,
    },
}

/// GETs `url` and follows redirects. Until the walk has reached `origin` it
/// follows them anywhere (a latchkey URL that sends the browser to the
/// upstream); once there, the first redirect elsewhere ends it.
pub async fn walk(browser: &reqwest::Client, url: &str, origin: &str) -> Landing {
    let mut url = Url::parse(url).unwrap();
    let origin = Url::parse(origin).unwrap().origin();
    let mut reached = url.origin() == origin;
    for _ in 0..20 {
        let res = browser.get(url.clone()).send().await.unwrap();
        match redirect_target(&url, &res) {
            Some(next) if reached && next.origin() != origin => return Landing::Left(next.into()),
            Some(next) => {
                reached |= next.origin() == origin;
                url = next;
            }
            None => {
                let status = res.status();
                let body = res.text().await.unwrap();
                return Landing::Page {
                    url: url.into(),
                    status,
                    body,
                };
            }
        }
    }
    panic!("more than 20 redirects from {url}");
}

/// The absolute `Location` of a redirect answer.
pub fn redirect_target(base: &Url, res: &reqwest::Response) -> Option<Url> {
    if !res.status().is_redirection() {
        return None;
    }
    let location = res.headers().get("location")?.to_str().unwrap();
    Some(base.join(location).unwrap())
}

/// The `action` of the form whose `id` is `form_id`, resolved against the
/// page's URL.
pub fn form_action(page_url: &str, html: &str, form_id: &str) -> Option<String> {
    let start = html.find(&format!("<form id=\"{form_id}\""))?;
    let tag = &html[start..start + html[start..].find('>')?];
    let value = tag.split("action=\"").nth(1)?.split('"').next()?;
    let action = crate::support::html_unescape(value);
    Some(Url::parse(page_url).unwrap().join(&action).unwrap().into())
}
