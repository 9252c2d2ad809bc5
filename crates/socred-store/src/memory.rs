//! An in-memory [`Store`] for tests: the same semantics as the real
//! backends (it runs the shared write logic and passes the conformance
//! suite), no durability. A write works on a copy of everything and swaps
//! it in when it succeeds, which is how it keeps the all-or-nothing rule;
//! that costs a copy per write and is fine for a fake.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use socred_core::record::Outcome as Resolution;
use socred_core::state::{DerivedEntry, Span, SubjectState};
use socred_core::{Day, Engine, Fact, FactKind, Record, RecordKey, Rulebook, SubjectId};

use crate::audit::{chain_drafts, AuditDraft, AuditEntry, GENESIS_HASH};
use crate::codec::decode_state;
use crate::rows::{FactRow, ItemMeta, RecordRow, Status};
use crate::write::{
    normalise_state, CountsDelta, EncodedState, Erasure, Folded, History, ListRow, StateFormat,
    WriteTx, Writer,
};
use crate::{
    clamp_limit, empty_state, now_ms, sort_derived, Counts, Drawing, Edition, EditionMember,
    EditionPage, FactKey, ItemKey, Outcome, PendingItem, Principal, RulebookVersion, Store,
    StoreError, Submission, UnfinishedRecompute,
};

/// The writer of a write that folds with `engine`, unless the store names
/// another rulebook as in force (`check_rulebook`).
fn writer<'e>(inner: &Inner, engine: &'e Engine) -> Result<Writer<'e>, StoreError> {
    let in_force = inner
        .rulebooks
        .last()
        .map(|(version, _)| version.label.as_str());
    crate::check_rulebook(in_force, engine)?;
    Ok(Writer::new(engine, now_ms()))
}

#[derive(Clone, Debug, Default)]
struct Inner {
    records: BTreeMap<RecordKey, RecordRow>,
    facts: BTreeMap<FactKey, FactRow>,
    records_by_subject: BTreeMap<SubjectId, BTreeSet<RecordKey>>,
    pending_seq: u64,
    /// Encoded as the store keeps them (binary, or JSON written by hand
    /// in tests), decoded on every read like a real backend's rows.
    states: BTreeMap<SubjectId, EncodedState>,
    /// Beside each state: when a write last changed it
    /// ([`Store::subjects_changed`]).
    changed_ms: BTreeMap<SubjectId, i64>,
    /// Beside each state: the day a record of it is first past retention.
    retention_ends: BTreeMap<SubjectId, Option<Day>>,
    /// By source subject.
    list_rows: BTreeMap<SubjectId, Vec<ListRow>>,
    /// By source subject: (target, entry).
    derived: BTreeMap<SubjectId, Vec<(SubjectId, DerivedEntry)>>,
    /// id -> (principal, token hash).
    principals: BTreeMap<String, (Principal, String)>,
    rulebooks: Vec<(RulebookVersion, String)>,
    /// What the last upload left to recompute.
    unfinished: Option<UnfinishedRecompute>,
    audit: Vec<AuditEntry>,
    head: Option<(u64, String)>,
    /// The last entry removed at the end of the log's retention.
    anchor: Option<(u64, String)>,
    secrets: BTreeMap<String, Vec<u8>>,
    /// By name: the holder and when its time runs out.
    leases: BTreeMap<String, (String, i64)>,
    /// By list: the last edition published and its subjects.
    editions: BTreeMap<String, (Edition, BTreeMap<SubjectId, bool>)>,
    counts: Counts,
}

impl Inner {
    /// Removes the `n` oldest audit entries, moving the anchor to the last.
    fn remove_oldest_audit(&mut self, n: usize) {
        if let Some(last) = self.audit.drain(..n).next_back() {
            self.anchor = Some((last.seq, last.hash));
        }
    }
}

