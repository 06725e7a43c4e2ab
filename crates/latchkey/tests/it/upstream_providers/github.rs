//! The GitHub-like server: GitHub's answers and quirks.

use std::sync::Arc;

use latchkey::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::Value;

use super::CALLBACK;
use crate::support::{START, pkce, query_param};
use crate::upstream::github::{
    ACCESS_TOKEN_TTL, GithubApp, GithubServer, GithubUser, REFRESH_TOKEN_TTL,
};
use crate::upstream::{browser, http};

const GH_ID: &str = "Iv1.0123456789abcdef";
const GH_SECRET: &str = "0123456789abcdef0123456789abcdef01234567";
const GH_EXPIRING: &str = "Iv23.expiring";

/// The server, on a clock of the test's, with Octocat signed in.
async fn github() -> (ManualClock, GithubServer) {
    let clock = ManualClock::new(START);
    let server = GithubServer::start(
        vec![
            GithubApp::new(GH_ID, GH_SECRET, CALLBACK),
            GithubApp::new(GH_EXPIRING, GH_SECRET, CALLBACK).expiring(),
        ],
        vec![
            GithubUser::new(583231, "octocat", "octocat@github.test", true).name("The Octocat"),
            GithubUser::new(9919, "hidden", "hidden@github.test", false),
        ],
        Arc::new(clock.clone()),
    )
    .await;
    server.sign_in("octocat");
    (clock, server)
}

fn gh_authorize(gh: &GithubServer, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut q = vec![
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("scope", "read:user user:email"),
        ("state", "gh-state"),
    ];
    q.extend_from_slice(extra);
    format!(
        "{}?{}",
        gh.url("/login/oauth/authorize"),
        serde_urlencoded::to_string(&q).unwrap()
    )
}

async fn gh_code(gh: &GithubServer, client_id: &str, extra: &[(&str, &str)]) -> String {
    let back = gh
        .authorize(&browser(), &gh_authorize(gh, client_id, extra))
        .await;
    assert!(back.starts_with(CALLBACK), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("gh-state"));
    query_param(&back, "code").expect("a code")
}

/// POSTs to the token endpoint asking for JSON: GitHub answers 200 even
/// for errors.
async fn gh_token(gh: &GithubServer, form: &(impl serde::Serialize + ?Sized)) -> Value {
    let res = http()
        .post(gh.url("/login/oauth/access_token"))
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn gh_exchange(gh: &GithubServer, client_id: &str, code: &str) -> Value {
    gh_token(
        gh,
        &[
            ("client_id", client_id),
            ("client_secret", GH_SECRET),
            ("code", code),
            ("redirect_uri", CALLBACK),
        ],
    )
    .await
}

async fn gh_api(gh: &GithubServer, path: &str, auth: &str) -> reqwest::Response {
    http()
        .get(gh.url(path))
        .header("authorization", auth)
        .header("user-agent", "latchkey-tests")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn github_exchanges_a_code_once_and_answers_json_or_a_form() {
    let (_, gh) = github().await;
    let code = gh_code(&gh, GH_ID, &[]).await;
    let tokens = gh_exchange(&gh, GH_ID, &code).await;
    let at = tokens["access_token"].as_str().unwrap();
    assert!(at.starts_with("gho_") && at.len() == 40, "{at}");
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["scope"], "read:user,user:email");
    assert!(tokens.get("refresh_token").is_none() && tokens.get("expires_in").is_none());
    // The same code again: a 200 with an error, GitHub's way.
    let again = gh_exchange(&gh, GH_ID, &code).await;
    assert_eq!(again["error"], "bad_verification_code");
    assert_eq!(
        again["error_description"],
        "The code passed is incorrect or expired."
    );

    // Without `Accept: application/json`, a form (and errors too).
    let code = gh_code(&gh, GH_ID, &[]).await;
    let form = [
        ("client_id", GH_ID),
        ("client_secret", GH_SECRET),
        ("code", code.as_str()),
    ];
    let res = http()
        .post(gh.url("/login/oauth/access_token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    let text = res.text().await.unwrap();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&text).unwrap();
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["access_token", "scope", "token_type"], "{text}");
    assert_eq!(pairs[1].1, "read:user,user:email");
    let res = http()
        .post(gh.url("/login/oauth/access_token"))
        .query(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.text().await.unwrap().split('&').next(),
        Some("error=bad_verification_code"),
        "parameters in the query are read too"
    );
    assert_eq!(gh.count("access_token:authorization_code"), 4);
    assert_eq!(gh.count("authorize"), 2);
}

#[tokio::test]
async fn github_users_and_emails_answer_by_token_and_scope() {
    let (_, gh) = github().await;
    let full = gh_exchange(&gh, GH_ID, &gh_code(&gh, GH_ID, &[]).await).await;
    let full = full["access_token"].as_str().unwrap().to_string();
    for auth in [format!("Bearer {full}"), format!("token {full}")] {
        let res = gh_api(&gh, "/user", &auth).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["x-oauth-scopes"], "read:user, user:email");
        let user: Value = res.json().await.unwrap();
        assert_eq!(user["id"], 583231);
        assert_eq!(user["login"], "octocat");
        assert_eq!(user["name"], "The Octocat");
        assert_eq!(user["email"], "octocat@github.test");
    }
    let emails: Value = gh_api(&gh, "/user/emails", &format!("token {full}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        emails,
        serde_json::json!([{ "email": "octocat@github.test", "primary": true, "verified": true,
                             "visibility": "public" }])
    );

    // Without user:email: /user works, /user/emails is a 404.
    let narrow = gh_code(&gh, GH_ID, &[("scope", "read:user")]).await;
    let narrow = gh_exchange(&gh, GH_ID, &narrow).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = gh_api(&gh, "/user/emails", &format!("Bearer {narrow}")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()["x-accepted-oauth-scopes"], "user, user:email");
    assert_eq!(res.json::<Value>().await.unwrap()["message"], "Not Found");

    // A private address is not in /user.
    gh.sign_in("hidden");
    let hidden = gh_exchange(&gh, GH_ID, &gh_code(&gh, GH_ID, &[]).await).await;
    let res = gh_api(
        &gh,
        "/user",
        &format!("Bearer {}", hidden["access_token"].as_str().unwrap()),
    )
    .await;
    let user: Value = res.json().await.unwrap();
    assert_eq!(
        (user["login"].as_str(), &user["email"]),
        (Some("hidden"), &Value::Null)
    );

    // Unknown token, no token, no User-Agent.
    let res = gh_api(&gh, "/user", "Bearer gho_forged").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"],
        "Bad credentials"
    );
    let res = http()
        .get(gh.url("/user"))
        .header("user-agent", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"],
        "Requires authentication"
    );
    let res = http()
        .get(gh.url("/user"))
        .bearer_auth(&full)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "GitHub's API wants a User-Agent"
    );
    assert_eq!(gh.count("user"), 6);
    assert_eq!(gh.count("user/emails"), 2);
}

