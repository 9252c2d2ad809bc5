//! Edits a SQLite store behind the server's back and checks that
//! `socred verify` catches each edit: an audit entry changed, an entry
//! deleted (in the middle, and at the end), a stored record altered.

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use socred_server::{verify, Limits};
use socred_store::Store;
use socred_store_sqlite::SqliteStore;

use crate::harness::*;

/// A registry in `dir` with records, a decision and a file read.
fn populate(dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).unwrap());
        let h = Harness::over(store, Limits::default()).await;
        let lines = [
            fare_evasion("fe-1", alice(), "2026-05-20"),
            fare_evasion("fe-2", bob(), "2026-05-21"),
        ];
        h.ingest(METRO, &lines).await.expect(StatusCode::OK);
        let decision = ticket_sale(alice(), "no_rail_tickets");
        h.get(&decision, Some(RAIL)).await.expect(StatusCode::OK);
        h.get(&format!("/v1/subjects/{}", alice()), Some(ALICE))
            .await
            .expect(StatusCode::OK);
    });
}

fn edit(dir: &Path, sql: &str) {
    let connection = rusqlite::Connection::open(dir.join("socred.sqlite")).unwrap();
    let changed = connection.execute(sql, []).unwrap();
    assert_eq!(changed, 1, "{sql} changed {changed} rows");
}

fn registry() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let report = verify(dir.path(), None).unwrap();
    assert!(
        report.is_ok(),
        "an untouched registry fails verification:\n{report}"
    );
    assert_eq!(report.audit_entries, 4);
    dir
}

#[test]
fn an_edited_audit_entry_is_caught() {
    let dir = registry();
    edit(
        dir.path(),
        "UPDATE audit SET detail = 'nothing to see' WHERE seq = 3",
    );
    let report = verify(dir.path(), None).unwrap();
    assert_eq!(
        report.chain_break.as_ref().map(|b| b.seq),
        Some(3),
        "{report}"
    );
    assert!(report.to_string().contains("FAILED"));
}

#[test]
fn a_deleted_audit_entry_is_caught() {
    let dir = registry();
    edit(dir.path(), "DELETE FROM audit WHERE seq = 2");
    let report = verify(dir.path(), None).unwrap();
    let broken = report.chain_break.expect("a gap in the log verifies");
    assert_eq!(broken.seq, 2);
    assert!(broken.reason.contains("missing"), "{}", broken.reason);

    // The last entry: no gap, but the head no longer matches.
    let dir = registry();
    edit(dir.path(), "DELETE FROM audit WHERE seq = 4");
    let report = verify(dir.path(), None).unwrap();
    assert!(
        report.chain_break.is_some(),
        "a truncated log verifies: {report}"
    );

    // An entry added after the last, its head left where it was: the log
    // runs past its head.
    let dir = registry();
    edit(
        dir.path(),
        "INSERT INTO audit SELECT seq + 1, at_ms, actor, role, purpose, action, subject, \
         'nothing happened', hash FROM audit WHERE seq = 4",
    );
    let report = verify(dir.path(), None).unwrap();
    assert!(
        report.chain_break.is_some(),
        "an entry after the head verifies: {report}"
    );
}

#[test]
fn an_altered_record_is_caught() {
    let dir = registry();
    let sql = "UPDATE records SET decided_at = decided_at - 400 WHERE provider = 'metro.shanghai' AND id = 'fe-2'";
    edit(dir.path(), sql);
    let report = verify(dir.path(), None).unwrap();
    assert!(report.chain_break.is_none(), "{report}");
    let subjects: Vec<String> = report
        .mismatches
        .iter()
        .map(|m| m.subject.to_string())
        .collect();
    assert_eq!(subjects, [bob().to_string()], "{report}");
}

/// A second server process on the same registry records a fare evasion:
/// the first, which holds the subject's state in memory from its earlier
/// answers, must not answer from that memory any more (its audit append
/// notices the other writer, and the decision is worked out afresh).
#[test]
fn a_decision_sees_what_another_process_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let first: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let h = Harness::over(first, Limits::default()).await;
        let decision = ticket_sale(alice(), "no_rail_tickets");
        for _ in 0..2 {
            let reply = h.get(&decision, Some(RAIL)).await.expect(StatusCode::OK);
            assert_eq!(reply.json()["applies"], false, "{:?}", reply.json());
        }
        let second: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let other = Harness::over(second, Limits::default()).await;
        other
            .ingest(METRO, &[fare_evasion("fe-1", alice(), "2026-05-20")])
            .await
            .expect(StatusCode::OK);
        let reply = h.get(&decision, Some(RAIL)).await.expect(StatusCode::OK);
        assert_eq!(reply.json()["applies"], true, "{:?}", reply.json());
        // Every answer left exactly one entry: the refused one left none.
        let decided = other
            .get("/v1/audit?limit=100", Some(AUDITOR))
            .await
            .expect(StatusCode::OK)
            .json();
        let count = decided["entries"].as_array().map_or(0, |entries| {
            entries.iter().filter(|e| e["action"] == "decide").count()
        });
        assert_eq!(count, 3, "{decided}");
    });
}

