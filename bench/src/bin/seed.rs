//! Builds the benchmark tenant.
//!
//! `seed tenant PORT USERS FILE` writes a tenant file for `localhost:PORT`
//! with USERS users (`user{i}@bench.test`, all with the password
//! `Bench-password-2026` as one imported Argon2id hash computed once with
//! latchkey's production parameters, so seeding does not cost USERS
//! hashes), the clients the scenarios use, and request limits lifted for
//! the run.
//!
//! `seed methods DATA_DIR HOST USERS` enrolls, for each user, an
//! authenticator app and a recovery code through latchkey's own enrollment
//! service (the code computed from the secret), so the store holds what a
//! real tenant would.

use std::fmt::Write as _;
use std::path::PathBuf;

use latchkey::crypto::otp;
use latchkey::crypto::password::PasswordHasherConfig;
use latchkey::server::{MasterKeySource, Options};
use latchkey::services::enrollment::{self, Challenge, Proof, Start, Who};

pub const PASSWORD: &str = "Bench-password-2026";

fn usage() -> anyhow::Error {
    anyhow::anyhow!("usage: seed tenant PORT USERS FILE | seed methods DATA_DIR HOST USERS")
}

fn tenant_file(port: u16, users: usize) -> anyhow::Result<String> {
    let hash = PasswordHasherConfig::default()
        .hash(&latchkey::rng::SystemRng, PASSWORD)
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let mut out = format!(
        r#"tenant: {{ name: bench, domains: ["localhost:{port}"] }}
my_account_api: {{ active: true, user_policy: require_client_grant,
                  rate_limits: {{ tenant_per_second: 0, user_per_minute: 0 }} }}
factors: [password, totp, recovery-code, passkey]
connections:
  - name: Username-Password-Authentication
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
users:
"#
    );
    for i in 0..users {
        writeln!(
            out,
            "  - {{ email: user{i}@bench.test, password_hash: \"{hash}\", \
             connection: Username-Password-Authentication, email_verified: true, user_id: \"auth0|bench{i}\" }}"
        )?;
    }
    Ok(out)
}

async fn methods(data_dir: PathBuf, host: &str, users: usize) -> anyhow::Result<()> {
    let state = latchkey::server::open(Options::new(data_dir, MasterKeySource::DataDir)).await?;
    let tenant = state
        .tenants
        .by_host(host)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no tenant on {host}"))?;
    let now = state.clock.now();
    for i in 0..users {
        let user_id = format!("auth0|bench{i}");
        let who = Who {
            tenant: &tenant,
            host,
            user_id: &user_id,
            client_id: "spa",
            user_agent: "latchkey-bench",
            languages: &[],
        };
        let started = enrollment::start(&state, &who, Start::Totp).await?;
        let Challenge::Totp {
            manual_input_code, ..
        } = &started.challenge
        else {
            anyhow::bail!("a TOTP enrollment without its secret");
        };
        let secret = base32(manual_input_code)?;
        let code = otp::code_at(&secret, otp::step_of(now));
        enrollment::verify(
            &state,
            &who,
            &started.method_id,
            &started.auth_session,
            Proof::Otp { code },
        )
        .await?;
        let started = enrollment::start(&state, &who, Start::RecoveryCode).await?;
        enrollment::verify(
            &state,
            &who,
            &started.method_id,
            &started.auth_session,
            Proof::Session,
        )
        .await?;
        if (i + 1) % 1000 == 0 {
            eprintln!("seed: {} users have their methods", i + 1);
        }
    }
    Ok(())
}

/// RFC 4648 base32 without padding.
fn base32(text: &str) -> anyhow::Result<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .ok_or_else(|| anyhow::anyhow!("not base32"))?;
        acc = (acc << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["tenant", port, users, file] => {
            std::fs::write(file, tenant_file(port.parse()?, users.parse()?)?)?;
            Ok(())
        }
        ["methods", dir, host, users] => methods(PathBuf::from(dir), host, users.parse()?).await,
        _ => Err(usage()),
    }
}
