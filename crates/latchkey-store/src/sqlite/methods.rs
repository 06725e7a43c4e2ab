//! SQLite: authentication methods, enrollments, password history, audit.

use async_trait::async_trait;
use sqlx::{Connection, Sqlite};

use super::SqliteStore;
use crate::errors::db;
use crate::sql::methods::{self as sql, removal};
use crate::sql::rows::{Columns, audit_event, enrollment_row, method_row};
use crate::sql::{Statement, to_json};
use crate::*;
use latchkey_core::clock::Timestamp;

/// `keep` as parameters: whether to check, the types (JSON), the password.
fn keep_params(keep: Option<LoginMethods<'_>>) -> (bool, String, bool) {
    match keep {
        Some(k) => (true, to_json(&k.types), k.password),
        None => (false, "[]".into(), false),
    }
}

#[async_trait]
impl MethodStore for SqliteStore {
    async fn methods(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<MethodRow>> {
        let rows = sql::methods::<Sqlite>(tenant_id, user_id)
            .fetch_all(&mut *self.reader().await)
            .await?;
        rows.iter().map(|r| method_row(r, "")).collect()
    }

    async fn user_with_methods(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> StoreResult<Option<(UserRow, Vec<MethodRow>)>> {
        let ticket = match self.cache.user(tenant_id, user_id) {
            Ok(found) => return Ok(found),
            Err(ticket) => ticket,
        };
        let rows = sql::user_with_methods::<Sqlite>(tenant_id, user_id)
            .fetch_all(&mut *self.reader().await)
            .await?;
        let found = sql::user_and_methods(&rows)?;
        self.cache.put_user(ticket, tenant_id, user_id, &found);
        Ok(found)
    }

    async fn method(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<MethodRow>> {
        let row = sql::method(tenant_id, user_id, id)
            .fetch_optional(&mut *self.reader().await)
            .await?;
        row.map(|r| method_row(&r, "")).transpose()
    }

    async fn method_by_id(&self, tenant_id: &str, id: &str) -> StoreResult<Option<MethodRow>> {
        let row = sql::method_by_id(tenant_id, id)
            .fetch_optional(&mut *self.reader().await)
            .await?;
        row.map(|r| method_row(&r, "")).transpose()
    }

    async fn method_by_credential(
        &self,
        tenant_id: &str,
        credential_id: &str,
    ) -> StoreResult<Option<MethodRow>> {
        let row = sql::method_by_credential(tenant_id, credential_id)
            .fetch_optional(&mut *self.reader().await)
            .await?;
        row.map(|r| method_row(&r, "")).transpose()
    }

    async fn update_method_data(
        &self,
        tenant_id: &str,
        id: &str,
        previous: &serde_json::Value,
        data: &serde_json::Value,
        last_auth_at: Option<Timestamp>,
    ) -> StoreResult<bool> {
        let owner = sql::update_method_data(tenant_id, id, previous, data, last_auth_at)
            .fetch_optional(&mut *self.writer().await?)
            .await?;
        match owner {
            Some(r) => {
                self.cache.forget_user(tenant_id, &r.text("user_id"));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn rename_method(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
        name: Option<&str>,
    ) -> StoreResult<bool> {
        let done = sql::rename_method(tenant_id, user_id, id, name)
            .execute(&mut *self.writer().await?)
            .await?;
        self.cache.forget_user(tenant_id, user_id);
        Ok(done == 1)
    }

    async fn delete_method(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
        keep: Option<LoginMethods<'_>>,
    ) -> StoreResult<Removal> {
        let (guarded, types, password) = keep_params(keep);
        // One statement on the one writer: the check and the delete are one
        // step no other write comes between.
        let mut writer = self.writer().await?;
        let done = Statement::new(
            "DELETE FROM authentication_methods WHERE tenant_id = $1 AND user_id = $2 AND id = $3 \
             AND ($4 = 0 \
               OR EXISTS (SELECT 1 FROM authentication_methods o WHERE o.tenant_id = $1 \
                 AND o.user_id = $2 AND o.id <> $3 AND o.type IN (SELECT value FROM json_each($5))) \
               OR ($6 = 1 AND EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = $1 \
                 AND u.user_id = $2 AND u.password_hash IS NOT NULL)))",
        )
        .text(tenant_id)
        .text(user_id)
        .text(id)
        .flag(guarded)
        .owned(types)
        .flag(password)
        .execute(&mut *writer)
        .await?;
        if done == 1 {
            drop(writer);
            self.cache.forget_user(tenant_id, user_id);
            return Ok(Removal::Removed);
        }
        let left = sql::method_exists(tenant_id, user_id, id)
            .fetch_optional(&mut *writer)
            .await?;
        Ok(removal(false, left.is_some()))
    }

    async fn consume_otp_step(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
        step: i64,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let done = sql::consume_otp_step(tenant_id, user_id, id, step, at)
            .execute(&mut *self.writer().await?)
            .await?;
        self.cache.forget_user(tenant_id, user_id);
        Ok(done == 1)
    }

    async fn clear_password(
        &self,
        tenant_id: &str,
        user_id: &str,
        at: Timestamp,
        keep: Option<LoginMethods<'_>>,
    ) -> StoreResult<Removal> {
        let (guarded, types, _) = keep_params(keep);
        let mut writer = self.writer().await?;
        let done = Statement::new(
            "UPDATE users SET password_hash = NULL, updated_at = $3 \
             WHERE tenant_id = $1 AND user_id = $2 AND password_hash IS NOT NULL \
             AND ($4 = 0 OR EXISTS (SELECT 1 FROM authentication_methods o WHERE o.tenant_id = $1 \
               AND o.user_id = $2 AND o.type IN (SELECT value FROM json_each($5))))",
        )
        .text(tenant_id)
        .text(user_id)
        .int(at)
        .flag(guarded)
        .owned(types)
        .execute(&mut *writer)
        .await?;
        if done == 1 {
            drop(writer);
            self.cache.forget_user(tenant_id, user_id);
            return Ok(Removal::Removed);
        }
        let left = sql::password_exists(tenant_id, user_id)
            .fetch_optional(&mut *writer)
            .await?;
        Ok(removal(false, left.is_some()))
    }

    async fn create_ticketed_enrollment(
        &self,
        tenant_id: &str,
        session_digest: &str,
        ticket_digest: Option<&str>,
        row: &EnrollmentRow,
    ) -> StoreResult<()> {
        sql::create_enrollment(tenant_id, session_digest, ticket_digest, row)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn enrollment_by_ticket(
        &self,
        tenant_id: &str,
        ticket_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(String, EnrollmentRow)>> {
        let row = sql::enrollment_by_ticket(tenant_id, ticket_digest, now)
            .fetch_optional(&mut *self.reader().await)
            .await?;
        row.map(|r| Ok((r.text("session_digest"), enrollment_row(&r)?)))
            .transpose()
    }

    async fn spend_enrollment_ticket(
        &self,
        tenant_id: &str,
        ticket_digest: &str,
        previous: &serde_json::Value,
        state: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let done = sql::spend_enrollment_ticket(tenant_id, ticket_digest, previous, state, now)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(done == 1)
    }

    async fn enrollment(
        &self,
        tenant_id: &str,
        session_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<EnrollmentRow>> {
        let row = sql::enrollment(tenant_id, session_digest, now)
            .fetch_optional(&mut *self.reader().await)
            .await?;
        row.as_ref().map(enrollment_row).transpose()
    }

    async fn enrollment_failed(
        &self,
        tenant_id: &str,
        session_digest: &str,
        max_attempts: i64,
    ) -> StoreResult<i64> {
        let row = sql::enrollment_failed(tenant_id, session_digest)
            .fetch_optional(&mut *self.writer().await?)
            .await?;
        let attempts = row.map_or(max_attempts, |r| r.int("attempts"));
        if attempts >= max_attempts {
            sql::delete_enrollment(tenant_id, session_digest)
                .execute(&mut *self.writer().await?)
                .await?;
        }
        Ok((max_attempts - attempts).max(0))
    }

    async fn take_enrollment_attempt(
        &self,
        tenant_id: &str,
        session_digest: &str,
        max_attempts: i64,
        now: Timestamp,
    ) -> StoreResult<Option<EnrollmentRow>> {
        let row = sql::take_enrollment_attempt(tenant_id, session_digest, max_attempts, now)
            .fetch_optional(&mut *self.writer().await?)
            .await?;
        row.as_ref().map(enrollment_row).transpose()
    }

    async fn return_enrollment_attempt(
        &self,
        tenant_id: &str,
        session_digest: &str,
        state: &serde_json::Value,
    ) -> StoreResult<()> {
        sql::return_enrollment_attempt(tenant_id, session_digest, state)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn remove_enrollment_if(
        &self,
        tenant_id: &str,
        session_digest: &str,
        state: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let done = sql::remove_enrollment_if(tenant_id, session_digest, state, now)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(done == 1)
    }

    async fn finish_enrollment(
        &self,
        tenant_id: &str,
        session_digest: &str,
        completion: &Completion,
        now: Timestamp,
        max_methods: Option<i64>,
    ) -> StoreResult<Finish> {
        // IMMEDIATE takes the write lock up front (see mod.rs); the single
        // writer makes the user's writes one at a time.
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let consumed = sql::consume_enrollment(tenant_id, session_digest, now)
            .execute(&mut *tx)
            .await?;
        if consumed != 1 {
            return Ok(Finish::Gone);
        }
        let finish = sql::complete(&mut *tx, tenant_id, completion, max_methods).await?;
        if finish != Finish::Done {
            // Dropped, the transaction rolls back: the enrollment stays.
            return Ok(finish);
        }
        tx.commit().await.map_err(db)?;
        match completion {
            Completion::AddMethod { row, .. } => self.cache.forget_user(tenant_id, &row.user_id),
            Completion::SignUp { user, .. } => self.cache.forget_user(tenant_id, &user.user_id),
            Completion::SetPassword { user_id, .. } => self.cache.forget_user(tenant_id, user_id),
            Completion::Consume => {}
        }
        Ok(Finish::Done)
    }

    async fn password_history(
        &self,
        tenant_id: &str,
        user_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let rows = sql::password_history::<Sqlite>(tenant_id, user_id, limit)
            .fetch_all(&mut *self.reader().await)
            .await?;
        Ok(rows.iter().map(|r| r.text("hash")).collect())
    }

    async fn record_audit(&self, tenant_id: &str, e: &AuditEvent) -> StoreResult<()> {
        sql::record_audit(tenant_id, e)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn search_audit(
        &self,
        tenant_id: &str,
        search: &AuditSearch<'_>,
    ) -> StoreResult<(Vec<AuditEvent>, Option<i64>)> {
        let rows = sql::search_audit::<Sqlite>(tenant_id, search)
            .fetch_all(&mut *self.reader().await)
            .await?;
        let events = rows
            .iter()
            .map(audit_event)
            .collect::<StoreResult<Vec<_>>>()?;
        let total = if search.count {
            let row = sql::count_audit::<Sqlite>(tenant_id, search)
                .fetch_one(&mut *self.reader().await)
                .await?;
            Some(row.int("n"))
        } else {
            None
        };
        Ok((events, total))
    }

    async fn audit_event(&self, tenant_id: &str, id: &str) -> StoreResult<Option<AuditEvent>> {
        let row = sql::audit_event(tenant_id, id)
            .fetch_optional(&mut *self.reader().await)
            .await?;
        row.as_ref().map(audit_event).transpose()
    }

    async fn audit_events(&self, tenant_id: &str, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        let rows = sql::audit_events::<Sqlite>(tenant_id, limit)
            .fetch_all(&mut *self.reader().await)
            .await?;
        rows.iter().map(audit_event).collect()
    }
}
