//! Tests of the record wire format: NDJSON lines and CSV rows in, validated
//! records and later facts out, every rejection code with its line, key and
//! message, and `to_line` as the exact inverse of parsing.
//!
//! The catalog is built by hand so that these tests depend on nothing but
//! the core model. Snapshots are `expect-test`: run with `UPDATE_EXPECT=1`
//! to refresh them after a deliberate change, and review the diff.

use std::collections::BTreeMap;
use std::sync::Arc;

use expect_test::{expect, expect_file};
use proptest::prelude::*;
use socred_core::record::{FieldType, Outcome, Value};
use socred_core::rulebook::{FieldDef, KindSet, RecordType, Severity};
use socred_core::time::Period;
use socred_core::{Day, FactKind, Rulebook};
use socred_schema::wire::{
    parse_csv, parse_json_array, parse_line, parse_ndjson, read_csv, read_csv_rows, read_ndjson,
    to_line, Counts, Item, Parsed, Rejection, LINE_BYTES_MAX,
};

const PERSON: &str = "11010519491231002X";
const PERSON_2: &str = "310101198507141234";
const ORGANISATION: &str = "91350100M000100Y43";
/// An early pilot code: its check character does not match.
const PILOT: &str = "91350100M0001TGQXM";

fn field(name: &str, field_type: FieldType, required: bool) -> FieldDef {
    FieldDef::new(name, field_type, required)
}

fn record_type(id: &str, subject_kinds: KindSet, fields: Vec<FieldDef>) -> RecordType {
    RecordType {
        id: socred_core::Name::new(id),
        title: id.to_string(),
        subject_kinds,
        category: "test".to_string(),
        severity: Severity::General,
        legal_basis: "test basis".to_string(),
        fields,
        retention: Period::years(5),
        publicity: None,
        publicity_min: Period::default(),
        consent_required: false,
        profession_field: None,
        relation_fields: Vec::new(),
        dispute_policy: Default::default(),
    }
}

/// Three record types: one for anybody with a field of every type, one for
/// persons, one for organisations without fields.
fn rulebook() -> Rulebook {
    let catalog = vec![
        record_type(
            "judicial.judgment_default",
            KindSet::ALL,
            vec![
                field("amount_yuan", FieldType::Int, true),
                field("case_no", FieldType::Text, true),
                field("paid", FieldType::Bool, false),
                field("interest_rate", FieldType::Number, false),
                field("due_on", FieldType::Date, false),
                field("legal_representative", FieldType::Subject, false),
            ],
        ),
        record_type(
            "transport.fare_evasion",
            KindSet {
                person: true,
                organisation: false,
            },
            vec![field("station", FieldType::Text, false)],
        ),
        record_type(
            "market.licence_revoked",
            KindSet {
                person: false,
                organisation: true,
            },
            Vec::new(),
        ),
    ];
    let catalog_index: BTreeMap<socred_core::Name, u32> = catalog
        .iter()
        .enumerate()
        .map(|(index, rt)| (rt.id, index as u32))
        .collect();
    Rulebook {
        id: Arc::from("test"),
        version: Arc::from("1"),
        catalog,
        models: Vec::new(),
        lists: Vec::new(),
        measures: Vec::new(),
        calendar: Default::default(),
        objection_deadline: socred_core::rulebook::Rulebook::OBJECTION_DEADLINE_DEFAULT,
        audit_retention: None,
        catalog_index,
    }
}

fn record_json(subject: &str, fields: &str) -> String {
    format!(
        r#"{{"provider": "court.beijing-1", "id": "r-1", "subject": "{subject}", "type": "judicial.judgment_default", "occurred_at": "2026-03-01", "decided_at": "2026-03-15", "fields": {fields}}}"#
    )
}

fn record_of(item: &Item) -> &socred_core::Record {
    match item {
        Item::Record(record) => record,
        Item::Fact { .. } => panic!("expected a record, got {item:?}"),
    }
}

fn fact_of(item: &Item) -> (&socred_core::Fact, Option<&str>) {
    match item {
        Item::Fact { fact, record_type } => (fact, record_type.as_deref()),
        Item::Record(_) => panic!("expected a fact, got {item:?}"),
    }
}

/// The reference of the format, which must list every rejection code.
const RECORDS_MD: &str = include_str!("../../../docs/records.md");

fn assert_documented(rejection: &Rejection) {
    let row = format!("| `{}` |", rejection.code);
    assert!(
        RECORDS_MD.contains(&row),
        "code `{}` is missing from docs/records.md",
        rejection.code
    );
}

/// Renders everything a parse produced, one finding a line, for snapshots,
/// and checks that each rejection code is documented.
fn render(parsed: &Parsed) -> String {
    let mut out = format!("{} items\n", parsed.items.len());
    for rejection in &parsed.rejections {
        assert_documented(rejection);
        out.push_str(&format!("{rejection}\n"));
    }
    for warning in &parsed.warnings {
        out.push_str(&format!("warning {warning}\n"));
    }
    out
}

