//! The statements of a write transaction, each one multi-row: lock the
//! subjects, fetch what the writer will ask about, flush what it wrote,
//! move the totals and append to the audit chain.
//!
//! Rows go as arrays (`INSERT … SELECT * FROM unnest($1::text[], …)`): one
//! statement per table per batch, which Citus splits per shard. Statements
//! that do not depend on each other are pipelined on the connection (sent
//! together, answered in order), so a batch costs a handful of round trips
//! whatever its size.
//!
//! Lock order, the same in every transaction so that two of them never
//! wait for each other in a cycle: subject rows (sorted) → numbering →
//! record key claims (sorted) → totals stripe → audit chain head.
//! The one exception: a write stamps the state rows of the subjects its
//! entries reach or reached (`write_states`), which it has not locked, after
//! its claims. Two writes that each reach a subject the other holds wait
//! for each other; PostgreSQL (on Citus, its distributed deadlock
//! detection) cancels one, which runs again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use socred_core::{RecordKey, SubjectId};
use socred_store::{
    chain_drafts, close_entry, AuditDraft, CountsDelta, FactKey, FactRow, ItemKey, RecordRow,
    StoreError,
};
use tokio_postgres::Transaction;

use crate::codec::{
    fact_columns, fact_record, fact_row, record_columns, record_row, subject_of, to_i64,
};
use crate::overlay::{Before, Overlay, Slot};
use crate::pool::{decode, pg, Fault, Session};

/// A session inside a write transaction.
pub(crate) type Tx<'c, 't> = Session<'c, Transaction<'t>>;

/// Locks the rows of `subjects` in the states table, creating placeholder
/// rows for subjects that have none, so that two writers refolding one
/// subject take turns (even on different servers and, on Citus, on any
/// node: the lock lives with the row on its shard). Subjects are locked in
/// identifier order.
pub(crate) async fn lock_subjects(
    s: &mut Tx<'_, '_>,
    subjects: &BTreeSet<SubjectId>,
) -> Result<BTreeMap<SubjectId, Slot>, Fault> {
    let mut slots = BTreeMap::new();
    if subjects.is_empty() {
        return Ok(slots);
    }
    let keys: Vec<&str> = subjects.iter().map(SubjectId::as_str).collect();
    // The no-op update takes the row lock of a subject that has a row.
    let rows = s
        .query(
            "lock subjects",
            "INSERT INTO states (subject) SELECT s FROM unnest($1::text[]) AS s ORDER BY s \
             ON CONFLICT (subject) DO UPDATE SET sources = states.sources \
             RETURNING subject, state IS NOT NULL, sources, targets",
            &[&keys],
        )
        .await?;
    let get = decode("read a locked subject");
    for row in rows {
        let subject = subject_of(row.try_get(0).map_err(&get)?)?;
        let targets: &str = row.try_get(3).map_err(&get)?;
        let before = Before {
            had_state: row.try_get(1).map_err(&get)?,
            sources: row.try_get(2).map_err(&get)?,
            targets: targets
                .split_whitespace()
                .map(subject_of)
                .collect::<Result<_, _>>()?,
        };
        slots.insert(
            subject,
            Slot {
                before,
                ..Slot::default()
            },
        );
    }
    if slots.len() != subjects.len() {
        return Err(StoreError::Corrupt(format!(
            "locked {} of {} subjects",
            slots.len(),
            subjects.len()
        ))
        .into());
    }
    Ok(slots)
}

/// Who holds each of `keys`: the subject of every key that is taken.
pub(crate) async fn claims(
    s: &mut Tx<'_, '_>,
    keys: &BTreeSet<RecordKey>,
) -> Result<HashMap<RecordKey, SubjectId>, Fault> {
    let mut held = HashMap::new();
    if keys.is_empty() {
        return Ok(held);
    }
    let providers: Vec<&str> = keys.iter().map(|k| &*k.provider).collect();
    let ids: Vec<&str> = keys.iter().map(|k| &*k.id).collect();
    // `id = ANY` lets Citus go to the shards of these ids only.
    let rows = s
        .query(
            "read record key claims",
            "SELECT provider, id, subject FROM record_keys WHERE id = ANY($2::text[]) \
             AND (provider, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
            &[&providers, &ids],
        )
        .await?;
    let get = decode("read a record key claim");
    for row in rows {
        let provider: &str = row.try_get(0).map_err(&get)?;
        let id: &str = row.try_get(1).map_err(&get)?;
        let subject = subject_of(row.try_get(2).map_err(&get)?)?;
        held.insert(
            RecordKey {
                provider: provider.into(),
                id: id.into(),
            },
            subject,
        );
    }
    Ok(held)
}

