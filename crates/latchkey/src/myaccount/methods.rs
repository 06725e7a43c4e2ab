//! `GET /factors` and reading, renaming and removing authentication methods.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ValidationError};
use super::gate::{Authorized, Caller, DeleteMethods, ReadFactors, ReadMethods, UpdateMethods};
use super::wire::{self, JsonBody, factor_json, method_json};
use crate::app::SharedState;
use crate::services::audit::{self, Actor};
use crate::services::methods::{self as service, MethodError, kind_of};
use crate::tenant::FactorType;

impl From<MethodError> for ApiError {
    fn from(e: MethodError) -> Self {
        match e {
            MethodError::NotFound => ApiError::NotFound("Authentication method not found.".into()),
            MethodError::Invalid(d) => ApiError::BadRequest(d),
            MethodError::Conflict(d) => ApiError::Conflict(d),
            MethodError::Store(e) => e.into(),
        }
    }
}

pub fn actor(c: &Caller) -> Actor<'_> {
    Actor {
        tenant_id: &c.tenant.id,
        client_id: &c.client_id,
        user_id: &c.user_id,
        ip: &c.ip,
        user_agent: &c.user_agent,
    }
}

/// Records the outcome of a method operation and passes it on.
pub async fn audited<T>(
    state: &SharedState,
    caller: &Caller,
    operation: &str,
    request: (&str, &str),
    method_id: Option<&str>,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let method_type = method_id.and_then(kind_of).map(FactorType::as_str);
    let (kind, error) = match &result {
        Ok(_) => (audit::METHOD_SUCCEEDED, None),
        Err(e) => {
            let (type_, title, detail) = e.describe();
            (
                audit::METHOD_FAILED,
                Some((type_, e.status().as_u16(), title, detail)),
            )
        }
    };
    let details = audit::method_details(operation, method_type, method_id, request, error.as_ref());
    audit::record(state, &actor(caller), kind, details).await;
    result
}

pub async fn factors(
    State(state): State<SharedState>,
    caller: Authorized<ReadFactors>,
) -> Json<Value> {
    let _ = state;
    let factors: Vec<Value> = caller
        .tenant
        .config
        .factors
        .iter()
        .copied()
        .map(factor_json)
        .collect();
    Json(json!({ "factors": factors }))
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub async fn list(
    State(state): State<SharedState>,
    caller: Authorized<ReadMethods>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::Validation(vec![ValidationError::param(
            "query",
            "type",
            "malformed query string",
        )])
    })?;
    let filter =
        match q.kind {
            None => None,
            Some(t) => Some(FactorType::try_from(t).map_err(|e| {
                ApiError::Validation(vec![ValidationError::param("query", "type", e)])
            })?),
        };
    let methods = service::list(&state, &caller.tenant.id, &caller.user_id, filter).await?;
    let list: Vec<Value> = methods.iter().take(20).map(method_json).collect();
    Ok(Json(json!({ "authentication_methods": list })))
}

/// IDs are `<type>|<opaque>`; anything else names no method.
fn checked_id(id: &str) -> Option<&str> {
    (id.len() <= 300 && kind_of(id).is_some()).then_some(id)
}

pub async fn get(
    State(state): State<SharedState>,
    caller: Authorized<ReadMethods>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = checked_id(&id).ok_or_else(|| ApiError::from(MethodError::NotFound))?;
    let m = service::get(&state, &caller.tenant.id, &caller.user_id, id).await?;
    Ok(Json(method_json(&m)))
}

pub async fn update(
    State(state): State<SharedState>,
    caller: Authorized<UpdateMethods>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let path = format!("/me/v1/authentication-methods/{id}");
    let result = async {
        let b = wire::parse_update(body)?;
        let id = checked_id(&id).ok_or_else(|| ApiError::from(MethodError::NotFound))?;
        let m = service::update(
            &state,
            &caller.tenant.id,
            &caller.user_id,
            id,
            b.name.as_deref(),
            b.preferred_authentication_method.as_deref(),
        )
        .await?;
        Ok(Json(method_json(&m)))
    }
    .await;
    audited(
        &state,
        &caller,
        "update",
        ("PATCH", &path),
        Some(&id),
        result,
    )
    .await
}

pub async fn delete(
    State(state): State<SharedState>,
    caller: Authorized<DeleteMethods>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let path = format!("/me/v1/authentication-methods/{id}");
    let result = async {
        let id = checked_id(&id).ok_or_else(|| ApiError::from(MethodError::NotFound))?;
        service::delete(&state, &caller.tenant.id, &caller.user_id, id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    audited(
        &state,
        &caller,
        "delete",
        ("DELETE", &path),
        Some(&id),
        result,
    )
    .await
}
