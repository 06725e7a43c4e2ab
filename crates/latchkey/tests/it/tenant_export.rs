//! `tenant export`: a tenant's configuration as a tenant file, what the
//! Management API made included, secrets named by environment variable
//! unless asked for, users optional. Applying the export to the same store
//! changes nothing (after the API's record is handed to the file), and the
//! export of that is the same file.

use latchkey::tenant::edit::edit;
use latchkey::tenant::export::{ExportOptions, export};
use latchkey::tenant::{AppType, ClientGrant, GrantKey, GrantType, SubjectType, TenantFile};
use reqwest::StatusCode;

use crate::support::*;

async fn stored(s: &TestServer) -> (TenantFile, i64) {
    let row = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    (serde_json::from_str(&row.config).unwrap(), row.revision)
}

/// A confidential client made through the API, its secret sealed as the
/// API seals it.
async fn add_api_client(s: &TestServer) {
    let row = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let ctx = latchkey::tenant::apply::client_secret_context(&row.id, "api-app");
    let sealed = s
        .state
        .sealer
        .seal(&*s.state.rng, &ctx, b"api-app-secret-value");
    edit(&s.state, "acme", |f| {
        let mut c = f
            .clients
            .iter()
            .find(|c| c.client_id == "backend")
            .unwrap()
            .clone();
        c.client_id = "api-app".into();
        c.name = "Made through the API".into();
        c.app_type = AppType::NonInteractive;
        c.grant_types = vec![GrantType::ClientCredentials];
        c.client_secret = Some(sealed.clone());
        c.client_secret_env = None;
        f.clients.push(c);
        f.api_owned.clients.insert("api-app".into());
        let grant = ClientGrant {
            client_id: "api-app".into(),
            audience: API.into(),
            subject_type: SubjectType::Client,
            scope: vec!["read:things".into()],
            allow_all_scopes: false,
        };
        f.api_owned.client_grants.insert(GrantKey::of(&grant));
        f.client_grants.push(grant);
        Ok::<(), ()>(())
    })
    .await
    .unwrap();
}

async fn client_credentials(s: &TestServer, id: &str, secret: &str) -> StatusCode {
    s.token(&[
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
        ("audience", API),
    ])
    .await
    .0
}

#[tokio::test]
async fn an_export_applies_back_to_the_same_configuration() {
    let s = TestServer::start().await;
    add_api_client(&s).await;
    let exported = export(&s.state, "acme", ExportOptions::default())
        .await
        .unwrap();
    let yaml = &exported.yaml;
    // No secret in it: each named by a variable, and the caller told which.
    for secret in ["web-secret-value", BACKEND_SECRET, "api-app-secret-value"] {
        assert!(!yaml.contains(secret), "{yaml}");
    }
    assert!(!yaml.contains("api_owned"), "{yaml}");
    assert!(
        yaml.contains("client_secret_env: LATCHKEY_CLIENT_SECRET_API_APP"),
        "{yaml}"
    );
    let mut variables: Vec<&str> = exported
        .secret_variables
        .iter()
        .map(|(v, _)| v.as_str())
        .collect();
    variables.sort_unstable();
    assert_eq!(
        variables,
        [
            "LATCHKEY_CLIENT_SECRET_API_APP",
            "LATCHKEY_CLIENT_SECRET_BACKEND",
            "LATCHKEY_CLIENT_SECRET_WEB"
        ]
    );

    // Applied back: the same clients, grants, APIs and connections, the
    // API's client now the file's, every secret still good.
    let (before, _) = stored(&s).await;
    latchkey::tenant::apply::apply_text(&s.state, yaml)
        .await
        .unwrap();
    let (after, revision) = stored(&s).await;
    assert!(after.api_owned.is_empty(), "{:?}", after.api_owned);
    assert_eq!(after.client_grants, before.client_grants);
    assert_eq!(after.resource_servers, before.resource_servers);
    assert_eq!(after.connections, before.connections);
    assert_eq!(after.clients.len(), before.clients.len());
    for (a, b) in after.clients.iter().zip(&before.clients) {
        assert_eq!(a.client_id, b.client_id);
        assert_eq!(a.name, b.name);
        assert_eq!(a.grant_types, b.grant_types);
    }
    assert_eq!(
        client_credentials(&s, "api-app", "api-app-secret-value").await,
        StatusCode::OK
    );
    assert_eq!(
        client_credentials(&s, "backend", BACKEND_SECRET).await,
        StatusCode::OK
    );
    assert_eq!(
        client_credentials(&s, "api-app", "wrong-secret-value").await,
        StatusCode::UNAUTHORIZED
    );

    // Exported again: the same file; applied again: nothing changes.
    let again = export(&s.state, "acme", ExportOptions::default())
        .await
        .unwrap();
    assert_eq!(&again.yaml, yaml);
    latchkey::tenant::apply::apply_text(&s.state, &again.yaml)
        .await
        .unwrap();
    assert_eq!(stored(&s).await.1, revision);
}

