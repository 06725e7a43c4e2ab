//! The authorization request: validating it against the tenant and its
//! client, and deciding what a browser's session makes of it — an error for
//! the client, a code at once, a login, or the second factor the session
//! lacks (step-up). The login transaction that carries a request through the
//! hosted pages, and the code issued at the end, are `login_flow.rs`'s.

use serde::{Deserialize, Serialize};

use super::login_flow::{self, FlowError, Issued};
use super::mfa::{self, Need};
use super::policy::{self, split_scope};
use crate::clock::Timestamp;
use crate::context::Core;
use crate::store::{SessionRow, UserRow};
use crate::tenant::{GrantType, Tenant, TokenEndpointAuthMethod};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
    WebMessage,
}

/// What the authorization endpoint answers with (`response_type`): a code,
/// an access token, an ID token, or a combination (OAuth 2.0 Multiple
/// Response Type Encoding Practices; the words in any order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseType {
    pub code: bool,
    pub id_token: bool,
    pub token: bool,
}

impl Default for ResponseType {
    /// `code` (what a transaction stored before the others existed holds).
    fn default() -> Self {
        Self {
            code: true,
            id_token: false,
            token: false,
        }
    }
}

impl ResponseType {
    /// Every combination served, as discovery lists them.
    pub const SUPPORTED: [&'static str; 7] = [
        "code",
        "id_token",
        "token",
        "id_token token",
        "code id_token",
        "code token",
        "code id_token token",
    ];

    /// Parses the space-separated words; `None` for an unknown word, a
    /// repeated one, or none at all.
    pub fn parse(s: &str) -> Option<Self> {
        let mut rt = Self {
            code: false,
            id_token: false,
            token: false,
        };
        let mut any = false;
        for word in s.split(' ').filter(|w| !w.is_empty()) {
            let seen = match word {
                "code" => &mut rt.code,
                "id_token" => &mut rt.id_token,
                "token" => &mut rt.token,
                _ => return None,
            };
            if *seen {
                return None;
            }
            *seen = true;
            any = true;
        }
        any.then_some(rt)
    }

    /// Whether tokens come from the authorization endpoint itself (the
    /// client needs the `implicit` grant type, and the answer never goes in
    /// the query).
    pub fn front_channel(self) -> bool {
        self.id_token || self.token
    }

    /// The response mode when the request names none.
    pub fn default_mode(self) -> ResponseMode {
        if self.front_channel() {
            ResponseMode::Fragment
        } else {
            ResponseMode::Query
        }
    }
}

/// A validated authorization request, kept in the login transaction while
/// the user signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    #[serde(default)]
    pub response_type: ResponseType,
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
    /// `connection`: the login goes straight to this upstream connection,
    /// or to this passwordless connection's page alone (a database
    /// connection's name shows the login page).
    #[serde(default)]
    pub connection: Option<String>,
    /// `ui_locales`: the languages the pages of this login should speak,
    /// space-separated, most wanted first (see `services::language`).
    #[serde(default)]
    pub ui_locales: Option<String>,
}

/// The parameters of an authorization request, as sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct Params<'a> {
    pub response_type: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub state: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    pub prompt: Option<&'a str>,
    pub max_age: Option<&'a str>,
    pub login_hint: Option<&'a str>,
    pub acr_values: Option<&'a str>,
    pub dpop_jkt: Option<&'a str>,
    pub response_mode: Option<&'a str>,
    pub connection: Option<&'a str>,
    pub ui_locales: Option<&'a str>,
    /// Pushed to `POST /oauth/par` (else sent in the browser's URL).
    pub pushed: bool,
}

/// Where and how the answer goes back to the client.
#[derive(Debug, Clone)]
pub struct Reply {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub state: Option<String>,
}

impl Reply {
    /// The answer to a request kept in a login transaction.
    pub fn to(req: &AuthorizeRequest) -> Self {
        Self {
            redirect_uri: req.redirect_uri.clone(),
            mode: req.response_mode,
            state: req.state.clone(),
        }
    }
}

