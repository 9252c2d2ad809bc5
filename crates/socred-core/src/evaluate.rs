//! Reading a folded state as of a day: scores, grades, list entries in force,
//! and decisions on measures.
//!
//! Nothing here changes the state: a day only filters the effects'
//! intervals, adds the periodic expectations that have fallen due, puts a
//! grade assigned by a record in force in place of the points' grade, and
//! reads the grade-based lists on their last publication day.

use std::sync::Arc;

use serde::Serialize;

use crate::expr::Context;
use crate::fold::{bucket, Engine};
use crate::id::{SubjectId, SubjectKind};
use crate::name::Name;
use crate::record::{RecordKey, Value};
use crate::rulebook::{
    AssignedGrade, CalendarPeriod, Condition, ListKind, Measure, MeasureKind, Schedule,
    ScoringModel, Severity,
};
use crate::state::{RecordState, Source, Span, SubjectState};
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
    /// The expectation's legal basis, as every point's.
    pub legal_basis: Arc<str>,
}

/// One model's reading of a subject on a day.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelStanding {
    pub model: Name,
    /// None when not scored; a grade may still be assigned by a record.
    pub score: Option<i64>,
    pub grade: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_scored: Option<NotScored>,
    /// The penalties for unmet expectations that may bear on the day: in
    /// force on it, or ended since the earliest day a grade list publishes
    /// from (see [`Engine::penalties_since`]). The whole history is in the
    /// credit file ([`crate::file::Detail::Full`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub penalties: Vec<ExpectationPenalty>,
    /// Why `grade` is not the points' grade: the record that assigns it.
    /// Boxed so that the usual standing, with none, stays small.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned: Option<Box<GradeAssignment>>,
    #[serde(skip)]
    pub(crate) index: u32,
}

/// A grade assigned by a record, in force on the day (see
/// [`AssignedGrade`] for when one is, and which wins).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GradeAssignment {
    pub grade: Arc<str>,
    /// The record that assigns it.
    pub record: RecordKey,
    pub record_type: Name,
    /// The legal basis of the model's assigned-grade entry (its own, or its
    /// record type's).
    pub legal_basis: Arc<str>,
    /// The day the record was decided.
    pub since: Day,
    /// The day it ends, as far as is known: its record's retention, its
    /// validity, a later record of an `until` type, a repair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<Day>,
    /// Record types of which a later record ends it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ends_with: Vec<Name>,
    /// The grade the points give, which the assignment replaces (None when
    /// not scored, or when no band takes the score).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points_grade: Option<Arc<str>>,
    /// Index of the record in the state, for list entries by grade.
    #[serde(skip)]
    pub(crate) record_index: u32,
}

/// The assignment that wins on a day: its entry in the model, its record
/// (index into the state's records) and its span.
#[derive(Clone, Copy, Debug)]
struct Winner {
    entry: u32,
    record: u32,
    span: Span,
}

