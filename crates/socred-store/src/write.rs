//! The write logic every backend shares: ingestion with its idempotency
//! rules, review, and the refold of touched subjects. A backend implements
//! the small [`WriteTx`] interface over one open transaction; [`Writer`]
//! decides what to store, so all backends answer alike by construction
//! (the conformance suite checks the parts each backend writes itself).
//!
//! Refolding a batch is split in three so that the transaction spends no
//! time in the fold: load every touched subject's rows, fold them on all
//! cores, then write the states.

use std::collections::BTreeMap;
use std::sync::Arc;

use socred_core::state::{DerivedEntry, Source, Span, SubjectState};
use socred_core::{Day, Engine, Fact, Record, RecordKey, SubjectId};

use crate::audit::AuditDraft;
use crate::rows::{FactRow, ItemMeta, RecordRow, Status};
use crate::{FactKey, Item, ItemKey, Outcome, PendingItem, ReviewNeed, StoreError, Submission};

/// The `known_at` of every stored state: everything stored is known. A
/// state does not depend on the day it is read (the core filters intervals
/// by day), so one state per subject answers for any day, and a record or
/// fact dated in the future simply takes effect on its day.
pub const KNOWN_AT: Day = Day::MAX;

/// The fold a store keeps: the subject's records and facts in effect, all
/// known. Every backend and `socred verify` use this one function.
pub fn fold_subject(
    engine: &Engine,
    subject: SubjectId,
    records: &[Record],
    facts: &[Fact],
) -> SubjectState {
    engine.fold(subject, records, facts, KNOWN_AT)
}

/// One stored list entry: `subject` is on `list` from `start` to `end`
/// (half-open), a piece of `entry` outside any suspension. `source` is the
/// subject whose record made it (the subject itself, or the organisation
/// whose entry reaches it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListRow {
    pub list: Arc<str>,
    pub subject: SubjectId,
    pub source: SubjectId,
    pub start: Day,
    pub end: Day,
    pub entry: Span,
}

/// The list entries of a folded state and of the entries it passes on,
/// split around the days they are suspended (a disputed record under the
/// `suspended` policy), so that "on the list on day D" is a range test.
pub fn list_rows(state: &SubjectState, derived: &[(SubjectId, DerivedEntry)]) -> Vec<ListRow> {
    let mut rows = Vec::new();
    for effect in &state.effects {
        let Source::ListEntry { list } = &effect.source else {
            continue;
        };
        let Some(record) = state.records.get(effect.record as usize) else {
            continue;
        };
        // An entry counts while the record is in the file.
        let live = Span {
            start: effect.span.start.max(record.decided_at),
            end: effect.span.end.min(record.retained_until),
        };
        let holes: &[Span] = if record.suspend_when_disputed {
            &record.disputes
        } else {
            &[]
        };
        for piece in subtract(live, holes) {
            rows.push(ListRow {
                list: list.clone(),
                subject: state.subject,
                source: state.subject,
                start: piece.start,
                end: piece.end,
                entry: effect.span,
            });
        }
    }
    for (target, entry) in derived {
        for piece in subtract(entry.span, &entry.suspended) {
            rows.push(ListRow {
                list: entry.list.clone(),
                subject: *target,
                source: state.subject,
                start: piece.start,
                end: piece.end,
                entry: entry.span,
            });
        }
    }
    rows.sort();
    rows.dedup();
    rows
}

/// `span` minus `holes`, as ordered non-empty pieces.
fn subtract(span: Span, holes: &[Span]) -> Vec<Span> {
    let mut pieces = vec![span];
    for hole in holes {
        let mut next = Vec::with_capacity(pieces.len() + 1);
        for piece in pieces {
            if hole.end <= piece.start || hole.start >= piece.end {
                next.push(piece);
                continue;
            }
            if piece.start < hole.start {
                next.push(Span {
                    start: piece.start,
                    end: hole.start,
                });
            }
            if hole.end < piece.end {
                next.push(Span {
                    start: hole.end,
                    end: piece.end,
                });
            }
        }
        pieces = next;
    }
    pieces.retain(|p| p.start < p.end);
    pieces
}

