//! The Token Vault grant (Auth0's
//! `urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token`):
//! a user's latchkey token exchanged for the access token of their account
//! at an upstream provider, as `connected_accounts` keeps it (refreshed
//! there when it has run out, once across nodes).
//!
//! The subject is the client's own refresh token, read and never spent (so
//! rotation may be on: the grant issues no latchkey token that a successor
//! would have to carry), or, for a Custom API Client, an access token issued
//! for its API. Either way the login behind it already met the MFA policy,
//! so none is asked again here.

use serde_json::json;

use super::{Bound, GrantError, TokenRequest, refresh_token};
use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::services::audit::{self, Actor};
use crate::services::connected_accounts::{self, Served};
use crate::services::tokens::{self, AccessTokenError, TokenResponse};
use crate::store::{ConnectedAccountRow, UserRow};
use crate::tenant::{AppType, Connection, Tenant};

/// The token type the grant answers (`requested_token_type` and
/// `issued_token_type`).
pub const FEDERATED_CONNECTION_ACCESS_TOKEN: &str =
    "http://auth0.com/oauth/token-type/federated-connection-access-token";

/// Tenant log events, as Auth0 names them: a successful and a failed
/// exchange at the Token Vault.
const SUCCEEDED: &str = "seta";
const FAILED: &str = "feta";

/// The grant's parameters.
pub struct TokenVault<'a> {
    pub subject: Subject<'a>,
    /// The upstream connection's name.
    pub connection: &'a str,
    /// Which of the user's accounts at the connection: its subject there.
    pub login_hint: Option<&'a str>,
    /// Scopes the answer must carry: at most the account's.
    pub scope: Option<Vec<String>>,
}

/// The user's latchkey token, by its `subject_token_type`.
pub enum Subject<'a> {
    RefreshToken(&'a str),
    AccessToken(&'a str),
}

/// Why a subject token identifies nobody: refused as `invalid_grant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAccessToken {
    /// Malformed, not signed by this tenant, or not a user's.
    Invalid,
    Expired,
    Revoked,
    WrongIssuer,
    /// Issued for another API than the Custom API Client's.
    OtherApi,
}

pub(super) async fn exchange(
    core: &Core,
    req: &TokenRequest<'_>,
    grant: &TokenVault<'_>,
) -> Result<TokenResponse, GrantError> {
    let connection = vault_connection(req, grant.connection)?;
    let user = subject_user(core, req, &grant.subject)
        .await
        .map_err(|e| match e {
            e @ (GrantError::Store(_) | GrantError::Internal(_)) => e,
            e => GrantError::SubjectRefused(Box::new(e)),
        })?;
    let actor = Actor {
        tenant_id: &req.tenant.id,
        client_id: &req.client.client_id,
        user_id: &user.user_id,
        ip: req.ip,
        user_agent: req.user_agent,
    };
    let served = serve(core, req.tenant, connection, &user, grant).await;
    let details = |subject: Option<&str>, description: &str| {
        json!({
            "connection": connection.name,
            "identity_user_id": subject,
            "description": description,
        })
    };
    match served {
        Ok((account, served)) => {
            let what = if served.refreshed {
                "refreshed at the provider"
            } else {
                "as stored"
            };
            let d = details(Some(&account.subject), what);
            audit::record(core, &actor, SUCCEEDED, d).await;
            Ok(TokenResponse {
                access_token: served.access_token,
                refresh_token: None,
                id_token: None,
                scope: served.scopes.join(" "),
                expires_in: served.expires_in,
                token_type: "Bearer",
                issued_token_type: Some(FEDERATED_CONNECTION_ACCESS_TOKEN),
                recovery_code: None,
                user_id: None,
            })
        }
        Err((subject, e)) => {
            let d = details(subject.as_deref(), &failure(&e));
            audit::record(core, &actor, FAILED, d).await;
            Err(e)
        }
    }
}

/// The account's token, or why not (with the account's subject when one
/// was found).
async fn serve(
    core: &Core,
    tenant: &Tenant,
    connection: &Connection,
    user: &UserRow,
    grant: &TokenVault<'_>,
) -> Result<(ConnectedAccountRow, Served), (Option<String>, GrantError)> {
    let account = account(core, tenant, &user.user_id, connection, grant.login_hint)
        .await
        .map_err(|e| (None, e))?;
    let subject = Some(account.subject.clone());
    if let Some(extra) = grant
        .scope
        .iter()
        .flatten()
        .find(|s| !account.scopes.contains(s))
    {
        return Err((subject, GrantError::VaultScope(extra.clone())));
    }
    match connected_accounts::access_token(core, tenant, connection, &account).await {
        Ok(served) => Ok((account, served)),
        Err(e) => Err((subject, GrantError::Vault(e))),
    }
}

