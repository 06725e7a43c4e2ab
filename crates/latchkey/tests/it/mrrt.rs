//! Multi-resource refresh tokens: a refresh token from a login for one API
//! exchanged for tokens of the other APIs its client's
//! `refresh_token.policies` name (the My Account API among them), with the
//! scopes the policy, the client grant and RBAC leave; refusals that spend
//! nothing; rotation and reuse detection across audiences; DPoP; and the
//! My Account API's Default Policy for a token from another API's login.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dpop_client::Key;
use crate::support::*;

const BILLING: &str = "https://billing.acme.test/";

/// The acme tenant (with the MFA grants) whose `spa` client's refresh
/// tokens reach the My Account API, the billing API (RBAC: Alice may only
/// read invoices) and more of their own API.
fn tenant(port: u16) -> String {
    let me = format!("http://localhost:{port}/me/");
    crate::mfa_api::tenant(port, "")
        .replacen(
            "grant_types: [authorization_code, refresh_token, password,",
            &format!(
                "refresh_token: {{ policies: [\
                 {{ audience: \"{me}\", scope: [read:me:authentication_methods, read:me:factors, \
                 read:me:connected_accounts] }}, \
                 {{ audience: \"{BILLING}\", scope: [read:invoices, pay:invoices] }}, \
                 {{ audience: \"{API}\", scope: [write:things] }}] }},\n      \
                 grant_types: [authorization_code, refresh_token, password,"
            ),
            1,
        )
        .replace(
            "resource_servers: [",
            &format!(
                "roles: [{{ name: accountant, permissions: [\
                 {{ resource_server_identifier: \"{BILLING}\", permission_name: read:invoices }}] }}]\n\
                 resource_servers: [{{ identifier: \"{BILLING}\", scopes: [read:invoices, pay:invoices], \
                 enforce_policies: true }}, "
            ),
        )
        .replace(
            "user_id: \"auth0|alice\",",
            "user_id: \"auth0|alice\", roles: [accountant],",
        )
}

async fn server() -> TestServer {
    TestServer::with_tenants(&[tenant, other_tenant]).await
}

/// What the SDKs ask for by default, and an API scope.
const LOGIN_SCOPE: &str = "openid profile email offline_access read:things";

/// Alice's tokens from a password login for `API`.
async fn login_for_api(s: &TestServer) -> Value {
    s.password_login(LOGIN_SCOPE, Some(API)).await
}

/// The refresh grant of `spa` for `audience` and `scope`, when given.
async fn exchange_for(
    s: &TestServer,
    refresh_token: &str,
    audience: Option<&str>,
    scope: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", "spa"),
        ("refresh_token", refresh_token),
    ];
    form.extend(audience.map(|a| ("audience", a)));
    form.extend(scope.map(|sc| ("scope", sc)));
    s.token(&form).await
}

/// [`exchange_for`], which must succeed: its answer.
async fn exchanged(
    s: &TestServer,
    refresh_token: &str,
    audience: Option<&str>,
    scope: Option<&str>,
) -> Value {
    let (status, body) = exchange_for(s, refresh_token, audience, scope).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn refused_as_unknown(answer: &(StatusCode, Value)) {
    assert_eq!(answer.0, StatusCode::FORBIDDEN, "{}", answer.1);
    assert_eq!(
        answer.1,
        json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})
    );
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_string()
}

#[tokio::test]
async fn a_login_for_one_api_reaches_my_account_with_the_policys_scopes() {
    let s = server().await;
    let me = s.my_account_audience();
    // The login an SDK makes: the hosted page, a code, PKCE.
    let req = AuthRequest::new(LOGIN_SCOPE).audience(API);
    let code = code_for(&s, &s.browser(), &req).await;
    let (status, first) = exchange(&s, &req, &code).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let rt = text(&first, "refresh_token");

    // What auth0-spa-js sends with `useMrrt` for `/me/`: the default scopes
    // and the API's. A scope in the client grant but not in the policy
    // (delete) and one in the policy but not in the grant (connected
    // accounts) are dropped, not refused.
    let asked = "openid profile email offline_access read:me:authentication_methods \
                 read:me:factors delete:me:authentication_methods read:me:connected_accounts";
    let body = exchanged(&s, &rt, Some(&me), Some(asked)).await;
    let granted =
        "openid profile email offline_access read:me:authentication_methods read:me:factors";
    assert_eq!(body["scope"], granted);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600, "the My Account API's lifetime");
    let at = text(&body, "access_token");
    let access = claims(&at);
    assert_eq!(access["aud"], json!([me, format!("{}userinfo", s.issuer)]));
    assert_eq!(access["scope"], granted);
    assert_eq!(access["sub"], "auth0|alice");
    let id = claims(&text(&body, "id_token"));
    assert_eq!(
        (id["aud"].as_str(), id["email"].as_str()),
        (Some("spa"), Some(ALICE))
    );
    // The minted token is a My Account token: it lists Alice's methods.
    let list = s
        .me("GET", "/authentication-methods", Some(&at), None)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let methods = list.body["authentication_methods"].as_array().unwrap();
    assert!(!methods.is_empty(), "{}", list.body);
    // Only with the scopes it was given.
    let factors = s.me("GET", "/factors", Some(&at), None).await;
    assert_eq!(factors.status, StatusCode::OK);
    let id_of = methods[0]["id"].as_str().unwrap().replace('|', "%7C");
    let delete = s
        .me(
            "DELETE",
            &format!("/authentication-methods/{id_of}"),
            Some(&at),
            None,
        )
        .await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN, "{}", delete.body);

    // The rotated token still serves its own API, now with the policy's
    // extra scope as well (Auth0's evaluation), and narrows as asked.
    let rt = text(&body, "refresh_token");
    let body = exchanged(&s, &rt, None, None).await;
    assert_eq!(body["scope"], format!("{LOGIN_SCOPE} write:things"));
    assert_eq!(claims(&text(&body, "access_token"))["aud"][0], API);
    let rt = text(&body, "refresh_token");
    let body = exchanged(
        &s,
        &rt,
        Some(API),
        Some("openid write:things delete:things"),
    )
    .await;
    assert_eq!(body["scope"], "openid write:things");

    // `scope` omitted for My Account: the policy's scopes the grant allows,
    // and the token's OpenID Connect scopes.
    let rt = text(&body, "refresh_token");
    let body = exchanged(&s, &rt, Some(&me), None).await;
    assert_eq!(body["scope"], granted);
}

