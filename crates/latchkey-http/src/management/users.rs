//! `/api/v2/users`, `/api/v2/users/{id}` and `/api/v2/users-by-email`:
//! each handler reads its body or query, calls one service of
//! `services::management::users` and shapes the answer.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::MgmtError;
use super::gate::{CreateUsers, DeleteUsers, ReadUser, ReadUsers, Scoped, UpdateUsers};
use super::wire::{MgmtJson, Props, QueryParams, user_object};
use crate::app::SharedState;
use axum::extract::State;
use latchkey_core::services::management::users::{
    self, ListRequest, NewUser, PROFILE_FIELDS, UserPatch,
};

/// `POST /users`.
pub(crate) async fn create(
    State(state): State<SharedState>,
    caller: Scoped<CreateUsers>,
    MgmtJson(body): MgmtJson,
) -> Result<Response, MgmtError> {
    let mut p = Props::new(body);
    let connection = p.string("connection")?.ok_or_else(|| {
        MgmtError::bad_body("Payload validation error: 'Missing required property: connection'.")
    })?;
    let mut profile = serde_json::Map::new();
    for field in PROFILE_FIELDS {
        if let Some(v) = p.string(field)? {
            profile.insert(field.into(), Value::String(v));
        }
    }
    let new = NewUser {
        connection,
        email: p.string("email")?,
        password: p.string("password")?,
        username: p.string("username")?,
        user_id: p.string("user_id")?,
        email_verified: p.boolean("email_verified")?,
        verify_email: p.boolean("verify_email")?,
        blocked: p.boolean("blocked")?,
        profile,
        user_metadata: p.object("user_metadata")?,
        app_metadata: p.object("app_metadata")?,
    };
    p.finish()?;
    let created = users::create(&state, &caller.caller(), new).await?;
    Ok((
        StatusCode::CREATED,
        Json(Value::Object(user_object(&created))),
    )
        .into_response())
}

/// `GET /users/{id}`.
pub(crate) async fn get(
    State(state): State<SharedState>,
    caller: Scoped<ReadUser>,
    Path(id): Path<String>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&["fields", "include_fields"])?;
    let projection = query.projection()?;
    let found = users::get(&state, &caller.caller(), &id).await?;
    Ok(Json(projection.apply(user_object(&found))))
}

/// `GET /users`.
pub(crate) async fn list(
    State(state): State<SharedState>,
    caller: Scoped<ReadUsers>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&[
        "page",
        "per_page",
        "include_totals",
        "sort",
        "connection",
        "fields",
        "include_fields",
        "q",
        "search_engine",
        "primary_order",
    ])?;
    match query.get("search_engine") {
        None | Some("v3") => {}
        Some(other) => {
            return Err(MgmtError::bad_query(format!(
                "Query validation error: 'latchkey serves search_engine v3 only, not {other:?}' on property search_engine."
            )));
        }
    }
    if query.get("connection").is_some() {
        return Err(MgmtError::bad_query(
            "Query validation error: 'connection filters only with search_engine v1: use q=identities.connection:\"name\"' on property connection.",
        ));
    }
    query.boolean("primary_order")?;
    let projection = query.projection()?;
    let include_totals = query.boolean("include_totals")?.unwrap_or(false);
    let req = ListRequest {
        q: query.get("q"),
        sort: query.get("sort").filter(|s| !s.is_empty()),
        page: query.integer("page")?,
        per_page: query.integer("per_page")?,
        include_totals,
    };
    let found = users::list(&state, &caller.caller(), &req).await?;
    let shaped: Vec<Value> = found
        .users
        .iter()
        .map(|r| projection.apply(user_object(r)))
        .collect();
    if !include_totals {
        return Ok(Json(Value::Array(shaped)));
    }
    Ok(Json(json!({
        "start": found.start,
        "limit": found.limit,
        "length": shaped.len(),
        "total": found.total.unwrap_or(0),
        "users": shaped,
    })))
}

/// `GET /users-by-email?email=`.
pub(crate) async fn by_email(
    State(state): State<SharedState>,
    caller: Scoped<ReadUsers>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&["email", "fields", "include_fields"])?;
    let projection = query.projection()?;
    let email = query
        .get("email")
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            MgmtError::bad_query("Query validation error: 'Missing required property: email'.")
        })?;
    let found = users::by_email(&state, &caller.caller(), email).await?;
    Ok(Json(Value::Array(
        found
            .iter()
            .map(|r| projection.apply(user_object(r)))
            .collect(),
    )))
}

/// `PATCH /users/{id}`.
pub(crate) async fn update(
    State(state): State<SharedState>,
    caller: Scoped<UpdateUsers>,
    Path(id): Path<String>,
    MgmtJson(body): MgmtJson,
) -> Result<Json<Value>, MgmtError> {
    let mut p = Props::new(body);
    let mut profile = Vec::new();
    for field in PROFILE_FIELDS {
        if let Some(v) = p.nullable_string(field)? {
            profile.push((field.to_string(), v));
        }
    }
    let password = match p.nullable_string("password")? {
        Some(None) => {
            return Err(MgmtError::bad_body(
                "Payload validation error: 'Expected type string but found type null' on property password.",
            ));
        }
        Some(Some(p)) => Some(p),
        None => None,
    };
    let email = match p.nullable_string("email")? {
        Some(None) => {
            return Err(MgmtError::bad_body(
                "Payload validation error: 'Expected type string but found type null' on property email.",
            ));
        }
        other => other.flatten(),
    };
    let patch = UserPatch {
        blocked: p.boolean("blocked")?,
        email_verified: p.boolean("email_verified")?,
        email,
        verify_email: p.boolean("verify_email")?,
        password,
        username: p.nullable_string("username")?,
        profile,
        user_metadata: p.object("user_metadata")?,
        app_metadata: p.object("app_metadata")?,
        connection: p.string("connection")?,
    };
    p.finish()?;
    let updated = users::update(&state, &caller.caller(), &id, patch).await?;
    Ok(Json(Value::Object(user_object(&updated))))
}

/// `DELETE /users/{id}`.
pub(crate) async fn delete(
    State(state): State<SharedState>,
    caller: Scoped<DeleteUsers>,
    Path(id): Path<String>,
) -> Result<StatusCode, MgmtError> {
    users::delete(&state, &caller.caller(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
