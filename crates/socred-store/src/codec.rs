//! A compact binary form of a [`SubjectState`], for backends that store
//! states as bytes (the SQLite store keeps one per subject and rewrites it
//! at every refold).
//!
//! Why not JSON: a state is written for every subject a batch touches and
//! read for every decision. Its JSON repeats the same keys, provider, type,
//! model and rule names for every record and effect; parsing it allocates a
//! string per name. Here each distinct name is written once, in a table at
//! the start, and referred to by number, so a state is a third of its JSON
//! and decoding shares one `Arc<str>` per name (one interned
//! [`socred_core::Name`] for the ids of record types, models, rules and
//! lists). Why not a generic binary
//! serde format: the state's serde derive uses `flatten` and an untagged
//! field value, which such formats cannot read back.
//!
//! Layout (all integers LEB128 varints; signed ones zigzag first; a day is
//! a signed integer):
//!
//! ```text
//! format (one byte, FORMAT)
//! names: count, then each as length and UTF-8 bytes
//! known_at, profession (name or none), consent (count, each day and 0/1)
//! records: count, then each:
//!   flags (one byte, see RECORD_*), provider (name), id (text), type (name),
//!   occurred_at, decided_at, retained_until,
//!   fields: count, each name and value (tag byte, then the value),
//!   then, as the flags say: document (text), public_until, disputes
//!   (count, spans), statement (text), corrected_at, repaired_at
//! effects: count, then each:
//!   flags (one byte, see EFFECT_*), record, source names (model and rule,
//!   or list), start, end, points, points_base, then, as the flags say:
//!   escalation, capped_by (name), end_reason (one byte)
//! relations: count, each name (name) and subject (text)
//! derived: count, each list, via (text), relation, record provider, record
//!   id (text), start, end, suspended (count, spans)
//! orphan facts: count, each provider (name) and id (text)
//! rulebook: the label of the rulebook that folded the state (optional name)
//! ```
//!
//! Formats 1 and 2 (plain and compressed) end after the orphan facts: a
//! state stored by an earlier socred reads with no rulebook. Formats 3 and
//! 4, written now, add the rulebook.
//!
//! A "name" is an index into the table (an optional name is the index plus
//! one, 0 for none); a "text" is written in place (record ids, documents and
//! statements rarely repeat). The subject itself is not written: it is the
//! row's key, and the caller passes it to [`decode_state`].
//!
//! A state of [`COMPRESS_FROM`] bytes or more is stored with everything
//! after the first byte compressed with LZ4 (a block), when that saves an
//! eighth: first byte [`FORMAT_COMPRESSED`], then the uncompressed length,
//! then the block. Why: a row of an SQLite table keyed by text keeps only
//! about a quarter of a page in the page and spills the rest into overflow
//! pages, one more page to read and write; half the states of a city's
//! population (ten records each) were past that point uncompressed.
//!
//! The format is versioned by its first byte; a reader refuses a format it
//! does not know rather than misreading it. Every open end (`Day::MAX`) is
//! kept as it is: unlike JSON, nothing needs closing before writing.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use socred_core::record::{Fields, Value};
use socred_core::state::{
    Adjustment, Amendments, DerivedEntry, Effect, EndReason, RecordState, Relation, Source, Span,
    SubjectState,
};
use socred_core::{Day, Name, RecordId, RecordKey, SubjectId};

use crate::StoreError;

/// The first byte of every state in this form. A new layout takes the next
/// free number and keeps a reader for the ones before.
pub const FORMAT: u8 = 3;
/// The first byte of a state in this form whose body is compressed.
pub const FORMAT_COMPRESSED: u8 = 4;
/// The layouts before the rulebook was kept, plain and compressed.
const FORMAT_1: u8 = 1;
const FORMAT_1_COMPRESSED: u8 = 2;
/// Encoded states this long or longer are compressed, when it pays.
pub const COMPRESS_FROM: usize = 512;
/// The largest uncompressed state a reader accepts: a corrupt length must
/// not make it allocate without bound.
const UNCOMPRESSED_MAX: usize = 64 << 20;

const RECORD_DOCUMENT: u8 = 1;
const RECORD_PUBLIC_UNTIL: u8 = 1 << 1;
const RECORD_DISPUTES: u8 = 1 << 2;
const RECORD_SUSPEND_WHEN_DISPUTED: u8 = 1 << 3;
const RECORD_STATEMENT: u8 = 1 << 4;
const RECORD_CORRECTED_AT: u8 = 1 << 5;
const RECORD_REPAIRED_AT: u8 = 1 << 6;
const RECORD_CONSENT_REQUIRED: u8 = 1 << 7;

