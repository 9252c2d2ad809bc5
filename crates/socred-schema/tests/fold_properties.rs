//! Seeded property tests of the fold's invariants on the default rulebook:
//! arrival order does not matter, a retraction restores the file as it was
//! without the record, output is byte-identical from run to run, and
//! erasure at the end of retention changes no file from its day on.
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

/// [`file_of`] without the penalties no longer in force: those are the
/// history of periods counted from the subject's first record, which
/// erasing that record rightly shortens.
fn file_in_force(
    engine: &Engine,
    records: &[Record],
    facts: &[Fact],
    day: Day,
    subject: &str,
) -> String {
    let mut file: serde_json::Value =
        serde_json::from_str(&file_of(engine, records, facts, day, subject)).unwrap();
    if let Some(models) = file["models"].as_array_mut() {
        for model in models {
            if let Some(penalties) = model["penalties"].as_array_mut() {
                penalties.retain(|p| p["in_force"] == true);
            }
        }
    }
    file.to_string()
}

/// What [`Engine::erasable`] erases from each subject's history on `today`:
/// the records and facts left.
fn erase(
    engine: &Engine,
    records: &[Record],
    facts: &[Fact],
    today: Day,
) -> (Vec<Record>, Vec<Fact>, usize) {
    let mut gone_records = std::collections::BTreeSet::new();
    let mut gone_facts = std::collections::BTreeSet::new();
    let mut held = 0;
    for subject in SUBJECTS {
        let subject = socred_core::SubjectId::parse(subject).unwrap().id;
        let mine: Vec<usize> = (0..records.len())
            .filter(|&i| records[i].subject == subject)
            .collect();
        let my_facts: Vec<usize> = (0..facts.len())
            .filter(|&i| facts[i].subject == subject)
            .collect();
        let own: Vec<Record> = mine.iter().map(|&i| records[i].clone()).collect();
        let own_facts: Vec<Fact> = my_facts.iter().map(|&i| facts[i].clone()).collect();
        let erasable = engine.erasable(subject, &own, &own_facts, Day::MAX, today);
        gone_records.extend(erasable.records.iter().map(|&i| mine[i]));
        gone_facts.extend(erasable.facts.iter().map(|&i| my_facts[i]));
        held += erasable.held_back;
    }
    (
        (0..records.len())
            .filter(|i| !gone_records.contains(i))
            .map(|i| records[i].clone())
            .collect(),
        (0..facts.len())
            .filter(|i| !gone_facts.contains(i))
            .map(|i| facts[i].clone())
            .collect(),
        held,
    )
}

fn fee_delay(n: usize, subject: &str, day: &str) -> String {
    json!({
        "provider": "prov.test", "id": format!("fee{n}"), "subject": subject, "type": "social.public_fee_delay",
        "occurred_at": day, "decided_at": day, "fields": {},
    })
    .to_string()
}

/// A third public-fee delay within a year counts double: the first two are
/// held back past their retention while the third is in the file, and go
/// with it once its retention ends too.
#[test]
fn erasure_holds_back_what_a_record_in_the_file_still_counts() {
    let engine = engine();
    let person = SUBJECTS[0];
    let lines = vec![
        json!({"fact": "consent_granted", "subject": person, "at": "2024-01-01"}).to_string(),
        fee_delay(1, person, "2024-01-10"),
        fee_delay(2, person, "2024-06-10"),
        fee_delay(3, person, "2024-12-20"),
        fee_delay(4, person, "2027-03-01"),
    ];
    let (records, facts) = parse(&lines);
    let before = |day: &str| Day::parse(day).unwrap();

    let (kept, _, held) = erase(&engine, &records, &facts, before("2028-12-31"));
    assert_eq!((kept.len(), held), (4, 0), "nothing past its retention yet");

    let (kept, kept_facts, held) = erase(&engine, &records, &facts, before("2029-07-01"));
    assert_eq!(
        (kept.len(), held),
        (4, 2),
        "the first two still make the third a repeat"
    );
    assert_eq!(kept_facts.len(), facts.len());

    let today = before("2030-01-01");
    let (kept, kept_facts, held) = erase(&engine, &records, &facts, today);
    let ids: Vec<&str> = kept.iter().map(|r| &*r.key.id).collect();
    assert_eq!(
        (ids, held),
        (vec!["fee4"], 0),
        "all three go once the third's retention ends"
    );
    assert_eq!(kept_facts.len(), 1, "consent is no record's fact: it stays");
    for day in [today, today.add_days(400)] {
        assert_eq!(
            file_in_force(&engine, &records, &facts, day, person),
            file_in_force(&engine, &kept, &kept_facts, day, person),
        );
    }
}

