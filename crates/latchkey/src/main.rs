//! The `latchkey` command.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use latchkey::adapters::delivery::messages::MessageTemplates;
use latchkey::crypto::hash::sha256_b64url;
use latchkey::rng::{RngExt, SystemRng};
use latchkey::server::{self, Database, MasterKeySource, Options};
use latchkey::store::postgres::PoolOptions;
use latchkey::tenant::{apply, dev, issuer_for_host};

/// mimalloc: per-thread heaps, so memory freed on another runtime thread
/// than the one that allocated it costs no lock (glibc's arenas contended
/// on exactly that under load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "latchkey",
    version,
    about = "A self-hosted identity server that speaks Auth0's dialect"
)]
struct Cli {
    /// Log format.
    #[arg(long, env = "LATCHKEY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Clone)]
struct Storage {
    /// Directory holding the SQLite database (and, in development, the master key).
    #[arg(
        long,
        env = "LATCHKEY_DATA_DIR",
        default_value = "./latchkey-data",
        global = true
    )]
    data_dir: PathBuf,
    /// The master key sealing secrets at rest (32 bytes as base64 or hex).
    #[arg(
        long,
        env = "LATCHKEY_MASTER_KEY",
        hide_env_values = true,
        global = true
    )]
    master_key: Option<String>,
    /// A file holding the master key.
    #[arg(long, env = "LATCHKEY_MASTER_KEY_FILE", global = true)]
    master_key_file: Option<PathBuf>,
    /// `postgres://…`: use PostgreSQL (shared by several nodes) instead of
    /// the SQLite file in the data directory.
    #[arg(
        long,
        env = "LATCHKEY_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    database_url: Option<String>,
    /// PostgreSQL schema to use instead of the role's default search path.
    #[arg(long, env = "LATCHKEY_DATABASE_SCHEMA", global = true)]
    database_schema: Option<String>,
    /// Most connections the PostgreSQL pool opens.
    #[arg(
        long,
        env = "LATCHKEY_DATABASE_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    database_max_connections: u32,
    /// Seconds a request waits for a database connection (PostgreSQL) or its
    /// turn at the writer (SQLite), and then for a lock, before answering 503.
    #[arg(
        long,
        env = "LATCHKEY_DATABASE_ACQUIRE_TIMEOUT",
        default_value_t = 5,
        global = true
    )]
    database_acquire_timeout: u64,
    /// Tests only: a file holding seconds to add to the wall clock, read at
    /// every reading (end-to-end tests move time across a running server).
    #[arg(long, env = "LATCHKEY_CLOCK_OFFSET_FILE", hide = true, global = true)]
    clock_offset_file: Option<PathBuf>,
}

impl Storage {
    fn options(&self) -> anyhow::Result<Options> {
        let source = match (&self.master_key, &self.master_key_file) {
            (Some(k), _) => MasterKeySource::Value(k.clone()),
            (None, Some(f)) => MasterKeySource::File(f.clone()),
            (None, None) => MasterKeySource::DataDir,
        };
        let mut opts = Options::new(self.data_dir.clone(), source);
        opts.sqlite.write_wait = std::time::Duration::from_secs(self.database_acquire_timeout);
        if let Some(file) = &self.clock_offset_file {
            tracing::warn!(
                file = %file.display(),
                "the clock is offset by the seconds in this file: for tests only"
            );
            opts.clock = std::sync::Arc::new(latchkey::clock::OffsetFileClock::new(file));
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                anyhow::bail!("--database-url must be a postgres:// URL");
            }
            opts.database = Database::Postgres {
                url: url.clone(),
                pool: PoolOptions {
                    max_connections: self.database_max_connections,
                    acquire_timeout_secs: self.database_acquire_timeout,
                    schema: self.database_schema.clone(),
                    ..PoolOptions::default()
                },
            };
        }
        Ok(opts)
    }
}

