//! `/api/v2/client-grants` and `/api/v2/client-grants/{id}`: each handler
//! reads its body or query, calls one service of
//! `services::management::client_grants` and shapes the answer as Auth0's
//! client grant object.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::MgmtError;
use super::gate::{
    CreateClientGrants, DeleteClientGrants, ReadClientGrants, Scoped, UpdateClientGrants,
};
use super::wire::{MgmtJson, Props, QueryParams, listed};
use crate::app::SharedState;
use latchkey_core::services::management::client_grants::{
    self, GrantFilter, GrantPatch, GrantRecord, NewGrant,
};

/// A grant in the shape of Auth0's client grant object.
fn grant_object(r: &GrantRecord) -> Value {
    let g = &r.grant;
    json!({
        "id": r.id,
        "client_id": g.client_id,
        "audience": g.audience,
        "scope": g.scope,
        "subject_type": g.subject_type.as_str(),
        "allow_all_scopes": g.allow_all_scopes,
        "is_system": false,
    })
}

/// `GET /client-grants`.
pub(crate) async fn list(
    caller: Scoped<ReadClientGrants>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&[
        "audience",
        "client_id",
        "subject_type",
        "page",
        "per_page",
        "include_totals",
        "from",
        "take",
    ])?;
    let filter = GrantFilter {
        audience: query.get("audience").map(str::to_string),
        client_id: query.get("client_id").map(str::to_string),
        subject_type: query.get("subject_type").map(str::to_string),
    };
    let found = client_grants::list(&caller.caller(), &filter, &query.paged_how()?)?;
    listed(&query, "client_grants", found, grant_object)
}

/// `GET /client-grants/{id}`.
pub(crate) async fn get(
    caller: Scoped<ReadClientGrants>,
    Path(id): Path<String>,
) -> Result<Json<Value>, MgmtError> {
    Ok(Json(grant_object(&client_grants::get(
        &caller.caller(),
        &id,
    )?)))
}

/// `POST /client-grants`.
pub(crate) async fn create(
    State(state): State<SharedState>,
    caller: Scoped<CreateClientGrants>,
    MgmtJson(body): MgmtJson,
) -> Result<Response, MgmtError> {
    let mut p = Props::new(body);
    let new = NewGrant {
        client_id: p.string("client_id")?,
        audience: p.string("audience")?,
        scope: p.strings("scope")?,
        subject_type: p.string("subject_type")?,
        allow_all_scopes: p.boolean("allow_all_scopes")?,
    };
    p.finish()?;
    let made = client_grants::create(&state, &caller.caller(), new).await?;
    Ok((StatusCode::CREATED, Json(grant_object(&made))).into_response())
}

/// `PATCH /client-grants/{id}`.
pub(crate) async fn update(
    State(state): State<SharedState>,
    caller: Scoped<UpdateClientGrants>,
    Path(id): Path<String>,
    MgmtJson(body): MgmtJson,
) -> Result<Json<Value>, MgmtError> {
    let mut p = Props::new(body);
    let patch = GrantPatch {
        scope: p.strings("scope")?,
        allow_all_scopes: p.boolean("allow_all_scopes")?,
    };
    p.finish()?;
    let updated = client_grants::update(&state, &caller.caller(), &id, patch).await?;
    Ok(Json(grant_object(&updated)))
}

/// `DELETE /client-grants/{id}`.
pub(crate) async fn delete(
    State(state): State<SharedState>,
    caller: Scoped<DeleteClientGrants>,
    Path(id): Path<String>,
) -> Result<StatusCode, MgmtError> {
    client_grants::delete(&state, &caller.caller(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
