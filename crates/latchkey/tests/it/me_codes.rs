//! Email and phone enrollment: codes delivered over real SMTP and through
//! the real SMS/voice provider code to local receivers.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::sms_receiver::{SmsReceiver, held_http_server, silent_http_server};
use crate::smtp::SmtpServer;
use crate::support::*;

const SID: &str = "AC123";

/// The acme tenant with email and phone enabled and the given providers.
async fn server_with(providers: &str) -> TestServer {
    let s = TestServer::start().await;
    let text = acme(s.port).replace(
        "factors: [password, totp, recovery-code]",
        "factors: [password, email, phone, totp, recovery-code]",
    ) + providers;
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    s
}

fn smtp(port: u16) -> String {
    format!(
        "email_provider: {{ smtp: {{ host: 127.0.0.1, port: {port}, security: none, from: \"Acme <no-reply@acme.test>\", \
         username: latchkey, password_env: SMTP_PASSWORD, timeout_seconds: 1 }} }}\n"
    )
}

fn twilio(base_url: &str) -> String {
    format!(
        "sms_provider: {{ twilio: {{ base_url: \"{base_url}\", account_sid: {SID}, auth_token_env: TWILIO_TOKEN, \
         from: \"+15550001111\", timeout_seconds: 1 }} }}\n"
    )
}

fn webhook(url: &str) -> String {
    format!(
        "sms_provider: {{ webhook: {{ url: \"{url}\", secret_env: SMS_WEBHOOK_SECRET, timeout_seconds: 1 }} }}\n"
    )
}

fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        .to_string()
}

async fn start(s: &TestServer, token: &str, body: Value) -> MeResponse {
    s.me("POST", "/authentication-methods", Some(token), Some(body))
        .await
}

