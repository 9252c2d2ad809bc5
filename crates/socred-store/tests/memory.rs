//! The conformance suite against the in-memory fake.

use socred_store::MemoryStore;

async fn make_store() -> (MemoryStore, ()) {
    (MemoryStore::new(), ())
}

fn tamper(store: &MemoryStore, seq: u64) {
    assert!(
        store.alter_audit_entry_for_tests(seq, "nothing happened here"),
        "no audit entry {seq}"
    );
}

socred_store::conformance_tests!(make: make_store(), tamper: tamper);
