//! An OpenID provider's ID token, believed only once verified: its
//! signature by a key of the provider's JWKS under an algorithm the
//! provider announces (and latchkey verifies: RS256, PS256, ES256, EdDSA),
//! then its claims (`crypto::jose::check_id_token_claims`: issuer as
//! discovered, audience this client, the nonce sent, times with a minute's
//! leeway). A key the cached JWKS lacks makes one refetch (rotation).

use serde_json::{Map, Value};

use super::UpstreamError;
use super::discovery::{KeysFor, keys, metadata};
use super::provider::Provider;
use crate::context::Core;
use crate::crypto::jose::{Alg, IdTokenExpectations, JoseError, check_id_token_claims};

/// The clock skew tolerated on the token's times, seconds.
const LEEWAY: i64 = 60;

/// The claims of `token` once verified; `nonce` is the one sent.
pub(crate) async fn verify(
    core: &Core,
    provider: &Provider,
    token: &str,
    nonce: Option<&str>,
) -> Result<Map<String, Value>, UpstreamError> {
    let meta = metadata(core, provider).await?;
    let issuer = meta
        .issuer
        .as_deref()
        .ok_or_else(|| UpstreamError::IdToken("the provider has no issuer".into()))?;
    let algs: Vec<Alg> = meta
        .id_token_algs
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    if algs.is_empty() {
        return Err(UpstreamError::IdToken(
            "the provider signs ID tokens with no algorithm latchkey verifies".into(),
        ));
    }
    let refused = |e: JoseError| UpstreamError::IdToken(e.to_string());
    let set = keys(core, provider, &meta, KeysFor::Verifying).await?;
    let claims = match set.verify(token, &algs) {
        Err(JoseError::UnknownKid) => keys(core, provider, &meta, KeysFor::UnknownKey)
            .await?
            .verify(token, &algs)
            .map_err(refused)?,
        verified => verified.map_err(refused)?,
    };
    let expect = IdTokenExpectations {
        issuer,
        client_id: &provider.client_id,
        nonce,
        now: core.clock.now(),
        leeway: LEEWAY,
    };
    check_id_token_claims(&claims, &expect).map_err(|e| UpstreamError::IdToken(e.to_string()))?;
    match claims {
        Value::Object(map) => Ok(map),
        _ => Err(UpstreamError::IdToken(
            "its claims are not an object".into(),
        )),
    }
}
