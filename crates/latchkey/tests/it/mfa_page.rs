//! The hosted login page's second step: challenges with each kind of factor
//! (TOTP, recovery code, a code by SMS, WebAuthn keys), five wrong codes,
//! replays, step-up from a session (`acr_values`, a stricter client), the
//! Default Policy window through the page, and enrolling a first factor at
//! login (TOTP, a security key, a platform key) with the recovery code shown
//! once.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::authenticator::SoftAuthenticator;
use crate::mfa_api::{ALWAYS, Enrolled, events, server_with, six_digits, tenant};
use crate::sms_receiver::SmsReceiver;
use crate::smtp::SmtpServer;
use crate::support::*;

const MULTI_FACTOR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
/// A user of the page's connection without any second factor.
const CAROL: &str = "carol@example.com";
const CAROL_PASSWORD: &str = "C4rol-has-a-long-password";

/// The MFA tests' tenant with Carol added.
fn page_tenant(port: u16, extra: &str) -> String {
    tenant(port, extra).replace(
        "  - { email: bob@example.com",
        &format!(
            "  - {{ email: {CAROL}, password: \"{CAROL_PASSWORD}\", connection: Username-Password-Authentication, \
             user_id: \"auth0|carol\" }}\n  - {{ email: bob@example.com"
        ),
    )
}

/// `server_with`, Carol included.
async fn server(extra: &str) -> (TestServer, Enrolled) {
    let (s, enrolled) = server_with(extra).await;
    apply(&s, &page_tenant(s.port, extra)).await;
    (s, enrolled)
}

async fn apply(s: &TestServer, text: &str) {
    latchkey::tenant::apply::apply_text(&s.state, text)
        .await
        .unwrap();
}

