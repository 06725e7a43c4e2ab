//! Request limits in fixed windows, and attempt buckets, counted against the
//! injected clock.
//!
//! A window is `[start, start + length)` with `start` a multiple of `length`
//! since the epoch, so every node agrees on window boundaries and the reset
//! time is exact. A bucket (Auth0's attack-protection shape: `max_attempts`,
//! one more granted every `rate` milliseconds) is kept as the time at which
//! it will be full again, so an attempt taken can be given back. This
//! in-memory limiter is the single-node implementation; several nodes share
//! limits through a store that implements [`Limiter`] the same way.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::{SharedClock, Timestamp};

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Epoch seconds at which the window resets.
    pub reset: Timestamp,
}

impl Decision {
    /// The decision of a limit that is not set.
    pub fn unlimited(now: Timestamp) -> Self {
        Self {
            allowed: true,
            limit: u32::MAX,
            remaining: u32::MAX,
            reset: now + 1,
        }
    }

    /// Seconds until the caller may try again (at least 1).
    pub fn retry_after(&self, now: Timestamp) -> i64 {
        (self.reset - now).max(1)
    }
}

pub trait Limiter: Send + Sync {
    /// Counts one request against `key`, allowing `limit` per `window` seconds.
    fn hit(&self, key: &str, limit: u32, window: i64) -> Decision;
    /// What `hit` would decide, without counting.
    fn peek(&self, key: &str, limit: u32, window: i64) -> Decision;
    /// Takes one attempt from the bucket `key`, which holds at most
    /// `max_attempts` and is granted one more every `rate_ms` milliseconds.
    /// Refused, `reset` is when the next attempt is granted.
    fn take(&self, key: &str, max_attempts: u32, rate_ms: u64) -> Decision;
    /// Gives back an attempt `take` allowed (it did not count after all).
    fn give_back(&self, key: &str, rate_ms: u64);
}

pub(crate) struct MemoryLimiter {
    clock: SharedClock,
    windows: Mutex<HashMap<String, (Timestamp, u32)>>,
    /// Per bucket: the time (epoch milliseconds) at which it is full again.
    buckets: Mutex<HashMap<String, i128>>,
}

