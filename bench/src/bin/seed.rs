//! Builds the benchmark tenant.
//!
//! `seed tenant PORT USERS FILE` writes a tenant file for `localhost:PORT`
//! with USERS users (`user{i}@bench.test`, all with the password
//! `Bench-password-2026` as one imported Argon2id hash computed once with
//! latchkey's production parameters, so seeding does not cost USERS
//! hashes), the clients the scenarios use, and request limits lifted for
//! the run. With 0 users it is the tenant alone, for `seed bulk`.
//!
//! `seed bulk DATA_DIR HOST FROM TO [--database-url URL [--database-schema S]]`
//! adds users FROM..TO to the tenant applied on HOST, each with a password,
//! an authenticator app and a recovery code, written straight into the
//! database in large transactions: the rows `tenant apply` and the
//! enrollment service would write (the same imported hash for everyone, a
//! secret of their own sealed with latchkey's sealer, a recovery code of
//! their own stored as its digest), at hundreds of thousands of users a
//! second instead of hundreds. The database is opened by latchkey first
//! (master key, migrations), then written through a connection of its own.
//! It ends by checking the first, middle and last users through latchkey's
//! services, as `seed check` does.
//!
//! `seed check DATA_DIR HOST I... [--database-url URL [--database-schema S]]`
//! checks users I... through latchkey's services: found by email, the
//! password verifies, exactly a password, an authenticator app and a
//! recovery code are listed, the secret opens and its codes verify, the
//! recovery code is stored as a digest.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use latchkey::app::AppState;
use latchkey::crypto::otp;
use latchkey::crypto::password::PasswordHasherConfig;
use latchkey::rng::RngExt;
use latchkey::server::{Database, MasterKeySource, Options};
use latchkey::services::enrollment;
use latchkey::services::{login, methods as user_methods};
use latchkey::store::postgres::PoolOptions;
use latchkey::tenant::{FactorType, Tenant};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Connection as _};

pub const PASSWORD: &str = "Bench-password-2026";
/// The tenant file's database connection, which all its users are in.
const CONNECTION: &str = "Username-Password-Authentication";
/// Users written per transaction by `seed bulk` (60,000 rows): the larger
/// a transaction, the fewer times each index page is written.
const BATCH: u64 = 20_000;
/// Most bound parameters in one statement.
const SQLITE_MAX_BINDS: usize = 32_766;
const POSTGRES_MAX_BINDS: usize = 65_535;

fn usage() -> anyhow::Error {
    anyhow!(
        "usage: seed tenant PORT USERS FILE | seed methods DATA_DIR HOST USERS | \
         seed bulk DATA_DIR HOST FROM TO [--database-url URL [--database-schema S]] | \
         seed check DATA_DIR HOST I... [--database-url URL [--database-schema S]]"
    )
}

fn user_id(i: u64) -> String {
    format!("auth0|bench{i}")
}

fn email(i: u64) -> String {
    format!("user{i}@bench.test")
}

fn tenant_file(port: u16, users: u64) -> anyhow::Result<String> {
    let mut out = format!(
        r#"tenant: {{ name: bench, domains: ["localhost:{port}"] }}
my_account_api: {{ active: true, user_policy: require_client_grant,
                  rate_limits: {{ tenant_per_second: 0, user_per_minute: 0 }} }}
factors: [password, totp, recovery-code, passkey]
connections:
  - name: {CONNECTION}
clients:
  - {{ client_id: spa, name: Bench SPA, app_type: spa, callbacks: ["http://localhost:5173/cb"],
      grant_types: [authorization_code, refresh_token, password,
                    "urn:okta:params:oauth:grant-type:webauthn"] }}
  - {{ client_id: backend, client_secret: bench-backend-secret, app_type: non_interactive,
      grant_types: [client_credentials] }}
client_grants:
  - {{ client_id: spa, audience: "http://localhost:{port}/me/", subject_type: user,
      scope: [read:me:authentication_methods, create:me:authentication_methods,
              update:me:authentication_methods, delete:me:authentication_methods, read:me:factors] }}
  - {{ client_id: backend, audience: "https://api.bench.test/", subject_type: client, scope: [read:things] }}
resource_servers: [{{ identifier: "https://api.bench.test/", scopes: [read:things] }}]
"#
    );
    if users == 0 {
        out.push_str("users: []\n");
        return Ok(out);
    }
    let hash = PasswordHasherConfig::default()
        .hash(&latchkey::rng::SystemRng, PASSWORD)
        .map_err(|e| anyhow!("hashing: {e}"))?;
    out.push_str("users:\n");
    for i in 0..users {
        writeln!(
            out,
            "  - {{ email: {}, password_hash: \"{hash}\", connection: {CONNECTION}, \
             email_verified: true, user_id: \"{}\" }}",
            email(i),
            user_id(i)
        )?;
    }
    Ok(out)
}

