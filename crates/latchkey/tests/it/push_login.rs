//! Push-notification logins through the MFA API, end to end over HTTP: a
//! device enrolled with its own RSA key, the notification read from the
//! signed webhook's receiver, the device's details and resolution through
//! the device API, the app's polls of the mfa-oob grant. Number matching,
//! replays, other devices' keys and other tenants' tokens, expiry (the
//! clock moved), polling too fast or after the tokens were issued, a push
//! method's TOTP codes; limits on notifications; racing answers; two nodes on
//! PostgreSQL; and the reference authenticator, a separate process, approving.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dpop_client::Key;
use crate::push_device::{Device, Enrollment};
use crate::push_receivers::{PushWebhookReceiver, WebhookPush};
use crate::support::*;

const MFA_OTP: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
const MFA_OOB: &str = "http://auth0.com/oauth/grant-type/mfa-oob";

/// The acme tenant with the MFA grants, push enabled and sent through the
/// webhook at `url`, and `extra` (the MFA policy).
fn tenant(port: u16, url: &str, number_matching: bool, extra: &str) -> String {
    crate::mfa_api::tenant(port, extra).replace(
        "factors: [password, totp, recovery-code]",
        "factors: [password, totp, recovery-code, push-notification]",
    ) + &format!(
        "push_notifications:\n  number_matching: {number_matching}\n  \
         webhook: {{ url: \"{url}\", secret_env: SMS_WEBHOOK_SECRET, timeout_seconds: 5 }}\n"
    )
}

/// Alice's enrolled device: the device, what it was told, its method ID.
struct Phone {
    device: Device,
    enrollment: Enrollment,
    method_id: String,
}

struct Setup {
    s: TestServer,
    rx: PushWebhookReceiver,
    phone: Phone,
}

/// Alice enrolls a push device through My Account.
async fn enroll(s: &TestServer, name: &str) -> Phone {
    let token = s.me_token(ME_SCOPES).await;
    enroll_with(s, &token, name).await
}

/// A push device enrolled through My Account with the user's `token`.
async fn enroll_with(s: &TestServer, token: &str, name: &str) -> Phone {
    let token = token.to_string();
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "push-notification"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let device = Device::new(name);
    let enrollment = device.enroll(r.body["barcode_uri"].as_str().unwrap()).await;
    let method_id = r.body["id"].as_str().unwrap().to_string();
    let v = s
        .me(
            "POST",
            &format!(
                "/authentication-methods/{}/verify",
                percent_encoding::utf8_percent_encode(
                    &method_id,
                    percent_encoding::NON_ALPHANUMERIC
                )
            ),
            Some(&token),
            Some(json!({"auth_session": r.body["auth_session"]})),
        )
        .await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    Phone {
        device,
        enrollment,
        method_id,
    }
}

/// A server whose Alice enrolled a push device; the tenant asks for MFA
/// always and sends notifications to a receiver on loopback.
async fn setup(number_matching: bool) -> Setup {
    setup_with_bob(number_matching, false).await.0
}

/// [`setup`], Bob enrolling a device of his own too when `bob`.
async fn setup_with_bob(number_matching: bool, bob: bool) -> (Setup, Option<Phone>) {
    let s = TestServer::start().await;
    let rx = PushWebhookReceiver::start(WEBHOOK_SECRET, std::sync::Arc::new(s.clock.clone())).await;
    latchkey::tenant::apply::apply_text(&s.state, &tenant(s.port, &rx.url, number_matching, ""))
        .await
        .unwrap();
    let phone = enroll(&s, "pixel").await;
    let bob = if bob {
        let (user, password) = crate::mfa_api::BOB_LOGIN;
        let token = s
            .me_token_for(user, password, Some("Partners"), ME_SCOPES)
            .await;
        Some(enroll_with(&s, &token, "bobs-phone").await)
    } else {
        None
    };
    latchkey::tenant::apply::apply_text(
        &s.state,
        &tenant(s.port, &rx.url, number_matching, crate::mfa_api::ALWAYS),
    )
    .await
    .unwrap();
    (Setup { s, rx, phone }, bob)
}

async fn mfa_token(s: &TestServer, user: (&str, &str)) -> String {
    let realm = if user.0 == ALICE {
        "Username-Password-Authentication"
    } else {
        "Partners"
    };
    let (status, body) = s
        .token(&[
            (
                "grant_type",
                "http://auth0.com/oauth/grant-type/password-realm",
            ),
            ("client_id", "spa"),
            ("username", user.0),
            ("password", user.1),
            ("realm", realm),
            ("scope", "openid offline_access"),
        ])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    body["mfa_token"].as_str().unwrap().to_string()
}

