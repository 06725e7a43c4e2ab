//! The checks of applications, APIs, the grants between them, roles and users.

use super::*;

impl<'a> Validator<'a> {
    pub(super) fn clients(&self) -> Check {
        for (i, client) in self.file.clients.iter().enumerate() {
            self.client(&format!("clients[{i}]"), client)?;
        }
        let ids =
            indexed("clients", &self.file.clients, |c| c.client_id.as_str()).map(at("client_id"));
        self.unique(ids, |id| format!("duplicate client_id {id:?}"))?;
        let apis = indexed("clients", &self.file.clients, |c| {
            c.resource_server_identifier.as_deref()
        })
        .filter_map(|(path, api)| Some((path, api?)))
        .map(at("resource_server_identifier"));
        self.unique(apis, |api| {
            format!("a second resource_server client for {api:?}")
        })
    }

    pub(super) fn client(&self, path: &str, client: &Client) -> Check {
        self.ensure(
            is_word(&client.client_id, 64, is_id_byte),
            format!("{path}.client_id"),
            "must be 1 to 64 characters of A-Z, a-z, 0-9, _, . and -",
        )?;

        let secret_path = format!("{path}.client_secret");
        if let Some(variable) = &client.client_secret_env {
            self.ensure(
                is_env_name(variable),
                format!("{path}.client_secret_env"),
                "must be an environment variable's name (A-Z, 0-9 and _, not starting with a digit)",
            )?;
        }
        // A stored configuration keeps the variable's name beside the
        // secret it sealed; a file names one or the other (see file.rs).
        let secret = client.client_secret.as_deref().or(client
            .client_secret_env
            .as_deref()
            .map(|_| "from-the-environment"));
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

        self.token_vault(path, client)?;

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
        self.in_range(format!("{refresh_path}.leeway"), refresh.leeway, 0..=60)?;
        self.refresh_token_policies(&format!("{refresh_path}.policies"), client)
    }

    /// The Token Vault's clients, as Auth0 has them: the grant for
    /// confidential first-party clients only; a Custom API Client
    /// (`resource_server`) names the API whose access tokens it exchanges
    /// (one such client an API: [`Self::clients`]).
    fn token_vault(&self, path: &str, client: &Client) -> Check {
        if let Some(j) = client
            .grant_types
            .iter()
            .position(|g| *g == GrantType::TokenVault)
        {
            let grant_path = index_path(&format!("{path}.grant_types"), j);
            self.ensure(
                client.auth_method() != TokenEndpointAuthMethod::None,
                &grant_path,
                "the Token Vault grant is for confidential clients (token_endpoint_auth_method \
                 other than none)",
            )?;
            self.ensure(
                client.first_party,
                grant_path,
                "the Token Vault grant is for first-party clients only",
            )?;
        }
        let identifier_path = format!("{path}.resource_server_identifier");
        let Some(identifier) = client.resource_server_identifier.as_deref() else {
            return self.ensure(
                client.app_type != AppType::ResourceServer,
                identifier_path,
                "a resource_server client names its API (resource_server_identifier)",
            );
        };
        self.ensure(
            client.app_type == AppType::ResourceServer,
            &identifier_path,
            "only a client with app_type resource_server names an API",
        )?;
        self.ensure(
            self.file
                .resource_servers
                .iter()
                .any(|s| s.identifier == identifier),
            identifier_path,
            format!("{identifier:?} is not a resource server identifier of this tenant"),
        )
    }

    /// A client's multi-resource refresh token policies: first-party
    /// clients only (as Auth0's), each naming an API of this tenant once,
    /// with scopes of that API.
    fn refresh_token_policies(&self, path: &str, client: &Client) -> Check {
        let policies = &client.refresh_token.policies;
        self.ensure(
            policies.is_empty() || client.first_party,
            path,
            "multi-resource refresh token policies are for first-party clients only",
        )?;
        for (j, policy) in policies.iter().enumerate() {
            let path = index_path(path, j);
            self.ensure(
                !self.management_audiences.contains(&policy.audience),
                key_path(&path, "audience"),
                "the Management API takes no user tokens: a refresh token cannot be exchanged for it",
            )?;
            let Some(scopes) = self.api_scopes(&policy.audience) else {
                return Err(self.not_an_api(key_path(&path, "audience"), &policy.audience));
            };
            self.scopes_of_api(
                &key_path(&path, "scope"),
                &policy.audience,
                &scopes,
                &policy.scope,
            )?;
        }
        // The My Account API is one API, whichever host's audience names it.
        let apis = indexed(path, policies, |p| {
            (!self.my_account_audiences.contains(&p.audience)).then_some(p.audience.as_str())
        })
        .map(at("audience"));
        self.unique(apis, |api| match api {
            Some(audience) => format!("a second policy for {audience:?}"),
            None => "a second policy for the My Account API".into(),
        })
    }

