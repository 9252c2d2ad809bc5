//! The storage seam of the socred registry: the [`Store`] trait that the
//! server talks to, its error type, the rows every backend keeps, the
//! hash-chained audit log, an in-memory fake ([`MemoryStore`]) and, behind
//! the `conformance` feature, the test suite every backend must pass.
//!
//! Architecture invariant: a store never decides anything about credit. It
//! keeps records and later facts, and after every write it stores what the
//! core's fold makes of them ([`fold_subject`]), so that reading a file or
//! deciding a measure never replays history. Writes and their audit entries
//! commit in one transaction: they cannot diverge. Nothing is acknowledged
//! before it is durable.
//!
//! `docs/storage.md` explains the design choices (keys, review, derived
//! entries, list entries, the audit chain, durability).

mod audit;
mod codec;
mod error;
mod memory;
mod rows;
mod verify;
mod write;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use socred_core::record::RecordKey;
use socred_core::state::{DerivedEntry, Span, SubjectState};
use socred_core::{Day, Engine, Fact, Record, Rulebook, SubjectId};

pub use audit::{
    audit_hash, chain_drafts, chain_hashes, prune_detail, pruned_through, verify_chain, AuditDraft,
    AuditEntry, ChainBreak, ChainVerifier, GENESIS_HASH, PRUNE_ACTION,
};
pub use codec::{decode_state, encode_state, FORMAT as STATE_FORMAT};
pub use error::{check_rulebook, StoreError};
pub use memory::MemoryStore;
pub use rows::{
    decode_subject, pending_items, readback, FactRow, ItemMeta, Readback, RecordRow, Status,
    ERASED_BY,
};
pub use verify::{audit_by_subject_problems, verify_states, StateMismatch};
pub use write::{
    close_entry, close_open_ends, derived_by_target, fold_into, fold_loaded, fold_subject,
    list_rows, normalise_state, past_retention, reopen_entry, CountsDelta, EncodedState, Erasure,
    Folded, History, ListRow, StateFormat, WriteTx, Writer, KNOWN_AT,
};

/// When a state handed out by [`Store::state_marked`] was known to match
/// the database: fresh (read from it during the call), or as of an epoch of
/// the backend's memory, which ends whenever the backend notices a write
/// that it did not make itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadMark(u64);

impl ReadMark {
    /// Read from the database during the call: always good.
    pub const FRESH: ReadMark = ReadMark(u64::MAX);

    /// Taken from memory during `epoch`.
    pub fn epoch(epoch: u64) -> ReadMark {
        ReadMark(epoch.min(u64::MAX - 1))
    }

    /// The epoch, for a mark taken from memory.
    pub fn memory_epoch(self) -> Option<u64> {
        (self != ReadMark::FRESH).then_some(self.0)
    }

    /// The mark of an answer resting on several reads: its oldest.
    pub fn oldest(marks: impl IntoIterator<Item = ReadMark>) -> ReadMark {
        marks.into_iter().min().unwrap_or(ReadMark::FRESH)
    }
}

/// The most rows one read returns, whatever the caller asks: a limit on
/// everything keeps one request from holding a connection for long.
pub const LIMIT_MAX: usize = 10_000;

/// One item sent by a provider: a record, or a later fact about a record or
/// a subject. The same shape as `socred_schema::wire::Item`, which the
/// server converts field by field (the store does not depend on the wire
/// format).
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Record(Record),
    Fact {
        fact: Fact,
        /// For a correction (or a dispute resolved as corrected): the record
        /// type the new fields were checked against. The store refuses the
        /// fact when it differs from the stored record's type.
        record_type: Option<socred_core::Name>,
    },
}

impl Item {
    pub fn subject(&self) -> SubjectId {
        match self {
            Item::Record(record) => record.subject,
            Item::Fact { fact, .. } => fact.subject,
        }
    }

    /// The idempotency key of this item.
    pub fn key(&self) -> ItemKey {
        match self {
            Item::Record(record) => ItemKey::Record(record.key.clone()),
            Item::Fact { fact, .. } => ItemKey::Fact(FactKey::of(fact)),
        }
    }
}

