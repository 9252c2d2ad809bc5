//! The shared write logic's [`WriteTx`] over one SQLite transaction, and
//! the row codecs it and the reads share. Every statement is prepared once
//! per connection and cached.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::types::ValueRef;
use rusqlite::{params, OptionalExtension, Row, Transaction};
use socred_core::{Day, Record, RecordKey, Rulebook, SubjectId, SubjectState};
use socred_store::{
    chain_hashes, close_entry, decode_state, normalise_state, readback, AuditDraft, CountsDelta,
    EncodedState, FactKey, FactRow, Folded, History, ItemKey, ItemMeta, Readback, RecordRow,
    StateFormat, Status, StoreError, WriteTx, GENESIS_HASH,
};

use crate::cache::{CachedSubject, SubjectCache};
use crate::db;

/// Columns of a record row, in the order [`record_row`] reads them.
pub(crate) const RECORD_COLUMNS: &str =
    "subject, provider, id, type, occurred_at, decided_at, fields, document, \
     status, submitted_by, submitted_at_ms, pending_seq, reviewed_by, review_note";
/// Columns of a fact row, in the order [`fact_row`] reads them.
pub(crate) const FACT_COLUMNS: &str =
    "subject, kind, provider, record, at, by, body, status, submitted_by, \
     submitted_at_ms, pending_seq, reviewed_by, review_note";

pub(crate) fn subject_of(text: &str) -> Result<SubjectId, StoreError> {
    SubjectId::parse(text)
        .map(|parsed| parsed.id)
        .map_err(|error| {
            StoreError::Corrupt(format!("stored subject `{text}` is not valid: {error}"))
        })
}

pub(crate) fn day_of(value: i64) -> Result<Day, StoreError> {
    i32::try_from(value)
        .map(Day)
        .map_err(|_| StoreError::Corrupt(format!("stored day {value} is out of range")))
}

fn meta_of(row: &Row<'_>, first: usize) -> rusqlite::Result<RawMeta> {
    Ok((
        row.get(first)?,
        row.get(first + 1)?,
        row.get(first + 2)?,
        row.get(first + 3)?,
        row.get(first + 4)?,
        row.get(first + 5)?,
    ))
}

fn meta(
    (status, submitted_by, submitted_at_ms, pending_seq, reviewed_by, review_note): RawMeta,
) -> Result<ItemMeta, StoreError> {
    Ok(ItemMeta {
        status: Status::from_code(status)?,
        submitted_by,
        submitted_at_ms,
        pending_seq: u64::try_from(pending_seq).unwrap_or(0),
        reviewed_by,
        review_note,
    })
}

type RawMeta = (i64, String, i64, i64, Option<String>, Option<String>);

/// A record row as SQLite gives it, decoded after the statement is done.
pub(crate) struct RawRecord {
    subject: String,
    provider: String,
    id: String,
    type_id: String,
    occurred_at: i64,
    decided_at: i64,
    fields: String,
    document: Option<String>,
    meta: RawMeta,
}

pub(crate) fn raw_record(row: &Row<'_>) -> rusqlite::Result<RawRecord> {
    Ok(RawRecord {
        subject: row.get(0)?,
        provider: row.get(1)?,
        id: row.get(2)?,
        type_id: row.get(3)?,
        occurred_at: row.get(4)?,
        decided_at: row.get(5)?,
        fields: row.get(6)?,
        document: row.get(7)?,
        meta: meta_of(row, 8)?,
    })
}

impl RawRecord {
    pub(crate) fn decode(self) -> Result<RecordRow, StoreError> {
        Ok(RecordRow {
            key: RecordKey {
                provider: Arc::from(self.provider),
                id: self.id.into(),
            },
            subject: subject_of(&self.subject)?,
            type_id: socred_core::Name::new(&self.type_id),
            occurred_at: day_of(self.occurred_at)?,
            decided_at: day_of(self.decided_at)?,
            fields_json: self.fields,
            document: self.document.map(Arc::from),
            meta: meta(self.meta)?,
        })
    }
}

pub(crate) struct RawFact {
    subject: String,
    kind: String,
    provider: String,
    record: String,
    at: i64,
    by: String,
    body: String,
    meta: RawMeta,
}

pub(crate) fn raw_fact(row: &Row<'_>) -> rusqlite::Result<RawFact> {
    Ok(RawFact {
        subject: row.get(0)?,
        kind: row.get(1)?,
        provider: row.get(2)?,
        record: row.get(3)?,
        at: row.get(4)?,
        by: row.get(5)?,
        body: row.get(6)?,
        meta: meta_of(row, 7)?,
    })
}

/// Consent facts name no record; every other kind names one.
fn names_record(kind: &str) -> bool {
    !kind.starts_with("consent_")
}

