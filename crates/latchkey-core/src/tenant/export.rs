//! A tenant's configuration written back as a tenant file (YAML), so that
//! what the Management API changed can be kept in version control and
//! applied elsewhere: `latchkey tenant export`. Applying the exported file to
//! the same store changes nothing.
//!
//! Secrets stay out of it unless asked for: a client's secret becomes
//! `client_secret_env` (the variable it had, or `LATCHKEY_CLIENT_SECRET_` and
//! its ID), and the caller is told which variables to set. Users are
//! optional: those of database connections, with their password hashes;
//! their second factors and passkeys are not a tenant file's to carry, and
//! accounts someone signed up for whose email is unverified are left out
//! (a tenant file may not take them over).

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlEmitter};

use super::apply::client_secret_context;
use super::model::{ApiOwned, TenantFile, User};
use crate::context::Core;
use crate::store::{StoreError, UserOrder, UserRow, UserSearch};

/// What to put in the file besides the configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// The users of database connections, with their password hashes.
    pub users: bool,
    /// Client secrets in clear (`client_secret`) rather than named by
    /// environment variable.
    pub secrets: bool,
}

/// The file, and what its reader must know.
#[derive(Debug, Clone)]
pub struct Exported {
    pub yaml: String,
    /// The environment variables the file names for client secrets (and
    /// the client each is for): set them before applying the file.
    pub secret_variables: Vec<(String, String)>,
    pub users: usize,
    /// Users not written, and why (user ID, reason).
    pub users_left_out: Vec<(String, &'static str)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no tenant named {0}")]
    NoTenant(String),
    #[error("{0}")]
    Secret(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Users read per page.
const PAGE: i64 = 500;

pub async fn export(
    core: &Core,
    name: &str,
    options: ExportOptions,
) -> Result<Exported, ExportError> {
    let row = core
        .store
        .tenant_by_name(name)
        .await?
        .ok_or_else(|| ExportError::NoTenant(name.to_string()))?;
    let mut file: TenantFile = serde_json::from_str(&row.config)
        .map_err(|e| StoreError::Corrupt(format!("tenant {name}: {e}")))?;
    // What the API made is the file's once exported.
    file.api_owned = ApiOwned::default();
    let mut secret_variables = Vec::new();
    for client in &mut file.clients {
        let Some(sealed) = client.client_secret.take() else {
            continue;
        };
        if options.secrets {
            let ctx = client_secret_context(&row.id, &client.client_id);
            let secret = core.sealer.open(&ctx, &sealed).map_err(|e| {
                ExportError::Secret(format!(
                    "client {}: its secret cannot be opened: {e}",
                    client.client_id
                ))
            })?;
            client.client_secret = Some(String::from_utf8_lossy(&secret).into_owned());
            client.client_secret_env = None;
        } else {
            let variable = client
                .client_secret_env
                .clone()
                .unwrap_or_else(|| secret_variable(&client.client_id));
            secret_variables.push((variable.clone(), client.client_id.clone()));
            client.client_secret_env = Some(variable);
        }
    }
    let (users, users_left_out) = if options.users {
        users_of(core, &row.id, &file).await?
    } else {
        (Vec::new(), Vec::new())
    };
    let count = users.len();
    file.users = users;
    let value = serde_json::to_value(&file)
        .map_err(|e| StoreError::Corrupt(format!("tenant {name}: {e}")))?;
    Ok(Exported {
        yaml: to_yaml(&value),
        secret_variables,
        users: count,
        users_left_out,
    })
}

/// The variable a client's secret is named by when it had none:
/// `LATCHKEY_CLIENT_SECRET_` and the client ID, upper case, other
/// characters as `_`.
pub fn secret_variable(client_id: &str) -> String {
    let id: String = client_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("LATCHKEY_CLIENT_SECRET_{id}")
}

/// The tenant's users a tenant file can carry, oldest first, and those left
/// out with why.
async fn users_of(
    core: &Core,
    tenant_id: &str,
    file: &TenantFile,
) -> Result<(Vec<User>, Vec<(String, &'static str)>), StoreError> {
    let mut users = Vec::new();
    let mut left_out = Vec::new();
    let mut offset = 0;
    loop {
        let search = UserSearch {
            filter: None,
            order: UserOrder::CreatedAt,
            descending: false,
            offset,
            limit: PAGE,
            count: false,
        };
        let (page, _) = core.store.search_users(tenant_id, &search).await?;
        let n = page.len() as i64;
        for row in page {
            let database = file
                .connections
                .iter()
                .any(|c| c.name == row.connection && c.strategy.is_database());
            if !database {
                left_out.push((row.user_id, "not a database connection's user"));
            } else if row.signed_up && !row.email_verified {
                left_out.push((
                    row.user_id,
                    "signed up by themselves, email not verified: not a tenant file's to carry",
                ));
            } else {
                users.push(user_of(row));
            }
        }
        if n < PAGE {
            return Ok((users, left_out));
        }
        offset += n;
    }
}

fn user_of(row: UserRow) -> User {
    let profile = row.profile.as_object().cloned().unwrap_or_default();
    let text = |k: &str| profile.get(k).and_then(Value::as_str).map(str::to_string);
    let object = |k: &str| profile.get(k).and_then(Value::as_object).cloned();
    User {
        name: text("name"),
        given_name: text("given_name"),
        family_name: text("family_name"),
        nickname: text("nickname"),
        picture: text("picture"),
        roles: profile
            .get("roles")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        user_metadata: object("user_metadata"),
        app_metadata: object("app_metadata"),
        email: row.email,
        password: None,
        password_hash: row.password_hash,
        connection: row.connection,
        email_verified: row.email_verified,
        user_id: Some(row.user_id),
        blocked: row.blocked,
    }
}

/// A JSON value as block-style YAML (strings quoted where YAML would read
/// them as something else).
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    // A document of a mapping cannot fail to be written into a String.
    let _ = emitter.dump(&yaml_of(value));
    let body = out.strip_prefix("---\n").unwrap_or(&out);
    format!("# A latchkey tenant file (latchkey tenant export).\n{body}\n")
}

fn yaml_of(value: &Value) -> Yaml {
    match value {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(items) => Yaml::Array(items.iter().map(yaml_of).collect()),
        Value::Object(map) => Yaml::Hash(hash_of(map)),
    }
}

/// A mapping; keys whose value is null are left out (an absent key reads
/// as null: the file says only what is set). Keys in one order whatever the
/// JSON map keeps: the top level as the reference documents it (`tenant`
/// first, `users` last), an entity's name or ID first, the rest
/// alphabetically.
fn hash_of(map: &Map<String, Value>) -> yaml_rust2::yaml::Hash {
    let mut keys: Vec<&String> = map.keys().filter(|k| !map[*k].is_null()).collect();
    keys.sort_by_key(|k| (rank(k), k.as_str()));
    keys.into_iter()
        .map(|k| (Yaml::String(k.clone()), yaml_of(&map[k])))
        .collect()
}

fn rank(key: &str) -> usize {
    const FIRST: [&str; 8] = [
        "tenant",
        "client_id",
        "identifier",
        "name",
        "email",
        "connection",
        "user_id",
        "audience",
    ];
    const LAST: [&str; 1] = ["users"];
    match FIRST.iter().position(|k| *k == key) {
        Some(i) => i,
        None if LAST.contains(&key) => FIRST.len() + 1,
        None => FIRST.len(),
    }
}
