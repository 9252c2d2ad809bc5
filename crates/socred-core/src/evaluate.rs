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

/// A list the subject would be on but is left off, because it is on a list
/// that excludes it (`excluded_by`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftOff {
    pub list: u32,
    /// The excluding lists the subject is on that day, in rulebook order.
    pub by: Vec<u32>,
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
    /// Lists whose entries were dropped because an excluding list is in force.
    pub left_off: Vec<LeftOff>,
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
        let mut models = Vec::with_capacity(self.rulebook.models.len());
        for (index, model) in self.rulebook.models.iter().enumerate() {
            if model.subject_kinds.contains(kind) {
                models.push(self.model_standing(state, index as u32, day));
            }
        }
        let mut entries = self.entries_in_force(state, day, &models);
        let left_off = self.exclude(&mut entries);
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
            left_off,
        }
    }

    /// Drops the entries of every list that another list in force excludes,
    /// and says which. Lists are settled in `exclusion_order`, so a list
    /// that is itself left off excludes nothing.
    fn exclude(&self, entries: &mut Vec<InForce>) -> Vec<LeftOff> {
        let mut left_off = Vec::new();
        for &list in &self.exclusion_order {
            if !entries.iter().any(|e| e.list == list) {
                continue;
            }
            let Some(def) = self.rulebook.lists.get(list as usize) else {
                continue;
            };
            let by: Vec<u32> = def
                .excluded_by
                .iter()
                .copied()
                .filter(|&by| entries.iter().any(|e| e.list == by))
                .collect();
            if by.is_empty() {
                continue;
            }
            entries.retain(|e| e.list != list);
            left_off.push(LeftOff { list, by });
        }
        left_off
    }

    fn model_standing(&self, state: &SubjectState, index: u32, day: Day) -> ModelStanding {
        let model = &self.rulebook.models[index as usize];
        let mut score = match self.points_on(state, index, day) {
            Ok(points) => points,
            Err(reason) => {
                return ModelStanding {
                    model: model.id.clone(),
                    score: None,
                    grade: None,
                    not_scored: Some(reason),
                    penalties: Vec::new(),
                    index,
                }
            }
        };
        let penalties = self.penalties(state, index, day);
        for penalty in &penalties {
            if penalty.in_force {
                score = score.saturating_add(penalty.points);
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

    /// The points of model `index` on `day` before expectation penalties:
    /// its base points and the effects in force, or why it gives no score.
    fn points_on(&self, state: &SubjectState, index: u32, day: Day) -> Result<i64, NotScored> {
        let model = &self.rulebook.models[index as usize];
        let kind = state.subject.kind();
        let consent = state.consent_on(day);
        if model.consent_required_for.contains(kind) && !consent {
            return Err(NotScored::NoConsent);
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
            return Err(NotScored::NoRecords);
        }
        Ok(score)
    }

    /// Score and grade of model `index` on `published`, a day not after
    /// `day`, reusing the model's standing on `day` from `models`: the
    /// penalties of `published` are those of `day` in force on it.
    fn grade_on<'a>(
        &'a self,
        state: &SubjectState,
        index: u32,
        published: Day,
        day: Day,
        models: &'a [ModelStanding],
    ) -> Option<(i64, &'a Arc<str>)> {
        let on_day = models.iter().find(|m| m.index == index);
        if published == day {
            if let Some(standing) = on_day {
                return Some((standing.score?, standing.grade.as_ref()?));
            }
        }
        let mut score = self.points_on(state, index, published).ok()?;
        match on_day {
            Some(standing) if standing.not_scored.is_none() && published <= day => {
                for penalty in &standing.penalties {
                    if penalty.span.contains(published) {
                        score = score.saturating_add(penalty.points);
                    }
                }
            }
            _ => {
                for penalty in self.penalties(state, index, published) {
                    if penalty.in_force {
                        score = score.saturating_add(penalty.points);
                    }
                }
            }
        }
        let model = &self.rulebook.models[index as usize];
        let band = model.grades.iter().find(|band| score >= band.points_min)?;
        Some((score, &band.grade))
    }

    /// Penalties for every full period, from the subject's first record to
    /// `day`, in which it gained less than a model's expectation asks.
    fn penalties(&self, state: &SubjectState, index: u32, day: Day) -> Vec<ExpectationPenalty> {
        let model = &self.rulebook.models[index as usize];
        let kind = state.subject.kind();
        let mut out = Vec::new();
        if !model
            .expectations
            .iter()
            .any(|e| e.subject_kinds.contains(kind))
        {
            return out;
        }
        let Some(first) = state.records.iter().map(|r| r.decided_at).min() else {
            return out;
        };
        // Points gained per calendar bucket from the first record's bucket,
        // summed once per period length rather than once per period: on the
        // stack for the usual few years (or months), on the heap beyond.
        let mut gains_small = [0i64; GAINS_ON_STACK];
        let mut gains_large: Vec<i64> = Vec::new();
        let mut gains_per = None;
        for expectation in &model.expectations {
            if !expectation.subject_kinds.contains(kind) {
                continue;
            }
            let per = expectation.per;
            let first_period = bucket(per, first);
            let last = bucket(per, day);
            let periods = usize::try_from(i64::from(last) - i64::from(first_period)).unwrap_or(0);
            let gains: &mut [i64] = if periods <= GAINS_ON_STACK {
                &mut gains_small[..periods]
            } else {
                if gains_large.len() < periods {
                    gains_large.resize(periods, 0);
                    gains_per = None;
                }
                &mut gains_large[..periods]
            };
            if gains_per != Some(per) {
                gains_per = Some(per);
                gains.fill(0);
                for effect in &state.effects {
                    let Source::Rule { model: m, .. } = &effect.source else {
                        continue;
                    };
                    if effect.points <= 0 || !same_id(m, &model.id) {
                        continue;
                    }
                    let offset =
                        i64::from(bucket(per, effect.span.start)) - i64::from(first_period);
                    if let Some(sum) = usize::try_from(offset).ok().and_then(|o| gains.get_mut(o)) {
                        *sum += effect.points;
                    }
                }
            }
            let mut period_start = bucket_start(per, first_period);
            for (period, &gained) in (first_period..).zip(gains.iter()) {
                let end_civil = bucket_start_civil(per, period + 1);
                let period_end = Day::from_civil(end_civil.0, end_civil.1, end_civil.2);
                let scored = !model.consent_required_for.contains(kind)
                    || state.consent_on(period_end.add_days(-1));
                if scored && gained < expectation.gain_min {
                    let span = Span {
                        start: period_end,
                        end: expectation.validity.after_civil(period_end, end_civil),
                    };
                    if out.capacity() == 0 {
                        out.reserve_exact(periods);
                    }
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
                period_start = period_end;
            }
        }
        out
    }

    fn entries_in_force(
        &self,
        state: &SubjectState,
        day: Day,
        models: &[ModelStanding],
    ) -> Vec<InForce> {
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
            let Some((score, grade)) = self.grade_on(state, model, published, day, models) else {
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

    fn list_index(&self, id: &Arc<str>) -> Option<u32> {
        self.list_ids
            .iter()
            .position(|l| same_id(l, id))
            .map(|i| i as u32)
    }

    /// Decides whether `measure` applies to the subject of `standing`.
    pub fn decide(&self, standing: &Standing<'_>, measure: &Measure) -> Decision {
        let (applies, reasons) = self.reasons(standing, measure);
        let legal_basis = match self.measure_index(measure) {
            Some(index) => self.measure_bases[index].clone(),
            None => measure.legal_basis.as_str().into(),
        };
        Decision {
            subject: standing.state.subject,
            measure: measure.id.clone(),
            kind: measure.kind,
            applies,
            as_of: standing.day,
            rulebook: self.label.clone(),
            legal_basis,
            reasons,
        }
    }

    /// Whether `measure` applies, and why. Every decision carries at least
    /// one reason: the reasons are allocated once, at the size the measure
    /// can need, rather than grown.
    fn reasons(&self, standing: &Standing<'_>, measure: &Measure) -> (bool, Vec<Reason>) {
        if !measure.subject_kinds.contains(standing.kind) {
            let kind = standing.kind;
            return (false, vec![Reason::NotForSubjectKind { kind }]);
        }
        let mut reasons = Vec::new();
        for condition in &measure.applies {
            if let Some(grounds) = self.check(standing, measure, condition) {
                if reasons.capacity() == 0 {
                    reasons = Vec::with_capacity(measure.applies.len() + measure.exceptions.len());
                }
                reasons.push(Reason::Applies {
                    condition: condition.id.clone(),
                    grounds,
                });
            }
        }
        if reasons.is_empty() {
            return (false, vec![Reason::NoConditionHolds]);
        }
        let mut applies = true;
        let mut held: Option<Vec<Arc<str>>> = None;
        for exception in &measure.exceptions {
            if let Some(grounds) = self.check(standing, measure, exception) {
                applies = false;
                // The conditions that held, named in every exception.
                let overrides = held
                    .get_or_insert_with(|| {
                        reasons
                            .iter()
                            .filter_map(|reason| match reason {
                                Reason::Applies { condition, .. } => Some(condition.clone()),
                                _ => None,
                            })
                            .collect()
                    })
                    .clone();
                reasons.push(Reason::Exception {
                    exception: exception.id.clone(),
                    overrides,
                    grounds,
                });
            }
        }
        (applies, reasons)
    }

    /// Where `measure` is in the rulebook: found by its address when it is
    /// one of the rulebook's own (the usual case, and no search), else by
    /// the identity of its id.
    fn measure_index(&self, measure: &Measure) -> Option<usize> {
        let measures = &self.rulebook.measures;
        let size = std::mem::size_of::<Measure>().max(1);
        let offset = (measure as *const Measure as usize).wrapping_sub(measures.as_ptr() as usize);
        let index = offset / size;
        if measures
            .get(index)
            .is_some_and(|m| std::ptr::eq(m, measure))
        {
            return Some(index).filter(|&i| i < self.measure_bases.len());
        }
        measures
            .iter()
            .position(|m| Arc::ptr_eq(&m.id, &measure.id))
            .filter(|&i| i < self.measure_bases.len())
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

/// Periods of expectation gains counted in an array on the stack: 16 years,
/// 4 years of quarters or 16 months (beyond, on the heap).
const GAINS_ON_STACK: usize = 16;

/// The first day of a calendar bucket (see [`bucket`]).
fn bucket_start(per: CalendarPeriod, bucket: i32) -> Day {
    let (year, month, day) = bucket_start_civil(per, bucket);
    Day::from_civil(year, month, day)
}

/// [`bucket_start`] as a civil date.
fn bucket_start_civil(per: CalendarPeriod, bucket: i32) -> (i32, u32, u32) {
    let (year, month) = match per {
        CalendarPeriod::Year => (bucket, 1),
        CalendarPeriod::Quarter => (bucket.div_euclid(4), bucket.rem_euclid(4) * 3 + 1),
        CalendarPeriod::Month => (bucket.div_euclid(12), bucket.rem_euclid(12) + 1),
    };
    (year, month as u32, 1)
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
