//! The fold: from a subject's records and later facts to its [`SubjectState`].
//!
//! The fold is a pure function of (records, facts, rulebook, `known_at`).
//! Records and facts may arrive in any order: both are sorted by content
//! before anything is computed, so a late record gives the same state as if
//! it had arrived in order.
//!
//! Speed: a batch ([`Engine::fold_all`]) is grouped by subject without
//! sorting its records (see `group`; a batch that already lies subject by
//! subject in one pass), and each subject is folded with
//! buffers reused from the subject before (escalation windows, cap use,
//! effects), so that a subject allocates only what its state keeps. In a
//! batch of millions each record, its fields and its document are cache
//! misses: the records of subjects a few ahead are asked for with prefetch
//! hints (`crate::prefetch`), so that those misses overlap the fold.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::expr::{field_value, Context};
use crate::group::{Groups, Run};
use crate::id::{SubjectId, SubjectKind};
use crate::name::Name;
use crate::prefetch::{prefetch, prefetch_value};
use crate::record::{Fact, FactKind, Fields, Outcome, Record, RecordKey, Value};
use crate::rulebook::{CalendarPeriod, Points, RecordType, Rulebook, ScoreRule};
use crate::state::{
    Adjustment, Amendments, DerivedEntry, Effect, EndReason, RecordState, Relation, Source, Span,
    SubjectState,
};
use crate::time::Day;

/// A rulebook with the indices the fold needs, built once.
#[derive(Debug)]
pub struct Engine {
    pub rulebook: Arc<Rulebook>,
    /// For each record type: the rules that match it, with their caps.
    rules_by_type: Vec<Vec<RuleRef>>,
    /// For each record type: (list, entry) pairs that match it.
    entries_by_type: Vec<Vec<(u32, u32)>>,
    /// Ids of the lists, side by side for the scans that look one up.
    pub(crate) list_ids: Vec<Name>,
    /// Shared strings that every decision carries: the rulebook's label and
    /// the legal bases of measures and lists (no allocation per decision).
    pub(crate) label: Arc<str>,
    pub(crate) measure_bases: Vec<Arc<str>>,
    pub(crate) list_bases: Vec<Arc<str>>,
    /// The lists that other lists exclude (`excluded_by`), each after every
    /// list that can exclude it, so that one pass settles them all.
    pub(crate) exclusion_order: Vec<u32>,
    /// (record type id, field) of the record types that name a profession,
    /// for [`Engine::profession_on`] (usually one, often none).
    pub(crate) profession_fields: Vec<(Name, Arc<str>)>,
}

