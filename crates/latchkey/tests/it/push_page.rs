//! The hosted login page's push option over real HTTP, with the page's
//! cookies and login transaction: a device enrolled through My Account, its
//! notifications read from the signed webhook's receiver and answered
//! through the device API. Approved (the login finishes once, a second
//! finish refused), rejected, expired (the clock moved), "send again" within
//! its limits, a delivery failure (closed, then sent anew), the app's code
//! instead, number matching, a step-up from a password session
//! (`acr_values`), and another login's notification or page not usable.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::mfa_api::{ALWAYS, tenant};
use crate::push_device::Device;
use crate::push_receivers::{PushWebhookReceiver, WebhookPush};
use crate::support::*;

/// The MFA tests' tenant with push notifications through the webhook at
/// `url` (signed with the test servers' webhook secret).
fn push_tenant(port: u16, url: &str, extra: &str, number_matching: bool) -> String {
    tenant(port, extra).replace(
        "factors: [password, totp, recovery-code]",
        "factors: [password, totp, recovery-code, push-notification]",
    ) + &format!(
        "push_notifications:\n  number_matching: {number_matching}\n  \
             webhook: {{ url: \"{url}\", secret_env: SMS_WEBHOOK_SECRET, timeout_seconds: 5 }}\n"
    )
}

struct Setup {
    s: TestServer,
    rx: PushWebhookReceiver,
    device: Device,
    method_id: String,
    totp_secret: String,
}

/// Alice enrolls a push device and a recovery code through My Account;
/// then the tenant asks for MFA always.
async fn setup(number_matching: bool) -> Setup {
    setup_with(ALWAYS, number_matching).await
}

/// [`setup`] with the tenant's `mfa` settings in `policy` ("" for none).
async fn setup_with(policy: &str, number_matching: bool) -> Setup {
    let s = TestServer::start().await;
    let rx = PushWebhookReceiver::start(WEBHOOK_SECRET, Arc::new(s.clock.clone())).await;
    let apply = |text: String| {
        let state = s.state.clone();
        async move {
            latchkey::tenant::apply::apply_text(&state, &text)
                .await
                .unwrap();
        }
    };
    apply(push_tenant(s.port, &rx.url, "", false)).await;
    let token = s.me_token(ME_SCOPES).await;
    let started = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "push-notification"})),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let device = Device::new("pixel");
    let enrolled = device
        .enroll(started.body["barcode_uri"].as_str().unwrap())
        .await;
    let confirmed = s
        .me(
            "POST",
            &format!("{}/verify", started.header("location").unwrap()),
            Some(&token),
            Some(json!({"auth_session": started.body["auth_session"]})),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::CREATED, "{}", confirmed.body);
    let method_id = confirmed.body["id"].as_str().unwrap().to_string();
    // A recovery code too: the page offers the user's other factors.
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "recovery-code"})),
        )
        .await;
    let v = s
        .me(
            "POST",
            &format!("{}/verify", r.header("location").unwrap()),
            Some(&token),
            Some(json!({"auth_session": r.body["auth_session"]})),
        )
        .await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    apply(push_tenant(s.port, &rx.url, policy, number_matching)).await;
    Setup {
        s,
        rx,
        device,
        method_id,
        totp_secret: enrolled.totp_secret,
    }
}

async fn post(
    s: &TestServer,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser.post(s.url(path)).form(form).send().await.unwrap()
}

