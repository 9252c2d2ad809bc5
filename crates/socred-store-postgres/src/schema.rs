//! The PostgreSQL schema as numbered migrations, applied in order when a
//! store connects, and the Citus statements that distribute it.
//!
//! Each migration has two parts: the plain SQL, applied everywhere, and the
//! Citus statements (`create_distributed_table`, `create_reference_table`)
//! that spread its tables over a cluster. The second part runs only when
//! the store is asked to distribute ([`crate::Distribution::Citus`]) and the
//! `citus` extension is installed in the database; `socred_schema` records,
//! per migration, whether it ran, so that turning distribution on later
//! distributes every table made so far. Migrations are append-only: never
//! edit one that has shipped, add the next.
//!
//! Design rules, all for Citus (docs/citus.md):
//! - every table read by subject has the subject as the first column of its
//!   primary key and is distributed on it, co-located with `records`, so
//!   that everything a single-subject request reads or writes is on one
//!   shard;
//! - a unique constraint on a distributed table includes its distribution
//!   column (Citus refuses others): the record key (provider, id) is unique
//!   through `record_keys`, distributed on the record id;
//! - no sequences and no foreign keys between subject tables: numbers that
//!   must grow (audit `seq`, review queue positions, rulebook versions) are
//!   counted in rows updated inside the transaction that uses them;
//! - small shared tables (principals, rulebooks) are reference tables; the
//!   audit chain, its head, the totals and the numbering stay ordinary
//!   tables on the coordinator: one chain has one head.
//!
//! Text keys use the "C" collation: byte order is identifier order whatever
//! the database's locale, and comparisons are cheaper.

use socred_store::StoreError;
use tokio_postgres::Client;

use crate::pool::{describe, Fault};

/// One migration: its SQL, and the Citus statements for the tables it made.
struct Migration {
    sql: &'static str,
    citus: &'static [&'static str],
}

/// Version 1: records and their key claims, facts, states, list entries,
/// derived entries, principals, rulebooks, the audit chain, totals and numbering.
const V1_SQL: &str = r#"
-- Days are integers (days since 1970-01-01), subjects their 18 characters.
CREATE TABLE records (
    subject         text COLLATE "C" NOT NULL,
    provider        text COLLATE "C" NOT NULL,
    id              text COLLATE "C" NOT NULL,
    type            text NOT NULL,
    occurred_at     integer NOT NULL,
    decided_at      integer NOT NULL,
    fields          text NOT NULL,
    document        text,
    status          smallint NOT NULL,
    submitted_by    text NOT NULL,
    submitted_at_ms bigint NOT NULL,
    pending_seq     bigint NOT NULL,
    reviewed_by     text,
    review_note     text,
    PRIMARY KEY (subject, provider, id)
);
-- The review queue: pending records by queue position.
CREATE INDEX records_pending ON records (pending_seq) WHERE status = 1;

-- Which subject holds each record key. The key (provider, id) is unique
-- whatever the subject; Citus accepts that constraint only on a table
-- distributed on one of its columns, hence this table, distributed on the id.
CREATE TABLE record_keys (
    id       text COLLATE "C" NOT NULL,
    provider text COLLATE "C" NOT NULL,
    subject  text COLLATE "C" NOT NULL,
    PRIMARY KEY (id, provider)
);

-- A fact's key is (subject, kind, record, day, reporter); consent facts name
-- no record and keep '' in record_provider and record_id.
CREATE TABLE facts (
    subject         text COLLATE "C" NOT NULL,
    kind            text COLLATE "C" NOT NULL,
    record_provider text COLLATE "C" NOT NULL,
    record_id       text COLLATE "C" NOT NULL,
    day             integer NOT NULL,
    reporter        text COLLATE "C" NOT NULL,
    body            text NOT NULL,
    status          smallint NOT NULL,
    submitted_by    text NOT NULL,
    submitted_at_ms bigint NOT NULL,
    pending_seq     bigint NOT NULL,
    reviewed_by     text,
    review_note     text,
    PRIMARY KEY (subject, kind, record_provider, record_id, day, reporter)
);
CREATE INDEX facts_pending ON facts (pending_seq) WHERE status = 1;