impl Engine {
    pub fn new(rulebook: Arc<Rulebook>) -> Engine {
        let types = rulebook.catalog.len();
        let mut rules_by_type: Vec<Vec<RuleRef>> = vec![Vec::new(); types];
        for (m, model) in rulebook.models.iter().enumerate() {
            for (r, rule) in model.rules.iter().enumerate() {
                let Some(record_type) = rulebook.catalog.get(rule.record_type as usize) else {
                    continue;
                };
                let caps = (0..model.caps.len() as u32)
                    .filter(|&c| model.caps[c as usize].category == record_type.category)
                    .collect();
                rules_by_type[rule.record_type as usize].push(RuleRef {
                    model: m as u32,
                    rule: r as u32,
                    caps,
                });
            }
        }
        let mut entries_by_type = vec![Vec::new(); types];
        for (l, list) in rulebook.lists.iter().enumerate() {
            for (e, entry) in list.record_entries.iter().enumerate() {
                entries_by_type[entry.record_type as usize].push((l as u32, e as u32));
            }
        }
        let list_ids = rulebook.lists.iter().map(|list| list.id).collect();
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
        let exclusion_order = exclusion_order(&rulebook);
        let profession_fields = rulebook
            .catalog
            .iter()
            .filter_map(|t| Some((t.id, t.profession_field.clone()?)))
            .collect();
        Engine {
            rulebook,
            rules_by_type,
            entries_by_type,
            list_ids,
            label,
            measure_bases,
            list_bases,
            exclusion_order,
            profession_fields,
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
        thread_local! {
            // The buffers of the last fold on this thread: a store folds one
            // subject after another, and growing them afresh each time cost
            // a sixth of a subject's fold in allocations.
            static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                self.fold_group(subject, &mut records, &mut facts, known_at, &mut scratch)
            }
            // A fold inside a fold on this thread (none today): buffers of its own.
            Err(_) => self.fold_group(
                subject,
                &mut records,
                &mut facts,
                known_at,
                &mut Scratch::default(),
            ),
        })
    }

    /// The fold of one subject, with buffers the caller may reuse across
    /// subjects. `records` and `facts` are filtered and sorted in place.
    fn fold_group(
        &self,
        subject: SubjectId,
        records: &mut Vec<&Record>,
        facts: &mut Vec<&Fact>,
        known_at: Day,
        scratch: &mut Scratch,
    ) -> SubjectState {
        facts.retain(|f| f.subject == subject && f.at <= known_at);
        facts.sort_by(|a, b| fact_order(a, b));
        records.retain(|r| r.subject == subject && r.decided_at <= known_at);
        sort_records(records);
        records.dedup_by(|a, b| same_key(&a.key, &b.key));

        let mut state = SubjectState {
            records: Vec::with_capacity(records.len()),
            rulebook: Some(self.label.clone()),
            ..SubjectState::empty(subject, known_at)
        };
        // Most subjects have no fact about a record: `later` stays empty and
        // every record reads as untouched.
        let mut later = apply_facts(facts, records, &mut state);
        // Corrections may change dates: restore the content order.
        if later.iter().any(|l| l.dates.is_some()) {
            let mut paired: Vec<(&Record, Later)> = records.drain(..).zip(later).collect();
            paired.sort_by(|(a, la), (b, lb)| {
                let ka = la.dates.unwrap_or((a.occurred_at, a.decided_at));
                let kb = lb.dates.unwrap_or((b.occurred_at, b.decided_at));
                ka.cmp(&kb).then_with(|| a.key.cmp(&b.key))
            });
            let (sorted, sorted_later): (Vec<&Record>, Vec<Later>) = paired.into_iter().unzip();
            *records = sorted;
            later = sorted_later;
        }
        let folding = Folding {
            records,
            later: &later,
        };
        self.fold_records(&folding, &mut state, scratch);
        state
    }

    fn fold_records(
        &self,
        folding: &Folding<'_, '_>,
        state: &mut SubjectState,
        scratch: &mut Scratch,
    ) {
        let rulebook = &*self.rulebook;
        let kind = state.subject.kind();
        let Scratch {
            kept,
            windows,
            caps,
            effects,
        } = scratch;
        kept.clear();
        windows.clear();
        caps.clear();
        effects.clear();
        // First pass: the record states, the profession and the relations,
        // so that every rule sees the subject's attributes.
        // Every (relation, subject) a record in the file names, current or
        // former: `Engine::reach` dates each from the records.
        let mut relations: BTreeSet<(Arc<str>, SubjectId)> = BTreeSet::new();
        for (pos, record) in folding.records.iter().enumerate() {
            let later = folding.later(pos);
            if later.retracted || later.dates.is_some_and(|(_, d)| d > state.known_at) {
                continue;
            }
            let record_type = &rulebook.catalog[record.type_index as usize];
            let fields = later.fields.as_ref().unwrap_or(&record.fields);
            let (occurred_at, decided_at) = later
                .dates
                .unwrap_or((record.occurred_at, record.decided_at));
            if let Some(name) = &record_type.profession_field {
                if let Some(Value::Text(p)) = field_value(fields, name) {
                    state.profession = Some(p.clone());
                }
            }
            for (name, related) in relations_named(record_type, fields) {
                relations.insert((name.clone(), related));
            }
            let civil = decided_at.to_civil();
            // A repair ends publicity, but not before the minimum period.
            let public_until = record_type.publicity.map(|p| {
                let end = p.after_civil(decided_at, civil);
                later.amended.repaired_at.map_or(end, |repaired| {
                    let earliest = record_type.publicity_min.after_civil(decided_at, civil);
                    repaired.max(earliest).min(end)
                })
            });
            state.records.push(RecordState {
                key: record.key.clone(),
                type_id: record.type_id,
                occurred_at,
                decided_at,
                fields: fields.clone(),
                document: record.document.clone(),
                retained_until: record_type.retention.after_civil(decided_at, civil),
                public_until,
                suspend_when_disputed: record_type.dispute_policy
                    == crate::rulebook::DisputePolicy::Suspended,
                consent_required: record_type.consent_required,
                // Most records have none: no allocation and no call.
                amended: if later.amended.is_empty() {
                    None
                } else {
                    Some(Box::new(later.amended.clone()))
                },
            });
            kept.push(Kept {
                pos: pos as u32,
                civil,
            });
        }
        if !relations.is_empty() {
            state.relations = relations
                .into_iter()
                .map(|(name, subject)| Relation { name, subject })
                .collect();
        }

        for (index, one) in kept.iter().enumerate() {
            let record = folding.records[one.pos as usize];
            let fields = folding.fields(one.pos as usize);
            let record_state = &state.records[index];
            let civil = one.civil;
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
            for rule_ref in &self.rules_by_type[record.type_index as usize] {
                let (m, r) = (rule_ref.model, rule_ref.rule);
                let model = &rulebook.models[m as usize];
                let rule = &model.rules[r as usize];
                if !model.subject_kinds.contains(kind) || !rule_applies(rule, kind, &ctx) {
                    continue;
                }
                let Some(points_base) = rule_points(rule, &ctx) else {
                    continue;
                };
                let occurred_at = record_state.occurred_at;
                let mut points = points_base;
                let mut escalated = None;
                if let Some(esc) = &rule.escalation {
                    let since = esc.window.before(occurred_at);
                    let earlier = windows
                        .iter()
                        .filter(|w| w.model == m && w.rule == r && w.occurred_at > since)
                        .count();
                    let count = 1 + earlier as u32;
                    if count >= esc.from_count {
                        points = points.saturating_mul(esc.multiplier);
                        escalated = Some(count);
                    }
                    windows.push(Window {
                        model: m,
                        rule: r,
                        occurred_at,
                    });
                }
                let start = record_state.decided_at;
                let mut capped_by = None;
                for &c in &rule_ref.caps {
                    let cap = &model.caps[c as usize];
                    let bucket = bucket_civil(cap.per, civil);
                    let slot = match caps
                        .iter()
                        .position(|u| u.model == m && u.cap == c && u.bucket == bucket)
                    {
                        Some(slot) => slot,
                        None => {
                            caps.push(CapUse {
                                model: m,
                                cap: c,
                                bucket,
                                gained: 0,
                                lost: 0,
                            });
                            caps.len() - 1
                        }
                    };
                    let used = &mut caps[slot];
                    let before = points;
                    if points > 0 {
                        if let Some(max) = cap.gain_max {
                            points = points.min((max - used.gained).max(0));
                        }
                        used.gained += points;
                    } else if points < 0 {
                        if let Some(max) = cap.loss_max {
                            points = points.max(-(max - used.lost).max(0));
                        }
                        used.lost += -points;
                    }
                    if points != before {
                        capped_by = Some(cap.id.clone());
                    }
                }
                let end = rule
                    .validity
                    .after_civil(start, civil)
                    .min(record_state.retained_until);
                effects.push(Effect {
                    record: index as u32,
                    source: Source::Rule {
                        model: model.id,
                        rule: rule.id,
                    },
                    span: Span { start, end },
                    points,
                    adjusted: Adjustment::of(points, points_base, escalated, capped_by),
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
                effects.push(self.list_entry(l, index, kept, folding, &state.records));
            }
        }
        // One allocation of the exact size: the state may live long (a
        // store keeps it, a batch holds millions).
        state.effects = Vec::with_capacity(effects.len());
        state.effects.append(effects);
    }

    /// A list entry made by record `index`, with its end: the earliest of
    /// expiry, an exit record and repair.
    fn list_entry(
        &self,
        list_index: u32,
        index: usize,
        kept: &[Kept],
        folding: &Folding<'_, '_>,
        record_states: &[RecordState],
    ) -> Effect {
        let list = &self.rulebook.lists[list_index as usize];
        let record_state = &record_states[index];
        let fields = folding.fields(kept[index].pos as usize);
        let start = record_state.decided_at;
        let mut end = list
            .duration_max
            .map_or(Day::MAX, |p| p.after_civil(start, kept[index].civil));
        let mut end_reason = Some(EndReason::Expiry);
        for exit in &list.exits {
            for (other, one) in kept.iter().enumerate() {
                let record = folding.records[one.pos as usize];
                let other_state = &record_states[other];
                if record.type_index != exit.record_type || other_state.decided_at < start {
                    continue;
                }
                if let Some(field) = &exit.match_field {
                    let other_fields = folding.fields(one.pos as usize);
                    match (field_value(fields, field), field_value(other_fields, field)) {
                        (Some(a), Some(b)) if a == b => {}
                        _ => continue,
                    }
                }
                let exit_day = self
                    .rulebook
                    .calendar
                    .add_working_days(other_state.decided_at, exit.working_days);
                if exit_day < end {
                    end = exit_day;
                    end_reason = Some(EndReason::ExitRecord);
                }
            }
        }
        if list.exit_on_repair {
            if let Some(repaired_at) = record_state.repaired_at() {
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
                list: self.list_ids[list_index as usize],
            },
            span: Span { start, end },
            points: 0,
            adjusted: None,
            end_reason,
        }
    }
    /// The entries that `state` (an organisation) passes on to related
    /// subjects through lists that reach them, as (related subject, entry).
    /// An entry reaches a subject only while the relation holds
    /// ([`Engine::relation_spans`]): a legal representative named after
    /// the listing is reached from the day the record naming it was
    /// decided, a former one until the day the next one was.
    pub fn reach(&self, state: &SubjectState) -> Vec<(SubjectId, DerivedEntry)> {
        let mut out = Vec::new();
        if state.relations.is_empty() {
            return out;
        }
        // Dated only once an entry is found to pass on: most organisations
        // with relations are on no list that reaches.
        let mut relations = None;
        for effect in &state.effects {
            let Source::ListEntry { list } = &effect.source else {
                continue;
            };
            let Some(def) = self.rulebook.lists.iter().find(|l| &l.id == list) else {
                continue;
            };
            if def.reach.is_empty() {
                continue;
            }
            let relations = relations.get_or_insert_with(|| self.relation_spans(state));
            for (name, subject, held) in relations.iter() {
                if !def.reach.contains(name) || *subject == state.subject {
                    continue;
                }
                let span = Span {
                    start: effect.span.start.max(held.start),
                    end: effect.span.end.min(held.end),
                };
                if span.start >= span.end {
                    continue;
                }
                let record = &state.records[effect.record as usize];
                let suspended = if record.suspend_when_disputed {
                    record.disputes().to_vec()
                } else {
                    Vec::new()
                };
                out.push((
                    *subject,
                    DerivedEntry {
                        list: *list,
                        via: state.subject,
                        relation: name.clone(),
                        record: record.key.clone(),
                        span,
                        suspended,
                    },
                ));
            }
        }
        out
    }

    /// When each relation of `state` held, from its records in the order
    /// they were decided: a record of a type with relation fields states
    /// the relations in full (a registration), so one that names another
    /// subject in a relation field, or leaves the field out, ends the
    /// relation it held on the day it was decided, and a subject it names
    /// is related from that day. Records decided the same day are taken in
    /// the file's order.
    pub fn relation_spans(&self, state: &SubjectState) -> Vec<(Arc<str>, SubjectId, Span)> {
        let mut naming: Vec<(&RecordState, &RecordType)> = state
            .records
            .iter()
            .filter_map(|record| {
                let index = self.rulebook.record_type(&record.type_id)?;
                let record_type = self.rulebook.catalog.get(index as usize)?;
                (!record_type.relation_fields.is_empty()).then_some((record, record_type))
            })
            .collect();
        naming.sort_by_key(|(record, _)| record.decided_at);
        let mut open: BTreeMap<Arc<str>, (SubjectId, Day)> = BTreeMap::new();
        let mut out = Vec::new();
        for (record, record_type) in naming {
            let day = record.decided_at;
            for name in &record_type.relation_fields {
                let named = related_in(&record.fields, name);
                match (open.get(name), named) {
                    (Some(&(held, _)), Some(named)) if held == named => continue,
                    (Some(&(held, from)), _) => {
                        if from < day {
                            out.push((
                                name.clone(),
                                held,
                                Span {
                                    start: from,
                                    end: day,
                                },
                            ));
                        }
                        open.remove(name);
                    }
                    (None, _) => {}
                }
                if let Some(named) = named {
                    open.insert(name.clone(), (named, day));
                }
            }
        }
        for (name, (subject, from)) in open {
            out.push((
                name,
                subject,
                Span {
                    start: from,
                    end: Day::MAX,
                },
            ));
        }
        out
    }
}

/// The first index from `from` on whose state's subject is not below
/// `target`, in `states` sorted by subject, where every state before `from`
/// is below it. It gallops from `from`, so that targets taken in order cost
/// a few probes near the last one rather than a search of the whole.
fn seek(states: &[SubjectState], from: usize, target: SubjectId) -> usize {
    let (mut low, mut high, mut step) = (from, from, 1usize);
    while states.get(high).is_some_and(|s| s.subject < target) {
        low = high + 1;
        high = high.saturating_add(step);
        step = step.saturating_mul(2);
    }
    let high = high.min(states.len());
    low + states[low..high].partition_point(|s| s.subject < target)
}

/// How many subjects ahead of the fold their records are asked for, and
/// how many ahead the allocations those records point to (their fields
/// and document, found by reading the record, whose line should have
/// arrived by then). Distances from 2 to 32 subjects measured alike
/// (BENCHMARKS.md); these leave the lines time to arrive without asking
/// for more than the processor can have in flight.
const RECORDS_AHEAD: usize = 8;
const POINTEES_AHEAD: usize = 3;

/// Asks for the records at `indices` (each record's own lines; in a large
/// batch each is a cache miss).
fn prefetch_records(records: &[Record], indices: &[u32]) {
    for &i in indices {
        prefetch_value(records.as_ptr().wrapping_add(i as usize));
    }
}

/// Asks for the allocations the records at `indices` point to that the
/// fold reads first: the fields and the document (every `Arc` clone is an
/// atomic operation that waits for its cache line).
fn prefetch_pointees(records: &[Record], indices: &[u32]) {
    for record in indices.iter().filter_map(|&i| records.get(i as usize)) {
        prefetch(record.fields.as_ptr());
        if let Some(document) = &record.document {
            prefetch(Arc::as_ptr(document));
        }
    }
}

/// A scoring rule that matches a record type, with the caps of its model
/// that count records of that type (in the model's order).
#[derive(Clone, Debug)]
struct RuleRef {
    model: u32,
    rule: u32,
    caps: Vec<u32>,
}

/// The subjects a record's relation fields name, with the field's name
/// (a legal representative, an actual controller).
fn relations_named<'f>(
    record_type: &'f RecordType,
    fields: &'f Fields,
) -> impl Iterator<Item = (&'f Arc<str>, SubjectId)> + 'f {
    record_type
        .relation_fields
        .iter()
        .filter_map(move |name| Some((name, related_in(fields, name)?)))
}

/// The subject the relation field `name` of `fields` names, if any.
fn related_in(fields: &Fields, name: &str) -> Option<SubjectId> {
    match field_value(fields, name) {
        Some(Value::Text(text)) => SubjectId::parse(text).ok().map(|parsed| parsed.id),
        _ => None,
    }
}

/// Items of subjects that share their hash with the subject of the run
/// they are in, set aside to be folded at the end.
type Others<'a> = BTreeMap<SubjectId, (Vec<&'a Record>, Vec<&'a Fact>)>;

/// The states of a slice of runs, in order, with the items set aside.
struct Folded<'a> {
    states: Vec<SubjectState>,
    others: Others<'a>,
}

