//! Values, errors and the semantics of the operators, shared by the
//! compiler (kinds, constant folding) and the executable tree.
//!
//! Nothing here allocates in the common cases: field values and strings are
//! borrowed from the [`Context`] or from the tree (`V<'a>` lives as long as
//! both), and only the operations that must build something (string
//! concatenation, `string(x)`, a list literal used as a value) allocate. A
//! value and an error are each one tag and one word, laid out so that a
//! `Result<V, EvalError>` is copied as two whole words: with narrower pieces
//! in the padding, each copy of a result stalled on store forwarding and
//! evaluation took twice as long. The static kinds the compiler computes
//! (the `rule` tables) are a superset of what evaluation produces here, which
//! a property test checks.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use super::{Context, Outcome};
use crate::id::SubjectKind;
use crate::name::Name;
use crate::record::{Fields, Value};

/// A set of value kinds. An expression's static type is the set of kinds its
/// value may have at run time; an operation is a compile error only when no
/// combination of its operands' kinds is defined.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Kinds(u8);

impl Kinds {
    pub const NONE: Kinds = Kinds(0);
    pub const NULL: Kinds = Kinds(1);
    pub const BOOL: Kinds = Kinds(2);
    pub const INT: Kinds = Kinds(4);
    pub const DOUBLE: Kinds = Kinds(8);
    pub const STRING: Kinds = Kinds(16);
    pub const LIST: Kinds = Kinds(32);
    pub const NUMBER: Kinds = Kinds(4 | 8);
    pub const ANY: Kinds = Kinds(63);

    const NAMES: [(Kinds, &'static str); 6] = [
        (Kinds::BOOL, "bool"),
        (Kinds::INT, "int"),
        (Kinds::DOUBLE, "double"),
        (Kinds::STRING, "string"),
        (Kinds::LIST, "list"),
        (Kinds::NULL, "null"),
    ];

    pub fn union(self, other: Kinds) -> Kinds {
        Kinds(self.0 | other.0)
    }

    pub fn intersects(self, other: Kinds) -> bool {
        self.0 & other.0 != 0
    }

    pub fn contains(self, other: Kinds) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The single kinds in this set.
    pub fn each(self) -> impl Iterator<Item = Kinds> {
        Kinds::NAMES
            .into_iter()
            .map(|(kind, _)| kind)
            .filter(move |kind| self.intersects(*kind))
    }

    /// Numbers compare with numbers of either kind: the set of kinds a value
    /// of these kinds may equal.
    pub fn comparable(self) -> Kinds {
        if self.intersects(Kinds::NUMBER) {
            self.union(Kinds::NUMBER)
        } else {
            self
        }
    }
}

impl fmt::Display for Kinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Kinds::ANY {
            return f.write_str("any value");
        }
        let mut first = true;
        for (kind, name) in Kinds::NAMES {
            if self.intersects(kind) {
                if !first {
                    f.write_str(" or ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("nothing")?;
        }
        Ok(())
    }
}

/// A constant, folded at compile time.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Const {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(Arc<str>),
}

impl Const {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Const::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn value(&self) -> V<'_> {
        match self {
            Const::Null => V::Null,
            Const::Bool(b) => V::Bool(*b),
            Const::Int(n) => V::Int(*n),
            Const::Double(x) => V::Double(*x),
            Const::Str(s) => V::Shared(s),
        }
    }
}

