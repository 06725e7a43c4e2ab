//! Connected accounts end to end: the My Account API's connect, the browser
//! sent to a real upstream provider and back through `/login/callback`,
//! complete, list and delete, against a second latchkey (the upstream
//! refresh token revoked there when the account goes), `oidc-provider` in
//! each signing algorithm and a GitHub-like server; then what an attacker
//! would try: replays, other users, other clients, other browsers, other
//! tenants, expired transactions, forged states and ID tokens, and
//! providers that are down or answer garbage.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::idp::*;
use crate::support::*;
use crate::upstream::github::{GithubApp, GithubServer, GithubUser};
use crate::upstream::oidc::{OidcClient, OidcConfig, OidcProvider, OidcUser, Tamper};

const SCOPES: &str =
    "create:me:connected_accounts read:me:connected_accounts delete:me:connected_accounts";

/// The app's callback (the SPA's registered one).
fn redirect_uri() -> String {
    format!("{APP}/cb")
}

/// A connect request started, and what the app kept.
pub struct Connecting {
    auth_session: String,
    /// `connect_uri?ticket=…`
    pub browser_url: String,
    verifier: String,
    state: String,
}

pub async fn token(rp: &TestServer) -> String {
    rp.me_token(SCOPES).await
}

/// `POST /connect` for `connection` with a PKCE challenge and `extra`.
async fn connect(rp: &TestServer, token: &str, connection: &str, extra: Value) -> MeResponse {
    let (verifier, challenge) = pkce();
    let mut body = json!({
        "connection": connection, "redirect_uri": redirect_uri(), "state": verifier.clone(),
        "code_challenge": challenge, "code_challenge_method": "S256",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    rp.me(
        "POST",
        "/connected-accounts/connect",
        Some(token),
        Some(body),
    )
    .await
}

/// A connect request for `connection` that must start.
pub async fn start(rp: &TestServer, token: &str, connection: &str) -> Connecting {
    start_with(rp, token, connection, json!({})).await
}

pub async fn start_with(
    rp: &TestServer,
    token: &str,
    connection: &str,
    extra: Value,
) -> Connecting {
    let (verifier, challenge) = pkce();
    let state = verifier.chars().rev().collect::<String>();
    let mut body = json!({
        "connection": connection, "redirect_uri": redirect_uri(), "state": state,
        "code_challenge": challenge, "code_challenge_method": "S256",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = rp
        .me(
            "POST",
            "/connected-accounts/connect",
            Some(token),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ticket = r.body["connect_params"]["ticket"].as_str().unwrap();
    let connect_uri = r.body["connect_uri"].as_str().unwrap();
    Connecting {
        auth_session: r.body["auth_session"].as_str().unwrap().to_string(),
        browser_url: format!("{connect_uri}?ticket={ticket}"),
        verifier,
        state,
    }
}

/// The browser brings the ticket: where latchkey sends it (the provider).
async fn to_provider(browser: &reqwest::Client, c: &Connecting) -> String {
    let res = browser.get(&c.browser_url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    location(&res)
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

/// Ticket → the upstream latchkey's login as Bob → its redirect to our
/// callback (not followed).
async fn at_idp(browser: &reqwest::Client, c: &Connecting) -> String {
    let authorize = to_provider(browser, c).await;
    let back = login_at_idp(browser, &authorize, BOB, BOB_PASSWORD).await;
    assert_eq!(back.status(), StatusCode::FOUND);
    location(&back)
}

/// Our callback, visited by `browser`: its answer.
pub async fn callback(browser: &reqwest::Client, url: &str) -> reqwest::Response {
    browser.get(url).send().await.unwrap()
}

/// The whole browser part through the upstream latchkey: the app's URL the
/// browser ends on.
pub async fn through_idp(browser: &reqwest::Client, c: &Connecting) -> String {
    let cb = at_idp(browser, c).await;
    let res = callback(browser, &cb).await;
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    location(&res)
}

/// The `connect_code` of an app URL, checking its `state`.
pub fn connect_code(c: &Connecting, app_url: &str) -> String {
    assert!(app_url.starts_with(&redirect_uri()), "{app_url}");
    assert_eq!(
        query_param(app_url, "state"),
        Some(c.state.clone()),
        "{app_url}"
    );
    query_param(app_url, "connect_code").unwrap_or_else(|| panic!("no connect_code: {app_url}"))
}

pub async fn complete(rp: &TestServer, token: &str, body: Value) -> MeResponse {
    rp.me(
        "POST",
        "/connected-accounts/complete",
        Some(token),
        Some(body),
    )
    .await
}

pub fn complete_body(c: &Connecting, code: &str) -> Value {
    json!({"auth_session": c.auth_session, "connect_code": code,
           "redirect_uri": redirect_uri(), "code_verifier": c.verifier})
}

pub async fn accounts(rp: &TestServer, token: &str) -> Vec<Value> {
    let r = rp
        .me("GET", "/connected-accounts/accounts", Some(token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["accounts"].as_array().unwrap().clone()
}

/// A 400 saying the auth_session names no live transaction of the caller.
fn unknown_session(r: &MeResponse) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("auth_session is invalid"), "{detail}");
}

/// Connect transactions the sweep removes now.
async fn swept_transactions(rp: &TestServer) -> u64 {
    let swept = latchkey::services::sweep::sweep_all(&rp.state)
        .await
        .unwrap();
    swept.connect_transactions
}

/// An error page (not a redirect to the app).
async fn is_page(res: reqwest::Response, says: &str) {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
    let html = res.text().await.unwrap();
    assert!(html.contains(says), "{html}");
}

/// The upstream tokens of the tenant's only account, opened with the master
/// key as latchkey would.
pub async fn stored_tokens(rp: &TestServer, user_id: &str) -> (String, Option<String>) {
    let tenant = rp
        .state
        .store
        .tenant_by_name("acme")
        .await
        .unwrap()
        .unwrap();
    let rows = rp
        .state
        .store
        .connected_accounts(&tenant.id, user_id, &[], None, 10)
        .await
        .unwrap();
    let row = &rows[0];
    let open = |kind: &str, sealed: &str| {
        let context = format!(
            "connected-account:{}:{}:{}:{}:{kind}",
            tenant.id, row.user_id, row.connection, row.subject
        );
        String::from_utf8(rp.state.sealer.open(&context, sealed).unwrap()).unwrap()
    };
    let at = open("access_token", row.tokens.access_token.as_deref().unwrap());
    let rt = row
        .tokens
        .refresh_token
        .as_deref()
        .map(|s| open("refresh_token", s));
    (at, rt)
}

/// A refresh at the upstream latchkey with `refresh_token`, as the rp client.
pub async fn idp_refresh(pair: &Pair, refresh_token: &str) -> (StatusCode, Value) {
    let res = browser()
        .post(format!("{}oauth/token", pair.idp_issuer()))
        .basic_auth("rp", Some(IDP_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn connect_complete_list_and_delete_against_a_second_latchkey() {
    let pair = Pair::start(|_| String::new()).await;
    let rp = &pair.rp;
    let token = token(rp).await;

    let r = rp
        .me("GET", "/connected-accounts/connections", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"connections": [{"name": "idp", "strategy": "oidc", "scopes": ["openid", "profile", "email"]}]})
    );

    let c = start_with(
        rp,
        &token,
        "idp",
        json!({"scopes": ["offline_access"], "authorization_params": {"login_hint": BOB, "prompt": "login"}}),
    )
    .await;
    assert!(
        c.browser_url
            .starts_with(&format!("{}connected-accounts/connect?ticket=", rp.issuer))
    );
    let browser = browser();
    let authorize = to_provider(&browser, &c).await;
    assert!(
        authorize.starts_with(&format!("{}authorize?", pair.idp_issuer())),
        "{authorize}"
    );
    assert_eq!(query_param(&authorize, "login_hint").as_deref(), Some(BOB));
    assert_eq!(
        query_param(&authorize, "redirect_uri"),
        Some(pair.callback())
    );
    assert_eq!(
        query_param(&authorize, "scope").as_deref(),
        Some("openid profile email offline_access")
    );
    // latchkey's own state and PKCE, never the app's.
    assert_ne!(query_param(&authorize, "state"), Some(c.state.clone()));
    assert_eq!(
        query_param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let back = login_at_idp(&browser, &authorize, BOB, BOB_PASSWORD).await;
    let cb = location(&back);
    assert!(cb.starts_with(&pair.callback()), "{cb}");
    let res = callback(&browser, &cb).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let cleared = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cleared.starts_with("latchkey_connect=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let code = connect_code(&c, &location(&res));
    assert!(code.len() <= 46);

    let r = complete(rp, &token, complete_body(&c, &code)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert!(
        id.starts_with("cac_") && id[4..].bytes().all(|b| b.is_ascii_alphanumeric()),
        "{id}"
    );
    assert_eq!(r.body["connection"], "idp");
    assert_eq!(r.body["access_type"], "offline");
    assert_eq!(
        r.body["scopes"],
        json!(["openid", "profile", "email", "offline_access"])
    );
    assert!(r.body["created_at"].as_str().unwrap().ends_with('Z'));
    let listed = accounts(rp, &token).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["scopes"], r.body["scopes"]);

    // The upstream tokens are kept sealed, never in clear.
    let (at, rt) = stored_tokens(rp, "auth0|alice").await;
    let rt = rt.expect("a refresh token");
    let dump = rp.database_dump().await;
    for secret in [&at, &rt, &c.auth_session, &code] {
        assert!(!dump.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    // They are Bob's at the upstream, for the rp client.
    let grant = claims(&at)["jti"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let idp_tenant = pair
        .idp
        .state
        .store
        .tenant_by_name("idp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims(&at)["sub"], "auth0|bob");
    assert!(
        !pair
            .idp
            .state
            .store
            .grant_revoked(&idp_tenant.id, &grant)
            .await
            .unwrap()
    );

    // Deleting forgets the tokens and revokes them at the upstream: its
    // refresh token no longer refreshes there.
    let path = format!("/connected-accounts/accounts/{id}");
    let r = rp.me("DELETE", &path, Some(&token), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(accounts(rp, &token).await.is_empty());
    assert!(
        pair.idp
            .state
            .store
            .grant_revoked(&idp_tenant.id, &grant)
            .await
            .unwrap()
    );
    let (status, body) = idp_refresh(&pair, &rt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant")),
        "{body}"
    );
    let r = rp.me("DELETE", &path, Some(&token), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.error_type();
}

#[tokio::test]
async fn tickets_codes_and_sessions_are_single_use_and_bound_to_their_user_and_app() {
    let pair = Pair::start(|_| String::new()).await;
    let rp = &pair.rp;
    // A second application with the same grant, for the same user.
    let text = acme_with(rp.port, &idp_connection(pair.idp.port))
        .replace("enabled_clients: [spa]", "enabled_clients: [spa, spa2]")
        .replace(
            "client_grants:\n",
            &format!(
                "  - {{ client_id: spa2, app_type: spa, callbacks: [\"{APP}/cb\"], grant_types: [password] }}\n\
                 client_grants:\n  - {{ client_id: spa2, audience: \"http://localhost:{}/me/\", subject_type: user, \
                 scope: [create:me:connected_accounts] }}\n",
                rp.port
            ),
        );
    latchkey::tenant::apply::apply_text(&rp.state, &text)
        .await
        .unwrap();
    let alice = token(rp).await;
    let browser = browser();

    let c1 = start(rp, &alice, "idp").await;
    let c2 = start(rp, &alice, "idp").await;
    let cb1 = at_idp(&browser, &c1).await;
    // The ticket was used: once more, and latchkey does not send the
    // browser anywhere.
    is_page(
        browser.get(&c1.browser_url).send().await.unwrap(),
        "expired or has been used",
    )
    .await;
    let res = callback(&browser, &cb1).await;
    let code1 = connect_code(&c1, &location(&res));
    let code2 = connect_code(&c2, &through_idp(&browser, &c2).await);
    // The callback once more: nothing.
    is_page(callback(&browser, &cb1).await, "expired or has been used").await;

    // A connect_code with another transaction's auth_session.
    let r = complete(rp, &alice, complete_body(&c2, &code1)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("connect_code is invalid")
    );
    // Another user, or the same user through another application: as if
    // the auth_session did not exist.
    let bob = rp
        .me_token_for(
            "bob@example.com",
            "B0b-has-a-long-password",
            Some("Partners"),
            SCOPES,
        )
        .await;
    let r = complete(rp, &bob, complete_body(&c1, &code1)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("auth_session is invalid"),
        "{}",
        r.body
    );
    let (status, body) = rp
        .token(&[
            ("grant_type", "password"),
            ("client_id", "spa2"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("audience", &rp.my_account_audience()),
            ("scope", "create:me:connected_accounts"),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let other_app = body["access_token"].as_str().unwrap();
    let r = complete(rp, other_app, complete_body(&c1, &code1)).await;
    unknown_session(&r);
    // The app's PKCE verifier and redirect URI are checked.
    let mut wrong = complete_body(&c1, &code1);
    wrong["code_verifier"] = json!(pkce().0);
    let r = complete(rp, &alice, wrong).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["validation_errors"][0]["pointer"], "/code_verifier");
    let mut missing = complete_body(&c1, &code1);
    missing.as_object_mut().unwrap().remove("code_verifier");
    let r = complete(rp, &alice, missing).await;
    assert_eq!(r.body["validation_errors"][0]["pointer"], "/code_verifier");
    let mut elsewhere = complete_body(&c1, &code1);
    elsewhere["redirect_uri"] = json!("https://evil.test/cb");
    let r = complete(rp, &alice, elsewhere).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["validation_errors"][0]["pointer"], "/redirect_uri");
    // Three wrong attempts so far on c1: the right one still works, once.
    let r = complete(rp, &alice, complete_body(&c1, &code1)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = complete(rp, &alice, complete_body(&c1, &code1)).await;
    unknown_session(&r);

    // Five wrong connect codes end a transaction.
    for _ in 0..5 {
        let r = complete(rp, &alice, complete_body(&c2, "not-the-code")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    let r = complete(rp, &alice, complete_body(&c2, &code2)).await;
    unknown_session(&r);
    // Bob's upstream account was connected once, the same account.
    assert_eq!(accounts(rp, &alice).await.len(), 1);
}

#[tokio::test]
async fn tickets_callbacks_and_connect_codes_expire() {
    let pair = Pair::start(|_| String::new()).await;
    let rp = &pair.rp;
    let alice = token(rp).await;
    let browser = browser();
    // A ticket waits five minutes for the browser.
    let c = start(rp, &alice, "idp").await;
    rp.clock.advance(301);
    is_page(browser.get(&c.browser_url).send().await.unwrap(), "expired").await;
    let alice = token(rp).await;
    // The provider has 15 minutes to call back.
    let c = start(rp, &alice, "idp").await;
    let cb = at_idp(&browser, &c).await;
    rp.clock.advance(901);
    is_page(callback(&browser, &cb).await, "expired").await;
    let alice = token(rp).await;
    // A connect code waits five minutes for complete.
    let c = start(rp, &alice, "idp").await;
    let code = connect_code(&c, &through_idp(&browser, &c).await);
    rp.clock.advance(301);
    let alice = token(rp).await;
    let r = complete(rp, &alice, complete_body(&c, &code)).await;
    unknown_session(&r);
    assert!(accounts(rp, &alice).await.is_empty());
    // What expired is swept.
    assert_eq!(swept_transactions(rp).await, 3);
}

#[tokio::test]
async fn a_forged_state_or_another_browser_at_the_callback_changes_nothing() {
    let pair = Pair::start(|_| String::new()).await;
    let rp = &pair.rp;
    let alice = token(rp).await;
    let browser = browser();
    let c = start(rp, &alice, "idp").await;
    let cb = at_idp(&browser, &c).await;
    let state = query_param(&cb, "state").unwrap();
    let code = query_param(&cb, "code").unwrap();
    let with = |state: &str, code: &str| {
        format!(
            "{}?code={}&state={}",
            pair.callback(),
            urlencode(code),
            urlencode(state)
        )
    };
    // Altered, missing, oversized states name no transaction.
    let mut altered = state.clone();
    altered.replace_range(0..1, if state.starts_with('A') { "B" } else { "A" });
    for url in [
        with(&altered, &code),
        format!("{}?code={}", pair.callback(), urlencode(&code)),
        with(&"A".repeat(5000), &code),
        pair.callback(),
    ] {
        is_page(callback(&browser, &url).await, "expired or has been used").await;
    }
    // Another browser (no cookie, or another one) cannot use this state,
    // whatever code it brings.
    let stranger = self::browser();
    is_page(callback(&stranger, &cb).await, "another browser").await;
    let res = stranger
        .get(&cb)
        .header("cookie", "latchkey_connect=forged-value")
        .send()
        .await
        .unwrap();
    is_page(res, "another browser").await;
    // The right browser still completes, here as providers answering by
    // form_post send it (a POST of the same fields).
    let res = browser
        .post(pair.callback())
        .form(&[("code", code.as_str()), ("state", state.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let code = connect_code(&c, &location(&res));
    let r = complete(rp, &alice, complete_body(&c, &code)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// More connections to the same upstream: another client there (`idp-b`),
/// one not active for connected accounts, one only the `web` app may use.
fn more_connections(idp_port: u16) -> String {
    let issuer = format!("http://127.0.0.1:{idp_port}/");
    format!(
        r#"  - name: idp-b
    strategy: oidc
    options: {{ issuer: "{issuer}", client_id: other-rp, client_secret_env: IDP_CLIENT_SECRET }}
    connected_accounts: {{ active: true }}
    enabled_clients: [spa]
  - name: idp-off
    strategy: oidc
    options: {{ issuer: "{issuer}", client_id: rp, client_secret_env: IDP_CLIENT_SECRET }}
    connected_accounts: {{ active: false }}
    enabled_clients: [spa]
  - name: idp-web
    strategy: oidc
    options: {{ issuer: "{issuer}", client_id: rp, client_secret_env: IDP_CLIENT_SECRET }}
    connected_accounts: {{ active: true }}
    enabled_clients: [web]
"#
    )
}

/// Connects Bob's upstream account through `connection` for the user of
/// `token`: the answer of complete.
pub async fn connect_bob(rp: &TestServer, token: &str, connection: &str) -> MeResponse {
    let browser = browser();
    let c = start(rp, token, connection).await;
    let code = connect_code(&c, &through_idp(&browser, &c).await);
    complete(rp, token, complete_body(&c, &code)).await
}

#[tokio::test]
async fn what_is_offered_what_is_refused_and_whose_accounts_are_listed() {
    let pair = Pair::start(more_connections).await;
    let rp = &pair.rp;
    // The other tenant of the server has a connection of its own.
    let other = other_tenant(rp.port).replace(
        "connections: [{ name: Username-Password-Authentication }]",
        &format!(
            "connections:\n  - {{ name: Username-Password-Authentication }}\n  - {{ name: elsewhere, strategy: oidc, \
             options: {{ issuer: \"{}\", client_id: rp, client_secret_env: IDP_CLIENT_SECRET }}, \
             connected_accounts: {{ active: true }}, enabled_clients: [spa] }}",
            pair.idp_issuer()
        ),
    );
    latchkey::tenant::apply::apply_text(&rp.state, &other)
        .await
        .unwrap();
    let alice = token(rp).await;
    // Offered: active and enabled for this app, in the file's order, paged.
    let names = |r: &MeResponse| -> Vec<String> {
        r.body["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let get = |path: &'static str| rp.me("GET", path, Some(&alice), None);
    let r = get("/connected-accounts/connections").await;
    assert_eq!(names(&r), ["idp", "idp-b"]);
    let r = get("/connected-accounts/connections?take=1").await;
    assert_eq!(
        (names(&r), r.body["next"].as_str()),
        (vec!["idp".to_string()], Some("idp"))
    );
    let r = get("/connected-accounts/connections?take=1&from=idp").await;
    assert_eq!(names(&r), ["idp-b"]);
    assert!(r.body.get("next").is_none());
    let r = get("/connected-accounts/connections?from=idp-web").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["validation_errors"][0]["field"], "from");

    // Not active, another app's, unknown, the database, another tenant's:
    // one answer.
    for name in [
        "idp-off",
        "idp-web",
        "nope",
        "Username-Password-Authentication",
        "elsewhere",
    ] {
        let r = connect(rp, &alice, name, json!({})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(
            r.body["detail"],
            format!("The connection {name} is not available for connected accounts."),
            "{name}"
        );
    }
    // The browser goes back only to the app's own callbacks.
    let r = connect(
        rp,
        &alice,
        "idp",
        json!({"redirect_uri": "https://evil.test/cb"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["validation_errors"][0]["pointer"], "/redirect_uri");

    // Two accounts, listed page by page and by connection. (The clock
    // moves on a second now and then: the tenant's limit is 25 a second.)
    rp.clock.advance(1);
    let first = connect_bob(rp, &alice, "idp").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    rp.clock.advance(1);
    let second = connect_bob(rp, &alice, "idp-b").await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    rp.clock.advance(1);
    let r = get("/connected-accounts/accounts?take=1").await;
    assert_eq!(r.body["accounts"][0]["id"], first.body["id"]);
    let next = r.body["next"].as_str().unwrap().to_string();
    let r = rp
        .me(
            "GET",
            &format!("/connected-accounts/accounts?take=1&from={next}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.body["accounts"][0]["id"], second.body["id"]);
    assert!(r.body.get("next").is_none(), "{}", r.body);
    for query in [
        "connection=idp-b",
        "connection=%5B%22idp-b%22%5D",
        "connection=idp-b&connection=x",
    ] {
        let r = rp
            .me(
                "GET",
                &format!("/connected-accounts/accounts?{query}"),
                Some(&alice),
                None,
            )
            .await;
        let listed = r.body["accounts"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "{query}");
        assert_eq!(listed[0]["connection"], "idp-b", "{query}");
    }
    let r = get("/connected-accounts/accounts?from=garbage").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // The same upstream account again: the same account, its tokens new.
    rp.clock.advance(1);
    let again = connect_bob(rp, &alice, "idp").await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    // Another user cannot take it (409), nor see or delete Alice's.
    rp.clock.advance(1);
    let bob = rp
        .me_token_for(
            "bob@example.com",
            "B0b-has-a-long-password",
            Some("Partners"),
            SCOPES,
        )
        .await;
    let r = connect_bob(rp, &bob, "idp").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.error_type(), "https://auth0.com/api-errors#A0E-409-0002");
    assert!(accounts(rp, &bob).await.is_empty());
    let path = format!(
        "/connected-accounts/accounts/{}",
        first.body["id"].as_str().unwrap()
    );
    let r = rp.me("DELETE", &path, Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(accounts(rp, &alice).await.len(), 2);

    // A user who goes takes their accounts and transactions along.
    let _pending = start(rp, &alice, "idp").await;
    rp.sql("DELETE FROM users WHERE user_id = 'auth0|alice'")
        .await;
    let tenant = rp
        .state
        .store
        .tenant_by_name("acme")
        .await
        .unwrap()
        .unwrap();
    let left = rp
        .state
        .store
        .connected_accounts(&tenant.id, "auth0|alice", &[], None, 10)
        .await
        .unwrap();
    assert!(left.is_empty());
    assert_eq!(swept_transactions(rp).await, 0, "nothing left to sweep");
}

#[tokio::test]
async fn a_ticket_is_good_on_its_own_tenant_only() {
    let pair = Pair::start(|_| String::new()).await;
    let rp = &pair.rp;
    let alice = token(rp).await;
    let c = start(rp, &alice, "idp").await;
    // The other tenant on the same server is 127.0.0.1:PORT.
    let there = c.browser_url.replace(
        &format!("localhost:{}", rp.port),
        &format!("127.0.0.1:{}", rp.port),
    );
    is_page(browser().get(&there).send().await.unwrap(), "expired").await;
    // Untouched, it still works where it was made.
    let code = connect_code(&c, &through_idp(&browser(), &c).await);
    let r = complete(rp, &alice, complete_body(&c, &code)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

pub const OP_USER: &str = "carol@op.test";
pub const OP_PASSWORD: &str = "Carol-at-the-op-2026";
const ALGS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// The first server with an `oidc-provider` as upstream: a client there per
/// signing algorithm, a connection here per client (`op-RS256`, …), and
/// `extra` connections given the provider's issuer.
async fn with_oidc_provider(extra: impl Fn(&str) -> String) -> (TestServer, OidcProvider) {
    let rp = TestServer::with_tenants(&[]).await;
    let callback = format!("http://localhost:{}/login/callback", rp.port);
    let op = OidcProvider::start(OidcConfig {
        clients: ALGS
            .iter()
            .map(|alg| {
                OidcClient::confidential(&format!("client-{alg}"), IDP_SECRET, &callback).alg(alg)
            })
            .collect(),
        users: vec![OidcUser::new("carol-sub", OP_USER, OP_PASSWORD)],
        now: Some(START),
        ..OidcConfig::default()
    })
    .await;
    let mut connections = String::new();
    for alg in ALGS {
        connections += &format!(
            "  - name: op-{alg}\n    strategy: oidc\n    options: {{ issuer: \"{}\", client_id: client-{alg}, \
             client_secret_env: IDP_CLIENT_SECRET, scope: [openid, email], timeout_seconds: 2 }}\n    \
             connected_accounts: {{ active: true }}\n    enabled_clients: [spa]\n",
            op.issuer()
        );
    }
    connections += &extra(op.issuer());
    latchkey::tenant::apply::apply_text(&rp.state, &acme_with(rp.port, &connections))
        .await
        .unwrap();
    (rp, op)
}

/// Through the provider's login form: the URL our callback sends the
/// browser to (the app's).
pub async fn through_op(op: &OidcProvider, browser: &reqwest::Client, c: &Connecting) -> String {
    let cb = op
        .login(browser, &c.browser_url, OP_USER, OP_PASSWORD)
        .await;
    let res = callback(browser, &cb).await;
    assert_eq!(res.status(), StatusCode::FOUND, "{:?}", res.text().await);
    location(&res)
}

/// The app heard `error` with a description containing `says`, with its
/// state; the transaction is gone and no account was made.
async fn app_heard(
    rp: &TestServer,
    token: &str,
    c: &Connecting,
    app_url: &str,
    error: &str,
    says: &str,
) {
    assert!(app_url.starts_with(&redirect_uri()), "{app_url}");
    assert_eq!(
        query_param(app_url, "error").as_deref(),
        Some(error),
        "{app_url}"
    );
    let description = query_param(app_url, "error_description").unwrap();
    assert!(description.contains(says), "{description}");
    assert_eq!(query_param(app_url, "state"), Some(c.state.clone()));
    assert!(query_param(app_url, "connect_code").is_none());
    let r = complete(rp, token, complete_body(c, "whatever")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("auth_session is invalid"),
        "{}",
        r.body
    );
    assert!(accounts(rp, token).await.is_empty());
}

/// The app heard that the provider's answer could not be verified.
async fn unverified(rp: &TestServer, token: &str, c: &Connecting, app_url: &str) {
    app_heard(
        rp,
        token,
        c,
        app_url,
        "access_denied",
        "could not be verified",
    )
    .await;
}

#[tokio::test]
async fn oidc_provider_id_tokens_in_each_signing_algorithm() {
    let (rp, op) = with_oidc_provider(|_| String::new()).await;
    let alice = token(&rp).await;
    let browser = browser();
    for alg in ALGS {
        let c = start(&rp, &alice, &format!("op-{alg}")).await;
        let code = connect_code(&c, &through_op(&op, &browser, &c).await);
        let r = complete(&rp, &alice, complete_body(&c, &code)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{alg}: {}", r.body);
        assert_eq!(r.body["connection"], format!("op-{alg}"));
    }
    assert_eq!(accounts(&rp, &alice).await.len(), 4);
}

#[tokio::test]
async fn id_tokens_that_must_not_be_believed_connect_nothing() {
    let (rp, op) = with_oidc_provider(|_| String::new()).await;
    let alice = token(&rp).await;
    let browser = browser();
    for how in [
        Tamper::Nonce,
        Tamper::Audience,
        Tamper::Issuer,
        Tamper::Expired,
        Tamper::Signature,
        Tamper::ForeignKey,
        Tamper::AlgNone,
        Tamper::AlgConfusion,
    ] {
        rp.clock.advance(1);
        let c = start(&rp, &alice, "op-RS256").await;
        op.tamper_id_tokens(how, 1).await;
        let app = through_op(&op, &browser, &c).await;
        unverified(&rp, &alice, &c, &app).await;
    }
}

#[tokio::test]
async fn a_provider_that_refuses_fails_or_answers_garbage_connects_nothing() {
    let hostile = crate::upstream_client::hostile_server().await;
    let (rp, op) = with_oidc_provider(|issuer| {
        format!(
            "  - name: op-closed\n    strategy: oidc\n    options: {{ issuer: \"{issuer}\", client_id: client-RS256, \
             client_secret_env: IDP_CLIENT_SECRET, token_endpoint: \"http://127.0.0.1:9/token\" }}\n    \
             connected_accounts: {{ active: true }}\n    enabled_clients: [spa]\n  \
             - name: op-garbage\n    strategy: oidc\n    options: {{ issuer: \"{issuer}\", client_id: client-RS256, \
             client_secret_env: IDP_CLIENT_SECRET, token_endpoint: \"http://127.0.0.1:{hostile}/garbage/token\" }}\n    \
             connected_accounts: {{ active: true }}\n    enabled_clients: [spa]\n  \
             - name: html\n    strategy: oidc\n    options: {{ issuer: \"http://127.0.0.1:{hostile}/html\", client_id: x, \
             client_secret_env: IDP_CLIENT_SECRET }}\n    connected_accounts: {{ active: true }}\n    enabled_clients: [spa]\n"
        )
    })
    .await;
    let alice = token(&rp).await;
    let browser = browser();

    // The user says no at the provider: the app hears the provider's error.
    let c = start(&rp, &alice, "op-RS256").await;
    let cb = op.cancel_login(&browser, &c.browser_url).await;
    let app = location(&callback(&browser, &cb).await);
    app_heard(&rp, &alice, &c, &app, "access_denied", "").await;

    // The provider's token endpoint fails, or cannot be reached at all.
    let c = start(&rp, &alice, "op-RS256").await;
    op.fail_token_endpoint(503, 1).await;
    let app = through_op(&op, &browser, &c).await;
    app_heard(
        &rp,
        &alice,
        &c,
        &app,
        "temporarily_unavailable",
        "could not be reached",
    )
    .await;
    rp.clock.advance(1);
    let c = start(&rp, &alice, "op-closed").await;
    let app = through_op(&op, &browser, &c).await;
    app_heard(
        &rp,
        &alice,
        &c,
        &app,
        "temporarily_unavailable",
        "could not be reached",
    )
    .await;

    // Garbage from the token endpoint, or from discovery (then the browser
    // goes back at once, before the provider).
    let c = start(&rp, &alice, "op-garbage").await;
    let app = through_op(&op, &browser, &c).await;
    unverified(&rp, &alice, &c, &app).await;
    rp.clock.advance(1);
    let c = start(&rp, &alice, "html").await;
    let app = to_provider(&browser, &c).await;
    unverified(&rp, &alice, &c, &app).await;
}

/// A JWKS without the upstream's keys, counting how often it is fetched.
async fn empty_jwks() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let hits = std::sync::Arc::new(AtomicU64::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(json!({"keys": []})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

#[tokio::test]
async fn a_second_latchkey_signing_with_keys_not_in_the_configured_jwks() {
    // The connection names a JWKS without the upstream's keys: its ID
    // token names a key the set lacks. The set is fetched again for such a
    // token at most once a minute, and after an hour in any case.
    use std::sync::atomic::Ordering;
    let pair = Pair::start(|_| String::new()).await;
    let rp = &pair.rp;
    let (jwks, fetched) = empty_jwks().await;
    let text = acme_with(
        rp.port,
        &(idp_connection(pair.idp.port)
            + &format!(
                "  - name: idp-wrong-keys\n    strategy: oidc\n    options: {{ issuer: \"{}\", client_id: rp, \
                 client_secret_env: IDP_CLIENT_SECRET, jwks_uri: \"{jwks}\" }}\n    \
                 connected_accounts: {{ active: true }}\n    enabled_clients: [spa]\n",
                pair.idp_issuer()
            )),
    );
    latchkey::tenant::apply::apply_text(&rp.state, &text)
        .await
        .unwrap();
    let browser = browser();
    let refused = |advance: i64, fetches: u64| {
        let browser = &browser;
        let fetched = fetched.clone();
        async move {
            rp.clock.advance(advance);
            let alice = token(rp).await;
            let c = start(rp, &alice, "idp-wrong-keys").await;
            let app = through_idp(browser, &c).await;
            unverified(rp, &alice, &c, &app).await;
            assert_eq!(fetched.load(Ordering::SeqCst), fetches, "after {advance} s");
        }
    };
    // Fetched: the set is as fresh as it gets.
    refused(0, 1).await;
    // A minute later the unknown key makes one refetch; at once again, none.
    refused(61, 2).await;
    refused(1, 2).await;
    // An hour later the set is stale: fetched, and not again at once.
    refused(3601, 3).await;
    // The same upstream with its own keys connects.
    let alice = token(rp).await;
    let r = connect_bob(rp, &alice, "idp").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn github_accounts_connect_and_are_revoked_through_github_s_api() {
    let rp = TestServer::with_tenants(&[]).await;
    let callback_url = format!("http://localhost:{}/login/callback", rp.port);
    let gh = GithubServer::start(
        vec![GithubApp::new("Iv1.latchkey", IDP_SECRET, &callback_url).expiring()],
        vec![GithubUser::new(583231, "octocat", "octo@octo.test", false).name("The Octocat")],
        std::sync::Arc::new(rp.clock.clone()),
    )
    .await;
    gh.sign_in("octocat");
    let connection = format!(
        "  - name: github\n    strategy: github\n    options: {{ client_id: Iv1.latchkey, client_secret_env: IDP_CLIENT_SECRET, \
         authorizationURL: \"{}\", tokenURL: \"{}\", userInfoURL: \"{}\" }}\n    \
         connected_accounts: {{ active: true }}\n    enabled_clients: [spa]\n",
        gh.url("/login/oauth/authorize"),
        gh.url("/login/oauth/access_token"),
        gh.url("/user")
    );
    latchkey::tenant::apply::apply_text(&rp.state, &acme_with(rp.port, &connection))
        .await
        .unwrap();
    let alice = token(&rp).await;
    let browser = browser();
    let c = start_with(&rp, &alice, "github", json!({"scopes": ["repo"]})).await;
    let cb = gh.authorize(&browser, &c.browser_url).await;
    let res = callback(&browser, &cb).await;
    let code = connect_code(&c, &location(&res));
    let r = complete(&rp, &alice, complete_body(&c, &code)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(
        r.body["expires_at"].is_string(),
        "GitHub says when its refresh token ends: {}",
        r.body
    );
    let (_, rt) = stored_tokens(&rp, "auth0|alice").await;
    assert!(rt.is_some());
    let id = r.body["id"].as_str().unwrap();
    let res = rp
        .me(
            "DELETE",
            &format!("/connected-accounts/accounts/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(gh.count("applications/grant"), 1);
}
