//! The Management API's connections: the database (`auth0`), passwordless
//! (`email`, `sms`) and upstream (`oidc`, `oauth2`, `github`, …) connections
//! of the tenant, named by an ID derived from their name. Auth0's `options`
//! are mapped to the model here (`connection_options.rs`); an upstream
//! connection's client secret is named by its environment variable, never
//! given. A connection deleted takes its users with it, as Auth0's does.

use serde_json::{Map, Value, json};

use super::config::{self, Listed, Logged, Paged};
use super::{Caller, ManagementError};
use crate::context::Core;
use crate::store::{UserField, UserFilter, UserMatch, UserOrder, UserSearch};
use crate::tenant::{
    AuthenticationPurpose, ConnectedAccountsPurpose, Connection, ConnectionStrategy, TenantFile,
    short_digest,
};

use super::connection_options as options;
pub use options::options_object;

/// A connection with its ID and the clients that may use it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRecord {
    pub id: String,
    pub connection: Connection,
    /// Its `enabled_clients`; for a database connection, every client (all
    /// may use it).
    pub enabled_clients: Vec<String>,
}

/// The properties of a connection a request sets, of the right JSON types.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFields {
    /// At creation only.
    pub name: Option<String>,
    /// At creation only.
    pub strategy: Option<String>,
    pub display_name: Option<String>,
    pub enabled_clients: Option<Vec<String>>,
    /// Replaces the connection's options as a whole (as Auth0's `PATCH`).
    pub options: Option<Map<String, Value>>,
    /// `authentication.active`.
    pub authentication: Option<bool>,
    /// `connected_accounts.active`.
    pub connected_accounts: Option<bool>,
    pub link_by_verified_email: Option<bool>,
}

/// `GET /connections`' filters.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    /// Strategies, any of them.
    pub strategy: Vec<String>,
    pub name: Option<String>,
}

/// The ID of the connection `name`: `con_` and the first 16 hexadecimal
/// digits of the SHA-256 of `connection\n{name}\n`.
pub fn connection_id(name: &str) -> String {
    format!("con_{}", short_digest(&["connection", name], 8))
}

fn not_found() -> ManagementError {
    ManagementError::NotFound {
        code: "inexistent_connection",
        message: "The connection does not exist".into(),
    }
}

pub(super) fn property_error(property: &str, message: impl std::fmt::Display) -> ManagementError {
    ManagementError::InvalidBody(format!(
        "Payload validation error: '{message}' on property {property}."
    ))
}

fn record(file: &TenantFile, c: &Connection) -> ConnectionRecord {
    let enabled_clients = if c.strategy.is_database() {
        file.clients.iter().map(|c| c.client_id.clone()).collect()
    } else {
        c.enabled_clients.clone()
    };
    ConnectionRecord {
        id: connection_id(&c.name),
        connection: c.clone(),
        enabled_clients,
    }
}

/// `GET /connections`.
pub fn list(
    caller: &Caller<'_>,
    filter: &ConnectionFilter,
    paged: &Paged,
) -> Result<Listed<ConnectionRecord>, ManagementError> {
    let file = &caller.tenant.config;
    let all = file
        .connections
        .iter()
        .filter(|c| {
            filter.strategy.is_empty() || filter.strategy.iter().any(|s| s == c.strategy.as_str())
        })
        .filter(|c| filter.name.as_ref().is_none_or(|n| &c.name == n))
        .map(|c| record(file, c))
        .collect();
    config::listed(all, |c| c.id.clone(), paged)
}

/// `GET /connections/{id}`.
pub fn get(caller: &Caller<'_>, id: &str) -> Result<ConnectionRecord, ManagementError> {
    let file = &caller.tenant.config;
    file.connections
        .iter()
        .find(|c| connection_id(&c.name) == id)
        .map(|c| record(file, c))
        .ok_or_else(not_found)
}

