//! The record stream: a walk over the days of the configured range that
//! emits, day by day, registrations (early on), yearly tax evaluations (in
//! April), due follow-ups (fulfilments, disputes, retractions, repairs,
//! consent withdrawals) and fresh conduct records.
//!
//! The number of record lines is exact: registrations and tax evaluations are
//! capped and counted up front, and the rest is spread evenly over the days as
//! a daily quota that follow-up records draw from first. Follow-ups wait in a
//! priority queue keyed by (day, sequence), so the order is deterministic.
//! Late records (conduct dated well before the day they are emitted on) keep
//! the order "roughly by time, not strictly".

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use socred_core::Day;

use crate::catalog::{
    provider_city, provider_index, provider_names, Family, Kinds, MixEntry, Tone, Type, ALL_TYPES,
    BANKS, CONDUCT_MIX,
};
use crate::json::{Dates, Line};
use crate::names;
use crate::population::{
    is_org_index, pick_weighted, Population, NO_PROFESSION, ORG_CLASSES, PROFESSIONS,
};
use crate::regions::{bureau_index, city_index_of, province_of, Province, CITIES, PROVINCES};
use crate::regions::{RAILWAY_BUREAUS, REGIONS};
use crate::{GenConfig, GenSummary};

/// Stream of the seed's generator that draws records (the population uses
/// another one).
const RECORD_STREAM: u64 = 2;

/// Registrations happen in the first days of the range.
const EARLY_DAYS: i64 = 30;
/// Registrations take at most this share of the records, tax evaluations at
/// most a tenth of what remains, so that conduct always dominates.
const REGISTRATION_SHARE_DIVISOR: u64 = 2;
const TAX_SHARE_DIVISOR: u64 = 10;

/// Rates, in ten-thousandths unless named otherwise.
const LATE_PER_10K: u32 = 10;
const RETRACT_PER_10K: u32 = 20;
const DISPUTE_PER_10K: u32 = 120;
const CONSENT_PER_MILLE: u32 = 700;
const CONSENT_WITHDRAW_PER_MILLE: u32 = 30;
const FULFIL_PER_MILLE: u32 = 600;
const FULFILLED_REPAIR_PER_MILLE: u32 = 250;
const PENALTY_REPAIR_PER_MILLE: u32 = 80;
const UPHELD_PER_MILLE: u32 = 800;
/// How strongly negative records go to troubled subjects, in thousandths.
const TROUBLED_NEGATIVE_PER_MILLE: u32 = 600;
const TROUBLED_SERIOUS_PER_MILLE: u32 = 800;
/// How strongly positive conduct of persons goes to the civic-minded few,
/// in thousandths.
const CIVIC_POSITIVE_PER_MILLE: u32 = 150;

/// A record emitted earlier, as follow-ups refer to it. Its provider record
/// id is re-rendered from these parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RecordRef {
    provider: u32,
    year: i16,
    ty: Type,
    counter: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Upheld,
    Retracted,
}

/// Something that will happen to a subject or a record on a later day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    /// The judgment debtor pays: a `judgment_fulfilled` record.
    Fulfil {
        default: RecordRef,
        subject: u32,
    },
    Retract {
        record: RecordRef,
        subject: u32,
    },
    Dispute {
        record: RecordRef,
        subject: u32,
    },
    Resolve {
        record: RecordRef,
        subject: u32,
        outcome: Outcome,
    },
    Repair {
        record: RecordRef,
        subject: u32,
    },
    WithdrawConsent {
        subject: u32,
    },
}

/// The up-front budget of record lines.
struct Plan {
    days: i64,
    early_days: i64,
    registrations: u64,
    /// Organisations (by ordinal) below this bound get a yearly evaluation.
    tax_orgs: u64,
    conduct: u64,
}

pub struct Generator<'a> {
    start: Day,
    end: Day,
    plan: Plan,
    rng: ChaCha8Rng,
    pop: Population,
    dates: Dates,
    line: Line,
    providers: Vec<(String, Family)>,
    counters: Vec<u32>,
    region_city: Vec<usize>,
    queue: BinaryHeap<Reverse<(i32, u64, Pending)>>,
    queued: u64,
    mix: Vec<MixEntry>,
    registrations_left: u64,
    /// Next subject to register.
    cursor: u64,
    type_counts: [u64; ALL_TYPES.len()],
    summary: GenSummary,
    sink: &'a mut dyn FnMut(&str),
}

