//! Erasure at the end of retention: which of a subject's records a store
//! may erase on a day, with the later facts about them, so that the
//! registry keeps no record past its retention.
//!
//! Reading a file as of a day already leaves out every record whose
//! retention has ended and every effect of it. Erasing the record itself is
//! more: the fold of what is left must give every record still in the file
//! the same standing as before, or the erasure would change files it has
//! no business changing. A record can still count after its retention: it
//! made a later record's offence a repeat (escalation), used up a cap that
//! a later record then met, named the profession that a rule applied to a
//! later record for, named the relation through which an entry in force
//! reaches another subject, or a later record ended its list entry. So
//! [`Engine::erasable`] folds the history without the candidates and keeps
//! the erasure only when the state of every remaining record, and the
//! subject's standing on the day and at the next period boundary of every
//! periodic expectation, are unchanged. Candidates it cannot erase now are
//! held back; they go once the records that depend on them are past their
//! own retention (all of them are then candidates together).
//!
//! A retracted record has no effect at all: it and its facts go at the end
//! of its retention like any other.

use std::collections::HashSet;

use crate::evaluate::{bucket_start, ModelStanding, Standing};
use crate::fold::{bucket, Engine};
use crate::id::SubjectId;
use crate::record::{Fact, Record, RecordKey};
use crate::state::SubjectState;
use crate::time::Day;

/// What may be erased from a subject's history on a day: indices into the
/// records and facts that [`Engine::erasable`] was given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Erasable {
    pub records: Vec<usize>,
    pub facts: Vec<usize>,
    /// Records past their retention kept because a record still in the
    /// file depends on them.
    pub held_back: usize,
    /// [`SubjectState::retention_ends`] of the subject as it stands, before
    /// anything is erased.
    pub retention_ends: Option<Day>,
}

