//! SQLite: authentication methods, enrollments, password history, audit.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Row};

use super::{SqliteStore, to_json};
use crate::clock::Timestamp;
use crate::store::errors::db;
use crate::store::*;

fn method_row(r: &SqliteRow) -> StoreResult<MethodRow> {
    method_row_as(r, "")
}

/// A method from columns named with `prefix` (joined queries).
fn method_row_as(r: &SqliteRow, prefix: &str) -> StoreResult<MethodRow> {
    let col = |c: &str| format!("{prefix}{c}");
    let data: String = r.get(col("data").as_str());
    Ok(MethodRow {
        id: r.get(col("id").as_str()),
        user_id: r.get(col("user_id").as_str()),
        method_type: factor_type(r.get(col("type").as_str()))?,
        name: r.get(col("name").as_str()),
        data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: r.get(col("created_at").as_str()),
        last_auth_at: r.get(col("last_auth_at").as_str()),
        last_otp_step: r.get(col("last_otp_step").as_str()),
        credential_id: r.get(col("credential_id").as_str()),
    })
}

/// `keep` as parameters: whether to check, the types (JSON), the password.
fn keep_params(keep: Option<LoginMethods<'_>>) -> (bool, String, bool) {
    match keep {
        Some(k) => (true, to_json(&k.types), k.password),
        None => (false, "[]".into(), false),
    }
}

const METHOD_COLUMNS: &str =
    "id, user_id, type, name, data, created_at, last_auth_at, last_otp_step, credential_id";

