//! Data-driven tests of the fold: each `fixtures/fold/*.ndjson` holds a
//! directive line (rulebook, as-of days, measures to decide) and records and
//! facts; the credit files it gives, explained, and the decisions are
//! compared with `fixtures/fold/*.expected`. Run with `UPDATE_EXPECT=1` to
//! rewrite the expectations, then read the diff. Focused tests below fold
//! a small inline rulebook: list exclusions and the working-day calendar.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use socred_core::file::Detail;
use socred_core::{Day, Engine, Fact, Record, Rulebook};
use socred_schema::wire::{self, Item};

#[derive(Deserialize)]
struct Directive {
    case: String,
    rulebook: String,
    as_of: Vec<String>,
    #[serde(default)]
    decide: Vec<String>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fold")
}

fn load_case(path: &Path) -> (Directive, Rulebook, Vec<Record>, Vec<Fact>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let directive: Directive = serde_json::from_str(lines.next().unwrap()).unwrap();
    let rulebook = if directive.rulebook == "default" {
        socred_schema::default_rulebook()
    } else {
        let file = fixtures().join(&directive.rulebook);
        let text = std::fs::read_to_string(&file).unwrap();
        socred_schema::load_rulebook(&directive.rulebook, &text).unwrap()
    };
    let mut records = Vec::new();
    let mut facts = Vec::new();
    for (i, line) in lines.enumerate() {
        match wire::parse_line(&rulebook, i + 2, line) {
            Ok((Item::Record(record), _)) => records.push(record),
            Ok((Item::Fact { fact, .. }, _)) => facts.push(fact),
            Err(rejection) => panic!("{}:{}: {rejection:?}", path.display(), i + 2),
        }
    }
    (directive, rulebook, records, facts)
}

/// The text a fixture produces: for each as-of day and each subject, the
/// explained file and the decisions asked for.
fn render(directive: &Directive, rulebook: Rulebook, records: &[Record], facts: &[Fact]) -> String {
    let engine = Engine::new(Arc::new(rulebook));
    let mut out = format!("# {}\n", directive.case);
    for as_of in &directive.as_of {
        let day = Day::parse(as_of).unwrap();
        out.push_str(&format!("\n======== as of {day} ========\n"));
        for state in engine.fold_all(records, facts, day) {
            let standing = engine.evaluate(&state, day);
            let file = engine.credit_file(&standing, Detail::Full);
            out.push('\n');
            out.push_str(&file.explain());
            for id in &directive.decide {
                let measure = engine
                    .rulebook
                    .measure(id)
                    .unwrap_or_else(|| panic!("no measure {id}"));
                if !measure.subject_kinds.contains(state.subject.kind()) {
                    continue;
                }
                let decision = engine.decide(&standing, measure);
                out.push_str(&format!(
                    "decision {}\n",
                    serde_json::to_string(&decision).unwrap()
                ));
            }
        }
    }
    out
}

#[test]
fn fold_fixtures() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 7, "fixtures missing: {cases:?}");
    for case in cases {
        let (directive, rulebook, records, facts) = load_case(&case);
        let actual = render(&directive, rulebook, &records, &facts);
        expect_test::expect_file![case.with_extension("expected")].assert_eq(&actual);
    }
}

/// The same fixture read backwards gives byte-identical output: late
/// records and facts are folded as if they had arrived in order.
#[test]
fn fixtures_do_not_depend_on_arrival_order() {
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "ndjson") {
            continue;
        }
        let (directive, rulebook, records, facts) = load_case(&path);
        let forward = render(&directive, rulebook.clone(), &records, &facts);
        let mut records_rev = records.clone();
        records_rev.reverse();
        let mut facts_rev = facts.clone();
        facts_rev.reverse();
        let backward = render(&directive, rulebook, &records_rev, &facts_rev);
        assert_eq!(
            forward,
            backward,
            "{} depends on arrival order",
            path.display()
        );
    }
}

