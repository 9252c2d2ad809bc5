//! The conformance suite: what every [`Store`] backend must do, as checks
//! that panic with a message when a backend does otherwise. A backend runs
//! them all with one line in its tests:
//!
//! ```text
//! socred_store::conformance_tests!(make: make_store(), tamper: tamper_audit);
//! ```
//!
//! where `make_store()` is a future giving `(store, guard)` (the guard,
//! e.g. a temporary directory, lives as long as the test) and
//! `tamper_audit(&store, seq)` changes the detail of audit entry `seq`
//! behind the store's back. The backend's tests need `tokio` (with the
//! `macros` and `rt` features) as a dependency.
//!
//! The suite uses its own small rulebook, built from core types, so that
//! it does not move when the default rulebook is edited: a judgment
//! defaulter list that needs review, reaches a company's legal
//! representative and ends when the judgment is fulfilled; a fare evasion
//! record worth points; a volunteer record that counts only with consent.

use std::collections::BTreeMap;
use std::sync::Arc;

use socred_core::record::{FieldType, Fields, Value};
use socred_core::rulebook::{
    DisputePolicy, FieldDef, GradeBand, KindSet, ListDef, ListKind, Points, RecordEntry,
    RecordExit, RecordType, ScoreRule, ScoringModel, Severity,
};
use socred_core::{
    Day, Engine, Fact, FactKind, Period, Record, RecordKey, Rulebook, SubjectId, SubjectKind,
};

mod random;
pub use random::check_random_operations;

use crate::{
    hash_token, verify_chain, verify_states, AuditDraft, ChainVerifier, Item, ItemKey, Outcome,
    Principal, ReadMark, ReviewNeed, Role, Store, Submission,
};

/// Generates one `#[tokio::test]` per check; see the module docs.
#[macro_export]
macro_rules! conformance_tests {
    (make: $make:expr, tamper: $tamper:expr $(,)?) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;

            $crate::conformance_tests!(@checks $make;
                replay_is_idempotent => check_replay_is_idempotent,
                same_key_other_content_conflicts => check_same_key_other_content_conflicts,
                facts_retract_correct_and_consent => check_facts,
                review_needs_a_second_person => check_review,
                derived_entries_follow_the_company => check_derived_entries,
                list_members_page_and_filter_by_day => check_list_members,
                subjects_page_in_order => check_subjects_paging,
                principals_by_token_hash => check_principals,
                rulebook_versions_are_kept => check_rulebooks,
                recompute_all_refolds_with_the_new_rulebook => check_recompute_all,
                an_upload_records_the_recomputation_left_to_do => check_unfinished_recompute,
                records_retracted_by_a_resolution_reach_erasure => check_resolved_retractions,
                writes_and_audit_commit_together => check_audit_with_writes,
                marked_reads_follow_every_write => check_marked_reads,
                large_batches_answer_item_by_item => check_large_batches,
                subjects_spread_through_a_batch_fold_whole => check_spread_batch,
                open_objections_list_their_subjects => check_open_objections,
                pending_items_by_subject => check_pending_about,
                erasure_at_the_end_of_retention => check_erasure,
                random_writes_agree_with_the_memory_store => check_random_operations,
                records_held_by_type => check_held_record_types,
                audit_entries_go_at_the_end_of_retention => check_audit_retention,
                a_secret_is_kept_once => check_secrets,
                a_lease_is_held_by_one_until_it_runs_out => check_leases,
                an_edition_replaces_the_one_before => check_editions,
                writes_stamp_the_subjects_they_change => check_subjects_changed,
                writes_fold_with_the_rulebook_in_force => check_rulebook_in_force,
            );

            #[tokio::test]
            async fn audit_chain_verifies_and_catches_tampering() {
                let (store, _guard) = $make.await;
                $crate::conformance::check_audit_chain(&store, $tamper).await;
            }
        }
    };
    (@checks $make:expr; $($name:ident => $check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _guard) = $make.await;
                $crate::conformance::$check(&store).await;
            }
        )*
    };
}

/// A valid person identifier, distinct for each `n` below 1000.
pub fn person(n: u16) -> SubjectId {
    match SubjectId::person(110105, 1990, 1, 1 + (n / 999) as i8, n % 999) {
        Some(id) => id,
        None => panic!("person {n} has no identifier"),
    }
}

/// The published example person (`11010519491231002X`).
pub fn example_person() -> SubjectId {
    parse("11010519491231002X")
}

/// The published example organisation (`91110000600037341L`).
pub fn example_organisation() -> SubjectId {
    parse("91110000600037341L")
}

/// A valid organisation identifier, distinct for each `n`.
pub fn organisation(n: u32) -> SubjectId {
    for salt in 0..100u32 {
        let body = format!("MA{:06}", (n * 100 + salt) % 1_000_000);
        let Ok(body) = <[u8; 8]>::try_from(body.as_bytes()) else {
            continue;
        };
        if let Some(id) = SubjectId::organisation(*b"91", 110105, body) {
            return id;
        }
    }
    panic!("organisation {n} has no identifier")
}

fn parse(text: &str) -> SubjectId {
    match SubjectId::parse(text) {
        Ok(parsed) => parsed.id,
        Err(error) => panic!("`{text}`: {error}"),
    }
}

pub fn day(text: &str) -> Day {
    match Day::parse(text) {
        Ok(day) => day,
        Err(error) => panic!("{error}"),
    }
}

pub const DEFAULTERS: &str = "judgment_defaulters";
const JUDGMENT: &str = "judicial.judgment_default";
const FULFILLED: &str = "judicial.judgment_fulfilled";
const REGISTRATION: &str = "market.registration";
const FARE_EVASION: &str = "transport.fare_evasion";
const VOLUNTEER: &str = "civic.volunteer_service";

fn record_type(
    id: &str,
    kinds: KindSet,
    severity: Severity,
    fields: &[(&str, FieldType)],
) -> RecordType {
    RecordType {
        id: id.into(),
        title: id.to_string(),
        subject_kinds: kinds,
        category: id.split('.').next().unwrap_or(id).to_string(),
        severity,
        legal_basis: "conformance test".into(),
        fields: fields
            .iter()
            .map(|(name, field_type)| FieldDef::new(name, *field_type, false))
            .collect(),
        retention: Period::years(5),
        publicity: Some(Period::years(3)),
        publicity_min: Period::default(),
        consent_required: false,
        profession_field: None,
        relation_fields: Vec::new(),
        dispute_policy: DisputePolicy::Suspended,
    }
}

fn rule(id: &str, record_type: u32, points: i64) -> ScoreRule {
    ScoreRule {
        id: socred_core::Name::new(id),
        record_type,
        condition: None,
        points: Points::Constant(points),
        points_min: None,
        points_max: None,
        validity: Period::years(1),
        escalation: None,
        subject_kinds: KindSet::ALL,
        professions: Vec::new(),
    }
}

/// The suite's rulebook; `fare_points` is what a fare evasion costs (the
/// recompute check changes it).
pub fn rulebook(fare_points: i64) -> Rulebook {
    let orgs = KindSet {
        person: false,
        organisation: true,
    };
    let persons = KindSet {
        person: true,
        organisation: false,
    };
    let mut judgment = record_type(
        JUDGMENT,
        KindSet::ALL,
        Severity::Serious,
        &[
            ("case_no", FieldType::Text),
            ("amount_yuan", FieldType::Int),
        ],
    );
    judgment.publicity = Some(Period::years(3));
    let fulfilled = record_type(
        FULFILLED,
        KindSet::ALL,
        Severity::General,
        &[("case_no", FieldType::Text)],
    );
    let mut registration = record_type(
        REGISTRATION,
        orgs,
        Severity::Minor,
        &[("legal_representative", FieldType::Subject)],
    );
    registration.relation_fields = vec![Arc::from("legal_representative")];
    registration.publicity = None;
    let fare = record_type(
        FARE_EVASION,
        persons,
        Severity::Minor,
        &[("station", FieldType::Text)],
    );
    let mut volunteer = record_type(
        VOLUNTEER,
        persons,
        Severity::Minor,
        &[("hours", FieldType::Int)],
    );
    volunteer.consent_required = true;
    let catalog = vec![judgment, fulfilled, registration, fare, volunteer];
    let catalog_index: BTreeMap<socred_core::Name, u32> = catalog
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id, i as u32))
        .collect();
    let model = ScoringModel {
        id: socred_core::Name::new("city"),
        subject_kinds: KindSet::ALL,
        base_points: 1000,
        consent_required_for: KindSet {
            person: false,
            organisation: false,
        },
        grades: vec![
            GradeBand {
                grade: Arc::from("A"),
                points_min: 1000,
            },
            GradeBand {
                grade: Arc::from("B"),
                points_min: 900,
            },
            GradeBand {
                grade: Arc::from("C"),
                points_min: i64::MIN,
            },
        ],
        rules: vec![
            rule("judgment", 0, -100),
            rule("fare", 3, fare_points),
            rule("volunteer", 4, 3),
        ],
        caps: Vec::new(),
        expectations: Vec::new(),
        requires_records: false,
        assigned_grades: Vec::new(),
        note: String::new(),
    };
    let defaulters = ListDef {
        id: socred_core::Name::new(DEFAULTERS),
        title: "Dishonest judgment defaulters".into(),
        kind: ListKind::Black,
        legal_basis: "conformance test".into(),
        subject_kinds: KindSet::ALL,
        record_entries: vec![RecordEntry {
            record_type: 0,
            condition: None,
        }],
        grade_entries: Vec::new(),
        grade_model: None,
        duration_min: Period::default(),
        duration_max: Some(Period::years(2)),
        exits: vec![RecordExit {
            record_type: 1,
            match_field: Some(Arc::from("case_no")),
            working_days: 3,
        }],
        exit_on_repair: true,
        public: true,
        schedule: None,
        reach: vec![Arc::from("legal_representative")],
        reach_legal_basis: None,
        review_required: true,
        excluded_by: Vec::new(),
    };
    Rulebook {
        id: Arc::from("conformance"),
        version: Arc::from(format!("fare{fare_points}")),
        catalog,
        models: vec![model],
        lists: vec![defaulters],
        measures: Vec::new(),
        calendar: Default::default(),
        objection_deadline: socred_core::rulebook::Rulebook::OBJECTION_DEADLINE_DEFAULT,
        audit_retention: None,
        catalog_index,
    }
}

pub fn engine() -> Arc<Engine> {
    engine_with(-5)
}

/// An engine of the suite's rulebook with a fare evasion at `fare_points`.
pub fn engine_with(fare_points: i64) -> Arc<Engine> {
    Arc::new(Engine::new(Arc::new(rulebook(fare_points))))
}

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (Arc::from(*k), v.clone()))
        .collect()
}

fn text(value: &str) -> Value {
    Value::Text(Arc::from(value))
}

/// A record of the suite's rulebook.
pub fn record(
    engine: &Engine,
    id: &str,
    subject: SubjectId,
    type_id: &str,
    decided: &str,
    fields: Fields,
) -> Record {
    let type_index = engine
        .rulebook
        .record_type(type_id)
        .unwrap_or_else(|| panic!("no type {type_id}"));
    let provider = if type_id.starts_with("judicial") {
        "court.beijing-1"
    } else {
        "provider.city"
    };
    Record {
        key: record_key(provider, id),
        subject,
        type_index,
        type_id: socred_core::Name::new(type_id),
        occurred_at: day(decided).add_days(-10),
        decided_at: day(decided),
        fields,
        document: Some(Arc::from(format!("document {id}"))),
    }
}

fn record_key(provider: &str, id: &str) -> RecordKey {
    RecordKey {
        provider: Arc::from(provider),
        id: id.into(),
    }
}

fn fare(engine: &Engine, id: &str, subject: SubjectId, decided: &str) -> Record {
    record(
        engine,
        id,
        subject,
        FARE_EVASION,
        decided,
        fields(&[("station", text("Beijing South"))]),
    )
}

