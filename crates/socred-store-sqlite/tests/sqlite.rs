//! What only the SQLite store can show: schema versions, reopening,
//! damage done to the file behind the store's back being caught, and two
//! stores on one file (two processes) never answering from stale memory.

use std::sync::Arc;

use rusqlite::Connection;
use socred_core::record::Value;
use socred_core::{Record, RecordKey, SubjectId};
use socred_store::conformance::{audit_details, day, engine, example_person, person};
use socred_store::{
    verify_states, AuditDraft, ChainVerifier, Item, Outcome, ReadMark, ReviewNeed, Store,
    StoreError, Submission,
};
use socred_store_sqlite::{SqliteStore, SCHEMA_VERSION};
use tempfile::TempDir;

fn temp() -> TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

fn fare(id: &str, subject: SubjectId) -> Submission {
    let engine = engine();
    let type_index = engine
        .rulebook
        .record_type("transport.fare_evasion")
        .expect("fare type");
    let record = Record {
        key: RecordKey {
            provider: Arc::from("transport.rail"),
            id: id.into(),
        },
        subject,
        type_index,
        type_id: socred_core::Name::new("transport.fare_evasion"),
        occurred_at: day("2026-03-01"),
        decided_at: day("2026-03-02"),
        fields: [(
            Arc::from("station"),
            Value::Text(Arc::from("Beijing South")),
        )]
        .into_iter()
        .collect(),
        document: None,
    };
    Submission {
        item: Item::Record(record),
        submitted_by: "transport.rail".into(),
        review: ReviewNeed::NotRequired,
    }
}

fn draft(detail: &str) -> AuditDraft {
    AuditDraft {
        at_ms: 1_772_000_000_000,
        actor: "agency.rail".into(),
        role: "agency".into(),
        purpose: "ticket_sale".into(),
        action: "decide".into(),
        subject: Some(example_person()),
        detail: detail.into(),
    }
}

