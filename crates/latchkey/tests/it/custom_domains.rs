//! One tenant on two hosts: its canonical domain (`localhost:PORT`) and a
//! custom domain (`login.acme.test:PORT`, resolved to the test server).
//! Issuer, endpoints, JWKS, `Location` headers, the My Account audience and
//! the passkey relying party follow the host a request came on; a token
//! minted on one host is refused on the other, both ways; the Passkey API
//! can be limited to custom domains.

use std::net::SocketAddr;

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::dpop_client::Key;
use crate::support::*;

const CUSTOM: &str = "login.acme.test";

/// The acme tenant with the custom domain (and passkeys, and the webauthn
/// grant for the SPA), plus `extra`.
fn two_hosts(port: u16, extra: &str) -> String {
    acme(port)
        .replace(
            &format!("domains: [\"localhost:{port}\"]"),
            &format!("domains: [\"localhost:{port}\", \"{CUSTOM}:{port}\"]{extra}"),
        )
        .replace(
            "factors: [password, totp, recovery-code]",
            "factors: [password, totp, recovery-code, passkey]",
        )
        .replace(
            "\"http://auth0.com/oauth/grant-type/password-realm\"] }",
            "\"http://auth0.com/oauth/grant-type/password-realm\", \"urn:okta:params:oauth:grant-type:webauthn\"] }",
        )
}

struct Hosts {
    s: TestServer,
    /// A client for the custom domain.
    custom: reqwest::Client,
}

