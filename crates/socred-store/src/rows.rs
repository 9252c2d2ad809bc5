//! The stored form of records and later facts, shared by every backend.
//!
//! The core's [`Record`] and [`Fact`] are not deserialisable (a record's
//! catalog index only means something against one rulebook), so a store
//! keeps rows of plain columns and rebuilds core values on load, resolving
//! the record type against the rulebook in use. Field maps are kept as
//! their canonical JSON (a `BTreeMap`, so keys are sorted): comparing two
//! rows' text is comparing their content.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use socred_core::record::{Fields, Outcome, Value};
use socred_core::{Day, Fact, FactKind, Name, Record, RecordKey, Rulebook, SubjectId};

use crate::{FactKey, Item, StoreError};

/// Where an item stands in review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In effect: folded into its subject's state.
    Effective,
    /// Waiting for a second person.
    Pending,
    /// Refused by a reviewer; kept, never in effect, its key stays taken.
    Rejected,
    /// Erased at the end of its retention: a tombstone that keeps only the
    /// key and the subject, so that a resent copy is recognised.
    Erased,
}

impl Status {
    pub fn code(self) -> i64 {
        match self {
            Status::Effective => 0,
            Status::Pending => 1,
            Status::Rejected => 2,
            Status::Erased => 3,
        }
    }

    pub fn from_code(code: i64) -> Result<Status, StoreError> {
        match code {
            0 => Ok(Status::Effective),
            1 => Ok(Status::Pending),
            2 => Ok(Status::Rejected),
            3 => Ok(Status::Erased),
            _ => Err(StoreError::Corrupt(format!(
                "unknown item status code {code}"
            ))),
        }
    }
}

/// The `reviewed_by` of a tombstone: erasure is the registry's, not a
/// reviewer's.
pub const ERASED_BY: &str = "retention";

/// Who sent an item and what review made of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemMeta {
    pub status: Status,
    pub submitted_by: String,
    pub submitted_at_ms: i64,
    /// Position in the review queue; 0 for items that never waited.
    pub pending_seq: u64,
    pub reviewed_by: Option<String>,
    /// The reviewer's reason for a rejection.
    pub review_note: Option<String>,
}

/// A stored record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRow {
    pub key: RecordKey,
    pub subject: SubjectId,
    pub type_id: Name,
    pub occurred_at: Day,
    pub decided_at: Day,
    /// Canonical JSON of the fields.
    pub fields_json: String,
    pub document: Option<Arc<str>>,
    pub meta: ItemMeta,
}

impl RecordRow {
    pub fn new(record: &Record, meta: ItemMeta) -> RecordRow {
        RecordRow {
            key: record.key.clone(),
            subject: record.subject,
            type_id: record.type_id,
            occurred_at: record.occurred_at,
            decided_at: record.decided_at,
            fields_json: to_json(&record.fields),
            document: record.document.clone(),
            meta,
        }
    }

    /// What erasing the record on `day` leaves: its key and subject, and
    /// when and why it went. Its type, dates, fields and document are gone.
    pub fn tombstone(&self, day: Day) -> RecordRow {
        RecordRow {
            key: self.key.clone(),
            subject: self.subject,
            type_id: socred_core::Name::new(""),
            occurred_at: day,
            decided_at: day,
            fields_json: "{}".to_string(),
            document: None,
            meta: ItemMeta {
                status: Status::Erased,
                reviewed_by: Some(ERASED_BY.to_string()),
                review_note: Some(format!("erased at the end of its retention on {day}")),
                ..self.meta.clone()
            },
        }
    }

    /// Whether two rows hold the same record (review state aside).
    pub fn same_content(&self, other: &RecordRow) -> bool {
        self.key == other.key
            && self.subject == other.subject
            && self.type_id == other.type_id
            && self.occurred_at == other.occurred_at
            && self.decided_at == other.decided_at
            && self.fields_json == other.fields_json
            && self.document == other.document
    }

    fn fields(&self) -> Result<Fields, StoreError> {
        decode_fields(&self.fields_json).map_err(|error| {
            StoreError::Corrupt(format!(
                "fields of record {}/{} do not read back: {error}",
                self.key.provider, self.key.id
            ))
        })
    }

