//! The SQL both stores run, written once: a [`Statement`] is a text with
//! `$1`-style parameters and the values it binds, run as it is on SQLite and
//! on PostgreSQL (sqlx binds SQLite's `$N` to the N-th value, as PostgreSQL
//! does), on a pool, a connection or a transaction ([`Target`], [`Conn`]).
//! Rows of either backend are read by the same decoders (`rows.rs`); the few
//! words the dialects spell differently are the [`Dialect`]'s. Where the
//! dialects truly differ (locking, PostgreSQL's writes inside a `WITH` and
//! its arrays, SQLite's `json_each` and batched rotations) the backend writes
//! its own statement.
//!
//! One module per group of store traits: `tenants.rs` (tenants, keys,
//! users), `sessions.rs` (sessions, login transactions and failures, grants,
//! codes, refresh tokens), `methods.rs` (methods, enrollments, password
//! history, audit events), `accounts.rs` (connected accounts and their
//! connect transactions), `identities.rs` (upstream logins and the
//! identities users log in with), `imports.rs` (users imported with their
//! methods, and their passwords rehashed), `push.rs` (push-notification logins'
//! transactions), `tickets.rs` (the tickets of the links mailed about
//! accounts), `users.rs` (the Management API's users: search, change,
//! deletion), `sweep.rs` (the sweep's rules and grant walk). A function a
//! statement, named after the trait method that runs it.

pub(crate) mod accounts;
pub(crate) mod identities;
pub(crate) mod imports;
pub(crate) mod methods;
pub(crate) mod push;
pub(crate) mod rows;
pub(crate) mod sessions;
pub(crate) mod sweep;
pub(crate) mod tenants;
pub(crate) mod tickets;
pub(crate) mod users;

use std::borrow::Cow;

use async_trait::async_trait;
use sqlx::query::Query;
use sqlx::{Database, Encode, IntoArguments, Type};

use super::errors::db;
use super::{StoreError, StoreResult};
use rows::Columns;

/// A value a statement binds.
#[derive(Debug, Clone)]
pub(crate) enum Arg<'a> {
    Text(Option<&'a str>),
    Owned(Option<String>),
    Int(Option<i64>),
    Flag(bool),
}

/// One SQL statement with its parameters' values, in the order of their
/// numbers (`$1` is the first).
#[derive(Debug, Clone)]
#[must_use]
pub(crate) struct Statement<'a> {
    sql: Cow<'static, str>,
    args: Vec<Arg<'a>>,
}

impl<'a> Statement<'a> {
    pub(crate) fn new(sql: &'static str) -> Self {
        Self {
            sql: Cow::Borrowed(sql),
            args: Vec::new(),
        }
    }

    /// A statement whose text is put together at run time from the store's
    /// own constants (never from a caller's value).
    pub(crate) fn composed(sql: String) -> Self {
        Self {
            sql: Cow::Owned(sql),
            args: Vec::new(),
        }
    }

    pub(crate) fn text(self, v: &'a str) -> Self {
        self.arg(Arg::Text(Some(v)))
    }

    pub(crate) fn text_or_null(self, v: Option<&'a str>) -> Self {
        self.arg(Arg::Text(v))
    }

    /// A value made for the statement (JSON, a lowercased email).
    pub(crate) fn owned(self, v: String) -> Self {
        self.arg(Arg::Owned(Some(v)))
    }

    /// A value made for the statement, or NULL.
    pub(crate) fn owned_or_null(self, v: Option<String>) -> Self {
        self.arg(Arg::Owned(v))
    }

    pub(crate) fn int(self, v: i64) -> Self {
        self.arg(Arg::Int(Some(v)))
    }

    pub(crate) fn int_or_null(self, v: Option<i64>) -> Self {
        self.arg(Arg::Int(v))
    }

    pub(crate) fn flag(self, v: bool) -> Self {
        self.arg(Arg::Flag(v))
    }

    fn arg(mut self, a: Arg<'a>) -> Self {
        self.args.push(a);
        self
    }

