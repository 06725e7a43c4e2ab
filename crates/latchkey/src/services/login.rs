//! Password authentication with Auth0-style brute-force protection: after
//! `max_attempts` consecutive failures from one IP, that user is blocked from
//! that IP until `block_minutes` pass or the password is reset.

use super::email_address;
use crate::app::AppState;
use crate::store::{StoreError, UserRow};
use crate::tenant::Tenant;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("Wrong email or password.")]
    WrongCredentials,
    #[error("Your account has been blocked after multiple consecutive login attempts.")]
    TooManyAttempts,
    #[error("user is blocked")]
    Blocked,
    #[error("unknown connection: {0}")]
    UnknownConnection(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Longest password we hash: refusing more bounds Argon2's work per request.
pub const MAX_PASSWORD_BYTES: usize = 1024;

pub struct PasswordLogin<'a> {
    pub tenant: &'a Tenant,
    /// A database connection name; the tenant's default when absent.
    pub realm: Option<&'a str>,
    pub username: &'a str,
    pub password: &'a str,
    pub ip: &'a str,
}

pub async fn authenticate(state: &AppState, req: PasswordLogin<'_>) -> Result<UserRow, LoginError> {
    let connection = match req.realm {
        Some(r) => req
            .tenant
            .connection(r)
            .ok_or_else(|| LoginError::UnknownConnection(r.to_string()))?,
        None => req
            .tenant
            .default_connection()
            .ok_or_else(|| LoginError::UnknownConnection(String::new()))?,
    };
    let tenant_id = &req.tenant.id;
    let bf = &req.tenant.config.tenant.brute_force_protection;
    // The username is an email, in its normal form as every account's is;
    // one that cannot be an address (control characters among them, which
    // PostgreSQL text cannot hold) names nobody.
    let email = email_address::normalize(req.username).ok();
    let user = match email {
        Some(email) if req.password.len() <= MAX_PASSWORD_BYTES => {
            state
                .store
                .user_by_email(tenant_id, &connection.name, &email)
                .await?
        }
        _ => None,
    };
    let Some(user) = user else {
        // Same work as for a real user, so timing does not reveal who exists.
        let _ = state.verify_password(req.password, &state.dummy_hash).await;
        return Err(LoginError::WrongCredentials);
    };
    let now = state.clock.now();
    // Failures counted so far from this IP (none when protection is off).
    let mut counted = 0;
    if bf.enabled {
        let (failures, blocked_until) = state
            .store
            .login_failures(tenant_id, &user.user_id, req.ip)
            .await?;
        if blocked_until.is_some_and(|b| b > now) {
            return Err(LoginError::TooManyAttempts);
        }
        counted = failures;
        if blocked_until.is_some() {
            // The block expired: start counting afresh.
            state
                .store
                .clear_login_failures(tenant_id, &user.user_id, Some(req.ip))
                .await?;
            counted = 0;
        }
    }
    let ok = match user.password_hash.as_deref() {
        Some(h) => state.verify_password(req.password, h).await,
        None => false,
    };
    if !ok {
        if bf.enabled {
            state
                .store
                .record_login_failure(
                    tenant_id,
                    &user.user_id,
                    req.ip,
                    now,
                    i64::from(bf.max_attempts),
                    now + 60 * i64::from(bf.block_minutes),
                )
                .await?;
        }
        return Err(LoginError::WrongCredentials);
    }
    if user.blocked {
        return Err(LoginError::Blocked);
    }
    // A success resets the count; with nothing counted there is nothing to
    // write, so an ordinary login writes nothing here.
    if counted > 0 {
        state
            .store
            .clear_login_failures(tenant_id, &user.user_id, Some(req.ip))
            .await?;
    }
    Ok(user)
}
