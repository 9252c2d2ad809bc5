//! The executable form of an expression: a tree of boxed [`Eval`] objects,
//! one small type per kind of node, each calling its children through their
//! own vtables.
//!
//! Why not walk the [`Node`] enum: an interpreter's single `match` is one
//! indirect branch that every node goes through, which the processor cannot
//! predict, and its arms share one large stack frame. Measured on the
//! rulebook's conditions (`examples/expr_bench.rs`), walking the enum took
//! about three times as long as this tree, in which each parent calls its
//! children from its own code, as a tree of closures would (the example
//! times one of those too: this tree is as fast on plain conditions and
//! faster where it specialises). Operands that are constants or context
//! reads are held inline ([`Operand`]), and comparisons against a literal
//! have their own types that read a field without building a value, so a
//! common condition makes one virtual call per comparison. Trait objects
//! rather than closures because a method borrowing `self` can hand out the
//! tree's own strings without copying them.

use std::cmp::Ordering;
use std::sync::Arc;

use super::eval::{
    binary, compare, compare_int_double, double_arithmetic, equal, field, int_arithmetic,
    is_arithmetic, lookup, str_eq, unary, Accessor, Const, EvalError, Evaluated, Kinds, Op, Op1,
    Op2, Role, V,
};
use super::ir::{Node, Switch};
use super::Context;
use crate::record::Value;

/// A node of the executable tree.
pub(super) trait Eval: Send + Sync {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a>;

    /// The value as a bool; `role` says what it is in the error when it is
    /// not one.
    fn test<'a>(&'a self, cx: &'a Context<'a>, role: Role) -> Result<bool, EvalError> {
        as_bool(self.value(cx), role)
    }
}

pub(super) type Tree = Box<dyn Eval>;

#[inline]
fn as_bool(value: Evaluated<'_>, role: Role) -> Result<bool, EvalError> {
    match value {
        Ok(V::Bool(b)) => Ok(b),
        Ok(other) => Err(EvalError::NotBool {
            role,
            got: other.kind(),
        }),
        Err(e) => Err(e),
    }
}

/// Whether to use the specialised node types. The generic ones alone give
/// the same results, which a property test checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Specialise {
    Yes,
    #[cfg_attr(not(test), allow(dead_code))]
    No,
}

pub(super) fn lower(node: &Node, mode: Specialise) -> Tree {
    match node {
        Node::Const(c) => Box::new(ConstLeaf(c.clone())),
        Node::Field(name, index) => Box::new(FieldLeaf(name.clone(), *index)),
        Node::Has(name) => Box::new(HasLeaf(name.clone())),
        Node::Ctx(accessor) => Box::new(CtxLeaf(*accessor)),
        Node::List(items) => Box::new(ListTree(items.iter().map(|x| lower(x, mode)).collect())),
        Node::Unary(op, x) => Box::new(UnaryTree {
            op: *op,
            x: operand(x, mode),
        }),
        Node::Binary(op, xs) => lower_binary(*op, xs, mode),
        Node::And(xs) => {
            let [a, b] = &**xs;
            Box::new(AndTree(lower(a, mode), lower(b, mode)))
        }
        Node::Or(xs) => {
            let [a, b] = &**xs;
            Box::new(OrTree(lower(a, mode), lower(b, mode)))
        }
        Node::Cond(xs) => {
            let [c, t, e] = &**xs;
            Box::new(CondTree(lower(c, mode), lower(t, mode), lower(e, mode)))
        }
        Node::In(needle, items) => {
            let consts: Option<Vec<Const>> = items.iter().map(|x| x.as_const().cloned()).collect();
            match consts {
                Some(consts) => Box::new(InConstsTree {
                    needle: operand(needle, mode),
                    items: consts,
                }),
                None => Box::new(InTree {
                    needle: operand(needle, mode),
                    items: items.iter().map(|x| lower(x, mode)).collect(),
                }),
            }
        }
        Node::InLists(needle) => Box::new(InListsTree(operand(needle, mode))),
        Node::Switch(switch) => lower_switch(switch, mode),
    }
}

fn lower_binary(op: Op2, xs: &[Node; 2], mode: Specialise) -> Tree {
    let [a, b] = xs;
    if mode == Specialise::Yes {
        match (op, b.as_const()) {
            (Op2::Eq | Op2::Ne, Some(Const::Str(literal))) => {
                return Box::new(StrEqConst {
                    negate: op == Op2::Ne,
                    a: operand(a, mode),
                    literal: literal.clone(),
                })
            }
            (_, Some(Const::Int(n))) if op.is_comparison() => {
                return Box::new(NumCmpConst {
                    op,
                    a: operand(a, mode),
                    literal: Num::Int(*n),
                })
            }
            (_, Some(Const::Double(x))) if op.is_comparison() => {
                return Box::new(NumCmpConst {
                    op,
                    a: operand(a, mode),
                    literal: Num::Double(*x),
                })
            }
            _ => {}
        }
    }
    Box::new(BinaryTree {
        op,
        a: operand(a, mode),
        b: operand(b, mode),
    })
}

