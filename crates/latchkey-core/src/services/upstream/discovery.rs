//! Where a provider's endpoints are: its OpenID discovery document (fetched,
//! checked against the configured issuer, the file's overrides applied) or
//! the fixed endpoints of an OAuth 2.0 connection; and its signing keys.
//! Both are cached per connection for at most an hour on each node, and
//! dropped when the connection's configuration changes; a token signed
//! with a key the cached set lacks makes one refetch, at most once a
//! minute a connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::Method;
use serde_json::{Map, Value};

use super::fetch::{self, json_object, send};
use super::provider::{Locator, Provider};
use super::{UpstreamError, quoted};
use crate::clock::Timestamp;
use crate::context::Core;
use crate::crypto::jose::{MAX_JWKS_LEN, UpstreamKeys};
use crate::tenant::UpstreamAuthMethod;

/// How long a discovery document is used before it is fetched again.
const METADATA_TTL: i64 = 3600;
/// How long a JWKS is used before it is fetched again.
const KEYS_TTL: i64 = 3600;
/// The least time between two fetches of a JWKS for a key it lacked.
const KEYS_REFETCH_INTERVAL: i64 = 60;
/// Connections remembered per node; past it the cache starts over.
const MAX_ENTRIES: usize = 4096;
/// The longest endpoint URL taken from a document.
const MAX_URL: usize = 2048;

/// A provider's endpoints and what it supports, as latchkey uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Metadata {
    /// The issuer its ID tokens carry (OpenID providers).
    pub(crate) issuer: Option<String>,
    pub(crate) authorization: String,
    pub(crate) token: String,
    pub(crate) userinfo: Option<String>,
    pub(crate) jwks: Option<String>,
    pub(crate) revocation: Option<String>,
    pub(crate) auth_method: UpstreamAuthMethod,
    /// `id_token_signing_alg_values_supported` (RS256 when not said).
    pub(crate) id_token_algs: Vec<String>,
}

/// The per-node cache of what providers publish.
#[derive(Default)]
pub struct Upstreams {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Upstreams(..)")
    }
}

#[derive(Default)]
struct Entry {
    fingerprint: String,
    metadata: Option<(Arc<Metadata>, Timestamp)>,
    keys: Option<(Arc<UpstreamKeys>, Timestamp)>,
}

impl Upstreams {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the connection's entry, started over when the
    /// configuration changed.
    fn with_entry<T>(&self, p: &Provider, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (p.tenant_id.clone(), p.connection.clone());
        if !entries.contains_key(&key) && entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let entry = entries.entry(key).or_default();
        if entry.fingerprint != p.fingerprint {
            *entry = Entry {
                fingerprint: p.fingerprint.clone(),
                ..Entry::default()
            };
        }
        f(entry)
    }
}

/// The provider's metadata: cached, or fetched (OpenID), or its fixed
/// endpoints (OAuth 2.0).
pub(crate) async fn metadata(core: &Core, p: &Provider) -> Result<Arc<Metadata>, UpstreamError> {
    let (url, issuer) = match &p.locator {
        Locator::Fixed => return fixed(p).map(Arc::new),
        Locator::Discovery { url, issuer } => (url, issuer),
    };
    let now = core.clock.now();
    let cached = core.upstreams.with_entry(p, |e| {
        e.metadata
            .as_ref()
            .filter(|(_, at)| now - at < METADATA_TTL && *at <= now)
            .map(|(m, _)| m.clone())
    });
    if let Some(m) = cached {
        return Ok(m);
    }
    let response = send(core, fetch::request(p, Method::GET, url)).await?;
    if !response.status.is_success() {
        return Err(UpstreamError::Protocol(format!(
            "its discovery document answered {}",
            response.status.as_u16()
        )));
    }
    let doc = json_object(&response, "discovery document")?;
    let m = Arc::new(discovered(p, issuer.as_deref(), &doc)?);
    core.upstreams
        .with_entry(p, |e| e.metadata = Some((m.clone(), now)));
    Ok(m)
}

/// RFC 9207: the `iss` a provider put beside its authorization response
/// must be its own issuer, else the response is another provider's (a
/// mix-up). Providers without an issuer (OAuth 2.0) have nothing to check.
pub async fn check_response_issuer(
    core: &Core,
    p: &Provider,
    iss: &str,
) -> Result<(), UpstreamError> {
    let meta = metadata(core, p).await?;
    match meta.issuer.as_deref() {
        Some(own) if own != iss => Err(UpstreamError::IdToken(format!(
            "the authorization response names the issuer {:?}, not {:?}",
            quoted(iss),
            quoted(own)
        ))),
        _ => Ok(()),
    }
}

/// An endpoint named in a document: an absolute http(s) URL.
fn endpoint(doc: &Map<String, Value>, key: &str) -> Result<Option<String>, UpstreamError> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_URL && is_http_url(s) => Ok(Some(s.clone())),
        Some(_) => Err(UpstreamError::Protocol(format!(
            "its discovery document's {key} is not an http(s) URL"
        ))),
    }
}

pub(crate) fn is_http_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

/// Two issuers that differ at most by a final slash.
fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

