//! Wire types of the OAuth area. No logic: parsing and shapes only.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;

use super::error::OAuthError;
use crate::app::SharedState;
use crate::http::{TenantLookupError, tenant_for};
use latchkey_core::tenant::Tenant;

/// Largest body any OAuth endpoint reads.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The tenant selected by the request's host, in this area's dialect.
pub(crate) struct OAuthTenant {
    pub tenant: std::sync::Arc<Tenant>,
    pub host: String,
}

impl FromRequestParts<SharedState> for OAuthTenant {
    type Rejection = OAuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, OAuthError> {
        match tenant_for(state, parts).await {
            Ok((tenant, host)) => Ok(Self { tenant, host }),
            Err(TenantLookupError::UnknownHost) => Err(OAuthError::NotFound),
            Err(TenantLookupError::BadHost) => {
                Err(OAuthError::InvalidRequest(crate::http::BAD_HOST.into()))
            }
            Err(TenantLookupError::DuplicateHost) => Err(OAuthError::InvalidRequest(
                crate::http::DUPLICATE_HOST.into(),
            )),
            Err(TenantLookupError::Store(e)) => Err(e.into()),
        }
    }
}

/// Parameters of a POST to an OAuth endpoint, form-encoded or JSON. Every
/// value is a string except structured ones (`authn_response`); a parameter
/// given twice is refused (RFC 6749 §3.2).
#[derive(Debug, Default)]
pub(crate) struct Params {
    values: HashMap<String, Value>,
    /// Client credentials from an `Authorization: Basic` header.
    pub basic: Option<(String, String)>,
}

impl Params {
    pub(crate) fn str(&self, key: &str) -> Result<Option<&str>, OAuthError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(OAuthError::InvalidRequest(format!(
                "Parameter '{key}' must be a string"
            ))),
        }
    }

    pub(crate) fn required(&self, key: &str) -> Result<&str, OAuthError> {
        self.str(key)?
            .ok_or_else(|| OAuthError::InvalidRequest(format!("Missing required parameter: {key}")))
    }

    pub(crate) fn value(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::InvalidClient("Malformed Basic authorization header".into());
    let v = v.to_str().map_err(|_| bad())?;
    let Some(encoded) = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))
    else {
        return Ok(None);
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad())
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

impl FromRequest<SharedState> for Params {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &SharedState) -> Result<Self, OAuthError> {
        let basic = basic_credentials(req.headers())?;
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| OAuthError::InvalidRequest("The request body could not be read".into()))?;
        if body.len() > MAX_BODY {
            return Err(OAuthError::InvalidRequest(
                "The request body is too large".into(),
            ));
        }
        let mut values = HashMap::new();
        match content_type.as_str() {
            "application/x-www-form-urlencoded" => {
                let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                    .map_err(|_| OAuthError::InvalidRequest("Malformed form body".into()))?;
                for (k, v) in pairs {
                    if values.insert(k.clone(), Value::String(v)).is_some() {
                        return Err(OAuthError::InvalidRequest(format!(
                            "Parameter '{k}' is repeated"
                        )));
                    }
                }
            }
            "application/json" => {
                let JsonMembers(members) = serde_json::from_slice(&body).map_err(|e| {
                    OAuthError::InvalidRequest(if e.is_data() {
                        "The JSON body must be an object".into()
                    } else {
                        "Malformed JSON body".into()
                    })
                })?;
                for (k, v) in members {
                    if values.contains_key(&k) {
                        return Err(OAuthError::InvalidRequest(format!(
                            "Parameter '{k}' is repeated"
                        )));
                    }
                    values.insert(k, v);
                }
            }
            "" if body.is_empty() => {}
            _ => {
                return Err(OAuthError::InvalidRequest(
                    "Content-Type must be application/x-www-form-urlencoded or application/json"
                        .into(),
                ));
            }
        }
        Ok(Self { values, basic })
    }
}

/// The members of a JSON object in the order written, a name given twice
/// kept twice (a `serde_json::Map` would keep only the last), so that a
/// repeated parameter is refused as it is in a form.
struct JsonMembers(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for JsonMembers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = JsonMembers;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonMembers, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(JsonMembers(members))
            }
        }
        d.deserialize_map(Members)
    }
}

/// Query parameters of `GET /authorize`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub(crate) struct AuthorizeQuery {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub audience: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub acr_values: Option<String>,
    /// RFC 9449 §10: binds the code to this DPoP key's thumbprint.
    pub dpop_jkt: Option<String>,
    pub response_mode: Option<String>,
    pub connection: Option<String>,
    pub ui_locales: Option<String>,
    /// Auth0's `screen_hint`: `signup` opens the sign-up screen instead of
    /// the login form.
    pub screen_hint: Option<String>,
    /// RFC 9126: a pushed request, with `client_id` (every other parameter
    /// is ignored then).
    pub request_uri: Option<String>,
}

/// Query parameters of `GET /v2/logout`. Auth0's `federated` is accepted
/// and has nothing to do: there is no upstream identity provider to log out of.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LogoutQuery {
    pub client_id: Option<String>,
    #[serde(rename = "returnTo")]
    pub return_to: Option<String>,
}
