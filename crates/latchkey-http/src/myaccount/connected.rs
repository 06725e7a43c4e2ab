//! Connected accounts (Token Vault): the five operations, their input
//! validated as the official document describes, each one call to
//! `services::connected_accounts`. The browser's part of the flow (the
//! ticket, the provider's callback) is the hosted pages' (`login/connect.rs`).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, ErrorResponse, ValidationError};
use super::gate::{Authorized, CreateConnected, DeleteConnected, ReadConnected};
use super::responses::{
    CompleteConnectedAccountsResponseContent, ConnectParams, ConnectedAccount,
    ConnectedAccountConnection, CreateConnectedAccountsResponseContent,
    ListConnectedAccountsConnectionsResponseContent, ListConnectedAccountsResponseContent,
};
use super::wire::{JsonBody, parse};
use crate::app::SharedState;
use latchkey_core::services::connected_accounts::{
    self, CompleteRequest, ConnectError, ConnectRequest,
};
use latchkey_core::tenant::issuer_for_host;

impl From<ConnectError> for ApiError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Invalid(d) => ApiError::BadRequest(d),
            ConnectError::Field { pointer, detail } => ApiError::validation(pointer, detail),
            ConnectError::Query { name, detail } => {
                ApiError::Validation(vec![ValidationError::param("query", name, detail)])
            }
            ConnectError::NotFound(d) => ApiError::NotFound(d),
            ConnectError::Conflict(d) => ApiError::Conflict(d),
            ConnectError::Store(e) => e.into(),
            ConnectError::Internal(d) => ApiError::Internal(d),
        }
    }
}

fn len(pointer: &str, s: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(ApiError::validation(
            pointer,
            format!("must be between {min} and {max} characters long"),
        ));
    }
    Ok(())
}

fn uri(pointer: &str, s: &str) -> Result<(), ApiError> {
    len(pointer, s, 1, 2048)?;
    url::Url::parse(s).map_err(|_| ApiError::validation(pointer, "must be an absolute URI"))?;
    Ok(())
}

/// Extra parameters for the identity provider's authorization request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthorizationParams {
    acr_values: Option<String>,
    audience: Option<String>,
    resource: Option<String>,
    display: Option<String>,
    id_token_hint: Option<String>,
    login_hint: Option<String>,
    max_age: Option<i64>,
    prompt: Option<String>,
    ui_locales: Option<String>,
}

/// Start linking an external account.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateConnectedAccountsRequestContent {
    connection: String,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    scopes: Option<Vec<String>>,
    authorization_params: Option<AuthorizationParams>,
}

impl AuthorizationParams {
    /// The parameters given, in the document's order, as the provider's
    /// authorization request takes them.
    fn pairs(&self) -> Vec<(String, String)> {
        let max_age = self.max_age.map(|m| m.to_string());
        [
            ("acr_values", &self.acr_values),
            ("audience", &self.audience),
            ("resource", &self.resource),
            ("display", &self.display),
            ("id_token_hint", &self.id_token_hint),
            ("login_hint", &self.login_hint),
            ("max_age", &max_age),
            ("prompt", &self.prompt),
            ("ui_locales", &self.ui_locales),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), v.clone())))
        .collect()
    }
}

