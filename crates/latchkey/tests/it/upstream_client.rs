//! The upstream client (`services::upstream`) against real providers over
//! real HTTP: a second latchkey speaking OpenID Connect (discovery, the
//! code with PKCE, the ID token verified against its JWKS, refresh,
//! revocation), and a hostile server answering garbage, too much, too
//! slowly, redirects and the wrong media type, each an error and never a
//! panic or a hang.

use std::sync::Arc;

use latchkey::services::upstream::{self, AuthorizeExtras, Provider, Revoked, UpstreamError};
use latchkey::tenant::Tenant;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::idp::*;
use crate::support::*;

async fn tenant_of(server: &TestServer) -> Arc<Tenant> {
    server
        .state
        .tenants
        .by_host(&format!("localhost:{}", server.port))
        .await
        .unwrap()
        .unwrap()
}

async fn provider(server: &TestServer, connection: &str) -> Provider {
    let tenant = tenant_of(server).await;
    let c = tenant.upstream_connection(connection).unwrap();
    Provider::of(&server.state, &tenant, c).unwrap()
}

#[tokio::test]
async fn openid_connect_with_a_second_latchkey() {
    let pair = Pair::start(|_| String::new()).await;
    let core = &pair.rp.state;
    let p = provider(&pair.rp, "idp").await;
    let callback = pair.callback();
    let extras = AuthorizeExtras {
        params: vec![("login_hint".into(), BOB.into())],
    };
    let req = upstream::authorization_request(
        core,
        &p,
        &callback,
        &["offline_access".to_string(), "openid".to_string()],
        &extras,
    )
    .await
    .unwrap();
    assert_eq!(req.scopes, ["openid", "profile", "email", "offline_access"]);
    let q = |name: &str| query_param(&req.url, name);
    assert!(
        req.url
            .starts_with(&format!("{}authorize?", pair.idp_issuer()))
    );
    assert_eq!(q("response_type").as_deref(), Some("code"));
    assert_eq!(q("client_id").as_deref(), Some("rp"));
    assert_eq!(q("redirect_uri"), Some(callback.clone()));
    assert_eq!(
        q("scope").as_deref(),
        Some("openid profile email offline_access")
    );
    assert_eq!(q("state"), Some(req.state.clone()));
    assert_eq!(q("nonce"), req.nonce.clone());
    assert_eq!(q("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(
        q("code_challenge").unwrap(),
        latchkey::crypto::hash::sha256_b64url(req.code_verifier.as_bytes())
    );
    assert_eq!(q("login_hint").as_deref(), Some(BOB));

    let browser = browser();
    let back = login_at_idp(&browser, &req.url, BOB, BOB_PASSWORD).await;
    assert_eq!(back.status(), StatusCode::FOUND);
    let location = back.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&callback), "{location}");
    assert_eq!(query_param(&location, "state"), Some(req.state.clone()));
    let code = query_param(&location, "code").unwrap();

    // A wrong verifier is refused by the upstream, which spends the code.
    let wrong = upstream::exchange_code(core, &p, &code, &callback, &"x".repeat(43)).await;
    assert!(wrong.as_ref().unwrap_err().is_invalid_grant(), "{wrong:?}");
    let spent = upstream::exchange_code(core, &p, &code, &callback, &req.code_verifier).await;
    assert!(spent.unwrap_err().is_invalid_grant());
    // Again: Bob's session at the upstream answers at once.
    let req =
        upstream::authorization_request(core, &p, &callback, &["offline_access".into()], &extras)
            .await
            .unwrap();
    let back = login_at_idp(&browser, &req.url, BOB, BOB_PASSWORD).await;
    let location = back.headers()["location"].to_str().unwrap().to_string();
    let code = query_param(&location, "code").unwrap();
    let tokens = upstream::exchange_code(core, &p, &code, &callback, &req.code_verifier)
        .await
        .unwrap();
    assert!(tokens.refresh_token.is_some() && tokens.id_token.is_some());
    assert!(tokens.expires_at.is_some());

    let who = upstream::identify(core, &p, &tokens, req.nonce.as_deref())
        .await
        .unwrap();
    assert_eq!(who.subject, "auth0|bob");
    assert_eq!(who.email.as_deref(), Some(BOB));
    assert!(who.email_verified);
    // Another nonce, or none at all where one was sent: refused.
    let e = upstream::identify(core, &p, &tokens, Some("another-nonce"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, UpstreamError::IdToken(m) if m.contains("nonce")),
        "{e}"
    );

    let refreshed = upstream::refresh(core, &p, tokens.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    let rt = refreshed.refresh_token.clone().unwrap();
    assert_ne!(
        Some(&rt),
        tokens.refresh_token.as_ref(),
        "the upstream rotates"
    );
    assert_eq!(
        upstream::revoke(core, &p, Some(&rt), Some(&refreshed.access_token))
            .await
            .unwrap(),
        Revoked::Done
    );
    let after = upstream::refresh(core, &p, &rt).await.unwrap_err();
    assert!(after.is_invalid_grant(), "{after}");
}

