//! Passwordless login on the hosted page (Auth0's `login-passwordless`
//! prompt: the `login-passwordless-email-code` and
//! `login-passwordless-sms-otp` screens): the login page offers the
//! application's passwordless connections beside the password form (alone
//! in a tenant without a database connection), a code is sent through the
//! tenant's provider and read from the test SMTP server or SMS receiver,
//! and the code screen takes it; then the login goes on as after a
//! password (the MFA policy, the session, the events, the code to the app).
//! Wrong, replayed, expired, another user's and another tenant's codes,
//! another browser's transaction, the attempt and resend limits, bad
//! addresses and connections.

use reqwest::StatusCode;
use serde_json::json;

use crate::mfa_api::ALWAYS;
use crate::passwordless::{file, log, mailed, rig, rig_with, texted};
use crate::smtp::SmtpServer;
use crate::support::*;

/// The login page of a new authorization request, opened in `browser`.
async fn login_page(s: &TestServer, browser: &reqwest::Client, req: &AuthRequest) -> String {
    let res = browser.get(req.url(s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// "Email me a code" for `email`, from the page `html`: the code screen.
async fn ask_email_code(
    s: &TestServer,
    browser: &reqwest::Client,
    html: &str,
    email: &str,
) -> reqwest::Response {
    let tx = hidden_input(html, "tx").unwrap();
    post_form(
        s,
        browser,
        "/login/passwordless",
        &[("tx", &tx), ("connection", "email"), ("email", email)],
    )
    .await
}

/// The code screen `html` answered with `code`.
async fn answer(
    s: &TestServer,
    browser: &reqwest::Client,
    html: &str,
    code: &str,
) -> reqwest::Response {
    let tx = hidden_input(html, "tx").unwrap();
    let connection = hidden_input(html, "connection").unwrap();
    let username = hidden_input(html, "username").unwrap();
    post_form(
        s,
        browser,
        "/login/passwordless/verify",
        &[
            ("tx", &tx),
            ("connection", &connection),
            ("username", &username),
            ("code", code),
        ],
    )
    .await
}

/// The code of a redirect back to the app, exchanged: the ID token's claims.
async fn signed_in(s: &TestServer, req: &AuthRequest, res: reqwest::Response) -> serde_json::Value {
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&req.redirect_uri), "{location}");
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some(req.state.as_str())
    );
    let code = query_param(&location, "code").unwrap();
    let (status, tokens) = exchange(s, req, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    claims(tokens["id_token"].as_str().unwrap())
}

fn event_types(events: &[latchkey::store::AuditEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

#[tokio::test]
async fn an_email_code_logs_in_through_the_page() {
    let rig = rig("").await;
    let s = &rig.s;
    let browser = s.browser();
    let req = AuthRequest::new("openid email");
    let page = login_page(s, &browser, &req).await;
    // Beside the password form: the spa's email and sms connections.
    assert!(page.contains("name=\"password\""), "{page}");
    assert!(page.contains("action=\"/login/passwordless\""), "{page}");
    assert!(
        page.contains("<label for=\"passwordless-email\">Email address</label>"),
        "{page}"
    );
    assert!(
        page.contains(
            "id=\"passwordless-email\" name=\"email\" type=\"email\" autocomplete=\"email\""
        ),
        "{page}"
    );
    assert!(page.contains(">Email me a code</button>"), "{page}");
    assert!(
        page.contains(
            "id=\"passwordless-sms\" name=\"phone_number\" type=\"tel\" autocomplete=\"tel\""
        ),
        "{page}"
    );
    assert!(page.contains(">Text me a code</button>"), "{page}");

    let screen = page_body(
        ask_email_code(s, &browser, &page, "Carol@Example.com").await,
        StatusCode::OK,
    )
    .await;
    assert!(screen.contains("<h1>Verify Your Identity</h1>"), "{screen}");
    assert!(
        screen.contains("sent an email with your code to <strong id=\"passwordless-to\">Carol@Example.com</strong>"),
        "{screen}"
    );
    assert!(
        screen.contains("<label for=\"code\">Enter the code</label>"),
        "{screen}"
    );
    assert!(
        screen.contains("autocomplete=\"one-time-code\""),
        "{screen}"
    );
    assert!(!screen.contains("aria-invalid"), "{screen}");
    assert!(screen.contains("id=\"passwordless-resend\""), "{screen}");
    let code = mailed(&rig, 1, "Carol@Example.com").await;

    let id = signed_in(s, &req, answer(s, &browser, &screen, &code).await).await;
    let sub = id["sub"].as_str().unwrap().to_string();
    assert!(sub.starts_with("email|"), "{id}");
    assert_eq!(id["email"], "Carol@Example.com");
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["amr"], json!(["otp"]));

    let events = log(s).await;
    assert_eq!(
        event_types(&events),
        ["cls", "ss", "s", "seacft"],
        "{events:?}"
    );
    assert_eq!(events[2].user_id.as_deref(), Some(sub.as_str()));
    assert_eq!(events[2].client_id.as_deref(), Some("spa"));
    assert!(!format!("{events:?}").contains(&code));

    // A session was opened: the next request of this browser is answered at once.
    let again = AuthRequest::new("openid");
    let res = browser.get(again.url(s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);

    // The next passwordless login finds the same user.
    let other = s.browser();
    let req = AuthRequest::new("openid");
    let page = login_page(s, &other, &req).await;
    s.clock.advance(1);
    let screen = page_body(
        ask_email_code(s, &other, &page, "carol@example.com").await,
        StatusCode::OK,
    )
    .await;
    let code = mailed(&rig, 2, "carol@example.com").await;
    let id = signed_in(s, &req, answer(s, &other, &screen, &code).await).await;
    assert_eq!(id["sub"], json!(sub));
}

/// A tenant whose only connection is passwordless (email).
fn solo(port: u16, mail: &SmtpServer) -> String {
    format!(
        r#"
tenant: {{ name: solo, domains: ["localhost:{port}"] }}
connections:
  - {{ name: email, strategy: email, enabled_clients: [spa] }}
clients:
  - {{ client_id: spa, app_type: spa, callbacks: ["{APP}/cb"], grant_types: [authorization_code, refresh_token] }}
email_provider: {{ smtp: {{ host: 127.0.0.1, port: {}, security: none, from: no-reply@acme.test,
                  username: latchkey, password_env: SMTP_PASSWORD }} }}
"#,
        mail.port
    )
}

#[tokio::test]
async fn alone_when_the_tenant_has_no_password_connection() {
    let rig = rig_with(&[], |port, mail, _| solo(port, mail)).await;
    let s = &rig.s;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = login_page(s, &browser, &req).await;
    assert!(!page.contains("name=\"password\""), "{page}");
    assert!(!page.contains("forgot-password"), "{page}");
    assert!(
        page.contains("type=\"email\" autocomplete=\"email\" required autofocus"),
        "{page}"
    );
    assert!(
        page.contains("<button type=\"submit\" id=\"passwordless-email-button\">Continue</button>"),
        "{page}"
    );
    let screen = page_body(
        ask_email_code(s, &browser, &page, "frank@example.com").await,
        StatusCode::OK,
    )
    .await;
    let code = mailed(&rig, 1, "frank@example.com").await;
    let id = signed_in(s, &req, answer(s, &browser, &screen, &code).await).await;
    assert!(id["sub"].as_str().unwrap().starts_with("email|"), "{id}");
}

#[tokio::test]
async fn a_wrong_code_is_told_at_its_field_and_three_kill_the_code() {
    let rig = rig("").await;
    let s = &rig.s;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = login_page(s, &browser, &req).await;
    let screen = page_body(
        ask_email_code(s, &browser, &page, "dave@example.com").await,
        StatusCode::OK,
    )
    .await;
    let code = mailed(&rig, 1, "dave@example.com").await;
    let refused = page_body(
        answer(s, &browser, &screen, &wrong_code(&code)).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        refused.contains("aria-invalid=\"true\" aria-describedby=\"code-error\""),
        "{refused}"
    );
    assert!(
        refused.contains(
            "<p class=\"error\" role=\"alert\" id=\"code-error\">The code you entered is invalid</p>"
        ),
        "{refused}"
    );
    // The screen keeps what the next answer needs.
    assert_eq!(
        hidden_input(&refused, "username").unwrap(),
        "dave@example.com"
    );
    // A malformed answer is a wrong answer, never a failure.
    let long = "1".repeat(5000);
    page_body(
        answer(s, &browser, &refused, &long).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    for _ in 0..2 {
        page_body(
            answer(s, &browser, &refused, &wrong_code(&code)).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    // Three wrong answers: the right code is dead too.
    page_body(
        answer(s, &browser, &refused, &code).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let types: Vec<String> = log(s).await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["cls", "f", "f", "f", "f", "f"]);
}

#[tokio::test]
async fn a_replayed_or_expired_code_is_refused() {
    let rig = rig("").await;
    let s = &rig.s;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = login_page(s, &browser, &req).await;
    let screen = page_body(
        ask_email_code(s, &browser, &page, "grace@example.com").await,
        StatusCode::OK,
    )
    .await;
    let code = mailed(&rig, 1, "grace@example.com").await;
    signed_in(s, &req, answer(s, &browser, &screen, &code).await).await;

    // Replayed in another browser's login: spent.
    let other = s.browser();
    let page = login_page(s, &other, &AuthRequest::new("openid")).await;
    let tx = hidden_input(&page, "tx").unwrap();
    let replay = post_form(
        s,
        &other,
        "/login/passwordless/verify",
        &[
            ("tx", &tx),
            ("connection", "email"),
            ("username", "grace@example.com"),
            ("code", &code),
        ],
    )
    .await;
    page_body(replay, StatusCode::BAD_REQUEST).await;

    // Expired after three minutes.
    s.clock.advance(1);
    let screen = page_body(
        ask_email_code(s, &other, &page, "grace@example.com").await,
        StatusCode::OK,
    )
    .await;
    let code = mailed(&rig, 2, "grace@example.com").await;
    s.clock.advance(181);
    let late = page_body(
        answer(s, &other, &screen, &code).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(late.contains("The code you entered is invalid"), "{late}");
}

#[tokio::test]
async fn another_browsers_transaction_is_refused() {
    let rig = rig("").await;
    let s = &rig.s;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = login_page(s, &browser, &req).await;
    let tx = hidden_input(&page, "tx").unwrap();
    // Without this browser's cookie nothing is sent.
    let stranger = s.browser();
    let res = post_form(
        s,
        &stranger,
        "/login/passwordless",
        &[
            ("tx", &tx),
            ("connection", "email"),
            ("email", "heidi@example.com"),
        ],
    )
    .await;
    let expired = page_body(res, StatusCode::BAD_REQUEST).await;
    assert!(expired.contains("Your login page has expired"), "{expired}");

    let screen = page_body(
        ask_email_code(s, &browser, &page, "heidi@example.com").await,
        StatusCode::OK,
    )
    .await;
    let code = mailed(&rig, 1, "heidi@example.com").await;
    assert_eq!(rig.mail.messages().await.len(), 1);
    // The right code in another browser: refused, and not spent.
    let res = answer(s, &stranger, &screen, &code).await;
    let expired = page_body(res, StatusCode::BAD_REQUEST).await;
    assert!(expired.contains("Your login page has expired"), "{expired}");
    signed_in(s, &req, answer(s, &browser, &screen, &code).await).await;
}

#[tokio::test]
async fn another_users_or_tenants_code_is_refused() {
    let rig = rig("").await;
    let s = &rig.s;
    // A passwordless connection in the other tenant, with the same provider.
    let other = other_tenant(s.port).replace(
        "connections: [{ name: Username-Password-Authentication }]",
        "connections: [{ name: Username-Password-Authentication }, { name: email, strategy: email, enabled_clients: [spa] }]",
    ) + &format!(
        "email_provider: {{ smtp: {{ host: 127.0.0.1, port: {}, security: none, from: no-reply@other.test, \
         username: latchkey, password_env: SMTP_PASSWORD }} }}\n",
        rig.mail.port
    );
    latchkey::tenant::apply::apply_text(&s.state, &other)
        .await
        .unwrap();
    let res = s
        .http()
        .post(format!("http://127.0.0.1:{}/passwordless/start", s.port))
        .json(&json!({"client_id": "spa", "connection": "email", "email": "ivan@example.com", "send": "code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let others = mailed(&rig, 1, "ivan@example.com").await;

    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = login_page(s, &browser, &req).await;
    let screen = page_body(
        ask_email_code(s, &browser, &page, "judy@example.com").await,
        StatusCode::OK,
    )
    .await;
    let judys = mailed(&rig, 2, "judy@example.com").await;
    // The other tenant's code for Ivan, in this tenant: refused.
    let tx = hidden_input(&page, "tx").unwrap();
    let res = post_form(
        s,
        &browser,
        "/login/passwordless/verify",
        &[
            ("tx", &tx),
            ("connection", "email"),
            ("username", "ivan@example.com"),
            ("code", &others),
        ],
    )
    .await;
    page_body(res, StatusCode::BAD_REQUEST).await;
    // Judy's code for Ivan's address: refused.
    let res = post_form(
        s,
        &browser,
        "/login/passwordless/verify",
        &[
            ("tx", &tx),
            ("connection", "email"),
            ("username", "ivan@example.com"),
            ("code", &judys),
        ],
    )
    .await;
    page_body(res, StatusCode::BAD_REQUEST).await;
    // Judy's code signs Judy in, and nobody else was made.
    let id = signed_in(s, &req, answer(s, &browser, &screen, &judys).await).await;
    assert!(id["sub"].as_str().unwrap().starts_with("email|"));
    let types: Vec<String> = log(s).await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["cls", "f", "f", "ss", "s", "seacft"]);
}

#[tokio::test]
async fn the_mfa_policy_applies_after_a_code() {
    let rig = rig("").await;
    let s = &rig.s;
    let with_mfa = file(s.port, &rig.mail, &rig.sms, "") + ALWAYS;
    latchkey::tenant::apply::apply_text(&s.state, &with_mfa)
        .await
        .unwrap();
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = login_page(s, &browser, &req).await;
    let screen = page_body(
        ask_email_code(s, &browser, &page, "mallory@example.com").await,
        StatusCode::OK,
    )
    .await;
    let code = mailed(&rig, 1, "mallory@example.com").await;
    // A new user without a second factor: enrolling one is the next step.
    let step = page_body(answer(s, &browser, &screen, &code).await, StatusCode::OK).await;
    assert!(step.contains("Secure your account"), "{step}");
    assert!(step.contains("action=\"/login/mfa/enroll\""), "{step}");
    // No session yet, no login completed.
    let types: Vec<String> = log(s).await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["cls", "ss"]);
    let res = browser
        .get(AuthRequest::new("openid").url(s))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the login page again");
}

#[tokio::test]
async fn resends_are_limited() {
    let rig = rig("").await;
    let s = &rig.s;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = login_page(s, &browser, &req).await;
    let screen = page_body(
        ask_email_code(s, &browser, &page, "niaj@example.com").await,
        StatusCode::OK,
    )
    .await;
    let tx = hidden_input(&screen, "tx").unwrap();
    let resend = [
        ("tx", tx.as_str()),
        ("connection", "email"),
        ("email", "niaj@example.com"),
        ("resend", "1"),
    ];
    mailed(&rig, 1, "niaj@example.com").await;
    // Each mail waited for, so the third holds the last code.
    for n in 2..=3 {
        let again = page_body(
            post_form(s, &browser, "/login/passwordless", &resend).await,
            StatusCode::OK,
        )
        .await;
        assert!(
            again.contains("<p class=\"muted\" role=\"status\" id=\"passwordless-notice\">A new code has been sent.</p>"),
            "{again}"
        );
        mailed(&rig, n, "niaj@example.com").await;
    }
    let code = mailed(&rig, 3, "niaj@example.com").await;
    // The fourth in five minutes: refused, the screen stays for the last code.
    let res = post_form(s, &browser, "/login/passwordless", &resend).await;
    assert!(res.headers().contains_key("retry-after"));
    let limited = page_body(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(
        limited.contains("Too many codes were requested. Please try again later."),
        "{limited}"
    );
    assert_eq!(rig.mail.messages().await.len(), 3);
    signed_in(s, &req, answer(s, &browser, &limited, &code).await).await;
}

#[tokio::test]
async fn an_sms_code_through_the_page() {
    let rig = rig("").await;
    let s = &rig.s;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = login_page(s, &browser, &req).await;
    let tx = hidden_input(&page, "tx").unwrap();
    let res = post_form(
        s,
        &browser,
        "/login/passwordless",
        &[
            ("tx", &tx),
            ("connection", "sms"),
            ("phone_number", "+1 555 000 3333"),
        ],
    )
    .await;
    let screen = page_body(res, StatusCode::OK).await;
    assert!(
        screen.contains(
            "sent a text message to: <strong id=\"passwordless-to\">+15550003333</strong>"
        ),
        "{screen}"
    );
    assert!(
        screen.contains("<label for=\"code\">Enter the 6-digit code</label>"),
        "{screen}"
    );
    let code = texted(&rig, 1, "+15550003333").await;
    let id = signed_in(s, &req, answer(s, &browser, &screen, &code).await).await;
    assert!(id["sub"].as_str().unwrap().starts_with("sms|"), "{id}");
    let types: Vec<String> = log(s).await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["cs", "ss", "s", "seacft"]);
}

#[tokio::test]
async fn bad_addresses_and_connections_are_refused_on_the_form() {
    let rig = rig("").await;
    let s = &rig.s;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = login_page(s, &browser, &req).await;
    let refused = page_body(
        ask_email_code(s, &browser, &page, "not-an-address").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        refused.contains(
            "aria-invalid=\"true\" aria-describedby=\"passwordless-email-error\" value=\"not-an-address\""
        ),
        "{refused}"
    );
    assert!(
        refused.contains("id=\"passwordless-email-error\">Email is not valid.</p>"),
        "{refused}"
    );
    let tx = hidden_input(&page, "tx").unwrap();
    let res = post_form(
        s,
        &browser,
        "/login/passwordless",
        &[
            ("tx", &tx),
            ("connection", "sms"),
            ("phone_number", "5550003333"),
        ],
    )
    .await;
    let refused = page_body(res, StatusCode::BAD_REQUEST).await;
    assert!(
        refused.contains("aria-describedby=\"passwordless-sms-error\""),
        "{refused}"
    );
    // A database connection, or one that does not exist: not a way in here.
    for connection in ["Username-Password-Authentication", "nope"] {
        let res = post_form(
            s,
            &browser,
            "/login/passwordless",
            &[
                ("tx", &tx),
                ("connection", connection),
                ("email", "oscar@example.com"),
            ],
        )
        .await;
        let page = page_body(res, StatusCode::OK).await;
        assert!(
            page.contains("Logging in with that provider is not available."),
            "{page}"
        );
    }
    // A form without its fields, and a transaction too long to be one.
    let res = post_form(s, &browser, "/login/passwordless", &[("tx", &tx)]).await;
    page_body(res, StatusCode::BAD_REQUEST).await;
    let long = "x".repeat(500);
    let res = post_form(
        s,
        &browser,
        "/login/passwordless/verify",
        &[
            ("tx", &long),
            ("connection", "email"),
            ("username", "a@b.c"),
            ("code", "1"),
        ],
    )
    .await;
    page_body(res, StatusCode::BAD_REQUEST).await;
    assert!(rig.mail.messages().await.is_empty());
    assert!(log(s).await.is_empty());
}

#[tokio::test]
async fn the_screens_speak_the_logins_language() {
    let rig = rig("").await;
    let s = &rig.s;
    let browser = s.browser();
    let req = AuthRequest::new("openid").param("ui_locales", "fr");
    let page = login_page(s, &browser, &req).await;
    assert!(
        page.contains(">Recevoir un code par e-mail</button>"),
        "{page}"
    );
    let screen = page_body(
        ask_email_code(s, &browser, &page, "peggy@example.com").await,
        StatusCode::OK,
    )
    .await;
    assert!(screen.contains("<html lang=\"fr\">"), "{screen}");
    assert!(
        screen.contains("<h1>Vérifiez votre identité</h1>"),
        "{screen}"
    );
    let code = mailed(&rig, 1, "peggy@example.com").await;
    let refused = page_body(
        answer(s, &browser, &screen, &wrong_code(&code)).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        refused.contains("Le code saisi n&#x27;est pas valide"),
        "{refused}"
    );
}

/// `connection=email` on `/authorize` opens that connection's page alone,
/// as Universal Login does; one the application may not use is refused.
#[tokio::test]
async fn authorize_with_a_passwordless_connection_opens_its_page_alone() {
    let rig = rig("").await;
    let s = &rig.s;
    let browser = s.browser();
    let req = AuthRequest::new("openid email").param("connection", "email");
    let page = login_page(s, &browser, &req).await;
    assert!(page.contains("id=\"passwordless-email\""), "{page}");
    assert!(!page.contains("name=\"password\""), "{page}");
    assert!(!page.contains("id=\"passwordless-sms\""), "{page}");
    assert!(!page.contains("id=\"forgot-password\""), "{page}");
    assert!(!page.contains("id=\"passkey-login\""), "{page}");
    // A refused address keeps the page to that connection.
    let tx = hidden_input(&page, "tx").unwrap();
    let again = page_body(
        post_form(
            s,
            &browser,
            "/login/passwordless",
            &[
                ("tx", &tx),
                ("connection", "email"),
                ("email", "not-an-address"),
            ],
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(again.contains("aria-invalid=\"true\""), "{again}");
    assert!(!again.contains("name=\"password\""), "{again}");
    let screen = page_body(
        ask_email_code(s, &browser, &page, "dana@example.com").await,
        StatusCode::OK,
    )
    .await;
    let code = mailed(&rig, 1, "dana@example.com").await;
    let id = signed_in(s, &req, answer(s, &browser, &screen, &code).await).await;
    assert_eq!(id["email"], "dana@example.com");

    // The sms connection is not the web client's: refused as an unknown one.
    let mut web = AuthRequest::new("openid").param("connection", "sms");
    web.client_id = "web";
    web.redirect_uri = "https://web.acme.test/callback".into();
    let res = s.browser().get(web.url(s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
}