impl Engine {
    /// The records of `subject` whose retention ended on or before `today`
    /// and that can be erased, with the facts about them, without changing
    /// anything that is still in the file (see the module's description).
    /// `known_at` is the fold's, as for [`Engine::fold`].
    pub fn erasable(
        &self,
        subject: SubjectId,
        records: &[Record],
        facts: &[Fact],
        known_at: Day,
        today: Day,
    ) -> Erasable {
        let full = self.fold(subject, records, facts, known_at);
        let in_file: HashSet<&RecordKey> = full.records.iter().map(|r| &r.key).collect();
        // Records the fold left out (retracted) go at the end of their
        // retention, counted from the day they were decided.
        let left_out: HashSet<&RecordKey> = records
            .iter()
            .filter(|r| r.subject == subject && !in_file.contains(&r.key))
            .filter(|r| {
                self.rulebook
                    .catalog
                    .get(r.type_index as usize)
                    .is_some_and(|t| t.retention.after(r.decided_at) <= today)
            })
            .map(|r| &r.key)
            .collect();
        // Candidates in fold order, and how many of them come before the
        // first record that stays.
        let ended: Vec<&RecordKey> = full
            .records
            .iter()
            .filter(|r| r.retained_until <= today)
            .map(|r| &r.key)
            .collect();
        let prefix = full
            .records
            .iter()
            .take_while(|r| r.retained_until <= today)
            .count();
        let retention_ends = full.retention_ends();
        if ended.is_empty() && left_out.is_empty() {
            return Erasable {
                retention_ends,
                ..Erasable::default()
            };
        }
        let days = self.check_days(today);
        let attempt = |gone: &HashSet<&RecordKey>| {
            let kept_records: Vec<&Record> = records
                .iter()
                .filter(|r| r.subject == subject && !gone.contains(&r.key))
                .collect();
            let kept_facts: Vec<&Fact> = facts
                .iter()
                .filter(|f| f.subject == subject && f.record().is_none_or(|k| !gone.contains(k)))
                .collect();
            let after = self.fold_refs(subject, kept_records, kept_facts, known_at);
            self.unchanged(&full, &after, gone, &days)
        };
        // All candidates at once; else the ones before every record that
        // stays (what a record depends on comes before it, but for the
        // profession, relations and exits), fewer and fewer.
        let mut tries: Vec<&[&RecordKey]> = vec![&ended];
        for len in (0..=prefix.min(ended.len())).rev() {
            if len < ended.len() {
                tries.push(&ended[..len]);
            }
        }
        for erased in tries {
            let gone: HashSet<&RecordKey> = erased.iter().chain(&left_out).copied().collect();
            if attempt(&gone) {
                let records_out = records
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.subject == subject && gone.contains(&r.key))
                    .map(|(i, _)| i)
                    .collect();
                let facts_out = facts
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| {
                        f.subject == subject && f.record().is_some_and(|k| gone.contains(k))
                    })
                    .map(|(i, _)| i)
                    .collect();
                return Erasable {
                    records: records_out,
                    facts: facts_out,
                    held_back: ended.len() - erased.len(),
                    retention_ends,
                };
            }
        }
        Erasable {
            held_back: ended.len(),
            retention_ends,
            ..Erasable::default()
        }
    }

    /// `today` (first), and the first day of the period after today's for every
    /// periodic expectation: a penalty for a period that the erased records
    /// counted in starts at its end.
    fn check_days(&self, today: Day) -> Vec<Day> {
        let mut days = vec![today];
        for model in &self.rulebook.models {
            for expectation in &model.expectations {
                days.push(bucket_start(
                    expectation.per,
                    bucket(expectation.per, today).saturating_add(1),
                ));
            }
        }
        days.sort();
        days.dedup();
        days
    }

    /// Whether `after` (folded without `gone`) gives every remaining record
    /// of `full` the same state and effects, the subject the same
    /// attributes, and the same standing on each of `days`.
    fn unchanged(
        &self,
        full: &SubjectState,
        after: &SubjectState,
        gone: &HashSet<&RecordKey>,
        days: &[Day],
    ) -> bool {
        // The profession the fold knew may go with its record: the effects
        // compared below show whether a rule still depends on it, and the
        // standings whether a file or a measure shows it on a day checked.
        if full.consent != after.consent || full.orphan_facts != after.orphan_facts {
            return false;
        }
        // A relation may go with the record that named it, unless an entry
        // still in force (or to come) reaches someone through it.
        if full.relations != after.relations {
            let Some(&today) = days.first() else {
                return false;
            };
            let reaching = |state: &SubjectState| {
                let mut out: Vec<_> = self
                    .reach(state)
                    .into_iter()
                    .filter(|(_, entry)| entry.span.end > today)
                    .collect();
                out.sort_by(|a, b| {
                    (a.0, &a.1.list, &a.1.record).cmp(&(b.0, &b.1.list, &b.1.record))
                });
                out
            };
            if reaching(full) != reaching(after) {
                return false;
            }
        }
        // The new index of each remaining record.
        let mut index = Vec::with_capacity(full.records.len());
        let mut next = 0u32;
        for record in &full.records {
            if gone.contains(&record.key) {
                index.push(None);
            } else {
                index.push(Some(next));
                next += 1;
            }
        }
        let kept = full.records.iter().filter(|r| !gone.contains(&r.key));
        if next as usize != after.records.len() || !kept.eq(after.records.iter()) {
            return false;
        }
        let mut effects = after.effects.iter();
        for effect in &full.effects {
            let Some(Some(new)) = index.get(effect.record as usize) else {
                continue;
            };
            match effects.next() {
                Some(other)
                    if other.record == *new
                        && other.source == effect.source
                        && other.span == effect.span
                        && other.points == effect.points
                        && other.adjusted == effect.adjusted
                        && other.end_reason == effect.end_reason => {}
                _ => return false,
            }
        }
        if effects.next().is_some() {
            return false;
        }
        days.iter().all(|&day| {
            self.profession_on(full, day) == self.profession_on(after, day)
                && same_standing(&self.evaluate(full, day), &self.evaluate(after, day))
        })
    }
}

/// Two readings of a subject on one day agree on everything a file or a
/// decision shows of that day: scores, grades, penalties in force, grade
/// assignments, and the lists in force with their spans.
fn same_standing(a: &Standing<'_>, b: &Standing<'_>) -> bool {
    let entries = |s: &Standing<'_>| -> Vec<(u32, crate::state::Span)> {
        let mut out: Vec<_> = s.entries.iter().map(|e| (e.list, e.span)).collect();
        out.sort();
        out
    };
    let left_off = |s: &Standing<'_>| -> Vec<u32> { s.left_off.iter().map(|l| l.list).collect() };
    a.lists == b.lists
        && entries(a) == entries(b)
        && left_off(a) == left_off(b)
        && a.models.len() == b.models.len()
        && a.models
            .iter()
            .zip(&b.models)
            .all(|(x, y)| same_model(x, y))
}

fn same_model(a: &ModelStanding, b: &ModelStanding) -> bool {
    let in_force = |m: &ModelStanding| {
        m.penalties
            .iter()
            .filter(|p| p.in_force)
            .cloned()
            .collect::<Vec<_>>()
    };
    let assigned = |m: &ModelStanding| {
        m.assigned
            .as_ref()
            .map(|g| (g.grade.clone(), g.record.clone(), g.since, g.until))
    };
    a.model == b.model
        && a.score == b.score
        && a.grade == b.grade
        && a.not_scored == b.not_scored
        && in_force(a) == in_force(b)
        && assigned(a) == assigned(b)
}