const EFFECT_LIST_ENTRY: u8 = 1;
const EFFECT_ESCALATION: u8 = 1 << 1;
const EFFECT_CAPPED_BY: u8 = 1 << 2;
const EFFECT_END_REASON: u8 = 1 << 3;

const VALUE_FALSE: u8 = 0;
const VALUE_TRUE: u8 = 1;
const VALUE_INT: u8 = 2;
const VALUE_NUMBER: u8 = 3;
const VALUE_TEXT: u8 = 4;

/// [`encode_state`] before compression: first byte [`FORMAT`].
fn encode_plain(state: &SubjectState) -> Vec<u8> {
    // About one name a record for its text fields, and the few shared
    // ones (provider, type, model, rule and list ids).
    let names = 16 + 2 * state.records.len();
    let mut body = Writer {
        out: Vec::with_capacity(32 + 24 * (state.records.len() + state.effects.len())),
        names: Vec::with_capacity(names),
        by_address: HashMap::with_capacity_and_hasher(names, Default::default()),
        by_text: HashMap::with_capacity_and_hasher(names, Default::default()),
    };
    body.day(state.known_at);
    body.optional_name(state.profession.as_deref());
    body.count(state.consent.len());
    for &(day, granted) in &state.consent {
        body.day(day);
        body.byte(u8::from(granted));
    }
    body.count(state.records.len());
    for record in &state.records {
        body.record(record);
    }
    body.count(state.effects.len());
    for effect in &state.effects {
        body.effect(effect);
    }
    body.count(state.relations.len());
    for relation in &state.relations {
        body.name(&relation.name);
        body.text(relation.subject.as_str());
    }
    body.count(state.derived.len());
    for entry in &state.derived {
        body.name(&entry.list);
        body.text(entry.via.as_str());
        body.name(&entry.relation);
        body.name(&entry.record.provider);
        body.text(&entry.record.id);
        body.span(entry.span);
        body.spans(&entry.suspended);
    }
    body.count(state.orphan_facts.len());
    for key in &state.orphan_facts {
        body.name(&key.provider);
        body.text(&key.id);
    }
    body.optional_name(state.rulebook.as_deref());

    let names_len: usize = body.names.iter().map(|n| n.len() + 2).sum();
    let mut out = Vec::with_capacity(1 + 5 + names_len + body.out.len());
    out.push(FORMAT);
    put_varint(&mut out, body.names.len() as u64);
    for name in &body.names {
        put_varint(&mut out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(&body.out);
    out
}

/// Writes `state` in the binary form (see the module docs), compressed
/// when it is large enough for that to pay.
pub fn encode_state(state: &SubjectState) -> Vec<u8> {
    let out = encode_plain(state);
    if out.len() < COMPRESS_FROM {
        return out;
    }
    let plain = out.get(1..).unwrap_or_default();
    let packed = lz4_flex::block::compress(plain);
    if packed.len() + 6 > out.len() / 8 * 7 {
        return out;
    }
    let mut compressed = Vec::with_capacity(packed.len() + 6);
    compressed.push(FORMAT_COMPRESSED);
    put_varint(&mut compressed, plain.len() as u64);
    compressed.extend_from_slice(&packed);
    compressed
}

/// Reads a state written by [`encode_state`] for `subject`. Corrupt bytes
/// give an error naming the subject and what did not read, never a panic.
pub fn decode_state(subject: SubjectId, bytes: &[u8]) -> Result<SubjectState, StoreError> {
    let corrupt = |what: String| {
        StoreError::Corrupt(format!(
            "stored state of {subject} does not read back: {what}"
        ))
    };
    let mut reader = Reader { bytes, at: 0 };
    let format = reader.byte().map_err(corrupt)?;
    let labelled = matches!(format, FORMAT | FORMAT_COMPRESSED);
    match format {
        FORMAT | FORMAT_1 => read_state(subject, &mut reader, labelled)
            .map_err(|what| corrupt(format!("{what} at byte {}", reader.at))),
        FORMAT_COMPRESSED | FORMAT_1_COMPRESSED => {
            let len = reader.varint().map_err(corrupt)?;
            let len = usize::try_from(len)
                .ok()
                .filter(|&len| len <= UNCOMPRESSED_MAX)
                .ok_or_else(|| corrupt(format!("an uncompressed length of {len} bytes")))?;
            let packed = bytes.get(reader.at..).unwrap_or_default();
            let plain = lz4_flex::block::decompress(packed, len)
                .map_err(|error| corrupt(format!("it does not decompress: {error}")))?;
            if plain.len() != len {
                return Err(corrupt(format!(
                    "it decompresses to {} bytes, not the {len} it says",
                    plain.len()
                )));
            }
            let mut reader = Reader {
                bytes: &plain,
                at: 0,
            };
            read_state(subject, &mut reader, labelled).map_err(|what| {
                corrupt(format!(
                    "{what} at byte {} of the decompressed state",
                    reader.at
                ))
            })
        }
        other => Err(corrupt(format!(
            "it is in binary format {other}, which this socred does not know (it reads formats \
             {FORMAT_1} to {FORMAT_COMPRESSED})"
        ))),
    }
}

/// Reads a state's body; `labelled` when its layout ends with the rulebook.
fn read_state(
    subject: SubjectId,
    r: &mut Reader<'_>,
    labelled: bool,
) -> Result<SubjectState, String> {
    let count = r.count()?;
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        names.push((Arc::from(r.str()?), OnceCell::new()));
    }
    let names = Names(names);
    let known_at = r.day()?;
    let profession = names.optional(r)?;
    let count = r.count()?;
    let mut consent = Vec::with_capacity(count);
    for _ in 0..count {
        let day = r.day()?;
        consent.push((day, r.bool()?));
    }
    let count = r.count()?;
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        records.push(read_record(r, &names)?);
    }
    let count = r.count()?;
    let mut effects = Vec::with_capacity(count);
    for _ in 0..count {
        effects.push(read_effect(r, &names)?);
    }
    let count = r.count()?;
    let mut relations = Vec::with_capacity(count);
    for _ in 0..count {
        let name = names.get(r)?;
        relations.push(Relation {
            name,
            subject: r.subject()?,
        });
    }
    let count = r.count()?;
    let mut derived = Vec::with_capacity(count);
    for _ in 0..count {
        let list = names.name(r)?;
        let via = r.subject()?;
        let relation = names.get(r)?;
        let provider = names.get(r)?;
        let id = r.record_id()?;
        let span = r.span()?;
        let suspended = r.spans()?;
        derived.push(DerivedEntry {
            list,
            via,
            relation,
            record: RecordKey { provider, id },
            span,
            suspended,
        });
    }
    let count = r.count()?;
    let mut orphan_facts = Vec::with_capacity(count);
    for _ in 0..count {
        let provider = names.get(r)?;
        orphan_facts.push(RecordKey {
            provider,
            id: r.record_id()?,
        });
    }
    let rulebook = if labelled { names.optional(r)? } else { None };
    if r.at != r.bytes.len() {
        return Err(format!("{} bytes left over", r.bytes.len() - r.at));
    }
    Ok(SubjectState {
        subject,
        known_at,
        profession,
        consent,
        records,
        effects,
        relations,
        derived,
        orphan_facts,
        rulebook,
    })
}

