//! The SQLite schema as numbered migrations, applied in order when a store
//! opens. `schema_version` holds the number of migrations applied; a file
//! written by a newer socred (a higher number than this code knows) is
//! refused rather than misread.
//!
//! Migrations are append-only: never edit one that has shipped, add the
//! next.

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use socred_core::state::SubjectState;
use socred_store::{encode_state, normalise_state, StoreError};

use crate::db;
use crate::tx::{encode_rowids, subject_of};

/// Version 1: records, facts, states, list entries, derived entries,
/// principals, rulebooks, the audit chain and the counters.
///
/// Days are integers (days since 1970-01-01); subjects are their 18
/// characters, so text order is identifier order. Tables read by subject
/// are clustered by subject (`WITHOUT ROWID`), so loading one subject's
/// records is one range scan.
const V1: &str = r#"
CREATE TABLE records (
    subject         TEXT NOT NULL,
    provider        TEXT NOT NULL,
    id              TEXT NOT NULL,
    type            TEXT NOT NULL,
    occurred_at     INTEGER NOT NULL,
    decided_at      INTEGER NOT NULL,
    fields          TEXT NOT NULL,
    document        TEXT,
    status          INTEGER NOT NULL,
    submitted_by    TEXT NOT NULL,
    submitted_at_ms INTEGER NOT NULL,
    pending_seq     INTEGER NOT NULL,
    reviewed_by     TEXT,
    review_note     TEXT,
    PRIMARY KEY (subject, provider, id)
) WITHOUT ROWID;
-- The idempotency key: (provider, id) is unique whatever the subject.
CREATE UNIQUE INDEX records_by_key ON records (provider, id);
CREATE INDEX records_pending ON records (pending_seq) WHERE status = 1;

-- A fact's key is (subject, kind, record, at, by); consent facts name no
-- record and keep '' in provider and record.
CREATE TABLE facts (
    subject         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    provider        TEXT NOT NULL,
    record          TEXT NOT NULL,
    at              INTEGER NOT NULL,
    by              TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          INTEGER NOT NULL,
    submitted_by    TEXT NOT NULL,
    submitted_at_ms INTEGER NOT NULL,
    pending_seq     INTEGER NOT NULL,
    reviewed_by     TEXT,
    review_note     TEXT,
    PRIMARY KEY (subject, kind, provider, record, at, by)
) WITHOUT ROWID;
CREATE INDEX facts_pending ON facts (pending_seq) WHERE status = 1;

-- One folded state per subject (JSON, without the entries reaching it).
-- `sources` is 1 when the subject is the source of list or derived rows,
-- so that rewriting a state deletes them only when there are some; `facts`
-- counts its facts in effect, so that a subject without any is refolded
-- without looking for them.
CREATE TABLE states (
    subject TEXT PRIMARY KEY NOT NULL,
    state   TEXT NOT NULL,
    sources INTEGER NOT NULL,
    facts   INTEGER NOT NULL
) WITHOUT ROWID;

-- Pieces of list entries outside suspensions: `subject` is on `list` on
-- the days [start, end); `source` made the entry (itself or the company
-- whose entry reaches it); entry_* is the whole entry.
CREATE TABLE list_entries (
    list        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    source      TEXT NOT NULL,
    start       INTEGER NOT NULL,
    end         INTEGER NOT NULL,
    entry_start INTEGER NOT NULL,
    entry_end   INTEGER NOT NULL,
    PRIMARY KEY (list, subject, source, start, end, entry_start, entry_end)
) WITHOUT ROWID;
CREATE INDEX list_entries_by_source ON list_entries (source);

-- Entries that `source` passes on to `target` (JSON of a DerivedEntry).
CREATE TABLE derived (
    target TEXT NOT NULL,
    source TEXT NOT NULL,
    n      INTEGER NOT NULL,
    entry  TEXT NOT NULL,
    PRIMARY KEY (target, source, n)
) WITHOUT ROWID;
CREATE INDEX derived_by_source ON derived (source);

CREATE TABLE principals (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    scope        TEXT,
    record_types TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    revoked      INTEGER NOT NULL
);

