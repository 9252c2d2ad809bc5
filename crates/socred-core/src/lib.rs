//! The pure domain of socred: identifiers, the rulebook model, CEL
//! expressions, the fold from records to credit files, and decisions.
//!
//! Architecture invariant: nothing in this crate does I/O or observes the
//! world. No files, network, environment, clock or randomness; the as-of day
//! is always a parameter. The same inputs give byte-identical outputs.

pub mod expr;
pub mod id;
pub mod name;
pub mod printable;
pub mod record;
pub mod rulebook;
pub mod time;

pub use id::{SubjectId, SubjectKind};
pub use name::Name;
pub use record::{Fact, FactKind, Record, RecordId, RecordKey, Value};
pub use rulebook::Rulebook;
pub use time::{Day, Period};
pub mod erase;
pub mod evaluate;
pub mod file;
pub mod fold;
mod group;
mod prefetch;
pub mod state;
pub mod timeline;
pub mod whatif;

pub use evaluate::{Decision, Standing};
pub use file::{CreditFile, Detail};
pub use fold::Engine;
pub use state::SubjectState;