    /// The sqlx query of this statement on `DB`.
    fn query<DB: Dialect>(self) -> Query<'static, DB, DB::Arguments> {
        let mut q = match self.sql {
            Cow::Borrowed(sql) => sqlx::query(sql),
            Cow::Owned(sql) => sqlx::query(sqlx::AssertSqlSafe(sql)),
        };
        for a in self.args {
            q = DB::bind(q, a);
        }
        q
    }

    /// Runs it; the number of rows it changed.
    pub(crate) async fn execute(self, on: impl Target) -> StoreResult<u64> {
        on.execute(self, None).await
    }

    /// Runs it; a unique constraint it breaks is a `Conflict` saying
    /// `conflict`.
    pub(crate) async fn execute_or_conflict(
        self,
        on: impl Target,
        conflict: String,
    ) -> StoreResult<u64> {
        on.execute(self, Some(conflict)).await
    }

    /// Runs it; its first row, if any.
    pub(crate) async fn fetch_optional<T: Target>(self, on: T) -> StoreResult<Option<T::Row>> {
        on.fetch_optional(self).await
    }

    /// Runs it; its one row.
    pub(crate) async fn fetch_one<T: Target>(self, on: T) -> StoreResult<T::Row> {
        on.fetch_one(self).await
    }

    /// Runs it; all its rows.
    pub(crate) async fn fetch_all<T: Target>(self, on: T) -> StoreResult<Vec<T::Row>> {
        on.fetch_all(self).await
    }

    /// [`Statement::execute`] in a transaction.
    pub(crate) async fn execute_in(self, tx: &mut impl Conn) -> StoreResult<u64> {
        tx.execute(self, None).await
    }

    /// [`Statement::execute_or_conflict`] in a transaction.
    pub(crate) async fn execute_or_conflict_in(
        self,
        tx: &mut impl Conn,
        conflict: String,
    ) -> StoreResult<u64> {
        tx.execute(self, Some(conflict)).await
    }

    /// [`Statement::fetch_optional`] in a transaction.
    pub(crate) async fn fetch_optional_in<C: Conn>(
        self,
        tx: &mut C,
    ) -> StoreResult<Option<C::Row>> {
        tx.fetch_optional(self).await
    }

    /// [`Statement::fetch_one`] in a transaction.
    pub(crate) async fn fetch_one_in<C: Conn>(self, tx: &mut C) -> StoreResult<C::Row> {
        tx.fetch_one(self).await
    }
}

/// The rows changed, or the error as the store reports it: a unique
/// constraint broken is a `Conflict` saying `conflict` when there is one.
fn executed<DB: Dialect>(
    done: Result<DB::QueryResult, sqlx::Error>,
    conflict: Option<String>,
) -> StoreResult<u64> {
    match (done, conflict) {
        (Ok(done), _) => Ok(DB::rows_affected(&done)),
        (Err(sqlx::Error::Database(d)), Some(conflict)) if d.is_unique_violation() => {
            Err(StoreError::Conflict(conflict))
        }
        (Err(e), _) => Err(db(e)),
    }
}

