//! The signed webhook latchkey delivers push notifications with: checking its
//! `X-Latchkey-Signature` (`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
//! in constant time, `t` within 5 minutes of this clock), reading its body, and
//! deciding whether a notification is this device's.

use aws_lc_rs::hmac;
use serde::Deserialize;
use serde_json::Value;

use crate::state::State;
use crate::sys;

pub const SIGNATURE_HEADER: &str = "x-latchkey-signature";
/// How far `t` may be from this clock, either way.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    Stale,
    Mismatch,
}

impl SignatureError {
    pub fn describe(self) -> &'static str {
        match self {
            SignatureError::Missing => "the request has no X-Latchkey-Signature",
            SignatureError::Malformed => "the X-Latchkey-Signature is malformed",
            SignatureError::Stale => {
                "the signature's timestamp is more than 5 minutes from this clock"
            }
            SignatureError::Mismatch => {
                "the signature does not match (wrong secret or altered body)"
            }
        }
    }
}

/// Checks the signature header of `body` under `secret` at `now`.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" if timestamp.is_none() => {
                let t: i64 = value.parse().map_err(|_| SignatureError::Malformed)?;
                timestamp = Some((value, t));
            }
            "t" => return Err(SignatureError::Malformed),
            "v1" => signatures.push(sys::unhex(value).ok_or(SignatureError::Malformed)?),
            // Other schemes (a later version) are not this receiver's.
            _ => {}
        }
    }
    let (t_text, t) = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(t) > TOLERANCE_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut signed = Vec::with_capacity(t_text.len() + 1 + body.len());
    signed.extend_from_slice(t_text.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    // hmac::verify compares in constant time.
    let mut matched = false;
    for signature in &signatures {
        matched |= hmac::verify(&key, &signed, signature).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The webhook's body.
#[derive(Debug, Clone, Deserialize)]
pub struct Delivery {
    #[serde(rename = "type")]
    pub kind: String,
    pub issuer: String,
    pub push_credentials: DeliveredCredentials,
    pub expires_at: i64,
    pub notification: Notification,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeliveredCredentials {
    pub service: String,
    pub token: String,
}

/// What the device would get in its push.
#[derive(Clone, Deserialize)]
pub struct Notification {
    pub txtkn: String,
    pub txlnkid: String,
    pub dai: String,
    pub sh: String,
    pub c: String,
    #[serde(default)]
    pub d: Option<String>,
    /// The browser and OS, as an object (or a JSON string, as FCM carries it).
    #[serde(default)]
    pub s: Option<Value>,
}

impl std::fmt::Debug for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notification")
            .field("txlnkid", &self.txlnkid)
            .field("dai", &self.dai)
            .field("sh", &self.sh)
            .field("d", &self.d)
            .finish_non_exhaustive()
    }
}

impl Notification {
    /// `Chrome 131 on Linux`, from `s`, when it says anything.
    pub fn source(&self) -> Option<String> {
        let s = match &self.s {
            Some(Value::String(text)) => serde_json::from_str(text).ok()?,
            Some(value) => value.clone(),
            None => return None,
        };
        let name = |v: &Value| {
            let n = v.get("n").and_then(Value::as_str).unwrap_or("").trim();
            let version = v.get("v").and_then(Value::as_str).unwrap_or("").trim();
            let joined = format!("{n} {version}").trim().to_owned();
            (!joined.is_empty()).then_some(joined)
        };
        match (s.get("b").and_then(name), s.get("os").and_then(name)) {
            (Some(b), Some(os)) => Some(format!("{b} on {os}")),
            (Some(b), None) => Some(b),
            (None, Some(os)) => Some(os),
            (None, None) => None,
        }
    }
}

/// Why a verified delivery is not acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotMine {
    NotANotification,
    OtherPushToken,
    OtherDevice,
    OtherIssuer,
    Expired,
}

impl NotMine {
    pub fn describe(&self) -> &'static str {
        match self {
            NotMine::NotANotification => "not a push_notification",
            NotMine::OtherPushToken => "for another push token",
            NotMine::OtherDevice => "for another device account",
            NotMine::OtherIssuer => "from another issuer than this device enrolled with",
            NotMine::Expired => "already expired",
        }
    }
}

