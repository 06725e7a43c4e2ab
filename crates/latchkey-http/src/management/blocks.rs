//! `/api/v2/user-blocks` and `/api/v2/user-blocks/{id}`: brute-force blocks
//! read and lifted (`services::management::blocks`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::error::MgmtError;
use super::gate::{ReadUsers, Scoped, UnblockUsers};
use super::wire::QueryParams;
use crate::app::SharedState;
use latchkey_core::services::management::blocks;

fn identifier(query: &QueryParams) -> Result<&str, MgmtError> {
    query.get("identifier").ok_or_else(|| {
        MgmtError::bad_query(
            "Query validation error: 'Missing required property: identifier' on property identifier.",
        )
    })
}

/// `GET /user-blocks/{id}`.
pub(crate) async fn of_user(
    State(state): State<SharedState>,
    caller: Scoped<ReadUsers>,
    Path(id): Path<String>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&["consider_brute_force_enablement"])?;
    let consider = query
        .boolean("consider_brute_force_enablement")?
        .unwrap_or(false);
    Ok(Json(
        blocks::of_user(&state, &caller.caller(), &id, consider).await?,
    ))
}

/// `GET /user-blocks?identifier=`.
pub(crate) async fn of_identifier(
    State(state): State<SharedState>,
    caller: Scoped<ReadUsers>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&["identifier", "consider_brute_force_enablement"])?;
    let consider = query
        .boolean("consider_brute_force_enablement")?
        .unwrap_or(false);
    Ok(Json(
        blocks::of_identifier(&state, &caller.caller(), identifier(&query)?, consider).await?,
    ))
}

/// `DELETE /user-blocks/{id}`: 204.
pub(crate) async fn unblock_user(
    State(state): State<SharedState>,
    caller: Scoped<UnblockUsers>,
    Path(id): Path<String>,
) -> Result<StatusCode, MgmtError> {
    blocks::unblock_user(&state, &caller.caller(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /user-blocks?identifier=`: 204.
pub(crate) async fn unblock_identifier(
    State(state): State<SharedState>,
    caller: Scoped<UnblockUsers>,
    query: QueryParams,
) -> Result<StatusCode, MgmtError> {
    query.only(&["identifier"])?;
    blocks::unblock_identifier(&state, &caller.caller(), identifier(&query)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
