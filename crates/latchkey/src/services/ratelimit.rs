//! Request limits in fixed windows, counted against the injected clock.
//!
//! A window is `[start, start + length)` with `start` a multiple of `length`
//! since the epoch, so every node agrees on window boundaries and the reset
//! time is exact. This in-memory limiter is the single-node implementation;
//! several nodes share limits through a store that implements [`Limiter`]
//! the same way.

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
}

pub struct MemoryLimiter {
    clock: SharedClock,
    windows: Mutex<HashMap<String, (Timestamp, u32)>>,
}

impl MemoryLimiter {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            windows: Mutex::new(HashMap::new()),
        }
    }
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
    fn minute_windows_align_to_the_minute() {
        let clock = ManualClock::new(1_000_030);
        let l = MemoryLimiter::new(Arc::new(clock));
        let d = l.hit("u", 5, 60);
        assert_eq!(d.reset, 1_000_080);
    }
}