/// The last day JSON can write (`9999-12-31`): `Day::MAX` and every day
/// after it read back as this day.
fn last_writable_day() -> Day {
    Day::from_ymd(9999, 12, 31).unwrap_or(Day::MAX)
}

/// Closes open ends (`Day::MAX`) at 9999-12-31 so that a state can be
/// written as JSON: the core writes a day as its calendar date, and no
/// calendar date is as late as `Day::MAX`. [`normalise_state`] reopens them
/// on reading.
pub fn close_open_ends(state: &mut SubjectState) {
    let last = last_writable_day();
    let close = |day: &mut Day| *day = (*day).min(last);
    close(&mut state.known_at);
    for record in &mut state.records {
        close(&mut record.retained_until);
        if let Some(day) = &mut record.public_until {
            close(day);
        }
        for span in &mut record.disputes {
            close(&mut span.end);
        }
    }
    for effect in &mut state.effects {
        close(&mut effect.span.end);
    }
    for entry in &mut state.derived {
        close_entry(entry);
    }
}

/// [`close_open_ends`] for one derived entry.
pub fn close_entry(entry: &mut DerivedEntry) {
    let last = last_writable_day();
    entry.span.end = entry.span.end.min(last);
    for span in &mut entry.suspended {
        span.end = span.end.min(last);
    }
}

/// Reopens the ends of a derived entry read back from JSON.
pub fn reopen_entry(entry: &mut DerivedEntry) {
    let last = last_writable_day();
    let open = |day: &mut Day| {
        if *day >= last {
            *day = Day::MAX;
        }
    };
    open(&mut entry.span.end);
    for span in &mut entry.suspended {
        open(&mut span.end);
    }
}

/// Restores the open ends of a state read back from JSON. A day past
/// 9999-12-31 is written as that date, so an open end (`Day::MAX`) would
/// otherwise come back as a closed one and the state would no longer equal
/// a fresh fold. Only ends are touched: no start or conduct date is ever
/// that late.
pub fn normalise_state(state: &mut SubjectState) {
    let last = last_writable_day();
    let open = |day: &mut Day| {
        if *day >= last {
            *day = Day::MAX;
        }
    };
    open(&mut state.known_at);
    for record in &mut state.records {
        open(&mut record.retained_until);
        if let Some(day) = &mut record.public_until {
            open(day);
        }
        for span in &mut record.disputes {
            open(&mut span.end);
        }
    }
    for effect in &mut state.effects {
        open(&mut effect.span.end);
    }
    for entry in &mut state.derived {
        reopen_entry(entry);
    }
}

/// Changes to the totals that one transaction makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountsDelta {
    pub subjects: i64,
    pub records: i64,
    pub facts: i64,
    pub pending: i64,
}

/// What a backend does inside one open write transaction. Every method
/// works on the transaction's view (it sees what earlier calls wrote).
pub trait WriteTx {
    /// Inserts a record unless its key (provider, id) is taken; returns the
    /// row that holds the key when it is.
    fn insert_record(&mut self, row: &RecordRow) -> Result<Option<RecordRow>, StoreError>;
    /// Inserts a fact unless its key is taken; returns the holder if it is.
    fn insert_fact(&mut self, row: &FactRow) -> Result<Option<FactRow>, StoreError>;
    /// The record under `key`, whatever its status.
    fn record(&mut self, key: &RecordKey) -> Result<Option<RecordRow>, StoreError>;
    /// The fact under `key`, whatever its status.
    fn fact(&mut self, key: &FactKey) -> Result<Option<FactRow>, StoreError>;
    /// Replaces the review state of a stored item.
    fn set_meta(&mut self, key: &ItemKey, meta: &ItemMeta) -> Result<(), StoreError>;
    /// A queue position above every one given so far.
    fn next_pending_seq(&mut self) -> Result<u64, StoreError>;
    /// The records and facts in effect about `subject`.
    fn load_subject(
        &mut self,
        subject: SubjectId,
    ) -> Result<(Vec<RecordRow>, Vec<FactRow>), StoreError>;
    /// Replaces the subject's state (JSON of a state with no `derived`), and
    /// every list row and derived entry whose source is `subject`. Returns
    /// whether the subject had no state before.
    fn write_state(
        &mut self,
        subject: SubjectId,
        state_json: &str,
        rows: &[ListRow],
        derived: &[(SubjectId, DerivedEntry)],
    ) -> Result<bool, StoreError>;
    fn add_counts(&mut self, delta: CountsDelta) -> Result<(), StoreError>;
    /// Appends audit entries after the chain head read in this transaction.
    fn append_audit(&mut self, drafts: &[AuditDraft]) -> Result<Vec<u64>, StoreError>;
}