/// A rulebook where every person is graded A (and so on the weekly red
/// list), a judgment black-lists until three working days after it is
/// fulfilled, and the red list is excluded by the black list. `extra` is
/// appended (a `[calendar]`).
fn exclusion_rulebook(extra: &str) -> Rulebook {
    let text = format!(
        r#"[rulebook]
id = "focused"
version = "1"
title = "focused"

[[record_type]]
id = "court.judgment"
title = "Judgment"
subject_kinds = ["person"]
category = "judicial"
severity = "serious"
legal_basis = "a law"
retention = "P5Y"
fields = {{ case_no = {{ type = "text", required = true }} }}

[[record_type]]
id = "court.fulfilled"
title = "Judgment fulfilled"
subject_kinds = ["person"]
category = "judicial"
severity = "minor"
legal_basis = "a law"
retention = "P5Y"
fields = {{ case_no = {{ type = "text", required = true }} }}

[[model]]
id = "score"
title = "Score"
subject_kinds = ["person"]
base_points = 1000
grades = [{{ grade = "A", min = 1000 }}, {{ grade = "D" }}]

[[list]]
id = "defaulters"
title = "Defaulters"
kind = "black"
legal_basis = "a law"
subject_kinds = ["person"]
entry = [{{ record_type = "court.judgment" }}]
exit = [{{ record_type = "court.fulfilled", match_field = "case_no", working_days = 3 }}]

[[list]]
id = "exemplary"
title = "Exemplary"
kind = "red"
legal_basis = "a law"
subject_kinds = ["person"]
grade_entry = {{ model = "score", grades = ["A"] }}
schedule = "weekly"
excluded_by = ["defaulters"]
{extra}"#
    );
    socred_schema::load_rulebook("focused.toml", &text)
        .unwrap_or_else(|errors| panic!("the focused rulebook does not load:\n{errors}"))
}

/// A judgment decided on `judged` and fulfilled on `fulfilled`.
fn judgment(rulebook: &Rulebook, judged: &str, fulfilled: &str) -> Vec<Record> {
    let lines = [
        format!(
            r#"{{"provider": "court", "id": "j-1", "subject": "110105198001010016", "type": "court.judgment", "occurred_at": "{judged}", "decided_at": "{judged}", "fields": {{"case_no": "c-1"}}}}"#
        ),
        format!(
            r#"{{"provider": "court", "id": "f-1", "subject": "110105198001010016", "type": "court.fulfilled", "occurred_at": "{fulfilled}", "decided_at": "{fulfilled}", "fields": {{"case_no": "c-1"}}}}"#
        ),
    ];
    let mut records = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match wire::parse_line(rulebook, i + 1, line) {
            Ok((Item::Record(record), _)) => records.push(record),
            other => panic!("line {}: {other:?}", i + 1),
        }
    }
    records
}

/// The lists the subject is on, the lists it is left off, and its
/// explained file, on `day`.
fn lists_on(engine: &Engine, records: &[Record], day: &str) -> (Vec<String>, Vec<String>, String) {
    let day = Day::parse(day).unwrap();
    let states = engine.fold_all(records, &[], day);
    assert_eq!(states.len(), 1);
    let standing = engine.evaluate(&states[0], day);
    let file = engine.credit_file(&standing, Detail::Full);
    let on = file.lists.iter().map(|l| l.to_string()).collect();
    let left_off = file.left_off.iter().map(|l| l.list.to_string()).collect();
    (on, left_off, file.explain())
}

#[test]
fn a_black_listed_subject_is_left_off_the_red_list_until_the_entry_ends() {
    let rulebook = exclusion_rulebook("");
    let records = judgment(&rulebook, "2026-03-02", "2026-03-10");
    let engine = Engine::new(Arc::new(rulebook));
    // Before the judgment: graded A, on the red list.
    let (on, left_off, _) = lists_on(&engine, &records, "2026-03-01");
    assert_eq!((on, left_off), (vec!["exemplary".to_string()], Vec::new()));
    // Listed as a defaulter (still graded A): off the red list, and the file
    // says why.
    let (on, left_off, explained) = lists_on(&engine, &records, "2026-03-12");
    assert_eq!(on, vec!["defaulters".to_string()]);
    assert_eq!(left_off, vec!["exemplary".to_string()]);
    assert!(
        explained.contains("exemplary (Red list): left off while on defaulters"),
        "{explained}"
    );
    // Fulfilled on Tuesday 03-10: off the black list three working days
    // later, Friday 03-13, and on the red list again that day.
    let (on, left_off, explained) = lists_on(&engine, &records, "2026-03-13");
    assert_eq!((on, left_off), (vec!["exemplary".to_string()], Vec::new()));
    assert!(!explained.contains("left off"), "{explained}");
}

/// National Day 2025: 1 to 8 October off; Sunday 28 September and Saturday
/// 11 October worked.
const NATIONAL_DAY_2025: &str = r#"
[calendar]
holidays = ["2025-10-01", "2025-10-02", "2025-10-03", "2025-10-04", "2025-10-05", "2025-10-06", "2025-10-07", "2025-10-08"]
working_weekends = ["2025-09-28", "2025-10-11"]
"#;

