//! What-if: what another rulebook would make of the same population. A
//! researcher folds one history under two rulebooks (the one in force and a
//! draft, say) and compares, subject by subject: whose main grade moves and
//! where, who enters or leaves each list, to whom each measure would apply
//! or no longer apply. Only counts come out, so a report on a real
//! population names nobody. The counts are also broken down by what a
//! subject's identifier says (kind; a person's sex, decade of birth and
//! province of first registration; an organisation's province), so that
//! a rulebook that falls harder on some group shows it. A group too small
//! would single people out (the one person born in the 1920s in a
//! province): groups of fewer than a minimum of subjects are pooled, with
//! the smallest of the others when the pool is small too.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::fold::Engine;
use crate::id::{SubjectId, SubjectKind};
use crate::name::Name;
use crate::record::{Fact, Record};
use crate::rulebook::MeasureKind;
use crate::state::{DerivedEntry, SubjectState};
use crate::time::Day;

/// What one rulebook makes of a subject on a day, reduced to what a
/// comparison counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The main model's grade (its first model for the subject's kind);
    /// None when not graded.
    pub grade: Option<Arc<str>>,
    pub score: Option<i64>,
    /// Lists in force, sorted.
    pub lists: Vec<Name>,
    /// Measures that apply, in rulebook order.
    pub measures: Vec<Arc<str>>,
    /// Whether a punishment is among them.
    pub punished: bool,
}

impl Engine {
    /// The [`Outcome`] of `state` on `day`: its standing and a decision on
    /// every measure of the rulebook.
    pub fn outcome(&self, state: &SubjectState, day: Day) -> Outcome {
        let standing = self.evaluate(state, day);
        let main = standing.models.first();
        let applying: Vec<_> = self
            .rulebook
            .measures
            .iter()
            .filter(|measure| self.decide(&standing, measure).applies)
            .collect();
        Outcome {
            grade: main.and_then(|m| m.grade.clone()),
            score: main.and_then(|m| m.score),
            lists: standing.lists.clone(),
            punished: applying.iter().any(|m| m.kind == MeasureKind::Punishment),
            measures: applying.into_iter().map(|m| m.id.clone()).collect(),
        }
    }
}

/// The grade of an [`Outcome`] as a report names it.
const NOT_GRADED: &str = "not graded";

/// Counts of the subjects of one rulebook's outcomes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// The rulebook, as `id@version` (left out where the report names it
    /// once, as a timeline does).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rulebook: String,
    /// Subjects by main grade (`not graded` for those without one).
    pub grades: BTreeMap<String, u64>,
    /// Subjects on each list.
    pub lists: BTreeMap<String, u64>,
    /// Subjects to whom each measure applies.
    pub measures: BTreeMap<String, u64>,
}

impl Tally {
    pub(crate) fn add(&mut self, outcome: &Outcome) {
        let grade = outcome.grade.as_deref().unwrap_or(NOT_GRADED);
        *self.grades.entry(grade.to_string()).or_default() += 1;
        for list in &outcome.lists {
            *self.lists.entry(list.to_string()).or_default() += 1;
        }
        for measure in &outcome.measures {
            *self.measures.entry(measure.to_string()).or_default() += 1;
        }
    }
}

/// Subjects who gained or lost something under the other rulebook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Moves {
    /// On it (or it applies) under the other rulebook only.
    pub entered: u64,
    /// On it (or it applies) under the base rulebook only.
    pub left: u64,
}

/// How the other rulebook's outcomes differ from the base's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub as_of: Day,
    /// The fewest subjects a group of `groups` may count (see [`Changes`]).
    pub group_min: u64,
    /// Subjects compared: those with a state under either rulebook.
    pub subjects: u64,
    pub base: Tally,
    pub other: Tally,
    #[serde(flatten)]
    pub changes: Changes,
}