fn read_record(r: &mut Reader<'_>, names: &Names) -> Result<RecordState, String> {
    let flags = r.byte()?;
    let provider = names.get(r)?;
    let id = r.record_id()?;
    let type_id = names.name(r)?;
    let occurred_at = r.day()?;
    let decided_at = r.day()?;
    let retained_until = r.day()?;
    let count = r.count()?;
    let mut fields = Vec::with_capacity(count);
    for _ in 0..count {
        let name = names.get(r)?;
        let value = match r.byte()? {
            VALUE_FALSE => Value::Bool(false),
            VALUE_TRUE => Value::Bool(true),
            VALUE_INT => Value::Int(r.signed()?),
            VALUE_NUMBER => Value::Number(f64::from_bits(r.u64_fixed()?)),
            VALUE_TEXT => Value::Text(names.get(r)?),
            other => return Err(format!("unknown field value tag {other}")),
        };
        fields.push((name, value));
    }
    let has = |flag: u8| flags & flag != 0;
    let document = if has(RECORD_DOCUMENT) {
        Some(r.text()?)
    } else {
        None
    };
    let public_until = if has(RECORD_PUBLIC_UNTIL) {
        Some(r.day()?)
    } else {
        None
    };
    let disputes = if has(RECORD_DISPUTES) {
        r.spans()?
    } else {
        Vec::new()
    };
    let statement = if has(RECORD_STATEMENT) {
        Some(r.text()?)
    } else {
        None
    };
    let corrected_at = if has(RECORD_CORRECTED_AT) {
        Some(r.day()?)
    } else {
        None
    };
    let repaired_at = if has(RECORD_REPAIRED_AT) {
        Some(r.day()?)
    } else {
        None
    };
    Ok(RecordState {
        key: RecordKey { provider, id },
        type_id,
        occurred_at,
        decided_at,
        fields: fields.into_iter().collect::<Fields>(),
        document,
        retained_until,
        public_until,
        suspend_when_disputed: has(RECORD_SUSPEND_WHEN_DISPUTED),
        consent_required: has(RECORD_CONSENT_REQUIRED),
        amended: Amendments {
            disputes,
            statement,
            corrected_at,
            repaired_at,
        }
        .boxed(),
    })
}

