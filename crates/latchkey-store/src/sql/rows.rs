//! Rows of either backend read into the store's row types. A flag is a
//! BOOLEAN on PostgreSQL and an INTEGER (0 or 1) on SQLite; both read as
//! `bool`. JSON columns are text on both.

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::{
    AccountStatus, AuditEvent, ConnectRow, ConnectStage, ConnectedAccountRow, EnrollmentRow,
    MethodRow, RefreshTokenRow, SealedTokens, SessionRow, SigningKeyRow, StoreError, StoreResult,
    TenantRow, UserRow,
};
use latchkey_core::tenant::FactorType;

/// The columns of a row, by name. A column of another type than asked is
/// a bug in the store's SQL (sqlx panics, as `Row::get` does).
pub(crate) trait Columns {
    fn text(&self, column: &str) -> String;
    fn text_or_null(&self, column: &str) -> Option<String>;
    fn int(&self, column: &str) -> i64;
    fn int_or_null(&self, column: &str) -> Option<i64>;
    fn flag(&self, column: &str) -> bool;
}

impl<R: Row> Columns for R
where
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> String {
        self.get(column)
    }

    fn text_or_null(&self, column: &str) -> Option<String> {
        self.get(column)
    }

    fn int(&self, column: &str) -> i64 {
        self.get(column)
    }

    fn int_or_null(&self, column: &str) -> Option<i64> {
        self.get(column)
    }

    fn flag(&self, column: &str) -> bool {
        self.get(column)
    }
}

/// A method's type from its stored wire name; a type this server does not
/// know is a corrupt row.
fn factor_type(stored: String) -> StoreResult<FactorType> {
    FactorType::try_from(stored).map_err(StoreError::Corrupt)
}

/// JSON read from a column.
pub(crate) fn json<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn tenant_row(r: &impl Columns) -> TenantRow {
    TenantRow {
        id: r.text("id"),
        name: r.text("name"),
        config: r.text("config"),
        revision: r.int("revision"),
    }
}

pub(crate) fn signing_key_row(r: &impl Columns) -> SigningKeyRow {
    SigningKeyRow {
        kid: r.text("kid"),
        sealed_private: r.text("sealed_private"),
        public_jwk: r.text("public_jwk"),
        created_at: r.int("created_at"),
        superseded_at: r.int_or_null("superseded_at"),
    }
}

/// A user (the columns of `tenants::USER_COLUMNS`).
pub(crate) fn user_row(r: &impl Columns) -> StoreResult<UserRow> {
    Ok(UserRow {
        user_id: r.text("user_id"),
        connection: r.text("connection"),
        email: r.text("email"),
        email_verified: r.flag("email_verified"),
        password_hash: r.text_or_null("password_hash"),
        profile: json(&r.text("profile"))?,
        blocked: r.flag("blocked"),
        last_password_reset: r.int_or_null("last_password_reset"),
        created_at: r.int("created_at"),
        updated_at: r.int("updated_at"),
        signed_up: r.flag("signed_up"),
        seeded_password: r.text_or_null("seeded_password"),
    })
}

pub(crate) fn session_row(r: &impl Columns) -> StoreResult<SessionRow> {
    Ok(SessionRow {
        user_id: r.text("user_id"),
        auth_time: r.int("auth_time"),
        amr: json(&r.text("amr"))?,
        expires_at: r.int("expires_at"),
    })
}

/// A refresh token from columns named with `prefix` (the columns of
/// `sessions::REFRESH_TOKEN_COLUMNS`).
pub(crate) fn refresh_token_row(r: &impl Columns, prefix: &str) -> StoreResult<RefreshTokenRow> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(RefreshTokenRow {
        grant_id: r.text(&c("grant_id")),
        client_id: r.text(&c("client_id")),
        user_id: r.text(&c("user_id")),
        scope: r.text(&c("scope")),
        audience: r.text_or_null(&c("audience")),
        auth_time: r.int(&c("auth_time")),
        amr: json(&r.text(&c("amr")))?,
        created_at: r.int(&c("created_at")),
        expires_at: r.int(&c("expires_at")),
        idle_expires_at: r.int(&c("idle_expires_at")),
        rotated_at: r.int_or_null(&c("rotated_at")),
        dpop_jkt: r.text_or_null(&c("dpop_jkt")),
        host: r.text_or_null(&c("host")),
    })
}

