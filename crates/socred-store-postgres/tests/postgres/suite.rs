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

/// An upload's recomputation stopped half-way (the progress a crash left,
/// set behind the store's back) goes on after its last subject.
#[tokio::test]
async fn a_recomputation_stopped_half_way_goes_on_after_its_last_subject() {
    let Some((store, _cluster)) = crate::harness::fresh_store().await else {
        return;
    };
    socred_store::conformance::check_resumed_recompute(&store, |store, last| {
        let changed = crate::harness::execute(
            &store.target().database,
            "UPDATE recompute SET last_subject = $1",
            last.to_string(),
        );
        assert_eq!(changed, 1, "no recomputation recorded");
    })
    .await;
}
