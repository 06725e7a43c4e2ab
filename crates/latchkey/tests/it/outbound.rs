//! The guard of outbound requests: a tenant's SMS provider at a private,
//! metadata or (outside development) loopback address is refused with a
//! clear error and nothing is sent; the tests' local receivers are reached
//! through the loopback their servers allow.

use reqwest::StatusCode;
use serde_json::json;

use crate::sms_receiver::SmsReceiver;
use crate::support::*;

const SID: &str = "AC123";

fn with_webhook(port: u16, url: &str, extra: &str) -> String {
    acme(port).replace(
        "factors: [password, totp, recovery-code]",
        "factors: [password, email, phone, totp, recovery-code]",
    ) + &format!(
        "sms_provider: {{ webhook: {{ url: \"{url}\", secret_env: SMS_WEBHOOK_SECRET, timeout_seconds: 1 }} }}\n{extra}"
    )
}

/// Applies a tenant whose SMS webhook is `url`, starts a phone enrollment
/// and returns the answer's status and detail. An hour passes first, so the
/// limits on codes sent never answer instead.
async fn send_through(s: &TestServer, url: &str, extra: &str) -> (StatusCode, String) {
    s.clock.advance(3601);
    latchkey::tenant::apply::apply_text(&s.state, &with_webhook(s.port, url, extra))
        .await
        .unwrap();
    let token = s.me_token(ME_SCOPES).await;
    let r = s
        .me(
            "POST",
            "/authentication-methods",
            Some(&token),
            Some(json!({"type": "phone", "phone_number": "+15551234567"})),
        )
        .await;
    let detail = r.body["detail"].as_str().unwrap_or_default().to_string();
    (r.status, detail)
}

#[tokio::test]
async fn metadata_and_private_addresses_are_refused_with_a_clear_error() {
    let s = TestServer::start().await;
    for (url, why) in [
        (
            "http://169.254.169.254/latest/meta-data/iam/",
            "169.254.169.254 is a cloud metadata address",
        ),
        (
            "http://[::ffff:169.254.169.254]/",
            "169.254.169.254 is a cloud metadata address",
        ),
        (
            "http://[fd00:ec2::254]/",
            "fd00:ec2::254 is a cloud metadata address",
        ),
        (
            "http://metadata.google.internal/computeMetadata/v1/",
            "metadata.google.internal is a cloud metadata name",
        ),
        ("http://169.254.10.20/sms", "169.254.10.20 is link-local"),
        ("http://[fe80::1]/sms", "fe80::1 is link-local"),
        ("http://10.1.2.3/sms", "10.1.2.3 is in a private network"),
        (
            "http://192.168.0.10:8080/sms",
            "192.168.0.10 is in a private network",
        ),
        (
            "http://172.16.5.5/sms",
            "172.16.5.5 is in a private network",
        ),
        (
            "http://100.64.0.1/sms",
            "100.64.0.1 is in a private network",
        ),
        (
            "http://[fd12:3456::1]/sms",
            "fd12:3456::1 is in a private network",
        ),
        (
            "http://[::ffff:10.1.2.3]/sms",
            "10.1.2.3 is in a private network",
        ),
        ("http://0.0.0.0/sms", "0.0.0.0 is unspecified"),
        ("http://255.255.255.255/sms", "255.255.255.255 is broadcast"),
        ("http://224.0.0.1/sms", "224.0.0.1 is multicast"),
    ] {
        let (status, detail) = send_through(&s, url, "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {detail}");
        assert!(
            detail.contains("the SMS webhook URL is refused") && detail.contains(why),
            "{url}: {detail}"
        );
    }
}

#[tokio::test]
async fn a_tenant_may_allow_private_networks_but_never_metadata() {
    let s = TestServer::start().await;
    let allow = "outbound: { allow_private_networks: true }\n";
    // Allowed: the request is made (and fails there: no receiver of ours
    // listens on that network).
    let (status, detail) = send_through(&s, "http://10.255.255.1/sms", allow).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{detail}");
    assert!(!detail.contains("URL is refused"), "{detail}");
    // Never: metadata and link-local.
    for url in ["http://169.254.169.254/", "http://[fe80::1]/"] {
        let (_, detail) = send_through(&s, url, allow).await;
        assert!(detail.contains("URL is refused"), "{url}: {detail}");
    }
}

#[tokio::test]
async fn loopback_is_refused_unless_the_server_allows_it_and_nothing_is_sent() {
    let sms = SmsReceiver::start(SID, TWILIO_TOKEN, WEBHOOK_SECRET).await;
    let by_name = sms.webhook_url.replace("127.0.0.1", "localhost");
    let production = TestServer::configured(&[acme, other_tenant], |opts| {
        opts.outbound.loopback = false;
    })
    .await;
    for (url, why) in [
        (
            sms.webhook_url.as_str(),
            "127.0.0.1 is loopback".to_string(),
        ),
        (
            by_name.as_str(),
            "localhost resolves to 127.0.0.1, which is loopback".to_string(),
        ),
    ] {
        let (status, detail) = send_through(&production, url, "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {detail}");
        assert!(
            detail.contains("refused") && detail.contains(&why),
            "{url}: {detail}"
        );
        // Not even a private network allowance opens loopback.
        let (_, detail) = send_through(
            &production,
            url,
            "outbound: { allow_private_networks: true }\n",
        )
        .await;
        assert!(detail.contains(&why), "{url}: {detail}");
    }
    assert!(sms.messages().await.is_empty());

    // The tests' servers allow loopback (`--outbound-allow-loopback`): the
    // same receiver gets the code.
    let development = TestServer::start().await;
    let (status, detail) = send_through(&development, &sms.webhook_url, "").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{detail}");
    assert_eq!(sms.wait_for(1).await.len(), 1);
}
