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
//!
//! A write waits for its turn at most [`Connections::wait`]; past it, it
//! fails as unavailable (503) instead of queueing without bound behind a
//! database locked by another process. A write that failed leaves the writer
//! clean: when SQLite ended a transaction on its own (a full disk, an I/O
//! error) the connection still counts it open, and the next write finds that
//! out and replaces the connection before it begins.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{ConnectOptions, Connection, Sqlite};
use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard};

use crate::errors::db;
use crate::{StoreError, StoreResult};

/// Statements run together on the writer (see [`Connections::spawn_batch`]).
pub(super) type Batch = Query<'static, Sqlite, SqliteArguments>;

#[derive(Debug)]
pub(super) struct Connections {
    writer: Arc<Mutex<Slot>>,
    /// How the writer is opened again when it has to be replaced.
    opts: Arc<SqliteConnectOptions>,
    /// The longest a write waits for its turn at the writer.
    wait: Duration,
    readers: Vec<Mutex<SqliteConnection>>,
    /// Where the next reader search starts, so reads spread over readers.
    next: AtomicUsize,
}

/// The writer connection, and whether its last user left it in doubt.
#[derive(Debug)]
struct Slot {
    conn: SqliteConnection,
    suspect: bool,
}

/// The writer, held: at most one at a time, handed out clean.
#[derive(Debug)]
pub(super) struct Writer(OwnedMutexGuard<Slot>);

impl Writer {
    /// Marks the connection for a check before its next use (a failure left
    /// it in a state nothing here can see).
    fn suspect(&mut self) {
        self.0.suspect = true;
    }
}

impl Deref for Writer {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.0.conn
    }
}

impl DerefMut for Writer {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.0.conn
    }
}

/// The error of a write that did not get the writer in time.
fn busy(wait: Duration) -> StoreError {
    StoreError::Unavailable(format!(
        "the database writer stayed busy for {} ms",
        wait.as_millis()
    ))
}

/// Whether `ROLLBACK` failed only because nothing was left to roll back.
fn nothing_to_roll_back(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.message().contains("no transaction is active"))
}

/// Takes the writer within `wait`, cleaned up if its last user left it
/// dirty.
async fn acquire(
    writer: &Arc<Mutex<Slot>>,
    opts: &SqliteConnectOptions,
    wait: Duration,
) -> StoreResult<Writer> {
    let mut slot = tokio::time::timeout(wait, Arc::clone(writer).lock_owned())
        .await
        .map_err(|_| busy(wait))?;
    if slot.suspect || slot.conn.is_in_transaction() {
        heal(&mut slot, opts).await?;
    }
    Ok(Writer(slot))
}

/// Leaves the writer without a transaction, at depth zero.
async fn heal(slot: &mut Slot, opts: &SqliteConnectOptions) -> StoreResult<()> {
    // A transaction dropped by its user is rolled back by the connection's
    // worker, in order: once a ping comes back, that rollback is done.
    if !slot.suspect && slot.conn.ping().await.is_ok() && !slot.conn.is_in_transaction() {
        return Ok(());
    }
    // Still counted open: SQLite rolled it back itself (a full disk, an I/O
    // error), so the rollback found nothing to undo and the connection
    // believes it is inside a transaction for good. Or the connection
    // failed in a way nothing here can see. A new connection knows neither.
    tracing::warn!("replacing the SQLite writer connection after a failed write");
    let fresh = opts.connect().await.map_err(db)?;
    let old = std::mem::replace(&mut slot.conn, fresh);
    slot.suspect = false;
    // Closing rolls back whatever SQLite still held open on it.
    if let Err(e) = old.close().await {
        tracing::debug!(error = %e, "closing the replaced SQLite writer");
    }
    Ok(())
}