impl RawFact {
    pub(crate) fn decode(self) -> Result<FactRow, StoreError> {
        let record = names_record(&self.kind).then(|| RecordKey {
            provider: Arc::from(self.provider),
            id: self.record.into(),
        });
        Ok(FactRow {
            key: FactKey {
                subject: subject_of(&self.subject)?,
                kind: self.kind,
                record,
                at: day_of(self.at)?,
                by: Arc::from(self.by),
            },
            body_json: self.body,
            meta: meta(self.meta)?,
        })
    }
}

/// The record part of a fact key as stored ('' for none).
pub(crate) fn fact_record(key: &FactKey) -> (&str, &str) {
    match &key.record {
        Some(record) => (&record.provider, &record.id),
        None => ("", ""),
    }
}

/// A stored state, from either form the `state` column holds: a blob in
/// the binary form of `socred_store::encode_state` (what the store
/// writes), or text holding the core's JSON (a state written by hand still
/// reads).
pub(crate) fn decode_stored_state(
    subject: SubjectId,
    value: ValueRef<'_>,
) -> Result<SubjectState, StoreError> {
    match value {
        ValueRef::Blob(bytes) => decode_state(subject, bytes),
        ValueRef::Text(json) => {
            let mut state: SubjectState = serde_json::from_slice(json).map_err(|error| {
                StoreError::Corrupt(format!(
                    "stored state of {subject} does not read back: {error}"
                ))
            })?;
            normalise_state(&mut state);
            Ok(state)
        }
        other => Err(StoreError::Corrupt(format!(
            "stored state of {subject} is neither a blob nor text ({:?})",
            other.data_type()
        ))),
    }
}

/// The row numbers of a subject's records in effect as the `records`
/// column of its state keeps them: ascending, each as its difference from
/// the one before, in LEB128. A subject's records are found through its
/// state rather than an index by subject, which would cost a random page
/// per record stored.
pub(crate) fn encode_rowids(rowids: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rowids.len() * 3);
    let mut previous = 0i64;
    for &rowid in rowids {
        let mut delta = rowid.wrapping_sub(previous) as u64;
        previous = rowid;
        while delta >= 0x80 {
            out.push((delta as u8) | 0x80);
            delta >>= 7;
        }
        out.push(delta as u8);
    }
    out
}

/// Reads [`encode_rowids`]' form back.
pub(crate) fn decode_rowids(subject: SubjectId, bytes: &[u8]) -> Result<Vec<i64>, StoreError> {
    let corrupt = || {
        StoreError::Corrupt(format!(
            "the list of records of {subject} in its state row does not read back"
        ))
    };
    let mut rowids = Vec::with_capacity(bytes.len());
    let mut previous = 0i64;
    let mut value = 0u64;
    let mut shift = 0u32;
    for &byte in bytes {
        if shift > 63 {
            return Err(corrupt());
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            previous = previous.wrapping_add(value as i64);
            rowids.push(previous);
            value = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    if shift != 0 {
        return Err(corrupt());
    }
    Ok(rowids)
}

/// Columns of an audit row, in the order the inserts below bind them.
const AUDIT_COLUMNS: usize = 9;
/// Audit rows per multi-row insert.
const AUDIT_ROWS: usize = 32;
const AUDIT_INSERT_ONE: &str =
    "INSERT INTO audit (seq, at_ms, actor, role, purpose, action, subject, detail, hash) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// [`AUDIT_INSERT_ONE`] for [`AUDIT_ROWS`] rows.
static AUDIT_INSERT_MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
    format!(
        "INSERT INTO audit (seq, at_ms, actor, role, purpose, action, subject, detail, hash) VALUES {}",
        vec![row; AUDIT_ROWS].join(", ")
    )
});

/// What a transaction learnt about a subject's stored state when it
/// loaded the subject, so that writing the new state needs no second look.
#[derive(Clone, Debug)]
struct Loaded {
    /// The subject had a state.
    existed: bool,
    /// It was the source of list or derived rows.
    sources: bool,
    /// Its records in effect, with those this transaction added.
    rowids: Vec<i64>,
    /// The day kept beside its state, as stored (`states.retention_ends`).
    retention_ends: Option<i64>,
}

/// What a transaction did to one subject.
#[derive(Debug, Default)]
struct TxSubject {
    /// Records put in effect: row number, and what reading the row back
    /// gives, when that is known without reading it.
    added: Vec<(i64, Readback)>,
    /// A fact was put in effect, or deleted.
    facts_changed: bool,
    loaded: Option<Loaded>,
}

/// What a committed transaction hands to the writer's cache.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    pub subjects: Vec<(SubjectId, CachedSubject)>,
    /// Subjects whose state, or entries reaching them, the transaction
    /// changed (for [`crate::cache::CoherentStates`]).
    pub changed: Vec<SubjectId>,
}

