//! Interned names: the ids of record types, scoring models, rules and
//! lists.
//!
//! A batch of millions of records holds a few dozen distinct such ids, and
//! the fold copies one into every record state and two into every effect.
//! As `Arc<str>` each copy was an atomic increment of a count that every
//! copy shares (and a decrement when dropped), and an atomic
//! read-modify-write waits for every store before it: interning them made
//! the grouped fold 3–6 % faster (BENCHMARKS.md). A [`Name`] is a
//! reference to text interned once for the life of the process, so copying
//! one copies a pointer and a length, and two names are equal exactly when
//! they point to the same text.
//!
//! Interned text is never freed, so only text that a registry's operator
//! controls becomes a `Name`: the ids of a rulebook (an admin uploads it)
//! and the names the store reads back from its own files (once a
//! rulebook's). Providers' names, record ids and free text (fields,
//! documents, statements) come from anyone who may send records and stay
//! counted or inline.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

/// Every name interned so far.
static NAMES: LazyLock<RwLock<HashSet<&'static str>>> =
    LazyLock::new(|| RwLock::new(HashSet::new()));

/// An interned name. `Copy`; equality compares addresses (interning keeps
/// one copy of each text), order and hashing compare the text, so that
/// names sort and hash as the strings they are.
#[derive(Clone, Copy)]
pub struct Name(&'static str);

impl Name {
    /// The name spelled `text`, interned on first use.
    pub fn new(text: &str) -> Name {
        // Interning cannot leave the set half-changed, so a panic elsewhere
        // while the lock was held leaves nothing to distrust.
        if let Some(&known) = NAMES
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(text)
        {
            return Name(known);
        }
        let mut names = NAMES.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(&known) = names.get(text) {
            return Name(known);
        }
        let leaked: &'static str = Box::leak(Box::from(text));
        names.insert(leaked);
        Name(leaked)
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// Whether `text` has been interned, without interning it: for tests
    /// that what a client sends never becomes a name.
    pub fn is_interned(text: &str) -> bool {
        NAMES
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(text)
    }

    /// The text, as a reference to where this name holds it.
    pub fn as_str_ref(&self) -> &&'static str {
        &self.0
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.0
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        if self == other {
            std::cmp::Ordering::Equal
        } else {
            self.0.cmp(other.0)
        }
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Name {
        Name::new(text)
    }
}

impl From<&String> for Name {
    fn from(text: &String) -> Name {
        Name::new(text)
    }
}

impl From<String> for Name {
    fn from(text: String) -> Name {
        Name::new(&text)
    }
}

impl From<&Arc<str>> for Name {
    fn from(text: &Arc<str>) -> Name {
        Name::new(text)
    }
}

impl From<Arc<str>> for Name {
    fn from(text: Arc<str>) -> Name {
        Name::new(&text)
    }
}

impl From<Name> for Arc<str> {
    fn from(name: Name) -> Arc<str> {
        Arc::from(name.0)
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Name, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Name;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Name, E> {
                Ok(Name::new(text))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_text_is_one_name() {
        let a = Name::new("judicial.judgment_default");
        let b = Name::from(String::from("judicial.judgment_default"));
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert_ne!(a, Name::new("judicial.judgment_fulfilled"));
        assert!(Name::is_interned("judicial.judgment_fulfilled"));
        assert!(!Name::is_interned("judicial.judgment_deferred"));
        assert_eq!(a.as_str(), "judicial.judgment_default");
    }

    #[test]
    fn names_sort_and_hash_as_their_text() {
        let mut names: Vec<Name> = ["b", "a", "c", "a"].map(Name::new).to_vec();
        names.sort();
        let texts: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        assert_eq!(texts, ["a", "a", "b", "c"]);
        let set: HashSet<Name> = names.into_iter().collect();
        assert!(set.contains("b"));
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn names_read_and_write_as_strings() {
        let name: Name = serde_json::from_str("\"court.beijing\"").unwrap();
        assert_eq!(name, Name::new("court.beijing"));
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"court.beijing\"");
        let escaped: Name = serde_json::from_str("\"a\\u0062\"").unwrap();
        assert_eq!(escaped, Name::new("ab"));
    }
}
