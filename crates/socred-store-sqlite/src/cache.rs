//! What the SQLite store keeps in memory between calls, and why it can
//! never answer differently from the file (or, for the third, why no such
//! answer leaves the server).
//!
//! - [`SubjectCache`] (writer side): the decoded history of recently folded
//!   subjects (records and facts in effect, and where their records are
//!   stored), so that a batch refolds a subject without reading and
//!   decoding its records again. It lives behind the writer's lock and is
//!   trusted only while nothing else wrote to the file: every write
//!   transaction first reads `PRAGMA data_version`, which changes when
//!   another connection (another process, a hand edit) commits, and drops
//!   everything when it moved. It is also dropped when the rulebook changes
//!   (a decoded record's type index belongs to one rulebook). What a
//!   transaction learns goes in only after it commits.
//! - [`StateCache`] (reader side): decoded states next to the exact bytes
//!   they were decoded from. A read still fetches the stored bytes (one
//!   point query) and uses the decoded state only when they are identical,
//!   so a state changed by anyone, in any way, is decoded afresh; what the
//!   cache saves is the decoding and the copy.
//!
//! - [`CoherentStates`] (for answers that are audited): whole states kept
//!   in step with this store's own writes and answered without a look at
//!   the file; another writer is noticed by the audit append that follows
//!   every such answer, which then refuses it (see the type's docs).
//!
//! All are bounded; when one grows past its budget, entries are dropped
//! in no particular order (a dropped entry costs one read or decode).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use socred_core::{Fact, Record, Rulebook, SubjectId, SubjectState};

/// Records held decoded by the writer side, at most, unless the store is
/// opened with another figure ([`crate::SqliteOptions`]): each costs a few
/// hundred bytes (its key, its field map).
pub const HISTORY_RECORDS_DEFAULT: usize = 2_000_000;
/// Decoded states held by the reader side, at most, by an estimate of
/// their size in memory.
const STATE_BYTES_CACHED_MAX: usize = 256 << 20;
/// Shards of the reader side's map: readers on several threads rarely wait
/// for one another.
const SHARDS: usize = 16;

/// A subject as the last committed write left it.
#[derive(Clone, Debug)]
pub(crate) struct CachedSubject {
    /// Row numbers (`records.seq`) of its records in effect, ascending.
    pub rowids: Vec<i64>,
    /// Its records in effect, decoded for the cache's rulebook (records of
    /// types it lacks are left out, as the fold leaves them out).
    pub records: Vec<Record>,
    /// Its facts in effect.
    pub facts: Vec<Fact>,
    /// Whether it is the source of list or derived rows.
    pub sources: bool,
    /// The day kept beside its state (`states.retention_ends`).
    pub retention_ends: Option<i64>,
}

/// The writer side's decoded histories (see the module docs).
#[derive(Debug)]
pub(crate) struct SubjectCache {
    /// Records held at most.
    records_max: usize,
    /// The writer connection's `PRAGMA data_version` when the cache was
    /// last known to match the file.
    data_version: Option<i64>,
    /// The rulebook the records are decoded for; kept alive so that its
    /// address cannot be reused by another rulebook.
    rulebook: Option<Arc<Rulebook>>,
    subjects: HashMap<SubjectId, CachedSubject>,
    /// Records held, for the budget.
    records: usize,
}

impl SubjectCache {
    /// An empty cache that holds at most `records_max` records.
    pub fn new(records_max: usize) -> SubjectCache {
        SubjectCache {
            records_max,
            data_version: None,
            rulebook: None,
            subjects: HashMap::new(),
            records: 0,
        }
    }

    /// Drops everything unless nothing else wrote since the last check.
    /// Returns whether it moved (always, the first time).
    pub fn check(&mut self, data_version: i64) -> bool {
        if self.data_version == Some(data_version) {
            return false;
        }
        self.drop_subjects();
        self.data_version = Some(data_version);
        true
    }

    /// Drops everything unless it is decoded for `rulebook`.
    pub fn use_rulebook(&mut self, rulebook: &Arc<Rulebook>) {
        let same = self
            .rulebook
            .as_ref()
            .is_some_and(|kept| Arc::ptr_eq(kept, rulebook));
        if !same {
            self.drop_subjects();
            self.rulebook = Some(rulebook.clone());
        }
    }

    /// Takes the subject out, for a transaction to fold it and hand back
    /// its new history once committed (a transaction that fails leaves it
    /// out: it is read from the file next time).
    pub fn take(&mut self, subject: &SubjectId) -> Option<CachedSubject> {
        let entry = self.subjects.remove(subject)?;
        self.records -= entry.records.len();
        Some(entry)
    }