/// A write transaction of the store, with the writer's cache of decoded
/// histories when the write folds (see [`crate::cache`]).
pub(crate) struct SqliteTx<'c, 'k> {
    pub tx: Transaction<'c>,
    /// The cache, valid for `rulebook`; None when the write folds nothing.
    cache: Option<(&'k mut SubjectCache, Arc<Rulebook>)>,
    subjects: HashMap<SubjectId, TxSubject>,
    staged: Staged,
}

impl<'c, 'k> SqliteTx<'c, 'k> {
    pub(crate) fn new(
        tx: Transaction<'c>,
        cache: Option<(&'k mut SubjectCache, Arc<Rulebook>)>,
    ) -> SqliteTx<'c, 'k> {
        SqliteTx {
            tx,
            cache,
            subjects: HashMap::new(),
            staged: Staged::default(),
        }
    }

    /// The transaction and what the caches learn once it commits.
    pub(crate) fn into_parts(self) -> (Transaction<'c>, Staged) {
        (self.tx, self.staged)
    }

    /// Stamps the state of `target`, which an entry of `source` reaches or
    /// stopped reaching, as changed by this write (`Store::subjects_changed`).
    fn stamp_reached(
        &self,
        source: SubjectId,
        target: SubjectId,
        changed_ms: i64,
    ) -> Result<(), StoreError> {
        if target == source {
            return Ok(());
        }
        self.tx
            .prepare_cached(
                "UPDATE states SET changed_ms = ?2 WHERE subject = ?1 AND changed_ms < ?2",
            )
            .and_then(|mut stmt| stmt.execute(params![target.as_str(), changed_ms]))
            .map_err(db("stamp a subject reached"))?;
        Ok(())
    }

    /// What the subject's state row keeps beside the state.
    fn stored(&self, subject: SubjectId) -> Result<Option<StoredMeta>, StoreError> {
        stored_state_meta(&self.tx, subject)
    }

    fn counter_add(&mut self, name: &str, delta: i64) -> Result<(), StoreError> {
        if delta == 0 {
            return Ok(());
        }
        self.tx
            .prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1")
            .and_then(|mut stmt| stmt.execute(params![name, delta]))
            .map_err(db("update the counters"))?;
        Ok(())
    }

    pub(crate) fn add(&mut self, name: &str, delta: i64) -> Result<(), StoreError> {
        self.counter_add(name, delta)
    }

    /// The history from the cache, when it holds the subject and every
    /// record this transaction added is known without reading its row.
    fn cached_history(
        &mut self,
        subject: SubjectId,
        changes: &mut TxSubject,
    ) -> Result<Option<(History, Loaded)>, StoreError> {
        let Some((cache, _)) = &mut self.cache else {
            return Ok(None);
        };
        if changes
            .added
            .iter()
            .any(|(_, back)| *back == Readback::ReadTheRow)
        {
            return Ok(None);
        }
        let Some(cached) = cache.take(&subject) else {
            return Ok(None);
        };
        let CachedSubject {
            mut rowids,
            mut records,
            facts,
            sources,
            retention_ends,
        } = cached;
        records.reserve(changes.added.len());
        rowids.reserve(changes.added.len());
        for (rowid, back) in std::mem::take(&mut changes.added) {
            rowids.push(rowid);
            if let Readback::Record(record) = back {
                records.push(record);
            }
        }
        rowids.sort_unstable();
        rowids.dedup();
        let facts = if changes.facts_changed {
            let rows = load_facts(&self.tx, subject)?;
            let mut facts = Vec::with_capacity(rows.len());
            for row in &rows {
                facts.push(row.to_fact()?.0);
            }
            facts
        } else {
            facts
        };
        let loaded = Loaded {
            existed: true,
            sources,
            rowids,
            retention_ends,
        };
        Ok(Some((History::Decoded { records, facts }, loaded)))
    }

    /// The history of a subject without a stored state: what this
    /// transaction added. Its records are read back from their rows only
    /// when that is the only way to know what they read as.
    fn new_subject(
        &mut self,
        subject: SubjectId,
        mut changes: TxSubject,
    ) -> Result<History, StoreError> {
        let mut rowids: Vec<i64> = changes.added.iter().map(|(rowid, _)| *rowid).collect();
        rowids.sort_unstable();
        rowids.dedup();
        let facts = if changes.facts_changed {
            load_facts(&self.tx, subject)?
        } else {
            Vec::new()
        };
        let read_rows = changes
            .added
            .iter()
            .any(|(_, back)| *back == Readback::ReadTheRow);
        let history = if read_rows {
            History::Rows {
                records: load_records(&self.tx, subject, &rowids)?,
                facts,
            }
        } else {
            let mut decoded = Vec::with_capacity(facts.len());
            for row in &facts {
                decoded.push(row.to_fact()?.0);
            }
            let records = std::mem::take(&mut changes.added)
                .into_iter()
                .filter_map(|(_, back)| match back {
                    Readback::Record(record) => Some(record),
                    Readback::UnknownType | Readback::ReadTheRow => None,
                })
                .collect();
            History::Decoded {
                records,
                facts: decoded,
            }
        };
        self.subjects.insert(
            subject,
            TxSubject {
                loaded: Some(Loaded {
                    existed: false,
                    sources: false,
                    rowids,
                    retention_ends: None,
                }),
                ..changes
            },
        );
        Ok(history)
    }
}

impl WriteTx for SqliteTx<'_, '_> {
    fn insert_record(
        &mut self,
        row: &RecordRow,
        record: &Record,
    ) -> Result<Option<RecordRow>, StoreError> {
        let meta = &row.meta;
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT INTO records (subject, provider, id, type, occurred_at, decided_at, fields, document, \
                 status, submitted_by, submitted_at_ms, pending_seq, reviewed_by, review_note) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    row.subject.as_str(),
                    &*row.key.provider,
                    &*row.key.id,
                    &*row.type_id,
                    row.occurred_at.0,
                    row.decided_at.0,
                    row.fields_json,
                    row.document.as_deref(),
                    meta.status.code(),
                    meta.submitted_by,
                    meta.submitted_at_ms,
                    i64::try_from(meta.pending_seq).unwrap_or(i64::MAX),
                    meta.reviewed_by,
                    meta.review_note,
                ])
            })
            .map_err(db("insert a record"))?;
        if inserted == 1 {
            if meta.status == Status::Effective {
                let rowid = self.tx.last_insert_rowid();
                let back = match &self.cache {
                    Some((_, rulebook)) => readback(rulebook, record),
                    None => Readback::ReadTheRow,
                };
                self.subjects
                    .entry(row.subject)
                    .or_default()
                    .added
                    .push((rowid, back));
            }
            return Ok(None);
        }
        match self.record(&row.key)? {
            Some(held) => Ok(Some(held)),
            None => Err(StoreError::Corrupt(format!(
                "record {}/{} was refused as a duplicate but is not stored",
                row.key.provider, row.key.id
            ))),
        }
    }

    fn insert_fact(&mut self, row: &FactRow) -> Result<Option<FactRow>, StoreError> {
        let (provider, record) = fact_record(&row.key);
        let meta = &row.meta;
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT INTO facts (subject, kind, provider, record, at, by, body, status, submitted_by, \
                 submitted_at_ms, pending_seq, reviewed_by, review_note) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    row.key.subject.as_str(),
                    row.key.kind,
                    provider,
                    record,
                    row.key.at.0,
                    &*row.key.by,
                    row.body_json,
                    meta.status.code(),
                    meta.submitted_by,
                    meta.submitted_at_ms,
                    i64::try_from(meta.pending_seq).unwrap_or(i64::MAX),
                    meta.reviewed_by,
                    meta.review_note,
                ])
            })
            .map_err(db("insert a fact"))?;
        if inserted == 1 {
            if meta.status == Status::Effective {
                self.subjects
                    .entry(row.key.subject)
                    .or_default()
                    .facts_changed = true;
            }
            return Ok(None);
        }
        match self.fact(&row.key)? {
            Some(held) => Ok(Some(held)),
            None => Err(StoreError::Corrupt(format!(
                "{} was refused as a duplicate but is not stored",
                ItemKey::Fact(row.key.clone())
            ))),
        }
    }

    fn record(&mut self, key: &RecordKey) -> Result<Option<RecordRow>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE provider = ?1 AND id = ?2");
        let raw = self
            .tx
            .prepare_cached(&sql)
            .and_then(|mut stmt| {
                stmt.query_row(params![&*key.provider, &*key.id], raw_record)
                    .optional()
            })
            .map_err(db("read a record by key"))?;
        raw.map(RawRecord::decode).transpose()
    }

    fn fact(&mut self, key: &FactKey) -> Result<Option<FactRow>, StoreError> {
        let (provider, record) = fact_record(key);
        let sql = format!(
            "SELECT {FACT_COLUMNS} FROM facts WHERE subject = ?1 AND kind = ?2 AND provider = ?3 AND record = ?4 \
             AND at = ?5 AND by = ?6"
        );
        let raw = self
            .tx
            .prepare_cached(&sql)
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![
                        key.subject.as_str(),
                        key.kind,
                        provider,
                        record,
                        key.at.0,
                        &*key.by
                    ],
                    raw_fact,
                )
                .optional()
            })
            .map_err(db("read a fact by key"))?;
        raw.map(RawFact::decode).transpose()
    }

    fn set_meta(&mut self, key: &ItemKey, meta: &ItemMeta) -> Result<(), StoreError> {
        let values = (meta.status.code(), &meta.reviewed_by, &meta.review_note);
        match key {
            ItemKey::Record(key) => {
                let changed: Option<(i64, String)> = self
                    .tx
                    .prepare_cached(
                        "UPDATE records SET status = ?3, reviewed_by = ?4, review_note = ?5 \
                         WHERE provider = ?1 AND id = ?2 RETURNING seq, subject",
                    )
                    .and_then(|mut stmt| {
                        stmt.query_row(
                            params![&*key.provider, &*key.id, values.0, values.1, values.2],
                            |row| Ok((row.get(0)?, row.get(1)?)),
                        )
                        .optional()
                    })
                    .map_err(db("update a review"))?;
                let Some((rowid, subject)) = changed else {
                    return Err(StoreError::NotFound(
                        ItemKey::Record(key.clone()).to_string(),
                    ));
                };
                if meta.status == Status::Effective {
                    // Rare: the subject's records are read back from the file.
                    self.subjects
                        .entry(subject_of(&subject)?)
                        .or_default()
                        .added
                        .push((rowid, Readback::ReadTheRow));
                }
            }
            ItemKey::Fact(fact) => {
                let (provider, record) = fact_record(fact);
                let changed = self
                    .tx
                    .prepare_cached(
                        "UPDATE facts SET status = ?7, reviewed_by = ?8, review_note = ?9 WHERE subject = ?1 \
                         AND kind = ?2 AND provider = ?3 AND record = ?4 AND at = ?5 AND by = ?6",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            fact.subject.as_str(),
                            fact.kind,
                            provider,
                            record,
                            fact.at.0,
                            &*fact.by,
                            values.0,
                            values.1,
                            values.2
                        ])
                    })
                    .map_err(db("update a review"))?;
                if changed == 0 {
                    return Err(StoreError::NotFound(key.to_string()));
                }
                if meta.status == Status::Effective {
                    self.subjects.entry(fact.subject).or_default().facts_changed = true;
                }
            }
        }
        Ok(())
    }

    fn next_pending_seq(&mut self) -> Result<u64, StoreError> {
        let seq: i64 = self
            .tx
            .prepare_cached(
                "UPDATE counters SET value = value + 1 WHERE name = 'pending_seq' RETURNING value",
            )
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .map_err(db("take a review queue position"))?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    fn load_subject(&mut self, subject: SubjectId) -> Result<History, StoreError> {
        let mut changes = self.subjects.remove(&subject).unwrap_or_default();
        if let Some((history, loaded)) = self.cached_history(subject, &mut changes)? {
            self.subjects.insert(
                subject,
                TxSubject {
                    loaded: Some(loaded),
                    ..changes
                },
            );
            return Ok(history);
        }
        let stored = self.stored(subject)?;
        let Some(StoredMeta {
            sources,
            facts: stored_facts,
            mut rowids,
            retention_ends,
        }) = stored
        else {
            return self.new_subject(subject, changes);
        };
        rowids.extend(changes.added.iter().map(|(rowid, _)| *rowid));
        rowids.sort_unstable();
        rowids.dedup();
        let records = load_records(&self.tx, subject, &rowids)?;
        let facts = if stored_facts > 0 || changes.facts_changed {
            load_facts(&self.tx, subject)?
        } else {
            Vec::new()
        };
        self.subjects.insert(
            subject,
            TxSubject {
                loaded: Some(Loaded {
                    existed: true,
                    sources,
                    rowids,
                    retention_ends,
                }),
                ..changes
            },
        );
        Ok(History::Rows { records, facts })
    }

    fn state_format(&self) -> StateFormat {
        StateFormat::Binary
    }

    fn write_state(&mut self, folded: Folded) -> Result<bool, StoreError> {
        let subject = folded.subject;
        let key = subject.as_str();
        let loaded = match self.subjects.get(&subject).and_then(|s| s.loaded.clone()) {
            Some(loaded) => loaded,
            None => {
                let stored = self.stored(subject)?;
                let existed = stored.is_some();
                let meta = stored.unwrap_or_default();
                Loaded {
                    existed,
                    sources: meta.sources,
                    rowids: meta.rowids,
                    retention_ends: meta.retention_ends,
                }
            }
        };
        self.staged.changed.push(subject);
        if loaded.sources {
            self.tx
                .prepare_cached("DELETE FROM list_entries WHERE source = ?1")
                .and_then(|mut stmt| stmt.execute([key]))
                .map_err(db("clear a subject's list entries"))?;
            // The subjects its entries reached change too.
            let reached: Vec<String> = self
                .tx
                .prepare_cached("DELETE FROM derived WHERE source = ?1 RETURNING target")
                .and_then(|mut stmt| {
                    stmt.query_map([key], |row| row.get(0))?
                        .collect::<rusqlite::Result<_>>()
                })
                .map_err(db("clear a subject's derived entries"))?;
            for target in reached {
                let target = subject_of(&target)?;
                self.staged.changed.push(target);
                self.stamp_reached(subject, target, folded.changed_ms)?;
            }
        }
        let sources = !folded.rows.is_empty() || !folded.derived.is_empty();
        let rowids = encode_rowids(&loaded.rowids);
        let state: &dyn rusqlite::ToSql = match &folded.encoded {
            EncodedState::Binary(bytes) => bytes,
            EncodedState::Json(json) => json,
        };
        // The subject is known to have a row or not: one b-tree descent
        // either way, where an upsert of an existing row takes two. The day
        // beside the state is set only when it changes: setting it to the
        // same value still rewrites its index entry.
        let retention_ends = folded.retention_ends.map(|day| i64::from(day.0));
        let facts = folded.facts.len() as i64;
        let sources_flag = i64::from(sources);
        let changed = folded.changed_ms;
        let with_day = if !loaded.existed {
            Some(
                "INSERT INTO states (subject, state, sources, facts, records, changed_ms, \
                 retention_ends) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
        } else if loaded.retention_ends != retention_ends {
            Some(
                "UPDATE states SET state = ?2, sources = ?3, facts = ?4, records = ?5, \
                 changed_ms = ?6, retention_ends = ?7 WHERE subject = ?1",
            )
        } else {
            None
        };
        let written = match with_day {
            Some(sql) => self.tx.prepare_cached(sql).and_then(|mut stmt| {
                stmt.execute(params![
                    key,
                    state,
                    sources_flag,
                    facts,
                    rowids,
                    changed,
                    retention_ends
                ])
            }),
            None => self
                .tx
                .prepare_cached(
                    "UPDATE states SET state = ?2, sources = ?3, facts = ?4, records = ?5, \
                     changed_ms = ?6 WHERE subject = ?1",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![key, state, sources_flag, facts, rowids, changed])
                }),
        }
        .map_err(db("write a state"))?;
        if written != 1 {
            return Err(StoreError::Corrupt(format!(
                "the state row of {subject} vanished while the write held the lock"
            )));
        }
        if !folded.rows.is_empty() {
            let mut stmt = self
                .tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO list_entries (list, subject, source, start, end, entry_start, entry_end) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(db("prepare list entries"))?;
            for row in &folded.rows {
                stmt.execute(params![
                    &*row.list,
                    row.subject.as_str(),
                    row.source.as_str(),
                    row.start.0,
                    row.end.0,
                    row.entry.start.0,
                    row.entry.end.0
                ])
                .map_err(db("write a list entry"))?;
            }
        }
        if !folded.derived.is_empty() {
            let mut stmt = self
                .tx
                .prepare_cached(
                    "INSERT INTO derived (target, source, n, entry) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db("prepare derived entries"))?;
            self.staged
                .changed
                .extend(folded.derived.iter().map(|(target, _)| *target));
            let mut targets: Vec<SubjectId> = folded.derived.iter().map(|(t, _)| *t).collect();
            targets.dedup();
            for target in targets {
                self.stamp_reached(subject, target, changed)?;
            }
            for (n, (target, entry)) in folded.derived.iter().enumerate() {
                let mut entry = entry.clone();
                close_entry(&mut entry);
                let json = serde_json::to_string(&entry).map_err(|error| {
                    StoreError::Corrupt(format!(
                        "an entry reaching {target} does not serialise: {error}"
                    ))
                })?;
                stmt.execute(params![target.as_str(), key, n as i64, json])
                    .map_err(db("write a derived entry"))?;
            }
        }
        if self.cache.is_some() {
            self.staged.subjects.push((
                subject,
                CachedSubject {
                    rowids: loaded.rowids,
                    records: folded.records,
                    facts: folded.facts,
                    sources,
                    retention_ends,
                },
            ));
        }
        Ok(!loaded.existed)
    }

    fn set_retention_ends(
        &mut self,
        subject: SubjectId,
        day: Option<Day>,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("UPDATE states SET retention_ends = ?2 WHERE subject = ?1")
            .and_then(|mut stmt| {
                stmt.execute(params![subject.as_str(), day.map(|day| i64::from(day.0))])
            })
            .map_err(db("keep the day a state's retention ends"))?;
        // Copies of the column read before are stale now.
        if let Some(loaded) = self
            .subjects
            .get_mut(&subject)
            .and_then(|s| s.loaded.as_mut())
        {
            loaded.retention_ends = day.map(|day| i64::from(day.0));
        }
        if let Some((cache, _)) = &mut self.cache {
            cache.take(&subject);
        }
        Ok(())
    }

    fn add_counts(&mut self, delta: CountsDelta) -> Result<(), StoreError> {
        self.counter_add("subjects", delta.subjects)?;
        self.counter_add("records", delta.records)?;
        self.counter_add("facts", delta.facts)?;
        self.counter_add("pending", delta.pending)
    }

    fn erase_record(&mut self, tombstone: &RecordRow) -> Result<(), StoreError> {
        let key = &tombstone.key;
        let meta = &tombstone.meta;
        let rowid: Option<i64> = self
            .tx
            .prepare_cached(
                "UPDATE records SET type = ?3, occurred_at = ?4, decided_at = ?5, fields = ?6, \
                 document = ?7, status = ?8, reviewed_by = ?9, review_note = ?10 \
                 WHERE provider = ?1 AND id = ?2 AND subject = ?11 RETURNING seq",
            )
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![
                        &*key.provider,
                        &*key.id,
                        &*tombstone.type_id,
                        tombstone.occurred_at.0,
                        tombstone.decided_at.0,
                        tombstone.fields_json,
                        tombstone.document.as_deref(),
                        meta.status.code(),
                        meta.reviewed_by,
                        meta.review_note,
                        tombstone.subject.as_str(),
                    ],
                    |row| row.get(0),
                )
                .optional()
            })
            .map_err(db("erase a record"))?;
        let Some(rowid) = rowid else {
            return Err(StoreError::NotFound(
                ItemKey::Record(key.clone()).to_string(),
            ));
        };
        // Its row number leaves the list the new state is written with
        // (the erasure loaded the subject first; its fold of what is left
        // goes to the writer's cache with the new state).
        let changes = self.subjects.entry(tombstone.subject).or_default();
        if let Some(loaded) = &mut changes.loaded {
            loaded.rowids.retain(|&r| r != rowid);
        }
        Ok(())
    }

    fn records_not_in_effect(&mut self, subject: SubjectId) -> Result<Vec<RecordRow>, StoreError> {
        // Each status by its own partial index (schemas 6 and 7).
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE status = 1 AND subject = ?1 \
             UNION ALL SELECT {RECORD_COLUMNS} FROM records WHERE status = 2 AND subject = ?1"
        );
        let raw: Vec<RawRecord> = self
            .tx
            .prepare_cached(&sql)
            .and_then(|mut stmt| {
                stmt.query_map([subject.as_str()], raw_record)?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(db("read a subject's records not in effect"))?;
        raw.into_iter().map(RawRecord::decode).collect()
    }

    fn facts_not_in_effect(&mut self, subject: SubjectId) -> Result<Vec<FactRow>, StoreError> {
        subject_facts(
            &self.tx,
            subject,
            "status IN (1, 2)",
            "read a subject's facts not in effect",
        )
    }

    fn delete_fact(&mut self, key: &FactKey) -> Result<(), StoreError> {
        let (provider, record) = fact_record(key);
        let deleted = self
            .tx
            .prepare_cached(
                "DELETE FROM facts WHERE subject = ?1 AND kind = ?2 AND provider = ?3 AND record = ?4 \
                 AND at = ?5 AND by = ?6",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    key.subject.as_str(),
                    key.kind,
                    provider,
                    record,
                    key.at.0,
                    &*key.by
                ])
            })
            .map_err(db("delete a fact"))?;
        if deleted == 0 {
            return Err(StoreError::NotFound(ItemKey::Fact(key.clone()).to_string()));
        }
        self.subjects.entry(key.subject).or_default().facts_changed = true;
        Ok(())
    }

    fn append_audit(&mut self, drafts: &[AuditDraft]) -> Result<Vec<u64>, StoreError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        // The head is read inside this (immediate) transaction: whichever
        // process appends, the chain continues from the committed head.
        let head: Option<(i64, String)> = self
            .tx
            .prepare_cached("SELECT seq, hash FROM audit_head WHERE one = 1")
            .and_then(|mut stmt| {
                stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
            })
            .map_err(db("read the audit chain head"))?;
        let (seq, hash) = head.unwrap_or((0, GENESIS_HASH.to_string()));
        let seq = u64::try_from(seq)
            .map_err(|_| StoreError::Corrupt(format!("audit chain head at entry {seq}")))?;
        let hashes = chain_hashes((seq, &hash), drafts);
        // Full chunks go in as one statement of AUDIT_ROWS rows, which saves
        // a statement's round per row; the rest one by one.
        let mut next = seq;
        for (drafts, hashes) in drafts.chunks(AUDIT_ROWS).zip(hashes.chunks(AUDIT_ROWS)) {
            let many = drafts.len() == AUDIT_ROWS;
            let mut stmt = self
                .tx
                .prepare_cached(if many {
                    &AUDIT_INSERT_MANY
                } else {
                    AUDIT_INSERT_ONE
                })
                .map_err(db("prepare audit entries"))?;
            for (row, (draft, hash)) in drafts.iter().zip(hashes).enumerate() {
                next += 1;
                let seq = next as i64;
                let subject = draft.subject.as_ref().map(SubjectId::as_str);
                let values: [&dyn rusqlite::ToSql; AUDIT_COLUMNS] = [
                    &seq,
                    &draft.at_ms,
                    &draft.actor,
                    &draft.role,
                    &draft.purpose,
                    &draft.action,
                    &subject,
                    &draft.detail,
                    hash,
                ];
                let first = if many { row * AUDIT_COLUMNS } else { 0 };
                for (column, value) in values.into_iter().enumerate() {
                    stmt.raw_bind_parameter(first + column + 1, value)
                        .map_err(db("bind an audit entry"))?;
                }
                if !many {
                    stmt.raw_execute().map_err(db("append an audit entry"))?;
                }
            }
            if many {
                stmt.raw_execute().map_err(db("append audit entries"))?;
            }
        }
        let last_hash = hashes.last().map_or(hash.as_str(), String::as_str);
        self.tx
            .prepare_cached(
                "INSERT INTO audit_head (one, seq, hash) VALUES (1, ?1, ?2) \
                 ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            )
            .and_then(|mut stmt| stmt.execute(params![next as i64, last_hash]))
            .map_err(db("move the audit chain head"))?;
        // No counter: the head's number is the count (entries are numbered
        // from 1 and never removed), and leaving the counters' page alone
        // saves a page in the log at every commit of the decisions' log.
        Ok((seq + 1..=next).collect())
    }
}

