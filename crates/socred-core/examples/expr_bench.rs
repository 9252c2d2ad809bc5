//! Measures one evaluation of typical rulebook expressions, in nanoseconds,
//! for the budget of the fold (at least 5 million records per second per
//! core through the default rulebook). It also times a hand-built tree of
//! boxed closures for the same expressions, the alternative design, so the
//! choice of an enum-dispatched tree stays justified by numbers.
//!
//! Run: `cargo run --release -p socred-core --example expr_bench`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use socred_core::expr::{Context, Program, Scope};
use socred_core::record::{FieldType, Fields, Value};
use socred_core::SubjectKind;

/// Evaluations per round, unless a second argument says otherwise (a
/// small count suits an instruction-counting profiler such as cachegrind).
const ITERATIONS: usize = 5_000_000;
const ROUNDS: usize = 5;

const CONDITION: &str = r#"fields.amount_yuan >= 10000 && record.type == "x""#;
const HONOUR: &str = r#"fields.level == "national" ? 30 : fields.level == "provincial" ? 20 : fields.level == "municipal" ? 10 : fields.level == "county" ? 5 : fields.level == "township" ? 3 : 1"#;

fn main() {
    let schema: Vec<(Arc<str>, FieldType)> = [
        ("amount_yuan", FieldType::Number),
        ("level", FieldType::Text),
        ("case_no", FieldType::Text),
        ("serious", FieldType::Bool),
    ]
    .into_iter()
    .map(|(name, ty)| (Arc::from(name), ty))
    .collect();
    // Records that vary, so that branch prediction does not learn one path.
    let levels = [
        "national",
        "provincial",
        "municipal",
        "county",
        "township",
        "village",
    ];
    let records: Vec<Fields> = (0..levels.len() * 2)
        .map(|i| {
            let mut fields = Fields::new();
            let amount = if i % 2 == 0 {
                Value::Int(5_000 * i as i64)
            } else {
                Value::Number(12_500.5)
            };
            fields.insert("amount_yuan".into(), amount);
            fields.insert("level".into(), Value::Text(levels[i % levels.len()].into()));
            fields.insert("case_no".into(), Value::Text("(2026)京01执1号".into()));
            fields.insert("serious".into(), Value::Bool(i % 3 == 0));
            fields
        })
        .collect();
    let contexts: Vec<Context<'_>> = records
        .iter()
        .enumerate()
        .map(|(i, fields)| Context {
            fields: Some(fields),
            record_type: if i % 4 == 0 { "y" } else { "x" },
            provider: "court",
            subject_kind: SubjectKind::Person,
            profession: "",
            score: None,
            grade: "",
            lists: &[],
        })
        .collect();

    let scope = Scope::Record { fields: &schema };
    let compile = |source: &str| match Program::compile(source, scope) {
        Ok(program) => program,
        Err(errors) => panic!("{source}: {errors:?}"),
    };
    let condition = compile(CONDITION);
    let honour = compile(HONOUR);

    let closure_condition = closures::condition();
    let closure_honour = closures::honour();
    let measurements: [Measurement<'_>; 4] = [
        ("program  condition", &|cx| i64::from(condition.test(cx))),
        ("program  honour   ", &|cx| honour.points(cx).unwrap_or(0)),
        ("closures condition", &|cx| {
            i64::from(matches!(closure_condition(cx), Ok(closures::V::Bool(true))))
        }),
        ("closures honour   ", &|cx| match closure_honour(cx) {
            Ok(closures::V::Int(n)) => n,
            _ => 0,
        }),
    ];
    // An argument keeps the measurements whose name contains it (for a
    // profiler). The best of several rounds resists a busy machine.
    let only = std::env::args().nth(1).unwrap_or_default();
    let iterations = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(ITERATIONS);
    println!("condition: {CONDITION}\nhonour: {HONOUR}");
    println!(
        "best of {ROUNDS} rounds of {iterations} evaluations over {} varied records",
        contexts.len()
    );
    for (name, f) in measurements {
        if !name.contains(only.as_str()) {
            continue;
        }
        let best = (0..ROUNDS)
            .map(|_| time(&contexts, f, iterations))
            .fold(f64::INFINITY, f64::min);
        println!("{name}: {best:5.1} ns");
    }
}