/// A person whose every record is past its retention loses them all: the
/// yearly expectation counts its periods from the first record still in
/// the file, so none is owed once none is left, and erasing them changes
/// nothing from that day on.
#[test]
fn erasure_takes_every_record_once_all_are_past_retention() {
    let engine = engine();
    let person = SUBJECTS[2];
    let lines = vec![
        json!({"fact": "consent_granted", "subject": person, "at": "2018-01-01"}).to_string(),
        fee_delay(1, person, "2019-01-10"),
        fee_delay(2, person, "2020-06-10"),
    ];
    let (records, facts) = parse(&lines);
    let today = Day::parse("2026-11-24").unwrap();
    let (kept, kept_facts, held) = erase(&engine, &records, &facts, today);
    assert_eq!((kept.len(), kept_facts.len(), held), (0, 1, 0));
    for day in [today, today.add_days(40), today.add_days(400)] {
        assert_eq!(
            file_in_force(&engine, &records, &facts, day, person),
            file_in_force(&engine, &kept, &kept_facts, day, person),
            "{day}"
        );
    }
}

/// A profession named by a record past its retention is no longer the
/// subject's in any file from that day, and the record goes, unless a rule
/// limited to that profession applied to a record still in the file.
#[test]
fn erasure_takes_a_profession_no_rule_still_rests_on() {
    let engine = engine();
    let person = SUBJECTS[1];
    let profession = |id: &str, day: &str| {
        json!({
            "provider": "hrss.test", "id": id, "subject": person, "type": "registry.profession",
            "occurred_at": day, "decided_at": day, "fields": {"profession": "lawyer"},
        })
        .to_string()
    };
    let lines = vec![
        json!({"fact": "consent_granted", "subject": person, "at": "2014-01-01"}).to_string(),
        profession("job-2014", "2014-03-01"),
        fee_delay(1, person, "2023-05-01"),
    ];
    let (records, facts) = parse(&lines);
    let today = Day::parse("2026-11-24").unwrap();
    let file = |records: &[Record], facts: &[Fact], day: Day| -> serde_json::Value {
        serde_json::from_str(&file_in_force(&engine, records, facts, day, person)).unwrap()
    };
    assert_eq!(
        file(&records, &facts, Day::parse("2024-01-01").unwrap())["profession"],
        "lawyer"
    );
    assert!(
        file(&records, &facts, today).get("profession").is_none(),
        "past its retention"
    );
    let (kept, kept_facts, held) = erase(&engine, &records, &facts, today);
    let ids: Vec<&str> = kept.iter().map(|r| &*r.key.id).collect();
    assert_eq!((ids, held), (vec!["fee1"], 0));
    assert_eq!(
        file(&records, &facts, today),
        file(&kept, &kept_facts, today)
    );
}

