//! `/oauth/token`: each grant and each error.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn password_grant_issues_tokens_with_the_intersected_scope() {
    let s = TestServer::start().await;
    let aud = s.my_account_audience();
    let body = s
        .password_login(
            "openid profile email offline_access read:me:factors read:me:connected_accounts",
            Some(&aud),
        )
        .await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    // The client grant lacks read:me:connected_accounts: it is dropped.
    assert_eq!(
        body["scope"],
        "openid profile email offline_access read:me:factors"
    );
    assert!(body["refresh_token"].is_string());
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["iss"], s.issuer);
    assert_eq!(at["sub"], "auth0|alice");
    assert_eq!(at["aud"], json!([aud, format!("{}userinfo", s.issuer)]));
    assert_eq!(at["azp"], "spa");
    assert_eq!(
        at["scope"],
        "openid profile email offline_access read:me:factors"
    );
    assert_eq!(at["iat"], START);
    assert_eq!(at["exp"], START + 600);
    assert!(at["jti"].is_string());
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], "spa");
    assert_eq!(id["email"], ALICE);
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["name"], "Alice Example");
    assert_eq!(id["auth_time"], START);
}

#[tokio::test]
async fn no_refresh_token_without_offline_access_and_no_id_token_without_openid() {
    let s = TestServer::start().await;
    let body = s
        .password_login("read:me:factors", Some(&s.my_account_audience()))
        .await;
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("id_token").is_none());
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], s.my_account_audience());
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let s = TestServer::start().await;
    for (user, pass) in [
        (ALICE, "not-her-password"),
        ("nobody@example.com", ALICE_PASSWORD),
    ] {
        let (status, body) = s
            .token(&[
                ("grant_type", "password"),
                ("client_id", "spa"),
                ("username", user),
                ("password", pass),
            ])
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], "Wrong email or password.");
    }
}

/// A blocked user's right password answers 401 `unauthorized` "user is
/// blocked" as Auth0's does; a wrong one still answers as for anyone, so
/// blocking tells nothing to someone without the password.
#[tokio::test]
async fn a_blocked_user_is_told_only_with_the_right_password() {
    let s = TestServer::start().await;
    let blocked = acme(s.port).replace(
        "user_id: \"auth0|alice\", name: Alice Example }",
        "user_id: \"auth0|alice\", name: Alice Example, blocked: true }",
    );
    assert_ne!(blocked, acme(s.port));
    latchkey::tenant::apply::apply_text(&s.state, &blocked)
        .await
        .unwrap();
    let form = |password| {
        [
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", password),
        ]
    };
    let (status, body) = s.token(&form(ALICE_PASSWORD)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        body,
        json!({"error": "unauthorized", "error_description": "user is blocked"})
    );
    let (status, body) = s.token(&form("not-her-password")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Wrong email or password."})
    );
}

