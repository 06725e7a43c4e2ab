//! `/api/v2/users` and `/api/v2/users/{id}`: each handler reads its body or
//! query, calls one service of `services::management::users` and shapes the
//! answer.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::MgmtError;
use super::gate::{CreateUsers, ReadUsers, Scoped};
use super::wire::{MgmtJson, Props, QueryParams, user_object};
use crate::app::SharedState;
use axum::extract::State;
use latchkey_core::services::management::users::{self, NewUser, PROFILE_FIELDS};

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
    caller: Scoped<ReadUsers>,
    Path(id): Path<String>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&["fields", "include_fields"])?;
    let projection = query.projection()?;
    let found = users::get(&state, &caller.caller(), &id).await?;
    Ok(Json(projection.apply(user_object(&found))))
}