/// Whether an item must wait for a second person's approval. The server
/// decides (e.g. serious records that put a subject on a black list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewNeed {
    Required,
    NotRequired,
}

/// What [`Store::verify_reads`] read about one subject.
#[derive(Clone, Debug)]
pub enum VerifyReads {
    /// Its records do not read (edited behind the store's back): why.
    Unreadable(String),
    Read {
        /// Its records and facts in effect.
        history: (Vec<Record>, Vec<Fact>),
        /// The list rows stored from it, where the backend says.
        list_rows: Option<Vec<ListRow>>,
        /// Its stored state.
        state: Option<Arc<SubjectState>>,
    },
}

/// An item with who sent it.
#[derive(Clone, Debug, PartialEq)]
pub struct Submission {
    pub item: Item,
    /// The id of the principal that sent the item.
    pub submitted_by: String,
    pub review: ReviewNeed,
}

/// What ingesting one item did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Stored and in effect; the subject's state was recomputed.
    Stored,
    /// The same key was already stored with identical content: nothing
    /// changed.
    Duplicate,
    /// The same key is already taken by different content (or the item
    /// contradicts what is stored); nothing changed.
    Conflict { reason: String },
    /// Stored, waiting for a reviewer other than the submitter. A replay of
    /// an item still waiting answers this again.
    PendingReview,
    /// A fact naming a record that is not in effect for that subject (it
    /// does not exist, belongs to another subject, or still waits for
    /// review); nothing changed.
    UnknownRecord,
}

/// The idempotency key of a later fact. Replaying a fact line is a no-op;
/// a second fact with the same key and other content is a conflict (two
/// corrections of one record by one reporter on one day would otherwise be
/// ordered by content, not by arrival).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FactKey {
    pub subject: SubjectId,
    /// The fact's wire name: `retracted`, `corrected`, `disputed`,
    /// `resolved`, `repaired`, `consent_granted`, `consent_withdrawn`.
    pub kind: String,
    /// The record the fact is about (None for consent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordKey>,
    pub at: Day,
    pub by: Arc<str>,
}

impl FactKey {
    pub fn of(fact: &Fact) -> FactKey {
        FactKey {
            subject: fact.subject,
            kind: rows::fact_kind_name(&fact.kind).to_string(),
            record: fact.record().cloned(),
            at: fact.at,
            by: fact.by.clone(),
        }
    }
}

/// The key of a record or of a later fact.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum ItemKey {
    Record(RecordKey),
    Fact(FactKey),
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemKey::Record(key) => write!(f, "record {}/{}", key.provider, key.id),
            ItemKey::Fact(key) => {
                write!(
                    f,
                    "fact {} of {} on {} by {}",
                    key.kind, key.subject, key.at, key.by
                )?;
                if let Some(record) = &key.record {
                    write!(f, " about {}/{}", record.provider, record.id)?;
                }
                Ok(())
            }
        }
    }
}

/// An item waiting for review.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingItem {
    /// Position in the review queue (for paging; increases with arrival).
    pub seq: u64,
    pub key: ItemKey,
    pub item: Item,
    pub submitted_by: String,
    pub submitted_at_ms: i64,
}

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Provider,
    Reviewer,
    Agency,
    Subject,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Provider,
        Role::Reviewer,
        Role::Agency,
        Role::Subject,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Provider => "provider",
            Role::Reviewer => "reviewer",
            Role::Agency => "agency",
            Role::Subject => "subject",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Role, StoreError> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role `{text}`")))
    }
}

/// Someone who holds a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// What the role is limited to: the provider id of a provider, the agency
    /// id of an agency, the subject id of a subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The record types a provider may send.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub record_types: Vec<String>,
    /// A revoked principal keeps its row (the audit log names it) but its
    /// token no longer authenticates.
    #[serde(default)]
    pub revoked: bool,
    /// The last day (in China Standard Time, as the registry's day) on
    /// which the token authenticates; None: until it is revoked or replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Day>,
}

/// The SHA-256 of a bearer token, as hex: the only form in which tokens are
/// stored.
pub fn hash_token(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(token.as_bytes());
    audit::sha256_hex(hasher)
}