/// The in-memory store. Cheap to create: one per test.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        self.inner.lock().map_err(|_| {
            StoreError::Unavailable("the in-memory store was poisoned by a panic".into())
        })
    }

    /// Runs `write` on a copy and keeps the copy only if it succeeds.
    fn write<R>(
        &self,
        write: impl FnOnce(&mut Inner) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut guard = self.lock()?;
        let mut copy = guard.clone();
        let result = write(&mut copy)?;
        *guard = copy;
        Ok(result)
    }

    /// Removes the log's entries up to `through` behind its back, moving
    /// the anchor as a real removal would but appending nothing that says
    /// so, so that tests can check that `verify` catches it.
    pub fn remove_audit_entries_for_tests(&self, through: u64) {
        if let Ok(mut inner) = self.lock() {
            let removed = inner.audit.iter().take_while(|e| e.seq <= through).count();
            inner.remove_oldest_audit(removed);
        }
    }

    /// Changes an audit entry's detail behind the log's back, so that tests
    /// can check that the chain catches it. Returns false when there is no
    /// such entry.
    pub fn alter_audit_entry_for_tests(&self, seq: u64, detail: &str) -> bool {
        let Ok(mut inner) = self.lock() else {
            return false;
        };
        match inner.audit.iter_mut().find(|e| e.seq == seq) {
            Some(entry) => {
                entry.entry.detail = detail.to_string();
                true
            }
            None => false,
        }
    }
}

impl WriteTx for Inner {
    fn insert_record(
        &mut self,
        row: &RecordRow,
        _record: &Record,
    ) -> Result<Option<RecordRow>, StoreError> {
        if let Some(held) = self.records.get(&row.key) {
            return Ok(Some(held.clone()));
        }
        self.records.insert(row.key.clone(), row.clone());
        self.records_by_subject
            .entry(row.subject)
            .or_default()
            .insert(row.key.clone());
        Ok(None)
    }

    fn insert_fact(&mut self, row: &FactRow) -> Result<Option<FactRow>, StoreError> {
        if let Some(held) = self.facts.get(&row.key) {
            return Ok(Some(held.clone()));
        }
        self.facts.insert(row.key.clone(), row.clone());
        Ok(None)
    }

    fn record(&mut self, key: &RecordKey) -> Result<Option<RecordRow>, StoreError> {
        Ok(self.records.get(key).cloned())
    }

    fn fact(&mut self, key: &FactKey) -> Result<Option<FactRow>, StoreError> {
        Ok(self.facts.get(key).cloned())
    }

    fn set_meta(&mut self, key: &ItemKey, meta: &ItemMeta) -> Result<(), StoreError> {
        let slot = match key {
            ItemKey::Record(key) => self.records.get_mut(key).map(|row| &mut row.meta),
            ItemKey::Fact(key) => self.facts.get_mut(key).map(|row| &mut row.meta),
        };
        let slot = slot.ok_or_else(|| StoreError::NotFound(key.to_string()))?;
        *slot = meta.clone();
        Ok(())
    }

    fn next_pending_seq(&mut self) -> Result<u64, StoreError> {
        self.pending_seq += 1;
        Ok(self.pending_seq)
    }

    fn load_subject(&mut self, subject: SubjectId) -> Result<History, StoreError> {
        let (records, facts) = self.rows_of(subject);
        Ok(History::Rows { records, facts })
    }

    fn state_format(&self) -> StateFormat {
        StateFormat::Binary
    }

    fn write_state(&mut self, folded: Folded) -> Result<bool, StoreError> {
        let subject = folded.subject;
        let new = self.states.insert(subject, folded.encoded).is_none();
        self.changed_ms.insert(subject, folded.changed_ms);
        self.retention_ends.insert(subject, folded.retention_ends);
        self.list_rows.insert(subject, folded.rows);
        // The subjects its entries reach, before and after, change too.
        let before = self.derived.insert(subject, folded.derived);
        let reached = (before.iter().flatten())
            .chain(self.derived.get(&subject).into_iter().flatten())
            .map(|(target, _)| *target)
            .collect::<BTreeSet<_>>();
        for target in reached {
            if self.states.contains_key(&target) {
                self.changed_ms.insert(target, folded.changed_ms);
            }
        }
        Ok(new)
    }

    fn set_retention_ends(
        &mut self,
        subject: SubjectId,
        day: Option<Day>,
    ) -> Result<(), StoreError> {
        if self.states.contains_key(&subject) {
            self.retention_ends.insert(subject, day);
        }
        Ok(())
    }

