//! Logging in with an upstream identity provider, against real providers
//! on loopback: `oidc-provider` behind its login form, the GitHub-like
//! server (no ID token: `/user` and `/user/emails`), and a second latchkey.
//! A new user is made from the provider's account (Auth0's `user_id` and
//! `identities[]`), found again at the next login, joined to an existing
//! user by a verified email only where the connection says so and both
//! sides are verified; the login goes on through the MFA policy; what
//! cannot be believed (a forged, replayed or foreign state, another nonce,
//! a provider that refuses or is down, a blocked user) never signs anyone in.

mod attacks;

use std::sync::Arc;

use latchkey::services::upstream_login;
use latchkey::store::UserRow;
use latchkey::tenant::Tenant;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::idp::{BOB, BOB_PASSWORD, IDP_SECRET, Pair, acme_with, login_at_idp};
use crate::support::*;
use crate::upstream::github::{GithubApp, GithubServer, GithubUser};
use crate::upstream::oidc::{OidcClient, OidcConfig, OidcProvider, OidcUser};

/// Alice's account at the OpenID provider: her acme address, verified.
const ALICE_SUB: &str = "248289761001";
const ALICE_UP_PASSWORD: &str = "Alice-at-the-upstream-1";
/// Mallory claims Alice's address at the provider, which never verified it.
const MALLORY_SUB: &str = "7";
const MALLORY_PASSWORD: &str = "Mallory-password-1";
/// Bob's acme account is unverified; at the provider his address is.
const BOB_SUB: &str = "bob-up";
const BOB_UP_PASSWORD: &str = "Bob-at-the-upstream-1";
const CAROL_SUB: &str = "carol-up";
const CAROL_EMAIL: &str = "carol@idp.test";
const CAROL_PASSWORD: &str = "Carol-at-the-upstream-1";

/// The OpenID provider's users.
fn users() -> Vec<OidcUser> {
    vec![
        OidcUser::new(ALICE_SUB, ALICE, ALICE_UP_PASSWORD).name("Alice Upstream"),
        OidcUser::new(MALLORY_SUB, ALICE, MALLORY_PASSWORD).unverified(),
        OidcUser::new(BOB_SUB, "bob@example.com", BOB_UP_PASSWORD),
        OidcUser::new(CAROL_SUB, CAROL_EMAIL, CAROL_PASSWORD).name("Carol"),
    ]
}

/// An OpenID connection to the provider at `issuer`, with `more` lines.
pub(crate) fn oidc_connection(name: &str, issuer: &str, more: &str) -> String {
    format!(
        r#"  - name: {name}
    strategy: oidc
    options: {{ issuer: "{issuer}", client_id: latchkey, client_secret_env: IDP_CLIENT_SECRET,
               scope: [openid, profile, email], timeout_seconds: 5 }}
    enabled_clients: [spa]
{more}"#
    )
}

/// A latchkey (with the `other` tenant on 127.0.0.1) and an OpenID
/// provider whose client `latchkey` answers at its callback.
pub(crate) struct Rig {
    pub(crate) s: TestServer,
    pub(crate) idp: OidcProvider,
}

impl Rig {
    /// The acme tenant with `connections(issuer)` added and `tail` (top
    /// level keys) after it.
    pub(crate) async fn start(connections: impl Fn(&str) -> String, tail: &str) -> Self {
        let s = TestServer::with_tenants(&[other_tenant]).await;
        let callback = format!("http://localhost:{}/login/callback", s.port);
        let idp = OidcProvider::start(OidcConfig {
            clients: vec![OidcClient::confidential("latchkey", IDP_SECRET, &callback)],
            users: users(),
            now: Some(START),
            ..OidcConfig::default()
        })
        .await;
        let text = acme_with(s.port, &connections(idp.issuer())) + tail;
        apply(&s, &text).await;
        Self { s, idp }
    }

    /// With one connection, `acme-oidc`, and `more` lines for it.
    pub(crate) async fn one(more: &str, tail: &str) -> Self {
        Self::start(|issuer| oidc_connection("acme-oidc", issuer, more), tail).await
    }