-- One folded state per subject (JSON, without the entries reaching it).
-- A row with a NULL state is a lock taken by a write in progress for a
-- subject that has none yet; it never outlives that write. `sources` says
-- the subject is the source of list or derived rows; `targets` lists the
-- other subjects those rows are about (space-separated), so that rewriting
-- them touches only the shards they are on.
CREATE TABLE states (
    subject text COLLATE "C" NOT NULL PRIMARY KEY,
    state   text,
    sources boolean NOT NULL DEFAULT false,
    targets text NOT NULL DEFAULT ''
);

-- Pieces of list entries outside suspensions: `subject` is on `list` on the
-- days [from_day, until_day); `source` made the entry (itself, or the
-- company whose entry reaches it); entry_* is the whole entry.
CREATE TABLE list_entries (
    subject     text COLLATE "C" NOT NULL,
    list        text COLLATE "C" NOT NULL,
    source      text COLLATE "C" NOT NULL,
    from_day    integer NOT NULL,
    until_day   integer NOT NULL,
    entry_from  integer NOT NULL,
    entry_until integer NOT NULL,
    PRIMARY KEY (subject, list, source, from_day, until_day, entry_from, entry_until)
);
CREATE INDEX list_entries_by_list ON list_entries (list, subject);

-- Entries that `source` passes on to `target` (JSON of a DerivedEntry).
CREATE TABLE derived (
    target text COLLATE "C" NOT NULL,
    source text COLLATE "C" NOT NULL,
    n      integer NOT NULL,
    entry  text NOT NULL,
    PRIMARY KEY (target, source, n)
);

CREATE TABLE principals (
    id           text COLLATE "C" NOT NULL PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL,
    scope        text,
    record_types text NOT NULL,
    token_hash   text COLLATE "C" NOT NULL UNIQUE,
    revoked      boolean NOT NULL
);

CREATE TABLE rulebooks (
    seq            bigint NOT NULL PRIMARY KEY,
    label          text COLLATE "C" NOT NULL,
    body           text NOT NULL,
    uploaded_at_ms bigint NOT NULL,
    uploaded_by    text NOT NULL
);
CREATE INDEX rulebooks_by_label ON rulebooks (label);

-- The audit chain: one table, one head.
CREATE TABLE audit (
    seq     bigint NOT NULL PRIMARY KEY,
    at_ms   bigint NOT NULL,
    actor   text NOT NULL,
    role    text NOT NULL,
    purpose text NOT NULL,
    action  text NOT NULL,
    subject text COLLATE "C",
    detail  text NOT NULL,
    hash    text NOT NULL
);

