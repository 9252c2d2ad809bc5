//! The fold: from a subject's records and later facts to its [`SubjectState`].
//!
//! The fold is a pure function of (records, facts, rulebook, `known_at`).
//! Records and facts may arrive in any order: both are sorted by content
//! before anything is computed, so a late record gives the same state as if
//! it had arrived in order.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::expr::Context;
use crate::id::{SubjectId, SubjectKind};
use crate::record::{Fact, FactKind, Fields, Outcome, Record, RecordKey, Value};
use crate::rulebook::{CalendarPeriod, Points, Rulebook, ScoreRule};
use crate::state::{
    DerivedEntry, Effect, EndReason, RecordState, Relation, Source, Span, SubjectState,
};
use crate::time::Day;

/// A rulebook with the indices the fold needs, built once.
#[derive(Debug)]
pub struct Engine {
    pub rulebook: Arc<Rulebook>,
    /// For each record type: (model, rule) pairs that match it.
    rules_by_type: Vec<Vec<(u32, u32)>>,
    /// For each record type: (list, entry) pairs that match it.
    entries_by_type: Vec<Vec<(u32, u32)>>,
    /// For each model and cap: the record types of the cap's category.
    cap_by_type: Vec<Vec<(u32, u32)>>,
    /// Ids of the lists, as `Arc<str>` for cheap cloning into files.
    pub(crate) list_ids: Vec<Arc<str>>,
    /// Shared strings that every decision carries: the rulebook's label and
    /// the legal bases of measures and lists (no allocation per decision).
    pub(crate) label: Arc<str>,
    pub(crate) measure_bases: Vec<Arc<str>>,
    pub(crate) list_bases: Vec<Arc<str>>,
}

impl Engine {
    pub fn new(rulebook: Arc<Rulebook>) -> Engine {
        let types = rulebook.catalog.len();
        let mut rules_by_type = vec![Vec::new(); types];
        let mut cap_by_type = vec![Vec::new(); types];
        for (m, model) in rulebook.models.iter().enumerate() {
            for (r, rule) in model.rules.iter().enumerate() {
                rules_by_type[rule.record_type as usize].push((m as u32, r as u32));
            }
            for (c, cap) in model.caps.iter().enumerate() {
                for (t, record_type) in rulebook.catalog.iter().enumerate() {
                    if record_type.category == cap.category {
                        cap_by_type[t].push((m as u32, c as u32));
                    }
                }
            }
        }
        let mut entries_by_type = vec![Vec::new(); types];
        for (l, list) in rulebook.lists.iter().enumerate() {
            for (e, entry) in list.record_entries.iter().enumerate() {
                entries_by_type[entry.record_type as usize].push((l as u32, e as u32));
            }
        }
        let list_ids = rulebook.lists.iter().map(|list| list.id.clone()).collect();
        let label = rulebook.label().into();
        let measure_bases = rulebook
            .measures
            .iter()
            .map(|m| m.legal_basis.as_str().into())
            .collect();
        let list_bases = rulebook
            .lists
            .iter()
            .map(|l| l.legal_basis.as_str().into())
            .collect();
        Engine {
            rulebook,
            rules_by_type,
            entries_by_type,
            cap_by_type,
            list_ids,
            label,
            measure_bases,
            list_bases,
        }
    }

    /// Folds one subject. `records` and `facts` must all be about `subject`
    /// (others are ignored); their order does not matter.
    pub fn fold(
        &self,
        subject: SubjectId,
        records: &[Record],
        facts: &[Fact],
        known_at: Day,
    ) -> SubjectState {
        let records: Vec<&Record> = records.iter().collect();
        let facts: Vec<&Fact> = facts.iter().collect();
        self.fold_refs(subject, records, facts, known_at)
    }

