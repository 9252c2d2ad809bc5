//! Reading a folded state as of a day: scores, grades, list entries in force,
//! and decisions on measures.
//!
//! Nothing here changes the state: a day only filters the effects'
//! intervals, adds the periodic expectations that have fallen due, and reads
//! the grade-based lists on their last publication day.

use std::sync::Arc;

use serde::Serialize;

use crate::expr::Context;
use crate::fold::{bucket, Engine};
use crate::id::{SubjectId, SubjectKind};
use crate::record::RecordKey;
use crate::rulebook::{CalendarPeriod, Condition, ListKind, Measure, MeasureKind, Schedule};
use crate::state::{Source, Span, SubjectState};
use crate::time::Day;

/// Why a model gives no score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotScored {
    /// The model scores this kind of subject only with its consent.
    NoConsent,
    /// The model scores only subjects with records it counts (e.g. tax credit).
    NoRecords,
}

/// A penalty for an unmet periodic expectation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExpectationPenalty {
    pub expectation: Arc<str>,
    /// The period that fell short, by its first day.
    pub period_start: Day,
    pub gained: i64,
    pub gain_min: i64,
    pub points: i64,
    #[serde(flatten)]
    pub span: Span,
    pub in_force: bool,
}

/// One model's reading of a subject on a day.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelStanding {
    pub model: Arc<str>,
    pub score: Option<i64>,
    pub grade: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_scored: Option<NotScored>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub penalties: Vec<ExpectationPenalty>,
    #[serde(skip)]
    pub(crate) index: u32,
}

/// Where a list entry in force comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntrySource {
    /// An effect of the subject's own record (index into `effects`).
    Effect(u32),
    /// An entry reaching the subject through a relation (index into `derived`).
    Derived(u32),
    /// The subject's grade on the list's publication day.
    Grade { model: u32, score: i64 },
}

/// A list entry in force on the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InForce {
    pub list: u32,
    pub span: Span,
    pub source: EntrySource,
}

/// A subject as of a day.
#[derive(Clone, Debug)]
pub struct Standing<'s> {
    pub state: &'s SubjectState,
    pub day: Day,
    pub kind: SubjectKind,
    /// One per model that scores this kind, in rulebook order; the first is
    /// the subject's main score.
    pub models: Vec<ModelStanding>,
    pub entries: Vec<InForce>,
    /// Ids of the lists in force, sorted and unique.
    pub lists: Vec<Arc<str>>,
}

impl Standing<'_> {
    pub fn score(&self) -> Option<i64> {
        self.models.first().and_then(|m| m.score)
    }

    pub fn grade(&self) -> Option<&Arc<str>> {
        self.models.first().and_then(|m| m.grade.as_ref())
    }

    fn model(&self, index: Option<u32>) -> Option<&ModelStanding> {
        match index {
            Some(index) => self.models.iter().find(|m| m.index == index),
            None => self.models.first(),
        }
    }
}