-- The chain head, locked and moved by every appending transaction. Seq 0
-- is the empty chain.
CREATE TABLE audit_head (
    one  smallint NOT NULL PRIMARY KEY CHECK (one = 1),
    seq  bigint NOT NULL,
    hash text NOT NULL
);
INSERT INTO audit_head (one, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- The subject side of the audit log: which entries are about a subject, on
-- that subject's shard.
CREATE TABLE audit_subjects (
    subject text COLLATE "C" NOT NULL,
    seq     bigint NOT NULL,
    PRIMARY KEY (subject, seq)
);

-- Totals for metrics, striped so that concurrent writers do not queue on
-- one row: a transaction adds to the stripe of its connection (one row, so
-- no lock-order deadlock), a total is the sum of the stripes.
CREATE TABLE totals (
    stripe        smallint NOT NULL PRIMARY KEY,
    subjects      bigint NOT NULL DEFAULT 0,
    records       bigint NOT NULL DEFAULT 0,
    facts         bigint NOT NULL DEFAULT 0,
    pending       bigint NOT NULL DEFAULT 0,
    audit_entries bigint NOT NULL DEFAULT 0,
    principals    bigint NOT NULL DEFAULT 0,
    rulebooks     bigint NOT NULL DEFAULT 0
);
INSERT INTO totals (stripe) SELECT generate_series(0, 15);

-- Numbers handed out in order (review queue positions, rulebook versions):
-- the row stays locked until the transaction that took a number commits,
-- so numbers become visible in the order they were given.
CREATE TABLE numbering (
    name  text COLLATE "C" NOT NULL PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO numbering (name, value) VALUES ('pending_seq', 0), ('rulebook_seq', 0);
"#;

/// Distributes version 1 on Citus: subject tables on the subject, all
/// co-located with `records`; the key claims on the record id; principals
/// and rulebooks copied to every node. The audit chain, its head, the
/// totals and the numbering stay on the coordinator.
const V1_CITUS: &[&str] = &[
    "SELECT create_distributed_table('records', 'subject')",
    "SELECT create_distributed_table('facts', 'subject', colocate_with => 'records')",
    "SELECT create_distributed_table('states', 'subject', colocate_with => 'records')",
    "SELECT create_distributed_table('list_entries', 'subject', colocate_with => 'records')",
    "SELECT create_distributed_table('derived', 'target', colocate_with => 'records')",
    "SELECT create_distributed_table('audit_subjects', 'subject', colocate_with => 'records')",
    "SELECT create_distributed_table('record_keys', 'id', colocate_with => 'none')",
    "SELECT create_reference_table('principals')",
    "SELECT create_reference_table('rulebooks')",
];

/// Version 2: states in the binary form of `socred_store::codec` (names
/// written once, LZ4 from 512 bytes), an eighth to a third of their JSON
/// (`examples/compare.rs` prints it), in a `bytea` column.
///
/// The states already stored are kept as the UTF-8 bytes of their JSON
/// rather than converted here: converting means decoding and encoding
/// every state in socred, with the schema lock held and the server not
/// yet answering, while the type change is one statement the database
/// runs at copying speed. Readers tell the two apart by the first byte
/// (`crate::codec::stored_state`), and each JSON state becomes binary
/// when its subject is next refolded (any write about it, or
/// `recompute_all`, which follows every rulebook upload).
const V2_SQL: &str = r#"
ALTER TABLE states ALTER COLUMN state TYPE bytea USING convert_to(state, 'UTF8');
"#;

/// Version 3: list rows by their source, for `socred verify`, which
/// compares the rows stored from each subject with those a fresh fold
/// gives (`Store::list_rows_of`): without it, one full scan of
/// `list_entries` per subject. The write path needs none (it deletes a
/// source's rows by subject and source, on the primary key).
///
/// `IF NOT EXISTS`: on a large registry the index may be built beforehand
/// with `CREATE INDEX CONCURRENTLY list_entries_by_source ON list_entries
/// (source)`, which does not hold writes off while it runs (this migration
/// does: it runs in a transaction, where `CONCURRENTLY` is refused).
const V3_SQL: &str = r#"
CREATE INDEX IF NOT EXISTS list_entries_by_source ON list_entries (source);
"#;

/// Version 4: objections that are in effect, by subject, for the
/// reviewers' queue of open objections (`Store::disputed_subjects`), which
/// would otherwise scan every fact. `IF NOT EXISTS` for the same reason as
/// version 3.
const V4_SQL: &str = r#"
CREATE INDEX IF NOT EXISTS facts_disputed ON facts (subject) WHERE kind = 'disputed' AND status = 0;
"#;

/// Version 5: records a reviewer rejected, by subject, for erasure at the
/// end of retention (`Store::subjects_not_in_effect`), which would otherwise
/// read every record. `IF NOT EXISTS` for the same reason as version 3.
const V5_SQL: &str = r#"
CREATE INDEX IF NOT EXISTS records_rejected ON records (subject) WHERE status = 2;
"#;

/// Version 6: retractions in effect, by subject, for the same listing.
/// `IF NOT EXISTS` for the same reason as version 3.
const V6_SQL: &str = r#"
CREATE INDEX IF NOT EXISTS facts_retracted ON facts (subject) WHERE kind = 'retracted' AND status = 0;
"#;

/// Version 7: beside each state, the first day on which a record of it is
/// past retention (`SubjectState::retention_ends`; NULL: no record), by
/// day, so that erasure finds the subjects it has work for
/// (`Store::subjects_past_retention`) without reading every state. States
/// stored before take `Day::MIN` (-1073741824): due at once, until erasure
/// has examined them and set the day. `IF NOT EXISTS` for the same reason
/// as version 3.
const V7_SQL: &str = r#"
ALTER TABLE states ADD COLUMN IF NOT EXISTS retention_ends integer DEFAULT -1073741824;
CREATE INDEX IF NOT EXISTS states_by_retention ON states (retention_ends, subject);
"#;

/// Version 8: the last day a principal's token authenticates (NULL: until
/// revoked), as days since 1970-01-01. `IF NOT EXISTS` for the same reason
/// as version 3.
const V8_SQL: &str = r#"
ALTER TABLE principals ADD COLUMN IF NOT EXISTS valid_until integer;
"#;

/// Version 9: the anchor of the audit chain, the last entry removed at the
/// end of the log's retention (`Store::prune_audit`); no row while nothing
/// was removed. On the coordinator, with the chain and its head.
const V9_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS audit_anchor (
    one  smallint NOT NULL PRIMARY KEY CHECK (one = 1),
    seq  bigint NOT NULL,
    hash text NOT NULL
);
"#;

/// Version 10: secrets the servers of a store share (`Store::secret`). A
/// reference table on Citus, as principals are, so that every coordinator
/// reads the same.
const V10_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS secrets (
    name  text NOT NULL PRIMARY KEY,
    value bytea NOT NULL
);
"#;

/// Version 11: the last edition of each list published on a schedule
/// (`Store::publish_edition`). The editions are few, a reference table on
/// Citus; their subjects are distributed on the subject, as every table of
/// subjects is, and read by list through an index.
const V11_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS editions (
    list     text COLLATE "C" NOT NULL PRIMARY KEY,
    day      integer NOT NULL,
    rulebook text NOT NULL,
    drawn    integer NOT NULL,
    members  bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS edition_members (
    subject text COLLATE "C" NOT NULL,
    list    text COLLATE "C" NOT NULL,
    PRIMARY KEY (subject, list)
);
CREATE INDEX IF NOT EXISTS edition_members_by_list ON edition_members (list, subject);
"#;

/// Version 12: whether the list named each subject of an edition on its
/// publication day, or a list that excludes it left it off. Subjects of
/// an edition published before count as named: they were told.
const V12_SQL: &str = r#"
ALTER TABLE edition_members ADD COLUMN IF NOT EXISTS named boolean NOT NULL DEFAULT true;
"#;

/// Version 13: leases on work that one server of a store does for all
/// (`Store::lease`). A reference table on Citus, as secrets are, so that
/// every coordinator reads the same.
const V13_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS leases (
    name     text NOT NULL PRIMARY KEY,
    holder   text NOT NULL,
    until_ms bigint NOT NULL
);
"#;

/// Version 14: beside each state, when a write last changed it (the
/// instant the write began, in ms since the epoch: its own state, or the
/// entries of others that reach it), for `Store::subjects_changed`, with
/// no index: one would take an entry of its own at every state written,
/// where a drawing reads the stamps in one pass by subject; and beside each edition the mark of its
/// drawing (`Edition::mark_ms`). States stored before take 0 and editions
/// NULL: the next drawing reads every subject. `IF NOT EXISTS` for the
/// same reason as version 3.
const V14_SQL: &str = r#"
ALTER TABLE states ADD COLUMN IF NOT EXISTS changed_ms bigint NOT NULL DEFAULT 0;
ALTER TABLE editions ADD COLUMN IF NOT EXISTS mark_ms bigint;
"#;

/// Version 15: the recomputation of every file that the last rulebook
/// upload left to do (`Store::unfinished_recompute`): the rulebook and
/// the last subject refolded with it; no row once it is done.
const V15_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS recompute (
    one      int PRIMARY KEY CHECK (one = 1),
    rulebook text NOT NULL,
    last_subject text NOT NULL
);
"#;

/// Version 16: resolutions in effect, by subject, so that erasure finds
/// the subjects whose records a reviewer's resolution retracted without
/// reading every fact (`Store::subjects_not_in_effect`).
const V16_SQL: &str = r#"
CREATE INDEX IF NOT EXISTS facts_resolved ON facts (subject) WHERE kind = 'resolved' AND status = 0;
"#;

/// Every migration, in order: migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: V1_SQL,
        citus: V1_CITUS,
    },
    // Citus changes the column on every shard of the distributed table.
    Migration {
        sql: V2_SQL,
        citus: &[],
    },
    // No Citus statement: CREATE INDEX on a distributed table is propagated
    // by Citus to every shard, and a table distributed later takes its
    // indexes to its shards with `create_distributed_table`.
    Migration {
        sql: V3_SQL,
        citus: &[],
    },
    // Propagated by Citus like version 3's index.
    Migration {
        sql: V4_SQL,
        citus: &[],
    },
    // Likewise.
    Migration {
        sql: V5_SQL,
        citus: &[],
    },
    // Likewise.
    Migration {
        sql: V6_SQL,
        citus: &[],
    },
    // Citus propagates the new column to every shard, and the index like
    // version 3's.
    Migration {
        sql: V7_SQL,
        citus: &[],
    },
    // Citus changes the reference table on every node.
    Migration {
        sql: V8_SQL,
        citus: &[],
    },
    // A local table, like the chain's head.
    Migration {
        sql: V9_SQL,
        citus: &[],
    },
    Migration {
        sql: V10_SQL,
        citus: &["SELECT create_reference_table('secrets')"],
    },
    Migration {
        sql: V11_SQL,
        citus: &[
            "SELECT create_reference_table('editions')",
            "SELECT create_distributed_table('edition_members', 'subject', colocate_with => 'records')",
        ],
    },
    // Citus adds the column on every shard.
    Migration {
        sql: V12_SQL,
        citus: &[],
    },
    Migration {
        sql: V13_SQL,
        citus: &["SELECT create_reference_table('leases')"],
    },
    // Citus adds the column and the index on every shard of `states`, as
    // for version 7, and the column on every copy of the reference table
    // `editions`.
    Migration {
        sql: V14_SQL,
        citus: &[],
    },
    Migration {
        sql: V15_SQL,
        citus: &["SELECT create_reference_table('recompute')"],
    },
    // Citus creates the index on every shard of `facts`.
    Migration {
        sql: V16_SQL,
        citus: &[],
    },
];

/// The schema version this code writes.
pub const VERSION: i32 = MIGRATIONS.len() as i32;

/// Every Citus statement of every migration, in order (for docs and tests).
pub fn citus_statements() -> Vec<&'static str> {
    MIGRATIONS
        .iter()
        .flat_map(|m| m.citus.iter().copied())
        .collect()
}