/// Buffers that the fold reuses from one subject to the next, so that
/// [`Engine::fold_all`] allocates little beyond the states it returns.
#[derive(Debug, Default)]
struct Scratch {
    kept: Vec<Kept>,
    windows: Vec<Window>,
    caps: Vec<CapUse>,
    effects: Vec<Effect>,
}

/// A record that counts: its position in content order and its decision
/// day as a civil date (the periods added to it need one).
#[derive(Clone, Copy, Debug)]
struct Kept {
    pos: u32,
    civil: (i32, u32, u32),
}

/// An earlier occurrence counted by an escalating rule.
#[derive(Clone, Copy, Debug)]
struct Window {
    model: u32,
    rule: u32,
    occurred_at: Day,
}

/// Points a cap has let through in one calendar bucket.
#[derive(Clone, Copy, Debug)]
struct CapUse {
    model: u32,
    cap: u32,
    bucket: i32,
    gained: i64,
    lost: i64,
}

/// One subject's records in content order and what the later facts did to
/// each (empty when no fact names a record).
struct Folding<'a, 'r> {
    records: &'a [&'r Record],
    later: &'a [Later],
}

impl Folding<'_, '_> {
    fn later(&self, pos: usize) -> &Later {
        self.later.get(pos).unwrap_or(&UNTOUCHED)
    }