    /// Forgets everything, including that it matched the file (after a
    /// failed commit, whose outcome is unknown).
    pub fn clear(&mut self) {
        self.drop_subjects();
        self.data_version = None;
    }

    fn drop_subjects(&mut self) {
        self.subjects.clear();
        self.records = 0;
    }

    /// Takes in what a committed transaction wrote.
    pub fn apply(&mut self, staged: Vec<(SubjectId, CachedSubject)>) {
        for (subject, entry) in staged {
            self.records += entry.records.len();
            if let Some(old) = self.subjects.insert(subject, entry) {
                self.records -= old.records.len();
            }
        }
        if self.records > self.records_max {
            let keep = self.records_max / 4 * 3;
            let mut records = self.records;
            self.subjects.retain(|_, entry| {
                if records <= keep {
                    return true;
                }
                records -= entry.records.len();
                false
            });
            self.records = records;
        }
    }
}

/// A decoded state and the bytes it was decoded from.
struct StateEntry {
    stored: Box<[u8]>,
    state: Arc<SubjectState>,
    weight: usize,
}

#[derive(Default)]
struct Shard {
    states: HashMap<SubjectId, StateEntry>,
    weight: usize,
}

/// The reader side's decoded states (see the module docs).
pub(crate) struct StateCache {
    shards: Vec<Mutex<Shard>>,
}

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCache").finish_non_exhaustive()
    }
}

impl Default for StateCache {
    fn default() -> StateCache {
        StateCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl StateCache {
    fn shard(&self, subject: &SubjectId) -> Option<&Mutex<Shard>> {
        self.shards.get(shard_index(subject))
    }

    /// The state decoded from exactly `stored`, if it is held.
    pub fn get(&self, subject: &SubjectId, stored: &[u8]) -> Option<Arc<SubjectState>> {
        let shard = self.shard(subject)?.lock().ok()?;
        let entry = shard.states.get(subject)?;
        (*entry.stored == *stored).then(|| entry.state.clone())
    }

    /// Keeps `state`, decoded from `stored`.
    pub fn put(&self, subject: SubjectId, stored: &[u8], state: Arc<SubjectState>) {
        let Some(Ok(mut shard)) = self.shard(&subject).map(Mutex::lock) else {
            return;
        };
        // Decoded, a state takes several times its stored size.
        let weight = stored.len() * 6 + 256;
        let entry = StateEntry {
            stored: stored.into(),
            state,
            weight,
        };
        shard.weight += weight;
        if let Some(old) = shard.states.insert(subject, entry) {
            shard.weight -= old.weight;
        }
        let budget = STATE_BYTES_CACHED_MAX / SHARDS;
        if shard.weight > budget {
            let keep = budget / 4 * 3;
            let mut weight = shard.weight;
            shard.states.retain(|_, entry| {
                if weight <= keep {
                    return true;
                }
                weight -= entry.weight;
                false
            });
            shard.weight = weight;
        }
    }
}

/// Whole states (with the entries reaching them) as the last write of this
/// store left them, for [`socred_store::Store::state_marked`]: answered
/// from memory without a look at the file.
///
/// Kept in step with this store's own writes: a committed write removes
/// the subjects it changed before it returns, and a reader puts a state in
/// only if no write removed anything from its shard since the reader began
/// reading the file (each shard counts its removals), so an entry is never
/// older than a write acknowledged before it was put in.
///
/// What memory cannot see (another process's commit, a hand edit) is
/// noticed by the next write transaction of this store, through `PRAGMA
/// data_version`: the whole map is dropped and a new epoch begins. A read
/// from memory is marked with the epoch it was made in; the audit append
/// that must follow it is itself a write transaction, and refuses the
/// marks of an earlier epoch once it has looked.
pub(crate) struct CoherentStates {
    shards: Vec<Mutex<CoherentShard>>,
    epoch: AtomicU64,
}

#[derive(Default)]
struct CoherentShard {
    /// None: the registry knows nothing in effect about the subject.
    states: HashMap<SubjectId, Option<Arc<SubjectState>>>,
    /// Removals so far (see the type's docs).
    removals: u64,
    weight: usize,
}

impl std::fmt::Debug for CoherentStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoherentStates")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl Default for CoherentStates {
    fn default() -> CoherentStates {
        CoherentStates {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            epoch: AtomicU64::new(0),
        }
    }
}

/// Where a reader stood when it began reading the file (see `put`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    removals: u64,
}

impl CoherentStates {
    fn shard(&self, subject: &SubjectId) -> Option<&Mutex<CoherentShard>> {
        self.shards.get(shard_index(subject))
    }