/// The registry's day of the reviews in these checks: records decided in
/// 2026 are well within their five years' retention.
fn review_day() -> Day {
    day("2026-12-01")
}

fn judgment(engine: &Engine, id: &str, subject: SubjectId, decided: &str, case_no: &str) -> Record {
    let fields = judgment_fields(case_no, 52_000);
    record(engine, id, subject, JUDGMENT, decided, fields)
}

fn judgment_fields(case_no: &str, amount_yuan: i64) -> Fields {
    fields(&[
        ("case_no", text(case_no)),
        ("amount_yuan", Value::Int(amount_yuan)),
    ])
}

fn submit(item: Item) -> Submission {
    Submission {
        item,
        submitted_by: "provider.city".into(),
        review: ReviewNeed::NotRequired,
    }
}

fn records(records: &[&Record]) -> Vec<Submission> {
    records
        .iter()
        .map(|r| submit(Item::Record((*r).clone())))
        .collect()
}

fn fact(subject: SubjectId, at: &str, by: &str, kind: FactKind) -> Item {
    Item::Fact {
        fact: Fact {
            subject,
            at: day(at),
            by: Arc::from(by),
            kind,
        },
        record_type: None,
    }
}

pub fn audit(action: &str, subject: Option<SubjectId>) -> AuditDraft {
    AuditDraft {
        at_ms: 1_772_000_000_000,
        actor: "provider.city".into(),
        role: "provider".into(),
        purpose: "conformance".into(),
        action: action.into(),
        subject,
        detail: format!("{action} in the conformance suite"),
    }
}

async fn ingest(store: &dyn Store, engine: &Arc<Engine>, batch: Vec<Submission>) -> Vec<Outcome> {
    match store.ingest(engine, batch, Vec::new()).await {
        Ok(outcomes) => outcomes,
        Err(error) => panic!("ingest failed: {error}"),
    }
}

async fn state(store: &dyn Store, subject: SubjectId) -> Option<socred_core::SubjectState> {
    match store.state(subject).await {
        Ok(state) => state.map(Arc::unwrap_or_clone),
        Err(error) => panic!("state of {subject}: {error}"),
    }
}

async fn assert_consistent(store: &dyn Store, engine: &Engine) {
    let mismatches = verify_states(store, engine)
        .await
        .unwrap_or_else(|e| panic!("verify: {e}"));
    assert_eq!(
        mismatches,
        Vec::new(),
        "stored states must equal a fresh fold of their records"
    );
}

fn score(engine: &Engine, state: &socred_core::SubjectState, on: &str) -> Option<i64> {
    engine.evaluate(state, day(on)).score()
}

/// Replays change nothing and say so, in a later batch and within one.
pub async fn check_replay_is_idempotent(store: &dyn Store) {
    let engine = engine();
    let p = example_person();
    let a = fare(&engine, "fare-1", p, "2026-03-01");
    let b = fare(&engine, "fare-2", p, "2026-04-01");
    let c = fare(&engine, "fare-3", person(7), "2026-04-01");
    let first = ingest(store, &engine, records(&[&a, &b, &c])).await;
    assert_eq!(first, vec![Outcome::Stored; 3]);
    let before = state(store, p).await.expect("a state after ingestion");
    assert_eq!(before.records.len(), 2);
    assert_eq!(score(&engine, &before, "2026-05-01"), Some(990));
    let counts = store.counts().await.expect("counts");
    assert_eq!(
        (
            counts.records,
            counts.subjects,
            counts.facts,
            counts.pending
        ),
        (3, 2, 0, 0)
    );

    let again = ingest(store, &engine, records(&[&a, &b, &c])).await;
    assert_eq!(again, vec![Outcome::Duplicate; 3]);
    assert_eq!(state(store, p).await.as_ref(), Some(&before));
    assert_eq!(store.counts().await.expect("counts"), counts);

    let d = fare(&engine, "fare-4", p, "2026-02-01");
    let within = ingest(store, &engine, records(&[&d, &d])).await;
    assert_eq!(within, vec![Outcome::Stored, Outcome::Duplicate]);
    // A late record (conduct before the others) folds as if it came in order.
    let (stored_records, stored_facts) = store.records(&engine.rulebook, p).await.expect("records");
    assert_eq!(stored_records.len(), 3);
    assert!(stored_facts.is_empty());
    let in_order = engine.fold(p, &[d.clone(), a.clone(), b.clone()], &[], crate::KNOWN_AT);
    let mut stored = state(store, p).await.expect("state");
    crate::normalise_state(&mut stored);
    assert_eq!(stored, in_order);
    assert_consistent(store, &engine).await;
}

/// A batch of many records (more than a backend may insert in one
/// statement) answers each item as if it came alone: replays, conflicts
/// with stored records and with records earlier in the same batch, items
/// waiting for review, and a fact about a record stored earlier in the
/// same batch.
pub async fn check_large_batches(store: &dyn Store) {
    let engine = engine();
    let first: Vec<Record> = (0..100)
        .map(|n| fare(&engine, &format!("fare-{n}"), person(n % 10), "2026-03-01"))
        .collect();
    let refs: Vec<&Record> = first.iter().collect();
    assert_eq!(
        ingest(store, &engine, records(&refs)).await,
        vec![Outcome::Stored; 100]
    );

    let elsewhere = |mut record: Record| {
        record.fields = fields(&[("station", text("Shanghai Hongqiao"))]);
        record
    };
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for k in 0..30u16 {
        let new = fare(&engine, &format!("new-{k}"), person(k % 10), "2026-04-01");
        let review = if k % 4 == 0 {
            ReviewNeed::Required
        } else {
            ReviewNeed::NotRequired
        };
        let first_answer = if review == ReviewNeed::Required {
            Outcome::PendingReview
        } else {
            Outcome::Stored
        };
        let replay = if review == ReviewNeed::Required {
            Outcome::PendingReview
        } else {
            Outcome::Duplicate
        };
        let conflict = Outcome::Conflict {
            reason: String::new(),
        };
        let items = [
            (
                first[k as usize].clone(),
                ReviewNeed::NotRequired,
                Outcome::Duplicate,
            ),
            (
                elsewhere(first[k as usize + 50].clone()),
                ReviewNeed::NotRequired,
                conflict.clone(),
            ),
            (new.clone(), review, first_answer),
            (new.clone(), review, replay),
            (elsewhere(new.clone()), review, conflict),
        ];
        for (record, review, outcome) in items {
            batch.push(Submission {
                item: Item::Record(record),
                submitted_by: "provider.city".into(),
                review,
            });
            expected.push(outcome);
        }
        if k == 14 {
            // Retracts `new-14`, stored a moment ago in this same batch.
            batch.push(submit(fact(
                new.subject,
                "2026-04-02",
                "provider.city",
                FactKind::Retracted {
                    record: new.key.clone(),
                },
            )));
            expected.push(Outcome::Stored);
        }
    }
    let outcomes = ingest(store, &engine, batch).await;
    assert_eq!(outcomes.len(), expected.len());
    for (n, (outcome, expected)) in outcomes.iter().zip(&expected).enumerate() {
        match (outcome, expected) {
            (Outcome::Conflict { reason }, Outcome::Conflict { .. }) => {
                assert!(reason.contains("other content"), "item {n}: {reason}");
            }
            _ => assert_eq!(outcome, expected, "item {n}"),
        }
    }
    let counts = store.counts().await.expect("counts");
    // 22 new records in effect (every fourth of 30 waits for review).
    assert_eq!((counts.records, counts.facts, counts.pending), (122, 1, 8));
    let ids = |state: socred_core::SubjectState| -> Vec<String> {
        let mut ids: Vec<String> = state
            .records
            .iter()
            .filter(|r| r.key.id.starts_with("new-"))
            .map(|r| r.key.id.to_string())
            .collect();
        ids.sort();
        ids
    };
    // Person 4: new-14 retracted in its own batch, new-4 and new-24 waiting.
    assert_eq!(
        ids(state(store, person(4)).await.expect("a state")),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(state(store, person(3)).await.expect("a state")),
        ["new-13", "new-23", "new-3"]
    );
    assert_consistent(store, &engine).await;
}

/// A batch about enough subjects to be folded on several threads, with
/// each subject's items far apart: three records each, round after round,
/// a resent copy in the last round for every fifth subject, and for every
/// seventh a retraction of its first record at the very end. Every
/// subject's state is its whole history's, as a fold from scratch gives it
/// (a subject folded before its last item was stored would miss it).
pub async fn check_spread_batch(store: &dyn Store) {
    const SUBJECTS: u16 = 300;
    let engine = engine();
    let first = |n: u16| fare(&engine, &format!("r0-{n}"), person(n), "2026-03-01");
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for round in 0..3 {
        for n in 0..SUBJECTS {
            let day = format!("2026-03-0{}", round + 1);
            batch.push(submit(Item::Record(fare(
                &engine,
                &format!("r{round}-{n}"),
                person(n),
                &day,
            ))));
            expected.push(Outcome::Stored);
            if round == 2 && n % 5 == 0 {
                batch.push(submit(Item::Record(first(n))));
                expected.push(Outcome::Duplicate);
            }
        }
    }
    for n in (0..SUBJECTS).filter(|n| n % 7 == 0) {
        batch.push(submit(fact(
            person(n),
            "2026-03-05",
            "provider.city",
            FactKind::Retracted {
                record: first(n).key,
            },
        )));
        expected.push(Outcome::Stored);
    }
    assert_eq!(ingest(store, &engine, batch).await, expected);
    let counts = store.counts().await.expect("counts");
    let retracted = (0..SUBJECTS).filter(|n| n % 7 == 0).count() as u64;
    assert_eq!(
        (counts.subjects, counts.records, counts.facts),
        (u64::from(SUBJECTS), 3 * u64::from(SUBJECTS), retracted)
    );
    for n in [0, 1, 5, 7, 299] {
        let held = state(store, person(n)).await.expect("a state");
        let mut ids: Vec<String> = held.records.iter().map(|r| r.key.id.to_string()).collect();
        ids.sort();
        let mut want: Vec<String> = (0..3).map(|round| format!("r{round}-{n}")).collect();
        if n % 7 == 0 {
            want.remove(0);
        }
        assert_eq!(ids, want, "person {n}");
    }
    assert_consistent(store, &engine).await;
}

/// The same key with other content is refused and changes nothing.
/// Subjects with an objection in effect and no resolution dated on or
/// after it are listed in identifier order, paged; a resolved objection,
/// one waiting for review and one about another subject are not.
pub async fn check_open_objections(store: &dyn Store) {
    use socred_core::record::Outcome as Resolution;

    let engine = engine();
    let (open, resolved, reopened, pending) = (person(1), person(2), person(3), person(4));
    let fares: Vec<Record> = [open, resolved, reopened, pending]
        .iter()
        .enumerate()
        .map(|(n, &p)| fare(&engine, &format!("fare-{n}"), p, "2026-01-10"))
        .collect();
    ingest(store, &engine, records(&fares.iter().collect::<Vec<_>>())).await;
    let dispute = |record: &Record, at: &str| {
        fact(
            record.subject,
            at,
            record.subject.as_str(),
            FactKind::Disputed {
                record: record.key.clone(),
                statement: Some(Arc::from("not me")),
            },
        )
    };
    let resolution = |record: &Record, at: &str| {
        fact(
            record.subject,
            at,
            "reviewer.li",
            FactKind::Resolved {
                record: record.key.clone(),
                outcome: Resolution::Upheld,
                fields: None,
            },
        )
    };
    assert_eq!(
        store.disputed_subjects(None, 10).await.expect("list"),
        Vec::<SubjectId>::new(),
        "no objection yet"
    );
    let batch = vec![
        submit(dispute(&fares[0], "2026-02-01")),
        submit(dispute(&fares[1], "2026-02-01")),
        submit(resolution(&fares[1], "2026-02-05")),
        submit(dispute(&fares[2], "2026-02-01")),
        submit(resolution(&fares[2], "2026-02-05")),
        submit(dispute(&fares[2], "2026-03-01")),
        Submission {
            item: dispute(&fares[3], "2026-02-01"),
            submitted_by: "provider.city".into(),
            review: ReviewNeed::Required,
        },
    ];
    let outcomes = ingest(store, &engine, batch).await;
    assert_eq!(outcomes.len(), 7, "{outcomes:?}");
    let mut expected = vec![open, reopened];
    expected.sort();
    assert_eq!(
        store.disputed_subjects(None, 10).await.expect("list"),
        expected
    );
    let first = store.disputed_subjects(None, 1).await.expect("page 1");
    assert_eq!(first, expected[..1]);
    let second = store
        .disputed_subjects(Some(first[0]), 1)
        .await
        .expect("page 2");
    assert_eq!(second, expected[1..]);
    assert_eq!(
        store
            .disputed_subjects(Some(expected[1]), 10)
            .await
            .expect("past the end"),
        Vec::<SubjectId>::new()
    );
    // The states agree: the open ones have a dispute without an end.
    for subject in [open, reopened] {
        let state = state(store, subject).await.expect("state");
        assert!(
            state.records[0]
                .disputes()
                .iter()
                .any(|span| span.contains(day("2026-06-01"))),
            "{subject}: {:?}",
            state.records[0].disputes()
        );
    }
}