/// Where a list entry in force comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntrySource {
    /// An effect of the subject's own record (index into `effects`).
    Effect(u32),
    /// An entry reaching the subject through a relation (index into `derived`).
    Derived(u32),
    /// The subject's grade by its score on the list's publication day.
    Grade { model: u32, score: i64 },
    /// The grade a record assigned, in force on the list's publication day
    /// (the record's index into `records`).
    AssignedGrade { model: u32, record: u32 },
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
    pub lists: Vec<Name>,
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
    /// The subject's profession on `day`: named by the latest record that
    /// is in the file that day (decided, not past its retention). The fold
    /// applies rules limited to professions with the latest one it knows;
    /// what a file or a measure shows for a day rests only on records in
    /// the file that day.
    pub fn profession_on<'s>(&self, state: &'s SubjectState, day: Day) -> Option<&'s Arc<str>> {
        if self.profession_fields.is_empty() {
            return None;
        }
        state.records.iter().rev().find_map(|record| {
            if !record.present_on(day) {
                return None;
            }
            let (_, name) = self
                .profession_fields
                .iter()
                .find(|(type_id, _)| **type_id == *record.type_id)?;
            match crate::expr::field_value(&record.fields, name) {
                Some(Value::Text(profession)) => Some(profession),
                _ => None,
            }
        })
    }

    /// Reads `state` as of `day`.
    pub fn evaluate<'s>(&self, state: &'s SubjectState, day: Day) -> Standing<'s> {
        let kind = state.subject.kind();
        let since = self.penalties_since(day);
        let mut models = Vec::with_capacity(self.rulebook.models.len());
        for (index, model) in self.rulebook.models.iter().enumerate() {
            if model.subject_kinds.contains(kind) {
                models.push(self.model_standing(state, index as u32, day, since));
            }
        }
        let mut entries = self.entries_in_force(state, day, &models);
        let left_off = self.exclude(&mut entries);
        let mut lists: Vec<Name> = entries
            .iter()
            .map(|e| self.list_ids[e.list as usize])
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

    /// The earliest day whose penalties a standing on `day` needs: `day`,
    /// or the last publication day of a grade list before it (a grade list
    /// reads the grade on its publication day, see `grade_on`).
    pub(crate) fn penalties_since(&self, day: Day) -> Day {
        self.rulebook
            .lists
            .iter()
            .filter(|list| list.grade_model.is_some())
            .filter_map(|list| list.schedule)
            .map(|schedule| publication(schedule, day).0)
            .fold(day, Day::min)
    }

    fn model_standing(
        &self,
        state: &SubjectState,
        index: u32,
        day: Day,
        since: Day,
    ) -> ModelStanding {
        let model = &self.rulebook.models[index as usize];
        let mut score = match self.points_on(state, index, day) {
            Ok(points) => points,
            Err(reason) => return self.unscored(state, index, day, reason),
        };
        let penalties = self.penalties(state, index, day, since);
        for penalty in &penalties {
            if penalty.in_force {
                score = score.saturating_add(penalty.points);
            }
        }
        let mut grade = model
            .grades
            .iter()
            .find(|band| score >= band.points_min)
            .map(|b| b.grade.clone());
        // The usual model assigns no grade and pays one test for it. (The
        // standing is built last, in place: built first and then passed
        // on to be changed, it would be copied out.)
        let assigned = if model.assigned_grades.is_empty() {
            None
        } else {
            self.assign(state, model, day, &mut grade)
        };
        ModelStanding {
            model: model.id,
            score: Some(score),
            grade,
            not_scored: None,
            penalties,
            assigned,
            index,
        }
    }

    /// The standing of a model that gives no score: no grade either,
    /// unless the subject lacks records (not consent) and a record assigns
    /// one (grade M for a new taxpayer). Without consent nothing is graded.
    fn unscored(
        &self,
        state: &SubjectState,
        index: u32,
        day: Day,
        reason: NotScored,
    ) -> ModelStanding {
        let model = &self.rulebook.models[index as usize];
        let mut grade = None;
        let assigned = if reason == NotScored::NoRecords && !model.assigned_grades.is_empty() {
            self.assign(state, model, day, &mut grade)
        } else {
            None
        };
        ModelStanding {
            model: model.id,
            score: None,
            grade,
            not_scored: Some(reason),
            penalties: Vec::new(),
            assigned,
            index,
        }
    }

    /// Puts the grade assigned by a record in force on `day`, if any, in
    /// place of the points' `grade`, and says which record assigned it.
    fn assign(
        &self,
        state: &SubjectState,
        model: &ScoringModel,
        day: Day,
        grade: &mut Option<Arc<str>>,
    ) -> Option<Box<GradeAssignment>> {
        let winner = self.assigned_on(state, model, day)?;
        let entry = model.assigned_grades.get(winner.entry as usize)?;
        let record = state.records.get(winner.record as usize)?;
        let ends_with = entry
            .until
            .iter()
            .filter_map(|&t| self.rulebook.catalog.get(t as usize))
            .map(|t| t.id)
            .collect();
        let points_grade = grade.replace(entry.grade.clone());
        Some(Box::new(GradeAssignment {
            grade: entry.grade.clone(),
            record: record.key.clone(),
            record_type: record.type_id,
            legal_basis: entry.legal_basis.clone(),
            since: winner.span.start,
            until: (winner.span.end != Day::MAX).then_some(winner.span.end),
            ends_with,
            points_grade,
            record_index: winner.record,
        }))
    }

    /// The assignment of `model` in force on `day` that wins: the most
    /// severe record type, then the latest decided record, then the record
    /// later in content order (the state's order); an entry before another
    /// of the same record type. None when none is in force.
    fn assigned_on(&self, state: &SubjectState, model: &ScoringModel, day: Day) -> Option<Winner> {
        let consent = state.consent_on(day);
        let mut best: Option<((Severity, Day, u32), Winner)> = None;
        for (entry_index, entry) in model.assigned_grades.iter().enumerate() {
            let Some(record_type) = self.rulebook.catalog.get(entry.record_type as usize) else {
                continue;
            };
            for (record_index, record) in state.records.iter().enumerate() {
                if record.type_id != record_type.id || !counts_on(record, day, consent) {
                    continue;
                }
                let span = self.assignment_span(state, entry, record_index, day, consent);
                if !span.contains(day) {
                    continue;
                }
                let rank = (record_type.severity, record.decided_at, record_index as u32);
                if best.as_ref().is_some_and(|(best, _)| *best >= rank) {
                    continue;
                }
                let winner = Winner {
                    entry: entry_index as u32,
                    record: record_index as u32,
                    span,
                };
                best = Some((rank, winner));
            }
        }
        best.map(|(_, winner)| winner)
    }

    /// The span of the assignment made by record `assigning` under `entry`,
    /// as known on `day`: from the day the record was decided to the first
    /// of the end of its retention, the end of its validity, its repair
    /// (when the entry says so) and the day a record of an `until` type,
    /// decided on or after it, that counts on `day` was decided.
    fn assignment_span(
        &self,
        state: &SubjectState,
        entry: &AssignedGrade,
        assigning: usize,
        day: Day,
        consent: bool,
    ) -> Span {
        let Some(record) = state.records.get(assigning) else {
            return Span {
                start: Day::MAX,
                end: Day::MAX,
            };
        };
        let start = record.decided_at;
        // It cannot outlast its record, which leaves the file when its
        // retention ends.
        let mut end = record.retained_until;
        if let Some(validity) = entry.validity {
            end = end.min(validity.after(start));
        }
        if entry.exit_on_repair {
            if let Some(repaired) = record.repaired_at() {
                end = end.min(repaired.max(start));
            }
        }
        if entry.until.is_empty() {
            return Span { start, end };
        }
        for (index, other) in state.records.iter().enumerate() {
            if index == assigning || other.decided_at < start || other.decided_at >= end {
                continue;
            }
            // A later record ends the assignment only while it counts: a
            // disputed first evaluation (suspended) leaves grade M in force.
            if other.suspended_on(day) || (other.consent_required && !consent) {
                continue;
            }
            let ends = entry.until.iter().any(|&t| {
                self.rulebook
                    .catalog
                    .get(t as usize)
                    .is_some_and(|t| t.id == other.type_id)
            });
            if ends {
                end = other.decided_at;
            }
        }
        Span { start, end }
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
            if *id != model.id {
                continue;
            }
            let record = &state.records[effect.record as usize];
            // Only an effect in force counts, for the score and for
            // `requires_records`: a taxpayer whose only evaluation has
            // lapsed, or is suspended by a dispute, has no evaluation
            // to be scored on (not a score of 0 and grade D).
            if record.present_on(day)
                && effect.span.contains(day)
                && !record.suspended_on(day)
                && (!record.consent_required || consent)
            {
                counted_any = true;
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
    ) -> Option<GradeOn<'a>> {
        let on_day = models.iter().find(|m| m.index == index);
        if published == day {
            if let Some(standing) = on_day {
                let grade = standing.grade.as_ref()?;
                let source = match &standing.assigned {
                    Some(assigned) => EntrySource::AssignedGrade {
                        model: index,
                        record: assigned.record_index,
                    },
                    None => EntrySource::Grade {
                        model: index,
                        score: standing.score?,
                    },
                };
                return Some(GradeOn { grade, source });
            }
        }
        let mut score = match self.points_on(state, index, published) {
            Ok(points) => points,
            Err(NotScored::NoRecords) => return self.assigned_grade_on(state, index, published),
            Err(NotScored::NoConsent) => return None,
        };
        match on_day {
            Some(standing) if standing.not_scored.is_none() && published <= day => {
                for penalty in &standing.penalties {
                    if penalty.span.contains(published) {
                        score = score.saturating_add(penalty.points);
                    }
                }
            }
            _ => {
                for penalty in self.penalties(state, index, published, published) {
                    if penalty.in_force {
                        score = score.saturating_add(penalty.points);
                    }
                }
            }
        }
        let model = &self.rulebook.models[index as usize];
        if !model.assigned_grades.is_empty() {
            if let Some(on) = self.assigned_grade_on(state, index, published) {
                return Some(on);
            }
        }
        let band = model.grades.iter().find(|band| score >= band.points_min)?;
        Some(GradeOn {
            grade: &band.grade,
            source: EntrySource::Grade {
                model: index,
                score,
            },
        })
    }

    /// The grade a record assigns under model `index` on `published`, if
    /// one is in force.
    fn assigned_grade_on(
        &self,
        state: &SubjectState,
        index: u32,
        published: Day,
    ) -> Option<GradeOn<'_>> {
        let model = self.rulebook.models.get(index as usize)?;
        if model.assigned_grades.is_empty() {
            return None;
        }
        let winner = self.assigned_on(state, model, published)?;
        let entry = model.assigned_grades.get(winner.entry as usize)?;
        Some(GradeOn {
            grade: &entry.grade,
            source: EntrySource::AssignedGrade {
                model: index,
                record: winner.record,
            },
        })
    }

    /// Penalties for every full period, from the subject's first record
    /// still in the file to `day`, in which it gained less than a model's
    /// expectation asks.
    /// The penalties of model `index` for its unmet expectations as of
    /// `day`, in period order, leaving out those that ended on or before
    /// `since` (`Day::MIN`: the whole history). A standing needs only the
    /// last period or two; a subject's history holds one a year.
    pub(crate) fn penalties(
        &self,
        state: &SubjectState,
        index: u32,
        day: Day,
        since: Day,
    ) -> Vec<ExpectationPenalty> {
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
        // Counted from the first record still in the file on `day`: a record
        // past its retention no longer counts for anything, not even as the
        // start of what the subject is expected to do.
        let Some(first) = state
            .records
            .iter()
            .filter(|r| r.retained_until > day)
            .map(|r| r.decided_at)
            .min()
        else {
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
                    if effect.points <= 0 || *m != model.id {
                        continue;
                    }
                    let offset =
                        i64::from(bucket(per, effect.span.start)) - i64::from(first_period);
                    if let Some(sum) = usize::try_from(offset).ok().and_then(|o| gains.get_mut(o)) {
                        *sum += effect.points;
                    }
                }
            }
            // From the last period back, until one's penalty would have
            // ended by `since` (a later period's ends later).
            let from = out.len();
            for (offset, &gained) in gains.iter().enumerate().rev() {
                let period = first_period + offset as i32;
                let end_civil = bucket_start_civil(per, period + 1);
                let period_end = Day::from_civil(end_civil.0, end_civil.1, end_civil.2);
                let end = expectation.validity.after_civil(period_end, end_civil);
                if end <= since {
                    break;
                }
                let scored = !model.consent_required_for.contains(kind)
                    || state.consent_on(period_end.add_days(-1));
                if scored && gained < expectation.gain_min {
                    let span = Span {
                        start: period_end,
                        end,
                    };
                    out.push(ExpectationPenalty {
                        expectation: expectation.id.clone(),
                        period_start: bucket_start(per, period),
                        gained,
                        gain_min: expectation.gain_min,
                        points: expectation.points,
                        in_force: span.contains(day),
                        span,
                        legal_basis: expectation.legal_basis.clone(),
                    });
                }
            }
            out[from..].reverse();
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
            let Some(on) = self.grade_on(state, model, published, day, models) else {
                continue;
            };
            if list.grade_entries.contains(on.grade) {
                entries.push(InForce {
                    list: index as u32,
                    span: Span {
                        start: published,
                        end: next,
                    },
                    source: on.source,
                });
            }
        }
        entries
    }

    fn list_index(&self, id: &Name) -> Option<u32> {
        self.list_ids.iter().position(|l| l == id).map(|i| i as u32)
    }

    /// The reasons when none of `measure`'s conditions holds: that alone,
    /// or with why the model its grades come from gives the subject no
    /// score (no consent, no records it counts), so that a reward refused
    /// for want of a grade says so.
    fn none_holds(&self, standing: &Standing<'_>, measure: &Measure) -> Vec<Reason> {
        let not_scored = measure
            .model
            .and_then(|index| self.rulebook.models.get(index as usize))
            .and_then(|model| standing.models.iter().find(|m| m.model == model.id))
            .filter(|model| model.grade.is_none())
            .and_then(|model| Some((model.model, model.not_scored?)));
        match not_scored {
            None => vec![Reason::NoConditionHolds],
            Some((model, why)) => vec![Reason::NoConditionHolds, Reason::NotScored { model, why }],
        }
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
            return (false, self.none_holds(standing, measure));
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
            // A grade assigned by a record rests on that record, not on
            // the score.
            let record = model.assigned.as_ref().map(|a| a.record.clone());
            grounds.push(Ground::Grade {
                model: model.model,
                grade: grade.clone(),
                score: model.score,
                score_only: measure.kind == MeasureKind::Punishment && record.is_none(),
                record,
            });
        }
        if let Some(when) = &condition.when {
            let ctx = Context {
                fields: None,
                record_type: "",
                provider: "",
                subject_kind: standing.kind,
                profession: self
                    .profession_on(standing.state, standing.day)
                    .map_or("", |p| &**p),
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
                (Some(record.key.clone()), Some(record.type_id), None)
            }
            EntrySource::Derived(index) => {
                let derived = &state.derived[index as usize];
                (Some(derived.record.clone()), None, Some(derived))
            }
            EntrySource::Grade { .. } => (None, None, None),
            EntrySource::AssignedGrade { record, .. } => match state.records.get(record as usize) {
                Some(record) => (Some(record.key.clone()), Some(record.type_id), None),
                None => (None, None, None),
            },
        };
        Ground::ListEntry {
            list: list.id,
            list_kind: list.kind,
            legal_basis: self.list_bases[entry.list as usize].clone(),
            since: entry.span.start,
            until,
            record,
            record_type,
            via: via.map(|derived| derived.via),
            relation: via.map(|derived| derived.relation.clone()),
            reach_legal_basis: via.and(list.reach_legal_basis.clone()),
        }
    }
}

