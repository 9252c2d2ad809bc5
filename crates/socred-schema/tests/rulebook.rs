//! Tests of the rulebook file: the shipped default loads and holds what data
//! providers emit; a broken rulebook reports every problem with its position
//! (snapshot); protected categories and score-only punishments are refused;
//! the published JSON Schema is the one the code derives.
//!
//! Snapshots and `docs/rulebook.schema.json` are rewritten by running the
//! tests with `UPDATE_EXPECT=1`; read the diff before committing it.

use std::collections::BTreeSet;
use std::path::Path;

use expect_test::expect_file;
use socred_core::record::FieldType;
use socred_core::rulebook::{KindSet, ListKind, MeasureKind, Points};
use socred_schema::{
    default_rulebook, load_rulebook, rulebook_json_schema, RulebookErrors, DEFAULT_RULEBOOK_TOML,
};

fn errors(label: &str, text: &str) -> RulebookErrors {
    match load_rulebook(label, text) {
        Ok(_) => panic!("{label} loaded, but it should not"),
        Err(errors) => errors,
    }
}

fn loads(label: &str, text: &str) -> socred_core::Rulebook {
    load_rulebook(label, text).unwrap_or_else(|errors| panic!("{label} does not load:\n{errors}"))
}

#[test]
fn default_rulebook_loads_with_the_record_types_providers_emit() {
    let rulebook = loads("rulebooks/default.toml", DEFAULT_RULEBOOK_TOML);
    assert_eq!(rulebook.label(), "socred-default@2026.3");
    let ids: BTreeSet<&str> = rulebook.catalog.iter().map(|t| t.id.as_ref()).collect();
    let expected: BTreeSet<&str> = [
        "registry.profession",
        "registry.company_registration",
        "judicial.judgment_default",
        "judicial.judgment_fulfilled",
        "transport.fare_evasion",
        "transport.smoking_on_train",
        "transport.fake_ticket",
        "commercial.contract_breach",
        "commercial.sued_in_breach",
        "commercial.bank_arrears",
        "commercial.private_lending_breach",
        "commercial.illegal_fundraising",
        "commercial.counterfeit_goods",
        "social.public_fee_delay",
        "social.court_found_arrears",
        "social.utility_theft",
        "social.public_equipment_damage",
        "professional.misconduct",
        "market.food_safety_violation",
        "market.administrative_penalty",
        "tax.credit_evaluation",
        "tax.grade_d_assignment",
        "tax.new_taxpayer",
        "positive.volunteering",
        "positive.blood_donation",
        "positive.charitable_donation",
        "positive.honour",
    ]
    .into_iter()
    .collect();
    assert_eq!(ids, expected);

    let field = |record_type: &str, name: &str| {
        let index = rulebook
            .record_type(record_type)
            .unwrap_or_else(|| panic!("no {record_type}"));
        let fields = &rulebook.catalog[index as usize].fields;
        fields
            .iter()
            .find(|f| f.name.as_ref() == name)
            .map(|f| (f.field_type, f.required))
    };
    assert_eq!(
        field("judicial.judgment_default", "case_no"),
        Some((FieldType::Text, true))
    );
    assert_eq!(
        field("judicial.judgment_default", "amount_yuan"),
        Some((FieldType::Number, false))
    );
    assert_eq!(
        field("registry.company_registration", "legal_representative"),
        Some((FieldType::Subject, true))
    );
    assert_eq!(
        field("registry.company_registration", "actual_controller"),
        Some((FieldType::Subject, false))
    );
    assert_eq!(
        field("commercial.bank_arrears", "cycles"),
        Some((FieldType::Int, true))
    );
    assert_eq!(
        field("market.food_safety_violation", "serious"),
        Some((FieldType::Bool, false))
    );
    assert_eq!(
        field("positive.blood_donation", "millilitres"),
        Some((FieldType::Int, true))
    );
    assert_eq!(
        field("tax.credit_evaluation", "points"),
        Some((FieldType::Int, true))
    );

    let company = &rulebook.catalog[rulebook
        .record_type("registry.company_registration")
        .unwrap_or(0) as usize];
    let relations: Vec<&str> = company.relation_fields.iter().map(|f| f.as_ref()).collect();
    assert_eq!(relations, ["legal_representative", "actual_controller"]);
    let profession =
        &rulebook.catalog[rulebook.record_type("registry.profession").unwrap_or(0) as usize];
    assert_eq!(profession.profession_field.as_deref(), Some("profession"));
    assert!(rulebook
        .catalog
        .iter()
        .all(|t| !t.legal_basis.trim().is_empty()));
}

