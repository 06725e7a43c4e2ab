//! Who calls the MFA API's own endpoints (`GET /mfa/authenticators`,
//! `DELETE /mfa/authenticators/{id}`, `POST /mfa/associate`), and what they
//! do: the `mfa_token` of a login under way, or an access token for the MFA
//! API (`{issuer}mfa/`, Auth0's built-in API) carrying the operation's
//! scope (`read:authenticators`, `remove:authenticators`, `enroll`). Such a
//! token is good on its own host (its issuer), for its own user, and is
//! told from an `mfa_token` by its shape (a JWT; an `mfa_token` is
//! alphanumeric).

use serde_json::{Value, json};

use super::{MfaError, VERIFIED_EMAIL, api_factors, authenticators, factors_of, lookup};
use crate::context::Core;
use crate::services::audit;
use crate::services::methods::{self, MethodError};
use crate::services::tokens::{self, AccessTokenError};
use crate::store::StoreError;
use crate::tenant::{Client, Tenant, names_mfa_api};

/// What an MFA API call does, and the scope an access token needs for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    Remove,
    Enroll,
}

impl Operation {
    pub fn scope(self) -> &'static str {
        match self {
            Self::Read => "read:authenticators",
            Self::Remove => "remove:authenticators",
            Self::Enroll => "enroll",
        }
    }
}

/// What the caller presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A login's `mfa_token`.
    MfaToken,
    /// An access token for the MFA API: its scopes, its `amr`, its
    /// `auth_time` and its expiry.
    AccessToken {
        scopes: Vec<String>,
        amr: Vec<String>,
        auth_time: i64,
        expires_at: i64,
    },
}

/// A caller of the MFA API: the user it acts for and the client it was
/// issued to.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub client_id: String,
    pub credential: Credential,
}

#[derive(Debug)]
pub enum CallerError {
    /// Not a live credential of this host (`invalid_token`, 401).
    Invalid(&'static str),
    /// A credential without the operation's scope (`insufficient_scope`,
    /// 403): the scope it needs.
    InsufficientScope(&'static str),
    Mfa(MfaError),
}

impl From<StoreError> for CallerError {
    fn from(e: StoreError) -> Self {
        Self::Mfa(MfaError::Store(e))
    }
}

/// Whether `token` has a JWT's shape (three dot-separated parts).
fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// The caller behind `token` for `op` on `host`. An `mfa_token` lists and
/// enrolls (as Auth0's does) but never removes: removing needs an access
/// token, whose user has passed the second factor if they had one.
pub async fn caller(
    state: &Core,
    tenant: &Tenant,
    host: &str,
    token: &str,
    op: Operation,
) -> Result<Caller, CallerError> {
    if !is_jwt(token) {
        if op == Operation::Remove {
            return Err(CallerError::InsufficientScope(op.scope()));
        }
        let (row, _) = lookup(state, tenant, token, None)
            .await
            .map_err(|e| match e {
                MfaError::Store(_) | MfaError::Internal(_) => CallerError::Mfa(e),
                _ => CallerError::Invalid(
                    "The mfa_token is invalid, has expired or was already used.",
                ),
            })?;
        return Ok(Caller {
            user_id: row.user_id,
            client_id: row.client_id,
            credential: Credential::MfaToken,
        });
    }
    let at = match tokens::verify_access_token(state, tenant, host, token).await {
        Ok(at) => at,
        Err(AccessTokenError::Expired) => {
            return Err(CallerError::Invalid("The token has expired."));
        }
        Err(AccessTokenError::Unavailable) => {
            return Err(CallerError::Mfa(MfaError::Store(StoreError::Unavailable(
                "verifying a token".into(),
            ))));
        }
        Err(AccessTokenError::Internal) => {
            return Err(CallerError::Mfa(MfaError::Internal(
                "verifying a token".into(),
            )));
        }
        Err(_) => return Err(CallerError::Invalid("The token is invalid.")),
    };
    if !at.audiences.iter().any(|a| names_mfa_api(host, a)) {
        return Err(CallerError::Invalid("The token is not for the MFA API."));
    }
    // A token bound to a DPoP key is not accepted as a bare bearer token.
    if at.claims.contains_key("cnf") {
        return Err(CallerError::Invalid(
            "A DPoP-bound token cannot be used here.",
        ));
    }
    if !at.scopes.iter().any(|s| s == op.scope()) {
        return Err(CallerError::InsufficientScope(op.scope()));
    }
    let client_id = at
        .claims
        .get("azp")
        .and_then(Value::as_str)
        .filter(|c| tenant.client(c).is_some())
        .ok_or(CallerError::Invalid(
            "The token's application no longer exists.",
        ))?;
    if crate::services::login_flow::active_user(state, tenant, &at.sub)
        .await?
        .is_none()
    {
        return Err(CallerError::Invalid(
            "The token's user no longer exists or is blocked.",
        ));
    }
    let amr = at
        .claims
        .get("amr")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let now = state.clock.now();
    Ok(Caller {
        user_id: at.sub.clone(),
        client_id: client_id.to_string(),
        credential: Credential::AccessToken {
            scopes: at.scopes.clone(),
            amr,
            auth_time: at
                .claims
                .get("auth_time")
                .and_then(Value::as_i64)
                .unwrap_or(now),
            expires_at: at.claims.get("exp").and_then(Value::as_i64).unwrap_or(now),
        },
    })
}

/// `GET /mfa/authenticators`: the caller's authenticators as Auth0 lists
/// them.
pub async fn list(
    state: &Core,
    tenant: &Tenant,
    caller: &Caller,
) -> Result<Vec<Value>, StoreError> {
    let methods = factors_of(state, tenant, &caller.user_id).await?;
    Ok(authenticators(&api_factors(&methods)))
}

#[derive(Debug)]
pub enum RemoveError {
    /// Not one of the caller's authenticators.
    NotFound,
    /// One that cannot be removed here (the verified email address).
    Refused(String),
    Store(StoreError),
}

/// `DELETE /mfa/authenticators/{id}`: removes one of the caller's
/// authenticators, one the MFA API lists (a password or a passkey is not
/// one), and logs `gd_unenroll`.
pub async fn remove(
    state: &Core,
    tenant: &Tenant,
    caller: &Caller,
    client: &Client,
    from: (&str, &str),
    id: &str,
) -> Result<(), RemoveError> {
    let methods = factors_of(state, tenant, &caller.user_id)
        .await
        .map_err(RemoveError::Store)?;
    let Some(method) = api_factors(&methods).into_iter().find(|m| m.id == id) else {
        return Err(RemoveError::NotFound);
    };
    if method.id == VERIFIED_EMAIL {
        return Err(RemoveError::Refused(
            "This authenticator is the user's verified email address: it is not removed here."
                .into(),
        ));
    }
    let kind = method.method_type;
    match methods::delete(state, &tenant.id, &caller.user_id, id).await {
        Ok(_) => {}
        Err(MethodError::NotFound) => return Err(RemoveError::NotFound),
        Err(MethodError::Invalid(m) | MethodError::Conflict(m)) => {
            return Err(RemoveError::Refused(m));
        }
        Err(MethodError::Store(e)) => return Err(RemoveError::Store(e)),
    }
    let actor = audit::Actor {
        tenant_id: &tenant.id,
        client_id: &client.client_id,
        user_id: &caller.user_id,
        ip: from.0,
        user_agent: from.1,
    };
    let details = json!({ "factor": kind.as_str(), "authenticator_id": id, "via": "mfa_api" });
    audit::record(state, &actor, "gd_unenroll", details).await;
    Ok(())
}