/// A model's grade on a list's publication day, and where it comes from.
struct GradeOn<'a> {
    grade: &'a Arc<str>,
    source: EntrySource,
}

/// Whether a record's effects count on `day`: in the file, not suspended by
/// a dispute, and consented to where its type needs consent.
fn counts_on(record: &RecordState, day: Day, consent: bool) -> bool {
    record.present_on(day) && !record.suspended_on(day) && (!record.consent_required || consent)
}

/// Periods of expectation gains counted in an array on the stack: 16 years,
/// 4 years of quarters or 16 months (beyond, on the heap).
const GAINS_ON_STACK: usize = 16;

/// The first day of a calendar bucket (see [`bucket`]).
pub(crate) fn bucket_start(per: CalendarPeriod, bucket: i32) -> Day {
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

impl Schedule {
    /// The last publication day on or before `day`, and the next one: the
    /// day of the edition in force on `day`, and of the one after it.
    pub fn publication(self, day: Day) -> (Day, Day) {
        publication(self, day)
    }
}

/// The last publication day on or before `day`, and the next one.
///
/// Not inlined: inlined into `evaluate`, it was hoisted out of the lists'
/// loop and both schedules' days computed for every subject, grade list or
/// not (about 150 instructions a subject, measured with callgrind).
#[inline(never)]
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

impl Decision {
    /// The decision as an agency learns it: a grade among its grounds
    /// without the score behind it, and no word of a model that does not
    /// score the subject. The score is part of the file, which
    /// only its subject reads; the grade is what the measure's condition
    /// names.
    pub fn for_agency(mut self) -> Decision {
        self.reasons
            .retain(|reason| !matches!(reason, Reason::NotScored { .. }));
        for reason in &mut self.reasons {
            let grounds = match reason {
                Reason::Applies { grounds, .. } | Reason::Exception { grounds, .. } => grounds,
                _ => continue,
            };
            for ground in grounds {
                if let Ground::Grade { score, .. } = ground {
                    *score = None;
                }
            }
        }
        self
    }
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
    /// The model whose grades the measure's conditions name gives the
    /// subject none: it has not consented, or has no record the model
    /// counts. Follows `NoConditionHolds`; an agency is not told it
    /// (whether a person consents is theirs to tell).
    NotScored { model: Name, why: NotScored },
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
        list: Name,
        list_kind: ListKind,
        legal_basis: Arc<str>,
        since: Day,
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<Day>,
        #[serde(skip_serializing_if = "Option::is_none")]
        record: Option<RecordKey>,
        #[serde(skip_serializing_if = "Option::is_none")]
        record_type: Option<Name>,
        /// The related subject whose entry reaches this one.
        #[serde(skip_serializing_if = "Option::is_none")]
        via: Option<SubjectId>,
        /// How it is related to `via` (`legal_representative`).
        #[serde(skip_serializing_if = "Option::is_none")]
        relation: Option<Arc<str>>,
        /// The law under which the entry reaches it, when the list names one.
        #[serde(skip_serializing_if = "Option::is_none")]
        reach_legal_basis: Option<Arc<str>>,
    },
    Grade {
        model: Name,
        grade: Arc<str>,
        /// None when the model gives no score and a record assigned the
        /// grade.
        #[serde(skip_serializing_if = "Option::is_none")]
        score: Option<i64>,
        /// A punishment resting on the grade alone: the rulebook opted in.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        score_only: bool,
        /// The record that assigned the grade, when one did.
        #[serde(skip_serializing_if = "Option::is_none")]
        record: Option<RecordKey>,
    },
    Expression {
        when: Arc<str>,
    },
}

