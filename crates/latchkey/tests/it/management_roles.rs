//! The Management API's roles: listed and read with IDs derived from their
//! names, made, renamed and deleted with their holders following (a role
//! made again under a deleted one's name gives its old holders nothing), and
//! their permissions added and removed with effect on users' tokens at once.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::management::*;
use crate::support::*;

const ROLES_SCOPES: &str = "read:roles create:roles update:roles delete:roles \
                            update:resource_servers delete:resource_servers";

/// The API scopes Alice's token gets when she asks for both.
async fn alices_scopes(s: &TestServer) -> String {
    let res = s
        .http()
        .post(format!("{}/oauth/token", s.base))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("audience", API),
            ("scope", "openid read:things write:things"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let scopes: Vec<&str> = body["scope"]
        .as_str()
        .unwrap()
        .split(' ')
        .filter(|s| s.ends_with(":things"))
        .collect();
    scopes.join(" ")
}

/// The roles Alice holds, as stored.
async fn alices_roles(s: &TestServer) -> Value {
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let alice = s
        .state
        .store
        .user_by_id(&tenant.id, "auth0|alice")
        .await
        .unwrap()
        .unwrap();
    alice.profile.get("roles").cloned().unwrap_or(Value::Null)
}

async fn support_id(s: &TestServer, t: &str) -> String {
    let a = call(s, "GET", "/roles?name_filter=support", Some(t), None).await;
    a.body[0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn roles_and_permissions_read_in_auth0s_shapes() {
    let s = server().await;
    let t = token(&s, "admin", ROLES_SCOPES).await;
    let a = call(&s, "GET", "/roles", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let id = a.body[0]["id"].as_str().unwrap().to_string();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"role\nsupport\n");
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(id, format!("rol_{hex}"));
    assert_eq!(
        a.body,
        json!([{"id": id, "name": "support", "description": "Support staff"}])
    );
    let a = call(&s, "GET", &format!("/roles/{id}"), Some(&t), None).await;
    assert_eq!(a.body["name"], "support");
    for (filter, found) in [("SUPP", 1), ("port", 1), ("admin", 0)] {
        let a = call(
            &s,
            "GET",
            &format!("/roles?name_filter={filter}&include_totals=true"),
            Some(&t),
            None,
        )
        .await;
        assert_eq!(a.body["total"], found, "{filter}: {}", a.body);
        assert_eq!(a.body["roles"].as_array().unwrap().len(), found);
    }
    let a = call(
        &s,
        "GET",
        &format!("/roles/{id}/permissions"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(
        a.body,
        json!([{"resource_server_identifier": API, "permission_name": "read:things",
                "resource_server_name": API}])
    );
    let a = call(
        &s,
        "GET",
        &format!("/roles/{id}/permissions?include_totals=true&per_page=1"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.body["total"], 1);
    assert_eq!(a.body["permissions"].as_array().unwrap().len(), 1);
    let a = call(&s, "GET", "/roles/rol_0000000000000000", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error().0, "inexistent_role");
}

#[tokio::test]
async fn permissions_renames_and_deletions_reach_users_tokens_at_once() {
    let s = server().await;
    let t = token(&s, "admin", ROLES_SCOPES).await;
    let a = call(
        &s,
        "PATCH",
        &format!("/resource-servers/{}", encoded(API)),
        Some(&t),
        Some(json!({"enforce_policies": true})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(alices_scopes(&s).await, "read:things");
    let id = support_id(&s, &t).await;

    // Permissions added, then one taken away.
    let path = format!("/roles/{id}/permissions");
    let a = call(
        &s,
        "POST",
        &path,
        Some(&t),
        Some(json!({"permissions": [
            {"resource_server_identifier": API, "permission_name": "write:things"},
            {"resource_server_identifier": API, "permission_name": "read:things"}]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(alices_scopes(&s).await, "read:things write:things");
    let a = call(&s, "GET", &path, Some(&t), None).await;
    assert_eq!(a.body.as_array().unwrap().len(), 2, "held once: {}", a.body);
    let a = call(
        &s,
        "DELETE",
        &path,
        Some(&t),
        Some(json!({"permissions": [
            {"resource_server_identifier": API, "permission_name": "read:things"}]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(alices_scopes(&s).await, "write:things");

    // Renamed: a new ID, and Alice holds it under its new name.
    let a = call(
        &s,
        "PATCH",
        &format!("/roles/{id}"),
        Some(&t),
        Some(json!({"name": "helpdesk", "description": "First line"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["name"], "helpdesk");
    assert_eq!(a.body["description"], "First line");
    let renamed = a.body["id"].as_str().unwrap().to_string();
    assert_ne!(renamed, id);
    assert_eq!(alices_roles(&s).await, json!(["helpdesk"]));
    assert_eq!(alices_scopes(&s).await, "write:things");
    let a = call(&s, "GET", &format!("/roles/{id}"), Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    // Deleted: taken from Alice; made again, it gives her nothing back.
    let a = call(&s, "DELETE", &format!("/roles/{renamed}"), Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(alices_roles(&s).await, json!([]));
    assert_eq!(alices_scopes(&s).await, "");
    let a = call(
        &s,
        "POST",
        "/roles",
        Some(&t),
        Some(json!({"name": "helpdesk"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body, json!({"id": renamed, "name": "helpdesk"}));
    let a = call(
        &s,
        "POST",
        &format!("/roles/{renamed}/permissions"),
        Some(&t),
        Some(json!({"permissions": [
            {"resource_server_identifier": API, "permission_name": "write:things"}]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(alices_scopes(&s).await, "");
    let logged = events(&s, "sapi").await;
    let descriptions: Vec<&str> = logged
        .iter()
        .map(|e| e["details"]["description"].as_str().unwrap())
        .collect();
    for d in [
        "Add permissions to a role",
        "Remove permissions from a role",
        "Update a role",
        "Delete a role",
        "Create a role",
    ] {
        assert!(descriptions.contains(&d), "{d}: {descriptions:?}");
    }

    // An API deleted takes its permissions out of the roles.
    let a = call(
        &s,
        "DELETE",
        &format!("/resource-servers/{}", encoded(API)),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    let a = call(
        &s,
        "GET",
        &format!("/roles/{renamed}/permissions"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.body, json!([]));
}

#[tokio::test]
async fn bad_input_is_refused_by_name_and_changes_nothing() {
    let s = server().await;
    let t = token(&s, "admin", ROLES_SCOPES).await;
    let id = support_id(&s, &t).await;
    let (_, revision) = stored(&s).await;
    let management = format!("{}api/v2/", s.issuer);
    let long = "x".repeat(141);
    let cases = [
        (
            "POST",
            "/roles".to_string(),
            json!({}),
            (400, "Missing required property: name"),
        ),
        (
            "POST",
            "/roles".to_string(),
            json!({"name": "  "}),
            (400, "on property name"),
        ),
        (
            "POST",
            "/roles".to_string(),
            json!({"name": "support"}),
            (409, "already exists"),
        ),
        (
            "POST",
            "/roles".to_string(),
            json!({"name": "x", "description": long}),
            (400, "on property description"),
        ),
        (
            "POST",
            "/roles".to_string(),
            json!({"name": "x", "permissions": []}),
            (400, "Additional properties not allowed: permissions"),
        ),
        (
            "PATCH",
            format!("/roles/{id}"),
            json!({"name": 5}),
            (
                400,
                "'Expected type string but found type number' on property name",
            ),
        ),
        (
            "POST",
            format!("/roles/{id}/permissions"),
            json!({"permissions": []}),
            (400, "on property permissions"),
        ),
        (
            "POST",
            format!("/roles/{id}/permissions"),
            json!({}),
            (400, "Missing required property: permissions"),
        ),
        (
            "POST",
            format!("/roles/{id}/permissions"),
            json!({"permissions": [{"resource_server_identifier": API}]}),
            (
                400,
                "Missing required property: permissions[0].permission_name",
            ),
        ),
        (
            "POST",
            format!("/roles/{id}/permissions"),
            json!({"permissions": [{"resource_server_identifier": API, "permission_name": "fly"}]}),
            (400, "is not a scope of"),
        ),
        (
            "POST",
            format!("/roles/{id}/permissions"),
            json!({"permissions": [{"resource_server_identifier": "https://nowhere.test/",
                                    "permission_name": "fly"}]}),
            (400, "no resource server has identifier"),
        ),
        (
            "POST",
            format!("/roles/{id}/permissions"),
            json!({"permissions": [{"resource_server_identifier": management,
                                    "permission_name": "read:users"}]}),
            (400, "the Management API does not allow user access"),
        ),
        (
            "POST",
            "/roles/rol_0000000000000000/permissions".to_string(),
            json!({"permissions": [{"resource_server_identifier": API, "permission_name": "read:things"}]}),
            (404, "The role does not exist"),
        ),
    ];
    for (method, path, body, (status, wanted)) in cases {
        let a = call(&s, method, &path, Some(&t), Some(body.clone())).await;
        assert_eq!(
            a.status.as_u16(),
            status,
            "{method} {path} {body}: {}",
            a.body
        );
        let (_, message) = a.error();
        assert!(message.contains(wanted), "{body}: {message}");
    }
    // A rename onto another role's name.
    let a = call(
        &s,
        "POST",
        "/roles",
        Some(&t),
        Some(json!({"name": "other"})),
    )
    .await;
    let other = a.body["id"].as_str().unwrap().to_string();
    let (_, revision_after) = stored(&s).await;
    assert_eq!(revision_after, revision + 1);
    let a = call(
        &s,
        "PATCH",
        &format!("/roles/{other}"),
        Some(&t),
        Some(json!({"name": "support"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert_eq!(stored(&s).await.1, revision_after, "nothing was written");
    assert_eq!(alices_roles(&s).await, json!(["support"]));
}

#[tokio::test]
async fn an_api_role_survives_a_file_without_it() {
    let s = server().await;
    let t = token(&s, "admin", ROLES_SCOPES).await;
    let a = call(
        &s,
        "POST",
        "/roles",
        Some(&t),
        Some(json!({"name": "auditors"})),
    )
    .await;
    let id = a.body["id"].as_str().unwrap().to_string();
    let report = apply(&s, &tenant(s.port)).await;
    assert_eq!(report.kept_from_api, 1);
    let a = call(&s, "GET", &format!("/roles/{id}"), Some(&t), None).await;
    assert_eq!(a.status, StatusCode::OK);
    // A file that lists it takes it over (and so it has the file's shape).
    let listed = tenant(s.port).replace(
        "roles:\n",
        "roles:\n  - { name: auditors, description: From the file }\n",
    );
    assert_eq!(apply(&s, &listed).await.kept_from_api, 0);
    let a = call(&s, "GET", &format!("/roles/{id}"), Some(&t), None).await;
    assert_eq!(a.body["description"], "From the file");
    apply(&s, &tenant(s.port)).await;
    let a = call(&s, "GET", &format!("/roles/{id}"), Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn scopes_and_tenants_are_kept_apart() {
    let s = server().await;
    let reader = token(&s, "reader", "read:users").await;
    for (method, path, scope) in [
        ("GET", "/roles", "read:roles"),
        ("GET", "/roles/x/permissions", "read:roles"),
        ("POST", "/roles", "create:roles"),
        ("PATCH", "/roles/x", "update:roles"),
        ("POST", "/roles/x/permissions", "update:roles"),
        ("DELETE", "/roles/x/permissions", "update:roles"),
        ("DELETE", "/roles/x", "delete:roles"),
    ] {
        let body = (method != "GET").then(|| json!({}));
        let a = call(&s, method, path, Some(&reader), body).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(
            a.error().1,
            format!("Insufficient scope, expected any of: {scope}")
        );
    }
    let t = token(&s, "admin", ROLES_SCOPES).await;
    let id = support_id(&s, &t).await;
    let theirs = other_token(&s).await;
    let base = other_base(&s);
    let a = call_at(&s, &base, "GET", "/roles", Some(&theirs), None).await;
    assert_eq!(a.body, json!([]));
    for method in ["GET", "PATCH", "DELETE"] {
        let body = (method == "PATCH").then(|| json!({"name": "x"}));
        let path = format!("/roles/{id}");
        let a = call_at(&s, &base, method, &path, Some(&theirs), body).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{method}: {}", a.body);
    }
    assert_eq!(alices_roles(&s).await, json!(["support"]));
}