/// Sets `f` on `c` (whose strategy is settled), as a request to make or
/// change it: options given replace its options.
fn set(
    state: &Core,
    c: &mut Connection,
    f: &ConnectionFields,
    all_clients: &[String],
) -> Result<(), ManagementError> {
    let strategy = c.strategy;
    let upstream_only = [
        ("display_name", f.display_name.is_some()),
        ("authentication", f.authentication.is_some()),
        ("connected_accounts", f.connected_accounts.is_some()),
        ("link_by_verified_email", f.link_by_verified_email.is_some()),
    ];
    if !strategy.is_upstream()
        && let Some((property, _)) = upstream_only.iter().find(|(_, given)| *given)
    {
        return Err(property_error(
            property,
            format!("{property} is for upstream connections, not for strategy {strategy}"),
        ));
    }
    if let Some(clients) = &f.enabled_clients {
        if strategy.is_database() {
            let mut given = clients.clone();
            let mut every = all_clients.to_vec();
            given.sort();
            every.sort();
            if given != every {
                return Err(property_error(
                    "enabled_clients",
                    "every client of the tenant may use a database connection in latchkey: enabled_clients can only list them all",
                ));
            }
        } else {
            c.enabled_clients = clients.clone();
        }
    }
    if let Some(o) = &f.options {
        options::set(state, c, o)?;
    } else if c.strategy.is_upstream() && c.options.is_none() {
        return Err(property_error(
            "options",
            format!("strategy {strategy} needs options (at least client_id and client_secret_env)"),
        ));
    }
    if let Some(d) = &f.display_name {
        c.display_name = Some(d.clone());
    }
    if let Some(b) = f.authentication {
        c.authentication = AuthenticationPurpose { active: b };
    }
    if let Some(b) = f.connected_accounts {
        c.connected_accounts = ConnectedAccountsPurpose { active: b };
    }
    if let Some(b) = f.link_by_verified_email {
        c.link_by_verified_email = b;
    }
    Ok(())
}

fn logged(before: Option<&Connection>, after: Option<&Connection>, id: &str) -> Logged {
    let (b, a) = (before.map(config::as_json), after.map(config::as_json));
    Logged::new(
        "connection",
        id,
        config::changes(b.as_ref(), a.as_ref(), &[]),
    )
}

/// `POST /connections`.
pub async fn create(
    state: &Core,
    caller: &Caller<'_>,
    fields: ConnectionFields,
) -> Result<ConnectionRecord, ManagementError> {
    let missing = |p: &str| {
        ManagementError::InvalidBody(format!(
            "Payload validation error: 'Missing required property: {p}'."
        ))
    };
    let name = fields.name.clone().ok_or_else(|| missing("name"))?;
    let strategy = fields
        .strategy
        .as_deref()
        .ok_or_else(|| missing("strategy"))?;
    let strategy = ConnectionStrategy::try_from(strategy.to_string())
        .map_err(|e| property_error("strategy", e))?;
    let mut connection = Connection {
        name: name.clone(),
        strategy,
        password_policy: Default::default(),
        disable_signup: false,
        requires_username: false,
        require_email_verification: false,
        options: None,
        display_name: None,
        authentication: AuthenticationPurpose::default(),
        link_by_verified_email: false,
        connected_accounts: ConnectedAccountsPurpose::default(),
        enabled_clients: Vec::new(),
    };
    let clients: Vec<String> = caller
        .tenant
        .config
        .clients
        .iter()
        .map(|c| c.client_id.clone())
        .collect();
    set(state, &mut connection, &fields, &clients)?;
    let id = connection_id(&name);
    config::change(
        state,
        caller,
        "Create a connection",
        "connections",
        |file| {
            if file.connections.iter().any(|c| c.name == name) {
                return Err(ManagementError::Conflict {
                    code: "already_exists",
                    message: "A connection with the same name already exists".into(),
                });
            }
            file.connections.push(connection.clone());
            file.api_owned.connections.insert(name.clone());
            Ok((
                record(file, &connection),
                logged(None, Some(&connection), &id),
            ))
        },
    )
    .await
}

