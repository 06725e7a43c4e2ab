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
    let user = login::authenticate(
        core,
        PasswordLogin {
            tenant: req.tenant,
            realm: grant.realm,
            username: grant.username,
            password: grant.password,
            ip: req.user_ip,
        },
    )
    .await
    .map_err(GrantError::Login)?;
    let granted = req.user_grant(&user, grant.audience, &grant.scope)?;
    let now = core.clock.now();
    second_factor_gate(core, req, &user, grant, "password", now).await?;
    req.new_grant_tokens(
        core,
        &user,
        &granted,
        now,
        &["pwd".to_string()],
        Some("password"),
    )
    .await
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