    /// Logs `user` in at the provider from the URL latchkey sent the
    /// browser to; latchkey's answer to the callback.
    pub(crate) async fn through(
        &self,
        browser: &reqwest::Client,
        upstream_url: &str,
        user: &str,
        password: &str,
    ) -> reqwest::Response {
        let back = self.idp.login(browser, upstream_url, user, password).await;
        assert!(back.starts_with(&self.s.url("/login/callback")), "{back}");
        browser.get(&back).send().await.unwrap()
    }
}

pub(crate) async fn apply(s: &TestServer, text: &str) {
    latchkey::tenant::apply::apply_text(&s.state, text)
        .await
        .unwrap();
}

pub(crate) async fn acme_tenant(s: &TestServer) -> Arc<Tenant> {
    s.state
        .tenants
        .by_host(&format!("localhost:{}", s.port))
        .await
        .unwrap()
        .unwrap()
}

/// The login page of `req` in `browser`.
pub(crate) async fn login_page(
    s: &TestServer,
    browser: &reqwest::Client,
    req: &AuthRequest,
) -> String {
    let res = browser.get(req.url(s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// Presses the button of `connection` on the login page `html`: where the
/// browser is sent.
pub(crate) async fn press(
    s: &TestServer,
    browser: &reqwest::Client,
    html: &str,
    connection: &str,
) -> reqwest::Response {
    let tx = hidden_input(html, "tx").expect("a login page");
    browser
        .post(s.url("/login/upstream"))
        .form(&[("tx", tx.as_str()), ("connection", connection)])
        .send()
        .await
        .unwrap()
}

/// The URL of a redirect.
pub(crate) fn location(res: &reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::FOUND, "{res:?}");
    res.headers()["location"].to_str().unwrap().to_string()
}

/// The app's redirect with a code, exchanged: the token response.
pub(crate) async fn tokens(s: &TestServer, req: &AuthRequest, res: reqwest::Response) -> Value {
    let to = location(&res);
    assert!(to.starts_with(&req.redirect_uri), "{to}");
    assert_eq!(query_param(&to, "state"), Some(req.state.clone()));
    let code = query_param(&to, "code").unwrap_or_else(|| panic!("no code: {to}"));
    let (status, body) = exchange(s, req, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The app's redirect with an error: `(error, error_description)`.
pub(crate) fn app_error(req: &AuthRequest, res: &reqwest::Response) -> (String, String) {
    let to = location(res);
    assert!(to.starts_with(&req.redirect_uri), "{to}");
    assert_eq!(query_param(&to, "state"), Some(req.state.clone()));
    assert_eq!(query_param(&to, "code"), None);
    (
        query_param(&to, "error").unwrap_or_default(),
        query_param(&to, "error_description").unwrap_or_default(),
    )
}

pub(crate) async fn user(s: &TestServer, user_id: &str) -> Option<UserRow> {
    let t = acme_tenant(s).await;
    s.state.store.user_by_id(&t.id, user_id).await.unwrap()
}

/// A user's `identities[]`.
pub(crate) async fn identities(s: &TestServer, user_id: &str) -> Value {
    let t = acme_tenant(s).await;
    let u = user(s, user_id).await.expect("the user");
    Value::Array(upstream_login::identities(&s.state, &t, &u).await.unwrap())
}

pub(crate) async fn user_count(s: &TestServer) -> i64 {
    let t = acme_tenant(s).await;
    s.state.store.count_users(&t.id).await.unwrap()
}

/// The tenant's log: `(type, user_id, details)`, oldest first.
/// The tenant's log of upstream logins (the apps' code exchanges after
/// them, `seacft`/`feacft`, and refreshes, `sertft`/`fertft`, left out).
pub(crate) async fn events(s: &TestServer) -> Vec<(String, Option<String>, Value)> {
    let t = acme_tenant(s).await;
    s.state
        .store
        .audit_events(&t.id, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            !matches!(
                e.event_type.as_str(),
                "seacft" | "feacft" | "sertft" | "fertft"
            )
        })
        .map(|e| (e.event_type, e.user_id, e.details))
        .collect()
}

#[tokio::test]
async fn a_new_user_from_an_openid_provider_then_the_same_user_again() {
    let rig = Rig::one("    display_name: Acme Workforce\n", "").await;
    let s = &rig.s;
    let before = user_count(s).await;
    let browser = s.browser();
    let req = AuthRequest::new("openid profile email offline_access");
    let html = login_page(s, &browser, &req).await;
    assert!(html.contains("Continue with Acme Workforce"), "{html}");
    let to = location(&press(s, &browser, &html, "acme-oidc").await);
    assert!(to.starts_with(rig.idp.issuer()), "{to}");
    // latchkey's own state, nonce and PKCE, never the app's.
    assert_ne!(query_param(&to, "state"), Some(req.state.clone()));
    assert_ne!(query_param(&to, "nonce"), Some(req.nonce.clone()));
    assert_eq!(
        query_param(&to, "code_challenge_method").as_deref(),
        Some("S256")
    );
    // The state is kept as a digest, the verifier and nonce sealed.
    let dump = s.database_dump().await;
    for secret in [query_param(&to, "state"), query_param(&to, "nonce")] {
        let secret = secret.unwrap();
        assert!(
            !dump.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} stored in clear"
        );
    }
    let res = rig.through(&browser, &to, ALICE, ALICE_UP_PASSWORD).await;
    let body = tokens(s, &req, res).await;

    let user_id = format!("oidc|acme-oidc|{ALICE_SUB}");
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], json!(user_id));
    assert_eq!(id["email"], json!(ALICE));
    assert_eq!(id["email_verified"], json!(true));
    assert_eq!(id["name"], json!("Alice Upstream"));
    assert_eq!(id["nonce"], json!(req.nonce));
    let (status, info) = userinfo(s, body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&info["sub"], &info["email"], &info["name"]),
        (&json!(user_id), &json!(ALICE), &json!("Alice Upstream"))
    );
    // A user of its own (the acme Alice is another), in Auth0's form.
    assert_eq!(user_count(s).await, before + 1);
    let made = user(s, &user_id).await.unwrap();
    assert_eq!(
        (made.connection.as_str(), made.password_hash.as_deref()),
        ("acme-oidc", None)
    );
    assert_eq!(
        identities(s, &user_id).await,
        json!([{ "provider": "oidc", "user_id": format!("acme-oidc|{ALICE_SUB}"),
                 "connection": "acme-oidc", "isSocial": false }])
    );
    assert_eq!(
        identities(s, "auth0|alice").await,
        json!([{ "provider": "auth0", "user_id": "alice",
                 "connection": "Username-Password-Authentication", "isSocial": false }])
    );
    // The refresh token works as any other.
    let (status, refreshed) = s.refresh(body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");

    // Another browser, the same account: the same user, nothing new.
    let again = s.browser();
    let req = AuthRequest::new("openid").param("connection", "acme-oidc");
    let res = rig
        .through(&again, &req.url(s), ALICE, ALICE_UP_PASSWORD)
        .await;
    let body = tokens(s, &req, res).await;
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["sub"],
        json!(user_id)
    );
    assert_eq!(user_count(s).await, before + 1);
    // The session is latchkey's own now: the next request is answered at
    // once, without the provider.
    let req = AuthRequest::new("openid");
    let res = again.get(req.url(s)).send().await.unwrap();
    let body = tokens(s, &req, res).await;
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["sub"],
        json!(user_id)
    );

    let log: Vec<(String, Option<String>)> = events(s)
        .await
        .into_iter()
        .map(|(t, u, d)| {
            assert_eq!(d["connection"], json!("acme-oidc"), "{d}");
            (t, u)
        })
        .collect();
    let who = Some(user_id.clone());
    assert_eq!(
        log,
        [
            ("ss".into(), who.clone()),
            ("s".into(), who.clone()),
            ("s".into(), who)
        ]
    );
}

