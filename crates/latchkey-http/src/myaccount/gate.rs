//! The gate in front of every `/me/v1` operation: the tenant of the host,
//! the access token, and the request limits: per IP for requests without a
//! verified token, tenant-wide and per user for the others. The
//! operation's scope is checked by the [`Authorized`] extractor of each
//! handler.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ApiError;
use crate::app::SharedState;
use crate::http::{TenantLookupError, tenant_for, user_agent};
use latchkey_core::services::dpop::{self, Scheme};
use latchkey_core::services::enrollment::Who;
use latchkey_core::services::ratelimit::Decision;
use latchkey_core::services::tokens::{self, AccessTokenError};
use latchkey_core::store::{MethodRow, UserRow};
use latchkey_core::tenant::{Tenant, names_my_account_api};

/// Who is calling, established by the gate.
#[derive(Debug)]
pub(crate) struct Caller {
    pub tenant: Arc<Tenant>,
    pub host: String,
    pub user_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub ip: String,
    pub user_agent: String,
    /// From `Accept-Language`, most preferred first.
    pub languages: Vec<String>,
    /// The user and their methods as the gate read them (to refuse a
    /// blocked or deleted user): what an operation that only reads answers
    /// from, so that it does not read them again.
    pub account: Arc<(UserRow, Vec<MethodRow>)>,
}

impl Caller {
    /// The caller as the services take it.
    pub(crate) fn who(&self) -> Who<'_> {
        Who {
            tenant: &self.tenant,
            host: &self.host,
            user_id: &self.user_id,
            client_id: &self.client_id,
            user_agent: &self.user_agent,
            languages: &self.languages,
        }
    }
}

fn token_of(headers: &HeaderMap) -> Result<(Scheme, &str), ApiError> {
    match dpop::authorization(headers) {
        None => Err(ApiError::MissingToken),
        Some(Ok(found)) => Ok(found),
        Some(Err(())) => Err(ApiError::InvalidToken(
            "The Authorization header must be 'Bearer <token>' or 'DPoP <token>'.".into(),
        )),
    }
}

/// The tighter of two decisions: the one with fewer requests left.
fn tighter(a: Decision, b: Option<Decision>) -> Decision {
    match b {
        Some(b) if !b.allowed || b.remaining < a.remaining => b,
        _ => a,
    }
}

pub(crate) async fn gate(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let now = state.clock.now();
    let (tenant, host) = match tenant_for(&state, &parts).await {
        Ok(t) => t,
        Err(TenantLookupError::UnknownHost) => {
            return ApiError::NotFound("No tenant is served on this host.".into()).into_response();
        }
        Err(TenantLookupError::BadHost) => {
            return ApiError::BadRequest(crate::http::BAD_HOST.into()).into_response();
        }
        Err(TenantLookupError::DuplicateHost) => {
            return ApiError::BadRequest(crate::http::DUPLICATE_HOST.into()).into_response();
        }
        Err(TenantLookupError::Store(e)) => return ApiError::from(e).into_response(),
    };
    let api = &tenant.config.my_account_api;
    if !api.active {
        return ApiError::NotFound("The My Account API is not active on this tenant.".into())
            .into_response();
    }
    let limits = &api.rate_limits;
    let ip = crate::http::client_ip(&state, &parts)
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    // Requests without a verified token spend their IP's budget, never the
    // signed-in users' (the tenant's): an IP whose budget is spent is
    // refused before its token is even looked at, which also bounds what a
    // flood of bad tokens costs in verification.
    let anonymous_key = format!("me:ip:{}:{ip}", tenant.id);
    let anonymous_limit = limits.anonymous_per_ip_per_second;
    if anonymous_limit > 0 {
        let d = state.limiter.peek(&anonymous_key, anonymous_limit, 1);
        if !d.allowed {
            let mut res = ApiError::TooManyRequests {
                retry_after: d.retry_after(now),
                global: false,
            }
            .into_response();
            crate::http::headers::rate_limit(&mut res, &d);
            return res;
        }
    }
    let caller = match authenticate(&state, &tenant, &host, &parts, &ip).await {
        Ok(c) => c,
        Err(e) => {
            let d = if anonymous_limit > 0 {
                state.limiter.hit(&anonymous_key, anonymous_limit, 1)
            } else {
                Decision::unlimited(now)
            };
            let mut res = e.into_response();
            crate::http::headers::rate_limit(&mut res, &d);
            return res;
        }
    };
    let tenant_decision = if limits.tenant_per_second > 0 {
        state
            .limiter
            .hit(&format!("me:t:{}", tenant.id), limits.tenant_per_second, 1)
    } else {
        Decision::unlimited(now)
    };
    if !tenant_decision.allowed {
        let mut res = ApiError::TooManyRequests {
            retry_after: tenant_decision.retry_after(now),
            global: true,
        }
        .into_response();
        crate::http::headers::rate_limit(&mut res, &tenant_decision);
        return res;
    }
    let user_decision = (limits.user_per_minute > 0).then(|| {
        state.limiter.hit(
            &format!("me:u:{}:{}", tenant.id, caller.user_id),
            limits.user_per_minute,
            60,
        )
    });
    let decision = tighter(tenant_decision, user_decision);
    if !decision.allowed {
        let mut res = ApiError::TooManyRequests {
            retry_after: decision.retry_after(now),
            global: false,
        }
        .into_response();
        crate::http::headers::rate_limit(&mut res, &decision);
        return res;
    }
    parts.extensions.insert(Arc::new(caller));
    let mut res = next.run(Request::from_parts(parts, body)).await;
    crate::http::headers::rate_limit(&mut res, &decision);
    // Answers carry secrets (TOTP seeds, recovery codes) and personal data:
    // never cached.
    crate::http::headers::no_store_unless_set(&mut res);
    res
}

