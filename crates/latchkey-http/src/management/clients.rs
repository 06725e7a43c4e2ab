//! `/api/v2/clients`, `/api/v2/clients/{id}` and
//! `/api/v2/clients/{id}/rotate-secret`: each handler reads its body or
//! query, calls one service of `services::management::clients` and shapes
//! the answer as Auth0's client object (never its secret, but at creation
//! and rotation).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::MgmtError;
use super::gate::{
    CreateClients, DeleteClients, ReadClients, RotateClientSecret, Scoped, UpdateClients,
};
use super::wire::{MgmtJson, Props, QueryParams, paged};
use crate::app::SharedState;
use latchkey_core::services::management::clients::{
    self, ClientFields, ClientFilter, JwtFields, RefreshFields, WithSecret,
};
use latchkey_core::tenant::Client;

/// A client in the shape of Auth0's client object.
fn client_object(c: &Client, tenant: &str) -> Map<String, Value> {
    let r = &c.refresh_token;
    let mut refresh = json!({
        "rotation_type": r.rotation_type.as_str(),
        "expiration_type": "expiring",
        "leeway": r.leeway,
        "token_lifetime": r.token_lifetime,
        "infinite_token_lifetime": false,
        "idle_token_lifetime": r.idle_token_lifetime,
        "infinite_idle_token_lifetime": false,
    });
    if !r.policies.is_empty()
        && let Some(o) = refresh.as_object_mut()
    {
        o.insert("policies".into(), json!(r.policies));
    }
    let mut o = Map::new();
    o.insert("client_id".into(), json!(c.client_id));
    o.insert("tenant".into(), json!(tenant));
    o.insert("name".into(), json!(c.name));
    o.insert("global".into(), json!(false));
    o.insert("app_type".into(), json!(c.app_type.as_str()));
    o.insert("is_first_party".into(), json!(c.first_party));
    o.insert("oidc_conformant".into(), json!(true));
    o.insert("callbacks".into(), json!(c.callbacks));
    o.insert("allowed_origins".into(), json!(c.allowed_origins));
    o.insert("web_origins".into(), json!(c.web_origins));
    o.insert("allowed_logout_urls".into(), json!(c.allowed_logout_urls));
    let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
    o.insert("grant_types".into(), json!(grants));
    o.insert(
        "token_endpoint_auth_method".into(),
        json!(c.auth_method().as_str()),
    );
    o.insert(
        "is_token_endpoint_ip_header_trusted".into(),
        json!(c.token_endpoint_ip_header_trusted),
    );
    o.insert(
        "jwt_configuration".into(),
        json!({
            "alg": "RS256",
            "lifetime_in_seconds": c.jwt_configuration.lifetime_in_seconds,
            "secret_encoded": false,
        }),
    );
    o.insert("refresh_token".into(), refresh);
    o.insert(
        "require_proof_of_possession".into(),
        json!(c.require_proof_of_possession),
    );
    o.insert(
        "require_pushed_authorization_requests".into(),
        json!(c.require_pushed_authorization_requests),
    );
    if let Some(api) = &c.resource_server_identifier {
        o.insert("resource_server_identifier".into(), json!(api));
    }
    o
}

/// A client with its secret in clear, the once it is shown.
fn with_secret(made: &WithSecret, tenant: &str) -> Value {
    let mut o = client_object(&made.client, tenant);
    if let Some(secret) = &made.secret {
        o.insert("client_secret".into(), json!(secret));
    }
    Value::Object(o)
}

