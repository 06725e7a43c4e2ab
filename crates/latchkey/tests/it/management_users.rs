//! The Management API's users: `POST /users` and `GET /users/{id}` in
//! Auth0's shapes, their refusals in Auth0's error objects, nothing written
//! by a refused request.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::management::*;
use crate::support::*;

const DB: &str = "Username-Password-Authentication";

async fn user_count(s: &TestServer) -> i64 {
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    s.state.store.count_users(&tenant.id).await.unwrap()
}

#[tokio::test]
async fn a_created_user_reads_back_in_auth0s_shape_and_logs_in() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    let a = call(
        &s,
        "POST",
        "/users",
        Some(&t),
        Some(json!({
            "connection": DB,
            "email": "Dana@Example.com",
            "password": "correct-horse-battery",
            "user_id": "dana-1",
            "email_verified": true,
            "given_name": "Dana",
            "family_name": "Scully",
            "picture": "https://pics.example.com/dana.png",
            "user_metadata": {"theme": "dark", "langs": ["en", "fr"]},
            "app_metadata": {"plan": "gold", "removed": null},
        })),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let u = &a.body;
    assert_eq!(u["user_id"], "auth0|dana-1");
    assert_eq!(u["email"], "Dana@Example.com");
    assert_eq!(u["email_verified"], true);
    assert_eq!(u["given_name"], "Dana");
    assert_eq!(u["family_name"], "Scully");
    // Auth0 fills name and nickname in from the email.
    assert_eq!(u["name"], "Dana@Example.com");
    assert_eq!(u["nickname"], "Dana");
    assert_eq!(u["picture"], "https://pics.example.com/dana.png");
    assert_eq!(u["blocked"], false);
    assert_eq!(
        u["user_metadata"],
        json!({"theme": "dark", "langs": ["en", "fr"]})
    );
    assert_eq!(u["app_metadata"], json!({"plan": "gold"}));
    assert_eq!(
        u["identities"],
        json!([{"connection": DB, "provider": "auth0", "user_id": "dana-1", "isSocial": false}])
    );
    assert_eq!(u["created_at"], "2027-01-15T08:00:00.000Z");
    assert_eq!(u["updated_at"], u["created_at"]);
    assert!(u.get("password").is_none() && u.get("password_hash").is_none());

    let got = call(&s, "GET", "/users/auth0%7Cdana-1", Some(&t), None).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(&got.body, u);
    assert_eq!(got.header("cache-control"), Some("no-store"));

    // `fields`, to keep or to leave out.
    let some = call(
        &s,
        "GET",
        "/users/auth0%7Cdana-1?fields=email,user_id&include_fields=true",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(
        some.body,
        json!({"email": "Dana@Example.com", "user_id": "auth0|dana-1"})
    );
    let rest = call(
        &s,
        "GET",
        "/users/auth0%7Cdana-1?fields=identities,app_metadata,user_metadata&include_fields=false",
        Some(&t),
        None,
    )
    .await;
    let keys: Vec<&String> = rest.body.as_object().unwrap().keys().collect();
    assert!(keys.contains(&&"email".to_string()));
    assert!(
        !keys
            .iter()
            .any(|k| k.ends_with("metadata") || *k == "identities")
    );

    // The password works, at the connection's login.
    let (status, body) = s
        .token(&[
            (
                "grant_type",
                "http://auth0.com/oauth/grant-type/password-realm",
            ),
            ("client_id", "spa"),
            ("username", "dana@example.com"),
            ("password", "correct-horse-battery"),
            ("realm", DB),
            ("scope", "openid"),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Logged as a Management API operation.
    let logged = events(&s, "sapi").await;
    let last = logged.last().unwrap();
    assert_eq!(last["details"]["description"], "Create a User");
    assert_eq!(last["user_id"], "auth0|dana-1");
    assert_eq!(last["client_id"], "admin");
}

#[tokio::test]
async fn usernames_follow_the_connection() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    let base =
        json!({"connection": "Usernames", "email": "eve@example.com", "password": "pw-of-eve-1"});
    let a = call(&s, "POST", "/users", Some(&t), Some(base.clone())).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(
        a.error(),
        (
            "invalid_body".into(),
            "Payload validation error: 'Missing required property: username'.".into()
        )
    );
    let mut with = base.clone();
    with["username"] = json!("Eve_99");
    let a = call(&s, "POST", "/users", Some(&t), Some(with)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["username"], "Eve_99");
    // Another user with the same name, whatever its case: taken.
    let mut again = base.clone();
    again["email"] = json!("eve2@example.com");
    again["username"] = json!("eve_99");
    let a = call(&s, "POST", "/users", Some(&t), Some(again)).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert_eq!(
        a.error(),
        ("user_exists".into(), "The user already exists.".into())
    );
    // A connection without usernames takes none.
    let a = call(
        &s,
        "POST",
        "/users",
        Some(&t),
        Some(json!({"connection": DB, "email": "f@example.com", "password": "a-long-password-1", "username": "f"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.error().0, "operation_not_supported");
}

#[tokio::test]
async fn bad_creations_are_refused_in_auth0s_words_and_write_nothing() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    let before = user_count(&s).await;
    let ok = json!({"connection": DB, "email": "gil@example.com", "password": "a-long-password-1"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        if v.is_null() {
            b.as_object_mut().unwrap().remove(k);
        } else {
            b[k] = v;
        }
        b
    };
    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (
            with("connection", Value::Null),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Payload validation error: 'Missing required property: connection'.",
        ),
        (
            with("connection", json!("Nope")),
            StatusCode::BAD_REQUEST,
            "inexistent_connection",
            "The connection does not exist.",
        ),
        (
            with("connection", json!("acme-idp")),
            StatusCode::BAD_REQUEST,
            "operation_not_supported",
            "first login",
        ),
        (
            with("email", Value::Null),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Payload validation error: 'Missing required property: email'.",
        ),
        (
            with("email", json!("not-an-address")),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "on property email",
        ),
        (
            with("email", json!(5)),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Payload validation error: 'Expected type string but found type number' on property email.",
        ),
        (
            with("password", Value::Null),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Payload validation error: 'Missing required property: password'.",
        ),
        (
            with("password", json!("short")),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "PasswordStrengthError: Password is too weak",
        ),
        (
            with("favourite_colour", json!("blue")),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Payload validation error: 'Additional properties not allowed: favourite_colour'.",
        ),
        (
            with("user_id", json!("has space")),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "on property user_id",
        ),
        (
            with("user_metadata", json!("text")),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Expected type object but found type string",
        ),
        (
            with("user_metadata", json!({"a.b": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "on property user_metadata",
        ),
        (
            with("picture", json!("not a url")),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "absolute-uri",
        ),
        (
            with("blocked", json!("yes")),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Expected type boolean",
        ),
        (
            with("email", json!(ALICE)),
            StatusCode::CONFLICT,
            "user_exists",
            "The user already exists.",
        ),
        (
            with("user_id", json!("auth0|alice")),
            StatusCode::CONFLICT,
            "user_exists",
            "The user already exists.",
        ),
    ];
    for (body, status, code, says) in cases {
        let a = call(&s, "POST", "/users", Some(&t), Some(body.clone())).await;
        assert_eq!(a.status, status, "{body}: {}", a.body);
        let (c, m) = a.error();
        assert_eq!(c, code, "{body}: {m}");
        assert!(m.contains(says), "{body}: {m}");
    }

    // Bodies that are not JSON objects.
    let raw = |ct: &'static str, body: Vec<u8>| {
        let s = &s;
        let t = t.clone();
        async move {
            let res = s
                .http()
                .post(s.url("/api/v2/users"))
                .bearer_auth(t)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            Answer {
                status: res.status(),
                headers: res.headers().clone(),
                body: res.json().await.unwrap(),
            }
        }
    };
    let a = raw("application/json", b"{not json".to_vec()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error().1, "Invalid request payload JSON format");
    let a = raw("application/json", b"[1, 2]".to_vec()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().1.contains("found type array"));
    let a = raw("text/plain", b"{}".to_vec()).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    a.error();
    let huge = format!(
        "{{\"connection\":\"{DB}\",\"user_metadata\":{{\"x\":\"{}\"}}}}",
        "a".repeat(300 * 1024)
    );
    let a = raw("application/json", huge.into_bytes()).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    a.error();

    assert_eq!(user_count(&s).await, before, "nothing was written");
    // Each refusal of a change is logged as a failed operation.
    assert!(events(&s, "fapi").await.len() >= 10);
}

#[tokio::test]
async fn reading_an_unknown_user_or_with_bad_parameters() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    let a = call(&s, "GET", "/users/auth0%7Cnobody", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(
        a.error(),
        ("inexistent_user".into(), "The user does not exist.".into())
    );
    let a = call(&s, "GET", "/users/auth0%7Calice?color=red", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.error(),
        (
            "invalid_query_string".into(),
            "Query validation error: 'Additional properties not allowed: color'.".into()
        )
    );
    let a = call(
        &s,
        "GET",
        "/users/auth0%7Calice?include_fields=maybe",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error().0, "invalid_query_string");
}