fn read_effect(r: &mut Reader<'_>, names: &Names) -> Result<Effect, String> {
    let flags = r.byte()?;
    let has = |flag: u8| flags & flag != 0;
    let record = u32::try_from(r.varint()?).map_err(|_| "an effect's record index is too large")?;
    let source = if has(EFFECT_LIST_ENTRY) {
        Source::ListEntry {
            list: names.name(r)?,
        }
    } else {
        let model = names.name(r)?;
        Source::Rule {
            model,
            rule: names.name(r)?,
        }
    };
    let span = r.span()?;
    let points = r.signed()?;
    let points_base = r.signed()?;
    let escalation = if has(EFFECT_ESCALATION) {
        Some(u32::try_from(r.varint()?).map_err(|_| "an escalation is too large")?)
    } else {
        None
    };
    let capped_by = if has(EFFECT_CAPPED_BY) {
        Some(names.get(r)?)
    } else {
        None
    };
    let end_reason = if has(EFFECT_END_REASON) {
        Some(match r.byte()? {
            0 => EndReason::Expiry,
            1 => EndReason::ExitRecord,
            2 => EndReason::Repair,
            other => return Err(format!("unknown end reason {other}")),
        })
    } else {
        None
    };
    Ok(Effect {
        record,
        source,
        span,
        points,
        end_reason,
        adjusted: Adjustment::of(points, points_base, escalation, capped_by),
    })
}

/// The body being written and the names it refers to.
struct Writer<'s> {
    out: Vec<u8>,
    names: Vec<&'s str>,
    /// Names by the address of their text: most names of a state are the
    /// same shared strings (type, model, rule, list ids) over and over, and
    /// an address is cheap to hash.
    by_address: HashMap<(usize, usize), u32, BuildHasherDefault<AddressHasher>>,
    /// Names by their text, for equal names in different allocations.
    /// Text field values are names too, so a provider chooses some of
    /// these keys: foldhash, seeded afresh in each process, keeps that
    /// from steering them into one bucket at a fraction of SipHash's cost
    /// (SipHash and growing these maps took about 30 % of the encoding's
    /// time; see the `codec_speed` example).
    by_text: HashMap<&'s str, u32, foldhash::fast::RandomState>,
}

