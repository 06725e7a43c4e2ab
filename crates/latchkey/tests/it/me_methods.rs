//! `/me/v1`: factors, listing, enrolling (password, TOTP, recovery code),
//! renaming and removing methods.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn start(s: &TestServer, token: &str, body: Value) -> MeResponse {
    let r = s
        .me("POST", "/authentication-methods", Some(token), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    r
}

async fn verify(s: &TestServer, token: &str, location: &str, body: Value) -> MeResponse {
    s.me(
        "POST",
        &format!("{location}/verify"),
        Some(token),
        Some(body),
    )
    .await
}

/// Enrolls a TOTP authenticator for the token's user; returns its ID and secret.
async fn enroll_totp(s: &TestServer, token: &str) -> (String, String) {
    let r = start(s, token, json!({"type": "totp"})).await;
    let location = r.header("location").unwrap().to_string();
    let secret = r.body["manual_input_code"].as_str().unwrap().to_string();
    let v = verify(
        s,
        token,
        &location,
        json!({"auth_session": r.body["auth_session"], "otp_code": totp_now(&secret, s.clock_now())}),
    )
    .await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    (v.body["id"].as_str().unwrap().to_string(), secret)
}

#[tokio::test]
async fn factors_are_the_tenants_with_their_usage() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    let r = s.me("GET", "/factors", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!({"factors": [
            {"type": "password", "usage": ["primary"]},
            {"type": "totp", "usage": ["secondary"]},
            {"type": "recovery-code", "usage": ["secondary"]},
        ]})
    );
}

