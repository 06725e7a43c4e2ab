//! The browser's part: it brings the ticket (`GET
//! {issuer}connected-accounts/connect?ticket=…`) and is sent to the
//! provider with latchkey's own state, nonce and PKCE challenge, a cookie
//! binding it to the transaction; the provider sends it back to
//! `{issuer}login/callback` with that state and a code. The code is
//! exchanged, the account identified (the ID token verified), the result
//! sealed in the transaction, and the browser goes back to the app's
//! `redirect_uri` with a `connect_code` and the app's `state`.
//!
//! Each step is taken once: the ticket's use and the callback are claimed
//! with guarded updates, so a replayed ticket or callback finds nothing.
//! A callback from a browser without the cookie changes nothing (a code
//! another browser obtained cannot be slipped into this user's flow). A
//! provider that refuses, fails or answers what cannot be verified sends
//! the browser back to the app with `error` and `error_description`, and
//! the transaction is gone: nothing is half-written.

use super::{
    CODE_LIFETIME, ConnectError, MAX_SECRET, Pending, UPSTREAM_LIFETIME, Upstream, connect_context,
    open_json, seal_json,
};
use crate::context::Core;
use crate::crypto::hash::{constant_time_eq, secret_digest};
use crate::rng::RngExt;
use crate::services::upstream::{self, AuthorizeExtras, Provider, UpstreamError};
use crate::store::{ConnectRow, StoreError};
use crate::tenant::{Tenant, issuer_for_host};

/// Where the provider sends the browser back: Auth0's callback path, so
/// that what is registered at providers carries over.
fn callback_url(host: &str) -> String {
    format!("{}login/callback", issuer_for_host(host))
}

/// Where the browser goes after it brought its ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketOutcome {
    /// To the provider, with the cookie that binds it to the transaction.
    Provider { url: String, browser: String },
    /// Back to the app with an error (the provider cannot be reached).
    App(AppAnswer),
}

/// A redirect back to the app's `redirect_uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppAnswer {
    pub url: String,
}

/// Why a ticket or a callback is answered with a page rather than a
/// redirect to the app.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// No such live transaction (unknown, used, expired, forged, another
    /// host's).
    #[error("the link has expired or is not valid")]
    Expired,
    /// The callback came to a browser that did not start this link.
    #[error("this browser did not start the connection")]
    OtherBrowser,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<ConnectError> for CallbackError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Store(e) => CallbackError::Store(e),
            e => CallbackError::Internal(e.to_string()),
        }
    }
}

/// The browser brought `ticket` on `host`.
pub async fn open_ticket(
    core: &Core,
    tenant: &Tenant,
    host: &str,
    ticket: &str,
) -> Result<TicketOutcome, CallbackError> {
    if ticket.is_empty() || ticket.len() > MAX_SECRET {
        return Err(CallbackError::Expired);
    }
    let now = core.clock.now();
    let (session, row) = core
        .store
        .connect_by_ticket(&tenant.id, &secret_digest(ticket), now)
        .await?
        .filter(|(_, row)| row.host == host)
        .ok_or(CallbackError::Expired)?;
    let provider = match provider_of(core, tenant, &row) {
        Ok(p) => p,
        Err(e) => {
            return Ok(TicketOutcome::App(
                failed(core, tenant, &session, &row, &e).await?,
            ));
        }
    };
    let extras = AuthorizeExtras {
        params: row.authorization_params.clone(),
    };
    let request = match upstream::authorization_request(
        core,
        &provider,
        &callback_url(host),
        &row.scopes,
        &extras,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            return Ok(TicketOutcome::App(
                failed(core, tenant, &session, &row, &e).await?,
            ));
        }
    };
    let browser = core.rng.token(32);
    let sealed = seal_json(
        core,
        &connect_context(&tenant.id, &session, "upstream"),
        &Upstream {
            code_verifier: request.code_verifier,
            nonce: request.nonce,
            scopes: request.scopes,
        },
    )?;
    let used = core
        .store
        .connect_redirected(
            &tenant.id,
            &session,
            &secret_digest(&request.state),
            &secret_digest(&browser),
            &sealed,
            now + UPSTREAM_LIFETIME,
            now,
        )
        .await?;
    if !used {
        return Err(CallbackError::Expired);
    }
    Ok(TicketOutcome::Provider {
        url: request.url,
        browser,
    })
}

/// The provider's answer at the callback.
#[derive(Debug, Clone, Copy, Default)]
pub struct Callback<'a> {
    pub state: Option<&'a str>,
    pub code: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
}

/// The provider called back on `host`, in a browser holding `browser` (its
/// cookie, if any).
pub async fn callback(
    core: &Core,
    tenant: &Tenant,
    host: &str,
    answer: Callback<'_>,
    browser: Option<&str>,
) -> Result<AppAnswer, CallbackError> {
    let state = answer
        .state
        .filter(|s| !s.is_empty() && s.len() <= MAX_SECRET)
        .ok_or(CallbackError::Expired)?;
    let now = core.clock.now();
    let (session, row) = core
        .store
        .connect_by_state(&tenant.id, &secret_digest(state), now)
        .await?
        .filter(|(_, row)| row.host == host)
        .ok_or(CallbackError::Expired)?;
    let bound = match (browser, &row.browser_digest) {
        (Some(cookie), Some(expected)) if cookie.len() <= MAX_SECRET => {
            constant_time_eq(secret_digest(cookie).as_bytes(), expected.as_bytes())
        }
        _ => false,
    };
    if !bound {
        return Err(CallbackError::OtherBrowser);
    }
    if !core
        .store
        .claim_connect_callback(&tenant.id, &session, now)
        .await?
    {
        return Err(CallbackError::Expired);
    }
    match exchange(core, tenant, host, &session, &row, &answer).await {
        Ok(answer) => Ok(answer),
        Err(Failure::Upstream(e)) => Ok(failed(core, tenant, &session, &row, &e).await?),
        Err(Failure::Denied { error, description }) => {
            core.store.delete_connect(&tenant.id, &session).await?;
            Ok(to_app(
                &row,
                &[("error", &error), ("error_description", &description)],
            ))
        }
        Err(Failure::Ours(e)) => {
            core.store.delete_connect(&tenant.id, &session).await?;
            Err(e.into())
        }
    }
}

