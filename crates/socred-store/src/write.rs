//! The write logic every backend shares: ingestion with its idempotency
//! rules, review, and the refold of touched subjects. A backend implements
//! the small [`WriteTx`] interface over one open transaction; [`Writer`]
//! decides what to store, so all backends answer alike by construction
//! (the conformance suite checks the parts each backend writes itself).
//!
//! Refolding a batch is split in three so that the transaction spends no
//! time in the fold: load every touched subject's history, fold them on all
//! cores (decoding rows and encoding states there too), then write the
//! states. A backend may hand over a history it already holds decoded (a
//! cache of recently folded subjects) and gets the decoded history back
//! with the new state, to keep for the next write.

use std::collections::BTreeMap;

use socred_core::rulebook::RecordType;
use socred_core::state::{DerivedEntry, Source, Span, SubjectState};
use socred_core::{Day, Engine, Fact, FactKind, Name, Record, RecordKey, SubjectId};

use crate::audit::AuditDraft;
use crate::codec::encode_state;
use crate::rows::{decode_subject, FactRow, ItemMeta, RecordRow, Status};
use crate::{FactKey, Item, ItemKey, Outcome, PendingItem, ReviewNeed, StoreError, Submission};

/// The `known_at` of every stored state: everything stored is known. A
/// state does not depend on the day it is read (the core filters intervals
/// by day), so one state per subject answers for any day, and a record or
/// fact dated in the future would take effect on its day (the server
/// refuses those dated after its own day).
pub const KNOWN_AT: Day = Day::MAX;

