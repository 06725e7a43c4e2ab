//! Push-notification logins (docs/push-notifications.md, "Logging in: a
//! transaction"): a login's second step sent to a device as a transaction,
//! its details fetched by that device, its resolution (the device's signed
//! challenge response, with number matching the code the login shows), and
//! the login's polls for the outcome, consumed once. Every change is one
//! conditional store statement, so racing resolutions or polls have one
//! winner. The login is named by a digest (its `mfa_token`'s, or its hosted
//! login transaction's), so the MFA API and the hosted page start and poll
//! alike.

use serde_json::{Map, Value, json};

use super::Caller;
use super::jwt::verify_device_jwt;
use crate::clock::{Timestamp, rfc3339};
use crate::context::Core;
use crate::crypto::dpop::{self, Expect};
use crate::crypto::hash::{constant_time_eq, secret_digest};
use crate::rng::RngExt;
use crate::services::audit::{self, Actor};
use crate::services::delivery::{PushNotification, PushSource, Software, send_push};
use crate::services::factors::push::{PushDevice, device_api_url};
use crate::store::{MethodRow, PushKey, PushStatus, PushTransactionRow, StoreError};
use crate::tenant::{Client, FactorType, Tenant};

/// How long a transaction lives, seconds.
pub const TRANSACTION_TTL: i64 = 300;
/// The shortest interval between two polls of one transaction, seconds.
pub const POLL_INTERVAL: i64 = 5;
/// The longest life of a challenge response, seconds (the SDKs give 30).
pub const RESPONSE_LIFETIME: i64 = 300;
/// The longest reason a device may give, characters.
pub const MAX_REASON: usize = 256;
/// How old a details request's proof may be, seconds.
const PROOF_AGE: i64 = 60;

/// A notification sent.
pub const EVENT_SENT: &str = "gd_send_pn";
/// A notification the provider did not take.
pub const EVENT_SEND_FAILED: &str = "gd_send_pn_failure";
/// A login approved on the device.
pub const EVENT_APPROVED: &str = "gd_auth_succeed";
/// A login rejected on the device (its reason in the details).
pub const EVENT_REJECTED: &str = "gd_auth_rejected";
/// A resolution refused (bad signature, wrong challenge or code…).
pub const EVENT_REFUSED: &str = "gd_auth_failed";

/// Why a transaction could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The method is no push method, or its device has no push credentials.
    #[error("the device cannot be reached: {0}")]
    Unreachable(String),
    /// The provider did not take the notification (audited).
    #[error("the notification could not be sent: {0}")]
    Delivery(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// A login's second step to send to a push method.
pub struct Start<'a> {
    pub tenant: &'a Tenant,
    /// The issuer of the request's host (ends with `/`).
    pub issuer: &'a str,
    pub client: &'a Client,
    pub user_id: &'a str,
    pub method: &'a MethodRow,
    /// The digest of the login it belongs to.
    pub login_digest: String,
    /// When that login ends: the transaction ends no later.
    pub login_expires_at: Timestamp,
    /// When the login started (its first factor).
    pub started_at: Timestamp,
    pub ip: &'a str,
    pub user_agent: &'a str,
    /// The API the login asks a token for (shown on the device).
    pub audience: Option<&'a str>,
    /// The scopes it asks for.
    pub scope: &'a [String],
}

/// A transaction sent.
#[derive(Debug, Clone)]
pub struct Started {
    pub id: String,
    /// The app's handle to poll with (the MFA API's `oob_code`).
    pub oob_code: String,
    /// With number matching, the code the login shows.
    pub binding_code: Option<String>,
    pub expires_at: Timestamp,
}

/// A two-digit code, uniform.
fn binding_code(core: &Core) -> String {
    loop {
        let [b] = core.rng.bytes::<1>();
        // 200 is a multiple of 100: no modulo bias.
        if b < 200 {
            return format!("{:02}", b % 100);
        }
    }
}

