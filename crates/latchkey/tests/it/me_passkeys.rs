//! Passkey enrollment through `/me/v1`, with a software authenticator.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::authenticator::{SoftAuthenticator, b64url_decode, tamper_client_data};
use crate::support::*;

/// The acme tenant with passkeys enabled.
async fn server() -> TestServer {
    let s = TestServer::start().await;
    let text = acme(s.port).replace(
        "factors: [password, totp, recovery-code]",
        "factors: [password, passkey, totp, recovery-code]",
    );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    s
}

async fn start(s: &TestServer, token: &str, body: Value) -> MeResponse {
    let r = s
        .me("POST", "/authentication-methods", Some(token), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    r
}

async fn verify(
    s: &TestServer,
    token: &str,
    location: &str,
    session: &Value,
    response: &Value,
) -> MeResponse {
    s.me(
        "POST",
        &format!("{location}/verify"),
        Some(token),
        Some(json!({"auth_session": session, "authn_response": response})),
    )
    .await
}

#[tokio::test]
async fn enroll_a_passkey_end_to_end() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    let r = start(&s, &token, json!({"type": "passkey"})).await;
    let location = r.header("location").unwrap().to_string();
    assert_eq!(
        location,
        format!("{}me/v1/authentication-methods/passkey%7Cnew", s.issuer)
    );
    assert!(r.body.get("id").is_none(), "the passkey 202 carries no id");
    let options = r.body["authn_params_public_key"].clone();
    assert_eq!(options["rp"]["id"], "localhost");
    assert_eq!(options["rp"]["name"], "acme");
    assert_eq!(options["user"]["name"], ALICE);
    assert_eq!(options["user"]["displayName"], "Alice Example");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert!(options["challenge"].as_str().unwrap().len() >= 43);
    let algs: Vec<i64> = options["pubKeyCredParams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["alg"].as_i64().unwrap())
        .collect();
    assert!(algs.contains(&-7) && algs.contains(&-257), "{algs:?}");
    // Nothing is a method before it is verified.
    assert_eq!(
        s.me(
            "GET",
            "/authentication-methods?type=passkey",
            Some(&token),
            None
        )
        .await
        .body["authentication_methods"],
        json!([])
    );

    let authenticator = SoftAuthenticator::new();
    let credential = authenticator.register(&s.base, &options).await.unwrap();
    let v = verify(&s, &token, &location, &r.body["auth_session"], &credential).await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    let m = &v.body;
    assert_eq!(m["type"], "passkey");
    assert!(m["id"].as_str().unwrap().starts_with("passkey|dev_"));
    assert!(
        v.header("location")
            .unwrap()
            .ends_with(&m["id"].as_str().unwrap().replace('|', "%7C"))
    );
    assert_eq!(m["key_id"], credential["rawId"]);
    assert_eq!(m["user_handle"], options["user"]["id"]);
    assert_eq!(m["identity_user_id"], "auth0|alice");
    assert_eq!(m["usage"], json!(["primary"]));
    assert_eq!(m["relying_party_id"], "localhost");
    assert!(
        m["public_key"]
            .as_str()
            .is_some_and(|k| !b64url_decode(k).is_empty())
    );
    assert!(
        m["credential_device_type"] == "multi_device"
            || m["credential_device_type"] == "single_device"
    );
    assert!(m["credential_backed_up"].is_boolean());
    assert!(m["aaguid"].is_string());
    assert!(m.get("confirmed").is_none());

    // Listed, renamed, read back.
    let path = format!(
        "/authentication-methods/{}",
        m["id"].as_str().unwrap().replace('|', "%7C")
    );
    let list = s
        .me(
            "GET",
            "/authentication-methods?type=passkey",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(list.body["authentication_methods"][0], *m);
    let r = s
        .me(
            "PATCH",
            &path,
            Some(&token),
            Some(json!({"name": "Laptop"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Laptop");

    // With a passkey to log in with, the password may go; then the passkey may not.
    let pw = s
        .me(
            "DELETE",
            "/authentication-methods/password%7CYXV0aDB8YWxpY2U",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(pw.status, StatusCode::NO_CONTENT, "{}", pw.body);
    let r = s.me("DELETE", &path, Some(&token), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn tampered_replayed_or_foreign_attestations_are_refused() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    let authenticator = SoftAuthenticator::new();

    // A challenge other than the one issued.
    let r = start(&s, &token, json!({"type": "passkey"})).await;
    let location = r.header("location").unwrap().to_string();
    let mut cred = authenticator
        .register(&s.base, &r.body["authn_params_public_key"])
        .await
        .unwrap();
    tamper_client_data(&mut cred, |c| {
        c["challenge"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    });
    assert_eq!(
        verify(&s, &token, &location, &r.body["auth_session"], &cred)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Another origin.
    let r = start(&s, &token, json!({"type": "passkey"})).await;
    let mut cred = authenticator
        .register(&s.base, &r.body["authn_params_public_key"])
        .await
        .unwrap();
    tamper_client_data(&mut cred, |c| c["origin"] = json!("https://evil.example"));
    assert_eq!(
        verify(&s, &token, &location, &r.body["auth_session"], &cred)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // A creation ceremony's clientData type swapped for an assertion's.
    let r = start(&s, &token, json!({"type": "passkey"})).await;
    let mut cred = authenticator
        .register(&s.base, &r.body["authn_params_public_key"])
        .await
        .unwrap();
    tamper_client_data(&mut cred, |c| c["type"] = json!("webauthn.get"));
    assert_eq!(
        verify(&s, &token, &location, &r.body["auth_session"], &cred)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // A flipped byte in the attestation object (the RP ID hash).
    let r = start(&s, &token, json!({"type": "passkey"})).await;
    let mut cred = authenticator
        .register(&s.base, &r.body["authn_params_public_key"])
        .await
        .unwrap();
    let mut att = b64url_decode(cred["response"]["attestationObject"].as_str().unwrap());
    let at = att.windows(8).position(|w| w == b"authData").unwrap() + 8 + 2;
    att[at] ^= 0xff;
    cred["response"]["attestationObject"] = json!(crate::authenticator::b64url(&att));
    assert_eq!(
        verify(&s, &token, &location, &r.body["auth_session"], &cred)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // The right one succeeds once; replaying it fails.
    let r = start(&s, &token, json!({"type": "passkey"})).await;
    let cred = authenticator
        .register(&s.base, &r.body["authn_params_public_key"])
        .await
        .unwrap();
    let ok = verify(&s, &token, &location, &r.body["auth_session"], &cred).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let again = verify(&s, &token, &location, &r.body["auth_session"], &cred).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.me(
            "GET",
            "/authentication-methods?type=passkey",
            Some(&token),
            None
        )
        .await
        .body["authentication_methods"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Malformed responses are validation errors, not 500s.
    let r = start(&s, &token, json!({"type": "passkey"})).await;
    for (bad, pointer) in [
        (json!("nope"), "/authn_response"),
        (
            json!({"id": "x", "rawId": "x", "type": "public-key"}),
            "/authn_response/response",
        ),
        (
            json!({"id": "x", "rawId": "x", "type": "secret-key", "response": {}}),
            "/authn_response/type",
        ),
        (
            json!({"id": "x", "rawId": "x", "type": "public-key", "response": {"clientDataJSON": "x"}}),
            "/authn_response/response/attestationObject",
        ),
    ] {
        let v = verify(&s, &token, &location, &r.body["auth_session"], &bad).await;
        assert_eq!(v.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            v.body["validation_errors"][0]["pointer"], pointer,
            "{}",
            v.body
        );
    }
    let garbage = json!({"id": "eA", "rawId": "eA", "type": "public-key",
                         "response": {"clientDataJSON": "eA", "attestationObject": "eA"}});
    let v = verify(&s, &token, &location, &r.body["auth_session"], &garbage).await;
    assert_eq!(v.status, StatusCode::BAD_REQUEST, "{}", v.body);
}

#[tokio::test]
async fn exclude_credentials_when_asked_and_sessions_bound_to_the_user() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    let authenticator = SoftAuthenticator::new();
    let r = start(&s, &token, json!({"type": "passkey"})).await;
    let location = r.header("location").unwrap().to_string();
    let cred = authenticator
        .register(&s.base, &r.body["authn_params_public_key"])
        .await
        .unwrap();
    assert_eq!(
        verify(&s, &token, &location, &r.body["auth_session"], &cred)
            .await
            .status,
        StatusCode::CREATED
    );

    let r = start(
        &s,
        &token,
        json!({"type": "passkey", "use_exclude_credentials": true}),
    )
    .await;
    let excluded = r.body["authn_params_public_key"]["excludeCredentials"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(excluded.len(), 1);
    assert_eq!(excluded[0]["id"], cred["rawId"]);
    assert!(
        authenticator
            .register(&s.base, &r.body["authn_params_public_key"])
            .await
            .is_err(),
        "the authenticator refuses to register twice"
    );
    let r = start(&s, &token, json!({"type": "passkey"})).await;
    assert!(
        r.body["authn_params_public_key"]
            .get("excludeCredentials")
            .is_none_or(|e| e.as_array().is_some_and(|a| a.is_empty()))
    );

    // Bob cannot finish Alice's enrollment.
    let r = start(&s, &token, json!({"type": "passkey"})).await;
    let cred = SoftAuthenticator::new()
        .register(&s.base, &r.body["authn_params_public_key"])
        .await
        .unwrap();
    let bob = s
        .me_token_for(
            "bob@example.com",
            "B0b-has-a-long-password",
            Some("Partners"),
            ME_SCOPES,
        )
        .await;
    assert_eq!(
        verify(&s, &bob, &location, &r.body["auth_session"], &cred)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn user_verification_is_required() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    let r = start(&s, &token, json!({"type": "passkey"})).await;
    let location = r.header("location").unwrap().to_string();
    let options = &r.body["authn_params_public_key"];
    match SoftAuthenticator::without_user_verification()
        .register(&s.base, options)
        .await
    {
        Err(_) => {} // the authenticator itself declines: required UV it cannot do
        Ok(cred) => {
            let v = verify(&s, &token, &location, &r.body["auth_session"], &cred).await;
            assert_eq!(v.status, StatusCode::BAD_REQUEST, "{}", v.body);
        }
    }
}

#[tokio::test]
async fn webauthn_keys_are_listed_renamed_and_deleted_but_not_enrolled() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    // Security keys arrive by migration (no enrollment path creates them).
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    for (i, kind) in ["webauthn-roaming", "webauthn-platform"].iter().enumerate() {
        s.state
            .store
            .create_enrollment(
                &tenant.id,
                &format!("import{i}"),
                &latchkey::store::EnrollmentRow {
                    user_id: "auth0|alice".into(),
                    client_id: "spa".into(),
                    method_type: kind.to_string(),
                    method_id: String::new(),
                    state: json!({}),
                    attempts: 0,
                    created_at: START,
                    expires_at: START + 60,
                },
            )
            .await
            .unwrap();
        let row = latchkey::store::MethodRow {
            id: format!("{kind}|dev_KEY{i}AAAAAAAAAAAA"),
            user_id: "auth0|alice".into(),
            method_type: latchkey::tenant::FactorType::try_from(kind.to_string()).unwrap(),
            name: Some("YubiKey".into()),
            data: json!({}),
            created_at: START,
            last_auth_at: None,
            last_otp_step: None,
            credential_id: None,
        };
        let c = latchkey::store::Completion::AddMethod {
            row,
            replace_type: false,
        };
        assert!(
            s.state
                .store
                .complete_enrollment(&tenant.id, &format!("import{i}"), &c, START)
                .await
                .unwrap()
        );
    }
    let list = s
        .me(
            "GET",
            "/authentication-methods?type=webauthn-roaming",
            Some(&token),
            None,
        )
        .await;
    let key = &list.body["authentication_methods"][0];
    assert_eq!(key["type"], "webauthn-roaming");
    assert_eq!(key["confirmed"], true);
    assert_eq!(key["usage"], json!(["secondary"]));
    assert_eq!(key["name"], "YubiKey");
    let path = format!(
        "/authentication-methods/{}",
        key["id"].as_str().unwrap().replace('|', "%7C")
    );
    let r = s
        .me(
            "PATCH",
            &path,
            Some(&token),
            Some(json!({"name": "Blue key"})),
        )
        .await;
    assert_eq!(r.body["name"], "Blue key");
    assert_eq!(
        s.me("DELETE", &path, Some(&token), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.me("GET", &path, Some(&token), None).await.status,
        StatusCode::NOT_FOUND
    );
    let platform = s
        .me(
            "GET",
            "/authentication-methods?type=webauthn-platform",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        platform.body["authentication_methods"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Enrolling them is refused, as the current document says.
    for kind in ["webauthn-roaming", "webauthn-platform"] {
        let r = s
            .me(
                "POST",
                "/authentication-methods",
                Some(&token),
                Some(json!({"type": kind})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn what_browsers_to_json_adds_is_accepted() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    let r = start(&s, &token, json!({"type": "passkey"})).await;
    let location = r.header("location").unwrap().to_string();
    let mut cred = SoftAuthenticator::new()
        .register(&s.base, &r.body["authn_params_public_key"])
        .await
        .unwrap();
    // As Chromium's PublicKeyCredential.toJSON() gives it.
    cred["response"]["authenticatorData"] = json!("AAAA");
    cred["response"]["publicKey"] = json!("AAAA");
    cred["response"]["publicKeyAlgorithm"] = json!(-7);
    let v = verify(&s, &token, &location, &r.body["auth_session"], &cred).await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
}

/// The password and the only passkey deleted at once, round after round:
/// exactly one goes (204) and the other is refused as the last way to log
/// in (409); the user is never left with nothing.
#[tokio::test]
async fn deleting_the_password_and_the_only_passkey_at_once_leaves_one() {
    let s = server().await;
    // No tenant-wide limit: the rounds make many calls in a short time.
    let text = acme(s.port)
        .replace(
            "factors: [password, totp, recovery-code]",
            "factors: [password, passkey, totp, recovery-code]",
        )
        .replace("tenant_per_second: 25", "tenant_per_second: 0");
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let token = s.me_token(ME_SCOPES).await;
    let authenticator = SoftAuthenticator::new();
    let password = "/authentication-methods/password%7CYXV0aDB8YWxpY2U";
    let mut passkey = None;
    for round in 0..24 {
        if passkey.is_none() {
            let r = start(&s, &token, json!({"type": "passkey"})).await;
            let options = r.body["authn_params_public_key"].clone();
            let credential = authenticator.register(&s.base, &options).await.unwrap();
            let location = r.header("location").unwrap().to_string();
            let v = verify(&s, &token, &location, &r.body["auth_session"], &credential).await;
            assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
            let id = v.body["id"].as_str().unwrap().replace('|', "%7C");
            passkey = Some(format!("/authentication-methods/{id}"));
        }
        let key = passkey.clone().unwrap();
        let (a, b) = tokio::join!(
            s.me("DELETE", password, Some(&token), None),
            s.me("DELETE", &key, Some(&token), None),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::NO_CONTENT, StatusCode::CONFLICT],
            "round {round}: {} / {}",
            a.body,
            b.body
        );
        let list = s
            .me("GET", "/authentication-methods", Some(&token), None)
            .await;
        let primary = list.body["authentication_methods"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == "password" || m["type"] == "passkey")
            .count();
        assert_eq!(primary, 1, "round {round}: {}", list.body);
        if a.status == StatusCode::NO_CONTENT {
            // The password went: set one again.
            let r = start(&s, &token, json!({"type": "password"})).await;
            let v = s
                .me(
                    "POST",
                    &format!("{}/verify", r.header("location").unwrap()),
                    Some(&token),
                    Some(json!({"auth_session": r.body["auth_session"], "new_password": format!("Another-Passw0rd-{round}")})),
                )
                .await;
            assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
        } else {
            passkey = None;
        }
    }
}
