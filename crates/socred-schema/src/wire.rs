//! The record wire format: records and later facts as JSON objects, one a
//! line in NDJSON files and the same over HTTP, and records as CSV rows.
//! Parsing validates each item against the rulebook's catalog and lowers it
//! into the core's [`Record`] and [`Fact`]; a bad line becomes a
//! [`Rejection`] with its line number, the key or field at fault and a
//! stable code, and never stops the good lines around it.
//!
//! `docs/records.md` is the reference for the format and the codes.
//!
//! Speed: a line is read in two passes over borrowed text. The first
//! (`raw`) only splits the JSON into slots per known key without copying
//! strings; the second (`lower`) judges and builds the record, sharing
//! strings that repeat across millions of lines (record type ids come from
//! the catalog, provider names from a per-reader interner).

mod csv;
mod lower;
mod raw;
mod write;

use std::fmt;
use std::io::{self, BufRead};

use serde::Serialize;
use socred_core::{Fact, Record, Rulebook, SubjectId};

pub use self::csv::{parse_csv, read_csv, read_csv_rows};
pub use self::write::to_line;
use lower::{Lowerer, Problem};
use raw::{Body, Element};

/// Longest line read, in bytes: a record is a few hundred bytes, and a
/// limit keeps one broken file (no newlines at all) from filling memory.
pub const LINE_BYTES_MAX: usize = 1 << 20;
/// Longest provider name, record id, type id, `by` or date text, in bytes.
pub const KEY_BYTES_MAX: usize = 128;
/// Longest `document`, `statement` or text field, in bytes.
pub const TEXT_BYTES_MAX: usize = 4096;

/// Which control characters a text may hold (see [`control_character`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controls {
    /// None: names and identifiers.
    None,
    /// Line breaks and tabs: prose (a document reference, a statement, a
    /// text field).
    Breaks,
}

/// The first control character in `text` that `allowed` does not let
/// through. Such characters are refused wherever a text comes in: they
/// are never meant (a NUL in a record id is a provider's bug), they
/// would print invisibly in a file or a log, and PostgreSQL's text
/// cannot hold a NUL at all.
pub fn control_character(text: &str, allowed: Controls) -> Option<char> {
    // Nearly every text is printable ASCII: one pass over the bytes.
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    text.chars().find(|&c| {
        c.is_control() && !(allowed == Controls::Breaks && matches!(c, '\n' | '\r' | '\t'))
    })
}

/// One parsed line: a record, or a later fact about a record or a subject.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Record(Record),
    Fact {
        fact: Fact,
        /// The catalog type that the fact's new fields were checked against
        /// (the line's `type` key), for a correction and a dispute resolved
        /// as corrected; None for other facts. A store should refuse the
        /// fact when it differs from the type of the record it names.
        record_type: Option<socred_core::Name>,
    },
}

impl Item {
    pub fn subject(&self) -> SubjectId {
        match self {
            Item::Record(record) => record.subject,
            Item::Fact { fact, .. } => fact.subject,
        }
    }
}

/// Why a line was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// 1-based line of an NDJSON text or CSV file (the header is line 1);
    /// in a JSON array the element's 0-based index plus one, and 0 when the
    /// body as a whole is not an array.
    pub line: usize,
    /// The key or field at fault, e.g. `subject` or `fields.amount_yuan`.
    pub field: Option<String>,
    /// Stable machine code, listed in `docs/records.md`.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use socred_core::printable::printable;
        write!(f, "line {}: ", self.line)?;
        if let Some(field) = &self.field {
            write!(f, "{}: ", printable(field))?;
        }
        write!(f, "{} [{}]", printable(&self.message), self.code)
    }
}

/// Something accepted but worth a look, e.g. an early pilot organisation
/// code whose check character does not match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Everything parsed from one text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    pub items: Vec<Item>,
    pub rejections: Vec<Rejection>,
    pub warnings: Vec<Warning>,
}

/// What a streaming read saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Lines (or CSV rows) tried; blank lines are not counted.
    pub lines: u64,
    pub items: u64,
    pub rejections: u64,
    /// Lines accepted with a warning.
    pub warnings: u64,
}

/// One line's outcome: the item (with a warning worth a look), or why it
/// was refused.
pub type LineResult = Result<(Item, Option<Warning>), Rejection>;

/// Parses lines against one rulebook, sharing provider names across them.
/// Use one per input stream.
#[derive(Debug)]
pub struct LineParser<'r> {
    lowerer: Lowerer<'r>,
    messages: Vec<String>,
}

