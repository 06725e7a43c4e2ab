//! `/userinfo` and logout.

use reqwest::StatusCode;

use crate::support::*;

#[tokio::test]
async fn userinfo_needs_openid_and_a_live_token() {
    let s = TestServer::start().await;
    let body = s.password_login("openid profile", None).await;
    let at = body["access_token"].as_str().unwrap();
    let (status, info) = userinfo(&s, at).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["sub"], "auth0|alice");
    assert_eq!(info["name"], "Alice Example");
    assert!(info.get("email").is_none(), "no email scope, no email");

    let api_only = s
        .password_login("read:me:factors", Some(&s.my_account_audience()))
        .await;
    let (status, _) = userinfo(&s, api_only["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let res = s.http().get(s.url("/userinfo")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(userinfo(&s, "not.a.jwt").await.0, StatusCode::UNAUTHORIZED);

    // Access tokens of a user without audience live 24 hours.
    s.clock.advance(86_400 + 31);
    assert_eq!(userinfo(&s, at).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_ends_the_session_and_redirects_only_to_allowed_urls() {
    let s = TestServer::start().await;
    let browser = s.browser();
    code_for(&s, &browser, &AuthRequest::new("openid")).await;

    let res = browser
        .get(s.url("/v2/logout?client_id=spa&returnTo=https%3A%2F%2Fevil.example%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // That refusal did not log anyone out.
    let req = AuthRequest::new("openid").param("prompt", "none");
    let loc = browser.get(req.url(&s)).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(query_param(&loc, "code").is_some());

    let res = browser
        .get(s.url(&format!(
            "/v2/logout?client_id=spa&returnTo={}",
            urlencode(&format!("{APP}/"))
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()["location"], format!("{APP}/"));
    let cleared = res.headers().get_all("set-cookie").iter().any(|c| {
        let c = c.to_str().unwrap();
        c.starts_with("latchkey_session=;") && c.contains("Max-Age=0")
    });
    assert!(cleared);
    let req = AuthRequest::new("openid").param("prompt", "none");
    let loc = browser.get(req.url(&s)).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn a_stolen_session_cookie_is_dead_after_logout() {
    let s = TestServer::start().await;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = browser
        .get(req.url(&s))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tx = hidden_input(&page, "tx").unwrap();
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
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .find(|c| c.starts_with("latchkey_session="))
        .unwrap();
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    let value = cookie.split(';').next().unwrap().to_string();
    browser.get(s.url("/v2/logout")).send().await.unwrap();
    let req = AuthRequest::new("openid").param("prompt", "none");
    let res = s
        .http()
        .get(req.url(&s))
        .header("cookie", value)
        .send()
        .await
        .unwrap();
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn cors_allows_the_clients_origins_only() {
    let s = TestServer::start().await;
    let res = s
        .http()
        .request(reqwest::Method::OPTIONS, s.url("/oauth/token"))
        .header("origin", APP)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "auth0-client, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.headers()["access-control-allow-origin"], APP);
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("auth0-client")
            && allowed.contains("content-type")
            && allowed.contains("dpop")
    );

    // Errors carry the header too, so the app can read them.
    let res = s
        .http()
        .post(s.url("/oauth/token"))
        .header("origin", APP)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.headers()["access-control-allow-origin"], APP);

    let res = s
        .http()
        .request(reqwest::Method::OPTIONS, s.url("/oauth/token"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)])
        .unwrap()
        .trim_start_matches("x=")
        .to_string()
}

#[tokio::test]
async fn sessions_end_when_idle_or_at_their_lifetime() {
    let s = TestServer::start().await;
    let browser = s.browser();
    code_for(&s, &browser, &AuthRequest::new("openid")).await;
    let silent = |browser: reqwest::Client| {
        let url = AuthRequest::new("openid").param("prompt", "none").url(&s);
        async move {
            let res = browser.get(url).send().await.unwrap();
            let loc = res.headers()["location"].to_str().unwrap().to_string();
            query_param(&loc, "code").is_some()
        }
    };
    // Used every 23 hours, it lives on (idle limit 24 h)...
    for _ in 0..3 {
        s.clock.advance(23 * 3600);
        assert!(silent(browser.clone()).await);
    }
    // ...until its 72-hour lifetime.
    s.clock.advance(3 * 3600 + 1);
    assert!(!silent(browser.clone()).await);

    let browser = s.browser();
    code_for(&s, &browser, &AuthRequest::new("openid")).await;
    s.clock.advance(24 * 3600 + 1);
    assert!(!silent(browser).await, "idle for more than 24 hours");
}

#[tokio::test]
async fn login_hint_prefills_the_email() {
    let s = TestServer::start().await;
    let req = AuthRequest::new("openid").param("login_hint", "carol@example.com");
    let html = s
        .browser()
        .get(req.url(&s))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("value=\"carol@example.com\""), "{html}");
}