#[tokio::test]
async fn github_without_an_id_token_userinfo_and_emails() {
    let s = TestServer::with_tenants(&[]).await;
    let callback = format!("http://localhost:{}/login/callback", s.port);
    let gh = GithubServer::start(
        vec![GithubApp::new("Iv1.latchkey", IDP_SECRET, &callback)],
        vec![
            GithubUser::new(583231, "octocat", "octocat@github.test", true).name("The Octocat"),
            GithubUser::new(9919, "hidden", "hidden@github.test", false),
        ],
        Arc::new(s.clock.clone()),
    )
    .await;
    let connection = format!(
        r#"  - name: github
    strategy: github
    display_name: GitHub
    options: {{ client_id: Iv1.latchkey, client_secret_env: IDP_CLIENT_SECRET,
               authorizationURL: "{base}/login/oauth/authorize",
               tokenURL: "{base}/login/oauth/access_token", userInfoURL: "{base}/user" }}
    enabled_clients: [spa]
"#,
        base = gh.base
    );
    apply(&s, &acme_with(s.port, &connection)).await;

    // A private address: read from /user/emails, verified and primary.
    gh.sign_in("hidden");
    let browser = s.browser();
    let req = AuthRequest::new("openid profile email").param("connection", "github");
    let back = gh.authorize(&browser, &req.url(&s)).await;
    let res = browser.get(&back).send().await.unwrap();
    let body = tokens(&s, &req, res).await;
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], json!("github|9919"));
    assert_eq!(id["email"], json!("hidden@github.test"));
    assert_eq!(id["email_verified"], json!(true));
    assert_eq!(id["nickname"], json!("hidden"));
    assert_eq!(gh.count("user/emails"), 1);
    assert_eq!(
        identities(&s, "github|9919").await,
        json!([{ "provider": "github", "user_id": "9919", "connection": "github", "isSocial": true }])
    );

    // Through the login page's button.
    gh.sign_in("octocat");
    let browser = s.browser();
    let req = AuthRequest::new("openid profile email");
    let html = login_page(&s, &browser, &req).await;
    assert!(html.contains("Continue with GitHub"), "{html}");
    let to = location(&press(&s, &browser, &html, "github").await);
    let back = gh.authorize(&browser, &to).await;
    let res = browser.get(&back).send().await.unwrap();
    let body = tokens(&s, &req, res).await;
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(
        (&id["sub"], &id["name"], &id["email"]),
        (
            &json!("github|583231"),
            &json!("The Octocat"),
            &json!("octocat@github.test")
        )
    );
}

