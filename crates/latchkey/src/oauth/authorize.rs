//! `GET /authorize` (authorization code flow with PKCE) and the end of every
//! successful login: minting the code and answering in the response mode.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::token::CodeRequest;
use super::wire::{AuthorizeQuery, OAuthTenant};
use crate::app::{AppState, SharedState};
use crate::clock::Timestamp;
use crate::crypto::hash::secret_digest;
use crate::http::cookies;
use crate::rng::RngExt;
use crate::services::mfa;
use crate::services::policy::{self, split_scope};
use crate::store::{SessionRow, UserRow};
use crate::tenant::{GrantType, Tenant, TokenEndpointAuthMethod};

/// How long an authorization code lives.
pub const CODE_TTL: i64 = 60;
/// How long a login page stays usable.
pub const LOGIN_TTL: i64 = 15 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
    WebMessage,
}

/// A validated authorization request, kept in the login transaction while
/// the user signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub scope: Vec<String>,
    pub audience: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt_login: bool,
    pub prompt_none: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// `acr_values` asked for the multi-factor policy.
    #[serde(default)]
    pub require_mfa: bool,
    /// `dpop_jkt`: the code is bound to this DPoP key.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
}

/// An error the user's browser sees as a page: used before the redirect URI
/// is known to be the client's.
fn error_page(
    state: &AppState,
    tenant: Option<&Tenant>,
    status: StatusCode,
    message: &str,
) -> Response {
    let html = state.templates.render_error(tenant, message);
    (status, no_store(), Html(html)).into_response()
}

fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

pub async fn authorize(
    State(state): State<SharedState>,
    OAuthTenant { tenant, host }: OAuthTenant,
    query: Result<Query<AuthorizeQuery>, axum::extract::rejection::QueryRejection>,
    crate::http::ClientIp(ip): crate::http::ClientIp,
    headers: HeaderMap,
) -> Response {
    let Ok(Query(q)) = query else {
        return error_page(
            &state,
            Some(&tenant),
            StatusCode::BAD_REQUEST,
            "The authorization request is malformed.",
        );
    };
    let Some(client) = q.client_id.as_deref().and_then(|id| tenant.client(id)) else {
        return error_page(
            &state,
            Some(&tenant),
            StatusCode::BAD_REQUEST,
            "Unknown client.",
        );
    };
    let redirect_uri = match q.redirect_uri.as_deref() {
        Some(r) if client.callbacks.iter().any(|c| c == r) => r.to_string(),
        None if client.callbacks.len() == 1 => client.callbacks[0].clone(),
        _ => {
            return error_page(
                &state,
                Some(&tenant),
                StatusCode::BAD_REQUEST,
                "The redirect_uri is not registered for this application (its Allowed Callback URLs).",
            );
        }
    };
    // From here on errors go back to the client.
    let mode = match q.response_mode.as_deref() {
        None | Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some("web_message") => ResponseMode::WebMessage,
        Some(_) => {
            let back = Back::new(&redirect_uri, ResponseMode::Query, q.state.as_deref());
            return back.error(&state, "invalid_request", "Unsupported response_mode");
        }
    };
    let back = Back::new(&redirect_uri, mode, q.state.as_deref());
    match validate(&tenant, &host, &q, redirect_uri.clone(), mode) {
        Ok(req) => start(&state, &tenant, &host, req, &headers, &ip, &back).await,
        Err((error, description)) => back.error(&state, error, &description),
    }
}

