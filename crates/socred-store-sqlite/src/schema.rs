//! The SQLite schema as numbered migrations, applied in order when a store
//! opens. `schema_version` holds the number of migrations applied; a file
//! written by a newer socred (a higher number than this code knows) is
//! refused rather than misread.
//!
//! Migrations are append-only: never edit one that has shipped, add the
//! next.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use socred_store::StoreError;

use crate::db;

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

/// Every migration, in order: migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2];

/// The schema version this code writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`VERSION`], each migration in its own
/// transaction, or refuses a newer one.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(db("create schema_version"))?;
    let found = current(conn)?;
    if found > VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {found}, newer than version {VERSION} that this socred \
             knows: open it with the socred that wrote it, or a newer one"
        )));
    }
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
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
        tx.execute_batch(sql)
            .map_err(db(&format!("apply schema migration {version}")))?;
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
            "INSERT INTO records VALUES ('110101198001010037', 'p', 'r1', 't', 1, 2, '{}', NULL, 0, 'p', 5, 0, NULL, NULL) \
             ON CONFLICT DO NOTHING",
            [],
        );
        assert_eq!(again.expect("insert"), 0, "(provider, id) must stay unique");
    }
}