/// What a statement runs on: a pool, a connection, a transaction's
/// connection.
#[async_trait]
pub(crate) trait Target: Send {
    type Row: Columns + Send;
    async fn execute(self, st: Statement<'_>, conflict: Option<String>) -> StoreResult<u64>;
    async fn fetch_optional(self, st: Statement<'_>) -> StoreResult<Option<Self::Row>>;
    async fn fetch_one(self, st: Statement<'_>) -> StoreResult<Self::Row>;
    async fn fetch_all(self, st: Statement<'_>) -> StoreResult<Vec<Self::Row>>;
}

macro_rules! target {
    ($($on:ty => $db:ty),* $(,)?) => {$(
        #[async_trait]
        impl<'c> Target for $on {
            type Row = <$db as Database>::Row;

            async fn execute(self, st: Statement<'_>, conflict: Option<String>) -> StoreResult<u64> {
                executed::<$db>(st.query::<$db>().execute(self).await, conflict)
            }

            async fn fetch_optional(self, st: Statement<'_>) -> StoreResult<Option<Self::Row>> {
                st.query::<$db>().fetch_optional(self).await.map_err(db)
            }

            async fn fetch_one(self, st: Statement<'_>) -> StoreResult<Self::Row> {
                st.query::<$db>().fetch_one(self).await.map_err(db)
            }

            async fn fetch_all(self, st: Statement<'_>) -> StoreResult<Vec<Self::Row>> {
                st.query::<$db>().fetch_all(self).await.map_err(db)
            }
        }
    )*};
}

target!(
    &'c mut sqlx::SqliteConnection => sqlx::Sqlite,
    &'c sqlx::PgPool => sqlx::Postgres,
    &'c mut sqlx::PgConnection => sqlx::Postgres,
);

/// How a store runs one statement on its own: reads on its readers
/// (SQLite) or pool, writes on its writer or pool. What the operations both
/// stores implement alike are written once over it (`accounts.rs`).
#[async_trait]
pub(crate) trait Runs: Send + Sync {
    type Row: Columns + Send;
    async fn read_optional(&self, st: Statement<'_>) -> StoreResult<Option<Self::Row>>;
    async fn read_all(&self, st: Statement<'_>) -> StoreResult<Vec<Self::Row>>;
    /// The rows it changed.
    async fn write(&self, st: Statement<'_>) -> StoreResult<u64>;
    /// A write's `RETURNING` row, if any.
    async fn write_returning(&self, st: Statement<'_>) -> StoreResult<Option<Self::Row>>;
}

/// A connection inside a transaction, for the transaction bodies both
/// stores run (the backend begins, locks and commits).
#[async_trait]
pub(crate) trait Conn: Send {
    type Row: Columns + Send;
    async fn execute(&mut self, st: Statement<'_>, conflict: Option<String>) -> StoreResult<u64>;
    async fn fetch_optional(&mut self, st: Statement<'_>) -> StoreResult<Option<Self::Row>>;
    async fn fetch_one(&mut self, st: Statement<'_>) -> StoreResult<Self::Row>;
}

macro_rules! conn {
    ($($conn:ty),*) => {$(
        #[async_trait]
        impl Conn for $conn {
            type Row = <<Self as sqlx::Connection>::Database as Database>::Row;

            async fn execute(&mut self, st: Statement<'_>, conflict: Option<String>) -> StoreResult<u64> {
                Target::execute(self, st, conflict).await
            }

            async fn fetch_optional(&mut self, st: Statement<'_>) -> StoreResult<Option<Self::Row>> {
                Target::fetch_optional(self, st).await
            }

            async fn fetch_one(&mut self, st: Statement<'_>) -> StoreResult<Self::Row> {
                Target::fetch_one(self, st).await
            }
        }
    )*};
}

conn!(sqlx::SqliteConnection, sqlx::PgConnection);

/// A database the statements run on: it binds their values, its rows are
/// read by the shared decoders, and it names what the dialects name
/// differently.
pub(crate) trait Dialect: Database<Row: Columns, Arguments: IntoArguments<Self>> {
    /// What orders text by its bytes after `ORDER BY column` (SQLite's
    /// default BINARY collation, PostgreSQL's "C").
    const BYTE_ORDER: &'static str;
    /// A column that grows with each row inserted, to order rows made in
    /// the same second (SQLite's `rowid`, PostgreSQL's `seq` column).
    const ROW_AGE: &'static str;
    /// A row's physical address, to delete chosen rows (`rowid`, `ctid`).
    const ROW_ID: &'static str;
    /// The two-argument minimum (`MIN`, `LEAST`).
    const LEAST: &'static str;

    /// The text of the JSON object in text column `column` at its key `key`
    /// (a string as itself; absent: NULL). `key` is the store's own.
    fn json_text(column: &str, key: &str) -> String;

    /// The value to bind for `LIMIT` when a negative `limit` means none
    /// (SQLite reads a negative LIMIT as no limit; PostgreSQL rejects it,
    /// and reads `LIMIT NULL` as no limit).
    fn limit(limit: i64) -> Option<i64>;

    fn bind(
        q: Query<'static, Self, Self::Arguments>,
        a: Arg<'_>,
    ) -> Query<'static, Self, Self::Arguments>;

    fn rows_affected(done: &Self::QueryResult) -> u64;
}

impl Dialect for sqlx::Sqlite {
    const BYTE_ORDER: &'static str = "";
    const ROW_AGE: &'static str = "rowid";
    const ROW_ID: &'static str = "rowid";
    const LEAST: &'static str = "MIN";

    fn json_text(column: &str, key: &str) -> String {
        format!("json_extract({column}, '$.{key}')")
    }

    fn limit(limit: i64) -> Option<i64> {
        Some(limit)
    }

    fn bind(
        q: Query<'static, Self, Self::Arguments>,
        a: Arg<'_>,
    ) -> Query<'static, Self, Self::Arguments> {
        bind(q, a)
    }

    fn rows_affected(done: &Self::QueryResult) -> u64 {
        done.rows_affected()
    }
}

impl Dialect for sqlx::Postgres {
    const BYTE_ORDER: &'static str = " COLLATE \"C\"";
    const ROW_AGE: &'static str = "seq";
    const ROW_ID: &'static str = "ctid";
    const LEAST: &'static str = "LEAST";

    fn json_text(column: &str, key: &str) -> String {
        format!("({column}::jsonb ->> '{key}')")
    }

    fn limit(limit: i64) -> Option<i64> {
        (limit >= 0).then_some(limit)
    }

    fn bind(
        q: Query<'static, Self, Self::Arguments>,
        a: Arg<'_>,
    ) -> Query<'static, Self, Self::Arguments> {
        bind(q, a)
    }

    fn rows_affected(done: &Self::QueryResult) -> u64 {
        done.rows_affected()
    }
}

/// Binds `a` on a database that takes text, integers and booleans.
fn bind<DB: Database>(
    q: Query<'static, DB, DB::Arguments>,
    a: Arg<'_>,
) -> Query<'static, DB, DB::Arguments>
where
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
{
    match a {
        Arg::Text(v) => q.bind(v.map(str::to_owned)),
        Arg::Owned(v) => q.bind(v),
        Arg::Int(v) => q.bind(v),
        Arg::Flag(v) => q.bind(v),
    }
}

/// A value as JSON text, as the stores keep it.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    /// SQLite binds `$N` to the N-th value, whatever the order in which the
    /// parameters first appear and however often they do, as PostgreSQL does.
    #[tokio::test]
    async fn sqlite_binds_dollar_parameters_by_their_number() {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        let row = Statement::new("SELECT $3 AS c, $1 AS a, $2 AS b, $1 + $3 AS sum")
            .int(1)
            .text("two")
            .int(3)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(row.int("c"), 3);
        assert_eq!(row.int("a"), 1);
        assert_eq!(row.text("b"), "two");
        assert_eq!(row.int("sum"), 4);
    }

    /// A flag is written as SQLite keeps booleans (0 or 1) and read back.
    #[tokio::test]
    async fn sqlite_flags_are_integers() {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        Statement::new("CREATE TABLE t (f INTEGER NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
        Statement::new("INSERT INTO t (f) VALUES ($1), ($2)")
            .flag(true)
            .flag(false)
            .execute(&mut conn)
            .await
            .unwrap();
        let rows = Statement::new("SELECT f, typeof(f) AS kind FROM t ORDER BY rowid")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let read: Vec<(bool, i64, String)> = rows
            .iter()
            .map(|r| (r.flag("f"), r.int("f"), r.text("kind")))
            .collect();
        assert_eq!(
            read,
            [(true, 1, "integer".into()), (false, 0, "integer".into())]
        );
    }
}