/// Hashes the address and length of a name. Addresses are not chosen by
/// whoever sends the data, so a weak mix is enough.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(26) ^ value).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl<'s> Writer<'s> {
    fn byte(&mut self, byte: u8) {
        self.out.push(byte);
    }

    fn count(&mut self, count: usize) {
        put_varint(&mut self.out, count as u64);
    }

    fn signed(&mut self, value: i64) {
        put_varint(&mut self.out, ((value << 1) ^ (value >> 63)) as u64);
    }

    fn day(&mut self, day: Day) {
        self.signed(i64::from(day.0));
    }

    fn span(&mut self, span: Span) {
        self.day(span.start);
        self.day(span.end);
    }

    fn spans(&mut self, spans: &[Span]) {
        self.count(spans.len());
        for span in spans {
            self.span(*span);
        }
    }

    fn text(&mut self, text: &str) {
        put_varint(&mut self.out, text.len() as u64);
        self.out.extend_from_slice(text.as_bytes());
    }

    fn name_index(&mut self, name: &'s str) -> u32 {
        let address = (name.as_ptr() as usize, name.len());
        if let Some(&index) = self.by_address.get(&address) {
            return index;
        }
        let next = self.names.len() as u32;
        let index = *self.by_text.entry(name).or_insert(next);
        if index == next {
            self.names.push(name);
        }
        self.by_address.insert(address, index);
        index
    }

    fn name(&mut self, name: &'s str) {
        let index = self.name_index(name);
        put_varint(&mut self.out, u64::from(index));
    }

    fn optional_name(&mut self, name: Option<&'s str>) {
        match name {
            Some(name) => {
                let index = self.name_index(name);
                put_varint(&mut self.out, u64::from(index) + 1);
            }
            None => self.byte(0),
        }
    }

    fn record(&mut self, record: &'s RecordState) {
        let mut flags = 0;
        let mut flag = |on: bool, bit: u8| {
            if on {
                flags |= bit;
            }
        };
        flag(record.document.is_some(), RECORD_DOCUMENT);
        flag(record.public_until.is_some(), RECORD_PUBLIC_UNTIL);
        flag(!record.disputes().is_empty(), RECORD_DISPUTES);
        flag(record.suspend_when_disputed, RECORD_SUSPEND_WHEN_DISPUTED);
        flag(record.statement().is_some(), RECORD_STATEMENT);
        flag(record.corrected_at().is_some(), RECORD_CORRECTED_AT);
        flag(record.repaired_at().is_some(), RECORD_REPAIRED_AT);
        flag(record.consent_required, RECORD_CONSENT_REQUIRED);
        self.byte(flags);
        self.name(&record.key.provider);
        self.text(&record.key.id);
        self.name(&record.type_id);
        self.day(record.occurred_at);
        self.day(record.decided_at);
        self.day(record.retained_until);
        self.count(record.fields.len());
        for (name, value) in &record.fields {
            self.name(name);
            match value {
                Value::Bool(false) => self.byte(VALUE_FALSE),
                Value::Bool(true) => self.byte(VALUE_TRUE),
                Value::Int(value) => {
                    self.byte(VALUE_INT);
                    self.signed(*value);
                }
                Value::Number(value) => {
                    self.byte(VALUE_NUMBER);
                    self.out.extend_from_slice(&value.to_bits().to_le_bytes());
                }
                Value::Text(text) => {
                    self.byte(VALUE_TEXT);
                    self.name(text);
                }
            }
        }
        if let Some(document) = &record.document {
            self.text(document);
        }
        if let Some(day) = record.public_until {
            self.day(day);
        }
        if !record.disputes().is_empty() {
            self.spans(record.disputes());
        }
        if let Some(statement) = record.statement() {
            self.text(statement);
        }
        if let Some(day) = record.corrected_at() {
            self.day(day);
        }
        if let Some(day) = record.repaired_at() {
            self.day(day);
        }
    }

    fn effect(&mut self, effect: &'s Effect) {
        let mut flags = 0;
        if matches!(effect.source, Source::ListEntry { .. }) {
            flags |= EFFECT_LIST_ENTRY;
        }
        if effect.escalation().is_some() {
            flags |= EFFECT_ESCALATION;
        }
        if effect.capped_by().is_some() {
            flags |= EFFECT_CAPPED_BY;
        }
        if effect.end_reason.is_some() {
            flags |= EFFECT_END_REASON;
        }
        self.byte(flags);
        put_varint(&mut self.out, u64::from(effect.record));
        match &effect.source {
            Source::ListEntry { list } => self.name(list),
            Source::Rule { model, rule } => {
                self.name(model);
                self.name(rule);
            }
        }
        self.span(effect.span);
        self.signed(effect.points);
        self.signed(effect.points_base());
        if let Some(escalation) = effect.escalation() {
            put_varint(&mut self.out, u64::from(escalation));
        }
        if let Some(capped_by) = effect.capped_by() {
            self.name(capped_by);
        }
        if let Some(reason) = effect.end_reason {
            self.byte(match reason {
                EndReason::Expiry => 0,
                EndReason::ExitRecord => 1,
                EndReason::Repair => 2,
            });
        }
    }
}

/// Appends `value` as an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads an unsigned LEB128 varint from `bytes` at `*at`, moving `*at`
/// past it; None when the bytes end first or it is longer than 64 bits.
pub(crate) fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *bytes.get(*at)?;
        *at += 1;
        if shift == 63 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// The names of a state being read: each text as an `Arc<str>`, and as an
/// interned [`Name`] once something asks for it as one.
struct Names(Vec<(Arc<str>, OnceCell<Name>)>);

impl Names {
    /// The name numbered `index` in the table.
    fn entry(&self, index: u64) -> Result<&(Arc<str>, OnceCell<Name>), String> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.0.get(i))
            .ok_or_else(|| format!("name {index} is not in the table of {}", self.0.len()))
    }

    fn get(&self, r: &mut Reader<'_>) -> Result<Arc<str>, String> {
        Ok(Arc::clone(&self.entry(r.varint()?)?.0))
    }

    /// The next name, interned (the ids of record types, models, rules and
    /// lists).
    fn name(&self, r: &mut Reader<'_>) -> Result<Name, String> {
        let (text, interned) = self.entry(r.varint()?)?;
        Ok(*interned.get_or_init(|| Name::new(text)))
    }

    fn optional(&self, r: &mut Reader<'_>) -> Result<Option<Arc<str>>, String> {
        match r.varint()? {
            0 => Ok(None),
            index => Ok(Some(Arc::clone(&self.entry(index - 1)?.0))),
        }
    }
}

struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    fn byte(&mut self) -> Result<u8, String> {
        let byte = *self.bytes.get(self.at).ok_or("the bytes end early")?;
        self.at += 1;
        Ok(byte)
    }

    fn bool(&mut self) -> Result<bool, String> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("{other} is not a boolean")),
        }
    }

    fn varint(&mut self) -> Result<u64, String> {
        get_varint(self.bytes, &mut self.at).ok_or_else(|| "a number does not read".to_string())
    }

    /// A count of items that follow: each takes at least one byte, so a
    /// count larger than the bytes left is corrupt (and never allocated).
    fn count(&mut self) -> Result<usize, String> {
        let count = self.varint()?;
        let left = self.bytes.len().saturating_sub(self.at);
        usize::try_from(count)
            .ok()
            .filter(|&c| c <= left)
            .ok_or_else(|| format!("a count of {count} exceeds the {left} bytes left"))
    }

    fn signed(&mut self) -> Result<i64, String> {
        let raw = self.varint()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    fn day(&mut self) -> Result<Day, String> {
        let value = self.signed()?;
        i32::try_from(value)
            .map(Day)
            .map_err(|_| format!("day {value} is out of range"))
    }

    fn span(&mut self) -> Result<Span, String> {
        let start = self.day()?;
        Ok(Span {
            start,
            end: self.day()?,
        })
    }

    fn spans(&mut self) -> Result<Vec<Span>, String> {
        let count = self.count()?;
        let mut spans = Vec::with_capacity(count);
        for _ in 0..count {
            spans.push(self.span()?);
        }
        Ok(spans)
    }

    fn u64_fixed(&mut self) -> Result<u64, String> {
        let end = self.at + 8;
        let bytes = self
            .bytes
            .get(self.at..end)
            .ok_or("the bytes end inside a number")?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        self.at = end;
        Ok(u64::from_le_bytes(array))
    }

    fn str(&mut self) -> Result<&'b str, String> {
        let len = self.count()?;
        let end = self.at + len;
        let bytes = self
            .bytes
            .get(self.at..end)
            .ok_or("the bytes end inside a text")?;
        self.at = end;
        std::str::from_utf8(bytes).map_err(|_| "a text is not UTF-8".to_string())
    }

    fn text(&mut self) -> Result<Arc<str>, String> {
        self.str().map(Arc::from)
    }

    fn record_id(&mut self) -> Result<RecordId, String> {
        self.str().map(RecordId::from)
    }

    fn subject(&mut self) -> Result<SubjectId, String> {
        let text = self.str()?;
        SubjectId::parse(text)
            .map(|parsed| parsed.id)
            .map_err(|error| format!("subject `{text}` is not valid: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::{close_open_ends, normalise_state};

    fn day(text: &str) -> Day {
        Day::parse(text).expect("a valid day")
    }

    fn subject(text: &str) -> SubjectId {
        SubjectId::parse(text).expect("a valid subject").id
    }

    /// A state that uses every field the format has: options present and
    /// absent, every value kind, open ends, derived entries.
    fn full_state() -> SubjectState {
        let person = subject("11010519491231002X");
        let fields: Fields = [
            (Arc::from("amount_yuan"), Value::Int(-12_000)),
            (Arc::from("rate"), Value::Number(0.1)),
            (Arc::from("whole"), Value::Number(3.0)),
            (Arc::from("paid"), Value::Bool(true)),
            (Arc::from("late"), Value::Bool(false)),
            (Arc::from("station"), Value::Text(Arc::from("北京南站"))),
        ]
        .into_iter()
        .collect();
        let key = |id: &str| RecordKey {
            provider: Arc::from("court.beijing"),
            id: id.into(),
        };
        let plain = RecordState {
            key: key("r1"),
            type_id: socred_core::Name::new("judgment.defaulter"),
            occurred_at: day("2024-02-29"),
            decided_at: day("2024-03-01"),
            fields: fields.clone(),
            document: None,
            retained_until: day("2029-03-01"),
            public_until: None,
            suspend_when_disputed: false,
            consent_required: false,
            amended: None,
        };
        let full = RecordState {
            key: key("(2026)京01执123号"),
            document: Some(Arc::from("doc/1")),
            retained_until: Day::MAX,
            public_until: Some(day("2027-01-01")),
            suspend_when_disputed: true,
            consent_required: true,
            amended: Some(Box::new(Amendments {
                disputes: vec![
                    Span {
                        start: day("2025-01-01"),
                        end: day("2025-02-01"),
                    },
                    Span {
                        start: day("2025-06-01"),
                        end: Day::MAX,
                    },
                ],
                statement: Some(Arc::from("I paid")),
                corrected_at: Some(day("2025-03-01")),
                repaired_at: Some(day("2026-01-01")),
            })),
            fields: Fields::new(),
            ..plain.clone()
        };
        let rule = Effect {
            record: 0,
            source: Source::Rule {
                model: socred_core::Name::new("rongcheng"),
                rule: socred_core::Name::new("defaulter"),
            },
            span: Span {
                start: day("2024-03-01"),
                end: day("2025-03-01"),
            },
            points: -50,
            end_reason: None,
            adjusted: Adjustment::of(-50, -25, Some(2), Some(Arc::from("yearly"))),
        };
        let entry = Effect {
            record: 1,
            source: Source::ListEntry {
                list: socred_core::Name::new("defaulters"),
            },
            span: Span {
                start: day("2024-03-01"),
                end: Day::MAX,
            },
            points: 0,
            end_reason: Some(EndReason::Repair),
            adjusted: None,
        };
        SubjectState {
            subject: person,
            known_at: Day::MAX,
            profession: Some(Arc::from("lawyer")),
            consent: vec![(day("2024-01-01"), true), (day("2024-06-01"), false)],
            records: vec![plain, full],
            effects: vec![
                rule,
                entry.clone(),
                Effect {
                    end_reason: Some(EndReason::ExitRecord),
                    ..entry.clone()
                },
                Effect {
                    end_reason: Some(EndReason::Expiry),
                    points: i64::MIN,
                    adjusted: Adjustment::of(i64::MIN, i64::MAX, None, None),
                    ..entry
                },
            ],
            relations: vec![Relation {
                name: Arc::from("legal_representative"),
                subject: person,
            }],
            derived: vec![DerivedEntry {
                list: socred_core::Name::new("defaulters"),
                via: subject("91110000600037341L"),
                relation: Arc::from("legal_representative"),
                record: key("z1"),
                span: Span {
                    start: day("2024-03-01"),
                    end: Day::MAX,
                },
                suspended: vec![Span {
                    start: day("2024-05-01"),
                    end: day("2024-06-01"),
                }],
            }],
            orphan_facts: vec![key("gone")],
            rulebook: Some(Arc::from("city@2026.1")),
        }
    }

    #[test]
    fn a_state_reads_back_exactly() {
        let state = full_state();
        let bytes = encode_state(&state);
        assert_eq!(bytes.first(), Some(&FORMAT));
        assert_eq!(decode_state(state.subject, &bytes).expect("decode"), state);
    }

    #[test]
    fn an_empty_state_reads_back() {
        let state = crate::empty_state(subject("11010519491231002X"));
        let bytes = encode_state(&state);
        assert_eq!(decode_state(state.subject, &bytes).expect("decode"), state);
    }

    /// The binary form reads back what the JSON form reads back, so a store
    /// that moves from JSON to this form serves the same files.
    #[test]
    fn the_binary_form_reads_as_the_json_form_does() {
        let mut state = full_state();
        close_open_ends(&mut state);
        let json = serde_json::to_string(&state).expect("serialise");
        let mut from_json: SubjectState = serde_json::from_str(&json).expect("read the JSON");
        normalise_state(&mut from_json);
        let from_binary =
            decode_state(from_json.subject, &encode_state(&from_json)).expect("decode");
        assert_eq!(from_binary, from_json);
        // The JSON describes the file, not the rulebook that folded it.
        assert_eq!(
            from_binary,
            SubjectState {
                rulebook: None,
                ..full_state()
            }
        );
    }

    /// A state stored before states kept their rulebook (format 1, and 2
    /// compressed) reads with none.
    #[test]
    fn a_state_of_the_format_before_reads_without_a_rulebook() {
        let state = SubjectState {
            rulebook: None,
            ..full_state()
        };
        let now = encode_plain(&state);
        // Format 1 is format 3 without the rulebook (an absent name, 0) at
        // its end.
        assert_eq!(now.last(), Some(&0));
        let mut before = vec![FORMAT_1];
        before.extend_from_slice(&now[1..now.len() - 1]);
        assert_eq!(decode_state(state.subject, &before).expect("decode"), state);
        let body = &before[1..];
        let mut compressed = vec![FORMAT_1_COMPRESSED];
        put_varint(&mut compressed, body.len() as u64);
        compressed.extend_from_slice(&lz4_flex::block::compress(body));
        assert_eq!(
            decode_state(state.subject, &compressed).expect("decode"),
            state
        );
        // Read as format 3, the same bytes lack the rulebook at their end.
        let mut wrong = before.clone();
        wrong[0] = FORMAT;
        assert!(decode_state(state.subject, &wrong).is_err());
    }

    /// Names that repeat are written once: the form is smaller than the
    /// JSON by a wide margin for a typical state.
    #[test]
    fn repeated_names_are_written_once() {
        let mut state = full_state();
        let one = state.records[0].clone();
        for n in 0..20 {
            let mut record = one.clone();
            record.key.id = format!("r{n}").into();
            state.records.push(record);
        }
        let binary = encode_state(&state).len();
        let json = serde_json::to_string(&state).expect("serialise").len();
        assert!(binary * 4 < json, "binary {binary} bytes, JSON {json}");
    }

    /// Names in allocations of their own, equal or not, are each written
    /// once, however many there are.
    #[test]
    fn many_names_read_back() {
        let mut state = full_state();
        let one = state.records[0].clone();
        for n in 0..100 {
            let mut record = one.clone();
            record.key.id = format!("r{n}").into();
            record.fields = [
                (
                    Arc::from("station"),
                    Value::Text(Arc::from(format!("station {}", n % 50).as_str())),
                ),
                (Arc::from(format!("extra {n}").as_str()), Value::Int(n)),
            ]
            .into_iter()
            .collect();
            state.records.push(record);
        }
        assert_eq!(
            decode_state(state.subject, &encode_state(&state)).expect("decode"),
            state
        );
        let bytes = encode_plain(&state);
        assert_eq!(decode_state(state.subject, &bytes).expect("decode"), state);
        let once = bytes
            .windows(b"station 7".len())
            .filter(|w| *w == b"station 7")
            .count();
        assert_eq!(once, 1, "a repeated name is written once");
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        let state = full_state();
        let bytes = encode_state(&state);
        for len in 0..bytes.len() {
            let result = decode_state(state.subject, &bytes[..len]);
            assert!(
                matches!(result, Err(StoreError::Corrupt(_))),
                "a state cut at {len} bytes must not read"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_state(state.subject, &longer).is_err());
        // Every single flipped byte either still reads or is refused; none panics.
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0xff;
            let _ = decode_state(state.subject, &flipped);
        }
        let mut future = bytes;
        future[0] = FORMAT_COMPRESSED + 1;
        let Err(StoreError::Corrupt(message)) = decode_state(state.subject, &future) else {
            panic!("a newer format must be refused");
        };
        assert!(message.contains("format 5"), "{message}");
        assert!(message.contains("11010519491231002X"), "{message}");
        // A reference past the table of names: format, no names, known_at
        // day 0, a profession naming the first name.
        let Err(StoreError::Corrupt(message)) = decode_state(state.subject, &[FORMAT, 0, 0, 1])
        else {
            panic!("a name past the table must be refused");
        };
        assert!(
            message.contains("name 0 is not in the table of 0"),
            "{message}"
        );
    }

    /// A large state is stored compressed, reads back exactly, and its
    /// damage is an error, never a panic or an unbounded allocation.
    #[test]
    fn a_large_state_is_compressed_and_reads_back() {
        let mut state = full_state();
        let one = state.records[0].clone();
        for n in 0..40 {
            let mut record = one.clone();
            record.key.id = format!("(2026)京01执{n}号").into();
            state.records.push(record);
        }
        let bytes = encode_state(&state);
        assert_eq!(bytes.first(), Some(&FORMAT_COMPRESSED));
        assert_eq!(decode_state(state.subject, &bytes).expect("decode"), state);
        let small = full_state();
        assert_eq!(
            encode_state(&small).first(),
            Some(&FORMAT),
            "small states stay plain"
        );

        for len in 0..bytes.len() {
            assert!(decode_state(state.subject, &bytes[..len]).is_err());
        }
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x55;
            let _ = decode_state(state.subject, &flipped);
        }
        let mut huge = vec![FORMAT_COMPRESSED];
        put_varint(&mut huge, u64::MAX);
        huge.extend_from_slice(&[0; 16]);
        assert!(decode_state(state.subject, &huge).is_err());
    }

    #[test]
    fn varints_read_back_and_refuse_overlong_input() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut at = 0;
            assert_eq!(get_varint(&out, &mut at), Some(value));
            assert_eq!(at, out.len());
        }
        let mut at = 0;
        assert_eq!(get_varint(&[0xff; 11], &mut at), None);
        let mut at = 0;
        assert_eq!(get_varint(&[0x80], &mut at), None);
    }
}