/// Why a request is refused.
#[derive(Debug)]
pub enum Invalid {
    /// Before the redirect URI is known to be the client's: the browser is
    /// told on a page, never redirected.
    Page(&'static str),
    /// Sent back to the client in the response mode.
    Client {
        reply: Reply,
        error: &'static str,
        description: String,
    },
}

/// Validates a request: the client and its redirect URI first (errors are
/// pages), then the rest (errors go back to the client). The request, and
/// where its answer goes.
pub fn validate(
    tenant: &Tenant,
    host: &str,
    q: &Params<'_>,
) -> Result<(AuthorizeRequest, Reply), Invalid> {
    let Some(client) = q.client_id.and_then(|id| tenant.client(id)) else {
        return Err(Invalid::Page("Unknown client."));
    };
    let redirect_uri = match q.redirect_uri {
        Some(r) if client.callbacks.iter().any(|c| c == r) => r.to_string(),
        None if client.callbacks.len() == 1 => client.callbacks[0].clone(),
        _ => {
            return Err(Invalid::Page(
                "The redirect_uri is not registered for this application (its Allowed Callback URLs).",
            ));
        }
    };
    // From here on errors go back to the client.
    let reply = |mode| Reply {
        redirect_uri: redirect_uri.clone(),
        mode,
        state: q.state.map(str::to_string),
    };
    // The response type first: it decides the response mode errors go in.
    let response_type = match q.response_type {
        None => {
            return Err(Invalid::Client {
                reply: reply(ResponseMode::Query),
                error: "invalid_request",
                description: "Missing required parameter: response_type".into(),
            });
        }
        Some(rt) => match ResponseType::parse(rt) {
            Some(rt) => rt,
            None => {
                return Err(Invalid::Client {
                    reply: reply(ResponseMode::Query),
                    error: "unsupported_response_type",
                    description: format!(
                        "Unsupported response_type; supported: {}",
                        ResponseType::SUPPORTED.join(", ")
                    ),
                });
            }
        },
    };
    let default_mode = response_type.default_mode();
    let mode = match q.response_mode {
        None => default_mode,
        Some("query") if response_type.front_channel() => {
            // Tokens never go in a query string (Multiple Response Types §5).
            return Err(Invalid::Client {
                reply: reply(default_mode),
                error: "invalid_request",
                description: "response_mode=query is not allowed for a response_type with \
                              token or id_token"
                    .into(),
            });
        }
        Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some("web_message") => ResponseMode::WebMessage,
        Some(_) => {
            return Err(Invalid::Client {
                reply: reply(default_mode),
                error: "invalid_request",
                description: "Unsupported response_mode".into(),
            });
        }
    };
    if client.require_pushed_authorization_requests && !q.pushed {
        return Err(Invalid::Client {
            reply: reply(mode),
            error: "invalid_request",
            description: "This client requires Pushed Authorization Requests: push the request to \
                          /oauth/par and send its request_uri"
                .into(),
        });
    }
    match checked(tenant, host, q, redirect_uri.clone(), response_type, mode) {
        Ok(req) => Ok((req, reply(mode))),
        Err((error, description)) => Err(Invalid::Client {
            reply: reply(mode),
            error,
            description,
        }),
    }
}

/// The parameters after the client and its redirect URI.
fn checked(
    tenant: &Tenant,
    host: &str,
    q: &Params<'_>,
    redirect_uri: String,
    response_type: ResponseType,
    response_mode: ResponseMode,
) -> Result<AuthorizeRequest, (&'static str, String)> {
    let client = q
        .client_id
        .and_then(|id| tenant.client(id))
        .ok_or(("invalid_request", "Unknown client".to_string()))?;
    if response_type.code && !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err((
            "unauthorized_client",
            "Grant type 'authorization_code' not allowed for the client.".into(),
        ));
    }
    if response_type.front_channel() && !client.grant_types.contains(&GrantType::Implicit) {
        return Err((
            "unauthorized_client",
            "Grant type 'implicit' not allowed for the client.".into(),
        ));
    }
    let code_challenge = code_challenge(q.code_challenge, q.code_challenge_method)?;
    if response_type.code
        && code_challenge.is_none()
        && client.auth_method() == TokenEndpointAuthMethod::None
    {
        return Err((
            "invalid_request",
            "Public clients must use PKCE (code_challenge with S256)".into(),
        ));
    }
    if response_type.id_token {
        // OpenID Connect Core 3.2.2.1 and 3.3.2.11: an ID token from the
        // authorization endpoint is bound to the request by its nonce.
        if q.nonce.is_none_or(str::is_empty) {
            return Err((
                "invalid_request",
                "Missing required parameter: nonce (required when response_type includes \
                 id_token)"
                    .into(),
            ));
        }
        if !split_scope(q.scope).iter().any(|s| s == "openid") {
            return Err((
                "invalid_request",
                "response_type includes id_token: the scope must include openid".into(),
            ));
        }
    }
    let prompts: Vec<&str> = q
        .prompt
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
    let max_age = match q.max_age {
        None => None,
        Some(s) => Some(s.parse::<i64>().ok().filter(|v| *v >= 0).ok_or((
            "invalid_request",
            "max_age must be a non-negative integer".to_string(),
        ))?),
    };
    let dpop_jkt = match q.dpop_jkt.filter(|j| !j.is_empty()) {
        None => None,
        // The authorization endpoint's access token has no proof to bind to.
        Some(_) if response_type.token => {
            return Err((
                "invalid_request",
                "dpop_jkt cannot be used with a response_type that includes token".into(),
            ));
        }
        Some(j) if j.len() == 43 && base64url(j) => Some(j.to_string()),
        Some(_) => {
            return Err((
                "invalid_request",
                "dpop_jkt must be a base64url SHA-256 JWK thumbprint".into(),
            ));
        }
    };
    let connection = match q.connection.filter(|c| !c.is_empty()) {
        None => None,
        Some(name) if tenant.database_connection(name).is_some() => None,
        Some(name)
            if super::upstream_login::login_connection(tenant, &client.client_id, name)
                .is_some() =>
        {
            Some(name.to_string())
        }
        // A passwordless connection the application may use: its page
        // alone (the code sent to an address, as Universal Login's).
        Some(name)
            if tenant
                .config
                .connections
                .iter()
                .any(|c| c.name == name && c.passwordless_for(&client.client_id)) =>
        {
            Some(name.to_string())
        }
        Some(name) if tenant.upstream_connection(name).is_some() => {
            return Err(("invalid_request", "the connection was disabled".into()));
        }
        Some(_) => return Err(("invalid_request", "the connection was not found".into())),
    };
    let scope = split_scope(q.scope);
    let audience = q.audience.filter(|a| !a.is_empty()).map(str::to_string);
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
    let bounded = |s: Option<&str>| s.map(|v| v.chars().take(2048).collect::<String>());
    Ok(AuthorizeRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        response_type,
        response_mode,
        state: bounded(q.state),
        nonce: bounded(q.nonce),
        scope,
        audience,
        code_challenge,
        prompt_login: prompts.contains(&"login"),
        prompt_none,
        max_age,
        login_hint: bounded(q.login_hint),
        dpop_jkt,
        connection,
        // Only its first few tags are ever read.
        ui_locales: q
            .ui_locales
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.chars().take(256).collect()),
        require_mfa: q
            .acr_values
            .is_some_and(|v| v.split_whitespace().any(|a| a == mfa::MULTI_FACTOR)),
    })
}

