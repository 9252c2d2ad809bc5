//! A small connection pool over `tokio-postgres`, with the statement cache
//! of each connection and the mapping of driver errors to the store's.
//!
//! Why not a pool crate: the store needs three things only, and they are
//! short to write here: connections that are dropped as soon as they break
//! (so that the store reconnects when the database comes back, with no
//! background task), a bound on how many are open, and one cache of
//! prepared statements per connection (a statement is parsed once per
//! connection, not once per call: half the round trips).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use socred_store::StoreError;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, GenericClient, NoTls, Row, Socket, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Why an attempt at a store operation failed, and whether running it
/// again can help.
#[derive(Debug)]
pub(crate) enum Fault {
    /// Another transaction got in the way (a deadlock, a serialisation
    /// failure, a unique key taken meanwhile): the whole transaction can
    /// run again and will then see what the other one committed.
    Retry(String),
    /// The connection broke. `replayable`: nothing that could have changed
    /// the database was sent (a read, or the `BEGIN` of a write), so the
    /// operation may run again on a fresh connection.
    Connection { message: String, replayable: bool },
    /// A final answer.
    Store(StoreError),
}

impl From<StoreError> for Fault {
    fn from(error: StoreError) -> Fault {
        Fault::Store(error)
    }
}

impl Fault {
    /// A connection failure of a read (or of `BEGIN`) may be replayed.
    pub(crate) fn replayable(self) -> Fault {
        match self {
            Fault::Connection { message, .. } => Fault::Connection {
                message,
                replayable: true,
            },
            other => other,
        }
    }
}

/// The message of a driver error with its causes (the driver's own
/// `Display` leaves them out), and the server's message for database errors.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Maps a driver error met while doing `context`.
pub(crate) fn pg(context: &'static str) -> impl Fn(tokio_postgres::Error) -> Fault {
    move |error| {
        let message = format!("{context}: {}", describe(&error));
        let Some(code) = error.code() else {
            // No SQLSTATE: the connection (I/O, closed) or the protocol.
            return Fault::Connection {
                message,
                replayable: false,
            };
        };
        if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::UNIQUE_VIOLATION
        {
            return Fault::Retry(message);
        }
        let class = code.code().get(..2).unwrap_or("");
        match class {
            // Connection exception; operator intervention (shutdown, crash,
            // cannot connect now).
            "08" | "57" => Fault::Connection {
                message,
                replayable: false,
            },
            // Undefined tables or columns, internal errors about damaged
            // data: the database is not what this socred wrote.
            "42" | "XX" => Fault::Store(StoreError::Corrupt(message)),
            _ => Fault::Store(StoreError::Unavailable(message)),
        }
    }
}

/// Maps an error reading a column of a returned row: stored data that does
/// not read back.
pub(crate) fn decode(context: &'static str) -> impl Fn(tokio_postgres::Error) -> Fault {
    move |error| {
        Fault::Store(StoreError::Corrupt(format!(
            "{context}: {}",
            describe(&error)
        )))
    }
}

/// Prepared statements of one connection, by their text.
pub(crate) type Cache = HashMap<&'static str, Statement>;

/// One open connection and its prepared statements.
pub(crate) struct Conn {
    client: Client,
    cache: Cache,
}

impl Conn {
    pub(crate) fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// Where the store connects, without the password: for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}, database `{}`, user `{}`",
            self.host, self.port, self.database, self.user
        )
    }
}

impl Target {
    pub(crate) fn of(config: &Config) -> Target {
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(name)) => name.clone(),
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".into(),
        };
        let user = config.get_user().unwrap_or("").to_string();
        Target {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            database: config.get_dbname().unwrap_or(&user).to_string(),
            user,
        }
    }
}

/// The pool: at most `size` connections, idle ones kept for reuse.
pub(crate) struct Pool {
    config: Config,
    /// TLS as the connection string's `sslmode` asks; None: plain TCP.
    tls: Option<MakeRustlsConnect>,
    pub target: Target,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
    size: usize,
    /// How long a caller waits for a connection when all are busy.
    checkout_timeout: Duration,
}

/// Opens a connection over `tls` and drives it on a task of its own.
async fn open<T>(config: &Config, tls: T) -> Result<Client, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!("a PostgreSQL connection ended: {}", describe(&error));
        }
    });
    Ok(client)
}

