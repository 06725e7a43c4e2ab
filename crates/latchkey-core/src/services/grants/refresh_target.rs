//! What a refresh token is exchanged for: the API and scopes it was issued
//! for, or, with Auth0's multi-resource refresh tokens, another API that its
//! client's `refresh_token.policies` name, with the scopes the policy lists.
//! Decided from the token and the request alone, before today's
//! configuration (client grants, RBAC) narrows it further.

use super::GrantError;
use crate::services::policy::OIDC_SCOPES;
use crate::tenant::{Client, Tenant};

/// The audience and the scopes a refresh asks for, once its token and its
/// client's policies have had their say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub audience: Option<String>,
    pub scope: Vec<String>,
    /// Whether the audience is another than the token's own.
    pub other_api: bool,
}

/// What the refresh token issued for `issued_for` with `granted` (its
/// scopes) may be exchanged for, when `audience` and `scope` are asked
/// (`None` or empty: not asked).
///
/// - Its own audience, without a policy for it: the token's scopes, or those
///   of them asked for; a scope beyond them is refused.
/// - Its own audience, with a policy: the token's scopes and the policy's,
///   or those of them asked for; others are dropped (Auth0's evaluation).
/// - Another audience: only with a policy for it; the policy's scopes and
///   the OpenID Connect scopes of the token (never its other API's), or
///   those of them asked for; others are dropped.
pub(super) fn target(
    tenant: &Tenant,
    host: &str,
    client: &Client,
    issued_for: Option<&str>,
    granted: &[String],
    audience: Option<&str>,
    scope: Option<Vec<String>>,
) -> Result<Target, GrantError> {
    let asked = scope.filter(|s| !s.is_empty());
    let audience = audience.filter(|a| !a.is_empty()).or(issued_for);
    let other_api = audience != issued_for;
    let policy = audience.and_then(|a| tenant.refresh_token_policy(client, host, a));
    let scope = match (policy, asked) {
        (None, _) if other_api => return Err(GrantError::AudienceNotAllowed),
        (None, None) => granted.to_vec(),
        (None, Some(asked)) => {
            if let Some(extra) = asked.iter().find(|s| !granted.contains(s)) {
                return Err(GrantError::ScopeNotGranted(extra.clone()));
            }
            asked
        }
        (Some(policy), asked) => {
            let kept = granted
                .iter()
                .filter(|s| !other_api || OIDC_SCOPES.contains(&s.as_str()));
            let mut allowed: Vec<String> = kept.cloned().collect();
            for s in &policy.scope {
                if !allowed.contains(s) {
                    allowed.push(s.clone());
                }
            }
            match asked {
                None => allowed,
                Some(asked) => asked.into_iter().filter(|s| allowed.contains(s)).collect(),
            }
        }
    };
    Ok(Target {
        audience: audience.map(str::to_string),
        scope,
        other_api,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::file::TemplateSyntax;

    struct AnyTemplate;

    impl TemplateSyntax for AnyTemplate {
        fn check(&self, _: &str) -> Result<(), String> {
            Ok(())
        }
    }

    const API: &str = "https://api.acme.test/";
    const BILLING: &str = "https://billing.acme.test/";
    const ME: &str = "https://id.acme.test/me/";

    fn tenant(policies: &str) -> Tenant {
        let file = format!(
            r#"
tenant: {{ name: acme, domains: [id.acme.test, login.acme.test] }}
clients:
  - {{ client_id: spa, app_type: spa, refresh_token: {{ policies: {policies} }} }}
resource_servers:
  - {{ identifier: "{API}", scopes: [read:things, write:things] }}
  - {{ identifier: "{BILLING}", scopes: [read:invoices, pay:invoices] }}
"#
        );
        let config = crate::tenant::parse_tenant_file(&file, &AnyTemplate).unwrap();
        Tenant {
            id: "t".into(),
            name: "acme".into(),
            revision: 1,
            config,
        }
    }

    fn words(s: &str) -> Vec<String> {
        crate::services::policy::split_scope(Some(s))
    }

    fn ask(
        t: &Tenant,
        host: &str,
        audience: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Target, GrantError> {
        let client = t.client("spa").unwrap();
        let granted = words("openid profile offline_access read:things");
        target(
            t,
            host,
            client,
            Some(API),
            &granted,
            audience,
            scope.map(words),
        )
    }

    fn scope(found: Result<Target, GrantError>) -> String {
        found.unwrap().scope.join(" ")
    }

    #[test]
    fn without_a_policy_the_token_keeps_to_its_own_audience_and_scopes() {
        let t = tenant("[]");
        assert_eq!(
            scope(ask(&t, "id.acme.test", None, None)),
            "openid profile offline_access read:things"
        );
        assert_eq!(
            scope(ask(
                &t,
                "id.acme.test",
                Some(API),
                Some("openid read:things")
            )),
            "openid read:things"
        );
        assert!(matches!(
            ask(&t, "id.acme.test", None, Some("openid write:things")),
            Err(GrantError::ScopeNotGranted(s)) if s == "write:things"
        ));
        assert!(matches!(
            ask(&t, "id.acme.test", Some(BILLING), None),
            Err(GrantError::AudienceNotAllowed)
        ));
        // Empty parameters are parameters not sent.
        let own = ask(&t, "id.acme.test", Some(""), Some("")).unwrap();
        assert_eq!(own.audience.as_deref(), Some(API));
        assert!(!own.other_api);
    }

    #[test]
    fn another_api_gets_its_policy_scopes_and_the_openid_ones_only() {
        let t = tenant(&format!(
            r#"[{{ audience: "{BILLING}", scope: [read:invoices] }}]"#
        ));
        let billing = ask(&t, "id.acme.test", Some(BILLING), None).unwrap();
        assert!(billing.other_api);
        assert_eq!(billing.audience.as_deref(), Some(BILLING));
        assert_eq!(
            billing.scope.join(" "),
            "openid profile offline_access read:invoices"
        );
        // Asked scopes beyond the policy, or the other API's, are dropped.
        assert_eq!(
            scope(ask(
                &t,
                "id.acme.test",
                Some(BILLING),
                Some("openid email read:invoices pay:invoices read:things")
            )),
            "openid read:invoices"
        );
        // The token's own API is untouched by another API's policy.
        assert!(matches!(
            ask(&t, "id.acme.test", None, Some("write:things")),
            Err(GrantError::ScopeNotGranted(_))
        ));
        assert!(matches!(
            ask(&t, "id.acme.test", Some("https://elsewhere.test/"), None),
            Err(GrantError::AudienceNotAllowed)
        ));
    }

    #[test]
    fn a_policy_for_the_own_api_adds_its_scopes_and_drops_the_rest() {
        let t = tenant(&format!(
            r#"[{{ audience: "{API}", scope: [write:things] }}]"#
        ));
        assert_eq!(
            scope(ask(&t, "id.acme.test", None, None)),
            "openid profile offline_access read:things write:things"
        );
        assert_eq!(
            scope(ask(
                &t,
                "id.acme.test",
                Some(API),
                Some("openid write:things email")
            )),
            "openid write:things"
        );
    }

    #[test]
    fn the_my_account_api_is_one_api_on_every_host() {
        let t = tenant(&format!(
            r#"[{{ audience: "{ME}", scope: [read:me:factors] }}]"#
        ));
        for host in ["id.acme.test", "login.acme.test"] {
            let me = format!("https://{host}/me/");
            assert_eq!(
                scope(ask(&t, host, Some(&me), Some("openid read:me:factors"))),
                "openid read:me:factors"
            );
        }
    }
}
