//! The Management API's roles and their permissions. latchkey names a role
//! by its name (a tenant file's `roles[].name`, a user's `roles[]`); the
//! API's ID (`rol_…`) is derived from it. Users hold roles by name, so a
//! role renamed or deleted is renamed in, or taken from, the users who held
//! it, before the configuration changes: a role made again later under an
//! old name gives nobody back what the deleted one gave.

use serde_json::Value;

use super::config::{self, Logged, Page, Paging};
use super::{Caller, ManagementError};
use crate::context::Core;
use crate::store::{UserChange, UserOrder, UserSearch, UserWrite};
use crate::tenant::{Permission, ResourceServer, Role, TenantFile, short_digest};

/// A role with its ID.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleRecord {
    pub id: String,
    pub role: Role,
}

/// A permission of a role, with what its API says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionRecord {
    pub permission: Permission,
    pub resource_server_name: Option<String>,
    pub description: Option<String>,
}

/// The ID of the role `name`: `rol_` and the first 16 hexadecimal digits of
/// the SHA-256 of `role\n{name}\n`.
pub fn role_id(name: &str) -> String {
    format!("rol_{}", short_digest(&["role", name], 8))
}

impl RoleRecord {
    fn of(role: &Role) -> Self {
        Self {
            id: role_id(&role.name),
            role: role.clone(),
        }
    }
}

fn not_found() -> ManagementError {
    ManagementError::NotFound {
        code: "inexistent_role",
        message: "The role does not exist".into(),
    }
}

fn property_error(property: &str, message: impl std::fmt::Display) -> ManagementError {
    ManagementError::InvalidBody(format!(
        "Payload validation error: '{message}' on property {property}."
    ))
}

/// Users scanned per read when roles are renamed in, or taken from, them.
const SCAN_PAGE: i64 = 100;
/// How often a user's change is tried again when the user changed under it.
const TRIES: usize = 5;
const MAX_NAME_CHARS: usize = 255;
const MAX_DESCRIPTION_CHARS: usize = 140;

/// `GET /roles`: those whose name contains `name_filter` (without regard
/// to case), a page of them.
pub fn list(
    caller: &Caller<'_>,
    name_filter: Option<&str>,
    paging: Paging,
) -> Result<Page<RoleRecord>, ManagementError> {
    let wanted = name_filter.map(str::to_lowercase);
    let found = caller
        .tenant
        .config
        .roles
        .iter()
        .filter(|r| {
            wanted
                .as_deref()
                .is_none_or(|w| r.name.to_lowercase().contains(w))
        })
        .map(RoleRecord::of)
        .collect();
    config::page(found, paging)
}

fn find<'f>(file: &'f TenantFile, id: &str) -> Result<&'f Role, ManagementError> {
    file.roles
        .iter()
        .find(|r| role_id(&r.name) == id)
        .ok_or_else(not_found)
}

/// `GET /roles/{id}`.
pub fn get(caller: &Caller<'_>, id: &str) -> Result<RoleRecord, ManagementError> {
    find(&caller.tenant.config, id).map(RoleRecord::of)
}

