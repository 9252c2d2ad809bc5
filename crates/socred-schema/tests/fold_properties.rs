//! Seeded property tests of the fold's invariants on the default rulebook:
//! arrival order does not matter, a retraction restores the file as it was
//! without the record, and output is byte-identical from run to run.
//! proptest prints the failing case and persists its seed.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;
use socred_core::file::Detail;
use socred_core::{Day, Engine, Fact, Record};
use socred_schema::wire::{self, Item};

const SUBJECTS: [&str; 4] = [
    "110105198001010016",
    "371082199007070037",
    "11010519491231002X",
    "91371082MA3C00001H",
];

/// One generated record: (subject, kind of record, day offset, magnitude).
fn record_line(n: usize, subject: &str, kind: u8, offset: i32, magnitude: i64) -> String {
    let start = Day::parse("2024-01-01").unwrap();
    let occurred = start.add_days(offset);
    let decided = occurred.add_days((magnitude % 20) as i32);
    let person = !subject.starts_with('9');
    let (record_type, fields) = match (kind % 9, person) {
        (0, _) => ("commercial.contract_breach", json!({})),
        (1, _) => (
            "commercial.bank_arrears",
            json!({"cycles": magnitude % 6 + 1}),
        ),
        (2, _) => (
            "judicial.judgment_default",
            json!({"case_no": format!("case-{}", magnitude % 3), "trigger": "ability_refused"}),
        ),
        (3, _) => (
            "judicial.judgment_fulfilled",
            json!({"case_no": format!("case-{}", magnitude % 3)}),
        ),
        (4, _) => (
            "positive.charitable_donation",
            json!({"amount_yuan": magnitude * 700}),
        ),
        (5, true) => ("social.public_fee_delay", json!({})),
        (6, true) => ("positive.volunteering", json!({"hours": magnitude % 80})),
        (7, true) => (
            "transport.fare_evasion",
            json!({"train_no": "G1", "station": "Jinan"}),
        ),
        (8, false) => (
            "registry.company_registration",
            json!({"name": "Co", "legal_representative": SUBJECTS[(magnitude % 2) as usize]}),
        ),
        _ => ("positive.honour", json!({"level": "county", "title": "t"})),
    };
    json!({
        "provider": "prov.test", "id": format!("r{n}"), "subject": subject, "type": record_type,
        "occurred_at": occurred.to_string(), "decided_at": decided.to_string(), "fields": fields,
    })
    .to_string()
}

fn parse(lines: &[String]) -> (Vec<Record>, Vec<Fact>) {
    let rulebook = socred_schema::default_rulebook();
    let mut records = Vec::new();
    let mut facts = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match wire::parse_line(&rulebook, i + 1, line) {
            Ok((Item::Record(r), _)) => records.push(r),
            Ok((Item::Fact { fact: f, .. }, _)) => facts.push(f),
            Err(rejection) => panic!("generated line rejected: {rejection:?}\n{line}"),
        }
    }
    (records, facts)
}

/// Every subject's full credit file as of `day`, serialized.
fn files(engine: &Engine, records: &[Record], facts: &[Fact], day: Day) -> String {
    let mut out = String::new();
    for state in engine.fold_all(records, facts, day) {
        let standing = engine.evaluate(&state, day);
        out.push_str(&serde_json::to_string(&engine.credit_file(&standing, Detail::Full)).unwrap());
        out.push('\n');
    }
    out
}

/// One subject's full credit file; a subject nothing is known about gets
/// the file of a subject without records.
fn file_of(engine: &Engine, records: &[Record], facts: &[Fact], day: Day, subject: &str) -> String {
    let subject = socred_core::SubjectId::parse(subject).unwrap().id;
    let states = engine.fold_all(records, facts, day);
    let state = match states.iter().find(|s| s.subject == subject) {
        Some(state) => state.clone(),
        None => engine.fold(subject, &[], &[], day),
    };
    let standing = engine.evaluate(&state, day);
    serde_json::to_string(&engine.credit_file(&standing, Detail::Full)).unwrap()
}

fn history() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        (0..SUBJECTS.len(), any::<u8>(), 0..900i32, 0..200i64),
        1..40,
    )
    .prop_map(|items| {
        let mut lines: Vec<String> = SUBJECTS
            .iter()
            .filter(|s| !s.starts_with('9'))
            .map(|s| {
                json!({"fact": "consent_granted", "subject": s, "at": "2024-01-01"}).to_string()
            })
            .collect();
        for (n, (s, kind, offset, magnitude)) in items.into_iter().enumerate() {
            lines.push(record_line(n, SUBJECTS[s], kind, offset, magnitude));
        }
        lines
    })
}

