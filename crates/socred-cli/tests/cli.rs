//! The `socred` binary as a user runs it: exit codes, what goes to stdout
//! and stderr, and that bad lines are reported while good ones are scored.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn socred(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_socred"))
        .args(args)
        .output()
        .expect("socred runs")
}

fn socred_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_socred"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("socred runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn id_check_exit_codes_and_messages() {
    let valid = socred(&["id", "check", "11010519491231002X"]);
    assert_eq!(valid.status.code(), Some(0));
    assert!(text(&valid.stdout).contains("valid person identifier"));

    let lower_x = socred(&["id", "check", "11010519491231002x"]);
    assert_eq!(lower_x.status.code(), Some(0));
    assert!(
        text(&lower_x.stdout).starts_with("11010519491231002X"),
        "normalised to upper case"
    );

    let company = socred(&["id", "check", "91110000600037341L"]);
    assert_eq!(company.status.code(), Some(0));
    assert!(text(&company.stdout).contains("organisation"));

    let pilot = socred(&["id", "check", "91350100M0001TGQXM"]);
    assert_eq!(pilot.status.code(), Some(0), "pilot codes are accepted");
    assert!(
        text(&pilot.stderr).contains("warning"),
        "never silently: {}",
        text(&pilot.stderr)
    );

    let bad_check = socred(&["id", "check", "110105194912310021"]);
    assert_eq!(bad_check.status.code(), Some(1));
    assert!(
        text(&bad_check.stderr).contains("check character"),
        "{}",
        text(&bad_check.stderr)
    );

    let short = socred(&["id", "check", "1101051949"]);
    assert_eq!(short.status.code(), Some(1));
    assert!(
        text(&short.stderr).contains("10 characters"),
        "{}",
        text(&short.stderr)
    );

    let bad_date = socred(&["id", "check", "110105194902300021"]);
    assert_eq!(bad_date.status.code(), Some(1));
    assert!(
        text(&bad_date.stderr).contains("birth date"),
        "{}",
        text(&bad_date.stderr)
    );
    // A control character in what was typed is shown escaped, not sent to
    // the terminal: the identifier does not pass for a valid one.
    let out = socred(&["id", "check", "1101051949123100\u{1}2X"]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stderr);
    assert!(said.contains(r"1101051949123100\u{1}2X"), "{said}");
    assert!(!said.contains('\u{1}'), "{said}");
}