fn lower_switch(switch: &Switch, mode: Specialise) -> Tree {
    Box::new(SwitchTree {
        scrutinee: operand(&switch.scrutinee, mode),
        arms: switch
            .arms
            .iter()
            .map(|(label, node)| (label.clone(), operand(node, mode)))
            .collect(),
        default: operand(&switch.default, mode),
    })
}

/// An operand held in its parent: constants and context reads are read in
/// place, anything else is a subtree.
enum Operand {
    Const(Const),
    Field(Arc<str>, u32),
    Ctx(Accessor),
    Tree(Tree),
}

fn operand(node: &Node, mode: Specialise) -> Operand {
    match (node, mode) {
        (Node::Const(c), Specialise::Yes) => Operand::Const(c.clone()),
        (Node::Field(name, index), Specialise::Yes) => Operand::Field(name.clone(), *index),
        (Node::Ctx(accessor), Specialise::Yes) => Operand::Ctx(*accessor),
        _ => Operand::Tree(lower(node, mode)),
    }
}

/// A number, or the kind of a value that is not one: what a comparison with
/// a numeric literal needs, without building (and dropping) a value.
#[derive(Clone, Copy, Debug)]
enum Num {
    Int(i64),
    Double(f64),
    Other(Kinds),
}

impl Num {
    fn of(value: &V<'_>) -> Num {
        match value {
            V::Int(n) => Num::Int(*n),
            V::Double(x) => Num::Double(*x),
            other => Num::Other(other.kind()),
        }
    }

    fn kind(self) -> Kinds {
        match self {
            Num::Int(_) => Kinds::INT,
            Num::Double(_) => Kinds::DOUBLE,
            Num::Other(kind) => kind,
        }
    }
}

impl Operand {
    #[inline(always)]
    fn get<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        match self {
            Operand::Const(c) => Ok(c.value()),
            Operand::Field(name, index) => field(cx, name, *index),
            Operand::Ctx(accessor) => Ok(accessor.get(cx)),
            Operand::Tree(tree) => tree.value(cx),
        }
    }

    #[inline(always)]
    fn test<'a>(&'a self, cx: &'a Context<'a>, role: Role) -> Result<bool, EvalError> {
        match self {
            Operand::Tree(tree) => tree.test(cx, role),
            _ => as_bool(self.get(cx), role),
        }
    }

    /// The operand as a number, reading fields in place.
    #[inline(always)]
    fn number(&self, cx: &Context<'_>) -> Result<Num, EvalError> {
        match self {
            Operand::Field(name, index) => {
                match cx.fields.and_then(|fields| lookup(fields, name)) {
                    Some(Value::Int(n)) => Ok(Num::Int(*n)),
                    Some(Value::Number(x)) => Ok(Num::Double(*x)),
                    Some(Value::Bool(_)) => Ok(Num::Other(Kinds::BOOL)),
                    Some(Value::Text(_)) => Ok(Num::Other(Kinds::STRING)),
                    None => Err(EvalError::MissingField(*index)),
                }
            }
            Operand::Const(Const::Int(n)) => Ok(Num::Int(*n)),
            Operand::Const(Const::Double(x)) => Ok(Num::Double(*x)),
            Operand::Const(c) => Ok(Num::Other(c.value().kind())),
            Operand::Ctx(Accessor::Score) => Ok(cx.score.map_or(Num::Other(Kinds::NULL), Num::Int)),
            Operand::Ctx(Accessor::Lists) => Ok(Num::Other(Kinds::LIST)),
            Operand::Ctx(_) => Ok(Num::Other(Kinds::STRING)),
            Operand::Tree(tree) => Ok(Num::of(&tree.value(cx)?)),
        }
    }

    /// Applies `f` to the operand's string, or to None when it is not one,
    /// reading fields in place.
    #[inline(always)]
    fn with_str<T>(
        &self,
        cx: &Context<'_>,
        f: impl FnOnce(Option<&str>) -> T,
    ) -> Result<T, EvalError> {
        match self {
            Operand::Field(name, index) => {
                match cx.fields.and_then(|fields| lookup(fields, name)) {
                    Some(Value::Text(s)) => Ok(f(Some(s))),
                    Some(_) => Ok(f(None)),
                    None => Err(EvalError::MissingField(*index)),
                }
            }
            Operand::Const(c) => Ok(f(c.as_str())),
            Operand::Ctx(accessor) => Ok(f(accessor.str(cx))),
            Operand::Tree(tree) => Ok(f(tree.value(cx)?.as_str())),
        }
    }
}

