//! The second pass: judges a [`RawLine`] against the catalog and lowers it
//! into a core [`Record`] or [`Fact`], or says precisely what is wrong.
//!
//! Checks run in a fixed order (keys, then identity, then the catalog, then
//! dates, then fields) so that the same bad line always gets the same
//! rejection. A line gets one rejection: the first problem found.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use socred_core::id::{SubjectId, SubjectKind};
use socred_core::record::{FieldType, Fields, Outcome, Value};
use socred_core::rulebook::{FieldDef, RecordType};
use socred_core::time::{Day, TimeError};
use socred_core::{Fact, FactKind, Record, RecordId, RecordKey, Rulebook};

use super::raw::{FieldInput, FieldsValue, Key, RawLine, Scalar};
use super::{control_character, Controls, Item, KEY_BYTES_MAX, TEXT_BYTES_MAX};

/// What is wrong with a line, before the line number is attached.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) field: Option<String>,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

type Result<T> = std::result::Result<T, Problem>;

fn problem(code: &'static str, field: Option<String>, message: String) -> Problem {
    Problem {
        field,
        code,
        message,
    }
}

fn at_key(code: &'static str, key: Key, message: String) -> Problem {
    problem(code, Some(key.name().to_string()), message)
}

/// Largest integer magnitude a double holds exactly (2^53): an `int` field
/// accepts a JSON number with a zero fraction only up to here.
const EXACT_INT_F64_MAX: f64 = 9_007_199_254_740_992.0;

/// Most distinct provider (and `by`) names one parser keeps shared; past it
/// new names are allocated per line, which is only slower.
const INTERNED_MAX: usize = 4096;

/// Shares provider names between the records of one reader, so that ten
/// million records from a handful of providers hold a handful of strings.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    names: HashSet<Arc<str>>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.names.get(name) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(name);
        if self.names.len() < INTERNED_MAX {
            self.names.insert(Arc::clone(&shared));
        }
        shared
    }
}

/// Lowers raw lines against one rulebook's catalog.
#[derive(Debug)]
pub(crate) struct Lowerer<'r> {
    pub(crate) rulebook: &'r Rulebook,
    interner: Interner,
}

/// The record facts, in the order the format documents them.
const FACT_KINDS: &str =
    "retracted, corrected, disputed, resolved, repaired, consent_granted, consent_withdrawn";

const RECORD_KEYS: &[Key] = &[
    Key::Provider,
    Key::Id,
    Key::Subject,
    Key::Type,
    Key::OccurredAt,
    Key::DecidedAt,
    Key::Fields,
    Key::Document,
];

impl<'r> Lowerer<'r> {
    pub(crate) fn new(rulebook: &'r Rulebook) -> Self {
        Lowerer {
            rulebook,
            interner: Interner::default(),
        }
    }

