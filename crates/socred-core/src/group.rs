//! Grouping a batch of records and facts by subject, for
//! [`Engine::fold_all`](crate::fold::Engine::fold_all).
//!
//! A batch holds millions of records about a tenth as many subjects, in no
//! useful order. Sorting every record by its 18-byte subject costs more
//! than folding it, and a hash map from subject to group misses the cache
//! on nearly every record once the batch is large. So each item gets a
//! 64-bit hash of its subject in one streaming pass; a radix sort by the
//! top bits of the hash (one counting-sort scatter for a small batch, two
//! or three of 2,048 buckets each for a large one, so that the scattered
//! writes stay in cache) and a small sort inside a bucket when it holds
//! several hashes bring each hash's items together, in input order; and
//! only the runs, one per hash, are sorted by subject.
//!
//! A batch that already lies subject by subject (each subject's records
//! together, and its facts, as a store reads a page of subjects or a file
//! exported subject by subject) is grouped in one pass instead: each run
//! of equal subjects is a group, and only the runs are sorted.
//!
//! Two subjects with the same hash share a run. The run is named after the
//! subject of its first item; the fold sets the items of any other subject
//! aside and groups them exactly afterwards (see `Engine::fold_all`). Hash
//! order never shows: runs come out sorted by subject.

use crate::id::SubjectId;
use crate::record::{Fact, Record};

/// Most bits of the hash that pick a bucket: 16 M buckets.
const BUCKET_BITS_MAX: u32 = 24;

/// A batch's records and facts, run after run.
#[derive(Debug)]
pub(crate) struct Groups {
    /// The runs in subject order.
    runs: Vec<Run>,
    /// Record indices, run after run, in input order within a run.
    record_items: Vec<u32>,
    /// Fact indices, likewise.
    fact_items: Vec<u32>,
}

/// The records and facts of one hash, named after the subject of the first
/// of them (records first, then facts, in input order).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    pub subject: SubjectId,
    records: (u32, u32),
    facts: (u32, u32),
}

impl Groups {
    /// Groups `records` and `facts` by subject. Indices are `u32`: a batch
    /// of four billion records would not fit in memory anyway.
    pub fn new(records: &[Record], facts: &[Fact]) -> Groups {
        Groups::contiguous(records, facts)
            .unwrap_or_else(|| Groups::with_hash(records, facts, subject_hash))
    }

    /// The groups of a batch whose records, and whose facts, already lie
    /// subject by subject (each subject's together, the subjects in any
    /// order): the runs read off in one pass, then sorted. None when a
    /// subject's records or facts lie in two places, or when runs are so
    /// short that the batch is plainly in no such order.
    fn contiguous(records: &[Record], facts: &[Fact]) -> Option<Groups> {
        let records_len = u32::try_from(records.len()).ok()?;
        let facts_len = u32::try_from(facts.len()).ok()?;
        // Facts are few and most subjects have one at most: only the
        // records tell a batch in arrival order.
        let record_runs = runs_in_place(records.iter().map(|r| r.subject), true)?;
        let fact_runs = runs_in_place(facts.iter().map(|f| f.subject), false)?;
        let mut runs = Vec::with_capacity(record_runs.len().max(fact_runs.len()));
        let (mut r, mut f) = (record_runs.iter().peekable(), fact_runs.iter().peekable());
        let span = |run: Option<&(SubjectId, u32, u32)>| run.map_or((0, 0), |&(_, s, e)| (s, e));
        loop {
            let (records, facts) = match (r.peek(), f.peek()) {
                (Some(a), Some(b)) if a.0 == b.0 => (r.next(), f.next()),
                (Some(a), Some(b)) if a.0.sort_key() < b.0.sort_key() => (r.next(), None),
                (Some(_), None) => (r.next(), None),
                (_, Some(_)) => (None, f.next()),
                (None, None) => break,
            };
            let Some(&(subject, ..)) = records.or(facts) else {
                break;
            };
            runs.push(Run {
                subject,
                records: span(records),
                facts: span(facts),
            });
        }
        Some(Groups {
            runs,
            record_items: (0..records_len).collect(),
            fact_items: (0..facts_len).collect(),
        })
    }

