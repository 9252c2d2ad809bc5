//! Where the server reads the time. The core never does: the server passes
//! it today's [`Day`] in China Standard Time, and stamps audit entries with
//! the wall clock. Behind a trait so that tests fix the day.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use socred_core::Day;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// China Standard Time is UTC+08:00, all year.
const CST_OFFSET_MS: i64 = 8 * 3_600_000;

/// The server's source of time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch (UTC).
    fn now_ms(&self) -> i64;

    /// Today in China Standard Time, the day every file and decision is read as of.
    fn today(&self) -> Day {
        china_day(self.now_ms())
    }
}

/// The calendar day in China Standard Time of an instant.
pub fn china_day(at_ms: i64) -> Day {
    let days = (at_ms + CST_OFFSET_MS).div_euclid(DAY_MS);
    Day(i32::try_from(days).unwrap_or(if days < 0 { i32::MIN / 2 } else { i32::MAX / 2 }))
}

/// The first millisecond of `day` in China Standard Time.
pub fn china_day_start_ms(day: Day) -> i64 {
    i64::from(day.0) * DAY_MS - CST_OFFSET_MS
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(elapsed) => i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
            // A clock set before 1970 is broken; count it as the epoch.
            Err(_) => 0,
        }
    }
}

/// A clock that shows what it was set to, for tests.
#[derive(Debug)]
pub struct FixedClock {
    now_ms: AtomicI64,
}

impl FixedClock {
    /// Noon of `day` in China Standard Time.
    pub fn at_day(day: Day) -> FixedClock {
        FixedClock {
            now_ms: AtomicI64::new(china_day_start_ms(day) + DAY_MS / 2),
        }
    }

    /// Moves the clock to noon of `day`.
    pub fn set_day(&self, day: Day) {
        self.set_ms(china_day_start_ms(day) + DAY_MS / 2);
    }

    /// Moves the clock to an instant, in milliseconds since the Unix epoch.
    pub fn set_ms(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::Relaxed);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_turns_at_midnight_in_beijing() {
        // 2026-03-01T16:00:00Z is midnight in Beijing: already 2026-03-02 there.
        let at_ms = 1_772_380_800_000;
        assert_eq!(china_day(at_ms).to_string(), "2026-03-02");
        assert_eq!(china_day(at_ms - 1).to_string(), "2026-03-01");
        let day = Day::parse("2026-03-02").unwrap();
        assert_eq!(FixedClock::at_day(day).today(), day);
    }
}
