//! Recovery codes: 24 upper-case letters shown once, stored as a digest. A
//! new recovery code replaces the user's previous one when confirmed.

use serde_json::{Value, json};

use super::{AnswerKind, AuthenticatorType, Label, SecondFactor};
use crate::context::Core;
use crate::crypto::hash::constant_time_eq;
use crate::crypto::hash::secret_digest;
use crate::rng::RngExt;
use crate::services::enrollment::{Challenge, EnrollError, Outcome, Who, new_method_id};
use crate::services::mfa::{Answer, MfaError, Pending, guessing, wrong_guess};
use crate::store::{Completion, EnrollmentRow, MethodRow};
use crate::tenant::FactorType;
use crate::tenant::Tenant;

pub(crate) const LENGTH: usize = 24;

/// 24 letters from A–Z: about 113 bits, without modulo bias.
pub(crate) fn new_code(state: &Core) -> String {
    let mut out = String::with_capacity(LENGTH);
    while out.len() < LENGTH {
        let mut b = [0u8; 32];
        state.rng.fill(&mut b);
        for x in b {
            // 234 = 26 * 9: reject the tail to keep letters uniform.
            if x < 234 && out.len() < LENGTH {
                out.push((b'A' + x % 26) as char);
            }
        }
    }
    out
}

/// The stored form of a code as a user may type it (any case, spaces or
/// dashes between groups).
pub(crate) fn code_digest(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    secret_digest(&normal)
}

pub(crate) fn start(state: &Core, _who: &Who<'_>) -> (String, Value, Challenge) {
    let code = new_code(state);
    (
        new_method_id(state, FactorType::RecoveryCode),
        json!({ "code_digest": code_digest(&code) }),
        Challenge::RecoveryCode {
            recovery_code: code,
        },
    )
}

pub(crate) fn finish(
    state: &Core,
    who: &Who<'_>,
    enrollment: &EnrollmentRow,
) -> Result<Outcome, EnrollError> {
    let digest = enrollment
        .state
        .get("code_digest")
        .and_then(Value::as_str)
        .ok_or_else(|| EnrollError::Internal("enrollment without a code".into()))?;
    Ok(Outcome::Done(Box::new(Completion::AddMethod {
        row: MethodRow {
            id: enrollment.method_id.clone(),
            user_id: who.user_id.to_string(),
            method_type: FactorType::RecoveryCode,
            name: None,
            data: json!({ "code_digest": digest }),
            created_at: state.clock.now(),
            last_auth_at: None,
            last_otp_step: None,
            credential_id: None,
        },
        replace_type: true,
    })))
}

/// What a recovery code is at login: the last resort, offered last.
pub(crate) const SECOND_FACTOR: SecondFactor = SecondFactor {
    answer: AnswerKind::RecoveryCode,
    api: Some(AuthenticatorType::RecoveryCode),
    rank: 4,
    // It comes with the first factor, never enrolled alone at login.
    enroll_label: None,
    label,
};

fn label(m: &MethodRow) -> Label {
    Label {
        name: None,
        ..Label::named(m, "authenticatorNamesRecoveryCode")
    }
}

/// Answers the challenge with the user's recovery code. On success the code
/// is replaced by a new one (returned, to be shown once) in the same
/// transaction that consumes the token.
pub(crate) async fn verify_recovery_code(
    state: &Core,
    tenant: &Tenant,
    answer: &Answer<'_>,
    code: &str,
) -> Result<(String, Pending, String), MfaError> {
    let token = answer.token;
    let (row, pending) = guessing(state, tenant, answer).await?;
    let methods = state.store.methods(&tenant.id, &row.user_id).await?;
    let Some(current) = methods
        .iter()
        .find(|m| m.method_type == FactorType::RecoveryCode)
    else {
        return Err(MfaError::NoAuthenticator("recovery-code"));
    };
    let stored = current
        .data
        .get("code_digest")
        .and_then(Value::as_str)
        .unwrap_or("");
    let given = code_digest(code);
    if stored.is_empty() || !constant_time_eq(stored.as_bytes(), given.as_bytes()) {
        return Err(wrong_guess(state, tenant, answer, &row, "recovery-code").await);
    }
    let (fresh, digest) = crate::services::enrollment::new_recovery_code(state);
    let now = state.clock.now();
    let replacement = MethodRow {
        id: format!("recovery-code|dev_{}", state.rng.alnum(16)),
        user_id: row.user_id.clone(),
        method_type: FactorType::RecoveryCode,
        name: None,
        data: json!({ "code_digest": digest }),
        created_at: now,
        last_auth_at: None,
        last_otp_step: None,
        credential_id: None,
    };
    let done = state
        .store
        .complete_enrollment(
            &tenant.id,
            &secret_digest(token),
            &Completion::AddMethod {
                row: replacement,
                replace_type: true,
            },
            now,
        )
        .await?;
    if !done {
        return Err(MfaError::BadToken);
    }
    Ok((row.user_id, pending, fresh))
}
