//! `latchkey-authenticator`: latchkey's reference push authenticator, a
//! command-line device speaking the Guardian device protocol
//! (docs/push-notifications.md). It enrolls from an enrollment URI or its QR
//! code, listens for latchkey's signed webhook and approves or rejects logins,
//! shows TOTP codes, and renames, updates or removes its device account.

mod api;
mod commands;
mod error;
mod key;
mod listen;
mod output;
mod qr;
mod state;
mod sys;
mod totp;
mod uri;
mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::Error;

#[derive(Parser, Debug)]
#[command(
    name = "latchkey-authenticator",
    version,
    about = "latchkey's reference push authenticator"
)]
struct Cli {
    /// The state file (device key and enrollment), created with mode 0600.
    /// Default: $XDG_CONFIG_HOME/latchkey-authenticator/state.json
    /// (else ~/.config/latchkey-authenticator/state.json).
    #[arg(long, global = true, env = "LATCHKEY_AUTHENTICATOR_STATE")]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Enrolls this device from an enrollment URI (otpauth://…) or a PNG of its QR code.
    Enroll {
        #[arg(long, conflicts_with = "qr", required_unless_present = "qr")]
        uri: Option<String>,
        #[arg(long)]
        qr: Option<PathBuf>,
        /// The device's name, as the user's methods list shows it.
        #[arg(long, default_value = "latchkey-authenticator")]
        name: String,
        /// The push service the credentials name (a tenant without a provider
        /// for it delivers through its signed webhook).
        #[arg(long, value_enum, default_value_t = PushService::Fcm)]
        push_service: PushService,
        /// The push token the webhook bridge routes on (default: a random one).
        #[arg(long)]
        push_token: Option<String>,
        /// Replace an enrollment the state file already holds.
        #[arg(long)]
        force: bool,
    },
    /// Listens for latchkey's signed webhook and answers this device's logins.
    Listen {
        /// The address to listen on (port 0: any free port, printed at start).
        #[arg(long, default_value = "127.0.0.1:8787")]
        addr: SocketAddr,
        /// The name of the environment variable holding the webhook's secret.
        #[arg(long)]
        webhook_secret_env: String,
        /// Approve every login without asking (the number, when a login asks
        /// for one, is still read from stdin).
        #[arg(long, conflicts_with = "reject")]
        approve: bool,
        /// Reject every login without asking, with an optional reason.
        #[arg(long, num_args = 0..=1, value_name = "REASON")]
        reject: Option<Option<String>>,
        /// One JSON object per event on stdout (prompts go to stderr).
        #[arg(long)]
        json: bool,
    },
    /// Prints the current TOTP code.
    Code,
    /// Renames the device account.
    Rename {
        #[arg(long)]
        name: String,
    },
    /// Changes the push credentials of the device account.
    Update {
        #[arg(long)]
        push_token: String,
        #[arg(long, value_enum)]
        push_service: Option<PushService>,
    },
    /// Removes the device account from latchkey, then deletes the state file.
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum PushService {
    Fcm,
    Gcm,
    Apns,
}

impl PushService {
    pub fn as_str(self) -> &'static str {
        match self {
            PushService::Fcm => "FCM",
            PushService::Gcm => "GCM",
            PushService::Apns => "APNS",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("latchkey-authenticator: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey-authenticator: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    let path = state::path(cli.state)?;
    match cli.command {
        Command::Enroll {
            uri,
            qr,
            name,
            push_service,
            push_token,
            force,
        } => {
            let text = match (uri, qr) {
                (Some(uri), _) => uri,
                (None, Some(png)) => qr::read_png(&png)?,
                (None, None) => return Err(Error::new("give --uri or --qr")),
            };
            commands::enroll(&path, &text, name, push_service.as_str(), push_token, force).await
        }
        Command::Listen {
            addr,
            webhook_secret_env,
            approve,
            reject,
            json,
        } => {
            let secret = std::env::var(&webhook_secret_env)
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Error::new(format!("the environment variable {webhook_secret_env} (the webhook secret) is not set")))?;
            let mode = match (approve, reject) {
                (true, _) => listen::Mode::Approve,
                (false, Some(reason)) => listen::Mode::Reject(reason),
                (false, None) => listen::Mode::Ask,
            };
            let state = state::load(&path)?;
            let options = listen::Options {
                addr,
                secret: secret.into_bytes(),
                mode,
            };
            listen::run(state, options, output::Output::new(json)).await
        }
        Command::Code => commands::code(&path),
        Command::Rename { name } => commands::rename(&path, name).await,
        Command::Update {
            push_token,
            push_service,
        } => commands::update(&path, push_token, push_service.map(PushService::as_str)).await,
        Command::Remove => commands::remove(&path).await,
    }
}
