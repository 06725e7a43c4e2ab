//! Tenant files: the YAML (or JSON) an operator writes to declare a tenant's
//! domains, applications, APIs, roles and users.
//!
//! [`parse_tenant_file`] reads the text, maps it onto the types of
//! [`super::model`] and has [`super::validate`] check everything that spans
//! more than one field: references between sections, duplicates, URLs and
//! ranges. Every error carries the path of the offending node and the line
//! it was written on.

use std::fmt;

use serde_json::Value;
use serde_path_to_error::Segment;

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
    if lines.written("api_owned") {
        return Err(TenantFileError {
            line: lines.line_of("api_owned"),
            path: "api_owned".into(),
            message: "latchkey keeps this record of what the Management API made; a tenant file \
                      may not set it"
                .into(),
        });
    }
    for (i, client) in file.clients.iter().enumerate() {
        if client.client_secret.is_some() && client.client_secret_env.is_some() {
            let path = format!("clients[{i}].client_secret_env");
            return Err(TenantFileError {
                line: lines.line_of(&path),
                path,
                message: "give client_secret or client_secret_env, not both".into(),
            });
        }
    }
    fill_derived_defaults(&mut file);
    super::validate::Validator::new(&file, &lines, templates).validate()?;
    // Users' emails in their normal form, as every account's is (the
    // validator refused those that have none).
    for user in &mut file.users {
        if let Ok(email) = email_address::normalize(&user.email) {
            user.email = email;
        }
    }
    Ok(file)
}

