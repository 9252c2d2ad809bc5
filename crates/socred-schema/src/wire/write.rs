//! Writes items back to their wire form: one JSON object, keys in the
//! documented order, the exact inverse of parsing (parsing the line gives
//! the same item back).
//!
//! Defaults are written out (`by`, `fields: {}`) so that a line read by a
//! later version with other defaults still means the same thing.

use serde::Serialize;
use socred_core::record::{Fields, Outcome};
use socred_core::{Day, Fact, FactKind, Record, SubjectId};

use super::Item;

#[derive(Serialize)]
struct RecordLine<'a> {
    provider: &'a str,
    id: &'a str,
    subject: SubjectId,
    #[serde(rename = "type")]
    type_id: &'a str,
    occurred_at: Day,
    decided_at: Day,
    fields: &'a Fields,
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<&'a str>,
}

#[derive(Serialize)]
struct FactLine<'a> {
    fact: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a str>,
    subject: SubjectId,
    at: Day,
    by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    type_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    occurred_at: Option<Day>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_at: Option<Day>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a Fields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement: Option<&'a str>,
}

/// Writes a record or fact as one line of the wire format (no newline).
pub fn to_line(item: &Item) -> String {
    let written = match item {
        Item::Record(record) => serde_json::to_string(&record_line(record)),
        Item::Fact { fact, record_type } => {
            serde_json::to_string(&fact_line(fact, record_type.as_ref()))
        }
    };
    // Serialising these plain structs cannot fail: every map key is a
    // string and every number is finite (parsing refuses the others).
    written.unwrap_or_default()
}

fn record_line(record: &Record) -> RecordLine<'_> {
    RecordLine {
        provider: &record.key.provider,
        id: &record.key.id,
        subject: record.subject,
        type_id: &record.type_id,
        occurred_at: record.occurred_at,
        decided_at: record.decided_at,
        fields: &record.fields,
        document: record.document.as_deref(),
    }
}

fn fact_line<'a>(fact: &'a Fact, record_type: Option<&'a socred_core::Name>) -> FactLine<'a> {
    let mut line = FactLine {
        fact: "",
        provider: fact.record().map(|key| &*key.provider),
        record: fact.record().map(|key| &*key.id),
        subject: fact.subject,
        at: fact.at,
        by: &fact.by,
        outcome: None,
        type_id: record_type.map(|type_id| &**type_id),
        occurred_at: None,
        decided_at: None,
        fields: None,
        statement: None,
    };
    line.fact = match &fact.kind {
        FactKind::Retracted { .. } => "retracted",
        FactKind::Repaired { statement, .. } => {
            line.statement = statement.as_deref();
            "repaired"
        }
        FactKind::Corrected {
            fields,
            occurred_at,
            decided_at,
            ..
        } => {
            line.fields = Some(fields);
            line.occurred_at = *occurred_at;
            line.decided_at = *decided_at;
            "corrected"
        }
        FactKind::Disputed { statement, .. } => {
            line.statement = statement.as_deref();
            "disputed"
        }
        FactKind::Resolved {
            outcome, fields, ..
        } => {
            line.outcome = Some(*outcome);
            line.fields = fields.as_ref();
            "resolved"
        }
        FactKind::ConsentGranted => "consent_granted",
        FactKind::ConsentWithdrawn => "consent_withdrawn",
    };
    line
}
