//! `/authorize`, the hosted login page, and the authorization code grant.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn code_flow_with_pkce_end_to_end() {
    let s = TestServer::start().await;
    let browser = s.browser();
    let aud = s.my_account_audience();
    let req =
        AuthRequest::new("openid profile email offline_access read:me:authentication_methods")
            .audience(&aud);
    let code = code_for(&s, &browser, &req).await;
    s.clock.advance(5);
    let (status, body) = exchange(&s, &req, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["scope"],
        "openid profile email offline_access read:me:authentication_methods"
    );
    assert!(body["refresh_token"].is_string());
    let access_token = body["access_token"].as_str().unwrap();
    let at = claims(access_token);
    assert_eq!(at["aud"], json!([aud, format!("{}userinfo", s.issuer)]));
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["iss"], s.issuer);
    assert_eq!(id["aud"], "spa");
    assert_eq!(id["azp"], "spa");
    assert_eq!(id["sub"], "auth0|alice");
    assert_eq!(id["nonce"], req.nonce);
    assert_eq!(id["auth_time"], START);
    assert_eq!(id["iat"], START + 5);
    assert_eq!(
        id["at_hash"],
        latchkey::crypto::hash::half_hash_b64url(access_token.as_bytes())
    );
    let (status, info) = userinfo(&s, access_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["sub"], "auth0|alice");
    assert_eq!(info["email"], ALICE);
}

#[tokio::test]
async fn pkce_mismatch_and_missing_verifier_fail() {
    let s = TestServer::start().await;
    let browser = s.browser();
    let mut req = AuthRequest::new("openid");
    let code = code_for(&s, &browser, &req).await;
    let right = std::mem::replace(&mut req.verifier, pkce().0);
    let (status, body) = exchange(&s, &req, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
    // The code was spent by the failed attempt: the right verifier is too late.
    req.verifier = right;
    assert_eq!(exchange(&s, &req, &code).await.1["error"], "invalid_grant");

    let req = AuthRequest::new("openid");
    let code = code_for(&s, &browser, &req).await;
    let (status, body) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", &req.redirect_uri),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn public_clients_must_use_pkce_s256() {
    let s = TestServer::start().await;
    let browser = s.browser();
    for (challenge, method) in [(None, None), (Some("abc"), Some("plain"))] {
        let mut q = vec![
            ("response_type", "code"),
            ("client_id", "spa"),
            ("redirect_uri", "http://localhost:5173/cb"),
            ("state", "s1"),
        ];
        if let Some(c) = challenge {
            q.push(("code_challenge", c));
        }
        if let Some(m) = method {
            q.push(("code_challenge_method", m));
        }
        let res = browser
            .get(s.url("/authorize"))
            .query(&q)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FOUND);
        let loc = res.headers()["location"].to_str().unwrap();
        assert_eq!(
            query_param(loc, "error").as_deref(),
            Some("invalid_request"),
            "{loc}"
        );
        assert_eq!(query_param(loc, "state").as_deref(), Some("s1"));
    }
}

#[tokio::test]
async fn code_reuse_is_refused_and_revokes_what_the_code_produced() {
    let s = TestServer::start().await;
    let browser = s.browser();
    let req = AuthRequest::new("openid offline_access read:me:factors")
        .audience(&s.my_account_audience());
    let code = code_for(&s, &browser, &req).await;
    let (status, first) = exchange(&s, &req, &code).await;
    assert_eq!(status, StatusCode::OK);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&s, access).await.0, StatusCode::OK);

    let (status, body) = exchange(&s, &req, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
    // Everything the first exchange produced is dead.
    let (status, body) = userinfo(&s, access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn codes_expire_and_belong_to_their_client() {
    let s = TestServer::start().await;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let code = code_for(&s, &browser, &req).await;
    s.clock.advance(61);
    assert_eq!(exchange(&s, &req, &code).await.1["error"], "invalid_grant");

    let req = AuthRequest::new("openid");
    let code = code_for(&s, &browser, &req).await;
    let (status, body) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "web"),
            ("client_secret", "web-secret-value"),
            ("code", &code),
            ("redirect_uri", &req.redirect_uri),
            ("code_verifier", &req.verifier),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn redirect_uri_must_match() {
    let s = TestServer::start().await;
    let browser = s.browser();
    // At /authorize an unregistered URI is never redirected to.
    let mut req = AuthRequest::new("openid");
    req.redirect_uri = "https://evil.example/cb".into();
    let res = browser.get(req.url(&s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
    assert!(res.text().await.unwrap().contains("redirect_uri"));
    // At the token endpoint it must equal the one the code was issued for.
    let req = AuthRequest::new("openid");
    let code = code_for(&s, &browser, &req).await;
    let (status, body) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", "http://localhost:5173/other"),
            ("code_verifier", &req.verifier),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn confidential_client_code_flow() {
    let s = TestServer::start().await;
    let browser = s.browser();
    let mut req = AuthRequest::new("openid email");
    req.client_id = "web";
    req.redirect_uri = "https://web.acme.test/callback".into();
    let code = code_for(&s, &browser, &req).await;
    let (status, body) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "web"),
            ("code", &code),
            ("redirect_uri", &req.redirect_uri),
            ("code_verifier", &req.verifier),
        ])
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a confidential client must authenticate"
    );
    assert_eq!(body["error"], "invalid_client");
    let code = code_for(&s, &browser, &req).await;
    let (status, body) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "web"),
            ("client_secret", "web-secret-value"),
            ("code", &code),
            ("redirect_uri", &req.redirect_uri),
            ("code_verifier", &req.verifier),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(claims(body["id_token"].as_str().unwrap())["aud"], "web");
}

