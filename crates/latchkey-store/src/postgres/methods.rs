//! PostgreSQL: authentication methods, enrollments, password history, audit.

use async_trait::async_trait;
use sqlx::Postgres;

use super::{PostgresStore, advisory_lock};
use crate::errors::db;
use crate::sql::methods::{self as sql, removal};
use crate::sql::rows::{Columns, audit_event, enrollment_row, method_row};
use crate::*;
use latchkey_core::clock::Timestamp;

/// The advisory lock a user's methods are changed under.
pub(super) fn user_lock(tenant_id: &str, user_id: &str) -> String {
    format!("latchkey:user:{tenant_id}:{user_id}")
}

#[async_trait]
impl MethodStore for PostgresStore {
    async fn methods(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<MethodRow>> {
        let rows = sql::methods::<Postgres>(tenant_id, user_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| method_row(r, "")).collect()
    }

    async fn user_with_methods(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> StoreResult<Option<(UserRow, Vec<MethodRow>)>> {
        let rows = sql::user_with_methods::<Postgres>(tenant_id, user_id)
            .fetch_all(self.pool())
            .await?;
        sql::user_and_methods(&rows)
    }

    async fn method(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<MethodRow>> {
        let row = sql::method(tenant_id, user_id, id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| method_row(&r, "")).transpose()
    }

    async fn method_by_id(&self, tenant_id: &str, id: &str) -> StoreResult<Option<MethodRow>> {
        let row = sql::method_by_id(tenant_id, id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| method_row(&r, "")).transpose()
    }

    async fn method_by_credential(
        &self,
        tenant_id: &str,
        credential_id: &str,
    ) -> StoreResult<Option<MethodRow>> {
        let row = sql::method_by_credential(tenant_id, credential_id)
            .fetch_optional(self.pool())
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
            .fetch_optional(self.pool())
            .await?;
        Ok(owner.is_some())
    }

    async fn rename_method(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
        name: Option<&str>,
    ) -> StoreResult<bool> {
        let done = sql::rename_method(tenant_id, user_id, id, name)
            .execute(self.pool())
            .await?;
        Ok(done == 1)
    }

    async fn delete_method(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
        keep: Option<LoginMethods<'_>>,
    ) -> StoreResult<Removal> {
        let Some(keep) = keep else {
            let done = sqlx::query(
                "DELETE FROM authentication_methods WHERE tenant_id = $1 AND user_id = $2 AND id = $3",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(db)?;
            return Ok(removal(done.rows_affected() == 1, false));
        };
        // Under the user's lock (as enrollments take it): a removal racing
        // this one waits, and its check then sees what this one deleted.
        let mut tx = self.pool().begin().await.map_err(db)?;
        advisory_lock(&mut tx, &user_lock(tenant_id, user_id)).await?;
        let done = sqlx::query(
            "DELETE FROM authentication_methods WHERE tenant_id = $1 AND user_id = $2 AND id = $3 \
             AND (EXISTS (SELECT 1 FROM authentication_methods o WHERE o.tenant_id = $1 \
                   AND o.user_id = $2 AND o.id <> $3 AND o.type = ANY($4)) \
               OR ($5 AND EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = $1 \
                   AND u.user_id = $2 AND u.password_hash IS NOT NULL)))",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(id)
        .bind(keep.types)
        .bind(keep.password)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        let left = done == 0
            && sql::method_exists(tenant_id, user_id, id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        tx.commit().await.map_err(db)?;
        Ok(removal(done == 1, left))
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
            .execute(self.pool())
            .await?;
        Ok(done == 1)
    }

    async fn clear_password(
        &self,
        tenant_id: &str,
        user_id: &str,
        at: Timestamp,
        keep: Option<LoginMethods<'_>>,
    ) -> StoreResult<Removal> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        if keep.is_some() {
            advisory_lock(&mut tx, &user_lock(tenant_id, user_id)).await?;
        }
        let done = sqlx::query(
            "UPDATE users SET password_hash = NULL, updated_at = $1 \
             WHERE tenant_id = $2 AND user_id = $3 AND password_hash IS NOT NULL \
             AND (NOT $4 OR EXISTS (SELECT 1 FROM authentication_methods o WHERE o.tenant_id = $2 \
               AND o.user_id = $3 AND o.type = ANY($5)))",
        )
        .bind(at)
        .bind(tenant_id)
        .bind(user_id)
        .bind(keep.is_some())
        .bind(keep.map(|k| k.types).unwrap_or_default())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        let left = done == 0
            && sql::password_exists(tenant_id, user_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        tx.commit().await.map_err(db)?;
        Ok(removal(done == 1, left))
    }

    async fn create_ticketed_enrollment(
        &self,
        tenant_id: &str,
        session_digest: &str,
        ticket_digest: Option<&str>,
        row: &EnrollmentRow,
    ) -> StoreResult<()> {
        sql::create_enrollment(tenant_id, session_digest, ticket_digest, row)
            .execute(self.pool())
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
            .fetch_optional(self.pool())
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
            .execute(self.pool())
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
            .fetch_optional(self.pool())
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
            .fetch_optional(self.pool())
            .await?;
        let attempts = row.map_or(max_attempts, |r| r.int("attempts"));
        if attempts >= max_attempts {
            sql::delete_enrollment(tenant_id, session_digest)
                .execute(self.pool())
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
            .fetch_optional(self.pool())
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
            .execute(self.pool())
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
            .execute(self.pool())
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
        let mut tx = self.pool().begin().await.map_err(db)?;
        let consumed = sql::consume_enrollment(tenant_id, session_digest, now)
            .execute(&mut *tx)
            .await?;
        if consumed != 1 {
            return Ok(Finish::Gone);
        }
        // The winner writes for the user while holding the user's lock: two
        // different enrollments completing at once then take turns, as they
        // do under SQLite's single writer (no lost password-history entry,
        // no two recovery codes after `replace_type`, and a completion
        // racing this one for the last place under `max_methods` counts
        // what this one added).
        let user_id = match completion {
            Completion::AddMethod { row, .. } => Some(&row.user_id),
            Completion::SignUp { user, .. } => Some(&user.user_id),
            Completion::SetPassword { user_id, .. } => Some(user_id),
            Completion::Consume => None,
        };
        if let Some(user_id) = user_id {
            advisory_lock(&mut tx, &user_lock(tenant_id, user_id)).await?;
        }
        let finish = sql::complete(&mut *tx, tenant_id, completion, max_methods).await?;
        if finish != Finish::Done {
            // Dropped, the transaction rolls back: the enrollment stays.
            return Ok(finish);
        }
        tx.commit().await.map_err(db)?;
        Ok(Finish::Done)
    }

    async fn password_history(
        &self,
        tenant_id: &str,
        user_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let rows = sql::password_history::<Postgres>(tenant_id, user_id, limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(|r| r.text("hash")).collect())
    }

    async fn record_audit(&self, tenant_id: &str, e: &AuditEvent) -> StoreResult<()> {
        sql::record_audit(tenant_id, e).execute(self.pool()).await?;
        Ok(())
    }

    async fn search_audit(
        &self,
        tenant_id: &str,
        search: &AuditSearch<'_>,
    ) -> StoreResult<(Vec<AuditEvent>, Option<i64>)> {
        let rows = sql::search_audit::<Postgres>(tenant_id, search)
            .fetch_all(self.pool())
            .await?;
        let events = rows
            .iter()
            .map(audit_event)
            .collect::<StoreResult<Vec<_>>>()?;
        let total = if search.count {
            let row = sql::count_audit::<Postgres>(tenant_id, search)
                .fetch_one(self.pool())
                .await?;
            Some(row.int("n"))
        } else {
            None
        };
        Ok((events, total))
    }

    async fn audit_event(&self, tenant_id: &str, id: &str) -> StoreResult<Option<AuditEvent>> {
        let row = sql::audit_event(tenant_id, id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(audit_event).transpose()
    }

    async fn audit_events(&self, tenant_id: &str, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        let rows = sql::audit_events::<Postgres>(tenant_id, limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(audit_event).collect()
    }
}
