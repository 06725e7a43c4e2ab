//! Putting a server together from its configuration: data directory, store,
//! master key, state.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::app::AppState;
use crate::clock::{SharedClock, SystemClock};
use crate::crypto::password::PasswordHasherConfig;
use crate::crypto::seal::{SealError, Sealer};
use crate::rng::{Rng, RngExt, SharedRng, SystemRng};
use crate::store::postgres::{PoolOptions, PostgresStore};
use crate::store::sqlite::{SqliteOptions, SqliteStore};
use crate::store::{Store, StoreError};

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// base64, base64url or hex of 32 bytes.
    Value(String),
    File(PathBuf),
    /// Generated once into the data directory (development).
    DataDir,
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// `latchkey.db` in the data directory.
    Sqlite,
    /// A PostgreSQL database shared by any number of nodes.
    Postgres { url: String, pool: PoolOptions },
}

pub struct Options {
    pub data_dir: PathBuf,
    pub database: Database,
    /// How the SQLite store behaves (with `Database::Sqlite`).
    pub sqlite: SqliteOptions,
    pub master_key: MasterKeySource,
    pub passwords: PasswordHasherConfig,
    pub clock: SharedClock,
    pub rng: SharedRng,
    /// Where provider secrets come from (the environment by default).
    pub secrets: crate::services::delivery::SharedSecrets,
    /// Reverse proxies whose `X-Forwarded-For`/`Forwarded` are believed.
    pub trusted_proxies: crate::http::proxy::TrustedProxies,
}

impl Options {
    pub fn new(data_dir: PathBuf, master_key: MasterKeySource) -> Self {
        Self {
            data_dir,
            database: Database::Sqlite,
            sqlite: SqliteOptions::default(),
            master_key,
            passwords: PasswordHasherConfig::default(),
            clock: Arc::new(SystemClock),
            rng: Arc::new(SystemRng),
            secrets: Arc::new(crate::services::delivery::EnvSecrets),
            trusted_proxies: crate::http::proxy::TrustedProxies::default(),
        }
    }
}

fn decode_key(text: &str) -> anyhow::Result<Vec<u8>> {
    let t = text.trim();
    let candidates = [
        STANDARD.decode(t).ok(),
        URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')).ok(),
        (t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
            (0..32)
                .filter_map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).ok())
                .collect()
        }),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|k: &Vec<u8>| k.len() == 32)
        .context("the master key must be 32 bytes, written as base64, base64url or hex")
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

fn master_key(source: &MasterKeySource, data_dir: &Path, rng: &dyn Rng) -> anyhow::Result<Vec<u8>> {
    match source {
        MasterKeySource::Value(v) => decode_key(v),
        MasterKeySource::File(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading the master key file {}", p.display()))?;
            decode_key(&text)
        }
        MasterKeySource::DataDir => {
            let path = data_dir.join("master.key");
            if !path.exists() {
                let key: [u8; 32] = rng.bytes();
                write_private(&path, &format!("{}\n", URL_SAFE_NO_PAD.encode(key)))?;
                tracing::warn!(
                    path = %path.display(),
                    "generated a development master key; set LATCHKEY_MASTER_KEY in production"
                );
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            decode_key(&text)
        }
    }
}

/// A database migrated by a newer latchkey is refused with a clear message.
fn schema_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Migrate(sqlx::migrate::MigrateError::VersionMissing(v)) => anyhow::anyhow!(
            "the database schema has migration {v}, which this latchkey does not know: it was \
             migrated by a newer version; run that version (or newer)"
        ),
        StoreError::Migrate(sqlx::migrate::MigrateError::VersionMismatch(v)) => anyhow::anyhow!(
            "migration {v} in the database differs from this latchkey's; refusing to start"
        ),
        e => anyhow::Error::new(e),
    }
}

const KEY_CHECK: &str = "master_key_check";
const KEY_CHECK_CONTEXT: &str = "master-key-check";

/// Opens the data directory and builds the application state. A master key
/// other than the one the data was sealed with is refused here, before any
/// request is served.
pub async fn open(opts: Options) -> anyhow::Result<Arc<AppState>> {
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("creating the data directory {}", opts.data_dir.display()))?;
    let key = master_key(&opts.master_key, &opts.data_dir, &*opts.rng)?;
    let sealer = Arc::new(Sealer::new(&key).map_err(|e| anyhow::anyhow!(e))?);
    let store: Arc<dyn Store> = match &opts.database {
        Database::Sqlite => Arc::new(
            SqliteStore::open_with(
                &opts.data_dir.join("latchkey.db"),
                opts.clock.clone(),
                &opts.sqlite,
            )
            .await
            .map_err(schema_error)
            .context("opening the SQLite database")?,
        ),
        Database::Postgres { url, pool } => Arc::new(
            PostgresStore::connect(url, pool.clone())
                .await
                .map_err(schema_error)
                .context("opening the PostgreSQL database")?,
        ),
    };
    let probe = sealer.seal(&*opts.rng, KEY_CHECK_CONTEXT, b"latchkey");
    let stored = store.meta_init(KEY_CHECK, &probe).await?;
    match sealer.open(KEY_CHECK_CONTEXT, &stored) {
        Ok(v) if v == b"latchkey" => {}
        Ok(_) | Err(SealError::WrongKey) => bail!(
            "the master key does not match the one this database was sealed with; \
             start with the original LATCHKEY_MASTER_KEY (every node of a cluster shares one)"
        ),
        Err(e) => bail!("the stored master key check is unreadable: {e}"),
    }
    let mut state = AppState::new(
        store,
        opts.clock,
        opts.rng,
        sealer,
        opts.passwords,
        opts.secrets,
    )?;
    state.trusted_proxies = opts.trusted_proxies;
    Ok(Arc::new(state))
}
