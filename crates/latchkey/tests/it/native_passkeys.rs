//! Native passkey sign-up and login: `/passkey/register`,
//! `/passkey/challenge` and the webauthn grant.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::authenticator::{SoftAuthenticator, tamper_client_data};
use crate::support::*;

const WEBAUTHN: &str = "urn:okta:params:oauth:grant-type:webauthn";

async fn server() -> TestServer {
    let s = TestServer::start().await;
    let text = acme(s.port)
        .replace("factors: [password, totp, recovery-code]", "factors: [password, passkey, totp, recovery-code]")
        .replace(
            "\"http://auth0.com/oauth/grant-type/password-realm\"] }",
            "\"http://auth0.com/oauth/grant-type/password-realm\", \"urn:okta:params:oauth:grant-type:webauthn\"] }",
        );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    s
}

async fn post(s: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    let res = s.http().post(s.url(path)).json(&body).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

async fn webauthn_grant(s: &TestServer, session: &Value, response: &Value) -> (StatusCode, Value) {
    post(
        s,
        "/oauth/token",
        json!({"grant_type": WEBAUTHN, "client_id": "spa", "auth_session": session, "authn_response": response,
               "scope": format!("openid offline_access {ME_SCOPES}"), "audience": s.my_account_audience()}),
    )
    .await
}

async fn sign_up(s: &TestServer, authenticator: &SoftAuthenticator, email: &str) -> Value {
    let (status, body) = post(
        s,
        "/passkey/register",
        json!({"client_id": "spa", "user_profile": {"email": email, "name": "Carol"}, "user_metadata": {"plan": "free"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let options = &body["authn_params_public_key"];
    assert_eq!(
        options["user"]["name"],
        latchkey::services::email_address::normalize(email).unwrap()
    );
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    let cred = authenticator.register(&s.base, options).await.unwrap();
    let (status, tokens) = webauthn_grant(s, &body["auth_session"], &cred).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

async fn log_in(s: &TestServer, authenticator: &SoftAuthenticator) -> (StatusCode, Value) {
    let (status, body) = post(s, "/passkey/challenge", json!({"client_id": "spa"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let options = &body["authn_params_public_key"];
    assert!(
        options["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "discoverable"
    );
    assert_eq!(options["rpId"], "localhost");
    let assertion = authenticator.authenticate(&s.base, options).await.unwrap();
    webauthn_grant(s, &body["auth_session"], &assertion).await
}

#[tokio::test]
async fn sign_up_then_log_in_with_the_passkey() {
    let s = server().await;
    let authenticator = SoftAuthenticator::new();
    let tokens = sign_up(&s, &authenticator, "carol@example.com").await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    let sub = id["sub"].as_str().unwrap().to_string();
    assert!(sub.starts_with("auth0|"));
    assert!(tokens["refresh_token"].is_string());
    // The new user's only method is the passkey.
    let at = tokens["access_token"].as_str().unwrap();
    let list = s.me("GET", "/authentication-methods", Some(at), None).await;
    let methods = list.body["authentication_methods"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(methods.len(), 1, "{}", list.body);
    assert_eq!(methods[0]["type"], "passkey");
    assert_eq!(methods[0]["identity_user_id"], sub.as_str());
    // The user exists with the profile given at sign-up.
    let (_, info) = userinfo(&s, at).await;
    assert_eq!(info["sub"], sub.as_str());

    // Log in: the same user, twice (the counter moves on).
    for _ in 0..2 {
        let (status, tokens) = log_in(&s, &authenticator).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(
            claims(tokens["id_token"].as_str().unwrap())["sub"],
            sub.as_str()
        );
    }
    let list = s.me("GET", "/authentication-methods", Some(at), None).await;
    assert!(list.body["authentication_methods"][0]["last_auth_at"].is_string());

    // A cloned authenticator (its counter going backwards) is refused.
    authenticator.roll_back_counter();
    let (status, body) = log_in(&s, &authenticator).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_passkey_enrolled_through_my_account_logs_in_natively() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "passkey"})),
        )
        .await;
    let authenticator = SoftAuthenticator::new();
    let cred = authenticator
        .register(&s.base, &r.body["authn_params_public_key"])
        .await
        .unwrap();
    let v = s
        .me(
            "POST",
            &format!("{}/verify", r.header("location").unwrap()),
            Some(&token),
            Some(json!({"auth_session": r.body["auth_session"], "authn_response": cred})),
        )
        .await;
    assert_eq!(v.status, StatusCode::CREATED);
    let (status, tokens) = log_in(&s, &authenticator).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["sub"],
        "auth0|alice"
    );
}

#[tokio::test]
async fn challenges_are_single_use_and_checked() {
    let s = server().await;
    let authenticator = SoftAuthenticator::new();
    sign_up(&s, &authenticator, "dave@example.com").await;

    let (_, body) = post(&s, "/passkey/challenge", json!({"client_id": "spa"})).await;
    let assertion = authenticator
        .authenticate(&s.base, &body["authn_params_public_key"])
        .await
        .unwrap();
    assert_eq!(
        webauthn_grant(&s, &body["auth_session"], &assertion)
            .await
            .0,
        StatusCode::OK
    );
    let (status, replay) = webauthn_grant(&s, &body["auth_session"], &assertion).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(replay["error"], "invalid_grant");

    // An assertion for another challenge.
    let (_, first) = post(&s, "/passkey/challenge", json!({"client_id": "spa"})).await;
    let (_, second) = post(&s, "/passkey/challenge", json!({"client_id": "spa"})).await;
    let assertion = authenticator
        .authenticate(&s.base, &first["authn_params_public_key"])
        .await
        .unwrap();
    assert_eq!(
        webauthn_grant(&s, &second["auth_session"], &assertion)
            .await
            .1["error"],
        "invalid_grant"
    );

    // A tampered origin.
    let (_, body) = post(&s, "/passkey/challenge", json!({"client_id": "spa"})).await;
    let mut assertion = authenticator
        .authenticate(&s.base, &body["authn_params_public_key"])
        .await
        .unwrap();
    tamper_client_data(&mut assertion, |c| {
        c["origin"] = json!("https://evil.example")
    });
    assert_eq!(
        webauthn_grant(&s, &body["auth_session"], &assertion)
            .await
            .1["error"],
        "invalid_grant"
    );

    // A passkey this tenant never registered.
    let stranger = SoftAuthenticator::new();
    let (_, body) = post(
        &s,
        "/passkey/register",
        json!({"client_id": "spa", "user_profile": {"email": "eve@example.com"}}),
    )
    .await;
    stranger
        .register(&s.base, &body["authn_params_public_key"])
        .await
        .unwrap(); // never sent to the server
    let (_, body) = post(&s, "/passkey/challenge", json!({"client_id": "spa"})).await;
    let assertion = stranger
        .authenticate(&s.base, &body["authn_params_public_key"])
        .await
        .unwrap();
    assert_eq!(
        webauthn_grant(&s, &body["auth_session"], &assertion)
            .await
            .1["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn the_passkey_api_checks_clients_profiles_and_the_tenant() {
    let s = server().await;
    for (body, error) in [
        (
            json!({"client_id": "spa", "user_profile": {"email": ALICE}}),
            "invalid_request",
        ),
        (
            json!({"client_id": "spa", "user_profile": {"email": "x@example.com", "shoe_size": "44"}}),
            "invalid_request",
        ),
        (
            json!({"client_id": "spa", "user_profile": {"name": "No Email"}}),
            "invalid_request",
        ),
        (json!({"client_id": "spa"}), "invalid_request"),
        (
            json!({"client_id": "spa", "user_profile": {"email": "x@example.com"}, "realm": "Nope"}),
            "invalid_request",
        ),
        (
            json!({"client_id": "nogrants", "user_profile": {"email": "x@example.com"}}),
            "unauthorized_client",
        ),
    ] {
        let (status, answer) = post(&s, "/passkey/register", body.clone()).await;
        assert!(status.is_client_error(), "{body}");
        assert_eq!(answer["error"], error, "{body}: {answer}");
    }
    let (status, answer) = post(&s, "/passkey/challenge", json!({"client_id": "nogrants"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["error"], "unauthorized_client");
    let (status, _) = post(&s, "/oauth/token", json!({"grant_type": WEBAUTHN, "client_id": "spa", "auth_session": "nope", "authn_response": {}})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Without `passkey` among the tenant's factors, the Passkey API is not there.
    latchkey::tenant::apply::apply_text(&s.state, &acme(s.port).replace(
        "\"http://auth0.com/oauth/grant-type/password-realm\"] }",
        "\"http://auth0.com/oauth/grant-type/password-realm\", \"urn:okta:params:oauth:grant-type:webauthn\"] }",
    )).await.unwrap();
    let (status, _) = post(&s, "/passkey/challenge", json!({"client_id": "spa"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_hosted_login_page_signs_in_with_a_passkey() {
    let s = server().await;
    let authenticator = SoftAuthenticator::new();
    let signed_up = sign_up(&s, &authenticator, "frank@example.com").await;
    let sub = claims(signed_up["id_token"].as_str().unwrap())["sub"].clone();

    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let html = browser
        .get(req.url(&s))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"passkey-login\""));
    assert!(html.contains("autocomplete=\"username webauthn\""));
    assert!(html.contains("/login/passkey.js"));
    let tx = hidden_input(&html, "tx").unwrap();
    let js = browser
        .get(s.url("/login/passkey.js"))
        .send()
        .await
        .unwrap();
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/javascript")
    );

    // The page's challenge is bound to its transaction cookie.
    let res = s
        .http()
        .post(s.url("/login/passkey/challenge"))
        .form(&[("tx", tx.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = browser
        .post(s.url("/login/passkey/challenge"))
        .form(&[("tx", tx.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let ch: Value = res.json().await.unwrap();
    let assertion = authenticator
        .authenticate(&s.base, &ch["options"])
        .await
        .unwrap();

    // A tampered assertion re-renders the page with an error.
    let mut bad = assertion.clone();
    tamper_client_data(&mut bad, |c| c["challenge"] = json!("AAAA"));
    let res = browser
        .post(s.url("/login/passkey"))
        .form(&[
            ("tx", tx.as_str()),
            ("auth_session", ch["auth_session"].as_str().unwrap()),
            ("credential", &bad.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("could not be used"));

    let res = browser
        .post(s.url("/login/passkey/challenge"))
        .form(&[("tx", tx.as_str())])
        .send()
        .await
        .unwrap();
    let ch: Value = res.json().await.unwrap();
    let assertion = authenticator
        .authenticate(&s.base, &ch["options"])
        .await
        .unwrap();
    let res = browser
        .post(s.url("/login/passkey"))
        .form(&[
            ("tx", tx.as_str()),
            ("auth_session", ch["auth_session"].as_str().unwrap()),
            ("credential", &assertion.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    let code = query_param(res.headers()["location"].to_str().unwrap(), "code").unwrap();
    let (status, tokens) = exchange(&s, &req, &code).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["sub"], sub);
    // The page's passkey login is logged as a login (`s`), once, for the
    // page's client.
    let events = s
        .state
        .store
        .audit_events(&acme_id(&s).await, 100)
        .await
        .unwrap();
    let page_logins: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "s" && e.details["description"] == "Success Login")
        .filter(|e| e.user_id.as_ref().map(|u| json!(u)) == Some(sub.clone()))
        .collect();
    assert_eq!(page_logins.len(), 1, "{events:?}");
    let last = page_logins[0];
    assert_eq!(last.client_id.as_deref(), Some("spa"));
    assert_eq!(last.details["client_name"], "Demo SPA");
    assert_eq!(last.details["user_name"], "frank@example.com");
    // And the session now gives single sign-on.
    let res = browser
        .get(AuthRequest::new("openid").param("prompt", "none").url(&s))
        .send()
        .await
        .unwrap();
    assert!(query_param(res.headers()["location"].to_str().unwrap(), "code").is_some());
}

#[tokio::test]
async fn no_passkey_button_without_passkeys() {
    let s = TestServer::start().await;
    let html = s
        .browser()
        .get(AuthRequest::new("openid").url(&s))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("passkey-login"));
    assert!(html.contains("autocomplete=\"username\""));
}

#[tokio::test]
async fn after_a_password_login_the_page_offers_to_add_a_passkey() {
    let s = TestServer::start().await;
    let text = acme(s.port)
        .replace(
            "factors: [password, totp, recovery-code]",
            "factors: [password, passkey, totp, recovery-code]",
        )
        .replace(
            "tenant: { name: acme,",
            "tenant: { passkeys: { progressive_enrollment: true }, name: acme,",
        );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();

    // "Not now": on to the app.
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let res = login_through_page(&s, &browser, &req, ALICE, ALICE_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"passkey-create\""), "{html}");
    let tx = hidden_input(&html, "tx").unwrap();
    let res = s
        .http()
        .post(s.url("/login/continue"))
        .form(&[("tx", tx.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "only the browser that signed in"
    );
    let res = browser
        .post(s.url("/login/continue"))
        .form(&[("tx", tx.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let code = query_param(res.headers()["location"].to_str().unwrap(), "code").unwrap();
    assert_eq!(exchange(&s, &req, &code).await.0, StatusCode::OK);

    // "Create a passkey": then on to the app, and the passkey logs in.
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let html = login_through_page(&s, &browser, &req, ALICE, ALICE_PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    let tx = hidden_input(&html, "tx").unwrap();
    let ch: Value = browser
        .post(s.url("/login/passkey/create/challenge"))
        .form(&[("tx", tx.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let authenticator = SoftAuthenticator::new();
    let cred = authenticator
        .register(&s.base, &ch["options"])
        .await
        .unwrap();
    let res = browser
        .post(s.url("/login/passkey/create"))
        .form(&[
            ("tx", tx.as_str()),
            ("auth_session", ch["auth_session"].as_str().unwrap()),
            ("credential", &cred.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    let token = s.me_token(ME_SCOPES).await;
    let list = s
        .me(
            "GET",
            "/authentication-methods?type=passkey",
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

    // With a passkey, the page asks no more.
    let res = login_through_page(
        &s,
        &s.browser(),
        &AuthRequest::new("openid"),
        ALICE,
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
}

async fn acme_id(s: &TestServer) -> String {
    s.state
        .store
        .tenant_by_name("acme")
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn acme_tenant(s: &TestServer) -> latchkey::tenant::Tenant {
    let row = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    latchkey::tenant::Tenant::from_row(&row).unwrap()
}

/// The tenant file of [`server`] as text, to extend with users.
fn passkey_file(port: u16) -> String {
    acme(port)
        .replace("factors: [password, totp, recovery-code]", "factors: [password, passkey, totp, recovery-code]")
        .replace(
            "\"http://auth0.com/oauth/grant-type/password-realm\"] }",
            "\"http://auth0.com/oauth/grant-type/password-realm\", \"urn:okta:params:oauth:grant-type:webauthn\"] }",
        )
}

async fn password_grant(s: &TestServer, username: &str, password: &str) -> (StatusCode, Value) {
    s.token(&[
        ("grant_type", "password"),
        ("client_id", "spa"),
        ("username", username),
        ("password", password),
        ("scope", "openid email"),
    ])
    .await
}

#[tokio::test]
async fn provisioning_never_takes_over_a_self_registered_unverified_account() {
    let s = server().await;
    // Someone signs up with an address that is not theirs (nobody verified it).
    let attacker = SoftAuthenticator::new();
    let tokens = sign_up(&s, &attacker, "victim@example.com").await;
    let squatter = claims(tokens["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string();

    // The operator then provisions that address, matched by email: refused,
    // naming the account in the way.
    let by_email = format!(
        "{}  - {{ email: victim@example.com, password: \"Victim-has-a-long-password\", connection: Username-Password-Authentication, email_verified: true }}\n",
        passkey_file(s.port)
    );
    let err = latchkey::tenant::apply::apply_text(&s.state, &by_email)
        .await
        .unwrap_err();
    assert!(
        err.contains(&squatter) && err.contains("signed up") && err.contains("victim@example.com"),
        "{err}"
    );
    // With a user_id of its own, or with the account's very user_id: refused too.
    for id in ["auth0|victim", squatter.as_str()] {
        let with_id = by_email.replace(
            "email_verified: true }",
            &format!("email_verified: true, user_id: \"{id}\" }}"),
        );
        let err = latchkey::tenant::apply::apply_text(&s.state, &with_id)
            .await
            .unwrap_err();
        assert!(
            err.contains(&squatter) && err.contains("signed up"),
            "{id}: {err}"
        );
    }

    // Nothing was adopted: the account is as it signed up, unverified and
    // without the operator's password; the attacker's passkey reaches only it.
    let user = s
        .state
        .store
        .user_by_id(&acme_id(&s).await, &squatter)
        .await
        .unwrap()
        .unwrap();
    assert!(!user.email_verified && user.password_hash.is_none());
    let (status, again) = log_in(&s, &attacker).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let id = claims(again["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], squatter.as_str());
    let (status, _) = password_grant(&s, "victim@example.com", "Victim-has-a-long-password").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An unverified address is never a factor: the squatter gets no email
    // second factor out of it.
    let factors = latchkey::services::mfa::factors_of(&s.state, &acme_tenant(&s).await, &squatter)
        .await
        .unwrap();
    assert!(
        factors
            .iter()
            .all(|m| m.method_type == latchkey::tenant::FactorType::Passkey),
        "{factors:?}"
    );

    // A provisioned account is never taken by a sign-up either.
    let (status, body) = post(
        &s,
        "/passkey/register",
        json!({"client_id": "spa", "user_profile": {"email": ALICE}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn disable_signup_holds_on_the_passkey_api() {
    let s = server().await;
    let closed = passkey_file(s.port).replace(
        "password_policy: { min_length: 8 }",
        "password_policy: { min_length: 8 }\n    disable_signup: true",
    );
    // A ceremony started while sign-up was open cannot finish once it closed.
    let authenticator = SoftAuthenticator::new();
    let (status, started) = post(
        &s,
        "/passkey/register",
        json!({"client_id": "spa", "user_profile": {"email": "early@example.com"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    latchkey::tenant::apply::apply_text(&s.state, &closed)
        .await
        .unwrap();
    s.state.tenants.invalidate();
    let cred = authenticator
        .register(&s.base, &started["authn_params_public_key"])
        .await
        .unwrap();
    let (status, body) = webauthn_grant(&s, &started["auth_session"], &cred).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "access_denied");
    assert_eq!(body["error_description"], "Public signup is disabled");

    for body in [
        json!({"client_id": "spa", "user_profile": {"email": "new@example.com"}}),
        json!({"client_id": "spa", "user_profile": {"email": "new@example.com"}, "realm": "Username-Password-Authentication"}),
    ] {
        let (status, answer) = post(&s, "/passkey/register", body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {answer}");
        assert_eq!(answer["error"], "access_denied");
        assert_eq!(answer["error_description"], "Public signup is disabled");
    }
    let tenant = acme_id(&s).await;
    for email in ["early@example.com", "new@example.com"] {
        let found = s
            .state
            .store
            .user_by_email(&tenant, "Username-Password-Authentication", email)
            .await
            .unwrap();
        assert!(found.is_none(), "{email}");
    }
    // Another connection of the tenant still takes sign-ups.
    let (status, answer) = post(
        &s,
        "/passkey/register",
        json!({"client_id": "spa", "user_profile": {"email": "new@example.com"}, "realm": "Partners"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn look_alike_emails_are_the_same_user() {
    let s = server().await;
    // Each spelling of alice@example.com is refused as the exact one is.
    for email in [
        ALICE,
        " alice@example.com",
        "alice@example.com ",
        "alice@example.com.",
        "ALICE@Example.COM",
        "\u{ff21}\u{ff2c}\u{ff29}\u{ff23}\u{ff25}@example.com",
        "alice@\u{ff45}xample.com",
    ] {
        let (status, body) = post(
            &s,
            "/passkey/register",
            json!({"client_id": "spa", "user_profile": {"email": email}}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{email:?}: {body}");
        assert_eq!(
            body["error_description"], "The user already exists.",
            "{email:?}"
        );
    }
    // Invisible and direction-changing characters are not part of an address.
    for email in [
        "alice\u{200b}@example.com",
        "\u{feff}alice@example.com",
        "alice@example.com\u{202e}",
        "al\u{2066}ice@example.com",
        "alice\u{00ad}@example.com",
        "alice@@example.com",
        "alice@example.com..",
    ] {
        let (status, body) = post(
            &s,
            "/passkey/register",
            json!({"client_id": "spa", "user_profile": {"email": email}}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{email:?}: {body}");
        assert_eq!(body["error"], "invalid_request");
        assert_ne!(
            body["error_description"], "The user already exists.",
            "{email:?}"
        );
    }
    // A new address is stored in its normal form, found however it is spelled.
    let authenticator = SoftAuthenticator::new();
    let tokens = sign_up(&s, &authenticator, " \u{ff43}arol@Example.com. ").await;
    let (_, info) = userinfo(&s, tokens["access_token"].as_str().unwrap()).await;
    let tenant = acme_id(&s).await;
    let stored = s
        .state
        .store
        .user_by_id(&tenant, info["sub"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.email, "carol@Example.com");
    let (status, _) = post(
        &s,
        "/passkey/register",
        json!({"client_id": "spa", "user_profile": {"email": "CAROL@example.com"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Logging in by email takes the same spellings.
    for username in [
        " alice@example.com ",
        "ALICE@EXAMPLE.COM.",
        "\u{ff41}lice@example.com",
    ] {
        let (status, body) = password_grant(&s, username, ALICE_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{username:?}: {body}");
    }
    let (status, _) = password_grant(&s, "alice\u{200b}@example.com", ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// A user who already has the most methods allowed is told so when the page
/// offers a passkey after a password login: the challenge is refused with
/// the limit named (the page's script shows it).
#[tokio::test]
async fn the_passkey_offered_after_login_names_the_cap_when_full() {
    use latchkey::store::{Completion, EnrollmentRow, MethodRow};
    let s = TestServer::start().await;
    let text = acme(s.port)
        .replace(
            "factors: [password, totp, recovery-code]",
            "factors: [password, passkey, totp, recovery-code]",
        )
        .replace(
            "tenant: { name: acme,",
            "tenant: { passkeys: { progressive_enrollment: true }, name: acme,",
        );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    // The password and 19 authenticator apps.
    let store = &s.state.store;
    let tenant = store.tenant_by_name("acme").await.unwrap().unwrap();
    let now = s.clock_now();
    for i in 0..19 {
        let id = format!("totp|dev_seeded{i:02}");
        let digest = format!("seed-{i}");
        let enrollment = EnrollmentRow {
            user_id: "auth0|alice".into(),
            client_id: "spa".into(),
            method_type: "totp".into(),
            method_id: id.clone(),
            state: json!({}),
            attempts: 0,
            created_at: now,
            expires_at: now + 300,
        };
        store
            .create_enrollment(&tenant.id, &digest, &enrollment)
            .await
            .unwrap();
        let row = MethodRow {
            id,
            user_id: "auth0|alice".into(),
            method_type: latchkey::tenant::FactorType::Totp,
            name: None,
            data: json!({}),
            created_at: now,
            last_auth_at: None,
            last_otp_step: None,
            credential_id: None,
        };
        let add = Completion::AddMethod {
            row,
            replace_type: false,
        };
        assert!(
            store
                .complete_enrollment(&tenant.id, &digest, &add, now)
                .await
                .unwrap()
        );
    }
    // The page speaks French: so does its script's refusal.
    let browser = s.browser();
    let req = AuthRequest::new("openid").param("ui_locales", "fr");
    let html = login_through_page(&s, &browser, &req, ALICE, ALICE_PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    let Some(tx) = hidden_input(&html, "tx") else {
        panic!("no passkey offered: {html}");
    };
    let res = browser
        .post(s.url("/login/passkey/create/challenge"))
        .form(&[("tx", tx.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let detail = body["error_description"].as_str().unwrap();
    assert!(
        detail.contains("(20)") && detail.contains("Vous avez déjà"),
        "{body}"
    );
}

#[tokio::test]
async fn a_connection_requiring_verified_emails_holds_for_passkeys() {
    let mail = crate::smtp::SmtpServer::start_with_auth("latchkey", SMTP_PASSWORD).await;
    let s = TestServer::start().await;
    let text = acme(s.port)
        .replace("factors: [password, totp, recovery-code]", "factors: [password, passkey, totp, recovery-code]")
        .replace(
            "\"http://auth0.com/oauth/grant-type/password-realm\"] }",
            "\"http://auth0.com/oauth/grant-type/password-realm\", \"urn:okta:params:oauth:grant-type:webauthn\"] }",
        )
        .replace(
            "    password_policy: { min_length: 8 }\n",
            "    password_policy: { min_length: 8 }\n    require_email_verification: true\n",
        )
        + &format!(
            "email_provider: {{ smtp: {{ host: 127.0.0.1, port: {}, security: none, from: \"Acme <no-reply@acme.test>\", \
             username: latchkey, password_env: SMTP_PASSWORD, timeout_seconds: 2 }} }}\n",
            mail.port
        );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let authenticator = SoftAuthenticator::new();

    // The sign-up makes the user and mails the link, but no tokens yet: the
    // passkey proves its holder, not the address.
    let (status, body) = post(
        &s,
        "/passkey/register",
        json!({"client_id": "spa", "user_profile": {"email": "carol@example.com"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cred = authenticator
        .register(&s.base, &body["authn_params_public_key"])
        .await
        .unwrap();
    // The app's user reads French: the mail is in French.
    let res = s
        .http()
        .post(s.url("/oauth/token"))
        .header("accept-language", "fr-CA,fr;q=0.9")
        .json(&json!({"grant_type": WEBAUTHN, "client_id": "spa", "auth_session": body["auth_session"],
                      "authn_response": cred, "scope": "openid"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(
        answer,
        json!({"error": "access_denied",
               "error_description": "Please verify your email before logging in."})
    );
    let mails = mail.wait_for(1).await;
    assert_eq!(mails[0].to, vec!["carol@example.com".to_string()]);
    assert!(
        mails[0].text().contains("vérifier votre adresse"),
        "{}",
        mails[0].text()
    );
    let link = crate::signup::link_in(&mails[0]);

    // Logging in with the passkey is refused the same way until the link is
    // followed, and works after.
    let (status, answer) = log_in(&s, &authenticator).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"], "access_denied");
    let res = s.http().get(&link).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, tokens) = log_in(&s, &authenticator).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let tenant = acme_tenant(&s).await;
    let carol = s
        .state
        .store
        .user_by_email(
            &tenant.id,
            &tenant.config.connections[0].name,
            "carol@example.com",
        )
        .await
        .unwrap()
        .unwrap();
    assert!(carol.email_verified);
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["sub"],
        carol.user_id
    );
}

#[tokio::test]
async fn a_passkey_sign_up_takes_usernames_as_every_sign_up_does() {
    let s = server().await;
    let register = |profile: Value| {
        let s = &s;
        async move {
            post(
                s,
                "/passkey/register",
                json!({"client_id": "spa", "user_profile": profile}),
            )
            .await
        }
    };
    // A connection without usernames takes none.
    let (status, body) = register(json!({"email": "u1@example.com", "username": "ulla"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("does not use usernames"),
        "{body}"
    );
    let text = acme(s.port)
        .replace("factors: [password, totp, recovery-code]", "factors: [password, passkey, totp, recovery-code]")
        .replace(
            "\"http://auth0.com/oauth/grant-type/password-realm\"] }",
            "\"http://auth0.com/oauth/grant-type/password-realm\", \"urn:okta:params:oauth:grant-type:webauthn\"] }",
        )
        .replace(
            "    password_policy: { min_length: 8 }\n",
            "    password_policy: { min_length: 8 }\n    requires_username: true\n",
        );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    // One with usernames needs one, well formed and not taken.
    for (profile, why) in [
        (
            json!({"email": "u2@example.com"}),
            "Missing required property: username",
        ),
        (
            json!({"email": "u2@example.com", "username": "аlice"}),
            "letters (a-z, A-Z)",
        ),
    ] {
        let (status, body) = register(profile).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["error_description"].as_str().unwrap().contains(why),
            "{body}"
        );
    }
    let (status, _) = post_json_signup(&s, "taken@example.com", "Ulla").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = register(json!({"email": "u3@example.com", "username": "ULLA"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error_description"], "The username already exists.");
    let (status, body) = register(json!({"email": "u3@example.com", "username": "ulla_2"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn post_json_signup(s: &TestServer, email: &str, username: &str) -> (StatusCode, Value) {
    post(
        s,
        "/dbconnections/signup",
        json!({"client_id": "spa", "connection": "Username-Password-Authentication",
               "email": email, "password": "Gl4ss-Onion-Lantern", "username": username}),
    )
    .await
}
