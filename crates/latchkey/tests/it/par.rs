//! Pushed authorization requests (RFC 9126): `POST /oauth/par` with the
//! token endpoint's client authentication, the `request_uri` used once at
//! `/authorize` by the client that pushed it, its expiry, a client that
//! requires pushed requests, bad bodies and credentials, and discovery.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

const WEB_CALLBACK: &str = "https://web.acme.test/callback";
const PAR_ONLY_CALLBACK: &str = "https://bank.acme.test/callback";
const PAR_ONLY_SECRET: &str = "par-only-secret-value";
const APP_CB: &str = "http://localhost:5173/cb";

/// The usual tenant, with a client that requires pushed requests.
fn tenant(port: u16) -> String {
    acme(port).replacen(
        "clients:\n",
        &format!(
            "clients:\n  - {{ client_id: par-only, app_type: regular_web, client_secret: \"{PAR_ONLY_SECRET}\",\n      \
             callbacks: [\"{PAR_ONLY_CALLBACK}\"], grant_types: [authorization_code],\n      \
             require_pushed_authorization_requests: true }}\n"
        ),
        1,
    )
}

async fn server() -> TestServer {
    TestServer::with_tenants(&[tenant, other_tenant]).await
}

async fn par(s: &TestServer, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = s
        .http()
        .post(s.url("/oauth/par"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    if status == StatusCode::CREATED {
        assert_eq!(res.headers()["cache-control"], "no-store");
    }
    (status, res.json().await.unwrap())
}

/// The web app's pushed request (a confidential client, no PKCE).
fn web_request<'a>(state: &'a str, nonce: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", "web"),
        ("client_secret", "web-secret-value"),
        ("response_type", "code"),
        ("redirect_uri", WEB_CALLBACK),
        ("scope", "openid email"),
        ("state", state),
        ("nonce", nonce),
    ]
}

async fn push_web(s: &TestServer) -> String {
    let (status, body) = par(s, &web_request("st-pushed", "n-pushed")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["request_uri"].as_str().unwrap().to_string()
}

/// Opens `/authorize` with a request_uri and signs Alice in; the redirect.
async fn sign_in(s: &TestServer, browser: &reqwest::Client, url: &str) -> String {
    let res = sign_in_alice(s, browser, url).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    res.headers()["location"].to_str().unwrap().to_string()
}

/// `/authorize` refused on a page: 400, no redirect.
async fn refused_on_a_page(browser: &reqwest::Client, url: &str) {
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{url}");
    assert!(res.headers().get("location").is_none());
}

#[tokio::test]
async fn a_pushed_request_is_used_once_by_its_client() {
    let s = server().await;
    let browser = s.browser();
    let (status, body) = par(&s, &web_request("st-pushed", "n-pushed")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["expires_in"], 90);
    let uri = body["request_uri"].as_str().unwrap();
    let random = uri
        .strip_prefix("urn:ietf:params:oauth:request_uri:")
        .unwrap();
    assert!(random.len() >= 32, "{uri}");

    // Parameters beside request_uri are ignored: the pushed ones count.
    let url = authorize_url(
        &s,
        &[
            ("client_id", "web"),
            ("request_uri", uri),
            ("state", "st-tampered"),
            ("redirect_uri", "https://evil.example/cb"),
            ("scope", "openid profile"),
        ],
    );
    let loc = sign_in(&s, &browser, &url).await;
    assert!(loc.starts_with(&format!("{WEB_CALLBACK}?")), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st-pushed"));
    let code = query_param(&loc, "code").unwrap();
    let (status, tokens) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "web"),
            ("client_secret", "web-secret-value"),
            ("code", &code),
            ("redirect_uri", WEB_CALLBACK),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "openid email");
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["nonce"],
        "n-pushed"
    );

    // Used once: replayed, refused.
    refused_on_a_page(&browser, &url).await;
    // Stored as a digest: the random part is nowhere in the database.
    let dump = s.database_dump().await;
    assert!(
        !dump.windows(random.len()).any(|w| w == random.as_bytes()),
        "the request_uri is stored in clear"
    );
}

