//! One-time codes sent by email, SMS or voice: six random digits, stored
//! only as a digest keyed by the enrollment's secret `auth_session` (so the
//! digest cannot be brute-forced without it), compared in constant time;
//! sending is throttled per destination and per user.

use super::EnrollError;
use crate::context::Core;
use crate::crypto::hash::{constant_time_eq, secret_digest, sha256_b64url};

/// Codes one destination may be sent per window, and the window.
const PER_DESTINATION: (u32, i64) = (3, 300);
/// Codes one user may have sent per window, and the window.
const PER_USER: (u32, i64) = (10, 3600);

pub(super) fn new_code(state: &Core) -> String {
    loop {
        let mut b = [0u8; 4];
        state.rng.fill(&mut b);
        let n = u32::from_be_bytes(b);
        // 4_000_000_000 is a multiple of 10^6: no modulo bias.
        if n < 4_000_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

pub(super) fn code_digest(auth_session: &str, code: &str) -> String {
    secret_digest(&format!("{auth_session}\0{code}"))
}

pub(super) fn code_matches(stored: &str, auth_session: &str, code: &str) -> bool {
    constant_time_eq(
        stored.as_bytes(),
        code_digest(auth_session, code.trim()).as_bytes(),
    )
}

/// Counts a send to `destination` for `user_id`; refuses past the limits.
pub(super) fn throttle(
    state: &Core,
    tenant_id: &str,
    user_id: &str,
    destination: &str,
) -> Result<(), EnrollError> {
    let now = state.clock.now();
    let dest = state.limiter.hit(
        &format!(
            "otp:to:{tenant_id}:{}",
            sha256_b64url(destination.to_lowercase().as_bytes())
        ),
        PER_DESTINATION.0,
        PER_DESTINATION.1,
    );
    if !dest.allowed {
        return Err(EnrollError::Throttled(dest.retry_after(now)));
    }
    let user = state.limiter.hit(
        &format!("otp:user:{tenant_id}:{user_id}"),
        PER_USER.0,
        PER_USER.1,
    );
    if !user.allowed {
        return Err(EnrollError::Throttled(user.retry_after(now)));
    }
    Ok(())
}
