//! socred's PostgreSQL store, for a registry larger than one machine's
//! embedded database, or several `socred serve` processes sharing one
//! database; its schema is made to be distributed by subject on Citus
//! (docs/citus.md).
//!
//! Semantics are the embedded store's, by construction: the write logic is
//! `socred_store::Writer`, run in memory against rows fetched in a few
//! multi-row statements (the `overlay` module), and the same conformance
//! suite runs against both.
//!
//! Several processes may share one database; nothing that must be unique
//! relies on in-process state:
//! - idempotency: a record key is claimed in `record_keys` (unique on
//!   provider and id) in the transaction that stores the record, and the
//!   subject's row is locked before its items are read, so two writers
//!   sending one key get one `Stored` and one `Duplicate` (or `Conflict`);
//! - refolds: a write locks the state rows of its subjects (identifier
//!   order) before loading their records, so two refolds of one subject
//!   take turns and the second sees the first's records;
//! - audit chain: the head row is locked (`SELECT … FOR UPDATE`) by every
//!   appending transaction, so entries are numbered and chained in commit
//!   order whichever process appends;
//! - review: approving or rejecting locks the item's subject and checks
//!   the item still waits, so one item is decided once.
//!
//! Durability: every write is one transaction; the store turns
//! `synchronous_commit` on for its connections if the server has it off,
//! so an acknowledged write is on disk. Faults: a broken connection is
//! dropped and the call answers [`StoreError::Unavailable`] at once (the
//! server maps it to 503); the next call connects again, so the store works
//! again as soon as the database does. A transaction that met a deadlock or
//! a concurrent claim of the same key runs again, a few times at most.

mod codec;
mod ops;
mod overlay;
mod pool;
mod schema;
mod tls;
mod write;

#[cfg(feature = "cluster")]
pub mod cluster;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use socred_core::state::Span;
use socred_core::{Day, Engine, Fact, Record, Rulebook, SubjectId, SubjectState};
use socred_store::{
    clamp_limit, AuditDraft, AuditEntry, Counts, Drawing, Edition, EditionMember, EditionPage,
    Erasure, ItemKey, ListRow, Outcome, PendingItem, Principal, ReadMark, RulebookVersion, Store,
    StoreError, Submission, UnfinishedRecompute,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Config, Row};

use codec::{
    audit_columns, audit_entry, fact_columns, fact_row, principal, principal_columns,
    record_columns, record_row, subject_of, to_i64,
};
use overlay::Overlay;
pub use pool::Target;
use pool::{decode, pg, Fault, Pool, Session};
pub use schema::{citus_statements, VERSION as SCHEMA_VERSION};

/// Whether to distribute the schema on Citus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Distribution {
    /// One PostgreSQL server (or Citus, with socred's tables left local).
    #[default]
    Single,
    /// Run the migrations' Citus statements when the `citus` extension is
    /// installed in the database (a warning is logged when it is not).
    Citus,
}

/// How the store connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    pub distribution: Distribution,
    /// Most connections open at once.
    pub connections_max: usize,
    /// How long connecting may take before the database counts as down.
    pub connect_timeout: Duration,
    /// How long a call waits for a free connection when all are busy.
    pub checkout_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> PostgresOptions {
        PostgresOptions {
            distribution: Distribution::Single,
            connections_max: 16,
            connect_timeout: Duration::from_secs(5),
            checkout_timeout: Duration::from_secs(30),
        }
    }
}

/// The environment variable that turns distribution on (`1`, `true`, `on`).
pub const CITUS_ENV: &str = "SOCRED_CITUS";
/// The connection string parameter that does the same (`socred_citus=1`).
pub const CITUS_PARAM: &str = "socred_citus";

impl PostgresOptions {
    /// The defaults, with distribution on when `SOCRED_CITUS` says so.
    pub fn from_env() -> PostgresOptions {
        let citus = std::env::var(CITUS_ENV)
            .ok()
            .and_then(|value| flag(&value))
            .unwrap_or(false);
        PostgresOptions {
            distribution: if citus {
                Distribution::Citus
            } else {
                Distribution::Single
            },
            ..PostgresOptions::default()
        }
    }
}

fn flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Some(true),
        "0" | "false" | "off" | "no" | "" => Some(false),
        _ => None,
    }
}

/// A connection string with the parameters socred reads itself taken
/// out: the driver refuses parameters it does not know, and knows neither
/// `socred_citus`, nor `sslrootcert`, nor the `sslmode` values that check
/// the server's certificate (see [`tls`]).
#[derive(Debug, PartialEq, Eq)]
struct Params {
    /// What is left, for the driver.
    url: String,
    citus: Option<bool>,
    tls: tls::Settings,
}

/// Splits a connection string, in URL or `key=value` form, into
/// [`Params`].
fn split_params(url: &str) -> Result<Params, StoreError> {
    let mut citus = None;
    let mut tls = tls::Settings::default();
    let mut take = |key: &str, value: &str| -> Result<bool, StoreError> {
        match key {
            CITUS_PARAM => {
                citus = Some(flag(value).ok_or_else(|| {
                    StoreError::Unavailable(format!(
                        "`{CITUS_PARAM}={value}` in the PostgreSQL connection string: use 1 or 0"
                    ))
                })?);
            }
            "sslmode" => {
                tls.mode = tls::Mode::parse(value).ok_or_else(|| {
                    StoreError::Unavailable(format!(
                        "`sslmode={value}` in the PostgreSQL connection string: use disable, prefer, \
                         require, verify-ca or verify-full"
                    ))
                })?;
            }
            "sslrootcert" => tls.root_cert = Some(PathBuf::from(value)),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if is_url {
        let Some((base, query)) = url.split_once('?') else {
            return Ok(Params {
                url: url.to_string(),
                citus,
                tls,
            });
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let taken = match pair.split_once('=') {
                Some((key, value)) => take(key, &percent_decoded(value))?,
                None => false,
            };
            if !taken {
                kept.push(pair);
            }
        }
        let rebuilt = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok(Params {
            url: rebuilt,
            citus,
            tls,
        });
    }
    let mut kept = Vec::new();
    for word in url.split_whitespace() {
        let taken = match word.split_once('=') {
            Some((key, value)) => take(key, value)?,
            None => false,
        };
        if !taken {
            kept.push(word);
        }
    }
    Ok(Params {
        url: kept.join(" "),
        citus,
        tls,
    })
}

/// A URL query value with its `%XX` escapes decoded (a file name may hold
/// characters a URL escapes); anything that is not a valid escape stays.
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        let escaped = (byte == b'%')
            .then(|| bytes.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                at += 3;
            }
            None => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Attempts of a transaction that met a deadlock or a concurrent claim.
const RETRIES_MAX: u32 = 8;
/// Subjects refolded per transaction by `recompute_all`.
const RECOMPUTE_BATCH: usize = 1000;
/// Sources looked up per statement when `verify` looks for list rows from
/// subjects with no state: a bounded array parameter.
const SOURCES_PER_STATEMENT: usize = 10_000;

/// Whether a failed attempt may run again on a fresh connection when its
/// connection broke.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Reads change nothing: always.
    Read,
    /// Writes: only when the connection broke before anything was sent.
    Write,
}

struct Shared {
    pool: Pool,
    distributed: bool,
}

/// The PostgreSQL store. Cloning shares the connections.
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.shared.pool.target)
            .field("distributed", &self.shared.distributed)
            .finish()
    }
}

