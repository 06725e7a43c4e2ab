//! Push delivery through the delivery port (`Delivery::send_push`) against
//! the local receivers of `push_receivers.rs`: routing by push service, the
//! signed webhook's body and signature, FCM (Google's token exchange, the
//! cached access token, the data message) and APNs (HTTP/2, the ES256
//! provider token and its reuse), and every way a delivery fails.

use std::collections::HashMap;
use std::sync::Arc;

use latchkey::adapters::delivery::MessageDelivery;
use latchkey::adapters::http_client::ReqwestClient;
use latchkey::clock::{ManualClock, SharedClock};
use latchkey::outbound::NetworkAccess;
use latchkey::services::delivery::{
    Delivery, DeliveryError, MapSecrets, PushMessage, PushNotification, PushService, PushSource,
    Software,
};
use latchkey::tenant::{Tenant, parse_tenant_file};
use serde_json::json;

use crate::push_receivers::{
    ApnsKey, ApnsReceiver, FcmReceiver, PushCa, PushWebhookReceiver, check_notification,
};

pub const NOW: i64 = 1_800_000_000;
const HOOK_SECRET: &str = "push-webhook-secret";
const TOKEN: &str = "device-push-token-0123456789";

/// The receivers listen on loopback, which the tests allow.
const LOOPBACK: NetworkAccess = NetworkAccess {
    private_networks: false,
    loopback: true,
};

fn delivery(clock: &ManualClock, extra: &[(&str, &str)]) -> MessageDelivery {
    delivery_trusting(None, clock, extra)
}

/// A delivery whose outbound client trusts `ca` (as `--outbound-ca-file`).
fn delivery_trusting(
    ca: Option<&PushCa>,
    clock: &ManualClock,
    extra: &[(&str, &str)],
) -> MessageDelivery {
    let mut secrets: HashMap<String, String> =
        HashMap::from([("PUSH_HOOK_SECRET".to_owned(), HOOK_SECRET.to_owned())]);
    secrets.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let http = match ca {
        Some(ca) => ReqwestClient::with_ca_file(ca.file.path()).unwrap(),
        None => ReqwestClient::new().unwrap(),
    };
    MessageDelivery::new(
        Arc::new(MapSecrets(secrets)),
        Arc::new(http),
        Arc::new(clock.clone()),
        LOOPBACK,
    )
}

/// A tenant whose `push_notifications` section is `push` (YAML, indented).
fn tenant(delivery: &MessageDelivery, push: &str) -> Tenant {
    let text = format!(
        "tenant: {{ name: acme, domains: [\"auth.acme.test\"] }}\npush_notifications:\n{push}"
    );
    Tenant {
        id: "t_acme".into(),
        name: "acme".into(),
        revision: 1,
        config: parse_tenant_file(&text, delivery).unwrap(),
    }
}

fn webhook(url: &str) -> String {
    format!("  webhook: {{ url: \"{url}\", secret_env: PUSH_HOOK_SECRET, timeout_seconds: 5 }}\n")
}

pub fn notification() -> PushNotification {
    PushNotification {
        transaction_token: "txtkn-secret-value".into(),
        transaction_id: "txl_0123456789abcdef".into(),
        device_account_id: "dev_0123456789abcdef".into(),
        issuer: "https://auth.acme.test/".into(),
        challenge: "challenge-value".into(),
        started_at_ms: NOW * 1000 + 250,
        source: PushSource {
            browser: Some(Software {
                name: "Chrome".into(),
                version: Some("131".into()),
            }),
            os: Some(Software {
                name: "Linux".into(),
                version: None,
            }),
        },
    }
}

async fn send(
    delivery: &MessageDelivery,
    tenant: &Tenant,
    service: PushService,
) -> Result<(), DeliveryError> {
    send_to(delivery, tenant, service, TOKEN).await
}

async fn send_to(
    delivery: &MessageDelivery,
    tenant: &Tenant,
    service: PushService,
    token: &str,
) -> Result<(), DeliveryError> {
    delivery
        .send_push(&PushMessage {
            tenant,
            service,
            token,
            notification: &notification(),
            expires_at: NOW + 300,
        })
        .await
}

fn shared(clock: &ManualClock) -> SharedClock {
    Arc::new(clock.clone())
}

