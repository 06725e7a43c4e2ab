//! DPoP (RFC 9449) at the token endpoint and the My Account API: bound
//! tokens for each accepted algorithm, each reason a proof is refused,
//! replay, nonces (issued, retried, expired), `ath`, another key, a bound
//! token presented as Bearer, `dpop_jkt` on `/authorize`, refresh tokens of
//! public clients bound to the key, and clients that require proofs.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::dpop_client::Key;
use crate::support::*;

fn token_url(s: &TestServer) -> String {
    s.url("/oauth/token")
}

/// POSTs `form` to `/oauth/token` with these `DPoP` headers.
async fn token_with(
    s: &TestServer,
    form: &[(&str, &str)],
    proofs: &[&str],
) -> (StatusCode, HeaderMap, Value) {
    let mut req = s.http().post(token_url(s)).form(form);
    for p in proofs {
        req = req.header("DPoP", *p);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.json().await.unwrap())
}

fn password_form(audience: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "password"),
        ("client_id", "spa"),
        ("username", ALICE),
        ("password", ALICE_PASSWORD),
        ("audience", audience),
        (
            "scope",
            "openid offline_access read:me:authentication_methods",
        ),
    ]
}

fn backend_form() -> Vec<(&'static str, &'static str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", "backend"),
        ("client_secret", BACKEND_SECRET),
        ("audience", API),
    ]
}

