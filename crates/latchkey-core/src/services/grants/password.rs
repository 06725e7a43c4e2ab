//! The password grants (`password`, `password-realm`): a username and
//! password checked by `services::login`, then a second factor when the
//! login needs one (`mfa_required` with an `mfa_token`), else a new grant.

use super::{GrantError, TokenRequest};
use crate::clock::Timestamp;
use crate::context::Core;
use crate::services::login::{self, PasswordLogin};
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
            let from = origin(req);
            login::log_refused(core, req.tenant, &from, grant.realm, grant.username, &e).await;
            return Err(GrantError::Login(e));
        }
    };
    let granted = req.user_grant(&user, grant.audience, &grant.scope)?;
    let now = core.clock.now();
    let first = FirstFactor {
        audience: grant.audience,
        scope: &grant.scope,
        amr: "pwd",
        gty: "password",
    };
    second_factor_gate(core, req, &user, &first, now).await?;
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
    login::log_signed_in(core, req.tenant, &origin(req), grant.realm, &user).await;
    Ok(tokens)
}

/// Where the grant was asked from.
pub(super) fn origin<'a>(req: &'a TokenRequest<'_>) -> login::Origin<'a> {
    login::Origin {
        client: req.client,
        ip: req.user_ip,
        user_agent: req.user_agent,
    }
}

/// What a first factor asked for, and established.
pub(super) struct FirstFactor<'a> {
    pub(super) audience: Option<&'a str>,
    pub(super) scope: &'a [String],
    /// Its `amr` (`pwd`, `otp`).
    pub(super) amr: &'a str,
    /// The grant that authenticated it.
    pub(super) gty: &'a str,
}

/// Answers `mfa_required` when this login needs a second factor the user
/// has (or, under an `always` policy, must enroll).
pub(super) async fn second_factor_gate(
    core: &Core,
    req: &TokenRequest<'_>,
    user: &UserRow,
    first: &FirstFactor<'_>,
    now: Timestamp,
) -> Result<(), GrantError> {
    if !mfa::required(req.tenant, req.host, req.client, first.audience) {
        return Ok(());
    }
    let methods = mfa::factors_of(core, req.tenant, &user.user_id).await?;
    let factors = mfa::gate_factors(req.tenant, req.host, req.client, first.audience, &methods);
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
        audience: first.audience.map(str::to_string),
        scope: first.scope.to_vec(),
        amr: vec![first.amr.to_string()],
        auth_time: now,
        gty: first.gty.to_string(),
    };
    let mfa_token = mfa::issue_token(core, req.tenant, req.client, &user.user_id, &pending).await?;
    Err(GrantError::MfaRequired {
        mfa_token,
        requirements,
    })
}