#[tokio::test]
async fn the_webhook_gets_the_documented_signed_body_for_every_service() {
    let clock = ManualClock::new(NOW);
    let rx = PushWebhookReceiver::start(HOOK_SECRET, shared(&clock)).await;
    let d = delivery(&clock, &[]);
    let t = tenant(&d, &webhook(&rx.url));
    for service in PushService::ALL {
        send(&d, &t, service).await.unwrap();
        let got = rx.next().await;
        assert_eq!(got.service, service.as_str());
        assert_eq!(got.token, TOKEN);
        assert_eq!(got.issuer, "https://auth.acme.test/");
        assert_eq!(got.timestamp, NOW);
        assert_eq!(got.expires_at, NOW + 300);
        assert_eq!(
            got.notification,
            json!({"txtkn": "txtkn-secret-value", "txlnkid": "txl_0123456789abcdef",
                   "dai": "dev_0123456789abcdef", "sh": "https://auth.acme.test/",
                   "c": "challenge-value", "d": "2027-01-15T08:00:00.250Z",
                   "s": {"b": {"n": "Chrome", "v": "131"}, "os": {"n": "Linux"}}})
        );
    }
    assert_eq!(rx.received().await.len(), 3);
    assert!(rx.refused().await.is_empty());
}

#[tokio::test]
async fn a_tenant_without_a_push_provider_is_not_configured() {
    let clock = ManualClock::new(NOW);
    let d = delivery(&clock, &[]);
    let t = tenant(&d, "  number_matching: true\n");
    for service in PushService::ALL {
        assert_eq!(
            send(&d, &t, service).await,
            Err(DeliveryError::NotConfigured)
        );
    }
}

#[tokio::test]
async fn a_wrong_secret_or_a_stale_clock_is_refused_by_the_receiver() {
    let clock = ManualClock::new(NOW);
    let rx = PushWebhookReceiver::start("another-secret", shared(&clock)).await;
    let d = delivery(&clock, &[]);
    let t = tenant(&d, &webhook(&rx.url));
    let why = match send(&d, &t, PushService::Fcm).await {
        Err(DeliveryError::Failed(why)) => why,
        other => panic!("{other:?}"),
    };
    assert!(why.contains("401"), "{why}");
    assert_eq!(rx.refused().await, vec!["bad signature".to_owned()]);

    // The server's clock six minutes off the receiver's: refused as stale.
    let rx = PushWebhookReceiver::start(HOOK_SECRET, shared(&clock)).await;
    let late = ManualClock::new(NOW + 360);
    let d = delivery(&late, &[]);
    let t = tenant(&d, &webhook(&rx.url));
    assert!(send(&d, &t, PushService::Apns).await.is_err());
    assert_eq!(rx.refused().await, vec!["stale signature".to_owned()]);
    assert!(rx.received().await.is_empty());
}

