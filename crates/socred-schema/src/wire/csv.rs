//! The CSV form of records: one record a row, under a header naming the
//! columns. CSV carries records only; later facts travel as NDJSON.
//!
//! Each row is turned into the same [`RawLine`] a JSON line gives, with its
//! field cells left as text for the catalog to type, so both forms share
//! every check and every rejection code.

use std::borrow::Cow;
use std::io::{self, Read};

use socred_core::Rulebook;

use super::lower::Lowerer;
use super::raw::{FieldInput, FieldsValue, Key, RawLine, Scalar};
use super::{Counts, Item, LineResult, Parsed, Rejection, Warning};

/// What a header column holds.
#[derive(Clone, Debug, PartialEq)]
enum Column {
    Key(Key),
    Field(String),
}

const KEY_COLUMNS: [Key; 7] = [
    Key::Provider,
    Key::Id,
    Key::Subject,
    Key::Type,
    Key::OccurredAt,
    Key::DecidedAt,
    Key::Document,
];

/// Parses a whole CSV text of records.
pub fn parse_csv(rulebook: &Rulebook, text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let Parsed {
        items,
        rejections,
        warnings,
    } = &mut parsed;
    // Reading from a byte slice cannot fail with an I/O error.
    let _ = read_csv(
        rulebook,
        text.as_bytes(),
        |item| items.push(item),
        |rejection| rejections.push(rejection),
        |warning| warnings.push(warning),
    );
    parsed
}

/// Reads CSV records from `reader`, calling `on_item` for each good row and
/// `on_rejection` for each bad one. A bad header rejects line 1 and reads
/// nothing else. Only I/O errors stop the reading.
pub fn read_csv(
    rulebook: &Rulebook,
    reader: impl Read,
    mut on_item: impl FnMut(Item),
    mut on_rejection: impl FnMut(Rejection),
    mut on_warning: impl FnMut(Warning),
) -> io::Result<Counts> {
    read_csv_rows(rulebook, reader, |_, row| match row {
        Ok((item, warning)) => {
            on_item(item);
            if let Some(warning) = warning {
                on_warning(warning);
            }
        }
        Err(rejection) => on_rejection(rejection),
    })
}

/// Reads CSV records from `reader`, calling `on_row` with the line number
/// (the header is line 1) and the outcome of every row, in order: for
/// callers that answer row by row, such as the HTTP ingest endpoint. A bad
/// header is a rejection of line 1 and nothing else is read. Only I/O
/// errors stop the reading.
pub fn read_csv_rows(
    rulebook: &Rulebook,
    reader: impl Read,
    mut on_row: impl FnMut(usize, LineResult),
) -> io::Result<Counts> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(LineCounter::new(CrlfToLf::new(reader)));
    // The physical line a row starts on: the reader's own count passes
    // over blank lines irregularly.
    let line_of = |csv: &mut csv::Reader<_>, row: &csv::ByteRecord| {
        let fallback = row.position().map_or(1, csv::Position::line);
        usize::try_from(LineCounter::next_row(csv.get_mut(), fallback)).unwrap_or(usize::MAX)
    };
    let mut counts = Counts::default();
    let mut row = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut row).map_err(into_io)? {
        return Ok(counts);
    }
    let line = line_of(&mut csv, &row);
    let columns = match header(rulebook, &row) {
        Ok(columns) => columns,
        Err((code, message)) => {
            counts.rejections += 1;
            let rejection = Rejection {
                line,
                field: None,
                code,
                message,
            };
            on_row(line, Err(rejection));
            return Ok(counts);
        }
    };
    let mut lowerer = Lowerer::new(rulebook);
    let mut messages = Vec::new();
    while csv.read_byte_record(&mut row).map_err(into_io)? {
        counts.lines += 1;
        let line = line_of(&mut csv, &row);
        messages.clear();
        let lowered = row_to_raw(&columns, &row).and_then(|raw| {
            lowerer
                .lower_record(raw, &mut messages)
                .map_err(|problem| (problem.code, problem.field, problem.message))
        });
        match lowered {
            Ok(record) => {
                counts.items += 1;
                let warning = (!messages.is_empty()).then(|| {
                    counts.warnings += 1;
                    Warning {
                        line,
                        message: messages.join("; "),
                    }
                });
                on_row(line, Ok((Item::Record(record), warning)));
            }
            Err((code, field, message)) => {
                counts.rejections += 1;
                let rejection = Rejection {
                    line,
                    field,
                    code,
                    message,
                };
                on_row(line, Err(rejection));
            }
        }
    }
    Ok(counts)
}

/// Passes bytes through and notes the physical line each row starts on,
/// in order: the CSV reader's own count of lines passes over blank ones
/// irregularly. A row starts where a line that is not blank starts outside
/// a quoted cell; a line feed inside a quoted cell belongs to its row. So
/// quotes are followed as the reader reads them (RFC 4180: a cell is
/// quoted when it starts with `"`, and `""` inside stands for one quote).
///
/// Each start is dropped once its row is read: the starts held are those
/// of the rows the reader has read ahead, however many blank lines or line
/// feeds in quoted cells a text holds.
struct LineCounter<R> {
    inner: R,
    /// Line feeds passed so far.
    feeds: u64,
    /// The lines rows start on, not yet taken by [`LineCounter::next_row`].
    starts: std::collections::VecDeque<u64>,
    /// Where the bytes stand: at the start of a line, of a cell, inside a
    /// quoted cell, or just after a quote inside one.
    at_line_start: bool,
    at_cell_start: bool,
    in_quotes: bool,
    quote_pending: bool,
}

