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
use super::{Counts, Item, Parsed, Rejection, Warning};

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
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut counts = Counts::default();
    let mut row = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut row).map_err(into_io)? {
        return Ok(counts);
    }
    let columns = match header(rulebook, &row) {
        Ok(columns) => columns,
        Err((code, message)) => {
            counts.rejections += 1;
            on_rejection(Rejection {
                line: 1,
                field: None,
                code,
                message,
            });
            return Ok(counts);
        }
    };
    let mut lowerer = Lowerer::new(rulebook);
    let mut messages = Vec::new();
    while csv.read_byte_record(&mut row).map_err(into_io)? {
        counts.lines += 1;
        let line = row.position().map_or(0, |position| position.line());
        let line = usize::try_from(line).unwrap_or(usize::MAX);
        messages.clear();
        let lowered = row_to_raw(&columns, &row).and_then(|raw| {
            lowerer
                .lower_record(raw, &mut messages)
                .map_err(|problem| (problem.code, problem.field, problem.message))
        });
        match lowered {
            Ok(record) => {
                counts.items += 1;
                on_item(Item::Record(record));
                if !messages.is_empty() {
                    counts.warnings += 1;
                    on_warning(Warning {
                        line,
                        message: messages.join("; "),
                    });
                }
            }
            Err((code, field, message)) => {
                counts.rejections += 1;
                on_rejection(Rejection {
                    line,
                    field,
                    code,
                    message,
                });
            }
        }
    }
    Ok(counts)
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
                "row has {} cells, the header has {} columns",
                row.len(),
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
