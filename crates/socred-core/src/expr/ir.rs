//! The checked form of an expression: names resolved, kinds checked,
//! constants folded. The compiler builds it and tests inspect it; evaluation
//! runs on the tree that `lower.rs` makes of it.

use std::sync::Arc;

use super::eval::{Accessor, Const, Op1, Op2};

#[derive(Debug)]
pub(super) enum Node {
    Const(Const),
    /// `fields.<name>`, with the name shared with the record type's schema
    /// and its index in the program's field names (for errors).
    Field(Arc<str>, u32),
    /// `has(fields.<name>)`.
    Has(Arc<str>),
    Ctx(Accessor),
    List(Vec<Node>),
    Unary(Op1, Box<Node>),
    Binary(Op2, Box<[Node; 2]>),
    And(Box<[Node; 2]>),
    Or(Box<[Node; 2]>),
    Cond(Box<[Node; 3]>),
    /// `x in [a, b, …]`.
    In(Box<Node>, Vec<Node>),
    /// `x in lists`.
    InLists(Box<Node>),
    /// A chain `x == "a" ? r1 : x == "b" ? r2 : … : default` on one path `x`,
    /// which reads `x` once instead of once per arm.
    Switch(Box<Switch>),
}

#[derive(Debug)]
pub(super) struct Switch {
    pub scrutinee: Node,
    pub arms: Vec<(Arc<str>, Node)>,
    pub default: Node,
}

impl Node {
    pub fn as_const(&self) -> Option<&Const> {
        match self {
            Node::Const(c) => Some(c),
            _ => None,
        }
    }

    /// Whether this node reads a value straight from the context
    /// (`fields.x`, `record.type`, …).
    pub fn is_path(&self) -> bool {
        matches!(self, Node::Field(..) | Node::Ctx(_))
    }

    /// Whether this node reads anything from the context: without, it is
    /// a constant, whatever its shape.
    pub fn reads_context(&self) -> bool {
        match self {
            Node::Const(_) => false,
            Node::Field(..) | Node::Has(_) | Node::Ctx(_) | Node::InLists(_) => true,
            Node::List(items) => items.iter().any(Node::reads_context),
            Node::Unary(_, operand) => operand.reads_context(),
            Node::Binary(_, operands) | Node::And(operands) | Node::Or(operands) => {
                operands.iter().any(Node::reads_context)
            }
            Node::Cond(operands) => operands.iter().any(Node::reads_context),
            Node::In(item, list) => item.reads_context() || list.iter().any(Node::reads_context),
            Node::Switch(switch) => {
                switch.scrutinee.reads_context()
                    || switch.default.reads_context()
                    || switch.arms.iter().any(|(_, arm)| arm.reads_context())
            }
        }
    }

    /// Whether two nodes read the same path of the context.
    pub fn same_path(&self, other: &Node) -> bool {
        match (self, other) {
            (Node::Field(a, _), Node::Field(b, _)) => a == b,
            (Node::Ctx(a), Node::Ctx(b)) => a == b,
            _ => false,
        }
    }
}
