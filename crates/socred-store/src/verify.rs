//! Recomputes stored states from their records and reports every
//! difference: the check behind `socred verify` and the crash tests. It
//! only uses the [`Store`] trait, so it checks any backend the same way.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use socred_core::state::DerivedEntry;
use socred_core::{Day, Engine, SubjectId};

use crate::write::{fold_subject, list_rows, normalise_state};
use crate::{sort_derived, Store, StoreError, VerifyReads};

/// A subject whose stored state differs from a fresh fold of its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateMismatch {
    pub subject: SubjectId,
    pub reason: String,
}

/// Subjects read per page.
const PAGE: usize = 1000;

/// Refolds every subject with a stored state and compares: its own state,
/// then the entries that reach it from others. Returns every mismatch
/// (empty when the store is consistent).
pub async fn verify_states(
    store: &dyn Store,
    engine: &Engine,
) -> Result<Vec<StateMismatch>, StoreError> {
    let mut mismatches = Vec::new();
    let mut expected_derived: BTreeMap<SubjectId, Vec<DerivedEntry>> = BTreeMap::new();
    let mut stored_derived: BTreeMap<SubjectId, Vec<DerivedEntry>> = BTreeMap::new();
    // Subjects whose records do not read: what they pass on to others
    // cannot be recomputed, so it is not held against those others.
    let mut unreadable: BTreeSet<SubjectId> = BTreeSet::new();
    // The day each subject's retention first ends, in subject order, to
    // compare with the day kept beside its state.
    let mut retention: Vec<(SubjectId, Day)> = Vec::new();
    let mut after = None;
    loop {
        let page = store.subjects(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(*last);
        let reads = store.verify_reads(&engine.rulebook, &page).await?;
        if reads.len() != page.len() {
            return Err(StoreError::Unavailable(format!(
                "asked about {} subjects, the store answered for {}",
                page.len(),
                reads.len()
            )));
        }
        for (subject, read) in page.into_iter().zip(reads) {
            // A record that no longer reads, or that names another subject
            // than the state listing it (edited behind the store's back),
            // is a finding about this subject; the check goes on.
            let ((records, facts), stored_rows, stored) = match read {
                VerifyReads::Read {
                    history,
                    list_rows,
                    state,
                } => (history, list_rows, state),
                VerifyReads::Unreadable(reason) => {
                    mismatches.push(StateMismatch { subject, reason });
                    unreadable.insert(subject);
                    continue;
                }
            };
            let mut fresh = fold_subject(engine, subject, &records, &facts);
            if let Some(day) = fresh.retention_ends() {
                retention.push((subject, day));
            }
            let reached = engine.reach(&fresh);
            // The rows public lists are answered from, as the write path
            // derives them.
            let mut problems = Vec::new();
            if let Some(stored_rows) = stored_rows {
                let rows = list_rows(&fresh, &reached);
                if stored_rows != rows {
                    problems.push(format!(
                        "{} list rows stored from it, a fresh fold gives {} (or they differ)",
                        stored_rows.len(),
                        rows.len()
                    ));
                }
            }
            normalise_state(&mut fresh);
            for (target, entry) in reached {
                expected_derived.entry(target).or_default().push(entry);
            }
            match stored {
                None => problems.insert(0, "listed but has no stored state".into()),
                Some(stored) => {
                    let mut stored = std::sync::Arc::unwrap_or_clone(stored);
                    stored_derived.insert(subject, std::mem::take(&mut stored.derived));
                    // A state stored before states kept their rulebook is
                    // judged by its content alone.
                    if stored.rulebook.is_none() {
                        fresh.rulebook = None;
                    }
                    if stored != fresh {
                        problems.insert(0, describe(&stored, &fresh));
                    }
                }
            }
            // One finding per subject, naming all that differs.
            if !problems.is_empty() {
                mismatches.push(StateMismatch {
                    subject,
                    reason: problems.join("; "),
                });
            }
        }
    }
    // Subjects reached by others without a state of their own, and (where
    // the store can list them) subjects that stored entries reach but no
    // fresh fold does: a row added behind the store's back.
    let mut targets: BTreeSet<SubjectId> = expected_derived.keys().copied().collect();
    targets.extend(store.derived_targets().await?.unwrap_or_default());
    for target in targets {
        if let Entry::Vacant(slot) = stored_derived.entry(target) {
            let derived = store
                .state(target)
                .await?
                .map(|s| s.derived.clone())
                .unwrap_or_default();
            slot.insert(derived);
        }
    }
    for (subject, mut stored) in stored_derived {
        stored.retain(|entry| !unreadable.contains(&entry.via));
        let mut expected = expected_derived.remove(&subject).unwrap_or_default();
        sort_derived(&mut expected);
        if stored != expected {
            mismatches.push(StateMismatch {
                subject,
                reason: format!(
                    "{} entries reach it from related subjects, a fresh fold gives {}",
                    stored.len(),
                    expected.len()
                ),
            });
        }
    }
    // A subject found already (its state or records differ) would only be
    // found again through the day, which follows from its state.
    let found: BTreeSet<SubjectId> = mismatches.iter().map(|m| m.subject).collect();
    mismatches.extend(
        check_retention_days(store, retention)
            .await?
            .into_iter()
            .filter(|m| !found.contains(&m.subject)),
    );
    for (subject, reason) in store.unlisted_records(UNLISTED_REPORTED).await? {
        mismatches.push(StateMismatch { subject, reason });
    }
    Ok(mismatches)
}

/// Compares the day kept beside each state (`Store::subjects_past_retention`)
/// with `expected` (subject order): a day later than the fold's, or none,
/// would let erasure pass over records past retention. A day not known
/// yet (`Day::MIN`, from before the store kept it) is not a finding:
/// erasure examines such a subject at once.
async fn check_retention_days(
    store: &dyn Store,
    expected: Vec<(SubjectId, Day)>,
) -> Result<Vec<StateMismatch>, StoreError> {
    let mut stored: BTreeMap<SubjectId, Day> = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store.subjects_past_retention(Day::MAX, after, PAGE).await?;
        let Some(&last) = page.last() else { break };
        after = Some(last);
        stored.extend(page.into_iter().map(|(day, subject)| (subject, day)));
    }
    let mut mismatches = Vec::new();
    for (subject, day) in expected {
        let reason = match stored.remove(&subject) {
            Some(kept) if kept == day || kept == Day::MIN => continue,
            Some(kept) => format!(
                "the day kept beside its state says its first record past retention is \
                 past it on {kept}, a fresh fold gives {day}"
            ),
            None => format!(
                "no day is kept beside its state, a fresh fold gives {day} for its first record \
                 past retention"
            ),
        };
        mismatches.push(StateMismatch { subject, reason });
    }
    for (subject, kept) in stored {
        if kept != Day::MIN {
            mismatches.push(StateMismatch {
                subject,
                reason: format!(
                    "the day kept beside its state says a record is past retention on {kept}, \
                     a fresh fold finds no record"
                ),
            });
        }
    }
    Ok(mismatches)
}