/// (sources, facts, record row numbers) of a subject's stored state, on
/// any connection.
/// What a state's row keeps beside the state.
#[derive(Debug, Default)]
struct StoredMeta {
    sources: bool,
    facts: usize,
    rowids: Vec<i64>,
    retention_ends: Option<i64>,
}

fn stored_state_meta(
    conn: &rusqlite::Connection,
    subject: SubjectId,
) -> Result<Option<StoredMeta>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT sources, facts, records, retention_ends FROM states WHERE subject = ?1",
        )
        .map_err(db("read a state's bookkeeping"))?;
    let mut rows = stmt
        .query([subject.as_str()])
        .map_err(db("read a state's bookkeeping"))?;
    let Some(row) = rows.next().map_err(db("read a state's bookkeeping"))? else {
        return Ok(None);
    };
    let sources: i64 = row.get(0).map_err(db("read a state's bookkeeping"))?;
    let facts: i64 = row.get(1).map_err(db("read a state's bookkeeping"))?;
    let rowids = match row.get_ref(2).map_err(db("read a state's bookkeeping"))? {
        ValueRef::Blob(bytes) => decode_rowids(subject, bytes)?,
        other => {
            return Err(StoreError::Corrupt(format!(
                "the list of records of {subject} is not a blob ({:?})",
                other.data_type()
            )))
        }
    };
    let retention_ends: Option<i64> = row.get(3).map_err(db("read a state's bookkeeping"))?;
    Ok(Some(StoredMeta {
        sources: sources == 1,
        facts: usize::try_from(facts).unwrap_or(usize::MAX),
        rowids,
        retention_ends,
    }))
}

