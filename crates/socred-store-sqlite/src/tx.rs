//! The shared write logic's [`WriteTx`] over one SQLite transaction, and
//! the row codecs it and the reads share. Every statement is prepared once
//! per connection and cached.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rusqlite::{params, OptionalExtension, Row, Transaction};
use socred_core::state::DerivedEntry;
use socred_core::{Day, RecordKey, SubjectId};
use socred_store::{
    chain_drafts, close_entry, AuditDraft, CountsDelta, FactKey, FactRow, ItemKey, ItemMeta,
    ListRow, RecordRow, Status, StoreError, WriteTx, GENESIS_HASH,
};

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

fn day_of(value: i64) -> Result<Day, StoreError> {
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
                id: Arc::from(self.id),
            },
            subject: subject_of(&self.subject)?,
            type_id: Arc::from(self.type_id),
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
            id: Arc::from(self.record),
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

/// The stored form of a state: its JSON compressed with LZ4 (a block
/// preceded by its length) against [`STATE_DICTIONARY`], as a blob. A
/// state's JSON repeats the same keys for every record and effect; with the
/// dictionary even a state of one record finds them, and a state shrinks
/// about fourfold. A smaller row means fewer pages written per batch, which
/// is what durable ingestion spends its time on (every touched subject's
/// row is rewritten, and a random subject is a random page). Text in the
/// column is a state written as plain JSON (edited by hand, say) and still
/// reads.
pub(crate) fn compress_state(json: &str) -> Vec<u8> {
    lz4_flex::block::compress_prepend_size_with_dict(json.as_bytes(), STATE_DICTIONARY)
}

/// What a state's JSON is compressed against: its keys in the order the
/// core writes them. Part of the stored format: changing a byte of it makes
/// every stored state unreadable, so it never changes (a block compressed
/// without it, as the first stored form was, reads the same with it).
const STATE_DICTIONARY: &[u8] = br#"{"orphan_facts":[],"relations":[{"name":"","subject":""}],"profession":"","consent":[["",true]],"document":"","public_until":"","disputes":[{"start":"","end":""}],"statement":"","corrected_at":"","repaired_at":"","escalation":1,"capped_by":"","end_reason":"expiry","end_reason":"exit_record","end_reason":"repair","by":"list_entry","list":"","suspend_when_disputed":true,"consent_required":true,"subject":"","known_at":"9999-12-31","records":[{"provider":"","id":"","type":"","occurred_at":"20","decided_at":"20","fields":{},"retained_until":"20","suspend_when_disputed":false,"consent_required":false}],"effects":[{"record":0,"by":"rule","model":"","rule":"","start":"20","end":"20","points":-1,"points_base":-1}]}"#;

/// A stored state's JSON, from either stored form (see [`compress_state`]).
pub(crate) fn state_json(
    subject: SubjectId,
    value: rusqlite::types::ValueRef<'_>,
) -> Result<std::borrow::Cow<'_, [u8]>, StoreError> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Text(text) => Ok(std::borrow::Cow::Borrowed(text)),
        ValueRef::Blob(blob) => {
            lz4_flex::block::decompress_size_prepended_with_dict(blob, STATE_DICTIONARY)
                .map(std::borrow::Cow::Owned)
                .map_err(|error| {
                    StoreError::Corrupt(format!(
                        "stored state of {subject} does not decompress: {error}"
                    ))
                })
        }
        other => Err(StoreError::Corrupt(format!(
            "stored state of {subject} is neither text nor a blob ({:?})",
            other.data_type()
        ))),
    }
}

/// The record part of a fact key as stored ('' for none).
pub(crate) fn fact_record(key: &FactKey) -> (&str, &str) {
    match &key.record {
        Some(record) => (&record.provider, &record.id),
        None => ("", ""),
    }
}

/// A write transaction of the store.
#[derive(Clone, Copy, Debug)]
struct Known {
    /// The subject had a state.
    existed: bool,
    /// It was the source of list or derived rows.
    sources: bool,
    /// Facts in effect, as loaded.
    facts: usize,
}

