//! Reading a whole NDJSON text, then parsing it subject by subject, so that
//! each subject's records lie together in memory in the order
//! [`Engine::fold_all`](socred_core::Engine::fold_all) folds them.
//!
//! Records parsed in the order they arrive lie scattered: each subject's
//! records, fields and documents were allocated among everyone else's,
//! and folding them subject by subject waits on memory for nearly every
//! one (BENCHMARKS.md, "The fold"). Parsing a line reads its text once, a
//! few consecutive cache lines that the processor fetches ahead. So the
//! text is read whole, each line's subject is found by a quick scan (not a
//! parse), the lines are sorted by it and parsed in that order: every
//! record, its fields and its document are allocated one after another,
//! subject by subject, and the fold groups them in one pass.
//!
//! The scan is only a hint. A line whose subject it misreads (a key
//! `subject` inside an object before the line's own, an escaped character)
//! is parsed elsewhere in the order, which costs speed and nothing else:
//! the fold groups records by the subject they parse to, in any order.

use std::io::{self, BufRead};

use socred_core::{Rulebook, SubjectId};

use super::{answer, read_line, Block, Counts, Item, LineParser, Rejection, Warning};

/// Bytes of text a block holds before the next one starts.
const TEXT_BLOCK_BYTES: usize = 1 << 20;

/// Lines a task parses at once.
const TASK_LINES: usize = 4096;

/// Lines parsed before their items are handed over: the parsed items held
/// at once stay a small part of the batch.
const WAVE_LINES: usize = 1 << 18;

/// A whole NDJSON text in memory, line by line, not parsed yet.
pub struct NdjsonText {
    blocks: Vec<Block>,
    lines: usize,
}

/// Where a line lies, and the subject it names by a quick scan.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    subject: (u128, u16),
    block: u32,
    line: u32,
}

impl NdjsonText {
    /// Reads `reader` to its end. Only I/O errors stop the reading; a line
    /// longer than [`super::LINE_BYTES_MAX`] is skipped and answered with a
    /// rejection when the text is parsed.
    pub fn read(mut reader: impl BufRead) -> io::Result<NdjsonText> {
        let mut blocks = Vec::new();
        let mut block = Block::default();
        let mut lines = 0;
        while read_line(&mut reader, &mut block, lines + 1)? {
            lines += 1;
            if block.text.len() >= TEXT_BLOCK_BYTES {
                block.text.shrink_to_fit();
                blocks.push(std::mem::take(&mut block));
            }
        }
        if !block.lines.is_empty() {
            blocks.push(block);
        }
        Ok(NdjsonText { blocks, lines })
    }

    /// Lines read, blank ones included.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Parses every line on the threads of the current rayon pool: good
    /// items go to `on_item` in subject order (a subject's lines in line
    /// order), then bad lines to `on_rejection` and warnings to
    /// `on_warning`, each in line order.
    pub fn parse_by_subject(
        self,
        rulebook: &Rulebook,
        mut on_item: impl FnMut(Item),
        on_rejection: impl FnMut(Rejection),
        on_warning: impl FnMut(Warning),
    ) -> Counts {
        use rayon::prelude::*;
        let mut order: Vec<Place> = self
            .blocks
            .par_iter()
            .enumerate()
            .flat_map_iter(|(b, block)| {
                block.lines.iter().zip(0u32..).map(move |(line, l)| Place {
                    subject: subject_hint(block.bytes(line)),
                    // Blocks of a megabyte: fewer than `u32::MAX`.
                    block: b as u32,
                    line: l,
                })
            })
            .collect();
        order.par_sort_unstable();
        let mut counts = Counts::default();
        let (mut rejections, mut warnings) = (Vec::new(), Vec::new());
        for wave in order.chunks(WAVE_LINES) {
            let parsed: Vec<Vec<_>> = wave
                .par_chunks(TASK_LINES)
                .map_init(
                    || LineParser::new(rulebook),
                    |parser, places| {
                        places
                            .iter()
                            .map(|place| self.parse_at(parser, *place))
                            .collect()
                    },
                )
                .collect();
            for result in parsed.into_iter().flatten().flatten() {
                answer(
                    &mut counts,
                    result,
                    &mut on_item,
                    &mut |rejection| rejections.push(rejection),
                    &mut |warning| warnings.push(warning),
                );
            }
        }
        rejections.sort_by_key(|rejection| rejection.line);
        warnings.sort_by_key(|warning| warning.line);
        rejections.into_iter().for_each(on_rejection);
        warnings.into_iter().for_each(on_warning);
        counts
    }

