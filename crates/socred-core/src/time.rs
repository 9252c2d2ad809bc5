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

/// The civil conversions count from 1 March of year `-CIVIL_YEAR_SHIFT`
/// (a multiple of 400 years before 1970) so that every `i32` day is a
/// non-negative number of days from there.
const CIVIL_YEAR_SHIFT: i64 = 400 * 14_700;
/// Days from that origin to 1970-01-01.
const CIVIL_DAY_SHIFT: i64 = 719_468 + 146_097 * 14_700;

/// The first year of [`MARCH_FIRST`].
const TABLE_YEAR_FIRST: i32 = 1900;
/// How many years [`MARCH_FIRST`] holds (1900 to 2411).
const TABLE_YEARS: usize = 512;
/// 1 March of each year from [`TABLE_YEAR_FIRST`], as a [`Day`] number,
/// computed at build time. A year counted from 1 March has the same months
/// whatever the year, 29 February being its last day: so `day` plus whole
/// years is `day` moved from one 1 March to another, two loads instead of
/// the civil arithmetic (see [`Period::after_civil`]).
const MARCH_FIRST: [i32; TABLE_YEARS] = {
    let mut table = [0; TABLE_YEARS];
    let mut i = 0;
    while i < TABLE_YEARS {
        // `Day::from_civil(year, 3, 1)`, spelled for a const context.
        let y = (TABLE_YEAR_FIRST as i64 + i as i64 + CIVIL_YEAR_SHIFT) as u64;
        let century = y / 100;
        let days_of_years = 1461 * y / 4 - century + century / 4;
        table[i] = (days_of_years as i64 - CIVIL_DAY_SHIFT) as i32;
        i += 1;
    }
    table
};

impl Day {
    pub const MIN: Day = Day(i32::MIN / 2);
    pub const MAX: Day = Day(i32::MAX / 2);

    pub fn from_ymd(year: i16, month: i8, day: i8) -> Option<Day> {
        let date = Date::new(year, month, day).ok()?;
        Some(Day::from_date(date))
    }

    pub fn from_date(date: Date) -> Day {
        Day::from_civil(
            i32::from(date.year()),
            date.month() as u32,
            date.day() as u32,
        )
    }