impl<'a> Generator<'a> {
    pub fn new(config: &GenConfig, sink: &'a mut dyn FnMut(&str)) -> Generator<'a> {
        let start = config.start;
        let end = config.end.max(config.start);
        let pop = Population::new(config.seed, config.subjects, start);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(RECORD_STREAM);
        let dates = Dates::new(start, end);
        let plan = Plan::new(config.records, &pop, start, end, &dates);
        let providers = provider_names();
        let counters = vec![0; providers.len()];
        let region_city = REGIONS
            .iter()
            .map(|r| city_index_of(r.code).unwrap_or(0))
            .collect();
        let mix = usable_mix(&pop);
        let summary = GenSummary {
            persons: pop.persons.len() as u64,
            organisations: pop.orgs.len() as u64,
            ..GenSummary::default()
        };
        Generator {
            start,
            end,
            registrations_left: plan.registrations,
            plan,
            rng,
            pop,
            dates,
            line: Line::default(),
            providers,
            counters,
            region_city,
            queue: BinaryHeap::new(),
            queued: 0,
            mix,
            cursor: 0,
            type_counts: [0; ALL_TYPES.len()],
            summary,
            sink,
        }
    }

    pub fn run(mut self) -> GenSummary {
        if self.pop.subjects.is_empty() {
            return self.summary;
        }
        let conduct = u128::from(self.plan.conduct);
        let days = self.plan.days.max(1) as u128;
        for offset in 0..self.plan.days {
            let day = self.start.add_days(offset as i32);
            self.register_due(offset, day);
            self.evaluate_taxes(day);
            let quota_before = conduct * offset as u128 / days;
            let quota_after = conduct * (offset as u128 + 1) / days;
            let mut quota = (quota_after - quota_before) as u64;
            self.follow_ups(day, &mut quota);
            for _ in 0..quota {
                self.conduct(day);
            }
        }
        for (ty, count) in ALL_TYPES.iter().zip(self.type_counts) {
            if count > 0 {
                self.summary.records_by_type.insert(ty.id(), count);
            }
        }
        self.summary
    }

    // ----- scheduling -------------------------------------------------------

    fn schedule(&mut self, day: Day, pending: Pending) {
        if day > self.end {
            return;
        }
        self.queued += 1;
        self.queue.push(Reverse((day.0, self.queued, pending)));
    }

    fn follow_ups(&mut self, day: Day, quota: &mut u64) {
        while let Some(Reverse((due, _, _))) = self.queue.peek() {
            if *due > day.0 {
                break;
            }
            let Some(Reverse((due, _, pending))) = self.queue.pop() else {
                break;
            };
            let at = Day(due);
            match pending {
                Pending::Fulfil { default, subject } => {
                    if *quota == 0 {
                        // No record slot left today: the payment is reported tomorrow.
                        self.schedule(day.add_days(1), pending);
                        continue;
                    }
                    *quota -= 1;
                    self.fulfil(at, default, subject);
                }
                Pending::Retract { record, subject } => {
                    self.record_fact("retracted", record, subject, at, FactExtra::None);
                }
                Pending::Dispute { record, subject } => {
                    let statement = self.rng.random_range(0..names::DISPUTE_STATEMENTS.len());
                    self.record_fact(
                        "disputed",
                        record,
                        subject,
                        at,
                        FactExtra::Statement(statement),
                    );
                    let outcome = if self.per_mille(UPHELD_PER_MILLE) {
                        Outcome::Upheld
                    } else {
                        Outcome::Retracted
                    };
                    let resolved_at = at.add_days(self.rng.random_range(1..=20));
                    self.schedule(
                        resolved_at,
                        Pending::Resolve {
                            record,
                            subject,
                            outcome,
                        },
                    );
                }
                Pending::Resolve {
                    record,
                    subject,
                    outcome,
                } => {
                    self.record_fact("resolved", record, subject, at, FactExtra::Outcome(outcome));
                }
                Pending::Repair { record, subject } => {
                    self.record_fact("repaired", record, subject, at, FactExtra::None);
                }
                Pending::WithdrawConsent { subject } => {
                    self.consent_fact("consent_withdrawn", subject, at);
                }
            }
        }
    }

    /// What happens to a record later, decided when it is made.
    fn plan_follow_ups(&mut self, record: RecordRef, subject: u32, decided: Day) {
        let roll = self.rng.random_range(0..10_000u32);
        if roll < RETRACT_PER_10K {
            let at = decided.add_days(self.rng.random_range(1..=30));
            self.schedule(at, Pending::Retract { record, subject });
            return;
        }
        let negative = matches!(record.ty.tone(), Tone::Negative | Tone::Serious);
        if negative && roll < RETRACT_PER_10K + DISPUTE_PER_10K {
            let at = decided.add_days(self.rng.random_range(3..=60));
            self.schedule(at, Pending::Dispute { record, subject });
        }
        if record.ty == Type::JudgmentDefault && self.per_mille(FULFIL_PER_MILLE) {
            let at = decided.add_days(self.rng.random_range(14..=240));
            self.schedule(
                at,
                Pending::Fulfil {
                    default: record,
                    subject,
                },
            );
        }
        if record.ty == Type::AdministrativePenalty && self.per_mille(PENALTY_REPAIR_PER_MILLE) {
            let at = decided.add_days(self.rng.random_range(90..=365));
            self.schedule(at, Pending::Repair { record, subject });
        }
    }

    // ----- registrations and tax evaluations --------------------------------

    fn register_due(&mut self, offset: i64, day: Day) {
        let subjects = self.pop.subjects.len() as u64;
        while self.cursor < subjects {
            let due = (u128::from(self.cursor) * self.plan.early_days as u128
                / u128::from(subjects)) as i64;
            if due > offset {
                break;
            }
            let index = self.cursor as u32;
            self.cursor += 1;
            if is_org_index(u64::from(index)) {
                self.register_org(index, day);
            } else {
                self.register_person(index, day);
            }
        }
    }

    fn register_person(&mut self, subject: u32, day: Day) {
        if self.pop.attribute_of(subject) != NO_PROFESSION && self.take_registration() {
            self.record(Type::Profession, subject, day, day, None);
        }
        if self.per_mille(CONSENT_PER_MILLE) {
            self.consent_fact("consent_granted", subject, day);
            if self.per_mille(CONSENT_WITHDRAW_PER_MILLE) {
                let later = self.rng.random_range(30..=self.plan.days.max(31)) as i32;
                self.schedule(day.add_days(later), Pending::WithdrawConsent { subject });
            }
        }
    }

    fn register_org(&mut self, subject: u32, day: Day) {
        if self.take_registration() {
            self.record(Type::CompanyRegistration, subject, day, day, None);
        }
        if is_new_taxpayer(u64::from(subject)) && self.take_registration() {
            self.record(Type::TaxNewTaxpayer, subject, day, day, None);
        }
    }

    fn take_registration(&mut self) -> bool {
        if self.registrations_left == 0 {
            return false;
        }
        self.registrations_left -= 1;
        true
    }

    /// Tax credit evaluations of the previous year are published in April;
    /// each organisation gets its own day of the month.
    fn evaluate_taxes(&mut self, day: Day) {
        let Some(first) = april_slot(&self.dates, day) else {
            return;
        };
        let mut ordinal = first;
        while ordinal < self.plan.tax_orgs {
            if let Some(&subject) = self.pop.orgs.get(ordinal as usize) {
                self.record(Type::TaxCreditEvaluation, subject, day, day, None);
            }
            ordinal += 30;
        }
    }

    // ----- conduct -----------------------------------------------------------

    fn conduct(&mut self, day: Day) {
        let choice = pick_weighted(&mut self.rng, self.mix.iter().map(|entry| entry.weight));
        let Some(entry) = self.mix.get(choice).copied() else {
            return;
        };
        let subject = self.pick_subject(entry);
        let mut occurred = day;
        if self.rng.random_range(0..10_000u32) < LATE_PER_10K {
            occurred = day
                .add_days(-self.rng.random_range(30..=365))
                .max(self.start);
            self.summary.late_records += 1;
        }
        let decided = occurred
            .add_days(decision_delay(&mut self.rng, entry.ty))
            .min(self.end);
        let record = self.record(entry.ty, subject, occurred, decided, None);
        self.plan_follow_ups(record, subject, decided);
    }

    fn pick_subject(&mut self, entry: MixEntry) -> u32 {
        let org = match entry.ty.kinds() {
            Kinds::Person => false,
            Kinds::Organisation => true,
            Kinds::Both => self.rng.random_range(0..1000) < entry.org_per_mille,
        };
        let org = org && !self.pop.orgs.is_empty();
        let (troubled_per_mille, civic_per_mille) = match entry.ty.tone() {
            Tone::Serious => (TROUBLED_SERIOUS_PER_MILLE, 0),
            Tone::Negative => (TROUBLED_NEGATIVE_PER_MILLE, 0),
            Tone::Positive => (0, CIVIC_POSITIVE_PER_MILLE),
            Tone::Neutral => (0, 0),
        };
        let draw = self.rng.random_range(0..1000);
        let troubled = draw < troubled_per_mille;
        let civic = draw < civic_per_mille;
        let pool = match (entry.ty, org, troubled) {
            (Type::ProfessionalMisconduct, _, _) if !self.pop.key_group_persons.is_empty() => {
                &self.pop.key_group_persons
            }
            (_, true, true) if !self.pop.troubled_orgs.is_empty() => &self.pop.troubled_orgs,
            (_, true, _) => &self.pop.orgs,
            (_, false, true) if !self.pop.troubled_persons.is_empty() => &self.pop.troubled_persons,
            (_, false, _) if civic && !self.pop.civic_persons.is_empty() => &self.pop.civic_persons,
            (_, false, _) => &self.pop.persons,
        };
        let pick = self.rng.random_range(0..pool.len().max(1));
        pool.get(pick).copied().unwrap_or(0)
    }

    fn fulfil(&mut self, day: Day, default: RecordRef, subject: u32) {
        let decided = day.add_days(self.rng.random_range(0..=10)).min(self.end);
        self.record(
            Type::JudgmentFulfilled,
            subject,
            day,
            decided,
            Some(default),
        );
        if self.per_mille(FULFILLED_REPAIR_PER_MILLE) {
            let at = decided.add_days(self.rng.random_range(30..=180));
            self.schedule(
                at,
                Pending::Repair {
                    record: default,
                    subject,
                },
            );
        }
    }

    // ----- writing lines -------------------------------------------------------

    /// Writes one record line and returns a reference to it. `case` is the
    /// judgment default a fulfilment refers to.
    fn record(
        &mut self,
        ty: Type,
        subject: u32,
        occurred: Day,
        decided: Day,
        case: Option<RecordRef>,
    ) -> RecordRef {
        let provider = match case {
            Some(default) => default.provider,
            None => self.provider_for(ty, subject),
        };
        let counter = self.next_counter(provider);
        let year = self.dates.parts(decided).0;
        let record = RecordRef {
            provider,
            year,
            ty,
            counter,
        };
        let provider_name = self
            .providers
            .get(provider as usize)
            .map_or("", |p| p.0.as_str());
        self.line.begin();
        self.line.trusted("provider", provider_name);
        self.line.open_text("id");
        write_record_id(&mut self.line, record);
        self.line.close_text();
        self.line.trusted("subject", self.pop.id_text(subject));
        self.line.trusted("type", ty.id());
        self.line.trusted("occurred_at", self.dates.text(occurred));
        self.line.trusted("decided_at", self.dates.text(decided));
        let context = Context {
            subject,
            record,
            case: case.unwrap_or(record),
        };
        write_body(
            &mut self.line,
            &mut self.rng,
            &self.pop,
            &self.region_city,
            context,
        );
        (self.sink)(self.line.finish());
        self.summary.records += 1;
        if let Some(count) = self.type_counts.get_mut(ty as usize) {
            *count += 1;
        }
        record
    }

    fn record_fact(
        &mut self,
        fact: &str,
        record: RecordRef,
        subject: u32,
        at: Day,
        extra: FactExtra,
    ) {
        let provider_name = self
            .providers
            .get(record.provider as usize)
            .map_or("", |p| p.0.as_str());
        self.line.begin();
        self.line.trusted("fact", fact);
        self.line.trusted("provider", provider_name);
        self.line.open_text("record");
        write_record_id(&mut self.line, record);
        self.line.close_text();
        self.line.trusted("subject", self.pop.id_text(subject));
        self.line.trusted("at", self.dates.text(at));
        match extra {
            FactExtra::None if fact == "retracted" => self.line.text("by", provider_name),
            FactExtra::None => self.line.text("by", "reviewer"),
            FactExtra::Statement(index) => {
                self.line.text("by", "subject");
                let statement = names::DISPUTE_STATEMENTS.get(index).copied().unwrap_or("");
                self.line.text("statement", statement);
            }
            FactExtra::Outcome(outcome) => {
                self.line.text("by", "reviewer");
                let outcome = match outcome {
                    Outcome::Upheld => "upheld",
                    Outcome::Retracted => "retracted",
                };
                self.line.text("outcome", outcome);
            }
        }
        (self.sink)(self.line.finish());
        self.summary.facts += 1;
    }

    fn consent_fact(&mut self, fact: &str, subject: u32, at: Day) {
        self.line.begin();
        self.line.trusted("fact", fact);
        self.line.trusted("subject", self.pop.id_text(subject));
        self.line.trusted("at", self.dates.text(at));
        self.line.text("by", "subject");
        (self.sink)(self.line.finish());
        self.summary.facts += 1;
    }

    fn provider_for(&mut self, ty: Type, subject: u32) -> u32 {
        let region = self.pop.region_of(subject);
        let city = self.region_city.get(region).copied().unwrap_or(0);
        let family = ty.family();
        let slot = match family {
            Family::Court | Family::Community => self.rng.random_range(0..3),
            Family::Railway => {
                let home = REGIONS.get(region).and_then(|r| province_of(r.code));
                let home = home.and_then(|p| bureau_index(p.railway));
                match home {
                    Some(bureau) if self.per_mille(600) => bureau as u32,
                    _ => self.rng.random_range(0..RAILWAY_BUREAUS.len() as u32),
                }
            }
            Family::Bank => self.rng.random_range(0..BANKS.len() as u32),
            _ => 0,
        };
        provider_index(family, city, slot)
    }

    fn next_counter(&mut self, provider: u32) -> u32 {
        match self.counters.get_mut(provider as usize) {
            Some(counter) => {
                *counter += 1;
                *counter
            }
            None => 0,
        }
    }

    fn per_mille(&mut self, per_mille: u32) -> bool {
        self.rng.random_range(0..1000) < per_mille
    }
}

enum FactExtra {
    None,
    Statement(usize),
    Outcome(Outcome),
}

impl Plan {
    fn new(records: u64, pop: &Population, start: Day, end: Day, dates: &Dates) -> Plan {
        let days = i64::from(end.0) - i64::from(start.0) + 1;
        let mut planned = 0u64;
        for (index, subject) in pop.subjects.iter().enumerate() {
            let index = index as u64;
            if is_org_index(index) {
                planned += 1 + u64::from(is_new_taxpayer(index));
            } else if subject.attribute != NO_PROFESSION {
                planned += 1;
            }
        }
        let registrations = planned.min(records / REGISTRATION_SHARE_DIVISOR);
        let april: Vec<u64> = (0..days)
            .filter_map(|offset| april_slot(dates, start.add_days(offset as i32)))
            .collect();
        let tax_cap = (records - registrations) / TAX_SHARE_DIVISOR;
        let tax_orgs = largest_within(pop.orgs.len() as u64, tax_cap, |orgs| {
            april
                .iter()
                .map(|&slot| {
                    if orgs > slot {
                        (orgs - slot - 1) / 30 + 1
                    } else {
                        0
                    }
                })
                .sum()
        });
        Plan {
            days,
            early_days: days.min(EARLY_DAYS),
            registrations,
            tax_orgs: tax_orgs.0,
            conduct: records - registrations - tax_orgs.1,
        }
    }
}

/// The largest `n <= max` whose `cost(n)` is within `cap` (cost grows with
/// `n`), and that cost.
fn largest_within(max: u64, cap: u64, cost: impl Fn(u64) -> u64) -> (u64, u64) {
    let full = cost(max);
    if full <= cap {
        return (max, full);
    }
    let (mut low, mut high) = (0, max);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if cost(mid) <= cap {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    (low, cost(low))
}

/// For an April day, the first organisation ordinal evaluated that day.
fn april_slot(dates: &Dates, day: Day) -> Option<u64> {
    let (_, month, day_of_month) = dates.parts(day);
    (month == 4 && day_of_month <= 30).then(|| (day_of_month - 1) as u64)
}

/// About one organisation in eight registered as a new taxpayer.
fn is_new_taxpayer(index: u64) -> bool {
    (index / 9) % 8 == 3
}

/// The conduct mix limited to what the population can carry (no
/// organisation types without organisations, and so on).
fn usable_mix(pop: &Population) -> Vec<MixEntry> {
    let mut mix = Vec::new();
    for entry in CONDUCT_MIX {
        let usable = match entry.ty.kinds() {
            Kinds::Organisation => !pop.orgs.is_empty(),
            Kinds::Person | Kinds::Both => !pop.persons.is_empty(),
        };
        let needs_key_group = entry.ty == Type::ProfessionalMisconduct;
        if usable && !(needs_key_group && pop.key_group_persons.is_empty()) {
            mix.push(*entry);
        }
    }
    mix
}

/// Days from the conduct to the decision that documents it.
fn decision_delay(rng: &mut ChaCha8Rng, ty: Type) -> i32 {
    match ty {
        Type::JudgmentDefault => rng.random_range(21..=90),
        Type::SuedInBreach | Type::PrivateLendingBreach | Type::CourtFoundArrears => {
            rng.random_range(14..=60)
        }
        Type::AdministrativePenalty
        | Type::FoodSafetyViolation
        | Type::CounterfeitGoods
        | Type::IllegalFundraising
        | Type::TaxGradeD => rng.random_range(14..=60),
        _ if ty.tone() == Tone::Positive => rng.random_range(0..=14),
        _ => rng.random_range(0..=60),
    }
}

fn write_record_id(line: &mut Line, record: RecordRef) {
    line.part_uint(u64::try_from(record.year).unwrap_or(0));
    line.part("-");
    line.part(record.ty.id_tag());
    line.part("-");
    line.part_padded(u64::from(record.counter), 5);
}

/// What the field writers need to know about the record being written.
#[derive(Clone, Copy)]
struct Context {
    subject: u32,
    record: RecordRef,
    /// The judgment default a fulfilment refers to; the record itself
    /// otherwise (a default is its own case).
    case: RecordRef,
}

/// The province and city a provider sits in, for case and decision numbers.
fn provider_place(provider: u32) -> (&'static Province, usize, u32) {
    let (city, slot) = provider_city(provider).unwrap_or((0, 0));
    let code = CITIES.get(city).map_or(1101, |c| c.code);
    let province = province_of(code * 100).unwrap_or(&PROVINCES[0]);
    (province, city, slot)
}

/// `(2026) Jing 01 Zhi 123`: year, province, court number, case kind, number.
fn write_case_no(line: &mut Line, case: RecordRef, kind: &str) {
    let (province, _, slot) = provider_place(case.provider);
    line.part("(");
    line.part_uint(u64::try_from(case.year).unwrap_or(0));
    line.part(") ");
    line.part(province.abbr);
    line.part(" ");
    line.part_padded(u64::from(slot + 1), 2);
    line.part(" ");
    line.part(kind);
    line.part(" ");
    line.part_uint(u64::from(case.counter));
}

/// `Jing Shi Jian Fa (2026) 123`: a market regulator's decision number.
fn write_decision_no(line: &mut Line, record: RecordRef, office: &str) {
    let (province, _, _) = provider_place(record.provider);
    line.part(province.abbr);
    line.part(" ");
    line.part(office);
    line.part(" (");
    line.part_uint(u64::try_from(record.year).unwrap_or(0));
    line.part(") ");
    line.part_uint(u64::from(record.counter));
}

/// A value between `low` and `high`, uniform on a log scale: amounts span
/// orders of magnitude and small ones are the most common.
fn log_uniform(rng: &mut ChaCha8Rng, low: u64, high: u64) -> u64 {
    let x: f64 = rng.random();
    let low_f = low.max(1) as f64;
    let value = low_f * (high as f64 / low_f).powf(x);
    (value as u64).clamp(low, high)
}

fn round_to(value: u64, step: u64) -> u64 {
    (value / step).max(1) * step
}

fn pick<'w>(rng: &mut ChaCha8Rng, words: &[&'w str]) -> &'w str {
    words
        .get(rng.random_range(0..words.len().max(1)))
        .copied()
        .unwrap_or("")
}