async fn tenant_on(state: &AppState, host: &str) -> anyhow::Result<Arc<Tenant>> {
    state
        .tenants
        .by_host(host)
        .await?
        .ok_or_else(|| anyhow!("no tenant on {host}: apply the tenant file (seed tenant) first"))
}

/// Where `seed bulk` and `seed check` find the database: the SQLite file of
/// the data directory, or PostgreSQL (in a schema of its own).
struct Target {
    data_dir: PathBuf,
    database_url: Option<String>,
    database_schema: Option<String>,
}

impl Target {
    /// Takes the `--database-url` and `--database-schema` flags out of
    /// `args`, then the data directory.
    fn parse(args: &mut Vec<String>) -> anyhow::Result<Self> {
        let mut flag = |name: &str| -> anyhow::Result<Option<String>> {
            let Some(at) = args.iter().position(|a| a == name) else {
                return Ok(None);
            };
            if at + 1 >= args.len() {
                bail!("{name} needs a value");
            }
            let value = args.remove(at + 1);
            args.remove(at);
            Ok(Some(value))
        };
        let database_url = flag("--database-url")?;
        let database_schema = flag("--database-schema")?;
        if database_schema.is_some() && database_url.is_none() {
            bail!("--database-schema goes with --database-url");
        }
        if args.is_empty() {
            return Err(usage());
        }
        Ok(Self {
            data_dir: PathBuf::from(args.remove(0)),
            database_url,
            database_schema,
        })
    }

