//! The gate in front of every Management API operation: the tenant of the
//! host, the request limits (per IP for requests without a verified token,
//! tenant-wide for the others, announced in `x-ratelimit-*` on every
//! answer), and the access token: this tenant's signature, this host's
//! issuer and Management API audience, unexpired, a client's own
//! (`client_credentials`), its DPoP binding when it has one. The
//! operation's scopes are checked by the [`Scoped`] extractor of each
//! handler.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::MgmtError;
use crate::app::SharedState;
use crate::http::{TenantLookupError, tenant_for, user_agent};
use latchkey_core::services::dpop;
use latchkey_core::services::management::Caller;
use latchkey_core::services::ratelimit::Decision;
use latchkey_core::services::tokens::{self, AccessTokenError};
use latchkey_core::tenant::{Tenant, names_management_api};

/// Who is calling, established by the gate.
#[derive(Debug)]
pub(crate) struct ApiCaller {
    pub tenant: Arc<Tenant>,
    pub host: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub ip: String,
    pub user_agent: String,
    pub languages: Vec<String>,
}

impl ApiCaller {
    /// The caller as the services take it.
    pub(crate) fn caller(&self) -> Caller<'_> {
        Caller {
            tenant: &self.tenant,
            host: &self.host,
            client_id: &self.client_id,
            scopes: &self.scopes,
            ip: &self.ip,
            user_agent: &self.user_agent,
            languages: &self.languages,
        }
    }
}

pub(crate) async fn gate(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let now = state.clock.now();
    let (tenant, host) = match tenant_for(&state, &parts).await {
        Ok(t) => t,
        Err(TenantLookupError::UnknownHost) => return MgmtError::not_found().into_response(),
        Err(TenantLookupError::BadHost) => {
            return MgmtError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                crate::http::BAD_HOST,
            )
            .into_response();
        }
        Err(TenantLookupError::DuplicateHost) => {
            return MgmtError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                crate::http::DUPLICATE_HOST,
            )
            .into_response();
        }
        Err(TenantLookupError::Store(e)) => return MgmtError::from(e).into_response(),
    };
    let limits = &tenant.config.management_api.rate_limits;
    let ip = crate::http::client_ip(&state, &parts)
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    // Requests without a verified token spend their IP's budget, never the
    // tenant's: a spent budget is refused before the token is looked at.
    let anonymous_key = format!("mgmt:ip:{}:{ip}", tenant.id);
    let anonymous_limit = limits.anonymous_per_ip_per_second;
    if anonymous_limit > 0 {
        let d = state.limiter.peek(&anonymous_key, anonymous_limit, 1);
        if !d.allowed {
            let mut res = MgmtError::too_many_requests(d.retry_after(now)).into_response();
            crate::http::headers::rate_limit(&mut res, &d);
            return res;
        }
    }
    let caller = match authenticate(&state, &tenant, &host, &parts, &ip).await {
        Ok(c) => c,
        Err(e) => {
            let d = if anonymous_limit > 0 && e.status == StatusCode::UNAUTHORIZED {
                state.limiter.hit(&anonymous_key, anonymous_limit, 1)
            } else {
                Decision::unlimited(now)
            };
            let mut res = e.into_response();
            crate::http::headers::rate_limit(&mut res, &d);
            return res;
        }
    };
    let decision = if limits.tenant_per_second > 0 {
        state.limiter.hit(
            &format!("mgmt:t:{}", tenant.id),
            limits.tenant_per_second,
            1,
        )
    } else {
        Decision::unlimited(now)
    };
    if !decision.allowed {
        let mut res = MgmtError::too_many_requests(decision.retry_after(now)).into_response();
        crate::http::headers::rate_limit(&mut res, &decision);
        return res;
    }
    parts.extensions.insert(Arc::new(caller));
    let mut res = next.run(Request::from_parts(parts, body)).await;
    crate::http::headers::rate_limit(&mut res, &decision);
    crate::http::headers::no_store_unless_set(&mut res);
    res
}

