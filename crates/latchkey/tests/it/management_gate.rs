//! Management API tokens and the gate: `client_credentials` for
//! `{issuer}api/v2/` under a client grant (its scopes, Auth0's lifetime),
//! never for users; and every call's token checked (missing, malformed,
//! another audience, expired, another tenant's, DPoP-bound), its scope,
//! the request limits and their headers, always in Auth0's error shape.

use reqwest::StatusCode;
use serde_json::json;

use crate::dpop_client::Key;
use crate::management::*;
use crate::support::*;

#[tokio::test]
async fn clients_get_tokens_for_the_scopes_of_their_grant() {
    let s = server().await;
    let audience = format!("{}api/v2/", s.issuer);
    // A grant with allow_all_scopes: every scope of the API, for a day.
    let (status, body) = client_token(&s, &s.base, "admin", &audience, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 86_400);
    assert_eq!(body["token_type"], "Bearer");
    let scopes: Vec<&str> = body["scope"].as_str().unwrap().split(' ').collect();
    for s in [
        "read:users",
        "create:users",
        "delete:users",
        "read:logs",
        "update:tenant_settings",
    ] {
        assert!(scopes.contains(&s), "{s} in {scopes:?}");
    }
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], audience);
    assert_eq!(c["sub"], "admin@clients");
    assert_eq!(c["gty"], "client-credentials");
    assert_eq!(c["iss"], s.issuer);

    // Asked for fewer: those; asked for more than the grant: its share.
    let (_, body) = client_token(&s, &s.base, "admin", &audience, Some("read:users")).await;
    assert_eq!(body["scope"], "read:users");
    let (status, body) = client_token(
        &s,
        &s.base,
        "reader",
        &audience,
        Some("read:users delete:users"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "read:users");

    // Its https:// spelling on a loopback host is the same API.
    let https = audience.replace("http://", "https://");
    let (status, body) = client_token(&s, &s.base, "reader", &https, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // No grant: Auth0's refusal.
    let (status, body) = client_token(&s, &s.base, "stranger", &audience, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "access_denied");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("client-grant"),
        "{body}"
    );
}

#[tokio::test]
async fn users_never_get_management_api_tokens() {
    let s = server().await;
    let audience = format!("{}api/v2/", s.issuer);
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("audience", &audience),
            ("scope", "openid read:users"),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "access_denied");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("allows no user access"),
        "{body}"
    );
}

#[tokio::test]
async fn the_tenant_file_refuses_user_grants_to_the_management_api() {
    let file = |port: u16| {
        format!(
            "tenant: {{ name: bad, domains: [\"localhost:{port}\"] }}\nclients: [{{ client_id: spa, app_type: spa }}]\nclient_grants:\n  - {{ client_id: spa, audience: \"http://localhost:{port}/api/v2/\", subject_type: user, scope: [read:users] }}\n"
        )
    };
    let s = server().await;
    let err = latchkey::tenant::apply::apply_text(&s.state, &file(s.port))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the Management API does not allow user access"),
        "{err}"
    );
}