impl PostgresStore {
    /// The audit chain's head or anchor row, read by `sql`: its seq and
    /// hash; None without one, or at entry 0 (the empty chain's head).
    async fn chain_end(
        &self,
        what: &'static str,
        sql: &'static str,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let end = self
            .read_opt(what, sql, &[], |row| {
                let get = decode("read the audit chain's ends");
                let seq: i64 = row.try_get(0).map_err(&get)?;
                let hash: String = row.try_get(1).map_err(&get)?;
                Ok((seq, hash))
            })
            .await?;
        match end {
            None => Ok(None),
            Some((seq, hash)) => match u64::try_from(seq) {
                Ok(0) => Ok(None),
                Ok(seq) => Ok(Some((seq, hash))),
                Err(_) => Err(StoreError::Corrupt(format!("{what}: entry {seq}"))),
            },
        }
    }

    /// Connects to `url` (`postgres://user:password@host:port/database` or
    /// `host=… user=… dbname=…`) with [`PostgresOptions::from_env`] and
    /// brings the schema up to date. A wrong connection string, a refused
    /// connection or a refused login fails here, naming host, port,
    /// database and user, never the password.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, PostgresOptions::from_env()).await
    }

    /// [`PostgresStore::connect`] with explicit options; `socred_citus=1`
    /// in the connection string turns distribution on as well.
    pub async fn connect_with(
        url: &str,
        options: PostgresOptions,
    ) -> Result<PostgresStore, StoreError> {
        let Params {
            url,
            citus: citus_param,
            tls,
        } = split_params(url)?;
        let mut config: Config = url.parse().map_err(|error| {
            StoreError::Unavailable(format!(
                "the PostgreSQL connection string is not valid: {}",
                pool::describe(&error)
            ))
        })?;
        if config.get_user().is_none() {
            return Err(StoreError::Unavailable(
                "the PostgreSQL connection string names no user".into(),
            ));
        }
        config
            .application_name("socred")
            .connect_timeout(options.connect_timeout)
            .keepalives_idle(Duration::from_secs(30))
            .ssl_mode(tls.mode.driver());
        let connector = tls::connector(&tls).map_err(|message| {
            StoreError::Unavailable(format!("PostgreSQL connection string: {message}"))
        })?;
        let distribution = match citus_param {
            Some(true) => Distribution::Citus,
            Some(false) => Distribution::Single,
            None => options.distribution,
        };
        let pool = Pool::new(
            config,
            connector,
            options.connections_max,
            options.checkout_timeout,
        );
        let target = pool.target.clone();
        let at = |fault: Fault| match fault {
            Fault::Store(error) => prefix(&target, error),
            Fault::Retry(message) | Fault::Connection { message, .. } => {
                StoreError::Unavailable(format!("PostgreSQL at {target}: {message}"))
            }
        };
        let mut conn = pool.connect().await.map_err(at)?;
        let applied = schema::migrate(conn.client_mut(), distribution == Distribution::Citus)
            .await
            .map_err(at)?;
        if applied.citus_missing {
            tracing::warn!(
                "distribution on Citus was asked for, but the citus extension is not installed in \
                 database `{}`: the tables stay local",
                target.database
            );
        }
        let fsync = conn
            .client_mut()
            .query_one("SHOW fsync", &[])
            .await
            .map_err(pg("read fsync"))
            .map_err(at)?;
        if fsync.try_get::<_, &str>(0).ok() == Some("off") {
            tracing::warn!(
                "PostgreSQL at {target} runs with fsync off: acknowledged writes may be lost in a crash"
            );
        }
        pool.release(conn);
        Ok(PostgresStore {
            shared: Arc::new(Shared {
                pool,
                distributed: applied.distributed,
            }),
        })
    }

    /// Where the store connects (no password).
    pub fn target(&self) -> &Target {
        &self.shared.pool.target
    }

    /// Whether the schema is distributed on Citus.
    pub fn distributed(&self) -> bool {
        self.shared.distributed
    }

    /// Runs `attempt` until it succeeds, gives a final error, or has met
    /// conflicts [`RETRIES_MAX`] times. A broken connection drops every
    /// idle one and, when nothing can have been changed, the attempt runs
    /// once more on a fresh connection (the common case after the database
    /// restarted: the pooled connections are all dead).
    async fn run<T, F, Fut>(&self, kind: Kind, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Fault>>,
    {
        let target = &self.shared.pool.target;
        let mut conflicts = 0;
        let mut replayed = false;
        loop {
            let fault = match attempt().await {
                Ok(value) => return Ok(value),
                Err(fault) => fault,
            };
            match fault {
                Fault::Store(error) => return Err(prefix(target, error)),
                Fault::Retry(message) => {
                    conflicts += 1;
                    if conflicts >= RETRIES_MAX {
                        return Err(StoreError::Unavailable(format!(
                            "PostgreSQL at {target}: gave up after {conflicts} attempts: {message}"
                        )));
                    }
                    tracing::debug!("retrying a transaction: {message}");
                    tokio::time::sleep(backoff(conflicts)).await;
                }
                Fault::Connection {
                    message,
                    replayable,
                } => {
                    self.shared.pool.drop_idle();
                    if replayed || !(replayable || kind == Kind::Read) {
                        return Err(StoreError::Unavailable(format!(
                            "PostgreSQL at {target}: {message}"
                        )));
                    }
                    replayed = true;
                }
            }
        }
    }

    /// A page of subjects from `sql`, which takes the subject to start
    /// after (`$1`, text), the page's length (`$2`) and, when given, a day
    /// (`$3`).
    async fn subject_page(
        &self,
        what: &'static str,
        sql: &'static str,
        after: Option<SubjectId>,
        limit: usize,
        day: Option<Day>,
    ) -> Result<Vec<SubjectId>, StoreError> {
        let after = after.map_or(String::new(), |a| a.to_string());
        let limit = clamp_limit(limit) as i64;
        let day = day.map(|day| day.0);
        let mut bound: Vec<&(dyn ToSql + Sync)> = vec![&after, &limit];
        if let Some(day) = &day {
            bound.push(day);
        }
        self.read_rows(what, sql, &bound, |row| {
            Ok(subject_of(row.try_get(0).map_err(decode(what))?)?)
        })
        .await
    }

    /// Runs one read statement on a pooled connection (again on a fresh
    /// one when the connection broke) and decodes each row it returns with
    /// `each`: every read of the store is one or two of these.
    async fn read_rows<T, E>(
        &self,
        context: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        each: E,
    ) -> Result<Vec<T>, StoreError>
    where
        E: Fn(&Row) -> Result<T, Fault> + Sync,
    {
        let pool = &self.shared.pool;
        let each = &each;
        self.run(Kind::Read, move || async move {
            let mut lease = pool.get().await?;
            let (client, cache) = lease.parts()?;
            let rows = Session::new(&*client, cache)
                .query(context, sql, params)
                .await?;
            rows.iter().map(each).collect()
        })
        .await
    }

    /// [`PostgresStore::read_rows`] for a statement that returns at most
    /// one row.
    async fn read_opt<T, E>(
        &self,
        context: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        each: E,
    ) -> Result<Option<T>, StoreError>
    where
        E: Fn(&Row) -> Result<T, Fault> + Sync,
    {
        let mut rows = self.read_rows(context, sql, params, each).await?;
        if rows.len() > 1 {
            return Err(StoreError::Corrupt(format!(
                "{context}: {} rows where one at most was expected",
                rows.len()
            )));
        }
        Ok(rows.pop())
    }
}