/// Who moved between two sets of outcomes of the same subjects: under two
/// rulebooks (a what-if report, "before" being the base rulebook), or under
/// one rulebook on two days (a step of a timeline, "before" being the step
/// before).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Changes {
    /// Subjects whose main grade differs, by (grade before, grade after).
    pub grade_moves: BTreeMap<String, BTreeMap<String, u64>>,
    /// Subjects scored on both sides whose score rose, fell or stayed.
    pub scores: ScoreMoves,
    pub lists: BTreeMap<String, Moves>,
    pub measures: BTreeMap<String, Moves>,
    /// Subjects with any difference at all (grade, score, list or measure).
    pub changed: u64,
    /// The same, by group: for each way of grouping (`kind`, `sex`, `born`,
    /// `province`), each group's counts. A person's province is the first
    /// two digits of the region where the card was first issued, an
    /// organisation's of the region where it was registered; `sex` and
    /// `born` group persons only. Groups of fewer than the report's
    /// `group_min` subjects are pooled as `other`, with the smallest of the
    /// rest when the pool is small too.
    pub groups: BTreeMap<&'static str, BTreeMap<String, GroupMoves>>,
}

/// The group that pools the groups too small to show on their own.
pub const POOLED: &str = "other";

/// What moved within one group of subjects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroupMoves {
    pub subjects: u64,
    pub changed: u64,
    /// Scored on both sides, with a lower (higher) score after.
    pub lowered: u64,
    pub raised: u64,
    /// Subjects to whom some punishment applies, before and after.
    pub punished_before: u64,
    pub punished_after: u64,
}

impl GroupMoves {
    fn add(&mut self, before: &Outcome, after: &Outcome, changed: bool) {
        self.subjects += 1;
        self.changed += u64::from(changed);
        if let (Some(x), Some(y)) = (before.score, after.score) {
            self.lowered += u64::from(y < x);
            self.raised += u64::from(y > x);
        }
        self.punished_before += u64::from(before.punished);
        self.punished_after += u64::from(after.punished);
    }

    fn absorb(&mut self, other: &GroupMoves) {
        self.subjects += other.subjects;
        self.changed += other.changed;
        self.lowered += other.lowered;
        self.raised += other.raised;
        self.punished_before += other.punished_before;
        self.punished_after += other.punished_after;
    }
}

/// Pools the groups of each way with fewer than `min` subjects as
/// [`POOLED`]. A pool that is small too takes in the smallest other groups
/// until it is not (or holds every group): were it left out instead, the
/// report's totals less the groups shown would give its counts.
fn pool_small_groups(groups: &mut BTreeMap<&'static str, BTreeMap<String, GroupMoves>>, min: u64) {
    for by_group in groups.values_mut() {
        let mut pool = GroupMoves::default();
        by_group.retain(|_, moves| {
            let small = moves.subjects < min;
            if small {
                pool.absorb(moves);
            }
            !small
        });
        while pool.subjects > 0 && pool.subjects < min {
            let smallest = by_group
                .iter()
                .min_by_key(|(_, moves)| moves.subjects)
                .map(|(name, _)| name.clone());
            let Some(moves) = smallest.and_then(|name| by_group.remove(&name)) else {
                break;
            };
            pool.absorb(&moves);
        }
        if pool.subjects > 0 {
            by_group.insert(POOLED.to_string(), pool);
        }
    }
}

/// The groups `subject` falls in, as (way of grouping, group).
fn groups_of(subject: SubjectId) -> Vec<(&'static str, String)> {
    let province = subject.region_code().get(..2).unwrap_or("").to_string();
    match subject.kind() {
        SubjectKind::Person => {
            let mut groups = vec![("kind", "person".to_string()), ("province", province)];
            if let Some(male) = subject.is_male() {
                let sex = if male { "male" } else { "female" };
                groups.push(("sex", sex.to_string()));
            }
            if let Some((year, _, _)) = subject.birth_date() {
                groups.push(("born", format!("{}s", year / 10 * 10)));
            }
            groups
        }
        SubjectKind::Organisation => {
            vec![("kind", "organisation".to_string()), ("province", province)]
        }
    }
}

/// Score changes of the subjects scored under both rulebooks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ScoreMoves {
    pub raised: u64,
    pub lowered: u64,
    pub unchanged: u64,
    /// The mean of the other score minus the base score (0 when none).
    pub mean_change: f64,
}

