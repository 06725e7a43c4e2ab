//! The tenant's signing keys through the Management API (`/keys/signing`):
//! listed as Auth0 lists them (`kid`, `current`, `previous`,
//! `current_since`, `current_until`, `revoked`), rotated (a new key signs
//! from now on; the old one stays published until what it signed expires),
//! and a superseded key revoked at once (it leaked). Rotations and
//! revocations are logged (`sapi`).

use serde_json::{Value, json};

use super::{Caller, ManagementError, record};
use crate::clock::rfc3339;
use crate::context::Core;
use crate::services::keys::KeyError;
use crate::store::SigningKeyRow;

fn key_error(e: KeyError) -> ManagementError {
    match e {
        KeyError::Store(s) => ManagementError::Store(s),
        KeyError::UnknownKey => ManagementError::KeyNotFound,
        KeyError::CurrentKey => ManagementError::BadRequest {
            code: "invalid_request",
            message:
                "The key signing now cannot be revoked: rotate the keys first, then revoke the \
                      previous one."
                    .into(),
        },
        e => ManagementError::Internal(e.to_string()),
    }
}

/// A key as Auth0 lists it; `newest` tells the one signing now.
fn key_object(row: &SigningKeyRow, index: usize) -> Value {
    json!({
        "kid": row.kid,
        "current": row.superseded_at.is_none() && index == 0,
        "next": false,
        "previous": index == 1,
        "current_since": rfc3339(row.created_at),
        "current_until": row.superseded_at.map(rfc3339),
        "revoked": false,
    })
}

/// `GET /keys/signing`: newest first.
pub async fn list(state: &Core, caller: &Caller<'_>) -> Result<Vec<Value>, ManagementError> {
    let rows = state
        .keys
        .list(&caller.tenant.id)
        .await
        .map_err(key_error)?;
    Ok(rows
        .iter()
        .enumerate()
        .map(|(i, r)| key_object(r, i))
        .collect())
}

/// `GET /keys/signing/{kid}`.
pub async fn get(state: &Core, caller: &Caller<'_>, kid: &str) -> Result<Value, ManagementError> {
    let rows = state
        .keys
        .list(&caller.tenant.id)
        .await
        .map_err(key_error)?;
    rows.iter()
        .enumerate()
        .find(|(_, r)| r.kid == kid)
        .map(|(i, r)| key_object(r, i))
        .ok_or(ManagementError::KeyNotFound)
}

/// `POST /keys/signing/rotate`: the new key's `kid`.
pub async fn rotate(state: &Core, caller: &Caller<'_>) -> Result<Value, ManagementError> {
    let outcome = state
        .keys
        .rotate(&caller.tenant.id)
        .await
        .map_err(key_error);
    record(state, caller, "Rotate the signing keys", None, &outcome).await;
    Ok(json!({ "kid": outcome? }))
}

/// `PUT /keys/signing/{kid}/revoke`.
pub async fn revoke(
    state: &Core,
    caller: &Caller<'_>,
    kid: &str,
) -> Result<Value, ManagementError> {
    let outcome = state
        .keys
        .revoke(&caller.tenant.id, kid)
        .await
        .map_err(key_error);
    record(state, caller, "Revoke a signing key", None, &outcome).await;
    outcome?;
    Ok(json!({ "kid": kid }))
}