fn check_name(name: &str) -> Result<(), ManagementError> {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > MAX_NAME_CHARS {
        return Err(property_error(
            "name",
            format!("The name must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

fn check_description(d: &str) -> Result<(), ManagementError> {
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(property_error(
            "description",
            format!("The description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

fn logged(before: Option<&Role>, after: Option<&Role>, id: &str) -> Logged {
    let (b, a) = (before.map(config::as_json), after.map(config::as_json));
    Logged::new("role", id, config::changes(b.as_ref(), a.as_ref(), &[]))
}

fn conflict() -> ManagementError {
    ManagementError::Conflict {
        code: "already_exists",
        message: "A role with this name already exists".into(),
    }
}

/// `POST /roles`.
pub async fn create(
    state: &Core,
    caller: &Caller<'_>,
    name: Option<String>,
    description: Option<String>,
) -> Result<RoleRecord, ManagementError> {
    let name = name.ok_or_else(|| {
        ManagementError::InvalidBody(
            "Payload validation error: 'Missing required property: name'.".into(),
        )
    })?;
    check_name(&name)?;
    if let Some(d) = &description {
        check_description(d)?;
    }
    let role = Role {
        name: name.clone(),
        description,
        permissions: Vec::new(),
    };
    let id = role_id(&name);
    config::change(state, caller, "Create a role", "roles", |file| {
        if file.roles.iter().any(|r| r.name == name) {
            return Err(conflict());
        }
        file.roles.push(role.clone());
        file.api_owned.roles.insert(name.clone());
        Ok((RoleRecord::of(&role), logged(None, Some(&role), &id)))
    })
    .await
}

/// Renames the role `from` to `to` in every user who holds it (`to: None`:
/// takes it from them). Each user is written over the row as read, again
/// when it changed meanwhile.
async fn retag_users(
    state: &Core,
    tenant_id: &str,
    from: &str,
    to: Option<&str>,
) -> Result<(), ManagementError> {
    let holds = |profile: &Value| {
        profile
            .get("roles")
            .and_then(Value::as_array)
            .is_some_and(|roles| roles.iter().any(|r| r.as_str() == Some(from)))
    };
    let mut offset = 0;
    loop {
        let search = UserSearch {
            filter: None,
            order: UserOrder::UserId,
            descending: false,
            offset,
            limit: SCAN_PAGE,
            count: false,
        };
        let (users, _) = state.store.search_users(tenant_id, &search).await?;
        let read = i64::try_from(users.len()).unwrap_or(SCAN_PAGE);
        for mut user in users.into_iter().filter(|u| holds(&u.profile)) {
            for _ in 0..TRIES {
                let mut next = user.clone();
                if let Some(roles) = next.profile.get_mut("roles").and_then(Value::as_array_mut) {
                    let mut names: Vec<Value> = Vec::new();
                    for r in roles.iter() {
                        let name = match (r.as_str(), to) {
                            (Some(n), Some(to)) if n == from => Value::from(to),
                            (Some(n), None) if n == from => continue,
                            _ => r.clone(),
                        };
                        if !names.contains(&name) {
                            names.push(name);
                        }
                    }
                    *roles = names;
                }
                next.updated_at = state.clock.now();
                let change = UserChange::default();
                match state
                    .store
                    .update_user(tenant_id, &user, &next, &change)
                    .await?
                {
                    UserWrite::Done | UserWrite::Missing => break,
                    UserWrite::Changed => {
                        match state.store.user_by_id(tenant_id, &user.user_id).await? {
                            Some(now) if holds(&now.profile) => user = now,
                            _ => break,
                        }
                    }
                }
            }
        }
        if read < SCAN_PAGE {
            return Ok(());
        }
        offset += SCAN_PAGE;
    }
}

/// `PATCH /roles/{id}`: its name and description. A new name is a new ID
/// (derived from it), and the role's holders hold it under its new name.
pub async fn update(
    state: &Core,
    caller: &Caller<'_>,
    id: &str,
    name: Option<String>,
    description: Option<String>,
) -> Result<RoleRecord, ManagementError> {
    let current = find(&caller.tenant.config, id)?.name.clone();
    if let Some(n) = &name {
        check_name(n)?;
    }
    if let Some(d) = &description {
        check_description(d)?;
    }
    let renamed = name.as_ref().filter(|n| **n != current);
    if let Some(new) = renamed {
        if caller.tenant.config.roles.iter().any(|r| &r.name == new) {
            return Err(conflict());
        }
        retag_users(state, &caller.tenant.id, &current, Some(new)).await?;
    }
    config::change(state, caller, "Update a role", "roles", |file| {
        let i = file
            .roles
            .iter()
            .position(|r| r.name == current)
            .ok_or_else(not_found)?;
        if let Some(new) = renamed
            && file.roles.iter().any(|r| &r.name == new)
        {
            return Err(conflict());
        }
        let before = file.roles[i].clone();
        let role = &mut file.roles[i];
        if let Some(n) = &name {
            role.name = n.clone();
        }
        if let Some(d) = &description {
            role.description = Some(d.clone());
        }
        let after = role.clone();
        file.api_owned.roles.remove(&current);
        file.api_owned.roles.insert(after.name.clone());
        Ok((
            RoleRecord::of(&after),
            logged(Some(&before), Some(&after), id),
        ))
    })
    .await
}

/// `DELETE /roles/{id}`: taken from its holders first, then deleted.
pub async fn delete(state: &Core, caller: &Caller<'_>, id: &str) -> Result<(), ManagementError> {
    let name = find(&caller.tenant.config, id)?.name.clone();
    retag_users(state, &caller.tenant.id, &name, None).await?;
    config::change(state, caller, "Delete a role", "roles", |file| {
        let i = file
            .roles
            .iter()
            .position(|r| r.name == name)
            .ok_or_else(not_found)?;
        let before = file.roles.remove(i);
        file.api_owned.roles.remove(&name);
        Ok(((), logged(Some(&before), None, id)))
    })
    .await
}

/// `GET /roles/{id}/permissions`.
pub fn permissions(
    caller: &Caller<'_>,
    id: &str,
    paging: Paging,
) -> Result<Page<PermissionRecord>, ManagementError> {
    let file = &caller.tenant.config;
    let role = find(file, id)?;
    let api = |identifier: &str| -> Option<&ResourceServer> {
        file.resource_servers
            .iter()
            .find(|s| s.identifier == identifier)
    };
    let all = role
        .permissions
        .iter()
        .map(|p| {
            let server = api(&p.resource_server_identifier);
            PermissionRecord {
                permission: p.clone(),
                resource_server_name: server.map(|s| s.name.clone()),
                description: server
                    .and_then(|s| s.scope_descriptions.get(&p.permission_name).cloned()),
            }
        })
        .collect();
    config::page(all, paging)
}

/// `POST /roles/{id}/permissions` (`adding`) and `DELETE` (not): the
/// permissions given, added (those it has already, kept once) or taken away
/// (those it lacks, ignored).
pub async fn change_permissions(
    state: &Core,
    caller: &Caller<'_>,
    id: &str,
    given: Vec<Permission>,
    adding: bool,
) -> Result<(), ManagementError> {
    if given.is_empty() {
        return Err(property_error(
            "permissions",
            "Array is too short (0), minimum 1",
        ));
    }
    let description = if adding {
        "Add permissions to a role"
    } else {
        "Remove permissions from a role"
    };
    config::change(state, caller, description, "roles", |file| {
        let i = file
            .roles
            .iter()
            .position(|r| role_id(&r.name) == id)
            .ok_or_else(not_found)?;
        let before = file.roles[i].clone();
        let role = &mut file.roles[i];
        for p in &given {
            if adding && !role.permissions.contains(p) {
                role.permissions.push(p.clone());
            }
            if !adding {
                role.permissions.retain(|held| held != p);
            }
        }
        let after = role.clone();
        file.api_owned.roles.insert(after.name.clone());
        Ok(((), logged(Some(&before), Some(&after), id)))
    })
    .await
}