/// The records and facts in effect about `subject`, on any connection.
pub(crate) fn load_subject(
    conn: &rusqlite::Connection,
    subject: SubjectId,
) -> Result<(Vec<RecordRow>, Vec<FactRow>), StoreError> {
    let rowids = stored_state_meta(conn, subject)?
        .map(|meta| meta.rowids)
        .unwrap_or_default();
    Ok((
        load_records(conn, subject, &rowids)?,
        load_facts(conn, subject)?,
    ))
}

/// The records under `rowids` that are in effect, ordered by key.
fn load_records(
    conn: &rusqlite::Connection,
    subject: SubjectId,
    rowids: &[i64],
) -> Result<Vec<RecordRow>, StoreError> {
    // One statement for all of them, the row numbers as a JSON array: a
    // statement per record cost a statement's round each.
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM records WHERE seq IN (SELECT value FROM json_each(?1)) \
         AND status = 0"
    );
    let list = serde_json::to_string(rowids).map_err(|error| {
        StoreError::Corrupt(format!(
            "the record numbers of {subject} do not write: {error}"
        ))
    })?;
    let mut raw: Vec<RawRecord> = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map([list], raw_record)?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(db("load a subject's records"))?;
    // Ordered by key, as an index by key would give them: the fold does not
    // depend on the order, but equal inputs should look equal.
    raw.sort_unstable_by(|a, b| (&a.provider, &a.id).cmp(&(&b.provider, &b.id)));
    let rows = raw
        .into_iter()
        .map(RawRecord::decode)
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(other) = rows.iter().find(|row| row.subject != subject) {
        return Err(StoreError::Corrupt(format!(
            "the list of records of {subject} names record {}/{}, which is about {}",
            other.key.provider, other.key.id, other.subject
        )));
    }
    Ok(rows)
}