/// The HTTP edge: who the client is behind proxies.
#[derive(clap::Args, Clone)]
struct Edge {
    /// Reverse proxies (CIDRs or addresses, comma-separated) whose
    /// `X-Forwarded-For`/`Forwarded` name the client; from any other peer
    /// those headers are ignored.
    #[arg(long, env = "LATCHKEY_TRUSTED_PROXIES")]
    trusted_proxies: Option<latchkey::http::proxy::TrustedProxies>,
    /// Seconds a client has to send a request's headers, from their first byte.
    #[arg(long, env = "LATCHKEY_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Seconds a client has to send a request's body, from the end of its headers.
    #[arg(long, env = "LATCHKEY_BODY_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout: u64,
    /// Seconds a connection may wait for its next request (or its first).
    #[arg(long, env = "LATCHKEY_IDLE_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Connections open at once (default: three quarters of the open-file
    /// limit); further ones wait in the kernel's backlog.
    #[arg(long, env = "LATCHKEY_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,
    /// Seconds a stop (SIGTERM, SIGINT) waits for requests in flight before
    /// closing their connections; a second signal stops at once.
    #[arg(long, env = "LATCHKEY_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    shutdown_timeout: u64,
}

impl Edge {
    fn serve_options(&self) -> latchkey::http::serve::ServeOptions {
        use std::time::Duration;
        let files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
        // The rest of the descriptors: the database, log files, the
        // listener, outgoing connections to providers.
        let auto = (files / 4 * 3).max(1);
        let max = self.max_connections.unwrap_or(auto);
        if max >= files {
            tracing::warn!(
                max_connections = max,
                open_file_limit = files,
                "--max-connections is not below the open-file limit: accepting can fail with \"too many open files\""
            );
        }
        latchkey::http::serve::ServeOptions {
            header_timeout: Duration::from_secs(self.header_timeout),
            body_timeout: Duration::from_secs(self.body_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            max_connections: usize::try_from(max).unwrap_or(usize::MAX),
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP.
    Serve {
        #[arg(long, env = "LATCHKEY_LISTEN", default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// A tenant file applied (idempotently) before serving.
        #[arg(long, env = "LATCHKEY_TENANT_FILE")]
        tenant_file: Option<PathBuf>,
        /// Seconds between two sweeps of what can no longer be used (expired
        /// tokens, codes, sessions); the first runs at start. 0: never (run
        /// `latchkey sweep` on a schedule instead).
        #[arg(long, env = "LATCHKEY_SWEEP_INTERVAL", default_value_t = 3600)]
        sweep_interval: u64,
        /// Password verifications that may wait for a hashing thread
        /// (default 32 per core); beyond, a password login answers 503 with
        /// `retry-after` at once.
        #[arg(long, env = "LATCHKEY_HASH_QUEUE")]
        hash_queue: Option<usize>,
        #[command(flatten)]
        outbound: OutboundFlags,
        #[command(flatten)]
        edge: Edge,
        #[command(flatten)]
        storage: Storage,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Delete what can no longer be used (expired tokens, codes, sessions,
    /// spent grants) in every tenant, once, and print what went.
    Sweep {
        #[command(flatten)]
        storage: Storage,
    },
    /// Apply the database migrations this version knows, then exit.
    Migrate {
        #[command(flatten)]
        storage: Storage,
    },
    /// Import users from another identity provider.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Print a tenant's log events (newest last), one JSON object per line.
    Logs {
        #[arg(long)]
        tenant: String,
        /// How many of the newest events.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[command(flatten)]
        storage: Storage,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Import users from Auth0's bulk user format (its user export turned
    /// into a JSON array, with the password hashes Auth0 support exports):
    /// their passwords, MFA factors, passkeys and profile. Prints a report (JSON) of
    /// each user imported or skipped and why; users who exist already are
    /// skipped, so the same file can be imported again. Nothing is created
    /// when the data directory or the tenant does not exist.
    Auth0 {
        /// The tenant to import into (its name in the tenant file).
        #[arg(long)]
        tenant: String,
        /// The database connection the users join.
        #[arg(long)]
        connection: String,
        /// The users file: a JSON array in Auth0's bulk user import format.
        users: PathBuf,
        /// The users' authentication methods as Auth0's Management API lists
        /// them: a JSON object of user IDs, each with what
        /// `GET /api/v2/users/{id}/authentication-methods` answered. Their
        /// passkeys and WebAuthn keys are imported when made for one of the
        /// tenant's relying party IDs.
        #[arg(long, value_name = "FILE")]
        authentication_methods: Option<PathBuf>,
        /// Import users whose password hash latchkey cannot verify (or who
        /// have none) without a password, instead of skipping them: they set
        /// one by a password reset, or log in with a passkey.
        #[arg(long)]
        passwordless_first: bool,
        #[command(flatten)]
        storage: Storage,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Apply a tenant file (YAML or JSON) to the store without serving.
    Apply {
        file: PathBuf,
        #[command(flatten)]
        storage: Storage,
    },
    /// Write a tenant's configuration as a tenant file (YAML), what the
    /// Management API made included, to standard output or --output. Reads
    /// only: an empty data directory is an error, never a new database.
    Export {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// Also the users of database connections, with their password
        /// hashes (not their second factors or passkeys).
        #[arg(long)]
        users: bool,
        /// Client secrets in clear (`client_secret`); without it each is
        /// named by an environment variable (`client_secret_env`), listed on
        /// standard error.
        #[arg(long)]
        secrets: bool,
        /// Write the file here (created with mode 0600) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        storage: Storage,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Start signing with a new key; the old one stays published until the
    /// tokens it signed have expired.
    Rotate {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        storage: Storage,
    },
}

/// Writes an exported tenant file, readable by its owner alone (it may hold
/// password hashes, or secrets with `--secrets`), replacing one there.
fn write_export(path: &std::path::Path, yaml: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(yaml.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    match run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            listen,
            tenant_file,
            sweep_interval,
            hash_queue,
            outbound,
            edge,
            storage,
        } => {
            serve(
                listen,
                tenant_file,
                sweep_interval,
                hash_queue,
                outbound,
                edge,
                storage,
            )
            .await
        }
        Command::Sweep { storage } => {
            let state = server::open(storage.options()?).await?;
            let s = latchkey::services::sweep::sweep_all(&state).await?;
            println!(
                "swept {} row(s): {} refresh token(s), {} code(s), {} grant(s), {} session(s), \
                 {} login transaction(s), {} enrollment(s), {} login-failure count(s), \
                 {} connect transaction(s)",
                s.total(),
                s.refresh_tokens,
                s.auth_codes,
                s.grants,
                s.sessions,
                s.login_transactions,
                s.enrollments,
                s.login_failures,
                s.connect_transactions
            );
            Ok(())
        }
        Command::Tenant {
            command: TenantCommand::Apply { file, storage },
        } => {
            // The file is read and checked before the store is opened.
            let parsed = latchkey::tenant::file::read_tenant_file(&file, &MessageTemplates)
                .map_err(anyhow::Error::msg)?;
            let state = server::open(storage.options()?).await?;
            let report = apply::apply(&state, &parsed)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!(
                "applied {}: tenant {}, users created {}, updated {}, unchanged {}{}",
                file.display(),
                if report.tenant_created {
                    "created"
                } else {
                    "updated"
                },
                report.users_created,
                report.users_updated,
                report.users_unchanged,
                match report.kept_from_api {
                    0 => String::new(),
                    n => format!("; kept {n} made through the Management API"),
                }
            );
            Ok(())
        }
        Command::Tenant {
            command:
                TenantCommand::Export {
                    tenant,
                    users,
                    secrets,
                    output,
                    storage,
                },
        } => {
            let state = server::open_existing(storage.options()?).await?;
            let options = latchkey::tenant::export::ExportOptions { users, secrets };
            let exported = latchkey::tenant::export::export(&state, &tenant, options).await?;
            match &output {
                Some(path) => write_export(path, &exported.yaml)?,
                None => print!("{}", exported.yaml),
            }
            for (variable, client) in &exported.secret_variables {
                eprintln!(
                    "client {client}: its secret is read from ${variable} when the file is applied"
                );
            }
            if users {
                eprintln!(
                    "{} user(s) written, {} left out",
                    exported.users,
                    exported.users_left_out.len()
                );
                for (user, why) in &exported.users_left_out {
                    eprintln!("  {user}: {why}");
                }
            }
            Ok(())
        }
        Command::Migrate { storage } => {
            server::open(storage.options()?).await?;
            println!("the database is up to date");
            Ok(())
        }
        Command::Import {
            command:
                ImportCommand::Auth0 {
                    tenant,
                    connection,
                    users,
                    authentication_methods,
                    passwordless_first,
                    storage,
                },
        } => {
            // The files are read before the store is opened.
            let users = read_import_file(&users)?;
            let methods = authentication_methods
                .as_deref()
                .map(read_import_file)
                .transpose()?;
            let state = server::open_existing(storage.options()?).await?;
            let row = state
                .store
                .tenant_by_name(&tenant)
                .await?
                .with_context(|| format!("no tenant named {tenant}"))?;
            let t = latchkey::tenant::Tenant::from_row(&row)?;
            let report = latchkey::services::import::auth0(
                &state,
                &latchkey::services::import::Auth0Import {
                    tenant: &t,
                    connection: &connection,
                    users: &users,
                    authentication_methods: methods.as_deref(),
                    passwordless_first,
                },
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            let totals = &report.totals;
            eprintln!(
                "imported {} of {} user(s) into {tenant}/{connection}; skipped {}",
                totals.imported, totals.users, totals.skipped
            );
            Ok(())
        }
        Command::Logs {
            tenant,
            limit,
            storage,
        } => {
            let state = server::open_existing(storage.options()?).await?;
            let row = state
                .store
                .tenant_by_name(&tenant)
                .await?
                .with_context(|| format!("no tenant named {tenant}"))?;
            for e in state
                .store
                .audit_events(&row.id, limit.clamp(1, 100_000))
                .await?
            {
                let mut line = latchkey::services::audit::log_entry(e);
                line["tenant_name"] = serde_json::json!(tenant);
                println!("{line}");
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate { tenant, storage },
        } => {
            let state = server::open(storage.options()?).await?;
            let row = state
                .store
                .tenant_by_name(&tenant)
                .await?
                .with_context(|| format!("no tenant named {tenant}"))?;
            let t = latchkey::tenant::Tenant::from_row(&row)?;
            let kid = state.keys.rotate(&t.id).await?;
            let pruned = state
                .keys
                .prune(&t.id, latchkey::services::tokens::max_token_lifetime(&t))
                .await?;
            println!(
                "tenant {tenant}: now signing with key {kid}; removed {pruned} expired key(s)"
            );
            Ok(())
        }
    }
}

/// An import's file, refused before it is read when it is larger than an
/// import takes.
fn read_import_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let max = latchkey::services::import::MAX_FILE_BYTES;
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > max as u64 {
        anyhow::bail!(
            "{} is larger than {max} bytes, the most one import takes: split it",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Where latchkey's own requests (SMS and voice providers) may go beyond the
/// public internet. Link-local and cloud metadata addresses never.
#[derive(clap::Args, Debug, Clone)]
struct OutboundFlags {
    /// Let outbound requests reach private networks (10/8, 172.16/12,
    /// 192.168/16, 100.64/10, fc00::/7) for every tenant; a tenant file can
    /// allow them for its own tenant with `outbound.allow_private_networks`.
    #[arg(long, env = "LATCHKEY_OUTBOUND_ALLOW_PRIVATE_NETWORKS")]
    outbound_allow_private_networks: bool,
    /// Let outbound requests reach loopback (127/8, ::1): for development
    /// and tests, where providers are local receivers.
    #[arg(long, env = "LATCHKEY_OUTBOUND_ALLOW_LOOPBACK")]
    outbound_allow_loopback: bool,
    /// A PEM file of CA certificates to trust for outbound HTTPS besides the
    /// system's (a provider or proxy behind a private CA).
    #[arg(long, env = "LATCHKEY_OUTBOUND_CA_FILE")]
    outbound_ca_file: Option<PathBuf>,
}

async fn serve(
    listen: SocketAddr,
    tenant_file: Option<PathBuf>,
    sweep_interval: u64,
    hash_queue: Option<usize>,
    outbound: OutboundFlags,
    edge: Edge,
    storage: Storage,
) -> anyhow::Result<()> {
    raise_open_file_limit();
    let mut opts = storage.options()?;
    opts.trusted_proxies = edge.trusted_proxies.clone().unwrap_or_default();
    opts.hashing_queue = hash_queue;
    opts.outbound = latchkey::outbound::NetworkAccess {
        private_networks: outbound.outbound_allow_private_networks,
        loopback: outbound.outbound_allow_loopback,
    };
    opts.outbound_ca_file = outbound.outbound_ca_file;
    // What can fail without touching the data directory comes first (the
    // address taken, a bad tenant file), so such a start leaves nothing.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let port = listener.local_addr()?.port();
    let parsed = match &tenant_file {
        Some(file) => Some(
            latchkey::tenant::file::read_tenant_file(file, &MessageTemplates)
                .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let state = server::open(opts).await?;
    if let (Some(file), Some(parsed)) = (&tenant_file, &parsed) {
        let report = apply::apply(&state, parsed)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        tracing::info!(file = %file.display(), users_created = report.users_created, "tenant file applied");
    } else {
        development_tenant(&state, port).await?;
    }
    apply::check_stored_secrets(&state)
        .await
        .map_err(anyhow::Error::msg)?;
    if sweep_interval > 0 {
        tokio::spawn(latchkey::services::sweep::run(
            state.core.clone(),
            std::time::Duration::from_secs(sweep_interval),
        ));
    }
    let serve_options = edge.serve_options();
    // The bound address, not the asked one: `--listen 127.0.0.1:0` is
    // given a free port, and this line says which.
    tracing::info!(
        address = %listener.local_addr()?,
        max_connections = serve_options.max_connections,
        "latchkey listening"
    );
    let signals = stop_signals();
    latchkey::app::serve_with(
        listener,
        state,
        serve_options,
        signals.nth(1),
        signals.nth(2),
    )
    .await?;
    tracing::info!("latchkey stopped");
    Ok(())
}

/// Raises the soft limit on open files to the hard one: each connection
/// costs a descriptor, and the common default of 1,024 is soon reached.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(open_file_limit = limit, "open-file limit raised"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

/// Without a tenant file, an empty store gets the development tenant, and a
/// development tenant created that way follows the port the server is
/// started on. Tenants that came from files are never touched.
async fn development_tenant(state: &latchkey::app::AppState, port: u16) -> anyhow::Result<()> {
    const MARK: &str = "development_tenant";
    let tenants = state.store.list_tenants().await?;
    let ours = state.store.meta_get(MARK).await?;
    let host = format!("localhost:{port}");
    let (create, moved) = match (tenants.as_slice(), ours.as_deref()) {
        ([], _) => (true, false),
        ([only], Some(id)) if only.id == id => {
            let t = latchkey::tenant::Tenant::from_row(only)?;
            (false, t.config.canonical_domain() != host)
        }
        _ => (false, false),
    };
    if create || moved {
        let report = apply::apply(
            state,
            &latchkey::tenant::parse_tenant_file(&dev::dev_tenant_yaml(port), &MessageTemplates)?,
        )
        .await
        .map_err(|e| anyhow::anyhow!("preparing the development tenant: {e}"))?;
        state.store.meta_init(MARK, &report.tenant_id).await?;
        print_dev_instructions(port);
    }
    Ok(())
}

fn print_dev_instructions(port: u16) {
    let host = format!("localhost:{port}");
    let issuer = issuer_for_host(&host);
    let verifier = SystemRng.token(32);
    let challenge = sha256_b64url(verifier.as_bytes());
    let redirect = format!("http://{host}/callback");
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", dev::DEMO_CLIENT),
        ("redirect_uri", redirect.as_str()),
        ("scope", "openid profile email offline_access"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap_or_default();
    println!(
        "\nDevelopment tenant ready at {issuer}\n\
         \n  user:     {email}\n  password: {password}\n  client:   {client} (single-page app)\n\
         \nLog in:   {issuer}authorize?{query}\n\
         Then exchange the code from the address bar (…/callback?code=CODE):\n\
         \n  curl -s {issuer}oauth/token -d grant_type=authorization_code -d client_id={client} \\\n    \
         -d redirect_uri={redirect} -d code_verifier={verifier} -d code=CODE\n\
         \nDiscovery: {issuer}.well-known/openid-configuration\n",
        email = dev::DEMO_EMAIL,
        password = dev::DEMO_PASSWORD,
        client = dev::DEMO_CLIENT,
    );
}

/// SIGTERM and SIGINT, counted: the first starts a graceful stop, the
/// second ends it at once.
struct StopSignals(tokio::sync::watch::Receiver<u32>);

fn stop_signals() -> StopSignals {
    let (tx, rx) = tokio::sync::watch::channel(0u32);
    let mut signals = Signals::new();
    tokio::spawn(async move {
        loop {
            signals.next().await;
            tx.send_modify(|n| *n += 1);
            match *tx.borrow() {
                1 => tracing::info!(
                    "stopping: finishing requests in flight (a second signal stops at once)"
                ),
                _ => tracing::warn!("second stop signal"),
            }
        }
    });
    StopSignals(rx)
}

impl StopSignals {
    /// Resolves at the `n`th signal.
    fn nth(&self, n: u32) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            if rx.wait_for(|count| *count >= n).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Resolves at every SIGTERM or SIGINT, listening from its creation on.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        if s.recv().await.is_none() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = one(&mut self.term) => {},
                () = one(&mut self.int) => {},
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