    /// Lowers one line; warnings (accepted oddities) are pushed to `warnings`.
    pub(crate) fn lower(
        &mut self,
        mut raw: RawLine<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<Item> {
        if let Some(key) = raw.duplicate_key.take() {
            return Err(problem(
                "duplicate_key",
                Some(key.clone()),
                format!("key `{key}` is given twice"),
            ));
        }
        if let Some(key) = raw.unknown_key.take() {
            return Err(problem(
                "unknown_key",
                Some(key.clone()),
                format!(
                    "key {} is not part of the record format",
                    super::raw::quote_short(&key)
                ),
            ));
        }
        match raw.take(Key::Fact) {
            None => self.lower_record(raw, warnings).map(Item::Record),
            Some(Scalar::Str(kind)) => self.lower_fact(&kind, raw, warnings),
            Some(other) => Err(at_key(
                "key_type",
                Key::Fact,
                format!("key `fact` must be a string, found {}", other.describe()),
            )),
        }
    }

    pub(crate) fn lower_record(
        &mut self,
        mut raw: RawLine<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<Record> {
        allow_only(&raw, &[RECORD_KEYS], None)?;
        let provider = self
            .interner
            .intern(&required_str(&mut raw, Key::Provider, KEY_BYTES_MAX)?);
        let id = RecordId::from(&*required_str(&mut raw, Key::Id, KEY_BYTES_MAX)?);
        let subject = subject(&mut raw, warnings)?;
        let (type_index, record_type) = self.record_type(&mut raw)?;
        let occurred_at = required_day(&mut raw, Key::OccurredAt)?;
        let decided_at = required_day(&mut raw, Key::DecidedAt)?;
        let document =
            optional_str(&mut raw, Key::Document, TEXT_BYTES_MAX)?.map(|text| Arc::from(&*text));
        check_kind(record_type, subject)?;
        check_order(occurred_at, decided_at)?;
        check_born(subject, occurred_at)?;
        let fields = match raw.fields.take() {
            None | Some(FieldsValue::Other(Scalar::Null)) => {
                lower_fields(record_type, Vec::new(), warnings)?
            }
            Some(value) => lower_fields(record_type, field_entries(value)?, warnings)?,
        };
        Ok(Record {
            key: RecordKey { provider, id },
            subject,
            type_index,
            type_id: record_type.id,
            occurred_at,
            decided_at,
            fields,
            document,
        })
    }

    fn lower_fact(
        &mut self,
        kind: &str,
        mut raw: RawLine<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<Item> {
        if kind == "consent_granted" || kind == "consent_withdrawn" {
            allow_only(&raw, &[&[Key::Subject, Key::At, Key::By]], Some(kind))?;
            let subject = subject(&mut raw, warnings)?;
            let at = required_day(&mut raw, Key::At)?;
            let by = match optional_str(&mut raw, Key::By, KEY_BYTES_MAX)? {
                Some(by) => self.interner.intern(&by),
                None => self.interner.intern("subject"),
            };
            let kind = if kind == "consent_granted" {
                FactKind::ConsentGranted
            } else {
                FactKind::ConsentWithdrawn
            };
            return Ok(Item::Fact {
                fact: Fact {
                    subject,
                    at,
                    by,
                    kind,
                },
                record_type: None,
            });
        }
        let base = [Key::Provider, Key::Record, Key::Subject, Key::At, Key::By];
        let extra: &[Key] = match kind {
            "retracted" => &[],
            "disputed" | "repaired" => &[Key::Statement],
            "corrected" => &[Key::Type, Key::Fields, Key::OccurredAt, Key::DecidedAt],
            "resolved" => &[Key::Outcome, Key::Type, Key::Fields],
            _ => {
                return Err(at_key(
                    "unknown_fact",
                    Key::Fact,
                    format!(
                        "{} is not a kind of later fact (one of: {FACT_KINDS})",
                        super::raw::quote_short(kind)
                    ),
                ))
            }
        };
        allow_only(&raw, &[&base, extra], Some(kind))?;
        let provider = self
            .interner
            .intern(&required_str(&mut raw, Key::Provider, KEY_BYTES_MAX)?);
        let record_id = RecordId::from(&*required_str(&mut raw, Key::Record, KEY_BYTES_MAX)?);
        let subject = subject(&mut raw, warnings)?;
        let at = required_day(&mut raw, Key::At)?;
        let by = match optional_str(&mut raw, Key::By, KEY_BYTES_MAX)? {
            Some(by) => self.interner.intern(&by),
            None => Arc::clone(&provider),
        };
        let record = RecordKey {
            provider,
            id: record_id,
        };
        let mut record_type = None;
        let kind = match kind {
            "retracted" => FactKind::Retracted { record },
            "repaired" => {
                let statement = optional_str(&mut raw, Key::Statement, TEXT_BYTES_MAX)?
                    .map(|text| Arc::from(&*text));
                FactKind::Repaired { record, statement }
            }
            "disputed" => {
                let statement = optional_str(&mut raw, Key::Statement, TEXT_BYTES_MAX)?
                    .map(|text| Arc::from(&*text));
                FactKind::Disputed { record, statement }
            }
            "corrected" => {
                let occurred_at = optional_day(&mut raw, Key::OccurredAt)?;
                let decided_at = optional_day(&mut raw, Key::DecidedAt)?;
                if let (Some(occurred_at), Some(decided_at)) = (occurred_at, decided_at) {
                    check_order(occurred_at, decided_at)?;
                }
                if let Some(occurred_at) = occurred_at {
                    check_born(subject, occurred_at)?;
                }
                let (type_id, fields) = self.typed_fields(&mut raw, subject, warnings)?;
                record_type = Some(type_id);
                FactKind::Corrected {
                    record,
                    fields,
                    occurred_at,
                    decided_at,
                }
            }
            _ => {
                let outcome = outcome(&mut raw)?;
                let fields = if outcome == Outcome::Corrected {
                    let (type_id, fields) = self.typed_fields(&mut raw, subject, warnings)?;
                    record_type = Some(type_id);
                    Some(fields)
                } else {
                    for key in [Key::Type, Key::Fields] {
                        if raw.has(key) {
                            return Err(at_key(
                                "unexpected_key",
                                key,
                                format!("key `{}` belongs only to a `resolved` fact whose outcome is `corrected`", key.name()),
                            ));
                        }
                    }
                    None
                };
                FactKind::Resolved {
                    record,
                    outcome,
                    fields,
                }
            }
        };
        Ok(Item::Fact {
            fact: Fact {
                subject,
                at,
                by,
                kind,
            },
            record_type,
        })
    }

    /// The `type` and `fields` of a correction, the fields checked against
    /// the type's schema.
    fn typed_fields(
        &mut self,
        raw: &mut RawLine<'_>,
        subject: SubjectId,
        warnings: &mut Vec<String>,
    ) -> Result<(socred_core::Name, Fields)> {
        if !raw.has(Key::Type) {
            return Err(at_key(
                "missing_key",
                Key::Type,
                "key `type` is missing (new fields are checked against the record type it names)"
                    .to_string(),
            ));
        }
        let (_, record_type) = self.record_type(raw)?;
        check_kind(record_type, subject)?;
        let value = match raw.fields.take() {
            None | Some(FieldsValue::Other(Scalar::Null)) => {
                return Err(at_key(
                    "missing_key",
                    Key::Fields,
                    "key `fields` is missing (a correction gives the record's full new fields)"
                        .to_string(),
                ))
            }
            Some(value) => value,
        };
        let fields = lower_fields(record_type, field_entries(value)?, warnings)?;
        Ok((record_type.id, fields))
    }

    fn record_type(&self, raw: &mut RawLine<'_>) -> Result<(u32, &'r RecordType)> {
        let type_id = required_str(raw, Key::Type, KEY_BYTES_MAX)?;
        let rulebook = self.rulebook;
        let found = rulebook
            .record_type(&type_id)
            .and_then(|index| Some((index, rulebook.catalog.get(usize::try_from(index).ok()?)?)));
        found.ok_or_else(|| {
            at_key(
                "unknown_record_type",
                Key::Type,
                format!(
                    "record type {} is not in the catalog of rulebook {}",
                    super::raw::quote_short(&type_id),
                    rulebook.label()
                ),
            )
        })
    }
}

/// Refuses known keys that do not belong to this kind of line: a record
/// (`fact` None) or a fact of the given kind.
fn allow_only(raw: &RawLine<'_>, allowed: &[&[Key]], fact: Option<&str>) -> Result<()> {
    for key in Key::ALL {
        if key == Key::Fact || allowed.iter().any(|keys| keys.contains(&key)) || !raw.has(key) {
            continue;
        }
        let what = match fact {
            None => "a record (a line without `fact`)".to_string(),
            Some(kind) => format!("a `{kind}` fact"),
        };
        return Err(at_key(
            "unexpected_key",
            key,
            format!("key `{}` is not used on {what}", key.name()),
        ));
    }
    Ok(())
}

fn optional_str<'a>(
    raw: &mut RawLine<'a>,
    key: Key,
    bytes_max: usize,
) -> Result<Option<Cow<'a, str>>> {
    let text = match raw.take(key) {
        None => return Ok(None),
        Some(Scalar::Str(text)) => text,
        Some(other) => {
            return Err(at_key(
                "key_type",
                key,
                format!(
                    "key `{}` must be a string, found {}",
                    key.name(),
                    other.describe()
                ),
            ))
        }
    };
    if text.is_empty() {
        return Err(at_key(
            "empty_value",
            key,
            format!("key `{}` is empty", key.name()),
        ));
    }
    if text.len() > bytes_max {
        return Err(at_key(
            "too_long",
            key,
            format!(
                "key `{}` is {} bytes long, the limit is {bytes_max}",
                key.name(),
                text.len()
            ),
        ));
    }
    let allowed = match key {
        Key::Document | Key::Statement => Controls::Breaks,
        _ => Controls::None,
    };
    if let Some(c) = control_character(&text, allowed) {
        return Err(at_key(
            "control_character",
            key,
            format!(
                "key `{}` holds {}",
                key.name(),
                describe_control(c, allowed)
            ),
        ));
    }
    Ok(Some(text))
}

/// What a refused control character is, for a message.
fn describe_control(c: char, allowed: Controls) -> String {
    let unless = match allowed {
        Controls::None => "",
        Controls::Breaks => " (only line breaks and tabs are allowed)",
    };
    format!("the control character U+{:04X}{unless}", u32::from(c))
}

fn required_str<'a>(raw: &mut RawLine<'a>, key: Key, bytes_max: usize) -> Result<Cow<'a, str>> {
    optional_str(raw, key, bytes_max)?.ok_or_else(|| {
        at_key(
            "missing_key",
            key,
            format!("key `{}` is missing", key.name()),
        )
    })
}