#[tokio::test]
async fn rbac_narrows_what_the_policy_allows() {
    let s = server().await;
    let rt = text(&login_for_api(&s).await, "refresh_token");
    let body = exchanged(
        &s,
        &rt,
        Some(BILLING),
        Some("openid read:invoices pay:invoices"),
    )
    .await;
    assert_eq!(body["scope"], "openid read:invoices");
    let access = claims(&text(&body, "access_token"));
    assert_eq!(access["aud"][0], BILLING);
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        86_400
    );
    // Asking for what the login had but the other API's policy lacks gets
    // nothing of it: the original API's scopes stay with that API.
    let rt = text(&body, "refresh_token");
    let body = exchanged(&s, &rt, Some(BILLING), Some("openid email read:things")).await;
    assert_eq!(body["scope"], "openid email");
}

#[tokio::test]
async fn audiences_outside_the_policies_are_refused_and_spend_nothing() {
    let s = server().await;
    let me = s.my_account_audience();
    let rt = text(&login_for_api(&s).await, "refresh_token");
    for audience in [
        "https://nowhere.test/",
        "https://127.0.0.1/me/",
        "http://127.0.0.1/me/",
    ] {
        refused_as_unknown(&exchange_for(&s, &rt, Some(audience), None).await);
    }
    // The other tenant's My Account API, asked on its own host, does not
    // know this tenant's token.
    let other = s
        .http()
        .post(format!("http://127.0.0.1:{}/oauth/token", s.port))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", rt.as_str()),
            ("audience", &format!("http://127.0.0.1:{}/me/", s.port)),
        ])
        .send()
        .await
        .unwrap();
    let other = (other.status(), other.json::<Value>().await.unwrap());
    refused_as_unknown(&other);

    // Without policies (the plain acme file), only the token's own API.
    latchkey::tenant::apply::apply_text(&s.state, &acme(s.port))
        .await
        .unwrap();
    refused_as_unknown(&exchange_for(&s, &rt, Some(&me), None).await);
    refused_as_unknown(&exchange_for(&s, &rt, Some(BILLING), None).await);
    // None of this spent the token.
    let body = exchanged(&s, &rt, Some(API), None).await;
    assert_eq!(body["scope"], LOGIN_SCOPE);
}