fn engine() -> Engine {
    Engine::new(Arc::new(socred_schema::default_rulebook()))
}

/// A correction that names another legal representative makes the company's
/// listing reach that person: folding the person alone still finds it.
#[test]
fn a_correction_naming_a_representative_is_followed_for_one_subject() {
    let engine = engine();
    let day = Day::parse("2026-09-01").unwrap();
    let company = SUBJECTS[3];
    let registration = |id: &str, representative: &str| {
        json!({
            "provider": "prov.test", "id": id, "subject": company, "type": "registry.company_registration",
            "occurred_at": "2024-01-01", "decided_at": "2024-01-02",
            "fields": {"name": "Co", "legal_representative": representative},
        })
    };
    let lines = vec![
        registration("reg", SUBJECTS[0]).to_string(),
        record_line(1, company, 2, 100, 3),
        json!({
            "fact": "corrected", "provider": "prov.test", "record": "reg", "subject": company,
            "at": "2024-06-01", "type": "registry.company_registration",
            "fields": {"name": "Co", "legal_representative": SUBJECTS[1]},
        })
        .to_string(),
    ];
    let (records, facts) = parse(&lines);
    let all = engine.fold_all(&records, &facts, day);
    let person = socred_core::SubjectId::parse(SUBJECTS[1]).unwrap().id;
    let expected = all.iter().find(|s| s.subject == person).expect("reached");
    assert!(
        !expected.derived.is_empty(),
        "the listing reaches the new representative"
    );
    assert_eq!(
        &engine.fold_subject_of(person, &records, &facts, day),
        expected
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn arrival_order_does_not_matter(lines in history(), seed in any::<u64>()) {
        let engine = engine();
        let day = Day::parse("2026-09-01").unwrap();
        let (records, facts) = parse(&lines);
        let expected = files(&engine, &records, &facts, day);
        let mut shuffled = lines.clone();
        // A seeded Fisher-Yates shuffle, so a failure replays exactly.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let (records, facts) = parse(&shuffled);
        prop_assert_eq!(expected, files(&engine, &records, &facts, day));
    }

    #[test]
    fn retraction_restores_the_file_without_the_record(lines in history(), pick in any::<prop::sample::Index>()) {
        let engine = engine();
        let day = Day::parse("2026-09-01").unwrap();
        let (records, facts) = parse(&lines);
        prop_assume!(!records.is_empty());
        let victim = records[pick.index(records.len())].clone();
        let retraction = json!({
            "fact": "retracted", "provider": &*victim.key.provider, "record": &*victim.key.id,
            "subject": victim.subject.to_string(), "at": "2026-08-01",
        })
        .to_string();
        let mut with_retraction = lines.clone();
        with_retraction.push(retraction);
        let (records_r, facts_r) = parse(&with_retraction);
        let without: Vec<Record> = records.iter().filter(|r| r.key != victim.key).cloned().collect();
        for subject in SUBJECTS {
            let expected = file_of(&engine, &without, &facts, day, subject);
            let actual = file_of(&engine, &records_r, &facts_r, day, subject);
            prop_assert_eq!(expected, actual, "subject {}", subject);
        }
    }

    #[test]
    fn the_fold_on_several_threads_equals_the_fold_on_one(lines in history()) {
        let engine = engine();
        let day = Day::parse("2026-09-01").unwrap();
        let (records, facts) = parse(&lines);
        let expected = engine.fold_all(&records, &facts, day);
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let parallel = pool.install(|| engine.fold_all_parallel(&records, &facts, day));
            prop_assert_eq!(&parallel, &expected, "{} threads", threads);
        }
    }

    #[test]
    fn one_subject_folds_as_in_the_whole_batch(lines in history()) {
        let engine = engine();
        let day = Day::parse("2026-09-01").unwrap();
        let (records, facts) = parse(&lines);
        let all = engine.fold_all(&records, &facts, day);
        for subject in SUBJECTS {
            let subject = socred_core::SubjectId::parse(subject).unwrap().id;
            let expected = match all.iter().find(|s| s.subject == subject) {
                Some(state) => state.clone(),
                None => engine.fold(subject, &[], &[], day),
            };
            prop_assert_eq!(engine.fold_subject_of(subject, &records, &facts, day), expected);
        }
    }

    #[test]
    fn output_is_byte_identical_across_runs(lines in history()) {
        let day = Day::parse("2026-09-01").unwrap();
        let (records, facts) = parse(&lines);
        let first = files(&engine(), &records, &facts, day);
        let (records, facts) = parse(&lines);
        prop_assert_eq!(first, files(&engine(), &records, &facts, day));
    }
}
