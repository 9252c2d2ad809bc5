//! Records and the later facts about them, as the core sees them: already
//! validated and lowered (type and provider resolved, fields typed).
//!
//! A record is immutable. Everything that happens to it afterwards
//! (retraction, correction, dispute, repair) is a [`Fact`] that names it by
//! its [`RecordKey`], and consent is a fact about its subject.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::id::SubjectId;
use crate::time::Day;

/// A typed field value. Numbers keep their JSON shape: integers stay exact.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Number(f64),
    Text(Arc<str>),
}

/// The field types a catalog entry may declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Bool,
    Int,
    Number,
    Text,
    Date,
    /// Another subject's identifier (a relation such as a legal representative).
    Subject,
}

/// A record's fields in a stable order. Shared on clone: the fold copies
/// every record into its subject's state, and copying a map per record cost
/// more than the rest of the fold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Fields(Arc<BTreeMap<Arc<str>, Value>>);

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Inserts a field, copying the map first if it is shared.
    pub fn insert(&mut self, name: Arc<str>, value: Value) -> Option<Value> {
        Arc::make_mut(&mut self.0).insert(name, value)
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        Arc::make_mut(&mut self.0).remove(name)
    }
}

impl std::ops::Deref for Fields {
    type Target = BTreeMap<Arc<str>, Value>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl FromIterator<(Arc<str>, Value)> for Fields {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, Value)>>(iter: I) -> Fields {
        Fields(Arc::new(iter.into_iter().collect()))
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a Arc<str>, &'a Value);
    type IntoIter = std::collections::btree_map::Iter<'a, Arc<str>, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Identifies a record: the provider and the provider's own record id. This is
/// the idempotency key of ingestion.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct RecordKey {
    pub provider: Arc<str>,
    pub id: Arc<str>,
}

/// One immutable fact reported by a provider.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    #[serde(flatten)]
    pub key: RecordKey,
    pub subject: SubjectId,
    /// Index into [`crate::rulebook::Rulebook::catalog`].
    #[serde(skip)]
    pub type_index: u32,
    #[serde(rename = "type")]
    pub type_id: Arc<str>,
    pub occurred_at: Day,
    pub decided_at: Day,
    pub fields: Fields,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<Arc<str>>,
}

/// How a dispute ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Upheld,
    Corrected,
    Retracted,
}

/// What a later fact says.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum FactKind {
    /// The provider withdraws the record: it is as if it never existed.
    Retracted {
        record: RecordKey,
    },
    /// The provider replaces the record's fields (and optionally its dates).
    Corrected {
        record: RecordKey,
        fields: Fields,
        #[serde(skip_serializing_if = "Option::is_none")]
        occurred_at: Option<Day>,
        #[serde(skip_serializing_if = "Option::is_none")]
        decided_at: Option<Day>,
    },
    /// The subject objects to the record; an optional statement travels with it.
    Disputed {
        record: RecordKey,
        #[serde(skip_serializing_if = "Option::is_none")]
        statement: Option<Arc<str>>,
    },
    /// A reviewer resolved the dispute. A `corrected` outcome carries the new
    /// fields; a `retracted` outcome removes the record.
    Resolved {
        record: RecordKey,
        outcome: Outcome,
        #[serde(skip_serializing_if = "Option::is_none")]
        fields: Option<Fields>,
    },
    /// A reviewer granted repair: publicity and list entries from this record end.
    Repaired {
        record: RecordKey,
    },
    ConsentGranted,
    ConsentWithdrawn,
}

/// A later fact about a record or a subject, effective from `at`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fact {
    pub subject: SubjectId,
    pub at: Day,
    /// Who reported the fact (a provider, a reviewer, the subject).
    pub by: Arc<str>,
    #[serde(flatten)]
    pub kind: FactKind,
}

impl Fact {
    pub fn record(&self) -> Option<&RecordKey> {
        match &self.kind {
            FactKind::Retracted { record }
            | FactKind::Corrected { record, .. }
            | FactKind::Disputed { record, .. }
            | FactKind::Resolved { record, .. }
            | FactKind::Repaired { record } => Some(record),
            FactKind::ConsentGranted | FactKind::ConsentWithdrawn => None,
        }
    }
}
