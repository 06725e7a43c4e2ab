//! Logins through the hosted page in the tenant log, as the API's are:
//! `fp` (a wrong password), `fu` (nobody by that name), `f` (a blocked
//! user), `limit_wc` (brute-force protection) and `s` when the login
//! completes, each with the client, the IP, the user agent and the
//! connection.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

async fn log(s: &TestServer) -> Vec<latchkey::store::AuditEvent> {
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    s.state.store.audit_events(&tenant.id, 100).await.unwrap()
}

fn check_origin(e: &latchkey::store::AuditEvent) {
    assert_eq!(e.client_id.as_deref(), Some("spa"), "{e:?}");
    assert_eq!(e.ip.as_deref(), Some("127.0.0.1"), "{e:?}");
    assert_eq!(e.user_agent.as_deref(), Some("page-test/1.0"), "{e:?}");
    assert_eq!(e.details["client_name"], "Demo SPA", "{e:?}");
    assert_eq!(
        e.details["connection"], "Username-Password-Authentication",
        "{e:?}"
    );
    assert!(e.details["description"].is_string(), "{e:?}");
}

#[tokio::test]
async fn the_pages_password_logins_are_logged() {
    let s = TestServer::start().await;
    #[allow(
        clippy::disallowed_methods,
        reason = "a test browser of the server under test, not an outbound request of latchkey"
    )]
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("localhost", ([127, 0, 0, 1], s.port).into())
        .cookie_store(true)
        .user_agent("page-test/1.0")
        .build()
        .unwrap();
    let req = AuthRequest::new("openid");
    let wrong = login_through_page(&s, &browser, &req, ALICE, "not-her-password").await;
    assert_eq!(wrong.status(), StatusCode::OK);
    let nobody = login_through_page(&s, &browser, &req, "nobody@example.com", "whatever-1").await;
    assert_eq!(nobody.status(), StatusCode::OK);
    // Nothing logged a success yet.
    assert!(!log(&s).await.iter().any(|e| e.event_type == "s"));
    let res = login_through_page(&s, &browser, &req, ALICE, ALICE_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FOUND);

    let events = log(&s).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["fp", "fu", "s"], "{events:?}");
    for e in &events {
        check_origin(e);
    }
    assert_eq!(events[0].user_id.as_deref(), Some("auth0|alice"));
    assert_eq!(events[0].details["user_name"], ALICE);
    assert_eq!(events[0].details["description"], "Wrong email or password.");
    assert_eq!(events[1].user_id, None);
    assert_eq!(events[1].details["user_name"], "nobody@example.com");
    assert_eq!(events[2].user_id.as_deref(), Some("auth0|alice"));
    assert_eq!(events[2].details["description"], "Success Login");
    assert_eq!(events[2].details["user_name"], ALICE);
    // The password never reaches the log.
    let text: Vec<Value> = events.iter().map(|e| e.details.clone()).collect();
    assert!(!format!("{text:?}").contains("not-her-password"));

    // Single sign-on from the session is no new login.
    let res = browser.get(req.url(&s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(log(&s).await.len(), 3);
}

#[tokio::test]
async fn the_page_logs_blocked_accounts_and_blocked_users() {
    let s = TestServer::start().await;
    let blocked = acme(s.port)
        .replace(
            "user_id: \"auth0|bob\" }",
            "user_id: \"auth0|bob\", blocked: true }",
        )
        .replace(
            "connection: Partners, user_id",
            "connection: Username-Password-Authentication, user_id",
        );
    latchkey::tenant::apply::apply_text(&s.state, &blocked)
        .await
        .unwrap();
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    // Bob is blocked: his right password is a failed login, `f`.
    let res = login_through_page(
        &s,
        &browser,
        &req,
        "bob@example.com",
        "B0b-has-a-long-password",
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let events = log(&s).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event_type, "f");
    assert_eq!(events[0].user_id.as_deref(), Some("auth0|bob"));

    // Alice's wrong passwords until brute-force protection blocks her
    // from this IP: `limit_wc`, and then even her right one is refused.
    let mut types = Vec::new();
    for _ in 0..12 {
        login_through_page(&s, &browser, &req, ALICE, "not-her-password").await;
        types = log(&s).await.into_iter().map(|e| e.event_type).collect();
        if types.iter().any(|t| t == "limit_wc") {
            break;
        }
    }
    assert!(types.iter().any(|t| t == "limit_wc"), "{types:?}");
    let res = login_through_page(&s, &browser, &req, ALICE, ALICE_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!log(&s).await.iter().any(|e| e.event_type == "s"));
}