    /// [`Engine::fold`] over borrowed records and facts, in any order.
    pub fn fold_refs(
        &self,
        subject: SubjectId,
        mut records: Vec<&Record>,
        mut facts: Vec<&Fact>,
        known_at: Day,
    ) -> SubjectState {
        facts.retain(|f| f.subject == subject && f.at <= known_at);
        facts.sort_by(|a, b| fact_order(a, b));
        records.retain(|r| r.subject == subject && r.decided_at <= known_at);
        records.sort_by(|a, b| record_order(a, b));
        records.dedup_by(|a, b| a.key == b.key);

        let mut state = SubjectState {
            subject,
            known_at,
            profession: None,
            consent: Vec::new(),
            records: Vec::with_capacity(records.len()),
            effects: Vec::new(),
            relations: Vec::new(),
            derived: Vec::new(),
            orphan_facts: Vec::new(),
        };
        let mut later = apply_facts(&facts, &records, &mut state);
        // Corrections may change dates: restore the content order.
        if later.iter().any(|l| l.dates.is_some()) {
            let mut paired: Vec<(&Record, Later)> = records.into_iter().zip(later).collect();
            paired.sort_by(|(a, la), (b, lb)| {
                let ka = la.dates.unwrap_or((a.occurred_at, a.decided_at));
                let kb = lb.dates.unwrap_or((b.occurred_at, b.decided_at));
                ka.cmp(&kb).then_with(|| a.key.cmp(&b.key))
            });
            (records, later) = paired.into_iter().unzip();
        }
        self.fold_records(&records, &later, &mut state);
        state
    }

    fn fold_records(&self, records: &[&Record], later: &[Later], state: &mut SubjectState) {
        let rulebook = &*self.rulebook;
        let kind = state.subject.kind();
        // First pass: the record states, the profession and the relations,
        // so that every rule sees the subject's attributes.
        let mut kept: Vec<(&Record, &Fields)> = Vec::with_capacity(records.len());
        let mut relations: BTreeMap<Arc<str>, SubjectId> = BTreeMap::new();
        for (record, later) in records.iter().zip(later) {
            if later.retracted || later.dates.is_some_and(|(_, d)| d > state.known_at) {
                continue;
            }
            let record_type = &rulebook.catalog[record.type_index as usize];
            let fields = later.fields.as_ref().unwrap_or(&record.fields);
            let (occurred_at, decided_at) = later
                .dates
                .unwrap_or((record.occurred_at, record.decided_at));
            if let Some(name) = &record_type.profession_field {
                if let Some(Value::Text(p)) = fields.get(name) {
                    state.profession = Some(p.clone());
                }
            }
            for name in &record_type.relation_fields {
                if let Some(Value::Text(text)) = fields.get(name) {
                    if let Ok(parsed) = SubjectId::parse(text) {
                        relations.insert(name.clone(), parsed.id);
                    }
                }
            }
            let civil = decided_at.to_civil();
            let public_until = record_type.publicity.map(|p| {
                let end = p.after_civil(decided_at, civil);
                later.repaired_at.map_or(end, |r| r.min(end))
            });
            state.records.push(RecordState {
                key: record.key.clone(),
                type_id: record.type_id.clone(),
                occurred_at,
                decided_at,
                fields: fields.clone(),
                document: record.document.clone(),
                retained_until: record_type.retention.after_civil(decided_at, civil),
                public_until,
                disputes: later.disputes.clone(),
                suspend_when_disputed: record_type.dispute_policy
                    == crate::rulebook::DisputePolicy::Suspended,
                statement: later.statement.clone(),
                corrected_at: later.corrected_at,
                repaired_at: later.repaired_at,
                consent_required: record_type.consent_required,
            });
            kept.push((record, fields));
        }
        state.relations = relations
            .into_iter()
            .map(|(name, subject)| Relation { name, subject })
            .collect();

        let mut escalation: BTreeMap<(u32, u32), Vec<Day>> = BTreeMap::new();
        let mut caps: BTreeMap<(u32, u32, i32), (i64, i64)> = BTreeMap::new();
        for (index, (record, fields)) in kept.iter().enumerate() {
            let record_state = &state.records[index];
            let civil = record_state.decided_at.to_civil();
            let ctx = Context {
                fields: Some(fields),
                record_type: &record.type_id,
                provider: &record.key.provider,
                subject_kind: kind,
                profession: state.profession.as_deref().unwrap_or(""),
                score: None,
                grade: "",
                lists: &[],
            };
            for &(m, r) in &self.rules_by_type[record.type_index as usize] {
                let model = &rulebook.models[m as usize];
                let rule = &model.rules[r as usize];
                if !model.subject_kinds.contains(kind) || !rule_applies(rule, kind, &ctx) {
                    continue;
                }
                let Some(points_base) = rule_points(rule, &ctx) else {
                    continue;
                };
                let window = escalation.entry((m, r)).or_default();
                let occurred_at = record_state.occurred_at;
                let mut points = points_base;
                let mut escalated = None;
                if let Some(esc) = &rule.escalation {
                    let since = esc.window.before(occurred_at);
                    let count = 1 + window.iter().filter(|&&d| d > since).count() as u32;
                    if count >= esc.from_count {
                        points = points.saturating_mul(esc.multiplier);
                        escalated = Some(count);
                    }
                }
                window.push(occurred_at);
                let start = record_state.decided_at;
                let mut capped_by = None;
                for &(cm, c) in &self.cap_by_type[record.type_index as usize] {
                    if cm != m {
                        continue;
                    }
                    let cap = &model.caps[c as usize];
                    let (gained, lost) =
                        caps.entry((m, c, bucket(cap.per, start))).or_insert((0, 0));
                    let before = points;
                    if points > 0 {
                        if let Some(max) = cap.gain_max {
                            points = points.min((max - *gained).max(0));
                        }
                        *gained += points;
                    } else if points < 0 {
                        if let Some(max) = cap.loss_max {
                            points = points.max(-(max - *lost).max(0));
                        }
                        *lost += -points;
                    }
                    if points != before {
                        capped_by = Some(cap.id.clone());
                    }
                }
                let end = rule
                    .validity
                    .after_civil(start, civil)
                    .min(record_state.retained_until);
                state.effects.push(Effect {
                    record: index as u32,
                    source: Source::Rule {
                        model: model.id.clone(),
                        rule: rule.id.clone(),
                    },
                    span: Span { start, end },
                    points,
                    points_base,
                    escalation: escalated,
                    capped_by,
                    end_reason: None,
                });
            }
            for &(l, e) in &self.entries_by_type[record.type_index as usize] {
                let list = &rulebook.lists[l as usize];
                let entry = &list.record_entries[e as usize];
                if !list.subject_kinds.contains(kind) {
                    continue;
                }
                if let Some(condition) = &entry.condition {
                    if !condition.test(&ctx) {
                        continue;
                    }
                }
                let effect = self.list_entry(l, index, &kept, state);
                state.effects.push(effect);
            }
        }
    }

