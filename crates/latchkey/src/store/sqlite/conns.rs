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

/// Statements run together on the writer (see [`Connections::spawn_batch`]).
pub(super) type Batch = Query<'static, Sqlite, SqliteArguments>;

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

    /// Runs a batch on the writer in a task of its own: once the writer is
    /// held, `batch` gives the statements (from `BEGIN IMMEDIATE` to
    /// `COMMIT`, sent as one hand-off, so a small transaction costs one trip
    /// to the worker thread instead of one per statement) with a context,
    /// or nothing to do; `done` gets the context and the outcome. The batch
    /// runs to its end whoever waits for it (the worker stops between
    /// statements once nobody reads the results, which would leave the
    /// transaction open), and a failure rolls it back.
    pub(super) fn spawn_batch<C: Send + 'static>(
        &self,
        batch: impl FnOnce() -> Option<(Batch, C)> + Send + 'static,
        done: impl FnOnce(C, sqlx::Result<Vec<SqliteRow>>) + Send + 'static,
    ) {
        let writer = Arc::clone(&self.writer);
        tokio::spawn(async move {
            let mut writer = writer.lock().await;
            let Some((query, context)) = batch() else {
                return;
            };
            let result = query.fetch_all(&mut *writer).await;
            if result.is_err() {
                // Fails harmlessly when the batch failed before `BEGIN` took.
                let _ = sqlx::query("ROLLBACK").execute(&mut *writer).await;
            }
            drop(writer);
            done(context, result);
        });
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

    /// Runs `sql` through `spawn_batch` and waits for its outcome.
    async fn batch(conns: &Connections, sql: &'static str) -> sqlx::Result<Vec<SqliteRow>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        conns.spawn_batch(
            move || Some((sqlx::query(sql), tx)),
            |tx, result| {
                let _ = tx.send(result);
            },
        );
        rx.await.unwrap()
    }

    #[tokio::test]
    async fn a_batch_runs_to_its_end_when_nobody_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let conns = open(&dir).await;
        // A long statement in the middle, and nobody reading the results.
        conns.spawn_batch(
            || {
                Some((
                    sqlx::query(
                        "BEGIN IMMEDIATE; INSERT INTO t VALUES (1); \
                         WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000) \
                           SELECT count(*) FROM c; \
                         INSERT INTO t VALUES (2); COMMIT;",
                    ),
                    (),
                ))
            },
            |(), _| {},
        );
        tokio::task::yield_now().await;
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
        let failed = batch(
            &conns,
            "BEGIN IMMEDIATE; INSERT INTO t VALUES (1); INSERT INTO t VALUES (NULL); COMMIT;",
        )
        .await;
        assert!(failed.is_err());
        sqlx::query("INSERT INTO t VALUES (3)")
            .execute(&mut *conns.writer().await)
            .await
            .unwrap();
        assert_eq!(committed(&conns).await, [3]);
    }

    #[tokio::test]
    async fn nothing_to_do_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let conns = open(&dir).await;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        conns.spawn_batch(|| None::<(Batch, ())>, |(), _| {});
        conns.spawn_batch(
            move || {
                let _ = tx.send(());
                None::<(Batch, ())>
            },
            |(), _| {},
        );
        rx.await.unwrap();
        assert_eq!(committed(&conns).await, Vec::<i64>::new());
    }
}