    /// [`Groups::new`] with another hash (tests use a poor one to make
    /// subjects share runs).
    pub fn with_hash(records: &[Record], facts: &[Fact], hash: fn(&SubjectId) -> u64) -> Groups {
        let count = records.len() + facts.len();
        // About four items per bucket: most buckets hold one subject.
        let bits = (usize::BITS - (count / 4).leading_zeros()).min(BUCKET_BITS_MAX);
        let bucket = |key: u64| {
            if bits == 0 {
                0
            } else {
                (key >> (64 - bits)) as usize
            }
        };
        let mut sorted: Vec<(u64, u32)> = Vec::with_capacity(count);
        sorted.extend(records.iter().map(|r| hash(&r.subject)).zip(0..));
        sorted.extend(
            facts
                .iter()
                .map(|f| hash(&f.subject))
                .zip(records.len() as u32..),
        );
        sort_by_top_bits(&mut sorted, bits);

        let mut groups = Groups {
            runs: Vec::new(),
            record_items: Vec::with_capacity(records.len()),
            fact_items: Vec::with_capacity(facts.len()),
        };
        let mut start = 0;
        while let Some(&(first, _)) = sorted.get(start) {
            let mut end = start + 1;
            while sorted
                .get(end)
                .is_some_and(|&(key, _)| bucket(key) == bucket(first))
            {
                end += 1;
            }
            let Some(bucket) = sorted.get_mut(start..end) else {
                break;
            };
            // Items came in input order: a stable sort by hash keeps it.
            if bucket.windows(2).any(|w| w[0].0 > w[1].0) {
                bucket.sort_by_key(|&(key, _)| key);
            }
            groups.add_runs(bucket, records, facts);
            start = end;
        }
        groups
            .runs
            .sort_unstable_by_key(|run| run.subject.sort_key());
        groups
    }

    /// Adds the runs of one bucket (sorted by hash): one per distinct hash.
    fn add_runs(&mut self, bucket: &[(u64, u32)], records: &[Record], facts: &[Fact]) {
        let mut start = 0;
        while let Some(&(key, first)) = bucket.get(start) {
            let mut end = start + 1;
            while bucket.get(end).is_some_and(|&(k, _)| k == key) {
                end += 1;
            }
            let first = first as usize;
            let subject = match first.checked_sub(records.len()) {
                None => records.get(first).map(|r| r.subject),
                Some(fact) => facts.get(fact).map(|f| f.subject),
            };
            let records_start = self.record_items.len() as u32;
            let facts_start = self.fact_items.len() as u32;
            for &(_, item) in &bucket[start..end] {
                match (item as usize).checked_sub(records.len()) {
                    None => self.record_items.push(item),
                    Some(fact) => self.fact_items.push(fact as u32),
                }
            }
            if let Some(subject) = subject {
                self.runs.push(Run {
                    subject,
                    records: (records_start, self.record_items.len() as u32),
                    facts: (facts_start, self.fact_items.len() as u32),
                });
            }
            start = end;
        }
    }

    /// The runs, sorted by subject.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Indices of the records of `run`, in input order.
    pub fn records(&self, run: &Run) -> &[u32] {
        let (start, end) = run.records;
        self.record_items
            .get(start as usize..end as usize)
            .unwrap_or(&[])
    }

    /// Indices of the facts of `run`, in input order.
    pub fn facts(&self, run: &Run) -> &[u32] {
        let (start, end) = run.facts;
        self.fact_items
            .get(start as usize..end as usize)
            .unwrap_or(&[])
    }
}

/// The runs of equal subjects in `subjects`, as (subject, start, end),
/// sorted by subject: None when a subject has two runs, or, when `long`,
/// as soon as the runs so far are shorter than two items on average (a
/// batch in arrival order, given up on after its first few thousand items).
fn runs_in_place(
    subjects: impl Iterator<Item = SubjectId>,
    long: bool,
) -> Option<Vec<(SubjectId, u32, u32)>> {
    let mut runs: Vec<(SubjectId, u32, u32)> = Vec::new();
    for (subject, index) in subjects.zip(0u32..) {
        match runs.last_mut() {
            Some(run) if run.0 == subject => run.2 = index + 1,
            _ => {
                if long && index >= SHORT_RUNS_AFTER && runs.len() * 2 > index as usize {
                    return None;
                }
                runs.push((subject, index, index + 1));
            }
        }
    }
    runs.sort_unstable_by_key(|run| run.0.sort_key());
    if runs.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    Some(runs)
}

/// Items of a batch looked at before runs shorter than two items on average
/// tell that it is not subject by subject.
const SHORT_RUNS_AFTER: u32 = 4096;

/// Most bits of the hash a batch is sorted by in a single counting-sort
/// pass: up to 64 K counters, which stay in cache with what they point to.
const ONE_PASS_BITS_MAX: u32 = 16;

/// Most bits of the hash one pass orders by when a batch needs several:
/// 2,048 counters and as many places written to, which stay in cache. One
/// pass by all the bits at once (millions of counters) makes nearly every
/// write a cache and TLB miss in a batch of millions.
const PASS_BITS_MAX: u32 = 11;

