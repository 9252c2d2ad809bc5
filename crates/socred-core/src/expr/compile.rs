//! From the CEL syntax tree to a [`Node`] tree: name resolution against the
//! [`Scope`], light static typing with [`Kinds`], constant folding and a few
//! rewrites that make the common rulebook shapes cheap to evaluate.
//!
//! Every problem found is recorded and compilation goes on, so one compile
//! reports all of them; a subtree with an error compiles to `None` and its
//! parents stay silent about it rather than report follow-on errors.

use std::sync::Arc;

use cel::common::ast::{
    operators, CallExpr, Expr, IdedExpr, ListExpr, LiteralValue, SelectExpr, SourceInfo,
};

use super::eval::{Accessor, Const, Kinds, Op1, Op2};
use super::ir::{Node, Switch};
use super::lower::{lower, Specialise};
use super::{Context, ExprError, Scope};
use crate::id::SubjectKind;
use crate::record::FieldType;

/// Sources are at most this long. The parser recurses once per nesting
/// level, and a sum of a few thousand terms overflowed a thread's stack;
/// rulebook expressions are a line or two.
pub(super) const SOURCE_BYTES_MAX: usize = 4096;

/// A compile reports at most this many problems, and then how many more.
pub(super) const ERRORS_MAX: usize = 32;

/// An expression checked against its scope, ready to be lowered.
pub(super) struct Checked {
    pub node: Node,
    pub kinds: Kinds,
    /// The fields read, in the order `Node::Field` indexes them.
    pub field_names: Vec<Arc<str>>,
    /// Whether `subject.profession` is read.
    pub reads_profession: bool,
}

/// Parses and checks `source`, reporting every problem found, each with its
/// byte offset in `source` where known.
pub(super) fn check(source: &str, scope: Scope<'_>) -> Result<Checked, Vec<ExprError>> {
    if source.len() > SOURCE_BYTES_MAX {
        return Err(vec![ExprError {
            message: format!(
                "the expression is {} bytes long; the limit is {SOURCE_BYTES_MAX}",
                source.len()
            ),
            offset: None,
        }]);
    }
    let parser = cel::parser::Parser::new().max_recursion_depth(PARSER_DEPTH_MAX);
    let (ast, info) = match parser.parse_with_source_info(source) {
        Ok(parsed) => parsed,
        // Past its limit the parser reports the limit among errors of its
        // own recovery (a missing context, a mismatched input) that name
        // nothing the author wrote: the limit alone is the problem.
        Err(errors) if errors.errors.iter().any(|e| is_recursion_limit(&e.msg)) => {
            return Err(vec![ExprError {
                message: format!(
                    "expression nests deeper than the parser allows ({PARSER_DEPTH_MAX} levels of parentheses, brackets, calls or branches)"
                ),
                offset: None,
            }]);
        }
        Err(errors) => {
            return Err(errors
                .errors
                .iter()
                .map(|e| ExprError {
                    message: e.msg.clone(),
                    offset: byte_offset(source, e.pos),
                })
                .collect())
        }
    };
    let mut compiler = Compiler::new(source, &info, scope);
    let compiled = compiler.expr(&ast);
    match compiled {
        Some((node, kinds)) if compiler.errors.is_empty() => Ok(Checked {
            node,
            kinds,
            field_names: compiler.field_names,
            reads_profession: compiler.reads_profession,
        }),
        _ => {
            let mut errors = compiler.errors;
            errors.sort_by_key(|e| e.offset);
            if errors.len() > ERRORS_MAX {
                let more = errors.len() - ERRORS_MAX;
                errors.truncate(ERRORS_MAX);
                errors.push(ExprError {
                    message: format!("and {more} more problems"),
                    offset: None,
                });
            }
            Err(errors)
        }
    }
}

