//! Applying a tenant file to the store, idempotently: applying the same file
//! twice changes nothing the second time. Users the file does not mention
//! (signed up, or created through the API) are left alone.

use serde_json::{Map, Value, json};

use super::file::check_config;
use super::{GrantKey, TenantFile, User};
use crate::context::Core;
use crate::rng::RngExt;
use crate::services::delivery::Secrets;
use crate::store::{StoreError, UserRow};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    pub tenant_id: String,
    pub tenant_created: bool,
    pub users_created: usize,
    pub users_updated: usize,
    pub users_unchanged: usize,
    /// Entities the Management API made that the file does not list, kept.
    pub kept_from_api: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

pub fn client_secret_context(tenant_id: &str, client_id: &str) -> String {
    format!("client-secret:{tenant_id}:{client_id}")
}

fn profile_of(u: &User) -> Value {
    let mut p = Map::new();
    for (k, v) in [
        ("name", &u.name),
        ("given_name", &u.given_name),
        ("family_name", &u.family_name),
        ("nickname", &u.nickname),
        ("picture", &u.picture),
    ] {
        if let Some(v) = v {
            p.insert(k.into(), json!(v));
        }
    }
    if !u.roles.is_empty() {
        p.insert("roles".into(), json!(u.roles));
    }
    if let Some(m) = &u.user_metadata {
        p.insert("user_metadata".into(), Value::Object(m.clone()));
    }
    if let Some(m) = &u.app_metadata {
        p.insert("app_metadata".into(), Value::Object(m.clone()));
    }
    Value::Object(p)
}

/// Why the file's user `u` cannot be given the existing account `c`: an
/// account its holder signed up for, whose email nobody has verified, is
/// theirs and not the operator's to hand to whoever the file means (it would
/// give the file's user the sign-up's passkeys, or the sign-up a verified
/// email). None when `c` may be provisioned.
fn not_adoptable(u: &User, c: &UserRow) -> Option<String> {
    (c.signed_up && !c.email_verified).then(|| {
        format!(
            "user {}: the email belongs to {}, an account that signed up by itself and whose email \
             is not verified; a tenant file does not take such an account over (give this user \
             another email or connection)",
            u.email, c.user_id
        )
    })
}

/// How many times the configuration is written again when Management API
/// changes keep coming first.
const TRIES: usize = 8;

/// Seals the file's client secrets; a secret unchanged since `old` keeps its
/// sealed form, so that re-applying the same file is a no-op.
fn seal_client_secrets(
    state: &Core,
    tenant_id: &str,
    config: &mut TenantFile,
    old: Option<&TenantFile>,
) {
    for client in &mut config.clients {
        let from_env = client
            .client_secret_env
            .as_deref()
            .and_then(|v| state.outside.secrets.get(v));
        let Some(secret) = client.client_secret.take().or(from_env) else {
            continue;
        };
        let ctx = client_secret_context(tenant_id, &client.client_id);
        let previous = old
            .and_then(|c| c.clients.iter().find(|o| o.client_id == client.client_id))
            .and_then(|o| o.client_secret.clone())
            .filter(|sealed| {
                state.sealer.open(&ctx, sealed).ok().as_deref() == Some(secret.as_bytes())
            });
        client.client_secret = Some(
            previous.unwrap_or_else(|| state.sealer.seal(&*state.rng, &ctx, secret.as_bytes())),
        );
    }
}

