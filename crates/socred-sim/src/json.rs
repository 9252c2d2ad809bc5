//! A small JSON line writer for the generator's hot loop.
//!
//! The generator writes millions of lines a second, so it does not build a
//! `serde_json::Value` per line: it appends keys and values to one reused
//! `String`, escaping text as JSON requires. The tests parse every line back
//! with `serde_json` to keep this honest.

use socred_core::Day;

/// One NDJSON line under construction. Reuse it: `begin` clears the buffer
/// but keeps its capacity.
#[derive(Default)]
pub struct Line {
    buf: String,
    /// Whether the next key needs a comma before it.
    comma: bool,
}

impl Line {
    pub fn begin(&mut self) {
        self.buf.clear();
        self.buf.push('{');
        self.comma = false;
    }

    /// The finished line, without a trailing newline.
    pub fn finish(&mut self) -> &str {
        self.buf.push('}');
        &self.buf
    }

    fn key(&mut self, key: &str) {
        if self.comma {
            self.buf.push(',');
        }
        self.comma = true;
        self.buf.push('"');
        self.buf.push_str(key);
        self.buf.push_str("\":");
    }

    /// `"key":"value"`.
    pub fn text(&mut self, key: &str, value: &str) {
        self.key(key);
        self.buf.push('"');
        push_escaped(&mut self.buf, value);
        self.buf.push('"');
    }

    /// `"key":"value"` for values the generator made itself from ASCII
    /// tables (dates, identifiers, provider and type ids): no escaping is
    /// needed, and skipping the check matters in the hot loop.
    pub fn trusted(&mut self, key: &str, value: &str) {
        debug_assert!(!needs_escape(value), "`{value}` needs escaping");
        self.key(key);
        self.buf.push('"');
        self.buf.push_str(value);
        self.buf.push('"');
    }

    /// Starts a text value built from parts with [`Line::part`] and friends;
    /// [`Line::close_text`] ends it.
    pub fn open_text(&mut self, key: &str) {
        self.key(key);
        self.buf.push('"');
    }

    /// A piece of a text value. Pieces come from the generator's own ASCII
    /// tables, so they are not escaped (checked in debug builds).
    pub fn part(&mut self, value: &str) {
        debug_assert!(!needs_escape(value), "`{value}` needs escaping");
        self.buf.push_str(value);
    }

    pub fn part_uint(&mut self, value: u64) {
        push_uint(&mut self.buf, value);
    }

    /// A number zero-padded to at least `width` digits.
    pub fn part_padded(&mut self, value: u64, width: usize) {
        let mut digits = [0u8; 20];
        let len = uint_digits(value, &mut digits);
        for _ in len..width {
            self.buf.push('0');
        }
        push_digits(&mut self.buf, &digits, len);
    }

    pub fn close_text(&mut self) {
        self.buf.push('"');
    }

    pub fn uint(&mut self, key: &str, value: u64) {
        self.key(key);
        push_uint(&mut self.buf, value);
    }

    /// An amount in fen (hundredths of a yuan) as a JSON number of yuan:
    /// `12345` is written `123.45`, `1200` is written `12`.
    pub fn yuan_from_fen(&mut self, key: &str, fen: u64) {
        self.key(key);
        push_uint(&mut self.buf, fen / 100);
        let cents = fen % 100;
        if cents != 0 {
            self.buf.push('.');
            self.buf.push(char::from(b'0' + (cents / 10) as u8));
            let last_digit = cents % 10;
            if last_digit != 0 {
                self.buf.push(char::from(b'0' + last_digit as u8));
            }
        }
    }

    /// A number with one decimal, given in tenths: `45` is written `4.5`.
    pub fn tenths(&mut self, key: &str, tenths: u64) {
        self.key(key);
        push_uint(&mut self.buf, tenths / 10);
        let decimal = tenths % 10;
        if decimal != 0 {
            self.buf.push('.');
            self.buf.push(char::from(b'0' + decimal as u8));
        }
    }

    pub fn boolean(&mut self, key: &str, value: bool) {
        self.key(key);
        self.buf.push_str(if value { "true" } else { "false" });
    }

    /// Starts a nested object under `key`; [`Line::close_object`] ends it.
    pub fn open_object(&mut self, key: &str) {
        self.key(key);
        self.buf.push('{');
        self.comma = false;
    }

    pub fn close_object(&mut self) {
        self.buf.push('}');
        self.comma = true;
    }
}

/// Bytes that JSON text must escape: control characters, quote, backslash.
const ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

fn needs_escape(text: &str) -> bool {
    text.bytes().any(|b| ESCAPED[usize::from(b)])
}