    /// The core record, or None when `rulebook` has no such record type.
    pub fn to_record(&self, rulebook: &Rulebook) -> Result<Option<Record>, StoreError> {
        let Some(type_index) = rulebook.record_type(&self.type_id) else {
            return Ok(None);
        };
        let fields = self.fields()?;
        Ok(Some(Record {
            key: self.key.clone(),
            subject: self.subject,
            type_index,
            type_id: self.type_id,
            occurred_at: self.occurred_at,
            decided_at: self.decided_at,
            fields,
            document: self.document.clone(),
        }))
    }

    /// The record as an item, for the review queue (whatever the rulebook).
    pub fn to_item(&self, rulebook: &Rulebook) -> Result<Item, StoreError> {
        match self.to_record(rulebook)? {
            Some(record) => Ok(Item::Record(record)),
            None => {
                let fields = self.fields()?;
                Ok(Item::Record(Record {
                    key: self.key.clone(),
                    subject: self.subject,
                    type_index: u32::MAX,
                    type_id: self.type_id,
                    occurred_at: self.occurred_at,
                    decided_at: self.decided_at,
                    fields,
                    document: self.document.clone(),
                }))
            }
        }
    }
}

/// What reading back the row stored for a record gives under a rulebook,
/// told without the trip through the row's JSON (see [`readback`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Readback {
    /// The record as [`RecordRow::to_record`] would give it.
    Record(Record),
    /// The rulebook has no such record type: the fold leaves it out.
    UnknownType,
    /// Its fields hold a number JSON cannot write (NaN or infinite): only
    /// the stored row says what reading it gives.
    ReadTheRow,
}

/// What `RecordRow::new(record, _).to_record(rulebook)` gives, without
/// writing and parsing the fields' JSON: a backend that keeps decoded
/// histories adds a newly stored record to one with this.
pub fn readback(rulebook: &Rulebook, record: &Record) -> Readback {
    let exact = record.fields.values().all(|value| match value {
        Value::Number(number) => number.is_finite(),
        Value::Bool(_) | Value::Int(_) | Value::Text(_) => true,
    });
    if !exact {
        return Readback::ReadTheRow;
    }
    let Some(type_index) = rulebook.record_type(&record.type_id) else {
        return Readback::UnknownType;
    };
    Readback::Record(Record {
        key: record.key.clone(),
        subject: record.subject,
        type_index,
        type_id: record.type_id,
        occurred_at: record.occurred_at,
        decided_at: record.decided_at,
        fields: record.fields.clone(),
        document: record.document.clone(),
    })
}

/// What a fact says beyond its key, as stored JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FactBody {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_fields"
    )]
    fields: Option<Fields>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    occurred_at: Option<Day>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decided_at: Option<Day>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    statement: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record_type: Option<Name>,
}

/// A stored later fact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactRow {
    pub key: FactKey,
    /// Canonical JSON of the rest of the fact (`{}` for most kinds).
    pub body_json: String,
    pub meta: ItemMeta,
}

impl FactRow {
    pub fn new(fact: &Fact, record_type: Option<&Name>, meta: ItemMeta) -> FactRow {
        let mut body = FactBody {
            record_type: record_type.cloned(),
            ..FactBody::default()
        };
        match &fact.kind {
            FactKind::Corrected {
                fields,
                occurred_at,
                decided_at,
                ..
            } => {
                body.fields = Some(fields.clone());
                body.occurred_at = *occurred_at;
                body.decided_at = *decided_at;
            }
            FactKind::Disputed { statement, .. } | FactKind::Repaired { statement, .. } => {
                body.statement = statement.clone()
            }
            FactKind::Resolved {
                outcome, fields, ..
            } => {
                body.outcome = Some(*outcome);
                body.fields = fields.clone();
            }
            FactKind::Retracted { .. } | FactKind::ConsentGranted | FactKind::ConsentWithdrawn => {}
        }
        FactRow {
            key: FactKey::of(fact),
            body_json: to_json(&body),
            meta,
        }
    }

    pub fn same_content(&self, other: &FactRow) -> bool {
        self.key == other.key && self.body_json == other.body_json
    }