/// A method from columns named with `prefix` (the columns of
/// `methods::METHOD_COLUMNS`; `m_` in joined queries).
pub(crate) fn method_row(r: &impl Columns, prefix: &str) -> StoreResult<MethodRow> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(MethodRow {
        id: r.text(&c("id")),
        user_id: r.text(&c("user_id")),
        method_type: factor_type(r.text(&c("type")))?,
        name: r.text_or_null(&c("name")),
        data: json(&r.text(&c("data")))?,
        created_at: r.int(&c("created_at")),
        last_auth_at: r.int_or_null(&c("last_auth_at")),
        last_otp_step: r.int_or_null(&c("last_otp_step")),
        credential_id: r.text_or_null(&c("credential_id")),
    })
}

pub(crate) fn enrollment_row(r: &impl Columns) -> StoreResult<EnrollmentRow> {
    Ok(EnrollmentRow {
        user_id: r.text("user_id"),
        client_id: r.text("client_id"),
        method_type: r.text("method_type"),
        method_id: r.text("method_id"),
        state: json(&r.text("state"))?,
        attempts: r.int("attempts"),
        created_at: r.int("created_at"),
        expires_at: r.int("expires_at"),
    })
}

pub(crate) fn audit_event(r: &impl Columns) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: r.text("id"),
        event_type: r.text("type"),
        date: r.int("date"),
        client_id: r.text_or_null("client_id"),
        user_id: r.text_or_null("user_id"),
        ip: r.text_or_null("ip"),
        user_agent: r.text_or_null("user_agent"),
        details: json(&r.text("details"))?,
    })
}

fn account_status(stored: String) -> StoreResult<AccountStatus> {
    match stored.as_str() {
        "active" => Ok(AccountStatus::Active),
        "revoked" => Ok(AccountStatus::Revoked),
        _ => Err(StoreError::Corrupt(format!("account status {stored:?}"))),
    }
}

fn connect_stage(stored: String) -> StoreResult<ConnectStage> {
    ConnectStage::ALL
        .into_iter()
        .find(|s| s.as_str() == stored)
        .ok_or_else(|| StoreError::Corrupt(format!("connect stage {stored:?}")))
}

pub(crate) fn connected_account_row(r: &impl Columns) -> StoreResult<ConnectedAccountRow> {
    Ok(ConnectedAccountRow {
        id: r.text("id"),
        user_id: r.text("user_id"),
        connection: r.text("connection"),
        subject: r.text("subject"),
        scopes: json(&r.text("scopes"))?,
        tokens: SealedTokens {
            access_token: r.text_or_null("sealed_access_token"),
            access_expires_at: r.int_or_null("access_expires_at"),
            refresh_token: r.text_or_null("sealed_refresh_token"),
            refresh_expires_at: r.int_or_null("refresh_expires_at"),
            id_token: r.text_or_null("sealed_id_token"),
        },
        status: account_status(r.text("status"))?,
        version: r.int("version"),
        refresh_lock_until: r.int_or_null("refresh_lock_until"),
        created_at: r.int("created_at"),
        updated_at: r.int("updated_at"),
    })
}

pub(crate) fn connect_row(r: &impl Columns) -> StoreResult<ConnectRow> {
    Ok(ConnectRow {
        user_id: r.text("user_id"),
        client_id: r.text("client_id"),
        connection: r.text("connection"),
        host: r.text("host"),
        redirect_uri: r.text("redirect_uri"),
        app_state: r.text_or_null("app_state"),
        code_challenge: r.text_or_null("code_challenge"),
        scopes: json(&r.text("scopes"))?,
        authorization_params: json(&r.text("authorization_params"))?,
        stage: connect_stage(r.text("stage"))?,
        state_digest: r.text_or_null("state_digest"),
        browser_digest: r.text_or_null("browser_digest"),
        sealed_upstream: r.text_or_null("sealed_upstream"),
        code_digest: r.text_or_null("code_digest"),
        sealed_result: r.text_or_null("sealed_result"),
        attempts: r.int("attempts"),
        created_at: r.int("created_at"),
        expires_at: r.int("expires_at"),
    })
}
