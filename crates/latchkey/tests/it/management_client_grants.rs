//! The Management API's client grants: listed (filters, pages and
//! checkpoints) with IDs derived from their keys, made, changed and deleted
//! with effect at the token endpoint at once; the tenant file's rules hold;
//! the file and the API agree on who owns a grant.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::management::*;
use crate::support::*;

const GRANTS_SCOPES: &str = "read:client_grants create:client_grants update:client_grants \
                             delete:client_grants create:clients";

/// A machine-to-machine client made through the API: its ID and secret.
async fn worker(s: &TestServer, t: &str) -> (String, String) {
    let a = call(
        s,
        "POST",
        "/clients",
        Some(t),
        Some(json!({"name": "Worker", "app_type": "non_interactive"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    (
        a.body["client_id"].as_str().unwrap().to_string(),
        a.body["client_secret"].as_str().unwrap().to_string(),
    )
}

fn is_grant_id(id: &str) -> bool {
    id.strip_prefix("cgr_")
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn grants_are_listed_with_ids_derived_from_their_keys() {
    let s = server().await;
    let t = token(&s, "admin", GRANTS_SCOPES).await;
    let a = call(&s, "GET", "/client-grants", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let all = a.body.as_array().unwrap().clone();
    assert_eq!(all.len(), 3, "{}", a.body);
    let admin = all.iter().find(|g| g["client_id"] == "admin").unwrap();
    assert!(is_grant_id(admin["id"].as_str().unwrap()), "{admin}");
    assert_eq!(admin["audience"], format!("{}api/v2/", s.issuer));
    assert_eq!(admin["subject_type"], "client");
    assert_eq!(admin["allow_all_scopes"], true);
    assert_eq!(admin["scope"], json!([]));
    assert_eq!(admin["is_system"], false);
    let spa = all.iter().find(|g| g["client_id"] == "spa").unwrap();
    assert_eq!(spa["subject_type"], "user");
    assert_eq!(
        spa["scope"],
        json!([
            "read:me:factors",
            "create:me:authentication_methods",
            "read:me:authentication_methods"
        ])
    );

    // One by one; the ID is the documented digest of the key, whoever made it.
    let id = admin["id"].as_str().unwrap();
    let one = call(&s, "GET", &format!("/client-grants/{id}"), Some(&t), None).await;
    assert_eq!(&one.body, admin);
    let key = format!("admin\n{}api/v2/\nclient\n", s.issuer);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(id, format!("cgr_{hex}"));

    // Filters.
    let a = call(
        &s,
        "GET",
        "/client-grants?subject_type=user",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.body.as_array().unwrap().len(), 1);
    assert_eq!(a.body[0]["client_id"], "spa");
    let audience = format!("https://localhost:{}/api/v2/", s.port);
    let a = call(
        &s,
        "GET",
        &format!("/client-grants?audience={}", urlencode(&audience)),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.body.as_array().unwrap().len(), 1);
    assert_eq!(a.body[0]["client_id"], "reader");

    // Pages, and checkpoints as the v6 SDK asks for them.
    let a = call(
        &s,
        "GET",
        "/client-grants?per_page=2&page=1&include_totals=true",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.body["start"], 2);
    assert_eq!(a.body["total"], 3);
    assert_eq!(a.body["client_grants"], json!([all[2]]));
    let first = call(&s, "GET", "/client-grants?take=2", Some(&t), None).await;
    assert_eq!(first.body["client_grants"], json!([all[0], all[1]]));
    let next = first.body["next"].as_str().unwrap();
    let rest = call(
        &s,
        "GET",
        &format!("/client-grants?take=2&from={next}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(rest.body, json!({"client_grants": [all[2]]}));
    let a = call(&s, "GET", "/client-grants?from=cgr_nothing", Some(&t), None).await;
    assert_eq!(a.error().0, "invalid_query_string");
}

/// The form-encoding of `s` for a query string.
fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_grant_made_changed_and_deleted_takes_effect_at_once() {
    let s = server().await;
    let t = token(&s, "admin", GRANTS_SCOPES).await;
    let (id, secret) = worker(&s, &t).await;
    let (status, body) = client_credentials(&s, &id, &secret, API).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "access_denied");

    let a = call(
        &s,
        "POST",
        "/client-grants",
        Some(&t),
        Some(json!({"client_id": id, "audience": API, "scope": ["read:things"]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let grant = a.body["id"].as_str().unwrap().to_string();
    assert!(is_grant_id(&grant));
    assert_eq!(
        a.body,
        json!({"id": grant, "client_id": id, "audience": API, "scope": ["read:things"],
               "subject_type": "client", "allow_all_scopes": false, "is_system": false})
    );
    let (status, body) = client_credentials(&s, &id, &secret, API).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "read:things");
    let (config, _) = stored(&s).await;
    assert!(
        config
            .api_owned
            .client_grants
            .iter()
            .any(|k| k.client_id == id)
    );

    let a = call(
        &s,
        "PATCH",
        &format!("/client-grants/{grant}"),
        Some(&t),
        Some(json!({"scope": ["read:things", "write:things"]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["scope"], json!(["read:things", "write:things"]));
    assert_eq!(
        a.body["id"],
        grant.as_str(),
        "the key, and so the ID, stays"
    );
    let (_, body) = client_credentials(&s, &id, &secret, API).await;
    assert_eq!(body["scope"], "read:things write:things");
    let logged = events(&s, "sapi").await;
    let last = logged.last().unwrap();
    assert_eq!(last["details"]["description"], "Update client grant");
    assert_eq!(last["details"]["id"], grant.as_str());
    assert_eq!(
        last["details"]["changes"],
        json!({"scope": ["read:things", "write:things"]})
    );

    let a = call(
        &s,
        "DELETE",
        &format!("/client-grants/{grant}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    let (status, body) = client_credentials(&s, &id, &secret, API).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    for method in ["GET", "PATCH", "DELETE"] {
        let body = (method == "PATCH").then(|| json!({"scope": []}));
        let a = call(
            &s,
            method,
            &format!("/client-grants/{grant}"),
            Some(&t),
            body,
        )
        .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{method}: {}", a.body);
        assert_eq!(a.error().0, "inexistent_client_grant");
    }
    // Made again: the same key, the same ID.
    let a = call(
        &s,
        "POST",
        "/client-grants",
        Some(&t),
        Some(json!({"client_id": id, "audience": API, "allow_all_scopes": true})),
    )
    .await;
    assert_eq!(a.body["id"], grant.as_str());
    let (_, body) = client_credentials(&s, &id, &secret, API).await;
    assert_eq!(body["scope"], "read:things write:things");
}

#[tokio::test]
async fn the_tenant_files_rules_hold_and_nothing_is_written_when_one_breaks() {
    let s = server().await;
    let t = token(&s, "admin", GRANTS_SCOPES).await;
    let (id, _) = worker(&s, &t).await;
    let (_, revision) = stored(&s).await;
    let management = format!("{}api/v2/", s.issuer);
    let my_account = format!("{}me/", s.issuer);
    let cases = [
        (
            json!({"client_id": id, "audience": management, "subject_type": "user", "scope": ["read:users"]}),
            (400, "the Management API does not allow user access"),
        ),
        (
            json!({"client_id": id, "audience": my_account, "scope": ["read:me:factors"]}),
            (400, "the My Account API does not allow client access"),
        ),
        (
            json!({"client_id": id, "audience": API, "scope": ["delete:things"]}),
            (400, "on property scope[0]"),
        ),
        (
            json!({"client_id": id, "audience": API, "scope": ["openid"]}),
            (400, "OpenID Connect scope"),
        ),
        (
            json!({"client_id": id, "audience": "https://nowhere.test/", "scope": []}),
            (400, "is neither a resource server identifier"),
        ),
        (
            json!({"client_id": id, "audience": API, "subject_type": "robot"}),
            (400, "unknown subject type"),
        ),
        (
            json!({"client_id": id}),
            (400, "Missing required property: audience"),
        ),
        (
            json!({"client_id": id, "audience": API, "scope": "read:things"}),
            (
                400,
                "'Expected type array but found type string' on property scope",
            ),
        ),
        (
            json!({"client_id": id, "audience": API, "organization_usage": "deny"}),
            (400, "Additional properties not allowed: organization_usage"),
        ),
        (
            json!({"client_id": "nobody", "audience": API, "scope": []}),
            (404, "The client does not exist"),
        ),
        (
            json!({"client_id": "admin", "audience": management, "scope": []}),
            (409, "already exists"),
        ),
    ];
    for (body, (status, wanted)) in cases {
        let a = call(&s, "POST", "/client-grants", Some(&t), Some(body.clone())).await;
        assert_eq!(a.status.as_u16(), status, "{body}: {}", a.body);
        let (_, message) = a.error();
        assert!(message.contains(wanted), "{body}: {message}");
    }
    let a = call(&s, "GET", "/client-grants?client_id=admin", Some(&t), None).await;
    let admin = a.body[0]["id"].as_str().unwrap().to_string();
    let a = call(
        &s,
        "PATCH",
        &format!("/client-grants/{admin}"),
        Some(&t),
        Some(json!({"scope": ["read:users", "read:me:factors"]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.error().1.contains("on property scope[1]"), "{}", a.body);
    let a = call(
        &s,
        "PATCH",
        &format!("/client-grants/{admin}"),
        Some(&t),
        Some(json!({"audience": API})),
    )
    .await;
    assert_eq!(
        a.error().1,
        "Payload validation error: 'Additional properties not allowed: audience'."
    );
    assert_eq!(stored(&s).await.1, revision, "nothing was written");
}

#[tokio::test]
async fn an_api_grant_survives_a_file_without_it_and_a_file_that_lists_it_takes_it() {
    let s = server().await;
    let t = token(&s, "admin", GRANTS_SCOPES).await;
    // A grant to a file's client, made through the API.
    let a = call(
        &s,
        "POST",
        "/client-grants",
        Some(&t),
        Some(json!({"client_id": "stranger", "audience": API, "scope": ["read:things"]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let grant = a.body["id"].as_str().unwrap().to_string();
    let report = apply(&s, &tenant(s.port)).await;
    assert_eq!(report.kept_from_api, 1);
    let (status, body) = client_credentials(&s, "stranger", ADMIN_SECRET, API).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The file lists it now, with other scopes: the file's version, same ID.
    let listed = tenant(s.port).replace(
        "resource_servers:",
        &format!(
            "  - {{ client_id: stranger, audience: \"{API}\", scope: [write:things] }}\nresource_servers:"
        ),
    );
    let report = apply(&s, &listed).await;
    assert_eq!(report.kept_from_api, 0);
    let a = call(
        &s,
        "GET",
        &format!("/client-grants/{grant}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.body["scope"], json!(["write:things"]));
    // ...and a file without it removes it.
    apply(&s, &tenant(s.port)).await;
    let a = call(
        &s,
        "GET",
        &format!("/client-grants/{grant}"),
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
        ("GET", "/client-grants", "read:client_grants"),
        ("POST", "/client-grants", "create:client_grants"),
        (
            "PATCH",
            "/client-grants/cgr_0000000000000000",
            "update:client_grants",
        ),
        (
            "DELETE",
            "/client-grants/cgr_0000000000000000",
            "delete:client_grants",
        ),
    ] {
        let body = matches!(method, "POST" | "PATCH").then(|| json!({}));
        let a = call(&s, method, path, Some(&reader), body).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(
            a.error().1,
            format!("Insufficient scope, expected any of: {scope}")
        );
    }
    let t = token(&s, "admin", GRANTS_SCOPES).await;
    let ours = call(&s, "GET", "/client-grants", Some(&t), None).await;
    let theirs = other_token(&s).await;
    let base = other_base(&s);
    let a = call_at(&s, &base, "GET", "/client-grants", Some(&theirs), None).await;
    let listed: Vec<&Value> = a.body.as_array().unwrap().iter().collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["audience"], format!("{base}/api/v2/"));
    for grant in ours.body.as_array().unwrap() {
        let id = grant["id"].as_str().unwrap();
        for method in ["GET", "PATCH", "DELETE"] {
            let body = (method == "PATCH").then(|| json!({"scope": []}));
            let path = format!("/client-grants/{id}");
            let a = call_at(&s, &base, method, &path, Some(&theirs), body).await;
            assert_eq!(
                a.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                a.body
            );
        }
    }
    let after = call(&s, "GET", "/client-grants", Some(&t), None).await;
    assert_eq!(after.body, ours.body);
}
