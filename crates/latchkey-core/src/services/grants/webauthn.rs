//! The webauthn grant: the answer to a native passkey sign-up or login
//! (`/passkey/register`, `/passkey/challenge`), for a new grant.

use serde_json::Value;

use super::{GrantError, Later, TokenRequest, later};
use crate::context::Core;
use crate::services::passkey_login;
use crate::services::tokens::TokenResponse;

/// `grant_type=urn:okta:params:oauth:grant-type:webauthn`.
pub struct Webauthn<'a> {
    pub auth_session: &'a str,
    pub authn_response: Value,
    pub scope: Later<Vec<String>>,
    pub audience: Later<Option<&'a str>>,
}

pub(super) async fn exchange(
    core: &Core,
    req: &TokenRequest<'_>,
    grant: &Webauthn<'_>,
) -> Result<TokenResponse, GrantError> {
    let user = passkey_login::finish(
        core,
        req.tenant,
        req.host,
        req.client,
        grant.auth_session,
        &grant.authn_response,
        req.languages,
    )
    .await?;
    let requested = later(&grant.scope)?;
    let granted = req.user_grant(&user, later(&grant.audience)?, &requested)?;
    let now = core.clock.now();
    req.new_grant_tokens(core, &user, &granted, now, &["webauthn".to_string()], None)
        .await
}
