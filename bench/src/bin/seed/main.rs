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

mod bulk;
mod check;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use latchkey::app::AppState;
use latchkey::crypto::password::PasswordHasherConfig;
use latchkey::server::{Database, MasterKeySource, Options};
use latchkey::store::postgres::PoolOptions;
use latchkey::tenant::Tenant;

pub const PASSWORD: &str = "Bench-password-2026";
/// The tenant file's database connection, which all its users are in.
const CONNECTION: &str = "Username-Password-Authentication";

fn usage() -> anyhow::Error {
    anyhow!(
        "usage: seed tenant PORT USERS FILE | \
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
                ("bulk", [from, to]) => bulk::bulk(target, host, *from, *to).await,
                ("check", [_, ..]) => check::check(target, host, &numbers).await,
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
    fn an_empty_tenant_file_has_an_empty_user_list() {
        let file = tenant_file(3000, 0).unwrap();
        assert!(file.ends_with("users: []\n"));
    }
}