/// A subject's state and the entries reaching it: one statement, one
/// shard.
const STATE_SQL: &str = "SELECT (SELECT state FROM states WHERE subject = $1), \
                         ARRAY(SELECT entry FROM derived WHERE target = $1)";

/// The state of `subject` from a row of [`STATE_SQL`].
fn state_row(subject: SubjectId, row: &Row) -> Result<Option<Arc<SubjectState>>, Fault> {
    let get = decode("read a state");
    let stored: Option<&[u8]> = row.try_get(0).map_err(&get)?;
    let entries: Vec<&str> = row.try_get(1).map_err(&get)?;
    Ok(codec::state(subject, stored, &entries)?.map(Arc::new))
}

/// Puts where the store connects in front of an unavailability message.
fn prefix(target: &Target, error: StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(message) if !message.starts_with("PostgreSQL at") => {
            StoreError::Unavailable(format!("PostgreSQL at {target}: {message}"))
        }
        other => other,
    }
}

/// A few milliseconds, more after each conflict, varied so that two
/// writers that collided do not collide again.
fn backoff(attempt: u32) -> Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 5_000_000);
    Duration::from_millis(u64::from(attempt) * 5) + Duration::from_nanos(u64::from(jitter))
}

/// An edition from `day, rulebook, drawn, members, mark_ms` at column `at`
/// of `row`.
fn edition_of(row: &Row, at: usize) -> Result<Edition, Fault> {
    let get = decode("read a list's edition");
    Ok(Edition {
        day: Day(row.try_get(at).map_err(&get)?),
        rulebook: row.try_get(at + 1).map_err(&get)?,
        drawn: Day(row.try_get(at + 2).map_err(&get)?),
        members: u64::try_from(row.try_get::<_, i64>(at + 3).map_err(&get)?).unwrap_or(0),
        mark_ms: row.try_get(at + 4).map_err(&get)?,
    })
}

fn limit_param(limit: usize) -> i64 {
    clamp_limit(limit) as i64
}

/// Runs the writer against `overlay` on the blocking pool (the fold of a
/// large batch takes every core for a while) and gives the overlay back.
async fn in_memory<R: Send + 'static>(
    mut overlay: Overlay,
    work: impl FnOnce(&mut Overlay) -> Result<R, StoreError> + Send + 'static,
) -> Result<(Overlay, R), Fault> {
    let result = tokio::task::spawn_blocking(move || {
        let result = work(&mut overlay);
        result.map(|value| (overlay, value))
    })
    .await
    .map_err(|error| StoreError::Unavailable(format!("a store task failed: {error}")))?;
    Ok(result?)
}

