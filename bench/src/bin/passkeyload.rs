//! The load driver of scenario 5, passkey login: `POST /passkey/challenge`,
//! then the webauthn grant at `/oauth/token`. wrk cannot drive it, since
//! every login signs a fresh challenge.
//!
//! `passkeyload BASE_URL USERS CONNECTIONS SECONDS`, against the tenant of
//! `seed tenant` (BASE_URL `http://localhost:PORT`, without a trailing
//! slash; it is also the WebAuthn origin).
//!
//! Setup, not timed: the first USERS users (`user{i}@bench.test`) each
//! register a passkey through the My Account API, as a signed-in user does
//! (a password-grant token for `BASE_URL/me/`, `POST
//! /me/v1/authentication-methods` `{"type": "passkey"}`, then its
//! `/verify`), each on a software authenticator of their own: the user's
//! device, which answers the discoverable challenge with that user's
//! credential.
//!
//! Load, for SECONDS: CONNECTIONS tasks, each going round its share of the
//! users (so no user has two logins in flight, as from one device: a
//! passkey's signature counter only moves forward). A login is a challenge,
//! its assertion signed by the user's authenticator, and the webauthn grant
//! for an ID token and a My Account access token (Auth0's native passkey
//! flow); it succeeds on a 2xx answer to both requests with an access token.
//! Any other answer or a transport error counts as an error, and the task
//! goes on.
//!
//! Prints one JSON line on stdout, `{"rps", "p50", "p99", "errors",
//! "logins"}`: successful logins per second and their latency in ms;
//! progress goes to stderr. The driver's own work (an ES256 signature and
//! the JSON of each login) runs on the same cores as the server: the figure
//! includes that cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use reqwest::header::LOCATION;
use reqwest::{Client, Response};
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// The integration tests' software authenticator. What only the tests use
/// of it (an authenticator without user verification, a counter rolled
/// back) is dead code here.
#[allow(dead_code)]
#[path = "../../../crates/latchkey/tests/it/authenticator.rs"]
mod authenticator;

use authenticator::SoftAuthenticator;

const PASSWORD: &str = "Bench-password-2026";
const WEBAUTHN: &str = "urn:okta:params:oauth:grant-type:webauthn";
/// Enrollments run this many at a time: each starts with a password grant,
/// an Argon2id verification on the server.
const SETUP_TASKS: usize = 4;
/// Errors each load task describes on stderr; the rest are only counted.
const ERRORS_SHOWN: u64 = 3;

fn usage() -> anyhow::Error {
    anyhow!("usage: passkeyload BASE_URL USERS CONNECTIONS SECONDS")
}

/// The server under load, through one HTTP client (a pool of keep-alive
/// connections per host).
struct Target {
    http: Client,
    base: String,
}

impl Target {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn audience(&self) -> String {
        self.url("/me/")
    }

    /// Gives `users[i]` a passkey on an authenticator of their own.
    async fn enroll(&self, i: usize) -> anyhow::Result<SoftAuthenticator> {
        let username = format!("user{i}@bench.test");
        let audience = self.audience();
        let res = self
            .http
            .post(self.url("/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "spa"),
                ("username", username.as_str()),
                ("password", PASSWORD),
                ("audience", audience.as_str()),
                ("scope", "create:me:authentication_methods"),
            ])
            .send()
            .await?;
        let token = json_of(res).await?["access_token"]
            .as_str()
            .context("a password grant without an access token")?
            .to_string();

        let res = self
            .http
            .post(self.url("/me/v1/authentication-methods"))
            .bearer_auth(&token)
            .json(&json!({"type": "passkey"}))
            .send()
            .await?;
        let location = res
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .context("a passkey enrollment without its Location")?;
        let location = if location.starts_with("http") {
            location.to_string()
        } else {
            self.url(location)
        };
        let started = json_of(res).await?;

        let authenticator = SoftAuthenticator::new();
        let credential = authenticator
            .register(&self.base, &started["authn_params_public_key"])
            .await
            .map_err(|e| anyhow!("{username}: {e}"))?;
        let res = self
            .http
            .post(format!("{location}/verify"))
            .bearer_auth(&token)
            .json(&json!({"auth_session": started["auth_session"], "authn_response": credential}))
            .send()
            .await?;
        json_of(res).await?;
        Ok(authenticator)
    }