#[tokio::test]
async fn a_second_latchkey_as_the_provider() {
    let pair = Pair::start(|_| String::new()).await;
    let rp = &pair.rp;
    let browser = crate::idp::browser();
    let req = AuthRequest::new("openid profile email");
    let html = login_page(rp, &browser, &req).await;
    let to = location(&press(rp, &browser, &html, "idp").await);
    assert!(to.starts_with(&pair.idp_issuer()), "{to}");
    let back = login_at_idp(&browser, &to, BOB, BOB_PASSWORD).await;
    let callback = location(&back);
    assert!(callback.starts_with(&pair.callback()), "{callback}");
    let res = browser.get(&callback).send().await.unwrap();
    let body = tokens(rp, &req, res).await;
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], json!("oidc|idp|auth0|bob"));
    assert_eq!(
        (&id["email"], &id["email_verified"]),
        (&json!(BOB), &json!(true))
    );
    assert_eq!(
        identities(rp, "oidc|idp|auth0|bob").await,
        json!([{ "provider": "oidc", "user_id": "idp|auth0|bob", "connection": "idp", "isSocial": false }])
    );

    // Bob's profile changes at the provider: his user follows at the next
    // login, as Auth0's root attributes do.
    let renamed = crate::idp::idp_tenant(pair.idp.port, rp.port).replace(
        "user_id: \"auth0|bob\" }",
        "user_id: \"auth0|bob\", name: Bob Builder, picture: \"https://pics.idp.test/bob.png\" }",
    );
    assert!(renamed.contains("Bob Builder"));
    apply(&pair.idp, &renamed).await;
    let browser = crate::idp::browser();
    let req = AuthRequest::new("openid profile").param("connection", "idp");
    let to = location(&browser.get(req.url(rp)).send().await.unwrap());
    let back = login_at_idp(&browser, &to, BOB, BOB_PASSWORD).await;
    let res = browser.get(location(&back)).send().await.unwrap();
    let body = tokens(rp, &req, res).await;
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(
        (&id["sub"], &id["name"], &id["picture"]),
        (
            &json!("oidc|idp|auth0|bob"),
            &json!("Bob Builder"),
            &json!("https://pics.idp.test/bob.png")
        )
    );
}