#[async_trait]
impl Store for PostgresStore {
    async fn ingest(
        &self,
        engine: &Arc<Engine>,
        batch: Vec<Submission>,
        audit: Vec<AuditDraft>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let (batch, audit) = (&batch, &audit);
        self.run(Kind::Write, move || self.try_ingest(engine, batch, audit))
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
        let decision = ops::Decision::Approve(today);
        let (audit, decision) = (&audit, &decision);
        self.run(Kind::Write, move || {
            self.try_review(engine, key, reviewer, decision, audit)
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
        let decision = ops::Decision::Reject(reason.to_string());
        let (audit, decision) = (&audit, &decision);
        self.run(Kind::Write, move || {
            self.try_review(engine, key, reviewer, decision, audit)
        })
        .await
    }

    async fn pending(
        &self,
        rulebook: &Rulebook,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<PendingItem>, StoreError> {
        let after = to_i64(after.unwrap_or(0));
        let limit = clamp_limit(limit);
        let limit_sql = limit as i64;
        let params: [&(dyn ToSql + Sync); 2] = [&after, &limit_sql];
        let (records, facts) = tokio::try_join!(
            self.read_rows(
                "read pending records",
                concat!(
                    "SELECT ",
                    record_columns!(),
                    " FROM records WHERE status = 1 AND pending_seq > $1 \
                     ORDER BY pending_seq LIMIT $2"
                ),
                &params,
                record_row,
            ),
            self.read_rows(
                "read pending facts",
                concat!(
                    "SELECT ",
                    fact_columns!(),
                    " FROM facts WHERE status = 1 AND pending_seq > $1 \
                     ORDER BY pending_seq LIMIT $2"
                ),
                &params,
                fact_row,
            ),
        )?;
        socred_store::pending_items(rulebook, records, facts, limit)
    }

    /// Both tables are keyed by subject first, so each reads the subject's
    /// few rows on its key; on Citus both go to the subject's shard.
    async fn pending_about(
        &self,
        rulebook: &Rulebook,
        subject: SubjectId,
        limit: usize,
    ) -> Result<Vec<PendingItem>, StoreError> {
        let key = subject.as_str();
        let limit = clamp_limit(limit);
        let limit_sql = limit as i64;
        let params: [&(dyn ToSql + Sync); 2] = [&key, &limit_sql];
        let (records, facts) = tokio::try_join!(
            self.read_rows(
                "read a subject's pending records",
                concat!(
                    "SELECT ",
                    record_columns!(),
                    " FROM records WHERE subject = $1 AND status = 1 \
                     ORDER BY pending_seq LIMIT $2"
                ),
                &params,
                record_row,
            ),
            self.read_rows(
                "read a subject's pending facts",
                concat!(
                    "SELECT ",
                    fact_columns!(),
                    " FROM facts WHERE subject = $1 AND status = 1 \
                     ORDER BY pending_seq LIMIT $2"
                ),
                &params,
                fact_row,
            ),
        )?;
        socred_store::pending_items(rulebook, records, facts, limit)
    }

    async fn state(&self, subject: SubjectId) -> Result<Option<Arc<SubjectState>>, StoreError> {
        let key = subject.as_str();
        self.read_opt("read a state", STATE_SQL, &[&key], |row| {
            state_row(subject, row)
        })
        .await?
        .ok_or_else(|| StoreError::Corrupt("a state read returned no row".into()))
    }

    /// Fresh reads, as [`Store::state_marked`] gives here, pipelined as
    /// [`Store::states_of`] reads them.
    async fn states_marked(
        &self,
        subjects: &[SubjectId],
    ) -> Result<(Vec<Option<Arc<SubjectState>>>, ReadMark), StoreError> {
        Ok((self.states_of(subjects).await?, ReadMark::FRESH))
    }

    /// Each subject's read of [`Store::state`] (one shard each), all
    /// pipelined on one connection: one round trip for the lot.
    async fn states_of(
        &self,
        subjects: &[SubjectId],
    ) -> Result<Vec<Option<Arc<SubjectState>>>, StoreError> {
        let keys: Vec<&str> = subjects.iter().map(|s| s.as_str()).collect();
        let params: Vec<[&(dyn ToSql + Sync); 1]> = keys.iter().map(|key| [key as _]).collect();
        let (pool, params) = (&self.shared.pool, &params);
        self.run(Kind::Read, move || async move {
            let mut lease = pool.get().await?;
            let (client, cache) = lease.parts()?;
            let statement = Session::new(&*client, cache).prepare(STATE_SQL).await?;
            let reads = params
                .iter()
                .map(|params| client.query_one(&statement, params));
            let rows = futures_util::future::try_join_all(reads)
                .await
                .map_err(pg("read a state"))?;
            rows.iter()
                .zip(subjects)
                .map(|(row, &subject)| state_row(subject, row))
                .collect()
        })
        .await
    }

    async fn records(
        &self,
        rulebook: &Rulebook,
        subject: SubjectId,
    ) -> Result<(Vec<Record>, Vec<Fact>), StoreError> {
        let key = subject.as_str();
        let params: [&(dyn ToSql + Sync); 1] = [&key];
        let (record_rows, fact_rows) = tokio::try_join!(
            self.read_rows(
                "load a subject's records",
                concat!(
                    "SELECT ",
                    record_columns!(),
                    " FROM records WHERE subject = $1 AND status = 0 ORDER BY provider, id"
                ),
                &params,
                record_row,
            ),
            self.read_rows(
                "load a subject's facts",
                concat!(
                    "SELECT ",
                    fact_columns!(),
                    " FROM facts WHERE subject = $1 AND status = 0 \
                     ORDER BY kind, record_provider, record_id, day, reporter"
                ),
                &params,
                fact_row,
            ),
        )?;
        socred_store::decode_subject(rulebook, &record_rows, &fact_rows)
    }

    /// Through the states by key (schema 14 keeps the stamp beside each,
    /// without an index). Rows with no state are a write's placeholders,
    /// left out as by `subjects`.
    async fn subjects_changed(
        &self,
        since_ms: i64,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError> {
        let after = after.map_or(String::new(), |s| s.as_str().to_string());
        let what = "list the subjects changed";
        self.read_rows(
            what,
            "SELECT subject FROM states \
             WHERE subject > $1 AND changed_ms >= $2 AND state IS NOT NULL \
             ORDER BY subject LIMIT $3",
            &[&after.as_str(), &since_ms, &limit_param(limit)],
            |row| Ok(subject_of(row.try_get(0).map_err(decode(what))?)?),
        )
        .await
    }

    async fn list_members(
        &self,
        list: &str,
        day: Day,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<(SubjectId, Span)>, StoreError> {
        let after = after.map_or(String::new(), |s| s.as_str().to_string());
        // One row per member: its latest-ending entry, the earliest
        // starting of those.
        self.read_rows(
            "read a list",
            "SELECT DISTINCT ON (subject) subject, entry_from, entry_until FROM list_entries \
             WHERE list = $1 AND subject > $2 AND from_day <= $3 AND until_day > $3 \
             ORDER BY subject, entry_until DESC, entry_from ASC LIMIT $4",
            &[&list, &after.as_str(), &day.0, &limit_param(limit)],
            |row| {
                let get = decode("read a list member");
                let subject = subject_of(row.try_get(0).map_err(&get)?)?;
                let span = Span {
                    start: Day(row.try_get(1).map_err(&get)?),
                    end: Day(row.try_get(2).map_err(&get)?),
                };
                Ok((subject, span))
            },
        )
        .await
    }

    async fn edition(&self, list: &str) -> Result<Option<Edition>, StoreError> {
        self.read_opt(
            "read a list's edition",
            "SELECT day, rulebook, drawn, members, mark_ms FROM editions WHERE list = $1 AND day >= 0",
            &[&list],
            |row| edition_of(row, 0),
        )
        .await
    }

    async fn editions(&self) -> Result<Vec<(String, Edition)>, StoreError> {
        self.read_rows(
            "read the lists' editions",
            "SELECT list, day, rulebook, drawn, members, mark_ms FROM editions WHERE day >= 0 \
             ORDER BY list",
            &[],
            |row| {
                let list = row.try_get(0).map_err(decode("read the lists' editions"))?;
                Ok((list, edition_of(row, 1)?))
            },
        )
        .await
    }

    async fn edition_members(
        &self,
        list: &str,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Option<EditionPage>, StoreError> {
        let after = after.map_or(String::new(), |s| s.as_str().to_string());
        // The edition again after its page, until it stands still: a
        // drawing published between the two reads would otherwise mix two
        // editions (one statement would not hold them together on Citus,
        // where the page's shards answer apart). Each drawing's edition
        // differs from the one before (`publish_edition`).
        let mut edition = self.edition(list).await?;
        loop {
            let Some(was) = edition else {
                return Ok(None);
            };
            let members = self
                .read_rows(
                    "read a list's edition",
                    "SELECT subject, named FROM edition_members WHERE list = $1 AND subject > $2 \
                     ORDER BY subject LIMIT $3",
                    &[&list, &after.as_str(), &limit_param(limit)],
                    |row| {
                        let get = decode("read a list's edition");
                        Ok(EditionMember {
                            subject: subject_of(row.try_get(0).map_err(&get)?)?,
                            named: row.try_get(1).map_err(&get)?,
                        })
                    },
                )
                .await?;
            edition = self.edition(list).await?;
            if edition.as_ref() == Some(&was) {
                return Ok(Some(EditionPage {
                    edition: was,
                    members,
                }));
            }
        }
    }

    async fn publish_edition(
        &self,
        list: &str,
        drawing: Drawing<'_>,
        members: Vec<EditionMember>,
        audit: Vec<AuditDraft>,
    ) -> Result<bool, StoreError> {
        let members = socred_store::edition_members_once(members);
        let (subjects, named): (Vec<&str>, Vec<bool>) = members
            .iter()
            .map(|m| (m.subject.as_str(), m.named))
            .unzip();
        let (members, audit) = ((&subjects, &named), &audit);
        self.run(Kind::Write, move || {
            self.try_publish_edition(list, drawing, members, audit)
        })
        .await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.read_opt(
            "read the totals",
            "SELECT SUM(subjects)::int8, SUM(records)::int8, SUM(facts)::int8, \
             SUM(pending)::int8, SUM(audit_entries)::int8, SUM(principals)::int8, \
             SUM(rulebooks)::int8 FROM totals",
            &[],
            |row| {
                let get = decode("read the totals");
                let total = |index: usize| -> Result<u64, Fault> {
                    let value: Option<i64> = row.try_get(index).map_err(&get)?;
                    Ok(u64::try_from(value.unwrap_or(0)).unwrap_or(0))
                };
                Ok(Counts {
                    subjects: total(0)?,
                    records: total(1)?,
                    facts: total(2)?,
                    pending: total(3)?,
                    audit_entries: total(4)?,
                    principals: total(5)?,
                    rulebooks: total(6)?,
                })
            },
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("the totals returned no row".into()))
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
            uploaded_at_ms: socred_store::now_ms(),
            uploaded_by: uploaded_by.to_string(),
        };
        let (version, audit) = (&version, &audit);
        self.run(Kind::Write, move || {
            self.try_put_rulebook(version, text, audit)
        })
        .await
    }

    async fn current_rulebook(&self) -> Result<Option<(String, String)>, StoreError> {
        self.read_opt(
            "read the current rulebook",
            "SELECT label, body FROM rulebooks ORDER BY seq DESC LIMIT 1",
            &[],
            |row| {
                let get = decode("read the current rulebook");
                Ok((row.try_get(0).map_err(&get)?, row.try_get(1).map_err(&get)?))
            },
        )
        .await
    }

    async fn held_record_types(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows = self
            .read_rows(
                "count the records held by type",
                "SELECT type, count(*)::int8 FROM records WHERE status <> 3 /* erased */ GROUP BY type",
                &[],
                |row| {
                    let get = decode("read a count of records by type");
                    let count: i64 = row.try_get(1).map_err(&get)?;
                    Ok((
                        row.try_get::<_, String>(0).map_err(&get)?,
                        u64::try_from(count).unwrap_or(0),
                    ))
                },
            )
            .await?;
        Ok(rows.into_iter().collect())
    }

    async fn rulebooks(&self) -> Result<Vec<RulebookVersion>, StoreError> {
        self.read_rows(
            "list rulebook versions",
            "SELECT label, uploaded_at_ms, uploaded_by FROM rulebooks ORDER BY seq",
            &[],
            |row| {
                let get = decode("read a rulebook version");
                Ok(RulebookVersion {
                    label: row.try_get(0).map_err(&get)?,
                    uploaded_at_ms: row.try_get(1).map_err(&get)?,
                    uploaded_by: row.try_get(2).map_err(&get)?,
                })
            },
        )
        .await
    }

    async fn recompute_all(&self, engine: &Arc<Engine>) -> Result<u64, StoreError> {
        let mut after = match self.unfinished_recompute().await? {
            Some(unfinished) if unfinished.rulebook == engine.rulebook.label() => unfinished.after,
            _ => String::new(),
        };
        let mut total = 0u64;
        loop {
            // Each page is its own transaction, so ingestion goes on between them.
            let from = after.as_str();
            let (last, count) = self
                .run(Kind::Write, move || self.try_recompute_page(engine, from))
                .await?;
            total += count;
            match last {
                Some(subject) => after = subject,
                None => return Ok(total),
            }
        }
    }

    /// A subject's access log is read through `audit_subjects`, which
    /// every append writes in its transaction (on the subject's shard under
    /// Citus): each entry about a subject must be in it, and each of its
    /// rows must name an entry about that subject.
    async fn check_audit_by_subject(&self) -> Result<Vec<String>, StoreError> {
        let first = |row: &Row| {
            let get = decode("compare the audit log with audit_subjects");
            let count: i64 = row.try_get(2).map_err(&get)?;
            Ok((
                u64::try_from(count).unwrap_or(0),
                Some((
                    row.try_get::<_, i64>(0).map_err(&get)?,
                    row.try_get(1).map_err(&get)?,
                )),
            ))
        };
        // Entries about a subject without their row, then rows without
        // their entry: the first of each, and how many.
        let queries = [
            "SELECT a.seq, a.subject, count(*) OVER () FROM audit a \
             WHERE a.subject IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM audit_subjects s WHERE s.subject = a.subject AND s.seq = a.seq) \
             ORDER BY a.seq LIMIT 1",
            "SELECT s.seq, s.subject, count(*) OVER () FROM audit_subjects s \
             WHERE NOT EXISTS \
             (SELECT 1 FROM audit a WHERE a.seq = s.seq AND a.subject = s.subject) \
             ORDER BY s.seq LIMIT 1",
        ];
        let mut found = Vec::new();
        for sql in queries {
            let first = self
                .read_opt("compare the audit log with audit_subjects", sql, &[], first)
                .await?;
            found.push(first.unwrap_or((0, None)));
        }
        let wrong = found.pop().unwrap_or((0, None));
        let missing = found.pop().unwrap_or((0, None));
        Ok(socred_store::audit_by_subject_problems(
            "the table audit_subjects",
            missing,
            wrong,
            "Rebuild it: `INSERT INTO audit_subjects SELECT subject, seq FROM audit WHERE subject \
             IS NOT NULL ON CONFLICT DO NOTHING`, and delete the rows the log does not bear out",
        ))
    }

    async fn unfinished_recompute(&self) -> Result<Option<UnfinishedRecompute>, StoreError> {
        self.read_opt(
            "read the recomputation left to do",
            "SELECT rulebook, last_subject FROM recompute",
            &[],
            |row| {
                let get = decode("read the recomputation left to do");
                Ok(UnfinishedRecompute {
                    rulebook: row.try_get(0).map_err(&get)?,
                    after: row.try_get(1).map_err(&get)?,
                })
            },
        )
        .await
    }

    async fn erase(
        &self,
        engine: &Arc<Engine>,
        subjects: Vec<SubjectId>,
        today: Day,
        audit: AuditDraft,
    ) -> Result<Erasure, StoreError> {
        let (subjects, audit) = (&subjects, &audit);
        self.run(Kind::Write, move || {
            self.try_erase(engine, subjects, today, audit)
        })
        .await
    }

    async fn put_principal(
        &self,
        principal: &Principal,
        token_hash: &str,
        audit: Vec<AuditDraft>,
    ) -> Result<(), StoreError> {
        let audit = &audit;
        self.run(Kind::Write, move || {
            self.try_put_principal(principal, token_hash, audit)
        })
        .await
    }

    async fn principal_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<Principal>, StoreError> {
        self.read_opt(
            "look up a token hash",
            concat!(
                "SELECT ",
                principal_columns!(),
                " FROM principals WHERE token_hash = $1 AND NOT revoked"
            ),
            &[&token_hash],
            principal,
        )
        .await
    }

    async fn principals(&self) -> Result<Vec<Principal>, StoreError> {
        self.read_rows(
            "list principals",
            concat!(
                "SELECT ",
                principal_columns!(),
                " FROM principals ORDER BY id"
            ),
            &[],
            principal,
        )
        .await
    }

    async fn principal(&self, id: &str) -> Result<Option<Principal>, StoreError> {
        let mut found = self
            .read_rows(
                "read a principal",
                concat!(
                    "SELECT ",
                    principal_columns!(),
                    " FROM principals WHERE id = $1"
                ),
                &[&id],
                principal,
            )
            .await?;
        Ok(found.pop())
    }

    async fn revoke(&self, id: &str, audit: Vec<AuditDraft>) -> Result<(), StoreError> {
        let audit = &audit;
        self.run(Kind::Write, move || self.try_revoke(id, audit))
            .await
    }

    async fn append_audit(&self, entries: Vec<AuditDraft>) -> Result<Vec<u64>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let entries = &entries;
        self.run(Kind::Write, move || self.try_append_audit(entries))
            .await
    }

    async fn audit(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.read_rows(
            "read the audit log",
            concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"
            ),
            &[&to_i64(after), &limit_param(limit)],
            audit_entry,
        )
        .await
    }

    async fn audit_for_subject(
        &self,
        subject: SubjectId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        // The subject's shard says which entries; the chain has them.
        let seqs = self
            .read_rows(
                "read a subject's audit index",
                "SELECT seq FROM audit_subjects WHERE subject = $1 AND seq > $2 \
                 ORDER BY seq LIMIT $3",
                &[&subject.as_str(), &to_i64(after), &limit_param(limit)],
                |row| {
                    row.try_get::<_, i64>(0)
                        .map_err(decode("read a subject's audit index"))
                },
            )
            .await?;
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        self.read_rows(
            "read a subject's audit entries",
            concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit WHERE seq = ANY($1::int8[]) ORDER BY seq"
            ),
            &[&seqs],
            audit_entry,
        )
        .await
    }

    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.run(Kind::Write, move || self.try_secret(name, fresh))
            .await
    }

    async fn lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        self.run(Kind::Write, move || {
            self.try_lease(name, holder, now_ms, until_ms)
        })
        .await
    }

