//! PostgreSQL: authentication methods, enrollments, password history, audit.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{PostgresStore, advisory_lock, json, to_json};
use crate::clock::Timestamp;
use crate::store::errors::db;
use crate::store::*;

fn method_row(r: &PgRow) -> StoreResult<MethodRow> {
    method_row_as(r, "")
}

/// A method from columns named with `prefix` (joined queries).
fn method_row_as(r: &PgRow, prefix: &str) -> StoreResult<MethodRow> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(MethodRow {
        id: r.get(col("id").as_str()),
        user_id: r.get(col("user_id").as_str()),
        method_type: factor_type(r.get(col("type").as_str()))?,
        name: r.get(col("name").as_str()),
        data: json(r.get::<&str, _>(col("data").as_str()))?,
        created_at: r.get(col("created_at").as_str()),
        last_auth_at: r.get(col("last_auth_at").as_str()),
        last_otp_step: r.get(col("last_otp_step").as_str()),
        credential_id: r.get(col("credential_id").as_str()),
    })
}

/// SQLite reads a negative LIMIT as "no limit"; PostgreSQL rejects it, and
/// reads `LIMIT NULL` as "no limit".
fn no_limit_when_negative(limit: i64) -> Option<i64> {
    (limit >= 0).then_some(limit)
}

const METHOD_COLUMNS: &str =
    "id, user_id, type, name, data, created_at, last_auth_at, last_otp_step, credential_id";

/// Inserts a method inside a transaction; a credential already registered
/// in the tenant is a `Conflict`.
async fn insert_method(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tenant_id: &str,
    row: &MethodRow,
) -> StoreResult<()> {
    sqlx::query(
            "INSERT INTO authentication_methods (tenant_id, id, user_id, type, name, data, created_at, last_auth_at, \
               last_otp_step, credential_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(tenant_id)
        .bind(&row.id)
        .bind(&row.user_id)
        .bind(row.method_type.as_str())
        .bind(&row.name)
        .bind(to_json(&row.data))
        .bind(row.created_at)
        .bind(row.last_auth_at)
        .bind(row.last_otp_step)
        .bind(&row.credential_id)
        .execute(&mut **tx)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(
                "this credential is already registered".into(),
            ),
            e => db(e),
        })?;
    Ok(())
}

/// The advisory lock a user's methods are changed under.
fn user_lock(tenant_id: &str, user_id: &str) -> String {
    format!("latchkey:user:{tenant_id}:{user_id}")
}

/// A removal's outcome: done, refused (the thing is still there), missing.
fn removal(removed: bool, still_there: bool) -> Removal {
    match (removed, still_there) {
        (true, _) => Removal::Removed,
        (false, true) => Removal::LastLogin,
        (false, false) => Removal::Missing,
    }
}