    /// The current epoch. Read it before looking the subject up: a lookup
    /// that raced with the end of the epoch then carries the old one.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The state held for `subject` (Some(None): known to have none).
    pub fn get(&self, subject: &SubjectId) -> Option<Option<Arc<SubjectState>>> {
        let shard = self.shard(subject)?.lock().ok()?;
        shard.states.get(subject).cloned()
    }

    /// To take before reading `subject` from the file.
    pub fn ticket(&self, subject: &SubjectId) -> Option<Ticket> {
        let shard = self.shard(subject)?.lock().ok()?;
        Some(Ticket {
            removals: shard.removals,
        })
    }

    /// Keeps what a reader read from the file, unless a write removed
    /// anything from the subject's shard since it took `ticket`.
    pub fn put(&self, subject: SubjectId, ticket: Ticket, state: Option<Arc<SubjectState>>) {
        let Some(Ok(mut shard)) = self.shard(&subject).map(Mutex::lock) else {
            return;
        };
        if shard.removals != ticket.removals {
            return;
        }
        let weight = state.as_ref().map_or(64, |state| weight_of(state));
        shard.weight += weight;
        if let Some(old) = shard.states.insert(subject, state) {
            shard.weight -= old.as_ref().map_or(64, |state| weight_of(state));
        }
        if shard.weight > STATE_BYTES_CACHED_MAX / SHARDS {
            // Dropping entries needs no removal count: a reader's entry
            // that goes in later is as fresh as its ticket says.
            shard.states.clear();
            shard.weight = 0;
        }
    }

    /// Forgets `subjects` (a write changed them); before the write returns.
    pub fn remove(&self, subjects: &[SubjectId]) {
        for subject in subjects {
            if let Some(Ok(mut shard)) = self.shard(subject).map(Mutex::lock) {
                shard.removals += 1;
                if let Some(old) = shard.states.remove(subject) {
                    shard.weight -= old.as_ref().map_or(64, |state| weight_of(state));
                }
            }
        }
    }

    /// Forgets everything (a write of unknown extent) without ending the epoch.
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut shard = match shard.lock() {
                Ok(shard) => shard,
                Err(poisoned) => poisoned.into_inner(),
            };
            shard.removals += 1;
            shard.states.clear();
            shard.weight = 0;
        }
    }

    /// Someone else wrote to the file: forgets everything, then ends the
    /// epoch, so that a mark taken before the end is refused.
    pub fn foreign_write(&self) {
        self.clear();
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// An estimate of a decoded state's size in memory.
fn weight_of(state: &SubjectState) -> usize {
    512 + state.records.len() * 256 + state.effects.len() * 96 + state.derived.len() * 128
}

fn shard_index(subject: &SubjectId) -> usize {
    let (head, tail) = subject.sort_key();
    // The last characters of an identifier vary the most.
    let mix = (head as usize) ^ usize::from(tail);
    mix % SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;
    use socred_core::RecordKey;
    use socred_store::conformance::{day, person};

    fn history(subject: SubjectId, records: usize) -> (SubjectId, CachedSubject) {
        let records = (0..records)
            .map(|n| Record {
                key: RecordKey {
                    provider: Arc::from("transport.rail"),
                    id: format!("{subject}-{n}").into(),
                },
                subject,
                type_index: 0,
                type_id: socred_core::Name::new("transport.fare_evasion"),
                occurred_at: day("2026-03-01"),
                decided_at: day("2026-03-02"),
                fields: Default::default(),
                document: None,
            })
            .collect::<Vec<_>>();
        let entry = CachedSubject {
            rowids: (1..=records.len() as i64).collect(),
            records,
            facts: Vec::new(),
            sources: false,
            retention_ends: None,
        };
        (subject, entry)
    }

    /// The cache holds what it is given up to its size, and past it drops
    /// subjects until a quarter of the room is free again.
    #[test]
    fn the_writers_cache_keeps_to_its_size() {
        let mut cache = SubjectCache::new(8);
        cache.apply(vec![history(person(1), 4), history(person(2), 4)]);
        assert_eq!(cache.records, 8);
        assert_eq!(cache.subjects.len(), 2);
        cache.apply(vec![history(person(3), 4)]);
        assert!(cache.records <= 6, "{} records kept", cache.records);
        assert_eq!(
            cache.records,
            cache
                .subjects
                .values()
                .map(|s| s.records.len())
                .sum::<usize>()
        );
        let mut big = SubjectCache::new(HISTORY_RECORDS_DEFAULT);
        big.apply((1..=3).map(|n| history(person(n), 4)).collect());
        assert_eq!(big.records, 12);
        let taken = big.take(&person(2)).expect("a cached subject");
        assert_eq!(taken.records.len(), 4);
        assert_eq!(big.records, 8);
    }
}
