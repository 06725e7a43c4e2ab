//! Abuse limits: the password hashing queue, Suspicious IP Throttling of
//! passwords and client secrets, the same work for every password attempt.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

const SUSPICIOUS: &str = "We have detected suspicious login behavior and further attempts will be \
                          blocked. Please contact the administrator.";

/// A client whose requests come from `127.0.0.{last}` (any loopback address
/// reaches the server on Linux).
#[allow(
    clippy::disallowed_methods,
    reason = "a test client of the server under test, not an outbound request of latchkey"
)]
fn client_from(s: &TestServer, last: u8) -> reqwest::Client {
    let addr: SocketAddr = ([127, 0, 0, 1], s.port).into();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("localhost", addr)
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .cookie_store(true)
        .build()
        .unwrap()
}

async fn token_from(
    s: &TestServer,
    client: &reqwest::Client,
    form: &[(&str, &str)],
) -> (StatusCode, Option<String>, Value) {
    let res = client
        .post(s.url("/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, res.json().await.unwrap())
}

async fn password_from(
    s: &TestServer,
    client: &reqwest::Client,
    username: &str,
    password: &str,
) -> (StatusCode, Option<String>, Value) {
    token_from(
        s,
        client,
        &[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", username),
            ("password", password),
        ],
    )
    .await
}

/// The acme tenant with twelve more users, `user{i}@example.com`, and one
/// without a password.
fn crowded(port: u16) -> String {
    let mut file = acme(port);
    for i in 0..12 {
        file.push_str(&format!(
            "  - {{ email: user{i}@example.com, password: \"User-{i}-long-password\", \
             connection: Username-Password-Authentication, user_id: \"auth0|user{i}\" }}\n"
        ));
    }
    file.push_str(
        "  - { email: passkeyonly@example.com, connection: Username-Password-Authentication, \
         user_id: \"auth0|passkeyonly\" }\n",
    );
    file
}

#[tokio::test]
async fn spraying_passwords_from_one_ip_is_throttled_and_other_ips_are_not() {
    let s = TestServer::with_tenants(&[crowded, other_tenant]).await;
    let sprayer = client_from(&s, 2);
    // Nine guesses at each of twelve users stay under the per-user block
    // (ten), but not under the IP's hundred failed attempts.
    let mut failures = 0;
    let mut throttled = None;
    'spray: for guess in 0..9 {
        for i in 0..12 {
            let user = format!("user{i}@example.com");
            let (status, retry, body) =
                password_from(&s, &sprayer, &user, &format!("Guess-{guess}")).await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                throttled = Some((retry, body));
                break 'spray;
            }
            assert_eq!(body["error"], "invalid_grant", "{body}");
            failures += 1;
        }
    }
    assert_eq!(failures, 100, "Auth0's default: 100 failed attempts per IP");
    let (retry, body) = throttled.expect("the sprayer was throttled");
    assert_eq!(body["error"], "too_many_attempts");
    assert_eq!(body["error_description"], SUSPICIOUS);
    // One more attempt is granted every 864 seconds.
    assert_eq!(retry.as_deref(), Some("864"));

    // Even the right password is refused from that IP, on every endpoint
    // that checks one…
    let (status, _, body) = password_from(&s, &sprayer, ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let req = AuthRequest::new("openid");
    let page = sprayer.get(req.url(&s)).send().await.unwrap();
    let tx = hidden_input(&page.text().await.unwrap(), "tx").unwrap();
    let res = sprayer
        .post(s.url("/login"))
        .form(&[
            ("tx", tx.as_str()),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "864");
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("suspicious login behavior")
    );

    // …while another IP, and the same IP on another tenant, are unaffected.
    let neighbour = client_from(&s, 3);
    let (status, _, body) = password_from(&s, &neighbour, ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let res = sprayer
        .post(format!("http://127.0.0.1:{}/oauth/token", s.port))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // The bucket grants one attempt again after 864 seconds.
    s.clock.advance(864);
    let (status, _, body) = password_from(&s, &sprayer, ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_right_password_does_not_use_up_the_ip_s_attempts() {
    let s = TestServer::start().await;
    let office = client_from(&s, 4);
    for _ in 0..150 {
        let (status, _, body) = password_from(&s, &office, ALICE, ALICE_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn guessing_a_client_secret_is_throttled_per_ip() {
    let s = TestServer::start().await;
    let guesser = client_from(&s, 5);
    let credentials = |secret: &'static str| {
        [
            ("grant_type", "client_credentials"),
            ("client_id", "backend"),
            ("client_secret", secret),
            ("audience", API),
        ]
    };
    for _ in 0..100 {
        let (status, _, body) = token_from(&s, &guesser, &credentials("guess")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "invalid_client");
    }
    let (status, retry, body) = token_from(&s, &guesser, &credentials("guess")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_attempts");
    assert_eq!(retry.as_deref(), Some("864"));
    let (status, _, _) = token_from(&s, &guesser, &credentials(BACKEND_SECRET)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Basic authentication is the same attempt.
    let res = guesser
        .post(s.url("/oauth/token"))
        .basic_auth("backend", Some("guess"))
        .form(&[("grant_type", "client_credentials"), ("audience", API)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);

    let backend = client_from(&s, 6);
    let (status, _, body) = token_from(&s, &backend, &credentials(BACKEND_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The IP's attempts are spent for passwords too.
    let (status, _, body) = password_from(&s, &guesser, ALICE, "wrong").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

/// The acme tenant with a tenant-wide bucket of five failed attempts.
fn small_tenant_bucket(port: u16) -> String {
    acme(port).replacen(
        "tenant: { name: acme, domains: [\"localhost:",
        "tenant: { suspicious_ip_throttling: { stage: { pre-login-tenant: { max_attempts: 5, rate: 60000 } } },\n          name: acme, domains: [\"localhost:",
        1,
    )
}

#[tokio::test]
async fn failures_from_many_ips_are_throttled_tenant_wide() {
    let s = TestServer::with_tenants(&[small_tenant_bucket, other_tenant]).await;
    for last in 10..15 {
        let (status, _, body) = password_from(&s, &client_from(&s, last), ALICE, "wrong").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let fresh = client_from(&s, 20);
    let (status, retry, body) = password_from(&s, &fresh, ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_attempts");
    assert_eq!(retry.as_deref(), Some("60"));
    // In the tenant log: five wrong passwords, then the throttled attempt.
    let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
    let events = s.state.store.audit_events(&tenant.id, 100).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["fp", "fp", "fp", "fp", "fp", "limit_mu"]);
    assert_eq!(events[5].details["description"], "Blocked IP Address");
    assert_eq!(events[5].user_id, None);
    // The other tenant on the same server is unaffected.
    let res = fresh
        .post(format!("http://127.0.0.1:{}/oauth/token", s.port))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    s.clock.advance(60);
    let (status, _, body) = password_from(&s, &fresh, ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn throttling_can_be_turned_off_and_is_checked_in_the_tenant_file() {
    fn off(port: u16) -> String {
        acme(port).replacen(
            "tenant: { name: acme,",
            "tenant: { suspicious_ip_throttling: { enabled: false }, name: acme,",
            1,
        )
    }
    let s = TestServer::with_tenants(&[off]).await;
    let c = client_from(&s, 7);
    for _ in 0..101 {
        let (status, _, body) = password_from(&s, &c, "nobody@example.com", "wrong").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let bad = acme(s.port).replacen(
        "tenant: { name: acme,",
        "tenant: { suspicious_ip_throttling: { stage: { pre-login: { max_attempts: 0, rate: 1000 } } }, name: acme,",
        1,
    );
    let err = latchkey::tenant::apply::apply_text(&s.state, &bad)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tenant.suspicious_ip_throttling.stage.pre-login.max_attempts"),
        "{err}"
    );
}

/// Occupies every hashing thread and fills the queue; the returned sender
/// releases them.
async fn flood_the_hashing_queue(s: &TestServer) -> std::sync::mpsc::Sender<()> {
    let hashing_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let capacity = latchkey::context::HASHING_QUEUE_PER_CORE * hashing_threads;
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Arc::new(std::sync::Mutex::new(released));
    let mut started = Vec::new();
    for _ in 0..hashing_threads {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = s.state.clone();
        let released = Arc::clone(&released);
        tokio::spawn(async move {
            state
                .hashing
                .run_unbounded(move || {
                    let _ = tx.send(());
                    let _ = released.lock().unwrap().recv();
                })
                .await
        });
        started.push(rx);
    }
    for rx in started {
        rx.await.unwrap();
    }
    for _ in 0..capacity {
        let state = s.state.clone();
        tokio::spawn(async move { state.hashing.run_unbounded(|| ()).await });
    }
    while s.state.hashing.waiting() < capacity {
        tokio::task::yield_now().await;
    }
    release
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hashing_queue_answers_503_with_retry_after() {
    let s = TestServer::start().await;
    let browser = s.browser();
    let req = AuthRequest::new("openid");
    let page = browser.get(req.url(&s)).send().await.unwrap();
    let tx = hidden_input(&page.text().await.unwrap(), "tx").unwrap();

    let release = flood_the_hashing_queue(&s).await;
    let c = s.http();
    let (status, retry, body) = password_from(&s, &c, ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(retry.as_deref(), Some("1"));
    let res = browser
        .post(s.url("/login"))
        .form(&[
            ("tx", tx.as_str()),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");

    // Once the threads are free the same requests go through.
    drop(release);
    while s.state.hashing.waiting() > 0 {
        tokio::task::yield_now().await;
    }
    let (status, _, body) = password_from(&s, &c, ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let res = browser
        .post(s.url("/login"))
        .form(&[
            ("tx", tx.as_str()),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn every_password_attempt_costs_one_hash_whoever_it_names() {
    let s = TestServer::with_tenants(&[crowded]).await;
    let c = s.http();
    let hashes = || s.state.hashing.jobs_started();
    for (username, password, error) in [
        (ALICE, "wrong-password", Some("invalid_grant")),
        (
            "passkeyonly@example.com",
            "any-password",
            Some("invalid_grant"),
        ),
        ("nobody@example.com", "any-password", Some("invalid_grant")),
        (ALICE, ALICE_PASSWORD, None),
    ] {
        let before = hashes();
        let (status, _, body) = password_from(&s, &c, username, password).await;
        match error {
            Some(e) => assert_eq!(body["error"], e, "{username}: {body}"),
            None => assert_eq!(status, StatusCode::OK, "{body}"),
        }
        assert_eq!(hashes() - before, 1, "{username}: one verification");
    }
}

async fn me_from(
    s: &TestServer,
    client: &reqwest::Client,
    token: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap) {
    let mut req = client.get(s.url("/me/v1/factors"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.headers().clone())
}

#[tokio::test]
async fn anonymous_requests_do_not_spend_the_signed_in_users_budget() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    let flooder = client_from(&s, 8);
    // Without a token, with a forged one: the IP's 20 a second, then 429.
    let mut refused = 0;
    for i in 0..200 {
        let forged = (i % 2 == 1).then_some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
        let (status, headers) = me_from(&s, &flooder, forged).await;
        match status {
            StatusCode::UNAUTHORIZED => assert!(i < 20, "request {i} was not limited"),
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(i >= 20);
                assert_eq!(headers["retry-after"], "1");
                assert_eq!(headers["x-ratelimit-limit"], "20");
                assert!(
                    headers.get("x-auth0-error-kind").is_none(),
                    "not the tenant's"
                );
                refused += 1;
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!(refused, 180);
    // The signed-in user's budget is whole, in the same second.
    let r = s.me("GET", "/factors", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-ratelimit-limit"), Some("25"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("24"));
    // The flooding IP is refused before its tokens are looked at, good
    // ones too, until its window ends: a flood of forged tokens costs no
    // more than 20 signature checks a second.
    let (status, _) = me_from(&s, &flooder, Some(&token)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another IP without a token has its own budget.
    let (status, _) = me_from(&s, &client_from(&s, 9), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.clock.advance(1);
    let (status, headers) = me_from(&s, &flooder, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["x-ratelimit-remaining"], "19");
    let (status, headers) = me_from(&s, &flooder, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-ratelimit-limit"], "25");
}

#[tokio::test]
async fn anonymous_login_pages_are_limited_per_ip_and_bound_what_is_stored() {
    let s = TestServer::start().await;
    let req = AuthRequest::new("openid");
    let opener = client_from(&s, 11);
    for i in 0..300 {
        let res = opener.get(req.url(&s)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "page {i}");
    }
    let res = opener.get(req.url(&s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "2");
    assert!(res.headers().get("set-cookie").is_none(), "nothing stored");
    assert!(res.text().await.unwrap().contains("Too many login pages"));

    // Another IP opens its page; a signed-in browser on the refused IP
    // gets its code from the session, nothing stored.
    let other = client_from(&s, 12);
    let res = other.get(req.url(&s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let signed_in = client_from(&s, 11);
    let res = other.get(req.url(&s)).send().await.unwrap();
    let tx = hidden_input(&res.text().await.unwrap(), "tx").unwrap();
    let res = other
        .post(s.url("/login"))
        .form(&[
            ("tx", tx.as_str()),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("latchkey_session="))
        .unwrap();
    let res = signed_in
        .get(req.url(&s))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "single sign-on");

    // One more page every two seconds.
    s.clock.advance(2);
    let res = opener.get(req.url(&s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = opener.get(req.url(&s)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);

    // The store held what was allowed, and no more: 301 pages from the
    // first IP, two from the other (one of which was used and deleted).
    s.clock.advance(16 * 60);
    let swept = latchkey::services::sweep::sweep_all(&s.state)
        .await
        .unwrap();
    assert_eq!(swept.login_transactions, 302);
}

/// The acme tenant with a backend trusted to name its users' IP, one that
/// is not, and at most 20 failed attempts per IP.
fn relaying(port: u16) -> String {
    let file = acme(port).replacen(
        "tenant: { name: acme,",
        "tenant: { suspicious_ip_throttling: { stage: { pre-login: { max_attempts: 20, rate: 864000 } } },\n          name: acme,",
        1,
    );
    file.replacen(
        "client_grants:\n",
        "  - { client_id: relay, app_type: regular_web, client_secret: relay-secret-value,\n      \
         token_endpoint_ip_header_trusted: true, grant_types: [password] }\n  \
         - { client_id: untrusted, app_type: regular_web, client_secret: untrusted-secret-value,\n      \
         grant_types: [password] }\nclient_grants:\n",
        1,
    )
}

async fn relayed(
    s: &TestServer,
    client: (&str, &str),
    user_ip: Option<&str>,
    username: &str,
    password: &str,
) -> (StatusCode, Value) {
    let mut req = s.http().post(s.url("/oauth/token")).form(&[
        ("grant_type", "password"),
        ("client_id", client.0),
        ("client_secret", client.1),
        ("username", username),
        ("password", password),
    ]);
    if let Some(ip) = user_ip {
        req = req.header("auth0-forwarded-for", ip);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn a_trusted_backend_names_its_users_ip_with_auth0_forwarded_for() {
    let s = TestServer::with_tenants(&[relaying]).await;
    let relay = ("relay", "relay-secret-value");
    let untrusted = ("untrusted", "untrusted-secret-value");
    // Ten wrong passwords from one user's IP block Alice there only.
    for _ in 0..10 {
        let (status, body) = relayed(&s, relay, Some("203.0.113.7"), ALICE, "wrong").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, body) = relayed(&s, relay, Some("203.0.113.7"), ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_attempts");
    for other in [Some("203.0.113.8"), Some("2001:db8::8"), None] {
        let (status, body) = relayed(&s, relay, other, ALICE, ALICE_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{other:?}: {body}");
    }
    // From a client not trusted to, or a public one, the header is ignored:
    // the block is not theirs (it is 203.0.113.7's).
    let (status, body) = relayed(&s, untrusted, Some("203.0.113.7"), ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let res = s
        .http()
        .post(s.url("/oauth/token"))
        .header("auth0-forwarded-for", "203.0.113.7")
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Suspicious IP Throttling counts the relayed IP too (20 here).
    for i in 0..20 {
        let (status, _) = relayed(
            &s,
            relay,
            Some("198.51.100.9"),
            &format!("nobody{i}@example.com"),
            "x",
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, body) = relayed(&s, relay, Some("198.51.100.9"), ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error_description"], SUSPICIOUS);
    let (status, body) = relayed(&s, relay, Some("198.51.100.10"), ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The untrusted client's own IP (this machine's) still has its attempts.
    let (status, body) = relayed(&s, untrusted, Some("198.51.100.9"), ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Anything but one address is refused.
    for bad in ["not-an-ip", "203.0.113.7, 203.0.113.8", ""] {
        let (status, body) = relayed(&s, relay, Some(bad), ALICE, ALICE_PASSWORD).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
        assert_eq!(body["error"], "invalid_request");
    }
    // Only a client with a secret may be trusted to name IPs.
    let public = acme(s.port).replacen(
        "grant_types: [authorization_code, refresh_token, password,",
        "token_endpoint_ip_header_trusted: true,\n      grant_types: [authorization_code, refresh_token, password,",
        1,
    );
    let err = latchkey::tenant::apply::apply_text(&s.state, &public)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("clients[0].token_endpoint_ip_header_trusted"),
        "{err}"
    );
}