/// Compares what `other` makes of `other_states` with what `base` makes of
/// `base_states` on `day`. Both are folds of one history (each sorted by
/// subject, as `Engine::fold_all` gives them); a subject with a state
/// under one rulebook only (its records are of a type the other's catalog
/// lacks) counts as a subject without records under the other. Groups of
/// fewer than `group_min` subjects are pooled (see [`Changes`]).
pub fn compare(
    (base, base_states): (&Engine, &[SubjectState]),
    (other, other_states): (&Engine, &[SubjectState]),
    day: Day,
    group_min: u64,
) -> Comparison {
    let mut differ = Differ::new(label(base), label(other), group_min);
    differ.merge(
        &outcomes(base, base_states, day),
        &outcomes(other, other_states, day),
        |subject| empty_outcome(base, subject, day),
        |subject| empty_outcome(other, subject, day),
    );
    differ.report(day)
}

/// [`compare`] of a history read in parts, in memory bounded by a part
/// (a registry's history need not fit in memory at once). The history is
/// read twice, in parts that each hold every record and fact of their
/// subjects, in subject order: first [`PagedComparison::gather`] for each
/// part, which keeps only the list entries that reach related subjects;
/// then [`PagedComparison::count`] for each part, which folds it again,
/// hands it the entries that reach its subjects and counts its outcomes.
/// The report is that of [`compare`] on the whole history.
pub struct PagedComparison {
    base: Arc<Engine>,
    other: Arc<Engine>,
    day: Day,
    /// Entries passed on under each rulebook, sorted by the subject they
    /// reach once counting starts; those handed to a part leave.
    base_passed: Vec<(SubjectId, DerivedEntry)>,
    other_passed: Vec<(SubjectId, DerivedEntry)>,
    counting: bool,
    differ: Differ,
}

/// The records and facts of one part of a history, as one rulebook reads
/// them.
pub type Part<'a> = (&'a [Record], &'a [Fact]);

impl PagedComparison {
    pub fn new(base: Arc<Engine>, other: Arc<Engine>, day: Day, group_min: u64) -> PagedComparison {
        let differ = Differ::new(label(&base), label(&other), group_min);
        PagedComparison {
            base,
            other,
            day,
            base_passed: Vec::new(),
            other_passed: Vec::new(),
            counting: false,
            differ,
        }
    }

    /// Whether the first reading needs the records of subjects of `kind`:
    /// whether they may pass entries on under either rulebook. (The others
    /// may be left out of the parts given to [`PagedComparison::gather`].)
    pub fn gathers(&self, kind: SubjectKind) -> bool {
        self.base.may_pass_on(kind) || self.other.may_pass_on(kind)
    }

    /// The first reading of a part: keeps the entries its subjects pass on
    /// to related subjects under each rulebook.
    pub fn gather(&mut self, base: Part<'_>, other: Part<'_>) {
        let day = self.day;
        let states = self.base.fold_all_unreached(base.0, base.1, day);
        self.base_passed.extend(self.base.reached(&states));
        drop(states);
        let states = self.other.fold_all_unreached(other.0, other.1, day);
        self.other_passed.extend(self.other.reached(&states));
    }

    /// The second reading of a part, whose subjects run up to `last`
    /// (`None` for the last part): folds it under each rulebook, hands it
    /// the entries that reach subjects up to `last` (a subject reached
    /// without records of its own gets a state there) and counts it.
    pub fn count(&mut self, base: Part<'_>, other: Part<'_>, last: Option<SubjectId>) {
        if !self.counting {
            self.counting = true;
            self.base_passed.sort_by_key(|(target, _)| *target);
            self.other_passed.sort_by_key(|(target, _)| *target);
        }
        let day = self.day;
        let fold =
            |engine: &Engine, part: Part<'_>, passed: &mut Vec<(SubjectId, DerivedEntry)>| {
                let mut states = engine.fold_all_unreached(part.0, part.1, day);
                let up_to = match last {
                    Some(last) => passed.partition_point(|(target, _)| *target <= last),
                    None => passed.len(),
                };
                engine.take_reached(&mut states, passed.drain(..up_to).collect(), day);
                outcomes(engine, &states, day)
            };
        let before = fold(&self.base, base, &mut self.base_passed);
        let after = fold(&self.other, other, &mut self.other_passed);
        self.differ.merge(
            &before,
            &after,
            |subject| empty_outcome(&self.base, subject, day),
            |subject| empty_outcome(&self.other, subject, day),
        );
    }

    /// The report, once every part is counted.
    pub fn finish(self) -> Comparison {
        self.differ.report(self.day)
    }
}

