//! The push device's own calls (Auth0 Guardian's device API,
//! `docs/push-notifications.md`): enrolling with a ticket, updating and
//! removing its device account, and authenticating the device (its account
//! token, or a JWT signed by its key). The HTTP area `guardian` decodes and
//! maps; this decides.

pub mod body;
pub mod jwt;
pub mod transactions;

use serde_json::{Value, json};

use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::crypto::otp;
use crate::rng::RngExt;
use crate::services::factors::push::{
    self as factor, Pending, PushDevice, device_account_id_of, device_api_url, method_id_of,
};
use crate::store::{AuditEvent, MethodRow, StoreError};
use crate::tenant::{FactorType, Tenant};

pub use jwt::{DeviceJwtError, verify_device_jwt};

/// A device enrolled (its pending enrollment holds it until confirmed).
pub const EVENT_ENROLLED: &str = "gd_enrollment_complete";
/// A device changed its account.
pub const EVENT_UPDATED: &str = "gd_update_device_account";
/// A device removed itself (its method is deleted).
pub const EVENT_REMOVED: &str = "gd_unenroll";

/// Updates racing on one device are retried this many times.
const UPDATE_TRIES: usize = 3;

/// Why a device's call is refused, as Guardian's error codes name it.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// 404 `enrollment_transaction_not_found`: the ticket is unknown,
    /// spent, expired or another tenant's.
    #[error("enrollment transaction not found")]
    TicketNotFound,
    /// 404 `device_account_not_found`.
    #[error("device account not found")]
    DeviceNotFound,
    /// 401 `invalid_token`: neither the account token nor a valid JWT of
    /// the device.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// 400 `invalid_body`.
    #[error("{0}")]
    InvalidBody(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<body::BadBody> for DeviceError {
    fn from(e: body::BadBody) -> Self {
        Self::InvalidBody(e.0)
    }
}

/// Where and from what a device called.
pub struct Caller<'a> {
    pub tenant: &'a Tenant,
    /// The tenant's issuer on the request's host (ends with `/`).
    pub issuer: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

impl Caller<'_> {
    /// The audience of the JWTs authenticating the device's own calls.
    pub fn accounts_audience(&self) -> String {
        format!("{}/api/device-accounts", device_api_url(self.issuer))
    }
}

/// The answer to an enrollment.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrolled {
    pub device_account_id: String,
    /// The device API's URL (`{issuer}appliance-mfa`).
    pub url: String,
    /// The label shown in the app.
    pub issuer: String,
    pub user_id: String,
    /// The device account token, shown once.
    pub token: String,
    /// The TOTP secret, base32.
    pub totp_secret: String,
}

impl Enrolled {
    /// Guardian's enrollment answer.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.device_account_id,
            "url": self.url,
            "issuer": self.issuer,
            "user_id": self.user_id,
            "token": self.token,
            "totp": {
                "secret": self.totp_secret,
                "algorithm": "sha1",
                "digits": otp::DIGITS,
                "period": otp::PERIOD,
            },
        })
    }
}

async fn record(state: &Core, caller: &Caller<'_>, user_id: &str, kind: &str, details: Value) {
    let event = AuditEvent {
        id: format!("log_{}", state.rng.alnum(24)),
        event_type: kind.to_string(),
        date: state.clock.now(),
        client_id: None,
        user_id: Some(user_id.to_string()),
        ip: Some(caller.ip.to_string()),
        user_agent: Some(caller.user_agent.to_string()),
        details,
    };
    if let Err(e) = state.store.record_audit(&caller.tenant.id, &event).await {
        tracing::error!(error = %e, event = kind, "audit event not recorded");
    }
}

/// `POST /api/enroll` with the ticket of a pending enrollment: the device
/// is written into the enrollment (the ticket spent with it, once) and
/// gets its account token and TOTP secret. The method exists once the
/// enrollment is confirmed.
pub async fn enroll(
    state: &Core,
    caller: &Caller<'_>,
    ticket: &str,
    request: &Value,
) -> Result<Enrolled, DeviceError> {
    let now = state.clock.now();
    let ticket_digest = secret_digest(ticket);
    let Some((_, enrollment)) = state
        .store
        .enrollment_by_ticket(&caller.tenant.id, &ticket_digest, now)
        .await?
    else {
        return Err(DeviceError::TicketNotFound);
    };
    if enrollment.method_type != FactorType::PushNotification.as_str() {
        return Err(DeviceError::TicketNotFound);
    }
    let body = body::enroll(request)?;
    let pending = Pending::of(&enrollment).map_err(DeviceError::Internal)?;
    if pending.device.is_some() {
        return Err(DeviceError::TicketNotFound);
    }
    let device_account_id = device_account_id_of(&enrollment.method_id)
        .ok_or_else(|| DeviceError::Internal("a push enrollment's method ID".into()))?
        .to_string();
    let token = state.rng.token(32);
    let (push_service, push_token) = match &body.push_credentials {
        Some(c) => (
            Some(c.service),
            Some(state.sealer.seal(
                &*state.rng,
                &factor::push_token_context(&caller.tenant.id, &enrollment.method_id),
                c.token.as_bytes(),
            )),
        ),
        None => (None, None),
    };
    let device = PushDevice {
        device_account_id,
        identifier: body.identifier,
        device_name: body.name,
        push_service,
        push_token,
        public_key: body.public_key,
        token_digest: secret_digest(&token),
        totp_secret: pending.totp_secret.clone(),
    };
    let secret = device
        .open_totp_secret(&state.sealer, &caller.tenant.id)
        .map_err(|e| DeviceError::Internal(format!("opening a TOTP secret: {e}")))?;
    let enrolled = Pending {
        totp_secret: pending.totp_secret.clone(),
        device: Some(device.clone()),
    };
    if !state
        .store
        .spend_enrollment_ticket(
            &caller.tenant.id,
            &ticket_digest,
            &enrollment.state,
            &enrolled.to_value(),
            now,
        )
        .await?
    {
        // Another device spent it first, or it expired meanwhile.
        return Err(DeviceError::TicketNotFound);
    }
    record(
        state,
        caller,
        &enrollment.user_id,
        EVENT_ENROLLED,
        json!({
            "authentication_method_id": enrollment.method_id,
            "device_name": device.device_name,
            "push_service": device.push_service.map(|s| s.as_str()),
        }),
    )
    .await;
    Ok(Enrolled {
        device_account_id: device.device_account_id,
        url: device_api_url(caller.issuer),
        issuer: factor::label(caller.tenant),
        user_id: enrollment.user_id,
        token,
        totp_secret: otp::base32(&secret),
    })
}