/// A page's body, after checking it is a 200 page.
async fn html(res: reqwest::Response) -> String {
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

async fn post(
    s: &TestServer,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser.post(s.url(path)).form(form).send().await.unwrap()
}

/// Password on the page, for `user`; the second step's page.
async fn second_step(
    s: &TestServer,
    browser: &reqwest::Client,
    req: &AuthRequest,
    user: (&str, &str),
) -> String {
    let page = html(login_through_page(s, browser, req, user.0, user.1).await).await;
    assert!(hidden_input(&page, "tx").is_some(), "{page}");
    page
}

/// The code in a redirect to the app, exchanged: the token response.
async fn tokens(s: &TestServer, req: &AuthRequest, res: reqwest::Response) -> Value {
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    let location = location(&res);
    let code = query_param(&location, "code").unwrap_or_else(|| panic!("{location}"));
    let (status, body) = exchange(s, req, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn id_claims(body: &Value) -> Value {
    claims(body["id_token"].as_str().unwrap())
}

async fn answer(
    s: &TestServer,
    browser: &reqwest::Client,
    page: &str,
    code: &str,
) -> reqwest::Response {
    let tx = hidden_input(page, "tx").unwrap();
    let method = hidden_input(page, "method").unwrap();
    let oob = hidden_input(page, "oob_code").unwrap_or_default();
    post(
        s,
        browser,
        "/login/mfa/verify",
        &[
            ("tx", &tx),
            ("method", &method),
            ("code", code),
            ("oob_code", &oob),
        ],
    )
    .await
}

fn wrong_code(right: &str) -> &'static str {
    if right == "000000" {
        "000001"
    } else {
        "000000"
    }
}

#[tokio::test]
async fn password_then_a_totp_code_on_the_page() {
    let (s, enrolled) = server(ALWAYS).await;
    let browser = s.browser();
    let req = AuthRequest::new("openid offline_access");
    let page = second_step(&s, &browser, &req, (ALICE, ALICE_PASSWORD)).await;
    assert!(page.contains("authenticator app"), "{page}");
    assert!(hidden_input(&page, "method").unwrap().starts_with("totp|"));
    // No session yet: the password alone signed nobody in.
    let silent = AuthRequest::new("openid").param("prompt", "none");
    let res = browser.get(silent.url(&s)).send().await.unwrap();
    assert_eq!(
        query_param(&location(&res), "error").as_deref(),
        Some("login_required")
    );

    let right = totp_now(&enrolled.totp_secret, s.clock_now());
    let again = html(answer(&s, &browser, &page, wrong_code(&right)).await).await;
    assert!(again.contains("4 attempts left"), "{again}");
    let res = answer(&s, &browser, &again, &right).await;
    let body = tokens(&s, &req, res).await;
    let id = id_claims(&body);
    assert_eq!(id["amr"], json!(["pwd", "mfa", "otp"]));
    assert_eq!(id["acr"], MULTI_FACTOR);
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["amr"], json!(["pwd", "mfa", "otp"]));
    let logged = events(&s).await;
    assert!(logged.contains(&"gd_auth_failed".to_string()), "{logged:?}");
    assert!(
        logged.contains(&"gd_auth_succeed".to_string()),
        "{logged:?}"
    );

    // The same answer again: the step is over, nothing more is issued.
    let res = answer(&s, &browser, &page, &right).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // The session carries both factors: single sign-on needs no new challenge.
    let res = browser.get(silent.url(&s)).send().await.unwrap();
    assert!(
        query_param(&location(&res), "code").is_some(),
        "{}",
        location(&res)
    );
    // The refresh token keeps the amr.
    let (status, refreshed) = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(id_claims(&refreshed)["amr"], json!(["pwd", "mfa", "otp"]));

    // max_age: a session older than asked for logs in again, both factors.
    s.clock.advance(61);
    let fresh = AuthRequest::new("openid").param("max_age", "60");
    let page = second_step(&s, &browser, &fresh, (ALICE, ALICE_PASSWORD)).await;
    let right = totp_now(&enrolled.totp_secret, s.clock_now());
    let body = tokens(&s, &fresh, answer(&s, &browser, &page, &right).await).await;
    let id = id_claims(&body);
    assert_eq!(id["auth_time"], json!(s.clock_now()));
    assert_eq!(id["amr"], json!(["pwd", "mfa", "otp"]));
}

#[tokio::test]
async fn five_wrong_codes_end_the_login_and_another_browser_cannot_answer() {
    let (s, enrolled) = server(ALWAYS).await;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let mut page = second_step(&s, &browser, &req, (ALICE, ALICE_PASSWORD)).await;
    let right = totp_now(&enrolled.totp_secret, s.clock_now());

    // The transaction without this browser's cookies is as good as unknown.
    let stranger = s.browser();
    let res = answer(&s, &stranger, &page, &right).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    for left in (1..=4).rev() {
        page = html(answer(&s, &browser, &page, wrong_code(&right)).await).await;
        assert!(page.contains(&format!("{left} attempt")), "{page}");
    }
    let res = answer(&s, &browser, &page, wrong_code(&right)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let text = res.text().await.unwrap();
    assert!(text.contains("start again"), "{text}");
    // Even the right code is too late now.
    let res = answer(&s, &browser, &page, &right).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_second_step_expires_with_its_token() {
    let (s, enrolled) = server(ALWAYS).await;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = second_step(&s, &browser, &req, (ALICE, ALICE_PASSWORD)).await;
    s.clock.advance(601);
    let right = totp_now(&enrolled.totp_secret, s.clock_now());
    let res = answer(&s, &browser, &page, &right).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_recovery_code_on_the_page_is_replaced_and_shown_once() {
    let (s, enrolled) = server(ALWAYS).await;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = second_step(&s, &browser, &req, (ALICE, ALICE_PASSWORD)).await;
    // Another method: the page lists the recovery code.
    let methods = s
        .state
        .store
        .methods(&tenant_id(&s).await, &alice_id(&s).await)
        .await
        .unwrap();
    let recovery = methods
        .iter()
        .find(|m| m.method_type == latchkey::tenant::FactorType::RecoveryCode)
        .unwrap();
    assert!(page.contains(&recovery.id), "{page}");
    let tx = hidden_input(&page, "tx").unwrap();
    let page = html(
        post(
            &s,
            &browser,
            "/login/mfa",
            &[("tx", &tx), ("method", &recovery.id)],
        )
        .await,
    )
    .await;
    assert!(page.contains("recovery code"), "{page}");
    let shown = html(answer(&s, &browser, &page, &enrolled.recovery_code).await).await;
    let fresh = shown
        .split("id=\"recovery-code\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_string();
    assert_ne!(fresh, enrolled.recovery_code);
    assert!(
        events(&s)
            .await
            .contains(&"gd_recovery_succeed".to_string())
    );
    // Continue: the code goes back to the app.
    let res = post(&s, &browser, "/login/continue", &[("tx", &tx)]).await;
    let body = tokens(&s, &req, res).await;
    assert_eq!(id_claims(&body)["amr"], json!(["pwd", "mfa"]));

    // The old code is spent, the new one works once.
    let other = s.browser();
    let page = second_step(&s, &other, &req, (ALICE, ALICE_PASSWORD)).await;
    let tx = hidden_input(&page, "tx").unwrap();
    let page = html(
        post(
            &s,
            &other,
            "/login/mfa",
            &[("tx", &tx), ("method", &recovery_id(&s).await)],
        )
        .await,
    )
    .await;
    let again = html(answer(&s, &other, &page, &enrolled.recovery_code).await).await;
    assert!(again.contains("not right"), "{again}");
    let shown = html(answer(&s, &other, &again, &fresh).await).await;
    assert!(shown.contains("id=\"recovery-code\""), "{shown}");
}

async fn tenant_id(s: &TestServer) -> String {
    s.state
        .store
        .tenant_by_name("acme")
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn alice_id(s: &TestServer) -> String {
    let tid = tenant_id(s).await;
    s.state
        .store
        .user_by_email(&tid, "Username-Password-Authentication", ALICE)
        .await
        .unwrap()
        .unwrap()
        .user_id
}

async fn recovery_id(s: &TestServer) -> String {
    let methods = s
        .state
        .store
        .methods(&tenant_id(s).await, &alice_id(s).await)
        .await
        .unwrap();
    methods
        .iter()
        .find(|m| m.method_type == latchkey::tenant::FactorType::RecoveryCode)
        .unwrap()
        .id
        .clone()
}

#[tokio::test]
async fn a_code_by_sms_on_the_page() {
    let sms = SmsReceiver::start("AC123", TWILIO_TOKEN, WEBHOOK_SECRET).await;
    let s = TestServer::start().await;
    let with = |extra: &str| {
        tenant(s.port, extra).replace(
            "factors: [password, totp, recovery-code]",
            "factors: [password, totp, recovery-code, phone]",
        ) + &format!(
            "sms_provider: {{ twilio: {{ base_url: \"{}\", account_sid: AC123, auth_token_env: TWILIO_TOKEN, \
             from: \"+15550001111\" }} }}\n",
            sms.base_url
        )
    };
    latchkey::tenant::apply::apply_text(&s.state, &with(""))
        .await
        .unwrap();
    let token = s.me_token(ME_SCOPES).await;
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "phone", "phone_number": "+15551234567"})),
        )
        .await;
    let code = six_digits(&sms.wait_for(1).await[0].text);
    let v = s.me_verify_code(&token, &r, &code).await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    latchkey::tenant::apply::apply_text(&s.state, &with(ALWAYS))
        .await
        .unwrap();

    let browser = s.browser();
    let req = AuthRequest::new("openid");
    // The phone is Alice's only factor: its code is sent with the page.
    let page = second_step(&s, &browser, &req, (ALICE, ALICE_PASSWORD)).await;
    assert!(page.contains("+*******4567"), "{page}");
    let sent = sms.wait_for(2).await[1].clone();
    let code = six_digits(&sent.text);
    let again = html(answer(&s, &browser, &page, wrong_code(&code)).await).await;
    assert!(again.contains("4 attempts left"), "{again}");
    let body = tokens(&s, &req, answer(&s, &browser, &again, &code).await).await;
    assert_eq!(id_claims(&body)["amr"], json!(["pwd", "mfa", "sms"]));
}

#[tokio::test]
async fn step_up_from_a_session_and_acr_values() {
    let (s, enrolled) = server("").await;
    let browser = s.browser();
    // Signed in with the password while no second factor was needed.
    let code = code_for(&s, &browser, &AuthRequest::new("openid")).await;
    assert!(!code.is_empty());

    // An app asking for multi-factor assurance: the page asks only for the
    // second factor, the session's password counts as the first.
    let strict = AuthRequest::new("openid").param("acr_values", MULTI_FACTOR);
    let silent = AuthRequest::new("openid")
        .param("acr_values", MULTI_FACTOR)
        .param("prompt", "none");
    let res = browser.get(silent.url(&s)).send().await.unwrap();
    assert_eq!(
        query_param(&location(&res), "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(
        query_param(&location(&res), "error_description").as_deref(),
        Some("Multifactor authentication required")
    );
    let page = html(browser.get(strict.url(&s)).send().await.unwrap()).await;
    assert!(!page.contains("name=\"password\""), "{page}");
    let right = totp_now(&enrolled.totp_secret, s.clock_now());
    let body = tokens(&s, &strict, answer(&s, &browser, &page, &right).await).await;
    let id = id_claims(&body);
    assert_eq!(id["amr"], json!(["pwd", "mfa", "otp"]));
    assert_eq!(id["acr"], MULTI_FACTOR);
    // From now on the session is multi-factor.
    let res = browser.get(silent.url(&s)).send().await.unwrap();
    assert!(query_param(&location(&res), "code").is_some());

    // A stricter client for a password-only session: stepped up too.
    let other = s.browser();
    code_for(&s, &other, &AuthRequest::new("openid")).await;
    apply(&s, &page_tenant(s.port, ALWAYS)).await;
    s.clock.advance(30);
    let page = html(
        other
            .get(AuthRequest::new("openid").url(&s))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(page.contains("authenticator app"), "{page}");
}

#[tokio::test]
async fn the_default_policy_through_the_page() {
    let (s, enrolled) = server("").await;
    let text = page_tenant(s.port, "").replace("require_2fa: false", "require_2fa: true");
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let browser = s.browser();
    // Another API: the password is enough.
    let api = AuthRequest::new("openid").audience(API);
    let res = login_through_page(&s, &browser, &api, ALICE, ALICE_PASSWORD).await;
    assert!(query_param(&location(&res), "code").is_some());
    // My Account: Alice has a factor, so she is challenged.
    let me = || AuthRequest::new("openid").audience(&s.my_account_audience());
    let req = me();
    let page = html(browser.get(req.url(&s)).send().await.unwrap()).await;
    let right = totp_now(&enrolled.totp_secret, s.clock_now());
    let body = tokens(&s, &req, answer(&s, &browser, &page, &right).await).await;
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa", "otp"])
    );

    // Within the window, silently; after it, the policy's error, and
    // interactively the whole login again.
    s.clock.advance(600);
    let silent = || me().param("prompt", "none");
    let res = browser.get(silent().url(&s)).send().await.unwrap();
    assert!(query_param(&location(&res), "code").is_some());
    s.clock.advance(301);
    let res = browser.get(silent().url(&s)).send().await.unwrap();
    assert_eq!(
        query_param(&location(&res), "error").as_deref(),
        Some("unmet_authentication_requirements")
    );
    // Interactively, the session still stands for the password: the page
    // asks for the second factor alone.
    let req = me();
    let page = html(browser.get(req.url(&s)).send().await.unwrap()).await;
    assert!(!page.contains("name=\"password\""), "{page}");
    let right = totp_now(&enrolled.totp_secret, s.clock_now());
    let body = tokens(&s, &req, answer(&s, &browser, &page, &right).await).await;
    let id = id_claims(&body);
    assert_eq!(id["amr"], json!(["pwd", "mfa", "otp"]));
    assert_eq!(id["auth_time"], json!(s.clock_now()));
    let res = browser.get(silent().url(&s)).send().await.unwrap();
    assert!(query_param(&location(&res), "code").is_some());

    // Carol has no factor: through at login, no enrollment forced on him.
    let bob = s.browser();
    let res = login_through_page(&s, &bob, &me(), CAROL, CAROL_PASSWORD).await;
    assert!(
        query_param(&location(&res), "code").is_some(),
        "{:?}",
        res.text().await
    );
    // After the window she cannot meet the policy silently; interactively she
    // logs in again with her password.
    s.clock.advance(901);
    let res = bob
        .get(me().param("prompt", "none").url(&s))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_param(&location(&res), "error").as_deref(),
        Some("unmet_authentication_requirements")
    );
    let page = html(bob.get(me().url(&s)).send().await.unwrap()).await;
    assert!(page.contains("name=\"password\""), "{page}");
}

/// The acme tenant with MFA always on and WebAuthn keys among its factors.
fn with_keys(port: u16) -> String {
    page_tenant(port, ALWAYS).replace(
        "factors: [password, totp, recovery-code]",
        "factors: [password, totp, recovery-code, webauthn-roaming, webauthn-platform]",
    )
}

#[tokio::test]
async fn a_first_factor_enrolled_at_login_totp_then_recovery_code() {
    let (s, enrolled) = server(ALWAYS).await;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = second_step(&s, &browser, &req, (CAROL, CAROL_PASSWORD)).await;
    assert!(page.contains("Secure your account"), "{page}");
    let tx = hidden_input(&page, "tx").unwrap();
    let page = html(
        post(
            &s,
            &browser,
            "/login/mfa/enroll",
            &[("tx", &tx), ("factor", "totp")],
        )
        .await,
    )
    .await;
    assert!(page.contains("<svg"), "a QR code: {page}");
    let secret = page
        .split("id=\"manual-code\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_string();
    let form = |code: &str| {
        vec![
            ("tx".to_string(), tx.clone()),
            ("factor".to_string(), "totp".to_string()),
            (
                "method_id".to_string(),
                hidden_input(&page, "method_id").unwrap(),
            ),
            (
                "auth_session".to_string(),
                hidden_input(&page, "auth_session").unwrap(),
            ),
            ("code".to_string(), code.to_string()),
        ]
    };
    let right = totp_now(&secret, s.clock_now());
    let res = browser
        .post(s.url("/login/mfa/enroll/verify"))
        .form(&form(wrong_code(&right)))
        .send()
        .await
        .unwrap();
    let again = html(res).await;
    assert!(again.contains("class=\"error\""), "{again}");
    // The code field is tied to the error.
    assert!(
        again.contains("aria-invalid=\"true\" aria-describedby=\"step-error\"")
            && again.contains("id=\"step-error\""),
        "{again}"
    );
    // A wrong first code keeps what to scan on the page, with its name.
    assert!(again.contains("<svg"), "the QR code again: {again}");
    assert!(
        again.contains(&format!("id=\"manual-code\">{secret}<")),
        "the same key again: {again}"
    );
    assert!(
        again.contains("role=\"img\" aria-label=\"QR code to scan with your authenticator app\""),
        "{again}"
    );
    let res = browser
        .post(s.url("/login/mfa/enroll/verify"))
        .form(&form(&right))
        .send()
        .await
        .unwrap();
    let shown = html(res).await;
    assert!(shown.contains("id=\"recovery-code\""), "{shown}");
    let res = post(&s, &browser, "/login/continue", &[("tx", &tx)]).await;
    let body = tokens(&s, &req, res).await;
    assert_eq!(id_claims(&body)["amr"], json!(["pwd", "mfa", "otp"]));

    // Carol now has TOTP and a recovery code; the next login challenges him.
    let other = s.browser();
    let page = second_step(&s, &other, &req, (CAROL, CAROL_PASSWORD)).await;
    assert!(page.contains("authenticator app"), "{page}");

    // Alice has factors: enrollment at login is closed to her (a stolen
    // password cannot add the thief's authenticator).
    let third = s.browser();
    let page = second_step(&s, &third, &req, (ALICE, ALICE_PASSWORD)).await;
    let tx = hidden_input(&page, "tx").unwrap();
    let refused = html(
        post(
            &s,
            &third,
            "/login/mfa/enroll",
            &[("tx", &tx), ("factor", "totp")],
        )
        .await,
    )
    .await;
    assert!(
        refused.contains("You have a second factor already"),
        "{refused}"
    );
    let res = post(
        &s,
        &third,
        "/login/mfa/enroll/key/challenge",
        &[("tx", &tx), ("factor", "webauthn-roaming")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let _ = enrolled;
}

async fn key_login(
    s: &TestServer,
    browser: &reqwest::Client,
    key: &SoftAuthenticator,
    req: &AuthRequest,
    kind: &str,
) -> reqwest::Response {
    let page = second_step(s, browser, req, (CAROL, CAROL_PASSWORD)).await;
    assert!(page.contains(&format!("data-kind=\"{kind}\"")), "{page}");
    let tx = hidden_input(&page, "tx").unwrap();
    let options: Value = post(
        s,
        browser,
        "/login/mfa/key/challenge",
        &[("tx", &tx), ("kind", kind)],
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        !options["options"]["allowCredentials"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let credential = key
        .authenticate(&s.base, &options["options"])
        .await
        .unwrap();
    post(
        s,
        browser,
        "/login/mfa/key",
        &[
            ("tx", &tx),
            ("auth_session", options["auth_session"].as_str().unwrap()),
            ("credential", &credential.to_string()),
        ],
    )
    .await
}

async fn enroll_key(s: &TestServer, key: &SoftAuthenticator, kind: &str) -> Value {
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = second_step(s, &browser, &req, (CAROL, CAROL_PASSWORD)).await;
    assert!(page.contains(&format!("enroll-{kind}")), "{page}");
    let tx = hidden_input(&page, "tx").unwrap();
    let page = html(
        post(
            s,
            &browser,
            "/login/mfa/enroll",
            &[("tx", &tx), ("factor", kind)],
        )
        .await,
    )
    .await;
    assert!(page.contains("key-button"), "{page}");
    let started: Value = post(
        s,
        &browser,
        "/login/mfa/enroll/key/challenge",
        &[("tx", &tx), ("factor", kind)],
    )
    .await
    .json()
    .await
    .unwrap();
    if kind == "webauthn-roaming" {
        // Browsers refuse credProtect "userVerificationRequired" with user
        // verification only preferred: it is not asked for.
        let ext = &started["options"]["extensions"];
        assert!(ext.get("credentialProtectionPolicy").is_none(), "{ext}");
        assert_eq!(
            started["options"]["authenticatorSelection"]["userVerification"],
            "preferred"
        );
    }
    let expected = if kind == "webauthn-platform" {
        "platform"
    } else {
        "cross-platform"
    };
    assert_eq!(
        started["options"]["authenticatorSelection"]["authenticatorAttachment"],
        expected
    );
    let credential = key.register(&s.base, &started["options"]).await.unwrap();
    let res = post(
        s,
        &browser,
        "/login/mfa/enroll/verify",
        &[
            ("tx", &tx),
            ("factor", kind),
            ("method_id", started["method_id"].as_str().unwrap()),
            ("auth_session", started["auth_session"].as_str().unwrap()),
            ("credential", &credential.to_string()),
        ],
    )
    .await;
    let shown = html(res).await;
    assert!(shown.contains("id=\"recovery-code\""), "{shown}");
    let res = post(s, &browser, "/login/continue", &[("tx", &tx)]).await;
    tokens(s, &req, res).await
}

#[tokio::test]
async fn a_security_key_enrolled_at_login_then_used() {
    let s = TestServer::start().await;
    latchkey::tenant::apply::apply_text(&s.state, &with_keys(s.port))
        .await
        .unwrap();
    let key = SoftAuthenticator::new();
    let body = enroll_key(&s, &key, "webauthn-roaming").await;
    assert_eq!(id_claims(&body)["amr"], json!(["pwd", "mfa", "hwk"]));

    // My Account lists it, with its credential (a token got with the
    // policy off for a moment: the password grant cannot use the key).
    let off = with_keys(s.port).replace(ALWAYS, "");
    latchkey::tenant::apply::apply_text(&s.state, &off)
        .await
        .unwrap();
    let token = s.me_token_for(CAROL, CAROL_PASSWORD, None, ME_SCOPES).await;
    latchkey::tenant::apply::apply_text(&s.state, &with_keys(s.port))
        .await
        .unwrap();
    let list = s
        .me("GET", "/authentication-methods", Some(&token), None)
        .await;
    let keys: Vec<&Value> = list.body["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "webauthn-roaming")
        .collect();
    assert_eq!(keys.len(), 1, "{}", list.body);
    assert!(keys[0]["key_id"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(
        keys[0]["public_key"]
            .as_str()
            .is_some_and(|k| !k.is_empty())
    );
    assert_eq!(keys[0]["usage"], json!(["secondary"]));

    // The next login: password, then the key.
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let res = key_login(&s, &browser, &key, &req, "webauthn-roaming").await;
    let body = tokens(&s, &req, res).await;
    assert_eq!(id_claims(&body)["amr"], json!(["pwd", "mfa", "hwk"]));

    // An assertion answers only the challenge it signed, once.
    let browser = s.browser();
    let page = second_step(&s, &browser, &req, (CAROL, CAROL_PASSWORD)).await;
    let tx = hidden_input(&page, "tx").unwrap();
    let challenge = || {
        let (s, browser, tx) = (&s, &browser, tx.clone());
        async move {
            post(
                s,
                browser,
                "/login/mfa/key/challenge",
                &[("tx", &tx), ("kind", "webauthn-roaming")],
            )
            .await
            .json::<Value>()
            .await
            .unwrap()
        }
    };
    let (a, b) = (challenge().await, challenge().await);
    let signed_a = key.authenticate(&s.base, &a["options"]).await.unwrap();
    let submit = |session: String, credential: String| {
        let (s, browser, tx) = (&s, &browser, tx.clone());
        async move {
            post(
                s,
                browser,
                "/login/mfa/key",
                &[
                    ("tx", tx.as_str()),
                    ("auth_session", session.as_str()),
                    ("credential", credential.as_str()),
                ],
            )
            .await
        }
    };
    // A's signature presented for challenge B: refused, counted as a wrong answer.
    let res = submit(
        b["auth_session"].as_str().unwrap().into(),
        signed_a.to_string(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("could not be verified"));
    assert!(events(&s).await.contains(&"gd_auth_failed".to_string()));
    // For A: the login goes through.
    let res = submit(
        a["auth_session"].as_str().unwrap().into(),
        signed_a.to_string(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    // Replayed in another login (another browser): the challenge is spent,
    // and was that login's token's only.
    let other = s.browser();
    let page = second_step(&s, &other, &req, (CAROL, CAROL_PASSWORD)).await;
    let tx = hidden_input(&page, "tx").unwrap();
    let res = post(
        &s,
        &other,
        "/login/mfa/key",
        &[
            ("tx", tx.as_str()),
            ("auth_session", a["auth_session"].as_str().unwrap()),
            ("credential", &signed_a.to_string()),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_platform_key_enrolled_at_login_then_used() {
    let s = TestServer::start().await;
    latchkey::tenant::apply::apply_text(&s.state, &with_keys(s.port))
        .await
        .unwrap();
    let key = SoftAuthenticator::new();
    let body = enroll_key(&s, &key, "webauthn-platform").await;
    let amr = id_claims(&body)["amr"].clone();
    // The software authenticator's credentials are backup eligible (synced):
    // a software-held key.
    assert_eq!(amr, json!(["pwd", "mfa", "swk"]));
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let res = key_login(&s, &browser, &key, &req, "webauthn-platform").await;
    let body = tokens(&s, &req, res).await;
    assert_eq!(id_claims(&body)["amr"], amr);

    // A platform key is asked for with user verification required.
    let browser = s.browser();
    let page = second_step(&s, &browser, &req, (CAROL, CAROL_PASSWORD)).await;
    let tx = hidden_input(&page, "tx").unwrap();
    let options: Value = post(
        &s,
        &browser,
        "/login/mfa/key/challenge",
        &[("tx", &tx), ("kind", "webauthn-platform")],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(options["options"]["userVerification"], "required");
}

#[tokio::test]
async fn a_platform_key_without_user_verification_is_not_enrolled() {
    let s = TestServer::start().await;
    apply(&s, &with_keys(s.port)).await;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = second_step(&s, &browser, &req, (CAROL, CAROL_PASSWORD)).await;
    let tx = hidden_input(&page, "tx").unwrap();
    let started: Value = post(
        &s,
        &browser,
        "/login/mfa/enroll/key/challenge",
        &[("tx", &tx), ("factor", "webauthn-platform")],
    )
    .await
    .json()
    .await
    .unwrap();
    // The authenticator cannot verify the user; it answers with UV = 0.
    let credential = SoftAuthenticator::without_user_verification()
        .register(&s.base, &started["options"])
        .await
        .unwrap();
    let res = post(
        &s,
        &browser,
        "/login/mfa/enroll/verify",
        &[
            ("tx", &tx),
            ("factor", "webauthn-platform"),
            ("method_id", started["method_id"].as_str().unwrap()),
            ("auth_session", started["auth_session"].as_str().unwrap()),
            ("credential", &credential.to_string()),
        ],
    )
    .await;
    let page = html(res).await;
    assert!(page.contains("class=\"error\""), "{page}");
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let methods = s
        .state
        .store
        .methods(&tenant.id, "auth0|carol")
        .await
        .unwrap();
    assert!(methods.is_empty(), "{methods:?}");
}

#[tokio::test]
async fn a_user_without_factors_is_led_to_enroll_when_the_app_demands_mfa() {
    let (s, _): (TestServer, Enrolled) = server("").await;
    let browser = s.browser();
    let strict = AuthRequest::new("openid").param("acr_values", MULTI_FACTOR);
    let page = second_step(&s, &browser, &strict, (CAROL, CAROL_PASSWORD)).await;
    assert!(page.contains("Secure your account"), "{page}");
    assert!(page.contains("enroll-totp"), "{page}");
}

#[tokio::test]
async fn a_verified_email_is_a_factor_without_enrollment() {
    let mail = SmtpServer::start_with_auth("latchkey", SMTP_PASSWORD).await;
    let (s, _) = server("").await;
    let with = |extra: &str, carol_verified: bool| {
        let text = page_tenant(s.port, extra)
            .replace(
                "factors: [password, totp, recovery-code]",
                "factors: [password, totp, recovery-code, email]",
            )
            .replace(
                "user_id: \"auth0|carol\" }",
                &format!("user_id: \"auth0|carol\", email_verified: {carol_verified} }}"),
            );
        text + &format!(
            "email_provider: {{ smtp: {{ host: 127.0.0.1, port: {}, security: none, from: no-reply@acme.test, \
             username: latchkey, password_env: SMTP_PASSWORD }} }}\n",
            mail.port
        )
    };
    // The Default Policy: Carol has enrolled nothing, but her verified email
    // address is a factor, so she is challenged with it.
    apply(
        &s,
        &with("", true).replace("require_2fa: false", "require_2fa: true"),
    )
    .await;
    let browser = s.browser();
    let req = AuthRequest::new("openid").audience(&s.my_account_audience());
    let page = second_step(&s, &browser, &req, (CAROL, CAROL_PASSWORD)).await;
    assert!(page.contains("c***@example.com"), "{page}");
    let sent = mail.wait_for(1).await[0].clone();
    assert_eq!(sent.to, [CAROL]);
    let code = six_digits(&sent.text());
    let body = tokens(&s, &req, answer(&s, &browser, &page, &code).await).await;
    assert_eq!(id_claims(&body)["amr"], json!(["pwd", "mfa"]));
    // The MFA API lists it too.
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", CAROL),
            ("password", CAROL_PASSWORD),
            ("audience", &s.my_account_audience()),
            ("scope", "openid"),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["mfa_requirements"],
        json!({"challenge": [{"type": "oob"}]})
    );

    // Unverified, she has no factor and the policy lets her through.
    apply(
        &s,
        &with("", false).replace("require_2fa: false", "require_2fa: true"),
    )
    .await;
    let res = login_through_page(&s, &s.browser(), &req, CAROL, CAROL_PASSWORD).await;
    assert!(
        query_param(&location(&res), "code").is_some(),
        "{:?}",
        res.text().await
    );
}

/// "Not you?" on the second step: the step is given up and the login form
/// comes back for the same request, where someone else logs in; the step
/// given up answers nothing more.
#[tokio::test]
async fn not_you_gives_the_step_up_and_shows_the_login_form_again() {
    let (s, enrolled) = server(ALWAYS).await;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = second_step(&s, &browser, &req, (ALICE, ALICE_PASSWORD)).await;
    assert!(page.contains("id=\"not-you\""), "{page}");
    let tx = hidden_input(&page, "tx").unwrap();

    let res = post(&s, &browser, "/login/mfa/restart", &[("tx", &tx)]).await;
    let cleared = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().contains("Max-Age=0"));
    assert!(cleared, "the step's cookie is cleared");
    let form = html(res).await;
    assert!(form.contains("action=\"/login\""), "{form}");
    assert_eq!(hidden_input(&form, "tx").as_deref(), Some(tx.as_str()));

    // Alice's step is over.
    let right = totp_now(&enrolled.totp_secret, s.clock_now());
    let res = answer(&s, &browser, &page, &right).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("has expired"));

    // Carol logs in on the same request, and is asked to secure her account.
    let page = second_step(&s, &browser, &req, (CAROL, CAROL_PASSWORD)).await;
    assert!(page.contains("Secure your account"), "{page}");

    // Without the login's own cookie, nothing is given up.
    let stranger = s.browser();
    let res = post(&s, &stranger, "/login/mfa/restart", &[("tx", &tx)]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

/// "Not you?" ends the step on the server: its cookie, kept by someone
/// and sent again by hand with the right code, opens nothing.
#[tokio::test]
async fn the_step_given_up_is_over_on_the_server_not_just_in_the_browser() {
    let (s, enrolled) = server(ALWAYS).await;
    let (browser, jar) = s.browser_with_jar();
    let req = AuthRequest::new("openid");
    let page = second_step(&s, &browser, &req, (ALICE, ALICE_PASSWORD)).await;
    let url: reqwest::Url = s.url("/login/mfa/verify").parse().unwrap();
    use reqwest::cookie::CookieStore;
    let kept = jar.cookies(&url).unwrap().to_str().unwrap().to_string();
    assert!(kept.contains("latchkey_mfa="), "{kept}");
    let tx = hidden_input(&page, "tx").unwrap();
    let res = post(&s, &browser, "/login/mfa/restart", &[("tx", &tx)]).await;
    assert_eq!(res.status(), StatusCode::OK);

    let right = totp_now(&enrolled.totp_secret, s.clock_now());
    let method = hidden_input(&page, "method").unwrap();
    let res = s
        .http()
        .post(url)
        .header("cookie", &kept)
        .form(&[
            ("tx", tx.as_str()),
            ("method", &method),
            ("code", &right),
            ("oob_code", ""),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Not the page of a missing cookie ("has expired"): the step itself is
    // gone on the server.
    assert!(body.contains("can no longer be completed"), "{body}");
}

/// Progressive enrollment after a second factor: a password login answered
/// with a TOTP code is offered a passkey too, then goes on to the app with
/// both factors.
#[tokio::test]
async fn a_passkey_is_offered_after_the_second_factor_too() {
    let (s, enrolled) = server(ALWAYS).await;
    let text = page_tenant(s.port, ALWAYS)
        .replace(
            "factors: [password, totp, recovery-code]",
            "factors: [password, passkey, totp, recovery-code]",
        )
        .replace(
            "tenant: { name: acme,",
            "tenant: { passkeys: { progressive_enrollment: true }, name: acme,",
        );
    assert!(text.contains("progressive_enrollment: true"));
    apply(&s, &text).await;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = second_step(&s, &browser, &req, (ALICE, ALICE_PASSWORD)).await;
    let right = totp_now(&enrolled.totp_secret, s.clock_now());
    let offer = html(answer(&s, &browser, &page, &right).await).await;
    assert!(offer.contains("id=\"passkey-create\""), "{offer}");
    let tx = hidden_input(&offer, "tx").unwrap();
    let res = post(&s, &browser, "/login/continue", &[("tx", &tx)]).await;
    let body = tokens(&s, &req, res).await;
    assert_eq!(id_claims(&body)["amr"], json!(["pwd", "mfa", "otp"]));
}

/// A login with a second factor is logged (`s`) when it completes, after
/// the second factor, once; the password alone logs no success.
#[tokio::test]
async fn a_page_login_is_logged_after_its_second_factor() {
    let (s, enrolled) = server(ALWAYS).await;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    // The setup's own logins (its My Account token) are in the log already.
    let successes = |log: Vec<String>| log.iter().filter(|e| *e == "s").count();
    let before = successes(events(&s).await);
    let page = second_step(&s, &browser, &req, (ALICE, ALICE_PASSWORD)).await;
    assert_eq!(successes(events(&s).await), before);
    let right = totp_now(&enrolled.totp_secret, s.clock_now());
    let again = html(answer(&s, &browser, &page, wrong_code(&right)).await).await;
    assert_eq!(successes(events(&s).await), before);
    let res = answer(&s, &browser, &again, &right).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let logged = s.state.store.audit_events(&tenant.id, 100).await.unwrap();
    let successes: Vec<_> = logged
        .iter()
        .filter(|e| e.event_type == "s")
        .skip(before)
        .collect();
    assert_eq!(successes.len(), 1, "{logged:?}");
    let e = successes[0];
    assert_eq!(e.user_id.as_deref(), Some("auth0|alice"));
    assert_eq!(e.client_id.as_deref(), Some("spa"));
    assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(e.details["connection"], "Username-Password-Authentication");
    assert_eq!(e.details["client_name"], "Demo SPA");
}
