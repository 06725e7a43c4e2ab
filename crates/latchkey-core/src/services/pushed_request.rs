//! Pushed authorization requests (RFC 9126): a client posts its
//! authorization request to `/oauth/par`, validated as `/authorize` would,
//! and gets a `request_uri` that stands for it; `/authorize` then takes it
//! with the client's ID alone. The `request_uri`'s random part is a secret:
//! stored as a digest (in the login transactions' table, under a digest of
//! its own kind, so neither is ever taken for the other), bound to its
//! client, used once, short-lived, swept once expired.

use serde::{Deserialize, Serialize};

use super::authorize::{self, AuthorizeRequest, Invalid, Params, Reply};
use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::rng::RngExt;
use crate::store::StoreError;
use crate::tenant::Tenant;

/// How long a `request_uri` may be used (Auth0's 90 seconds).
pub const PUSHED_REQUEST_TTL: i64 = 90;

/// What a `request_uri` starts with (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// What is stored under the `request_uri`'s digest.
#[derive(Debug, Serialize, Deserialize)]
struct Pushed {
    pushed_for: String,
    request: AuthorizeRequest,
}

/// Why a request cannot be pushed: an OAuth error for the client.
#[derive(Debug)]
pub enum PushError {
    Refused {
        error: &'static str,
        description: String,
    },
    Store(StoreError),
}

impl From<StoreError> for PushError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The digest a `request_uri`'s random part is stored under: of its own
/// kind, never a login transaction's.
fn digest(random: &str) -> String {
    secret_digest(&format!("pushed-authorization-request:{random}"))
}

/// Validates the request `q` of the authenticated client `client_id` as
/// `/authorize` would, and stores it: the `request_uri` and its lifetime.
pub async fn push(
    core: &Core,
    tenant: &Tenant,
    host: &str,
    client_id: &str,
    q: &Params<'_>,
) -> Result<(String, i64), PushError> {
    let refused = |error, description: &str| PushError::Refused {
        error,
        description: description.to_string(),
    };
    if q.client_id != Some(client_id) {
        return Err(refused(
            "invalid_request",
            "client_id does not match the authenticated client",
        ));
    }
    // Auth0's pushed requests are for the code flow.
    if q.response_type != Some("code") {
        return Err(refused(
            "unsupported_response_type",
            "Pushed authorization requests must use response_type=code",
        ));
    }
    let q = Params { pushed: true, ..*q };
    let request = match authorize::validate(tenant, host, &q) {
        Ok((request, _)) => request,
        Err(Invalid::Page(message)) => return Err(refused("invalid_request", message)),
        Err(Invalid::Client {
            error, description, ..
        }) => return Err(PushError::Refused { error, description }),
    };
    let random = core.rng.token(32);
    let json = serde_json::to_string(&Pushed {
        pushed_for: client_id.to_string(),
        request,
    })
    .map_err(|e| StoreError::Corrupt(format!("serialising a pushed request: {e}")))?;
    let now = core.clock.now();
    core.store
        .create_login_transaction(
            &tenant.id,
            &digest(&random),
            &json,
            now,
            now + PUSHED_REQUEST_TTL,
        )
        .await?;
    Ok((format!("{REQUEST_URI_PREFIX}{random}"), PUSHED_REQUEST_TTL))
}

/// The pushed request `request_uri` stands for, taken (it cannot be used
/// again) by the client `client_id`; `None` when unknown, used, expired,
/// or pushed by another client.
pub async fn take(
    core: &Core,
    tenant: &Tenant,
    client_id: &str,
    request_uri: &str,
) -> Result<Option<(AuthorizeRequest, Reply)>, StoreError> {
    let Some(random) = request_uri.strip_prefix(REQUEST_URI_PREFIX) else {
        return Ok(None);
    };
    if random.is_empty() || random.len() > 128 {
        return Ok(None);
    }
    let Some(json) = core
        .store
        .take_login_transaction(&tenant.id, &digest(random), core.clock.now())
        .await?
    else {
        return Ok(None);
    };
    let pushed: Pushed = serde_json::from_str(&json)
        .map_err(|e| StoreError::Corrupt(format!("a pushed request: {e}")))?;
    if pushed.pushed_for != client_id || tenant.client(client_id).is_none() {
        return Ok(None);
    }
    let reply = Reply::to(&pushed.request);
    Ok(Some((pushed.request, reply)))
}