#[tokio::test]
async fn a_public_client_pushes_with_its_client_id_and_pkce() {
    let s = server().await;
    let browser = s.browser();
    let (verifier, challenge) = pkce();
    let form = [
        ("client_id", "spa"),
        ("response_type", "code"),
        ("redirect_uri", &format!("{APP}/cb")),
        ("scope", "openid"),
        ("state", "st-spa"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    let (status, body) = par(&s, &form).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let url = authorize_url(
        &s,
        &[
            ("client_id", "spa"),
            ("request_uri", body["request_uri"].as_str().unwrap()),
        ],
    );
    let loc = sign_in(&s, &browser, &url).await;
    let code = query_param(&loc, "code").unwrap();
    let (status, _) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", &format!("{APP}/cb")),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(status, StatusCode::OK);
    // Without PKCE, a public client's request is refused when pushed.
    let (status, body) = par(&s, &form[..5]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn an_expired_or_unknown_request_uri_or_another_clients_is_refused() {
    let s = server().await;
    let browser = s.browser();
    let uri = push_web(&s).await;
    s.clock.advance(90);
    refused_on_a_page(
        &browser,
        &authorize_url(&s, &[("client_id", "web"), ("request_uri", &uri)]),
    )
    .await;

    // Another client presenting it: refused (and it is spent).
    let uri = push_web(&s).await;
    refused_on_a_page(
        &browser,
        &authorize_url(&s, &[("client_id", "spa"), ("request_uri", &uri)]),
    )
    .await;
    refused_on_a_page(
        &browser,
        &authorize_url(&s, &[("client_id", "web"), ("request_uri", &uri)]),
    )
    .await;

    // Without client_id, garbage, another tenant's host: refused.
    let uri = push_web(&s).await;
    refused_on_a_page(&browser, &authorize_url(&s, &[("request_uri", &uri)])).await;
    for garbage in [
        "urn:ietf:params:oauth:request_uri:",
        "urn:ietf:params:oauth:request_uri:nope",
        "https://evil.example/request",
        &"x".repeat(5000),
    ] {
        refused_on_a_page(
            &browser,
            &authorize_url(&s, &[("client_id", "web"), ("request_uri", garbage)]),
        )
        .await;
    }
    let other = format!(
        "http://127.0.0.1:{}/authorize?{}",
        s.port,
        serde_urlencoded::to_string([("client_id", "web"), ("request_uri", uri.as_str())]).unwrap()
    );
    let res = browser.get(other).send().await.unwrap();
    assert!(res.headers().get("location").is_none());
    assert_ne!(res.status(), StatusCode::OK);
    // Still there for its own tenant and client, within its life.
    let loc = sign_in(
        &s,
        &browser,
        &authorize_url(&s, &[("client_id", "web"), ("request_uri", &uri)]),
    )
    .await;
    assert!(query_param(&loc, "code").is_some());
}

#[tokio::test]
async fn a_client_that_requires_pushed_requests_is_refused_a_plain_one() {
    let s = server().await;
    let browser = s.browser();
    let plain = authorize_url(
        &s,
        &[
            ("client_id", "par-only"),
            ("response_type", "code"),
            ("redirect_uri", PAR_ONLY_CALLBACK),
            ("scope", "openid"),
            ("state", "st-plain"),
        ],
    );
    let res = browser.get(plain).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(PAR_ONLY_CALLBACK), "{loc}");
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st-plain"));

    let (status, body) = par(
        &s,
        &[
            ("client_id", "par-only"),
            ("client_secret", PAR_ONLY_SECRET),
            ("response_type", "code"),
            ("redirect_uri", PAR_ONLY_CALLBACK),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let url = authorize_url(
        &s,
        &[
            ("client_id", "par-only"),
            ("request_uri", body["request_uri"].as_str().unwrap()),
        ],
    );
    let loc = sign_in(&s, &browser, &url).await;
    assert!(loc.starts_with(PAR_ONLY_CALLBACK) && query_param(&loc, "code").is_some());
}

#[tokio::test]
async fn bad_bodies_and_bad_client_authentication_are_refused() {
    let s = server().await;
    let ok = web_request("st", "n");
    let with = |k: &'static str, v: &'static str| {
        let mut f: Vec<(&str, &str)> = ok.iter().filter(|(key, _)| *key != k).cloned().collect();
        f.push((k, v));
        f
    };
    let without = |k: &str| -> Vec<(&str, &str)> {
        ok.iter().filter(|(key, _)| *key != k).cloned().collect()
    };

    // Client authentication, as at the token endpoint.
    for (form, why) in [
        (with("client_secret", "wrong-secret-value"), "wrong secret"),
        (
            without("client_secret"),
            "confidential client without its secret",
        ),
        (with("client_id", "ghost"), "unknown client"),
    ] {
        let (status, body) = par(&s, &form).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
        assert_eq!(body["error"], "invalid_client", "{why}");
    }
    let (status, body) = par(
        &s,
        &[
            ("client_id", "spa"),
            ("client_secret", "anything-at-all"),
            ("response_type", "code"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );

    // The request itself, validated as /authorize would.
    for (form, error) in [
        (without("response_type"), "unsupported_response_type"),
        (with("response_type", "token"), "unsupported_response_type"),
        (
            with("redirect_uri", "https://evil.example/cb"),
            "invalid_request",
        ),
        (with("prompt", "bogus"), "invalid_request"),
        (
            with("request_uri", "urn:ietf:params:oauth:request_uri:abc"),
            "invalid_request",
        ),
        (
            with("request", "eyJhbGciOiJub25lIn0.e30."),
            "request_not_supported",
        ),
    ] {
        let (status, body) = par(&s, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}: {body}");
        assert_eq!(body["error"], error, "{form:?}: {body}");
    }

    // Oversized and malformed bodies.
    let big = "x".repeat(70 * 1024);
    let (status, body) = par(&s, &with("state", Box::leak(big.into_boxed_str()))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    let res = s
        .http()
        .post(s.url("/oauth/par"))
        .header("content-type", "application/json")
        .body("{\"client_id\": [1, 2]")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let res = s
        .http()
        .post(s.url("/oauth/par"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_id=web&client_id=spa&response_type=%ZZ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn discovery_names_the_par_endpoint() {
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
    assert_eq!(
        doc["pushed_authorization_request_endpoint"],
        format!("{}oauth/par", s.issuer)
    );
    assert_eq!(doc["require_pushed_authorization_requests"], false);
}

#[tokio::test]
async fn pushes_for_a_public_client_are_bounded_per_ip() {
    let s = server().await;
    let (_, challenge) = pkce();
    let form = [
        ("client_id", "spa"),
        ("response_type", "code"),
        ("redirect_uri", APP_CB),
        ("scope", "openid"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    // The login-transaction stage: 300 at once from one IP.
    for _ in 0..300 {
        assert_eq!(par(&s, &form).await.0, StatusCode::CREATED);
    }
    let res = s
        .http()
        .post(s.url("/oauth/par"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().get("retry-after").is_some());
    // A confidential client authenticates: not bounded by that stage.
    let (status, body) = par(&s, &web_request("st", "n")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
