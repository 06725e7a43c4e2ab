//! The sweep through the server: what it deletes never changes what a
//! client sees, and what has ended is gone from the store.

use latchkey::services::sweep;
use latchkey::services::tokens::max_token_lifetime;
use latchkey::tenant::Tenant;
use reqwest::StatusCode;

use crate::support::*;

async fn acme_tenant(s: &TestServer) -> Tenant {
    let row = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    Tenant::from_row(&row).unwrap()
}

#[tokio::test]
async fn a_grant_stays_while_its_access_token_is_valid() {
    let s = TestServer::start().await;
    let tenant = acme_tenant(&s).await;
    // A login without offline_access: a grant with no refresh token.
    let login = s.password_login("openid", None).await;
    let at = login["access_token"].as_str().unwrap();
    let exp = claims(at)["exp"].as_i64().unwrap();
    s.clock.set(exp - 1);
    let swept = sweep::sweep_tenant(&s.state, &tenant).await.unwrap();
    assert_eq!(swept.grants, 0, "{swept:?}");
    assert_eq!(userinfo(&s, at).await.0, StatusCode::OK);
    // Once every token it can have issued has expired, it goes.
    s.clock.set(START + max_token_lifetime(&tenant) + 1);
    assert_eq!(userinfo(&s, at).await.0, StatusCode::UNAUTHORIZED);
    let swept = sweep::sweep_tenant(&s.state, &tenant).await.unwrap();
    assert_eq!(swept.grants, 1, "{swept:?}");
}

#[tokio::test]
async fn a_refresh_family_goes_once_it_has_ended_and_not_before() {
    let s = TestServer::start().await;
    let tenant = acme_tenant(&s).await;
    let login = s.password_login("openid offline_access", None).await;
    let rt1 = login["refresh_token"].as_str().unwrap().to_string();
    s.clock.advance(60);
    let (status, second) = s.refresh(&rt1).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();

    // A day on, nothing of the family has ended: the sweep keeps it all,
    // the rotated token included, so replaying it is still caught and
    // still ends the family.
    s.clock.advance(86_400);
    let swept = sweep::sweep_tenant(&s.state, &tenant).await.unwrap();
    assert_eq!((swept.refresh_tokens, swept.grants), (0, 0), "{swept:?}");
    assert_eq!(s.refresh(&rt1).await.1["error"], "invalid_grant");
    assert_eq!(s.refresh(&rt2).await.1["error"], "invalid_grant");

    // Another family, rotated once, left until every token has expired.
    let login = s.password_login("openid offline_access", None).await;
    let (status, next) = s.refresh(login["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    let last = next["refresh_token"].as_str().unwrap().to_string();
    s.clock.advance(10 * 365 * 86_400);
    assert_eq!(s.refresh(&last).await.1["error"], "invalid_grant");
    // The four tokens of the two families have ended and go, with both
    // grants (the revoked one, and the one with nothing left); the last
    // token is refused as before.
    let swept = sweep::sweep_tenant(&s.state, &tenant).await.unwrap();
    assert_eq!((swept.refresh_tokens, swept.grants), (4, 2), "{swept:?}");
    assert_eq!(s.refresh(&last).await.1["error"], "invalid_grant");
    assert_eq!(s.refresh(&rt2).await.1["error"], "invalid_grant");
    // Logging in again works, and a second sweep finds nothing.
    let again = s.password_login("openid offline_access", None).await;
    let (status, _) = s.refresh(again["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let swept = sweep::sweep_tenant(&s.state, &tenant).await.unwrap();
    assert_eq!(swept.total(), 0, "{swept:?}");
}

#[tokio::test]
async fn a_revoked_grant_goes_at_once_and_its_tokens_stay_refused() {
    let s = TestServer::start().await;
    let tenant = acme_tenant(&s).await;
    let login = s.password_login("openid offline_access", None).await;
    let rt = login["refresh_token"].as_str().unwrap();
    let at = login["access_token"].as_str().unwrap();
    assert_eq!(s.revoke(rt).await, StatusCode::OK);
    let swept = sweep::sweep_tenant(&s.state, &tenant).await.unwrap();
    assert_eq!(swept.grants, 1, "{swept:?}");
    assert_eq!(userinfo(&s, at).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(s.refresh(rt).await.1["error"], "invalid_grant");
}

#[tokio::test]
async fn sweeping_all_sweeps_every_tenant() {
    let s = TestServer::start().await;
    // Alice logs in on both tenants (`other` is served as 127.0.0.1) and
    // both grants are revoked.
    let acme = s.password_login("openid offline_access", None).await;
    assert_eq!(
        s.revoke(acme["refresh_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    let other = format!("http://127.0.0.1:{}", s.port);
    let login: serde_json::Value = s
        .http()
        .post(format!("{other}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("scope", "openid offline_access"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = s
        .http()
        .post(format!("{other}/oauth/revoke"))
        .form(&[
            ("client_id", "spa"),
            ("token", login["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let swept = sweep::sweep_all(&s.state).await.unwrap();
    assert_eq!(swept.grants, 2, "{swept:?}");
}

#[tokio::test]
async fn a_tenant_that_cannot_be_read_does_not_stop_the_others() {
    let s = TestServer::start().await;
    let tenant = acme_tenant(&s).await;
    s.state
        .store
        .upsert_tenant("broken", "id-broken", "not a tenant", &[], START)
        .await
        .unwrap();
    let login = s.password_login("openid offline_access", None).await;
    assert_eq!(
        s.revoke(login["refresh_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    // The pass reports the broken tenant, and acme was swept all the same.
    let err = sweep::sweep_all(&s.state).await.unwrap_err();
    assert!(err.to_string().contains("broken"), "{err}");
    let swept = sweep::sweep_tenant(&s.state, &tenant).await.unwrap();
    assert_eq!(swept.total(), 0, "{swept:?}");
}
