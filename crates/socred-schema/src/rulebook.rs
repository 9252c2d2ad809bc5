//! The rulebook file: TOML text in, a valid `socred_core::Rulebook` out, or
//! every problem of the text with its file, line and column.
//!
//! Loading goes in four steps, each reporting all it finds before the next
//! runs: TOML syntax (the parser recovers and goes on), with the duplicate
//! ids and the protected categories checked on the text as parsed; shape
//! (unknown keys, missing keys, wrong types, checked against the JSON Schema
//! derived from `raw.rs`); deserialization of what fits; and the semantic
//! checks that also lower the file into the core model (references,
//! periods, CEL, legal bases, the score-only punishment rule).
//! The format is documented in `docs/rulebook.md`.

mod cel;
mod lower;
mod protected;
pub mod raw;
mod shape;
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;

use serde::de::IntoDeserializer;
use serde::Deserialize;
use socred_core::Rulebook;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use lower::{Declared, Sections};
use raw::Located;
use source::Diagnostics;

/// The default rulebook, as shipped: built from documented practice, with
/// the legal basis of every item.
pub const DEFAULT_RULEBOOK_TOML: &str = include_str!("../../../rulebooks/default.toml");

/// Where the default rulebook's problems would be reported.
const DEFAULT_RULEBOOK_LABEL: &str = "rulebooks/default.toml";

/// One problem of a rulebook text. Displays as `file:line:column: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file,
            self.line,
            self.column,
            socred_core::printable::printable(&self.message)
        )
    }
}

/// Every problem of a rulebook that does not load, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulebookErrors {
    pub problems: Vec<Problem>,
}

impl fmt::Display for RulebookErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RulebookErrors {}

/// [`load_rulebook`] of a file's bytes: bytes that are not UTF-8 are a
/// problem at the line and column where the first bad byte stands.
pub fn load_rulebook_bytes(path_label: &str, bytes: &[u8]) -> Result<Rulebook, RulebookErrors> {
    match std::str::from_utf8(bytes) {
        Ok(text) => load_rulebook(path_label, text),
        Err(error) => {
            let good = bytes.get(..error.valid_up_to()).unwrap_or_default();
            let good = std::str::from_utf8(good).unwrap_or_default();
            let line_start = good.rfind('\n').map_or(0, |at| at + 1);
            let bad = bytes.get(error.valid_up_to()).copied().unwrap_or_default();
            Err(RulebookErrors {
                problems: vec![Problem {
                    file: path_label.to_string(),
                    line: good.matches('\n').count() + 1,
                    column: good[line_start..].chars().count() + 1,
                    message: format!(
                        "the rulebook is not UTF-8 text: byte 0x{bad:02x} here is not part of \
                         a UTF-8 character (save the file as UTF-8)"
                    ),
                }],
            })
        }
    }
}

/// Checks and lowers a rulebook. `path_label` is how problems name the file.
pub fn load_rulebook(path_label: &str, text: &str) -> Result<Rulebook, RulebookErrors> {
    let mut diag = Diagnostics::new(path_label, text);
    let (table, syntax_errors) = DeTable::parse_recoverable(text);
    for error in syntax_errors {
        let offset = error.span().map_or(0, |span| span.start);
        diag.error_at(offset, format!("TOML syntax: {}", error.message()));
    }
    let span = table.span();
    let mut document = Spanned::new(span, DeValue::Table(table.into_inner()));
    let declared = declared_ids(&document, &mut diag);
    protected::refuse_protected(&document, &mut diag);
    shape::ShapeCheck::new(schema(), &mut diag).check_document(&mut document);
    let sections = sections(document, declared, &mut diag);
    let rulebook = lower::lower(&sections, &mut diag);
    let problems = diag.into_problems();
    match rulebook {
        Some(rulebook) if problems.is_empty() => Ok(rulebook),
        _ if problems.is_empty() => Err(RulebookErrors {
            // Unreachable by construction: lowering fails only with a problem.
            problems: vec![Problem {
                file: path_label.to_string(),
                line: 1,
                column: 1,
                message: "the rulebook could not be lowered".to_string(),
            }],
        }),
        _ => Err(RulebookErrors { problems }),
    }
}