    async fn audit_anchor(&self) -> Result<Option<(u64, String)>, StoreError> {
        self.chain_end(
            "read the audit chain's anchor",
            "SELECT seq, hash FROM audit_anchor WHERE one = 1",
        )
        .await
    }

    async fn audit_before(&self, before_ms: i64) -> Result<Option<u64>, StoreError> {
        // In `seq` order from the start: reads the stretch that is older,
        // and one entry more.
        let end = self
            .read_opt(
                "read the audit log",
                "SELECT CASE \
                   WHEN newer.seq IS NULL THEN (SELECT MAX(seq) FROM audit) \
                   WHEN newer.seq > (SELECT MIN(seq) FROM audit) THEN newer.seq - 1 \
                 END \
                 FROM (SELECT (SELECT seq FROM audit WHERE at_ms >= $1 ORDER BY seq LIMIT 1) AS seq) newer",
                &[&before_ms],
                |row| {
                    row.try_get::<_, Option<i64>>(0)
                        .map_err(decode("read the audit log"))
                },
            )
            .await?
            .flatten();
        Ok(end.and_then(|seq| u64::try_from(seq).ok()))
    }

    async fn prune_audit(&self, through: u64, limit: usize) -> Result<u64, StoreError> {
        if limit == 0 {
            return Ok(0);
        }
        let (through, limit) = (to_i64(through), limit_param(limit));
        self.run(Kind::Write, move || self.try_prune_audit(through, limit))
            .await
    }

