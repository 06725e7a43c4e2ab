//! The load driver of scenario 7: a real password login's latency while a
//! flood of password requests, each abandoned by its client after a short
//! timeout, hits the token endpoint.
//!
//! `floodload BASE_URL USERS FLOOD ABANDON_MS SECONDS`, against the tenant
//! of `seed tenant` (`user{i}@bench.test`, the bench password).
//!
//! Two phases of SECONDS each. Quiet: one real login after another (the
//! password grant for a user in turn), from `127.0.0.2`. Flood: again, while
//! from `127.0.0.1` bursts of FLOOD password grants are sent at once, each
//! given up after ABANDON_MS (the connection closed), the next burst as soon
//! as the last request of the previous one has ended. The real logins use
//! their own address, as a user elsewhere would; the flood's requests carry
//! right passwords, so each costs the server a full Argon2id verification
//! if it reaches one.
//!
//! Prints one JSON line on stdout: `{"quiet": {...}, "flood": {...},
//! "flood_requests": {"sent", "abandoned", "answered": {status: count}}}`,
//! each phase `{"rps", "p50", "p99", "errors", "logins", "refused"}`: real
//! logins per second, their latency in ms (successful ones), errors
//! (transport errors, answers other than 200, 503 and 429) and refusals
//! (503 or 429: the server turned the login away at once).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "Bench-password-2026";

fn usage() -> anyhow::Error {
    anyhow!("usage: floodload BASE_URL USERS FLOOD ABANDON_MS SECONDS")
}

fn form(user: u64) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "password".into()),
        ("client_id", "spa".into()),
        ("scope", "openid".into()),
        ("username", format!("user{user}@bench.test")),
        ("password", PASSWORD.into()),
    ]
}

/// A client whose requests come from `127.0.0.{last}`, to the server at
/// `base` (`http://localhost:PORT`: reached on `127.0.0.1`).
#[allow(
    clippy::disallowed_methods,
    reason = "the load generator is a client of the server it measures, not latchkey's outbound HTTP"
)]
fn client_from(base: &str, last: u8) -> anyhow::Result<Client> {
    let port = url::Url::parse(base)?
        .port_or_known_default()
        .ok_or_else(|| anyhow!("no port in {base}"))?;
    Ok(Client::builder()
        .resolve("localhost", (Ipv4Addr::LOCALHOST, port).into())
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .build()?)
}

#[derive(Default)]
struct Phase {
    latencies: Vec<f64>,
    errors: u64,
    refused: u64,
}

impl Phase {
    fn report(mut self, seconds: f64) -> Value {
        self.latencies.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if self.latencies.is_empty() {
                return f64::NAN;
            }
            let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
            self.latencies[i]
        };
        json!({
            "rps": self.latencies.len() as f64 / seconds,
            "p50": at(0.5),
            "p99": at(0.99),
            "errors": self.errors,
            "refused": self.refused,
            "logins": self.latencies.len(),
        })
    }
}

/// Real logins one after another until `until`.
async fn real_logins(client: &Client, url: &str, users: u64, until: Instant) -> Phase {
    let mut phase = Phase::default();
    let mut user = 0;
    while Instant::now() < until {
        user = (user + 1) % users;
        let started = Instant::now();
        match client.post(url).form(&form(user)).send().await {
            Ok(res) => match res.status() {
                StatusCode::OK => {
                    let _ = res.bytes().await;
                    phase
                        .latencies
                        .push(started.elapsed().as_secs_f64() * 1000.0);
                }
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                    phase.refused += 1;
                }
                other => {
                    if phase.errors < 3 {
                        eprintln!("floodload: a real login answered {other}");
                    }
                    phase.errors += 1;
                }
            },
            Err(e) => {
                if phase.errors < 3 {
                    eprintln!("floodload: a real login failed: {e}");
                }
                phase.errors += 1;
            }
        }
    }
    phase
}

#[derive(Default)]
struct Flood {
    sent: AtomicU64,
    abandoned: AtomicU64,
    answered: std::sync::Mutex<BTreeMap<u16, u64>>,
}

/// Bursts of `size` abandoned requests until `stop`.
async fn flood(
    client: Client,
    url: String,
    users: u64,
    size: u64,
    abandon: Duration,
    stop: Arc<AtomicBool>,
    tally: Arc<Flood>,
) {
    let mut user = users / 2;
    while !stop.load(Ordering::Relaxed) {
        let mut burst = tokio::task::JoinSet::new();
        for _ in 0..size {
            user = (user + 1) % users;
            let request = client.post(&url).form(&form(user)).timeout(abandon);
            let tally = Arc::clone(&tally);
            burst.spawn(async move {
                tally.sent.fetch_add(1, Ordering::Relaxed);
                match request.send().await {
                    Ok(res) => {
                        let status = res.status().as_u16();
                        let _ = res.bytes().await;
                        if let Ok(mut answered) = tally.answered.lock() {
                            *answered.entry(status).or_default() += 1;
                        }
                    }
                    Err(_) => {
                        tally.abandoned.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while burst.join_next().await.is_some() {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, users, size, abandon_ms, seconds] = args.as_slice() else {
        return Err(usage());
    };
    let users: u64 = users.parse().context("USERS")?;
    let size: u64 = size.parse().context("FLOOD")?;
    let abandon = Duration::from_millis(abandon_ms.parse().context("ABANDON_MS")?);
    let seconds: u64 = seconds.parse().context("SECONDS")?;
    let length = Duration::from_secs(seconds);
    let url = format!("{base}/oauth/token");
    let real = client_from(base, 2)?;

    eprintln!("floodload: quiet phase, {seconds} s");
    let quiet = real_logins(&real, &url, users, Instant::now() + length).await;

    eprintln!("floodload: flood phase, {seconds} s, bursts of {size} abandoned after {abandon:?}");
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Flood::default());
    let flooding = tokio::spawn(flood(
        client_from(base, 1)?,
        url.clone(),
        users,
        size,
        abandon,
        Arc::clone(&stop),
        Arc::clone(&tally),
    ));
    let during = real_logins(&real, &url, users, Instant::now() + length).await;
    stop.store(true, Ordering::Relaxed);
    flooding.await?;

    let answered: BTreeMap<String, u64> = tally
        .answered
        .lock()
        .map_err(|_| anyhow!("the tally's lock"))?
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let secs = length.as_secs_f64();
    println!(
        "{}",
        json!({
            "quiet": quiet.report(secs),
            "flood": during.report(secs),
            "flood_requests": {
                "sent": tally.sent.load(Ordering::Relaxed),
                "abandoned": tally.abandoned.load(Ordering::Relaxed),
                "answered": answered,
            },
        })
    );
    Ok(())
}