fn optional_day(raw: &mut RawLine<'_>, key: Key) -> Result<Option<Day>> {
    let Some(text) = optional_str(raw, key, KEY_BYTES_MAX)? else {
        return Ok(None);
    };
    match parse_day(&text) {
        Ok(day) => Ok(Some(day)),
        Err(error) => Err(at_key(
            "invalid_date",
            key,
            format!("key `{}`: {error}", key.name()),
        )),
    }
}

fn required_day(raw: &mut RawLine<'_>, key: Key) -> Result<Day> {
    optional_day(raw, key)?.ok_or_else(|| {
        at_key(
            "missing_key",
            key,
            format!("key `{}` is missing", key.name()),
        )
    })
}

fn subject(raw: &mut RawLine<'_>, warnings: &mut Vec<String>) -> Result<SubjectId> {
    let text = required_str(raw, Key::Subject, KEY_BYTES_MAX)?;
    parse_subject(&text, None, warnings)
        .map_err(|message| at_key("invalid_subject", Key::Subject, message))
}

/// Parses the subject (`field` None) or a subject field's identifier; the
/// error is the message of the rejection.
fn parse_subject(
    text: &str,
    field: Option<&str>,
    warnings: &mut Vec<String>,
) -> std::result::Result<SubjectId, String> {
    // Only formatted when something is wrong: this runs once a line.
    let what = || match field {
        None => "subject".to_string(),
        Some(name) => format!("field `{name}`"),
    };
    match SubjectId::parse(text) {
        Ok(parsed) => {
            if let Some(warning) = parsed.warning {
                warnings.push(format!("{} `{}`: {warning}", what(), parsed.id));
            }
            Ok(parsed.id)
        }
        Err(error) => Err(format!(
            "{} {} is not a valid identifier: {error}",
            what(),
            super::raw::quote_short(text)
        )),
    }
}