    async fn audit_head(&self) -> Result<Option<(u64, String)>, StoreError> {
        self.chain_end(
            "read the audit chain head",
            "SELECT seq, hash FROM audit_head WHERE one = 1",
        )
        .await
    }

    /// Records in effect whose subject has no state, then list rows whose
    /// source has none. A record planted for a subject that has a state is
    /// refolded in (records are read by subject), so `verify` sees that
    /// state differ; one planted for a subject without a state is found
    /// here, by one pass over the records (`records` and `states` are
    /// co-located by subject on Citus, so the anti-join runs on each shard).
    /// List rows are found in three steps rather than one anti-join so that
    /// each reads one table (on Citus, `list_entries` and `states` are
    /// distributed on the subject, and `source` is not a subject column).
    async fn unlisted_records(&self, limit: usize) -> Result<Vec<(SubjectId, String)>, StoreError> {
        let limit = clamp_limit(limit);
        if limit == 0 {
            return Ok(Vec::new());
        }
        // A lock row (NULL state) is not a state, but it never outlives the
        // write that took it, and that write commits the subject's records
        // with its state: in one snapshot they come together.
        let mut unlisted = self
            .read_rows(
                "read the records of subjects with no state",
                "SELECT r.subject, r.provider, r.id FROM records r \
                 WHERE r.status = 0 AND NOT EXISTS \
                 (SELECT 1 FROM states s WHERE s.subject = r.subject AND s.state IS NOT NULL) \
                 ORDER BY r.subject, r.provider, r.id LIMIT $1",
                &[&limit_param(limit)],
                |row| {
                    let get = decode("read a record of a subject with no state");
                    let subject: String = row.try_get(0).map_err(&get)?;
                    let provider: String = row.try_get(1).map_err(&get)?;
                    let id: String = row.try_get(2).map_err(&get)?;
                    Ok((
                        subject_of(&subject)?,
                        format!(
                            "record {provider}/{id} is in effect but its subject has no state: it \
                             was added behind the store's back"
                        ),
                    ))
                },
            )
            .await?;
        let limit = limit - unlisted.len().min(limit);
        if limit == 0 {
            return Ok(unlisted);
        }
        let sources = self
            .read_rows(
                "read the list rows' sources",
                "SELECT DISTINCT source FROM list_entries ORDER BY source",
                &[],
                |row| {
                    row.try_get::<_, String>(0)
                        .map_err(decode("read a list row's source"))
                },
            )
            .await?;
        // A state is never deleted and a source's rows commit with its
        // state, so a source whose rows the first read saw has its state
        // visible to this later one unless the rows were added by hand.
        let mut orphans: Vec<String> = Vec::new();
        for chunk in sources.chunks(SOURCES_PER_STATEMENT) {
            let with_state = self
                .read_rows(
                    "look up the states of list rows' sources",
                    "SELECT subject FROM states WHERE subject = ANY($1::text[]) \
                     AND state IS NOT NULL ORDER BY subject",
                    &[&chunk],
                    |row| {
                        row.try_get::<_, String>(0)
                            .map_err(decode("read a source's subject"))
                    },
                )
                .await?;
            orphans.extend(
                chunk
                    .iter()
                    .filter(|source| with_state.binary_search(source).is_err())
                    .cloned(),
            );
            // Each source has a row at least: enough to report `limit`.
            if orphans.len() >= limit {
                break;
            }
        }
        if orphans.is_empty() {
            return Ok(unlisted);
        }
        let rows = self
            .read_rows(
                "read list rows from sources with no state",
                "SELECT DISTINCT subject, list, source FROM list_entries \
                 WHERE source = ANY($1::text[]) ORDER BY subject, list, source LIMIT $2",
                &[&orphans, &limit_param(limit)],
                |row| {
                    let get = decode("read a list row from a source with no state");
                    let subject: String = row.try_get(0).map_err(&get)?;
                    let list: String = row.try_get(1).map_err(&get)?;
                    let source: String = row.try_get(2).map_err(&get)?;
                    Ok((subject_of(&subject)?, list, source))
                },
            )
            .await?;
        unlisted.extend(rows.into_iter().map(|(subject, list, source)| {
            (
                subject,
                format!(
                    "on list {list} by a row from {source}, which has no state: the row was \
                     added behind the store's back"
                ),
            )
        }));
        Ok(unlisted)
    }

