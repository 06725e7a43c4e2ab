//! Push-notification enrollment over real HTTP: through My Account and
//! through the MFA API, the device's enrollment with its ticket (spent
//! once, expiring, its tenant's only, raced), the device key's checks, and
//! the device's own calls (update, remove) with its account token or a JWT
//! of its key.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::mfa_api::{ALWAYS, BOB_LOGIN};
use crate::push_device::{Device, Enrollment, account_call, error_code, ticket_and_base};
use crate::support::*;
use latchkey::services::factors::push::PushDevice;

const MFA_OOB: &str = "http://auth0.com/oauth/grant-type/mfa-oob";

/// The push provider the tenant needs before push can be enabled.
const PUSH_PROVIDER: &str = "push_notifications:\n  webhook: { url: \"https://push.acme.test/hook\", secret_env: SMS_WEBHOOK_SECRET }\n";

fn with_push(text: String) -> String {
    text.replace(
        "factors: [password, totp, recovery-code]",
        "factors: [password, totp, recovery-code, push-notification]",
    ) + PUSH_PROVIDER
}

/// The acme tenant with push enabled (and the MFA API's grants).
fn push_tenant(port: u16) -> String {
    with_push(crate::mfa_api::tenant(port, ""))
}

async fn server() -> TestServer {
    TestServer::with_tenants(&[push_tenant, other_tenant]).await
}

