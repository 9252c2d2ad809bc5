//! The audit log by subject (what a subject sees in its access log), kept
//! off the path of the commits that every answer waits for.
//!
//! An index of the audit table by subject inside the database would have
//! every audit entry dirty a random index page in the commit its answer
//! waits for: about a third of a decision's processor time when measured.
//! So the index is derived data in a file of its own,
//! `DIR/socred-audit-index.sqlite`: a thread reads the entries appended
//! since the last round (`upto`), sorts them by bucket of consecutive
//! entries and subject ([`BUCKET_ENTRIES`]) and adds them in one
//! transaction of that file every few seconds, at a lower scheduling
//! priority, so that each index page is written once a round rather than
//! once a commit, and never while an answer waits.
//!
//! A subject's entries are then those the index names, each read back from
//! the audit table and checked to still be about the subject, followed by
//! a scan of the entries after `upto` (at most a round's worth). The index
//! file holds nothing that the database does not: deleted, it is rebuilt;
//! if it does not match the database (its last entry's hash differs, as
//! after restoring the database from a backup), it is rebuilt from the
//! start. Its commits are not fsynced: one lost to a power cut is redone.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use socred_core::SubjectId;
use socred_store::StoreError;

use crate::db;

/// The index file inside the data directory.
pub const INDEX_FILE_NAME: &str = "socred-audit-index.sqlite";
/// Pause between two rounds of the indexing thread. Longer rounds share
/// index pages between more entries (one page write for all of a page's
/// new entries) and leave the cores to the answers for longer; what a
/// round has not indexed yet is scanned by the readers of the access log.
const ROUND_PAUSE: Duration = Duration::from_secs(5);
/// The indexing thread's scheduling priority (`nice`): it yields the cores
/// to the threads that answer decisions, which it otherwise slowed by a
/// third.
#[cfg(target_os = "linux")]
const NICE: i32 = 10;
/// Entries indexed in one transaction at most.
const ROUND_ENTRIES_MAX: i64 = 200_000;
/// Audit entries per bucket of the index: the index is ordered by bucket
/// first, so a round's entries (the newest) all land in the last bucket or
/// two, and a round rewrites at most a bucket's pages (about 9,000 of them)
/// however long the log has grown. Ordered by subject alone, a round of
/// entries about as many subjects rewrote a page per entry once the index
/// outgrew them, and the indexer fell further behind the longer the
/// registry ran. A subject's access log reads one range per bucket.
const BUCKET_ENTRIES: i64 = 1 << 20;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_by_subject (
    bucket  INTEGER NOT NULL,
    subject TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (bucket, subject, seq)
) WITHOUT ROWID;
-- The bucket size the index was built with.
CREATE TABLE IF NOT EXISTS layout (
    one    INTEGER PRIMARY KEY CHECK (one = 1),
    bucket INTEGER NOT NULL
);
-- The last audit entry indexed, and its hash (to tell another database).
CREATE TABLE IF NOT EXISTS indexed (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    upto INTEGER NOT NULL,
    hash TEXT NOT NULL
);
-- The database's anchor when the index last dropped the entries removed
-- at the end of the log's retention (those up to it).
CREATE TABLE IF NOT EXISTS pruned (
    one     INTEGER PRIMARY KEY CHECK (one = 1),
    through INTEGER NOT NULL
);";

/// The index file, for reads (one connection: reads are rare, a person
/// looking at their access log).
pub(crate) struct AuditIndex {
    path: PathBuf,
    /// Entries per bucket.
    bucket: i64,
    reader: Mutex<Option<Connection>>,
    /// Dropped with the store, which ends the indexing thread.
    stop: Option<SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for AuditIndex {
    /// Ends the indexing thread and waits for it, so that its connections
    /// to the index file are closed when the store is: a connection left
    /// open could otherwise checkpoint into, or delete the log of, a file
    /// that a store opened next uses.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for AuditIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditIndex")
            .field("path", &self.path)
            .finish()
    }
}

