//! The authorization code grant: a code issued by `/authorize`, exchanged
//! once, by its client, on its host, with its PKCE verifier and DPoP key.

use serde::{Deserialize, Serialize};

use super::{Bound, GrantError, Later, TokenRequest, later};
use crate::clock::Timestamp;
use crate::context::Core;
use crate::crypto::hash::{constant_time_eq, secret_digest, sha256_b64url};
use crate::services::policy::Granted;
use crate::services::tokens::{self, Refresh, TokenResponse, UserTokens};
use crate::store::UserRow;

/// What an authorization code stands for, stored (as JSON) under its digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodeRequest {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub requested_scope: Vec<String>,
    pub audience: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
    /// `dpop_jkt` of the authorization request: the code is bound to that
    /// key (RFC 9449 §10).
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    /// The host the code was issued on: it is exchanged there only (tokens
    /// minted there carry that host's issuer). Absent in codes issued
    /// before codes knew their host: the tenant's canonical host.
    #[serde(default)]
    pub host: Option<String>,
}

/// `grant_type=authorization_code`.
pub struct AuthorizationCode<'a> {
    pub code: &'a str,
    pub redirect_uri: Later<Option<&'a str>>,
    pub code_verifier: Later<Option<&'a str>>,
}

pub(super) async fn exchange(
    core: &Core,
    req: &TokenRequest<'_>,
    grant: &AuthorizationCode<'_>,
) -> Result<TokenResponse, GrantError> {
    let tenant = req.tenant;
    let digest = secret_digest(grant.code);
    let now = core.clock.now();
    // Read first and do all that can fail before the code is spent: a
    // code spent while the answer is an error cannot be tried again
    // (presented again, it revokes its grant).
    let read = core.store.code(&tenant.id, &digest, now).await?;
    let (grant_id, raw) = super::live(
        core,
        req,
        read,
        now,
        "authorization code",
        GrantError::InvalidCode,
    )
    .await?;
    let code: CodeRequest =
        serde_json::from_str(&raw).map_err(|e| GrantError::Internal(e.to_string()))?;
    let (user, granted) = match check_code(core, req, grant, &code).await {
        Ok(checked) => checked,
        Err(failed) if !failed.refused() => return Err(failed),
        Err(refused) => {
            // A failed exchange spends the code, as it always has.
            let spent = core.store.redeem_code(&tenant.id, &digest, now).await?;
            super::live(
                core,
                req,
                spent,
                now,
                "authorization code",
                GrantError::InvalidCode,
            )
            .await?;
            return Err(refused);
        }
    };
    let key = core.keys.signing_key(&tenant.id).await?;
    let mut answer = UserTokens {
        tenant,
        host: req.host,
        client: req.client,
        user: &user,
        granted: &granted,
        grant_id: &grant_id,
        nonce: code.nonce.as_deref(),
        auth_time: code.auth_time,
        amr: &code.amr,
        gty: None,
        refresh_expires_at: None,
        refresh: Refresh::None,
        dpop_jkt: req.dpop_jkt,
    };
    if let Refresh::New = req.new_refresh(&granted) {
        // Stored before the code is spent: should the spend not happen,
        // it is a token nobody was ever given.
        let (token, row) = tokens::mint_refresh_token(core, &answer, now);
        core.store
            .create_refresh_token(&tenant.id, &secret_digest(&token), &row)
            .await?;
        answer.refresh = Refresh::Stored(token);
    }
    let spent = core.store.redeem_code(&tenant.id, &digest, now).await?;
    super::live(
        core,
        req,
        spent,
        now,
        "authorization code",
        GrantError::InvalidCode,
    )
    .await?;
    Ok(tokens::sign_user_tokens(core, &key, answer).await?)
}

/// Whether this request may exchange the code `code` stands for: its
/// client, host, redirect URI, PKCE verifier and DPoP key, and a user who
/// may still have tokens, with what they are granted today.
async fn check_code(
    core: &Core,
    req: &TokenRequest<'_>,
    grant: &AuthorizationCode<'_>,
    code: &CodeRequest,
) -> Result<(UserRow, Granted), GrantError> {
    let redirect_uri = later(&grant.redirect_uri)?;
    let verifier = later(&grant.code_verifier)?;
    if code.client_id != req.client.client_id {
        return Err(GrantError::InvalidCode);
    }
    if !tokens::minted_here(req.tenant, code.host.as_deref(), req.host) {
        return Err(GrantError::CodeFromAnotherHost);
    }
    if redirect_uri != Some(code.redirect_uri.as_str()) {
        return Err(GrantError::RedirectUriMismatch);
    }
    match (&code.code_challenge, verifier) {
        (Some(challenge), Some(v)) => {
            let well_formed = (43..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !well_formed
                || !constant_time_eq(sha256_b64url(v.as_bytes()).as_bytes(), challenge.as_bytes())
            {
                return Err(GrantError::VerifierMismatch);
            }
        }
        (Some(_), None) => return Err(GrantError::VerifierMissing),
        (None, Some(_)) => return Err(GrantError::VerifierUnexpected),
        (None, None) => {}
    }
    req.proved_key(code.dpop_jkt.as_deref(), Bound::AuthorizationCode)?;
    let user = req.user(core, &code.user_id).await?;
    let granted = req.user_grant(&user, code.audience.as_deref(), &code.requested_scope)?;
    Ok((user, granted))
}