fn push_escaped(buf: &mut String, text: &str) {
    if !needs_escape(text) {
        buf.push_str(text);
        return;
    }
    for ch in text.chars() {
        match ch {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let code = c as usize;
                buf.push_str("\\u00");
                buf.push(char::from(HEX[code >> 4]));
                buf.push(char::from(HEX[code & 0xf]));
            }
            c => buf.push(c),
        }
    }
}

/// Writes the decimal digits of `value` at the end of `digits`; returns how
/// many there are.
fn uint_digits(mut value: u64, digits: &mut [u8; 20]) -> usize {
    let mut len = 0;
    loop {
        digits[19 - len] = b'0' + (value % 10) as u8;
        len += 1;
        value /= 10;
        if value == 0 {
            return len;
        }
    }
}

fn push_digits(buf: &mut String, digits: &[u8; 20], len: usize) {
    for &digit in &digits[20 - len..] {
        buf.push(char::from(digit));
    }
}

fn push_uint(buf: &mut String, value: u64) {
    let mut digits = [0u8; 20];
    let len = uint_digits(value, &mut digits);
    push_digits(buf, &digits, len);
}

/// `YYYY-MM-DD` texts and calendar parts of every day in a range, computed
/// once: formatting a date through the calendar per line would dominate the
/// generator's cost.
pub struct Dates {
    first: i32,
    /// Every day's `YYYY-MM-DD`, back to back: slicing a `str` is cheaper
    /// than validating bytes per line.
    texts: String,
    parts: Vec<(i16, i8, i8)>,
}

const DATE_LEN: usize = 10;

impl Dates {
    pub fn new(first: Day, last: Day) -> Dates {
        let mut texts = String::new();
        let mut parts = Vec::new();
        for n in first.0..=last.0.max(first.0) {
            let date = Day(n).to_date();
            let text = date.to_string();
            // Years before 0 or after 9999 do not fit; socred never uses them.
            let text = if text.len() == DATE_LEN {
                text.as_str()
            } else {
                "0000-01-01"
            };
            texts.push_str(text);
            parts.push((date.year(), date.month(), date.day()));
        }
        Dates {
            first: first.0,
            texts,
            parts,
        }
    }

    fn index(&self, day: Day) -> usize {
        let offset = i64::from(day.0) - i64::from(self.first);
        let last = self.parts.len().saturating_sub(1) as i64;
        offset.max(0).min(last) as usize
    }

    /// The day as `YYYY-MM-DD` (days outside the range are clamped to it).
    pub fn text(&self, day: Day) -> &str {
        let start = self.index(day) * DATE_LEN;
        self.texts
            .get(start..start + DATE_LEN)
            .unwrap_or("1970-01-01")
    }

    /// (year, month, day) of the day (clamped like [`Dates::text`]).
    pub fn parts(&self, day: Day) -> (i16, i8, i8) {
        self.parts
            .get(self.index(day))
            .copied()
            .unwrap_or((1970, 1, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_valid_json_with_escaping_and_numbers() {
        let mut line = Line::default();
        line.begin();
        line.text("a", "quote \" backslash \\ tab \t bell \u{7} 中文");
        line.uint("n", 0);
        line.yuan_from_fen("y1", 12345);
        line.yuan_from_fen("y2", 1200);
        line.yuan_from_fen("y3", 1250);
        line.tenths("h", 45);
        line.open_object("f");
        line.boolean("b", true);
        line.open_text("t");
        line.part("x-");
        line.part_padded(42, 5);
        line.part_uint(7);
        line.close_text();
        line.close_object();
        let text = line.finish().to_string();
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["a"], "quote \" backslash \\ tab \t bell \u{7} 中文");
        assert_eq!(value["y1"], 123.45);
        assert_eq!(value["y2"], 12);
        assert_eq!(value["y3"], 12.5);
        assert_eq!(value["h"], 4.5);
        assert_eq!(value["f"]["t"], "x-000427");
        assert_eq!(value["f"]["b"], true);
    }

    #[test]
    fn dates_match_the_calendar_and_clamp() {
        let first = Day::parse("2024-02-27").expect("date");
        let dates = Dates::new(first, first.add_days(5));
        assert_eq!(dates.text(first.add_days(2)), "2024-02-29");
        assert_eq!(dates.parts(first.add_days(3)), (2024, 3, 1));
        assert_eq!(dates.text(first.add_days(-10)), "2024-02-27");
        assert_eq!(dates.text(first.add_days(99)), "2024-03-03");
    }
}
