//! Second factors in embedded (password-grant) logins through the MFA API:
//! `mfa_required`, `GET /mfa/authenticators`, the mfa-otp and
//! mfa-recovery-code grants; the tenant's policy, a client's override, and
//! the My Account API's Default Policy at login.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::sms_receiver::SmsReceiver;
use crate::smtp::SmtpServer;
use crate::support::*;

const MFA_OTP: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
const MFA_RECOVERY: &str = "http://auth0.com/oauth/grant-type/mfa-recovery-code";
const MFA_OOB: &str = "http://auth0.com/oauth/grant-type/mfa-oob";

/// The acme tenant with `extra` settings, the spa client allowed the MFA
/// grants (and the web client the OTP one, to try another client's token).
pub(crate) fn tenant(port: u16, extra: &str) -> String {
    acme(port)
        .replace(
            "\"http://auth0.com/oauth/grant-type/password-realm\"] }",
            &format!(
                "\"http://auth0.com/oauth/grant-type/password-realm\", \"{MFA_OTP}\", \"{MFA_RECOVERY}\", \"{MFA_OOB}\"] }}"
            ),
        )
        .replace(
            "grant_types: [authorization_code, refresh_token] }",
            &format!("grant_types: [authorization_code, refresh_token, \"{MFA_OTP}\"] }}"),
        )
        + extra
}

pub(crate) struct Enrolled {
    pub totp_secret: String,
    pub recovery_code: String,
}

/// Alice enrolls TOTP and a recovery code through My Account, then the
/// tenant gets `extra` (its MFA settings).
pub(crate) async fn server_with(extra: &str) -> (TestServer, Enrolled) {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "totp"})),
        )
        .await;
    let totp_secret = r.body["manual_input_code"].as_str().unwrap().to_string();
    let v = s
        .me(
            "POST",
            &format!("{}/verify", r.header("location").unwrap()),
            Some(&token),
            Some(json!({"auth_session": r.body["auth_session"],
                        "otp_code": totp_now(&totp_secret, s.clock_now())})),
        )
        .await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "recovery-code"})),
        )
        .await;
    let recovery_code = r.body["recovery_code"].as_str().unwrap().to_string();
    let v = s
        .me(
            "POST",
            &format!("{}/verify", r.header("location").unwrap()),
            Some(&token),
            Some(json!({"auth_session": r.body["auth_session"]})),
        )
        .await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    latchkey::tenant::apply::apply_text(&s.state, &tenant(s.port, extra))
        .await
        .unwrap();
    // The enrollment used this 30-second step's code.
    s.clock.advance(30);
    (
        s,
        Enrolled {
            totp_secret,
            recovery_code,
        },
    )
}

pub(crate) const ALWAYS: &str = "mfa: { policy: always }\n";

async fn password(
    s: &TestServer,
    user: (&str, &str),
    audience: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        (
            "grant_type",
            "http://auth0.com/oauth/grant-type/password-realm",
        ),
        ("client_id", "spa"),
        ("username", user.0),
        ("password", user.1),
        (
            "realm",
            if user.0 == ALICE {
                "Username-Password-Authentication"
            } else {
                "Partners"
            },
        ),
        ("scope", "openid offline_access"),
    ];
    if let Some(a) = audience {
        form.push(("audience", a));
    }
    s.token(&form).await
}

const ALICE_LOGIN: (&str, &str) = (ALICE, ALICE_PASSWORD);
pub(crate) const BOB_LOGIN: (&str, &str) = ("bob@example.com", "B0b-has-a-long-password");

/// A password login that must answer `mfa_required`; its `mfa_token`.
async fn mfa_token(s: &TestServer) -> String {
    let (status, body) = password(s, ALICE_LOGIN, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "mfa_required");
    body["mfa_token"].as_str().unwrap().to_string()
}

async fn otp(s: &TestServer, client: &str, token: &str, code: &str) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", MFA_OTP),
        ("client_id", client),
        ("mfa_token", token),
        ("otp", code),
    ];
    if client == "web" {
        form.push(("client_secret", "web-secret-value"));
    }
    s.token(&form).await
}

