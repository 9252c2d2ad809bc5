//! Compiles the CEL strings of a rulebook and points their errors into the
//! TOML text.
//!
//! Before compiling, every `fields.<name>` the expression mentions is checked
//! against the record type's fields, so that a misspelt field is reported by
//! name whatever the compiler says. Compile errors carry a byte offset into
//! the expression; when the TOML string holds the expression verbatim (a
//! literal string, or a basic string without escapes) the problem points at
//! that very character, otherwise at the string's opening quote.

use std::sync::Arc;

use socred_core::expr::{Program, Scope};
use socred_core::record::FieldType;

use super::raw::Located;
use super::shape::suggestion;
use super::source::Diagnostics;

/// What an expression is for: what it must be able to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gives {
    /// A condition (`when`): true or false.
    Bool,
    /// Points: an int or a double.
    Number,
}

/// Compiles one expression; None (with problems recorded) when it is not
/// valid, or can never give what it is for (a condition that can be
/// neither true nor false never holds; points that are no number are never
/// given: both would be silent at run time). `what` names the expression
/// in messages, e.g. "`when` of rule `r1`".
pub(crate) fn compile(
    diag: &mut Diagnostics<'_>,
    source: &Located<String>,
    scope: Scope<'_>,
    gives: Gives,
    what: &str,
) -> Option<Program> {
    let start = content_start(diag.text(), &source.span);
    let mut unknown = false;
    for (offset, name) in field_references(&source.value) {
        let position = start.map_or(source.span.start, |s| s + offset);
        match scope {
            Scope::Record { fields } => {
                if fields.iter().any(|(field, _)| field.as_ref() == name) {
                    continue;
                }
                let known: Vec<&str> = fields.iter().map(|(field, _)| field.as_ref()).collect();
                let hint = suggestion(name, known.iter().copied());
                let listing = if known.is_empty() {
                    "it has no fields".to_string()
                } else {
                    format!("its fields are {}", known.join(", "))
                };
                diag.error_at(
                    position,
                    format!("{what} uses `fields.{name}`, which the record type lacks ({listing}){hint}"),
                );
            }
            Scope::Subject => diag.error_at(
                position,
                format!(
                    "{what} uses `fields.{name}`, but measure conditions are about the subject: \
                     only `subject`, `score`, `grade` and `lists` are known there"
                ),
            ),
        }
        unknown = true;
    }
    if unknown {
        return None;
    }
    match Program::compile(&source.value, scope) {
        Ok(program) => {
            let (can, wanted) = match gives {
                Gives::Bool => (
                    program.may_give_bool(),
                    "true or false, as a condition must",
                ),
                Gives::Number => (program.may_give_number(), "a number, as points must"),
            };
            if can {
                return Some(program);
            }
            diag.error_at(
                start.unwrap_or(source.span.start),
                format!("{what} can never give {wanted}"),
            );
            None
        }
        Err(errors) => {
            for error in errors {
                let position = match (start, error.offset) {
                    (Some(start), Some(offset)) if offset <= source.value.len() => start + offset,
                    _ => source.span.start,
                };
                diag.error_at(
                    position,
                    format!("{what} is not valid CEL: {}", error.message),
                );
            }
            None
        }
    }
}

/// Fields as the compiler's record scope wants them.
pub(crate) type ScopeFields = Vec<(Arc<str>, FieldType)>;

/// Byte offset in `text` where the string value at `span` starts, when the
/// string holds its value verbatim (so that offsets into the value are
/// offsets into the text).
fn content_start(text: &str, span: &std::ops::Range<usize>) -> Option<usize> {
    let raw = text.get(span.clone())?;
    for quote in ["'''", "\"\"\""] {
        if let Some(rest) = raw.strip_prefix(quote) {
            if quote.starts_with('"') && rest.contains('\\') {
                return None;
            }
            // A newline right after the opening delimiter is not part of the value.
            let skip = if rest.starts_with("\r\n") {
                2
            } else {
                usize::from(rest.starts_with('\n'))
            };
            return Some(span.start + quote.len() + skip);
        }
    }
    if raw.starts_with('\'') {
        return Some(span.start + 1);
    }
    if raw.starts_with('"') && !raw.contains('\\') {
        return Some(span.start + 1);
    }
    None
}

/// `(offset, name)` of every `fields.<name>` outside string literals.
fn field_references(source: &str) -> Vec<(usize, &str)> {
    let bytes = source.as_bytes();
    let mut found = Vec::new();
    let mut index = 0;
    let mut quote: Option<u8> = None;
    while let Some(&byte) = bytes.get(index) {
        if let Some(open) = quote {
            if byte == b'\\' {
                index += 2;
                continue;
            }
            if byte == open {
                quote = None;
            }
            index += 1;
            continue;
        }
        if byte == b'"' || byte == b'\'' {
            quote = Some(byte);
            index += 1;
            continue;
        }
        let at_word_start = index == 0
            || bytes
                .get(index - 1)
                .is_some_and(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.'));
        if at_word_start
            && source
                .get(index..)
                .is_some_and(|rest| rest.starts_with("fields."))
        {
            let name_start = index + "fields.".len();
            let name_end = source
                .get(name_start..)
                .and_then(|rest| rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
                .map_or(source.len(), |length| name_start + length);
            if let Some(name) = source.get(name_start..name_end) {
                if !name.is_empty() {
                    found.push((name_start, name));
                }
            }
            index = name_end.max(index + 1);
            continue;
        }
        index += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_references_skip_string_literals_and_longer_names() {
        let found =
            field_references(r#"fields.a > 1 && "fields.b" != myfields.c && has(fields.d_2)"#);
        assert_eq!(found, vec![(7, "a"), (55, "d_2")]);
    }

    #[test]
    fn verbatim_strings_map_offsets_and_escaped_ones_do_not() {
        let text = "a = \"x\"\nb = 'y'\nc = \"\\u0041\"\nd = '''\nz'''\n";
        let span = |needle: &str| {
            let start = text.find(needle).unwrap_or_default();
            start..start + needle.len()
        };
        assert_eq!(content_start(text, &span("\"x\"")), Some(5));
        assert_eq!(content_start(text, &span("'y'")), Some(13));
        assert_eq!(content_start(text, &span("\"\\u0041\"")), None);
        assert_eq!(content_start(text, &span("'''\nz'''")), text.find('z'));
    }
}