fn check_authorization_params(p: &AuthorizationParams) -> Result<(), ApiError> {
    let base = "/authorization_params";
    for (name, value, max) in [
        ("acr_values", &p.acr_values, 1024),
        ("audience", &p.audience, 512),
        ("resource", &p.resource, 512),
        ("id_token_hint", &p.id_token_hint, 4096),
        ("login_hint", &p.login_hint, 255),
    ] {
        if let Some(v) = value {
            len(&format!("{base}/{name}"), v, 1, max)?;
        }
    }
    if let Some(d) = &p.display
        && !["page", "popup", "touch", "wap"].contains(&d.as_str())
    {
        return Err(ApiError::validation(
            &format!("{base}/display"),
            "must be one of page, popup, touch, wap",
        ));
    }
    if let Some(pr) = &p.prompt
        && !["none", "login", "consent", "select_account"].contains(&pr.as_str())
    {
        return Err(ApiError::validation(
            &format!("{base}/prompt"),
            "must be one of none, login, consent, select_account",
        ));
    }
    if let Some(m) = p.max_age
        && !(0..=2_147_483_647).contains(&m)
    {
        return Err(ApiError::validation(
            &format!("{base}/max_age"),
            "must be between 0 and 2147483647",
        ));
    }
    if let Some(u) = &p.ui_locales {
        len(&format!("{base}/ui_locales"), u, 2, 100)?;
        let ok = u.split(' ').all(|tag| {
            let mut parts = tag.split('-');
            let lang = parts.next().unwrap_or("");
            let region = parts.next();
            lang.len() == 2
                && lang.bytes().all(|b| b.is_ascii_alphabetic())
                && region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic()))
                && parts.next().is_none()
        });
        if !ok {
            return Err(ApiError::validation(
                &format!("{base}/ui_locales"),
                "must be a list of language tags",
            ));
        }
    }
    Ok(())
}

#[utoipa::path(post, path = "/connected-accounts/connect", operation_id = "createConnectedAccountRequest",
    tag = "connected-accounts", request_body = CreateConnectedAccountsRequestContent,
    description = "Starts linking an account of an upstream connection active for connected accounts and \
        enabled for the token's application; `redirect_uri` must be one of its callback URLs. Send the \
        browser to `connect_uri?ticket=…`; it comes back to `redirect_uri` with `connect_code` and `state` \
        in the query, for `POST /connected-accounts/complete`.",
    security(("Bearer-DPoP" = ["create:me:connected_accounts"])),
    responses((status = 201, body = CreateConnectedAccountsResponseContent, headers(
            ("x-ratelimit-limit" = u32), ("x-ratelimit-remaining" = u32), ("x-ratelimit-reset" = i64))),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 415, body = ErrorResponse),
        (status = 429, body = ErrorResponse)))]
pub(super) async fn connect(
    State(state): State<SharedState>,
    caller: Authorized<CreateConnected>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let value = match body {
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(ApiError::validation("", "The body must be a JSON object.")),
        None => return Err(ApiError::validation("", "A JSON body is required.")),
    };
    let b: CreateConnectedAccountsRequestContent = parse(value)?;
    len("/connection", &b.connection, 1, 128)?;
    uri("/redirect_uri", &b.redirect_uri)?;
    if let Some(s) = &b.state {
        len("/state", s, 1, 4096)?;
    }
    match (&b.code_challenge, &b.code_challenge_method) {
        (Some(c), Some(m)) => {
            len("/code_challenge", c, 43, 128)?;
            if m != "S256" {
                return Err(ApiError::validation(
                    "/code_challenge_method",
                    "must be S256",
                ));
            }
        }
        (Some(_), None) => {
            return Err(ApiError::validation(
                "/code_challenge_method",
                "is required with code_challenge",
            ));
        }
        (None, Some(m)) if m != "S256" => {
            return Err(ApiError::validation(
                "/code_challenge_method",
                "must be S256",
            ));
        }
        _ => {}
    }
    if let Some(scopes) = &b.scopes {
        if scopes.is_empty() || scopes.len() > 100 {
            return Err(ApiError::validation(
                "/scopes",
                "must hold between 1 and 100 scopes",
            ));
        }
        for (i, s) in scopes.iter().enumerate() {
            len(&format!("/scopes/{i}"), s, 1, 255)?;
            if scopes[..i].contains(s) {
                return Err(ApiError::validation(
                    &format!("/scopes/{i}"),
                    "scopes must be unique",
                ));
            }
        }
    }
    if let Some(p) = &b.authorization_params {
        check_authorization_params(p)?;
    }
    let request = ConnectRequest {
        connection: &b.connection,
        redirect_uri: &b.redirect_uri,
        state: b.state.as_deref(),
        code_challenge: b.code_challenge.as_deref(),
        scopes: b.scopes.as_deref().unwrap_or_default(),
        authorization_params: b
            .authorization_params
            .as_ref()
            .map(AuthorizationParams::pairs)
            .unwrap_or_default(),
    };
    let started = connected_accounts::start(&state, &caller.who(), request).await?;
    let answer = CreateConnectedAccountsResponseContent {
        connect_uri: format!(
            "{}connected-accounts/connect",
            issuer_for_host(&caller.host)
        ),
        auth_session: started.auth_session,
        connect_params: ConnectParams {
            ticket: started.ticket,
        },
        expires_in: started.expires_in,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Finish linking an external account.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CompleteConnectedAccountsRequestContent {
    auth_session: String,
    connect_code: String,
    redirect_uri: String,
    code_verifier: Option<String>,
}

#[utoipa::path(post, path = "/connected-accounts/complete", operation_id = "completeConnectedAccountRequest",
    tag = "connected-accounts", request_body = CompleteConnectedAccountsRequestContent,
    description = "Stores the account the browser connected: the `auth_session` of a connect request of \
        this user and application, the `connect_code` the browser came back with, the same `redirect_uri`, \
        and the verifier of its `code_challenge`. 409 when the provider account is another user's.",
    security(("Bearer-DPoP" = ["create:me:connected_accounts"])),
    responses((status = 201, body = CompleteConnectedAccountsResponseContent, headers(
            ("x-ratelimit-limit" = u32), ("x-ratelimit-remaining" = u32), ("x-ratelimit-reset" = i64))),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 409, body = ErrorResponse),
        (status = 415, body = ErrorResponse), (status = 429, body = ErrorResponse)))]
