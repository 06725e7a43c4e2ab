//! Persistence ports. Each trait is the narrow view one service needs; a
//! backend implements all of them and is used as `Arc<dyn Store>`.
//!
//! Every value that is a bearer secret arrives here already digested
//! (`*_digest`) or sealed (`sealed_*`): the store never sees one in clear.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::tenant::FactorType;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database failed in a way that is not expected to heal by itself
    /// (a bug, bad data); the cause is for the logs.
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database cannot take the request now (away, busy or locked, a
    /// full disk, its writer stayed busy, a batch did not commit): answered
    /// 503, to be tried again. The store decides (`errors.rs`).
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the database cannot take the request now (503 with
    /// `retry-after`, expected to heal by itself), rather than a bug.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone)]
pub struct TenantRow {
    pub id: String,
    pub name: String,
    /// The tenant file (less its users), as JSON.
    pub config: String,
    pub revision: i64,
}

#[derive(Debug, Clone)]
pub struct SigningKeyRow {
    pub kid: String,
    pub sealed_private: String,
    pub public_jwk: String,
    pub created_at: Timestamp,
    pub superseded_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub user_id: String,
    pub connection: String,
    pub email: String,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    /// name, given_name, … and metadata, as a JSON object.
    pub profile: serde_json::Value,
    pub blocked: bool,
    pub last_password_reset: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The user created the account themselves (a sign-up): until the
    /// email is verified, it is only their word.
    pub signed_up: bool,
    /// A MAC of the password or hash a tenant file last applied to the user
    /// (`tenant::apply`), so that the same file leaves a changed password alone.
    pub seeded_password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRow {
    pub user_id: String,
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct RefreshTokenRow {
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub audience: Option<String>,
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub idle_expires_at: Timestamp,
    pub rotated_at: Option<Timestamp>,
    /// The JWK thumbprint of the DPoP key a public client's token is bound
    /// to: refreshing needs a proof from that key.
    pub dpop_jkt: Option<String>,
    /// The host (lowercased, with its port) the token was minted on: it
    /// refreshes there only. `None` for tokens minted before tokens knew
    /// their host: the tenant's canonical host.
    pub host: Option<String>,
}

/// Outcome of redeeming a single-use secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeem<T> {
    /// First use: the caller owns it now.
    Fresh(T),
    /// Known, but already used: a replay. Carries the grant it belonged to.
    Replayed { grant_id: String },
    /// Unknown or expired.
    Missing,
}

impl<T> Redeem<T> {
    /// The same outcome, with what a fresh one carries changed by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Redeem<U> {
        match self {
            Redeem::Fresh(t) => Redeem::Fresh(f(t)),
            Redeem::Replayed { grant_id } => Redeem::Replayed { grant_id },
            Redeem::Missing => Redeem::Missing,
        }
    }
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn tenant_by_domain(&self, domain: &str) -> StoreResult<Option<TenantRow>>;
    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRow>>;
    async fn list_tenants(&self) -> StoreResult<Vec<TenantRow>>;
    /// Creates or replaces the tenant named `name` with its domains; bumps the
    /// revision only when something changed. Returns the tenant ID.
    async fn upsert_tenant(
        &self,
        name: &str,
        new_id: &str,
        config: &str,
        domains: &[String],
        now: Timestamp,
    ) -> StoreResult<String>;
    /// Replaces the configuration of the tenant `name` (and its domains,
    /// when given) if its revision still is `revision`, what the caller read:
    /// the compare-and-set of a read-modify-write (a Management API change,
    /// a tenant file merged with what the API made). The revision is bumped
    /// when the configuration changed. False when another change came first
    /// (read again and redo) or the tenant is gone; `Conflict` when a domain
    /// belongs to another tenant.
    async fn replace_tenant_config(
        &self,
        name: &str,
        revision: i64,
        config: &str,
        domains: Option<&[String]>,
        now: Timestamp,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn signing_keys(&self, tenant_id: &str) -> StoreResult<Vec<SigningKeyRow>>;
    /// Adds `key` as the newest key and marks the previous current key superseded.
    async fn add_signing_key(&self, tenant_id: &str, key: &SigningKeyRow) -> StoreResult<()>;
    async fn delete_signing_key(&self, tenant_id: &str, kid: &str) -> StoreResult<()>;
    async fn meta_get(&self, key: &str) -> StoreResult<Option<String>>;
    /// Sets `key` only when it is absent; returns the value now stored.
    async fn meta_init(&self, key: &str, value: &str) -> StoreResult<String>;
    /// Whether a write could be made now (readiness): goes the way a write
    /// goes, takes the database's write lock and changes a row in a
    /// transaction it rolls back. Writes nothing.
    async fn probe_write(&self) -> StoreResult<()>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn user_by_id(&self, tenant_id: &str, user_id: &str) -> StoreResult<Option<UserRow>>;
    /// The user of `connection` whose email is `email`, an address in its
    /// normal form (`services::email_address::normalize`), compared by its
    /// lowercase as it is kept in `users.email_lower`.
    async fn user_by_email(
        &self,
        tenant_id: &str,
        connection: &str,
        email: &str,
    ) -> StoreResult<Option<UserRow>>;
    /// The user of `connection` whose username (`profile.username`) is
    /// `username`, compared by its lowercase as it is kept in
    /// `users.username_lower`.
    async fn user_by_username(
        &self,
        tenant_id: &str,
        connection: &str,
        username: &str,
    ) -> StoreResult<Option<UserRow>>;
    /// Inserts or updates by (tenant, user_id); fails with Conflict when the
    /// email, or the username without regard to case, belongs to another
    /// user of that connection.
    async fn upsert_user(&self, tenant_id: &str, user: &UserRow) -> StoreResult<()>;
    async fn count_users(&self, tenant_id: &str) -> StoreResult<i64>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(
        &self,
        tenant_id: &str,
        id_digest: &str,
        session: &SessionRow,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// A live session: unrevoked, unexpired, and used within `idle_seconds`.
    /// Using it counts as activity.
    async fn session(
        &self,
        tenant_id: &str,
        id_digest: &str,
        now: Timestamp,
        idle_seconds: i64,
    ) -> StoreResult<Option<SessionRow>>;
    async fn revoke_session(
        &self,
        tenant_id: &str,
        id_digest: &str,
        now: Timestamp,
    ) -> StoreResult<()>;

    async fn create_login_transaction(
        &self,
        tenant_id: &str,
        id_digest: &str,
        request: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    async fn login_transaction(
        &self,
        tenant_id: &str,
        id_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<String>>;
    async fn delete_login_transaction(&self, tenant_id: &str, id_digest: &str) -> StoreResult<()>;
    /// The request of a live login transaction, deleted in the same
    /// statement: `None` once taken (by this call or a concurrent one) or
    /// expired. For what is used once (a pushed authorization request).
    async fn take_login_transaction(
        &self,
        tenant_id: &str,
        id_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<String>>;

    /// Consecutive failed password attempts of one user from one IP (reset by
    /// a success or a new password), and until when they are blocked.
    async fn login_failures(
        &self,
        tenant_id: &str,
        user_id: &str,
        ip: &str,
    ) -> StoreResult<(i64, Option<Timestamp>)>;
    async fn record_login_failure(
        &self,
        tenant_id: &str,
        user_id: &str,
        ip: &str,
        now: Timestamp,
        block_at: i64,
        block_until: Timestamp,
    ) -> StoreResult<()>;
    async fn clear_login_failures(
        &self,
        tenant_id: &str,
        user_id: &str,
        ip: Option<&str>,
    ) -> StoreResult<()>;
    /// The IPs the user is blocked from at `now` by brute-force protection,
    /// with until when, oldest block first.
    async fn user_blocks(
        &self,
        tenant_id: &str,
        user_id: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<(String, Timestamp)>>;
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn create_grant(
        &self,
        tenant_id: &str,
        grant_id: &str,
        client_id: &str,
        user_id: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Revoked grants stay revoked; returns whether the grant is revoked.
    async fn grant_revoked(&self, tenant_id: &str, grant_id: &str) -> StoreResult<bool>;
    async fn revoke_grant(
        &self,
        tenant_id: &str,
        grant_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<()>;

    /// Ends all a user holds: revokes every grant of theirs (their codes,
    /// refresh tokens and access tokens die with them) and ends their login
    /// sessions. Idempotent; run when the user is blocked.
    async fn revoke_user(
        &self,
        tenant_id: &str,
        user_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<()>;

    async fn create_code(
        &self,
        tenant_id: &str,
        code_digest: &str,
        grant_id: &str,
        request: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// Reads a code without using it, as [`GrantStore::redeem_code`] would
    /// find it: (grant_id, request) while unused and unexpired, `Replayed`
    /// once used. The token grant checks it, and does all that can fail,
    /// before it spends the code.
    async fn code(
        &self,
        tenant_id: &str,
        code_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Redeem<(String, String)>>;
    /// Marks the code used, atomically. (grant_id, request) on first use.
    async fn redeem_code(
        &self,
        tenant_id: &str,
        code_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Redeem<(String, String)>>;

    async fn create_refresh_token(
        &self,
        tenant_id: &str,
        token_digest: &str,
        row: &RefreshTokenRow,
    ) -> StoreResult<()>;
    /// Without `next`, only reads the token. With `next` (its successor's
    /// digest and row), rotates it: marks it rotated and stores the
    /// successor in one atomic step, so of two racing requests exactly one
    /// rotates it, and a rotated token always has its successor. A token
    /// rotated at most `leeway` seconds ago still redeems (the reuse interval
    /// for clients racing themselves; with `next`, that successor is stored
    /// too); older rotated tokens are replays, which store nothing.
    async fn redeem_refresh_token(
        &self,
        tenant_id: &str,
        token_digest: &str,
        now: Timestamp,
        next: Option<(&str, &RefreshTokenRow)>,
        leeway: i64,
    ) -> StoreResult<Redeem<RefreshTokenRow>>;
    /// Reads a refresh token as `redeem_refresh_token` without a successor
    /// does, together with its user (`None` when the user is gone), in one
    /// read: what the refresh grant checks before it spends the token.
    async fn refresh_token_and_user(
        &self,
        tenant_id: &str,
        token_digest: &str,
        now: Timestamp,
        leeway: i64,
    ) -> StoreResult<Redeem<(RefreshTokenRow, Option<UserRow>)>>;
    /// Finds a refresh token without using it (for revocation).
    async fn refresh_token_grant(
        &self,
        tenant_id: &str,
        token_digest: &str,
    ) -> StoreResult<Option<(String, String)>>;
}

/// A confirmed authentication method (the password method is not stored
/// here: it is the user's password).
#[derive(Debug, Clone, PartialEq)]
pub struct MethodRow {
    pub id: String,
    pub user_id: String,
    /// Stored as its wire name; a row of a type this server does not know
    /// reads as [`StoreError::Corrupt`].
    pub method_type: FactorType,
    pub name: Option<String>,
    pub data: serde_json::Value,
    pub created_at: Timestamp,
    pub last_auth_at: Option<Timestamp>,
    /// The newest one-time-password step accepted (TOTP).
    pub last_otp_step: Option<i64>,
    /// A WebAuthn credential's ID (base64url), unique in the tenant.
    pub credential_id: Option<String>,
}

/// What counts as a way to log in, as the service that owns the rule says:
/// methods of these types, and the password when `password`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginMethods<'a> {
    pub types: &'a [&'a str],
    pub password: bool,
}

/// What removing a method did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// No such method (or no password).
    Missing,
    /// Refused: it is the user's last way to log in.
    LastLogin,
}

/// A pending enrollment, found by the digest of its `auth_session`.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollmentRow {
    pub user_id: String,
    pub client_id: String,
    pub method_type: String,
    pub method_id: String,
    pub state: serde_json::Value,
    pub attempts: i64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What confirming an enrollment writes, atomically with consuming it.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// A new method; with `replace_type`, the user's other methods of the
    /// same type go (a new recovery code replaces the old one).
    AddMethod { row: MethodRow, replace_type: bool },
    /// A new password hash for the user (kept in the password history).
    SetPassword {
        user_id: String,
        hash: String,
        at: Timestamp,
    },
    /// A new user, with their first method (passkey sign-up). `Conflict`
    /// when the email or the credential is taken.
    SignUp { user: Box<UserRow>, row: MethodRow },
    /// Nothing but consuming the enrollment (a login challenge answered).
    Consume,
}

impl Completion {
    /// The existing user whose methods it changes (a sign-up makes a new
    /// user; consuming changes nobody's).
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Completion::AddMethod { row, .. } => Some(&row.user_id),
            Completion::SetPassword { user_id, .. } => Some(user_id),
            Completion::SignUp { .. } | Completion::Consume => None,
        }
    }
}

/// What [`MethodStore::finish_enrollment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Done,
    /// Already consumed, or expired.
    Gone,
    /// Refused: it would take the user past the most methods allowed.
    Full,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub date: Timestamp,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: serde_json::Value,
}

#[async_trait]
pub trait MethodStore: Send + Sync {
    async fn methods(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<MethodRow>>;
    /// The user and their methods (ordered as [`MethodStore::methods`]) in
    /// one read; None when the user does not exist.
    async fn user_with_methods(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> StoreResult<Option<(UserRow, Vec<MethodRow>)>>;
    /// The method holding a WebAuthn credential, whoever's it is.
    async fn method_by_credential(
        &self,
        tenant_id: &str,
        credential_id: &str,
    ) -> StoreResult<Option<MethodRow>>;
    /// Replaces a method's data (a passkey's counter and backup state after
    /// use, a phone's preferred delivery) if it still is `previous`, the
    /// data the caller read and changed; `last_auth_at` when it was used.
    /// False when the method is gone or its data changed meanwhile: two
    /// logins with one passkey cannot move its counter backwards.
    async fn update_method_data(
        &self,
        tenant_id: &str,
        id: &str,
        previous: &serde_json::Value,
        data: &serde_json::Value,
        last_auth_at: Option<Timestamp>,
    ) -> StoreResult<bool>;
    async fn method(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<MethodRow>>;
    /// A method by its ID alone, whoever's it is (a push device knows its
    /// method's ID, not its user's).
    async fn method_by_id(&self, tenant_id: &str, id: &str) -> StoreResult<Option<MethodRow>>;
    /// Sets the name (None clears it). Returns false when no such method.
    async fn rename_method(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
        name: Option<&str>,
    ) -> StoreResult<bool>;
    /// Deletes a method. With `keep`, only if the user keeps a way to log in
    /// (another method of `keep.types`, or a password when `keep.password`):
    /// checked and deleted in one atomic step, so of two removals racing for
    /// a user's last two ways to log in, one is refused.
    async fn delete_method(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
        keep: Option<LoginMethods<'_>>,
    ) -> StoreResult<Removal>;
    /// Records that one-time-password step `step` of a method was used at
    /// `at`, unless that step or a later one was already used. Of racing
    /// uses of one code, exactly one gets true.
    async fn consume_otp_step(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
        step: i64,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// Removes the user's password; with `keep`, only if the user keeps a
    /// method of `keep.types` (atomically, as [`MethodStore::delete_method`]).
    async fn clear_password(
        &self,
        tenant_id: &str,
        user_id: &str,
        at: Timestamp,
        keep: Option<LoginMethods<'_>>,
    ) -> StoreResult<Removal>;

    async fn create_enrollment(
        &self,
        tenant_id: &str,
        session_digest: &str,
        row: &EnrollmentRow,
    ) -> StoreResult<()> {
        self.create_ticketed_enrollment(tenant_id, session_digest, None, row)
            .await
    }
    /// [`MethodStore::create_enrollment`], the enrollment also found by
    /// `ticket_digest` (a push device's enrollment ticket) until the ticket
    /// is spent.
    async fn create_ticketed_enrollment(
        &self,
        tenant_id: &str,
        session_digest: &str,
        ticket_digest: Option<&str>,
        row: &EnrollmentRow,
    ) -> StoreResult<()>;
    /// The live (unexpired) enrollment whose unspent ticket is
    /// `ticket_digest`, with the digest of its session.
    async fn enrollment_by_ticket(
        &self,
        tenant_id: &str,
        ticket_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(String, EnrollmentRow)>>;
    /// Spends a ticket: replaces the state of its live enrollment by `state`
    /// if the state still is `previous` (what the caller read), and forgets
    /// the ticket, in one step. Of racing spenders, exactly one gets true;
    /// false when the ticket is unknown, spent, or its enrollment expired by
    /// `now` or changed.
    async fn spend_enrollment_ticket(
        &self,
        tenant_id: &str,
        ticket_digest: &str,
        previous: &serde_json::Value,
        state: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// A live enrollment (unexpired).
    async fn enrollment(
        &self,
        tenant_id: &str,
        session_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<EnrollmentRow>>;
    /// Counts a wrong attempt; at `max_attempts` the enrollment is deleted.
    /// Returns the attempts left.
    async fn enrollment_failed(
        &self,
        tenant_id: &str,
        session_digest: &str,
        max_attempts: i64,
    ) -> StoreResult<i64>;
    /// Takes an attempt at a live enrollment before its answer is judged,
    /// so that racing answers cannot share one count: the row as counted
    /// (`attempts` includes this one), or `None` when none is live or it has
    /// no attempt left (`max_attempts` taken).
    async fn take_enrollment_attempt(
        &self,
        tenant_id: &str,
        session_digest: &str,
        max_attempts: i64,
        now: Timestamp,
    ) -> StoreResult<Option<EnrollmentRow>>;
    /// Gives back an attempt taken by a right answer that leaves the
    /// enrollment live (a check that does not spend it), if the enrollment
    /// still holds `state` (what the taker read).
    async fn return_enrollment_attempt(
        &self,
        tenant_id: &str,
        session_digest: &str,
        state: &serde_json::Value,
    ) -> StoreResult<()>;
    /// Deletes the live enrollment if it still holds `state` (what the
    /// caller read; not one that replaced it since). Of racing removers,
    /// exactly one gets true.
    async fn remove_enrollment_if(
        &self,
        tenant_id: &str,
        session_digest: &str,
        state: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// After a wrong answer whose attempt [`Self::take_enrollment_attempt`]
    /// took (`taken`, the row as counted): the attempts left, the
    /// enrollment removed with its last one.
    async fn wrong_answer_taken(
        &self,
        tenant_id: &str,
        session_digest: &str,
        taken: &EnrollmentRow,
        max_attempts: i64,
        now: Timestamp,
    ) -> StoreResult<i64> {
        let left = (max_attempts - taken.attempts).max(0);
        if left == 0 {
            self.remove_enrollment_if(tenant_id, session_digest, &taken.state, now)
                .await?;
        }
        Ok(left)
    }
    /// Forgets an enrollment, live or expired (one a new one replaces).
    async fn discard_enrollment(&self, tenant_id: &str, session_digest: &str) -> StoreResult<()> {
        // At zero attempts allowed, the count deletes the row whatever it holds.
        self.enrollment_failed(tenant_id, session_digest, 0)
            .await
            .map(|_| ())
    }
    /// Consumes the enrollment and writes `completion` in one transaction.
    /// False when the enrollment was already consumed (a replay or a race)
    /// or has expired by `now`; `Conflict` when the credential it adds is
    /// already registered (nothing is consumed then).
    async fn complete_enrollment(
        &self,
        tenant_id: &str,
        session_digest: &str,
        completion: &Completion,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let end = self
            .finish_enrollment(tenant_id, session_digest, completion, now, None)
            .await?;
        Ok(end == Finish::Done)
    }
    /// [`MethodStore::complete_enrollment`], refusing (`Full`: nothing
    /// written, nothing consumed) a completion that would take the user past
    /// `max_methods` methods, their password counted among them. The count
    /// is taken in the same transaction as the write, so two enrollments
    /// completing at once cannot both pass the limit.
    async fn finish_enrollment(
        &self,
        tenant_id: &str,
        session_digest: &str,
        completion: &Completion,
        now: Timestamp,
        max_methods: Option<i64>,
    ) -> StoreResult<Finish>;
    /// The user's previous password hashes, newest first.
    async fn password_history(
        &self,
        tenant_id: &str,
        user_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>>;

    async fn record_audit(&self, tenant_id: &str, event: &AuditEvent) -> StoreResult<()>;
    /// The newest `limit` events, oldest first.
    async fn audit_events(&self, tenant_id: &str, limit: i64) -> StoreResult<Vec<AuditEvent>>;
    /// A page of the tenant's log as `search` asks, and with `count` how many
    /// events the filter finds in all.
    async fn search_audit(
        &self,
        tenant_id: &str,
        search: &AuditSearch<'_>,
    ) -> StoreResult<(Vec<AuditEvent>, Option<i64>)>;
    /// One event of the tenant's log.
    async fn audit_event(&self, tenant_id: &str, id: &str) -> StoreResult<Option<AuditEvent>>;
}

/// A search of a tenant's log (the Management API's `GET /logs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditSearch<'a> {
    /// Events of this type only (`s`, `f`, …).
    pub event_type: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    /// A checkpoint: only the events written after this one, in the order
    /// they were written (which `newest_first` and `offset` do not change);
    /// none when the event is unknown.
    pub after: Option<&'a str>,
    /// By date, newest first (else oldest first).
    pub newest_first: bool,
    pub offset: i64,
    pub limit: i64,
    /// Whether to count every event the filter finds.
    pub count: bool,
}

/// Whether a connected account's provider still honours its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    /// The provider refused its refresh token (the user revoked access
    /// there): kept, so the user sees it, until they connect it again.
    Revoked,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Revoked => "revoked",
        }
    }
}

/// A connected account's tokens at its provider, each sealed under the
/// master key with the account as context (`services::connected_accounts`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealedTokens {
    pub access_token: Option<String>,
    pub access_expires_at: Option<Timestamp>,
    pub refresh_token: Option<String>,
    pub refresh_expires_at: Option<Timestamp>,
    pub id_token: Option<String>,
}

/// An account at an upstream identity provider linked to a user (Token
/// Vault). One a provider account in a tenant: `(connection, subject)` is
/// unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedAccountRow {
    /// `cac_…`
    pub id: String,
    pub user_id: String,
    pub connection: String,
    /// The provider's identifier of the account.
    pub subject: String,
    pub scopes: Vec<String>,
    pub tokens: SealedTokens,
    pub status: AccountStatus,
    /// Counts the writes of the tokens: a refresh is stored only over the
    /// version it started from ([`ConnectedAccountStore::store_refresh`]).
    pub version: i64,
    /// Until when a node holds the right to refresh the tokens
    /// ([`ConnectedAccountStore::claim_refresh`]).
    pub refresh_lock_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Where a connect transaction is, from `POST /connect` to `complete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectStage {
    /// Made; its ticket not used yet.
    Created,
    /// The ticket used: the browser went to the provider with the state.
    Redirected,
    /// The provider called back: the code is being exchanged.
    Exchanging,
    /// Exchanged: the result waits for `complete` with the connect code.
    Returned,
}

impl ConnectStage {
    pub const ALL: [ConnectStage; 4] = [
        ConnectStage::Created,
        ConnectStage::Redirected,
        ConnectStage::Exchanging,
        ConnectStage::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectStage::Created => "created",
            ConnectStage::Redirected => "redirected",
            ConnectStage::Exchanging => "exchanging",
            ConnectStage::Returned => "returned",
        }
    }
}

/// A connect transaction, found by the digest of its `auth_session`; its
/// ticket, the provider's state and the connect code are kept as digests,
/// the PKCE verifier and nonce sent upstream and the exchanged tokens
/// sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRow {
    pub user_id: String,
    pub client_id: String,
    pub connection: String,
    /// The host the transaction was made on: its callback comes there.
    pub host: String,
    pub redirect_uri: String,
    /// The app's `state`, given back with the connect code.
    pub app_state: Option<String>,
    /// The app's PKCE challenge (S256), checked at `complete`.
    pub code_challenge: Option<String>,
    /// The scopes the app asked for.
    pub scopes: Vec<String>,
    /// The app's `authorization_params`, in order.
    pub authorization_params: Vec<(String, String)>,
    pub stage: ConnectStage,
    pub state_digest: Option<String>,
    /// The digest of the cookie that binds the browser.
    pub browser_digest: Option<String>,
    /// The verifier and nonce sent upstream, sealed.
    pub sealed_upstream: Option<String>,
    pub code_digest: Option<String>,
    /// The account and tokens the exchange gave, sealed.
    pub sealed_result: Option<String>,
    pub attempts: i64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What [`ConnectedAccountStore::finish_connect`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishConnect {
    /// The account as stored: new, or the user's same provider account
    /// connected again (its ID kept, its tokens and scopes replaced).
    Done(Box<ConnectedAccountRow>),
    /// The transaction was consumed already, or has expired.
    Gone,
    /// The provider account is another user's: nothing written, the
    /// transaction kept.
    Conflict,
}

/// Where a listing of accounts goes on from: after this account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCursor {
    pub created_at: Timestamp,
    pub id: String,
}

/// The tokens a refresh stored, or the mark that the provider refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshedTokens {
    pub tokens: SealedTokens,
    pub status: AccountStatus,
}

#[async_trait]
pub trait ConnectedAccountStore: Send + Sync {
    async fn create_connect(
        &self,
        tenant_id: &str,
        session_digest: &str,
        ticket_digest: &str,
        row: &ConnectRow,
    ) -> StoreResult<()>;
    /// The transaction of an unused, unexpired ticket, with its session
    /// digest.
    async fn connect_by_ticket(
        &self,
        tenant_id: &str,
        ticket_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(String, ConnectRow)>>;
    /// Uses the ticket: the browser goes upstream with the state whose
    /// digest is `state_digest`. Of racing uses, one gets true.
    #[allow(clippy::too_many_arguments)]
    async fn connect_redirected(
        &self,
        tenant_id: &str,
        session_digest: &str,
        state_digest: &str,
        browser_digest: &str,
        sealed_upstream: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// The transaction waiting for the provider's callback with this
    /// state, with its session digest.
    async fn connect_by_state(
        &self,
        tenant_id: &str,
        state_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(String, ConnectRow)>>;
    /// Claims the callback: of racing callbacks, one gets true and
    /// exchanges the provider's code.
    async fn claim_connect_callback(
        &self,
        tenant_id: &str,
        session_digest: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Stores the exchange's result and the connect code's digest.
    async fn connect_returned(
        &self,
        tenant_id: &str,
        session_digest: &str,
        code_digest: &str,
        sealed_result: &str,
        expires_at: Timestamp,
    ) -> StoreResult<bool>;
    /// A live transaction (unexpired), whatever its stage.
    async fn connect(
        &self,
        tenant_id: &str,
        session_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConnectRow>>;
    /// Counts a wrong `complete`; at `max_attempts` the transaction goes.
    /// Returns the attempts left.
    async fn connect_failed(
        &self,
        tenant_id: &str,
        session_digest: &str,
        max_attempts: i64,
    ) -> StoreResult<i64>;
    async fn delete_connect(&self, tenant_id: &str, session_digest: &str) -> StoreResult<()>;
    /// Consumes the returned transaction whose connect code's digest is
    /// `code_digest` and stores `account` in one transaction: inserted, or,
    /// when the user has that provider account already, its tokens, scopes
    /// and status replaced (ID and creation kept). Another user's provider
    /// account is a `Conflict`, and nothing is written.
    async fn finish_connect(
        &self,
        tenant_id: &str,
        session_digest: &str,
        code_digest: &str,
        account: &ConnectedAccountRow,
        now: Timestamp,
    ) -> StoreResult<FinishConnect>;
    /// The user's accounts, oldest first (then by ID), of `connections`
    /// when it names any, after `after`, at most `limit`.
    async fn connected_accounts(
        &self,
        tenant_id: &str,
        user_id: &str,
        connections: &[String],
        after: Option<&AccountCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ConnectedAccountRow>>;
    async fn connected_account(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<ConnectedAccountRow>>;
    /// The user's account `subject` at `connection` (the Token Vault's
    /// `login_hint`).
    async fn connected_account_by_subject(
        &self,
        tenant_id: &str,
        user_id: &str,
        connection: &str,
        subject: &str,
    ) -> StoreResult<Option<ConnectedAccountRow>>;
    /// Deletes the user's account, with its tokens; what it was.
    async fn delete_connected_account(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<ConnectedAccountRow>>;
    /// Takes the right to refresh the account's tokens until `hold_until`,
    /// if they are still at `version` and nobody holds it (or their hold
    /// has passed): of nodes racing to refresh one account, one gets true;
    /// the others wait for the version to move and use what it stored.
    async fn claim_refresh(
        &self,
        tenant_id: &str,
        id: &str,
        version: i64,
        now: Timestamp,
        hold_until: Timestamp,
    ) -> StoreResult<bool>;
    /// Gives up the hold [`Self::claim_refresh`] took until `hold_until`
    /// over `version`, nothing stored (the provider could not be reached):
    /// false when the tokens moved, or the hold is no longer this one.
    async fn release_refresh(
        &self,
        tenant_id: &str,
        id: &str,
        version: i64,
        hold_until: Timestamp,
    ) -> StoreResult<bool>;
    /// Stores a refresh's outcome over `version` (the next version, the
    /// hold released); false when the tokens moved meanwhile.
    async fn store_refresh(
        &self,
        tenant_id: &str,
        id: &str,
        version: i64,
        refreshed: &RefreshedTokens,
        now: Timestamp,
    ) -> StoreResult<bool>;
}

/// An account at an upstream identity provider that a user logs in with:
/// an entry of the user's `identities[]`, as Auth0 keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityRow {
    /// The latchkey user it belongs to.
    pub user_id: String,
    pub connection: String,
    /// Auth0's `provider`: the connection's strategy (`oidc`, `github`…).
    pub provider: String,
    /// Auth0's `identities[].user_id`: the account at the provider, as the
    /// user ID of a user made from it writes it after `{provider}|`.
    /// Unique in a connection.
    pub provider_user_id: String,
    pub is_social: bool,
    /// The profile the provider last gave (Auth0's `profileData`).
    pub profile_data: serde_json::Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A login gone to an upstream identity provider, waiting for its
/// callback; found by the digest of the `state` sent with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamLoginRow {
    /// The digest of the login transaction it carries (the browser's
    /// transaction cookie holds that transaction).
    pub tx_digest: String,
    pub connection: String,
    /// The host the login went from: its callback comes back there.
    pub host: String,
    /// The PKCE verifier and the nonce sent to the provider, sealed.
    pub sealed_secrets: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Logging in with upstream identity providers: the logins waiting for
/// their provider, and the identities users log in with.
///
/// A user made from an upstream identity is a user of its connection whose
/// email is the provider's word: it never logs in by email, and two
/// accounts of the provider may share an address, so the store keeps it
/// out of the lookup of password logins (`user_by_email`), and finds it by
/// its verified address only ([`UpstreamLoginStore::users_with_verified_email`]).
#[async_trait]
pub trait UpstreamLoginStore: Send + Sync {
    async fn create_upstream_login(
        &self,
        tenant_id: &str,
        state_digest: &str,
        row: &UpstreamLoginRow,
    ) -> StoreResult<()>;
    /// A login waiting for its callback (unspent, unexpired).
    async fn upstream_login(
        &self,
        tenant_id: &str,
        state_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<UpstreamLoginRow>>;
    /// Spends it: of racing callbacks with one state, one gets true. False
    /// when spent already or expired.
    async fn spend_upstream_login(
        &self,
        tenant_id: &str,
        state_digest: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// The identity `provider_user_id` of `connection`, with its user.
    async fn identity(
        &self,
        tenant_id: &str,
        connection: &str,
        provider_user_id: &str,
    ) -> StoreResult<Option<(IdentityRow, UserRow)>>;
    /// The user's identities, oldest first.
    async fn identities(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<IdentityRow>>;
    /// The users (of any connection) whose email is `email` (normal form,
    /// compared by its lowercase) and verified, oldest first; at most 20.
    /// An empty address is nobody's.
    async fn users_with_verified_email(
        &self,
        tenant_id: &str,
        email: &str,
    ) -> StoreResult<Vec<UserRow>>;
    /// A new user made from `identity`, and the identity, in one
    /// transaction. `Conflict` (nothing written) when the identity or the
    /// user ID exists already.
    async fn create_upstream_user(
        &self,
        tenant_id: &str,
        user: &UserRow,
        identity: &IdentityRow,
    ) -> StoreResult<()>;
    /// Links `identity` to its (existing) user. `Conflict` when the
    /// identity is someone's already.
    async fn add_identity(&self, tenant_id: &str, identity: &IdentityRow) -> StoreResult<()>;
    /// Stores what the provider said at a login: the identity's profile
    /// data and `updated_at`, and with `user` (a user made from this
    /// identity) the user's email, its verification, profile and
    /// `updated_at`, in one transaction.
    async fn update_identity(
        &self,
        tenant_id: &str,
        identity: &IdentityRow,
        user: Option<&UserRow>,
    ) -> StoreResult<()>;
}

/// Where a push transaction stands (docs/push-notifications.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushStatus {
    Pending,
    Approved,
    Rejected,
}

impl PushStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    /// The status stored as `name`; `None` for a name this server does not
    /// write.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

/// A login's second step sent to a push-notification method: found by its
/// ID (`txlnkid`), or the digest of its transaction token, of its
/// `oob_code`, or of the login it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct PushTransactionRow {
    pub id: String,
    pub user_id: String,
    pub method_id: String,
    pub client_id: String,
    /// The digest of the login it belongs to (its `mfa_token`, or the
    /// hosted login transaction).
    pub login_digest: String,
    pub token_digest: String,
    pub challenge_digest: String,
    pub oob_digest: String,
    /// The number-matching code the login shows, when the tenant asks for one.
    pub binding_code: Option<String>,
    pub status: PushStatus,
    /// The device's reason, as it gave it.
    pub reason: Option<String>,
    /// What the device may show about the login, JSON.
    pub context: serde_json::Value,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub polled_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub consumed_at: Option<Timestamp>,
}

/// How a push transaction is looked up (each a unique key, but `Login`:
/// the login's newest transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushKey<'a> {
    Id(&'a str),
    Token(&'a str),
    Oob(&'a str),
    Login(&'a str),
}

/// Push-notification logins' transactions. Reads return a row whatever its
/// state or expiry (a late poll is told the transaction expired); every
/// change is one conditional statement, so of racing changes one wins.
#[async_trait]
pub trait PushTransactionStore: Send + Sync {
    async fn create_push_transaction(
        &self,
        tenant_id: &str,
        row: &PushTransactionRow,
    ) -> StoreResult<()>;
    async fn push_transaction(
        &self,
        tenant_id: &str,
        by: PushKey<'_>,
    ) -> StoreResult<Option<PushTransactionRow>>;
    /// Resolves a pending, unexpired transaction to `status` (approved or
    /// rejected) with the device's `reason`. False, nothing changed, when it
    /// is resolved already, expired or unknown.
    async fn resolve_push_transaction(
        &self,
        tenant_id: &str,
        id: &str,
        status: PushStatus,
        reason: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Records a poll at `now` unless the last one was less than `interval`
    /// seconds before: false (nothing changed) when it was, or for an
    /// unknown transaction.
    async fn poll_push_transaction(
        &self,
        tenant_id: &str,
        id: &str,
        now: Timestamp,
        interval: i64,
    ) -> StoreResult<bool>;
    /// Consumes an approved transaction once: false when it is not approved
    /// or consumed already.
    async fn consume_push_transaction(
        &self,
        tenant_id: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
}

/// What a ticket mailed about an account is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketKind {
    /// The link of a verification email: it sets `email_verified`.
    VerifyEmail,
    /// The link of a password-reset email: it opens the page that sets a
    /// new password.
    ResetPassword,
}

impl TicketKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }

    /// The kind stored as `name`; `None` for a name this server does not
    /// write.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "verify_email" => Some(Self::VerifyEmail),
            "reset_password" => Some(Self::ResetPassword),
            _ => None,
        }
    }
}

/// A ticket of a link mailed about an account, found by the digest of the
/// ticket the link carries. Read whatever its state, so that a used or
/// expired link can be told apart from an unknown one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTicketRow {
    pub user_id: String,
    /// The application that asked for it.
    pub client_id: String,
    pub kind: TicketKind,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// Failed attempts at it (a new password the policy refused).
    pub attempts: i64,
}

/// What using a ticket does, in the transaction that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketUse<'a> {
    /// The user's email is verified.
    VerifyEmail,
    /// The user's password becomes `hash` (the old one kept in the password
    /// history, the brute-force counts cleared), and all they hold ends:
    /// their grants are revoked (refresh tokens, codes and access tokens
    /// with them) and their login sessions end.
    ResetPassword { hash: &'a str, reason: &'a str },
}

/// The tickets of the links mailed about accounts (email verification,
/// password reset).
#[async_trait]
pub trait AccountTicketStore: Send + Sync {
    async fn create_account_ticket(
        &self,
        tenant_id: &str,
        digest: &str,
        row: &AccountTicketRow,
    ) -> StoreResult<()>;
    /// The ticket whatever its state, if it is this tenant's.
    async fn account_ticket(
        &self,
        tenant_id: &str,
        digest: &str,
    ) -> StoreResult<Option<AccountTicketRow>>;
    /// Counts a failed attempt at a live ticket of `kind` (unused,
    /// unexpired); the attempts now counted, or `None` when it is not live.
    async fn account_ticket_failed(
        &self,
        tenant_id: &str,
        digest: &str,
        kind: TicketKind,
        now: Timestamp,
    ) -> StoreResult<Option<i64>>;
    /// Uses a live ticket of `kind` (unused, unexpired, fewer than
    /// `max_attempts` failed attempts) once and does what `action` says, in
    /// one transaction; the user's other unused tickets of that kind are
    /// used up with it. Returns the user's ID; `None`, nothing written,
    /// when the ticket is not live (of racing uses, one wins).
    async fn use_account_ticket(
        &self,
        tenant_id: &str,
        digest: &str,
        kind: TicketKind,
        now: Timestamp,
        max_attempts: i64,
        action: &TicketUse<'_>,
    ) -> StoreResult<Option<String>>;
}

/// What a sweep deleted, kind by kind: each count is named after its table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub refresh_tokens: u64,
    pub auth_codes: u64,
    /// Revoked grants (with what they issued) and spent ones.
    pub grants: u64,
    pub sessions: u64,
    pub login_transactions: u64,
    pub enrollments: u64,
    pub login_failures: u64,
    pub connect_transactions: u64,
    pub upstream_logins: u64,
    pub push_transactions: u64,
    pub account_tickets: u64,
}

impl Swept {
    fn counts(&self) -> [u64; 11] {
        [
            self.refresh_tokens,
            self.auth_codes,
            self.grants,
            self.sessions,
            self.login_transactions,
            self.enrollments,
            self.login_failures,
            self.connect_transactions,
            self.upstream_logins,
            self.push_transactions,
            self.account_tickets,
        ]
    }

    pub fn total(&self) -> u64 {
        self.counts().iter().sum()
    }

    /// Whether some kind had `limit` rows deleted: more may be waiting.
    pub fn reached(&self, limit: u64) -> bool {
        self.counts().iter().any(|&n| n >= limit)
    }

    pub fn add(&mut self, o: &Swept) {
        self.refresh_tokens += o.refresh_tokens;
        self.auth_codes += o.auth_codes;
        self.grants += o.grants;
        self.sessions += o.sessions;
        self.login_transactions += o.login_transactions;
        self.enrollments += o.enrollments;
        self.login_failures += o.login_failures;
        self.connect_transactions += o.connect_transactions;
        self.upstream_logins += o.upstream_logins;
        self.push_transactions += o.push_transactions;
        self.account_tickets += o.account_tickets;
    }
}

/// Where a walk over a tenant's grants (oldest first) goes on from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantCursor {
    pub created_at: Timestamp,
    pub id: String,
}

/// Deleting what can no longer be used (`services::sweep`). Nothing deleted
/// here changes an answer: each row is one every read already treats as
/// absent (expired, revoked, spent), kept no longer than the rules below.
#[async_trait]
pub trait SweepStore: Send + Sync {
    /// Deletes, in tenant `tenant_id`, at most `limit` rows of each kind:
    /// - refresh tokens and authorization codes that ended more than `grace`
    ///   seconds before `now` (`grace` is the longest lifetime of a token
    ///   they can have issued, so their grant outlives its access tokens); a
    ///   used code stays while its grant has refresh tokens, so replaying it
    ///   still revokes them;
    /// - revoked grants, with their codes and refresh tokens;
    /// - sessions expired or revoked, login transactions, enrollments,
    ///   connect transactions, upstream logins, push transactions and account tickets expired, and login-failure
    ///   counts whose block has ended (the next login would clear them).
    async fn sweep_expired(
        &self,
        tenant_id: &str,
        now: Timestamp,
        grace: i64,
        limit: i64,
    ) -> StoreResult<Swept>;
    /// Looks at up to `limit` grants of `tenant_id` created before `before`,
    /// oldest first from after `from`, and deletes those with neither a code
    /// nor a refresh token left (with none left, their last access token was
    /// issued when they were created, or when the last of those was used).
    /// Returns how many it deleted and where to go on from (`None`: done).
    async fn sweep_grants(
        &self,
        tenant_id: &str,
        before: Timestamp,
        from: Option<&GrantCursor>,
        limit: i64,
    ) -> StoreResult<(u64, Option<GrantCursor>)>;
}

/// A field of a user that a search of users (the Management API's `q`)
/// compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    UserId,
    /// Compared without regard to case.
    Email,
    /// The part of the email after `@`, without regard to case.
    EmailDomain,
    /// The user's connection, or the connection of one of their identities.
    Connection,
    EmailVerified,
    Blocked,
    /// `profile.name` and the other profile fields: without regard to case.
    Name,
    GivenName,
    FamilyName,
    Nickname,
    Username,
}

/// What a field is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserMatch {
    /// Equal to it.
    Is(String),
    /// Starting with it.
    Prefix(String),
    /// A true/false field's value.
    Flag(bool),
    /// Having any value at all.
    Present,
}

/// Which users a search finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFilter {
    /// Every one of them.
    All(Vec<UserFilter>),
    /// At least one of them.
    Any(Vec<UserFilter>),
    Not(Box<UserFilter>),
    Field(UserField, UserMatch),
}

/// What a search orders users by (then by `user_id`, so pages are stable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOrder {
    CreatedAt,
    UpdatedAt,
    Email,
    UserId,
    Name,
}

/// A page of a search of a tenant's users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSearch<'a> {
    pub filter: Option<&'a UserFilter>,
    pub order: UserOrder,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
    /// Whether to count every user the filter finds.
    pub count: bool,
}

/// What a change to a user does besides the row it writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserChange<'a> {
    /// A new password's hash: the current one goes to the password history,
    /// `last_password_reset` is set and the brute-force counts are cleared.
    pub password_hash: Option<&'a str>,
    /// Ends everything the user holds (their grants revoked, with their
    /// codes, refresh tokens and access tokens, and their sessions ended),
    /// for this reason.
    pub end_sessions: Option<&'a str>,
}

/// What [`UserAdminStore::update_user`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserWrite {
    Done,
    /// No such user.
    Missing,
    /// The user is no longer the row the change was made from: read again.
    Changed,
}

/// The Management API's own needs of users: creating one that must be new,
/// searching, changing one as it was read, deleting one with all it holds.
#[async_trait]
pub trait UserAdminStore: Send + Sync {
    /// A new user. `Conflict`, nothing written, when the user ID exists, or
    /// the email or username (without regard to case) belongs to another
    /// user of the connection.
    async fn create_user(&self, tenant_id: &str, user: &UserRow) -> StoreResult<()>;
    /// The identities of these users, each user's oldest first.
    async fn identities_of(
        &self,
        tenant_id: &str,
        user_ids: &[String],
    ) -> StoreResult<Vec<IdentityRow>>;
    /// A page of the users the search finds, and with `count` how many it
    /// finds in all.
    async fn search_users(
        &self,
        tenant_id: &str,
        search: &UserSearch<'_>,
    ) -> StoreResult<(Vec<UserRow>, Option<i64>)>;
    /// The users (of any connection) whose email is `email` without regard
    /// to case, oldest first; at most `limit`.
    async fn users_by_email(
        &self,
        tenant_id: &str,
        email: &str,
        limit: i64,
    ) -> StoreResult<Vec<UserRow>>;
    /// Writes `next` over the user if it still is `previous` (what the
    /// caller read and changed), with what `change` does, in one
    /// transaction. `Conflict`, nothing written, when the new email or
    /// username belongs to another user of the connection. The user ID,
    /// connection, password hash and creation time are not changed here
    /// (the password only through `change`).
    async fn update_user(
        &self,
        tenant_id: &str,
        previous: &UserRow,
        next: &UserRow,
        change: &UserChange<'_>,
    ) -> StoreResult<UserWrite>;
    /// Deletes the user with everything they hold, in one transaction: their
    /// methods, enrollments, identities, connected accounts, password
    /// history, brute-force counts, sessions and grants (with the codes,
    /// refresh tokens and access tokens issued under them). False when there
    /// was no such user.
    async fn delete_user(&self, tenant_id: &str, user_id: &str) -> StoreResult<bool>;
    /// Forgets, in one transaction, what users hold at the connection
    /// `connection` (being deleted) beside their own: their identities there
    /// (accounts linked to it) and their connected accounts there. How many
    /// rows went.
    async fn unlink_connection(&self, tenant_id: &str, connection: &str) -> StoreResult<u64>;
}

/// Why [`ImportStore::import_user`] wrote nothing: someone holds what the
/// user would take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportRefusal {
    /// A user with this user ID exists.
    UserId,
    /// A user of the connection has this email (compared by its lowercase);
    /// their user ID.
    Email(String),
    /// A user of the connection has this username (without regard to case).
    Username,
    /// A WebAuthn credential of the user is registered already.
    Credential,
}

/// Users brought in from another identity provider (`services::import`),
/// and the passwords they bring, made Argon2id at their first login.
#[async_trait]
pub trait ImportStore: Send + Sync {
    /// A new user with their methods, in one transaction: all or nothing.
    /// `Err(refusal)` inside the `Ok`, nothing written, when the user ID,
    /// the email or username in the connection, or a credential is taken.
    async fn import_user(
        &self,
        tenant_id: &str,
        user: &UserRow,
        methods: &[MethodRow],
    ) -> StoreResult<Result<(), ImportRefusal>>;
    /// Replaces the user's password hash by `hash` if it still is
    /// `previous` (the same password, hashed again: no history entry, no
    /// reset time). False when the password changed meanwhile.
    async fn rehash_password(
        &self,
        tenant_id: &str,
        user_id: &str,
        previous: &str,
        hash: &str,
    ) -> StoreResult<bool>;
}

pub trait Store:
    TenantStore
    + KeyStore
    + UserStore
    + SessionStore
    + GrantStore
    + MethodStore
    + ConnectedAccountStore
    + UpstreamLoginStore
    + PushTransactionStore
    + AccountTicketStore
    + SweepStore
    + UserAdminStore
    + ImportStore
{
}
impl<
    T: TenantStore
        + KeyStore
        + UserStore
        + SessionStore
        + GrantStore
        + MethodStore
        + ConnectedAccountStore
        + UpstreamLoginStore
        + PushTransactionStore
        + AccountTicketStore
        + SweepStore
        + UserAdminStore
        + ImportStore,
> Store for T
{
}