    /// latchkey's options for this database, as `latchkey --data-dir
    /// [--database-url --database-schema]` builds them.
    fn options(&self) -> Options {
        let mut opts = Options::new(self.data_dir.clone(), MasterKeySource::DataDir);
        if let Some(url) = &self.database_url {
            opts.database = Database::Postgres {
                url: url.clone(),
                pool: PoolOptions {
                    schema: self.database_schema.clone(),
                    ..PoolOptions::default()
                },
            };
        }
        opts
    }
}

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
struct Known {
    index: u64,
    secret: Vec<u8>,
    totp_id: String,
    recovery_id: String,
    recovery_code: String,
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

async fn bulk(target: Target, host: &str, from: u64, to: u64) -> anyhow::Result<()> {
    ensure!(from < to, "FROM must be below TO");
    let state = latchkey::server::open(target.options()).await?;
    let tenant = tenant_on(&state, host).await?;
    ensure!(
        tenant.connection(CONNECTION).is_some(),
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
        check_user(&state, &tenant, k.index, Some(k)).await?;
    }
    ensure!(
        known.len() == samples.len(),
        "the sampled users were not all made"
    );
    eprintln!("seed: checked users {samples:?} through latchkey's services");
    Ok(())
}

async fn check(target: Target, host: &str, users: &[u64]) -> anyhow::Result<()> {
    let state = latchkey::server::open(target.options()).await?;
    let tenant = tenant_on(&state, host).await?;
    for i in users {
        check_user(&state, &tenant, *i, None).await?;
    }
    eprintln!("seed: checked users {users:?} through latchkey's services");
    Ok(())
}

/// User `i` as a login and the My Account API see it; with `known`, also
/// what it was given.
async fn check_user(
    state: &AppState,
    tenant: &Tenant,
    i: u64,
    known: Option<&Known>,
) -> anyhow::Result<()> {
    let (email, user_id) = (email(i), user_id(i));
    let user = login::authenticate(
        state,
        login::PasswordLogin {
            tenant,
            realm: Some(CONNECTION),
            username: &email,
            password: PASSWORD,
            ip: "127.0.0.1",
        },
    )
    .await
    .map_err(|e| anyhow!("user {i}: the password login of {email} failed: {e}"))?;
    ensure!(
        user.user_id == user_id && user.email_verified && !user.blocked,
        "user {i}: {email} is {} (verified {}, blocked {})",
        user.user_id,
        user.email_verified,
        user.blocked
    );

    let listed = user_methods::list(state, &tenant.id, &user_id, None)
        .await
        .map_err(|e| anyhow!("user {i}: listing the methods: {e}"))?;
    let mut kinds: Vec<&str> = listed.iter().map(|m| m.kind.as_str()).collect();
    kinds.sort_unstable();
    ensure!(
        kinds == ["password", "recovery-code", "totp"],
        "user {i}: the methods listed are {kinds:?}"
    );

    let rows = state.store.methods(&tenant.id, &user_id).await?;
    let of_type = |kind: FactorType| {
        rows.iter()
            .find(|r| r.method_type == kind.as_str())
            .ok_or_else(|| anyhow!("user {i}: no {kind} method stored"))
    };
    let totp = of_type(FactorType::Totp)?;
    let sealed = totp
        .data
        .get("secret")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("user {i}: the TOTP method has no secret"))?;
    let secret = state
        .sealer
        .open(&enrollment::totp_context(&tenant.id, &totp.id), sealed)
        .map_err(|e| anyhow!("user {i}: the TOTP secret does not open: {e}"))?;
    ensure!(
        secret.len() == 20,
        "user {i}: the TOTP secret is {} bytes",
        secret.len()
    );
    let last = totp
        .last_otp_step
        .ok_or_else(|| anyhow!("user {i}: the TOTP method has no step used"))?;
    // The enrollment's code is spent; the next step's is good.
    ensure!(
        otp::verify(
            &secret,
            &otp::code_at(&secret, last),
            last * otp::PERIOD,
            Some(last)
        )
        .is_none()
            && otp::verify(
                &secret,
                &otp::code_at(&secret, last + 1),
                (last + 1) * otp::PERIOD,
                Some(last)
            ) == Some(last + 1),
        "user {i}: the TOTP secret's codes do not verify as they should"
    );
    let recovery = of_type(FactorType::RecoveryCode)?;
    let digest = recovery
        .data
        .get("code_digest")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("user {i}: the recovery code has no digest"))?;

    if let Some(k) = known {
        ensure!(
            secret == k.secret && totp.id == k.totp_id,
            "user {i}: the TOTP method stored is not the one made"
        );
        ensure!(
            recovery.id == k.recovery_id
                && digest == enrollment::recovery_code_digest(&k.recovery_code),
            "user {i}: the recovery code's digest does not match the code"
        );
    }
    Ok(())
}

fn index(text: &str) -> anyhow::Result<u64> {
    text.parse()
        .with_context(|| format!("{text:?} is not a user number"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        return Err(usage());
    }
    let command = args.remove(0);
    match command.as_str() {
        "bulk" | "check" => {
            let target = Target::parse(&mut args)?;
            let Some((host, rest)) = args.split_first() else {
                return Err(usage());
            };
            let numbers = rest
                .iter()
                .map(|a| index(a))
                .collect::<anyhow::Result<Vec<_>>>()?;
            match (command.as_str(), numbers.as_slice()) {
                ("bulk", [from, to]) => bulk(target, host, *from, *to).await,
                ("check", [_, ..]) => check(target, host, &numbers).await,
                _ => Err(usage()),
            }
        }
        _ => match (command.as_str(), args.as_slice()) {
            ("tenant", [port, users, file]) => {
                std::fs::write(file, tenant_file(port.parse()?, users.parse()?)?)?;
                Ok(())
            }
            _ => Err(usage()),
        },
    }
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

    #[test]
    fn an_empty_tenant_file_has_an_empty_user_list() {
        let file = tenant_file(3000, 0).unwrap();
        assert!(file.ends_with("users: []\n"));
    }
}
