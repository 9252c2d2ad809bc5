//! Timeline: what one rulebook does to a population over time. A
//! researcher folds one history as it was known on each of a series of
//! days (every quarter, say) and follows the registry from step to step:
//! how many subjects it holds, their grades, who is on each list and under
//! each measure, and who entered or left since the step before, also by
//! group (see [`crate::whatif`], whose counts a step shares). Each step is
//! the registry as it read on that day, with only the records and later
//! facts known by then, so a step's grades, lists and measures are those
//! `socred score --as-of` gives for the day.

use serde::Serialize;

use crate::fold::Engine;
use crate::group::Groups;
use crate::id::SubjectId;
use crate::record::{Fact, Record};
use crate::time::{Day, Period};
use crate::whatif::{empty_outcome, label, outcomes, Changes, Differ, Outcome, Tally};

/// Most steps a timeline may have: a step folds the whole history.
pub const STEPS_MAX: usize = 1_000;

/// A timeline's report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeline {
    /// The rulebook, as `id@version`.
    pub rulebook: String,
    pub every: Period,
    /// The fewest subjects a group may count (see [`Changes`]).
    pub group_min: u64,
    pub steps: Vec<Step>,
}

/// The days a timeline visits, and how it counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub every: Period,
    pub days: Vec<Day>,
    /// Groups of fewer subjects are pooled (see [`Changes`]).
    pub group_min: u64,
}

impl Plan {
    /// The plan of a timeline from `from` to `to`, `every` apart (see
    /// [`steps`]).
    pub fn new(from: Day, to: Day, every: Period, group_min: u64) -> Result<Plan, StepsError> {
        Ok(Plan {
            every,
            days: steps(from, to, every)?,
            group_min,
        })
    }
}

/// The registry as it read on one day.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub as_of: Day,
    /// Subjects with a record or a later fact known by `as_of`, and those
    /// known at a step before whose only records a retraction has since
    /// taken away (they count on, as subjects without records): a subject
    /// the registry knew stays in it.
    pub subjects: u64,
    pub tally: Tally,
    /// What changed since the step before (the first step has none). A
    /// subject the step before did not know counts there as a subject
    /// without records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
}

/// Why a series of days cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StepsError {
    #[error("the first day {from} is after the last {to}")]
    Backwards { from: Day, to: Day },
    #[error("the period between steps is empty")]
    EmptyPeriod,
    #[error(
        "every {every} from {from} to {to} makes more than {max} steps; choose a longer period",
        max = STEPS_MAX
    )]
    TooMany { from: Day, to: Day, every: Period },
}

/// The days of a timeline: `from`, then `from` plus one, two, … times
/// `every` (each counted from `from`, so that monthly steps from the 31st
/// come back to the 31st where a month has one), while before `to`, and
/// `to` itself last.
pub fn steps(from: Day, to: Day, every: Period) -> Result<Vec<Day>, StepsError> {
    if from > to {
        return Err(StepsError::Backwards { from, to });
    }
    if every.is_zero() {
        return Err(StepsError::EmptyPeriod);
    }
    let mut days = vec![from];
    for k in 1.. {
        if days.len() > STEPS_MAX {
            return Err(StepsError::TooMany { from, to, every });
        }
        let day = every.times(k).map_or(Day::MAX, |period| period.after(from));
        if day >= to {
            break;
        }
        days.push(day);
    }
    if from < to {
        days.push(to);
    }
    if days.len() > STEPS_MAX {
        return Err(StepsError::TooMany { from, to, every });
    }
    Ok(days)
}

