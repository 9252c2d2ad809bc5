//! The generator's contract, checked on its output: determinism, the wire
//! format, valid identifiers, dates in range, exact record counts, follow-ups
//! that refer to earlier records, and a realistic mix.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use socred_core::{Day, SubjectId, SubjectKind};
use socred_sim::{generate, population, providers, GenConfig, GenSummary};

fn day(text: &str) -> Day {
    Day::parse(text).expect("test dates are valid")
}

fn config(seed: u64, subjects: u64, records: u64) -> GenConfig {
    GenConfig {
        seed,
        subjects,
        records,
        start: day("2024-01-01"),
        end: day("2026-12-31"),
    }
}

fn collect(config: &GenConfig) -> (Vec<String>, GenSummary) {
    let mut lines = Vec::new();
    let summary = generate(config, &mut |line| lines.push(line.to_string()));
    (lines, summary)
}

fn parse_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|line| {
            assert!(!line.contains('\n'), "a line holds a newline: {line}");
            serde_json::from_str(line).unwrap_or_else(|e| panic!("invalid JSON ({e}): {line}"))
        })
        .collect()
}

fn text<'v>(value: &'v Value, key: &str) -> &'v str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not text in {value}"))
}

fn subject(value: &Value, key: &str) -> SubjectId {
    let parsed = SubjectId::parse(text(value, key)).unwrap_or_else(|e| panic!("{e}: {value}"));
    assert_eq!(parsed.warning, None, "{value}");
    parsed.id
}

#[test]
fn same_seed_gives_identical_output_and_another_seed_does_not() {
    let (first, summary) = collect(&config(42, 500, 5_000));
    let (second, _) = collect(&config(42, 500, 5_000));
    assert_eq!(first, second);
    assert_eq!(summary.records, 5_000);
    let (other, _) = collect(&config(43, 500, 5_000));
    assert_ne!(first, other);
}

#[test]
fn lines_follow_the_wire_format_with_valid_subjects_and_dates() {
    let config = config(7, 2_000, 20_000);
    let (lines, summary) = collect(&config);
    let values = parse_lines(&lines);
    assert_eq!(values.len() as u64, summary.lines());
    let registered: HashMap<String, Vec<&str>> = providers()
        .into_iter()
        .map(|p| (p.id, p.record_types))
        .collect();
    let known: HashSet<SubjectId> = population(config.seed, config.subjects, config.start)
        .into_iter()
        .collect();
    let in_range = |text: &str| {
        let date = day(text);
        assert!(
            config.start <= date && date <= config.end,
            "{text} out of range"
        );
        date
    };
    let mut records_by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut record_ids = HashSet::new();
    for value in &values {
        let id = subject(value, "subject");
        assert!(known.contains(&id), "{id} is not in the population");
        if value.get("fact").is_some() {
            in_range(text(value, "at"));
            text(value, "by");
            continue;
        }
        let object = value.as_object().expect("a line is an object");
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        for key in [
            "provider",
            "id",
            "subject",
            "type",
            "occurred_at",
            "decided_at",
            "fields",
        ] {
            assert!(keys.contains(&key), "`{key}` missing in {value}");
        }
        let provider = text(value, "provider");
        let ty = text(value, "type");
        let allowed = registered
            .get(provider)
            .unwrap_or_else(|| panic!("unknown {provider}"));
        assert!(allowed.contains(&ty), "{provider} may not report {ty}");
        let occurred = in_range(text(value, "occurred_at"));
        let decided = in_range(text(value, "decided_at"));
        assert!(occurred <= decided, "{value}");
        let key = (provider.to_string(), text(value, "id").to_string());
        assert!(record_ids.insert(key), "duplicate record id: {value}");
        for relation in ["legal_representative", "actual_controller"] {
            if value["fields"].get(relation).is_some() {
                assert_eq!(
                    subject(&value["fields"], relation).kind(),
                    SubjectKind::Person
                );
            }
        }
        *records_by_type.entry(ty.to_string()).or_default() += 1;
    }
    let summarised: BTreeMap<String, u64> = summary
        .records_by_type
        .iter()
        .map(|(ty, n)| (ty.to_string(), *n))
        .collect();
    assert_eq!(records_by_type, summarised);
    assert_eq!(record_ids.len() as u64, 20_000);
}

