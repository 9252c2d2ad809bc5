//! The one error type of the storage layer. Driver errors (SQLite,
//! PostgreSQL, I/O) are wrapped into these kinds so that the server can
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
    /// The write was folded with a rulebook that is no longer the one the
    /// store names as in force (another server installed a newer one).
    /// Nothing was written: load the rulebook in force and write again.
    #[error("rulebook changed: {0}")]
    RulebookChanged(String),
}

/// Refuses a write folded with `engine` when the store names another
/// rulebook, `in_force`, as the one in force; a store that names none
/// takes any. Every store checks it in the transaction of each write that
/// folds, after locking the subjects it folds: so a server that has not
/// yet learnt of another server's upload never writes a file under the
/// rulebook before it.
pub fn check_rulebook(
    in_force: Option<&str>,
    engine: &socred_core::Engine,
) -> Result<(), StoreError> {
    let folded_with = engine.rulebook.label();
    match in_force {
        Some(label) if label != folded_with => Err(StoreError::RulebookChanged(format!(
            "the rulebook in force is {label}, not {folded_with} that this write was folded with"
        ))),
        _ => Ok(()),
    }
}