struct ConstLeaf(Const);

impl Eval for ConstLeaf {
    fn value<'a>(&'a self, _: &'a Context<'a>) -> Evaluated<'a> {
        Ok(self.0.value())
    }
}

struct FieldLeaf(Arc<str>, u32);

impl Eval for FieldLeaf {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        field(cx, &self.0, self.1)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, role: Role) -> Result<bool, EvalError> {
        match cx.fields.and_then(|fields| lookup(fields, &self.0)) {
            Some(Value::Bool(b)) => Ok(*b),
            _ => as_bool(self.value(cx), role),
        }
    }
}

struct HasLeaf(Arc<str>);

impl Eval for HasLeaf {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        self.test(cx, Role::Result).map(V::Bool)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, _: Role) -> Result<bool, EvalError> {
        Ok(cx
            .fields
            .is_some_and(|fields| lookup(fields, &self.0).is_some()))
    }
}

struct CtxLeaf(Accessor);

impl Eval for CtxLeaf {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        Ok(self.0.get(cx))
    }
}

struct ListTree(Vec<Tree>);

impl Eval for ListTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        let mut values = Vec::with_capacity(self.0.len());
        for item in &self.0 {
            values.push(item.value(cx)?);
        }
        Ok(V::list(values))
    }
}

struct UnaryTree {
    op: Op1,
    x: Operand,
}

impl Eval for UnaryTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        unary(self.op, self.x.get(cx)?)
    }
}

struct BinaryTree {
    op: Op2,
    a: Operand,
    b: Operand,
}

impl Eval for BinaryTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        // Arithmetic on two numbers (`fields.hours / 10.0`) reads them in
        // place; anything else (errors included) takes the general path.
        if is_arithmetic(self.op) {
            if let (Ok(a), Ok(b)) = (self.a.number(cx), self.b.number(cx)) {
                match (a, b) {
                    (Num::Int(x), Num::Int(y)) => return int_arithmetic(self.op, x, y),
                    (Num::Int(x), Num::Double(y)) => {
                        return Ok(V::Double(double_arithmetic(self.op, x as f64, y)))
                    }
                    (Num::Double(x), Num::Int(y)) => {
                        return Ok(V::Double(double_arithmetic(self.op, x, y as f64)))
                    }
                    (Num::Double(x), Num::Double(y)) => {
                        return Ok(V::Double(double_arithmetic(self.op, x, y)))
                    }
                    _ => {}
                }
            }
        }
        // Both operands are evaluated before either error is looked at, as
        // the operands are matched in place: moving a value out of its
        // `Result` costs more than the operation.
        match (self.a.get(cx), self.b.get(cx)) {
            (Ok(a), Ok(b)) => binary(self.op, &a, &b),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, role: Role) -> Result<bool, EvalError> {
        if !self.op.is_comparison() {
            return as_bool(self.value(cx), role);
        }
        match (self.a.get(cx), self.b.get(cx)) {
            (Ok(a), Ok(b)) => compare(self.op, &a, &b),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }
}

/// `a == "literal"` or `a != "literal"`.
struct StrEqConst {
    negate: bool,
    a: Operand,
    literal: Arc<str>,
}

impl Eval for StrEqConst {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        self.test(cx, Role::Result).map(V::Bool)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, _: Role) -> Result<bool, EvalError> {
        let literal = &*self.literal;
        let negate = self.negate;
        // Values of other kinds never equal a string.
        self.a
            .with_str(cx, |s| s.is_some_and(|s| str_eq(s, literal)) != negate)
    }
}

/// `a <op> numeric literal`: the comparisons of the rulebook's conditions.
/// Must agree with [`compare`].
struct NumCmpConst {
    op: Op2,
    a: Operand,
    literal: Num,
}