/// Record types about one kind of subject only go to that kind; fields have
/// the types the catalog declares.
#[test]
fn record_fields_match_their_types() {
    let (lines, _) = collect(&config(11, 2_000, 20_000));
    for value in parse_lines(&lines) {
        if value.get("fact").is_some() {
            continue;
        }
        let kind = subject(&value, "subject").kind();
        let fields = &value["fields"];
        let person_only = [
            "transport.",
            "social.",
            "professional.",
            "positive.volunteering",
        ];
        let ty = text(&value, "type");
        if person_only.iter().any(|prefix| ty.starts_with(prefix)) || ty == "registry.profession" {
            assert_eq!(kind, SubjectKind::Person, "{value}");
        }
        if ty.starts_with("market.") || ty.starts_with("tax.") || ty.ends_with("registration") {
            assert_eq!(kind, SubjectKind::Organisation, "{value}");
        }
        match ty {
            "judicial.judgment_default" => {
                assert!(text(fields, "case_no").contains(" Zhi "), "{value}");
                assert!(fields["amount_yuan"].is_number(), "{value}");
                text(fields, "trigger");
            }
            "commercial.bank_arrears" => {
                let cycles = fields["cycles"].as_u64().expect("cycles is an integer");
                assert!((1..=6).contains(&cycles), "{value}");
                assert!(fields["amount_yuan"].is_number(), "{value}");
            }
            "tax.credit_evaluation" => {
                assert!(
                    fields["points"].as_u64().is_some_and(|p| p <= 100),
                    "{value}"
                );
                assert!(fields["year"].as_u64().is_some(), "{value}");
            }
            "market.food_safety_violation" => {
                assert!(fields["serious"].is_boolean(), "{value}");
                assert!(fields["penalty_yuan"].is_number(), "{value}");
            }
            "positive.blood_donation" => {
                assert!(fields["millilitres"].as_u64().is_some(), "{value}");
            }
            "positive.honour" => {
                let levels = [
                    "national",
                    "provincial",
                    "municipal",
                    "county",
                    "township",
                    "village",
                ];
                assert!(levels.contains(&text(fields, "level")), "{value}");
            }
            _ => {}
        }
    }
}

/// Facts name records that came earlier in the stream, by provider and id, and
/// never predate them; fulfilments repeat the case number of an earlier default
/// of the same subject.
#[test]
fn follow_ups_refer_to_earlier_records() {
    let (lines, summary) = collect(&config(3, 3_000, 50_000));
    let mut seen: HashMap<(String, String), (String, Day)> = HashMap::new();
    let mut defaults: HashSet<(String, String)> = HashSet::new();
    let mut record_facts = 0;
    for value in parse_lines(&lines) {
        let subject_text = text(&value, "subject").to_string();
        if let Some(fact) = value.get("fact").and_then(Value::as_str) {
            if fact.starts_with("consent") {
                continue;
            }
            record_facts += 1;
            let key = (
                text(&value, "provider").to_string(),
                text(&value, "record").to_string(),
            );
            let (owner, decided) = seen
                .get(&key)
                .unwrap_or_else(|| panic!("unknown record: {value}"));
            assert_eq!(owner, &subject_text, "{value}");
            assert!(day(text(&value, "at")) >= *decided, "{value}");
            continue;
        }
        let key = (
            text(&value, "provider").to_string(),
            text(&value, "id").to_string(),
        );
        seen.insert(key, (subject_text.clone(), day(text(&value, "decided_at"))));
        let case = || {
            (
                subject_text.clone(),
                text(&value["fields"], "case_no").to_string(),
            )
        };
        match text(&value, "type") {
            "judicial.judgment_default" => assert!(defaults.insert(case())),
            "judicial.judgment_fulfilled" => assert!(defaults.contains(&case()), "{value}"),
            _ => {}
        }
    }
    assert!(record_facts > 50, "only {record_facts} record facts");
    assert!(summary.facts > record_facts);
}

#[test]
fn the_mix_is_realistic() {
    let config = config(2024, 4_000, 50_000);
    let (lines, summary) = collect(&config);
    let share = |prefix: &str| {
        let n: u64 = summary
            .records_by_type
            .iter()
            .filter(|(ty, _)| ty.starts_with(prefix))
            .map(|(_, n)| n)
            .sum();
        n as f64 / summary.records as f64
    };
    let defaults = share("judicial.judgment_default");
    assert!(
        (0.015..0.035).contains(&defaults),
        "judgment defaults {defaults}"
    );
    let transport = share("transport.");
    assert!((0.01..0.03).contains(&transport), "transport {transport}");
    let positive = share("positive.");
    assert!(positive > 0.4, "positive {positive}");
    let fulfilled = share("judicial.judgment_fulfilled") / defaults;
    assert!(
        (0.35..0.75).contains(&fulfilled),
        "fulfilled per default {fulfilled}"
    );
    assert!(share("registry.profession") > 0.05);
    assert!(share("registry.company_registration") > 0.005);
    assert!(share("tax.credit_evaluation") > 0.005);
    let serious = share("commercial.illegal_fundraising") + share("transport.fake_ticket");
    assert!(serious < 0.005, "serious {serious}");

    let values = parse_lines(&lines);
    let persons = summary.persons as f64;
    let consents = values
        .iter()
        .filter(|v| v["fact"] == "consent_granted")
        .count() as f64;
    assert!(
        (0.6..0.8).contains(&(consents / persons)),
        "consent {}",
        consents / persons
    );
    assert!(values.iter().any(|v| v["fact"] == "consent_withdrawn"));
    for fact in ["retracted", "disputed", "resolved", "repaired"] {
        assert!(values.iter().any(|v| v["fact"] == fact), "no `{fact}` fact");
    }
    assert!(
        (10..150).contains(&summary.late_records),
        "late {}",
        summary.late_records
    );
    assert_negative_records_are_concentrated(&values);
    assert_positive_conduct_favours_a_civic_few(&values, summary.persons);
    assert_order_roughly_follows_time(&values, summary.late_records);
}