CREATE TABLE rulebooks (
    seq            INTEGER PRIMARY KEY,
    label          TEXT NOT NULL,
    text           TEXT NOT NULL,
    uploaded_at_ms INTEGER NOT NULL,
    uploaded_by    TEXT NOT NULL
);
CREATE INDEX rulebooks_by_label ON rulebooks (label);

CREATE TABLE audit (
    seq     INTEGER PRIMARY KEY,
    at_ms   INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    role    TEXT NOT NULL,
    purpose TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT,
    detail  TEXT NOT NULL,
    hash    TEXT NOT NULL
);
CREATE INDEX audit_by_subject ON audit (subject, seq) WHERE subject IS NOT NULL;

-- The chain head, read and moved inside every appending transaction.
CREATE TABLE audit_head (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);

-- Totals for metrics and the review queue's position counter.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES
    ('subjects', 0), ('records', 0), ('facts', 0), ('pending', 0),
    ('audit_entries', 0), ('principals', 0), ('rulebooks', 0), ('pending_seq', 0);
"#;

/// Version 2: records are kept in arrival order (a rowid table) with an
/// index by subject, instead of clustered by subject.
///
/// Why: a batch of records for random subjects inserted into a table
/// clustered by subject dirties a random page per record, and every dirty
/// page is written to the log at commit and again by the checkpoint; with
/// the records clustered, a batch rewrote most of the table. In arrival
/// order a batch's records fill new pages, and only the much smaller index
/// entries (subject and row number) land on random pages. Loading a subject
/// reads its few rows through the index; they are ordered by key as before.
const V2: &str = r#"
CREATE TABLE records_by_arrival (
    subject         TEXT NOT NULL,
    provider        TEXT NOT NULL,
    id              TEXT NOT NULL,
    type            TEXT NOT NULL,
    occurred_at     INTEGER NOT NULL,
    decided_at      INTEGER NOT NULL,
    fields          TEXT NOT NULL,
    document        TEXT,
    status          INTEGER NOT NULL,
    submitted_by    TEXT NOT NULL,
    submitted_at_ms INTEGER NOT NULL,
    pending_seq     INTEGER NOT NULL,
    reviewed_by     TEXT,
    review_note     TEXT
);
INSERT INTO records_by_arrival
    SELECT subject, provider, id, type, occurred_at, decided_at, fields, document, status,
           submitted_by, submitted_at_ms, pending_seq, reviewed_by, review_note
    FROM records ORDER BY submitted_at_ms, pending_seq;
DROP TABLE records;
ALTER TABLE records_by_arrival RENAME TO records;
-- The idempotency key: (provider, id) is unique whatever the subject.
CREATE UNIQUE INDEX records_by_key ON records (provider, id);
CREATE INDEX records_by_subject ON records (subject);
CREATE INDEX records_pending ON records (pending_seq) WHERE status = 1;
"#;

/// Version 3, part one: states in the binary form of
/// `socred_store::encode_state`, each with the row numbers of its
/// subject's records in effect (`records`, see `tx::encode_rowids`).
///
/// Why: a state is rewritten for every subject a batch touches and read
/// for every decision; the binary form is a fraction of the compressed
/// JSON's cost to write and to read. And with the records of a subject
/// found through its state row, the index of records by subject goes: it
/// cost a random page per record stored. The states are converted by
/// [`v3_states`]; part two rebuilds the records table.
const V3_STATES: &str = r#"
CREATE TABLE states_v3 (
    subject TEXT PRIMARY KEY NOT NULL,
    state   BLOB NOT NULL,
    sources INTEGER NOT NULL,
    facts   INTEGER NOT NULL,
    records BLOB NOT NULL
) WITHOUT ROWID;
"#;

