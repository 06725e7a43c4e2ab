//! The client credentials grant: a confidential client acting on its own
//! behalf, for the scopes its client grant gives it on an API.

use super::{GrantError, TokenRequest};
use crate::context::Core;
use crate::services::policy;
use crate::services::tokens::{self, TokenResponse};

/// `grant_type=client_credentials`.
pub struct ClientCredentials<'a> {
    pub scope: Vec<String>,
    pub audience: Option<&'a str>,
}

pub(super) async fn exchange(
    core: &Core,
    req: &TokenRequest<'_>,
    grant: &ClientCredentials<'_>,
) -> Result<TokenResponse, GrantError> {
    let granted = policy::client_grant(
        req.tenant,
        req.host,
        &req.client.client_id,
        grant.audience,
        &grant.scope,
    )?;
    Ok(tokens::issue_client_token(
        core,
        req.tenant,
        req.host,
        req.client,
        &granted,
        req.dpop_jkt,
    )
    .await?)
}