/// The byte offset of a parser position: a 1-based line and a 1-based column
/// counted in characters. Positions past the end of a line clamp to it.
fn byte_offset(source: &str, (line, column): (isize, isize)) -> Option<usize> {
    let line_index = usize::try_from(line).ok()?.checked_sub(1)?;
    let column_index = usize::try_from(column).ok()?.checked_sub(1)?;
    let mut start = 0;
    for (i, text) in source.split_inclusive('\n').enumerate() {
        if i == line_index {
            let within = text
                .char_indices()
                .nth(column_index)
                .map_or(text.len(), |(at, _)| at);
            return Some(start + within);
        }
        start += text.len();
    }
    Some(source.len())
}

/// Expressions nest at most this deep; evaluation recurses once per level.
const DEPTH_MAX: usize = 100;

/// The parser's own limit on nested expressions (its default), counted in
/// its grammar's terms: each parenthesis, bracket, call argument or branch
/// of a conditional is a level.
const PARSER_DEPTH_MAX: u16 = 96;

/// Whether a parser error is its recursion limit (`cel` words it so and
/// gives no other sign of it).
fn is_recursion_limit(message: &str) -> bool {
    message.contains("Recursion limit of")
}

/// A compiled subtree and the kinds its value may have, or None when an
/// error was reported inside it.
type Compiled = Option<(Node, Kinds)>;

struct Compiler<'s> {
    source: &'s str,
    info: &'s SourceInfo,
    scope: Scope<'s>,
    depth: usize,
    /// The depth limit is reported once, not once per node beyond it.
    too_deep: bool,
    /// The fields read, in the order `Node::Field` indexes them.
    field_names: Vec<Arc<str>>,
    reads_profession: bool,
    errors: Vec<ExprError>,
}

impl<'s> Compiler<'s> {
    fn new(source: &'s str, info: &'s SourceInfo, scope: Scope<'s>) -> Self {
        Compiler {
            source,
            info,
            scope,
            depth: 0,
            too_deep: false,
            field_names: Vec::new(),
            reads_profession: false,
            errors: Vec::new(),
        }
    }

    fn offset(&self, id: u64) -> Option<usize> {
        self.info.offset_for(id).map(|(start, _)| start as usize)
    }

    fn error(&mut self, offset: Option<usize>, message: impl Into<String>) -> Compiled {
        self.errors.push(ExprError {
            message: message.into(),
            offset,
        });
        None
    }

    fn error_at(&mut self, id: u64, message: impl Into<String>) -> Compiled {
        self.error(self.offset(id), message)
    }

    fn expr(&mut self, e: &IdedExpr) -> Compiled {
        if self.depth >= DEPTH_MAX {
            if self.too_deep {
                return None;
            }
            self.too_deep = true;
            return self.error_at(
                e.id,
                format!("expression nests deeper than {DEPTH_MAX} levels"),
            );
        }
        self.depth += 1;
        let compiled = self.expr_inner(e);
        self.depth -= 1;
        compiled
    }

    fn expr_inner(&mut self, e: &IdedExpr) -> Compiled {
        match &e.expr {
            Expr::Literal(literal) => self.literal(e.id, literal),
            Expr::Ident(name) => self.ident(e.id, name),
            Expr::Select(select) => self.select(e.id, select),
            Expr::List(list) => {
                let (items, _) = self.list_items(e.id, list)?;
                Some((Node::List(items), Kinds::LIST))
            }
            Expr::Call(call) => self.call(e.id, call),
            Expr::Map(_) => self.error_at(e.id, "map literals are not supported"),
            Expr::Struct(s) => self.error_at(
                e.id,
                format!(
                    "message construction `{}{{…}}` is not supported",
                    s.type_name
                ),
            ),
            Expr::Comprehension(_) => self.error_at(
                e.id,
                "comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`) are not supported",
            ),
            Expr::Unspecified => self.error_at(e.id, "incomplete expression"),
        }
    }

