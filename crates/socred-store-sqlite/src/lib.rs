//! socred's embedded default store: bundled SQLite in WAL mode behind the
//! [`Store`] trait, so that a fresh machine runs the registry with nothing
//! installed.
//!
//! Durability: every write is one `BEGIN IMMEDIATE` transaction committed
//! with `synchronous = FULL`, so a write is on disk (WAL fsynced) before the
//! call returns, and a `kill -9` or power loss never loses an acknowledged
//! write. Concurrency: one writer connection behind a mutex (SQLite allows
//! one writer at a time anyway), a small pool of reader connections that
//! never wait for the writer (WAL). Blocking work runs on tokio's blocking
//! pool, except the two point reads on the hot path (a subject's state, a
//! principal by token), which take microseconds and never wait on a lock.
//!
//! The write logic itself is `socred_store::Writer`, shared with every
//! backend; this crate only says how rows are kept, and keeps decoded
//! histories and states in memory where that provably changes no answer
//! (see `cache.rs`).

mod audit_index;
mod cache;
mod schema;
mod tx;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use socred_core::state::{DerivedEntry, Span, SubjectState};
use socred_core::{Day, Engine, Fact, Record, Rulebook, SubjectId};
use socred_store::{
    clamp_limit, decode_state, empty_state, now_ms, reopen_entry, sort_derived, AuditDraft,
    AuditEntry, BlockingAudit, Counts, Drawing, Edition, EditionMember, EditionPage, Erasure,
    ItemKey, ListRow, Outcome, PendingItem, Principal, ReadMark, Role, RulebookVersion, Status,
    Store, StoreError, Submission, UnfinishedRecompute, VerifyReads, WriteTx, Writer,
};

use audit_index::AuditIndex;
pub use audit_index::INDEX_FILE_NAME;
pub use cache::HISTORY_RECORDS_DEFAULT;
use cache::{CoherentStates, StateCache, SubjectCache};
pub use schema::VERSION as SCHEMA_VERSION;
use tx::{
    day_of, decode_stored_state, raw_fact, raw_record, subject_of, SqliteTx, FACT_COLUMNS,
    RECORD_COLUMNS,
};

/// The database file inside the data directory.
pub const FILE_NAME: &str = "socred.sqlite";
/// What a backup's copy is called beside its file until it is complete
/// (`SqliteStore::backup_into`): a directory holding only such a file
/// holds a backup that was stopped, not a registry.
pub const PARTIAL_SUFFIX: &str = ".partial";
/// The page size of a database this store creates. A state row is about
/// 850 bytes on average and up to several KiB; a table clustered by
/// subject (`WITHOUT ROWID`) keeps at most about a quarter of a page in
/// its leaf, so with SQLite's default of 4 KiB a seventh of the states of
/// a demo city spilled into overflow pages (5,339 of the states table's
/// 11,522 pages), and rewriting such a state frees one page and takes
/// another. With 16 KiB none spills below 4 KiB, and ingest is about a
/// fifth faster (BENCHMARKS.md).
const PAGE_SIZE: u32 = 16384;
/// Reader connections kept open between reads.
const READERS_KEPT: usize = 8;
/// How long a connection waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Least time between two checkpoints.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(250);
/// Frames in the write-ahead log past which the writer brings it back to
/// its start (see [`Shared::restart_log`]): 16 MiB, 1,024 pages of
/// [`PAGE_SIZE`] (4,096 of a database made with 4 KiB pages).
const LOG_RESTART_BYTES: i64 = 16 << 20;
/// Subjects refolded per transaction by `recompute_all`.
const RECOMPUTE_BATCH: usize = 2000;

/// Wraps a driver error with what was being done.
pub(crate) fn db(context: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |error| {
        use rusqlite::ErrorCode;
        let message = format!("sqlite: {context}: {error}");
        match &error {
            rusqlite::Error::SqliteFailure(failure, _)
                if matches!(
                    failure.code,
                    ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase
                ) =>
            {
                StoreError::Corrupt(message)
            }
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(message),
            _ => StoreError::Unavailable(message),
        }
    }
}

struct Shared {
    path: PathBuf,
    writer: Mutex<WriterSide>,
    readers: Mutex<Vec<Connection>>,
    /// Decoded states, shared by the readers (see `cache.rs`).
    states: StateCache,
    /// Whole states kept in step with this store's writes (see `cache.rs`).
    coherent: CoherentStates,
    /// Wakes the checkpointer after a commit.
    checkpoint: SyncSender<()>,
    /// Bytes of frames in the write-ahead log at the checkpointer's last
    /// round.
    log_bytes: Arc<AtomicI64>,
    /// The audit log by subject (see `audit_index.rs`).
    audit_index: AuditIndex,
}

/// The writer connection and what only the writer may use.
struct WriterSide {
    conn: Connection,
    /// Decoded histories of recently folded subjects (see `cache.rs`).
    cache: SubjectCache,
}

/// The SQLite store. Cloning shares the connections.
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .finish()
    }
}

fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags).map_err(|error| {
        StoreError::Unavailable(format!("cannot open {}: {error}", path.display()))
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(db("set the busy timeout"))?;
    // The page size counts only for a database not created yet, and must
    // come before the switch to WAL, which writes the first page (see
    // [`PAGE_SIZE`]); a database of another page size keeps its own.
    // FULL: the WAL is fsynced at every commit, so an acknowledged write
    // survives power loss, not only a killed process. Checkpoints run on
    // their own thread (see `start_checkpointer`); the automatic one is
    // only a backstop should that thread fall behind.
    conn.execute_batch(&format!(
        "PRAGMA page_size = {PAGE_SIZE}; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; \
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536; PRAGMA mmap_size = 0; \
         PRAGMA wal_autocheckpoint = 262144; PRAGMA journal_size_limit = 67108864;",
    ))
    .map_err(db("configure the connection"))?;
    if !flags.contains(OpenFlags::SQLITE_OPEN_READ_ONLY) {
        // A writer's commit that split a b-tree page walks its whole page
        // cache (SQLite renumbers pages through a temporary number past the
        // end, and truncating the cache back scans every entry): with 64 MB
        // cached that took about a millisecond per commit, which the small
        // commits of the audit log's group commit cannot afford. 16 MB
        // still holds the pages a batch touches.
        conn.execute_batch("PRAGMA cache_size = -16384")
            .map_err(db("size the writer's page cache"))?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// How a [`SqliteStore`] uses memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Records the writer keeps decoded, at most, so that a write about a
    /// subject refolds its history without reading it back from the file
    /// (a few hundred bytes each).
    pub history_records: usize,
}

impl Default for SqliteOptions {
    fn default() -> SqliteOptions {
        SqliteOptions {
            history_records: HISTORY_RECORDS_DEFAULT,
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/socred.sqlite` and brings its schema
    /// up to date. Refuses a database written by a newer socred.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(dir, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with other options than the defaults.
    pub fn open_with(dir: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| {
            StoreError::Unavailable(format!("cannot create {}: {error}", dir.display()))
        })?;
        let path = dir.join(FILE_NAME);
        let mut writer = open_connection(&path, OpenFlags::default())?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .map_err(db("read the journal mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "{} cannot use write-ahead logging (journal mode is {mode})",
                path.display()
            )));
        }
        schema::migrate(&mut writer)?;
        let log_bytes = Arc::new(AtomicI64::new(0));
        let checkpoint = start_checkpointer(&path, log_bytes.clone())?;
        let audit_index = AuditIndex::start(dir, &path)?;
        Ok(SqliteStore {
            shared: Arc::new(Shared {
                path,
                writer: Mutex::new(WriterSide {
                    conn: writer,
                    cache: SubjectCache::new(options.history_records),
                }),
                readers: Mutex::new(Vec::new()),
                states: StateCache::default(),
                coherent: CoherentStates::default(),
                checkpoint,
                log_bytes,
                audit_index,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Writes a consistent copy of the database to `to`, a file that must
    /// not exist yet, while the store stays open for reads and writes (by
    /// this process and others): SQLite's `VACUUM INTO` copies one snapshot
    /// of the database, compacted, from a read transaction, so every write
    /// committed before it started is in the copy and none committed after.
    /// The copy is written beside `to` under a temporary name, synced, and
    /// then renamed, so that `to` is never a half-written file. Returns the
    /// copy's size in bytes. The audit index, derived data, is not copied.
    pub async fn backup_into(&self, to: &Path) -> Result<u64, StoreError> {
        let to = to.to_path_buf();
        let partial = PathBuf::from(format!("{}{PARTIAL_SUFFIX}", to.display()));
        let io = |what: &'static str, path: &Path| {
            let path = path.display().to_string();
            move |error: std::io::Error| {
                StoreError::Unavailable(format!("cannot {what} {path}: {error}"))
            }
        };
        if to.exists() {
            return Err(StoreError::Conflict(format!(
                "{} exists already: a backup is written to a new file",
                to.display()
            )));
        }
        // A copy left by a run that was interrupted is not a backup.
        if partial.exists() {
            std::fs::remove_file(&partial).map_err(io("remove", &partial))?;
        }
        let target = partial.clone();
        self.read(move |conn| {
            let target = target.to_str().ok_or_else(|| {
                StoreError::Unavailable(format!("{} is not UTF-8", target.display()))
            })?;
            conn.execute("VACUUM INTO ?1", [target])
                .map(|_| ())
                .map_err(db("copy the database"))
        })
        .await?;
        let file = std::fs::File::open(&partial).map_err(io("open", &partial))?;
        file.sync_all().map_err(io("sync", &partial))?;
        let bytes = file.metadata().map_err(io("read", &partial))?.len();
        drop(file);
        std::fs::rename(&partial, &to).map_err(io("rename the copy to", &to))?;
        if let Some(dir) = to.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(io("sync the directory", dir))?;
        }
        Ok(bytes)
    }

    /// What the audit index by subject says that the audit log does not
    /// (see `AuditIndex::check`), one sentence a problem.
    pub fn check_audit_index(&self) -> Result<Vec<String>, StoreError> {
        self.shared.audit_index.check(&self.shared.path)
    }

    /// Brings the audit log by subject up to date now rather than at the
    /// indexing thread's next round; returns the entries it indexed. Answers
    /// are the same either way (what the index lacks is scanned): this is
    /// for tests, and for tools that want the index complete.
    pub fn index_audit_now(&self) -> Result<usize, StoreError> {
        self.shared.audit_index.index_now(&self.shared.path)
    }

    /// Runs `work` in one immediate write transaction on the blocking pool
    /// and commits it; nothing is kept if `work` fails. A write that folds
    /// passes its `engine`: the transaction then uses the writer's cache of
    /// decoded histories, and the caches learn what it wrote once it has
    /// committed.
    async fn write<R: Send + 'static>(
        &self,
        engine: Option<Arc<Engine>>,
        work: impl FnOnce(&mut SqliteTx<'_, '_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let shared = self.shared.clone();
        blocking(move || shared.write_now(engine, work)).await
    }

    /// A page of subjects from `sql`, which takes the subject to start
    /// after (`?1`, text), the page's length (`?2`) and, when given, a day
    /// (`?3`).
    async fn subject_page(
        &self,
        what: &'static str,
        sql: &'static str,
        after: Option<SubjectId>,
        limit: usize,
        day: Option<Day>,
    ) -> Result<Vec<SubjectId>, StoreError> {
        use rusqlite::types::Value as SqlValue;
        let mut bound = vec![
            SqlValue::Text(after.map_or(String::new(), |a| a.to_string())),
            SqlValue::Integer(limit_param(clamp_limit(limit))),
        ];
        bound.extend(day.map(|day| SqlValue::Integer(i64::from(day.0))));
        self.read(move |conn| {
            let texts: Vec<String> = conn
                .prepare_cached(sql)
                .and_then(|mut stmt| {
                    stmt.query_map(rusqlite::params_from_iter(bound), |row| row.get(0))?
                        .collect::<rusqlite::Result<_>>()
                })
                .map_err(db(what))?;
            texts.iter().map(|t| subject_of(t)).collect()
        })
        .await
    }

    /// Runs `work` on a reader connection on the blocking pool.
    async fn read<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let shared = self.shared.clone();
        blocking(move || shared.with_reader(work)).await
    }
}

impl Shared {
    /// What [`SqliteStore::write`] runs, on the calling thread.
    fn write_now<R>(
        &self,
        engine: Option<Arc<Engine>>,
        work: impl FnOnce(&mut SqliteTx<'_, '_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut side = lock(&self.writer)?;
        let WriterSide { conn, cache } = &mut *side;
        self.restart_log(conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db("begin a write transaction"))?;
        // Changes when another connection (another process, a hand
        // edit) committed since this one last looked: what the cache
        // holds may then be stale.
        let data_version: i64 = tx
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .map_err(db("read the data version"))?;
        if cache.check(data_version) {
            self.coherent.foreign_write();
        }
        if let Some(engine) = &engine {
            // Under the write lock, which this transaction holds from its
            // start: no upload can come between this and the commit.
            let in_force: Option<String> = tx
                .prepare_cached("SELECT label FROM rulebooks ORDER BY seq DESC LIMIT 1")
                .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
                .map_err(db("read the rulebook in force"))?;
            socred_store::check_rulebook(in_force.as_deref(), engine)?;
        }
        let rulebook = engine.map(|engine| engine.rulebook.clone());
        if let Some(rulebook) = &rulebook {
            cache.use_rulebook(rulebook);
        }
        let mut tx = SqliteTx::new(tx, rulebook.map(|rulebook| (&mut *cache, rulebook)));
        let result = work(&mut tx)?;
        let (tx, staged) = tx.into_parts();
        if let Err(error) = tx.commit() {
            // Whether it committed is unknown: trust nothing held.
            cache.clear();
            self.coherent.clear();
            return Err(db("commit")(error));
        }
        self.coherent.remove(&staged.changed);
        cache.apply(staged.subjects);
        drop(side);
        // Full: a checkpoint is already due, which will copy this commit too.
        let _ = self.checkpoint.try_send(());
        Ok(result)
    }

    /// Lets the next transaction write the write-ahead log from its start
    /// again once the log has grown past [`LOG_RESTART_BYTES`].
    ///
    /// SQLite rewinds the log only when a writer begins with every frame
    /// already copied into the database and no reader inside the log.
    /// Under steady writes the checkpointer never catches the writer
    /// between two commits, so the log grew without end (half a gigabyte
    /// in twenty seconds of decisions), and every commit lengthened the
    /// file: `fdatasync` then has to write the file's inode too,
    /// which took 190 µs against 120 µs for a write over blocks the file
    /// already has (`dd oflag=dsync`, 4 KiB). So the writer copies the
    /// log itself, just before it begins; the transaction then starts at
    /// the log's head, unless a reader is in the log, in which case
    /// nothing waits and the next check tries again. A passive checkpoint
    /// never waits for a lock, so this costs one copy and one sync of the
    /// database file per 16 MiB of log.
    fn restart_log(&self, conn: &Connection) {
        if self.log_bytes.load(Ordering::Relaxed) < LOG_RESTART_BYTES {
            return;
        }
        // Until the checkpointer's next round says how long the log is.
        self.log_bytes.store(0, Ordering::Relaxed);
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }

    /// Appends the entries of several answers, each group with the mark
    /// of its reads (see [`Store::append_audit_marked`]), on the calling
    /// thread.
    fn append_audit_marked_now(
        &self,
        groups: Vec<(Vec<AuditDraft>, ReadMark)>,
    ) -> Result<Vec<bool>, StoreError> {
        self.write_now(None, |tx| {
            // The transaction has looked for other writers by now: a mark
            // of an earlier epoch may rest on a state they changed.
            let epoch = self.coherent.epoch();
            let appended: Vec<bool> = groups
                .iter()
                .map(|(_, mark)| mark.memory_epoch().is_none_or(|at| at == epoch))
                .collect();
            let drafts: Vec<AuditDraft> = groups
                .into_iter()
                .zip(&appended)
                .filter(|(_, appended)| **appended)
                .flat_map(|((group, _), _)| group)
                .collect();
            tx.append_audit(&drafts)?;
            Ok(appended)
        })
    }

    /// Runs `work` on a pooled reader connection, opening one if none is free.
    fn with_reader<R>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let pooled = lock(&self.readers)?.pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_connection(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
        };
        let result = work(&conn);
        let mut readers = lock(&self.readers)?;
        if readers.len() < READERS_KEPT {
            readers.push(conn);
        }
        result
    }
}

/// Starts the thread that copies committed WAL frames into the database
/// file (a passive checkpoint after each commit), so that a write does not
/// wait for the copy and the copy runs on another core. The thread ends
/// when the store is dropped. A failed checkpoint is retried at the next
/// commit; the WAL keeps every committed frame until then, so nothing is
/// at risk. Each round records how long the log is in `log_bytes`, for
/// the writer's rewind (see [`Shared::restart_log`]).
fn start_checkpointer(
    path: &Path,
    log_bytes: Arc<AtomicI64>,
) -> Result<SyncSender<()>, StoreError> {
    let conn = open_connection(path, OpenFlags::default())?;
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .map_err(db("read the page size"))?;
    let (nudge, wake) = sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("socred-sqlite-checkpoint".into())
        .spawn(move || {
            while wake.recv().is_ok() {
                // (busy, frames in the log, frames copied)
                if let Ok(frames) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    row.get::<_, i64>(1)
                }) {
                    log_bytes.store(frames.saturating_mul(page_size), Ordering::Relaxed);
                }
                // Commits meanwhile wait for the next round: a page written
                // by several of them is copied once.
                std::thread::sleep(CHECKPOINT_PAUSE);
            }
        })
        .map_err(|error| {
            StoreError::Unavailable(format!("cannot start the checkpointer: {error}"))
        })?;
    Ok(nudge)
}

fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>, StoreError> {
    mutex
        .lock()
        .map_err(|_| StoreError::Unavailable("a store connection was poisoned by a panic".into()))
}

async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Unavailable(format!("a store task failed: {error}")))?
}

fn limit_param(limit: usize) -> i64 {
    clamp_limit(limit) as i64
}

/// The list rows stored with `source` as their source, in the order of
/// [`ListRow`] (as `list_rows` gives them).
fn read_list_rows(conn: &Connection, source: SubjectId) -> Result<Vec<ListRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT list, subject, start, end, entry_start, entry_end FROM list_entries \
             WHERE source = ?1",
        )
        .map_err(db("read a subject's list rows"))?;
    let raw = stmt
        .query_map([source.as_str()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                [row.get::<_, i64>(2)?, row.get(3)?, row.get(4)?, row.get(5)?],
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("read a subject's list rows"))?;
    let day = |value: i64| {
        i32::try_from(value)
            .map(Day)
            .map_err(|_| StoreError::Corrupt(format!("a list row of {source} has day {value}")))
    };
    let mut rows = Vec::with_capacity(raw.len());
    for (list, subject, [start, end, entry_start, entry_end]) in raw {
        rows.push(ListRow {
            list: socred_core::Name::new(&list),
            subject: subject_of(&subject)?,
            source,
            start: day(start)?,
            end: day(end)?,
            entry: Span {
                start: day(entry_start)?,
                end: day(entry_end)?,
            },
        });
    }
    // In the order of `ListRow`, as `list_rows` gives them.
    rows.sort();
    Ok(rows)
}

/// The stored state of `subject` with the entries that reach it. The
/// stored bytes are always read; decoding is skipped when `cache` holds the
/// state decoded from exactly these bytes. One statement reads both, so
/// that the read is one read transaction: beginning and ending one costs
/// file locks on the shared WAL index, more than the lookups themselves.
fn read_state(
    conn: &Connection,
    cache: &StateCache,
    subject: SubjectId,
) -> Result<Option<Arc<SubjectState>>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT 0, state FROM states WHERE subject = ?1 \
             UNION ALL SELECT 1, entry FROM derived WHERE target = ?1",
        )
        .map_err(db("read a state"))?;
    let mut rows = stmt.query([subject.as_str()]).map_err(db("read a state"))?;
    let mut own = None;
    let mut entries: Vec<String> = Vec::new();
    while let Some(row) = rows.next().map_err(db("read a state"))? {
        let derived: i64 = row.get(0).map_err(db("read a state"))?;
        if derived == 1 {
            entries.push(
                row.get(1)
                    .map_err(db("read the entries reaching a subject"))?,
            );
            continue;
        }
        // The bytes are borrowed from SQLite while the row is current.
        own = Some(match row.get_ref(1).map_err(db("read a state"))? {
            ValueRef::Blob(stored) => match cache.get(&subject, stored) {
                Some(state) => state,
                None => {
                    let state = Arc::new(decode_state(subject, stored)?);
                    cache.put(subject, stored, state.clone());
                    state
                }
            },
            other => Arc::new(decode_stored_state(subject, other)?),
        });
    }
    if entries.is_empty() {
        return Ok(own);
    }
    let mut derived = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut entry: DerivedEntry = serde_json::from_str(&entry).map_err(|error| {
            StoreError::Corrupt(format!(
                "an entry reaching {subject} does not read back: {error}"
            ))
        })?;
        reopen_entry(&mut entry);
        derived.push(entry);
    }
    sort_derived(&mut derived);
    let mut state = match own {
        Some(state) => Arc::unwrap_or_clone(state),
        None => empty_state(subject),
    };
    state.derived = derived;
    Ok(Some(Arc::new(state)))
}

/// A principal's row as read, before its text columns are checked.
struct PrincipalRow {
    id: String,
    name: String,
    role: String,
    scope: Option<String>,
    record_types: String,
    revoked: bool,
    valid_until: Option<i32>,
}

fn read_principal(row: &rusqlite::Row<'_>) -> rusqlite::Result<PrincipalRow> {
    Ok(PrincipalRow {
        id: row.get(0)?,
        name: row.get(1)?,
        role: row.get(2)?,
        scope: row.get(3)?,
        record_types: row.get(4)?,
        revoked: row.get(5)?,
        valid_until: row.get(6)?,
    })
}

fn principal_of(row: PrincipalRow) -> Result<Principal, StoreError> {
    let PrincipalRow {
        id,
        name,
        role,
        scope,
        record_types,
        revoked,
        valid_until,
    } = row;
    let record_types: Vec<String> = serde_json::from_str(&record_types).map_err(|error| {
        StoreError::Corrupt(format!(
            "record types of principal `{id}` do not read back: {error}"
        ))
    })?;
    Ok(Principal {
        role: role.parse::<Role>()?,
        id,
        name,
        scope,
        record_types,
        revoked,
        valid_until: valid_until.map(Day),
    })
}

const PRINCIPAL_COLUMNS: &str = "id, name, role, scope, record_types, revoked, valid_until";

type RawAudit = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
);

fn raw_audit(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawAudit> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

fn audit_of(
    (seq, at_ms, actor, role, purpose, action, subject, detail, hash): RawAudit,
) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: u64::try_from(seq)
            .map_err(|_| StoreError::Corrupt(format!("audit entry number {seq}")))?,
        entry: AuditDraft {
            at_ms,
            actor,
            role,
            purpose,
            action,
            subject: subject.as_deref().map(subject_of).transpose()?,
            detail,
        },
        hash,
    })
}

const AUDIT_COLUMNS: &str = "seq, at_ms, actor, role, purpose, action, subject, detail, hash";

fn read_audit(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<AuditEntry>, StoreError> {
    let raw: Vec<RawAudit> = conn
        .prepare_cached(sql)
        .and_then(|mut stmt| stmt.query_map(params, raw_audit)?.collect())
        .map_err(db("read the audit log"))?;
    raw.into_iter().map(audit_of).collect()
}

/// Pending rows after queue position `after`, at most `limit` of them.
fn read_pending(
    conn: &Connection,
    after: i64,
    limit: i64,
) -> Result<(Vec<socred_store::RecordRow>, Vec<socred_store::FactRow>), StoreError> {
    pending_rows(conn, "pending_seq > ?1", params![after, limit])
}

/// What waits for review about `subject`: records by the partial index
/// `records_pending_by_subject`, facts by the table's key.
fn read_pending_about(
    conn: &Connection,
    subject: SubjectId,
    limit: i64,
) -> Result<(Vec<socred_store::RecordRow>, Vec<socred_store::FactRow>), StoreError> {
    pending_rows(conn, "subject = ?1", params![subject.as_str(), limit])
}

/// Pending records and facts that also meet `filter` (a condition on ?1),
/// in queue order, at most ?2 of each, decoded.
fn pending_rows(
    conn: &Connection,
    filter: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<(Vec<socred_store::RecordRow>, Vec<socred_store::FactRow>), StoreError> {
    let records = conn
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE status = 1 AND {filter} ORDER BY pending_seq LIMIT ?2"
        ))
        .and_then(|mut stmt| stmt.query_map(params, raw_record)?.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("read pending records"))?;
    let facts = conn
        .prepare_cached(&format!(
            "SELECT {FACT_COLUMNS} FROM facts WHERE status = 1 AND {filter} ORDER BY pending_seq LIMIT ?2"
        ))
        .and_then(|mut stmt| stmt.query_map(params, raw_fact)?.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("read pending facts"))?;
    let records = records
        .into_iter()
        .map(|raw| raw.decode())
        .collect::<Result<_, _>>()?;
    let facts = facts
        .into_iter()
        .map(|raw| raw.decode())
        .collect::<Result<_, _>>()?;
    Ok((records, facts))
}

/// Members of `list` on `day` after `after`: rows come ordered by subject,
/// so each subject's rows are together; the latest-ending entry is shown.
fn read_list_members(
    conn: &Connection,
    list: &str,
    day: Day,
    after: Option<SubjectId>,
    limit: usize,
) -> Result<Vec<(SubjectId, Span)>, StoreError> {
    let after = after.map_or(String::new(), |s| s.as_str().to_string());
    let mut stmt = conn
        .prepare_cached(
            "SELECT subject, entry_start, entry_end FROM list_entries \
             WHERE list = ?1 AND subject > ?2 AND start <= ?3 AND end > ?3 ORDER BY subject",
        )
        .map_err(db("prepare a list query"))?;
    let mut rows = stmt
        .query(params![list, after, day.0])
        .map_err(db("read a list"))?;
    let mut members: Vec<(String, Span)> = Vec::new();
    while let Some(row) = rows.next().map_err(db("read a list"))? {
        let subject: String = row.get(0).map_err(db("read a list"))?;
        let entry = Span {
            start: Day(row.get(1).map_err(db("read a list"))?),
            end: Day(row.get(2).map_err(db("read a list"))?),
        };
        let full = members.len() == limit;
        match members.last_mut() {
            Some((last, span)) if *last == subject => {
                if (entry.end, std::cmp::Reverse(entry.start))
                    > (span.end, std::cmp::Reverse(span.start))
                {
                    *span = entry;
                }
            }
            _ if full => break,
            _ => members.push((subject, entry)),
        }
    }
    members
        .into_iter()
        .map(|(subject, span)| Ok((subject_of(&subject)?, span)))
        .collect()
}

/// An edition from `day, rulebook, drawn, members, mark_ms` at column `at`
/// of `row`.
fn edition_of(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Edition> {
    Ok(Edition {
        day: Day(row.get(at)?),
        rulebook: row.get(at + 1)?,
        drawn: Day(row.get(at + 2)?),
        members: u64::try_from(row.get::<_, i64>(at + 3)?).unwrap_or(0),
        mark_ms: row.get(at + 4)?,
    })
}

/// Entries in the audit log: the chain head's number less the anchor's,
/// the last entry removed at the end of retention (the `audit_entries`
/// counter row is no longer moved).
fn audit_entries(conn: &Connection) -> Result<u64, StoreError> {
    let seq = |table| Ok::<_, StoreError>(chain_end(conn, table)?.map_or(0, |(seq, _)| seq));
    let (head, anchor) = (seq("audit_head")?, seq("audit_anchor")?);
    head.checked_sub(anchor).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "audit chain head at entry {head}, before its anchor at {anchor}"
        ))
    })
}

/// The audit chain's head or anchor row: (seq, hash).
fn chain_end(conn: &Connection, table: &str) -> Result<Option<(u64, String)>, StoreError> {
    let end: Option<(i64, String)> = conn
        .prepare_cached(&format!("SELECT seq, hash FROM {table} WHERE one = 1"))
        .and_then(|mut stmt| {
            stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(db("read the audit chain's ends"))?;
    Ok(end.map(|(seq, hash)| (u64::try_from(seq).unwrap_or(0), hash)))
}

fn counter(conn: &Connection, name: &str) -> Result<u64, StoreError> {
    let value: i64 = conn
        .prepare_cached("SELECT value FROM counters WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([name], |row| row.get(0)))
        .map_err(db("read a counter"))?;
    Ok(u64::try_from(value).unwrap_or(0))
}

/// A SQLite write blocks a thread whichever thread runs it: the audit log's
/// own thread runs its appends itself and goes from one commit straight to
/// the next, with no hand-over to the blocking pool in between.
impl BlockingAudit for SqliteStore {
    fn append_audit_marked_now(
        &self,
        groups: Vec<(Vec<AuditDraft>, ReadMark)>,
    ) -> Result<Vec<bool>, StoreError> {
        self.shared.append_audit_marked_now(groups)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest(
        &self,
        engine: &Arc<Engine>,
        batch: Vec<Submission>,
        audit: Vec<AuditDraft>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let engine = engine.clone();
        self.write(Some(engine.clone()), move |tx| {
            Writer::new(&engine, now_ms()).ingest(tx, batch, &audit)
        })
        .await
    }

    async fn approve(
        &self,
        engine: &Arc<Engine>,
        key: &ItemKey,
        reviewer: &str,
        today: Day,
        audit: Vec<AuditDraft>,
    ) -> Result<PendingItem, StoreError> {
        let (engine, key, reviewer) = (engine.clone(), key.clone(), reviewer.to_string());
        self.write(Some(engine.clone()), move |tx| {
            Writer::new(&engine, now_ms()).approve(tx, &key, &reviewer, today, &audit)
        })
        .await
    }

    async fn reject(
        &self,
        engine: &Arc<Engine>,
        key: &ItemKey,
        reviewer: &str,
        reason: &str,
        audit: Vec<AuditDraft>,
    ) -> Result<PendingItem, StoreError> {
        let (engine, key) = (engine.clone(), key.clone());
        let (reviewer, reason) = (reviewer.to_string(), reason.to_string());
        self.write(Some(engine.clone()), move |tx| {
            Writer::new(&engine, now_ms()).reject(tx, &key, &reviewer, &reason, &audit)
        })
        .await
    }

    async fn pending(
        &self,
        rulebook: &Rulebook,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<PendingItem>, StoreError> {
        let after = after.map_or(0, |a| i64::try_from(a).unwrap_or(i64::MAX));
        let limit = clamp_limit(limit);
        let (records, facts) = self
            .read(move |conn| read_pending(conn, after, limit as i64))
            .await?;
        socred_store::pending_items(rulebook, records, facts, limit)
    }

    async fn pending_about(
        &self,
        rulebook: &Rulebook,
        subject: SubjectId,
        limit: usize,
    ) -> Result<Vec<PendingItem>, StoreError> {
        let limit = clamp_limit(limit);
        let (records, facts) = self
            .read(move |conn| read_pending_about(conn, subject, limit as i64))
            .await?;
        socred_store::pending_items(rulebook, records, facts, limit)
    }

    async fn state(&self, subject: SubjectId) -> Result<Option<Arc<SubjectState>>, StoreError> {
        let shared = &self.shared;
        shared.with_reader(|conn| read_state(conn, &shared.states, subject))
    }

    async fn state_marked(
        &self,
        subject: SubjectId,
    ) -> Result<(Option<Arc<SubjectState>>, ReadMark), StoreError> {
        let shared = &self.shared;
        // The epoch first: a lookup that races with its end keeps the old one.
        let epoch = shared.coherent.epoch();
        if let Some(state) = shared.coherent.get(&subject) {
            return Ok((state, ReadMark::epoch(epoch)));
        }
        let ticket = shared.coherent.ticket(&subject);
        let state = shared.with_reader(|conn| read_state(conn, &shared.states, subject))?;
        if let Some(ticket) = ticket {
            shared.coherent.put(subject, ticket, state.clone());
        }
        Ok((state, ReadMark::FRESH))
    }

    async fn records(
        &self,
        rulebook: &Rulebook,
        subject: SubjectId,
    ) -> Result<(Vec<Record>, Vec<Fact>), StoreError> {
        let (record_rows, fact_rows) = self
            .read(move |conn| tx::load_subject(conn, subject))
            .await?;
        socred_store::decode_subject(rulebook, &record_rows, &fact_rows)
    }

    /// One read for the page, on one connection.
    async fn records_of(
        &self,
        rulebook: &Rulebook,
        subjects: &[SubjectId],
    ) -> Result<Vec<(Vec<Record>, Vec<Fact>)>, StoreError> {
        let subjects = subjects.to_vec();
        let rows = self
            .read(move |conn| {
                subjects
                    .iter()
                    .map(|&subject| tx::load_subject(conn, subject))
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await?;
        rows.iter()
            .map(|(record_rows, fact_rows)| {
                socred_store::decode_subject(rulebook, record_rows, fact_rows)
            })
            .collect()
    }

    async fn subjects_changed(
        &self,
        since_ms: i64,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError> {
        let after = after.map_or(String::new(), |s| s.as_str().to_string());
        let limit = limit_param(limit);
        self.read(move |conn| {
            let texts: Vec<String> = conn
                .prepare_cached(
                    "SELECT subject FROM states WHERE subject > ?1 AND changed_ms >= ?2 \
                     ORDER BY subject LIMIT ?3",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![after, since_ms, limit], |row| row.get(0))?
                        .collect()
                })
                .map_err(db("list subjects changed"))?;
            texts.iter().map(|t| subject_of(t)).collect()
        })
        .await
    }

    async fn list_members(
        &self,
        list: &str,
        day: Day,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<(SubjectId, Span)>, StoreError> {
        let list = list.to_string();
        let limit = clamp_limit(limit);
        self.read(move |conn| read_list_members(conn, &list, day, after, limit))
            .await
    }

    async fn edition(&self, list: &str) -> Result<Option<Edition>, StoreError> {
        let list = list.to_string();
        self.read(move |conn| {
            conn.query_row(
                "SELECT day, rulebook, drawn, members, mark_ms FROM editions WHERE list = ?1",
                [&list],
                |row| edition_of(row, 0),
            )
            .optional()
            .map_err(db("read a list's edition"))
        })
        .await
    }

    async fn editions(&self) -> Result<Vec<(String, Edition)>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT list, day, rulebook, drawn, members, mark_ms FROM editions ORDER BY list",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |row| Ok((row.get(0)?, edition_of(row, 1)?)))?
                    .collect()
            })
            .map_err(db("read the lists' editions"))
        })
        .await
    }

    async fn edition_members(
        &self,
        list: &str,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Option<EditionPage>, StoreError> {
        let list = list.to_string();
        let after = after.map_or(String::new(), |s| s.as_str().to_string());
        let limit = i64::try_from(clamp_limit(limit)).unwrap_or(i64::MAX);
        self.read(move |conn| {
            // The edition and its page in one read transaction: a drawing
            // published between two statements would mix two editions.
            let conn = conn
                .unchecked_transaction()
                .map_err(db("begin a read transaction"))?;
            let edition = conn
                .prepare_cached(
                    "SELECT day, rulebook, drawn, members, mark_ms FROM editions WHERE list = ?1",
                )
                .and_then(|mut stmt| stmt.query_row([&list], |row| edition_of(row, 0)).optional())
                .map_err(db("read a list's edition"))?;
            let Some(edition) = edition else {
                return Ok(None);
            };
            let rows: Vec<(String, bool)> = conn
                .prepare_cached(
                    "SELECT subject, named FROM edition_members WHERE list = ?1 AND subject > ?2 \
                     ORDER BY subject LIMIT ?3",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![list, after, limit], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })?
                    .collect()
                })
                .map_err(db("read a list's edition"))?;
            let members = rows
                .iter()
                .map(|(subject, named)| {
                    Ok(EditionMember {
                        subject: subject_of(subject)?,
                        named: *named,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            Ok(Some(EditionPage { edition, members }))
        })
        .await
    }

    async fn publish_edition(
        &self,
        list: &str,
        drawing: Drawing<'_>,
        members: Vec<EditionMember>,
        audit: Vec<AuditDraft>,
    ) -> Result<bool, StoreError> {
        let (day, rulebook, drawn, mark_ms) = (
            drawing.day,
            drawing.rulebook,
            drawing.drawn,
            drawing.mark_ms,
        );
        let (list, rulebook) = (list.to_string(), rulebook.to_string());
        let members = socred_store::edition_members_once(members);
        self.write(None, move |tx| {
            let same: Option<i64> = tx
                .tx
                .query_row(
                    "SELECT 1 FROM editions WHERE list = ?1 AND day = ?2 AND rulebook = ?3 \
                     AND drawn = ?4",
                    params![list, day.0, rulebook, drawn.0],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db("read a list's edition"))?;
            if same.is_some() {
                return Ok(false);
            }
            let publish = db("publish a list's edition");
            tx.tx
                .execute("DELETE FROM edition_members WHERE list = ?1", [&list])
                .map_err(&publish)?;
            {
                let mut insert = tx
                    .tx
                    .prepare_cached(
                        "INSERT INTO edition_members (list, subject, named) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(&publish)?;
                for member in &members {
                    insert
                        .execute(params![list, member.subject.as_str(), member.named])
                        .map_err(&publish)?;
                }
            }
            let count = members.len() as i64;
            tx.tx
                .execute(
                    "INSERT INTO editions (list, day, rulebook, drawn, members, mark_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (list) DO UPDATE SET day = excluded.day, \
                     rulebook = excluded.rulebook, drawn = excluded.drawn, \
                     members = excluded.members, mark_ms = excluded.mark_ms",
                    params![list, day.0, rulebook, drawn.0, count, mark_ms],
                )
                .map_err(&publish)?;
            tx.append_audit(&audit)?;
            Ok(true)
        })
        .await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.read(|conn| {
            Ok(Counts {
                subjects: counter(conn, "subjects")?,
                records: counter(conn, "records")?,
                facts: counter(conn, "facts")?,
                pending: counter(conn, "pending")?,
                audit_entries: audit_entries(conn)?,
                principals: counter(conn, "principals")?,
                rulebooks: counter(conn, "rulebooks")?,
            })
        })
        .await
    }

    async fn held_record_types(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT type, count(*) FROM records WHERE status != ?1 GROUP BY type",
            )
            .and_then(|mut stmt| {
                stmt.query_map([Status::Erased.code()], |row| {
                    let count: i64 = row.get(1)?;
                    Ok((row.get(0)?, u64::try_from(count).unwrap_or(0)))
                })?
                .collect()
            })
            .map_err(db("count the records held by type"))
        })
        .await
    }

    async fn put_rulebook(
        &self,
        label: &str,
        text: &str,
        uploaded_by: &str,
        audit: Vec<AuditDraft>,
    ) -> Result<RulebookVersion, StoreError> {
        let version = RulebookVersion {
            label: label.to_string(),
            uploaded_at_ms: now_ms(),
            uploaded_by: uploaded_by.to_string(),
        };
        let text = text.to_string();
        self.write(None, move |tx| {
            let clash: Option<i64> = tx
                .tx
                .prepare_cached("SELECT 1 FROM rulebooks WHERE label = ?1 AND text <> ?2 LIMIT 1")
                .and_then(|mut stmt| stmt.query_row(params![version.label, text], |row| row.get(0)).optional())
                .map_err(db("read rulebook versions"))?;
            if clash.is_some() {
                return Err(StoreError::Conflict(format!(
                    "rulebook {} was uploaded before with other text: give the new text a new version",
                    version.label
                )));
            }
            tx.tx
                .prepare_cached(
                    "INSERT INTO rulebooks (label, text, uploaded_at_ms, uploaded_by) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![version.label, text, version.uploaded_at_ms, version.uploaded_by])
                })
                .map_err(db("store a rulebook"))?;
            tx.tx
                .prepare_cached("INSERT OR REPLACE INTO recompute (one, rulebook, last_subject) VALUES (1, ?1, '')")
                .and_then(|mut stmt| stmt.execute(params![version.label]))
                .map_err(db("record the recomputation to do"))?;
            tx.add("rulebooks", 1)?;
            tx.append_audit(&audit)?;
            Ok(version)
        })
        .await
    }

    async fn current_rulebook(&self) -> Result<Option<(String, String)>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT label, text FROM rulebooks ORDER BY seq DESC LIMIT 1")
                .and_then(|mut stmt| {
                    stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                        .optional()
                })
                .map_err(db("read the current rulebook"))
        })
        .await
    }

    async fn rulebooks(&self) -> Result<Vec<RulebookVersion>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT label, uploaded_at_ms, uploaded_by FROM rulebooks ORDER BY seq",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok(RulebookVersion {
                        label: row.get(0)?,
                        uploaded_at_ms: row.get(1)?,
                        uploaded_by: row.get(2)?,
                    })
                })?
                .collect()
            })
            .map_err(db("list rulebook versions"))
        })
        .await
    }

    async fn recompute_all(&self, engine: &Arc<Engine>) -> Result<u64, StoreError> {
        let label = engine.rulebook.label();
        let mut after = match self.unfinished_recompute().await? {
            Some(unfinished) if unfinished.rulebook == label => unfinished.after,
            _ => String::new(),
        };
        let mut total = 0u64;
        loop {
            let engine = engine.clone();
            let from = after.clone();
            let label = label.clone();
            // Each batch is its own transaction, so ingestion goes on between
            // them; each records how far the recomputation got.
            let last = self
                .write(Some(engine.clone()), move |tx| {
                    let texts: Vec<String> = tx
                        .tx
                        .prepare_cached("SELECT subject FROM states WHERE subject > ?1 ORDER BY subject LIMIT ?2")
                        .and_then(|mut stmt| {
                            stmt.query_map(params![from, RECOMPUTE_BATCH as i64], |row| row.get(0))?.collect()
                        })
                        .map_err(db("list subjects to recompute"))?;
                    let subjects = texts.iter().map(|t| subject_of(t)).collect::<Result<Vec<_>, _>>()?;
                    let count = subjects.len() as u64;
                    Writer::new(&engine, now_ms()).recompute(tx, subjects)?;
                    let progress = match texts.last() {
                        Some(last) => tx
                            .tx
                            .prepare_cached("UPDATE recompute SET last_subject = ?2 WHERE rulebook = ?1")
                            .and_then(|mut stmt| stmt.execute(params![label, last])),
                        None => tx
                            .tx
                            .prepare_cached("DELETE FROM recompute WHERE rulebook = ?1")
                            .and_then(|mut stmt| stmt.execute(params![label])),
                    };
                    progress.map_err(db("record the recomputation's progress"))?;
                    Ok((texts.last().cloned(), count))
                })
                .await?;
            total += last.1;
            match last.0 {
                Some(subject) => after = subject,
                None => return Ok(total),
            }
        }
    }

    async fn check_audit_by_subject(&self) -> Result<Vec<String>, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.audit_index.check(&shared.path))
            .await
            .map_err(|error| {
                StoreError::Unavailable(format!("checking the audit index stopped: {error}"))
            })?
    }

    async fn unfinished_recompute(&self) -> Result<Option<UnfinishedRecompute>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT rulebook, last_subject FROM recompute")
                .and_then(|mut stmt| {
                    stmt.query_row([], |row| {
                        Ok(UnfinishedRecompute {
                            rulebook: row.get(0)?,
                            after: row.get(1)?,
                        })
                    })
                    .optional()
                })
                .map_err(db("read the recomputation left to do"))
        })
        .await
    }

    async fn erase(
        &self,
        engine: &Arc<Engine>,
        subjects: Vec<SubjectId>,
        today: Day,
        audit: AuditDraft,
    ) -> Result<Erasure, StoreError> {
        let engine = engine.clone();
        self.write(Some(engine.clone()), move |tx| {
            let (erasure, entries) =
                Writer::new(&engine, now_ms()).erase(tx, subjects, today, &audit)?;
            tx.append_audit(&entries)?;
            Ok(erasure)
        })
        .await
    }

    async fn put_principal(
        &self,
        principal: &Principal,
        token_hash: &str,
        audit: Vec<AuditDraft>,
    ) -> Result<(), StoreError> {
        let principal = principal.clone();
        let token_hash = token_hash.to_string();
        self.write(None, move |tx| {
            let holder: Option<String> = tx
                .tx
                .prepare_cached("SELECT id FROM principals WHERE token_hash = ?1")
                .and_then(|mut stmt| stmt.query_row([&token_hash], |row| row.get(0)).optional())
                .map_err(db("look up a token hash"))?;
            if let Some(holder) = holder.filter(|h| *h != principal.id) {
                return Err(StoreError::Conflict(format!("principal `{holder}` already holds this token")));
            }
            let exists: Option<i64> = tx
                .tx
                .prepare_cached("SELECT 1 FROM principals WHERE id = ?1")
                .and_then(|mut stmt| stmt.query_row([&principal.id], |row| row.get(0)).optional())
                .map_err(db("look up a principal"))?;
            let record_types = serde_json::to_string(&principal.record_types).unwrap_or_else(|_| "[]".into());
            tx.tx
                .prepare_cached(
                    "INSERT INTO principals (id, name, role, scope, record_types, token_hash, revoked, valid_until) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                     role = excluded.role, scope = excluded.scope, record_types = excluded.record_types, \
                     token_hash = excluded.token_hash, revoked = 0, valid_until = excluded.valid_until",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        principal.id,
                        principal.name,
                        principal.role.as_str(),
                        principal.scope,
                        record_types,
                        token_hash,
                        principal.valid_until.map(|day| day.0)
                    ])
                })
                .map_err(db("store a principal"))?;
            if exists.is_none() {
                tx.add("principals", 1)?;
            }
            tx.append_audit(&audit)?;
            Ok(())
        })
        .await
    }

    async fn principal_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<Principal>, StoreError> {
        let raw = self.shared.with_reader(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE token_hash = ?1 AND revoked = 0"
            ))
            .and_then(|mut stmt| stmt.query_row([token_hash], read_principal).optional())
            .map_err(db("look up a token hash"))
        })?;
        raw.map(principal_of).transpose()
    }

    async fn principals(&self) -> Result<Vec<Principal>, StoreError> {
        let raw = self
            .read(|conn| {
                conn.prepare_cached(&format!(
                    "SELECT {PRINCIPAL_COLUMNS} FROM principals ORDER BY id"
                ))
                .and_then(|mut stmt| {
                    stmt.query_map([], read_principal)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(db("list principals"))
            })
            .await?;
        raw.into_iter().map(principal_of).collect()
    }

    async fn principal(&self, id: &str) -> Result<Option<Principal>, StoreError> {
        let id = id.to_string();
        let raw = self
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE id = ?1"
                ))
                .and_then(|mut stmt| stmt.query_row([&id], read_principal).optional())
                .map_err(db("read a principal"))
            })
            .await?;
        raw.map(principal_of).transpose()
    }

    async fn revoke(&self, id: &str, audit: Vec<AuditDraft>) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(None, move |tx| {
            let changed = tx
                .tx
                .prepare_cached("UPDATE principals SET revoked = 1 WHERE id = ?1")
                .and_then(|mut stmt| stmt.execute([&id]))
                .map_err(db("revoke a principal"))?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("principal `{id}`")));
            }
            tx.append_audit(&audit)?;
            Ok(())
        })
        .await
    }

    async fn append_audit(&self, entries: Vec<AuditDraft>) -> Result<Vec<u64>, StoreError> {
        self.write(None, move |tx| tx.append_audit(&entries)).await
    }

    async fn append_audit_marked(
        &self,
        groups: Vec<(Vec<AuditDraft>, ReadMark)>,
    ) -> Result<Vec<bool>, StoreError> {
        let shared = self.shared.clone();
        blocking(move || shared.append_audit_marked_now(groups)).await
    }

    fn blocking_audit(&self) -> Option<&dyn BlockingAudit> {
        Some(self)
    }

    async fn audit(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = limit_param(limit);
        self.read(move |conn| {
            let sql =
                format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2");
            read_audit(conn, &sql, params![after, limit])
        })
        .await
    }

    async fn audit_for_subject(
        &self,
        subject: SubjectId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = limit_param(limit);
        let shared = self.shared.clone();
        blocking(move || {
            // What the index names (each entry checked to be about the
            // subject still), then what it does not cover yet.
            let (seqs, upto) = shared.audit_index.entries_of(subject, after, limit)?;
            shared.with_reader(|conn| {
                let one = format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE seq = ?1 AND subject = ?2");
                let mut entries = Vec::with_capacity(seqs.len());
                for seq in seqs {
                    entries.extend(read_audit(conn, &one, params![seq, subject.as_str()])?);
                }
                let rest = limit - entries.len() as i64;
                if rest > 0 {
                    let tail = format!(
                        "SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ?1 AND subject = ?2 ORDER BY seq LIMIT ?3"
                    );
                    // Whatever the index named is at or before `upto`.
                    let from = after.max(upto);
                    entries.extend(read_audit(conn, &tail, params![from, subject.as_str(), rest])?);
                }
                Ok(entries)
            })
        })
        .await
    }

    async fn unlisted_records(&self, limit: usize) -> Result<Vec<(SubjectId, String)>, StoreError> {
        self.read(move |conn| {
            // Every row number the states list, then every record in
            // effect against them: one pass over each table, both in one
            // read transaction so that a write between the two passes
            // cannot look like a planted record.
            let conn = conn
                .unchecked_transaction()
                .map_err(db("begin a read transaction"))?;
            let mut listed = Vec::new();
            let mut states = conn
                .prepare("SELECT subject, records FROM states")
                .map_err(db("read the states' lists of records"))?;
            let mut rows = states
                .query([])
                .map_err(db("read the states' lists of records"))?;
            while let Some(row) = rows.next().map_err(db("read the states' lists of records"))? {
                let subject: String = row.get(0).map_err(db("read a state's subject"))?;
                let bytes: Vec<u8> = row.get(1).map_err(db("read a state's list of records"))?;
                listed.extend(tx::decode_rowids(subject_of(&subject)?, &bytes)?);
            }
            listed.sort_unstable();
            let mut records = conn
                .prepare("SELECT seq, subject, provider, id FROM records WHERE status = 0")
                .map_err(db("read the records in effect"))?;
            let mut rows = records
                .query([])
                .map_err(db("read the records in effect"))?;
            let mut unlisted = Vec::new();
            while let Some(row) = rows.next().map_err(db("read the records in effect"))? {
                if unlisted.len() >= limit {
                    break;
                }
                let seq: i64 = row.get(0).map_err(db("read a record's row number"))?;
                if listed.binary_search(&seq).is_ok() {
                    continue;
                }
                let subject: String = row.get(1).map_err(db("read a record's subject"))?;
                let provider: String = row.get(2).map_err(db("read a record's provider"))?;
                let id: String = row.get(3).map_err(db("read a record's id"))?;
                unlisted.push((
                    subject_of(&subject)?,
                    format!(
                        "record {provider}/{id} (row {seq}) is in effect but its subject's state does not list it: it was added behind the store's back"
                    ),
                ));
            }
            drop(rows);
            // List rows whose source has no state: no fold accounts for them.
            let mut orphans = conn
                .prepare(
                    "SELECT DISTINCT list, subject, source FROM list_entries \
                     WHERE source NOT IN (SELECT subject FROM states) LIMIT ?1",
                )
                .map_err(db("read the list rows' sources"))?;
            let found = orphans
                .query_map([limit_param(limit)], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?))
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(db("read the list rows' sources"))?;
            for (list, subject, source) in found {
                if unlisted.len() >= limit {
                    break;
                }
                unlisted.push((
                    subject_of(&subject)?,
                    format!(
                        "on list {list} by a row from {source}, which has no state: the row was added behind the store's back"
                    ),
                ));
            }
            Ok(unlisted)
        })
        .await
    }

    /// By the index `states_by_retention` (schema 9).
    async fn subjects_past_retention(
        &self,
        today: Day,
        after: Option<(Day, SubjectId)>,
        limit: usize,
    ) -> Result<Vec<(Day, SubjectId)>, StoreError> {
        let (after_day, after_subject) = socred_store::retention_cursor(after);
        let limit = limit_param(clamp_limit(limit));
        let rows: Vec<(i64, String)> = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT retention_ends, subject FROM states \
                     WHERE retention_ends <= ?1 AND (retention_ends, subject) > (?2, ?3) \
                     ORDER BY retention_ends, subject LIMIT ?4",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(
                        params![i64::from(today.0), after_day, after_subject, limit],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )?
                    .collect::<rusqlite::Result<_>>()
                })
                .map_err(db("list the subjects with records past retention"))
            })
            .await?;
        rows.into_iter()
            .map(|(day, subject)| Ok((day_of(day)?, subject_of(&subject)?)))
            .collect()
    }

    /// By the partial indexes `records_pending_by_subject` (schema 6),
    /// `records_rejected_by_subject` (schema 7) and `facts_retracted`
    /// (schema 8); a retracted record's decision day by its key.
    async fn subjects_not_in_effect(
        &self,
        after: Option<SubjectId>,
        decided_by: Day,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError> {
        self.subject_page(
            "list the subjects with records not in effect",
            "SELECT subject FROM records WHERE status = 1 AND subject > ?1 \
                         AND decided_at <= ?3 \
                     UNION SELECT subject FROM records WHERE status = 2 AND subject > ?1 \
                         AND decided_at <= ?3 \
                     UNION SELECT f.subject FROM facts f \
                         JOIN records r ON r.provider = f.provider AND r.id = f.record \
                         WHERE f.kind = 'retracted' AND f.status = 0 AND f.subject > ?1 \
                         AND r.decided_at <= ?3 \
                     UNION SELECT f.subject FROM facts f \
                         JOIN records r ON r.provider = f.provider AND r.id = f.record \
                         WHERE f.kind = 'resolved' AND f.status = 0 AND f.subject > ?1 \
                         AND json_extract(f.body, '$.outcome') = 'retracted' \
                         AND r.decided_at <= ?3 \
                     ORDER BY 1 LIMIT ?2",
            after,
            limit,
            Some(decided_by),
        )
        .await
    }

    /// By the partial index `facts_disputed` (schema 5), in subject order,
    /// each candidate's resolutions looked up on the primary key.
    async fn disputed_subjects(
        &self,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError> {
        self.subject_page(
            "list the subjects with open objections",
            "SELECT DISTINCT d.subject FROM facts d \
             WHERE d.kind = 'disputed' AND d.status = 0 AND d.subject > ?1 \
             AND NOT EXISTS (SELECT 1 FROM facts r WHERE r.subject = d.subject \
                 AND r.kind = 'resolved' AND r.provider = d.provider AND r.record = d.record \
                 AND r.at >= d.at AND r.status = 0) \
             ORDER BY d.subject LIMIT ?2",
            after,
            limit,
            None,
        )
        .await
    }

    async fn derived_targets(&self) -> Result<Option<Vec<SubjectId>>, StoreError> {
        self.read(|conn| {
            let texts: Vec<String> = conn
                .prepare_cached("SELECT DISTINCT target FROM derived ORDER BY target")
                .and_then(|mut stmt| {
                    stmt.query_map([], |row| row.get(0))?
                        .collect::<rusqlite::Result<_>>()
                })
                .map_err(db("list the subjects derived entries reach"))?;
            texts
                .iter()
                .map(|t| subject_of(t))
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        })
        .await
    }

    async fn list_rows_of(&self, source: SubjectId) -> Result<Option<Vec<ListRow>>, StoreError> {
        self.read(move |conn| read_list_rows(conn, source).map(Some))
            .await
    }

    /// One hand-over to the blocking pool and one reader connection for a
    /// page of subjects, where reading them one by one took two hand-overs
    /// a subject (about a third of `socred verify`'s time, BENCHMARKS.md).
    async fn verify_reads(
        &self,
        rulebook: &Arc<Rulebook>,
        subjects: &[SubjectId],
    ) -> Result<Vec<VerifyReads>, StoreError> {
        let (rulebook, subjects) = (rulebook.clone(), subjects.to_vec());
        let shared = self.shared.clone();
        blocking(move || {
            shared.with_reader(|conn| {
                let mut reads = Vec::with_capacity(subjects.len());
                for subject in subjects {
                    let history = tx::load_subject(conn, subject).and_then(|(records, facts)| {
                        socred_store::decode_subject(&rulebook, &records, &facts)
                    });
                    let history = match history {
                        Ok(history) => history,
                        Err(StoreError::Corrupt(reason)) => {
                            reads.push(VerifyReads::Unreadable(reason));
                            continue;
                        }
                        Err(error) => return Err(error),
                    };
                    reads.push(VerifyReads::Read {
                        history,
                        list_rows: Some(read_list_rows(conn, subject)?),
                        state: read_state(conn, &shared.states, subject)?,
                    });
                }
                Ok(reads)
            })
        })
        .await
    }

    async fn audit_head(&self) -> Result<Option<(u64, String)>, StoreError> {
        self.read(|conn| chain_end(conn, "audit_head")).await
    }

    async fn audit_anchor(&self) -> Result<Option<(u64, String)>, StoreError> {
        self.read(|conn| chain_end(conn, "audit_anchor")).await
    }

    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (name, fresh) = (name.to_string(), fresh.to_vec());
        self.write(None, move |tx| {
            tx.tx
                .execute(
                    "INSERT INTO secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                    params![name, fresh],
                )
                .map_err(db("keep a secret"))?;
            tx.tx
                .query_row("SELECT value FROM secrets WHERE name = ?1", [&name], |row| {
                    row.get(0)
                })
                .map_err(db("read a secret"))
        })
        .await
    }

    async fn lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(None, move |tx| {
            let taken = tx
                .tx
                .execute(
                    "INSERT INTO leases (name, holder, until_ms) VALUES (?1, ?2, ?4) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     until_ms = excluded.until_ms \
                     WHERE leases.holder = excluded.holder OR leases.until_ms <= ?3",
                    params![name, holder, now_ms, until_ms],
                )
                .map_err(db("take a lease"))?;
            Ok(taken == 1)
        })
        .await
    }

    async fn audit_before(&self, before_ms: i64) -> Result<Option<u64>, StoreError> {
        self.read(move |conn| {
            // In `seq` order from the start: reads the stretch that is
            // older, and one entry more.
            let first_newer: Option<i64> = conn
                .query_row(
                    "SELECT seq FROM audit WHERE at_ms >= ?1 ORDER BY seq LIMIT 1",
                    [before_ms],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db("read the audit log"))?;
            let (first, last): (Option<i64>, Option<i64>) = conn
                .query_row("SELECT MIN(seq), MAX(seq) FROM audit", [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .map_err(db("read the audit log"))?;
            let end = match (first_newer, first, last) {
                (Some(newer), Some(first), _) if newer > first => Some(newer - 1),
                (None, _, last) => last,
                _ => None,
            };
            Ok(end.map(|seq| u64::try_from(seq).unwrap_or(0)))
        })
        .await
    }

    async fn prune_audit(&self, through: u64, limit: usize) -> Result<u64, StoreError> {
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        if limit == 0 {
            return Ok(0);
        }
        self.write(None, move |tx| {
            let last: Option<(i64, String)> = tx
                .tx
                .query_row(
                    "SELECT seq, hash FROM audit WHERE seq <= ?1 ORDER BY seq LIMIT 1 OFFSET ?2 - 1",
                    params![through, limit],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(db("read the audit log"))?;
            let last = match last {
                Some(last) => Some(last),
                // Fewer than `limit` are left up to `through`: all of them.
                None => tx
                    .tx
                    .query_row(
                        "SELECT seq, hash FROM audit WHERE seq <= ?1 ORDER BY seq DESC LIMIT 1",
                        [through],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()
                    .map_err(db("read the audit log"))?,
            };
            let Some((seq, hash)) = last else { return Ok(0) };
            let removed = tx
                .tx
                .execute("DELETE FROM audit WHERE seq <= ?1", [seq])
                .map_err(db("remove audit entries"))?;
            tx.tx
                .execute(
                    "INSERT INTO audit_anchor (one, seq, hash) VALUES (1, ?1, ?2) \
                     ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                    params![seq, hash],
                )
                .map_err(db("move the audit chain's anchor"))?;
            Ok(removed as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(n: usize) -> AuditDraft {
        AuditDraft {
            at_ms: 1_772_000_000_000,
            actor: "agency.rail".into(),
            role: "agency".into(),
            purpose: "ticket_sale".into(),
            action: "decide".into(),
            subject: None,
            detail: format!("{n} {}", "x".repeat(4000)),
        }
    }

    /// Frames in the log now, as a checkpoint reports them.
    fn frames_in_log(path: &Path) -> i64 {
        let conn = open_connection(path, OpenFlags::default()).expect("open");
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
            .expect("checkpoint")
    }

    fn page_size(path: &Path) -> i64 {
        let conn = open_connection(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
        conn.query_row("PRAGMA page_size", [], |row| row.get(0))
            .expect("page size")
    }

    #[test]
    fn a_new_store_has_pages_of_the_chosen_size() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(dir.path()).expect("open");
        assert_eq!(page_size(store.path()), i64::from(PAGE_SIZE));
    }

    /// A database made with SQLite's default pages (an earlier socred)
    /// keeps them, and its log is measured in its own pages.
    #[test]
    fn a_store_made_with_smaller_pages_keeps_them() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join(FILE_NAME);
        {
            let conn = Connection::open(&path).expect("create");
            conn.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;")
                .expect("an empty database of 4 KiB pages");
        }
        let store = SqliteStore::open(dir.path()).expect("open");
        assert_eq!(page_size(&path), 4096);
        let group: Vec<AuditDraft> = (0..10).map(draft).collect();
        store
            .shared
            .append_audit_marked_now(vec![(group, ReadMark::FRESH)])
            .expect("entries");
        let mut polls = 0;
        let bytes = loop {
            let bytes = store.shared.log_bytes.load(Ordering::Relaxed);
            if bytes > 0 {
                break bytes;
            }
            polls += 1;
            assert!(polls < 1000, "the checkpointer never measured the log");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(bytes, frames_in_log(&path) * 4096);
        assert_eq!(page_size(&path), 4096);
    }

    /// A reader holding an old snapshot keeps the checkpointer from
    /// copying the log, as steady writes do; once it has gone, the next
    /// write starts the log over instead of lengthening it.
    #[test]
    fn a_long_log_starts_over_at_the_next_write() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(dir.path()).expect("open");
        let shared = &store.shared;
        shared
            .append_audit_marked_now(vec![(vec![draft(0)], ReadMark::FRESH)])
            .expect("first entry");
        let reader =
            open_connection(&shared.path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("a reader");
        reader.execute_batch("BEGIN").expect("begin");
        let _: i64 = reader
            .query_row("SELECT count(*) FROM audit", [], |row| row.get(0))
            .expect("read");
        for round in 0..5 {
            let group: Vec<AuditDraft> = (0..1000).map(|n| draft(round * 1000 + n)).collect();
            shared
                .append_audit_marked_now(vec![(group, ReadMark::FRESH)])
                .expect("a group of entries");
        }
        // The checkpointer's round after the last commit measures the log.
        let mut polls = 0;
        while shared.log_bytes.load(Ordering::Relaxed) < LOG_RESTART_BYTES {
            polls += 1;
            assert!(polls < 1000, "the checkpointer never measured the log");
            std::thread::sleep(Duration::from_millis(10));
        }
        let long = frames_in_log(&shared.path);
        assert!(
            long * i64::from(PAGE_SIZE) >= LOG_RESTART_BYTES,
            "{long} frames"
        );
        reader.execute_batch("COMMIT").expect("end the read");
        shared
            .append_audit_marked_now(vec![(vec![draft(9)], ReadMark::FRESH)])
            .expect("one more entry");
        let after = frames_in_log(&shared.path);
        assert!(after < 10, "the log went on from {long} frames to {after}");
    }
}
