//! Applying tenant files: idempotent, and all-or-nothing on errors.

use latchkey::tenant::apply::apply_text;

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
