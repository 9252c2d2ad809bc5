//! CEL conditions and point expressions, compiled once to closures.
//!
//! STUB: the interface is fixed; the compiler is being written.

use std::fmt;
use std::sync::Arc;

use crate::id::SubjectKind;
use crate::record::{FieldType, Fields};

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
    pub lists: &'a [Arc<str>],
}

/// A compile error, with the byte offset in the expression where known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    pub message: String,
    pub offset: Option<usize>,
}

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

/// A compiled CEL expression.
#[derive(Clone)]
pub struct Program {
    source: Arc<str>,
}

impl Program {
    pub fn compile(source: &str, _scope: Scope<'_>) -> Result<Program, Vec<ExprError>> {
        Ok(Program { source: source.into() })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn eval(&self, _ctx: &Context<'_>) -> Result<Outcome, String> {
        Ok(Outcome::Bool(true))
    }

    /// A condition: true only when the expression evaluates to `true`; an
    /// evaluation error (a missing optional field, say) counts as false.
    pub fn test(&self, ctx: &Context<'_>) -> bool {
        matches!(self.eval(ctx), Ok(Outcome::Bool(true)))
    }

    /// Points: an integer (doubles are truncated toward zero); None on error.
    pub fn points(&self, ctx: &Context<'_>) -> Option<i64> {
        match self.eval(ctx) {
            Ok(Outcome::Int(n)) => Some(n),
            Ok(Outcome::Double(x)) if x.is_finite() => Some(x.trunc() as i64),
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