fn validate(
    tenant: &Tenant,
    host: &str,
    q: &AuthorizeQuery,
    redirect_uri: String,
    response_mode: ResponseMode,
) -> Result<AuthorizeRequest, (&'static str, String)> {
    let client = q
        .client_id
        .as_deref()
        .and_then(|id| tenant.client(id))
        .ok_or(("invalid_request", "Unknown client".to_string()))?;
    match q.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err((
                "invalid_request",
                "Missing required parameter: response_type".into(),
            ));
        }
        Some(_) => {
            return Err((
                "unsupported_response_type",
                "Only response_type=code is supported".into(),
            ));
        }
    }
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err((
            "unauthorized_client",
            "Grant type 'authorization_code' not allowed for the client.".into(),
        ));
    }
    let code_challenge = match (
        q.code_challenge.as_deref(),
        q.code_challenge_method.as_deref(),
    ) {
        (Some(c), Some("S256")) => {
            if c.len() != 43
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err((
                    "invalid_request",
                    "code_challenge must be a base64url SHA-256 digest".into(),
                ));
            }
            Some(c.to_string())
        }
        (Some(_), _) => {
            return Err((
                "invalid_request",
                "code_challenge_method must be S256".into(),
            ));
        }
        (None, Some(_)) => {
            return Err((
                "invalid_request",
                "code_challenge_method without code_challenge".into(),
            ));
        }
        (None, None) => None,
    };
    if code_challenge.is_none() && client.auth_method() == TokenEndpointAuthMethod::None {
        return Err((
            "invalid_request",
            "Public clients must use PKCE (code_challenge with S256)".into(),
        ));
    }
    let prompts: Vec<&str> = q
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if prompts
        .iter()
        .any(|p| !matches!(*p, "none" | "login" | "consent" | "select_account"))
    {
        return Err(("invalid_request", "Unsupported prompt value".into()));
    }
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        return Err((
            "invalid_request",
            "prompt=none cannot be combined with other values".into(),
        ));
    }
    let max_age = match q.max_age.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<i64>().ok().filter(|v| *v >= 0).ok_or((
            "invalid_request",
            "max_age must be a non-negative integer".to_string(),
        ))?),
    };
    let dpop_jkt = match q.dpop_jkt.as_deref().filter(|j| !j.is_empty()) {
        None => None,
        Some(j)
            if j.len() == 43
                && j.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some(j.to_string())
        }
        Some(_) => {
            return Err((
                "invalid_request",
                "dpop_jkt must be a base64url SHA-256 JWK thumbprint".into(),
            ));
        }
    };
    let scope = split_scope(q.scope.as_deref());
    let audience = q.audience.clone().filter(|a| !a.is_empty());
    // Refuse early what no user could be granted (unknown API, no client grant).
    policy::user_grant(
        tenant,
        host,
        &client.client_id,
        audience.as_deref(),
        &scope,
        &|_| Vec::new(),
    )
    .map_err(|e| match e {
        policy::PolicyError::Denied(d) => ("access_denied", d),
        policy::PolicyError::Unauthorized(d) => ("unauthorized_client", d),
    })?;
    let bounded = |s: &Option<String>| s.as_ref().map(|v| v.chars().take(2048).collect::<String>());
    Ok(AuthorizeRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        response_mode,
        state: bounded(&q.state),
        nonce: bounded(&q.nonce),
        scope,
        audience,
        code_challenge,
        prompt_login: prompts.contains(&"login"),
        prompt_none,
        max_age,
        login_hint: bounded(&q.login_hint),
        dpop_jkt,
        require_mfa: q
            .acr_values
            .as_deref()
            .is_some_and(|v| v.split_whitespace().any(|a| a == mfa::MULTI_FACTOR)),
    })
}

/// The live login session of this browser, if any.
pub async fn current_session(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
) -> Option<(String, SessionRow)> {
    let raw = cookies::get(headers, cookies::SESSION)?;
    let digest = secret_digest(&raw);
    let idle = 3600 * i64::from(tenant.config.tenant.idle_session_lifetime_hours);
    let s = state
        .store
        .session(&tenant.id, &digest, state.clock.now(), idle)
        .await
        .ok()??;
    Some((digest, s))
}