/// Keeps in `config` (a tenant file's) what the Management API made that the
/// file does not list, as it is in `old` and still recorded as the API's;
/// what the file lists is the file's from now on. How many were kept.
fn keep_api_owned(config: &mut TenantFile, old: &TenantFile) -> usize {
    let owned = &old.api_owned;
    let mut kept = 0;
    let mut keep = |n: bool| kept += usize::from(n);
    for client in &old.clients {
        let id = &client.client_id;
        if owned.clients.contains(id) && !config.clients.iter().any(|c| &c.client_id == id) {
            config.clients.push(client.clone());
            keep(config.api_owned.clients.insert(id.clone()));
        }
    }
    for connection in &old.connections {
        let name = &connection.name;
        if owned.connections.contains(name) && !config.connections.iter().any(|c| &c.name == name) {
            config.connections.push(connection.clone());
            keep(config.api_owned.connections.insert(name.clone()));
        }
    }
    for server in &old.resource_servers {
        let id = &server.identifier;
        if owned.resource_servers.contains(id)
            && !config.resource_servers.iter().any(|r| &r.identifier == id)
        {
            config.resource_servers.push(server.clone());
            keep(config.api_owned.resource_servers.insert(id.clone()));
        }
    }
    for grant in &old.client_grants {
        let key = GrantKey::of(grant);
        if owned.client_grants.contains(&key)
            && !config.client_grants.iter().any(|g| GrantKey::of(g) == key)
        {
            config.client_grants.push(grant.clone());
            keep(config.api_owned.client_grants.insert(key));
        }
    }
    for role in &old.roles {
        let name = &role.name;
        if owned.roles.contains(name) && !config.roles.iter().any(|r| &r.name == name) {
            config.roles.push(role.clone());
            keep(config.api_owned.roles.insert(name.clone()));
        }
    }
    kept
}

/// The MAC context of the password value the file applied to a user.
fn seed_context(tenant_id: &str, user_id: &str) -> String {
    format!("seeded-password:{tenant_id}:{user_id}")
}

/// The user's password hash and the record of the file's value after
/// applying `u`. A tenant file seeds passwords: its value is written when
/// the user is created and whenever the value in the file changes, and
/// otherwise the user's own password (changed, or removed, through My
/// Account) stays. A user from before this record existed keeps their
/// password and the file's value is recorded as applied.
async fn password_of(
    state: &Core,
    tenant_id: &str,
    user_id: &str,
    u: &User,
    current: Option<&UserRow>,
) -> Result<(Option<String>, Option<String>), ApplyError> {
    let ctx = seed_context(tenant_id, user_id);
    let seed = match (&u.password, &u.password_hash) {
        (Some(p), _) => state.sealer.mac(&ctx, format!("password\0{p}").as_bytes()),
        (None, Some(h)) => state.sealer.mac(&ctx, format!("hash\0{h}").as_bytes()),
        (None, None) => {
            return Ok(current.map_or((None, None), |c| {
                (c.password_hash.clone(), c.seeded_password.clone())
            }));
        }
    };
    if let Some(c) = current {
        let unchanged = c.seeded_password.as_deref() == Some(seed.as_str());
        let before_records = c.seeded_password.is_none() && c.password_hash.is_some();
        if unchanged || before_records {
            return Ok((c.password_hash.clone(), Some(seed)));
        }
    }
    let hash = match (&u.password, &u.password_hash) {
        (Some(p), _) => state
            .hash_password(p)
            .await
            .map_err(|e| ApplyError::Other(e.to_string()))?,
        (None, h) => h.clone().unwrap_or_default(),
    };
    Ok((Some(hash), Some(seed)))
}