#[test]
fn default_rulebook_models_lists_and_measures_are_lowered() {
    let rulebook = default_rulebook();
    let model_ids: Vec<&str> = rulebook.models.iter().map(|m| m.id.as_ref()).collect();
    assert_eq!(model_ids, ["rongcheng", "tax_credit"]);

    let rongcheng = &rulebook.models[0];
    assert_eq!(rongcheng.base_points, 1000);
    assert_eq!(rongcheng.subject_kinds, KindSet::ALL);
    assert_eq!(
        rongcheng.consent_required_for,
        KindSet {
            person: true,
            organisation: false
        }
    );
    let bands: Vec<(&str, i64)> = rongcheng
        .grades
        .iter()
        .map(|g| (g.grade.as_ref(), g.points_min))
        .collect();
    assert_eq!(
        bands,
        [
            ("AAA", 1050),
            ("AA", 1030),
            ("A", 960),
            ("B", 850),
            ("C", 600),
            ("D", i64::MIN)
        ]
    );
    let rule = |id: &str| {
        rongcheng
            .rules
            .iter()
            .find(|r| r.id.as_ref() == id)
            .unwrap_or_else(|| panic!("no rule {id}"))
    };
    assert!(matches!(rule("bank_arrears").points, Points::Expression(_)));
    assert!(matches!(
        rule("sued_in_breach").points,
        Points::Constant(-50)
    ));
    let fee = rule("public_fee_delay")
        .escalation
        .as_ref()
        .map(|e| (e.from_count, e.multiplier));
    assert_eq!(fee, Some((3, 2)));
    assert_eq!(rule("charitable_donation").points_max, Some(10));
    let professions: Vec<&str> = rule("key_group_misconduct")
        .professions
        .iter()
        .map(|p| p.as_ref())
        .collect();
    assert_eq!(
        professions,
        [
            "lawyer",
            "accountant",
            "teacher",
            "journalist",
            "doctor",
            "civil_servant"
        ]
    );
    // A rule's kinds default to what both its record type and the model allow.
    assert_eq!(
        rule("blood_donation").subject_kinds,
        KindSet {
            person: true,
            organisation: false
        }
    );
    assert_eq!(rongcheng.caps.len(), 1);
    assert_eq!(rongcheng.expectations.len(), 1);

    let tax = &rulebook.models[1];
    assert!(tax.requires_records);
    assert_eq!(tax.base_points, 0);
    let bands: Vec<(&str, i64)> = tax
        .grades
        .iter()
        .map(|g| (g.grade.as_ref(), g.points_min))
        .collect();
    assert_eq!(bands, [("A", 90), ("B", 70), ("C", 40), ("D", i64::MIN)]);

    let list = |id: &str| {
        rulebook
            .lists
            .iter()
            .find(|l| l.id.as_ref() == id)
            .unwrap_or_else(|| panic!("no list {id}"))
    };
    let defaulters = list("judgment_defaulters");
    assert_eq!(defaulters.kind, ListKind::Black);
    assert!(defaulters.public && defaulters.review_required && defaulters.exit_on_repair);
    assert_eq!(
        defaulters.duration_max.map(|p| p.to_string()).as_deref(),
        Some("P2Y")
    );
    assert_eq!(defaulters.duration_min.to_string(), "P3M");
    let exit = &defaulters.exits[0];
    assert_eq!(
        exit.record_type,
        rulebook
            .record_type("judicial.judgment_fulfilled")
            .unwrap_or(u32::MAX)
    );
    assert_eq!(exit.match_field.as_deref(), Some("case_no"));
    assert_eq!(exit.working_days, 3);
    let reach: Vec<&str> = defaulters.reach.iter().map(|r| r.as_ref()).collect();
    assert_eq!(reach, ["legal_representative", "actual_controller"]);
    assert_eq!(list("rail_ticket_ban").record_entries.len(), 3);
    assert!(list("serious_untrustworthy").record_entries[0]
        .condition
        .is_some());
    let red = list("exemplary_residents");
    assert_eq!(
        (red.kind, red.grade_model, red.grade_entries.len()),
        (ListKind::Red, Some(0), 1)
    );

    let measure_ids: BTreeSet<&str> = rulebook.measures.iter().map(|m| m.id.as_ref()).collect();
    for id in [
        "no_air_travel",
        "no_soft_sleeper_or_ship_berth",
        "no_g_train_or_emu_first_class",
        "no_star_hotel_or_golf",
        "no_property_purchase",
        "no_high_end_office_rent",
        "no_non_business_vehicle",
        "no_tourism",
        "no_private_school_fees",
        "no_high_premium_insurance",
        "no_rail_tickets",
        "procurement_exclusion",
        "express_security_lane",
        "deposit_free_rental",
        "green_channel",
    ] {
        assert!(measure_ids.contains(id), "no measure {id}");
    }
    // No punishment of the default rulebook rests on a score alone.
    for measure in &rulebook.measures {
        assert!(!measure.score_only_opt_in, "{} opts in", measure.id);
        if measure.kind == MeasureKind::Punishment {
            assert!(measure
                .applies
                .iter()
                .all(|c| !c.lists.is_empty() || c.list_kind.is_some()));
        }
    }
    let green = rulebook
        .measure("green_channel")
        .map(|m| (m.applies.len(), m.exceptions.len(), m.model));
    assert_eq!(green, Some((3, 1, Some(0))));
}

#[test]
fn broken_rulebook_reports_every_problem_with_its_position() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rulebooks/broken.toml");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let report = errors("broken.toml", &text).to_string() + "\n";
    expect_file!["fixtures/rulebooks/broken.expected"].assert_eq(&report);
}

/// A valid rulebook with one record type, to which a test adds its part.
fn minimal(record_type: &str, rest: &str) -> String {
    format!(
        r#"[rulebook]
id = "test"
version = "1"
title = "test"

[[record_type]]
{record_type}
subject_kinds = ["person", "organisation"]
severity = "minor"
legal_basis = "a law"
retention = "P5Y"

[[record_type]]
id = "court.judgment"
title = "Judgment"
subject_kinds = ["person", "organisation"]
category = "judicial"
severity = "serious"
legal_basis = "a law"
retention = "P5Y"

[[model]]
id = "score"
title = "Score"
subject_kinds = ["person", "organisation"]
base_points = 1000
grades = [{{ grade = "A", min = 1000 }}, {{ grade = "D" }}]

[[list]]
id = "defaulters"
title = "Defaulters"
kind = "black"
legal_basis = "a law"
subject_kinds = ["person", "organisation"]
entry = [{{ record_type = "court.judgment" }}]
{rest}"#
    )
}

