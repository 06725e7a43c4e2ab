use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn openid_configuration_is_per_host_and_truthful() {
    let s = TestServer::start().await;
    let doc: Value = s
        .http()
        .get(s.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], s.issuer);
    assert!(s.issuer.ends_with('/'));
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{}authorize", s.issuer)
    );
    assert_eq!(doc["token_endpoint"], format!("{}oauth/token", s.issuer));
    assert_eq!(
        doc["jwks_uri"],
        format!("{}.well-known/jwks.json", s.issuer)
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["acr_values_supported"],
        serde_json::json!(["http://schemas.openid.net/pape/policies/2007/06/multi-factor"])
    );
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA", "RS256", "PS256"])
    );
    // Every grant type it names is one the token endpoint knows, but the
    // authorization endpoint's own (`implicit`).
    for grant in doc["grant_types_supported"].as_array().unwrap() {
        let grant = grant.as_str().unwrap();
        if grant == "implicit" {
            continue;
        }
        let (_, body) = s
            .token(&[("grant_type", grant), ("client_id", "spa")])
            .await;
        assert_ne!(body["error"], "unsupported_grant_type", "{grant}: {body}");
    }
    let grants = doc["grant_types_supported"].to_string();
    assert!(
        grants.contains("mfa-otp")
            && grants.contains("mfa-oob")
            && grants.contains("mfa-recovery-code")
    );
    // Every endpoint it names answers (not 404).
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "end_session_endpoint",
    ] {
        let url = doc[key].as_str().unwrap();
        let res = s.http().get(url).send().await.unwrap();
        assert_ne!(res.status(), StatusCode::NOT_FOUND, "{key} {url}");
    }

    // The other tenant, on another host, has its own issuer.
    let other: Value = s
        .http()
        .get(format!(
            "http://127.0.0.1:{}/.well-known/openid-configuration",
            s.port
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["issuer"], format!("http://127.0.0.1:{}/", s.port));
}

#[tokio::test]
async fn jwks_publishes_rs256_keys_with_kid() {
    let s = TestServer::start().await;
    let res = s
        .http()
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let jwks: Value = res.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0]["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(keys[0].get("d").is_none(), "no private parts");
    // Each tenant signs with its own key.
    let other: Value = s
        .http()
        .get(format!("http://127.0.0.1:{}/.well-known/jwks.json", s.port))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(other["keys"][0]["kid"], keys[0]["kid"]);
}

#[tokio::test]
async fn unknown_host_is_not_found_in_oauth_dialect() {
    let s = TestServer::start().await;
    let res = s
        .http()
        .get(s.url("/.well-known/openid-configuration"))
        .header("host", "nobody.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn healthz() {
    let s = TestServer::start().await;
    let res = s.http().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