/// Whether every upstream connection's client secret, and every push
/// provider's credential, is set in the environment: a connection or a push
/// provider without its secret would fail every user, so it is refused when
/// a file is applied and when the server starts, naming the setting and the
/// variable. (What the variable holds is read, and checked, when it is used.)
pub fn check_secrets(file: &TenantFile, secrets: &dyn Secrets) -> Result<(), String> {
    let push = &file.push_notifications;
    let push_variables = [
        push.apns.as_ref().map(|a| {
            (
                "push_notifications.apns.private_key_env",
                &a.private_key_env,
            )
        }),
        push.fcm.as_ref().map(|f| {
            (
                "push_notifications.fcm.service_account_env",
                &f.service_account_env,
            )
        }),
        push.webhook
            .as_ref()
            .map(|w| ("push_notifications.webhook.secret_env", &w.secret_env)),
    ];
    for (setting, variable) in push_variables.into_iter().flatten() {
        if secrets.get(variable).is_none_or(|v| v.is_empty()) {
            return Err(format!(
                "{setting}: the environment variable {variable} is not set"
            ));
        }
    }
    for (i, client) in file.clients.iter().enumerate() {
        let Some(variable) = &client.client_secret_env else {
            continue;
        };
        if client.client_secret.is_none()
            && secrets.get(variable).is_none_or(|v| v.chars().count() < 8)
        {
            return Err(format!(
                "clients[{i}] ({}): the environment variable {variable} (client_secret_env) is not \
                 set, or holds fewer than 8 characters",
                client.client_id
            ));
        }
    }
    for (i, connection) in file.connections.iter().enumerate() {
        let Some(variable) = connection
            .options
            .as_ref()
            .and_then(|o| o.client_secret_env.as_deref())
        else {
            continue;
        };
        if secrets.get(variable).is_none_or(|v| v.is_empty()) {
            return Err(format!(
                "connections[{i}] ({}): the environment variable {variable} \
                 (options.client_secret_env) is not set",
                connection.name
            ));
        }
    }
    Ok(())
}

/// [`check_secrets`] for every tenant in the store (at start-up).
pub async fn check_stored_secrets(state: &Core) -> Result<(), String> {
    let tenants = state
        .store
        .list_tenants()
        .await
        .map_err(|e| e.to_string())?;
    for row in tenants {
        let tenant = super::Tenant::from_row(&row).map_err(|e| e.to_string())?;
        check_secrets(&tenant.config, &*state.outside.secrets)
            .map_err(|e| format!("tenant {}: {e}", tenant.name))?;
    }
    Ok(())
}