#[test]
fn protected_categories_are_refused_one_by_one() {
    // A record type's id, title, category and field; the group the message
    // must name; the line and column it must point at (line 7 is the id,
    // 8 the title, 9 the category, 10 the fields).
    let cases = [
        (
            "social.petitioning",
            "Petitions",
            "social",
            "",
            "political opinion or expression",
            (7, 6),
        ),
        (
            "social.attendance",
            "Attendance",
            "religion",
            "",
            "religion or belief",
            (9, 12),
        ),
        (
            "registry.ethnic_group",
            "Group",
            "registration",
            "",
            "ethnicity",
            (7, 6),
        ),
        (
            "registry.person",
            "Person",
            "registration",
            "fingerprint_hash",
            "genetic or biometric data",
            (10, 12),
        ),
        (
            "social.diagnosis",
            "Diagnosis",
            "social",
            "",
            "health or medical history",
            (7, 6),
        ),
        (
            "social.partner",
            "Sexual orientation",
            "social",
            "",
            "sex life or orientation",
            (8, 9),
        ),
        (
            "labour.activity",
            "Trade union membership",
            "labour",
            "",
            "trade-union membership",
            (8, 9),
        ),
        (
            "health.blood_type",
            "Blood group",
            "civic",
            "",
            "health or medical history",
            (7, 6),
        ),
        (
            "social.conduct",
            "宗教活动",
            "social",
            "",
            "religion or belief",
            (8, 9),
        ),
    ];
    for (id, title, category, field, group, (line, column)) in cases {
        let fields = if field.is_empty() {
            String::new()
        } else {
            format!(" {field} = {{ type = \"text\" }} ")
        };
        let text = minimal(&record_type_lines(id, title, category, &fields), "");
        let errors = errors("p.toml", &text);
        assert_eq!(errors.problems.len(), 1, "{id}: {errors}");
        let problem = &errors.problems[0];
        assert!(problem.message.contains(group), "{id}: {problem}");
        assert!(problem.message.contains("is refused"), "{id}: {problem}");
        assert_eq!(
            (problem.line, problem.column),
            (line, column),
            "{id}: {problem}"
        );
    }
}

#[test]
fn a_protected_name_is_reported_with_the_problem_that_cuts_its_definition() {
    // A field whose type is not one socred knows is cut by the shape check,
    // and a record type without its category cannot be lowered: their names
    // are checked all the same, so one run reports both problems of each.
    let broken_field = record_type_lines(
        "registry.person",
        "Person",
        "registration",
        " religion = { type = \"string\" } ",
    );
    let no_category = "id = \"social.petition_count\"\ntitle = \"Petitions\"";
    for (record_type, first, protected_at) in [
        (broken_field.as_str(), "`type` must be one of", (10, 12)),
        (no_category, "lacks the required key `category`", (7, 6)),
    ] {
        let report = errors("p.toml", &minimal(record_type, ""));
        assert!(
            report.problems.iter().any(|p| p.message.contains(first)),
            "{report}"
        );
        let refused: Vec<_> = report
            .problems
            .iter()
            .filter(|p| p.message.contains("is refused"))
            .map(|p| (p.line, p.column))
            .collect();
        assert_eq!(refused, vec![protected_at], "{report}");
    }
}

#[test]
fn bounds_and_values_fit_their_fields_type() {
    let cases = [
        (
            " name = { type = \"text\", min = 0 } ",
            "bounds apply to `int` and `number` fields only",
        ),
        (
            " n = { type = \"int\", values = [\"a\"] } ",
            "applies to `text` fields only",
        ),
        (
            " n = { type = \"int\", min = 5, max = 1 } ",
            "`min` (5) is above `max` (1)",
        ),
        (
            " level = { type = \"text\", values = [] } ",
            "the list of values is empty",
        ),
        (
            " level = { type = \"text\", values = [\"a\", \" \"] } ",
            "a blank value",
        ),
        (
            " level = { type = \"text\", values = [\"a\", \"a\"] } ",
            "holds \"a\" twice",
        ),
        (" n = { type = \"number\", max = nan } ", "must be finite"),
        (" n = { type = \"int\", min = 1e300 } ", "beyond ±2^53"),
    ];
    for (fields, message) in cases {
        let record_type = record_type_lines("civic.conduct", "Conduct", "civic", fields);
        let report = errors("b.toml", &minimal(&record_type, ""));
        assert_eq!(report.problems.len(), 1, "{fields}: {report}");
        let problem = &report.problems[0];
        assert!(problem.message.contains(message), "{fields}: {problem}");
        assert_eq!(problem.line, 10, "{fields}: {problem}");
    }
    let fine = record_type_lines(
        "civic.conduct",
        "Conduct",
        "civic",
        " n = { type = \"int\", min = 1, max = 1 }, x = { type = \"number\", min = -0.5 }, level = { type = \"text\", values = [\"a\", \"b\"] } ",
    );
    let rulebook = loads("fine.toml", &minimal(&fine, ""));
    let fields = &rulebook.catalog[0].fields;
    let n = fields.iter().find(|f| &*f.name == "n").expect("n");
    assert_eq!((n.min, n.max), (Some(1.0), Some(1.0)));
    let level = fields.iter().find(|f| &*f.name == "level").expect("level");
    assert_eq!(level.values.as_ref().map(Vec::len), Some(2));
}

#[test]
fn bytes_that_are_not_utf8_are_a_problem_where_they_stand() {
    let text = minimal(
        &record_type_lines("civic.conduct", "Conduct", "civic", ""),
        "",
    );
    let mut bytes = text.into_bytes();
    // Line 8 is the title: `title = "Conduct"`; spoil its `C` (column 10).
    let line_start = bytes
        .split(|&b| b == b'\n')
        .take(7)
        .map(|line| line.len() + 1)
        .sum::<usize>();
    assert_eq!(&bytes[line_start..line_start + 9], b"title = \"");
    bytes[line_start + 9] = 0xff;
    let refused = socred_schema::load_rulebook_bytes("latin1.toml", &bytes).expect_err("not UTF-8");
    assert_eq!(refused.problems.len(), 1, "{refused}");
    let problem = &refused.problems[0];
    assert_eq!((problem.line, problem.column), (8, 10), "{problem}");
    assert!(problem.message.contains("byte 0xff"), "{problem}");
}

/// The `id`, `title`, `category` and `fields` lines of a record type.
fn record_type_lines(id: &str, title: &str, category: &str, fields: &str) -> String {
    format!("id = \"{id}\"\ntitle = \"{title}\"\ncategory = \"{category}\"\nfields = {{{fields}}}")
}

#[test]
fn blood_donation_is_civic_conduct_not_health_data() {
    let record_type = record_type_lines(
        "positive.blood_donation",
        "Voluntary blood donation",
        "civic",
        " millilitres = { type = \"int\" } ",
    );
    loads("donation.toml", &minimal(&record_type, ""));
    let default = default_rulebook();
    assert!(default.record_type("positive.blood_donation").is_some());
}