async fn html(res: reqwest::Response) -> String {
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Password on the page: the second step's page, with the push panel.
async fn second_step(x: &Setup, browser: &reqwest::Client, req: &AuthRequest) -> String {
    let page = html(login_through_page(&x.s, browser, req, ALICE, ALICE_PASSWORD).await).await;
    assert_eq!(
        hidden_input(&page, "method").as_deref(),
        Some(x.method_id.as_str())
    );
    page
}

/// `POST /login/mfa/push/status`: the JSON status.
async fn status(x: &Setup, browser: &reqwest::Client, tx: &str) -> (StatusCode, Value) {
    let res = post(&x.s, browser, "/login/mfa/push/status", &[("tx", tx)]).await;
    let code = res.status();
    assert_eq!(
        res.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        (code == StatusCode::OK).then_some("no-store")
    );
    (code, res.json().await.unwrap())
}

/// `POST /login/mfa/push`: the "I approved it — continue" button.
async fn finish(x: &Setup, browser: &reqwest::Client, tx: &str) -> reqwest::Response {
    post(
        &x.s,
        browser,
        "/login/mfa/push",
        &[("tx", tx), ("method", &x.method_id)],
    )
    .await
}

/// "Send again".
async fn again(x: &Setup, browser: &reqwest::Client, tx: &str) -> String {
    html(
        post(
            &x.s,
            browser,
            "/login/mfa",
            &[("tx", tx), ("method", &x.method_id), ("again", "1")],
        )
        .await,
    )
    .await
}

/// The device's answer to `push`: approved (with the number, if given) or
/// rejected, through the device API.
async fn resolve(x: &Setup, push: &WebhookPush, accepted: bool, code: Option<&str>) -> StatusCode {
    let s = &x.s;
    let now = s.clock_now();
    let mut claims = json!({
        "iss": x.device.identifier,
        "sub": push.notification["c"],
        "aud": format!("{}appliance-mfa/api/resolve-transaction", s.issuer),
        "iat": now,
        "exp": now + 30,
        "auth0_guardian_method": "push",
        "auth0_guardian_accepted": accepted,
    });
    if let Some(c) = code {
        claims["latchkey_binding_code"] = json!(c);
    }
    let jwt = x
        .device
        .jws(&json!({"alg": "RS256", "typ": "JWT"}), &claims);
    s.http()
        .post(s.url("/appliance-mfa/api/resolve-transaction"))
        .bearer_auth(push.notification["txtkn"].as_str().unwrap())
        .json(&json!({ "challenge_response": jwt }))
        .send()
        .await
        .unwrap()
        .status()
}

/// The code in a redirect to the app, exchanged: the token response.
async fn tokens(s: &TestServer, req: &AuthRequest, res: reqwest::Response) -> Value {
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let code = query_param(&location, "code").unwrap_or_else(|| panic!("{location}"));
    let (status, body) = exchange(s, req, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn approved_on_the_device_the_page_finishes_the_login_once() {
    let x = setup(false).await;
    let browser = x.s.browser();
    let req = AuthRequest::new("openid offline_access");
    let page = second_step(&x, &browser, &req).await;
    let tx = hidden_input(&page, "tx").unwrap();
    assert!(
        page.contains("We sent a notification to <strong id=\"push-device\">pixel</strong>"),
        "{page}"
    );
    assert!(page.contains("Waiting for your approval"), "{page}");
    assert!(
        page.contains("role=\"status\" aria-live=\"polite\""),
        "{page}"
    );
    assert!(
        page.contains("<script src=\"/login/mfa-push.js\" defer></script>"),
        "{page}"
    );
    assert!(
        !page.contains("id=\"push-number\""),
        "no number without number matching"
    );
    let push = x.rx.next().await;
    assert_eq!(push.token, "fcm-token-pixel");

    let (code, body) = status(&x, &browser, &tx).await;
    assert_eq!((code, body), (StatusCode::OK, json!({"status": "pending"})));
    // Not approved yet: the button checks once and shows the panel again.
    let res = finish(&x, &browser, &tx).await;
    let again_page = html(res).await;
    assert!(again_page.contains("not approved yet"), "{again_page}");
    assert!(
        x.rx.received().await.len() == 1,
        "checking sent nothing new"
    );

    assert_eq!(resolve(&x, &push, true, None).await, StatusCode::NO_CONTENT);
    let (_, body) = status(&x, &browser, &tx).await;
    assert_eq!(body, json!({"status": "approved"}));
    let body = tokens(&x.s, &req, finish(&x, &browser, &tx).await).await;
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa"])
    );

    // Finishing twice: the step is spent.
    let res = finish(&x, &browser, &tx).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let (code, body) = status(&x, &browser, &tx).await;
    assert_eq!(
        (code, body),
        (StatusCode::BAD_REQUEST, json!({"error": "login_expired"}))
    );
}

#[tokio::test]
async fn rejected_on_the_device_the_page_says_so_and_sends_again() {
    let x = setup(false).await;
    let browser = x.s.browser();
    let req = AuthRequest::new("openid");
    let page = second_step(&x, &browser, &req).await;
    let tx = hidden_input(&page, "tx").unwrap();
    let push = x.rx.next().await;
    assert_eq!(
        resolve(&x, &push, false, None).await,
        StatusCode::NO_CONTENT
    );
    let (_, body) = status(&x, &browser, &tx).await;
    assert_eq!(body, json!({"status": "rejected"}));
    let page = html(finish(&x, &browser, &tx).await).await;
    assert!(page.contains("The sign-in was rejected on pixel"), "{page}");
    assert!(page.contains("id=\"push-continue\" hidden"), "{page}");
    // A rejected login is not approved by answering it again.
    assert_eq!(resolve(&x, &push, true, None).await, StatusCode::NOT_FOUND);

    x.s.clock.advance(10);
    let page = again(&x, &browser, &tx).await;
    assert!(page.contains("Waiting for your approval"), "{page}");
    let second = x.rx.next().await;
    assert_ne!(second.notification["txlnkid"], push.notification["txlnkid"]);
    assert_eq!(
        resolve(&x, &second, true, None).await,
        StatusCode::NO_CONTENT
    );
    tokens(&x.s, &req, finish(&x, &browser, &tx).await).await;
}

#[tokio::test]
async fn unanswered_it_expires_and_a_late_approval_is_refused() {
    let x = setup(false).await;
    let browser = x.s.browser();
    let req = AuthRequest::new("openid");
    let page = second_step(&x, &browser, &req).await;
    let tx = hidden_input(&page, "tx").unwrap();
    let push = x.rx.next().await;
    x.s.clock.advance(300);
    let (_, body) = status(&x, &browser, &tx).await;
    assert_eq!(body, json!({"status": "expired"}));
    assert_eq!(resolve(&x, &push, true, None).await, StatusCode::NOT_FOUND);
    let page = html(finish(&x, &browser, &tx).await).await;
    assert!(page.contains("The notification expired"), "{page}");
    // A new one, still within the step's ten minutes.
    let page = again(&x, &browser, &tx).await;
    assert!(page.contains("Waiting for your approval"), "{page}");
    let second = x.rx.next().await;
    assert_eq!(
        resolve(&x, &second, true, None).await,
        StatusCode::NO_CONTENT
    );
    tokens(&x.s, &req, finish(&x, &browser, &tx).await).await;
}

#[tokio::test]
async fn send_again_is_one_per_ten_seconds_and_five_per_step() {
    let x = setup(false).await;
    let browser = x.s.browser();
    let req = AuthRequest::new("openid");
    let page = second_step(&x, &browser, &req).await;
    let tx = hidden_input(&page, "tx").unwrap();
    x.rx.next().await;
    // At once: refused, nothing sent, the panel still waits for the first.
    let page = again(&x, &browser, &tx).await;
    assert!(
        page.contains("You can send another in 10 seconds"),
        "{page}"
    );
    assert!(page.contains("Waiting for your approval"), "{page}");
    x.s.clock.advance(4);
    let page = again(&x, &browser, &tx).await;
    assert!(page.contains("You can send another in 6 seconds"), "{page}");
    assert_eq!(x.rx.received().await.len(), 1);
    // Choosing the method again while one waits sends nothing either.
    let page = html(
        post(
            &x.s,
            &browser,
            "/login/mfa",
            &[("tx", &tx), ("method", &x.method_id)],
        )
        .await,
    )
    .await;
    assert!(page.contains("Waiting for your approval"), "{page}");
    assert_eq!(x.rx.received().await.len(), 1);
    for sent in 2..=5 {
        x.s.clock.advance(10);
        let page = again(&x, &browser, &tx).await;
        assert!(!page.contains("class=\"error\""), "{page}");
        x.rx.next().await;
        assert_eq!(x.rx.received().await.len(), sent);
    }
    x.s.clock.advance(60);
    let page = again(&x, &browser, &tx).await;
    assert!(page.contains("No more notifications can be sent"), "{page}");
    assert_eq!(x.rx.received().await.len(), 5);
    // The app's code still answers.
    let code = totp_now(&x.totp_secret, x.s.clock_now());
    let res = post(
        &x.s,
        &browser,
        "/login/mfa/verify",
        &[("tx", &tx), ("method", &x.method_id), ("code", &code)],
    )
    .await;
    let body = tokens(&x.s, &req, res).await;
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa", "otp"])
    );
}

#[tokio::test]
async fn a_wrong_code_from_the_app_keeps_the_panel_and_sends_nothing() {
    let x = setup(false).await;
    let browser = x.s.browser();
    let req = AuthRequest::new("openid");
    let page = second_step(&x, &browser, &req).await;
    let tx = hidden_input(&page, "tx").unwrap();
    let push = x.rx.next().await;
    let right = totp_now(&x.totp_secret, x.s.clock_now());
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    let page = html(
        post(
            &x.s,
            &browser,
            "/login/mfa/verify",
            &[("tx", &tx), ("method", &x.method_id), ("code", wrong)],
        )
        .await,
    )
    .await;
    assert!(page.contains("That code is not right"), "{page}");
    assert!(page.contains("<details id=\"push-code\" open>"), "{page}");
    assert!(page.contains("Waiting for your approval"), "{page}");
    assert_eq!(x.rx.received().await.len(), 1);
    // The notification still counts.
    assert_eq!(resolve(&x, &push, true, None).await, StatusCode::NO_CONTENT);
    tokens(&x.s, &req, finish(&x, &browser, &tx).await).await;
}

#[tokio::test]
async fn a_delivery_failure_is_told_in_words_with_the_other_ways() {
    let x = setup(false).await;
    x.rx.fail_next(503);
    let browser = x.s.browser();
    let req = AuthRequest::new("openid");
    let page = second_step(&x, &browser, &req).await;
    assert!(
        page.contains("The notification could not be sent to pixel"),
        "{page}"
    );
    assert!(page.contains("data-state=\"failed\""), "{page}");
    assert!(page.contains("Enter a code from the app instead"), "{page}");
    assert!(
        page.contains("id=\"other-methods\""),
        "the user's other factors: {page}"
    );
    assert!(!page.contains("Waiting for your approval"), "{page}");
    let tx = hidden_input(&page, "tx").unwrap();
    let (_, body) = status(&x, &browser, &tx).await;
    assert_eq!(body, json!({"status": "failed"}));
    assert!(x.rx.received().await.is_empty());
    // Choosing the method again sends a new one (nothing waits: the refused
    // one is closed), and that one is answered.
    x.s.clock.advance(10);
    let page = html(
        post(
            &x.s,
            &browser,
            "/login/mfa",
            &[("tx", &tx), ("method", &x.method_id)],
        )
        .await,
    )
    .await;
    assert!(page.contains("Waiting for your approval"), "{page}");
    let push = x.rx.next().await;
    assert_eq!(resolve(&x, &push, true, None).await, StatusCode::NO_CONTENT);
    tokens(&x.s, &req, finish(&x, &browser, &tx).await).await;
}

#[tokio::test]
async fn number_matching_shows_the_number_the_device_must_send() {
    let x = setup(true).await;
    let browser = x.s.browser();
    let req = AuthRequest::new("openid");
    let page = second_step(&x, &browser, &req).await;
    let tx = hidden_input(&page, "tx").unwrap();
    let start = page.find("id=\"push-number\">").unwrap() + "id=\"push-number\">".len();
    let number = &page[start..start + 2];
    assert!(number.chars().all(|c| c.is_ascii_digit()), "{page}");
    let push = x.rx.next().await;
    // The notification never carries it.
    assert!(
        !push
            .notification
            .to_string()
            .contains(&format!("\"{number}\""))
    );
    assert_eq!(
        resolve(&x, &push, true, Some(number)).await,
        StatusCode::NO_CONTENT
    );
    tokens(&x.s, &req, finish(&x, &browser, &tx).await).await;
}

#[tokio::test]
async fn another_logins_notification_or_page_is_not_usable() {
    let x = setup(false).await;
    let req = AuthRequest::new("openid");
    let mine = x.s.browser();
    let page = second_step(&x, &mine, &req).await;
    let my_tx = hidden_input(&page, "tx").unwrap();
    x.rx.next().await;
    let theirs = x.s.browser();
    let page = second_step(&x, &theirs, &req).await;
    let their_tx = hidden_input(&page, "tx").unwrap();
    let their_push = x.rx.next().await;
    assert_eq!(
        resolve(&x, &their_push, true, None).await,
        StatusCode::NO_CONTENT
    );

    // Their approval is theirs alone.
    let (_, body) = status(&x, &mine, &my_tx).await;
    assert_eq!(body, json!({"status": "pending"}));
    let page = html(finish(&x, &mine, &my_tx).await).await;
    assert!(page.contains("not approved yet"), "{page}");
    // Their page's transaction from this browser: its cookies are not theirs.
    let (code, body) = status(&x, &mine, &their_tx).await;
    assert_eq!(
        (code, body),
        (StatusCode::BAD_REQUEST, json!({"error": "login_expired"}))
    );
    assert_eq!(
        finish(&x, &mine, &their_tx).await.status(),
        StatusCode::BAD_REQUEST
    );
    // A request without the page's cookies at all.
    let (code, _) = status(&x, &x.s.http(), &their_tx).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    // They finish theirs.
    tokens(&x.s, &req, finish(&x, &theirs, &their_tx).await).await;
}

#[tokio::test]
async fn a_user_is_sent_at_most_ten_in_fifteen_minutes_across_logins() {
    let x = setup(false).await;
    let req = AuthRequest::new("openid");
    for login in 0..2 {
        let browser = x.s.browser();
        let page = second_step(&x, &browser, &req).await;
        let tx = hidden_input(&page, "tx").unwrap();
        for _ in 1..5 {
            x.s.clock.advance(10);
            assert!(!again(&x, &browser, &tx).await.contains("class=\"error\""));
        }
        assert_eq!(x.rx.received().await.len(), 5 * (login + 1));
    }
    // A third login: the user's limit, said in words, the code still offered.
    let browser = x.s.browser();
    let page = second_step(&x, &browser, &req).await;
    assert!(
        page.contains("Too many notifications were sent to your devices"),
        "{page}"
    );
    assert!(page.contains("Enter a code from the app instead"), "{page}");
    assert_eq!(x.rx.received().await.len(), 10);
}

#[tokio::test]
async fn a_step_up_from_a_password_session_is_approved_on_the_device() {
    let x = setup_with("", false).await;
    let browser = x.s.browser();
    // Signed in with the password while no second factor was needed.
    code_for(&x.s, &browser, &AuthRequest::new("openid")).await;
    assert!(x.rx.received().await.is_empty());
    // An app asking for multi-factor assurance: the panel, no password.
    let strict = AuthRequest::new("openid").param(
        "acr_values",
        "http://schemas.openid.net/pape/policies/2007/06/multi-factor",
    );
    let page = html(browser.get(strict.url(&x.s)).send().await.unwrap()).await;
    assert!(!page.contains("name=\"password\""), "{page}");
    assert!(page.contains("Waiting for your approval"), "{page}");
    let tx = hidden_input(&page, "tx").unwrap();
    let push = x.rx.next().await;
    assert_eq!(resolve(&x, &push, true, None).await, StatusCode::NO_CONTENT);
    let body = tokens(&x.s, &strict, finish(&x, &browser, &tx).await).await;
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], json!(["pwd", "mfa"]));
    assert_eq!(
        id["acr"],
        "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
    );
}
