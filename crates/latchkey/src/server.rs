//! Putting a server together from its configuration: data directory, store,
//! master key, state.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use latchkey_core::clock::{SharedClock, SystemClock};
use latchkey_core::context::Core;
use latchkey_core::crypto::password::PasswordHasherConfig;
use latchkey_core::crypto::seal::{SealError, Sealer};
use latchkey_core::rng::{RngExt, SharedRng, SystemRng};
use latchkey_core::store::Store;
use latchkey_http::app::AppState;
use latchkey_store::errors::OpenError;
use latchkey_store::postgres::{PoolOptions, PostgresStore};
use latchkey_store::sqlite::{SqliteOptions, SqliteStore};

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
    pub secrets: latchkey_core::services::delivery::SharedSecrets,
    /// The networks beyond the public internet outbound requests may reach
    /// (`--outbound-allow-private-networks`, `--outbound-allow-loopback`);
    /// none by default.
    pub outbound: latchkey_core::outbound::NetworkAccess,
    /// A PEM file of CA certificates outbound requests trust besides the
    /// system's (`--outbound-ca-file`: a provider or proxy with a private CA).
    pub outbound_ca_file: Option<PathBuf>,
    /// Reverse proxies whose `X-Forwarded-For`/`Forwarded` are believed.
    pub trusted_proxies: latchkey_http::http::proxy::TrustedProxies,
    /// Password verifications that may wait for a hashing thread; by
    /// default [`latchkey_core::context::HASHING_QUEUE_PER_CORE`] per core.
    pub hashing_queue: Option<usize>,
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
            secrets: Arc::new(latchkey_core::services::delivery::EnvSecrets),
            outbound: latchkey_core::outbound::NetworkAccess::PUBLIC,
            outbound_ca_file: None,
            trusted_proxies: latchkey_http::http::proxy::TrustedProxies::default(),
            hashing_queue: None,
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

/// The master key given by the operator (a value or a file); None when it
/// is to live in the data directory.
fn given_master_key(source: &MasterKeySource) -> anyhow::Result<Option<Vec<u8>>> {
    match source {
        MasterKeySource::Value(v) => decode_key(v).map(Some),
        MasterKeySource::File(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading the master key file {}", p.display()))?;
            decode_key(&text).map(Some)
        }
        MasterKeySource::DataDir => Ok(None),
    }
}

/// Whether a file can be made in `dir`, asked before anything is put there
/// so that a directory that cannot be written is named as such.
fn ensure_writable(dir: &Path) -> anyhow::Result<()> {
    let probe = dir.join(".latchkey-write-check");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .with_context(|| format!("the data directory {} is not writable", dir.display()))
}

/// A database migrated by a newer latchkey is refused with a clear message.
fn schema_error(e: OpenError) -> anyhow::Error {
    match e {
        OpenError::UnknownMigration(v) => anyhow::anyhow!(
            "the database schema has migration {v}, which this latchkey does not know: it was \
             migrated by a newer version; run that version (or newer)"
        ),
        OpenError::ChangedMigration(v) => anyhow::anyhow!(
            "migration {v} in the database differs from this latchkey's; refusing to start"
        ),
        e => anyhow::Error::new(e),
    }
}

const KEY_CHECK: &str = "master_key_check";
const KEY_CHECK_CONTEXT: &str = "master-key-check";

/// Opens the data directory and builds the application state. A master key
/// other than the one the data was sealed with is refused here, before any
/// request is served. A start that fails leaves nothing it created behind:
/// no new database file, no generated master key.
pub async fn open(opts: Options) -> anyhow::Result<Arc<AppState>> {
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("creating the data directory {}", opts.data_dir.display()))?;
    let mut created = Vec::new();
    let opened = open_in(opts, &mut created, true).await;
    if opened.is_err() {
        for path in created {
            let _ = std::fs::remove_file(path);
        }
    }
    opened
}

