//! What a push notification carries, as the services decide it: the device's
//! push service and token, and the payload the Guardian SDKs read (`txtkn`,
//! `txlnkid`, `dai`, `sh`, `c`, `d`, `s`; see docs/push-notifications.md).
//! Each provider lays it out its own way from [`PushNotification::to_json`]
//! (APNs and the webhook: `s` as an object) or
//! [`PushNotification::to_data`] (FCM: every value a string).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The push service a device enrolled with, by its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum PushService {
    /// Apple Push Notification service (`APNS`).
    Apns,
    /// Google Cloud Messaging (`GCM`), served today by FCM.
    Gcm,
    /// Firebase Cloud Messaging (`FCM`).
    Fcm,
}

impl PushService {
    pub const ALL: [Self; 3] = [Self::Apns, Self::Gcm, Self::Fcm];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Apns => "APNS",
            Self::Gcm => "GCM",
            Self::Fcm => "FCM",
        }
    }

    /// The service named `name` (`APNS`, `GCM` or `FCM`, exactly).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl TryFrom<String> for PushService {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Self::parse(&name)
            .ok_or_else(|| format!("unknown push service {name:?} (expected APNS, GCM or FCM)"))
    }
}

impl From<PushService> for &'static str {
    fn from(value: PushService) -> Self {
        value.as_str()
    }
}

impl fmt::Display for PushService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A browser or operating system: its name and major version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Software {
    #[serde(rename = "n")]
    pub name: String,
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Where the login came from (`s`): names and major versions only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSource {
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<Software>,
    #[serde(rename = "os", default, skip_serializing_if = "Option::is_none")]
    pub os: Option<Software>,
}

/// The notification's payload. Nothing personal: no name, email, IP address
/// or location.
#[derive(Clone, PartialEq, Eq)]
pub struct PushNotification {
    /// `txtkn`: the transaction token (a bearer secret).
    pub transaction_token: String,
    /// `txlnkid`: the transaction ID.
    pub transaction_id: String,
    /// `dai`: the device account ID (`dev_…`).
    pub device_account_id: String,
    /// `sh`: the issuer (`https://host/`).
    pub issuer: String,
    /// `c`: the challenge the device signs back.
    pub challenge: String,
    /// `d`: when the login started, unix milliseconds.
    pub started_at_ms: i64,
    /// `s`: the browser and operating system of the login.
    pub source: PushSource,
}

impl fmt::Debug for PushNotification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushNotification")
            .field("transaction_token", &"[redacted]")
            .field("transaction_id", &self.transaction_id)
            .field("device_account_id", &self.device_account_id)
            .field("issuer", &self.issuer)
            .field("challenge", &"[redacted]")
            .field("started_at_ms", &self.started_at_ms)
            .field("source", &self.source)
            .finish()
    }
}

impl PushNotification {
    /// `d`: `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'` in UTC.
    pub fn date(&self) -> String {
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(self.started_at_ms) * 1_000_000,
        )
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        at.format(format).unwrap_or_default()
    }

    /// The payload as a JSON object, `s` an object (APNs' `mfa`, the webhook).
    pub fn to_json(&self) -> Value {
        json!({
            "txtkn": self.transaction_token,
            "txlnkid": self.transaction_id,
            "dai": self.device_account_id,
            "sh": self.issuer,
            "c": self.challenge,
            "d": self.date(),
            "s": self.source,
        })
    }

    /// The payload as string values, `s` a JSON string (FCM's `data`).
    pub fn to_data(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("txtkn", self.transaction_token.clone()),
            ("txlnkid", self.transaction_id.clone()),
            ("dai", self.device_account_id.clone()),
            ("sh", self.issuer.clone()),
            ("c", self.challenge.clone()),
            ("d", self.date()),
            (
                "s",
                serde_json::to_string(&self.source).unwrap_or_else(|_| "{}".into()),
            ),
        ])
    }
}

/// One notification to one device, as the services decide it.
#[derive(Clone, Copy)]
pub struct PushMessage<'a> {
    pub tenant: &'a crate::tenant::Tenant,
    /// The service the device enrolled with.
    pub service: PushService,
    /// The device's push token, opened.
    pub token: &'a str,
    pub notification: &'a PushNotification,
    /// When the transaction expires (unix seconds): the notification is
    /// useless after it.
    pub expires_at: i64,
}

impl fmt::Debug for PushMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushMessage")
            .field("tenant", &self.tenant.name)
            .field("service", &self.service)
            .field("token", &"[redacted]")
            .field("notification", self.notification)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PushNotification {
        PushNotification {
            transaction_token: "tx-token".into(),
            transaction_id: "txl_1".into(),
            device_account_id: "dev_abc".into(),
            issuer: "https://auth.example.com/".into(),
            challenge: "chal".into(),
            started_at_ms: 1_765_108_800_123,
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

    #[test]
    fn services_by_their_wire_names() {
        assert_eq!(PushService::parse("APNS"), Some(PushService::Apns));
        assert_eq!(PushService::parse("GCM"), Some(PushService::Gcm));
        assert_eq!(PushService::parse("FCM"), Some(PushService::Fcm));
        assert_eq!(PushService::parse("apns"), None);
        let parsed: PushService = serde_json::from_str("\"FCM\"").unwrap();
        assert_eq!(parsed, PushService::Fcm);
        assert!(serde_json::from_str::<PushService>("\"WNS\"").is_err());
        assert_eq!(
            serde_json::to_string(&PushService::Apns).unwrap(),
            "\"APNS\""
        );
    }

    #[test]
    fn the_payload_as_json_and_as_strings() {
        let n = sample();
        assert_eq!(n.date(), "2025-12-07T12:00:00.123Z");
        assert_eq!(
            n.to_json(),
            json!({"txtkn": "tx-token", "txlnkid": "txl_1", "dai": "dev_abc",
                   "sh": "https://auth.example.com/", "c": "chal",
                   "d": "2025-12-07T12:00:00.123Z",
                   "s": {"b": {"n": "Chrome", "v": "131"}, "os": {"n": "Linux"}}})
        );
        let data = n.to_data();
        assert_eq!(data.len(), 7);
        assert_eq!(
            serde_json::from_str::<Value>(&data["s"]).unwrap(),
            json!({"b": {"n": "Chrome", "v": "131"}, "os": {"n": "Linux"}})
        );
        assert_eq!(data["d"], "2025-12-07T12:00:00.123Z");
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let n = sample();
        let text = format!("{n:?}");
        assert!(
            !text.contains("tx-token") && !text.contains("chal\""),
            "{text}"
        );
    }
}
