//! A login's transaction as its device sees it: `POST /appliance-mfa/api/
//! resolve-transaction` (`Bearer` transaction token, the signed challenge
//! response) and `GET /rich-consents/{txlnkid}` (`MFA-DPoP` transaction
//! token and proof). Decoded and mapped here;
//! `services::push::transactions` decides.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::GuardianError;
use super::wire::{GuardianJson, GuardianTenant, authorization, bearer};
use crate::app::SharedState;
use latchkey_core::services::push::transactions::{self, TransactionError};

/// The longest `challenge_response` read, bytes.
const MAX_RESPONSE: usize = 8 * 1024;

impl From<TransactionError> for GuardianError {
    fn from(e: TransactionError) -> Self {
        match e {
            TransactionError::NotFound => Self::new(
                StatusCode::NOT_FOUND,
                "transaction_not_found",
                "Transaction not found.",
            ),
            TransactionError::InvalidToken(cause) => Self {
                cause: Some(cause),
                ..Self::new(StatusCode::UNAUTHORIZED, "invalid_token", "Invalid token.")
            },
            TransactionError::BindingCode => Self::new(
                StatusCode::FORBIDDEN,
                "invalid_binding_code",
                "The number does not match the one the login shows; the login was rejected.",
            ),
            TransactionError::InvalidBody(m) => Self::bad_body(m),
            TransactionError::Store(e) => e.into(),
            TransactionError::Internal(m) => Self {
                cause: Some(m),
                ..Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "The server could not complete the request.",
                )
            },
        }
    }
}

pub(super) async fn resolve(
    State(state): State<SharedState>,
    call: GuardianTenant,
    headers: HeaderMap,
    GuardianJson(body): GuardianJson,
) -> Result<Response, GuardianError> {
    let token = bearer(&headers)?;
    let response = match body.get("challenge_response") {
        Some(Value::String(r)) if !r.is_empty() && r.len() <= MAX_RESPONSE => r,
        _ => {
            return Err(GuardianError::bad_body(
                "challenge_response must be a JWT (a string).",
            ));
        }
    };
    let device = call.caller();
    transactions::resolve(&state, &device, token, response).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn details(
    State(state): State<SharedState>,
    call: GuardianTenant,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GuardianError> {
    let bad = || {
        GuardianError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_bearer_format",
            "The Authorization header must be MFA-DPoP <transaction token>, with an MFA-DPoP proof.",
        )
    };
    let token = authorization(&headers, "mfa-dpop").ok_or_else(bad)?;
    let mut proofs = headers.get_all("mfa-dpop").iter();
    let proof = match (proofs.next(), proofs.next()) {
        (Some(p), None) => p.to_str().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    let device = call.caller();
    let url = format!("{}rich-consents/{}", device.issuer, urlencoding_path(&id));
    let consent = transactions::details(&state, &device, &id, token, proof, &url).await?;
    let mut res = Json(consent).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

/// A transaction ID as its URL's path carries it (IDs are letters, digits
/// and `_`; anything else is kept percent-encoded).
fn urlencoding_path(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%5F", "_")
}