/// A value during evaluation, borrowing from the context and the tree. Every
/// payload is one word (strings are reached through a thin reference), and
/// the tag is a word too: a `bool` payload would otherwise sit in the tag's
/// padding, and copies of a value would move odd-sized pieces.
#[derive(Clone, Debug)]
#[repr(u64)]
pub(super) enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    /// A string of the context (`record.type`, …).
    Str(&'a &'a str),
    /// A string of a record's fields or of the tree.
    Shared(&'a Arc<str>),
    /// The ids of the lists the subject is on.
    Lists(&'a &'a [Name]),
    /// A value built during evaluation. Everything that owns memory is
    /// behind this one variant, so that dropping a value is one tag test
    /// before any call: with two owning variants the drop glue was a call at
    /// every node and cost as much as the comparison it followed.
    Owned(Box<Owned<'a>>),
}

#[derive(Clone, Debug)]
pub(super) enum Owned<'a> {
    /// Concatenation, `string(x)`.
    Str(String),
    /// A list literal used as a value.
    List(Vec<V<'a>>),
}

impl<'a> V<'a> {
    pub fn kind(&self) -> Kinds {
        match self {
            V::Null => Kinds::NULL,
            V::Bool(_) => Kinds::BOOL,
            V::Int(_) => Kinds::INT,
            V::Double(_) => Kinds::DOUBLE,
            V::Str(_) | V::Shared(_) => Kinds::STRING,
            V::Lists(_) => Kinds::LIST,
            V::Owned(owned) => match **owned {
                Owned::Str(_) => Kinds::STRING,
                Owned::List(_) => Kinds::LIST,
            },
        }
    }

    pub fn string(s: String) -> V<'a> {
        V::Owned(Box::new(Owned::Str(s)))
    }

    pub fn list(items: Vec<V<'a>>) -> V<'a> {
        V::Owned(Box::new(Owned::List(items)))
    }

    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            V::Str(s) => Some(s),
            V::Shared(s) => Some(s),
            V::Owned(owned) => match &**owned {
                Owned::Str(s) => Some(s),
                Owned::List(_) => None,
            },
            _ => None,
        }
    }

    fn len(&self) -> Option<usize> {
        match self {
            V::Owned(owned) => match &**owned {
                Owned::List(items) => Some(items.len()),
                Owned::Str(_) => None,
            },
            V::Lists(ids) => Some(ids.len()),
            _ => None,
        }
    }

    /// The `i`-th element of a list.
    fn item(&self, i: usize) -> Option<V<'_>> {
        match self {
            V::Owned(owned) => match &**owned {
                Owned::List(items) => items.get(i).cloned(),
                Owned::Str(_) => None,
            },
            V::Lists(ids) => ids.get(i).map(|id| V::Str(id.as_str_ref())),
            _ => None,
        }
    }

    pub fn to_outcome(&self) -> Outcome {
        match self {
            V::Null => Outcome::Null,
            V::Bool(b) => Outcome::Bool(*b),
            V::Int(n) => Outcome::Int(*n),
            V::Double(x) => Outcome::Double(*x),
            V::Str(s) => Outcome::Text((**s).into()),
            V::Shared(s) => Outcome::Text(Arc::clone(s)),
            V::Owned(owned) => match &**owned {
                Owned::Str(s) => Outcome::Text(s.as_str().into()),
                Owned::List(items) => Outcome::List(items.iter().map(V::to_outcome).collect()),
            },
            V::Lists(ids) => Outcome::List(
                ids.iter()
                    .map(|id| Outcome::Text(id.as_str().into()))
                    .collect(),
            ),
        }
    }

    /// The constant this value is, for folding; lists are not folded.
    pub fn to_const(&self) -> Option<Const> {
        match self {
            V::Null => Some(Const::Null),
            V::Bool(b) => Some(Const::Bool(*b)),
            V::Int(n) => Some(Const::Int(*n)),
            V::Double(x) => Some(Const::Double(*x)),
            V::Str(s) => Some(Const::Str((**s).into())),
            V::Shared(s) => Some(Const::Str(Arc::clone(s))),
            V::Owned(owned) => match &**owned {
                Owned::Str(s) => Some(Const::Str(s.as_str().into())),
                Owned::List(_) => None,
            },
            V::Lists(_) => None,
        }
    }
}

/// What must be a bool and is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    AndOperand,
    OrOperand,
    Condition,
    Result,
}

