//! The store's own SQLite connections: one writer and a few readers, each
//! behind an async mutex.
//!
//! Every statement on an sqlx SQLite connection is a hand-off to the
//! connection's worker thread and back. sqlx's pool adds a ping (another
//! hand-off) when a connection is taken and another when it is returned, so
//! a pooled read cost three; here it costs one. Writes go through the one
//! writer in the order they asked (tokio's mutex is fair): SQLite has a
//! single writer per database, and writers on several connections would
//! meet its busy handler, which sleeps. Readers run beside the writer (WAL).
//! Another process writing the same file (`tenant apply`) still waits on the
//! busy timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{ConnectOptions, Sqlite};
use tokio::sync::{Mutex, MutexGuard};

#[derive(Debug)]
pub(super) struct Connections {
    writer: Arc<Mutex<SqliteConnection>>,
    readers: Vec<Mutex<SqliteConnection>>,
    /// Where the next reader search starts, so reads spread over readers.
    next: AtomicUsize,
}

impl Connections {
    /// Opens the writer and `readers` (at least one) read-only connections.
    pub(super) async fn open(opts: &SqliteConnectOptions, readers: usize) -> sqlx::Result<Self> {
        let writer = opts.connect().await?;
        let mut opened = Vec::with_capacity(readers.max(1));
        for _ in 0..readers.max(1) {
            opened.push(Mutex::new(opts.clone().read_only(true).connect().await?));
        }
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            readers: opened,
            next: AtomicUsize::new(0),
        })
    }

    /// The connection for every write (and a transaction's reads).
    pub(super) async fn writer(&self) -> MutexGuard<'_, SqliteConnection> {
        self.writer.lock().await
    }

    /// Runs `batch`, several statements from `BEGIN IMMEDIATE` to `COMMIT`,
    /// on the writer as one hand-off: the statements of a small transaction
    /// cost one trip to the worker thread instead of one each. It runs to
    /// its end even if the caller stops waiting (the worker stops between
    /// statements once nobody reads the results, which would leave the
    /// transaction open), and a failure rolls the transaction back.
    pub(super) async fn write_batch(
        &self,
        batch: Query<'static, Sqlite, SqliteArguments>,
    ) -> sqlx::Result<Vec<SqliteRow>> {
        let mut writer = Arc::clone(&self.writer).lock_owned().await;
        tokio::spawn(async move {
            let result = batch.fetch_all(&mut *writer).await;
            if result.is_err() {
                // Fails harmlessly when the batch failed before `BEGIN` took.
                let _ = sqlx::query("ROLLBACK").execute(&mut *writer).await;
            }
            result
        })
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("write batch: {e}")))?
    }

    /// A free reader if there is one; otherwise waits its turn on one.
    pub(super) async fn reader(&self) -> MutexGuard<'_, SqliteConnection> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        for i in 0..n {
            if let Ok(guard) = self.readers[(start + i) % n].try_lock() {
                return guard;
            }
        }
        self.readers[start % n].lock().await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn open(dir: &tempfile::TempDir) -> Connections {
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let conns = Connections::open(&opts, 2).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER NOT NULL)")
            .execute(&mut *conns.writer().await)
            .await
            .unwrap();
        conns
    }

    async fn committed(conns: &Connections) -> Vec<i64> {
        sqlx::query_scalar("SELECT x FROM t ORDER BY x")
            .fetch_all(&mut *conns.reader().await)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_batch_runs_to_its_end_when_its_caller_goes_away() {
        let dir = tempfile::tempdir().unwrap();
        let conns = open(&dir).await;
        // A long statement in the middle: the caller is gone before it ends.
        let batch = sqlx::query(
            "BEGIN IMMEDIATE; INSERT INTO t VALUES (1); \
             WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000) \
               SELECT count(*) FROM c; \
             INSERT INTO t VALUES (2); COMMIT;",
        );
        let _ = tokio::time::timeout(Duration::ZERO, conns.write_batch(batch)).await;
        // The next write waits for the batch, then commits on its own.
        sqlx::query("INSERT INTO t VALUES (3)")
            .execute(&mut *conns.writer().await)
            .await
            .unwrap();
        assert_eq!(committed(&conns).await, [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_failed_batch_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let conns = open(&dir).await;
        let batch = sqlx::query(
            "BEGIN IMMEDIATE; INSERT INTO t VALUES (1); INSERT INTO t VALUES (NULL); COMMIT;",
        );
        assert!(conns.write_batch(batch).await.is_err());
        sqlx::query("INSERT INTO t VALUES (3)")
            .execute(&mut *conns.writer().await)
            .await
            .unwrap();
        assert_eq!(committed(&conns).await, [3]);
    }
}
