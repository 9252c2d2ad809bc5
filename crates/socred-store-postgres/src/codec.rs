//! Rows as PostgreSQL returns them, decoded into the store's rows, and the
//! column lists the statements select in that order.

use std::sync::Arc;

use socred_core::state::DerivedEntry;
use socred_core::{Day, RecordKey, SubjectId, SubjectState};
use socred_store::{
    decode_state, empty_state, normalise_state, reopen_entry, sort_derived, AuditDraft, AuditEntry,
    FactKey, FactRow, ItemMeta, Principal, RecordRow, Role, Status, StoreError,
};
use tokio_postgres::Row;

use crate::pool::{decode, Fault};

/// Columns of a record row, in the order [`record_row`] reads them.
macro_rules! record_columns {
    () => {
        "subject, provider, id, type, occurred_at, decided_at, fields, document, \
         status, submitted_by, submitted_at_ms, pending_seq, reviewed_by, review_note"
    };
}
pub(crate) use record_columns;

/// Columns of a fact row, in the order [`fact_row`] reads them.
macro_rules! fact_columns {
    () => {
        "subject, kind, record_provider, record_id, day, reporter, body, status, submitted_by, \
         submitted_at_ms, pending_seq, reviewed_by, review_note"
    };
}
pub(crate) use fact_columns;

/// Columns of an audit entry, in the order [`audit_entry`] reads them.
macro_rules! audit_columns {
    () => {
        "seq, at_ms, actor, role, purpose, action, subject, detail, hash"
    };
}
pub(crate) use audit_columns;

/// Columns of a principal, in the order [`principal`] reads them.
macro_rules! principal_columns {
    () => {
        "id, name, role, scope, record_types, revoked, valid_until"
    };
}
pub(crate) use principal_columns;

pub(crate) fn subject_of(text: &str) -> Result<SubjectId, StoreError> {
    SubjectId::parse(text)
        .map(|parsed| parsed.id)
        .map_err(|error| {
            StoreError::Corrupt(format!("stored subject `{text}` is not valid: {error}"))
        })
}

/// A queue position or entry number as PostgreSQL keeps it (`bigint`).
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value} is negative")))
}

fn meta(row: &Row, first: usize) -> Result<ItemMeta, Fault> {
    let get = decode("read an item's review state");
    let status: i16 = row.try_get(first).map_err(&get)?;
    let pending_seq: i64 = row.try_get(first + 3).map_err(&get)?;
    Ok(ItemMeta {
        status: Status::from_code(i64::from(status))?,
        submitted_by: row.try_get(first + 1).map_err(&get)?,
        submitted_at_ms: row.try_get(first + 2).map_err(&get)?,
        pending_seq: to_u64(pending_seq, "review queue position")?,
        reviewed_by: row.try_get(first + 4).map_err(&get)?,
        review_note: row.try_get(first + 5).map_err(&get)?,
    })
}

/// A record row selected with [`record_columns`].
pub(crate) fn record_row(row: &Row) -> Result<RecordRow, Fault> {
    let get = decode("read a record");
    let subject: &str = row.try_get(0).map_err(&get)?;
    let provider: &str = row.try_get(1).map_err(&get)?;
    let id: &str = row.try_get(2).map_err(&get)?;
    let type_id: &str = row.try_get(3).map_err(&get)?;
    let document: Option<&str> = row.try_get(7).map_err(&get)?;
    Ok(RecordRow {
        key: RecordKey {
            provider: Arc::from(provider),
            id: id.into(),
        },
        subject: subject_of(subject)?,
        type_id: socred_core::Name::new(type_id),
        occurred_at: Day(row.try_get(4).map_err(&get)?),
        decided_at: Day(row.try_get(5).map_err(&get)?),
        fields_json: row.try_get(6).map_err(&get)?,
        document: document.map(Arc::from),
        meta: meta(row, 8)?,
    })
}

/// Consent facts name no record; every other kind names one.
fn names_record(kind: &str) -> bool {
    !kind.starts_with("consent_")
}

