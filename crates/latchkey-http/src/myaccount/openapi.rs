//! `GET /me/v1/openapi.json`: latchkey's own OpenAPI document for the API,
//! generated from the handlers' annotations and the wire types they use, so
//! it describes exactly what this server does.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi};

use super::error::{ErrorResponse, ValidationError};
use super::responses::*;
use super::wire::*;
use super::{connected, enroll, methods};
use crate::oauth::wire::OAuthTenant;
use latchkey_core::tenant::issuer_for_host;

struct BearerDpop;

impl Modify for BearerDpop {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "Bearer-DPoP",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token for this host's My Account audience ({issuer}me/).",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "latchkey My Account API",
        description = "A signed-in user's own authentication methods, enrollable factors and \
                       connected accounts, compatible with Auth0's My Account API.",
    ),
    paths(
        methods::factors,
        methods::list,
        methods::get,
        methods::update,
        methods::delete,
        enroll::create,
        enroll::verify,
        connected::connect,
        connected::complete,
        connected::accounts,
        connected::delete,
        connected::connections,
    ),
    components(schemas(
        ErrorResponse, ValidationError, FactorTypeEnum, UsageEnum, Factor, ListFactorsResponseContent,
        AuthenticationMethod, AuthenticationMethodPassword, AuthenticationMethodMfa,
        ListAuthenticationMethodsResponseContent, PasswordAuthenticationMethodPolicy,
        PasswordComplexityPolicy, PasswordProfileDataPolicy, PasswordHistoryPolicy, PasswordDictionaryPolicy,
        CreateAuthenticationMethodRequestContent, CreateAuthenticationMethodResponseContent,
        VerifyAuthenticationMethodRequestContent, UpdateAuthenticationMethodRequestContent,
    )),
    modifiers(&BearerDpop),
    tags(
        (name = "factors"), (name = "authentication-methods"), (name = "connected-accounts"),
    ),
)]
pub(crate) struct MyAccountDoc;

/// The document, with this host's base URL as its server.
pub(crate) async fn document(OAuthTenant { host, .. }: OAuthTenant) -> Response {
    let mut doc = MyAccountDoc::openapi();
    doc.servers = Some(vec![Server::new(format!(
        "{}me/v1",
        issuer_for_host(&host)
    ))]);
    let mut res = Json(doc).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}