pub(super) async fn complete(
    State(state): State<SharedState>,
    caller: Authorized<CreateConnected>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let value = match body {
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(ApiError::validation("", "The body must be a JSON object.")),
        None => return Err(ApiError::validation("", "A JSON body is required.")),
    };
    let b: CompleteConnectedAccountsRequestContent = parse(value)?;
    len("/auth_session", &b.auth_session, 1, 64)?;
    len("/connect_code", &b.connect_code, 1, 46)?;
    uri("/redirect_uri", &b.redirect_uri)?;
    if let Some(v) = &b.code_verifier {
        len("/code_verifier", v, 43, 128)?;
    }
    let request = CompleteRequest {
        auth_session: &b.auth_session,
        connect_code: &b.connect_code,
        redirect_uri: &b.redirect_uri,
        code_verifier: b.code_verifier.as_deref(),
    };
    let account = connected_accounts::complete(&state, &caller.who(), &caller.ip, request).await?;
    let answer = CompleteConnectedAccountsResponseContent::from(&account);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `from`, `take` (1–20, default 10) and, for accounts, `connection`
/// (repeated, or one JSON-array string as the generated SDK sends it).
struct Page {
    take: usize,
    from: Option<String>,
    connections: Vec<String>,
}

fn page(raw: Option<String>, allow_connection: bool) -> Result<Page, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|_| {
            ApiError::Validation(vec![ValidationError::param(
                "query",
                "",
                "malformed query string",
            )])
        })?;
    let mut take = 10;
    let mut from = None;
    let mut connections = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "take" => {
                take = v
                    .parse::<usize>()
                    .ok()
                    .filter(|t| (1..=20).contains(t))
                    .ok_or_else(|| {
                        ApiError::Validation(vec![ValidationError::param(
                            "query",
                            "take",
                            "must be an integer from 1 to 20",
                        )])
                    })?;
            }
            "from" if v.len() <= 512 => from = Some(v),
            "from" => {
                return Err(ApiError::Validation(vec![ValidationError::param(
                    "query",
                    "from",
                    "is not a cursor this API answered",
                )]));
            }
            "connection" if allow_connection => {
                let list: Vec<String> = if v.starts_with('[') {
                    serde_json::from_str(&v).map_err(|_| {
                        ApiError::Validation(vec![ValidationError::param(
                            "query",
                            "connection",
                            "must be a connection name or a JSON array of names",
                        )])
                    })?
                } else {
                    vec![v]
                };
                for c in list {
                    if c.chars().count() > 128 {
                        return Err(ApiError::Validation(vec![ValidationError::param(
                            "query",
                            "connection",
                            "must be at most 128 characters long",
                        )]));
                    }
                    connections.push(c);
                }
                if connections.len() > 20 {
                    return Err(ApiError::Validation(vec![ValidationError::param(
                        "query",
                        "connection",
                        "at most 20 connections",
                    )]));
                }
            }
            _ => {}
        }
    }
    Ok(Page {
        take,
        from,
        connections,
    })
}