fn pick_pair<'w>(rng: &mut ChaCha8Rng, pairs: &[(&'w str, u32)]) -> &'w str {
    let index = pick_weighted(rng, pairs.iter().map(|(_, weight)| *weight));
    pairs.get(index).map_or("", |(word, _)| word)
}

/// Writes `"fields":{…}` and `"document":"…"` of a record.
fn write_body(
    line: &mut Line,
    rng: &mut ChaCha8Rng,
    pop: &Population,
    region_city: &[usize],
    context: Context,
) {
    let Context {
        subject,
        record,
        case,
    } = context;
    let region = pop.region_of(subject);
    let city = CITIES
        .get(region_city.get(region).copied().unwrap_or(0))
        .unwrap_or(&CITIES[0]);
    let org = is_org_index(u64::from(subject));
    line.open_object("fields");
    match record.ty {
        Type::Profession => {
            let profession = PROFESSIONS.get(usize::from(pop.attribute_of(subject)));
            line.text("profession", profession.copied().unwrap_or("worker"));
            line.close_object();
            line.text("document", "household and employment registration");
        }
        Type::CompanyRegistration => {
            write_company_registration(line, rng, pop, subject, city.name, region);
            line.close_object();
            line.text("document", "business licence");
        }
        Type::TaxNewTaxpayer | Type::TaxCreditEvaluation => {
            let evaluation = record.ty == Type::TaxCreditEvaluation;
            let year = if evaluation {
                record.year - 1
            } else {
                record.year
            };
            line.uint("year", u64::try_from(year).unwrap_or(0));
            if evaluation {
                let troubled = pop.is_troubled(subject);
                let points = match (troubled, rng.random_range(0..10)) {
                    (true, _) => rng.random_range(40..=85),
                    (false, 0..=1) => rng.random_range(60..=89),
                    (false, _) => rng.random_range(85..=100),
                };
                line.uint("points", points);
                line.close_object();
                line.text("document", "annual tax credit evaluation");
            } else {
                line.close_object();
                line.text("document", "tax registration certificate");
            }
        }
        Type::TaxGradeD => {
            line.text("reason", pick(rng, &names::GRADE_D_REASONS));
            line.close_object();
            line.text("document", "tax credit grade D determination");
        }
        Type::JudgmentDefault | Type::JudgmentFulfilled => {
            write_judgment(line, rng, record, case, org);
        }
        Type::SuedInBreach | Type::PrivateLendingBreach | Type::CourtFoundArrears => {
            let (low, high) = if org {
                (20_000, 20_000_000)
            } else {
                (2_000, 2_000_000)
            };
            let optional = record.ty == Type::CourtFoundArrears && rng.random_range(0..10) == 0;
            if !optional {
                line.uint("amount_yuan", round_to(log_uniform(rng, low, high), 10));
            }
            line.close_object();
            line.open_text("document");
            line.part("civil judgment ");
            write_case_no(line, record, "Min Chu");
            line.close_text();
        }
        _ => write_conduct_fields(line, rng, pop, subject, record, org),
    }
}