/// Version 3, part two: records get an explicit row number (`seq`), the
/// one they had, so that `VACUUM` cannot renumber them behind the lists in
/// the states; the index by subject goes.
const V3_RECORDS: &str = r#"
DROP TABLE states;
ALTER TABLE states_v3 RENAME TO states;
CREATE TABLE records_v3 (
    seq             INTEGER PRIMARY KEY,
    subject         TEXT NOT NULL,
    provider        TEXT NOT NULL,
    id              TEXT NOT NULL,
    type            TEXT NOT NULL,
    occurred_at     INTEGER NOT NULL,
    decided_at      INTEGER NOT NULL,
    fields          TEXT NOT NULL,
    document        TEXT,
    status          INTEGER NOT NULL,
    submitted_by    TEXT NOT NULL,
    submitted_at_ms INTEGER NOT NULL,
    pending_seq     INTEGER NOT NULL,
    reviewed_by     TEXT,
    review_note     TEXT
);
INSERT INTO records_v3
    SELECT rowid, subject, provider, id, type, occurred_at, decided_at, fields, document, status,
           submitted_by, submitted_at_ms, pending_seq, reviewed_by, review_note
    FROM records;
DROP TABLE records;
ALTER TABLE records_v3 RENAME TO records;
-- The idempotency key: (provider, id) is unique whatever the subject.
CREATE UNIQUE INDEX records_by_key ON records (provider, id);
CREATE INDEX records_pending ON records (pending_seq) WHERE status = 1;
"#;

/// Converts every state of schema 2 (JSON compressed with LZ4, or JSON
/// text) into `states_v3` with the row numbers of its records.
fn v3_states(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(V3_STATES)
        .map_err(db("create the states of schema 3"))?;
    let mut read = tx
        .prepare(
            "SELECT s.subject, s.state, s.sources, s.facts,              (SELECT group_concat(r.rowid) FROM records r WHERE r.subject = s.subject AND r.status = 0)              FROM states s",
        )
        .map_err(db("read the states of schema 2"))?;
    let mut write = tx
        .prepare(
            "INSERT INTO states_v3 (subject, state, sources, facts, records) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(db("write the states of schema 3"))?;
    let mut rows = read.query([]).map_err(db("read the states of schema 2"))?;
    while let Some(row) = rows.next().map_err(db("read the states of schema 2"))? {
        let key: String = row.get(0).map_err(db("read a state of schema 2"))?;
        let subject = subject_of(&key)?;
        let value = row.get_ref(1).map_err(db("read a state of schema 2"))?;
        let mut state: SubjectState = serde_json::from_slice(&v2_state_json(&key, value)?)
            .map_err(|error| {
                StoreError::Corrupt(format!(
                    "stored state of {subject} does not read back: {error}"
                ))
            })?;
        normalise_state(&mut state);
        let sources: i64 = row.get(2).map_err(db("read a state of schema 2"))?;
        let facts: i64 = row.get(3).map_err(db("read a state of schema 2"))?;
        let list: Option<String> = row.get(4).map_err(db("read a state of schema 2"))?;
        let mut rowids = Vec::new();
        for number in list
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|n| !n.is_empty())
        {
            rowids.push(number.parse::<i64>().map_err(|_| {
                StoreError::Corrupt(format!("record row number `{number}` of {subject}"))
            })?);
        }
        rowids.sort_unstable();
        write
            .execute(params![
                key,
                encode_state(&state),
                sources,
                facts,
                encode_rowids(&rowids)
            ])
            .map_err(db("write a state of schema 3"))?;
    }
    Ok(())
}

/// The JSON of a state of schema 2: text as it is, or a blob of JSON
/// compressed with LZ4 (a block preceded by its length) against
/// [`V2_STATE_DICTIONARY`].
fn v2_state_json(subject: &str, value: ValueRef<'_>) -> Result<Vec<u8>, StoreError> {
    match value {
        ValueRef::Text(text) => Ok(text.to_vec()),
        ValueRef::Blob(blob) => {
            lz4_flex::block::decompress_size_prepended_with_dict(blob, V2_STATE_DICTIONARY).map_err(
                |error| {
                    StoreError::Corrupt(format!(
                        "stored state of {subject} does not decompress: {error}"
                    ))
                },
            )
        }
        other => Err(StoreError::Corrupt(format!(
            "stored state of {subject} is neither text nor a blob ({:?})",
            other.data_type()
        ))),
    }
}