fn edit(store: &SqliteStore, sql: &str) -> usize {
    let conn = Connection::open(store.path()).expect("open the database file");
    conn.execute(sql, []).expect("edit the database")
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_run_once() {
    let dir = temp();
    let engine = engine();
    {
        let store = SqliteStore::open(dir.path()).expect("open");
        let outcomes = store
            .ingest(
                &engine,
                vec![fare("r1", example_person())],
                vec![draft("one")],
            )
            .await;
        assert_eq!(outcomes, Ok(vec![Outcome::Stored]));
    }
    let store = SqliteStore::open(dir.path()).expect("reopen");
    let state = store
        .state(example_person())
        .await
        .expect("state")
        .expect("a stored state");
    assert_eq!(state.records.len(), 1);
    assert_eq!(store.counts().await.expect("counts").audit_entries, 1);
    assert_eq!(
        store
            .ingest(&engine, vec![fare("r1", example_person())], Vec::new())
            .await,
        Ok(vec![Outcome::Duplicate])
    );
    let conn = Connection::open(store.path()).expect("open the file");
    let versions: i64 = conn
        .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
        .expect("versions");
    let version: i64 = conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!((versions, version), (1, SCHEMA_VERSION));
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_clear_error() {
    let dir = temp();
    let store = SqliteStore::open(dir.path()).expect("open");
    edit(
        &store,
        &format!("UPDATE schema_version SET version = {}", SCHEMA_VERSION + 1),
    );
    drop(store);
    let error = SqliteStore::open(dir.path()).expect_err("a newer schema must be refused");
    let StoreError::Corrupt(message) = error else {
        panic!("expected Corrupt, got {error:?}")
    };
    assert!(
        message.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
        "{message}"
    );
    assert!(message.contains("newer"), "{message}");
}

#[tokio::test]
async fn a_failing_batch_stores_nothing() {
    let dir = temp();
    let store = SqliteStore::open(dir.path()).expect("open");
    let engine = engine();
    store
        .ingest(&engine, vec![fare("r1", person(2))], Vec::new())
        .await
        .expect("ingest");
    // Damage a stored record so that refolding its subject fails.
    assert_eq!(
        edit(
            &store,
            "UPDATE records SET fields = 'not json' WHERE id = 'r1'"
        ),
        1
    );
    let before = store.counts().await.expect("counts");
    let result = store
        .ingest(
            &engine,
            vec![fare("r2", person(1)), fare("r3", person(2))],
            vec![draft("x")],
        )
        .await;
    assert!(
        matches!(&result, Err(StoreError::Corrupt(m)) if m.contains("r1")),
        "{result:?}"
    );
    assert_eq!(store.counts().await.expect("counts"), before);
    assert_eq!(
        store.state(person(1)).await.expect("state"),
        None,
        "the good record must not be kept either"
    );
    assert_eq!(store.audit(0, 10).await.expect("audit"), Vec::new());
}

#[tokio::test]
async fn edits_behind_the_stores_back_are_caught() {
    let dir = temp();
    let store = SqliteStore::open(dir.path()).expect("open");
    let engine = engine();
    let batch = vec![
        fare("r1", example_person()),
        fare("r2", person(1)),
        fare("r3", person(3)),
    ];
    let outcomes = store
        .ingest(&engine, batch, vec![draft("a"), draft("b"), draft("c")])
        .await
        .expect("ingest");
    assert_eq!(outcomes[0], Outcome::Stored);
    assert_eq!(
        verify_states(&store, &engine).await.expect("verify"),
        Vec::new()
    );

    // A record changed without refolding: its subject's state no longer matches.
    edit(
        &store,
        "UPDATE records SET decided_at = decided_at - 400 WHERE id = 'r1'",
    );
    // A state changed directly (written back as plain JSON, which reads as
    // well as the compressed form).
    let subject = person(1);
    let mut state = store
        .state(subject)
        .await
        .expect("read the state")
        .map(std::sync::Arc::unwrap_or_clone)
        .expect("a state");
    let effect = state.effects.first_mut().expect("an effect");
    assert_eq!(effect.points, -5);
    effect.points = 50;
    socred_store::close_open_ends(&mut state);
    let json = serde_json::to_string(&state).expect("serialise the state");
    let conn = Connection::open(store.path()).expect("open the database file");
    let changed = conn
        .execute(
            "UPDATE states SET state = ?1 WHERE subject = ?2",
            [json.as_str(), subject.as_str()],
        )
        .expect("edit the database");
    assert_eq!(changed, 1);
    // A record moved to another subject: the state that lists it names it.
    let moved = edit(
        &store,
        &format!(
            "UPDATE records SET subject = '{}' WHERE id = 'r3'",
            person(4).as_str()
        ),
    );
    assert_eq!(moved, 1);
    // A record planted about person(5), who has no state: nothing lists it.
    let planted = edit(
        &store,
        &format!(
            "INSERT INTO records (subject, provider, id, type, occurred_at, decided_at, fields, \
             document, status, submitted_by, submitted_at_ms, pending_seq) \
             SELECT '{}', provider, 'planted', type, occurred_at, decided_at, fields, document, \
             status, submitted_by, submitted_at_ms, pending_seq FROM records WHERE id = 'r2'",
            person(5).as_str()
        ),
    );
    assert_eq!(planted, 1);
    let mismatches = verify_states(&store, &engine).await.expect("verify");
    let caught: Vec<SubjectId> = mismatches.iter().map(|m| m.subject).collect();
    let mut expected = vec![example_person(), subject, person(3), person(5)];
    expected.sort();
    assert_eq!(caught, expected, "{mismatches:?}");
    let moved = mismatches
        .iter()
        .find(|m| m.subject == person(3))
        .expect("the subject whose record moved");
    assert!(
        moved.reason.contains("r3") && moved.reason.contains(person(4).as_str()),
        "{}",
        moved.reason
    );
    let planted = mismatches
        .iter()
        .find(|m| m.subject == person(5))
        .expect("the planted record's subject");
    assert!(planted.reason.contains("planted"), "{}", planted.reason);

    // Deleting the last audit entry leaves a chain that the head exposes.
    edit(&store, "DELETE FROM audit WHERE seq = 3");
    let entries = store.audit(0, 10).await.expect("audit");
    let mut verifier = ChainVerifier::new();
    for entry in &entries {
        verifier
            .push(entry)
            .expect("the remaining entries still chain");
    }
    let head = store.audit_head().await.expect("head");
    assert_eq!(verifier.finish(head.as_ref()).map_err(|b| b.seq), Err(3));
}

/// A company whose records no longer read is reported, and the entry it
/// passes to its legal representative, which cannot be recomputed, is not
/// held against the representative as well.
/// The day kept beside a state says when erasure has work for the
/// subject: one moved later, or cleared, behind the store's back would let
/// records outlive their retention, and `verify` says so; one not known yet
/// (a state from before the day was kept) is not a finding.
#[tokio::test]
async fn a_retention_day_edited_behind_the_stores_back_is_caught() {
    let dir = temp();
    let store = SqliteStore::open(dir.path()).expect("open");
    let engine = engine();
    let batch = vec![
        fare("r1", person(1)),
        fare("r2", person(2)),
        fare("r3", person(3)),
    ];
    store
        .ingest(&engine, batch, vec![draft("batch")])
        .await
        .expect("ingest");
    assert_eq!(
        verify_states(&store, &engine).await.expect("verify"),
        Vec::new()
    );
    let later = edit(
        &store,
        &format!(
            "UPDATE states SET retention_ends = retention_ends + 400 WHERE subject = '{}'",
            person(1).as_str()
        ),
    );
    let cleared = edit(
        &store,
        &format!(
            "UPDATE states SET retention_ends = NULL WHERE subject = '{}'",
            person(2).as_str()
        ),
    );
    let unknown = edit(
        &store,
        &format!(
            "UPDATE states SET retention_ends = {} WHERE subject = '{}'",
            socred_core::Day::MIN.0,
            person(3).as_str()
        ),
    );
    assert_eq!((later, cleared, unknown), (1, 1, 1));
    let store = SqliteStore::open(dir.path()).expect("reopen");
    let mismatches = verify_states(&store, &engine).await.expect("verify");
    let caught: Vec<(SubjectId, bool)> = mismatches
        .iter()
        .map(|m| (m.subject, m.reason.contains("no day is kept")))
        .collect();
    assert_eq!(
        caught,
        vec![(person(1), false), (person(2), true)],
        "{mismatches:?}"
    );
}

#[tokio::test]
async fn an_unreadable_subject_is_reported_without_knock_on_findings() {
    let dir = temp();
    let store = SqliteStore::open(dir.path()).expect("open");
    let engine = engine();
    let (org, rep, _) =
        socred_store::conformance::company_reaching_its_representative(&store).await;
    // The representative has a file of its own too.
    store
        .ingest(&engine, vec![fare("own", rep)], vec![draft("own")])
        .await
        .expect("ingest");
    assert_eq!(
        verify_states(&store, &engine).await.expect("verify"),
        Vec::new()
    );
    let moved = edit(
        &store,
        &format!(
            "UPDATE records SET subject = '{}' WHERE id = 'reg-1'",
            person(7).as_str()
        ),
    );
    assert_eq!(moved, 1);
    let mismatches = verify_states(&store, &engine).await.expect("verify");
    let caught: Vec<SubjectId> = mismatches.iter().map(|m| m.subject).collect();
    assert_eq!(caught, vec![org], "{mismatches:?}");
    assert!(
        !caught.contains(&rep),
        "the representative is not blamed: {mismatches:?}"
    );
}

/// The rows public lists are answered from are checked too: a row
/// deleted behind the store's back is reported against its source, and a
/// row planted from a subject that has no state against the subject it
/// lists.
#[tokio::test]
async fn list_rows_edited_behind_the_stores_back_are_caught() {
    let dir = temp();
    let store = SqliteStore::open(dir.path()).expect("open");
    let engine = engine();
    let (org, rep, _) =
        socred_store::conformance::company_reaching_its_representative(&store).await;
    assert_eq!(
        verify_states(&store, &engine).await.expect("verify"),
        Vec::new()
    );
    // The representative taken off the list: the company's rows differ.
    let deleted = edit(
        &store,
        &format!(
            "DELETE FROM list_entries WHERE subject = '{}'",
            rep.as_str()
        ),
    );
    assert_eq!(deleted, 1);
    let mismatches = verify_states(&store, &engine).await.expect("verify");
    let caught: Vec<SubjectId> = mismatches.iter().map(|m| m.subject).collect();
    assert_eq!(caught, vec![org], "{mismatches:?}");
    assert!(mismatches[0].reason.contains("list rows"), "{mismatches:?}");
    // Someone put on the list by a row from a subject with no state.
    let planted = edit(
        &store,
        &format!(
            "INSERT INTO list_entries (list, subject, source, start, end, entry_start, entry_end) \
             SELECT list, '{0}', '{0}', start, end, entry_start, entry_end FROM list_entries LIMIT 1",
            person(9).as_str()
        ),
    );
    assert_eq!(planted, 1);
    let mismatches = verify_states(&store, &engine).await.expect("verify");
    let mut caught: Vec<SubjectId> = mismatches.iter().map(|m| m.subject).collect();
    caught.sort();
    let mut expected = vec![org, person(9)];
    expected.sort();
    assert_eq!(caught, expected, "{mismatches:?}");
    let found = mismatches
        .iter()
        .find(|m| m.subject == person(9))
        .expect("the planted row");
    assert!(found.reason.contains("no state"), "{}", found.reason);
    // An entry passed on to someone no fresh fold reaches, who has no state.
    let planted = edit(
        &store,
        &format!(
            "INSERT INTO derived (target, source, n, entry) \
             SELECT '{}', source, n, entry FROM derived LIMIT 1",
            person(8).as_str()
        ),
    );
    assert_eq!(planted, 1);
    let mismatches = verify_states(&store, &engine).await.expect("verify");
    let found = mismatches
        .iter()
        .find(|m| m.subject == person(8))
        .unwrap_or_else(|| panic!("the planted entry is caught: {mismatches:?}"));
    assert!(found.reason.contains("reach it"), "{}", found.reason);
}

/// Two stores on one file (two processes), the first having stored r1 about `person(1)`.
async fn two_stores_with_r1() -> (TempDir, Arc<socred_core::Engine>, SqliteStore, SqliteStore) {
    let dir = temp();
    let engine = engine();
    let first = SqliteStore::open(dir.path()).expect("open");
    let second = SqliteStore::open(dir.path()).expect("open again");
    first
        .ingest(&engine, vec![fare("r1", person(1))], Vec::new())
        .await
        .expect("ingest r1");
    (dir, engine, first, second)
}

/// Two stores on one file stand for two processes. What one keeps in memory
/// (decoded histories on the writer side, decoded states on the reader
/// side) must never hide what the other wrote.
#[tokio::test]
async fn a_store_sees_what_another_process_wrote() {
    let (_dir, engine, first, second) = two_stores_with_r1().await;
    let subject = person(1);
    let read = |store: &SqliteStore| {
        let store = store.clone();
        async move {
            let state = store.state(subject).await.expect("state").expect("a state");
            let mut ids: Vec<String> = state.records.iter().map(|r| r.key.id.to_string()).collect();
            ids.sort();
            ids
        }
    };
    // The first store now holds the subject decoded on both sides.
    assert_eq!(read(&first).await, ["r1"]);

    second
        .ingest(&engine, vec![fare("r2", subject)], Vec::new())
        .await
        .expect("ingest r2 through the other store");
    assert_eq!(
        read(&first).await,
        ["r1", "r2"],
        "a read must see the other store's write"
    );

    // A write refolds from what is in the file, not from its memory of r1 alone.
    first
        .ingest(&engine, vec![fare("r3", subject)], Vec::new())
        .await
        .expect("ingest r3");
    assert_eq!(read(&first).await, ["r1", "r2", "r3"]);
    assert_eq!(read(&second).await, ["r1", "r2", "r3"]);
    assert_eq!(
        verify_states(&first, &engine).await.expect("verify"),
        Vec::new()
    );
    assert_eq!(first.counts().await.expect("counts").records, 3);
}

/// A state handed out from memory (`state_marked`) cannot see another
/// process's write; the audit append that must follow it notices the write
/// and refuses the answer, which is then worked out from the file. Marks of
/// this store's own reads, and fresh ones, are appended.
#[tokio::test]
async fn an_answer_from_memory_is_refused_after_another_process_wrote() {
    let (_dir, engine, first, second) = two_stores_with_r1().await;
    let subject = person(1);
    let (state, mark) = first.state_marked(subject).await.expect("marked read");
    assert_eq!(state.expect("a state").records.len(), 1);
    assert_eq!(mark, ReadMark::FRESH, "the first read goes to the file");
    let (held, mark) = first.state_marked(subject).await.expect("marked read");
    assert_eq!(held.expect("a state").records.len(), 1);
    assert_ne!(mark, ReadMark::FRESH, "the second comes from memory");

    second
        .ingest(&engine, vec![fare("r2", subject)], Vec::new())
        .await
        .expect("ingest r2 through the other store");
    // Memory has not looked yet: the answer it gives is stale ...
    let (stale, stale_mark) = first.state_marked(subject).await.expect("marked read");
    assert_eq!(stale.expect("a state").records.len(), 1);
    // ... and its audit entries are refused, those of a fresh read kept.
    let appended = first
        .append_audit_marked(vec![
            (vec![draft("stale")], stale_mark),
            (vec![draft("fresh")], ReadMark::FRESH),
        ])
        .await
        .expect("append");
    assert_eq!(appended, [false, true]);
    assert_eq!(audit_details(&first).await, ["fresh"]);
    // Asked again, memory has been dropped: the file answers.
    let (state, mark) = first.state_marked(subject).await.expect("marked read");
    assert_eq!(state.expect("a state").records.len(), 2);
    assert_eq!(mark, ReadMark::FRESH);
    let (_, mark) = first.state_marked(subject).await.expect("marked read");
    assert_eq!(
        first
            .append_audit_marked(vec![(vec![draft("again")], mark)])
            .await
            .expect("append"),
        [true]
    );
}

/// The audit log by subject comes from an index kept in a file of its own
/// plus a scan of what the index does not cover yet: a subject's entries
/// are the same, page by page, whether the index covers none, some or all
/// of them, after the index file is deleted, and after it is found not to
/// match the database (its last entry changed).
#[tokio::test]
async fn the_access_log_is_the_same_however_much_is_indexed() {
    let dir = temp();
    let store = SqliteStore::open(dir.path()).expect("open");
    let about = |n: usize, subject: SubjectId| {
        let mut entry = draft(&format!("entry {n}"));
        entry.subject = Some(subject);
        entry
    };
    let (alice, bob) = (person(1), person(2));
    let first: Vec<AuditDraft> = (0..30)
        .map(|n| about(n, if n % 3 == 0 { bob } else { alice }))
        .collect();
    store.append_audit(first).await.expect("append");
    let pages = |store: SqliteStore| async move {
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = store
                .audit_for_subject(person(1), after, 4)
                .await
                .expect("a page of the access log");
            let Some(last) = page.last() else { break };
            after = last.seq;
            seen.extend(page.into_iter().map(|e| (e.seq, e.entry.detail)));
        }
        seen
    };
    let expected: Vec<(u64, String)> = (0..30u64)
        .filter(|n| n % 3 != 0)
        .map(|n| (n + 1, format!("entry {n}")))
        .collect();
    // Whatever the indexing thread has done so far, then all of it.
    assert_eq!(pages(store.clone()).await, expected);
    store.index_audit_now().expect("index");
    assert_eq!(pages(store.clone()).await, expected);
    // Some indexed, some not.
    let more: Vec<AuditDraft> = (30..40).map(|n| about(n, alice)).collect();
    store.append_audit(more).await.expect("append more");
    let mut all = expected.clone();
    all.extend((30..40u64).map(|n| (n + 1, format!("entry {n}"))));
    assert_eq!(pages(store.clone()).await, all);
    store.index_audit_now().expect("index");
    assert_eq!(pages(store.clone()).await, all);
    drop(store);

    // Deleted: rebuilt.
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", socred_store_sqlite::INDEX_FILE_NAME);
        match std::fs::remove_file(dir.path().join(file)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => panic!("delete the index: {error}"),
        }
    }
    let store = SqliteStore::open(dir.path()).expect("reopen");
    assert_eq!(pages(store.clone()).await, all);
    drop(store);

    // The database's last entry no longer matches what the index saw (as
    // after restoring another database): the index starts over. Entry 1,
    // bob's, now reads as alice's, which only a rebuilt index knows.
    let conn = Connection::open(dir.path().join(socred_store_sqlite::FILE_NAME))
        .expect("open the database file");
    for sql in [
        "UPDATE audit SET subject = (SELECT subject FROM audit WHERE seq = 2) WHERE seq = 1",
        "UPDATE audit SET hash = 'restored' WHERE seq = 40",
    ] {
        assert_eq!(conn.execute(sql, []).expect("edit the database"), 1);
    }
    let store = SqliteStore::open(dir.path()).expect("reopen");
    store.index_audit_now().expect("index");
    let mut restored = vec![(1, "entry 0".to_string())];
    restored.extend(all.iter().cloned());
    assert_eq!(pages(store.clone()).await, restored);
}