pub(crate) async fn events(s: &TestServer) -> Vec<String> {
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    s.state
        .store
        .audit_events(&tenant.id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

#[tokio::test]
async fn password_then_a_totp_code_through_the_mfa_api() {
    let (s, enrolled) = server_with(ALWAYS).await;
    let (status, body) = password(&s, ALICE_LOGIN, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "mfa_required");
    assert_eq!(
        body["error_description"],
        "Multifactor authentication required"
    );
    assert_eq!(
        body["mfa_requirements"],
        json!({"challenge": [{"type": "otp"}, {"type": "recovery-code"}]})
    );
    assert!(body.get("access_token").is_none());
    let token = body["mfa_token"].as_str().unwrap().to_string();

    // The authenticators, with the mfa_token as the bearer credential.
    let res = s
        .http()
        .get(s.url("/mfa/authenticators"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.unwrap();
    let kinds: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["authenticator_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 2, "{list}");
    assert!(kinds.contains(&"otp") && kinds.contains(&"recovery-code"));
    assert!(list[0]["id"].as_str().unwrap().contains("|dev_"));
    let res = s
        .http()
        .get(s.url("/mfa/authenticators"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Another client cannot spend it; a wrong code is invalid_grant.
    let code = totp_now(&enrolled.totp_secret, s.clock_now());
    let (status, body) = otp(&s, "web", &token, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant")),
        "{body}"
    );
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let (status, body) = otp(&s, "spa", &token, wrong).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    let (status, body) = otp(&s, "spa", &token, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["refresh_token"].is_string());
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], json!(["pwd", "mfa", "otp"]));
    assert_eq!(
        id["acr"],
        "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
    );
    assert_eq!(id["auth_time"], json!(s.clock_now()));
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa", "otp"])
    );

    // The token is spent; the code's step is spent for any new login too.
    let (status, _) = otp(&s, "spa", &token, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let again = mfa_token(&s).await;
    let (status, body) = otp(&s, "spa", &again, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "replayed code: {body}");
    s.clock.advance(30);
    let next = totp_now(&enrolled.totp_secret, s.clock_now());
    let (status, body) = otp(&s, "spa", &again, &next).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let log = events(&s).await;
    assert!(log.iter().any(|e| e == "gd_auth_succeed"), "{log:?}");
    assert!(log.iter().any(|e| e == "gd_auth_failed"), "{log:?}");
}

#[tokio::test]
async fn five_wrong_answers_end_the_mfa_token_and_it_expires() {
    let (s, enrolled) = server_with(ALWAYS).await;
    let token = mfa_token(&s).await;
    let code = totp_now(&enrolled.totp_secret, s.clock_now());
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..5 {
        let (status, _) = otp(&s, "spa", &token, wrong).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, body) = otp(&s, "spa", &token, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "dead after five: {body}");

    // Ten minutes to answer.
    let token = mfa_token(&s).await;
    s.clock.advance(601);
    let code = totp_now(&enrolled.totp_secret, s.clock_now());
    let (status, body) = otp(&s, "spa", &token, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "expired: {body}");
    let res = s
        .http()
        .get(s.url("/mfa/authenticators"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_recovery_code_logs_in_once_and_is_replaced() {
    let (s, enrolled) = server_with(ALWAYS).await;
    let recover = |token: String, code: String| {
        let s = &s;
        async move {
            s.token(&[
                ("grant_type", MFA_RECOVERY),
                ("client_id", "spa"),
                ("mfa_token", &token),
                ("recovery_code", &code),
            ])
            .await
        }
    };
    let (status, body) = recover(mfa_token(&s).await, "WRONGWRONGWRONGWRONGWRON".into()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Typed in lower case with dashes: still the code.
    let typed = enrolled
        .recovery_code
        .to_lowercase()
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("-");
    let (status, body) = recover(mfa_token(&s).await, typed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = body["recovery_code"].as_str().unwrap().to_string();
    assert_eq!(fresh.len(), 24);
    assert_ne!(fresh, enrolled.recovery_code);
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa"])
    );

    // The old code is gone, the new one works (once).
    let (status, _) = recover(mfa_token(&s).await, enrolled.recovery_code.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = recover(mfa_token(&s).await, fresh.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let methods = s
        .state
        .store
        .methods(&tenant.id, "auth0|alice")
        .await
        .unwrap();
    assert_eq!(
        methods
            .iter()
            .filter(|m| m.method_type == latchkey::tenant::FactorType::RecoveryCode)
            .count(),
        1
    );
    let log = events(&s).await;
    assert!(log.iter().any(|e| e == "gd_recovery_succeed"), "{log:?}");
    assert!(log.iter().any(|e| e == "gd_recovery_failed"), "{log:?}");
}

#[tokio::test]
async fn policies_the_clients_override_and_the_default_policy_at_login() {
    // Never (the default): the password is enough.
    let (s, _) = server_with("").await;
    let (status, body) = password(&s, ALICE_LOGIN, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], json!(["pwd"]));
    assert!(id.get("acr").is_none(), "{id}");

    // Always, but the spa client says never.
    let text = tenant(s.port, ALWAYS).replace(
        "client_id: spa, name: Demo SPA,",
        "client_id: spa, name: Demo SPA, mfa_policy: never,",
    );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    assert_eq!(password(&s, ALICE_LOGIN, None).await.0, StatusCode::OK);

    // Always, and Bob has no factor: he must enroll one.
    latchkey::tenant::apply::apply_text(&s.state, &tenant(s.port, ALWAYS))
        .await
        .unwrap();
    let (status, body) = password(&s, BOB_LOGIN, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["mfa_requirements"],
        json!({"enroll": [{"type": "otp"}]})
    );

    // The Default Policy: only the My Account audience needs the second
    // factor, and a user without one gets through.
    let text = tenant(s.port, "").replace("require_2fa: false", "require_2fa: true");
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let me = s.my_account_audience();
    let (status, body) = password(&s, ALICE_LOGIN, Some(API)).await;
    assert_eq!(status, StatusCode::OK, "another API: {body}");
    let (status, body) = password(&s, ALICE_LOGIN, Some(&me)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "mfa_required");
    let (status, body) = password(&s, BOB_LOGIN, Some(&me)).await;
    assert_eq!(status, StatusCode::OK, "no factor, no challenge: {body}");
}

#[tokio::test]
async fn one_mfa_token_answered_twice_at_once_gives_one_set_of_tokens() {
    let (s, enrolled) = server_with(ALWAYS).await;
    let token = mfa_token(&s).await;
    let code = totp_now(&enrolled.totp_secret, s.clock_now());
    let (a, b, c) = tokio::join!(
        otp(&s, "spa", &token, &code),
        otp(&s, "spa", &token, &code),
        otp(&s, "spa", &token, &code)
    );
    let ok = [a.0, b.0, c.0]
        .iter()
        .filter(|st| **st == StatusCode::OK)
        .count();
    assert_eq!(ok, 1, "{} {} {}", a.1, b.1, c.1);
}

#[tokio::test]
async fn the_default_policy_window_on_refresh_and_silent_login() {
    let (s, enrolled) = server_with("").await;
    let text = tenant(s.port, "").replace("require_2fa: false", "require_2fa: true");
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let me = s.my_account_audience();

    // Alice: password, then her TOTP code.
    let (status, body) = password(&s, ALICE_LOGIN, Some(&me)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let code = totp_now(&enrolled.totp_secret, s.clock_now());
    let (status, body) = otp(&s, "spa", body["mfa_token"].as_str().unwrap(), &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rt = body["refresh_token"].as_str().unwrap().to_string();

    // Within 15 minutes of the second factor: refreshed, no challenge.
    s.clock.advance(600);
    let (status, body) = s.refresh(&rt).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rt = body["refresh_token"].as_str().unwrap().to_string();

    // After: challenged again; the refresh token is not spent by asking.
    s.clock.advance(301);
    let (status, body) = s.refresh(&rt).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "mfa_required");
    assert_eq!(body["mfa_requirements"]["challenge"][0]["type"], "otp");
    let code = totp_now(&enrolled.totp_secret, s.clock_now());
    let (status, body) = otp(&s, "spa", body["mfa_token"].as_str().unwrap(), &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["amr"], json!(["pwd", "mfa", "otp"]));
    assert_eq!(
        at["aud"],
        json!([me.clone(), format!("{}userinfo", s.issuer)])
    );
    let fresh = body["refresh_token"].as_str().unwrap().to_string();
    let (status, body) = s.refresh(&fresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Bob has no factor: let in at login, refused after the window, and his
    // refresh token is dead from then on.
    let (status, body) = password(&s, BOB_LOGIN, Some(&me)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bob_rt = body["refresh_token"].as_str().unwrap().to_string();
    s.clock.advance(300);
    let (status, body) = s.refresh(&bob_rt).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bob_rt = body["refresh_token"].as_str().unwrap().to_string();
    s.clock.advance(601);
    let (status, body) = s.refresh(&bob_rt).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "unmet_authentication_requirements");
    let (status, body) = s.refresh(&bob_rt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant"))
    );

    // Silent login: Alice's session (password only, for another API) cannot
    // give a My Account token; after the window the error is the policy's.
    let browser = s.browser();
    let res = login_through_page(
        &s,
        &browser,
        &AuthRequest::new("openid").audience(API),
        ALICE,
        ALICE_PASSWORD,
    )
    .await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(query_param(&location, "code").is_some(), "{location}");
    let silent = || {
        AuthRequest::new("openid")
            .audience(&me)
            .param("prompt", "none")
    };
    let res = browser.get(silent().url(&s)).send().await.unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("login_required")
    );
    s.clock.advance(901);
    let res = browser.get(silent().url(&s)).send().await.unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("unmet_authentication_requirements"),
        "{location}"
    );
}

pub(crate) fn six_digits(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        .to_string()
}

#[tokio::test]
async fn email_and_sms_codes_through_mfa_challenge_and_the_oob_grant() {
    let mail = SmtpServer::start_with_auth("latchkey", SMTP_PASSWORD).await;
    let sms = SmsReceiver::start("AC123", TWILIO_TOKEN, WEBHOOK_SECRET).await;
    let s = TestServer::start().await;
    let with = |extra: &str| {
        tenant(s.port, extra).replace(
            "factors: [password, totp, recovery-code]",
            "factors: [password, totp, recovery-code, email, phone]",
        ) + &format!(
            "email_provider: {{ smtp: {{ host: 127.0.0.1, port: {}, security: none, from: no-reply@acme.test, \
             username: latchkey, password_env: SMTP_PASSWORD }} }}\n\
             sms_provider: {{ twilio: {{ base_url: \"{}\", account_sid: AC123, auth_token_env: TWILIO_TOKEN, \
             from: \"+15550001111\" }} }}\n",
            mail.port, sms.base_url
        )
    };
    latchkey::tenant::apply::apply_text(&s.state, &with(""))
        .await
        .unwrap();

    // Alice enrolls an email address and a phone number.
    let token = s.me_token(ME_SCOPES).await;
    let mut ids = Vec::new();
    for (n, body) in [
        json!({"type": "email", "email": "alice.codes@example.com"}),
        json!({"type": "phone", "phone_number": "+15551234567"}),
    ]
    .into_iter()
    .enumerate()
    {
        let r = s
            .me("POST", "/authentication-methods", Some(&token), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let code = if n == 0 {
            six_digits(&mail.wait_for(1).await[0].text())
        } else {
            six_digits(&sms.wait_for(1).await[0].text)
        };
        let v = s.me_verify_code(&token, &r, &code).await;
        assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
        ids.push(v.body["id"].as_str().unwrap().to_string());
    }
    latchkey::tenant::apply::apply_text(&s.state, &with(ALWAYS))
        .await
        .unwrap();

    let (status, body) = password(&s, ALICE_LOGIN, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["mfa_requirements"],
        json!({"challenge": [{"type": "oob"}]})
    );
    let token = body["mfa_token"].as_str().unwrap().to_string();
    let list: Value = s
        .http()
        .get(s.url("/mfa/authenticators"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list,
        json!([
            {"id": ids[0], "authenticator_type": "oob", "active": true, "oob_channel": "email",
             "name": "a***@example.com"},
            {"id": ids[1], "authenticator_type": "oob", "active": true, "oob_channel": "sms",
             "name": "+*******4567"},
            // Her verified address counts as an email factor of its own.
            {"id": "email|verified", "authenticator_type": "oob", "active": true, "oob_channel": "email",
             "name": "a***@example.com"},
        ])
    );

    let challenge = |token: String, id: String| {
        let s = &s;
        async move {
            let res = s
                .http()
                .post(s.url("/mfa/challenge"))
                .form(&[
                    ("client_id", "spa"),
                    ("mfa_token", token.as_str()),
                    ("challenge_type", "oob"),
                    ("authenticator_id", id.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let oob = |token: String, oob_code: String, code: String| {
        let s = &s;
        async move {
            s.token(&[
                ("grant_type", MFA_OOB),
                ("client_id", "spa"),
                ("mfa_token", &token),
                ("oob_code", &oob_code),
                ("binding_code", &code),
            ])
            .await
        }
    };

    // By email.
    let (status, body) = challenge(token.clone(), ids[0].clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["challenge_type"], "oob");
    assert_eq!(body["binding_method"], "prompt");
    let oob_code = body["oob_code"].as_str().unwrap().to_string();
    let sent = mail.wait_for(2).await[1].clone();
    assert_eq!(sent.to, ["alice.codes@example.com"]);
    assert!(sent.text().contains("finish signing in"), "{}", sent.text());
    let code = six_digits(&sent.text());
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let (status, _) = oob(token.clone(), oob_code.clone(), wrong.into()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = oob(token.clone(), oob_code.clone(), code.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa"])
    );
    let (status, _) = oob(token, oob_code.clone(), code).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "single use");

    // By SMS; an oob_code belongs to its own mfa_token.
    let (_, first) = password(&s, ALICE_LOGIN, None).await;
    let first = first["mfa_token"].as_str().unwrap().to_string();
    let (_, second) = password(&s, ALICE_LOGIN, None).await;
    let second = second["mfa_token"].as_str().unwrap().to_string();
    let (status, body) = challenge(first.clone(), ids[1].clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let oob_code = body["oob_code"].as_str().unwrap().to_string();
    let text = sms.wait_for(2).await[1].text.clone();
    let code = six_digits(&text);
    let (status, _) = oob(second, oob_code.clone(), code.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another token's oob_code");
    let (status, body) = oob(first, oob_code, code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa", "sms"])
    );

    // Asking for a kind the user does not have, or a bad type.
    let (_, third) = password(&s, ALICE_LOGIN, None).await;
    let third = third["mfa_token"].as_str().unwrap().to_string();
    let res = s
        .http()
        .post(s.url("/mfa/challenge"))
        .form(&[
            ("client_id", "spa"),
            ("mfa_token", third.as_str()),
            ("challenge_type", "otp"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = s
        .http()
        .post(s.url("/mfa/challenge"))
        .form(&[
            ("client_id", "spa"),
            ("mfa_token", third.as_str()),
            ("challenge_type", "push"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

async fn associate(s: &TestServer, token: &str, body: Value) -> (StatusCode, Value) {
    let res = s
        .http()
        .post(s.url("/mfa/associate"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn a_first_factor_through_mfa_associate() {
    let sms = SmsReceiver::start("AC123", TWILIO_TOKEN, WEBHOOK_SECRET).await;
    let (s, _) = server_with(ALWAYS).await;
    let text = tenant(s.port, ALWAYS).replace(
        "factors: [password, totp, recovery-code]",
        "factors: [password, totp, recovery-code, phone]",
    ) + &format!(
        "sms_provider: {{ twilio: {{ base_url: \"{}\", account_sid: AC123, auth_token_env: TWILIO_TOKEN, \
         from: \"+15550001111\" }} }}\n",
        sms.base_url
    );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let (status, body) = password(&s, BOB_LOGIN, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["mfa_requirements"],
        json!({"enroll": [{"type": "otp"}, {"type": "oob"}]})
    );
    let token = body["mfa_token"].as_str().unwrap().to_string();

    // Malformed requests change nothing.
    for bad in [
        json!({"client_id": "spa", "authenticator_types": ["push"]}),
        json!({"client_id": "spa", "authenticator_types": "otp oob"}),
        json!({"client_id": "spa", "authenticator_types": ["oob"], "oob_channels": ["sms"]}),
        json!({"client_id": "spa", "authenticator_types": [1]}),
    ] {
        let (status, body) = associate(&s, &token, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} {body}");
        assert_eq!(body["error"], "invalid_request");
    }
    let (status, _) = associate(
        &s,
        "not-a-token",
        json!({"client_id": "spa", "authenticator_types": ["otp"]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A phone by SMS: the code arrives, the wrong one counts, the right one
    // enrolls the phone and logs Bob in.
    let (status, body) = associate(
        &s,
        &token,
        json!({"client_id": "spa", "authenticator_types": ["oob"], "oob_channels": ["sms"],
               "phone_number": "+15557654321"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["authenticator_type"], "oob");
    assert_eq!(body["oob_channel"], "sms");
    assert_eq!(body["binding_method"], "prompt");
    let recovery = body["recovery_codes"][0].as_str().unwrap().to_string();
    let oob_code = body["oob_code"].as_str().unwrap().to_string();
    let code = six_digits(&sms.wait_for(1).await[0].text);
    let oob = |code: String| {
        let (s, token, oob_code) = (&s, token.clone(), oob_code.clone());
        async move {
            s.token(&[
                ("grant_type", MFA_OOB),
                ("client_id", "spa"),
                ("mfa_token", &token),
                ("oob_code", &oob_code),
                ("binding_code", &code),
            ])
            .await
        }
    };
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let (status, body) = oob(wrong.into()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = oob(code.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa", "sms"])
    );
    // Spent.
    let (status, _) = oob(code).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Bob has a phone and a recovery code now: the next login challenges,
    // and association is closed to him.
    let (status, body) = password(&s, BOB_LOGIN, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["mfa_requirements"],
        json!({"challenge": [{"type": "oob"}, {"type": "recovery-code"}]})
    );
    let token = body["mfa_token"].as_str().unwrap().to_string();
    let (status, body) = associate(
        &s,
        &token,
        json!({"client_id": "spa", "authenticator_types": ["otp"]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error_description"], "User is already enrolled.");
    // The recovery code shown at association works.
    let (status, body) = s
        .token(&[
            ("grant_type", MFA_RECOVERY),
            ("client_id", "spa"),
            ("mfa_token", &token),
            ("recovery_code", &recovery),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_authenticator_app_through_mfa_associate() {
    let (s, _) = server_with(ALWAYS).await;
    let (_, body) = password(&s, BOB_LOGIN, None).await;
    let token = body["mfa_token"].as_str().unwrap().to_string();
    // A form body works as well as JSON.
    let res = s
        .http()
        .post(s.url("/mfa/associate"))
        .bearer_auth(&token)
        .form(&[("client_id", "spa"), ("authenticator_types", "otp")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["authenticator_type"], "otp");
    let secret = body["secret"].as_str().unwrap().to_string();
    assert!(
        body["barcode_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    assert_eq!(body["recovery_codes"].as_array().unwrap().len(), 1);
    // Another client cannot confirm it.
    let code = totp_now(&secret, s.clock_now());
    let (status, _) = otp(&s, "web", &token, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = otp(&s, "spa", &token, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa", "otp"])
    );
    let events = events(&s).await;
    assert!(
        events.contains(&"gd_auth_succeed".to_string()),
        "{events:?}"
    );
    // The association is over with its token.
    let (status, _) = associate(
        &s,
        &token,
        json!({"client_id": "spa", "authenticator_types": ["otp"]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// `/mfa/associate` with the bearer token alone (as Auth0's guide and its
/// SDKs call it) takes the token's client; a client named that is not the
/// token's is refused, and the refusal leaves the association open.
#[tokio::test]
async fn mfa_associate_takes_its_client_from_the_mfa_token() {
    let (s, _) = server_with(ALWAYS).await;
    let (_, body) = password(&s, BOB_LOGIN, None).await;
    let token = body["mfa_token"].as_str().unwrap().to_string();

    // Another client, authenticated, with spa's token: an invalid token to it.
    let (status, body) = associate(
        &s,
        &token,
        json!({"client_id": "web", "client_secret": "web-secret-value",
               "authenticator_types": ["otp"]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // Named without its secret: the client's authentication fails first.
    let (status, body) = associate(
        &s,
        &token,
        json!({"client_id": "web", "authenticator_types": ["otp"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    // A secret without a client is no way to name one.
    let (status, body) = associate(
        &s,
        &token,
        json!({"client_secret": "web-secret-value", "authenticator_types": ["otp"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    // Without a token's client to fall back on, nothing is associated.
    let (status, body) =
        associate(&s, "not-a-token", json!({"authenticator_types": ["otp"]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    // The bearer token alone: spa's association, which spa confirms.
    let (status, body) = associate(&s, &token, json!({"authenticator_types": ["otp"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = totp_now(body["secret"].as_str().unwrap(), s.clock_now());
    let (status, _) = otp(&s, "web", &token, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = otp(&s, "spa", &token, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["azp"], "spa");
}

#[tokio::test]
async fn wrong_answers_are_limited_per_user_across_logins() {
    let (s, enrolled) = server_with(ALWAYS).await;
    let right = || totp_now(&enrolled.totp_secret, s.clock_now());
    let wrong = |right: &str| {
        if right == "000000" {
            "000001"
        } else {
            "000000"
        }
        .to_string()
    };
    // Two logins, five wrong codes each: the user's budget is spent.
    for _ in 0..2 {
        let token = mfa_token(&s).await;
        for _ in 0..5 {
            let (status, _) = otp(&s, "spa", &token, &wrong(&right())).await;
            assert_eq!(status, StatusCode::FORBIDDEN);
        }
    }
    // A third login: even the right code waits.
    let token = mfa_token(&s).await;
    let (status, body) = otp(&s, "spa", &token, &right()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_requests");
    // The hosted page says so too.
    let browser = s.browser();
    let res = login_through_page(
        &s,
        &browser,
        &AuthRequest::new("openid"),
        ALICE,
        ALICE_PASSWORD,
    )
    .await;
    let page = res.text().await.unwrap();
    let tx = hidden_input(&page, "tx").unwrap();
    let method = hidden_input(&page, "method").unwrap();
    let res = browser
        .post(s.url("/login/mfa/verify"))
        .form(&[("tx", tx.as_str()), ("method", &method), ("code", &right())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("Too many wrong codes"));
    // After the window, a new login with the right code works.
    s.clock.advance(USER_WINDOW);
    let token = mfa_token(&s).await;
    let (status, body) = otp(&s, "spa", &token, &right()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

const USER_WINDOW: i64 = 900;

/// The cap on a user's methods holds on the MFA API too, in its dialect:
/// a user with 20 methods (a password and 19 passkeys, none of them a
/// second factor) cannot associate a first one.
#[tokio::test]
async fn association_stops_at_twenty_methods() {
    use latchkey::store::{Completion, EnrollmentRow, MethodRow};
    let (s, _) = server_with(ALWAYS).await;
    let store = &s.state.store;
    let tenant = store.tenant_by_name("acme").await.unwrap().unwrap();
    let bob = store
        .user_by_email(&tenant.id, "Partners", BOB_LOGIN.0)
        .await
        .unwrap()
        .unwrap();
    let now = s.clock_now();
    for i in 0..19 {
        let id = format!("passkey|dev_seeded{i:02}");
        let enrollment = EnrollmentRow {
            user_id: bob.user_id.clone(),
            client_id: "spa".into(),
            method_type: "passkey".into(),
            method_id: id.clone(),
            state: json!({}),
            attempts: 0,
            created_at: now,
            expires_at: now + 300,
        };
        let digest = format!("seed-{i}");
        store
            .create_enrollment(&tenant.id, &digest, &enrollment)
            .await
            .unwrap();
        let row = MethodRow {
            id,
            user_id: bob.user_id.clone(),
            method_type: latchkey::tenant::FactorType::Passkey,
            name: None,
            data: json!({"public_key": "pQECAyYgASFYIA", "user_handle": format!("handle-{i}")}),
            created_at: now,
            last_auth_at: None,
            last_otp_step: None,
            credential_id: Some(format!("credential-{i}")),
        };
        let add = Completion::AddMethod {
            row,
            replace_type: false,
        };
        assert!(
            store
                .complete_enrollment(&tenant.id, &digest, &add, now)
                .await
                .unwrap()
        );
    }
    let (status, body) = password(&s, BOB_LOGIN, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let token = body["mfa_token"].as_str().unwrap().to_string();
    let (status, body) = associate(
        &s,
        &token,
        json!({"client_id": "spa", "authenticator_types": ["otp"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"].as_str().unwrap().contains("(20)"),
        "{body}"
    );
}

/// A user blocked between the password and the second factor: the
/// `mfa_token` of that login is dead on every MFA endpoint and grant.
#[tokio::test]
async fn a_user_blocked_midway_cannot_finish_through_the_mfa_api() {
    let (s, enrolled) = server_with(ALWAYS).await;
    let token = mfa_token(&s).await;
    let blocked = tenant(s.port, ALWAYS).replace(
        "user_id: \"auth0|alice\", name: Alice Example }",
        "user_id: \"auth0|alice\", name: Alice Example, blocked: true }",
    );
    latchkey::tenant::apply::apply_text(&s.state, &blocked)
        .await
        .unwrap();
    let res = s
        .http()
        .get(s.url("/mfa/authenticators"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = s
        .http()
        .post(s.url("/mfa/challenge"))
        .form(&[
            ("client_id", "spa"),
            ("mfa_token", token.as_str()),
            ("challenge_type", "otp"),
        ])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    let (status, body) = otp(
        &s,
        "spa",
        &token,
        &totp_now(&enrolled.totp_secret, s.clock_now()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert!(body.get("access_token").is_none());
}
