//! `/api/v2/keys/signing`: the tenant's signing keys listed, rotated and
//! revoked (`services::management::keys`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::MgmtError;
use super::gate::{CreateSigningKeys, ReadSigningKeys, Scoped, UpdateSigningKeys};
use super::wire::QueryParams;
use crate::app::SharedState;
use latchkey_core::services::management::keys;

/// `GET /keys/signing`.
pub(crate) async fn list(
    State(state): State<SharedState>,
    caller: Scoped<ReadSigningKeys>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&[])?;
    Ok(Json(Value::Array(
        keys::list(&state, &caller.caller()).await?,
    )))
}

/// `GET /keys/signing/{kid}`.
pub(crate) async fn get(
    State(state): State<SharedState>,
    caller: Scoped<ReadSigningKeys>,
    Path(kid): Path<String>,
) -> Result<Json<Value>, MgmtError> {
    Ok(Json(keys::get(&state, &caller.caller(), &kid).await?))
}

/// `POST /keys/signing/rotate`: 201 with the new key's `kid`.
pub(crate) async fn rotate(
    State(state): State<SharedState>,
    caller: Scoped<CreateSigningKeys>,
) -> Result<Response, MgmtError> {
    let made = keys::rotate(&state, &caller.caller()).await?;
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

/// `PUT /keys/signing/{kid}/revoke`.
pub(crate) async fn revoke(
    State(state): State<SharedState>,
    caller: Scoped<UpdateSigningKeys>,
    Path(kid): Path<String>,
) -> Result<Json<Value>, MgmtError> {
    Ok(Json(keys::revoke(&state, &caller.caller(), &kid).await?))
}