enum Failure {
    /// The provider said no (`error` in its answer).
    Denied {
        error: String,
        description: String,
    },
    Upstream(UpstreamError),
    Ours(ConnectError),
}

impl From<ConnectError> for Failure {
    fn from(e: ConnectError) -> Self {
        Failure::Ours(e)
    }
}

impl From<UpstreamError> for Failure {
    fn from(e: UpstreamError) -> Self {
        Failure::Upstream(e)
    }
}

/// The claimed callback: the code exchanged and the account identified,
/// the result sealed, the connect code issued.
async fn exchange(
    core: &Core,
    tenant: &Tenant,
    host: &str,
    session: &str,
    row: &ConnectRow,
    answer: &Callback<'_>,
) -> Result<AppAnswer, Failure> {
    if let Some(error) = answer.error {
        return Err(Failure::Denied {
            error: oauth_error_code(error),
            description: answer
                .error_description
                .map(upstream::quoted)
                .unwrap_or_else(|| "The identity provider refused.".into()),
        });
    }
    let code = answer
        .code
        .filter(|c| !c.is_empty() && c.len() <= 4096)
        .ok_or_else(|| UpstreamError::Protocol("it called back without a code".into()))?;
    let sent: Upstream = open_json(
        core,
        &connect_context(&tenant.id, session, "upstream"),
        row.sealed_upstream.as_deref(),
    )?;
    let provider = provider_of(core, tenant, row)?;
    let tokens = upstream::exchange_code(
        core,
        &provider,
        code,
        &callback_url(host),
        &sent.code_verifier,
    )
    .await?;
    let who = upstream::identify(core, &provider, &tokens, sent.nonce.as_deref()).await?;
    let connect_code = core.rng.token(32);
    let pending = Pending {
        subject: who.subject,
        scopes: tokens.scopes.clone().unwrap_or(sent.scopes),
        tokens,
    };
    let sealed = seal_json(
        core,
        &connect_context(&tenant.id, session, "result"),
        &pending,
    )?;
    let stored = core
        .store
        .connect_returned(
            &tenant.id,
            session,
            &secret_digest(&connect_code),
            &sealed,
            core.clock.now() + CODE_LIFETIME,
        )
        .await
        .map_err(ConnectError::from)?;
    if !stored {
        return Err(
            ConnectError::Internal("the transaction went during the exchange".into()).into(),
        );
    }
    Ok(to_app(row, &[("connect_code", &connect_code)]))
}

/// The transaction's provider, if its connection is still one the app may
/// connect.
fn provider_of(core: &Core, tenant: &Tenant, row: &ConnectRow) -> Result<Provider, UpstreamError> {
    let connection = tenant
        .upstream_connection(&row.connection)
        .filter(|c| c.connectable_from(&row.client_id))
        .ok_or_else(|| UpstreamError::Config("the connection is no longer available".into()))?;
    Provider::of(core, tenant, connection)
}

/// The provider failed: the transaction goes, the app hears why.
async fn failed(
    core: &Core,
    tenant: &Tenant,
    session: &str,
    row: &ConnectRow,
    e: &UpstreamError,
) -> Result<AppAnswer, StoreError> {
    tracing::warn!(tenant = %tenant.name, connection = %row.connection, error = %e, "connecting an account failed");
    core.store.delete_connect(&tenant.id, session).await?;
    let (error, description) = match e {
        UpstreamError::Refused { .. } => (
            "access_denied",
            "The identity provider refused to grant access.",
        ),
        UpstreamError::Unreachable(_) => (
            "temporarily_unavailable",
            "The identity provider could not be reached. Try again later.",
        ),
        UpstreamError::IdToken(_) | UpstreamError::Protocol(_) => (
            "access_denied",
            "The identity provider's answer could not be verified.",
        ),
        UpstreamError::Config(_) => ("server_error", "The connection is not available."),
    };
    Ok(to_app(
        row,
        &[("error", error), ("error_description", description)],
    ))
}

/// An OAuth error code as the app may see it: the provider's, if it is one
/// of RFC 6749's characters, else `access_denied`.
fn oauth_error_code(error: &str) -> String {
    let ok = !error.is_empty()
        && error.len() <= 64
        && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if ok {
        error.to_owned()
    } else {
        "access_denied".to_owned()
    }
}

/// The app's `redirect_uri` with `params` and the app's `state`.
fn to_app(row: &ConnectRow, params: &[(&str, &str)]) -> AppAnswer {
    let mut url = match url::Url::parse(&row.redirect_uri) {
        Ok(u) => u,
        // Checked at connect: one of the application's callbacks.
        Err(_) => {
            return AppAnswer {
                url: row.redirect_uri.clone(),
            };
        }
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(state) = &row.app_state {
            q.append_pair("state", state);
        }
    }
    AppAnswer { url: url.into() }
}