/// An operator, in an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Unary(Op1),
    Binary(Op2),
}

/// An evaluation error: a word, with no allocation and no borrow, as the
/// common one (a missing optional field in a condition) must cost nothing.
/// Aligned to a word so that in a `Result<V, EvalError>` it sits beside the
/// value's tag, not in its padding: bytes there made every copy of a result
/// a chain of narrow loads that missed store forwarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(align(8))]
pub(super) enum EvalError {
    /// The index of the field in the program's field names.
    MissingField(u32),
    /// An operator or function applied to kinds it is not defined for
    /// (`right` is NONE for a unary one).
    NoOverload {
        op: Op,
        left: Kinds,
        right: Kinds,
    },
    /// A value that must be a bool (an operand of `&&`, a condition) is not.
    NotBool {
        role: Role,
        got: Kinds,
    },
    Overflow(Op2),
    NegationOverflow,
    DivisionByZero,
    ModuloByZero,
    Conversion {
        to: Op1,
        from: Kinds,
    },
}

impl EvalError {
    /// The message, naming fields from the program's `field_names`.
    pub fn message(self, field_names: &[Arc<str>]) -> String {
        match self {
            EvalError::MissingField(index) => {
                let name = usize::try_from(index)
                    .ok()
                    .and_then(|i| field_names.get(i))
                    .map_or("?", |name| &**name);
                format!("the record has no field `{name}`")
            }
            EvalError::NoOverload { op, left, right } => {
                let name = match op {
                    Op::Unary(op) => op.name(),
                    Op::Binary(op) => op.name(),
                };
                if right.is_empty() {
                    format!("`{name}` is not defined for {left}")
                } else {
                    format!("`{name}` is not defined for {left} and {right}")
                }
            }
            EvalError::NotBool { role, got } => {
                let what = match role {
                    Role::AndOperand => "an operand of `&&`",
                    Role::OrOperand => "an operand of `||`",
                    Role::Condition => "the condition of `? :`",
                    Role::Result => "a condition",
                };
                format!("{what} must be a bool, got {got}")
            }
            EvalError::Overflow(op) => format!("integer overflow in `{}`", op.name()),
            EvalError::NegationOverflow => "integer overflow in `-`".to_string(),
            EvalError::DivisionByZero => "division by zero".to_string(),
            EvalError::ModuloByZero => "modulo by zero".to_string(),
            EvalError::Conversion { to, from } => {
                format!("`{}()` cannot convert this {from} value", to.name())
            }
        }
    }
}

pub(super) type Evaluated<'a> = Result<V<'a>, EvalError>;

/// A value read from the context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Accessor {
    RecordType,
    Provider,
    SubjectKind,
    Profession,
    Score,
    Grade,
    Lists,
}

impl Accessor {
    /// The accessor's string, without building a value; None for `score`
    /// and `lists`.
    #[inline]
    pub fn str<'a>(self, cx: &'a Context<'a>) -> Option<&'a str> {
        match self {
            Accessor::RecordType => Some(cx.record_type),
            Accessor::Provider => Some(cx.provider),
            Accessor::SubjectKind => Some(cx.subject_kind.as_str()),
            Accessor::Profession => Some(cx.profession),
            Accessor::Grade => Some(cx.grade),
            Accessor::Score | Accessor::Lists => None,
        }
    }

