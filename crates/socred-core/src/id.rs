//! Credit subject identifiers: the Resident Identity Card number (GB 11643-1999)
//! and the Unified Social Credit Code (GB 32100-2015).
//!
//! STUB: the interface is fixed; validation is being written.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of subject an identifier names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Person,
    Organisation,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Person => "person",
            SubjectKind::Organisation => "organisation",
        }
    }
}

/// A validated, normalised (upper case) 18-character subject identifier.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubjectId([u8; 18]);

/// A warning that does not make an identifier invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdWarning {
    /// An organisation code whose check character does not match: some legally
    /// issued early pilot codes are like this.
    PilotCheckCharacter { expected: char, found: char },
}

/// Why an identifier is invalid. Positions are 1-based.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("identifier has {found} characters, expected 18")]
    Length { found: usize },
    #[error("character `{found}` at position {position} is not allowed here ({expected})")]
    Character { position: usize, found: char, expected: &'static str },
    #[error("birth date {text} in positions 7-14 does not exist")]
    BirthDate { text: String },
    #[error("check character is `{found}`, expected `{expected}`")]
    CheckCharacter { expected: char, found: char },
}

/// A parsed identifier with any warning it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub id: SubjectId,
    pub warning: Option<IdWarning>,
}

impl SubjectId {
    pub fn parse(_text: &str) -> Result<Parsed, IdError> {
        unimplemented!("being written")
    }

    pub fn kind(&self) -> SubjectKind {
        if self.0[0].is_ascii_digit() && self.0[1].is_ascii_digit() && self.0[0] != b'9' {
            SubjectKind::Person
        } else {
            SubjectKind::Organisation
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??????????????????")
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectId({})", self.as_str())
    }
}

impl Serialize for SubjectId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