    /// By the index `states_by_retention` (schema 7). Rows with no state
    /// are a write's placeholders, never due.
    async fn subjects_past_retention(
        &self,
        today: Day,
        after: Option<(Day, SubjectId)>,
        limit: usize,
    ) -> Result<Vec<(Day, SubjectId)>, StoreError> {
        let (after_day, after_subject) = socred_store::retention_cursor(after);
        let limit = clamp_limit(limit) as i64;
        let what = "list the subjects with records past retention";
        self.read_rows(
            what,
            "SELECT retention_ends, subject FROM states \
             WHERE retention_ends <= $1 AND state IS NOT NULL \
             AND (retention_ends::int8, subject) > ($2, $3) \
             ORDER BY retention_ends, subject LIMIT $4",
            &[&today.0, &after_day, &after_subject.as_str(), &limit],
            |row| {
                let day: i32 = row.try_get(0).map_err(decode(what))?;
                Ok((Day(day), subject_of(row.try_get(1).map_err(decode(what))?)?))
            },
        )
        .await
    }

    /// Waiting records by the primary key's subject and the partial index
    /// `records_pending`; rejected ones by `records_rejected` (schema 5);
    /// retractions by `facts_retracted` (schema 6) and resolutions that
    /// retract by `facts_resolved` (schema 16), each retracted record's
    /// decision day by the primary key, on the same shard under Citus.
    async fn subjects_not_in_effect(
        &self,
        after: Option<SubjectId>,
        decided_by: Day,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError> {
        self.subject_page(
            "list the subjects with records not in effect",
            "SELECT subject FROM records WHERE status = 1 AND subject > $1 AND decided_at <= $3 \
             UNION SELECT subject FROM records WHERE status = 2 AND subject > $1 \
                 AND decided_at <= $3 \
             UNION SELECT f.subject FROM facts f JOIN records r ON r.subject = f.subject \
                 AND r.provider = f.record_provider AND r.id = f.record_id \
                 WHERE f.kind = 'retracted' AND f.status = 0 AND f.subject > $1 \
                 AND r.decided_at <= $3 \
             UNION SELECT f.subject FROM facts f JOIN records r ON r.subject = f.subject \
                 AND r.provider = f.record_provider AND r.id = f.record_id \
                 WHERE f.kind = 'resolved' AND f.status = 0 AND f.subject > $1 \
                 AND f.body::jsonb ->> 'outcome' = 'retracted' \
                 AND r.decided_at <= $3 \
             ORDER BY 1 LIMIT $2",
            after,
            limit,
            Some(decided_by),
        )
        .await
    }

    /// By the partial index `facts_disputed` (schema 4). On Citus each
    /// shard answers for its subjects and the coordinator merges them in
    /// order; the resolutions are looked up on the same shard.
    async fn disputed_subjects(
        &self,
        after: Option<SubjectId>,
        limit: usize,
    ) -> Result<Vec<SubjectId>, StoreError> {
        self.subject_page(
            "list the subjects with open objections",
            "SELECT DISTINCT d.subject FROM facts d \
             WHERE d.kind = 'disputed' AND d.status = 0 AND d.subject > $1 \
             AND NOT EXISTS (SELECT 1 FROM facts r WHERE r.subject = d.subject \
                 AND r.kind = 'resolved' AND r.record_provider = d.record_provider \
                 AND r.record_id = d.record_id AND r.day >= d.day AND r.status = 0) \
             ORDER BY d.subject LIMIT $2",
            after,
            limit,
            None,
        )
        .await
    }

    async fn derived_targets(&self) -> Result<Option<Vec<SubjectId>>, StoreError> {
        self.read_rows(
            "list the subjects derived entries reach",
            "SELECT DISTINCT target FROM derived ORDER BY target",
            &[],
            |row| {
                Ok(subject_of(
                    row.try_get(0)
                        .map_err(decode("read a derived entry's target"))?,
                )?)
            },
        )
        .await
        .map(Some)
    }

    /// By the `list_entries_by_source` index (schema 3). On Citus the
    /// source is not the distribution column, so this asks every shard.
    async fn list_rows_of(&self, source: SubjectId) -> Result<Option<Vec<ListRow>>, StoreError> {
        let mut rows = self
            .read_rows(
                "read a subject's list rows",
                "SELECT list, subject, from_day, until_day, entry_from, entry_until \
                 FROM list_entries WHERE source = $1",
                &[&source.as_str()],
                |row| {
                    let get = decode("read a list row");
                    let list: String = row.try_get(0).map_err(&get)?;
                    let subject: &str = row.try_get(1).map_err(&get)?;
                    let day = |index: usize| -> Result<Day, Fault> {
                        Ok(Day(row.try_get(index).map_err(&get)?))
                    };
                    Ok(ListRow {
                        list: socred_core::Name::new(&list),
                        subject: subject_of(subject)?,
                        source,
                        start: day(2)?,
                        end: day(3)?,
                        entry: Span {
                            start: day(4)?,
                            end: day(5)?,
                        },
                    })
                },
            )
            .await?;
        // In the order of `ListRow`, as `socred_store::list_rows` gives them.
        rows.sort();
        Ok(Some(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socred_parameters_leave_the_connection_string() {
        let params = |url: &str| split_params(url).expect("parse");
        let plain = tls::Settings::default();
        let p = params("postgres://u:p@h:5/db?application_name=x&socred_citus=1");
        assert_eq!(
            (p.url.as_str(), p.citus, &p.tls),
            (
                "postgres://u:p@h:5/db?application_name=x",
                Some(true),
                &plain
            )
        );
        let p = params("postgresql://u@h/db?socred_citus=off");
        assert_eq!(
            (p.url.as_str(), p.citus),
            ("postgresql://u@h/db", Some(false))
        );
        let p = params("host=h user=u socred_citus=true dbname=db");
        assert_eq!(
            (p.url.as_str(), p.citus),
            ("host=h user=u dbname=db", Some(true))
        );
        let p = params("postgres://u@h/db");
        assert_eq!(
            (p.url.as_str(), p.citus, &p.tls),
            ("postgres://u@h/db", None, &plain)
        );
        let bad = split_params("postgres://u@h/db?socred_citus=maybe");
        assert!(
            matches!(&bad, Err(StoreError::Unavailable(m)) if m.contains("socred_citus=maybe")),
            "{bad:?}"
        );
    }

    #[test]
    fn tls_parameters_are_read_in_both_forms() {
        let params = |url: &str| split_params(url).expect("parse");
        let p =
            params("postgres://u@h/db?sslmode=verify-full&sslrootcert=/etc/ca%20files/root.pem");
        assert_eq!(p.url, "postgres://u@h/db");
        assert_eq!(
            p.tls,
            tls::Settings {
                mode: tls::Mode::VerifyFull,
                root_cert: Some(PathBuf::from("/etc/ca files/root.pem")),
            }
        );
        let p = params("host=h user=u sslmode=disable dbname=db");
        assert_eq!(p.url, "host=h user=u dbname=db");
        assert_eq!(p.tls.mode, tls::Mode::Disable);
        assert_eq!(
            params("postgres://u@h/db?sslmode=require").tls.mode,
            tls::Mode::Require
        );
        let bad = split_params("postgres://u@h/db?sslmode=always");
        assert!(
            matches!(&bad, Err(StoreError::Unavailable(m)) if m.contains("sslmode=always") && m.contains("verify-full")),
            "{bad:?}"
        );
        assert_eq!(percent_decoded("a%2Fb%zz%4"), "a/b%zz%4");
    }

    #[test]
    fn verifying_modes_need_a_root_certificate_that_reads() {
        let settings = |mode, root_cert: Option<&str>| tls::Settings {
            mode,
            root_cert: root_cert.map(PathBuf::from),
        };
        assert!(tls::connector(&settings(tls::Mode::Disable, None))
            .expect("disable")
            .is_none());
        assert!(tls::connector(&settings(tls::Mode::Require, None))
            .expect("require")
            .is_some());
        let missing = tls::connector(&settings(tls::Mode::VerifyFull, None)).map(|c| c.is_some());
        assert!(
            matches!(&missing, Err(m) if m.contains("sslmode=verify-full needs sslrootcert")),
            "{missing:?}"
        );
        let dir = tempfile::tempdir().expect("a directory");
        let not_pem = dir.path().join("root.pem");
        std::fs::write(&not_pem, "not a certificate").expect("write");
        let shown = not_pem.display().to_string();
        let empty =
            tls::connector(&settings(tls::Mode::VerifyCa, Some(&shown))).map(|c| c.is_some());
        assert!(
            matches!(&empty, Err(m) if m.contains(&shown) && m.contains("no certificate")),
            "{empty:?}"
        );
        let absent = dir.path().join("absent.pem").display().to_string();
        let unread =
            tls::connector(&settings(tls::Mode::VerifyCa, Some(&absent))).map(|c| c.is_some());
        assert!(
            matches!(&unread, Err(m) if m.contains(&absent) && m.contains("cannot read")),
            "{unread:?}"
        );
    }

    #[test]
    fn every_citus_statement_distributes_or_replicates_a_table() {
        let statements = citus_statements();
        assert!(statements.contains(&"SELECT create_distributed_table('records', 'subject')"));
        for statement in &statements {
            assert!(
                statement.contains("create_distributed_table(")
                    || statement.contains("create_reference_table("),
                "{statement}"
            );
            // Every subject table is co-located with records.
            if statement.contains("'subject'") && !statement.contains("'records', 'subject'") {
                assert!(
                    statement.contains("colocate_with => 'records'"),
                    "{statement}"
                );
            }
        }
    }
}