async fn challenge(s: &TestServer, token: &str, authenticator_id: &str) -> (StatusCode, Value) {
    let res = s
        .http()
        .post(s.url("/mfa/challenge"))
        .header("user-agent", UA)
        .form(&[
            ("client_id", "spa"),
            ("mfa_token", token),
            ("challenge_type", "oob"),
            ("authenticator_id", authenticator_id),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

async fn poll(s: &TestServer, token: &str, oob_code: &str) -> (StatusCode, Value) {
    s.token(&[
        ("grant_type", MFA_OOB),
        ("client_id", "spa"),
        ("mfa_token", token),
        ("oob_code", oob_code),
    ])
    .await
}

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                  Chrome/131.0.0.0 Safari/537.36";

/// A login of Alice's, challenged: its `mfa_token`, the challenge's answer
/// and the notification the device got.
async fn pushed(x: &Setup) -> (String, Value, WebhookPush) {
    let token = mfa_token(&x.s, (ALICE, ALICE_PASSWORD)).await;
    let (status, body) = challenge(&x.s, &token, &x.phone.method_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let push = x.rx.next().await;
    (token, body, push)
}

/// The claims of the device's challenge response to `push`.
fn response_claims(
    s: &TestServer,
    phone: &Phone,
    push: &WebhookPush,
    accepted: bool,
    code: Option<&str>,
) -> Value {
    let now = s.clock_now();
    let mut claims = json!({
        "iss": phone.device.identifier,
        "sub": push.notification["c"],
        "aud": format!("{}appliance-mfa/api/resolve-transaction", s.issuer),
        "iat": now,
        "exp": now + 30,
        "auth0_guardian_method": "push",
        "auth0_guardian_accepted": accepted,
    });
    if !accepted {
        claims["auth0_guardian_reason"] = json!("this was not me");
    }
    if let Some(c) = code {
        claims["latchkey_binding_code"] = json!(c);
    }
    claims
}

/// The device's challenge response to `push`, signed by its key.
fn response(
    s: &TestServer,
    phone: &Phone,
    push: &WebhookPush,
    accepted: bool,
    code: Option<&str>,
) -> String {
    phone.device.jws(
        &json!({"alg": "RS256", "typ": "JWT"}),
        &response_claims(s, phone, push, accepted, code),
    )
}

async fn resolve_at(s: &TestServer, base: &str, txtkn: &str, jwt: &str) -> (StatusCode, Value) {
    let res = s
        .http()
        .post(format!("{base}/appliance-mfa/api/resolve-transaction"))
        .bearer_auth(txtkn)
        .json(&json!({ "challenge_response": jwt }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn resolve(s: &TestServer, push: &WebhookPush, jwt: &str) -> (StatusCode, Value) {
    resolve_at(s, &s.base, txtkn(push), jwt).await
}

fn txtkn(push: &WebhookPush) -> &str {
    push.notification["txtkn"].as_str().unwrap()
}

/// An `MFA-DPoP` proof for `url`, signed by `sign` for the key `jwk`.
fn proof(
    sign: &dyn Fn(&Value, &Value) -> String,
    jwk: Value,
    url: &str,
    iat: i64,
    token: &str,
    jti: &str,
) -> String {
    sign(
        &json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk}),
        &json!({"jti": jti, "htm": "GET", "htu": url, "iat": iat,
                "ath": crate::dpop_client::sha256_b64url(token.as_bytes())}),
    )
}

fn details_url(s: &TestServer, push: &WebhookPush) -> String {
    format!(
        "{}/rich-consents/{}",
        s.base,
        push.notification["txlnkid"].as_str().unwrap()
    )
}

async fn get_details(
    s: &TestServer,
    url: &str,
    token: &str,
    proof: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = s
        .http()
        .get(url)
        .header("authorization", format!("MFA-DPoP {token}"));
    if let Some(p) = proof {
        req = req.header("mfa-dpop", p);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The details as the device fetches them.
async fn details(s: &TestServer, phone: &Phone, push: &WebhookPush) -> (StatusCode, Value) {
    let url = details_url(s, push);
    let sign = |h: &Value, c: &Value| phone.device.jws(h, c);
    let p = proof(
        &sign,
        phone.device.public_jwk(),
        &url,
        s.clock_now(),
        txtkn(push),
        &fresh(),
    );
    get_details(s, &url, txtkn(push), Some(&p)).await
}

fn fresh() -> String {
    use latchkey::rng::{RngExt, SystemRng};
    SystemRng.alnum(22)
}

fn oob(body: &Value) -> &str {
    body["oob_code"].as_str().unwrap()
}

#[tokio::test]
async fn approved_on_the_device_the_app_gets_its_tokens_once() {
    let x = setup(false).await;
    let s = &x.s;
    let token = mfa_token(s, (ALICE, ALICE_PASSWORD)).await;
    // Listed as Auth0 lists a Guardian authenticator.
    let res = s
        .http()
        .get(s.url("/mfa/authenticators"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let list: Value = res.json().await.unwrap();
    let push = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == x.phone.method_id)
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(push["authenticator_type"], "oob");
    assert_eq!(push["oob_channel"], "auth0");
    assert_eq!(push["active"], true);

    let (status, body) = challenge(s, &token, &x.phone.method_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["challenge_type"], "oob");
    assert!(body.get("binding_method").is_none() && body.get("latchkey_binding_code").is_none());
    let n = x.rx.next().await;
    assert_eq!(n.notification["dai"], x.phone.enrollment.id);
    assert_eq!(n.notification["sh"], s.issuer);
    assert_eq!(
        n.notification["s"],
        json!({"b": {"n": "Chrome", "v": "131"}, "os": {"n": "Linux"}})
    );
    // Nothing personal in the notification.
    assert!(!n.notification.to_string().contains("alice"));

    // Not answered yet.
    let (status, err) = poll(s, &token, oob(&body)).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );

    // The device reads what it approves.
    let (status, consent) = details(s, &x.phone, &n).await;
    assert_eq!(status, StatusCode::OK, "{consent}");
    assert_eq!(consent["id"], n.notification["txlnkid"]);
    let detail = &consent["requested_details"]["authorization_details"][0];
    assert_eq!(detail["type"], "login");
    assert_eq!(detail["number_matching"], false);
    assert_eq!(detail["user_agent"], UA);
    // Guardian.swift decodes these as strings.
    assert!(
        consent["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(
        consent["expires_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(consent["requested_details"]["audience"].is_string());
    assert!(consent["requested_details"]["scope"].is_array());

    let jwt = response(s, &x.phone, &n, true, None);
    let (status, err) = resolve(s, &n, &jwt).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{err}");
    // The same response again: resolved once.
    let (status, err) = resolve(s, &n, &jwt).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    assert_eq!(err["errorCode"], "transaction_not_found");

    s.clock.advance(5);
    let (status, tokens) = poll(s, &token, oob(&body)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "mfa"]));
    // Consumed: the next poll gets nothing.
    s.clock.advance(5);
    let (status, err) = poll(s, &token, oob(&body)).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant"))
    );
    let events = crate::mfa_api::events(s).await;
    assert!(events.contains(&"gd_send_pn".to_string()), "{events:?}");
    assert!(
        events.contains(&"gd_auth_succeed".to_string()),
        "{events:?}"
    );
}

#[tokio::test]
async fn rejected_on_the_device_the_app_is_told_as_auth0_says() {
    let x = setup(false).await;
    let s = &x.s;
    let (token, body, n) = pushed(&x).await;
    let jwt = response(s, &x.phone, &n, false, None);
    let (status, err) = resolve(s, &n, &jwt).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{err}");
    let (status, err) = poll(s, &token, oob(&body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(err["error_description"], "MFA Authorization rejected.");
    // The mfa_token lives on: another method may still answer.
    let events = crate::mfa_api::events(s).await;
    assert!(
        events.contains(&"gd_auth_rejected".to_string()),
        "{events:?}"
    );
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let logged = s.state.store.audit_events(&tenant.id, 100).await.unwrap();
    let rejected = logged
        .iter()
        .find(|e| e.event_type == "gd_auth_rejected")
        .unwrap();
    assert_eq!(rejected.details["reason"], "this was not me");
    // A new notification, approved this time.
    let (status, body) = challenge(s, &token, &x.phone.method_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let n = x.rx.next().await;
    let jwt = response(s, &x.phone, &n, true, None);
    assert_eq!(resolve(s, &n, &jwt).await.0, StatusCode::NO_CONTENT);
    let (status, tokens) = poll(s, &token, oob(&body)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

#[tokio::test]
async fn number_matching_wants_the_number_the_login_shows() {
    let x = setup(true).await;
    let s = &x.s;
    // An approval without the number: refused, and the login rejected.
    let (token, body, n) = pushed(&x).await;
    let code = body["latchkey_binding_code"].as_str().unwrap().to_string();
    assert!(
        code.len() == 2 && code.chars().all(|c| c.is_ascii_digit()),
        "{body}"
    );
    // The number is never sent to the device.
    assert!(!n.notification.to_string().contains(&format!("\"{code}\"")));
    let (status, consent) = details(s, &x.phone, &n).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        consent["requested_details"]["authorization_details"][0]["number_matching"],
        true
    );
    assert!(
        !consent["requested_details"]["binding_message"]
            .as_str()
            .unwrap()
            .contains(&code)
    );
    let jwt = response(s, &x.phone, &n, true, None);
    let (status, err) = resolve(s, &n, &jwt).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["errorCode"], "invalid_binding_code");
    let (_, err) = poll(s, &token, oob(&body)).await;
    assert_eq!(err["error_description"], "MFA Authorization rejected.");

    // A wrong number: the same.
    let (status, body) = challenge(s, &token, &x.phone.method_id).await;
    assert_eq!(status, StatusCode::OK);
    let n = x.rx.next().await;
    let right = body["latchkey_binding_code"].as_str().unwrap();
    let wrong = format!("{:02}", (right.parse::<u8>().unwrap() + 1) % 100);
    let jwt = response(s, &x.phone, &n, true, Some(&wrong));
    assert_eq!(resolve(s, &n, &jwt).await.0, StatusCode::FORBIDDEN);
    // One guess: the right number afterwards is too late.
    let jwt = response(s, &x.phone, &n, true, Some(right));
    assert_eq!(resolve(s, &n, &jwt).await.0, StatusCode::NOT_FOUND);
    let (_, err) = poll(s, &token, oob(&body)).await;
    assert_eq!(err["error_description"], "MFA Authorization rejected.");

    // The right number.
    let (status, body) = challenge(s, &token, &x.phone.method_id).await;
    assert_eq!(status, StatusCode::OK);
    let n = x.rx.next().await;
    let jwt = response(
        s,
        &x.phone,
        &n,
        true,
        body["latchkey_binding_code"].as_str(),
    );
    assert_eq!(resolve(s, &n, &jwt).await.0, StatusCode::NO_CONTENT);
    let (status, tokens) = poll(s, &token, oob(&body)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // A rejection needs no number.
    let token = mfa_token(s, (ALICE, ALICE_PASSWORD)).await;
    let (_, body) = challenge(s, &token, &x.phone.method_id).await;
    let n = x.rx.next().await;
    let jwt = response(s, &x.phone, &n, false, None);
    assert_eq!(resolve(s, &n, &jwt).await.0, StatusCode::NO_CONTENT);
    let (_, err) = poll(s, &token, oob(&body)).await;
    assert_eq!(err["error_description"], "MFA Authorization rejected.");
}

#[tokio::test]
async fn forged_responses_change_nothing() {
    let x = setup(false).await;
    let s = &x.s;
    let (token, body, n) = pushed(&x).await;
    let now = s.clock_now();
    let aud = format!("{}appliance-mfa/api/resolve-transaction", s.issuer);
    let base = json!({
        "iss": x.phone.device.identifier, "sub": n.notification["c"], "aud": aud,
        "iat": now, "exp": now + 30,
        "auth0_guardian_method": "push", "auth0_guardian_accepted": true,
    });
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        x.phone.device.jws(&json!({"alg": "RS256"}), &c)
    };
    let other_key = Key::rs256();
    let forged = [
        // Another device's key.
        other_key.jws(&json!({"alg": "RS256"}), &base),
        // Another challenge, issuer, audience, method.
        with("sub", json!("not-the-challenge")),
        with("iss", json!("another-device")),
        with(
            "aud",
            json!(format!("{}appliance-mfa/api/device-accounts", s.issuer)),
        ),
        with("auth0_guardian_method", json!("otp")),
        // Expired, or living longer than 5 minutes.
        with("exp", json!(now - 1)),
        with("exp", json!(now + 301)),
        // Not a JWT.
        "garbage".to_string(),
    ];
    for jwt in &forged {
        let (status, err) = resolve(s, &n, jwt).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{jwt}: {err}");
        assert_eq!(err["errorCode"], "invalid_token", "{err}");
    }
    // A reason too long for the log.
    let (status, err) = resolve(
        s,
        &n,
        &with("auth0_guardian_reason", json!("x".repeat(257))),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    // Another tenant's host knows no such transaction.
    let good = response(s, &x.phone, &n, true, None);
    let other = format!("http://127.0.0.1:{}", s.port);
    let (status, _) = resolve_at(s, &other, txtkn(&n), &good).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // No bearer, or an unknown one.
    let (status, err) = resolve_at(s, &s.base, "not-a-transaction-token", &good).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    // Still pending: nothing changed.
    let (_, err) = poll(s, &token, oob(&body)).await;
    assert_eq!(err["error"], "authorization_pending");
    assert!(
        crate::mfa_api::events(s)
            .await
            .contains(&"gd_auth_failed".to_string())
    );
    // The device's own answer still resolves it.
    assert_eq!(resolve(s, &n, &good).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn another_logins_token_resolves_only_its_own_transaction() {
    let x = setup(false).await;
    let s = &x.s;
    let (token_a, body_a, a) = pushed(&x).await;
    let (token_b, body_b, b) = pushed(&x).await;
    // B's token with A's response: A's challenge is not B's.
    let jwt_a = response(s, &x.phone, &a, true, None);
    let (status, _) = resolve_at(s, &s.base, txtkn(&b), &jwt_a).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A's oob_code polled with B's mfa_token: not B's.
    let (status, err) = poll(s, &token_b, oob(&body_a)).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant"))
    );
    assert_eq!(resolve(s, &a, &jwt_a).await.0, StatusCode::NO_CONTENT);
    let (status, _) = poll(s, &token_a, oob(&body_a)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, err) = poll(s, &token_b, oob(&body_b)).await;
    assert_eq!(err["error"], "authorization_pending");
}

#[tokio::test]
async fn details_are_the_devices_alone() {
    let x = setup(false).await;
    let s = &x.s;
    let (_, _, n) = pushed(&x).await;
    let url = details_url(s, &n);
    let token = txtkn(&n);
    let device_sign = |h: &Value, c: &Value| x.phone.device.jws(h, c);
    let now = s.clock_now();
    // Another key's proof, with that key in its header.
    let other = Key::rs256();
    let other_sign = |h: &Value, c: &Value| other.jws(h, c);
    let p = proof(&other_sign, other.public_jwk(), &url, now, token, &fresh());
    let (status, err) = get_details(s, &url, token, Some(&p)).await;
    assert_eq!(
        (status, err["errorCode"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token")),
        "{err}"
    );
    // A wrong transaction token (the proof's ath its own).
    let p = proof(
        &device_sign,
        x.phone.device.public_jwk(),
        &url,
        now,
        "not-the-token",
        &fresh(),
    );
    let (status, _) = get_details(s, &url, "not-the-token", Some(&p)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Without a proof.
    let (status, err) = get_details(s, &url, token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err["errorCode"], "invalid_bearer_format");
    // Another URL's proof.
    let p = proof(
        &device_sign,
        x.phone.device.public_jwk(),
        &format!("{url}x"),
        now,
        token,
        &fresh(),
    );
    assert_eq!(
        get_details(s, &url, token, Some(&p)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A proof older than a minute.
    let p = proof(
        &device_sign,
        x.phone.device.public_jwk(),
        &url,
        now - 61,
        token,
        &fresh(),
    );
    assert_eq!(
        get_details(s, &url, token, Some(&p)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The device's proof, once.
    let p = proof(
        &device_sign,
        x.phone.device.public_jwk(),
        &url,
        now,
        token,
        &fresh(),
    );
    let (status, consent) = get_details(s, &url, token, Some(&p)).await;
    assert_eq!(status, StatusCode::OK, "{consent}");
    let (status, err) = get_details(s, &url, token, Some(&p)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    // Another tenant's host knows no such transaction.
    let p = proof(
        &device_sign,
        x.phone.device.public_jwk(),
        &url,
        now,
        token,
        &fresh(),
    );
    let other_url = format!(
        "http://127.0.0.1:{}/rich-consents/{}",
        s.port,
        n.notification["txlnkid"].as_str().unwrap()
    );
    assert_eq!(
        get_details(s, &other_url, token, Some(&p)).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn polls_too_fast_slow_down_and_a_late_answer_expires() {
    let x = setup(false).await;
    let s = &x.s;
    let (token, body, n) = pushed(&x).await;
    let (_, err) = poll(s, &token, oob(&body)).await;
    assert_eq!(err["error"], "authorization_pending");
    s.clock.advance(4);
    let (status, err) = poll(s, &token, oob(&body)).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("slow_down"))
    );
    s.clock.advance(1);
    let (_, err) = poll(s, &token, oob(&body)).await;
    assert_eq!(err["error"], "authorization_pending");
    // Five minutes on: too late for the device and for the app.
    s.clock.advance(300);
    let jwt = response(s, &x.phone, &n, true, None);
    assert_eq!(resolve(s, &n, &jwt).await.0, StatusCode::NOT_FOUND);
    let (status, err) = poll(s, &token, oob(&body)).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("expired_token"))
    );
}

#[tokio::test]
async fn a_failed_delivery_is_told_and_logged() {
    let x = setup(false).await;
    let s = &x.s;
    let token = mfa_token(s, (ALICE, ALICE_PASSWORD)).await;
    x.rx.fail_next(500);
    let (status, err) = challenge(s, &token, &x.phone.method_id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"], "invalid_request");
    assert!(
        crate::mfa_api::events(s)
            .await
            .contains(&"gd_send_pn_failure".to_string())
    );
}

#[tokio::test]
async fn the_push_apps_totp_code_logs_in_once() {
    let x = setup(false).await;
    let s = &x.s;
    let token = mfa_token(s, (ALICE, ALICE_PASSWORD)).await;
    let code = totp_now(&x.phone.enrollment.totp_secret, s.clock_now());
    let otp = |t: String| {
        let code = code.clone();
        async move {
            s.token(&[
                ("grant_type", MFA_OTP),
                ("client_id", "spa"),
                ("mfa_token", &t),
                ("otp", &code),
            ])
            .await
        }
    };
    let (status, tokens) = otp(token).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa", "otp"])
    );
    // The same code again, in another login.
    let token = mfa_token(s, (ALICE, ALICE_PASSWORD)).await;
    let (status, err) = otp(token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error"], "invalid_grant");
}

/// Two nodes on one PostgreSQL schema: a transaction started through one
/// node is resolved through the other and polled on either.
#[tokio::test]
async fn two_nodes_share_a_transaction() {
    let (a, b) = TestServer::postgres_pair(&[acme, other_tenant]).await;
    let rx = PushWebhookReceiver::start(WEBHOOK_SECRET, std::sync::Arc::new(a.clock.clone())).await;
    latchkey::tenant::apply::apply_text(&a.state, &tenant(a.port, &rx.url, false, ""))
        .await
        .unwrap();
    let phone = enroll(&a, "pixel").await;
    latchkey::tenant::apply::apply_text(
        &a.state,
        &tenant(a.port, &rx.url, false, crate::mfa_api::ALWAYS),
    )
    .await
    .unwrap();
    // B serves A's host once its tenant cache has seen the change.
    a.clock.advance(3);
    let host = format!("localhost:{}", a.port);
    let token = mfa_token(&a, (ALICE, ALICE_PASSWORD)).await;
    let (status, body) = challenge(&a, &token, &phone.method_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let n = rx.next().await;
    // Polled through B: pending.
    let poll_on = |node: &TestServer| {
        node.as_host(reqwest::Method::POST, &host, "/oauth/token")
            .form(&[
                ("grant_type", MFA_OOB),
                ("client_id", "spa"),
                ("mfa_token", token.as_str()),
                ("oob_code", oob(&body)),
            ])
    };
    let res = poll_on(&b).send().await.unwrap();
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "authorization_pending");
    // Resolved through B.
    let res = b
        .as_host(
            reqwest::Method::POST,
            &host,
            "/appliance-mfa/api/resolve-transaction",
        )
        .bearer_auth(txtkn(&n))
        .json(&json!({ "challenge_response": response(&a, &phone, &n, true, None) }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Polled on A: approved, the tokens.
    let res = poll_on(&a).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // And on B, consumed.
    a.clock.advance(5);
    let res = poll_on(&b).send().await.unwrap();
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "invalid_grant");
}

/// Bob's device cannot answer Alice's login, nor Alice's device Bob's; and
/// Alice's login cannot poll Bob's.
#[tokio::test]
async fn another_users_device_and_token_resolve_nothing() {
    let (x, bob) = setup_with_bob(false, true).await;
    let bob = bob.unwrap();
    let s = &x.s;
    let (alice_token, _, alice_push) = pushed(&x).await;
    let bob_token = mfa_token(s, crate::mfa_api::BOB_LOGIN).await;
    let (status, bob_body) = challenge(s, &bob_token, &bob.method_id).await;
    assert_eq!(status, StatusCode::OK, "{bob_body}");
    let bob_push = x.rx.next().await;
    assert_eq!(bob_push.notification["dai"], bob.enrollment.id);
    // Bob's device signs Alice's challenge; Alice's device Bob's.
    let forged = response(s, &bob, &alice_push, true, None);
    assert_eq!(
        resolve(s, &alice_push, &forged).await.0,
        StatusCode::UNAUTHORIZED
    );
    let forged = response(s, &x.phone, &bob_push, true, None);
    assert_eq!(
        resolve(s, &bob_push, &forged).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Bob's device's own answer with Alice's transaction token.
    let bobs = response(s, &bob, &bob_push, true, None);
    let (status, _) = resolve_at(s, &s.base, txtkn(&alice_push), &bobs).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Alice's login polling Bob's oob_code.
    let (status, err) = poll(s, &alice_token, oob(&bob_body)).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant"))
    );
    // Bob's own answer still works for Bob.
    assert_eq!(resolve(s, &bob_push, &bobs).await.0, StatusCode::NO_CONTENT);
    let (status, tokens) = poll(s, &bob_token, oob(&bob_body)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["sub"],
        "auth0|bob"
    );
}

/// A login sends at most 5 notifications, a user 10 in 15 minutes across
/// logins: a password alone cannot bomb the phone.
#[tokio::test]
async fn notifications_are_limited_per_login_and_per_user() {
    let x = setup(false).await;
    let s = &x.s;
    let first = mfa_token(s, (ALICE, ALICE_PASSWORD)).await;
    for _ in 0..5 {
        let (status, body) = challenge(s, &first, &x.phone.method_id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, err) = challenge(s, &first, &x.phone.method_id).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{err}");
    assert_eq!(err["error"], "too_many_requests");
    let second = mfa_token(s, (ALICE, ALICE_PASSWORD)).await;
    for _ in 0..5 {
        assert_eq!(
            challenge(s, &second, &x.phone.method_id).await.0,
            StatusCode::OK
        );
    }
    let third = mfa_token(s, (ALICE, ALICE_PASSWORD)).await;
    assert_eq!(
        challenge(s, &third, &x.phone.method_id).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(x.rx.received().await.len(), 10);
    s.clock.advance(900);
    let fourth = mfa_token(s, (ALICE, ALICE_PASSWORD)).await;
    assert_eq!(
        challenge(s, &fourth, &x.phone.method_id).await.0,
        StatusCode::OK
    );
}

/// Racing answers to one transaction, approvals and rejections at once:
/// one wins, and the app gets what it said.
#[tokio::test]
async fn racing_answers_resolve_once() {
    let x = setup(false).await;
    let s = &x.s;
    let (token, body, n) = pushed(&x).await;
    let answers: Vec<String> = (0..12)
        .map(|i| response(s, &x.phone, &n, i % 2 == 0, None))
        .collect();
    let tasks: Vec<_> = answers
        .iter()
        .map(|jwt| {
            let req = s
                .http()
                .post(s.url("/appliance-mfa/api/resolve-transaction"))
                .bearer_auth(txtkn(&n))
                .json(&json!({ "challenge_response": jwt }));
            tokio::spawn(async move { req.send().await.unwrap().status() })
        })
        .collect();
    let mut won = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let status = t.await.unwrap();
        if status == StatusCode::NO_CONTENT {
            won.push(i % 2 == 0);
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    let (status, answer) = poll(s, &token, oob(&body)).await;
    if won[0] {
        assert_eq!(status, StatusCode::OK, "{answer}");
    } else {
        assert_eq!(answer["error_description"], "MFA Authorization rejected.");
    }
}

/// Malformed calls answer in Guardian's shape and change nothing.
#[tokio::test]
async fn malformed_resolutions_are_refused_in_guardians_shape() {
    let x = setup(false).await;
    let s = &x.s;
    let (token, body, n) = pushed(&x).await;
    let url = s.url("/appliance-mfa/api/resolve-transaction");
    let good = response(s, &x.phone, &n, true, None);
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            s.http()
                .post(&url)
                .json(&json!({ "challenge_response": good })),
            StatusCode::UNAUTHORIZED,
            "invalid_bearer_format",
        ),
        (
            s.http()
                .post(&url)
                .header("authorization", format!("Basic {}", txtkn(&n)))
                .json(&json!({ "challenge_response": good })),
            StatusCode::UNAUTHORIZED,
            "invalid_bearer_format",
        ),
        (
            s.http().post(&url).bearer_auth(txtkn(&n)).json(&json!({})),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            s.http()
                .post(&url)
                .bearer_auth(txtkn(&n))
                .json(&json!({ "challenge_response": 42 })),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            s.http()
                .post(&url)
                .bearer_auth(txtkn(&n))
                .json(&json!({ "challenge_response": "a".repeat(9000) })),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            s.http()
                .post(&url)
                .bearer_auth(txtkn(&n))
                .header("content-type", "text/plain")
                .body(format!("{{\"challenge_response\":\"{good}\"}}")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_body",
        ),
        (
            s.http()
                .post(&url)
                .bearer_auth(txtkn(&n))
                .header("content-type", "application/json")
                .body("{not json"),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
    ];
    for (req, status, code) in cases {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), status);
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["errorCode"], code, "{err}");
        assert_eq!(err["statusCode"], status.as_u16());
    }
    let (_, err) = poll(s, &token, oob(&body)).await;
    assert_eq!(err["error"], "authorization_pending");
    assert_eq!(resolve(s, &n, &good).await.0, StatusCode::NO_CONTENT);
}

/// A device removed while its notification waits cannot answer it, and the
/// app polling it is told to use another authenticator.
#[tokio::test]
async fn a_removed_device_answers_nothing() {
    let x = setup(false).await;
    let s = &x.s;
    let (token, body, n) = pushed(&x).await;
    let (status, err) = crate::push_device::account_call(
        &x.phone.enrollment,
        reqwest::Method::DELETE,
        &x.phone.enrollment.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{err}");
    let jwt = response(s, &x.phone, &n, true, None);
    assert_eq!(resolve(s, &n, &jwt).await.0, StatusCode::NOT_FOUND);
    let (status, err) = poll(s, &token, oob(&body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(
        err["error_description"],
        "The user has no push-notification authenticator."
    );
}

/// One line of a child's stdout, parsed, read off the runtime's threads.
async fn next_event(
    lines: &std::sync::Arc<
        std::sync::Mutex<std::io::Lines<std::io::BufReader<std::process::ChildStdout>>>,
    >,
) -> Value {
    let lines = lines.clone();
    tokio::task::spawn_blocking(move || {
        let line = lines
            .lock()
            .unwrap()
            .next()
            .expect("the authenticator ended")
            .unwrap();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
    })
    .await
    .unwrap()
}

/// The reference authenticator, a separate process, enrolled through My
/// Account, listening for the webhook and approving: the app's poll gets
/// the tokens.
#[tokio::test]
async fn the_reference_authenticator_approves_a_login() {
    use std::io::BufRead;
    let s = TestServer::start().await;
    #[allow(
        clippy::disallowed_methods,
        reason = "the device process reads the machine's clock"
    )]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    s.clock.set(now);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("device.json");
    let bin = crate::push_authenticator::authenticator_bin();

    // No notification goes anywhere before the device listens.
    latchkey::tenant::apply::apply_text(
        &s.state,
        &tenant(s.port, "http://127.0.0.1:9/", false, ""),
    )
    .await
    .unwrap();

    // Enrolled through My Account by the process.
    let token = s.me_token(ME_SCOPES).await;
    let started = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "push-notification"})),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let uri = started.body["barcode_uri"].as_str().unwrap().to_owned();
    let mut enroll = std::process::Command::new(&bin);
    enroll
        .arg("--state")
        .arg(&state)
        .args(["enroll", "--uri", &uri, "--name", "laptop"]);
    let out = tokio::task::spawn_blocking(move || enroll.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let method_id = started.body["id"].as_str().unwrap().to_owned();
    let v = s
        .me(
            "POST",
            &format!(
                "/authentication-methods/{}/verify",
                percent_encoding::utf8_percent_encode(
                    &method_id,
                    percent_encoding::NON_ALPHANUMERIC
                )
            ),
            Some(&token),
            Some(json!({"auth_session": started.body["auth_session"]})),
        )
        .await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    // Listening: the webhook goes to the address it bound.
    let mut child = std::process::Command::new(&bin)
        .arg("--state")
        .arg(&state)
        .args([
            "listen",
            "--addr",
            "127.0.0.1:0",
            "--webhook-secret-env",
            "HOOK",
            "--approve",
            "--json",
        ])
        .env("HOOK", WEBHOOK_SECRET)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(
        std::io::BufReader::new(child.stdout.take().unwrap()).lines(),
    ));
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);
    let listening = next_event(&lines).await;
    assert_eq!(listening["event"], "listening", "{listening}");
    let hook = format!("http://{}/", listening["addr"].as_str().unwrap());

    latchkey::tenant::apply::apply_text(
        &s.state,
        &tenant(s.port, &hook, false, crate::mfa_api::ALWAYS),
    )
    .await
    .unwrap();

    let mfa = mfa_token(&s, (ALICE, ALICE_PASSWORD)).await;
    let (status, body) = challenge(&s, &mfa, &method_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The process fetches the details, shows them, approves.
    let resolved = loop {
        let event = next_event(&lines).await;
        assert_ne!(event["event"], "error", "{event}");
        if event["event"] == "resolved" {
            break event;
        }
    };
    assert_eq!(resolved["accepted"], true, "{resolved}");
    let (status, tokens) = poll(&s, &mfa, oob(&body)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa"])
    );
}