/// Sorts `items` (hash, item) by the top `bits` bits of the hash, stably
/// (items with the same top bits stay in input order): a least significant
/// digit radix sort, in one pass for a small batch, else in passes of at
/// most [`PASS_BITS_MAX`] bits.
fn sort_by_top_bits(items: &mut Vec<(u64, u32)>, bits: u32) {
    if bits == 0 || items.len() < 2 {
        return;
    }
    let passes = if bits <= ONE_PASS_BITS_MAX {
        1
    } else {
        bits.div_ceil(PASS_BITS_MAX)
    };
    let mut spare: Vec<(u64, u32)> = vec![(0, 0); items.len()];
    // The lowest of the top bits first: each stable pass keeps the order
    // of the one before among items that agree on its digit.
    let mut shift = 64 - bits;
    let mut left = bits;
    for pass in 0..passes {
        let width = left / (passes - pass);
        radix_pass(items, &mut spare, shift, width);
        std::mem::swap(items, &mut spare);
        shift += width;
        left -= width;
    }
}

/// One stable counting-sort pass of `from` into `to` by the `width` bits of
/// the hash from bit `shift` up.
fn radix_pass(from: &[(u64, u32)], to: &mut [(u64, u32)], shift: u32, width: u32) {
    let mask = (1u64 << width) - 1;
    let digit = |key: u64| ((key >> shift) & mask) as usize;
    let mut next = vec![0usize; 1 << width];
    for &(key, _) in from {
        if let Some(count) = next.get_mut(digit(key)) {
            *count += 1;
        }
    }
    let mut total = 0;
    for slot in next.iter_mut() {
        let size = *slot;
        *slot = total;
        total += size;
    }
    for &item in from {
        if let Some(slot) = next.get_mut(digit(item.0)) {
            if let Some(place) = to.get_mut(*slot) {
                *place = item;
            }
            *slot += 1;
        }
    }
}

