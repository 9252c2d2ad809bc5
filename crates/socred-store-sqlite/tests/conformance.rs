//! The shared conformance suite against the SQLite store, each test in a
//! fresh temporary directory.

use socred_store_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

async fn make_store() -> (SqliteStore, TempDir) {
    open(SqliteOptions::default())
}

fn open(options: SqliteOptions) -> (SqliteStore, TempDir) {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("no temporary directory: {error}"),
    };
    match SqliteStore::open_with(dir.path(), options) {
        Ok(store) => (store, dir),
        Err(error) => panic!("cannot open a store in {}: {error}", dir.path().display()),
    }
}

/// Edits an audit entry with a separate connection, behind the store's back.
fn tamper(store: &SqliteStore, seq: u64) {
    let conn = rusqlite::Connection::open(store.path()).expect("open the database file");
    let changed = conn
        .execute(
            "UPDATE audit SET detail = 'nothing happened here' WHERE seq = ?1",
            [seq as i64],
        )
        .expect("edit the audit table");
    assert_eq!(changed, 1, "no audit entry {seq}");
}

socred_store::conformance_tests!(make: make_store(), tamper: tamper);

/// An upload's recomputation stopped half-way (the progress a crash left,
/// set behind the store's back) goes on after its last subject.
#[tokio::test]
async fn a_recomputation_stopped_half_way_goes_on_after_its_last_subject() {
    let (store, _dir) = make_store().await;
    socred_store::conformance::check_resumed_recompute(&store, |store, last| {
        let conn = rusqlite::Connection::open(store.path()).expect("open the database file");
        let changed = conn
            .execute("UPDATE recompute SET last_subject = ?1", [last])
            .expect("edit the recompute table");
        assert_eq!(changed, 1, "no recomputation recorded");
    })
    .await;
}

/// The same suite with no decoded history kept by the writer: every write
/// reads the histories it refolds back from the file.
mod without_history_cache {
    use super::*;

    async fn make_store() -> (SqliteStore, TempDir) {
        open(SqliteOptions { history_records: 0 })
    }

    socred_store::conformance_tests!(make: make_store(), tamper: tamper);
}
