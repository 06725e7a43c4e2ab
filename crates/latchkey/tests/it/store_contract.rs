//! The store contract: one set of expectations, run against every backend.
//!
//! Each contract `x` becomes two tests, `store_contract::x::sqlite` (a fresh
//! database file in a temporary folder) and `store_contract::x::postgres` (a
//! fresh schema `lk_<random>` of the database at `LATCHKEY_TEST_POSTGRES_URL`,
//! dropped afterwards). Without that variable the PostgreSQL half is not run,
//! and says so on stderr.

use std::collections::HashSet;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Once};

use latchkey::clock::{ManualClock, Timestamp};
use latchkey::rng::{RngExt, SystemRng};
use latchkey::store::errors::OpenError;
use latchkey::store::postgres::{PoolOptions, PostgresStore};
use latchkey::store::sqlite::SqliteStore;
use latchkey::store::{
    AuditEvent, Completion, EnrollmentRow, Finish, IdentityRow, KeyStore, LoginMethods, MethodRow,
    Redeem, RefreshTokenRow, Removal, SessionRow, SigningKeyRow, Store, StoreError, Swept,
    UpstreamLoginRow, UserRow,
};
use latchkey::tenant::FactorType;
use serde_json::json;
use sqlx::Connection;

const POSTGRES_URL: &str = "LATCHKEY_TEST_POSTGRES_URL";
const T: Timestamp = 1_800_000_000;
const RACERS: usize = 16;

type S = Arc<dyn Store>;

mod faults;

// ---------------------------------------------------------------- harness

async fn on_sqlite<F, Fut>(body: F)
where
    F: FnOnce(S) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    // A clock that never moves: the store's read cache never expires an
    // entry here, so every read after a write shows whether the write
    // dropped what it changed.
    let clock = Arc::new(ManualClock::new(T));
    let store = SqliteStore::open(&dir.path().join("store.db"), clock)
        .await
        .unwrap();
    body(Arc::new(store)).await;
}

/// The URL of the test database, or a notice that the PostgreSQL half of
/// the suite is skipped.
fn postgres_url() -> Option<String> {
    let url = std::env::var(POSTGRES_URL)
        .ok()
        .filter(|u| !u.trim().is_empty());
    if url.is_none() {
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            // Straight to stderr: test output capture would hide a println.
            let _ = writeln!(
                std::io::stderr(),
                "store_contract: {POSTGRES_URL} is not set: the PostgreSQL backend was NOT tested"
            );
        });
    }
    url
}

/// A fresh schema of the test database, dropped by [`drop_schema`].
async fn fresh_schema(url: &str) -> String {
    let schema = format!("lk_{}", SystemRng.alnum(16).to_lowercase());
    let mut admin = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    schema
}

async fn drop_schema(url: &str, schema: &str) {
    let mut admin = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}

async fn postgres_store(url: &str, schema: &str, max_connections: u32) -> PostgresStore {
    let options = PoolOptions {
        max_connections,
        schema: Some(schema.to_string()),
        ..PoolOptions::default()
    };
    PostgresStore::connect(url, options).await.unwrap()
}

/// Runs `body` in a fresh schema; drops the schema even when `body` fails.
async fn in_schema<F, Fut>(body: F)
where
    F: FnOnce(String, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = fresh_schema(&url).await;
    let outcome = tokio::spawn(body(url.clone(), schema.clone())).await;
    drop_schema(&url, &schema).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(S) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    in_schema(|url, schema| async move {
        let store = postgres_store(&url, &schema, RACERS as u32 + 4).await;
        let pool = store.pool().clone();
        body(Arc::new(store)).await;
        pool.close().await;
    })
    .await;
}

/// `contract!(x)` runs the body `x` on both backends, as `x::sqlite` and
/// `x::postgres`; `#[ignore = "why"] x` marks the SQLite half ignored (a
/// known shortcoming of that backend, kept visible with `--ignored`).
macro_rules! contract {
    ($($(#[ignore = $why:literal])? $name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[ignore = $why])?
            async fn sqlite() {
                super::on_sqlite(super::bodies::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::on_postgres(super::bodies::$name).await;
            }
        }
    )*};
}

contract!(
    tenants,
    tenant_upsert_race,
    signing_keys,
    meta,
    users,
    sessions,
    login_transactions,
    take_login_transaction,
    race_take_login_transaction,
    login_failures,
    grants_and_codes,
    revoke_user,
    refresh_tokens,
    refresh_token_and_user,
    enrollments,
    complete_enrollment,
    methods,
    reads_follow_writes,
    password_history,
    audit,
    race_redeem_code,
    race_redeem_refresh_token,
    rotations_at_once,
    rotation_abandoned_by_its_caller,
    race_complete_enrollment,
    race_counters,
    otp_steps,
    race_otp_step,
    race_method_data,
    credentials_are_unique,
    sweep,
    sweep_in_chunks,
    last_login_method,
    race_last_login_method,
    enrollment_cap,
);

mod accounts;
mod attempts;
mod identities;
mod imports;
mod push;
mod push_enroll;
mod tenant_config;
mod tickets;
mod users_admin;

// ---------------------------------------------------------------- fixtures

async fn tenant(s: &S, name: &str) -> String {
    s.upsert_tenant(name, &format!("id-{name}"), "{}", &[], T)
        .await
        .unwrap()
}

fn user(id: &str, email: &str) -> UserRow {
    UserRow {
        user_id: id.into(),
        connection: "Username-Password-Authentication".into(),
        email: email.into(),
        email_verified: true,
        password_hash: Some(format!("hash-of-{id}")),
        profile: json!({ "name": id, "user_metadata": { "n": 1 } }),
        blocked: false,
        last_password_reset: Some(T - 100),
        created_at: T - 1000,
        updated_at: T - 1000,
        signed_up: false,
        seeded_password: None,
    }
}

fn key(kid: &str, at: Timestamp) -> SigningKeyRow {
    SigningKeyRow {
        kid: kid.into(),
        sealed_private: format!("sealed-{kid}"),
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        created_at: at,
        superseded_at: None,
    }
}

fn refresh(grant_id: &str, expires_at: Timestamp, idle_expires_at: Timestamp) -> RefreshTokenRow {
    RefreshTokenRow {
        grant_id: grant_id.into(),
        client_id: "spa".into(),
        user_id: "u1".into(),
        scope: "openid offline_access".into(),
        audience: Some("https://api.test/".into()),
        auth_time: T - 5,
        amr: vec!["pwd".into(), "otp".into()],
        created_at: T,
        expires_at,
        idle_expires_at,
        rotated_at: None,
        dpop_jkt: Some("jkt-of-the-client-key".into()),
        host: Some("login.acme.test".into()),
    }
}

fn enrollment(user_id: &str, method_id: &str, expires_at: Timestamp) -> EnrollmentRow {
    EnrollmentRow {
        user_id: user_id.into(),
        client_id: "spa".into(),
        method_type: "totp".into(),
        method_id: method_id.into(),
        state: json!({ "sealed_secret": "abc", "n": [1, 2] }),
        attempts: 0,
        created_at: T,
        expires_at,
    }
}

fn method(id: &str, user_id: &str, method_type: &str, created_at: Timestamp) -> MethodRow {
    MethodRow {
        id: id.into(),
        user_id: user_id.into(),
        method_type: FactorType::try_from(method_type.to_string()).unwrap(),
        name: None,
        data: json!({ "id": id }),
        created_at,
        last_auth_at: None,
        last_otp_step: None,
        credential_id: None,
    }
}

fn upstream_login(tx_digest: &str, expires_at: Timestamp) -> UpstreamLoginRow {
    UpstreamLoginRow {
        tx_digest: tx_digest.into(),
        connection: "acme-idp".into(),
        host: "login.acme.test".into(),
        sealed_secrets: "v1.sealed-verifier-and-nonce".into(),
        created_at: T,
        expires_at,
    }
}

/// A user made from an account of the `acme-idp` connection.
fn upstream_user(sub: &str, email: &str) -> (UserRow, IdentityRow) {
    let user = UserRow {
        user_id: format!("oidc|acme-idp|{sub}"),
        connection: "acme-idp".into(),
        password_hash: None,
        last_password_reset: None,
        profile: json!({ "name": sub }),
        ..user("", email)
    };
    let identity = IdentityRow {
        user_id: user.user_id.clone(),
        connection: "acme-idp".into(),
        provider: "oidc".into(),
        provider_user_id: format!("acme-idp|{sub}"),
        is_social: false,
        profile_data: json!({ "email": email, "email_verified": true }),
        created_at: T,
        updated_at: T,
    };
    (user, identity)
}

fn event(id: &str, date: Timestamp) -> AuditEvent {
    AuditEvent {
        id: id.into(),
        event_type: "scp".into(),
        date,
        client_id: Some("spa".into()),
        user_id: Some("u1".into()),
        ip: Some("203.0.113.9".into()),
        user_agent: None,
        details: json!({ "id": id }),
    }
}

/// A refresh-token outcome without the row (which has no `PartialEq`).
fn rt(r: Redeem<RefreshTokenRow>) -> Redeem<()> {
    match r {
        Redeem::Fresh(_) => Redeem::Fresh(()),
        Redeem::Replayed { grant_id } => Redeem::Replayed { grant_id },
        Redeem::Missing => Redeem::Missing,
    }
}

/// Runs `f(i)` for `i` in `0..RACERS` at once (released together by a
/// barrier) and returns the outcomes in task order.
async fn race<F, Fut, R>(f: F) -> Vec<R>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let barrier = barrier.clone();
            let fut = f(i);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(RACERS);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

// -------------------------------------------------------- SQLite specifics

/// Another process writing the same SQLite file (`latchkey tenant apply`
/// while the server runs) is seen once the cached answer's second is over.
#[tokio::test]
async fn sqlite_sees_another_process_write_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let clock = Arc::new(ManualClock::new(T));
    let server: S = Arc::new(SqliteStore::open(&path, clock.clone()).await.unwrap());
    let cli: S = Arc::new(SqliteStore::open(&path, clock.clone()).await.unwrap());
    let t = tenant(&server, "acme").await;
    server
        .upsert_user(&t, &user("u1", "u1@example.com"))
        .await
        .unwrap();
    server
        .create_grant(&t, "g1", "spa", Some("u1"), T)
        .await
        .unwrap();
    let (u, _) = server.user_with_methods(&t, "u1").await.unwrap().unwrap();
    assert_eq!(u.email, "u1@example.com");
    assert!(!server.grant_revoked(&t, "g1").await.unwrap());
    cli.upsert_user(&t, &user("u1", "new@example.com"))
        .await
        .unwrap();
    cli.revoke_grant(&t, "g1", "elsewhere", T).await.unwrap();
    clock.advance(1);
    let (u, _) = server.user_with_methods(&t, "u1").await.unwrap().unwrap();
    assert_eq!(u.email, "new@example.com");
    assert!(server.grant_revoked(&t, "g1").await.unwrap());
}

/// Stores a TOTP method `m1` of user `u1` in `t`.
async fn add_totp(s: &S, t: &str) {
    s.create_enrollment(t, "e-m1", &enrollment("u1", "m1", T + 60))
        .await
        .unwrap();
    let c = Completion::AddMethod {
        row: method("m1", "u1", "totp", T),
        replace_type: false,
    };
    assert!(s.complete_enrollment(t, "e-m1", &c, T).await.unwrap());
}

