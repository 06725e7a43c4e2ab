//! What an attacker tries against the pages and links of accounts users
//! make and recover themselves, over HTTP: one reset link spent by two
//! requests at once, the verification email asked for again from one
//! address for many accounts, and a login transaction of one tenant
//! carried to another tenant's sign-up and "Forgot password?" forms.

use reqwest::StatusCode;

use crate::signup::{NEW_PASSWORD, link_in, password_grant, server, signup};
use crate::support::*;

#[tokio::test]
async fn a_reset_link_raced_by_two_requests_resets_once() {
    let (s, mail) = server("", "").await;
    let res = s
        .http()
        .post(s.url("/dbconnections/change_password"))
        .json(&serde_json::json!({"client_id": "spa", "connection": crate::signup::UPA, "email": ALICE}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let link = link_in(&mail.wait_for(1).await[0]);
    let ticket = query_param(&link, "ticket").unwrap();
    let submit = |password: &'static str| {
        let (http, url, ticket) = (s.http(), s.url("/u/reset-password"), ticket.clone());
        async move {
            let res = http
                .post(url)
                .form(&[("ticket", ticket.as_str()), ("password", password)])
                .send()
                .await
                .unwrap();
            (res.status(), password)
        }
    };
    let (a, b) = tokio::join!(submit("First-Racer-Pass-1"), submit("Second-Racer-Pass-2"));
    let winners: Vec<_> = [a, b]
        .into_iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .map(|(_, password)| password)
        .collect();
    assert_eq!(winners.len(), 1, "{a:?} {b:?}");
    let loser = if winners[0] == a.1 { b } else { a };
    assert_eq!(loser.0, StatusCode::BAD_REQUEST);
    // The password is the winner's; the loser's and the old one are not.
    assert_eq!(
        password_grant(&s, ALICE, winners[0]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        password_grant(&s, ALICE, loser.1).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        password_grant(&s, ALICE, ALICE_PASSWORD).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn verification_mails_asked_again_are_limited_per_ip() {
    let (s, mail) = server("    require_email_verification: true\n", "").await;
    // Twelve unverified accounts (their sign-up mails first).
    for i in 0..12 {
        let (status, body) = signup(&s, &format!("v{i}@example.com"), NEW_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    mail.wait_for(12).await;
    let browser = s.browser();
    let page = browser
        .get(AuthRequest::new("openid").url(&s))
        .send()
        .await
        .unwrap();
    let tx = hidden_input(&page.text().await.unwrap(), "tx").unwrap();
    let resend = |email: String| {
        let (browser, url, tx) = (
            browser.clone(),
            s.url("/login/verify-email/resend"),
            tx.clone(),
        );
        async move {
            browser
                .post(url)
                .form(&[("tx", tx.as_str()), ("email", email.as_str())])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // One address may ask for ten accounts an hour, each within its own
    // limit; the eleventh is refused whoever it names.
    for i in 0..10 {
        assert_eq!(
            resend(format!("v{i}@example.com")).await,
            StatusCode::OK,
            "{i}"
        );
    }
    assert_eq!(
        resend("v10@example.com".into()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(mail.wait_for(22).await.len(), 22);
    // An hour on (a new login: the old transaction is over), it may again.
    s.clock.advance(3600);
    let page = browser
        .get(AuthRequest::new("openid").url(&s))
        .send()
        .await
        .unwrap();
    let tx = hidden_input(&page.text().await.unwrap(), "tx").unwrap();
    let res = browser
        .post(s.url("/login/verify-email/resend"))
        .form(&[("tx", tx.as_str()), ("email", "v11@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn another_tenants_login_transaction_opens_no_form() {
    let (s, _mail) = server("", "").await;
    latchkey::tenant::apply::apply_text(&s.state, &other_tenant(s.port))
        .await
        .unwrap();
    // A transaction of acme, with its cookie, carried to the other tenant's
    // host, cookie and all (a browser would not send it there).
    let browser = s.browser();
    let page = browser
        .get(AuthRequest::new("openid").url(&s))
        .send()
        .await
        .unwrap();
    let tx = hidden_input(&page.text().await.unwrap(), "tx").unwrap();
    let other = format!("http://127.0.0.1:{}", s.port);
    let cookie = format!("latchkey_tx={tx}");
    for (path, form) in [
        (
            "/login/signup",
            vec![
                ("tx", tx.as_str()),
                ("email", "intruder@example.com"),
                ("password", NEW_PASSWORD),
            ],
        ),
        (
            "/login/forgot-password",
            vec![("tx", tx.as_str()), ("email", ALICE)],
        ),
    ] {
        let res = s
            .http()
            .post(format!("{other}{path}"))
            .header("cookie", &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        let get = s
            .http()
            .get(format!("{other}{path}?tx={tx}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    // Nobody was made in either tenant; the transaction still works at home.
    for host in [s.url(""), other.clone()] {
        let res = s
            .http()
            .post(format!("{host}/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "spa"),
                ("username", "intruder@example.com"),
                ("password", NEW_PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{host}");
    }
    let form = browser
        .get(s.url(&format!("/login/signup?tx={tx}")))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_links_language_is_one_of_latchkeys_or_nothing() {
    let (s, mail) = server("", "").await;
    let res = s
        .http()
        .post(s.url("/dbconnections/change_password"))
        .json(&serde_json::json!({"client_id": "spa", "connection": crate::signup::UPA, "email": ALICE}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let link = link_in(&mail.wait_for(1).await[0]);
    // Whatever is put in the link's ui_locales, only a language latchkey
    // speaks reaches the page and its form.
    let junk = "zz-injected\"><b>x</b>".repeat(50);
    let res = s
        .http()
        .get(format!("{link}&ui_locales={}", urlencoding(&junk)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(!html.contains("zz-injected"), "{html}");
    assert!(html.contains("lang=\"en\""), "{html}");
    let res = s
        .http()
        .get(format!("{link}&ui_locales=fr-CA"))
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains("lang=\"fr\""), "{html}");
    assert_eq!(hidden_input(&html, "ui_locales").as_deref(), Some("fr"));
}

fn urlencoding(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_string()
}
