//! The credit file: everything about one subject as of a day, in the shape
//! that is written out (NDJSON, the HTTP API) and explained to a person.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use crate::evaluate::{EntrySource, GradeAssignment, ModelStanding, Standing};
use crate::fold::Engine;
use crate::id::{SubjectId, SubjectKind};
use crate::name::Name;
use crate::record::{Fields, RecordKey};
use crate::rulebook::ListKind;
use crate::state::{EndReason, Source, Span};
use crate::time::Day;

/// How much of the file to write out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Score, grade, lists and measures in force.
    Summary,
    /// Also every record, every effect and every list entry, with legal bases.
    Full,
}

/// Whether an effect counts on the file's day, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectStatus {
    InForce,
    NotStarted,
    Ended,
    /// Paused while the record is disputed (the record type's policy).
    Suspended,
    /// The record type needs the subject's consent, which is not granted.
    NoConsent,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecordView {
    #[serde(flatten)]
    pub key: RecordKey,
    #[serde(rename = "type")]
    pub type_id: Name,
    pub title: String,
    pub legal_basis: String,
    pub occurred_at: Day,
    pub decided_at: Day,
    pub fields: Fields,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<Arc<str>>,
    pub retained_until: Day,
    pub public: bool,
    pub disputed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrected_at: Option<Day>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired_at: Option<Day>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EffectView {
    pub record: RecordKey,
    pub record_type: Name,
    #[serde(flatten)]
    pub source: Source,
    pub start: Day,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<Day>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points_base: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capped_by: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    pub status: EffectStatus,
    pub legal_basis: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct EntryView {
    pub list: Name,
    pub list_kind: ListKind,
    pub since: Day,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<Day>,
    pub public: bool,
    pub legal_basis: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<SubjectId>,
    /// How the subject is related to `via` (`legal_representative`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<Arc<str>>,
    /// The law under which an entry of `via` reaches the subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reach_legal_basis: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade_score: Option<i64>,
}

/// A list the subject is left off because it is on a list that excludes it.
#[derive(Clone, Debug, Serialize)]
pub struct LeftOffView {
    pub list: Name,
    pub list_kind: ListKind,
    /// The excluding lists the subject is on.
    pub excluded_by: Vec<Name>,
}

/// One subject's credit file as of a day.
#[derive(Clone, Debug, Serialize)]
pub struct CreditFile {
    pub subject: SubjectId,
    pub kind: SubjectKind,
    pub as_of: Day,
    pub rulebook: String,
    /// The main model's score; None when not scored.
    pub score: Option<i64>,
    pub grade: Option<Arc<str>>,
    /// Ids of the lists the subject is on.
    pub lists: Vec<Name>,
    /// Lists the subject would be on but for a list that excludes them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_off: Vec<LeftOffView>,
    /// Ids of the measures that apply.
    pub measures: Vec<Arc<str>>,
    pub models: Vec<ModelStanding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profession: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_entries: Option<Vec<EntryView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<RecordView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effects: Option<Vec<EffectView>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Engine {
    /// The credit file of `standing`'s subject.
    pub fn credit_file(&self, standing: &Standing<'_>, detail: Detail) -> CreditFile {
        let state = standing.state;
        let day = standing.day;
        let mut measures = Vec::new();
        for measure in &self.rulebook.measures {
            if measure.subject_kinds.contains(standing.kind)
                && self.decide(standing, measure).applies
            {
                measures.push(measure.id.clone());
            }
        }
        let mut warnings = Vec::new();
        for key in &state.orphan_facts {
            warnings.push(format!(
                "a later fact names record {}/{} which this subject does not have",
                key.provider, key.id
            ));
        }
        let mut file = CreditFile {
            subject: state.subject,
            kind: standing.kind,
            as_of: day,
            rulebook: self.rulebook.label(),
            score: standing.score(),
            grade: standing.grade().cloned(),
            lists: standing.lists.clone(),
            left_off: self.left_off_views(standing),
            measures,
            models: standing.models.clone(),
            profession: None,
            consent: None,
            list_entries: None,
            records: None,
            effects: None,
            warnings,
        };
        if detail == Detail::Summary {
            for model in &mut file.models {
                model.penalties.retain(|p| p.in_force);
            }
        }
        if detail == Detail::Full {
            // The standing holds the penalties that bear on the day; the
            // full file tells every period that fell short.
            for model in &mut file.models {
                if model.not_scored.is_none() && model.score.is_some() {
                    model.penalties = self.penalties(state, model.index, day, Day::MIN);
                }
            }
            file.profession = self.profession_on(state, day).cloned();
            file.consent = Some(state.consent_on(day));
            file.list_entries = Some(self.entry_views(standing));
            file.records = Some(self.record_views(standing));
            file.effects = Some(self.effect_views(standing));
        }
        file
    }

    fn left_off_views(&self, standing: &Standing<'_>) -> Vec<LeftOffView> {
        let mut views = Vec::with_capacity(standing.left_off.len());
        for left_off in &standing.left_off {
            let Some(list) = self.rulebook.lists.get(left_off.list as usize) else {
                continue;
            };
            views.push(LeftOffView {
                list: list.id,
                list_kind: list.kind,
                excluded_by: left_off
                    .by
                    .iter()
                    .filter_map(|&by| self.list_ids.get(by as usize).cloned())
                    .collect(),
            });
        }
        views
    }

    fn entry_views(&self, standing: &Standing<'_>) -> Vec<EntryView> {
        let state = standing.state;
        let mut views = Vec::new();
        for entry in &standing.entries {
            let list = &self.rulebook.lists[entry.list as usize];
            let (record, via, grade_score) = match entry.source {
                EntrySource::Effect(i) => {
                    let effect = &state.effects[i as usize];
                    (
                        Some(state.records[effect.record as usize].key.clone()),
                        None,
                        None,
                    )
                }
                EntrySource::Derived(i) => {
                    let derived = &state.derived[i as usize];
                    (Some(derived.record.clone()), Some(derived), None)
                }
                EntrySource::Grade { score, .. } => (None, None, Some(score)),
                // A grade assigned by a record names that record.
                EntrySource::AssignedGrade { record, .. } => (
                    state.records.get(record as usize).map(|r| r.key.clone()),
                    None,
                    None,
                ),
            };
            views.push(EntryView {
                list: list.id,
                list_kind: list.kind,
                since: entry.span.start,
                until: (entry.span.end != Day::MAX).then_some(entry.span.end),
                public: list.public,
                legal_basis: list.legal_basis.clone(),
                record,
                via: via.map(|derived| derived.via),
                relation: via.map(|derived| derived.relation.clone()),
                reach_legal_basis: via.and(list.reach_legal_basis.clone()),
                grade_score,
            });
        }
        views
    }

    fn record_views(&self, standing: &Standing<'_>) -> Vec<RecordView> {
        let day = standing.day;
        let mut views = Vec::new();
        for record in &standing.state.records {
            if !record.present_on(day) {
                continue;
            }
            let record_type = self
                .rulebook
                .record_type(&record.type_id)
                .map(|i| &self.rulebook.catalog[i as usize]);
            views.push(RecordView {
                key: record.key.clone(),
                type_id: record.type_id,
                title: record_type.map(|t| t.title.clone()).unwrap_or_default(),
                legal_basis: record_type
                    .map(|t| t.legal_basis.clone())
                    .unwrap_or_default(),
                occurred_at: record.occurred_at,
                decided_at: record.decided_at,
                fields: record.fields.clone(),
                document: record.document.clone(),
                retained_until: record.retained_until,
                public: record.public_until.is_some_and(|until| day < until),
                disputed: record.disputed_on(day),
                statement: record.statement().cloned(),
                corrected_at: record.corrected_at(),
                repaired_at: record.repaired_at(),
            });
        }
        views
    }

    fn effect_views(&self, standing: &Standing<'_>) -> Vec<EffectView> {
        let state = standing.state;
        let day = standing.day;
        let consent = state.consent_on(day);
        let mut views = Vec::new();
        for effect in &state.effects {
            let record = &state.records[effect.record as usize];
            if !record.present_on(day) {
                continue;
            }
            let status = effect_status(
                effect.span,
                day,
                record.suspended_on(day),
                record.consent_required && !consent,
            );
            let legal_basis = match &effect.source {
                Source::ListEntry { list } => self
                    .rulebook
                    .lists
                    .iter()
                    .find(|l| &l.id == list)
                    .map(|l| l.legal_basis.clone())
                    .unwrap_or_default(),
                Source::Rule { .. } => self
                    .rulebook
                    .record_type(&record.type_id)
                    .map(|i| self.rulebook.catalog[i as usize].legal_basis.clone())
                    .unwrap_or_default(),
            };
            let is_rule = matches!(effect.source, Source::Rule { .. });
            views.push(EffectView {
                record: record.key.clone(),
                record_type: record.type_id,
                source: effect.source.clone(),
                start: effect.span.start,
                end: (effect.span.end != Day::MAX).then_some(effect.span.end),
                points: is_rule.then_some(effect.points),
                points_base: (is_rule && effect.points_base() != effect.points)
                    .then_some(effect.points_base()),
                escalation: effect.escalation(),
                capped_by: effect.capped_by().cloned(),
                end_reason: effect.end_reason,
                status,
                legal_basis,
            });
        }
        views
    }
}

fn effect_status(span: Span, day: Day, suspended: bool, no_consent: bool) -> EffectStatus {
    if day < span.start {
        EffectStatus::NotStarted
    } else if day >= span.end {
        EffectStatus::Ended
    } else if suspended {
        EffectStatus::Suspended
    } else if no_consent {
        EffectStatus::NoConsent
    } else {
        EffectStatus::InForce
    }
}

impl CreditFile {
    /// The file as text for the person it is about: each point and each
    /// list entry with the record, rule and legal basis behind it.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Credit file of {} ({}) as of {}, rulebook {}",
            self.subject,
            self.kind.as_str(),
            self.as_of,
            self.rulebook
        );
        for model in &self.models {
            let why = match model.not_scored {
                Some(crate::evaluate::NotScored::NoConsent) => {
                    "the subject has not consented to scoring"
                }
                Some(crate::evaluate::NotScored::NoRecords) => "no record that this model counts",
                None => "not scored",
            };
            match (model.score, &model.grade) {
                (Some(score), grade) => {
                    let grade = grade.as_deref().unwrap_or("no grade");
                    let _ = writeln!(
                        out,
                        "\nScore {score}, grade {grade}, under model {}",
                        model.model
                    );
                }
                (None, Some(grade)) => {
                    let _ = writeln!(
                        out,
                        "\nGrade {grade}, no score, under model {}: {why}",
                        model.model
                    );
                }
                (None, None) => {
                    let _ = writeln!(out, "\nNot scored under model {}: {why}", model.model);
                }
            }
            if let Some(assigned) = &model.assigned {
                explain_assignment(&mut out, assigned);
            }
            for effect in self.effects.iter().flatten() {
                let Source::Rule { model: m, rule } = &effect.source else {
                    continue;
                };
                if *m != model.model {
                    continue;
                }
                let points = effect.points.unwrap_or_default();
                let mut line = format!(
                    "  {points:+5}  {} from record {}/{} (rule {rule}), {} from {}",
                    effect.record_type,
                    effect.record.provider,
                    effect.record.id,
                    if model.score.is_none() {
                        "not counted (not scored)"
                    } else {
                        status_word(effect.status)
                    },
                    effect.start
                );
                if let Some(end) = effect.end {
                    let _ = write!(line, " to {end}");
                }
                if let Some(count) = effect.escalation {
                    let _ = write!(line, "; occurrence {count} within the window, escalated");
                }
                if let Some(cap) = &effect.capped_by {
                    let _ = write!(line, "; limited by cap {cap}");
                }
                let _ = writeln!(out, "{line}\n         legal basis: {}", effect.legal_basis);
            }
            for penalty in &model.penalties {
                let _ = writeln!(
                    out,
                    "  {:+5}  expectation {} not met in the period from {} (gained {}, at least {} expected), {} from {} to {}\n         legal basis: {}",
                    penalty.points,
                    penalty.expectation,
                    penalty.period_start,
                    penalty.gained,
                    penalty.gain_min,
                    if penalty.in_force { "counts" } else { "counted" },
                    penalty.span.start,
                    penalty.span.end,
                    penalty.legal_basis
                );
            }
        }
        let _ = writeln!(
            out,
            "\nLists in force: {}",
            if self.lists.is_empty() {
                "none".to_string()
            } else {
                self.lists.join(", ")
            }
        );
        for entry in self.list_entries.iter().flatten() {
            let mut line = format!(
                "  {} ({:?} list) since {}",
                entry.list, entry.list_kind, entry.since
            );
            if let Some(until) = entry.until {
                let _ = write!(line, " until {until}");
            }
            if let Some(record) = &entry.record {
                let _ = write!(line, ", record {}/{}", record.provider, record.id);
            }
            if let Some(via) = entry.via {
                let _ = write!(line, ", through related subject {via}");
                if let Some(relation) = &entry.relation {
                    let _ = write!(line, " (as its {relation})");
                }
            }
            if let Some(score) = entry.grade_score {
                let _ = write!(line, ", by score {score} on the publication day");
            }
            let _ = writeln!(out, "{line}\n         legal basis: {}", entry.legal_basis);
            if let Some(basis) = &entry.reach_legal_basis {
                let _ = writeln!(out, "         reaching it: {basis}");
            }
        }
        for left_off in &self.left_off {
            let _ = writeln!(
                out,
                "  {} ({:?} list): left off while on {}, which excludes it",
                left_off.list,
                left_off.list_kind,
                left_off.excluded_by.join(", ")
            );
        }
        let mut history = self
            .effects
            .iter()
            .flatten()
            .filter(|e| {
                matches!(e.source, Source::ListEntry { .. }) && e.status != EffectStatus::InForce
            })
            .peekable();
        if history.peek().is_some() {
            let _ = writeln!(out, "List entries not in force:");
        }
        for effect in history {
            let Source::ListEntry { list } = &effect.source else {
                continue;
            };
            let mut line = format!(
                "  {list} from record {}/{}, {} from {}",
                effect.record.provider,
                effect.record.id,
                match effect.status {
                    EffectStatus::Suspended => "suspended while disputed",
                    EffectStatus::NotStarted => "to be listed",
                    _ => "listed",
                },
                effect.start
            );
            if let Some(end) = effect.end {
                let _ = write!(line, " to {end}");
            }
            match effect.end_reason {
                Some(EndReason::ExitRecord) => line.push_str(" (ended by a later record)"),
                Some(EndReason::Repair) => line.push_str(" (ended by repair)"),
                Some(EndReason::Expiry) => line.push_str(" (ends at its maximum duration)"),
                None => {}
            }
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(
            out,
            "\nMeasures that apply: {}",
            if self.measures.is_empty() {
                "none".to_string()
            } else {
                self.measures.join(", ")
            }
        );
        if let Some(records) = &self.records {
            let _ = writeln!(out, "\nRecords ({}):", records.len());
            for record in records {
                let mut flags = Vec::new();
                if record.disputed {
                    flags.push("disputed");
                }
                if record.public {
                    flags.push("public");
                }
                if record.corrected_at.is_some() {
                    flags.push("corrected");
                }
                if record.repaired_at.is_some() {
                    flags.push("repaired");
                }
                let _ = writeln!(
                    out,
                    "  {} {}/{} {} ({}), occurred {}, kept until {}{}",
                    record.decided_at,
                    record.key.provider,
                    record.key.id,
                    record.type_id,
                    record.title,
                    record.occurred_at,
                    record.retained_until,
                    if flags.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", flags.join(", "))
                    }
                );
                if let Some(statement) = &record.statement {
                    let _ = writeln!(out, "         subject's statement: {statement}");
                }
            }
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "\nwarning: {warning}");
        }
        out
    }
}

