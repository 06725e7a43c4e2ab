//! The OpenID provider: `oidc-provider` behind its login form.

use std::time::Duration;

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;

use super::CALLBACK;
use crate::support::{START, claims, pkce, query_param};
use crate::upstream::oidc::{LoginOutcome, OidcClient, OidcConfig, OidcProvider, OidcUser, Tamper};
use crate::upstream::{browser, http};

const SECRET: &str = "upstream-client-secret";
const ALICE_SUB: &str = "248289761001";
const ALICE_EMAIL: &str = "alice@idp.test";
const ALICE_PASSWORD: &str = "Alice-at-the-upstream-1";
const ALGS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// A provider with a client per algorithm (`client-RS256`, …) and Alice.
async fn provider() -> OidcProvider {
    OidcProvider::start(OidcConfig {
        clients: ALGS
            .iter()
            .map(|alg| {
                OidcClient::confidential(&format!("client-{alg}"), SECRET, CALLBACK).alg(alg)
            })
            .chain([OidcClient::confidential("client-post", SECRET, CALLBACK)
                .auth_method("client_secret_post")])
            .collect(),
        users: vec![
            OidcUser::new(ALICE_SUB, ALICE_EMAIL, ALICE_PASSWORD).name("Alice Upstream"),
            OidcUser::new("7", "mallory@idp.test", "Mallory-password-1").unverified(),
        ],
        now: Some(START),
        access_token_ttl: Some(300),
        ..OidcConfig::default()
    })
    .await
}

struct Authorization {
    url: String,
    state: String,
    nonce: String,
    verifier: String,
}