/// Records in effect that no state lists, reported at most.
const UNLISTED_REPORTED: usize = 1000;

fn describe(stored: &socred_core::SubjectState, fresh: &socred_core::SubjectState) -> String {
    if stored.rulebook != fresh.rulebook {
        let named = |label: &Option<std::sync::Arc<str>>| {
            label
                .as_deref()
                .map_or("no rulebook".to_string(), |l| format!("rulebook {l}"))
        };
        return format!(
            "stored state was folded with {}, not with the {} in force (a recomputation of \
             the files that has not reached it)",
            named(&stored.rulebook),
            named(&fresh.rulebook)
        );
    }
    if stored.records.len() != fresh.records.len() {
        return format!(
            "stored state has {} records, its records give {}",
            stored.records.len(),
            fresh.records.len()
        );
    }
    if stored.effects != fresh.effects {
        return format!(
            "stored state has {} effects that differ from the {} a fresh fold gives",
            stored.effects.len(),
            fresh.effects.len()
        );
    }
    "stored state differs from a fresh fold of its records".into()
}

/// What an index of the audit log by subject (from which each subject's
/// access log is read) does not agree with the log about, as
/// `Store::check_audit_by_subject` reports it: `missing` entries about a
/// subject that `index` lacks, and `wrong` rows of it that the log does not
/// bear out, each as (how many, the first's seq and subject); `remedy`
/// says how to rebuild it.
pub fn audit_by_subject_problems(
    index: &str,
    missing: (u64, Option<(i64, String)>),
    wrong: (u64, Option<(i64, String)>),
    remedy: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let (count, Some((seq, subject))) = missing {
        problems.push(format!(
            "{index} lacks {count} entries of the audit log about subjects (the first: entry \
             {seq}, about {subject}): their access logs do not show them. {remedy}"
        ));
    }
    if let (count, Some((seq, subject))) = wrong {
        problems.push(format!(
            "{index} has {count} rows that the audit log does not bear out (the first: entry \
             {seq} filed under {subject}). {remedy}"
        ));
    }
    problems
}
