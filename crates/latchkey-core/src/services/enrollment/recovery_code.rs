//! Recovery codes: 24 upper-case letters shown once, stored as a digest. A
//! new recovery code replaces the user's previous one when confirmed.

use serde_json::{Value, json};

use super::{Challenge, EnrollError, Outcome, Who, new_method_id};
use crate::context::Core;
use crate::crypto::hash::secret_digest;
use crate::store::{Completion, EnrollmentRow, MethodRow};
use crate::tenant::FactorType;

pub const LENGTH: usize = 24;

/// 24 letters from A–Z: about 113 bits, without modulo bias.
pub(super) fn new_code(state: &Core) -> String {
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
pub fn code_digest(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    secret_digest(&normal)
}

pub(super) fn start(state: &Core, _who: &Who<'_>) -> (String, Value, Challenge) {
    let code = new_code(state);
    (
        new_method_id(state, FactorType::RecoveryCode),
        json!({ "code_digest": code_digest(&code) }),
        Challenge::RecoveryCode {
            recovery_code: code,
        },
    )
}

pub(super) fn finish(
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