impl Engine {
    /// The timeline of `records` and `facts` on the days of `plan` (in
    /// order), folding on the threads of the current rayon pool, and
    /// calling `on_step` as each step is done. The batch is grouped by
    /// subject once; each step folds it as known on its day.
    pub fn timeline(
        &self,
        records: &[Record],
        facts: &[Fact],
        plan: &Plan,
        mut on_step: impl FnMut(&Step),
    ) -> Timeline {
        let groups = Groups::new(records, facts);
        let mut steps = Vec::with_capacity(plan.days.len());
        let mut before: Option<(Day, Vec<_>)> = None;
        for &day in &plan.days {
            let mut states = self.fold_groups(&groups, records, facts, day, true);
            self.pass_on_reach(&mut states, day);
            // The batch names subjects whose records come later: not yet
            // known on this day.
            states.retain(|state| !state.is_empty());
            let mut now = outcomes(self, &states, day);
            drop(states);
            if let Some((_, then)) = &before {
                // A subject the registry knew stays in it: one whose only
                // records a retraction took away counts on, without records.
                now = keep_known(then, now, |subject| empty_outcome(self, subject, day));
            }
            let step = match &before {
                None => {
                    let mut tally = Tally::default();
                    for (_, outcome) in &now {
                        tally.add(outcome);
                    }
                    Step {
                        as_of: day,
                        subjects: now.len() as u64,
                        tally,
                        changes: None,
                    }
                }
                Some((was, then)) => {
                    let mut differ = Differ::new(String::new(), String::new(), plan.group_min);
                    // Every subject of `then` is in `now`: only new ones
                    // are missing, from `then`.
                    differ.merge(
                        then,
                        &now,
                        |subject| empty_outcome(self, subject, *was),
                        |subject| empty_outcome(self, subject, day),
                    );
                    let (subjects, _, tally, changes) = differ.finish();
                    Step {
                        as_of: day,
                        subjects,
                        tally,
                        changes: Some(changes),
                    }
                }
            };
            on_step(&step);
            steps.push(step);
            before = Some((day, now));
        }
        Timeline {
            rulebook: label(self),
            every: plan.every,
            group_min: plan.group_min,
            steps,
        }
    }
}

/// `now` with the subjects of `then` it lacks added, each with `missing`'s
/// outcome; both are sorted by subject, and so is the result.
fn keep_known(
    then: &[(SubjectId, Outcome)],
    now: Vec<(SubjectId, Outcome)>,
    missing: impl Fn(SubjectId) -> Outcome,
) -> Vec<(SubjectId, Outcome)> {
    let mut lost = then
        .iter()
        .map(|(subject, _)| *subject)
        .filter(|subject| now.binary_search_by_key(subject, |(s, _)| *s).is_err())
        .peekable();
    if lost.peek().is_none() {
        return now;
    }
    let lost: Vec<(SubjectId, Outcome)> = lost.map(|s| (s, missing(s))).collect();
    let mut all = Vec::with_capacity(now.len() + lost.len());
    let (mut now, mut lost) = (now.into_iter().peekable(), lost.into_iter().peekable());
    while let (Some(a), Some(b)) = (now.peek(), lost.peek()) {
        let next = if a.0 < b.0 { now.next() } else { lost.next() };
        all.extend(next);
    }
    all.extend(now);
    all.extend(lost);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        Day::parse(text).unwrap()
    }

    fn days(texts: &[&str]) -> Vec<Day> {
        texts.iter().map(|t| day(t)).collect()
    }

    #[test]
    fn monthly_steps_count_from_the_first_day_and_end_on_the_last() {
        let every: Period = "P1M".parse().unwrap();
        assert_eq!(
            steps(day("2021-01-31"), day("2021-06-15"), every),
            Ok(days(&[
                "2021-01-31",
                "2021-02-28",
                "2021-03-31",
                "2021-04-30",
                "2021-05-31",
                "2021-06-15"
            ]))
        );
        // A last day on a step is not counted twice; one day is one step.
        let half: Period = "P6M".parse().unwrap();
        assert_eq!(
            steps(day("2021-01-01"), day("2022-01-01"), half),
            Ok(days(&["2021-01-01", "2021-07-01", "2022-01-01"]))
        );
        assert_eq!(
            steps(day("2021-01-01"), day("2021-01-01"), half),
            Ok(days(&["2021-01-01"]))
        );
    }

    #[test]
    fn impossible_series_are_refused_with_the_reason() {
        let (from, to) = (day("2021-01-01"), day("2026-01-01"));
        assert_eq!(
            steps(to, from, Period::days(1)),
            Err(StepsError::Backwards { from: to, to: from })
        );
        assert_eq!(
            steps(from, to, Period::default()),
            Err(StepsError::EmptyPeriod)
        );
        let every = Period::days(1);
        assert_eq!(
            steps(from, to, every),
            Err(StepsError::TooMany { from, to, every })
        );
        // The most steps there may be, and one more.
        let last = Period::days(STEPS_MAX as u32 - 1).after(from);
        assert_eq!(steps(from, last, every).map(|d| d.len()), Ok(STEPS_MAX));
        assert!(steps(from, last.add_days(1), every).is_err());
    }

    #[test]
    fn a_period_times_k_is_k_periods_in_one() {
        let p: Period = "P1Y2M3D".parse().unwrap();
        assert_eq!(p.times(3), Some("P3Y6M9D".parse().unwrap()));
        assert_eq!(p.times(0), Some(Period::default()));
        assert_eq!(Period::years(40_000).times(2), None);
    }
}