    fn literal(&mut self, id: u64, literal: &LiteralValue) -> Compiled {
        let c = match literal {
            LiteralValue::Boolean(b) => Const::Bool(*b.inner()),
            LiteralValue::Int(n) => Const::Int(*n.inner()),
            LiteralValue::UInt(n) => match i64::try_from(*n.inner()) {
                Ok(n) => Const::Int(n),
                Err(_) => {
                    return self.error_at(id, format!("`{}u` is out of the int range", n.inner()))
                }
            },
            LiteralValue::Double(x) => Const::Double(*x.inner()),
            LiteralValue::String(s) => Const::Str(s.inner().into()),
            LiteralValue::Null => Const::Null,
            LiteralValue::Bytes(_) => return self.error_at(id, "bytes literals are not supported"),
        };
        let kinds = c.value().kind();
        Some((Node::Const(c), kinds))
    }

    fn ident(&mut self, id: u64, name: &str) -> Compiled {
        match (self.scope, name) {
            (Scope::Record { .. }, "fields") => self.error_at(
                id,
                "`fields` holds the record's fields: select one, as in `fields.amount_yuan`",
            ),
            (Scope::Record { .. }, "record") => self.error_at(
                id,
                "`record` is not a value: select `record.type` or `record.provider`",
            ),
            (_, "subject") => self.error_at(
                id,
                "`subject` is not a value: select `subject.kind` or `subject.profession`",
            ),
            (Scope::Subject, "score") => {
                Some((Node::Ctx(Accessor::Score), Kinds::INT.union(Kinds::NULL)))
            }
            (Scope::Subject, "grade") => Some((Node::Ctx(Accessor::Grade), Kinds::STRING)),
            (Scope::Subject, "lists") => Some((Node::Ctx(Accessor::Lists), Kinds::LIST)),
            (Scope::Record { .. }, _) => self.error_at(
                id,
                format!(
                    "unknown identifier `{name}`: a record rule may use `fields`, `record` and `subject`"
                ),
            ),
            (Scope::Subject, _) => self.error_at(
                id,
                format!(
                    "unknown identifier `{name}`: a subject condition may use `subject`, `score`, `grade` and `lists`"
                ),
            ),
        }
    }

    /// Where the field name of `operand.field` starts: the select's own
    /// offset is its dot, or the `has(` of a presence test.
    fn field_offset(&self, select_id: u64, select: &SelectExpr) -> Option<usize> {
        if let Some((_, operand_end)) = self.info.offset_for(select.operand.id) {
            let after = operand_end as usize + 1;
            if let Some(found) = self
                .source
                .get(after..)
                .and_then(|rest| rest.find(select.field.as_str()))
            {
                return Some(after + found);
            }
        }
        self.offset(select_id)
    }

    fn select(&mut self, id: u64, select: &SelectExpr) -> Compiled {
        let field = select.field.as_str();
        let root = match &select.operand.expr {
            Expr::Ident(root) => root.as_str(),
            _ => {
                let (_, kinds) = self.expr(&select.operand)?;
                return self.error_at(
                    id,
                    format!("cannot select `.{field}` from {kinds}: only `fields`, `record` and `subject` have members"),
                );
            }
        };
        let node = match (self.scope, root, field) {
            (Scope::Record { fields }, "fields", _) => {
                let Some((name, ty)) = fields.iter().find(|(name, _)| &**name == field) else {
                    return self.error(
                        self.field_offset(id, select),
                        format!("record type has no field `{field}`"),
                    );
                };
                if select.test {
                    return Some((Node::Has(name.clone()), Kinds::BOOL));
                }
                let index = match self.field_names.iter().position(|known| known == name) {
                    Some(i) => i,
                    None => {
                        self.field_names.push(name.clone());
                        self.field_names.len() - 1
                    }
                };
                // A schema has far fewer than 2^32 fields.
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                return Some((Node::Field(name.clone(), index), field_kinds(*ty)));
            }
            (Scope::Record { .. }, "record", "type") => Accessor::RecordType,
            (Scope::Record { .. }, "record", "provider") => Accessor::Provider,
            (Scope::Record { .. }, "record", _) => {
                return self.error(
                    self.field_offset(id, select),
                    format!("`record` has no member `{field}`; it has `type` and `provider`"),
                )
            }
            (_, "subject", "kind") => Accessor::SubjectKind,
            (_, "subject", "profession") => {
                self.reads_profession = true;
                Accessor::Profession
            }
            (_, "subject", _) => {
                return self.error(
                    self.field_offset(id, select),
                    format!("`subject` has no member `{field}`; it has `kind` and `profession`"),
                )
            }
            _ => {
                let (_, kinds) = self.ident(select.operand.id, root)?;
                return self.error_at(
                    id,
                    format!("cannot select `.{field}` from `{root}` ({kinds})"),
                );
            }
        };
        if select.test {
            return self.error_at(id, "`has()` tests a record field: `has(fields.<name>)`");
        }
        Some((Node::Ctx(node), Kinds::STRING))
    }