/// What schema 2 compressed states against: the state's JSON keys in the
/// order the core writes them. Part of that stored format, byte for byte.
const V2_STATE_DICTIONARY: &[u8] = br#"{"orphan_facts":[],"relations":[{"name":"","subject":""}],"profession":"","consent":[["",true]],"document":"","public_until":"","disputes":[{"start":"","end":""}],"statement":"","corrected_at":"","repaired_at":"","escalation":1,"capped_by":"","end_reason":"expiry","end_reason":"exit_record","end_reason":"repair","by":"list_entry","list":"","suspend_when_disputed":true,"consent_required":true,"subject":"","known_at":"9999-12-31","records":[{"provider":"","id":"","type":"","occurred_at":"20","decided_at":"20","fields":{},"retained_until":"20","suspend_when_disputed":false,"consent_required":false}],"effects":[{"record":0,"by":"rule","model":"","rule":"","start":"20","end":"20","points":-1,"points_base":-1}]}"#;

/// One step of the schema: SQL, or code for what SQL cannot do.
enum Migration {
    Sql(&'static str),
    Code(fn(&Transaction<'_>) -> Result<(), StoreError>),
}

/// Version 3 in one step: both parts run in one transaction.
fn v3(tx: &Transaction<'_>) -> Result<(), StoreError> {
    v3_states(tx)?;
    tx.execute_batch(V3_RECORDS)
        .map_err(db("rebuild the records table"))
}

/// Version 4: the audit log by subject moves to a file of its own, kept up
/// to date off the commit path (`audit_index.rs`), which builds it from the
/// audit table on its first start.
const V4: &str = "DROP INDEX IF EXISTS audit_by_subject;";

/// Version 5: objections that are in effect, by subject, for the
/// reviewers' queue of open objections (`Store::disputed_subjects`), which
/// would otherwise scan every fact.
const V5: &str =
    "CREATE INDEX facts_disputed ON facts (subject) WHERE kind = 'disputed' AND status = 0;";

/// Version 6: records waiting for review, by subject, for the pending items
/// a subject sees in its own file (`Store::pending_about`); the records
/// table is in arrival order and has no other way to a subject's records.
/// Facts need none: their table is keyed by subject first.
const V6: &str = "CREATE INDEX records_pending_by_subject ON records (subject) WHERE status = 1;";

/// Version 7: records a reviewer rejected, by subject, for erasure at the
/// end of retention (`Store::subjects_not_in_effect`, and each subject's
/// rejected records), which would otherwise read every record.
const V7: &str = "CREATE INDEX records_rejected_by_subject ON records (subject) WHERE status = 2;";

/// Version 8: retractions in effect, by subject, so that erasure finds the
/// subjects whose retracted records may be past retention
/// (`Store::subjects_not_in_effect`) without reading every fact.
const V8: &str =
    "CREATE INDEX facts_retracted ON facts (subject) WHERE kind = 'retracted' AND status = 0;";

/// Version 9: beside each state, the first day on which a record of it is
/// past retention (`SubjectState::retention_ends`; NULL: no record), by
/// day, so that erasure finds the subjects it has work for
/// (`Store::subjects_past_retention`) without reading every state. States
/// stored before take `Day::MIN` (-1073741824): due at once, until erasure
/// has examined them and set the day.
const V9: &str = "ALTER TABLE states ADD COLUMN retention_ends INTEGER DEFAULT -1073741824;
CREATE INDEX states_by_retention ON states (retention_ends, subject);";

/// Version 10: the last day a principal's token authenticates (NULL: until
/// revoked), as days since 1970-01-01.
const V10: &str = "ALTER TABLE principals ADD COLUMN valid_until INTEGER;";

/// Version 11: the anchor of the audit chain, the last entry removed at
/// the end of the log's retention (`Store::prune_audit`); no row while
/// nothing was removed.
const V11: &str = "CREATE TABLE audit_anchor (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);";

/// Version 12: secrets the servers of a store share (`Store::secret`).
const V12: &str = "CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);";

/// Version 13: the last edition of each list published on a schedule
/// (`Store::publish_edition`), its subjects by list in identifier order.
const V13: &str = "CREATE TABLE editions (
    list     TEXT PRIMARY KEY,
    day      INTEGER NOT NULL,
    rulebook TEXT NOT NULL,
    drawn    INTEGER NOT NULL,
    members  INTEGER NOT NULL
);
CREATE TABLE edition_members (
    list    TEXT NOT NULL,
    subject TEXT NOT NULL,
    PRIMARY KEY (list, subject)
) WITHOUT ROWID;";

/// Version 14: whether the list named each subject of an edition on its
/// publication day, or a list that excludes it left it off. Subjects of
/// an edition published before count as named: they were told.
const V14: &str = "ALTER TABLE edition_members ADD COLUMN named INTEGER NOT NULL DEFAULT 1;";

/// Version 15: leases on work that one server of a store does for all
/// (`Store::lease`).
const V15: &str = "CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ms INTEGER NOT NULL
);";

/// Version 16: when a write last changed each state, itself or through the
/// entries of others that reach it (`Store::subjects_changed`), so that a
/// drawing of an edition drawn before reads only what changed since; and
/// each edition's mark, from which the next drawing reads. States written
/// before are stamped 0 and editions have no mark: the next drawing reads
/// every subject. No index: it would move an entry at every state written
/// (ingest was a tenth slower with one), where the drawing's one pass
/// through the states in key order reads the stamp beside each.
const V16: &str = "ALTER TABLE states ADD COLUMN changed_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE editions ADD COLUMN mark_ms INTEGER;";

/// Version 17: the recomputation of every file that the last rulebook
/// upload left to do (`Store::unfinished_recompute`): the rulebook and
/// the last subject refolded with it. No row once it is done. A store of
/// an earlier version has none: its uploads finished or, stopped half-way,
/// went unnoticed, as before.
const V17: &str = "CREATE TABLE recompute (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    rulebook TEXT NOT NULL,
    last_subject TEXT NOT NULL
);";

