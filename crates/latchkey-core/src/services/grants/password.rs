//! The password grants (`password`, `password-realm`): a username and
//! password checked by `services::login`, then a second factor when the
//! login needs one (`mfa_required` with an `mfa_token`), else a new grant.

use super::{GrantError, TokenRequest};
use crate::clock::Timestamp;
use crate::context::Core;
use crate::services::audit::{self, Entry, codes};
use crate::services::login::{self, LoginError, PasswordLogin};
use crate::services::mfa;
use crate::services::tokens::TokenResponse;
use crate::store::UserRow;

/// `grant_type=password`, or `password-realm` with its realm (a database
/// connection).
pub struct Password<'a> {
    pub realm: Option<&'a str>,
    pub username: &'a str,
    pub password: &'a str,
    pub scope: Vec<String>,
    pub audience: Option<&'a str>,
}

pub(super) async fn exchange(
    core: &Core,
    req: &TokenRequest<'_>,
    grant: &Password<'_>,
) -> Result<TokenResponse, GrantError> {
    let authenticated = login::authenticate(
        core,
        PasswordLogin {
            tenant: req.tenant,
            realm: grant.realm,
            username: grant.username,
            password: grant.password,
            ip: req.user_ip,
        },
    )
    .await;
    let user = match authenticated {
        Ok(user) => user,
        Err(e) => {
            log_failure(core, req, grant, &e).await;
            return Err(GrantError::Login(e));
        }
    };
    let granted = req.user_grant(&user, grant.audience, &grant.scope)?;
    let now = core.clock.now();
    second_factor_gate(core, req, &user, grant, "password", now).await?;
    let tokens = req
        .new_grant_tokens(
            core,
            &user,
            &granted,
            now,
            &["pwd".to_string()],
            Some("password"),
        )
        .await?;
    let entry = Entry {
        user_id: Some(&user.user_id),
        user_name: Some(&user.email),
        ..login_entry(req, grant)
    };
    audit::record_login(core, &req.actor(&user.user_id), codes::SUCCESS_LOGIN, entry).await;
    Ok(tokens)
}

/// The log entry's client and connection.
fn login_entry<'a>(req: &'a TokenRequest<'_>, grant: &'a Password<'_>) -> Entry<'a> {
    let connection = match grant.realm {
        Some(r) => req.tenant.database_connection(r),
        None => req.tenant.default_connection(),
    };
    Entry {
        client_name: Some(&req.client.name),
        connection: connection.map(|c| c.name.as_str()),
        ..Entry::default()
    }
}

/// A refused password in the tenant log: `fp` (a user's wrong password),
/// `fu` (nobody by that name), `f` (a blocked user), `limit_wc` (the
/// account blocked from this IP), `limit_mu` (the IP throttled). A
/// request that checked nothing (the hashing queue full, the store down,
/// an unknown realm) logs nothing.
async fn log_failure(core: &Core, req: &TokenRequest<'_>, grant: &Password<'_>, e: &LoginError) {
    let (code, user_id) = match e {
        LoginError::WrongCredentials(Some(id)) => (codes::WRONG_PASSWORD, Some(id.as_str())),
        LoginError::WrongCredentials(None) => (codes::UNKNOWN_USER, None),
        LoginError::Blocked(id) => (codes::FAILED_LOGIN, Some(id.as_str())),
        LoginError::TooManyAttempts(id) => (codes::BLOCKED_ACCOUNT, Some(id.as_str())),
        LoginError::Throttled(_) => (codes::BLOCKED_IP, None),
        LoginError::Busy | LoginError::UnknownConnection(_) | LoginError::Store(_) => return,
    };
    let entry = Entry {
        user_id,
        user_name: Some(grant.username),
        error: Some(e.to_string()),
        ..login_entry(req, grant)
    };
    let actor = req.actor(user_id.unwrap_or_default());
    audit::record_login(core, &actor, code, entry).await;
}

/// Answers `mfa_required` when this login needs a second factor the user
/// has (or, under an `always` policy, must enroll).
async fn second_factor_gate(
    core: &Core,
    req: &TokenRequest<'_>,
    user: &UserRow,
    grant: &Password<'_>,
    gty: &str,
    now: Timestamp,
) -> Result<(), GrantError> {
    if !mfa::required(req.tenant, req.host, req.client, grant.audience) {
        return Ok(());
    }
    let methods = mfa::factors_of(core, req.tenant, &user.user_id).await?;
    let factors = mfa::second_factors(&methods);
    let requirements = if factors.is_empty() {
        if !mfa::always(req.tenant, req.client) {
            // The Default Policy lets a user without a factor through.
            return Ok(());
        }
        serde_json::json!({ "enroll": mfa::enrollable(req.tenant) })
    } else {
        serde_json::json!({ "challenge": mfa::challenge_types(&factors) })
    };
    let pending = mfa::Pending {
        audience: grant.audience.map(str::to_string),
        scope: grant.scope.clone(),
        amr: vec!["pwd".to_string()],
        auth_time: now,
        gty: gty.to_string(),
    };
    let mfa_token = mfa::issue_token(core, req.tenant, req.client, &user.user_id, &pending).await?;
    Err(GrantError::MfaRequired {
        mfa_token,
        requirements,
    })
}
