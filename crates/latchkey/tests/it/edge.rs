//! The HTTP edge: who the client is behind proxies.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// A password grant for Alice sent through a proxy that says it forwards
/// for `forwarded` (as `X-Forwarded-For`, or `Forwarded` when `rfc7239`).
async fn password_via(
    s: &TestServer,
    forwarded: &str,
    password: &str,
    rfc7239: bool,
) -> (StatusCode, Value) {
    let (name, value) = if rfc7239 {
        ("forwarded", format!("for={forwarded};proto=https"))
    } else {
        ("x-forwarded-for", forwarded.to_string())
    };
    let res = s
        .http()
        .post(s.url("/oauth/token"))
        .header(name, value)
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

/// The tests' client connects from 127.0.0.1: trusting it makes it the proxy.
async fn behind_proxy(trusted: &str) -> TestServer {
    let trusted = trusted.to_string();
    TestServer::configured(&[acme, other_tenant], move |o| {
        o.trusted_proxies = trusted.parse().unwrap();
    })
    .await
}

#[tokio::test]
async fn behind_a_trusted_proxy_brute_force_is_counted_per_forwarded_client() {
    for rfc7239 in [false, true] {
        let s = behind_proxy("127.0.0.1/32, 10.0.0.0/8").await;
        for _ in 0..10 {
            let (status, body) = password_via(&s, "203.0.113.7", "wrong-password", rfc7239).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        }
        // The attacker's address is blocked…
        let (status, body) = password_via(&s, "203.0.113.7", ALICE_PASSWORD, rfc7239).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"], "too_many_attempts");
        // …Alice, behind the same proxy from elsewhere, is not.
        let (status, body) = password_via(&s, "198.51.100.4", ALICE_PASSWORD, rfc7239).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // A chain through a second trusted hop still names the client; an
        // entry the client wrote before it is not believed.
        let chain = "198.51.100.4, 203.0.113.7, 10.1.2.3";
        let (status, _) = password_via(&s, chain, ALICE_PASSWORD, false).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let chain = "203.0.113.7, 198.51.100.4, 10.1.2.3";
        let (status, _) = password_via(&s, chain, ALICE_PASSWORD, false).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    // No proxies trusted, and a list that does not hold the peer.
    for trusted in ["", "10.0.0.0/8"] {
        let s = behind_proxy(trusted).await;
        for i in 0..10 {
            // A new "address" for every guess: were it believed, no block.
            let spoofed = format!("203.0.113.{i}");
            let (status, _) = password_via(&s, &spoofed, "wrong-password", i % 2 == 0).await;
            assert_eq!(status, StatusCode::FORBIDDEN);
        }
        let (status, body) = password_via(&s, "198.51.100.4", ALICE_PASSWORD, false).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    }
}

#[tokio::test]
async fn audit_events_carry_the_forwarded_client_only_from_a_trusted_proxy() {
    for (trusted, expected) in [("127.0.0.1", "203.0.113.7"), ("10.0.0.0/8", "127.0.0.1")] {
        let s = behind_proxy(trusted).await;
        let token = s.me_token(ME_SCOPES).await;
        let res = s
            .http()
            .post(s.url("/me/v1/authentication-methods"))
            .bearer_auth(&token)
            .header("x-forwarded-for", "203.0.113.7")
            .json(&json!({"type": "totp"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let tenant = s.state.store.tenant_by_name("acme").await.unwrap().unwrap();
        let events = s.state.store.audit_events(&tenant.id, 10).await.unwrap();
        // The method's event (the token's login, `s`, came unforwarded).
        let ips: Vec<_> = events
            .iter()
            .filter(|e| e.event_type != "s")
            .map(|e| e.ip.clone())
            .collect();
        assert_eq!(ips, vec![Some(expected.to_string())], "trusted {trusted}");
    }
}

/// Sends `request` as raw bytes and reads the answer until the server
/// closes: (status, headers lowercased, body).
pub async fn raw(port: u16, request: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    sock.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    sock.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// RFC 9112 §3.2: an HTTP/1.1 request without a Host header, or with one
/// that is not a host, is answered 400 (in the area's dialect), not 404.
#[tokio::test]
async fn a_missing_or_malformed_host_is_a_bad_request_in_each_areas_dialect() {
    let s = TestServer::start().await;
    let p = s.port;
    for host_line in [
        "",
        "Host: \r\n",
        "Host: local host\r\n",
        "Host: localhost/x\r\n",
    ] {
        let (status, _, body) = raw(
            p,
            &format!("GET /.well-known/openid-configuration HTTP/1.1\r\n{host_line}Connection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 400, "{host_line:?}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "invalid_request", "{body}");
        let (status, _, body) = raw(
            p,
            &format!("GET /me/v1/factors HTTP/1.1\r\n{host_line}Connection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 400, "{host_line:?}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], 400, "{body}");
        assert!(v["detail"].as_str().unwrap().contains("Host"), "{body}");
    }
    // A well-formed host that no tenant is served on stays 404.
    let (status, _, _) = raw(
        p,
        "GET /.well-known/openid-configuration HTTP/1.1\r\nHost: nobody.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn two_host_headers_are_refused_in_each_areas_dialect() {
    let s = TestServer::start().await;
    let p = s.port;
    let hosts = format!("Host: localhost:{p}\r\nHost: 127.0.0.1:{p}\r\n");
    let form = "grant_type=password&client_id=spa&username=alice%40example.com&password=x";
    // OAuth endpoints: {error, error_description}.
    let (status, _, body) = raw(
        p,
        &format!(
            "POST /oauth/token HTTP/1.1\r\n{hosts}Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "invalid_request", "{body}");
    let (status, _, body) = raw(
        p,
        &format!("GET /authorize?client_id=spa HTTP/1.1\r\n{hosts}Connection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // My Account: the ErrorResponse, before any token is looked at.
    let (status, _, body) = raw(
        p,
        &format!("GET /me/v1/factors HTTP/1.1\r\n{hosts}Connection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], 400, "{body}");
    assert!(v["type"].is_string() && v["detail"].is_string(), "{body}");
    // Anything else: a plain 400.
    for path in ["/healthz", "/nowhere"] {
        let (status, _, body) = raw(
            p,
            &format!("GET {path} HTTP/1.1\r\n{hosts}Connection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    // One Host header is fine.
    let (status, _, _) = raw(
        p,
        &format!("GET /healthz HTTP/1.1\r\nHost: localhost:{p}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200);
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

/// nosniff, the referrer policy, and no framing for a page.
fn assert_page_hygiene(res: &reqwest::Response, what: &str) {
    assert_eq!(
        header(res, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        header(res, "referrer-policy"),
        Some("same-origin"),
        "{what}"
    );
    assert_eq!(header(res, "x-frame-options"), Some("DENY"), "{what}");
    assert!(
        header(res, "content-security-policy")
            .is_some_and(|c| c.contains("frame-ancestors 'none'")),
        "{what}"
    );
}

#[tokio::test]
async fn hosted_pages_are_not_sniffed_leak_no_referrer_and_cannot_be_framed() {
    let s = TestServer::start().await;
    let browser = s.browser();
    // The login page.
    let res = browser
        .get(AuthRequest::new("openid").url(&s))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_page_hygiene(&res, "login page");
    // The error page (an unknown client: a page, never a redirect).
    let res = browser
        .get(s.url("/authorize?client_id=nobody&response_type=code"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    assert!(
        header(&res, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_page_hygiene(&res, "error page");
    // Other answers are not sniffed either; loopback hosts get no HSTS.
    let res = s.http().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(header(&res, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&res, "strict-transport-security"), None);
}

#[tokio::test]
async fn https_hosts_send_hsts() {
    let s = TestServer::start().await;
    let custom = format!("id.acme.test:{}", s.port);
    let file = acme(s.port).replace(
        &format!("domains: [\"localhost:{}\"]", s.port),
        &format!("domains: [\"localhost:{}\", \"{custom}\"]", s.port),
    );
    latchkey::tenant::apply::apply_text(&s.state, &file)
        .await
        .unwrap();
    for path in ["/.well-known/openid-configuration", "/healthz"] {
        let (status, head, _) = raw(
            s.port,
            &format!("GET {path} HTTP/1.1\r\nHost: {custom}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 200, "{path}");
        assert!(
            head.contains("\r\nstrict-transport-security: max-age=31536000\r\n"),
            "{path}: {head}"
        );
        assert!(
            head.contains("\r\nx-content-type-options: nosniff\r\n"),
            "{path}: {head}"
        );
    }
}

#[tokio::test]
async fn my_account_answers_carrying_secrets_are_never_cached() {
    let s = TestServer::start().await;
    let token = s.me_token(ME_SCOPES).await;
    for kind in ["totp", "recovery-code"] {
        let r = s
            .me(
                "POST",
                "/authentication-methods",
                Some(&token),
                Some(json!({"type": kind})),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{kind}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{kind}"
        );
    }
    let r = s
        .me("GET", "/authentication-methods", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

/// A server whose connection limits are short (and whichever of them
/// `adjust` changes).
async fn with_limits(adjust: impl FnOnce(&mut ServeOptions)) -> TestServer {
    let mut o = ServeOptions {
        header_timeout: Duration::from_secs(60),
        body_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        ..ServeOptions::default()
    };
    adjust(&mut o);
    TestServer::serving(&[acme], |_| {}, o).await
}

/// Reads until the server closes the connection (or resets it); `None` if
/// it is still open after `bound` (generous: the limits under test are a
/// fraction of it).
async fn closed_by_server(sock: &mut tokio::net::TcpStream, bound: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(bound, read).await.ok()?;
    Some(String::from_utf8_lossy(&out).to_string())
}

const BOUND: Duration = Duration::from_secs(20);

async fn connect(s: &TestServer) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(("127.0.0.1", s.port))
        .await
        .unwrap()
}

#[tokio::test]
async fn unfinished_headers_are_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let s = with_limits(|o| o.header_timeout = Duration::from_millis(300)).await;
    let mut sock = connect(&s).await;
    // Headers begun and never finished, a byte now and then.
    sock.write_all(format!("GET /healthz HTTP/1.1\r\nHost: localhost:{}\r\n", s.port).as_bytes())
        .await
        .unwrap();
    let trickle = async {
        let mut sock2 = connect(&s).await;
        sock2
            .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            .await
            .unwrap();
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if sock2.write_all(b"a").await.is_err() {
                return true;
            }
        }
        false
    };
    let (answer, cut) = tokio::join!(closed_by_server(&mut sock, BOUND), trickle);
    let answer = answer.expect("the server kept unfinished headers open");
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(cut, "headers trickled a byte at a time were never cut");
    // The server still serves.
    assert_eq!(
        s.http()
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_trickled_body_is_cut() {
    use tokio::io::AsyncWriteExt;
    let s = with_limits(|o| o.body_timeout = Duration::from_millis(300)).await;
    let mut sock = connect(&s).await;
    let (mut rd, mut wr) = sock.split();
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: localhost:{}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n",
        s.port
    );
    wr.write_all(head.as_bytes()).await.unwrap();
    let trickle = async {
        for _ in 0..200 {
            if wr.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let read = async {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        let r = tokio::time::timeout(BOUND, async {
            let mut buf = [0u8; 4096];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        (r.is_ok(), String::from_utf8_lossy(&out).to_string())
    };
    // The server closes the connection while the body is still trickling
    // (200 bytes at 50 ms would take 10 s); no answer to the request is
    // produced from a partial body.
    let ((closed, answer), ()) = tokio::select! {
        r = read => (r, ()),
        () = trickle => panic!("the whole trickled body was accepted"),
    };
    assert!(closed, "the connection was kept open");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

#[tokio::test]
async fn idle_connections_beyond_the_cap_do_not_starve_healthz() {
    use tokio::io::AsyncWriteExt;
    let s = with_limits(|o| {
        o.max_connections = 4;
        o.idle_timeout = Duration::from_millis(300);
        o.header_timeout = Duration::from_millis(300);
    })
    .await;
    // Three times the cap in connections that send nothing.
    let mut idle = Vec::new();
    for _ in 0..12 {
        idle.push(connect(&s).await);
    }
    // A client arriving after them is answered: idle ones are closed, the
    // cap keeps descriptors for the ones waiting.
    let mut sock = connect(&s).await;
    sock.write_all(
        format!(
            "GET /healthz HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
            s.port
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let answer = closed_by_server(&mut sock, BOUND).await.expect("no answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Every idle connection was closed by the server, none left open.
    for (i, mut c) in idle.into_iter().enumerate() {
        let got = closed_by_server(&mut c, BOUND).await;
        assert_eq!(got.as_deref(), Some(""), "idle connection {i}");
    }
    // A kept-alive connection that goes quiet after a request is closed too.
    let mut sock = connect(&s).await;
    sock.write_all(
        format!(
            "GET /healthz HTTP/1.1\r\nHost: localhost:{}\r\n\r\n",
            s.port
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let answer = closed_by_server(&mut sock, BOUND).await.expect("kept open");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