/// The day the subject's black-list entry ends under `rulebook`.
fn exit_day(rulebook: Rulebook, fulfilled: &str) -> String {
    let records = judgment(&rulebook, "2025-09-01", fulfilled);
    let engine = Engine::new(Arc::new(rulebook));
    let day = Day::parse("2025-12-31").unwrap();
    let states = engine.fold_all(&records, &[], day);
    let file = engine.credit_file(&engine.evaluate(&states[0], day), Detail::Full);
    let ends: Vec<String> = file
        .effects
        .iter()
        .flatten()
        .filter_map(|e| e.end.map(|end| end.to_string()))
        .collect();
    assert_eq!(ends.len(), 1, "{ends:?}");
    ends[0].clone()
}

#[test]
fn list_exits_skip_holidays_and_count_adjusted_working_weekends() {
    // Fulfilled on Tuesday 30 September: three working days later is
    // Friday 3 October by weekdays alone, but 1-8 October are holidays, so
    // Thursday 9, Friday 10 and the adjusted working Saturday 11 count.
    assert_eq!(exit_day(exclusion_rulebook(""), "2025-09-30"), "2025-10-03");
    let calendar = exclusion_rulebook(NATIONAL_DAY_2025);
    assert_eq!(exit_day(calendar.clone(), "2025-09-30"), "2025-10-11");
    // Fulfilled on Friday 26 September: the working Sunday 28 counts, then
    // Monday 29 and Tuesday 30.
    assert_eq!(exit_day(calendar, "2025-09-26"), "2025-09-30");
    assert_eq!(exit_day(exclusion_rulebook(""), "2025-09-26"), "2025-10-01");
}

/// A timeline keeps a subject whose only record is retracted: it counts on
/// as a subject without records, and leaves the list it was on.
#[test]
fn a_timeline_keeps_a_subject_whose_only_record_is_retracted() {
    let rulebook = socred_schema::default_rulebook();
    let lines = [
        r#"{"provider": "court.beijing-1", "id": "2026-zhi-00123", "subject": "110105198001010016", "type": "judicial.judgment_default", "occurred_at": "2026-03-01", "decided_at": "2026-03-15", "fields": {"amount_yuan": 52000, "case_no": "(2026) Jing 01 Zhi 123", "trigger": "ability_refused"}}"#,
        r#"{"fact": "retracted", "provider": "court.beijing-1", "record": "2026-zhi-00123", "subject": "110105198001010016", "at": "2026-06-01"}"#,
    ];
    let (mut records, mut facts) = (Vec::new(), Vec::new());
    for (i, line) in lines.iter().enumerate() {
        match wire::parse_line(&rulebook, i + 1, line) {
            Ok((Item::Record(record), _)) => records.push(record),
            Ok((Item::Fact { fact, .. }, _)) => facts.push(fact),
            Err(rejection) => panic!("line {}: {rejection:?}", i + 1),
        }
    }
    let engine = Engine::new(Arc::new(rulebook));
    let day = |text: &str| Day::parse(text).unwrap();
    let every: socred_core::Period = "P2M".parse().unwrap();
    let plan =
        socred_core::timeline::Plan::new(day("2026-01-01"), day("2026-09-01"), every, 1).unwrap();
    let mut seen = 0;
    let timeline = engine.timeline(&records, &facts, &plan, |_| seen += 1);
    let report = serde_json::to_value(&timeline).unwrap();
    assert_eq!(seen, 5);
    let steps = report["steps"].as_array().unwrap();
    let at = |i: usize, path: &[&str]| -> serde_json::Value {
        path.iter().fold(steps[i].clone(), |v, key| v[*key].clone())
    };
    // 2026-01-01: nothing known yet; 03-01: still nothing (decided on the
    // 15th); 05-01: listed; 07-01: the record retracted on 06-01; 09-01:
    // still a subject the registry knows.
    let days: Vec<_> = (0..5).map(|i| at(i, &["as_of"])).collect();
    assert_eq!(
        days,
        [
            "2026-01-01",
            "2026-03-01",
            "2026-05-01",
            "2026-07-01",
            "2026-09-01"
        ]
    );
    let subjects: Vec<_> = (0..5).map(|i| at(i, &["subjects"])).collect();
    assert_eq!(subjects, [0, 0, 1, 1, 1]);
    let listed = |i| at(i, &["tally", "lists", "judgment_defaulters"]);
    assert_eq!(listed(2), 1);
    assert_eq!(listed(3), serde_json::Value::Null);
    let moved = |i, way| at(i, &["changes", "lists", "judgment_defaulters", way]);
    assert_eq!(
        (moved(2, "entered"), moved(2, "left")),
        (1.into(), 0.into())
    );
    assert_eq!(
        (moved(3, "entered"), moved(3, "left")),
        (0.into(), 1.into())
    );
    assert_eq!(at(3, &["tally", "grades", "not graded"]), 1);
    assert_eq!(at(4, &["tally", "grades", "not graded"]), 1);
    assert_eq!(at(4, &["changes", "changed"]), 0);
}

