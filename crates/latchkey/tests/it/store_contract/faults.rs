//! The store under faults made for real from outside it: a full disk and a
//! database locked by someone else. Each fault `x` runs on both backends,
//! as `faults::x::sqlite` and `faults::x::postgres`.
//!
//! SQLite: the file is capped (`max_page_count`) and another connection
//! fills it up to the cap, as another program filling the disk would; it
//! frees the space again by dropping what it wrote. A write that needs a page
//! then fails with `SQLITE_FULL`, and SQLite rolls the whole transaction back
//! itself. The lock is another connection's `BEGIN IMMEDIATE`.
//!
//! PostgreSQL: a trigger raises `disk_full` (53100) on every insert and
//! update, as the server does when its disk is full; the lock is another
//! session's `LOCK TABLE … IN EXCLUSIVE MODE` (reads go on, writes wait).

use std::path::PathBuf;
use std::time::Duration;

use latchkey::store::sqlite::{SqliteOptions, SqliteStore};
use sqlx::Connection;

use super::*;

/// The SQLite file's cap, in pages (4 KiB).
const CAP: u64 = 2000;
/// A payload no page has room for.
const BIG: usize = 300_000;
/// Guards against a wait without bound: far beyond every wait the store is
/// given here (one second), so reaching it means a write never gave up.
const HANG: Duration = Duration::from_secs(60);

/// A way to hurt the database from outside the store.
enum Side {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

/// A lock held on the database by another connection, until `release`.
enum Held {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Held {
    async fn release(self) {
        match self {
            Held::Sqlite(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
            Held::Postgres(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
    }
}

impl Side {
    async fn sqlite(path: &std::path::Path) -> sqlx::SqliteConnection {
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap()
    }

    async fn postgres(url: &str, schema: &str) -> sqlx::PgConnection {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
            .execute(&mut c)
            .await
            .unwrap();
        c
    }

    /// Fills the disk: from now on a write that needs room fails.
    async fn fill(&self) {
        match self {
            Side::Sqlite(path) => {
                let mut c = Self::sqlite(path).await;
                sqlx::query("CREATE TABLE filler (b BLOB)")
                    .execute(&mut c)
                    .await
                    .unwrap();
                loop {
                    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
                        .fetch_one(&mut c)
                        .await
                        .unwrap();
                    let missing = CAP as i64 - pages;
                    if missing < 0 {
                        break;
                    }
                    // One row a page.
                    sqlx::query(
                        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
                         INSERT INTO filler SELECT zeroblob(3500) FROM n",
                    )
                    .bind(missing + 1)
                    .execute(&mut c)
                    .await
                    .unwrap();
                }
            }
            Side::Postgres { url, schema } => {
                let mut c = Self::postgres(url, schema).await;
                sqlx::query(
                    "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' \
                     USING ERRCODE = 'disk_full'; END $$",
                )
                .execute(&mut c)
                .await
                .unwrap();
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 \
                     AND tablename <> '_sqlx_migrations'",
                )
                .bind(schema)
                .fetch_all(&mut c)
                .await
                .unwrap();
                for t in tables {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON {t} \
                         FOR EACH ROW EXECUTE FUNCTION disk_full()"
                    )))
                    .execute(&mut c)
                    .await
                    .unwrap();
                }
            }
        }
    }

    /// Frees the disk again.
    async fn free(&self) {
        match self {
            Side::Sqlite(path) => {
                let mut c = Self::sqlite(path).await;
                sqlx::query("DROP TABLE filler")
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
            Side::Postgres { url, schema } => {
                let mut c = Self::postgres(url, schema).await;
                sqlx::query("DROP FUNCTION disk_full() CASCADE")
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }
    }

    /// Locks the database against writes, as another process would.
    async fn lock(&self) -> Held {
        match self {
            Side::Sqlite(path) => {
                let mut c = Self::sqlite(path).await;
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut c)
                    .await
                    .unwrap();
                Held::Sqlite(c)
            }
            Side::Postgres { url, schema } => {
                let mut c = Self::postgres(url, schema).await;
                sqlx::query("BEGIN").execute(&mut c).await.unwrap();
                sqlx::query(
                    "LOCK TABLE meta, users, enrollments, audit_events, authentication_methods \
                     IN EXCLUSIVE MODE",
                )
                .execute(&mut c)
                .await
                .unwrap();
                Held::Postgres(c)
            }
        }
    }
}

async fn on_sqlite<F, Fut>(body: F)
where
    F: FnOnce(S, Side) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let options = SqliteOptions {
        write_wait: Duration::from_secs(1),
        max_pages: Some(CAP),
    };
    let store = SqliteStore::open_with(&path, Arc::new(ManualClock::new(T)), &options)
        .await
        .unwrap();
    body(Arc::new(store), Side::Sqlite(path)).await;
}

async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(S, Side) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    in_schema(|url, schema| async move {
        let options = PoolOptions {
            max_connections: 12,
            acquire_timeout_secs: 1,
            schema: Some(schema.clone()),
            ..PoolOptions::default()
        };
        let store = PostgresStore::connect(&url, options).await.unwrap();
        let pool = store.pool().clone();
        body(Arc::new(store), Side::Postgres { url, schema }).await;
        pool.close().await;
    })
    .await;
}