    /// One passkey login: a challenge, the assertion, the webauthn grant.
    async fn log_in(&self, authenticator: &SoftAuthenticator) -> anyhow::Result<()> {
        let res = self
            .http
            .post(self.url("/passkey/challenge"))
            .json(&json!({"client_id": "spa"}))
            .send()
            .await?;
        let challenge = json_of(res).await?;
        let assertion = authenticator
            .authenticate(&self.base, &challenge["authn_params_public_key"])
            .await
            .map_err(|e| anyhow!(e))?;
        let res = self
            .http
            .post(self.url("/oauth/token"))
            .json(&json!({
                "grant_type": WEBAUTHN,
                "client_id": "spa",
                "auth_session": challenge["auth_session"],
                "authn_response": assertion,
                "scope": "openid read:me:authentication_methods",
                "audience": self.audience(),
            }))
            .send()
            .await?;
        let tokens = json_of(res).await?;
        if !tokens["access_token"].is_string() {
            bail!("a webauthn grant without an access token: {tokens}");
        }
        Ok(())
    }
}

/// The JSON body of a 2xx answer; any other status is an error.
async fn json_of(res: Response) -> anyhow::Result<Value> {
    let status = res.status();
    let url = res.url().path().to_string();
    let text = res.text().await?;
    if !status.is_success() {
        bail!("{url}: {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// Gives users 0..USERS their passkeys, [`SETUP_TASKS`] at a time.
async fn enroll_all(target: &Arc<Target>, users: usize) -> anyhow::Result<Vec<SoftAuthenticator>> {
    let mut tasks = JoinSet::new();
    for first in 0..SETUP_TASKS.min(users) {
        let target = target.clone();
        tasks.spawn(async move {
            let mut enrolled = Vec::new();
            for i in (first..users).step_by(SETUP_TASKS) {
                enrolled.push((i, target.enroll(i).await?));
            }
            anyhow::Ok(enrolled)
        });
    }
    let mut all = Vec::with_capacity(users);
    while let Some(enrolled) = tasks.join_next().await {
        all.extend(enrolled??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, a)| a).collect())
}

/// What one load task saw: the latency of each successful login, and the
/// number of failed ones.
struct Outcome {
    latencies: Vec<Duration>,
    errors: u64,
}

/// Logs in `devices` in turn until `deadline`.
async fn drive(target: Arc<Target>, devices: Vec<SoftAuthenticator>, deadline: Instant) -> Outcome {
    let mut outcome = Outcome {
        latencies: Vec::new(),
        errors: 0,
    };
    for device in devices.iter().cycle() {
        if Instant::now() >= deadline {
            break;
        }
        let begun = Instant::now();
        match target.log_in(device).await {
            Ok(()) => outcome.latencies.push(begun.elapsed()),
            Err(e) => {
                outcome.errors += 1;
                if outcome.errors <= ERRORS_SHOWN {
                    eprintln!("passkeyload: {e:#}");
                }
            }
        }
    }
    outcome
}

/// The nearest-rank percentile `q` of sorted milliseconds.
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.max(1) - 1).copied()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, users, connections, seconds] = args.as_slice() else {
        return Err(usage());
    };
    let users: usize = users.parse().context("USERS")?;
    let connections: usize = connections.parse().context("CONNECTIONS")?;
    let seconds: f64 = seconds.parse().context("SECONDS")?;
    if connections == 0 || users < connections {
        bail!("USERS must be at least CONNECTIONS (at least 1): one login at a time per user");
    }
    #[allow(
        clippy::disallowed_methods,
        reason = "the load generator is a client of the server it measures, not latchkey's outbound HTTP"
    )]
    let target = Arc::new(Target {
        http: Client::builder().timeout(Duration::from_secs(30)).build()?,
        base: base.trim_end_matches('/').to_string(),
    });

    let begun = Instant::now();
    let devices = enroll_all(&target, users).await?;
    eprintln!(
        "passkeyload: {users} users have a passkey ({:.1} s); {connections} connections for {seconds} s",
        begun.elapsed().as_secs_f64()
    );

    let begun = Instant::now();
    let deadline = begun + Duration::from_secs_f64(seconds);
    let mut tasks = JoinSet::new();
    for first in 0..connections {
        let share = devices
            .iter()
            .skip(first)
            .step_by(connections)
            .cloned()
            .collect();
        tasks.spawn(drive(target.clone(), share, deadline));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(outcome) = tasks.join_next().await {
        let outcome = outcome?;
        latencies.extend(outcome.latencies.iter().map(|d| d.as_secs_f64() * 1000.0));
        errors += outcome.errors;
    }
    let elapsed = begun.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);

    println!(
        "{}",
        json!({
            "rps": latencies.len() as f64 / elapsed,
            "p50": percentile(&latencies, 0.50),
            "p99": percentile(&latencies, 0.99),
            "errors": errors,
            "logins": latencies.len(),
        })
    );
    Ok(())
}