fn authorization(p: &OidcProvider, client_id: &str, scope: &str) -> Authorization {
    let (verifier, challenge) = pkce();
    let state = format!("state-{client_id}");
    let nonce = format!("nonce-{client_id}");
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("scope", scope),
        ("state", &state),
        ("nonce", &nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    Authorization {
        url: p.url(&format!("/auth?{query}")),
        state,
        nonce,
        verifier,
    }
}

async fn token(p: &OidcProvider, client_id: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = http()
        .post(p.url("/token"))
        .basic_auth(client_id, Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

/// Alice signs in through the form; the code is exchanged.
async fn tokens_for(p: &OidcProvider, client_id: &str) -> (Authorization, Value) {
    let auth = authorization(p, client_id, "openid email profile offline_access");
    let back = p
        .login(&browser(), &auth.url, ALICE_EMAIL, ALICE_PASSWORD)
        .await;
    assert!(back.starts_with(CALLBACK), "{back}");
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(auth.state.as_str())
    );
    assert_eq!(query_param(&back, "iss").as_deref(), Some(p.issuer()));
    let code = query_param(&back, "code").expect("a code");
    let (status, body) = token(
        p,
        client_id,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &auth.verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (auth, body)
}

async fn refresh(p: &OidcProvider, client_id: &str, refresh_token: &str) -> (StatusCode, Value) {
    token(
        p,
        client_id,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// A token request refused as OAuth refuses a bad code or refresh token.
fn invalid_grant((status, body): (StatusCode, Value)) {
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{body}"
    );
}

/// The status of `/me` (userinfo) for this access token.
async fn userinfo(p: &OidcProvider, access_token: &str) -> StatusCode {
    let res = http()
        .get(p.url("/me"))
        .bearer_auth(access_token)
        .send()
        .await;
    res.unwrap().status()
}

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// The claims of `jwt` when its signature verifies with the JWKS key its
/// header names, by the algorithm the key's type allows.
fn verify(jwks: &Value, jwt: &str) -> Result<Value, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [head, body, sig] = parts[..] else {
        return Err("not three parts".into());
    };
    let header: Value = serde_json::from_slice(&b64(head)).map_err(|e| e.to_string())?;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .ok_or("no key with that kid")?;
    let message = format!("{head}.{body}");
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|e| e.to_string())?;
    let field = |name: &str| b64(key[name].as_str().unwrap());
    let ok = match (header["alg"].as_str(), key["kty"].as_str()) {
        (Some(alg @ ("RS256" | "PS256")), Some("RSA")) => {
            let scheme = if alg == "RS256" {
                &signature::RSA_PKCS1_2048_8192_SHA256
            } else {
                &signature::RSA_PSS_2048_8192_SHA256
            };
            RsaPublicKeyComponents {
                n: field("n"),
                e: field("e"),
            }
            .verify(scheme, message.as_bytes(), &sig)
            .is_ok()
        }
        (Some("ES256"), Some("EC")) => {
            let mut point = vec![4u8];
            point.extend(field("x"));
            point.extend(field("y"));
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message.as_bytes(), &sig)
                .is_ok()
        }
        (Some("EdDSA" | "Ed25519"), Some("OKP")) => {
            UnparsedPublicKey::new(&signature::ED25519, field("x"))
                .verify(message.as_bytes(), &sig)
                .is_ok()
        }
        (alg, kty) => return Err(format!("alg {alg:?} with a {kty:?} key")),
    };
    if ok {
        Ok(serde_json::from_slice(&b64(body)).unwrap())
    } else {
        Err("bad signature".into())
    }
}

async fn get_json(url: &str) -> Value {
    let res = http().get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_openid_provider_publishes_discovery_and_a_key_of_every_type() {
    let p = provider().await;
    let doc = get_json(&p.url("/.well-known/openid-configuration")).await;
    assert_eq!(doc["issuer"], p.issuer());
    assert!(p.issuer().starts_with("http://127.0.0.1:") && p.issuer().ends_with('/'));
    for (field, path) in [
        ("authorization_endpoint", "/auth"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/me"),
        ("revocation_endpoint", "/token/revocation"),
        ("jwks_uri", "/jwks"),
    ] {
        assert_eq!(doc[field], p.url(path), "{field}");
    }
    let algs = doc["id_token_signing_alg_values_supported"].to_string();
    for alg in ALGS {
        assert!(algs.contains(alg), "{alg} in {algs}");
    }
    assert!(
        doc["code_challenge_methods_supported"]
            .to_string()
            .contains("S256")
    );
    let jwks = get_json(doc["jwks_uri"].as_str().unwrap()).await;
    let types: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kty"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["RSA", "EC", "OKP"]);
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("d").is_none()),
        "no private parts"
    );
    assert_eq!(p.requests("discovery").await, 1);
    assert_eq!(p.requests("jwks").await, 1);
}

#[tokio::test]
async fn a_code_flow_through_the_login_form_gives_id_tokens_signed_in_each_algorithm() {
    let p = provider().await;
    let jwks = get_json(&p.url("/jwks")).await;
    for alg in ALGS {
        let client = format!("client-{alg}");
        let (auth, tokens) = tokens_for(&p, &client).await;
        let id_token = tokens["id_token"].as_str().unwrap();
        let header: Value =
            serde_json::from_slice(&b64(id_token.split('.').next().unwrap())).unwrap();
        assert_eq!(header["alg"], alg);
        let claims = verify(&jwks, id_token).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(claims["iss"], p.issuer());
        assert_eq!(claims["aud"], client.as_str());
        assert_eq!(claims["sub"], ALICE_SUB);
        assert_eq!(claims["nonce"], auth.nonce.as_str());
        assert_eq!(claims["email"], ALICE_EMAIL);
        assert_eq!(claims["email_verified"], true);
        assert_eq!(claims["name"], "Alice Upstream");
        assert_eq!(claims["iat"], START, "the provider's clock is the test's");
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 300);
        assert_eq!(tokens["scope"], "openid email profile offline_access");
        assert!(
            tokens["refresh_token"].is_string(),
            "offline_access gives a refresh token"
        );
        // The access token is good at userinfo.
        let res = http()
            .get(p.url("/me"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let info: Value = res.json().await.unwrap();
        assert_eq!(info["sub"], ALICE_SUB);
        assert_eq!(info["email"], ALICE_EMAIL);
    }
    assert_eq!(p.token_requests("authorization_code").await, 4);
}

#[tokio::test]
async fn the_code_is_single_use_and_bound_to_its_verifier() {
    let p = provider().await;
    let auth = authorization(&p, "client-RS256", "openid");
    let back = p
        .login(&browser(), &auth.url, ALICE_EMAIL, ALICE_PASSWORD)
        .await;
    let code = query_param(&back, "code").unwrap();
    let exchange = |verifier: String| {
        let code = code.clone();
        let p = &p;
        async move {
            token(
                p,
                "client-RS256",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", &verifier),
                ],
            )
            .await
        }
    };
    invalid_grant(exchange(pkce().0).await);
    let (status, body) = exchange(auth.verifier.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    invalid_grant(exchange(auth.verifier.clone()).await);
}

#[tokio::test]
async fn the_token_endpoint_authenticates_the_client_one_way_at_a_time() {
    let p = provider().await;
    let auth = authorization(&p, "client-post", "openid");
    let back = p
        .login(&browser(), &auth.url, ALICE_EMAIL, ALICE_PASSWORD)
        .await;
    let code = query_param(&back, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", auth.verifier.as_str()),
        ("client_id", "client-post"),
    ];
    let post = |secret: &'static str| {
        let mut posted = form.to_vec();
        posted.push(("client_secret", secret));
        http().post(p.url("/token")).form(&posted)
    };
    let res = post("not-the-secret").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // The secret in the body and in HTTP Basic at once: refused.
    let both = post(SECRET)
        .basic_auth("client-post", Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        both.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let res = post(SECRET).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_password_is_refused_by_the_form_and_cancel_answers_access_denied() {
    let p = provider().await;
    let browser = browser();
    let auth = authorization(&p, "client-ES256", "openid email");
    for (user, password) in [
        (ALICE_EMAIL, "not-her-password"),
        ("nobody@idp.test", ALICE_PASSWORD),
        (ALICE_SUB, ""),
    ] {
        match p.submit_login(&browser, &auth.url, user, password).await {
            LoginOutcome::Page { status, body } => {
                assert_eq!(status, StatusCode::UNAUTHORIZED);
                assert!(body.contains("Wrong email or password."), "{body}");
                assert!(body.contains("<form id=\"login\""), "the form again");
            }
            LoginOutcome::Redirected(to) => panic!("{user} signed in: {to}"),
        }
    }
    assert_eq!(p.token_requests("authorization_code").await, 0);
    // The sub is a username too; any case of the email works.
    let back = p
        .login(
            &browser,
            &auth.url,
            &ALICE_EMAIL.to_uppercase(),
            ALICE_PASSWORD,
        )
        .await;
    assert!(query_param(&back, "code").is_some(), "{back}");

    let other = authorization(&p, "client-ES256", "openid");
    let back = p
        .cancel_login(&crate::upstream::browser(), &other.url)
        .await;
    assert!(back.starts_with(CALLBACK), "{back}");
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(other.state.as_str())
    );
}

#[tokio::test]
async fn a_browser_signed_in_at_the_provider_comes_straight_back() {
    let p = provider().await;
    let browser = browser();
    let first = authorization(&p, "client-RS256", "openid");
    p.login(&browser, &first.url, ALICE_EMAIL, ALICE_PASSWORD)
        .await;
    let second = authorization(&p, "client-PS256", "openid email");
    // No form: whatever password is given, the session answers.
    let back = p.login(&browser, &second.url, ALICE_EMAIL, "unused").await;
    assert!(query_param(&back, "code").is_some(), "{back}");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_grant() {
    let p = provider().await;
    let (_, tokens) = tokens_for(&p, "client-RS256").await;
    let first = tokens["refresh_token"].as_str().unwrap();
    let (status, renewed) = refresh(&p, "client-RS256", first).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let second = renewed["refresh_token"].as_str().unwrap();
    assert_ne!(second, first, "rotated");
    assert_ne!(renewed["access_token"], tokens["access_token"]);
    assert!(renewed["id_token"].is_string());
    // Another client cannot use it.
    invalid_grant(refresh(&p, "client-ES256", second).await);
    // The first one again: refused, and the whole grant goes with it.
    invalid_grant(refresh(&p, "client-RS256", first).await);
    invalid_grant(refresh(&p, "client-RS256", second).await);
    assert_eq!(p.token_requests("refresh_token").await, 4);
}

#[tokio::test]
async fn revoking_the_users_grants_fails_the_next_refresh_and_the_access_token() {
    let p = provider().await;
    let (_, a) = tokens_for(&p, "client-RS256").await;
    let (_, b) = tokens_for(&p, "client-EdDSA").await;
    assert_eq!(p.revoke_grants("7").await, 0, "Mallory has none");
    assert_eq!(p.revoke_grants(ALICE_SUB).await, 2);
    for (client, tokens) in [("client-RS256", &a), ("client-EdDSA", &b)] {
        invalid_grant(refresh(&p, client, tokens["refresh_token"].as_str().unwrap()).await);
        let at = tokens["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&p, at).await, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn the_revocation_endpoint_revokes_a_refresh_token() {
    let p = provider().await;
    let (_, tokens) = tokens_for(&p, "client-PS256").await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let res = http()
        .post(p.url("/token/revocation"))
        .basic_auth("client-PS256", Some(SECRET))
        .form(&[("token", rt), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    invalid_grant(refresh(&p, "client-PS256", rt).await);
    assert_eq!(p.requests("revocation").await, 1);
}

#[tokio::test]
async fn the_providers_clock_expires_access_tokens_when_moved() {
    let p = provider().await;
    let (_, tokens) = tokens_for(&p, "client-RS256").await;
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&p, at).await, StatusCode::OK);
    assert_eq!(p.advance_clock(301).await, START + 301);
    assert_eq!(userinfo(&p, at).await, StatusCode::UNAUTHORIZED);
    // A refresh gives tokens minted at the new time.
    let (status, renewed) = refresh(
        &p,
        "client-RS256",
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_eq!(
        claims(renewed["id_token"].as_str().unwrap())["iat"],
        START + 301
    );
    p.set_clock(START).await;
    assert_eq!(p.advance_clock(0).await, START);
}

#[tokio::test]
async fn the_token_endpoint_counts_by_grant_type_and_fails_or_stalls_on_demand() {
    let p = provider().await;
    let (_, tokens) = tokens_for(&p, "client-RS256").await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    p.fail_token_endpoint(503, 2).await;
    for _ in 0..2 {
        let res = http()
            .post(p.url("/token"))
            .basic_auth("client-RS256", Some(SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.text().await.unwrap(), "upstream unavailable");
    }
    // A failed request did not spend the refresh token.
    let (status, body) = refresh(&p, "client-RS256", &rt).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let counters = p.counters().await;
    assert_eq!(counters["token"]["authorization_code"], 1);
    assert_eq!(counters["token"]["refresh_token"], 3);
    assert_eq!(counters["requests"]["token"], 4);

    // Stalled: a client that waits 200 ms gives up before the answer.
    p.slow_token_endpoint(Duration::from_secs(5), 1).await;
    let impatient = http()
        .post(p.url("/token"))
        .timeout(Duration::from_millis(200))
        .basic_auth("client-RS256", Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await;
    assert!(impatient.unwrap_err().is_timeout());
    p.reset_counters().await;
    assert_eq!(p.token_requests("refresh_token").await, 0);
}

#[tokio::test]
async fn spoiled_id_tokens_fail_verification_as_announced() {
    let p = provider().await;
    let jwks = get_json(&p.url("/jwks")).await;
    let (auth, tokens) = tokens_for(&p, "client-ES256").await;
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_string();
    let modes = [
        Tamper::Nonce,
        Tamper::Audience,
        Tamper::Issuer,
        Tamper::Expired,
        Tamper::Signature,
        Tamper::ForeignKey,
        Tamper::AlgNone,
        Tamper::AlgConfusion,
    ];
    for mode in modes {
        p.tamper_id_tokens(mode, 1).await;
        let (status, body) = refresh(&p, "client-ES256", &rt).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        rt = body["refresh_token"].as_str().unwrap().to_string();
        let jwt = body["id_token"].as_str().unwrap();
        let verified = verify(&jwks, jwt);
        let c = claims(jwt);
        match mode {
            Tamper::Nonce => assert_ne!(verified.unwrap()["nonce"], auth.nonce.as_str()),
            Tamper::Audience => assert_eq!(verified.unwrap()["aud"], "another-client"),
            Tamper::Issuer => assert_ne!(verified.unwrap()["iss"], p.issuer()),
            Tamper::Expired => assert!(verified.unwrap()["exp"].as_i64().unwrap() < START),
            Tamper::Signature | Tamper::ForeignKey => {
                assert_eq!(verified.unwrap_err(), "bad signature");
                assert_eq!(c["nonce"], auth.nonce.as_str(), "claims untouched");
            }
            Tamper::AlgNone | Tamper::AlgConfusion => {
                assert!(verified.is_err(), "{mode:?}");
                assert!(jwt.ends_with('.') == (mode == Tamper::AlgNone));
            }
        }
    }
    // The count ran out: the next one is genuine.
    let (_, body) = refresh(&p, "client-ES256", &rt).await;
    let genuine = verify(&jwks, body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(genuine["nonce"], auth.nonce.as_str());
    assert_eq!(genuine["aud"], "client-ES256");
}
