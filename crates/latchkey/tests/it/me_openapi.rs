//! `/me/v1/openapi.json`: latchkey's own document, generated from the code,
//! against the official one.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

fn official() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/spec/myaccount-api-oas.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the official document is expected at {}: {e}",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_document_is_public_and_matches_the_official_operations() {
    let s = TestServer::start().await;
    let res = s
        .http()
        .get(s.url("/me/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["servers"][0]["url"], format!("{}me/v1", s.issuer));
    assert_eq!(
        doc["components"]["securitySchemes"]["Bearer-DPoP"]["scheme"],
        "bearer"
    );
    for schema in [
        "ErrorResponse",
        "AuthenticationMethod",
        "ListFactorsResponseContent",
        "CreateAuthenticationMethodRequestContent",
        "CreateConnectedAccountsResponseContent",
        "ConnectedAccount",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }

    // Every live operation of the official document is here, under the same
    // operationId and scope.
    let official = official();
    let mut count = 0;
    for (path, item) in official["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["x-release-lifecycle"] == "planned" {
                continue;
            }
            count += 1;
            let ours = &doc["paths"][path][method];
            assert!(ours.is_object(), "{method} {path} missing");
            assert_eq!(ours["operationId"], op["operationId"], "{method} {path}");
            // Each success the official document declares, declared here.
            for (status, _) in op["responses"].as_object().unwrap() {
                if status.starts_with('2') {
                    assert!(
                        ours["responses"][status].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
            assert_eq!(
                ours["security"][0]["Bearer-DPoP"], op["security"][0]["Bearer-DPoP"],
                "{method} {path}"
            );
        }
    }
    assert_eq!(count, 12);
}

#[tokio::test]
async fn responses_match_the_documented_shapes() {
    let s = TestServer::start().await;
    let doc: Value = s
        .http()
        .get(s.url("/me/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &doc["components"]["schemas"];
    let props = |name: &str| -> Vec<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    // The error body the server sends has exactly the documented keys.
    let token = s.me_token(ME_SCOPES).await;
    let r = s
        .me(
            "GET",
            "/authentication-methods?type=fax",
            Some(&token),
            None,
        )
        .await;
    for k in r.body.as_object().unwrap().keys() {
        assert!(props("ErrorResponse").contains(k), "{k}");
    }
    let r = s.me("GET", "/factors", Some(&token), None).await;
    for k in r.body["factors"][0].as_object().unwrap().keys() {
        assert!(props("Factor").contains(k), "{k}");
    }
}
