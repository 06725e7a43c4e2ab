//! The response types beside `code` (`id_token`, `token` and their hybrid
//! combinations): what comes back where in each response mode, the ID
//! token's `nonce`, `at_hash` and `c_hash` (checked against a computation of
//! their own here), the `implicit` grant type a client needs, errors in the
//! fragment or the posted form, and discovery.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

const WEB_CALLBACK: &str = "https://web.acme.test/callback";

/// The usual tenant, with a SPA and a regular web app that may use the
/// implicit and hybrid flows.
fn tenant(port: u16) -> String {
    acme(port).replacen(
        "clients:\n",
        &format!(
            "clients:\n  - {{ client_id: spa-implicit, app_type: spa, callbacks: [\"{APP}/cb\"],\n      \
             web_origins: [\"{APP}\"], grant_types: [implicit, authorization_code, refresh_token] }}\n  \
             - {{ client_id: web-implicit, app_type: regular_web, client_secret: \"web-implicit-secret\",\n      \
             callbacks: [\"{WEB_CALLBACK}\"], grant_types: [implicit, authorization_code] }}\n"
        ),
        1,
    )
}

async fn server() -> TestServer {
    TestServer::with_tenants(&[tenant, other_tenant]).await
}

/// OpenID Connect's `at_hash`/`c_hash` for RS256, computed here: the left
/// half of the value's SHA-256, base64url.
fn left_half_hash(value: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

/// An `/authorize` URL with these parameters.
/// The parameters of a redirect's fragment, after checking it goes to `to`
/// with nothing in the query.
fn fragment(res: &reqwest::Response, to: &str) -> HashMap<String, String> {
    assert_eq!(res.status(), StatusCode::FOUND);
    let loc = res.headers()["location"].to_str().unwrap();
    let (base, frag) = loc.split_once('#').unwrap_or_else(|| panic!("{loc}"));
    assert_eq!(base, to, "{loc}");
    url::form_urlencoded::parse(frag.as_bytes())
        .into_owned()
        .collect()
}

/// The hidden inputs of a self-posting form, after checking where it posts.
fn posted_form(html: &str, to: &str) -> HashMap<String, String> {
    assert!(
        html_unescape(html).contains(&format!("action=\"{to}\"")),
        "{html}"
    );
    [
        "code",
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "id_token",
        "state",
        "error",
        "error_description",
        "refresh_token",
    ]
    .into_iter()
    .filter_map(|k| hidden_input(html, k).map(|v| (k.to_string(), v)))
    .collect()
}

#[tokio::test]
async fn id_token_token_comes_back_in_the_fragment_with_its_at_hash() {
    let s = server().await;
    let browser = s.browser();
    let url = authorize_url(
        &s,
        &[
            // The words in another order than discovery lists them.
            ("response_type", "token id_token"),
            ("client_id", "spa-implicit"),
            ("redirect_uri", &format!("{APP}/cb")),
            ("scope", "openid profile email offline_access"),
            ("state", "st-1"),
            ("nonce", "n-0S6_WzA2Mj"),
        ],
    );
    let res = sign_in_alice(&s, &browser, &url).await;
    let got = fragment(&res, &format!("{APP}/cb"));
    assert_eq!(got["state"], "st-1");
    assert_eq!(got["token_type"], "Bearer");
    assert_eq!(got["scope"], "openid profile email");
    assert!(got["expires_in"].parse::<i64>().unwrap() > 0);
    assert!(!got.contains_key("code"), "{got:?}");
    assert!(
        !got.contains_key("refresh_token"),
        "no refresh token from the authorization endpoint: {got:?}"
    );
    let at = &got["access_token"];
    let id = claims(&got["id_token"]);
    assert_eq!(id["iss"], s.issuer);
    assert_eq!(id["aud"], "spa-implicit");
    assert_eq!(id["sub"], "auth0|alice");
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["email"], ALICE);
    assert_eq!(id["at_hash"], left_half_hash(at));
    assert!(id.get("c_hash").is_none());
    let (status, info) = userinfo(&s, at).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["sub"], "auth0|alice");

    // Signed in now: single sign-on answers at once, with a new nonce.
    let url = url.replace("n-0S6_WzA2Mj", "second-nonce");
    let res = browser.get(&url).send().await.unwrap();
    let again = fragment(&res, &format!("{APP}/cb"));
    assert_eq!(claims(&again["id_token"])["nonce"], "second-nonce");
    assert_eq!(
        claims(&again["id_token"])["at_hash"],
        left_half_hash(&again["access_token"])
    );
}

