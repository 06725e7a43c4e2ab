//! Email: a six-digit code sent to the address; the address becomes a
//! method once the code comes back.

use serde_json::{Value, json};

use super::codes::{code_digest, code_matches, new_code, throttle};
use super::{AnswerKind, AuthenticatorType, Label, SecondFactor, masked_at};
use crate::context::Core;
use crate::services::delivery::{CodeChannel, Purpose, send_code};
use crate::services::enrollment::{EnrollError, Outcome, Who, new_method_id};
use crate::store::{Completion, EnrollmentRow, MethodRow};
use crate::tenant::FactorType;

/// A plausible address: one `@`, a dotted domain, no spaces or controls.
pub(crate) fn valid_address(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

pub(crate) async fn start(
    state: &Core,
    who: &Who<'_>,
    email: &str,
    auth_session: &str,
) -> Result<(String, Value), EnrollError> {
    // The address in its normal form, as accounts' addresses are.
    let normal = crate::services::email_address::normalize(email).unwrap_or_default();
    let email = normal.as_str();
    if !valid_address(email) {
        return Err(EnrollError::Field {
            pointer: "/email",
            detail: "is not an email address".into(),
        });
    }
    if who.tenant.config.email_provider.is_none() {
        return Err(EnrollError::Invalid(
            "No email provider is configured on this tenant.".into(),
        ));
    }
    throttle(state, &who.tenant.id, who.user_id, email)?;
    let code = new_code(state);
    send_code(
        state,
        who.tenant,
        who.languages,
        CodeChannel::Email,
        email,
        &code,
        Purpose::Enroll,
    )
    .await
    .map_err(|e| EnrollError::Delivery(e.to_string()))?;
    Ok((
        new_method_id(state, FactorType::Email),
        json!({ "email": email, "code_digest": code_digest(auth_session, &code) }),
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
    let email = enrollment
        .state
        .get("email")
        .cloned()
        .unwrap_or(Value::Null);
    Ok(Outcome::Done(Box::new(Completion::AddMethod {
        row: MethodRow {
            id: enrollment.method_id.clone(),
            user_id: who.user_id.to_string(),
            method_type: FactorType::Email,
            name: None,
            data: json!({ "email": email }),
            created_at: state.clock.now(),
            last_auth_at: None,
            last_otp_step: None,
            credential_id: None,
        },
        replace_type: false,
    })))
}

/// What an email method is at login: codes sent to it (see `codes`).
pub(crate) const SECOND_FACTOR: SecondFactor = SecondFactor {
    answer: AnswerKind::Oob,
    api: Some(AuthenticatorType::Oob),
    rank: 3,
    enroll_label: Some("authenticatorNamesEmail"),
    label,
};

fn label(m: &MethodRow) -> Label {
    Label {
        name: None,
        key: "authenticatorNamesEmail",
        destination: masked_at(m, "email"),
    }
}