/// Refuses the write when the database names another rulebook than
/// `engine`'s as in force (`socred_store::check_rulebook`). Called after the
/// subjects' locks: an upload committed before it is seen here, and the
/// recomputation after one committed later waits for these locks, so it
/// refolds what this write stores.
pub(crate) async fn check_rulebook(
    s: &mut Tx<'_, '_>,
    engine: &socred_core::Engine,
) -> Result<(), Fault> {
    let row = s
        .query_opt(
            "read the rulebook in force",
            "SELECT label FROM rulebooks ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    let in_force: Option<String> = row
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(decode("read the rulebook in force"))?;
    socred_store::check_rulebook(in_force.as_deref(), engine)?;
    Ok(())
}

/// Fetches into `overlay` the records under `record_keys`, the facts under
/// `fact_keys` and the rows in effect of every locked subject not loaded
/// yet.
pub(crate) async fn fetch(
    s: &mut Tx<'_, '_>,
    overlay: &mut Overlay,
    record_keys: &BTreeSet<RecordKey>,
    fact_keys: &BTreeSet<FactKey>,
) -> Result<(), Fault> {
    let held = claims(s, record_keys).await?;
    let mut claimed: Vec<(&RecordKey, SubjectId)> = held.iter().map(|(k, s)| (k, *s)).collect();
    claimed.sort();
    let claim_subjects: Vec<&str> = claimed.iter().map(|(_, s)| s.as_str()).collect();
    let claim_providers: Vec<&str> = claimed.iter().map(|(k, _)| &*k.provider).collect();
    let claim_ids: Vec<&str> = claimed.iter().map(|(k, _)| &*k.id).collect();

    let fact_subjects: Vec<&str> = fact_keys.iter().map(|k| k.subject.as_str()).collect();
    let fact_kinds: Vec<&str> = fact_keys.iter().map(|k| k.kind.as_str()).collect();
    let fact_providers: Vec<&str> = fact_keys.iter().map(|k| fact_record(k).0).collect();
    let fact_ids: Vec<&str> = fact_keys.iter().map(|k| fact_record(k).1).collect();
    let fact_days: Vec<i32> = fact_keys.iter().map(|k| k.at.0).collect();
    let fact_reporters: Vec<&str> = fact_keys.iter().map(|k| &*k.by).collect();

    let to_load: Vec<SubjectId> = overlay
        .subjects
        .iter()
        .filter(|(_, slot)| slot.loaded.is_none())
        .map(|(subject, _)| *subject)
        .collect();
    let load: Vec<&str> = to_load.iter().map(SubjectId::as_str).collect();

    let by_key = s
        .prepare(concat!(
            "SELECT ",
            record_columns!(),
            " FROM records WHERE subject = ANY($1::text[]) \
             AND (subject, provider, id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))"
        ))
        .await?;
    let facts_by_key = s
        .prepare(concat!(
            "SELECT ",
            fact_columns!(),
            " FROM facts WHERE subject = ANY($1::text[]) \
             AND (subject, kind, record_provider, record_id, day, reporter) IN \
             (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::text[]))"
        ))
        .await?;
    let load_records = s
        .prepare(concat!(
            "SELECT ",
            record_columns!(),
            " FROM records WHERE subject = ANY($1::text[]) AND status = 0"
        ))
        .await?;
    let load_facts = s
        .prepare(concat!(
            "SELECT ",
            fact_columns!(),
            " FROM facts WHERE subject = ANY($1::text[]) AND status = 0"
        ))
        .await?;
    let client = s.client;
    let (key_rows, fact_key_rows, loaded_records, loaded_facts) = tokio::try_join!(
        async {
            client
                .query(&by_key, &[&claim_subjects, &claim_providers, &claim_ids])
                .await
                .map_err(pg("read records by key"))
        },
        async {
            client
                .query(
                    &facts_by_key,
                    &[
                        &fact_subjects,
                        &fact_kinds,
                        &fact_providers,
                        &fact_ids,
                        &fact_days,
                        &fact_reporters,
                    ],
                )
                .await
                .map_err(pg("read facts by key"))
        },
        async {
            client
                .query(&load_records, &[&load])
                .await
                .map_err(pg("load subjects' records"))
        },
        async {
            client
                .query(&load_facts, &[&load])
                .await
                .map_err(pg("load subjects' facts"))
        },
    )?;

    let mut found: HashMap<RecordKey, RecordRow> = HashMap::new();
    for row in &key_rows {
        let row = record_row(row)?;
        found.insert(row.key.clone(), row);
    }
    for key in record_keys {
        let row = found.remove(key);
        if row.is_none() && held.contains_key(key) {
            return Err(StoreError::Corrupt(format!(
                "record key {}/{} is claimed but no record holds it",
                key.provider, key.id
            ))
            .into());
        }
        overlay.fetched_record(key.clone(), row);
    }
    let mut found_facts: HashMap<FactKey, FactRow> = HashMap::new();
    for row in &fact_key_rows {
        let row = fact_row(row)?;
        found_facts.insert(row.key.clone(), row);
    }
    for key in fact_keys {
        overlay.fetched_fact(key.clone(), found_facts.remove(key));
    }

    let mut loaded: BTreeMap<SubjectId, (Vec<RecordRow>, Vec<FactRow>)> = to_load
        .iter()
        .map(|subject| (*subject, (Vec::new(), Vec::new())))
        .collect();
    for row in &loaded_records {
        let row = record_row(row)?;
        if let Some(entry) = loaded.get_mut(&row.subject) {
            entry.0.push(row);
        }
    }
    for row in &loaded_facts {
        let row = fact_row(row)?;
        if let Some(entry) = loaded.get_mut(&row.key.subject) {
            entry.1.push(row);
        }
    }
    for (subject, rows) in loaded {
        if let Some(slot) = overlay.subjects.get_mut(&subject) {
            slot.loaded = Some(rows);
        }
    }
    Ok(())
}

/// Takes `count` review queue positions; the numbering row stays locked
/// until commit, so positions become visible in order.
pub(crate) async fn take_pending_seqs(
    s: &mut Tx<'_, '_>,
    count: usize,
) -> Result<Range<u64>, Fault> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let row = s
        .query_opt(
            "take review queue positions",
            "UPDATE numbering SET value = value + $1 WHERE name = 'pending_seq' RETURNING value",
            &[&count],
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("the numbering table has no pending_seq row".into()))?;
    let end: i64 = row
        .try_get(0)
        .map_err(decode("read review queue positions"))?;
    let end = u64::try_from(end).unwrap_or(0);
    Ok(end.saturating_sub(count as u64) + 1..end + 1)
}

