//! The Management API's clients (applications): listed, read, made with a
//! generated `client_id` (and, for a confidential client, a generated secret
//! shown once and sealed at rest as a tenant file's are), changed, deleted
//! with their grants, and their secret rotated. Every change is an edit of
//! the tenant's configuration (`config.rs`) that records the client as the
//! API's, so that applying a tenant file that does not list it keeps it.

use serde_json::json;

use super::config::{self, Logged, Page, Paging};
use super::{Caller, ManagementError};
use crate::context::Core;
use crate::rng::RngExt;
use crate::tenant::apply::client_secret_context;
use crate::tenant::{
    AppType, Client, GrantKey, GrantType, JwtConfiguration, RefreshTokenPolicy,
    RefreshTokenSettings, RotationType, TenantFile, TokenEndpointAuthMethod,
};

/// The properties of a client a request sets, of the right JSON types; the
/// keywords (`app_type`, `grant_types`, …) as given, read here.
#[derive(Debug, Clone, Default)]
pub struct ClientFields {
    pub name: Option<String>,
    pub app_type: Option<String>,
    pub callbacks: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub web_origins: Option<Vec<String>>,
    pub allowed_logout_urls: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub is_first_party: Option<bool>,
    pub oidc_conformant: Option<bool>,
    pub is_token_endpoint_ip_header_trusted: Option<bool>,
    pub jwt_configuration: Option<JwtFields>,
    pub refresh_token: Option<RefreshFields>,
    pub require_proof_of_possession: Option<bool>,
    pub require_pushed_authorization_requests: Option<bool>,
    /// At creation only: the API a `resource_server` client is the client of.
    pub resource_server_identifier: Option<String>,
    /// In a change only: the secret to present from now on.
    pub client_secret: Option<String>,
}

/// `jwt_configuration`.
#[derive(Debug, Clone, Default)]
pub struct JwtFields {
    pub lifetime_in_seconds: Option<i64>,
    pub alg: Option<String>,
}

/// `refresh_token`.
#[derive(Debug, Clone, Default)]
pub struct RefreshFields {
    pub rotation_type: Option<String>,
    pub expiration_type: Option<String>,
    pub leeway: Option<i64>,
    pub token_lifetime: Option<i64>,
    pub idle_token_lifetime: Option<i64>,
    pub infinite_token_lifetime: Option<bool>,
    pub infinite_idle_token_lifetime: Option<bool>,
    /// `(audience, scope)` of each policy.
    pub policies: Option<Vec<(String, Vec<String>)>>,
}

/// `GET /clients`' filters.
#[derive(Debug, Clone, Default)]
pub struct ClientFilter {
    pub is_global: Option<bool>,
    pub is_first_party: Option<bool>,
    /// Comma-separated `app_type`s.
    pub app_type: Option<String>,
}

/// A client just made (or whose secret was just rotated), with its secret
/// in clear: the one time it is shown.
#[derive(Debug, Clone)]
pub struct WithSecret {
    pub client: Client,
    pub secret: Option<String>,
}

/// The shortest client secret a change may set (as a tenant file's).
const MIN_SECRET_CHARS: usize = 8;
/// The longest client name.
const MAX_NAME_CHARS: usize = 255;

fn invalid(message: impl Into<String>) -> ManagementError {
    ManagementError::InvalidBody(message.into())
}

fn property_error(property: &str, message: impl std::fmt::Display) -> ManagementError {
    invalid(format!(
        "Payload validation error: '{message}' on property {property}."
    ))
}

pub(super) fn not_found() -> ManagementError {
    ManagementError::NotFound {
        code: "inexistent_client",
        message: "The client does not exist".into(),
    }
}

/// A keyword of one of the model's closed sets.
fn keyword<T: TryFrom<String, Error = String>>(
    property: &str,
    value: &str,
) -> Result<T, ManagementError> {
    T::try_from(value.to_string()).map_err(|e| property_error(property, e))
}

fn seconds(property: &str, value: i64) -> Result<u32, ManagementError> {
    u32::try_from(value).map_err(|_| property_error(property, format!("{value} is out of range")))
}