#[tokio::test]
async fn hybrid_response_types_carry_the_code_with_c_hash() {
    let s = server().await;
    let browser = s.browser();
    let (verifier, challenge) = pkce();
    let redirect = format!("{APP}/cb");
    let request = |rt: &'static str| {
        vec![
            ("response_type", rt),
            ("client_id", "spa-implicit"),
            ("redirect_uri", redirect.as_str()),
            ("scope", "openid email"),
            ("state", "st-h"),
            ("nonce", "n-hybrid"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
    };

    // code id_token: the ID token vouches for the code.
    let res = sign_in_alice(&s, &browser, &authorize_url(&s, &request("code id_token"))).await;
    let got = fragment(&res, &redirect);
    let code = &got["code"];
    let id = claims(&got["id_token"]);
    assert_eq!(id["c_hash"], left_half_hash(code));
    assert_eq!(id["nonce"], "n-hybrid");
    assert!(id.get("at_hash").is_none());
    assert!(!got.contains_key("access_token"));
    let (status, body) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa-implicit"),
            ("code", code),
            ("redirect_uri", &redirect),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["nonce"],
        "n-hybrid"
    );

    // code token: a code and an access token, no ID token.
    let res = browser
        .get(authorize_url(&s, &request("code token")))
        .send()
        .await
        .unwrap();
    let got = fragment(&res, &redirect);
    assert!(got.contains_key("code") && got.contains_key("access_token"));
    assert!(!got.contains_key("id_token"));
    assert_eq!(userinfo(&s, &got["access_token"]).await.0, StatusCode::OK);

    // code id_token token: both hashes.
    let res = browser
        .get(authorize_url(&s, &request("id_token code token")))
        .send()
        .await
        .unwrap();
    let got = fragment(&res, &redirect);
    let id = claims(&got["id_token"]);
    assert_eq!(id["c_hash"], left_half_hash(&got["code"]));
    assert_eq!(id["at_hash"], left_half_hash(&got["access_token"]));
    assert_eq!(got["state"], "st-h");

    // A public client's hybrid request still needs PKCE for its code.
    let mut no_pkce = request("code id_token");
    no_pkce.truncate(6);
    let res = browser
        .get(authorize_url(&s, &no_pkce))
        .send()
        .await
        .unwrap();
    let got = fragment(&res, &redirect);
    assert_eq!(got["error"], "invalid_request");
}

#[tokio::test]
async fn id_token_form_post_for_a_regular_web_app() {
    let s = server().await;
    let browser = s.browser();
    let url = authorize_url(
        &s,
        &[
            ("response_type", "id_token"),
            ("response_mode", "form_post"),
            ("client_id", "web-implicit"),
            ("redirect_uri", WEB_CALLBACK),
            ("scope", "openid profile email"),
            ("state", "st-form"),
            ("nonce", "n-form"),
        ],
    );
    let res = sign_in_alice(&s, &browser, &url).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let got = posted_form(&res.text().await.unwrap(), WEB_CALLBACK);
    assert_eq!(got["state"], "st-form");
    assert!(!got.contains_key("access_token") && !got.contains_key("code"));
    let id = claims(&got["id_token"]);
    assert_eq!(id["aud"], "web-implicit");
    assert_eq!(id["nonce"], "n-form");
    assert_eq!(id["name"], "Alice Example");
    assert!(id.get("at_hash").is_none() && id.get("c_hash").is_none());
    // Signed with the tenant's published key.
    let kid = {
        let header = got["id_token"].split('.').next().unwrap();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        header["kid"].as_str().unwrap().to_string()
    };
    let jwks: Value = s
        .http()
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid)
    );
}