/// Whether `id` has the form of a device account ID (`dev_` and 16
/// alphanumerics), so nothing else reaches the store.
fn well_formed(id: &str) -> bool {
    id.strip_prefix("dev_")
        .is_some_and(|rest| rest.len() == 16 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The device account `dai` of the tenant, authenticated by `bearer`: its
/// account token, or a JWT signed by its key with `iss` the device account
/// ID, `sub` the user ID and `aud` the device accounts' URL, living at most
/// [`jwt::ACCOUNT_JWT_LIFETIME`].
pub async fn authenticate(
    state: &Core,
    caller: &Caller<'_>,
    dai: &str,
    bearer: &str,
) -> Result<(MethodRow, PushDevice), DeviceError> {
    if !well_formed(dai) {
        return Err(DeviceError::DeviceNotFound);
    }
    let Some(method) = state
        .store
        .method_by_id(&caller.tenant.id, &method_id_of(dai))
        .await?
    else {
        return Err(DeviceError::DeviceNotFound);
    };
    let device = PushDevice::of_method(&method).map_err(DeviceError::Internal)?;
    if bearer.contains('.') {
        let claims = verify_device_jwt(
            &device,
            bearer,
            &caller.accounts_audience(),
            state.clock.now(),
            jwt::ACCOUNT_JWT_LIFETIME,
        )
        .map_err(|e| DeviceError::InvalidToken(e.to_string()))?;
        if claims.get("iss").and_then(Value::as_str) != Some(dai) {
            return Err(DeviceError::InvalidToken("iss is not the device".into()));
        }
        if claims.get("sub").and_then(Value::as_str) != Some(method.user_id.as_str()) {
            return Err(DeviceError::InvalidToken("sub is not the user".into()));
        }
    } else if !device.token_matches(bearer) {
        return Err(DeviceError::InvalidToken("not the device's token".into()));
    }
    Ok((method, device))
}

/// `PATCH /api/device-accounts/{dai}`: changes what the body names;
/// answers the device's view (its push token opened, its account token
/// never).
pub async fn update(
    state: &Core,
    caller: &Caller<'_>,
    dai: &str,
    bearer: &str,
    request: &Value,
) -> Result<Value, DeviceError> {
    let (mut method, mut device) = authenticate(state, caller, dai, bearer).await?;
    let change = body::update(request)?;
    for _ in 0..UPDATE_TRIES {
        let mut next = device.clone();
        if let Some(i) = &change.identifier {
            next.identifier.clone_from(i);
        }
        if let Some(n) = &change.name {
            next.device_name.clone_from(n);
        }
        if let Some(c) = &change.push_credentials {
            next.push_service = Some(c.service);
            next.push_token = Some(state.sealer.seal(
                &*state.rng,
                &next.push_token_context(&caller.tenant.id),
                c.token.as_bytes(),
            ));
        }
        if state
            .store
            .update_method_data(
                &caller.tenant.id,
                &method.id,
                &method.data,
                &next.to_value(),
                None,
            )
            .await?
        {
            record(
                state,
                caller,
                &method.user_id,
                EVENT_UPDATED,
                json!({ "authentication_method_id": method.id }),
            )
            .await;
            let push_token = next
                .open_push_token(&state.sealer, &caller.tenant.id)
                .map_err(|e| DeviceError::Internal(format!("opening a push token: {e}")))?;
            return Ok(factor::device_view(&next, push_token.as_deref()));
        }
        // Changed meanwhile (or removed): read it again.
        method = state
            .store
            .method_by_id(&caller.tenant.id, &method.id)
            .await?
            .ok_or(DeviceError::DeviceNotFound)?;
        device = PushDevice::of_method(&method).map_err(DeviceError::Internal)?;
    }
    Err(DeviceError::Internal(
        "a device account kept changing during its update".into(),
    ))
}

/// `DELETE /api/device-accounts/{dai}`: the method is deleted, as if the
/// user deleted it.
pub async fn remove(
    state: &Core,
    caller: &Caller<'_>,
    dai: &str,
    bearer: &str,
) -> Result<(), DeviceError> {
    let (method, _) = authenticate(state, caller, dai, bearer).await?;
    match crate::services::methods::delete(state, &caller.tenant.id, &method.user_id, &method.id)
        .await
    {
        Ok(_) => {}
        Err(crate::services::methods::MethodError::NotFound) => {
            return Err(DeviceError::DeviceNotFound);
        }
        Err(crate::services::methods::MethodError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(DeviceError::Internal(e.to_string())),
    }
    record(
        state,
        caller,
        &method.user_id,
        EVENT_REMOVED,
        json!({ "authentication_method_id": method.id, "removed_by": "device" }),
    )
    .await;
    Ok(())
}