pub async fn check_same_key_other_content_conflicts(store: &dyn Store) {
    let engine = engine();
    let p = example_person();
    let original = fare(&engine, "fare-1", p, "2026-03-01");
    assert_eq!(
        ingest(store, &engine, records(&[&original])).await,
        vec![Outcome::Stored]
    );
    let before = state(store, p).await;

    let mut other_fields = original.clone();
    other_fields.fields = fields(&[("station", text("Shanghai Hongqiao"))]);
    let mut other_subject = original.clone();
    other_subject.subject = person(3);
    let mut other_day = original.clone();
    other_day.decided_at = day("2026-03-02");
    let outcomes = ingest(
        store,
        &engine,
        records(&[&other_fields, &other_subject, &other_day]),
    )
    .await;
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Outcome::Conflict { reason } if reason.contains("fare-1")),
            "{outcome:?}"
        );
    }
    assert_eq!(state(store, p).await, before);
    assert_eq!(state(store, person(3)).await, None);
    assert_eq!(store.counts().await.expect("counts").records, 1);
}

/// Retraction restores the earlier state exactly; corrections apply;
/// facts replay as duplicates; facts about records that are not there are
/// refused; consent gates the records that need it.
pub async fn check_facts(store: &dyn Store) {
    let engine = engine();
    let p = example_person();
    let first = fare(&engine, "fare-1", p, "2026-01-10");
    ingest(store, &engine, records(&[&first])).await;
    let earlier = state(store, p).await.expect("state");

    let second = fare(&engine, "fare-2", p, "2026-02-10");
    ingest(store, &engine, records(&[&second])).await;
    assert_eq!(
        score(
            &engine,
            &state(store, p).await.expect("state"),
            "2026-03-01"
        ),
        Some(990)
    );

    let retraction = fact(
        p,
        "2026-02-20",
        "provider.city",
        FactKind::Retracted {
            record: second.key.clone(),
        },
    );
    let outcomes = ingest(store, &engine, vec![submit(retraction.clone())]).await;
    assert_eq!(outcomes, vec![Outcome::Stored]);
    assert_eq!(
        state(store, p).await.as_ref(),
        Some(&earlier),
        "a retraction restores the earlier state"
    );
    assert_eq!(
        ingest(store, &engine, vec![submit(retraction)]).await,
        vec![Outcome::Duplicate]
    );

    // Same key (kind, record, day, reporter), other content: refused.
    let correction = |station: &str| {
        fact(
            p,
            "2026-02-21",
            "provider.city",
            FactKind::Corrected {
                record: first.key.clone(),
                fields: fields(&[("station", text(station))]),
                occurred_at: None,
                decided_at: None,
            },
        )
    };
    assert_eq!(
        ingest(store, &engine, vec![submit(correction("Tianjin"))]).await,
        vec![Outcome::Stored]
    );
    let corrected = state(store, p).await.expect("state");
    assert_eq!(
        corrected.records[0].fields.get("station"),
        Some(&text("Tianjin"))
    );
    let outcome = ingest(store, &engine, vec![submit(correction("Xiong'an"))]).await;
    assert!(
        matches!(&outcome[..], [Outcome::Conflict { .. }]),
        "{outcome:?}"
    );

    // A correction checked against another type than the record's.
    let Item::Fact {
        fact: wrong_type, ..
    } = correction("Tianjin")
    else {
        unreachable!()
    };
    let mut wrong_type = wrong_type;
    wrong_type.at = day("2026-02-22");
    let item = Item::Fact {
        fact: wrong_type,
        record_type: Some(socred_core::Name::new(JUDGMENT)),
    };
    let outcome = ingest(store, &engine, vec![submit(item)]).await;
    assert!(
        matches!(&outcome[..], [Outcome::Conflict { reason }] if reason.contains(JUDGMENT)),
        "{outcome:?}"
    );

    // Facts about records that do not exist, or exist for someone else.
    let ghost = fact(
        p,
        "2026-02-20",
        "provider.city",
        FactKind::Retracted {
            record: record_key("provider.city", "ghost"),
        },
    );
    let elsewhere = fact(
        person(9),
        "2026-02-20",
        "provider.city",
        FactKind::Retracted {
            record: first.key.clone(),
        },
    );
    let outcomes = ingest(store, &engine, vec![submit(ghost), submit(elsewhere)]).await;
    assert_eq!(
        outcomes,
        vec![Outcome::UnknownRecord, Outcome::UnknownRecord]
    );
    assert_eq!(state(store, person(9)).await, None);

    // Consent: the volunteer record counts only while consent is granted.
    let volunteer = record(
        &engine,
        "vol-1",
        p,
        VOLUNTEER,
        "2026-03-01",
        fields(&[("hours", Value::Int(8))]),
    );
    ingest(store, &engine, records(&[&volunteer])).await;
    let without = state(store, p).await.expect("state");
    let base = score(&engine, &without, "2026-03-10");
    let grant = fact(p, "2026-03-05", p.as_str(), FactKind::ConsentGranted);
    let withdraw = fact(p, "2026-04-05", p.as_str(), FactKind::ConsentWithdrawn);
    assert_eq!(
        ingest(store, &engine, vec![submit(grant), submit(withdraw)]).await,
        vec![Outcome::Stored; 2]
    );
    let with = state(store, p).await.expect("state");
    assert_eq!(
        score(&engine, &with, "2026-03-10"),
        base.map(|s| s + 3),
        "counts while consent is granted"
    );
    assert_eq!(
        score(&engine, &with, "2026-04-10"),
        base,
        "stops counting once consent is withdrawn"
    );

    let (_, facts) = store.records(&engine.rulebook, p).await.expect("records");
    assert_eq!(facts.len(), 4);
    assert_eq!(store.counts().await.expect("counts").facts, 4);
    assert_consistent(store, &engine).await;
}

/// Items that need review wait, do not count, and take effect only when
/// a principal other than the submitter approves them.
pub async fn check_review(store: &dyn Store) {
    let engine = engine();
    let org = example_organisation();
    let serious = judgment(&engine, "zhi-1", org, "2026-03-15", "(2026) Jing 01 Zhi 1");
    let submission = Submission {
        item: Item::Record(serious.clone()),
        submitted_by: "court.clerk".into(),
        review: ReviewNeed::Required,
    };
    let outcomes = ingest(store, &engine, vec![submission.clone()]).await;
    assert_eq!(outcomes, vec![Outcome::PendingReview]);
    assert_eq!(
        state(store, org).await,
        None,
        "a pending record does not count"
    );
    assert_eq!(store.counts().await.expect("counts").pending, 1);
    // A replay says it is still waiting.
    assert_eq!(
        ingest(store, &engine, vec![submission]).await,
        vec![Outcome::PendingReview]
    );
    // A fact about it waits for it: the record is not in effect yet.
    let early = fact(
        org,
        "2026-03-16",
        "court.beijing-1",
        FactKind::Repaired {
            record: serious.key.clone(),
            statement: None,
        },
    );
    assert_eq!(
        ingest(store, &engine, vec![submit(early)]).await,
        vec![Outcome::UnknownRecord]
    );

    let pending = store
        .pending(&engine.rulebook, None, 10)
        .await
        .expect("pending");
    assert_eq!(pending.len(), 1);
    let key = ItemKey::Record(serious.key.clone());
    assert_eq!(pending[0].key, key);
    assert_eq!(pending[0].item, Item::Record(serious.clone()));
    assert_eq!(pending[0].submitted_by, "court.clerk");

    let own = store
        .approve(&engine, &key, "court.clerk", review_day(), Vec::new())
        .await;
    assert!(
        matches!(own, Err(crate::StoreError::Conflict(_))),
        "self-approval must be refused: {own:?}"
    );
    assert_eq!(state(store, org).await, None);

    let approved = store
        .approve(
            &engine,
            &key,
            "reviewer.wang",
            review_day(),
            vec![audit("approve", None)],
        )
        .await
        .expect("approval");
    assert_eq!(approved.key, key);
    // The decision is part of the subject's history: its access log shows it.
    let log = store
        .audit_for_subject(org, 0, 100)
        .await
        .expect("the subject's audit entries");
    assert!(
        log.iter().any(|e| e.entry.action == "approve"),
        "an approval is logged about its subject: {log:?}"
    );
    let now = state(store, org).await.expect("a state once approved");
    let standing = engine.evaluate(&now, day("2026-04-01"));
    assert_eq!(standing.lists, vec![socred_core::Name::new(DEFAULTERS)]);
    assert!(store
        .pending(&engine.rulebook, None, 10)
        .await
        .expect("pending")
        .is_empty());
    let again = store
        .approve(&engine, &key, "reviewer.li", review_day(), Vec::new())
        .await;
    assert!(
        matches!(again, Err(crate::StoreError::Conflict(_))),
        "{again:?}"
    );
    let counts = store.counts().await.expect("counts");
    assert_eq!((counts.pending, counts.records), (0, 1));

    // Rejection: never counts, and the key stays taken.
    let second = judgment(&engine, "zhi-2", org, "2026-05-01", "(2026) Jing 01 Zhi 2");
    let waiting = Submission {
        item: Item::Record(second.clone()),
        submitted_by: "court.clerk".into(),
        review: ReviewNeed::Required,
    };
    ingest(store, &engine, vec![waiting.clone()]).await;
    let second_key = ItemKey::Record(second.key.clone());
    let page = store
        .pending(&engine.rulebook, Some(pending[0].seq), 10)
        .await
        .expect("pending");
    assert_eq!(
        page.iter().map(|p| &p.key).collect::<Vec<_>>(),
        vec![&second_key]
    );
    let own = store
        .reject(&engine, &second_key, "court.clerk", "typo", Vec::new())
        .await;
    assert!(
        matches!(own, Err(crate::StoreError::Conflict(_))),
        "{own:?}"
    );
    store
        .reject(
            &engine,
            &second_key,
            "reviewer.wang",
            "wrong case number",
            Vec::new(),
        )
        .await
        .expect("rejection");
    assert_eq!(state(store, org).await.expect("state").records.len(), 1);
    let replay = ingest(store, &engine, vec![waiting]).await;
    assert!(
        matches!(&replay[..], [Outcome::Conflict { reason }] if reason.contains("rejected")),
        "{replay:?}"
    );
    let missing = ItemKey::Record(record_key("court.beijing-1", "never-sent"));
    let result = store
        .approve(&engine, &missing, "reviewer.wang", review_day(), Vec::new())
        .await;
    assert!(
        matches!(result, Err(crate::StoreError::NotFound(_))),
        "{result:?}"
    );

    // Facts can need review too.
    let repair = Submission {
        item: fact(
            org,
            "2026-09-01",
            "reviewer.li",
            FactKind::Repaired {
                record: serious.key.clone(),
                statement: None,
            },
        ),
        submitted_by: "reviewer.li".into(),
        review: ReviewNeed::Required,
    };
    assert_eq!(
        ingest(store, &engine, vec![repair.clone()]).await,
        vec![Outcome::PendingReview]
    );
    let repair_key = repair.item.key();
    store
        .approve(
            &engine,
            &repair_key,
            "reviewer.wang",
            review_day(),
            Vec::new(),
        )
        .await
        .expect("approval of a fact");
    let repaired = state(store, org).await.expect("state");
    assert_eq!(repaired.records[0].repaired_at(), Some(day("2026-09-01")));
    assert_consistent(store, &engine).await;
}

