//! Which scopes a token may carry: requested ∩ client grant (under
//! `require_client_grant`) ∩ the user's permissions (when RBAC is enforced),
//! plus the OpenID Connect scopes, which are the user's own to grant.

use crate::tenant::{
    GrantType, MANAGEMENT_API_SCOPES, MY_ACCOUNT_SCOPES, MyAccountUserPolicy, SubjectType, Tenant,
};

/// Scopes about the user themself; no client grant caps them.
pub(crate) const OIDC_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// `access_denied`, with a description.
    Denied(String),
    /// `invalid_request`/`unauthorized_client`, with a description.
    Unauthorized(String),
}

/// What a token will be for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Granted {
    /// The requested API, when there is one.
    pub audience: Option<String>,
    pub scopes: Vec<String>,
    /// Access-token lifetime in seconds.
    pub lifetime: i64,
}

impl Granted {
    pub(crate) fn scope_string(&self) -> String {
        self.scopes.join(" ")
    }

    pub(crate) fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

pub fn split_scope(scope: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

const NO_AUDIENCE_LIFETIME: i64 = 86_400;

/// The scopes of the MFA API (`{issuer}mfa/`): enrolling, listing and
/// removing the token's own user's authenticators.
pub const MFA_API_SCOPES: [&str; 3] = ["enroll", "read:authenticators", "remove:authenticators"];
/// Lifetime of an MFA API access token, seconds (Auth0's, not configurable).
pub const MFA_API_TOKEN_LIFETIME: i64 = 600;

/// Scopes for a token on behalf of a user.
pub(crate) fn user_grant(
    tenant: &Tenant,
    host: &str,
    client_id: &str,
    audience: Option<&str>,
    requested: &[String],
    user_permissions: &dyn Fn(&str) -> Vec<String>,
) -> Result<Granted, PolicyError> {
    let client = tenant
        .client(client_id)
        .ok_or_else(|| PolicyError::Unauthorized("Unknown client".into()))?;
    let mut scopes: Vec<String> = requested
        .iter()
        .filter(|s| OIDC_SCOPES.contains(&s.as_str()))
        .filter(|s| {
            s.as_str() != "offline_access" || client.grant_types.contains(&GrantType::RefreshToken)
        })
        .cloned()
        .collect();
    let Some(audience) = audience.filter(|a| !a.is_empty()) else {
        return Ok(Granted {
            audience: None,
            scopes,
            lifetime: NO_AUDIENCE_LIFETIME,
        });
    };
    if tenant.names_management_api_anywhere(audience) {
        return Err(PolicyError::Denied(format!(
            "Client is not authorized to access \"{audience}\": the Management API allows no user access."
        )));
    }
    let api = &tenant.config.my_account_api;
    let (allowed, enforce, lifetime): (Vec<String>, bool, i64) = if tenant
        .is_mfa_api_audience(host, audience)
    {
        // Auth0's built-in MFA API: for a client that may use the MFA
        // grants, its three scopes, and ten minutes that cannot be changed.
        if !client.grant_types.iter().any(|g| {
            matches!(
                g,
                GrantType::MfaOtp | GrantType::MfaOob | GrantType::MfaRecoveryCode
            )
        }) {
            return Err(PolicyError::Denied(format!(
                "Client is not authorized to access \"{audience}\": it needs the MFA grant types."
            )));
        }
        (
            MFA_API_SCOPES.iter().map(|s| s.to_string()).collect(),
            false,
            MFA_API_TOKEN_LIFETIME,
        )
    } else if tenant.is_my_account_audience(host, audience) {
        if !api.active {
            return Err(PolicyError::Denied(format!(
                "Service not found: {audience}"
            )));
        }
        let allowed = match api.user_policy {
            MyAccountUserPolicy::DenyAll => {
                return Err(PolicyError::Denied(format!(
                    "Client is not authorized to access \"{audience}\"."
                )));
            }
            MyAccountUserPolicy::AllowAll => {
                MY_ACCOUNT_SCOPES.iter().map(|s| s.to_string()).collect()
            }
            MyAccountUserPolicy::RequireClientGrant => {
                match tenant.my_account_client_grant(client_id) {
                    Some(g) if g.allow_all_scopes => {
                        MY_ACCOUNT_SCOPES.iter().map(|s| s.to_string()).collect()
                    }
                    Some(g) => g.scope.clone(),
                    None => {
                        return Err(PolicyError::Denied(format!(
                            "Client is not authorized to access \"{audience}\". You need to create a \"client-grant\" associated to this API."
                        )));
                    }
                }
            }
        };
        (allowed, api.enforce_policies, i64::from(api.token_lifetime))
    } else if let Some(rs) = tenant.resource_server(audience) {
        (
            rs.scopes.clone(),
            rs.enforce_policies,
            i64::from(rs.token_lifetime),
        )
    } else if tenant
        .config
        .tenant
        .domains
        .iter()
        .any(|d| tenant.is_my_account_audience(d, audience))
    {
        return Err(PolicyError::Denied(format!(
            "The My Account API audience {audience} must be requested on its own host"
        )));
    } else {
        return Err(PolicyError::Denied(format!(
            "Service not found: {audience}"
        )));
    };
    let permitted = if enforce {
        Some(user_permissions(audience))
    } else {
        None
    };
    for s in requested {
        if OIDC_SCOPES.contains(&s.as_str()) {
            continue;
        }
        let ok = allowed.contains(s) && permitted.as_ref().is_none_or(|p| p.contains(s));
        if ok {
            scopes.push(s.clone());
        }
    }
    Ok(Granted {
        audience: Some(audience.to_string()),
        scopes,
        lifetime,
    })
}

/// Scopes for a client acting on its own behalf (client credentials).
pub(crate) fn client_grant(
    tenant: &Tenant,
    host: &str,
    client_id: &str,
    audience: Option<&str>,
    requested: &[String],
) -> Result<Granted, PolicyError> {
    let Some(audience) = audience.filter(|a| !a.is_empty()) else {
        return Err(PolicyError::Denied(
            "Client credentials need an audience: no default audience is configured".into(),
        ));
    };
    let is_my_account = tenant
        .config
        .tenant
        .domains
        .iter()
        .any(|d| tenant.is_my_account_audience(d, audience))
        || tenant.is_my_account_audience(host, audience);
    if is_my_account {
        return Err(PolicyError::Denied(format!(
            "Client is not authorized to access \"{audience}\": the My Account API allows no client access."
        )));
    }
    if tenant.names_management_api_anywhere(audience) {
        return management_grant(tenant, host, client_id, audience, requested);
    }
    let rs = tenant
        .resource_server(audience)
        .ok_or_else(|| PolicyError::Denied(format!("Service not found: {audience}")))?;
    let grant = tenant
        .client_grant(client_id, audience, SubjectType::Client)
        .ok_or_else(|| {
            PolicyError::Denied(format!(
                "Client is not authorized to access \"{audience}\". You need to create a \"client-grant\" associated to this API."
            ))
        })?;
    let allowed: &[String] = if grant.allow_all_scopes {
        &rs.scopes
    } else {
        &grant.scope
    };
    let scopes = if requested.is_empty() {
        allowed.to_vec()
    } else {
        requested
            .iter()
            .filter(|s| allowed.contains(s))
            .cloned()
            .collect()
    };
    Ok(Granted {
        audience: Some(audience.to_string()),
        scopes,
        lifetime: i64::from(rs.token_lifetime),
    })
}

/// Scopes of the Management API for a client: the API of the host asked on
/// (a token is good only where it was minted), capped by the client's grant
/// to it, which may name the API on any domain of the tenant.
fn management_grant(
    tenant: &Tenant,
    host: &str,
    client_id: &str,
    audience: &str,
    requested: &[String],
) -> Result<Granted, PolicyError> {
    if !tenant.is_management_audience(host, audience) {
        return Err(PolicyError::Denied(format!(
            "The Management API audience {audience} must be requested on its own host"
        )));
    }
    let grant = tenant.management_client_grant(client_id).ok_or_else(|| {
        PolicyError::Denied(format!(
            "Client is not authorized to access \"{audience}\". You need to create a \"client-grant\" associated to this API."
        ))
    })?;
    let allowed: Vec<String> = if grant.allow_all_scopes {
        MANAGEMENT_API_SCOPES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        grant.scope.clone()
    };
    let scopes = if requested.is_empty() {
        allowed
    } else {
        requested
            .iter()
            .filter(|s| allowed.contains(s))
            .cloned()
            .collect()
    };
    Ok(Granted {
        audience: Some(audience.to_string()),
        scopes,
        lifetime: i64::from(tenant.config.management_api.token_lifetime),
    })
}

/// A user's permissions on `audience`, from their roles.
pub(crate) fn role_permissions(tenant: &Tenant, roles: &[String], audience: &str) -> Vec<String> {
    tenant
        .config
        .roles
        .iter()
        .filter(|r| roles.contains(&r.name))
        .flat_map(|r| r.permissions.iter())
        .filter(|p| p.resource_server_identifier == audience)
        .map(|p| p.permission_name.clone())
        .collect()
}
