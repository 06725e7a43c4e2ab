//! `grant_type=http://auth0.com/oauth/grant-type/passwordless/otp`: the
//! code `POST /passwordless/start` sent, with the address or number it went
//! to (`username`) and the connection (`realm`), for the user's tokens —
//! after a second factor when the login needs one, as a password's.

use super::password::{FirstFactor, origin, second_factor_gate};
use super::{GrantError, TokenRequest};
use crate::context::Core;
use crate::services::login;
use crate::services::passwordless::{self, VerifyRequest};
use crate::services::tokens::TokenResponse;

/// The grant's parameters.
pub struct PasswordlessOtp<'a> {
    pub realm: &'a str,
    pub username: &'a str,
    pub otp: &'a str,
    pub scope: Vec<String>,
    pub audience: Option<&'a str>,
}

/// The `amr` of a passwordless login: a one-time code (RFC 8176).
const AMR: &str = "otp";

pub(super) async fn exchange(
    core: &Core,
    req: &TokenRequest<'_>,
    grant: &PasswordlessOtp<'_>,
) -> Result<TokenResponse, GrantError> {
    let user = passwordless::verify(
        core,
        &VerifyRequest {
            tenant: req.tenant,
            from: origin(req),
            connection: grant.realm,
            to: grant.username,
            code: grant.otp,
            link: None,
        },
    )
    .await
    .map_err(GrantError::Passwordless)?;
    let granted = req.user_grant(&user, grant.audience, &grant.scope)?;
    let now = core.clock.now();
    let first = FirstFactor {
        audience: grant.audience,
        scope: &grant.scope,
        amr: AMR,
        gty: "passwordless",
    };
    second_factor_gate(core, req, &user, &first, now).await?;
    let tokens = req
        .new_grant_tokens(
            core,
            &user,
            &granted,
            now,
            &[AMR.to_string()],
            Some("passwordless"),
        )
        .await?;
    login::log_signed_in(core, req.tenant, &origin(req), Some(grant.realm), &user).await;
    Ok(tokens)
}