/// The outcome of `subject` from `outcomes[*next]` when it is the
/// subject's (then moving past it), else `missing`'s.
fn take<'o>(
    outcomes: &'o [(SubjectId, Outcome)],
    next: &mut usize,
    subject: SubjectId,
    missing: impl Fn(SubjectId) -> Outcome,
) -> std::borrow::Cow<'o, Outcome> {
    match outcomes.get(*next) {
        Some((s, outcome)) if *s == subject => {
            *next += 1;
            std::borrow::Cow::Borrowed(outcome)
        }
        _ => std::borrow::Cow::Owned(missing(subject)),
    }
}

/// The outcome of each state on `day`, in the states' order, on the threads
/// of the current rayon pool.
pub(crate) fn outcomes(
    engine: &Engine,
    states: &[SubjectState],
    day: Day,
) -> Vec<(SubjectId, Outcome)> {
    use rayon::prelude::*;
    states
        .par_iter()
        .map(|state| (state.subject, engine.outcome(state, day)))
        .collect()
}

/// A rulebook as reports name it: `id@version`.
pub(crate) fn label(engine: &Engine) -> String {
    format!("{}@{}", engine.rulebook.id, engine.rulebook.version)
}

/// The outcome of a subject without records.
pub(crate) fn empty_outcome(engine: &Engine, subject: SubjectId, day: Day) -> Outcome {
    engine.outcome(&SubjectState::empty(subject, day), day)
}

/// Counts outcomes before and after, subject by subject, into two tallies
/// and the [`Changes`] between them.
pub(crate) struct Differ {
    group_min: u64,
    subjects: u64,
    before: Tally,
    after: Tally,
    changes: Changes,
    score_change_sum: i128,
}

impl Differ {
    /// `before` and `after` name the tallies' rulebooks (empty: unnamed);
    /// groups of fewer than `group_min` subjects are pooled.
    pub(crate) fn new(before: String, after: String, group_min: u64) -> Differ {
        Differ {
            group_min,
            subjects: 0,
            before: Tally {
                rulebook: before,
                ..Tally::default()
            },
            after: Tally {
                rulebook: after,
                ..Tally::default()
            },
            changes: Changes::default(),
            score_change_sum: 0,
        }
    }

    /// Adds the outcomes of two lists sorted by subject, pairing them by
    /// subject; a subject on one side only gets the other side's
    /// `*_missing` outcome (that of a subject without records).
    pub(crate) fn merge(
        &mut self,
        before: &[(SubjectId, Outcome)],
        after: &[(SubjectId, Outcome)],
        before_missing: impl Fn(SubjectId) -> Outcome,
        after_missing: impl Fn(SubjectId) -> Outcome,
    ) {
        let (mut b, mut a) = (0, 0);
        loop {
            let subject = match (before.get(b), after.get(a)) {
                (Some((x, _)), Some((y, _))) => *x.min(y),
                (Some((x, _)), None) => *x,
                (None, Some((y, _))) => *y,
                (None, None) => break,
            };
            let was = take(before, &mut b, subject, &before_missing);
            let is = take(after, &mut a, subject, &after_missing);
            self.add(subject, &was, &is);
        }
    }

    fn add(&mut self, subject: SubjectId, before: &Outcome, after: &Outcome) {
        self.subjects += 1;
        self.before.add(before);
        self.after.add(after);
        let report = &mut self.changes;
        let mut changed = before.grade != after.grade || before.score != after.score;
        if before.grade != after.grade {
            let name = |g: &Option<Arc<str>>| g.as_deref().unwrap_or(NOT_GRADED).to_string();
            *report
                .grade_moves
                .entry(name(&before.grade))
                .or_default()
                .entry(name(&after.grade))
                .or_default() += 1;
        }
        if let (Some(x), Some(y)) = (before.score, after.score) {
            let moves = &mut report.scores;
            match y.cmp(&x) {
                std::cmp::Ordering::Greater => moves.raised += 1,
                std::cmp::Ordering::Less => moves.lowered += 1,
                std::cmp::Ordering::Equal => moves.unchanged += 1,
            }
            self.score_change_sum += i128::from(y) - i128::from(x);
        }
        changed |= count_moves(&mut report.lists, &before.lists, &after.lists);
        changed |= count_moves(&mut report.measures, &before.measures, &after.measures);
        report.changed += u64::from(changed);
        for (way, group) in groups_of(subject) {
            report
                .groups
                .entry(way)
                .or_default()
                .entry(group)
                .or_default()
                .add(before, after, changed);
        }
    }

