//! The first pass over a JSON line: a permissive reading of the top-level
//! object into borrowed slots, one per known key, without judging anything.
//!
//! Why not `#[derive(Deserialize)]` with `deny_unknown_fields`: a derived
//! struct stops at the first surprise with a prose error, so the rejection
//! could not name its key or carry a stable code. Here the only failure is
//! JSON that does not parse; unknown and duplicate keys, wrong JSON types
//! and nulls are all recorded and judged afterwards in `lower`, where every
//! problem gets its code. Strings stay borrowed from the line whenever they
//! hold no escapes, so a typical line allocates only for what the record
//! keeps.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A JSON value as far as the wire format cares: scalars are kept, arrays
/// and objects only by kind (no key or field of the format holds one).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Scalar<'_> {
    /// The JSON type, as named in messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "boolean",
            Scalar::Int(_) | Scalar::UInt(_) => "integer",
            Scalar::Float(_) => "number",
            Scalar::Str(_) => "string",
            Scalar::Array => "array",
            Scalar::Object => "object",
        }
    }

    /// The type and, for scalars, a short rendering of the value.
    pub(crate) fn describe(&self) -> String {
        match self {
            Scalar::Null | Scalar::Array | Scalar::Object => self.kind().to_string(),
            Scalar::Bool(value) => format!("boolean {value}"),
            Scalar::Int(value) => format!("integer {value}"),
            Scalar::UInt(value) => format!("integer {value}"),
            Scalar::Float(value) => format!("number {value:?}"),
            Scalar::Str(text) => format!("string {}", quote_short(text)),
        }
    }
}

/// `text` quoted for a message, cut to 40 characters so that a hostile line
/// cannot make its rejection huge.
pub(crate) fn quote_short(text: &str) -> String {
    const SHOWN_CHARS_MAX: usize = 40;
    let mut shown: String = text.chars().take(SHOWN_CHARS_MAX).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(match i64::try_from(value) {
            Ok(value) => Scalar::Int(value),
            Err(_) => Scalar::UInt(value),
        })
    }

    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(value))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(value)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// An object key, borrowed from the line when it holds no escapes (serde's
/// own `Cow<str>` always copies).
struct Name<'a>(Cow<'a, str>);

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Name(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Name(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(Name(Cow::Owned(value)))
    }
}

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(NameVisitor)
    }
}

/// The top-level keys of the wire format, records and later facts together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Fact,
    Provider,
    Id,
    Record,
    Subject,
    Type,
    OccurredAt,
    DecidedAt,
    At,
    By,
    Outcome,
    Statement,
    Fields,
    Document,
}

impl Key {
    pub(crate) const ALL: [Key; 14] = [
        Key::Fact,
        Key::Provider,
        Key::Id,
        Key::Record,
        Key::Subject,
        Key::Type,
        Key::OccurredAt,
        Key::DecidedAt,
        Key::At,
        Key::By,
        Key::Outcome,
        Key::Statement,
        Key::Fields,
        Key::Document,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Key::Fact => "fact",
            Key::Provider => "provider",
            Key::Id => "id",
            Key::Record => "record",
            Key::Subject => "subject",
            Key::Type => "type",
            Key::OccurredAt => "occurred_at",
            Key::DecidedAt => "decided_at",
            Key::At => "at",
            Key::By => "by",
            Key::Outcome => "outcome",
            Key::Statement => "statement",
            Key::Fields => "fields",
            Key::Document => "document",
        }
    }

    fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|key| key.name() == name)
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// A field value before it is typed by the catalog: a JSON value, or the
/// text of a CSV cell (whose type comes from the schema alone).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FieldInput<'a> {
    Json(Scalar<'a>),
    Cell(&'a str),
}

/// The value of the `fields` key.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FieldsValue<'a> {
    /// Entries in the order of the line (duplicates kept, judged later).
    Object(Vec<(Cow<'a, str>, FieldInput<'a>)>),
    /// Anything but an object (an error unless null).
    Other(Scalar<'a>),
}

/// One line read into slots, one per known key.
#[derive(Debug, Default)]
pub(crate) struct RawLine<'a> {
    scalars: [Option<Scalar<'a>>; Key::ALL.len()],
    pub(crate) fields: Option<FieldsValue<'a>>,
    /// The first key that is not part of the format.
    pub(crate) unknown_key: Option<String>,
    /// The first key given twice.
    pub(crate) duplicate_key: Option<String>,
}

impl<'a> RawLine<'a> {
    /// Takes a scalar key's value; a JSON null counts as absent.
    pub(crate) fn take(&mut self, key: Key) -> Option<Scalar<'a>> {
        match self.scalars.get_mut(key.slot())?.take() {
            Some(Scalar::Null) | None => None,
            Some(value) => Some(value),
        }
    }

    /// Whether a key holds something other than null.
    pub(crate) fn has(&self, key: Key) -> bool {
        if key == Key::Fields {
            return !matches!(self.fields, None | Some(FieldsValue::Other(Scalar::Null)));
        }
        matches!(self.scalars.get(key.slot()), Some(Some(value)) if *value != Scalar::Null)
    }

    /// Sets a key from a CSV cell.
    pub(crate) fn set(&mut self, key: Key, value: Scalar<'a>) {
        if let Some(slot) = self.scalars.get_mut(key.slot()) {
            *slot = Some(value);
        }
    }
}

