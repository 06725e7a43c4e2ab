//! What an upstream login refuses: connections the application may not
//! use, states forged, replayed, expired or brought by another browser, an
//! ID token for another nonce or badly signed, a provider that refuses or
//! is down; and the failures counted against the IP.

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::upstream::oidc::Tamper;

/// The page a refused callback gets (a login's, or that of a state no
/// login knows).
async fn refused_page(res: reqwest::Response) {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body = res.text().await.unwrap();
    assert!(body.contains("start again"), "{body}");
}

#[tokio::test]
async fn the_connection_parameter_and_the_login_buttons() {
    let rig = Rig::start(
        |issuer| {
            oidc_connection(
                "acme-oidc",
                issuer,
                "    display_name: \"<b>Acme</b> & co\"\n",
            ) + &oidc_connection(
                "vault-only",
                issuer,
                "    authentication: { active: false }\n    connected_accounts: { active: true }\n",
            ) + &oidc_connection("web-only", issuer, "")
                .replace("enabled_clients: [spa]", "enabled_clients: [web]")
        },
        "",
    )
    .await;
    let s = &rig.s;
    let browser = s.browser();
    let html = login_page(s, &browser, &AuthRequest::new("openid")).await;
    assert!(html.contains("id=\"connection-acme-oidc\""), "{html}");
    // The connection's name is text, never markup.
    assert!(html.contains("Continue with &lt;b&gt;Acme"), "{html}");
    assert!(!html.contains("<b>Acme"), "{html}");
    assert!(!html.contains("connection-vault-only"), "{html}");
    assert!(!html.contains("connection-web-only"), "{html}");
    let mut other_app = AuthRequest::new("openid");
    other_app.client_id = "nogrants";
    let html = login_page(s, &browser, &other_app).await;
    assert!(!html.contains("Continue with"), "{html}");

    // `connection=`: Auth0's errors, back to the app; never a fallback.
    for (client, connection, description) in [
        ("spa", "nope", "the connection was not found"),
        ("spa", "vault-only", "the connection was disabled"),
        ("spa", "web-only", "the connection was disabled"),
        ("nogrants", "acme-oidc", "the connection was disabled"),
    ] {
        let mut req = AuthRequest::new("openid").param("connection", connection);
        req.client_id = client;
        let res = s.browser().get(req.url(s)).send().await.unwrap();
        assert_eq!(
            app_error(&req, &res),
            ("invalid_request".into(), description.into()),
            "{client} {connection}"
        );
    }
    // A database connection's name: its login page.
    let req = AuthRequest::new("openid").param("connection", "Username-Password-Authentication");
    let res = s.browser().get(req.url(s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // A button forged for a connection not offered: the page again.
    let html = login_page(s, &browser, &AuthRequest::new("openid")).await;
    let res = press(s, &browser, &html, "web-only").await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("not available"), "{page}");
    // Another browser's transaction is not this one's.
    let res = press(s, &s.browser(), &html, "acme-oidc").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(rig.idp.requests("authorization").await, 0);
}

#[tokio::test]
async fn forged_replayed_expired_and_foreign_callbacks() {
    let rig = Rig::one("", "").await;
    let s = &rig.s;
    let before = user_count(s).await;
    for path in [
        "/login/callback?state=forged&code=abc",
        "/login/callback?code=abc",
        "/login/callback",
    ] {
        refused_page(s.browser().get(s.url(path)).send().await.unwrap()).await;
    }
    let res = s
        .browser()
        .post(s.url("/login/callback"))
        .form(&[("state", "forged"), ("code", "abc")])
        .send()
        .await
        .unwrap();
    refused_page(res).await;

    let browser = s.browser();
    let req = AuthRequest::new("openid").param("connection", "acme-oidc");
    let back = rig
        .idp
        .login(&browser, &req.url(s), CAROL_EMAIL, CAROL_PASSWORD)
        .await;
    // Brought by another browser (a login planted on a victim), or to the
    // other tenant's host: nothing happens, and the state stays its own.
    refused_page(s.browser().get(&back).send().await.unwrap()).await;
    let elsewhere = back.replace("localhost", "127.0.0.1");
    refused_page(browser.get(&elsewhere).send().await.unwrap()).await;
    let res = browser.get(&back).send().await.unwrap();
    tokens(s, &req, res).await;
    // Used: a replay is refused.
    refused_page(browser.get(&back).send().await.unwrap()).await;
    assert_eq!(user_count(s).await, before + 1);
    assert_eq!(rig.idp.token_requests("authorization_code").await, 1);

    // An `iss` beside the code that is not the provider's (a mix-up): the
    // code is never taken to the provider.
    let browser = s.browser();
    let back = rig
        .idp
        .login(&browser, &req.url(s), CAROL_EMAIL, CAROL_PASSWORD)
        .await;
    let iss = query_param(&back, "iss").expect("oidc-provider sends iss");
    let mixed = back.replace(
        &format!("iss={}", urlencoding(&iss)),
        "iss=https%3A%2F%2Fevil.test%2F",
    );
    assert_ne!(mixed, back);
    let res = browser.get(&mixed).send().await.unwrap();
    assert_eq!(app_error(&req, &res).0, "access_denied");
    assert_eq!(rig.idp.token_requests("authorization_code").await, 1);

    // Expired: ten minutes for the provider.
    let browser = s.browser();
    let back = rig
        .idp
        .login(&browser, &req.url(s), CAROL_EMAIL, CAROL_PASSWORD)
        .await;
    s.clock.advance(upstream_login::UPSTREAM_TTL);
    refused_page(browser.get(&back).send().await.unwrap()).await;
    assert_eq!(rig.idp.token_requests("authorization_code").await, 1);
}

#[tokio::test]
async fn another_nonce_or_signature_is_refused_and_counted_against_the_ip() {
    let throttled = "tenant: { name: acme, domains: [\"localhost:{port}\"],\n  \
        suspicious_ip_throttling: { stage: { pre-login: { max_attempts: 2, rate: 864000 } } } }";
    let rig = Rig::one("", "").await;
    let s = &rig.s;
    let text = acme_with(s.port, &oidc_connection("acme-oidc", rig.idp.issuer(), "")).replace(
        &format!(
            "tenant: {{ name: acme, domains: [\"localhost:{}\"] }}",
            s.port
        ),
        &throttled.replace("{port}", &s.port.to_string()),
    );
    assert!(text.contains("max_attempts: 2"));
    apply(s, &text).await;
    let before = user_count(s).await;
    let req = AuthRequest::new("openid").param("connection", "acme-oidc");
    for tamper in [Tamper::Nonce, Tamper::Signature] {
        rig.idp.tamper_id_tokens(tamper, 1).await;
        let res = rig
            .through(&s.browser(), &req.url(s), CAROL_EMAIL, CAROL_PASSWORD)
            .await;
        assert_eq!(
            app_error(&req, &res),
            (
                "access_denied".into(),
                "The identity provider's answer could not be verified".into()
            ),
            "{tamper:?}"
        );
    }
    assert_eq!(user_count(s).await, before);
    let failed: Vec<_> = events(s)
        .await
        .into_iter()
        .filter(|(t, u, _)| t == "f" && u.is_none())
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed[0].2["error"].as_str().unwrap().contains("nonce"),
        "{failed:?}"
    );
    // Two failures from this IP: the next callback waits.
    let res = rig
        .through(&s.browser(), &req.url(s), CAROL_EMAIL, CAROL_PASSWORD)
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(user_count(s).await, before);
}

