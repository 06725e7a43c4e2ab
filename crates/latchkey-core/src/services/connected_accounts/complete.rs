//! `POST /me/v1/connected-accounts/complete`: the transaction of the
//! `auth_session`, made by this user from this application, whose browser
//! came back with this `connect_code` to this `redirect_uri`, with the
//! verifier of the app's PKCE challenge. A wrong code, redirect URI or
//! verifier counts an attempt (the fifth ends the transaction); the account
//! is stored in the same store transaction that consumes it, so a
//! `connect_code` completes once.

use super::{
    Account, ConnectError, MAX_ATTEMPTS, Pending, audited, connect_context, open_json, seal_tokens,
};
use crate::context::Core;
use crate::crypto::hash::{constant_time_eq, secret_digest, sha256_b64url};
use crate::rng::RngExt;
use crate::services::enrollment::Who;
use crate::store::{AccountStatus, ConnectStage, ConnectedAccountRow, FinishConnect};

/// What the app sends (validated against the document's schema already).
#[derive(Debug, Clone, Copy)]
pub struct CompleteRequest<'a> {
    pub auth_session: &'a str,
    pub connect_code: &'a str,
    pub redirect_uri: &'a str,
    pub code_verifier: Option<&'a str>,
}

const UNKNOWN: &str = "The auth_session is invalid or has expired.";

pub async fn complete(
    core: &Core,
    who: &Who<'_>,
    ip: &str,
    req: CompleteRequest<'_>,
) -> Result<Account, ConnectError> {
    let tenant = who.tenant;
    let now = core.clock.now();
    let session = secret_digest(req.auth_session);
    // Another user's or application's transaction is as unknown as none.
    let row = core
        .store
        .connect(&tenant.id, &session, now)
        .await?
        .filter(|r| r.user_id == who.user_id && r.client_id == who.client_id)
        .ok_or_else(|| ConnectError::Invalid(UNKNOWN.into()))?;
    if row.stage != ConnectStage::Returned {
        return Err(ConnectError::Invalid(
            "The account has not been connected at the identity provider yet.".into(),
        ));
    }
    let code_ok = row.code_digest.as_deref().is_some_and(|d| {
        constant_time_eq(secret_digest(req.connect_code).as_bytes(), d.as_bytes())
    });
    let refusal = if !code_ok {
        Some(ConnectError::Invalid("The connect_code is invalid.".into()))
    } else if req.redirect_uri != row.redirect_uri {
        Some(ConnectError::Field {
            pointer: "/redirect_uri",
            detail: "is not the redirect_uri of the connect request".into(),
        })
    } else {
        match (&row.code_challenge, req.code_verifier) {
            (Some(_), None) => Some(ConnectError::Field {
                pointer: "/code_verifier",
                detail: "is required: the connect request sent a code_challenge".into(),
            }),
            (Some(challenge), Some(verifier))
                if !constant_time_eq(
                    sha256_b64url(verifier.as_bytes()).as_bytes(),
                    challenge.as_bytes(),
                ) =>
            {
                Some(ConnectError::Field {
                    pointer: "/code_verifier",
                    detail: "does not match the code_challenge".into(),
                })
            }
            _ => None,
        }
    };
    if let Some(refusal) = refusal {
        core.store
            .connect_failed(&tenant.id, &session, MAX_ATTEMPTS)
            .await?;
        return Err(refusal);
    }
    let pending: Pending = open_json(
        core,
        &connect_context(&tenant.id, &session, "result"),
        row.sealed_result.as_deref(),
    )?;
    let mut account = ConnectedAccountRow {
        id: format!("cac_{}", core.rng.alnum(22)),
        user_id: row.user_id.clone(),
        connection: row.connection.clone(),
        subject: pending.subject,
        scopes: pending.scopes,
        tokens: Default::default(),
        status: AccountStatus::Active,
        version: 0,
        refresh_lock_until: None,
        created_at: now,
        updated_at: now,
    };
    account.tokens = seal_tokens(core, &tenant.id, &account, &pending.tokens);
    let code = secret_digest(req.connect_code);
    let stored = match core
        .store
        .finish_connect(&tenant.id, &session, &code, &account, now)
        .await?
    {
        FinishConnect::Done(stored) => stored,
        FinishConnect::Gone => return Err(ConnectError::Invalid(UNKNOWN.into())),
        FinishConnect::Conflict => {
            return Err(ConnectError::Conflict(format!(
                "This {} account is connected to another user.",
                row.connection
            )));
        }
    };
    audited(core, who, ip, "connect", &stored, None).await;
    Ok(Account::from(&*stored))
}
