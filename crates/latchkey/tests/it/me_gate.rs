//! `/me/v1`: the gate (tokens, scopes), the error dialect, limits and CORS.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const INSUFFICIENT_SCOPE: &str = "https://auth0.com/api-errors#A0E-403-0002";

#[tokio::test]
async fn no_token_bad_token_and_wrong_audience_are_401() {
    let s = TestServer::start().await;
    let r = s.me("GET", "/factors", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_type(), "https://auth0.com/api-errors#A0E-401-0002");
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    assert_eq!(r.body["detail"], "No auth token provided.");

    let r = s.me("GET", "/factors", Some("not-a-jwt"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    r.error_type();

    // A token for another audience (the userinfo one) of the same host.
    let body = s.password_login("openid read:me:factors", None).await;
    let r = s
        .me("GET", "/factors", body["access_token"].as_str(), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A token for an API of the tenant.
    let (_, cc) = s
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "backend"),
            ("client_secret", BACKEND_SECRET),
            ("audience", API),
        ])
        .await;
    let r = s
        .me("GET", "/factors", cc["access_token"].as_str(), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_of_another_tenant_or_host_expired_or_revoked_are_refused() {
    let s = TestServer::start().await;
    // The other tenant issues a My Account token for its own host...
    let other = format!("http://127.0.0.1:{}", s.port);
    let res = s
        .http()
        .post(format!("{other}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("audience", &format!("{other}/me/")),
            ("scope", "read:me:factors"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let foreign = body["access_token"].as_str().unwrap().to_string();
    // ...which is refused here, though the user ID is the same.
    assert_eq!(
        s.me("GET", "/factors", Some(&foreign), None).await.status,
        StatusCode::UNAUTHORIZED
    );

    let token = s.me_token(ME_SCOPES).await;
    assert_eq!(
        s.me("GET", "/factors", Some(&token), None).await.status,
        StatusCode::OK
    );
    s.clock.advance(600 + 31);
    let r = s.me("GET", "/factors", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body["detail"].as_str().unwrap().contains("expired"));

    let first = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("audience", &s.my_account_audience()),
            ("scope", "offline_access read:me:factors"),
        ])
        .await
        .1;
    let at = first["access_token"].as_str().unwrap();
    s.http()
        .post(s.url("/oauth/revoke"))
        .form(&[
            ("client_id", "spa"),
            ("token", first["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        s.me("GET", "/factors", Some(at), None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// Every operation, its scope, and a request that would otherwise pass the gate.
fn operations() -> Vec<(&'static str, &'static str, &'static str, Option<Value>)> {
    vec![
        ("GET", "/factors", "read:me:factors", None),
        (
            "GET",
            "/authentication-methods",
            "read:me:authentication_methods",
            None,
        ),
        (
            "POST",
            "/authentication-methods",
            "create:me:authentication_methods",
            Some(json!({"type": "totp"})),
        ),
        (
            "GET",
            "/authentication-methods/totp%7Cdev_0000000000000000",
            "read:me:authentication_methods",
            None,
        ),
        (
            "PATCH",
            "/authentication-methods/totp%7Cdev_0000000000000000",
            "update:me:authentication_methods",
            Some(json!({"name": "x"})),
        ),
        (
            "DELETE",
            "/authentication-methods/totp%7Cdev_0000000000000000",
            "delete:me:authentication_methods",
            None,
        ),
        (
            "POST",
            "/authentication-methods/totp%7Cdev_0000000000000000/verify",
            "create:me:authentication_methods",
            Some(json!({"auth_session": "x", "otp_code": "123456"})),
        ),
        (
            "POST",
            "/connected-accounts/connect",
            "create:me:connected_accounts",
            Some(json!({"connection": "google-oauth2", "redirect_uri": "https://app.example/cb"})),
        ),
        (
            "POST",
            "/connected-accounts/complete",
            "create:me:connected_accounts",
            Some(
                json!({"auth_session": "x", "connect_code": "y", "redirect_uri": "https://app.example/cb"}),
            ),
        ),
        (
            "GET",
            "/connected-accounts/accounts",
            "read:me:connected_accounts",
            None,
        ),
        (
            "DELETE",
            "/connected-accounts/accounts/cac_abc",
            "delete:me:connected_accounts",
            None,
        ),
        (
            "GET",
            "/connected-accounts/connections",
            "read:me:connected_accounts",
            None,
        ),
    ]
}

const ALL_SCOPES: [&str; 8] = [
    "read:me:factors",
    "read:me:authentication_methods",
    "create:me:authentication_methods",
    "update:me:authentication_methods",
    "delete:me:authentication_methods",
    "create:me:connected_accounts",
    "read:me:connected_accounts",
    "delete:me:connected_accounts",
];

#[tokio::test]
async fn scope_matrix() {
    let s = TestServer::start().await;
    // allow_all lets one client hold any subset of the API's scopes.
    let text = acme(s.port)
        .replace(
            "user_policy: require_client_grant",
            "user_policy: allow_all",
        )
        .replace("tenant_per_second: 25", "tenant_per_second: 1000");
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    for (method, path, scope, body) in operations() {
        let without: Vec<&str> = ALL_SCOPES.iter().copied().filter(|s| *s != scope).collect();
        let token = s.me_token(&without.join(" ")).await;
        let r = s.me(method, path, Some(&token), body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path} without {scope}: {}",
            r.body
        );
        assert_eq!(r.error_type(), INSUFFICIENT_SCOPE);

        let token = s.me_token(scope).await;
        let r = s.me(method, path, Some(&token), body.clone()).await;
        assert_ne!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path} with {scope}: {}",
            r.body
        );
        assert_ne!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.status.as_u16() < 500);
    }
}

#[tokio::test]
async fn malformed_requests_get_the_right_status_in_the_dialect() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    let send =
        |method: &'static str, path: &'static str, ct: Option<&'static str>, body: Vec<u8>| {
            let (s, token) = (&s, token.clone());
            async move {
                let mut req = s
                    .http()
                    .request(
                        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                        s.url(&format!("/me/v1{path}")),
                    )
                    .bearer_auth(token)
                    .body(body);
                if let Some(ct) = ct {
                    req = req.header("content-type", ct);
                }
                let res = req.send().await.unwrap();
                let status = res.status();
                let body: Value = res.json().await.unwrap();
                MeResponse {
                    status,
                    headers: Default::default(),
                    body,
                }
            }
        };
    let r = send(
        "POST",
        "/authentication-methods",
        Some("text/plain"),
        b"type=totp".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    r.error_type();
    let r = send(
        "POST",
        "/authentication-methods",
        Some("application/x-www-form-urlencoded"),
        b"type=totp".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = send(
        "POST",
        "/authentication-methods",
        Some("application/json"),
        b"{\"type\":".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_type(), "https://auth0.com/api-errors#A0E-400-0003");
    let r = send(
        "POST",
        "/authentication-methods",
        Some("application/json"),
        vec![b' '; 70 * 1024],
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    r.error_type();

    for (body, pointer) in [
        (json!({}), "/type"),
        (json!({"type": 5}), "/type"),
        (json!({"type": "fax"}), "/type"),
        (json!({"type": "totp", "extra": true}), "/extra"),
        (
            json!({"type": "password", "connection": "bad name!"}),
            "/connection",
        ),
        (json!({"type": "email"}), "/email"),
        (
            json!({"type": "phone", "phone_number": "+1555", "preferred_authentication_method": "pigeon"}),
            "/preferred_authentication_method",
        ),
        (json!([1, 2]), ""),
    ] {
        let r = s
            .me(
                "POST",
                "/authentication-methods",
                Some(&token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(
            r.error_type(),
            "https://auth0.com/api-errors#A0E-400-0003",
            "{body}"
        );
        let v = &r.body["validation_errors"][0];
        assert_eq!(v["pointer"], pointer, "{body}: {}", r.body);
        assert!(v["detail"].is_string());
    }
    let r = s
        .me(
            "PATCH",
            "/authentication-methods/totp%7Cdev_x",
            Some(&token),
            Some(json!({"colour": "blue"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["validation_errors"][0]["pointer"], "/colour");
    let r = s
        .me(
            "GET",
            "/authentication-methods?type=fax",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["validation_errors"][0]["field"], "type");

    let r = s.me("GET", "/nothing-here", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.error_type();
    let r = s.me("PUT", "/factors", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    r.error_type();
    let r = s
        .me(
            "GET",
            "/connected-accounts/accounts?take=50",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "no connected-accounts scope"
    );
}

#[tokio::test]
async fn rate_limits_per_tenant_and_per_user() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    for i in 0..25u32 {
        let r = s.me("GET", "/factors", Some(&token), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("x-ratelimit-limit"), Some("25"));
        assert_eq!(
            r.header("x-ratelimit-remaining").unwrap(),
            (24 - i).to_string()
        );
        assert_eq!(
            r.header("x-ratelimit-reset").unwrap(),
            (START + 1).to_string()
        );
    }
    let r = s.me("GET", "/factors", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    r.error_type();
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("x-auth0-error-kind"), Some("global-rate-limit"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    // A request without a token spends its IP's budget, not the tenant's.
    assert_eq!(
        s.me("GET", "/factors", None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    s.clock.advance(1);
    assert_eq!(
        s.me("GET", "/factors", Some(&token), None).await.status,
        StatusCode::OK
    );

    // Per user: 3 a minute.
    let text = acme(s.port).replace("user_per_minute: 0", "user_per_minute: 3");
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    s.clock.advance(60 - (s.clock_now() % 60));
    for _ in 0..3 {
        let r = s.me("GET", "/factors", Some(&token), None).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = s.me("GET", "/factors", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.header("x-auth0-error-kind"),
        None,
        "not the tenant's limit"
    );
    assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
    // Bob is another user.
    let bob = s
        .me_token_for(
            "bob@example.com",
            "B0b-has-a-long-password",
            Some("Partners"),
            "read:me:factors",
        )
        .await;
    assert_eq!(
        s.me("GET", "/factors", Some(&bob), None).await.status,
        StatusCode::OK
    );
    s.clock.advance(60);
    assert_eq!(
        s.me("GET", "/factors", Some(&token), None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn cors_preflight_without_a_token() {
    let s = TestServer::start().await;
    let res = s
        .http()
        .request(
            reqwest::Method::OPTIONS,
            s.url("/me/v1/authentication-methods"),
        )
        .header("origin", APP)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, dpop, auth0-client",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.headers()["access-control-allow-origin"], APP);
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for h in ["authorization", "content-type", "dpop", "auth0-client"] {
        assert!(allowed.contains(h), "{h}");
    }
    let token = s.me_token(ME_SCOPES).await;
    let res = s
        .http()
        .post(s.url("/me/v1/authentication-methods"))
        .header("origin", APP)
        .bearer_auth(&token)
        .json(&json!({"type": "totp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.headers()["access-control-allow-origin"], APP);
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for h in [
        "location",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(exposed.contains(h), "{h}");
    }
    let res = s
        .http()
        .request(reqwest::Method::OPTIONS, s.url("/me/v1/factors"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

/// Acme, its client grant to the My Account API naming the `https://` form
/// of a loopback host's audience (as an app written for Auth0 builds it).
fn acme_https_audience(port: u16) -> String {
    acme(port).replace(
        &format!("audience: \"http://localhost:{port}/me/\""),
        &format!("audience: \"https://localhost:{port}/me/\""),
    )
}

/// On a loopback host the My Account API answers to both forms of its
/// audience, in the tenant file's grant and in token requests alike; an
/// API of another host does not.
#[tokio::test]
async fn a_loopback_hosts_https_audience_is_the_my_account_api() {
    let s = TestServer::with_tenants(&[acme_https_audience]).await;
    let port = s.port;
    for aud in [
        format!("https://localhost:{port}/me/"),
        format!("http://localhost:{port}/me/"),
    ] {
        let (status, body) = s
            .token(&[
                ("grant_type", "password"),
                ("client_id", "spa"),
                ("username", ALICE),
                ("password", ALICE_PASSWORD),
                ("audience", aud.as_str()),
                ("scope", "read:me:factors"),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{aud}: {body}");
        let r = s
            .me("GET", "/factors", body["access_token"].as_str(), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{aud}: {:?}", r.body);
    }
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("audience", "https://elsewhere.test/me/"),
            ("scope", "read:me:factors"),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}
