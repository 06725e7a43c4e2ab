//! The device API's errors in Auth0 Guardian's shape: `{statusCode, error,
//! message, errorCode}`, `error` the status's reason phrase, `errorCode`
//! one of Guardian's codes (`invalid_token`, `invalid_bearer_format`,
//! `enrollment_transaction_not_found`, `device_account_not_found`,
//! `invalid_body`, …).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use latchkey_core::services::push::DeviceError;
use latchkey_core::store::StoreError;

#[derive(Debug)]
pub(crate) struct GuardianError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Logged, never sent.
    pub cause: Option<String>,
}

impl GuardianError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            cause: None,
        }
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found.")
    }

    pub(crate) fn bad_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_body", message)
    }

    fn internal(cause: String) -> Self {
        Self {
            cause: Some(cause),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "The server could not complete the request.",
            )
        }
    }
}

impl From<StoreError> for GuardianError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            Self {
                cause: Some(e.to_string()),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "The service is temporarily unavailable. Try again shortly.",
                )
            }
        } else {
            Self::internal(e.to_string())
        }
    }
}

impl From<DeviceError> for GuardianError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::TicketNotFound => Self::new(
                StatusCode::NOT_FOUND,
                "enrollment_transaction_not_found",
                "Enrollment transaction not found.",
            ),
            DeviceError::DeviceNotFound => Self::new(
                StatusCode::NOT_FOUND,
                "device_account_not_found",
                "Device account not found.",
            ),
            DeviceError::InvalidToken(cause) => Self {
                cause: Some(cause),
                ..Self::new(StatusCode::UNAUTHORIZED, "invalid_token", "Invalid token.")
            },
            DeviceError::InvalidBody(m) => Self::bad_body(m),
            DeviceError::Store(e) => e.into(),
            DeviceError::Internal(m) => Self::internal(m),
        }
    }
}

impl IntoResponse for GuardianError {
    fn into_response(self) -> Response {
        match (&self.cause, self.status.is_server_error()) {
            (Some(cause), true) => tracing::error!(%cause, code = self.code, "device call failed"),
            (Some(cause), false) => tracing::info!(%cause, code = self.code, "device call refused"),
            (None, _) => {}
        }
        let body = json!({
            "statusCode": self.status.as_u16(),
            "error": self.status.canonical_reason().unwrap_or("Error"),
            "message": self.message,
            "errorCode": self.code,
        });
        let mut res = (self.status, Json(body)).into_response();
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        res
    }
}
