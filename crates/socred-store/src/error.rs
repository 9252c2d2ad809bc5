//! The one error type of the storage layer. Driver errors (SQLite,
//! PostgreSQL, I/O) are wrapped into these four kinds so that the server can
//! tell a client's mistake from an outage from damaged data without knowing
//! which backend runs.

/// What went wrong in the store. Each message names what was involved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Something asked for by key does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request contradicts what is stored (a taken key, self-approval).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store cannot serve now (I/O error, busy, closed); retrying may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data does not read back as it was written, or a schema is
    /// newer than this program.
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
}