/// A recomputation of every file that a rulebook upload started and that
/// has not finished: the server stopped during it, or the store was
/// copied then. Each file up to `after` is folded with `rulebook`, the
/// rest with the one before. The next start finishes it
/// ([`Store::recompute_all`] goes on after `after`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnfinishedRecompute {
    /// The label of the rulebook installed.
    pub rulebook: String,
    /// The last subject refolded with it, in identifier order; empty when
    /// none was.
    pub after: String,
}

/// One stored rulebook version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulebookVersion {
    /// `id@version`, as the rulebook labels itself.
    pub label: String,
    pub uploaded_at_ms: i64,
    pub uploaded_by: String,
}

/// Totals for the metrics endpoint, kept up to date by every write (no
/// table scans).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Subjects with a stored state.
    pub subjects: u64,
    /// Records in effect.
    pub records: u64,
    /// Later facts in effect.
    pub facts: u64,
    /// Items waiting for review.
    pub pending: u64,
    pub audit_entries: u64,
    pub principals: u64,
    pub rulebooks: u64,
}

/// The edition of a list published on a schedule (a list entered by
/// grade, such as a weekly red list): which publication day it is for,
/// under which rulebook and on which day it was drawn, and how many
/// subjects it names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edition {
    pub day: Day,
    /// The label of the rulebook whose grades decided it.
    pub rulebook: String,
    /// The registry's day it was drawn on, with the records known then
    /// (an edition is drawn again each day until the next publication
    /// day, so that late records show).
    pub drawn: Day,
    /// The subjects it holds, named or left off.
    pub members: u64,
    /// Writes this drawing may not have seen are those stamped at or after
    /// this instant ([`Store::subjects_changed`]): the next drawing of the
    /// same publication day under the same rulebook reads only the
    /// edition's subjects and those. None for an edition drawn before the
    /// store kept these stamps: the next drawing reads every subject.
    #[serde(default)]
    pub mark_ms: Option<i64>,
}

/// What a drawing of an edition is ([`Store::publish_edition`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drawing<'a> {
    /// The publication day the edition is for.
    pub day: Day,
    /// The label of the rulebook it was drawn under.
    pub rulebook: &'a str,
    /// The registry's day it was drawn on.
    pub drawn: Day,
    /// [`Edition::mark_ms`].
    pub mark_ms: i64,
}

/// A subject of an edition. `named`: the list named it on the
/// publication day. Otherwise a list that excludes it left it off that
/// day; it is kept so that, should what left it off be retracted, the
/// public page shows it before the next drawing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EditionMember {
    pub subject: SubjectId,
    pub named: bool,
}

/// A page of an edition's subjects with the edition it is of
/// ([`Store::edition_members`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditionPage {
    pub edition: Edition,
    /// In identifier order.
    pub members: Vec<EditionMember>,
}

/// The stores' clock: milliseconds since the Unix epoch. Writes stamp
/// what they change with it ([`Store::subjects_changed`]) and record when
/// items were submitted.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `members` in identifier order, each once: named if any of its
/// mentions says so. What every store keeps of a drawing.
pub fn edition_members_once(mut members: Vec<EditionMember>) -> Vec<EditionMember> {
    // Named first within a subject, so that the first of each is kept.
    members.sort_unstable_by_key(|m| (m.subject, !m.named));
    members.dedup_by_key(|m| m.subject);
    members
}

/// Appending audit entries on the calling thread (see
/// [`Store::blocking_audit`]): for a thread of its own that does nothing
/// else, never for an asynchronous runtime's worker.
pub trait BlockingAudit: Send + Sync {
    /// [`Store::append_audit_marked`], blocking until the entries are
    /// durable.
    fn append_audit_marked_now(
        &self,
        groups: Vec<(Vec<AuditDraft>, ReadMark)>,
    ) -> Result<Vec<bool>, StoreError>;
}