#[tokio::test]
async fn rotation_and_reuse_detection_span_audiences() {
    let s = server().await;
    let me = s.my_account_audience();
    let first = login_for_api(&s).await;
    let rt1 = text(&first, "refresh_token");
    let body = exchanged(&s, &rt1, Some(&me), None).await;
    let (rt2, me_token) = (text(&body, "refresh_token"), text(&body, "access_token"));
    assert_ne!(rt1, rt2);
    let body = exchanged(&s, &rt2, Some(BILLING), None).await;
    let rt3 = text(&body, "refresh_token");
    let billing_token = text(&body, "access_token");
    // One family: every access token carries the login's grant.
    let grant = |t: &str| {
        claims(t)["jti"]
            .as_str()
            .unwrap()
            .split('.')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(grant(&me_token), grant(&text(&first, "access_token")));
    assert_eq!(grant(&billing_token), grant(&me_token));

    // The first token replayed, for yet another audience: a reuse.
    refused_as_unknown(&exchange_for(&s, &rt1, Some(API), None).await);
    // The whole family is gone, whatever it was exchanged for.
    for audience in [None, Some(me.as_str()), Some(BILLING)] {
        refused_as_unknown(&exchange_for(&s, &rt3, audience, None).await);
    }
    let list = s
        .me("GET", "/authentication-methods", Some(&me_token), None)
        .await;
    assert_eq!(list.status, StatusCode::UNAUTHORIZED, "{}", list.body);
    assert_eq!(
        userinfo(&s, &text(&first, "access_token")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_revoked_family_refuses_every_audience() {
    let s = server().await;
    let me = s.my_account_audience();
    let rt = text(&login_for_api(&s).await, "refresh_token");
    let body = exchanged(&s, &rt, Some(&me), None).await;
    let rt = text(&body, "refresh_token");
    assert_eq!(s.revoke(&rt).await, StatusCode::OK);
    for audience in [None, Some(API), Some(me.as_str()), Some(BILLING)] {
        refused_as_unknown(&exchange_for(&s, &rt, audience, None).await);
    }
}

#[tokio::test]
async fn another_clients_refresh_token_reaches_nothing() {
    let s = server().await;
    let me = s.my_account_audience();
    let rt = text(&login_for_api(&s).await, "refresh_token");
    for audience in [API, me.as_str(), BILLING] {
        let answer = s
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", "web"),
                ("client_secret", "web-secret-value"),
                ("refresh_token", rt.as_str()),
                ("audience", audience),
            ])
            .await;
        refused_as_unknown(&answer);
    }
    // Its own client still has it.
    assert_eq!(
        exchange_for(&s, &rt, Some(&me), None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_dpop_bound_refresh_token_needs_its_key_for_every_audience() {
    let s = server().await;
    let me = s.my_account_audience();
    let key = Key::es256();
    let token_url = s.url("/oauth/token");
    let proof = |key: &Key| key.proof("POST", &token_url, s.clock_now(), None, None);
    let res = s
        .http()
        .post(&token_url)
        .header("DPoP", proof(&key))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("audience", API),
            ("scope", LOGIN_SCOPE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let rt = text(&res.json::<Value>().await.unwrap(), "refresh_token");
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "spa"),
        ("refresh_token", rt.as_str()),
        ("audience", me.as_str()),
    ];
    let exchange = |proof: Option<String>| {
        let mut req = s.http().post(&token_url).form(&form);
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    // Without a proof, or with another key's: refused, and not spent.
    for other in [None, Some(proof(&Key::es256()))] {
        let (status, body) = exchange(other).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_dpop_proof");
    }
    let (status, body) = exchange(Some(proof(&key))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let at = text(&body, "access_token");
    assert_eq!(claims(&at)["cnf"]["jkt"], key.jkt());
    // The My Account token is bound: used with a proof by the same key.
    let url = s.url("/me/v1/authentication-methods");
    let res = s
        .http()
        .get(&url)
        .header("Authorization", format!("DPoP {at}"))
        .header(
            "DPoP",
            key.proof("GET", &url, s.clock_now(), Some(&at), None),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let as_bearer = s
        .me("GET", "/authentication-methods", Some(&at), None)
        .await;
    assert_eq!(as_bearer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn my_accounts_default_policy_asks_a_token_from_another_apis_login_for_its_factor() {
    // Alice has TOTP; the My Account API asks for a second factor.
    let (s, enrolled) = crate::mfa_api::server_with("").await;
    let text_file = tenant(s.port).replace("require_2fa: false", "require_2fa: true");
    latchkey::tenant::apply::apply_text(&s.state, &text_file)
        .await
        .unwrap();
    let me = s.my_account_audience();
    // Her login for the other API needed none.
    let rt = text(&login_for_api(&s).await, "refresh_token");
    let (status, body) = exchange_for(&s, &rt, Some(&me), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "mfa_required");
    assert_eq!(body["mfa_requirements"]["challenge"][0]["type"], "otp");
    // Her code gets the My Account token the exchange asked for.
    let (status, answer) = s
        .token(&[
            ("grant_type", "http://auth0.com/oauth/grant-type/mfa-otp"),
            ("client_id", "spa"),
            ("mfa_token", body["mfa_token"].as_str().unwrap()),
            ("otp", &totp_now(&enrolled.totp_secret, s.clock_now())),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["scope"],
        "openid profile email offline_access read:me:authentication_methods read:me:factors"
    );
    let access = claims(&text(&answer, "access_token"));
    assert_eq!(access["aud"][0], me);
    assert_eq!(access["amr"], json!(["pwd", "mfa", "otp"]));
    // Being asked spent nothing: the token still serves its own API.
    let body = exchanged(&s, &rt, None, None).await;
    assert_eq!(claims(&text(&body, "access_token"))["aud"][0], API);

    // Bob has no factor: let through within the window, as at a login.
    let (status, body) = s
        .token(&[
            (
                "grant_type",
                "http://auth0.com/oauth/grant-type/password-realm",
            ),
            ("client_id", "spa"),
            ("username", crate::mfa_api::BOB_LOGIN.0),
            ("password", crate::mfa_api::BOB_LOGIN.1),
            ("realm", "Partners"),
            ("audience", API),
            ("scope", LOGIN_SCOPE),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body = exchanged(&s, &text(&body, "refresh_token"), Some(&me), None).await;
    assert_eq!(claims(&text(&body, "access_token"))["sub"], "auth0|bob");
}