    pub fn get<'a>(self, cx: &'a Context<'a>) -> V<'a> {
        match self {
            Accessor::RecordType => V::Str(&cx.record_type),
            Accessor::Provider => V::Str(&cx.provider),
            Accessor::SubjectKind => V::Str(match cx.subject_kind {
                SubjectKind::Person => &"person",
                SubjectKind::Organisation => &"organisation",
            }),
            Accessor::Profession => V::Str(&cx.profession),
            Accessor::Score => cx.score.map_or(V::Null, V::Int),
            Accessor::Grade => V::Str(&cx.grade),
            Accessor::Lists => V::Lists(&cx.lists),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op1 {
    Neg,
    Not,
    Size,
    Int,
    Double,
    String,
}

impl Op1 {
    pub fn name(self) -> &'static str {
        match self {
            Op1::Neg => "-",
            Op1::Not => "!",
            Op1::Size => "size",
            Op1::Int => "int",
            Op1::Double => "double",
            Op1::String => "string",
        }
    }

    /// The kinds of `op(x)` for one kind of `x`; NONE where undefined.
    pub fn rule(self, x: Kinds) -> Kinds {
        let defined_on = match self {
            Op1::Neg => Kinds::NUMBER,
            Op1::Not => Kinds::BOOL,
            Op1::Size => Kinds::STRING.union(Kinds::LIST),
            Op1::Int | Op1::Double => Kinds::NUMBER.union(Kinds::STRING),
            Op1::String => Kinds::NUMBER.union(Kinds::STRING).union(Kinds::BOOL),
        };
        if !defined_on.contains(x) {
            return Kinds::NONE;
        }
        match self {
            Op1::Neg => x,
            Op1::Not => Kinds::BOOL,
            Op1::Size | Op1::Int => Kinds::INT,
            Op1::Double => Kinds::DOUBLE,
            Op1::String => Kinds::STRING,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op2 {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Min,
    Max,
    StartsWith,
    EndsWith,
    Contains,
}

impl Op2 {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            Op2::Eq | Op2::Ne | Op2::Lt | Op2::Le | Op2::Gt | Op2::Ge
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Op2::Add => "+",
            Op2::Sub => "-",
            Op2::Mul => "*",
            Op2::Div => "/",
            Op2::Rem => "%",
            Op2::Eq => "==",
            Op2::Ne => "!=",
            Op2::Lt => "<",
            Op2::Le => "<=",
            Op2::Gt => ">",
            Op2::Ge => ">=",
            Op2::Min => "min",
            Op2::Max => "max",
            Op2::StartsWith => "startsWith",
            Op2::EndsWith => "endsWith",
            Op2::Contains => "contains",
        }
    }

    /// The kinds of `a op b` for one kind each of `a` and `b`; NONE where
    /// undefined. Must agree with [`binary`].
    pub fn rule(self, a: Kinds, b: Kinds) -> Kinds {
        let numbers = Kinds::NUMBER.contains(a) && Kinds::NUMBER.contains(b);
        let strings = a == Kinds::STRING && b == Kinds::STRING;
        match self {
            Op2::Add if strings => Kinds::STRING,
            Op2::Add | Op2::Sub | Op2::Mul | Op2::Div | Op2::Rem if numbers => {
                if a == Kinds::INT && b == Kinds::INT {
                    Kinds::INT
                } else {
                    Kinds::DOUBLE
                }
            }
            Op2::Eq | Op2::Ne if a.comparable().intersects(b) => Kinds::BOOL,
            Op2::Lt | Op2::Le | Op2::Gt | Op2::Ge
                if numbers || strings || (a == Kinds::BOOL && b == Kinds::BOOL) =>
            {
                Kinds::BOOL
            }
            Op2::Min | Op2::Max if numbers => a.union(b),
            Op2::StartsWith | Op2::EndsWith | Op2::Contains if strings => Kinds::BOOL,
            _ => Kinds::NONE,
        }
    }
}

#[inline]
pub(super) fn field<'a>(cx: &'a Context<'a>, name: &str, index: u32) -> Evaluated<'a> {
    match cx.fields.and_then(|fields| lookup(fields, name)) {
        Some(Value::Bool(b)) => Ok(V::Bool(*b)),
        Some(Value::Int(n)) => Ok(V::Int(*n)),
        Some(Value::Number(x)) => Ok(V::Double(*x)),
        Some(Value::Text(s)) => Ok(V::Shared(s)),
        None => Err(EvalError::MissingField(index)),
    }
}

/// The value of the field `name`. A record has a handful of fields: a scan
/// that compares lengths first and short names as words beats the map's
/// search, which calls `memcmp` for every key it passes. Larger maps are
/// searched.
#[inline]
pub(crate) fn lookup<'f>(fields: &'f Fields, name: &str) -> Option<&'f Value> {
    if fields.len() <= FIELDS_SCANNED {
        fields
            .iter()
            .find(|(key, _)| str_eq(key, name))
            .map(|(_, value)| value)
    } else {
        fields.get(name)
    }
}

/// Most fields [`lookup`] scans rather than searches.
const FIELDS_SCANNED: usize = 8;

/// Whether `op` is `+`, `-`, `*`, `/` or `%`.
#[inline]
pub(super) fn is_arithmetic(op: Op2) -> bool {
    matches!(op, Op2::Add | Op2::Sub | Op2::Mul | Op2::Div | Op2::Rem)
}

/// String equality that skips the byte comparison when both sides are the
/// same allocation (interned names from the rulebook).
#[inline]
pub(super) fn str_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || same_bytes(a.as_bytes(), b.as_bytes()))
}

