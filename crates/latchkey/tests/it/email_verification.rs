//! Email verification: the link mailed after a sign-up (read from a real
//! SMTP server) verifies once; replayed, expired or another tenant's, it
//! shows a clear page; a connection that requires verified emails keeps
//! unverified users out as Auth0 tenants do; sending it again is limited
//! and answers the same for unknown addresses.

use reqwest::StatusCode;
use serde_json::Value;

use crate::signup::{NEW_PASSWORD, event_types, link_in, password_grant, server, signup};
use crate::support::*;

async fn get(s: &TestServer, url: &str) -> (StatusCode, String) {
    let res = s.http().get(url).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

#[tokio::test]
async fn the_link_verifies_once() {
    let (s, mail) = server("", "").await;
    signup(&s, "v@example.com", NEW_PASSWORD).await;
    let link = link_in(&mail.wait_for(1).await[0]);
    // Another tenant's host: not its link, nothing changes.
    let elsewhere = link.replace("localhost", "127.0.0.1");
    let (status, html) = get(&s, &elsewhere).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("This link is not valid."), "{html}");

    let (status, html) = get(&s, &link).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Your email address was verified."), "{html}");
    let (_, tokens) = password_grant(&s, "v@example.com", NEW_PASSWORD).await;
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["email_verified"],
        true
    );
    // Replayed.
    let (status, html) = get(&s, &link).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("This link has already been used."), "{html}");
    // A made-up or mangled ticket.
    for bad in [
        "?ticket=",
        "?ticket=abc",
        "",
        &format!("?ticket={}", "x".repeat(5000)),
    ] {
        let (status, html) = get(&s, &s.url(&format!("/u/email-verification{bad}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(html.contains("This link is not valid."), "{html}");
    }
    let types = event_types(&s).await;
    assert!(types.iter().any(|t| t == "sv"), "{types:?}");
    assert!(types.iter().any(|t| t == "fv"), "{types:?}");
}

#[tokio::test]
async fn an_expired_link_shows_a_page_and_changes_nothing() {
    let (s, mail) = server("", "").await;
    signup(&s, "late@example.com", NEW_PASSWORD).await;
    let link = link_in(&mail.wait_for(1).await[0]);
    s.clock.advance(5 * 24 * 3600);
    let (status, html) = get(&s, &link).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("This link has expired."), "{html}");
    let (_, tokens) = password_grant(&s, "late@example.com", NEW_PASSWORD).await;
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["email_verified"],
        false
    );
    // The sweep deletes it; the link reads as unknown then.
    let swept = latchkey::services::sweep::sweep_all(&s.state)
        .await
        .unwrap();
    assert_eq!(swept.account_tickets, 1);
    let (_, html) = get(&s, &link).await;
    assert!(html.contains("This link is not valid."), "{html}");
}

#[tokio::test]
async fn unverified_users_stay_out_where_the_connection_says_so() {
    let (s, mail) = server("    require_email_verification: true\n", "").await;
    signup(&s, "wait@example.com", NEW_PASSWORD).await;
    let first = link_in(&mail.wait_for(1).await[0]);
    let (status, body) = password_grant(&s, "wait@example.com", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "access_denied");
    assert_eq!(
        body["error_description"],
        "Please verify your email before logging in."
    );
    // A wrong password says nothing about verification.
    let (status, body) = password_grant(&s, "wait@example.com", "Wrong-password-1").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");

    // The hosted page: the refusal offers the link again.
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let res = login_through_page(&s, &browser, &req, "wait@example.com", NEW_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Please verify your email before logging in."),
        "{html}"
    );
    let tx = hidden_input(&html, "tx").unwrap();
    let resend = |email: &'static str| {
        let (browser, url, tx) = (
            browser.clone(),
            s.url("/login/verify-email/resend"),
            tx.clone(),
        );
        async move {
            browser
                .post(url)
                .form(&[("tx", tx.as_str()), ("email", email)])
                .send()
                .await
                .unwrap()
        }
    };
    let known = resend("wait@example.com").await;
    assert_eq!(known.status(), StatusCode::OK);
    let known = known.text().await.unwrap();
    let unknown = resend("nobody@example.com").await;
    assert_eq!(unknown.status(), StatusCode::OK);
    assert_eq!(known, unknown.text().await.unwrap());
    let mails = mail.wait_for(2).await;
    assert!(
        mails
            .iter()
            .all(|m| m.to == vec!["wait@example.com".to_string()])
    );
    // Per address: three an hour.
    assert_eq!(resend("wait@example.com").await.status(), StatusCode::OK);
    assert_eq!(resend("wait@example.com").await.status(), StatusCode::OK);
    let limited = resend("wait@example.com").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));

    // Any unused link verifies; the others are used up with it.
    let (status, _) = get(&s, &first).await;
    assert_eq!(status, StatusCode::OK);
    let latest = link_in(&mail.wait_for(4).await[3]);
    let (status, html) = get(&s, &latest).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("already been used"), "{html}");
    let (status, body) = password_grant(&s, "wait@example.com", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let _: &Value = &body;
}
