//! Magic links (`POST /passwordless/start` with `send: "link"`, email's
//! default): the authorization request of `authParams` is validated as
//! `/authorize` validates it before anything is sent; the mail holds
//! `{issuer}passwordless/verify_redirect?…&verification_code=…`, which signs
//! in once, within five minutes, and only with the request it was made for
//! (the code neither answers another request nor works typed at the grant or
//! `/passwordless/verify`); the mail speaks the caller's language.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::passwordless::{Rig, grant, log, mailed, rig, start};
use crate::support::*;

/// `authParams` as auth0-js sends them for `req` (snake case).
fn auth_params(req: &AuthRequest) -> Value {
    json!({
        "response_type": "code",
        "redirect_uri": req.redirect_uri,
        "scope": req.scope,
        "state": req.state,
        "nonce": req.nonce,
        "code_challenge": req.challenge,
        "code_challenge_method": "S256",
    })
}

async fn link_start(s: &TestServer, email: &str, auth: Value) -> (StatusCode, Value) {
    start(
        s,
        json!({"client_id": "spa", "connection": "email", "email": email, "send": "link",
            "authParams": auth}),
    )
    .await
}

/// The link in the `n`th mail (1-based), sent to `to`.
async fn mailed_link(rig: &Rig, n: usize, to: &str) -> String {
    let mail = rig.mail.wait_for(n).await[n - 1].clone();
    assert_eq!(mail.to, [to.to_string()]);
    let text = mail.text();
    text.lines()
        .find(|l| l.contains("/passwordless/verify_redirect?"))
        .unwrap_or_else(|| panic!("no link in {text}"))
        .trim()
        .to_string()
}

/// Opens `url` in `browser`: the redirect's location.
async fn open(browser: &reqwest::Client, url: &str) -> String {
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "{url}");
    res.headers()["location"].to_str().unwrap().to_string()
}

/// `url` with its query parameter `name` set to `value`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').unwrap();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    let pairs: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(k, v)| {
            if k == name {
                (k, value.to_string())
            } else {
                (k, v)
            }
        })
        .collect();
    format!("{base}?{}", serde_urlencoded::to_string(pairs).unwrap())
}

#[tokio::test]
async fn a_mailed_link_signs_in_once() {
    let rig = rig("").await;
    let s = &rig.s;
    let to = "lena@example.com";
    let req = AuthRequest::new("openid email");
    let (status, body) = link_start(s, to, auth_params(&req)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], to);
    assert_eq!(body["email_verified"], false);
    let link = mailed_link(&rig, 1, to).await;
    // On this tenant's issuer, carrying the request, the connection, the
    // address and the code.
    assert!(
        link.starts_with(&s.url("/passwordless/verify_redirect?")),
        "{link}"
    );
    for (name, value) in [
        ("client_id", "spa"),
        ("response_type", "code"),
        ("redirect_uri", req.redirect_uri.as_str()),
        ("state", req.state.as_str()),
        ("connection", "email"),
        ("email", to),
    ] {
        assert_eq!(query_param(&link, name).as_deref(), Some(value), "{link}");
    }
    let code = query_param(&link, "verification_code").unwrap();
    assert_eq!(code.len(), 6, "{link}");
    let mail = rig.mail.messages().await[0].clone();
    assert_eq!(mail.header("Subject").unwrap(), "Log in to acme");
    assert!(mail.text().contains("5 minutes"), "{}", mail.text());
    assert!(mail.html().contains("href=\""), "{}", mail.html());

    let browser = s.browser();
    let location = open(&browser, &link).await;
    assert!(location.starts_with(&req.redirect_uri), "{location}");
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some(req.state.as_str())
    );
    let (status, tokens) = exchange(s, &req, &query_param(&location, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert!(id["sub"].as_str().unwrap().starts_with("email|"), "{id}");
    assert_eq!(id["email"], to);
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["amr"], json!(["otp"]));
    // The browser that opened it has a session.
    let again = AuthRequest::new("openid").param("prompt", "none");
    let location = open(&browser, &again.url(s)).await;
    assert!(query_param(&location, "code").is_some(), "{location}");
    // Opened again (a mail scanner, a second click): an error for the app,
    // nothing issued.
    let location = open(&s.browser(), &link).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert!(query_param(&location, "code").is_none(), "{location}");
    let types: Vec<String> = log(s).await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["cls", "ss", "s", "seacft", "f"]);
}

