//! The refresh-token grant: rotation, reuse detection, scope narrowing.
//! Exchanges for other APIs are in `mrrt.rs`.

use reqwest::StatusCode;

use crate::support::*;

async fn refresh(
    s: &TestServer,
    token: &str,
    scope: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", "spa"),
        ("refresh_token", token),
    ];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    s.token(&form).await
}

#[tokio::test]
async fn every_use_rotates_and_keeps_audience_and_scope() {
    let s = TestServer::start().await;
    let aud = s.my_account_audience();
    let first = s
        .password_login("openid offline_access read:me:factors", Some(&aud))
        .await;
    let rt1 = first["refresh_token"].as_str().unwrap();
    s.clock.advance(30);
    let (status, second) = refresh(&s, rt1, None).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(rt1, rt2);
    assert_eq!(second["scope"], "openid offline_access read:me:factors");
    let at = claims(second["access_token"].as_str().unwrap());
    assert_eq!(at["aud"][0], aud);
    assert_eq!(at["iat"], START + 30);
    // spa-js requires an ID token on every token response.
    let id = claims(second["id_token"].as_str().unwrap());
    assert_eq!(
        id["auth_time"], START,
        "auth_time is the login's, not the refresh's"
    );
    // The new token works in turn.
    assert_eq!(refresh(&s, rt2, None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn reusing_a_rotated_token_revokes_the_whole_family() {
    let s = TestServer::start().await;
    let first = s.password_login("openid offline_access", None).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    let (_, second) = refresh(&s, &rt1, None).await;
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();
    let at2 = second["access_token"].as_str().unwrap().to_string();
    assert_eq!(userinfo(&s, &at2).await.0, StatusCode::OK);

    // An attacker replays the first token.
    let (status, body) = refresh(&s, &rt1, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
    // The legitimate holder's token is now dead too, and so are its access tokens.
    assert_eq!(refresh(&s, &rt2, None).await.1["error"], "invalid_grant");
    assert_eq!(userinfo(&s, &at2).await.0, StatusCode::UNAUTHORIZED);
    // Other logins of the same user are unaffected.
    let other = s.password_login("openid offline_access", None).await;
    assert_eq!(
        refresh(&s, other["refresh_token"].as_str().unwrap(), None)
            .await
            .0,
        StatusCode::OK
    );
}

/// Eight concurrent uses of one refresh token; returns how many succeeded.
async fn race(s: &TestServer, rt: &str) -> usize {
    let (client, url) = (s.http(), s.url("/oauth/token"));
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, rt, barrier) =
                (client.clone(), url.clone(), rt.to_string(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                client
                    .post(url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("client_id", "spa"),
                        ("refresh_token", rt.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let status = t.await.unwrap();
        assert!(
            status == StatusCode::OK || status == StatusCode::FORBIDDEN,
            "{status}"
        );
        ok += usize::from(status == StatusCode::OK);
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_use_of_one_token_is_a_reuse_without_a_reuse_interval() {
    let s = TestServer::start().await;
    let first = s.password_login("openid offline_access", None).await;
    let rt = first["refresh_token"].as_str().unwrap().to_string();
    let ok = race(&s, &rt).await;
    assert!(ok <= 1, "{ok} succeeded");
    // Exactly one request claimed the token; the others were reuses, so the
    // family is revoked and even the winner's access token is dead.
    let fresh = s.password_login("openid", None).await;
    assert_eq!(
        userinfo(&s, fresh["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        userinfo(&s, first["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reuse_interval_forgives_a_client_racing_itself() {
    let s = TestServer::start().await;
    let text = acme(s.port).replace(
        "grant_types: [authorization_code, refresh_token, password,",
        "refresh_token: { leeway: 10 }, grant_types: [authorization_code, refresh_token, password,",
    );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let first = s.password_login("openid offline_access", None).await;
    let rt = first["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(race(&s, &rt).await, 8);
    assert_eq!(
        userinfo(&s, first["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );
    // After the interval, the same token is a replay again.
    s.clock.advance(11);
    let (status, _) = refresh(&s, &rt, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        userinfo(&s, first["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn scope_may_narrow_but_never_widen() {
    let s = TestServer::start().await;
    let aud = s.my_account_audience();
    let first = s
        .password_login(
            "openid offline_access read:me:factors read:me:authentication_methods",
            Some(&aud),
        )
        .await;
    let rt = first["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(
        &s,
        rt,
        Some("openid offline_access delete:me:authentication_methods"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");
    // A refused widening does not spend the token.
    let (status, narrowed) = refresh(&s, rt, Some("openid offline_access read:me:factors")).await;
    assert_eq!(status, StatusCode::OK, "{narrowed}");
    assert_eq!(narrowed["scope"], "openid offline_access read:me:factors");
    // The narrowing was for that access token: the successor holds the
    // scope of the token it replaced (RFC 6749 §6).
    let (status, next) = refresh(&s, narrowed["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_eq!(
        next["scope"],
        "openid offline_access read:me:factors read:me:authentication_methods"
    );
}

#[tokio::test]
async fn refresh_tokens_expire_when_idle_and_belong_to_their_client() {
    let s = TestServer::start().await;
    let first = s.password_login("openid offline_access", None).await;
    let rt = first["refresh_token"].as_str().unwrap();
    let (status, body) = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "web"),
            ("client_secret", "web-secret-value"),
            ("refresh_token", rt),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // Idle lifetime defaults to 15 days.
    s.clock.advance(15 * 86_400 + 1);
    assert_eq!(refresh(&s, rt, None).await.1["error"], "invalid_grant");
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_family() {
    let s = TestServer::start().await;
    let first = s.password_login("openid offline_access", None).await;
    let rt = first["refresh_token"].as_str().unwrap();
    let at = first["access_token"].as_str().unwrap();
    assert_eq!(s.revoke(rt).await, StatusCode::OK);
    assert_eq!(refresh(&s, rt, None).await.1["error"], "invalid_grant");
    assert_eq!(userinfo(&s, at).await.0, StatusCode::UNAUTHORIZED);
    // Unknown tokens are fine (RFC 7009); another client's are not its to revoke.
    let res = s
        .http()
        .post(s.url("/oauth/revoke"))
        .form(&[("client_id", "spa"), ("token", "no-such-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let other = s.password_login("openid offline_access", None).await;
    let res = s
        .http()
        .post(s.url("/oauth/revoke"))
        .form(&[
            ("client_id", "web"),
            ("client_secret", "web-secret-value"),
            ("token", other["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        refresh(&s, other["refresh_token"].as_str().unwrap(), None)
            .await
            .0,
        StatusCode::OK
    );
}

/// The signing key cannot be loaded when a refresh is answered (its table is
/// out of reach for a moment): the client is told to try again, so the
/// token must not have been spent: the retry gets the successor and the
/// family lives on.
#[tokio::test]
async fn a_refresh_that_cannot_be_answered_leaves_the_token_unspent() {
    let s = TestServer::start().await;
    let first = s.password_login("openid offline_access", None).await;
    let rt = first["refresh_token"].as_str().unwrap();
    s.sql("ALTER TABLE signing_keys RENAME TO signing_keys_away")
        .await;
    // Past the 5 seconds the keys are held in memory.
    s.clock.advance(6);
    let (status, body) = refresh(&s, rt, None).await;
    assert!(status.is_server_error(), "{status} {body}");
    s.sql("ALTER TABLE signing_keys_away RENAME TO signing_keys")
        .await;
    let (status, body) = refresh(&s, rt, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let next = body["refresh_token"].as_str().unwrap();
    assert_eq!(
        userinfo(&s, body["access_token"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
    assert_eq!(refresh(&s, next, None).await.0, StatusCode::OK);
}
