//! socred's wire and file formats, and their lowering into `socred-core`
//! types.
//!
//! Architecture invariant: this crate is where text becomes domain values.
//! Everything it hands to `socred-core` has been checked, so the core never
//! re-validates. Checking reports every problem of an input at once, each with
//! where it is, because a person fixing a file wants the whole list.

pub mod rulebook;
pub mod wire;

pub use rulebook::{
    default_rulebook, load_rulebook, load_rulebook_bytes, rulebook_json_schema, Problem,
    RulebookErrors, DEFAULT_RULEBOOK_TOML,
};
