//! The checks of a tenant file that span more than one field: references
//! between sections, duplicates, URLs, hosts and ranges, run by
//! [`super::file::parse_tenant_file`] once the file has its final shape.
//! Each check stops at the first problem and names the path and line of
//! the offending node.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::Ipv6Addr;
use std::ops::RangeInclusive;

use url::Url;

use super::file::{TemplateSyntax, TenantFileError};
use super::model::*;
use super::yaml::{LineMap, index_path, key_path};
use crate::services::email_address;

mod clients;
mod connections;
mod languages;
mod providers;

/// Scopes that belong to OpenID Connect rather than to any API.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
/// Accepted access and ID token lifetimes, in seconds (one minute to 30 days).
const TOKEN_LIFETIME: RangeInclusive<u32> = 60..=2_592_000;

type Check = Result<(), TenantFileError>;

/// The semantic checks, run after the file has its final shape. Each stops
/// at the first problem.
pub(super) struct Validator<'a> {
    file: &'a TenantFile,
    lines: &'a LineMap,
    /// Every spelling of the My Account audience this tenant serves.
    my_account_audiences: HashSet<String>,
    /// Every spelling of the Management API audience this tenant serves.
    management_audiences: HashSet<String>,
    templates: &'a dyn TemplateSyntax,
}

impl<'a> Validator<'a> {
    pub(super) fn new(
        file: &'a TenantFile,
        lines: &'a LineMap,
        templates: &'a dyn TemplateSyntax,
    ) -> Self {
        let my_account_audiences = file
            .tenant
            .domains
            .iter()
            .flat_map(|domain| {
                let https = is_loopback_host(domain).then(|| format!("https://{domain}/me/"));
                std::iter::once(my_account_audience(domain)).chain(https)
            })
            .collect();
        let management_audiences = file
            .tenant
            .domains
            .iter()
            .flat_map(|domain| {
                let https = is_loopback_host(domain).then(|| format!("https://{domain}/api/v2/"));
                std::iter::once(management_audience(domain)).chain(https)
            })
            .collect();
        Self {
            file,
            lines,
            my_account_audiences,
            management_audiences,
            templates,
        }
    }

    pub(super) fn error(
        &self,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> TenantFileError {
        let path = path.into();
        TenantFileError {
            line: self.lines.line_of(&path),
            path,
            message: message.into(),
        }
    }

    pub(super) fn ensure(
        &self,
        ok: bool,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Check {
        if ok {
            Ok(())
        } else {
            Err(self.error(path, message))
        }
    }

    pub(super) fn in_range(
        &self,
        path: impl Into<String>,
        value: u32,
        range: RangeInclusive<u32>,
    ) -> Check {
        let message = match (range.start(), range.end()) {
            (low, &u32::MAX) => format!("must be at least {low}, not {value}"),
            (low, high) => format!("must be between {low} and {high}, not {value}"),
        };
        self.ensure(range.contains(&value), path, message)
    }

    /// Refuses the second of any two items with equal keys. `items` yields
    /// each item's path and key; `message` says what is duplicated.
    pub(super) fn unique<K: Eq + Hash>(
        &self,
        items: impl IntoIterator<Item = (String, K)>,
        message: impl Fn(&K) -> String,
    ) -> Check {
        let mut seen: HashMap<K, String> = HashMap::new();
        for (path, key) in items {
            if let Some(first) = seen.get(&key) {
                let first = match self.lines.line_of(first) {
                    Some(line) => format!("line {line}"),
                    None => first.clone(),
                };
                return Err(self.error(path, format!("{} (first at {first})", message(&key))));
            }
            seen.insert(key, path);
        }
        Ok(())
    }

    pub(super) fn validate(&self) -> Check {
        self.tenant()?;
        self.in_range(
            "my_account_api.token_lifetime",
            self.file.my_account_api.token_lifetime,
            TOKEN_LIFETIME,
        )?;
        self.in_range(
            "management_api.token_lifetime",
            self.file.management_api.token_lifetime,
            TOKEN_LIFETIME,
        )?;
        self.in_range(
            "my_account_api.two_factor_window_seconds",
            self.file.my_account_api.two_factor_window_seconds,
            60..=86_400,
        )?;
        self.unique(indexed("factors", &self.file.factors, |f| *f), |f| {
            format!("duplicate factor {f}")
        })?;
        self.connections()?;
        self.clients()?;
        self.resource_servers()?;
        self.client_grants()?;
        self.roles()?;
        self.users()?;
        self.providers()?;
        self.push_providers()?;
        self.messages()?;
        self.languages()
    }

    fn tenant(&self) -> Check {
        let tenant = &self.file.tenant;
        self.ensure(
            is_word(&tenant.name, 64, |b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
            }),
            "tenant.name",
            "must be 1 to 64 characters of a-z, 0-9 and -",
        )?;
        self.ensure(
            !tenant.domains.is_empty(),
            "tenant.domains",
            "at least one domain is required",
        )?;
        for (i, domain) in tenant.domains.iter().enumerate() {
            check_domain(domain).map_err(|m| self.error(format!("tenant.domains[{i}]"), m))?;
        }
        self.unique(
            indexed("tenant.domains", &tenant.domains, String::as_str),
            |d| format!("duplicate domain {d:?}"),
        )?;

        self.in_range(
            "tenant.session_lifetime_hours",
            tenant.session_lifetime_hours,
            1..=u32::MAX,
        )?;
        self.in_range(
            "tenant.idle_session_lifetime_hours",
            tenant.idle_session_lifetime_hours,
            1..=tenant.session_lifetime_hours,
        )?;
        let brute_force = &tenant.brute_force_protection;
        self.in_range(
            "tenant.brute_force_protection.max_attempts",
            brute_force.max_attempts,
            1..=100,
        )?;
        self.in_range(
            "tenant.brute_force_protection.block_minutes",
            brute_force.block_minutes,
            1..=u32::MAX,
        )?;
        let stages = &tenant.suspicious_ip_throttling.stage;
        for (name, stage) in [
            ("pre-login", stages.pre_login),
            ("pre-login-tenant", stages.pre_login_tenant),
            ("login-transaction", stages.login_transaction),
        ] {
            let path = format!("tenant.suspicious_ip_throttling.stage.{name}");
            self.in_range(
                format!("{path}.max_attempts"),
                stage.max_attempts,
                1..=1_000_000,
            )?;
            // Up to a day between two attempts.
            self.in_range(format!("{path}.rate"), stage.rate, 1..=86_400_000)?;
        }

        let login_page = &tenant.login_page;
        if let Some(color) = &login_page.primary_color {
            let hex = color.strip_prefix('#').unwrap_or_default();
            self.ensure(
                hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
                "tenant.login_page.primary_color",
                format!("{color:?} is not a #rrggbb colour"),
            )?;
        }
        if let Some(logo) = &login_page.logo_url {
            check_url(logo, false).map_err(|m| self.error("tenant.login_page.logo_url", m))?;
        }
        let passkeys = &tenant.passkeys;
        if let Some(rp_id) = &passkeys.rp_id {
            self.ensure(
                !rp_id.is_empty()
                    && rp_id.len() <= 253
                    && rp_id.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                    }),
                "tenant.passkeys.rp_id",
                format!("{rp_id:?} is not a domain name"),
            )?;
        }
        if let Some(name) = &passkeys.rp_name {
            self.ensure(
                !name.trim().is_empty() && name.chars().count() <= 128,
                "tenant.passkeys.rp_name",
                "must be 1 to 128 characters long".to_string(),
            )?;
        }
        for (i, origin) in passkeys.origins.iter().enumerate() {
            let path = format!("tenant.passkeys.origins[{i}]");
            check_url(origin, true).map_err(|m| self.error(&path, m))?;
        }
        Ok(())
    }
}

