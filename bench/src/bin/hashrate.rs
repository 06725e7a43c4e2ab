//! The bound of the password grant: how many Argon2id verifications per
//! second this machine makes with latchkey's production parameters
//! (19 MiB, t=2, p=1), on every core. `hashrate SECONDS`; prints the rate.

use std::time::{Duration, Instant};

use latchkey::crypto::password::PasswordHasherConfig;

fn main() -> anyhow::Result<()> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10.0);
    let config = PasswordHasherConfig::default();
    let stored = config
        .hash(&latchkey::rng::SystemRng, "Bench-password-2026")
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let stored = stored.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if config.verify("Bench-password-2026", &stored) {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let mut total = 0u64;
    for h in handles {
        total += h
            .join()
            .map_err(|_| anyhow::anyhow!("a hashing thread failed"))?;
    }
    println!("{:.1}", total as f64 / started.elapsed().as_secs_f64());
    Ok(())
}