impl MemoryLimiter {
    pub(crate) fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            windows: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

/// Epoch seconds, rounded up, of epoch milliseconds.
fn ceil_seconds(ms: i128) -> Timestamp {
    Timestamp::try_from(ms.div_euclid(1000) + i128::from(ms.rem_euclid(1000) > 0))
        .unwrap_or(Timestamp::MAX)
}

impl Limiter for MemoryLimiter {
    fn hit(&self, key: &str, limit: u32, window: i64) -> Decision {
        let now = self.clock.now();
        let window = window.max(1);
        let start = now - now.rem_euclid(window);
        let reset = start + window;
        let Ok(mut map) = self.windows.lock() else {
            // A poisoned lock means a panic elsewhere; fail open rather than
            // refusing every request.
            return Decision {
                allowed: true,
                limit,
                remaining: limit,
                reset,
            };
        };
        if map.len() > 100_000 {
            map.retain(|_, (s, _)| *s + window > now);
        }
        let entry = map.entry(key.to_string()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        let allowed = entry.1 < limit;
        if allowed {
            entry.1 += 1;
        }
        Decision {
            allowed,
            limit,
            remaining: limit.saturating_sub(entry.1),
            reset,
        }
    }

    fn peek(&self, key: &str, limit: u32, window: i64) -> Decision {
        let now = self.clock.now();
        let window = window.max(1);
        let start = now - now.rem_euclid(window);
        let reset = start + window;
        let used = self
            .windows
            .lock()
            .ok()
            .and_then(|map| map.get(key).filter(|(s, _)| *s == start).map(|(_, n)| *n))
            .unwrap_or(0);
        Decision {
            allowed: used < limit,
            limit,
            remaining: limit.saturating_sub(used),
            reset,
        }
    }

    fn take(&self, key: &str, max_attempts: u32, rate_ms: u64) -> Decision {
        let now = i128::from(self.clock.now()) * 1000;
        let rate = i128::from(rate_ms.max(1));
        let capacity = i128::from(max_attempts) * rate;
        let Ok(mut map) = self.buckets.lock() else {
            // As for windows: fail open after a panic elsewhere.
            return Decision {
                allowed: true,
                limit: max_attempts,
                remaining: max_attempts,
                reset: ceil_seconds(now),
            };
        };
        if map.len() > 100_000 {
            map.retain(|_, full| *full > now);
        }
        let full = map.get(key).copied().unwrap_or(now).max(now);
        let after = full + rate;
        if after - now > capacity {
            // The next attempt is granted once the bucket can take one more.
            return Decision {
                allowed: false,
                limit: max_attempts,
                remaining: 0,
                reset: ceil_seconds(after - capacity),
            };
        }
        map.insert(key.to_string(), after);
        let left = (capacity - (after - now)) / rate;
        Decision {
            allowed: true,
            limit: max_attempts,
            remaining: u32::try_from(left).unwrap_or(0),
            reset: ceil_seconds(after),
        }
    }

    fn give_back(&self, key: &str, rate_ms: u64) {
        let rate = i128::from(rate_ms.max(1));
        if let Ok(mut map) = self.buckets.lock()
            && let Some(full) = map.get_mut(key)
        {
            *full -= rate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    #[test]
    fn counts_within_a_window_and_resets_at_its_end() {
        let clock = ManualClock::new(1_000);
        let l = MemoryLimiter::new(Arc::new(clock.clone()));
        for i in 0..3 {
            let d = l.hit("t", 3, 1);
            assert!(d.allowed);
            assert_eq!(d.remaining, 2 - i);
            assert_eq!(d.reset, 1_001);
        }
        let d = l.hit("t", 3, 1);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after(1_000), 1);
        assert!(l.hit("other", 3, 1).allowed, "keys are independent");
        clock.advance(1);
        assert!(l.hit("t", 3, 1).allowed);
    }

    #[test]
    fn peek_does_not_count() {
        let clock = ManualClock::new(1_000);
        let l = MemoryLimiter::new(Arc::new(clock));
        assert!(l.peek("p", 1, 60).allowed);
        assert!(l.peek("p", 1, 60).allowed);
        assert!(l.hit("p", 1, 60).allowed);
        assert!(!l.peek("p", 1, 60).allowed);
        assert_eq!(l.peek("p", 1, 60).remaining, 0);
    }

    #[test]
    fn a_bucket_grants_its_attempts_then_one_per_rate() {
        let clock = ManualClock::new(1_000);
        let l = MemoryLimiter::new(Arc::new(clock.clone()));
        // Three attempts, one more every 10 seconds.
        for left in [2, 1, 0] {
            let d = l.take("ip", 3, 10_000);
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
        }
        let refused = l.take("ip", 3, 10_000);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after(1_000), 10);
        assert!(l.take("other", 3, 10_000).allowed, "keys are independent");
        clock.advance(9);
        assert!(!l.take("ip", 3, 10_000).allowed);
        clock.advance(1);
        assert!(l.take("ip", 3, 10_000).allowed);
        assert!(!l.take("ip", 3, 10_000).allowed);
        clock.advance(3_600);
        for _ in 0..3 {
            assert!(l.take("ip", 3, 10_000).allowed, "a full bucket again");
        }
        assert!(!l.take("ip", 3, 10_000).allowed);
    }

    #[test]
    fn an_attempt_given_back_does_not_count() {
        let clock = ManualClock::new(1_000);
        let l = MemoryLimiter::new(Arc::new(clock));
        for _ in 0..10 {
            assert!(l.take("ip", 2, 60_000).allowed);
            l.give_back("ip", 60_000);
        }
        assert!(l.take("ip", 2, 60_000).allowed);
        assert!(l.take("ip", 2, 60_000).allowed);
        assert!(!l.take("ip", 2, 60_000).allowed);
    }

    #[test]
    fn minute_windows_align_to_the_minute() {
        let clock = ManualClock::new(1_000_030);
        let l = MemoryLimiter::new(Arc::new(clock));
        let d = l.hit("u", 5, 60);
        assert_eq!(d.reset, 1_000_080);
    }
}