pub async fn apply(state: &Core, file: &TenantFile) -> Result<ApplyReport, ApplyError> {
    check_secrets(file, &*state.outside.secrets).map_err(ApplyError::Other)?;
    let store = &state.store;
    let now = state.clock.now();
    let name = &file.tenant.name;
    let existing = store.tenant_by_name(name).await?;
    let tenant_id = existing
        .as_ref()
        .map(|t| t.id.clone())
        .unwrap_or_else(|| format!("t_{}", state.rng.alnum(16)));

    // Users are checked before anything is written.
    let mut plans: Vec<(Option<UserRow>, &User)> = Vec::new();
    for u in &file.users {
        let by_email = store
            .user_by_email(&tenant_id, &u.connection, &u.email)
            .await?;
        let current = match &u.user_id {
            Some(id) => {
                if let Some(other) = &by_email
                    && &other.user_id != id
                {
                    return Err(ApplyError::Conflict(
                        not_adoptable(u, other).unwrap_or_else(|| {
                            format!(
                                "user {id}: the email {} already belongs to {}",
                                u.email, other.user_id
                            )
                        }),
                    ));
                }
                store.user_by_id(&tenant_id, id).await?
            }
            None => by_email,
        };
        if let Some(message) = current.as_ref().and_then(|c| not_adoptable(u, c)) {
            return Err(ApplyError::Conflict(message));
        }
        plans.push((current, u));
    }

    // The configuration is written by compare-and-set on the tenant's
    // revision, so that a Management API change made meanwhile is merged
    // in (read again) rather than overwritten.
    let mut kept = 0;
    let mut current = existing.clone();
    for attempt in 0.. {
        if attempt == TRIES {
            return Err(ApplyError::Other(format!(
                "tenant {name}: its configuration kept changing while the file was applied; \
                 apply it again"
            )));
        }
        let old_config: Option<TenantFile> = current
            .as_ref()
            .and_then(|t| serde_json::from_str(&t.config).ok());
        let mut config = file.clone();
        config.users.clear();
        seal_client_secrets(state, &tenant_id, &mut config, old_config.as_ref());
        if let Some(old) = &old_config {
            kept = keep_api_owned(&mut config, old);
            if kept > 0 {
                check_config(&mut config, &*state.outside.delivery).map_err(|e| {
                    ApplyError::Conflict(format!(
                        "the file leaves what the Management API made invalid: {e}"
                    ))
                })?;
            }
        }
        let config_json =
            serde_json::to_string(&config).map_err(|e| ApplyError::Other(e.to_string()))?;
        let conflict = |e| match e {
            StoreError::Conflict(m) => ApplyError::Conflict(m),
            e => ApplyError::Store(e),
        };
        let written = match &current {
            None => {
                store
                    .upsert_tenant(name, &tenant_id, &config_json, &file.tenant.domains, now)
                    .await
                    .map_err(conflict)?;
                true
            }
            Some(row) => store
                .replace_tenant_config(
                    name,
                    row.revision,
                    &config_json,
                    Some(&file.tenant.domains),
                    now,
                )
                .await
                .map_err(conflict)?,
        };
        if written {
            break;
        }
        current = store.tenant_by_name(name).await?;
    }
    state
        .keys
        .ensure(&tenant_id)
        .await
        .map_err(|e| ApplyError::Other(e.to_string()))?;

    let mut report = ApplyReport {
        tenant_id: tenant_id.clone(),
        tenant_created: existing.is_none(),
        kept_from_api: kept,
        ..ApplyReport::default()
    };
    for (current, u) in plans {
        let user_id = current
            .as_ref()
            .map(|c| c.user_id.clone())
            .or_else(|| u.user_id.clone())
            .unwrap_or_else(|| format!("auth0|{}", state.rng.alnum(24).to_lowercase()));
        let (password_hash, seeded_password) =
            password_of(state, &tenant_id, &user_id, u, current.as_ref()).await?;
        let password_changed = current
            .as_ref()
            .is_none_or(|c| c.password_hash != password_hash);
        let row = UserRow {
            user_id,
            connection: u.connection.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            password_hash,
            profile: profile_of(u),
            blocked: u.blocked,
            last_password_reset: match &current {
                Some(c) if !password_changed => c.last_password_reset,
                _ => Some(now),
            },
            created_at: current.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
            signed_up: false,
            seeded_password,
        };
        let same = current.as_ref().is_some_and(|c| {
            let mut c = c.clone();
            c.updated_at = now;
            c == row
        });
        if same {
            report.users_unchanged += 1;
            end_if_blocked(state, &tenant_id, &row, now).await?;
            continue;
        }
        store
            .upsert_user(&tenant_id, &row)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(m) => ApplyError::Conflict(m),
                e => ApplyError::Store(e),
            })?;
        if current.is_some() {
            report.users_updated += 1;
            if password_changed {
                // A new password lifts any brute-force block.
                store
                    .clear_login_failures(&tenant_id, &row.user_id, None)
                    .await?;
            }
        } else {
            report.users_created += 1;
        }
        end_if_blocked(state, &tenant_id, &row, now).await?;
    }
    state.tenants.invalidate();
    Ok(report)
}

/// A blocked user keeps nothing: their grants (and with them their refresh
/// and access tokens) are revoked and their sessions ended, once the block
/// is written. Idempotent, so applying the file again repairs a run that
/// stopped in between.
async fn end_if_blocked(
    state: &Core,
    tenant_id: &str,
    user: &UserRow,
    now: crate::clock::Timestamp,
) -> Result<(), ApplyError> {
    if user.blocked {
        state
            .store
            .revoke_user(tenant_id, &user.user_id, "user blocked", now)
            .await?;
    }
    Ok(())
}

/// Applies `file` and returns the report; the convenience used by the CLI
/// and the server's start-up.
pub async fn apply_text(state: &Core, text: &str) -> Result<ApplyReport, String> {
    let file =
        super::parse_tenant_file(text, &*state.outside.delivery).map_err(|e| e.to_string())?;
    apply(state, &file).await.map_err(|e| e.to_string())
}
