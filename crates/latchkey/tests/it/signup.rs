//! `POST /dbconnections/signup` and the hosted sign-up screen: Auth0's
//! answers and refusals, the connection's policy and `disable_signup`, the
//! per-IP limit, and the verification email read from a real SMTP server.
//! Also the helpers the email-verification and password-reset tests share.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::smtp::{ReceivedMail, SmtpServer};
use crate::support::*;

pub(crate) const UPA: &str = "Username-Password-Authentication";
pub(crate) const NEW_PASSWORD: &str = "Gl4ss-Onion-Lantern";

/// The acme tenant with its email provider the test's SMTP server, the
/// database connection's lines `connection` (after its name), and `extra`.
pub(crate) async fn server(connection: &str, extra: &str) -> (TestServer, SmtpServer) {
    let mail = SmtpServer::start_with_auth("latchkey", SMTP_PASSWORD).await;
    let s = TestServer::start().await;
    let text = acme(s.port).replace(
        "    password_policy: { min_length: 8 }\n",
        &format!("    password_policy: {{ min_length: 8 }}\n{connection}"),
    ) + &format!(
        "email_provider: {{ smtp: {{ host: 127.0.0.1, port: {}, security: none, from: \"Acme <no-reply@acme.test>\", \
         username: latchkey, password_env: SMTP_PASSWORD, timeout_seconds: 2 }} }}\n{extra}",
        mail.port
    );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    (s, mail)
}