/// Makes the transaction and sends its notification to the method's
/// device. A failed delivery is audited and returned; the stored
/// transaction then simply expires.
pub async fn start(core: &Core, req: &Start<'_>) -> Result<Started, StartError> {
    let tenant = req.tenant;
    let device = PushDevice::of_method(req.method).map_err(StartError::Unreachable)?;
    let push_token = device
        .open_push_token(&core.sealer, &tenant.id)
        .map_err(|e| StartError::Internal(format!("opening a push token: {e}")))?;
    let service = device.push_service;
    let (Some(service), Some(push_token)) = (service, push_token) else {
        return Err(StartError::Unreachable(
            "the device has no push credentials".into(),
        ));
    };
    let now = core.clock.now();
    let token = core.rng.alnum(43);
    let challenge = core.rng.alnum(22);
    let oob_code = core.rng.alnum(43);
    let id = format!("txl_{}", core.rng.alnum(22));
    let binding_code = tenant
        .config
        .push_notifications
        .number_matching
        .then(|| binding_code(core));
    let expires_at = req.login_expires_at.min(now + TRANSACTION_TTL);
    let row = PushTransactionRow {
        id: id.clone(),
        user_id: req.user_id.to_string(),
        method_id: req.method.id.clone(),
        client_id: req.client.client_id.clone(),
        login_digest: req.login_digest.clone(),
        token_digest: secret_digest(&token),
        challenge_digest: secret_digest(&challenge),
        oob_digest: secret_digest(&oob_code),
        binding_code: binding_code.clone(),
        status: PushStatus::Pending,
        reason: None,
        context: json!({
            "application": { "name": req.client.name },
            "ip": req.ip,
            "user_agent": req.user_agent.chars().take(512).collect::<String>(),
            "audience": req.audience.unwrap_or_default(),
            "scope": req.scope,
        }),
        created_at: now,
        expires_at,
        polled_at: None,
        resolved_at: None,
        consumed_at: None,
    };
    let notification = PushNotification {
        transaction_token: token,
        transaction_id: id.clone(),
        device_account_id: device.device_account_id.clone(),
        issuer: req.issuer.to_string(),
        challenge,
        started_at_ms: req.started_at.saturating_mul(1000),
        source: source_of(req.user_agent),
    };
    let mut row = row;
    row.context["started_at"] = json!(notification.date());
    // Stored before it is sent: a device may answer at once.
    core.store.create_push_transaction(&tenant.id, &row).await?;
    let actor = Actor {
        tenant_id: &tenant.id,
        client_id: &req.client.client_id,
        user_id: req.user_id,
        ip: req.ip,
        user_agent: req.user_agent,
    };
    let details = json!({ "method_id": req.method.id, "txlnkid": id });
    if let Err(e) = send_push(
        core,
        tenant,
        service,
        &push_token,
        &notification,
        expires_at,
    )
    .await
    {
        let mut details = details;
        details["error"] = json!(e.to_string());
        audit::record(core, &actor, EVENT_SEND_FAILED, details).await;
        return Err(StartError::Delivery(e.to_string()));
    }
    audit::record(core, &actor, EVENT_SENT, details).await;
    Ok(Started {
        id,
        oob_code,
        binding_code,
        expires_at,
    })
}

