//! RFC 7009 revocation of a refresh token: it revokes the token's whole
//! grant (every token of that family, and the access tokens it produced).

use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::store::StoreError;
use crate::tenant::Tenant;

#[derive(Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The token's grant is revoked.
    Revoked,
    /// No such token: not an error.
    Unknown,
    /// The token was issued to another client: left alone.
    OtherClient,
}

/// Revokes the grant of `token`, a refresh token of `client_id`.
pub async fn revoke_refresh_token(
    core: &Core,
    tenant: &Tenant,
    token: &str,
    client_id: &str,
) -> Result<Revocation, StoreError> {
    let Some((grant_id, owner)) = core
        .store
        .refresh_token_grant(&tenant.id, &secret_digest(token))
        .await?
    else {
        return Ok(Revocation::Unknown);
    };
    if owner != client_id {
        return Ok(Revocation::OtherClient);
    }
    core.store
        .revoke_grant(
            &tenant.id,
            &grant_id,
            "revoked by the client",
            core.clock.now(),
        )
        .await?;
    Ok(Revocation::Revoked)
}
