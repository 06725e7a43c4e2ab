//! Connected accounts (Token Vault): a user links an account they hold at
//! an upstream identity provider, and latchkey keeps its tokens, sealed,
//! for the apps the user allows. The My Account API's flow, a module a
//! step:
//!
//! - `connect.rs`: `POST /connect` stores a transaction and answers its
//!   ticket and `auth_session`;
//! - `browser.rs`: the browser brings the ticket and is sent to the
//!   provider (latchkey's own state, nonce and PKCE); the provider calls
//!   back; the code is exchanged, the account verified, and the browser
//!   goes back to the app with a `connect_code`;
//! - `complete.rs`: `POST /complete` with `auth_session`, `connect_code`,
//!   `redirect_uri` and the app's PKCE verifier stores the account;
//! - `accounts.rs`: listing and deleting accounts (the provider told to
//!   revoke), and the connections offered;
//! - `refresh.rs`: an account's access token for the Token Vault, as
//!   stored or refreshed at the provider once across nodes.
//!
//! Every secret of the flow is a digest in the store (ticket,
//! `auth_session`, the provider's state, `connect_code`, the browser's
//! cookie) or sealed under the master key (the verifier and nonce sent
//! upstream, the tokens): `ARCHITECTURE.md` walks the request path.

mod accounts;
mod browser;
mod complete;
mod connect;
mod refresh;

pub use accounts::{ConnectionOffer, connections, delete, list};
pub use browser::{AppAnswer, Callback, CallbackError, TicketOutcome, callback, open_ticket};
pub use complete::{CompleteRequest, complete};
pub use connect::{ConnectRequest, Started, start};
pub use refresh::{Refreshes, Served, VaultError, access_token};

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::context::Core;
use crate::services::audit::{self, Actor};
use crate::services::enrollment::Who;
use crate::services::upstream::TokenSet;
use crate::store::{AccountStatus, ConnectedAccountRow, SealedTokens, StoreError};

/// How long a ticket may wait for the browser (`expires_in`).
pub const TICKET_LIFETIME: i64 = 300;
/// How long the user has at the provider, from the ticket's use.
pub const UPSTREAM_LIFETIME: i64 = 900;
/// How long a `connect_code` waits for `complete`.
const CODE_LIFETIME: i64 = 300;
/// Wrong `complete`s before the transaction goes.
const MAX_ATTEMPTS: i64 = 5;
/// The longest ticket, state or cookie value looked up.
const MAX_SECRET: usize = 128;

/// Why a My Account operation on connected accounts was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Well-formed, but cannot be done (400).
    #[error("{0}")]
    Invalid(String),
    /// A field of the body that cannot be (400, with its pointer).
    #[error("{pointer}: {detail}")]
    Field {
        pointer: &'static str,
        detail: String,
    },
    /// A query parameter that cannot be (400).
    #[error("{name}: {detail}")]
    Query { name: &'static str, detail: String },
    #[error("{0}")]
    NotFound(String),
    /// The provider account is another user's (409).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// A connected account as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub connection: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    /// When the refresh token ends, when the provider said; for an
    /// account whose provider refused its refresh token (`revoked`), when
    /// it did: the account has expired.
    pub expires_at: Option<Timestamp>,
}

impl From<&ConnectedAccountRow> for Account {
    fn from(row: &ConnectedAccountRow) -> Self {
        Self {
            id: row.id.clone(),
            connection: row.connection.clone(),
            scopes: row.scopes.clone(),
            created_at: row.created_at,
            expires_at: match row.status {
                AccountStatus::Active => row.tokens.refresh_expires_at,
                AccountStatus::Revoked => Some(row.updated_at),
            },
        }
    }
}

/// What the exchange found, sealed in the transaction until `complete`.
#[derive(Serialize, Deserialize)]
struct Pending {
    subject: String,
    scopes: Vec<String>,
    tokens: TokenSet,
}

/// What was sent upstream, sealed in the transaction until the callback.
#[derive(Serialize, Deserialize)]
struct Upstream {
    code_verifier: String,
    nonce: Option<String>,
    scopes: Vec<String>,
}

