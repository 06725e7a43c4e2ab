//! The checks of `connections[]`: names, the database connections' password
//! policies, and the upstream connections' options. A key that belongs to
//! the other kind of connection (a password policy on an identity provider,
//! `options` on the database) is refused on its own line rather than
//! ignored.

use super::*;

/// Keys only the built-in database takes.
const DATABASE_ONLY: [&str; 4] = [
    "password_policy",
    "disable_signup",
    "requires_username",
    "require_email_verification",
];
/// Keys only upstream connections take.
const UPSTREAM_ONLY: [&str; 6] = [
    "options",
    "display_name",
    "authentication",
    "link_by_verified_email",
    "connected_accounts",
    "enabled_clients",
];
/// Endpoint keys of OpenID strategies (Auth0's OIDC names).
const OPENID_KEYS: [&str; 7] = [
    "issuer",
    "discovery_url",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "revocation_endpoint",
];
/// Endpoint keys of OAuth 2.0 strategies (Auth0's OAuth2 names).
const OAUTH2_KEYS: [&str; 4] = [
    "authorizationURL",
    "tokenURL",
    "userInfoURL",
    "revocationURL",
];

impl<'a> Validator<'a> {
    pub(super) fn connections(&self) -> Check {
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
            if connection.strategy.is_upstream() {
                self.upstream(&path, connection)?;
            } else if connection.strategy.is_passwordless() {
                self.passwordless(&path, connection)?;
            } else {
                self.not_written(&path, &UPSTREAM_ONLY, |key| {
                    format!(
                        "{key} is for upstream connections; strategy auth0 is the built-in database"
                    )
                })?;
                self.password_policy(
                    &format!("{path}.password_policy"),
                    &connection.password_policy,
                )?;
            }
        }
        let names =
            indexed("connections", &self.file.connections, |c| c.name.as_str()).map(at("name"));
        self.unique(names, |name| format!("duplicate connection name {name:?}"))
    }

    /// Refuses the first of `keys` written under `path`.
    fn not_written(&self, path: &str, keys: &[&str], message: impl Fn(&str) -> String) -> Check {
        match keys
            .iter()
            .find(|key| self.lines.written(&key_path(path, key)))
        {
            Some(key) => Err(self.error(key_path(path, key), message(key))),
            None => Ok(()),
        }
    }

    /// A passwordless connection (`email`, `sms`): its name is its
    /// strategy's (Auth0's; apps send it as `connection` and `realm`), it
    /// takes `disable_signup` and `enabled_clients`, and its messages need
    /// the tenant's provider for them.
    fn passwordless(&self, path: &str, connection: &Connection) -> Check {
        let strategy = connection.strategy;
        self.ensure(
            connection.name == strategy.as_str(),
            format!("{path}.name"),
            format!("a connection of strategy {strategy} is named {strategy}"),
        )?;
        let refused = DATABASE_ONLY
            .into_iter()
            .filter(|k| *k != "disable_signup")
            .chain(
                UPSTREAM_ONLY
                    .into_iter()
                    .filter(|k| *k != "enabled_clients"),
            )
            .collect::<Vec<_>>();
        self.not_written(path, &refused, |key| {
            format!("{key} is not a setting of passwordless connections (strategy {strategy})")
        })?;
        for (i, client) in connection.enabled_clients.iter().enumerate() {
            self.ensure(
                self.file.clients.iter().any(|c| &c.client_id == client),
                index_path(&key_path(path, "enabled_clients"), i),
                format!("no client is named {client:?}"),
            )?;
        }
        let provider = match strategy {
            ConnectionStrategy::Sms => self.file.sms_provider.is_some(),
            _ => self.file.email_provider.is_some(),
        };
        let kind = if strategy == ConnectionStrategy::Sms {
            "sms_provider"
        } else {
            "email_provider"
        };
        self.ensure(
            provider,
            key_path(path, "strategy"),
            format!("strategy {strategy} sends its codes through the tenant's {kind}, which the file does not configure"),
        )
    }

    fn upstream(&self, path: &str, connection: &Connection) -> Check {
        let strategy = connection.strategy;
        self.not_written(path, &DATABASE_ONLY, |key| {
            format!("{key} is for database connections, not for strategy {strategy}")
        })?;
        let options_path = key_path(path, "options");
        let Some(options) = &connection.options else {
            return Err(self.error(
                options_path,
                format!(
                    "strategy {strategy} needs options (at least client_id and client_secret_env)"
                ),
            ));
        };
        let at = |key: &str| key_path(&options_path, key);
        self.ensure(
            options.channel == UpstreamChannel::BackChannel,
            at("type"),
            "only back_channel is supported: latchkey exchanges the code at the provider's token endpoint",
        )?;
        self.ensure(
            is_word(&options.client_id, 255, |b| b.is_ascii_graphic()),
            at("client_id"),
            "must be 1 to 255 printable characters without spaces",
        )?;
        self.ensure(
            options.client_secret.is_none(),
            at("client_secret"),
            "secrets are not written in tenant files: name the environment variable holding it with client_secret_env",
        )?;
        match &options.client_secret_env {
            Some(env) => self.ensure(
                is_env_name(env),
                at("client_secret_env"),
                "is not an environment variable name",
            )?,
            None => {
                return Err(self.error(
                    options_path.clone(),
                    "client_secret_env is required: the environment variable holding the client secret",
                ));
            }
        }
        if let Some(scopes) = &options.scope {
            let scope_path = at("scope");
            self.ensure(
                scopes.len() <= 100,
                scope_path.clone(),
                "at most 100 scopes",
            )?;
            for (i, scope) in scopes.iter().enumerate() {
                self.ensure(
                    is_word(scope, 255, |b| {
                        b.is_ascii_graphic() && b != b'"' && b != b'\\'
                    }),
                    index_path(&scope_path, i),
                    format!("{scope:?} is not a scope (1 to 255 printable characters, no spaces)"),
                )?;
            }
            self.unique(indexed(&scope_path, scopes, String::as_str), |s| {
                format!("duplicate scope {s:?}")
            })?;
        }
        self.in_range(at("timeout_seconds"), options.timeout_seconds, 1..=60)?;
        if let Some(shown) = &connection.display_name {
            self.ensure(
                !shown.trim().is_empty()
                    && shown.chars().count() <= 128
                    && !shown.chars().any(char::is_control),
                key_path(path, "display_name"),
                "must be 1 to 128 characters, without control characters",
            )?;
        }
        self.endpoints(&options_path, strategy, options)?;
        let clients_path = key_path(path, "enabled_clients");
        for (i, client) in connection.enabled_clients.iter().enumerate() {
            self.ensure(
                self.file.clients.iter().any(|c| &c.client_id == client),
                index_path(&clients_path, i),
                format!("no client is named {client:?}"),
            )?;
        }
        self.unique(
            indexed(&clients_path, &connection.enabled_clients, String::as_str),
            |c| format!("duplicate client {c:?}"),
        )
    }

    /// The endpoint keys: those of the strategy's kind only, each a URL, and
    /// the ones a generic strategy cannot do without.
    fn endpoints(
        &self,
        options_path: &str,
        strategy: ConnectionStrategy,
        o: &UpstreamOptions,
    ) -> Check {
        let (own, others): (&[&str], &[&str]) = if strategy.is_openid() {
            (&OPENID_KEYS, &OAUTH2_KEYS)
        } else {
            (&OAUTH2_KEYS, &OPENID_KEYS)
        };
        let urls = [
            ("issuer", &o.issuer),
            ("discovery_url", &o.discovery_url),
            ("authorization_endpoint", &o.authorization_endpoint),
            ("token_endpoint", &o.token_endpoint),
            ("userinfo_endpoint", &o.userinfo_endpoint),
            ("jwks_uri", &o.jwks_uri),
            ("revocation_endpoint", &o.revocation_endpoint),
            ("authorizationURL", &o.authorization_url),
            ("tokenURL", &o.token_url),
            ("userInfoURL", &o.user_info_url),
            ("revocationURL", &o.revocation_url),
        ];
        // By value, not by what was written: a configuration made in code
        // (the Management API) is held to it too.
        if let Some((key, _)) = urls
            .iter()
            .find(|(key, url)| url.is_some() && others.contains(key))
        {
            return Err(self.error(
                key_path(options_path, key),
                format!(
                    "{key} is not an option of strategy {strategy} (it takes {})",
                    own.join(", ")
                ),
            ));
        }
        for (key, url) in urls {
            if let Some(url) = url {
                check_url(url, false).map_err(|m| self.error(key_path(options_path, key), m))?;
            }
        }
        match strategy {
            ConnectionStrategy::Oidc => self.ensure(
                o.issuer.is_some() || o.discovery_url.is_some(),
                options_path.to_owned(),
                "strategy oidc needs issuer or discovery_url",
            ),
            ConnectionStrategy::Oauth2 => {
                let missing = [
                    ("authorizationURL", &o.authorization_url),
                    ("tokenURL", &o.token_url),
                    ("userInfoURL", &o.user_info_url),
                ]
                .into_iter()
                .find(|(_, url)| url.is_none());
                match missing {
                    Some((key, _)) => Err(self.error(
                        options_path.to_owned(),
                        format!(
                            "strategy oauth2 needs {key} (authorizationURL, tokenURL and userInfoURL, \
                             which names the account)"
                        ),
                    )),
                    None => Ok(()),
                }
            }
            // Presets know their provider's endpoints.
            ConnectionStrategy::Github
            | ConnectionStrategy::GoogleOauth2
            | ConnectionStrategy::Windowslive
            | ConnectionStrategy::Apple
            | ConnectionStrategy::Auth0
            | ConnectionStrategy::Email
            | ConnectionStrategy::Sms => Ok(()),
        }
    }

    pub(super) fn password_policy(&self, path: &str, policy: &PasswordPolicy) -> Check {
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
}

