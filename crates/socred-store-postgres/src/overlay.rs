//! The shared write logic's [`WriteTx`] over rows fetched in advance.
//!
//! `socred_store::Writer` decides what a write does, one item at a time,
//! through synchronous calls. Sending each of those calls to PostgreSQL as
//! its own statement would cost a round trip per item (and, on Citus, a
//! coordinator-to-worker trip per row: seven times slower than a single
//! server, measured). So a write runs in three steps: fetch, in a few
//! multi-row statements, every row the batch can ask about (its subjects,
//! locked; the records and facts under its keys; the subjects' rows in
//! effect); run the `Writer` against this overlay in memory; and send what
//! it wrote back as multi-row statements ([`crate::write::flush`]).
//!
//! Asking the overlay about a key or subject that was not fetched is a
//! programmer error, reported as such rather than answered wrongly.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use socred_core::state::DerivedEntry;
use socred_core::{Day, Record, RecordKey, SubjectId};
use socred_store::{
    AuditDraft, CountsDelta, EncodedState, FactKey, FactRow, Folded, History, ItemKey, ItemMeta,
    ListRow, RecordRow, StateFormat, Status, StoreError, WriteTx,
};

/// What a subject looked like when its row was locked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Before {
    /// It had a stored state (else the locked row is a placeholder).
    pub had_state: bool,
    /// It was the source of list or derived rows.
    pub sources: bool,
    /// The other subjects those rows are about.
    pub targets: Vec<SubjectId>,
}

/// A locked subject.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub before: Before,
    /// Its records and facts in effect, when they were fetched.
    pub loaded: Option<(Vec<RecordRow>, Vec<FactRow>)>,
    pub written: bool,
}

/// A state to write: the subject's new state in the binary form of
/// `socred_store::codec`, and the rows it is the source of.
#[derive(Debug)]
pub(crate) struct StateWrite {
    pub subject: SubjectId,
    pub bytes: Vec<u8>,
    pub rows: Vec<ListRow>,
    pub derived: Vec<(SubjectId, DerivedEntry)>,
    pub retention_ends: Option<Day>,
    /// When the write began (`Folded::changed_ms`): stamped on its state
    /// and on those of the subjects its rows reach or reached.
    pub changed_ms: i64,
}

/// The transaction's view, in memory.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    /// Rows under each fetched record key; None: known to be free.
    records: HashMap<RecordKey, Option<RecordRow>>,
    facts: HashMap<FactKey, Option<FactRow>>,
    pub subjects: BTreeMap<SubjectId, Slot>,
    /// Review queue positions taken for this write.
    pending_seqs: Range<u64>,
    /// The keys of items inserted or reviewed, by subject.
    added: HashMap<SubjectId, Vec<ItemKey>>,
    /// What the writer did, in order.
    pub inserted_records: Vec<RecordKey>,
    pub inserted_facts: Vec<FactKey>,
    pub reviewed: Vec<ItemKey>,
    /// The records of the locked subjects not in effect (waiting for
    /// review, or rejected), when an erasure fetched them.
    pub not_in_effect: HashMap<SubjectId, Vec<RecordRow>>,
    pub facts_not_in_effect: HashMap<SubjectId, Vec<FactRow>>,
    /// Records made tombstones, and facts deleted, by an erasure.
    pub erased_records: Vec<RecordRow>,
    pub deleted_facts: Vec<FactKey>,
    /// Days kept beside states left as they were, set by an erasure.
    pub retention_ends: Vec<(SubjectId, Option<Day>)>,
    pub states: Vec<StateWrite>,
    pub delta: CountsDelta,
}

impl Overlay {
    /// An overlay over the locked `subjects`.
    pub fn new(subjects: BTreeMap<SubjectId, Slot>) -> Overlay {
        Overlay {
            subjects,
            ..Overlay::default()
        }
    }

    /// Records that the record `key` is held by `row` (None: free).
    pub fn fetched_record(&mut self, key: RecordKey, row: Option<RecordRow>) {
        self.records.insert(key, row);
    }

    pub fn fetched_fact(&mut self, key: FactKey, row: Option<FactRow>) {
        self.facts.insert(key, row);
    }