/// Serialises migrations of several processes starting at once (any
/// constant: the key of an advisory lock).
const MIGRATION_LOCK: i64 = 0x736f_6372_6564_0001;

fn failed(context: &str) -> impl Fn(tokio_postgres::Error) -> Fault + '_ {
    move |error| {
        Fault::Store(StoreError::Unavailable(format!(
            "{context}: {}",
            describe(&error)
        )))
    }
}

/// How the migrations left the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Applied {
    /// The Citus statements of every migration have run.
    pub distributed: bool,
    /// The option was on but the `citus` extension is not installed.
    pub citus_missing: bool,
}

/// Brings the database to [`VERSION`], each migration in its own
/// transaction, and runs the Citus statements not run yet when
/// `distribute` is set and the extension is there. Refuses a database
/// written by a newer socred.
pub(crate) async fn migrate(client: &mut Client, distribute: bool) -> Result<Applied, Fault> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS socred_schema (\
                 version integer NOT NULL PRIMARY KEY, \
                 distributed boolean NOT NULL DEFAULT false)",
        )
        .await
        .map_err(failed("create the socred_schema table"))?;
    let found = current(client).await?;
    if found > VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {found}, newer than version {VERSION} that this socred \
             knows: connect with the socred that wrote it, or a newer one"
        ))
        .into());
    }
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        let version = index as i32 + 1;
        if version <= found {
            continue;
        }
        let tx = client
            .transaction()
            .await
            .map_err(failed("begin a migration"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(failed("wait for other migrations"))?;
        // Another process may have migrated meanwhile: check under the lock.
        let done = tx
            .query_opt(
                "SELECT 1 FROM socred_schema WHERE version = $1",
                &[&version],
            )
            .await
            .map_err(failed("read socred_schema"))?;
        if done.is_some() {
            continue;
        }
        tx.batch_execute(migration.sql).await.map_err(|error| {
            Fault::Store(StoreError::Unavailable(format!(
                "apply schema migration {version}: {}",
                describe(&error)
            )))
        })?;
        tx.execute(
            "INSERT INTO socred_schema (version, distributed) VALUES ($1, false)",
            &[&version],
        )
        .await
        .map_err(failed("record the schema version"))?;
        tx.commit()
            .await
            .map_err(failed("commit a schema migration"))?;
    }
    if !distribute {
        return Ok(Applied {
            distributed: all_distributed(client).await?,
            citus_missing: false,
        });
    }
    let citus = client
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])
        .await
        .map_err(failed("look for the citus extension"))?;
    if citus.is_none() {
        return Ok(Applied {
            distributed: false,
            citus_missing: true,
        });
    }
    distribute_all(client).await?;
    Ok(Applied {
        distributed: true,
        citus_missing: false,
    })
}

