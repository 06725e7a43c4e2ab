//! Phone: a six-digit code by SMS or voice call to the number (E.164); the
//! number becomes a method once the code comes back.

use serde_json::{Value, json};

use super::codes::{code_digest, code_matches, new_code, throttle};
use super::{AnswerKind, AuthenticatorType, Channel, Label, SecondFactor, masked_at};
use crate::context::Core;
use crate::services::delivery::{CodeChannel, Purpose, send_code};
use crate::services::enrollment::{EnrollError, Outcome, Who, new_method_id};
use crate::services::phone::normalise;
use crate::store::{Completion, EnrollmentRow, MethodRow};
use crate::tenant::FactorType;

pub(crate) async fn start(
    state: &Core,
    who: &Who<'_>,
    phone_number: &str,
    preferred: Option<&str>,
    auth_session: &str,
) -> Result<(String, Value), EnrollError> {
    let number = normalise(phone_number).map_err(|detail| EnrollError::Field {
        pointer: "/phone_number",
        detail,
    })?;
    let voice = preferred == Some("voice");
    if who.tenant.config.sms_provider.is_none() {
        return Err(EnrollError::Invalid(
            "No SMS provider is configured on this tenant.".into(),
        ));
    }
    throttle(state, &who.tenant.id, who.user_id, &number)?;
    let code = new_code(state);
    let channel = if voice {
        CodeChannel::Voice
    } else {
        CodeChannel::Sms
    };
    send_code(
        state,
        who.tenant,
        who.languages,
        channel,
        &number,
        &code,
        Purpose::Enroll,
    )
    .await
    .map_err(|e| EnrollError::Delivery(e.to_string()))?;
    Ok((
        new_method_id(state, FactorType::Phone),
        json!({
            "phone_number": number,
            "preferred_authentication_method": if voice { "voice" } else { "sms" },
            "code_digest": code_digest(auth_session, &code),
        }),
    ))
}

pub(crate) fn finish(
    state: &Core,
    who: &Who<'_>,
    enrollment: &EnrollmentRow,
    auth_session: &str,
    code: &str,
) -> Result<Outcome, EnrollError> {
    let stored = enrollment
        .state
        .get("code_digest")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !code_matches(stored, auth_session, code) {
        return Ok(Outcome::Wrong("The code is not valid.".into()));
    }
    let get = |k: &str| enrollment.state.get(k).cloned().unwrap_or(Value::Null);
    Ok(Outcome::Done(Box::new(Completion::AddMethod {
        row: MethodRow {
            id: enrollment.method_id.clone(),
            user_id: who.user_id.to_string(),
            method_type: FactorType::Phone,
            name: None,
            data: json!({
                "phone_number": get("phone_number"),
                "preferred_authentication_method": get("preferred_authentication_method"),
            }),
            created_at: state.clock.now(),
            last_auth_at: None,
            last_otp_step: None,
            credential_id: None,
        },
        replace_type: false,
    })))
}

/// What a phone method is at login: codes sent to it (see `codes`).
pub(crate) const SECOND_FACTOR: SecondFactor = SecondFactor {
    answer: AnswerKind::Oob,
    api: Some(AuthenticatorType::Oob),
    rank: 2,
    enroll_label: Some("authenticatorNamesPhone"),
    label,
};

fn label(m: &MethodRow) -> Label {
    let key = match super::channel(m) {
        Some(Channel::Voice) => "authenticatorNamesVoice",
        Some(Channel::Sms | Channel::Email) | None => "authenticatorNamesSMS",
    };
    Label {
        name: None,
        key,
        destination: masked_at(m, "phone_number"),
    }
}