/// Starts a push enrollment in My Account: the 202's body.
async fn start(s: &TestServer, token: &str) -> Value {
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(token),
            Some(json!({"type": "push-notification"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    r.body
}

async fn verify(s: &TestServer, token: &str, started: &Value) -> MeResponse {
    let id = started["id"].as_str().unwrap();
    s.me(
        "POST",
        &format!(
            "/authentication-methods/{}/verify",
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        ),
        Some(token),
        Some(json!({"auth_session": started["auth_session"]})),
    )
    .await
}

/// A device enrolled and confirmed through My Account: the device, what it
/// was told, the method ID.
async fn confirmed(s: &TestServer, token: &str, name: &str) -> (Device, Enrollment, String) {
    let started = start(s, token).await;
    let device = Device::new(name);
    let e = device
        .enroll(started["barcode_uri"].as_str().unwrap())
        .await;
    let v = verify(s, token, &started).await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    (device, e, started["id"].as_str().unwrap().to_string())
}

async fn events(s: &TestServer) -> Vec<latchkey::store::AuditEvent> {
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    s.state.store.audit_events(&tenant.id, 50).await.unwrap()
}

async fn stored_device(s: &TestServer, method_id: &str) -> Option<PushDevice> {
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let m = s
        .state
        .store
        .method_by_id(&tenant.id, method_id)
        .await
        .unwrap()?;
    Some(PushDevice::of_method(&m).unwrap())
}

#[tokio::test]
async fn a_device_enrolls_through_my_account() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    let started = start(&s, &token).await;
    let mut keys: Vec<&String> = started.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["auth_session", "barcode_uri", "id"], "{started}");
    let id = started["id"].as_str().unwrap();
    assert!(
        id.starts_with("push-notification|dev_") && id.len() == 38,
        "{id}"
    );
    let uri = started["barcode_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/acme:alice%40example.com?enrollment_tx_id="),
        "{uri}"
    );
    let (ticket, base) = ticket_and_base(uri);
    assert_eq!(base, format!("{}appliance-mfa", s.issuer));
    assert_eq!(ticket.len(), 43);
    for part in [
        "&algorithm=SHA1",
        "&digits=6",
        "&period=30",
        "&issuer=acme",
        "&secret=",
    ] {
        assert!(uri.contains(part), "{uri}");
    }

    // Before the device enrolls, the confirmation is refused and the
    // enrollment stays usable, whatever the number of tries.
    for _ in 0..6 {
        let v = verify(&s, &token, &started).await;
        assert_eq!(v.status, StatusCode::BAD_REQUEST, "{}", v.body);
        assert!(
            v.body["detail"]
                .as_str()
                .unwrap()
                .contains("not enrolled yet")
        );
    }

    // Guardian.Android's key: n and e with a leading zero byte.
    let mut device = Device::new("Pixel");
    device.signed_integers = true;
    let jwk = device.public_jwk();
    let (status, body) = device.enroll_with(uri, &device.enroll_body()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dai = &id["push-notification|".len()..];
    assert_eq!(body["id"], dai);
    assert_eq!(body["url"], base);
    assert_eq!(body["issuer"], "acme");
    assert_eq!(body["user_id"], "auth0|alice");
    assert_eq!(body["token"].as_str().unwrap().len(), 43);
    assert_eq!(
        body["totp"],
        json!({"secret": reqwest::Url::parse(uri).unwrap().query_pairs()
                   .find(|(k, _)| k == "secret").unwrap().1,
               "algorithm": "sha1", "digits": 6, "period": 30})
    );
    // The ticket is spent: a second device is refused, as is a replay.
    let other = Device::new("Other");
    let (status, again) = other.enroll_with(uri, &other.enroll_body()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{again}");
    assert_eq!(
        error_code(status, &again),
        "enrollment_transaction_not_found"
    );

    let v = verify(&s, &token, &started).await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    assert_eq!(v.body["id"], id);
    assert_eq!(v.body["type"], "push-notification");
    assert_eq!(v.body["name"], "Pixel");
    assert_eq!(v.body["confirmed"], true);
    // Spent too.
    let v = verify(&s, &token, &started).await;
    assert_eq!(v.status, StatusCode::BAD_REQUEST);

    // Listed as every method; renamed as every method.
    let list = s
        .me("GET", "/authentication-methods", Some(&token), None)
        .await;
    let push: Vec<&Value> = list.body["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "push-notification")
        .collect();
    assert_eq!(push.len(), 1, "{}", list.body);
    assert_eq!(push[0]["id"], id);
    let mut listed: Vec<&String> = push[0].as_object().unwrap().keys().collect();
    listed.sort();
    assert_eq!(
        listed,
        ["confirmed", "created_at", "id", "name", "type", "usage"],
        "{}",
        push[0]
    );
    assert_eq!(push[0]["usage"], json!(["secondary"]));
    let path = format!(
        "/authentication-methods/{}",
        percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
    );
    let r = s
        .me(
            "PATCH",
            &path,
            Some(&token),
            Some(json!({"name": "My phone"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "My phone");

    // Stored: the key normalised (no leading zeros), the secrets sealed or
    // digested.
    let stored = stored_device(&s, id).await.unwrap();
    assert_eq!(stored.device_account_id, dai);
    assert_eq!(stored.identifier, "device-Pixel");
    assert_ne!(stored.public_key["n"], jwk["n"]);
    assert_eq!(stored.public_key["e"], "AQAB");
    let plain_n = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        stored.public_key["n"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(plain_n.len(), 256);
    let dump = s.database_dump().await;
    let contains = |needle: &str| dump.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!contains(body["token"].as_str().unwrap()));
    assert!(!contains("fcm-token-Pixel"));
    assert!(!contains(&ticket));
    assert!(!contains(body["totp"]["secret"].as_str().unwrap()));

    let kinds: Vec<String> = events(&s).await.into_iter().map(|e| e.event_type).collect();
    assert!(
        kinds.contains(&"gd_enrollment_complete".to_string()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn tickets_expire_and_belong_to_their_tenant() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    let started = start(&s, &token).await;
    let uri = started["barcode_uri"].as_str().unwrap();
    let (ticket, base) = ticket_and_base(uri);
    let device = Device::new("Phone");
    let enroll = |base: String, auth: String, body: Value| async move {
        let res = crate::push_device::client()
            .post(format!("{base}/api/enroll"))
            .header("authorization", auth)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json::<Value>().await.unwrap())
    };
    let ticket_header = format!("Ticket id=\"{ticket}\"");

    // Another tenant's host knows no such ticket.
    let other_base = base.replace("localhost", "127.0.0.1");
    let (status, body) = enroll(other_base, ticket_header.clone(), device.enroll_body()).await;
    assert_eq!(
        error_code(status, &body),
        "enrollment_transaction_not_found"
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
    // An unknown ticket, a malformed header.
    let (status, body) = enroll(
        base.clone(),
        "Ticket id=\"nope\"".into(),
        device.enroll_body(),
    )
    .await;
    assert_eq!(
        (status, error_code(status, &body).as_str()),
        (StatusCode::NOT_FOUND, "enrollment_transaction_not_found")
    );
    for bad in [
        format!("Bearer {ticket}"),
        "Ticket".into(),
        "Ticket nope=\"x\"".into(),
    ] {
        let (status, body) = enroll(base.clone(), bad.clone(), device.enroll_body()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(error_code(status, &body), "invalid_bearer_format");
    }

    // Bad bodies are refused and spend nothing.
    let mut small = device.enroll_body();
    let n1024 = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        [0xC5u8; 128],
    );
    small["public_key"]["n"] = json!(n1024);
    let mut bad_e = device.enroll_body();
    bad_e["public_key"]["e"] = json!("Ag");
    let mut none_alg = device.enroll_body();
    none_alg["public_key"]["alg"] = json!("none");
    let mut long_name = device.enroll_body();
    long_name["name"] = json!("x".repeat(257));
    let mut no_key = device.enroll_body();
    no_key.as_object_mut().unwrap().remove("public_key");
    for body in [small, bad_e, none_alg, long_name, no_key, json!([1, 2])] {
        let (status, answer) = enroll(base.clone(), ticket_header.clone(), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} {answer}");
        assert_eq!(error_code(status, &answer), "invalid_body");
    }
    let res = crate::push_device::client()
        .post(format!("{base}/api/enroll"))
        .header("authorization", &ticket_header)
        .header("content-type", "text/plain")
        .body(device.enroll_body().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut huge = device.enroll_body();
    huge["padding"] = json!("x".repeat(20_000));
    let (status, body) = enroll(base.clone(), ticket_header.clone(), huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    error_code(status, &body);

    // Five minutes on, the ticket is gone.
    s.clock.advance(301);
    let (status, body) = enroll(base.clone(), ticket_header.clone(), device.enroll_body()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // A fresh one, within its time, enrolls.
    s.clock.advance(-301);
    let (status, body) = enroll(base, ticket_header, device.enroll_body()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn two_devices_racing_one_ticket_one_wins() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    let started = start(&s, &token).await;
    let uri = started["barcode_uri"].as_str().unwrap().to_string();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let uri = uri.clone();
            tokio::spawn(async move {
                let d = Device::new(&format!("racer-{i}"));
                d.enroll_with(&uri, &d.enroll_body()).await
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == StatusCode::OK {
            won.push(body);
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    let v = verify(&s, &token, &started).await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    let stored = stored_device(&s, started["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(v.body["name"], stored.device_name);
}

#[tokio::test]
async fn a_device_updates_and_removes_itself() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    let (device, e, method_id) = confirmed(&s, &token, "iPhone").await;
    let (other_device, other, _) = confirmed(&s, &token, "iPad").await;
    let now = s.clock_now();

    // With its account token.
    let (status, body) = account_call(
        &e,
        Method::PATCH,
        &e.token,
        Some(&json!({"name": "Work iPhone", "push_credentials": {"service": "APNS", "token": "apns-2"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"id": e.id, "identifier": "device-iPhone", "name": "Work iPhone",
               "push_credentials": {"service": "APNS", "token": "apns-2"}})
    );
    // With a JWT of its key, as the SDKs make it.
    let jwt = device.account_jwt(&e, now);
    let (status, body) = account_call(
        &e,
        Method::PATCH,
        &jwt,
        Some(&json!({"identifier": "device-2"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["identifier"], "device-2");
    assert_eq!(body["name"], "Work iPhone");
    let stored = stored_device(&s, &method_id).await.unwrap();
    assert_eq!(stored.push_service.map(|p| p.as_str()), Some("APNS"));
    // A bad body changes nothing.
    let (status, body) = account_call(&e, Method::PATCH, &e.token, Some(&json!({"name": 7}))).await;
    assert_eq!(error_code(status, &body), "invalid_body");
    assert_eq!(stored_device(&s, &method_id).await.unwrap(), stored);

    // Refused: another device's token or JWT, a JWT for another audience,
    // expired, living too long, issued in the future, unsigned.
    let aud = format!("{}/api/device-accounts", e.url);
    let claims = |iat: i64, exp: i64, aud: &str| json!({"iss": e.id, "sub": e.user_id, "iat": iat, "exp": exp, "aud": aud});
    let rs256 = json!({"alg": "RS256", "typ": "JWT"});
    let unsigned = {
        let enc = |v: &Value| {
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                v.to_string(),
            )
        };
        format!(
            "{}.{}.",
            enc(&json!({"alg": "none"})),
            enc(&claims(now, now + 60, &aud))
        )
    };
    let refused = [
        other.token.clone(),
        other_device.account_jwt(&e, now),
        other_device.jws(&rs256, &claims(now, now + 60, &aud)),
        device.jws(
            &rs256,
            &claims(now, now + 60, &format!("{}/api/resolve-transaction", e.url)),
        ),
        device.jws(&rs256, &claims(now - 7300, now - 100, &aud)),
        device.jws(&rs256, &claims(now, now + 3 * 3600, &aud)),
        device.jws(&rs256, &claims(now + 600, now + 1200, &aud)),
        device.jws(&json!({"alg": "PS256"}), &claims(now, now + 60, &aud)),
        device.jws(
            &rs256,
            &json!({"iss": e.id, "sub": "auth0|bob", "iat": now, "exp": now + 60, "aud": aud}),
        ),
        device.jws(
            &rs256,
            &json!({"iss": other.id, "sub": e.user_id, "iat": now, "exp": now + 60, "aud": aud}),
        ),
        unsigned,
        "garbage".into(),
    ];
    for bearer in &refused {
        let (status, body) =
            account_call(&e, Method::PATCH, bearer, Some(&json!({"name": "x"}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bearer}: {body}");
        assert_eq!(error_code(status, &body), "invalid_token");
    }
    // The token of another tenant's host finds no such device.
    let elsewhere = Enrollment {
        url: e.url.replace("localhost", "127.0.0.1"),
        ..e.clone()
    };
    let (status, body) = account_call(&elsewhere, Method::DELETE, &e.token, None).await;
    assert_eq!(error_code(status, &body), "device_account_not_found");
    let nobody = Enrollment {
        id: "dev_0000000000000000".into(),
        ..e.clone()
    };
    let (status, body) = account_call(&nobody, Method::DELETE, &e.token, None).await;
    assert_eq!(
        (status, error_code(status, &body).as_str()),
        (StatusCode::NOT_FOUND, "device_account_not_found")
    );
    let (status, body) = crate::push_device::client()
        .delete(format!("{}/api/device-accounts/{}", e.url, e.id))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    let body: Value = body.json().await.unwrap();
    assert_eq!(error_code(status, &body), "invalid_bearer_format");
    assert_eq!(stored_device(&s, &method_id).await.unwrap(), stored);

    // Removed with a JWT alone, as Guardian.Android does: the method goes.
    let (status, _) = account_call(&e, Method::DELETE, &jwt, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(stored_device(&s, &method_id).await.is_none());
    let list = s
        .me("GET", "/authentication-methods", Some(&token), None)
        .await;
    assert!(!list.body.to_string().contains(&method_id));
    let (status, body) = account_call(&e, Method::PATCH, &e.token, Some(&json!({}))).await;
    assert_eq!(error_code(status, &body), "device_account_not_found");
    // The other device is untouched.
    let (status, _) = account_call(&other, Method::PATCH, &other.token, Some(&json!({}))).await;
    assert_eq!(status, StatusCode::OK);

    let kinds: Vec<String> = events(&s).await.into_iter().map(|e| e.event_type).collect();
    for k in ["gd_update_device_account", "gd_unenroll"] {
        assert!(kinds.contains(&k.to_string()), "{kinds:?}");
    }
}

#[tokio::test]
async fn deleting_the_method_in_my_account_removes_the_device() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    let (device, e, method_id) = confirmed(&s, &token, "Phone").await;
    let r = s
        .me(
            "DELETE",
            &format!(
                "/authentication-methods/{}",
                percent_encoding::utf8_percent_encode(
                    &method_id,
                    percent_encoding::NON_ALPHANUMERIC
                )
            ),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    for bearer in [e.token.clone(), device.account_jwt(&e, s.clock_now())] {
        let (status, body) = account_call(&e, Method::PATCH, &bearer, Some(&json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(error_code(status, &body), "device_account_not_found");
    }
}

async fn associate(s: &TestServer, mfa_token: &str, body: Value) -> (StatusCode, Value) {
    let res = s
        .http()
        .post(s.url("/mfa/associate"))
        .bearer_auth(mfa_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn a_push_device_through_mfa_associate() {
    fn tenant(port: u16) -> String {
        with_push(crate::mfa_api::tenant(port, ALWAYS))
    }
    let s = TestServer::with_tenants(&[tenant, other_tenant]).await;
    let login = [
        (
            "grant_type",
            "http://auth0.com/oauth/grant-type/password-realm",
        ),
        ("client_id", "spa"),
        ("username", BOB_LOGIN.0),
        ("password", BOB_LOGIN.1),
        ("realm", "Partners"),
        ("scope", "openid"),
    ];
    let (status, body) = s.token(&login).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let mfa_token = body["mfa_token"].as_str().unwrap().to_string();

    let (status, body) = associate(
        &s,
        &mfa_token,
        json!({"client_id": "spa", "authenticator_types": ["oob"], "oob_channels": ["auth0"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["authenticator_type"], "oob");
    assert_eq!(body["oob_channel"], "auth0");
    assert_eq!(body["recovery_codes"].as_array().unwrap().len(), 1);
    let oob_code = body["oob_code"].as_str().unwrap().to_string();
    let uri = body["barcode_uri"].as_str().unwrap().to_string();
    assert!(uri.contains("enrollment_tx_id="), "{uri}");

    let poll = || {
        let (s, t, c) = (&s, mfa_token.clone(), oob_code.clone());
        async move {
            s.token(&[
                ("grant_type", MFA_OOB),
                ("client_id", "spa"),
                ("mfa_token", &t),
                ("oob_code", &c),
            ])
            .await
        }
    };
    // Pending until the device enrolls; polling spends nothing, and
    // polling again within 5 seconds is told to slow down.
    for _ in 0..3 {
        let (status, body) = poll().await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "authorization_pending");
        let (status, body) = poll().await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "slow_down");
        s.clock.advance(5);
    }
    let device = Device::new("Android");
    let e = device.enroll(&uri).await;
    assert_eq!(e.user_id, "auth0|bob");
    assert_eq!(e.totp_secret.len(), 32);
    let (status, body) = poll().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa"])
    );
    let (status, _) = poll().await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Bob's push method is confirmed and his device may call.
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let methods = s
        .state
        .store
        .methods(&tenant.id, "auth0|bob")
        .await
        .unwrap();
    let kinds: Vec<&str> = methods.iter().map(|m| m.method_type.as_str()).collect();
    assert!(kinds.contains(&"push-notification"), "{kinds:?}");
    assert!(kinds.contains(&"recovery-code"), "{kinds:?}");
    let (status, _) =
        account_call(&e, Method::PATCH, &e.token, Some(&json!({"name": "Bob's"}))).await;
    assert_eq!(status, StatusCode::OK);
}