    fn list_items(&mut self, id: u64, list: &ListExpr) -> Option<(Vec<Node>, Kinds)> {
        if !list.optional_indices.is_empty() {
            self.error_at(id, "optional list elements are not supported");
            return None;
        }
        let mut items = Vec::with_capacity(list.elements.len());
        let mut kinds = Kinds::NONE;
        let mut failed = false;
        for element in &list.elements {
            match self.expr(element) {
                Some((node, k)) => {
                    items.push(node);
                    kinds = kinds.union(k);
                }
                None => failed = true,
            }
        }
        if failed {
            None
        } else {
            Some((items, kinds))
        }
    }

    /// Compiles all arguments (reporting every error), None if any failed.
    fn args(&mut self, args: &[&IdedExpr]) -> Option<Vec<(Node, Kinds)>> {
        let compiled: Vec<Compiled> = args.iter().map(|arg| self.expr(arg)).collect();
        compiled.into_iter().collect()
    }

    /// Where a function's name starts: a call's offset is its `(`.
    fn name_offset(&self, id: u64, name: &str) -> Option<usize> {
        let paren = self.offset(id)?;
        let start = paren.checked_sub(name.len())?;
        match self.source.get(start..paren) {
            Some(found) if found == name => Some(start),
            _ => Some(paren),
        }
    }

    fn call(&mut self, id: u64, call: &CallExpr) -> Compiled {
        let name = call.func_name.as_str();
        let target = call.target.as_deref();
        if let Some(op) = binary_operator(name) {
            return match (target, call.args.as_slice()) {
                (None, [a, b]) => self.binary(id, op, a, b),
                _ => self.error_at(id, format!("`{}` takes two operands", op.name())),
            };
        }
        match (name, target, call.args.as_slice()) {
            (operators::LOGICAL_AND | operators::LOGICAL_OR, None, [a, b]) => {
                self.logical(id, name == operators::LOGICAL_AND, a, b)
            }
            (operators::CONDITIONAL, None, [c, t, e]) => self.conditional(id, c, t, e),
            (operators::LOGICAL_NOT, None, [x]) => self.unary(id, Op1::Not, x, "`!`"),
            (operators::NEGATE, None, [x]) => self.unary(id, Op1::Neg, x, "unary `-`"),
            (operators::IN, None, [needle, haystack]) => self.membership(id, needle, haystack),
            (operators::INDEX | operators::OPT_INDEX, ..) => {
                self.args(&call.args.iter().collect::<Vec<_>>());
                self.error_at(id, "indexing with `[…]` is not supported")
            }
            (operators::OPT_SELECT, ..) => {
                self.error_at(id, "optional selection `.?` is not supported")
            }
            ("size", None, [x]) | ("size", Some(x), []) => self.unary(id, Op1::Size, x, "`size`"),
            ("int", None, [x]) => self.unary(id, Op1::Int, x, "`int`"),
            ("double", None, [x]) => self.unary(id, Op1::Double, x, "`double`"),
            ("string", None, [x]) => self.unary(id, Op1::String, x, "`string`"),
            ("min", None, [a, b]) => self.binary(id, Op2::Min, a, b),
            ("max", None, [a, b]) => self.binary(id, Op2::Max, a, b),
            ("startsWith", Some(s), [t]) => self.binary(id, Op2::StartsWith, s, t),
            ("endsWith", Some(s), [t]) => self.binary(id, Op2::EndsWith, s, t),
            ("contains", Some(s), [t]) => self.binary(id, Op2::Contains, s, t),
            _ => self.bad_call(id, call),
        }
    }