const PUNISHMENT_BY_GRADE: &str = r#"
[[measure]]
id = "no_flights_for_d"
title = "No flights for grade D"
kind = "punishment"
legal_basis = "a law"
agencies = ["airline"]
subject_kinds = ["person"]
model = "score"
[[measure.applies]]
id = "grade_d"
grades = ["D"]
"#;

#[test]
fn punishment_by_score_alone_needs_both_opt_ins() {
    let record_type = record_type_lines("court.other", "Other", "judicial", "");

    let refused = errors("score.toml", &minimal(&record_type, PUNISHMENT_BY_GRADE));
    assert_eq!(refused.problems.len(), 1, "{refused}");
    let message = &refused.problems[0].message;
    assert!(
        message.contains("would follow from score or grade alone"),
        "{message}"
    );
    assert!(message.contains("score_only_opt_in = true"), "{message}");

    // The measure alone opting in is not enough…
    let measure_only = PUNISHMENT_BY_GRADE.replace(
        "model = \"score\"",
        "model = \"score\"\nscore_only_opt_in = true",
    );
    let refused = errors("score.toml", &minimal(&record_type, &measure_only));
    assert_eq!(refused.problems.len(), 1, "{refused}");
    assert!(
        refused.problems[0]
            .message
            .contains("allow_score_only_punishment = true"),
        "{refused}"
    );

    // …nor the rulebook alone…
    let policy = "[policy]\nallow_score_only_punishment = true\n";
    let text = minimal(&record_type, PUNISHMENT_BY_GRADE).replacen(
        "[[record_type]]",
        &format!("{policy}\n[[record_type]]"),
        1,
    );
    let refused = errors("score.toml", &text);
    assert!(
        refused.problems[0]
            .message
            .contains("would follow from score or grade alone"),
        "{refused}"
    );

    // …both together load, and the measure carries the opt-in.
    let text = minimal(&record_type, &measure_only).replacen(
        "[[record_type]]",
        &format!("{policy}\n[[record_type]]"),
        1,
    );
    let rulebook = loads("score.toml", &text);
    assert!(rulebook
        .measure("no_flights_for_d")
        .is_some_and(|m| m.score_only_opt_in));

    // A list entered by grade is still a score: naming it does not help.
    let grade_list = r#"
[[list]]
id = "low_scorers"
title = "Low scorers"
kind = "black"
legal_basis = "a law"
subject_kinds = ["person"]
grade_entry = { model = "score", grades = ["D"] }
schedule = "monthly"
"#;
    let via_list = PUNISHMENT_BY_GRADE.replace("grades = [\"D\"]\n", "lists = [\"low_scorers\"]\n");
    let refused = errors(
        "score.toml",
        &minimal(&record_type, &format!("{grade_list}{via_list}")),
    );
    assert!(
        refused.problems[0]
            .message
            .contains("which subjects enter by grade"),
        "{refused}"
    );

    // A list grounded in records is what a punishment should rest on.
    let via_records =
        PUNISHMENT_BY_GRADE.replace("grades = [\"D\"]\n", "lists = [\"defaulters\"]\n");
    loads("score.toml", &minimal(&record_type, &via_records));
}

#[test]
fn cel_errors_point_into_the_expression() {
    let record_type = record_type_lines(
        "court.other",
        "Other",
        "judicial",
        " amount_yuan = { type = \"number\" } ",
    );
    let rule = "\n[[model.rule]]\nid = \"r\"\nrecord_type = \"court.other\"\nwhen = \"fields.amount_yuan > 1000 && fields.amout > 1\"\npoints = -5\nvalidity = \"P1Y\"\n";
    let text = minimal(&record_type, "").replacen("\n[[list]]", &format!("{rule}\n[[list]]"), 1);
    let errors = errors("cel.toml", &text);
    assert_eq!(errors.problems.len(), 1, "{errors}");
    let problem = &errors.problems[0];
    // `when = "` is 8 characters; `fields.amout` starts 29 characters into
    // the expression, and the problem points at the name, 7 further.
    assert_eq!(
        (problem.line, problem.column),
        (35, 8 + 29 + 7 + 1),
        "{problem}"
    );
    assert!(
        problem.message.contains("`fields.amout`")
            && problem.message.contains("did you mean `amount_yuan`"),
        "{problem}"
    );
}

#[test]
fn problems_display_one_per_line_as_file_line_column_message() {
    let errors = errors(
        "x.toml",
        "[rulebook]\nid = \"x\"\nversion = \"1\"\n\n[nonsense]\n",
    );
    assert_eq!(
        errors.to_string(),
        "x.toml:1:1: rulebook `x` lacks the required key `title`\n\
         x.toml:5:2: unknown key `nonsense` in the rulebook file (known keys: calendar, list, measure, model, policy, record_type, rulebook)"
    );
}

#[test]
fn every_truncation_of_the_default_loads_or_points_inside_the_file() {
    // Cut at every third line end and inside the line before it: no panic,
    // and every problem is at a real position of the truncated text.
    let text = DEFAULT_RULEBOOK_TOML;
    let line_ends: Vec<usize> = text
        .match_indices('\n')
        .map(|(i, _)| i)
        .step_by(3)
        .collect();
    let mut cuts = line_ends.clone();
    cuts.extend(line_ends.iter().map(|i| i.saturating_sub(7)));
    for cut in cuts {
        let Some(prefix) = text.get(..cut) else {
            continue;
        };
        let Err(errors) = load_rulebook("cut.toml", prefix) else {
            continue;
        };
        let lines = prefix.lines().count().max(1);
        assert!(!errors.problems.is_empty());
        for problem in &errors.problems {
            assert!(
                problem.line >= 1 && problem.line <= lines + 1,
                "cut at {cut}: {problem}"
            );
            assert!(problem.column >= 1, "cut at {cut}: {problem}");
        }
    }
}