/// Inserts a method inside a transaction; a credential already registered
/// in the tenant is a `Conflict`.
async fn insert_method(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    tenant_id: &str,
    row: &MethodRow,
) -> StoreResult<()> {
    sqlx::query(
            "INSERT INTO authentication_methods (tenant_id, id, user_id, type, name, data, created_at, last_auth_at, \
               last_otp_step, credential_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

#[async_trait]
impl MethodStore for SqliteStore {
    async fn methods(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<MethodRow>> {
        let sql = format!(
            "SELECT {METHOD_COLUMNS} FROM authentication_methods WHERE tenant_id = ? AND user_id = ? \
             ORDER BY created_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(&mut *self.reader().await)
            .await
            .map_err(db)?;
        rows.iter().map(method_row).collect()
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
        // One statement, one trip to the database: the user's columns on
        // every row, the method's (if any) prefixed with `m_`.
        let sql = format!(
            "SELECT {} FROM users u LEFT JOIN authentication_methods m \
             ON m.tenant_id = u.tenant_id AND m.user_id = u.user_id \
             WHERE u.tenant_id = ? AND u.user_id = ? ORDER BY m.created_at, m.id",
            joined_columns(super::USER_COLUMNS, METHOD_COLUMNS)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(&mut *self.reader().await)
            .await
            .map_err(db)?;
        let found = match rows.first() {
            None => None,
            Some(first) => {
                let user = super::user_row(first)?;
                let mut methods = Vec::new();
                for r in &rows {
                    if r.get::<Option<String>, _>("m_id").is_some() {
                        methods.push(method_row_as(r, "m_")?);
                    }
                }
                Some((user, methods))
            }
        };
        self.cache.put_user(ticket, tenant_id, user_id, &found);
        Ok(found)
    }

    async fn method(
        &self,
        tenant_id: &str,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<MethodRow>> {
        let sql = format!(
            "SELECT {METHOD_COLUMNS} FROM authentication_methods WHERE tenant_id = ? AND user_id = ? AND id = ?"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(user_id)
            .bind(id)
            .fetch_optional(&mut *self.reader().await)
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
            "SELECT {METHOD_COLUMNS} FROM authentication_methods WHERE tenant_id = ? AND credential_id = ?"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(credential_id)
            .fetch_optional(&mut *self.reader().await)
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
        let owner = sqlx::query(
            "UPDATE authentication_methods SET data = ?, last_auth_at = COALESCE(?, last_auth_at) \
             WHERE tenant_id = ? AND id = ? AND data = ? RETURNING user_id",
        )
        .bind(to_json(data))
        .bind(last_auth_at)
        .bind(tenant_id)
        .bind(id)
        .bind(to_json(previous))
        .fetch_optional(&mut *self.writer().await?)
        .await
        .map_err(db)?;
        match owner {
            Some(r) => {
                self.cache.forget_user(tenant_id, r.get("user_id"));
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
        let done = sqlx::query(
            "UPDATE authentication_methods SET name = ? WHERE tenant_id = ? AND user_id = ? AND id = ?",
        )
        .bind(name)
        .bind(tenant_id)
        .bind(user_id)
        .bind(id)
        .execute(&mut *self.writer().await?)
        .await.map_err(db)?;
        self.cache.forget_user(tenant_id, user_id);
        Ok(done.rows_affected() == 1)
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
        let done = sqlx::query(
            "DELETE FROM authentication_methods WHERE tenant_id = ?1 AND user_id = ?2 AND id = ?3 \
             AND (?4 = 0 \
               OR EXISTS (SELECT 1 FROM authentication_methods o WHERE o.tenant_id = ?1 \
                 AND o.user_id = ?2 AND o.id <> ?3 AND o.type IN (SELECT value FROM json_each(?5))) \
               OR (?6 = 1 AND EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = ?1 \
                 AND u.user_id = ?2 AND u.password_hash IS NOT NULL)))",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(id)
        .bind(guarded)
        .bind(types)
        .bind(password)
        .execute(&mut *writer)
        .await.map_err(db)?;
        if done.rows_affected() == 1 {
            drop(writer);
            self.cache.forget_user(tenant_id, user_id);
            return Ok(Removal::Removed);
        }
        let left = sqlx::query(
            "SELECT 1 FROM authentication_methods WHERE tenant_id = ? AND user_id = ? AND id = ?",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(id)
        .fetch_optional(&mut *writer)
        .await
        .map_err(db)?;
        Ok(if left.is_some() {
            Removal::LastLogin
        } else {
            Removal::Missing
        })
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
            "UPDATE authentication_methods SET last_otp_step = ?, last_auth_at = ? \
             WHERE tenant_id = ? AND user_id = ? AND id = ? AND (last_otp_step IS NULL OR last_otp_step < ?)",
        )
        .bind(step)
        .bind(at)
        .bind(tenant_id)
        .bind(user_id)
        .bind(id)
        .bind(step)
        .execute(&mut *self.writer().await?)
        .await.map_err(db)?;
        self.cache.forget_user(tenant_id, user_id);
        Ok(done.rows_affected() == 1)
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
        let done = sqlx::query(
            "UPDATE users SET password_hash = NULL, updated_at = ?3 \
             WHERE tenant_id = ?1 AND user_id = ?2 AND password_hash IS NOT NULL \
             AND (?4 = 0 OR EXISTS (SELECT 1 FROM authentication_methods o WHERE o.tenant_id = ?1 \
               AND o.user_id = ?2 AND o.type IN (SELECT value FROM json_each(?5))))",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(at)
        .bind(guarded)
        .bind(types)
        .execute(&mut *writer)
        .await
        .map_err(db)?;
        if done.rows_affected() == 1 {
            drop(writer);
            self.cache.forget_user(tenant_id, user_id);
            return Ok(Removal::Removed);
        }
        let left = sqlx::query(
            "SELECT 1 FROM users WHERE tenant_id = ? AND user_id = ? AND password_hash IS NOT NULL",
        )
        .bind(tenant_id)
        .bind(user_id)
        .fetch_optional(&mut *writer)
        .await
        .map_err(db)?;
        Ok(if left.is_some() {
            Removal::LastLogin
        } else {
            Removal::Missing
        })
    }

    async fn create_enrollment(
        &self,
        tenant_id: &str,
        session_digest: &str,
        row: &EnrollmentRow,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO enrollments (session_digest, tenant_id, user_id, client_id, method_type, method_id, \
               state, attempts, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&mut *self.writer().await?)
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
             FROM enrollments WHERE session_digest = ? AND tenant_id = ? AND expires_at > ?",
        )
        .bind(session_digest)
        .bind(tenant_id)
        .bind(now)
        .fetch_optional(&mut *self.reader().await)
        .await.map_err(db)?;
        row.map(|r| {
            let state: String = r.get("state");
            Ok(EnrollmentRow {
                user_id: r.get("user_id"),
                client_id: r.get("client_id"),
                method_type: r.get("method_type"),
                method_id: r.get("method_id"),
                state: serde_json::from_str(&state)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
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
            "UPDATE enrollments SET attempts = attempts + 1 WHERE session_digest = ? AND tenant_id = ? \
             RETURNING attempts",
        )
        .bind(session_digest)
        .bind(tenant_id)
        .fetch_optional(&mut *self.writer().await?)
        .await.map_err(db)?;
        let attempts: i64 = row.map_or(max_attempts, |r| r.get("attempts"));
        if attempts >= max_attempts {
            sqlx::query("DELETE FROM enrollments WHERE session_digest = ? AND tenant_id = ?")
                .bind(session_digest)
                .bind(tenant_id)
                .execute(&mut *self.writer().await?)
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
        // IMMEDIATE takes the write lock up front (see mod.rs).
        let mut writer = self.writer().await?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let consumed = sqlx::query(
            "DELETE FROM enrollments WHERE session_digest = ? AND tenant_id = ? AND expires_at > ?",
        )
        .bind(session_digest)
        .bind(tenant_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if consumed.rows_affected() != 1 {
            return Ok(Finish::Gone);
        }
        let capped = max_methods.zip(completion.user_id());
        let count_sql = METHOD_COUNT_SQL.replace('$', "?");
        let before = match capped {
            Some((_, user_id)) => {
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql.clone()))
                    .bind(tenant_id)
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?
            }
            None => 0,
        };
        match completion {
            Completion::AddMethod { row, replace_type } => {
                if *replace_type {
                    sqlx::query(
                        "DELETE FROM authentication_methods WHERE tenant_id = ? AND user_id = ? AND type = ?",
                    )
                    .bind(tenant_id)
                    .bind(&row.user_id)
                    .bind(row.method_type.as_str())
                    .execute(&mut *tx)
                    .await.map_err(db)?;
                }
                insert_method(&mut tx, tenant_id, row).await?;
            }
            Completion::Consume => {}
            Completion::SignUp { user, row } => {
                sqlx::query(
                    "INSERT INTO users (tenant_id, user_id, connection, email, email_lower, email_verified, \
                       password_hash, profile, blocked, last_password_reset, created_at, updated_at, \
                       signed_up, seeded_password) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(tenant_id)
                .bind(&user.user_id)
                .bind(&user.connection)
                .bind(&user.email)
                .bind(user.email.to_lowercase())
                .bind(i64::from(user.email_verified))
                .bind(&user.password_hash)
                .bind(to_json(&user.profile))
                .bind(i64::from(user.blocked))
                .bind(user.last_password_reset)
                .bind(user.created_at)
                .bind(user.updated_at)
                .bind(i64::from(user.signed_up))
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
            Completion::SetPassword { user_id, hash, at } => {
                let old = sqlx::query(
                    "SELECT password_hash FROM users WHERE tenant_id = ? AND user_id = ?",
                )
                .bind(tenant_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                if let Some(Some(old)) = old.map(|r| r.get::<Option<String>, _>("password_hash")) {
                    sqlx::query(
                        "INSERT INTO password_history (tenant_id, user_id, hash, created_at) VALUES (?, ?, ?, ?)",
                    )
                    .bind(tenant_id)
                    .bind(user_id)
                    .bind(old)
                    .bind(at)
                    .execute(&mut *tx)
                    .await.map_err(db)?;
                }
                sqlx::query(
                    "UPDATE users SET password_hash = ?, last_password_reset = ?, updated_at = ? \
                     WHERE tenant_id = ? AND user_id = ?",
                )
                .bind(hash)
                .bind(at)
                .bind(at)
                .bind(tenant_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                sqlx::query("DELETE FROM login_failures WHERE tenant_id = ? AND user_id = ?")
                    .bind(tenant_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        if let Some((max, user_id)) = capped {
            let after = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql))
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
        let rows = sqlx::query(
            "SELECT hash FROM password_history WHERE tenant_id = ? AND user_id = ? \
             ORDER BY created_at DESC, rowid DESC LIMIT ?",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(limit)
        .fetch_all(&mut *self.reader().await)
        .await
        .map_err(db)?;
        Ok(rows.iter().map(|r| r.get("hash")).collect())
    }

    async fn record_audit(&self, tenant_id: &str, e: &AuditEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, tenant_id, type, date, client_id, user_id, ip, user_agent, details) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&mut *self.writer().await?)
        .await.map_err(db)?;
        Ok(())
    }

    async fn audit_events(&self, tenant_id: &str, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT id, type, date, client_id, user_id, ip, user_agent, details FROM \
             (SELECT rowid AS seq, * FROM audit_events WHERE tenant_id = ? ORDER BY date DESC, rowid DESC LIMIT ?) \
             ORDER BY date, seq",
        )
        .bind(tenant_id)
        .bind(limit)
        .fetch_all(&mut *self.reader().await)
        .await.map_err(db)?;
        rows.iter()
            .map(|r| {
                let details: String = r.get("details");
                Ok(AuditEvent {
                    id: r.get("id"),
                    event_type: r.get("type"),
                    date: r.get("date"),
                    client_id: r.get("client_id"),
                    user_id: r.get("user_id"),
                    ip: r.get("ip"),
                    user_agent: r.get("user_agent"),
                    details: serde_json::from_str(&details)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }
}
