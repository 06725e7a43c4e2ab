//! The Management API's connections: database, passwordless and upstream
//! connections listed (filters, pages, checkpoints) and read in Auth0's
//! shapes with IDs derived from their names, made and changed with effect at
//! once (users made under a new policy, sign-ups refused), never a secret in
//! or out; deleted with their users; the tenant file and the API agree.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::management::*;
use crate::support::*;

const CONNECTIONS_SCOPES: &str = "read:connections create:connections update:connections \
                                  delete:connections read:users create:users";

fn is_connection_id(id: &str) -> bool {
    id.strip_prefix("con_")
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The connection named `name`, as listed.
async fn by_name(s: &TestServer, t: &str, name: &str) -> Value {
    let a = call(
        s,
        "GET",
        &format!("/connections?name={name}"),
        Some(t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body[0].clone()
}

/// A sign-up at the connection `connection`.
async fn signup_at(s: &TestServer, connection: &str, email: &str) -> StatusCode {
    s.http()
        .post(format!("{}/dbconnections/signup", s.base))
        .json(
            &json!({"client_id": "spa", "connection": connection, "email": email,
                      "password": "a-long-enough-password-1"}),
        )
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn connections_read_in_auth0s_shapes_and_never_a_secret() {
    let s = server().await;
    let t = token(&s, "admin", CONNECTIONS_SCOPES).await;
    let a = call(&s, "GET", "/connections", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let all = a.body.as_array().unwrap().clone();
    let names: Vec<&str> = all.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["Username-Password-Authentication", "Usernames", "acme-idp"]
    );
    let db = &all[0];
    assert!(is_connection_id(db["id"].as_str().unwrap()), "{db}");
    assert_eq!(db["strategy"], "auth0");
    assert_eq!(db["realms"], json!(["Username-Password-Authentication"]));
    assert_eq!(db["is_domain_connection"], false);
    assert_eq!(
        db["enabled_clients"],
        json!(["spa", "admin", "reader", "stranger"]),
        "every client may use a database connection"
    );
    let options = &db["options"];
    assert_eq!(options["password_options"]["complexity"]["min_length"], 10);
    assert_eq!(
        options["password_options"]["history"],
        json!({"active": true, "size": 3})
    );
    assert_eq!(options["disable_signup"], false);
    assert_eq!(all[1]["options"]["requires_username"], true);
    let idp = &all[2];
    assert_eq!(idp["strategy"], "oidc");
    assert_eq!(
        idp["options"],
        json!({"type": "back_channel", "client_id": "latchkey", "client_secret_env": "IDP_CLIENT_SECRET",
               "issuer": "https://idp.acme.test/", "timeout_seconds": 10})
    );
    assert_eq!(idp["authentication"], json!({"active": true}));
    assert_eq!(idp["connected_accounts"], json!({"active": false}));
    assert!(!a.body.to_string().contains(crate::idp::IDP_SECRET));

    // One by one, cut to fields; filters; checkpoints and pages.
    let id = idp["id"].as_str().unwrap();
    let one = call(&s, "GET", &format!("/connections/{id}"), Some(&t), None).await;
    assert_eq!(&one.body, idp);
    let cut = call(
        &s,
        "GET",
        &format!("/connections/{id}?fields=name,strategy"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(cut.body, json!({"name": "acme-idp", "strategy": "oidc"}));
    let a = call(&s, "GET", "/connections?strategy=oidc", Some(&t), None).await;
    assert_eq!(a.body, json!([idp]));
    let a = call(
        &s,
        "GET",
        "/connections?strategy=oidc&strategy=auth0&fields=name",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.body.as_array().unwrap().len(), 3);
    let first = call(&s, "GET", "/connections?take=2&fields=name", Some(&t), None).await;
    assert_eq!(
        first.body["connections"],
        json!([{"name": "Username-Password-Authentication"}, {"name": "Usernames"}])
    );
    let next = first.body["next"].as_str().unwrap();
    let rest = call(
        &s,
        "GET",
        &format!("/connections?take=2&from={next}&fields=name"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(rest.body, json!({"connections": [{"name": "acme-idp"}]}));
    let a = call(
        &s,
        "GET",
        "/connections?per_page=1&page=2&include_totals=true&fields=name",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(
        a.body,
        json!({"start": 2, "limit": 1, "length": 1, "total": 3, "connections": [{"name": "acme-idp"}]})
    );
}

#[tokio::test]
async fn a_database_connection_made_and_changed_takes_effect_at_once() {
    let s = server().await;
    let t = token(&s, "admin", CONNECTIONS_SCOPES).await;
    let a = call(
        &s,
        "POST",
        "/connections",
        Some(&t),
        Some(json!({"name": "Partners", "strategy": "auth0",
                    "options": {"password_options": {
                        "complexity": {"min_length": 14, "character_types": ["number"]},
                        "history": {"active": true, "size": 2}}}})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_string();
    assert!(is_connection_id(&id));
    assert_eq!(
        a.body["options"]["password_options"]["complexity"],
        json!({"min_length": 14, "character_types": ["number"], "character_type_rule": "all",
               "identical_characters": "allow", "sequential_characters": "allow",
               "max_length_exceeded": "truncate"})
    );
    // Users are made in it under its policy, and sign up to it.
    let weak = call(
        &s,
        "POST",
        "/users",
        Some(&t),
        Some(json!({"connection": "Partners", "email": "p@example.com", "password": "short-1"})),
    )
    .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST, "{}", weak.body);
    let made = call(
        &s,
        "POST",
        "/users",
        Some(&t),
        Some(json!({"connection": "Partners", "email": "p@example.com",
                    "password": "long-enough-password-7"})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(
        signup_at(&s, "Partners", "q@example.com").await,
        StatusCode::OK
    );
    // Options replace the options: sign-ups are closed, the policy is back
    // to its defaults.
    let a = call(
        &s,
        "PATCH",
        &format!("/connections/{id}"),
        Some(&t),
        Some(json!({"options": {"disable_signup": true}})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["options"]["disable_signup"], true);
    assert_eq!(
        a.body["options"]["password_options"]["complexity"]["min_length"],
        8
    );
    assert_eq!(
        signup_at(&s, "Partners", "r@example.com").await,
        StatusCode::BAD_REQUEST
    );
    let logged = events(&s, "sapi").await;
    let last = logged.last().unwrap();
    assert_eq!(last["details"]["description"], "Update a connection");
    assert_eq!(last["details"]["changes"]["disable_signup"], true);
}

#[tokio::test]
async fn upstream_and_passwordless_connections_name_their_secrets_never_hold_them() {
    let s = server().await;
    let t = token(&s, "admin", CONNECTIONS_SCOPES).await;
    let (_, revision) = stored(&s).await;
    let idp = |options: Value| {
        json!({"name": "partner-idp", "strategy": "oidc", "enabled_clients": ["spa"],
               "display_name": "Partner", "options": options})
    };
    let refused = [
        (
            idp(json!({"client_id": "x", "client_secret": "s3cret", "issuer": "https://p.test/"})),
            "on property options.client_secret",
        ),
        (
            idp(
                json!({"client_id": "x", "client_secret_env": "NOT_SET_ANYWHERE", "issuer": "https://p.test/"}),
            ),
            "the environment variable NOT_SET_ANYWHERE is not set' on property options.client_secret_env",
        ),
        (
            idp(json!({"client_id": "x", "issuer": "https://p.test/"})),
            "client_secret_env is required",
        ),
        (
            idp(json!({"client_id": "x", "client_secret_env": "IDP_CLIENT_SECRET"})),
            "strategy oidc needs issuer or discovery_url",
        ),
        (
            idp(
                json!({"client_id": "x", "client_secret_env": "IDP_CLIENT_SECRET",
                       "issuer": "https://p.test/", "tokenURL": "https://p.test/t"}),
            ),
            "tokenURL",
        ),
        (
            idp(
                json!({"client_id": "x", "client_secret_env": "IDP_CLIENT_SECRET",
                       "issuer": "https://p.test/", "surprise": 1}),
            ),
            "unknown field `surprise`",
        ),
        (
            json!({"name": "partner-idp", "strategy": "oidc"}),
            "on property options",
        ),
        (
            json!({"name": "email", "strategy": "email", "enabled_clients": ["spa"]}),
            "which the file does not configure",
        ),
        (
            json!({"name": "x", "strategy": "auth0", "display_name": "X"}),
            "on property display_name",
        ),
        (
            json!({"name": "x", "strategy": "auth0", "enabled_clients": ["spa"]}),
            "on property enabled_clients",
        ),
        (
            json!({"name": "x", "strategy": "auth0", "options": {"passwordPolicy": "good"}}),
            "unknown field `passwordPolicy`",
        ),
        (
            json!({"name": "x", "strategy": "saml"}),
            "unknown connection strategy",
        ),
        (
            json!({"strategy": "auth0"}),
            "Missing required property: name",
        ),
        (
            json!({"name": "-bad-", "strategy": "auth0"}),
            "on property name",
        ),
        (
            json!({"name": "Usernames", "strategy": "auth0"}),
            "same name already exists",
        ),
    ];
    for (body, wanted) in refused {
        let a = call(&s, "POST", "/connections", Some(&t), Some(body.clone())).await;
        assert!(a.status.is_client_error(), "{body}: {}", a.body);
        let (_, message) = a.error();
        assert!(message.contains(wanted), "{body}: {message}");
    }
    assert_eq!(stored(&s).await.1, revision, "nothing was written");

    // Made: its secret named, never shown; enabled for spa.
    let a = call(
        &s,
        "POST",
        "/connections",
        Some(&t),
        Some(idp(
            json!({"client_id": "x", "client_secret_env": "IDP_CLIENT_SECRET",
                        "issuer": "https://p.test/", "scope": "openid profile email"}),
        )),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["enabled_clients"], json!(["spa"]));
    assert_eq!(a.body["display_name"], "Partner");
    assert_eq!(a.body["options"]["scope"], "openid profile email");
    assert_eq!(a.body["options"]["client_secret_env"], "IDP_CLIENT_SECRET");
    assert!(!a.body.to_string().contains(crate::idp::IDP_SECRET));
    let id = a.body["id"].as_str().unwrap().to_string();
    let a = call(
        &s,
        "PATCH",
        &format!("/connections/{id}"),
        Some(&t),
        Some(
            json!({"enabled_clients": ["spa", "admin"], "connected_accounts": {"active": true},
                    "link_by_verified_email": true}),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["enabled_clients"], json!(["spa", "admin"]));
    assert_eq!(a.body["connected_accounts"], json!({"active": true}));
    assert_eq!(
        a.body["options"]["issuer"], "https://p.test/",
        "options kept"
    );
    let a = call(
        &s,
        "PATCH",
        &format!("/connections/{id}"),
        Some(&t),
        Some(json!({"enabled_clients": ["nobody"]})),
    )
    .await;
    assert!(
        a.error().1.contains("on property enabled_clients[0]"),
        "{}",
        a.body
    );
    let a = call(
        &s,
        "PATCH",
        &format!("/connections/{id}"),
        Some(&t),
        Some(json!({"name": "renamed"})),
    )
    .await;
    assert!(
        a.error()
            .1
            .contains("Additional properties not allowed: name")
    );

    // A passwordless connection, once the tenant has an email provider.
    let with_mail = tenant(s.port)
        + "email_provider: { smtp: { host: 127.0.0.1, port: 2525, security: none, from: no-reply@acme.test } }\n";
    apply(&s, &with_mail).await;
    let a = call(
        &s,
        "POST",
        "/connections",
        Some(&t),
        Some(
            json!({"name": "email", "strategy": "email", "enabled_clients": ["spa"],
                    "options": {"disable_signup": true}}),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["options"], json!({"disable_signup": true}));
    assert_eq!(a.body["enabled_clients"], json!(["spa"]));
}

#[tokio::test]
async fn a_deleted_connection_takes_its_users_and_nothing_else() {
    let s = server().await;
    let t = token(&s, "admin", CONNECTIONS_SCOPES).await;
    let a = call(
        &s,
        "POST",
        "/connections",
        Some(&t),
        Some(json!({"name": "Temps", "strategy": "auth0"})),
    )
    .await;
    let id = a.body["id"].as_str().unwrap().to_string();
    let mut made = Vec::new();
    for i in 0..3 {
        let a = call(
            &s,
            "POST",
            "/users",
            Some(&t),
            Some(
                json!({"connection": "Temps", "email": format!("t{i}@example.com"),
                        "password": "a-long-enough-password"}),
            ),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        made.push(a.body["user_id"].as_str().unwrap().to_string());
    }
    let a = call(&s, "DELETE", &format!("/connections/{id}"), Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    for user in &made {
        let path = format!("/users/{}", user.replace('|', "%7C"));
        let a = call(&s, "GET", &path, Some(&t), None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{user}");
    }
    let a = call(&s, "GET", "/users/auth0%7Calice", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::OK, "other connections' users stay");
    let a = call(&s, "GET", &format!("/connections/{id}"), Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error().0, "inexistent_connection");
    let logged = events(&s, "sapi").await;
    let last = logged.last().unwrap();
    assert_eq!(last["details"]["description"], "Delete a connection");
    assert_eq!(last["details"]["changes"]["users_deleted"], 3);
    // Made again, it has nobody.
    let a = call(
        &s,
        "POST",
        "/connections",
        Some(&t),
        Some(json!({"name": "Temps", "strategy": "auth0"})),
    )
    .await;
    assert_eq!(a.body["id"], id.as_str());
    let a = call(
        &s,
        "GET",
        "/users?q=identities.connection:%22Temps%22&include_totals=true",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.body["total"], 0, "{}", a.body);
}

#[tokio::test]
async fn an_api_connection_survives_a_file_without_it() {
    let s = server().await;
    let t = token(&s, "admin", CONNECTIONS_SCOPES).await;
    let a = call(
        &s,
        "POST",
        "/connections",
        Some(&t),
        Some(json!({"name": "Partners", "strategy": "auth0"})),
    )
    .await;
    let id = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(apply(&s, &tenant(s.port)).await.kept_from_api, 1);
    let a = call(&s, "GET", &format!("/connections/{id}"), Some(&t), None).await;
    assert_eq!(a.status, StatusCode::OK);
    let listed = tenant(s.port).replace(
        "connections:\n",
        "connections:\n  - { name: Partners, requires_username: true }\n",
    );
    assert_eq!(apply(&s, &listed).await.kept_from_api, 0);
    let a = call(&s, "GET", &format!("/connections/{id}"), Some(&t), None).await;
    assert_eq!(a.body["options"]["requires_username"], true);
    apply(&s, &tenant(s.port)).await;
    let a = call(&s, "GET", &format!("/connections/{id}"), Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn scopes_and_tenants_are_kept_apart() {
    let s = server().await;
    let reader = token(&s, "reader", "read:users").await;
    for (method, path, scope) in [
        ("GET", "/connections", "read:connections"),
        ("GET", "/connections/x", "read:connections"),
        ("POST", "/connections", "create:connections"),
        ("PATCH", "/connections/x", "update:connections"),
        ("DELETE", "/connections/x", "delete:connections"),
    ] {
        let body = matches!(method, "POST" | "PATCH").then(|| json!({}));
        let a = call(&s, method, path, Some(&reader), body).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(
            a.error().1,
            format!("Insufficient scope, expected any of: {scope}")
        );
    }
    let t = token(&s, "admin", CONNECTIONS_SCOPES).await;
    let ours = by_name(&s, &t, "acme-idp").await;
    let id = ours["id"].as_str().unwrap();
    let theirs = other_token(&s).await;
    let base = other_base(&s);
    let a = call_at(&s, &base, "GET", "/connections", Some(&theirs), None).await;
    assert_eq!(a.body.as_array().unwrap().len(), 1);
    for method in ["GET", "PATCH", "DELETE"] {
        let body = (method == "PATCH").then(|| json!({"display_name": "x"}));
        let path = format!("/connections/{id}");
        let a = call_at(&s, &base, method, &path, Some(&theirs), body).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{method}: {}", a.body);
    }
    assert_eq!(by_name(&s, &t, "acme-idp").await, ours);
}