impl<R> LineCounter<R> {
    fn new(inner: R) -> Self {
        LineCounter {
            inner,
            feeds: 0,
            starts: std::collections::VecDeque::new(),
            at_line_start: true,
            at_cell_start: true,
            in_quotes: false,
            quote_pending: false,
        }
    }

    /// The line (from 1) of the next row the reader gives; called once for
    /// each row it reads, the header too. `fallback` (the reader's own
    /// count) should the two ever disagree on what a row is.
    fn next_row(&mut self, fallback: u64) -> u64 {
        self.starts.pop_front().unwrap_or(fallback)
    }

    fn step(&mut self, byte: u8) {
        if byte == b'\n' {
            self.feeds += 1;
        }
        if self.in_quotes {
            if !self.quote_pending {
                self.quote_pending = byte == b'"';
                return;
            }
            self.quote_pending = false;
            if byte == b'"' {
                return;
            }
            self.in_quotes = false;
        } else if self.at_line_start && byte != b'\n' {
            self.starts.push_back(self.feeds + 1);
        }
        match byte {
            b'\n' => {
                self.at_line_start = true;
                self.at_cell_start = true;
            }
            b',' => {
                self.at_line_start = false;
                self.at_cell_start = true;
            }
            b'"' if self.at_cell_start => {
                self.at_line_start = false;
                self.at_cell_start = false;
                self.in_quotes = true;
            }
            _ => {
                self.at_line_start = false;
                self.at_cell_start = false;
            }
        }
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        for &byte in buf.get(..read).unwrap_or_default() {
            self.step(byte);
        }
        Ok(read)
    }
}

/// Turns every CRLF into LF before the CSV reader sees it. The reader
/// treats CRLF as one terminator, but it stops after the CR and counts the
/// LF as the start of the next row, so every row of a file exported on
/// Windows would be reported one line early. A lone CR is passed through.
struct CrlfToLf<R> {
    inner: R,
    /// A CR ended the last chunk read: whether it is dropped depends on the
    /// next byte.
    pending_cr: bool,
    /// A normalised byte that did not fit a one-byte read.
    spill: Option<u8>,
}

impl<R> CrlfToLf<R> {
    fn new(inner: R) -> Self {
        CrlfToLf {
            inner,
            pending_cr: false,
            spill: None,
        }
    }
}

impl<R: Read> Read for CrlfToLf<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.len() >= 2 && self.spill.is_none() {
            return self.read_normalised(buf);
        }
        let Some(first) = buf.first_mut() else {
            return Ok(0);
        };
        if let Some(byte) = self.spill.take() {
            *first = byte;
            return Ok(1);
        }
        // The normalising read needs room for a held-back CR and a byte.
        let mut two = [0; 2];
        let read = self.read_normalised(&mut two)?;
        if read == 2 {
            self.spill = Some(two[1]);
        }
        if read > 0 {
            *first = two[0];
        }
        Ok(read.min(1))
    }
}

impl<R: Read> CrlfToLf<R> {
    /// One read into `buf` (at least 2 bytes long), CRLF turned into LF.
    fn read_normalised(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let offset = usize::from(self.pending_cr);
            let read = self.inner.read(&mut buf[offset..])?;
            if read == 0 {
                // End of input: a held-back CR was a lone one.
                if self.pending_cr {
                    buf[0] = b'\r';
                    self.pending_cr = false;
                    return Ok(1);
                }
                return Ok(0);
            }
            if self.pending_cr {
                buf[0] = b'\r';
                self.pending_cr = false;
            }
            let end = offset + read;
            let mut out = 0;
            let mut at = 0;
            while at < end {
                let byte = buf[at];
                if byte == b'\r' {
                    match buf.get(at + 1).filter(|_| at + 1 < end) {
                        Some(b'\n') => {
                            at += 1;
                            continue;
                        }
                        None => {
                            self.pending_cr = true;
                            at += 1;
                            continue;
                        }
                        Some(_) => {}
                    }
                }
                buf[out] = byte;
                out += 1;
                at += 1;
            }
            if out > 0 {
                return Ok(out);
            }
            // Only a held-back CR came out of this chunk: read on.
        }
    }
}