#[test]
fn a_comparison_read_in_parts_is_the_comparison_of_the_whole() {
    // A company listed as a judgment defaulter restricts its legal
    // representative (who has a record of their own) and its actual
    // controller (who has none); a draft that reaches nobody frees both.
    let (_, rulebook, mut records, mut facts) = load_case(&fixtures().join("company_reach.ndjson"));
    let extra = [
        r#"{"provider": "court.beijing-1", "id": "2025-zhi-00007", "subject": "110105198001010016", "type": "judicial.judgment_default", "occurred_at": "2025-03-01", "decided_at": "2025-03-15", "fields": {"amount_yuan": 52000, "case_no": "(2025) Jing 01 Zhi 7", "trigger": "ability_refused"}}"#,
        r#"{"provider": "rongcheng.volunteers", "id": "v-1", "subject": "371082199007070037", "type": "positive.volunteering", "occurred_at": "2025-06-01", "decided_at": "2025-06-01", "fields": {"hours": 12}}"#,
        r#"{"fact": "consent_granted", "subject": "371082199007070037", "at": "2025-01-01"}"#,
    ];
    for (i, line) in extra.iter().enumerate() {
        match wire::parse_line(&rulebook, i + 1, line) {
            Ok((Item::Record(record), _)) => records.push(record),
            Ok((Item::Fact { fact, .. }, _)) => facts.push(fact),
            Err(rejection) => panic!("line {}: {rejection:?}", i + 1),
        }
    }
    let text = socred_schema::DEFAULT_RULEBOOK_TOML
        .replace(
            r#"reach = ["legal_representative", "actual_controller"]"#,
            "reach = []",
        )
        .replace("version = \"2026.3\"", "version = \"2026.3-draft\"");
    let draft = socred_schema::load_rulebook("draft.toml", &text).unwrap();
    let base = Arc::new(Engine::new(Arc::new(rulebook)));
    let other = Arc::new(Engine::new(Arc::new(draft)));
    let day = Day::parse("2026-05-01").unwrap();
    let whole = socred_core::whatif::compare(
        (&base, &base.fold_all(&records, &facts, day)),
        (&other, &other.fold_all(&records, &facts, day)),
        day,
        1,
    );
    // Both people leave the list of the company they answer for.
    let left =
        serde_json::to_value(&whole).unwrap()["lists"]["judgment_defaulters"]["left"].clone();
    assert_eq!(left, 2, "{whole:#?}");

    // The subjects with records or facts, in order, cut every way into
    // consecutive parts.
    let mut subjects: Vec<socred_core::SubjectId> = records
        .iter()
        .map(|r| r.subject)
        .chain(facts.iter().map(|f| f.subject))
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 3);
    let cuts = 1usize << (subjects.len() - 1);
    for cut in 0..cuts {
        let mut parts: Vec<Vec<socred_core::SubjectId>> = vec![Vec::new()];
        for (i, &subject) in subjects.iter().enumerate() {
            if i > 0 && cut & (1 << (i - 1)) != 0 {
                parts.push(Vec::new());
            }
            parts.last_mut().unwrap().push(subject);
        }
        let part = |of: &[socred_core::SubjectId]| -> (Vec<Record>, Vec<Fact>) {
            (
                records
                    .iter()
                    .filter(|r| of.contains(&r.subject))
                    .cloned()
                    .collect(),
                facts
                    .iter()
                    .filter(|f| of.contains(&f.subject))
                    .cloned()
                    .collect(),
            )
        };
        let mut paged =
            socred_core::whatif::PagedComparison::new(base.clone(), other.clone(), day, 1);
        // Only organisations name related subjects in the default
        // rulebook: the first reading may leave persons out.
        assert!(!paged.gathers(socred_core::SubjectKind::Person));
        assert!(paged.gathers(socred_core::SubjectKind::Organisation));
        for of in &parts {
            let of: Vec<_> = of
                .iter()
                .copied()
                .filter(|s| paged.gathers(s.kind()))
                .collect();
            let (r, f) = part(&of);
            paged.gather((&r, &f), (&r, &f));
        }
        for (i, of) in parts.iter().enumerate() {
            let (r, f) = part(of);
            let last = if i + 1 == parts.len() {
                None
            } else {
                of.last().copied()
            };
            paged.count((&r, &f), (&r, &f), last);
        }
        assert_eq!(paged.finish(), whole, "parts {parts:?}");
    }
}