/// Why a record of `record_type` decided on `decided_at` may not be held on
/// `today`, if its retention has ended by then: neither taken in, nor put
/// in effect by a review.
pub fn past_retention(record_type: &RecordType, decided_at: Day, today: Day) -> Option<String> {
    let retained_until = record_type.retention.after(decided_at);
    (retained_until <= today).then(|| {
        // Held through the day before: on `retained_until` it is past.
        let last = Day(retained_until.0 - 1);
        format!(
            "decided on {decided_at}, a `{}` record is kept for {}, through {last}: the \
             registry may not hold it any more",
            record_type.id, record_type.retention
        )
    })
}

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
    pub list: Name,
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
            record.disputes()
        } else {
            &[]
        };
        for piece in subtract(live, holes) {
            rows.push(ListRow {
                list: *list,
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
                list: entry.list,
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
        if let Some(amended) = &mut record.amended {
            for span in &mut amended.disputes {
                close(&mut span.end);
            }
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
        if let Some(amended) = &mut record.amended {
            for span in &mut amended.disputes {
                open(&mut span.end);
            }
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

/// How a backend keeps a state: the fold's threads encode it so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateFormat {
    /// The core's JSON, open ends closed at 9999-12-31 ([`close_open_ends`]).
    Json,
    /// The compact binary form of [`crate::encode_state`].
    Binary,
}

/// A state encoded for storage, in the backend's [`StateFormat`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodedState {
    Json(String),
    Binary(Vec<u8>),
}

/// A subject's records and facts in effect, as a backend has them at hand.
#[derive(Clone, Debug)]
pub enum History {
    /// Stored rows; the fold's threads decode them.
    Rows {
        records: Vec<RecordRow>,
        facts: Vec<FactRow>,
    },
    /// Already decoded for the rulebook of the write's engine, as
    /// [`decode_subject`] decodes rows: records of types the rulebook lacks
    /// are left out.
    Decoded {
        records: Vec<Record>,
        facts: Vec<Fact>,
    },
}

/// What a backend does inside one open write transaction. Every method
/// works on the transaction's view (it sees what earlier calls wrote).
pub trait WriteTx {
    /// Inserts a record unless its key (provider, id) is taken; returns the
    /// row that holds the key when it is. `record` is the core record the
    /// row was made from (a backend that keeps decoded histories uses it
    /// instead of decoding the row again, see [`crate::readback`]).
    fn insert_record(
        &mut self,
        row: &RecordRow,
        record: &Record,
    ) -> Result<Option<RecordRow>, StoreError>;
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
    fn load_subject(&mut self, subject: SubjectId) -> Result<History, StoreError>;
    /// How this backend keeps states.
    fn state_format(&self) -> StateFormat {
        StateFormat::Json
    }
    /// Replaces the subject's state (one with no `derived`, encoded in
    /// [`WriteTx::state_format`]), and every list row and derived entry
    /// whose source is the subject. Returns whether the subject had no
    /// state before.
    fn write_state(&mut self, folded: Folded) -> Result<bool, StoreError>;
    /// Sets the day kept beside a subject's state on which a record of it
    /// is first past retention ([`Folded::retention_ends`]), where the
    /// state itself is left as it is: erasure examined the subject, and a
    /// state stored before the day was kept has it unknown.
    fn set_retention_ends(
        &mut self,
        subject: SubjectId,
        day: Option<Day>,
    ) -> Result<(), StoreError>;
    fn add_counts(&mut self, delta: CountsDelta) -> Result<(), StoreError>;
    /// Appends audit entries after the chain head read in this transaction.
    fn append_audit(&mut self, drafts: &[AuditDraft]) -> Result<Vec<u64>, StoreError>;
    /// Replaces the record of `subject` under `tombstone`'s key, in effect,
    /// by the tombstone ([`RecordRow::tombstone`]): it leaves the subject's
    /// history, and its key stays taken.
    fn erase_record(&mut self, tombstone: &RecordRow) -> Result<(), StoreError>;
    /// Deletes a fact in effect: it leaves its subject's history.
    fn delete_fact(&mut self, key: &FactKey) -> Result<(), StoreError>;
    /// The records about `subject` that wait for review or that a reviewer
    /// rejected (never in effect; a rejected one is kept so that its key
    /// stays taken).
    fn records_not_in_effect(&mut self, subject: SubjectId) -> Result<Vec<RecordRow>, StoreError>;
    /// The facts about `subject` that wait for review or that a reviewer
    /// rejected.
    fn facts_not_in_effect(&mut self, subject: SubjectId) -> Result<Vec<FactRow>, StoreError>;
}

/// What an erasure did (see [`crate::Store::erase`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    /// Subjects looked at.
    pub subjects_examined: u64,
    /// Subjects that had records erased.
    pub subjects: u64,
    pub records: u64,
    pub facts: u64,
    /// Records a reviewer rejected, erased at the end of the retention
    /// their type would have had (they never counted).
    pub rejected: u64,
    /// Records still waiting for review when their type's retention ended:
    /// approved, they could no longer count.
    pub pending: u64,
    /// Records past their retention kept, because a record still in the
    /// file depends on them (see `socred_core::erase`).
    pub held_back: u64,
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
                match tx.insert_record(&row, record)? {
                    None => Ok(self.stored(row.meta.status, Kind::Record)),
                    Some(held) if held.meta.status == Status::Erased => {
                        Ok(erased(&ItemKey::Record(held.key), &held.meta))
                    }
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
        today: Day,
        audit: &[AuditDraft],
    ) -> Result<PendingItem, StoreError> {
        let (item, mut meta) = self.pending_item(tx, key)?;
        if meta.submitted_by == reviewer {
            return Err(StoreError::Conflict(format!(
                "{key} was submitted by `{reviewer}`: a second person must approve it"
            )));
        }
        if let Some(reason) = self.past_retention(&item, today) {
            return Err(StoreError::Conflict(format!(
                "{key} cannot take effect: {reason}; reject it"
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
        tx.append_audit(&crate::about_subject(audit, pending.item.subject()))?;
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
        tx.append_audit(&crate::about_subject(audit, pending.item.subject()))?;
        Ok(pending)
    }

    /// Why `item` may not take effect on `today`, if it may not: a record,
    /// or a correction's new decision day, past the end of its type's
    /// retention (the registry may not hold such a record at all).
    fn past_retention(&self, item: &Item, today: Day) -> Option<String> {
        let rulebook = &self.engine.rulebook;
        let (record_type, decided_at) = match item {
            Item::Record(record) => (
                rulebook.catalog.get(record.type_index as usize)?,
                record.decided_at,
            ),
            Item::Fact { fact, record_type } => {
                let FactKind::Corrected {
                    decided_at: Some(decided_at),
                    ..
                } = &fact.kind
                else {
                    return None;
                };
                let index = rulebook.record_type(record_type.as_ref()?)?;
                (rulebook.catalog.get(index as usize)?, *decided_at)
            }
        };
        past_retention(record_type, decided_at, today)
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
            Status::Erased => Err(StoreError::Conflict(format!(
                "{key} is not waiting for review: it was erased"
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
            loaded.push((subject, tx.load_subject(subject)?));
        }
        let format = tx.state_format();
        let mut new_subjects = 0;
        fold_into(self.engine, loaded, format, |mut folded| {
            folded.changed_ms = self.now_ms;
            if tx.write_state(folded)? {
                new_subjects += 1;
            }
            Ok(())
        })?;
        self.delta.subjects += new_subjects;
        Ok(())
    }

    /// Erases from each of `subjects` what [`Engine::erasable`] allows on
    /// `today`: each record becomes a tombstone, each fact about it is
    /// deleted, and the subject is refolded from what is left. Returns what
    /// was done and, for the caller to append in the same transaction, the
    /// entry of each subject that lost records: `audit` with the subject
    /// and the detail (counts and keys) filled in.
    pub fn erase(
        mut self,
        tx: &mut impl WriteTx,
        mut subjects: Vec<SubjectId>,
        today: Day,
        audit: &AuditDraft,
    ) -> Result<(Erasure, Vec<AuditDraft>), StoreError> {
        subjects.sort_unstable();
        subjects.dedup();
        let mut report = Erasure::default();
        let mut left = Vec::new();
        let mut drafts = Vec::new();
        for subject in subjects {
            report.subjects_examined += 1;
            let (rows, records, facts) = match tx.load_subject(subject)? {
                History::Rows { records, facts } => {
                    let (decoded, decoded_facts) =
                        decode_subject(&self.engine.rulebook, &records, &facts)?;
                    (Some(records), decoded, decoded_facts)
                }
                History::Decoded { records, facts } => (None, records, facts),
            };
            let erasable = self
                .engine
                .erasable(subject, &records, &facts, KNOWN_AT, today);
            report.held_back += erasable.held_back as u64;
            // Records never in effect (rejected, or still waiting for
            // review) go when the retention of their type, from the day they
            // say they were decided, has ended.
            let mut outside = Vec::new();
            for row in tx.records_not_in_effect(subject)? {
                let ended = self
                    .engine
                    .rulebook
                    .record_type(&row.type_id)
                    .and_then(|index| self.engine.rulebook.catalog.get(index as usize))
                    .is_some_and(|t| t.retention.after(row.decided_at) <= today);
                if !ended {
                    continue;
                }
                tx.erase_record(&row.tombstone(today))?;
                if row.meta.status == Status::Pending {
                    report.pending += 1;
                    self.delta.pending -= 1;
                } else {
                    report.rejected += 1;
                }
                outside.push(format!(
                    "{}/{} ({})",
                    row.key.provider,
                    row.key.id,
                    if row.meta.status == Status::Pending {
                        "waiting for review"
                    } else {
                        "rejected in review"
                    }
                ));
            }
            if erasable.records.is_empty() && erasable.facts.is_empty() {
                tx.set_retention_ends(subject, erasable.retention_ends)?;
                if !outside.is_empty() {
                    report.subjects += 1;
                    drafts.push(AuditDraft {
                        subject: Some(subject),
                        detail: format!(
                            "erased at the end of retention on {today}: {} records never in \
                             effect ({})",
                            outside.len(),
                            outside.join(", ")
                        ),
                        ..audit.clone()
                    });
                }
                continue;
            }
            let mut keys = Vec::with_capacity(erasable.records.len());
            for &index in &erasable.records {
                let key = &records[index].key;
                let held = rows
                    .as_ref()
                    .and_then(|rows| rows.iter().find(|row| &row.key == key).cloned());
                let row = match held {
                    Some(row) => row,
                    None => tx.record(key)?.ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "record {}/{} of {subject}'s history is not stored",
                            key.provider, key.id
                        ))
                    })?,
                };
                tx.erase_record(&row.tombstone(today))?;
                keys.push(format!("{}/{}", key.provider, key.id));
            }
            for &index in &erasable.facts {
                tx.delete_fact(&FactKey::of(&facts[index]))?;
            }
            // The facts about them that never took effect (an objection or
            // a repair application waiting for a reviewer, or refused) go
            // with them.
            let erased_keys: Vec<&RecordKey> =
                erasable.records.iter().map(|&i| &records[i].key).collect();
            let mut facts_aside = 0;
            for row in tx.facts_not_in_effect(subject)? {
                if row
                    .key
                    .record
                    .as_ref()
                    .is_some_and(|k| erased_keys.contains(&k))
                {
                    tx.delete_fact(&row.key)?;
                    facts_aside += 1;
                    if row.meta.status == Status::Pending {
                        self.delta.pending -= 1;
                    }
                }
            }
            let (records_out, facts_out) = (erasable.records.len(), erasable.facts.len());
            self.delta.records -= records_out as i64;
            self.delta.facts -= facts_out as i64;
            report.subjects += 1;
            report.records += records_out as u64;
            report.facts += (facts_out + facts_aside) as u64;
            drafts.push(AuditDraft {
                subject: Some(subject),
                detail: format!(
                    "erased at the end of retention on {today}: {records_out} records ({}), \
                     {} facts about them{}",
                    keys.join(", "),
                    facts_out + facts_aside,
                    if outside.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", {} records never in effect ({})",
                            outside.len(),
                            outside.join(", ")
                        )
                    }
                ),
                ..audit.clone()
            });
            // The history folds again without them, as loaded: a second
            // load would not see the erasure in every backend's view.
            let kept =
                |n: usize, gone: &[usize]| (0..n).filter(|i| !gone.contains(i)).collect::<Vec<_>>();
            let records_left = kept(records.len(), &erasable.records)
                .into_iter()
                .map(|i| records[i].clone())
                .collect();
            let facts_left = kept(facts.len(), &erasable.facts)
                .into_iter()
                .map(|i| facts[i].clone())
                .collect();
            left.push((
                subject,
                History::Decoded {
                    records: records_left,
                    facts: facts_left,
                },
            ));
        }
        let format = tx.state_format();
        fold_into(self.engine, left, format, |mut folded| {
            folded.changed_ms = self.now_ms;
            tx.write_state(folded)?;
            Ok(())
        })?;
        tx.add_counts(self.delta)?;
        Ok((report, drafts))
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
        Status::Erased => erased(key, meta),
    }
}

/// The answer to a record sent again after its erasure, whatever it holds.
fn erased(key: &ItemKey, meta: &ItemMeta) -> Outcome {
    Outcome::Conflict {
        reason: format!(
            "{key} was {}; the registry keeps nothing of it but its key",
            meta.review_note.as_deref().unwrap_or("erased")
        ),
    }
}

/// A subject's new state, ready to write, with what it was folded from.
#[derive(Clone, Debug)]
pub struct Folded {
    pub subject: SubjectId,
    /// The state as a store keeps it (open ends normalised by
    /// [`normalise_state`], no `derived`), in the backend's format. The
    /// decoded state itself is let go on the fold's threads.
    pub encoded: EncodedState,
    pub rows: Vec<ListRow>,
    pub derived: Vec<(SubjectId, DerivedEntry)>,
    /// The history folded, decoded for the engine's rulebook.
    pub records: Vec<Record>,
    pub facts: Vec<Fact>,
    /// [`SubjectState::retention_ends`] of the state, kept beside it.
    pub retention_ends: Option<Day>,
    /// When the write that folded it began ([`crate::Store::subjects_changed`]).
    pub changed_ms: i64,
}

type Loaded = (SubjectId, History);

/// Folds loaded subjects on all available cores, encoding each state in
/// `format`; the result keeps the order.
pub fn fold_loaded(
    engine: &Engine,
    loaded: Vec<Loaded>,
    format: StateFormat,
) -> Result<Vec<Folded>, StoreError> {
    let mut index: BTreeMap<SubjectId, usize> = BTreeMap::new();
    for (i, (subject, _)) in loaded.iter().enumerate() {
        index.entry(*subject).or_insert(i);
    }
    let mut out: Vec<Option<Folded>> = (0..loaded.len()).map(|_| None).collect();
    fold_into(engine, loaded, format, |folded| {
        if let Some(slot) = index.remove(&folded.subject).and_then(|i| out.get_mut(i)) {
            *slot = Some(folded);
        }
        Ok(())
    })?;
    Ok(out.into_iter().flatten().collect())
}

/// Subjects a fold thread takes at a time.
const FOLD_CHUNK: usize = 16;
/// Folded subjects waiting for `sink`, at most.
const FOLDED_WAITING: usize = 256;

/// Folds loaded subjects on all available cores, encoding each state in
/// `format`, and hands each to `sink` on the calling thread as soon as it
/// is ready, in no particular order: the caller writes states while the
/// rest are still folding. Stops at the first error (of a fold or of
/// `sink`) and returns it.
pub fn fold_into(
    engine: &Engine,
    loaded: Vec<Loaded>,
    format: StateFormat,
    mut sink: impl FnMut(Folded) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.min(loaded.len() / FOLD_CHUNK_MIN).max(1);
    if threads == 1 {
        for one in loaded {
            sink(fold_one(engine, one, format)?)?;
        }
        return Ok(());
    }
    let total = loaded.len();
    let mut chunks = Vec::with_capacity(total.div_ceil(FOLD_CHUNK));
    let mut rest = loaded.into_iter();
    loop {
        let chunk: Vec<Loaded> = rest.by_ref().take(FOLD_CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let work = std::sync::Mutex::new(chunks.into_iter());
    std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::sync_channel(FOLDED_WAITING);
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (send, work) = (send.clone(), &work);
                scope.spawn(move || loop {
                    let chunk = match work.lock() {
                        Ok(mut work) => work.next(),
                        Err(_) => None,
                    };
                    let Some(chunk) = chunk else { return };
                    for one in chunk {
                        // A closed channel: the caller stopped at an error.
                        if send.send(fold_one(engine, one, format)).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        drop(send);
        let mut received = 0usize;
        let mut result = Ok(());
        for folded in receive.iter() {
            received += 1;
            if let Err(error) = folded.and_then(&mut sink) {
                result = Err(error);
                break;
            }
        }
        drop(receive);
        let panicked = workers.into_iter().any(|worker| worker.join().is_err());
        result?;
        if panicked || received != total {
            return Err(StoreError::Corrupt("the fold of a subject panicked".into()));
        }
        Ok(())
    })
}

fn fold_one(
    engine: &Engine,
    (subject, history): Loaded,
    format: StateFormat,
) -> Result<Folded, StoreError> {
    let (records, facts) = match history {
        History::Rows { records, facts } => decode_subject(&engine.rulebook, &records, &facts)?,
        History::Decoded { records, facts } => (records, facts),
    };
    let mut state = fold_subject(engine, subject, &records, &facts);
    let derived = engine.reach(&state);
    let rows = list_rows(&state, &derived);
    let retention_ends = state.retention_ends();
    let encoded = match format {
        StateFormat::Json => {
            // Closing and then reopening the ends is what reading the JSON
            // back does: the state kept equals the state read.
            close_open_ends(&mut state);
            let json = serde_json::to_string(&state).map_err(|error| {
                StoreError::Corrupt(format!("state of {subject} does not serialise: {error}"))
            })?;
            normalise_state(&mut state);
            EncodedState::Json(json)
        }
        StateFormat::Binary => {
            normalise_state(&mut state);
            EncodedState::Binary(encode_state(&state))
        }
    };
    Ok(Folded {
        subject,
        encoded,
        rows,
        derived,
        records,
        facts,
        retention_ends,
        changed_ms: 0,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{engine, person, record};

    fn loaded(engine: &Engine, subjects: u16) -> Vec<Loaded> {
        let fare = engine.rulebook.catalog[0].id;
        (0..subjects)
            .map(|n| {
                let subject = person(n);
                let records = vec![record(
                    engine,
                    &format!("r{n}"),
                    subject,
                    &fare,
                    "2026-01-05",
                    Default::default(),
                )];
                let history = History::Decoded {
                    records,
                    facts: Vec::new(),
                };
                (subject, history)
            })
            .collect()
    }

    /// Every subject reaches the sink once, folded as a fold of its own
    /// records gives it, on several threads or one.
    #[test]
    fn every_subject_is_folded_once() {
        let engine = engine();
        for subjects in [3, 500] {
            let mut seen = BTreeMap::new();
            fold_into(
                &engine,
                loaded(&engine, subjects),
                StateFormat::Binary,
                |folded| {
                    let EncodedState::Binary(bytes) = &folded.encoded else {
                        panic!("asked for the binary form");
                    };
                    let state = crate::decode_state(folded.subject, bytes).expect("decode");
                    let mut fresh = fold_subject(&engine, folded.subject, &folded.records, &[]);
                    normalise_state(&mut fresh);
                    assert_eq!(state, fresh);
                    *seen.entry(folded.subject).or_insert(0) += 1;
                    Ok(())
                },
            )
            .expect("fold");
            assert_eq!(seen.len(), usize::from(subjects));
            assert!(seen.values().all(|&n| n == 1));
        }
    }

    /// The first error of the sink stops the fold and is what it returns.
    #[test]
    fn an_error_of_the_sink_stops_the_fold() {
        let engine = engine();
        let mut calls = 0;
        let result = fold_into(&engine, loaded(&engine, 500), StateFormat::Json, |_| {
            calls += 1;
            if calls == 10 {
                return Err(StoreError::Unavailable("disk full".into()));
            }
            Ok(())
        });
        assert_eq!(result, Err(StoreError::Unavailable("disk full".into())));
        assert_eq!(calls, 10);
    }
}