    /// A list entry made by record `index`, with its end: the earliest of
    /// expiry, an exit record and repair.
    fn list_entry(
        &self,
        list_index: u32,
        index: usize,
        kept: &[(&Record, &Fields)],
        state: &SubjectState,
    ) -> Effect {
        let list = &self.rulebook.lists[list_index as usize];
        let record_state = &state.records[index];
        let (_, fields) = kept[index];
        let start = record_state.decided_at;
        let mut end = list.duration_max.map_or(Day::MAX, |p| p.after(start));
        let mut end_reason = Some(EndReason::Expiry);
        for exit in &list.exits {
            for (other, (record, other_fields)) in kept.iter().enumerate() {
                let other_state = &state.records[other];
                if record.type_index != exit.record_type || other_state.decided_at < start {
                    continue;
                }
                if let Some(field) = &exit.match_field {
                    match (fields.get(field), other_fields.get(field)) {
                        (Some(a), Some(b)) if a == b => {}
                        _ => continue,
                    }
                }
                let exit_day = other_state.decided_at.add_working_days(exit.working_days);
                if exit_day < end {
                    end = exit_day;
                    end_reason = Some(EndReason::ExitRecord);
                }
            }
        }
        if list.exit_on_repair {
            if let Some(repaired_at) = record_state.repaired_at {
                let earliest = list.duration_min.after(start);
                let repair_day = repaired_at.max(earliest);
                if repair_day < end {
                    end = repair_day;
                    end_reason = Some(EndReason::Repair);
                }
            }
        }
        end = end.min(record_state.retained_until);
        if end == Day::MAX {
            end_reason = None;
        }
        Effect {
            record: index as u32,
            source: Source::ListEntry {
                list: self.list_ids[list_index as usize].clone(),
            },
            span: Span { start, end },
            points: 0,
            points_base: 0,
            escalation: None,
            capped_by: None,
            end_reason,
        }
    }

    /// The entries that `state` (an organisation) passes on to related
    /// subjects through lists that reach them, as (related subject, entry).
    pub fn reach(&self, state: &SubjectState) -> Vec<(SubjectId, DerivedEntry)> {
        let mut out = Vec::new();
        for effect in &state.effects {
            let Source::ListEntry { list } = &effect.source else {
                continue;
            };
            let Some(def) = self.rulebook.lists.iter().find(|l| &l.id == list) else {
                continue;
            };
            for relation in &state.relations {
                if !def.reach.contains(&relation.name) || relation.subject == state.subject {
                    continue;
                }
                let record = &state.records[effect.record as usize];
                let suspended = if record.suspend_when_disputed {
                    record.disputes.clone()
                } else {
                    Vec::new()
                };
                out.push((
                    relation.subject,
                    DerivedEntry {
                        list: list.clone(),
                        via: state.subject,
                        relation: relation.name.clone(),
                        record: record.key.clone(),
                        span: effect.span,
                        suspended,
                    },
                ));
            }
        }
        out
    }
}