impl Hosts {
    async fn start(extra: &str) -> Self {
        let s = TestServer::start().await;
        latchkey::tenant::apply::apply_text(&s.state, &two_hosts(s.port, extra))
            .await
            .unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], s.port).into();
        #[allow(
            clippy::disallowed_methods,
            reason = "a test client of the server under test, not an outbound request of latchkey"
        )]
        let custom = reqwest::Client::builder()
            .redirect(Policy::none())
            .resolve(CUSTOM, addr)
            .build()
            .unwrap();
        Self { s, custom }
    }

    /// `path` on the custom domain (plain HTTP to the test server; the
    /// issuer there is https, as for any non-loopback host).
    fn custom_url(&self, path: &str) -> String {
        format!("http://{CUSTOM}:{}{path}", self.s.port)
    }

    fn custom_issuer(&self) -> String {
        format!("https://{CUSTOM}:{}/", self.s.port)
    }

    fn client(&self, custom: bool) -> reqwest::Client {
        if custom {
            self.custom.clone()
        } else {
            self.s.http()
        }
    }

    fn url(&self, custom: bool, path: &str) -> String {
        if custom {
            self.custom_url(path)
        } else {
            self.s.url(path)
        }
    }

    fn issuer(&self, custom: bool) -> String {
        if custom {
            self.custom_issuer()
        } else {
            self.s.issuer.clone()
        }
    }

    /// A My Account token for Alice, got on one host for that host.
    async fn me_token(&self, custom: bool) -> Value {
        self.me_token_with(
            custom,
            "openid read:me:authentication_methods create:me:authentication_methods",
        )
        .await
    }

    async fn me_token_with(&self, custom: bool, scope: &str) -> Value {
        let audience = format!("{}me/", self.issuer(custom));
        let res = self
            .client(custom)
            .post(self.url(custom, "/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "spa"),
                ("username", ALICE),
                ("password", ALICE_PASSWORD),
                ("audience", audience.as_str()),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    async fn list(&self, custom: bool, token: &str) -> StatusCode {
        self.client(custom)
            .get(self.url(custom, "/me/v1/authentication-methods"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }
}

#[tokio::test]
async fn each_host_has_its_own_issuer_endpoints_and_keys_url() {
    let h = Hosts::start("").await;
    for custom in [false, true] {
        let doc: Value = h
            .client(custom)
            .get(h.url(custom, "/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let issuer = h.issuer(custom);
        assert_eq!(doc["issuer"], issuer);
        assert_eq!(doc["token_endpoint"], format!("{issuer}oauth/token"));
        assert_eq!(doc["authorization_endpoint"], format!("{issuer}authorize"));
        assert_eq!(doc["jwks_uri"], format!("{issuer}.well-known/jwks.json"));
        // The same keys on both.
        let jwks: Value = h
            .client(custom)
            .get(h.url(custom, "/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(!jwks["keys"].as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_token_works_only_on_the_host_that_minted_it() {
    let h = Hosts::start("").await;
    let canonical = h.me_token(false).await;
    let custom = h.me_token(true).await;
    let at = |b: &Value| b["access_token"].as_str().unwrap().to_string();
    let c = claims(&at(&custom));
    assert_eq!(c["iss"], h.custom_issuer());
    assert!(
        c["aud"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("{}me/", h.custom_issuer())))
    );
    assert_eq!(
        claims(custom["id_token"].as_str().unwrap())["iss"],
        h.custom_issuer()
    );

    assert_eq!(h.list(false, &at(&canonical)).await, StatusCode::OK);
    assert_eq!(h.list(true, &at(&custom)).await, StatusCode::OK);
    assert_eq!(
        h.list(true, &at(&canonical)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.list(false, &at(&custom)).await, StatusCode::UNAUTHORIZED);

    // The other host's My Account audience cannot be asked for here.
    let res =
        h.s.http()
            .post(h.s.url("/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "spa"),
                ("username", ALICE),
                ("password", ALICE_PASSWORD),
                ("audience", &format!("{}me/", h.custom_issuer())),
            ])
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "access_denied", "{body}");

    // A refresh token of one host does not refresh on the other.
    let res = h
        .me_token_with(true, "openid offline_access read:me:authentication_methods")
        .await;
    let rt = res["refresh_token"].as_str().unwrap();
    let (status, body) =
        h.s.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", rt),
        ])
        .await;
    assert_ne!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn locations_and_dpop_targets_follow_the_host() {
    let h = Hosts::start("").await;
    let token = h.me_token(true).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = h
        .custom
        .post(h.custom_url("/me/v1/authentication-methods"))
        .bearer_auth(&token)
        .json(&json!({"type": "totp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!(
            "{}me/v1/authentication-methods/totp%7C",
            h.custom_issuer()
        )),
        "{location}"
    );

    // A DPoP proof names the host it is for: one for the canonical domain is
    // refused on the custom one.
    let key = Key::es256();
    let now = h.s.clock_now();
    let on = |custom: bool| format!("{}oauth/token", h.issuer(custom));
    let form = [
        ("grant_type", "password"),
        ("client_id", "spa"),
        ("username", ALICE),
        ("password", ALICE_PASSWORD),
    ];
    let res = h
        .custom
        .post(h.custom_url("/oauth/token"))
        .header("DPoP", key.proof("POST", &on(false), now, None, None))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");
    let res = h
        .custom
        .post(h.custom_url("/oauth/token"))
        .header("DPoP", key.proof("POST", &on(true), now, None, None))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn passkey_challenge(h: &Hosts, custom: bool) -> (StatusCode, Value) {
    let res = h
        .client(custom)
        .post(h.url(custom, "/passkey/challenge"))
        .json(&json!({"client_id": "spa"}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn the_passkey_relying_party_follows_the_host_and_can_be_limited_to_custom_domains() {
    let h = Hosts::start("").await;
    let (status, body) = passkey_challenge(&h, false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["authn_params_public_key"]["rpId"], "localhost");
    let (status, body) = passkey_challenge(&h, true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["authn_params_public_key"]["rpId"], CUSTOM);

    let limited = Hosts::start(", passkeys: { require_custom_domain: true }").await;
    let (status, body) = passkey_challenge(&limited, false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    let (status, body) = passkey_challenge(&limited, true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The webauthn grant is refused on the canonical domain too.
    let (status, body) = limited
        .s
        .token(&[
            ("grant_type", "urn:okta:params:oauth:grant-type:webauthn"),
            ("client_id", "spa"),
            ("auth_session", "x"),
            ("authn_response", "{}"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("custom domains"),
        "{body}"
    );
}

/// A code minted on the canonical host and exchanged on the custom domain
/// would mint tokens for the other issuer: refused, and (as any failed
/// exchange) spent.
#[tokio::test]
async fn a_code_is_exchanged_only_on_the_host_that_minted_it() {
    let h = Hosts::start("").await;
    let req = AuthRequest::new("openid offline_access");
    let code = code_for(&h.s, &h.s.browser(), &req).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", req.client_id),
        ("code", code.as_str()),
        ("redirect_uri", req.redirect_uri.as_str()),
        ("code_verifier", req.verifier.as_str()),
    ];
    let res = h
        .custom
        .post(h.custom_url("/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(body.get("access_token").is_none());
    let (status, body) = exchange(&h.s, &req, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // On its own host, a code still works.
    let req = AuthRequest::new("openid offline_access");
    let code = code_for(&h.s, &h.s.browser(), &req).await;
    let (status, body) = exchange(&h.s, &req, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["iss"],
        h.s.issuer
    );
}

/// A refresh token (here one for no API, so the audience cannot give it
/// away) refreshes only on the host that minted it, both ways; refused
/// elsewhere, it stays good where it belongs. A token stored before tokens
/// knew their host counts as the canonical host's.
#[tokio::test]
async fn a_refresh_token_refreshes_only_on_the_host_that_minted_it() {
    let h = Hosts::start("").await;
    let login = |custom: bool| {
        let h = &h;
        async move {
            let res = h
                .client(custom)
                .post(h.url(custom, "/oauth/token"))
                .form(&[
                    ("grant_type", "password"),
                    ("client_id", "spa"),
                    ("username", ALICE),
                    ("password", ALICE_PASSWORD),
                    ("scope", "openid offline_access"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let body: Value = res.json().await.unwrap();
            body["refresh_token"].as_str().unwrap().to_string()
        }
    };
    let refresh = |custom: bool, rt: String| {
        let h = &h;
        async move {
            let res = h
                .client(custom)
                .post(h.url(custom, "/oauth/token"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", "spa"),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            (status, body)
        }
    };
    for minted_on_custom in [false, true] {
        let rt = login(minted_on_custom).await;
        let (status, body) = refresh(!minted_on_custom, rt.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
        let (status, body) = refresh(minted_on_custom, rt).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            claims(body["access_token"].as_str().unwrap())["iss"],
            h.issuer(minted_on_custom)
        );
        // Its successor is bound to the same host.
        let next = body["refresh_token"].as_str().unwrap().to_string();
        let (status, _) = refresh(!minted_on_custom, next.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(refresh(minted_on_custom, next).await.0, StatusCode::OK);
    }

    // Rows from before the binding: the canonical host's.
    let rt = login(true).await;
    h.s.sql("UPDATE refresh_tokens SET host = NULL").await;
    assert_eq!(refresh(true, rt.clone()).await.0, StatusCode::FORBIDDEN);
    let (status, body) = refresh(false, rt).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