/// A 64-bit hash of a subject identifier: a folded multiply per eight
/// bytes. Collisions only cost time (see the module docs), and nothing an
/// adversary sends can make the output depend on them.
pub(crate) fn subject_hash(subject: &SubjectId) -> u64 {
    let (head, tail) = subject.sort_key();
    let mut hash = 0x243F_6A88_85A3_08D3_u64;
    for word in [head as u64, (head >> 64) as u64, u64::from(tail)] {
        let product = u128::from(hash ^ word) * u128::from(0x9E37_79B9_7F4A_7C15_u64);
        hash = (product as u64) ^ ((product >> 64) as u64);
    }
    hash
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::record::{FactKind, RecordKey};
    use crate::time::Day;

    fn person(n: u16) -> SubjectId {
        SubjectId::person(110_101, 1990, 1, 1 + (n / 900) as i8, n % 900).unwrap()
    }

    fn record(subject: SubjectId, id: usize) -> Record {
        Record {
            key: RecordKey {
                provider: "p".into(),
                id: id.to_string().into(),
            },
            subject,
            type_index: 0,
            type_id: "t".into(),
            occurred_at: Day(0),
            decided_at: Day(0),
            fields: Default::default(),
            document: None,
        }
    }

    /// What each run holds: its records, then its facts, in input order.
    fn grouped(groups: &Groups, records: &[Record], facts: &[Fact]) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for run in groups.runs() {
            let mut names = Vec::new();
            for &i in groups.records(run) {
                let r = &records[i as usize];
                names.push(format!("{} r{}", r.subject.as_str(), r.key.id));
            }
            for &i in groups.facts(run) {
                let f = &facts[i as usize];
                names.push(format!("{} f{}", f.subject.as_str(), f.by));
            }
            out.push(names);
        }
        out
    }

    fn batch(count: usize) -> (Vec<Record>, Vec<Fact>) {
        // Subjects repeat in a scrambled order; every fifth has a fact.
        let records: Vec<Record> = (0..count)
            .map(|i| record(person(((i * 7919) % 1201) as u16), i))
            .collect();
        let facts = (0..count / 5)
            .map(|i| Fact {
                subject: person(((i * 104_729) % 1400) as u16),
                at: Day(1),
                by: Arc::from(i.to_string()),
                kind: FactKind::ConsentGranted,
            })
            .collect();
        (records, facts)
    }

    #[test]
    fn runs_hold_each_subject_once_in_order_with_items_in_input_order() {
        let (records, facts) = batch(20_000);
        let groups = Groups::new(&records, &facts);
        let mut expected: BTreeMap<SubjectId, Vec<String>> = BTreeMap::new();
        for r in &records {
            let names = expected.entry(r.subject).or_default();
            names.push(format!("{} r{}", r.subject.as_str(), r.key.id));
        }
        for f in &facts {
            let names = expected.entry(f.subject).or_default();
            names.push(format!("{} f{}", f.subject.as_str(), f.by));
        }
        let subjects: Vec<SubjectId> = groups.runs().iter().map(|r| r.subject).collect();
        assert_eq!(subjects, expected.keys().copied().collect::<Vec<_>>());
        assert_eq!(
            grouped(&groups, &records, &facts),
            expected.into_values().collect::<Vec<_>>()
        );
    }

    /// A batch that lies subject by subject, in any order of subjects, is
    /// grouped in one pass into the runs the hashing path gives it; one in
    /// which a subject's records or facts lie in two places, or in arrival
    /// order, takes the hashing path.
    #[test]
    fn a_batch_subject_by_subject_gives_the_runs_of_the_hashing_path() {
        let (mut records, mut facts) = batch(20_000);
        // Subject by subject, the subjects in an order of their own.
        let scramble = |s: &SubjectId| subject_hash(s).rotate_left(17);
        records.sort_by_key(|r| scramble(&r.subject));
        facts.sort_by_key(|f| f.subject);
        let hashed = Groups::with_hash(&records, &facts, subject_hash);
        let contiguous = Groups::contiguous(&records, &facts).expect("a batch by subject");
        assert_eq!(
            grouped(&contiguous, &records, &facts),
            grouped(&hashed, &records, &facts)
        );
        assert_eq!(contiguous.runs().len(), hashed.runs().len());
        // Subjects with facts and no records get runs.
        assert!(facts
            .iter()
            .any(|f| !records.iter().any(|r| r.subject == f.subject)));

        // One subject's first record moved to the end: its records lie in
        // two places (it has about sixteen).
        let mut split = records.clone();
        let first = split.remove(0);
        assert!(split.iter().any(|r| r.subject == first.subject));
        split.push(first);
        assert!(Groups::contiguous(&split, &facts).is_none());
        assert_eq!(
            grouped(&Groups::new(&split, &facts), &split, &facts),
            grouped(
                &Groups::with_hash(&split, &facts, subject_hash),
                &split,
                &facts
            )
        );

        // Likewise one subject's first fact.
        let mut split = facts.clone();
        let first = split.remove(0);
        assert!(split.iter().any(|f| f.subject == first.subject));
        split.push(first);
        assert!(Groups::contiguous(&records, &split).is_none());

        let (records, facts) = batch(20_000);
        assert!(Groups::contiguous(&records, &facts).is_none());
    }

    #[test]
    fn subjects_that_share_a_hash_share_a_run_named_after_the_first_item() {
        let (records, facts) = batch(50);
        let groups = Groups::with_hash(&records, &facts, |_| 7);
        assert_eq!(groups.runs().len(), 1);
        assert_eq!(groups.runs()[0].subject, records[0].subject);
        let items: Vec<String> = grouped(&groups, &records, &facts).concat();
        assert_eq!(items.len(), records.len() + facts.len());
        assert!(items[0].ends_with(" r0") && items[49].ends_with(" r49"));
        assert!(items[50].ends_with(" f0"));
    }

    #[test]
    fn sorting_by_the_top_bits_in_several_passes_keeps_input_order_on_ties() {
        // A few dozen random prefixes for the top bits (many ties), random
        // lower bits, items in a known input order.
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut random = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state
        };
        let prefixes: Vec<u64> = (0..40).map(|_| random() & !((1 << 40) - 1)).collect();
        let items: Vec<(u64, u32)> = (0..6_000u32)
            .map(|item| {
                let r = random();
                (prefixes[(r % 40) as usize] | (r >> 24), item)
            })
            .collect();
        for bits in [1, 11, 16, 17, 19, 22, 24] {
            let mut sorted = items.clone();
            sort_by_top_bits(&mut sorted, bits);
            let mut expected = items.clone();
            expected.sort_by_key(|&(key, _)| key >> (64 - bits));
            assert_eq!(sorted, expected, "{bits} bits");
        }
    }

    #[test]
    fn hashes_that_agree_on_their_top_bits_still_get_runs_of_their_own() {
        let (records, facts) = batch(3_000);
        // Only the low byte differs: every item lands in one radix bucket.
        let low_byte = |s: &SubjectId| subject_hash(s) & 0xff;
        let groups = Groups::with_hash(&records, &facts, low_byte);
        let distinct: std::collections::BTreeSet<u64> = records
            .iter()
            .map(|r| low_byte(&r.subject))
            .chain(facts.iter().map(|f| low_byte(&f.subject)))
            .collect();
        assert_eq!(groups.runs().len(), distinct.len());
        let subjects: Vec<SubjectId> = groups.runs().iter().map(|r| r.subject).collect();
        assert!(subjects.windows(2).all(|w| w[0] < w[1]));
    }
}