fn read_fields<'de, A: MapAccess<'de>>(
    mut map: A,
) -> Result<Vec<(Cow<'de, str>, FieldInput<'de>)>, A::Error> {
    let mut entries = Vec::new();
    while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
        let value: Scalar<'de> = map.next_value()?;
        entries.push((name, FieldInput::Json(value)));
    }
    Ok(entries)
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = FieldsValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(FieldsValue::Object(read_fields(map)?))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        ScalarVisitor.visit_bool(value).map(FieldsValue::Other)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        ScalarVisitor.visit_i64(value).map(FieldsValue::Other)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        ScalarVisitor.visit_u64(value).map(FieldsValue::Other)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        ScalarVisitor.visit_f64(value).map(FieldsValue::Other)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        ScalarVisitor.visit_str(value).map(FieldsValue::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(FieldsValue::Other(Scalar::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ScalarVisitor.visit_seq(seq).map(FieldsValue::Other)
    }
}

impl<'de> Deserialize<'de> for FieldsValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldsVisitor)
    }
}

fn read_line_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<RawLine<'de>, A::Error> {
    let mut line = RawLine::default();
    while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
        let Some(key) = Key::from_name(&name) else {
            map.next_value::<IgnoredAny>()?;
            if line.unknown_key.is_none() {
                line.unknown_key = Some(name.into_owned());
            }
            continue;
        };
        let repeated = if key == Key::Fields {
            let value: FieldsValue<'de> = map.next_value()?;
            line.fields.replace(value).is_some()
        } else {
            let value: Scalar<'de> = map.next_value()?;
            match line.scalars.get_mut(key.slot()) {
                Some(slot) => slot.replace(value).is_some(),
                None => false,
            }
        };
        if repeated && line.duplicate_key.is_none() {
            line.duplicate_key = Some(name.into_owned());
        }
    }
    Ok(line)
}

/// One JSON value where a record or later fact is expected.
// Not boxed: an element lives on the stack for one line of a hot loop, and a
// box would cost an allocation per line.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Element<'a> {
    Line(RawLine<'a>),
    /// Valid JSON, but not an object: holds the JSON type.
    NotObject(&'static str),
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(Element::Line(read_line_map(map)?))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Element::NotObject("boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Element::NotObject("integer"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Element::NotObject("integer"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Element::NotObject("number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Element::NotObject("string"))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Element::NotObject("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Element::NotObject("array"))
    }
}

impl<'de> Deserialize<'de> for Element<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ElementVisitor)
    }
}

/// A JSON body holding many items: an array of them, or a single one.
#[derive(Debug)]
pub(crate) enum Body<'a> {
    Many(Vec<Element<'a>>),
    One(Box<Element<'a>>),
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element::<Element<'de>>()? {
            elements.push(element);
        }
        Ok(Body::Many(elements))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        ElementVisitor
            .visit_map(map)
            .map(|element| Body::One(Box::new(element)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Body::One(Box::new(Element::NotObject("boolean"))))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Body::One(Box::new(Element::NotObject("integer"))))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Body::One(Box::new(Element::NotObject("integer"))))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Body::One(Box::new(Element::NotObject("number"))))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Body::One(Box::new(Element::NotObject("string"))))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Body::One(Box::new(Element::NotObject("null"))))
    }
}

impl<'de> Deserialize<'de> for Body<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BodyVisitor)
    }
}