    /// The record's fields after corrections.
    fn fields(&self, pos: usize) -> &Fields {
        match self.later.get(pos).and_then(|l| l.fields.as_ref()) {
            Some(fields) => fields,
            None => &self.records[pos].fields,
        }
    }
}

/// What the later facts did to one record.
#[derive(Clone, Debug, Default)]
struct Later {
    retracted: bool,
    fields: Option<Fields>,
    dates: Option<(Day, Day)>,
    amended: Amendments,
}

/// A record no later fact names.
static UNTOUCHED: Later = Later {
    retracted: false,
    fields: None,
    dates: None,
    amended: Amendments {
        disputes: Vec::new(),
        statement: None,
        corrected_at: None,
        repaired_at: None,
    },
};

/// What `facts` (sorted) did to each of `records` (in content order), or
/// nothing at all when no fact names a record; consent and orphan facts go
/// straight into `state`.
fn apply_facts(facts: &[&Fact], records: &[&Record], state: &mut SubjectState) -> Vec<Later> {
    let mut later = Vec::new();
    if facts.iter().any(|f| f.record().is_some()) {
        later = vec![Later::default(); records.len()];
    }
    let mut by_key = None;
    for fact in facts {
        let Some(key) = fact.record() else {
            match fact.kind {
                FactKind::ConsentGranted => state.consent.push((fact.at, true)),
                FactKind::ConsentWithdrawn => state.consent.push((fact.at, false)),
                _ => {}
            }
            continue;
        };
        let Some(index) = find_record(records, key, &mut by_key) else {
            state.orphan_facts.push(key.clone());
            continue;
        };
        let entry = &mut later[index];
        match &fact.kind {
            FactKind::Retracted { .. } => entry.retracted = true,
            FactKind::Corrected {
                fields,
                occurred_at,
                decided_at,
                ..
            } => {
                entry.fields = Some(fields.clone());
                let record = records[index];
                if occurred_at.is_some() || decided_at.is_some() {
                    entry.dates = Some((
                        occurred_at.unwrap_or(record.occurred_at),
                        decided_at.unwrap_or(record.decided_at),
                    ));
                }
                entry.amended.corrected_at = Some(fact.at);
            }
            FactKind::Disputed { statement, .. } => {
                if entry
                    .amended
                    .disputes
                    .last()
                    .is_none_or(|span| span.end != Day::MAX)
                {
                    entry.amended.disputes.push(Span {
                        start: fact.at,
                        end: Day::MAX,
                    });
                }
                if statement.is_some() {
                    entry.amended.statement = statement.clone();
                }
            }
            FactKind::Resolved {
                outcome, fields, ..
            } => {
                if let Some(span) = entry.amended.disputes.last_mut() {
                    if span.end == Day::MAX {
                        span.end = fact.at;
                    }
                }
                match outcome {
                    Outcome::Upheld => {}
                    Outcome::Corrected => {
                        if let Some(fields) = fields {
                            entry.fields = Some(fields.clone());
                            entry.amended.corrected_at = Some(fact.at);
                        }
                    }
                    Outcome::Retracted => entry.retracted = true,
                }
            }
            FactKind::Repaired { .. } => {
                entry.amended.repaired_at = Some(
                    entry
                        .amended
                        .repaired_at
                        .map_or(fact.at, |d| d.min(fact.at)),
                );
            }
            FactKind::ConsentGranted | FactKind::ConsentWithdrawn => {}
        }
    }
    state.orphan_facts.sort();
    state.orphan_facts.dedup();
    later
}

/// Where the record named `key` is in `records` (sorted by content, not
/// by key). A subject has few records and fewer facts, so a scan beats
/// sorting the keys; only when a key occurs twice (a provider resent a
/// record with other dates) is the sorted key index built, so that which
/// of them the fact names stays as it always was.
fn find_record<'r>(
    records: &[&'r Record],
    key: &RecordKey,
    by_key: &mut Option<Vec<(&'r RecordKey, usize)>>,
) -> Option<usize> {
    if by_key.is_none() {
        let mut found = None;
        let mut twice = false;
        for (i, record) in records.iter().enumerate() {
            if same_key(&record.key, key) {
                twice = found.is_some();
                if twice {
                    break;
                }
                found = Some(i);
            }
        }
        if !twice {
            return found;
        }
        let mut index: Vec<(&RecordKey, usize)> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (&r.key, i))
            .collect();
        index.sort_unstable();
        *by_key = Some(index);
    }
    let index = by_key.as_ref()?;
    let pos = index.binary_search_by(|(k, _)| (*k).cmp(key)).ok()?;
    index.get(pos).map(|&(_, i)| i)
}

/// `a == b`, faster: ids differ far more often than providers, and ids of
/// one provider mostly in their last character, so that is compared first.
fn same_key(a: &RecordKey, b: &RecordKey) -> bool {
    let (x, y) = (a.id.as_bytes(), b.id.as_bytes());
    x.len() == y.len() && x.last() == y.last() && x == y && a.provider == b.provider
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
    bucket_civil(per, day.to_civil())
}

/// [`bucket`] of a day given as a civil date.
pub(crate) fn bucket_civil(per: CalendarPeriod, (year, month, _): (i32, u32, u32)) -> i32 {
    let month = month as i32;
    match per {
        CalendarPeriod::Year => year,
        CalendarPeriod::Quarter => year * 4 + (month - 1) / 3,
        CalendarPeriod::Month => year * 12 + month - 1,
    }
}