    pub fn to_date(self) -> Date {
        let (year, month, day) = self.to_civil();
        let year = year.clamp(i32::from(Date::MIN.year()), i32::from(Date::MAX.year()));
        Date::new(year as i16, month as i8, day as i8).unwrap_or(if self.0 < 0 {
            Date::MIN
        } else {
            Date::MAX
        })
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (the day must
    /// exist, the year be within ±5 million). Neri and Schneider's
    /// Euclidean affine form ("Euclidean affine functions and their
    /// application to calendar algorithms", 2022): a few multiplications,
    /// no tables and no signed division, because the fold converts dates
    /// for every record and effect.
    pub fn from_civil(year: i32, month: u32, day: u32) -> Day {
        let before_march = u64::from(month <= 2);
        let y = ((i64::from(year) + CIVIL_YEAR_SHIFT) as u64).wrapping_sub(before_march);
        let m = if month <= 2 { month + 12 } else { month };
        let century = y / 100;
        let days_of_years = 1461 * y / 4 - century + century / 4;
        let days_of_months = u64::from((979 * m - 2919) / 32);
        let n = days_of_years + days_of_months + u64::from(day) - 1;
        Day((n as i64 - CIVIL_DAY_SHIFT) as i32)
    }

    /// (year, month 1-12, day 1-31) of this day; the inverse of
    /// [`Day::from_civil`], by the same method.
    pub fn to_civil(self) -> (i32, u32, u32) {
        let n = (i64::from(self.0) + CIVIL_DAY_SHIFT) as u64;
        let n1 = 4 * n + 3;
        let century = n1 / 146_097;
        let of_century = (n1 % 146_097 / 4) as u32;
        let n2 = 4 * u64::from(of_century) + 3;
        let p2 = 2_939_745 * n2;
        let year_of_century = (p2 >> 32) as u32;
        let day_of_year = (p2 as u32) / 2_939_745 / 4;
        let n3 = 2141 * day_of_year + 197_913;
        let month = n3 >> 16;
        let day = (n3 & 0xffff) / 2141 + 1;
        let january_or_february = day_of_year >= 306;
        let year = (100 * century as i64 + i64::from(year_of_century) - CIVIL_YEAR_SHIFT
            + i64::from(january_or_february)) as i32;
        let month = if january_or_february {
            month - 12
        } else {
            month
        };
        (year, month, day)
    }

    pub fn year(self) -> i32 {
        self.to_civil().0
    }

    pub fn month(self) -> u32 {
        self.to_civil().1
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

    /// Parses a plain `YYYY-MM-DD` date, and nothing else.
    pub fn parse_date(text: &str) -> Result<Day, TimeError> {
        if text.len() != 10 {
            return Err(TimeError::BadDate(text.to_string()));
        }
        let date: Date = text
            .parse()
            .map_err(|_| TimeError::BadDate(text.to_string()))?;
        Ok(Day::from_date(date))
    }

    /// Parses `YYYY-MM-DD` or an RFC 3339 time (reduced to its day in UTC+08:00).
    pub fn parse(text: &str) -> Result<Day, TimeError> {
        if text.len() == 10 {
            let date: Date = text
                .parse()
                .map_err(|_| TimeError::BadDate(text.to_string()))?;
            return Ok(Day::from_date(date));
        }
        if !rfc3339_shape(text.as_bytes()) {
            return Err(TimeError::BadDate(text.to_string()));
        }
        // RFC 3339 allows any number of fraction digits; jiff reads nine
        // (nanoseconds), which is all a day needs.
        let trimmed;
        let readable = match text.get(19..).and_then(|rest| rest.strip_prefix('.')) {
            Some(fraction) => {
                let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
                if digits > 9 {
                    trimmed = format!("{}.{}{}", &text[..19], &fraction[..9], &fraction[digits..]);
                    trimmed.as_str()
                } else {
                    text
                }
            }
            None => text,
        };
        let ts: jiff::Timestamp = readable
            .parse()
            .map_err(|_| TimeError::BadDate(text.to_string()))?;
        let days = (ts.as_second() + CST_OFFSET_S).div_euclid(86_400);
        Ok(Day(days as i32))
    }
}

/// Whether `text` has the shape of an RFC 3339 date-time (section 5.6):
/// `YYYY-MM-DDTHH:MM:SS`, an optional fraction, and `Z` or an offset of
/// `+HH:MM` or `-HH:MM` with the hour below 24 and the minute below 60.
/// jiff reads more (offsets without minutes or up to 25 hours, a space
/// for the `T`), which a record's dates must not be: what a provider
/// sends one way must mean the same to every reader.
fn rfc3339_shape(text: &[u8]) -> bool {
    let digits = |bytes: &[u8]| !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit);
    let Some((date_time, rest)) = text.split_at_checked(19) else {
        return false;
    };
    let shaped = digits(&date_time[..4])
        && date_time[4] == b'-'
        && digits(&date_time[5..7])
        && date_time[7] == b'-'
        && digits(&date_time[8..10])
        && matches!(date_time[10], b'T' | b't')
        && digits(&date_time[11..13])
        && date_time[13] == b':'
        && digits(&date_time[14..16])
        && date_time[16] == b':'
        && digits(&date_time[17..19]);
    if !shaped {
        return false;
    }
    let offset = match rest.strip_prefix(b".") {
        Some(fraction) => {
            let end = fraction
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(fraction.len());
            if end == 0 {
                return false;
            }
            &fraction[end..]
        }
        None => rest,
    };
    match offset {
        b"Z" | b"z" => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| {
                (a.is_ascii_digit() && b.is_ascii_digit()).then(|| (a - b'0') * 10 + (b - b'0'))
            };
            matches!((two(*h1, *h2), two(*m1, *m2)), (Some(hour), Some(minute)) if hour < 24 && minute < 60)
        }
        _ => false,
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_date())
    }
}

/// The last day a date can name; written for an open end (`Day::MAX`) and
/// read back as one, so that states survive a JSON round trip.
const LAST_DATE: &str = "9999-12-31";

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if *self >= Day::from_civil(9999, 12, 31) {
            return serializer.serialize_str(LAST_DATE);
        }
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == LAST_DATE {
            return Ok(Day::MAX);
        }
        Day::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Which days are working days where the rulebook applies: Monday to