impl<'r> LineParser<'r> {
    pub fn new(rulebook: &'r Rulebook) -> Self {
        LineParser {
            lowerer: Lowerer::new(rulebook),
            messages: Vec::new(),
        }
    }

    /// Parses one JSON value (one NDJSON line) into an item.
    pub fn parse(&mut self, line: usize, text: &str) -> LineResult {
        match serde_json::from_str::<Element<'_>>(text) {
            Ok(element) => self.element(line, element),
            Err(error) => Err(Rejection {
                line,
                field: None,
                code: "malformed_json",
                message: json_error_message(&error),
            }),
        }
    }

    fn element(&mut self, line: usize, element: Element<'_>) -> LineResult {
        let raw = match element {
            Element::Line(raw) => raw,
            Element::NotObject(kind) => {
                return Err(Rejection {
                    line,
                    field: None,
                    code: "not_an_object",
                    message: format!("expected a JSON object, found {kind}"),
                })
            }
        };
        self.messages.clear();
        match self.lowerer.lower(raw, &mut self.messages) {
            Ok(item) => {
                let warning = (!self.messages.is_empty()).then(|| Warning {
                    line,
                    message: self.messages.join("; "),
                });
                Ok((item, warning))
            }
            Err(Problem {
                field,
                code,
                message,
            }) => Err(Rejection {
                line,
                field,
                code,
                message,
            }),
        }
    }

    /// [`LineParser::ndjson_line`] on the line's bytes: a line that is not
    /// UTF-8 is rejected alone.
    pub fn ndjson_bytes(&mut self, line: usize, bytes: &[u8]) -> Option<LineResult> {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.ndjson_line(line, text),
            Err(error) => Some(Err(not_utf8(line, &error))),
        }
    }

    /// One physical NDJSON line, without its newline (a leading byte-order
    /// mark on line 1 and a trailing `\r` are dropped): None when blank.
    pub fn ndjson_line(&mut self, line: usize, text: &str) -> Option<LineResult> {
        let text = if line == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim_ascii().is_empty() {
            return None;
        }
        if text.len() > LINE_BYTES_MAX {
            return Some(Err(too_long(line)));
        }
        Some(self.parse(line, text))
    }
}

fn too_long(line: usize) -> Rejection {
    Rejection {
        line,
        field: None,
        code: "line_too_long",
        message: format!("line is longer than {LINE_BYTES_MAX} bytes"),
    }
}

/// serde_json's message without its "at line 1 column 9" tail, which is
/// wrong for a line of a file; the column is kept.
fn json_error_message(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let reason = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(reason, _)| reason);
    if error.line() > 1 {
        format!(
            "not valid JSON: {reason} (line {} column {} of the value)",
            error.line(),
            error.column()
        )
    } else {
        format!("not valid JSON: {reason} (column {})", error.column())
    }
}

/// Parses one NDJSON line (or one JSON value) into an item, validating it
/// against the catalog.
pub fn parse_line(rulebook: &Rulebook, line: usize, text: &str) -> LineResult {
    LineParser::new(rulebook).parse(line, text)
}

/// Parses a whole NDJSON text: every line is tried; blank lines are skipped.
pub fn parse_ndjson(rulebook: &Rulebook, text: &str) -> Parsed {
    let mut parser = LineParser::new(rulebook);
    let mut parsed = Parsed::default();
    for (index, text) in text.split('\n').enumerate() {
        if let Some(result) = parser.ndjson_line(index + 1, text) {
            collect(&mut parsed, result);
        }
    }
    parsed
}

fn collect(parsed: &mut Parsed, result: LineResult) {
    match result {
        Ok((item, warning)) => {
            parsed.items.push(item);
            parsed.warnings.extend(warning);
        }
        Err(rejection) => parsed.rejections.push(rejection),
    }
}

/// Parses a JSON body holding an array of items (or a single one, taken as
/// element 1). Elements are judged one by one; JSON that does not parse at
/// all rejects the whole body as line 0.
pub fn parse_json_array(rulebook: &Rulebook, text: &str) -> Parsed {
    let mut parser = LineParser::new(rulebook);
    let mut parsed = Parsed::default();
    // A byte-order mark, as an NDJSON file may start with one.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match serde_json::from_str::<Body<'_>>(text) {
        Ok(Body::Many(elements)) => {
            for (index, element) in elements.into_iter().enumerate() {
                let result = parser.element(index + 1, element);
                collect(&mut parsed, result);
            }
        }
        Ok(Body::One(element)) => {
            let result = parser.element(1, *element);
            collect(&mut parsed, result);
        }
        Err(error) => parsed.rejections.push(Rejection {
            line: 0,
            field: None,
            code: "malformed_json",
            message: json_error_message(&error),
        }),
    }
    parsed
}