#[test]
fn every_kind_of_line_is_accepted_and_written_back_byte_for_byte() {
    let rulebook = rulebook();
    let text = include_str!("fixtures/wire/every_kind.ndjson");
    let parsed = parse_ndjson(&rulebook, text);
    assert_eq!(parsed.rejections, Vec::<Rejection>::new());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(parsed.items.len(), lines.len());
    for (item, line) in parsed.items.iter().zip(&lines) {
        assert_eq!(to_line(item), *line);
        let (again, _) = parse_line(&rulebook, 1, &to_line(item)).unwrap();
        assert_eq!(&again, item);
    }
    // The pilot code on line 4 is accepted, never silently.
    expect![[r#"
        [
            Warning {
                line: 4,
                message: "subject `91350100M0001TGQXM`: check character is `M`, expected `1`: accepted as an early pilot Unified Social Credit Code",
            },
        ]
    "#]]
    .assert_debug_eq(&parsed.warnings);
}

#[test]
fn a_record_line_lowers_to_typed_fields() {
    let rulebook = rulebook();
    let line = r#"{"provider": "court.beijing-1", "id": "2026-zhi-00123", "subject": "11010519491231002x", "type": "judicial.judgment_default", "occurred_at": "2026-03-01T23:30:00+08:00", "decided_at": "2026-03-15T20:00:00Z", "fields": {"amount_yuan": 52000.0, "case_no": "(2026) Jing 01 Zhi 123", "paid": true, "interest_rate": 3, "due_on": "2026-04-15T01:00:00+08:00", "legal_representative": "310101198507141234"}, "document": "court decision"}"#;
    let (item, warning) = parse_line(&rulebook, 7, line).unwrap();
    assert_eq!(warning, None);
    let record = record_of(&item);
    assert_eq!(&*record.key.provider, "court.beijing-1");
    assert_eq!(
        record.subject.as_str(),
        PERSON,
        "identifiers are normalised to upper case"
    );
    assert_eq!(record.type_index, 0);
    assert_eq!(record.occurred_at.to_string(), "2026-03-01");
    assert_eq!(
        record.decided_at.to_string(),
        "2026-03-16",
        "20:00 UTC is the next day in China"
    );
    let fields: Vec<(&str, &Value)> = record
        .fields
        .iter()
        .map(|(name, value)| (&**name, value))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("amount_yuan", &Value::Int(52000)),
            ("case_no", &Value::Text(Arc::from("(2026) Jing 01 Zhi 123"))),
            ("due_on", &Value::Text(Arc::from("2026-04-15"))),
            ("interest_rate", &Value::Number(3.0)),
            ("legal_representative", &Value::Text(Arc::from(PERSON_2))),
            ("paid", &Value::Bool(true)),
        ]
    );
    assert_eq!(record.document.as_deref(), Some("court decision"));
}

#[test]
fn nulls_count_as_absent() {
    let rulebook = rulebook();
    let line = r#"{"provider": "court.beijing-1", "id": "r-1", "subject": "11010519491231002X", "type": "judicial.judgment_default", "occurred_at": "2026-03-01", "decided_at": "2026-03-15", "fields": {"amount_yuan": 1, "case_no": "c", "paid": null}, "document": null}"#;
    let (item, _) = parse_line(&rulebook, 1, line).unwrap();
    let record = record_of(&item);
    assert_eq!(record.document, None);
    assert!(!record.fields.contains_key("paid"));
    let line = r#"{"provider": "samr.fujian", "id": "rev-1", "subject": "91350100M000100Y43", "type": "market.licence_revoked", "occurred_at": "2026-01-10", "decided_at": "2026-01-20", "fields": null}"#;
    let (item, _) = parse_line(&rulebook, 1, line).unwrap();
    assert!(record_of(&item).fields.is_empty());
}

#[test]
fn facts_take_their_defaults() {
    let rulebook = rulebook();
    let line = r#"{"fact": "disputed", "provider": "metro.shanghai", "record": "fe-8812", "subject": "310101198507141234", "at": "2026-03-05"}"#;
    let (item, _) = parse_line(&rulebook, 1, line).unwrap();
    let (fact, record_type) = fact_of(&item);
    assert_eq!(&*fact.by, "metro.shanghai", "`by` defaults to the provider");
    assert_eq!(record_type, None);
    assert!(matches!(
        &fact.kind,
        FactKind::Disputed {
            statement: None,
            ..
        }
    ));
    assert_eq!(fact.record().map(|key| &*key.id), Some("fe-8812"));

    // A repair may carry the application it grants; a retraction may not.
    let line = r#"{"fact": "repaired", "provider": "metro.shanghai", "record": "fe-8812", "subject": "310101198507141234", "at": "2026-03-05", "by": "reviewer.li", "statement": "Correction: paid"}"#;
    let (item, _) = parse_line(&rulebook, 1, line).unwrap();
    let (fact, _) = fact_of(&item);
    assert!(matches!(
        &fact.kind,
        FactKind::Repaired { statement: Some(text), .. } if &**text == "Correction: paid"
    ));
    let line = r#"{"fact": "retracted", "provider": "metro.shanghai", "record": "fe-8812", "subject": "310101198507141234", "at": "2026-03-05", "statement": "x"}"#;
    assert!(parse_line(&rulebook, 1, line).is_err());

    let line = r#"{"fact": "consent_withdrawn", "subject": "310101198507141234", "at": "2026-06-30T23:30:00+08:00"}"#;
    let (item, _) = parse_line(&rulebook, 1, line).unwrap();
    let (fact, _) = fact_of(&item);
    assert_eq!(&*fact.by, "subject");
    assert_eq!(fact.at, Day::parse("2026-06-30").unwrap());
    assert_eq!(fact.kind, FactKind::ConsentWithdrawn);

    let line = r#"{"fact": "resolved", "provider": "metro.shanghai", "record": "fe-8812", "subject": "310101198507141234", "at": "2026-03-20", "by": "reviewer.li", "outcome": "corrected", "type": "transport.fare_evasion", "fields": {"station": "Xujiahui"}}"#;
    let (item, _) = parse_line(&rulebook, 1, line).unwrap();
    let (fact, record_type) = fact_of(&item);
    assert_eq!(record_type, Some("transport.fare_evasion"));
    let FactKind::Resolved {
        outcome: Outcome::Corrected,
        fields: Some(fields),
        ..
    } = &fact.kind
    else {
        panic!("unexpected kind {:?}", fact.kind);
    };
    assert_eq!(
        fields.get("station"),
        Some(&Value::Text(Arc::from("Xujiahui")))
    );
}

