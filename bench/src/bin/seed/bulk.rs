//! `seed bulk`: users and their methods written straight into the database.

use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use latchkey::app::AppState;
use latchkey::crypto::otp;
use latchkey::rng::RngExt;
use latchkey::services::enrollment;
use latchkey::tenant::FactorType;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Connection as _};

use super::*;

/// Users written per transaction by `seed bulk` (60,000 rows): the larger
/// a transaction, the fewer times each index page is written.
const BATCH: u64 = 20_000;
/// Most bound parameters in one statement.
const SQLITE_MAX_BINDS: usize = 32_766;
const POSTGRES_MAX_BINDS: usize = 65_535;

/// A value bound to a statement: what both backends store, each in its types.
enum Val {
    /// Shared by many rows.
    Shared(Arc<str>),
    Text(String),
    Int(i64),
    /// `INTEGER` 0/1 on SQLite, `BOOLEAN` on PostgreSQL.
    Bool(bool),
    NullText,
    NullInt,
}

struct Table {
    name: &'static str,
    columns: &'static [&'static str],
}

/// The columns `tenant apply` (through `UserStore::upsert_user`) writes.
const USERS: Table = Table {
    name: "users",
    columns: &[
        "tenant_id",
        "user_id",
        "connection",
        "email",
        "email_lower",
        "email_verified",
        "password_hash",
        "profile",
        "blocked",
        "last_password_reset",
        "created_at",
        "updated_at",
    ],
};

/// The columns a confirmed enrollment (`MethodStore::complete_enrollment`)
/// writes.
const METHODS: Table = Table {
    name: "authentication_methods",
    columns: &[
        "tenant_id",
        "id",
        "user_id",
        "type",
        "name",
        "data",
        "created_at",
        "last_auth_at",
        "last_otp_step",
        "credential_id",
    ],
};

/// One transaction's rows, each table's values row after row.
struct Batch {
    users: u64,
    user_values: Vec<Val>,
    method_values: Vec<Val>,
}

/// What a sampled user was given, to check against what the database holds.
pub(super) struct Known {
    pub(super) index: u64,
    pub(super) secret: Vec<u8>,
    pub(super) totp_id: String,
    pub(super) recovery_id: String,
    pub(super) recovery_code: String,
}

/// What every user and method row of a tenant share.
struct Shared {
    tenant_id: Arc<str>,
    connection: Arc<str>,
    password_hash: Arc<str>,
    profile: Arc<str>,
    totp: Arc<str>,
    recovery_code: Arc<str>,
}

/// Users `from..to`, as `tenant apply` writes a tenant file's users and the
/// enrollment service their authenticator app and recovery code, at `now`.
fn build_batch(
    state: &AppState,
    shared: &Shared,
    from: u64,
    to: u64,
    samples: &[u64],
    known: &mut Vec<Known>,
) -> anyhow::Result<Batch> {
    let now = state.clock.now();
    let n = usize::try_from(to - from)?;
    let mut user_rows: Vec<(String, [Val; USERS.columns.len()])> = Vec::with_capacity(n);
    let mut method_rows: Vec<(String, [Val; METHODS.columns.len()])> = Vec::with_capacity(2 * n);
    for i in from..to {
        let user_id = user_id(i);
        let email = email(i);
        user_rows.push((
            user_id.clone(),
            [
                Val::Shared(shared.tenant_id.clone()),
                Val::Text(user_id.clone()),
                Val::Shared(shared.connection.clone()),
                Val::Text(email.clone()),
                Val::Text(email.to_lowercase()),
                Val::Bool(true),
                Val::Shared(shared.password_hash.clone()),
                Val::Shared(shared.profile.clone()),
                Val::Bool(false),
                Val::Int(now),
                Val::Int(now),
                Val::Int(now),
            ],
        ));

        // The authenticator app, confirmed at `now` with the code of this
        // step (remembered, so that code cannot log in).
        let totp_id = enrollment::new_method_id(state, FactorType::Totp);
        let secret: [u8; 20] = state.rng.bytes();
        let sealed = state.sealer.seal(
            &*state.rng,
            &enrollment::totp_context(&shared.tenant_id, &totp_id),
            &secret,
        );
        method_rows.push((
            totp_id.clone(),
            [
                Val::Shared(shared.tenant_id.clone()),
                Val::Text(totp_id.clone()),
                Val::Text(user_id.clone()),
                Val::Shared(shared.totp.clone()),
                Val::NullText,
                Val::Text(serde_json::to_string(&json!({ "secret": sealed }))?),
                Val::Int(now),
                Val::NullInt,
                Val::Int(otp::step_of(now)),
                Val::NullText,
            ],
        ));

        let recovery_id = enrollment::new_method_id(state, FactorType::RecoveryCode);
        let (recovery_code, digest) = enrollment::new_recovery_code(state);
        method_rows.push((
            recovery_id.clone(),
            [
                Val::Shared(shared.tenant_id.clone()),
                Val::Text(recovery_id.clone()),
                Val::Text(user_id),
                Val::Shared(shared.recovery_code.clone()),
                Val::NullText,
                Val::Text(serde_json::to_string(&json!({ "code_digest": digest }))?),
                Val::Int(now),
                Val::NullInt,
                Val::NullInt,
                Val::NullText,
            ],
        ));

        if samples.contains(&i) {
            known.push(Known {
                index: i,
                secret: secret.to_vec(),
                totp_id,
                recovery_id,
                recovery_code,
            });
        }
    }
    // Rows in the order of their primary key (a method's is a random ID):
    // each page of an index is visited once per batch, not once per row.
    user_rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    method_rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let user_values = user_rows.into_iter().flat_map(|(_, row)| row).collect();
    let method_values = method_rows.into_iter().flat_map(|(_, row)| row).collect();
    Ok(Batch {
        users: to - from,
        user_values,
        method_values,
    })
}