/// [`Store::pending_about`] gives what waits for review about one subject
/// and nothing about another: records and facts, in queue order, until a
/// reviewer decides them.
pub async fn check_pending_about(store: &dyn Store) {
    let engine = engine();
    let org = example_organisation();
    let other = organisation(7);
    let review = |item: Item| Submission {
        item,
        submitted_by: "court.clerk".into(),
        review: ReviewNeed::Required,
    };
    let in_effect = fare(&engine, "fe-1", org, "2026-02-01");
    let first = judgment(&engine, "zhi-1", org, "2026-03-15", "(2026) Jing 01 Zhi 1");
    let theirs = judgment(
        &engine,
        "zhi-9",
        other,
        "2026-03-15",
        "(2026) Jing 01 Zhi 9",
    );
    let mut batch = records(&[&in_effect]);
    batch.push(review(Item::Record(first.clone())));
    batch.push(review(Item::Record(theirs.clone())));
    assert_eq!(
        ingest(store, &engine, batch).await,
        vec![
            Outcome::Stored,
            Outcome::PendingReview,
            Outcome::PendingReview
        ]
    );
    let application = review(fact(
        org,
        "2026-04-01",
        "subject.org",
        FactKind::Repaired {
            record: in_effect.key.clone(),
            statement: Some(Arc::from("paid the fare; will keep the rules")),
        },
    ));
    assert_eq!(
        ingest(store, &engine, vec![application.clone()]).await,
        vec![Outcome::PendingReview]
    );
    let keys = |items: Vec<crate::PendingItem>| -> Vec<ItemKey> {
        items.into_iter().map(|item| item.key).collect()
    };
    let about = |subject| store.pending_about(&engine.rulebook, subject, 10);
    assert_eq!(
        keys(about(org).await.expect("pending about the company")),
        vec![ItemKey::Record(first.key.clone()), application.item.key()],
        "the company's record and its repair application, oldest first"
    );
    assert_eq!(
        keys(about(other).await.expect("pending about the other")),
        vec![ItemKey::Record(theirs.key.clone())]
    );
    assert!(about(example_person()).await.expect("nothing").is_empty());
    let one = store
        .pending_about(&engine.rulebook, org, 1)
        .await
        .expect("a page of one");
    assert_eq!(keys(one), vec![ItemKey::Record(first.key.clone())]);
    // Decided items leave it.
    store
        .approve(
            &engine,
            &ItemKey::Record(first.key.clone()),
            "reviewer.wang",
            review_day(),
            Vec::new(),
        )
        .await
        .expect("approval");
    store
        .reject(
            &engine,
            &application.item.key(),
            "reviewer.wang",
            "no proof attached",
            Vec::new(),
        )
        .await
        .expect("rejection");
    assert!(about(org).await.expect("nothing left").is_empty());
    assert_eq!(about(other).await.expect("still waiting").len(), 1);
}

/// What [`Store::state_marked`] hands out (from memory, perhaps) is what
/// [`Store::state`] reads after every write: a subject's own records, and
/// the entries that reach it from a company, which end for the old legal
/// representative and reach the new one when a new registration names
/// another. Groups resting on this store's own marks are appended.
pub async fn check_marked_reads(store: &dyn Store) {
    let engine = engine();
    let org = example_organisation();
    let (rep, next_rep) = (example_person(), person(2));
    let same = |subject: SubjectId| async move {
        let (marked, mark) = store.state_marked(subject).await.expect("marked read");
        let read = store.state(subject).await.expect("read");
        assert_eq!(
            marked.as_deref(),
            read.as_deref(),
            "{subject}: a marked read differs from a read"
        );
        let again = store.state_marked(subject).await.expect("marked read").0;
        assert_eq!(again.as_deref(), read.as_deref(), "{subject}, read again");
        (marked, mark)
    };
    for subject in [org, rep, next_rep] {
        assert_eq!(same(subject).await.0, None, "{subject} before any record");
    }
    let registration = record(
        &engine,
        "reg-1",
        org,
        REGISTRATION,
        "2020-01-01",
        fields(&[("legal_representative", text(rep.as_str()))]),
    );
    let entry = judgment(&engine, "zhi-9", org, "2026-03-16", "(2026) Jing 01 Zhi 9");
    ingest(store, &engine, records(&[&registration, &entry])).await;
    let (reached, rep_mark) = same(rep).await;
    assert_eq!(reached.expect("reached").derived.len(), 1);
    assert_eq!(same(next_rep).await.0, None);

    let handover = record(
        &engine,
        "reg-2",
        org,
        REGISTRATION,
        "2026-04-01",
        fields(&[("legal_representative", text(next_rep.as_str()))]),
    );
    ingest(store, &engine, records(&[&handover])).await;
    let (now_reached, _) = same(next_rep).await;
    assert_eq!(now_reached.expect("reached").derived.len(), 1);
    // The old representative stays reached for the time it was one, and
    // no longer: its entry ends on the day the new registration was.
    let (former, _) = same(rep).await;
    let former = former.expect("the old representative, for its time");
    assert_eq!(former.derived.len(), 1);
    assert_eq!(
        former.derived[0].span.end, handover.decided_at,
        "the company no longer reaches its old representative"
    );
    let (org_state, org_mark) = same(org).await;
    assert_eq!(org_state.expect("the company").records.len(), 3);

    let mut draft = AuditDraft {
        at_ms: 1_772_000_000_000,
        actor: "agency.rail".into(),
        role: "agency".into(),
        purpose: "ticket_sale".into(),
        action: "decide".into(),
        subject: Some(rep),
        detail: "first".into(),
    };
    let first = draft.clone();
    draft.detail = "second".into();
    let appended = store
        .append_audit_marked(vec![
            (vec![first], rep_mark),
            (vec![draft], ReadMark::oldest([org_mark, ReadMark::FRESH])),
        ])
        .await
        .expect("append marked groups");
    assert_eq!(appended, vec![true, true], "nothing else wrote meanwhile");
    assert_eq!(audit_details(store).await, ["first", "second"]);
}

/// The records held, by type: in effect, retracted and waiting for review
/// they count; erased at the end of their retention they do not.
pub async fn check_held_record_types(store: &dyn Store) {
    let engine = engine();
    let p = person(31);
    assert_eq!(store.held_record_types().await, Ok(BTreeMap::new()));
    let first = fare(&engine, "held-1", p, "2026-01-10");
    let second = fare(&engine, "held-2", p, "2026-01-11");
    ingest(store, &engine, records(&[&first, &second])).await;
    let waiting = Submission {
        item: Item::Record(judgment(&engine, "held-3", p, "2026-01-12", "held case")),
        submitted_by: "court.clerk".into(),
        review: ReviewNeed::Required,
    };
    let retraction = fact(
        p,
        "2026-02-01",
        "provider.city",
        FactKind::Retracted {
            record: second.key.clone(),
        },
    );
    let outcomes = ingest(store, &engine, vec![waiting, submit(retraction)]).await;
    assert_eq!(outcomes, [Outcome::PendingReview, Outcome::Stored]);
    let held = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    };
    assert_eq!(
        store.held_record_types().await,
        Ok(held(&[(FARE_EVASION, 2), (JUDGMENT, 1)]))
    );
    let erased = store
        .erase(&engine, vec![p], day("2031-06-01"), audit("erase", None))
        .await
        .expect("erasure");
    assert_eq!((erased.records, erased.pending), (2, 1), "{erased:?}");
    assert_eq!(store.held_record_types().await, Ok(BTreeMap::new()));
}