fn base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// PKCE: S256 only, a 43-character base64url digest.
fn code_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<String>, (&'static str, String)> {
    match (challenge, method) {
        (Some(c), Some("S256")) => {
            if c.len() != 43 || !base64url(c) {
                return Err((
                    "invalid_request",
                    "code_challenge must be a base64url SHA-256 digest".into(),
                ));
            }
            Ok(Some(c.to_string()))
        }
        (Some(_), _) => Err((
            "invalid_request",
            "code_challenge_method must be S256".into(),
        )),
        (None, Some(_)) => Err((
            "invalid_request",
            "code_challenge_method without code_challenge".into(),
        )),
        (None, None) => Ok(None),
    }
}

/// What a validated request comes to with the browser's session.
#[derive(Debug)]
pub enum Decision {
    /// An error for the client, in its response mode.
    Refuse {
        error: &'static str,
        description: &'static str,
    },
    /// Signed in already: the code was issued (or refused at the last check).
    Issued(Issued),
    /// The user logs in on the hosted pages.
    Login,
    /// The session's first factor stands; the second step asks for what it
    /// lacks.
    StepUp(Box<StepUp>),
}

/// A step-up: the session's user, the first factor it established, and what
/// the second step must get.
#[derive(Debug)]
pub struct StepUp {
    pub user: UserRow,
    pub amr: Vec<String>,
    pub auth_time: Timestamp,
    pub need: Need,
}