/// Version 18: resolutions in effect, by subject, so that erasure finds
/// the subjects whose records a reviewer's resolution retracted (an
/// objection upheld against the record) without reading every fact, as it
/// finds the providers' retractions by `facts_retracted`.
const V18: &str =
    "CREATE INDEX facts_resolved ON facts (subject) WHERE kind = 'resolved' AND status = 0;";

/// Every migration, in order: migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration::Sql(V1),
    Migration::Sql(V2),
    Migration::Code(v3),
    Migration::Sql(V4),
    Migration::Sql(V5),
    Migration::Sql(V6),
    Migration::Sql(V7),
    Migration::Sql(V8),
    Migration::Sql(V9),
    Migration::Sql(V10),
    Migration::Sql(V11),
    Migration::Sql(V12),
    Migration::Sql(V13),
    Migration::Sql(V14),
    Migration::Sql(V15),
    Migration::Sql(V16),
    Migration::Sql(V17),
    Migration::Sql(V18),
];

/// The schema version this code writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`VERSION`], each migration in its own
/// transaction, or refuses a newer one.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, VERSION)
}

/// [`migrate`] up to `target` only (for the tests of one migration).
fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(db("create schema_version"))?;
    let found = current(conn)?;
    if found > VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {found}, newer than version {VERSION} that this socred \
             knows: open it with the socred that wrote it, or a newer one"
        )));
    }
    for (index, migration) in MIGRATIONS
        .iter()
        .enumerate()
        .take(usize::try_from(target).unwrap_or(0))
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let version = index as i64 + 1;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db("begin a migration"))?;
        // Another process may have migrated meanwhile: check again under the lock.
        if current(&tx)? >= version {
            continue;
        }
        match migration {
            Migration::Sql(sql) => tx
                .execute_batch(sql)
                .map_err(db(&format!("apply schema migration {version}")))?,
            Migration::Code(step) => step(&tx)?,
        }
        tx.execute("DELETE FROM schema_version", [])
            .map_err(db("record the schema version"))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )
        .map_err(db("record the schema version"))?;
        tx.commit()
            .map_err(db(&format!("commit schema migration {version}")))?;
    }
    Ok(())
}