/// Content order of records: by conduct, then decision, then key.
/// Sorts a subject's records into content order. They mostly come close
/// to it (a store hands them over as they arrived, which is by date but
/// for stragglers): a few places out of order are put right by insertion,
/// in time proportional to the records and the places; the general sort
/// does the rest.
fn sort_records(records: &mut [&Record]) {
    const FEW: usize = 8;
    let descents = records
        .windows(2)
        .filter(|pair| record_order(pair[0], pair[1]) == Ordering::Greater)
        .take(FEW + 1)
        .count();
    if descents == 0 {
        return;
    }
    if descents > FEW {
        records.sort_by(|a, b| record_order(a, b));
        return;
    }
    for i in 1..records.len() {
        let mut j = i;
        while j > 0 && record_order(records[j - 1], records[j]) == Ordering::Greater {
            records.swap(j - 1, j);
            j -= 1;
        }
    }
}

fn record_order(a: &Record, b: &Record) -> Ordering {
    (a.occurred_at, a.decided_at, &a.key)
        .cmp(&(b.occurred_at, b.decided_at, &b.key))
        .then_with(|| same_key_order(a, b))
}

/// Two records under one key on the same days (a store refuses the second
/// as a conflict; a file may hold both): ordered by the rest of their
/// content, so that the one kept does not depend on which came first.
#[cold]
fn same_key_order(a: &Record, b: &Record) -> Ordering {
    a.type_id
        .cmp(&b.type_id)
        .then_with(|| format!("{:?}", a.fields).cmp(&format!("{:?}", b.fields)))
        .then_with(|| a.document.cmp(&b.document))
}