#[utoipa::path(get, path = "/connected-accounts/accounts", operation_id = "getConnectedAccounts",
    tag = "connected-accounts",
    params(("connection" = Option<Vec<String>>, Query, description = "Repeated, or one JSON array"),
           ("from" = Option<String>, Query), ("take" = Option<u32>, Query, description = "1–20, default 10")),
    security(("Bearer-DPoP" = ["read:me:connected_accounts"])),
    responses((status = 200, body = ListConnectedAccountsResponseContent, headers(
            ("x-ratelimit-limit" = u32), ("x-ratelimit-remaining" = u32), ("x-ratelimit-reset" = i64))),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 429, body = ErrorResponse)))]
pub(super) async fn accounts(
    State(state): State<SharedState>,
    caller: Authorized<ReadConnected>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ListConnectedAccountsResponseContent>, ApiError> {
    let p = page(raw, true)?;
    let (accounts, next) = connected_accounts::list(
        &state,
        &caller.who(),
        &p.connections,
        p.from.as_deref(),
        p.take,
    )
    .await?;
    Ok(Json(ListConnectedAccountsResponseContent {
        accounts: accounts.iter().map(ConnectedAccount::from).collect(),
        next,
    }))
}

#[utoipa::path(get, path = "/connected-accounts/connections", operation_id = "getConnectedAccountsConnections",
    tag = "connected-accounts",
    params(("from" = Option<String>, Query), ("take" = Option<u32>, Query, description = "1–20, default 10")),
    security(("Bearer-DPoP" = ["read:me:connected_accounts"])),
    responses((status = 200, body = ListConnectedAccountsConnectionsResponseContent, headers(
            ("x-ratelimit-limit" = u32), ("x-ratelimit-remaining" = u32), ("x-ratelimit-reset" = i64))),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 429, body = ErrorResponse)))]
pub(super) async fn connections(
    caller: Authorized<ReadConnected>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ListConnectedAccountsConnectionsResponseContent>, ApiError> {
    let p = page(raw, false)?;
    let (offers, next) = connected_accounts::connections(
        &caller.tenant,
        &caller.client_id,
        p.from.as_deref(),
        p.take,
    )?;
    Ok(Json(ListConnectedAccountsConnectionsResponseContent {
        connections: offers
            .into_iter()
            .map(|c| ConnectedAccountConnection {
                name: c.name,
                strategy: c.strategy.as_str().to_owned(),
                scopes: Some(c.scopes),
            })
            .collect(),
        next,
    }))
}

#[utoipa::path(delete, path = "/connected-accounts/accounts/{id}", operation_id = "deleteConnectedAccount",
    tag = "connected-accounts",
    params(("id" = String, Path, description = "`^cac_[A-Za-z0-9]+$`")),
    security(("Bearer-DPoP" = ["delete:me:connected_accounts"])),
    description = "Deletes one of the user's connected accounts (another user's is 404): its tokens are \
        forgotten, and the provider is asked to revoke them where it can.",
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 429, body = ErrorResponse)))]
pub(super) async fn delete(
    State(state): State<SharedState>,
    caller: Authorized<DeleteConnected>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let well_formed = id
        .strip_prefix("cac_")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !well_formed {
        return Err(ApiError::Validation(vec![ValidationError::param(
            "path",
            "id",
            "must match ^cac_[A-Za-z0-9]+$",
        )]));
    }
    connected_accounts::delete(&state, &caller.who(), &caller.ip, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