/// A state read twice is decoded once, and what is handed out the second
/// time is the very same value, not a copy.
#[tokio::test]
async fn a_state_read_again_is_not_decoded_again() {
    let dir = temp();
    let engine = engine();
    let store = SqliteStore::open(dir.path()).expect("open");
    store
        .ingest(&engine, vec![fare("r1", person(1))], Vec::new())
        .await
        .expect("ingest");
    let once = store
        .state(person(1))
        .await
        .expect("read")
        .expect("a state");
    let twice = store
        .state(person(1))
        .await
        .expect("read")
        .expect("a state");
    assert!(Arc::ptr_eq(&once, &twice));
    // Rewritten behind the store's back with the same content in JSON: the
    // stored bytes differ, so it is decoded afresh (and reads equal).
    let mut plain = (*once).clone();
    socred_store::close_open_ends(&mut plain);
    let json = serde_json::to_string(&plain).expect("serialise");
    let conn = Connection::open(store.path()).expect("open the database file");
    conn.execute(
        "UPDATE states SET state = ?1 WHERE subject = ?2",
        [json.as_str(), person(1).as_str()],
    )
    .expect("edit");
    let again = store
        .state(person(1))
        .await
        .expect("read")
        .expect("a state");
    assert!(!Arc::ptr_eq(&once, &again));
    // The JSON does not say which rulebook folded the state.
    assert_eq!(
        socred_core::SubjectState {
            rulebook: None,
            ..(*once).clone()
        },
        *again
    );
}