/// Changes to the totals made by one transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub subjects: i64,
    pub records: i64,
    pub facts: i64,
    pub pending: i64,
    pub audit_entries: i64,
    pub principals: i64,
    pub rulebooks: i64,
}

impl Totals {
    pub fn of(delta: CountsDelta, audit_entries: usize) -> Totals {
        Totals {
            subjects: delta.subjects,
            records: delta.records,
            facts: delta.facts,
            pending: delta.pending,
            audit_entries: i64::try_from(audit_entries).unwrap_or(i64::MAX),
            ..Totals::default()
        }
    }
}

/// Adds to the stripe of this connection (one row: no lock-order cycle).
pub(crate) async fn bump_totals(s: &mut Tx<'_, '_>, totals: Totals) -> Result<(), Fault> {
    if totals == Totals::default() {
        return Ok(());
    }
    s.execute(
        "update the totals",
        "UPDATE totals SET subjects = subjects + $1, records = records + $2, facts = facts + $3, \
         pending = pending + $4, audit_entries = audit_entries + $5, principals = principals + $6, \
         rulebooks = rulebooks + $7 WHERE stripe = pg_backend_pid() % 16",
        &[
            &totals.subjects,
            &totals.records,
            &totals.facts,
            &totals.pending,
            &totals.audit_entries,
            &totals.principals,
            &totals.rulebooks,
        ],
    )
    .await?;
    Ok(())
}

/// Appends `drafts` after the chain head, which stays locked until commit:
/// whichever process appends, the chain continues from the committed head.
/// Call it last in a transaction, to hold the head for the shortest time.
pub(crate) async fn append_audit(
    s: &mut Tx<'_, '_>,
    drafts: &[AuditDraft],
) -> Result<Vec<u64>, Fault> {
    if drafts.is_empty() {
        return Ok(Vec::new());
    }
    let head = s
        .query_opt(
            "lock the audit chain head",
            "SELECT seq, hash FROM audit_head WHERE one = 1 FOR UPDATE",
            &[],
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("the audit chain head row is missing".into()))?;
    let get = decode("read the audit chain head");
    let seq: i64 = head.try_get(0).map_err(&get)?;
    let hash: String = head.try_get(1).map_err(&get)?;
    let seq = u64::try_from(seq)
        .map_err(|_| StoreError::Corrupt(format!("audit chain head at entry {seq}")))?;
    let (entries, (last_seq, last_hash)) = chain_drafts((seq, &hash), drafts);

    let seqs: Vec<i64> = entries.iter().map(|e| to_i64(e.seq)).collect();
    let at: Vec<i64> = entries.iter().map(|e| e.entry.at_ms).collect();
    let actors: Vec<&str> = entries.iter().map(|e| e.entry.actor.as_str()).collect();
    let roles: Vec<&str> = entries.iter().map(|e| e.entry.role.as_str()).collect();
    let purposes: Vec<&str> = entries.iter().map(|e| e.entry.purpose.as_str()).collect();
    let actions: Vec<&str> = entries.iter().map(|e| e.entry.action.as_str()).collect();
    let subjects: Vec<Option<&str>> = entries
        .iter()
        .map(|e| e.entry.subject.as_ref().map(SubjectId::as_str))
        .collect();
    let details: Vec<&str> = entries.iter().map(|e| e.entry.detail.as_str()).collect();
    let hashes: Vec<&str> = entries.iter().map(|e| e.hash.as_str()).collect();
    let mut about: Vec<(&str, i64)> = entries
        .iter()
        .filter_map(|e| {
            e.entry
                .subject
                .as_ref()
                .map(|s| (s.as_str(), to_i64(e.seq)))
        })
        .collect();
    about.sort_unstable();
    let about_subjects: Vec<&str> = about.iter().map(|(s, _)| *s).collect();
    let about_seqs: Vec<i64> = about.iter().map(|(_, q)| *q).collect();
    let last_seq = to_i64(last_seq);

    let insert = s
        .prepare(
            "INSERT INTO audit (seq, at_ms, actor, role, purpose, action, subject, detail, hash) \
             SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::text[])",
        )
        .await?;
    let index = s
        .prepare(
            "INSERT INTO audit_subjects (subject, seq) SELECT * FROM unnest($1::text[], $2::int8[])",
        )
        .await?;
    let move_head = s
        .prepare("UPDATE audit_head SET seq = $1, hash = $2 WHERE one = 1")
        .await?;
    let client = s.client;
    tokio::try_join!(
        async {
            client
                .execute(
                    &insert,
                    &[
                        &seqs, &at, &actors, &roles, &purposes, &actions, &subjects, &details,
                        &hashes,
                    ],
                )
                .await
                .map_err(pg("append audit entries"))
        },
        async {
            if about.is_empty() {
                return Ok(0);
            }
            client
                .execute(&index, &[&about_subjects, &about_seqs])
                .await
                .map_err(pg("index audit entries by subject"))
        },
        async {
            client
                .execute(&move_head, &[&last_seq, &last_hash])
                .await
                .map_err(pg("move the audit chain head"))
        },
    )?;
    Ok(entries.iter().map(|e| e.seq).collect())
}