#[tokio::test]
async fn password_realm_selects_the_connection() {
    let s = TestServer::start().await;
    let realm = "http://auth0.com/oauth/grant-type/password-realm";
    let ok = s
        .token(&[
            ("grant_type", realm),
            ("client_id", "spa"),
            ("username", "bob@example.com"),
            ("password", "B0b-has-a-long-password"),
            ("realm", "Partners"),
            ("scope", "openid"),
        ])
        .await;
    assert_eq!(ok.0, StatusCode::OK, "{}", ok.1);
    assert_eq!(
        claims(ok.1["id_token"].as_str().unwrap())["sub"],
        "auth0|bob"
    );
    // Bob is not in the default connection.
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", "bob@example.com"),
            ("password", "B0b-has-a-long-password"),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = s
        .token(&[
            ("grant_type", realm),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("realm", "Nope"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    let (status, body) = s
        .token(&[
            ("grant_type", realm),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request", "realm is required");
}

#[tokio::test]
async fn grant_types_the_client_lacks_are_unauthorized_client() {
    let s = TestServer::start().await;
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "nogrants"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "unauthorized_client");
    let (status, body) = s
        .token(&[("grant_type", "client_credentials"), ("client_id", "spa")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "unauthorized_client");
}

#[tokio::test]
async fn unsupported_grant_type() {
    let s = TestServer::start().await;
    let (status, body) = s
        .token(&[("grant_type", "urn:example:magic"), ("client_id", "spa")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn client_credentials_with_post_and_basic_authentication() {
    let s = TestServer::start().await;
    let (status, body) = s
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "backend"),
            ("client_secret", BACKEND_SECRET),
            ("audience", API),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "read:things");
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], "backend@clients");
    assert_eq!(at["aud"], API);
    assert_eq!(at["gty"], "client-credentials");
    assert_eq!(at["exp"], START + 86_400);

    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("backend:{BACKEND_SECRET}"));
    let res = s
        .http()
        .post(s.url("/oauth/token"))
        .header("authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("audience", API),
            ("scope", "read:things write:things"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "read:things", "never more than the grant");
}

#[tokio::test]
async fn client_credentials_never_reach_the_my_account_api() {
    let s = TestServer::start().await;
    let (status, body) = s
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "backend"),
            ("client_secret", BACKEND_SECRET),
            ("audience", &s.my_account_audience()),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "access_denied");
}

#[tokio::test]
async fn bad_client_credentials_are_invalid_client() {
    let s = TestServer::start().await;
    for form in [
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", "backend"),
            ("client_secret", "wrong-secret"),
            ("audience", API),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", "backend"),
            ("audience", API),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", "ghost"),
            ("client_secret", "x"),
            ("audience", API),
        ],
        vec![
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("client_secret", "public-clients-have-none"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ],
    ] {
        let res = s
            .http()
            .post(s.url("/oauth/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{form:?}");
        assert!(res.headers().contains_key("www-authenticate"));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
}

#[tokio::test]
async fn json_bodies_work_and_malformed_bodies_are_invalid_request() {
    let s = TestServer::start().await;
    let res = s
        .http()
        .post(s.url("/oauth/token"))
        .json(
            &json!({"grant_type": "password", "client_id": "spa", "username": ALICE,
                      "password": ALICE_PASSWORD, "scope": "openid"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{not json".to_vec()),
        ("application/json", b"[1,2]".to_vec()),
        (
            "application/json",
            br#"{"grant_type": 5, "client_id": "spa"}"#.to_vec(),
        ),
        ("text/plain", b"grant_type=password".to_vec()),
        (
            "application/x-www-form-urlencoded",
            b"grant_type=password&grant_type=client_credentials&client_id=spa".to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"client_id=spa".to_vec(),
        ),
        ("application/x-www-form-urlencoded", vec![b'a'; 70 * 1024]),
    ];
    for (ct, body) in cases {
        let res = s
            .http()
            .post(s.url("/oauth/token"))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        assert!(status.is_client_error(), "{ct}: {status}");
        let body: Value = res.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
        assert!(body["error_description"].is_string());
    }
}

/// A JSON body naming a parameter twice is refused as a repeated form field
/// is: never "the last one wins" (`grant_type` password, then
/// client_credentials).
#[tokio::test]
async fn json_bodies_with_a_repeated_key_are_invalid_request() {
    let s = TestServer::start().await;
    let bodies = [
        format!(
            r#"{{"grant_type": "password", "client_id": "backend", "client_secret": "{BACKEND_SECRET}",
                "username": "{ALICE}", "password": "{ALICE_PASSWORD}", "audience": "{API}",
                "grant_type": "client_credentials"}}"#
        ),
        format!(
            r#"{{"grant_type": "client_credentials", "client_id": "backend",
                "client_secret": "wrong", "client_secret": "{BACKEND_SECRET}", "audience": "{API}"}}"#
        ),
    ];
    for body in bodies {
        let res = s
            .http()
            .post(s.url("/oauth/token"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["error"], "invalid_request", "{answer}");
        assert!(
            answer["error_description"]
                .as_str()
                .unwrap()
                .contains("repeated"),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn user_policy_allow_all_and_deny_all() {
    let s = TestServer::start().await;
    let aud = s.my_account_audience();
    let reapply = |policy: &'static str| {
        let text = acme(s.port).replace(
            "user_policy: require_client_grant",
            &format!("user_policy: {policy}"),
        );
        let state = s.state.clone();
        async move {
            latchkey::tenant::apply::apply_text(&state, &text)
                .await
                .unwrap()
        }
    };
    // allow_all: any My Account scope the user asks for, even without a grant.
    reapply("allow_all").await;
    let body = s
        .password_login(
            "read:me:connected_accounts read:me:factors bogus:scope",
            Some(&aud),
        )
        .await;
    assert_eq!(body["scope"], "read:me:connected_accounts read:me:factors");
    // deny_all: nobody gets a token for it.
    reapply("deny_all").await;
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("audience", &aud),
            ("scope", "read:me:factors"),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "access_denied");
    // require_client_grant without a grant for this client: refused.
    reapply("require_client_grant").await;
    let text = acme(s.port).replace(
        "client_grants:\n  - { client_id: spa,",
        "client_grants:\n  - { client_id: web,",
    );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("audience", &aud),
            ("scope", "read:me:factors"),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "access_denied");
}

#[tokio::test]
async fn rbac_narrows_scopes_to_the_users_permissions() {
    let s = TestServer::start().await;
    let text = acme(s.port)
        .replace(
            "resource_servers: [{ identifier: \"https://api.acme.test/\", scopes: [read:things, write:things] }]",
            "resource_servers: [{ identifier: \"https://api.acme.test/\", scopes: [read:things, write:things], enforce_policies: true }]\nroles: [{ name: reader, permissions: [{ resource_server_identifier: \"https://api.acme.test/\", permission_name: read:things }] }]",
        )
        .replace("email_verified: true, user_id: \"auth0|alice\", name: Alice Example", "email_verified: true, user_id: \"auth0|alice\", name: Alice Example, roles: [reader]");
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let body = s
        .password_login("read:things write:things", Some(API))
        .await;
    assert_eq!(body["scope"], "read:things");
    let bob = s
        .token(&[
            (
                "grant_type",
                "http://auth0.com/oauth/grant-type/password-realm",
            ),
            ("client_id", "spa"),
            ("username", "bob@example.com"),
            ("password", "B0b-has-a-long-password"),
            ("realm", "Partners"),
            ("audience", API),
            ("scope", "read:things write:things"),
        ])
        .await;
    assert_eq!(bob.0, StatusCode::OK);
    assert_eq!(
        bob.1.get("scope"),
        None,
        "no role, no permission: {}",
        bob.1
    );
}

#[tokio::test]
async fn unknown_audience_is_access_denied() {
    let s = TestServer::start().await;
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("audience", "https://nowhere.example/"),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "access_denied");
}

#[tokio::test]
async fn brute_force_protection_blocks_after_ten_failures() {
    let s = TestServer::start().await;
    let s = &s;
    let attempt = |password: &'static str| async move {
        s.token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", password),
        ])
        .await
    };
    for _ in 0..10 {
        assert_eq!(attempt("wrong-password").await.1["error"], "invalid_grant");
    }
    let (status, body) = attempt(ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "too_many_attempts");
    // The block lasts block_minutes (60 by default), then lifts.
    s.clock.advance(59 * 60);
    assert_eq!(
        attempt(ALICE_PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    s.clock.advance(61);
    assert_eq!(attempt(ALICE_PASSWORD).await.0, StatusCode::OK);
    // A success resets the count.
    for _ in 0..9 {
        attempt("wrong-password").await;
    }
    assert_eq!(attempt(ALICE_PASSWORD).await.0, StatusCode::OK);
    assert_eq!(attempt("wrong-password").await.0, StatusCode::FORBIDDEN);
    assert_eq!(attempt(ALICE_PASSWORD).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_new_password_lifts_the_block() {
    let s = TestServer::start().await;
    for _ in 0..10 {
        s.token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", "nope-nope"),
        ])
        .await;
    }
    let text = acme(s.port).replace(ALICE_PASSWORD, "An0ther-fine-passphrase");
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let (status, _) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", "An0ther-fine-passphrase"),
        ])
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn secrets_are_not_stored_in_clear() {
    let s = TestServer::start().await;
    let body = s.password_login("openid offline_access", None).await;
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    let all = s.database_dump().await;
    let text = String::from_utf8_lossy(&all);
    for secret in [
        refresh.as_str(),
        ALICE_PASSWORD,
        BACKEND_SECRET,
        "web-secret-value",
    ] {
        assert!(!text.contains(secret), "{secret} found in the database");
    }
}

/// The tenant's log events, oldest first, with their top-level type.
async fn log_events(s: &TestServer) -> Vec<latchkey::store::AuditEvent> {
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    s.state.store.audit_events(&tenant.id, 100).await.unwrap()
}

/// Logins, exchanges and logout in the tenant log with Auth0's event type
/// codes: `s`, `fp`, `fu`, `f`, `limit_wc`, `seacft`/`feacft`,
/// `sertft`/`fertft`, `slo`, each with its client, IP, user agent and (for
/// passwords) connection and user name.
#[tokio::test]
async fn logins_exchanges_and_logout_are_logged_with_auth0_codes() {
    let s = TestServer::start().await;
    let wrong = |user: &'static str| {
        [
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", user),
            ("password", "not-her-password"),
        ]
    };
    assert_eq!(s.token(&wrong(ALICE)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        s.token(&wrong("nobody@example.com")).await.0,
        StatusCode::FORBIDDEN
    );
    let tokens = s.password_login("openid offline_access", None).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(s.refresh(rt).await.0, StatusCode::OK);
    assert_eq!(
        s.refresh("not-a-refresh-token").await.0,
        StatusCode::FORBIDDEN
    );
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let code = code_for(&s, &browser, &req).await;
    assert_eq!(exchange(&s, &req, &code).await.0, StatusCode::OK);
    // The code again: refused, a failed exchange.
    assert_eq!(exchange(&s, &req, &code).await.0, StatusCode::FORBIDDEN);
    browser
        .get(s.url("/v2/logout?client_id=spa"))
        .send()
        .await
        .unwrap();
    // A logout without a session ends nothing and logs nothing.
    s.browser().get(s.url("/v2/logout")).send().await.unwrap();

    let events = log_events(&s).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "fp", "fu", "s", "sertft", "fertft", "s", "seacft", "feacft", "slo"
        ],
        "{events:?}"
    );
    for e in &events {
        assert_eq!(e.client_id.as_deref(), Some("spa"), "{e:?}");
        assert_eq!(e.ip.as_deref(), Some("127.0.0.1"), "{e:?}");
        assert_eq!(e.details["client_name"], "Demo SPA", "{e:?}");
        assert!(e.details["description"].is_string(), "{e:?}");
    }
    let alice = Some("auth0|alice");
    let by = |t: &str| events.iter().find(|e| e.event_type == t).unwrap();
    assert_eq!(by("fp").user_id.as_deref(), alice);
    assert_eq!(by("fp").details["user_name"], ALICE);
    assert_eq!(
        by("fp").details["connection"],
        "Username-Password-Authentication"
    );
    assert_eq!(by("fp").details["description"], "Wrong email or password.");
    assert_eq!(by("fu").user_id, None);
    assert_eq!(by("fu").details["user_name"], "nobody@example.com");
    assert_eq!(by("s").user_id.as_deref(), alice);
    assert_eq!(by("sertft").user_id.as_deref(), alice);
    assert_eq!(by("fertft").user_id, None);
    assert_eq!(by("fertft").details["error"], "InvalidRefreshToken");
    assert_eq!(by("seacft").user_id.as_deref(), alice);
    assert_eq!(by("feacft").details["error"], "InvalidCode");
    assert_eq!(by("slo").user_id.as_deref(), alice);
    // No secret is written: not the password, not a token.
    let all = format!("{events:?}");
    assert!(
        !all.contains("not-her-password") && !all.contains(rt),
        "{all}"
    );
}

/// A blocked user's right password is `f`; ten wrong ones from an IP block
/// the account there, and the next attempt is `limit_wc`.
#[tokio::test]
async fn a_blocked_user_and_a_blocked_account_are_logged() {
    let s = TestServer::start().await;
    let form = |password| {
        [
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", password),
        ]
    };
    for _ in 0..10 {
        assert_eq!(s.token(&form("wrong")).await.0, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        s.token(&form(ALICE_PASSWORD)).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    s.clock.advance(60 * 60);
    let blocked = acme(s.port).replace(
        "user_id: \"auth0|alice\", name: Alice Example }",
        "user_id: \"auth0|alice\", name: Alice Example, blocked: true }",
    );
    latchkey::tenant::apply::apply_text(&s.state, &blocked)
        .await
        .unwrap();
    assert_eq!(
        s.token(&form(ALICE_PASSWORD)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let events = log_events(&s).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types[..10], ["fp"; 10], "{types:?}");
    assert_eq!(types[10..], ["limit_wc", "f"], "{types:?}");
    assert_eq!(events[10].details["description"], "Blocked Account");
    assert_eq!(events[11].details["error"], "user is blocked");
    assert_eq!(events[11].user_id.as_deref(), Some("auth0|alice"));
}