impl Engine {
    /// Reads `state` as of `day`.
    pub fn evaluate<'s>(&self, state: &'s SubjectState, day: Day) -> Standing<'s> {
        let kind = state.subject.kind();
        let mut models = Vec::new();
        for (index, model) in self.rulebook.models.iter().enumerate() {
            if model.subject_kinds.contains(kind) {
                models.push(self.model_standing(state, index as u32, day, true));
            }
        }
        let entries = self.entries_in_force(state, day);
        let mut lists: Vec<Arc<str>> = entries
            .iter()
            .map(|e| self.list_ids[e.list as usize].clone())
            .collect();
        lists.sort();
        lists.dedup();
        Standing {
            state,
            day,
            kind,
            models,
            entries,
            lists,
        }
    }

    fn model_standing(
        &self,
        state: &SubjectState,
        index: u32,
        day: Day,
        with_penalties: bool,
    ) -> ModelStanding {
        let model = &self.rulebook.models[index as usize];
        let kind = state.subject.kind();
        let unscored = |reason| ModelStanding {
            model: model.id.clone(),
            score: None,
            grade: None,
            not_scored: Some(reason),
            penalties: Vec::new(),
            index,
        };
        let consent = state.consent_on(day);
        if model.consent_required_for.contains(kind) && !consent {
            return unscored(NotScored::NoConsent);
        }
        let mut score = model.base_points;
        let mut counted_any = false;
        for effect in &state.effects {
            let Source::Rule { model: id, .. } = &effect.source else {
                continue;
            };
            if !same_id(id, &model.id) {
                continue;
            }
            let record = &state.records[effect.record as usize];
            if !record.present_on(day) {
                continue;
            }
            counted_any = true;
            if effect.span.contains(day)
                && !record.suspended_on(day)
                && (!record.consent_required || consent)
            {
                score = score.saturating_add(effect.points);
            }
        }
        if model.requires_records && !counted_any {
            return unscored(NotScored::NoRecords);
        }
        let mut penalties = Vec::new();
        if with_penalties {
            penalties = self.penalties(state, index, day);
            for penalty in &penalties {
                if penalty.in_force {
                    score = score.saturating_add(penalty.points);
                }
            }
        }
        let grade = model
            .grades
            .iter()
            .find(|band| score >= band.points_min)
            .map(|b| b.grade.clone());
        ModelStanding {
            model: model.id.clone(),
            score: Some(score),
            grade,
            not_scored: None,
            penalties,
            index,
        }
    }

    /// Penalties for every full period, from the subject's first record to
    /// `day`, in which it gained less than a model's expectation asks.
    fn penalties(&self, state: &SubjectState, index: u32, day: Day) -> Vec<ExpectationPenalty> {
        let model = &self.rulebook.models[index as usize];
        let kind = state.subject.kind();
        let mut out = Vec::new();
        let Some(first) = state.records.iter().map(|r| r.decided_at).min() else {
            return out;
        };
        for expectation in &model.expectations {
            if !expectation.subject_kinds.contains(kind) {
                continue;
            }
            let per = expectation.per;
            let mut period = bucket(per, first);
            let last = bucket(per, day);
            while period < last {
                let period_end = bucket_start(per, period + 1);
                let period_start = bucket_start(per, period);
                let scored = !model.consent_required_for.contains(kind)
                    || state.consent_on(period_end.add_days(-1));
                let gained: i64 = state
                    .effects
                    .iter()
                    .filter(|e| matches!(&e.source, Source::Rule { model: m, .. } if same_id(m, &model.id)))
                    .filter(|e| e.points > 0 && bucket(per, e.span.start) == period)
                    .map(|e| e.points)
                    .sum();
                if scored && gained < expectation.gain_min {
                    let span = Span {
                        start: period_end,
                        end: expectation.validity.after(period_end),
                    };
                    out.push(ExpectationPenalty {
                        expectation: expectation.id.clone(),
                        period_start,
                        gained,
                        gain_min: expectation.gain_min,
                        points: expectation.points,
                        in_force: span.contains(day),
                        span,
                    });
                }
                period += 1;
            }
        }
        out
    }

    fn entries_in_force(&self, state: &SubjectState, day: Day) -> Vec<InForce> {
        let kind = state.subject.kind();
        let mut entries = Vec::new();
        for (index, effect) in state.effects.iter().enumerate() {
            let Source::ListEntry { list } = &effect.source else {
                continue;
            };
            let record = &state.records[effect.record as usize];
            if !effect.span.contains(day) || !record.present_on(day) || record.suspended_on(day) {
                continue;
            }
            if let Some(list) = self.list_index(list) {
                entries.push(InForce {
                    list,
                    span: effect.span,
                    source: EntrySource::Effect(index as u32),
                });
            }
        }
        for (index, derived) in state.derived.iter().enumerate() {
            if !derived.span.contains(day) || derived.suspended.iter().any(|s| s.contains(day)) {
                continue;
            }
            if let Some(list) = self.list_index(&derived.list) {
                entries.push(InForce {
                    list,
                    span: derived.span,
                    source: EntrySource::Derived(index as u32),
                });
            }
        }
        for (index, list) in self.rulebook.lists.iter().enumerate() {
            let (Some(schedule), Some(model)) = (list.schedule, list.grade_model) else {
                continue;
            };
            if list.grade_entries.is_empty() || !list.subject_kinds.contains(kind) {
                continue;
            }
            if !self.rulebook.models[model as usize]
                .subject_kinds
                .contains(kind)
            {
                continue;
            }
            let (published, next) = publication(schedule, day);
            let standing = self.model_standing(state, model, published, true);
            let (Some(score), Some(grade)) = (standing.score, &standing.grade) else {
                continue;
            };
            if list.grade_entries.contains(grade) {
                entries.push(InForce {
                    list: index as u32,
                    span: Span {
                        start: published,
                        end: next,
                    },
                    source: EntrySource::Grade { model, score },
                });
            }
        }
        entries
    }

    fn list_index(&self, id: &str) -> Option<u32> {
        self.list_ids
            .iter()
            .position(|l| &**l == id)
            .map(|i| i as u32)
    }

    /// Decides whether `measure` applies to the subject of `standing`.
    pub fn decide(&self, standing: &Standing<'_>, measure: &Measure) -> Decision {
        let mut decision = Decision {
            subject: standing.state.subject,
            measure: measure.id.clone(),
            kind: measure.kind,
            applies: false,
            as_of: standing.day,
            rulebook: self.label.clone(),
            legal_basis: self
                .rulebook
                .measures
                .iter()
                .position(|m| Arc::ptr_eq(&m.id, &measure.id))
                .and_then(|i| self.measure_bases.get(i).cloned())
                .unwrap_or_else(|| measure.legal_basis.as_str().into()),
            reasons: Vec::new(),
        };
        if !measure.subject_kinds.contains(standing.kind) {
            decision.reasons.push(Reason::NotForSubjectKind {
                kind: standing.kind,
            });
            return decision;
        }
        let mut held = Vec::new();
        for condition in &measure.applies {
            if let Some(grounds) = self.check(standing, measure, condition) {
                held.push(condition.id.clone());
                decision.reasons.push(Reason::Applies {
                    condition: condition.id.clone(),
                    grounds,
                });
            }
        }
        if held.is_empty() {
            decision.reasons.push(Reason::NoConditionHolds);
            return decision;
        }
        decision.applies = true;
        for exception in &measure.exceptions {
            if let Some(grounds) = self.check(standing, measure, exception) {
                decision.applies = false;
                decision.reasons.push(Reason::Exception {
                    exception: exception.id.clone(),
                    overrides: held.clone(),
                    grounds,
                });
            }
        }
        decision
    }

    /// The grounds on which `condition` holds, or None when it does not.
    fn check(
        &self,
        standing: &Standing<'_>,
        measure: &Measure,
        condition: &Condition,
    ) -> Option<Vec<Ground>> {
        let mut grounds = Vec::new();
        if !condition.lists.is_empty() || condition.list_kind.is_some() {
            for entry in &standing.entries {
                let list = &self.rulebook.lists[entry.list as usize];
                let named = condition.lists.contains(&entry.list);
                let of_kind = condition.list_kind == Some(list.kind);
                if named || of_kind {
                    grounds.push(self.entry_ground(standing, entry));
                }
            }
            if grounds.is_empty() {
                return None;
            }
        }
        let model = standing.model(measure.model);
        if !condition.grades.is_empty() {
            let model = model?;
            let grade = model.grade.as_ref()?;
            if !condition.grades.contains(grade) {
                return None;
            }
            grounds.push(Ground::Grade {
                model: model.model.clone(),
                grade: grade.clone(),
                score: model.score.unwrap_or_default(),
                score_only: measure.kind == MeasureKind::Punishment,
            });
        }
        if let Some(when) = &condition.when {
            let ctx = Context {
                fields: None,
                record_type: "",
                provider: "",
                subject_kind: standing.kind,
                profession: standing.state.profession.as_deref().unwrap_or(""),
                score: model.and_then(|m| m.score),
                grade: model.and_then(|m| m.grade.as_deref()).unwrap_or(""),
                lists: &standing.lists,
            };
            if !when.test(&ctx) {
                return None;
            }
            grounds.push(Ground::Expression {
                when: when.source().into(),
            });
        }
        Some(grounds)
    }

    fn entry_ground(&self, standing: &Standing<'_>, entry: &InForce) -> Ground {
        let list = &self.rulebook.lists[entry.list as usize];
        let until = (entry.span.end != Day::MAX).then_some(entry.span.end);
        let state = standing.state;
        let (record, record_type, via) = match entry.source {
            EntrySource::Effect(index) => {
                let effect = &state.effects[index as usize];
                let record = &state.records[effect.record as usize];
                (Some(record.key.clone()), Some(record.type_id.clone()), None)
            }
            EntrySource::Derived(index) => {
                let derived = &state.derived[index as usize];
                (Some(derived.record.clone()), None, Some(derived.via))
            }
            EntrySource::Grade { .. } => (None, None, None),
        };
        Ground::ListEntry {
            list: list.id.clone(),
            list_kind: list.kind,
            legal_basis: self.list_bases[entry.list as usize].clone(),
            since: entry.span.start,
            until,
            record,
            record_type,
            via,
        }
    }
}