/// `s`: the browser and operating system named in a `User-Agent`, names
/// and major versions only.
pub fn source_of(user_agent: &str) -> PushSource {
    let major = |after: &str| -> Option<String> {
        let at = user_agent.find(after)? + after.len();
        let v: String = user_agent[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .take(4)
            .collect();
        (!v.is_empty()).then_some(v)
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
    ]
    .into_iter()
    .find(|(token, _)| user_agent.contains(token))
    .map(|(token, name)| Software {
        name: name.into(),
        version: major(token),
    });
    let os = [
        ("Android", "Android", Some("Android ")),
        ("iPhone", "iOS", Some("OS ")),
        ("iPad", "iOS", Some("OS ")),
        ("Mac OS X", "macOS", Some("Mac OS X ")),
        ("Windows", "Windows", Some("Windows NT ")),
        ("CrOS", "ChromeOS", None),
        ("Linux", "Linux", None),
    ]
    .into_iter()
    .find(|(token, _, _)| user_agent.contains(token))
    .map(|(_, name, version)| Software {
        name: name.into(),
        version: version.and_then(major),
    });
    PushSource { browser, os }
}

/// Why a device's call about a transaction was refused, as Guardian's
/// error codes name it.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    /// 404 `transaction_not_found`: unknown, expired, resolved, another
    /// tenant's, or its method is gone.
    #[error("transaction not found")]
    NotFound,
    /// 401 `invalid_token`: the challenge response or proof does not hold
    /// (the reason is for the audit log).
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// 403 `invalid_binding_code`: an approval without the number the login
    /// shows, or with another; the transaction is rejected.
    #[error("the binding code does not match")]
    BindingCode,
    /// 400 `invalid_body`.
    #[error("{0}")]
    InvalidBody(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// The live (pending, unexpired) transaction of `token` or `id`, with the
/// device it was sent to.
async fn live(
    core: &Core,
    tenant: &Tenant,
    by: PushKey<'_>,
    token: &str,
) -> Result<(PushTransactionRow, PushDevice), TransactionError> {
    let row = core
        .store
        .push_transaction(&tenant.id, by)
        .await?
        .filter(|r| {
            constant_time_eq(r.token_digest.as_bytes(), secret_digest(token).as_bytes())
                && r.status == PushStatus::Pending
                && r.expires_at > core.clock.now()
        })
        .ok_or(TransactionError::NotFound)?;
    let method = core
        .store
        .method_by_id(&tenant.id, &row.method_id)
        .await?
        .filter(|m| m.user_id == row.user_id && m.method_type == FactorType::PushNotification)
        .ok_or(TransactionError::NotFound)?;
    let device = PushDevice::of_method(&method).map_err(TransactionError::Internal)?;
    Ok((row, device))
}

async fn audit_device(
    core: &Core,
    device: &Caller<'_>,
    row: &PushTransactionRow,
    event: &str,
    details: Value,
) {
    let actor = Actor {
        tenant_id: &device.tenant.id,
        client_id: &row.client_id,
        user_id: &row.user_id,
        ip: device.ip,
        user_agent: device.user_agent,
    };
    let mut details = details;
    details["method_id"] = json!(row.method_id);
    details["txlnkid"] = json!(row.id);
    audit::record(core, &actor, event, details).await;
}

/// The audience of challenge responses.
pub fn resolve_audience(issuer: &str) -> String {
    format!("{}/api/resolve-transaction", device_api_url(issuer))
}

/// `POST …/api/resolve-transaction`: the device (`Bearer` transaction
/// token) approves or rejects with its signed challenge response.
pub async fn resolve(
    core: &Core,
    device: &Caller<'_>,
    token: &str,
    challenge_response: &str,
) -> Result<(), TransactionError> {
    let tenant = device.tenant;
    let (row, push_device) =
        live(core, tenant, PushKey::Token(&secret_digest(token)), token).await?;
    let now = core.clock.now();
    let row_ref = &row;
    let refuse = |why: String| async move {
        audit_device(
            core,
            device,
            row_ref,
            EVENT_REFUSED,
            json!({ "error": why }),
        )
        .await;
        TransactionError::InvalidToken(why)
    };
    let claims = match verify_device_jwt(
        &push_device,
        challenge_response,
        &resolve_audience(device.issuer),
        now,
        RESPONSE_LIFETIME,
    ) {
        Ok(c) => c,
        Err(e) => return Err(refuse(e.to_string()).await),
    };
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(push_device.identifier.as_str()) {
        return Err(refuse("iss is not the device's identifier".into()).await);
    }
    let sub = text("sub").unwrap_or("");
    if !constant_time_eq(
        secret_digest(sub).as_bytes(),
        row.challenge_digest.as_bytes(),
    ) {
        return Err(refuse("sub is not the transaction's challenge".into()).await);
    }
    if text("auth0_guardian_method") != Some("push") {
        return Err(refuse("auth0_guardian_method is not push".into()).await);
    }
    let Some(accepted) = claims
        .get("auth0_guardian_accepted")
        .and_then(Value::as_bool)
    else {
        return Err(refuse("auth0_guardian_accepted is not a boolean".into()).await);
    };
    let reason = match claims.get("auth0_guardian_reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if r.chars().count() <= MAX_REASON => Some(r.as_str()),
        Some(_) => {
            return Err(TransactionError::InvalidBody(format!(
                "auth0_guardian_reason must be a string of at most {MAX_REASON} characters"
            )));
        }
    };
    let code_ok = match (&row.binding_code, accepted) {
        (Some(expected), true) => text("latchkey_binding_code")
            .is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes())),
        _ => true,
    };
    // A wrong number rejects the transaction: one guess a login.
    let (status, reason) = if code_ok {
        let status = if accepted {
            PushStatus::Approved
        } else {
            PushStatus::Rejected
        };
        (status, reason)
    } else {
        (PushStatus::Rejected, Some("binding code mismatch"))
    };
    if !core
        .store
        .resolve_push_transaction(&tenant.id, &row.id, status, reason, now)
        .await?
    {
        return Err(TransactionError::NotFound);
    }
    let event = match status {
        PushStatus::Approved => EVENT_APPROVED,
        PushStatus::Rejected | PushStatus::Pending => EVENT_REJECTED,
    };
    audit_device(
        core,
        device,
        &row,
        event,
        json!({ "factor": "push-notification", "reason": reason }),
    )
    .await;
    if code_ok {
        Ok(())
    } else {
        Err(TransactionError::BindingCode)
    }
}