#[async_trait]
impl MethodStore for PostgresStore {
    async fn methods(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<MethodRow>> {
        let sql = format!(
            "SELECT {METHOD_COLUMNS} FROM authentication_methods WHERE tenant_id = $1 AND user_id = $2 \
             ORDER BY created_at, id COLLATE \"C\""
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(self.pool())
            .await
            .map_err(db)?;
        rows.iter().map(method_row).collect()
    }

    async fn user_with_methods(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> StoreResult<Option<(UserRow, Vec<MethodRow>)>> {
        // One statement, one trip to the database: the user's columns on
        // every row, the method's (if any) prefixed with `m_`.
        let sql = format!(
            "SELECT {} FROM users u LEFT JOIN authentication_methods m \
             ON m.tenant_id = u.tenant_id AND m.user_id = u.user_id \
             WHERE u.tenant_id = $1 AND u.user_id = $2 ORDER BY m.created_at, m.id COLLATE \"C\"",
            joined_columns(super::USER_COLUMNS, METHOD_COLUMNS)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(self.pool())
            .await
            .map_err(db)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let user = super::user_row(first)?;
        let mut methods = Vec::new();
        for r in &rows {
            if r.get::<Option<String>, _>("m_id").is_some() {
                methods.push(method_row_as(r, "m_")?);
            }
        }
        Ok(Some((user, methods)))
    }

    async fn method(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<MethodRow>> {
        let sql = format!(
            "SELECT {METHOD_COLUMNS} FROM authentication_methods WHERE tenant_id = $1 AND user_id = $2 AND id = $3"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(user_id)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db)?;
        row.as_ref().map(method_row).transpose()
    }

    async fn method_by_credential(
        &self,
        tenant_id: &str,
        credential_id: &str,
    ) -> StoreResult<Option<MethodRow>> {
        let sql = format!(
            "SELECT {METHOD_COLUMNS} FROM authentication_methods WHERE tenant_id = $1 AND credential_id = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(credential_id)
            .fetch_optional(self.pool())
            .await
            .map_err(db)?;
        row.as_ref().map(method_row).transpose()
    }

    async fn update_method_data(
        &self,
        tenant_id: &str,
        id: &str,
        previous: &serde_json::Value,
        data: &serde_json::Value,
        last_auth_at: Option<Timestamp>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE authentication_methods SET data = $1, last_auth_at = COALESCE($2, last_auth_at) \
             WHERE tenant_id = $3 AND id = $4 AND data = $5",
        )
            .bind(to_json(data))
            .bind(last_auth_at)
            .bind(tenant_id)
            .bind(id)
            .bind(to_json(previous))
            .execute(self.pool())
            .await.map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn rename_method(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
        name: Option<&str>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE authentication_methods SET name = $1 WHERE tenant_id = $2 AND user_id = $3 AND id = $4",
        )
        .bind(name)
        .bind(tenant_id)
        .bind(user_id)
        .bind(id)
        .execute(self.pool())
        .await.map_err(db)?;
        Ok(done.rows_affected() == 1)
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
            .await.map_err(db)?;
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
        .map_err(db)?;
        let left = done.rows_affected() == 0
            && sqlx::query(
                "SELECT 1 FROM authentication_methods WHERE tenant_id = $1 AND user_id = $2 AND id = $3",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await.map_err(db)?
            .is_some();
        tx.commit().await.map_err(db)?;
        Ok(removal(done.rows_affected() == 1, left))
    }

    async fn consume_otp_step(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
        step: i64,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE authentication_methods SET last_otp_step = $1, last_auth_at = $2 \
             WHERE tenant_id = $3 AND user_id = $4 AND id = $5 AND (last_otp_step IS NULL OR last_otp_step < $1)",
        )
        .bind(step)
        .bind(at)
        .bind(tenant_id)
        .bind(user_id)
        .bind(id)
        .execute(self.pool())
        .await.map_err(db)?;
        Ok(done.rows_affected() == 1)
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
        .map_err(db)?;
        let left = done.rows_affected() == 0
            && sqlx::query(
                "SELECT 1 FROM users WHERE tenant_id = $1 AND user_id = $2 AND password_hash IS NOT NULL",
            )
            .bind(tenant_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await.map_err(db)?
            .is_some();
        tx.commit().await.map_err(db)?;
        Ok(removal(done.rows_affected() == 1, left))
    }

    async fn create_enrollment(
        &self,
        tenant_id: &str,
        session_digest: &str,
        row: &EnrollmentRow,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO enrollments (session_digest, tenant_id, user_id, client_id, method_type, method_id, \
               state, attempts, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(session_digest)
        .bind(tenant_id)
        .bind(&row.user_id)
        .bind(&row.client_id)
        .bind(&row.method_type)
        .bind(&row.method_id)
        .bind(to_json(&row.state))
        .bind(row.attempts)
        .bind(row.created_at)
        .bind(row.expires_at)
        .execute(self.pool())
        .await.map_err(db)?;
        Ok(())
    }

    async fn enrollment(
        &self,
        tenant_id: &str,
        session_digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<EnrollmentRow>> {
        let row = sqlx::query(
            "SELECT user_id, client_id, method_type, method_id, state, attempts, created_at, expires_at \
             FROM enrollments WHERE session_digest = $1 AND tenant_id = $2 AND expires_at > $3",
        )
        .bind(session_digest)
        .bind(tenant_id)
        .bind(now)
        .fetch_optional(self.pool())
        .await.map_err(db)?;
        row.map(|r| {
            Ok(EnrollmentRow {
                user_id: r.get("user_id"),
                client_id: r.get("client_id"),
                method_type: r.get("method_type"),
                method_id: r.get("method_id"),
                state: json(r.get::<&str, _>("state"))?,
                attempts: r.get("attempts"),
                created_at: r.get("created_at"),
                expires_at: r.get("expires_at"),
            })
        })
        .transpose()
    }

    async fn enrollment_failed(
        &self,
        tenant_id: &str,
        session_digest: &str,
        max_attempts: i64,
    ) -> StoreResult<i64> {
        let row = sqlx::query(
            "UPDATE enrollments SET attempts = attempts + 1 WHERE session_digest = $1 AND tenant_id = $2 \
             RETURNING attempts",
        )
        .bind(session_digest)
        .bind(tenant_id)
        .fetch_optional(self.pool())
        .await.map_err(db)?;
        let attempts: i64 = row.map_or(max_attempts, |r| r.get("attempts"));
        if attempts >= max_attempts {
            sqlx::query("DELETE FROM enrollments WHERE session_digest = $1 AND tenant_id = $2")
                .bind(session_digest)
                .bind(tenant_id)
                .execute(self.pool())
                .await
                .map_err(db)?;
        }
        Ok((max_attempts - attempts).max(0))
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
        let consumed = sqlx::query(
            "DELETE FROM enrollments WHERE session_digest = $1 AND tenant_id = $2 AND expires_at > $3",
        )
        .bind(session_digest)
        .bind(tenant_id)
        .bind(now)
        .execute(&mut *tx)
        .await.map_err(db)?;
        if consumed.rows_affected() != 1 {
            return Ok(Finish::Gone);
        }
        // The winner writes for the user while holding the user's lock: two
        // different enrollments completing at once then take turns, as they
        // do under SQLite's single writer (no lost password-history entry,
        // no two recovery codes after `replace_type`).
        let user_id = match completion {
            Completion::AddMethod { row, .. } => Some(&row.user_id),
            Completion::SignUp { user, .. } => Some(&user.user_id),
            Completion::SetPassword { user_id, .. } => Some(user_id),
            Completion::Consume => None,
        };
        if let Some(user_id) = user_id {
            advisory_lock(&mut tx, &user_lock(tenant_id, user_id)).await?;
        }
        // Counted under the user's lock: a completion racing this one for
        // the last place waits, then counts what this one added.
        let capped = max_methods.zip(completion.user_id());
        let before = match capped {
            Some((_, user_id)) => sqlx::query_scalar::<_, i64>(METHOD_COUNT_SQL)
                .bind(tenant_id)
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?,
            None => 0,
        };
        match completion {
            Completion::Consume => {}
            Completion::SignUp { user, row } => {
                sqlx::query(
                    "INSERT INTO users (tenant_id, user_id, connection, email, email_lower, email_verified, \
                       password_hash, profile, blocked, last_password_reset, created_at, updated_at, \
                       signed_up, seeded_password) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(tenant_id)
                .bind(&user.user_id)
                .bind(&user.connection)
                .bind(&user.email)
                .bind(user.email.to_lowercase())
                .bind(user.email_verified)
                .bind(&user.password_hash)
                .bind(to_json(&user.profile))
                .bind(user.blocked)
                .bind(user.last_password_reset)
                .bind(user.created_at)
                .bind(user.updated_at)
                .bind(user.signed_up)
                .bind(&user.seeded_password)
                .execute(&mut *tx)
                .await
                .map_err(|e| match e {
                    sqlx::Error::Database(d) if d.is_unique_violation() => {
                        StoreError::Conflict("a user with this email already exists".into())
                    }
                    e => db(e),
                })?;
                insert_method(&mut tx, tenant_id, row).await?;
            }

            Completion::AddMethod { row, replace_type } => {
                if *replace_type {
                    sqlx::query(
                        "DELETE FROM authentication_methods WHERE tenant_id = $1 AND user_id = $2 AND type = $3",
                    )
                    .bind(tenant_id)
                    .bind(&row.user_id)
                    .bind(row.method_type.as_str())
                    .execute(&mut *tx)
                    .await.map_err(db)?;
                }
                insert_method(&mut tx, tenant_id, row).await?;
            }
            Completion::SetPassword { user_id, hash, at } => {
                let old = sqlx::query(
                    "SELECT password_hash FROM users WHERE tenant_id = $1 AND user_id = $2",
                )
                .bind(tenant_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                if let Some(Some(old)) = old.map(|r| r.get::<Option<String>, _>("password_hash")) {
                    sqlx::query(
                        "INSERT INTO password_history (tenant_id, user_id, hash, created_at) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(tenant_id)
                    .bind(user_id)
                    .bind(old)
                    .bind(at)
                    .execute(&mut *tx)
                    .await.map_err(db)?;
                }
                sqlx::query(
                    "UPDATE users SET password_hash = $1, last_password_reset = $2, updated_at = $3 \
                     WHERE tenant_id = $4 AND user_id = $5",
                )
                .bind(hash)
                .bind(at)
                .bind(at)
                .bind(tenant_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await.map_err(db)?;
                sqlx::query("DELETE FROM login_failures WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        if let Some((max, user_id)) = capped {
            let after = sqlx::query_scalar::<_, i64>(METHOD_COUNT_SQL)
                .bind(tenant_id)
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            if after > max && after > before {
                // Dropped, the transaction rolls back: the enrollment stays.
                return Ok(Finish::Full);
            }
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
        let rows = sqlx::query(
            "SELECT hash FROM password_history WHERE tenant_id = $1 AND user_id = $2 \
             ORDER BY created_at DESC, seq DESC LIMIT $3",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(no_limit_when_negative(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        Ok(rows.iter().map(|r| r.get("hash")).collect())
    }

    async fn record_audit(&self, tenant_id: &str, e: &AuditEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, tenant_id, type, date, client_id, user_id, ip, user_agent, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&e.id)
        .bind(tenant_id)
        .bind(&e.event_type)
        .bind(e.date)
        .bind(&e.client_id)
        .bind(&e.user_id)
        .bind(&e.ip)
        .bind(&e.user_agent)
        .bind(to_json(&e.details))
        .execute(self.pool())
        .await.map_err(db)?;
        Ok(())
    }

    async fn audit_events(&self, tenant_id: &str, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT id, type, date, client_id, user_id, ip, user_agent, details FROM \
             (SELECT * FROM audit_events WHERE tenant_id = $1 ORDER BY date DESC, seq DESC LIMIT $2) AS newest \
             ORDER BY date, seq",
        )
        .bind(tenant_id)
        .bind(no_limit_when_negative(limit))
        .fetch_all(self.pool())
        .await.map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.get("id"),
                    event_type: r.get("type"),
                    date: r.get("date"),
                    client_id: r.get("client_id"),
                    user_id: r.get("user_id"),
                    ip: r.get("ip"),
                    user_agent: r.get("user_agent"),
                    details: json(r.get::<&str, _>("details"))?,
                })
            })
            .collect()
    }
}
