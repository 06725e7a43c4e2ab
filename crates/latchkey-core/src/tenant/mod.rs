//! Tenants: the operator's description (a tenant file), how it is applied to
//! the store, and the runtime view selected by each request's host.

pub mod apply;
pub mod dev;
pub mod edit;
pub mod export;
pub mod file;
pub mod model;
mod validate;
pub(crate) mod yaml;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use file::parse_tenant_file;
pub use model::*;

use crate::clock::{SharedClock, Timestamp};
use crate::store::{Store, StoreError, TenantRow};

/// A tenant as the request path sees it: its configuration (the tenant file
/// without users) and the host the request arrived on.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub revision: i64,
    pub config: TenantFile,
}

impl Tenant {
    pub fn from_row(row: &TenantRow) -> Result<Self, StoreError> {
        let config: TenantFile = serde_json::from_str(&row.config)
            .map_err(|e| StoreError::Corrupt(format!("tenant {}: {e}", row.name)))?;
        Ok(Self {
            id: row.id.clone(),
            name: row.name.clone(),
            revision: row.revision,
            config,
        })
    }

    /// The name people are shown (messages, authenticator apps, the
    /// pages' title): the tenant's `friendly_name`, else its name.
    pub fn display_name(&self) -> &str {
        self.config
            .tenant
            .friendly_name
            .as_deref()
            .unwrap_or(&self.name)
    }

    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.config
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
    }

    /// The database connection named `name` (an upstream connection's
    /// users log in at their provider, not with a password here).
    pub fn database_connection(&self, name: &str) -> Option<&Connection> {
        self.config
            .connections
            .iter()
            .find(|c| c.name == name && c.strategy.is_database())
    }

    /// The upstream connection named `name`.
    pub fn upstream_connection(&self, name: &str) -> Option<&Connection> {
        self.config
            .connections
            .iter()
            .find(|c| c.name == name && c.strategy.is_upstream())
    }

    /// The passwordless connection named `name`.
    pub fn passwordless_connection(&self, name: &str) -> Option<&Connection> {
        self.config
            .connections
            .iter()
            .find(|c| c.name == name && c.strategy.is_passwordless())
    }

    /// The connection named `name`, of any kind.
    pub(crate) fn connection(&self, name: &str) -> Option<&Connection> {
        self.config.connections.iter().find(|c| c.name == name)
    }

    /// The database connection used when a request names none: the first.
    pub(crate) fn default_connection(&self) -> Option<&Connection> {
        self.config
            .connections
            .iter()
            .find(|c| c.strategy.is_database())
    }

    pub(crate) fn resource_server(&self, identifier: &str) -> Option<&ResourceServer> {
        self.config
            .resource_servers
            .iter()
            .find(|r| r.identifier == identifier)
    }

    pub(crate) fn client_grant(
        &self,
        client_id: &str,
        audience: &str,
        subject: SubjectType,
    ) -> Option<&ClientGrant> {
        let wanted = canonical_audience(audience);
        self.config.client_grants.iter().find(|g| {
            g.client_id == client_id
                && canonical_audience(&g.audience) == wanted
                && g.subject_type == subject
        })
    }

    /// The client's user grant to the My Account API. The API is one, on
    /// every host of the tenant: a grant naming its audience on any of them
    /// covers all.
    pub(crate) fn my_account_client_grant(&self, client_id: &str) -> Option<&ClientGrant> {
        self.config.client_grants.iter().find(|g| {
            g.client_id == client_id
                && g.subject_type == SubjectType::User
                && self
                    .config
                    .tenant
                    .domains
                    .iter()
                    .any(|d| self.is_my_account_audience(d, &g.audience))
        })
    }

    /// The policy of `client`'s refresh tokens (Auth0's multi-resource
    /// refresh token) for `audience`, asked for on `host`. The My Account
    /// API is one API on every host, as for client grants.
    pub(crate) fn refresh_token_policy<'c>(
        &self,
        client: &'c Client,
        host: &str,
        audience: &str,
    ) -> Option<&'c RefreshTokenPolicy> {
        let my_account = self.is_my_account_audience(host, audience);
        let wanted = canonical_audience(audience);
        client.refresh_token.policies.iter().find(|p| {
            let named = canonical_audience(&p.audience);
            if my_account {
                self.config
                    .tenant
                    .domains
                    .iter()
                    .any(|d| self.is_my_account_audience(d, &named))
            } else {
                named == wanted
            }
        })
    }

    /// Every origin any client of the tenant allows for CORS.
    pub fn allowed_origins(&self) -> impl Iterator<Item = &str> {
        self.config
            .clients
            .iter()
            .flat_map(|c| c.allowed_origins.iter().chain(c.web_origins.iter()))
            .map(String::as_str)
    }

    /// Whether `audience` is the MFA API of `host` (not a resource server
    /// of the tenant file: every tenant serves it).
    pub(crate) fn is_mfa_api_audience(&self, host: &str, audience: &str) -> bool {
        names_mfa_api(host, audience)
    }

    /// Whether `audience` is this tenant's Management API on `host`.
    pub(crate) fn is_management_audience(&self, host: &str, audience: &str) -> bool {
        names_management_api(host, audience)
    }

    /// Whether `audience` names this tenant's Management API on any of its
    /// domains.
    pub(crate) fn names_management_api_anywhere(&self, audience: &str) -> bool {
        self.config
            .tenant
            .domains
            .iter()
            .any(|d| names_management_api(d, audience))
    }

    /// The client's grant to the Management API. The API is one, on every
    /// host of the tenant: a grant naming its audience on any of them covers
    /// all (each host's tokens carry that host's audience, and work there).
    pub(crate) fn management_client_grant(&self, client_id: &str) -> Option<&ClientGrant> {
        self.config.client_grants.iter().find(|g| {
            g.client_id == client_id
                && g.subject_type == SubjectType::Client
                && self.names_management_api_anywhere(&g.audience)
        })
    }

    /// Whether `audience` is this tenant's My Account API on `host`.
    pub(crate) fn is_my_account_audience(&self, host: &str, audience: &str) -> bool {
        names_my_account_api(host, audience)
    }
}