fn check_kind(record_type: &RecordType, subject: SubjectId) -> Result<()> {
    let kind = subject.kind();
    if record_type.subject_kinds.contains(kind) {
        return Ok(());
    }
    let (allowed, found) = match kind {
        SubjectKind::Person => ("organisations", "a person"),
        SubjectKind::Organisation => ("persons", "an organisation"),
    };
    Err(at_key(
        "wrong_subject_kind",
        Key::Subject,
        format!(
            "record type `{}` is about {allowed} only, and `{subject}` is {found}",
            record_type.id
        ),
    ))
}

fn check_order(occurred_at: Day, decided_at: Day) -> Result<()> {
    if occurred_at <= decided_at {
        return Ok(());
    }
    Err(at_key(
        "dates_out_of_order",
        Key::OccurredAt,
        format!("occurred_at {occurred_at} is after decided_at {decided_at}"),
    ))
}

/// A person's conduct cannot come before the person: the birth date in
/// the identifier (positions 7-14) bounds the day a record says it
/// occurred on.
fn check_born(subject: SubjectId, occurred_at: Day) -> Result<()> {
    let born = subject
        .birth_date()
        .and_then(|(year, month, day)| Day::from_ymd(year, month, day));
    match born {
        Some(born) if occurred_at < born => Err(at_key(
            "before_birth",
            Key::OccurredAt,
            format!(
                "occurred_at {occurred_at} is before the subject was born ({born}, positions 7-14 \
                 of its identifier)"
            ),
        )),
        _ => Ok(()),
    }
}