/// `GET /rich-consents/{txlnkid}`: what the device shows, to the device the
/// transaction was sent to only (`MFA-DPoP` transaction token, and a proof
/// signed by its key for this request).
pub async fn details(
    core: &Core,
    device: &Caller<'_>,
    id: &str,
    token: &str,
    proof: &str,
    url: &str,
) -> Result<Value, TransactionError> {
    let tenant = device.tenant;
    let (row, push_device) = live(core, tenant, PushKey::Id(id), token).await?;
    let now = core.clock.now();
    let refused = |why: String| TransactionError::InvalidToken(why);
    let checked = dpop::verify(
        proof,
        &Expect {
            method: "GET",
            url,
            now,
            access_token: Some(token),
            nonces: None,
        },
    )
    .map_err(|e| refused(e.to_string()))?;
    if checked.iat < now - PROOF_AGE {
        return Err(refused("the proof is more than a minute old".into()));
    }
    let device_jkt =
        dpop::thumbprint(&push_device.public_key).map_err(|e| refused(e.to_string()))?;
    if !constant_time_eq(checked.jkt.as_bytes(), device_jkt.as_bytes()) {
        return Err(refused(
            "the proof is not signed by the device's key".into(),
        ));
    }
    let replay_key = format!("mfa-dpop\0{}\0{}\0{}", tenant.id, checked.jkt, checked.jti);
    if !core
        .replay
        .first_use(&replay_key, checked.iat + dpop::MAX_SKEW + PROOF_AGE + 1)
    {
        return Err(refused("the proof's jti was used before".into()));
    }
    Ok(consent(&row))
}

/// The rich consent of a transaction.
fn consent(row: &PushTransactionRow) -> Value {
    let ctx = &row.context;
    let number_matching = row.binding_code.is_some();
    let application = ctx.get("application").cloned().unwrap_or(Value::Null);
    // Never the number itself: the user reads it on the login page.
    let binding_message = number_matching.then_some("Enter the number shown on the login page");
    let mut detail = Map::new();
    detail.insert("type".into(), json!("login"));
    detail.insert("application".into(), application);
    for key in ["ip", "user_agent", "started_at"] {
        detail.insert(key.into(), ctx.get(key).cloned().unwrap_or(Value::Null));
    }
    detail.insert("number_matching".into(), json!(number_matching));
    json!({
        "id": row.id,
        "requested_details": {
            "audience": ctx.get("audience").cloned().unwrap_or_else(|| json!("")),
            "scope": ctx.get("scope").cloned().unwrap_or_else(|| json!([])),
            "binding_message": binding_message,
            "authorization_details": [Value::Object(detail)],
        },
        // Strings: Guardian.swift decodes both as `String`.
        "created_at": rfc3339(row.created_at),
        "expires_at": rfc3339(row.expires_at),
    })
}

/// What a poll of a transaction found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// Not resolved yet.
    Pending,
    /// Polled again within [`POLL_INTERVAL`] of the last poll.
    SlowDown,
    /// Approved, and consumed by this poll: the login may finish.
    Approved,
    Rejected,
    /// Unresolved at its end.
    Expired,
    /// Consumed already (or unknown).
    Gone,
    /// Unresolved, and its device was removed meanwhile: no one will
    /// answer it.
    Removed,
}

/// The transaction of an `oob_code`, whichever login it belongs to.
pub async fn by_oob_code(
    core: &Core,
    tenant: &Tenant,
    oob_code: &str,
) -> Result<Option<PushTransactionRow>, StoreError> {
    core.store
        .push_transaction(&tenant.id, PushKey::Oob(&secret_digest(oob_code)))
        .await
}