/// Subjects folded per thread before it is worth a second thread.
const FOLD_CHUNK_MIN: usize = 64;

/// The write logic over one transaction.
pub struct Writer<'e> {
    engine: &'e Engine,
    now_ms: i64,
    delta: CountsDelta,
}

impl<'e> Writer<'e> {
    pub fn new(engine: &'e Engine, now_ms: i64) -> Writer<'e> {
        Writer {
            engine,
            now_ms,
            delta: CountsDelta::default(),
        }
    }

    /// Stores a batch (see [`crate::Store::ingest`]), refolds the subjects it
    /// touched and appends `audit`.
    pub fn ingest(
        mut self,
        tx: &mut impl WriteTx,
        batch: Vec<Submission>,
        audit: &[AuditDraft],
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut touched = Vec::new();
        for submission in batch {
            let subject = submission.item.subject();
            let outcome = self.ingest_one(tx, submission)?;
            if outcome == Outcome::Stored {
                touched.push(subject);
            }
            outcomes.push(outcome);
        }
        self.refold(tx, touched)?;
        tx.add_counts(self.delta)?;
        tx.append_audit(audit)?;
        Ok(outcomes)
    }

    fn meta(&self, tx: &mut impl WriteTx, submission: &Submission) -> Result<ItemMeta, StoreError> {
        let (status, pending_seq) = match submission.review {
            ReviewNeed::Required => (Status::Pending, tx.next_pending_seq()?),
            ReviewNeed::NotRequired => (Status::Effective, 0),
        };
        Ok(ItemMeta {
            status,
            submitted_by: submission.submitted_by.clone(),
            submitted_at_ms: self.now_ms,
            pending_seq,
            reviewed_by: None,
            review_note: None,
        })
    }

    fn ingest_one(
        &mut self,
        tx: &mut impl WriteTx,
        submission: Submission,
    ) -> Result<Outcome, StoreError> {
        match &submission.item {
            Item::Record(record) => {
                let meta = self.meta(tx, &submission)?;
                let row = RecordRow::new(record, meta);
                match tx.insert_record(&row)? {
                    None => Ok(self.stored(row.meta.status, Kind::Record)),
                    Some(held) if !held.same_content(&row) => Ok(Outcome::Conflict {
                        reason: format!(
                            "record {}/{} is already stored with other content",
                            row.key.provider, row.key.id
                        ),
                    }),
                    Some(held) => Ok(replay(&held.meta, &ItemKey::Record(held.key.clone()))),
                }
            }
            Item::Fact { fact, record_type } => {
                if let Some(key) = fact.record() {
                    let Some(record) = tx.record(key)? else {
                        return Ok(Outcome::UnknownRecord);
                    };
                    if record.subject != fact.subject || record.meta.status != Status::Effective {
                        return Ok(Outcome::UnknownRecord);
                    }
                    if let Some(type_id) = record_type {
                        if *type_id != record.type_id {
                            return Ok(Outcome::Conflict {
                                reason: format!(
                                    "the fact's fields were checked as type `{type_id}` but record {}/{} \
                                     is of type `{}`",
                                    key.provider, key.id, record.type_id
                                ),
                            });
                        }
                    }
                }
                let meta = self.meta(tx, &submission)?;
                let row = FactRow::new(fact, record_type.as_ref(), meta);
                match tx.insert_fact(&row)? {
                    None => Ok(self.stored(row.meta.status, Kind::Fact)),
                    Some(held) if !held.same_content(&row) => Ok(Outcome::Conflict {
                        reason: format!(
                            "{} is already stored with other content",
                            ItemKey::Fact(row.key.clone())
                        ),
                    }),
                    Some(held) => Ok(replay(&held.meta, &ItemKey::Fact(held.key.clone()))),
                }
            }
        }
    }

    fn stored(&mut self, status: Status, kind: Kind) -> Outcome {
        if status == Status::Pending {
            self.delta.pending += 1;
            return Outcome::PendingReview;
        }
        match kind {
            Kind::Record => self.delta.records += 1,
            Kind::Fact => self.delta.facts += 1,
        }
        Outcome::Stored
    }

    /// Puts a pending item in effect (see [`crate::Store::approve`]).
    pub fn approve(
        mut self,
        tx: &mut impl WriteTx,
        key: &ItemKey,
        reviewer: &str,
        audit: &[AuditDraft],
    ) -> Result<PendingItem, StoreError> {
        let (item, mut meta) = self.pending_item(tx, key)?;
        if meta.submitted_by == reviewer {
            return Err(StoreError::Conflict(format!(
                "{key} was submitted by `{reviewer}`: a second person must approve it"
            )));
        }
        if let Item::Fact { fact, .. } = &item {
            if let Some(record) = fact.record() {
                let live = tx
                    .record(record)?
                    .is_some_and(|r| r.meta.status == Status::Effective);
                if !live {
                    return Err(StoreError::Conflict(format!(
                        "{key} names record {}/{}, which is not in effect",
                        record.provider, record.id
                    )));
                }
            }
        }
        let pending = PendingItem {
            seq: meta.pending_seq,
            key: key.clone(),
            item,
            submitted_by: meta.submitted_by.clone(),
            submitted_at_ms: meta.submitted_at_ms,
        };
        meta.status = Status::Effective;
        meta.reviewed_by = Some(reviewer.to_string());
        tx.set_meta(key, &meta)?;
        self.delta.pending -= 1;
        match key {
            ItemKey::Record(_) => self.delta.records += 1,
            ItemKey::Fact(_) => self.delta.facts += 1,
        }
        self.refold(tx, vec![pending.item.subject()])?;
        tx.add_counts(self.delta)?;
        tx.append_audit(audit)?;
        Ok(pending)
    }

    /// Refuses a pending item (see [`crate::Store::reject`]).
    pub fn reject(
        mut self,
        tx: &mut impl WriteTx,
        key: &ItemKey,
        reviewer: &str,
        reason: &str,
        audit: &[AuditDraft],
    ) -> Result<PendingItem, StoreError> {
        let (item, mut meta) = self.pending_item(tx, key)?;
        if meta.submitted_by == reviewer {
            return Err(StoreError::Conflict(format!(
                "{key} was submitted by `{reviewer}`: a second person must decide on it"
            )));
        }
        let pending = PendingItem {
            seq: meta.pending_seq,
            key: key.clone(),
            item,
            submitted_by: meta.submitted_by.clone(),
            submitted_at_ms: meta.submitted_at_ms,
        };
        meta.status = Status::Rejected;
        meta.reviewed_by = Some(reviewer.to_string());
        meta.review_note = Some(reason.to_string());
        tx.set_meta(key, &meta)?;
        self.delta.pending -= 1;
        tx.add_counts(self.delta)?;
        tx.append_audit(audit)?;
        Ok(pending)
    }

    fn pending_item(
        &self,
        tx: &mut impl WriteTx,
        key: &ItemKey,
    ) -> Result<(Item, ItemMeta), StoreError> {
        let (item, meta) = match key {
            ItemKey::Record(record_key) => {
                let row = tx
                    .record(record_key)?
                    .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
                (row.to_item(&self.engine.rulebook)?, row.meta)
            }
            ItemKey::Fact(fact_key) => {
                let row = tx
                    .fact(fact_key)?
                    .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
                let (fact, record_type) = row.to_fact()?;
                (Item::Fact { fact, record_type }, row.meta)
            }
        };
        match meta.status {
            Status::Pending => Ok((item, meta)),
            Status::Effective => Err(StoreError::Conflict(format!(
                "{key} is not waiting for review: it is in effect"
            ))),
            Status::Rejected => Err(StoreError::Conflict(format!(
                "{key} is not waiting for review: it was rejected"
            ))),
        }
    }

    /// Refolds `subjects` (any order, repeats allowed) and writes their states.
    pub fn refold(
        &mut self,
        tx: &mut impl WriteTx,
        mut subjects: Vec<SubjectId>,
    ) -> Result<(), StoreError> {
        subjects.sort_unstable();
        subjects.dedup();
        let mut loaded = Vec::with_capacity(subjects.len());
        for subject in subjects {
            let (records, facts) = tx.load_subject(subject)?;
            loaded.push((subject, records, facts));
        }
        let folded = fold_loaded(self.engine, loaded)?;
        for folded in folded {
            if tx.write_state(folded.subject, &folded.json, &folded.rows, &folded.derived)? {
                self.delta.subjects += 1;
            }
        }
        Ok(())
    }

    /// Refolds subjects and adds the subjects' count change, for backends
    /// that recompute outside ingestion.
    pub fn recompute(
        mut self,
        tx: &mut impl WriteTx,
        subjects: Vec<SubjectId>,
    ) -> Result<(), StoreError> {
        self.refold(tx, subjects)?;
        tx.add_counts(self.delta)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Record,
    Fact,
}

/// The outcome of replaying an item that is already stored as it was sent.
fn replay(meta: &ItemMeta, key: &ItemKey) -> Outcome {
    match meta.status {
        Status::Effective => Outcome::Duplicate,
        Status::Pending => Outcome::PendingReview,
        Status::Rejected => Outcome::Conflict {
            reason: format!(
                "{key} was rejected in review ({}); send a new record id to submit it again",
                meta.review_note.as_deref().unwrap_or("no reason given")
            ),
        },
    }
}

/// A subject's new state, ready to write.
pub struct Folded {
    pub subject: SubjectId,
    pub json: String,
    pub rows: Vec<ListRow>,
    pub derived: Vec<(SubjectId, DerivedEntry)>,
}

type Loaded = (SubjectId, Vec<RecordRow>, Vec<FactRow>);

/// Folds loaded subjects on all available cores; the result keeps the order.
pub fn fold_loaded(engine: &Engine, loaded: Vec<Loaded>) -> Result<Vec<Folded>, StoreError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.min(loaded.len() / FOLD_CHUNK_MIN).max(1);
    if threads == 1 {
        return loaded.iter().map(|l| fold_one(engine, l)).collect();
    }
    let chunk = loaded.len().div_ceil(threads);
    let results: Vec<Result<Vec<Folded>, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = loaded
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|l| fold_one(engine, l)).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(StoreError::Corrupt("the fold of a subject panicked".into()))
                })
            })
            .collect()
    });
    let mut out = Vec::with_capacity(loaded.len());
    for part in results {
        out.extend(part?);
    }
    Ok(out)
}