#[test]
fn json_schema_matches_the_published_file() {
    let schema = rulebook_json_schema();
    let pretty = serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rulebook.schema.json");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &pretty)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    }
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    // Compared as JSON: key order may follow serde_json's `preserve_order`,
    // which another crate of the workspace may switch on.
    let published: serde_json::Value = serde_json::from_str(&published).unwrap_or_else(|error| {
        panic!(
            "{} is not JSON ({error}); rerun with UPDATE_EXPECT=1",
            path.display()
        )
    });
    assert!(
        published == schema,
        "{} is stale; rerun with UPDATE_EXPECT=1",
        path.display()
    );
    assert_eq!(schema["title"], "socred rulebook");
}

/// A weekly red list by grade, excluded by the lists given.
fn red_list(excluded_by: &str) -> String {
    format!(
        r#"
[[list]]
id = "exemplary"
title = "Exemplary"
kind = "red"
legal_basis = "a law"
subject_kinds = ["person"]
grade_entry = {{ model = "score", grades = ["A"] }}
schedule = "weekly"
excluded_by = [{excluded_by}]
"#
    )
}

#[test]
fn excluded_by_resolves_to_the_excluding_lists() {
    let record_type = record_type_lines("court.other", "Other", "judicial", "");
    let rulebook = loads(
        "excluded.toml",
        &minimal(&record_type, &red_list("\"defaulters\"")),
    );
    let red = &rulebook.lists[1];
    assert_eq!(red.excluded_by, vec![0]);
    assert!(rulebook.lists[0].excluded_by.is_empty());
    // The default rulebook's red list is excluded by every black list.
    let default = default_rulebook();
    for list in &default.lists {
        let expected: Vec<u32> = match list.kind {
            ListKind::Red => (0..default.lists.len() as u32)
                .filter(|&i| default.lists[i as usize].kind == ListKind::Black)
                .collect(),
            ListKind::Black => Vec::new(),
        };
        assert_eq!(list.excluded_by, expected, "list {}", list.id);
    }
}

#[test]
fn excluded_by_refuses_unknown_lists_itself_and_cycles_with_positions() {
    let record_type = record_type_lines("court.other", "Other", "judicial", "");
    // An unknown id, with its position and a suggestion.
    let text = minimal(&record_type, &red_list("\"defaulter\""));
    let unknown = errors("unknown.toml", &text);
    assert_eq!(unknown.problems.len(), 1, "{unknown}");
    let line = text
        .lines()
        .position(|l| l.starts_with("excluded_by"))
        .unwrap_or(0)
        + 1;
    let problem = &unknown.problems[0];
    // `excluded_by = [` is 15 characters: the id's string starts after it.
    assert_eq!((problem.line, problem.column), (line, 16), "{problem}");
    assert!(
        problem.message.contains("unknown list `defaulter`")
            && problem.message.contains("did you mean `defaulters`"),
        "{problem}"
    );

    // The list itself.
    let itself = errors(
        "self.toml",
        &minimal(&record_type, &red_list("\"exemplary\"")),
    );
    assert_eq!(itself.problems.len(), 1, "{itself}");
    assert!(
        itself.problems[0].message.contains("cannot exclude itself"),
        "{itself}"
    );

    // A cycle through two lists is reported once, naming both.
    let cycle = format!(
        "excluded_by = [\"exemplary\"]\n{}",
        red_list("\"defaulters\"")
    );
    let cyclic = errors("cycle.toml", &minimal(&record_type, &cycle));
    assert_eq!(cyclic.problems.len(), 1, "{cyclic}");
    assert!(
        cyclic.problems[0]
            .message
            .contains("(defaulters is excluded by exemplary is excluded by defaulters)"),
        "{cyclic}"
    );
}

#[test]
fn calendar_dates_are_checked_with_positions() {
    let record_type = record_type_lines("court.other", "Other", "judicial", "");
    let good = "\n[calendar]\nholidays = [\"2025-10-01\"]\nworking_weekends = [\"2025-10-11\"]\n";
    let rulebook = loads("calendar.toml", &minimal(&record_type, good));
    assert_eq!(rulebook.calendar.holidays().len(), 1);
    assert_eq!(rulebook.calendar.working_weekends().len(), 1);

    let bad = "\n[calendar]\nholidays = [\"2025-10-01\", \"2025-13-01\"]\nworking_weekends = [\"2025-10-01\"]\n";
    let text = minimal(&record_type, bad);
    let problems = errors("calendar.toml", &text);
    let line = |key: &str| text.lines().position(|l| l.starts_with(key)).unwrap_or(0) + 1;
    let found: Vec<(usize, usize, bool)> = problems
        .problems
        .iter()
        .map(|p| (p.line, p.column, p.message.contains("2025-")))
        .collect();
    // `holidays = [` is 12 characters and `"2025-10-01", ` 14 more;
    // `working_weekends = [` is 20.
    assert_eq!(
        found,
        vec![
            (line("holidays"), 27, true),
            (line("working_weekends"), 21, true),
            (line("working_weekends"), 21, true),
        ],
        "{problems}"
    );
    let messages = problems.to_string();
    assert!(
        messages.contains("`2025-13-01` is not a date"),
        "{messages}"
    );
    assert!(
        messages.contains("2025-10-01 is in both `holidays` and `working_weekends`"),
        "{messages}"
    );
    assert!(messages.contains("not a Saturday or Sunday"), "{messages}");
}

/// A tax model for organisations with the assigned grades given, and a
/// record type about persons only.
fn tax_model(assigned: &str) -> String {
    format!(
        r#"
[[record_type]]
id = "person.only"
title = "About persons"
subject_kinds = ["person"]
category = "civic"
severity = "minor"
legal_basis = "a law"
retention = "P5Y"

[[model]]
id = "tax"
title = "Tax"
subject_kinds = ["organisation"]
base_points = 0
requires_records = true
grades = [{{ grade = "A", min = 90 }}, {{ grade = "D" }}]
{assigned}
[[measure]]
id = "new_taxpayer_help"
title = "Help for new taxpayers"
kind = "reward"
legal_basis = "a law"
agencies = ["tax_office"]
subject_kinds = ["organisation"]
model = "tax"
[[measure.applies]]
id = "graded_m"
grades = ["M"]
"#
    )
}