async fn start(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    req: AuthorizeRequest,
    headers: &HeaderMap,
    ip: &str,
    back: &Back,
) -> Response {
    let now = state.clock.now();
    let session = if req.prompt_login {
        None
    } else {
        current_session(state, tenant, headers).await
    };
    // The Default Policy: a session older than its window cannot give a My
    // Account token silently; interactively, a user with a second factor is
    // asked for it again, anyone else logs in again.
    if let Some((_, s)) = &session
        && mfa::two_factor_window_passed(tenant, host, req.audience.as_deref(), s.auth_time, now)
    {
        if req.prompt_none {
            return back.error(
                state,
                "unmet_authentication_requirements",
                "The My Account API requires a recent second factor; log in again.",
            );
        }
        if req.max_age.is_none_or(|m| now - s.auth_time <= m) {
            let user = match state.store.user_by_id(&tenant.id, &s.user_id).await {
                Ok(u) => u.filter(|u| !u.blocked),
                Err(e) => return store_error(state, tenant, e),
            };
            let methods = match &user {
                Some(u) => match mfa::factors_of(state, tenant, &u.user_id).await {
                    Ok(m) => m,
                    Err(e) => return store_error(state, tenant, e),
                },
                None => Vec::new(),
            };
            if let Some(user) = user
                && !mfa::second_factors(&methods).is_empty()
            {
                let first: Vec<String> = s
                    .amr
                    .iter()
                    .filter(|a| !mfa::is_second_factor_amr(a))
                    .cloned()
                    .collect();
                let first = crate::login::FirstFactor {
                    user: &user,
                    amr: &first,
                    auth_time: s.auth_time,
                };
                return step_up(
                    state,
                    tenant,
                    host,
                    &req,
                    &first,
                    mfa::Need::Challenge,
                    headers,
                )
                .await;
            }
        }
    } else if let Some((_, session)) = session
        && req.max_age.is_none_or(|m| now - session.auth_time <= m)
    {
        match state.store.user_by_id(&tenant.id, &session.user_id).await {
            Ok(Some(user)) if !user.blocked => {
                return from_session(state, tenant, host, req, &user, &session, headers, back)
                    .await;
            }
            Ok(_) => {}
            Err(e) => return store_error(state, tenant, e),
        }
    }
    if req.prompt_none {
        return back.error(state, "login_required", "Login required");
    }
    if let Err(seconds) = anonymous_transaction(state, tenant, ip) {
        return retry_page(
            state,
            tenant,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many login pages were opened from your network. Please try again in a moment.",
            seconds,
        );
    }
    let tx = match new_transaction(state, tenant, &req).await {
        Ok(tx) => tx,
        Err(res) => return res,
    };
    let html =
        state
            .templates
            .render_login(tenant, &tx, req.login_hint.as_deref().unwrap_or(""), None);
    let mut res = (StatusCode::OK, no_store(), Html(html)).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(host, cookies::TRANSACTION, &tx, LOGIN_TTL),
    );
    frame_guard(&mut res);
    res
}

/// Whether `ip` may have one more login transaction stored without being
/// signed in (the `login-transaction` stage of Suspicious IP Throttling):
/// the seconds to wait if not. Bounds what anonymous callers make the store
/// hold; the sweep deletes what expires.
fn anonymous_transaction(state: &AppState, tenant: &Tenant, ip: &str) -> Result<(), i64> {
    let throttling = &tenant.config.tenant.suspicious_ip_throttling;
    if !throttling.enabled {
        return Ok(());
    }
    let stage = throttling.stage.login_transaction;
    let d = state.limiter.take(
        &format!("login-transaction:{}:{ip}", tenant.id),
        stage.max_attempts,
        u64::from(stage.rate),
    );
    if d.allowed {
        return Ok(());
    }
    tracing::warn!(tenant = %tenant.name, %ip, "too many login transactions from one IP");
    Err(d.retry_after(state.clock.now()))
}

/// A login transaction for `req`: the handle the hosted pages carry.
async fn new_transaction(
    state: &AppState,
    tenant: &Tenant,
    req: &AuthorizeRequest,
) -> Result<String, Response> {
    let now = state.clock.now();
    let tx = state.rng.token(32);
    let Ok(json) = serde_json::to_string(req) else {
        return Err(internal(state, tenant, "serialising the login transaction"));
    };
    state
        .store
        .create_login_transaction(&tenant.id, &secret_digest(&tx), &json, now, now + LOGIN_TTL)
        .await
        .map_err(|e| store_error(state, tenant, e))?;
    Ok(tx)
}