fn write_judgment(
    line: &mut Line,
    rng: &mut ChaCha8Rng,
    record: RecordRef,
    case: RecordRef,
    org: bool,
) {
    line.open_text("case_no");
    write_case_no(line, case, "Zhi");
    line.close_text();
    let document = if record.ty == Type::JudgmentDefault {
        let (low, high) = if org {
            (50_000, 50_000_000)
        } else {
            (5_000, 5_000_000)
        };
        line.uint("amount_yuan", round_to(log_uniform(rng, low, high), 100));
        line.text("trigger", pick_pair(rng, &names::DEFAULT_TRIGGERS));
        "court decision "
    } else {
        "court notice of enforcement concluded "
    };
    line.close_object();
    line.open_text("document");
    line.part(document);
    write_case_no(line, case, "Zhi");
    line.close_text();
}

fn write_company_registration(
    line: &mut Line,
    rng: &mut ChaCha8Rng,
    pop: &Population,
    subject: u32,
    city: &str,
    region: usize,
) {
    let class = usize::from(pop.attribute_of(subject));
    let registration = ORG_CLASSES.get(class).map_or(*b"91", |c| c.0);
    let region_name = REGIONS.get(region).map_or("", |r| r.name);
    line.open_text("name");
    match &registration {
        b"92" => {
            line.part(city);
            line.part(" ");
            line.part(pick(rng, &names::SURNAMES));
            line.part(" Family ");
            line.part(pick(rng, &names::SHOPS));
        }
        b"93" => {
            line.part(region_name);
            line.part(" ");
            line.part(pick(rng, &names::CROPS));
            line.part(" Farmers' Cooperative");
        }
        b"12" => {
            line.part(region_name);
            line.part(" ");
            line.part(pick(rng, &names::INSTITUTIONS));
        }
        b"11" => {
            line.part(region_name);
            line.part(" ");
            line.part(pick(rng, &names::BUREAUS));
        }
        b"51" | b"52" | b"53" => {
            let words: &[&str] = match &registration {
                b"51" => &names::ASSOCIATIONS,
                b"52" => &names::NON_ENTERPRISES,
                _ => &[
                    "Charity Foundation",
                    "Education Foundation",
                    "Poverty Relief Foundation",
                ],
            };
            line.part(city);
            line.part(" ");
            line.part(pick(rng, &names::SYLLABLES));
            line.part(" ");
            line.part(pick(rng, words));
        }
        _ => {
            line.part(city);
            line.part(" ");
            line.part(pick(rng, &names::SYLLABLES));
            line.part(&pick(rng, &names::SYLLABLES).to_ascii_lowercase());
            line.part(" ");
            line.part(pick(rng, &names::INDUSTRIES));
            line.part(" Co., Ltd.");
        }
    }
    line.close_text();
    // Troubled organisations are often run by troubled people: the
    // relation lets rules reach a legal representative.
    let troubled = pop.is_troubled(subject);
    let troubled_representative = troubled && rng.random_bool(0.5);
    let representative = pick_person(rng, pop, troubled_representative);
    line.text("legal_representative", pop.id_text(representative));
    if rng.random_range(0..10) < 4 {
        let troubled_controller = troubled && rng.random_bool(0.5);
        let controller = pick_person(rng, pop, troubled_controller);
        line.text("actual_controller", pop.id_text(controller));
    }
}