#[tokio::test]
async fn wrong_password_on_the_page_shows_an_error_and_no_redirect() {
    let s = TestServer::start().await;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let res = login_through_page(&s, &browser, &req, ALICE, "not-the-password").await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("class=\"error\""));
    assert!(html.contains("Wrong email or password."));
    // The email stays; focus goes to the password, and both fields are tied
    // to the error for screen readers.
    let input = |id: &str| {
        html.split(&format!("<input id=\"{id}\""))
            .nth(1)
            .and_then(|r| r.split('>').next())
            .unwrap()
            .to_string()
    };
    let (username, password) = (input("username"), input("password"));
    assert!(
        username.contains(&format!("value=\"{ALICE}\"")),
        "{username}"
    );
    assert!(!username.contains("autofocus"), "{username}");
    assert!(password.contains("autofocus"), "{password}");
    for field in [&username, &password] {
        assert!(
            field.contains("aria-invalid=\"true\" aria-describedby=\"login-error\""),
            "{field}"
        );
    }
    assert!(html.contains("id=\"login-error\""));
    // The same form can be submitted again with the right password.
    let tx = hidden_input(&html, "tx").unwrap();
    let res = browser
        .post(s.url("/login"))
        .form(&[
            ("tx", tx.as_str()),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn a_login_form_only_works_in_the_browser_that_opened_it() {
    let s = TestServer::start().await;
    let victim = s.browser();
    let attacker = s.browser();
    let req = AuthRequest::new("openid");
    let html = attacker
        .get(req.url(&s))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tx = hidden_input(&html, "tx").unwrap();
    let res = victim
        .post(s.url("/login"))
        .form(&[
            ("tx", tx.as_str()),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
}

#[tokio::test]
async fn login_pages_expire() {
    let s = TestServer::start().await;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let html = browser
        .get(req.url(&s))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tx = hidden_input(&html, "tx").unwrap();
    s.clock.advance(16 * 60);
    let res = browser
        .post(s.url("/login"))
        .form(&[
            ("tx", tx.as_str()),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    let s = TestServer::start().await;
    let req = AuthRequest::new("openid").param("prompt", "none");
    let res = s.browser().get(req.url(&s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let loc = res.headers()["location"].to_str().unwrap();
    assert_eq!(query_param(loc, "error").as_deref(), Some("login_required"));
    assert_eq!(
        query_param(loc, "state").as_deref(),
        Some(req.state.as_str())
    );
}

#[tokio::test]
async fn the_session_gives_single_sign_on_and_prompt_login_asks_again() {
    let s = TestServer::start().await;
    let browser = s.browser();
    code_for(&s, &browser, &AuthRequest::new("openid")).await;
    s.clock.advance(120);
    // Silent authentication: a code straight away, auth_time from the login.
    let req = AuthRequest::new("openid").param("prompt", "none");
    let res = browser.get(req.url(&s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let code = query_param(res.headers()["location"].to_str().unwrap(), "code").unwrap();
    let (_, body) = exchange(&s, &req, &code).await;
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["auth_time"],
        START
    );
    // max_age shorter than the session's age forces a login...
    let req = AuthRequest::new("openid").param("max_age", "60");
    let res = browser.get(req.url(&s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the login page");
    // ...and with prompt=none that is login_required.
    let req = AuthRequest::new("openid")
        .param("max_age", "60")
        .param("prompt", "none");
    let res = browser.get(req.url(&s)).send().await.unwrap();
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("login_required")
    );
    // prompt=login shows the page even with a session.
    let req = AuthRequest::new("openid").param("prompt", "login");
    let res = browser.get(req.url(&s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn response_modes_fragment_form_post_and_web_message() {
    let s = TestServer::start().await;
    let browser = s.browser();

    let req = AuthRequest::new("openid").param("response_mode", "fragment");
    let res = login_through_page(&s, &browser, &req, ALICE, ALICE_PASSWORD).await;
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(&format!("{APP}/cb#code=")), "{loc}");

    let req = AuthRequest::new("openid").param("response_mode", "form_post");
    let res = browser.get(req.url(&s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html_unescape(&html).contains(&format!("action=\"{APP}/cb\"")));
    let code = hidden_input(&html, "code").unwrap();
    assert_eq!(hidden_input(&html, "state").unwrap(), req.state);
    assert_eq!(exchange(&s, &req, &code).await.0, StatusCode::OK);

    let req = AuthRequest::new("openid")
        .param("response_mode", "web_message")
        .param("prompt", "none");
    let res = browser.get(req.url(&s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers().get("x-frame-options").is_none(),
        "it runs in the app's iframe"
    );
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let html = res.text().await.unwrap();
    assert!(html.contains("authorization_response"));
    assert!(
        html.contains(&format!("\"{APP}\"")),
        "posted only to the app's origin"
    );
    assert!(html.contains(&req.state));
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")));

    // Without a session, web_message carries the error the same way.
    let req = AuthRequest::new("openid")
        .param("response_mode", "web_message")
        .param("prompt", "none");
    let html = s
        .browser()
        .get(req.url(&s))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("login_required"));
}

#[tokio::test]
async fn authorize_errors_before_and_after_the_client_is_known() {
    let s = TestServer::start().await;
    let browser = s.browser();
    let res = browser
        .get(s.url("/authorize?client_id=ghost&response_type=code"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());

    let req = AuthRequest::new("openid").param("response_type", "none");
    let url = req.url(&s).replace("response_type=code&", "");
    let res = browser.get(url).send().await.unwrap();
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("unsupported_response_type")
    );

    let req = AuthRequest::new("openid").audience("https://nowhere.example/");
    let res = browser.get(req.url(&s)).send().await.unwrap();
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(query_param(&loc, "error").as_deref(), Some("access_denied"));
}

#[tokio::test]
async fn a_token_from_one_tenant_is_refused_by_another() {
    let s = TestServer::start().await;
    let body = s.password_login("openid", None).await;
    let at = body["access_token"].as_str().unwrap();
    // Same server, the other tenant's host.
    let res = s
        .http()
        .get(format!("http://127.0.0.1:{}/userinfo", s.port))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // And a token of the other tenant is refused here, though the user ID is the same.
    let res = s
        .http()
        .post(format!("http://127.0.0.1:{}/oauth/token", s.port))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let other: serde_json::Value = res.json().await.unwrap();
    let (status, _) = userinfo(&s, other["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn two_domains(port: u16) -> String {
    acme(port).replace(
        &format!("domains: [\"localhost:{port}\"]"),
        &format!("domains: [\"localhost:{port}\", \"127.0.0.1:{port}\"]"),
    )
}

#[tokio::test]
async fn a_token_is_only_good_on_the_host_it_was_minted_for() {
    let s = TestServer::with_tenants(&[two_domains]).await;
    let custom = format!("http://127.0.0.1:{}", s.port);
    // Same tenant, same keys, two hosts: each host is its own issuer.
    let doc: serde_json::Value = s
        .http()
        .get(format!("{custom}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], format!("{custom}/"));
    let body = s.password_login("openid", None).await;
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&s, at).await.0, StatusCode::OK);
    let res = s
        .http()
        .get(format!("{custom}/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // The My Account audience of one host cannot be requested on the other.
    let res = s
        .http()
        .post(format!("{custom}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("audience", &s.my_account_audience()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// The signing key cannot be loaded when a code is exchanged: the client is
/// told to try again, so the code must not have been spent (a spent code
/// presented again revokes its grant): the retry gets the tokens.
#[tokio::test]
async fn an_exchange_that_cannot_be_answered_leaves_the_code_unspent() {
    let s = TestServer::start().await;
    let req = AuthRequest::new("openid offline_access");
    let code = code_for(&s, &s.browser(), &req).await;
    s.sql("ALTER TABLE signing_keys RENAME TO signing_keys_away")
        .await;
    // Past the 5 seconds the keys are held in memory.
    s.clock.advance(6);
    let (status, body) = exchange(&s, &req, &code).await;
    assert!(status.is_server_error(), "{status} {body}");
    s.sql("ALTER TABLE signing_keys_away RENAME TO signing_keys")
        .await;
    let (status, body) = exchange(&s, &req, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        userinfo(&s, body["access_token"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
    let (status, _) = s.refresh(body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}
