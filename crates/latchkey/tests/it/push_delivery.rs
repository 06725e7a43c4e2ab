//! Push delivery through the delivery port (`Delivery::send_push`) against
//! the local receivers of `push_receivers.rs`: routing by push service, the
//! signed webhook's body and signature, and every way a delivery fails.

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

use crate::push_receivers::PushWebhookReceiver;

pub const NOW: i64 = 1_800_000_000;
const HOOK_SECRET: &str = "push-webhook-secret";
const TOKEN: &str = "device-push-token-0123456789";

/// The receivers listen on loopback, which the tests allow.
const LOOPBACK: NetworkAccess = NetworkAccess {
    private_networks: false,
    loopback: true,
};

fn delivery(clock: &ManualClock, extra: &[(&str, &str)]) -> MessageDelivery {
    let mut secrets: HashMap<String, String> =
        HashMap::from([("PUSH_HOOK_SECRET".to_owned(), HOOK_SECRET.to_owned())]);
    secrets.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    MessageDelivery::new(
        Arc::new(MapSecrets(secrets)),
        Arc::new(ReqwestClient::new().unwrap()),
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
    delivery
        .send_push(&PushMessage {
            tenant,
            service,
            token: TOKEN,
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
