//! Password authentication with Auth0-style brute-force protection: after
//! `max_attempts` consecutive failures from one IP, that user is blocked from
//! that IP until `block_minutes` pass or the password is reset. In front of
//! it, Suspicious IP Throttling: failed attempts (passwords, client secrets)
//! per IP and per tenant, whoever they were for; see [`attempt`].

use super::{email_address, username};
use crate::context::Core;
use crate::crypto::hashing::HashingError;
use crate::services::audit::{self, Actor, Entry, codes};
use crate::services::ratelimit::Decision;
use crate::store::{StoreError, UserRow};
use crate::tenant::{Client, Tenant};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// A wrong password (the user's id) or an unknown user (none): told
    /// apart in the tenant log only, never in an answer.
    #[error("Wrong email or password.")]
    WrongCredentials(Option<String>),
    /// Brute-force protection: this user (the id) is blocked from this IP.
    #[error("Your account has been blocked after multiple consecutive login attempts.")]
    TooManyAttempts(String),
    /// The right password of a blocked user (the id).
    #[error("user is blocked")]
    Blocked(String),
    /// The right password of a user whose email is not verified, in a
    /// connection that requires it (the id).
    #[error("Please verify your email before logging in.")]
    EmailNotVerified(String),
    #[error("unknown connection: {0}")]
    UnknownConnection(String),
    /// Too many failed attempts from this IP (or on this tenant): retry
    /// after that many seconds.
    #[error("too many failed attempts")]
    Throttled(i64),
    /// The hashing queue is full: retry shortly.
    #[error("the password hashing queue is full")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One credential attempt, taken from the tenant's throttling buckets
/// before any work is done for it (so a flood is turned away before it
/// costs a hash). It counts as a failure unless it is [`Attempt::passed`],
/// or [`Attempt::not_made`] when nothing was checked after all.
#[must_use]
pub struct Attempt<'a> {
    state: &'a Core,
    /// The buckets taken from, with their rates.
    taken: Vec<(String, u64)>,
}

impl Attempt<'_> {
    /// The credential was right: the attempt does not count.
    pub fn passed(self) {
        self.give_back();
    }

    /// Nothing was verified (the hashing queue was full, the store failed):
    /// the attempt does not count.
    pub fn not_made(self) {
        self.give_back();
    }

    /// The credential was wrong: the attempt stays counted.
    pub fn failed(self) {}

    fn give_back(self) {
        for (key, rate) in &self.taken {
            self.state.limiter.give_back(key, *rate);
        }
    }
}

/// Takes an attempt for a credential presented from `ip`: refused with the
/// seconds to wait when the IP's bucket (`pre-login`) or the tenant's
/// (`pre-login-tenant`) is empty.
pub fn attempt<'a>(state: &'a Core, tenant: &Tenant, ip: &str) -> Result<Attempt<'a>, i64> {
    let throttling = &tenant.config.tenant.suspicious_ip_throttling;
    let mut attempt = Attempt {
        state,
        taken: Vec::new(),
    };
    if !throttling.enabled {
        return Ok(attempt);
    }
    let stages = &throttling.stage;
    for (key, stage) in [
        (format!("pre-login:{}:{ip}", tenant.id), stages.pre_login),
        (
            format!("pre-login-tenant:{}", tenant.id),
            stages.pre_login_tenant,
        ),
    ] {
        let rate = u64::from(stage.rate);
        let d: Decision = state.limiter.take(&key, stage.max_attempts, rate);
        if !d.allowed {
            tracing::warn!(tenant = %tenant.name, %ip, bucket = %key, "suspicious IP throttling");
            // What was taken already is given back: this attempt was never made.
            attempt.not_made();
            return Err(d.retry_after(state.clock.now()));
        }
        attempt.taken.push((key, rate));
    }
    Ok(attempt)
}

/// Longest password we hash: refusing more bounds Argon2's work per request.
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;

pub struct PasswordLogin<'a> {
    pub tenant: &'a Tenant,
    /// A database connection name; the tenant's default when absent.
    pub realm: Option<&'a str>,
    pub username: &'a str,
    pub password: &'a str,
    pub ip: &'a str,
}

pub async fn authenticate(state: &Core, req: PasswordLogin<'_>) -> Result<UserRow, LoginError> {
    let attempt = attempt(state, req.tenant, req.ip).map_err(LoginError::Throttled)?;
    let outcome = check_password(state, &req).await;
    match &outcome {
        Ok(_) => attempt.passed(),
        Err(LoginError::Busy | LoginError::Store(_) | LoginError::UnknownConnection(_)) => {
            attempt.not_made();
        }
        Err(_) => attempt.failed(),
    }
    outcome
}

