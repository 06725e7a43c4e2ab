//! Logging in with an upstream identity provider: a login transaction (the
//! hosted page's button, or `connection=` on `/authorize`) goes to the
//! provider with latchkey's own state, nonce and PKCE verifier, and comes
//! back to `{issuer}login/callback`, where this decides what the callback
//! means: whose login it is (the state, bound to the transaction and to the
//! browser holding it, spent once, short-lived), what the provider said
//! (the code exchanged, the identity verified), and who the user is
//! (`account.rs`). What follows (the MFA policy, the session, the code) is
//! `login_flow`'s, as after a password.

mod account;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::authorize::{AuthorizeRequest, Reply};
use super::login::attempt;
use super::login_flow::{self, FlowError};
use super::upstream::{self, AuthorizeExtras, Provider, UpstreamError, quoted};
use crate::context::Core;
use crate::crypto::hash::{constant_time_eq, secret_digest};
use crate::store::{StoreError, UpstreamLoginRow, UserRow};
use crate::tenant::{Connection, Tenant, issuer_for_host};
use account::{Account, Resolved};

pub use account::identities;

/// How long the provider has to send the browser back.
pub const UPSTREAM_TTL: i64 = 10 * 60;
/// The longest `state` looked up.
const MAX_STATE: usize = 128;

/// Auth0's log event types: a login, a sign-up (a user made by a login),
/// a failed login.
pub const LOGIN_SUCCEEDED: &str = "s";
pub const SIGNED_UP: &str = "ss";
pub const LOGIN_FAILED: &str = "f";

/// The callback every provider sends the browser back to.
pub fn callback_uri(host: &str) -> String {
    issuer_for_host(host) + "login/callback"
}

/// Why the browser cannot be sent to the provider.
#[derive(Debug)]
pub enum StartError {
    /// No such connection for this application: unknown, not enabled for
    /// it, or not one to log in with.
    NotEnabled,
    /// The provider could not be asked (its discovery document), or the
    /// connection is misconfigured.
    Upstream(UpstreamError),
    Store(StoreError),
}

impl From<StoreError> for StartError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// What is sealed beside the state: what checks the provider's answer.
#[derive(Serialize, Deserialize)]
struct Secrets {
    code_verifier: String,
    nonce: Option<String>,
}

fn sealing_context(tenant: &Tenant, state_digest: &str) -> String {
    format!("upstream-login:{}:{state_digest}", tenant.id)
}

/// The connection `name` if the application may log in with it.
pub fn login_connection<'t>(
    tenant: &'t Tenant,
    client_id: &str,
    name: &str,
) -> Option<&'t Connection> {
    tenant
        .upstream_connection(name)
        .filter(|c| c.login_from(client_id))
}

/// The provider's authorization URL for the login transaction `tx` (its
/// request `req`), answering at this host's callback. The state goes to
/// the store as a digest, the verifier and nonce sealed.
pub async fn start(
    core: &Core,
    tenant: &Tenant,
    host: &str,
    tx: &str,
    req: &AuthorizeRequest,
    connection: &str,
) -> Result<String, StartError> {
    let connection =
        login_connection(tenant, &req.client_id, connection).ok_or(StartError::NotEnabled)?;
    let provider = Provider::of(core, tenant, connection).map_err(StartError::Upstream)?;
    let mut extras = AuthorizeExtras::default();
    if let Some(hint) = req.login_hint.as_ref().filter(|_| provider.is_openid()) {
        extras.params.push(("login_hint".into(), hint.clone()));
    }
    let sent = upstream::authorization_request(core, &provider, &callback_uri(host), &[], &extras)
        .await
        .map_err(StartError::Upstream)?;
    let now = core.clock.now();
    let state_digest = secret_digest(&sent.state);
    let secrets = serde_json::to_vec(&Secrets {
        code_verifier: sent.code_verifier,
        nonce: sent.nonce,
    })
    .map_err(|e| StartError::Store(StoreError::Corrupt(e.to_string())))?;
    let row = UpstreamLoginRow {
        tx_digest: secret_digest(tx),
        connection: connection.name.clone(),
        host: host.to_owned(),
        sealed_secrets: core.sealer.seal(
            &*core.rng,
            &sealing_context(tenant, &state_digest),
            &secrets,
        ),
        created_at: now,
        expires_at: now + UPSTREAM_TTL,
    };
    core.store
        .create_upstream_login(&tenant.id, &state_digest, &row)
        .await?;
    Ok(sent.url)
}