/// Sends what the writer did: new key claims, records and facts, review
/// decisions, states with their list and derived rows, then the totals and
/// the audit entries.
pub(crate) async fn flush(
    s: &mut Tx<'_, '_>,
    overlay: &Overlay,
    totals: Totals,
    audit: &[AuditDraft],
) -> Result<(), Fault> {
    insert_items(s, overlay).await?;
    for key in &overlay.reviewed {
        set_review(s, overlay, key).await?;
    }
    erase_items(s, overlay).await?;
    write_states(s, overlay).await?;
    bump_totals(s, totals).await?;
    append_audit(s, audit).await?;
    Ok(())
}

/// Claims and stores the new records and stores the new facts. A claim
/// refused means another transaction took the key after it was fetched:
/// the write runs again and then sees it.
async fn insert_items(s: &mut Tx<'_, '_>, overlay: &Overlay) -> Result<(), Fault> {
    let mut records: Vec<&RecordRow> = overlay
        .inserted_records
        .iter()
        .filter_map(|key| overlay.record_row(key))
        .collect();
    let facts: Vec<&FactRow> = overlay
        .inserted_facts
        .iter()
        .filter_map(|key| overlay.fact_row(key))
        .collect();
    if records.is_empty() && facts.is_empty() {
        return Ok(());
    }
    // Claims in key order: two writers claiming keys lock them in one order.
    records.sort_by(|a, b| (&a.key.id, &a.key.provider).cmp(&(&b.key.id, &b.key.provider)));
    let claim_ids: Vec<&str> = records.iter().map(|r| &*r.key.id).collect();
    let claim_providers: Vec<&str> = records.iter().map(|r| &*r.key.provider).collect();
    let claim_subjects: Vec<&str> = records.iter().map(|r| r.subject.as_str()).collect();
    records.sort_by(|a, b| (a.subject, &a.key).cmp(&(b.subject, &b.key)));
    let r = RecordArrays::of(&records);
    let f = FactArrays::of(&facts);

    let claim = s
        .prepare(
            "INSERT INTO record_keys (id, provider, subject) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ORDER BY 1, 2 \
             ON CONFLICT DO NOTHING",
        )
        .await?;
    let insert_records = s
        .prepare(
            "INSERT INTO records (subject, provider, id, type, occurred_at, decided_at, fields, document, \
             status, submitted_by, submitted_at_ms, pending_seq, reviewed_by, review_note) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::int4[], \
             $7::text[], $8::text[], $9::int2[], $10::text[], $11::int8[], $12::int8[], $13::text[], $14::text[])",
        )
        .await?;
    let insert_facts = s
        .prepare(
            "INSERT INTO facts (subject, kind, record_provider, record_id, day, reporter, body, status, \
             submitted_by, submitted_at_ms, pending_seq, reviewed_by, review_note) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::text[], \
             $7::text[], $8::int2[], $9::text[], $10::int8[], $11::int8[], $12::text[], $13::text[])",
        )
        .await?;
    let client = s.client;
    let (claimed, _, _) = tokio::try_join!(
        async {
            if records.is_empty() {
                return Ok(0);
            }
            client
                .execute(&claim, &[&claim_ids, &claim_providers, &claim_subjects])
                .await
                .map_err(pg("claim record keys"))
        },
        async {
            if records.is_empty() {
                return Ok(0);
            }
            client
                .execute(
                    &insert_records,
                    &[
                        &r.subjects,
                        &r.providers,
                        &r.ids,
                        &r.types,
                        &r.occurred,
                        &r.decided,
                        &r.fields,
                        &r.documents,
                        &r.meta.status,
                        &r.meta.submitted_by,
                        &r.meta.submitted_at,
                        &r.meta.pending_seq,
                        &r.meta.reviewed_by,
                        &r.meta.review_note,
                    ],
                )
                .await
                .map_err(pg("insert records"))
        },
        async {
            if facts.is_empty() {
                return Ok(0);
            }
            client
                .execute(
                    &insert_facts,
                    &[
                        &f.subjects,
                        &f.kinds,
                        &f.providers,
                        &f.ids,
                        &f.days,
                        &f.reporters,
                        &f.bodies,
                        &f.meta.status,
                        &f.meta.submitted_by,
                        &f.meta.submitted_at,
                        &f.meta.pending_seq,
                        &f.meta.reviewed_by,
                        &f.meta.review_note,
                    ],
                )
                .await
                .map_err(pg("insert facts"))
        },
    )?;
    if claimed != records.len() as u64 {
        return Err(Fault::Retry(format!(
            "{} of {} record keys were claimed by a concurrent write",
            records.len() as u64 - claimed.min(records.len() as u64),
            records.len()
        )));
    }
    Ok(())
}

