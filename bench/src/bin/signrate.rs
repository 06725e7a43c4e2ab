//! The crypto bound of the token endpoints: how many RS256 (RSA-2048,
//! PKCS#1 v1.5, SHA-256) signatures per second this machine makes with
//! aws-lc, on every core. `signrate SECONDS`; prints the rate.

use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;

fn main() -> anyhow::Result<()> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10.0);
    let pair = std::sync::Arc::new(
        KeyPair::generate(KeySize::Rsa2048).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    // A payload the size of an access token's header and claims.
    let input = vec![b'x'; 600];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let pair = pair.clone();
            let input = input.clone();
            std::thread::spawn(move || {
                #[allow(
                    clippy::disallowed_methods,
                    reason = "the bound measured is aws-lc's signing alone, outside latchkey's Rng"
                )]
                let rng = SystemRandom::new();
                let mut sig = vec![0u8; pair.public_modulus_len()];
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if pair.sign(&RSA_PKCS1_SHA256, &rng, &input, &mut sig).is_ok() {
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
            .map_err(|_| anyhow::anyhow!("a signing thread failed"))?;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!("{rate:.0}");
    Ok(())
}
