//! The shared conformance suite against the PostgreSQL store, each test on
//! a fresh database of the shared cluster.

use socred_store_postgres::PostgresStore;

/// Edits an audit entry with a separate connection, behind the store's back.
fn tamper(store: &PostgresStore, seq: u64) {
    let changed = crate::harness::execute(
        &store.target().database,
        "UPDATE audit SET detail = 'nothing happened here' WHERE seq = $1",
        seq as i64,
    );
    assert_eq!(changed, 1, "no audit entry {seq}");
}

// Without PostgreSQL, `make` returns from the test after the loud message.
socred_store::conformance_tests!(
    make: {
        match crate::harness::fresh_store().await {
            Some(pair) => std::future::ready(pair),
            None => return,
        }
    },
    tamper: tamper,
);