/// Friday, less public holidays, plus the weekend days made working days to
/// make up for them (调休). Empty, it is Monday to Friday.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Calendar {
    /// Sorted, unique.
    holidays: Vec<Day>,
    /// Sorted, unique, none of them a holiday.
    working_weekends: Vec<Day>,
}

impl Calendar {
    /// A calendar from its holidays and working weekend days (in any order,
    /// repeats ignored). A day in both counts as a holiday: the rulebook
    /// checker refuses that before it gets here.
    pub fn new(holidays: Vec<Day>, working_weekends: Vec<Day>) -> Calendar {
        let mut holidays = holidays;
        holidays.sort();
        holidays.dedup();
        let mut working_weekends = working_weekends;
        working_weekends.retain(|day| holidays.binary_search(day).is_err());
        working_weekends.sort();
        working_weekends.dedup();
        Calendar {
            holidays,
            working_weekends,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.holidays.is_empty() && self.working_weekends.is_empty()
    }

    pub fn holidays(&self) -> &[Day] {
        &self.holidays
    }

    pub fn working_weekends(&self) -> &[Day] {
        &self.working_weekends
    }

    pub fn is_working_day(&self, day: Day) -> bool {
        if self.holidays.binary_search(&day).is_ok() {
            return false;
        }
        day.weekday_from_monday() < 5 || self.working_weekends.binary_search(&day).is_ok()
    }

    /// The day `n` working days after `day`. Terminates: holidays are finite,
    /// so past the last one every week has five working days.
    pub fn add_working_days(&self, day: Day, n: u32) -> Day {
        if self.is_empty() {
            return day.add_working_days(n);
        }
        let mut day = day;
        let mut left = n;
        while left > 0 && day < Day::MAX {
            day = day.add_days(1);
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("`{0}` is not a date (YYYY-MM-DD) nor an RFC 3339 time")]
    BadDate(String),
    #[error("`{0}` is not an ISO 8601 period such as P5Y, P6M, P2W or P180D")]
    BadPeriod(String),
    #[error("`{text}` is too long a period: at most {max} {unit}")]
    PeriodTooLarge {
        text: String,
        unit: &'static str,
        max: u32,
    },
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
        Period {
            years: 0,
            months: 0,
            days,
        }
    }

    pub const fn years(years: u16) -> Period {
        Period {
            years,
            months: 0,
            days: 0,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.years == 0 && self.months == 0 && self.days == 0
    }

    /// This period `k` times over (P1M three times is P3M), or None when a
    /// part would not fit.
    pub fn times(&self, k: u32) -> Option<Period> {
        let small = |n: u16| u16::try_from(u32::from(n).checked_mul(k)?).ok();
        Some(Period {
            years: small(self.years)?,
            months: small(self.months)?,
            days: self.days.checked_mul(k)?,
        })
    }

    /// `day` plus this period, by the calendar (2024-02-29 + P1Y = 2025-02-28).
    pub fn after(&self, day: Day) -> Day {
        self.shift(day, 1)
    }

    /// `day` minus this period, by the calendar.
    pub fn before(&self, day: Day) -> Day {
        self.shift(day, -1)
    }

    /// Years and months first, clamping the day to the month's length (as
    /// ISO 8601 and jiff do), then days.
    fn shift(&self, day: Day, sign: i32) -> Day {
        if day == Day::MAX || day == Day::MIN {
            return day;
        }
        if self.years == 0 && self.months == 0 {
            let days = i64::from(day.0) + i64::from(sign) * i64::from(self.days);
            return Day(days.clamp(i64::from(Day::MIN.0), i64::from(Day::MAX.0)) as i32);
        }
        self.shift_civil(day, day.to_civil(), sign)
    }

    /// `day` plus this period when the caller already has `day`'s civil
    /// date: the fold adds several periods to each decision day.
    ///
    /// Inlined for whole years (every retention and validity of the default
    /// rulebook, two or three per record): the call cost as much as the
    /// arithmetic. Within [`MARCH_FIRST`]'s years, `day` moves from the 1
    /// March before it to the one `years` later, by the same number of
    /// days (29 February aside: the next year may lack it).
    #[inline]
    pub fn after_civil(&self, day: Day, civil: (i32, u32, u32)) -> Day {
        let (year, month, dom) = civil;
        if self.months == 0 && self.days == 0 && !(month == 2 && dom == 29) {
            let march_year = year.wrapping_sub(i32::from(month <= 2));
            let from = march_year.wrapping_sub(TABLE_YEAR_FIRST) as u32 as usize;
            let to = from + usize::from(self.years);
            if let (Some(&start), Some(&end)) = (MARCH_FIRST.get(from), MARCH_FIRST.get(to)) {
                return Day(day.0 - start + end);
            }
        }
        self.after_civil_slow(day, civil)
    }

    /// [`Period::after_civil`] in full.
    #[inline(never)]
    fn after_civil_slow(&self, day: Day, civil: (i32, u32, u32)) -> Day {
        if day == Day::MAX || day == Day::MIN {
            return day;
        }
        // Whole years (retention, validity) keep month and day, but for
        // 29 February in a common year.
        let (year, month, dom) = civil;
        let new_year = year + i32::from(self.years);
        if self.months == 0 && self.days == 0 && (-200_000..=200_000).contains(&new_year) {
            let dom = if month == 2 && dom == 29 {
                dom.min(days_in_month(new_year, month))
            } else {
                dom
            };
            return Day::from_civil(new_year, month, dom);
        }
        self.shift_civil(day, civil, 1)
    }

    fn shift_civil(&self, day: Day, (year, month, dom): (i32, u32, u32), sign: i32) -> Day {
        let mut out = day;
        if self.years > 0 || self.months > 0 {
            // Whole years (the usual retention and validity) keep the month:
            // no division needed.
            let (new_year, new_month) = if self.months == 0 {
                let year = i64::from(year) + i64::from(sign) * i64::from(self.years);
                (year, month)
            } else {
                let months = i64::from(year) * 12 + i64::from(month) - 1
                    + i64::from(sign) * (i64::from(self.years) * 12 + i64::from(self.months));
                (months.div_euclid(12), (months.rem_euclid(12) + 1) as u32)
            };
            if new_year.abs() > 200_000 {
                return if sign > 0 { Day::MAX } else { Day::MIN };
            }
            let dom = if dom <= 28 {
                dom
            } else {
                dom.min(days_in_month(new_year as i32, new_month))
            };
            out = Day::from_civil(new_year as i32, new_month, dom);
        }
        let days = i64::from(out.0) + i64::from(sign) * i64::from(self.days);
        Day(days.clamp(i64::from(Day::MIN.0), i64::from(Day::MAX.0)) as i32)
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
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
        let too_large = |unit: &'static str, max: u32| TimeError::PeriodTooLarge {
            text: text.to_string(),
            unit,
            max,
        };
        let mut period = Period::default();
        let mut number = String::new();
        // Each part at most once, in the order Y, M, W, D.
        let mut last_part = 0;
        for ch in rest.chars() {
            if ch.is_ascii_digit() {
                number.push(ch);
                continue;
            }
            let part = match ch {
                'Y' => 1,
                'M' => 2,
                'W' => 3,
                'D' => 4,
                _ => return Err(bad()),
            };
            if number.is_empty() || part <= last_part {
                return Err(bad());
            }
            last_part = part;
            let small = |unit| {
                number
                    .parse::<u16>()
                    .map_err(|_| too_large(unit, u32::from(u16::MAX)))
            };
            let days_max = u32::MAX - period.days;
            match ch {
                'Y' => period.years = small("years")?,
                'M' => period.months = small("months")?,
                'W' => {
                    period.days += number
                        .parse::<u32>()
                        .ok()
                        .and_then(|weeks| weeks.checked_mul(7))
                        .filter(|&days| days <= days_max)
                        .ok_or_else(|| too_large("weeks", days_max / 7))?;
                }
                _ => {
                    period.days += number
                        .parse::<u32>()
                        .ok()
                        .filter(|&days| days <= days_max)
                        .ok_or_else(|| too_large("days", days_max))?;
                }
            }
            number.clear();
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
        assert_eq!(
            Day::parse("2026-03-06")
                .unwrap()
                .add_working_days(1)
                .to_string(),
            "2026-03-09"
        );
    }

    #[test]
    fn calendar_skips_holidays_and_counts_working_weekends() {
        let day = |text: &str| Day::parse_date(text).unwrap();
        // National Day 2025: 1-8 October off, Sunday 28 September and
        // Saturday 11 October worked.
        let holidays = (1..=8).map(|d| day(&format!("2025-10-0{d}"))).collect();
        let calendar = Calendar::new(holidays, vec![day("2025-09-28"), day("2025-10-11")]);
        let tuesday = day("2025-09-30");
        assert_eq!(tuesday.add_working_days(3).to_string(), "2025-10-03");
        // Thursday 9, Friday 10, and the working Saturday 11.
        assert_eq!(
            calendar.add_working_days(tuesday, 3).to_string(),
            "2025-10-11"
        );
        // From Friday 26 September: the working Sunday counts.
        assert_eq!(
            calendar.add_working_days(day("2025-09-26"), 1).to_string(),
            "2025-09-28"
        );
        // An empty calendar is Monday to Friday.
        assert_eq!(
            Calendar::default().add_working_days(tuesday, 3),
            day("2025-10-03")
        );
        assert!(Day::parse_date("2025-10-01T00:00:00+08:00").is_err());
    }

    #[test]
    fn rfc3339_times_fall_on_their_china_standard_day() {
        assert_eq!(
            Day::parse("2026-03-01T20:00:00Z").unwrap().to_string(),
            "2026-03-02"
        );
        assert_eq!(
            Day::parse("2026-03-01T10:00:00+08:00").unwrap().to_string(),
            "2026-03-01"
        );
        assert!(Day::parse("2026-02-30").is_err());
        assert!(Day::parse("yesterday").is_err());
        assert_eq!(
            Day::parse("2026-03-01T15:59:59.9999999999999Z")
                .unwrap()
                .to_string(),
            "2026-03-01"
        );
        for good in [
            "2026-03-01T10:00:00.123456+08:00",
            "2026-03-01t02:00:00z",
            "2026-03-01T10:00:00-23:59",
        ] {
            assert!(Day::parse(good).is_ok(), "{good}");
        }
        // What jiff reads but RFC 3339 does not have.
        for bad in [
            "2026-03-01T10:00:00+25:00",
            "2026-03-01T10:00:00+08",
            "2026-03-01T10:00:00+0800",
            "2026-03-01 10:00:00+08:00",
            "2026-03-01T10:00+08:00",
            "2026-03-01T10:00:00.+08:00",
            "2026-03-01T10:00:00+08:60",
            "2026-03-01T10:00:00",
            "2026-03-01T25:00:00Z",
            "+002026-03-01T10:00:00Z",
        ] {
            assert!(Day::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn civil_conversions_agree_with_jiff() {
        for n in (-800_000..800_000).step_by(997) {
            let day = Day(n);
            let (y, m, d) = day.to_civil();
            let via_jiff = Date::constant(1970, 1, 1)
                .checked_add(jiff::Span::new().days(i64::from(n)))
                .unwrap();
            let expected = (
                i32::from(via_jiff.year()),
                via_jiff.month() as u32,
                via_jiff.day() as u32,
            );
            assert_eq!((y, m, d), expected);
            assert_eq!(Day::from_civil(y, m, d), day);
        }
    }

    /// H. Hinnant's `days_from_civil` and `civil_from_days`, in i64: the
    /// plain-arithmetic reference for the faster conversions.
    fn reference_from_civil(year: i64, month: i64, day: i64) -> i64 {
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn reference_to_civil(days: i64) -> (i64, i64, i64) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(month <= 2), month, day)
    }

    #[test]
    fn civil_conversions_agree_with_the_reference_over_every_day() {
        let every_day = -1_000_000..1_000_000;
        let strided = (i32::MIN..=i32::MAX).step_by(9_973);
        let ends = [
            i32::MIN,
            i32::MIN + 1,
            Day::MIN.0,
            Day::MAX.0,
            i32::MAX - 1,
            i32::MAX,
        ];
        for n in every_day.chain(strided).chain(ends) {
            let (y, m, d) = Day(n).to_civil();
            let expected = reference_to_civil(i64::from(n));
            assert_eq!(
                (i64::from(y), i64::from(m), i64::from(d)),
                expected,
                "day {n}"
            );
            if y.abs() <= 5_000_000 {
                let back = Day::from_civil(y, m, d);
                assert_eq!(back, Day(n), "{y}-{m}-{d}");
                let reference = reference_from_civil(i64::from(y), i64::from(m), i64::from(d));
                assert_eq!(i64::from(back.0), reference, "{y}-{m}-{d}");
            }
        }
    }

    #[test]
    fn calendar_shifts_agree_with_jiff() {
        let periods = [
            "P1Y", "P2Y", "P5Y", "P6M", "P1M", "P1Y6M", "P180D", "P3M", "P1Y1M1D",
        ];
        for text in periods {
            let period: Period = text.parse().unwrap();
            for n in (15_000..25_000).step_by(13) {
                let day = Day(n);
                let span = jiff::Span::new()
                    .years(i64::from(period.years))
                    .months(i64::from(period.months))
                    .days(i64::from(period.days));
                let expected = Day::from_date(day.to_date().checked_add(span).unwrap());
                assert_eq!(period.after(day), expected, "{day} + {text}");
            }
        }
    }

    #[test]
    fn adding_to_a_civil_date_agrees_with_adding_to_a_day() {
        let periods = [
            "P1Y", "P2Y", "P5Y", "P0D", "P6M", "P180D", "P1Y1M1D", "P65535Y",
        ];
        let far = [Day::MIN, Day::MAX, Day(-80_000_000), Day(80_000_000)];
        // Around the first and last years of the table of 1 March (1900,
        // 2411), and years with and without 29 February between.
        let edges = [(1899, 1900), (2009, 2012), (2410, 2412)]
            .map(|(from, to)| Day::from_civil(from, 1, 1).0..Day::from_civil(to, 12, 31).0);
        for text in periods.into_iter().chain(["P400Y", "P511Y", "P512Y"]) {
            let period: Period = text.parse().unwrap();
            // Every day of 1999-2005 (two 29 Februaries), of the table's
            // edges, and a few far ones.
            let days = (10_000..13_000).chain(edges.iter().cloned().flatten());
            for day in days.map(Day).chain(far) {
                let civil = day.to_civil();
                assert_eq!(
                    period.after_civil(day, civil),
                    period.after(day),
                    "{day:?} + {text}"
                );
            }
        }
    }

    #[test]
    fn open_ends_survive_a_json_round_trip() {
        let text = serde_json::to_string(&Day::MAX).unwrap();
        assert_eq!(text, "\"9999-12-31\"");
        assert_eq!(serde_json::from_str::<Day>(&text).unwrap(), Day::MAX);
        let day = Day::parse("2026-03-01").unwrap();
        assert_eq!(
            serde_json::from_str::<Day>(&serde_json::to_string(&day).unwrap()).unwrap(),
            day
        );
    }

    #[test]
    fn periods_parse_and_add_by_the_calendar() {
        let p: Period = "P1Y6M".parse().unwrap();
        assert_eq!(
            p,
            Period {
                years: 1,
                months: 6,
                days: 0
            }
        );
        assert_eq!("P2W".parse::<Period>().unwrap(), Period::days(14));
        assert!("PT5H".parse::<Period>().is_err());
        assert!("5Y".parse::<Period>().is_err());
        assert!("P".parse::<Period>().is_err());
        // Each part once, in order, and a number before each.
        for text in ["P1D1D", "P1D1Y", "P6M1Y", "PY", "P1Y2", "P-1D", "P1.5Y"] {
            assert!(
                matches!(text.parse::<Period>(), Err(TimeError::BadPeriod(_))),
                "{text}"
            );
        }
        // A number too large for its part says so, with the limit, never
        // wraps round.
        assert_eq!(
            "P65536Y".parse::<Period>().unwrap_err().to_string(),
            "`P65536Y` is too long a period: at most 65535 years"
        );
        assert_eq!("P65535Y".parse::<Period>().unwrap(), Period::years(65535));
        assert!(matches!(
            "P99999M".parse::<Period>(),
            Err(TimeError::PeriodTooLarge { unit: "months", .. })
        ));
        assert_eq!(
            "P4294967295D".parse::<Period>().unwrap(),
            Period::days(u32::MAX)
        );
        assert_eq!(
            "P1W4294967295D".parse::<Period>().unwrap_err().to_string(),
            "`P1W4294967295D` is too long a period: at most 4294967288 days"
        );
        assert!(matches!(
            "P613566757W".parse::<Period>(),
            Err(TimeError::PeriodTooLarge { unit: "weeks", .. })
        ));
        let leap = Day::parse("2024-02-29").unwrap();
        assert_eq!(Period::years(1).after(leap).to_string(), "2025-02-28");
        assert_eq!(
            Period::days(180).before(Period::days(180).after(leap)),
            leap
        );
    }
}