fn pick_person(rng: &mut ChaCha8Rng, pop: &Population, troubled: bool) -> u32 {
    let pool = if troubled && !pop.troubled_persons.is_empty() {
        &pop.troubled_persons
    } else {
        &pop.persons
    };
    pool.get(rng.random_range(0..pool.len().max(1)))
        .copied()
        .unwrap_or(0)
}

fn write_conduct_fields(
    line: &mut Line,
    rng: &mut ChaCha8Rng,
    pop: &Population,
    subject: u32,
    record: RecordRef,
    org: bool,
) {
    let document = match record.ty {
        Type::FareEvasion | Type::SmokingOnTrain | Type::FakeTicket => {
            write_train(line, rng, record);
            "railway incident report"
        }
        Type::ContractBreach
        | Type::IllegalFundraising
        | Type::CounterfeitGoods
        | Type::BankArrears
        | Type::PublicFeeDelay
        | Type::UtilityTheft
        | Type::PublicEquipmentDamage => write_amount_fields(line, rng, record.ty, org),
        Type::ProfessionalMisconduct => {
            write_professional_body(line, pop, subject);
            "disciplinary decision"
        }
        Type::FoodSafetyViolation | Type::AdministrativePenalty => {
            line.open_text("decision_no");
            write_decision_no(line, record, "Shi Jian Fa");
            line.close_text();
            let penalty = round_to(log_uniform(rng, 1_000, 500_000), 100);
            line.uint("penalty_yuan", penalty);
            if record.ty == Type::FoodSafetyViolation {
                line.boolean("serious", rng.random_range(0..10) == 0);
            }
            "administrative penalty decision"
        }
        Type::Volunteering | Type::BloodDonation | Type::CharitableDonation | Type::Honour => {
            write_positive_fields(line, rng, record.ty, org)
        }
        _ => "record",
    };
    line.close_object();
    line.open_text("document");
    line.part(document);
    line.part(" ");
    write_record_id(line, record);
    line.close_text();
}

