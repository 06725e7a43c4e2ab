//! The refresh token grant: a refresh token, checked against a read, then
//! spent (rotated, when its client rotates them) in one step that stores
//! its successor; a rotated token presented again revokes its family.
//! What it is exchanged for (its own API, or another its client's
//! policies allow) is `refresh_target`'s to decide.

use super::refresh_target::{self, Target};
use super::{Bound, GrantError, Later, TokenRequest, active_user, later};
use crate::clock::Timestamp;
use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::services::mfa;
use crate::services::policy::split_scope;
use crate::services::tokens::{self, Refresh, TokenResponse, UserTokens};
use crate::store::{RefreshTokenRow, UserRow};
use crate::tenant::RotationType;

/// `grant_type=refresh_token`.
pub struct RefreshToken<'a> {
    pub refresh_token: &'a str,
    /// The scope asked for (split), when asked: at most the token's own,
    /// and its client's policy's for the audience.
    pub scope: Later<Option<Vec<String>>>,
    /// The API asked for, when asked: the token's own, or one its client's
    /// refresh-token policies name.
    pub audience: Later<Option<&'a str>>,
}

pub(super) async fn exchange(
    core: &Core,
    req: &TokenRequest<'_>,
    grant: &RefreshToken<'_>,
) -> Result<TokenResponse, GrantError> {
    let (tenant, client) = (req.tenant, req.client);
    let now = core.clock.now();
    let rotate = client.refresh_token.rotation_type == RotationType::Rotating;
    let digest = secret_digest(grant.refresh_token);
    let leeway = i64::from(client.refresh_token.leeway);
    // Validate against a read first, so a request that fails a check
    // does not spend a good token; spend it once everything holds.
    let (row, user) = presented(core, req, &digest, now).await?;
    let scope = later(&grant.scope)?;
    let target = refresh_target::target(
        tenant,
        req.host,
        client,
        row.audience.as_deref(),
        &split_scope(Some(&row.scope)),
        later(&grant.audience)?,
        scope,
    )?;
    // A refresh token bound to a DPoP key (public clients) needs a proof
    // from that key; checked before the token is spent.
    req.proved_key(row.dpop_jkt.as_deref(), Bound::RefreshToken)?;
    let audience = target.audience.as_deref();
    if mfa::two_factor_window_passed(tenant, req.host, audience, row.auth_time, now) {
        default_policy_on_refresh(core, req, &row, &target, now, Unmet::Revoke).await?;
    } else if target.other_api
        && mfa::default_policy_applies(tenant, req.host, audience)
        && !mfa::multi_factor(&row.amr)
    {
        // The login behind the token was for another API, which did not
        // ask for the second factor this one's Default Policy asks for:
        // it is asked now, as a login for this API would have.
        default_policy_on_refresh(core, req, &row, &target, now, Unmet::Pass).await?;
    }
    let granted = req.user_grant(&user, audience, &target.scope)?;
    let mut answer = UserTokens {
        tenant,
        host: req.host,
        client,
        user: &user,
        granted: &granted,
        grant_id: &row.grant_id,
        nonce: None,
        auth_time: row.auth_time,
        amr: &row.amr,
        gty: None,
        refresh_expires_at: Some(row.expires_at),
        refresh: Refresh::None,
        dpop_jkt: req.dpop_jkt,
    };
    // The signing key before the token is spent: once it is, nothing
    // left can fail for want of the database.
    let key = core.keys.signing_key(&tenant.id).await?;
    // Everything checked: spend the token, storing its successor in
    // the same step.
    if rotate {
        let (next, mut next_row) = tokens::mint_refresh_token(core, &answer, now);
        // The successor is the token it replaces, whatever this exchange
        // asked for (RFC 6749 §6): its scope, and its audience, so that a
        // token exchanged for another API still serves its own.
        next_row.scope = row.scope.clone();
        next_row.audience = row.audience.clone();
        let successor = (secret_digest(&next), next_row);
        let spent = core
            .store
            .redeem_refresh_token(
                &tenant.id,
                &digest,
                now,
                Some((&successor.0, &successor.1)),
                leeway,
            )
            .await?;
        super::live(
            core,
            req,
            spent,
            now,
            "refresh token",
            GrantError::InvalidRefreshToken,
        )
        .await?;
        answer.refresh = Refresh::Stored(next);
    }
    Ok(tokens::sign_user_tokens(core, &key, answer).await?)
}

/// The refresh token whose digest is `digest`, read (not spent) with its
/// user: unspent (a rotated one presented again revokes its family),
/// unexpired, this client's, minted on this host, of a user neither gone
/// nor blocked. The Token Vault reads its subject token so too.
pub(super) async fn presented(
    core: &Core,
    req: &TokenRequest<'_>,
    digest: &str,
    now: Timestamp,
) -> Result<(RefreshTokenRow, UserRow), GrantError> {
    let leeway = i64::from(req.client.refresh_token.leeway);
    let read = core
        .store
        .refresh_token_and_user(&req.tenant.id, digest, now, leeway)
        .await?;
    let (row, user) = super::live(
        core,
        req,
        read,
        now,
        "refresh token",
        GrantError::InvalidRefreshToken,
    )
    .await?;
    if row.client_id != req.client.client_id {
        return Err(GrantError::InvalidRefreshToken);
    }
    if !tokens::minted_here(req.tenant, row.host.as_deref(), req.host) {
        return Err(GrantError::RefreshFromAnotherHost);
    }
    match active_user(user) {
        Ok(user) => Ok((row, user)),
        Err(GrantError::UserGone) => Err(GrantError::RefreshTokenUserGone),
        Err(e) => Err(e),
    }
}

/// What the Default Policy does with a user who has no second factor.
enum Unmet {
    /// The refresh token dies with its grant: its window has passed.
    Revoke,
    /// The token is exchanged: within the window, as at a login.
    Pass,
}

/// The My Account API's Default Policy wants a second factor for this
/// exchange: a user with a factor is challenged (`mfa_required`; the
/// refresh token stays as it is, and the challenge's answer gets what
/// `target` asked for); a user without one is dealt with as `unmet` says.
async fn default_policy_on_refresh(
    core: &Core,
    req: &TokenRequest<'_>,
    row: &RefreshTokenRow,
    target: &Target,
    now: Timestamp,
    unmet: Unmet,
) -> Result<(), GrantError> {
    let methods = mfa::factors_of(core, req.tenant, &row.user_id).await?;
    let factors = mfa::second_factors(&methods);
    if factors.is_empty() {
        return match unmet {
            Unmet::Pass => Ok(()),
            Unmet::Revoke => {
                core.store
                    .revoke_grant(
                        &req.tenant.id,
                        &row.grant_id,
                        "two-factor window passed",
                        now,
                    )
                    .await?;
                Err(GrantError::NoSecondFactor)
            }
        };
    }
    let pending = mfa::Pending {
        audience: target.audience.clone(),
        scope: target.scope.clone(),
        amr: row.amr.clone(),
        auth_time: row.auth_time,
        gty: "refresh_token".into(),
    };
    let mfa_token = mfa::issue_token(core, req.tenant, req.client, &row.user_id, &pending).await?;
    Err(GrantError::MfaRequired {
        mfa_token,
        requirements: serde_json::json!({ "challenge": mfa::challenge_types(&factors) }),
    })
}
