//! The Management API's dialect: every error is Auth0's `{statusCode,
//! error, message, errorCode}` (`error` the status's reason phrase), as
//! `application/json`, malformed input and unknown paths included; an
//! unexpected failure is a bare 500 whose cause is logged, never shown.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use latchkey_core::services::management::{ManagementError, password_message};
use latchkey_core::store::StoreError;

#[derive(Debug)]
pub(crate) struct MgmtError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    more: Box<More>,
}

/// What few errors carry besides their body.
#[derive(Debug, Default)]
struct More {
    /// Logged, never sent.
    cause: Option<String>,
    /// `WWW-Authenticate`, for a 401 or 403 about the token.
    challenge: Option<String>,
    /// `retry-after`, seconds (429, 503).
    retry_after: Option<i64>,
    /// A `DPoP-Nonce` to retry with.
    nonce: Option<String>,
}

impl MgmtError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            more: Box::default(),
        }
    }

    pub(crate) fn with_cause(mut self, cause: impl Into<String>) -> Self {
        self.more.cause = Some(cause.into());
        self
    }

    pub(crate) fn with_challenge(mut self, challenge: impl Into<String>) -> Self {
        self.more.challenge = Some(challenge.into());
        self
    }

    pub(crate) fn with_retry_after(mut self, seconds: i64) -> Self {
        self.more.retry_after = Some(seconds);
        self
    }

    pub(crate) fn with_nonce(mut self, nonce: Option<String>) -> Self {
        self.more.nonce = nonce;
        self
    }

    pub(crate) fn bad_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_body", message)
    }

    pub(crate) fn bad_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query_string", message)
    }

    /// 401: no token, or one not good here.
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        let message = message.into();
        let description: String = message
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
            .collect();
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", message).with_challenge(format!(
            "Bearer realm=\"management-api\", error=\"invalid_token\", error_description=\"{description}\""
        ))
    }

    /// 403: the token lacks every scope the operation takes.
    pub(crate) fn insufficient_scope(any_of: &[&str]) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("Insufficient scope, expected any of: {}", any_of.join(",")),
        )
        .with_challenge(format!(
            "Bearer realm=\"management-api\", error=\"insufficient_scope\", scope=\"{}\"",
            any_of.join(" ")
        ))
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not Found")
    }

    pub(crate) fn too_many_requests(retry_after: i64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Global limit has been reached",
        )
        .with_retry_after(retry_after)
    }

    pub(crate) fn unavailable(cause: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "The service is temporarily unavailable. Try again shortly.",
        )
        .with_cause(cause)
        .with_retry_after(5)
    }

    pub(crate) fn internal(cause: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "The server could not complete the request.",
        )
        .with_cause(cause)
    }
}

impl From<StoreError> for MgmtError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            Self::unavailable(e.to_string())
        } else {
            Self::internal(e.to_string())
        }
    }
}

impl From<ManagementError> for MgmtError {
    fn from(e: ManagementError) -> Self {
        match e {
            ManagementError::InvalidBody(m) => Self::bad_body(m),
            ManagementError::InvalidQuery(m) => Self::bad_query(m),
            ManagementError::BadRequest { code, message } => {
                Self::new(StatusCode::BAD_REQUEST, code, message)
            }
            ManagementError::Password(violations) => Self::bad_body(password_message(&violations)),
            ManagementError::InsufficientScope(any_of) => Self::insufficient_scope(&any_of),
            ManagementError::UserNotFound => Self::new(
                StatusCode::NOT_FOUND,
                "inexistent_user",
                "The user does not exist.",
            ),
            ManagementError::UserExists => Self::new(
                StatusCode::CONFLICT,
                "user_exists",
                "The user already exists.",
            ),
            ManagementError::KeyNotFound => Self::new(
                StatusCode::NOT_FOUND,
                "inexistent_key",
                "The signing key does not exist.",
            ),
            ManagementError::LogNotFound => Self::new(
                StatusCode::NOT_FOUND,
                "inexistent_log",
                "The log does not exist.",
            ),
            ManagementError::NotFound { code, message } => {
                Self::new(StatusCode::NOT_FOUND, code, message)
            }
            ManagementError::Conflict { code, message } => {
                Self::new(StatusCode::CONFLICT, code, message)
            }
            ManagementError::ConfigBusy => {
                Self::unavailable("the tenant's configuration kept changing").with_retry_after(1)
            }
            ManagementError::Busy => {
                Self::unavailable("the password hashing queue is full").with_retry_after(1)
            }
            ManagementError::Store(e) => e.into(),
            ManagementError::Internal(m) => Self::internal(m),
        }
    }
}

impl IntoResponse for MgmtError {
    fn into_response(self) -> Response {
        let more = *self.more;
        match (&more.cause, self.status.is_server_error()) {
            (Some(cause), true) => {
                tracing::error!(%cause, code = self.code, "management API request failed")
            }
            (Some(cause), false) => {
                tracing::info!(%cause, code = self.code, "management API request refused")
            }
            (None, _) => {}
        }
        let body = json!({
            "statusCode": self.status.as_u16(),
            "error": self.status.canonical_reason().unwrap_or("Error"),
            "message": self.message,
            "errorCode": self.code,
        });
        let mut res = (self.status, Json(body)).into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(v) = more
            .challenge
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
        {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(s) = more.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(n) = more
            .nonce
            .as_deref()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            h.insert("dpop-nonce", n);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_refusals_keep_auth0s_dialect() {
        let busy = MgmtError::from(ManagementError::ConfigBusy);
        assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.code, "service_unavailable");
        assert_eq!(busy.more.retry_after, Some(1));
        let res = busy.into_response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        let missing = MgmtError::from(ManagementError::NotFound {
            code: "inexistent_role",
            message: "The role does not exist".into(),
        });
        assert_eq!(
            (missing.status, missing.code),
            (StatusCode::NOT_FOUND, "inexistent_role")
        );
        let taken = MgmtError::from(ManagementError::Conflict {
            code: "already_exists",
            message: "A role with this name already exists".into(),
        });
        assert_eq!(
            (taken.status, taken.code),
            (StatusCode::CONFLICT, "already_exists")
        );
    }
}