/// Compares slices of equal length. Names and labels are short, and for
/// 4 to 16 bytes two overlapping word loads beat a call of `memcmp`.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn words<const N: usize>(x: &[u8]) -> Option<(&[u8; N], &[u8; N])> {
        Some((x.first_chunk::<N>()?, x.last_chunk::<N>()?))
    }
    if (8..=16).contains(&a.len()) {
        if let (Some((a0, a1)), Some((b0, b1))) = (words::<8>(a), words::<8>(b)) {
            return u64::from_ne_bytes(*a0) == u64::from_ne_bytes(*b0)
                && u64::from_ne_bytes(*a1) == u64::from_ne_bytes(*b1);
        }
    }
    if (4..8).contains(&a.len()) {
        if let (Some((a0, a1)), Some((b0, b1))) = (words::<4>(a), words::<4>(b)) {
            return u32::from_ne_bytes(*a0) == u32::from_ne_bytes(*b0)
                && u32::from_ne_bytes(*a1) == u32::from_ne_bytes(*b1);
        }
    }
    a == b
}

/// CEL equality: numbers compare across int and double, values of different
/// kinds are never equal, lists compare element by element.
#[inline]
pub(super) fn equal(a: &V<'_>, b: &V<'_>) -> bool {
    match (a, b) {
        (V::Null, V::Null) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Int(_) | V::Double(_), V::Int(_) | V::Double(_)) => {
            compare_numbers(a, b) == Some(Ordering::Equal)
        }
        (V::Owned(_) | V::Lists(_), V::Owned(_) | V::Lists(_)) if a.len().is_some() => {
            let (Some(n), Some(m)) = (a.len(), b.len()) else {
                return false;
            };
            n == m
                && (0..n).all(|i| match (a.item(i), b.item(i)) {
                    (Some(x), Some(y)) => equal(&x, &y),
                    _ => false,
                })
        }
        _ => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => str_eq(x, y),
            _ => false,
        },
    }
}

#[inline]
pub(super) fn compare_numbers(a: &V<'_>, b: &V<'_>) -> Option<Ordering> {
    match (a, b) {
        (V::Int(x), V::Int(y)) => Some(x.cmp(y)),
        (V::Int(x), V::Double(y)) => compare_int_double(*x, *y),
        (V::Double(x), V::Int(y)) => compare_int_double(*y, *x).map(Ordering::reverse),
        (V::Double(x), V::Double(y)) => x.partial_cmp(y),
        _ => None,
    }
}