/// Content order of facts: by day, then kind, then the record, then content.
fn fact_order(a: &Fact, b: &Fact) -> Ordering {
    fn rank(kind: &FactKind) -> u8 {
        match kind {
            // Within a day a withdrawal comes last, so it holds: a
            // subject who granted and withdrew on the same day (in either
            // order) is not scored that day.
            FactKind::ConsentGranted => 0,
            FactKind::ConsentWithdrawn => 1,
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
        let mut states = self.fold_all_unreached(records, facts, known_at);
        self.pass_on_reach(&mut states, known_at);
        states
    }

    /// [`Engine::fold_all`] without passing entries on to related subjects:
    /// the fold of one part of a history, whose entries for related
    /// subjects [`Engine::reached`] gathers and [`Engine::take_reached`]
    /// hands over once every part is folded.
    pub fn fold_all_unreached(
        &self,
        records: &[Record],
        facts: &[Fact],
        known_at: Day,
    ) -> Vec<SubjectState> {
        let groups = Groups::new(records, facts);
        self.fold_groups(&groups, records, facts, known_at, false)
    }

    /// [`Engine::fold_all`] on the threads of the current rayon pool (all
    /// cores unless the caller installs a smaller pool). The result is the
    /// same as `fold_all`'s, byte for byte: the runs of subjects are cut
    /// into consecutive slices, each folded on its own, and put back in
    /// order. Grouping the batch and passing entries on to related
    /// subjects stay on the calling thread.
    pub fn fold_all_parallel(
        &self,
        records: &[Record],
        facts: &[Fact],
        known_at: Day,
    ) -> Vec<SubjectState> {
        let groups = Groups::new(records, facts);
        let mut states = self.fold_groups(&groups, records, facts, known_at, true);
        self.pass_on_reach(&mut states, known_at);
        states
    }

    /// [`Engine::fold_all_unreached`] over the batch grouped by subject, on
    /// the calling thread or, when `parallel`, on the current rayon pool.
    /// Entries are not passed on to related subjects
    /// ([`Engine::pass_on_reach`] does).
    pub(crate) fn fold_groups(
        &self,
        groups: &Groups,
        records: &[Record],
        facts: &[Fact],
        known_at: Day,
        parallel: bool,
    ) -> Vec<SubjectState> {
        use rayon::prelude::*;
        let runs = groups.runs();
        let parts: Vec<Folded<'_>> = if parallel {
            // Several slices a thread, so that a thread that finishes early
            // takes another.
            let slices = rayon::current_num_threads().saturating_mul(4).max(1);
            runs.par_chunks(runs.len().div_ceil(slices).max(1))
                .map(|slice| self.fold_runs(groups, slice, records, facts, known_at))
                .collect()
        } else {
            vec![self.fold_runs(groups, runs, records, facts, known_at)]
        };
        let mut states: Vec<SubjectState> = Vec::new();
        let mut others = BTreeMap::new();
        for part in parts {
            if states.is_empty() {
                // The first part's vector, with room for the rest: on one
                // thread the only one, and no state is moved again.
                states = part.states;
                let room = Engine::states_capacity(runs.len());
                states.reserve_exact(room.saturating_sub(states.len()));
            } else {
                states.extend(part.states);
            }
            // A subject's items all share one run, so no two slices set
            // aside items of the same subject.
            others.extend(part.others);
        }
        if !others.is_empty() {
            let mut scratch = Scratch::default();
            for (subject, (mut group, mut group_facts)) in others {
                states.push(self.fold_group(
                    subject,
                    &mut group,
                    &mut group_facts,
                    known_at,
                    &mut scratch,
                ));
            }
            states.sort_by_key(|state| state.subject);
        }
        states
    }

    /// Folds the subjects of `runs`, in order, and sets aside the items of
    /// subjects that share their hash with the subject of their run.
    fn fold_runs<'a>(
        &self,
        groups: &Groups,
        runs: &[Run],
        records: &'a [Record],
        facts: &'a [Fact],
        known_at: Day,
    ) -> Folded<'a> {
        let mut states = Vec::with_capacity(Engine::states_capacity(runs.len()));
        let mut scratch = Scratch::default();
        let mut group: Vec<&Record> = Vec::new();
        let mut group_facts: Vec<&Fact> = Vec::new();
        let mut others: Others<'a> = BTreeMap::new();
        for (r, run) in runs.iter().enumerate() {
            if let Some(far) = runs.get(r + RECORDS_AHEAD) {
                prefetch_records(records, groups.records(far));
            }
            if let Some(near) = runs.get(r + POINTEES_AHEAD) {
                prefetch_pointees(records, groups.records(near));
            }
            group.clear();
            group_facts.clear();
            for record in groups
                .records(run)
                .iter()
                .filter_map(|&i| records.get(i as usize))
            {
                if record.subject == run.subject {
                    group.push(record);
                } else {
                    others.entry(record.subject).or_default().0.push(record);
                }
            }
            for fact in groups
                .facts(run)
                .iter()
                .filter_map(|&i| facts.get(i as usize))
            {
                if fact.subject == run.subject {
                    group_facts.push(fact);
                } else {
                    others.entry(fact.subject).or_default().1.push(fact);
                }
            }
            states.push(self.fold_group(
                run.subject,
                &mut group,
                &mut group_facts,
                known_at,
                &mut scratch,
            ));
        }
        Folded { states, others }
    }

    /// The state [`Engine::fold_all`] gives `subject`, from a batch in which
    /// most subjects are others: only its own records and facts are folded,
    /// and those of the subjects whose records (or corrections) name it in
    /// a relation field, since only their list entries can reach it.
    pub fn fold_subject_of(
        &self,
        subject: SubjectId,
        records: &[Record],
        facts: &[Fact],
        known_at: Day,
    ) -> SubjectState {
        let mut wanted = self.naming(subject, records, facts);
        wanted.insert(subject);
        let records: Vec<&Record> = records
            .iter()
            .filter(|r| wanted.contains(&r.subject))
            .collect();
        let facts: Vec<&Fact> = facts
            .iter()
            .filter(|f| wanted.contains(&f.subject))
            .collect();
        let mut states: Vec<SubjectState> = Vec::with_capacity(wanted.len());
        let mut scratch = Scratch::default();
        for &one in &wanted {
            let mut group: Vec<&Record> = records
                .iter()
                .copied()
                .filter(|r| r.subject == one)
                .collect();
            let mut group_facts: Vec<&Fact> =
                facts.iter().copied().filter(|f| f.subject == one).collect();
            states.push(self.fold_group(one, &mut group, &mut group_facts, known_at, &mut scratch));
        }
        self.pass_on_reach(&mut states, known_at);
        match states.binary_search_by_key(&subject, |s| s.subject) {
            Ok(pos) => states.swap_remove(pos),
            Err(_) => self.fold(subject, &[], &[], known_at),
        }
    }

    /// Whether `records` and `facts` say anything about `subject`: its own,
    /// or another's that names it in a relation field (a company's legal
    /// representative).
    pub fn is_named(&self, subject: SubjectId, records: &[Record], facts: &[Fact]) -> bool {
        records.iter().any(|r| r.subject == subject)
            || facts.iter().any(|f| f.subject == subject)
            || !self.naming(subject, records, facts).is_empty()
    }

    /// The subjects whose records (or corrections of them) name `subject`
    /// in a relation field.
    fn naming(
        &self,
        subject: SubjectId,
        records: &[Record],
        facts: &[Fact],
    ) -> BTreeSet<SubjectId> {
        let catalog = &self.rulebook.catalog;
        let names_it = |type_index: u32, fields: &Fields| {
            catalog.get(type_index as usize).is_some_and(|record_type| {
                relations_named(record_type, fields).any(|(_, related)| related == subject)
            })
        };
        let mut wanted: BTreeSet<SubjectId> = records
            .iter()
            .filter(|r| names_it(r.type_index, &r.fields))
            .map(|r| r.subject)
            .collect();
        // A correction may name it where the record did not.
        let type_of: BTreeMap<&RecordKey, u32> = if facts.is_empty() {
            BTreeMap::new()
        } else {
            records.iter().map(|r| (&r.key, r.type_index)).collect()
        };
        for fact in facts {
            let corrected = match &fact.kind {
                FactKind::Corrected { record, fields, .. } => Some((record, fields)),
                FactKind::Resolved {
                    record,
                    fields: Some(fields),
                    ..
                } => Some((record, fields)),
                _ => None,
            };
            if let Some((record, fields)) = corrected {
                if type_of
                    .get(record)
                    .is_some_and(|&type_index| names_it(type_index, fields))
                {
                    wanted.insert(fact.subject);
                }
            }
        }
        wanted
    }

    /// Room for the states of `subjects` subjects, with some to spare for
    /// the subjects that [`Engine::pass_on_reach`] adds (reached through a
    /// relation, without records of their own). Room not used is address
    /// space, not memory; but growing a full vector of a million states by
    /// one state copied all of them (a tenth of a grouped fold of ten
    /// million records).
    pub fn states_capacity(subjects: usize) -> usize {
        subjects.saturating_add(subjects / 16).saturating_add(16)
    }

    /// Adds to each subject the entries that reach it from related subjects;
    /// a related subject with no records of its own gets a state of its own.
    pub fn pass_on_reach(&self, states: &mut Vec<SubjectState>, known_at: Day) {
        let passed = self.reached(states);
        self.take_reached(states, passed, known_at);
    }

    /// Whether a subject of `kind` may pass list entries on to related
    /// subjects: some list reaches through relations, and some record type
    /// of that kind names them. (A reader of a history in parts may then
    /// skip the other subjects when it gathers entries, see
    /// [`crate::whatif::PagedComparison`].)
    pub fn may_pass_on(&self, kind: crate::id::SubjectKind) -> bool {
        let rulebook = &*self.rulebook;
        rulebook.lists.iter().any(|l| !l.reach.is_empty())
            && rulebook
                .catalog
                .iter()
                .any(|t| !t.relation_fields.is_empty() && t.subject_kinds.contains(kind))
    }

    /// The entries that `states` pass on to related subjects (see
    /// [`Engine::reach`]), as (related subject, entry). A caller that folds
    /// a history in parts ([`Engine::fold_all_unreached`]) gathers them from
    /// every part, then gives each part those that reach its subjects
    /// ([`Engine::take_reached`]): the result is that of
    /// [`Engine::fold_all`] on the whole.
    pub fn reached(&self, states: &[SubjectState]) -> Vec<(SubjectId, DerivedEntry)> {
        if self.rulebook.lists.iter().all(|l| l.reach.is_empty()) {
            return Vec::new();
        }
        states
            .iter()
            .filter(|state| !state.relations.is_empty())
            .flat_map(|state| self.reach(state))
            .collect()
    }

    /// Adds each of `passed` (from [`Engine::reached`], in any order) to
    /// the state of the subject it reaches, in `states` sorted by subject;
    /// a subject reached without a state there gets one of its own, in
    /// place.
    pub fn take_reached(
        &self,
        states: &mut Vec<SubjectState>,
        mut passed: Vec<(SubjectId, DerivedEntry)>,
        known_at: Day,
    ) {
        if passed.is_empty() {
            return;
        }
        // In order of target, list, passer, record and span: by target
        // first (a cheap key), then the few entries of each target by the
        // rest, which compares texts.
        passed.sort_by_key(|(target, _)| *target);
        for same in passed.chunk_by_mut(|a, b| a.0 == b.0) {
            if same.len() > 1 {
                same.sort_by(|(_, a), (_, b)| {
                    (&a.list, a.via, &a.record, a.span).cmp(&(&b.list, b.via, &b.record, b.span))
                });
            }
        }
        let mut extra: BTreeMap<SubjectId, SubjectState> = BTreeMap::new();
        let mut next = 0;
        for (target, entry) in passed {
            next = seek(states, next, target);
            match states.get_mut(next) {
                Some(state) if state.subject == target => state.derived.push(entry),
                _ => extra
                    .entry(target)
                    .or_insert_with(|| self.fold(target, &[], &[], known_at))
                    .derived
                    .push(entry),
            }
        }
        if extra.is_empty() {
            return;
        }
        // Both are in subject order: merge them in place from the back,
        // moving each state at most once. (Sorting the joined vector moved
        // them all several times; merging into a new vector held both.)
        let mut extra: Vec<SubjectState> = extra.into_values().collect();
        let folded = states.len();
        states.reserve_exact(extra.len());
        states.extend(
            extra
                .iter()
                .map(|e| SubjectState::empty(e.subject, known_at)),
        );
        let (mut next, mut free) = (folded, states.len());
        while let Some(last) = extra.pop() {
            while next > 0 && states[next - 1].subject > last.subject {
                free -= 1;
                next -= 1;
                states.swap(next, free);
            }
            free -= 1;
            states[free] = last;
        }
    }
}