/// Why a model's grade is the one a record assigned: the record, the
/// model's entry for its type and that entry's legal basis.
fn explain_assignment(out: &mut String, assigned: &GradeAssignment) {
    let mut line = format!(
        "  grade {} assigned by record {}/{} ({}) from {}",
        assigned.grade,
        assigned.record.provider,
        assigned.record.id,
        assigned.record_type,
        assigned.since
    );
    if let Some(until) = assigned.until {
        let _ = write!(line, " to {until}");
    }
    if !assigned.ends_with.is_empty() {
        let _ = write!(
            line,
            ", or until a later record of {}",
            assigned.ends_with.join(", ")
        );
    }
    match &assigned.points_grade {
        Some(grade) if *grade != assigned.grade => {
            let _ = write!(line, "; it replaces grade {grade} by points");
        }
        Some(_) => line.push_str("; the points give the same grade"),
        None => {}
    }
    let _ = writeln!(
        out,
        "{line}\n         (the model's assigned grade for {} records, whatever the points)\n         legal basis: {}",
        assigned.record_type, assigned.legal_basis
    );
}

fn status_word(status: EffectStatus) -> &'static str {
    match status {
        EffectStatus::InForce => "counts",
        EffectStatus::NotStarted => "not yet counting",
        EffectStatus::Ended => "counted",
        EffectStatus::Suspended => "suspended while disputed",
        EffectStatus::NoConsent => "not counted without consent",
    }
}