fn outcome(raw: &mut RawLine<'_>) -> Result<Outcome> {
    let text = required_str(raw, Key::Outcome, KEY_BYTES_MAX)?;
    match &*text {
        "upheld" => Ok(Outcome::Upheld),
        "corrected" => Ok(Outcome::Corrected),
        "retracted" => Ok(Outcome::Retracted),
        _ => Err(at_key(
            "unknown_outcome",
            Key::Outcome,
            format!(
                "outcome {} is not one of upheld, corrected, retracted",
                super::raw::quote_short(&text)
            ),
        )),
    }
}

fn field_entries(value: FieldsValue<'_>) -> Result<Vec<(Cow<'_, str>, FieldInput<'_>)>> {
    match value {
        FieldsValue::Object(entries) => Ok(entries),
        FieldsValue::Other(other) => Err(at_key(
            "key_type",
            Key::Fields,
            format!("key `fields` must be an object, found {}", other.describe()),
        )),
    }
}

fn field_path(name: &str) -> Option<String> {
    Some(format!("fields.{name}"))
}

/// Types the given fields by the record type's schema: every name must be
/// declared, every required field given. A null (or an empty CSV cell)
/// leaves the field absent.
pub(crate) fn lower_fields(
    record_type: &RecordType,
    entries: Vec<(Cow<'_, str>, FieldInput<'_>)>,
    warnings: &mut Vec<String>,
) -> Result<Fields> {
    let mut fields: Vec<(Arc<str>, Value)> = Vec::with_capacity(entries.len());
    for (at, (name, input)) in entries.iter().enumerate() {
        let Some(def) = record_type.fields.iter().find(|def| *def.name == *name) else {
            let declared: Vec<&str> = record_type.fields.iter().map(|def| &*def.name).collect();
            return Err(problem(
                "unknown_field",
                field_path(name),
                format!(
                    "record type `{}` has no field {} (its fields: {})",
                    record_type.id,
                    super::raw::quote_short(name),
                    if declared.is_empty() {
                        "none".to_string()
                    } else {
                        declared.join(", ")
                    }
                ),
            ));
        };
        // Given twice, even when one of the two is null.
        if entries[..at].iter().any(|(given, _)| given == name) {
            return Err(problem(
                "duplicate_key",
                field_path(name),
                format!("field `{name}` is given twice"),
            ));
        }
        let Some(value) = field_value(def, input, warnings)? else {
            continue;
        };
        within_constraints(def, &value)?;
        fields.push((Arc::clone(&def.name), value));
    }
    for def in &record_type.fields {
        if def.required
            && !fields
                .iter()
                .any(|(given, _)| Arc::ptr_eq(given, &def.name))
        {
            return Err(problem(
                "missing_field",
                field_path(&def.name),
                format!(
                    "record type `{}` requires field `{}`",
                    record_type.id, def.name
                ),
            ));
        }
    }
    Ok(fields.into_iter().collect())
}

