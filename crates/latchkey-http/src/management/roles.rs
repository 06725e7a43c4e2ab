//! `/api/v2/roles`, `/api/v2/roles/{id}` and `/api/v2/roles/{id}/permissions`:
//! each handler reads its body or query, calls one service of
//! `services::management::roles` and shapes the answer as Auth0's role and
//! permission objects.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::MgmtError;
use super::gate::{CreateRoles, DeleteRoles, ReadRoles, Scoped, UpdateRoles};
use super::wire::{MgmtJson, Props, QueryParams, paged};
use crate::app::SharedState;
use latchkey_core::services::management::roles::{self, PermissionRecord, RoleRecord};
use latchkey_core::tenant::Permission;

/// A role in the shape of Auth0's role object.
fn role_object(r: &RoleRecord) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(r.id));
    o.insert("name".into(), json!(r.role.name));
    if let Some(d) = &r.role.description {
        o.insert("description".into(), json!(d));
    }
    Value::Object(o)
}

/// A role's permission in the shape of Auth0's.
fn permission_object(p: &PermissionRecord) -> Value {
    let mut o = Map::new();
    o.insert(
        "resource_server_identifier".into(),
        json!(p.permission.resource_server_identifier),
    );
    o.insert(
        "permission_name".into(),
        json!(p.permission.permission_name),
    );
    if let Some(name) = &p.resource_server_name {
        o.insert("resource_server_name".into(), json!(name));
    }
    if let Some(d) = &p.description {
        o.insert("description".into(), json!(d));
    }
    Value::Object(o)
}

/// `GET /roles`.
pub(crate) async fn list(
    caller: Scoped<ReadRoles>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&["page", "per_page", "include_totals", "name_filter"])?;
    let found = roles::list(
        &caller.caller(),
        query.get("name_filter").filter(|f| !f.is_empty()),
        query.paging()?,
    )?;
    paged(&query, "roles", found, role_object)
}

/// `GET /roles/{id}`.
pub(crate) async fn get(
    caller: Scoped<ReadRoles>,
    Path(id): Path<String>,
) -> Result<Json<Value>, MgmtError> {
    Ok(Json(role_object(&roles::get(&caller.caller(), &id)?)))
}

/// `name` and `description` of a body.
fn name_and_description(
    body: Map<String, Value>,
) -> Result<(Option<String>, Option<String>), MgmtError> {
    let mut p = Props::new(body);
    let fields = (p.string("name")?, p.string("description")?);
    p.finish()?;
    Ok(fields)
}

/// `POST /roles`.
pub(crate) async fn create(
    State(state): State<SharedState>,
    caller: Scoped<CreateRoles>,
    MgmtJson(body): MgmtJson,
) -> Result<Response, MgmtError> {
    let (name, description) = name_and_description(body)?;
    let made = roles::create(&state, &caller.caller(), name, description).await?;
    Ok((StatusCode::OK, Json(role_object(&made))).into_response())
}

/// `PATCH /roles/{id}`.
pub(crate) async fn update(
    State(state): State<SharedState>,
    caller: Scoped<UpdateRoles>,
    Path(id): Path<String>,
    MgmtJson(body): MgmtJson,
) -> Result<Json<Value>, MgmtError> {
    let (name, description) = name_and_description(body)?;
    let updated = roles::update(&state, &caller.caller(), &id, name, description).await?;
    Ok(Json(role_object(&updated)))
}

/// `DELETE /roles/{id}`.
pub(crate) async fn delete(
    State(state): State<SharedState>,
    caller: Scoped<DeleteRoles>,
    Path(id): Path<String>,
) -> Result<StatusCode, MgmtError> {
    roles::delete(&state, &caller.caller(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /roles/{id}/permissions`.
pub(crate) async fn permissions(
    caller: Scoped<ReadRoles>,
    Path(id): Path<String>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&["page", "per_page", "include_totals"])?;
    let found = roles::permissions(&caller.caller(), &id, query.paging()?)?;
    paged(&query, "permissions", found, permission_object)
}

/// `{permissions: [{resource_server_identifier, permission_name}]}`.
fn permissions_body(body: Map<String, Value>) -> Result<Vec<Permission>, MgmtError> {
    let mut p = Props::new(body);
    let items = p
        .objects("permissions")?
        .ok_or_else(|| p.missing("permissions"))?;
    p.finish()?;
    items
        .into_iter()
        .map(|mut item| {
            let resource_server_identifier = item
                .string("resource_server_identifier")?
                .ok_or_else(|| item.missing("resource_server_identifier"))?;
            let permission_name = item
                .string("permission_name")?
                .ok_or_else(|| item.missing("permission_name"))?;
            item.finish()?;
            Ok(Permission {
                resource_server_identifier,
                permission_name,
            })
        })
        .collect()
}

/// `POST /roles/{id}/permissions`: 201, no body (as Auth0).
pub(crate) async fn add_permissions(
    State(state): State<SharedState>,
    caller: Scoped<UpdateRoles>,
    Path(id): Path<String>,
    MgmtJson(body): MgmtJson,
) -> Result<StatusCode, MgmtError> {
    let given = permissions_body(body)?;
    roles::change_permissions(&state, &caller.caller(), &id, given, true).await?;
    Ok(StatusCode::CREATED)
}

/// `DELETE /roles/{id}/permissions`: 204.
pub(crate) async fn remove_permissions(
    State(state): State<SharedState>,
    caller: Scoped<UpdateRoles>,
    Path(id): Path<String>,
    MgmtJson(body): MgmtJson,
) -> Result<StatusCode, MgmtError> {
    let given = permissions_body(body)?;
    roles::change_permissions(&state, &caller.caller(), &id, given, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