/// Checks a configuration made in code (a Management API change, a tenant
/// file merged with what the API made) by the rules a tenant file is checked
/// by, its derived defaults filled in first. Errors name the path, no line.
pub fn check_config(
    file: &mut TenantFile,
    templates: &dyn TemplateSyntax,
) -> Result<(), TenantFileError> {
    fill_derived_defaults(file);
    super::validate::Validator::new(file, &LineMap::default(), templates).validate()
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
pub(super) fn fill_derived_defaults(file: &mut TenantFile) {
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
    fn management_api_is_for_clients_only() {
        let grant = |audience: &str, subject: &str, scope: &str| {
            format!(
                "{TENANT}clients: [{{ client_id: m2m, app_type: non_interactive, client_secret: s3cret-value }}]\nclient_grants:\n  - {{ client_id: m2m, audience: \"{audience}\", subject_type: {subject}, scope: [{scope}] }}\n"
            )
        };
        parse_ok(&grant(
            "http://localhost:3917/api/v2/",
            "client",
            "read:users, create:users",
        ));
        // On a loopback domain, the https:// spelling names the same API.
        parse_ok(&grant(
            "https://localhost:3917/api/v2/",
            "client",
            "delete:users",
        ));
        assert_error(
            &grant("http://localhost:3917/api/v2/", "user", "read:users"),
            4,
            "client_grants[0].subject_type",
            "the Management API does not allow user access",
        );
        assert_error(
            &grant("http://localhost:3917/api/v2/", "client", "read:things"),
            4,
            "client_grants[0].scope[0]",
            "is not a scope of",
        );
        let server = format!(
            "{TENANT}resource_servers: [{{ identifier: \"http://localhost:3917/api/v2/\", scopes: [a] }}]\n"
        );
        assert_error(
            &server,
            2,
            "resource_servers[0].identifier",
            "the built-in Management API",
        );
        let role = format!(
            "{TENANT}roles: [{{ name: admin, permissions: [{{ resource_server_identifier: \"http://localhost:3917/api/v2/\", permission_name: read:users }}] }}]\n"
        );
        assert_error(
            &role,
            2,
            "roles[0].permissions[0].resource_server_identifier",
            "the Management API does not allow user access",
        );
        let lifetime = format!("{TENANT}management_api: {{ token_lifetime: 10 }}\n");
        assert_error(
            &lifetime,
            2,
            "management_api.token_lifetime",
            "must be between",
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
    fn refresh_token_policies_name_apis_of_the_tenant_once() {
        // The policies start on line 9, one a line.
        let client = |first_party: bool, policies: &[&str]| {
            let mut text = format!(
                "tenant: {{ name: acme, domains: [id.acme.test, login.acme.test] }}\n\
                 resource_servers: [{{ identifier: api, scopes: [read, write] }}]\n\
                 clients:\n  - client_id: spa\n    app_type: spa\n    first_party: {first_party}\n\
                 \x20   refresh_token:\n      policies:\n"
            );
            for p in policies {
                text.push_str(&format!("        - {p}\n"));
            }
            text
        };
        let me = "{ audience: \"https://id.acme.test/me/\", scope: [read:me:factors] }";
        let file = parse_ok(&client(true, &[me, "{ audience: api, scope: [read] }"]));
        let policies = &file.clients[0].refresh_token.policies;
        assert_eq!(policies[1].audience, "api");
        assert_eq!(policies[1].scope, ["read"]);
        let path = "clients[0].refresh_token.policies";
        for (policy, field, message) in [
            (
                "{ audience: \"https://nowhere.test/\", scope: [] }",
                "audience",
                "is neither a resource server identifier",
            ),
            (
                "{ audience: api, scope: [delete] }",
                "scope[0]",
                "\"delete\" is not a scope of \"api\"",
            ),
            (
                "{ audience: api, scope: [offline_access] }",
                "scope[0]",
                "OpenID Connect scope",
            ),
            (
                "{ audience: api, scope: [read, read] }",
                "scope[1]",
                "duplicate scope",
            ),
        ] {
            assert_error(
                &client(true, &[policy]),
                9,
                &format!("{path}[0].{field}"),
                message,
            );
        }
        assert_error(
            &client(
                true,
                &[
                    "{ audience: api, scope: [read] }",
                    "{ audience: api, scope: [write] }",
                ],
            ),
            10,
            &format!("{path}[1].audience"),
            "a second policy for \"api\" (first at line 9)",
        );
        // One API, whichever host's audience names it.
        assert_error(
            &client(
                true,
                &[
                    me,
                    "{ audience: \"https://login.acme.test/me/\", scope: [] }",
                ],
            ),
            10,
            &format!("{path}[1].audience"),
            "a second policy for the My Account API",
        );
        assert_error(&client(false, &[me]), 8, path, "first-party clients only");
        assert_error(
            &client(true, &["{ audience: api }"]),
            9,
            &format!("{path}[0]"),
            "scope",
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
    fn token_vault_clients_are_confidential_and_custom_api_clients_name_their_api() {
        const VAULT: &str =
            "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
        let api = "resource_servers: [{ identifier: \"https://api.test/\" }]\n";
        let client = |fields: &str| {
            format!(
                "{TENANT}{api}clients:\n  - {{ client_id: c, client_secret: long-enough, {fields} }}\n"
            )
        };
        let file = parse_ok(&client(&format!(
            "app_type: resource_server, resource_server_identifier: \"https://api.test/\", \
             grant_types: [\"{VAULT}\"]"
        )));
        let custom = &file.clients[0];
        assert_eq!(custom.grant_types, [GrantType::TokenVault]);
        assert_eq!(
            custom.auth_method(),
            TokenEndpointAuthMethod::ClientSecretPost
        );
        parse_ok(&client(&format!(
            "app_type: regular_web, grant_types: [refresh_token, \"{VAULT}\"]"
        )));
        assert_error(
            &format!(
                "{TENANT}clients:\n  - {{ client_id: c, app_type: spa, grant_types: [\"{VAULT}\"] }}\n"
            ),
            3,
            "clients[0].grant_types[0]",
            "confidential clients",
        );
        assert_error(
            &client(&format!(
                "app_type: regular_web, first_party: false, grant_types: [\"{VAULT}\"]"
            )),
            4,
            "clients[0].grant_types[0]",
            "first-party clients only",
        );
        assert_error(
            &client("app_type: resource_server"),
            4,
            "clients[0].resource_server_identifier",
            "names its API",
        );
        assert_error(
            &client("app_type: regular_web, resource_server_identifier: \"https://api.test/\""),
            4,
            "clients[0].resource_server_identifier",
            "only a client with app_type resource_server",
        );
        assert_error(
            &client(
                "app_type: resource_server, resource_server_identifier: \"https://other.test/\"",
            ),
            4,
            "clients[0].resource_server_identifier",
            "not a resource server identifier",
        );
        let custom = "app_type: resource_server, client_secret: long-enough, \
                      resource_server_identifier: \"https://api.test/\"";
        assert_error(
            &format!(
                "{TENANT}{api}clients:\n  - {{ client_id: a, {custom} }}\n  - {{ client_id: b, {custom} }}\n"
            ),
            5,
            "clients[1].resource_server_identifier",
            "a second resource_server client",
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
