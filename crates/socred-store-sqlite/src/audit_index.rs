//! The audit log by subject (what a subject sees in its access log), kept
//! off the path of the commits that every answer waits for.
//!
//! An index of the audit table by subject inside the database would have
//! every audit entry dirty a random index page in the commit its answer
//! waits for: about a third of a decision's processor time when measured.
//! So the index is derived data in a file of its own,
//! `DIR/socred-audit-index.sqlite`: a thread reads the entries appended
//! since the last round (`upto`), sorts them by subject and adds them in one
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

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_subjects (
    subject TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (subject, seq)
) WITHOUT ROWID;
-- The last audit entry indexed, and its hash (to tell another database).
CREATE TABLE IF NOT EXISTS indexed (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    upto INTEGER NOT NULL,
    hash TEXT NOT NULL
);";

/// The index file, for reads (one connection: reads are rare, a person
/// looking at their access log).
pub(crate) struct AuditIndex {
    path: PathBuf,
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

fn open_index(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|error| {
        StoreError::Unavailable(format!("cannot open {}: {error}", path.display()))
    })?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(db("set the audit index's busy timeout"))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .map_err(db("configure the audit index"))?;
    conn.execute_batch(SCHEMA)
        .map_err(db("create the audit index"))?;
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
        let path = dir.join(INDEX_FILE_NAME);
        let mut index = open_index(&path)?;
        let source = open_source(database)?;
        // A round now, so that a rebuild after a restore starts at once.
        round(&source, &mut index)?;
        let (stop, stopped) = sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("socred-audit-index".into())
            .spawn(move || run(source, index, stopped))
            .map_err(|error| {
                StoreError::Unavailable(format!("cannot start the audit indexer: {error}"))
            })?;
        Ok(AuditIndex {
            path: path.clone(),
            reader: Mutex::new(Some(open_index(&path)?)),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Indexes every entry not indexed yet, on connections of its own.
    pub fn index_now(&self, database: &Path) -> Result<usize, StoreError> {
        let source = open_source(database)?;
        let mut index = open_index(&self.path)?;
        let mut total = 0;
        loop {
            let indexed = round(&source, &mut index)?;
            if indexed == 0 {
                return Ok(total);
            }
            total += indexed;
        }
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
            *slot = Some(open_index(&self.path)?);
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
        let seqs = tx
            .prepare_cached(
                "SELECT seq FROM audit_subjects WHERE subject = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![subject.as_str(), after, limit], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()
            })
            .map_err(db("read the audit index"))?;
        drop(tx);
        Ok((seqs, upto))
    }
}

fn run(source: Connection, mut index: Connection, stopped: Receiver<()>) {
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
        pause = match round(&source, &mut index) {
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
pub(crate) fn round(source: &Connection, index: &mut Connection) -> Result<usize, StoreError> {
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
    let mut rows: Vec<(String, i64)> = Vec::new();
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
                rows.push((subject, seq));
            }
            last = Some((seq, hash));
        }
    }
    if last.is_none() && !clear {
        return Ok(0);
    }
    // In key order, each page of the index is written once.
    rows.sort_unstable();
    let tx = index
        .transaction()
        .map_err(db("begin indexing the audit log"))?;
    if clear {
        tx.execute_batch("DELETE FROM audit_subjects; DELETE FROM indexed;")
            .map_err(db("clear the audit index"))?;
    }
    {
        let mut insert = tx
            .prepare_cached("INSERT OR IGNORE INTO audit_subjects (subject, seq) VALUES (?1, ?2)")
            .map_err(db("index the audit log"))?;
        for (subject, seq) in &rows {
            insert
                .execute(params![subject, seq])
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