/// A stored method whose type this server does not know is a corrupt row,
/// not a method of some other type.
async fn unknown_method_type_is_corrupt(s: &S, t: &str) {
    for outcome in [
        s.methods(t, "u1").await.map(|_| ()),
        s.method(t, "u1", "m1").await.map(|_| ()),
    ] {
        assert!(
            matches!(outcome, Err(StoreError::Corrupt(_))),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn sqlite_refuses_a_method_of_an_unknown_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let clock = Arc::new(ManualClock::new(T));
    let s: S = Arc::new(SqliteStore::open(&path, clock.clone()).await.unwrap());
    let t = tenant(&s, "acme").await;
    add_totp(&s, &t).await;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE authentication_methods SET type = 'smoke-signal' WHERE id = 'm1'")
        .execute(&mut c)
        .await
        .unwrap();
    // A store opened afterwards: nothing read before the change is cached.
    let fresh: S = Arc::new(SqliteStore::open(&path, clock).await.unwrap());
    unknown_method_type_is_corrupt(&fresh, &t).await;
}

#[tokio::test]
async fn postgres_refuses_a_method_of_an_unknown_type() {
    in_schema(|url, schema| async move {
        let s: S = Arc::new(postgres_store(&url, &schema, 2).await);
        let t = tenant(&s, "acme").await;
        add_totp(&s, &t).await;
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {schema}.authentication_methods SET type = 'smoke-signal' WHERE id = 'm1'"
        )))
        .execute(&mut c)
        .await
        .unwrap();
        unknown_method_type_is_corrupt(&s, &t).await;
    })
    .await;
}

// ---------------------------------------------------- PostgreSQL specifics

#[tokio::test]
async fn postgres_rejects_a_bad_or_missing_schema() {
    let Some(url) = postgres_url() else {
        return;
    };
    for schema in ["Bad-Name", "x;drop", "", "lk_does_not_exist_anywhere"] {
        let options = PoolOptions {
            schema: Some(schema.into()),
            ..PoolOptions::default()
        };
        let err = PostgresStore::connect(&url, options).await.unwrap_err();
        assert!(matches!(err, OpenError::Config(_)), "{schema:?}: {err}");
    }
}

#[tokio::test]
async fn postgres_migrations_are_idempotent_and_schemas_isolated() {
    in_schema(|url, schema| async move {
        let a = postgres_store(&url, &schema, 2).await;
        a.meta_init("k", "v").await.unwrap();
        // A second process on the same schema: migrations already applied.
        let b = postgres_store(&url, &schema, 2).await;
        assert_eq!(b.meta_get("k").await.unwrap().as_deref(), Some("v"));
        // Another schema sees nothing of it.
        let other = fresh_schema(&url).await;
        let c = postgres_store(&url, &other, 2).await;
        assert_eq!(c.meta_get("k").await.unwrap(), None);
        c.pool().close().await;
        drop_schema(&url, &other).await;
        a.pool().close().await;
        b.pool().close().await;
    })
    .await;
}

#[tokio::test]
async fn postgres_pool_replaces_a_killed_connection() {
    in_schema(|url, schema| async move {
        let store = postgres_store(&url, &schema, 1).await;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .unwrap();
        // The server goes away under the idle connection (a restart, a
        // failover, an idle timeout of a proxy)…
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert!(killed);
        // …and the next query still works, on a new connection.
        assert_eq!(store.meta_init("k", "v").await.unwrap(), "v");
        let now: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_ne!(now, pid);
        store.pool().close().await;
    })
    .await;
}

// ---------------------------------------------------------------- contracts

mod bodies {
    use super::*;