/// The storage of the registry. Every backend passes the conformance suite
/// (`socred_store::conformance`, feature `conformance`).
///
/// Writes take the audit entries that describe them and commit both in one
/// transaction. Batches are the base case: a single record is a batch of
/// one. Reads clamp `limit` to [`LIMIT_MAX`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a batch. Every item gets an [`Outcome`], in order. All items
    /// stored by one call commit in one transaction together with the
    /// recomputed state of every subject they touch, the derived entries
    /// those subjects pass on, their list entries and `audit`. An `Err`
    /// means nothing of the batch was stored.
    async fn ingest(
        &self,
        engine: &Arc<Engine>,
        batch: Vec<Submission>,
        audit: Vec<AuditDraft>,
    ) -> Result<Vec<Outcome>, StoreError>;

    /// Puts a pending item in effect and recomputes its subject, in one
    /// transaction. `NotFound` when nothing waits under `key`; `Conflict`
    /// when the reviewer is the submitter (two-person rule), and when the
    /// record (or a correction's new `decided_at`) is past its type's
    /// retention on `today`: the registry may not put in effect what it
    /// may no longer hold (the reviewer rejects it, or erasure takes it).
    /// Returns the item approved.
    async fn approve(
        &self,
        engine: &Arc<Engine>,
        key: &ItemKey,
        reviewer: &str,
        today: Day,
        audit: Vec<AuditDraft>,
    ) -> Result<PendingItem, StoreError>;

    /// Refuses a pending item: it never takes effect and its key stays
    /// taken. Same errors as [`Store::approve`].
    async fn reject(
        &self,
        engine: &Arc<Engine>,
        key: &ItemKey,
        reviewer: &str,
        reason: &str,
        audit: Vec<AuditDraft>,
    ) -> Result<PendingItem, StoreError>;

    /// Items waiting for review, oldest first, after queue position `after`.
    /// A record whose type `rulebook` no longer has comes with `type_index`
    /// `u32::MAX`.
    async fn pending(
        &self,
        rulebook: &Rulebook,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<PendingItem>, StoreError>;

    /// Items about `subject` waiting for review, oldest first, at most
    /// `limit`: what the subject sees pending in its own file (records a
    /// provider sent that wait for a second person, and its own repair
    /// applications). Types as in [`Store::pending`].
    async fn pending_about(
        &self,
        rulebook: &Rulebook,
        subject: SubjectId,
        limit: usize,
    ) -> Result<Vec<PendingItem>, StoreError>;

    /// Subjects after `after`, in identifier order, at most `limit`, with
    /// an objection that may still be open: a `disputed` fact in effect and
    /// no `resolved` fact in effect about the same record dated on or after
    /// it. The reviewers' queue reads each one's state for what is open as
    /// of a day; a record retracted while disputed leaves its subject here
    /// with nothing open.
    async fn disputed_subjects(
        &self,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError>;

    /// The subject's stored state with the entries that reach it from
    /// related subjects in `derived`. A subject with no records of its own
    /// but reached by another has an empty state with those entries. None
    /// when the registry knows nothing in effect about it. Shared: a backend
    /// may hand out the state it keeps decoded without copying it.
    async fn state(&self, subject: SubjectId) -> Result<Option<Arc<SubjectState>>, StoreError>;

    /// [`Store::state`] of each of `subjects`, in their order: for a
    /// reader of many files at once (drawing a list's edition, a page of
    /// one). By default one read each; a backend may read them together.
    async fn states_of(
        &self,
        subjects: &[SubjectId],
    ) -> Result<Vec<Option<Arc<SubjectState>>>, StoreError> {
        let mut out = Vec::with_capacity(subjects.len());
        for &subject in subjects {
            out.push(self.state(subject).await?);
        }
        Ok(out)
    }

    /// [`Store::state`] for an answer whose audit entries then go through
    /// [`Store::append_audit_marked`] with the returned mark. A backend may
    /// answer from memory that it keeps in step with its own writes without
    /// looking at the database; what it cannot see from memory (another
    /// process's write, a hand edit) it notices by the time the answer's
    /// audit entries are appended, and refuses them, so that no answer
    /// leaves on a state older than a write that was acknowledged before
    /// the question came. By default: a read of the database, always fresh.
    async fn state_marked(
        &self,
        subject: SubjectId,
    ) -> Result<(Option<Arc<SubjectState>>, ReadMark), StoreError> {
        Ok((self.state(subject).await?, ReadMark::FRESH))
    }

    /// [`Store::state_marked`] of each of `subjects`, in their order, with
    /// the mark of the answer that rests on them all (their oldest): a
    /// batch of decisions. By default one read each; a backend may read
    /// them together.
    async fn states_marked(
        &self,
        subjects: &[SubjectId],
    ) -> Result<(Vec<Option<Arc<SubjectState>>>, ReadMark), StoreError> {
        let mut states = Vec::with_capacity(subjects.len());
        let mut marks = Vec::with_capacity(subjects.len());
        for &subject in subjects {
            let (state, mark) = self.state_marked(subject).await?;
            states.push(state);
            marks.push(mark);
        }
        Ok((states, ReadMark::oldest(marks)))
    }

    /// The records and later facts in effect about a subject (not pending,
    /// not rejected), for explanations and verification. Records of types
    /// the rulebook no longer has are left out: the fold cannot read them.
    async fn records(
        &self,
        rulebook: &Rulebook,
        subject: SubjectId,
    ) -> Result<(Vec<Record>, Vec<Fact>), StoreError>;

    /// [`Store::records`] of each of `subjects`, in their order: for a
    /// reader of the whole registry a page at a time (a draft rulebook's
    /// impact). By default one read each; a backend may read a page at
    /// once.
    async fn records_of(
        &self,
        rulebook: &Rulebook,
        subjects: &[SubjectId],
    ) -> Result<Vec<(Vec<Record>, Vec<Fact>)>, StoreError> {
        let mut out = Vec::with_capacity(subjects.len());
        for &subject in subjects {
            out.push(self.records(rulebook, subject).await?);
        }
        Ok(out)
    }

    /// Subjects with a stored state, in identifier order, after `after`.
    /// By default those changed since the first instant: every one.
    async fn subjects(
        &self,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError> {
        self.subjects_changed(i64::MIN, after, limit).await
    }

    /// Subjects with a stored state that a write changed at or after
    /// `since_ms`, in identifier order, after `after`: each write stamps
    /// the states it writes, and those of the subjects whose entries from
    /// others it adds or removes, with the instant it began, by
    /// [`now_ms`]. The stamp has no index: writes pay nothing for it, and
    /// a reader's pages go through the states once, in key order,
    /// without decoding them.
    async fn subjects_changed(
        &self,
        since_ms: i64,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError>;

    /// Subjects on `list` on `day` (entries from their own records and
    /// entries that reach them), in identifier order, after `after`, each
    /// with the span of its entry (the latest ending one if several).
    /// Entries of grade-based lists are not stored: the core computes them
    /// when a file is read.
    async fn list_members(
        &self,
        list: &str,
        day: Day,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<(SubjectId, Span)>, StoreError>;

    /// The last edition published of `list` (see [`Store::publish_edition`]),
    /// if any.
    async fn edition(&self, list: &str) -> Result<Option<Edition>, StoreError>;

    /// The last edition of every list that has one, by list id.
    async fn editions(&self) -> Result<Vec<(String, Edition)>, StoreError>;

    /// The subjects of `list`'s last edition, in identifier order, after
    /// `after`, at most `limit` (clamped), read together with that
    /// edition: a page never mixes the subjects of one edition with the
    /// day of another published meanwhile. None when the list has no
    /// edition.
    async fn edition_members(
        &self,
        list: &str,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Option<EditionPage>, StoreError>;

    /// Makes the edition of `list` for the publication day of `drawing`,
    /// drawn under its rulebook on its day `drawn` and holding `members`
    /// (in any order; a subject given twice is kept once, named if either
    /// says so), the list's edition in place of the one before, and
    /// appends `audit`, in one transaction. When the list's edition is
    /// already of that day, under that rulebook, drawn on `drawn` (another
    /// server of the store published it first), changes nothing and
    /// returns false.
    async fn publish_edition(
        &self,
        list: &str,
        drawing: Drawing<'_>,
        members: Vec<EditionMember>,
        audit: Vec<AuditDraft>,
    ) -> Result<bool, StoreError>;

    async fn counts(&self) -> Result<Counts, StoreError>;

    /// How many records of each type the store holds, whatever their
    /// status (in effect, waiting for review, rejected, retracted), but
    /// erased ones: every one of them needs its type in the catalog, for
    /// its subject to see it and for erasure to know its retention. A scan
    /// of the records, for a rulebook upload.
    async fn held_record_types(&self) -> Result<BTreeMap<String, u64>, StoreError>;

    /// Stores a rulebook version and makes it current; earlier versions are
    /// kept. Uploading a label again with the same text makes it current
    /// again; with other text it is a `Conflict` (bump the version). In
    /// the same transaction it records that every file is to be
    /// recomputed with it ([`Store::unfinished_recompute`]), until
    /// [`Store::recompute_all`] with its engine has finished.
    async fn put_rulebook(
        &self,
        label: &str,
        text: &str,
        uploaded_by: &str,
        audit: Vec<AuditDraft>,
    ) -> Result<RulebookVersion, StoreError>;

    /// The current rulebook as (label, TOML text).
    async fn current_rulebook(&self) -> Result<Option<(String, String)>, StoreError>;

    /// Every version uploaded, oldest first.
    async fn rulebooks(&self) -> Result<Vec<RulebookVersion>, StoreError>;

    /// Refolds every subject with `engine` (after a rulebook upload), in
    /// batches of their own transactions. Returns how many were refolded.
    /// When the recomputation an upload of `engine`'s rulebook recorded is
    /// unfinished, it goes on after the last subject refolded; each batch
    /// records how far it got in its own transaction, and the last one
    /// that the recomputation is finished.
    async fn recompute_all(&self, engine: &Arc<Engine>) -> Result<u64, StoreError>;

    /// The recomputation of every file that the last rulebook upload
    /// recorded and that has not finished, if any.
    async fn unfinished_recompute(&self) -> Result<Option<UnfinishedRecompute>, StoreError>;

    /// For `socred verify`: where what the store keeps beside the audit
    /// log for its reads (an index of the log by subject, from which each
    /// subject's access log is read) disagrees with the log, one sentence
    /// a problem.
    async fn check_audit_by_subject(&self) -> Result<Vec<String>, StoreError>;

    /// Erases, in one transaction, what the end of retention allows on
    /// `today` from each of `subjects` (see [`Writer::erase`]): records
    /// become tombstones, the facts about them go, the subjects are
    /// refolded. `audit` is the entry of each subject that lost records,
    /// its subject and detail filled in.
    async fn erase(
        &self,
        engine: &Arc<Engine>,
        subjects: Vec<SubjectId>,
        today: Day,
        audit: AuditDraft,
    ) -> Result<Erasure, StoreError>;

    /// Subjects whose file holds a record past its retention on `today`,
    /// by the day kept beside each state ([`SubjectState::retention_ends`]):
    /// (that day, subject), in that order after `after`, at most `limit`
    /// (clamped). A state stored before that day was kept beside it counts
    /// as past retention on [`Day::MIN`] until erasure has examined it.
    /// Erasure pages through these instead of reading every state.
    async fn subjects_past_retention(
        &self,
        today: Day,
        after: Option<(Day, SubjectId)>,
        limit: usize,
    ) -> Result<Vec<(Day, SubjectId)>, StoreError>;

    /// Subjects with records waiting for review, rejected in it, or
    /// retracted (by their provider, or by a reviewer's resolution of an
    /// objection), decided on or before `decided_by`, after `after` in
    /// subject order, at most `limit` (clamped): where erasure looks for
    /// records past retention that no file shows. Erasure passes
    /// [`Rulebook::retention_cutoff`]: a record decided later is past
    /// retention for no type.
    async fn subjects_not_in_effect(
        &self,
        after: Option<SubjectId>,
        decided_by: Day,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError>;

    /// Creates or replaces a principal (and un-revokes it) with the hash of
    /// its token ([`hash_token`]). `Conflict` when another principal holds
    /// that hash.
    async fn put_principal(
        &self,
        principal: &Principal,
        token_hash: &str,
        audit: Vec<AuditDraft>,
    ) -> Result<(), StoreError>;

    /// The principal holding this token hash, unless revoked.
    async fn principal_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<Principal>, StoreError>;

    /// All principals, revoked ones included, by id.
    async fn principals(&self) -> Result<Vec<Principal>, StoreError>;

    /// The secret kept under `name`, after keeping `fresh` there if none
    /// was: whichever server of a store asks first sets it, and every
    /// server of that store, now or after a restart, gets the same (the
    /// key that seals public lists' page cursors).
    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// Takes the lease `name` for `holder` until `until_ms`, or renews it,
    /// when nobody holds it, its holder's time ran out by `now_ms`, or
    /// `holder` holds it already; true when `holder` holds it now. For
    /// work that every server of a store would otherwise do, and one is
    /// enough for (drawing a list's edition): the others leave it while
    /// the lease runs, and take it over once a holder that stopped lets it
    /// run out.
    async fn lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError>;

    /// The principal `id`, revoked or not. By default from
    /// [`Store::principals`]; a database reads it by its key.
    async fn principal(&self, id: &str) -> Result<Option<Principal>, StoreError> {
        Ok(self.principals().await?.into_iter().find(|p| p.id == id))
    }

    /// Revokes a principal's token. `NotFound` when there is no such id.
    async fn revoke(&self, id: &str, audit: Vec<AuditDraft>) -> Result<(), StoreError>;

    /// Appends entries to the audit log in order; returns their `seq`.
    async fn append_audit(&self, entries: Vec<AuditDraft>) -> Result<Vec<u64>, StoreError>;

    /// Appends the entries of several answers in order, each group with the
    /// mark of the reads its answer rests on (the oldest, see
    /// [`ReadMark::oldest`]). A group whose mark the store can no longer
    /// vouch for is left out and comes back `false`: its answer must be
    /// worked out again from a fresh read. The others are appended together
    /// and come back `true`. By default every mark is fresh.
    async fn append_audit_marked(
        &self,
        groups: Vec<(Vec<AuditDraft>, ReadMark)>,
    ) -> Result<Vec<bool>, StoreError> {
        let appended = vec![true; groups.len()];
        let drafts: Vec<AuditDraft> = groups.into_iter().flat_map(|(group, _)| group).collect();
        if !drafts.is_empty() {
            self.append_audit(drafts).await?;
        }
        Ok(appended)
    }

    /// The store's way to append audit entries while blocking the calling
    /// thread, when it has one that costs less than the asynchronous call
    /// (a backend whose writes block a thread anyway). None by default.
    fn blocking_audit(&self) -> Option<&dyn BlockingAudit> {
        None
    }

    /// Audit entries with `seq > after`, in order.
    async fn audit(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    /// Audit entries about one subject with `seq > after`, in order: a
    /// subject sees who read its file and why.
    async fn audit_for_subject(
        &self,
        subject: SubjectId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// The chain head: the last entry's `seq` and hash (None when empty).
    /// Checking it against the last entry detects a truncated log.
    async fn audit_head(&self) -> Result<Option<(u64, String)>, StoreError>;

    /// Where the audit log starts: the `seq` and hash of the last entry
    /// removed at the end of the log's retention ([`Store::prune_audit`]),
    /// from which the first entry held chains; None while nothing was
    /// removed (the log starts at entry 1, from the genesis hash).
    async fn audit_anchor(&self) -> Result<Option<(u64, String)>, StoreError>;

    /// The end of the oldest stretch of the log appended before `before_ms`:
    /// the entry after which the first entry held with `at_ms >= before_ms`
    /// comes (the last entry when every entry is older). None when the
    /// first entry held is not older, or the log holds none.
    async fn audit_before(&self, before_ms: i64) -> Result<Option<u64>, StoreError>;

    /// Removes the oldest entries the log holds, at most `limit` and none
    /// after entry `through`, in one transaction that moves the anchor to
    /// the last one removed. Returns how many were removed (0: none is left
    /// up to `through`).
    async fn prune_audit(&self, through: u64, limit: usize) -> Result<u64, StoreError>;

    /// Records in effect that no subject's stored history reaches (a row
    /// added behind the store's back), and list rows whose source has no
    /// state, as (subject, what is wrong), at most `limit`. A backend that
    /// finds a subject's records by subject refolds a record planted for a
    /// subject with a state in, and `verify` sees that state differ; it
    /// reports here those of subjects with no state, which `verify` does
    /// not refold.
    async fn unlisted_records(&self, limit: usize) -> Result<Vec<(SubjectId, String)>, StoreError> {
        let _ = limit;
        Ok(Vec::new())
    }

    /// The list rows stored with `source` as their source, in order, for
    /// `verify` to compare with a fresh fold; `None` from a backend that
    /// does not say (its list rows are then not checked).
    async fn list_rows_of(&self, source: SubjectId) -> Result<Option<Vec<ListRow>>, StoreError> {
        let _ = source;
        Ok(None)
    }

    /// What `verify` reads about each of `subjects`, in order: its history
    /// ([`Store::records`]; a [`StoreError::Corrupt`] one is a finding about
    /// the subject, and then nothing more is read about it), the list rows
    /// stored from it ([`Store::list_rows_of`]) and its stored state
    /// ([`Store::state`]). Any other error ends the call. A backend that
    /// pays for each call (a hand-over to another thread, a round trip)
    /// reads a whole page in one go; this default asks one by one.
    async fn verify_reads(
        &self,
        rulebook: &Arc<Rulebook>,
        subjects: &[SubjectId],
    ) -> Result<Vec<VerifyReads>, StoreError> {
        let mut reads = Vec::with_capacity(subjects.len());
        for &subject in subjects {
            let history = match self.records(rulebook, subject).await {
                Ok(history) => history,
                Err(StoreError::Corrupt(reason)) => {
                    reads.push(VerifyReads::Unreadable(reason));
                    continue;
                }
                Err(error) => return Err(error),
            };
            let list_rows = self.list_rows_of(subject).await?;
            let state = self.state(subject).await?;
            reads.push(VerifyReads::Read {
                history,
                list_rows,
                state,
            });
        }
        Ok(reads)
    }

    /// Every subject that stored entries from related subjects reach, for
    /// `verify` to check those no fresh fold reaches any more; `None` from
    /// a backend that does not say.
    async fn derived_targets(&self) -> Result<Option<Vec<SubjectId>>, StoreError> {
        Ok(None)
    }
}

/// A review's audit entries, each about `subject` unless it names one: a
/// decision on an item is part of its subject's history, so the subject
/// sees in its access log who approved or rejected what (a repair it
/// applied for, a record about it) and why.
pub fn about_subject(audit: &[AuditDraft], subject: SubjectId) -> Vec<AuditDraft> {
    audit
        .iter()
        .map(|draft| AuditDraft {
            subject: draft.subject.or(Some(subject)),
            ..draft.clone()
        })
        .collect()
}

/// The derived entries that reach `target`, from rows stored by source, in
/// the order the core's `pass_on_reach` gives them.
pub fn sort_derived(entries: &mut [DerivedEntry]) {
    entries.sort_by(|a, b| {
        (&a.list, a.via, &a.record, a.span).cmp(&(&b.list, b.via, &b.record, b.span))
    });
}

/// An empty state of a subject that only other subjects' entries reach:
/// what the core's fold gives for no records and no facts.
pub fn empty_state(subject: SubjectId) -> SubjectState {
    SubjectState::empty(subject, KNOWN_AT)
}

/// The keyset after which [`Store::subjects_past_retention`] continues,
/// as SQL parameters: (day, subject), or one before every row.
pub fn retention_cursor(after: Option<(Day, SubjectId)>) -> (i64, String) {
    match after {
        Some((day, subject)) => (i64::from(day.0), subject.to_string()),
        None => (i64::MIN, String::new()),
    }
}

/// `limit` bounded by [`LIMIT_MAX`].
pub fn clamp_limit(limit: usize) -> usize {
    limit.min(LIMIT_MAX)
}