    fn parse_at(&self, parser: &mut LineParser<'_>, place: Place) -> Option<super::LineResult> {
        let block = self.blocks.get(place.block as usize)?;
        let line = block.lines.get(place.line as usize)?;
        block.parse_line(parser, line)
    }
}

/// The sort key of the subject a line names, by a scan for its first key
/// `"subject"` and the string after it (upper case, as identifiers are
/// normalised); lines without one sort last.
fn subject_hint(line: &[u8]) -> (u128, u16) {
    const KEY: &[u8] = b"\"subject\"";
    let last = (u128::MAX, u16::MAX);
    let Some(at) = memchr::memmem::find(line, KEY) else {
        return last;
    };
    let after = line.get(at + KEY.len()..).unwrap_or_default();
    let Some(value) = after
        .trim_ascii_start()
        .strip_prefix(b":")
        .map(<[u8]>::trim_ascii_start)
        .and_then(|rest| rest.strip_prefix(b"\""))
    else {
        return last;
    };
    let mut bytes = [0u8; 18];
    for (slot, byte) in bytes
        .iter_mut()
        .zip(value.iter().take_while(|&&b| b != b'"'))
    {
        *slot = byte.to_ascii_uppercase();
    }
    SubjectId::sort_key_of(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> SubjectId {
        SubjectId::parse(text).expect("a valid identifier").id
    }

    #[test]
    fn the_hint_is_the_sort_key_of_the_subject_the_line_names() {
        let person = id("11010519491231002X");
        for line in [
            r#"{"provider":"p","subject":"11010519491231002X","type":"t"}"#,
            r#"{"provider":"p","subject" :  "11010519491231002x"}"#,
            r#"{"fact":"consent_granted","subject":"11010519491231002X","at":"2021-01-01"}"#,
        ] {
            assert_eq!(subject_hint(line.as_bytes()), person.sort_key(), "{line}");
        }
        for line in [r#"{"provider":"p"}"#, r#"{"subject" 1}"#, "not json", ""] {
            assert_eq!(
                subject_hint(line.as_bytes()),
                (u128::MAX, u16::MAX),
                "{line}"
            );
        }
    }

    /// Items come out subject by subject, each subject's in line order;
    /// rejections and warnings in line order; the counts as a streaming
    /// read gives them; on one thread as on several.
    #[test]
    fn items_come_in_subject_order_and_rejections_in_line_order() {
        let rulebook = crate::default_rulebook();
        let a = "91640106MABUPQ3HX1";
        let b = "91110000600037341L";
        let pilot = "91350100M0001TGQXM";
        let record = |subject: &str, n: u32| {
            format!(
                r#"{{"provider":"samr.wenzhou","id":"r{n}","subject":"{subject}","type":"registry.company_registration","occurred_at":"2021-01-0{n}","decided_at":"2021-01-0{n}","fields":{{"name":"Shop {n}","legal_representative":"11010519491231002X"}}}}"#
            )
        };
        let text = [
            record(b, 1),
            record(a, 2),
            "{bad json".to_string(),
            String::new(),
            record(pilot, 3),
            record(b, 4),
            record(a, 5),
            r#"{"provider":"court","id":"x","subject":"110105194912310020","type":"t"}"#
                .to_string(),
        ]
        .join("\n");
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool");
            let read = NdjsonText::read(text.as_bytes()).expect("reading from memory");
            assert_eq!(read.lines(), 8);
            assert_eq!(read.blocks.iter().map(|b| b.lines.len()).sum::<usize>(), 8);
            let (mut items, mut rejections, mut warnings) = (Vec::new(), Vec::new(), Vec::new());
            let counts = pool.install(|| {
                read.parse_by_subject(
                    &rulebook,
                    |item| items.push(item),
                    |rejection| rejections.push(rejection),
                    |warning| warnings.push(warning),
                )
            });
            let subjects: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Item::Record(r) => format!("{} {}", r.subject.as_str(), r.key.id),
                    Item::Fact { fact, .. } => fact.subject.as_str().to_string(),
                })
                .collect();
            assert_eq!(
                subjects,
                [
                    format!("{b} r1"),
                    format!("{b} r4"),
                    format!("{pilot} r3"),
                    format!("{a} r2"),
                    format!("{a} r5"),
                ]
            );
            let lines: Vec<usize> = rejections.iter().map(|r| r.line).collect();
            assert_eq!(lines, [3, 8]);
            assert_eq!(warnings.len(), 1);
            assert_eq!(warnings[0].line, 5);
            let streamed = pool
                .install(|| {
                    super::super::read_ndjson(&rulebook, text.as_bytes(), |_| {}, |_| {}, |_| {})
                })
                .expect("reading from memory");
            assert_eq!(counts, streamed);
        }
    }
}