/// Bytes of lines read before they are handed to a thread to parse: small
/// enough that a block is still in the cache when a thread parses it (1 MiB
/// blocks parsed a fifth slower on one thread).
const BLOCK_BYTES: usize = 64 << 10;

/// Lines read and not parsed yet: their text, one after another, and where
/// each lies in it.
#[derive(Default)]
struct Block {
    text: Vec<u8>,
    lines: Vec<BlockLine>,
}

enum BlockLine {
    /// Line `number` is `text[start..end]`, without its newline.
    Text {
        number: usize,
        start: usize,
        end: usize,
    },
    /// Line `number` is longer than [`LINE_BYTES_MAX`]; it was skipped.
    TooLong { number: usize },
}

impl Block {
    /// Each line's outcome, in order (None for a blank line).
    fn parse(&self, parser: &mut LineParser<'_>) -> Vec<Option<LineResult>> {
        self.lines
            .iter()
            .map(|line| match *line {
                BlockLine::TooLong { number } => Some(Err(too_long(number))),
                BlockLine::Text { number, start, end } => {
                    parser.ndjson_bytes(number, self.text.get(start..end).unwrap_or_default())
                }
            })
            .collect()
    }
}

fn not_utf8(line: usize, error: &std::str::Utf8Error) -> Rejection {
    Rejection {
        line,
        field: None,
        code: "malformed_json",
        message: format!("line is not valid UTF-8 (byte {})", error.valid_up_to() + 1),
    }
}

/// Streams NDJSON from `reader`: good items go to `on_item`, bad lines to
/// `on_rejection`, in line order. Only I/O errors stop the reading.
///
/// The lines are parsed on the threads of the current rayon pool (all
/// cores unless the caller installs a smaller one): this thread reads
/// blocks of lines, the pool parses a few blocks at a time, one parser a
/// thread, and the callbacks run here. Memory stays bounded by a few
/// blocks a thread and the longest line ([`LINE_BYTES_MAX`]), whatever the
/// file's size.
pub fn read_ndjson(
    rulebook: &Rulebook,
    reader: impl BufRead,
    on_item: impl FnMut(Item),
    on_rejection: impl FnMut(Rejection),
    on_warning: impl FnMut(Warning),
) -> io::Result<Counts> {
    // On one thread each line is parsed as soon as it is read, as it is
    // still in the cache.
    let block_bytes = if rayon::current_num_threads() == 1 {
        0
    } else {
        BLOCK_BYTES
    };
    read_ndjson_in_blocks(
        rulebook,
        reader,
        block_bytes,
        on_item,
        on_rejection,
        on_warning,
    )
}