/// Refuses a value outside its field's bounds (`out_of_range`) or list of
/// values (`not_one_of`).
fn within_constraints(def: &FieldDef, value: &Value) -> Result<()> {
    // An int is compared with its bounds as an integer (the rulebook keeps
    // them within 2^53, where a double is exact): a least whole value at
    // or above `min`, a greatest at or below `max`.
    let out = match *value {
        Value::Int(n) => match (def.min, def.max) {
            (Some(min), _) if n < min.ceil() as i64 => Some(("at least", min.ceil())),
            (_, Some(max)) if n > max.floor() as i64 => Some(("at most", max.floor())),
            _ => None,
        },
        Value::Number(x) => match (def.min, def.max) {
            (Some(min), _) if x < min => Some(("at least", min)),
            (_, Some(max)) if x > max => Some(("at most", max)),
            _ => None,
        },
        Value::Bool(_) | Value::Text(_) => None,
    };
    if let Some((side, bound)) = out {
        let found = match value {
            Value::Int(n) => n.to_string(),
            Value::Number(x) => number_text(*x),
            _ => String::new(),
        };
        return Err(problem(
            "out_of_range",
            field_path(&def.name),
            format!(
                "field `{}` must be {side} {}, found {found}",
                def.name,
                number_text(bound)
            ),
        ));
    }
    if let (Some(values), Value::Text(text)) = (&def.values, value) {
        if !values.iter().any(|allowed| **allowed == **text) {
            let allowed: Vec<&str> = values.iter().map(|value| &**value).collect();
            return Err(problem(
                "not_one_of",
                field_path(&def.name),
                format!(
                    "field `{}` must be one of {}, found {}",
                    def.name,
                    allowed.join(", "),
                    super::raw::quote_short(text)
                ),
            ));
        }
    }
    Ok(())
}

/// A number as a message shows it: whole numbers without a fraction, very
/// large or very small ones in exponent form (not 300 digits).
fn number_text(x: f64) -> String {
    if x == 0.0 || (1e-6..1e15).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

fn type_name(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::Bool => "bool",
        FieldType::Int => "int",
        FieldType::Number => "number",
        FieldType::Text => "text",
        FieldType::Date => "date",
        FieldType::Subject => "subject",
    }
}