/// Runs the Citus statements of every migration not distributed yet, each
/// migration in one transaction with its mark.
async fn distribute_all(client: &mut Client) -> Result<(), Fault> {
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        let version = index as i32 + 1;
        let tx = client
            .transaction()
            .await
            .map_err(failed("begin distributing the schema"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(failed("wait for other migrations"))?;
        let row = tx
            .query_one(
                "SELECT distributed FROM socred_schema WHERE version = $1",
                &[&version],
            )
            .await
            .map_err(failed("read socred_schema"))?;
        let distributed: bool = row.try_get(0).map_err(failed("read socred_schema"))?;
        if distributed {
            continue;
        }
        for statement in migration.citus {
            tx.batch_execute(statement).await.map_err(|error| {
                Fault::Store(StoreError::Unavailable(format!(
                    "distribute schema version {version} on Citus (`{statement}`): {}",
                    describe(&error)
                )))
            })?;
        }
        tx.execute(
            "UPDATE socred_schema SET distributed = true WHERE version = $1",
            &[&version],
        )
        .await
        .map_err(failed("record the distribution"))?;
        tx.commit()
            .await
            .map_err(failed("commit the distribution"))?;
    }
    Ok(())
}

async fn current(client: &Client) -> Result<i32, Fault> {
    let row = client
        .query_one("SELECT COALESCE(MAX(version), 0) FROM socred_schema", &[])
        .await
        .map_err(failed("read socred_schema"))?;
    row.try_get(0).map_err(failed("read socred_schema"))
}

async fn all_distributed(client: &Client) -> Result<bool, Fault> {
    let row = client
        .query_one("SELECT bool_and(distributed) FROM socred_schema", &[])
        .await
        .map_err(failed("read socred_schema"))?;
    let all: Option<bool> = row.try_get(0).map_err(failed("read socred_schema"))?;
    Ok(all.unwrap_or(false))
}
