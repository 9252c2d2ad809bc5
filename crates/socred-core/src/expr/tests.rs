//! Tests of the expression compiler and evaluator: a table of expressions
//! and their outcomes covering every operator and function, the rulebook's
//! own expressions, compile errors with their offsets, and a property test
//! that random expressions never panic and never give a value of a kind the
//! compiler ruled out.

use std::fmt::Write as _;
use std::sync::Arc;

use expect_test::{expect, Expect};
use proptest::prelude::*;

use super::compile::{check, ERRORS_MAX, SOURCE_BYTES_MAX};
use super::ir::Node;
use super::*;
use crate::record::Value;

/// The schema of the record type the tests' record rules are about.
fn schema() -> Vec<(Arc<str>, FieldType)> {
    [
        ("amount_yuan", FieldType::Number),
        ("ratio", FieldType::Number),
        ("level", FieldType::Text),
        ("cycles", FieldType::Int),
        ("serious", FieldType::Bool),
        ("case_no", FieldType::Text),
        ("decided", FieldType::Date),
        ("representative", FieldType::Subject),
        // Optional: the test record does not carry it.
        ("note", FieldType::Text),
    ]
    .into_iter()
    .map(|(name, ty)| (Arc::from(name), ty))
    .collect()
}

fn record_fields() -> Fields {
    let text = |s: &str| Value::Text(s.into());
    [
        ("amount_yuan", Value::Int(150_000)),
        ("ratio", Value::Number(2.5)),
        ("level", text("provincial")),
        ("cycles", Value::Int(3)),
        ("serious", Value::Bool(true)),
        ("case_no", text("(2026)京01执1号")),
        ("decided", text("2026-03-01")),
        ("representative", text("11010519491231002X")),
    ]
    .into_iter()
    .map(|(name, value)| (Arc::from(name), value))
    .collect()
}

fn record_context(fields: &Fields) -> Context<'_> {
    Context {
        fields: Some(fields),
        record_type: "court.judgment_default",
        provider: "court",
        subject_kind: SubjectKind::Person,
        profession: "lawyer",
        score: None,
        grade: "",
        lists: &[],
    }
}

fn subject_context<'a>(score: Option<i64>, lists: &'a [crate::Name]) -> Context<'a> {
    Context {
        fields: None,
        record_type: "",
        provider: "",
        subject_kind: SubjectKind::Organisation,
        profession: "",
        score,
        grade: "AA",
        lists,
    }
}

fn show_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Bool(b) => b.to_string(),
        Outcome::Int(n) => n.to_string(),
        Outcome::Double(x) => format!("{x:?}"),
        Outcome::Text(s) => format!("{s:?}"),
        Outcome::Null => "null".to_string(),
        Outcome::List(items) => {
            let items: Vec<String> = items.iter().map(show_outcome).collect();
            format!("[{}]", items.join(", "))
        }
    }
}

fn show(result: Result<Outcome, String>) -> String {
    match result {
        Ok(outcome) => show_outcome(&outcome),
        Err(e) => format!("error: {e}"),
    }
}

fn eval_record(source: &str) -> String {
    let schema = schema();
    let fields = record_fields();
    match Program::compile(source, Scope::Record { fields: &schema }) {
        Ok(program) => show(program.eval(&record_context(&fields))),
        Err(errors) => format!("compile error: {errors:?}"),
    }
}

fn eval_subject(source: &str, score: Option<i64>) -> String {
    let lists: Vec<crate::Name> = vec!["judgment_defaulters".into(), "tax_a".into()];
    match Program::compile(source, Scope::Subject) {
        Ok(program) => show(program.eval(&subject_context(score, &lists))),
        Err(errors) => format!("compile error: {errors:?}"),
    }
}