#[tokio::test]
async fn secrets_in_clear_only_when_asked_for() {
    let s = TestServer::start().await;
    add_api_client(&s).await;
    let exported = export(
        &s.state,
        "acme",
        ExportOptions {
            secrets: true,
            users: false,
        },
    )
    .await
    .unwrap();
    assert!(exported.secret_variables.is_empty());
    assert!(
        exported.yaml.contains("api-app-secret-value"),
        "{}",
        exported.yaml
    );
    assert!(
        !exported.yaml.contains("client_secret_env"),
        "{}",
        exported.yaml
    );
    let (_, revision) = stored(&s).await;
    latchkey::tenant::apply::apply_text(&s.state, &exported.yaml)
        .await
        .unwrap();
    // Only the API's record changed hands; the sealed secrets were kept.
    let (after, now) = stored(&s).await;
    assert_eq!(now, revision + 1);
    assert!(after.api_owned.is_empty());
    latchkey::tenant::apply::apply_text(&s.state, &exported.yaml)
        .await
        .unwrap();
    assert_eq!(stored(&s).await.1, now);
}

#[tokio::test]
async fn users_come_with_their_password_hashes_and_sign_ups_stay_out() {
    let s = TestServer::start().await;
    // An account someone signed up for, unverified.
    let signed_up = latchkey::store::UserRow {
        user_id: "auth0|self".into(),
        connection: "Username-Password-Authentication".into(),
        email: "self@example.com".into(),
        email_verified: false,
        password_hash: None,
        profile: serde_json::json!({}),
        blocked: false,
        last_password_reset: None,
        created_at: 1,
        updated_at: 1,
        signed_up: true,
        seeded_password: None,
    };
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    s.state
        .store
        .create_user(&tenant.id, &signed_up)
        .await
        .unwrap();
    let exported = export(
        &s.state,
        "acme",
        ExportOptions {
            users: true,
            secrets: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(exported.users, 2);
    assert_eq!(exported.users_left_out.len(), 1);
    assert_eq!(exported.users_left_out[0].0, "auth0|self");
    let yaml = &exported.yaml;
    assert!(
        yaml.contains("password_hash: $argon2id$") || yaml.contains("password_hash: \"$argon2id$"),
        "{yaml}"
    );
    assert!(!yaml.contains(ALICE_PASSWORD), "{yaml}");
    // Applied back: Alice keeps her password.
    latchkey::tenant::apply::apply_text(&s.state, yaml)
        .await
        .unwrap();
    let report = latchkey::tenant::apply::apply_text(&s.state, yaml)
        .await
        .unwrap();
    assert_eq!(report.users_unchanged, 2, "{report:?}");
    s.password_login("openid", None).await;
}

#[tokio::test]
async fn a_file_names_a_secret_one_way() {
    let s = TestServer::start().await;
    let both = acme(s.port).replace(
        "client_secret: \"web-secret-value\",",
        "client_secret: \"web-secret-value\", client_secret_env: LATCHKEY_CLIENT_SECRET_WEB,",
    );
    assert_ne!(both, acme(s.port));
    let err = latchkey::tenant::apply::apply_text(&s.state, &both)
        .await
        .unwrap_err();
    assert!(err.contains("not both"), "{err}");
    // A variable that is not set: refused, naming it.
    let unset = acme(s.port).replace(
        "client_secret: \"web-secret-value\",",
        "client_secret_env: NOT_SET_ANYWHERE,",
    );
    let err = latchkey::tenant::apply::apply_text(&s.state, &unset)
        .await
        .unwrap_err();
    assert!(err.contains("NOT_SET_ANYWHERE"), "{err}");
}