/// The properties of a client a body may set (`creating`: those of `POST`,
/// else those of `PATCH`).
fn fields(body: Map<String, Value>, creating: bool) -> Result<ClientFields, MgmtError> {
    let mut p = Props::new(body);
    let jwt_configuration = match p.nested("jwt_configuration")? {
        None => None,
        Some(mut j) => {
            let f = JwtFields {
                lifetime_in_seconds: j.integer("lifetime_in_seconds")?,
                alg: j.string("alg")?,
            };
            // Auth0's default; latchkey has no other.
            if j.boolean("secret_encoded")? == Some(true) {
                return Err(MgmtError::bad_body(
                    "Payload validation error: 'latchkey signs ID tokens with RS256: there is no secret to encode' on property jwt_configuration.secret_encoded.",
                ));
            }
            j.finish()?;
            Some(f)
        }
    };
    let refresh_token = match p.nested("refresh_token")? {
        None => None,
        Some(mut r) => {
            let policies = match r.objects("policies")? {
                None => None,
                Some(items) => Some(
                    items
                        .into_iter()
                        .map(|mut item| {
                            let audience = item
                                .string("audience")?
                                .ok_or_else(|| item.missing("audience"))?;
                            let scope = item
                                .strings("scope")?
                                .ok_or_else(|| item.missing("scope"))?;
                            item.finish()?;
                            Ok((audience, scope))
                        })
                        .collect::<Result<Vec<_>, MgmtError>>()?,
                ),
            };
            let f = RefreshFields {
                rotation_type: r.string("rotation_type")?,
                expiration_type: r.string("expiration_type")?,
                leeway: r.integer("leeway")?,
                token_lifetime: r.integer("token_lifetime")?,
                idle_token_lifetime: r.integer("idle_token_lifetime")?,
                infinite_token_lifetime: r.boolean("infinite_token_lifetime")?,
                infinite_idle_token_lifetime: r.boolean("infinite_idle_token_lifetime")?,
                policies,
            };
            r.finish()?;
            Some(f)
        }
    };
    let f = ClientFields {
        name: p.string("name")?,
        app_type: p.string("app_type")?,
        callbacks: p.strings("callbacks")?,
        allowed_origins: p.strings("allowed_origins")?,
        web_origins: p.strings("web_origins")?,
        allowed_logout_urls: p.strings("allowed_logout_urls")?,
        grant_types: p.strings("grant_types")?,
        token_endpoint_auth_method: p.string("token_endpoint_auth_method")?,
        is_first_party: p.boolean("is_first_party")?,
        oidc_conformant: p.boolean("oidc_conformant")?,
        is_token_endpoint_ip_header_trusted: p.boolean("is_token_endpoint_ip_header_trusted")?,
        jwt_configuration,
        refresh_token,
        require_proof_of_possession: p.boolean("require_proof_of_possession")?,
        require_pushed_authorization_requests: p
            .boolean("require_pushed_authorization_requests")?,
        resource_server_identifier: if creating {
            p.string("resource_server_identifier")?
        } else {
            None
        },
        client_secret: if creating {
            None
        } else {
            p.string("client_secret")?
        },
    };
    p.finish()?;
    Ok(f)
}

/// `GET /clients`.
pub(crate) async fn list(
    caller: Scoped<ReadClients>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&[
        "fields",
        "include_fields",
        "page",
        "per_page",
        "include_totals",
        "is_global",
        "is_first_party",
        "app_type",
    ])?;
    let projection = query.projection()?;
    let filter = ClientFilter {
        is_global: query.boolean("is_global")?,
        is_first_party: query.boolean("is_first_party")?,
        app_type: query.get("app_type").map(str::to_string),
    };
    let found = clients::list(&caller.caller(), &filter, query.paging()?)?;
    let tenant = &caller.tenant.name;
    paged(&query, "clients", found, |c| {
        projection.apply(client_object(c, tenant))
    })
}

/// `GET /clients/{id}`.
pub(crate) async fn get(
    caller: Scoped<ReadClients>,
    Path(id): Path<String>,
    query: QueryParams,
) -> Result<Json<Value>, MgmtError> {
    query.only(&["fields", "include_fields"])?;
    let projection = query.projection()?;
    let found = clients::get(&caller.caller(), &id)?;
    Ok(Json(
        projection.apply(client_object(&found, &caller.tenant.name)),
    ))
}

/// `POST /clients`.
pub(crate) async fn create(
    State(state): State<SharedState>,
    caller: Scoped<CreateClients>,
    MgmtJson(body): MgmtJson,
) -> Result<Response, MgmtError> {
    let f = fields(body, true)?;
    let made = clients::create(&state, &caller.caller(), f).await?;
    Ok((
        StatusCode::CREATED,
        Json(with_secret(&made, &caller.tenant.name)),
    )
        .into_response())
}

/// `PATCH /clients/{id}`.
pub(crate) async fn update(
    State(state): State<SharedState>,
    caller: Scoped<UpdateClients>,
    Path(id): Path<String>,
    MgmtJson(body): MgmtJson,
) -> Result<Json<Value>, MgmtError> {
    let f = fields(body, false)?;
    let updated = clients::update(&state, &caller.caller(), &id, f).await?;
    Ok(Json(Value::Object(client_object(
        &updated,
        &caller.tenant.name,
    ))))
}

/// `DELETE /clients/{id}`.
pub(crate) async fn delete(
    State(state): State<SharedState>,
    caller: Scoped<DeleteClients>,
    Path(id): Path<String>,
) -> Result<StatusCode, MgmtError> {
    clients::delete(&state, &caller.caller(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /clients/{id}/rotate-secret`.
pub(crate) async fn rotate_secret(
    State(state): State<SharedState>,
    caller: Scoped<RotateClientSecret>,
    Path(id): Path<String>,
) -> Result<Json<Value>, MgmtError> {
    let rotated = clients::rotate_secret(&state, &caller.caller(), &id).await?;
    Ok(Json(with_secret(&rotated, &caller.tenant.name)))
}
