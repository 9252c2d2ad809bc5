//! Calendar time as the registry sees it: whole days and ISO 8601 periods.
//!
//! Credit law counts in days (a list entry lasts two years, a fare-evasion ban
//! 180 days, removal within three working days), so the fold works on [`Day`],
//! a count of days since 1970-01-01. An RFC 3339 time is reduced to its
//! calendar day in China Standard Time (UTC+08:00), where the records are
//! made. Nothing here reads the clock: "today" is always a parameter.

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// A calendar day, counted from 1970-01-01 (day 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

/// Offset of China Standard Time from UTC, in seconds.
const CST_OFFSET_S: i64 = 8 * 3600;

impl Day {
    pub const MIN: Day = Day(i32::MIN / 2);
    pub const MAX: Day = Day(i32::MAX / 2);

    pub fn from_ymd(year: i16, month: i8, day: i8) -> Option<Day> {
        let date = Date::new(year, month, day).ok()?;
        Some(Day::from_date(date))
    }

    pub fn from_date(date: Date) -> Day {
        let epoch = Date::constant(1970, 1, 1);
        let days = date.since(epoch).map(|span| span.get_days()).unwrap_or_default();
        Day(days)
    }

    pub fn to_date(self) -> Date {
        let epoch = Date::constant(1970, 1, 1);
        epoch
            .checked_add(jiff::Span::new().days(i64::from(self.0)))
            .unwrap_or(if self.0 < 0 { Date::MIN } else { Date::MAX })
    }

    pub fn year(self) -> i16 {
        self.to_date().year()
    }

    pub fn month(self) -> i8 {
        self.to_date().month()
    }

    pub fn add_days(self, days: i32) -> Day {
        Day(self.0.saturating_add(days))
    }

    /// Monday = 0 … Sunday = 6. 1970-01-01 was a Thursday.
    pub fn weekday_from_monday(self) -> i32 {
        (self.0 + 3).rem_euclid(7)
    }

    /// The day `n` working days (Monday to Friday) after this one.
    pub fn add_working_days(self, n: u32) -> Day {
        let mut day = self;
        let mut left = n;
        while left > 0 {
            day = day.add_days(1);
            if day.weekday_from_monday() < 5 {
                left -= 1;
            }
        }
        day
    }

    /// Parses `YYYY-MM-DD` or an RFC 3339 time (reduced to its day in UTC+08:00).
    pub fn parse(text: &str) -> Result<Day, TimeError> {
        if text.len() == 10 {
            let date: Date = text.parse().map_err(|_| TimeError::BadDate(text.to_string()))?;
            return Ok(Day::from_date(date));
        }
        let ts: jiff::Timestamp = text.parse().map_err(|_| TimeError::BadDate(text.to_string()))?;
        let days = (ts.as_second() + CST_OFFSET_S).div_euclid(86_400);
        Ok(Day(days as i32))
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_date())
    }
}

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Day::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("`{0}` is not a date (YYYY-MM-DD) nor an RFC 3339 time")]
    BadDate(String),
    #[error("`{0}` is not an ISO 8601 period such as P5Y, P6M, P2W or P180D")]
    BadPeriod(String),
}

/// An ISO 8601 calendar period: years, months and days (weeks are 7 days).
/// Time-of-day parts are refused: credit periods are whole days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Period {
    pub years: u16,
    pub months: u16,
    pub days: u32,
}

impl Period {
    pub const fn days(days: u32) -> Period {
        Period { years: 0, months: 0, days }
    }

    pub const fn years(years: u16) -> Period {
        Period { years, months: 0, days: 0 }
    }

    pub fn is_zero(&self) -> bool {
        self.years == 0 && self.months == 0 && self.days == 0
    }

