//! Push notifications (Auth0 Guardian's device protocol,
//! `docs/push-notifications.md`): what a push method is. [`PushDevice`] is
//! the typed form of its stored data, the one place that reads and writes
//! it; its sealed values are opened by its accessors.
//!
//! Its enrollment: `start` makes a pending enrollment with a TOTP secret
//! and a ticket (the URI's `enrollment_tx_id`, stored as its digest); the
//! device spends the ticket (`services::push::enroll`), which writes the
//! device into the enrollment's state; `finish` confirms it then, and
//! refuses before without counting an attempt.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::totp;
use super::{AnswerKind, AuthenticatorType, Label, SecondFactor};
use crate::context::Core;
use crate::crypto::hash::{constant_time_eq, secret_digest};
use crate::crypto::jose::{Alg, PublicKey};
use crate::crypto::otp;
use crate::crypto::seal::{SealError, Sealer};
use crate::rng::RngExt;
use crate::services::enrollment::{Challenge, EnrollError, Outcome, Who, new_method_id};
use crate::store::{Completion, EnrollmentRow, MethodRow};
use crate::tenant::{FactorType, issuer_for_host};

/// What a push method is at login: the MFA API's `oob` authenticator
/// (channel `auth0`), answered by the device's approval
/// (`services::push::transactions`) or by a code of its app.
pub(crate) const SECOND_FACTOR: Option<SecondFactor> = Some(SecondFactor {
    answer: AnswerKind::Push,
    api: Some(AuthenticatorType::Oob),
    rank: 1,
    enroll_label: None,
    label: login_label,
});

fn login_label(m: &MethodRow) -> Label {
    let name = m.name.clone().or_else(|| {
        m.data
            .get("device_name")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    Label {
        name,
        ..Label::named(m, "authenticatorNamesPushNotification")
    }
}

pub use crate::services::push_message::PushService;

/// The method ID's prefix before the device account ID.
const PREFIX: &str = "push-notification|";

/// A push method's data: the device enrolled with it. Stored as this JSON
/// in `authentication_methods.data` (and in the pending enrollment's state
/// under `device` until it is confirmed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushDevice {
    /// `dev_…`: the method ID less its type.
    pub device_account_id: String,
    /// The device's own identifier (the `iss` of its challenge responses).
    pub identifier: String,
    pub device_name: String,
    pub push_service: Option<PushService>,
    /// Sealed under [`PushDevice::push_token_context`].
    pub push_token: Option<String>,
    /// The device's RSA public key as it sent it, `n` and `e` without a
    /// leading zero byte.
    pub public_key: Map<String, Value>,
    /// The SHA-256 digest of the device account token.
    pub token_digest: String,
    /// Sealed under [`PushDevice::totp_context`].
    pub totp_secret: String,
}

/// The sealing context of a push method's push token.
pub fn push_token_context(tenant_id: &str, method_id: &str) -> String {
    format!("push-token:{tenant_id}:{method_id}")
}

/// The method ID of a device account ID.
pub fn method_id_of(device_account_id: &str) -> String {
    format!("{PREFIX}{device_account_id}")
}

/// The device account ID of a push method ID.
pub fn device_account_id_of(method_id: &str) -> Option<&str> {
    method_id.strip_prefix(PREFIX)
}

impl PushDevice {
    /// Reads a method's data; an error when it is not a push method or its
    /// data is not a device's.
    pub fn of_method(m: &MethodRow) -> Result<Self, String> {
        if m.method_type != FactorType::PushNotification {
            return Err(format!("{} is not a push-notification method", m.id));
        }
        Self::from_value(&m.data)
    }

    pub fn from_value(v: &Value) -> Result<Self, String> {
        serde_json::from_value(v.clone()).map_err(|e| format!("a push device's data: {e}"))
    }

    pub fn to_value(&self) -> Value {
        // A struct of strings and maps always serializes.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn method_id(&self) -> String {
        method_id_of(&self.device_account_id)
    }

    /// The sealing context of this device's push token in `tenant_id`.
    pub fn push_token_context(&self, tenant_id: &str) -> String {
        push_token_context(tenant_id, &self.method_id())
    }

    /// The sealing context of this device's TOTP secret in `tenant_id`.
    pub fn totp_context(&self, tenant_id: &str) -> String {
        totp::context(tenant_id, &self.method_id())
    }

    /// The push token, opened.
    pub fn open_push_token(
        &self,
        sealer: &Sealer,
        tenant_id: &str,
    ) -> Result<Option<String>, SealError> {
        let Some(sealed) = &self.push_token else {
            return Ok(None);
        };
        let plain = sealer.open(&self.push_token_context(tenant_id), sealed)?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| SealError::Malformed)
    }

    /// The TOTP secret (20 bytes), opened.
    pub fn open_totp_secret(&self, sealer: &Sealer, tenant_id: &str) -> Result<Vec<u8>, SealError> {
        sealer.open(&self.totp_context(tenant_id), &self.totp_secret)
    }

    /// Whether `token` is this device's account token (digests compared in
    /// constant time).
    pub fn token_matches(&self, token: &str) -> bool {
        constant_time_eq(
            secret_digest(token).as_bytes(),
            self.token_digest.as_bytes(),
        )
    }

    /// The device key, read for RS256.
    pub(crate) fn verifying_key(&self) -> Result<PublicKey, &'static str> {
        PublicKey::from_jwk(&self.public_key, &[Alg::Rs256])
    }
}