/// The review columns of items, as arrays.
struct MetaArrays<'a> {
    status: Vec<i16>,
    submitted_by: Vec<&'a str>,
    submitted_at: Vec<i64>,
    pending_seq: Vec<i64>,
    reviewed_by: Vec<Option<&'a str>>,
    review_note: Vec<Option<&'a str>>,
}

impl<'a> MetaArrays<'a> {
    fn of(metas: impl Iterator<Item = &'a socred_store::ItemMeta>) -> MetaArrays<'a> {
        let mut arrays = MetaArrays {
            status: Vec::new(),
            submitted_by: Vec::new(),
            submitted_at: Vec::new(),
            pending_seq: Vec::new(),
            reviewed_by: Vec::new(),
            review_note: Vec::new(),
        };
        for meta in metas {
            arrays.status.push(status_code(meta.status));
            arrays.submitted_by.push(&meta.submitted_by);
            arrays.submitted_at.push(meta.submitted_at_ms);
            arrays.pending_seq.push(to_i64(meta.pending_seq));
            arrays.reviewed_by.push(meta.reviewed_by.as_deref());
            arrays.review_note.push(meta.review_note.as_deref());
        }
        arrays
    }
}

fn status_code(status: socred_store::Status) -> i16 {
    // Codes are 0 to 3: they fit.
    i16::try_from(status.code()).unwrap_or(i16::MAX)
}

struct RecordArrays<'a> {
    subjects: Vec<&'a str>,
    providers: Vec<&'a str>,
    ids: Vec<&'a str>,
    types: Vec<&'a str>,
    occurred: Vec<i32>,
    decided: Vec<i32>,
    fields: Vec<&'a str>,
    documents: Vec<Option<&'a str>>,
    meta: MetaArrays<'a>,
}

