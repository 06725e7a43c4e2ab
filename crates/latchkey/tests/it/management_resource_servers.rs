//! The Management API's resource servers: the system APIs shown read-only
//! as Auth0 shows its own, the tenant's APIs made, read by ID or identifier,
//! changed (scopes they lose leave the grants and roles that named them) and
//! deleted with their grants, each with effect at the token endpoint at
//! once; the tenant file and the API agree on who owns an API.

use reqwest::StatusCode;
use serde_json::json;

use crate::management::*;
use crate::support::*;

const API_SCOPES: &str = "read:resource_servers create:resource_servers update:resource_servers \
                          delete:resource_servers read:client_grants create:client_grants";
const ORDERS: &str = "https://orders.acme.test/";

fn is_api_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn apis_are_listed_system_ones_first_and_read_by_id_or_identifier() {
    let s = server().await;
    let t = token(&s, "admin", API_SCOPES).await;
    let a = call(&s, "GET", "/resource-servers", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let all = a.body.as_array().unwrap().clone();
    let identifiers: Vec<&str> = all
        .iter()
        .map(|r| r["identifier"].as_str().unwrap())
        .collect();
    let management = format!("{}api/v2/", s.issuer);
    let my_account = format!("{}me/", s.issuer);
    assert_eq!(identifiers, [management.as_str(), my_account.as_str(), API]);
    assert_eq!(all[0]["name"], "Auth0 Management API");
    assert_eq!(all[0]["is_system"], true);
    assert_eq!(all[0]["token_lifetime"], 86400);
    assert!(
        all[0]["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!({"value": "read:clients"}))
    );
    assert_eq!(all[1]["is_system"], true);
    assert_eq!(all[1]["name"], "Auth0 My Account API");
    let api = &all[2];
    assert!(is_api_id(api["id"].as_str().unwrap()), "{api}");
    assert_eq!(
        api,
        &json!({"id": api["id"], "name": API, "identifier": API, "is_system": false,
                "scopes": [{"value": "read:things"}, {"value": "write:things"}],
                "signing_alg": "RS256", "token_lifetime": 86400, "allow_offline_access": false,
                "enforce_policies": false, "token_dialect": "access_token"})
    );
    // By ID, by identifier (as the SDKs encode it), the system ones likewise.
    let id = api["id"].as_str().unwrap();
    for key in [id.to_string(), encoded(API)] {
        let a = call(
            &s,
            "GET",
            &format!("/resource-servers/{key}"),
            Some(&t),
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{key}: {}", a.body);
        assert_eq!(&a.body, api);
    }
    let a = call(
        &s,
        "GET",
        &format!("/resource-servers/{}", encoded(&management)),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.body, all[0]);
    let a = call(&s, "GET", "/resource-servers/nothing", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error().0, "inexistent_resource_server");

    // identifiers (repeated), pages with totals.
    let a = call(
        &s,
        "GET",
        &format!(
            "/resource-servers?identifiers={}&identifiers={}",
            encoded(API),
            encoded(&my_account)
        ),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.body, json!([all[1], all[2]]));
    let a = call(
        &s,
        "GET",
        "/resource-servers?page=1&per_page=2&include_totals=true",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(
        a.body,
        json!({"start": 2, "limit": 2, "length": 1, "total": 3, "resource_servers": [all[2]]})
    );
}

#[tokio::test]
async fn an_api_made_changed_and_deleted_takes_effect_at_once() {
    let s = server().await;
    let t = token(&s, "admin", API_SCOPES).await;
    let a = call(
        &s,
        "POST",
        "/resource-servers",
        Some(&t),
        Some(
            json!({"identifier": ORDERS, "name": "Orders", "token_lifetime": 3600,
                    "allow_offline_access": true, "signing_alg": "RS256",
                    "scopes": [{"value": "read:orders", "description": "Read orders"},
                               {"value": "write:orders"}]}),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_string();
    assert!(is_api_id(&id));
    assert_eq!(a.body["name"], "Orders");
    assert_eq!(
        a.body["scopes"],
        json!([{"value": "read:orders", "description": "Read orders"}, {"value": "write:orders"}])
    );
    assert_eq!(a.body["allow_offline_access"], true);

    // A grant to it works at once; its tokens live the API's lifetime.
    let a = call(
        &s,
        "POST",
        "/client-grants",
        Some(&t),
        Some(json!({"client_id": "stranger", "audience": ORDERS,
                    "scope": ["read:orders", "write:orders"]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let grant = a.body["id"].as_str().unwrap().to_string();
    let (status, body) = client_credentials(&s, "stranger", ADMIN_SECRET, ORDERS).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read:orders write:orders");

    // A scope it loses leaves the grant that named it.
    let a = call(
        &s,
        "PATCH",
        &format!("/resource-servers/{id}"),
        Some(&t),
        Some(
            json!({"scopes": [{"value": "write:orders"}, {"value": "ship:orders"}],
                    "token_lifetime": 600}),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["identifier"], ORDERS);
    assert_eq!(a.body["token_lifetime"], 600);
    let g = call(
        &s,
        "GET",
        &format!("/client-grants/{grant}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(g.body["scope"], json!(["write:orders"]));
    let (_, body) = client_credentials(&s, "stranger", ADMIN_SECRET, ORDERS).await;
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "write:orders");
    let logged = events(&s, "sapi").await;
    let last = logged.last().unwrap();
    assert_eq!(last["details"]["description"], "Update a Resource Server");
    assert_eq!(last["details"]["id"], id.as_str());

    // Deleted, by identifier: its grants go, its tokens are refused.
    let a = call(
        &s,
        "DELETE",
        &format!("/resource-servers/{}", encoded(ORDERS)),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    let g = call(
        &s,
        "GET",
        &format!("/client-grants/{grant}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
    let (status, body) = client_credentials(&s, "stranger", ADMIN_SECRET, ORDERS).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    for method in ["GET", "PATCH", "DELETE"] {
        let body = (method == "PATCH").then(|| json!({"name": "x"}));
        let a = call(
            &s,
            method,
            &format!("/resource-servers/{id}"),
            Some(&t),
            body,
        )
        .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{method}: {}", a.body);
    }
    let (config, _) = stored(&s).await;
    assert!(config.api_owned.resource_servers.is_empty());
    assert!(config.api_owned.client_grants.is_empty());
}

#[tokio::test]
async fn system_apis_are_read_only_and_bad_input_changes_nothing() {
    let s = server().await;
    let t = token(&s, "admin", API_SCOPES).await;
    let (_, revision) = stored(&s).await;
    let management = format!("{}api/v2/", s.issuer);
    let list = call(&s, "GET", "/resource-servers", Some(&t), None).await;
    for system in &list.body.as_array().unwrap()[..2] {
        let id = system["id"].as_str().unwrap();
        let identifier = encoded(system["identifier"].as_str().unwrap());
        for key in [id.to_string(), identifier] {
            for method in ["PATCH", "DELETE"] {
                let body = (method == "PATCH").then(|| json!({"token_lifetime": 60}));
                let a = call(
                    &s,
                    method,
                    &format!("/resource-servers/{key}"),
                    Some(&t),
                    body,
                )
                .await;
                assert_eq!(a.status, StatusCode::BAD_REQUEST, "{method} {key}");
                let (code, message) = a.error();
                assert_eq!(code, "operation_not_supported");
                assert!(message.contains("system API"), "{message}");
            }
        }
    }
    let cases = [
        (
            json!({"name": "x"}),
            (400, "Missing required property: identifier"),
        ),
        (
            json!({"identifier": management}),
            (
                400,
                "is the audience of the built-in Management API' on property identifier",
            ),
        ),
        (
            json!({"identifier": API}),
            (409, "same identifier already exists"),
        ),
        (
            json!({"identifier": ORDERS, "scopes": ["read:orders"]}),
            (
                400,
                "'Expected type object but found type string' on property scopes[0]",
            ),
        ),
        (
            json!({"identifier": ORDERS, "scopes": [{"value": "read orders"}]}),
            (400, "on property scopes[0]"),
        ),
        (
            json!({"identifier": ORDERS, "scopes": [{"value": "a"}, {"value": "a"}]}),
            (400, "duplicate scope"),
        ),
        (
            json!({"identifier": ORDERS, "token_lifetime": 10}),
            (400, "on property token_lifetime"),
        ),
        (
            json!({"identifier": ORDERS, "signing_alg": "HS256"}),
            (400, "on property signing_alg"),
        ),
        (
            json!({"identifier": ORDERS, "token_dialect": "access_token_authz"}),
            (400, "on property token_dialect"),
        ),
        (
            json!({"identifier": ORDERS, "name": "<b>"}),
            (400, "on property name"),
        ),
        (
            json!({"identifier": ORDERS, "skip_consent_for_verifiable_first_party_clients": true}),
            (400, "Additional properties not allowed"),
        ),
    ];
    for (body, (status, wanted)) in cases {
        let a = call(
            &s,
            "POST",
            "/resource-servers",
            Some(&t),
            Some(body.clone()),
        )
        .await;
        assert_eq!(a.status.as_u16(), status, "{body}: {}", a.body);
        let (_, message) = a.error();
        assert!(message.contains(wanted), "{body}: {message}");
    }
    let a = call(
        &s,
        "PATCH",
        &format!("/resource-servers/{}", encoded(API)),
        Some(&t),
        Some(json!({"identifier": ORDERS})),
    )
    .await;
    assert!(
        a.error()
            .1
            .contains("Additional properties not allowed: identifier")
    );
    assert_eq!(stored(&s).await.1, revision, "nothing was written");
}

#[tokio::test]
async fn an_api_made_through_the_api_survives_a_file_without_it() {
    let s = server().await;
    let t = token(&s, "admin", API_SCOPES).await;
    let a = call(
        &s,
        "POST",
        "/resource-servers",
        Some(&t),
        Some(json!({"identifier": ORDERS, "scopes": [{"value": "read:orders"}]})),
    )
    .await;
    let id = a.body["id"].as_str().unwrap().to_string();
    let report = apply(&s, &tenant(s.port)).await;
    assert_eq!(report.kept_from_api, 1);
    let a = call(
        &s,
        "GET",
        &format!("/resource-servers/{id}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // The file lists it: the file's version, the same ID.
    let listed = tenant(s.port).replace(
        "resource_servers: [",
        &format!("resource_servers: [{{ identifier: \"{ORDERS}\", name: Filed, scopes: [x] }}, "),
    );
    let report = apply(&s, &listed).await;
    assert_eq!(report.kept_from_api, 0);
    let a = call(
        &s,
        "GET",
        &format!("/resource-servers/{id}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.body["name"], "Filed");
    assert_eq!(a.body["scopes"], json!([{"value": "x"}]));
    apply(&s, &tenant(s.port)).await;
    let a = call(
        &s,
        "GET",
        &format!("/resource-servers/{id}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn scopes_and_tenants_are_kept_apart() {
    let s = server().await;
    let reader = token(&s, "reader", "read:users").await;
    for (method, path, scope) in [
        ("GET", "/resource-servers", "read:resource_servers"),
        ("POST", "/resource-servers", "create:resource_servers"),
        ("PATCH", "/resource-servers/x", "update:resource_servers"),
        ("DELETE", "/resource-servers/x", "delete:resource_servers"),
    ] {
        let body = matches!(method, "POST" | "PATCH").then(|| json!({}));
        let a = call(&s, method, path, Some(&reader), body).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(
            a.error().1,
            format!("Insufficient scope, expected any of: {scope}")
        );
    }
    // The other tenant has no such API: by ID or identifier, nothing.
    let t = token(&s, "admin", API_SCOPES).await;
    let ours = call(&s, "GET", "/resource-servers", Some(&t), None).await;
    let id = ours.body[2]["id"].as_str().unwrap().to_string();
    let theirs = other_token(&s).await;
    let base = other_base(&s);
    let a = call_at(&s, &base, "GET", "/resource-servers", Some(&theirs), None).await;
    let identifiers: Vec<&str> = a
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(
        identifiers,
        [format!("{base}/api/v2/"), format!("{base}/me/")]
    );
    for key in [id, encoded(API)] {
        for method in ["GET", "PATCH", "DELETE"] {
            let body = (method == "PATCH").then(|| json!({"name": "x"}));
            let path = format!("/resource-servers/{key}");
            let a = call_at(&s, &base, method, &path, Some(&theirs), body).await;
            assert_eq!(
                a.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                a.body
            );
        }
    }
    // A system API's ID is the same on every tenant and host.
    assert_eq!(a_system_id(&s, &base, &theirs).await, ours.body[0]["id"]);
}

async fn a_system_id(s: &TestServer, base: &str, token: &str) -> serde_json::Value {
    let a = call_at(s, base, "GET", "/resource-servers", Some(token), None).await;
    a.body[0]["id"].clone()
}