/// `INSERT INTO table (columns) VALUES (…), (…)` for `rows` rows, with
/// SQLite's `?` or PostgreSQL's `$n` placeholders.
fn insert_sql(table: &Table, rows: usize, numbered: bool) -> String {
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ",
        table.name,
        table.columns.join(", ")
    );
    let mut n = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..table.columns.len() {
            if column > 0 {
                sql.push_str(", ");
            }
            n += 1;
            if numbered {
                let _ = write!(sql, "${n}");
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

/// A connection of our own to latchkey's database.
enum Db {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Db {
    /// Opens the database latchkey has just opened (and migrated) for
    /// `target`. SQLite: the same file and journal (WAL), with commits not
    /// waiting for the disk (a seed interrupted is seeded again) and a
    /// cache big enough for the indexes the inserts walk.
    async fn open(target: &Target) -> anyhow::Result<Self> {
        match &target.database_url {
            None => {
                let opts = SqliteConnectOptions::new()
                    .filename(target.data_dir.join("latchkey.db"))
                    .create_if_missing(false)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Off)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    .pragma("cache_size", "-1048576")
                    .pragma("temp_store", "memory");
                Ok(Db::Sqlite(SqliteConnection::connect_with(&opts).await?))
            }
            Some(url) => {
                let mut opts = PgConnectOptions::from_str(url)?;
                if let Some(schema) = &target.database_schema {
                    opts = opts.options([("search_path", schema.as_str())]);
                }
                let mut conn = PgConnection::connect_with(&opts).await?;
                sqlx::query("SET synchronous_commit = off")
                    .execute(&mut conn)
                    .await?;
                Ok(Db::Postgres(conn))
            }
        }
    }

    /// Writes one batch in one transaction, each table in as few statements
    /// as the backend's bound-parameter limit allows.
    async fn write(&mut self, batch: Batch) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(conn) => {
                // IMMEDIATE: the write lock up front, as latchkey's writes.
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                for (table, values) in
                    [(&USERS, batch.user_values), (&METHODS, batch.method_values)]
                {
                    for part in parts(table, values, SQLITE_MAX_BINDS) {
                        let rows = part.len() / table.columns.len();
                        let mut q = sqlx::query(AssertSqlSafe(insert_sql(table, rows, false)));
                        for v in part {
                            q = match v {
                                Val::Shared(s) => q.bind(s),
                                Val::Text(s) => q.bind(s),
                                Val::Int(n) => q.bind(n),
                                Val::Bool(b) => q.bind(i64::from(b)),
                                Val::NullText => q.bind(None::<String>),
                                Val::NullInt => q.bind(None::<i64>),
                            };
                        }
                        q.execute(&mut *tx).await?;
                    }
                }
                tx.commit().await?;
            }
            Db::Postgres(conn) => {
                let mut tx = conn.begin().await?;
                for (table, values) in
                    [(&USERS, batch.user_values), (&METHODS, batch.method_values)]
                {
                    for part in parts(table, values, POSTGRES_MAX_BINDS) {
                        let rows = part.len() / table.columns.len();
                        let mut q = sqlx::query(AssertSqlSafe(insert_sql(table, rows, true)));
                        for v in part {
                            q = match v {
                                Val::Shared(s) => q.bind(s.to_string()),
                                Val::Text(s) => q.bind(s),
                                Val::Int(n) => q.bind(n),
                                Val::Bool(b) => q.bind(b),
                                Val::NullText => q.bind(None::<String>),
                                Val::NullInt => q.bind(None::<i64>),
                            };
                        }
                        q.execute(&mut *tx).await?;
                    }
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// SQLite: the write-ahead log folded into the database file.
    async fn finish(self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(mut conn) => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
            }
            Db::Postgres(conn) => conn.close().await?,
        }
        Ok(())
    }
}

/// `values` (whole rows of `table`) cut into statements of at most
/// `max_binds` parameters.
fn parts(table: &Table, values: Vec<Val>, max_binds: usize) -> Vec<Vec<Val>> {
    let per_statement = (max_binds / table.columns.len()) * table.columns.len();
    let mut out = Vec::new();
    let mut values = values.into_iter().peekable();
    while values.peek().is_some() {
        out.push(values.by_ref().take(per_statement).collect());
    }
    out
}

pub(super) async fn bulk(target: Target, host: &str, from: u64, to: u64) -> anyhow::Result<()> {
    ensure!(from < to, "FROM must be below TO");
    let state = latchkey::server::open(target.options()).await?;
    let tenant = tenant_on(&state, host).await?;
    ensure!(
        tenant.database_connection(CONNECTION).is_some(),
        "the tenant on {host} has no connection {CONNECTION}"
    );
    let started = Instant::now();
    // One hash for everyone, imported as a tenant file's `password_hash`.
    let password_hash = state
        .passwords
        .hash(&*state.rng, PASSWORD)
        .map_err(|e| anyhow!("hashing: {e}"))?;
    let shared = Shared {
        tenant_id: tenant.id.as_str().into(),
        connection: CONNECTION.into(),
        password_hash: password_hash.into(),
        profile: serde_json::to_string(&json!({}))?.into(),
        totp: FactorType::Totp.as_str().into(),
        recovery_code: FactorType::RecoveryCode.as_str().into(),
    };
    let mut samples = vec![from, from + (to - from) / 2, to - 1];
    samples.dedup();

    let mut db = Db::open(&target).await.context("opening the database")?;
    // Rows are made (random IDs and secrets, sealing, digests) on a thread
    // of their own while the previous batch is written.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(2);
    let maker = {
        let state = state.clone();
        let samples = samples.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Known>> {
            let mut known = Vec::new();
            let mut at = from;
            while at < to {
                let end = (at + BATCH).min(to);
                let batch = build_batch(&state, &shared, at, end, &samples, &mut known)?;
                if tx.blocking_send(batch).is_err() {
                    // The writer stopped: its error is the one to report.
                    break;
                }
                at = end;
            }
            Ok(known)
        })
    };
    let written = async {
        let (mut done, mut reported) = (0u64, Instant::now());
        while let Some(batch) = rx.recv().await {
            done += batch.users;
            db.write(batch).await?;
            if reported.elapsed() >= Duration::from_secs(5) {
                reported = Instant::now();
                eprintln!(
                    "seed: {done} of {} users ({:.0} users/s)",
                    to - from,
                    done as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        anyhow::Ok(done)
    }
    .await;
    drop(rx);
    let known = maker.await??;
    let done = written.with_context(|| format!("writing users {from}..{to}"))?;
    db.finish().await?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "seed: wrote users {from}..{to} ({done}) in {seconds:.1} s: {:.0} users/s",
        done as f64 / seconds
    );
    ensure!(done == to - from, "wrote {done} users of {}", to - from);

    for k in &known {
        super::check::check_user(&state, &tenant, k.index, Some(k)).await?;
    }
    ensure!(
        known.len() == samples.len(),
        "the sampled users were not all made"
    );
    eprintln!("seed: checked users {samples:?} through latchkey's services");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_per_backend() {
        let t = Table {
            name: "t",
            columns: &["a", "b"],
        };
        assert_eq!(
            insert_sql(&t, 2, false),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(
            insert_sql(&t, 2, true),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
    }

    #[test]
    fn statements_stay_under_the_bind_limit() {
        let values: Vec<Val> = (0..5_000 * USERS.columns.len())
            .map(|n| Val::Int(n as i64))
            .collect();
        let parts = parts(&USERS, values, SQLITE_MAX_BINDS);
        assert!(parts.iter().all(|p| p.len() <= SQLITE_MAX_BINDS));
        assert!(parts.iter().all(|p| p.len() % USERS.columns.len() == 0));
        assert_eq!(
            parts.iter().map(Vec::len).sum::<usize>(),
            5_000 * USERS.columns.len()
        );
    }
}