/// Whether `state` is that of a login waiting for its provider (the
/// callback's dispatch: other flows send their own states there).
pub async fn owns(core: &Core, tenant: &Tenant, state: &str) -> Result<bool, StoreError> {
    if state.is_empty() || state.len() > MAX_STATE {
        return Ok(false);
    }
    let found = core
        .store
        .upstream_login(&tenant.id, &secret_digest(state), core.clock.now())
        .await?;
    Ok(found.is_some())
}

/// The provider's callback, as the browser brought it.
#[derive(Debug, Clone, Copy)]
pub struct Callback<'a> {
    pub host: &'a str,
    pub state: &'a str,
    pub code: Option<&'a str>,
    /// RFC 9207's `iss`, when the provider sends it.
    pub iss: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
    /// The browser's login transaction (its cookie).
    pub tx_cookie: Option<&'a str>,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

/// Signed in at the provider: the login goes on with this user (the MFA
/// policy next), under its transaction `tx`.
#[derive(Debug)]
pub struct SignedIn {
    pub tx: String,
    pub req: AuthorizeRequest,
    pub user: UserRow,
    /// What the login established (nothing of the provider's is taken
    /// for a factor of latchkey's).
    pub amr: Vec<String>,
}

/// What a callback comes to.
#[derive(Debug)]
pub enum Returned {
    SignedIn(Box<SignedIn>),
    /// The login ends with an error for the application, given back in
    /// its response mode (its transaction is over).
    Refused {
        reply: Reply,
        error: String,
        description: String,
    },
}

/// Why a callback is answered with a page rather than to the application.
#[derive(Debug)]
pub enum CallbackError {
    /// No login waits for this state in this browser: unknown, spent,
    /// expired, another browser's, another host's; or its transaction is
    /// gone.
    Expired,
    /// Too many failed logins from this IP: the seconds to wait.
    Throttled(i64),
    Store(StoreError),
    Internal(String),
}

impl From<StoreError> for CallbackError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<FlowError> for CallbackError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Expired => Self::Expired,
            FlowError::Store(e) => Self::Store(e),
            FlowError::Internal(m) => Self::Internal(m),
        }
    }
}

/// Why a provider's login gives no user.
#[derive(Debug)]
pub(crate) enum LoginRefusal {
    Blocked(String),
    Store(StoreError),
}