/// The details of the first audit entries, in order.
/// Erasure at the end of retention: a person's old record and a retracted
/// one (with its retraction) go, a company's registration and listing go
/// once both are past retention (its entry reached its representative
/// long ago), a subject with nothing old keeps everything; each erased
/// record leaves a tombstone that refuses a resent copy; counts, audit and
/// states follow, and a second run finds nothing.
pub async fn check_erasure(store: &dyn Store) {
    let engine = engine();
    let (p, representative, q) = (person(901), person(902), person(903));
    let company = organisation(77);
    let old = fare(&engine, "fare-2018", p, "2018-03-01");
    let new = fare(&engine, "fare-2024", p, "2024-05-01");
    let retracted = judgment(&engine, "zhi-2018", p, "2018-06-01", "(2018) case");
    let registration = record(
        &engine,
        "reg-2017",
        company,
        REGISTRATION,
        "2017-01-05",
        fields(&[(
            "legal_representative",
            Value::Text(Arc::from(representative.as_str())),
        )]),
    );
    let listing = judgment(&engine, "zhi-2019", company, "2019-02-01", "(2019) case");
    let recent = fare(&engine, "fare-2025", q, "2025-01-01");
    let mut batch = records(&[&old, &new, &retracted, &registration, &listing, &recent]);
    batch.push(submit(fact(
        p,
        "2018-07-01",
        "court.beijing-1",
        FactKind::Retracted {
            record: retracted.key.clone(),
        },
    )));
    ingest(store, &engine, batch).await;
    // Two records a reviewer rejects: one decided long ago, one recently;
    // and a subject that has nothing but a rejected record.
    let rejected_old = judgment(&engine, "zhi-rej-2019", p, "2019-04-01", "(2019) rej");
    let rejected_new = judgment(&engine, "zhi-rej-2025", p, "2025-04-01", "(2025) rej");
    let only_rejected = person(904);
    let rejected_alone = judgment(
        &engine,
        "zhi-rej-alone",
        only_rejected,
        "2019-05-01",
        "(2019) alone",
    );
    for record in [&rejected_old, &rejected_new, &rejected_alone] {
        let outcomes = ingest(
            store,
            &engine,
            vec![Submission {
                review: ReviewNeed::Required,
                ..submit(Item::Record(record.clone()))
            }],
        )
        .await;
        assert_eq!(outcomes, vec![Outcome::PendingReview]);
        store
            .reject(
                &engine,
                &ItemKey::Record(record.key.clone()),
                "reviewer.wang",
                "not this subject",
                Vec::new(),
            )
            .await
            .unwrap_or_else(|e| panic!("reject: {e}"));
    }
    // And one that waits for review still, though it is long past its
    // retention.
    let waiting_old = judgment(&engine, "zhi-wait-2019", p, "2019-07-01", "(2019) wait");
    let waiting = ingest(
        store,
        &engine,
        vec![Submission {
            review: ReviewNeed::Required,
            ..submit(Item::Record(waiting_old.clone()))
        }],
    )
    .await;
    assert_eq!(waiting, vec![Outcome::PendingReview]);
    // A repair application about the old fare evasion, never decided: it
    // goes with the record.
    let application = fact(
        p,
        "2019-01-02",
        "subject",
        FactKind::Repaired {
            record: old.key.clone(),
            statement: Some(Arc::from("paid the fare")),
        },
    );
    let applied = ingest(
        store,
        &engine,
        vec![Submission {
            review: ReviewNeed::Required,
            ..submit(application)
        }],
    )
    .await;
    assert_eq!(applied, vec![Outcome::PendingReview]);
    // A subject with a recent record in its file and an old one retracted:
    // nothing in its file is past retention, the retracted record is.
    let with_retraction = person(905);
    let live = fare(&engine, "fare-2025-905", with_retraction, "2025-02-01");
    let withdrawn = judgment(
        &engine,
        "zhi-2018-905",
        with_retraction,
        "2018-03-01",
        "(2018) 905",
    );
    let mut batch = records(&[&live, &withdrawn]);
    batch.push(submit(fact(
        with_retraction,
        "2018-04-01",
        "court.beijing-1",
        FactKind::Retracted {
            record: withdrawn.key.clone(),
        },
    )));
    ingest(store, &engine, batch).await;
    let mut with_rejected = store
        .subjects_not_in_effect(None, Day::MAX, 10)
        .await
        .expect("rejected subjects");
    with_rejected.sort();
    let mut expected_rejected = vec![p, only_rejected, with_retraction];
    expected_rejected.sort();
    assert_eq!(with_rejected, expected_rejected);
    // By the day the records were decided: in 2018 only the retracted
    // ones (decided that year) were; before, none.
    assert_eq!(not_in_effect_by(store, "2018-12-31").await, {
        let mut retracted = vec![p, with_retraction];
        retracted.sort();
        retracted
    });
    assert_eq!(not_in_effect_by(store, "2017-12-31").await, Vec::new());
    let before = store.counts().await.expect("counts");
    let today = day("2026-01-01");
    let p_before = state(store, p).await.expect("state");
    // The subjects erasure has work for, by the day kept beside each
    // state: those whose file holds a record past retention, in order of
    // that day, the same a page at a time.
    let everyone = [
        p,
        company,
        q,
        representative,
        only_rejected,
        with_retraction,
    ];
    let mut expected_due = Vec::new();
    for subject in everyone {
        if let Some(state) = state(store, subject).await {
            if let Some(first) = state.retention_ends().filter(|&d| d <= today) {
                expected_due.push((first, subject));
            }
        }
    }
    expected_due.sort();
    assert!(
        expected_due.iter().any(|(_, s)| *s == p),
        "{expected_due:?}"
    );
    assert!(
        !expected_due.iter().any(|(_, s)| *s == q),
        "{expected_due:?}"
    );
    let due = store
        .subjects_past_retention(today, None, 100)
        .await
        .expect("subjects past retention");
    assert_eq!(due, expected_due);
    let mut paged = Vec::new();
    let mut after = None;
    while let Some(&next) = store
        .subjects_past_retention(today, after, 1)
        .await
        .expect("a page of subjects past retention")
        .first()
    {
        paged.push(next);
        after = Some(next);
    }
    assert_eq!(paged, expected_due, "one at a time");
    let earlier = store
        .subjects_past_retention(day("2019-01-01"), None, 100)
        .await
        .expect("subjects past retention");
    assert!(
        earlier.is_empty(),
        "nothing was past retention in 2019: {earlier:?}"
    );

    // A record past retention waiting for review may not take effect: its
    // approval is refused, and it stays waiting until erasure takes it.
    let late = store
        .approve(
            &engine,
            &ItemKey::Record(waiting_old.key.clone()),
            "reviewer.wang",
            today,
            vec![audit("approve", None)],
        )
        .await;
    assert!(
        matches!(&late, Err(crate::StoreError::Conflict(reason))
            if reason.contains("through 2024-06-30") && reason.contains("reject it")),
        "{late:?}"
    );
    assert_eq!(state(store, p).await.as_ref(), Some(&p_before));
    assert_eq!(store.counts().await.expect("counts"), before);

    let erasure = store
        .erase(
            &engine,
            vec![
                p,
                company,
                q,
                representative,
                only_rejected,
                with_retraction,
            ],
            today,
            audit("erase", None),
        )
        .await
        .unwrap_or_else(|e| panic!("erase: {e}"));
    assert_eq!(
        (
            erasure.subjects_examined,
            erasure.subjects,
            erasure.records,
            erasure.facts,
            erasure.rejected,
            erasure.pending,
            erasure.held_back
        ),
        (6, 4, 5, 3, 2, 1, 0),
        "{erasure:?}"
    );
    // A rejected record past retention is a tombstone; a recent one stays
    // rejected, as a resend of each says.
    for (record, word) in [
        (&rejected_old, "erased"),
        (&rejected_alone, "erased"),
        (&rejected_new, "rejected in review"),
    ] {
        match &ingest(store, &engine, records(&[record])).await[..] {
            [Outcome::Conflict { reason }] => assert!(reason.contains(word), "{reason}"),
            other => panic!("a resent rejected record gave {other:?}"),
        }
    }
    assert_eq!(
        store
            .subjects_not_in_effect(None, Day::MAX, 10)
            .await
            .expect("rejected subjects"),
        vec![p],
        "only the recent rejection is left"
    );
    assert_eq!(
        store
            .subjects_past_retention(today, None, 100)
            .await
            .expect("subjects past retention"),
        Vec::new(),
        "nothing past retention is left in any file"
    );
    let ids = |records: Vec<Record>| -> Vec<String> {
        records.iter().map(|r| r.key.id.to_string()).collect()
    };
    let (left, facts_left) = store.records(&engine.rulebook, p).await.expect("records");
    assert_eq!(
        (ids(left), facts_left.len()),
        (vec!["fare-2024".to_string()], 0)
    );
    let (left, _) = store
        .records(&engine.rulebook, company)
        .await
        .expect("records");
    assert!(left.is_empty(), "the company's records are past retention");
    let (left, _) = store.records(&engine.rulebook, q).await.expect("records");
    assert_eq!(ids(left), vec!["fare-2025".to_string()]);
    let p_after = state(store, p).await.expect("state");
    for on in ["2026-01-01", "2026-06-01"] {
        assert_eq!(
            score(&engine, &p_after, on),
            score(&engine, &p_before, on),
            "{on}"
        );
    }

    let after = store.counts().await.expect("counts");
    assert_eq!(
        (after.records, after.facts, after.pending),
        (before.records - 5, before.facts - 2, before.pending - 2)
    );
    // The erased record no longer waits for review.
    let approval = store
        .approve(
            &engine,
            &ItemKey::Record(waiting_old.key.clone()),
            "reviewer.wang",
            today,
            Vec::new(),
        )
        .await;
    assert!(
        matches!(&approval, Err(crate::StoreError::Conflict(reason)) if reason.contains("erased")),
        "{approval:?}"
    );
    let erased = store.audit(0, 100).await.expect("audit");
    let mut about: Vec<SubjectId> = erased
        .iter()
        .filter(|e| e.entry.action == "erase")
        .filter_map(|e| e.entry.subject)
        .collect();
    about.sort();
    let mut expected = vec![p, company, only_rejected, with_retraction];
    expected.sort();
    assert_eq!(
        about, expected,
        "one audit entry per subject that lost records"
    );
    assert!(
        erased.iter().any(|e| e.entry.detail.contains("fare-2018")),
        "the entry names the erased records"
    );

    // The tombstone keeps the key taken: a resent copy is refused.
    match &ingest(store, &engine, records(&[&old])).await[..] {
        [Outcome::Conflict { reason }] => assert!(reason.contains("erased"), "{reason}"),
        other => panic!("a resent erased record gave {other:?}"),
    }
    assert_eq!(
        ingest(store, &engine, records(&[&new])).await,
        vec![Outcome::Duplicate]
    );
    let dispute = fact(
        p,
        "2026-01-02",
        "provider.city",
        FactKind::Disputed {
            record: old.key.clone(),
            statement: Some(Arc::from("not me")),
        },
    );
    assert_eq!(
        ingest(store, &engine, vec![submit(dispute)]).await,
        vec![Outcome::UnknownRecord]
    );
    // A later record folds with what is left, not with what a cache of
    // the history may still hold.
    let later = fare(&engine, "fare-2026", p, "2026-01-05");
    ingest(store, &engine, records(&[&later])).await;
    let folded = state(store, p).await.expect("state");
    let kept: Vec<&str> = folded.records.iter().map(|r| &*r.key.id).collect();
    assert_eq!(kept, vec!["fare-2024", "fare-2026"]);
    assert_consistent(store, &engine).await;

    let again = store
        .erase(&engine, vec![p, company, q], today, audit("erase", None))
        .await
        .unwrap_or_else(|e| panic!("erase: {e}"));
    assert_eq!((again.subjects, again.records, again.facts), (0, 0, 0));
}

pub async fn audit_details(store: &dyn Store) -> Vec<String> {
    store
        .audit(0, 100)
        .await
        .expect("audit")
        .into_iter()
        .map(|entry| entry.entry.detail)
        .collect()
}

/// The case of the judgment that lists the company of
/// [`company_reaching_its_representative`].
const REACHING_CASE: &str = "(2026) Jing 01 Zhi 123";

/// Stores a company (`example_organisation`) registered with
/// `example_person` as its legal representative and on the defaulter list
/// by record `zhi-123`, so that its entry reaches the representative;
/// returns (company, representative, the listing record's key). For
/// backends' own tests too.
pub async fn company_reaching_its_representative(
    store: &dyn Store,
) -> (SubjectId, SubjectId, RecordKey) {
    let engine = engine();
    let org = example_organisation();
    let rep = example_person();
    let registration = record(
        &engine,
        "reg-1",
        org,
        REGISTRATION,
        "2020-01-01",
        fields(&[("legal_representative", text(rep.as_str()))]),
    );
    let entry = judgment(&engine, "zhi-123", org, "2026-03-16", REACHING_CASE);
    ingest(store, &engine, records(&[&registration, &entry])).await;
    (org, rep, entry.key)
}

/// A company's list entry reaches its legal representative while it
/// lasts, and the representative's entry goes when the company's does.
pub async fn check_derived_entries(store: &dyn Store) {
    let engine = engine();
    let (org, rep, entry) = company_reaching_its_representative(store).await;
    let case = REACHING_CASE;

    let reached = state(store, rep)
        .await
        .expect("the representative is reached");
    assert_eq!(reached.derived.len(), 1);
    assert_eq!(reached.derived[0].via, org);
    assert!(reached.records.is_empty());
    let on = |d: &'static str| async move {
        let members = store
            .list_members(DEFAULTERS, day(d), None, 100)
            .await
            .expect("list members");
        members.into_iter().map(|(s, _)| s).collect::<Vec<_>>()
    };
    let mut both = vec![org, rep];
    both.sort();
    assert_eq!(on("2026-04-01").await, both);
    assert_eq!(
        on("2026-03-15").await,
        Vec::<SubjectId>::new(),
        "not before the judgment"
    );
    let standing = engine.evaluate(&reached, day("2026-04-01"));
    assert_eq!(standing.lists, vec![socred_core::Name::new(DEFAULTERS)]);
    // Read together, in the order asked, the reached one's entries too.
    let together = store
        .states_of(&[rep, person(999), org, rep])
        .await
        .expect("states");
    let together: Vec<_> = together
        .into_iter()
        .map(|s| s.map(|s| (*s).clone()))
        .collect();
    let org_state = state(store, org).await.expect("the company's state");
    assert_eq!(
        together,
        vec![
            Some(reached.clone()),
            None,
            Some(org_state.clone()),
            Some(reached.clone())
        ]
    );
    // And for an answer that its audit entries then vouch for.
    let (marked, _) = store
        .states_marked(&[org, person(999), rep])
        .await
        .expect("states");
    let marked: Vec<_> = marked
        .into_iter()
        .map(|s| s.map(|s| (*s).clone()))
        .collect();
    assert_eq!(marked, vec![Some(org_state), None, Some(reached.clone())]);

    // Fulfilled on Friday 2026-05-01: off the list three working days later.
    let fulfilled = record(
        &engine,
        "done-123",
        org,
        FULFILLED,
        "2026-05-01",
        fields(&[("case_no", text(case))]),
    );
    ingest(store, &engine, records(&[&fulfilled])).await;
    let after = state(store, rep).await.expect("state");
    assert_eq!(after.derived[0].span.end, day("2026-05-06"));
    assert_eq!(on("2026-05-05").await, both);
    assert_eq!(on("2026-05-06").await, Vec::<SubjectId>::new());
    assert!(engine.evaluate(&after, day("2026-05-06")).lists.is_empty());

    // A disputed entry is suspended: off the list while the dispute is open.
    let dispute = fact(
        org,
        "2026-04-10",
        org.as_str(),
        FactKind::Disputed {
            record: entry.clone(),
            statement: None,
        },
    );
    ingest(store, &engine, vec![submit(dispute)]).await;
    assert_eq!(on("2026-04-01").await, both);
    assert_eq!(on("2026-04-20").await, Vec::<SubjectId>::new());

    // Retracted: the entry vanishes from both files and the list.
    let retraction = fact(
        org,
        "2026-06-01",
        "court.beijing-1",
        FactKind::Retracted {
            record: entry.clone(),
        },
    );
    ingest(store, &engine, vec![submit(retraction)]).await;
    assert_eq!(
        state(store, rep).await,
        None,
        "nothing reaches the representative any more"
    );
    assert_eq!(on("2026-04-01").await, Vec::<SubjectId>::new());
    assert_consistent(store, &engine).await;
}