#[tokio::test]
async fn github_checks_the_secret_the_redirect_uri_the_verifier_and_the_codes_age() {
    let (clock, gh) = github().await;
    let code = gh_code(&gh, GH_ID, &[]).await;
    let wrong = gh_token(
        &gh,
        &[
            ("client_id", GH_ID),
            ("client_secret", "nope"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(wrong["error"], "incorrect_client_credentials");
    // The credentials were checked first: the code is still good, via Basic.
    let res = http()
        .post(gh.url("/login/oauth/access_token"))
        .header("accept", "application/json")
        .basic_auth(GH_ID, Some(GH_SECRET))
        .form(&[("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert!(res.json::<Value>().await.unwrap()["access_token"].is_string());

    // A redirect_uri off the callback: back to the registered callback with the error.
    let off = gh_authorize(
        &gh,
        GH_ID,
        &[("redirect_uri", "http://localhost:5173/elsewhere")],
    );
    let back = gh.authorize(&browser(), &off).await;
    assert!(back.starts_with(&format!("{CALLBACK}?")), "{back}");
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("redirect_uri_mismatch")
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("gh-state"));
    // Below the callback's path is allowed; the exchange must then repeat it.
    let below = format!("{CALLBACK}/deeper");
    let code = gh_code(&gh, GH_ID, &[("redirect_uri", &below)]).await;
    let mismatch = gh_exchange(&gh, GH_ID, &code).await;
    assert_eq!(mismatch["error"], "redirect_uri_mismatch");

    // PKCE: the verifier must match the challenge.
    let (verifier, challenge) = pkce();
    let pkce_params = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (given, works) in [(pkce().0, false), (verifier.clone(), true)] {
        let code = gh_code(&gh, GH_ID, &pkce_params).await;
        let form = [
            ("client_id", GH_ID),
            ("client_secret", GH_SECRET),
            ("code", code.as_str()),
            ("code_verifier", given.as_str()),
        ];
        let answer = gh_token(&gh, &form).await;
        assert_eq!(answer["access_token"].is_string(), works, "{answer}");
    }

    // Codes last ten minutes.
    let code = gh_code(&gh, GH_ID, &[]).await;
    clock.advance(601);
    assert_eq!(
        gh_exchange(&gh, GH_ID, &code).await["error"],
        "bad_verification_code"
    );

    // The user refuses.
    gh.refuse(true);
    let back = gh
        .authorize(&browser(), &gh_authorize(&gh, GH_ID, &[]))
        .await;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
}

#[tokio::test]
async fn github_expiring_tokens_refresh_and_rotate() {
    let (clock, gh) = github().await;
    let tokens = gh_exchange(&gh, GH_EXPIRING, &gh_code(&gh, GH_EXPIRING, &[]).await).await;
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert!(at.starts_with("ghu_") && rt.starts_with("ghr_"), "{tokens}");
    assert_eq!(tokens["expires_in"], ACCESS_TOKEN_TTL);
    assert_eq!(tokens["refresh_token_expires_in"], REFRESH_TOKEN_TTL);
    assert_eq!(
        gh_api(&gh, "/user", &format!("Bearer {at}")).await.status(),
        StatusCode::OK
    );
    clock.advance(ACCESS_TOKEN_TTL);
    assert_eq!(
        gh_api(&gh, "/user", &format!("Bearer {at}")).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let refresh_form = |rt: &str| {
        [
            ("client_id", GH_EXPIRING.to_string()),
            ("client_secret", GH_SECRET.to_string()),
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", rt.to_string()),
        ]
    };
    let renewed = gh_token(&gh, &refresh_form(rt)).await;
    let new_at = renewed["access_token"].as_str().unwrap();
    let new_rt = renewed["refresh_token"].as_str().unwrap();
    assert_ne!(new_rt, rt);
    assert_eq!(
        gh_api(&gh, "/user", &format!("token {new_at}"))
            .await
            .status(),
        StatusCode::OK
    );
    // The used refresh token is done.
    assert_eq!(
        gh_token(&gh, &refresh_form(rt)).await["error"],
        "bad_refresh_token"
    );
    // Refreshing rotates the access token too: the renewed one dies with its refresh token.
    assert!(gh_token(&gh, &refresh_form(new_rt)).await["access_token"].is_string());
    assert_eq!(
        gh_api(&gh, "/user", &format!("token {new_at}"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(gh.count("access_token:refresh_token"), 3);
}

#[tokio::test]
async fn github_revokes_a_grant_with_the_apps_credentials_and_fails_on_demand() {
    let (_, gh) = github().await;
    let first = gh_exchange(&gh, GH_ID, &gh_code(&gh, GH_ID, &[]).await).await;
    let second = gh_exchange(&gh, GH_ID, &gh_code(&gh, GH_ID, &[]).await).await;
    let third = gh_exchange(&gh, GH_ID, &gh_code(&gh, GH_ID, &[]).await).await;
    let status = |what: &'static str, user: &'static str, secret: &'static str, token: &Value| {
        let request = http()
            .delete(gh.url(&format!("/applications/{GH_ID}/{what}")))
            .basic_auth(user, Some(secret))
            .header("user-agent", "latchkey-tests")
            .json(&serde_json::json!({ "access_token": token.as_str() }))
            .send();
        async move { request.await.unwrap().status() }
    };
    let token = &first["access_token"];
    assert_eq!(
        status("grant", GH_ID, "wrong", token).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status("grant", GH_EXPIRING, GH_SECRET, token).await,
        StatusCode::NOT_FOUND
    );
    let unknown = Value::from("gho_unknown");
    assert_eq!(
        status("grant", GH_ID, GH_SECRET, &unknown).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // One token: only it goes.
    assert_eq!(
        status("token", GH_ID, GH_SECRET, &third["access_token"]).await,
        StatusCode::NO_CONTENT
    );
    let bearer = |t: &Value| format!("Bearer {}", t["access_token"].as_str().unwrap());
    assert_eq!(
        gh_api(&gh, "/user", &bearer(&third)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        gh_api(&gh, "/user", &bearer(&first)).await.status(),
        StatusCode::OK
    );
    // The grant: every token of the user for the app goes.
    assert_eq!(
        status("grant", GH_ID, GH_SECRET, token).await,
        StatusCode::NO_CONTENT
    );
    for t in [&first, &second] {
        assert_eq!(
            gh_api(&gh, "/user", &bearer(t)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(gh.count("applications/grant"), 4);
    assert_eq!(gh.count("applications/token"), 1);

    gh.fail_token_endpoint(502, 1);
    let code = gh_code(&gh, GH_ID, &[]).await;
    let res = http()
        .post(gh.url("/login/oauth/access_token"))
        .header("accept", "application/json")
        .form(&[
            ("client_id", GH_ID),
            ("client_secret", GH_SECRET),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // The failed request did not spend the code.
    assert!(gh_exchange(&gh, GH_ID, &code).await["access_token"].is_string());
}