/// What the hostile server answers on a path.
fn hostile_answer(path: &str, port: u16) -> Option<Vec<u8>> {
    let issuer = format!("http://127.0.0.1:{port}/{}", path.split('/').nth(1)?);
    let reply = |status: &str, ctype: &str, body: String| {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let json = |body: String| reply("200 OK", "application/json", body);
    let discovery = |issuer: &str| {
        json(format!(
            r#"{{"issuer":"{issuer}","authorization_endpoint":"{issuer}/authorize",
               "token_endpoint":"{issuer}/token","jwks_uri":"{issuer}/jwks"}}"#
        ))
    };
    let (case, rest) = path.trim_start_matches('/').split_once('/')?;
    Some(match (case, rest) {
        ("html", _) => reply("200 OK", "text/html", "<html>hello</html>".into()),
        ("huge", _) => json(format!("{{\"issuer\":\"{}\"}}", "x".repeat(200_000))),
        ("redirect", _) => b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\n\
              content-length: 0\r\nconnection: close\r\n\r\n"
            .to_vec(),
        ("broken", _) => reply("500 Internal Server Error", "text/plain", "oops".into()),
        ("garbage", _) => json("{\"issuer\": [1, 2".into()),
        ("array", _) => json("[]".into()),
        ("otheriss", ".well-known/openid-configuration") => discovery("https://evil.test"),
        ("nojwks", ".well-known/openid-configuration") => json(format!(
            r#"{{"issuer":"{issuer}","authorization_endpoint":"{issuer}/a","token_endpoint":"{issuer}/t"}}"#
        )),
        ("ok", ".well-known/openid-configuration") => discovery(&issuer),
        ("ok", "token") => json(r#"{"access_token":"at","token_type":"Bearer","id_token":"not.a.jwt"}"#.into()),
        ("ok", "jwks") => json(r#"{"keys":[]}"#.into()),
        ("gh", "token") => json(
            r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#.into(),
        ),
        ("form", "token") => reply(
            "200 OK",
            "application/x-www-form-urlencoded",
            "access_token=gho_x&token_type=bearer&scope=repo%2Cuser".into(),
        ),
        ("form", "user") => json("[\"not\", \"an\", \"object\"]".into()),
        ("ghok", "token") => json(
            r#"{"access_token":"gho_ok","token_type":"bearer","scope":"read:user,user:email"}"#.into(),
        ),
        ("ghok", "api/user") => json(r#"{"id": 583231, "login": "octocat", "email": null}"#.into()),
        ("ghok", "api/user/emails") => json(
            r#"[{"email":"old@octo.test","primary":false,"verified":true},
                {"email":"octo@octo.test","primary":true,"verified":true}]"#
                .into(),
        ),
        ("ghok", "api/applications/rp/grant") => reply("204 No Content", "text/plain", String::new()),
        ("badtype", "token") => json(r#"{"access_token":"at","token_type":"mac"}"#.into()),
        ("denied", "token") => reply(
            "400 Bad Request",
            "application/json",
            r#"{"error":"invalid_grant","error_description":"revoked"}"#.into(),
        ),
        _ => reply("404 Not Found", "text/plain", "no".into()),
    })
}

/// A server that answers whatever `hostile_answer` says, and holds the
/// connection without a word on `/slow/…`.
pub(crate) async fn hostile_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let path = text.split(' ').nth(1).unwrap_or("/").to_string();
                if path.starts_with("/slow/") {
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    return;
                }
                let answer = hostile_answer(&path, port).unwrap_or_default();
                let _ = socket.write_all(&answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    port
}

fn hostile_connections(port: u16) -> String {
    let mut out = String::new();
    for case in [
        "html", "huge", "redirect", "broken", "garbage", "array", "otheriss", "nojwks", "slow",
        "ok",
    ] {
        out += &format!(
            "  - name: oidc-{case}\n    strategy: oidc\n    options: {{ issuer: \"http://127.0.0.1:{port}/{case}\", \
             client_id: rp, client_secret_env: IDP_CLIENT_SECRET, timeout_seconds: 1 }}\n"
        );
    }
    for case in ["gh", "form", "badtype", "denied"] {
        out += &format!(
            "  - name: oauth-{case}\n    strategy: github\n    options: {{ client_id: rp, client_secret_env: IDP_CLIENT_SECRET, \
             authorizationURL: \"http://127.0.0.1:{port}/{case}/authorize\", tokenURL: \"http://127.0.0.1:{port}/{case}/token\", \
             userInfoURL: \"http://127.0.0.1:{port}/{case}/user\", timeout_seconds: 1 }}\n"
        );
    }
    out += &format!(
        "  - name: github-ok\n    strategy: github\n    options: {{ client_id: rp, client_secret_env: IDP_CLIENT_SECRET, \
         authorizationURL: \"http://127.0.0.1:{port}/ghok/authorize\", tokenURL: \"http://127.0.0.1:{port}/ghok/token\", \
         userInfoURL: \"http://127.0.0.1:{port}/ghok/api/user\" }}\n"
    );
    for (name, strategy) in [("google-ok", "google-oauth2"), ("apple-ok", "apple")] {
        out += &format!(
            "  - name: {name}\n    strategy: {strategy}\n    options: {{ issuer: \"http://127.0.0.1:{port}/ok\", \
             client_id: rp, client_secret_env: IDP_CLIENT_SECRET }}\n"
        );
    }
    out += "  - name: closed\n    strategy: oauth2\n    options: { client_id: rp, client_secret_env: IDP_CLIENT_SECRET, \
            authorizationURL: \"http://127.0.0.1:9/a\", tokenURL: \"http://127.0.0.1:9/t\", userInfoURL: \"http://127.0.0.1:9/u\" }\n";
    out
}

#[tokio::test]
async fn a_hostile_provider_is_an_error_never_a_panic_or_a_hang() {
    let port = hostile_server().await;
    let rp = TestServer::with_tenants(&[]).await;
    latchkey::tenant::apply::apply_text(&rp.state, &acme_with(rp.port, &hostile_connections(port)))
        .await
        .unwrap();
    let core = &rp.state;
    let cb = format!("http://localhost:{}/login/callback", rp.port);
    let discover = |name: &'static str| {
        let rp = &rp;
        let cb = cb.clone();
        async move {
            let p = provider(rp, name).await;
            upstream::authorization_request(&rp.state, &p, &cb, &[], &AuthorizeExtras::default())
                .await
                .map(|_| ())
                .unwrap_err()
        }
    };
    let protocol = |e: &UpstreamError, says: &str| {
        assert!(
            matches!(e, UpstreamError::Protocol(m) if m.contains(says)),
            "{e}"
        );
    };
    protocol(&discover("oidc-html").await, "not JSON");
    protocol(&discover("oidc-huge").await, "larger than");
    protocol(&discover("oidc-redirect").await, "redirect");
    protocol(&discover("oidc-garbage").await, "not a JSON object");
    protocol(&discover("oidc-array").await, "not a JSON object");
    protocol(&discover("oidc-otheriss").await, "evil.test");
    protocol(&discover("oidc-nojwks").await, "jwks_uri");
    assert!(
        matches!(discover("oidc-broken").await, UpstreamError::Unreachable(m) if m.contains("500"))
    );
    let slow = discover("oidc-slow").await;
    assert!(
        matches!(&slow, UpstreamError::Unreachable(m) if m.contains("in time")),
        "{slow}"
    );

    // Presets ask as their providers want: Google takes offline access as
    // parameters, Apple answers by form_post.
    let p = provider(&rp, "google-ok").await;
    let extras = AuthorizeExtras::default();
    let req = upstream::authorization_request(core, &p, &cb, &["offline_access".into()], &extras)
        .await
        .unwrap();
    assert_eq!(
        query_param(&req.url, "scope").as_deref(),
        Some("openid profile email")
    );
    assert_eq!(
        query_param(&req.url, "access_type").as_deref(),
        Some("offline")
    );
    assert_eq!(query_param(&req.url, "prompt").as_deref(), Some("consent"));
    let p = provider(&rp, "apple-ok").await;
    let req = upstream::authorization_request(core, &p, &cb, &[], &extras)
        .await
        .unwrap();
    assert_eq!(
        query_param(&req.url, "response_mode").as_deref(),
        Some("form_post")
    );
    assert_eq!(
        query_param(&req.url, "scope").as_deref(),
        Some("openid name email")
    );

    // An ID token that is not one, from a provider that is otherwise fine.
    let p = provider(&rp, "oidc-ok").await;
    let tokens = upstream::exchange_code(core, &p, "c", &cb, "v")
        .await
        .unwrap();
    let e = upstream::identify(core, &p, &tokens, Some("n"))
        .await
        .unwrap_err();
    assert!(matches!(e, UpstreamError::IdToken(_)), "{e}");

    // GitHub's errors in a 200, form-encoded answers, wrong token types,
    // refusals and a closed port.
    let p = provider(&rp, "oauth-gh").await;
    let e = upstream::exchange_code(core, &p, "c", &cb, "v")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, UpstreamError::Refused { error, .. } if error == "bad_verification_code"),
        "{e}"
    );
    let p = provider(&rp, "oauth-form").await;
    let tokens = upstream::exchange_code(core, &p, "c", &cb, "v")
        .await
        .unwrap();
    assert_eq!(tokens.scopes.as_deref().unwrap(), ["repo", "user"]);
    protocol(
        &upstream::identify(core, &p, &tokens, None)
            .await
            .unwrap_err(),
        "not a JSON object",
    );
    // GitHub that answers well: the account is its id, the email its
    // verified primary one; revoking goes to its API beside /user.
    let p = provider(&rp, "github-ok").await;
    let tokens = upstream::exchange_code(core, &p, "c", &cb, "v")
        .await
        .unwrap();
    let who = upstream::identify(core, &p, &tokens, None).await.unwrap();
    assert_eq!(who.subject, "583231");
    assert_eq!(
        (who.email.as_deref(), who.email_verified),
        (Some("octo@octo.test"), true)
    );
    assert_eq!(
        upstream::revoke(core, &p, None, Some(&tokens.access_token))
            .await
            .unwrap(),
        Revoked::Done
    );
    let p = provider(&rp, "oauth-badtype").await;
    protocol(
        &upstream::exchange_code(core, &p, "c", &cb, "v")
            .await
            .unwrap_err(),
        "token_type",
    );
    let p = provider(&rp, "oauth-denied").await;
    assert!(
        upstream::refresh(core, &p, "rt")
            .await
            .unwrap_err()
            .is_invalid_grant()
    );
    let p = provider(&rp, "closed").await;
    assert!(matches!(
        upstream::refresh(core, &p, "rt").await.unwrap_err(),
        UpstreamError::Unreachable(_)
    ));
}