    pub(super) fn resource_servers(&self) -> Check {
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
                &identifier_path,
                "is the audience of the built-in My Account API",
            )?;
            self.ensure(
                !self.management_audiences.contains(&server.identifier),
                identifier_path,
                "is the audience of the built-in Management API",
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
    pub(super) fn api_scopes(&self, audience: &str) -> Option<Vec<&'a str>> {
        if self.my_account_audiences.contains(audience) {
            return Some(MY_ACCOUNT_SCOPES.to_vec());
        }
        if self.management_audiences.contains(audience) {
            return Some(MANAGEMENT_API_SCOPES.to_vec());
        }
        let server = self
            .file
            .resource_servers
            .iter()
            .find(|s| s.identifier == audience)?;
        Some(server.scopes.iter().map(String::as_str).collect())
    }

    /// The refusal of an `audience` that names no API of this tenant.
    fn not_an_api(&self, path: String, audience: &str) -> TenantFileError {
        let message = format!(
            "{audience:?} is neither a resource server identifier nor a My Account or Management API audience of this tenant"
        );
        self.error(path, message)
    }

    /// `scopes`, listed at `path` for the API `audience` whose scopes are
    /// `api`: each one of them (never an OpenID Connect scope, which users
    /// grant themselves), none twice.
    fn scopes_of_api(&self, path: &str, audience: &str, api: &[&str], scopes: &[String]) -> Check {
        for (j, scope) in scopes.iter().enumerate() {
            let scope_path = index_path(path, j);
            self.ensure(
                !OIDC_SCOPES.contains(&scope.as_str()),
                &scope_path,
                format!("{scope:?} is an OpenID Connect scope and cannot be granted to an API"),
            )?;
            self.ensure(
                api.contains(&scope.as_str()),
                scope_path,
                format!("{scope:?} is not a scope of {audience:?}"),
            )?;
        }
        self.unique(indexed(path, scopes, String::as_str), |s| {
            format!("duplicate scope {s:?}")
        })
    }

    pub(super) fn client_grants(&self) -> Check {
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
                return Err(self.not_an_api(format!("{path}.audience"), &grant.audience));
            };
            self.ensure(
                grant.subject_type == SubjectType::User
                    || !self.my_account_audiences.contains(&grant.audience),
                format!("{path}.subject_type"),
                "the My Account API does not allow client access",
            )?;
            self.ensure(
                grant.subject_type == SubjectType::Client
                    || !self.management_audiences.contains(&grant.audience),
                format!("{path}.subject_type"),
                "the Management API does not allow user access",
            )?;
            self.scopes_of_api(
                &format!("{path}.scope"),
                &grant.audience,
                &scopes,
                &grant.scope,
            )?;
        }
        let keys = indexed("client_grants", &self.file.client_grants, |g| {
            (g.client_id.as_str(), g.audience.as_str(), g.subject_type)
        });
        self.unique(keys, |(client_id, audience, subject_type)| {
            format!("duplicate {subject_type} grant of {audience:?} to client {client_id:?}")
        })
    }

    pub(super) fn roles(&self) -> Check {
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
                    !self.management_audiences.contains(audience),
                    format!("{path}.resource_server_identifier"),
                    "the Management API does not allow user access: roles cannot grant its scopes",
                )?;
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

    pub(super) fn users(&self) -> Check {
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

    pub(super) fn user(&self, path: &str, user: &User) -> Check {
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
        match self
            .file
            .connections
            .iter()
            .find(|c| c.name == user.connection)
        {
            None => {
                let mut message = format!("no connection is named {:?}", user.connection);
                if self.file.connections.is_empty() {
                    message.push_str(" (the file defines no connections)");
                }
                return Err(self.error(format!("{path}.connection"), message));
            }
            Some(c) if c.strategy.is_upstream() => {
                return Err(self.error(
                    format!("{path}.connection"),
                    format!(
                        "{:?} is an upstream connection (strategy {}): its users come from the identity provider",
                        c.name, c.strategy
                    ),
                ));
            }
            Some(c) if c.strategy.is_passwordless() => {
                return Err(self.error(
                    format!("{path}.connection"),
                    format!(
                        "{:?} is a passwordless connection: its users are made at their first login",
                        c.name
                    ),
                ));
            }
            Some(_) => {}
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