/// The password check itself, with brute-force protection per user and IP.
async fn check_password(state: &Core, req: &PasswordLogin<'_>) -> Result<UserRow, LoginError> {
    let connection = match req.realm {
        Some(r) => req
            .tenant
            .database_connection(r)
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
    // A connection with usernames takes either name: the email first, then
    // the username (compared without regard to case).
    let user = match user {
        None if connection.requires_username
            && req.password.len() <= MAX_PASSWORD_BYTES
            && username::is_valid(req.username) =>
        {
            state
                .store
                .user_by_username(tenant_id, &connection.name, req.username)
                .await?
        }
        found => found,
    };
    let Some(user) = user else {
        // Same work as for a real user, so timing does not reveal who exists.
        verify(state, req.password, &state.dummy_hash).await?;
        return Err(LoginError::WrongCredentials(None));
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
            return Err(LoginError::TooManyAttempts(user.user_id));
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
        Some(h) => verify(state, req.password, h).await?,
        None => {
            // No password (a passkey-only user): the same work again, so
            // timing does not tell such users apart.
            verify(state, req.password, &state.dummy_hash).await?;
            false
        }
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
        return Err(LoginError::WrongCredentials(Some(user.user_id.clone())));
    }
    if user.blocked {
        return Err(LoginError::Blocked(user.user_id));
    }
    if connection.require_email_verification && !user.email_verified {
        return Err(LoginError::EmailNotVerified(user.user_id));
    }
    // A success resets the count; with nothing counted there is nothing to
    // write, so an ordinary login writes nothing here.
    if counted > 0 {
        state
            .store
            .clear_login_failures(tenant_id, &user.user_id, Some(req.ip))
            .await?;
    }
    let mut user = user;
    upgrade_hash(state, tenant_id, &mut user, req.password).await;
    Ok(user)
}

/// A hash the user's password was imported with (bcrypt, PBKDF2, another
/// Argon2) is replaced by Argon2id at the first login that verifies it, the
/// password being known then. Only over that very hash: a password changed
/// meanwhile stays. A full hashing queue or a store that fails leaves the
/// old hash for the next login; the login itself goes on.
async fn upgrade_hash(state: &Core, tenant_id: &str, user: &mut UserRow, password: &str) {
    let Some(old) = user
        .password_hash
        .clone()
        .filter(|h| state.passwords.needs_rehash(h))
    else {
        return;
    };
    let Some(new) = state.rehash_password(password).await else {
        return;
    };
    match state
        .store
        .rehash_password(tenant_id, &user.user_id, &old, &new)
        .await
    {
        Ok(true) => {
            tracing::info!(user = %user.user_id, "an imported password hash is now Argon2id");
            user.password_hash = Some(new);
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(user = %user.user_id, error = %e, "password hash not upgraded"),
    }
}

/// A password against a hash on the hashing threads.
async fn verify(state: &Core, password: &str, hash: &str) -> Result<bool, LoginError> {
    match state.verify_password(password, hash).await {
        Ok(ok) => Ok(ok),
        Err(HashingError::Busy) => Err(LoginError::Busy),
        // Without hashing threads nothing verifies; say so in the logs.
        Err(HashingError::Gone) => {
            tracing::error!("the hashing threads are gone: no password can be verified");
            Ok(false)
        }
    }
}

/// Where a login was asked from, for the tenant log.
pub struct Origin<'a> {
    pub client: &'a Client,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

/// The log entry of a login through the connection `realm` (the default
/// database connection when none): its client and connection.
fn entry<'a>(tenant: &'a Tenant, from: &'a Origin<'_>, realm: Option<&str>) -> Entry<'a> {
    let connection = match realm {
        Some(r) => tenant.connection(r),
        None => tenant.default_connection(),
    };
    Entry {
        client_name: Some(&from.client.name),
        connection: connection.map(|c| c.name.as_str()),
        ..Entry::default()
    }
}

/// Who the tenant log names for an event of a request from `from`: its
/// client, the end user's IP and user agent, and `user_id` (empty when none).
pub(crate) fn actor<'a>(tenant: &'a Tenant, from: &'a Origin<'_>, user_id: &'a str) -> Actor<'a> {
    Actor {
        tenant_id: &tenant.id,
        client_id: &from.client.client_id,
        user_id,
        ip: from.ip,
        user_agent: from.user_agent,
    }
}

/// A refused password in the tenant log: `fp` (a user's wrong password),
/// `fu` (nobody by that name), `f` (a blocked user, an unverified email
/// where the connection requires a verified one), `limit_wc` (the
/// account blocked from this IP), `limit_mu` (the IP throttled). A
/// request that checked nothing (the hashing queue full, the store down,
/// an unknown realm) logs nothing.
pub async fn log_refused(
    core: &Core,
    tenant: &Tenant,
    from: &Origin<'_>,
    realm: Option<&str>,
    username: &str,
    e: &LoginError,
) {
    let (code, user_id) = match e {
        LoginError::WrongCredentials(Some(id)) => (codes::WRONG_PASSWORD, Some(id.as_str())),
        LoginError::WrongCredentials(None) => (codes::UNKNOWN_USER, None),
        LoginError::Blocked(id) | LoginError::EmailNotVerified(id) => {
            (codes::FAILED_LOGIN, Some(id.as_str()))
        }
        LoginError::TooManyAttempts(id) => (codes::BLOCKED_ACCOUNT, Some(id.as_str())),
        LoginError::Throttled(_) => (codes::BLOCKED_IP, None),
        LoginError::Busy | LoginError::UnknownConnection(_) | LoginError::Store(_) => return,
    };
    let entry = Entry {
        user_id,
        user_name: Some(username),
        error: Some(e.to_string()),
        ..entry(tenant, from, realm)
    };
    audit::record_login(
        core,
        &actor(tenant, from, user_id.unwrap_or_default()),
        code,
        entry,
    )
    .await;
}

/// A login that completed, `s` in the tenant log: `user` signed in
/// through `connection` (a name; the default database connection when none).
pub async fn log_signed_in(
    core: &Core,
    tenant: &Tenant,
    from: &Origin<'_>,
    connection: Option<&str>,
    user: &UserRow,
) {
    let entry = Entry {
        user_id: Some(&user.user_id),
        user_name: Some(&user.email),
        ..entry(tenant, from, connection)
    };
    audit::record_login(
        core,
        &actor(tenant, from, &user.user_id),
        codes::SUCCESS_LOGIN,
        entry,
    )
    .await;
}
