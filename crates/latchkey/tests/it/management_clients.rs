//! The Management API's clients: made, read, listed, changed, deleted and
//! their secrets rotated in Auth0's shapes; a client made through the API
//! works at once and a deleted one nowhere; secrets shown only at creation
//! and rotation and sealed at rest; the tenant file and the API agree on
//! who owns a client.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::management::*;
use crate::support::*;

/// Makes a client through the API; its answer (with its secret).
async fn make(s: &TestServer, t: &str, body: Value) -> Value {
    let a = call(s, "POST", "/clients", Some(t), Some(body)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body
}

/// Grants `client_id` the Management API's `read:users`, as a tenant file would.
async fn grant_management(s: &TestServer, client_id: &str) {
    let audience = format!("{}api/v2/", s.issuer);
    let id = client_id.to_string();
    latchkey::tenant::edit::edit(&s.state, "acme", |f| {
        f.client_grants.push(latchkey::tenant::ClientGrant {
            client_id: id.clone(),
            audience: audience.clone(),
            subject_type: latchkey::tenant::SubjectType::Client,
            scope: vec!["read:users".into()],
            allow_all_scopes: false,
        });
        Ok::<(), ()>(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_made_client_reads_back_in_auth0s_shape_and_its_secret_only_once() {
    let s = server().await;
    let t = token(&s, "admin", CLIENTS_SCOPES).await;
    let made = make(
        &s,
        &t,
        json!({
            "name": "Back office",
            "app_type": "regular_web",
            "callbacks": ["https://office.acme.test/cb"],
            "allowed_logout_urls": ["https://office.acme.test/"],
            "grant_types": ["authorization_code", "refresh_token"],
            "oidc_conformant": true,
            "jwt_configuration": {"alg": "RS256", "lifetime_in_seconds": 3600},
            "refresh_token": {"rotation_type": "non-rotating", "expiration_type": "expiring",
                              "token_lifetime": 86400, "idle_token_lifetime": 3600},
        }),
    )
    .await;
    let id = made["client_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "{made}");
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    let secret = made["client_secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64, "{made}");
    assert_eq!(made["tenant"], "acme");
    assert_eq!(made["name"], "Back office");
    assert_eq!(made["app_type"], "regular_web");
    assert_eq!(made["global"], false);
    assert_eq!(made["is_first_party"], true);
    assert_eq!(made["oidc_conformant"], true);
    assert_eq!(made["callbacks"], json!(["https://office.acme.test/cb"]));
    assert_eq!(made["allowed_origins"], json!([]));
    assert_eq!(
        made["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(made["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(
        made["jwt_configuration"],
        json!({"alg": "RS256", "lifetime_in_seconds": 3600, "secret_encoded": false})
    );
    assert_eq!(made["refresh_token"]["rotation_type"], "non-rotating");
    assert_eq!(made["refresh_token"]["expiration_type"], "expiring");
    assert_eq!(made["refresh_token"]["token_lifetime"], 86400);
    assert_eq!(made["refresh_token"]["idle_token_lifetime"], 3600);

    // Read back: the same, without the secret.
    let got = call(&s, "GET", &format!("/clients/{id}"), Some(&t), None).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    let mut expected = made.clone();
    expected.as_object_mut().unwrap().remove("client_secret");
    assert_eq!(got.body, expected);
    let some = call(
        &s,
        "GET",
        &format!("/clients/{id}?fields=client_id,name"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(some.body, json!({"client_id": id, "name": "Back office"}));

    // The secret is sealed at rest, never written in clear, nor logged.
    let stored = stored_text(&s).await;
    assert!(!stored.contains(&secret));
    let (config, _) = crate::management::stored(&s).await;
    assert!(config.api_owned.clients.contains(&id));
    let logged = events(&s, "sapi").await;
    let last = logged.last().unwrap();
    assert_eq!(last["details"]["description"], "Create a Client");
    assert_eq!(last["details"]["id"], id.as_str());
    assert_eq!(last["details"]["changes"]["name"], "Back office");
    assert_eq!(last["details"]["changes"]["client_secret"], "(changed)");
    assert!(!last.to_string().contains(&secret));

    // Listed: never a secret; Auth0's page object with include_totals.
    let all = call(&s, "GET", "/clients", Some(&t), None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let list = all.body.as_array().unwrap();
    let ids: Vec<&str> = list
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["spa", "admin", "reader", "stranger", id.as_str()]);
    assert!(list.iter().all(|c| c.get("client_secret").is_none()));
    let page = call(
        &s,
        "GET",
        "/clients?page=1&per_page=2&include_totals=true&fields=client_id",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(
        page.body,
        json!({"start": 2, "limit": 2, "length": 2, "total": 5,
               "clients": [{"client_id": "reader"}, {"client_id": "stranger"}]})
    );
    let spas = call(
        &s,
        "GET",
        "/clients?app_type=spa,native&fields=client_id",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(spas.body, json!([{"client_id": "spa"}]));
    let global = call(&s, "GET", "/clients?is_global=true", Some(&t), None).await;
    assert_eq!(global.body, json!([]));
}

#[tokio::test]
async fn a_made_client_works_at_once_and_a_rotated_secret_replaces_the_old() {
    let s = server().await;
    let t = token(&s, "admin", CLIENTS_SCOPES).await;
    // A public client: no secret, and /authorize serves it at once.
    let spa = make(
        &s,
        &t,
        json!({"name": "New SPA", "app_type": "spa", "callbacks": [format!("{APP}/cb")]}),
    )
    .await;
    assert!(spa.get("client_secret").is_none(), "{spa}");
    assert_eq!(spa["token_endpoint_auth_method"], "none");
    assert_eq!(
        spa["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert!(authorize_serves(&s, spa["client_id"].as_str().unwrap()).await);
    let a = call(
        &s,
        "POST",
        &format!(
            "/clients/{}/rotate-secret",
            spa["client_id"].as_str().unwrap()
        ),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.error().0, "operation_not_supported");

    // A machine-to-machine client gets a token with its secret at once.
    let m2m = make(
        &s,
        &t,
        json!({"name": "Worker", "app_type": "non_interactive"}),
    )
    .await;
    let id = m2m["client_id"].as_str().unwrap().to_string();
    assert_eq!(m2m["grant_types"], json!(["client_credentials"]));
    let old = m2m["client_secret"].as_str().unwrap().to_string();
    grant_management(&s, &id).await;
    let audience = format!("{}api/v2/", s.issuer);
    let (status, body) = client_credentials(&s, &id, &old, &audience).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let theirs = body["access_token"].as_str().unwrap().to_string();
    let a = call(&s, "GET", "/users/auth0%7Calice", Some(&theirs), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    // Rotated: the new secret once, the old refused at once.
    let rotated = call(
        &s,
        "POST",
        &format!("/clients/{id}/rotate-secret"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new = rotated.body["client_secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(rotated.body["client_id"], id.as_str());
    let (status, body) = client_credentials(&s, &id, &old, &audience).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    let (status, body) = client_credentials(&s, &id, &new, &audience).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!stored_text(&s).await.contains(&new));
    // Rotation takes update:client_keys.
    let narrow = token(&s, "admin", "update:clients").await;
    let a = call(
        &s,
        "POST",
        &format!("/clients/{id}/rotate-secret"),
        Some(&narrow),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(
        a.error().1,
        "Insufficient scope, expected any of: update:client_keys"
    );
    // Neither PATCH scope buys the other: a secret takes update:client_keys,
    // settings take update:clients; refused, nothing changes.
    let a = call(
        &s,
        "PATCH",
        &format!("/clients/{id}"),
        Some(&narrow),
        Some(json!({"client_secret": "a-secret-chosen-by-the-caller"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(a.error().1.ends_with("update:client_keys"));
    let keys_only = token(&s, "admin", "update:client_keys").await;
    let a = call(
        &s,
        "PATCH",
        &format!("/clients/{id}"),
        Some(&keys_only),
        Some(json!({"callbacks": ["https://evil.example/cb"]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(a.error().1.ends_with("update:clients"));
    assert!(!stored_text(&s).await.contains("evil.example"));
    let (status, body) = client_credentials(&s, &id, &new, &audience).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_patch_sets_what_it_names_and_a_files_client_becomes_the_apis() {
    let s = server().await;
    let t = token(&s, "admin", CLIENTS_SCOPES).await;
    let a = call(
        &s,
        "PATCH",
        "/clients/spa",
        Some(&t),
        Some(
            json!({"name": "Renamed", "callbacks": ["https://new.acme.test/cb"],
                    "require_pushed_authorization_requests": true}),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["name"], "Renamed");
    assert_eq!(a.body["callbacks"], json!(["https://new.acme.test/cb"]));
    assert_eq!(a.body["require_pushed_authorization_requests"], true);
    // What it does not name stays.
    assert_eq!(a.body["app_type"], "spa");
    assert_eq!(
        a.body["grant_types"],
        json!([
            "authorization_code",
            "refresh_token",
            "password",
            "http://auth0.com/oauth/grant-type/password-realm"
        ])
    );
    let (config, _) = stored(&s).await;
    assert!(config.api_owned.clients.contains("spa"));
    let logged = events(&s, "sapi").await;
    let changes = &logged.last().unwrap()["details"]["changes"];
    let mut changed: Vec<&String> = changes.as_object().unwrap().keys().collect();
    changed.sort();
    assert_eq!(
        changed,
        ["callbacks", "name", "require_pushed_authorization_requests"]
    );

    // A secret set by the caller: the client authenticates with it (and no
    // longer with the old one), and the answer never shows it.
    let a = call(
        &s,
        "PATCH",
        "/clients/stranger",
        Some(&t),
        Some(json!({"client_secret": "a-brand-new-secret"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.get("client_secret").is_none());
    grant_management(&s, "stranger").await;
    let audience = format!("{}api/v2/", s.issuer);
    let (status, body) = client_credentials(&s, "stranger", "a-brand-new-secret", &audience).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = client_credentials(&s, "stranger", ADMIN_SECRET, &audience).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The file lists spa: applying it takes spa back, its version again.
    apply(&s, &tenant(s.port)).await;
    let got = call(&s, "GET", "/clients/spa", Some(&t), None).await;
    assert_eq!(got.body["callbacks"], json!([format!("{APP}/cb")]));
    let (config, _) = stored(&s).await;
    assert!(!config.api_owned.clients.contains("spa"));
}

#[tokio::test]
async fn an_api_client_survives_a_file_without_it_and_a_file_that_lists_it_takes_it() {
    let s = server().await;
    let t = token(&s, "admin", CLIENTS_SCOPES).await;
    let made = make(
        &s,
        &t,
        json!({"name": "Kept", "app_type": "spa", "callbacks": [format!("{APP}/cb")]}),
    )
    .await;
    let id = made["client_id"].as_str().unwrap().to_string();
    let report = apply(&s, &tenant(s.port)).await;
    assert_eq!(report.kept_from_api, 1);
    let got = call(&s, "GET", &format!("/clients/{id}"), Some(&t), None).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.body["name"], "Kept");
    assert!(authorize_serves(&s, &id).await);

    // A file that lists it: the file's from now on...
    let listed = tenant(s.port).replace(
        "client_grants:\n",
        &format!(
            "  - {{ client_id: {id}, name: From the file, app_type: spa, callbacks: [\"{APP}/cb\"] }}\nclient_grants:\n"
        ),
    );
    let report = apply(&s, &listed).await;
    assert_eq!(report.kept_from_api, 0);
    let got = call(&s, "GET", &format!("/clients/{id}"), Some(&t), None).await;
    assert_eq!(got.body["name"], "From the file");
    // ...so a file without it removes it.
    apply(&s, &tenant(s.port)).await;
    let got = call(&s, "GET", &format!("/clients/{id}"), Some(&t), None).await;
    assert_eq!(got.status, StatusCode::NOT_FOUND, "{}", got.body);
    assert!(!authorize_serves(&s, &id).await);
}

#[tokio::test]
async fn a_deleted_client_goes_with_its_grants_and_is_refused_everywhere() {
    let s = server().await;
    let t = token(&s, "admin", CLIENTS_SCOPES).await;
    let m2m = make(
        &s,
        &t,
        json!({"name": "Doomed", "app_type": "non_interactive"}),
    )
    .await;
    let id = m2m["client_id"].as_str().unwrap().to_string();
    let secret = m2m["client_secret"].as_str().unwrap().to_string();
    grant_management(&s, &id).await;
    let audience = format!("{}api/v2/", s.issuer);
    let (_, body) = client_credentials(&s, &id, &secret, &audience).await;
    let theirs = body["access_token"].as_str().unwrap().to_string();

    let a = call(&s, "DELETE", &format!("/clients/{id}"), Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(a.body, Value::Null);
    let (config, _) = stored(&s).await;
    assert!(!config.client_grants.iter().any(|g| g.client_id == id));
    assert!(!config.api_owned.clients.contains(&id));
    // Its token, its secret, its ID: refused.
    let a = call(&s, "GET", "/users/auth0%7Calice", Some(&theirs), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    let (status, body) = client_credentials(&s, &id, &secret, &audience).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    for (method, path) in [
        ("GET", format!("/clients/{id}")),
        ("PATCH", format!("/clients/{id}")),
        ("DELETE", format!("/clients/{id}")),
        ("POST", format!("/clients/{id}/rotate-secret")),
    ] {
        let body = (method == "PATCH").then(|| json!({"name": "x"}));
        let a = call(&s, method, &path, Some(&t), body).await;
        assert_eq!(
            a.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            a.body
        );
        assert_eq!(
            a.error(),
            (
                "inexistent_client".to_string(),
                "The client does not exist".to_string()
            )
        );
    }
    // A file's client deleted: gone until a file lists it again.
    let a = call(&s, "DELETE", "/clients/spa", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert!(!authorize_serves(&s, "spa").await);
    let (config, _) = stored(&s).await;
    assert!(!config.client_grants.iter().any(|g| g.client_id == "spa"));
    apply(&s, &tenant(s.port)).await;
    assert!(authorize_serves(&s, "spa").await);
    let logged = events(&s, "sapi").await;
    assert!(
        logged
            .iter()
            .any(|e| e["details"]["description"] == "Delete a Client")
    );
}

#[tokio::test]
async fn bad_input_is_refused_in_auth0s_words_and_nothing_is_written() {
    let s = server().await;
    let t = token(&s, "admin", CLIENTS_SCOPES).await;
    let (_, revision) = stored(&s).await;
    let cases = [
        (
            json!({"app_type": "spa"}),
            "Missing required property: name",
        ),
        (
            json!({"name": 3}),
            "'Expected type string but found type number' on property name",
        ),
        (json!({"name": "a<b>"}), "without < or >"),
        (
            json!({"name": "x", "description": "d"}),
            "Additional properties not allowed: description",
        ),
        (
            json!({"name": "x", "app_type": "mainframe"}),
            "unknown app type \"mainframe\"",
        ),
        (
            json!({"name": "x", "callbacks": ["not a url"]}),
            "on property callbacks[0]",
        ),
        (
            json!({"name": "x", "callbacks": [1]}),
            "on property callbacks[0]",
        ),
        (
            json!({"name": "x", "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}),
            "on property grant_types[0]",
        ),
        (
            json!({"name": "x", "app_type": "spa", "grant_types": ["client_credentials"]}),
            "client_credentials requires a client_secret",
        ),
        (
            json!({"name": "x", "oidc_conformant": false}),
            "on property oidc_conformant",
        ),
        (
            json!({"name": "x", "jwt_configuration": {"alg": "HS256"}}),
            "on property jwt_configuration.alg",
        ),
        (
            json!({"name": "x", "refresh_token": {"rotation_type": "rotating", "leeway": 3600}}),
            "on property refresh_token.leeway",
        ),
        (
            json!({"name": "x", "refresh_token": {"nope": 1}}),
            "Additional properties not allowed: refresh_token.nope",
        ),
        (
            json!({"name": "x", "app_type": "resource_server"}),
            "on property resource_server_identifier",
        ),
    ];
    for (body, wanted) in cases {
        let a = call(&s, "POST", "/clients", Some(&t), Some(body.clone())).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.body);
        let (code, message) = a.error();
        assert_eq!(code, "invalid_body", "{body}: {message}");
        assert!(message.contains(wanted), "{body}: {message}");
    }
    let patches = [
        (json!({"client_secret": "short"}), "at least 8 characters"),
        (
            json!({"resource_server_identifier": "x"}),
            "Additional properties not allowed: resource_server_identifier",
        ),
        (
            json!({"token_endpoint_auth_method": "client_secret_basic"}),
            "requires a client_secret",
        ),
    ];
    for (body, wanted) in patches {
        let a = call(&s, "PATCH", "/clients/spa", Some(&t), Some(body.clone())).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.body);
        let (_, message) = a.error();
        assert!(message.contains(wanted), "{body}: {message}");
    }
    let a = call(&s, "GET", "/clients?per_page=500", Some(&t), None).await;
    assert_eq!(a.error().0, "invalid_query_string");
    let a = call(&s, "GET", "/clients?q=name:x", Some(&t), None).await;
    assert_eq!(a.error().0, "invalid_query_string");
    assert_eq!(stored(&s).await.1, revision, "nothing was written");
    let refused = events(&s, "fapi").await;
    assert!(
        refused
            .iter()
            .any(|e| e["details"]["description"] == "Create a Client")
    );
}

#[tokio::test]
async fn scopes_and_tenants_are_kept_apart() {
    let s = server().await;
    let reader = token(&s, "reader", "read:users").await;
    for (method, path, scopes) in [
        ("GET", "/clients", "read:clients,read:client_keys"),
        ("GET", "/clients/spa", "read:clients,read:client_keys"),
        ("POST", "/clients", "create:clients"),
        ("PATCH", "/clients/spa", "update:clients,update:client_keys"),
        ("DELETE", "/clients/spa", "delete:clients"),
    ] {
        let body = matches!(method, "POST" | "PATCH").then(|| json!({"name": "x"}));
        let a = call(&s, method, path, Some(&reader), body).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(
            a.error().1,
            format!("Insufficient scope, expected any of: {scopes}")
        );
    }
    // The other tenant sees, changes and deletes its own clients only.
    let theirs = other_token(&s).await;
    let base = other_base(&s);
    let a = call_at(&s, &base, "GET", "/clients", Some(&theirs), None).await;
    let ids: Vec<&str> = a
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["admin"]);
    for (method, path) in [
        ("GET", "/clients/spa"),
        ("PATCH", "/clients/spa"),
        ("DELETE", "/clients/spa"),
        ("POST", "/clients/reader/rotate-secret"),
    ] {
        let body = (method == "PATCH").then(|| json!({"name": "x"}));
        let a = call_at(&s, &base, method, path, Some(&theirs), body).await;
        assert_eq!(
            a.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            a.body
        );
    }
    assert!(authorize_serves(&s, "spa").await);
}

#[tokio::test]
async fn clients_made_at_once_are_all_kept() {
    let s = server().await;
    let t = token(&s, "admin", CLIENTS_SCOPES).await;
    let body = |n: &str| json!({"name": n, "app_type": "spa", "callbacks": [format!("{APP}/cb")]});
    let (a, b, c, d) = tokio::join!(
        make(&s, &t, body("a")),
        make(&s, &t, body("b")),
        make(&s, &t, body("c")),
        make(&s, &t, body("d")),
    );
    let (config, _) = stored(&s).await;
    for made in [a, b, c, d] {
        let id = made["client_id"].as_str().unwrap();
        assert!(config.clients.iter().any(|c| c.client_id == id), "{id}");
        assert!(config.api_owned.clients.contains(id), "{id}");
    }
}