#[test]
fn rulebook_check_reports_every_problem_with_line_and_column() {
    let good = socred(&[
        "rulebook",
        "check",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../rulebooks/default.toml"),
    ]);
    assert_eq!(good.status.code(), Some(0), "{}", text(&good.stderr));

    let dir = tempdir();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"[rulebook]
id = "bad"
version = "1"
title = "bad"

[[record_type]]
id = "belief.religion"
title = "Religious affiliation"
subject_kinds = ["person"]
category = "religion"
severity = "minor"
legal_basis = ""
retention = "P5Y"
"#,
    )
    .unwrap();
    let bad = socred(&["rulebook", "check", path.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let report = text(&bad.stderr);
    assert!(
        report.contains("bad.toml:12:"),
        "legal basis problem located: {report}"
    );
    assert!(
        report.to_lowercase().contains("religio"),
        "protected category named: {report}"
    );
    assert!(report.contains("problem(s) found"), "{report}");
}

#[test]
fn gen_is_seeded_and_score_folds_it() {
    let first = socred(&["gen", "--seed", "5", "--subjects", "60", "--records", "800"]);
    let second = socred(&["gen", "--seed", "5", "--subjects", "60", "--records", "800"]);
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(first.stdout, second.stdout, "same seed, same bytes");
    let lines = text(&first.stdout);
    assert!(lines.lines().count() >= 800);

    let scored = socred_stdin(
        &["score", "--records", "-", "--as-of", "2026-11-01"],
        &lines,
    );
    assert_eq!(scored.status.code(), Some(0), "{}", text(&scored.stderr));
    let files: Vec<serde_json::Value> = text(&scored.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        files.len() >= 50,
        "one file per subject, got {}",
        files.len()
    );
    for file in &files {
        for key in ["subject", "score", "grade", "lists"] {
            assert!(file.get(key).is_some(), "missing {key} in {file}");
        }
    }
    assert!(
        files.iter().any(|f| f["score"].is_null()),
        "persons without consent are not scored"
    );
    assert!(files.iter().any(|f| f["score"].is_i64()));
    let again = socred_stdin(
        &["score", "--records", "-", "--as-of", "2026-11-01"],
        &lines,
    );
    assert_eq!(scored.stdout, again.stdout, "byte-identical across runs");

    // As of a day before some subjects' first record, those have no file:
    // nothing was known about them (as a timeline's step counts them).
    let early = socred_stdin(
        &["score", "--records", "-", "--as-of", "2021-01-15"],
        &lines,
    );
    assert_eq!(early.status.code(), Some(0), "{}", text(&early.stderr));
    let known = text(&early.stdout).lines().count();
    assert!(
        known > 0 && known < files.len(),
        "{known} of {}",
        files.len()
    );
}

/// A population the generator cannot number is refused at once with the
/// bound, not cut short in silence (or drawn until memory runs out).
#[test]
fn gen_refuses_a_population_it_cannot_number() {
    for (subjects, said) in [("0", "0"), ("4294967297", "4294967297")] {
        let refused = socred(&["gen", "--subjects", subjects, "--records", "1"]);
        assert_eq!(refused.status.code(), Some(2), "{subjects}");
        let message = text(&refused.stderr);
        assert!(
            message.contains("--subjects") && message.contains(said),
            "{message}"
        );
        assert!(message.contains("1..=4294967296"), "{message}");
        assert!(refused.stdout.is_empty());
    }
}

/// Days `gen` cannot draw a population for, and days in the wrong order,
/// are usage errors that say why; so is a subject that is no identifier.
#[test]
fn arguments_that_cannot_hold_are_usage_errors() {
    for (args, said) in [
        (
            vec!["gen", "--start", "1900-01-01"],
            "outside 1986-01-01 to 2117-12-31",
        ),
        (
            vec!["gen", "--start", "2200-01-01"],
            "outside 1986-01-01 to 2117-12-31",
        ),
        (
            vec!["gen", "--start", "2026-01-01", "--end", "2025-01-01"],
            "before --start",
        ),
        (vec!["gen", "--end", "2025-02-30"], "--end"),
        (
            vec![
                "explain",
                "--records",
                "-",
                "--subject",
                "110105194912310021",
            ],
            "--subject",
        ),
        (
            vec!["decide", "--records", "-", "--subject", "nobody"],
            "--subject",
        ),
        (vec!["verify", "--store", "bogus://x"], "--store"),
        (
            vec!["whatif", "--records", "-", "--against", "a.toml"],
            "give a file, not standard input",
        ),
    ] {
        let out = socred(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(said),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // A valid subject the records never name is explained, and said to be
    // unknown rather than only "not consented".
    let out = socred(&[
        "explain",
        "--records",
        "-",
        "--subject",
        "11010519491231002X",
        "--as-of",
        "2026-01-01",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("knows nothing about"),
        "{}",
        text(&out.stderr)
    );
    // One named only as a listed company's legal representative is known:
    // the company's entry reaches it, and no note says otherwise.
    let company = "91110000600037341L";
    let records = format!(
        "{}\n{}\n",
        format_args!(
            r#"{{"provider":"amr","id":"reg-1","subject":"{company}","type":"registry.company_registration","occurred_at":"2025-01-01","decided_at":"2025-01-01","fields":{{"name":"A Co.","legal_representative":"11010519491231002X"}}}}"#
        ),
        format_args!(
            r#"{{"provider":"court","id":"zhi-1","subject":"{company}","type":"judicial.judgment_default","occurred_at":"2025-06-01","decided_at":"2025-06-02","fields":{{"case_no":"(2025) Jing 01 Zhi 1"}}}}"#
        ),
    );
    let out = socred_stdin(
        &[
            "explain",
            "--records",
            "-",
            "--subject",
            "11010519491231002X",
            "--as-of",
            "2025-07-01",
        ],
        &records,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("knows nothing"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("judgment_defaulters"),
        "{}",
        text(&out.stdout)
    );
}

/// A generated city of 2,000 subjects and 20,000 records (about 5 MB).
fn city() -> String {
    let population = socred(&[
        "gen",
        "--seed",
        "9",
        "--subjects",
        "2000",
        "--records",
        "20000",
    ]);
    assert_eq!(population.status.code(), Some(0));
    text(&population.stdout)
}

/// A generated city has a few exemplary residents: its civic-minded few
/// volunteer, donate and are honoured enough to reach grade AAA, so the
/// weekly red list names some, but far from everyone.
#[test]
fn a_generated_city_names_a_few_exemplary_residents() {
    let scored = socred_stdin(
        &["score", "--records", "-", "--as-of", "2026-11-01"],
        &city(),
    );
    assert_eq!(scored.status.code(), Some(0), "{}", text(&scored.stderr));
    let (mut persons, mut exemplary) = (0, 0);
    for line in text(&scored.stdout).lines() {
        let file: serde_json::Value = serde_json::from_str(line).unwrap();
        let subject = socred_core::SubjectId::parse(file["subject"].as_str().unwrap()).unwrap();
        if subject.id.kind() == socred_core::SubjectKind::Person {
            persons += 1;
        }
        let lists = file["lists"].as_array().unwrap();
        if lists.iter().any(|l| l == "exemplary_residents") {
            assert_eq!(file["grade"], "AAA", "{file}");
            exemplary += 1;
        }
    }
    let share = f64::from(exemplary) / f64::from(persons);
    assert!(
        (0.001..0.02).contains(&share),
        "{exemplary} exemplary residents of {persons} persons"
    );
}

/// Several megabytes of records, with bad lines spread through them, give
/// the same files, messages and exit code on one thread as on three.
#[test]
fn score_is_the_same_on_any_number_of_threads() {
    let mut input = String::new();
    let mut bad = 0;
    for (n, line) in city().lines().enumerate() {
        input.push_str(line);
        input.push('\n');
        if n % 3001 == 7 {
            input.push_str("{not json\n");
            bad += 1;
        }
    }
    assert!(input.len() > 4 << 20, "more than a few blocks of lines");
    let run = |threads: &str| {
        socred_stdin(
            &[
                "score",
                "--records",
                "-",
                "--as-of",
                "2026-11-01",
                "--full",
                "--threads",
                threads,
            ],
            &input,
        )
    };
    let one = run("1");
    assert_eq!(one.status.code(), Some(3), "{}", text(&one.stderr));
    let errors = text(&one.stderr);
    assert!(
        errors.contains(&format!("{bad} line(s) rejected")),
        "{errors}"
    );
    assert!(errors.contains("-: line 9:"), "{errors}");
    assert!(text(&one.stdout).lines().count() > 1500);
    let three = run("3");
    assert_eq!(three.status.code(), one.status.code());
    assert!(three.stdout == one.stdout, "the same files, byte for byte");
    assert_eq!(text(&three.stderr), errors);
}

/// `explain` folds only the subject and those that name it; its file is
/// the one `score` gives the subject from the whole file, entries reaching
/// it from a listed company included.
#[test]
fn explain_gives_the_file_score_gives() {
    let input = city();
    let scored = socred_stdin(
        &["score", "--records", "-", "--as-of", "2026-11-01", "--full"],
        &input,
    );
    assert_eq!(scored.status.code(), Some(0), "{}", text(&scored.stderr));
    let files: Vec<serde_json::Value> = text(&scored.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reached = files
        .iter()
        .find(|f| text(&serde_json::to_vec(f).unwrap()).contains("\"via\""))
        .expect("a subject reached by a listed company");
    for file in [reached, &files[0]] {
        let subject = file["subject"].as_str().unwrap();
        let explained = socred_stdin(
            &[
                "explain",
                "--records",
                "-",
                "--as-of",
                "2026-11-01",
                "--json",
                "--subject",
                subject,
            ],
            &input,
        );
        assert_eq!(
            explained.status.code(),
            Some(0),
            "{}",
            text(&explained.stderr)
        );
        let explained: serde_json::Value = serde_json::from_slice(&explained.stdout).unwrap();
        assert_eq!(&explained, file, "{subject}");
    }
}

#[test]
fn bad_lines_are_reported_with_their_number_and_the_rest_is_scored() {
    let input = concat!(
        r#"{"provider": "court.beijing-1", "id": "a1", "subject": "11010519491231002X", "type": "judicial.judgment_default", "occurred_at": "2026-03-01", "decided_at": "2026-03-15", "fields": {"case_no": "(2026) Jing 01 Zhi 1"}}"#,
        "\n",
        "{not json\n",
        r#"{"provider": "court.beijing-1", "id": "a2", "subject": "11010519491231002X", "type": "no.such_type", "occurred_at": "2026-03-01", "decided_at": "2026-03-15", "fields": {}}"#,
        "\n",
        r#"{"provider": "court.beijing-1", "id": "a3", "subject": "110105194912310021", "type": "judicial.judgment_default", "occurred_at": "2026-03-01", "decided_at": "2026-03-15", "fields": {"case_no": "x"}}"#,
        "\n",
        r#"{"provider": "bank.boc", "id": "a4", "subject": "11010519491231002X", "type": "commercial.bank_arrears", "occurred_at": "2026-03-01", "decided_at": "2026-03-15", "fields": {"cycles": "three"}}"#,
        "\n",
        // A key that would colour the terminal and forge a report line.
        r#"{"provider": "bank.boc", "id": "a5", "subject": "11010519491231002X", "type": "commercial.bank_arrears", "occurred_at": "2026-03-01", "decided_at": "2026-03-15", "fields": {"\u001b[31mevil\n line 99: fake": 1}}"#,
        "\n",
    );
    let out = socred_stdin(&["score", "--records", "-", "--as-of", "2026-04-01"], input);
    assert_eq!(
        out.status.code(),
        Some(3),
        "exit code says something was rejected"
    );
    let errors = text(&out.stderr);
    for line in ["line 2", "line 3", "line 4", "line 5", "line 6"] {
        assert!(errors.contains(line), "{line} reported: {errors}");
    }
    assert!(errors.contains("5 line(s) rejected"), "{errors}");
    assert!(!errors.contains('\u{1b}'), "{errors}");
    assert!(
        !errors.lines().any(|l| l.starts_with(" line 99")),
        "{errors}"
    );
    assert!(
        errors.contains(r"fields.\u{1b}[31mevil\n line 99: fake"),
        "{errors}"
    );
    let file: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(
        file["lists"],
        serde_json::json!(["judgment_defaulters"]),
        "the valid line still counts"
    );
}

#[test]
fn decide_and_explain_give_reasons() {
    let input = concat!(
        r#"{"provider": "court.beijing-1", "id": "a1", "subject": "11010519491231002X", "type": "judicial.judgment_default", "occurred_at": "2026-03-01", "decided_at": "2026-03-15", "fields": {"case_no": "(2026) Jing 01 Zhi 1"}}"#,
        "\n"
    );
    let dir = tempdir();
    let path = dir.path().join("records.ndjson");
    std::fs::write(&path, input).unwrap();
    let path = path.to_str().unwrap();
    // A pilot code asked about is accepted, with its warning.
    let pilot = socred(&[
        "decide",
        "--records",
        path,
        "--subject",
        "91350100M0001TGQXM",
    ]);
    assert_eq!(pilot.status.code(), Some(0), "{}", text(&pilot.stderr));
    assert!(
        text(&pilot.stderr).contains("warning: 91350100M0001TGQXM: check character"),
        "{}",
        text(&pilot.stderr)
    );
    let decide = |measure: &str| {
        let decided = socred(&[
            "decide",
            "--records",
            path,
            "--as-of",
            "2026-04-01",
            "--subject",
            "11010519491231002X",
            "--measure",
            measure,
        ]);
        assert_eq!(decided.status.code(), Some(0), "{}", text(&decided.stderr));
        serde_json::from_str::<serde_json::Value>(text(&decided.stdout).trim()).unwrap()
    };
    let decision = decide("no_air_travel");
    assert_eq!(decision["applies"], true);
    assert_eq!(
        decision["reasons"][0]["grounds"][0]["list"],
        "judgment_defaulters"
    );
    assert!(decision["rulebook"]
        .as_str()
        .unwrap()
        .starts_with("socred-default@"));
    // A reward by grade that does not apply says why there is no grade:
    // the person has not consented to scoring.
    let decision = decide("deposit_free_rental");
    assert_eq!(decision["applies"], false);
    assert_eq!(
        decision["reasons"],
        serde_json::json!([
            {"reason": "no_condition_holds"},
            {"reason": "not_scored", "model": "rongcheng", "why": "no_consent"}
        ])
    );

    // A misspelt measure is named before the records are read: here the
    // file does not even exist.
    let unknown = socred(&[
        "decide",
        "--records",
        "/nonexistent/records.ndjson",
        "--subject",
        "11010519491231002X",
        "--measure",
        "no_such",
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown.stderr).contains("no measure `no_such`"),
        "{}",
        text(&unknown.stderr)
    );

    let explained = socred(&[
        "explain",
        "--records",
        path,
        "--as-of",
        "2026-04-01",
        "--subject",
        "11010519491231002X",
    ]);
    assert_eq!(explained.status.code(), Some(0));
    let explanation = text(&explained.stdout);
    assert!(explanation.contains("judgment_defaulters"), "{explanation}");
    assert!(explanation.contains("legal basis"), "{explanation}");
    assert!(
        explanation.contains("Not scored"),
        "no consent, no score: {explanation}"
    );
}

/// A directory of the test's own, removed when the test ends.
fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The groups of a report's `changes` add up: by kind and by province to
/// `subjects`, by sex and by decade of birth to the persons, for every
/// count; and no group shown has fewer than `group_min` subjects.
fn assert_groups_add_up(changes: &serde_json::Value, subjects: u64, group_min: u64, context: &str) {
    let persons = &changes["groups"]["kind"]["person"];
    let field = |value: &serde_json::Value, name: &str| value[name].as_u64().unwrap();
    let everyone = serde_json::json!({
        "subjects": subjects,
        "changed": changes["changed"],
        "lowered": changes["scores"]["lowered"],
    });
    for (way, all) in [
        ("kind", &everyone),
        ("province", &everyone),
        ("sex", persons),
        ("born", persons),
    ] {
        let groups = changes["groups"][way]
            .as_object()
            .unwrap_or_else(|| panic!("{context}: groups by {way}: {changes}"));
        for (name, group) in groups {
            assert!(
                field(group, "subjects") >= group_min,
                "{context}: {way} {name}"
            );
        }
        for name in ["subjects", "changed", "lowered"] {
            let total: u64 = groups.values().map(|g| field(g, name)).sum();
            assert_eq!(total, field(all, name), "{context}: {way} {name}");
        }
    }
}

/// The sum of a JSON object's counts.
fn sum(counts: &serde_json::Value) -> u64 {
    counts
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum()
}

/// For every list and measure of either tally (`before`, `after`), the
/// count after minus the count before is the number of subjects who entered
/// minus those who left, as `changes` gives them.
fn assert_moves_add_up(
    before: &serde_json::Value,
    after: &serde_json::Value,
    changes: &serde_json::Value,
    context: &str,
) {
    for part in ["lists", "measures"] {
        let names: std::collections::BTreeSet<&String> = before[part]
            .as_object()
            .unwrap()
            .keys()
            .chain(after[part].as_object().unwrap().keys())
            .collect();
        for name in names {
            let count =
                |tally: &serde_json::Value| tally[part][name.as_str()].as_i64().unwrap_or(0);
            let moved = |way: &str| changes[part][name.as_str()][way].as_i64().unwrap_or(0);
            assert_eq!(
                count(after) - count(before),
                moved("entered") - moved("left"),
                "{context}: {part} {name}: {changes}"
            );
        }
    }
}

/// What-if: a draft that makes a contract breach cost ten times the points
/// lowers scores and grades and nothing else rises; every count of the
/// report adds up; the rulebook against itself changes nothing; and the
/// records must come from a file, since they are read once per rulebook.
#[test]
fn whatif_compares_two_rulebooks_on_one_history() {
    let dir = tempdir();
    let records = dir.path().join("city.ndjson");
    std::fs::write(&records, city()).unwrap();
    let base = text(&socred(&["rulebook", "default"]).stdout);
    let rule =
        "id = \"contract_breach\"\nrecord_type = \"commercial.contract_breach\"\npoints = -20";
    assert!(
        base.contains(rule),
        "the default rulebook's contract breach rule"
    );
    let draft = base
        .replacen(rule, &rule.replace("-20", "-200"), 1)
        .replacen("version = \"2026.3\"", "version = \"2026.3-draft\"", 1);
    let base_file = dir.path().join("base.toml");
    let draft_file = dir.path().join("draft.toml");
    std::fs::write(&base_file, &base).unwrap();
    std::fs::write(&draft_file, &draft).unwrap();
    let run_with = |against: &std::path::Path, group_min: &str| {
        let out = socred(&[
            "whatif",
            "--records",
            records.to_str().unwrap(),
            "--rulebook",
            base_file.to_str().unwrap(),
            "--against",
            against.to_str().unwrap(),
            "--as-of",
            "2026-11-01",
            "--group-min",
            group_min,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("a JSON report")
    };
    let run = |against: &std::path::Path| run_with(against, "10");
    let report = run(&draft_file);
    let subjects = report["subjects"].as_u64().unwrap();
    assert!(subjects > 1000, "{report}");
    assert_eq!(sum(&report["base"]["grades"]), subjects);
    assert_eq!(sum(&report["other"]["grades"]), subjects);
    assert_moves_add_up(&report["base"], &report["other"], &report, "what-if");
    let lowered = report["scores"]["lowered"].as_u64().unwrap();
    assert!(lowered > 0, "{report}");
    assert_eq!(report["scores"]["raised"], 0, "{report}");
    assert!(report["scores"]["mean_change"].as_f64().unwrap() < 0.0);
    let graded_moves: u64 = report["grade_moves"]
        .as_object()
        .unwrap()
        .values()
        .map(sum)
        .sum();
    assert!(graded_moves > 0 && graded_moves <= lowered, "{report}");
    assert!(report["changed"].as_u64().unwrap() >= lowered);
    assert_eq!(report["other"]["rulebook"], "socred-default@2026.3-draft");
    assert_groups_add_up(&report, subjects, 10, "what-if");
    // With a minimum of 100 the smaller provinces are pooled; the one
    // decade of birth under 100 is pooled with the smallest other decade.
    let pooled = run_with(&draft_file, "100");
    assert_eq!(pooled["group_min"], 100);
    assert!(
        pooled["groups"]["province"].get("other").is_some(),
        "{pooled}"
    );
    let decades = pooled["groups"]["born"].as_object().unwrap();
    let shown = report["groups"]["born"].as_object().unwrap();
    assert_eq!(decades.len(), shown.len() - 1, "{pooled}");
    assert_groups_add_up(&pooled, subjects, 100, "what-if, 100 a group");
    let total = |way: &str, field: &str| -> u64 {
        report["groups"][way]
            .as_object()
            .unwrap()
            .values()
            .map(|group| group[field].as_u64().unwrap())
            .sum()
    };
    let punished = report["base"]["measures"]["no_air_travel"]
        .as_u64()
        .unwrap();
    assert!(total("kind", "punished_before") >= punished, "{report}");

    let same = run(&base_file);
    assert_eq!(same["changed"], 0, "{same}");
    assert_eq!(same["base"]["grades"], same["other"]["grades"]);
    assert_eq!(same["base"]["measures"], same["other"]["measures"]);
    assert_eq!(same["grade_moves"], serde_json::json!({}));

    let piped = socred_stdin(
        &[
            "whatif",
            "--records",
            "-",
            "--against",
            base_file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(piped.status.code(), Some(2), "a usage error");
    assert!(
        text(&piped.stderr).contains("standard input"),
        "{}",
        text(&piped.stderr)
    );

    // A broken second rulebook is reported before any record is read
    // (here the records file does not even exist).
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "garbage [").unwrap();
    let missing = dir.path().join("missing.ndjson");
    let early = socred(&[
        "whatif",
        "--records",
        missing.to_str().unwrap(),
        "--against",
        broken.to_str().unwrap(),
    ]);
    assert_eq!(early.status.code(), Some(1));
    let stderr = text(&early.stderr);
    assert!(
        stderr.contains("rulebook has problems") && !stderr.contains("cannot open"),
        "{stderr}"
    );
}

/// Timeline: a city followed year by year. Each step is the registry as
/// `socred score --as-of` reads it on that day; what entered and left a
/// list or a measure since the step before accounts for the difference
/// between the two steps' counts; the groups add up; and a series that
/// cannot be made is refused with the reason.
#[test]
fn timeline_follows_a_city_year_by_year() {
    let dir = tempdir();
    let records = dir.path().join("city.ndjson");
    std::fs::write(&records, city()).unwrap();
    let records = records.to_str().unwrap();
    let run = |threads: &str| {
        socred(&[
            "timeline",
            "--records",
            records,
            "--from",
            "2021-01-01",
            "--as-of",
            "2026-11-01",
            "--every",
            "P1Y",
            "--threads",
            threads,
        ])
    };
    let out = run("2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(run("1").stdout, out.stdout, "the same report on one thread");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["rulebook"], "socred-default@2026.3");
    assert_eq!(report["every"], "P1Y");
    let steps = report["steps"].as_array().unwrap();
    let days: Vec<&str> = steps.iter().map(|s| s["as_of"].as_str().unwrap()).collect();
    assert_eq!(
        days,
        [
            "2021-01-01",
            "2022-01-01",
            "2023-01-01",
            "2024-01-01",
            "2025-01-01",
            "2026-01-01",
            "2026-11-01"
        ]
    );
    let count = |value: &serde_json::Value, name: &str| value[name].as_i64().unwrap_or(0);
    assert!(steps[0].get("changes").is_none(), "{}", steps[0]);
    let mut known = 0;
    for (before, step) in steps.iter().zip(&steps[1..]) {
        let subjects = step["subjects"].as_u64().unwrap();
        assert!(subjects >= known, "subjects only accumulate: {step}");
        known = subjects;
        assert_eq!(sum(&step["tally"]["grades"]), subjects, "{step}");
        let changes = &step["changes"];
        let day = step["as_of"].as_str().unwrap();
        assert_moves_add_up(&before["tally"], &step["tally"], changes, day);
        assert_groups_add_up(changes, subjects, 10, day);
    }
    // The city has records from 2021 on: few subjects on its first day, all
    // of them by the last, and people entering and leaving the lists.
    assert!(
        steps[0]["subjects"].as_u64().unwrap() < known / 10,
        "{}",
        steps[0]
    );
    let moves: i64 = steps[1..]
        .iter()
        .map(|s| count(&s["changes"]["lists"]["judgment_defaulters"], "left"))
        .sum();
    assert!(moves > 0, "some defaulters leave the list over five years");

    // A step counts what `socred score` gives on its day.
    let scored = socred(&["score", "--records", records, "--as-of", "2024-01-01"]);
    assert_eq!(scored.status.code(), Some(0), "{}", text(&scored.stderr));
    let mut lists = std::collections::BTreeMap::<String, i64>::new();
    let mut measures = std::collections::BTreeMap::<String, i64>::new();
    let mut graded = std::collections::BTreeMap::<String, i64>::new();
    for line in text(&scored.stdout).lines() {
        let file: serde_json::Value = serde_json::from_str(line).unwrap();
        for (part, counts) in [("lists", &mut lists), ("measures", &mut measures)] {
            for name in file[part].as_array().unwrap() {
                *counts
                    .entry(name.as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        if let Some(grade) = file["grade"].as_str() {
            *graded.entry(grade.to_string()).or_default() += 1;
        }
    }
    let step = &steps[3];
    assert_eq!(step["as_of"], "2024-01-01");
    let tally = |part: &str| -> std::collections::BTreeMap<String, i64> {
        step["tally"][part]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| name.as_str() != "not graded")
            .map(|(name, n)| (name.clone(), n.as_i64().unwrap()))
            .collect()
    };
    assert_eq!(tally("lists"), lists);
    assert_eq!(tally("measures"), measures);
    assert_eq!(tally("grades"), graded);

    for (args, reason) in [
        (["--from", "2027-01-01", "--every", "P1Y"], "after the last"),
        (["--from", "2021-01-01", "--every", "P0D"], "empty"),
        (
            ["--from", "2021-01-01", "--every", "P1D"],
            "more than 1000 steps",
        ),
        (["--from", "2021-01-01", "--every", "1 month"], "--every"),
        (["--from", "2021-02-30", "--every", "P1M"], "--from"),
    ] {
        // Named before the records are read: the same with a file that
        // does not exist.
        for records in [records, "/nonexistent/records.ndjson"] {
            let mut all = vec!["timeline", "--records", records, "--as-of", "2026-11-01"];
            all.extend(args);
            let out = socred(&all);
            // Usage errors, as the parser's own are.
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            assert!(
                text(&out.stderr).contains(reason),
                "{args:?}: {}",
                text(&out.stderr)
            );
        }
    }
    // A group minimum of 0 is a usage error, named.
    let out = socred(&[
        "timeline",
        "--records",
        records,
        "--from",
        "2021-01-01",
        "--group-min",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--group-min"),
        "{}",
        text(&out.stderr)
    );
}

/// Which of `socred`'s outputs goes to a pipe whose reader is gone.
#[derive(Clone, Copy)]
enum Closed {
    Stdout,
    Stderr,
}

/// `socred` with its standard output or error a pipe whose reader is
/// gone, as in `socred … | head` once `head` has its lines.
fn socred_into_closed(args: &[&str], closed: Closed) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let mut command = Command::new(env!("CARGO_BIN_EXE_socred"));
    command.args(args).stdin(Stdio::null());
    match closed {
        Closed::Stdout => command.stdout(Stdio::from(writer)).stderr(Stdio::piped()),
        Closed::Stderr => command.stdout(Stdio::piped()).stderr(Stdio::from(writer)),
    };
    command.output().expect("socred runs")
}

#[test]
fn a_reader_that_went_away_ends_the_output_without_a_panic() {
    let dir = tempdir();
    let records = dir.path().join("records.ndjson");
    std::fs::write(
        &records,
        concat!(
            r#"{"provider": "court.beijing-1", "id": "a1", "subject": "11010519491231002X", "type": "judicial.judgment_default", "occurred_at": "2026-03-01", "decided_at": "2026-03-15", "fields": {"case_no": "(2026) Jing 01 Zhi 1"}}"#,
            "\n{not json\n",
        ),
    )
    .unwrap();
    let records = records.to_str().unwrap();
    // Standard output gone: what was asked for is no longer wanted, and
    // that is no failure.
    for args in [
        &["rulebook", "schema"][..],
        &["rulebook", "default"],
        &["id", "check", "11010519491231002X"],
        &[
            "explain",
            "--records",
            records,
            "--subject",
            "11010519491231002X",
            "--as-of",
            "2026-04-01",
        ],
    ] {
        let out = socred_into_closed(args, Closed::Stdout);
        let errors = text(&out.stderr);
        assert!(!errors.contains("panicked"), "{args:?}: {errors}");
        assert!(
            out.status.code().is_some_and(|c| c != 101),
            "{args:?}: {:?} {errors}",
            out.status
        );
    }
    // Standard error gone: the diagnostics are dropped, the exit code
    // still says what happened and the output is whole.
    let out = socred_into_closed(
        &["score", "--records", records, "--as-of", "2026-04-01"],
        Closed::Stderr,
    );
    assert_eq!(out.status.code(), Some(3), "one line rejected");
    let file: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(file["lists"], serde_json::json!(["judgment_defaulters"]));
    let out = socred_into_closed(&["id", "check", "11010519491231002Y"], Closed::Stderr);
    assert_eq!(out.status.code(), Some(1));
}

/// A correction whose fields were checked against another type than its
/// record's is reported and not applied (a store refuses it), and the
/// exit code says a line was refused; one of the record's own type is
/// applied.
#[test]
fn a_correction_of_another_type_is_not_applied() {
    let subject = "310101198507141234";
    let lines = [
        format!(r#"{{"fact": "consent_granted", "subject": "{subject}", "at": "2026-01-01"}}"#),
        format!(
            r#"{{"provider": "bank.x", "id": "k1", "subject": "{subject}", "type": "commercial.bank_arrears", "occurred_at": "2026-03-01", "decided_at": "2026-03-02", "fields": {{"amount_yuan": 100.0, "cycles": 2}}}}"#
        ),
        format!(
            r#"{{"fact": "corrected", "provider": "bank.x", "record": "k1", "subject": "{subject}", "at": "2026-04-01", "type": "commercial.contract_breach", "fields": {{"amount_yuan": 1}}}}"#
        ),
    ];
    let score = |lines: &[String]| {
        socred_stdin(
            &["score", "--records", "-", "--as-of", "2026-05-01"],
            &lines.join("\n"),
        )
    };
    let before = score(&lines[..2]);
    let refused = score(&lines);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("gives fields of type `commercial.contract_breach`"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(
        refused.stdout, before.stdout,
        "the correction changed nothing"
    );

    let mut own = lines.to_vec();
    own[2] = format!(
        r#"{{"fact": "corrected", "provider": "bank.x", "record": "k1", "subject": "{subject}", "at": "2026-04-01", "type": "commercial.bank_arrears", "fields": {{"amount_yuan": 100.0, "cycles": 5}}}}"#
    );
    let applied = score(&own);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied.stderr));
    assert_ne!(
        applied.stdout, before.stdout,
        "five cycles cost more than two"
    );
}