#[tokio::test]
async fn a_nonce_is_required_where_an_id_token_comes_from_the_authorization_endpoint() {
    let s = server().await;
    let browser = s.browser();
    let redirect = format!("{APP}/cb");
    for rt in ["id_token", "token id_token", "code id_token"] {
        let (_, challenge) = pkce();
        let url = authorize_url(
            &s,
            &[
                ("response_type", rt),
                ("client_id", "spa-implicit"),
                ("redirect_uri", &redirect),
                ("scope", "openid"),
                ("state", "st-n"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        let res = browser.get(url).send().await.unwrap();
        let got = fragment(&res, &redirect);
        assert_eq!(got["error"], "invalid_request", "{rt}");
        assert!(got["error_description"].contains("nonce"), "{rt}: {got:?}");
        assert_eq!(got["state"], "st-n");
    }
    // `token` alone has no ID token: no nonce needed, the login page shows.
    let url = authorize_url(
        &s,
        &[
            ("response_type", "token"),
            ("client_id", "spa-implicit"),
            ("redirect_uri", &redirect),
            ("scope", "openid"),
        ],
    );
    let res = sign_in_alice(&s, &browser, &url).await;
    let got = fragment(&res, &redirect);
    assert!(got.contains_key("access_token") && !got.contains_key("id_token"));
    // An ID token needs the openid scope.
    let url = authorize_url(
        &s,
        &[
            ("response_type", "id_token"),
            ("client_id", "spa-implicit"),
            ("redirect_uri", &redirect),
            ("scope", "profile"),
            ("nonce", "n"),
        ],
    );
    let got = fragment(&browser.get(url).send().await.unwrap(), &redirect);
    assert_eq!(got["error"], "invalid_request");
}

#[tokio::test]
async fn a_client_without_the_implicit_grant_is_refused() {
    let s = server().await;
    let browser = s.browser();
    let redirect = format!("{APP}/cb");
    for rt in ["id_token token", "token", "code id_token"] {
        let (_, challenge) = pkce();
        let url = authorize_url(
            &s,
            &[
                ("response_type", rt),
                ("client_id", "spa"),
                ("redirect_uri", &redirect),
                ("scope", "openid"),
                ("state", "st-u"),
                ("nonce", "n"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        let got = fragment(&browser.get(url).send().await.unwrap(), &redirect);
        assert_eq!(got["error"], "unauthorized_client", "{rt}");
        assert_eq!(
            got["error_description"],
            "Grant type 'implicit' not allowed for the client."
        );
        assert_eq!(got["state"], "st-u");
    }
}

#[tokio::test]
async fn errors_go_back_in_the_fragment_or_the_posted_form() {
    let s = server().await;
    let browser = s.browser();
    let redirect = format!("{APP}/cb");
    // Tokens never go in the query: refused, in the fragment.
    let url = authorize_url(
        &s,
        &[
            ("response_type", "id_token token"),
            ("response_mode", "query"),
            ("client_id", "spa-implicit"),
            ("redirect_uri", &redirect),
            ("scope", "openid"),
            ("state", "st-q"),
            ("nonce", "n"),
        ],
    );
    let got = fragment(&browser.get(url).send().await.unwrap(), &redirect);
    assert_eq!(got["error"], "invalid_request");
    assert_eq!(got["state"], "st-q");

    // Under form_post, the error is posted.
    let url = authorize_url(
        &s,
        &[
            ("response_type", "id_token"),
            ("response_mode", "form_post"),
            ("client_id", "web-implicit"),
            ("redirect_uri", WEB_CALLBACK),
            ("scope", "openid"),
            ("state", "st-f"),
        ],
    );
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let got = posted_form(&res.text().await.unwrap(), WEB_CALLBACK);
    assert_eq!(got["error"], "invalid_request");
    assert_eq!(got["state"], "st-f");
    assert!(!got.contains_key("id_token"));

    // prompt=none without a session: login_required, in the fragment.
    let url = authorize_url(
        &s,
        &[
            ("response_type", "id_token"),
            ("client_id", "spa-implicit"),
            ("redirect_uri", &redirect),
            ("scope", "openid"),
            ("nonce", "n"),
            ("prompt", "none"),
            ("state", "st-p"),
        ],
    );
    let got = fragment(&browser.get(url).send().await.unwrap(), &redirect);
    assert_eq!(got["error"], "login_required");
    assert_eq!(got["state"], "st-p");

    // A DPoP key cannot bind the authorization endpoint's access token.
    let url = authorize_url(
        &s,
        &[
            ("response_type", "token"),
            ("client_id", "spa-implicit"),
            ("redirect_uri", &redirect),
            ("scope", "openid"),
            ("dpop_jkt", &"A".repeat(43)),
        ],
    );
    let got = fragment(&browser.get(url).send().await.unwrap(), &redirect);
    assert_eq!(got["error"], "invalid_request");

    // Unknown or repeated words: unsupported, in the query (the default
    // mode of a request whose response type is not understood).
    for rt in ["code code", "none", "id_token refresh_token", " "] {
        let url = authorize_url(
            &s,
            &[
                ("response_type", rt),
                ("client_id", "spa-implicit"),
                ("redirect_uri", &redirect),
                ("scope", "openid"),
                ("nonce", "n"),
            ],
        );
        let res = browser.get(url).send().await.unwrap();
        let loc = res.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(
            query_param(&loc, "error").as_deref(),
            Some("unsupported_response_type"),
            "{rt}: {loc}"
        );
    }
}

#[tokio::test]
async fn discovery_lists_the_response_types_and_modes() {
    let s = server().await;
    let doc: Value = s
        .http()
        .get(s.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = doc["response_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for rt in [
        "code",
        "id_token",
        "token",
        "id_token token",
        "code id_token",
        "code token",
        "code id_token token",
    ] {
        assert!(types.contains(&rt), "{rt}: {types:?}");
    }
    let modes = doc["response_modes_supported"].to_string();
    assert!(modes.contains("fragment") && modes.contains("form_post"));
    assert!(
        doc["grant_types_supported"]
            .to_string()
            .contains("\"implicit\"")
    );
    assert!(doc["claims_supported"].to_string().contains("c_hash"));
}

/// A string member of the response a `web_message` page posts.
fn posted_member(html: &str, name: &str) -> Option<String> {
    let start = html.find("response: ")? + "response: ".len();
    let end = start + html[start..].find(" };")?;
    let response: Value = serde_json::from_str(&html[start..end]).ok()?;
    response[name].as_str().map(str::to_string)
}

#[tokio::test]
async fn silent_authentication_in_web_message_carries_the_tokens() {
    let s = server().await;
    let browser = s.browser();
    let redirect = format!("{APP}/cb");
    let mut params = vec![
        ("response_type", "token id_token"),
        ("client_id", "spa-implicit"),
        ("redirect_uri", redirect.as_str()),
        ("scope", "openid"),
        ("state", "st-w"),
        ("nonce", "n-w"),
    ];
    fragment(
        &sign_in_alice(&s, &browser, &authorize_url(&s, &params)).await,
        &redirect,
    );

    // auth0-js's checkSession: prompt=none in a hidden iframe, web_message.
    params.extend([("response_mode", "web_message"), ("prompt", "none")]);
    let res = browser
        .get(authorize_url(&s, &params))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("authorization_response"), "{html}");
    let at = posted_member(&html, "access_token").expect("an access token");
    let id = claims(&posted_member(&html, "id_token").expect("an ID token"));
    assert_eq!(id["nonce"], "n-w");
    assert_eq!(id["at_hash"], left_half_hash(&at));
    assert_eq!(posted_member(&html, "state").as_deref(), Some("st-w"));
    assert!(posted_member(&html, "refresh_token").is_none());
}
