//! The Management API's resource servers (APIs): the tenant's own, made,
//! changed and deleted (with what names them: grants, role permissions,
//! refresh token policies), and the system APIs every tenant serves (the
//! Management API and the My Account API), shown as Auth0 shows its own,
//! read-only. An API is named by an ID derived from its identifier, or by
//! its identifier, as Auth0 takes both.

use std::collections::BTreeMap;

use super::config::{self, Logged, Page, Paging};
use super::{Caller, ManagementError};
use crate::context::Core;
use crate::tenant::{
    GrantKey, MANAGEMENT_API_SCOPES, MY_ACCOUNT_SCOPES, ResourceServer, TenantFile,
    management_audience, my_account_audience, short_digest,
};

/// An API as the Management API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRecord {
    pub id: String,
    pub server: ResourceServer,
    /// The Management or My Account API: read-only.
    pub system: bool,
    /// The Custom API Client of this API, if it has one.
    pub client_id: Option<String>,
}

/// The properties of an API a request sets, of the right JSON types.
#[derive(Debug, Clone, Default)]
pub struct ApiFields {
    pub name: Option<String>,
    /// At creation only.
    pub identifier: Option<String>,
    /// `(value, description)` of each scope.
    pub scopes: Option<Vec<(String, Option<String>)>>,
    pub token_lifetime: Option<i64>,
    pub allow_offline_access: Option<bool>,
    pub enforce_policies: Option<bool>,
    pub signing_alg: Option<String>,
    pub token_dialect: Option<String>,
}

const MANAGEMENT: &str = "management-api";
const MY_ACCOUNT: &str = "my-account-api";
const MAX_NAME_CHARS: usize = 255;

/// The ID of the API `identifier` (24 hexadecimal digits, as Auth0's): the
/// first 12 bytes of the SHA-256 of `resource_server\n{identifier}\n`.
pub fn api_id(identifier: &str) -> String {
    short_digest(&["resource_server", identifier], 12)
}

/// A system API's ID: the same on every host of the tenant.
fn system_id(which: &str) -> String {
    short_digest(&["system", which], 12)
}

fn not_found() -> ManagementError {
    ManagementError::NotFound {
        code: "inexistent_resource_server",
        message: "The resource server does not exist".into(),
    }
}

fn property_error(property: &str, message: impl std::fmt::Display) -> ManagementError {
    ManagementError::InvalidBody(format!(
        "Payload validation error: '{message}' on property {property}."
    ))
}

/// The system APIs, as seen on the caller's host.
fn system_apis(caller: &Caller<'_>) -> Vec<ApiRecord> {
    let config = &caller.tenant.config;
    let server =
        |identifier: String, name: &str, scopes: &[&str], lifetime, enforce| ResourceServer {
            identifier,
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            scope_descriptions: BTreeMap::new(),
            token_lifetime: lifetime,
            enforce_policies: enforce,
            allow_offline_access: false,
        };
    let mut out = vec![ApiRecord {
        id: system_id(MANAGEMENT),
        server: server(
            management_audience(caller.host),
            "Auth0 Management API",
            &MANAGEMENT_API_SCOPES,
            config.management_api.token_lifetime,
            false,
        ),
        system: true,
        client_id: None,
    }];
    if config.my_account_api.active {
        out.push(ApiRecord {
            id: system_id(MY_ACCOUNT),
            server: server(
                my_account_audience(caller.host),
                "Auth0 My Account API",
                &MY_ACCOUNT_SCOPES,
                config.my_account_api.token_lifetime,
                config.my_account_api.enforce_policies,
            ),
            system: true,
            client_id: None,
        });
    }
    out
}

fn record(file: &TenantFile, server: &ResourceServer) -> ApiRecord {
    ApiRecord {
        id: api_id(&server.identifier),
        server: server.clone(),
        system: false,
        client_id: file
            .clients
            .iter()
            .find(|c| c.resource_server_identifier.as_deref() == Some(&server.identifier))
            .map(|c| c.client_id.clone()),
    }
}

/// Every API of the tenant: the system APIs first.
fn all(caller: &Caller<'_>) -> Vec<ApiRecord> {
    let file = &caller.tenant.config;
    let mut out = system_apis(caller);
    out.extend(file.resource_servers.iter().map(|s| record(file, s)));
    out
}