/// [`read_ndjson`] with blocks of `block_bytes` (tests use small ones).
fn read_ndjson_in_blocks(
    rulebook: &Rulebook,
    mut reader: impl BufRead,
    block_bytes: usize,
    mut on_item: impl FnMut(Item),
    mut on_rejection: impl FnMut(Rejection),
    mut on_warning: impl FnMut(Warning),
) -> io::Result<Counts> {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads();
    let wave = threads.saturating_mul(2).max(1);
    // One parser for the whole text on one thread (it shares provider
    // names between lines); one per task on several.
    let mut parser = LineParser::new(rulebook);
    let mut counts = Counts::default();
    let mut blocks: Vec<Block> = Vec::with_capacity(wave);
    // Blocks parsed already, emptied for the next lines: their buffers are
    // kept, so that reading does not grow a fresh one every block.
    let mut spare: Vec<Block> = Vec::with_capacity(wave);
    let mut block = Block::default();
    let mut line = 0;
    loop {
        let start = block.text.len();
        // Room for the longest line, its CR (a CRLF file) and one byte
        // more: a line that has not ended by then is too long, and the
        // rest of it is skipped unread. One that ends is measured without
        // its line end (`LineParser::ndjson_line`).
        let limit = LINE_BYTES_MAX as u64 + 2;
        let read = io::Read::take(&mut reader, limit).read_until(b'\n', &mut block.text)?;
        if read > 0 {
            line += 1;
            if block.text.last() != Some(&b'\n') && read > LINE_BYTES_MAX + 1 {
                reader.skip_until(b'\n')?;
                block.text.truncate(start);
                block.lines.push(BlockLine::TooLong { number: line });
            } else {
                let end = block.text.len() - usize::from(block.text.last() == Some(&b'\n'));
                block.lines.push(BlockLine::Text {
                    number: line,
                    start,
                    end,
                });
            }
            if block.text.len() >= block_bytes {
                blocks.push(std::mem::replace(
                    &mut block,
                    spare.pop().unwrap_or_default(),
                ));
            }
        } else if !block.lines.is_empty() {
            blocks.push(std::mem::take(&mut block));
        }
        if blocks.len() == wave || (read == 0 && !blocks.is_empty()) {
            let parsed: Vec<Vec<Option<LineResult>>> = if threads == 1 {
                blocks
                    .iter()
                    .map(|block| block.parse(&mut parser))
                    .collect()
            } else {
                blocks
                    .par_iter()
                    .map_init(
                        || LineParser::new(rulebook),
                        |parser, block| block.parse(parser),
                    )
                    .collect()
            };
            for mut parsed_block in blocks.drain(..) {
                parsed_block.text.clear();
                parsed_block.lines.clear();
                spare.push(parsed_block);
            }
            for result in parsed.into_iter().flatten().flatten() {
                counts.lines += 1;
                match result {
                    Ok((item, warning)) => {
                        counts.items += 1;
                        on_item(item);
                        if let Some(warning) = warning {
                            counts.warnings += 1;
                            on_warning(warning);
                        }
                    }
                    Err(rejection) => {
                        counts.rejections += 1;
                        on_rejection(rejection);
                    }
                }
            }
        }
        if read == 0 {
            return Ok(counts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Read = (Vec<Item>, Vec<Rejection>, Vec<Warning>, Counts);

    fn read(text: &[u8], block_bytes: usize, threads: usize) -> Read {
        let rulebook = crate::default_rulebook();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        let (mut items, mut rejections, mut warnings) = (Vec::new(), Vec::new(), Vec::new());
        let counts = pool
            .install(|| {
                read_ndjson_in_blocks(
                    &rulebook,
                    text,
                    block_bytes,
                    |item| items.push(item),
                    |rejection| rejections.push(rejection),
                    |warning| warnings.push(warning),
                )
            })
            .expect("reading from memory");
        (items, rejections, warnings, counts)
    }

    /// Whatever the block size and the number of threads, every line is
    /// answered as when the whole text is one block read on one thread, in
    /// line order: items, rejections (bad JSON, bad UTF-8, a line too
    /// long), warnings, blank lines, CRLF and a byte-order mark.
    #[test]
    fn blocks_on_several_threads_answer_in_line_order() {
        let record = |n: usize, subject: &str| {
            format!(
                r#"{{"provider": "court.beijing-{}", "id": "r-{n}", "subject": "{subject}", "type": "judicial.judgment_default", "occurred_at": "2026-03-01", "decided_at": "2026-03-15", "fields": {{"case_no": "c-{n}"}}}}"#,
                n % 3
            )
        };
        let mut text = "\u{feff}".as_bytes().to_vec();
        for n in 0..60 {
            let line = match n % 10 {
                1 => record(n, "91350100M0001TGQXM"),
                3 => "{\"provider\": ".to_string(),
                4 => String::new(),
                6 => format!("{}\r", record(n, "310101198507141234")),
                7 => format!(r#"{{"provider": "{}"}}"#, "p".repeat(LINE_BYTES_MAX)),
                _ => record(n, "11010519491231002X"),
            };
            text.extend_from_slice(line.as_bytes());
            if n % 10 == 8 {
                text.extend_from_slice(b" \xff");
            }
            text.push(b'\n');
        }
        text.extend_from_slice(record(99, "11010519491231002X").as_bytes());
        let whole = read(&text, usize::MAX, 1);
        let (items, rejections, warnings, counts) = &whole;
        assert_eq!(items.len(), 37);
        assert_eq!(warnings.len(), 6);
        assert_eq!(rejections.len(), 18);
        assert_eq!(counts.lines, 55);
        let lines: Vec<usize> = rejections.iter().map(|r| r.line).collect();
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "{lines:?}");
        for block_bytes in [1, 100, 4096] {
            for threads in [1, 3] {
                assert!(
                    read(&text, block_bytes, threads) == whole,
                    "blocks of {block_bytes} bytes on {threads} threads"
                );
            }
        }
    }
}
