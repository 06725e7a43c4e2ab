//! `POST /passwordless/verify`, as auth0-js's `passwordless.verify` and
//! `passwordlessVerify` call it (`{connection, verification_code, email |
//! phone_number, client_id}`): a right code is checked without being spent
//! (the `passwordless/otp` grant or the redirect spends it); a wrong one
//! counts against it as at the grant; another client's, another tenant's, an
//! expired or spent code, unknown connections and malformed input are
//! refused, and nothing is made or issued. `GET
//! /passwordless/verify_redirect` (where `passwordlessVerify` sends the
//! browser next) spends the code and signs in as the hosted page does.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::passwordless::{email_code, file, grant, log, mailed, rig, rig_with, start, texted};
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
    let code = texted(&rig, 1, "+15550003333").await;
    let body = json!({"client_id": "spa", "connection": "sms", "phone_number": "+15550003333",
        "verification_code": code});
    let (status, answer) = verify(s, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let bad = json!({"client_id": "spa", "connection": "sms", "phone_number": "+15550003333",
        "verification_code": wrong_code(&code)});
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
        let (status, body) = verify(s, email_body("spa", to, &wrong_code(&code))).await;
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
async fn a_right_check_keeps_the_last_attempt_and_racing_answers_spend_once() {
    let rig = rig("").await;
    let s = &rig.s;
    let to = "rhea@example.com";
    email_code(s, to).await;
    let code = mailed(&rig, 1, to).await;
    for _ in 0..2 {
        assert_eq!(
            verify(s, email_body("spa", to, &wrong_code(&code))).await.0,
            StatusCode::FORBIDDEN
        );
    }
    // One attempt left: right checks give theirs back, however many.
    for _ in 0..3 {
        let (status, body) = verify(s, email_body("spa", to, &code)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Right answers racing at the grant: one signs in, the others are refused.
    let answer = || grant(s, "spa", "email", to, &code);
    let (a, b, c, d, e, f) =
        tokio::join!(answer(), answer(), answer(), answer(), answer(), answer());
    let outcomes = [a, b, c, d, e, f];
    let signed_in = outcomes
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(signed_in, 1, "{outcomes:?}");
    for (status, body) in outcomes.iter().filter(|(st, _)| *st != StatusCode::OK) {
        assert_eq!(*status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }
    let logins = log(s).await.into_iter().filter(|e| e.event_type == "s");
    assert_eq!(logins.count(), 1);

    // A code replaced by a newer one is not spent by its answer: the newer
    // one still signs in.
    email_code(s, to).await;
    let newer = mailed(&rig, 2, to).await;
    if newer != code {
        assert_eq!(
            grant(s, "spa", "email", to, &code).await.0,
            StatusCode::FORBIDDEN
        );
    }
    let (status, body) = grant(s, "spa", "email", to, &newer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn another_clients_or_tenants_code_is_refused() {
    let rig = rig("").await;
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

/// auth0-js's `buildVerifyUrl`: the authorization request's parameters,
/// with the connection, the address and the code.
fn verify_redirect_url(s: &TestServer, req: &AuthRequest, email: &str, code: &str) -> String {
    let extra = serde_urlencoded::to_string([
        ("connection", "email"),
        ("email", email),
        ("verification_code", code),
    ])
    .unwrap();
    req.url(s)
        .replace("/authorize?", "/passwordless/verify_redirect?")
        + "&"
        + &extra
}

#[tokio::test]
async fn verify_redirect_spends_the_code_and_signs_in() {
    let rig = rig("").await;
    let s = &rig.s;
    let to = "yuri@example.com";
    email_code(s, to).await;
    let code = mailed(&rig, 1, to).await;
    assert_eq!(
        verify(s, email_body("spa", to, &code)).await.0,
        StatusCode::OK
    );
    let browser = s.browser();
    let req = AuthRequest::new("openid email");
    let url = verify_redirect_url(s, &req, to, &code);
    let res = browser.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&req.redirect_uri), "{location}");
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some(req.state.as_str())
    );
    let (status, tokens) = exchange(s, &req, &query_param(&location, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert!(id["sub"].as_str().unwrap().starts_with("email|"), "{id}");
    assert_eq!(id["amr"], json!(["otp"]));
    // The browser has a session: /authorize answers at once.
    let again = AuthRequest::new("openid").param("prompt", "none");
    let res = browser.get(again.url(s)).send().await.unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(query_param(&location, "code").is_some(), "{location}");

    // A second use: an error for the app, nothing issued.
    let res = browser.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert!(query_param(&location, "code").is_none(), "{location}");
}

#[tokio::test]
async fn verify_redirect_refuses_foreign_callbacks_expiry_and_other_tenants() {
    let rig = rig("").await;
    let s = &rig.s;
    let to = "zoe@example.com";
    email_code(s, to).await;
    let code = mailed(&rig, 1, to).await;
    let browser = s.browser();
    // A redirect_uri that is not among the client's callbacks: a page,
    // nothing sent anywhere, the code untouched.
    let mut req = AuthRequest::new("openid");
    req.redirect_uri = "https://evil.example/cb".into();
    let res = browser
        .get(verify_redirect_url(s, &req, to, &code))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
    // Another tenant's host: it has no such connection; nothing issued.
    let req = AuthRequest::new("openid");
    let path = verify_redirect_url(s, &req, to, &code).replace(&s.url(""), "");
    let res = s
        .as_host(
            reqwest::Method::GET,
            &format!("127.0.0.1:{}", s.port),
            &path,
        )
        .send()
        .await
        .unwrap();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        res.status().is_client_error() || query_param(&location, "error").is_some(),
        "{location}"
    );
    assert!(query_param(&location, "code").is_none(), "{location}");
    // Expired: an error for the app.
    s.clock.advance(181);
    let res = browser
        .get(verify_redirect_url(s, &req, to, &code))
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert!(!log(s).await.iter().any(|e| e.event_type == "s"));
}

#[tokio::test]
async fn verify_redirect_answers_in_the_response_mode_and_leads_to_the_second_step() {
    let rig = rig("").await;
    let s = &rig.s;
    // form_post: the code goes to the app in a posted form.
    let to = "ines@example.com";
    email_code(s, to).await;
    let code = mailed(&rig, 1, to).await;
    let req = AuthRequest::new("openid").param("response_mode", "form_post");
    let res = s
        .browser()
        .get(verify_redirect_url(s, &req, to, &code))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    // The action is the callback, HTML-escaped.
    let action = req.redirect_uri.replace('/', "&#x2f;");
    assert!(html.contains(&format!("action=\"{action}\"")), "{html}");
    assert_eq!(
        hidden_input(&html, "state").as_deref(),
        Some(req.state.as_str())
    );
    let posted = hidden_input(&html, "code").expect("the code is posted");
    let (status, tokens) = exchange(s, &req, &posted).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    // With MFA always, a first-time user is asked to enroll a second factor
    // next, in this browser's login transaction; nothing is issued yet.
    let with_mfa = file(s.port, &rig.mail, &rig.sms, "") + crate::mfa_api::ALWAYS;
    latchkey::tenant::apply::apply_text(&s.state, &with_mfa)
        .await
        .unwrap();
    let to = "jon@example.com";
    s.clock.advance(1);
    email_code(s, to).await;
    let code = mailed(&rig, 2, to).await;
    let req = AuthRequest::new("openid");
    let res = s
        .browser()
        .get(verify_redirect_url(s, &req, to, &code))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let bound = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("latchkey_tx="));
    assert!(bound, "the step's transaction is bound to this browser");
    let step = res.text().await.unwrap();
    assert!(step.contains("action=\"/login/mfa/enroll\""), "{step}");
    assert!(!step.contains("code="), "{step}");
}

/// An SMS connection's link is read by its phone number, whatever else the
/// query holds (an empty `email=` as a client may send it).
#[tokio::test]
async fn verify_redirect_reads_the_address_the_connection_uses() {
    let rig = rig("").await;
    let s = &rig.s;
    let (status, body) = start(
        s,
        json!({"client_id": "spa", "connection": "sms", "phone_number": "+15550004444"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = texted(&rig, 1, "+15550004444").await;
    let req = AuthRequest::new("openid");
    let extra = serde_urlencoded::to_string([
        ("connection", "sms"),
        ("email", ""),
        ("phone_number", "+15550004444"),
        ("verification_code", code.as_str()),
    ])
    .unwrap();
    let url = req
        .url(s)
        .replace("/authorize?", "/passwordless/verify_redirect?")
        + "&"
        + &extra;
    let res = s.browser().get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(query_param(&location, "code").is_some(), "{location}");
}

#[tokio::test]
async fn verify_redirect_answers_in_the_fragment_and_is_throttled_as_passwords_are() {
    let rig = rig_with(&[acme, other_tenant], |port, mail, sms| {
        // An IP may fail twice.
        let tenant = file(port, mail, sms, "").replacen(
            "tenant: { name: acme, domains: [\"localhost:",
            "tenant: { suspicious_ip_throttling: { stage: { pre-login: { max_attempts: 2, rate: 864000 } } },\n          name: acme, domains: [\"localhost:",
            1,
        );
        assert_ne!(tenant, file(port, mail, sms, ""));
        tenant
    })
    .await;
    let s = &rig.s;
    let to = "fern@example.com";
    email_code(s, to).await;
    let code = mailed(&rig, 1, to).await;
    // response_mode=fragment: the code after '#', none in the query.
    let req = AuthRequest::new("openid").param("response_mode", "fragment");
    let res = s
        .browser()
        .get(verify_redirect_url(s, &req, to, &code))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let (before, fragment) = location.split_once('#').expect("a fragment");
    assert!(before.starts_with(&req.redirect_uri), "{location}");
    assert!(!before.contains("code="), "{location}");
    let answer = format!("{}?{fragment}", req.redirect_uri);
    assert_eq!(
        query_param(&answer, "state").as_deref(),
        Some(req.state.as_str())
    );
    let (status, tokens) = exchange(s, &req, &query_param(&answer, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    // Two wrong answers spend this IP's attempts; the third request, right
    // or wrong, is the 429 page.
    email_code(s, to).await;
    let code = mailed(&rig, 2, to).await;
    let req = AuthRequest::new("openid");
    for _ in 0..2 {
        let res = s
            .browser()
            .get(verify_redirect_url(s, &req, to, &wrong_code(&code)))
            .send()
            .await
            .unwrap();
        let location = res.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some("access_denied")
        );
    }
    let res = s
        .browser()
        .get(verify_redirect_url(s, &req, to, &code))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().get("retry-after").is_some());
    assert!(res.headers().get("location").is_none());
    assert_eq!(
        log(s).await.iter().filter(|e| e.event_type == "s").count(),
        1
    );
}