#[tokio::test]
async fn the_provider_refuses_or_is_down() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rig = Rig::start(
        |issuer| {
            oidc_connection("acme-oidc", issuer, "")
                + &oidc_connection("down", &format!("http://127.0.0.1:{closed}/"), "")
        },
        "",
    )
    .await;
    let s = &rig.s;

    // The user cancels at the provider: the app gets the provider's error,
    // with its own state, and the login is over.
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let html = login_page(s, &browser, &req).await;
    let to = location(&press(s, &browser, &html, "acme-oidc").await);
    let back = rig.idp.cancel_login(&browser, &to).await;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    let res = browser.get(&back).send().await.unwrap();
    let (error, description) = app_error(&req, &res);
    assert_eq!(error, "access_denied");
    assert!(!description.is_empty());
    let res = submit_login(&browser, &s.url("/login"), &html, ALICE, ALICE_PASSWORD).await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "the transaction ended"
    );
    assert_eq!(
        events(s)
            .await
            .last()
            .map(|(t, _, d)| (t.clone(), d["connection"].clone())),
        Some(("f".into(), json!("acme-oidc")))
    );

    // Its token endpoint fails.
    rig.idp.fail_token_endpoint(503, 1).await;
    let req = AuthRequest::new("openid").param("connection", "acme-oidc");
    let res = rig
        .through(&s.browser(), &req.url(s), CAROL_EMAIL, CAROL_PASSWORD)
        .await;
    assert_eq!(
        app_error(&req, &res),
        (
            "temporarily_unavailable".into(),
            "The identity provider could not be reached".into()
        )
    );

    // Unreachable from the start: the app is told, or the page says so.
    let req = AuthRequest::new("openid").param("connection", "down");
    let res = s.browser().get(req.url(s)).send().await.unwrap();
    assert_eq!(app_error(&req, &res).0, "temporarily_unavailable");
    let browser = s.browser();
    let html = login_page(s, &browser, &AuthRequest::new("openid")).await;
    let res = press(s, &browser, &html, "down").await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("could not be reached"), "{page}");
}

/// `s` as a query string writes it.
fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