/// What a failure is called in the tenant log.
fn failure(e: &GrantError) -> String {
    match e {
        GrantError::Vault(v) => v.to_string(),
        GrantError::NoConnectedAccount => "no connected account at the connection".into(),
        GrantError::SeveralAccounts(_) => "several accounts and no login_hint".into(),
        GrantError::VaultScope(s) => format!("the scope {s:?} was not granted to the account"),
        _ => "the exchange failed".into(),
    }
}

/// The connection asked for: an upstream connection of the tenant holding
/// connected accounts, enabled for the client.
fn vault_connection<'t>(req: &TokenRequest<'t>, name: &str) -> Result<&'t Connection, GrantError> {
    let connection = req
        .tenant
        .config
        .connections
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| GrantError::UnknownConnection(name.chars().take(100).collect()))?;
    if !connection.strategy.is_upstream() || !connection.connected_accounts.active {
        return Err(GrantError::NotAVaultConnection(connection.name.clone()));
    }
    if !connection.connectable_from(&req.client.client_id) {
        return Err(GrantError::ClientNotEnabled(connection.name.clone()));
    }
    Ok(connection)
}

/// The user the subject token stands for: an existing, unblocked user of
/// a token minted on this host for this client (a refresh token) or for
/// this Custom API Client's API (an access token).
async fn subject_user(
    core: &Core,
    req: &TokenRequest<'_>,
    subject: &Subject<'_>,
) -> Result<UserRow, GrantError> {
    match subject {
        Subject::RefreshToken(token) => refresh_token_user(core, req, token).await,
        Subject::AccessToken(token) => access_token_user(core, req, token).await,
    }
}

/// The refresh token's user. It is read, never spent: a token rotated
/// already is reuse, and revokes its grant as the refresh grant does.
async fn refresh_token_user(
    core: &Core,
    req: &TokenRequest<'_>,
    token: &str,
) -> Result<UserRow, GrantError> {
    let now = core.clock.now();
    let (row, user) = refresh_token::presented(core, req, &secret_digest(token), now).await?;
    req.proved_key(row.dpop_jkt.as_deref(), Bound::RefreshToken)?;
    Ok(user)
}

/// The access token's user, for a Custom API Client (`resource_server`)
/// only, and only of a token issued for its API (Auth0's access token
/// exchange). A token bound to a DPoP key is taken without a proof by it:
/// the API it was presented to checked that, and the key is its caller's.
async fn access_token_user(
    core: &Core,
    req: &TokenRequest<'_>,
    token: &str,
) -> Result<UserRow, GrantError> {
    let client = req.client;
    let api = client
        .resource_server_identifier
        .as_deref()
        .filter(|_| client.app_type == AppType::ResourceServer)
        .ok_or(GrantError::AccessTokenNotAllowed)?;
    let verified = tokens::verify_access_token(core, req.tenant, req.host, token)
        .await
        .map_err(|e| match e {
            AccessTokenError::Invalid => GrantError::BadAccessToken(BadAccessToken::Invalid),
            AccessTokenError::Expired => GrantError::BadAccessToken(BadAccessToken::Expired),
            AccessTokenError::WrongIssuer => {
                GrantError::BadAccessToken(BadAccessToken::WrongIssuer)
            }
            AccessTokenError::Revoked => GrantError::BadAccessToken(BadAccessToken::Revoked),
            AccessTokenError::Unavailable => GrantError::Store(
                crate::store::StoreError::Unavailable("reading a grant".into()),
            ),
            AccessTokenError::Internal => GrantError::Internal("verifying an access token".into()),
        })?;
    if verified.claims.get("gty").and_then(|g| g.as_str()) == Some("client-credentials") {
        return Err(GrantError::BadAccessToken(BadAccessToken::Invalid));
    }
    if !verified.audiences.iter().any(|a| a == api) {
        return Err(GrantError::BadAccessToken(BadAccessToken::OtherApi));
    }
    req.user(core, &verified.sub).await
}

/// The user's account at the connection: the one `login_hint` names, or
/// the only one.
async fn account(
    core: &Core,
    tenant: &Tenant,
    user_id: &str,
    connection: &Connection,
    login_hint: Option<&str>,
) -> Result<ConnectedAccountRow, GrantError> {
    let store = &core.store;
    if let Some(subject) = login_hint {
        return store
            .connected_account_by_subject(&tenant.id, user_id, &connection.name, subject)
            .await?
            .ok_or(GrantError::NoConnectedAccount);
    }
    let names = [connection.name.clone()];
    let mut found = store
        .connected_accounts(&tenant.id, user_id, &names, None, 2)
        .await?;
    match found.len() {
        0 => Err(GrantError::NoConnectedAccount),
        1 => Ok(found.remove(0)),
        _ => Err(GrantError::SeveralAccounts(connection.name.clone())),
    }
}