impl Pool {
    pub(crate) fn new(
        config: Config,
        tls: Option<MakeRustlsConnect>,
        size: usize,
        checkout_timeout: Duration,
    ) -> Pool {
        let size = size.max(1);
        Pool {
            target: Target::of(&config),
            config,
            tls,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size),
            size,
            checkout_timeout,
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Conn>> {
        // A panic while holding the lock leaves a plain Vec: still usable.
        match self.idle.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Drops every idle connection: after one connection broke, the others
    /// most likely did too (the server restarted), and each would otherwise
    /// fail one request before being noticed.
    pub(crate) fn drop_idle(&self) {
        self.idle().clear();
    }

    /// Keeps a connection opened outside a lease (the one that migrated).
    pub(crate) fn release(&self, conn: Conn) {
        if !conn.client.is_closed() {
            self.idle().push(conn);
        }
    }

    /// A connection: an idle one that is still open, or a new one.
    pub(crate) async fn get(&self) -> Result<Lease<'_>, Fault> {
        let permit = match tokio::time::timeout(self.checkout_timeout, self.permits.acquire()).await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => {
                return Err(StoreError::Unavailable("the connection pool is closed".into()).into())
            }
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "all {} connections to PostgreSQL stayed busy for {} s",
                    self.size,
                    self.checkout_timeout.as_secs()
                ))
                .into())
            }
        };
        let reused = loop {
            let Some(conn) = self.idle().pop() else {
                break None;
            };
            if !conn.client.is_closed() {
                break Some(conn);
            }
        };
        let conn = match reused {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        Ok(Lease {
            pool: self,
            conn: Some(conn),
            _permit: permit,
        })
    }

    /// Opens a connection and makes sure its commits are durable.
    pub(crate) async fn connect(&self) -> Result<Conn, Fault> {
        let client = match &self.tls {
            Some(tls) => open(&self.config, tls.clone()).await,
            None => open(&self.config, NoTls).await,
        }
        .map_err(|error| Fault::Connection {
            message: format!("cannot connect: {}", describe(&error)),
            replayable: false,
        })?;
        // An acknowledged write must be durable: if the server was set up
        // with asynchronous commit, ask for synchronous commit for ours.
        let rows = client
            .simple_query("SHOW synchronous_commit")
            .await
            .map_err(pg("read synchronous_commit"))?;
        let off = rows.iter().any(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0) == Some("off"),
            _ => false,
        });
        if off {
            client
                .batch_execute("SET synchronous_commit = on")
                .await
                .map_err(pg("turn synchronous_commit on"))?;
        }
        Ok(Conn {
            client,
            cache: Cache::new(),
        })
    }
}

/// A connection lent by the pool; it goes back when dropped, unless broken.
pub(crate) struct Lease<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
    _permit: SemaphorePermit<'p>,
}

impl Lease<'_> {
    /// The client and its statement cache, borrowed separately so that a
    /// transaction on the client can use the cache.
    pub(crate) fn parts(&mut self) -> Result<(&mut Client, &mut Cache), Fault> {
        match self.conn.as_mut() {
            Some(conn) => Ok((&mut conn.client, &mut conn.cache)),
            None => Err(StoreError::Unavailable("a released connection was used".into()).into()),
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A transaction dropped without commit has queued its ROLLBACK
            // on the connection: the next user's statements come after it.
            if !conn.client.is_closed() {
                self.pool.idle().push(conn);
            }
        }
    }
}

/// Statements on one client (a connection or an open transaction), each
/// prepared once per connection.
pub(crate) struct Session<'c, C: GenericClient + Sync> {
    pub client: &'c C,
    cache: &'c mut Cache,
}

impl<'c, C: GenericClient + Sync> Session<'c, C> {
    pub(crate) fn new(client: &'c C, cache: &'c mut Cache) -> Session<'c, C> {
        Session { client, cache }
    }

    /// The prepared form of `sql` on this connection.
    pub(crate) async fn prepare(&mut self, sql: &'static str) -> Result<Statement, Fault> {
        if let Some(statement) = self.cache.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self
            .client
            .prepare(sql)
            .await
            .map_err(pg("prepare a statement"))?;
        self.cache.insert(sql, statement.clone());
        Ok(statement)
    }

    pub(crate) async fn query(
        &mut self,
        context: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Fault> {
        let statement = self.prepare(sql).await?;
        self.client
            .query(&statement, params)
            .await
            .map_err(pg(context))
    }

    pub(crate) async fn query_opt(
        &mut self,
        context: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Fault> {
        let statement = self.prepare(sql).await?;
        self.client
            .query_opt(&statement, params)
            .await
            .map_err(pg(context))
    }

    pub(crate) async fn execute(
        &mut self,
        context: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Fault> {
        let statement = self.prepare(sql).await?;
        self.client
            .execute(&statement, params)
            .await
            .map_err(pg(context))
    }
}