#[cfg(test)]
#[allow(clippy::panic)] // Failing loudly is what a test is for.
mod tests {
    use crate::tenant::file::{TemplateSyntax, TenantFileError, parse_tenant_file};
    use crate::tenant::model::*;

    struct AnyTemplate;

    impl TemplateSyntax for AnyTemplate {
        fn check(&self, _: &str) -> Result<(), String> {
            Ok(())
        }
    }

    const HEAD: &str = "tenant: { name: acme, domains: [\"localhost:3917\"] }
clients:
  - { client_id: spa, app_type: spa }
  - { client_id: web, app_type: regular_web, client_secret: twelve-chars }
connections:
  - name: db
";

    fn parse(connections: &str) -> Result<TenantFile, TenantFileError> {
        parse_tenant_file(&format!("{HEAD}{connections}"), &AnyTemplate)
    }

    fn refused(connections: &str) -> TenantFileError {
        match parse(connections) {
            Ok(file) => panic!("expected a refusal, got {:?}", file.connections),
            Err(e) => e,
        }
    }

    #[test]
    fn upstream_connections_parse_with_auth0_names() {
        let file = parse(
            "  - name: acme-idp
    strategy: oidc
    options:
      type: back_channel
      issuer: https://idp.acme.test/
      client_id: latchkey
      client_secret_env: ACME_IDP_SECRET
      scope: openid profile email offline_access
    connected_accounts: { active: true }
    enabled_clients: [spa, web]
  - name: gh
    strategy: github
    options: { client_id: Iv1.abc, client_secret_env: GH_SECRET, scope: [repo, \"read:user\"],
               userInfoURL: \"http://127.0.0.1:9/api/user\" }
  - name: custom
    strategy: oauth2
    options: { client_id: c, client_secret_env: S, authorizationURL: \"https://a.test/auth\",
               tokenURL: \"https://a.test/token\", userInfoURL: \"https://a.test/me\",
               token_endpoint_auth_method: client_secret_post, timeout_seconds: 3 }
",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let idp = &file.connections[1];
        assert_eq!(idp.strategy, ConnectionStrategy::Oidc);
        let options = idp.options.as_ref().unwrap();
        assert_eq!(options.issuer.as_deref(), Some("https://idp.acme.test/"));
        assert_eq!(
            options.scope.as_deref().unwrap(),
            ["openid", "profile", "email", "offline_access"]
        );
        assert!(idp.connectable_from("spa") && idp.connectable_from("web"));
        assert!(!idp.connectable_from("other"));
        let gh = &file.connections[2];
        assert_eq!(
            gh.options.as_ref().unwrap().scope.as_deref().unwrap(),
            ["repo", "read:user"]
        );
        // Absent: no client, not active.
        assert!(gh.enabled_clients.is_empty() && !gh.connected_accounts.active);
        assert!(!gh.connectable_from("spa"));
        let custom = file.connections[3].options.as_ref().unwrap();
        assert_eq!(custom.timeout_seconds, 3);
        assert_eq!(
            custom.token_endpoint_auth_method,
            Some(UpstreamAuthMethod::ClientSecretPost)
        );
        // The stored form parses back to the same.
        let json = serde_json::to_string(&file).unwrap();
        assert_eq!(parse_tenant_file(&json, &AnyTemplate).unwrap(), file);
    }

    #[test]
    fn login_with_an_upstream_connection() {
        let file = parse(
            "  - name: gh
    strategy: github
    display_name: GitHub
    options: { client_id: a, client_secret_env: S }
    link_by_verified_email: true
    enabled_clients: [spa]
  - name: vault-only
    strategy: github
    options: { client_id: a, client_secret_env: S }
    authentication: { active: false }
    connected_accounts: { active: true }
    enabled_clients: [spa]
",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (gh, vault) = (&file.connections[1], &file.connections[2]);
        // Logging in is a connection's purpose unless turned off.
        assert!(gh.login_from("spa") && !gh.login_from("web"));
        assert!(!vault.login_from("spa") && vault.connectable_from("spa"));
        assert!(gh.link_by_verified_email && !vault.link_by_verified_email);
        assert_eq!(
            (gh.shown_name(), vault.shown_name()),
            ("GitHub", "vault-only")
        );
        // The database never is one to log in with upstream.
        assert!(!file.connections[0].login_from("spa"));
        let json = serde_json::to_string(&file).unwrap();
        assert!(
            !json.contains("authentication\":{\"active\":true"),
            "{json}"
        );
        assert_eq!(parse_tenant_file(&json, &AnyTemplate).unwrap(), file);
        for key in [
            "display_name: Db",
            "link_by_verified_email: true",
            "authentication: { active: true }",
        ] {
            let e = refused(&format!("  - name: db2\n    {key}\n"));
            assert_eq!(e.line, Some(8), "{key}");
            assert!(e.message.contains("built-in database"), "{e}");
        }
        let e = refused(
            "  - name: gh\n    strategy: github\n    options: { client_id: a, client_secret_env: S }\n    display_name: \"\\u0007\"\n",
        );
        assert_eq!(e.path, "connections[1].display_name");
    }

    #[test]
    fn keys_of_the_other_kind_are_refused_on_their_line() {
        let e = refused(
            "  - name: gh\n    strategy: github\n    options: { client_id: a, client_secret_env: S }\n    password_policy: { min_length: 10 }\n",
        );
        assert_eq!(e.line, Some(10));
        assert_eq!(e.path, "connections[1].password_policy");
        assert!(e.message.contains("database connections"), "{e}");
        let e = refused("  - name: db2\n    connected_accounts: { active: true }\n");
        assert_eq!(
            (e.line, e.path.as_str()),
            (Some(8), "connections[1].connected_accounts")
        );
        assert!(e.message.contains("built-in database"), "{e}");
        let e = refused("  - name: db2\n    strategy: auth0\n    enabled_clients: [spa]\n");
        assert_eq!(e.path, "connections[1].enabled_clients");
        let e = refused(
            "  - name: idp\n    strategy: oidc\n    options:\n      client_id: a\n      client_secret_env: S\n      issuer: \"https://i.test/\"\n      tokenURL: \"https://i.test/t\"\n",
        );
        assert_eq!(
            (e.line, e.path.as_str()),
            (Some(13), "connections[1].options.tokenURL")
        );
        assert!(e.message.contains("token_endpoint"), "{e}");
        let e = refused(
            "  - name: gh\n    strategy: github\n    options: { client_id: a, client_secret_env: S, jwks_uri: \"https://x.test/\" }\n",
        );
        assert_eq!(e.path, "connections[1].options.jwks_uri");
    }

    #[test]
    fn secrets_come_from_the_environment_only() {
        let e = refused(
            "  - name: gh\n    strategy: github\n    options:\n      client_id: a\n      client_secret: hunter2\n",
        );
        assert_eq!(
            (e.line, e.path.as_str()),
            (Some(11), "connections[1].options.client_secret")
        );
        assert!(e.message.contains("client_secret_env"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = refused("  - name: gh\n    strategy: github\n    options: { client_id: a }\n");
        assert!(e.message.contains("client_secret_env is required"), "{e}");
        let e = refused(
            "  - name: gh\n    strategy: github\n    options: { client_id: a, client_secret_env: \"not a name\" }\n",
        );
        assert_eq!(e.path, "connections[1].options.client_secret_env");
        let e = refused("  - name: gh\n    strategy: github\n");
        assert_eq!(e.path, "connections[1].options");
    }

    #[test]
    fn what_each_strategy_needs() {
        let e = refused(
            "  - name: idp\n    strategy: oidc\n    options: { client_id: a, client_secret_env: S }\n",
        );
        assert!(e.message.contains("issuer or discovery_url"), "{e}");
        let e = refused(
            "  - name: o\n    strategy: oauth2\n    options: { client_id: a, client_secret_env: S, authorizationURL: \"https://a.test/\", tokenURL: \"https://a.test/t\" }\n",
        );
        assert!(e.message.contains("userInfoURL"), "{e}");
        let e = refused(
            "  - name: idp\n    strategy: oidc\n    options: { type: front_channel, client_id: a, client_secret_env: S, issuer: \"https://i.test/\" }\n",
        );
        assert_eq!(e.path, "connections[1].options.type");
        let e = refused(
            "  - name: idp\n    strategy: oidc\n    options: { client_id: a, client_secret_env: S, issuer: \"ftp://i.test/\" }\n",
        );
        assert_eq!(e.path, "connections[1].options.issuer");
        let e = refused(
            "  - name: g\n    strategy: google-oauth2\n    options: { client_id: a, client_secret_env: S, scope: [openid, openid] }\n",
        );
        assert_eq!(e.path, "connections[1].options.scope[1]");
        let e = refused(
            "  - name: g\n    strategy: apple\n    options: { client_id: a, client_secret_env: S, timeout_seconds: 0 }\n",
        );
        assert_eq!(e.path, "connections[1].options.timeout_seconds");
        let e = refused("  - name: g\n    strategy: facebook\n");
        assert!(e.message.contains("unknown connection strategy"), "{e}");
    }

    #[test]
    fn references_to_and_from_upstream_connections() {
        let e = refused(
            "  - name: g\n    strategy: google-oauth2\n    options: { client_id: a, client_secret_env: S }\n    enabled_clients: [spa, nobody]\n",
        );
        assert_eq!(e.path, "connections[1].enabled_clients[1]");
        assert!(e.message.contains("nobody"), "{e}");
        let e = refused(
            "  - name: g\n    strategy: google-oauth2\n    options: { client_id: a, client_secret_env: S }\nusers: [{ email: a@b.test, connection: g }]\n",
        );
        assert_eq!(e.path, "users[0].connection");
        assert!(e.message.contains("upstream connection"), "{e}");
    }
}
