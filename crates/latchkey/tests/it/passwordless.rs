//! Passwordless login through the API: `POST /passwordless/start` (a code by
//! email, read from the test SMTP server, or by SMS, from the test SMS
//! receiver) and the `passwordless/otp` grant; wrong, expired, replayed and
//! replaced codes, the attempt limit, another client's or tenant's code,
//! unknown and disabled connections, bad input, sign-up off (the same
//! answer for known and unknown addresses) and the send limits.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::mfa_api::six_digits;
use crate::sms_receiver::SmsReceiver;
use crate::smtp::SmtpServer;
use crate::support::*;

const OTP: &str = "http://auth0.com/oauth/grant-type/passwordless/otp";

pub(crate) struct Rig {
    pub(crate) s: TestServer,
    pub(crate) mail: SmtpServer,
    pub(crate) sms: SmsReceiver,
}

/// The acme tenant with the `email` and `sms` connections for the spa and
/// web clients, `email` set up by `email_options`.
pub(crate) fn file(port: u16, mail: &SmtpServer, sms: &SmsReceiver, email_options: &str) -> String {
    acme(port)
        .replace(
            "  - name: Partners\n",
            &format!(
                "  - name: Partners\n  - {{ name: email, strategy: email, enabled_clients: [spa, web]{email_options} }}\n  \
                 - {{ name: sms, strategy: sms, enabled_clients: [spa] }}\n"
            ),
        )
        .replace(
            "\"http://auth0.com/oauth/grant-type/password-realm\"] }",
            &format!("\"http://auth0.com/oauth/grant-type/password-realm\", \"{OTP}\"] }}"),
        )
        .replace(
            "grant_types: [authorization_code, refresh_token] }",
            &format!("grant_types: [authorization_code, refresh_token, \"{OTP}\"] }}"),
        )
        + &format!(
            "email_provider: {{ smtp: {{ host: 127.0.0.1, port: {}, security: none, from: no-reply@acme.test, \
             username: latchkey, password_env: SMTP_PASSWORD }} }}\n\
             sms_provider: {{ twilio: {{ base_url: \"{}\", account_sid: AC123, auth_token_env: TWILIO_TOKEN, \
             from: \"+15550001111\" }} }}\n",
            mail.port, sms.base_url
        )
}

/// The acme and other tenants, and [`file`] with `email_options` applied.
pub(crate) async fn rig(email_options: &str) -> Rig {
    rig_with(&[acme, other_tenant], |port, mail, sms| {
        file(port, mail, sms, email_options)
    })
    .await
}

/// A server started with the tenant files `tenants`, then the tenant file
/// `tenant` writes for its port, mail server and SMS receiver applied.
pub(crate) async fn rig_with(
    tenants: &[fn(u16) -> String],
    tenant: impl FnOnce(u16, &SmtpServer, &SmsReceiver) -> String,
) -> Rig {
    let mail = SmtpServer::start_with_auth("latchkey", SMTP_PASSWORD).await;
    let sms = SmsReceiver::start("AC123", TWILIO_TOKEN, WEBHOOK_SECRET).await;
    let s = TestServer::with_tenants(tenants).await;
    latchkey::tenant::apply::apply_text(&s.state, &tenant(s.port, &mail, &sms))
        .await
        .unwrap();
    Rig { s, mail, sms }
}

