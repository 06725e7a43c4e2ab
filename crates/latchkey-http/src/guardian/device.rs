//! The device's calls: `POST /enroll` (with its ticket), `PATCH` and
//! `DELETE /device-accounts/{id}` (with its account token or a JWT of its
//! key). Decoded and mapped here; `services::push` decides.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::GuardianError;
use super::wire::{GuardianJson, GuardianTenant, bearer, ticket};
use crate::app::SharedState;
use latchkey_core::services::push;

fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}

pub(super) async fn enroll(
    State(state): State<SharedState>,
    call: GuardianTenant,
    headers: HeaderMap,
    GuardianJson(body): GuardianJson,
) -> Result<Response, GuardianError> {
    let ticket = ticket(&headers)?;
    let caller = call.caller();
    let enrolled = push::enroll(&state, &caller, ticket, &body).await?;
    Ok(no_store(Json(enrolled.to_json()).into_response()))
}

pub(super) async fn update(
    State(state): State<SharedState>,
    call: GuardianTenant,
    Path(id): Path<String>,
    headers: HeaderMap,
    GuardianJson(body): GuardianJson,
) -> Result<Response, GuardianError> {
    let token = bearer(&headers)?;
    let caller = call.caller();
    let view = push::update(&state, &caller, &id, token, &body).await?;
    Ok(no_store(Json(view).into_response()))
}

pub(super) async fn remove(
    State(state): State<SharedState>,
    call: GuardianTenant,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GuardianError> {
    let token = bearer(&headers)?;
    let caller = call.caller();
    push::remove(&state, &caller, &id, token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
