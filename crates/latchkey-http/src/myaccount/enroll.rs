//! `POST /authentication-methods` (start an enrollment, 202) and
//! `POST /authentication-methods/{id}/verify` (confirm it, 201).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::error::{ApiError, ErrorResponse};
use super::gate::{Authorized, Caller, CreateMethods};
use super::methods::audited;
use super::responses::{AuthenticationMethod, CreateAuthenticationMethodResponseContent};
use super::wire::{
    self, CreateAuthenticationMethodRequestContent, JsonBody,
    VerifyAuthenticationMethodRequestContent,
};
use crate::app::SharedState;
use latchkey_core::services::enrollment::{self, EnrollError};
use latchkey_core::services::methods::kind_of;
use latchkey_core::tenant::issuer_for_host;

/// Everything but RFC 3986 unreserved characters is encoded: `|` → `%7C`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The absolute URL of a method, as SDKs expect in `Location`.
fn location(caller: &Caller, method_id: &str) -> Option<HeaderValue> {
    let url = format!(
        "{}me/v1/authentication-methods/{}",
        issuer_for_host(&caller.host),
        utf8_percent_encode(method_id, SEGMENT)
    );
    HeaderValue::from_str(&url).ok()
}

impl From<EnrollError> for ApiError {
    fn from(e: EnrollError) -> Self {
        match e {
            EnrollError::Invalid(d) => ApiError::BadRequest(d),
            e @ (EnrollError::Wrong { .. } | EnrollError::TooManyMethods(_)) => {
                ApiError::BadRequest(e.to_string())
            }
            EnrollError::Field { pointer, detail } => ApiError::validation(pointer, detail),
            EnrollError::Store(e) => e.into(),
            EnrollError::Delivery(d) => {
                ApiError::BadRequest(format!("The code could not be sent: {d}"))
            }
            EnrollError::Throttled(retry_after) => ApiError::TooManyRequests {
                retry_after,
                global: false,
            },
            EnrollError::Internal(d) => ApiError::Internal(d),
        }
    }
}

#[utoipa::path(post, path = "/authentication-methods", operation_id = "createAuthenticationMethod",
    tag = "authentication-methods",
    request_body = CreateAuthenticationMethodRequestContent,
    security(("Bearer-DPoP" = ["create:me:authentication_methods"])),
    responses(
        (status = 202, description = "Enrollment started", body = CreateAuthenticationMethodResponseContent,
         headers(("Location" = String, description = "Absolute URL of the method; POST `{Location}/verify` to confirm"),
                 ("x-ratelimit-limit" = u32), ("x-ratelimit-remaining" = u32), ("x-ratelimit-reset" = i64))),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 415, body = ErrorResponse),
        (status = 429, body = ErrorResponse)))]
pub(super) async fn create(
    State(state): State<SharedState>,
    caller: Authorized<CreateMethods>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut method_id = None;
    let result = async {
        let start = wire::parse_create(body)?;
        let started = enrollment::start(&state, &caller.who(), start).await?;
        method_id = Some(started.method_id.clone());
        let loc = location(&caller, &started.method_id)
            .ok_or_else(|| ApiError::internal("building Location"))?;
        let mut res = (
            StatusCode::ACCEPTED,
            Json(CreateAuthenticationMethodResponseContent::from(&started)),
        )
            .into_response();
        res.headers_mut().insert(header::LOCATION, loc);
        Ok(res)
    }
    .await;
    audited(
        &state,
        &caller,
        "create",
        ("POST", "/me/v1/authentication-methods"),
        method_id.as_deref(),
        result,
    )
    .await
}

#[utoipa::path(post, path = "/authentication-methods/{authentication_method_id}/verify",
    operation_id = "confirmAuthenticationMethod", tag = "authentication-methods",
    params(("authentication_method_id" = String, Path, description = "The ID from the enrollment's Location")),
    request_body = VerifyAuthenticationMethodRequestContent,
    security(("Bearer-DPoP" = ["create:me:authentication_methods"])),
    responses(
        (status = 201, description = "Authentication method verified", body = AuthenticationMethod,
         headers(("Location" = String), ("x-ratelimit-limit" = u32), ("x-ratelimit-remaining" = u32),
                 ("x-ratelimit-reset" = i64))),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 415, body = ErrorResponse),
        (status = 429, body = ErrorResponse)))]
pub(super) async fn verify(
    State(state): State<SharedState>,
    caller: Authorized<CreateMethods>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let path = format!("/me/v1/authentication-methods/{id}/verify");
    let result = async {
        let kind = kind_of(&id)
            .filter(|_| id.len() <= 300 && !id.chars().any(char::is_control))
            .ok_or_else(|| ApiError::BadRequest("No enrollment is pending for this ID.".into()))?;
        let (auth_session, proof) = wire::parse_verify(kind, body)?;
        let method = enrollment::verify(&state, &caller.who(), &id, &auth_session, proof).await?;
        let loc =
            location(&caller, &method.id).ok_or_else(|| ApiError::internal("building Location"))?;
        let mut res = (StatusCode::CREATED, Json(super::methods::one(&method)?)).into_response();
        res.headers_mut().insert(header::LOCATION, loc);
        Ok(res)
    }
    .await;
    audited(
        &state,
        &caller,
        "verify",
        ("POST", &path),
        Some(&id),
        result,
    )
    .await
}