fn load_facts(conn: &rusqlite::Connection, subject: SubjectId) -> Result<Vec<FactRow>, StoreError> {
    subject_facts(conn, subject, "status = 0", "load a subject's facts")
}

/// A subject's facts whose status meets `status` (an SQL condition), a
/// range of the primary key.
fn subject_facts(
    conn: &rusqlite::Connection,
    subject: SubjectId,
    status: &str,
    what: &str,
) -> Result<Vec<FactRow>, StoreError> {
    let sql = format!("SELECT {FACT_COLUMNS} FROM facts WHERE subject = ?1 AND {status}");
    let raw = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map([subject.as_str()], raw_fact)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db(what))?;
    raw.into_iter().map(RawFact::decode).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_number_lists_read_back() {
        let subject = socred_store::conformance::example_person();
        for rowids in [
            vec![],
            vec![1],
            vec![1, 2, 3, 127, 128, 300, 1 << 40],
            vec![i64::MAX],
        ] {
            let bytes = encode_rowids(&rowids);
            assert_eq!(decode_rowids(subject, &bytes).expect("decode"), rowids);
        }
        assert!(decode_rowids(subject, &[0x80]).is_err(), "a cut number");
        assert!(
            decode_rowids(subject, &[0xff; 11]).is_err(),
            "an overlong number"
        );
    }
}