#[tokio::test]
async fn the_password_is_listed_as_a_method() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    let r = s
        .me("GET", "/authentication-methods", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.body["authentication_methods"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    let pw = &list[0];
    assert_eq!(pw["type"], "password");
    assert_eq!(pw["id"], "password|YXV0aDB8YWxpY2U"); // base64url("auth0|alice")
    assert_eq!(pw["identity_user_id"], "auth0|alice");
    assert_eq!(pw["usage"], json!(["primary"]));
    assert_eq!(pw["created_at"], "2027-01-15T08:00:00.000Z");
    assert!(pw["last_password_reset"].is_string());
    assert!(pw.get("confirmed").is_none());
    let r = s
        .me(
            "GET",
            "/authentication-methods/password%7CYXV0aDB8YWxpY2U",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body, pw);
}

#[tokio::test]
async fn totp_enrollment_end_to_end() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    let r = start(&s, &token, json!({"type": "totp"})).await;
    let location = r.header("location").unwrap().to_string();
    let id = r.body["id"].as_str().unwrap();
    assert!(
        id.starts_with("totp|dev_") && id.len() == "totp|dev_".len() + 16,
        "{id}"
    );
    assert_eq!(
        location,
        format!(
            "{}me/v1/authentication-methods/{}",
            s.issuer,
            id.replace('|', "%7C")
        )
    );
    assert_eq!(id_from_location(&location), id);
    let uri = r.body["barcode_uri"].as_str().unwrap();
    let secret = r.body["manual_input_code"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/acme:alice%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")) && uri.contains("issuer=acme"));
    assert_eq!(base32_decode(secret).len(), 20);
    let session = r.body["auth_session"].as_str().unwrap().to_string();
    // Not a method until confirmed.
    let list = s
        .me(
            "GET",
            "/authentication-methods?type=totp",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(list.body["authentication_methods"], json!([]));

    let wrong = verify(
        &s,
        &token,
        &location,
        json!({"auth_session": session, "otp_code": "000000"}),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    wrong.error_type();
    // The code of the previous 30-second step still counts (clock drift).
    let code = totp_now(secret, s.clock_now() - 30);
    let ok = verify(
        &s,
        &token,
        &location,
        json!({"auth_session": session, "otp_code": code}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.header("location").unwrap(), location);
    assert_eq!(ok.body["id"], id);
    assert_eq!(ok.body["type"], "totp");
    assert_eq!(ok.body["confirmed"], true);
    assert_eq!(ok.body["usage"], json!(["secondary"]));
    // The same session (and code) cannot be used again.
    let again = verify(
        &s,
        &token,
        &location,
        json!({"auth_session": session, "otp_code": code}),
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);

    let list = s
        .me(
            "GET",
            "/authentication-methods?type=totp",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        list.body["authentication_methods"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(list.body["authentication_methods"][0], ok.body);
}

#[tokio::test]
async fn auth_sessions_expire_die_after_five_wrong_codes_and_are_bound() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    let r = start(&s, &token, json!({"type": "totp"})).await;
    let location = r.header("location").unwrap().to_string();
    let secret = r.body["manual_input_code"].as_str().unwrap().to_string();
    let session = r.body["auth_session"].clone();
    for _ in 0..5 {
        let w = verify(
            &s,
            &token,
            &location,
            json!({"auth_session": session, "otp_code": "000000"}),
        )
        .await;
        assert_eq!(w.status, StatusCode::BAD_REQUEST);
    }
    let code = totp_now(&secret, s.clock_now());
    let dead = verify(
        &s,
        &token,
        &location,
        json!({"auth_session": session, "otp_code": code}),
    )
    .await;
    assert_eq!(
        dead.status,
        StatusCode::BAD_REQUEST,
        "dead after five wrong codes"
    );

    let r = start(&s, &token, json!({"type": "totp"})).await;
    let location = r.header("location").unwrap().to_string();
    let secret = r.body["manual_input_code"].as_str().unwrap().to_string();
    let session = r.body["auth_session"].clone();
    s.clock.advance(301);
    let token = s.me_token(ME_SCOPES).await;
    let code = totp_now(&secret, s.clock_now());
    let late = verify(
        &s,
        &token,
        &location,
        json!({"auth_session": session, "otp_code": code}),
    )
    .await;
    assert_eq!(
        late.status,
        StatusCode::BAD_REQUEST,
        "expired after 5 minutes"
    );

    // Bob cannot complete Alice's enrollment, on her path or his.
    let r = start(&s, &token, json!({"type": "totp"})).await;
    let location = r.header("location").unwrap().to_string();
    let secret = r.body["manual_input_code"].as_str().unwrap().to_string();
    let session = r.body["auth_session"].clone();
    let bob = s
        .me_token_for(
            "bob@example.com",
            "B0b-has-a-long-password",
            Some("Partners"),
            ME_SCOPES,
        )
        .await;
    let code = totp_now(&secret, s.clock_now());
    let stolen = verify(
        &s,
        &bob,
        &location,
        json!({"auth_session": session, "otp_code": code}),
    )
    .await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST);
    // ...and the attempt did not spend it for Alice.
    let mine = verify(
        &s,
        &token,
        &location,
        json!({"auth_session": session, "otp_code": code}),
    )
    .await;
    assert_eq!(mine.status, StatusCode::CREATED, "{}", mine.body);
    // A session verified against another method ID is refused.
    let r = start(&s, &token, json!({"type": "totp"})).await;
    let other = verify(
        &s,
        &token,
        &s.url("/me/v1/authentication-methods/totp%7Cdev_AAAAAAAAAAAAAAAA"),
        json!({"auth_session": r.body["auth_session"], "otp_code": "123456"}),
    )
    .await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn recovery_codes_are_shown_once_and_replace_each_other() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = start(&s, &token, json!({"type": "recovery-code"})).await;
        let code = r.body["recovery_code"].as_str().unwrap();
        assert_eq!(code.len(), 24);
        assert!(code.bytes().all(|b| b.is_ascii_uppercase()));
        let location = r.header("location").unwrap().to_string();
        let v = verify(
            &s,
            &token,
            &location,
            json!({"auth_session": r.body["auth_session"]}),
        )
        .await;
        assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
        assert_eq!(v.body["type"], "recovery-code");
        assert!(v.body.get("name").is_none());
        ids.push(v.body["id"].as_str().unwrap().to_string());
    }
    let list = s
        .me(
            "GET",
            "/authentication-methods?type=recovery-code",
            Some(&token),
            None,
        )
        .await;
    let list = list.body["authentication_methods"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(list.len(), 1, "the second replaced the first");
    assert_eq!(list[0]["id"], ids[1]);
    // The verify body of a recovery code takes nothing but the session.
    let r = start(&s, &token, json!({"type": "recovery-code"})).await;
    let location = r.header("location").unwrap().to_string();
    let v = verify(
        &s,
        &token,
        &location,
        json!({"auth_session": r.body["auth_session"], "otp_code": "1"}),
    )
    .await;
    assert_eq!(v.status, StatusCode::BAD_REQUEST);
    assert_eq!(v.body["validation_errors"][0]["pointer"], "/otp_code");
}

#[tokio::test]
async fn password_enrollment_checks_the_policy_and_changes_the_password() {
    let s = TestServer::start().await;
    let text = acme(s.port).replace(
        "password_policy: { min_length: 8 }",
        "password_policy: { min_length: 10, character_types: [lowercase, uppercase, number, special], character_type_rule: three_of_four, identical_characters: block, history: { active: true, size: 3 }, dictionary: { active: true, default: en_10k }, profile_data: { active: true, blocked_fields: [name, email] } }",
    );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let token = s.me_token(ME_SCOPES).await;
    let r = start(
        &s,
        &token,
        json!({"type": "password", "connection": "Username-Password-Authentication"}),
    )
    .await;
    assert_eq!(r.body["id"], "password|new");
    let location = r.header("location").unwrap().to_string();
    assert!(
        location.ends_with("/me/v1/authentication-methods/password%7Cnew"),
        "{location}"
    );
    assert_eq!(
        r.body["policy"],
        json!({
            "complexity": {"min_length": 10, "character_types": ["lowercase", "uppercase", "number", "special"],
                           "character_type_rule": "three_of_four", "identical_characters": "block",
                           "sequential_characters": "allow", "max_length_exceeded": "truncate"},
            "profile_data": {"active": true, "blocked_fields": ["name", "email"]},
            "history": {"active": true, "size": 3},
            "dictionary": {"active": true, "default": "en_10k"},
        })
    );
    let session = r.body["auth_session"].clone();
    for weak in [
        "short1A!",
        "alllowercaseletters",
        "Aaa-aaa-1111",
        ALICE_PASSWORD,
        "Alice-Example-9!",
        "qwertyuiop",
    ] {
        let v = verify(
            &s,
            &token,
            &location,
            json!({"auth_session": session, "new_password": weak}),
        )
        .await;
        assert_eq!(v.status, StatusCode::BAD_REQUEST, "{weak}: {}", v.body);
        assert_eq!(
            v.body["validation_errors"][0]["pointer"], "/new_password",
            "{weak}"
        );
        assert!(
            !v.body.to_string().contains(weak),
            "the password is not echoed"
        );
    }
    let v = verify(
        &s,
        &token,
        &location,
        json!({"auth_session": session, "new_password": "bad\u{0007}Password-99"}),
    )
    .await;
    assert_eq!(v.status, StatusCode::BAD_REQUEST);
    // Policy refusals do not burn the session's attempts.
    let v = verify(
        &s,
        &token,
        &location,
        json!({"auth_session": session, "new_password": "Gl4cier-Velvet-Orbit"}),
    )
    .await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    assert_eq!(v.body["id"], "password|YXV0aDB8YWxpY2U");
    assert_eq!(v.body["last_password_reset"], "2027-01-15T08:00:00.000Z");
    assert!(
        v.header("location")
            .unwrap()
            .ends_with("/password%7CYXV0aDB8YWxpY2U")
    );

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
    assert_eq!(login("Gl4cier-Velvet-Orbit").await, StatusCode::OK);
    assert_eq!(login(ALICE_PASSWORD).await, StatusCode::FORBIDDEN);
    // The old password is now history: it cannot come back.
    let r = start(&s, &token, json!({"type": "password"})).await;
    let v = verify(
        &s,
        &token,
        r.header("location").unwrap(),
        json!({"auth_session": r.body["auth_session"], "new_password": "Gl4cier-Velvet-Orbit"}),
    )
    .await;
    assert_eq!(v.status, StatusCode::BAD_REQUEST);

    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "password", "connection": "Partners"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "not the user's connection"
    );
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "password", "identity_user_id": "auth0|bob"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "not the user's identity");
}

#[tokio::test]
async fn factors_not_enabled_or_not_enrollable_are_400() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    for body in [
        json!({"type": "email", "email": "alice@example.com"}),
        json!({"type": "phone", "phone_number": "+15551234567"}),
        json!({"type": "push-notification"}),
        json!({"type": "passkey"}),
        json!({"type": "webauthn-platform"}),
        json!({"type": "webauthn-roaming"}),
    ] {
        let r = s
            .me(
                "POST",
                "/authentication-methods",
                Some(&token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        r.error_type();
    }
    let text = acme(s.port).replace(
        "factors: [password, totp, recovery-code]",
        "factors: [password]",
    );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "totp"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["detail"].as_str().unwrap().contains("not enabled"));
}

#[tokio::test]
async fn rename_get_and_delete_and_other_users_see_nothing() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    let (id, _) = enroll_totp(&s, &token).await;
    let path = format!("/authentication-methods/{}", id.replace('|', "%7C"));
    let r = s
        .me(
            "PATCH",
            &path,
            Some(&token),
            Some(json!({"name": "Work phone"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Work phone");
    let r = s.me("GET", &path, Some(&token), None).await;
    assert_eq!(r.body["name"], "Work phone");
    let r = s
        .me(
            "PATCH",
            &path,
            Some(&token),
            Some(json!({"preferred_authentication_method": "sms"})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "only phones have a preferred method"
    );
    let r = s
        .me(
            "PATCH",
            "/authentication-methods/password%7CYXV0aDB8YWxpY2U",
            Some(&token),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "passwords have no name");

    // Bob: not found, whatever he tries, and nothing changes.
    let bob = s
        .me_token_for(
            "bob@example.com",
            "B0b-has-a-long-password",
            Some("Partners"),
            ME_SCOPES,
        )
        .await;
    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"name": "mine"}))),
        ("DELETE", None),
    ] {
        let r = s.me(method, &path, Some(&bob), body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(r.body["detail"], "Authentication method not found.");
    }
    let r = s
        .me(
            "GET",
            "/authentication-methods/password%7CYXV0aDB8YWxpY2U",
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.me("GET", &path, Some(&token), None).await.body["name"],
        "Work phone"
    );

    let r = s.me("DELETE", &path, Some(&token), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.header("x-ratelimit-limit").is_some());
    assert_eq!(
        s.me("GET", &path, Some(&token), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.me("DELETE", &path, Some(&token), None).await.status,
        StatusCode::NOT_FOUND
    );
    for bad in [
        "/authentication-methods/nonsense",
        "/authentication-methods/passkey%7Cnew",
        "/authentication-methods/password%7Cnew",
    ] {
        assert_eq!(
            s.me("GET", bad, Some(&token), None).await.status,
            StatusCode::NOT_FOUND,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_last_way_to_log_in_cannot_be_deleted() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    enroll_totp(&s, &token).await;
    let r = s
        .me(
            "DELETE",
            "/authentication-methods/password%7CYXV0aDB8YWxpY2U",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    r.error_type();
    let (status, _) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "the password still works");
}

#[tokio::test]
async fn enrollments_and_deletions_are_audited() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    let (id, _) = enroll_totp(&s, &token).await;
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "email", "email": "a@b.c"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    s.me(
        "DELETE",
        &format!("/authentication-methods/{}", id.replace('|', "%7C")),
        Some(&token),
        None,
    )
    .await;
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let events = s.state.store.audit_events(&tenant.id, 100).await.unwrap();
    // The login that got the token is logged too (`s`): the method events.
    let events: Vec<_> = events
        .into_iter()
        .filter(|e| e.event_type.starts_with("my_account_"))
        .collect();
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e.event_type.clone(),
                e.details["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "my_account_authentication_method_succeeded".into(),
                "create".into()
            ),
            (
                "my_account_authentication_method_succeeded".into(),
                "verify".into()
            ),
            (
                "my_account_authentication_method_failed".into(),
                "create".into()
            ),
            (
                "my_account_authentication_method_succeeded".into(),
                "delete".into()
            ),
        ]
    );
    let verify = &events[1];
    assert_eq!(verify.details["authentication_method"], "totp");
    assert_eq!(verify.details["authentication_method_id"], id);
    assert_eq!(verify.client_id.as_deref(), Some("spa"));
    assert_eq!(verify.user_id.as_deref(), Some("auth0|alice"));
    assert_eq!(verify.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(events[2].details["error"]["status"], 400);
}

#[tokio::test]
async fn no_seed_code_or_session_is_stored_in_clear() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    let r = start(&s, &token, json!({"type": "totp"})).await;
    let location = r.header("location").unwrap().to_string();
    let secret = r.body["manual_input_code"].as_str().unwrap().to_string();
    let totp_session = r.body["auth_session"].as_str().unwrap().to_string();
    let rc = start(&s, &token, json!({"type": "recovery-code"})).await;
    let recovery = rc.body["recovery_code"].as_str().unwrap().to_string();
    let rc_session = rc.body["auth_session"].as_str().unwrap().to_string();
    verify(
        &s,
        &token,
        rc.header("location").unwrap(),
        json!({"auth_session": rc_session}),
    )
    .await;
    let code = totp_now(&secret, s.clock_now());
    verify(
        &s,
        &token,
        &location,
        json!({"auth_session": totp_session, "otp_code": code}),
    )
    .await;
    let pending = start(&s, &token, json!({"type": "totp"})).await;
    let pending_secret = pending.body["manual_input_code"]
        .as_str()
        .unwrap()
        .to_string();
    let pending_session = pending.body["auth_session"].as_str().unwrap().to_string();

    let all = s.database_dump().await;
    let raw_secret = base32_decode(&secret);
    let haystack = String::from_utf8_lossy(&all);
    for needle in [
        &secret,
        &totp_session,
        &recovery,
        &rc_session,
        &pending_secret,
        &pending_session,
    ] {
        assert!(
            !haystack.contains(needle.as_str()),
            "{needle} found in the database"
        );
    }
    assert!(
        !all.windows(raw_secret.len())
            .any(|w| w == raw_secret.as_slice()),
        "raw seed found"
    );
}

#[tokio::test]
async fn control_characters_never_reach_the_database() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    let (id, _) = enroll_totp(&s, &token).await;
    let path = format!("/authentication-methods/{}", id.replace('|', "%7C"));
    let r = s
        .me(
            "PATCH",
            &path,
            Some(&token),
            Some(json!({"name": "a\u{0000}b"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["validation_errors"][0]["pointer"], "/name");
    for bad in [
        "/authentication-methods/totp%7Cdev_%00",
        "/authentication-methods/totp%7C%0Ax",
    ] {
        assert_eq!(
            s.me("GET", bad, Some(&token), None).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            s.me("DELETE", bad, Some(&token), None).await.status,
            StatusCode::NOT_FOUND
        );
        let r = s
            .me(
                "POST",
                &format!("{bad}/verify"),
                Some(&token),
                Some(json!({"auth_session": "x", "otp_code": "1"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", "alice\u{0000}@example.com"),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

/// A user has at most 20 methods, the password counted, so the list (at
/// most 20 items) shows them all: past it, an enrollment is refused with a
/// 400 naming the limit, at its start and, for two racing for the last
/// place, at its verification.
#[tokio::test]
async fn enrollments_stop_at_twenty_methods() {
    let s = TestServer::start().await;
    let text = acme(s.port).replace("tenant_per_second: 25", "tenant_per_second: 0");
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let token = s.me_token(ME_SCOPES).await;
    let mut ids = Vec::new();
    for _ in 0..18 {
        ids.push(enroll_totp(&s, &token).await.0);
    }
    // 19 with the password: two start, one of them completes.
    let a = start(&s, &token, json!({"type": "totp"})).await;
    let b = start(&s, &token, json!({"type": "totp"})).await;
    let answer = |r: &MeResponse| {
        let secret = r.body["manual_input_code"].as_str().unwrap();
        json!({"auth_session": r.body["auth_session"], "otp_code": totp_now(secret, s.clock_now())})
    };
    let (va, vb) = tokio::join!(
        verify(&s, &token, a.header("location").unwrap(), answer(&a)),
        verify(&s, &token, b.header("location").unwrap(), answer(&b)),
    );
    let mut statuses = [va.status, vb.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::BAD_REQUEST],
        "{} / {}",
        va.body,
        vb.body
    );
    let refused = if va.status == StatusCode::BAD_REQUEST {
        &va
    } else {
        &vb
    };
    refused.error_type();
    assert!(
        refused.body["detail"].as_str().unwrap().contains("(20)"),
        "{}",
        refused.body
    );
    let list = s
        .me("GET", "/authentication-methods", Some(&token), None)
        .await;
    assert_eq!(
        list.body["authentication_methods"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
    // Full: refused at the start, with the limit named.
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "totp"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    r.error_type();
    assert!(
        r.body["detail"].as_str().unwrap().contains("(20)"),
        "{}",
        r.body
    );
    // A new password replaces the old one: still allowed.
    start(&s, &token, json!({"type": "password"})).await;
    // One removed, one may come.
    let gone = s
        .me(
            "DELETE",
            &format!("/authentication-methods/{}", ids[0].replace('|', "%7C")),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    enroll_totp(&s, &token).await;
}