#[tokio::test]
async fn provider_failures_are_errors_that_never_show_the_token() {
    let clock = ManualClock::new(NOW);
    let rx = PushWebhookReceiver::start(HOOK_SECRET, shared(&clock)).await;
    let d = delivery(&clock, &[]);
    let t = tenant(&d, &webhook(&rx.url));
    rx.fail_next(503);
    let why = match send(&d, &t, PushService::Gcm).await {
        Err(DeliveryError::Failed(why)) => why,
        other => panic!("{other:?}"),
    };
    assert!(why.contains("503") && !why.contains(TOKEN), "{why}");

    // Nothing listens: a failure saying so, not the URL.
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let t = tenant(&d, &webhook(&format!("http://{closed}/push?key=hidden")));
    let why = match send(&d, &t, PushService::Fcm).await {
        Err(DeliveryError::Failed(why)) => why,
        other => panic!("{other:?}"),
    };
    assert!(
        why.contains("could not be reached") && !why.contains("hidden"),
        "{why}"
    );

    // The signing secret missing from the environment.
    let bare = MessageDelivery::new(
        Arc::new(MapSecrets::default()),
        Arc::new(ReqwestClient::new().unwrap()),
        Arc::new(clock.clone()),
        LOOPBACK,
    );
    let t = tenant(&bare, &webhook(&rx.url));
    match send(&bare, &t, PushService::Fcm).await {
        Err(DeliveryError::Config(why)) => assert!(why.contains("PUSH_HOOK_SECRET"), "{why}"),
        other => panic!("{other:?}"),
    }

    // The guard holds: loopback refused when the server does not allow it.
    let public = MessageDelivery::new(
        Arc::new(MapSecrets(HashMap::from([(
            "PUSH_HOOK_SECRET".to_owned(),
            HOOK_SECRET.to_owned(),
        )]))),
        Arc::new(ReqwestClient::new().unwrap()),
        Arc::new(clock.clone()),
        NetworkAccess::PUBLIC,
    );
    let t = tenant(&public, &webhook(&rx.url));
    match send(&public, &t, PushService::Fcm).await {
        Err(DeliveryError::Config(why)) => assert!(why.contains("loopback"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(rx.received().await.is_empty());
}

fn failed(result: Result<(), DeliveryError>) -> String {
    match result {
        Err(DeliveryError::Failed(why)) => why,
        other => panic!("expected Failed, got {other:?}"),
    }
}

fn config_error(result: Result<(), DeliveryError>) -> String {
    match result {
        Err(DeliveryError::Config(why)) => why,
        other => panic!("expected Config, got {other:?}"),
    }
}

// --- FCM ---------------------------------------------------------------------

const PROJECT: &str = "acme-auth";
const CLIENT_EMAIL: &str = "latchkey@acme-auth.iam.gserviceaccount.com";

fn fcm(base_url: &str) -> String {
    format!(
        "  fcm: {{ service_account_env: FCM_ACCOUNT, base_url: \"{base_url}\", timeout_seconds: 5 }}\n"
    )
}

#[tokio::test]
async fn fcm_sends_a_data_message_with_a_cached_access_token() {
    let clock = ManualClock::new(NOW);
    let ca = PushCa::new();
    let (rx, account) = FcmReceiver::start(&ca, PROJECT, CLIENT_EMAIL, shared(&clock)).await;
    let d = delivery_trusting(Some(&ca), &clock, &[("FCM_ACCOUNT", &account.json)]);
    let t = tenant(&d, &fcm(&rx.base_url));
    send(&d, &t, PushService::Fcm).await.unwrap();
    send(&d, &t, PushService::Gcm).await.unwrap();
    assert_eq!(rx.token_requests(), 1, "the access token is reused");
    let got = rx.received().await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].token, TOKEN);
    assert_eq!(got[0].ttl, "300s");
    let data: serde_json::Map<String, serde_json::Value> = got[0]
        .data
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    check_notification(&serde_json::Value::Object(data), true).unwrap();
    assert_eq!(got[0].data["txtkn"], "txtkn-secret-value");
    assert_eq!(got[0].data["d"], "2027-01-15T08:00:00.250Z");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&got[0].data["s"]).unwrap(),
        json!({"b": {"n": "Chrome", "v": "131"}, "os": {"n": "Linux"}})
    );

    // A minute before the hour the token is renewed; the TTL follows the clock.
    clock.advance(3599 - 60);
    send(&d, &t, PushService::Fcm).await.unwrap();
    assert_eq!(rx.token_requests(), 2);
    assert_eq!(rx.received().await[2].ttl, "0s");
    assert!(rx.refused().await.is_empty(), "{:?}", rx.refused().await);
}

#[tokio::test]
async fn fcm_drops_a_refused_access_token_and_asks_for_another() {
    let clock = ManualClock::new(NOW);
    let ca = PushCa::new();
    let (rx, account) = FcmReceiver::start(&ca, PROJECT, CLIENT_EMAIL, shared(&clock)).await;
    let d = delivery_trusting(Some(&ca), &clock, &[("FCM_ACCOUNT", &account.json)]);
    let t = tenant(&d, &fcm(&rx.base_url));
    send(&d, &t, PushService::Fcm).await.unwrap();
    rx.revoke_tokens().await;
    send(&d, &t, PushService::Fcm).await.unwrap();
    assert_eq!(rx.token_requests(), 2);
    assert_eq!(rx.received().await.len(), 2);
}