/// Loopback hosts are served over plain HTTP, so a grant written for
/// `https://localhost:…/me/` means the same API as `http://localhost:…/me/`.
fn canonical_audience(audience: &str) -> std::borrow::Cow<'_, str> {
    match audience.strip_prefix("https://") {
        Some(rest) if is_loopback_host(rest.split('/').next().unwrap_or("")) => {
            format!("http://{rest}").into()
        }
        _ => audience.into(),
    }
}

/// When a host was looked up, and what it resolved to.
type CachedTenant = (Timestamp, Option<Arc<Tenant>>);

/// Resolves hosts to tenants with a short-lived in-process cache, so a node
/// reads the tenant row at most once per `ttl` seconds per host; changes
/// applied on another node are seen within that time.
pub struct TenantCache {
    store: Arc<dyn Store>,
    clock: SharedClock,
    ttl: i64,
    entries: RwLock<HashMap<String, CachedTenant>>,
}

impl TenantCache {
    pub fn new(store: Arc<dyn Store>, clock: SharedClock, ttl: i64) -> Self {
        Self {
            store,
            clock,
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub async fn by_host(&self, host: &str) -> Result<Option<Arc<Tenant>>, StoreError> {
        let now = self.clock.now();
        if let Ok(map) = self.entries.read()
            && let Some((at, t)) = map.get(host)
            && now - *at < self.ttl
        {
            return Ok(t.clone());
        }
        let tenant = match self.store.tenant_by_domain(host).await? {
            Some(row) => Some(Arc::new(Tenant::from_row(&row)?)),
            None => None,
        };
        if let Ok(mut map) = self.entries.write() {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(host.to_string(), (now, tenant.clone()));
        }
        Ok(tenant)
    }

    /// Forgets everything (after this node applied a tenant file).
    pub fn invalidate(&self) {
        if let Ok(mut map) = self.entries.write() {
            map.clear();
        }
    }
}
