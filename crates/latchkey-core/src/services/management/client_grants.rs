//! The Management API's client grants: which client may have tokens for which
//! API, with which scopes. Auth0 names a grant by an ID (`cgr_…`); latchkey
//! derives it from the grant's key ([`GrantKey::id`]: client, audience,
//! subject type), so a grant has the same ID whether a tenant file or the
//! API made it. The rules of a tenant file hold (no user grant to the
//! Management API, no client grant to the My Account API, only scopes the
//! API defines): a grant that breaks one is refused by name.

use super::config::{self, Listed, Logged, Paged};
use super::{Caller, ManagementError};
use crate::context::Core;
use crate::tenant::{ClientGrant, GrantKey, SubjectType, TenantFile};

/// A grant with its ID.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRecord {
    pub id: String,
    pub grant: ClientGrant,
}

impl GrantRecord {
    fn of(grant: &ClientGrant) -> Self {
        Self {
            id: GrantKey::of(grant).id(),
            grant: grant.clone(),
        }
    }
}

/// `GET /client-grants`' filters.
#[derive(Debug, Clone, Default)]
pub struct GrantFilter {
    pub audience: Option<String>,
    pub client_id: Option<String>,
    pub subject_type: Option<String>,
}

/// `POST /client-grants`, its properties of the right JSON types.
#[derive(Debug, Clone, Default)]
pub struct NewGrant {
    pub client_id: Option<String>,
    pub audience: Option<String>,
    pub scope: Option<Vec<String>>,
    pub subject_type: Option<String>,
    pub allow_all_scopes: Option<bool>,
}

/// `PATCH /client-grants/{id}`.
#[derive(Debug, Clone, Default)]
pub struct GrantPatch {
    pub scope: Option<Vec<String>>,
    pub allow_all_scopes: Option<bool>,
}

fn not_found() -> ManagementError {
    ManagementError::NotFound {
        code: "inexistent_client_grant",
        message: "The client grant does not exist".into(),
    }
}

fn subject(property: &str, value: &str) -> Result<SubjectType, ManagementError> {
    SubjectType::try_from(value.to_string()).map_err(|e| {
        ManagementError::InvalidBody(format!(
            "Payload validation error: '{e}' on property {property}."
        ))
    })
}

/// `GET /client-grants`.
pub fn list(
    caller: &Caller<'_>,
    filter: &GrantFilter,
    paged: &Paged,
) -> Result<Listed<GrantRecord>, ManagementError> {
    let subject_type = match filter.subject_type.as_deref() {
        None | Some("") => None,
        Some(s) => Some(SubjectType::try_from(s.to_string()).map_err(|e| {
            ManagementError::InvalidQuery(format!(
                "Query validation error: '{e}' on property subject_type."
            ))
        })?),
    };
    let all: Vec<GrantRecord> = caller
        .tenant
        .config
        .client_grants
        .iter()
        .filter(|g| filter.audience.as_ref().is_none_or(|a| &g.audience == a))
        .filter(|g| filter.client_id.as_ref().is_none_or(|c| &g.client_id == c))
        .filter(|g| subject_type.is_none_or(|s| g.subject_type == s))
        .map(GrantRecord::of)
        .collect();
    config::listed(all, |g| g.id.clone(), paged)
}

/// `GET /client-grants/{id}`.
pub fn get(caller: &Caller<'_>, id: &str) -> Result<GrantRecord, ManagementError> {
    caller
        .tenant
        .config
        .client_grants
        .iter()
        .map(GrantRecord::of)
        .find(|g| g.id == id)
        .ok_or_else(not_found)
}

fn logged(before: Option<&ClientGrant>, after: Option<&ClientGrant>, id: &str) -> Logged {
    let (b, a) = (before.map(config::as_json), after.map(config::as_json));
    Logged::new(
        "client_grant",
        id,
        config::changes(b.as_ref(), a.as_ref(), &[]),
    )
}

/// `POST /client-grants`: a grant of an API of the tenant to one of its
/// clients; 409 if that client already has one for that API and subject type.
pub async fn create(
    state: &Core,
    caller: &Caller<'_>,
    new: NewGrant,
) -> Result<GrantRecord, ManagementError> {
    let missing = |property: &str| {
        ManagementError::InvalidBody(format!(
            "Payload validation error: 'Missing required property: {property}'."
        ))
    };
    let client_id = new.client_id.clone().ok_or_else(|| missing("client_id"))?;
    let audience = new.audience.clone().ok_or_else(|| missing("audience"))?;
    let subject_type = match new.subject_type.as_deref() {
        Some(s) => subject("subject_type", s)?,
        None => SubjectType::Client,
    };
    let grant = ClientGrant {
        client_id,
        audience,
        subject_type,
        scope: new.scope.clone().unwrap_or_default(),
        allow_all_scopes: new.allow_all_scopes.unwrap_or(false),
    };
    let key = GrantKey::of(&grant);
    let id = key.id();
    config::change(
        state,
        caller,
        "Create client grant",
        "client_grants",
        |file| {
            if !file.clients.iter().any(|c| c.client_id == grant.client_id) {
                return Err(super::clients::not_found());
            }
            if file.client_grants.iter().any(|g| GrantKey::of(g) == key) {
                return Err(ManagementError::Conflict {
                    code: "already_exists",
                    message: format!(
                        "A {} grant of this audience to this client already exists ({id})",
                        grant.subject_type
                    ),
                });
            }
            file.client_grants.push(grant.clone());
            file.api_owned.client_grants.insert(key.clone());
            Ok((GrantRecord::of(&grant), logged(None, Some(&grant), &id)))
        },
    )
    .await
}

/// The grant whose ID is `id` in `file`.
fn position(file: &TenantFile, id: &str) -> Result<usize, ManagementError> {
    file.client_grants
        .iter()
        .position(|g| GrantKey::of(g).id() == id)
        .ok_or_else(not_found)
}

/// `PATCH /client-grants/{id}`: its scopes.
pub async fn update(
    state: &Core,
    caller: &Caller<'_>,
    id: &str,
    patch: GrantPatch,
) -> Result<GrantRecord, ManagementError> {
    config::change(
        state,
        caller,
        "Update client grant",
        "client_grants",
        |file| {
            let i = position(file, id)?;
            let grant = &mut file.client_grants[i];
            let before = grant.clone();
            if let Some(scope) = &patch.scope {
                grant.scope = scope.clone();
            }
            if let Some(all) = patch.allow_all_scopes {
                grant.allow_all_scopes = all;
            }
            let after = grant.clone();
            file.api_owned.client_grants.insert(GrantKey::of(&after));
            Ok((
                GrantRecord::of(&after),
                logged(Some(&before), Some(&after), id),
            ))
        },
    )
    .await
}

/// `DELETE /client-grants/{id}`. Tokens the grant gave live out their time
/// (as Auth0's); new ones are refused.
pub async fn delete(state: &Core, caller: &Caller<'_>, id: &str) -> Result<(), ManagementError> {
    config::change(
        state,
        caller,
        "Delete client grant",
        "client_grants",
        |file| {
            let i = position(file, id)?;
            let before = file.client_grants.remove(i);
            file.api_owned.client_grants.remove(&GrantKey::of(&before));
            Ok(((), logged(Some(&before), None, id)))
        },
    )
    .await
}
