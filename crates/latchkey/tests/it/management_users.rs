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

/// Alice's refresh token (the `spa` client, a password login).
async fn alice_refresh_token(s: &TestServer) -> String {
    let body = s.password_login("openid offline_access", None).await;
    body["refresh_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn patches_change_the_profile_and_merge_metadata_as_auth0() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    create(
        &s,
        &t,
        json!({"connection": DB, "email": "hal@example.com", "password": "a-long-password-1",
               "user_id": "hal", "nickname": "hal9000", "given_name": "Hal",
               "user_metadata": {"theme": "dark", "lang": "en", "nested": {"a": 1, "b": 2}},
               "app_metadata": {"plan": "gold"}}),
    )
    .await;
    s.clock.advance(60);
    let a = call(
        &s,
        "PATCH",
        "/users/auth0%7Chal",
        Some(&t),
        Some(json!({
            "family_name": "Nine",
            "given_name": null,
            "user_metadata": {"lang": null, "nested": {"c": 3}, "tz": "UTC"},
            "email_verified": true,
        })),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let u = &a.body;
    assert_eq!(u["family_name"], "Nine");
    assert!(u.get("given_name").is_none(), "{u}");
    assert_eq!(u["nickname"], "hal9000");
    assert_eq!(u["email_verified"], true);
    // Top-level keys merged, null removes one, inner objects replaced.
    assert_eq!(
        u["user_metadata"],
        json!({"theme": "dark", "nested": {"c": 3}, "tz": "UTC"})
    );
    assert_eq!(u["app_metadata"], json!({"plan": "gold"}));
    assert_eq!(u["updated_at"], "2027-01-15T08:01:00.000Z");
    assert_eq!(u["created_at"], "2027-01-15T08:00:00.000Z");
    let got = call(&s, "GET", "/users/auth0%7Chal", Some(&t), None).await;
    assert_eq!(&got.body, u);

    // An empty object clears the metadata.
    let a = call(
        &s,
        "PATCH",
        "/users/auth0%7Chal",
        Some(&t),
        Some(json!({"app_metadata": {}})),
    )
    .await;
    assert_eq!(a.body["app_metadata"], json!({}));
    assert_eq!(a.body["user_metadata"]["theme"], "dark");

    // A new email is unverified unless said otherwise, and its login moves.
    let a = call(
        &s,
        "PATCH",
        "/users/auth0%7Chal",
        Some(&t),
        Some(json!({"email": "HAL@new.example.com"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["email"], "HAL@new.example.com");
    assert_eq!(a.body["email_verified"], false);
    let login = |email: &'static str| {
        let s = &s;
        async move {
            s.token(&[
                (
                    "grant_type",
                    "http://auth0.com/oauth/grant-type/password-realm",
                ),
                ("client_id", "spa"),
                ("username", email),
                ("password", "a-long-password-1"),
                ("realm", DB),
            ])
            .await
            .0
        }
    };
    assert_eq!(login("hal@new.example.com").await, StatusCode::OK);
    assert_eq!(login("hal@example.com").await, StatusCode::FORBIDDEN);
    // Another user's email: refused, nothing changed.
    let a = call(
        &s,
        "PATCH",
        "/users/auth0%7Chal",
        Some(&t),
        Some(json!({"email": ALICE, "nickname": "changed"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.error().0, "user_exists");
    let got = call(&s, "GET", "/users/auth0%7Chal", Some(&t), None).await;
    assert_eq!(got.body["nickname"], "hal9000");

    let logged = events(&s, "sapi").await;
    assert_eq!(
        logged.last().unwrap()["details"]["description"],
        "Update a User"
    );
}

#[tokio::test]
async fn bad_patches_are_refused_and_change_nothing() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    let before = call(&s, "GET", "/users/auth0%7Calice", Some(&t), None)
        .await
        .body;
    for (body, code, says) in [
        (
            json!({"blocked": "yes"}),
            "invalid_body",
            "Expected type boolean",
        ),
        (json!({"password": null}), "invalid_body", "found type null"),
        (
            json!({"email": "nope"}),
            "invalid_body",
            "on property email",
        ),
        (
            json!({"nickname": ""}),
            "invalid_body",
            "on property nickname",
        ),
        (
            json!({"user_id": "x"}),
            "invalid_body",
            "Additional properties not allowed: user_id",
        ),
        (
            json!({"username": "alice"}),
            "operation_not_supported",
            "requires_username",
        ),
        (
            json!({"connection": "Usernames"}),
            "invalid_body",
            "not a user of the connection",
        ),
        (
            json!({"app_metadata": {"$x": 1}}),
            "invalid_body",
            "on property app_metadata",
        ),
        (
            json!({"password": "short"}),
            "invalid_body",
            "PasswordStrengthError",
        ),
        // The current password, under a history of 3: used before.
        (
            json!({"password": ALICE_PASSWORD}),
            "invalid_body",
            "PasswordHistoryError",
        ),
    ] {
        let a = call(
            &s,
            "PATCH",
            "/users/auth0%7Calice",
            Some(&t),
            Some(body.clone()),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.body);
        let (c, m) = a.error();
        assert_eq!(c, code, "{body}: {m}");
        assert!(m.contains(says), "{body}: {m}");
    }
    let after = call(&s, "GET", "/users/auth0%7Calice", Some(&t), None)
        .await
        .body;
    assert_eq!(before, after);
    let a = call(
        &s,
        "PATCH",
        "/users/auth0%7Cnobody",
        Some(&t),
        Some(json!({"blocked": true})),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error().0, "inexistent_user");
}

#[tokio::test]
async fn the_metadata_scope_changes_metadata_only() {
    let s = server().await;
    let t = token(&s, "reader", "read:users update:users_app_metadata").await;
    let a = call(
        &s,
        "PATCH",
        "/users/auth0%7Calice",
        Some(&t),
        Some(json!({"app_metadata": {"tier": 2}})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["app_metadata"], json!({"tier": 2}));
    let a = call(
        &s,
        "PATCH",
        "/users/auth0%7Calice",
        Some(&t),
        Some(json!({"app_metadata": {"tier": 3}, "blocked": true})),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(
        a.error(),
        (
            "insufficient_scope".into(),
            "Insufficient scope, expected any of: update:users".into()
        )
    );
    let got = call(&s, "GET", "/users/auth0%7Calice", Some(&t), None).await;
    assert_eq!(got.body["app_metadata"], json!({"tier": 2}));
    assert_eq!(got.body["blocked"], false);
}

#[tokio::test]
async fn a_new_password_or_a_block_ends_what_the_user_holds() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    let rt = alice_refresh_token(&s).await;
    let a = call(
        &s,
        "PATCH",
        "/users/auth0%7Calice",
        Some(&t),
        Some(json!({"password": "a-brand-new-password"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["last_password_reset"], "2027-01-15T08:00:00.000Z");
    let (status, body) = s.refresh(&rt).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // The new password logs in; the old one does not.
    let (status, _) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", "a-brand-new-password"),
        ])
        .await;
    assert_eq!(status, StatusCode::OK);
    // The old one is in the history now.
    let a = call(
        &s,
        "PATCH",
        "/users/auth0%7Calice",
        Some(&t),
        Some(json!({"password": ALICE_PASSWORD})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().1.starts_with("PasswordHistoryError"));

    // Blocking ends the tokens too, and refuses logins.
    let body = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", "a-brand-new-password"),
            ("scope", "openid offline_access"),
        ])
        .await
        .1;
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    let a = call(
        &s,
        "PATCH",
        "/users/auth0%7Calice",
        Some(&t),
        Some(json!({"blocked": true})),
    )
    .await;
    assert_eq!(a.body["blocked"], true);
    let (status, _) = s.refresh(&rt).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let a = call(
        &s,
        "PATCH",
        "/users/auth0%7Calice",
        Some(&t),
        Some(json!({"blocked": false})),
    )
    .await;
    assert_eq!(a.body["blocked"], false);
    let (status, _) = s.refresh(&rt).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "unblocking gives no token back"
    );
}

#[tokio::test]
async fn deleting_a_user_takes_everything_they_hold() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    // Alice holds a method, a refresh token and a My Account token.
    let me = s
        .me_token("create:me:authentication_methods read:me:authentication_methods")
        .await;
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&me),
            Some(json!({"type": "recovery-code"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let location = r.header("location").unwrap().to_string();
    let v = s
        .me(
            "POST",
            &format!("{location}/verify"),
            Some(&me),
            Some(json!({"auth_session": r.body["auth_session"]})),
        )
        .await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    assert_eq!(
        s.state
            .store
            .methods(&tenant.id, "auth0|alice")
            .await
            .unwrap()
            .len(),
        1
    );
    let rt = alice_refresh_token(&s).await;
    let me = s.me_token("read:me:authentication_methods").await;
    assert_eq!(
        s.me("GET", "/authentication-methods", Some(&me), None)
            .await
            .status,
        StatusCode::OK
    );

    let a = call(&s, "DELETE", "/users/auth0%7Calice", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(a.body, Value::Null);

    let a = call(&s, "GET", "/users/auth0%7Calice", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let (status, body) = s.refresh(&rt).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        s.me("GET", "/authentication-methods", Some(&me), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        s.state
            .store
            .methods(&tenant.id, "auth0|alice")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.state
            .store
            .password_history(&tenant.id, "auth0|alice", 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A second delete: nobody there.
    let a = call(&s, "DELETE", "/users/auth0%7Calice", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error().0, "inexistent_user");
    let logged = events(&s, "sapi").await;
    assert_eq!(
        logged.last().unwrap()["details"]["description"],
        "Delete a User"
    );
    // The address is free again.
    create(
        &s,
        &t,
        json!({"connection": DB, "email": ALICE, "password": "a-long-password-1"}),
    )
    .await;
}

#[tokio::test]
async fn another_tenants_users_cannot_be_changed_or_deleted() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    let a = call(
        &s,
        "PATCH",
        "/users/auth0%7Ccarol",
        Some(&t),
        Some(json!({"blocked": true})),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = call(&s, "DELETE", "/users/auth0%7Ccarol", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // Carol is still there, on her own tenant.
    let audience = format!("{}/api/v2/", other_base(&s));
    let (_, body) = client_token(&s, &other_base(&s), "admin", &audience, None).await;
    let theirs = body["access_token"].as_str().unwrap();
    let a = call_at(
        &s,
        &other_base(&s),
        "GET",
        "/users/auth0%7Ccarol",
        Some(theirs),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["blocked"], false);
    // And their token deletes nothing here.
    let a = call(&s, "DELETE", "/users/auth0%7Calice", Some(theirs), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}