/// Ids compare by pointer first: a freshly folded state shares the
/// rulebook's `Arc`s, so most comparisons need no string compare.
fn same_id(a: &Arc<str>, b: &Arc<str>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// The first day of a calendar bucket (see [`bucket`]).
fn bucket_start(per: CalendarPeriod, bucket: i32) -> Day {
    let (year, month) = match per {
        CalendarPeriod::Year => (bucket, 1),
        CalendarPeriod::Quarter => (bucket.div_euclid(4), bucket.rem_euclid(4) * 3 + 1),
        CalendarPeriod::Month => (bucket.div_euclid(12), bucket.rem_euclid(12) + 1),
    };
    Day::from_civil(year, month as u32, 1)
}

/// The last publication day on or before `day`, and the next one.
fn publication(schedule: Schedule, day: Day) -> (Day, Day) {
    match schedule {
        Schedule::Weekly => {
            let monday = day.add_days(-day.weekday_from_monday());
            (monday, monday.add_days(7))
        }
        Schedule::Monthly => {
            let month = bucket(CalendarPeriod::Month, day);
            (
                bucket_start(CalendarPeriod::Month, month),
                bucket_start(CalendarPeriod::Month, month + 1),
            )
        }
    }
}

/// Whether one measure applies to one subject on one day, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub subject: SubjectId,
    pub measure: Arc<str>,
    pub kind: MeasureKind,
    pub applies: bool,
    pub as_of: Day,
    pub rulebook: Arc<str>,
    pub legal_basis: Arc<str>,
    pub reasons: Vec<Reason>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// The measure is not for this kind of subject.
    NotForSubjectKind { kind: SubjectKind },
    /// A condition under which the measure applies holds.
    Applies {
        condition: Arc<str>,
        grounds: Vec<Ground>,
    },
    /// None of the measure's conditions holds.
    NoConditionHolds,
    /// An exception holds and overrides the conditions that held.
    Exception {
        exception: Arc<str>,
        overrides: Vec<Arc<str>>,
        grounds: Vec<Ground>,
    },
}

/// A fact a condition rests on.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "ground", rename_all = "snake_case")]
pub enum Ground {
    ListEntry {
        list: Arc<str>,
        list_kind: ListKind,
        legal_basis: Arc<str>,
        since: Day,
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<Day>,
        #[serde(skip_serializing_if = "Option::is_none")]
        record: Option<RecordKey>,
        #[serde(skip_serializing_if = "Option::is_none")]
        record_type: Option<Arc<str>>,
        /// The related subject whose entry reaches this one.
        #[serde(skip_serializing_if = "Option::is_none")]
        via: Option<SubjectId>,
    },
    Grade {
        model: Arc<str>,
        grade: Arc<str>,
        score: i64,
        /// A punishment resting on the grade alone: the rulebook opted in.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        score_only: bool,
    },
    Expression {
        when: Arc<str>,
    },
}
