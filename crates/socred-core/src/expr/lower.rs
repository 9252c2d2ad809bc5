//! The executable form of an expression: a tree of boxed [`Eval`] objects,
//! one small type per kind of node, each calling its children through their
//! own vtables.
//!
//! Why not walk the [`Node`] enum: an interpreter's single `match` is one
//! indirect branch that every node goes through, which the processor cannot
//! predict, and its arms share one large stack frame. Measured on the
//! rulebook's conditions (see `examples/expr_bench.rs`), walking the enum
//! took about three times as long as this tree, where each parent calls its
//! children from its own code. Operands that are constants or context reads
//! are held inline ([`Operand`]) and comparisons against a constant have
//! their own types, so the common conditions make one or two virtual calls.
//! Trait objects rather than closures, because a method borrowing `self`
//! can hand out the tree's own strings without copying them.

use std::cmp::Ordering;
use std::sync::Arc;

use super::eval::{
    binary, compare, equal, field, str_eq, unary, Accessor, Const, Eval as Result_, EvalError, Op1, Op2,
    Role, V,
};
use super::ir::{Node, Switch};
use super::Context;
use crate::record::Value;

/// A node of the executable tree.
pub(super) trait Eval: Send + Sync {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a>;

    /// The value as a bool; `role` says what it is in the error when it is
    /// not one.
    fn test<'a>(&'a self, cx: &'a Context<'a>, role: Role) -> Result<bool, EvalError> {
        as_bool(self.value(cx), role)
    }
}

pub(super) type Tree = Box<dyn Eval>;

#[inline]
fn as_bool(value: Result_<'_>, role: Role) -> Result<bool, EvalError> {
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
        Node::And(xs) => Box::new(AndTree(lower(&xs[0], mode), lower(&xs[1], mode))),
        Node::Or(xs) => Box::new(OrTree(lower(&xs[0], mode), lower(&xs[1], mode))),
        Node::Cond(xs) => Box::new(CondTree(
            lower(&xs[0], mode),
            lower(&xs[1], mode),
            lower(&xs[2], mode),
        )),
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
                return Box::new(IntCmpConst {
                    op,
                    a: operand(a, mode),
                    literal: *n,
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
            .map(|(label, node)| (label.clone(), lower(node, mode)))
            .collect(),
        default: lower(&switch.default, mode),
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

impl Operand {
    #[inline(always)]
    fn get<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
        match self {
            Operand::Const(c) => Ok(c.value()),
            Operand::Field(name, index) => field(cx, name, *index),
            Operand::Ctx(accessor) => Ok(accessor.get(cx)),
            Operand::Tree(tree) => tree.value(cx),
        }
    }
}

struct ConstLeaf(Const);

impl Eval for ConstLeaf {
    fn value<'a>(&'a self, _: &'a Context<'a>) -> Result_<'a> {
        Ok(self.0.value())
    }
}

struct FieldLeaf(Arc<str>, u32);

impl Eval for FieldLeaf {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
        field(cx, &self.0, self.1)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, role: Role) -> Result<bool, EvalError> {
        match cx.fields.and_then(|fields| fields.get(&*self.0)) {
            Some(Value::Bool(b)) => Ok(*b),
            _ => as_bool(self.value(cx), role),
        }
    }
}

struct HasLeaf(Arc<str>);

impl Eval for HasLeaf {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
        self.test(cx, Role::Result).map(V::Bool)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, _: Role) -> Result<bool, EvalError> {
        Ok(cx.fields.is_some_and(|fields| fields.contains_key(&*self.0)))
    }
}

struct CtxLeaf(Accessor);

impl Eval for CtxLeaf {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
        Ok(self.0.get(cx))
    }
}

struct ListTree(Vec<Tree>);

impl Eval for ListTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
        let mut values = Vec::with_capacity(self.0.len());
        for item in &self.0 {
            values.push(item.value(cx)?);
        }
        Ok(V::List(Box::new(values)))
    }
}

struct UnaryTree {
    op: Op1,
    x: Operand,
}

impl Eval for UnaryTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
        unary(self.op, self.x.get(cx)?)
    }
}

struct BinaryTree {
    op: Op2,
    a: Operand,
    b: Operand,
}

impl Eval for BinaryTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
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
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
        self.test(cx, Role::Result).map(V::Bool)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, _: Role) -> Result<bool, EvalError> {
        let equal = match self.a.get(cx)? {
            V::Str(s) => str_eq(s, &self.literal),
            V::Shared(s) => str_eq(s, &self.literal),
            V::Owned(s) => str_eq(&s, &self.literal),
            // Values of other kinds never equal a string.
            _ => false,
        };
        Ok(equal != self.negate)
    }
}

/// `a <op> integer literal`, with a fast path for an int `a`.
struct IntCmpConst {
    op: Op2,
    a: Operand,
    literal: i64,
}

impl Eval for IntCmpConst {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
        self.test(cx, Role::Result).map(V::Bool)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, _: Role) -> Result<bool, EvalError> {
        match self.a.get(cx)? {
            V::Int(n) => Ok(holds(self.op, n.cmp(&self.literal))),
            other => compare(self.op, &other, &V::Int(self.literal)),
        }
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
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
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
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
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
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
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
    arms: Vec<(Arc<str>, Tree)>,
    default: Tree,
}

impl SwitchTree {
    #[inline]
    fn arm<'a>(&'a self, cx: &'a Context<'a>) -> Result<&'a Tree, EvalError> {
        let value = self.scrutinee.get(cx)?;
        let s: &str = match &value {
            V::Str(s) => s,
            V::Shared(s) => s,
            V::Owned(s) => s,
            _ => return Ok(&self.default),
        };
        for (label, tree) in &self.arms {
            if str_eq(label, s) {
                return Ok(tree);
            }
        }
        Ok(&self.default)
    }
}

impl Eval for SwitchTree {
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
        self.arm(cx)?.value(cx)
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
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
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
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
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
    fn value<'a>(&'a self, cx: &'a Context<'a>) -> Result_<'a> {
        self.test(cx, Role::Result).map(V::Bool)
    }

    fn test<'a>(&'a self, cx: &'a Context<'a>, _: Role) -> Result<bool, EvalError> {
        let needle = self.0.get(cx)?;
        let s: &str = match &needle {
            V::Str(s) => s,
            V::Shared(s) => s,
            V::Owned(s) => s,
            // Only strings name lists.
            _ => return Ok(false),
        };
        Ok(cx.lists.iter().any(|id| str_eq(id, s)))
    }
}
