//! `GET /factors` and reading, renaming and removing authentication methods.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::{ApiError, ErrorResponse, ValidationError};
use super::gate::{Authorized, Caller, DeleteMethods, ReadFactors, ReadMethods, UpdateMethods};
use super::responses::{
    AuthenticationMethod, Factor, FactorTypeEnum, ListAuthenticationMethodsResponseContent,
    ListFactorsResponseContent,
};
use super::wire::UpdateAuthenticationMethodRequestContent;
use super::wire::{self, JsonBody};
use crate::app::SharedState;
use latchkey_core::services::audit::{self, Actor};
use latchkey_core::services::methods::{self as service, MethodError, kind_of};
use latchkey_core::tenant::FactorType;

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

pub(super) fn actor(c: &Caller) -> Actor<'_> {
    Actor {
        tenant_id: &c.tenant.id,
        client_id: &c.client_id,
        user_id: &c.user_id,
        ip: &c.ip,
        user_agent: &c.user_agent,
    }
}

/// Records the outcome of a method operation and passes it on.
pub(super) async fn audited<T>(
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

/// The wire form of one method.
pub(super) fn one(m: &service::Method) -> Result<AuthenticationMethod, ApiError> {
    AuthenticationMethod::of(m)
        .ok_or_else(|| ApiError::internal(format!("no wire form for {}", m.id)))
}

#[utoipa::path(get, path = "/factors", operation_id = "getFactors", tag = "factors",
    description = "The factors enabled on the tenant, which the user may enroll.",
    security(("Bearer-DPoP" = ["read:me:factors"])),
    responses(
        (status = 200, body = ListFactorsResponseContent, headers(
            ("x-ratelimit-limit" = u32), ("x-ratelimit-remaining" = u32), ("x-ratelimit-reset" = i64))),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 429, body = ErrorResponse)))]
pub(super) async fn factors(caller: Authorized<ReadFactors>) -> Json<ListFactorsResponseContent> {
    let factors = caller
        .tenant
        .config
        .factors
        .iter()
        .copied()
        .map(Factor::from)
        .collect();
    Json(ListFactorsResponseContent { factors })
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[utoipa::path(get, path = "/authentication-methods", operation_id = "getAuthenticationMethods",
    tag = "authentication-methods",
    params(("type" = Option<FactorTypeEnum>, Query, description = "Only methods of this type")),
    security(("Bearer-DPoP" = ["read:me:authentication_methods"])),
    responses(
        (status = 200, body = ListAuthenticationMethodsResponseContent, headers(
            ("x-ratelimit-limit" = u32), ("x-ratelimit-remaining" = u32), ("x-ratelimit-reset" = i64))),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 429, body = ErrorResponse)))]
pub(super) async fn list(
    caller: Authorized<ReadMethods>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ListAuthenticationMethodsResponseContent>, ApiError> {
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
    let (user, rows) = &*caller.account;
    let methods = service::list_of(user, rows, filter);
    let authentication_methods = methods.iter().take(20).map(one).collect::<Result<_, _>>()?;
    Ok(Json(ListAuthenticationMethodsResponseContent {
        authentication_methods,
    }))
}

/// IDs are `<type>|<opaque>`; anything else names no method.
fn checked_id(id: &str) -> Option<&str> {
    (id.len() <= 300 && !id.chars().any(char::is_control) && kind_of(id).is_some()).then_some(id)
}

#[utoipa::path(get, path = "/authentication-methods/{authentication_method_id}",
    operation_id = "getAuthenticationMethod", tag = "authentication-methods",
    params(("authentication_method_id" = String, Path, description = "The method's ID, as in Location")),
    security(("Bearer-DPoP" = ["read:me:authentication_methods"])),
    responses(
        (status = 200, body = AuthenticationMethod, headers(
            ("x-ratelimit-limit" = u32), ("x-ratelimit-remaining" = u32), ("x-ratelimit-reset" = i64))),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 429, body = ErrorResponse)))]
pub(super) async fn get(
    caller: Authorized<ReadMethods>,
    Path(id): Path<String>,
) -> Result<Json<AuthenticationMethod>, ApiError> {
    let id = checked_id(&id).ok_or_else(|| ApiError::from(MethodError::NotFound))?;
    let (user, rows) = &*caller.account;
    let m = service::get_of(user, rows, id)?;
    Ok(Json(one(&m)?))
}

#[utoipa::path(patch, path = "/authentication-methods/{authentication_method_id}",
    operation_id = "updateAuthenticationMethod", tag = "authentication-methods",
    params(("authentication_method_id" = String, Path)),
    request_body = UpdateAuthenticationMethodRequestContent,
    security(("Bearer-DPoP" = ["update:me:authentication_methods"])),
    responses(
        (status = 200, body = AuthenticationMethod, headers(
            ("x-ratelimit-limit" = u32), ("x-ratelimit-remaining" = u32), ("x-ratelimit-reset" = i64))),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 415, body = ErrorResponse), (status = 429, body = ErrorResponse)))]
pub(super) async fn update(
    State(state): State<SharedState>,
    caller: Authorized<UpdateMethods>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<AuthenticationMethod>, ApiError> {
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
        Ok(Json(one(&m)?))
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

#[utoipa::path(delete, path = "/authentication-methods/{authentication_method_id}",
    operation_id = "deleteAuthenticationMethod", tag = "authentication-methods",
    params(("authentication_method_id" = String, Path)),
    security(("Bearer-DPoP" = ["delete:me:authentication_methods"])),
    responses(
        (status = 204, description = "Deleted", headers(
            ("x-ratelimit-limit" = u32), ("x-ratelimit-remaining" = u32), ("x-ratelimit-reset" = i64))),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse),
        (status = 429, body = ErrorResponse)))]
pub(super) async fn delete(
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
