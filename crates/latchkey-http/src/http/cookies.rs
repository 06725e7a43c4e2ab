//! The few cookies latchkey sets: the login session, the login
//! transaction binding, a login's second step and the binding of a browser
//! connecting an account. HttpOnly always; Secure and SameSite=None outside
//! localhost (silent authentication runs in a cross-site iframe there).

use axum::http::{HeaderMap, HeaderValue, header};

use super::is_local_host;

pub(crate) const SESSION: &str = "latchkey_session";
pub(crate) const TRANSACTION: &str = "latchkey_tx";
/// The second step of a login: its `mfa_token`.
pub(crate) const MFA: &str = "latchkey_mfa";
/// The browser that is connecting an account at a provider.
pub(crate) const CONNECT: &str = "latchkey_connect";

pub(crate) fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub(crate) fn set(host: &str, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let attrs = if is_local_host(host) {
        "SameSite=Lax"
    } else {
        "SameSite=None; Secure"
    };
    let v = format!("{name}={value}; Path=/; HttpOnly; {attrs}; Max-Age={max_age}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) fn clear(host: &str, name: &str) -> HeaderValue {
    set(host, name, "", 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_many() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; latchkey_session=xyz; b=2"),
        );
        assert_eq!(get(&h, SESSION).as_deref(), Some("xyz"));
        assert_eq!(get(&h, "c"), None);
    }

    #[test]
    fn secure_outside_localhost() {
        assert!(
            set("login.acme.test", SESSION, "v", 10)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
        assert!(
            !set("localhost:3000", SESSION, "v", 10)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }
}