/// Decides a request given the browser's live session, if any (none is
/// looked at under `prompt=login`).
pub async fn decide(
    core: &Core,
    tenant: &Tenant,
    host: &str,
    req: &AuthorizeRequest,
    session: Option<SessionRow>,
) -> Result<Decision, FlowError> {
    let now = core.clock.now();
    let session = if req.prompt_login { None } else { session };
    let fresh = |s: &SessionRow| req.max_age.is_none_or(|m| now - s.auth_time <= m);
    // The Default Policy: a session older than its window cannot give a My
    // Account token silently; interactively, a user with a second factor is
    // asked for it again, anyone else logs in again.
    if let Some(s) = &session
        && mfa::two_factor_window_passed(tenant, host, req.audience.as_deref(), s.auth_time, now)
    {
        if req.prompt_none {
            return Ok(Decision::Refuse {
                error: "unmet_authentication_requirements",
                description: "The My Account API requires a recent second factor; log in again.",
            });
        }
        if fresh(s)
            && let Some(step_up) = window_step_up(core, tenant, s).await?
        {
            return Ok(Decision::StepUp(Box::new(step_up)));
        }
    } else if let Some(session) = session
        && fresh(&session)
        && let Some(user) = login_flow::active_user(core, tenant, &session.user_id).await?
    {
        return from_session(core, tenant, host, req, user, session).await;
    }
    if req.prompt_none {
        return Ok(Decision::Refuse {
            error: "login_required",
            description: "Login required",
        });
    }
    Ok(Decision::Login)
}

/// Past the Default Policy's window: the second factor again, for a user
/// who has one.
async fn window_step_up(
    core: &Core,
    tenant: &Tenant,
    s: &SessionRow,
) -> Result<Option<StepUp>, FlowError> {
    let Some(user) = login_flow::active_user(core, tenant, &s.user_id).await? else {
        return Ok(None);
    };
    let methods = mfa::factors_of(core, tenant, &user.user_id).await?;
    if mfa::second_factors(&methods).is_empty() {
        return Ok(None);
    }
    let amr = mfa::first_factor_amr(&s.amr);
    Ok(Some(StepUp {
        user,
        amr,
        auth_time: s.auth_time,
        need: Need::Challenge,
    }))
}

/// The browser's session is signed in already: the code at once, or (step
/// up) the second factor this request needs first.
async fn from_session(
    core: &Core,
    tenant: &Tenant,
    host: &str,
    req: &AuthorizeRequest,
    user: UserRow,
    session: SessionRow,
) -> Result<Decision, FlowError> {
    let Some(client) = tenant.client(&req.client_id) else {
        return Err(FlowError::Internal(
            "the client of a validated request is gone".into(),
        ));
    };
    let need = mfa::need(
        core,
        tenant,
        host,
        client,
        req.audience.as_deref(),
        &user.user_id,
        &session.amr,
        req.require_mfa,
    )
    .await?;
    match need {
        Need::Nothing => {
            let issued = login_flow::issue_code(
                core,
                tenant,
                host,
                req,
                &user,
                session.auth_time,
                &session.amr,
            )
            .await?;
            Ok(Decision::Issued(issued))
        }
        _ if req.prompt_none => Ok(Decision::Refuse {
            error: "login_required",
            description: "Multifactor authentication required",
        }),
        need => Ok(Decision::StepUp(Box::new(StepUp {
            user,
            amr: session.amr,
            auth_time: session.auth_time,
            need,
        }))),
    }
}

#[cfg(test)]
mod tests {
    use super::ResponseType;

    #[test]
    fn response_types_parse_in_any_order_and_nothing_else() {
        let hybrid = ResponseType::parse("token code id_token").unwrap();
        assert!(hybrid.code && hybrid.id_token && hybrid.token);
        for rt in ResponseType::SUPPORTED {
            assert!(ResponseType::parse(rt).is_some(), "{rt}");
        }
        let id = ResponseType::parse("id_token").unwrap();
        assert!(!id.code && id.front_channel());
        assert!(!ResponseType::parse("code").unwrap().front_channel());
        for bad in ["", " ", "none", "code code", "code refresh_token", "CODE"] {
            assert!(ResponseType::parse(bad).is_none(), "{bad:?}");
        }
    }
}