/// A login transaction whose first factor is the browser's session: the
/// page asks for the second factor alone.
async fn step_up(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    req: &AuthorizeRequest,
    first: &crate::login::FirstFactor<'_>,
    need: mfa::Need,
    headers: &HeaderMap,
) -> Response {
    let tx = match new_transaction(state, tenant, req).await {
        Ok(tx) => tx,
        Err(res) => return res,
    };
    let languages = crate::http::accept_languages(headers);
    let mut res =
        crate::login::second_factor(state, tenant, host, &tx, req, first, need, &languages).await;
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(host, cookies::TRANSACTION, &tx, LOGIN_TTL),
    );
    res
}

/// The browser's session is signed in already: the code at once, or (step
/// up) the second factor this request needs first.
#[allow(clippy::too_many_arguments)]
async fn from_session(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    req: AuthorizeRequest,
    user: &UserRow,
    session: &SessionRow,
    headers: &HeaderMap,
    back: &Back,
) -> Response {
    let Some(client) = tenant.client(&req.client_id) else {
        return internal(state, tenant, "the client of a validated request is gone");
    };
    let need = mfa::need(
        state,
        tenant,
        host,
        client,
        req.audience.as_deref(),
        &user.user_id,
        &session.amr,
        req.require_mfa,
    )
    .await;
    match need {
        Ok(mfa::Need::Nothing) => {
            complete(
                state,
                tenant,
                host,
                &req,
                user,
                session.auth_time,
                &session.amr,
                back,
            )
            .await
        }
        Ok(_) if req.prompt_none => back.error(
            state,
            "login_required",
            "Multifactor authentication required",
        ),
        Ok(need) => {
            let first = crate::login::FirstFactor {
                user,
                amr: &session.amr,
                auth_time: session.auth_time,
            };
            step_up(state, tenant, host, &req, &first, need, headers).await
        }
        Err(e) => store_error(state, tenant, e),
    }
}

pub fn internal(state: &AppState, tenant: &Tenant, cause: impl std::fmt::Display) -> Response {
    tracing::error!(%cause, tenant = %tenant.name, "authorize failed");
    error_page(
        state,
        Some(tenant),
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong. Please try again.",
    )
}

/// A page asking to come back in `seconds` (with `retry-after`): 429 when
/// the caller made too many attempts, 503 when the server is too busy.
pub fn retry_page(
    state: &AppState,
    tenant: &Tenant,
    status: StatusCode,
    message: &str,
    seconds: i64,
) -> Response {
    let mut res = error_page(state, Some(tenant), status, message);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    res
}