/// Each write stamps the states it writes, and those its entries reach or
/// stop reaching, with the instant it began; `subjects_changed` pages
/// the subjects stamped since an instant by identifier.
pub async fn check_subjects_changed(store: &dyn Store) {
    let engine = engine();
    let changed = |since: i64| async move {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .subjects_changed(since, after, 2)
                .await
                .expect("changed subjects");
            let Some(&last) = page.last() else { break };
            assert!(page.len() <= 2, "a page holds at most the limit");
            after = Some(last);
            all.extend(page);
        }
        assert!(
            all.windows(2).all(|w| w[0] < w[1]),
            "by identifier: {all:?}"
        );
        all
    };
    // Stamps are in milliseconds: what comes after a wait is stamped later.
    let next_millisecond = || async {
        let now = crate::now_ms();
        while crate::now_ms() <= now {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        crate::now_ms()
    };
    let start = crate::now_ms();
    let (org, rep, entry) = company_reaching_its_representative(store).await;
    assert_eq!(
        changed(start).await,
        vec![org],
        "the representative has no state of its own"
    );
    // A subject of its own, and the representative with a record.
    let own = person(1);
    let fares = [
        fare(&engine, "f-own", own, "2026-02-01"),
        fare(&engine, "f-rep", rep, "2026-02-01"),
    ];
    ingest(store, &engine, records(&[&fares[0], &fares[1]])).await;
    let mut three = vec![org, rep, own];
    three.sort();
    assert_eq!(changed(start).await, three);
    assert_eq!(
        changed(i64::MIN).await,
        store.subjects(None, 100).await.expect("subjects"),
        "every subject since the first instant"
    );

    // The company's entry, retracted, no longer reaches the
    // representative: both change, the other subject does not.
    let before_retraction = next_millisecond().await;
    let retraction = fact(
        org,
        "2026-06-01",
        "court.beijing-1",
        FactKind::Retracted { record: entry },
    );
    ingest(store, &engine, vec![submit(retraction)]).await;
    let mut both = vec![org, rep];
    both.sort();
    assert_eq!(changed(before_retraction).await, both);
    assert_eq!(changed(i64::MAX).await, Vec::new());
}

/// `list_members` filters by day and pages by subject.
pub async fn check_list_members(store: &dyn Store) {
    let engine = engine();
    let subjects: Vec<SubjectId> = (1..=5).map(person).collect();
    let batch: Vec<Record> = subjects
        .iter()
        .enumerate()
        .map(|(i, s)| {
            judgment(
                &engine,
                &format!("zhi-{i}"),
                *s,
                &format!("2026-0{}-01", i + 1),
                &format!("case {i}"),
            )
        })
        .collect();
    let outcomes = ingest(store, &engine, records(&batch.iter().collect::<Vec<_>>())).await;
    assert_eq!(outcomes, vec![Outcome::Stored; 5]);
    let mut sorted = subjects.clone();
    sorted.sort();

    let members = store
        .list_members(DEFAULTERS, day("2026-03-15"), None, 100)
        .await
        .expect("members");
    let mut expected: Vec<SubjectId> = subjects[..3].to_vec();
    expected.sort();
    assert_eq!(
        members.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        expected
    );
    let (_, span) = members
        .iter()
        .find(|(s, _)| *s == subjects[0])
        .expect("member");
    assert_eq!(
        (span.start, span.end),
        (day("2026-01-01"), day("2028-01-01"))
    );

    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_members(DEFAULTERS, day("2026-12-01"), after, 2)
            .await
            .expect("members");
        assert!(page.len() <= 2);
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        paged.extend(page.into_iter().map(|(s, _)| s));
    }
    assert_eq!(paged, sorted);
    // The two-year maximum ends the first entry on 2028-01-01.
    let late = store
        .list_members(DEFAULTERS, day("2028-01-01"), None, 100)
        .await
        .expect("members");
    assert!(!late.iter().any(|(s, _)| *s == subjects[0]));
    assert_eq!(late.len(), 4);
    assert!(store
        .list_members("no_such_list", day("2026-12-01"), None, 100)
        .await
        .expect("members")
        .is_empty());
}

/// `subjects` lists every subject with a state once, in order, by pages.
pub async fn check_subjects_paging(store: &dyn Store) {
    let engine = engine();
    let mut all: Vec<SubjectId> = (0..25).map(person).collect();
    let batch: Vec<Record> = all
        .iter()
        .enumerate()
        .map(|(i, s)| fare(&engine, &format!("f{i}"), *s, "2026-01-01"))
        .collect();
    ingest(store, &engine, records(&batch.iter().collect::<Vec<_>>())).await;
    all.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.subjects(after, 7).await.expect("subjects");
        let Some(last) = page.last() else { break };
        after = Some(*last);
        seen.extend(page);
    }
    assert_eq!(seen, all);
    assert_eq!(store.counts().await.expect("counts").subjects, 25);
    // A page's records at once are each subject's, in the page's order; a
    // subject without a state has none.
    let mut page: Vec<SubjectId> = all.iter().rev().take(5).copied().collect();
    page.push(person(99));
    let at_once = store
        .records_of(&engine.rulebook, &page)
        .await
        .expect("records of a page");
    assert_eq!(at_once.len(), page.len());
    for (subject, (records, facts)) in page.iter().zip(&at_once) {
        let one = store
            .records(&engine.rulebook, *subject)
            .await
            .expect("records");
        assert_eq!(&one, &(records.clone(), facts.clone()), "{subject}");
    }
    assert_eq!(at_once[0].0.len(), 1);
    assert!(at_once[5].0.is_empty());
    assert!(all.iter().all(|s| s.kind() == SubjectKind::Person));
}

/// A write that folds with a rulebook other than the one the store names
/// as in force (another server installed a newer one) is refused whole,
/// and leaves the store as it was; one with the rulebook in force, or on a
/// store that names none (as the other checks write), is taken.
pub async fn check_rulebook_in_force(store: &dyn Store) {
    let engine = engine();
    let first = fare(&engine, "f-1", person(1), "2026-01-01");
    assert_eq!(
        ingest(store, &engine, records(&[&first])).await,
        vec![Outcome::Stored]
    );
    store
        .put_rulebook(
            &engine.rulebook.label(),
            "the engine's",
            "admin",
            Vec::new(),
        )
        .await
        .expect("upload");
    let pending = judgment(&engine, "zhi-1", person(2), "2026-03-16", "case 1");
    let waits = Submission {
        review: ReviewNeed::Required,
        ..submit(Item::Record(pending.clone()))
    };
    assert_eq!(
        ingest(store, &engine, vec![waits]).await,
        vec![Outcome::PendingReview]
    );

    store
        .put_rulebook("city@9", "newer", "admin", Vec::new())
        .await
        .expect("upload");
    let before = store.counts().await.expect("counts");
    let changed = |result: Result<(), crate::StoreError>, what: &str| match result {
        Err(crate::StoreError::RulebookChanged(reason)) => assert!(
            reason.contains("city@9") && reason.contains(&engine.rulebook.label()),
            "{what}: {reason}"
        ),
        other => panic!("{what} under a rulebook no longer in force: {other:?}"),
    };
    let third = fare(&engine, "f-3", person(3), "2026-01-03");
    changed(
        store
            .ingest(&engine, records(&[&third]), vec![audit("ingest", None)])
            .await
            .map(drop),
        "an ingest",
    );
    changed(
        store
            .approve(
                &engine,
                &ItemKey::Record(pending.key.clone()),
                "reviewer.wang",
                review_day(),
                Vec::new(),
            )
            .await
            .map(drop),
        "an approval",
    );
    changed(
        store
            .erase(
                &engine,
                vec![person(1)],
                day("2040-01-01"),
                audit("erase", None),
            )
            .await
            .map(drop),
        "an erasure",
    );
    changed(
        store.recompute_all(&engine).await.map(drop),
        "a recomputation",
    );
    assert_eq!(store.counts().await.expect("counts"), before);
    assert_eq!(state(store, person(3)).await, None);
    assert_eq!(state(store, person(2)).await, None, "still waiting");
    assert!(state(store, person(1)).await.is_some(), "not erased");
}

/// The first secret kept under a name stays: a later caller's fresh one
/// is not kept, and gets the first back.
pub async fn check_secrets(store: &dyn Store) {
    let first = store.secret("cursor", &[1; 32]).await.expect("a secret");
    assert_eq!(first, vec![1; 32]);
    let again = store.secret("cursor", &[2; 32]).await.expect("a secret");
    assert_eq!(again, vec![1; 32], "the first secret stays");
    let other = store.secret("other", &[3, 4]).await.expect("a secret");
    assert_eq!(other, vec![3, 4], "each name keeps its own");
    assert_eq!(
        store.secret("cursor", &[]).await.expect("a secret"),
        vec![1; 32]
    );
}

/// A lease is held by one holder until its time runs out: renewed by
/// it, refused to others meanwhile, taken over after; names apart.
pub async fn check_leases(store: &dyn Store) {
    const DRAW: &str = "publication";
    let lease = |holder: &'static str, now: i64, until: i64| async move {
        store
            .lease(DRAW, holder, now, until)
            .await
            .expect("a lease")
    };
    assert!(lease("a", 1_000, 2_000).await, "nobody held it");
    assert!(!lease("b", 1_500, 2_500).await, "a holds it until 2,000");
    assert!(lease("a", 1_900, 3_000).await, "its holder renews it");
    assert!(!lease("b", 2_500, 3_500).await, "renewed until 3,000");
    assert!(
        store
            .lease("other", "b", 2_500, 3_500)
            .await
            .expect("a lease"),
        "each name has its own"
    );
    assert!(lease("b", 3_000, 4_000).await, "a's time ran out");
    assert!(!lease("a", 3_100, 5_000).await, "b holds it now");
    assert!(lease("b", 3_200, 3_200).await, "b gives it up");
    assert!(lease("a", 3_200, 5_000).await, "given up, it is free");
}

/// The edition of a scheduled list: published whole, read in identifier
/// order a page at a time with the edition each page is of, replaced by
/// the next, and published once for a day under a rulebook however many
/// servers try; each publication is in the audit log.
/// The mark of the conformance suite's drawings ([`crate::Edition::mark_ms`]).
const MARK_MS: i64 = 1_780_000_000_000;

/// A drawing of the publication day `day` under `rulebook`, drawn on `drawn`.
fn drawing(day: Day, rulebook: &str, drawn: Day) -> crate::Drawing<'_> {
    crate::Drawing {
        day,
        rulebook,
        drawn,
        mark_ms: MARK_MS,
    }
}

