//! Applying tenant files: idempotent, and all-or-nothing on errors.

use latchkey::tenant::apply::apply_text;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn applying_the_same_file_twice_changes_nothing() {
    let s = TestServer::start().await;
    let before = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let report = apply_text(&s.state, &acme(s.port)).await.unwrap();
    assert!(!report.tenant_created);
    assert_eq!(report.users_created, 0);
    assert_eq!(report.users_updated, 0);
    assert_eq!(report.users_unchanged, 2);
    let after = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    assert_eq!(before.revision, after.revision);
    assert_eq!(before.config, after.config);
}

#[tokio::test]
async fn a_bad_file_is_refused_with_its_line_and_changes_nothing() {
    let s = TestServer::start().await;
    let before = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let dangling = acme(s.port).replace(
        "- { client_id: backend, audience:",
        "- { client_id: ghost, audience:",
    );
    let err = apply_text(&s.state, &dangling).await.unwrap_err();
    assert!(err.contains("ghost"), "{err}");
    let line = dangling
        .lines()
        .position(|l| l.contains("client_id: ghost"))
        .unwrap()
        + 1;
    assert!(err.starts_with(&format!("line {line}:")), "{err}");

    let unknown = acme(s.port).replace("factors: [", "colour: blue\nfactors: [");
    let err = apply_text(&s.state, &unknown).await.unwrap_err();
    assert!(err.contains("colour"), "{err}");

    let wrong_type = acme(s.port).replace("min_length: 8", "min_length: eight");
    let err = apply_text(&s.state, &wrong_type).await.unwrap_err();
    assert!(err.contains("min_length"), "{err}");

    let after = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    assert_eq!(before.revision, after.revision);
}

#[tokio::test]
async fn a_domain_cannot_be_taken_from_another_tenant() {
    let s = TestServer::start().await;
    let thief = other_tenant(s.port)
        .replace("name: other", "name: thief")
        .replace(
            &format!("127.0.0.1:{}", s.port),
            &format!("localhost:{}", s.port),
        );
    let err = apply_text(&s.state, &thief).await.unwrap_err();
    assert!(err.contains("another tenant"), "{err}");
    assert!(
        s.state
            .store
            .tenant_by_name("thief")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn users_keep_their_ids_and_password_changes_take_effect() {
    let s = TestServer::start().await;
    let changed = acme(s.port).replace(ALICE_PASSWORD, "Completely-new-passphrase-9");
    let report = apply_text(&s.state, &changed).await.unwrap();
    assert_eq!(report.users_updated, 1);
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{body}");
    let (status, _) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", "Completely-new-passphrase-9"),
        ])
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
}

