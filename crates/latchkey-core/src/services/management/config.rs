//! What the Management API's configuration endpoints (clients, client
//! grants, resource servers, connections, roles) share: every change is a
//! [`crate::tenant::edit::edit`] of the tenant's configuration, checked by
//! the rules of a tenant file, its refusals mapped to Auth0's errors and
//! logged (`sapi` with what changed, or `fapi`); lists are paged as Auth0
//! pages them.

use serde_json::{Map, Value, json};

use super::{Caller, FAILED_API_OPERATION, ManagementError, SUCCESS_API_OPERATION};
use crate::context::Core;
use crate::services::audit;
use crate::tenant::TenantFile;
use crate::tenant::edit::{EditError, edit};
use crate::tenant::file::TenantFileError;

/// The most items a page holds, and how many it holds by default.
pub const MAX_PER_PAGE: i64 = 100;
const DEFAULT_PER_PAGE: i64 = 50;

/// `page`, `per_page` and `include_totals`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Paging {
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The index of the page's first item among all.
    pub start: i64,
    pub limit: i64,
    /// How many there are in all.
    pub total: i64,
}

fn bad_query(message: String) -> ManagementError {
    ManagementError::InvalidQuery(message)
}

/// The page `paging` asks of `all`.
pub fn page<T>(all: Vec<T>, paging: Paging) -> Result<Page<T>, ManagementError> {
    let per_page = paging.per_page.unwrap_or(DEFAULT_PER_PAGE);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(bad_query(format!(
            "Query validation error: 'per_page must be between 1 and {MAX_PER_PAGE}' on property per_page (Number of results per page)."
        )));
    }
    let page = paging.page.unwrap_or(0);
    if page < 0 {
        return Err(bad_query(
            "Query validation error: 'page must be 0 or more' on property page (Page index of the results to return. First page is 0).".into(),
        ));
    }
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let start = page.saturating_mul(per_page);
    let items = all
        .into_iter()
        .skip(usize::try_from(start).unwrap_or(usize::MAX))
        .take(usize::try_from(per_page).unwrap_or(0))
        .collect();
    Ok(Page {
        items,
        start,
        limit: per_page,
        total,
    })
}

/// Checkpoint paging (`from`, `take`), as Auth0 pages client grants and
/// connections: the items after the one whose ID is `from` (none: from the
/// first), at most `take`; and the ID to ask `from` next, if there are more.
pub fn checkpoint<T>(
    all: Vec<T>,
    id: impl Fn(&T) -> String,
    from: Option<&str>,
    take: Option<i64>,
) -> Result<(Vec<T>, Option<String>), ManagementError> {
    let take = take.unwrap_or(DEFAULT_PER_PAGE);
    if !(1..=MAX_PER_PAGE).contains(&take) {
        return Err(bad_query(format!(
            "Query validation error: 'take must be between 1 and {MAX_PER_PAGE}' on property take (Number of results per page)."
        )));
    }
    let skip = match from.filter(|f| !f.is_empty()) {
        None => 0,
        Some(from) => match all.iter().position(|item| id(item) == from) {
            Some(i) => i + 1,
            None => {
                return Err(bad_query(
                    "Query validation error: 'from is not a checkpoint of this list' on property from."
                        .into(),
                ));
            }
        },
    };
    let take = usize::try_from(take).unwrap_or(0);
    let rest = all.len().saturating_sub(skip);
    let items: Vec<T> = all.into_iter().skip(skip).take(take).collect();
    let next = (rest > take).then(|| items.last().map(&id)).flatten();
    Ok((items, next))
}

/// How a list is paged: Auth0's pages (`page`, `per_page`), or its
/// checkpoints (`from`, `take`).
#[derive(Debug, Clone)]
pub enum Paged {
    Pages(Paging),
    Checkpoint {
        from: Option<String>,
        take: Option<i64>,
    },
}

/// A page of a list, paged either way.
#[derive(Debug, Clone, PartialEq)]
pub enum Listed<T> {
    Page(Page<T>),
    /// The items, and the checkpoint to ask `from` next if there are more.
    Checkpoint {
        items: Vec<T>,
        next: Option<String>,
    },
}

/// The part of `all` that `how` asks for; `id` names an item (checkpoints).
pub fn listed<T>(
    all: Vec<T>,
    id: impl Fn(&T) -> String,
    how: &Paged,
) -> Result<Listed<T>, ManagementError> {
    match how {
        Paged::Pages(paging) => Ok(Listed::Page(page(all, *paging)?)),
        Paged::Checkpoint { from, take } => {
            let (items, next) = checkpoint(all, id, from.as_deref(), *take)?;
            Ok(Listed::Checkpoint { items, next })
        }
    }
}

/// What a change did, for the tenant log: the entity's kind and ID, and the
/// properties it changed with their new values (`None`: it was deleted).
#[derive(Debug, Clone)]
pub struct Logged {
    pub kind: &'static str,
    pub id: String,
    pub changes: Value,
}

impl Logged {
    pub fn new(kind: &'static str, id: impl Into<String>, changes: Value) -> Self {
        Self {
            kind,
            id: id.into(),
            changes,
        }
    }
}