pub async fn check_editions(store: &dyn Store) {
    use crate::EditionMember;
    const RED: &str = "exemplary_residents";
    let named = |n| EditionMember {
        subject: person(n),
        named: true,
    };
    let left_off = |n| EditionMember {
        subject: person(n),
        named: false,
    };
    // The subjects of a page and the publication day it is of.
    let page = |list: &'static str, after: Option<u16>, limit: usize| async move {
        store
            .edition_members(list, after.map(person), limit)
            .await
            .expect("members")
            .map(|page| (page.edition.day, page.members))
    };
    assert_eq!(store.edition(RED).await.expect("an edition"), None);
    assert_eq!(page(RED, None, 10).await, None);
    let monday = day("2026-06-01");
    let before = store
        .audit_head()
        .await
        .expect("head")
        .map_or(0, |(seq, _)| seq);
    let published = store
        .publish_edition(
            RED,
            drawing(monday, "rb@1", monday),
            vec![named(3), left_off(1), named(2), named(1), left_off(2)],
            vec![audit("publish_list", None)],
        )
        .await
        .expect("publish");
    assert!(published);
    assert_eq!(
        store.edition(RED).await.expect("an edition"),
        Some(crate::Edition {
            day: monday,
            rulebook: "rb@1".into(),
            drawn: monday,
            members: 3,
            mark_ms: Some(MARK_MS),
        }),
        "a subject given twice counts once"
    );
    let head = store
        .audit_head()
        .await
        .expect("head")
        .map_or(0, |(seq, _)| seq);
    assert_eq!(head, before + 1, "the publication is in the audit log");
    assert!(store
        .publish_edition(
            "other",
            drawing(monday, "rb@1", monday),
            vec![left_off(9)],
            Vec::new()
        )
        .await
        .expect("publish"));
    let all = store.editions().await.expect("editions");
    assert_eq!(
        all.iter()
            .map(|(list, edition)| (list.as_str(), edition.members))
            .collect::<Vec<_>>(),
        vec![("exemplary_residents", 3), ("other", 1)],
        "every list's edition, by list"
    );
    assert_eq!(
        page(RED, None, 2).await,
        Some((monday, vec![named(1), named(2)])),
        "identifier order; named if any mention says so"
    );
    assert_eq!(page(RED, Some(2), 2).await, Some((monday, vec![named(3)])));
    assert_eq!(page(RED, Some(3), 2).await, Some((monday, Vec::new())));
    assert_eq!(
        page("other", None, 10).await,
        Some((monday, vec![left_off(9)])),
        "each list has its own"
    );

    // The same day under the same rulebook again: another server's attempt.
    let again = store
        .publish_edition(
            RED,
            drawing(monday, "rb@1", monday),
            vec![named(4)],
            vec![audit("publish_list", None)],
        )
        .await
        .expect("publish");
    assert!(!again, "an edition is published once");
    assert_eq!(
        page(RED, None, 10).await,
        Some((monday, vec![named(1), named(2), named(3)]))
    );
    assert_eq!(
        store
            .audit_head()
            .await
            .expect("head")
            .map_or(0, |(seq, _)| seq),
        head,
        "nothing logged for an edition not published"
    );

    // Drawn again the next day, with what is known then: it replaces the
    // day before's.
    let tuesday = day("2026-06-02");
    assert!(store
        .publish_edition(
            RED,
            drawing(monday, "rb@1", tuesday),
            vec![named(1), left_off(2), named(3), named(5)],
            Vec::new()
        )
        .await
        .expect("publish"));
    assert_eq!(
        page(RED, None, 10).await,
        Some((monday, vec![named(1), left_off(2), named(3), named(5)]))
    );
    assert_eq!(
        store
            .edition(RED)
            .await
            .expect("an edition")
            .map(|e| e.drawn),
        Some(tuesday)
    );

    // The next week's edition, and a new rulebook's for the same day, each
    // replace the one before.
    let next = day("2026-06-08");
    assert!(store
        .publish_edition(
            RED,
            drawing(next, "rb@1", next),
            vec![named(4), named(2)],
            Vec::new()
        )
        .await
        .expect("publish"));
    assert_eq!(
        page(RED, None, 10).await,
        Some((next, vec![named(2), named(4)]))
    );
    assert!(store
        .publish_edition(RED, drawing(next, "rb@2", next), Vec::new(), Vec::new())
        .await
        .expect("publish"));
    assert_eq!(
        store.edition(RED).await.expect("an edition"),
        Some(crate::Edition {
            day: next,
            rulebook: "rb@2".into(),
            drawn: next,
            members: 0,
            mark_ms: Some(MARK_MS),
        })
    );
    assert_eq!(
        page(RED, None, 10).await,
        Some((next, Vec::new())),
        "an empty edition holds nobody"
    );
}

/// Principals are found by the hash of their token, never by the token.
pub async fn check_principals(store: &dyn Store) {
    let court = Principal {
        id: "court.beijing-1".into(),
        name: "Beijing No. 1 Intermediate People's Court".into(),
        role: Role::Provider,
        scope: Some("court.beijing-1".into()),
        record_types: vec![JUDGMENT.into(), FULFILLED.into()],
        revoked: false,
        valid_until: None,
    };
    // A token that works until a day keeps that day.
    let mut auditor = Principal {
        id: "auditor.1".into(),
        name: "Audit office".into(),
        role: Role::Auditor,
        scope: None,
        record_types: Vec::new(),
        revoked: false,
        valid_until: Some(day("2027-06-30")),
    };
    let hash = hash_token("secret-court-token");
    assert_ne!(hash, "secret-court-token");
    store
        .put_principal(&court, &hash, vec![audit("put_principal", None)])
        .await
        .expect("put");
    store
        .put_principal(&auditor, &hash_token("auditor-token"), Vec::new())
        .await
        .expect("put");
    assert_eq!(
        store.principal_by_token_hash(&hash).await.expect("lookup"),
        Some(court.clone())
    );
    assert_eq!(
        store
            .principal_by_token_hash(&hash_token("auditor-token"))
            .await
            .expect("lookup"),
        Some(auditor.clone())
    );
    // Replaced without a last day, it has none.
    auditor.valid_until = None;
    store
        .put_principal(&auditor, &hash_token("auditor-token"), Vec::new())
        .await
        .expect("put");
    assert_eq!(
        store.principal("auditor.1").await.expect("by id"),
        Some(auditor.clone())
    );
    assert_eq!(
        store
            .principal_by_token_hash("secret-court-token")
            .await
            .expect("lookup"),
        None
    );
    assert_eq!(
        store
            .principal_by_token_hash(&hash_token("guess"))
            .await
            .expect("lookup"),
        None
    );
    let taken = store.put_principal(&auditor, &hash, Vec::new()).await;
    assert!(
        matches!(taken, Err(crate::StoreError::Conflict(_))),
        "{taken:?}"
    );

    store
        .revoke("court.beijing-1", Vec::new())
        .await
        .expect("revoke");
    assert_eq!(
        store.principal_by_token_hash(&hash).await.expect("lookup"),
        None
    );
    let all = store.principals().await.expect("principals");
    assert_eq!(
        all.iter()
            .map(|p| (p.id.as_str(), p.revoked))
            .collect::<Vec<_>>(),
        vec![("auditor.1", false), ("court.beijing-1", true)]
    );
    // By id, revoked or not.
    for listed in &all {
        assert_eq!(
            store.principal(&listed.id).await.expect("by id").as_ref(),
            Some(listed)
        );
    }
    assert_eq!(store.principal("nobody").await.expect("by id"), None);
    let missing = store.revoke("nobody", Vec::new()).await;
    assert!(
        matches!(missing, Err(crate::StoreError::NotFound(_))),
        "{missing:?}"
    );
    // A new token for the same principal replaces the old one and un-revokes it.
    let new_hash = hash_token("new-court-token");
    store
        .put_principal(&court, &new_hash, Vec::new())
        .await
        .expect("put");
    assert_eq!(
        store
            .principal_by_token_hash(&new_hash)
            .await
            .expect("lookup"),
        Some(court)
    );
    assert_eq!(
        store.principal_by_token_hash(&hash).await.expect("lookup"),
        None
    );
    assert_eq!(store.counts().await.expect("counts").principals, 2);
}

/// Every rulebook upload is kept; the last is current.
pub async fn check_rulebooks(store: &dyn Store) {
    assert_eq!(store.current_rulebook().await.expect("current"), None);
    store
        .put_rulebook("city@1", "text one", "admin", Vec::new())
        .await
        .expect("put");
    store
        .put_rulebook("city@2", "text two", "admin", Vec::new())
        .await
        .expect("put");
    assert_eq!(
        store.current_rulebook().await.expect("current"),
        Some(("city@2".into(), "text two".into()))
    );
    let clash = store
        .put_rulebook("city@1", "other text", "admin", Vec::new())
        .await;
    assert!(
        matches!(clash, Err(crate::StoreError::Conflict(_))),
        "{clash:?}"
    );
    store
        .put_rulebook("city@1", "text one", "admin.2", Vec::new())
        .await
        .expect("roll back");
    assert_eq!(
        store.current_rulebook().await.expect("current"),
        Some(("city@1".into(), "text one".into()))
    );
    let versions = store.rulebooks().await.expect("versions");
    let labels: Vec<(&str, &str)> = versions
        .iter()
        .map(|v| (v.label.as_str(), v.uploaded_by.as_str()))
        .collect();
    assert_eq!(
        labels,
        vec![
            ("city@1", "admin"),
            ("city@2", "admin"),
            ("city@1", "admin.2")
        ]
    );
    assert!(versions.iter().all(|v| v.uploaded_at_ms > 0));
    assert_eq!(store.counts().await.expect("counts").rulebooks, 3);
}

/// After a rulebook change, `recompute_all` refolds every subject.
pub async fn check_recompute_all(store: &dyn Store) {
    let engine = engine();
    let org = example_organisation();
    let rep = example_person();
    let registration = record(
        &engine,
        "reg-1",
        org,
        REGISTRATION,
        "2020-01-01",
        fields(&[("legal_representative", text(rep.as_str()))]),
    );
    let entry = judgment(&engine, "zhi-1", org, "2026-03-16", "case 1");
    let batch: Vec<Record> = (0..30)
        .map(|i| fare(&engine, &format!("f{i}"), person(i), "2026-01-01"))
        .collect();
    let mut all: Vec<&Record> = batch.iter().collect();
    all.push(&registration);
    all.push(&entry);
    ingest(store, &engine, records(&all)).await;
    assert_consistent(store, &engine).await;

    let stricter = Arc::new(Engine::new(Arc::new(rulebook(-20))));
    let stale = verify_states(store, &stricter).await.expect("verify");
    assert_eq!(
        stale.len(),
        31,
        "every state is stale under the new rulebook, the fare evaders' and the company's"
    );
    assert!(
        stale
            .iter()
            .all(|m| m.reason.contains("was folded with rulebook")),
        "{stale:?}"
    );
    let refolded = store.recompute_all(&stricter).await.expect("recompute");
    // Thirty fare evaders and the company; the representative has no state of its own.
    assert_eq!(refolded, 31);
    assert_consistent(store, &stricter).await;
    let evader = state(store, person(0)).await.expect("state");
    assert_eq!(score(&stricter, &evader, "2026-02-01"), Some(980));
    assert_eq!(
        state(store, rep)
            .await
            .expect("still reached")
            .derived
            .len(),
        1
    );
}

/// The subjects with records not in effect decided by `decided_by`.
async fn not_in_effect_by(store: &dyn Store, decided_by: &str) -> Vec<SubjectId> {
    store
        .subjects_not_in_effect(None, day(decided_by), 10)
        .await
        .expect("subjects with records decided by then")
}