/// A large group of audit entries (as the server's group commit makes
/// them) goes in by the chunk: every entry keeps its number, its subject
/// and its place in the chain.
#[tokio::test]
async fn a_large_audit_group_chains_entry_by_entry() {
    let dir = temp();
    let store = SqliteStore::open(dir.path()).expect("open");
    store
        .append_audit(vec![draft("before")])
        .await
        .expect("append one");
    let drafts: Vec<AuditDraft> = (0..70)
        .map(|n| AuditDraft {
            subject: Some(person(n % 3)),
            ..draft(&format!("decision {n}"))
        })
        .collect();
    let seqs = store.append_audit(drafts.clone()).await.expect("append 70");
    assert_eq!(seqs, (2..=71).collect::<Vec<u64>>());
    let entries = store.audit(0, 100).await.expect("audit");
    assert_eq!(entries.len(), 71);
    let mut verifier = ChainVerifier::new();
    for entry in &entries {
        verifier.push(entry).expect("every entry chains");
    }
    let head = store.audit_head().await.expect("head");
    assert_eq!(verifier.finish(head.as_ref()), Ok(()));
    for (entry, draft) in entries[1..].iter().zip(&drafts) {
        assert_eq!(&entry.entry, draft);
    }
    let of_one = store
        .audit_for_subject(person(1), 0, 100)
        .await
        .expect("audit of one subject");
    assert_eq!(of_one.len(), 23);
    assert!(of_one.iter().all(|e| e.entry.subject == Some(person(1))));
    assert_eq!(store.counts().await.expect("counts").audit_entries, 71);
}