async fn authenticate(
    state: &SharedState,
    tenant: &Arc<Tenant>,
    host: &str,
    parts: &Parts,
    ip: &str,
) -> Result<ApiCaller, MgmtError> {
    let (scheme, token) = match dpop::authorization(&parts.headers) {
        None => return Err(MgmtError::unauthorized("Missing authentication")),
        Some(Ok(found)) => found,
        Some(Err(())) => {
            return Err(MgmtError::unauthorized(
                "Bad HTTP authentication header format",
            ));
        }
    };
    let at = match tokens::verify_access_token(state, tenant, host, token).await {
        Ok(at) => at,
        Err(AccessTokenError::Internal) => return Err(MgmtError::internal("verifying a token")),
        Err(AccessTokenError::Unavailable) => {
            return Err(MgmtError::unavailable("verifying a token"));
        }
        Err(AccessTokenError::Expired) => {
            return Err(MgmtError::unauthorized(
                "Expired token received for JSON Web Token validation",
            ));
        }
        Err(AccessTokenError::Revoked) => {
            return Err(MgmtError::unauthorized("The token has been revoked."));
        }
        Err(AccessTokenError::WrongIssuer) => {
            return Err(MgmtError::unauthorized(format!(
                "Bad issuer: the token was not issued by {}",
                latchkey_core::tenant::issuer_for_host(host)
            )));
        }
        Err(AccessTokenError::Invalid) => return Err(MgmtError::unauthorized("Invalid token")),
    };
    if !at.audiences.iter().any(|a| names_management_api(host, a)) {
        return Err(MgmtError::unauthorized(format!(
            "Bad audience: {}",
            at.audiences.join(" ")
        )));
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
        MgmtError::unauthorized(c.detail.clone())
            .with_challenge(dpop::www_authenticate(&c))
            .with_nonce(c.nonce)
    })?;
    let is_client = at.claims.get("gty").and_then(Value::as_str) == Some("client-credentials");
    if !is_client || !at.sub.ends_with("@clients") {
        return Err(MgmtError::unauthorized(
            "The Management API takes a client's own token (client_credentials).",
        ));
    }
    let client_id = at
        .claims
        .get("azp")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // A client removed from the tenant since its token was minted is no
    // longer anybody.
    if tenant.client(&client_id).is_none() {
        return Err(MgmtError::unauthorized(
            "The token's client no longer exists.",
        ));
    }
    Ok(ApiCaller {
        tenant: tenant.clone(),
        host: host.to_string(),
        client_id,
        scopes: at.scopes,
        ip: ip.to_string(),
        user_agent: user_agent(&parts.headers),
        languages: crate::http::accept_languages(&parts.headers),
    })
}

/// The scopes an operation takes: any one of them will do.
pub(crate) trait Operation: Send + Sync + 'static {
    const ANY_OF: &'static [&'static str];
}

macro_rules! operations {
    ($($name:ident = [$($scope:literal),+];)+) => {
        $(
            #[derive(Debug)]
            pub(crate) struct $name;
            impl Operation for $name {
                const ANY_OF: &'static [&'static str] = &[$($scope),+];
            }
        )+
    };
}

operations! {
    // One user (read:user_idp_tokens reads one); listing and searching.
    ReadUser = ["read:users", "read:user_idp_tokens"];
    ReadUsers = ["read:users"];
    CreateUsers = ["create:users"];
    UpdateUsers = ["update:users", "update:users_app_metadata"];
    DeleteUsers = ["delete:users"];
    ReadLogs = ["read:logs"];
    ReadUserLogs = ["read:logs", "read:logs_users"];
    UnblockUsers = ["update:users"];
    ReadSigningKeys = ["read:signing_keys"];
    CreateSigningKeys = ["create:signing_keys"];
    UpdateSigningKeys = ["update:signing_keys"];
    ReadClients = ["read:clients", "read:client_keys"];
    CreateClients = ["create:clients"];
    UpdateClients = ["update:clients", "update:client_keys"];
    RotateClientSecret = ["update:client_keys"];
    DeleteClients = ["delete:clients"];
    ReadClientGrants = ["read:client_grants"];
    CreateClientGrants = ["create:client_grants"];
    UpdateClientGrants = ["update:client_grants"];
    DeleteClientGrants = ["delete:client_grants"];
    ReadResourceServers = ["read:resource_servers"];
    CreateResourceServers = ["create:resource_servers"];
    UpdateResourceServers = ["update:resource_servers"];
    DeleteResourceServers = ["delete:resource_servers"];
    ReadConnections = ["read:connections"];
    CreateConnections = ["create:connections"];
    UpdateConnections = ["update:connections"];
    DeleteConnections = ["delete:connections"];
    ReadRoles = ["read:roles"];
    CreateRoles = ["create:roles"];
    UpdateRoles = ["update:roles"];
    DeleteRoles = ["delete:roles"];
}

/// The caller, holding one of the scopes of `O`.
pub(crate) struct Scoped<O: Operation> {
    pub caller: Arc<ApiCaller>,
    _op: PhantomData<O>,
}

impl<O: Operation> std::ops::Deref for Scoped<O> {
    type Target = ApiCaller;
    fn deref(&self) -> &ApiCaller {
        &self.caller
    }
}

impl<O: Operation, S: Send + Sync> FromRequestParts<S> for Scoped<O> {
    type Rejection = MgmtError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, MgmtError> {
        let caller = parts
            .extensions
            .get::<Arc<ApiCaller>>()
            .cloned()
            .ok_or_else(|| MgmtError::unauthorized("Missing authentication"))?;
        if !O::ANY_OF
            .iter()
            .any(|wanted| caller.scopes.iter().any(|s| s == wanted))
        {
            return Err(MgmtError::insufficient_scope(O::ANY_OF));
        }
        Ok(Self {
            caller,
            _op: PhantomData,
        })
    }
}