/// A retracted record and its retraction go at the end of the record's
/// retention, as if it had never been sent.
#[test]
fn erasure_takes_a_retracted_record_with_its_retraction() {
    let engine = engine();
    let person = SUBJECTS[1];
    let mut lines = vec![
        fee_delay(1, person, "2024-01-10"),
        fee_delay(2, person, "2026-01-10"),
    ];
    lines.push(
        json!({"fact": "retracted", "provider": "prov.test", "record": "fee1", "subject": person, "at": "2024-02-01"})
            .to_string(),
    );
    let (records, facts) = parse(&lines);
    let (kept, kept_facts, held) =
        erase(&engine, &records, &facts, Day::parse("2029-02-01").unwrap());
    let ids: Vec<&str> = kept.iter().map(|r| &*r.key.id).collect();
    assert_eq!((ids, kept_facts.len(), held), (vec!["fee2"], 0, 0));
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

/// Representatives reached by their companies' listings but with no record
/// of their own get a state of their own, in subject order among the
/// subjects that have records, each subject once.
#[test]
fn subjects_reached_without_records_come_in_subject_order() {
    let engine = engine();
    let day = Day::parse("2026-09-01").unwrap();
    let ids = |list: &[&str]| -> Vec<socred_core::SubjectId> {
        list.iter()
            .map(|s| socred_core::SubjectId::parse(s).unwrap().id)
            .collect()
    };
    // Two companies list judgment defaults and name representatives; of
    // the representatives only one has a record of its own.
    let companies = ["91371082MA3C00001H", "91110000600037341L"];
    let representatives = ["110105198001010016", "11010519491231002X"];
    let mut lines = Vec::new();
    for (n, (company, representative)) in companies.iter().zip(representatives).enumerate() {
        lines.push(
            json!({
                "provider": "prov.test", "id": format!("reg{n}"), "subject": company,
                "type": "registry.company_registration",
                "occurred_at": "2024-01-01", "decided_at": "2024-01-02",
                "fields": {"name": "Co", "legal_representative": representative},
            })
            .to_string(),
        );
        lines.push(record_line(10 + n, company, 2, 100, 3));
    }
    lines.push(record_line(20, "371082199007070037", 0, 50, 1));
    lines.push(record_line(21, representatives[1], 0, 60, 1));
    let (records, facts) = parse(&lines);
    let states = engine.fold_all(&records, &facts, day);
    let subjects: Vec<_> = states.iter().map(|s| s.subject).collect();
    let mut expected = ids(&companies);
    expected.extend(ids(&representatives));
    expected.extend(ids(&["371082199007070037"]));
    expected.sort();
    assert_eq!(subjects, expected, "every subject once, in subject order");
    for representative in ids(&representatives) {
        let state = states.iter().find(|s| s.subject == representative).unwrap();
        assert_eq!(
            state.derived.len(),
            1,
            "{representative}: {:?}",
            state.derived
        );
        assert_eq!(
            &engine.fold_subject_of(representative, &records, &facts, day),
            state
        );
    }
}

/// Two records under one key on the same days (a store refuses the second
/// as a conflict; a file may hold both): which one counts does not depend
/// on which came first.
#[test]
fn of_two_records_under_one_key_the_same_one_counts_in_any_order() {
    let engine = engine();
    let day = Day::parse("2026-09-01").unwrap();
    let subject = "310101198507141234";
    let line = |record_type: &str, fields: serde_json::Value| {
        json!({"provider": "c.x", "id": "k1", "subject": subject, "type": record_type,
            "occurred_at": "2026-03-01", "decided_at": "2026-03-02", "fields": fields})
        .to_string()
    };
    let consent =
        json!({"fact": "consent_granted", "subject": subject, "at": "2026-01-01"}).to_string();
    let breach = line("commercial.contract_breach", json!({"amount_yuan": 100}));
    let damage = line("social.public_equipment_damage", json!({}));
    let one_way = [consent.clone(), breach.clone(), damage.clone()];
    let other_way = [consent, damage, breach];
    let (records, facts) = parse(&one_way);
    let expected = files(&engine, &records, &facts, day);
    let (records, facts) = parse(&other_way);
    assert_eq!(expected, files(&engine, &records, &facts, day));
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
    fn erasure_at_the_end_of_retention_changes_no_file_from_that_day_on(
        lines in history(), pick in any::<prop::sample::Index>(), after in 0..1600i32,
    ) {
        let engine = engine();
        let today = Day::parse("2028-09-01").unwrap().add_days(after);
        let (records, _) = parse(&lines);
        prop_assume!(!records.is_empty());
        // A retraction, so that erasure meets a record's facts too.
        let victim = records[pick.index(records.len())].clone();
        let mut lines = lines;
        lines.push(json!({
            "fact": "retracted", "provider": &*victim.key.provider, "record": &*victim.key.id,
            "subject": victim.subject.to_string(), "at": "2026-08-01",
        }).to_string());
        let (records, facts) = parse(&lines);
        let (kept, kept_facts, _) = erase(&engine, &records, &facts, today);
        for day in [today, today.add_days(1), today.add_days(200), today.add_days(400), today.add_days(1500)] {
            for subject in SUBJECTS {
                prop_assert_eq!(
                    file_in_force(&engine, &records, &facts, day, subject),
                    file_in_force(&engine, &kept, &kept_facts, day, subject),
                    "subject {} on {} (erased on {})", subject, day, today
                );
            }
        }
        // What is left has nothing more to erase on the same day.
        let (again, again_facts, _) = erase(&engine, &kept, &kept_facts, today);
        prop_assert_eq!((again.len(), again_facts.len()), (kept.len(), kept_facts.len()));
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