/// A write transaction of the store. It remembers what it learnt about a
/// subject's stored state when it loaded the subject, so that writing the
/// new state needs no second look.
pub(crate) struct SqliteTx<'c> {
    pub tx: Transaction<'c>,
    known: HashMap<SubjectId, Known>,
    /// Subjects given a fact in effect by this transaction.
    new_facts: HashSet<SubjectId>,
}

impl<'c> SqliteTx<'c> {
    pub(crate) fn new(tx: Transaction<'c>) -> SqliteTx<'c> {
        SqliteTx {
            tx,
            known: HashMap::new(),
            new_facts: HashSet::new(),
        }
    }

    /// (sources, facts) of the subject's stored state, if it has one.
    fn stored_meta(&self, subject: SubjectId) -> Result<Option<(bool, usize)>, StoreError> {
        let row: Option<(i64, i64)> = self
            .tx
            .prepare_cached("SELECT sources, facts FROM states WHERE subject = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([subject.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
            })
            .map_err(db("read a state's bookkeeping"))?;
        Ok(
            row.map(|(sources, facts)| {
                (sources == 1, usize::try_from(facts).unwrap_or(usize::MAX))
            }),
        )
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
}

impl WriteTx for SqliteTx<'_> {
    fn insert_record(&mut self, row: &RecordRow) -> Result<Option<RecordRow>, StoreError> {
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
                self.new_facts.insert(row.key.subject);
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
        let changed = match key {
            ItemKey::Record(key) => self
                .tx
                .prepare_cached(
                    "UPDATE records SET status = ?3, reviewed_by = ?4, review_note = ?5 WHERE provider = ?1 AND id = ?2",
                )
                .and_then(|mut stmt| stmt.execute(params![&*key.provider, &*key.id, values.0, values.1, values.2])),
            ItemKey::Fact(key) => {
                if meta.status == Status::Effective {
                    self.new_facts.insert(key.subject);
                }
                let (provider, record) = fact_record(key);
                self.tx
                    .prepare_cached(
                        "UPDATE facts SET status = ?7, reviewed_by = ?8, review_note = ?9 WHERE subject = ?1 \
                         AND kind = ?2 AND provider = ?3 AND record = ?4 AND at = ?5 AND by = ?6",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            key.subject.as_str(),
                            key.kind,
                            provider,
                            record,
                            key.at.0,
                            &*key.by,
                            values.0,
                            values.1,
                            values.2
                        ])
                    })
            }
        }
        .map_err(db("update a review"))?;
        if changed == 0 {
            return Err(StoreError::NotFound(key.to_string()));
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

    fn load_subject(
        &mut self,
        subject: SubjectId,
    ) -> Result<(Vec<RecordRow>, Vec<FactRow>), StoreError> {
        let stored = self.stored_meta(subject)?;
        let (sources, stored_facts) = stored.unwrap_or((false, 0));
        let records = load_records(&self.tx, subject)?;
        let facts = if stored_facts > 0 || self.new_facts.contains(&subject) {
            load_facts(&self.tx, subject)?
        } else {
            Vec::new()
        };
        let known = Known {
            existed: stored.is_some(),
            sources,
            facts: facts.len(),
        };
        self.known.insert(subject, known);
        Ok((records, facts))
    }

    fn write_state(
        &mut self,
        subject: SubjectId,
        state_json: &str,
        rows: &[ListRow],
        derived: &[(SubjectId, DerivedEntry)],
    ) -> Result<bool, StoreError> {
        let key = subject.as_str();
        let known = match self.known.get(&subject) {
            Some(known) => *known,
            None => {
                let stored = self.stored_meta(subject)?;
                let facts = load_facts(&self.tx, subject)?.len();
                let sources = stored.is_some_and(|(sources, _)| sources);
                Known {
                    existed: stored.is_some(),
                    sources,
                    facts,
                }
            }
        };
        if known.sources {
            for sql in [
                "DELETE FROM list_entries WHERE source = ?1",
                "DELETE FROM derived WHERE source = ?1",
            ] {
                self.tx
                    .prepare_cached(sql)
                    .and_then(|mut stmt| stmt.execute([key]))
                    .map_err(db("clear a subject's list entries"))?;
            }
        }
        let sources = i64::from(!rows.is_empty() || !derived.is_empty());
        self.tx
            .prepare_cached(
                "INSERT INTO states (subject, state, sources, facts) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (subject) DO UPDATE SET state = excluded.state, \
                 sources = excluded.sources, facts = excluded.facts",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    key,
                    compress_state(state_json),
                    sources,
                    known.facts as i64
                ])
            })
            .map_err(db("write a state"))?;
        if !rows.is_empty() {
            let mut stmt = self
                .tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO list_entries (list, subject, source, start, end, entry_start, entry_end) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(db("prepare list entries"))?;
            for row in rows {
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
        if !derived.is_empty() {
            let mut stmt = self
                .tx
                .prepare_cached(
                    "INSERT INTO derived (target, source, n, entry) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db("prepare derived entries"))?;
            for (n, (target, entry)) in derived.iter().enumerate() {
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
        Ok(!known.existed)
    }

    fn add_counts(&mut self, delta: CountsDelta) -> Result<(), StoreError> {
        self.counter_add("subjects", delta.subjects)?;
        self.counter_add("records", delta.records)?;
        self.counter_add("facts", delta.facts)?;
        self.counter_add("pending", delta.pending)
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
        let (entries, (last_seq, last_hash)) = chain_drafts((seq, &hash), drafts);
        {
            let mut stmt = self
                .tx
                .prepare_cached(
                    "INSERT INTO audit (seq, at_ms, actor, role, purpose, action, subject, detail, hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(db("prepare audit entries"))?;
            for entry in &entries {
                let e = &entry.entry;
                stmt.execute(params![
                    entry.seq as i64,
                    e.at_ms,
                    e.actor,
                    e.role,
                    e.purpose,
                    e.action,
                    e.subject.as_ref().map(SubjectId::as_str),
                    e.detail,
                    entry.hash
                ])
                .map_err(db("append an audit entry"))?;
            }
        }
        self.tx
            .prepare_cached(
                "INSERT INTO audit_head (one, seq, hash) VALUES (1, ?1, ?2) \
                 ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            )
            .and_then(|mut stmt| stmt.execute(params![last_seq as i64, last_hash]))
            .map_err(db("move the audit chain head"))?;
        self.counter_add("audit_entries", entries.len() as i64)?;
        Ok(entries.iter().map(|e| e.seq).collect())
    }
}

/// The records and facts in effect about `subject`, on any connection.
pub(crate) fn load_subject(
    conn: &rusqlite::Connection,
    subject: SubjectId,
) -> Result<(Vec<RecordRow>, Vec<FactRow>), StoreError> {
    Ok((load_records(conn, subject)?, load_facts(conn, subject)?))
}

fn load_records(
    conn: &rusqlite::Connection,
    subject: SubjectId,
) -> Result<Vec<RecordRow>, StoreError> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE subject = ?1 AND status = 0");
    let mut raw = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map([subject.as_str()], raw_record)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db("load a subject's records"))?;
    // Ordered by key, as SQLite's binary collation would order them: a
    // subject has a few rows, and sorting them here spares SQLite a sorter
    // per subject (the index by subject gives them in arrival order).
    raw.sort_unstable_by(|a, b| (&a.provider, &a.id).cmp(&(&b.provider, &b.id)));
    raw.into_iter().map(RawRecord::decode).collect()
}

fn load_facts(conn: &rusqlite::Connection, subject: SubjectId) -> Result<Vec<FactRow>, StoreError> {
    let sql = format!("SELECT {FACT_COLUMNS} FROM facts WHERE subject = ?1 AND status = 0");
    let raw = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map([subject.as_str()], raw_fact)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db("load a subject's facts"))?;
    raw.into_iter().map(RawFact::decode).collect()
}