macro_rules! fault {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::on_sqlite(super::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::on_postgres(super::$name).await;
            }
        }
    )*};
}

fault!(
    a_full_disk_fails_writes_as_unavailable_and_leaves_the_store_writable,
    a_locked_database_fails_writes_as_unavailable_in_bounded_time
);

/// Asserts `e` is answered as "try again later" (503), not as a bug.
fn assert_unavailable<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    match r {
        Err(e) => assert!(e.is_unavailable(), "{what}: {e}"),
        Ok(v) => panic!("{what}: succeeded on a full disk: {v:?}"),
    }
}

/// A write transaction that fails on a full disk (SQLite rolls it back
/// itself) leaves the store able to write once there is room again: no
/// writer stuck "inside" a transaction that no longer exists.
async fn a_full_disk_fails_writes_as_unavailable_and_leaves_the_store_writable(s: S, side: Side) {
    let t = tenant(&s, "acme").await;
    s.upsert_user(&t, &user("u1", "u1@example.com"))
        .await
        .unwrap();
    s.add_signing_key(&t, &key("k1", T)).await.unwrap();
    s.create_enrollment(&t, "e1", &enrollment("u1", "totp|m1", T + 300))
        .await
        .unwrap();
    let big = "x".repeat(BIG);
    let add = |data: &str| Completion::AddMethod {
        row: MethodRow {
            data: json!({ "blob": data }),
            ..method("totp|m1", "u1", "totp", T)
        },
        replace_type: false,
    };

    side.fill().await;
    // Each transaction fails as unavailable, and each in turn: the one
    // before leaves nothing behind that refuses the next.
    for _ in 0..2 {
        assert_unavailable(
            "complete_enrollment",
            s.complete_enrollment(&t, "e1", &add(&big), T).await,
        );
        assert_unavailable(
            "upsert_tenant",
            s.upsert_tenant("acme", "x", &format!("{{\"big\":\"{big}\"}}"), &[], T)
                .await,
        );
        assert_unavailable(
            "add_signing_key",
            s.add_signing_key(
                &t,
                &SigningKeyRow {
                    sealed_private: big.clone(),
                    ..key("k2", T + 1)
                },
            )
            .await,
        );
    }

    side.free().await;
    // Nothing of the failed transactions was written: the enrollment is
    // still there to complete, the tenant and its key are as they were.
    assert!(
        s.complete_enrollment(&t, "e1", &add("small"), T)
            .await
            .unwrap()
    );
    assert_eq!(s.methods(&t, "u1").await.unwrap().len(), 1);
    assert_eq!(
        s.tenant_by_name("acme").await.unwrap().unwrap().config,
        "{}"
    );
    let kids: Vec<String> = s
        .signing_keys(&t)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["k1"]);
    // And every kind of write goes through again.
    s.upsert_tenant("acme", "x", r#"{"v":2}"#, &[], T + 2)
        .await
        .unwrap();
    s.add_signing_key(&t, &key("k2", T + 2)).await.unwrap();
    s.create_enrollment(&t, "e2", &enrollment("u1", "totp|m2", T + 300))
        .await
        .unwrap();
    assert!(
        s.complete_enrollment(
            &t,
            "e2",
            &Completion::SetPassword {
                user_id: "u1".into(),
                hash: "new-hash".into(),
                at: T + 3,
            },
            T + 3,
        )
        .await
        .unwrap()
    );
    s.probe_write().await.unwrap();
}

/// Writes behind a database locked by someone else give up within the
/// store's wait, each of them, and are answered as unavailable; the write
/// probe says the same; reads go on. Once the lock is gone, writes work.
async fn a_locked_database_fails_writes_as_unavailable_in_bounded_time(s: S, side: Side) {
    let t = tenant(&s, "acme").await;
    s.upsert_user(&t, &user("u1", "u1@example.com"))
        .await
        .unwrap();
    s.probe_write().await.unwrap();

    let held = side.lock().await;
    let writes: Vec<_> = (0..12)
        .map(|i| {
            let (s, t) = (s.clone(), t.clone());
            tokio::spawn(async move {
                let row = enrollment("u1", &format!("totp|m{i}"), T + 300);
                s.create_enrollment(&t, &format!("e{i}"), &row).await
            })
        })
        .collect();
    let outcomes = tokio::time::timeout(HANG, async {
        let mut out = Vec::new();
        for w in writes {
            out.push(w.await.unwrap());
        }
        out
    })
    .await
    .expect("writes behind the lock waited without bound");
    for (i, r) in outcomes.into_iter().enumerate() {
        assert_unavailable(&format!("write {i}"), r);
    }
    let probe = tokio::time::timeout(HANG, s.probe_write())
        .await
        .expect("the probe waited without bound");
    assert_unavailable("probe_write", probe);
    assert_eq!(
        s.user_by_id(&t, "u1").await.unwrap().unwrap().email,
        "u1@example.com"
    );

    held.release().await;
    s.probe_write().await.unwrap();
    s.create_enrollment(&t, "e0", &enrollment("u1", "totp|m0", T + 300))
        .await
        .unwrap();
    assert!(s.enrollment(&t, "e0", T).await.unwrap().is_some());
}