    pub fn set_pending_seqs(&mut self, seqs: Range<u64>) {
        self.pending_seqs = seqs;
    }

    pub fn record_row(&self, key: &RecordKey) -> Option<&RecordRow> {
        self.records.get(key).and_then(Option::as_ref)
    }

    pub fn fact_row(&self, key: &FactKey) -> Option<&FactRow> {
        self.facts.get(key).and_then(Option::as_ref)
    }

    /// The locked subjects that got no state: their placeholder rows go.
    pub fn unwritten_placeholders(&self) -> Vec<SubjectId> {
        self.subjects
            .iter()
            .filter(|(_, slot)| !slot.before.had_state && !slot.written)
            .map(|(subject, _)| *subject)
            .collect()
    }

    fn slot(&mut self, subject: SubjectId) -> Result<&mut Slot, StoreError> {
        self.subjects.get_mut(&subject).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "the write reached subject {subject}, which it had not locked"
            ))
        })
    }

    /// Rows this write put in effect for `subject` (inserted, or approved).
    fn added_for(&self, subject: SubjectId) -> (Vec<RecordRow>, Vec<FactRow>) {
        let mut records = Vec::new();
        let mut facts = Vec::new();
        for key in self.added.get(&subject).into_iter().flatten() {
            match key {
                ItemKey::Record(key) => records.extend(
                    self.record_row(key)
                        .filter(|row| row.meta.status == Status::Effective)
                        .cloned(),
                ),
                ItemKey::Fact(key) => facts.extend(
                    self.fact_row(key)
                        .filter(|row| row.meta.status == Status::Effective)
                        .cloned(),
                ),
            }
        }
        (records, facts)
    }

    fn note_added(&mut self, subject: SubjectId, key: ItemKey) {
        let keys = self.added.entry(subject).or_default();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
}

fn not_fetched(what: String) -> StoreError {
    StoreError::Corrupt(format!(
        "the write asked about {what}, which it had not fetched"
    ))
}

impl WriteTx for Overlay {
    fn insert_record(
        &mut self,
        row: &RecordRow,
        _record: &Record,
    ) -> Result<Option<RecordRow>, StoreError> {
        match self.records.get(&row.key) {
            Some(Some(held)) => Ok(Some(held.clone())),
            Some(None) => {
                self.records.insert(row.key.clone(), Some(row.clone()));
                self.inserted_records.push(row.key.clone());
                self.note_added(row.subject, ItemKey::Record(row.key.clone()));
                Ok(None)
            }
            None => Err(not_fetched(format!(
                "record {}/{}",
                row.key.provider, row.key.id
            ))),
        }
    }

    fn insert_fact(&mut self, row: &FactRow) -> Result<Option<FactRow>, StoreError> {
        match self.facts.get(&row.key) {
            Some(Some(held)) => Ok(Some(held.clone())),
            Some(None) => {
                self.facts.insert(row.key.clone(), Some(row.clone()));
                self.inserted_facts.push(row.key.clone());
                self.note_added(row.key.subject, ItemKey::Fact(row.key.clone()));
                Ok(None)
            }
            None => Err(not_fetched(ItemKey::Fact(row.key.clone()).to_string())),
        }
    }

    fn record(&mut self, key: &RecordKey) -> Result<Option<RecordRow>, StoreError> {
        match self.records.get(key) {
            Some(row) => Ok(row.clone()),
            None => Err(not_fetched(format!("record {}/{}", key.provider, key.id))),
        }
    }

    fn fact(&mut self, key: &FactKey) -> Result<Option<FactRow>, StoreError> {
        match self.facts.get(key) {
            Some(row) => Ok(row.clone()),
            None => Err(not_fetched(ItemKey::Fact(key.clone()).to_string())),
        }
    }

    fn set_meta(&mut self, key: &ItemKey, meta: &ItemMeta) -> Result<(), StoreError> {
        let subject = match key {
            ItemKey::Record(record) => match self.records.get_mut(record) {
                Some(Some(row)) => {
                    row.meta = meta.clone();
                    Some(row.subject)
                }
                _ => None,
            },
            ItemKey::Fact(fact) => match self.facts.get_mut(fact) {
                Some(Some(row)) => {
                    row.meta = meta.clone();
                    Some(row.key.subject)
                }
                _ => None,
            },
        };
        let Some(subject) = subject else {
            return Err(StoreError::NotFound(key.to_string()));
        };
        if !self.reviewed.contains(key) {
            self.reviewed.push(key.clone());
        }
        self.note_added(subject, key.clone());
        Ok(())
    }

