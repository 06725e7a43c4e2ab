//! The Management API's `/user-blocks`: a user blocked by brute-force
//! protection (too many wrong passwords from one IP) is found by user ID
//! or by email, and unblocked by support, who can then see the user log in
//! again; each behind its scope, unblocking logged, another tenant's users
//! never found.

use reqwest::StatusCode;
use serde_json::json;

use crate::management::*;
use crate::support::*;

/// Wrong passwords for Alice until she is blocked (the tenant's default:
/// 10), then her right one refused.
async fn block_alice(s: &TestServer) {
    for _ in 0..10 {
        s.token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", "not-her-password"),
        ])
        .await;
    }
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

#[tokio::test]
async fn support_finds_a_blocked_user_and_lifts_the_block() {
    let s = server().await;
    let t = token(&s, "admin", "read:users update:users").await;
    let none = call(&s, "GET", "/user-blocks/auth0%7Calice", Some(&t), None).await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.body);
    assert_eq!(none.body, json!({ "blocked_for": [] }));

    block_alice(&s).await;
    let expected = json!({ "blocked_for": [
        { "identifier": ALICE, "ip": "127.0.0.1", "connection": "Username-Password-Authentication" }
    ] });
    let by_id = call(&s, "GET", "/user-blocks/auth0%7Calice", Some(&t), None).await;
    assert_eq!(by_id.body, expected);
    let by_email = call(
        &s,
        "GET",
        &format!("/user-blocks?identifier={}", ALICE.to_uppercase()),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(by_email.body, expected);

    // Lifted by identifier: she logs in again, and it was logged.
    let lifted = call(
        &s,
        "DELETE",
        &format!("/user-blocks?identifier={ALICE}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(lifted.status, StatusCode::NO_CONTENT, "{}", lifted.body);
    s.password_login("openid", None).await;
    assert!(
        events(&s, "sapi")
            .await
            .iter()
            .any(|e| e["details"]["description"] == "Unblock a user"
                && e["user_id"] == "auth0|alice")
    );

    // Blocked again, lifted by user ID.
    block_alice(&s).await;
    let lifted = call(&s, "DELETE", "/user-blocks/auth0%7Calice", Some(&t), None).await;
    assert_eq!(lifted.status, StatusCode::NO_CONTENT);
    s.password_login("openid", None).await;
}

#[tokio::test]
async fn scopes_unknown_users_bad_input_and_other_tenants() {
    let s = server().await;
    block_alice(&s).await;
    // Reading needs read:users, lifting update:users (metadata alone is not enough).
    let metadata_only = token(&s, "reader", "update:users_app_metadata").await;
    let a = call(
        &s,
        "DELETE",
        "/user-blocks/auth0%7Calice",
        Some(&metadata_only),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.error().1.contains("update:users"));
    let read = token(&s, "reader", "read:users").await;
    let a = call(
        &s,
        "DELETE",
        "/user-blocks/auth0%7Calice",
        Some(&read),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Still blocked.
    let a = call(&s, "GET", "/user-blocks/auth0%7Calice", Some(&read), None).await;
    assert_eq!(a.body["blocked_for"].as_array().unwrap().len(), 1);

    // Unknown user: 404; no identifier: 400; an identifier naming nobody: none.
    let a = call(&s, "GET", "/user-blocks/auth0%7Cnobody", Some(&read), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error().0, "inexistent_user");
    let a = call(&s, "GET", "/user-blocks", Some(&read), None).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error().0, "invalid_query_string");
    let a = call(
        &s,
        "GET",
        "/user-blocks?identifier=nobody@example.com",
        Some(&read),
        None,
    )
    .await;
    assert_eq!(a.body, json!({ "blocked_for": [] }));

    // The other tenant's client cannot see or lift this tenant's blocks.
    let audience = format!("{}/api/v2/", other_base(&s));
    let (status, body) =
        client_token(&s, &other_base(&s), "admin", &audience, Some("read:users")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let theirs = body["access_token"].as_str().unwrap();
    let a = call_at(
        &s,
        &other_base(&s),
        "GET",
        "/user-blocks/auth0%7Calice",
        Some(theirs),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = call_at(
        &s,
        &other_base(&s),
        "GET",
        &format!("/user-blocks?identifier={ALICE}"),
        Some(theirs),
        None,
    )
    .await;
    assert_eq!(a.body, json!({ "blocked_for": [] }));
}