/// `GET /clients`: the tenant's clients the filters keep, a page of them.
pub fn list(
    caller: &Caller<'_>,
    filter: &ClientFilter,
    paging: Paging,
) -> Result<Page<Client>, ManagementError> {
    let app_types: Option<Vec<AppType>> = match filter.app_type.as_deref() {
        None | Some("") => None,
        Some(list) => Some(
            list.split(',')
                .map(|t| {
                    AppType::try_from(t.trim().to_string()).map_err(|e| {
                        ManagementError::InvalidQuery(format!(
                            "Query validation error: '{e}' on property app_type."
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let all: Vec<Client> = caller
        .tenant
        .config
        .clients
        .iter()
        // latchkey has no global client (Auth0's legacy "All Applications").
        .filter(|_| filter.is_global != Some(true))
        .filter(|c| filter.is_first_party.is_none_or(|f| c.first_party == f))
        .filter(|c| app_types.as_ref().is_none_or(|t| t.contains(&c.app_type)))
        .cloned()
        .collect();
    config::page(all, paging)
}

/// `GET /clients/{id}`.
pub fn get(caller: &Caller<'_>, id: &str) -> Result<Client, ManagementError> {
    caller.tenant.client(id).cloned().ok_or_else(not_found)
}

/// Sets `fields` on `client`.
fn set(client: &mut Client, f: &ClientFields) -> Result<(), ManagementError> {
    if let Some(name) = &f.name {
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS || name.contains(['<', '>']) {
            return Err(property_error(
                "name",
                format!("The name must be 1 to {MAX_NAME_CHARS} characters, without < or >"),
            ));
        }
        client.name = name.clone();
    }
    if let Some(t) = &f.app_type {
        client.app_type = keyword("app_type", t)?;
    }
    for (value, target) in [
        (&f.callbacks, &mut client.callbacks),
        (&f.allowed_origins, &mut client.allowed_origins),
        (&f.web_origins, &mut client.web_origins),
        (&f.allowed_logout_urls, &mut client.allowed_logout_urls),
    ] {
        if let Some(v) = value {
            *target = v.clone();
        }
    }
    if let Some(types) = &f.grant_types {
        client.grant_types = types
            .iter()
            .enumerate()
            .map(|(i, t)| keyword::<GrantType>(&format!("grant_types[{i}]"), t))
            .collect::<Result<_, _>>()?;
    }
    if let Some(m) = &f.token_endpoint_auth_method {
        client.token_endpoint_auth_method = Some(keyword("token_endpoint_auth_method", m)?);
    }
    if let Some(b) = f.is_first_party {
        client.first_party = b;
    }
    if f.oidc_conformant == Some(false) {
        return Err(property_error(
            "oidc_conformant",
            "latchkey's clients are all OIDC conformant",
        ));
    }
    if let Some(b) = f.is_token_endpoint_ip_header_trusted {
        client.token_endpoint_ip_header_trusted = b;
    }
    if let Some(jwt) = &f.jwt_configuration {
        if let Some(alg) = jwt.alg.as_deref().filter(|a| *a != "RS256") {
            return Err(property_error(
                "jwt_configuration.alg",
                format!("latchkey signs ID tokens with RS256, not {alg}"),
            ));
        }
        if let Some(l) = jwt.lifetime_in_seconds {
            client.jwt_configuration = JwtConfiguration {
                lifetime_in_seconds: seconds("jwt_configuration.lifetime_in_seconds", l)?,
            };
        }
    }
    if let Some(r) = &f.refresh_token {
        set_refresh(&mut client.refresh_token, r)?;
    }
    if let Some(b) = f.require_proof_of_possession {
        client.require_proof_of_possession = b;
    }
    if let Some(b) = f.require_pushed_authorization_requests {
        client.require_pushed_authorization_requests = b;
    }
    Ok(())
}

fn set_refresh(to: &mut RefreshTokenSettings, r: &RefreshFields) -> Result<(), ManagementError> {
    if let Some(t) = &r.rotation_type {
        to.rotation_type = keyword::<RotationType>("refresh_token.rotation_type", t)?;
    }
    if let Some(t) = r.expiration_type.as_deref().filter(|t| *t != "expiring") {
        return Err(property_error(
            "refresh_token.expiration_type",
            format!("latchkey's refresh tokens always expire (expiring), not {t}"),
        ));
    }
    for (property, set) in [
        (
            "refresh_token.infinite_token_lifetime",
            r.infinite_token_lifetime,
        ),
        (
            "refresh_token.infinite_idle_token_lifetime",
            r.infinite_idle_token_lifetime,
        ),
    ] {
        if set == Some(true) {
            return Err(property_error(
                property,
                "latchkey's refresh tokens always have a lifetime",
            ));
        }
    }
    if let Some(v) = r.leeway {
        to.leeway = seconds("refresh_token.leeway", v)?;
    }
    if let Some(v) = r.token_lifetime {
        to.token_lifetime = seconds("refresh_token.token_lifetime", v)?;
    }
    if let Some(v) = r.idle_token_lifetime {
        to.idle_token_lifetime = seconds("refresh_token.idle_token_lifetime", v)?;
    }
    if let Some(policies) = &r.policies {
        to.policies = policies
            .iter()
            .map(|(audience, scope)| RefreshTokenPolicy {
                audience: audience.clone(),
                scope: scope.clone(),
            })
            .collect();
    }
    Ok(())
}

/// The grant types a client made without any gets: what its type is for.
fn default_grant_types(app_type: AppType) -> Vec<GrantType> {
    match app_type {
        AppType::NonInteractive | AppType::ResourceServer => vec![GrantType::ClientCredentials],
        AppType::RegularWeb => vec![
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
        ],
        AppType::Spa | AppType::Native => {
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        }
    }
}

/// A new client secret (64 characters of base64url, as Auth0's).
fn new_secret(state: &Core) -> String {
    state.rng.token(48)
}

fn seal(state: &Core, tenant_id: &str, client_id: &str, secret: &str) -> String {
    let ctx = client_secret_context(tenant_id, client_id);
    state.sealer.seal(&*state.rng, &ctx, secret.as_bytes())
}

/// The client as the log shows it: its stored form, the secret hidden.
fn logged(before: Option<&Client>, after: Option<&Client>, id: &str) -> Logged {
    let (b, a) = (before.map(config::as_json), after.map(config::as_json));
    Logged::new(
        "client",
        id,
        config::changes(b.as_ref(), a.as_ref(), &["client_secret"]),
    )
}

/// `POST /clients`: a client with a generated `client_id` and, unless it
/// is public, a generated secret (returned this once, sealed at rest).
pub async fn create(
    state: &Core,
    caller: &Caller<'_>,
    fields: ClientFields,
) -> Result<WithSecret, ManagementError> {
    let name = fields
        .name
        .clone()
        .ok_or_else(|| invalid("Payload validation error: 'Missing required property: name'."))?;
    let app_type: AppType = match &fields.app_type {
        Some(t) => keyword("app_type", t)?,
        None => AppType::RegularWeb,
    };
    let client_id = state.rng.alnum(32);
    let mut client = Client {
        client_id: client_id.clone(),
        name,
        app_type,
        client_secret: None,
        client_secret_env: None,
        token_endpoint_auth_method: None,
        callbacks: Vec::new(),
        allowed_origins: Vec::new(),
        web_origins: Vec::new(),
        allowed_logout_urls: Vec::new(),
        grant_types: default_grant_types(app_type),
        first_party: true,
        jwt_configuration: JwtConfiguration::default(),
        refresh_token: RefreshTokenSettings::default(),
        mfa_policy: None,
        require_proof_of_possession: false,
        require_pushed_authorization_requests: false,
        token_endpoint_ip_header_trusted: false,
        resource_server_identifier: fields.resource_server_identifier.clone(),
    };
    set(&mut client, &fields)?;
    let method = client.auth_method();
    client.token_endpoint_auth_method = Some(method);
    let secret = (method != TokenEndpointAuthMethod::None).then(|| new_secret(state));
    let tenant_id = caller.tenant.id.clone();
    let made = config::change(state, caller, "Create a Client", "clients", |file| {
        let mut client = client.clone();
        client.client_secret = secret
            .as_deref()
            .map(|s| seal(state, &tenant_id, &client_id, s));
        // One chance in 62^32 of meeting another: refused rather than merged.
        if file.clients.iter().any(|c| c.client_id == client_id) {
            return Err(ManagementError::Conflict {
                code: "already_exists",
                message: "A client with this client_id already exists".into(),
            });
        }
        file.clients.push(client.clone());
        file.api_owned.clients.insert(client_id.clone());
        let log = logged(None, Some(&client), &client_id);
        Ok((client, log))
    })
    .await?;
    Ok(WithSecret {
        client: made,
        secret,
    })
}

/// The client `id` of `file`, for a change.
fn client_mut<'f>(file: &'f mut TenantFile, id: &str) -> Result<&'f mut Client, ManagementError> {
    file.clients
        .iter_mut()
        .find(|c| c.client_id == id)
        .ok_or_else(not_found)
}

/// Whether a change sets anything besides the secret.
fn settings_given(f: &ClientFields) -> bool {
    f.name.is_some()
        || f.app_type.is_some()
        || f.callbacks.is_some()
        || f.allowed_origins.is_some()
        || f.web_origins.is_some()
        || f.allowed_logout_urls.is_some()
        || f.grant_types.is_some()
        || f.token_endpoint_auth_method.is_some()
        || f.is_first_party.is_some()
        || f.oidc_conformant.is_some()
        || f.is_token_endpoint_ip_header_trusted.is_some()
        || f.jwt_configuration.is_some()
        || f.refresh_token.is_some()
        || f.require_proof_of_possession.is_some()
        || f.require_pushed_authorization_requests.is_some()
        || f.resource_server_identifier.is_some()
}

/// `PATCH /clients/{id}`: the properties given, set; the client is the API's
/// from then on (until a tenant file lists it again).
pub async fn update(
    state: &Core,
    caller: &Caller<'_>,
    id: &str,
    fields: ClientFields,
) -> Result<Client, ManagementError> {
    // A secret is a key (`update:client_keys`); everything else is the
    // client's settings (`update:clients`): neither scope buys the other.
    if fields.client_secret.is_some() && !caller.has("update:client_keys") {
        return Err(ManagementError::InsufficientScope(vec![
            "update:client_keys",
        ]));
    }
    if settings_given(&fields) && !caller.has("update:clients") {
        return Err(ManagementError::InsufficientScope(vec!["update:clients"]));
    }
    if let Some(s) = &fields.client_secret
        && s.chars().count() < MIN_SECRET_CHARS
    {
        return Err(property_error(
            "client_secret",
            format!("The client_secret must be at least {MIN_SECRET_CHARS} characters long"),
        ));
    }
    let tenant_id = caller.tenant.id.clone();
    config::change(state, caller, "Update a Client", "clients", |file| {
        let client = client_mut(file, id)?;
        let before = client.clone();
        set(client, &fields)?;
        let method = client.auth_method();
        client.token_endpoint_auth_method = Some(method);
        if method == TokenEndpointAuthMethod::None {
            // A public client presents no secret: one it had goes.
            if fields.client_secret.is_some() {
                return Err(property_error(
                    "client_secret",
                    "a client with token_endpoint_auth_method none has no client_secret",
                ));
            }
            client.client_secret = None;
            client.client_secret_env = None;
        } else if let Some(secret) = &fields.client_secret {
            // The API's secret now, no longer the environment's.
            client.client_secret = Some(seal(state, &tenant_id, id, secret));
            client.client_secret_env = None;
        }
        let after = client.clone();
        file.api_owned.clients.insert(id.to_string());
        Ok((after.clone(), logged(Some(&before), Some(&after), id)))
    })
    .await
}

/// `DELETE /clients/{id}`: the client, its grants, and its place in
/// connections' `enabled_clients`.
pub async fn delete(state: &Core, caller: &Caller<'_>, id: &str) -> Result<(), ManagementError> {
    config::change(state, caller, "Delete a Client", "clients", |file| {
        let Some(i) = file.clients.iter().position(|c| c.client_id == id) else {
            return Err(not_found());
        };
        let before = file.clients.remove(i);
        file.api_owned.clients.remove(id);
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut file.client_grants)
            .into_iter()
            .partition(|g| g.client_id == id);
        file.client_grants = kept;
        for grant in &gone {
            file.api_owned.client_grants.remove(&GrantKey::of(grant));
        }
        for connection in &mut file.connections {
            connection.enabled_clients.retain(|c| c != id);
        }
        let mut log = logged(Some(&before), None, id);
        if let Some(changes) = log.changes.as_object_mut() {
            changes.insert("client_grants_deleted".into(), json!(gone.len()));
        }
        Ok(((), log))
    })
    .await
}

/// `POST /clients/{id}/rotate-secret`: a new secret, returned this once; the
/// old one is refused from now on.
pub async fn rotate_secret(
    state: &Core,
    caller: &Caller<'_>,
    id: &str,
) -> Result<WithSecret, ManagementError> {
    let secret = new_secret(state);
    let tenant_id = caller.tenant.id.clone();
    let client = config::change(state, caller, "Rotate a client secret", "clients", |file| {
        let client = client_mut(file, id)?;
        if client.auth_method() == TokenEndpointAuthMethod::None {
            return Err(ManagementError::BadRequest {
                code: "operation_not_supported",
                message: "The client is public (token_endpoint_auth_method none): it has no secret to rotate".into(),
            });
        }
        let before = client.clone();
        client.client_secret = Some(seal(state, &tenant_id, id, &secret));
        client.client_secret_env = None;
        let after = client.clone();
        file.api_owned.clients.insert(id.to_string());
        Ok((after.clone(), logged(Some(&before), Some(&after), id)))
    })
    .await?;
    Ok(WithSecret {
        client,
        secret: Some(secret),
    })
}