#[tokio::test]
async fn linking_by_verified_email_only_where_allowed_and_verified_on_both_sides() {
    let rig = Rig::start(
        |issuer| {
            oidc_connection("acme-oidc", issuer, "")
                + &oidc_connection("acme-linked", issuer, "    link_by_verified_email: true\n")
        },
        "",
    )
    .await;
    let s = &rig.s;
    let login = |connection: &'static str, who: &'static str, password: &'static str| {
        let rig = &rig;
        async move {
            let browser = rig.s.browser();
            let req = AuthRequest::new("openid email profile").param("connection", connection);
            let res = rig.through(&browser, &req.url(&rig.s), who, password).await;
            let body = tokens(&rig.s, &req, res).await;
            claims(body["id_token"].as_str().unwrap())
        }
    };
    let before = user_count(s).await;

    // Linking off (the default): Alice's address, verified on both sides,
    // still makes a separate user, as Auth0 does.
    let id = login("acme-oidc", ALICE, ALICE_UP_PASSWORD).await;
    assert_eq!(id["sub"], json!(format!("oidc|acme-oidc|{ALICE_SUB}")));

    // On, and verified on both sides: Alice herself, her profile her own.
    let id = login("acme-linked", ALICE, ALICE_UP_PASSWORD).await;
    assert_eq!(id["sub"], json!("auth0|alice"));
    assert_eq!(id["name"], json!("Alice Example"));
    assert_eq!(
        identities(s, "auth0|alice").await,
        json!([
            { "provider": "auth0", "user_id": "alice",
              "connection": "Username-Password-Authentication", "isSocial": false },
            { "provider": "oidc", "user_id": format!("acme-linked|{ALICE_SUB}"),
              "connection": "acme-linked", "isSocial": false,
              "profileData": { "email": ALICE, "email_verified": true, "name": "Alice Upstream" } },
        ])
    );
    // And the next time too.
    let id = login("acme-linked", ALICE, ALICE_UP_PASSWORD).await;
    assert_eq!(id["sub"], json!("auth0|alice"));

    // The provider never verified Mallory's claim to Alice's address.
    let id = login("acme-linked", MALLORY_SUB, MALLORY_PASSWORD).await;
    assert_eq!(id["sub"], json!(format!("oidc|acme-linked|{MALLORY_SUB}")));
    assert_eq!(id["email_verified"], json!(false));

    // Bob's acme address was never verified: his account is not adopted.
    let id = login("acme-linked", "bob@example.com", BOB_UP_PASSWORD).await;
    assert_eq!(id["sub"], json!(format!("oidc|acme-linked|{BOB_SUB}")));
    assert_eq!(user_count(s).await, before + 3);
    assert_eq!(
        identities(s, "auth0|bob").await.as_array().unwrap().len(),
        1
    );

    // A user made from one connection is joined by another's login.
    let carol = login("acme-oidc", CAROL_EMAIL, CAROL_PASSWORD).await;
    let id = login("acme-linked", CAROL_EMAIL, CAROL_PASSWORD).await;
    assert_eq!(id["sub"], carol["sub"]);
    let carol_ids = identities(s, carol["sub"].as_str().unwrap()).await;
    let connections: Vec<&Value> = carol_ids
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["connection"])
        .collect();
    assert_eq!(connections, [&json!("acme-oidc"), &json!("acme-linked")]);
    assert!(carol_ids[0].get("profileData").is_none());
    assert!(carol_ids[1].get("profileData").is_some());
}