/// `GET /resource-servers`: a page of them, only those of `identifiers`
/// when some are given.
pub fn list(
    caller: &Caller<'_>,
    identifiers: &[String],
    paging: Paging,
) -> Result<Page<ApiRecord>, ManagementError> {
    let found = all(caller)
        .into_iter()
        .filter(|a| identifiers.is_empty() || identifiers.contains(&a.server.identifier))
        .collect();
    config::page(found, paging)
}

/// Whether `key` names the system API `api` (by ID, or by identifier on
/// any host of the tenant).
fn names_system(caller: &Caller<'_>, api: &ApiRecord, key: &str) -> bool {
    let tenant = caller.tenant;
    key == api.id
        || (api.id == system_id(MANAGEMENT) && tenant.names_management_api_anywhere(key))
        || (api.id == system_id(MY_ACCOUNT)
            && tenant
                .config
                .tenant
                .domains
                .iter()
                .any(|d| tenant.is_my_account_audience(d, key)))
}

/// `GET /resource-servers/{id}`: by ID or identifier.
pub fn get(caller: &Caller<'_>, key: &str) -> Result<ApiRecord, ManagementError> {
    all(caller)
        .into_iter()
        .find(|a| match a.system {
            true => names_system(caller, a, key),
            false => a.id == key || a.server.identifier == key,
        })
        .ok_or_else(not_found)
}

/// Refuses a change to a system API.
fn refuse_system(caller: &Caller<'_>, key: &str) -> Result<(), ManagementError> {
    match system_apis(caller)
        .iter()
        .find(|a| names_system(caller, a, key))
    {
        Some(a) => Err(ManagementError::BadRequest {
            code: "operation_not_supported",
            message: format!(
                "The {} is a system API: it cannot be changed or deleted",
                a.server.name
            ),
        }),
        None => Ok(()),
    }
}

/// Sets `f` on `server`.
fn set(server: &mut ResourceServer, f: &ApiFields) -> Result<(), ManagementError> {
    if let Some(name) = &f.name {
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS || name.contains(['<', '>']) {
            return Err(property_error(
                "name",
                format!("The name must be 1 to {MAX_NAME_CHARS} characters, without < or >"),
            ));
        }
        server.name = name.clone();
    }
    if let Some(scopes) = &f.scopes {
        server.scopes = scopes.iter().map(|(v, _)| v.clone()).collect();
        server.scope_descriptions = scopes
            .iter()
            .filter_map(|(v, d)| Some((v.clone(), d.clone()?)))
            .collect();
    }
    if let Some(l) = f.token_lifetime {
        server.token_lifetime = u32::try_from(l)
            .map_err(|_| property_error("token_lifetime", format!("{l} is out of range")))?;
    }
    if let Some(b) = f.allow_offline_access {
        server.allow_offline_access = b;
    }
    if let Some(b) = f.enforce_policies {
        server.enforce_policies = b;
    }
    if let Some(alg) = f.signing_alg.as_deref().filter(|a| *a != "RS256") {
        return Err(property_error(
            "signing_alg",
            format!("latchkey signs access tokens with RS256, not {alg}"),
        ));
    }
    if let Some(d) = f.token_dialect.as_deref().filter(|d| *d != "access_token") {
        return Err(property_error(
            "token_dialect",
            format!("latchkey's access tokens carry their scopes (access_token), not {d}"),
        ));
    }
    Ok(())
}

fn logged(before: Option<&ResourceServer>, after: Option<&ResourceServer>, id: &str) -> Logged {
    let (b, a) = (before.map(config::as_json), after.map(config::as_json));
    Logged::new(
        "resource_server",
        id,
        config::changes(b.as_ref(), a.as_ref(), &[]),
    )
}