const ASSIGNED_M_AND_D: &str = r#"
[[model.assigned_grade]]
record_type = "tax.new"
grade = "M"
until = ["court.judgment", "court.judgment"]
validity = "P1Y"
legal_basis = "SAT Announcement 2018 No. 8"

[[model.assigned_grade]]
record_type = "court.judgment"
grade = "D"
exit_on_repair = true
"#;

#[test]
fn assigned_grades_are_lowered_and_their_labels_usable_by_measures() {
    let record_type = record_type_lines("tax.new", "New taxpayer", "tax", "");
    let rulebook = loads(
        "assigned.toml",
        &minimal(&record_type, &tax_model(ASSIGNED_M_AND_D)),
    );
    let tax = &rulebook.models[1];
    let lowered: Vec<_> = tax
        .assigned_grades
        .iter()
        .map(|a| {
            (
                a.record_type,
                a.grade.as_ref(),
                a.until.clone(),
                a.validity.map(|v| v.to_string()),
                a.exit_on_repair,
                a.legal_basis.as_ref(),
            )
        })
        .collect();
    let judgment = rulebook.record_type("court.judgment").unwrap_or(u32::MAX);
    assert_eq!(
        lowered,
        [
            (
                rulebook.record_type("tax.new").unwrap_or(u32::MAX),
                "M",
                vec![judgment],
                Some("P1Y".to_string()),
                false,
                "SAT Announcement 2018 No. 8"
            ),
            // Without its own, the record type's legal basis.
            (judgment, "D", Vec::new(), None, true, "a law"),
        ]
    );
    // The measure names grade M, which no band has.
    let measure = rulebook.measure("new_taxpayer_help").map(|m| m.model);
    assert_eq!(measure, Some(Some(1)));
    assert!(rulebook.models[0].assigned_grades.is_empty());

    // The shipped tax credit model: M until the first evaluation, D for two years.
    let default = default_rulebook();
    let tax = &default.models[1];
    let assigned: Vec<(&str, &str, Vec<&str>, Option<String>)> = tax
        .assigned_grades
        .iter()
        .map(|a| {
            (
                default.catalog[a.record_type as usize].id.as_ref(),
                a.grade.as_ref(),
                a.until
                    .iter()
                    .map(|&t| default.catalog[t as usize].id.as_ref())
                    .collect(),
                a.validity.map(|v| v.to_string()),
            )
        })
        .collect();
    assert_eq!(
        assigned,
        [
            ("tax.new_taxpayer", "M", vec!["tax.credit_evaluation"], None),
            (
                "tax.grade_d_assignment",
                "D",
                Vec::new(),
                Some("P2Y".to_string())
            ),
        ]
    );
}

#[test]
fn assigned_grades_refuse_unknown_and_unfit_record_types_with_positions() {
    let record_type = record_type_lines("tax.new", "New taxpayer", "tax", "");
    let assigned = r#"
[[model.assigned_grade]]
record_type = "tax.nwe"
grade = "M"
until = ["tax.evaluation"]

[[model.assigned_grade]]
record_type = "person.only"
grade = "D"
validity = "P0D"
legal_basis = " "

[[model.assigned_grade]]
record_type = "court.judgment"
grade = "D"

[[model.assigned_grade]]
record_type = "court.judgment"
grade = ""
"#;
    let text = minimal(&record_type, &tax_model(assigned));
    let problems = errors("assigned.toml", &text);
    // The n-th line that starts with `key`, 1-based.
    let line = |key: &str, nth: usize| {
        text.lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with(key))
            .nth(nth)
            .map_or(0, |(i, _)| i + 1)
    };
    let found: Vec<(usize, usize, &str)> = problems
        .problems
        .iter()
        .map(|p| (p.line, p.column, p.message.as_str()))
        .collect();
    // `record_type = ` is 14 characters, `until = [` 9, `validity = ` 11,
    // `legal_basis = ` 14, `grade = ` 8.
    let expected = [
        (
            line("record_type = ", 0),
            15,
            "assigned grade `M` (by `tax.nwe`) of model `tax` names unknown record type \
             `tax.nwe` (did you mean `tax.new`?)",
        ),
        (
            line("until", 0),
            10,
            "`until` of assigned grade `M` (by `tax.nwe`) of model `tax` names unknown record \
             type `tax.evaluation`",
        ),
        (
            line("record_type = ", 1),
            15,
            "assigned grade `D` (by `person.only`) of model `tax`: record type `person.only` is \
             about persons and the model grades organisations: it could never assign the grade",
        ),
        (
            line("validity", 0),
            12,
            "`validity` of assigned grade `D` (by `person.only`) of model `tax` is an empty \
             period",
        ),
        (
            line("legal_basis = \" \"", 0),
            15,
            "has an empty `legal_basis`",
        ),
        (
            line("record_type = ", 3),
            15,
            "model `tax` assigns a grade by record type `court.judgment` twice",
        ),
        (
            line("grade = \"\"", 0),
            9,
            "assigned grade `` (by `court.judgment`) of model `tax` has an empty `grade`",
        ),
    ];
    assert_eq!(found.len(), expected.len(), "{problems}");
    for ((line, column, message), (want_line, want_column, want)) in found.iter().zip(expected) {
        assert_eq!((*line, *column), (want_line, want_column), "{message}");
        assert!(
            message.contains(want),
            "{message}\ndoes not contain\n{want}"
        );
    }
}

