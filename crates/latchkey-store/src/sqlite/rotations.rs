//! Refresh-token rotations, committed together.
//!
//! A rotation is a write, and SQLite has one writer: under load, rotations
//! one transaction each queue behind the writer, and each pays the trips
//! between the async runtime and the connection's worker thread while the
//! others wait (on a busy machine the runtime's threads are signing tokens,
//! so those trips are slow). Instead, a rotation joins a queue, and whoever
//! gets the writer next runs every queued rotation in one transaction, one
//! hand-off: the writer's cost is shared by all of them (group commit).
//!
//! Each rotation is a guarded `UPDATE … RETURNING` (it claims the token, so of
//! two racing requests exactly one gets the row back, in one batch or across
//! batches) followed by the successor's `INSERT … WHERE changes() = 1`, so a
//! successor is stored exactly when its token was claimed. Its rows are
//! tagged with its place in the batch.

use std::sync::{Arc, Mutex, PoisonError};

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use tokio::sync::oneshot;

use super::conns::{Batch, Connections};
use crate::sql::rows::refresh_token_row;
use crate::sql::sessions::{REFRESH_TOKEN_COLUMNS, REFRESH_TOKEN_INSERT};
use crate::sql::to_json;
use crate::{RefreshTokenRow, StoreError, StoreResult};
use latchkey_core::clock::Timestamp;

/// Most rotations in one transaction (19 parameters each, far below
/// SQLite's limit of 32,766 a statement).
const MAX_BATCH: usize = 64;

/// One rotation: spend `token_digest` at `now`, store `next` under
/// `next_digest`.
pub(super) struct Rotation {
    pub now: Timestamp,
    pub tenant_id: String,
    pub token_digest: String,
    pub next_digest: String,
    pub next: RefreshTokenRow,
}

/// The claimed token's row, or `None` when it was not claimed.
type Outcome = StoreResult<Option<RefreshTokenRow>>;

#[derive(Debug, Default)]
pub(super) struct Rotations {
    queue: Arc<Mutex<Vec<Job>>>,
}

struct Job {
    rotation: Rotation,
    reply: oneshot::Sender<Outcome>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl Rotations {
    /// Rotates (see `GrantStore::redeem_refresh_token`): the claimed token's
    /// row, or `None` when it was not claimed (already rotated, expired, its
    /// grant revoked, unknown). It is done even if the caller stops waiting.
    pub(super) async fn rotate(
        &self,
        conns: &Connections,
        rotation: Rotation,
    ) -> StoreResult<Option<RefreshTokenRow>> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Job { rotation, reply });
        // Every rotation asks for a batch; the first to get the writer takes
        // the whole queue, and the later ones find it empty.
        let queue = Arc::clone(&self.queue);
        conns.spawn_batch(
            move || {
                let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
                let n = queue.len().min(MAX_BATCH);
                let jobs: Vec<Job> = queue.drain(..n).collect();
                drop(queue);
                (!jobs.is_empty()).then(|| (batch(&jobs), jobs))
            },
            answer_each,
        );
        answer
            .await
            .unwrap_or_else(|_| Err(unavailable("the rotation got no answer".into())))
    }
}

/// The transaction of `jobs`. Parameters are positional: sqlx binds a
/// batch's values statement by statement, in order.
fn batch(jobs: &[Job]) -> Batch {
    let mut sql = String::from("BEGIN IMMEDIATE;");
    for k in 0..jobs.len() {
        sql.push_str(&format!(
            " UPDATE refresh_tokens SET rotated_at = ? WHERE token_digest = ? AND tenant_id = ? \
               AND rotated_at IS NULL AND expires_at > ? AND idle_expires_at > ? \
               AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL) \
               RETURNING {k} AS job, {REFRESH_TOKEN_COLUMNS}; \
             INSERT INTO {REFRESH_TOKEN_INSERT} \
               SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE changes() = 1;"
        ));
    }
    sql.push_str(" COMMIT;");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for job in jobs {
        let (r, n) = (&job.rotation, &job.rotation.next);
        query = query
            // the UPDATE
            .bind(r.now)
            .bind(r.token_digest.clone())
            .bind(r.tenant_id.clone())
            .bind(r.now)
            .bind(r.now)
            // the INSERT
            .bind(r.next_digest.clone())
            .bind(n.grant_id.clone())
            .bind(r.tenant_id.clone())
            .bind(n.client_id.clone())
            .bind(n.user_id.clone())
            .bind(n.scope.clone())
            .bind(n.audience.clone())
            .bind(n.auth_time)
            .bind(to_json(&n.amr))
            .bind(n.created_at)
            .bind(n.expires_at)
            .bind(n.idle_expires_at)
            .bind(n.dpop_jkt.clone())
            .bind(n.host.clone());
    }
    query
}

/// A failure the caller answers with 503: the batch did not commit.
fn unavailable(message: String) -> StoreError {
    StoreError::Unavailable(message)
}

/// Hands each job its row (if its token was claimed) or the batch's error.
fn answer_each(jobs: Vec<Job>, result: StoreResult<Vec<SqliteRow>>) {
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => {
            // Rolled back, nothing spent: each request may be tried again.
            let message = format!("rotation batch: {e}");
            for job in jobs {
                let _ = job.reply.send(Err(unavailable(message.clone())));
            }
            return;
        }
    };
    let mut claimed: Vec<Option<&SqliteRow>> = vec![None; jobs.len()];
    for row in &rows {
        let k = row.get::<i64, _>("job");
        if let Some(slot) = usize::try_from(k).ok().and_then(|k| claimed.get_mut(k)) {
            *slot = Some(row);
        }
    }
    for (job, row) in jobs.into_iter().zip(claimed) {
        let outcome = row.map(|r| refresh_token_row(r, "")).transpose();
        let _ = job.reply.send(outcome);
    }
}