    pub async fn tenants(s: S) {
        let domains = vec!["acme.test".to_string(), "login.acme.test".to_string()];
        let id = s
            .upsert_tenant("acme", "t-acme", r#"{"v":1}"#, &domains, T)
            .await
            .unwrap();
        assert_eq!(id, "t-acme");
        let row = s.tenant_by_name("acme").await.unwrap().unwrap();
        assert_eq!((row.id.as_str(), row.revision), ("t-acme", 1));
        assert_eq!(row.config, r#"{"v":1}"#);
        let by_domain = s
            .tenant_by_domain("login.acme.test")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_domain.name, "acme");
        assert!(
            s.tenant_by_domain("LOGIN.acme.test")
                .await
                .unwrap()
                .is_none()
        );

        // The same file again: same ID (new_id ignored), same revision.
        let again = s
            .upsert_tenant("acme", "t-other", r#"{"v":1}"#, &domains, T + 1)
            .await
            .unwrap();
        assert_eq!(again, "t-acme");
        assert_eq!(s.tenant_by_name("acme").await.unwrap().unwrap().revision, 1);

        // A change bumps the revision once; domains are replaced.
        let fewer = vec!["acme.test".to_string()];
        s.upsert_tenant("acme", "x", r#"{"v":2}"#, &fewer, T + 2)
            .await
            .unwrap();
        let row = s.tenant_by_name("acme").await.unwrap().unwrap();
        assert_eq!((row.revision, row.config.as_str()), (2, r#"{"v":2}"#));
        assert!(
            s.tenant_by_domain("login.acme.test")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            s.tenant_by_domain("acme.test").await.unwrap().unwrap().id,
            "t-acme"
        );

        // Another tenant may not take a domain; nothing of it is written.
        let err = s
            .upsert_tenant("beta", "t-beta", "{}", &["acme.test".into()], T)
            .await
            .unwrap_err();
        match err {
            StoreError::Conflict(m) => {
                assert_eq!(m, "domain acme.test already belongs to another tenant");
            }
            e => panic!("expected a conflict, got {e}"),
        }
        assert!(s.tenant_by_name("beta").await.unwrap().is_none());
        // The freed domain may be taken.
        s.upsert_tenant("beta", "t-beta", "{}", &["login.acme.test".into()], T)
            .await
            .unwrap();

        // Listed by name, in byte order (upper case first).
        for name in ["alpha", "Zeta", "_under"] {
            tenant(&s, name).await;
        }
        let names: Vec<String> = s
            .list_tenants()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["Zeta", "_under", "acme", "alpha", "beta"]);
    }

    pub async fn tenant_upsert_race(s: S) {
        let domains = vec!["race.test".to_string()];
        let ids = race(|i| {
            let (s, domains) = (s.clone(), domains.clone());
            async move {
                s.upsert_tenant("race", &format!("t-{i}"), "{}", &domains, T)
                    .await
                    .unwrap()
            }
        })
        .await;
        let distinct: HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 1, "{ids:?}");
        let row = s.tenant_by_domain("race.test").await.unwrap().unwrap();
        assert_eq!((&row.id, row.revision), (&ids[0], 1));
        assert_eq!(s.list_tenants().await.unwrap().len(), 1);
    }

    pub async fn signing_keys(s: S) {
        let t = tenant(&s, "acme").await;
        assert!(s.signing_keys(&t).await.unwrap().is_empty());
        s.add_signing_key(&t, &key("k1", T)).await.unwrap();
        s.add_signing_key(&t, &key("k2", T)).await.unwrap();
        s.add_signing_key(&t, &key("k3", T + 10)).await.unwrap();
        let keys = s.signing_keys(&t).await.unwrap();
        let summary: Vec<_> = keys
            .iter()
            .map(|k| (k.kid.as_str(), k.created_at, k.superseded_at))
            .collect();
        // Newest first; within one second, the last added first.
        assert_eq!(
            summary,
            [
                ("k3", T + 10, None),
                ("k2", T, Some(T + 10)),
                ("k1", T, Some(T))
            ]
        );
        assert_eq!(keys[0].sealed_private, "sealed-k3");
        assert_eq!(keys[0].public_jwk, r#"{"kid":"k3"}"#);

        // The current key is never deleted; superseded ones are.
        s.delete_signing_key(&t, "k3").await.unwrap();
        s.delete_signing_key(&t, "k1").await.unwrap();
        s.delete_signing_key(&t, "nope").await.unwrap();
        let kids: Vec<_> = s
            .signing_keys(&t)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect();
        assert_eq!(kids, ["k3", "k2"]);

        // Keys are per tenant.
        let other = tenant(&s, "other").await;
        assert!(s.signing_keys(&other).await.unwrap().is_empty());

        // Concurrent rotations leave exactly one current key.
        race(|i| {
            let (s, other) = (s.clone(), other.clone());
            async move {
                s.add_signing_key(&other, &key(&format!("r{i}"), T + 20))
                    .await
                    .unwrap();
            }
        })
        .await;
        let keys = s.signing_keys(&other).await.unwrap();
        assert_eq!(keys.len(), RACERS);
        let current: Vec<_> = keys.iter().filter(|k| k.superseded_at.is_none()).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].kid, keys[0].kid);
    }

    pub async fn meta(s: S) {
        assert_eq!(s.meta_get("k").await.unwrap(), None);
        assert_eq!(s.meta_init("k", "first").await.unwrap(), "first");
        assert_eq!(s.meta_init("k", "second").await.unwrap(), "first");
        assert_eq!(s.meta_get("k").await.unwrap().as_deref(), Some("first"));
        let won = race(|i| {
            let s = s.clone();
            async move { s.meta_init("raced", &format!("v{i}")).await.unwrap() }
        })
        .await;
        let distinct: HashSet<_> = won.iter().collect();
        assert_eq!(distinct.len(), 1, "{won:?}");
    }

    pub async fn users(s: S) {
        let t = tenant(&s, "acme").await;
        let alice = user("u1", "Alice@Example.com");
        s.upsert_user(&t, &alice).await.unwrap();
        assert_eq!(s.user_by_id(&t, "u1").await.unwrap(), Some(alice.clone()));
        let conn = "Username-Password-Authentication";
        let found = s
            .user_by_email(&t, conn, "alice@EXAMPLE.com")
            .await
            .unwrap();
        assert_eq!(found, Some(alice.clone()));
        assert_eq!(
            s.user_by_email(&t, "Partners", "alice@example.com")
                .await
                .unwrap(),
            None
        );
        assert_eq!(s.user_by_id(&t, "nobody").await.unwrap(), None);

        // The email is unique per connection, ignoring case.
        let err = s
            .upsert_user(&t, &user("u2", "ALICE@example.com"))
            .await
            .unwrap_err();
        match err {
            StoreError::Conflict(m) => {
                assert_eq!(
                    m,
                    "the email ALICE@example.com is already used by another user"
                );
            }
            e => panic!("expected a conflict, got {e}"),
        }
        let partner = UserRow {
            connection: "Partners".into(),
            ..user("u2", "alice@example.com")
        };
        s.upsert_user(&t, &partner).await.unwrap();

        // An update keeps created_at; flags and nulls round-trip.
        let changed = UserRow {
            email: "alice@new.example".into(),
            email_verified: false,
            password_hash: None,
            blocked: true,
            last_password_reset: None,
            profile: json!({}),
            created_at: T + 50,
            updated_at: T + 50,
            signed_up: true,
            seeded_password: Some("mac-of-the-file-value".into()),
            ..alice.clone()
        };
        s.upsert_user(&t, &changed).await.unwrap();
        let stored = s.user_by_id(&t, "u1").await.unwrap().unwrap();
        assert_eq!(
            stored,
            UserRow {
                created_at: alice.created_at,
                ..changed
            }
        );
        assert_eq!(
            s.user_by_email(&t, conn, "alice@example.com")
                .await
                .unwrap(),
            None
        );
        // The old address is free again.
        s.upsert_user(&t, &user("u3", "alice@example.com"))
            .await
            .unwrap();
        assert_eq!(s.count_users(&t).await.unwrap(), 3);

        // Users are per tenant.
        let other = tenant(&s, "other").await;
        assert_eq!(s.count_users(&other).await.unwrap(), 0);
        assert_eq!(s.user_by_id(&other, "u1").await.unwrap(), None);
        s.upsert_user(&other, &alice).await.unwrap();

        // Usernames: found and unique per connection without regard to
        // case; users without one never collide.
        let named = |id: &str, email: &str, name: &str| UserRow {
            profile: json!({ "username": name }),
            ..user(id, email)
        };
        let bob = named("u4", "bob@example.com", "Bob_99");
        s.upsert_user(&t, &bob).await.unwrap();
        assert_eq!(
            s.user_by_username(&t, conn, "bOB_99").await.unwrap(),
            Some(bob.clone())
        );
        assert_eq!(
            s.user_by_username(&t, "Partners", "bob_99").await.unwrap(),
            None
        );
        assert_eq!(
            s.user_by_username(&other, conn, "bob_99").await.unwrap(),
            None
        );
        match s
            .upsert_user(&t, &named("u5", "robert@example.com", "BOB_99"))
            .await
            .unwrap_err()
        {
            StoreError::Conflict(m) => assert_eq!(
                m,
                "the email robert@example.com or the username BOB_99 is already used by another user"
            ),
            e => panic!("expected a conflict, got {e}"),
        }
        assert_eq!(s.user_by_id(&t, "u5").await.unwrap(), None);
        let partner_bob = UserRow {
            connection: "Partners".into(),
            ..named("u6", "bob@example.com", "bob_99")
        };
        s.upsert_user(&t, &partner_bob).await.unwrap();
        // Bob renamed: the old name is free, the new one finds him.
        s.upsert_user(&t, &named("u4", "bob@example.com", "Robert"))
            .await
            .unwrap();
        assert_eq!(s.user_by_username(&t, conn, "bob_99").await.unwrap(), None);
        assert_eq!(
            s.user_by_username(&t, conn, "robert")
                .await
                .unwrap()
                .map(|u| u.user_id),
            Some("u4".to_string())
        );
        s.upsert_user(&t, &named("u5", "robert@example.com", "bob_99"))
            .await
            .unwrap();
    }

    pub async fn sessions(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let row = SessionRow {
            user_id: "u1".into(),
            auth_time: T - 3,
            amr: vec!["pwd".into(), "mfa".into()],
            expires_at: T + 3600,
        };
        s.create_session(&t, "sid", &row, T).await.unwrap();
        assert_eq!(
            s.session(&t, "sid", T + 10, 300).await.unwrap(),
            Some(row.clone())
        );
        assert_eq!(s.session(&other, "sid", T + 10, 300).await.unwrap(), None);
        assert_eq!(s.session(&t, "nope", T + 10, 300).await.unwrap(), None);

        // Idle: last seen at T (the read at T + 10 was too soon to count).
        assert_eq!(s.session(&t, "sid", T + 300, 300).await.unwrap(), None);
        // A read 299 s later still counts, and is activity (≥ 60 s since).
        assert!(s.session(&t, "sid", T + 299, 300).await.unwrap().is_some());
        assert!(s.session(&t, "sid", T + 598, 300).await.unwrap().is_some());
        assert!(s.session(&t, "sid", T + 897, 300).await.unwrap().is_some());
        assert_eq!(
            s.session(&t, "sid", T + 897 + 300, 300).await.unwrap(),
            None
        );

        // Absolute expiry.
        s.create_session(
            &t,
            "short",
            &SessionRow {
                expires_at: T + 100,
                ..row.clone()
            },
            T,
        )
        .await
        .unwrap();
        assert!(
            s.session(&t, "short", T + 99, 3600)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(s.session(&t, "short", T + 100, 3600).await.unwrap(), None);

        // Revocation: for good, and only in its tenant.
        s.create_session(&t, "rev", &row, T).await.unwrap();
        s.revoke_session(&other, "rev", T + 1).await.unwrap();
        assert!(s.session(&t, "rev", T + 2, 300).await.unwrap().is_some());
        s.revoke_session(&t, "rev", T + 3).await.unwrap();
        s.revoke_session(&t, "rev", T + 4).await.unwrap();
        assert_eq!(s.session(&t, "rev", T + 5, 300).await.unwrap(), None);
    }

    /// Revoking a user ends their grants and sessions, and no one else's.
    pub async fn revoke_user(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let session = |user: &str| SessionRow {
            user_id: user.into(),
            auth_time: T,
            amr: vec!["pwd".into()],
            expires_at: T + 3600,
        };
        for (tenant, grant, user) in [
            (&t, "g1", "u1"),
            (&t, "g2", "u1"),
            (&t, "g3", "u2"),
            (&other, "g4", "u1"),
        ] {
            s.create_grant(tenant, grant, "spa", Some(user), T)
                .await
                .unwrap();
            // Read once, so that a cached answer would be stale.
            assert!(!s.grant_revoked(tenant, grant).await.unwrap());
            s.create_session(tenant, grant, &session(user), T)
                .await
                .unwrap();
        }
        s.revoke_user(&t, "u1", "user blocked", T + 1)
            .await
            .unwrap();
        s.revoke_user(&t, "u1", "again", T + 2).await.unwrap();
        assert!(s.grant_revoked(&t, "g1").await.unwrap());
        assert!(s.grant_revoked(&t, "g2").await.unwrap());
        assert!(!s.grant_revoked(&t, "g3").await.unwrap());
        assert!(!s.grant_revoked(&other, "g4").await.unwrap());
        assert_eq!(s.session(&t, "g1", T + 3, 300).await.unwrap(), None);
        assert_eq!(s.session(&t, "g2", T + 3, 300).await.unwrap(), None);
        assert!(s.session(&t, "g3", T + 3, 300).await.unwrap().is_some());
        assert!(s.session(&other, "g4", T + 3, 300).await.unwrap().is_some());
    }

    pub async fn login_transactions(s: S) {
        let t = tenant(&s, "acme").await;
        s.create_login_transaction(&t, "tx", r#"{"state":"x"}"#, T, T + 600)
            .await
            .unwrap();
        let got = s.login_transaction(&t, "tx", T + 599).await.unwrap();
        assert_eq!(got.as_deref(), Some(r#"{"state":"x"}"#));
        assert_eq!(s.login_transaction(&t, "tx", T + 600).await.unwrap(), None);
        let other = tenant(&s, "other").await;
        assert_eq!(s.login_transaction(&other, "tx", T).await.unwrap(), None);
        s.delete_login_transaction(&other, "tx").await.unwrap();
        assert!(s.login_transaction(&t, "tx", T).await.unwrap().is_some());
        s.delete_login_transaction(&t, "tx").await.unwrap();
        assert_eq!(s.login_transaction(&t, "tx", T).await.unwrap(), None);
    }

    pub async fn take_login_transaction(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        s.create_login_transaction(&t, "par", "{}", T, T + 90)
            .await
            .unwrap();
        s.create_login_transaction(&t, "old", "{}", T, T + 90)
            .await
            .unwrap();
        // Not another tenant's, not once expired (and then left to the sweep).
        assert_eq!(
            s.take_login_transaction(&other, "par", T).await.unwrap(),
            None
        );
        assert_eq!(
            s.take_login_transaction(&t, "old", T + 90).await.unwrap(),
            None
        );
        let got = s.take_login_transaction(&t, "par", T + 89).await.unwrap();
        assert_eq!(got.as_deref(), Some("{}"));
        // Taken once: gone.
        assert_eq!(
            s.take_login_transaction(&t, "par", T + 89).await.unwrap(),
            None
        );
        assert_eq!(s.login_transaction(&t, "par", T).await.unwrap(), None);
        assert_eq!(s.take_login_transaction(&t, "nope", T).await.unwrap(), None);
    }

    pub async fn race_take_login_transaction(s: S) {
        let t = tenant(&s, "acme").await;
        s.create_login_transaction(&t, "par", "{}", T, T + 90)
            .await
            .unwrap();
        let outcomes = race(|_| {
            let s = s.clone();
            let t = t.clone();
            async move { s.take_login_transaction(&t, "par", T).await.unwrap() }
        })
        .await;
        assert_eq!(outcomes.iter().filter(|o| o.is_some()).count(), 1);
    }

    pub async fn login_failures(s: S) {
        let t = tenant(&s, "acme").await;
        let ip = "198.51.100.7";
        assert_eq!(s.login_failures(&t, "u1", ip).await.unwrap(), (0, None));
        // Blocked from the third failure on; each later one extends it.
        let until = |n: i64| T + 1000 + n;
        for n in 1..=4 {
            s.record_login_failure(&t, "u1", ip, T + n, 3, until(n))
                .await
                .unwrap();
            let expected = if n >= 3 { Some(until(n)) } else { None };
            assert_eq!(s.login_failures(&t, "u1", ip).await.unwrap(), (n, expected));
        }
        // A higher threshold later does not unblock.
        s.record_login_failure(&t, "u1", ip, T + 5, 10, until(5))
            .await
            .unwrap();
        assert_eq!(
            s.login_failures(&t, "u1", ip).await.unwrap(),
            (5, Some(until(4)))
        );
        // Blocked at once when the threshold is 1 (or less).
        s.record_login_failure(&t, "u1", "other-ip", T, 1, until(9))
            .await
            .unwrap();
        assert_eq!(
            s.login_failures(&t, "u1", "other-ip").await.unwrap(),
            (1, Some(until(9)))
        );
        s.record_login_failure(&t, "u2", ip, T, 0, until(8))
            .await
            .unwrap();
        assert_eq!(
            s.login_failures(&t, "u2", ip).await.unwrap(),
            (1, Some(until(8)))
        );

        // Clearing one IP, then all of a user's.
        s.clear_login_failures(&t, "u1", Some(ip)).await.unwrap();
        assert_eq!(s.login_failures(&t, "u1", ip).await.unwrap(), (0, None));
        assert_eq!(s.login_failures(&t, "u1", "other-ip").await.unwrap().0, 1);
        s.record_login_failure(&t, "u1", ip, T, 3, until(0))
            .await
            .unwrap();
        s.clear_login_failures(&t, "u1", None).await.unwrap();
        assert_eq!(s.login_failures(&t, "u1", ip).await.unwrap(), (0, None));
        assert_eq!(
            s.login_failures(&t, "u1", "other-ip").await.unwrap(),
            (0, None)
        );
        assert_eq!(s.login_failures(&t, "u2", ip).await.unwrap().0, 1);
    }

    pub async fn grants_and_codes(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        s.create_grant(&t, "g1", "spa", Some("u1"), T)
            .await
            .unwrap();
        s.create_grant(&t, "g-client", "backend", None, T)
            .await
            .unwrap();
        assert!(!s.grant_revoked(&t, "g1").await.unwrap());
        assert!(!s.grant_revoked(&t, "g-client").await.unwrap());
        // Unknown, or another tenant's: treated as revoked.
        assert!(s.grant_revoked(&t, "nope").await.unwrap());
        assert!(s.grant_revoked(&other, "g1").await.unwrap());
        s.revoke_grant(&other, "g1", "wrong tenant", T)
            .await
            .unwrap();
        assert!(!s.grant_revoked(&t, "g1").await.unwrap());
        s.revoke_grant(&t, "g1", "logout", T + 1).await.unwrap();
        s.revoke_grant(&t, "g1", "again", T + 2).await.unwrap();
        assert!(s.grant_revoked(&t, "g1").await.unwrap());

        // An unknown grant reads as revoked until it exists.
        assert!(s.grant_revoked(&t, "g2").await.unwrap());
        s.create_grant(&t, "g2", "spa", Some("u1"), T)
            .await
            .unwrap();
        assert!(!s.grant_revoked(&t, "g2").await.unwrap());
        s.create_code(&t, "c1", "g2", r#"{"r":1}"#, T + 60)
            .await
            .unwrap();
        assert_eq!(
            s.redeem_code(&other, "c1", T).await.unwrap(),
            Redeem::Missing
        );
        assert_eq!(s.code(&other, "c1", T).await.unwrap(), Redeem::Missing);
        // Reading a code does not use it.
        let unused = Redeem::Fresh(("g2".into(), r#"{"r":1}"#.into()));
        assert_eq!(s.code(&t, "c1", T + 59).await.unwrap(), unused);
        assert_eq!(s.code(&t, "c1", T + 59).await.unwrap(), unused);
        assert_eq!(s.code(&t, "c1", T + 60).await.unwrap(), Redeem::Missing);
        assert_eq!(s.redeem_code(&t, "c1", T + 59).await.unwrap(), unused);
        let replay = Redeem::Replayed {
            grant_id: "g2".into(),
        };
        assert_eq!(s.code(&t, "c1", T + 59).await.unwrap(), replay);
        assert_eq!(s.code(&t, "c1", T + 600).await.unwrap(), replay);
        assert_eq!(s.code(&t, "nope", T).await.unwrap(), Redeem::Missing);
        assert_eq!(s.redeem_code(&t, "c1", T + 59).await.unwrap(), replay);
        // A used code stays a replay after it expires.
        assert_eq!(s.redeem_code(&t, "c1", T + 600).await.unwrap(), replay);
        assert_eq!(s.redeem_code(&t, "nope", T).await.unwrap(), Redeem::Missing);
        // An unused code expires.
        s.create_code(&t, "c2", "g2", "{}", T + 60).await.unwrap();
        assert_eq!(
            s.redeem_code(&t, "c2", T + 60).await.unwrap(),
            Redeem::Missing
        );
        assert_eq!(
            s.redeem_code(&t, "c2", T + 60).await.unwrap(),
            Redeem::Missing
        );
    }

    pub async fn refresh_tokens(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        s.create_grant(&t, "g", "spa", Some("u1"), T).await.unwrap();
        let row = refresh("g", T + 3600, T + 600);
        s.create_refresh_token(&t, "rt", &row).await.unwrap();
        assert_eq!(
            s.refresh_token_grant(&t, "rt").await.unwrap(),
            Some(("g".into(), "spa".into()))
        );
        assert_eq!(s.refresh_token_grant(&other, "rt").await.unwrap(), None);
        let fresh = |r: Redeem<RefreshTokenRow>| match r {
            Redeem::Fresh(row) => row,
            other => panic!("expected Fresh, got {other:?}"),
        };
        let replayed = Redeem::Replayed {
            grant_id: "g".into(),
        };
        // The successor a rotation stores; each call names its own digest.
        let mut next_row = refresh("g", T + 3600, T + 700);
        next_row.scope = "offline_access".into();
        next_row.dpop_jkt = None;
        next_row.host = None;
        let next = |digest: &'static str| Some((digest, &next_row));
        let stored = |digest: &'static str| {
            let s = s.clone();
            let t = t.clone();
            async move { s.refresh_token_grant(&t, digest).await.unwrap().is_some() }
        };

        // Without a successor it is only read.
        let read = fresh(
            s.redeem_refresh_token(&t, "rt", T + 1, None, 0)
                .await
                .unwrap(),
        );
        assert_eq!((read.amr.clone(), read.rotated_at), (row.amr.clone(), None));
        assert_eq!(read.audience, row.audience);
        assert_eq!(read.host.as_deref(), Some("login.acme.test"));
        // Rotation: once; the row says when, and the successor is stored
        // as given.
        let rotated = fresh(
            s.redeem_refresh_token(&t, "rt", T + 10, next("n1"), 0)
                .await
                .unwrap(),
        );
        assert_eq!(rotated.rotated_at, Some(T + 10));
        assert_eq!(rotated.scope, row.scope);
        let successor = fresh(
            s.redeem_refresh_token(&t, "n1", T + 11, None, 0)
                .await
                .unwrap(),
        );
        assert_eq!(
            (
                successor.scope.as_str(),
                successor.idle_expires_at,
                successor.dpop_jkt,
                successor.host
            ),
            ("offline_access", T + 700, None, None)
        );
        // Later: a replay, rotating or not, unless within the leeway; a
        // replay stores no successor.
        assert_eq!(
            rt(s.redeem_refresh_token(&t, "rt", T + 10, next("n2"), 0)
                .await
                .unwrap()),
            replayed
        );
        assert!(!stored("n2").await, "a replay stored its successor");
        assert_eq!(
            rt(s.redeem_refresh_token(&t, "rt", T + 11, None, 0)
                .await
                .unwrap()),
            replayed
        );
        let again = fresh(
            s.redeem_refresh_token(&t, "rt", T + 40, next("n3"), 30)
                .await
                .unwrap(),
        );
        assert_eq!(
            again.rotated_at,
            Some(T + 10),
            "the leeway does not re-rotate"
        );
        assert!(
            stored("n3").await,
            "within the leeway the successor is stored"
        );
        assert!(matches!(
            s.redeem_refresh_token(&t, "rt", T + 40, None, 30)
                .await
                .unwrap(),
            Redeem::Fresh(_)
        ));
        assert_eq!(
            rt(s.redeem_refresh_token(&t, "rt", T + 41, next("n4"), 30)
                .await
                .unwrap()),
            replayed
        );
        assert_eq!(
            rt(s.redeem_refresh_token(&t, "rt", T + 15, next("n5"), -5)
                .await
                .unwrap()),
            replayed
        );
        assert!(!stored("n4").await && !stored("n5").await);
        // An expired rotated token is just missing.
        assert_eq!(
            rt(s.redeem_refresh_token(&t, "rt", T + 600, next("n6"), 0)
                .await
                .unwrap()),
            Redeem::Missing
        );
        assert_eq!(
            rt(s.redeem_refresh_token(&other, "rt", T + 20, next("n7"), 0)
                .await
                .unwrap()),
            Redeem::Missing
        );
        assert_eq!(
            rt(s.redeem_refresh_token(&t, "nope", T + 20, next("n8"), 0)
                .await
                .unwrap()),
            Redeem::Missing
        );
        for digest in ["n6", "n7", "n8"] {
            assert!(!stored(digest).await, "{digest}");
        }

        // Absolute and idle expiry, with and without rotation.
        s.create_refresh_token(&t, "abs", &refresh("g", T + 100, T + 600))
            .await
            .unwrap();
        s.create_refresh_token(&t, "idle", &refresh("g", T + 3600, T + 100))
            .await
            .unwrap();
        for digest in ["abs", "idle"] {
            for successor in [None, next("n9")] {
                assert_eq!(
                    rt(s.redeem_refresh_token(&t, digest, T + 100, successor, 30)
                        .await
                        .unwrap()),
                    Redeem::Missing,
                    "{digest} rotating={}",
                    successor.is_some()
                );
            }
            assert!(!stored("n9").await);
            assert!(matches!(
                s.redeem_refresh_token(
                    &t,
                    digest,
                    T + 99,
                    next(if digest == "abs" { "n10" } else { "n11" }),
                    0
                )
                .await
                .unwrap(),
                Redeem::Fresh(_)
            ));
        }

        // A revoked grant's tokens are missing, fresh or rotated.
        s.create_refresh_token(&t, "rt2", &refresh("g", T + 3600, T + 600))
            .await
            .unwrap();
        s.revoke_grant(&t, "g", "reuse", T + 20).await.unwrap();
        for digest in ["rt", "rt2", "n1"] {
            for successor in [None, next("n12")] {
                assert_eq!(
                    rt(s.redeem_refresh_token(&t, digest, T + 21, successor, 30)
                        .await
                        .unwrap()),
                    Redeem::Missing,
                    "{digest} rotating={}",
                    successor.is_some()
                );
            }
        }
        assert!(!stored("n12").await, "a revoked grant got a new token");
        assert_eq!(
            s.refresh_token_grant(&t, "rt2").await.unwrap(),
            Some(("g".into(), "spa".into()))
        );
    }

    pub async fn enrollments(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let row = enrollment("u1", "totp|m1", T + 300);
        s.create_enrollment(&t, "e1", &row).await.unwrap();
        assert_eq!(
            s.enrollment(&t, "e1", T + 299).await.unwrap(),
            Some(row.clone())
        );
        assert_eq!(s.enrollment(&t, "e1", T + 300).await.unwrap(), None);
        assert_eq!(s.enrollment(&other, "e1", T).await.unwrap(), None);

        // Wrong attempts: counted; the last one deletes the enrollment.
        assert_eq!(s.enrollment_failed(&t, "e1", 3).await.unwrap(), 2);
        assert_eq!(
            s.enrollment(&t, "e1", T).await.unwrap().unwrap().attempts,
            1
        );
        assert_eq!(s.enrollment_failed(&t, "e1", 3).await.unwrap(), 1);
        assert_eq!(s.enrollment_failed(&t, "e1", 3).await.unwrap(), 0);
        assert_eq!(s.enrollment(&t, "e1", T).await.unwrap(), None);
        assert_eq!(s.enrollment_failed(&t, "e1", 3).await.unwrap(), 0);
        assert_eq!(s.enrollment_failed(&t, "never", 5).await.unwrap(), 0);
        // Another tenant's digest does not count.
        s.create_enrollment(&t, "e2", &row).await.unwrap();
        assert_eq!(s.enrollment_failed(&other, "e2", 3).await.unwrap(), 0);
        assert_eq!(
            s.enrollment(&t, "e2", T).await.unwrap().unwrap().attempts,
            0
        );
        // A stored count already past the limit.
        let worn = EnrollmentRow {
            attempts: 7,
            ..row.clone()
        };
        s.create_enrollment(&t, "e3", &worn).await.unwrap();
        assert_eq!(s.enrollment_failed(&t, "e3", 5).await.unwrap(), 0);
        assert_eq!(s.enrollment(&t, "e3", T).await.unwrap(), None);
    }

    pub async fn complete_enrollment(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        s.upsert_user(&t, &user("u1", "u1@example.com"))
            .await
            .unwrap();
        s.create_enrollment(&t, "e1", &enrollment("u1", "totp|m1", T + 300))
            .await
            .unwrap();
        let add = Completion::AddMethod {
            row: MethodRow {
                name: Some("phone".into()),
                last_auth_at: Some(T + 5),
                ..method("totp|m1", "u1", "totp", T)
            },
            replace_type: false,
        };
        assert!(!s.complete_enrollment(&other, "e1", &add, T).await.unwrap());
        // Expired by the time it is completed: nothing happens.
        assert!(
            !s.complete_enrollment(&t, "e1", &add, T + 300)
                .await
                .unwrap()
        );
        assert!(s.complete_enrollment(&t, "e1", &add, T).await.unwrap());
        assert!(!s.complete_enrollment(&t, "e1", &add, T).await.unwrap());
        assert_eq!(s.enrollment(&t, "e1", T).await.unwrap(), None);
        let Completion::AddMethod { row, .. } = &add else {
            unreachable!()
        };
        assert_eq!(
            s.methods(&t, "u1").await.unwrap(),
            std::slice::from_ref(row)
        );

        // replace_type: the user's other methods of that type go, only.
        let code = |id: &str| method(id, "u1", "recovery-code", T + 1);
        for (digest, id) in [("r1", "rc|1"), ("r2", "rc|2")] {
            s.create_enrollment(&t, digest, &enrollment("u1", id, T + 300))
                .await
                .unwrap();
            let c = Completion::AddMethod {
                row: code(id),
                replace_type: true,
            };
            assert!(s.complete_enrollment(&t, digest, &c, T).await.unwrap());
        }
        let ids: Vec<_> = s
            .methods(&t, "u1")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, ["totp|m1", "rc|2"]);

        // SetPassword: history, last reset, login failures cleared.
        s.record_login_failure(&t, "u1", "ip", T, 1, T + 999)
            .await
            .unwrap();
        s.create_enrollment(&t, "p1", &enrollment("u1", "password", T + 300))
            .await
            .unwrap();
        let set = Completion::SetPassword {
            user_id: "u1".into(),
            hash: "new-hash".into(),
            at: T + 7,
        };
        assert!(s.complete_enrollment(&t, "p1", &set, T).await.unwrap());
        assert!(!s.complete_enrollment(&t, "p1", &set, T).await.unwrap());
        let u = s.user_by_id(&t, "u1").await.unwrap().unwrap();
        assert_eq!(u.password_hash.as_deref(), Some("new-hash"));
        assert_eq!((u.last_password_reset, u.updated_at), (Some(T + 7), T + 7));
        assert_eq!(
            s.password_history(&t, "u1", 10).await.unwrap(),
            ["hash-of-u1"]
        );
        assert_eq!(s.login_failures(&t, "u1", "ip").await.unwrap(), (0, None));

        // No password before: nothing goes to the history.
        let mut nopw = user("u2", "u2@example.com");
        nopw.password_hash = None;
        s.upsert_user(&t, &nopw).await.unwrap();
        s.create_enrollment(&t, "p2", &enrollment("u2", "password", T + 300))
            .await
            .unwrap();
        let set2 = Completion::SetPassword {
            user_id: "u2".into(),
            hash: "h".into(),
            at: T,
        };
        assert!(s.complete_enrollment(&t, "p2", &set2, T).await.unwrap());
        assert!(s.password_history(&t, "u2", 10).await.unwrap().is_empty());
    }

    pub async fn methods(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        // Ordered by created_at, then id in byte order.
        let rows = [
            method("b", "u1", "totp", T),
            method("a", "u1", "totp", T),
            method("Z", "u1", "totp", T),
            method("early", "u1", "webauthn-roaming", T - 1),
            method("x", "u2", "totp", T),
        ];
        for (i, row) in rows.iter().enumerate() {
            let digest = format!("e{i}");
            s.create_enrollment(&t, &digest, &enrollment(&row.user_id, &row.id, T + 60))
                .await
                .unwrap();
            let c = Completion::AddMethod {
                row: row.clone(),
                replace_type: false,
            };
            assert!(s.complete_enrollment(&t, &digest, &c, T).await.unwrap());
        }
        let ids: Vec<_> = s
            .methods(&t, "u1")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, ["early", "Z", "a", "b"]);
        assert!(s.methods(&other, "u1").await.unwrap().is_empty());

        assert_eq!(
            s.method(&t, "u1", "a").await.unwrap(),
            Some(rows[1].clone())
        );
        assert_eq!(s.method(&t, "u2", "a").await.unwrap(), None);
        assert_eq!(s.method(&other, "u1", "a").await.unwrap(), None);

        assert!(s.rename_method(&t, "u1", "a", Some("Phone")).await.unwrap());
        assert_eq!(
            s.method(&t, "u1", "a")
                .await
                .unwrap()
                .unwrap()
                .name
                .as_deref(),
            Some("Phone")
        );
        assert!(s.rename_method(&t, "u1", "a", None).await.unwrap());
        assert_eq!(s.method(&t, "u1", "a").await.unwrap().unwrap().name, None);
        assert!(!s.rename_method(&t, "u2", "a", Some("x")).await.unwrap());
        assert!(!s.rename_method(&other, "u1", "a", Some("x")).await.unwrap());

        assert_eq!(
            s.delete_method(&t, "u2", "a", None).await.unwrap(),
            Removal::Missing
        );
        assert_eq!(
            s.delete_method(&t, "u1", "a", None).await.unwrap(),
            Removal::Removed
        );
        assert_eq!(
            s.delete_method(&t, "u1", "a", None).await.unwrap(),
            Removal::Missing
        );
        assert_eq!(s.methods(&t, "u1").await.unwrap().len(), 3);

        s.upsert_user(&t, &user("u1", "u1@example.com"))
            .await
            .unwrap();
        // The user and their methods in one read, in the same order.
        let (u, methods) = s.user_with_methods(&t, "u1").await.unwrap().unwrap();
        assert_eq!(Some(u), s.user_by_id(&t, "u1").await.unwrap());
        assert_eq!(methods, s.methods(&t, "u1").await.unwrap());
        assert_eq!(methods.len(), 3);
        s.upsert_user(&t, &user("u3", "u3@example.com"))
            .await
            .unwrap();
        let (u3, none) = s.user_with_methods(&t, "u3").await.unwrap().unwrap();
        assert_eq!((u3.user_id.as_str(), none.len()), ("u3", 0));
        assert_eq!(s.user_with_methods(&other, "u1").await.unwrap(), None);
        assert_eq!(s.user_with_methods(&t, "nobody").await.unwrap(), None);
        assert_eq!(
            s.clear_password(&other, "u1", T + 9, None).await.unwrap(),
            Removal::Missing
        );
        assert_eq!(
            s.clear_password(&t, "u1", T + 9, None).await.unwrap(),
            Removal::Removed
        );
        assert_eq!(
            s.clear_password(&t, "u1", T + 10, None).await.unwrap(),
            Removal::Missing
        );
        let u = s.user_by_id(&t, "u1").await.unwrap().unwrap();
        assert_eq!((u.password_hash, u.updated_at), (None, T + 9));
        assert_eq!(
            s.clear_password(&t, "nobody", T, None).await.unwrap(),
            Removal::Missing
        );
    }

    /// The user-with-methods read after every write that changes its answer
    /// (the SQLite store caches it; see `store/sqlite/cache.rs`).
    pub async fn reads_follow_writes(s: S) {
        let t = tenant(&s, "acme").await;
        async fn same(s: &S, t: &str, u: &str) {
            let combined = s.user_with_methods(t, u).await.unwrap();
            let apart = match s.user_by_id(t, u).await.unwrap() {
                Some(user) => Some((user, s.methods(t, u).await.unwrap())),
                None => None,
            };
            assert_eq!(combined, apart);
        }
        same(&s, &t, "u1").await;
        s.upsert_user(&t, &user("u1", "u1@example.com"))
            .await
            .unwrap();
        same(&s, &t, "u1").await;
        s.upsert_user(&t, &user("u1", "new@example.com"))
            .await
            .unwrap();
        same(&s, &t, "u1").await;

        let mut n = 0;
        let mut complete = async |c: Completion| {
            n += 1;
            let digest = format!("e{n}");
            s.create_enrollment(&t, &digest, &enrollment("u1", "m", T + 300))
                .await
                .unwrap();
            assert!(s.complete_enrollment(&t, &digest, &c, T).await.unwrap());
        };
        complete(Completion::AddMethod {
            row: method("totp|m1", "u1", "totp", T),
            replace_type: false,
        })
        .await;
        same(&s, &t, "u1").await;
        complete(Completion::AddMethod {
            row: method("rc|1", "u1", "recovery-code", T),
            replace_type: true,
        })
        .await;
        same(&s, &t, "u1").await;
        complete(Completion::AddMethod {
            row: method("rc|2", "u1", "recovery-code", T),
            replace_type: true,
        })
        .await;
        same(&s, &t, "u1").await;
        complete(Completion::SetPassword {
            user_id: "u1".into(),
            hash: "another".into(),
            at: T + 1,
        })
        .await;
        same(&s, &t, "u1").await;
        same(&s, &t, "u2").await;
        complete(Completion::SignUp {
            user: Box::new(user("u2", "u2@example.com")),
            row: method("passkey|p2", "u2", "passkey", T),
        })
        .await;
        same(&s, &t, "u2").await;

        assert!(
            s.update_method_data(
                &t,
                "totp|m1",
                &json!({ "id": "totp|m1" }),
                &json!({"k": 2}),
                Some(T + 2)
            )
            .await
            .unwrap()
        );
        same(&s, &t, "u1").await;
        assert!(
            s.consume_otp_step(&t, "u1", "totp|m1", 9, T + 3)
                .await
                .unwrap()
        );
        same(&s, &t, "u1").await;
        assert!(
            s.rename_method(&t, "u1", "totp|m1", Some("Phone"))
                .await
                .unwrap()
        );
        same(&s, &t, "u1").await;
        assert_eq!(
            s.delete_method(&t, "u1", "rc|2", None).await.unwrap(),
            Removal::Removed
        );
        same(&s, &t, "u1").await;
        assert_eq!(
            s.clear_password(&t, "u1", T + 4, None).await.unwrap(),
            Removal::Removed
        );
        same(&s, &t, "u1").await;
        let (u, methods) = s.user_with_methods(&t, "u1").await.unwrap().unwrap();
        assert_eq!(
            (u.email.as_str(), u.password_hash),
            ("new@example.com", None)
        );
        let names: Vec<_> = methods
            .iter()
            .map(|m| (m.id.as_str(), m.name.as_deref()))
            .collect();
        assert_eq!(names, [("totp|m1", Some("Phone"))]);
    }

    pub async fn password_history(s: S) {
        let t = tenant(&s, "acme").await;
        let mut u = user("u1", "u1@example.com");
        u.password_hash = Some("h0".into());
        s.upsert_user(&t, &u).await.unwrap();
        // h0 → h1 and h1 → h2 in the same second, then h2 → h3 and h3 → h4
        // with a clock that went back.
        for (i, at) in [(1, T), (2, T), (3, T + 5), (4, T + 1)] {
            let digest = format!("p{i}");
            s.create_enrollment(&t, &digest, &enrollment("u1", "password", T + 60))
                .await
                .unwrap();
            let c = Completion::SetPassword {
                user_id: "u1".into(),
                hash: format!("h{i}"),
                at,
            };
            assert!(s.complete_enrollment(&t, &digest, &c, T).await.unwrap());
        }
        assert_eq!(
            s.password_history(&t, "u1", 10).await.unwrap(),
            ["h2", "h3", "h1", "h0"]
        );
        assert_eq!(s.password_history(&t, "u1", 2).await.unwrap(), ["h2", "h3"]);
        assert!(s.password_history(&t, "u1", 0).await.unwrap().is_empty());
        // A negative limit is no limit.
        assert_eq!(s.password_history(&t, "u1", -1).await.unwrap().len(), 4);
        assert!(s.password_history(&t, "u2", 10).await.unwrap().is_empty());
        let other = tenant(&s, "other").await;
        assert!(
            s.password_history(&other, "u1", 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    pub async fn audit(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let events = [
            event("e1", T),
            event("e2", T),
            event("e3", T + 1),
            event("e4", T - 5),
            AuditEvent {
                client_id: None,
                user_id: None,
                ip: None,
                user_agent: Some("curl/8".into()),
                details: json!({ "nested": { "a": [1, null] } }),
                ..event("e5", T + 1)
            },
        ];
        for e in &events {
            s.record_audit(&t, e).await.unwrap();
        }
        s.record_audit(&other, &event("o1", T + 100)).await.unwrap();
        let ids = |v: Vec<AuditEvent>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        // The newest N (by date, then insertion), oldest first.
        assert_eq!(
            ids(s.audit_events(&t, 3).await.unwrap()),
            ["e2", "e3", "e5"]
        );
        let all = s.audit_events(&t, 10).await.unwrap();
        assert_eq!(
            all,
            [
                events[3].clone(),
                events[0].clone(),
                events[1].clone(),
                events[2].clone(),
                events[4].clone()
            ]
        );
        assert!(s.audit_events(&t, 0).await.unwrap().is_empty());
        assert_eq!(s.audit_events(&t, -1).await.unwrap(), all);
        assert_eq!(ids(s.audit_events(&other, 10).await.unwrap()), ["o1"]);
    }

    pub async fn race_redeem_code(s: S) {
        let t = tenant(&s, "acme").await;
        s.create_grant(&t, "g", "spa", Some("u1"), T).await.unwrap();
        s.create_code(&t, "code", "g", "req", T + 60).await.unwrap();
        let outcomes = race(|_| {
            let (s, t) = (s.clone(), t.clone());
            async move { s.redeem_code(&t, "code", T + 1).await.unwrap() }
        })
        .await;
        let fresh = outcomes
            .iter()
            .filter(|o| matches!(o, Redeem::Fresh(_)))
            .count();
        assert_eq!(fresh, 1, "{outcomes:?}");
        let replay = Redeem::Replayed {
            grant_id: "g".into(),
        };
        assert_eq!(
            outcomes.iter().filter(|o| **o == replay).count(),
            RACERS - 1
        );
    }

    /// The refresh grant's read: the token as `redeem_refresh_token` reads
    /// it, with its user.
    pub async fn refresh_token_and_user(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        s.upsert_user(&t, &user("u1", "u1@example.com"))
            .await
            .unwrap();
        s.create_grant(&t, "g", "spa", Some("u1"), T).await.unwrap();
        s.create_refresh_token(&t, "rt", &refresh("g", T + 3600, T + 600))
            .await
            .unwrap();
        let Redeem::Fresh((row, Some(found))) =
            s.refresh_token_and_user(&t, "rt", T + 1, 0).await.unwrap()
        else {
            panic!("expected the token and its user");
        };
        assert_eq!((row.grant_id.as_str(), row.user_id.as_str()), ("g", "u1"));
        assert_eq!((row.created_at, row.amr.len()), (T, 2));
        assert_eq!(found, user("u1", "u1@example.com"));
        // A token whose user is gone: the token, without a user.
        let mut orphan = refresh("g", T + 3600, T + 600);
        orphan.user_id = "gone".into();
        s.create_refresh_token(&t, "orphan", &orphan).await.unwrap();
        assert!(matches!(
            s.refresh_token_and_user(&t, "orphan", T + 1, 0)
                .await
                .unwrap(),
            Redeem::Fresh((_, None))
        ));
        // Rotated: a replay past the leeway, fresh within it.
        let successor = refresh("g", T + 3600, T + 700);
        s.redeem_refresh_token(&t, "rt", T + 10, Some(("rt-next", &successor)), 0)
            .await
            .unwrap();
        let replay = Redeem::Replayed {
            grant_id: "g".into(),
        };
        let read = |digest: &'static str, at: Timestamp, leeway: i64| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                rt(s.refresh_token_and_user(&t, digest, at, leeway)
                    .await
                    .unwrap()
                    .map(|(r, _)| r))
            }
        };
        assert_eq!(read("rt", T + 11, 0).await, replay);
        assert_eq!(read("rt", T + 11, 30).await, Redeem::Fresh(()));
        assert_eq!(read("rt", T + 600, 0).await, Redeem::Missing);
        assert_eq!(read("nope", T + 11, 0).await, Redeem::Missing);
        assert_eq!(
            rt(s.refresh_token_and_user(&other, "rt-next", T + 11, 0)
                .await
                .unwrap()
                .map(|(r, _)| r)),
            Redeem::Missing
        );
        s.revoke_grant(&t, "g", "reuse", T + 20).await.unwrap();
        assert_eq!(read("rt-next", T + 21, 0).await, Redeem::Missing);
    }

    pub async fn race_redeem_refresh_token(s: S) {
        let t = tenant(&s, "acme").await;
        s.create_grant(&t, "g", "spa", Some("u1"), T).await.unwrap();
        s.create_refresh_token(&t, "rt", &refresh("g", T + 3600, T + 600))
            .await
            .unwrap();
        let outcomes = race(|i| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                let successor = refresh("g", T + 3600, T + 700);
                s.redeem_refresh_token(&t, "rt", T + 1, Some((&format!("next{i}"), &successor)), 0)
                    .await
                    .unwrap()
            }
        })
        .await;
        let winners: Vec<usize> = (0..RACERS)
            .filter(|i| matches!(outcomes[*i], Redeem::Fresh(_)))
            .collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        let replay = Redeem::Replayed {
            grant_id: "g".into(),
        };
        let replays = outcomes.into_iter().filter(|o| rt(o.clone()) == replay);
        assert_eq!(replays.count(), RACERS - 1);
        // Only the winner's successor exists.
        for i in 0..RACERS {
            let stored = s
                .refresh_token_grant(&t, &format!("next{i}"))
                .await
                .unwrap();
            assert_eq!(stored.is_some(), winners == [i], "successor of racer {i}");
        }
    }

    /// Many tokens rotated at once (on SQLite, in shared batches): each gets
    /// its own row back and its own successor; a token of a revoked grant
    /// among them gets nothing.
    pub async fn rotations_at_once(s: S) {
        let t = tenant(&s, "acme").await;
        s.create_grant(&t, "g", "spa", Some("u1"), T).await.unwrap();
        s.create_grant(&t, "dead", "spa", Some("u1"), T)
            .await
            .unwrap();
        for i in 0..RACERS {
            let grant = if i == 3 { "dead" } else { "g" };
            let mut row = refresh(grant, T + 3600, T + 600);
            row.scope = format!("scope-{i}");
            s.create_refresh_token(&t, &format!("rt{i}"), &row)
                .await
                .unwrap();
        }
        s.revoke_grant(&t, "dead", "test", T).await.unwrap();
        let outcomes = race(|i| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                let mut next = refresh("g", T + 3600, T + 700);
                next.scope = format!("next-{i}");
                s.redeem_refresh_token(
                    &t,
                    &format!("rt{i}"),
                    T + 1,
                    Some((&format!("next{i}"), &next)),
                    0,
                )
                .await
                .unwrap()
            }
        })
        .await;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let stored = s
                .redeem_refresh_token(&t, &format!("next{i}"), T + 2, None, 0)
                .await
                .unwrap();
            if i == 3 {
                assert_eq!(rt(outcome), Redeem::Missing);
                assert_eq!(rt(stored), Redeem::Missing);
                continue;
            }
            let Redeem::Fresh(row) = outcome else {
                panic!("rotation {i}: {outcome:?}");
            };
            assert_eq!(
                (row.scope, row.rotated_at),
                (format!("scope-{i}"), Some(T + 1))
            );
            let Redeem::Fresh(successor) = stored else {
                panic!("successor {i}: {stored:?}");
            };
            assert_eq!(successor.scope, format!("next-{i}"));
        }
    }

    /// A request that goes away (its client hung up) while its rotation is
    /// being written leaves the token either unspent or spent with its
    /// successor stored, never half of it, and the store writes on.
    pub async fn rotation_abandoned_by_its_caller(s: S) {
        let t = tenant(&s, "acme").await;
        s.create_grant(&t, "g", "spa", Some("u1"), T).await.unwrap();
        let successor = refresh("g", T + 3600, T + 700);
        for i in 0..20 {
            let digest = format!("rt{i}");
            let next = format!("next{i}");
            s.create_refresh_token(&t, &digest, &refresh("g", T + 3600, T + 600))
                .await
                .unwrap();
            // Polled once, then dropped.
            let rotation = s.redeem_refresh_token(&t, &digest, T + 1, Some((&next, &successor)), 0);
            let _ = tokio::time::timeout(std::time::Duration::ZERO, rotation).await;
            // A write after it: on SQLite it waits for whatever was started.
            s.create_grant(&t, &format!("after{i}"), "spa", Some("u1"), T + 1)
                .await
                .unwrap();
            // On PostgreSQL the abandoned statement may still be running on
            // its connection: wait (boundedly) until both reads agree.
            let mut seen = Vec::new();
            for _ in 0..400 {
                let spent = !matches!(
                    s.redeem_refresh_token(&t, &digest, T + 2, None, 0)
                        .await
                        .unwrap(),
                    Redeem::Fresh(_)
                );
                let stored = s.refresh_token_grant(&t, &next).await.unwrap().is_some();
                let again = !matches!(
                    s.redeem_refresh_token(&t, &digest, T + 2, None, 0)
                        .await
                        .unwrap(),
                    Redeem::Fresh(_)
                );
                seen.push((spent, stored));
                if spent == stored && spent == again {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let settled = seen.last().is_some_and(|(spent, stored)| spent == stored);
            assert!(
                settled,
                "round {i}: (spent, successor stored) seen {seen:?}"
            );
            // The write after it is committed: a new read sees it.
            assert!(!s.grant_revoked(&t, &format!("after{i}")).await.unwrap());
        }
    }

    pub async fn otp_steps(s: S) {
        let t = tenant(&s, "acme").await;
        s.upsert_user(&t, &user("u1", "u1@example.com"))
            .await
            .unwrap();
        s.create_enrollment(&t, "e", &enrollment("u1", "totp|m", T + 60))
            .await
            .unwrap();
        let row = MethodRow {
            last_otp_step: Some(10),
            ..method("totp|m", "u1", "totp", T)
        };
        let c = Completion::AddMethod {
            row,
            replace_type: false,
        };
        assert!(s.complete_enrollment(&t, "e", &c, T).await.unwrap());
        assert_eq!(
            s.method(&t, "u1", "totp|m")
                .await
                .unwrap()
                .unwrap()
                .last_otp_step,
            Some(10)
        );
        // The step used at enrollment, or an older one, never again.
        assert!(
            !s.consume_otp_step(&t, "u1", "totp|m", 10, T + 1)
                .await
                .unwrap()
        );
        assert!(
            !s.consume_otp_step(&t, "u1", "totp|m", 9, T + 1)
                .await
                .unwrap()
        );
        assert!(
            s.consume_otp_step(&t, "u1", "totp|m", 11, T + 2)
                .await
                .unwrap()
        );
        assert!(
            !s.consume_otp_step(&t, "u1", "totp|m", 11, T + 3)
                .await
                .unwrap()
        );
        let m = s.method(&t, "u1", "totp|m").await.unwrap().unwrap();
        assert_eq!((m.last_otp_step, m.last_auth_at), (Some(11), Some(T + 2)));
        // Only the user's own method.
        assert!(!s.consume_otp_step(&t, "u2", "totp|m", 12, T).await.unwrap());
        assert!(
            !s.consume_otp_step(&t, "u1", "totp|other", 12, T)
                .await
                .unwrap()
        );
    }

    pub async fn credentials_are_unique(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        for (tn, uid, e) in [(&t, "u1", "e1"), (&t, "u2", "e2"), (&other, "u1", "e3")] {
            s.upsert_user(tn, &user(uid, &format!("{uid}@example.com")))
                .await
                .unwrap();
            s.create_enrollment(tn, e, &enrollment(uid, "passkey|new", T + 60))
                .await
                .unwrap();
        }
        let add = |id: &str, uid: &str| Completion::AddMethod {
            row: MethodRow {
                credential_id: Some("Y3JlZA".into()),
                ..method(id, uid, "passkey", T)
            },
            replace_type: false,
        };
        assert!(
            s.complete_enrollment(&t, "e1", &add("passkey|a", "u1"), T)
                .await
                .unwrap()
        );
        // The same credential for another user of the tenant: refused, and
        // the enrollment is not consumed.
        assert!(matches!(
            s.complete_enrollment(&t, "e2", &add("passkey|b", "u2"), T)
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert!(s.enrollment(&t, "e2", T).await.unwrap().is_some());
        // Another tenant is another namespace.
        assert!(
            s.complete_enrollment(&other, "e3", &add("passkey|c", "u1"), T)
                .await
                .unwrap()
        );
        let found = s.method_by_credential(&t, "Y3JlZA").await.unwrap().unwrap();
        assert_eq!(
            (found.id.as_str(), found.user_id.as_str()),
            ("passkey|a", "u1")
        );
        assert!(
            s.method_by_credential(&t, "bm9uZQ")
                .await
                .unwrap()
                .is_none()
        );
        let read = s.method(&t, "u1", "passkey|a").await.unwrap().unwrap();
        assert!(
            s.update_method_data(
                &t,
                "passkey|a",
                &read.data,
                &json!({"counter": 2}),
                Some(T + 9)
            )
            .await
            .unwrap()
        );
        let m = s.method(&t, "u1", "passkey|a").await.unwrap().unwrap();
        assert_eq!(
            (m.data["counter"].as_i64(), m.last_auth_at),
            (Some(2), Some(T + 9))
        );
        // Another login that read the data before that write loses: its
        // older counter is not written over the newer one.
        assert!(
            !s.update_method_data(
                &t,
                "passkey|a",
                &read.data,
                &json!({"counter": 1}),
                Some(T + 10)
            )
            .await
            .unwrap()
        );
        let m = s.method(&t, "u1", "passkey|a").await.unwrap().unwrap();
        assert_eq!(
            (m.data["counter"].as_i64(), m.last_auth_at),
            (Some(2), Some(T + 9))
        );
        // A method that is gone: nothing written.
        assert!(
            !s.update_method_data(&t, "passkey|gone", &read.data, &json!({"counter": 3}), None)
                .await
                .unwrap()
        );
    }

    /// Logins with one key at once, each writing the counter it saw: one
    /// write wins, the others find the data changed.
    pub async fn race_method_data(s: S) {
        let t = tenant(&s, "acme").await;
        s.upsert_user(&t, &user("u1", "u1@example.com"))
            .await
            .unwrap();
        s.create_enrollment(&t, "e1", &enrollment("u1", "passkey|k", T + 60))
            .await
            .unwrap();
        let row = method("passkey|k", "u1", "passkey", T);
        let read = row.data.clone();
        let add = Completion::AddMethod {
            row,
            replace_type: false,
        };
        assert!(s.complete_enrollment(&t, "e1", &add, T).await.unwrap());
        let outcomes = race(|i| {
            let (s, t, read) = (s.clone(), t.clone(), read.clone());
            async move {
                s.update_method_data(
                    &t,
                    "passkey|k",
                    &read,
                    &json!({ "counter": 10 + i }),
                    Some(T + 1),
                )
                .await
                .unwrap()
            }
        })
        .await;
        let winners: Vec<usize> = (0..RACERS).filter(|i| outcomes[*i]).collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        let m = s.method(&t, "u1", "passkey|k").await.unwrap().unwrap();
        assert_eq!(m.data["counter"].as_u64(), Some(10 + winners[0] as u64));
    }

    pub async fn race_otp_step(s: S) {
        let t = tenant(&s, "acme").await;
        s.upsert_user(&t, &user("u1", "u1@example.com"))
            .await
            .unwrap();
        s.create_enrollment(&t, "e", &enrollment("u1", "totp|m", T + 60))
            .await
            .unwrap();
        let c = Completion::AddMethod {
            row: method("totp|m", "u1", "totp", T),
            replace_type: false,
        };
        assert!(s.complete_enrollment(&t, "e", &c, T).await.unwrap());
        // One code presented by every racer: one use wins.
        let won = race(|_| {
            let (s, t) = (s.clone(), t.clone());
            async move { s.consume_otp_step(&t, "u1", "totp|m", 42, T).await.unwrap() }
        })
        .await;
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    }

    pub async fn race_complete_enrollment(s: S) {
        let t = tenant(&s, "acme").await;
        s.upsert_user(&t, &user("u1", "u1@example.com"))
            .await
            .unwrap();
        // The same enrollment, completed by every racer: one wins.
        s.create_enrollment(&t, "e", &enrollment("u1", "totp|m", T + 60))
            .await
            .unwrap();
        let won = race(|i| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                let c = Completion::AddMethod {
                    row: method(&format!("totp|{i}"), "u1", "totp", T),
                    replace_type: false,
                };
                s.complete_enrollment(&t, "e", &c, T).await.unwrap()
            }
        })
        .await;
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
        assert_eq!(s.methods(&t, "u1").await.unwrap().len(), 1);

        // Different enrollments of one user replacing one type: one remains.
        for i in 0..RACERS {
            s.create_enrollment(&t, &format!("r{i}"), &enrollment("u1", "rc", T + 60))
                .await
                .unwrap();
        }
        let won = race(|i| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                let c = Completion::AddMethod {
                    row: method(&format!("rc|{i}"), "u1", "recovery-code", T),
                    replace_type: true,
                };
                s.complete_enrollment(&t, &format!("r{i}"), &c, T)
                    .await
                    .unwrap()
            }
        })
        .await;
        assert!(won.iter().all(|w| *w));
        let codes = s.methods(&t, "u1").await.unwrap();
        let codes: Vec<_> = codes
            .iter()
            .filter(|m| m.method_type == FactorType::RecoveryCode)
            .collect();
        assert_eq!(codes.len(), 1, "{codes:?}");

        // Different password changes at once: each old hash is kept once.
        let won = race(|i| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                let digest = format!("p{i}");
                s.create_enrollment(&t, &digest, &enrollment("u1", "password", T + 60))
                    .await
                    .unwrap();
                let c = Completion::SetPassword {
                    user_id: "u1".into(),
                    hash: format!("h{i}"),
                    at: T + 2,
                };
                s.complete_enrollment(&t, &digest, &c, T).await.unwrap()
            }
        })
        .await;
        assert!(won.iter().all(|w| *w));
        let history = s.password_history(&t, "u1", 100).await.unwrap();
        let current = s
            .user_by_id(&t, "u1")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap();
        let mut seen: HashSet<String> = history.iter().cloned().collect();
        assert_eq!(seen.len(), RACERS, "{history:?}");
        assert!(
            seen.insert(current),
            "the current hash is not in the history"
        );
        assert!(seen.contains("hash-of-u1"));
    }

    pub async fn race_counters(s: S) {
        let t = tenant(&s, "acme").await;
        // Concurrent wrong attempts each count, exactly once.
        s.create_enrollment(&t, "e", &enrollment("u1", "totp|m", T + 60))
            .await
            .unwrap();
        let max = RACERS as i64 + 4;
        let left = race(|_| {
            let (s, t) = (s.clone(), t.clone());
            async move { s.enrollment_failed(&t, "e", max).await.unwrap() }
        })
        .await;
        let mut left_sorted = left.clone();
        left_sorted.sort_unstable();
        let expected: Vec<i64> = (max - RACERS as i64..max).collect();
        assert_eq!(left_sorted, expected, "{left:?}");
        assert_eq!(
            s.enrollment(&t, "e", T).await.unwrap().unwrap().attempts,
            RACERS as i64
        );

        // Concurrent login failures each count; the block starts at 10.
        race(|i| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                s.record_login_failure(&t, "u1", "ip", T + i as i64, 10, T + 500)
                    .await
                    .unwrap();
            }
        })
        .await;
        assert_eq!(
            s.login_failures(&t, "u1", "ip").await.unwrap(),
            (RACERS as i64, Some(T + 500))
        );
    }
    /// What the sweep deletes, and what it must keep: nothing that a read
    /// would still answer differently without it.
    pub async fn sweep(s: S) {
        let t = tenant(&s, "acme").await;
        let other = tenant(&s, "other").await;
        let grace = 100;
        for g in ["g-live", "g-old", "g-bare", "g-code", "g-used", "g-rev"] {
            s.create_grant(&t, g, "spa", Some("u1"), T).await.unwrap();
        }
        s.create_grant(&other, "g-other", "spa", Some("u1"), T)
            .await
            .unwrap();
        // Refresh tokens end at the earlier of their two expiries.
        s.create_refresh_token(&t, "rt-live", &refresh("g-live", T + 10_000, T + 5_000))
            .await
            .unwrap();
        s.create_refresh_token(&t, "rt-old", &refresh("g-old", T + 50, T + 40))
            .await
            .unwrap();
        s.create_refresh_token(&t, "rt-rev", &refresh("g-rev", T + 10_000, T + 5_000))
            .await
            .unwrap();
        s.create_refresh_token(&other, "rt-other", &refresh("g-other", T + 10, T + 10))
            .await
            .unwrap();
        // Codes: one never used, one used whose grant has a refresh token.
        s.create_code(&t, "c-unused", "g-code", "{}", T + 60)
            .await
            .unwrap();
        s.create_code(&t, "c-used", "g-used", "{}", T + 60)
            .await
            .unwrap();
        assert!(matches!(
            s.redeem_code(&t, "c-used", T + 1).await.unwrap(),
            Redeem::Fresh(_)
        ));
        s.create_refresh_token(&t, "rt-used", &refresh("g-used", T + 10_000, T + 5_000))
            .await
            .unwrap();
        s.revoke_grant(&t, "g-rev", "logout", T + 2).await.unwrap();
        // Sessions, login transactions, enrollments, login failures.
        let session = |expires_at| SessionRow {
            user_id: "u1".into(),
            auth_time: T,
            amr: vec!["pwd".into()],
            expires_at,
        };
        s.create_session(&t, "s-ended", &session(T + 50), T)
            .await
            .unwrap();
        s.create_session(&t, "s-revoked", &session(T + 10_000), T)
            .await
            .unwrap();
        s.revoke_session(&t, "s-revoked", T + 1).await.unwrap();
        s.create_session(&t, "s-live", &session(T + 10_000), T)
            .await
            .unwrap();
        s.create_session(&other, "s-other", &session(T + 50), T)
            .await
            .unwrap();
        s.create_login_transaction(&t, "tx-ended", "{}", T, T + 50)
            .await
            .unwrap();
        s.create_login_transaction(&t, "tx-live", "{}", T, T + 10_000)
            .await
            .unwrap();
        s.create_enrollment(&t, "e-ended", &enrollment("u1", "totp|a", T + 50))
            .await
            .unwrap();
        s.create_upstream_login(&t, "st-ended", &upstream_login("tx-ended", T + 50))
            .await
            .unwrap();
        s.create_upstream_login(&t, "st-live", &upstream_login("tx-live", T + 10_000))
            .await
            .unwrap();
        s.create_enrollment(&t, "e-live", &enrollment("u1", "totp|b", T + 10_000))
            .await
            .unwrap();
        let ip = "198.51.100.7";
        s.record_login_failure(&t, "u-unblocked", ip, T, 1, T + 50)
            .await
            .unwrap();
        s.record_login_failure(&t, "u-blocked", ip, T, 1, T + 10_000)
            .await
            .unwrap();
        s.record_login_failure(&t, "u-counted", ip, T, 5, T + 50)
            .await
            .unwrap();
        // Read before the sweeps: the SQLite store caches these answers.
        assert!(!s.grant_revoked(&t, "g-bare").await.unwrap());
        assert!(s.grant_revoked(&t, "g-rev").await.unwrap());

        // At T + 100, nothing token-like has been over for `grace` yet;
        // what has ended, and the revoked grant with its token, go.
        let swept = s.sweep_expired(&t, T + 100, grace, 1000).await.unwrap();
        assert_eq!(
            swept,
            Swept {
                refresh_tokens: 0,
                auth_codes: 0,
                grants: 1,
                sessions: 2,
                login_transactions: 1,
                enrollments: 1,
                login_failures: 1,
                connect_transactions: 0,
                upstream_logins: 1,
                push_transactions: 0,
                account_tickets: 0,
            }
        );
        assert_eq!(
            s.sweep_grants(&t, T, None, 1000).await.unwrap(),
            (0, None),
            "no grant was created before T"
        );
        assert!(s.grant_revoked(&t, "g-rev").await.unwrap());
        assert_eq!(s.refresh_token_grant(&t, "rt-rev").await.unwrap(), None);
        assert!(s.refresh_token_grant(&t, "rt-old").await.unwrap().is_some());
        assert!(
            s.session(&t, "s-live", T + 100, 3600)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            s.login_failures(&t, "u-unblocked", ip).await.unwrap(),
            (0, None)
        );
        assert_eq!(
            s.login_failures(&t, "u-blocked", ip).await.unwrap(),
            (1, Some(T + 10_000))
        );
        assert_eq!(
            s.login_failures(&t, "u-counted", ip).await.unwrap(),
            (1, None)
        );
        assert!(!s.grant_revoked(&t, "g-bare").await.unwrap());
        assert!(
            s.login_transaction(&t, "tx-live", T + 100)
                .await
                .unwrap()
                .is_some()
        );
        assert!(s.enrollment(&t, "e-live", T + 100).await.unwrap().is_some());
        assert!(
            s.upstream_login(&t, "st-live", T + 100)
                .await
                .unwrap()
                .is_some()
        );

        // At T + 200: the token that ended at T + 40 and the unused code
        // are past their grace; the used code stays while its grant has a
        // refresh token, so replaying it is still seen as a replay.
        let swept = s.sweep_expired(&t, T + 200, grace, 1000).await.unwrap();
        assert_eq!(
            (swept.refresh_tokens, swept.auth_codes, swept.total()),
            (1, 1, 2)
        );
        let replay = Redeem::Replayed {
            grant_id: "g-used".into(),
        };
        assert_eq!(s.redeem_code(&t, "c-used", T + 200).await.unwrap(), replay);
        // The grants with nothing left and created before T + 100 go: the
        // one that never had a token, the one whose token went, the one
        // whose code went. Each reads as revoked once gone.
        assert_eq!(
            s.sweep_grants(&t, T + 100, None, 1000).await.unwrap(),
            (3, None)
        );
        for g in ["g-bare", "g-old", "g-code"] {
            assert!(s.grant_revoked(&t, g).await.unwrap(), "{g}");
        }
        for g in ["g-live", "g-used"] {
            assert!(!s.grant_revoked(&t, g).await.unwrap(), "{g}");
        }
        // The other tenant was not touched.
        assert!(
            s.refresh_token_grant(&other, "rt-other")
                .await
                .unwrap()
                .is_some()
        );
        assert!(!s.grant_revoked(&other, "g-other").await.unwrap());

        // Once the live family has ended too, everything of it goes: the
        // tokens first, then the used code, then the grants.
        let later = T + 5_000 + grace + 1;
        let swept = s.sweep_expired(&t, later, grace, 1000).await.unwrap();
        assert_eq!(
            (swept.refresh_tokens, swept.auth_codes, swept.total()),
            (2, 1, 3)
        );
        assert_eq!(
            s.sweep_grants(&t, later - grace, None, 1000).await.unwrap(),
            (2, None)
        );
        assert_eq!(
            s.redeem_code(&t, "c-used", later).await.unwrap(),
            Redeem::Missing
        );
        // Nothing left to do: what remains is live.
        assert_eq!(
            s.sweep_expired(&t, later, grace, 1000).await.unwrap(),
            Swept::default()
        );
        assert!(
            s.session(&t, "s-live", later, 10_000)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            s.sweep_grants(&t, later - grace, None, 1000).await.unwrap(),
            (0, None)
        );
    }

    /// A sweep's statements each delete at most a chunk, and the walk over
    /// grants goes on from where it stopped.
    pub async fn sweep_in_chunks(s: S) {
        let t = tenant(&s, "acme").await;
        for i in 0..7 {
            let id = format!("s{i}");
            let row = SessionRow {
                user_id: "u1".into(),
                auth_time: T,
                amr: vec!["pwd".into()],
                expires_at: T + 10,
            };
            s.create_session(&t, &id, &row, T).await.unwrap();
        }
        let mut counts = Vec::new();
        loop {
            let swept = s.sweep_expired(&t, T + 10, 0, 3).await.unwrap();
            counts.push(swept.sessions);
            if !swept.reached(3) {
                break;
            }
        }
        assert_eq!(counts, [3, 3, 1]);

        // Seven grants created at three moments; the ones with a code stay.
        for i in 0..7 {
            let g = format!("g{i}");
            s.create_grant(&t, &g, "spa", Some("u1"), T + i / 3)
                .await
                .unwrap();
            if i % 3 == 1 {
                s.create_code(&t, &format!("c{i}"), &g, "{}", T + 1_000)
                    .await
                    .unwrap();
            }
        }
        let (mut from, mut deleted, mut calls) = (None, 0, 0);
        loop {
            let (n, next) = s.sweep_grants(&t, T + 100, from.as_ref(), 2).await.unwrap();
            deleted += n;
            calls += 1;
            match next {
                Some(cursor) => from = Some(cursor),
                None => break,
            }
        }
        assert_eq!((deleted, calls), (5, 4));
        for i in 0..7 {
            let kept = i % 3 == 1;
            assert_eq!(
                s.grant_revoked(&t, &format!("g{i}")).await.unwrap(),
                !kept,
                "g{i}"
            );
        }
    }

    /// The ways to log in as the service counts them.
    const LOGIN: LoginMethods<'static> = LoginMethods {
        types: &["passkey"],
        password: true,
    };

    /// A removal with `keep` goes only while another way to log in is left.
    pub async fn last_login_method(s: S) {
        let t = tenant(&s, "acme").await;
        s.upsert_user(&t, &user("u1", "u1@example.com"))
            .await
            .unwrap();
        s.create_enrollment(&t, "e1", &enrollment("u1", "passkey|a", T + 300))
            .await
            .unwrap();
        let add = |id: &str| Completion::AddMethod {
            row: method(id, "u1", "passkey", T),
            replace_type: false,
        };
        assert!(
            s.complete_enrollment(&t, "e1", &add("passkey|a"), T)
                .await
                .unwrap()
        );
        s.create_enrollment(&t, "e2", &enrollment("u1", "totp|m", T + 300))
            .await
            .unwrap();
        let totp = Completion::AddMethod {
            row: method("totp|m", "u1", "totp", T),
            replace_type: false,
        };
        assert!(s.complete_enrollment(&t, "e2", &totp, T).await.unwrap());
        // Password and passkey: either may go, then not the other; a TOTP
        // does not count as a way to log in.
        assert_eq!(
            s.clear_password(&t, "u1", T, Some(LOGIN)).await.unwrap(),
            Removal::Removed
        );
        assert_eq!(
            s.delete_method(&t, "u1", "passkey|a", Some(LOGIN))
                .await
                .unwrap(),
            Removal::LastLogin
        );
        assert_eq!(
            s.clear_password(&t, "u1", T, Some(LOGIN)).await.unwrap(),
            Removal::Missing
        );
        assert_eq!(
            s.delete_method(&t, "u1", "passkey|b", Some(LOGIN))
                .await
                .unwrap(),
            Removal::Missing
        );
        assert_eq!(s.methods(&t, "u1").await.unwrap().len(), 2);
        // Not a way to log in: no check.
        assert_eq!(
            s.delete_method(&t, "u1", "totp|m", None).await.unwrap(),
            Removal::Removed
        );
        // With a password back, the passkey may go, and then not the password.
        s.upsert_user(&t, &user("u1", "u1@example.com"))
            .await
            .unwrap();
        assert_eq!(
            s.delete_method(&t, "u1", "passkey|a", Some(LOGIN))
                .await
                .unwrap(),
            Removal::Removed
        );
        assert_eq!(
            s.clear_password(&t, "u1", T, Some(LOGIN)).await.unwrap(),
            Removal::LastLogin
        );
        let (u, methods) = s.user_with_methods(&t, "u1").await.unwrap().unwrap();
        assert!(u.password_hash.is_some() && methods.is_empty());
    }

    /// The last two ways to log in removed at once, many times over: one
    /// removal goes, the other is refused, and one way is always left
    /// (password and passkey; two passkeys).
    pub async fn race_last_login_method(s: S) {
        let t = tenant(&s, "acme").await;
        for round in 0..40 {
            let uid = format!("u{round}");
            let mut u = user(&uid, &format!("{uid}@example.com"));
            let two_passkeys = round % 2 == 1;
            if two_passkeys {
                u.password_hash = None;
            }
            s.upsert_user(&t, &u).await.unwrap();
            let (a, b) = (format!("passkey|a{round}"), format!("passkey|b{round}"));
            let keys = if two_passkeys {
                vec![a.clone(), b.clone()]
            } else {
                vec![a.clone()]
            };
            for (i, id) in keys.iter().enumerate() {
                let digest = format!("e{round}-{i}");
                s.create_enrollment(&t, &digest, &enrollment(&uid, id, T + 300))
                    .await
                    .unwrap();
                let add = Completion::AddMethod {
                    row: method(id, &uid, "passkey", T),
                    replace_type: false,
                };
                assert!(s.complete_enrollment(&t, &digest, &add, T).await.unwrap());
            }
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let racer = |first: bool| {
                let (s, t, uid, barrier) = (s.clone(), t.clone(), uid.clone(), barrier.clone());
                let (a, b) = (a.clone(), b.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    match (first, two_passkeys) {
                        (true, false) => s.clear_password(&t, &uid, T, Some(LOGIN)).await,
                        (true, true) => s.delete_method(&t, &uid, &b, Some(LOGIN)).await,
                        (false, _) => s.delete_method(&t, &uid, &a, Some(LOGIN)).await,
                    }
                })
            };
            let (first, second) = (racer(true), racer(false));
            let mut outcomes = [
                first.await.unwrap().unwrap(),
                second.await.unwrap().unwrap(),
            ];
            outcomes.sort_by_key(|o| *o != Removal::Removed);
            assert_eq!(
                outcomes,
                [Removal::Removed, Removal::LastLogin],
                "round {round}"
            );
            let (u, methods) = s.user_with_methods(&t, &uid).await.unwrap().unwrap();
            let left = methods.len() + usize::from(u.password_hash.is_some());
            assert_eq!(left, 1, "round {round}");
        }
    }

    /// Completions past the most methods a user may have are refused,
    /// writing and consuming nothing; replacing adds nothing and goes; of
    /// enrollments racing for the last place, one gets it.
    pub async fn enrollment_cap(s: S) {
        const MAX: i64 = 5;
        let t = tenant(&s, "acme").await;
        s.upsert_user(&t, &user("u1", "u1@example.com"))
            .await
            .unwrap();
        let add = |id: &str, kind: &str, replace_type: bool| Completion::AddMethod {
            row: method(id, "u1", kind, T),
            replace_type,
        };
        let finish = |digest: String, c: Completion| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                s.create_enrollment(&t, &digest, &enrollment("u1", "x", T + 300))
                    .await
                    .unwrap();
                s.finish_enrollment(&t, &digest, &c, T, Some(MAX))
                    .await
                    .unwrap()
            }
        };
        // The password and three methods: four of five.
        for i in 0..3 {
            let c = add(&format!("totp|{i}"), "totp", false);
            assert_eq!(finish(format!("e{i}"), c).await, Finish::Done);
        }
        // Racing for the last place: one gets it, the others are refused
        // and their enrollments stay.
        let outcomes = race(|i| {
            finish(
                format!("r{i}"),
                add(&format!("passkey|{i}"), "passkey", false),
            )
        })
        .await;
        assert_eq!(outcomes.iter().filter(|o| **o == Finish::Done).count(), 1);
        assert_eq!(
            outcomes.iter().filter(|o| **o == Finish::Full).count(),
            RACERS - 1
        );
        assert_eq!(s.methods(&t, "u1").await.unwrap().len(), 4);
        let refused = outcomes.iter().position(|o| *o == Finish::Full).unwrap();
        assert!(
            s.enrollment(&t, &format!("r{refused}"), T)
                .await
                .unwrap()
                .is_some()
        );
        // Full: a new password replaces the old one and a recovery code
        // replaced by another adds nothing, so both go; a new method does not.
        let password = Completion::SetPassword {
            user_id: "u1".into(),
            hash: "h2".into(),
            at: T,
        };
        assert_eq!(finish("p1".into(), password.clone()).await, Finish::Done);
        assert_eq!(
            finish("x1".into(), add("totp|x", "totp", false)).await,
            Finish::Full
        );
        assert_eq!(
            s.delete_method(&t, "u1", "totp|0", None).await.unwrap(),
            Removal::Removed
        );
        assert_eq!(
            finish("c1".into(), add("rc|1", "recovery-code", true)).await,
            Finish::Done
        );
        assert_eq!(
            finish("c2".into(), add("rc|2", "recovery-code", true)).await,
            Finish::Done
        );
        // Without a password, setting one adds a method: refused when full.
        assert_eq!(
            s.clear_password(&t, "u1", T, None).await.unwrap(),
            Removal::Removed
        );
        assert_eq!(
            finish("x2".into(), add("totp|y", "totp", false)).await,
            Finish::Done
        );
        assert_eq!(finish("p2".into(), password).await, Finish::Full);
        assert_eq!(s.methods(&t, "u1").await.unwrap().len(), 5);
        // Without a cap, nothing is counted.
        assert!(
            s.complete_enrollment(&t, "x1", &add("totp|x", "totp", false), T)
                .await
                .unwrap()
        );
    }
}
