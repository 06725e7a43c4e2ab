//! `POST /passwordless/verify`, as auth0-js's `passwordless.verify` and
//! `passwordlessVerify` call it (`{connection, verification_code, email |
//! phone_number, client_id}`): a right code is checked without being spent
//! (the `passwordless/otp` grant or the redirect spends it); a wrong one
//! counts against it as at the grant; another client's, another tenant's, an
//! expired or spent code, unknown connections and malformed input are
//! refused, and nothing is made or issued.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::passwordless::{Rig, email_code, file, grant, log, mailed, rig, start, wrong};
use crate::sms_receiver::SmsReceiver;
use crate::smtp::SmtpServer;
use crate::support::*;

async fn verify(s: &TestServer, body: Value) -> (StatusCode, Value) {
    let res = s
        .http()
        .post(s.url("/passwordless/verify"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn email_body(client: &str, email: &str, code: &str) -> Value {
    json!({"client_id": client, "connection": "email", "email": email, "verification_code": code})
}

#[tokio::test]
async fn a_right_code_is_checked_and_not_spent() {
    let rig = rig("").await;
    let s = &rig.s;
    let to = "vera@example.com";
    email_code(s, to).await;
    let code = mailed(&rig, 1, to).await;
    for _ in 0..2 {
        let (status, body) = verify(s, email_body("spa", "Vera@Example.com", &code)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.is_object(), "{body}");
        assert!(body.get("access_token").is_none(), "{body}");
    }
    // Checking made nobody and logged no login.
    assert!(
        !log(s)
            .await
            .iter()
            .any(|e| ["ss", "s"].contains(&e.event_type.as_str()))
    );
    // The grant still takes it, once; after that, verify refuses it too.
    let (status, body) = grant(s, "spa", "email", to, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = verify(s, email_body("spa", to, &code)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "Wrong email or verification code."
    );
}

#[tokio::test]
async fn an_sms_code_is_checked_by_phone_number() {
    let rig = rig("").await;
    let s = &rig.s;
    let (status, body) = start(
        s,
        json!({"client_id": "spa", "connection": "sms", "phone_number": "+1 555 000 3333"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sms = rig.sms.wait_for(1).await;
    let code = crate::mfa_api::six_digits(&sms[0].text);
    let body = json!({"client_id": "spa", "connection": "sms", "phone_number": "+15550003333",
        "verification_code": code});
    let (status, answer) = verify(s, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let bad = json!({"client_id": "spa", "connection": "sms", "phone_number": "+15550003333",
        "verification_code": wrong(&code)});
    let (status, answer) = verify(s, bad).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(
        answer["error_description"],
        "Wrong phone number or verification code."
    );
}

#[tokio::test]
async fn wrong_answers_count_and_kill_the_code() {
    let rig = rig("").await;
    let s = &rig.s;
    let to = "walt@example.com";
    email_code(s, to).await;
    let code = mailed(&rig, 1, to).await;
    for _ in 0..3 {
        let (status, body) = verify(s, email_body("spa", to, &wrong(&code))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"], "invalid_grant");
    }
    // Dead: neither verify nor the grant takes the right code now.
    assert_eq!(
        verify(s, email_body("spa", to, &code)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        grant(s, "spa", "email", to, &code).await.0,
        StatusCode::FORBIDDEN
    );
    // Each refusal was logged as a failed login.
    assert!(log(s).await.iter().filter(|e| e.event_type == "f").count() >= 3);

    // Expired after three minutes.
    email_code(s, to).await;
    let code = mailed(&rig, 2, to).await;
    s.clock.advance(181);
    assert_eq!(
        verify(s, email_body("spa", to, &code)).await.0,
        StatusCode::FORBIDDEN
    );
    assert!(!log(s).await.iter().any(|e| e.event_type == "ss"));
}

#[tokio::test]
async fn another_clients_or_tenants_code_is_refused() {
    let mail = SmtpServer::start_with_auth("latchkey", SMTP_PASSWORD).await;
    let sms = SmsReceiver::start("AC123", TWILIO_TOKEN, WEBHOOK_SECRET).await;
    let s = TestServer::with_tenants(&[acme, other_tenant]).await;
    latchkey::tenant::apply::apply_text(&s.state, &file(s.port, &mail, &sms, ""))
        .await
        .unwrap();
    let rig = Rig { s, mail, sms };
    let s = &rig.s;
    let to = "xena@example.com";
    email_code(s, to).await;
    let code = mailed(&rig, 1, to).await;
    // The web client may use the connection, but the code is the spa's.
    let mut body = email_body("web", to, &code);
    body["client_secret"] = json!("web-secret-value");
    let (status, answer) = verify(s, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    // The other tenant has no such connection.
    let res = s
        .as_host(
            reqwest::Method::POST,
            &format!("127.0.0.1:{}", s.port),
            "/passwordless/verify",
        )
        .json(&email_body("spa", to, &code))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let answer: Value = res.json().await.unwrap();
    assert!(status.is_client_error(), "{status} {answer}");
    // The spa's code still stands.
    let (status, answer) = verify(s, email_body("spa", to, &code)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn unknown_connections_and_malformed_input() {
    let rig = rig(", disable_signup: true").await;
    let s = &rig.s;
    let cases = [
        (
            json!({"client_id": "spa", "connection": "nope", "email": "a@example.com", "verification_code": "123456"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"client_id": "nogrants", "connection": "email", "email": "a@example.com", "verification_code": "123456"}),
            StatusCode::FORBIDDEN,
            "unauthorized_client",
        ),
        (
            json!({"client_id": "spa", "connection": "email", "email": "a@example.com"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"client_id": "spa", "connection": "email", "verification_code": "123456"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"client_id": "spa", "connection": "email", "email": ["a@example.com"], "verification_code": "123456"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"client_id": "spa", "connection": "email", "email": "not an address", "verification_code": "123456"}),
            StatusCode::FORBIDDEN,
            "invalid_grant",
        ),
        (
            json!({"client_id": "spa", "connection": "email", "email": "a@example.com", "verification_code": "9".repeat(5000)}),
            StatusCode::FORBIDDEN,
            "invalid_grant",
        ),
        (
            json!({"client_id": "nobody", "connection": "email", "email": "a@example.com", "verification_code": "123456"}),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
    ];
    for (body, status, error) in cases {
        let (got, answer) = verify(s, body.clone()).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(error)),
            "{body} {answer}"
        );
    }
    // Sign-up off: an address without a user has no code that verifies.
    email_code(s, "nobody@example.com").await;
    let (status, answer) = verify(s, email_body("spa", "nobody@example.com", "123456")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(rig.mail.messages().await.is_empty());
}