impl Eval for NumCmpConst {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        self.test(cx, Role::Result).map(V::Bool)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, _: Role) -> Result<bool, EvalError> {
        let ordering = match (self.a.number(cx)?, self.literal) {
            (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
            (Num::Other(kind), _) => {
                return match self.op {
                    // Values of other kinds never equal a number.
                    Op2::Eq => Ok(false),
                    Op2::Ne => Ok(true),
                    _ => Err(EvalError::NoOverload {
                        op: Op::Binary(self.op),
                        left: kind,
                        right: self.literal.kind(),
                    }),
                };
            }
            (Num::Int(i), Num::Double(d)) => compare_int_double(i, d),
            (Num::Double(d), Num::Int(i)) => compare_int_double(i, d).map(Ordering::reverse),
            (Num::Double(x), Num::Double(y)) => x.partial_cmp(&y),
            // The literal is a number.
            (_, Num::Other(_)) => None,
        };
        // NaN is unordered: only `!=` holds.
        Ok(match ordering {
            Some(ordering) => holds(self.op, ordering),
            None => self.op == Op2::Ne,
        })
    }
}

fn holds(op: Op2, ordering: Ordering) -> bool {
    match op {
        Op2::Eq => ordering.is_eq(),
        Op2::Ne => ordering.is_ne(),
        Op2::Lt => ordering.is_lt(),
        Op2::Le => ordering.is_le(),
        Op2::Gt => ordering.is_gt(),
        _ => ordering.is_ge(),
    }
}

struct AndTree(Tree, Tree);

impl Eval for AndTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        self.test(cx, Role::Result).map(V::Bool)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, _: Role) -> Result<bool, EvalError> {
        // CEL's commutative short-circuit: a false operand wins over an
        // error in the other.
        let a = self.0.test(cx, Role::AndOperand);
        if let Ok(false) = a {
            return Ok(false);
        }
        match (a, self.1.test(cx, Role::AndOperand)) {
            (_, Ok(false)) => Ok(false),
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(_), Ok(_)) => Ok(true),
        }
    }
}

struct OrTree(Tree, Tree);

impl Eval for OrTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        self.test(cx, Role::Result).map(V::Bool)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, _: Role) -> Result<bool, EvalError> {
        let a = self.0.test(cx, Role::OrOperand);
        if let Ok(true) = a {
            return Ok(true);
        }
        match (a, self.1.test(cx, Role::OrOperand)) {
            (_, Ok(true)) => Ok(true),
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(_), Ok(_)) => Ok(false),
        }
    }
}

struct CondTree(Tree, Tree, Tree);

impl Eval for CondTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        if self.0.test(cx, Role::Condition)? {
            self.1.value(cx)
        } else {
            self.2.value(cx)
        }
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, role: Role) -> Result<bool, EvalError> {
        if self.0.test(cx, Role::Condition)? {
            self.1.test(cx, role)
        } else {
            self.2.test(cx, role)
        }
    }
}

struct SwitchTree {
    scrutinee: Operand,
    arms: Vec<(Arc<str>, Operand)>,
    default: Operand,
}

impl SwitchTree {
    #[inline]
    fn arm<'a>(&'a self, cx: &'a Context<'a>) -> Result<&'a Operand, EvalError> {
        self.scrutinee.with_str(cx, |s| {
            let Some(s) = s else {
                return &self.default;
            };
            for (label, arm) in &self.arms {
                if str_eq(label, s) {
                    return arm;
                }
            }
            &self.default
        })
    }
}

impl Eval for SwitchTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        self.arm(cx)?.get(cx)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, role: Role) -> Result<bool, EvalError> {
        self.arm(cx)?.test(cx, role)
    }
}

struct InConstsTree {
    needle: Operand,
    items: Vec<Const>,
}

impl Eval for InConstsTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        self.test(cx, Role::Result).map(V::Bool)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, _: Role) -> Result<bool, EvalError> {
        let needle = self.needle.get(cx)?;
        Ok(self.items.iter().any(|item| equal(&needle, &item.value())))
    }
}

struct InTree {
    needle: Operand,
    items: Vec<Tree>,
}

impl Eval for InTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        self.test(cx, Role::Result).map(V::Bool)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, _: Role) -> Result<bool, EvalError> {
        let needle = self.needle.get(cx)?;
        // The whole list is evaluated, as CEL builds it before the test: an
        // error in any element is the result.
        let mut found = false;
        for item in &self.items {
            found |= equal(&needle, &item.value(cx)?);
        }
        Ok(found)
    }
}

struct InListsTree(Operand);

impl Eval for InListsTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Evaluated<'a> {
        self.test(cx, Role::Result).map(V::Bool)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, _: Role) -> Result<bool, EvalError> {
        let needle = self.0.get(cx)?;
        // Only strings name lists.
        let Some(s) = needle.as_str() else {
            return Ok(false);
        };
        Ok(cx.lists.iter().any(|id| str_eq(id, s)))
    }
}
