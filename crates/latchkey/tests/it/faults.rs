//! Faults of the database through HTTP: a full disk during an enrollment,
//! a database locked by another process. Run on the backend the suite runs
//! on (SQLite, or PostgreSQL with `LATCHKEY_TEST_BACKEND=postgres`).
//!
//! SQLite: the file is capped (`max_page_count`) and another connection fills
//! it up to the cap, with a trigger that makes every new method need room
//! (a blob into the filler), so the enrollment's own transaction meets
//! `SQLITE_FULL` and SQLite rolls it back itself. PostgreSQL: a trigger
//! raises `disk_full` (53100) on a new method, as the server does when its
//! disk is full. The lock: another connection's `BEGIN IMMEDIATE`, or
//! `LOCK TABLE … IN EXCLUSIVE MODE`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::*;

/// The SQLite file's cap, in pages (4 KiB).
const CAP: u64 = 4000;

/// A server whose store gives up waiting after two seconds, on a capped file.
async fn server() -> TestServer {
    TestServer::configured(&[acme], |opts| {
        opts.sqlite.write_wait = Duration::from_secs(2);
        opts.sqlite.max_pages = Some(CAP);
        if let latchkey::server::Database::Postgres { pool, .. } = &mut opts.database {
            pool.acquire_timeout_secs = 2;
        }
    })
    .await
}

/// Another connection to the server's database.
enum Side {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Side {
    async fn open(s: &TestServer) -> Side {
        match &s.postgres {
            None => {
                let path = s.dir.path().join("latchkey.db");
                Side::Sqlite(
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap(),
                )
            }
            Some((url, schema)) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
                    .execute(&mut c)
                    .await
                    .unwrap();
                Side::Postgres(c)
            }
        }
    }

    async fn run(&mut self, sql: &str) {
        let text = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            Side::Sqlite(c) => sqlx::raw_sql(text).execute(c).await.map(|_| ()),
            Side::Postgres(c) => sqlx::raw_sql(text).execute(c).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The disk is full for anyone adding a method.
    async fn fill(&mut self) {
        match self {
            Side::Sqlite(c) => {
                sqlx::raw_sql(
                    "CREATE TABLE filler (b BLOB); \
                     CREATE TRIGGER needs_room AFTER INSERT ON authentication_methods \
                       BEGIN INSERT INTO filler VALUES (zeroblob(300000)); END;",
                )
                .execute(&mut *c)
                .await
                .unwrap();
                loop {
                    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
                        .fetch_one(&mut *c)
                        .await
                        .unwrap();
                    if pages > CAP as i64 {
                        break;
                    }
                    sqlx::query(
                        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
                         INSERT INTO filler SELECT zeroblob(3500) FROM n",
                    )
                    .bind(CAP as i64 - pages + 1)
                    .execute(&mut *c)
                    .await
                    .unwrap();
                }
            }
            Side::Postgres(_) => {
                self.run(
                    "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' \
                     USING ERRCODE = 'disk_full'; END $$; \
                     CREATE TRIGGER disk_full BEFORE INSERT ON authentication_methods \
                     FOR EACH ROW EXECUTE FUNCTION disk_full();",
                )
                .await;
            }
        }
    }

    async fn free(&mut self) {
        match self {
            Side::Sqlite(_) => {
                self.run("DROP TRIGGER needs_room; DROP TABLE filler;")
                    .await
            }
            Side::Postgres(_) => self.run("DROP FUNCTION disk_full() CASCADE").await,
        }
    }

    /// Holds the database's write lock (PostgreSQL: on the tables these
    /// tests write) until `release`.
    async fn lock(&mut self) {
        match self {
            Side::Sqlite(_) => self.run("BEGIN IMMEDIATE").await,
            Side::Postgres(_) => {
                self.run(
                    "BEGIN; LOCK TABLE meta, enrollments, grants, refresh_tokens, login_failures \
                     IN EXCLUSIVE MODE",
                )
                .await
            }
        }
    }

    async fn release(&mut self) {
        self.run("ROLLBACK").await;
    }
}

async fn start(s: &TestServer, token: &str, body: Value) -> MeResponse {
    s.me("POST", "/authentication-methods", Some(token), Some(body))
        .await
}

async fn verify(s: &TestServer, token: &str, started: &MeResponse, body: Value) -> MeResponse {
    let location = started.header("location").unwrap();
    s.me(
        "POST",
        &format!("{location}/verify"),
        Some(token),
        Some(body),
    )
    .await
}

/// A 503 in the My Account dialect that says when to try again.
fn assert_unavailable(r: &MeResponse) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    r.error_type();
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
}

/// A full disk during an enrollment answers 503 with `retry-after`, writes
/// nothing, and leaves every later write working once there is room again:
/// the same enrollment, a password change, a recovery code.
#[tokio::test]
async fn an_enrollment_on_a_full_disk_is_503_and_later_writes_work() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    let r = start(&s, &token, json!({"type": "totp"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let secret = r.body["manual_input_code"].as_str().unwrap().to_string();
    let answer = || json!({"auth_session": r.body["auth_session"], "otp_code": totp_now(&secret, s.clock_now())});

    let mut side = Side::open(&s).await;
    side.fill().await;
    for _ in 0..2 {
        assert_unavailable(&verify(&s, &token, &r, answer()).await);
    }
    side.free().await;

    // The enrollment was not consumed: the same answer completes it now.
    let v = verify(&s, &token, &r, answer()).await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    let p = start(&s, &token, json!({"type": "password"})).await;
    assert_eq!(p.status, StatusCode::ACCEPTED, "{}", p.body);
    let v = verify(
        &s,
        &token,
        &p,
        json!({"auth_session": p.body["auth_session"], "new_password": "A-new-Passw0rd-2026"}),
    )
    .await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    let c = start(&s, &token, json!({"type": "recovery-code"})).await;
    assert_eq!(c.status, StatusCode::ACCEPTED, "{}", c.body);
    let v = verify(
        &s,
        &token,
        &c,
        json!({"auth_session": c.body["auth_session"]}),
    )
    .await;
    assert_eq!(v.status, StatusCode::CREATED, "{}", v.body);
    let list = s
        .me("GET", "/authentication-methods", Some(&token), None)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let mut types: Vec<&str> = list.body["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    types.sort_unstable();
    assert_eq!(
        types,
        ["password", "recovery-code", "totp"],
        "{}",
        list.body
    );
}

/// Behind a database another process holds locked, `/readyz` answers 503
/// and writes answer 503 with `retry-after` in each area's dialect, within
/// the store's wait; once the lock is gone, all is well again.
#[tokio::test]
async fn a_locked_database_is_not_ready_and_writes_answer_503() {
    let s = server().await;
    let token = s.me_token(ME_SCOPES).await;
    let ready = || async {
        s.http()
            .get(s.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(ready().await, StatusCode::OK);

    let mut side = Side::open(&s).await;
    side.lock().await;
    assert_eq!(ready().await, StatusCode::SERVICE_UNAVAILABLE);
    assert_unavailable(&start(&s, &token, json!({"type": "totp"})).await);
    let res = s
        .http()
        .post(s.url("/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("scope", "openid offline_access"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");

    side.release().await;
    assert_eq!(ready().await, StatusCode::OK);
    let r = start(&s, &token, json!({"type": "totp"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
}
