//! CEL conditions and point expressions, compiled once to a tree that is
//! cheap to evaluate.
//!
//! Rulebooks write their conditions and point formulas in CEL, the Common
//! Expression Language, so that they are a standard, documented language and
//! not a home-made one. The `cel` crate parses; this module resolves names
//! against a [`Scope`], checks kinds, folds constants (`compile.rs`) and
//! builds a tree that the fold evaluates tens of millions of times per
//! second per core without allocating (`lower.rs`; `examples/expr_bench.rs`
//! measures it). Evaluation never panics: every failure is an error value.
//!
//! The supported subset of CEL, anything else being a compile error that
//! names the construct and where it is:
//!
//! - literals: int, uint (as int), double, string, bool, `null`, list `[a, b]`;
//! - names: in a record rule `fields.<name>` (typed by the record type's
//!   schema; `date` and `subject` fields are strings), `record.type`,
//!   `record.provider`, `subject.kind` (`"person"` or `"organisation"`),
//!   `subject.profession` (`""` when unknown); in a subject condition
//!   `subject.kind`, `subject.profession`, `score` (int, `null` when not
//!   scored), `grade` (`""` when none) and `lists` (ids of the lists the
//!   subject is on);
//! - `+ - * / %` on ints (checked: overflow and division by zero are errors)
//!   and doubles, `+` on strings, unary `-` and `!`, `== != < <= > >=`,
//!   `&&` and `||` with CEL's short-circuit (a false operand of `&&` wins
//!   over an error in the other), `? :`, `in` on a list literal or `lists`;
//! - `has(fields.x)`, `size(x)` and `x.size()` on strings (code points) and
//!   lists, `int(x)`, `double(x)`, `string(x)`, `s.startsWith(t)`,
//!   `s.endsWith(t)`, `s.contains(t)`, and the socred extensions `min(a, b)`
//!   and `max(a, b)` on numbers (the smaller or larger operand, as it is).
//!
//! Deviations from CEL, on purpose: arithmetic mixing int and double gives a
//! double (fields such as `amount_yuan` arrive as JSON numbers, integral or
//! not), comparisons and equality work across int and double, `%` works on
//! doubles, and `uint` is not a separate type. Reading a field the record
//! does not carry is an evaluation error, so a condition using it is false
//! and a point expression gives nothing; `has()` guards optional fields.
//!
//! Typing is by kinds (null, bool, int, double, string, list): an operation is
//! a compile error when no combination of its operands' possible kinds is
//! defined, as in `fields.case_no > 5` on a text field, and otherwise checked
//! again at run time.

mod compile;
mod eval;
mod ir;
mod lower;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use crate::id::SubjectKind;
use crate::record::{FieldType, Fields};

pub(crate) use eval::lookup as field_value;
use eval::{Kinds, Role, V};
use lower::{lower, Specialise, Tree};

/// What an expression may refer to.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// A rule about one record: `fields.<name>` (typed by the record type's
    /// schema), `record.type`, `record.provider`, `subject.kind`,
    /// `subject.profession`.
    Record { fields: &'a [(Arc<str>, FieldType)] },
    /// A measure condition about a subject: `subject.kind`,
    /// `subject.profession`, `score`, `grade`, `lists`.
    Subject,
}

/// The data an expression is evaluated against.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub fields: Option<&'a Fields>,
    pub record_type: &'a str,
    pub provider: &'a str,
    pub subject_kind: SubjectKind,
    /// Empty when the subject has no known profession.
    pub profession: &'a str,
    /// None when the subject is not scored.
    pub score: Option<i64>,
    /// Empty when the subject has no grade.
    pub grade: &'a str,
    /// Ids of the lists the subject is on.
    pub lists: &'a [crate::name::Name],
}

/// A compile error, with the byte offset in the expression where known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    pub message: String,
    pub offset: Option<usize>,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(offset) => write!(f, "{} (at byte {offset})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ExprError {}

/// The result of an evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Bool(bool),
    Int(i64),
    Double(f64),
    Text(Arc<str>),
    Null,
    List(Vec<Outcome>),
}

/// A compiled CEL expression. Cloning shares the compiled tree.
#[derive(Clone)]
pub struct Program {
    source: Arc<str>,
    tree: Arc<Compiled>,
}

struct Compiled {
    root: Tree,
    /// The kinds the value may have.
    kinds: Kinds,
    /// The fields the expression reads, named by evaluation errors.
    field_names: Vec<Arc<str>>,
    reads_profession: bool,
}

impl Program {
    /// Parses and compiles `source` for `scope`, reporting every problem
    /// found, each with its byte offset in `source` where known.
    ///
    /// An expression that reads nothing of its record or subject is a
    /// constant: one that fails whenever it is evaluated (`1 / 0`,
    /// `int("abc")`) is refused here, since at run time a failure counts
    /// as false or as no points, and the rule would do nothing in silence.
    pub fn compile(source: &str, scope: Scope<'_>) -> Result<Program, Vec<ExprError>> {
        let checked = compile::check(source, scope)?;
        let constant = !checked.node.reads_context();
        let program = Program {
            source: source.into(),
            tree: Arc::new(Compiled {
                root: lower(&checked.node, Specialise::Yes),
                kinds: checked.kinds,
                field_names: checked.field_names,
                reads_profession: checked.reads_profession,
            }),
        };
        if constant {
            let nothing = Context {
                fields: None,
                record_type: "",
                provider: "",
                subject_kind: crate::id::SubjectKind::Person,
                profession: "",
                score: None,
                grade: "",
                lists: &[],
            };
            if let Err(message) = program.eval(&nothing) {
                return Err(vec![ExprError {
                    message: format!("the expression reads nothing and always fails: {message}"),
                    offset: None,
                }]);
            }
        }
        Ok(program)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression reads `subject.profession`: the only thing
    /// a condition about a record reads that the record alone does not
    /// tell (the profession comes from the subject's other records).
    pub fn reads_profession(&self) -> bool {
        self.tree.reads_profession
    }

    /// Whether the expression may give a bool: a condition that cannot is
    /// never true.
    pub fn may_give_bool(&self) -> bool {
        self.tree.kinds.intersects(Kinds::BOOL)
    }

    /// Whether the expression may give a number: points that cannot are
    /// never given.
    pub fn may_give_number(&self) -> bool {
        self.tree.kinds.intersects(Kinds::NUMBER)
    }

    pub fn eval(&self, ctx: &Context<'_>) -> Result<Outcome, String> {
        match self.tree.root.value(ctx) {
            Ok(value) => Ok(value.to_outcome()),
            Err(e) => Err(e.message(&self.tree.field_names)),
        }
    }

    /// A condition: true only when the expression evaluates to `true`; an
    /// evaluation error (a missing optional field, say) counts as false.
    pub fn test(&self, ctx: &Context<'_>) -> bool {
        matches!(self.tree.root.test(ctx, Role::Result), Ok(true))
    }

    /// Points: an integer (doubles are truncated toward zero, saturating at
    /// the int range); None on error or when the value is not a number.
    pub fn points(&self, ctx: &Context<'_>) -> Option<i64> {
        match self.tree.root.value(ctx) {
            Ok(V::Int(n)) => Some(n),
            // `as` truncates toward zero and saturates, without a libm call.
            Ok(V::Double(x)) if x.is_finite() => Some(x as i64),
            _ => None,
        }
    }
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Program({:?})", self.source)
    }
}

impl serde::Serialize for Program {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}
