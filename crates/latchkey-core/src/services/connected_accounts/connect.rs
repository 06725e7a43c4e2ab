//! `POST /me/v1/connected-accounts/connect`: the connection must be an
//! upstream connection active for connected accounts and enabled for the
//! token's application, and `redirect_uri` one of that application's
//! callback URLs (the browser is sent there with the `connect_code`). A
//! transaction is stored for `TICKET_LIFETIME`, found by the digest of its
//! `auth_session`, with the digest of its ticket.

use super::{ConnectError, TICKET_LIFETIME};
use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::rng::RngExt;
use crate::services::enrollment::Who;
use crate::services::upstream::Provider;
use crate::store::{ConnectRow, ConnectStage};

/// What the app asks (validated against the document's schema already).
#[derive(Debug, Clone, Default)]
pub struct ConnectRequest<'a> {
    pub connection: &'a str,
    pub redirect_uri: &'a str,
    pub state: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub scopes: &'a [String],
    /// Passed on to the provider's authorization request, in order.
    pub authorization_params: Vec<(String, String)>,
}

/// A transaction started.
#[derive(Debug, Clone)]
pub struct Started {
    pub ticket: String,
    pub auth_session: String,
    pub expires_in: i64,
}

pub async fn start(
    core: &Core,
    who: &Who<'_>,
    req: ConnectRequest<'_>,
) -> Result<Started, ConnectError> {
    let tenant = who.tenant;
    // Unknown, not an upstream, not active, not this application's: one
    // answer, so the connections of other applications stay unnamed.
    let connection = tenant
        .upstream_connection(req.connection)
        .filter(|c| c.connectable_from(who.client_id))
        .ok_or_else(|| {
            ConnectError::Invalid(format!(
                "The connection {} is not available for connected accounts.",
                req.connection.chars().take(128).collect::<String>()
            ))
        })?;
    let allowed = tenant
        .client(who.client_id)
        .is_some_and(|c| c.callbacks.iter().any(|cb| cb == req.redirect_uri));
    if !allowed {
        return Err(ConnectError::Field {
            pointer: "/redirect_uri",
            detail: "is not one of the application's callback URLs".into(),
        });
    }
    // A connection that cannot reach its provider (its secret gone from
    // the environment) is refused now rather than in the user's browser.
    if let Err(e) = Provider::of(core, tenant, connection) {
        tracing::error!(tenant = %tenant.name, connection = %connection.name, error = %e, "connect refused");
        return Err(ConnectError::Invalid(format!(
            "The connection {} cannot be used now.",
            connection.name
        )));
    }
    let now = core.clock.now();
    let ticket = core.rng.token(32);
    let auth_session = core.rng.token(32);
    let row = ConnectRow {
        user_id: who.user_id.to_owned(),
        client_id: who.client_id.to_owned(),
        connection: connection.name.clone(),
        host: who.host.to_owned(),
        redirect_uri: req.redirect_uri.to_owned(),
        app_state: req.state.map(str::to_owned),
        code_challenge: req.code_challenge.map(str::to_owned),
        scopes: req.scopes.to_vec(),
        authorization_params: req.authorization_params,
        stage: ConnectStage::Created,
        state_digest: None,
        browser_digest: None,
        sealed_upstream: None,
        code_digest: None,
        sealed_result: None,
        attempts: 0,
        created_at: now,
        expires_at: now + TICKET_LIFETIME,
    };
    core.store
        .create_connect(
            &tenant.id,
            &secret_digest(&auth_session),
            &secret_digest(&ticket),
            &row,
        )
        .await?;
    Ok(Started {
        ticket,
        auth_session,
        expires_in: TICKET_LIFETIME,
    })
}