#[tokio::test]
async fn fcm_errors_tell_the_operator_what_to_do() {
    let clock = ManualClock::new(NOW);
    let ca = PushCa::new();
    let (rx, account) = FcmReceiver::start(&ca, PROJECT, CLIENT_EMAIL, shared(&clock)).await;
    let d = delivery_trusting(Some(&ca), &clock, &[("FCM_ACCOUNT", &account.json)]);
    let t = tenant(&d, &fcm(&rx.base_url));
    rx.unregister("uninstalled-app-token").await;
    let why = failed(send_to(&d, &t, PushService::Fcm, "uninstalled-app-token").await);
    assert!(
        why.contains("404") && why.contains("no longer registered"),
        "{why}"
    );
    assert!(!why.contains("uninstalled-app-token"), "{why}");

    // A key Google does not know (another account's key under this email).
    let other = crate::push_receivers::ServiceAccount::new(PROJECT, CLIENT_EMAIL, &rx.token_uri);
    let d = delivery_trusting(Some(&ca), &clock, &[("FCM_ACCOUNT", &other.json)]);
    let why = config_error(send(&d, &t, PushService::Fcm).await);
    assert!(
        why.contains("invalid_grant") && why.contains("service account"),
        "{why}"
    );
    assert!(!why.contains("PRIVATE KEY"), "{why}");

    // The account's key, but the messages sent to another project.
    let elsewhere = account.json.replace(
        "\"project_id\":\"acme-auth\"",
        "\"project_id\":\"other-project\"",
    );
    assert_ne!(elsewhere, account.json);
    let d = delivery_trusting(Some(&ca), &clock, &[("FCM_ACCOUNT", &elsewhere)]);
    let why = failed(send(&d, &t, PushService::Fcm).await);
    assert!(
        why.contains("403") && why.contains("may not send messages for project other-project"),
        "{why}"
    );

    // What is in the variable is not a service account key.
    for junk in ["not json", "{\"client_email\": \"x\"}"] {
        let d = delivery_trusting(Some(&ca), &clock, &[("FCM_ACCOUNT", junk)]);
        let why = config_error(send(&d, &t, PushService::Fcm).await);
        assert!(why.contains("FCM_ACCOUNT"), "{why}");
    }
    // A server that does not trust the receiver's CA reaches nothing.
    let d = delivery_trusting(None, &clock, &[("FCM_ACCOUNT", &account.json)]);
    let why = failed(send(&d, &t, PushService::Fcm).await);
    assert!(why.contains("could not be reached"), "{why}");
    assert_eq!(rx.received().await.len(), 0);
}

// --- APNs --------------------------------------------------------------------

const TEAM: &str = "ABCDE12345";
const KEY_ID: &str = "KEY1234567";
const TOPIC: &str = "com.acme.authenticator";
const DEVICE: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn apns(base_url: &str) -> String {
    format!(
        "  apns: {{ team_id: {TEAM}, key_id: {KEY_ID}, private_key_env: APNS_KEY, topic: {TOPIC}, \
         environment: sandbox, base_url: \"{base_url}\", timeout_seconds: 5 }}\n"
    )
}

#[tokio::test]
async fn apns_gets_an_alert_over_http2_with_a_reused_provider_token() {
    let clock = ManualClock::new(NOW);
    let ca = PushCa::new();
    let key = ApnsKey::new();
    let rx = ApnsReceiver::start(&ca, &key, TEAM, KEY_ID, TOPIC, shared(&clock)).await;
    let d = delivery_trusting(Some(&ca), &clock, &[("APNS_KEY", &key.pem)]);
    let t = tenant(&d, &apns(&rx.base_url));
    send_to(&d, &t, PushService::Apns, DEVICE).await.unwrap();
    clock.advance(39 * 60);
    send_to(&d, &t, PushService::Apns, DEVICE).await.unwrap();
    assert_eq!(rx.provider_tokens().await, 1, "reused for 40 minutes");
    clock.advance(60);
    send_to(&d, &t, PushService::Apns, DEVICE).await.unwrap();
    assert_eq!(rx.provider_tokens().await, 2, "renewed after 40 minutes");

    let got = rx.received().await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].device_token, DEVICE);
    assert_eq!(got[0].expiration, NOW + 300);
    assert_eq!(got[0].body["mfa"], notification().to_json());
    assert_eq!(
        got[0].body["aps"],
        json!({"alert": {"title": "acme", "body": "A login is waiting for your approval."},
               "category": "com.auth0.notification.authentication", "sound": "default"})
    );
    assert!(rx.refused().await.is_empty(), "{:?}", rx.refused().await);
}