/// The lists with an `excluded_by`, ordered so that each comes after the
/// excluded lists it names: whether a subject is on a list must be settled
/// before that list can exclude another. A valid rulebook has no cycle; a
/// hand-built one with a cycle gets its remaining lists in index order
/// rather than a loop.
fn exclusion_order(rulebook: &Rulebook) -> Vec<u32> {
    let lists = &rulebook.lists;
    let mut pending: Vec<u32> = (0..lists.len() as u32)
        .filter(|&l| !lists[l as usize].excluded_by.is_empty())
        .collect();
    let mut order = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let before = pending.len();
        let mut index = 0;
        while index < pending.len() {
            let list = &lists[pending[index] as usize];
            let waits = list
                .excluded_by
                .iter()
                .any(|by| pending.contains(by) && *by != pending[index]);
            if waits {
                index += 1;
            } else {
                order.push(pending.remove(index));
            }
        }
        if pending.len() == before {
            order.append(&mut pending);
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rulebook::{
        Cap, DisputePolicy, Escalation, GradeBand, KindSet, ListDef, ListKind, RecordEntry,
        RecordExit, RecordType, ScoringModel, Severity,
    };
    use crate::time::Period;

    /// One record type, scored with escalation and a cap, that also enters
    /// a list left by a later record with the same case.
    fn engine() -> Engine {
        let record_type = RecordType {
            id: "t".into(),
            title: String::new(),
            subject_kinds: KindSet::ALL,
            category: "c".into(),
            severity: Severity::General,
            legal_basis: "l".into(),
            fields: Vec::new(),
            retention: Period::years(5),
            publicity: Some(Period::years(1)),
            publicity_min: Period::default(),
            consent_required: false,
            profession_field: None,
            relation_fields: Vec::new(),
            dispute_policy: DisputePolicy::Suspended,
        };
        let rule = ScoreRule {
            id: "r".into(),
            record_type: 0,
            condition: None,
            points: Points::Constant(-20),
            points_min: None,
            points_max: None,
            validity: Period::years(2),
            escalation: Some(Escalation {
                window: Period::years(1),
                from_count: 2,
                multiplier: 2,
            }),
            subject_kinds: KindSet::ALL,
            professions: Vec::new(),
        };
        let model = ScoringModel {
            id: "m".into(),
            subject_kinds: KindSet::ALL,
            base_points: 1000,
            consent_required_for: KindSet::default(),
            grades: vec![GradeBand {
                grade: "A".into(),
                points_min: 0,
            }],
            rules: vec![rule],
            caps: vec![Cap {
                id: "cap".into(),
                category: "c".into(),
                per: CalendarPeriod::Year,
                gain_max: None,
                loss_max: Some(70),
            }],
            expectations: Vec::new(),
            requires_records: false,
            assigned_grades: Vec::new(),
            note: String::new(),
        };
        let list = ListDef {
            id: "black".into(),
            title: String::new(),
            kind: ListKind::Black,
            legal_basis: "l".into(),
            subject_kinds: KindSet::ALL,
            record_entries: vec![RecordEntry {
                record_type: 0,
                condition: None,
            }],
            grade_entries: Vec::new(),
            grade_model: None,
            duration_min: Period::days(30),
            duration_max: Some(Period::years(2)),
            exits: vec![RecordExit {
                record_type: 0,
                match_field: Some("case".into()),
                working_days: 3,
            }],
            exit_on_repair: true,
            public: true,
            schedule: None,
            reach: Vec::new(),
            reach_legal_basis: None,
            review_required: false,
            excluded_by: Vec::new(),
        };
        Engine::new(Arc::new(Rulebook {
            id: "test".into(),
            version: "1".into(),
            catalog: vec![record_type],
            models: vec![model],
            lists: vec![list],
            measures: Vec::new(),
            calendar: Default::default(),
            objection_deadline: crate::rulebook::Rulebook::OBJECTION_DEADLINE_DEFAULT,
            audit_retention: None,
            catalog_index: [("t".into(), 0)].into_iter().collect(),
        }))
    }

    fn person(n: u16) -> SubjectId {
        SubjectId::person(110_101, 1980, 3, 1 + (n % 28) as i8, n / 28).unwrap()
    }

    fn record(subject: SubjectId, id: &str, day: i32, case: &str) -> Record {
        Record {
            key: RecordKey {
                provider: "p".into(),
                id: id.into(),
            },
            subject,
            type_index: 0,
            type_id: "t".into(),
            occurred_at: Day(day),
            decided_at: Day(day + 3),
            fields: [("case".into(), Value::Text(case.into()))]
                .into_iter()
                .collect(),
            document: None,
        }
    }

    /// Forty subjects, a few records each over two years, some facts.
    fn batch() -> (Vec<Record>, Vec<Fact>) {
        let mut records = Vec::new();
        for i in 0..200u16 {
            let day = 19_000 + i32::from(i) * 37 % 700;
            let case = format!("case-{}", i % 3);
            records.push(record(person(i % 40), &format!("r{i}"), day, &case));
        }
        let facts = (0..40u16)
            .step_by(3)
            .map(|i| Fact {
                subject: person(i),
                at: Day(19_400),
                by: "p".into(),
                kind: FactKind::Retracted {
                    record: RecordKey {
                        provider: "p".into(),
                        id: format!("r{i}").into(),
                    },
                },
            })
            .collect();
        (records, facts)
    }

    #[test]
    fn subjects_sharing_a_hash_fold_as_if_they_did_not() {
        let engine = engine();
        let (records, facts) = batch();
        let known_at = Day(20_000);
        let expected = engine.fold_all(&records, &facts, known_at);
        assert_eq!(expected.len(), 40);
        for hash in [
            |_: &SubjectId| 0,
            |s: &SubjectId| crate::group::subject_hash(s) & 3,
        ] {
            let groups = Groups::with_hash(&records, &facts, hash);
            let fold = |parallel: bool| {
                let mut states = engine.fold_groups(&groups, &records, &facts, known_at, parallel);
                engine.pass_on_reach(&mut states, known_at);
                states
            };
            assert_eq!(fold(false), expected);
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("a thread pool");
                let parallel = pool.install(|| fold(true));
                assert_eq!(parallel, expected, "{threads} threads");
            }
        }
        // And each state is what folding its subject alone gives.
        for state in &expected {
            let alone = engine.fold(state.subject, &records, &facts, known_at);
            assert_eq!(&alone, state);
        }
        assert!(expected
            .iter()
            .any(|s| s.effects.iter().any(|e| e.escalation().is_some())));
        assert!(expected
            .iter()
            .any(|s| s.effects.iter().any(|e| e.capped_by().is_some())));
    }

    #[test]
    fn seeking_targets_in_order_finds_where_a_search_would() {
        let mut subjects: Vec<SubjectId> = (0..310u16).map(person).collect();
        subjects.sort();
        let states: Vec<SubjectState> = (subjects.iter().enumerate())
            .filter(|(n, _)| n % 3 != 1 && *n < 300)
            .map(|(_, &subject)| SubjectState::empty(subject, Day(0)))
            .collect();
        for stride in [1, 2, 5, 17, 120] {
            let mut next = 0;
            for &target in subjects.iter().step_by(stride) {
                next = seek(&states, next, target);
                assert_eq!(
                    next,
                    states.partition_point(|s| s.subject < target),
                    "stride {stride}, target {target}"
                );
            }
        }
        assert_eq!(seek(&[], 0, person(1)), 0);
    }

    /// Records in order, a few out of place, many out of place, reversed,
    /// with ties on the dates: each way gives the order a full sort gives.
    #[test]
    fn records_come_in_content_order_however_out_of_place_they_were() {
        let subject = person(3);
        let records: Vec<Record> = (0..40i32)
            .map(|i| record(subject, &format!("r{}", (i * 7) % 40), 100 + i / 3, "x"))
            .collect();
        let mut expected: Vec<&Record> = records.iter().collect();
        expected.sort_by(|a, b| record_order(a, b));
        let mut cases: Vec<Vec<&Record>> = vec![expected.clone()];
        let mut few = expected.clone();
        few.swap(3, 30);
        few.swap(10, 11);
        cases.push(few);
        // The first one arrived last: one place out of order, the longest
        // way back.
        let mut straggler = expected.clone();
        straggler.rotate_left(1);
        cases.push(straggler);
        let mut reversed = expected.clone();
        reversed.reverse();
        cases.push(reversed);
        let mut scattered = expected.clone();
        for i in 0..scattered.len() {
            scattered.swap(i, (i * 13 + 5) % 40);
        }
        cases.push(scattered);
        for mut case in cases {
            sort_records(&mut case);
            let keys = |v: &[&Record]| v.iter().map(|r| r.key.id.to_string()).collect::<Vec<_>>();
            assert_eq!(keys(&case), keys(&expected));
        }
    }

    /// The retention cutoff is exact whatever the calendar does: on every
    /// day of four years (leap days and month ends among them), a record
    /// decided on the cutoff is past retention for some type, and one
    /// decided the day after is past it for none.
    #[test]
    fn the_retention_cutoff_is_the_last_day_some_record_is_past_retention() {
        let engine = engine();
        let mut rulebook = (*engine.rulebook).clone();
        let mut types = Vec::new();
        for retention in [
            Period::years(5),
            Period {
                years: 1,
                months: 1,
                days: 0,
            },
            Period {
                years: 0,
                months: 1,
                days: 3,
            },
        ] {
            let mut record_type = rulebook.catalog[0].clone();
            record_type.retention = retention;
            types.push(record_type);
        }
        rulebook.catalog = types;
        let start = Day::from_civil(2023, 1, 1);
        for offset in 0..4 * 366 {
            let today = start.add_days(offset);
            let cutoff = rulebook.retention_cutoff(today).expect("a catalog");
            let past = |day: Day| {
                rulebook
                    .catalog
                    .iter()
                    .any(|t| t.retention.after(day) <= today)
            };
            assert!(past(cutoff), "{today}: {cutoff}");
            assert!(!past(cutoff.add_days(1)), "{today}: {cutoff}");
        }
        rulebook.catalog.clear();
        assert_eq!(rulebook.retention_cutoff(start), None);
    }

    /// A grant and a withdrawal on one day, in either order of arrival:
    /// the withdrawal holds that day, and an earlier grant until then.
    #[test]
    fn a_days_withdrawal_of_consent_holds_over_its_grants() {
        let engine = engine();
        let subject = person(2);
        let consent = |day: i32, granted: bool| Fact {
            subject,
            at: Day(day),
            by: "subject".into(),
            kind: if granted {
                FactKind::ConsentGranted
            } else {
                FactKind::ConsentWithdrawn
            },
        };
        let records = [record(subject, "a", 100, "x")];
        for facts in [
            [consent(50, true), consent(200, true), consent(200, false)],
            [consent(200, false), consent(200, true), consent(50, true)],
        ] {
            let state = engine.fold(subject, &records, &facts, Day(300));
            assert!(state.consent_on(Day(199)), "{:?}", state.consent);
            assert!(!state.consent_on(Day(200)), "{:?}", state.consent);
            assert!(!state.consent_on(Day(250)), "{:?}", state.consent);
        }
    }

    #[test]
    fn a_fact_names_the_same_copy_of_a_resent_record_as_the_sorted_key_index() {
        let subject = person(1);
        // "a" twice with other dates, apart in content order.
        let records = [
            record(subject, "a", 100, "x"),
            record(subject, "b", 150, "x"),
            record(subject, "a", 200, "x"),
            record(subject, "c", 250, "x"),
        ];
        let refs: Vec<&Record> = records.iter().collect();
        let mut sorted: Vec<(&RecordKey, usize)> =
            refs.iter().enumerate().map(|(i, r)| (&r.key, i)).collect();
        sorted.sort_unstable();
        for id in ["a", "b", "c", "d"] {
            let key = RecordKey {
                provider: "p".into(),
                id: id.into(),
            };
            let reference = sorted
                .binary_search_by(|(k, _)| (*k).cmp(&key))
                .ok()
                .map(|pos| sorted[pos].1);
            assert_eq!(find_record(&refs, &key, &mut None), reference, "{id}");
        }
    }
}
