//! The MFA API called with access tokens for its own audience
//! (`{issuer}mfa/`, Auth0's built-in API): `GET /mfa/authenticators` with
//! `read:authenticators`, `DELETE /mfa/authenticators/{id}` with
//! `remove:authenticators`, `POST /mfa/associate` with `enroll`; each
//! token good for its own user only, for ten minutes.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::mfa_api::{BOB_LOGIN, server_with};
use crate::support::*;

const MFA_OTP: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
const ALL: &str = "openid enroll read:authenticators remove:authenticators";

fn mfa_audience(s: &TestServer) -> String {
    format!("{}mfa/", s.issuer)
}

async fn password(s: &TestServer, user: (&str, &str), scope: &str) -> (StatusCode, Value) {
    let realm = if user.0 == ALICE {
        "Username-Password-Authentication"
    } else {
        "Partners"
    };
    let audience = mfa_audience(s);
    s.token(&[
        (
            "grant_type",
            "http://auth0.com/oauth/grant-type/password-realm",
        ),
        ("client_id", "spa"),
        ("username", user.0),
        ("password", user.1),
        ("realm", realm),
        ("scope", scope),
        ("audience", &audience),
    ])
    .await
}

/// Alice (TOTP enrolled) asks for an MFA API token: her second factor is
/// asked first, then the token carries `scope`.
async fn alice_token(s: &TestServer, secret: &str, scope: &str) -> String {
    let (status, body) = password(s, (ALICE, ALICE_PASSWORD), scope).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "mfa_required");
    let mfa_token = body["mfa_token"].as_str().unwrap().to_string();
    let code = totp_now(secret, s.clock_now());
    let (status, body) = s
        .token(&[
            ("grant_type", MFA_OTP),
            ("client_id", "spa"),
            ("mfa_token", &mfa_token),
            ("otp", &code),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A later login's code is the next step's.
    s.clock.advance(30);
    body["access_token"].as_str().unwrap().to_string()
}

async fn list(s: &TestServer, token: &str) -> (StatusCode, Value) {
    let res = s
        .http()
        .get(s.url("/mfa/authenticators"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn remove(s: &TestServer, token: &str, id: &str) -> (StatusCode, Value, Option<String>) {
    let res = s
        .http()
        .delete(s.url(&format!("/mfa/authenticators/{}", id.replace('|', "%7C"))))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (status, res.json().await.unwrap_or(Value::Null), challenge)
}

fn id_of(list: &Value, kind: &str) -> String {
    list.as_array()
        .unwrap()
        .iter()
        .find(|a| a["authenticator_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn an_mfa_api_token_lists_and_removes_with_its_scopes() {
    let (s, enrolled) = server_with("").await;
    let token = alice_token(&s, &enrolled.totp_secret, ALL).await;
    let c = claims(&token);
    assert_eq!(c["aud"][0], json!(mfa_audience(&s)), "{c}");
    assert_eq!(
        c["scope"],
        "openid enroll read:authenticators remove:authenticators"
    );
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);

    let (status, body) = list(&s, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 2, "{body}");
    let totp = id_of(&body, "otp");

    // Only what the scopes allow.
    let reader = alice_token(&s, &enrolled.totp_secret, "read:authenticators").await;
    assert_eq!(list(&s, &reader).await.0, StatusCode::OK);
    let (status, body, challenge) = remove(&s, &reader, &totp).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(
        body["error_description"],
        "Insufficient scope, expected any of: remove:authenticators"
    );
    assert!(
        challenge
            .unwrap()
            .contains("scope=\"remove:authenticators\"")
    );
    let remover = alice_token(&s, &enrolled.totp_secret, "remove:authenticators").await;
    let (status, body) = list(&s, &remover).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "insufficient_scope");
    // An mfa_token lists, but never removes.
    let (_, body) = password(&s, (ALICE, ALICE_PASSWORD), ALL).await;
    let mfa_token = body["mfa_token"].as_str().unwrap().to_string();
    assert_eq!(list(&s, &mfa_token).await.0, StatusCode::OK);
    let (status, body, _) = remove(&s, &mfa_token, &totp).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Nothing was removed so far.
    assert_eq!(list(&s, &token).await.1.as_array().unwrap().len(), 2);

    // Unknown and malformed IDs.
    let (status, body, _) = remove(&s, &token, "totp|dev_nothing").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let long = "x".repeat(5000);
    assert_eq!(remove(&s, &token, &long).await.0, StatusCode::NOT_FOUND);
    // A password is not an MFA authenticator.
    // Her password's method ID (`password|` and her user ID, base64url).
    let password_id = "password|YXV0aDB8YWxpY2U";
    assert_eq!(
        remove(&s, &token, password_id).await.0,
        StatusCode::NOT_FOUND
    );

    let (status, body, _) = remove(&s, &token, &totp).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, body) = list(&s, &token).await;
    assert_eq!(body.as_array().unwrap().len(), 1, "{body}");
    // Gone: removing it again finds nothing.
    assert_eq!(remove(&s, &token, &totp).await.0, StatusCode::NOT_FOUND);
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let events = s.state.store.audit_events(&tenant.id, 100).await.unwrap();
    let unenroll = events
        .iter()
        .find(|e| e.event_type == "gd_unenroll")
        .expect("gd_unenroll logged");
    assert_eq!(unenroll.user_id.as_deref(), Some("auth0|alice"));
    assert_eq!(unenroll.client_id.as_deref(), Some("spa"));
    assert_eq!(unenroll.details["authenticator_id"], totp);

    // Ten minutes, then nothing.
    s.clock.advance(600 + 31);
    let (status, body) = list(&s, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_token");
    let recovery = format!("recovery-code|{}", "x");
    assert_eq!(
        remove(&s, &token, &recovery).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn other_tokens_and_other_users_authenticators_are_refused() {
    let (s, enrolled) = server_with("").await;
    // Bob has no second factor: his MFA API token comes without a challenge.
    let (status, body) = password(&s, BOB_LOGIN, ALL).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bob = body["access_token"].as_str().unwrap().to_string();
    let alice = alice_token(&s, &enrolled.totp_secret, ALL).await;
    let alices = list(&s, &alice).await.1;
    let totp = id_of(&alices, "otp");
    // Bob's token cannot touch Alice's authenticator, nor list it.
    let (status, _, _) = remove(&s, &bob, &totp).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(list(&s, &bob).await.1, json!([]));
    assert_eq!(list(&s, &alice).await.1, alices);

    // A My Account token, an ordinary API's token, an ID token: not for
    // the MFA API.
    let me = s.me_token(ME_SCOPES).await;
    let (status, body) = list(&s, &me).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(remove(&s, &me, &totp).await.0, StatusCode::UNAUTHORIZED);
    let (_, body) = password(&s, BOB_LOGIN, ALL).await;
    let id_token = body["id_token"].as_str().unwrap().to_string();
    assert_eq!(list(&s, &id_token).await.0, StatusCode::UNAUTHORIZED);
    // A token with a forged signature.
    let mut forged = alice.clone();
    forged.pop();
    forged.push(if alice.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(list(&s, &forged).await.0, StatusCode::UNAUTHORIZED);
    // A client without the MFA grants cannot get such a token.
    let (status, body) = s
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "backend"),
            ("client_secret", BACKEND_SECRET),
            ("audience", &mfa_audience(&s)),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // A user blocked since: the token is dead.
    let blocked = crate::mfa_api::tenant(s.port, "").replace(
        "connection: Partners, user_id: \"auth0|bob\" }",
        "connection: Partners, user_id: \"auth0|bob\", blocked: true }",
    );
    assert!(blocked.contains("blocked: true"));
    latchkey::tenant::apply::apply_text(&s.state, &blocked)
        .await
        .unwrap();
    assert_eq!(list(&s, &bob).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(list(&s, &alice).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_mfa_api_token_enrolls_another_factor() {
    let (s, enrolled) = server_with("").await;
    // A token without `enroll` cannot.
    let reader = alice_token(&s, &enrolled.totp_secret, "read:authenticators").await;
    let associate = |token: String| {
        let s = &s;
        async move {
            let res = s
                .http()
                .post(s.url("/mfa/associate"))
                .bearer_auth(token)
                .json(&json!({"authenticator_types": ["otp"]}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = associate(reader).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "insufficient_scope");
    let (status, _) = associate(s.me_token(ME_SCOPES).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Alice has a factor already; with `enroll` she adds another.
    let token = alice_token(&s, &enrolled.totp_secret, "enroll read:authenticators").await;
    let (status, body) = associate(token.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["authenticator_type"], "otp");
    let secret = body["secret"].as_str().unwrap().to_string();
    // Confirmed with the access token as the mfa_token; a wrong code first.
    let confirm = |code: String| {
        let (s, token) = (&s, token.clone());
        async move {
            s.token(&[
                ("grant_type", MFA_OTP),
                ("client_id", "spa"),
                ("mfa_token", &token),
                ("otp", &code),
            ])
            .await
        }
    };
    let right = totp_now(&secret, s.clock_now());
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    let (status, body) = confirm(wrong.to_string()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = confirm(right.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let renewed = claims(body["access_token"].as_str().unwrap());
    assert_eq!(renewed["aud"], json!(mfa_audience(&s)), "{renewed}");
    assert_eq!(renewed["scope"], "enroll read:authenticators");
    let (_, listed) = list(&s, &token).await;
    let otps = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["authenticator_type"] == "otp")
        .count();
    assert_eq!(otps, 2, "{listed}");
    // Confirmed once: the same code again is refused.
    let (status, _) = confirm(right).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
