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
use crate::name::Name;
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

/// A record's fields, sorted by name, each name once. Shared on clone:
/// the fold copies every record into its subject's state, and copying the
/// fields per record cost more than the rest of the fold.
///
/// One allocation holds them all, side by side: a record has a handful of
/// fields, and the fold reads some of every record's in a batch of
/// millions, where each further allocation (a map's node, say) is a
/// further cache miss.
#[derive(Clone, PartialEq)]
pub struct Fields(Arc<[(Arc<str>, Value)]>);

/// As a map inside `Fields(…)`.
impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct AsMap<'a>(&'a Fields);
        impl std::fmt::Debug for AsMap<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_map().entries(self.0.iter()).finish()
            }
        }
        f.debug_tuple("Fields").field(&AsMap(self)).finish()
    }
}

impl Default for Fields {
    fn default() -> Fields {
        Fields(Arc::new([]))
    }
}

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Inserts a field, copying the others to a new allocation; returns
    /// the value it replaced. Building fields one by one is for tests and
    /// tools: collect them instead.
    pub fn insert(&mut self, name: Arc<str>, value: Value) -> Option<Value> {
        let mut entries = self.0.to_vec();
        let replaced = match entries.binary_search_by(|(key, _)| (**key).cmp(&*name)) {
            Ok(at) => Some(std::mem::replace(&mut entries[at].1, value)),
            Err(at) => {
                entries.insert(at, (name, value));
                None
            }
        };
        self.0 = entries.into();
        replaced
    }

    /// Removes a field, copying the others to a new allocation.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let at = self.position(name)?;
        let mut entries = self.0.to_vec();
        let (_, value) = entries.remove(at);
        self.0 = entries.into();
        Some(value)
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).map(|at| &self.0[at].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields in name order.
    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter(self.0.iter())
    }

    /// Where the fields lie in memory, for a prefetch hint.
    pub(crate) fn as_ptr(&self) -> *const (Arc<str>, Value) {
        Arc::as_ptr(&self.0).cast()
    }

    /// The field first in name order.
    pub fn first_key_value(&self) -> Option<(&Arc<str>, &Value)> {
        self.0.first().map(|(key, value)| (key, value))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.0.iter().map(|(key, _)| key)
    }

    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.0.iter().map(|(_, value)| value)
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.0.binary_search_by(|(key, _)| (**key).cmp(name)).ok()
    }
}

/// Collects fields; a name given twice keeps its last value, as a map's
/// `insert` would.
impl FromIterator<(Arc<str>, Value)> for Fields {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, Value)>>(iter: I) -> Fields {
        let mut entries: Vec<(Arc<str>, Value)> = iter.into_iter().collect();
        // Stable: of equal names, the last given stays last.
        entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut kept: Vec<(Arc<str>, Value)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match kept.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => kept.push(entry),
            }
        }
        Fields(kept.into())
    }
}

/// The fields of [`Fields::iter`], as a map's iterator gives them.
#[derive(Clone, Debug)]
pub struct FieldsIter<'a>(std::slice::Iter<'a, (Arc<str>, Value)>);

impl<'a> Iterator for FieldsIter<'a> {
    type Item = (&'a Arc<str>, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(key, value)| (key, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for FieldsIter<'_> {}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a Arc<str>, &'a Value);
    type IntoIter = FieldsIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A JSON object, as a map.
impl Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Fields, D::Error> {
        let map = BTreeMap::<Arc<str>, Value>::deserialize(deserializer)?;
        Ok(map.into_iter().collect())
    }
}

/// Identifies a record: the provider and the provider's own record id. This is
/// the idempotency key of ingestion.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct RecordKey {
    pub provider: Arc<str>,
    pub id: RecordId,
}

/// A provider's own record id. Most are short (a case number, a decision
/// number) and are kept inline, without an allocation of their own: the
/// fold compares and copies the key of every record of a batch of
/// millions, where each allocation is a cache miss.
pub type RecordId = smol_str::SmolStr;

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
    pub type_id: Name,
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
    /// A reviewer granted repair: publicity and list entries from this record
    /// end. A repair the subject applied for carries its application (the
    /// correction and the credit commitment), as the reviewer saw it.
    Repaired {
        record: RecordKey,
        #[serde(skip_serializing_if = "Option::is_none")]
        statement: Option<Arc<str>>,
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
    /// The record this fact takes out of the file, as if it never existed:
    /// a retraction, or a dispute resolved by retracting it.
    pub fn retracts(&self) -> Option<&RecordKey> {
        match &self.kind {
            FactKind::Retracted { record }
            | FactKind::Resolved {
                record,
                outcome: Outcome::Retracted,
                ..
            } => Some(record),
            _ => None,
        }
    }

    pub fn record(&self) -> Option<&RecordKey> {
        match &self.kind {
            FactKind::Retracted { record }
            | FactKind::Corrected { record, .. }
            | FactKind::Disputed { record, .. }
            | FactKind::Resolved { record, .. }
            | FactKind::Repaired { record, .. } => Some(record),
            FactKind::ConsentGranted | FactKind::ConsentWithdrawn => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            "[a-z]{0,3}".prop_map(|text| Value::Text(text.into())),
        ]
    }

    proptest! {
        /// Fields answer as the ordered map they replaced: the same
        /// order, the last value of a name given twice, the same JSON.
        #[test]
        fn fields_behave_as_an_ordered_map(
            given in prop::collection::vec(("[a-e]{1,2}", value()), 0..12),
            removed in "[a-e]{1,2}",
        ) {
            let given: Vec<(Arc<str>, Value)> =
                given.into_iter().map(|(name, value)| (Arc::from(name), value)).collect();
            let map: BTreeMap<Arc<str>, Value> = given.iter().cloned().collect();
            let collected: Fields = given.iter().cloned().collect();
            let mut inserted = Fields::new();
            for (name, value) in &given {
                inserted.insert(name.clone(), value.clone());
            }
            prop_assert_eq!(&collected, &inserted);
            prop_assert_eq!(collected.len(), map.len());
            let pairs: Vec<(&Arc<str>, &Value)> = collected.iter().collect();
            let expected: Vec<(&Arc<str>, &Value)> = map.iter().collect();
            prop_assert_eq!(pairs, expected);
            for name in map.keys() {
                prop_assert_eq!(collected.get(name), map.get(name));
            }
            prop_assert_eq!(collected.get(&removed), map.get(removed.as_str()));
            prop_assert_eq!(
                serde_json::to_string(&collected).unwrap(),
                serde_json::to_string(&map).unwrap()
            );
            let back: Fields = serde_json::from_str(&serde_json::to_string(&map).unwrap()).unwrap();
            prop_assert_eq!(&back, &collected);
            let mut less = collected.clone();
            let mut map_less = map.clone();
            prop_assert_eq!(less.remove(&removed), map_less.remove(removed.as_str()));
            prop_assert_eq!(less.iter().collect::<Vec<_>>(), map_less.iter().collect::<Vec<_>>());
            // A copy changed leaves the original as it was.
            prop_assert_eq!(collected.len(), map.len());
        }
    }

    #[test]
    fn fields_print_as_a_map() {
        let fields: Fields = [
            (Arc::from("b"), Value::Int(2)),
            (Arc::from("a"), Value::Bool(true)),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            format!("{fields:?}"),
            r#"Fields({"a": Bool(true), "b": Int(2)})"#
        );
    }
}