/// Whether `row` belongs to the login of `login_digest` for `client_id`.
pub fn belongs(row: &PushTransactionRow, login_digest: &str, client_id: &str) -> bool {
    constant_time_eq(row.login_digest.as_bytes(), login_digest.as_bytes())
        && row.client_id == client_id
}

/// The newest transaction of the login of `login_digest` (the hosted page).
pub async fn of_login(
    core: &Core,
    tenant: &Tenant,
    login_digest: &str,
) -> Result<Option<PushTransactionRow>, StoreError> {
    core.store
        .push_transaction(&tenant.id, PushKey::Login(login_digest))
        .await
}

/// A poll of `row`: an approved transaction is consumed by the first poll
/// that sees it; a pending one answers [`Poll::SlowDown`] when polled again
/// within [`POLL_INTERVAL`], and [`Poll::Removed`] once its device is gone.
pub async fn poll(
    core: &Core,
    tenant: &Tenant,
    row: &PushTransactionRow,
) -> Result<Poll, StoreError> {
    let now = core.clock.now();
    if row.consumed_at.is_some() {
        return Ok(Poll::Gone);
    }
    match row.status {
        PushStatus::Rejected => Ok(Poll::Rejected),
        PushStatus::Approved => Ok(
            if core
                .store
                .consume_push_transaction(&tenant.id, &row.id, now)
                .await?
            {
                Poll::Approved
            } else {
                Poll::Gone
            },
        ),
        PushStatus::Pending if row.expires_at <= now => Ok(Poll::Expired),
        PushStatus::Pending
            if core
                .store
                .method_by_id(&tenant.id, &row.method_id)
                .await?
                .is_none_or(|m| m.user_id != row.user_id) =>
        {
            Ok(Poll::Removed)
        }
        PushStatus::Pending => Ok(
            if core
                .store
                .poll_push_transaction(&tenant.id, &row.id, now, POLL_INTERVAL)
                .await?
            {
                Poll::Pending
            } else {
                Poll::SlowDown
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_and_systems_by_name_and_major_version() {
        let s = source_of(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.6778.85 Safari/537.36",
        );
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"b": {"n": "Chrome", "v": "131"}, "os": {"n": "Linux"}})
        );
        let s = source_of(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"b": {"n": "Safari", "v": "17"}, "os": {"n": "iOS", "v": "17"}})
        );
        let s = source_of(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        );
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"b": {"n": "Firefox", "v": "133"}, "os": {"n": "Windows", "v": "10"}})
        );
        assert_eq!(
            serde_json::to_value(source_of("curl/8.5")).unwrap(),
            json!({})
        );
    }

    fn row(binding_code: Option<&str>) -> PushTransactionRow {
        PushTransactionRow {
            id: "txl_1".into(),
            user_id: "auth0|alice".into(),
            method_id: "push-notification|dev_1".into(),
            client_id: "spa".into(),
            login_digest: "l".into(),
            token_digest: "t".into(),
            challenge_digest: "c".into(),
            oob_digest: "o".into(),
            binding_code: binding_code.map(str::to_string),
            status: PushStatus::Pending,
            reason: None,
            context: json!({"application": {"name": "Acme"}, "ip": "203.0.113.9",
                            "user_agent": "UA", "started_at": "2026-12-07T12:00:00.000Z",
                            "audience": "https://api.example.com/", "scope": ["read:notes"]}),
            created_at: 10,
            expires_at: 310,
            polled_at: None,
            resolved_at: None,
            consumed_at: None,
        }
    }

    #[test]
    fn the_consent_never_carries_the_number() {
        let plain = consent(&row(None));
        assert_eq!(
            plain,
            json!({"id": "txl_1", "requested_details": {"audience": "https://api.example.com/",
                   "scope": ["read:notes"],
                   "binding_message": null, "authorization_details": [{"type": "login",
                   "application": {"name": "Acme"}, "ip": "203.0.113.9", "user_agent": "UA",
                   "started_at": "2026-12-07T12:00:00.000Z", "number_matching": false}]},
                   "created_at": "1970-01-01T00:00:10.000Z",
                   "expires_at": "1970-01-01T00:05:10.000Z"})
        );
        let matching = consent(&row(Some("47")));
        assert_eq!(
            matching["requested_details"]["authorization_details"][0]["number_matching"],
            true
        );
        assert!(!matching.to_string().contains("47"));
    }
}