#[tokio::test]
async fn email_codes_arrive_over_smtp_and_enroll_the_address() {
    let mail = SmtpServer::start_with_auth("latchkey", SMTP_PASSWORD).await;
    let s = server_with(&smtp(mail.port)).await;
    let token = s.me_token(ME_SCOPES).await;
    let factors = s.me("GET", "/factors", Some(&token), None).await;
    assert!(
        factors.body["factors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["type"] == "email")
    );

    let r = start(
        &s,
        &token,
        json!({"type": "email", "email": "alice.work@example.com"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert!(r.body["id"].as_str().unwrap().starts_with("email|dev_"));
    assert_eq!(
        r.body.as_object().unwrap().len(),
        2,
        "only id and auth_session: {}",
        r.body
    );
    let received = mail.wait_for(1).await;
    assert_eq!(received[0].to, vec!["alice.work@example.com".to_string()]);
    let text = received[0].text();
    let code = code_in(&text);
    assert!(received[0].html().contains(&code));
    assert!(received[0].header("subject").unwrap().contains(&code));

    let wrong = s
        .me_verify_code(
            &token,
            &r,
            if code == "000000" { "111111" } else { "000000" },
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let ok = s.me_verify_code(&token, &r, &code).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.body["type"], "email");
    assert_eq!(ok.body["email"], "alice.work@example.com");
    assert_eq!(ok.body["confirmed"], true);
    let list = s
        .me(
            "GET",
            "/authentication-methods?type=email",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(list.body["authentication_methods"][0], ok.body);
    // The code was used: it never works again.
    assert_eq!(
        s.me_verify_code(&token, &r, &code).await.status,
        StatusCode::BAD_REQUEST
    );

    // No code in clear in the database.
    let db = s.database_dump().await;
    assert!(!String::from_utf8_lossy(&db).contains(&format!("\"{code}\"")));
}

#[tokio::test]
async fn codes_expire_allow_five_attempts_and_sending_is_throttled() {
    let mail = SmtpServer::start_with_auth("latchkey", SMTP_PASSWORD).await;
    let s = server_with(&smtp(mail.port)).await;
    let token = s.me_token(ME_SCOPES).await;

    let r = start(
        &s,
        &token,
        json!({"type": "email", "email": "a1@example.com"}),
    )
    .await;
    let code = code_in(&mail.wait_for(1).await[0].text());
    s.clock.advance(301);
    let token = s.me_token(ME_SCOPES).await;
    assert_eq!(
        s.me_verify_code(&token, &r, &code).await.status,
        StatusCode::BAD_REQUEST,
        "expired"
    );

    let r = start(
        &s,
        &token,
        json!({"type": "email", "email": "a2@example.com"}),
    )
    .await;
    let code = code_in(&mail.wait_for(2).await[1].text());
    let wrong = if code == "999999" { "999998" } else { "999999" };
    for _ in 0..5 {
        assert_eq!(
            s.me_verify_code(&token, &r, wrong).await.status,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        s.me_verify_code(&token, &r, &code).await.status,
        StatusCode::BAD_REQUEST,
        "dead after five"
    );

    // Three codes to one address per five minutes.
    for i in 0..3 {
        let r = start(
            &s,
            &token,
            json!({"type": "email", "email": "same@example.com"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "send {i}: {}", r.body);
    }
    let r = start(
        &s,
        &token,
        json!({"type": "email", "email": "Same@Example.com"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    s.clock.advance(300);
    let token = s.me_token(ME_SCOPES).await;
    assert_eq!(
        start(
            &s,
            &token,
            json!({"type": "email", "email": "same@example.com"})
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn one_user_may_have_ten_codes_sent_an_hour_whatever_the_destinations() {
    let mail = SmtpServer::start_with_auth("latchkey", SMTP_PASSWORD).await;
    let s = server_with(&smtp(mail.port)).await;
    let token = s.me_token(ME_SCOPES).await;
    for i in 0..10 {
        let r = start(
            &s,
            &token,
            json!({"type": "email", "email": format!("a{i}@example.com")}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "send {i}: {}", r.body);
    }
    let r = start(
        &s,
        &token,
        json!({"type": "email", "email": "fresh@example.com"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        mail.wait_for(10).await.len(),
        10,
        "nothing sent past the limit"
    );

    // Another user has a limit of their own.
    let bob = s
        .me_token_for(
            "bob@example.com",
            "B0b-has-a-long-password",
            Some("Partners"),
            ME_SCOPES,
        )
        .await;
    let r = start(
        &s,
        &bob,
        json!({"type": "email", "email": "bob.second@example.com"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    // An hour later Alice may again.
    s.clock.advance(3600);
    let token = s.me_token(ME_SCOPES).await;
    let r = start(
        &s,
        &token,
        json!({"type": "email", "email": "fresh@example.com"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
}

#[tokio::test]
async fn sms_and_voice_through_twilio_and_switching_between_them() {
    let sms = SmsReceiver::start(SID, TWILIO_TOKEN, WEBHOOK_SECRET).await;
    let s = server_with(&twilio(&sms.base_url)).await;
    let token = s.me_token(ME_SCOPES).await;
    let r = start(
        &s,
        &token,
        json!({"type": "phone", "phone_number": "+1 (555) 123-4567"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let got = sms.wait_for(1).await;
    assert_eq!(got[0].kind, "sms");
    assert_eq!(got[0].to, "+15551234567");
    assert_eq!(got[0].from, "+15550001111");
    let ok = s.me_verify_code(&token, &r, &code_in(&got[0].text)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.body["phone_number"], "+15551234567");
    assert_eq!(ok.body["preferred_authentication_method"], "sms");

    let path = format!(
        "/authentication-methods/{}",
        ok.body["id"].as_str().unwrap().replace('|', "%7C")
    );
    let r = s
        .me(
            "PATCH",
            &path,
            Some(&token),
            Some(json!({"preferred_authentication_method": "voice"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["preferred_authentication_method"], "voice");
    assert_eq!(
        s.me("GET", &path, Some(&token), None).await.body["preferred_authentication_method"],
        "voice"
    );

    let r = start(&s, &token, json!({"type": "phone", "phone_number": "0044 20 7946 0958", "preferred_authentication_method": "voice"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let got = sms.wait_for(2).await;
    assert_eq!(got[1].kind, "voice");
    assert_eq!(got[1].to, "+442079460958");
    let spoken: String = got[1].text.chars().filter(char::is_ascii_digit).collect();
    let code = &spoken[..6];
    let ok = s.me_verify_code(&token, &r, code).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.body["preferred_authentication_method"], "voice");
}

#[tokio::test]
async fn codes_through_a_signed_webhook() {
    let sms = SmsReceiver::start(SID, TWILIO_TOKEN, WEBHOOK_SECRET).await;
    let s = server_with(&webhook(&sms.webhook_url)).await;
    let token = s.me_token(ME_SCOPES).await;
    let r = start(
        &s,
        &token,
        json!({"type": "phone", "phone_number": "+33 6 12 34 56 78"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let got = sms.wait_for(1).await;
    assert_eq!(got[0].kind, "webhook-sms");
    assert_eq!(got[0].to, "+33612345678");
    assert_eq!(
        s.me_verify_code(&token, &r, &code_in(&got[0].text))
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn providers_that_fail_are_errors_and_audited() {
    // SMTP: nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = server_with(&smtp(closed)).await;
    let token = s.me_token(ME_SCOPES).await;
    let r = start(
        &s,
        &token,
        json!({"type": "email", "email": "x@example.com"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("could not be sent"),
        "{}",
        r.body
    );
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let events = s.state.store.audit_events(&tenant.id, 10).await.unwrap();
    assert_eq!(
        events.last().unwrap().event_type,
        "my_account_authentication_method_failed"
    );

    // Twilio answering 500, then a provider that never answers.
    let sms = SmsReceiver::start(SID, TWILIO_TOKEN, WEBHOOK_SECRET).await;
    let text = acme(s.port).replace(
        "factors: [password, totp, recovery-code]",
        "factors: [password, email, phone]",
    ) + &twilio(&sms.base_url);
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    sms.fail_next(500);
    let r = start(
        &s,
        &token,
        json!({"type": "phone", "phone_number": "+15551234567"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let silent = silent_http_server().await;
    let text = acme(s.port).replace(
        "factors: [password, totp, recovery-code]",
        "factors: [password, email, phone]",
    ) + &twilio(&silent);
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let r = start(
        &s,
        &token,
        json!({"type": "phone", "phone_number": "+15557654321"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

#[tokio::test]
async fn a_provider_that_hangs_holds_only_its_own_request() {
    // The provider accepts and never answers while other requests come and go;
    // the test runtime has a single thread, so a send that blocked it would
    // stop everything.
    let (url, mut accepted, release) = held_http_server().await;
    let s = server_with(&format!(
        "sms_provider: {{ twilio: {{ base_url: \"{url}\", account_sid: {SID}, auth_token_env: TWILIO_TOKEN, \
         from: \"+15550001111\", timeout_seconds: 60 }} }}\n"
    ))
    .await;
    let token = s.me_token(ME_SCOPES).await;
    let enroll = start(
        &s,
        &token,
        json!({"type": "phone", "phone_number": "+15551234567"}),
    );
    tokio::pin!(enroll);
    tokio::select! {
        r = &mut enroll => panic!("answered before the provider did: {} {}", r.status, r.body),
        got = accepted.recv() => assert!(got.is_some()),
    }
    // The send is pending at the provider: the server still answers.
    let factors = s.me("GET", "/factors", Some(&token), None).await;
    assert_eq!(factors.status, StatusCode::OK, "{}", factors.body);
    let list = s
        .me("GET", "/authentication-methods", Some(&token), None)
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        !list.body["authentication_methods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "phone"),
        "{}",
        list.body
    );
    // The provider hangs up without answering: a clear error, nothing stored.
    release.send(()).unwrap();
    let r = enroll.await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("could not be sent"),
        "{}",
        r.body
    );
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let events = s.state.store.audit_events(&tenant.id, 10).await.unwrap();
    assert_eq!(
        events.last().unwrap().event_type,
        "my_account_authentication_method_failed"
    );
}

#[tokio::test]
async fn malformed_addresses_and_numbers_and_missing_providers() {
    let s = server_with("").await;
    let token = s.me_token(ME_SCOPES).await;
    for (body, pointer) in [
        (
            json!({"type": "email", "email": "not-an-address"}),
            "/email",
        ),
        (
            json!({"type": "email", "email": "a b@example.com"}),
            "/email",
        ),
        (
            json!({"type": "phone", "phone_number": "5551234567"}),
            "/phone_number",
        ),
        (
            json!({"type": "phone", "phone_number": "+1 555 CALL NOW"}),
            "/phone_number",
        ),
        (
            json!({"type": "phone", "phone_number": "+1234567890123456"}),
            "/phone_number",
        ),
    ] {
        let r = start(&s, &token, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            r.body["validation_errors"][0]["pointer"], pointer,
            "{body}: {}",
            r.body
        );
    }
    let r = start(
        &s,
        &token,
        json!({"type": "email", "email": "ok@example.com"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("No email provider")
    );
    let r = start(
        &s,
        &token,
        json!({"type": "phone", "phone_number": "+15551234567"}),
    )
    .await;
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("No SMS provider")
    );
}

#[tokio::test]
async fn messages_follow_the_tenants_templates_in_the_callers_language() {
    let mail = SmtpServer::start_with_auth("latchkey", SMTP_PASSWORD).await;
    let sms = SmsReceiver::start(SID, TWILIO_TOKEN, WEBHOOK_SECRET).await;
    let templates = "messages:\n  code_email:\n    fr: { subject: \"Votre code {{ code }}\", text: \"Code : {{ code }} ({{ minutes }} minutes)\", html: \"<p>Code <b>{{ code }}</b> pour {{ tenant }}</p>\" }\n  code_sms:\n    fr: \"Code {{ tenant }} : {{ code }}\"\n";
    let s = server_with(&(smtp(mail.port) + &twilio(&sms.base_url) + templates)).await;
    let token = s.me_token(ME_SCOPES).await;
    let send = |lang: &'static str, body: Value| {
        let (s, token) = (&s, token.clone());
        async move {
            s.http()
                .post(s.url("/me/v1/authentication-methods"))
                .bearer_auth(token)
                .header("accept-language", lang)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        send(
            "fr-CH, fr;q=0.9, en;q=0.5",
            json!({"type": "email", "email": "fr@example.com"})
        )
        .await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        send("de", json!({"type": "email", "email": "de@example.com"})).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        send("it", json!({"type": "email", "email": "it@example.com"})).await,
        StatusCode::ACCEPTED
    );
    let mails = mail.wait_for(3).await;
    let fr = mails
        .iter()
        .find(|m| m.to == vec!["fr@example.com".to_string()])
        .unwrap();
    assert!(fr.header("subject").unwrap().starts_with("Votre code "));
    assert!(fr.text().starts_with("Code : ") && fr.text().contains("(5 minutes)"));
    assert!(fr.html().contains("<b>") && fr.html().contains("pour acme"));
    let de = mails
        .iter()
        .find(|m| m.to == vec!["de@example.com".to_string()])
        .unwrap();
    // No template of the tenant's in German: latchkey's own German words.
    assert!(
        de.header("subject")
            .unwrap()
            .contains("ist Ihr Bestätigungscode für acme"),
        "{:?}",
        de.header("subject")
    );
    let it = mails
        .iter()
        .find(|m| m.to == vec!["it@example.com".to_string()])
        .unwrap();
    assert!(
        it.header("subject")
            .unwrap()
            .contains("is your acme verification code"),
        "a language latchkey does not speak: English, the default"
    );

    assert_eq!(
        send(
            "fr",
            json!({"type": "phone", "phone_number": "+33612345678"})
        )
        .await,
        StatusCode::ACCEPTED
    );
    let got = sms.wait_for(1).await;
    assert!(got[0].text.starts_with("Code acme : "), "{}", got[0].text);

    // A template that does not parse is refused when the file is applied.
    let bad = acme(s.port) + "messages:\n  code_sms:\n    en: \"{{ code \"\n";
    let err = latchkey::tenant::apply::apply_text(&s.state, &bad)
        .await
        .unwrap_err();
    assert!(err.contains("messages.code_sms.en"), "{err}");
}