    fn add_counts(&mut self, delta: CountsDelta) -> Result<(), StoreError> {
        let add = |total: &mut u64, change: i64| *total = total.saturating_add_signed(change);
        add(&mut self.counts.subjects, delta.subjects);
        add(&mut self.counts.records, delta.records);
        add(&mut self.counts.facts, delta.facts);
        add(&mut self.counts.pending, delta.pending);
        Ok(())
    }

    fn append_audit(&mut self, drafts: &[AuditDraft]) -> Result<Vec<u64>, StoreError> {
        let head = self.head.clone().unwrap_or((0, GENESIS_HASH.to_string()));
        let (entries, new_head) = chain_drafts((head.0, &head.1), drafts);
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let seqs = entries.iter().map(|e| e.seq).collect();
        self.counts.audit_entries += entries.len() as u64;
        self.audit.extend(entries);
        self.head = Some(new_head);
        Ok(seqs)
    }

    fn erase_record(&mut self, tombstone: &RecordRow) -> Result<(), StoreError> {
        let row = self.records.get_mut(&tombstone.key).ok_or_else(|| {
            StoreError::NotFound(ItemKey::Record(tombstone.key.clone()).to_string())
        })?;
        *row = tombstone.clone();
        if let Some(keys) = self.records_by_subject.get_mut(&tombstone.subject) {
            keys.remove(&tombstone.key);
        }
        Ok(())
    }

    fn records_not_in_effect(&mut self, subject: SubjectId) -> Result<Vec<RecordRow>, StoreError> {
        Ok(self.not_in_effect_of(subject))
    }

    fn facts_not_in_effect(&mut self, subject: SubjectId) -> Result<Vec<FactRow>, StoreError> {
        Ok(self
            .facts
            .range(fact_range(subject))
            .map(|(_, row)| row)
            .filter(|row| matches!(row.meta.status, Status::Pending | Status::Rejected))
            .cloned()
            .collect())
    }

    fn delete_fact(&mut self, key: &FactKey) -> Result<(), StoreError> {
        self.facts
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| StoreError::NotFound(ItemKey::Fact(key.clone()).to_string()))
    }
}

/// All fact keys of one subject: keys order by subject first.
fn fact_range(subject: SubjectId) -> std::ops::RangeInclusive<FactKey> {
    let key = |kind: &str, at: Day| FactKey {
        subject,
        kind: kind.to_string(),
        record: None,
        at,
        by: Arc::from(""),
    };
    // Kinds are lower-case ASCII names; "~" sorts after all of them.
    key("", Day::MIN)..=key("~", Day::MAX)
}

impl Inner {
    /// The rows in effect about `subject`.
    fn not_in_effect_of(&self, subject: SubjectId) -> Vec<RecordRow> {
        self.records
            .values()
            .filter(|row| {
                row.subject == subject
                    && matches!(row.meta.status, Status::Pending | Status::Rejected)
            })
            .cloned()
            .collect()
    }

    fn rows_of(&self, subject: SubjectId) -> (Vec<RecordRow>, Vec<FactRow>) {
        let records = self
            .records_by_subject
            .get(&subject)
            .into_iter()
            .flatten()
            .filter_map(|key| self.records.get(key))
            .filter(|row| row.meta.status == Status::Effective)
            .cloned()
            .collect();
        let facts = self
            .facts
            .range(fact_range(subject))
            .map(|(_, row)| row)
            .filter(|row| row.meta.status == Status::Effective)
            .cloned()
            .collect();
        (records, facts)
    }

    fn state(&self, subject: SubjectId) -> Result<Option<SubjectState>, StoreError> {
        let mut derived: Vec<DerivedEntry> = self
            .derived
            .values()
            .flatten()
            .filter(|(target, _)| *target == subject)
            .map(|(_, entry)| entry.clone())
            .collect();
        let mut state = match self.states.get(&subject) {
            Some(EncodedState::Binary(bytes)) => decode_state(subject, bytes)?,
            Some(EncodedState::Json(json)) => {
                serde_json::from_str::<SubjectState>(json).map_err(|error| {
                    StoreError::Corrupt(format!(
                        "stored state of {subject} does not read back: {error}"
                    ))
                })?
            }
            None if derived.is_empty() => return Ok(None),
            None => empty_state(subject),
        };
        sort_derived(&mut derived);
        state.derived = derived;
        normalise_state(&mut state);
        Ok(Some(state))
    }