#[tokio::test]
async fn apns_makes_a_new_provider_token_when_apple_says_it_expired() {
    let clock = ManualClock::new(NOW);
    let ca = PushCa::new();
    let key = ApnsKey::new();
    let rx = ApnsReceiver::start(&ca, &key, TEAM, KEY_ID, TOPIC, shared(&clock)).await;
    let d = delivery_trusting(Some(&ca), &clock, &[("APNS_KEY", &key.pem)]);
    let t = tenant(&d, &apns(&rx.base_url));
    send_to(&d, &t, PushService::Apns, DEVICE).await.unwrap();
    rx.expire_provider_tokens().await;
    send_to(&d, &t, PushService::Apns, DEVICE).await.unwrap();
    assert_eq!(rx.provider_tokens().await, 2);
    assert_eq!(rx.received().await.len(), 2);
    assert_eq!(
        rx.refused().await,
        vec!["expired provider token".to_owned()]
    );
}

#[tokio::test]
async fn apns_errors_tell_the_operator_what_to_do() {
    let clock = ManualClock::new(NOW);
    let ca = PushCa::new();
    let key = ApnsKey::new();
    let rx = ApnsReceiver::start(&ca, &key, TEAM, KEY_ID, TOPIC, shared(&clock)).await;
    let d = delivery_trusting(Some(&ca), &clock, &[("APNS_KEY", &key.pem)]);
    let t = tenant(&d, &apns(&rx.base_url));

    rx.unregister(DEVICE).await;
    let why = failed(send_to(&d, &t, PushService::Apns, DEVICE).await);
    assert!(why.contains("410") && why.contains("Unregistered"), "{why}");
    assert!(!why.contains(DEVICE), "{why}");
    let why = failed(send_to(&d, &t, PushService::Apns, "not-a-device-token").await);
    assert!(
        why.contains("BadDeviceToken") && why.contains("sandbox"),
        "{why}"
    );

    // Another key than the one Apple holds for KEY_ID.
    let stranger = ApnsKey::new();
    let d2 = delivery_trusting(Some(&ca), &clock, &[("APNS_KEY", &stranger.pem)]);
    let why = config_error(send_to(&d2, &t, PushService::Apns, "ff".repeat(32).as_str()).await);
    assert!(
        why.contains("InvalidProviderToken") && why.contains("APNS_KEY"),
        "{why}"
    );
    // Another app's topic.
    let wrong_topic = apns(&rx.base_url).replace(TOPIC, "com.acme.other");
    let t3 = tenant(&d, &wrong_topic);
    let why = failed(send_to(&d, &t3, PushService::Apns, "ee".repeat(32).as_str()).await);
    assert!(why.contains("DeviceTokenNotForTopic"), "{why}");
    // Not a key at all.
    let d4 = delivery_trusting(
        Some(&ca),
        &clock,
        &[(
            "APNS_KEY",
            "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----",
        )],
    );
    let why = config_error(send_to(&d4, &t, PushService::Apns, DEVICE).await);
    assert!(why.contains("APNS_KEY") && why.contains("P-256"), "{why}");
    assert!(rx.received().await.is_empty());
}

#[tokio::test]
async fn each_service_goes_to_its_provider_and_the_rest_to_the_webhook() {
    let clock = ManualClock::new(NOW);
    let ca = PushCa::new();
    let (fcm_rx, account) = FcmReceiver::start(&ca, PROJECT, CLIENT_EMAIL, shared(&clock)).await;
    let hook = PushWebhookReceiver::start(HOOK_SECRET, shared(&clock)).await;
    let d = delivery_trusting(Some(&ca), &clock, &[("FCM_ACCOUNT", &account.json)]);
    let t = tenant(
        &d,
        &format!("{}{}", fcm(&fcm_rx.base_url), webhook(&hook.url)),
    );
    send(&d, &t, PushService::Gcm).await.unwrap();
    send(&d, &t, PushService::Fcm).await.unwrap();
    send_to(&d, &t, PushService::Apns, DEVICE).await.unwrap();
    assert_eq!(fcm_rx.received().await.len(), 2);
    let got = hook.received().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].service, "APNS");
    assert_eq!(got[0].token, DEVICE);
    // Without a webhook, an APNs device has no provider.
    let t = tenant(&d, &fcm(&fcm_rx.base_url));
    assert_eq!(
        send_to(&d, &t, PushService::Apns, DEVICE).await,
        Err(DeliveryError::NotConfigured)
    );
}