/// The top-level properties that differ between two JSON objects, with
/// their values in `after` (`null` for a property `after` lacks). Values
/// of `secret` properties are never written: they read `"(changed)"`.
pub fn changes(before: Option<&Value>, after: Option<&Value>, secrets: &[&str]) -> Value {
    let empty = Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut out = Map::new();
    for key in b.keys().chain(a.keys()) {
        if out.contains_key(key) || b.get(key) == a.get(key) {
            continue;
        }
        let value = match a.get(key) {
            _ if secrets.contains(&key.as_str()) => json!("(changed)"),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

/// An entity serialised as the tenant's stored configuration has it.
pub fn as_json<T: serde::Serialize>(entity: &T) -> Value {
    serde_json::to_value(entity).unwrap_or(Value::Null)
}

/// Changes the caller's tenant's configuration with `change` (which may run
/// more than once, on the configuration as it then is), and logs it as
/// `description`: `sapi` with what [`Logged`] says, or `fapi` with the
/// refusal. `section` names the part of the configuration the change is
/// about (`clients`), so that a rule it breaks is named by the property.
pub async fn change<T>(
    state: &Core,
    caller: &Caller<'_>,
    description: &str,
    section: &str,
    mut change: impl FnMut(&mut TenantFile) -> Result<(T, Logged), ManagementError>,
) -> Result<T, ManagementError> {
    let outcome = edit(state, &caller.tenant.name, |file| change(file))
        .await
        .map_err(|e| match e {
            EditError::Refused(e) => e,
            EditError::Invalid(e) => invalid_config(&e, section),
            EditError::Busy => ManagementError::ConfigBusy,
            EditError::NoTenant => {
                ManagementError::Internal(format!("tenant {} is gone", caller.tenant.name))
            }
            EditError::Store(e) => ManagementError::Store(e),
        });
    let (code, details) = match &outcome {
        Ok((_, logged)) => (
            SUCCESS_API_OPERATION,
            json!({
                "description": description,
                "type": logged.kind,
                "id": logged.id,
                "changes": logged.changes,
            }),
        ),
        Err(e) if e.is_callers() => (
            FAILED_API_OPERATION,
            json!({ "description": description, "error": e.to_string() }),
        ),
        Err(_) => return outcome.map(|(made, _)| made),
    };
    audit::record_with(state, &caller.actor(), None, code, details).await;
    outcome.map(|(made, _)| made)
}

/// A rule of the tenant's configuration that a change breaks, as a 400:
/// named by the property of the entity changed when it is about it (the
/// entity at `section[i]`), else by its path in the configuration.
pub(super) fn invalid_config(e: &TenantFileError, section: &str) -> ManagementError {
    let own = e
        .path
        .strip_prefix(section)
        .and_then(|rest| rest.strip_prefix('['))
        .and_then(|rest| rest.split_once("]."))
        .filter(|(index, _)| index.bytes().all(|b| b.is_ascii_digit()))
        .map(|(_, property)| property);
    ManagementError::InvalidBody(match own {
        Some(property) => format!(
            "Payload validation error: '{}' on property {property}.",
            e.message
        ),
        None => format!(
            "The change would break a rule of the tenant's configuration: {}: {}",
            e.path, e.message
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_checkpoints() {
        let all: Vec<i64> = (0..7).collect();
        let p = page(
            all.clone(),
            Paging {
                page: Some(1),
                per_page: Some(3),
            },
        )
        .unwrap();
        assert_eq!(
            (p.items, p.start, p.limit, p.total),
            (vec![3, 4, 5], 3, 3, 7)
        );
        let (items, next) = checkpoint(all.clone(), |i| i.to_string(), None, Some(3)).unwrap();
        assert_eq!((items, next.as_deref()), (vec![0, 1, 2], Some("2")));
        let (items, next) = checkpoint(all.clone(), |i| i.to_string(), Some("5"), Some(3)).unwrap();
        assert_eq!((items, next), (vec![6], None));
        assert!(checkpoint(all.clone(), |i| i.to_string(), Some("x"), None).is_err());
        assert!(
            page(
                all,
                Paging {
                    page: None,
                    per_page: Some(101)
                }
            )
            .is_err()
        );
    }

    #[test]
    fn changes_name_what_differs_and_hide_secrets() {
        let before = json!({"a": 1, "b": 2, "secret": "x", "gone": true});
        let after = json!({"a": 1, "b": 3, "secret": "y", "new": [1]});
        assert_eq!(
            changes(Some(&before), Some(&after), &["secret"]),
            json!({"b": 3, "secret": "(changed)", "gone": null, "new": [1]})
        );
    }

    #[test]
    fn invalid_config_names_the_property_of_the_entity() {
        let e = TenantFileError {
            line: None,
            path: "clients[3].callbacks[0]".into(),
            message: "\"x\" is not a valid URL".into(),
        };
        let ManagementError::InvalidBody(m) = invalid_config(&e, "clients") else {
            panic!()
        };
        assert!(m.ends_with("on property callbacks[0]."), "{m}");
        let ManagementError::InvalidBody(m) = invalid_config(&e, "roles") else {
            panic!()
        };
        assert!(m.contains("clients[3].callbacks[0]"), "{m}");
    }
}