impl<'a> RecordArrays<'a> {
    fn of(rows: &[&'a RecordRow]) -> RecordArrays<'a> {
        RecordArrays {
            subjects: rows.iter().map(|r| r.subject.as_str()).collect(),
            providers: rows.iter().map(|r| &*r.key.provider).collect(),
            ids: rows.iter().map(|r| &*r.key.id).collect(),
            types: rows.iter().map(|r| &*r.type_id).collect(),
            occurred: rows.iter().map(|r| r.occurred_at.0).collect(),
            decided: rows.iter().map(|r| r.decided_at.0).collect(),
            fields: rows.iter().map(|r| r.fields_json.as_str()).collect(),
            documents: rows.iter().map(|r| r.document.as_deref()).collect(),
            meta: MetaArrays::of(rows.iter().map(|r| &r.meta)),
        }
    }
}

struct FactArrays<'a> {
    subjects: Vec<&'a str>,
    kinds: Vec<&'a str>,
    providers: Vec<&'a str>,
    ids: Vec<&'a str>,
    days: Vec<i32>,
    reporters: Vec<&'a str>,
    bodies: Vec<&'a str>,
    meta: MetaArrays<'a>,
}

impl<'a> FactArrays<'a> {
    fn of(rows: &[&'a FactRow]) -> FactArrays<'a> {
        FactArrays {
            subjects: rows.iter().map(|r| r.key.subject.as_str()).collect(),
            kinds: rows.iter().map(|r| r.key.kind.as_str()).collect(),
            providers: rows.iter().map(|r| fact_record(&r.key).0).collect(),
            ids: rows.iter().map(|r| fact_record(&r.key).1).collect(),
            days: rows.iter().map(|r| r.key.at.0).collect(),
            reporters: rows.iter().map(|r| &*r.key.by).collect(),
            bodies: rows.iter().map(|r| r.body_json.as_str()).collect(),
            meta: MetaArrays::of(rows.iter().map(|r| &r.meta)),
        }
    }
}

/// Stores a review decision on an item that was pending when fetched. The
/// subject lock makes a concurrent decision impossible; if one happened
/// anyway, the write runs again and the writer sees it.
async fn set_review(s: &mut Tx<'_, '_>, overlay: &Overlay, key: &ItemKey) -> Result<(), Fault> {
    let changed = match key {
        ItemKey::Record(record) => {
            let row = overlay
                .record_row(record)
                .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
            s.execute(
                "store a review decision",
                "UPDATE records SET status = $4, reviewed_by = $5, review_note = $6 \
                 WHERE subject = $1 AND provider = $2 AND id = $3 AND status = 1",
                &[
                    &row.subject.as_str(),
                    &&*record.provider,
                    &&*record.id,
                    &status_code(row.meta.status),
                    &row.meta.reviewed_by,
                    &row.meta.review_note,
                ],
            )
            .await?
        }
        ItemKey::Fact(fact) => {
            let row = overlay
                .fact_row(fact)
                .ok_or_else(|| StoreError::NotFound(key.to_string()))?;
            let (provider, id) = fact_record(fact);
            s.execute(
                "store a review decision",
                "UPDATE facts SET status = $7, reviewed_by = $8, review_note = $9 \
                 WHERE subject = $1 AND kind = $2 AND record_provider = $3 AND record_id = $4 \
                 AND day = $5 AND reporter = $6 AND status = 1",
                &[
                    &fact.subject.as_str(),
                    &fact.kind,
                    &provider,
                    &id,
                    &fact.at.0,
                    &&*fact.by,
                    &status_code(row.meta.status),
                    &row.meta.reviewed_by,
                    &row.meta.review_note,
                ],
            )
            .await?
        }
    };
    if changed != 1 {
        return Err(Fault::Retry(format!(
            "{key} was decided by a concurrent review"
        )));
    }
    Ok(())
}

/// The records and facts of the overlay's subjects that are not in effect
/// (waiting for review, or rejected), for an erasure.
pub(crate) async fn fetch_not_in_effect(
    s: &mut Tx<'_, '_>,
    overlay: &mut Overlay,
) -> Result<(), Fault> {
    let subjects: Vec<&str> = overlay.subjects.keys().map(SubjectId::as_str).collect();
    let rows = s
        .query(
            "read records not in effect",
            concat!(
                "SELECT ",
                record_columns!(),
                " FROM records WHERE subject = ANY($1::text[]) AND status IN (1, 2)"
            ),
            &[&subjects],
        )
        .await?;
    let mut outside: HashMap<SubjectId, Vec<RecordRow>> = HashMap::new();
    for row in &rows {
        let row = record_row(row)?;
        outside.entry(row.subject).or_default().push(row);
    }
    overlay.not_in_effect = outside;
    let rows = s
        .query(
            "read facts not in effect",
            concat!(
                "SELECT ",
                fact_columns!(),
                " FROM facts WHERE subject = ANY($1::text[]) AND status IN (1, 2)"
            ),
            &[&subjects],
        )
        .await?;
    let mut aside: HashMap<SubjectId, Vec<FactRow>> = HashMap::new();
    for row in &rows {
        let row = fact_row(row)?;
        aside.entry(row.key.subject).or_default().push(row);
    }
    overlay.facts_not_in_effect = aside;
    Ok(())
}

/// Makes the erased records tombstones (in effect, waiting or rejected)
/// and deletes the erased facts, each still as fetched (else a concurrent
/// write changed it: the erasure runs again).
async fn erase_items(s: &mut Tx<'_, '_>, overlay: &Overlay) -> Result<(), Fault> {
    for row in &overlay.erased_records {
        let changed = s
            .execute(
                "erase a record",
                "UPDATE records SET type = $4, occurred_at = $5, decided_at = $6, fields = $7, \
                 document = $8, status = $9, reviewed_by = $10, review_note = $11 \
                 WHERE subject = $1 AND provider = $2 AND id = $3 AND status IN (0, 1, 2)",
                &[
                    &row.subject.as_str(),
                    &&*row.key.provider,
                    &&*row.key.id,
                    &&*row.type_id,
                    &row.occurred_at.0,
                    &row.decided_at.0,
                    &row.fields_json,
                    &row.document.as_deref(),
                    &status_code(row.meta.status),
                    &row.meta.reviewed_by,
                    &row.meta.review_note,
                ],
            )
            .await?;
        if changed != 1 {
            return Err(Fault::Retry(format!(
                "record {}/{} changed while it was erased",
                row.key.provider, row.key.id
            )));
        }
    }
    for fact in &overlay.deleted_facts {
        let (provider, id) = fact_record(fact);
        let changed = s
            .execute(
                "erase a fact",
                "DELETE FROM facts WHERE subject = $1 AND kind = $2 AND record_provider = $3 \
                 AND record_id = $4 AND day = $5 AND reporter = $6 AND status IN (0, 1, 2)",
                &[
                    &fact.subject.as_str(),
                    &fact.kind,
                    &provider,
                    &id,
                    &fact.at.0,
                    &&*fact.by,
                ],
            )
            .await?;
        if changed != 1 {
            return Err(Fault::Retry(format!(
                "{} changed while it was erased",
                ItemKey::Fact(fact.clone())
            )));
        }
    }
    if !overlay.retention_ends.is_empty() {
        let subjects: Vec<&str> = overlay
            .retention_ends
            .iter()
            .map(|(subject, _)| subject.as_str())
            .collect();
        let days: Vec<Option<i32>> = overlay
            .retention_ends
            .iter()
            .map(|(_, day)| day.map(|day| day.0))
            .collect();
        s.execute(
            "keep the days states' retention ends",
            "UPDATE states SET retention_ends = u.day \
             FROM unnest($1::text[], $2::int4[]) AS u(subject, day) WHERE states.subject = u.subject",
            &[&subjects, &days],
        )
        .await?;
    }
    Ok(())
}

/// Replaces the states written, with every list and derived row they are
/// the source of, and drops the placeholders of subjects left without one.
/// Each state written, and each stored state of a subject its rows reached
/// before or reach now (the entries of others that reach it change), is
/// stamped with the instant the write began (`Store::subjects_changed`),
/// never moved back.
async fn write_states(s: &mut Tx<'_, '_>, overlay: &Overlay) -> Result<(), Fault> {
    let placeholders = overlay.unwritten_placeholders();
    let placeholder_keys: Vec<&str> = placeholders.iter().map(SubjectId::as_str).collect();
    if overlay.states.is_empty() {
        if !placeholders.is_empty() {
            drop_placeholders(s, &placeholder_keys).await?;
        }
        return Ok(());
    }
    // The rows each rewritten source had: on its own shard and on the
    // shards of the targets it reached.
    let mut old_sources: Vec<&str> = Vec::new();
    let mut old_subjects: BTreeSet<&str> = BTreeSet::new();
    // The other subjects the rewritten sources' rows reached, and reach.
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    for write in &overlay.states {
        let Some(slot) = overlay.subjects.get(&write.subject) else {
            continue;
        };
        if slot.before.sources {
            old_sources.push(write.subject.as_str());
            old_subjects.insert(write.subject.as_str());
            old_subjects.extend(slot.before.targets.iter().map(SubjectId::as_str));
            reached.extend(slot.before.targets.iter().map(SubjectId::as_str));
        }
    }
    let old_subjects: Vec<&str> = old_subjects.into_iter().collect();
    if !old_sources.is_empty() {
        let delete_lists = s
            .prepare(
                "DELETE FROM list_entries WHERE subject = ANY($1::text[]) AND source = ANY($2::text[])",
            )
            .await?;
        let delete_derived = s
            .prepare(
                "DELETE FROM derived WHERE target = ANY($1::text[]) AND source = ANY($2::text[])",
            )
            .await?;
        let client = s.client;
        tokio::try_join!(
            async {
                client
                    .execute(&delete_lists, &[&old_subjects, &old_sources])
                    .await
                    .map_err(pg("clear list entries"))
            },
            async {
                client
                    .execute(&delete_derived, &[&old_subjects, &old_sources])
                    .await
                    .map_err(pg("clear derived entries"))
            },
        )?;
    }

    let mut state_subjects: Vec<&str> = Vec::new();
    let mut state_bytes: Vec<&[u8]> = Vec::new();
    let mut state_sources: Vec<bool> = Vec::new();
    let mut state_targets: Vec<String> = Vec::new();
    let mut state_retention: Vec<Option<i32>> = Vec::new();
    let mut state_changed: Vec<i64> = Vec::new();
    let mut list = ListArrays::default();
    let mut derived = DerivedArrays::default();
    for write in &overlay.states {
        let key = write.subject.as_str();
        let mut targets: BTreeSet<&str> = BTreeSet::new();
        for row in &write.rows {
            if row.subject != write.subject {
                targets.insert(row.subject.as_str());
            }
            list.push(row);
        }
        for (n, (target, entry)) in write.derived.iter().enumerate() {
            if *target != write.subject {
                targets.insert(target.as_str());
            }
            let mut entry = entry.clone();
            close_entry(&mut entry);
            let json = serde_json::to_string(&entry).map_err(|error| {
                StoreError::Corrupt(format!(
                    "an entry reaching {target} does not serialise: {error}"
                ))
            })?;
            derived.targets.push(target.as_str());
            derived.sources.push(key);
            derived.n.push(i32::try_from(n).unwrap_or(i32::MAX));
            derived.entries.push(json);
        }
        state_subjects.push(key);
        state_bytes.push(&write.bytes);
        state_sources.push(!write.rows.is_empty() || !write.derived.is_empty());
        reached.extend(targets.iter().copied());
        state_targets.push(targets.into_iter().collect::<Vec<_>>().join(" "));
        state_retention.push(write.retention_ends.map(|day| day.0));
        state_changed.push(write.changed_ms);
    }
    // Those written here take their stamp from their own row. The writes
    // of one transaction share their stamp (one writer): the latest is it.
    for subject in &state_subjects {
        reached.remove(subject);
    }
    let reached: Vec<&str> = reached.into_iter().collect();
    let stamp = state_changed.iter().copied().max().unwrap_or(0);

    let upsert = s
        .prepare(
            "INSERT INTO states (subject, state, sources, targets, retention_ends, changed_ms) \
             SELECT * FROM unnest($1::text[], $2::bytea[], $3::bool[], $4::text[], $5::int4[], \
             $6::int8[]) \
             ON CONFLICT (subject) DO UPDATE SET state = EXCLUDED.state, sources = EXCLUDED.sources, \
             targets = EXCLUDED.targets, retention_ends = EXCLUDED.retention_ends, \
             changed_ms = GREATEST(states.changed_ms, EXCLUDED.changed_ms)",
        )
        .await?;
    // Only rows with a state (a subject without one has nothing to read
    // again), and only those stamped earlier: the others get no new row
    // version, nor a wait when a concurrent write holds them.
    let stamp_reached = s
        .prepare(
            "UPDATE states SET changed_ms = $2 \
             WHERE subject = ANY($1::text[]) AND state IS NOT NULL AND changed_ms < $2",
        )
        .await?;
    let insert_list = s
        .prepare(
            "INSERT INTO list_entries (subject, list, source, from_day, until_day, entry_from, entry_until) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::int4[], $6::int4[], \
             $7::int4[]) ON CONFLICT DO NOTHING",
        )
        .await?;
    let insert_derived = s
        .prepare(
            "INSERT INTO derived (target, source, n, entry) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[])",
        )
        .await?;
    let unplace = s
        .prepare("DELETE FROM states WHERE subject = ANY($1::text[]) AND state IS NULL")
        .await?;
    let client = s.client;
    tokio::try_join!(
        async {
            client
                .execute(
                    &upsert,
                    &[
                        &state_subjects,
                        &state_bytes,
                        &state_sources,
                        &state_targets,
                        &state_retention,
                        &state_changed,
                    ],
                )
                .await
                .map_err(pg("write states"))
        },
        async {
            if reached.is_empty() {
                return Ok(0);
            }
            client
                .execute(&stamp_reached, &[&reached, &stamp])
                .await
                .map_err(pg("stamp the subjects entries reach"))
        },
        async {
            if list.subjects.is_empty() {
                return Ok(0);
            }
            client
                .execute(
                    &insert_list,
                    &[
                        &list.subjects,
                        &list.lists,
                        &list.sources,
                        &list.from,
                        &list.until,
                        &list.entry_from,
                        &list.entry_until,
                    ],
                )
                .await
                .map_err(pg("write list entries"))
        },
        async {
            if derived.targets.is_empty() {
                return Ok(0);
            }
            client
                .execute(
                    &insert_derived,
                    &[
                        &derived.targets,
                        &derived.sources,
                        &derived.n,
                        &derived.entries,
                    ],
                )
                .await
                .map_err(pg("write derived entries"))
        },
        async {
            if placeholder_keys.is_empty() {
                return Ok(0);
            }
            client
                .execute(&unplace, &[&placeholder_keys])
                .await
                .map_err(pg("drop subject placeholders"))
        },
    )?;
    Ok(())
}

async fn drop_placeholders(s: &mut Tx<'_, '_>, keys: &[&str]) -> Result<(), Fault> {
    s.execute(
        "drop subject placeholders",
        "DELETE FROM states WHERE subject = ANY($1::text[]) AND state IS NULL",
        &[&keys],
    )
    .await?;
    Ok(())
}

#[derive(Default)]
struct ListArrays<'a> {
    subjects: Vec<&'a str>,
    lists: Vec<&'a str>,
    sources: Vec<&'a str>,
    from: Vec<i32>,
    until: Vec<i32>,
    entry_from: Vec<i32>,
    entry_until: Vec<i32>,
}

impl<'a> ListArrays<'a> {
    fn push(&mut self, row: &'a socred_store::ListRow) {
        self.subjects.push(row.subject.as_str());
        self.lists.push(&row.list);
        self.sources.push(row.source.as_str());
        self.from.push(row.start.0);
        self.until.push(row.end.0);
        self.entry_from.push(row.entry.start.0);
        self.entry_until.push(row.entry.end.0);
    }
}

#[derive(Default)]
struct DerivedArrays<'a> {
    targets: Vec<&'a str>,
    sources: Vec<&'a str>,
    n: Vec<i32>,
    entries: Vec<String>,
}