/// POSTs JSON to `path` as auth0-js does; the status and the body (JSON, or
/// the text as a JSON string).
pub(crate) async fn post_json(s: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    let res = s.http().post(s.url(path)).json(&body).send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub(crate) async fn signup(s: &TestServer, email: &str, password: &str) -> (StatusCode, Value) {
    post_json(
        s,
        "/dbconnections/signup",
        json!({"client_id": "spa", "connection": UPA, "email": email, "password": password}),
    )
    .await
}

/// The link of a mail (the first URL with a ticket in its text).
pub(crate) fn link_in(mail: &ReceivedMail) -> String {
    let text = mail.text();
    text.split_whitespace()
        .find(|w| w.starts_with("http") && w.contains("ticket="))
        .unwrap_or_else(|| panic!("no link in {text:?}"))
        .to_string()
}

/// The types of the acme tenant's log events, newest first.
pub(crate) async fn event_types(s: &TestServer) -> Vec<String> {
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let events = s.state.store.audit_events(&tenant.id, 200).await.unwrap();
    events.into_iter().map(|e| e.event_type).collect()
}

/// The password grant for `email` on the `spa` client.
pub(crate) async fn password_grant(
    s: &TestServer,
    email: &str,
    password: &str,
) -> (StatusCode, Value) {
    s.token(&[
        ("grant_type", "password"),
        ("client_id", "spa"),
        ("username", email),
        ("password", password),
        ("scope", "openid email offline_access"),
    ])
    .await
}

#[tokio::test]
async fn signup_answers_as_auth0_and_mails_a_verification_link() {
    let (s, mail) = server("", "").await;
    let (status, body) = post_json(
        &s,
        "/dbconnections/signup",
        json!({
            "client_id": "spa", "connection": UPA, "email": "Newcomer@Example.com",
            "password": NEW_PASSWORD, "given_name": "New", "family_name": "Comer",
            "name": "New Comer", "nickname": "newbie", "picture": "https://example.com/n.png",
            "user_metadata": { "plan": "free" }, "state": "ignored-by-the-server",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["_id"].as_str().unwrap();
    assert!(!id.starts_with("auth0|") && id.len() == 24, "{body}");
    assert_eq!(body["email"], "Newcomer@Example.com");
    assert_eq!(body["email_verified"], false);
    assert_eq!(body["given_name"], "New");
    assert_eq!(body["family_name"], "Comer");
    assert_eq!(body["nickname"], "newbie");
    assert_eq!(body["picture"], "https://example.com/n.png");
    assert_eq!(body["user_metadata"], json!({"plan": "free"}));

    let mails = mail.wait_for(1).await;
    assert_eq!(mails[0].to, vec!["Newcomer@Example.com".to_string()]);
    let link = link_in(&mails[0]);
    assert!(
        link.starts_with(&format!("{}u/email-verification?ticket=", s.issuer)),
        "{link}"
    );
    // The ticket is kept as a digest only.
    let ticket = link.split("ticket=").nth(1).unwrap();
    let dump = s.database_dump().await;
    assert!(!dump.windows(ticket.len()).any(|w| w == ticket.as_bytes()));

    // Unverified users may log in unless the connection says otherwise.
    let (status, tokens) = password_grant(&s, "newcomer@example.com", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["email_verified"],
        false
    );
}

#[tokio::test]
async fn signup_refusals_in_auth0s_dialect() {
    let (s, _mail) = server(
        "  - { name: gh, strategy: github, options: { client_id: gh-client, client_secret_env: IDP_CLIENT_SECRET } }\n",
        "",
    )
    .await;
    let base = json!({"client_id": "spa", "connection": UPA, "email": "x@example.com", "password": NEW_PASSWORD});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases = [
        (with("connection", json!("Nope")), "bad.connection"),
        (with("client_id", json!("nobody")), "bad.client_id"),
        (without("email"), "bad.email"),
        (without("password"), "bad.password"),
        (without("connection"), "bad.connection"),
        (with("email", json!("not-an-address")), "bad.email"),
        (
            with("email", json!("zero\u{200b}width@example.com")),
            "bad.email",
        ),
        (
            with("email", json!(format!("{}@example.com", "a".repeat(400)))),
            "bad.email",
        ),
        (with("given_name", json!("g".repeat(301))), "bad.given_name"),
        (with("given_name", json!(7)), "bad.given_name"),
        (with("picture", json!("javascript:alert(1)")), "bad.picture"),
        (with("username", json!("someone")), "bad.username"),
        (with("user_metadata", json!("text")), "bad.user_metadata"),
        (
            with(
                "user_metadata",
                Value::Object((0..11).map(|i| (format!("k{i}"), json!("v"))).collect()),
            ),
            "bad.user_metadata",
        ),
        (with("user_metadata", json!({"n": 1})), "bad.user_metadata"),
        (with("email", json!(["a@example.com"])), "bad.email"),
    ];
    for (body, code) in cases {
        let (status, answer) = post_json(&s, "/dbconnections/signup", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert_eq!(answer["code"], code, "{body} -> {answer}");
        assert_eq!(answer["name"], "BadRequestError");
        assert_eq!(answer["statusCode"], 400);
    }
    // An upstream connection's users sign up at their provider.
    let (status, answer) =
        post_json(&s, "/dbconnections/signup", with("connection", json!("gh"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["code"], "bad.connection", "{answer}");

    // Malformed bodies, in the same dialect.
    for (ct, raw) in [
        ("application/json", "{not json"),
        ("application/json", "[1,2]"),
        ("text/plain", "hello"),
    ] {
        let res = s
            .http()
            .post(s.url("/dbconnections/signup"))
            .header("content-type", ct)
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["code"], "invalid_body", "{answer}");
    }
    // Oversized: refused before it is read.
    let huge = with("nickname", json!("n".repeat(64 * 1024)));
    let res = s
        .http()
        .post(s.url("/dbconnections/signup"))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Nothing was made.
    let (status, _) = password_grant(&s, "x@example.com", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn usernames_are_unique_without_regard_to_case_and_log_in() {
    let (s, _mail) = server("    requires_username: true\n", "").await;
    let body = |email: &str, username: &str| {
        json!({"client_id": "spa", "connection": UPA, "email": email,
               "password": NEW_PASSWORD, "username": username})
    };
    let (status, answer) = signup(&s, "nameless@example.com", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "bad.username", "{answer}");
    // Names a person could not tell from another, or that are not names.
    let long = "b".repeat(129);
    for bad in [
        "аlice",
        "ＢＯＢ",
        "bo b",
        " bob",
        "bob\u{200b}",
        "a/b",
        long.as_str(),
    ] {
        let (status, answer) =
            post_json(&s, "/dbconnections/signup", body("odd@example.com", bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {answer}");
        assert_eq!(answer["code"], "bad.username", "{bad:?}: {answer}");
    }

    let (status, bob) = post_json(
        &s,
        "/dbconnections/signup",
        body("bob@example.com", "Bob_99"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{bob}");
    assert_eq!(bob["username"], "Bob_99");
    // The name is taken whatever its case, by another address.
    for taken in ["Bob_99", "bob_99", "BOB_99"] {
        let (status, answer) = post_json(
            &s,
            "/dbconnections/signup",
            body("other@example.com", taken),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{taken}");
        assert_eq!(
            answer,
            json!({"name": "BadRequestError", "code": "username_exists",
                   "description": "The username already exists.", "statusCode": 400}),
            "{taken}"
        );
    }
    // Two sign-ups for one new name at once: one user has it.
    let (a, b) = tokio::join!(
        post_json(
            &s,
            "/dbconnections/signup",
            body("carol1@example.com", "carol")
        ),
        post_json(
            &s,
            "/dbconnections/signup",
            body("carol2@example.com", "Carol")
        ),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::BAD_REQUEST],
        "{} {}",
        a.1,
        b.1
    );
    let logins = [
        password_grant(&s, "carol1@example.com", NEW_PASSWORD)
            .await
            .0,
        password_grant(&s, "carol2@example.com", NEW_PASSWORD)
            .await
            .0,
    ];
    assert_eq!(
        logins.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{logins:?}"
    );

    // Bob logs in with his email or his username, in any case.
    let (status, by_email) = password_grant(&s, "bob@example.com", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{by_email}");
    let sub = claims(by_email["id_token"].as_str().unwrap())["sub"].clone();
    for name in ["Bob_99", "bob_99", "BOB_99"] {
        let (status, tokens) = password_grant(&s, name, NEW_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{name}: {tokens}");
        assert_eq!(claims(tokens["id_token"].as_str().unwrap())["sub"], sub);
    }
    // A wrong password, or a name nobody has, is the usual refusal.
    for (name, password) in [
        ("bob_99", "Wrong-Password-1"),
        ("nobody_here", NEW_PASSWORD),
    ] {
        let (status, answer) = password_grant(&s, name, password).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}");
        assert_eq!(answer["error"], "invalid_grant");
        assert_eq!(answer["error_description"], "Wrong email or password.");
    }
}

#[tokio::test]
async fn weak_passwords_are_refused_with_the_policys_rules() {
    let (s, _mail) = server("", "").await;
    let text = acme(s.port).replace(
        "password_policy: { min_length: 8 }",
        "password_policy: { min_length: 10, character_types: [lowercase, uppercase, number, special], \
         character_type_rule: three_of_four, identical_characters: block, dictionary: { active: true, entries: [Correct-Horse-42] }, \
         profile_data: { active: true, blocked_fields: [email] } }",
    );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let (status, body) = signup(&s, "weak@example.com", "aaaaa").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["name"], "PasswordStrengthError");
    assert_eq!(body["code"], "invalid_password");
    assert_eq!(body["message"], "Password is too weak");
    let rules = body["description"]["rules"].as_array().unwrap();
    let rule = |code: &str| rules.iter().find(|r| r["code"] == code).unwrap().clone();
    assert_eq!(rule("lengthAtLeast")["format"], json!([10]));
    assert_eq!(rule("lengthAtLeast")["verified"], false);
    assert_eq!(rule("containsAtLeast")["format"], json!([3, 4]));
    assert_eq!(
        rule("containsAtLeast")["items"].as_array().unwrap().len(),
        4
    );
    assert_eq!(rule("identicalChars")["verified"], false);
    assert!(
        body["policy"].as_str().unwrap().starts_with(
            "* At least 10 characters in length\n* Contain at least 3 of the following 4 types"
        ),
        "{body}"
    );
    // A dictionary word alone, personal data alone: their own names.
    let (_, body) = signup(&s, "weak@example.com", "correct-horse-42").await;
    assert_eq!(body["name"], "PasswordDictionaryError", "{body}");
    let (_, body) = signup(&s, "lanternfish@example.com", "Lanternfish-42!").await;
    assert_eq!(body["name"], "PasswordNoUserInfoError", "{body}");
    // The failures are logged as Auth0's `fs`.
    assert!(event_types(&s).await.iter().any(|t| t == "fs"));
    let (status, _) = signup(&s, "strong@example.com", "Gl4ss-Onion-Lantern").await;
    assert_eq!(status, StatusCode::OK);
    assert!(event_types(&s).await.iter().any(|t| t == "ss"));
}

#[tokio::test]
async fn a_taken_address_is_an_invalid_signup_after_the_same_work() {
    let (s, mail) = server("", "").await;
    for email in [
        ALICE,
        "ALICE@EXAMPLE.COM",
        " alice@example.com. ",
        "ａｌｉｃｅ@example.com",
    ] {
        let (status, body) = signup(&s, email, NEW_PASSWORD).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{email}: {body}");
        assert_eq!(
            body,
            json!({"name": "BadRequestError", "code": "invalid_signup",
                   "description": "Invalid sign up", "statusCode": 400}),
            "{email}"
        );
    }
    // Alice's password is hers still, and no mail went out.
    let (status, _) = password_grant(&s, ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = signup(&s, "fresh@example.com", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let mails = mail.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["fresh@example.com".to_string()]);
    // Two sign-ups of one new address at once: one user.
    let (a, b) = tokio::join!(
        signup(&s, "twice@example.com", NEW_PASSWORD),
        signup(&s, "twice@example.com", NEW_PASSWORD)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::BAD_REQUEST]);
}

#[tokio::test]
async fn disabled_signup_and_the_per_ip_limit() {
    let (s, _mail) = server("    disable_signup: true\n", "").await;
    let (status, body) = signup(&s, "new@example.com", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "operation_not_supported");
    assert_eq!(body["description"], "public signup is disabled");

    let (s, _mail) = server("", "").await;
    for i in 0..20 {
        let (status, body) = signup(&s, &format!("n{i}@example.com"), NEW_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{i}: {body}");
    }
    let res = s
        .http()
        .post(s.url("/dbconnections/signup"))
        .json(&json!({"client_id": "spa", "connection": UPA, "email": "n21@example.com", "password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["statusCode"], 429);
    // The window passes.
    s.clock.advance(3600);
    let (status, _) = signup(&s, "n21@example.com", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn cors_as_the_authentication_api() {
    let (s, _mail) = server("", "").await;
    let res = s
        .http()
        .request(reqwest::Method::OPTIONS, s.url("/dbconnections/signup"))
        .header("origin", APP)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, auth0-client",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.headers()["access-control-allow-origin"], APP);
    let res = s
        .http()
        .request(
            reqwest::Method::OPTIONS,
            s.url("/dbconnections/change_password"),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!res.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn the_hosted_page_signs_up_and_logs_in() {
    let (s, mail) = server("", "").await;
    let browser = s.browser();
    let plain = AuthRequest::new("openid email");
    // The login page links to the sign-up screen; screen_hint opens it.
    let login = browser
        .get(plain.url(&s))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("id=\"signup-link\""), "{login}");
    assert!(login.contains("id=\"forgot-password\""), "{login}");
    let req = AuthRequest::new("openid email").param("screen_hint", "signup");
    let page = browser.get(req.url(&s)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("action=\"/login/signup\""), "{html}");
    let tx = hidden_input(&html, "tx").unwrap();
    // A weak password: the screen again, the error tied to the field.
    let res = browser
        .post(s.url("/login/signup"))
        .form(&[
            ("tx", tx.as_str()),
            ("email", "page@example.com"),
            ("password", "short"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("at least 8 characters"), "{html}");
    assert!(html.contains("aria-describedby=\"signup-error\""));
    // Signed up: logged in at once, the code back to the app.
    let res = browser
        .post(s.url("/login/signup"))
        .form(&[
            ("tx", tx.as_str()),
            ("email", "page@example.com"),
            ("password", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let code = query_param(&location, "code").unwrap();
    let (status, tokens) = exchange(&s, &req, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["email"],
        "page@example.com"
    );
    // Then the verification email.
    let mails = mail.wait_for(1).await;
    assert!(link_in(&mails[0]).contains("/u/email-verification?ticket="));
    // Another browser's transaction cannot be used.
    let res = s
        .browser()
        .post(s.url("/login/signup"))
        .form(&[
            ("tx", tx.as_str()),
            ("email", "other@example.com"),
            ("password", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_hosted_pages_take_usernames_where_the_connection_has_them() {
    let (s, _mail) = server("    requires_username: true\n", "").await;
    let browser = s.browser();
    let req = AuthRequest::new("openid email")
        .param("screen_hint", "signup")
        .param("ui_locales", "fr");
    let html = browser
        .get(req.url(&s))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"username\""), "{html}");
    assert!(
        html.contains("Nom d&#x27;utilisateur") || html.contains("Nom d'utilisateur"),
        "{html}"
    );
    let tx = hidden_input(&html, "tx").unwrap();
    let sign_up = |username: &'static str, email: &'static str| {
        let (browser, url, tx) = (browser.clone(), s.url("/login/signup"), tx.clone());
        async move {
            let res = browser
                .post(url)
                .form(&[
                    ("tx", tx.as_str()),
                    ("email", email),
                    ("username", username),
                    ("password", NEW_PASSWORD),
                ])
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    // A name that is not one, then a taken one: the form again, in French,
    // with what was typed kept and the error tied to the fields.
    let (status, html) = sign_up("bo b", "dora@example.com").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Un nom d"), "{html}");
    assert!(html.contains("value=\"bo b\""), "{html}");
    assert!(html.contains("aria-describedby=\"signup-error\""), "{html}");
    let (status, _) = post_json(
        &s,
        "/dbconnections/signup",
        json!({"client_id": "spa", "connection": UPA, "email": "first@example.com",
               "password": NEW_PASSWORD, "username": "dora"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, html) = sign_up("Dora", "dora@example.com").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("est déjà pris"), "{html}");
    assert!(html.contains("value=\"Dora\""), "{html}");
    let (status, html) = sign_up("dora_2", "dora@example.com").await;
    assert_eq!(status, StatusCode::FOUND, "{html}");

    // The login form takes a username or an email, in a text field.
    let login = AuthRequest::new("openid email");
    let page = s
        .browser()
        .get(login.url(&s))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Username or email address"), "{page}");
    assert!(
        page.contains("id=\"username\" name=\"username\" type=\"text\""),
        "{page}"
    );
    let fresh = s.browser();
    let res = login_through_page(&s, &fresh, &login, "DORA_2", NEW_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let code = query_param(&location, "code").unwrap();
    let (status, tokens) = exchange(&s, &login, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["email"],
        "dora@example.com"
    );
}