pub(crate) async fn start(s: &TestServer, body: Value) -> (StatusCode, Value) {
    let res = s
        .http()
        .post(s.url("/passwordless/start"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn email_code(s: &TestServer, email: &str) -> (StatusCode, Value) {
    start(
        s,
        json!({"client_id": "spa", "connection": "email", "email": email, "send": "code"}),
    )
    .await
}

pub(crate) async fn grant(
    s: &TestServer,
    client: &str,
    realm: &str,
    username: &str,
    otp: &str,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", OTP),
        ("client_id", client),
        ("realm", realm),
        ("username", username),
        ("otp", otp),
        ("scope", "openid email profile phone"),
    ];
    if client == "web" {
        form.push(("client_secret", "web-secret-value"));
    }
    s.token(&form).await
}

/// The code in the `n`th mail (1-based), sent to `to`.
pub(crate) async fn mailed(rig: &Rig, n: usize, to: &str) -> String {
    let mail = rig.mail.wait_for(n).await[n - 1].clone();
    assert_eq!(mail.to, [to.to_string()]);
    six_digits(&mail.text())
}

/// The code in the `n`th text message (1-based), sent to `to`.
pub(crate) async fn texted(rig: &Rig, n: usize, to: &str) -> String {
    let sms = rig.sms.wait_for(n).await[n - 1].clone();
    assert_eq!(sms.to, to);
    six_digits(&sms.text)
}

pub(crate) async fn log(s: &TestServer) -> Vec<latchkey::store::AuditEvent> {
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    s.state.store.audit_events(&tenant.id, 200).await.unwrap()
}

#[tokio::test]
async fn an_email_code_signs_up_then_logs_in() {
    let rig = rig("").await;
    let s = &rig.s;
    let (status, body) = email_code(s, "Carol@Example.com").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "Carol@Example.com");
    assert_eq!(body["email_verified"], false);
    assert!(body["_id"].as_str().unwrap().len() >= 16, "{body}");
    let code = mailed(&rig, 1, "Carol@Example.com").await;

    let (status, tokens) = grant(s, "spa", "email", "carol@example.com", &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    let sub = id["sub"].as_str().unwrap().to_string();
    assert!(sub.starts_with("email|"), "{id}");
    assert!(
        id["email"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("carol@example.com"),
        "{id}"
    );
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["amr"], json!(["otp"]));
    // Spent: the same code again is refused as a wrong one.
    let (status, body) = grant(s, "spa", "email", "carol@example.com", &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "Wrong email or verification code."
    );

    // The next login finds the same user.
    s.clock.advance(1);
    email_code(s, "carol@example.com").await;
    let code = mailed(&rig, 2, "carol@example.com").await;
    let (status, tokens) = grant(s, "spa", "email", "Carol@example.com", &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["sub"],
        json!(sub)
    );

    let events = log(s).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["cls", "ss", "s", "f", "cls", "s"], "{events:?}");
    for e in &events {
        assert_eq!(e.details["connection"], "email", "{e:?}");
        assert_eq!(e.client_id.as_deref(), Some("spa"), "{e:?}");
    }
    assert_eq!(events[2].user_id.as_deref(), Some(sub.as_str()));
    // No code is written to the log.
    assert!(!format!("{events:?}").contains(&code));
}

#[tokio::test]
async fn an_sms_code_through_the_sms_provider() {
    let rig = rig("").await;
    let s = &rig.s;
    let (status, body) = start(
        s,
        json!({"client_id": "spa", "connection": "sms", "phone_number": "+1 555 000 2222"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["phone_number"], "+15550002222");
    assert_eq!(body["phone_verified"], false);
    assert_eq!(body["request_language"], Value::Null);
    let code = texted(&rig, 1, "+15550002222").await;
    let (status, body) = grant(s, "spa", "sms", "+15550002222", &wrong_code(&code)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["error_description"],
        "Wrong phone number or verification code."
    );
    let (status, tokens) = grant(s, "spa", "sms", "+1 (555) 000-2222", &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert!(id["sub"].as_str().unwrap().starts_with("sms|"), "{id}");
    let types: Vec<String> = log(s).await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["cs", "f", "ss", "s"]);
}

#[tokio::test]
async fn wrong_expired_replaced_and_exhausted_codes() {
    let rig = rig("").await;
    let s = &rig.s;
    let to = "dave@example.com";
    email_code(s, to).await;
    let code = mailed(&rig, 1, to).await;
    // Three wrong answers kill the code: the right one is refused after.
    for _ in 0..3 {
        let (status, _) = grant(s, "spa", "email", to, &wrong_code(&code)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, body) = grant(s, "spa", "email", to, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // A new code replaces the last one.
    email_code(s, to).await;
    let first = mailed(&rig, 2, to).await;
    email_code(s, to).await;
    let second = mailed(&rig, 3, to).await;
    if first != second {
        assert_eq!(
            grant(s, "spa", "email", to, &first).await.0,
            StatusCode::FORBIDDEN
        );
    }
    // Expired after three minutes.
    s.clock.advance(181);
    assert_eq!(
        grant(s, "spa", "email", to, &second).await.0,
        StatusCode::FORBIDDEN
    );
    // Nobody was made by all this.
    assert!(!log(s).await.iter().any(|e| e.event_type == "ss"));
}

#[tokio::test]
async fn another_clients_or_tenants_code_is_refused() {
    let rig = rig("").await;
    let s = &rig.s;
    let to = "erin@example.com";
    email_code(s, to).await;
    let code = mailed(&rig, 1, to).await;
    // The web client may use the connection, but the code is the spa's.
    let (status, body) = grant(s, "web", "email", to, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The other tenant has no such connection.
    let res = s
        .as_host(
            reqwest::Method::POST,
            &format!("127.0.0.1:{}", s.port),
            "/oauth/token",
        )
        .form(&[
            ("grant_type", OTP),
            ("client_id", "spa"),
            ("realm", "email"),
            ("username", to),
            ("otp", &code),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_client_error(), "{status} {body}");
    assert!(body.get("access_token").is_none());
    // The spa still can: one wrong try does not kill it.
    let (status, body) = grant(s, "spa", "email", to, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn unknown_and_disabled_connections_and_bad_input() {
    let rig = rig("").await;
    let s = &rig.s;
    let refused = |body: Value| async move { start(s, body).await };
    let cases = [
        (
            json!({"client_id": "spa", "connection": "nope", "email": "a@example.com", "send": "code"}),
            StatusCode::BAD_REQUEST,
            "bad.connection",
        ),
        (
            json!({"client_id": "spa", "connection": "Username-Password-Authentication", "email": "a@example.com"}),
            StatusCode::BAD_REQUEST,
            "bad.connection",
        ),
        (
            json!({"client_id": "nogrants", "connection": "email", "email": "a@example.com", "send": "code"}),
            StatusCode::BAD_REQUEST,
            "bad.connection",
        ),
        (
            json!({"client_id": "spa", "connection": "email", "email": "not an address", "send": "code"}),
            StatusCode::BAD_REQUEST,
            "bad.email",
        ),
        (
            json!({"client_id": "spa", "connection": "email", "email": "a\u{200b}@example.com", "send": "code"}),
            StatusCode::BAD_REQUEST,
            "bad.email",
        ),
        (
            json!({"client_id": "spa", "connection": "sms", "phone_number": "5550002222"}),
            StatusCode::BAD_REQUEST,
            "bad.phone_number",
        ),
        (
            json!({"client_id": "spa", "connection": "sms", "phone_number": "+15550002222", "send": "link"}),
            StatusCode::BAD_REQUEST,
            "bad.send",
        ),
        // A link (email's default) completes an authorization request:
        // without one, nothing is sent.
        (
            json!({"client_id": "spa", "connection": "email", "email": "a@example.com"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"client_id": "spa", "connection": "email", "email": "a@example.com", "send": "pigeon"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"client_id": "spa", "connection": "email", "email": "a@example.com", "send": "code", "authParams": "x"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"client_id": "spa", "connection": "email", "send": "code"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"client_id": "spa", "connection": "email", "email": ["a@example.com"], "send": "code"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"client_id": "nobody", "connection": "email", "email": "a@example.com", "send": "code"}),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            json!({"client_id": "web", "client_secret": "wrong", "connection": "email", "email": "a@example.com", "send": "code"}),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            json!({"client_id": "spa", "connection": "email", "email": "x".repeat(400) + "@example.com", "send": "code"}),
            StatusCode::BAD_REQUEST,
            "bad.email",
        ),
    ];
    for (body, status, error) in cases {
        let (got, answer) = refused(body.clone()).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(error)),
            "{body} → {answer}"
        );
        assert!(answer["error_description"].is_string(), "{answer}");
    }
    // A malformed body is an error of the same dialect.
    let res = s
        .http()
        .post(s.url("/passwordless/start"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Nothing was sent, nothing logged.
    assert!(rig.mail.messages().await.is_empty());
    assert!(rig.sms.messages().await.is_empty());
    assert!(log(s).await.is_empty());
    // The grant with an unknown realm, and for a client the connection is not
    // enabled for.
    let (status, body) = grant(s, "spa", "nope", "a@example.com", "123456").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = grant(
        s,
        "spa",
        "Username-Password-Authentication",
        ALICE,
        "123456",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn without_sign_up_known_and_unknown_addresses_are_answered_alike() {
    let rig = rig("").await;
    let s = &rig.s;
    // Frank signs up while sign-ups are open.
    email_code(s, "frank@example.com").await;
    let code = mailed(&rig, 1, "frank@example.com").await;
    assert_eq!(
        grant(s, "spa", "email", "frank@example.com", &code).await.0,
        StatusCode::OK
    );
    latchkey::tenant::apply::apply_text(
        &s.state,
        &file(s.port, &rig.mail, &rig.sms, ", disable_signup: true"),
    )
    .await
    .unwrap();

    let (unknown_status, unknown) = email_code(s, "grace@example.com").await;
    let (known_status, known) = email_code(s, "frank@example.com").await;
    assert_eq!(
        (unknown_status, known_status),
        (StatusCode::OK, StatusCode::OK)
    );
    let shape = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        (
            keys,
            v["email_verified"].clone(),
            v["_id"].as_str().unwrap().len(),
        )
    };
    assert_eq!(shape(&unknown), shape(&known));
    // Only Frank is sent a code.
    let code = mailed(&rig, 2, "frank@example.com").await;
    assert_eq!(rig.mail.messages().await.len(), 2);
    // Grace's answers are refused as wrong codes, whatever they are.
    for guess in ["000000", "123456", &code] {
        let (status, body) = grant(s, "spa", "email", "grace@example.com", guess).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(
            body["error_description"],
            "Wrong email or verification code."
        );
    }
    assert_eq!(
        grant(s, "spa", "email", "frank@example.com", &code).await.0,
        StatusCode::OK
    );
    // Nobody was made for Grace.
    let made: Vec<_> = log(s)
        .await
        .into_iter()
        .filter(|e| e.event_type == "ss")
        .collect();
    assert_eq!(made.len(), 1);
}

#[tokio::test]
async fn sends_are_limited_per_address_and_per_ip() {
    let rig = rig("").await;
    let s = &rig.s;
    for _ in 0..3 {
        assert_eq!(email_code(s, "henry@example.com").await.0, StatusCode::OK);
    }
    let res = s
        .http()
        .post(s.url("/passwordless/start"))
        .json(&json!({"client_id": "spa", "connection": "email", "email": "HENRY@example.com", "send": "code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().get("retry-after").is_some());
    // The window passes.
    s.clock.advance(301);
    assert_eq!(email_code(s, "henry@example.com").await.0, StatusCode::OK);
    // One IP asks for at most 20 codes an hour, whoever they are for.
    let mut refused = None;
    for n in 0..25 {
        let (status, _) = email_code(s, &format!("someone{n}@example.com")).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(n);
            break;
        }
    }
    // Henry's four sends count too.
    assert_eq!(refused, Some(16), "{refused:?}");
}