    /// Explains why a call matched no supported form, after compiling its
    /// operands for their own errors.
    fn bad_call(&mut self, id: u64, call: &CallExpr) -> Compiled {
        let name = call.func_name.as_str();
        let mut operands: Vec<&IdedExpr> = call.target.as_deref().into_iter().collect();
        operands.extend(call.args.iter());
        self.args(&operands);
        let offset = self.name_offset(id, name);
        let n = call.args.len();
        let message = match (name, call.target.is_some()) {
            ("size", _) => format!("`size` takes one argument, as in `size(x)` or `x.size()`; got {}", n + usize::from(call.target.is_some())),
            ("int" | "double" | "string", true) => format!("`{name}` is a function, not a method: write `{name}(x)`"),
            ("int" | "double" | "string", false) => format!("`{name}` takes one argument, got {n}"),
            ("min" | "max", true) => format!("`{name}` is a function, not a method: write `{name}(a, b)`"),
            ("min" | "max", false) => format!("`{name}` takes two arguments, got {n}"),
            ("startsWith" | "endsWith" | "contains", false) => {
                format!("`{name}` is a method of a string: write `s.{name}(t)`")
            }
            ("startsWith" | "endsWith" | "contains", true) => format!("`{name}` takes one argument, got {n}"),
            ("has", _) => "`has` takes one field, as in `has(fields.amount_yuan)`".to_string(),
            _ => format!(
                "unknown function `{name}`; supported: has, size, int, double, string, min, max, startsWith, endsWith, contains"
            ),
        };
        self.error(offset, message)
    }

    fn unary(&mut self, id: u64, op: Op1, x: &IdedExpr, what: &str) -> Compiled {
        let (x, kinds) = self.expr(x)?;
        let result = kinds
            .each()
            .fold(Kinds::NONE, |acc, k| acc.union(op.rule(k)));
        if result.is_empty() {
            let message = match op {
                Op1::Not => format!("`!` needs a bool, got {kinds}"),
                Op1::Neg => format!("unary `-` needs a number, got {kinds}"),
                Op1::Size => format!("`size` needs a string or a list, got {kinds}"),
                Op1::Int | Op1::Double | Op1::String => format!("{what} cannot convert {kinds}"),
            };
            let offset = match op {
                Op1::Not | Op1::Neg => self.offset(id),
                Op1::Size | Op1::Int | Op1::Double | Op1::String => self.name_offset(id, op.name()),
            };
            return self.error(offset, message);
        }
        Some((fold(Node::Unary(op, Box::new(x))), result))
    }

    fn binary(&mut self, id: u64, op: Op2, a: &IdedExpr, b: &IdedExpr) -> Compiled {
        let mut compiled = self.args(&[a, b])?.into_iter();
        let (Some((mut a, ka)), Some((mut b, kb))) = (compiled.next(), compiled.next()) else {
            return None;
        };
        let mut result = Kinds::NONE;
        for x in ka.each() {
            for y in kb.each() {
                result = result.union(op.rule(x, y));
            }
        }
        if result.is_empty() {
            let message = match op {
                Op2::Add | Op2::Sub | Op2::Mul | Op2::Div | Op2::Rem => {
                    format!("`{}` is not defined for {ka} and {kb}", op.name())
                }
                Op2::Eq | Op2::Ne if ka == Kinds::NULL || kb == Kinds::NULL => format!(
                    "`{}` cannot compare {ka} with {kb}: a field is never null, test a missing one with `has(fields.<name>)`",
                    op.name()
                ),
                Op2::Eq | Op2::Ne | Op2::Lt | Op2::Le | Op2::Gt | Op2::Ge => {
                    format!("`{}` cannot compare {ka} with {kb}", op.name())
                }
                Op2::Min | Op2::Max => format!("`{}` needs numbers, got {ka} and {kb}", op.name()),
                Op2::StartsWith | Op2::EndsWith | Op2::Contains => {
                    format!("`{}` needs strings, got {ka} and {kb}", op.name())
                }
            };
            let offset = match op {
                Op2::Min | Op2::Max => self.name_offset(id, op.name()),
                _ => self.offset(id),
            };
            return self.error(offset, message);
        }
        // Equality is symmetric: keep a constant on the right, where the
        // switch rewrite looks for it.
        if matches!(op, Op2::Eq | Op2::Ne) && a.as_const().is_some() && b.as_const().is_none() {
            std::mem::swap(&mut a, &mut b);
        }
        Some((fold(Node::Binary(op, Box::new([a, b]))), result))
    }

