//! The My Account dialect: the `ErrorResponse` object of the official
//! OpenAPI document, `{type, status, title, detail, validation_errors?}`,
//! as `application/json`. Every failure under `/me/v1` answers in it,
//! malformed input included; an unexpected failure is a 500 whose cause is
//! logged and never shown.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One schema violation: what is wrong and where (JSON Pointer into the body,
/// or the name of a query or path parameter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct ValidationError {
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl ValidationError {
    /// A violation in the JSON body at `pointer` (e.g. `/type`).
    pub(crate) fn body(pointer: &str, detail: impl Into<String>) -> Self {
        let field = pointer.trim_start_matches('/').replace('/', ".");
        Self {
            detail: detail.into(),
            field: (!field.is_empty()).then_some(field),
            pointer: Some(pointer.to_string()),
            source: Some("body".into()),
        }
    }

    /// A violation in a query or path parameter.
    pub(crate) fn param(source: &str, name: &str, detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            field: Some(name.to_string()),
            pointer: None,
            source: Some(source.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiError {
    /// 400: a request that is well-formed but cannot be done.
    BadRequest(String),
    /// 400: the request breaks the schema.
    Validation(Vec<ValidationError>),
    /// 401: no token.
    MissingToken,
    /// 401: a token that is not valid here.
    InvalidToken(String),
    /// 401 with a DPoP challenge (RFC 9449 §7.1): `error` is
    /// `invalid_token`, `invalid_dpop_proof` or `use_dpop_nonce` (then with
    /// the nonce to retry with).
    Dpop {
        error: &'static str,
        detail: String,
        nonce: Option<String>,
    },
    /// 403: the token lacks the operation's scope.
    InsufficientScope(&'static str),
    /// 403: something else forbids it.
    Forbidden(String),
    NotFound(String),
    MethodNotAllowed,
    Conflict(String),
    PayloadTooLarge,
    UnsupportedMediaType,
    /// 429, with the retry delay in seconds; `global` when the tenant-wide
    /// limit was hit.
    TooManyRequests {
        retry_after: i64,
        global: bool,
    },
    /// 503: the database cannot be reached right now.
    Unavailable(String),
    Internal(String),
}

/// The body of every error of the API.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorResponse {
    /// A URI naming the kind of error.
    #[serde(rename = "type")]
    pub type_: String,
    /// The HTTP status.
    pub status: u16,
    pub title: String,
    pub detail: String,
    /// What in the request broke the schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_errors: Option<Vec<ValidationError>>,
}

impl ApiError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    pub(crate) fn validation(pointer: &str, detail: impl Into<String>) -> Self {
        Self::Validation(vec![ValidationError::body(pointer, detail)])
    }

    pub(crate) fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            BadRequest(_) | Validation(_) => StatusCode::BAD_REQUEST,
            MissingToken | InvalidToken(_) | Dpop { .. } => StatusCode::UNAUTHORIZED,
            InsufficientScope(_) | Forbidden(_) => StatusCode::FORBIDDEN,
            NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict(_) => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// `(type, title, detail)`. The type URIs follow the sibling My
    /// Organization API's published ones (MYACCOUNT.md §5.2).
    pub(crate) fn describe(&self) -> (&'static str, &'static str, String) {
        use ApiError::*;
        match self {
            BadRequest(d) => (
                "https://auth0.com/api-errors#A0E-400-0001",
                "Bad Request",
                d.clone(),
            ),
            Validation(errors) => (
                "https://auth0.com/api-errors#A0E-400-0003",
                "Validation Error",
                match errors.as_slice() {
                    [one] => format!("The request is invalid: {}", one.detail),
                    _ => "The request is invalid.".into(),
                },
            ),
            MissingToken => (
                "https://auth0.com/api-errors#A0E-401-0002",
                "Missing Token",
                "No auth token provided.".into(),
            ),
            InvalidToken(d) | Dpop { detail: d, .. } => (
                "https://auth0.com/api-errors#A0E-401-0003",
                "Invalid Token",
                d.clone(),
            ),
            InsufficientScope(scope) => (
                "https://auth0.com/api-errors#A0E-403-0002",
                "Insufficient Scope",
                format!("The auth token lacks the required scope: this operation needs {scope}."),
            ),
            Forbidden(d) => (
                "https://auth0.com/api-errors#A0E-403-0001",
                "Forbidden",
                d.clone(),
            ),
            NotFound(d) => (
                "https://auth0.com/api-errors#A0E-404-0002",
                "Resource Not Found",
                d.clone(),
            ),
            MethodNotAllowed => (
                "https://auth0.com/api-errors#A0E-405-0001",
                "Method Not Allowed",
                "This method is not allowed on this resource.".into(),
            ),
            Conflict(d) => (
                "https://auth0.com/api-errors#A0E-409-0002",
                "Conflict",
                d.clone(),
            ),
            PayloadTooLarge => (
                "https://auth0.com/api-errors#A0E-413-0001",
                "Payload Too Large",
                "The request body is larger than 64 KiB.".into(),
            ),
            UnsupportedMediaType => (
                "https://auth0.com/api-errors#A0E-415-0001",
                "Unsupported Media Type",
                "The request body must be application/json.".into(),
            ),
            TooManyRequests { global: true, .. } => (
                "https://auth0.com/api-errors#A0E-429-0001",
                "Too Many Requests",
                "The tenant's request limit for this API has been exceeded.".into(),
            ),
            TooManyRequests { global: false, .. } => (
                "https://auth0.com/api-errors#A0E-429-0003",
                "Endpoint Rate Limit Exceeded",
                "The endpoint request limit has been exceeded.".into(),
            ),
            Unavailable(_) => (
                "https://auth0.com/api-errors#A0E-503-0001",
                "Service Unavailable",
                "The service is temporarily unavailable. Try again shortly.".into(),
            ),
            Internal(_) => (
                "https://auth0.com/api-errors#A0E-500-0001",
                "Internal Server Error",
                "The server could not complete the request.".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) => tracing::error!(%cause, "my account request failed"),
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "database unavailable"),
            _ => {}
        }
        let status = self.status();
        let (type_, title, detail) = self.describe();
        let errors = match &self {
            ApiError::Validation(v) => Some(v.as_slice()),
            _ => None,
        };
        let mut res = (
            status,
            Json(ErrorResponse {
                type_: type_.to_string(),
                status: status.as_u16(),
                title: title.to_string(),
                detail,
                validation_errors: errors.map(<[ValidationError]>::to_vec),
            }),
        )
            .into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            ApiError::MissingToken => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(concat!(
                        "Bearer realm=\"my-account\", DPoP algs=\"",
                        "ES256 EdDSA RS256 PS256",
                        "\""
                    )),
                );
            }
            ApiError::Dpop {
                error,
                detail,
                nonce,
            } => {
                let c = latchkey_core::services::dpop::Challenge {
                    error,
                    detail: detail.clone(),
                    nonce: nonce.clone(),
                };
                if let Ok(v) =
                    HeaderValue::from_str(&latchkey_core::services::dpop::www_authenticate(&c))
                {
                    h.insert(header::WWW_AUTHENTICATE, v);
                }
                if let Some(n) = nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
                    h.insert("dpop-nonce", n);
                }
            }
            ApiError::InvalidToken(_) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"my-account\", error=\"invalid_token\"",
                    ),
                );
            }
            ApiError::InsufficientScope(scope) => {
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "Bearer realm=\"my-account\", error=\"insufficient_scope\", scope=\"{scope}\""
                )) {
                    h.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            ApiError::TooManyRequests {
                retry_after,
                global,
            } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
                if *global {
                    h.insert(
                        "x-auth0-error-kind",
                        HeaderValue::from_static("global-rate-limit"),
                    );
                }
            }
            ApiError::Unavailable(_) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        res
    }
}

impl From<latchkey_core::store::StoreError> for ApiError {
    fn from(e: latchkey_core::store::StoreError) -> Self {
        if e.is_unavailable() {
            Self::Unavailable(e.to_string())
        } else {
            Self::internal(e)
        }
    }
}