/// `POST /resource-servers`.
pub async fn create(
    state: &Core,
    caller: &Caller<'_>,
    fields: ApiFields,
) -> Result<ApiRecord, ManagementError> {
    let identifier = fields.identifier.clone().ok_or_else(|| {
        ManagementError::InvalidBody(
            "Payload validation error: 'Missing required property: identifier'.".into(),
        )
    })?;
    let mut server = ResourceServer {
        identifier: identifier.clone(),
        name: identifier.clone(),
        scopes: Vec::new(),
        scope_descriptions: BTreeMap::new(),
        token_lifetime: 86_400,
        enforce_policies: false,
        allow_offline_access: false,
    };
    set(&mut server, &fields)?;
    let id = api_id(&identifier);
    config::change(
        state,
        caller,
        "Create a Resource Server",
        "resource_servers",
        |file| {
            if file
                .resource_servers
                .iter()
                .any(|s| s.identifier == identifier)
            {
                return Err(ManagementError::Conflict {
                    code: "already_exists",
                    message: "A resource server with the same identifier already exists".into(),
                });
            }
            file.resource_servers.push(server.clone());
            file.api_owned.resource_servers.insert(identifier.clone());
            Ok((record(file, &server), logged(None, Some(&server), &id)))
        },
    )
    .await
}

/// The API named `key` (ID or identifier) in `file`.
fn position(file: &TenantFile, key: &str) -> Result<usize, ManagementError> {
    file.resource_servers
        .iter()
        .position(|s| s.identifier == key || api_id(&s.identifier) == key)
        .ok_or_else(not_found)
}

/// Takes the scopes `gone` of the API `audience` out of what names them.
fn drop_scopes(file: &mut TenantFile, audience: &str, gone: &[String]) {
    for grant in &mut file.client_grants {
        if grant.audience == audience {
            grant.scope.retain(|s| !gone.contains(s));
        }
    }
    for role in &mut file.roles {
        role.permissions.retain(|p| {
            p.resource_server_identifier != audience || !gone.contains(&p.permission_name)
        });
    }
    for client in &mut file.clients {
        for policy in &mut client.refresh_token.policies {
            if policy.audience == audience {
                policy.scope.retain(|s| !gone.contains(s));
            }
        }
    }
}

/// `PATCH /resource-servers/{id}`. Scopes it no longer has leave the grants,
/// role permissions and refresh token policies that named them.
pub async fn update(
    state: &Core,
    caller: &Caller<'_>,
    key: &str,
    fields: ApiFields,
) -> Result<ApiRecord, ManagementError> {
    refuse_system(caller, key)?;
    config::change(
        state,
        caller,
        "Update a Resource Server",
        "resource_servers",
        |file| {
            let i = position(file, key)?;
            let before = file.resource_servers[i].clone();
            let mut after = before.clone();
            set(&mut after, &fields)?;
            let gone: Vec<String> = before
                .scopes
                .iter()
                .filter(|s| !after.scopes.contains(s))
                .cloned()
                .collect();
            drop_scopes(file, &before.identifier, &gone);
            file.resource_servers[i] = after.clone();
            file.api_owned
                .resource_servers
                .insert(after.identifier.clone());
            let id = api_id(&after.identifier);
            Ok((
                record(file, &after),
                logged(Some(&before), Some(&after), &id),
            ))
        },
    )
    .await
}

/// `DELETE /resource-servers/{id}`: the API, its client grants, the role
/// permissions and refresh token policies that name it. An API that has a
/// Custom API Client is refused until that client is deleted.
pub async fn delete(state: &Core, caller: &Caller<'_>, key: &str) -> Result<(), ManagementError> {
    refuse_system(caller, key)?;
    config::change(
        state,
        caller,
        "Delete a Resource Server",
        "resource_servers",
        |file| {
            let i = position(file, key)?;
            let before = file.resource_servers.remove(i);
            let audience = before.identifier.clone();
            file.api_owned.resource_servers.remove(&audience);
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut file.client_grants)
                .into_iter()
                .partition(|g| g.audience == audience);
            file.client_grants = kept;
            for grant in &gone {
                file.api_owned.client_grants.remove(&GrantKey::of(grant));
            }
            for role in &mut file.roles {
                role.permissions
                    .retain(|p| p.resource_server_identifier != audience);
            }
            for client in &mut file.clients {
                client
                    .refresh_token
                    .policies
                    .retain(|p| p.audience != audience);
            }
            Ok(((), logged(Some(&before), None, &api_id(&audience))))
        },
    )
    .await
}
