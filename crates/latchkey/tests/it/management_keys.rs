//! The Management API's `/keys/signing`: the tenant's keys listed as Auth0
//! lists them, rotated (the new key signs, the old one stays published for
//! what it signed), and a superseded key revoked at once (out of the JWKS,
//! its tokens refused); the key signing now cannot be revoked; each behind
//! its scope, rotations and revocations logged.

use reqwest::StatusCode;
use serde_json::Value;

use crate::management::*;
use crate::support::*;

async fn jwks_kids(s: &TestServer) -> Vec<String> {
    let jwks: Value = s
        .http()
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

async fn userinfo(s: &TestServer, token: &str) -> StatusCode {
    s.http()
        .get(s.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn keys_are_listed_rotated_and_a_leaked_one_revoked() {
    let s = server().await;
    let t = token(
        &s,
        "admin",
        "read:signing_keys create:signing_keys update:signing_keys",
    )
    .await;
    let listed = call(&s, "GET", "/keys/signing", Some(&t), None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let keys = listed.body.as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let first = keys[0]["kid"].as_str().unwrap().to_string();
    assert_eq!(keys[0]["current"], true);
    assert!(keys[0]["current_since"].as_str().unwrap().ends_with('Z'));
    assert!(keys[0]["current_until"].is_null());

    // A token signed by the first key.
    let old = s.password_login("openid", None).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(userinfo(&s, &old).await, StatusCode::OK);

    // Rotated: the new key signs, the first is the previous one, still published.
    let rotated = call(&s, "POST", "/keys/signing/rotate", Some(&t), None).await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.body);
    let second = rotated.body["kid"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let listed = call(&s, "GET", "/keys/signing", Some(&t), None).await;
    let keys = listed.body.as_array().unwrap();
    assert_eq!(keys[0]["kid"], second.as_str());
    assert_eq!(keys[0]["current"], true);
    assert_eq!(keys[1]["kid"], first.as_str());
    assert_eq!(
        (keys[1]["current"].clone(), keys[1]["previous"].clone()),
        (false.into(), true.into())
    );
    assert!(keys[1]["current_until"].is_string());
    let one = call(&s, "GET", &format!("/keys/signing/{first}"), Some(&t), None).await;
    assert_eq!(&one.body, &keys[1]);
    let kids = jwks_kids(&s).await;
    assert!(kids.contains(&first) && kids.contains(&second), "{kids:?}");
    assert_eq!(userinfo(&s, &old).await, StatusCode::OK);
    let new = s.password_login("openid", None).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // The key signing now cannot be revoked; an unknown one is 404.
    let refused = call(
        &s,
        "PUT",
        &format!("/keys/signing/{second}/revoke"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.error().1.contains("rotate"));
    let unknown = call(&s, "PUT", "/keys/signing/nokey/revoke", Some(&t), None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error().0, "inexistent_key");

    // The first revoked: gone from the JWKS, its token refused at once,
    // the new key's token still good.
    let revoked = call(
        &s,
        "PUT",
        &format!("/keys/signing/{first}/revoke"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert_eq!(revoked.body["kid"], first.as_str());
    assert!(!jwks_kids(&s).await.contains(&first));
    assert_eq!(userinfo(&s, &old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(userinfo(&s, &new).await, StatusCode::OK);
    // The Management API token was the first key's too: refused now.
    let stale = call(&s, "GET", "/keys/signing", Some(&t), None).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    let t = token(&s, "admin", "read:signing_keys").await;
    let gone = call(&s, "GET", &format!("/keys/signing/{first}"), Some(&t), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    // Logged.
    let logged: Vec<String> = events(&s, "sapi")
        .await
        .iter()
        .map(|e| e["details"]["description"].as_str().unwrap().to_string())
        .collect();
    assert!(
        logged.contains(&"Rotate the signing keys".to_string()),
        "{logged:?}"
    );
    assert!(
        logged.contains(&"Revoke a signing key".to_string()),
        "{logged:?}"
    );
}

#[tokio::test]
async fn each_operation_needs_its_scope() {
    let s = server().await;
    let read = token(&s, "admin", "read:signing_keys").await;
    let a = call(&s, "POST", "/keys/signing/rotate", Some(&read), None).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.error().1.contains("create:signing_keys"));
    let listed = call(&s, "GET", "/keys/signing", Some(&read), None).await;
    let kid = listed.body[0]["kid"].as_str().unwrap().to_string();
    let a = call(
        &s,
        "PUT",
        &format!("/keys/signing/{kid}/revoke"),
        Some(&read),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.error().1.contains("update:signing_keys"));
    let users = token(&s, "admin", "read:users").await;
    let a = call(&s, "GET", "/keys/signing", Some(&users), None).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Still one key: nothing was rotated.
    let listed = call(&s, "GET", "/keys/signing", Some(&read), None).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
}