/// The context a transaction's sealed `what` is bound to.
fn connect_context(tenant_id: &str, session_digest: &str, what: &str) -> String {
    format!("connect:{tenant_id}:{session_digest}:{what}")
}

/// The context an account's token of `kind` is sealed with: the account's
/// tenant, user, connection and provider account, so that a sealed token
/// copied into another row does not open.
pub(crate) fn account_context(tenant_id: &str, row: &ConnectedAccountRow, kind: &str) -> String {
    format!(
        "connected-account:{tenant_id}:{}:{}:{}:{kind}",
        row.user_id, row.connection, row.subject
    )
}

/// Seals `value` as JSON under `context`.
fn seal_json<T: Serialize>(core: &Core, context: &str, value: &T) -> Result<String, ConnectError> {
    let json = serde_json::to_vec(value).map_err(|e| ConnectError::Internal(e.to_string()))?;
    Ok(core.sealer.seal(&*core.rng, context, &json))
}

/// Opens what [`seal_json`] sealed.
fn open_json<T: serde::de::DeserializeOwned>(
    core: &Core,
    context: &str,
    sealed: Option<&str>,
) -> Result<T, ConnectError> {
    let sealed =
        sealed.ok_or_else(|| ConnectError::Internal(format!("nothing sealed for {context}")))?;
    let plain = core
        .sealer
        .open(context, sealed)
        .map_err(|e| ConnectError::Internal(format!("{context}: {e}")))?;
    serde_json::from_slice(&plain).map_err(|e| ConnectError::Internal(e.to_string()))
}

/// The account's tokens, each sealed with the account's context.
fn seal_tokens(
    core: &Core,
    tenant_id: &str,
    row: &ConnectedAccountRow,
    tokens: &TokenSet,
) -> SealedTokens {
    let seal = |kind: &str, value: &Option<String>| {
        value.as_ref().map(|v| {
            core.sealer.seal(
                &*core.rng,
                &account_context(tenant_id, row, kind),
                v.as_bytes(),
            )
        })
    };
    SealedTokens {
        access_token: seal("access_token", &Some(tokens.access_token.clone())),
        access_expires_at: tokens.expires_at,
        refresh_token: seal("refresh_token", &tokens.refresh_token),
        refresh_expires_at: tokens.refresh_expires_at,
        id_token: seal("id_token", &tokens.id_token),
    }
}

/// An account's token of `kind`, opened.
pub(crate) fn open_token(
    core: &Core,
    tenant_id: &str,
    row: &ConnectedAccountRow,
    kind: &str,
) -> Option<String> {
    let sealed = match kind {
        "access_token" => row.tokens.access_token.as_deref(),
        "refresh_token" => row.tokens.refresh_token.as_deref(),
        _ => row.tokens.id_token.as_deref(),
    }?;
    match core
        .sealer
        .open(&account_context(tenant_id, row, kind), sealed)
    {
        Ok(plain) => String::from_utf8(plain).ok(),
        Err(e) => {
            tracing::error!(error = %e, account = %row.id, "a sealed upstream token does not open");
            None
        }
    }
}

/// Records that `operation` (`connect` or `delete`) was done to `row`,
/// with one more detail if any.
async fn audited(
    core: &Core,
    who: &Who<'_>,
    ip: &str,
    operation: &str,
    row: &ConnectedAccountRow,
    extra: Option<(&str, serde_json::Value)>,
) {
    let actor = Actor {
        tenant_id: &who.tenant.id,
        client_id: who.client_id,
        user_id: who.user_id,
        ip,
        user_agent: who.user_agent,
    };
    let mut details = serde_json::json!({
        "operation": operation,
        "connection": row.connection,
        "connected_account_id": row.id,
    });
    if let (Some((key, value)), Some(map)) = (extra, details.as_object_mut()) {
        map.insert(key.to_owned(), value);
    }
    audit::record(core, &actor, audit::CONNECTED_ACCOUNT_SUCCEEDED, details).await;
}