/// A page for a store failure: 503 when the database is out of reach (it
/// heals by itself), 500 otherwise.
pub fn store_error(state: &AppState, tenant: &Tenant, e: crate::store::StoreError) -> Response {
    if crate::http::store_unavailable(&e) {
        tracing::warn!(error = %e, tenant = %tenant.name, "database unavailable");
        let mut res = error_page(
            state,
            Some(tenant),
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable. Please try again in a moment.",
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return res;
    }
    internal(state, tenant, e)
}

/// Pages with forms must not be framed by other sites.
pub fn frame_guard(res: &mut Response) {
    res.headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
}

/// Issues a code for an authenticated user and sends it back.
#[allow(clippy::too_many_arguments)]
pub async fn complete(
    state: &AppState,
    tenant: &Tenant,
    host: &str,
    req: &AuthorizeRequest,
    user: &UserRow,
    auth_time: Timestamp,
    amr: &[String],
    back: &Back,
) -> Response {
    // Every path here has met the second factor the request needs; this is
    // the last line should one not have.
    let Some(client) = tenant.client(&req.client_id) else {
        return internal(state, tenant, "the client of a validated request is gone");
    };
    let need = mfa::need(
        state,
        tenant,
        host,
        client,
        req.audience.as_deref(),
        &user.user_id,
        amr,
        req.require_mfa,
    )
    .await;
    match need {
        Ok(mfa::Need::Nothing) => {}
        Ok(_) => {
            tracing::error!(tenant = %tenant.name, "a login reached the code without its second factor");
            return back.error(
                state,
                if req.prompt_none {
                    "login_required"
                } else {
                    "access_denied"
                },
                "Multifactor authentication required",
            );
        }
        Err(e) => return store_error(state, tenant, e),
    }
    let now = state.clock.now();
    let grant_id = state.new_grant_id();
    if let Err(e) = state
        .store
        .create_grant(
            &tenant.id,
            &grant_id,
            &req.client_id,
            Some(&user.user_id),
            now,
        )
        .await
    {
        return store_error(state, tenant, e);
    }
    let code = state.rng.token(32);
    let stored = CodeRequest {
        client_id: req.client_id.clone(),
        user_id: user.user_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        requested_scope: req.scope.clone(),
        audience: req.audience.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time,
        amr: amr.to_vec(),
        dpop_jkt: req.dpop_jkt.clone(),
        host: Some(host.to_string()),
    };
    let Ok(json) = serde_json::to_string(&stored) else {
        return internal(state, tenant, "serialising the code");
    };
    if let Err(e) = state
        .store
        .create_code(
            &tenant.id,
            &secret_digest(&code),
            &grant_id,
            &json,
            now + CODE_TTL,
        )
        .await
    {
        return store_error(state, tenant, e);
    }
    back.success(state, &code)
}

/// Where and how the answer goes back to the client.
pub struct Back {
    redirect_uri: String,
    mode: ResponseMode,
    state: Option<String>,
}

impl Back {
    pub fn new(redirect_uri: &str, mode: ResponseMode, state: Option<&str>) -> Self {
        Self {
            redirect_uri: redirect_uri.to_string(),
            mode,
            state: state.map(str::to_string),
        }
    }

    pub fn for_request(req: &AuthorizeRequest) -> Self {
        Self::new(&req.redirect_uri, req.response_mode, req.state.as_deref())
    }

    fn send(&self, app: &AppState, mut params: Vec<(&str, String)>) -> Response {
        if let Some(s) = &self.state {
            params.push(("state", s.clone()));
        }
        match self.mode {
            ResponseMode::Query | ResponseMode::Fragment => {
                let encoded = serde_urlencoded::to_string(&params).unwrap_or_default();
                let sep = if self.mode == ResponseMode::Fragment {
                    '#'
                } else if self.redirect_uri.contains('?') {
                    '&'
                } else {
                    '?'
                };
                let mut res = crate::http::found(&format!("{}{sep}{encoded}", self.redirect_uri));
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                res
            }
            ResponseMode::FormPost => {
                let html = app.templates.render_form_post(&self.redirect_uri, &params);
                (StatusCode::OK, no_store(), Html(html)).into_response()
            }
            ResponseMode::WebMessage => {
                let origin = url::Url::parse(&self.redirect_uri)
                    .map(|u| u.origin().ascii_serialization())
                    .unwrap_or_default();
                let nonce = app.rng.token(16);
                let html = app.templates.render_web_message(&origin, &params, &nonce);
                let mut res = (StatusCode::OK, no_store(), Html(html)).into_response();
                if let Ok(csp) = HeaderValue::from_str(&format!(
                    "default-src 'none'; script-src 'nonce-{nonce}'"
                )) {
                    res.headers_mut()
                        .insert(header::CONTENT_SECURITY_POLICY, csp);
                }
                res
            }
        }
    }

    pub fn success(&self, app: &AppState, code: &str) -> Response {
        self.send(app, vec![("code", code.to_string())])
    }

    pub fn error(&self, app: &AppState, error: &str, description: &str) -> Response {
        self.send(
            app,
            vec![
                ("error", error.to_string()),
                ("error_description", description.to_string()),
            ],
        )
    }
}
