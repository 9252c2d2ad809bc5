//! Data-driven tests of the fold: each `fixtures/fold/*.ndjson` holds a
//! directive line (rulebook, as-of days, measures to decide) and records and
//! facts; the credit files it gives, explained, and the decisions are
//! compared with `fixtures/fold/*.expected`. Run with `UPDATE_EXPECT=1` to
//! rewrite the expectations, then read the diff.

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