    fn logical(&mut self, id: u64, and: bool, a: &IdedExpr, b: &IdedExpr) -> Compiled {
        let compiled = self.args(&[a, b])?;
        let mut nodes = Vec::with_capacity(2);
        let mut failed = false;
        for (node, kinds) in compiled {
            if !kinds.intersects(Kinds::BOOL) {
                let op = if and { "&&" } else { "||" };
                self.error_at(id, format!("`{op}` needs bool operands, got {kinds}"));
                failed = true;
            }
            nodes.push(node);
        }
        let [a, b]: [Node; 2] = nodes.try_into().ok()?;
        if failed {
            return None;
        }
        let node = if and {
            Node::And(Box::new([a, b]))
        } else {
            Node::Or(Box::new([a, b]))
        };
        Some((fold(node), Kinds::BOOL))
    }

    fn conditional(&mut self, id: u64, c: &IdedExpr, t: &IdedExpr, e: &IdedExpr) -> Compiled {
        let compiled = self.args(&[c, t, e])?;
        let [(c, kc), (t, kt), (e, ke)]: [(Node, Kinds); 3] = compiled.try_into().ok()?;
        if !kc.intersects(Kinds::BOOL) {
            return self.error_at(
                id,
                format!("the condition of `? :` must be a bool, got {kc}"),
            );
        }
        Some((conditional(c, t, e), kt.union(ke)))
    }

    fn membership(&mut self, id: u64, needle: &IdedExpr, haystack: &IdedExpr) -> Compiled {
        let compiled_needle = self.expr(needle);
        let (items, item_kinds) = match (&haystack.expr, self.scope) {
            (Expr::List(list), _) => self.list_items(haystack.id, list)?,
            (Expr::Ident(name), Scope::Subject) if name == "lists" => {
                let (needle, kinds) = compiled_needle?;
                if !kinds.intersects(Kinds::STRING) {
                    return self.error_at(
                        id,
                        format!("`in lists` needs a list id (a string), got {kinds}"),
                    );
                }
                return Some((Node::InLists(Box::new(needle)), Kinds::BOOL));
            }
            _ => {
                self.expr(haystack)?;
                return self.error_at(
                    haystack.id,
                    "the right side of `in` must be a list literal `[…]` or `lists`",
                );
            }
        };
        let (needle, kinds) = compiled_needle?;
        if !items.is_empty() && !kinds.comparable().intersects(item_kinds) {
            return self.error_at(
                id,
                format!("`in` looks for {kinds} in a list of {item_kinds}: it can never be found"),
            );
        }
        Some((fold(Node::In(Box::new(needle), items)), Kinds::BOOL))
    }
}

fn field_kinds(ty: FieldType) -> Kinds {
    match ty {
        FieldType::Bool => Kinds::BOOL,
        FieldType::Int => Kinds::INT,
        // A JSON number: integral values stay exact ints.
        FieldType::Number => Kinds::NUMBER,
        FieldType::Text | FieldType::Date | FieldType::Subject => Kinds::STRING,
    }
}