#[cfg(test)]
mod tests {
    //! Grades assigned by records, on a hand-built tax credit model: grade M
    //! while a taxpayer is new, D assigned directly whatever the points.

    use super::*;
    use crate::file::Detail;
    use crate::record::{Fact, FactKind, Record, Value};
    use crate::rulebook::{
        AssignedGrade, DisputePolicy, GradeBand, KindSet, ListDef, RecordType, Rulebook, ScoreRule,
        ScoringModel, Severity,
    };
    use crate::rulebook::{Points, RecordTypeIndex};
    use crate::time::Period;

    const EVALUATION: RecordTypeIndex = 0;
    const NEW_TAXPAYER: RecordTypeIndex = 1;
    const GRADE_D: RecordTypeIndex = 2;

    fn record_type(id: &str, severity: Severity, legal_basis: &str) -> RecordType {
        RecordType {
            id: id.into(),
            title: id.into(),
            subject_kinds: KindSet::ALL,
            category: "tax".into(),
            severity,
            legal_basis: legal_basis.into(),
            fields: Vec::new(),
            retention: Period::years(5),
            publicity: None,
            publicity_min: Period::default(),
            consent_required: false,
            profession_field: None,
            relation_fields: Vec::new(),
            dispute_policy: DisputePolicy::Suspended,
        }
    }