impl From<StoreError> for LoginRefusal {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Decides what the callback of a login means.
pub async fn callback(
    core: &Core,
    tenant: &Tenant,
    cb: &Callback<'_>,
) -> Result<Returned, CallbackError> {
    let (tx, row) = claim(core, tenant, cb).await?;
    let req = login_flow::load(core, tenant, &tx).await?;
    let refused = |error: &str, description: &str| Returned::Refused {
        reply: Reply::to(&req),
        error: error.to_owned(),
        description: description.to_owned(),
    };
    let Some(connection) = login_connection(tenant, &req.client_id, &row.connection) else {
        end(core, tenant, &row).await?;
        return Ok(refused("invalid_request", "the connection was disabled"));
    };
    let log = Log {
        core,
        tenant,
        cb,
        client_id: &req.client_id,
        connection,
    };
    if let Some(error) = cb.error {
        // The user refused at the provider, or the provider refused them.
        let (error, description) = provider_error(error, cb.error_description);
        log.failed(None, &format!("{error}: {description}")).await;
        end(core, tenant, &row).await?;
        return Ok(refused(&error, &description));
    }
    let counted = attempt(core, tenant, cb.ip).map_err(CallbackError::Throttled)?;
    let who = match identified(core, tenant, connection, &row, cb).await {
        Ok(who) => who,
        Err(e) => {
            tracing::warn!(tenant = %tenant.name, connection = %connection.name, error = %e,
                "upstream login refused");
            match e {
                UpstreamError::Unreachable(_) | UpstreamError::Config(_) => counted.not_made(),
                _ => counted.failed(),
            }
            log.failed(None, &e.to_string()).await;
            end(core, tenant, &row).await?;
            let (error, description) = upstream_failure(&e);
            return Ok(refused(error, description));
        }
    };
    let account = Account::of(connection, &who);
    let resolved = match account::resolve(core, tenant, connection, &account).await {
        Ok(r) => r,
        Err(LoginRefusal::Blocked(user_id)) => {
            counted.passed();
            log.failed(Some(&user_id), "user is blocked").await;
            end(core, tenant, &row).await?;
            return Ok(refused("unauthorized", "user is blocked"));
        }
        Err(LoginRefusal::Store(e)) => {
            counted.not_made();
            return Err(e.into());
        }
    };
    counted.passed();
    let user = resolved.user().clone();
    if let Resolved::Created(_) = resolved {
        log.event(SIGNED_UP, Some(&user.user_id), json!({})).await;
    }
    let linked = matches!(resolved, Resolved::Linked(_));
    log.event(
        LOGIN_SUCCEEDED,
        Some(&user.user_id),
        json!({ "linked": linked }),
    )
    .await;
    Ok(Returned::SignedIn(Box::new(SignedIn {
        tx,
        req,
        user,
        amr: Vec::new(),
    })))
}

/// The login waiting for this callback, taken: its state known and live,
/// the callback in the browser holding its transaction and on its host,
/// then spent (a replay, or a race with another callback, finds nothing).
/// The transaction's ID, from the browser's cookie, and the row.
async fn claim(
    core: &Core,
    tenant: &Tenant,
    cb: &Callback<'_>,
) -> Result<(String, UpstreamLoginRow), CallbackError> {
    if cb.state.is_empty() || cb.state.len() > MAX_STATE {
        return Err(CallbackError::Expired);
    }
    let now = core.clock.now();
    let state_digest = secret_digest(cb.state);
    let row = core
        .store
        .upstream_login(&tenant.id, &state_digest, now)
        .await?
        .ok_or(CallbackError::Expired)?;
    let tx = cb.tx_cookie.filter(|tx| tx.len() <= MAX_STATE);
    let this_browser = tx
        .is_some_and(|tx| constant_time_eq(secret_digest(tx).as_bytes(), row.tx_digest.as_bytes()));
    if !this_browser || !cb.host.eq_ignore_ascii_case(&row.host) {
        tracing::warn!(tenant = %tenant.name, connection = %row.connection,
            "an upstream callback came in a browser or on a host other than its login's");
        return Err(CallbackError::Expired);
    }
    if !core
        .store
        .spend_upstream_login(&tenant.id, &state_digest, now)
        .await?
    {
        return Err(CallbackError::Expired);
    }
    let tx = tx.map(str::to_owned).unwrap_or_default();
    Ok((tx, row))
}

/// The account the provider signed in: the code exchanged with the
/// verifier sent, the identity read (the ID token verified against the
/// nonce sent, or the userinfo).
async fn identified(
    core: &Core,
    tenant: &Tenant,
    connection: &Connection,
    row: &UpstreamLoginRow,
    cb: &Callback<'_>,
) -> Result<upstream::Identity, UpstreamError> {
    let state_digest = secret_digest(cb.state);
    let secrets: Secrets = core
        .sealer
        .open(&sealing_context(tenant, &state_digest), &row.sealed_secrets)
        .ok()
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .ok_or_else(|| UpstreamError::Config("the login's secrets do not open".into()))?;
    let code = cb
        .code
        .filter(|c| !c.is_empty() && c.len() <= 4096)
        .ok_or_else(|| UpstreamError::Protocol("it sent the browser back without a code".into()))?;
    let provider = Provider::of(core, tenant, connection)?;
    if let Some(iss) = cb.iss {
        upstream::check_response_issuer(core, &provider, iss).await?;
    }
    let redirect_uri = callback_uri(&row.host);
    let tokens =
        upstream::exchange_code(core, &provider, code, &redirect_uri, &secrets.code_verifier)
            .await?;
    upstream::identify(core, &provider, &tokens, secrets.nonce.as_deref()).await
}

/// The login transaction ends: its application is told how.
async fn end(core: &Core, tenant: &Tenant, row: &UpstreamLoginRow) -> Result<(), StoreError> {
    core.store
        .delete_login_transaction(&tenant.id, &row.tx_digest)
        .await
}

/// A provider's `error` and `error_description`, as the application gets
/// them: an error code as OAuth writes them (else `access_denied`), and a
/// short printable description (else the code).
fn provider_error(error: &str, description: Option<&str>) -> (String, String) {
    let code = Some(error)
        .filter(|e| {
            !e.is_empty()
                && e.len() <= 64
                && e.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .unwrap_or("access_denied")
        .to_owned();
    let description = description
        .map(quoted)
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| code.clone());
    (code, description)
}

/// What the application is told, as `(error, error_description)`, when the
/// provider could not be asked or its answer did not give an account (the
/// details are in the logs).
pub fn upstream_failure(e: &UpstreamError) -> (&'static str, &'static str) {
    match e {
        UpstreamError::Unreachable(_) => (
            "temporarily_unavailable",
            "The identity provider could not be reached",
        ),
        UpstreamError::Refused { .. } => {
            ("access_denied", "The identity provider refused the login")
        }
        UpstreamError::IdToken(_) => (
            "access_denied",
            "The identity provider's answer could not be verified",
        ),
        UpstreamError::Protocol(_) => (
            "server_error",
            "The identity provider answered unexpectedly",
        ),
        UpstreamError::Config(_) => ("server_error", "The connection is not usable"),
    }
}

/// The tenant's log of one callback.
struct Log<'a> {
    core: &'a Core,
    tenant: &'a Tenant,
    cb: &'a Callback<'a>,
    client_id: &'a str,
    connection: &'a Connection,
}

impl Log<'_> {
    async fn event(&self, event_type: &str, user_id: Option<&str>, extra: serde_json::Value) {
        let actor = super::audit::Actor {
            tenant_id: &self.tenant.id,
            client_id: self.client_id,
            user_id: user_id.unwrap_or_default(),
            ip: self.cb.ip,
            user_agent: self.cb.user_agent,
        };
        let mut details = json!({
            "connection": self.connection.name,
            "strategy": self.connection.strategy.as_str(),
        });
        if let (Some(d), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra) {
            d.extend(extra);
        }
        super::audit::record_with(self.core, &actor, user_id, event_type, details).await;
    }

    async fn failed(&self, user_id: Option<&str>, why: &str) {
        self.event(LOGIN_FAILED, user_id, json!({ "error": why }))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_reach_the_app_sanitized() {
        assert_eq!(
            provider_error("access_denied", Some("End-User aborted interaction")),
            (
                "access_denied".into(),
                "End-User aborted interaction".into()
            )
        );
        assert_eq!(
            provider_error("consent_required", None),
            ("consent_required".into(), "consent_required".into())
        );
        let (code, description) = provider_error("<script>", Some("line\r\nbreak\u{0}<b>é"));
        assert_eq!(code, "access_denied");
        assert_eq!(description, "linebreak<b>");
        assert_eq!(provider_error(&"x".repeat(65), None).0, "access_denied");
    }

    #[test]
    fn the_callback_is_the_hosts() {
        assert_eq!(
            callback_uri("localhost:3000"),
            "http://localhost:3000/login/callback"
        );
        assert_eq!(
            callback_uri("login.acme.test"),
            "https://login.acme.test/login/callback"
        );
    }
}