#[tokio::test]
async fn imported_bcrypt_hashes_log_in() {
    let s = TestServer::start().await;
    let hash = bcrypt::hash("Imported-from-auth0", 4).unwrap();
    let text = acme(s.port).replace(
        "  - { email: bob@example.com, password: \"B0b-has-a-long-password\"",
        &format!("  - {{ email: carol@example.com, password_hash: \"{hash}\", connection: Username-Password-Authentication }}\n  - {{ email: bob@example.com, password: \"B0b-has-a-long-password\""),
    );
    apply_text(&s.state, &text).await.unwrap();
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", "carol@example.com"),
            ("password", "Imported-from-auth0"),
            ("scope", "openid"),
        ])
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_password_the_user_changed_survives_reapplying_the_file() {
    use serde_json::json;
    let s = TestServer::start().await;
    let login = |pw: &'static str| {
        let s = &s;
        async move {
            s.token(&[
                ("grant_type", "password"),
                ("client_id", "spa"),
                ("username", ALICE),
                ("password", pw),
            ])
            .await
            .0
        }
    };
    // Alice changes her password through My Account.
    let token = s.me_token(ME_SCOPES).await;
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "password"})),
        )
        .await;
    assert_eq!(r.status, reqwest::StatusCode::ACCEPTED, "{}", r.body);
    let location = r.header("location").unwrap().to_string();
    let v = s
        .me(
            "POST",
            &format!("{location}/verify"),
            Some(&token),
            Some(json!({"auth_session": r.body["auth_session"], "new_password": "Gl4cier-Velvet-Orbit"})),
        )
        .await;
    assert_eq!(v.status, reqwest::StatusCode::CREATED, "{}", v.body);

    // The same file again (an ordinary restart) leaves her password alone,
    // however often it is applied.
    for _ in 0..2 {
        let report = apply_text(&s.state, &acme(s.port)).await.unwrap();
        assert_eq!(report.users_updated, 0, "{report:?}");
        assert_eq!(login("Gl4cier-Velvet-Orbit").await, reqwest::StatusCode::OK);
        assert_eq!(login(ALICE_PASSWORD).await, reqwest::StatusCode::FORBIDDEN);
    }

    // The operator resets it on purpose by giving the file another value:
    // applied once, then left alone again.
    let reset = acme(s.port).replace(ALICE_PASSWORD, "Operator-reset-passphrase-7");
    let report = apply_text(&s.state, &reset).await.unwrap();
    assert_eq!(report.users_updated, 1, "{report:?}");
    assert_eq!(
        login("Operator-reset-passphrase-7").await,
        reqwest::StatusCode::OK
    );
    assert_eq!(
        login("Gl4cier-Velvet-Orbit").await,
        reqwest::StatusCode::FORBIDDEN
    );
    let report = apply_text(&s.state, &reset).await.unwrap();
    assert_eq!(report.users_updated, 0, "{report:?}");

    // The same holds for an imported hash.
    let hash = bcrypt::hash("Imported-from-auth0", 4).unwrap();
    let imported = acme(s.port).replace(
        &format!("password: \"{ALICE_PASSWORD}\""),
        &format!("password_hash: \"{hash}\""),
    );
    apply_text(&s.state, &imported).await.unwrap();
    assert_eq!(login("Imported-from-auth0").await, reqwest::StatusCode::OK);
    let token = s
        .me_token_for(ALICE, "Imported-from-auth0", None, ME_SCOPES)
        .await;
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "password"})),
        )
        .await;
    let location = r.header("location").unwrap().to_string();
    let v = s
        .me(
            "POST",
            &format!("{location}/verify"),
            Some(&token),
            Some(json!({"auth_session": r.body["auth_session"], "new_password": "Second-own-choice-42"})),
        )
        .await;
    assert_eq!(v.status, reqwest::StatusCode::CREATED, "{}", v.body);
    apply_text(&s.state, &imported).await.unwrap();
    assert_eq!(login("Second-own-choice-42").await, reqwest::StatusCode::OK);
    assert_eq!(
        login("Imported-from-auth0").await,
        reqwest::StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn look_alike_emails_in_a_file_are_duplicates_or_refused() {
    let s = TestServer::start().await;
    let twin = acme(s.port).replace(
        "  - { email: bob@example.com,",
        "  - { email: \"\u{ff21}LICE@example.com \", password: \"Twin-has-a-long-password\", connection: Username-Password-Authentication }\n  - { email: bob@example.com,",
    );
    let err = apply_text(&s.state, &twin).await.unwrap_err();
    assert!(err.contains("duplicate email"), "{err}");
    let hidden = acme(s.port).replace(
        "email: bob@example.com,",
        "email: \"bob\u{200b}@example.com\",",
    );
    let err = apply_text(&s.state, &hidden).await.unwrap_err();
    assert!(err.contains("users[1].email"), "{err}");
    // A user of the file given in another spelling is the same user.
    let respelled =
        acme(s.port).replace("email: bob@example.com,", "email: \" BOB@example.com.\",");
    let report = apply_text(&s.state, &respelled).await.unwrap();
    assert_eq!(report.users_created, 0, "{report:?}");
}

const ME_SCOPE: &str =
    "openid offline_access read:me:authentication_methods create:me:authentication_methods";

/// `blocked: true` applied to a signed-in user: their My Account token, their
/// refresh token, their access tokens and their login session all stop
/// working at once, and nothing new is issued to them.
#[tokio::test]
async fn blocking_a_user_ends_everything_they_hold() {
    let s = TestServer::start().await;
    let browser = s.browser();
    let aud = s.my_account_audience();
    let req = AuthRequest::new(ME_SCOPE).audience(&aud);
    let code = code_for(&s, &browser, &req).await;
    let (status, tokens) = exchange(&s, &req, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    let me = s.me_token(ME_SCOPE).await;
    let enroll = || json!({"type": "totp"});
    assert_eq!(
        s.me("GET", "/authentication-methods", Some(&me), None)
            .await
            .status,
        StatusCode::OK
    );

    let blocked = acme(s.port).replace(
        "user_id: \"auth0|alice\", name: Alice Example }",
        "user_id: \"auth0|alice\", name: Alice Example, blocked: true }",
    );
    assert_ne!(blocked, acme(s.port));
    apply_text(&s.state, &blocked).await.unwrap();

    for token in [me.as_str(), at] {
        let res = s
            .me("GET", "/authentication-methods", Some(token), None)
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
        let res = s
            .me(
                "POST",
                "/authentication-methods",
                Some(token),
                Some(enroll()),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    }
    assert_eq!(userinfo(&s, at).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = s.refresh(rt).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // The session is over: no single sign-on, the login page again.
    let page = browser
        .get(AuthRequest::new("openid").url(&s))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    // And a password is no way back in.
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert!(status.is_client_error(), "{body}");
    assert!(body.get("access_token").is_none());

    // Applying the file again (blocked still) changes nothing, and
    // unblocking gives back a login, not the old tokens.
    apply_text(&s.state, &blocked).await.unwrap();
    apply_text(&s.state, &acme(s.port)).await.unwrap();
    assert_eq!(s.refresh(rt).await.0, StatusCode::FORBIDDEN);
    let me = s.me_token(ME_SCOPE).await;
    assert_eq!(
        s.me("GET", "/authentication-methods", Some(&me), None)
            .await
            .status,
        StatusCode::OK
    );
}

/// A block written beside the server (another process on the same
/// database, here without revoking anything) reaches `/me/v1` within the
/// second the server may hold the user in memory.
#[tokio::test]
async fn a_block_written_by_another_process_reaches_my_account_within_a_second() {
    let s = TestServer::start().await;
    let me = s.me_token(ME_SCOPE).await;
    let list = || s.me("GET", "/authentication-methods", Some(&me), None);
    assert_eq!(list().await.status, StatusCode::OK);
    s.sql("UPDATE users SET blocked = TRUE WHERE user_id = 'auth0|alice'")
        .await;
    s.clock.advance(1);
    let res = list().await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    assert_eq!(res.body["detail"], "The user is blocked.");
    let res = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&me),
            Some(json!({"type": "totp"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
}