    /// `day` plus this period, by the calendar (2024-02-29 + P1Y = 2025-02-28).
    pub fn after(&self, day: Day) -> Day {
        if self.years == 0 && self.months == 0 {
            return day.add_days(self.days as i32);
        }
        let span = jiff::Span::new()
            .years(i64::from(self.years))
            .months(i64::from(self.months))
            .days(i64::from(self.days));
        match day.to_date().checked_add(span) {
            Ok(date) => Day::from_date(date),
            Err(_) => Day::MAX,
        }
    }

    /// `day` minus this period, by the calendar.
    pub fn before(&self, day: Day) -> Day {
        if self.years == 0 && self.months == 0 {
            return day.add_days(-(self.days as i32));
        }
        let span = jiff::Span::new()
            .years(-i64::from(self.years))
            .months(-i64::from(self.months))
            .days(-i64::from(self.days));
        match day.to_date().checked_add(span) {
            Ok(date) => Day::from_date(date),
            Err(_) => Day::MIN,
        }
    }
}

impl FromStr for Period {
    type Err = TimeError;

    fn from_str(text: &str) -> Result<Period, TimeError> {
        let bad = || TimeError::BadPeriod(text.to_string());
        let rest = text.strip_prefix('P').ok_or_else(bad)?;
        if rest.is_empty() || rest.contains('T') {
            return Err(bad());
        }
        let mut period = Period::default();
        let mut number = String::new();
        for ch in rest.chars() {
            if ch.is_ascii_digit() {
                number.push(ch);
                continue;
            }
            let n: u32 = number.parse().map_err(|_| bad())?;
            number.clear();
            match ch {
                'Y' => period.years = u16::try_from(n).map_err(|_| bad())?,
                'M' => period.months = u16::try_from(n).map_err(|_| bad())?,
                'W' => period.days += n.checked_mul(7).ok_or_else(bad)?,
                'D' => period.days += n,
                _ => return Err(bad()),
            }
        }
        if !number.is_empty() {
            return Err(bad());
        }
        Ok(period)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return write!(f, "P0D");
        }
        write!(f, "P")?;
        if self.years > 0 {
            write!(f, "{}Y", self.years)?;
        }
        if self.months > 0 {
            write!(f, "{}M", self.months)?;
        }
        if self.days > 0 {
            write!(f, "{}D", self.days)?;
        }
        Ok(())
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_weekdays() {
        let day = Day::parse("2026-03-01").unwrap();
        assert_eq!(day.to_string(), "2026-03-01");
        assert_eq!(Day::parse("1970-01-01").unwrap(), Day(0));
        // 2026-03-01 is a Sunday; three working days later is Wednesday 03-04.
        assert_eq!(day.weekday_from_monday(), 6);
        assert_eq!(day.add_working_days(3).to_string(), "2026-03-04");
        // Friday + 1 working day is Monday.
        assert_eq!(Day::parse("2026-03-06").unwrap().add_working_days(1).to_string(), "2026-03-09");
    }

    #[test]
    fn rfc3339_times_fall_on_their_china_standard_day() {
        assert_eq!(Day::parse("2026-03-01T20:00:00Z").unwrap().to_string(), "2026-03-02");
        assert_eq!(Day::parse("2026-03-01T10:00:00+08:00").unwrap().to_string(), "2026-03-01");
        assert!(Day::parse("2026-02-30").is_err());
        assert!(Day::parse("yesterday").is_err());
    }

    #[test]
    fn periods_parse_and_add_by_the_calendar() {
        let p: Period = "P1Y6M".parse().unwrap();
        assert_eq!(p, Period { years: 1, months: 6, days: 0 });
        assert_eq!("P2W".parse::<Period>().unwrap(), Period::days(14));
        assert!("PT5H".parse::<Period>().is_err());
        assert!("5Y".parse::<Period>().is_err());
        assert!("P".parse::<Period>().is_err());
        let leap = Day::parse("2024-02-29").unwrap();
        assert_eq!(Period::years(1).after(leap).to_string(), "2025-02-28");
        assert_eq!(Period::days(180).before(Period::days(180).after(leap)), leap);
    }
}