fn into_io(error: csv::Error) -> io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// Reads the header: every key column known, the required ones present,
/// every field column a field of some record type, no column twice.
fn header(
    rulebook: &Rulebook,
    row: &csv::ByteRecord,
) -> Result<Vec<Column>, (&'static str, String)> {
    let mut columns = Vec::with_capacity(row.len());
    for cell in row {
        let name = std::str::from_utf8(cell).map_err(|_| {
            (
                "malformed_csv",
                "a header column is not valid UTF-8".to_string(),
            )
        })?;
        let column = if let Some(field) = name.strip_prefix("fields.") {
            let declared = rulebook
                .catalog
                .iter()
                .any(|rt| rt.fields.iter().any(|def| &*def.name == field));
            if !declared {
                return Err((
                    "unknown_column",
                    format!("column `{name}` names no field of any record type in the catalog"),
                ));
            }
            Column::Field(field.to_string())
        } else {
            match KEY_COLUMNS.into_iter().find(|key| key.name() == name) {
                Some(key) => Column::Key(key),
                None => {
                    return Err((
                        "unknown_column",
                        format!(
                            "column {} is not part of the CSV record format (provider, id, subject, type, \
                             occurred_at, decided_at, document, fields.<name>)",
                            super::raw::quote_short(name)
                        ),
                    ))
                }
            }
        };
        if columns.contains(&column) {
            return Err((
                "duplicate_column",
                format!("column `{name}` is given twice"),
            ));
        }
        columns.push(column);
    }
    for key in KEY_COLUMNS {
        if key != Key::Document && !columns.contains(&Column::Key(key)) {
            return Err((
                "missing_column",
                format!("column `{}` is missing from the header", key.name()),
            ));
        }
    }
    Ok(columns)
}

type RowProblem = (&'static str, Option<String>, String);

/// Turns a row into the slots of a JSON line: an empty cell is an absent key.
fn row_to_raw<'a>(
    columns: &'a [Column],
    row: &'a csv::ByteRecord,
) -> Result<RawLine<'a>, RowProblem> {
    if row.len() != columns.len() {
        return Err((
            "malformed_csv",
            None,
            format!(
                "row has {} cell{}, the header has {} columns",
                row.len(),
                if row.len() == 1 { "" } else { "s" },
                columns.len()
            ),
        ));
    }
    let mut raw = RawLine::default();
    let mut fields = Vec::new();
    for (column, cell) in columns.iter().zip(row) {
        let text = std::str::from_utf8(cell).map_err(|_| {
            let name = match column {
                Column::Key(key) => key.name().to_string(),
                Column::Field(field) => format!("fields.{field}"),
            };
            let message = format!("cell of column `{name}` is not valid UTF-8");
            ("malformed_csv", Some(name), message)
        })?;
        match column {
            Column::Key(key) if !text.is_empty() => raw.set(*key, Scalar::Str(Cow::Borrowed(text))),
            Column::Key(_) => {}
            Column::Field(field) if !text.is_empty() => {
                fields.push((Cow::Borrowed(field.as_str()), FieldInput::Cell(text)));
            }
            Column::Field(_) => {}
        }
    }
    raw.fields = Some(FieldsValue::Object(fields));
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes a call, to cross every
    /// chunk boundary.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn normalised(input: &[u8], step: usize, buf_len: usize) -> Vec<u8> {
        let mut reader = CrlfToLf::new(Trickle { bytes: input, step });
        let mut out = Vec::new();
        let mut buf = vec![0; buf_len];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn crlf_becomes_lf_across_chunk_boundaries_and_lone_crs_stay() {
        let input = b"a,b\r\nc,\"d\r\ne\"\r\n\rf\r\r\ng\r";
        let expected = b"a,b\nc,\"d\ne\"\n\rf\r\ng\r".to_vec();
        for step in 1..=input.len() {
            for buf_len in [1, 2, 3, 64] {
                assert_eq!(
                    normalised(input, step, buf_len),
                    expected,
                    "step {step}, buffer {buf_len}"
                );
            }
        }
    }
}

#[cfg(test)]
mod line_tests {
    use std::io::Read;

    use super::LineCounter;

    /// Reads all of `text` through a counter; what it holds after.
    fn counted(text: &[u8]) -> LineCounter<&[u8]> {
        let mut counter = LineCounter::new(text);
        let mut sink = Vec::new();
        counter.read_to_end(&mut sink).unwrap();
        counter
    }

    #[test]
    fn rows_start_where_lines_start_outside_quotes() {
        let mut counter = counted(b"\nh,i\n\n\"a\n\n\"\"b\",c\n\"\"\n\n\nd\n");
        // The header on 2, a row on 4 whose quoted cell runs to 6, the
        // row `""` (one empty quoted cell) on 7, `d` on 10.
        let lines: Vec<u64> = (0..4).map(|_| counter.next_row(0)).collect();
        assert_eq!(lines, [2, 4, 7, 10]);
        assert_eq!(counter.next_row(99), 99, "no more rows: the fallback");
    }

    #[test]
    fn blank_lines_and_quoted_line_feeds_hold_nothing() {
        let mut text = b"h\n".to_vec();
        text.extend(std::iter::repeat_n(b'\n', 100_000));
        text.extend_from_slice(b"\"");
        text.extend(std::iter::repeat_n(b"a\n".as_slice(), 100_000).flatten());
        text.extend_from_slice(b"\"\n");
        let mut counter = counted(&text);
        assert_eq!(counter.starts.len(), 2, "one start a row, nothing else");
        assert_eq!(counter.next_row(0), 1);
        assert_eq!(counter.next_row(0), 100_002);
    }
}