/// [`open`] for the commands that work on what is there (`tenant export`,
/// `logs`, `import`): nothing is created. A data directory without a SQLite
/// database is refused rather than given an empty one, and so is a master
/// key that would have to be generated.
pub async fn open_existing(opts: Options) -> anyhow::Result<Arc<AppState>> {
    if matches!(opts.database, Database::Sqlite) {
        let path = opts.data_dir.join("latchkey.db");
        if !path.is_file() {
            bail!(
                "{} holds no latchkey database: nothing to work on (is --data-dir, or \
                 LATCHKEY_DATA_DIR, the server's?)",
                opts.data_dir.display()
            );
        }
    }
    let mut created = Vec::new();
    let opened = open_in(opts, &mut created, false).await;
    for path in created {
        let _ = std::fs::remove_file(path);
    }
    opened
}

/// [`open`], noting in `created` each file it makes; without `create`, a
/// master key is never generated.
async fn open_in(
    opts: Options,
    created: &mut Vec<PathBuf>,
    create: bool,
) -> anyhow::Result<Arc<AppState>> {
    // An unusable CA file is refused before the store is touched.
    let http: latchkey_core::outbound::SharedHttpClient = match &opts.outbound_ca_file {
        Some(path) => Arc::new(
            latchkey_adapters::http_client::ReqwestClient::with_ca_file(path)
                .map_err(|e| anyhow::anyhow!("--outbound-ca-file: {e}"))?,
        ),
        None => Arc::new(latchkey_adapters::http_client::ReqwestClient::new()?),
    };
    let given_key = given_master_key(&opts.master_key)?;
    let key_path = opts.data_dir.join("master.key");
    let key_file = match &given_key {
        Some(_) => None,
        None if key_path.exists() => Some(
            std::fs::read_to_string(&key_path)
                .with_context(|| format!("reading {}", key_path.display()))
                .and_then(|text| decode_key(&text))?,
        ),
        None => None,
    };
    let store: Arc<dyn Store> = match &opts.database {
        Database::Sqlite => {
            let path = opts.data_dir.join("latchkey.db");
            ensure_writable(&opts.data_dir)?;
            if !path.exists() {
                created.extend(
                    ["latchkey.db", "latchkey.db-wal", "latchkey.db-shm"]
                        .map(|f| opts.data_dir.join(f)),
                );
            }
            Arc::new(
                SqliteStore::open_with(&path, opts.clock.clone(), &opts.sqlite)
                    .await
                    .map_err(schema_error)
                    .with_context(|| format!("opening the SQLite database {}", path.display()))?,
            )
        }
        Database::Postgres { url, pool } => Arc::new(
            PostgresStore::connect(url, pool.clone())
                .await
                .map_err(schema_error)
                .context("opening the PostgreSQL database")?,
        ),
    };
    let sealed_before = store.meta_get(KEY_CHECK).await?.is_some();
    let key = match (given_key, key_file) {
        (Some(key), _) | (None, Some(key)) => key,
        (None, None) if sealed_before => bail!(
            "the master key file {} is missing, and this database was sealed with the key it held: \
             restore the file, or give that key with LATCHKEY_MASTER_KEY or --master-key-file \
             (a new key would not open the database's secrets, so none is generated)",
            key_path.display()
        ),
        (None, None) if !create => bail!(
            "no master key: give the one this database was sealed with (LATCHKEY_MASTER_KEY or \
             --master-key-file), or keep it as {} in the data directory",
            key_path.display()
        ),
        (None, None) => {
            let key: [u8; 32] = opts.rng.bytes();
            write_private(&key_path, &format!("{}\n", URL_SAFE_NO_PAD.encode(key)))?;
            created.push(key_path.clone());
            tracing::warn!(
                path = %key_path.display(),
                "generated a development master key; set LATCHKEY_MASTER_KEY in production"
            );
            key.to_vec()
        }
    };
    let sealer = Arc::new(Sealer::new(&key).map_err(|e| anyhow::anyhow!(e))?);
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
    let outside = latchkey_core::context::Outside {
        delivery: Arc::new(latchkey_adapters::delivery::MessageDelivery::new(
            opts.secrets.clone(),
            http.clone(),
            opts.clock.clone(),
            opts.outbound,
        )),
        http,
        access: opts.outbound,
        secrets: opts.secrets,
    };
    let mut state = AppState::new(Core::new(
        store,
        opts.clock,
        opts.rng,
        sealer,
        opts.passwords,
        outside,
        opts.hashing_queue,
    )?)?;
    state.trusted_proxies = opts.trusted_proxies;
    Ok(Arc::new(state))
}