/// Ten years and a day on, the erasure run removes the log's oldest
/// entries (the default rulebook keeps them ten years): `verify` passes
/// from the new start. A start moved by hand, with no entry that records
/// the removal, is caught.
#[test]
fn entries_removed_at_the_end_of_retention_verify_and_a_forged_start_is_caught() {
    let dir = registry();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let h = Harness::over(store, Limits::default()).await;
        h.clock
            .set_day(socred_core::Day::parse("2036-06-02").unwrap());
        let run = h
            .post_json("/v1/admin/erasure", Some(ADMIN), &serde_json::json!({}))
            .await
            .expect(StatusCode::OK)
            .json();
        assert_eq!(run["audit_entries_removed"], 4, "{run}");
        let log = h
            .get(&format!("/v1/subjects/{}/access-log", alice()), Some(ALICE))
            .await
            .expect(StatusCode::OK)
            .json();
        let seqs: Vec<u64> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        assert!(seqs.iter().all(|&seq| seq > 4), "{log}");
    });
    let report = verify(dir.path(), None).unwrap();
    assert!(report.is_ok(), "{report}");

    // The removal's entry (5) deleted too, the anchor moved onto it.
    let connection = rusqlite::Connection::open(dir.path().join("socred.sqlite")).unwrap();
    connection
        .execute_batch(
            "UPDATE audit_anchor SET seq = 5, hash = (SELECT hash FROM audit WHERE seq = 5);
             DELETE FROM audit WHERE seq <= 5;",
        )
        .unwrap();
    drop(connection);
    let report = verify(dir.path(), None).unwrap();
    let broken = report.chain_break.expect("a forged start verifies");
    assert_eq!(broken.seq, 6);
    assert!(
        broken
            .reason
            .contains("entries were deleted from its start"),
        "{}",
        broken.reason
    );
}

/// A rulebook upload that stopped once the rulebook was stored, before any
/// file was recomputed with it (the server killed then), is reported by
/// `verify`, and finished by the next start before anything is served.
#[test]
fn an_upload_stopped_half_way_is_reported_and_finished_at_the_next_start() {
    let dir = registry();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let label = runtime.block_on(async {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let h = Harness::over(store.clone(), Limits::default()).await;
        let (label, text) = thirty_day_bans(&h).await;
        // What an upload commits before it recomputes the files.
        store
            .put_rulebook(label, &text, "admin", Vec::new())
            .await
            .unwrap();
        label
    });
    let report = verify(dir.path(), None).unwrap();
    assert!(!report.is_ok(), "{report}");
    let said = report.to_string();
    assert!(
        said.contains(&format!(
            "rulebook upload unfinished: no file recomputed with {label}"
        )),
        "{said}"
    );

    // A start finishes it: Alice's ban now ends within 30 days of her
    // fare evasion on 2026-05-20, where the rulebook before gave 180.
    runtime.block_on(async {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let h = Harness::over(store, Limits::default()).await;
        let file = h
            .get(&format!("/v1/subjects/{}", alice()), Some(ALICE))
            .await
            .expect(StatusCode::OK)
            .json();
        assert_eq!(file["rulebook"], label, "{file}");
        assert!(
            rail_ban_until(&file).as_str() <= "2026-06-19",
            "a ban of the rulebook before: {file}"
        );
    });
    let report = verify(dir.path(), None).unwrap();
    assert!(report.is_ok(), "{report}");
}

/// A subject's access log is read through the audit index beside the
/// database: its rows deleted for one subject (the log emptied behind the
/// server's back) are caught by `verify`.
#[test]
fn an_access_log_emptied_in_the_audit_index_is_caught() {
    let dir = registry();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.index_audit_now().unwrap();
    }
    let index = rusqlite::Connection::open(dir.path().join("socred-audit-index.sqlite")).unwrap();
    let deleted = index
        .execute(
            "DELETE FROM audit_by_subject WHERE subject = ?1",
            [alice().to_string()],
        )
        .unwrap();
    assert!(deleted >= 2, "alice's entries: {deleted}");
    drop(index);
    let report = verify(dir.path(), None).unwrap();
    assert!(!report.is_ok(), "{report}");
    let said = report.to_string();
    assert!(
        said.contains(&format!(
            "lacks {deleted} entries of the audit log about subjects"
        )) && said.contains(&format!("about {}", alice())),
        "{said}"
    );
    // Deleted while the server is stopped, the index is rebuilt at start.
    std::fs::remove_file(dir.path().join("socred-audit-index.sqlite")).unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.index_audit_now().unwrap();
    }
    let report = verify(dir.path(), None).unwrap();
    assert!(report.is_ok(), "{report}");
}