/// Fields of commercial and social records: mostly an amount, sometimes
/// absent. Returns the kind of document that records them.
fn write_amount_fields(line: &mut Line, rng: &mut ChaCha8Rng, ty: Type, org: bool) -> &'static str {
    match ty {
        Type::ContractBreach | Type::IllegalFundraising | Type::CounterfeitGoods => {
            let (low, high, optional) = match ty {
                Type::ContractBreach => (5_000, 5_000_000, false),
                Type::IllegalFundraising => (1_000_000, 500_000_000, false),
                _ => (5_000, 2_000_000, rng.random_bool(0.5)),
            };
            let scale = if org { 10 } else { 1 };
            if !optional {
                let amount = log_uniform(rng, low * scale, high * scale);
                line.uint("amount_yuan", round_to(amount, 100));
            }
            match ty {
                Type::ContractBreach => "contract dispute mediation record",
                Type::IllegalFundraising => "administrative decision on illegal fundraising",
                _ => "administrative penalty decision",
            }
        }
        Type::BankArrears => {
            let cycles = 1 + pick_weighted(rng, [40u32, 25, 15, 10, 6, 4].into_iter()) as u64;
            line.uint("cycles", cycles);
            line.yuan_from_fen("amount_yuan", log_uniform(rng, 50_000, 20_000_000));
            "bank overdue notice"
        }
        Type::PublicFeeDelay | Type::UtilityTheft | Type::PublicEquipmentDamage => {
            let (present_per_10, low, high) = match ty {
                Type::PublicFeeDelay => (8, 10_000, 500_000),
                Type::UtilityTheft => (7, 20_000, 5_000_000),
                _ => (5, 5_000, 1_000_000),
            };
            if rng.random_range(0..10) < present_per_10 {
                line.yuan_from_fen("amount_yuan", log_uniform(rng, low, high));
            }
            match ty {
                Type::UtilityTheft => "power supply inspection record",
                _ => "residents' committee record",
            }
        }
        _ => "record",
    }
}