/// A punishment by a grade that only records assign (M, which no band
/// gives) rests on those records and needs no opt-in; a grade that points
/// can give, or a `when` beside the grades, still does.
#[test]
fn punishment_by_a_grade_only_records_assign_needs_no_opt_in() {
    let record_type = record_type_lines("tax.new", "New taxpayer", "tax", "");
    let punishment =
        tax_model(ASSIGNED_M_AND_D).replace("kind = \"reward\"", "kind = \"punishment\"");
    let rulebook = loads("assigned.toml", &minimal(&record_type, &punishment));
    assert!(rulebook
        .measure("new_taxpayer_help")
        .is_some_and(|m| !m.score_only_opt_in));

    // D is also a band: the points can give it.
    let by_d = punishment.replace("grades = [\"M\"]", "grades = [\"M\", \"D\"]");
    let refused = errors("assigned.toml", &minimal(&record_type, &by_d));
    assert_eq!(refused.problems.len(), 1, "{refused}");
    assert!(
        refused.problems[0]
            .message
            .contains("would follow from score or grade alone"),
        "{refused}"
    );

    // A condition over the subject could read the score.
    let with_when = punishment.replace(
        "grades = [\"M\"]",
        "grades = [\"M\"]\nwhen = \"score == null\"",
    );
    let refused = errors("assigned.toml", &minimal(&record_type, &with_when));
    assert!(
        refused
            .problems
            .iter()
            .any(|p| p.message.contains("would follow from score or grade alone")),
        "{refused}"
    );
}

#[test]
fn the_objection_deadline_defaults_to_twenty_days_and_may_be_set() {
    let record_type = record_type_lines("court.other", "Other", "judicial", "");
    let plain = loads("plain.toml", &minimal(&record_type, ""));
    assert_eq!(plain.objection_deadline, socred_core::Period::days(20));
    assert_eq!(
        default_rulebook().objection_deadline,
        socred_core::Period::days(20)
    );
    let with = |deadline: &str| {
        minimal(&record_type, "").replacen(
            "[[record_type]]",
            &format!("[policy]\nobjection_deadline = \"{deadline}\"\n\n[[record_type]]"),
            1,
        )
    };
    let set = loads("set.toml", &with("P1M"));
    assert_eq!(
        set.objection_deadline
            .after(socred_core::Day::parse("2026-01-31").unwrap()),
        socred_core::Day::parse("2026-02-28").unwrap()
    );
    let bad = with("20 days");
    let refused = errors("bad.toml", &bad);
    assert_eq!(refused.problems.len(), 1, "{refused}");
    let problem = &refused.problems[0];
    let line = bad
        .lines()
        .position(|l| l.starts_with("objection_deadline"))
        .unwrap()
        + 1;
    assert!(
        problem.message.contains("objection_deadline") && problem.line == line,
        "{refused}"
    );
    let refused = errors("zero.toml", &with("P0D"));
    assert!(
        refused.problems[0].message.contains("empty period"),
        "{refused}"
    );
}

/// The audit log's retention: none unless set (entries kept for good),
/// ten years in the default rulebook, and never under six months from any
/// day (the Cybersecurity Law's floor for network logs).
#[test]
fn the_audit_retention_is_optional_and_at_least_six_months() {
    let record_type = record_type_lines("court.other", "Other", "judicial", "");
    let plain = loads("plain.toml", &minimal(&record_type, ""));
    assert_eq!(plain.audit_retention, None);
    assert_eq!(
        default_rulebook().audit_retention,
        Some(socred_core::Period::years(10))
    );
    let with = |retention: &str| {
        minimal(&record_type, "").replacen(
            "[[record_type]]",
            &format!("[policy]\naudit_retention = \"{retention}\"\n\n[[record_type]]"),
            1,
        )
    };
    for fine in ["P6M", "P184D", "P1Y"] {
        let rulebook = loads("fine.toml", &with(fine));
        assert!(rulebook.audit_retention.is_some(), "{fine}");
    }
    // 180 and 181 days fall short of six months from some days of the year.
    for short in ["P5M", "P180D", "P181D", "P5M30D"] {
        let text = with(short);
        let refused = errors("short.toml", &text);
        assert_eq!(refused.problems.len(), 1, "{short}: {refused}");
        let problem = &refused.problems[0];
        let line = text
            .lines()
            .position(|l| l.starts_with("audit_retention"))
            .unwrap()
            + 1;
        assert!(
            problem.message.contains("shorter than six months")
                && problem.message.contains("Cybersecurity Law")
                && problem.line == line,
            "{short}: {refused}"
        );
    }
    let refused = errors("bad.toml", &with("ten years"));
    assert!(
        refused.problems[0].message.contains("audit_retention"),
        "{refused}"
    );
}

/// A measure may name the purposes an agency asks about it for (purpose
/// limitation); without them, any. Named, they are at least one, each an
/// id, none twice, each problem at its position.
#[test]
fn measure_purposes_are_lowered_and_checked_with_positions() {
    let anchor = "id = \"no_air_travel\"";
    let with = |purposes: &str| {
        let (before, after) = DEFAULT_RULEBOOK_TOML.split_once(anchor).unwrap();
        let (measure, rest) = after.split_once("agencies = [\"airline\"]").unwrap();
        format!("{before}{anchor}{measure}agencies = [\"airline\"]\npurposes = {purposes}{rest}")
    };
    assert!(default_rulebook()
        .measures
        .iter()
        .all(|m| m.purposes.is_empty()));
    let rulebook = loads("set.toml", &with("[\"ticket_sale\", \"boarding_check\"]"));
    let measure = rulebook.measure("no_air_travel").unwrap();
    let purposes: Vec<&str> = measure.purposes.iter().map(|p| &**p).collect();
    assert_eq!(purposes, ["ticket_sale", "boarding_check"]);

    for (purposes, says) in [
        ("[]", "names no purpose"),
        ("[\"ticket sale\"]", "purpose"),
        ("[\"ticket_sale\", \"ticket_sale\"]", "ticket_sale"),
    ] {
        let text = with(purposes);
        let refused = errors("bad.toml", &text);
        let line = text
            .lines()
            .position(|l| l.starts_with("purposes = "))
            .unwrap()
            + 1;
        assert_eq!(refused.problems.len(), 1, "{purposes}: {refused}");
        let problem = &refused.problems[0];
        assert!(
            problem.message.contains(says) && problem.line == line,
            "{purposes}: {refused}"
        );
    }
}

