//! `/api/v2/resource-servers` and `/api/v2/resource-servers/{id}` (by ID or
//! identifier): each handler reads its body or query, calls one service of
//! `services::management::resource_servers` and shapes the answer as
//! Auth0's resource server object.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::MgmtError;
use super::gate::{
    CreateResourceServers, DeleteResourceServers, ReadResourceServers, Scoped,
    UpdateResourceServers,
};
use super::wire::{MgmtJson, Props, QueryParams, paged};
use crate::app::SharedState;
use latchkey_core::services::management::resource_servers::{self, ApiFields, ApiRecord};

/// An API in the shape of Auth0's resource server object.
fn api_object(a: &ApiRecord) -> Value {
    let s = &a.server;
    let scopes: Vec<Value> = s
        .scopes
        .iter()
        .map(|value| match s.scope_descriptions.get(value) {
            Some(d) => json!({"value": value, "description": d}),
            None => json!({"value": value}),
        })
        .collect();
    let mut o = Map::new();
    o.insert("id".into(), json!(a.id));
    o.insert("name".into(), json!(s.name));
    o.insert("identifier".into(), json!(s.identifier));
    o.insert("is_system".into(), json!(a.system));
    o.insert("scopes".into(), Value::Array(scopes));
    o.insert("signing_alg".into(), json!("RS256"));
    o.insert("token_lifetime".into(), json!(s.token_lifetime));
    o.insert("allow_offline_access".into(), json!(s.allow_offline_access));
    o.insert("enforce_policies".into(), json!(s.enforce_policies));
    o.insert("token_dialect".into(), json!("access_token"));
    if let Some(client) = &a.client_id {
        o.insert("client_id".into(), json!(client));
    }
    Value::Object(o)
}

/// The properties of an API a body may set (`creating`: `identifier` too).
fn fields(body: Map<String, Value>, creating: bool) -> Result<ApiFields, MgmtError> {
    let mut p = Props::new(body);
    let scopes = match p.objects("scopes")? {
        None => None,
        Some(items) => Some(
            items
                .into_iter()
                .map(|mut s| {
                    let value = s.string("value")?.ok_or_else(|| s.missing("value"))?;
                    let description = s.string("description")?;
                    s.finish()?;
                    Ok((value, description))
                })
                .collect::<Result<Vec<_>, MgmtError>>()?,
        ),
    };
    let f = ApiFields {
        name: p.string("name")?,
        identifier: if creating {
            p.string("identifier")?
        } else {
            None
        },
        scopes,
        token_lifetime: p.integer("token_lifetime")?,
        allow_offline_access: p.boolean("allow_offline_access")?,
        enforce_policies: p.boolean("enforce_policies")?,
        signing_alg: p.string("signing_alg")?,
        token_dialect: p.string("token_dialect")?,
    };
    p.finish()?;
    Ok(f)
}

/// `GET /resource-servers`.
pub(crate) async fn list(
    caller: Scoped<ReadResourceServers>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&[
        "identifiers",
        "page",
        "per_page",
        "include_totals",
        "include_fields",
    ])?;
    query.boolean("include_fields")?;
    let identifiers = query.all("identifiers");
    let found = resource_servers::list(&caller.caller(), &identifiers, query.paging()?)?;
    paged(&query, "resource_servers", found, api_object)
}

/// `GET /resource-servers/{id}`.
pub(crate) async fn get(
    caller: Scoped<ReadResourceServers>,
    Path(id): Path<String>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&["include_fields"])?;
    query.boolean("include_fields")?;
    Ok(Json(api_object(&resource_servers::get(
        &caller.caller(),
        &id,
    )?)))
}

/// `POST /resource-servers`.
pub(crate) async fn create(
    State(state): State<SharedState>,
    caller: Scoped<CreateResourceServers>,
    MgmtJson(body): MgmtJson,
) -> Result<Response, MgmtError> {
    let f = fields(body, true)?;
    let made = resource_servers::create(&state, &caller.caller(), f).await?;
    Ok((StatusCode::CREATED, Json(api_object(&made))).into_response())
}

/// `PATCH /resource-servers/{id}`.
pub(crate) async fn update(
    State(state): State<SharedState>,
    caller: Scoped<UpdateResourceServers>,
    Path(id): Path<String>,
    MgmtJson(body): MgmtJson,
) -> Result<Json<Value>, MgmtError> {
    let f = fields(body, false)?;
    let updated = resource_servers::update(&state, &caller.caller(), &id, f).await?;
    Ok(Json(api_object(&updated)))
}

/// `DELETE /resource-servers/{id}`.
pub(crate) async fn delete(
    State(state): State<SharedState>,
    caller: Scoped<DeleteResourceServers>,
    Path(id): Path<String>,
) -> Result<StatusCode, MgmtError> {
    resource_servers::delete(&state, &caller.caller(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
