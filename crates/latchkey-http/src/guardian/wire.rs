//! The device API's request plumbing: the tenant from the host, the
//! `Authorization` header's two forms (`Ticket id="…"` at enrollment,
//! `Bearer …` after), and JSON bodies of bounded size.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use super::error::GuardianError;
use crate::app::SharedState;
use crate::http::{TenantLookupError, tenant_for};
use latchkey_core::services::push::Caller;
use latchkey_core::tenant::{Tenant, issuer_for_host};

/// The largest body read, bytes (a device's key, names and push token fit
/// well within).
pub(crate) const MAX_BODY: usize = 16 * 1024;
/// The longest credential in an `Authorization` header, characters.
const MAX_CREDENTIAL: usize = 8 * 1024;

/// The tenant of the request's host, in this area's dialect.
pub(crate) struct GuardianTenant {
    pub tenant: std::sync::Arc<Tenant>,
    /// The tenant's issuer on the request's host (ends with `/`).
    pub issuer: String,
    pub ip: String,
    pub user_agent: String,
}

impl GuardianTenant {
    /// Who calls, as the services take it.
    pub(crate) fn caller(&self) -> Caller<'_> {
        Caller {
            tenant: &self.tenant,
            issuer: &self.issuer,
            ip: &self.ip,
            user_agent: &self.user_agent,
        }
    }
}

impl FromRequestParts<SharedState> for GuardianTenant {
    type Rejection = GuardianError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, GuardianError> {
        match tenant_for(state, parts).await {
            Ok((tenant, host)) => {
                let ip = crate::http::client_ip(state, parts)
                    .map_or_else(|| "unknown".into(), |ip| ip.to_string());
                Ok(Self {
                    tenant,
                    issuer: issuer_for_host(&host),
                    ip,
                    user_agent: crate::http::user_agent(&parts.headers),
                })
            }
            Err(TenantLookupError::UnknownHost) => Err(GuardianError::not_found()),
            Err(TenantLookupError::BadHost) => Err(GuardianError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                crate::http::BAD_HOST,
            )),
            Err(TenantLookupError::DuplicateHost) => Err(GuardianError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                crate::http::DUPLICATE_HOST,
            )),
            Err(TenantLookupError::Store(e)) => Err(e.into()),
        }
    }
}

fn bad_format(expected: &str) -> GuardianError {
    GuardianError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_bearer_format",
        format!("The Authorization header must be {expected}."),
    )
}

/// The `Authorization` header's scheme and the rest, trimmed.
pub(crate) fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let v = all.next()?.to_str().ok()?;
    if all.next().is_some() {
        return None;
    }
    let (s, rest) = v.trim().split_once(' ')?;
    let rest = rest.trim();
    (s.eq_ignore_ascii_case(scheme) && !rest.is_empty() && rest.len() <= MAX_CREDENTIAL)
        .then_some(rest)
}

/// The enrollment ticket of `Authorization: Ticket id="…"`.
pub(crate) fn ticket(headers: &HeaderMap) -> Result<&str, GuardianError> {
    let expected = "Ticket id=\"<enrollment ticket>\"";
    let rest = authorization(headers, "ticket").ok_or_else(|| bad_format(expected))?;
    let (name, value) = rest.split_once('=').ok_or_else(|| bad_format(expected))?;
    if !name.trim().eq_ignore_ascii_case("id") {
        return Err(bad_format(expected));
    }
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
        return Err(bad_format(expected));
    }
    Ok(value)
}

/// The credential of `Authorization: Bearer …`.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, GuardianError> {
    let expected = "Bearer <token>";
    let token = authorization(headers, "bearer").ok_or_else(|| bad_format(expected))?;
    if token.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(token)
    } else {
        Err(bad_format(expected))
    }
}

/// A JSON body: `application/json`, at most [`MAX_BODY`] bytes, a JSON
/// value; an empty body reads as `{}` (an update that changes nothing).
pub(crate) struct GuardianJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for GuardianJson {
    type Rejection = GuardianError;

    async fn from_request(req: Request, _: &S) -> Result<Self, GuardianError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("").to_ascii_lowercase());
        let bytes = to_bytes(Body::new(req.into_body()), MAX_BODY)
            .await
            .map_err(|_| {
                GuardianError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "invalid_body",
                    format!("The body is larger than {MAX_BODY} bytes."),
                )
            })?;
        if bytes.is_empty() {
            return Ok(Self(Value::Object(Default::default())));
        }
        let essence = content_type
            .as_deref()
            .and_then(|ct| ct.split(';').next())
            .map(str::trim);
        if essence != Some("application/json") {
            return Err(GuardianError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_body",
                "The body must be application/json.",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|_| GuardianError::bad_body("The body is not valid JSON."))
    }
}