fn discovered(
    p: &Provider,
    expected_issuer: Option<&str>,
    doc: &Map<String, Value>,
) -> Result<Metadata, UpstreamError> {
    let issuer = doc
        .get("issuer")
        .and_then(Value::as_str)
        .filter(|s| s.len() <= MAX_URL && is_http_url(s))
        .ok_or_else(|| UpstreamError::Protocol("its discovery document names no issuer".into()))?;
    if let Some(expected) = expected_issuer
        && !same_issuer(expected, issuer)
    {
        return Err(UpstreamError::Protocol(format!(
            "its discovery document names the issuer {:?}, not {:?}",
            quoted(issuer),
            quoted(expected)
        )));
    }
    let pick = |given: &Option<String>, key: &str| -> Result<Option<String>, UpstreamError> {
        match given {
            Some(url) => Ok(Some(url.clone())),
            None => endpoint(doc, key),
        }
    };
    let missing =
        |what: &str| UpstreamError::Protocol(format!("its discovery document has no {what}"));
    let e = &p.endpoints;
    let methods: Vec<&str> = doc
        .get("token_endpoint_auth_methods_supported")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let algs: Vec<String> = doc
        .get("id_token_signing_alg_values_supported")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .take(32)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_else(|| vec!["RS256".to_owned()]);
    Ok(Metadata {
        issuer: Some(issuer.to_owned()),
        authorization: pick(&e.authorization, "authorization_endpoint")?
            .ok_or_else(|| missing("authorization_endpoint"))?,
        token: pick(&e.token, "token_endpoint")?.ok_or_else(|| missing("token_endpoint"))?,
        userinfo: pick(&e.userinfo, "userinfo_endpoint")?,
        jwks: Some(pick(&e.jwks, "jwks_uri")?.ok_or_else(|| missing("jwks_uri"))?),
        revocation: pick(&e.revocation, "revocation_endpoint")?,
        auth_method: p.auth_method.unwrap_or(
            // RFC 8414: basic when the document says nothing; post when it
            // lists post and not basic.
            if !methods.is_empty()
                && !methods.contains(&"client_secret_basic")
                && methods.contains(&"client_secret_post")
            {
                UpstreamAuthMethod::ClientSecretPost
            } else {
                UpstreamAuthMethod::ClientSecretBasic
            },
        ),
        id_token_algs: algs,
    })
}

/// The metadata of an OAuth 2.0 connection, from its file.
fn fixed(p: &Provider) -> Result<Metadata, UpstreamError> {
    let e = &p.endpoints;
    let need = |url: &Option<String>, key: &str| {
        url.clone()
            .ok_or_else(|| UpstreamError::Config(format!("{key} is not set")))
    };
    Ok(Metadata {
        issuer: None,
        authorization: need(&e.authorization, "authorizationURL")?,
        token: need(&e.token, "tokenURL")?,
        userinfo: e.userinfo.clone(),
        jwks: None,
        revocation: e.revocation.clone(),
        auth_method: p.auth_method.unwrap_or(match p.quirks {
            // GitHub documents the credentials as parameters.
            super::provider::Quirks::Github => UpstreamAuthMethod::ClientSecretPost,
            _ => UpstreamAuthMethod::ClientSecretBasic,
        }),
        id_token_algs: Vec::new(),
    })
}

/// Why the keys are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeysFor {
    /// A token to verify: the cached set while it is fresh.
    Verifying,
    /// A token signed with a key the cached set lacks: fetched again,
    /// unless that was done within the last minute.
    UnknownKey,
}

/// The provider's signing keys, from its `jwks_uri`.
pub(crate) async fn keys(
    core: &Core,
    p: &Provider,
    meta: &Metadata,
    why: KeysFor,
) -> Result<Arc<UpstreamKeys>, UpstreamError> {
    let now = core.clock.now();
    let cached = core.upstreams.with_entry(p, |e| e.keys.clone());
    if let Some((keys, at)) = cached {
        let age = now - at;
        let fresh = (0..KEYS_TTL).contains(&age);
        let recent = (0..KEYS_REFETCH_INTERVAL).contains(&age);
        match why {
            KeysFor::Verifying if fresh => return Ok(keys),
            KeysFor::UnknownKey if recent => return Ok(keys),
            KeysFor::Verifying | KeysFor::UnknownKey => {}
        }
    }
    let url = meta
        .jwks
        .as_deref()
        .ok_or_else(|| UpstreamError::Protocol("it publishes no jwks_uri".into()))?;
    let mut request = fetch::request(p, Method::GET, url);
    request.max_response_bytes = MAX_JWKS_LEN;
    let response = send(core, request).await?;
    if !response.status.is_success() {
        return Err(UpstreamError::Protocol(format!(
            "its JWKS answered {}",
            response.status.as_u16()
        )));
    }
    if !fetch::is_json(&response) {
        return Err(UpstreamError::Protocol("its JWKS is not JSON".into()));
    }
    let keys = Arc::new(
        UpstreamKeys::from_jwks(&response.body)
            .map_err(|e| UpstreamError::Protocol(format!("its JWKS: {e}")))?,
    );
    core.upstreams
        .with_entry(p, |e| e.keys = Some((keys.clone(), now)));
    Ok(keys)
}