async fn authenticate(
    state: &SharedState,
    tenant: &Arc<Tenant>,
    host: &str,
    parts: &Parts,
    ip: &str,
) -> Result<Caller, ApiError> {
    let (scheme, token) = token_of(&parts.headers)?;
    let at = match tokens::verify_access_token(state, tenant, host, token).await {
        Ok(at) => at,
        Err(AccessTokenError::Internal) => return Err(ApiError::internal("verifying a token")),
        Err(AccessTokenError::Unavailable) => {
            return Err(ApiError::Unavailable("verifying a token".into()));
        }
        Err(AccessTokenError::Expired) => {
            return Err(ApiError::InvalidToken("The token has expired.".into()));
        }
        Err(AccessTokenError::Revoked) => {
            return Err(ApiError::InvalidToken("The token has been revoked.".into()));
        }
        Err(AccessTokenError::WrongIssuer) | Err(AccessTokenError::Invalid) => {
            return Err(ApiError::InvalidToken(
                "The token is not valid for this host.".into(),
            ));
        }
    };
    if !at.audiences.iter().any(|a| names_my_account_api(host, a)) {
        return Err(ApiError::InvalidToken(
            "The token's audience is not the My Account API of this host.".into(),
        ));
    }
    let path = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| parts.uri.path().to_string(), |u| u.0.path().to_string());
    let request = dpop::Request {
        host,
        method: parts.method.as_str(),
        path: &path,
        headers: &parts.headers,
    };
    dpop::check_binding(state, tenant, &request, scheme, token, &at.claims).map_err(|c| {
        ApiError::Dpop {
            error: c.error,
            detail: c.detail,
            nonce: c.nonce,
        }
    })?;
    let is_client = at.claims.get("gty").and_then(Value::as_str) == Some("client-credentials")
        || at.sub.ends_with("@clients");
    if is_client {
        return Err(ApiError::Forbidden(
            "The My Account API needs a token issued to a user.".into(),
        ));
    }
    // A blocked or deleted user's token is good for nothing, whatever its
    // grant says. The operations that only read answer from this read (see
    // `Caller::account`).
    let account = match state.store.user_with_methods(&tenant.id, &at.sub).await {
        Ok(Some(found)) if !found.0.blocked => Arc::new(found),
        Ok(Some(_)) => return Err(ApiError::InvalidToken("The user is blocked.".into())),
        Ok(None) => {
            return Err(ApiError::InvalidToken("The user no longer exists.".into()));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Caller {
        tenant: tenant.clone(),
        host: host.to_string(),
        user_id: at.sub.clone(),
        client_id: at
            .claims
            .get("azp")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        scopes: at.scopes,
        ip: ip.to_string(),
        user_agent: user_agent(&parts.headers),
        languages: crate::http::accept_languages(&parts.headers),
        account,
    })
}

/// A scope an operation requires.
pub(crate) trait Scope: Send + Sync + 'static {
    const SCOPE: &'static str;
}

macro_rules! scopes {
    ($($name:ident = $scope:literal;)+) => {
        $(
            #[derive(Debug)]
            pub(crate) struct $name;
            impl Scope for $name {
                const SCOPE: &'static str = $scope;
            }
        )+
    };
}

scopes! {
    ReadFactors = "read:me:factors";
    ReadMethods = "read:me:authentication_methods";
    CreateMethods = "create:me:authentication_methods";
    UpdateMethods = "update:me:authentication_methods";
    DeleteMethods = "delete:me:authentication_methods";
    CreateConnected = "create:me:connected_accounts";
    ReadConnected = "read:me:connected_accounts";
    DeleteConnected = "delete:me:connected_accounts";
}

/// The caller, having the scope `S`.
pub(crate) struct Authorized<S: Scope> {
    pub caller: Arc<Caller>,
    _scope: PhantomData<S>,
}

impl<S: Scope> std::ops::Deref for Authorized<S> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<S: Scope, St: Send + Sync> FromRequestParts<St> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ApiError> {
        let caller = parts
            .extensions
            .get::<Arc<Caller>>()
            .cloned()
            .ok_or(ApiError::MissingToken)?;
        if !caller.scopes.iter().any(|s| s == S::SCOPE) {
            return Err(ApiError::InsufficientScope(S::SCOPE));
        }
        Ok(Self {
            caller,
            _scope: PhantomData,
        })
    }
}