impl Connections {
    /// Opens the writer and `readers` (at least one) read-only connections.
    /// A write waits at most `wait` for its turn.
    pub(super) async fn open(
        opts: &SqliteConnectOptions,
        readers: usize,
        wait: Duration,
    ) -> StoreResult<Self> {
        let writer = opts.connect().await.map_err(db)?;
        let mut opened = Vec::with_capacity(readers.max(1));
        for _ in 0..readers.max(1) {
            opened.push(Mutex::new(
                opts.clone().read_only(true).connect().await.map_err(db)?,
            ));
        }
        Ok(Self {
            writer: Arc::new(Mutex::new(Slot {
                conn: writer,
                suspect: false,
            })),
            opts: Arc::new(opts.clone()),
            wait,
            readers: opened,
            next: AtomicUsize::new(0),
        })
    }

    /// The connection for every write (and a transaction's reads), clean;
    /// `Unavailable` when it stayed busy for the whole wait.
    pub(super) async fn writer(&self) -> StoreResult<Writer> {
        acquire(&self.writer, &self.opts, self.wait).await
    }

    /// Whether a write could be made now: takes the writer as a write does,
    /// then the database's write lock, and changes a row in a transaction
    /// rolled back, so a read-only file, a lock held elsewhere or a writer
    /// that cannot write fail here. Writes nothing.
    pub(super) async fn probe(&self) -> StoreResult<()> {
        let mut writer = self.writer().await?;
        let result = sqlx::query(
            "BEGIN IMMEDIATE; UPDATE meta SET value = value WHERE key = 'master_key_check'; ROLLBACK;",
        )
        .execute(&mut *writer)
        .await;
        if let Err(e) = &result {
            rollback(&mut writer).await;
            tracing::debug!(error = %e, "the write probe failed");
        }
        result.map(|_| ()).map_err(db)
    }

    /// Runs a batch on the writer in a task of its own: once the writer is
    /// held, `batch` gives the statements (from `BEGIN IMMEDIATE` to
    /// `COMMIT`, sent as one hand-off, so a small transaction costs one trip
    /// to the worker thread instead of one per statement) with a context,
    /// or nothing to do; `done` gets the context and the outcome. The batch
    /// runs to its end whoever waits for it (the worker stops between
    /// statements once nobody reads the results, which would leave the
    /// transaction open), and a failure rolls it back. When the writer
    /// stays busy for the whole wait, `done` gets that error and nothing
    /// runs.
    pub(super) fn spawn_batch<C: Send + 'static>(
        &self,
        batch: impl FnOnce() -> Option<(Batch, C)> + Send + 'static,
        done: impl FnOnce(C, StoreResult<Vec<SqliteRow>>) + Send + 'static,
    ) {
        let (writer, opts, wait) = (Arc::clone(&self.writer), Arc::clone(&self.opts), self.wait);
        tokio::spawn(async move {
            let mut writer = match acquire(&writer, &opts, wait).await {
                Ok(w) => w,
                Err(e) => {
                    if let Some((_, context)) = batch() {
                        done(context, Err(e));
                    }
                    return;
                }
            };
            let Some((query, context)) = batch() else {
                return;
            };
            let result = query.fetch_all(&mut *writer).await;
            if result.is_err() {
                rollback(&mut writer).await;
            }
            drop(writer);
            done(context, result.map_err(db));
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

/// Rolls back a batch that failed (harmless when it failed before `BEGIN`
/// took, or SQLite rolled it back itself); a rollback that fails otherwise
/// leaves the connection to be replaced before its next use.
async fn rollback(writer: &mut Writer) {
    if let Err(e) = sqlx::query("ROLLBACK").execute(&mut **writer).await
        && !nothing_to_roll_back(&e)
    {
        tracing::warn!(error = %e, "rolling back a failed write");
        writer.suspect();
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
        let conns = Connections::open(&opts, 2, Duration::from_secs(5))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER NOT NULL)")
            .execute(&mut *conns.writer().await.unwrap())
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
    async fn batch(conns: &Connections, sql: &'static str) -> StoreResult<Vec<SqliteRow>> {
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
            .execute(&mut *conns.writer().await.unwrap())
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
            .execute(&mut *conns.writer().await.unwrap())
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