/// What the later facts did to one record.
#[derive(Clone, Debug, Default)]
struct Later {
    retracted: bool,
    fields: Option<Fields>,
    dates: Option<(Day, Day)>,
    corrected_at: Option<Day>,
    disputes: Vec<Span>,
    statement: Option<Arc<str>>,
    repaired_at: Option<Day>,
}

fn apply_facts(facts: &[&Fact], records: &[&Record], state: &mut SubjectState) -> Vec<Later> {
    let mut later = vec![Later::default(); records.len()];
    // `records` is sorted by content, not by key: build a key index, when
    // some fact names a record (most subjects have none).
    let mut by_key: Vec<(&RecordKey, usize)> = Vec::new();
    if facts.iter().any(|f| f.record().is_some()) {
        by_key = records
            .iter()
            .enumerate()
            .map(|(i, r)| (&r.key, i))
            .collect();
        by_key.sort_unstable();
    }
    for fact in facts {
        let Some(key) = fact.record() else {
            match fact.kind {
                FactKind::ConsentGranted => state.consent.push((fact.at, true)),
                FactKind::ConsentWithdrawn => state.consent.push((fact.at, false)),
                _ => {}
            }
            continue;
        };
        let Ok(pos) = by_key.binary_search_by(|(k, _)| (*k).cmp(key)) else {
            state.orphan_facts.push(key.clone());
            continue;
        };
        let entry = &mut later[by_key[pos].1];
        match &fact.kind {
            FactKind::Retracted { .. } => entry.retracted = true,
            FactKind::Corrected {
                fields,
                occurred_at,
                decided_at,
                ..
            } => {
                entry.fields = Some(fields.clone());
                let record = records[by_key[pos].1];
                if occurred_at.is_some() || decided_at.is_some() {
                    entry.dates = Some((
                        occurred_at.unwrap_or(record.occurred_at),
                        decided_at.unwrap_or(record.decided_at),
                    ));
                }
                entry.corrected_at = Some(fact.at);
            }
            FactKind::Disputed { statement, .. } => {
                if entry
                    .disputes
                    .last()
                    .is_none_or(|span| span.end != Day::MAX)
                {
                    entry.disputes.push(Span {
                        start: fact.at,
                        end: Day::MAX,
                    });
                }
                if statement.is_some() {
                    entry.statement = statement.clone();
                }
            }
            FactKind::Resolved {
                outcome, fields, ..
            } => {
                if let Some(span) = entry.disputes.last_mut() {
                    if span.end == Day::MAX {
                        span.end = fact.at;
                    }
                }
                match outcome {
                    Outcome::Upheld => {}
                    Outcome::Corrected => {
                        if let Some(fields) = fields {
                            entry.fields = Some(fields.clone());
                            entry.corrected_at = Some(fact.at);
                        }
                    }
                    Outcome::Retracted => entry.retracted = true,
                }
            }
            FactKind::Repaired { .. } => {
                entry.repaired_at = Some(entry.repaired_at.map_or(fact.at, |d| d.min(fact.at)));
            }
            FactKind::ConsentGranted | FactKind::ConsentWithdrawn => {}
        }
    }
    state.orphan_facts.sort();
    state.orphan_facts.dedup();
    later
}

fn rule_applies(rule: &ScoreRule, kind: SubjectKind, ctx: &Context<'_>) -> bool {
    if !rule.subject_kinds.contains(kind) {
        return false;
    }
    if !rule.professions.is_empty() && !rule.professions.iter().any(|p| &**p == ctx.profession) {
        return false;
    }
    match &rule.condition {
        Some(condition) => condition.test(ctx),
        None => true,
    }
}

fn rule_points(rule: &ScoreRule, ctx: &Context<'_>) -> Option<i64> {
    let mut points = match &rule.points {
        Points::Constant(n) => *n,
        Points::Expression(program) => program.points(ctx)?,
    };
    if let Some(min) = rule.points_min {
        points = points.max(min);
    }
    if let Some(max) = rule.points_max {
        points = points.min(max);
    }
    Some(points)
}

/// The calendar bucket a day falls in, for caps and expectations.
pub(crate) fn bucket(per: CalendarPeriod, day: Day) -> i32 {
    let (year, month, _) = day.to_civil();
    let month = month as i32;
    match per {
        CalendarPeriod::Year => year,
        CalendarPeriod::Quarter => year * 4 + (month - 1) / 3,
        CalendarPeriod::Month => year * 12 + month - 1,
    }
}