#[test]
fn record_expressions_evaluate_as_documented() {
    let table: &[(&str, &str)] = &[
        // literals
        ("1", "1"),
        ("10u", "10"),
        ("2.5", "2.5"),
        ("'a'", "\"a\""),
        ("true", "true"),
        ("null", "null"),
        ("[1, 'a', fields.cycles]", "[1, \"a\", 3]"),
        // arithmetic on ints, checked
        ("1 + 2", "3"),
        ("7 - 10", "-3"),
        ("6 * 7", "42"),
        ("7 / 2", "3"),
        ("-7 / 2", "-3"),
        ("7 % 3", "1"),
        ("-7 % 3", "-1"),
        ("9223372036854775807 + 1", "compile error: [ExprError { message: \"the expression reads nothing and always fails: integer overflow in `+`\", offset: None }]"),
        ("-9223372036854775807 - 2", "compile error: [ExprError { message: \"the expression reads nothing and always fails: integer overflow in `-`\", offset: None }]"),
        ("4611686018427387904 * 2", "compile error: [ExprError { message: \"the expression reads nothing and always fails: integer overflow in `*`\", offset: None }]"),
        ("-9223372036854775808 / -1", "compile error: [ExprError { message: \"the expression reads nothing and always fails: integer overflow in `/`\", offset: None }]"),
        ("fields.cycles / 0", "error: division by zero"),
        ("fields.cycles % 0", "error: modulo by zero"),
        // doubles, and int/double mixes promote
        ("1.5 + 1", "2.5"),
        ("1 - 0.5", "0.5"),
        ("fields.ratio * 2", "5.0"),
        ("1 / 2.0", "0.5"),
        ("7.5 % 2", "1.5"),
        ("1.0 / 0.0", "inf"),
        // strings
        ("'ab' + 'cd'", "\"abcd\""),
        ("fields.level + '/' + record.provider", "\"provincial/court\""),
        // unary
        ("-fields.cycles", "-3"),
        ("-fields.ratio", "-2.5"),
        ("-(-9223372036854775807 - 1)", "compile error: [ExprError { message: \"the expression reads nothing and always fails: integer overflow in `-`\", offset: None }]"),
        ("!true", "false"),
        ("!fields.serious", "false"),
        // comparisons
        ("1 < 2", "true"),
        ("2 <= 2", "true"),
        ("3 > 2.5", "true"),
        ("2 >= 2.0", "true"),
        ("'a' < 'b'", "true"),
        ("'b' <= 'a'", "false"),
        ("false < true", "true"),
        ("1 == 1.0", "true"),
        ("1 != 2", "true"),
        ("'a' == 'a'", "true"),
        ("fields.level == 'provincial'", "true"),
        ("null == null", "true"),
        ("[1, 2] == [1, 2.0]", "true"),
        ("[1, 2] != [2, 1]", "true"),
        ("true == 1", "compile error: [ExprError { message: \"`==` cannot compare bool with int\", offset: Some(5) }]"),
        // exact across int and double, where `as f64` would round
        ("9007199254740993 > 9007199254740992.0", "true"),
        ("0.0 / 0.0 == 0.0 / 0.0", "false"),
        ("0.0 / 0.0 < 1", "false"),
        // logic, with CEL's commutative short-circuit
        ("true && false", "false"),
        ("true && true", "true"),
        ("false || true", "true"),
        ("false || false", "false"),
        ("fields.note == 'x' && false", "false"),
        ("false && fields.note == 'x'", "false"),
        ("true && fields.note == 'x'", "error: the record has no field `note`"),
        ("fields.note == 'x' || true", "true"),
        ("fields.note == 'x' || false", "error: the record has no field `note`"),
        ("fields.serious ? 'yes' : 'no'", "\"yes\""),
        ("!fields.serious ? 1 : 2.5", "2.5"),
        // membership
        ("2 in [1, 2, 3]", "true"),
        ("2.0 in [1, 2]", "true"),
        ("'x' in ['a', 'b']", "false"),
        ("fields.level in ['provincial', fields.case_no]", "true"),
        ("fields.level in [fields.case_no, fields.note]", "error: the record has no field `note`"),
        ("1 in []", "false"),
        // functions
        ("has(fields.amount_yuan)", "true"),
        ("has(fields.note)", "false"),
        ("fields.note", "error: the record has no field `note`"),
        ("size('中国')", "2"),
        ("'abc'.size()", "3"),
        ("size([1, 2])", "2"),
        ("size(fields.case_no)", "12"),
        ("int(2.9)", "2"),
        ("int(-2.9)", "-2"),
        ("int('42')", "42"),
        ("int(fields.level)", "error: `int()` cannot convert this string value"),
        ("int(1e19)", "compile error: [ExprError { message: \"the expression reads nothing and always fails: `int()` cannot convert this double value\", offset: None }]"),
        // The same failures at run time, from what a record holds.
        ("fields.cycles * 4611686018427387904", "error: integer overflow in `*`"),
        ("int(fields.cycles * 1e19)", "error: `int()` cannot convert this double value"),
        ("double(3)", "3.0"),
        ("double('2.5')", "2.5"),
        ("double(fields.level)", "error: `double()` cannot convert this string value"),
        ("string(42)", "\"42\""),
        ("string(2.5)", "\"2.5\""),
        ("string(true)", "\"true\""),
        ("string(fields.level)", "\"provincial\""),
        ("fields.case_no.startsWith('(2026)')", "true"),
        ("fields.case_no.endsWith('号')", "true"),
        ("fields.case_no.contains('京01')", "true"),
        ("fields.case_no.contains('沪')", "false"),
        ("min(3, 2.5)", "2.5"),
        ("max(3, 2.5)", "3"),
        ("min(fields.cycles, 10)", "3"),
        ("max(-1, fields.cycles)", "3"),
        // the record and its subject
        ("record.type", "\"court.judgment_default\""),
        ("record.provider", "\"court\""),
        ("subject.kind", "\"person\""),
        ("subject.profession", "\"lawyer\""),
        ("fields.decided", "\"2026-03-01\""),
        ("fields.representative.startsWith('110105')", "true"),
    ];
    let mut failures = String::new();
    for (source, expected) in table {
        let got = eval_record(source);
        if got != *expected {
            writeln!(
                failures,
                "{source}\n  expected {expected}\n  got      {got}"
            )
            .ok();
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn subject_expressions_evaluate_as_documented() {
    let table: &[(&str, Option<i64>, &str)] = &[
        ("\"judgment_defaulters\" in lists", Some(1000), "true"),
        ("'tax_b' in lists", Some(1000), "false"),
        ("lists", None, "[\"judgment_defaulters\", \"tax_a\"]"),
        ("size(lists)", None, "2"),
        ("score != null && score >= 1050", Some(1060), "true"),
        ("score != null && score >= 1050", Some(1000), "false"),
        ("score != null && score >= 1050", None, "false"),
        (
            "score >= 1050",
            None,
            "error: `>=` is not defined for null and int",
        ),
        ("score == null", None, "true"),
        ("score + 1", Some(1060), "1061"),
        ("grade", None, "\"AA\""),
        ("grade in ['AAA', 'AA']", None, "true"),
        ("subject.kind == 'organisation'", None, "true"),
        ("subject.profession", None, "\"\""),
    ];
    let mut failures = String::new();
    for (source, score, expected) in table {
        let got = eval_subject(source, *score);
        if got != *expected {
            writeln!(
                failures,
                "{source} (score {score:?})\n  expected {expected}\n  got      {got}"
            )
            .ok();
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

const HONOUR: &str = r#"fields.level == "national" ? 30 : fields.level == "provincial" ? 20 : fields.level == "municipal" ? 10 : fields.level == "county" ? 5 : fields.level == "township" ? 3 : 1"#;

fn points_for(source: &str, fields: &Fields) -> Option<i64> {
    let schema = schema();
    let program = match Program::compile(source, Scope::Record { fields: &schema }) {
        Ok(program) => program,
        Err(errors) => panic!("{source}: {errors:?}"),
    };
    program.points(&record_context(fields))
}

fn with(changes: &[(&str, Value)]) -> Fields {
    let mut fields = record_fields();
    for (name, value) in changes {
        fields.insert(Arc::from(*name), value.clone());
    }
    fields
}

#[test]
fn the_rulebook_point_expressions_give_the_documented_points() {
    let text = |s: &str| Value::Text(s.into());
    for (level, points) in [
        ("national", 30),
        ("provincial", 20),
        ("municipal", 10),
        ("county", 5),
        ("township", 3),
        ("village", 1),
    ] {
        assert_eq!(
            points_for(HONOUR, &with(&[("level", text(level))])),
            Some(points),
            "{level}"
        );
    }
    let mut no_level = record_fields();
    no_level.remove("level");
    assert_eq!(
        points_for(HONOUR, &no_level),
        None,
        "a missing field gives no points"
    );

    let per_thousand = "fields.amount_yuan / 1000";
    assert_eq!(
        points_for(per_thousand, &with(&[("amount_yuan", Value::Int(15_999))])),
        Some(15)
    );
    assert_eq!(
        points_for(
            per_thousand,
            &with(&[("amount_yuan", Value::Number(15_999.5))])
        ),
        Some(15)
    );
    let capped = "min(int(fields.amount_yuan / 1000), 10)";
    assert_eq!(
        points_for(capped, &with(&[("amount_yuan", Value::Int(7_500))])),
        Some(7)
    );
    assert_eq!(
        points_for(capped, &with(&[("amount_yuan", Value::Number(250_000.0))])),
        Some(10)
    );
    assert_eq!(
        points_for("-10 * fields.cycles", &record_fields()),
        Some(-30)
    );
    assert_eq!(
        points_for("-2.9", &record_fields()),
        Some(-2),
        "doubles truncate toward zero"
    );
    assert_eq!(
        points_for("1.0 / 0.0", &record_fields()),
        None,
        "infinity is no points"
    );
    assert_eq!(
        points_for("fields.level", &record_fields()),
        None,
        "a string is no points"
    );
}

#[test]
fn the_rulebook_conditions_hold_when_documented() {
    let schema = schema();
    let condition = |source: &str, fields: &Fields| -> bool {
        match Program::compile(source, Scope::Record { fields: &schema }) {
            Ok(program) => program.test(&record_context(fields)),
            Err(errors) => panic!("{source}: {errors:?}"),
        }
    };
    let large = "has(fields.amount_yuan) && fields.amount_yuan >= 100000";
    assert!(condition(
        large,
        &with(&[("amount_yuan", Value::Int(100_000))])
    ));
    assert!(!condition(
        large,
        &with(&[("amount_yuan", Value::Number(99_999.5))])
    ));
    let mut no_amount = record_fields();
    no_amount.remove("amount_yuan");
    assert!(!condition(large, &no_amount));
    assert!(
        !condition("fields.amount_yuan >= 100000", &no_amount),
        "an error is not true"
    );
    assert!(condition("fields.serious", &record_fields()));
    assert!(!condition(
        "fields.serious",
        &with(&[("serious", Value::Bool(false))])
    ));
    assert!(
        !condition("fields.cycles", &record_fields()),
        "an int is not true"
    );
    assert!(condition(
        "subject.profession in [\"lawyer\", \"teacher\"]",
        &record_fields()
    ));

    let lists: Vec<crate::Name> = vec!["judgment_defaulters".into()];
    let measure = |source: &str, score: Option<i64>| -> bool {
        match Program::compile(source, Scope::Subject) {
            Ok(program) => program.test(&subject_context(score, &lists)),
            Err(errors) => panic!("{source}: {errors:?}"),
        }
    };
    assert!(measure("\"judgment_defaulters\" in lists", None));
    assert!(measure("score != null && score >= 1050", Some(1050)));
    assert!(!measure("score != null && score >= 1050", Some(1049)));
    assert!(!measure("score != null && score >= 1050", None));
}

#[test]
fn a_chain_of_equality_tests_on_one_field_reads_it_once() {
    let schema = schema();
    let checked = check(HONOUR, Scope::Record { fields: &schema });
    let Ok(checked) = checked else {
        panic!("{:?}", checked.err());
    };
    let Node::Switch(switch) = &checked.node else {
        panic!("not a switch: {:?}", checked.node);
    };
    let labels: Vec<&str> = switch.arms.iter().map(|(label, _)| &**label).collect();
    assert_eq!(
        labels,
        ["national", "provincial", "municipal", "county", "township"]
    );
}

#[test]
fn constant_subexpressions_are_folded() {
    let schema = schema();
    let checked = check(
        "fields.cycles * (60 * 60) > 1 + 2",
        Scope::Record { fields: &schema },
    );
    let Ok(checked) = checked else {
        panic!("{:?}", checked.err());
    };
    expect![[r#"
        Binary(
            Gt,
            [
                Binary(
                    Mul,
                    [
                        Field(
                            "cycles",
                            0,
                        ),
                        Const(
                            Int(
                                3600,
                            ),
                        ),
                    ],
                ),
                Const(
                    Int(
                        3,
                    ),
                ),
            ],
        )
    "#]]
    .assert_debug_eq(&checked.node);
}

fn check_errors(scope: Scope<'_>, sources: &[&str], expect: Expect) {
    let mut out = String::new();
    for source in sources {
        writeln!(out, "{source}").ok();
        match Program::compile(source, scope) {
            Ok(_) => writeln!(out, "  compiles").ok(),
            Err(errors) => {
                for e in errors {
                    let at = e.offset.map_or("?".to_string(), |o| o.to_string());
                    writeln!(out, "  @{at}: {}", e.message).ok();
                }
                Some(())
            }
        };
    }
    expect.assert_eq(&out);
}

#[test]
fn record_rule_compile_errors_say_what_and_where() {
    let schema = schema();
    check_errors(
        Scope::Record { fields: &schema },
        &[
            "fields.case_no > 5",
            "fields.nope + 1",
            "fields.case_no > 5 && has(fields.missing) || fields.el == 1",
            "foo(1)",
            "min(1)",
            "'a'.int()",
            "size(1, 2)",
            "fields.level.startsWith(1)",
            "startsWith('a', 'b')",
            "[1].exists(x, x > 0)",
            "{'a': 1}",
            "fields['a']",
            "b'abc'",
            "18446744073709551615u",
            "1 +",
            "'中国' == 1 +",
            "record.kind",
            "subject.age",
            "subject",
            "score > 1",
            "1 in fields.level",
            "'a' in [1, 2]",
            "fields.level == null",
            "!1",
            "-'a'",
            "size(1)",
            "int(true)",
            "string(null)",
            "1 && true",
            "1 ? 2 : 3",
            "has(record.type)",
            "(1).x",
            "fields.level.x",
            "'中国' + 1",
            "true ? 1 : 'a'",
        ],
        expect![[r#"
            fields.case_no > 5
              @15: `>` cannot compare string with int
            fields.nope + 1
              @7: record type has no field `nope`
            fields.case_no > 5 && has(fields.missing) || fields.el == 1
              @15: `>` cannot compare string with int
              @33: record type has no field `missing`
              @52: record type has no field `el`
            foo(1)
              @0: unknown function `foo`; supported: has, size, int, double, string, min, max, startsWith, endsWith, contains
            min(1)
              @0: `min` takes two arguments, got 1
            'a'.int()
              @4: `int` is a function, not a method: write `int(x)`
            size(1, 2)
              @0: `size` takes one argument, as in `size(x)` or `x.size()`; got 2
            fields.level.startsWith(1)
              @23: `startsWith` needs strings, got string and int
            startsWith('a', 'b')
              @0: `startsWith` is a method of a string: write `s.startsWith(t)`
            [1].exists(x, x > 0)
              @10: comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`) are not supported
            {'a': 1}
              @0: map literals are not supported
            fields['a']
              @0: `fields` holds the record's fields: select one, as in `fields.amount_yuan`
              @6: indexing with `[…]` is not supported
            b'abc'
              @0: bytes literals are not supported
            18446744073709551615u
              @0: `18446744073709551615u` is out of the int range
            1 +
              @3: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}
            '中国' == 1 +
              @15: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}
            record.kind
              @7: `record` has no member `kind`; it has `type` and `provider`
            subject.age
              @8: `subject` has no member `age`; it has `kind` and `profession`
            subject
              @0: `subject` is not a value: select `subject.kind` or `subject.profession`
            score > 1
              @0: unknown identifier `score`: a record rule may use `fields`, `record` and `subject`
            1 in fields.level
              @11: the right side of `in` must be a list literal `[…]` or `lists`
            'a' in [1, 2]
              @4: `in` looks for string in a list of int: it can never be found
            fields.level == null
              @13: `==` cannot compare string with null: a field is never null, test a missing one with `has(fields.<name>)`
            !1
              @0: `!` needs a bool, got int
            -'a'
              @0: unary `-` needs a number, got string
            size(1)
              @0: `size` needs a string or a list, got int
            int(true)
              @0: `int` cannot convert bool
            string(null)
              @0: `string` cannot convert null
            1 && true
              @2: `&&` needs bool operands, got int
            1 ? 2 : 3
              @2: the condition of `? :` must be a bool, got int
            has(record.type)
              @3: `has()` tests a record field: `has(fields.<name>)`
            (1).x
              @3: cannot select `.x` from int: only `fields`, `record` and `subject` have members
            fields.level.x
              @12: cannot select `.x` from string: only `fields`, `record` and `subject` have members
            '中国' + 1
              @9: `+` is not defined for string and int
            true ? 1 : 'a'
              compiles
        "#]],
    );
}

#[test]
fn subject_condition_compile_errors_say_what_and_where() {
    check_errors(
        Scope::Subject,
        &[
            "fields.amount_yuan > 1",
            "record.type == 'x'",
            "grade > 1",
            "1 in lists",
            "lists.x",
            "score.x",
            "score >= 1050",
        ],
        expect![[r#"
            fields.amount_yuan > 1
              @0: unknown identifier `fields`: a subject condition may use `subject`, `score`, `grade` and `lists`
            record.type == 'x'
              @0: unknown identifier `record`: a subject condition may use `subject`, `score`, `grade` and `lists`
            grade > 1
              @6: `>` cannot compare string with int
            1 in lists
              @2: `in lists` needs a list id (a string), got int
            lists.x
              @5: cannot select `.x` from `lists` (list)
            score.x
              @5: cannot select `.x` from `score` (int or null)
            score >= 1050
              compiles
        "#]],
    );
}

#[test]
fn expressions_nest_at_most_a_hundred_levels() {
    let schema = schema();
    let scope = Scope::Record { fields: &schema };
    let sum = |terms: usize| vec!["fields.cycles"; terms].join(" + ");
    assert!(Program::compile(&sum(100), scope).is_ok());
    let Err(errors) = Program::compile(&sum(101), scope) else {
        panic!("101 levels compiled");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].message, "expression nests deeper than 100 levels");
}

#[test]
fn parentheses_past_the_parsers_limit_are_named_as_such() {
    let schema = schema();
    let scope = Scope::Record { fields: &schema };
    let nested = |levels: usize| {
        format!(
            "{}fields.cycles > 1{}",
            "(".repeat(levels),
            ")".repeat(levels)
        )
    };
    assert!(Program::compile(&nested(90), scope).is_ok());
    let Err(errors) = Program::compile(&nested(100), scope) else {
        panic!("100 parentheses compiled");
    };
    assert_eq!(
        errors,
        [ExprError {
            message: "expression nests deeper than the parser allows (96 levels of parentheses, brackets, calls or branches)".to_string(),
            offset: None,
        }]
    );
}

#[test]
fn a_program_says_whether_it_may_give_a_bool_or_a_number() {
    let schema = schema();
    let kinds = |source: &str| match Program::compile(source, Scope::Record { fields: &schema }) {
        Ok(program) => (program.may_give_bool(), program.may_give_number()),
        Err(errors) => panic!("{source}: {errors:?}"),
    };
    assert_eq!(kinds("fields.serious"), (true, false));
    assert_eq!(kinds("fields.amount_yuan / 1000"), (false, true));
    assert_eq!(kinds("fields.serious ? 1 : false"), (true, true));
    assert_eq!(kinds("fields.level"), (false, false));
}

#[test]
fn programs_are_shared_across_threads() {
    fn assert_shareable<T: Clone + Send + Sync>() {}
    assert_shareable::<Program>();
}

/// Evaluates `source` every way there is and checks that the ways agree:
/// the value has a kind the compiler allowed, `test` and `points` follow
/// `eval`, and the specialised tree gives what the generic one gives.
fn check_evaluation(source: &str, scope: Scope<'_>, cx: &Context<'_>) -> Result<(), TestCaseError> {
    let Ok(program) = Program::compile(source, scope) else {
        return Ok(());
    };
    let value = program.tree.root.value(cx);
    if let Ok(value) = &value {
        prop_assert!(
            program.tree.kinds.contains(value.kind()),
            "{source} gave {value:?}, outside {}",
            program.tree.kinds
        );
    }
    let Ok(checked) = check(source, scope) else {
        return Err(TestCaseError::fail(format!(
            "{source} compiled but does not check"
        )));
    };
    let generic = lower(&checked.node, Specialise::No);
    let as_text = |v: &eval::Evaluated<'_>| format!("{:?}", v.as_ref().map(V::to_outcome));
    prop_assert_eq!(as_text(&generic.value(cx)), as_text(&value), "{}", source);
    prop_assert_eq!(
        generic.test(cx, Role::Result),
        program.tree.root.test(cx, Role::Result),
        "{}",
        source
    );
    let outcome = program.eval(cx);
    prop_assert_eq!(
        program.test(cx),
        outcome == Ok(Outcome::Bool(true)),
        "{}",
        source
    );
    let points = match outcome {
        Ok(Outcome::Int(n)) => Some(n),
        Ok(Outcome::Double(x)) if x.is_finite() => Some(x as i64),
        _ => None,
    };
    prop_assert_eq!(program.points(cx), points, "{}", source);
    Ok(())
}

/// The kind of a generated expression, so that most generated expressions
/// are well-kinded and compile, and the property reaches evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum K {
    Num,
    Str,
    Bool,
    Null,
}

fn leaves(scope: &str) -> Vec<(&'static str, K)> {
    let mut leaves = vec![
        ("0", K::Num),
        ("1", K::Num),
        ("-3", K::Num),
        ("9223372036854775807", K::Num),
        ("2.5", K::Num),
        ("0.0", K::Num),
        ("1e300", K::Num),
        ("'a'", K::Str),
        ("''", K::Str),
        ("'中'", K::Str),
        ("'42'", K::Str),
        ("true", K::Bool),
        ("false", K::Bool),
        ("null", K::Null),
        ("subject.kind", K::Str),
        ("subject.profession", K::Str),
    ];
    if scope == "record" {
        leaves.extend([
            ("fields.amount_yuan", K::Num),
            ("fields.ratio", K::Num),
            ("fields.cycles", K::Num),
            ("fields.level", K::Str),
            ("fields.case_no", K::Str),
            ("fields.note", K::Str),
            ("record.type", K::Str),
            ("fields.serious", K::Bool),
            ("has(fields.note)", K::Bool),
        ]);
    } else {
        leaves.extend([
            ("score", K::Num),
            ("grade", K::Str),
            ("score == null", K::Bool),
            ("'judgment_defaulters' in lists", K::Bool),
        ]);
    }
    leaves
}

/// `x` as a bool, whatever its kind.
fn as_condition((x, k): &(String, K)) -> String {
    match k {
        K::Num => format!("({x} > 0)"),
        K::Str => format!("({x} == 'a')"),
        K::Bool => x.clone(),
        K::Null => "true".to_string(),
    }
}

/// Combines three generated expressions into one, with an operator that
/// `pick` chooses among those defined for their kinds.
fn combine(a: (String, K), b: (String, K), c: (String, K), pick: u8) -> (String, K) {
    const NUM_OPS: [&str; 11] = ["+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!="];
    const STR_OPS: [&str; 5] = ["+", "<", ">=", "==", "!="];
    const METHODS: [&str; 3] = ["startsWith", "endsWith", "contains"];
    let p = usize::from(pick);
    let ((x, kx), (y, ky)) = (&a, &b);
    match (pick % 6, kx, ky) {
        (0, K::Num, K::Num) => {
            let op = NUM_OPS[p % NUM_OPS.len()];
            let kind = if p % NUM_OPS.len() < 5 {
                K::Num
            } else {
                K::Bool
            };
            (format!("({x} {op} {y})"), kind)
        }
        (0, K::Str, K::Str) => {
            let op = STR_OPS[p % STR_OPS.len()];
            let kind = if op == "+" { K::Str } else { K::Bool };
            (format!("({x} {op} {y})"), kind)
        }
        (0, K::Bool, K::Bool) => {
            let op = ["&&", "||", "==", "!="][p % 4];
            (format!("({x} {op} {y})"), K::Bool)
        }
        (1, K::Num, K::Num) => (format!("{}({x}, {y})", ["min", "max"][p % 2]), K::Num),
        (1, K::Str, K::Str) => (format!("{x}.{}({y})", METHODS[p % 3]), K::Bool),
        (1, K::Num | K::Str, _) if kx == ky => (format!("({x} in [{y}, {}])", c.0), K::Bool),
        (2, _, _) if ky == &c.1 => (format!("({} ? {y} : {})", as_condition(&a), c.0), *ky),
        (3, K::Num, _) => match p % 4 {
            0 => (format!("-{x}"), K::Num),
            1 => (format!("int({x})"), K::Num),
            2 => (format!("double({x})"), K::Num),
            _ => (format!("string({x})"), K::Str),
        },
        (3, K::Str, _) => match p % 4 {
            0 => (format!("size({x})"), K::Num),
            1 => (format!("int({x})"), K::Num),
            2 => (format!("{x}.size()"), K::Num),
            _ => (format!("string({x})"), K::Str),
        },
        (3, K::Bool, _) => (format!("!{x}"), K::Bool),
        (4, _, _) => (format!("size([{x}, {y}])"), K::Num),
        (5, _, _) => (format!("({x} == {y})"), K::Bool),
        _ => (as_condition(&a), K::Bool),
    }
}

/// Random expressions over one scope's names, all operators and functions,
/// mostly well-kinded (some, `(x == y)` of two kinds say, are not).
fn expression(scope: &'static str) -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(leaves(scope)).prop_map(|(s, k)| (s.to_string(), k));
    leaf.prop_recursive(5, 48, 3, |inner| {
        (inner.clone(), inner.clone(), inner, any::<u8>())
            .prop_map(|(a, b, c, pick)| combine(a, b, c, pick))
    })
    .prop_map(|(source, _)| source)
}

proptest! {
    #[test]
    fn random_record_expressions_never_panic_and_agree(source in expression("record")) {
        let schema = schema();
        let fields = record_fields();
        // Every field missing: the error paths.
        let no_fields = Fields::new();
        for fields in [&fields, &no_fields] {
            check_evaluation(&source, Scope::Record { fields: &schema }, &record_context(fields))?;
        }
    }

    #[test]
    fn random_subject_expressions_never_panic_and_agree(source in expression("subject")) {
        let lists: Vec<crate::Name> = vec!["judgment_defaulters".into()];
        check_evaluation(&source, Scope::Subject, &subject_context(Some(1000), &lists))?;
        check_evaluation(&source, Scope::Subject, &subject_context(None, &[]))?;
    }

    #[test]
    fn arbitrary_text_never_panics_the_compiler(source in "[a-z0-9 .,()\\[\\]'\"+*/%<>=!&|?:_-]{0,40}") {
        let schema = schema();
        let _ = Program::compile(&source, Scope::Record { fields: &schema });
        let _ = Program::compile(&source, Scope::Subject);
    }
}

/// The properties above are about evaluation: they only reach it when the
/// generated expressions compile.
#[test]
fn most_generated_expressions_compile() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let schema = schema();
    for (name, scope) in [
        ("record", Scope::Record { fields: &schema }),
        ("subject", Scope::Subject),
    ] {
        let mut runner = TestRunner::deterministic();
        let strategy = expression(name);
        let mut compiled = 0;
        for _ in 0..1000 {
            let Ok(tree) = strategy.new_tree(&mut runner) else {
                panic!("the generator failed");
            };
            compiled += usize::from(Program::compile(&tree.current(), scope).is_ok());
        }
        assert!(compiled >= 500, "{name}: {compiled} of 1000 compiled");
    }
}

#[test]
fn an_evaluation_result_is_two_words() {
    // A result is made and copied at every node: one tag and one word, each
    // copied whole (see `V` and `EvalError` for the measurements).
    assert_eq!(std::mem::size_of::<Result<V<'_>, eval::EvalError>>(), 16);
}

/// The parser recurses once per nesting level and overflowed the stack on a
/// sum of 5000 terms, so sources are limited in length: every shape of deep
/// nesting that fits the limit must come back, as a program or as errors.
#[test]
fn the_longest_sources_do_not_overflow_the_stack() {
    let schema = schema();
    let scope = Scope::Record { fields: &schema };
    let deep = [
        format!("{}1", "1+".repeat(2047)),
        format!("{}true", "!".repeat(4092)),
        format!("{}1", "-".repeat(4095)),
        format!("fields{}", ".x".repeat(2045)),
        format!("{}1", "1?1:".repeat(1023)),
        format!("{}true", "true&&".repeat(681)),
        format!("{}1{}", "f(".repeat(1365), ")".repeat(1365)),
        format!("{}1{}", "[".repeat(2047), "]".repeat(2047)),
        format!("a{}", ".f()".repeat(1023)),
    ];
    for source in &deep {
        assert!(source.len() <= SOURCE_BYTES_MAX, "{}", source.len());
        // Reaching the next line is the test.
        let _ = Program::compile(source, scope);
    }
    let long = format!("{}1", "1+".repeat(2048));
    let Err(errors) = Program::compile(&long, scope) else {
        panic!("a source over the limit compiled");
    };
    assert_eq!(
        errors,
        [ExprError {
            message: "the expression is 4097 bytes long; the limit is 4096".to_string(),
            offset: None,
        }]
    );
}

#[test]
fn a_compile_reports_at_most_a_screenful_of_problems() {
    // One unknown function per term: 50 problems.
    let source = vec!["f(1)"; 50].join(" + ");
    let Err(errors) = Program::compile(&source, Scope::Subject) else {
        panic!("compiled");
    };
    assert_eq!(errors.len(), ERRORS_MAX + 1);
    assert_eq!(
        errors.last().map(|e| e.message.as_str()),
        Some("and 18 more problems")
    );
}

#[test]
fn arithmetic_on_fields_keeps_its_rules_when_read_in_place() {
    for (source, expected) in [
        ("fields.cycles * 7", "21"),
        ("fields.amount_yuan / 1000", "150"),
        ("fields.amount_yuan / 1000.0", "150.0"),
        ("fields.ratio * fields.cycles", "7.5"),
        ("fields.cycles - fields.ratio", "0.5"),
        ("fields.amount_yuan % 7", "4"),
        ("fields.cycles / 0", "error: division by zero"),
        ("fields.cycles % 0", "error: modulo by zero"),
        (
            "fields.amount_yuan * 9223372036854775807",
            "error: integer overflow in `*`",
        ),
        ("fields.level + \"-x\"", "\"provincial-x\""),
    ] {
        assert_eq!(eval_record(source), expected, "{source}");
    }
}

#[test]
fn a_record_with_many_fields_is_read_by_name_too() {
    // More fields than are scanned one by one: the map is searched.
    let filler: Vec<(String, Value)> = (0..6).map(|i| (format!("z{i}"), Value::Int(i))).collect();
    let changes: Vec<(&str, Value)> = filler
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    let mut many = with(&changes);
    assert!(many.len() > 8);
    assert_eq!(points_for("fields.cycles * 2", &many), Some(6));
    assert_eq!(points_for("-10 * fields.cycles", &many), Some(-30));
    many.remove("cycles");
    assert_eq!(points_for("fields.cycles * 2", &many), None);
}

#[test]
fn a_program_says_whether_it_reads_the_profession() {
    let schema = schema();
    let reads = |source: &str| {
        Program::compile(source, Scope::Record { fields: &schema })
            .unwrap()
            .reads_profession()
    };
    assert!(reads("subject.profession == \"lawyer\""));
    assert!(reads(
        "fields.amount_yuan > 1 && subject.profession in [\"teacher\"]"
    ));
    assert!(!reads("fields.amount_yuan > 1"));
    assert!(!reads("subject.kind == \"person\" && record.type == \"x\""));
    assert!(!reads("\"subject.profession\" == \"lawyer\""));
    assert!(
        Program::compile("subject.profession == \"\"", Scope::Subject)
            .unwrap()
            .reads_profession()
    );
}