/// Compares exactly, where `i as f64` would round integers above 2^53.
pub(super) fn compare_int_double(i: i64, d: f64) -> Option<Ordering> {
    if d.is_nan() {
        return None;
    }
    // 2^63 is exactly representable; every i64 is below it.
    if d >= 9_223_372_036_854_775_808.0 {
        return Some(Ordering::Less);
    }
    if d < -9_223_372_036_854_775_808.0 {
        return Some(Ordering::Greater);
    }
    // In range, so the cast truncates exactly (and needs no libm `trunc`).
    let whole = d as i64;
    match i.cmp(&whole) {
        Ordering::Equal => 0.0f64.partial_cmp(&(d - whole as f64)),
        other => Some(other),
    }
}

fn no_overload(op: Op, a: &V<'_>, b: Option<&V<'_>>) -> EvalError {
    EvalError::NoOverload {
        op,
        left: a.kind(),
        right: b.map_or(Kinds::NONE, V::kind),
    }
}

pub(super) fn unary(op: Op1, x: V<'_>) -> Evaluated<'_> {
    match (op, x) {
        (Op1::Neg, V::Int(n)) => n
            .checked_neg()
            .map(V::Int)
            .ok_or(EvalError::NegationOverflow),
        (Op1::Neg, V::Double(d)) => Ok(V::Double(-d)),
        (Op1::Not, V::Bool(b)) => Ok(V::Bool(!b)),
        (Op1::Size, x) if x.as_str().is_some() => Ok(V::Int(char_count(x.as_str().unwrap_or("")))),
        (Op1::Size, x) if x.len().is_some() => {
            let n = x.len().unwrap_or(0);
            Ok(V::Int(i64::try_from(n).unwrap_or(i64::MAX)))
        }
        (Op1::Int, V::Int(n)) => Ok(V::Int(n)),
        (Op1::Int, V::Double(d)) => double_to_int(d).ok_or(EvalError::Conversion {
            to: Op1::Int,
            from: Kinds::DOUBLE,
        }),
        (Op1::Int, x) if x.as_str().is_some() => x
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .map(V::Int)
            .ok_or(EvalError::Conversion {
                to: Op1::Int,
                from: Kinds::STRING,
            }),
        (Op1::Double, V::Int(n)) => Ok(V::Double(n as f64)),
        (Op1::Double, V::Double(d)) => Ok(V::Double(d)),
        (Op1::Double, x) if x.as_str().is_some() => x
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .map(V::Double)
            .ok_or(EvalError::Conversion {
                to: Op1::Double,
                from: Kinds::STRING,
            }),
        (Op1::String, x) if x.as_str().is_some() => Ok(x),
        (Op1::String, V::Int(n)) => Ok(V::string(n.to_string())),
        (Op1::String, V::Double(d)) => Ok(V::string(d.to_string())),
        (Op1::String, V::Bool(b)) => Ok(V::Str(if b { &"true" } else { &"false" })),
        (op, x) => Err(no_overload(Op::Unary(op), &x, None)),
    }
}

fn char_count(s: &str) -> i64 {
    i64::try_from(s.chars().count()).unwrap_or(i64::MAX)
}

/// Truncates toward zero; None when out of the int range or not a number.
fn double_to_int(d: f64) -> Option<V<'static>> {
    if d.is_finite() && d > -9_223_372_036_854_775_809.0 && d < 9_223_372_036_854_775_808.0 {
        Some(V::Int(d as i64))
    } else {
        None
    }
}