    fn band(grade: &str, points_min: i64) -> GradeBand {
        GradeBand {
            grade: grade.into(),
            points_min,
        }
    }

    fn grade_measure(id: &str, kind: MeasureKind, grade: &str) -> Measure {
        Measure {
            id: id.into(),
            title: String::new(),
            kind,
            legal_basis: "measure law".into(),
            agencies: vec!["agency".into()],
            purposes: Vec::new(),
            subject_kinds: KindSet::ALL,
            applies: vec![Condition {
                id: "graded".into(),
                lists: Vec::new(),
                list_kind: None,
                grades: vec![grade.into()],
                when: None,
            }],
            exceptions: Vec::new(),
            model: Some(0),
            score_only_opt_in: kind == MeasureKind::Punishment,
        }
    }

    /// A tax credit model for organisations and persons (persons only with
    /// consent): the evaluation's points, bands A to D, grade M for a new
    /// taxpayer until its first evaluation, D assigned for two years (ended
    /// by repair); a monthly list by grade D; measures by grades M and D.
    fn engine() -> Engine {
        let catalog = vec![
            record_type("tax.evaluation", Severity::Minor, "evaluation law"),
            record_type("tax.new_taxpayer", Severity::Minor, "new taxpayer law"),
            record_type("tax.grade_d", Severity::Serious, "grade d law"),
        ];
        let catalog_index = catalog
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, i as u32))
            .collect();
        let model = ScoringModel {
            id: "tax".into(),
            subject_kinds: KindSet::ALL,
            base_points: 0,
            consent_required_for: KindSet {
                person: true,
                organisation: false,
            },
            grades: vec![
                band("A", 90),
                band("B", 70),
                band("C", 40),
                band("D", i64::MIN),
            ],
            rules: vec![ScoreRule {
                id: "evaluation".into(),
                record_type: EVALUATION,
                condition: None,
                points: Points::Expression(
                    crate::expr::Program::compile(
                        "fields.points",
                        crate::expr::Scope::Record {
                            fields: &[("points".into(), crate::record::FieldType::Int)],
                        },
                    )
                    .unwrap(),
                ),
                points_min: None,
                points_max: None,
                validity: Period::years(1),
                escalation: None,
                subject_kinds: KindSet::ALL,
                professions: Vec::new(),
            }],
            caps: Vec::new(),
            expectations: Vec::new(),
            requires_records: true,
            assigned_grades: vec![
                AssignedGrade {
                    record_type: NEW_TAXPAYER,
                    grade: "M".into(),
                    until: vec![EVALUATION],
                    validity: None,
                    exit_on_repair: false,
                    legal_basis: "new taxpayer law".into(),
                },
                AssignedGrade {
                    record_type: GRADE_D,
                    grade: "D".into(),
                    until: Vec::new(),
                    validity: Some(Period::years(2)),
                    exit_on_repair: true,
                    legal_basis: "direct grade D rule".into(),
                },
            ],
            note: String::new(),
        };
        let graded_d = ListDef {
            id: "graded_d".into(),
            title: String::new(),
            kind: ListKind::Black,
            legal_basis: "list law".into(),
            subject_kinds: KindSet::ALL,
            record_entries: Vec::new(),
            grade_entries: vec!["D".into()],
            grade_model: Some(0),
            duration_min: Period::default(),
            duration_max: None,
            exits: Vec::new(),
            exit_on_repair: false,
            public: false,
            schedule: Some(Schedule::Monthly),
            reach: Vec::new(),
            reach_legal_basis: None,
            review_required: false,
            excluded_by: Vec::new(),
        };
        Engine::new(Arc::new(Rulebook {
            id: "test".into(),
            version: "1".into(),
            catalog,
            models: vec![model],
            lists: vec![graded_d],
            measures: vec![
                grade_measure("new_taxpayer_help", MeasureKind::Reward, "M"),
                grade_measure("grade_d_checks", MeasureKind::Punishment, "D"),
            ],
            calendar: Default::default(),
            objection_deadline: crate::rulebook::Rulebook::OBJECTION_DEADLINE_DEFAULT,
            audit_retention: None,
            catalog_index,
        }))
    }

    fn company() -> SubjectId {
        SubjectId::organisation(*b"91", 110_105, *b"MA01ABCD").unwrap()
    }

    fn person() -> SubjectId {
        SubjectId::person(110_101, 1980, 3, 1, 7).unwrap()
    }

    fn key(id: &str) -> RecordKey {
        RecordKey {
            provider: "tax.bureau".into(),
            id: id.into(),
        }
    }

    /// A record of `record_type` about `subject`, decided on `decided`.
    fn record(
        subject: SubjectId,
        id: &str,
        record_type: RecordTypeIndex,
        decided: Day,
        points: i64,
    ) -> Record {
        let type_id = ["tax.evaluation", "tax.new_taxpayer", "tax.grade_d"]
            .get(record_type as usize)
            .copied()
            .unwrap_or("unknown");
        let fields = if record_type == EVALUATION {
            [("points".into(), Value::Int(points))]
                .into_iter()
                .collect()
        } else {
            Default::default()
        };
        Record {
            key: key(id),
            subject,
            type_index: record_type,
            type_id: type_id.into(),
            occurred_at: decided.add_days(-5),
            decided_at: decided,
            fields,
            document: None,
        }
    }

    fn fact(subject: SubjectId, at: Day, kind: FactKind) -> Fact {
        Fact {
            subject,
            at,
            by: "reviewer".into(),
            kind,
        }
    }

    fn day(text: &str) -> Day {
        Day::parse(text).unwrap()
    }

    /// The tax model's standing of `subject` on `on`, all records known.
    fn standing(engine: &Engine, records: &[Record], facts: &[Fact], on: &str) -> ModelStanding {
        let subject = records.first().map_or_else(company, |r| r.subject);
        let state = engine.fold(subject, records, facts, Day(40_000));
        let standing = engine.evaluate(&state, day(on));
        standing
            .models
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("no model"))
    }

    fn assigned_record(model: &ModelStanding) -> Option<&str> {
        model.assigned.as_ref().map(|a| a.record.id.as_ref())
    }

    #[test]
    fn a_new_taxpayer_is_graded_m_with_no_score() {
        let engine = engine();
        let records = [record(company(), "new", NEW_TAXPAYER, day("2025-03-01"), 0)];
        let model = standing(&engine, &records, &[], "2025-06-01");
        assert_eq!(model.score, None);
        assert_eq!(model.grade.as_deref(), Some("M"));
        assert_eq!(model.not_scored, Some(NotScored::NoRecords));
        let assigned = model
            .assigned
            .as_deref()
            .unwrap_or_else(|| panic!("not assigned"));
        assert_eq!(assigned.since, day("2025-03-01"));
        // Open but for the record's retention; ended by an evaluation.
        assert_eq!(assigned.until, Some(day("2030-03-01")));
        assert_eq!(assigned.ends_with, [Name::new("tax.evaluation")]);
        assert_eq!(assigned.points_grade, None);
        // Before the record was decided the taxpayer is not graded at all.
        let before = standing(&engine, &records, &[], "2025-02-28");
        assert_eq!((before.score, before.grade), (None, None));
    }

    #[test]
    fn grade_m_ends_at_the_first_evaluation() {
        let engine = engine();
        let records = [
            record(company(), "new", NEW_TAXPAYER, day("2025-03-01"), 0),
            record(company(), "eval", EVALUATION, day("2026-04-15"), 85),
        ];
        let new = standing(&engine, &records, &[], "2026-04-14");
        assert_eq!(new.grade.as_deref(), Some("M"));
        // Known before the day it takes effect, the evaluation bounds M.
        let until = new.assigned.as_ref().and_then(|a| a.until);
        assert_eq!(until, Some(day("2026-04-15")));
        let evaluated = standing(&engine, &records, &[], "2026-04-15");
        assert_eq!(evaluated.score, Some(85));
        assert_eq!(evaluated.grade.as_deref(), Some("B"));
        assert_eq!(evaluated.assigned, None);
        // When the evaluation lapses without a next one, the taxpayer has
        // no evaluation in force: not scored, and not M again either.
        let lapsed = standing(&engine, &records, &[], "2027-06-01");
        assert_eq!((lapsed.score, lapsed.grade.as_deref()), (None, None));
        assert_eq!(lapsed.not_scored, Some(NotScored::NoRecords));
        assert_eq!(lapsed.assigned, None);
        // The next evaluation scores it again.
        let next = [
            records[0].clone(),
            records[1].clone(),
            record(company(), "eval2", EVALUATION, day("2027-09-01"), 35),
        ];
        let again = standing(&engine, &next, &[], "2027-09-02");
        assert_eq!((again.score, again.grade.as_deref()), (Some(35), Some("D")));
        // An evaluation decided before the registration does not end M.
        let earlier = [
            record(company(), "eval", EVALUATION, day("2024-04-15"), 85),
            record(company(), "new", NEW_TAXPAYER, day("2025-03-01"), 0),
        ];
        let model = standing(&engine, &earlier, &[], "2025-06-01");
        assert_eq!(model.grade.as_deref(), Some("M"));
        assert_eq!(model.score, None);
        let both = standing(&engine, &earlier, &[], "2025-04-01");
        assert_eq!((both.score, both.grade.as_deref()), (Some(85), Some("M")));
    }

    #[test]
    fn a_disputed_first_evaluation_leaves_grade_m_in_force_while_open() {
        let engine = engine();
        let subject = company();
        let records = [
            record(subject, "new", NEW_TAXPAYER, day("2025-03-01"), 0),
            record(subject, "eval", EVALUATION, day("2026-04-15"), 85),
        ];
        let disputed = [fact(
            subject,
            day("2026-05-01"),
            FactKind::Disputed {
                record: key("eval"),
                statement: None,
            },
        )];
        let open = standing(&engine, &records, &disputed, "2026-06-01");
        assert_eq!(open.grade.as_deref(), Some("M"));
        // The suspended evaluation gives no score (not 0).
        assert_eq!(open.score, None);
        assert_eq!(assigned_record(&open), Some("new"));
        let before = standing(&engine, &records, &disputed, "2026-04-20");
        assert_eq!(before.grade.as_deref(), Some("B"));
    }

    #[test]
    fn grade_d_assigned_beats_the_points_and_grade_m() {
        let engine = engine();
        let subject = company();
        let records = [
            record(subject, "new", NEW_TAXPAYER, day("2025-03-01"), 0),
            record(subject, "eval", EVALUATION, day("2026-04-15"), 95),
            record(subject, "d", GRADE_D, day("2026-05-10"), 0),
        ];
        let model = standing(&engine, &records, &[], "2026-06-01");
        assert_eq!(model.score, Some(95));
        assert_eq!(model.grade.as_deref(), Some("D"));
        let assigned = model
            .assigned
            .as_deref()
            .unwrap_or_else(|| panic!("not assigned"));
        assert_eq!(assigned.record, key("d"));
        assert_eq!(assigned.points_grade.as_deref(), Some("A"));
        assert_eq!(&*assigned.legal_basis, "direct grade D rule");

        // D while M is in force too: the serious record type wins, though
        // the new taxpayer record is the later one.
        let both = [
            record(subject, "d", GRADE_D, day("2025-02-01"), 0),
            record(subject, "new", NEW_TAXPAYER, day("2025-03-01"), 0),
        ];
        let model = standing(&engine, &both, &[], "2025-06-01");
        assert_eq!((model.score, model.grade.as_deref()), (None, Some("D")));
        assert_eq!(assigned_record(&model), Some("d"));
        // Of two D assignments, the latest decided one is shown.
        let twice = [
            record(subject, "d1", GRADE_D, day("2025-02-01"), 0),
            record(subject, "d2", GRADE_D, day("2025-04-01"), 0),
        ];
        let model = standing(&engine, &twice, &[], "2025-06-01");
        assert_eq!(assigned_record(&model), Some("d2"));
    }

    #[test]
    fn grade_d_ends_with_its_validity_and_with_repair() {
        let engine = engine();
        let subject = company();
        let records = [
            record(subject, "eval", EVALUATION, day("2026-04-15"), 75),
            record(subject, "eval2", EVALUATION, day("2027-04-15"), 75),
            record(subject, "eval3", EVALUATION, day("2028-04-15"), 75),
            record(subject, "d", GRADE_D, day("2026-05-10"), 0),
        ];
        let last_day = standing(&engine, &records, &[], "2028-05-09");
        assert_eq!(last_day.grade.as_deref(), Some("D"));
        assert_eq!(
            last_day.assigned.as_ref().and_then(|a| a.until),
            Some(day("2028-05-10"))
        );
        let ended = standing(&engine, &records, &[], "2028-05-10");
        assert_eq!(ended.grade.as_deref(), Some("B"));
        assert_eq!(ended.assigned, None);

        let repaired = [fact(
            subject,
            day("2026-09-01"),
            FactKind::Repaired {
                record: key("d"),
                statement: None,
            },
        )];
        let before = standing(&engine, &records, &repaired, "2026-08-31");
        assert_eq!(before.grade.as_deref(), Some("D"));
        let after = standing(&engine, &records, &repaired, "2026-09-01");
        assert_eq!(after.grade.as_deref(), Some("B"));
    }

    #[test]
    fn retraction_or_an_open_dispute_restores_the_points_grade() {
        let engine = engine();
        let subject = company();
        let records = [
            record(subject, "eval", EVALUATION, day("2026-04-15"), 75),
            record(subject, "d", GRADE_D, day("2026-05-10"), 0),
        ];
        let without_d = standing(&engine, &records[..1], &[], "2026-06-01");
        assert_eq!(without_d.grade.as_deref(), Some("B"));
        let retracted = [fact(
            subject,
            day("2026-05-20"),
            FactKind::Retracted { record: key("d") },
        )];
        assert_eq!(
            standing(&engine, &records, &retracted, "2026-06-01"),
            without_d
        );
        // A dispute pauses the assignment (the record type is `suspended`).
        let disputed = [fact(
            subject,
            day("2026-05-20"),
            FactKind::Disputed {
                record: key("d"),
                statement: None,
            },
        )];
        assert_eq!(
            standing(&engine, &records, &disputed, "2026-06-01")
                .grade
                .as_deref(),
            Some("B")
        );
        assert_eq!(
            standing(&engine, &records, &disputed, "2026-05-19")
                .grade
                .as_deref(),
            Some("D")
        );
    }

    #[test]
    fn a_person_who_does_not_consent_is_not_graded_whatever_is_assigned() {
        let engine = engine();
        let subject = person();
        let records = [record(subject, "d", GRADE_D, day("2025-02-01"), 0)];
        let refused = standing(&engine, &records, &[], "2025-06-01");
        assert_eq!(refused.not_scored, Some(NotScored::NoConsent));
        assert_eq!((refused.grade, refused.assigned), (None, None));
        let consent = [fact(subject, day("2025-01-01"), FactKind::ConsentGranted)];
        let granted = standing(&engine, &records, &consent, "2025-06-01");
        assert_eq!(granted.grade.as_deref(), Some("D"));
    }

    #[test]
    fn measures_and_lists_by_grade_see_the_assigned_grade() {
        let engine = engine();
        let subject = company();
        let records = [
            record(subject, "new", NEW_TAXPAYER, day("2025-03-01"), 0),
            record(subject, "d", GRADE_D, day("2025-06-10"), 0),
        ];
        let state = engine.fold(subject, &records, &[], Day(40_000));
        let measure = |id: &str| {
            engine
                .rulebook
                .measure(id)
                .unwrap_or_else(|| panic!("no measure {id}"))
        };

        let new = engine.evaluate(&state, day("2025-05-01"));
        assert!(engine.decide(&new, measure("new_taxpayer_help")).applies);
        assert!(!engine.decide(&new, measure("grade_d_checks")).applies);

        // Decided after June's publication day: on the list from July.
        let june = engine.evaluate(&state, day("2025-06-20"));
        assert!(june.lists.is_empty());
        let decision = engine.decide(&june, measure("grade_d_checks"));
        assert!(decision.applies);
        let grounds: Vec<&Ground> = decision
            .reasons
            .iter()
            .flat_map(|r| match r {
                Reason::Applies { grounds, .. } => grounds.as_slice(),
                _ => &[],
            })
            .collect();
        // The grade rests on the record, not on a score.
        assert_eq!(
            grounds,
            [&Ground::Grade {
                model: "tax".into(),
                grade: "D".into(),
                score: None,
                score_only: false,
                record: Some(key("d")),
            }]
        );

        // On the publication day itself, from the standing of that day.
        let first = engine.evaluate(&state, day("2025-07-01"));
        assert_eq!(first.lists, [Name::new("graded_d")]);
        let july = engine.evaluate(&state, day("2025-07-03"));
        assert_eq!(july.lists, [Name::new("graded_d")]);
        let entry = july.entries.first().unwrap_or_else(|| panic!("no entry"));
        assert_eq!(
            entry.source,
            EntrySource::AssignedGrade {
                model: 0,
                record: 1
            }
        );
        let ground = engine.entry_ground(&july, entry);
        assert!(
            matches!(&ground, Ground::ListEntry { record: Some(k), record_type: Some(t), .. }
                if *k == key("d") && &**t == "tax.grade_d"),
            "{ground:?}"
        );
    }

    #[test]
    fn the_file_explains_the_assigned_grade_by_record_and_legal_basis() {
        let engine = engine();
        let subject = company();
        let records = [
            record(subject, "eval", EVALUATION, day("2026-04-15"), 75),
            record(subject, "d", GRADE_D, day("2026-05-10"), 0),
        ];
        let state = engine.fold(subject, &records, &[], Day(40_000));
        let standing = engine.evaluate(&state, day("2026-06-01"));
        let file = engine.credit_file(&standing, Detail::Full);
        let text = file.explain();
        assert!(
            text.contains("Score 75, grade D, under model tax"),
            "{text}"
        );
        assert!(
            text.contains(
                "grade D assigned by record tax.bureau/d (tax.grade_d) from 2026-05-10 to \
                 2028-05-10; it replaces grade B by points"
            ),
            "{text}"
        );
        assert!(text.contains("legal basis: direct grade D rule"), "{text}");

        let json = serde_json::to_value(&file).unwrap_or_default();
        assert_eq!(json["grade"], "D");
        assert_eq!(json["score"], 75);
        assert!(json["subject"].is_string() && json["lists"].is_array());
        let assigned = &json["models"][0]["assigned"];
        assert_eq!(assigned["record"]["provider"], "tax.bureau");
        assert_eq!(assigned["record"]["id"], "d");
        assert_eq!(assigned["legal_basis"], "direct grade D rule");
        assert_eq!(assigned["points_grade"], "B");

        // A new taxpayer: a grade, no score, and why.
        let new = [record(subject, "new", NEW_TAXPAYER, day("2025-03-01"), 0)];
        let state = engine.fold(subject, &new, &[], Day(40_000));
        let standing = engine.evaluate(&state, day("2025-06-01"));
        let file = engine.credit_file(&standing, Detail::Summary);
        let text = file.explain();
        assert!(
            text.contains("Grade M, no score, under model tax: no record that this model counts"),
            "{text}"
        );
        assert!(
            text.contains("or until a later record of tax.evaluation"),
            "{text}"
        );
        assert!(text.contains("legal basis: new taxpayer law"), "{text}");
        let json = serde_json::to_value(&file).unwrap_or_default();
        assert_eq!(
            (&json["grade"], &json["score"]),
            (&"M".into(), &serde_json::Value::Null)
        );
    }
}
