//! The refresh token grant: a refresh token, checked against a read, then
//! spent (rotated, when its client rotates them) in one step that stores
//! its successor; a rotated token presented again revokes its family.

use super::{Bound, GrantError, Later, TokenRequest, active_user, later};
use crate::clock::Timestamp;
use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::services::mfa;
use crate::services::policy::split_scope;
use crate::services::tokens::{self, Refresh, TokenResponse, UserTokens};
use crate::store::RefreshTokenRow;
use crate::tenant::RotationType;

/// `grant_type=refresh_token`.
pub struct RefreshToken<'a> {
    pub refresh_token: &'a str,
    /// The scope asked for (split), when asked: at most the token's own.
    pub scope: Later<Option<Vec<String>>>,
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
    // Validate against a read first, so a request that fails a check
    // does not spend a good token; spend it once everything holds.
    let leeway = i64::from(client.refresh_token.leeway);
    let read = core
        .store
        .refresh_token_and_user(&tenant.id, &digest, now, leeway)
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
    if row.client_id != client.client_id {
        return Err(GrantError::InvalidRefreshToken);
    }
    if !tokens::minted_here(tenant, row.host.as_deref(), req.host) {
        return Err(GrantError::RefreshFromAnotherHost);
    }
    let user = active_user(user)?;
    let original = split_scope(Some(&row.scope));
    let requested = match later(&grant.scope)? {
        None => original.clone(),
        Some(asked) => {
            if let Some(extra) = asked.iter().find(|s| !original.contains(s)) {
                return Err(GrantError::ScopeNotGranted(extra.clone()));
            }
            asked
        }
    };
    if let Some(aud) = later(&grant.audience)?
        && Some(aud) != row.audience.as_deref()
    {
        return Err(GrantError::AudienceMismatch);
    }
    // A refresh token bound to a DPoP key (public clients) needs a proof
    // from that key; checked before the token is spent.
    req.proved_key(row.dpop_jkt.as_deref(), Bound::RefreshToken)?;
    if mfa::two_factor_window_passed(
        tenant,
        req.host,
        row.audience.as_deref(),
        row.auth_time,
        now,
    ) {
        default_policy_on_refresh(core, req, &row, &requested, now).await?;
    }
    let granted = req.user_grant(&user, row.audience.as_deref(), &requested)?;
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
        // asked for (RFC 6749 §6): its scope and audience.
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

/// The Default Policy's window has passed for this refresh token: a user
/// with a factor is challenged again (`mfa_required`; the refresh token
/// stays as it is); a user without one cannot meet the policy, and the
/// refresh token dies with its grant.
async fn default_policy_on_refresh(
    core: &Core,
    req: &TokenRequest<'_>,
    row: &RefreshTokenRow,
    requested: &[String],
    now: Timestamp,
) -> Result<(), GrantError> {
    let methods = mfa::factors_of(core, req.tenant, &row.user_id).await?;
    let factors = mfa::second_factors(&methods);
    if factors.is_empty() {
        core.store
            .revoke_grant(
                &req.tenant.id,
                &row.grant_id,
                "two-factor window passed",
                now,
            )
            .await?;
        return Err(GrantError::NoSecondFactor);
    }
    let pending = mfa::Pending {
        audience: row.audience.clone(),
        scope: requested.to_vec(),
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