fn fold_one(
    engine: &Engine,
    (subject, record_rows, fact_rows): &Loaded,
) -> Result<Folded, StoreError> {
    let rulebook = &*engine.rulebook;
    let mut records = Vec::with_capacity(record_rows.len());
    for row in record_rows {
        if let Some(record) = row.to_record(rulebook)? {
            records.push(record);
        }
    }
    let mut facts = Vec::with_capacity(fact_rows.len());
    for row in fact_rows {
        facts.push(row.to_fact()?.0);
    }
    let mut state = fold_subject(engine, *subject, &records, &facts);
    let derived = engine.reach(&state);
    let rows = list_rows(&state, &derived);
    close_open_ends(&mut state);
    let json = serde_json::to_string(&state).map_err(|error| {
        StoreError::Corrupt(format!("state of {subject} does not serialise: {error}"))
    })?;
    Ok(Folded {
        subject: *subject,
        json,
        rows,
        derived,
    })
}

/// Groups derived entries by the subject they reach, sorted as the core sorts them.
pub fn derived_by_target(
    derived: Vec<(SubjectId, DerivedEntry)>,
) -> BTreeMap<SubjectId, Vec<DerivedEntry>> {
    let mut map: BTreeMap<SubjectId, Vec<DerivedEntry>> = BTreeMap::new();
    for (target, entry) in derived {
        map.entry(target).or_default().push(entry);
    }
    for entries in map.values_mut() {
        crate::sort_derived(entries);
    }
    map
}