    /// The core fact and the record type it was checked against.
    pub fn to_fact(&self) -> Result<(Fact, Option<Name>), StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!(
                "fact {}: {what}",
                crate::ItemKey::Fact(self.key.clone())
            ))
        };
        let body: FactBody = serde_json::from_str(&self.body_json)
            .map_err(|error| corrupt(&format!("body does not read back: {error}")))?;
        let record = || {
            self.key
                .record
                .clone()
                .ok_or_else(|| corrupt("names no record"))
        };
        let kind = match self.key.kind.as_str() {
            "retracted" => FactKind::Retracted { record: record()? },
            "repaired" => FactKind::Repaired {
                record: record()?,
                statement: body.statement.clone(),
            },
            "corrected" => FactKind::Corrected {
                record: record()?,
                fields: body
                    .fields
                    .clone()
                    .ok_or_else(|| corrupt("a correction without fields"))?,
                occurred_at: body.occurred_at,
                decided_at: body.decided_at,
            },
            "disputed" => FactKind::Disputed {
                record: record()?,
                statement: body.statement.clone(),
            },
            "resolved" => FactKind::Resolved {
                record: record()?,
                outcome: body
                    .outcome
                    .ok_or_else(|| corrupt("a resolution without outcome"))?,
                fields: body.fields.clone(),
            },
            "consent_granted" => FactKind::ConsentGranted,
            "consent_withdrawn" => FactKind::ConsentWithdrawn,
            other => return Err(corrupt(&format!("unknown kind `{other}`"))),
        };
        let fact = Fact {
            subject: self.key.subject,
            at: self.key.at,
            by: self.key.by.clone(),
            kind,
        };
        Ok((fact, body.record_type))
    }
}

/// The wire name of a fact kind (also its part of the fact key).
pub(crate) fn fact_kind_name(kind: &FactKind) -> &'static str {
    match kind {
        FactKind::Retracted { .. } => "retracted",
        FactKind::Corrected { .. } => "corrected",
        FactKind::Disputed { .. } => "disputed",
        FactKind::Resolved { .. } => "resolved",
        FactKind::Repaired { .. } => "repaired",
        FactKind::ConsentGranted => "consent_granted",
        FactKind::ConsentWithdrawn => "consent_withdrawn",
    }
}

/// Reads a field map as the core's `Value` reads it (booleans, integers
/// that fit an `i64`, other numbers, text), without the trial and error of
/// its untagged derive: fields are decoded for every record of every
/// subject a batch touches.
pub fn decode_fields(json: &str) -> Result<Fields, serde_json::Error> {
    let map: BTreeMap<Arc<str>, FieldValue> = serde_json::from_str(json)?;
    Ok(map
        .into_iter()
        .map(|(name, FieldValue(value))| (name, value))
        .collect())
}