fn current(conn: &Connection) -> Result<i64, StoreError> {
    let found: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(db("read schema_version"))?
        .flatten();
    Ok(found.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database of schema 1 keeps its records through migration 2, which
    /// rebuilds the records table, and the record key stays unique.
    #[test]
    fn migration_2_keeps_records_and_their_key() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(V1).expect("schema 1");
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);
             INSERT INTO schema_version (version) VALUES (1);
             INSERT INTO records VALUES ('110101198001010010', 'p', 'r1', 't', 1, 2, '{}', NULL, 0, 'p', 5, 0, NULL, NULL);
             INSERT INTO records VALUES ('110101198001010029', 'p', 'r2', 't', 3, 4, '{}', 'doc', 1, 'p', 6, 7, NULL, NULL);",
        )
        .expect("rows of schema 1");
        migrate(&mut conn).expect("migrate");
        assert_eq!(current(&conn).expect("version"), VERSION);
        let rows: Vec<(String, String, i64, Option<String>, i64)> = conn
            .prepare(
                "SELECT subject, id, decided_at, document, pending_seq FROM records ORDER BY id",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .expect("read records");
        assert_eq!(
            rows,
            vec![
                ("110101198001010010".into(), "r1".into(), 2, None, 0),
                (
                    "110101198001010029".into(),
                    "r2".into(),
                    4,
                    Some("doc".into()),
                    7
                ),
            ]
        );
        let again = conn.execute(
            "INSERT INTO records (subject, provider, id, type, occurred_at, decided_at, fields, document, \
             status, submitted_by, submitted_at_ms, pending_seq, reviewed_by, review_note) \
             VALUES ('110101198001010037', 'p', 'r1', 't', 1, 2, '{}', NULL, 0, 'p', 5, 0, NULL, NULL) \
             ON CONFLICT DO NOTHING",
            [],
        );
        assert_eq!(again.expect("insert"), 0, "(provider, id) must stay unique");
    }

    /// The subjects of an edition published before schema 14 count as
    /// named (they were told); a new edition keeps what it is given.
    #[test]
    fn migration_14_counts_earlier_editions_named() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate_to(&mut conn, 13).expect("schema 13");
        conn.execute_batch(
            "INSERT INTO editions VALUES ('red', 20000, 'rb@1', 20000, 1);
             INSERT INTO edition_members VALUES ('red', '110101198001010010');",
        )
        .expect("an edition of schema 13");
        migrate(&mut conn).expect("migrate");
        assert_eq!(current(&conn).expect("version"), VERSION);
        conn.execute(
            "INSERT INTO edition_members (list, subject, named) \
             VALUES ('red', '110101198001010029', 0)",
            [],
        )
        .expect("a subject left off");
        let named: Vec<(String, bool)> = conn
            .prepare("SELECT subject, named FROM edition_members ORDER BY subject")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .expect("read the edition");
        assert_eq!(
            named,
            vec![
                ("110101198001010010".into(), true),
                ("110101198001010029".into(), false)
            ]
        );
    }

    /// Schema 16 stamps states written before with 0 and leaves editions
    /// published before without a mark, so that the next drawing reads
    /// every subject; the changed subjects are read in key order, without
    /// a sort.
    #[test]
    fn migration_16_marks_nothing_changed() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate_to(&mut conn, 15).expect("schema 15");
        conn.execute_batch(
            "INSERT INTO states (subject, state, sources, facts, records) \
                 VALUES ('110101198001010010', x'01', 0, 0, x'');
             INSERT INTO editions VALUES ('red', 20000, 'rb@1', 20000, 1);",
        )
        .expect("a state and an edition of schema 15");
        migrate(&mut conn).expect("migrate");
        let (changed, mark): (i64, Option<i64>) = conn
            .query_row(
                "SELECT changed_ms, (SELECT mark_ms FROM editions) FROM states",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("read them back");
        assert_eq!((changed, mark), (0, None));
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT subject FROM states WHERE subject > '' \
                 AND changed_ms >= 5 ORDER BY subject LIMIT 10",
            )
            .and_then(|mut stmt| stmt.query_map([], |row| row.get::<_, String>(3))?.collect())
            .expect("plan");
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "no sort: {plan:?}"
        );
    }

    /// Schemas 6 to 8 find the subjects with records not in effect, and a
    /// subject's such records, through their partial indexes: the queries
    /// erasure runs (`Store::subjects_not_in_effect`,
    /// `WriteTx::records_not_in_effect`) read no other record.
    #[test]
    fn migration_7_indexes_rejected_records_by_subject() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn).expect("migrate");
        for query in [
            "EXPLAIN QUERY PLAN SELECT subject FROM records WHERE status = 1 AND subject > '' \
                 AND decided_at <= 20000 \
             UNION SELECT subject FROM records WHERE status = 2 AND subject > '' \
                 AND decided_at <= 20000 \
             UNION SELECT f.subject FROM facts f \
                 JOIN records r ON r.provider = f.provider AND r.id = f.record \
                 WHERE f.kind = 'retracted' AND f.status = 0 AND f.subject > '' \
                 AND r.decided_at <= 20000 \
             ORDER BY 1 LIMIT 10",
            "EXPLAIN QUERY PLAN SELECT id FROM records WHERE status = 1 AND subject = '110101198001010037' \
             UNION ALL SELECT id FROM records WHERE status = 2 AND subject = '110101198001010037'",
        ] {
            let plan: Vec<String> = conn
                .prepare(query)
                .and_then(|mut stmt| stmt.query_map([], |row| row.get::<_, String>(3))?.collect())
                .expect("plan");
            for index in ["records_pending_by_subject", "records_rejected_by_subject"] {
                assert!(
                    plan.iter().any(|step| step.contains(index)),
                    "{query}: {index} in {plan:?}"
                );
            }
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN")),
                "{query}: {plan:?}"
            );
            if query.contains("FROM facts") {
                assert!(
                    plan.iter().any(|step| step.contains("facts_retracted")),
                    "{query}: {plan:?}"
                );
                // The retracted record's decision day, by its key.
                assert!(
                    plan.iter().any(|step| step.contains("records_by_key")),
                    "{query}: {plan:?}"
                );
            }
        }
    }

    /// Schema 9 finds the subjects with a record past retention through the
    /// day kept beside each state, a page at a time, without reading the
    /// states; a state stored before it is due on `Day::MIN`.
    #[test]
    fn migration_9_indexes_states_by_the_day_their_retention_ends() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn).expect("migrate");
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT retention_ends, subject FROM states \
                 WHERE retention_ends <= 20000 AND (retention_ends, subject) > (0, '') \
                 ORDER BY retention_ends, subject LIMIT 10",
            )
            .and_then(|mut stmt| stmt.query_map([], |row| row.get::<_, String>(3))?.collect())
            .expect("plan");
        assert!(
            plan.iter()
                .any(|step| step.contains("COVERING INDEX states_by_retention")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
        // A row written before the column existed reads as due at once.
        conn.execute(
            "INSERT INTO states (subject, state, sources, facts, records) \
             VALUES ('110101198001010010', x'00', 0, 0, x'')",
            [],
        )
        .expect("a state row without the day");
        let day: i64 = conn
            .query_row("SELECT retention_ends FROM states", [], |row| row.get(0))
            .expect("the day");
        assert_eq!(day, i64::from(socred_core::Day::MIN.0));
    }

    /// Schema 5 finds the subjects with objections in effect through its
    /// partial index, not by reading every fact.
    #[test]
    fn migration_5_indexes_the_objections_in_effect() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn).expect("migrate");
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT DISTINCT subject FROM facts \
                 WHERE kind = 'disputed' AND status = 0 AND subject > '' ORDER BY subject LIMIT 10",
            )
            .and_then(|mut stmt| stmt.query_map([], |row| row.get::<_, String>(3))?.collect())
            .expect("plan");
        assert!(
            plan.iter().any(|step| step.contains("facts_disputed")),
            "{plan:?}"
        );
    }

    /// Schema 6 finds a subject's records waiting for review through its
    /// partial index, not by reading every record.
    #[test]
    fn migration_6_indexes_pending_records_by_subject() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn).expect("migrate");
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT id FROM records \
                 WHERE status = 1 AND subject = '110101198001010037' ORDER BY pending_seq LIMIT 10",
            )
            .and_then(|mut stmt| stmt.query_map([], |row| row.get::<_, String>(3))?.collect())
            .expect("plan");
        assert!(
            plan.iter()
                .any(|step| step.contains("records_pending_by_subject")),
            "{plan:?}"
        );
    }

    /// A database of schema 2 (states as JSON compressed with LZ4, or as
    /// JSON text) comes out of migration 3 with every state in the binary
    /// form, equal to what it read before, each listing the row numbers of
    /// its records in effect, and records keeping their row numbers.
    #[test]
    fn migration_3_converts_states_and_lists_records() {
        use socred_store::conformance::{engine, person, record};
        use socred_store::{close_open_ends, decode_state, fold_subject};

        use crate::tx::decode_rowids;

        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(V1).expect("schema 1");
        conn.execute_batch(V2).expect("schema 2");
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (2);")
            .expect("version 2");
        let engine = engine();
        let fare = engine.rulebook.catalog[0].id;
        let (a, b) = (person(1), person(2));
        let insert = |subject: socred_core::SubjectId, id: &str, status: i64| {
            conn.execute(
                "INSERT INTO records VALUES (?1, 'p', ?2, ?3, 19000, 19001, '{}', NULL, ?4, 'p', 5, 0, NULL, NULL)",
                params![subject.as_str(), id, &*fare, status],
            )
            .expect("insert a record");
            conn.last_insert_rowid()
        };
        let padding = insert(person(3), "r0", 0);
        conn.execute("DELETE FROM records WHERE rowid = ?1", [padding])
            .expect("leave a gap in the row numbers");
        let a1 = insert(a, "r1", 0);
        insert(a, "r2", 1);
        let b1 = insert(b, "r3", 0);
        let a3 = insert(a, "r4", 0);
        let folded = |subject, ids: &[&str]| {
            let records: Vec<_> = ids
                .iter()
                .map(|id| {
                    record(
                        &engine,
                        id,
                        subject,
                        &fare,
                        "2022-01-02",
                        Default::default(),
                    )
                })
                .collect();
            let mut state = fold_subject(&engine, subject, &records, &[]);
            close_open_ends(&mut state);
            let json = serde_json::to_string(&state).expect("serialise");
            normalise_state(&mut state);
            // A JSON state does not say which rulebook folded it.
            state.rulebook = None;
            (state, json)
        };
        let (state_a, json_a) = folded(a, &["r1", "r4"]);
        let (state_b, json_b) = folded(b, &["r3"]);
        let compressed = lz4_flex::block::compress_prepend_size_with_dict(
            json_a.as_bytes(),
            V2_STATE_DICTIONARY,
        );
        conn.execute(
            "INSERT INTO states VALUES (?1, ?2, 0, 0)",
            params![a.as_str(), compressed],
        )
        .expect("a compressed state");
        conn.execute(
            "INSERT INTO states VALUES (?1, ?2, 0, 0)",
            params![b.as_str(), json_b],
        )
        .expect("a state as text");

        migrate(&mut conn).expect("migrate");
        assert_eq!(current(&conn).expect("version"), VERSION);
        for (subject, state, rowids) in [(a, state_a, vec![a1, a3]), (b, state_b, vec![b1])] {
            let (stored, list): (Vec<u8>, Vec<u8>) = conn
                .query_row(
                    "SELECT state, records FROM states WHERE subject = ?1",
                    [subject.as_str()],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .expect("a state of schema 3");
            assert_eq!(decode_state(subject, &stored).expect("binary"), state);
            assert_eq!(decode_rowids(subject, &list).expect("row numbers"), rowids);
        }
        let seq: i64 = conn
            .query_row("SELECT seq FROM records WHERE id = 'r4'", [], |row| {
                row.get(0)
            })
            .expect("record r4");
        assert_eq!(seq, a3, "records keep their row numbers");
        let by_subject: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE name = 'records_by_subject'",
                [],
                |row| row.get(0),
            )
            .optional()
            .expect("read the schema");
        assert_eq!(by_subject, None, "the index by subject is gone");
    }
}