#[test]
fn bad_lines_are_reported_and_good_lines_still_parsed() {
    let rulebook = rulebook();
    let parsed = parse_ndjson(&rulebook, include_str!("fixtures/wire/mixed.ndjson"));
    expect_file!["fixtures/wire/mixed.expected"].assert_eq(&render(&parsed));
    // Lines 1, 27 and 28 are good.
    assert_eq!(parsed.items.len(), 3);
    assert!(
        parsed
            .rejections
            .iter()
            .all(|rejection| rejection.line != 3),
        "blank lines are skipped"
    );
}

/// One line per code that the fixture does not show.
#[test]
fn values_outside_a_fields_bounds_or_list_are_refused_by_name() {
    // The default rulebook bounds the fields that rules read as they are:
    // arrears of -3 cycles would give +30 points, a lower-case honour level
    // no points at all.
    let rulebook = socred_schema::default_rulebook();
    let line = |type_id: &str, fields: &str| {
        format!(
            r#"{{"provider": "p", "id": "r", "subject": "{PERSON}", "type": "{type_id}", "occurred_at": "2026-03-01", "decided_at": "2026-03-02", "fields": {fields}}}"#
        )
    };
    let refused = [
        (line("commercial.bank_arrears", r#"{"cycles": -3}"#), "out_of_range", "field `cycles` must be at least 1, found -3"),
        (line("commercial.bank_arrears", r#"{"cycles": 0, "amount_yuan": 10}"#), "out_of_range", "at least 1, found 0"),
        (line("positive.charitable_donation", r#"{"amount_yuan": -5000}"#), "out_of_range", "field `amount_yuan` must be at least 0, found -5000"),
        (line("positive.volunteering", r#"{"hours": -0.5}"#), "out_of_range", "at least 0, found -0.5"),
        (line("positive.volunteering", r#"{"hours": -1e-300}"#), "out_of_range", "at least 0, found -1e-300"),
        (line("positive.honour", r#"{"level": "National"}"#), "not_one_of", "field `level` must be one of national, provincial, municipal, county, township, village, found \"National\""),
        (line("judicial.judgment_default", r#"{"case_no": "c", "trigger": "bad_attitude"}"#), "not_one_of", "found \"bad_attitude\""),
    ];
    for (text, code, message) in &refused {
        let rejection = parse_line(&rulebook, 4, text).expect_err(text);
        assert_documented(&rejection);
        assert_eq!(rejection.code, *code, "{text}");
        assert!(
            rejection
                .field
                .as_deref()
                .is_some_and(|f| f.starts_with("fields.")),
            "{rejection}"
        );
        assert!(rejection.to_string().contains(message), "{rejection}");
    }
    // Tax evaluation points are out of 100, both ends included.
    let tax = |points: i64| {
        line(
            "tax.credit_evaluation",
            &format!(r#"{{"year": 2025, "points": {points}}}"#),
        )
        .replace(PERSON, "91110000600037341L")
    };
    assert_eq!(
        parse_line(&rulebook, 1, &tax(101)).expect_err("101").code,
        "out_of_range"
    );
    assert_eq!(
        parse_line(&rulebook, 1, &tax(-1)).expect_err("-1").code,
        "out_of_range"
    );
    for points in [0, 100] {
        assert!(parse_line(&rulebook, 1, &tax(points)).is_ok(), "{points}");
    }
    let settlement = line(
        "judicial.judgment_default",
        r#"{"case_no": "c", "trigger": "settlement_refused"}"#,
    );
    assert!(parse_line(&rulebook, 1, &settlement).is_ok());
    // A correction is bounded as a record is.
    let correction = format!(
        r#"{{"fact": "corrected", "provider": "p", "record": "r", "subject": "{PERSON}", "at": "2026-04-02", "type": "commercial.bank_arrears", "fields": {{"cycles": -1}}}}"#
    );
    assert_eq!(
        parse_line(&rulebook, 1, &correction)
            .expect_err("correction")
            .code,
        "out_of_range"
    );
}

#[test]
fn the_remaining_codes() {
    let rulebook = rulebook();
    let long_document = "d".repeat(5000);
    let long_id = "i".repeat(129);
    let lines = [
        record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c", "amount_yuan": 2}"#),
        record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c", "paid": "yes"}"#),
        record_json(PERSON, r#"{"amount_yuan": 1e300, "case_no": "c"}"#),
        record_json(PERSON, r#"{"amount_yuan": 9223372036854775808, "case_no": "c"}"#),
        record_json(PERSON, r#"{"amount_yuan": 1, "case_no": 7}"#),
        record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c", "interest_rate": "3%"}"#),
        record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c", "legal_representative": 110105}"#),
        record_json(PERSON, r#"{"amount_yuan": [1], "case_no": "c"}"#),
        record_json(PERSON, r#""fields""#),
        record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c"}"#).replace(r#""id": "r-1""#, &format!(r#""id": "{long_id}""#)),
        record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c"}"#)
            .replace(r#""fields""#, &format!(r#""document": "{long_document}", "fields""#)),
        record_json("91350100M000100Y4", r#"{}"#),
        record_json("X1010519491231002X", r#"{}"#),
        r#"{"fact": "retracted", "provider": "court.beijing-1", "record": "r-1", "subject": "11010519491231002X"}"#.to_string(),
        r#"{"fact": "retracted", "provider": "court.beijing-1", "record": "r-1", "subject": "11010519491231002X", "at": "yesterday"}"#.to_string(),
        r#"{"fact": "corrected", "provider": "court.beijing-1", "record": "r-1", "subject": "91350100M000100Y43", "at": "2026-04-02", "type": "transport.fare_evasion", "fields": {}}"#.to_string(),
        r#"{"fact": "corrected", "provider": "court.beijing-1", "record": "r-1", "subject": "11010519491231002X", "at": "2026-04-02", "type": "judicial.judgment_default", "occurred_at": "2026-03-20", "decided_at": "2026-03-15", "fields": {"amount_yuan": 1, "case_no": "c"}}"#.to_string(),
        r#"{"fact": "corrected", "provider": "court.beijing-1", "record": "r-1", "subject": "11010519491231002X", "at": "2026-04-02", "type": "judicial.judgment_default"}"#.to_string(),
        r#"{"fact": "resolved", "provider": "metro.shanghai", "record": "fe-8812", "subject": "310101198507141234", "at": "2026-03-20", "outcome": "corrected", "type": "transport.fare_evasion", "fields": {"platform": 2}}"#.to_string(),
        r#"{"fact": "disputed", "provider": "metro.shanghai", "record": "fe-8812", "subject": "310101198507141234", "at": "2026-03-20", "statement": ""}"#.to_string(),
        r#"{"fact": "consent_granted", "subject": "310101198507141234", "at": "2026-03-20", "\u0070rovider": "x"}"#.to_string(),
        r#"{"provider": "court.beijing-1"} {"id": "r-2"}"#.to_string(),
        "\"just a string\"".to_string(),
        record_json(PERSON, r#"{"amount_yuan": null, "case_no": "c", "amount_yuan": 2}"#),
        record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c"}"#)
            .replace(r#""occurred_at": "2026-03-01""#, r#""occurred_at": "1949-12-30""#),
        r#"{"fact": "corrected", "provider": "court.beijing-1", "record": "r-1", "subject": "11010519491231002X", "at": "2026-04-02", "type": "judicial.judgment_default", "occurred_at": "1949-01-01", "fields": {"amount_yuan": 1, "case_no": "c"}}"#.to_string(),
        record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c"}"#)
            .replace(r#""occurred_at": "2026-03-01""#, r#""occurred_at": "1949-12-31""#),
    ];
    let parsed = parse_ndjson(&rulebook, &lines.join("\n"));
    expect![[r#"
        1 items
        line 1: fields.amount_yuan: field `amount_yuan` is given twice [duplicate_key]
        line 2: fields.paid: field `paid` expects bool, found string "yes" [field_type]
        line 3: fields.amount_yuan: field `amount_yuan` expects int, found number 1e300 [field_type]
        line 4: fields.amount_yuan: field `amount_yuan` expects int, found integer 9223372036854775808 [field_type]
        line 5: fields.case_no: field `case_no` expects text, found integer 7 [field_type]
        line 6: fields.interest_rate: field `interest_rate` expects number, found string "3%" [field_type]
        line 7: fields.legal_representative: field `legal_representative` expects subject, found integer 110105 [field_type]
        line 8: fields.amount_yuan: field `amount_yuan` expects int, found array [field_type]
        line 9: fields: key `fields` must be an object, found string "fields" [key_type]
        line 10: id: key `id` is 129 bytes long, the limit is 128 [too_long]
        line 11: document: key `document` is 5000 bytes long, the limit is 4096 [too_long]
        line 12: subject: subject "91350100M000100Y4" is not a valid identifier: identifier has 17 characters, expected 18 [invalid_subject]
        line 13: subject: subject "X1010519491231002X" is not a valid identifier: character `X` at position 1 is not allowed here (a registration authority code of GB 32100: 1-9, A, N or Y) [invalid_subject]
        line 14: at: key `at` is missing [missing_key]
        line 15: at: key `at`: `yesterday` is not a date (YYYY-MM-DD) nor an RFC 3339 time [invalid_date]
        line 16: subject: record type `transport.fare_evasion` is about persons only, and `91350100M000100Y43` is an organisation [wrong_subject_kind]
        line 17: occurred_at: occurred_at 2026-03-20 is after decided_at 2026-03-15 [dates_out_of_order]
        line 18: fields: key `fields` is missing (a correction gives the record's full new fields) [missing_key]
        line 19: fields.platform: record type `transport.fare_evasion` has no field "platform" (its fields: station) [unknown_field]
        line 20: statement: key `statement` is empty [empty_value]
        line 21: provider: key `provider` is not used on a `consent_granted` fact [unexpected_key]
        line 22: not valid JSON: trailing characters (column 33) [malformed_json]
        line 23: expected a JSON object, found string [not_an_object]
        line 24: fields.amount_yuan: field `amount_yuan` is given twice [duplicate_key]
        line 25: occurred_at: occurred_at 1949-12-30 is before the subject was born (1949-12-31, positions 7-14 of its identifier) [before_birth]
        line 26: occurred_at: occurred_at 1949-01-01 is before the subject was born (1949-12-31, positions 7-14 of its identifier) [before_birth]
    "#]]
    .assert_eq(&render(&parsed));
}

/// Control characters are refused in every key and text field: none in
/// ids and names, line breaks and tabs only in prose. A NUL would
/// otherwise reach a PostgreSQL store, whose text cannot hold one.
#[test]
fn control_characters_are_refused_where_they_are_never_meant() {
    let rulebook = rulebook();
    let ok = record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c"}"#);
    let lines = [
        ok.replace(r#""id": "r-1""#, r#""id": "r-\u00001""#),
        ok.replace(r#""provider": "court.beijing-1""#, r#""provider": "court\tbeijing""#),
        ok.replace(r#""fields""#, r#""document": "decision\u0000", "fields""#),
        ok.replace(r#""fields""#, r#""document": "page 1\r\npage\t2", "fields""#),
        record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c\u001b[31m"}"#),
        record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "line 1\nline 2"}"#),
        record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c\u0085"}"#),
        r#"{"fact": "retracted", "provider": "court.beijing-1", "record": "r-1\u0000", "subject": "11010519491231002X", "at": "2026-04-01"}"#.to_string(),
        r#"{"fact": "disputed", "provider": "court.beijing-1", "record": "r-1", "subject": "11010519491231002X", "at": "2026-04-01", "statement": "I paid.\u0007"}"#.to_string(),
        r#"{"fact": "disputed", "provider": "court.beijing-1", "record": "r-1", "subject": "11010519491231002X", "at": "2026-04-01", "by": "sub\u007fject", "statement": "I paid.\nReceipt 42."}"#.to_string(),
    ];
    let parsed = parse_ndjson(&rulebook, &lines.join("\n"));
    expect![[r#"
        2 items
        line 1: id: key `id` holds the control character U+0000 [control_character]
        line 2: provider: key `provider` holds the control character U+0009 [control_character]
        line 3: document: key `document` holds the control character U+0000 (only line breaks and tabs are allowed) [control_character]
        line 5: fields.case_no: field `case_no` holds the control character U+001B (only line breaks and tabs are allowed) [control_character]
        line 7: fields.case_no: field `case_no` holds the control character U+0085 (only line breaks and tabs are allowed) [control_character]
        line 8: record: key `record` holds the control character U+0000 [control_character]
        line 9: statement: key `statement` holds the control character U+0007 (only line breaks and tabs are allowed) [control_character]
        line 10: by: key `by` holds the control character U+007F [control_character]
    "#]]
    .assert_eq(&render(&parsed));
    assert_eq!(
        record_of(&parsed.items[0]).document.as_deref(),
        Some("page 1\r\npage\t2"),
        "line breaks and tabs are kept"
    );

    // A CSV cell is checked the same way.
    let csv = "provider,id,subject,type,occurred_at,decided_at,fields.amount_yuan,fields.case_no\n\
               court.beijing-1,r-\u{1}1,11010519491231002X,judicial.judgment_default,2026-03-01,2026-03-15,1,c\n\
               court.beijing-1,r-2,11010519491231002X,judicial.judgment_default,2026-03-01,2026-03-15,1,c\u{0}\n\
               court.beijing-1,r-3,11010519491231002X,judicial.judgment_default,2026-03-01,2026-03-15,1,c\n";
    expect![[r#"
        1 items
        line 2: id: key `id` holds the control character U+0001 [control_character]
        line 3: fields.case_no: field `case_no` holds the control character U+0000 (only line breaks and tabs are allowed) [control_character]
    "#]]
    .assert_eq(&render(&parse_csv(&rulebook, csv)));
}

#[test]
fn one_too_long_line_does_not_stop_the_file() {
    let rulebook = rulebook();
    let good = record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c"}"#);
    let long = format!(r#"{{"provider": "{}"}}"#, "p".repeat(LINE_BYTES_MAX));
    let text = format!("{good}\n{long}\n{good}\n");
    let parsed = parse_ndjson(&rulebook, &text);
    assert_eq!(parsed.items.len(), 2);
    let mut rejections = Vec::new();
    let counts = read_ndjson(
        &rulebook,
        text.as_bytes(),
        |_| {},
        |rejection| rejections.push(rejection),
        |_| {},
    )
    .unwrap();
    assert_eq!(
        counts,
        Counts {
            lines: 3,
            items: 2,
            rejections: 1,
            warnings: 0
        }
    );
    assert_eq!(rejections, parsed.rejections);
    assert_documented(&rejections[0]);
    expect![[r#"line 2: line is longer than 1048576 bytes [line_too_long]"#]]
        .assert_eq(&rejections[0].to_string());

    // A line of exactly the limit is taken with either line end, and one
    // byte more is too long with either: a file read and a text parsed
    // agree.
    let prefix = r#"{"provider": ""#;
    let at_limit = |extra: usize| {
        let padding = LINE_BYTES_MAX - good.len() + extra;
        let line = good.replacen(prefix, &format!("{prefix}{}", "p".repeat(padding)), 1);
        assert_eq!(line.len(), LINE_BYTES_MAX + extra);
        line
    };
    for (extra, taken) in [(0, 1), (1, 0)] {
        for end in ["\n", "\r\n"] {
            let text = format!("{}{end}", at_limit(extra));
            let mut items = 0;
            let mut refused = Vec::new();
            read_ndjson(
                &rulebook,
                text.as_bytes(),
                |_| items += 1,
                |r| refused.push(r.code),
                |_| {},
            )
            .unwrap();
            let parsed = parse_ndjson(&rulebook, &text);
            assert_eq!(items, parsed.items.len(), "{extra} {end:?}");
            // The provider is too long when taken (128 bytes at most): what
            // matters here is whether the line itself was read.
            let code = if taken == 1 {
                "too_long"
            } else {
                "line_too_long"
            };
            assert_eq!(refused, [code], "{extra} {end:?}");
        }
    }
}

#[test]
fn streaming_reads_crlf_bom_blank_lines_and_bad_bytes() {
    let rulebook = rulebook();
    let good = record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c"}"#);
    let pilot = record_json(PILOT, r#"{"amount_yuan": 1, "case_no": "c"}"#);
    let mut bytes = Vec::new();
    bytes.extend_from_slice("\u{feff}".as_bytes());
    bytes.extend_from_slice(format!("{good}\r\n\r\n   \n").as_bytes());
    bytes.extend_from_slice(b"{\"provider\": \"\xff\"}\r\n");
    bytes.extend_from_slice(pilot.as_bytes()); // no final newline
    let (mut items, mut rejections, mut warnings) = (Vec::new(), Vec::new(), Vec::new());
    let counts = read_ndjson(
        &rulebook,
        &bytes[..],
        |item| items.push(item),
        |rejection| rejections.push(rejection),
        |warning| warnings.push(warning),
    )
    .unwrap();
    assert_eq!(
        counts,
        Counts {
            lines: 3,
            items: 2,
            rejections: 1,
            warnings: 1
        }
    );
    expect![[r#"
        [
            Rejection {
                line: 4,
                field: None,
                code: "malformed_json",
                message: "line is not valid UTF-8 (byte 15)",
            },
        ]
    "#]]
    .assert_debug_eq(&rejections);
    assert_eq!(warnings[0].line, 5);
    assert!(warnings[0].message.contains(PILOT));
}

#[test]
fn pilot_codes_in_subject_fields_warn_too() {
    let rulebook = rulebook();
    let line = record_json(
        PILOT,
        &format!(r#"{{"amount_yuan": 1, "case_no": "c", "legal_representative": "{PILOT}"}}"#),
    );
    let (_, warning) = parse_line(&rulebook, 9, &line).unwrap();
    expect![[r#"
        Some(
            Warning {
                line: 9,
                message: "subject `91350100M0001TGQXM`: check character is `M`, expected `1`: accepted as an early pilot Unified Social Credit Code; field `legal_representative` `91350100M0001TGQXM`: check character is `M`, expected `1`: accepted as an early pilot Unified Social Credit Code",
            },
        )
    "#]]
    .assert_debug_eq(&warning);
}

#[test]
fn strings_repeated_across_lines_are_shared() {
    let rulebook = rulebook();
    let line = record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c"}"#);
    let parsed = parse_ndjson(&rulebook, &format!("{line}\n{line}\n"));
    let first = record_of(&parsed.items[0]);
    let second = record_of(&parsed.items[1]);
    assert!(Arc::ptr_eq(&first.key.provider, &second.key.provider));
    assert_eq!(first.type_id, rulebook.catalog[0].id);
    let (name, _) = first.fields.first_key_value().unwrap();
    assert!(Arc::ptr_eq(name, &rulebook.catalog[0].fields[0].name));
}

#[test]
fn json_arrays_number_their_elements_from_one() {
    let rulebook = rulebook();
    let good = record_json(PERSON, r#"{"amount_yuan": 1, "case_no": "c"}"#);
    let body = format!("[{good}, 5, {}]", record_json(PERSON, "{}"));
    let parsed = parse_json_array(&rulebook, &body);
    expect![[r#"
        1 items
        line 2: expected a JSON object, found integer [not_an_object]
        line 3: fields.amount_yuan: record type `judicial.judgment_default` requires field `amount_yuan` [missing_field]
    "#]]
    .assert_eq(&render(&parsed));
    assert_eq!(
        parse_json_array(&rulebook, &good).items.len(),
        1,
        "a single object is one element"
    );
    expect![[r#"
        0 items
        line 0: not valid JSON: EOF while parsing a list (column 1) [malformed_json]
    "#]]
    .assert_eq(&render(&parse_json_array(&rulebook, "[")));
}

#[test]
fn csv_rows_become_the_same_records_as_json_lines() {
    let rulebook = rulebook();
    let parsed = parse_csv(&rulebook, include_str!("fixtures/wire/records.csv"));
    assert_eq!(parsed.rejections, Vec::<Rejection>::new());
    let lines: Vec<String> = parsed.items.iter().map(to_line).collect();
    let every_kind = include_str!("fixtures/wire/every_kind.ndjson");
    let expected: Vec<&str> = every_kind
        .lines()
        .filter(|line| !line.starts_with(r#"{"fact""#))
        .collect();
    assert_eq!(lines, expected);
    assert_eq!(parsed.warnings.len(), 1);
    assert_eq!(parsed.warnings[0].line, 5);
}

#[test]
fn csv_bad_cells_and_rows() {
    let rulebook = rulebook();
    let text = r#"provider,id,subject,type,occurred_at,decided_at,document,fields.amount_yuan,fields.case_no,fields.paid,fields.station
court.beijing-1,r-1,11010519491231002X,judicial.judgment_default,2026-03-01,2026-03-15,,52000.0,c,true,
court.beijing-1,r-2,11010519491231002X,judicial.judgment_default,2026-03-01,2026-03-15,,52000.5,c,,
court.beijing-1,r-3,11010519491231002X,judicial.judgment_default,2026-03-01,2026-03-15,,1,c,yes,
court.beijing-1,r-4,11010519491231002X,judicial.judgment_default,2026-03-01,2026-03-15,,1,c,,Xujiahui
court.beijing-1,r-5,11010519491231002X,judicial.judgment_default,2026-03-01,2026-03-15,"page 1
page 2",,c,,
court.beijing-1,r-6,11010519491231002X,judicial.judgment_default,2026-03-01,2026-03-15
,r-7,11010519491231002X,judicial.judgment_default,2026-03-01,2026-03-15,,1,c,,
metro.shanghai,r-8,11010519491231002X,transport.fare_evasion,2026-03-01,2026-03-01,,,,,Xujiahui
"#;
    expect![[r#"
        2 items
        line 3: fields.amount_yuan: field `amount_yuan` expects int, found "52000.5" [field_type]
        line 4: fields.paid: field `paid` expects bool, found "yes" [field_type]
        line 5: fields.station: record type `judicial.judgment_default` has no field "station" (its fields: amount_yuan, case_no, paid, interest_rate, due_on, legal_representative) [unknown_field]
        line 6: fields.amount_yuan: record type `judicial.judgment_default` requires field `amount_yuan` [missing_field]
        line 8: row has 6 cells, the header has 11 columns [malformed_csv]
        line 9: provider: key `provider` is missing [missing_key]
    "#]]
    .assert_eq(&render(&parse_csv(&rulebook, text)));
}

#[test]
fn csv_headers_are_checked_before_any_row() {
    let rulebook = rulebook();
    let row = "\ncourt.beijing-1,r-1,11010519491231002X,judicial.judgment_default,2026-03-01,2026-03-15\n";
    let cases = [
        "provider,id,subject,type,occurred_at,decided_at,severity",
        "provider,id,subject,type,occurred_at,decided_at,fields.penalty",
        "provider,id,subject,type,occurred_at",
        "provider,id,subject,type,occurred_at,decided_at,id",
    ];
    let mut out = String::new();
    for header in cases {
        let parsed = parse_csv(&rulebook, &format!("{header}{row}"));
        assert!(parsed.items.is_empty());
        out.push_str(&render(&parsed));
    }
    expect![[r#"
        0 items
        line 1: column "severity" is not part of the CSV record format (provider, id, subject, type, occurred_at, decided_at, document, fields.<name>) [unknown_column]
        0 items
        line 1: column `fields.penalty` names no field of any record type in the catalog [unknown_column]
        0 items
        line 1: column `decided_at` is missing from the header [missing_column]
        0 items
        line 1: column `id` is given twice [duplicate_column]
    "#]]
    .assert_eq(&out);
    assert_eq!(parse_csv(&rulebook, ""), Parsed::default());
    let with_bom = "\u{feff}provider,id,subject,type,occurred_at,decided_at\n\
                    samr.fujian,rev-1,91350100M000100Y43,market.licence_revoked,2026-01-10,2026-01-20\n";
    let parsed = parse_csv(&rulebook, with_bom);
    assert_eq!(
        (parsed.items.len(), parsed.rejections),
        (1, Vec::new()),
        "a byte-order mark is ignored"
    );
    let counts = read_csv(
        &rulebook,
        "provider,id,subject,type,occurred_at,decided_at\n".as_bytes(),
        |_| {},
        |_| {},
        |_| {},
    );
    assert_eq!(counts.unwrap(), Counts::default());
}

/// Valid records with arbitrary values: writing then parsing gives the
/// same record back.
fn arbitrary_record_line() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9.-]{0,20}",
        "\\PC{1,30}",
        prop::sample::select(vec![PERSON, PERSON_2, ORGANISATION]),
        0u32..3000,
        0u32..400,
        any::<i64>(),
        "\\PC{0,40}",
        prop::option::of(any::<bool>()),
        prop::option::of(-1e12f64..1e12),
        prop::option::of("\\PC{1,60}"),
    )
        .prop_map(|(provider, id, subject, day, gap, amount, case_no, paid, rate, document)| {
            let occurred = Day(day as i32 + 18_000);
            let decided = occurred.add_days(gap as i32);
            let mut fields = serde_json::Map::new();
            fields.insert("amount_yuan".into(), amount.into());
            fields.insert("case_no".into(), case_no.into());
            if let Some(paid) = paid {
                fields.insert("paid".into(), paid.into());
            }
            if let Some(rate) = rate {
                fields.insert("interest_rate".into(), rate.into());
            }
            let mut line = serde_json::json!({
                "provider": provider, "id": id, "subject": subject, "type": "judicial.judgment_default",
                "occurred_at": occurred.to_string(), "decided_at": decided.to_string(), "fields": fields,
            });
            if let Some(document) = document {
                line["document"] = document.into();
            }
            line.to_string()
        })
}

/// JSON-ish lines: objects made of the format's keys (and some others)
/// with values of any type, plus damage.
fn json_ish_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "fact",
        "provider",
        "id",
        "record",
        "subject",
        "type",
        "occurred_at",
        "decided_at",
        "at",
        "by",
        "outcome",
        "statement",
        "fields",
        "document",
        "amount_yuan",
        "case_no",
        "x",
    ]);
    let value = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| serde_json::json!(n).to_string()),
        prop::sample::select(vec![
            "\"retracted\"",
            "\"corrected\"",
            "\"resolved\"",
            "\"consent_granted\"",
            "\"upheld\"",
            "\"judicial.judgment_default\"",
            "\"transport.fare_evasion\"",
            "\"2026-03-01\"",
            "\"2026-03-01T10:00:00Z\"",
            "\"11010519491231002X\"",
            "\"91350100M0001TGQXM\"",
            "{\"amount_yuan\": 1, \"case_no\": \"c\"}",
            "{\"station\": null}",
            "[]",
            "{}",
            "\"\"",
        ])
        .prop_map(str::to_string),
        "\\PC{0,20}".prop_map(|s| serde_json::json!(s).to_string()),
    ];
    (
        prop::collection::vec((key, value), 0..10),
        0usize..200,
        prop::option::of("\\PC{0,3}"),
    )
        .prop_map(|(entries, cut, damage)| {
            let body: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect();
            let mut line = format!("{{{}}}", body.join(", "));
            if let Some(damage) = damage {
                let cut = line
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth(cut)
                    .unwrap_or(line.len());
                line.insert_str(cut, &damage);
            }
            line
        })
}

proptest! {
    #[test]
    fn parse_then_write_is_the_identity(line in arbitrary_record_line()) {
        let rulebook = rulebook();
        let (item, _) = parse_line(&rulebook, 1, &line).map_err(|r| TestCaseError::fail(r.to_string()))?;
        let written = to_line(&item);
        let (again, _) = parse_line(&rulebook, 1, &written).map_err(|r| TestCaseError::fail(r.to_string()))?;
        prop_assert_eq!(again, item);
        prop_assert_eq!(to_line(&parse_line(&rulebook, 1, &written).unwrap().0), written);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let rulebook = rulebook();
        let single = parse_line(&rulebook, 1, &text);
        prop_assert!(single.is_ok() || single.is_err_and(|rejection| rejection.line == 1));
        let parsed = parse_ndjson(&rulebook, &text);
        prop_assert!(parsed.items.len() + parsed.rejections.len() <= text.split('\n').count());
        let parsed = parse_json_array(&rulebook, &text);
        prop_assert!(parsed.rejections.iter().all(|rejection| !rejection.message.is_empty()));
        let parsed = parse_csv(&rulebook, &text);
        prop_assert!(parsed.items.len() + parsed.rejections.len() <= text.split('\n').count());
        let counts = read_ndjson(&rulebook, &bytes[..], |_| {}, |_| {}, |_| {}).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(counts.lines, counts.items + counts.rejections);
        let counts = read_csv(&rulebook, &bytes[..], |_| {}, |_| {}, |_| {}).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(counts.lines + 1 >= counts.items + counts.rejections);
    }

    #[test]
    fn json_ish_lines_are_accepted_or_rejected_with_a_line_number(line in json_ish_line()) {
        let rulebook = rulebook();
        match parse_line(&rulebook, 42, &line) {
            Ok((item, _)) => {
                let (again, _) = parse_line(&rulebook, 1, &to_line(&item)).map_err(|r| TestCaseError::fail(r.to_string()))?;
                prop_assert_eq!(again, item);
            }
            Err(rejection) => {
                prop_assert_eq!(rejection.line, 42);
                prop_assert!(!rejection.message.is_empty());
            }
        }
    }

    #[test]
    fn csv_cells_never_panic(cells in prop::collection::vec("[\\PC,\"]{0,12}", 0..11)) {
        let rulebook = rulebook();
        let text = format!(
            "provider,id,subject,type,occurred_at,decided_at,document,fields.amount_yuan,fields.case_no,fields.paid,fields.due_on\n{}\n",
            cells.join(",")
        );
        let parsed = parse_csv(&rulebook, &text);
        prop_assert!(parsed.items.len() + parsed.rejections.len() <= text.lines().count());
    }
}

#[test]
fn csv_rows_of_a_windows_file_keep_their_line_numbers() {
    let rulebook = rulebook();
    let text = "provider,id,subject,type,occurred_at,decided_at,fields.station\r\n\
                metro.shanghai,r-1,11010519491231002X,transport.fare_evasion,2026-03-01,2026-03-01,\"Line 2\r\nexit B\"\r\n\
                metro.shanghai,r-2,1101051949123100,transport.fare_evasion,2026-03-01,2026-03-01,Xujiahui\r\n";
    let mut rows = Vec::new();
    read_csv_rows(&rulebook, text.as_bytes(), |line, row| {
        rows.push((line, row.map(|(item, _)| item)));
    })
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, 2);
    let Ok(Item::Record(record)) = &rows[0].1 else {
        panic!("row 2 should be a record: {:?}", rows[0].1);
    };
    assert_eq!(
        record.fields.get("station"),
        Some(&socred_core::record::Value::Text("Line 2\nexit B".into()))
    );
    // The quoted cell spans lines 2 and 3, so the next row is line 4.
    assert_eq!(rows[1].0, 4);
    assert_eq!(rows[1].1.as_ref().unwrap_err().line, 4);
}

/// A row is numbered by the physical line it starts on, whatever blank
/// lines come before it (the header's included); a row with a byte that is
/// not UTF-8 is rejected alone.
#[test]
fn csv_rows_after_blank_lines_keep_their_line_numbers() {
    let rulebook = rulebook();
    let mut text = b"\nprovider,id,subject,type,occurred_at,decided_at,fields.station\n\
                 \n\
                 metro.shanghai,r-1,1101051949123100,transport.fare_evasion,2026-03-01,2026-03-01,A\n\
                 \n\
                 \n\
                 metro.shanghai,r-2,11010519491231002X,transport.fare_evasion,2026-03-01,2026-03-01,\"B\n\
                 \n\
                 exit\"\n\
                 metro.shanghai,r-3,11010519491231002X,transport.fare_evasion,2026-03-01,2026-03-01,C"
        .to_vec();
    text.extend_from_slice(b"\xff\n\nmetro.shanghai,r-4,11010519491231002X,transport.fare_evasion,2026-03-01,2026-03-01,D\n");
    let mut rows = Vec::new();
    read_csv_rows(&rulebook, text.as_slice(), |line, row| {
        rows.push((line, row.map(|_| ()).map_err(|r| (r.line, r.code))));
    })
    .unwrap();
    assert_eq!(
        rows,
        [
            (4, Err((4, "invalid_subject"))),
            (7, Ok(())),
            (10, Err((10, "malformed_csv"))),
            (12, Ok(())),
        ]
    );
}
