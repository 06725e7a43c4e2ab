//! Password reset: `POST /dbconnections/change_password` answers Auth0's
//! sentence for known and unknown addresses alike and mails a link to the
//! known one only (read from a real SMTP server); the link's page applies
//! the policy and the history; a reset ends the user's sessions and
//! refresh tokens; replayed, expired, another tenant's or worn-out links
//! show a clear page; requests are limited per address and per IP.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::signup::{NEW_PASSWORD, UPA, event_types, link_in, password_grant, post_json, server};
use crate::support::*;

const SENT: &str = "We've just sent you an email to reset your password.";

async fn ask(s: &TestServer, email: &str) -> (StatusCode, String, String) {
    let res = s
        .http()
        .post(s.url("/dbconnections/change_password"))
        .json(&json!({"client_id": "spa", "connection": UPA, "email": email}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    (status, ct, res.text().await.unwrap())
}

async fn submit(s: &TestServer, ticket: &str, password: &str) -> (StatusCode, String) {
    let res = s
        .http()
        .post(s.url("/u/reset-password"))
        .form(&[("ticket", ticket), ("password", password)])
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

fn ticket_of(link: &str) -> String {
    query_param(link, "ticket").unwrap()
}

#[tokio::test]
async fn known_and_unknown_addresses_get_the_same_answer() {
    let (s, mail) = server("", "").await;
    let unknown = ask(&s, "nobody@example.com").await;
    let known = ask(&s, "Alice@Example.com").await;
    assert_eq!(known, unknown);
    assert_eq!(known.0, StatusCode::OK);
    assert!(known.1.starts_with("text/plain"), "{}", known.1);
    assert_eq!(known.2, SENT);
    // Form-encoded, as other clients send it: the same.
    let res = s
        .http()
        .post(s.url("/dbconnections/change_password"))
        .form(&[
            ("client_id", "spa"),
            ("connection", UPA),
            ("email", "nobody@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), SENT);
    // One mail: Alice's.
    let mails = mail.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec![ALICE.to_string()]);
    let link = link_in(&mails[0]);
    assert!(
        link.starts_with(&format!("{}u/reset-password?ticket=", s.issuer)),
        "{link}"
    );
}

#[tokio::test]
async fn bad_requests_in_auth0s_dialect() {
    let (s, _mail) = server("", "").await;
    for (body, code) in [
        (
            json!({"client_id": "spa", "connection": "Nope", "email": ALICE}),
            "bad.connection",
        ),
        (
            json!({"client_id": "nobody", "connection": UPA, "email": ALICE}),
            "bad.client_id",
        ),
        (json!({"client_id": "spa", "connection": UPA}), "bad.email"),
        (
            json!({"client_id": "spa", "email": ALICE}),
            "bad.connection",
        ),
        (
            json!({"client_id": "spa", "connection": UPA, "email": "not an address"}),
            "bad.email",
        ),
        (
            json!({"client_id": "spa", "connection": UPA, "email": 42}),
            "bad.email",
        ),
    ] {
        let (status, answer) = post_json(&s, "/dbconnections/change_password", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["code"], code, "{body} -> {answer}");
    }
}

#[tokio::test]
async fn a_reset_applies_the_policy_and_ends_sessions_and_refresh_tokens() {
    let (s, mail) = server("", "").await;
    let text = acme(s.port).replace(
        "password_policy: { min_length: 8 }",
        "password_policy: { min_length: 8, history: { active: true, size: 3 } }",
    ) + &format!(
        "email_provider: {{ smtp: {{ host: 127.0.0.1, port: {}, security: none, from: \"Acme <no-reply@acme.test>\", \
         username: latchkey, password_env: SMTP_PASSWORD, timeout_seconds: 2 }} }}\n",
        mail.port
    );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    // What Alice holds: a refresh token and a hosted-login session.
    let (_, tokens) = password_grant(&s, ALICE, ALICE_PASSWORD).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();
    let browser = s.browser();
    code_for(&s, &browser, &AuthRequest::new("openid")).await;

    ask(&s, ALICE).await;
    let link = link_in(&mail.wait_for(1).await[0]);
    let ticket = ticket_of(&link);
    let res = s.http().get(&link).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("action=\"/u/reset-password\""), "{html}");
    assert!(html.contains(ALICE));

    // The policy, then the history, refuse: the page again, nothing changed.
    let (status, html) = submit(&s, &ticket, "short").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("at least 8 characters"), "{html}");
    let (status, html) = submit(&s, &ticket, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("must not be the same"), "{html}");
    let (status, _) = s.refresh(&refresh_token).await;
    assert_eq!(status, StatusCode::OK);

    let (status, html) = submit(&s, &ticket, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Your password has been changed."), "{html}");
    // The refresh token and the session are dead.
    let (status, body) = s.refresh(&refresh_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let again = browser
        .get(AuthRequest::new("openid").param("prompt", "none").url(&s))
        .send()
        .await
        .unwrap();
    let location = again.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("login_required"),
        "{location}"
    );
    // The new password works, the old one does not.
    let (status, _) = password_grant(&s, ALICE, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = password_grant(&s, ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Replayed: a page, nothing changed.
    let (status, html) = submit(&s, &ticket, "Another-Fine-Pass-7").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("already been used"), "{html}");
    let (status, _) = password_grant(&s, ALICE, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let types = event_types(&s).await;
    assert!(types.iter().any(|t| t == "scp"), "{types:?}");
    assert!(types.iter().any(|t| t == "fcp"), "{types:?}");
}

#[tokio::test]
async fn expired_foreign_and_worn_out_links_do_not_work() {
    let (s, mail) = server("", "").await;
    ask(&s, ALICE).await;
    let link = link_in(&mail.wait_for(1).await[0]);
    let ticket = ticket_of(&link);
    // Another tenant's host.
    let res = s
        .http()
        .get(link.replace("localhost", "127.0.0.1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("This link is not valid.")
    );
    // Five refused passwords wear it out.
    for _ in 0..4 {
        let (status, _) = submit(&s, &ticket, "short").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, html) = submit(&s, &ticket, "short").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("tried too many times"), "{html}");
    let (status, html) = submit(&s, &ticket, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("tried too many times"), "{html}");

    // A new link, an hour late.
    ask(&s, ALICE).await;
    let link = link_in(&mail.wait_for(2).await[1]);
    s.clock.advance(3600);
    let res = s.http().get(&link).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("This link has expired."));
    let (status, html) = submit(&s, &ticket_of(&link), NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("expired"), "{html}");
    let (status, _) = password_grant(&s, ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn requests_are_limited_per_address_and_per_ip() {
    let (s, _mail) = server("", "").await;
    for _ in 0..5 {
        assert_eq!(ask(&s, "nobody@example.com").await.0, StatusCode::OK);
    }
    // The sixth for that address, known or not, is refused alike.
    let (status, _, body) = ask(&s, "nobody@example.com").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["statusCode"], 429);
    for _ in 0..5 {
        assert_eq!(ask(&s, ALICE).await.0, StatusCode::OK);
    }
    assert_eq!(ask(&s, ALICE).await.0, StatusCode::TOO_MANY_REQUESTS);
    // Per IP: twenty an hour, whatever the address (twelve counted so far,
    // the two refused ones among them).
    for i in 0..8 {
        assert_eq!(
            ask(&s, &format!("p{i}@example.com")).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        ask(&s, "last@example.com").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    s.clock.advance(3600);
    assert_eq!(ask(&s, "last@example.com").await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_hosted_page_forgot_password() {
    let (s, mail) = server("", "").await;
    let browser = s.browser();
    let page = browser
        .get(AuthRequest::new("openid").url(&s))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    let tx = hidden_input(&html, "tx").unwrap();
    let res = browser
        .get(s.url(&format!("/login/forgot-password?tx={tx}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("action=\"/login/forgot-password\"")
    );
    for email in ["nobody@example.com", ALICE] {
        let res = browser
            .post(s.url("/login/forgot-password"))
            .form(&[("tx", tx.as_str()), ("email", email)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("We&#x27;ve just sent you an email to reset your password.")
        );
    }
    let mails = mail.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec![ALICE.to_string()]);
    // Back to the login form of the same transaction.
    let res = browser
        .post(s.url("/login/back"))
        .form(&[("tx", tx.as_str())])
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("action=\"/login\""));
}