pub(super) fn binary<'a>(op: Op2, a: &V<'a>, b: &V<'a>) -> Evaluated<'a> {
    match op {
        Op2::Add | Op2::Sub | Op2::Mul | Op2::Div | Op2::Rem => arithmetic(op, a, b),
        Op2::Eq | Op2::Ne | Op2::Lt | Op2::Le | Op2::Gt | Op2::Ge => compare(op, a, b).map(V::Bool),
        Op2::Min | Op2::Max => match compare_numbers(a, b) {
            Some(o) => {
                let take_b = if op == Op2::Min { o.is_gt() } else { o.is_lt() };
                Ok(if take_b { b.clone() } else { a.clone() })
            }
            // NaN: the result is NaN, as in IEEE 754 min/max propagation.
            None if a.kind() == Kinds::DOUBLE && Kinds::NUMBER.contains(b.kind()) => {
                Ok(V::Double(f64::NAN))
            }
            None if b.kind() == Kinds::DOUBLE && Kinds::NUMBER.contains(a.kind()) => {
                Ok(V::Double(f64::NAN))
            }
            None => Err(no_overload(Op::Binary(op), a, Some(b))),
        },
        Op2::StartsWith | Op2::EndsWith | Op2::Contains => match (a.as_str(), b.as_str()) {
            (Some(s), Some(t)) => Ok(V::Bool(match op {
                Op2::StartsWith => s.starts_with(t),
                Op2::EndsWith => s.ends_with(t),
                _ => s.contains(t),
            })),
            _ => Err(no_overload(Op::Binary(op), a, Some(b))),
        },
    }
}

/// `==`, `!=`, `<`, `<=`, `>`, `>=`.
pub(super) fn compare(op: Op2, a: &V<'_>, b: &V<'_>) -> Result<bool, EvalError> {
    let ordering = match (op, a, b) {
        (Op2::Eq, ..) => return Ok(equal(a, b)),
        (Op2::Ne, ..) => return Ok(!equal(a, b)),
        (_, V::Bool(x), V::Bool(y)) => Some(x.cmp(y)),
        (_, V::Int(_) | V::Double(_), V::Int(_) | V::Double(_)) => compare_numbers(a, b),
        _ => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => Some(x.cmp(y)),
            _ => return Err(no_overload(Op::Binary(op), a, Some(b))),
        },
    };
    // NaN is unordered: every comparison with it is false.
    Ok(ordering.is_some_and(|o| match op {
        Op2::Lt => o.is_lt(),
        Op2::Le => o.is_le(),
        Op2::Gt => o.is_gt(),
        _ => o.is_ge(),
    }))
}

fn arithmetic<'a>(op: Op2, a: &V<'a>, b: &V<'a>) -> Evaluated<'a> {
    match (a, b) {
        (V::Int(x), V::Int(y)) => int_arithmetic(op, *x, *y),
        // Mixed int and double promote to double: fields such as amounts
        // arrive as JSON numbers, integral or not.
        (V::Int(x), V::Double(y)) => Ok(V::Double(double_arithmetic(op, *x as f64, *y))),
        (V::Double(x), V::Int(y)) => Ok(V::Double(double_arithmetic(op, *x, *y as f64))),
        (V::Double(x), V::Double(y)) => Ok(V::Double(double_arithmetic(op, *x, *y))),
        _ => match (op, a.as_str(), b.as_str()) {
            (Op2::Add, Some(s), Some(t)) => {
                let mut joined = String::with_capacity(s.len() + t.len());
                joined.push_str(s);
                joined.push_str(t);
                Ok(V::string(joined))
            }
            _ => Err(no_overload(Op::Binary(op), a, Some(b))),
        },
    }
}

pub(super) fn int_arithmetic(op: Op2, x: i64, y: i64) -> Evaluated<'static> {
    let result = match op {
        Op2::Add => x.checked_add(y),
        Op2::Sub => x.checked_sub(y),
        Op2::Mul => x.checked_mul(y),
        Op2::Div if y == 0 => return Err(EvalError::DivisionByZero),
        Op2::Div => x.checked_div(y),
        Op2::Rem if y == 0 => return Err(EvalError::ModuloByZero),
        Op2::Rem => x.checked_rem(y),
        _ => None,
    };
    result.map(V::Int).ok_or(EvalError::Overflow(op))
}

pub(super) fn double_arithmetic(op: Op2, x: f64, y: f64) -> f64 {
    match op {
        Op2::Add => x + y,
        Op2::Sub => x - y,
        Op2::Mul => x * y,
        Op2::Div => x / y,
        _ => x % y,
    }
}