    fn next_pending_seq(&mut self) -> Result<u64, StoreError> {
        self.pending_seqs.next().ok_or_else(|| {
            StoreError::Corrupt(
                "the write took more review queue positions than it reserved".into(),
            )
        })
    }

    fn load_subject(&mut self, subject: SubjectId) -> Result<History, StoreError> {
        let (added_records, added_facts) = self.added_for(subject);
        let slot = self.slot(subject)?;
        // Each subject is loaded once per refold: hand over the rows.
        let Some((mut records, mut facts)) = slot.loaded.take() else {
            return Err(not_fetched(format!("the rows of subject {subject}")));
        };
        records.extend(added_records);
        facts.extend(added_facts);
        // The order the SQLite store loads in (by key): the fold does not
        // depend on it, but equal inputs should look equal.
        records.sort_by(|a, b| a.key.cmp(&b.key));
        facts.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(History::Rows { records, facts })
    }

    /// The binary form: an eighth to a third of the JSON's size, so less
    /// to send, to write to the table and its log, and no JSON to parse on
    /// every read.
    fn state_format(&self) -> StateFormat {
        StateFormat::Binary
    }

    fn write_state(&mut self, folded: Folded) -> Result<bool, StoreError> {
        let subject = folded.subject;
        let EncodedState::Binary(bytes) = folded.encoded else {
            return Err(StoreError::Corrupt(format!(
                "the state of {subject} came encoded as JSON; the PostgreSQL store writes the \
                 binary form"
            )));
        };
        let slot = self.slot(subject)?;
        let new = !slot.before.had_state && !slot.written;
        slot.written = true;
        self.states.push(StateWrite {
            subject,
            bytes,
            rows: folded.rows,
            derived: folded.derived,
            retention_ends: folded.retention_ends,
            changed_ms: folded.changed_ms,
        });
        Ok(new)
    }

    fn set_retention_ends(
        &mut self,
        subject: SubjectId,
        day: Option<Day>,
    ) -> Result<(), StoreError> {
        self.slot(subject)?;
        self.retention_ends.push((subject, day));
        Ok(())
    }

    fn add_counts(&mut self, delta: CountsDelta) -> Result<(), StoreError> {
        self.delta.subjects += delta.subjects;
        self.delta.records += delta.records;
        self.delta.facts += delta.facts;
        self.delta.pending += delta.pending;
        Ok(())
    }

    fn erase_record(&mut self, tombstone: &RecordRow) -> Result<(), StoreError> {
        if let Some(Some(row)) = self.records.get_mut(&tombstone.key) {
            *row = tombstone.clone();
        }
        self.erased_records.push(tombstone.clone());
        Ok(())
    }

    fn records_not_in_effect(&mut self, subject: SubjectId) -> Result<Vec<RecordRow>, StoreError> {
        self.slot(subject)?;
        Ok(self
            .not_in_effect
            .get(&subject)
            .cloned()
            .unwrap_or_default())
    }

    fn facts_not_in_effect(&mut self, subject: SubjectId) -> Result<Vec<FactRow>, StoreError> {
        self.slot(subject)?;
        Ok(self
            .facts_not_in_effect
            .get(&subject)
            .cloned()
            .unwrap_or_default())
    }

    fn delete_fact(&mut self, key: &FactKey) -> Result<(), StoreError> {
        if let Some(row) = self.facts.get_mut(key) {
            *row = None;
        }
        self.deleted_facts.push(key.clone());
        Ok(())
    }

    /// The store appends a write's audit entries itself, last, so that the
    /// chain head is locked for the shortest time: the writer gets none.
    fn append_audit(&mut self, drafts: &[AuditDraft]) -> Result<Vec<u64>, StoreError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        Err(StoreError::Corrupt(
            "audit entries were handed to the writer; the store appends them when it flushes"
                .into(),
        ))
    }
}