#[tokio::test]
async fn a_links_code_answers_only_the_request_it_was_made_for() {
    let rig = rig("").await;
    let s = &rig.s;
    let to = "otto@example.com";
    let req = AuthRequest::new("openid");
    link_start(s, to, auth_params(&req)).await;
    let link = mailed_link(&rig, 1, to).await;
    let code = query_param(&link, "verification_code").unwrap();
    // Another state (a request the app did not make): refused, counted.
    let location = open(&s.browser(), &with_param(&link, "state", "forged")).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied"),
        "{location}"
    );
    assert!(query_param(&location, "code").is_none(), "{location}");
    // Another nonce (an ID token for someone else's request): refused, counted.
    let location = open(&s.browser(), &with_param(&link, "nonce", "forged")).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied"),
        "{location}"
    );
    // Typed at the grant: refused, counted; the third wrong answer kills it.
    let (status, body) = grant(s, "spa", "email", to, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let location = open(&s.browser(), &link).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert!(!log(s).await.iter().any(|e| e.event_type == "s"));

    // A code sent to be typed is bound to no request: verify_redirect takes
    // it with any valid request of its client (auth0-js's
    // `passwordlessVerify` builds one), as Auth0's does.
    let to = "ugo@example.com";
    start(
        s,
        json!({"client_id": "spa", "connection": "email", "email": to, "send": "code"}),
    )
    .await;
    let typed = mailed(&rig, 2, to).await;
    let url = with_param(&with_param(&link, "email", to), "verification_code", &typed);
    let location = open(&s.browser(), &url).await;
    assert!(query_param(&location, "code").is_some(), "{location}");
}

#[tokio::test]
async fn links_expire_and_bad_requests_send_nothing() {
    let rig = rig("").await;
    let s = &rig.s;
    let to = "pia@example.com";
    let req = AuthRequest::new("openid");
    link_start(s, to, auth_params(&req)).await;
    let link = mailed_link(&rig, 1, to).await;
    // Still good at 4 minutes 59 seconds (a code typed would be dead)...
    s.clock.advance(299);
    let location = open(&s.browser(), &link).await;
    assert!(query_param(&location, "code").is_some(), "{location}");
    // ...and dead after five minutes.
    link_start(s, to, auth_params(&req)).await;
    let link = mailed_link(&rig, 2, to).await;
    s.clock.advance(301);
    let location = open(&s.browser(), &link).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );

    // Requests /authorize would refuse: refused here, in its words, and
    // nothing sent.
    let mut foreign = auth_params(&req);
    foreign["redirect_uri"] = json!("https://evil.example/cb");
    let mut implicit_less = auth_params(&req);
    implicit_less["response_type"] = json!("pigeon");
    let mut no_pkce = auth_params(&req);
    no_pkce.as_object_mut().unwrap().remove("code_challenge");
    let mut not_text = auth_params(&req);
    not_text["scope"] = json!(["openid"]);
    let cases = [
        (foreign, "invalid_request", "redirect_uri"),
        (implicit_less, "unsupported_response_type", ""),
        (no_pkce, "invalid_request", "code_challenge"),
        (not_text, "invalid_request", "authParams.scope"),
        (json!({}), "invalid_request", "response_type"),
    ];
    for (auth, error, says) in cases {
        let (status, body) = link_start(s, "quinn@example.com", auth.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{auth} → {body}");
        assert_eq!(body["error"], error, "{auth} → {body}");
        assert!(
            body["error_description"].as_str().unwrap().contains(says),
            "{auth} → {body}"
        );
    }
    // A link by SMS: refused.
    let (status, body) = start(
        s,
        json!({"client_id": "spa", "connection": "sms", "phone_number": "+15550004444",
            "send": "link", "authParams": auth_params(&req)}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "bad.send");
    assert_eq!(rig.mail.messages().await.len(), 2);
    assert!(rig.sms.messages().await.is_empty());
}

#[tokio::test]
async fn a_link_works_on_its_tenant_alone_and_mails_in_the_callers_language() {
    let rig = rig("").await;
    let s = &rig.s;
    let to = "remy@example.com";
    let req = AuthRequest::new("openid");
    let res = s
        .http()
        .post(s.url("/passwordless/start"))
        .header("x-request-language", "fr")
        .json(
            &json!({"client_id": "spa", "connection": "email", "email": to,
            "authParams": auth_params(&req)}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let link = mailed_link(&rig, 1, to).await;
    let sent = rig.mail.messages().await[0].clone();
    assert_eq!(sent.header("Subject").unwrap(), "Connexion à acme");
    assert!(sent.text().contains("5 minutes"), "{}", sent.text());
    // Opened on the other tenant's host: nothing issued there.
    let path = link.replace(&s.url(""), "");
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
    assert!(query_param(&location, "code").is_none(), "{location}");
    // Still good on its own.
    let location = open(&s.browser(), &link).await;
    assert!(query_param(&location, "code").is_some(), "{location}");
}