fn binary_operator(name: &str) -> Option<Op2> {
    Some(match name {
        operators::ADD => Op2::Add,
        operators::SUBSTRACT => Op2::Sub,
        operators::MULTIPLY => Op2::Mul,
        operators::DIVIDE => Op2::Div,
        operators::MODULO => Op2::Rem,
        operators::EQUALS => Op2::Eq,
        operators::NOT_EQUALS => Op2::Ne,
        operators::LESS => Op2::Lt,
        operators::LESS_EQUALS => Op2::Le,
        operators::GREATER => Op2::Gt,
        operators::GREATER_EQUALS => Op2::Ge,
        _ => return None,
    })
}

/// A context for folding constants: constant subtrees never read it.
const EMPTY_CONTEXT: Context<'static> = Context {
    fields: None,
    record_type: "",
    provider: "",
    subject_kind: SubjectKind::Person,
    profession: "",
    score: None,
    grade: "",
    lists: &[],
};

/// Replaces a node whose operands are all constants by its value, when it
/// evaluates without error (an error stays for run time to report).
fn fold(node: Node) -> Node {
    let is_const = |x: &Node| x.as_const().is_some();
    let constant = match &node {
        Node::Unary(_, x) => is_const(x),
        Node::Binary(_, xs) | Node::And(xs) | Node::Or(xs) => xs.iter().all(is_const),
        Node::Cond(xs) => xs.iter().all(is_const),
        Node::In(needle, items) => is_const(needle) && items.iter().all(is_const),
        _ => false,
    };
    if !constant {
        return node;
    }
    let tree = lower(&node, Specialise::Yes);
    let folded = tree.value(&EMPTY_CONTEXT).ok().and_then(|v| v.to_const());
    match folded {
        Some(c) => Node::Const(c),
        None => node,
    }
}

/// Splits `path == "label"`, the test of a switch arm, or gives the node back.
fn into_switch_test(c: Node) -> Result<(Node, Arc<str>), Node> {
    match c {
        Node::Binary(Op2::Eq, xs) => match *xs {
            [path, Node::Const(Const::Str(label))] if path.is_path() => Ok((path, label)),
            xs => Err(Node::Binary(Op2::Eq, Box::new(xs))),
        },
        c => Err(c),
    }
}

fn switch_test_node(path: Node, label: Arc<str>) -> Node {
    Node::Binary(Op2::Eq, Box::new([path, Node::Const(Const::Str(label))]))
}

/// Builds `c ? t : e`, folding a constant condition and turning chains of
/// equality tests on one path into a [`Switch`].
fn conditional(c: Node, t: Node, e: Node) -> Node {
    if let Node::Const(Const::Bool(b)) = c {
        return if b { t } else { e };
    }
    let (path, label) = match into_switch_test(c) {
        Ok(test) => test,
        Err(c) => return Node::Cond(Box::new([c, t, e])),
    };
    match e {
        Node::Switch(mut switch) if switch.scrutinee.same_path(&path) => {
            switch.arms.insert(0, (label, t));
            Node::Switch(switch)
        }
        Node::Cond(inner) => {
            let [inner_c, inner_t, inner_e] = *inner;
            let inner = match into_switch_test(inner_c) {
                Ok((inner_path, inner_label)) if inner_path.same_path(&path) => {
                    return Node::Switch(Box::new(Switch {
                        scrutinee: path,
                        arms: vec![(label, t), (inner_label, inner_t)],
                        default: inner_e,
                    }));
                }
                Ok((inner_path, inner_label)) => Node::Cond(Box::new([
                    switch_test_node(inner_path, inner_label),
                    inner_t,
                    inner_e,
                ])),
                Err(inner_c) => Node::Cond(Box::new([inner_c, inner_t, inner_e])),
            };
            Node::Cond(Box::new([switch_test_node(path, label), t, inner]))
        }
        e => Node::Cond(Box::new([switch_test_node(path, label), t, e])),
    }
}