/// Whether `delivery` is for this device (its push token, its device account,
/// its issuer) and still alive at `now`.
pub fn for_me(delivery: &Delivery, state: &State, now: i64) -> Result<(), NotMine> {
    if delivery.kind != "push_notification" {
        return Err(NotMine::NotANotification);
    }
    let mine = &state.device.push_credentials;
    if delivery.push_credentials.token != mine.token
        || !delivery
            .push_credentials
            .service
            .eq_ignore_ascii_case(&mine.service)
    {
        return Err(NotMine::OtherPushToken);
    }
    if delivery.notification.dai != state.enrollment.id {
        return Err(NotMine::OtherDevice);
    }
    let issuer = state.issuer_url();
    if delivery.issuer != issuer || delivery.notification.sh != issuer {
        return Err(NotMine::OtherIssuer);
    }
    if delivery.expires_at <= now {
        return Err(NotMine::Expired);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::key::DeviceKey;

    /// The header latchkey sends for `body` at `t` under `secret`.
    pub(crate) fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(format!("{t}.").as_bytes());
        ctx.update(body);
        format!("t={t},v1={}", sys::hex(ctx.sign().as_ref()))
    }

    const NOW: i64 = 1_765_108_800;

    #[test]
    fn a_good_signature_is_accepted() {
        let body = br#"{"type":"push_notification"}"#;
        let header = sign(b"s3cret", NOW, body);
        assert_eq!(verify(b"s3cret", Some(&header), body, NOW), Ok(()));
        assert_eq!(verify(b"s3cret", Some(&header), body, NOW + 300), Ok(()));
        assert_eq!(verify(b"s3cret", Some(&header), body, NOW - 300), Ok(()));
        // One of several v1 values may match (a secret being rotated).
        let two = format!(
            "t={NOW},v1={},{}",
            "00".repeat(32),
            header.split_once(',').unwrap().1
        );
        assert_eq!(verify(b"s3cret", Some(&two), body, NOW), Ok(()));
    }

    #[test]
    fn wrong_old_and_malformed_signatures_are_refused() {
        let body = br#"{"type":"push_notification"}"#;
        let header = sign(b"s3cret", NOW, body);
        assert_eq!(
            verify(b"other", Some(&header), body, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                b"s3cret",
                Some(&header),
                br#"{"type":"push_notification" }"#,
                NOW
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", Some(&header), body, NOW + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"s3cret", Some(&header), body, NOW - 301),
            Err(SignatureError::Stale)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = header.replace(&format!("t={NOW}"), &format!("t={}", NOW + 1));
        assert_eq!(
            verify(b"s3cret", Some(&moved), body, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", None, body, NOW),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            &format!("t={NOW},v1=zz"),
            &format!("t={NOW},t={NOW},v1=00"),
        ] {
            assert_eq!(
                verify(b"s3cret", Some(bad), body, NOW),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    fn delivery(state: &State) -> Delivery {
        serde_json::from_value(serde_json::json!({
            "type": "push_notification",
            "timestamp": NOW,
            "issuer": "http://localhost:3000/",
            "push_credentials": {"service": "FCM", "token": state.device.push_credentials.token},
            "expires_at": NOW + 300,
            "notification": {"txtkn": "t", "txlnkid": "tx", "dai": state.enrollment.id, "sh": "http://localhost:3000/",
                             "c": "c", "d": "2026-12-07T12:00:00.000Z",
                             "s": {"b": {"n": "Chrome", "v": "131"}, "os": {"n": "Linux"}}}
        }))
        .unwrap()
    }

    #[test]
    fn only_this_devices_live_notifications_are_acted_on() {
        let state = crate::state::tests::sample(&DeviceKey::generate().unwrap());
        let good = delivery(&state);
        assert_eq!(for_me(&good, &state, NOW), Ok(()));
        assert_eq!(
            good.notification.source().as_deref(),
            Some("Chrome 131 on Linux")
        );

        let mut other = good.clone();
        other.push_credentials.token = "someone-else".into();
        assert_eq!(for_me(&other, &state, NOW), Err(NotMine::OtherPushToken));
        let mut other = good.clone();
        other.notification.dai = "dev_other".into();
        assert_eq!(for_me(&other, &state, NOW), Err(NotMine::OtherDevice));
        let mut other = good.clone();
        other.notification.sh = "https://evil.example/".into();
        assert_eq!(for_me(&other, &state, NOW), Err(NotMine::OtherIssuer));
        let mut other = good.clone();
        other.kind = "sms".into();
        assert_eq!(for_me(&other, &state, NOW), Err(NotMine::NotANotification));
        assert_eq!(for_me(&good, &state, NOW + 300), Err(NotMine::Expired));
        assert!(!format!("{:?}", good.notification).contains("txtkn"));
    }

    #[test]
    fn the_source_is_read_from_an_fcm_style_string_too() {
        let state = crate::state::tests::sample(&DeviceKey::generate().unwrap());
        let mut d = delivery(&state);
        d.notification.s = Some(Value::String(r#"{"b":{"n":"Firefox","v":"133"}}"#.into()));
        assert_eq!(d.notification.source().as_deref(), Some("Firefox 133"));
        d.notification.s = None;
        assert_eq!(d.notification.source(), None);
    }
}