/// A fact row selected with [`fact_columns`].
pub(crate) fn fact_row(row: &Row) -> Result<FactRow, Fault> {
    let get = decode("read a fact");
    let subject: &str = row.try_get(0).map_err(&get)?;
    let kind: String = row.try_get(1).map_err(&get)?;
    let provider: &str = row.try_get(2).map_err(&get)?;
    let record: &str = row.try_get(3).map_err(&get)?;
    let by: &str = row.try_get(5).map_err(&get)?;
    let record = names_record(&kind).then(|| RecordKey {
        provider: Arc::from(provider),
        id: record.into(),
    });
    Ok(FactRow {
        key: FactKey {
            subject: subject_of(subject)?,
            kind,
            record,
            at: Day(row.try_get(4).map_err(&get)?),
            by: Arc::from(by),
        },
        body_json: row.try_get(6).map_err(&get)?,
        meta: meta(row, 7)?,
    })
}

/// The record part of a fact key as stored ('' for none).
pub(crate) fn fact_record(key: &FactKey) -> (&str, &str) {
    match &key.record {
        Some(record) => (&record.provider, &record.id),
        None => ("", ""),
    }
}

/// An audit entry selected with [`audit_columns`].
pub(crate) fn audit_entry(row: &Row) -> Result<AuditEntry, Fault> {
    let get = decode("read an audit entry");
    let seq: i64 = row.try_get(0).map_err(&get)?;
    let subject: Option<&str> = row.try_get(6).map_err(&get)?;
    Ok(AuditEntry {
        seq: to_u64(seq, "audit entry number")?,
        entry: AuditDraft {
            at_ms: row.try_get(1).map_err(&get)?,
            actor: row.try_get(2).map_err(&get)?,
            role: row.try_get(3).map_err(&get)?,
            purpose: row.try_get(4).map_err(&get)?,
            action: row.try_get(5).map_err(&get)?,
            subject: subject.map(subject_of).transpose()?,
            detail: row.try_get(7).map_err(&get)?,
        },
        hash: row.try_get(8).map_err(&get)?,
    })
}

/// A principal selected with [`principal_columns`].
pub(crate) fn principal(row: &Row) -> Result<Principal, Fault> {
    let get = decode("read a principal");
    let id: String = row.try_get(0).map_err(&get)?;
    let role: &str = row.try_get(2).map_err(&get)?;
    let record_types: &str = row.try_get(4).map_err(&get)?;
    let record_types: Vec<String> = serde_json::from_str(record_types).map_err(|error| {
        StoreError::Corrupt(format!(
            "record types of principal `{id}` do not read back: {error}"
        ))
    })?;
    Ok(Principal {
        role: role.parse::<Role>()?,
        name: row.try_get(1).map_err(&get)?,
        scope: row.try_get(3).map_err(&get)?,
        record_types,
        revoked: row.try_get(5).map_err(&get)?,
        valid_until: row.try_get::<_, Option<i32>>(6).map_err(&get)?.map(Day),
        id,
    })
}

/// A stored state as the `state` column keeps it: the binary form of
/// `socred_store::codec` (first byte 1 or 2), or the JSON that schema 1
/// kept, as its UTF-8 bytes (first byte `{`, after any white space). The
/// schema 2 migration left existing states as they were; each becomes
/// binary when its subject is next refolded, so both must read.
pub(crate) fn stored_state(subject: SubjectId, bytes: &[u8]) -> Result<SubjectState, StoreError> {
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Binary, or neither: the decoder names the format it does not know.
        return decode_state(subject, bytes);
    }
    let mut state = serde_json::from_slice::<SubjectState>(bytes).map_err(|error| {
        StoreError::Corrupt(format!(
            "stored state of {subject} (JSON) does not read back: {error}"
        ))
    })?;
    // JSON closes open ends at 9999-12-31: reopen them.
    normalise_state(&mut state);
    Ok(state)
}

/// A subject's state from its stored bytes ([`stored_state`]) and the
/// entries reaching it (JSON of each), as the trait returns it; None when
/// both are missing.
pub(crate) fn state(
    subject: SubjectId,
    stored: Option<&[u8]>,
    entries: &[&str],
) -> Result<Option<SubjectState>, StoreError> {
    let mut derived = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut entry: DerivedEntry = serde_json::from_str(entry).map_err(|error| {
            StoreError::Corrupt(format!(
                "an entry reaching {subject} does not read back: {error}"
            ))
        })?;
        reopen_entry(&mut entry);
        derived.push(entry);
    }
    let mut state = match stored {
        Some(bytes) => stored_state(subject, bytes)?,
        None if derived.is_empty() => return Ok(None),
        None => empty_state(subject),
    };
    sort_derived(&mut derived);
    state.derived = derived;
    Ok(Some(state))
}