fn open_index(path: &Path, bucket: i64) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path).map_err(|error| {
        StoreError::Unavailable(format!("cannot open {}: {error}", path.display()))
    })?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(db("set the audit index's busy timeout"))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .map_err(db("configure the audit index"))?;
    conn.execute_batch(SCHEMA)
        .map_err(db("create the audit index"))?;
    // Built by an earlier socred (ordered by subject alone) or with
    // another bucket size: emptied, to be built again from the log.
    let tx = conn
        .transaction()
        .map_err(db("check the audit index's layout"))?;
    let built: Option<i64> = tx
        .query_row("SELECT bucket FROM layout WHERE one = 1", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(db("check the audit index's layout"))?;
    if built != Some(bucket) {
        tx.execute_batch(
            "DROP TABLE IF EXISTS audit_subjects; DELETE FROM audit_by_subject; DELETE FROM indexed;",
        )
        .map_err(db("empty the audit index"))?;
        tx.execute(
            "INSERT INTO layout (one, bucket) VALUES (1, ?1) \
             ON CONFLICT (one) DO UPDATE SET bucket = excluded.bucket",
            [bucket],
        )
        .map_err(db("record the audit index's layout"))?;
    }
    tx.commit().map_err(db("check the audit index's layout"))?;
    Ok(conn)
}

/// A read-only connection to the database, whose audit table is indexed.
fn open_source(database: &Path) -> Result<Connection, StoreError> {
    let source = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| {
        StoreError::Unavailable(format!("cannot open {}: {error}", database.display()))
    })?;
    source
        .busy_timeout(Duration::from_secs(10))
        .map_err(db("set the busy timeout"))?;
    Ok(source)
}

impl AuditIndex {
    /// Opens (creating if needed) the index beside `database` and starts the
    /// thread that keeps it up to date.
    pub fn start(dir: &Path, database: &Path) -> Result<AuditIndex, StoreError> {
        AuditIndex::start_with(dir, database, BUCKET_ENTRIES)
    }