/// Content order of records: by conduct, then decision, then key.
fn record_order(a: &Record, b: &Record) -> Ordering {
    (a.occurred_at, a.decided_at, &a.key).cmp(&(b.occurred_at, b.decided_at, &b.key))
}

/// Content order of facts: by day, then kind, then the record, then content.
fn fact_order(a: &Fact, b: &Fact) -> Ordering {
    fn rank(kind: &FactKind) -> u8 {
        match kind {
            FactKind::ConsentWithdrawn => 0,
            FactKind::ConsentGranted => 1,
            FactKind::Corrected { .. } => 2,
            FactKind::Disputed { .. } => 3,
            FactKind::Resolved { .. } => 4,
            FactKind::Repaired { .. } => 5,
            FactKind::Retracted { .. } => 6,
        }
    }
    a.at.cmp(&b.at)
        .then_with(|| rank(&a.kind).cmp(&rank(&b.kind)))
        .then_with(|| a.record().cmp(&b.record()))
        .then_with(|| a.by.cmp(&b.by))
        .then_with(|| format!("{:?}", a.kind).cmp(&format!("{:?}", b.kind)))
}

impl Engine {
    /// Folds every subject named by `records` and `facts`, then passes list
    /// entries on to related subjects (see [`Engine::reach`]). The result is
    /// sorted by subject.
    pub fn fold_all(&self, records: &[Record], facts: &[Fact], known_at: Day) -> Vec<SubjectState> {
        let mut record_order: Vec<((u128, u16), u32)> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.subject.sort_key(), i as u32))
            .collect();
        record_order.sort_unstable();
        let mut fact_order: Vec<((u128, u16), u32)> = facts
            .iter()
            .enumerate()
            .map(|(i, f)| (f.subject.sort_key(), i as u32))
            .collect();
        fact_order.sort_unstable();

        let mut states = Vec::new();
        let mut group: Vec<&Record> = Vec::new();
        let mut group_facts: Vec<&Fact> = Vec::new();
        let (mut r, mut f) = (0, 0);
        while r < record_order.len() || f < fact_order.len() {
            let next_r = record_order
                .get(r)
                .map(|&(_, i)| records[i as usize].subject);
            let next_f = fact_order.get(f).map(|&(_, i)| facts[i as usize].subject);
            let subject = match (next_r, next_f) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            group.clear();
            group_facts.clear();
            while let Some(&(_, i)) = record_order.get(r) {
                if records[i as usize].subject != subject {
                    break;
                }
                group.push(&records[i as usize]);
                r += 1;
            }
            while let Some(&(_, i)) = fact_order.get(f) {
                if facts[i as usize].subject != subject {
                    break;
                }
                group_facts.push(&facts[i as usize]);
                f += 1;
            }
            states.push(self.fold_refs(subject, group.clone(), group_facts.clone(), known_at));
        }
        self.pass_on_reach(&mut states, known_at);
        states
    }

    /// Adds to each subject the entries that reach it from related subjects;
    /// a related subject with no records of its own gets a state of its own.
    pub fn pass_on_reach(&self, states: &mut Vec<SubjectState>, known_at: Day) {
        if self.rulebook.lists.iter().all(|l| l.reach.is_empty()) {
            return;
        }
        let mut passed: Vec<(SubjectId, DerivedEntry)> = Vec::new();
        for state in states.iter() {
            if !state.relations.is_empty() {
                passed.extend(self.reach(state));
            }
        }
        if passed.is_empty() {
            return;
        }
        passed.sort_by(|a, b| {
            (a.0, &a.1.list, a.1.via, &a.1.record, a.1.span).cmp(&(
                b.0,
                &b.1.list,
                b.1.via,
                &b.1.record,
                b.1.span,
            ))
        });
        let mut extra: BTreeMap<SubjectId, SubjectState> = BTreeMap::new();
        for (target, entry) in passed {
            match states.binary_search_by_key(&target, |s| s.subject) {
                Ok(pos) => states[pos].derived.push(entry),
                Err(_) => extra
                    .entry(target)
                    .or_insert_with(|| self.fold(target, &[], &[], known_at))
                    .derived
                    .push(entry),
            }
        }
        if !extra.is_empty() {
            states.extend(extra.into_values());
            states.sort_by_key(|s| s.subject);
        }
    }
}