/// One field's value, or None when it is absent (null, empty cell).
fn field_value(
    def: &FieldDef,
    input: &FieldInput<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<Value>> {
    let text = match input {
        FieldInput::Json(Scalar::Null) | FieldInput::Cell("") => return Ok(None),
        FieldInput::Cell(text) => text,
        FieldInput::Json(scalar) => match (def.field_type, scalar) {
            (FieldType::Bool, Scalar::Bool(value)) => return Ok(Some(Value::Bool(*value))),
            (FieldType::Int, Scalar::Int(value)) => return Ok(Some(Value::Int(*value))),
            (FieldType::Int, Scalar::Float(value)) => match exact_int(*value) {
                Some(value) => return Ok(Some(Value::Int(value))),
                None => return Err(wrong_type(def, scalar.describe())),
            },
            (FieldType::Number, Scalar::Int(value)) => {
                return Ok(Some(Value::Number(*value as f64)))
            }
            (FieldType::Number, Scalar::UInt(value)) => {
                return Ok(Some(Value::Number(*value as f64)))
            }
            (FieldType::Number, Scalar::Float(value)) => return Ok(Some(Value::Number(*value))),
            (FieldType::Text | FieldType::Date | FieldType::Subject, Scalar::Str(text)) => &**text,
            _ => return Err(wrong_type(def, scalar.describe())),
        },
    };
    typed_text(def, text, warnings).map(Some)
}

fn wrong_type(def: &FieldDef, found: String) -> Problem {
    problem(
        "field_type",
        field_path(&def.name),
        format!(
            "field `{}` expects {}, found {found}",
            def.name,
            type_name(def.field_type)
        ),
    )
}

/// An integral double within the exactly representable range.
fn exact_int(value: f64) -> Option<i64> {
    if value.fract() == 0.0 && value.abs() <= EXACT_INT_F64_MAX {
        Some(value as i64)
    } else {
        None
    }
}

/// Types a field given as text: a JSON string for text, date and subject
/// fields, or any CSV cell.
fn typed_text(def: &FieldDef, text: &str, warnings: &mut Vec<String>) -> Result<Value> {
    let not_a = || wrong_type(def, super::raw::quote_short(text));
    match def.field_type {
        FieldType::Bool => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(not_a()),
        },
        FieldType::Int => {
            if let Ok(value) = text.parse::<i64>() {
                return Ok(Value::Int(value));
            }
            match text.parse::<f64>() {
                Ok(value) if value.is_finite() => {
                    exact_int(value).map(Value::Int).ok_or_else(not_a)
                }
                _ => Err(not_a()),
            }
        }
        FieldType::Number => match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Value::Number(value)),
            _ => Err(not_a()),
        },
        FieldType::Text => {
            if text.len() > TEXT_BYTES_MAX {
                return Err(problem(
                    "too_long",
                    field_path(&def.name),
                    format!(
                        "field `{}` is {} bytes long, the limit is {TEXT_BYTES_MAX}",
                        def.name,
                        text.len()
                    ),
                ));
            }
            if let Some(c) = control_character(text, Controls::Breaks) {
                return Err(problem(
                    "control_character",
                    field_path(&def.name),
                    format!(
                        "field `{}` holds {}",
                        def.name,
                        describe_control(c, Controls::Breaks)
                    ),
                ));
            }
            Ok(Value::Text(Arc::from(text)))
        }
        FieldType::Date => match parse_day(text) {
            Ok(day) => Ok(Value::Text(Arc::from(day.to_string()))),
            Err(error) => Err(problem(
                "invalid_date",
                field_path(&def.name),
                format!("field `{}`: {error}", def.name),
            )),
        },
        FieldType::Subject => match parse_subject(text, Some(&def.name), warnings) {
            Ok(id) => Ok(Value::Text(Arc::from(id.as_str()))),
            Err(message) => Err(problem("invalid_subject", field_path(&def.name), message)),
        },
    }
}

/// [`Day::parse`], with a fast path for the common `YYYY-MM-DD`: jiff's
/// general parser and span arithmetic cost more than the rest of a line.
pub fn parse_day(text: &str) -> std::result::Result<Day, TimeError> {
    if let Some(day) = fast_day(text.as_bytes()) {
        return Ok(day);
    }
    Day::parse(text)
}

fn fast_day(bytes: &[u8]) -> Option<Day> {
    let &[y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] = bytes else {
        return None;
    };
    let digit = |byte: u8| {
        if byte.is_ascii_digit() {
            Some(u32::from(byte - b'0'))
        } else {
            None
        }
    };
    let year = digit(y1)? * 1000 + digit(y2)? * 100 + digit(y3)? * 10 + digit(y4)?;
    let month = digit(m1)? * 10 + digit(m2)?;
    let day = digit(d1)? * 10 + digit(d2)?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days {
        return None;
    }
    Some(Day(days_from_civil(year as i32, month, day)))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = (year - era * 400) as u32;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era as i32 - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_days_agree_with_the_core_parser() {
        for text in [
            "1970-01-01",
            "2000-02-29",
            "2026-03-15",
            "0000-01-01",
            "0001-03-01",
            "9999-12-31",
            "1969-12-31",
        ] {
            assert_eq!(parse_day(text).ok(), Day::parse(text).ok(), "{text}");
            assert!(fast_day(text.as_bytes()).is_some(), "{text}");
        }
        for text in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "1900-02-29",
        ] {
            assert!(fast_day(text.as_bytes()).is_none(), "{text}");
            assert!(parse_day(text).is_err(), "{text}");
        }
    }

    #[test]
    fn every_day_of_four_centuries_agrees() {
        let mut day = Day::parse("1900-01-01").unwrap();
        let end = Day::parse("2300-01-01").unwrap();
        while day < end {
            let text = day.to_string();
            assert_eq!(fast_day(text.as_bytes()), Some(day), "{text}");
            day = day.add_days(1);
        }
    }
}