/// A backup is the database as of one moment, whole: a store opened on it
/// holds what was committed before it, and only that; an existing file is
/// never overwritten, and a copy left half-written by an interrupted run
/// is replaced.
#[tokio::test]
async fn a_backup_holds_what_was_committed_before_it_and_never_overwrites() {
    let (dir, copies) = (temp(), temp());
    let engine = engine();
    let store = SqliteStore::open(dir.path()).expect("open");
    store
        .ingest(
            &engine,
            vec![fare("r1", example_person())],
            vec![draft("one")],
        )
        .await
        .expect("ingest");
    let to = copies
        .path()
        .join("copy")
        .join(socred_store_sqlite::FILE_NAME);
    std::fs::create_dir(to.parent().unwrap()).expect("a directory for the copy");
    let partial = to.with_extension("sqlite.partial");
    std::fs::write(&partial, b"half a copy").expect("a leftover");
    let bytes = store.backup_into(&to).await.expect("backup");
    assert_eq!(std::fs::metadata(&to).expect("the copy").len(), bytes);
    assert!(!partial.exists(), "the temporary copy was renamed");
    // Written after the backup: not in it.
    store
        .ingest(&engine, vec![fare("r2", person(7))], vec![draft("two")])
        .await
        .expect("ingest");
    let error = store.backup_into(&to).await.expect_err("an existing file");
    assert!(matches!(error, StoreError::Conflict(_)), "{error}");

    let copy = SqliteStore::open(to.parent().unwrap()).expect("open the copy");
    let counts = copy.counts().await.expect("counts");
    assert_eq!((counts.records, counts.audit_entries), (1, 1));
    assert!(copy.state(example_person()).await.expect("state").is_some());
    assert!(copy.state(person(7)).await.expect("state").is_none());
    assert!(verify_states(&copy, &engine)
        .await
        .expect("verify")
        .is_empty());
}