/// A DPoP-bound My Account token for Alice, bound to `key`.
async fn bound_token(s: &TestServer, key: &Key) -> Value {
    let aud = s.my_account_audience();
    let proof = key.proof("POST", &token_url(s), s.clock_now(), None, None);
    let (status, _, body) = token_with(s, &password_form(&aud), &[&proof]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// GET /me/v1/authentication-methods with `authorization` and proofs.
async fn list_methods(
    s: &TestServer,
    authorization: &str,
    proofs: &[&str],
) -> (StatusCode, HeaderMap, Value) {
    let mut req = s
        .http()
        .get(s.url("/me/v1/authentication-methods"))
        .header("Authorization", authorization);
    for p in proofs {
        req = req.header("DPoP", *p);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn methods_url(s: &TestServer) -> String {
    s.url("/me/v1/authentication-methods")
}

fn www_authenticate(h: &HeaderMap) -> String {
    h.get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn tokens_are_bound_to_the_key_of_each_accepted_algorithm() {
    let s = TestServer::start().await;
    for key in [Key::es256(), Key::eddsa(), Key::rs256(), Key::ps256()] {
        let proof = key.proof("POST", &token_url(&s), s.clock_now(), None, None);
        let (status, _, body) = token_with(&s, &backend_form(), &[&proof]).await;
        assert_eq!(status, StatusCode::OK, "{}: {body}", key.alg());
        assert_eq!(body["token_type"], "DPoP");
        let at = claims(body["access_token"].as_str().unwrap());
        assert_eq!(at["cnf"]["jkt"], key.jkt(), "{}", key.alg());
    }
    // Without a proof: a Bearer token, unbound.
    let (status, body) = s.token(&backend_form()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        claims(body["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );
}

#[tokio::test]
async fn the_token_endpoint_refuses_bad_proofs_and_replays() {
    let s = TestServer::start().await;
    let key = Key::es256();
    let now = s.clock_now();
    let url = token_url(&s);
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()});
    let claims_for = |htm: &str, htu: &str, iat: i64| json!({"jti": format!("j-{htm}-{iat}-{htu}"), "htm": htm, "htu": htu, "iat": iat});
    let cases = [
        ("malformed", "not-a-jwt".to_string()),
        ("GET", key.jws(&header, &claims_for("GET", &url, now))),
        (
            "other URL",
            key.jws(&header, &claims_for("POST", &s.url("/userinfo"), now)),
        ),
        (
            "old",
            key.jws(&header, &claims_for("POST", &url, now - 301)),
        ),
        (
            "future",
            key.jws(&header, &claims_for("POST", &url, now + 61)),
        ),
        (
            "typ",
            key.jws(
                &json!({"typ": "JWT", "alg": "ES256", "jwk": key.public_jwk()}),
                &claims_for("POST", &url, now),
            ),
        ),
        (
            "HS256",
            key.jws(
                &json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk()}),
                &claims_for("POST", &url, now),
            ),
        ),
        (
            "another key's jwk",
            key.jws(
                &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": Key::es256().public_jwk()}),
                &claims_for("POST", &url, now),
            ),
        ),
    ];
    for (what, proof) in cases {
        let (status, _, body) = token_with(&s, &backend_form(), &[&proof]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(body["error"], "invalid_dpop_proof", "{what}: {body}");
    }
    // Two proofs at once.
    let a = key.proof("POST", &url, now, None, None);
    let b = key.proof("POST", &url, now, None, None);
    let (status, _, body) = token_with(&s, &backend_form(), &[&a, &b]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_dpop_proof"))
    );
    // A proof works once.
    let (status, _, _) = token_with(&s, &backend_form(), &[&a]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = token_with(&s, &backend_form(), &[&a]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_dpop_proof");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("used before")
    );
}

#[tokio::test]
async fn nonces_are_issued_retried_and_expire() {
    let s = TestServer::start().await;
    let text = acme(s.port) + "dpop: { require_nonce: true }\n";
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let key = Key::eddsa();
    let url = token_url(&s);
    let proof = key.proof("POST", &url, s.clock_now(), None, None);
    let (status, headers, body) = token_with(&s, &backend_form(), &[&proof]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "use_dpop_nonce");
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_string();
    // The retry with the nonce.
    let proof = key.proof("POST", &url, s.clock_now(), None, Some(&nonce));
    let (status, headers, body) = token_with(&s, &backend_form(), &[&proof]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        headers.get("dpop-nonce").is_some(),
        "a nonce for the next request"
    );
    // A wrong nonce, and one from long ago.
    let proof = key.proof("POST", &url, s.clock_now(), None, Some("made-up"));
    let (_, _, body) = token_with(&s, &backend_form(), &[&proof]).await;
    assert_eq!(body["error"], "use_dpop_nonce");
    s.clock.advance(301);
    let proof = key.proof("POST", &url, s.clock_now(), None, Some(&nonce));
    let (status, _, _) = token_with(&s, &backend_form(), &[&proof]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the previous window's nonce still counts"
    );
    s.clock.advance(300);
    let proof = key.proof("POST", &url, s.clock_now(), None, Some(&nonce));
    let (_, headers, body) = token_with(&s, &backend_form(), &[&proof]).await;
    assert_eq!(body["error"], "use_dpop_nonce");
    assert_ne!(headers["dpop-nonce"].to_str().unwrap(), nonce);

    // The resource server asks too: 401 with the DPoP challenge.
    let key = Key::es256();
    let aud = s.my_account_audience();
    let mut n = nonce_of(&s).await;
    let proof = key.proof("POST", &url, s.clock_now(), None, Some(&n));
    let (status, _, body) = token_with(&s, &password_form(&aud), &[&proof]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let at = body["access_token"].as_str().unwrap().to_string();
    let proof = key.proof("GET", &methods_url(&s), s.clock_now(), Some(&at), None);
    let (status, headers, _) = list_methods(&s, &format!("DPoP {at}"), &[&proof]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(www_authenticate(&headers).contains("error=\"use_dpop_nonce\""));
    n = headers["dpop-nonce"].to_str().unwrap().to_string();
    let proof = key.proof("GET", &methods_url(&s), s.clock_now(), Some(&at), Some(&n));
    let (status, _, body) = list_methods(&s, &format!("DPoP {at}"), &[&proof]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The nonce the token endpoint hands out now.
async fn nonce_of(s: &TestServer) -> String {
    let proof = Key::es256().proof("POST", &token_url(s), s.clock_now(), None, None);
    let (_, headers, _) = token_with(s, &backend_form(), &[&proof]).await;
    headers["dpop-nonce"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn my_account_checks_bound_tokens_completely() {
    let s = TestServer::start().await;
    let key = Key::es256();
    let body = bound_token(&s, &key).await;
    assert_eq!(body["token_type"], "DPoP");
    let at = body["access_token"].as_str().unwrap().to_string();
    let url = methods_url(&s);
    let now = s.clock_now();

    let good = key.proof("GET", &url, now, Some(&at), None);
    let (status, _, body) = list_methods(&s, &format!("DPoP {at}"), &[&good]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same proof again: replay.
    let (status, headers, body) = list_methods(&s, &format!("DPoP {at}"), &[&good]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(www_authenticate(&headers).contains("error=\"invalid_dpop_proof\""));

    let other = Key::es256();
    let cases: Vec<(&str, String, Vec<String>, &str)> = vec![
        ("as Bearer", format!("Bearer {at}"), vec![], "invalid_token"),
        (
            "as Bearer with a proof",
            format!("Bearer {at}"),
            vec![key.proof("GET", &url, now, Some(&at), None)],
            "invalid_token",
        ),
        (
            "no proof",
            format!("DPoP {at}"),
            vec![],
            "invalid_dpop_proof",
        ),
        (
            "another key",
            format!("DPoP {at}"),
            vec![other.proof("GET", &url, now, Some(&at), None)],
            "invalid_dpop_proof",
        ),
        (
            "ath of another token",
            format!("DPoP {at}"),
            vec![key.proof("GET", &url, now, Some("other-token"), None)],
            "invalid_dpop_proof",
        ),
        (
            "no ath",
            format!("DPoP {at}"),
            vec![key.proof("GET", &url, now, None, None)],
            "invalid_dpop_proof",
        ),
        (
            "POST proof",
            format!("DPoP {at}"),
            vec![key.proof("POST", &url, now, Some(&at), None)],
            "invalid_dpop_proof",
        ),
        (
            "other path",
            format!("DPoP {at}"),
            vec![key.proof("GET", &s.url("/me/v1/factors"), now, Some(&at), None)],
            "invalid_dpop_proof",
        ),
        (
            "token endpoint proof",
            format!("DPoP {at}"),
            vec![key.proof("POST", &token_url(&s), now, None, None)],
            "invalid_dpop_proof",
        ),
        (
            "two proofs",
            format!("DPoP {at}"),
            vec![
                key.proof("GET", &url, now, Some(&at), None),
                key.proof("GET", &url, now, Some(&at), None),
            ],
            "invalid_dpop_proof",
        ),
    ];
    for (what, authorization, proofs, error) in cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let (status, headers, body) = list_methods(&s, &authorization, &proofs).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        let challenge = www_authenticate(&headers);
        assert!(challenge.starts_with("DPoP "), "{what}: {challenge}");
        assert!(
            challenge.contains(&format!("error=\"{error}\"")),
            "{what}: {challenge}"
        );
        assert!(
            challenge.contains("algs=\"ES256 EdDSA RS256 PS256\""),
            "{what}: {challenge}"
        );
        assert_eq!(body["status"], 401, "{what}: {body}");
    }

    // An unbound token with the DPoP scheme is refused; as Bearer it works.
    let bearer = s.me_token("read:me:authentication_methods").await;
    let proof = key.proof("GET", &url, now, Some(&bearer), None);
    let (status, headers, _) = list_methods(&s, &format!("DPoP {bearer}"), &[&proof]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(www_authenticate(&headers).contains("error=\"invalid_token\""));
    let (status, _, _) = list_methods(&s, &format!("Bearer {bearer}"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    // Without any token, both schemes are offered.
    let res = s.http().get(methods_url(&s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = www_authenticate(res.headers());
    assert!(
        challenge.contains("Bearer") && challenge.contains("DPoP algs="),
        "{challenge}"
    );
}

#[tokio::test]
async fn a_code_bound_with_dpop_jkt_needs_that_key() {
    let s = TestServer::start().await;
    let key = Key::es256();
    let browser = s.browser();
    let req = AuthRequest::new("openid offline_access").param("dpop_jkt", &key.jkt());
    let code = code_for(&s, &browser, &req).await;
    let form = |code: &str| {
        vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("client_id".to_string(), "spa".to_string()),
            ("code".to_string(), code.to_string()),
            ("redirect_uri".to_string(), req.redirect_uri.clone()),
            ("code_verifier".to_string(), req.verifier.clone()),
        ]
    };
    let post = |form: Vec<(String, String)>, proof: Option<String>| {
        let s = &s;
        async move {
            let mut r = s.http().post(token_url(s)).form(&form);
            if let Some(p) = proof {
                r = r.header("DPoP", p);
            }
            let res = r.send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    // Without a proof, or with another key: refused, and the code is spent.
    let (status, body) = post(form(&code), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_dpop_proof"))
    );
    let code = code_for(&s, &browser, &req).await;
    let other = Key::eddsa().proof("POST", &token_url(&s), s.clock_now(), None, None);
    let (status, body) = post(form(&code), Some(other)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_dpop_proof"))
    );
    // With the key: a bound token.
    let code = code_for(&s, &browser, &req).await;
    let proof = key.proof("POST", &token_url(&s), s.clock_now(), None, None);
    let (status, body) = post(form(&code), Some(proof)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt()
    );
    // A malformed dpop_jkt is refused at /authorize.
    let bad = AuthRequest::new("openid").param("dpop_jkt", "short");
    let res = browser.get(bad.url(&s)).send().await.unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn a_public_clients_refresh_token_is_bound_to_its_key() {
    let s = TestServer::start().await;
    let key = Key::es256();
    let body = bound_token(&s, &key).await;
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String, proof: Option<String>| {
        let s = &s;
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("client_id", "spa"),
                ("refresh_token", rt.as_str()),
            ];
            let proofs: Vec<String> = proof.into_iter().collect();
            let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
            let (status, _, body) = token_with(s, &form, &proofs).await;
            (status, body)
        }
    };
    let (status, body) = refresh(rt.clone(), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_dpop_proof")),
        "{body}"
    );
    let other = Key::es256().proof("POST", &token_url(&s), s.clock_now(), None, None);
    let (status, body) = refresh(rt.clone(), Some(other)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_dpop_proof"))
    );
    // Those refusals did not spend it: the key's proof refreshes.
    let proof = key.proof("POST", &token_url(&s), s.clock_now(), None, None);
    let (status, body) = refresh(rt, Some(proof)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt()
    );
    // And the rotated token is bound too.
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    let (status, _) = refresh(rt, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_client_that_requires_proof_of_possession_gets_nothing_without_one() {
    let s = TestServer::start().await;
    let text = acme(s.port).replace(
        "{ client_id: backend, client_secret:",
        "{ client_id: backend, require_proof_of_possession: true, client_secret:",
    );
    latchkey::tenant::apply::apply_text(&s.state, &text)
        .await
        .unwrap();
    let (status, body) = s.token(&backend_form()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    let key = Key::rs256();
    let proof = key.proof("POST", &token_url(&s), s.clock_now(), None, None);
    let (status, _, body) = token_with(&s, &backend_form(), &[&proof]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP");
}

#[tokio::test]
async fn userinfo_takes_bound_tokens_with_their_proof() {
    let s = TestServer::start().await;
    let key = Key::eddsa();
    let body = bound_token(&s, &key).await;
    let at = body["access_token"].as_str().unwrap().to_string();
    let url = s.url("/userinfo");
    let proof = key.proof("GET", &url, s.clock_now(), Some(&at), None);
    let res = s
        .http()
        .get(&url)
        .header("Authorization", format!("DPoP {at}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["sub"], "auth0|alice");
    let res = s.http().get(&url).bearer_auth(&at).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(www_authenticate(res.headers()).contains("DPoP algs="));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
}