/// `PATCH /connections/{id}`: what is given; `options`, when given, replace
/// the connection's options as a whole (as Auth0's).
pub async fn update(
    state: &Core,
    caller: &Caller<'_>,
    id: &str,
    fields: ConnectionFields,
) -> Result<ConnectionRecord, ManagementError> {
    config::change(
        state,
        caller,
        "Update a connection",
        "connections",
        |file| {
            let clients: Vec<String> = file.clients.iter().map(|c| c.client_id.clone()).collect();
            let i = file
                .connections
                .iter()
                .position(|c| connection_id(&c.name) == id)
                .ok_or_else(not_found)?;
            let before = file.connections[i].clone();
            let mut after = before.clone();
            set(state, &mut after, &fields, &clients)?;
            file.connections[i] = after.clone();
            file.api_owned.connections.insert(after.name.clone());
            Ok((
                record(file, &after),
                logged(Some(&before), Some(&after), id),
            ))
        },
    )
    .await
}

/// Users read per page when a connection's users are deleted.
const SCAN_PAGE: i64 = 100;

/// Deletes the users of the connection `name` (not those of other
/// connections with an identity there), each with all they hold; how many.
async fn delete_users(state: &Core, tenant_id: &str, name: &str) -> Result<u64, ManagementError> {
    let filter = UserFilter::Field(UserField::Connection, UserMatch::Is(name.to_string()));
    let mut deleted = 0;
    let mut kept = 0;
    loop {
        let search = UserSearch {
            filter: Some(&filter),
            order: UserOrder::UserId,
            descending: false,
            offset: kept,
            limit: SCAN_PAGE,
            count: false,
        };
        let (users, _) = state.store.search_users(tenant_id, &search).await?;
        let read = i64::try_from(users.len()).unwrap_or(SCAN_PAGE);
        for user in users {
            if user.connection == name {
                if state.store.delete_user(tenant_id, &user.user_id).await? {
                    deleted += 1;
                }
            } else {
                kept += 1;
            }
        }
        if read < SCAN_PAGE {
            return Ok(deleted);
        }
    }
}

/// `DELETE /connections/{id}`: its users first, each with everything they
/// hold (as Auth0 deletes a connection's users), and what other users hold
/// there (accounts linked to it, connected accounts); then the connection.
/// A request that fails half-way leaves the connection, and the same
/// `DELETE` finishes the work.
pub async fn delete(state: &Core, caller: &Caller<'_>, id: &str) -> Result<(), ManagementError> {
    let name = get(caller, id)?.connection.name;
    let tenant_id = &caller.tenant.id;
    // The configuration without it must hold before its users go: a refusal
    // then leaves both. (A change made meanwhile is checked again below.)
    let mut without = caller.tenant.config.clone();
    without.connections.retain(|c| c.name != name);
    crate::tenant::file::check_config(&mut without, &*state.outside.delivery)
        .map_err(|e| config::invalid_config(&e, "connections"))?;
    let users = delete_users(state, tenant_id, &name).await?;
    state.store.unlink_connection(tenant_id, &name).await?;
    config::change(
        state,
        caller,
        "Delete a connection",
        "connections",
        |file| {
            let i = file
                .connections
                .iter()
                .position(|c| c.name == name)
                .ok_or_else(not_found)?;
            let before = file.connections.remove(i);
            file.api_owned.connections.remove(&name);
            let mut log = logged(Some(&before), None, id);
            if let Some(changes) = log.changes.as_object_mut() {
                changes.insert("users_deleted".into(), json!(users));
            }
            Ok(((), log))
        },
    )
    .await?;
    // A user made in between (a sign-up, a first upstream login) goes too.
    delete_users(state, tenant_id, &name).await?;
    state.store.unlink_connection(tenant_id, &name).await?;
    Ok(())
}