/// A name and a function that evaluates one expression.
type Measurement<'f> = (&'static str, &'f dyn Fn(&Context<'_>) -> i64);

/// Mean nanoseconds per call of `f` over `iterations` calls.
fn time(contexts: &[Context<'_>], f: &dyn Fn(&Context<'_>) -> i64, iterations: usize) -> f64 {
    let mut sum = 0i64;
    for cx in contexts.iter().cycle().take(iterations / 10) {
        sum = sum.wrapping_add(f(black_box(cx)));
    }
    let start = Instant::now();
    for cx in contexts.iter().cycle().take(iterations) {
        sum = sum.wrapping_add(f(black_box(cx)));
    }
    let elapsed = start.elapsed();
    black_box(sum);
    elapsed.as_nanos() as f64 / iterations as f64
}

/// What a compiler to boxed closures would build for the two expressions:
/// one closure per node, values borrowed from the context. Literal strings
/// are `&'static` here, the closures' best case: a real compiler would hold
/// them in `Arc<str>` and pay a reference count per use.
mod closures {
    use socred_core::expr::Context;
    use socred_core::record::Value;

    #[derive(Debug)]
    pub enum V<'a> {
        Bool(bool),
        Int(i64),
        Double(f64),
        Str(&'a str),
    }

    #[derive(Debug)]
    pub struct Error;

    pub type F = Box<dyn for<'a> Fn(&Context<'a>) -> Result<V<'a>, Error> + Send + Sync>;

    fn field(name: &'static str) -> F {
        Box::new(move |cx| match cx.fields.and_then(|f| f.get(name)) {
            Some(Value::Int(n)) => Ok(V::Int(*n)),
            Some(Value::Number(x)) => Ok(V::Double(*x)),
            Some(Value::Text(s)) => Ok(V::Str(s)),
            Some(Value::Bool(b)) => Ok(V::Bool(*b)),
            None => Err(Error),
        })
    }

    fn int(n: i64) -> F {
        Box::new(move |_| Ok(V::Int(n)))
    }

    fn string(s: &'static str) -> F {
        Box::new(move |_| Ok(V::Str(s)))
    }

    fn record_type() -> F {
        Box::new(|cx| Ok(V::Str(cx.record_type)))
    }

    fn ge(a: F, b: F) -> F {
        Box::new(move |cx| match (a(cx)?, b(cx)?) {
            (V::Int(x), V::Int(y)) => Ok(V::Bool(x >= y)),
            (V::Double(x), V::Int(y)) => Ok(V::Bool(x >= y as f64)),
            (V::Int(x), V::Double(y)) => Ok(V::Bool(x as f64 >= y)),
            (V::Double(x), V::Double(y)) => Ok(V::Bool(x >= y)),
            _ => Err(Error),
        })
    }

    fn eq(a: F, b: F) -> F {
        Box::new(move |cx| match (a(cx)?, b(cx)?) {
            (V::Str(x), V::Str(y)) => Ok(V::Bool(x == y)),
            (V::Int(x), V::Int(y)) => Ok(V::Bool(x == y)),
            _ => Ok(V::Bool(false)),
        })
    }

    fn and(a: F, b: F) -> F {
        Box::new(move |cx| {
            let a = a(cx);
            if let Ok(V::Bool(false)) = a {
                return Ok(V::Bool(false));
            }
            match (a, b(cx)) {
                (_, Ok(V::Bool(false))) => Ok(V::Bool(false)),
                (Ok(V::Bool(true)), Ok(V::Bool(true))) => Ok(V::Bool(true)),
                _ => Err(Error),
            }
        })
    }

    fn cond(c: F, t: F, e: F) -> F {
        Box::new(move |cx| match c(cx)? {
            V::Bool(true) => t(cx),
            V::Bool(false) => e(cx),
            _ => Err(Error),
        })
    }

    pub fn condition() -> F {
        and(
            ge(field("amount_yuan"), int(10_000)),
            eq(record_type(), string("x")),
        )
    }

    pub fn honour() -> F {
        let arms = [
            ("national", 30),
            ("provincial", 20),
            ("municipal", 10),
            ("county", 5),
            ("township", 3),
        ];
        arms.into_iter()
            .rev()
            .fold(int(1), |otherwise, (level, points)| {
                cond(eq(field("level"), string(level)), int(points), otherwise)
            })
    }
}
