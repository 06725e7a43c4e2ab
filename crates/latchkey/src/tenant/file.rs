//! Tenant files: the YAML (or JSON) an operator writes to declare a tenant's
//! domains, applications, APIs, roles and users.
//!
//! [`parse_tenant_file`] reads the text, maps it onto the types of
//! [`super::model`] and checks everything that spans more than one field:
//! references between sections, duplicates, URLs and ranges. Every error
//! carries the path of the offending node and the line it was written on.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::Hash;
use std::net::Ipv6Addr;
use std::ops::RangeInclusive;

use serde_json::Value;
use serde_path_to_error::Segment;
use url::Url;

pub use super::model::*;
use super::yaml::{self, LineMap, index_path, key_path};
use crate::services::email_address;

/// Why a tenant file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantFileError {
    /// 1-based line of the offending node, when it is known.
    pub line: Option<usize>,
    /// Where in the document, as in `clients[1].grant_types[2]`; empty for
    /// the document as a whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for TenantFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        // Some messages already say where they apply ("unknown key "x" in
        // clients[0]"); repeating the path in front would only add noise.
        let located = self.path.is_empty() || self.message.ends_with(&format!(" in {}", self.path));
        if !located {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for TenantFileError {}

/// The syntax of message templates, which tenant files are checked against:
/// given by the delivery adapter that renders them.
pub trait TemplateSyntax: Send + Sync {
    /// Whether `source` compiles; the error says why not.
    fn check(&self, source: &str) -> Result<(), String>;
}

/// Parses and validates a tenant file, its message templates against
/// `templates`. Defaults are filled in, so the result can be applied as is.
pub fn parse_tenant_file(
    text: &str,
    templates: &dyn TemplateSyntax,
) -> Result<TenantFile, TenantFileError> {
    let yaml::Document { root, lines } = yaml::parse(text)?;
    match &root {
        Value::Object(_) => {}
        Value::Null => return Err(document_error(&lines, "the tenant file is empty")),
        _ => {
            return Err(document_error(
                &lines,
                "the tenant file must be a mapping with a `tenant` key at the top",
            ));
        }
    }
    let mut file: TenantFile =
        serde_path_to_error::deserialize(root).map_err(|error| shape_error(&error, &lines))?;
    fill_derived_defaults(&mut file);
    Validator::new(&file, &lines, templates).validate()?;
    // Users' emails in their normal form, as every account's is (the
    // validator refused those that have none).
    for user in &mut file.users {
        if let Ok(email) = email_address::normalize(&user.email) {
            user.email = email;
        }
    }
    Ok(file)
}

/// Reads the tenant file at `path` (at most [`yaml::MAX_FILE_BYTES`], looked
/// at before a byte is read) and parses it. Errors name the file.
pub fn read_tenant_file(
    path: &std::path::Path,
    templates: &dyn TemplateSyntax,
) -> Result<TenantFile, String> {
    let name = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| format!("reading {name}: {e}"))?
        .len();
    if size > yaml::MAX_FILE_BYTES as u64 {
        return Err(format!(
            "{name}: {}",
            yaml::too_large(usize::try_from(size).unwrap_or(usize::MAX))
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {name}: {e}"))?;
    parse_tenant_file(&text, templates).map_err(|e| format!("{name}: {e}"))
}

fn document_error(lines: &LineMap, message: &str) -> TenantFileError {
    TenantFileError {
        line: lines.line_of(""),
        path: String::new(),
        message: message.to_owned(),
    }
}

/// Turns a deserialisation error into one that names the key involved in
/// the operator's terms and points at its line.
fn shape_error(
    error: &serde_path_to_error::Error<serde_json::Error>,
    lines: &LineMap,
) -> TenantFileError {
    let segments: Vec<&Segment> = error.path().iter().collect();
    let path = format_path(&segments);
    let line = lines.line_of(&path);
    let message = error.inner().to_string();

    if let (Some(key), Some((_, parent))) = (
        quoted_name(&message, "unknown field"),
        segments.split_last(),
    ) {
        let parent = format_path(parent);
        let message = if parent.is_empty() {
            format!("unknown top-level key {key:?}")
        } else {
            format!("unknown key {key:?} in {parent}")
        };
        return TenantFileError {
            line,
            path: parent,
            message,
        };
    }
    let message = match quoted_name(&message, "missing field") {
        Some(key) => format!("missing required key {key:?}"),
        None => message,
    };
    TenantFileError {
        line,
        path,
        message,
    }
}

/// `name` out of a serde message of the form "{prefix} `name`…".
fn quoted_name<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix(" `")?;
    rest.split_once('`').map(|(name, _)| name)
}

fn format_path(segments: &[&Segment]) -> String {
    segments
        .iter()
        .fold(String::new(), |path, segment| match segment {
            Segment::Seq { index } => index_path(&path, *index),
            Segment::Map { key } | Segment::Enum { variant: key } => key_path(&path, key),
            Segment::Unknown => key_path(&path, "?"),
        })
}

/// Defaults that depend on other fields, which serde cannot express.
fn fill_derived_defaults(file: &mut TenantFile) {
    for client in &mut file.clients {
        if client.name.is_empty() {
            client.name = client.client_id.clone();
        }
        client.token_endpoint_auth_method = Some(client.auth_method());
    }
    for server in &mut file.resource_servers {
        if server.name.is_empty() {
            server.name = server.identifier.clone();
        }
    }
}

/// Scopes that belong to OpenID Connect rather than to any API.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
/// Accepted access and ID token lifetimes, in seconds (one minute to 30 days).
const TOKEN_LIFETIME: RangeInclusive<u32> = 60..=2_592_000;

type Check = Result<(), TenantFileError>;

/// The semantic checks, run after the file has its final shape. Each stops
/// at the first problem.
struct Validator<'a> {
    file: &'a TenantFile,
    lines: &'a LineMap,
    /// Every spelling of the My Account audience this tenant serves.
    my_account_audiences: HashSet<String>,
    templates: &'a dyn TemplateSyntax,
}

impl<'a> Validator<'a> {
    fn new(file: &'a TenantFile, lines: &'a LineMap, templates: &'a dyn TemplateSyntax) -> Self {
        let my_account_audiences = file
            .tenant
            .domains
            .iter()
            .flat_map(|domain| {
                let https = is_loopback_host(domain).then(|| format!("https://{domain}/me/"));
                std::iter::once(my_account_audience(domain)).chain(https)
            })
            .collect();
        Self {
            file,
            lines,
            my_account_audiences,
            templates,
        }
    }

    fn error(&self, path: impl Into<String>, message: impl Into<String>) -> TenantFileError {
        let path = path.into();
        TenantFileError {
            line: self.lines.line_of(&path),
            path,
            message: message.into(),
        }
    }

    fn ensure(&self, ok: bool, path: impl Into<String>, message: impl Into<String>) -> Check {
        if ok {
            Ok(())
        } else {
            Err(self.error(path, message))
        }
    }

    fn in_range(&self, path: impl Into<String>, value: u32, range: RangeInclusive<u32>) -> Check {
        let message = match (range.start(), range.end()) {
            (low, &u32::MAX) => format!("must be at least {low}, not {value}"),
            (low, high) => format!("must be between {low} and {high}, not {value}"),
        };
        self.ensure(range.contains(&value), path, message)
    }

    /// Refuses the second of any two items with equal keys. `items` yields
    /// each item's path and key; `message` says what is duplicated.
    fn unique<K: Eq + Hash>(
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

    fn validate(&self) -> Check {
        self.tenant()?;
        self.in_range(
            "my_account_api.token_lifetime",
            self.file.my_account_api.token_lifetime,
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
        self.messages()
    }

    fn messages(&self) -> Check {
        let lang_ok = |l: &str| {
            let mut parts = l.split('-');
            let lang = parts.next().unwrap_or("");
            let region = parts.next();
            (2..=3).contains(&lang.len())
                && lang.bytes().all(|b| b.is_ascii_lowercase())
                && region.is_none_or(|r| {
                    (2..=3).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
                })
                && parts.next().is_none()
        };
        let compiles = |path: String, source: &str| -> Check {
            self.templates
                .check(source)
                .map_err(|e| self.error(path, format!("is not a valid template: {e}")))
        };
        let m = &self.file.messages;
        for (lang, t) in &m.code_email {
            let base = format!("messages.code_email.{lang}");
            self.ensure(
                lang_ok(lang),
                base.clone(),
                format!("{lang:?} is not a language tag"),
            )?;
            compiles(format!("{base}.subject"), &t.subject)?;
            compiles(format!("{base}.text"), &t.text)?;
            compiles(format!("{base}.html"), &t.html)?;
        }
        for (name, map) in [("code_sms", &m.code_sms), ("code_voice", &m.code_voice)] {
            for (lang, t) in map {
                let path = format!("messages.{name}.{lang}");
                self.ensure(
                    lang_ok(lang),
                    path.clone(),
                    format!("{lang:?} is not a language tag"),
                )?;
                compiles(path, t)?;
            }
        }
        Ok(())
    }

    fn providers(&self) -> Check {
        let env_name = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        if let Some(email) = &self.file.email_provider {
            let smtp = &email.smtp;
            self.ensure(
                !smtp.host.is_empty()
                    && smtp.host.len() <= 253
                    && !smtp.host.contains(char::is_whitespace),
                "email_provider.smtp.host",
                format!("{:?} is not a host name", smtp.host),
            )?;
            self.ensure(
                smtp.port != 0,
                "email_provider.smtp.port",
                "must be 1 to 65535".to_string(),
            )?;
            self.ensure(
                smtp.from.contains('@') && smtp.from.len() <= 320,
                "email_provider.smtp.from",
                format!("{:?} is not an address", smtp.from),
            )?;
            if let Some(v) = &smtp.password_env {
                self.ensure(
                    env_name(v),
                    "email_provider.smtp.password_env",
                    "is not an environment variable name".to_string(),
                )?;
            }
            if let Some(path) = &smtp.ca_file {
                self.ensure(
                    !path.trim().is_empty(),
                    "email_provider.smtp.ca_file",
                    "must name a PEM file".to_string(),
                )?;
                self.ensure(
                    smtp.security != SmtpSecurity::None,
                    "email_provider.smtp.ca_file",
                    "needs security starttls or tls".to_string(),
                )?;
            }
            self.in_range(
                "email_provider.smtp.timeout_seconds",
                smtp.timeout_seconds,
                1..=120,
            )?;
        }
        match &self.file.sms_provider {
            Some(SmsProvider::Twilio(t)) => {
                check_url(&t.base_url, false)
                    .map_err(|m| self.error("sms_provider.twilio.base_url", m))?;
                self.ensure(
                    !t.account_sid.is_empty()
                        && t.account_sid.bytes().all(|b| b.is_ascii_alphanumeric()),
                    "sms_provider.twilio.account_sid",
                    "must be letters and digits".to_string(),
                )?;
                self.ensure(
                    env_name(&t.auth_token_env),
                    "sms_provider.twilio.auth_token_env",
                    "is not an environment variable name".to_string(),
                )?;
                self.ensure(
                    t.from.starts_with('+')
                        && t.from.len() > 4
                        && t.from[1..].bytes().all(|b| b.is_ascii_digit()),
                    "sms_provider.twilio.from",
                    "must be an E.164 number (+15550001111)".to_string(),
                )?;
                self.in_range(
                    "sms_provider.twilio.timeout_seconds",
                    t.timeout_seconds,
                    1..=120,
                )?;
            }
            Some(SmsProvider::Webhook(w)) => {
                check_url(&w.url, false).map_err(|m| self.error("sms_provider.webhook.url", m))?;
                self.ensure(
                    env_name(&w.secret_env),
                    "sms_provider.webhook.secret_env",
                    "is not an environment variable name".to_string(),
                )?;
                self.in_range(
                    "sms_provider.webhook.timeout_seconds",
                    w.timeout_seconds,
                    1..=120,
                )?;
            }
            None => {}
        }
        Ok(())
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

    fn connections(&self) -> Check {
        for (i, connection) in self.file.connections.iter().enumerate() {
            let path = format!("connections[{i}]");
            let name = &connection.name;
            self.ensure(
                is_word(name, 128, |b| b.is_ascii_alphanumeric() || b == b'-')
                    && !name.starts_with('-')
                    && !name.ends_with('-'),
                format!("{path}.name"),
                "must be 1 to 128 letters, digits and -, not starting or ending with -",
            )?;
            self.password_policy(
                &format!("{path}.password_policy"),
                &connection.password_policy,
            )?;
        }
        let names =
            indexed("connections", &self.file.connections, |c| c.name.as_str()).map(at("name"));
        self.unique(names, |name| format!("duplicate connection name {name:?}"))
    }

    fn password_policy(&self, path: &str, policy: &PasswordPolicy) -> Check {
        self.in_range(format!("{path}.min_length"), policy.min_length, 1..=72)?;
        self.in_range(format!("{path}.history.size"), policy.history.size, 1..=24)?;
        let types_path = format!("{path}.character_types");
        self.unique(indexed(&types_path, &policy.character_types, |t| *t), |t| {
            format!("duplicate character type {t}")
        })?;
        self.ensure(
            policy.character_type_rule == CharacterTypeRule::All
                || policy.character_types.len() == CharacterType::ALL.len(),
            format!("{path}.character_type_rule"),
            "three_of_four needs all four character_types",
        )
    }

    fn clients(&self) -> Check {
        for (i, client) in self.file.clients.iter().enumerate() {
            self.client(&format!("clients[{i}]"), client)?;
        }
        let ids =
            indexed("clients", &self.file.clients, |c| c.client_id.as_str()).map(at("client_id"));
        self.unique(ids, |id| format!("duplicate client_id {id:?}"))
    }

    fn client(&self, path: &str, client: &Client) -> Check {
        self.ensure(
            is_word(&client.client_id, 64, is_id_byte),
            format!("{path}.client_id"),
            "must be 1 to 64 characters of A-Z, a-z, 0-9, _, . and -",
        )?;

        let secret_path = format!("{path}.client_secret");
        let secret = client.client_secret.as_deref();
        self.ensure(
            secret.is_none_or(|s| s.chars().count() >= 8),
            &secret_path,
            "must be at least 8 characters long",
        )?;
        let method = client.auth_method();
        if method == TokenEndpointAuthMethod::None {
            self.ensure(
                secret.is_none(),
                secret_path,
                "a client with token_endpoint_auth_method none cannot have a client_secret",
            )?;
            self.ensure(
                !client.token_endpoint_ip_header_trusted,
                format!("{path}.token_endpoint_ip_header_trusted"),
                "only a client that authenticates with its client_secret may name its users' IP \
                 (auth0-forwarded-for)",
            )?;
        } else {
            self.ensure(
                secret.is_some(),
                format!("{path}.token_endpoint_auth_method"),
                format!("token_endpoint_auth_method {method} requires a client_secret"),
            )?;
        }

        for (field, urls, origin_only) in [
            ("callbacks", &client.callbacks, false),
            ("allowed_origins", &client.allowed_origins, true),
            ("web_origins", &client.web_origins, true),
            ("allowed_logout_urls", &client.allowed_logout_urls, false),
        ] {
            for (j, url) in urls.iter().enumerate() {
                check_url(url, origin_only)
                    .map_err(|m| self.error(format!("{path}.{field}[{j}]"), m))?;
            }
        }

        let grants_path = format!("{path}.grant_types");
        self.unique(indexed(&grants_path, &client.grant_types, |g| *g), |g| {
            format!("duplicate grant type {g}")
        })?;
        if let Some(j) = client
            .grant_types
            .iter()
            .position(|g| *g == GrantType::ClientCredentials)
        {
            self.ensure(
                secret.is_some(),
                index_path(&grants_path, j),
                "client_credentials requires a client_secret",
            )?;
        }

        self.in_range(
            format!("{path}.jwt_configuration.lifetime_in_seconds"),
            client.jwt_configuration.lifetime_in_seconds,
            TOKEN_LIFETIME,
        )?;
        let refresh = &client.refresh_token;
        let refresh_path = format!("{path}.refresh_token");
        self.in_range(
            format!("{refresh_path}.token_lifetime"),
            refresh.token_lifetime,
            TOKEN_LIFETIME,
        )?;
        self.in_range(
            format!("{refresh_path}.idle_token_lifetime"),
            refresh.idle_token_lifetime,
            60..=refresh.token_lifetime,
        )?;
        self.in_range(format!("{refresh_path}.leeway"), refresh.leeway, 0..=60)
    }

    fn resource_servers(&self) -> Check {
        for (i, server) in self.file.resource_servers.iter().enumerate() {
            let path = format!("resource_servers[{i}]");
            let identifier_path = format!("{path}.identifier");
            self.ensure(
                !server.identifier.trim().is_empty(),
                &identifier_path,
                "must not be empty",
            )?;
            self.ensure(
                !self.my_account_audiences.contains(&server.identifier),
                identifier_path,
                "is the audience of the built-in My Account API",
            )?;
            let scopes_path = format!("{path}.scopes");
            for (j, scope) in server.scopes.iter().enumerate() {
                self.ensure(
                    !scope.is_empty() && !scope.chars().any(char::is_whitespace),
                    index_path(&scopes_path, j),
                    "a scope must be non-empty and contain no spaces",
                )?;
            }
            self.unique(indexed(&scopes_path, &server.scopes, String::as_str), |s| {
                format!("duplicate scope {s:?}")
            })?;
            self.in_range(
                format!("{path}.token_lifetime"),
                server.token_lifetime,
                TOKEN_LIFETIME,
            )?;
        }
        let identifiers = indexed("resource_servers", &self.file.resource_servers, |s| {
            s.identifier.as_str()
        });
        self.unique(identifiers.map(at("identifier")), |id| {
            format!("duplicate resource server identifier {id:?}")
        })
    }

    /// The scopes of the API with this audience, or `None` if there is none.
    fn api_scopes(&self, audience: &str) -> Option<Vec<&'a str>> {
        if self.my_account_audiences.contains(audience) {
            return Some(MY_ACCOUNT_SCOPES.to_vec());
        }
        let server = self
            .file
            .resource_servers
            .iter()
            .find(|s| s.identifier == audience)?;
        Some(server.scopes.iter().map(String::as_str).collect())
    }

    fn client_grants(&self) -> Check {
        for (i, grant) in self.file.client_grants.iter().enumerate() {
            let path = format!("client_grants[{i}]");
            self.ensure(
                self.file
                    .clients
                    .iter()
                    .any(|c| c.client_id == grant.client_id),
                format!("{path}.client_id"),
                format!("no client has client_id {:?}", grant.client_id),
            )?;
            let Some(scopes) = self.api_scopes(&grant.audience) else {
                let message = format!(
                    "{:?} is neither a resource server identifier nor a My Account audience of this tenant",
                    grant.audience
                );
                return Err(self.error(format!("{path}.audience"), message));
            };
            self.ensure(
                grant.subject_type == SubjectType::User
                    || !self.my_account_audiences.contains(&grant.audience),
                format!("{path}.subject_type"),
                "the My Account API does not allow client access",
            )?;
            let scope_path = format!("{path}.scope");
            for (j, scope) in grant.scope.iter().enumerate() {
                let scope_path = index_path(&scope_path, j);
                self.ensure(
                    !OIDC_SCOPES.contains(&scope.as_str()),
                    &scope_path,
                    format!("{scope:?} is an OpenID Connect scope and cannot be granted to an API"),
                )?;
                self.ensure(
                    scopes.contains(&scope.as_str()),
                    scope_path,
                    format!("{scope:?} is not a scope of {:?}", grant.audience),
                )?;
            }
            self.unique(indexed(&scope_path, &grant.scope, String::as_str), |s| {
                format!("duplicate scope {s:?}")
            })?;
        }
        let keys = indexed("client_grants", &self.file.client_grants, |g| {
            (g.client_id.as_str(), g.audience.as_str(), g.subject_type)
        });
        self.unique(keys, |(client_id, audience, subject_type)| {
            format!("duplicate {subject_type} grant of {audience:?} to client {client_id:?}")
        })
    }

    fn roles(&self) -> Check {
        for (i, role) in self.file.roles.iter().enumerate() {
            let path = format!("roles[{i}]");
            self.ensure(
                !role.name.trim().is_empty(),
                format!("{path}.name"),
                "must not be empty",
            )?;
            let permissions_path = format!("{path}.permissions");
            for (j, permission) in role.permissions.iter().enumerate() {
                let path = index_path(&permissions_path, j);
                let audience = &permission.resource_server_identifier;
                let name = &permission.permission_name;
                let Some(scopes) = self.api_scopes(audience) else {
                    let message = format!("no resource server has identifier {audience:?}");
                    return Err(self.error(format!("{path}.resource_server_identifier"), message));
                };
                self.ensure(
                    scopes.contains(&name.as_str()),
                    format!("{path}.permission_name"),
                    format!("{name:?} is not a scope of {audience:?}"),
                )?;
            }
            let permissions = indexed(&permissions_path, &role.permissions, |p| {
                (&p.resource_server_identifier, &p.permission_name)
            });
            self.unique(permissions, |(audience, name)| {
                format!("duplicate permission {name:?} of {audience:?}")
            })?;
        }
        let names = indexed("roles", &self.file.roles, |r| r.name.as_str()).map(at("name"));
        self.unique(names, |name| format!("duplicate role name {name:?}"))
    }

    fn users(&self) -> Check {
        for (i, user) in self.file.users.iter().enumerate() {
            self.user(&format!("users[{i}]"), user)?;
        }
        // Emails are compared in their normal form without regard to case,
        // so that spellings that look alike are one address.
        let emails = indexed("users", &self.file.users, |u| {
            let normal = email_address::normalize(&u.email).unwrap_or_default();
            (u.connection.as_str(), email_address::key(&normal))
        })
        .map(at("email"));
        self.unique(emails, |(connection, email)| {
            format!("duplicate email {email:?} in connection {connection:?}")
        })?;
        let ids = self.file.users.iter().enumerate().filter_map(|(i, u)| {
            let id = u.user_id.as_deref()?;
            Some((format!("users[{i}].user_id"), id))
        });
        self.unique(ids, |id| format!("duplicate user_id {id:?}"))
    }

    fn user(&self, path: &str, user: &User) -> Check {
        if let Err(e) = email_address::normalize(&user.email) {
            return Err(self.error(format!("{path}.email"), format!("{:?} {e}", user.email)));
        }
        if let Some(hash) = &user.password_hash {
            let hash_path = format!("{path}.password_hash");
            self.ensure(
                user.password.is_none(),
                &hash_path,
                "give either password or password_hash, not both",
            )?;
            self.ensure(
                is_supported_hash(hash),
                hash_path,
                "must be an Argon2id ($argon2id$…) or bcrypt ($2a$, $2b$, $2y$) hash",
            )?;
        }
        if !self
            .file
            .connections
            .iter()
            .any(|c| c.name == user.connection)
        {
            let mut message = format!("no connection is named {:?}", user.connection);
            if self.file.connections.is_empty() {
                message.push_str(" (the file defines no connections)");
            }
            return Err(self.error(format!("{path}.connection"), message));
        }
        if let Some(id) = &user.user_id {
            let local = id.strip_prefix("auth0|").unwrap_or_default();
            self.ensure(
                is_word(local, 128, is_id_byte),
                format!("{path}.user_id"),
                "must be \"auth0|\" followed by 1 to 128 characters of A-Z, a-z, 0-9, _, . and -",
            )?;
        }
        let roles_path = format!("{path}.roles");
        for (j, role) in user.roles.iter().enumerate() {
            self.ensure(
                self.file.roles.iter().any(|r| &r.name == role),
                index_path(&roles_path, j),
                format!("no role is named {role:?}"),
            )?;
        }
        self.unique(indexed(&roles_path, &user.roles, String::as_str), |r| {
            format!("duplicate role {r:?}")
        })
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

#[cfg(test)]
#[allow(clippy::panic)] // Failing loudly is what a test is for.
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"tenant: { name: acme, domains: ["localhost:3917"], friendly_name: "Acme" }
my_account_api:
  active: true
  user_policy: require_client_grant
  rate_limits: { tenant_per_second: 25, user_per_minute: 0 }
factors: [password, totp, recovery-code]
connections:
  - name: Username-Password-Authentication
    strategy: auth0
    password_policy:
      min_length: 8
      character_types: [lowercase, uppercase, number, special]
      character_type_rule: three_of_four
      identical_characters: block
      sequential_characters: block
      max_length_exceeded: error
      history: { active: true, size: 5 }
      dictionary: { active: true, default: en_10k }
      profile_data: { active: true, blocked_fields: [name, email] }
clients:
  - client_id: spa
    name: Demo SPA
    app_type: spa
    callbacks: ["http://localhost:5173/cb"]
    allowed_origins: ["http://localhost:5173"]
    web_origins: ["http://localhost:5173"]
    allowed_logout_urls: ["http://localhost:5173/"]
    grant_types: [authorization_code, refresh_token, password, "http://auth0.com/oauth/grant-type/password-realm"]
  - { client_id: backend, client_secret: "s3cret-value", app_type: regular_web, grant_types: [client_credentials] }
client_grants:
  - { client_id: spa, audience: "http://localhost:3917/me/", subject_type: user, scope: [read:me:authentication_methods, create:me:authentication_methods] }
  - { client_id: backend, audience: "https://api.acme.test/", subject_type: client, scope: [read:things] }
resource_servers:
  - identifier: "https://api.acme.test/"
    name: Things
    scopes: [read:things, { value: write:things, description: Change things }]
    token_lifetime: 86400
    enforce_policies: false
    allow_offline_access: true
roles:
  - name: admin
    permissions: [{ resource_server_identifier: "https://api.acme.test/", permission_name: read:things }]
users:
  - { email: alice@example.com, password: "Tr0ub4dor&3-horse", connection: Username-Password-Authentication,
      email_verified: true, user_id: "auth0|alice", roles: [admin], user_metadata: { theme: dark, tags: [1, 2.5, null] } }
"#;

    const EXAMPLE_JSON: &str = r#"{
  "tenant": { "name": "acme", "domains": ["localhost:3917"], "friendly_name": "Acme" },
  "my_account_api": { "active": true, "user_policy": "require_client_grant",
                      "rate_limits": { "tenant_per_second": 25, "user_per_minute": 0 } },
  "factors": ["password", "totp", "recovery-code"],
  "connections": [{
    "name": "Username-Password-Authentication", "strategy": "auth0",
    "password_policy": {
      "min_length": 8, "character_types": ["lowercase", "uppercase", "number", "special"],
      "character_type_rule": "three_of_four", "identical_characters": "block",
      "sequential_characters": "block", "max_length_exceeded": "error",
      "history": { "active": true, "size": 5 }, "dictionary": { "active": true, "default": "en_10k" },
      "profile_data": { "active": true, "blocked_fields": ["name", "email"] } } }],
  "clients": [
    { "client_id": "spa", "name": "Demo SPA", "app_type": "spa",
      "callbacks": ["http://localhost:5173/cb"], "allowed_origins": ["http://localhost:5173"],
      "web_origins": ["http://localhost:5173"], "allowed_logout_urls": ["http://localhost:5173/"],
      "grant_types": ["authorization_code", "refresh_token", "password",
                      "http://auth0.com/oauth/grant-type/password-realm"] },
    { "client_id": "backend", "client_secret": "s3cret-value", "app_type": "regular_web",
      "grant_types": ["client_credentials"] }],
  "client_grants": [
    { "client_id": "spa", "audience": "http://localhost:3917/me/", "subject_type": "user",
      "scope": ["read:me:authentication_methods", "create:me:authentication_methods"] },
    { "client_id": "backend", "audience": "https://api.acme.test/", "subject_type": "client",
      "scope": ["read:things"] }],
  "resource_servers": [{
    "identifier": "https://api.acme.test/", "name": "Things",
    "scopes": ["read:things", { "value": "write:things", "description": "Change things" }],
    "token_lifetime": 86400, "enforce_policies": false, "allow_offline_access": true }],
  "roles": [{ "name": "admin", "permissions": [
    { "resource_server_identifier": "https://api.acme.test/", "permission_name": "read:things" }] }],
  "users": [{ "email": "alice@example.com", "password": "Tr0ub4dor&3-horse",
              "connection": "Username-Password-Authentication", "email_verified": true,
              "user_id": "auth0|alice", "roles": ["admin"],
              "user_metadata": { "theme": "dark", "tags": [1, 2.5, null] } }]
}"#;

    /// A valid start that the error tests build on; it fills line 1.
    const TENANT: &str = "tenant: { name: acme, domains: [\"localhost:3917\"] }\n";

    /// Templates are the delivery adapter's to check (its tests hold the
    /// refusal of bad ones); here every template compiles.
    struct AnyTemplate;

    impl TemplateSyntax for AnyTemplate {
        fn check(&self, _: &str) -> Result<(), String> {
            Ok(())
        }
    }

    fn parse_tenant_file(text: &str) -> Result<TenantFile, TenantFileError> {
        super::parse_tenant_file(text, &AnyTemplate)
    }

    fn parse_err(text: &str) -> TenantFileError {
        match parse_tenant_file(text) {
            Ok(file) => panic!("expected an error, got {file:?}"),
            Err(error) => error,
        }
    }

    fn parse_ok(text: &str) -> TenantFile {
        match parse_tenant_file(text) {
            Ok(file) => file,
            Err(error) => panic!("unexpected error: {error}"),
        }
    }

    #[test]
    fn sizes_are_bounded_with_the_key_and_line() {
        // A 40 MB field makes a file over the bound; a 1 MB one is refused
        // with its key and line.
        let huge = "x".repeat(40 << 20);
        let error = parse_err(&format!("{TENANT}clients: [{{ client_id: \"{huge}\" }}]\n"));
        assert!(error.message.contains("at most 32 MiB"), "{error}");
        let huge = "x".repeat(1 << 20);
        let text = format!(
            "{TENANT}connections: [{{ name: db }}]\nusers:\n  - email: a@acme.test\n    connection: db\n    name: \"{huge}\"\n"
        );
        assert_error(&text, 6, "users[0].name", "at most 64 KiB");
        let key = "k".repeat(70 << 10);
        let text = format!(
            "{TENANT}connections: [{{ name: db }}]\nusers:\n  - {{ email: a@acme.test, connection: db, user_metadata: {{ {key}: 1 }} }}\n"
        );
        let error = parse_err(&text);
        assert_eq!(error.line, Some(4), "{error}");
        assert!(error.message.contains("this key is"), "{error}");
        // Just under the bound is accepted.
        let long = "y".repeat(yaml::MAX_SCALAR_BYTES);
        let file = parse_ok(&format!(
            "{TENANT}connections: [{{ name: db }}]\nusers: [{{ email: a@acme.test, connection: db, nickname: \"{long}\" }}]\n"
        ));
        assert_eq!(file.users[0].nickname.as_deref(), Some(long.as_str()));
        // The file as a whole.
        let many = format!("{TENANT}# {}\n", "z".repeat(yaml::MAX_FILE_BYTES));
        let error = parse_err(&many);
        assert!(error.message.contains("at most 32 MiB"), "{error}");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("big.yaml");
        std::fs::write(&path, &many).unwrap_or_else(|e| panic!("{e}"));
        let error = read_tenant_file(&path, &AnyTemplate)
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("big.yaml") && error.contains("at most 32 MiB"),
            "{error}"
        );
    }

    fn assert_error(text: &str, line: usize, path: &str, message_part: &str) {
        let error = parse_err(text);
        assert_eq!(error.line, Some(line), "{error}");
        assert_eq!(error.path, path, "{error}");
        assert!(error.message.contains(message_part), "{error}");
    }

    #[test]
    fn providers_and_messages_parse_with_the_documented_names() {
        let file = parse_ok(&format!(
            "{TENANT}email_provider: {{ smtp: {{ host: 127.0.0.1, port: 2525, security: none, \
             from: \"Acme <no-reply@acme.test>\", username: u, password_env: SMTP_PASSWORD }} }}\n\
             sms_provider: {{ twilio: {{ base_url: \"http://127.0.0.1:8089\", account_sid: AC123, \
             auth_token_env: TWILIO_TOKEN, from: \"+15550001111\" }} }}\n\
             messages: {{ code_sms: {{ fr: \"{{{{ code }}}} est votre code\" }} }}\n"
        ));
        let smtp = &file.email_provider.as_ref().unwrap().smtp;
        assert_eq!((smtp.port, smtp.security), (2525, SmtpSecurity::None));
        assert_eq!(smtp.password_env.as_deref(), Some("SMTP_PASSWORD"));
        assert_eq!(smtp.timeout_seconds, 10);
        assert!(
            matches!(&file.sms_provider, Some(SmsProvider::Twilio(t)) if t.account_sid == "AC123")
        );
        assert!(file.messages.code_sms.contains_key("fr"));
        let file = parse_ok(&format!(
            "{TENANT}sms_provider: {{ webhook: {{ url: \"http://127.0.0.1:8089/sms\", \
             secret_env: SMS_WEBHOOK_SECRET }} }}\n"
        ));
        assert!(
            matches!(&file.sms_provider, Some(SmsProvider::Webhook(w)) if w.secret_env == "SMS_WEBHOOK_SECRET")
        );
    }

    #[test]
    fn mfa_policy_and_its_override_per_client() {
        let file = parse_ok(&format!(
            "{TENANT}mfa: {{ policy: always }}\nclients:\n  - {{ client_id: app, app_type: spa, mfa_policy: never }}\n"
        ));
        assert_eq!(file.mfa.policy, MfaPolicy::Always);
        assert_eq!(file.clients[0].mfa_policy, Some(MfaPolicy::Never));
        assert_eq!(parse_ok(TENANT).mfa.policy, MfaPolicy::Never);
        assert_error(
            &format!("{TENANT}mfa: {{ policy: sometimes }}\n"),
            2,
            "mfa.policy",
            "sometimes",
        );
    }

    #[test]
    fn bad_providers_are_refused_with_their_key() {
        let smtp = |extra: &str| {
            format!(
                "{TENANT}email_provider:\n  smtp: {{ host: mail.acme.test, port: 587, from: a@acme.test{extra} }}\n"
            )
        };
        assert_error(
            &smtp(", security: none, ca_file: ca.pem"),
            3,
            "email_provider.smtp.ca_file",
            "starttls or tls",
        );
        assert_error(
            &smtp(", password_env: \"not a name\""),
            3,
            "email_provider.smtp.password_env",
            "environment variable",
        );
        assert_error(
            &smtp(", security: ssl"),
            3,
            "email_provider.smtp.security",
            "ssl",
        );
        parse_ok(&smtp(", security: tls, ca_file: /etc/acme/ca.pem"));
        let error = parse_err(&format!(
            "{TENANT}sms_provider: {{ twilio: {{ account_sid: AC1, auth_token_env: T, from: \"+15550001111\" }}, \
             webhook: {{ url: \"http://127.0.0.1/\", secret_env: S }} }}\n"
        ));
        assert!(error.path.starts_with("sms_provider"), "{error}");
        // Bad templates: `adapters::delivery::messages`'s tests.
    }

    #[test]
    fn example_parses() {
        let file = parse_ok(EXAMPLE);
        assert_eq!(file.canonical_domain(), "localhost:3917");
        assert_eq!(file.tenant.friendly_name.as_deref(), Some("Acme"));
        assert_eq!(
            file.factors,
            [
                FactorType::Password,
                FactorType::Totp,
                FactorType::RecoveryCode
            ]
        );
        let policy = &file.connections[0].password_policy;
        assert_eq!(policy.character_type_rule, CharacterTypeRule::ThreeOfFour);
        assert_eq!(policy.max_length_exceeded, MaxLengthExceeded::Error);
        assert!(policy.history.active);
        assert_eq!(policy.profile_data.blocked_fields, ["name", "email"]);
        assert_eq!(file.clients[0].grant_types[3], GrantType::PasswordRealm);
        assert_eq!(file.client_grants[0].subject_type, SubjectType::User);
        let server = &file.resource_servers[0];
        assert_eq!(server.scopes, ["read:things", "write:things"]);
        assert_eq!(server.scope_descriptions.len(), 1);
        assert_eq!(server.scope_descriptions["write:things"], "Change things");
        let user = &file.users[0];
        assert_eq!(user.user_id.as_deref(), Some("auth0|alice"));
        let metadata = serde_json::json!({ "theme": "dark", "tags": [1, 2.5, null] });
        assert_eq!(
            user.user_metadata.clone().map(Value::Object),
            Some(metadata)
        );
    }

    #[test]
    fn json_equivalent_parses_identically() {
        assert_eq!(parse_ok(EXAMPLE_JSON), parse_ok(EXAMPLE));
    }

    #[test]
    fn serialized_file_parses_back() {
        let file = parse_ok(EXAMPLE);
        let json = serde_json::to_string(&file).unwrap_or_default();
        assert_eq!(parse_ok(&json), file);
    }

    #[test]
    fn defaults_are_filled() {
        let text = format!(
            "{TENANT}connections: [{{ name: db }}]\nclients:\n  - {{ client_id: web, app_type: regular_web, client_secret: twelve-chars }}\n  - {{ client_id: app, app_type: native }}\nresource_servers: [{{ identifier: api }}]\nusers: [{{ email: a@b.c, connection: db }}]\n"
        );
        let file = parse_ok(&text);
        assert_eq!(file.tenant.session_lifetime_hours, 72);
        assert_eq!(file.tenant.idle_session_lifetime_hours, 24);
        assert_eq!(
            file.tenant.brute_force_protection,
            BruteForceProtection::default()
        );
        assert_eq!(file.tenant.brute_force_protection.max_attempts, 10);
        assert_eq!(file.my_account_api, MyAccountApi::default());
        assert_eq!(file.my_account_api.token_lifetime, 600);
        assert_eq!(file.my_account_api.rate_limits.tenant_per_second, 25);
        assert_eq!(file.factors, [FactorType::Password]);

        let connection = &file.connections[0];
        assert_eq!(connection.strategy, ConnectionStrategy::Auth0);
        assert_eq!(connection.password_policy, PasswordPolicy::default());
        assert_eq!(connection.password_policy.min_length, 8);
        assert_eq!(
            connection.password_policy.dictionary.default,
            DictionaryName::En10k
        );

        let web = &file.clients[0];
        assert_eq!(web.name, "web");
        assert_eq!(
            web.token_endpoint_auth_method,
            Some(TokenEndpointAuthMethod::ClientSecretPost)
        );
        assert_eq!(
            web.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert!(web.first_party);
        assert_eq!(web.jwt_configuration.lifetime_in_seconds, 36_000);
        assert_eq!(web.refresh_token, RefreshTokenSettings::default());
        assert_eq!(web.refresh_token.idle_token_lifetime, 1_296_000);
        let app = &file.clients[1];
        assert_eq!(
            app.token_endpoint_auth_method,
            Some(TokenEndpointAuthMethod::None)
        );

        let server = &file.resource_servers[0];
        assert_eq!(server.name, "api");
        assert_eq!(server.token_lifetime, 86_400);
        assert!(!server.allow_offline_access);

        let user = &file.users[0];
        assert!(!user.email_verified && !user.blocked);
        assert!(user.roles.is_empty() && user.user_id.is_none());
    }

    #[test]
    fn unknown_top_level_key_is_reported_on_its_line() {
        let error = parse_err(&format!("{TENANT}clients: []\ncolour: blue\n"));
        assert_eq!(error.line, Some(3));
        assert_eq!(error.path, "");
        assert_eq!(
            error.to_string(),
            "line 3: unknown top-level key \"colour\""
        );
    }

    #[test]
    fn unknown_key_in_a_client_is_reported_on_its_line() {
        let text = format!(
            "{TENANT}clients:\n  - client_id: spa\n    app_type: spa\n  - client_id: web\n    app_type: spa\n    colour: blue\n"
        );
        let error = parse_err(&text);
        assert_eq!(error.line, Some(7));
        assert_eq!(error.path, "clients[1]");
        assert_eq!(
            error.to_string(),
            "line 7: unknown key \"colour\" in clients[1]"
        );
    }

    #[test]
    fn unknown_key_in_a_password_policy_is_reported_on_its_line() {
        let text = format!(
            "{TENANT}connections:\n  - name: db\n    password_policy:\n      min_length: 10\n      min_lenght: 12\n"
        );
        assert_error(
            &text,
            6,
            "connections[0].password_policy",
            "unknown key \"min_lenght\" in connections[0].password_policy",
        );
    }

    #[test]
    fn wrong_types_are_reported_on_their_line() {
        let text =
            format!("{TENANT}clients:\n  - client_id: spa\n    app_type: spa\n    callbacks: 5\n");
        assert_error(
            &text,
            5,
            "clients[0].callbacks",
            "invalid type: integer `5`",
        );

        let text = format!(
            "{TENANT}connections:\n  - name: db\n    password_policy:\n      history: {{ active: true }}\n      min_length: \"eight\"\n"
        );
        assert_error(
            &text,
            6,
            "connections[0].password_policy.min_length",
            "invalid type: string \"eight\"",
        );

        // A quoted number is a string, not a number.
        let text = format!("{TENANT}my_account_api:\n  token_lifetime: '600'\n");
        assert_error(
            &text,
            3,
            "my_account_api.token_lifetime",
            "invalid type: string",
        );
    }

    #[test]
    fn unknown_key_in_a_scope_object() {
        let text = format!(
            "{TENANT}resource_servers:\n  - identifier: api\n    scopes:\n      - read\n      - value: write\n        summary: Write\n"
        );
        assert_error(
            &text,
            7,
            "resource_servers[0].scopes[1]",
            "unknown key \"summary\" in resource_servers[0].scopes[1]",
        );
        let text = format!("{TENANT}resource_servers: [{{ identifier: api, scopes: [5] }}]\n");
        assert_error(
            &text,
            2,
            "resource_servers[0].scopes[0]",
            "a scope name or a {value, description} mapping",
        );
    }

    #[test]
    fn ranges_are_checked() {
        let text = "tenant: { name: acme, domains: [a.test], session_lifetime_hours: 8, idle_session_lifetime_hours: 9 }\n";
        assert_error(
            text,
            1,
            "tenant.idle_session_lifetime_hours",
            "must be between 1 and 8, not 9",
        );
        let text = format!(
            "{TENANT}connections:\n  - name: db\n    password_policy: {{ history: {{ size: 25 }} }}\n"
        );
        assert_error(
            &text,
            4,
            "connections[0].password_policy.history.size",
            "between 1 and 24",
        );
        let text =
            "{\"tenant\": {\"name\": \"acme\", \"domains\": [\"a.test\"]},\n \"tenant\": {}}";
        assert_error(text, 2, "", "duplicate key \"tenant\"");
    }

    #[test]
    fn missing_required_key_points_at_its_mapping() {
        let text = format!("{TENANT}clients:\n  - name: Nameless\n    app_type: spa\n");
        assert_error(&text, 3, "clients[0]", "missing required key \"client_id\"");
        assert_error(
            "factors: [password]\n",
            1,
            "",
            "missing required key \"tenant\"",
        );
    }

    #[test]
    fn unknown_grant_type_names_the_value() {
        let text = format!(
            "{TENANT}clients:\n  - client_id: spa\n    app_type: spa\n    grant_types:\n      - authorization_code\n      - refresh_token\n      - foo\n"
        );
        let error = parse_err(&text);
        assert_eq!(error.line, Some(8));
        assert_eq!(error.path, "clients[0].grant_types[2]");
        assert!(
            error
                .to_string()
                .starts_with("line 8: clients[0].grant_types[2]: unknown grant type \"foo\""),
            "{error}"
        );
    }

    #[test]
    fn grant_for_an_unknown_client_points_at_its_client_id() {
        let text = format!(
            "{TENANT}clients: [{{ client_id: spa, app_type: spa }}]\nclient_grants:\n  - audience: \"http://localhost:3917/me/\"\n    client_id: nobody\n    subject_type: user\n"
        );
        assert_error(
            &text,
            5,
            "client_grants[0].client_id",
            "no client has client_id \"nobody\"",
        );
    }

    #[test]
    fn user_with_an_unknown_connection() {
        let text = format!(
            "{TENANT}connections: [{{ name: db }}]\nusers:\n  - email: alice@example.com\n    connection: elsewhere\n"
        );
        assert_error(
            &text,
            5,
            "users[0].connection",
            "no connection is named \"elsewhere\"",
        );

        let text = format!("{TENANT}users:\n  - {{ email: alice@example.com, connection: db }}\n");
        assert_error(
            &text,
            3,
            "users[0].connection",
            "the file defines no connections",
        );
    }

    #[test]
    fn duplicate_client_ids() {
        let text = format!(
            "{TENANT}clients:\n  - {{ client_id: spa, app_type: spa }}\n  - {{ client_id: spa, app_type: native }}\n"
        );
        let error = parse_err(&text);
        assert_eq!(error.line, Some(4));
        assert_eq!(error.path, "clients[1].client_id");
        assert_eq!(
            error.to_string(),
            "line 4: clients[1].client_id: duplicate client_id \"spa\" (first at line 3)"
        );
    }

    #[test]
    fn bad_urls() {
        let client = |field: &str, url: &str| {
            format!(
                "{TENANT}clients:\n  - client_id: spa\n    app_type: spa\n    {field}:\n      - http://localhost:5173\n      - {url}\n"
            )
        };
        assert_error(
            &client("callbacks", "/cb"),
            7,
            "clients[0].callbacks[1]",
            "not a valid URL",
        );
        assert_error(
            &client("callbacks", "ftp://example.com/"),
            7,
            "clients[0].callbacks[1]",
            "must be an http or https URL",
        );
        assert_error(
            &client("allowed_origins", "https://example.com/app"),
            7,
            "clients[0].allowed_origins[1]",
            "is not an origin",
        );
        parse_ok(&client("web_origins", "https://example.com/"));
        parse_ok(&client(
            "allowed_logout_urls",
            "https://example.com/bye?x=1",
        ));
    }

    #[test]
    fn my_account_api_refuses_client_access() {
        let text = format!(
            "{TENANT}clients: [{{ client_id: m2m, app_type: non_interactive, client_secret: s3cret-value }}]\nclient_grants:\n  - client_id: m2m\n    audience: \"http://localhost:3917/me/\"\n    scope: [read:me:factors]\n"
        );
        assert_error(
            &text,
            4,
            "client_grants[0].subject_type",
            "the My Account API does not allow client access",
        );
    }

    #[test]
    fn my_account_audiences() {
        let grant = |domains: &str, audience: &str, scope: &str| {
            format!(
                "tenant: {{ name: acme, domains: [{domains}] }}\nclients: [{{ client_id: spa, app_type: spa }}]\nclient_grants:\n  - {{ client_id: spa, audience: \"{audience}\", subject_type: user, scope: [{scope}] }}\n"
            )
        };
        parse_ok(&grant(
            "\"localhost:3917\"",
            "https://localhost:3917/me/",
            "read:me:factors",
        ));
        parse_ok(&grant(
            "id.acme.test, \"127.0.0.1:80\"",
            "http://127.0.0.1:80/me/",
            "read:me:consents",
        ));
        parse_ok(&grant(
            "id.acme.test",
            "https://id.acme.test/me/",
            "read:me:organizations",
        ));
        assert_error(
            &grant("id.acme.test", "http://id.acme.test/me/", "read:me:factors"),
            4,
            "client_grants[0].audience",
            "is neither a resource server identifier",
        );
        assert_error(
            &grant(
                "id.acme.test",
                "https://id.acme.test/me/",
                "read:me:everything",
            ),
            4,
            "client_grants[0].scope[0]",
            "is not a scope of",
        );
        assert_error(
            &grant("id.acme.test", "https://id.acme.test/me/", "openid"),
            4,
            "client_grants[0].scope[0]",
            "OpenID Connect scope",
        );
    }

    #[test]
    fn references_and_duplicates_elsewhere() {
        let base = format!(
            "{TENANT}resource_servers: [{{ identifier: api, scopes: [read] }}]\nconnections: [{{ name: db }}]\n"
        );
        assert_error(
            &format!(
                "{base}roles: [{{ name: r, permissions: [{{ resource_server_identifier: api, permission_name: write }}] }}]\n"
            ),
            4,
            "roles[0].permissions[0].permission_name",
            "\"write\" is not a scope of \"api\"",
        );
        parse_ok(&format!(
            "{base}roles: [{{ name: r, permissions: [{{ resource_server_identifier: \"http://localhost:3917/me/\", permission_name: read:me:factors }}] }}]\n"
        ));
        assert_error(
            &format!(
                "{base}users:\n  - {{ email: A@x.io, connection: db }}\n  - {{ email: a@X.io, connection: db }}\n"
            ),
            6,
            "users[1].email",
            "duplicate email",
        );
        assert_error(
            &format!("{base}users: [{{ email: a@x.io, connection: db, roles: [boss] }}]\n"),
            4,
            "users[0].roles[0]",
            "no role is named \"boss\"",
        );
        assert_error(
            &format!(
                "{base}users: [{{ email: a@x.io, connection: db, password: x, password_hash: \"$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA\" }}]\n"
            ),
            4,
            "users[0].password_hash",
            "not both",
        );
        assert_error(
            &format!("{base}users: [{{ email: a@x.io, connection: db, user_id: alice }}]\n"),
            4,
            "users[0].user_id",
            "auth0|",
        );
        assert_error(
            &format!("{base}resource_servers: []\n"),
            4,
            "",
            "duplicate key \"resource_servers\"",
        );
        assert_error(
            "tenant: { name: acme, domains: [\"Localhost\"] }\n",
            1,
            "tenant.domains[0]",
            "must be lowercase",
        );
        assert_error(
            &format!("{TENANT}factors: [password, totp, password]\n"),
            2,
            "factors[2]",
            "duplicate factor password",
        );
    }

    #[test]
    fn client_secrets_follow_the_auth_method() {
        let client = |fields: &str| format!("{TENANT}clients:\n  - {{ client_id: c, {fields} }}\n");
        assert_error(
            &client("app_type: spa, client_secret: long-enough"),
            3,
            "clients[0].client_secret",
            "cannot have a client_secret",
        );
        assert_error(
            &client("app_type: regular_web"),
            3,
            "clients[0].token_endpoint_auth_method",
            "requires a client_secret",
        );
        assert_error(
            &client("app_type: native, grant_types: [client_credentials]"),
            3,
            "clients[0].grant_types[0]",
            "client_credentials requires a client_secret",
        );
        assert_error(
            &client("app_type: regular_web, client_secret: short"),
            3,
            "clients[0].client_secret",
            "at least 8 characters",
        );
    }

    #[test]
    fn document_shape_errors() {
        assert_eq!(parse_err("").to_string(), "the tenant file is empty");
        parse_ok(&format!("\u{feff}{TENANT}"));
        assert_error("# nothing\n---\n", 3, "", "the tenant file is empty");
        assert_error("- tenant\n", 1, "", "must be a mapping");
        assert_error(
            &format!("{TENANT}---\nfactors: []\n"),
            2,
            "",
            "single YAML document",
        );
        assert_error(
            &format!("{TENANT}1: one\n"),
            2,
            "",
            "mapping keys must be strings",
        );
        assert_error(
            &format!("{TENANT}[a]: one\n"),
            2,
            "",
            "mapping keys must be strings",
        );
        assert_error(
            &format!("{TENANT}factors: !!set {{}}\n"),
            2,
            "factors",
            "unsupported tag",
        );
        assert_error(
            &format!("{TENANT}factors: [!custom x]\n"),
            2,
            "factors[0]",
            "unsupported tag",
        );
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let text = "a: [true, False, null, ~, 12, -3, 0x1F, 0o17, 1.5, 1e3, .5, 'true', \"12\", yes, on, 1_000, 0x, !!str 7]\n";
        let document = match yaml::parse(text) {
            Ok(document) => document,
            Err(error) => panic!("{error}"),
        };
        let expected = serde_json::json!({ "a": [
            true, false, null, null, 12, -3, 31, 15, 1.5, 1000.0, 0.5,
            "true", "12", "yes", "on", "1_000", "0x", "7"
        ]});
        assert_eq!(document.root, expected);
        assert_error(
            &format!("{TENANT}factors: [.inf]\n"),
            2,
            "factors[0]",
            "not a supported number",
        );
    }

    #[test]
    fn lines_of_nested_nodes() {
        let text = "a:\n  b:\n    - x\n    -\n      c: 1\n  d: |\n    text\n";
        let document = match yaml::parse(text) {
            Ok(document) => document,
            Err(error) => panic!("{error}"),
        };
        let lines = &document.lines;
        assert_eq!(lines.line_of(""), Some(1));
        assert_eq!(lines.line_of("a"), Some(1));
        assert_eq!(lines.line_of("a.b"), Some(2));
        assert_eq!(lines.line_of("a.b[0]"), Some(3));
        assert_eq!(lines.line_of("a.b[1].c"), Some(5));
        assert_eq!(lines.line_of("a.d"), Some(6));
        assert_eq!(lines.line_of("a.b[1].missing"), Some(5));
    }

    #[test]
    fn anchors_and_aliases_are_expanded() {
        let text = format!(
            "{TENANT}clients:\n  - &spa {{ client_id: one, app_type: spa, callbacks: &cb [\"http://localhost/cb\"] }}\n  - {{ client_id: two, app_type: spa, callbacks: *cb }}\n"
        );
        let file = parse_ok(&text);
        assert_eq!(file.clients[1].callbacks, ["http://localhost/cb"]);

        // Exponential expansion stops at a limit instead of eating memory.
        let mut bomb = String::from("a: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let prev = format!("*a{}", level - 1);
            let items = [prev.as_str(); 10].join(", ");
            bomb.push_str(&format!("b{level}: &a{level} [{items}]\n"));
        }
        let error = parse_err(&bomb);
        assert!(error.message.contains("too many nodes"), "{error}");
        assert!(error.line.is_some());
    }

    #[test]
    fn malformed_input_never_panics() {
        let deep_flow = "[".repeat(10_000);
        let deep_block: String = (0..200)
            .map(|i| format!("{}- \n", " ".repeat(i * 2)))
            .collect();
        let deep_alias = format!(
            "a: &a {}{}\nb: [[[[*a]]]]\n",
            "[".repeat(63),
            "]".repeat(63)
        );
        let cases: [(&str, Option<usize>); 12] = [
            ("tenant:\n\tname: acme\n", Some(2)),
            ("tenant: { name: \"acme }\n", Some(1)),
            ("tenant: 'acme\nfoo: bar\n", Some(1)),
            ("tenant: *nothing\n", Some(1)),
            ("tenant: &a\n  name: *a\n", Some(2)),
            (&deep_flow, None),
            (&deep_block, Some(65)),
            (&deep_alias, Some(2)),
            ("tenant: {name: acme\n", Some(2)),
            ("]\n", Some(1)),
            ("key: value\n  bad indent: x\n", Some(2)),
            ("%YAML 1.2\n%YAML 1.2\n---\n", Some(2)),
        ];
        for (text, line) in cases {
            let error = parse_err(text);
            assert!(error.line.is_some(), "{error}");
            if let Some(line) = line {
                assert_eq!(error.line, Some(line), "{error}");
            }
        }
        let more = [
            "{",
            "}",
            "- - - -",
            ":",
            "? ",
            "!",
            "&",
            "*",
            "|",
            ">",
            "'",
            "\"",
            "\t",
            "\u{feff}",
            "a: b: c",
            "a:\n- b\n -c",
            "[a, b",
            "{a: }",
            "---\n...\n---",
            "a: !!binary aGk=",
            "tenant: {name: acme, domains: [[[]]]}",
            "\0",
            "a: \"\\x\"",
        ];
        for text in more {
            let _ = parse_tenant_file(text);
        }
    }

    #[test]
    fn display_formats() {
        let error = TenantFileError {
            line: Some(12),
            path: "clients[1].grant_types[2]".into(),
            message: "unknown grant type \"foo\"".into(),
        };
        assert_eq!(
            error.to_string(),
            "line 12: clients[1].grant_types[2]: unknown grant type \"foo\""
        );
        let error = TenantFileError {
            line: None,
            path: "tenant".into(),
            message: "broken".into(),
        };
        assert_eq!(error.to_string(), "tenant: broken");
    }

    #[test]
    fn issuers_and_audiences() {
        assert_eq!(issuer_for_host("localhost:3917"), "http://localhost:3917/");
        assert_eq!(issuer_for_host("127.0.0.1"), "http://127.0.0.1/");
        assert_eq!(issuer_for_host("[::1]:8080"), "http://[::1]:8080/");
        assert_eq!(issuer_for_host("id.acme.test"), "https://id.acme.test/");
        assert_eq!(
            issuer_for_host("localhost.acme.test"),
            "https://localhost.acme.test/"
        );
        assert_eq!(
            my_account_audience("id.acme.test:8443"),
            "https://id.acme.test:8443/me/"
        );
    }
}