/// Fields of positive conduct. Returns the kind of document that records it.
fn write_positive_fields(
    line: &mut Line,
    rng: &mut ChaCha8Rng,
    ty: Type,
    org: bool,
) -> &'static str {
    match ty {
        Type::Volunteering => {
            line.tenths("hours", log_uniform(rng, 10, 2_000) / 5 * 5);
            "volunteer service certificate"
        }
        Type::BloodDonation => {
            let millilitres = pick_weighted(rng, [30u32, 20, 50].into_iter()) as u64 * 100 + 200;
            line.uint("millilitres", millilitres);
            "blood donation certificate"
        }
        Type::CharitableDonation => {
            let (low, high) = if org {
                (100_000, 200_000_000)
            } else {
                (5_000, 2_000_000)
            };
            line.yuan_from_fen("amount_yuan", round_to(log_uniform(rng, low, high), 100));
            "donation receipt"
        }
        Type::Honour => {
            line.text("level", pick_pair(rng, &names::HONOUR_LEVELS));
            let titles: &[&str] = if org {
                &names::ORG_HONOURS
            } else {
                &names::PERSON_HONOURS
            };
            line.text("title", pick(rng, titles));
            "commendation certificate"
        }
        _ => "record",
    }
}

fn write_train(line: &mut Line, rng: &mut ChaCha8Rng, record: RecordRef) {
    let bureau = record
        .provider
        .saturating_sub(provider_index(Family::Railway, 0, 0));
    let stations = RAILWAY_BUREAUS
        .get(bureau as usize)
        .map_or(&[][..], |b| b.1);
    let prefix = pick_pair(rng, &names::TRAIN_PREFIXES);
    let number_max = if prefix == "G" || prefix == "D" {
        9999
    } else {
        999
    };
    line.open_text("train_no");
    line.part(prefix);
    line.part_uint(rng.random_range(1..=number_max));
    line.close_text();
    line.text("station", pick(rng, stations));
}

fn write_professional_body(line: &mut Line, pop: &Population, subject: u32) {
    let region = REGIONS.get(pop.region_of(subject));
    let code = region.map_or(110105, |r| r.code);
    let province = province_of(code).map_or("Beijing", |p| p.name);
    let city = city_index_of(code)
        .and_then(|c| CITIES.get(c))
        .map_or("Beijing", |c| c.name);
    let (place, body) = match PROFESSIONS.get(usize::from(pop.attribute_of(subject))) {
        Some(&"lawyer") => (province, " Lawyers Association"),
        Some(&"accountant") => (province, " Institute of Certified Public Accountants"),
        Some(&"teacher") => (city, " Education Bureau"),
        Some(&"journalist") => (province, " Journalists Association"),
        Some(&"doctor") => (city, " Health Commission"),
        _ => (city, " Commission for Discipline Inspection"),
    };
    line.open_text("body");
    line.part(place);
    line.part(body);
    line.close_text();
}
