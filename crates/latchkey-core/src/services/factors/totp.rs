//! TOTP: a 160-bit secret shown once as an `otpauth://` URI and as text,
//! sealed at rest; verified with the current code ±1 step, and a code is
//! never accepted twice.

use serde_json::{Value, json};

use super::{AnswerKind, AuthenticatorType, Label, SecondFactor};
use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::crypto::otp;
use crate::rng::RngExt;
use crate::services::enrollment::{Challenge, EnrollError, Outcome, Who, new_method_id};
use crate::services::mfa::{Answer, MfaError, Pending, guessing, wrong_guess};
use crate::store::{Completion, EnrollmentRow, MethodRow};
use crate::tenant::FactorType;
use crate::tenant::Tenant;

pub(crate) fn context(tenant_id: &str, method_id: &str) -> String {
    format!("totp:{tenant_id}:{method_id}")
}

/// Percent-encodes all but RFC 3986 unreserved characters.
pub(crate) fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

pub(crate) async fn start(
    state: &Core,
    who: &Who<'_>,
) -> Result<(String, Value, Challenge), EnrollError> {
    let user = state
        .store
        .user_by_id(&who.tenant.id, who.user_id)
        .await?
        .ok_or_else(|| EnrollError::Invalid("The user no longer exists.".into()))?;
    let method_id = new_method_id(state, FactorType::Totp);
    let secret: [u8; 20] = state.rng.bytes();
    let sealed = state
        .sealer
        .seal(&*state.rng, &context(&who.tenant.id, &method_id), &secret);
    Ok((
        method_id,
        json!({ "secret": sealed }),
        challenge(who, &user.email, &secret),
    ))
}

/// What the user is shown for `secret`: the `otpauth://` URI and the key.
fn challenge(who: &Who<'_>, email: &str, secret: &[u8]) -> Challenge {
    let manual = otp::base32(secret);
    let issuer = who.tenant.display_name();
    let barcode_uri = format!(
        "otpauth://totp/{}:{}?secret={manual}&issuer={}&algorithm=SHA1&digits={}&period={}",
        enc(issuer),
        enc(email),
        enc(issuer),
        otp::DIGITS,
        otp::PERIOD
    );
    Challenge::Totp {
        barcode_uri,
        manual_input_code: manual,
    }
}

/// The challenge of a pending enrollment, shown again (after a wrong first
/// code, the page must still show what to scan).
pub(crate) async fn shown_again(
    state: &Core,
    who: &Who<'_>,
    enrollment: &EnrollmentRow,
) -> Result<Challenge, EnrollError> {
    let user = state
        .store
        .user_by_id(&who.tenant.id, who.user_id)
        .await?
        .ok_or_else(|| EnrollError::Invalid("The user no longer exists.".into()))?;
    let sealed = enrollment
        .state
        .get("secret")
        .and_then(Value::as_str)
        .ok_or_else(|| EnrollError::Internal("enrollment without a secret".into()))?;
    let secret = state
        .sealer
        .open(&context(&who.tenant.id, &enrollment.method_id), sealed)
        .map_err(|e| EnrollError::Internal(format!("opening a TOTP secret: {e}")))?;
    Ok(challenge(who, &user.email, &secret))
}

pub(crate) fn finish(
    state: &Core,
    who: &Who<'_>,
    enrollment: &EnrollmentRow,
    code: &str,
) -> Result<Outcome, EnrollError> {
    let sealed = enrollment
        .state
        .get("secret")
        .and_then(Value::as_str)
        .ok_or_else(|| EnrollError::Internal("enrollment without a secret".into()))?;
    let secret = state
        .sealer
        .open(&context(&who.tenant.id, &enrollment.method_id), sealed)
        .map_err(|e| EnrollError::Internal(format!("opening a TOTP secret: {e}")))?;
    let now = state.clock.now();
    let Some(step) = otp::verify(&secret, code, now, None) else {
        return Ok(Outcome::Wrong("The code is not valid.".into()));
    };
    Ok(Outcome::Done(Box::new(Completion::AddMethod {
        row: MethodRow {
            id: enrollment.method_id.clone(),
            user_id: who.user_id.to_string(),
            method_type: FactorType::Totp,
            name: None,
            data: json!({ "secret": sealed }),
            created_at: now,
            last_auth_at: None,
            // The step just used is remembered, so the same code cannot log in.
            last_otp_step: Some(step),
            credential_id: None,
        },
        replace_type: false,
    })))
}

/// What a TOTP method is at login.
pub(crate) const SECOND_FACTOR: SecondFactor = SecondFactor {
    answer: AnswerKind::Otp,
    api: Some(AuthenticatorType::Otp),
    rank: 0,
    enroll_label: Some("authenticatorNamesOTP"),
    label,
};

fn label(m: &MethodRow) -> Label {
    Label::named(m, "authenticatorNamesOTP")
}

/// Answers the challenge with a TOTP code (of a TOTP or a push method). On success the token is consumed
/// and the code's time step can never be used again.
pub(crate) async fn verify_otp(
    state: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
    code: &str,
) -> Result<(String, Pending), MfaError> {
    let token = answer.token;
    let (row, pending) = guessing(state, tenant, answer).await?;
    let methods = state.store.methods(&tenant.id, &row.user_id).await?;
    // A push method's app shows codes from its own TOTP secret, sealed
    // under the same context (Guardian apps do).
    let totps: Vec<&MethodRow> = methods
        .iter()
        .filter(|m| {
            matches!(
                m.method_type,
                FactorType::Totp | FactorType::PushNotification
            )
        })
        .collect();
    if totps.is_empty() {
        return Err(MfaError::NoAuthenticator("otp"));
    }
    let now = state.clock.now();
    for m in totps {
        let key = if m.method_type == FactorType::PushNotification {
            "totp_secret"
        } else {
            "secret"
        };
        let Some(sealed) = m.data.get(key).and_then(Value::as_str) else {
            continue;
        };
        let secret = state
            .sealer
            .open(&context(&tenant.id, &m.id), sealed)
            .map_err(|e| MfaError::Internal(format!("opening a TOTP secret: {e}")))?;
        let Some(step) = otp::verify(&secret, code.trim(), now, m.last_otp_step) else {
            continue;
        };
        // The step first (a replayed code loses here), then the token.
        if state
            .store
            .consume_otp_step(&tenant.id, &row.user_id, &m.id, step, now)
            .await?
            && state
                .store
                .complete_enrollment(&tenant.id, &secret_digest(token), &Completion::Consume, now)
                .await?
        {
            return Ok((row.user_id, pending));
        }
        return Err(MfaError::BadToken);
    }
    Err(wrong_guess(state, tenant, answer, &row, "otp").await)
}
