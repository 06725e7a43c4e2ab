//! Time, injected. Everything that needs "now" asks a [`Clock`]; tests move a
//! [`ManualClock`] instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// Seconds since the Unix epoch.
pub type Timestamp = i64;

pub trait Clock: Send + Sync + 'static {
    /// Current time in whole seconds since the Unix epoch.
    fn now(&self) -> Timestamp;

    fn now_datetime(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.now()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
        }
    }
}

/// The wall clock plus an offset read from a file at every reading (a
/// whole number of seconds; missing or unreadable counts as 0). For
/// end-to-end tests that move time across a running server
/// (`LATCHKEY_CLOCK_OFFSET_FILE`); never for production.
#[derive(Debug, Clone)]
pub struct OffsetFileClock {
    path: std::path::PathBuf,
}

impl OffsetFileClock {
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn offset(&self) -> i64 {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Clock for OffsetFileClock {
    fn now(&self) -> Timestamp {
        SystemClock.now() + self.offset()
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Arc::new(AtomicI64::new(start)),
        }
    }

    pub fn advance(&self, seconds: i64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }

    pub fn set(&self, at: Timestamp) {
        self.now.store(at, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.now.load(Ordering::SeqCst)
    }
}

/// RFC 3339 with milliseconds in UTC, the form the My Account API uses.
pub fn rfc3339(ts: Timestamp) -> String {
    let dt = OffsetDateTime::from_unix_timestamp(ts).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let Ok(year @ 0..=9999) = u16::try_from(dt.year()) else {
        return format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
    };
    // Written digit by digit: this runs for every date of every listed
    // method, and `format!` with padding costs several times more.
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u16| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, u16::from(u8::from(dt.month())));
    put(8, 2, u16::from(dt.day()));
    put(11, 2, u16::from(dt.hour()));
    put(14, 2, u16::from(dt.minute()));
    put(17, 2, u16::from(dt.second()));
    out.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_700_000_000);
        assert_eq!(c.now(), 1_700_000_000);
        c.advance(90);
        assert_eq!(c.now(), 1_700_000_090);
    }

    #[test]
    fn offset_file_clock_follows_its_file() {
        let dir = std::env::temp_dir().join(format!("latchkey-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("offset");
        let c = OffsetFileClock::new(&file);
        let base = SystemClock.now();
        assert!((c.now() - base).abs() <= 1, "no file: no offset");
        std::fs::write(&file, "901\n").unwrap();
        assert!((c.now() - base - 901).abs() <= 1);
        std::fs::write(&file, "not a number").unwrap();
        assert!((c.now() - base).abs() <= 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rfc3339_has_millis_and_z() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_736_937_000), "2025-01-15T10:30:00.000Z");
        assert_eq!(rfc3339(1_772_683_506), "2026-03-05T04:05:06.000Z");
        assert_eq!(rfc3339(-30_610_224_001), "0999-12-31T23:59:59.000Z");
    }
}