    fn pending_items(&self, rulebook: &Rulebook) -> Result<Vec<PendingItem>, StoreError> {
        let records: Vec<_> = self
            .records
            .values()
            .filter(|r| r.meta.status == Status::Pending)
            .cloned()
            .collect();
        let facts: Vec<_> = self
            .facts
            .values()
            .filter(|r| r.meta.status == Status::Pending)
            .cloned()
            .collect();
        crate::pending_items(rulebook, records, facts, usize::MAX)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ingest(
        &self,
        engine: &Arc<Engine>,
        batch: Vec<Submission>,
        audit: Vec<AuditDraft>,
    ) -> Result<Vec<Outcome>, StoreError> {
        self.write(|inner| writer(inner, engine)?.ingest(inner, batch, &audit))
    }

    async fn approve(
        &self,
        engine: &Arc<Engine>,
        key: &ItemKey,
        reviewer: &str,
        today: Day,
        audit: Vec<AuditDraft>,
    ) -> Result<PendingItem, StoreError> {
        self.write(|inner| writer(inner, engine)?.approve(inner, key, reviewer, today, &audit))
    }

    async fn reject(
        &self,
        engine: &Arc<Engine>,
        key: &ItemKey,
        reviewer: &str,
        reason: &str,
        audit: Vec<AuditDraft>,
    ) -> Result<PendingItem, StoreError> {
        self.write(|inner| writer(inner, engine)?.reject(inner, key, reviewer, reason, &audit))
    }

    async fn pending(
        &self,
        rulebook: &Rulebook,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<PendingItem>, StoreError> {
        let items = self.lock()?.pending_items(rulebook)?;
        let after = after.unwrap_or(0);
        Ok(items
            .into_iter()
            .filter(|item| item.seq > after)
            .take(clamp_limit(limit))
            .collect())
    }

    async fn pending_about(
        &self,
        rulebook: &Rulebook,
        subject: SubjectId,
        limit: usize,
    ) -> Result<Vec<PendingItem>, StoreError> {
        let items = self.lock()?.pending_items(rulebook)?;
        Ok(items
            .into_iter()
            .filter(|item| item.item.subject() == subject)
            .take(clamp_limit(limit))
            .collect())
    }

    async fn disputed_subjects(
        &self,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError> {
        let inner = self.lock()?;
        let effective = |row: &FactRow| row.meta.status == Status::Effective;
        let mut subjects: Vec<SubjectId> = Vec::new();
        for (key, row) in &inner.facts {
            if key.kind != "disputed"
                || !effective(row)
                || after.is_some_and(|after| key.subject <= after)
                || subjects.last() == Some(&key.subject)
            {
                continue;
            }
            let resolved = inner.facts.iter().any(|(other, row)| {
                other.subject == key.subject
                    && other.kind == "resolved"
                    && other.record == key.record
                    && other.at >= key.at
                    && effective(row)
            });
            if !resolved {
                subjects.push(key.subject);
                if subjects.len() == clamp_limit(limit) {
                    break;
                }
            }
        }
        Ok(subjects)
    }

    async fn state(&self, subject: SubjectId) -> Result<Option<Arc<SubjectState>>, StoreError> {
        Ok(self.lock()?.state(subject)?.map(Arc::new))
    }

    async fn records(
        &self,
        rulebook: &Rulebook,
        subject: SubjectId,
    ) -> Result<(Vec<Record>, Vec<Fact>), StoreError> {
        let (record_rows, fact_rows) = self.lock()?.rows_of(subject);
        crate::decode_subject(rulebook, &record_rows, &fact_rows)
    }

    async fn subjects(
        &self,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError> {
        let inner = self.lock()?;
        let subjects = inner
            .states
            .keys()
            .filter(|s| after.is_none_or(|a| **s > a));
        Ok(subjects.take(clamp_limit(limit)).copied().collect())
    }

    async fn subjects_changed(
        &self,
        since_ms: i64,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError> {
        let inner = self.lock()?;
        let changed = (inner.changed_ms.iter())
            .filter(|&(subject, &at)| at >= since_ms && after.is_none_or(|a| *subject > a))
            .filter(|(subject, _)| inner.states.contains_key(subject));
        Ok(changed.map(|(s, _)| *s).take(clamp_limit(limit)).collect())
    }

    async fn list_members(
        &self,
        list: &str,
        day: Day,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<(SubjectId, Span)>, StoreError> {
        let inner = self.lock()?;
        let mut best: BTreeMap<SubjectId, Span> = BTreeMap::new();
        for row in inner.list_rows.values().flatten() {
            if &*row.list != list
                || !(row.start <= day && day < row.end)
                || after.is_some_and(|a| row.subject <= a)
            {
                continue;
            }
            let slot = best.entry(row.subject).or_insert(row.entry);
            if later_entry(row.entry, *slot) {
                *slot = row.entry;
            }
        }
        Ok(best.into_iter().take(clamp_limit(limit)).collect())
    }

    async fn edition(&self, list: &str) -> Result<Option<Edition>, StoreError> {
        Ok(self
            .lock()?
            .editions
            .get(list)
            .map(|(edition, _)| edition.clone()))
    }

    async fn editions(&self) -> Result<Vec<(String, Edition)>, StoreError> {
        Ok(self
            .lock()?
            .editions
            .iter()
            .map(|(list, (edition, _))| (list.clone(), edition.clone()))
            .collect())
    }

    async fn edition_members(
        &self,
        list: &str,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Option<EditionPage>, StoreError> {
        let inner = self.lock()?;
        let Some((edition, members)) = inner.editions.get(list) else {
            return Ok(None);
        };
        let from = match after {
            Some(after) => std::ops::Bound::Excluded(after),
            None => std::ops::Bound::Unbounded,
        };
        let members = members
            .range((from, std::ops::Bound::Unbounded))
            .take(clamp_limit(limit))
            .map(|(&subject, &named)| EditionMember { subject, named })
            .collect();
        Ok(Some(EditionPage {
            edition: edition.clone(),
            members,
        }))
    }

    async fn publish_edition(
        &self,
        list: &str,
        drawing: Drawing<'_>,
        members: Vec<EditionMember>,
        audit: Vec<AuditDraft>,
    ) -> Result<bool, StoreError> {
        let (day, rulebook, drawn, mark_ms) = (
            drawing.day,
            drawing.rulebook,
            drawing.drawn,
            drawing.mark_ms,
        );
        self.write(|inner| {
            if inner.editions.get(list).is_some_and(|(edition, _)| {
                edition.day == day && edition.rulebook == rulebook && edition.drawn == drawn
            }) {
                return Ok(false);
            }
            let members: BTreeMap<SubjectId, bool> = crate::edition_members_once(members)
                .into_iter()
                .map(|m| (m.subject, m.named))
                .collect();
            let edition = Edition {
                day,
                rulebook: rulebook.to_string(),
                drawn,
                members: members.len() as u64,
                mark_ms: Some(mark_ms),
            };
            inner.editions.insert(list.to_string(), (edition, members));
            inner.append_audit(&audit)?;
            Ok(true)
        })
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        Ok(self.lock()?.counts)
    }

    async fn held_record_types(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let inner = self.lock()?;
        let mut held = BTreeMap::new();
        for row in inner.records.values() {
            if row.meta.status != Status::Erased {
                *held.entry(row.type_id.as_str().to_string()).or_default() += 1;
            }
        }
        Ok(held)
    }

    async fn put_rulebook(
        &self,
        label: &str,
        text: &str,
        uploaded_by: &str,
        audit: Vec<AuditDraft>,
    ) -> Result<RulebookVersion, StoreError> {
        self.write(|inner| {
            if inner.rulebooks.iter().any(|(v, t)| v.label == label && t != text) {
                return Err(StoreError::Conflict(format!(
                    "rulebook {label} was uploaded before with other text: give the new text a new version"
                )));
            }
            let version =
                RulebookVersion { label: label.to_string(), uploaded_at_ms: now_ms(), uploaded_by: uploaded_by.to_string() };
            inner.rulebooks.push((version.clone(), text.to_string()));
            inner.unfinished = Some(UnfinishedRecompute { rulebook: label.to_string(), after: String::new() });
            inner.counts.rulebooks += 1;
            inner.append_audit(&audit)?;
            Ok(version)
        })
    }

    async fn current_rulebook(&self) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .lock()?
            .rulebooks
            .last()
            .map(|(v, t)| (v.label.clone(), t.clone())))
    }

    async fn rulebooks(&self) -> Result<Vec<RulebookVersion>, StoreError> {
        Ok(self
            .lock()?
            .rulebooks
            .iter()
            .map(|(v, _)| v.clone())
            .collect())
    }

    async fn recompute_all(&self, engine: &Arc<Engine>) -> Result<u64, StoreError> {
        self.write(|inner| {
            let subjects: Vec<SubjectId> = inner.states.keys().copied().collect();
            let count = subjects.len() as u64;
            writer(inner, engine)?.recompute(inner, subjects)?;
            // One transaction: it finishes whatever an upload left.
            if inner
                .unfinished
                .as_ref()
                .is_some_and(|u| u.rulebook == engine.rulebook.label())
            {
                inner.unfinished = None;
            }
            Ok(count)
        })
    }

    async fn unfinished_recompute(&self) -> Result<Option<UnfinishedRecompute>, StoreError> {
        Ok(self.lock()?.unfinished.clone())
    }

    /// A subject's access log is read from the log itself: nothing beside
    /// it can disagree.
    async fn check_audit_by_subject(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    async fn erase(
        &self,
        engine: &Arc<Engine>,
        subjects: Vec<SubjectId>,
        today: Day,
        audit: AuditDraft,
    ) -> Result<Erasure, StoreError> {
        self.write(|inner| {
            let (erasure, entries) =
                writer(inner, engine)?.erase(inner, subjects, today, &audit)?;
            inner.append_audit(&entries)?;
            Ok(erasure)
        })
    }

    async fn subjects_past_retention(
        &self,
        today: Day,
        after: Option<(Day, SubjectId)>,
        limit: usize,
    ) -> Result<Vec<(Day, SubjectId)>, StoreError> {
        let inner = self.lock()?;
        let mut due: Vec<(Day, SubjectId)> = inner
            .retention_ends
            .iter()
            .filter_map(|(subject, day)| day.map(|day| (day, *subject)))
            .filter(|&(day, _)| day <= today)
            .filter(|due| after.is_none_or(|a| *due > a))
            .collect();
        due.sort_unstable();
        due.truncate(clamp_limit(limit));
        Ok(due)
    }

    async fn subjects_not_in_effect(
        &self,
        after: Option<SubjectId>,
        decided_by: Day,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError> {
        let inner = self.lock()?;
        let decided_in_time = |key: &RecordKey| {
            inner
                .records
                .get(key)
                .is_some_and(|row| row.decided_at <= decided_by)
        };
        let subjects: BTreeSet<SubjectId> = inner
            .records
            .values()
            .filter(|row| matches!(row.meta.status, Status::Pending | Status::Rejected))
            .filter(|row| row.decided_at <= decided_by)
            .map(|row| row.subject)
            .chain(
                inner
                    .facts
                    .values()
                    .filter(|row| {
                        let retracts = row.key.kind == "retracted"
                            || (row.key.kind == "resolved"
                                && matches!(
                                    row.to_fact(),
                                    Ok((
                                        Fact {
                                            kind: FactKind::Resolved {
                                                outcome: Resolution::Retracted,
                                                ..
                                            },
                                            ..
                                        },
                                        _
                                    ))
                                ));
                        retracts
                            && row.meta.status == Status::Effective
                            && row.key.record.as_ref().is_some_and(decided_in_time)
                    })
                    .map(|row| row.key.subject),
            )
            .filter(|subject| after.is_none_or(|a| *subject > a))
            .collect();
        Ok(subjects.into_iter().take(clamp_limit(limit)).collect())
    }

    async fn put_principal(
        &self,
        principal: &Principal,
        token_hash: &str,
        audit: Vec<AuditDraft>,
    ) -> Result<(), StoreError> {
        self.write(|inner| {
            if let Some((other, _)) = inner
                .principals
                .values()
                .find(|(p, h)| h == token_hash && p.id != principal.id)
            {
                return Err(StoreError::Conflict(format!(
                    "principal `{}` already holds this token",
                    other.id
                )));
            }
            let mut principal = principal.clone();
            principal.revoked = false;
            if inner
                .principals
                .insert(principal.id.clone(), (principal, token_hash.to_string()))
                .is_none()
            {
                inner.counts.principals += 1;
            }
            inner.append_audit(&audit)?;
            Ok(())
        })
    }

    async fn principal_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<Principal>, StoreError> {
        let inner = self.lock()?;
        let found = inner
            .principals
            .values()
            .find(|(p, h)| h == token_hash && !p.revoked);
        Ok(found.map(|(p, _)| p.clone()))
    }

    async fn principals(&self) -> Result<Vec<Principal>, StoreError> {
        Ok(self
            .lock()?
            .principals
            .values()
            .map(|(p, _)| p.clone())
            .collect())
    }

    async fn revoke(&self, id: &str, audit: Vec<AuditDraft>) -> Result<(), StoreError> {
        self.write(|inner| {
            let (principal, _) = inner
                .principals
                .get_mut(id)
                .ok_or_else(|| StoreError::NotFound(format!("principal `{id}`")))?;
            principal.revoked = true;
            inner.append_audit(&audit)?;
            Ok(())
        })
    }

    async fn append_audit(&self, entries: Vec<AuditDraft>) -> Result<Vec<u64>, StoreError> {
        self.write(|inner| WriteTx::append_audit(inner, &entries))
    }

    async fn audit(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .audit
            .iter()
            .filter(|e| e.seq > after)
            .take(clamp_limit(limit))
            .cloned()
            .collect())
    }

    async fn audit_for_subject(
        &self,
        subject: SubjectId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let inner = self.lock()?;
        let entries = inner
            .audit
            .iter()
            .filter(|e| e.seq > after && e.entry.subject == Some(subject));
        Ok(entries.take(clamp_limit(limit)).cloned().collect())
    }

    async fn audit_head(&self) -> Result<Option<(u64, String)>, StoreError> {
        Ok(self.lock()?.head.clone())
    }

    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.write(|inner| {
            Ok(inner
                .secrets
                .entry(name.to_string())
                .or_insert_with(|| fresh.to_vec())
                .clone())
        })
    }

    async fn lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write(|inner| {
            let free = inner
                .leases
                .get(name)
                .is_none_or(|(held_by, until)| held_by == holder || *until <= now_ms);
            if free {
                inner
                    .leases
                    .insert(name.to_string(), (holder.to_string(), until_ms));
            }
            Ok(free)
        })
    }

    async fn audit_anchor(&self) -> Result<Option<(u64, String)>, StoreError> {
        Ok(self.lock()?.anchor.clone())
    }

    async fn audit_before(&self, before_ms: i64) -> Result<Option<u64>, StoreError> {
        let inner = self.lock()?;
        let older = inner
            .audit
            .iter()
            .take_while(|e| e.entry.at_ms < before_ms)
            .last();
        Ok(older.map(|e| e.seq))
    }

    async fn prune_audit(&self, through: u64, limit: usize) -> Result<u64, StoreError> {
        self.write(|inner| {
            let removed = inner
                .audit
                .iter()
                .take(limit)
                .take_while(|e| e.seq <= through)
                .count();
            inner.remove_oldest_audit(removed);
            inner.counts.audit_entries -= removed as u64;
            Ok(removed as u64)
        })
    }

    async fn derived_targets(&self) -> Result<Option<Vec<SubjectId>>, StoreError> {
        let targets: BTreeSet<SubjectId> = self
            .lock()?
            .derived
            .values()
            .flatten()
            .map(|(target, _)| *target)
            .collect();
        Ok(Some(targets.into_iter().collect()))
    }

    async fn list_rows_of(&self, source: SubjectId) -> Result<Option<Vec<ListRow>>, StoreError> {
        let mut rows = self
            .lock()?
            .list_rows
            .get(&source)
            .cloned()
            .unwrap_or_default();
        rows.sort();
        Ok(Some(rows))
    }
}

/// Which of two entries of one subject on one list to show: the one that
/// ends last, then the one that started first.
pub(crate) fn later_entry(candidate: Span, current: Span) -> bool {
    (candidate.end, std::cmp::Reverse(candidate.start))
        > (current.end, std::cmp::Reverse(current.start))
}
