//! `/api/v2/connections` and `/api/v2/connections/{id}`: each handler reads
//! its body or query, calls one service of
//! `services::management::connections` and shapes the answer as Auth0's
//! connection object.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::MgmtError;
use super::gate::{
    CreateConnections, DeleteConnections, ReadConnections, Scoped, UpdateConnections,
};
use super::wire::{MgmtJson, Props, QueryParams, listed};
use crate::app::SharedState;
use latchkey_core::services::management::connections::{
    self, ConnectionFields, ConnectionFilter, ConnectionRecord, options_object,
};

/// A connection in the shape of Auth0's connection object.
fn connection_object(r: &ConnectionRecord) -> Map<String, Value> {
    let c = &r.connection;
    let mut o = Map::new();
    o.insert("id".into(), json!(r.id));
    o.insert("name".into(), json!(c.name));
    o.insert("strategy".into(), json!(c.strategy.as_str()));
    if let Some(d) = &c.display_name {
        o.insert("display_name".into(), json!(d));
    }
    o.insert("enabled_clients".into(), json!(r.enabled_clients));
    o.insert("is_domain_connection".into(), json!(false));
    o.insert("realms".into(), json!([c.name]));
    o.insert("options".into(), options_object(c));
    if c.strategy.is_upstream() {
        o.insert(
            "authentication".into(),
            json!({"active": c.authentication.active}),
        );
        o.insert(
            "connected_accounts".into(),
            json!({"active": c.connected_accounts.active}),
        );
        o.insert(
            "link_by_verified_email".into(),
            json!(c.link_by_verified_email),
        );
    }
    o
}

/// `{active: bool}`.
fn purpose(p: &mut Props, name: &str) -> Result<Option<bool>, MgmtError> {
    match p.nested(name)? {
        None => Ok(None),
        Some(mut inner) => {
            let active = inner
                .boolean("active")?
                .ok_or_else(|| inner.missing("active"))?;
            inner.finish()?;
            Ok(Some(active))
        }
    }
}

/// The properties of a connection a body may set (`creating`: its `name`
/// and `strategy` too).
fn fields(body: Map<String, Value>, creating: bool) -> Result<ConnectionFields, MgmtError> {
    let mut p = Props::new(body);
    let (name, strategy) = if creating {
        (p.string("name")?, p.string("strategy")?)
    } else {
        (None, None)
    };
    let f = ConnectionFields {
        name,
        strategy,
        display_name: p.string("display_name")?,
        enabled_clients: p.strings("enabled_clients")?,
        options: p.object("options")?,
        authentication: purpose(&mut p, "authentication")?,
        connected_accounts: purpose(&mut p, "connected_accounts")?,
        link_by_verified_email: p.boolean("link_by_verified_email")?,
    };
    p.finish()?;
    Ok(f)
}

/// `GET /connections`.
pub(crate) async fn list(
    caller: Scoped<ReadConnections>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&[
        "strategy",
        "name",
        "fields",
        "include_fields",
        "page",
        "per_page",
        "include_totals",
        "from",
        "take",
    ])?;
    let projection = query.projection()?;
    let filter = ConnectionFilter {
        strategy: query
            .all("strategy")
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        name: query
            .get("name")
            .filter(|n| !n.is_empty())
            .map(str::to_string),
    };
    let found = connections::list(&caller.caller(), &filter, &query.paged_how()?)?;
    listed(&query, "connections", found, |c| {
        projection.apply(connection_object(c))
    })
}

/// `GET /connections/{id}`.
pub(crate) async fn get(
    caller: Scoped<ReadConnections>,
    Path(id): Path<String>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&["fields", "include_fields"])?;
    let projection = query.projection()?;
    let found = connections::get(&caller.caller(), &id)?;
    Ok(Json(projection.apply(connection_object(&found))))
}

/// `POST /connections`.
pub(crate) async fn create(
    State(state): State<SharedState>,
    caller: Scoped<CreateConnections>,
    MgmtJson(body): MgmtJson,
) -> Result<Response, MgmtError> {
    let f = fields(body, true)?;
    let made = connections::create(&state, &caller.caller(), f).await?;
    Ok((
        StatusCode::CREATED,
        Json(Value::Object(connection_object(&made))),
    )
        .into_response())
}

/// `PATCH /connections/{id}`.
pub(crate) async fn update(
    State(state): State<SharedState>,
    caller: Scoped<UpdateConnections>,
    Path(id): Path<String>,
    MgmtJson(body): MgmtJson,
) -> Result<Json<Value>, MgmtError> {
    let f = fields(body, false)?;
    let updated = connections::update(&state, &caller.caller(), &id, f).await?;
    Ok(Json(Value::Object(connection_object(&updated))))
}

/// `DELETE /connections/{id}`: 204 once its users and it are gone.
pub(crate) async fn delete(
    State(state): State<SharedState>,
    caller: Scoped<DeleteConnections>,
    Path(id): Path<String>,
) -> Result<StatusCode, MgmtError> {
    connections::delete(&state, &caller.caller(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
