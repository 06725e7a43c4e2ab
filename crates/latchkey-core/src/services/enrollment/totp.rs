//! TOTP: a 160-bit secret shown once as an `otpauth://` URI and as text,
//! sealed at rest; verified with the current code ±1 step, and a code is
//! never accepted twice.

use serde_json::{Value, json};

use super::{Challenge, EnrollError, Outcome, Who, new_method_id};
use crate::context::Core;
use crate::crypto::otp;
use crate::rng::RngExt;
use crate::store::{Completion, EnrollmentRow, MethodRow};
use crate::tenant::FactorType;

pub(super) fn context(tenant_id: &str, method_id: &str) -> String {
    format!("totp:{tenant_id}:{method_id}")
}

/// Percent-encodes all but RFC 3986 unreserved characters.
fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

pub(super) async fn start(
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
    let manual = otp::base32(&secret);
    let issuer = who
        .tenant
        .config
        .tenant
        .friendly_name
        .clone()
        .unwrap_or_else(|| who.tenant.name.clone());
    let barcode_uri = format!(
        "otpauth://totp/{}:{}?secret={manual}&issuer={}&algorithm=SHA1&digits={}&period={}",
        enc(&issuer),
        enc(&user.email),
        enc(&issuer),
        otp::DIGITS,
        otp::PERIOD
    );
    let sealed = state
        .sealer
        .seal(&*state.rng, &context(&who.tenant.id, &method_id), &secret);
    Ok((
        method_id,
        json!({ "secret": sealed }),
        Challenge::Totp {
            barcode_uri,
            manual_input_code: manual,
        },
    ))
}

pub(super) fn finish(
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