    /// The what-if report of the outcomes counted, on `day`.
    pub(crate) fn report(self, day: Day) -> Comparison {
        let group_min = self.group_min;
        let (subjects, base, other, changes) = self.finish();
        Comparison {
            as_of: day,
            group_min,
            subjects,
            base,
            other,
            changes,
        }
    }

    /// The subjects counted, the tallies before and after, and the changes.
    pub(crate) fn finish(mut self) -> (u64, Tally, Tally, Changes) {
        let scores = &mut self.changes.scores;
        let scored = scores.raised + scores.lowered + scores.unchanged;
        if scored > 0 {
            scores.mean_change = self.score_change_sum as f64 / scored as f64;
        }
        pool_small_groups(&mut self.changes.groups, self.group_min);
        (self.subjects, self.before, self.after, self.changes)
    }
}

/// Counts the names in one of `before` and `after` but not the other;
/// returns whether there was any.
fn count_moves<T: PartialEq + AsRef<str>>(
    moves: &mut BTreeMap<String, Moves>,
    before: &[T],
    after: &[T],
) -> bool {
    let mut any = false;
    for name in after.iter().filter(|n| !before.contains(n)) {
        moves.entry(name.as_ref().to_string()).or_default().entered += 1;
        any = true;
    }
    for name in before.iter().filter(|n| !after.contains(n)) {
        moves.entry(name.as_ref().to_string()).or_default().left += 1;
        any = true;
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(subjects: u64, changed: u64) -> GroupMoves {
        GroupMoves {
            subjects,
            changed,
            ..GroupMoves::default()
        }
    }

    fn by_group(sizes: &[(&str, u64)]) -> BTreeMap<&'static str, BTreeMap<String, GroupMoves>> {
        let groups = sizes
            .iter()
            .map(|&(name, n)| (name.to_string(), group(n, n / 2)))
            .collect();
        [("province", groups)].into_iter().collect()
    }

    #[test]
    fn small_groups_are_pooled_with_the_smallest_others_while_the_pool_is_small() {
        // Two small provinces pool into one of 11: shown as `other`.
        let mut groups = by_group(&[("11", 40), ("54", 5), ("63", 6)]);
        pool_small_groups(&mut groups, 10);
        let shown = &groups["province"];
        assert_eq!(shown.keys().collect::<Vec<_>>(), ["11", POOLED]);
        assert_eq!(shown[POOLED], group(11, 2 + 3));
        // A pool of 8 would single people out too (the total less the
        // groups shown would give it): it takes in the smallest province.
        let mut groups = by_group(&[("11", 40), ("21", 30), ("54", 5), ("63", 3)]);
        pool_small_groups(&mut groups, 10);
        let shown = &groups["province"];
        assert_eq!(shown.keys().collect::<Vec<_>>(), ["11", POOLED]);
        assert_eq!(shown[POOLED], group(38, 15 + 2 + 1));
        // Everyone pooled: the pool is the total, which the report gives.
        let mut groups = by_group(&[("54", 5), ("63", 3)]);
        pool_small_groups(&mut groups, 10);
        assert_eq!(groups["province"].keys().collect::<Vec<_>>(), [POOLED]);
        assert_eq!(groups["province"][POOLED].subjects, 8);
        // A minimum of one shows every group.
        let mut groups = by_group(&[("11", 40), ("54", 1)]);
        pool_small_groups(&mut groups, 1);
        assert_eq!(groups, by_group(&[("11", 40), ("54", 1)]));
    }
}