    /// [`AuditIndex::start`] with `bucket` entries per bucket.
    fn start_with(dir: &Path, database: &Path, bucket: i64) -> Result<AuditIndex, StoreError> {
        let path = dir.join(INDEX_FILE_NAME);
        let mut index = open_index(&path, bucket)?;
        let source = open_source(database)?;
        // A round now, so that a rebuild after a restore starts at once.
        round(&source, &mut index, bucket)?;
        let (stop, stopped) = sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("socred-audit-index".into())
            .spawn(move || run(source, index, stopped, bucket))
            .map_err(|error| {
                StoreError::Unavailable(format!("cannot start the audit indexer: {error}"))
            })?;
        Ok(AuditIndex {
            path: path.clone(),
            bucket,
            reader: Mutex::new(Some(open_index(&path, bucket)?)),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Indexes every entry not indexed yet, on connections of its own.
    pub fn index_now(&self, database: &Path) -> Result<usize, StoreError> {
        let source = open_source(database)?;
        let mut index = open_index(&self.path, self.bucket)?;
        let mut total = 0;
        loop {
            let indexed = round(&source, &mut index, self.bucket)?;
            if indexed == 0 {
                return Ok(total);
            }
            total += indexed;
        }
    }

    /// What the index says that the audit log does not, for `socred
    /// verify`: entries about a subject missing from it (that subject's
    /// access log would not show them) and rows naming an entry that is
    /// not about that subject. Each problem is a sentence; none when the
    /// index agrees with the log up to the last entry it covers. An index
    /// that no longer matches the database at all (its last entry's hash)
    /// is rebuilt at the next start, and is not judged here.
    pub fn check(&self, database: &Path) -> Result<Vec<String>, StoreError> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        let source = open_source(database)?;
        let mut index = open_index(&self.path, self.bucket)?;
        let tx = index.transaction().map_err(db("read the audit index"))?;
        let mark: Option<(i64, String)> = tx
            .query_row("SELECT upto, hash FROM indexed WHERE one = 1", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
            .map_err(db("read the audit index"))?;
        let Some((upto, hash)) = mark else {
            return Ok(Vec::new());
        };
        let found: Option<String> = source
            .query_row("SELECT hash FROM audit WHERE seq = ?1", [upto], |row| {
                row.get(0)
            })
            .optional()
            .map_err(db("read the audit log"))?;
        if found.as_deref() != Some(hash.as_str()) {
            return Ok(Vec::new());
        }
        let through: i64 = tx
            .query_row("SELECT through FROM pruned WHERE one = 1", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(db("read the audit index"))?
            .unwrap_or(0);
        // Every entry about a subject, up to `upto`, is in the index.
        let (mut missing, mut first_missing) = (0u64, None);
        {
            let mut entries = source
                .prepare(
                    "SELECT seq, subject FROM audit WHERE seq > ?1 AND seq <= ?2 \
                     AND subject IS NOT NULL ORDER BY seq",
                )
                .map_err(db("read the audit log"))?;
            let mut indexed = tx
                .prepare_cached(
                    "SELECT 1 FROM audit_by_subject WHERE bucket = ?1 AND subject = ?2 AND seq = ?3",
                )
                .map_err(db("read the audit index"))?;
            let mut rows = entries
                .query(params![through, upto])
                .map_err(db("read the audit log"))?;
            while let Some(row) = rows.next().map_err(db("read the audit log"))? {
                let seq: i64 = row.get(0).map_err(db("read the audit log"))?;
                let subject: String = row.get(1).map_err(db("read the audit log"))?;
                let present = indexed
                    .exists(params![seq / self.bucket, subject, seq])
                    .map_err(db("read the audit index"))?;
                if !present {
                    missing += 1;
                    first_missing.get_or_insert((seq, subject));
                }
            }
        }
        // Every row of the index names an entry about its subject.
        let (mut wrong, mut first_wrong) = (0u64, None);
        {
            let mut rows_of_index = tx
                .prepare("SELECT bucket, subject, seq FROM audit_by_subject")
                .map_err(db("read the audit index"))?;
            let mut about = source
                .prepare_cached("SELECT subject FROM audit WHERE seq = ?1")
                .map_err(db("read the audit log"))?;
            let mut rows = rows_of_index
                .query([])
                .map_err(db("read the audit index"))?;
            while let Some(row) = rows.next().map_err(db("read the audit index"))? {
                let bucket: i64 = row.get(0).map_err(db("read the audit index"))?;
                let subject: String = row.get(1).map_err(db("read the audit index"))?;
                let seq: i64 = row.get(2).map_err(db("read the audit index"))?;
                let logged: Option<Option<String>> = about
                    .query_row([seq], |row| row.get(0))
                    .optional()
                    .map_err(db("read the audit log"))?;
                let agrees = bucket == seq / self.bucket
                    && seq <= upto
                    && logged.as_ref().and_then(Option::as_deref) == Some(subject.as_str());
                // Entries removed at the end of retention may linger until
                // the indexer's next round drops them.
                if !agrees && logged.is_some() {
                    wrong += 1;
                    first_wrong.get_or_insert((seq, subject));
                }
            }
        }
        Ok(socred_store::audit_by_subject_problems(
            &format!("the audit index {}", self.path.display()),
            (missing, first_missing),
            (wrong, first_wrong),
            "Stop the server, delete the index file, and it is rebuilt from the log at the next \
             start",
        ))
    }

    /// The seqs of `subject`'s entries after `after`, at most `limit`, and
    /// the last entry the index covers: entries after it are not in it.
    pub fn entries_of(
        &self,
        subject: SubjectId,
        after: i64,
        limit: i64,
    ) -> Result<(Vec<i64>, i64), StoreError> {
        let mut slot = self
            .reader
            .lock()
            .map_err(|_| StoreError::Unavailable("the audit index was poisoned".into()))?;
        if slot.is_none() {
            *slot = Some(open_index(&self.path, self.bucket)?);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(StoreError::Unavailable("the audit index is closed".into()));
        };
        // One read transaction: the seqs and `upto` agree.
        let tx = conn.transaction().map_err(db("read the audit index"))?;
        let upto: i64 = tx
            .query_row("SELECT upto FROM indexed WHERE one = 1", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(db("read the audit index"))?
            .unwrap_or(0);
        let mut seqs: Vec<i64> = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq FROM audit_by_subject WHERE bucket = ?1 AND subject = ?2 AND seq > ?3 \
                     ORDER BY seq LIMIT ?4",
                )
                .map_err(db("read the audit index"))?;
            // Buckets hold consecutive entries: read in bucket order, the
            // seqs come in order.
            let mut bucket = after.saturating_add(1).max(0) / self.bucket;
            while bucket <= upto / self.bucket && (seqs.len() as i64) < limit {
                let rest = limit - seqs.len() as i64;
                let found = stmt
                    .query_map(params![bucket, subject.as_str(), after, rest], |row| {
                        row.get(0)
                    })
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<i64>>>())
                    .map_err(db("read the audit index"))?;
                seqs.extend(found);
                bucket += 1;
            }
        }
        drop(tx);
        Ok((seqs, upto))
    }
}

fn run(source: Connection, mut index: Connection, stopped: Receiver<()>, bucket: i64) {
    lower_priority();
    let mut pause = ROUND_PAUSE;
    loop {
        match stopped.recv_timeout(pause) {
            Err(RecvTimeoutError::Timeout) => {}
            // The store is gone.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        // A failed round is tried again at the next; readers scan what the
        // index does not cover, so nothing is missed meanwhile.
        // A full round leaves more behind: the next starts at once.
        pause = match round(&source, &mut index, bucket) {
            Ok(entries) if entries as i64 >= ROUND_ENTRIES_MAX => Duration::ZERO,
            _ => ROUND_PAUSE,
        };
    }
}

/// Lowers this thread's priority (Linux: the priority of a thread id is
/// the thread's alone). Left as it is where that fails.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE);
}

/// Indexes the entries appended since the last round (all of them, from the
/// start, when the index does not match the database); returns how many
/// entries it went through.
pub(crate) fn round(
    source: &Connection,
    index: &mut Connection,
    bucket: i64,
) -> Result<usize, StoreError> {
    let mark: Option<(i64, String)> = index
        .query_row("SELECT upto, hash FROM indexed WHERE one = 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()
        .map_err(db("read the audit index"))?;
    let mut upto = 0;
    // The index does not match the database: emptied in the transaction
    // that indexes anew, so that no reader sees it half emptied.
    let mut clear = false;
    if let Some((seq, hash)) = mark {
        let found: Option<String> = source
            .query_row("SELECT hash FROM audit WHERE seq = ?1", [seq], |row| {
                row.get(0)
            })
            .optional()
            .map_err(db("read the audit log"))?;
        if found.as_deref() == Some(hash.as_str()) {
            upto = seq;
        } else {
            clear = true;
        }
    }
    let mut rows: Vec<(i64, String, i64)> = Vec::new();
    let mut last: Option<(i64, String)> = None;
    let mut scanned = 0;
    {
        let mut stmt = source
            .prepare_cached(
                "SELECT seq, subject, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(db("read the audit log"))?;
        let mut found = stmt
            .query(params![upto, ROUND_ENTRIES_MAX])
            .map_err(db("read the audit log"))?;
        while let Some(row) = found.next().map_err(db("read the audit log"))? {
            let seq: i64 = row.get(0).map_err(db("read the audit log"))?;
            let subject: Option<String> = row.get(1).map_err(db("read the audit log"))?;
            let hash: String = row.get(2).map_err(db("read the audit log"))?;
            scanned += 1;
            if let Some(subject) = subject {
                rows.push((seq / bucket, subject, seq));
            }
            last = Some((seq, hash));
        }
    }
    // Entries the database removed at the end of retention leave the
    // index too (readers skip them meanwhile: they are not in the log).
    let anchor: Option<i64> = source
        .query_row("SELECT seq FROM audit_anchor WHERE one = 1", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(db("read the audit chain's anchor"))?;
    let pruned: i64 = index
        .query_row("SELECT through FROM pruned WHERE one = 1", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(db("read the audit index"))?
        .unwrap_or(0);
    let forget = anchor.filter(|&anchor| anchor > pruned);
    if last.is_none() && !clear && forget.is_none() {
        return Ok(0);
    }
    // In key order, each page of the index is written once.
    rows.sort_unstable();
    let tx = index
        .transaction()
        .map_err(db("begin indexing the audit log"))?;
    if clear {
        tx.execute_batch("DELETE FROM audit_by_subject; DELETE FROM indexed;")
            .map_err(db("clear the audit index"))?;
    }
    if let Some(anchor) = forget {
        tx.execute(
            "DELETE FROM audit_by_subject WHERE bucket <= ?1 AND seq <= ?2",
            params![anchor / bucket, anchor],
        )
        .map_err(db("drop removed entries from the audit index"))?;
        tx.execute(
            "INSERT INTO pruned (one, through) VALUES (1, ?1) \
             ON CONFLICT (one) DO UPDATE SET through = excluded.through",
            [anchor],
        )
        .map_err(db("drop removed entries from the audit index"))?;
    }
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO audit_by_subject (bucket, subject, seq) VALUES (?1, ?2, ?3)",
            )
            .map_err(db("index the audit log"))?;
        for (bucket, subject, seq) in &rows {
            insert
                .execute(params![bucket, subject, seq])
                .map_err(db("index the audit log"))?;
        }
        if let Some((last_seq, last_hash)) = &last {
            tx.execute(
                "INSERT INTO indexed (one, upto, hash) VALUES (1, ?1, ?2) \
                 ON CONFLICT (one) DO UPDATE SET upto = excluded.upto, hash = excluded.hash",
                params![last_seq, last_hash],
            )
            .map_err(db("move the audit index's mark"))?;
        }
    }
    tx.commit().map_err(db("commit the audit index"))?;
    Ok(scanned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;
    use socred_store::conformance::person;
    use socred_store::{AuditDraft, Store};

    /// Entries removed at the end of the log's retention leave the index
    /// at its next round, and only they.
    #[tokio::test]
    async fn removed_entries_leave_the_index() {
        let data = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(data.path()).expect("open");
        let drafts: Vec<AuditDraft> = (0..30u16)
            .map(|n| AuditDraft {
                at_ms: i64::from(n),
                actor: "agency.rail".into(),
                role: "agency".into(),
                purpose: "ticket_sale".into(),
                action: "decide".into(),
                subject: Some(person(n % 2)),
                detail: format!("decision {n}"),
            })
            .collect();
        store.append_audit(drafts).await.expect("append");
        let elsewhere = tempfile::tempdir().expect("a temporary directory");
        let index = AuditIndex::start_with(elsewhere.path(), store.path(), 7).expect("an index");
        index.index_now(store.path()).expect("index everything");
        let seqs = |index: &AuditIndex| {
            let (seqs, _) = index.entries_of(person(0), 0, 100).expect("read");
            seqs
        };
        assert_eq!(seqs(&index).len(), 15);
        assert_eq!(store.prune_audit(16, 1000).await.expect("prune"), 16);
        index.index_now(store.path()).expect("a round");
        assert_eq!(seqs(&index), (17..=29).step_by(2).collect::<Vec<i64>>());
        let (all, _) = index.entries_of(person(1), 0, 100).expect("read");
        assert_eq!(all, (18..=30).step_by(2).collect::<Vec<i64>>());
    }

    /// An access log read through an index of buckets of seven entries
    /// gives what a scan of the log gives, page by page, from any point.
    #[tokio::test]
    async fn a_subjects_entries_read_across_buckets_in_order() {
        let data = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(data.path()).expect("open");
        let drafts: Vec<AuditDraft> = (0..60u16)
            .map(|n| AuditDraft {
                at_ms: 1_772_000_000_000,
                actor: "agency.rail".into(),
                role: "agency".into(),
                purpose: "ticket_sale".into(),
                action: "decide".into(),
                // Subject 1 in runs, with gaps of whole buckets.
                subject: (n % 5 != 0).then(|| person(u16::from(n % 20 < 8) + n % 3)),
                detail: format!("decision {n}"),
            })
            .collect();
        store.append_audit(drafts).await.expect("append");
        let all = store.audit(0, 100).await.expect("the log");
        let elsewhere = tempfile::tempdir().expect("a temporary directory");
        let index = AuditIndex::start_with(elsewhere.path(), store.path(), 7).expect("an index");
        index.index_now(store.path()).expect("index everything");
        for subject in [person(0), person(1), person(2), person(3)] {
            let expected: Vec<i64> = all
                .iter()
                .filter(|entry| entry.entry.subject == Some(subject))
                .map(|entry| entry.seq as i64)
                .collect();
            for after in [0, 6, 7, 13, 30, 59, 60] {
                let from: Vec<i64> = expected.iter().copied().filter(|&s| s > after).collect();
                for limit in [1, 3, 100] {
                    let (seqs, upto) = index.entries_of(subject, after, limit).expect("read");
                    assert_eq!(upto, 60);
                    let want: Vec<i64> = from.iter().copied().take(limit as usize).collect();
                    assert_eq!(seqs, want, "{subject} after {after}, {limit} at most");
                }
            }
        }
        // Opened with another bucket size, the index is built again.
        drop(index);
        let rebuilt = AuditIndex::start_with(elsewhere.path(), store.path(), 11).expect("reopen");
        let (seqs, _) = rebuilt.entries_of(person(1), 0, 100).expect("read");
        let expected: Vec<i64> = all
            .iter()
            .filter(|entry| entry.entry.subject == Some(person(1)))
            .map(|entry| entry.seq as i64)
            .collect();
        assert_eq!(seqs, expected);
    }
}