/// A pending push enrollment's state: the sealed TOTP secret, and the
/// device once it enrolled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub totp_secret: String,
    pub device: Option<PushDevice>,
}

impl Pending {
    pub(crate) fn of(enrollment: &EnrollmentRow) -> Result<Self, String> {
        serde_json::from_value(enrollment.state.clone())
            .map_err(|e| format!("a push enrollment's state: {e}"))
    }

    pub(crate) fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The label and user of a push enrollment, as the TOTP factor's.
pub(crate) fn label(tenant: &crate::tenant::Tenant) -> String {
    tenant.display_name().to_string()
}

/// The device API's base URL for `issuer`.
pub fn device_api_url(issuer: &str) -> String {
    format!("{issuer}appliance-mfa")
}

/// Starts an enrollment: the method ID, its state, what the user is shown,
/// and the digest of its ticket.
pub(crate) async fn start(
    state: &Core,
    who: &Who<'_>,
) -> Result<(String, Value, Challenge, String), EnrollError> {
    let user = state
        .store
        .user_by_id(&who.tenant.id, who.user_id)
        .await?
        .ok_or_else(|| EnrollError::Invalid("The user no longer exists.".into()))?;
    let method_id = new_method_id(state, FactorType::PushNotification);
    let ticket = state.rng.token(32);
    let secret: [u8; 20] = state.rng.bytes();
    let label = label(who.tenant);
    let barcode_uri = format!(
        "otpauth://totp/{}:{}?enrollment_tx_id={}&base_url={}&secret={}&issuer={}\
         &algorithm=SHA1&digits={}&period={}",
        totp::enc(&label),
        totp::enc(&user.email),
        totp::enc(&ticket),
        totp::enc(&device_api_url(&issuer_for_host(who.host))),
        otp::base32(&secret),
        totp::enc(&label),
        otp::DIGITS,
        otp::PERIOD
    );
    let pending = Pending {
        totp_secret: state.sealer.seal(
            &*state.rng,
            &totp::context(&who.tenant.id, &method_id),
            &secret,
        ),
        device: None,
    };
    Ok((
        method_id,
        pending.to_value(),
        Challenge::Push { barcode_uri },
        secret_digest(&ticket),
    ))
}

/// Confirms the enrollment once the device enrolled; before, a refusal
/// that counts no attempt and leaves the enrollment usable.
pub(crate) fn finish(
    state: &Core,
    who: &Who<'_>,
    enrollment: &EnrollmentRow,
) -> Result<Outcome, EnrollError> {
    let pending = Pending::of(enrollment).map_err(EnrollError::Internal)?;
    let Some(device) = pending.device else {
        return Err(EnrollError::Invalid(NOT_YET.into()));
    };
    Ok(Outcome::Done(Box::new(Completion::AddMethod {
        row: method_row(state, who.user_id, &enrollment.method_id, &device),
        replace_type: false,
    })))
}

/// The refusal of a confirmation before the device enrolled.
pub(crate) const NOT_YET: &str =
    "The device has not enrolled yet: scan the code with the authenticator app first.";

/// The method a confirmed device becomes.
pub(crate) fn method_row(
    state: &Core,
    user_id: &str,
    method_id: &str,
    device: &PushDevice,
) -> MethodRow {
    MethodRow {
        id: method_id.to_string(),
        user_id: user_id.to_string(),
        method_type: FactorType::PushNotification,
        name: Some(device.device_name.clone()),
        data: device.to_value(),
        created_at: state.clock.now(),
        last_auth_at: None,
        last_otp_step: None,
        credential_id: None,
    }
}

/// A device's view for its own calls: `{id, identifier, name,
/// push_credentials}`, the token never echoed.
pub fn device_view(device: &PushDevice, push_token: Option<&str>) -> Value {
    let credentials = match (device.push_service, push_token) {
        (Some(service), Some(token)) => json!({ "service": service.as_str(), "token": token }),
        _ => Value::Null,
    };
    json!({
        "id": device.device_account_id,
        "identifier": device.identifier,
        "name": device.device_name,
        "push_credentials": credentials,
    })
}