/// An exit's working days are counted one by one by the fold: more than a
/// year of them is refused, where the exit is written.
#[test]
fn an_exit_waits_at_most_a_year_of_working_days() {
    let from = "working_days = 3 }";
    assert!(DEFAULT_RULEBOOK_TOML.contains(from));
    let text = DEFAULT_RULEBOOK_TOML.replacen(from, "working_days = 4294967295 }", 1);
    let refused = errors("exit.toml", &text);
    assert_eq!(refused.problems.len(), 1, "{refused}");
    let problem = &refused.problems[0];
    let line = text
        .lines()
        .position(|l| l.contains("working_days = 4294967295"))
        .unwrap()
        + 1;
    assert_eq!(problem.line, line, "{problem}");
    assert_eq!(
        problem.message,
        "`working_days` must be a whole number from 0 to 366"
    );
    let text = DEFAULT_RULEBOOK_TOML.replacen(from, "working_days = 366 }", 1);
    loads("exit.toml", &text);
}

/// A `when` that can be neither true nor false never holds, and `points`
/// that are no number are never given: both are refused where they are
/// written, not left to do nothing at run time.
#[test]
fn conditions_and_points_that_can_never_give_their_kind_are_refused() {
    let record_type = record_type_lines(
        "court.other",
        "Other",
        "judicial",
        " amount_yuan = { type = \"number\" }, case_no = { type = \"text\" } ",
    );
    for (when, points, complaint) in [
        (
            "fields.amount_yuan",
            "-5",
            "`when` of rule `r` of model `score` can never give true or false",
        ),
        ("\\\"yes\\\"", "-5", "can never give true or false"),
        (
            "fields.amount_yuan > 1",
            "\\\"abc\\\"",
            "`points` of rule `r` of model `score` can never give a number",
        ),
        ("true", "fields.case_no", "can never give a number"),
        ("true", "fields.amount_yuan > 1", "can never give a number"),
        (
            "true",
            "1 / 0",
            "reads nothing and always fails: division by zero",
        ),
        ("int(\\\"x\\\") > 1", "-5", "reads nothing and always fails"),
        // Reading the record, but failing on every record all the same.
        (
            "true",
            "fields.amount_yuan / 0",
            "`points` of rule `r` of model `score` fails on every record tried",
        ),
        (
            "int(fields.amount_yuan) / 0 > 1",
            "-5",
            "`when` of rule `r` of model `score` fails on every record tried",
        ),
    ] {
        let rule = format!(
            "\n[[model.rule]]\nid = \"r\"\nrecord_type = \"court.other\"\nwhen = \"{when}\"\npoints = \"{points}\"\nvalidity = \"P1Y\"\n"
        );
        let text =
            minimal(&record_type, "").replacen("\n[[list]]", &format!("{rule}\n[[list]]"), 1);
        let refused = errors("gives.toml", &text);
        assert_eq!(refused.problems.len(), 1, "{when} / {points}: {refused}");
        let problem = &refused.problems[0];
        assert!(problem.message.contains(complaint), "{problem}");
        // Line 35 holds the `when`, line 36 the points.
        let on_when = complaint.contains("true or false")
            || when.starts_with("int")
            || complaint.contains("`when`");
        let line = if on_when { 35 } else { 36 };
        assert_eq!(problem.line, line, "{problem}");
    }
    // What can give its kind, if only sometimes, is taken.
    for (when, points) in [
        (
            "has(fields.amount_yuan) ? fields.amount_yuan > 1 : null",
            "true ? -5 : 'none'",
        ),
        ("true", "-1000 / int(fields.amount_yuan)"),
    ] {
        let rule = format!("\n[[model.rule]]\nid = \"r\"\nrecord_type = \"court.other\"\nwhen = \"{when}\"\npoints = \"{points}\"\nvalidity = \"P1Y\"\n");
        let text =
            minimal(&record_type, "").replacen("\n[[list]]", &format!("{rule}\n[[list]]"), 1);
        loads("gives.toml", &text);
    }
}

/// A grade's name is shown and compared: one with a space or a line break
/// in it is refused where it is written.
#[test]
fn grade_names_are_plain() {
    let record_type = record_type_lines("court.other", "Other", "judicial", "");
    for name in ["A A", "A\\n", "A\\u200b", "ABCDEFGHIJKLMNOPQ"] {
        let text = minimal(&record_type, "").replacen(
            "{ grade = \"A\", min = 1000 }",
            &format!("{{ grade = \"{name}\", min = 1000 }}"),
            1,
        );
        let refused = errors("grades.toml", &text);
        assert_eq!(refused.problems.len(), 1, "{name}: {refused}");
        let problem = &refused.problems[0];
        assert!(
            problem.message.contains("must be letters, digits"),
            "{problem}"
        );
        assert_eq!(problem.line, 30, "{problem}");
    }
    for name in ["A+", "AAA", "优秀"] {
        let text = minimal(&record_type, "").replacen(
            "{ grade = \"A\", min = 1000 }",
            &format!("{{ grade = \"{name}\", min = 1000 }}"),
            1,
        );
        loads("grades.toml", &text);
    }
}

/// A value the shape check refuses is reported once: what is left without
/// it (no subject kind, no `min`) is not reported again.
#[test]
fn a_refused_value_is_not_reported_again_as_missing() {
    let record_type = record_type_lines("court.other", "Other", "judicial", "");
    let text = minimal(&record_type, "").replacen(
        "subject_kinds = [\"person\", \"organisation\"]\nseverity = \"minor\"",
        "subject_kinds = [\"persons\"]\nseverity = \"minor\"",
        1,
    );
    let refused = errors("kinds.toml", &text);
    assert_eq!(refused.problems.len(), 1, "{refused}");
    assert!(refused.problems[0].message.contains("persons"), "{refused}");
    let text = minimal(&record_type, "").replacen("min = 1000", "min = 1030.5", 1);
    let refused = errors("min.toml", &text);
    assert_eq!(refused.problems.len(), 1, "{refused}");
    assert!(
        !refused.problems[0].message.contains("leave out"),
        "{refused}"
    );
}