/// A few subjects account for most negative records.
fn assert_negative_records_are_concentrated(values: &[Value]) {
    let negative = [
        "judicial.judgment_default",
        "transport.",
        "commercial.",
        "social.",
        "market.",
    ];
    let mut per_subject: HashMap<&str, u64> = HashMap::new();
    for value in values.iter().filter(|v| v.get("fact").is_none()) {
        let ty = text(value, "type");
        if negative.iter().any(|prefix| ty.starts_with(prefix)) {
            *per_subject.entry(text(value, "subject")).or_default() += 1;
        }
    }
    let mut counts: Vec<u64> = per_subject.into_values().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let total: u64 = counts.iter().sum();
    let top: u64 = counts.iter().take(4_000 / 20).sum();
    let share = top as f64 / total as f64;
    assert!(
        share > 0.5,
        "the top 5% of subjects hold {share} of negative records"
    );
}

/// A civic-minded one person in a hundred accounts for a large share of
/// persons' positive conduct (the few a red list of exemplary residents
/// names), though most persons have some.
fn assert_positive_conduct_favours_a_civic_few(values: &[Value], persons: u64) {
    let mut per_person: HashMap<&str, u64> = HashMap::new();
    for value in values.iter().filter(|v| v.get("fact").is_none()) {
        let subject = subject(value, "subject");
        if text(value, "type").starts_with("positive.") && subject.kind() == SubjectKind::Person {
            *per_person.entry(text(value, "subject")).or_default() += 1;
        }
    }
    let mut counts: Vec<u64> = per_person.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let total: u64 = counts.iter().sum();
    let top: u64 = counts.iter().take(persons as usize / 100).sum();
    let share = top as f64 / total as f64;
    assert!(
        (0.12..0.4).contains(&share),
        "the top 1% of persons hold {share} of persons' positive conduct"
    );
    assert!(
        per_person.len() as u64 > persons / 2,
        "{} of {persons} persons have positive conduct",
        per_person.len()
    );
}

/// Records come roughly in time order: only the late ones are dated more
/// than a few weeks before the latest record seen so far.
fn assert_order_roughly_follows_time(values: &[Value], late: u64) {
    let mut latest = Day::MIN;
    let mut out_of_order = 0;
    for value in values.iter().filter(|v| v.get("fact").is_none()) {
        let occurred = day(text(value, "occurred_at"));
        if occurred.0 < latest.0 - 20 {
            out_of_order += 1;
        }
        latest = latest.max(occurred);
    }
    assert!(
        out_of_order <= late * 2 + 10,
        "{out_of_order} out of order, {late} late"
    );
}

#[test]
fn record_counts_are_exact_in_edge_cases() {
    // Fewer records than registrations.
    let (_, summary) = collect(&config(1, 5_000, 100));
    assert_eq!(summary.records, 100);
    // Too few subjects for any organisation.
    let (lines, summary) = collect(&config(1, 5, 1_000));
    assert_eq!(summary.records, 1_000);
    assert_eq!(summary.organisations, 0);
    for value in parse_lines(&lines) {
        assert_eq!(subject(&value, "subject").kind(), SubjectKind::Person);
    }
    // A single day.
    let mut one_day = config(1, 100, 1_000);
    one_day.end = one_day.start;
    let (lines, summary) = collect(&one_day);
    assert_eq!(summary.records, 1_000);
    assert!(lines.iter().all(|line| !line.contains("2024-01-02")));
    // No subjects: nothing to write about.
    let (lines, summary) = collect(&config(1, 0, 1_000));
    assert!(lines.is_empty());
    assert_eq!(summary, GenSummary::default());
}

#[test]
fn population_matches_the_generated_subjects() {
    let config = config(5, 900, 3_000);
    let ids = population(config.seed, config.subjects, config.start);
    assert_eq!(ids.len(), 900);
    let orgs = ids
        .iter()
        .filter(|id| id.kind() == SubjectKind::Organisation)
        .count();
    assert_eq!(orgs, 100);
    let (lines, _) = collect(&config);
    let first = parse_lines(&lines)
        .into_iter()
        .find(|v| v["type"] == "registry.profession");
    let first = first.expect("some person has a profession");
    assert!(ids.contains(&subject(&first, "subject")));
}