struct FieldValue(Value);

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl serde::de::Visitor<'_> for FieldVisitor {
    type Value = FieldValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a boolean, a number or a string")
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<FieldValue, E> {
        Ok(FieldValue(Value::Bool(value)))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<FieldValue, E> {
        Ok(FieldValue(Value::Int(value)))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<FieldValue, E> {
        Ok(FieldValue(match i64::try_from(value) {
            Ok(value) => Value::Int(value),
            Err(_) => Value::Number(value as f64),
        }))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<FieldValue, E> {
        Ok(FieldValue(Value::Number(value)))
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<FieldValue, E> {
        Ok(FieldValue(Value::Text(Arc::from(value))))
    }
}

fn optional_fields<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Fields>, D::Error> {
    let map: Option<BTreeMap<Arc<str>, FieldValue>> = Option::deserialize(deserializer)?;
    Ok(map.map(|map| {
        map.into_iter()
            .map(|(name, FieldValue(value))| (name, value))
            .collect()
    }))
}

/// Serialises plain data (maps with string keys, finite numbers): cannot fail.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A subject's effective records and facts from their stored rows (rows of
/// a record type the rulebook no longer has are left out). Every backend
/// reads the rows its own way and shares this.
pub fn decode_subject(
    rulebook: &Rulebook,
    record_rows: &[RecordRow],
    fact_rows: &[FactRow],
) -> Result<(Vec<Record>, Vec<Fact>), StoreError> {
    let mut records = Vec::with_capacity(record_rows.len());
    for row in record_rows {
        records.extend(row.to_record(rulebook)?);
    }
    let mut facts = Vec::with_capacity(fact_rows.len());
    for row in fact_rows {
        facts.push(row.to_fact()?.0);
    }
    Ok((records, facts))
}

/// The review queue from its stored rows: records and facts waiting for a
/// second person, merged by their place in the queue, at most `limit`.
/// Every backend reads the two kinds of rows its own way and shares this.
pub fn pending_items(
    rulebook: &Rulebook,
    records: Vec<RecordRow>,
    facts: Vec<FactRow>,
    limit: usize,
) -> Result<Vec<crate::PendingItem>, StoreError> {
    let mut items = Vec::with_capacity(records.len() + facts.len());
    for row in records {
        let item = row.to_item(rulebook)?;
        items.push(pending_of(
            crate::ItemKey::Record(row.key.clone()),
            item,
            &row.meta,
        ));
    }
    for row in facts {
        let (fact, record_type) = row.to_fact()?;
        items.push(pending_of(
            crate::ItemKey::Fact(row.key.clone()),
            Item::Fact { fact, record_type },
            &row.meta,
        ));
    }
    items.sort_by_key(|item| item.seq);
    items.truncate(limit);
    Ok(items)
}

fn pending_of(key: crate::ItemKey, item: Item, meta: &ItemMeta) -> crate::PendingItem {
    crate::PendingItem {
        seq: meta.pending_seq,
        key,
        item,
        submitted_by: meta.submitted_by.clone(),
        submitted_at_ms: meta.submitted_at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> socred_core::RecordKey {
        socred_core::RecordKey {
            provider: Arc::from("p"),
            id: id.into(),
        }
    }

    /// A record read back from its row and the readback without the row
    /// are the same value, whatever the field values.
    #[test]
    fn readback_is_what_the_row_reads_back_as() {
        let engine = crate::conformance::engine();
        let rulebook = &engine.rulebook;
        let type_id = rulebook.catalog[0].id;
        let fields: Fields = [
            (Arc::from("a"), Value::Number(0.1 + 0.2)),
            (Arc::from("b"), Value::Number(1e300)),
            (Arc::from("c"), Value::Int(i64::MIN)),
            (Arc::from("d"), Value::Text(Arc::from("\"quoted\" 北京"))),
            (Arc::from("e"), Value::Bool(false)),
        ]
        .into_iter()
        .collect();
        let record = Record {
            key: key("r1"),
            subject: crate::conformance::example_person(),
            // A stale index: the readback takes the rulebook's.
            type_index: 99,
            type_id: socred_core::Name::new(&type_id),
            occurred_at: Day(19_000),
            decided_at: Day(19_001),
            fields,
            document: Some(Arc::from("doc")),
        };
        let meta = ItemMeta {
            status: Status::Effective,
            submitted_by: "p".into(),
            submitted_at_ms: 0,
            pending_seq: 0,
            reviewed_by: None,
            review_note: None,
        };
        let row = RecordRow::new(&record, meta.clone());
        let from_row = row.to_record(rulebook).expect("reads").expect("known type");
        assert_eq!(readback(rulebook, &record), Readback::Record(from_row));

        let unknown = Record {
            type_id: socred_core::Name::new("no.such.type"),
            ..record.clone()
        };
        assert_eq!(readback(rulebook, &unknown), Readback::UnknownType);
        let nan = Record {
            fields: [(Arc::from("x"), Value::Number(f64::NAN))]
                .into_iter()
                .collect(),
            ..record
        };
        assert_eq!(readback(rulebook, &nan), Readback::ReadTheRow);
    }

    /// The fast decoder must read exactly what the core's derive reads.
    #[test]
    fn fields_decode_like_the_core_value() {
        let json = r#"{"a":true,"b":-3,"c":18446744073709551615,"d":2.5,"e":1.0,"f":"text","g":9007199254740993}"#;
        let ours = decode_fields(json).expect("decode");
        let core: Fields = serde_json::from_str(json).expect("decode with the core's derive");
        assert_eq!(ours, core);
        assert_eq!(ours.get("e"), Some(&Value::Number(1.0)));
        assert_eq!(ours.get("g"), Some(&Value::Int(9_007_199_254_740_993)));
        assert!(decode_fields(r#"{"a":[1]}"#).is_err());
        assert!(decode_fields(r#"{"a":null}"#).is_err());
    }
}