#[tokio::test]
async fn every_call_needs_a_management_api_token_of_this_host() {
    let s = server().await;
    let check = |a: &Answer, says: &str| {
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
        let (code, message) = a.error();
        assert_eq!(code, "invalid_token");
        assert!(message.contains(says), "{message}");
        assert!(a.header("www-authenticate").unwrap().starts_with("Bearer"));
    };
    let a = call(&s, "GET", "/users/auth0%7Calice", None, None).await;
    check(&a, "Missing authentication");
    let a = call(&s, "GET", "/users/auth0%7Calice", Some("not-a-jwt"), None).await;
    check(&a, "Invalid token");

    // A My Account token: another audience.
    let me = s.me_token("read:me:factors").await;
    let a = call(&s, "GET", "/users/auth0%7Calice", Some(&me), None).await;
    check(&a, "Bad audience");

    // The other tenant's token, here; this tenant's, there.
    let other_audience = format!("{}/api/v2/", other_base(&s));
    let (status, body) = client_token(&s, &other_base(&s), "admin", &other_audience, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let theirs = body["access_token"].as_str().unwrap().to_string();
    let a = call(&s, "GET", "/users/auth0%7Calice", Some(&theirs), None).await;
    check(&a, "");
    let ours = token(&s, "admin", USERS_SCOPES).await;
    let a = call_at(
        &s,
        &other_base(&s),
        "GET",
        "/users/auth0%7Ccarol",
        Some(&ours),
        None,
    )
    .await;
    check(&a, "");
    // Each on its own host works, and sees its own tenant's users only.
    let a = call_at(
        &s,
        &other_base(&s),
        "GET",
        "/users/auth0%7Ccarol",
        Some(&theirs),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = call_at(
        &s,
        &other_base(&s),
        "GET",
        "/users/auth0%7Calice",
        Some(&theirs),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    assert_eq!(a.error().0, "inexistent_user");
    let a = call(&s, "GET", "/users/auth0%7Ccarol", Some(&ours), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);

    // Expired after its day.
    s.clock.advance(86_400 + 60);
    let a = call(&s, "GET", "/users/auth0%7Calice", Some(&ours), None).await;
    check(&a, "Expired token");
}

#[tokio::test]
async fn each_operation_checks_its_scope() {
    let s = server().await;
    let reader = token(&s, "reader", "read:users").await;
    let a = call(&s, "GET", "/users/auth0%7Calice", Some(&reader), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let body = json!({"connection": "Username-Password-Authentication",
                      "email": "new@example.com", "password": "a-long-password-1"});
    for (method, path, body, scopes) in [
        ("POST", "/users", Some(body), "create:users"),
        ("DELETE", "/users/auth0%7Calice", None, "delete:users"),
        (
            "PATCH",
            "/users/auth0%7Calice",
            Some(json!({"blocked": true})),
            "update:users,update:users_app_metadata",
        ),
    ] {
        let a = call(&s, method, path, Some(&reader), body).await;
        assert_eq!(
            a.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            a.body
        );
        let (code, message) = a.error();
        assert_eq!(code, "insufficient_scope");
        assert_eq!(
            message,
            format!("Insufficient scope, expected any of: {scopes}")
        );
    }
    let nothing = token(&s, "reader", "update:users_app_metadata").await;
    let a = call(&s, "GET", "/users/auth0%7Calice", Some(&nothing), None).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        a.error().1,
        "Insufficient scope, expected any of: read:users,read:user_idp_tokens"
    );
    // read:user_idp_tokens reads one user, never lists or searches them.
    let idp = token(&s, "admin", "read:user_idp_tokens").await;
    let a = call(&s, "GET", "/users/auth0%7Calice", Some(&idp), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    for path in [
        "/users",
        "/users-by-email?email=alice@example.com",
        "/user-blocks/auth0%7Calice",
    ] {
        let a = call(&s, "GET", path, Some(&idp), None).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.body);
        assert_eq!(
            a.error().1,
            "Insufficient scope, expected any of: read:users"
        );
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_the_dialect() {
    let s = server().await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    let a = call(&s, "GET", "/nothing-here", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error().0, "not_found");
    let a = call(&s, "PUT", "/users/auth0%7Calice", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    a.error();
    assert!(a.header("allow").unwrap().contains("PATCH"));
    // Every answer carries the limits.
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(a.header(h).is_some(), "{h}");
    }
}

fn limited(port: u16) -> String {
    format!(
        "{}management_api: {{ rate_limits: {{ tenant_per_second: 3, anonymous_per_ip_per_second: 2 }} }}\n",
        tenant(port)
    )
}

#[tokio::test]
async fn limits_answer_429_with_auth0s_headers() {
    let s = TestServer::with_tenants(&[limited]).await;
    let t = token(&s, "admin", USERS_SCOPES).await;
    let mut last = None;
    for i in 0..4 {
        let a = call(&s, "GET", "/users/auth0%7Calice", Some(&t), None).await;
        if i < 3 {
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            assert_eq!(a.header("x-ratelimit-limit"), Some("3"));
            assert_eq!(
                a.header("x-ratelimit-remaining"),
                Some((2 - i).to_string().as_str())
            );
        }
        last = Some(a);
    }
    let a = last.unwrap();
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let (code, message) = a.error();
    assert_eq!(code, "too_many_requests");
    assert_eq!(message, "Global limit has been reached");
    assert_eq!(a.header("x-ratelimit-remaining"), Some("0"));
    let reset: i64 = a.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert_eq!(reset, s.clock_now() + 1);
    assert_eq!(a.header("retry-after"), Some("1"));
    // The next second, again.
    s.clock.advance(1);
    let a = call(&s, "GET", "/users/auth0%7Calice", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    // Bad tokens spend their IP's budget, not the tenant's.
    s.clock.advance(1);
    for _ in 0..2 {
        let a = call(&s, "GET", "/users/auth0%7Calice", Some("bad"), None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let a = call(&s, "GET", "/users/auth0%7Calice", Some("bad"), None).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    a.error();
}

#[tokio::test]
async fn dpop_bound_tokens_need_their_proof() {
    let s = server().await;
    let key = Key::es256();
    let token_url = s.url("/oauth/token");
    let proof = key.proof("POST", &token_url, s.clock_now(), None, None);
    let audience = format!("{}api/v2/", s.issuer);
    let res = s
        .http()
        .post(&token_url)
        .header("DPoP", proof)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "admin"),
            ("client_secret", ADMIN_SECRET),
            ("audience", &audience),
            ("scope", "read:users"),
        ])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let at = body["access_token"].as_str().unwrap();
    let url = s.url("/api/v2/users/auth0%7Calice");

    let as_bearer = call(&s, "GET", "/users/auth0%7Calice", Some(at), None).await;
    assert_eq!(as_bearer.status, StatusCode::UNAUTHORIZED);
    as_bearer.error();

    let good = key.proof("GET", &url, s.clock_now(), Some(at), None);
    let res = s
        .http()
        .get(&url)
        .header("Authorization", format!("DPoP {at}"))
        .header("DPoP", &good)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The same proof again is a replay.
    let res = s
        .http()
        .get(&url)
        .header("Authorization", format!("DPoP {at}"))
        .header("DPoP", &good)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let www = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(www.contains("invalid_dpop_proof"), "{www}");
}

/// One tenant on two hosts: `localhost` and `127.0.0.1`.
fn two_hosts(port: u16) -> String {
    tenant(port).replace(
        &format!("domains: [\"localhost:{port}\"]"),
        &format!("domains: [\"localhost:{port}\", \"127.0.0.1:{port}\"]"),
    )
}

#[tokio::test]
async fn one_api_on_every_host_each_token_for_its_own() {
    let s = TestServer::with_tenants(&[two_hosts]).await;
    let custom = other_base(&s);
    let here = format!("{}api/v2/", s.issuer);
    let there = format!("{custom}/api/v2/");
    // The grant names the API on localhost; it covers the other host too.
    let (status, body) = client_token(&s, &custom, "admin", &there, Some("read:users")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let theirs = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&theirs)["aud"], there);
    let a = call_at(
        &s,
        &custom,
        "GET",
        "/users/auth0%7Calice",
        Some(&theirs),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // …but a token is asked for, and good, on its own host only.
    let (status, body) = client_token(&s, &s.base, "admin", &there, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("must be requested on its own host"),
        "{body}"
    );
    let a = call(&s, "GET", "/users/auth0%7Calice", Some(&theirs), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    a.error();
    let (status, _) = client_token(&s, &s.base, "admin", &here, None).await;
    assert_eq!(status, StatusCode::OK);
}