/// A record that a reviewer's resolution of an objection retracted is not
/// in effect, as one its provider retracted: erasure finds its subject
/// among those with records not in effect. One whose objection was
/// upheld stays in effect, and its subject is not listed for it.
pub async fn check_resolved_retractions(store: &dyn Store) {
    use socred_core::record::Outcome as Resolution;
    let engine = engine();
    let (retracted, upheld) = (person(907), person(908));
    let old = |subject: SubjectId| {
        fare(
            &engine,
            &format!("fare-2018-{subject}"),
            subject,
            "2018-03-01",
        )
    };
    let (gone, kept) = (old(retracted), old(upheld));
    ingest(store, &engine, records(&[&gone, &kept])).await;
    let objection = |record: &Record| {
        submit(fact(
            record.subject,
            "2018-04-01",
            record.subject.as_str(),
            FactKind::Disputed {
                record: record.key.clone(),
                statement: None,
            },
        ))
    };
    let ruling = |record: &Record, outcome: Resolution| {
        submit(fact(
            record.subject,
            "2018-04-10",
            "reviewer.li",
            FactKind::Resolved {
                record: record.key.clone(),
                outcome,
                fields: None,
            },
        ))
    };
    let facts = vec![
        objection(&gone),
        objection(&kept),
        ruling(&gone, Resolution::Retracted),
        ruling(&kept, Resolution::Upheld),
    ];
    ingest(store, &engine, facts).await;
    assert_eq!(
        store
            .subjects_not_in_effect(None, Day::MAX, 10)
            .await
            .expect("subjects with records not in effect"),
        vec![retracted]
    );
    // Not before the record was decided.
    assert_eq!(not_in_effect_by(store, "2017-12-31").await, Vec::new());
}

/// Thirty fare evaders' records, then the upload of a rulebook that takes
/// more points for fare evasion (stored, no file recomputed yet): its
/// engine and label.
async fn thirty_then_a_stricter_upload(store: &dyn Store) -> (Arc<Engine>, String) {
    let engine = engine();
    let batch: Vec<Record> = (0..30)
        .map(|i| fare(&engine, &format!("f{i}"), person(i), "2026-01-01"))
        .collect();
    ingest(store, &engine, records(&batch.iter().collect::<Vec<_>>())).await;
    let stricter = Arc::new(Engine::new(Arc::new(rulebook(-20))));
    let label = stricter.rulebook.label();
    store
        .put_rulebook(&label, "stricter", "admin", Vec::new())
        .await
        .expect("upload");
    (stricter, label)
}

/// A rulebook upload records, with the rulebook, that every file is to be
/// recomputed with it; `recompute_all` with its engine finishes that.
pub async fn check_unfinished_recompute(store: &dyn Store) {
    assert_eq!(store.unfinished_recompute().await.expect("read"), None);
    let (stricter, label) = thirty_then_a_stricter_upload(store).await;
    assert_eq!(
        store.unfinished_recompute().await.expect("read"),
        Some(crate::UnfinishedRecompute {
            rulebook: label.clone(),
            after: String::new()
        })
    );
    // The upload alone refolds nothing: the store says what is left.
    let stale = verify_states(store, &stricter).await.expect("verify");
    assert_eq!(stale.len(), 30);
    assert_eq!(store.recompute_all(&stricter).await.expect("recompute"), 30);
    assert_eq!(store.unfinished_recompute().await.expect("read"), None);
    assert_consistent(store, &stricter).await;
}

/// A recomputation that stopped half-way (`progress` sets the last subject
/// refolded behind the store's back, as a crash leaves it) goes on after
/// that subject, and finishes.
pub async fn check_resumed_recompute<S: Store>(store: &S, progress: impl Fn(&S, &str)) {
    let (stricter, label) = thirty_then_a_stricter_upload(store).await;
    let mut subjects: Vec<SubjectId> = (0..30).map(person).collect();
    subjects.sort();
    let tenth = subjects[9].to_string();
    progress(store, &tenth);
    assert_eq!(
        store.unfinished_recompute().await.expect("read"),
        Some(crate::UnfinishedRecompute {
            rulebook: label,
            after: tenth
        })
    );
    assert_eq!(store.recompute_all(&stricter).await.expect("recompute"), 20);
    assert_eq!(store.unfinished_recompute().await.expect("read"), None);
    // The first ten were taken as done, and were not refolded again.
    let stale = verify_states(store, &stricter).await.expect("verify");
    let stale: Vec<SubjectId> = stale.iter().map(|m| m.subject).collect();
    assert_eq!(stale, subjects[..10]);
}

/// The audit log chains, verifies page by page, and catches an entry
/// changed behind the store's back (`tamper(store, seq)` does that).
pub async fn check_audit_chain<S: Store>(store: &S, tamper: impl Fn(&S, u64)) {
    let p = example_person();
    let o = example_organisation();
    let drafts: Vec<AuditDraft> = (0..12)
        .map(|i| {
            audit(
                &format!("read_file {i}"),
                Some(if i % 3 == 0 { o } else { p }),
            )
        })
        .collect();
    let seqs = store
        .append_audit(drafts[..5].to_vec())
        .await
        .expect("append");
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    let seqs = store
        .append_audit(drafts[5..].to_vec())
        .await
        .expect("append");
    assert_eq!(seqs, (6..=12).collect::<Vec<u64>>());
    assert!(store
        .append_audit(Vec::new())
        .await
        .expect("append nothing")
        .is_empty());

    let entries = store.audit(0, 100).await.expect("audit");
    assert_eq!(entries.len(), 12);
    assert_eq!(
        entries.iter().map(|e| &e.entry).collect::<Vec<_>>(),
        drafts.iter().collect::<Vec<_>>()
    );
    assert_eq!(verify_chain(&entries), Ok(()));
    let head = store.audit_head().await.expect("head");
    assert_eq!(head, entries.last().map(|e| (e.seq, e.hash.clone())));
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    loop {
        let page = store.audit(after, 5).await.expect("audit");
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            verifier.push(entry).expect("each page continues the chain");
        }
    }
    assert_eq!(verifier.finish(head.as_ref()), Ok(()));

    let about_o = store
        .audit_for_subject(o, 0, 100)
        .await
        .expect("audit for subject");
    assert_eq!(
        about_o.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 4, 7, 10]
    );
    let page = store
        .audit_for_subject(o, 4, 2)
        .await
        .expect("audit for subject");
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![7, 10]);

    tamper(store, 7);
    let entries = store.audit(0, 100).await.expect("audit");
    let broken = verify_chain(&entries).expect_err("a changed entry must break the chain");
    assert_eq!(broken.seq, 7);
}

/// A write's audit entries commit with it: ingestion, review, rulebook and
/// principal changes each append what they were given, in order.
pub async fn check_audit_with_writes(store: &dyn Store) {
    let engine = engine();
    let p = example_person();
    let r = fare(&engine, "fare-1", p, "2026-03-01");
    store
        .ingest(&engine, records(&[&r]), vec![audit("ingest", Some(p))])
        .await
        .expect("ingest");
    let waiting = Submission {
        item: Item::Record(judgment(&engine, "zhi-1", p, "2026-03-02", "case 1")),
        submitted_by: "court.clerk".into(),
        review: ReviewNeed::Required,
    };
    let key = waiting.item.key();
    store
        .ingest(&engine, vec![waiting], vec![audit("ingest", Some(p))])
        .await
        .expect("ingest");
    // A refused approval writes nothing, its audit entry included.
    let refused = store
        .approve(
            &engine,
            &key,
            "court.clerk",
            review_day(),
            vec![audit("approve", Some(p))],
        )
        .await;
    assert!(refused.is_err());
    store
        .approve(
            &engine,
            &key,
            "reviewer.wang",
            review_day(),
            vec![audit("approve", Some(p))],
        )
        .await
        .expect("approve");
    store
        .put_rulebook("city@1", "text", "admin", vec![audit("put_rulebook", None)])
        .await
        .expect("rulebook");
    let entries = store.audit(0, 100).await.expect("audit");
    let actions: Vec<&str> = entries.iter().map(|e| e.entry.action.as_str()).collect();
    assert_eq!(actions, vec!["ingest", "ingest", "approve", "put_rulebook"]);
    assert_eq!(verify_chain(&entries), Ok(()));
    assert_eq!(store.counts().await.expect("counts").audit_entries, 4);
}

/// Reads the state of every subject of `subjects` from `tasks` tasks at
/// once and returns how long that took: the concurrent-read figure of the
/// store benchmarks (`store_bench`, `compare`), measured the same way for
/// every backend.
pub async fn read_concurrently<S: Store + Clone>(
    store: &S,
    subjects: &[SubjectId],
    tasks: usize,
) -> Result<std::time::Duration, crate::StoreError> {
    let start = std::time::Instant::now();
    let mut running = Vec::new();
    for part in subjects.chunks(subjects.len().div_ceil(tasks.max(1)).max(1)) {
        let (store, part) = (store.clone(), part.to_vec());
        running.push(tokio::spawn(async move {
            for subject in part {
                store.state(subject).await?;
            }
            Ok::<_, crate::StoreError>(())
        }));
    }
    for task in running {
        task.await.map_err(|error| {
            crate::StoreError::Unavailable(format!("a reader task stopped: {error}"))
        })??;
    }
    Ok(start.elapsed())
}

/// The oldest audit entries are removed a batch at a time, the anchor
/// moves to the last one removed, and what is left chains from it.
pub async fn check_audit_retention(store: &dyn Store) {
    let o = example_organisation();
    let drafts: Vec<AuditDraft> = (0..10)
        .map(|i| AuditDraft {
            at_ms: 1_000 * i,
            ..audit(&format!("read_file {i}"), Some(o))
        })
        .collect();
    assert_eq!(store.audit_before(0).await.expect("before"), None, "empty");
    store.append_audit(drafts).await.expect("append");
    assert_eq!(store.audit_anchor().await.expect("anchor"), None);
    assert_eq!(store.audit_before(0).await.expect("before"), None);
    // Entries 1 to 6 were appended at 0 to 5,000 ms.
    assert_eq!(store.audit_before(5_500).await.expect("before"), Some(6));
    assert_eq!(store.audit_before(5_000).await.expect("before"), Some(5));
    assert_eq!(store.audit_before(100_000).await.expect("before"), Some(10));
    let all = store.audit(0, 100).await.expect("audit");

    assert_eq!(store.prune_audit(6, 4).await.expect("prune"), 4);
    let anchor = store.audit_anchor().await.expect("anchor");
    assert_eq!(anchor, Some((4, all[3].hash.clone())));
    let held = store.audit(0, 100).await.expect("audit");
    assert_eq!(held.first().map(|e| e.seq), Some(5));
    assert_eq!(store.prune_audit(6, 100).await.expect("prune"), 2);
    assert_eq!(store.prune_audit(6, 100).await.expect("prune"), 0);
    let anchor = store.audit_anchor().await.expect("anchor");
    assert_eq!(anchor, Some((6, all[5].hash.clone())));
    assert_eq!(store.audit_before(5_500).await.expect("before"), None);
    assert_eq!(store.audit_before(7_500).await.expect("before"), Some(8));
    assert_eq!(store.counts().await.expect("counts").audit_entries, 4);

    // What is held chains from the anchor to the head, and goes on.
    store
        .append_audit(vec![audit("read_file 10", Some(o))])
        .await
        .expect("append after a removal");
    let (seq, hash) = anchor.expect("anchor");
    let mut verifier = ChainVerifier::resume(seq, &hash);
    for entry in store.audit(0, 100).await.expect("audit") {
        verifier
            .push(&entry)
            .expect("the rest chains from the anchor");
    }
    let head = store.audit_head().await.expect("head");
    assert_eq!(head.as_ref().map(|h| h.0), Some(11));
    assert_eq!(verifier.finish(head.as_ref()), Ok(()));
    let about = store
        .audit_for_subject(o, 0, 100)
        .await
        .expect("by subject");
    assert_eq!(
        about.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![7, 8, 9, 10, 11]
    );
}