/// Pairs each item of the sequence at `path` with its own path and `key`.
fn indexed<'t, T, K>(
    path: &str,
    items: &'t [T],
    key: impl Fn(&'t T) -> K,
) -> impl Iterator<Item = (String, K)> {
    items
        .iter()
        .enumerate()
        .map(move |(i, item)| (index_path(path, i), key(item)))
}

/// Moves an item's path down to its field `field`.
fn at<K>(field: &str) -> impl Fn((String, K)) -> (String, K) {
    move |(path, key)| (key_path(&path, field), key)
}

/// Whether `text` is 1 to `max_len` bytes, all of them `allowed`.
fn is_word(text: &str, max_len: usize, allowed: impl Fn(u8) -> bool) -> bool {
    (1..=max_len).contains(&text.len()) && text.bytes().all(allowed)
}

/// The name of an environment variable that holds a secret.
fn is_env_name(name: &str) -> bool {
    is_word(name, 128, |b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The characters of client and user ids.
fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// `host` or `host:port`, lowercase, where host is a DNS name, an IPv4
/// address or a bracketed IPv6 address.
fn check_domain(domain: &str) -> Result<(), String> {
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("{domain:?} must be lowercase"));
    }
    let (host_ok, port) = match domain.strip_prefix('[') {
        Some(rest) => {
            let (address, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{domain:?} has an unclosed ["))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| format!("{domain:?} has text after the address"))?,
                ),
            };
            (address.parse::<Ipv6Addr>().is_ok(), port)
        }
        None => {
            let (host, port) = domain
                .split_once(':')
                .map_or((domain, None), |(host, port)| (host, Some(port)));
            (is_dns_name(host), port)
        }
    };
    if !host_ok {
        return Err(format!("{domain:?} is not a host name or \"host:port\""));
    }
    if port.is_some_and(|port| !port.parse::<u16>().is_ok_and(|p| p != 0)) {
        return Err(format!("{domain:?} has an invalid port"));
    }
    Ok(())
}

/// Dot-separated labels of lowercase letters, digits and inner hyphens.
fn is_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            is_word(label, 63, |b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
            }) && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// An absolute http(s) URL; an origin additionally has nothing after the
/// host and port but an optional `/`.
fn check_url(text: &str, origin_only: bool) -> Result<(), String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} must be an http or https URL"));
    }
    let bare = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if origin_only && !bare {
        return Err(format!(
            "{text:?} is not an origin: only scheme, host and port are allowed"
        ));
    }
    Ok(())
}

/// An Argon2id hash in PHC form, or a 60-character bcrypt hash.
fn is_supported_hash(hash: &str) -> bool {
    let bcrypt = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix));
    (bcrypt && hash.len() == 60) || hash.starts_with("$argon2id$")
}