#[tokio::test]
async fn mfa_always_asks_for_a_second_factor_after_the_provider() {
    let rig = Rig::one("", "mfa: { policy: always }\n").await;
    let s = &rig.s;
    let browser = s.browser();
    let req = AuthRequest::new("openid").param("connection", "acme-oidc");
    let res = rig
        .through(&browser, &req.url(s), CAROL_EMAIL, CAROL_PASSWORD)
        .await;
    // Not back to the app: the second step, here the enrollment of a first
    // factor for a user without one.
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("Secure your account"), "{page}");
    let tx = hidden_input(&page, "tx").unwrap();
    let res = browser
        .post(s.url("/login/mfa/enroll"))
        .form(&[("tx", tx.as_str()), ("factor", "totp")])
        .send()
        .await
        .unwrap();
    let page = res.text().await.unwrap();
    let secret = page
        .split("id=\"manual-code\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_string();
    let res = browser
        .post(s.url("/login/mfa/enroll/verify"))
        .form(&[
            ("tx", tx.clone()),
            ("factor", "totp".into()),
            ("method_id", hidden_input(&page, "method_id").unwrap()),
            ("auth_session", hidden_input(&page, "auth_session").unwrap()),
            ("code", totp_now(&secret, s.clock_now())),
        ])
        .send()
        .await
        .unwrap();
    let shown = res.text().await.unwrap();
    assert!(shown.contains("id=\"recovery-code\""), "{shown}");
    let res = browser
        .post(s.url("/login/continue"))
        .form(&[("tx", tx.as_str())])
        .send()
        .await
        .unwrap();
    let body = tokens(s, &req, res).await;
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], json!(format!("oidc|acme-oidc|{CAROL_SUB}")));
    assert_eq!(id["amr"], json!(["mfa", "otp"]));

    // The next login at the provider is challenged for that factor.
    let other = s.browser();
    let res = rig
        .through(&other, &req.url(s), CAROL_EMAIL, CAROL_PASSWORD)
        .await;
    let page = res.text().await.unwrap();
    assert!(page.contains("authenticator app"), "{page}");
}

#[tokio::test]
async fn a_blocked_user_is_refused() {
    let rig = Rig::one("    link_by_verified_email: true\n", "").await;
    let s = &rig.s;
    let req = AuthRequest::new("openid").param("connection", "acme-oidc");
    let res = rig
        .through(&s.browser(), &req.url(s), CAROL_EMAIL, CAROL_PASSWORD)
        .await;
    tokens(s, &req, res).await;
    let carol = format!("oidc|acme-oidc|{CAROL_SUB}");
    s.sql(&format!(
        "UPDATE users SET blocked = true WHERE user_id = '{carol}'"
    ))
    .await;
    let res = rig
        .through(&s.browser(), &req.url(s), CAROL_EMAIL, CAROL_PASSWORD)
        .await;
    assert_eq!(
        app_error(&req, &res),
        ("unauthorized".into(), "user is blocked".into())
    );

    // A blocked user found by a verified email is not joined either.
    let text = acme_with(
        s.port,
        &oidc_connection(
            "acme-oidc",
            rig.idp.issuer(),
            "    link_by_verified_email: true\n",
        ),
    );
    let text = text.replace(
        "user_id: \"auth0|alice\", name: Alice Example }",
        "user_id: \"auth0|alice\", name: Alice Example, blocked: true }",
    );
    assert!(text.contains("blocked: true"));
    apply(s, &text).await;
    let res = rig
        .through(&s.browser(), &req.url(s), ALICE, ALICE_UP_PASSWORD)
        .await;
    assert_eq!(app_error(&req, &res).0, "unauthorized");
    assert_eq!(
        identities(s, "auth0|alice").await.as_array().unwrap().len(),
        1
    );
    let failed: Vec<Value> = events(s)
        .await
        .into_iter()
        .filter(|(t, _, _)| t == "f")
        .map(|(_, u, d)| json!({ "user": u, "error": d["error"] }))
        .collect();
    assert_eq!(
        failed,
        [
            json!({ "user": carol, "error": "user is blocked" }),
            json!({ "user": "auth0|alice", "error": "user is blocked" }),
        ]
    );
}