/// The default rulebook (`rulebooks/default.toml`), loaded once.
///
/// # Panics
///
/// Only if the shipped file is invalid, which the test suite rules out.
pub fn default_rulebook() -> Rulebook {
    static DEFAULT: OnceLock<Rulebook> = OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            load_rulebook(DEFAULT_RULEBOOK_LABEL, DEFAULT_RULEBOOK_TOML).unwrap_or_else(|errors| {
                panic!("the shipped default rulebook does not load:\n{errors}")
            })
        })
        .clone()
}

/// The JSON Schema of the rulebook file (draft 2020-12), as published in
/// `docs/rulebook.schema.json`.
pub fn rulebook_json_schema() -> serde_json::Value {
    schema().clone()
}

fn schema() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| schemars::schema_for!(raw::RulebookFile).to_value())
}

/// The ids written in each section, read before the shape check drops
/// anything; ids used twice in a section are reported here, so that an
/// element dropped for its shape still counts.
fn declared_ids(document: &Spanned<DeValue<'_>>, diag: &mut Diagnostics<'_>) -> Declared {
    let declared = Declared {
        record_types: section_ids(document, "record_type", "record type", diag),
        models: section_ids(document, "model", "model", diag),
        lists: section_ids(document, "list", "list", diag),
    };
    // Nothing refers to a measure, but its id must be unique all the same.
    section_ids(document, "measure", "measure", diag);
    declared
}

fn section_ids(
    document: &Spanned<DeValue<'_>>,
    section: &str,
    what: &str,
    diag: &mut Diagnostics<'_>,
) -> BTreeSet<String> {
    let mut first: BTreeMap<String, usize> = BTreeMap::new();
    let items = document
        .get_ref()
        .get(section)
        .and_then(|value| value.get_ref().as_array());
    for item in items.into_iter().flat_map(|items| items.iter()) {
        let Some(id) = item.get_ref().get("id") else {
            continue;
        };
        let Some(text) = id.get_ref().as_str() else {
            continue;
        };
        match first.get(text) {
            Some(&offset) => {
                let line = diag.line_of(offset);
                diag.error(
                    &id.span(),
                    format!("duplicate {what} id `{text}` (first defined on line {line})"),
                );
            }
            None => {
                first.insert(text.to_string(), id.span().start);
            }
        }
    }
    first.into_keys().collect()
}

/// Deserializes the sections of a shape-checked document, one element at a
/// time so that one broken element does not hide the others.
fn sections(
    document: Spanned<DeValue<'_>>,
    declared: Declared,
    diag: &mut Diagnostics<'_>,
) -> Sections {
    let mut sections = Sections {
        header: None,
        policy: None,
        calendar: None,
        record_types: Vec::new(),
        models: Vec::new(),
        lists: Vec::new(),
        measures: Vec::new(),
        declared,
    };
    let DeValue::Table(root) = document.into_inner() else {
        return sections;
    };
    for (key, value) in root {
        match key.get_ref().as_ref() {
            "rulebook" => sections.header = element(value, diag),
            "policy" => sections.policy = element(value, diag),
            "calendar" => sections.calendar = element(value, diag),
            "record_type" => sections.record_types = elements(value, diag),
            "model" => sections.models = elements(value, diag),
            "list" => sections.lists = elements(value, diag),
            "measure" => sections.measures = elements(value, diag),
            // Unknown keys were reported and removed by the shape check.
            _ => {}
        }
    }
    sections
}

fn elements<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    diag: &mut Diagnostics<'_>,
) -> Vec<Located<T>> {
    let DeValue::Array(items) = value.into_inner() else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| element(item, diag))
        .collect()
}

fn element<'de, T: Deserialize<'de>>(
    value: Spanned<DeValue<'de>>,
    diag: &mut Diagnostics<'_>,
) -> Option<T> {
    let fallback_offset = value.span().start;
    match T::deserialize(value.into_deserializer()) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            // The shape check has cut everything serde would refuse; this is
            // a safety net should the schema and serde ever disagree.
            let offset = error.span().map_or(fallback_offset, |span| span.start);
            diag.error_at(offset, error.message().to_string());
            None
        }
    }
}
