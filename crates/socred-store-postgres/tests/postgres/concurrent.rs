//! Two stores with their own connection pools (as two `socred serve`
//! processes) ingesting overlapping batches into one database at once:
//! every key is stored exactly once, a key sent for two subjects is stored
//! for one and refused for the other, the audit chain stays one valid
//! chain, and every stored state equals a fresh fold of its records.

use std::collections::BTreeMap;
use std::sync::Arc;

use socred_core::record::Value;
use socred_core::{Record, RecordKey};
use socred_store::conformance::{engine, person, record};
use socred_store::{
    verify_chain, verify_states, AuditDraft, Item, Outcome, ReviewNeed, Store, Submission,
};
use socred_store_postgres::{PostgresOptions, PostgresStore};

const RECORDS: usize = 600;
/// Few subjects, so that writers often meet on one subject's lock.
const SUBJECTS: usize = 40;
const CLASHES: usize = 20;
const BATCH: usize = 50;
/// Concurrent writers per store.
const WRITERS: usize = 3;

fn fare(id: &str, subject: u16) -> Record {
    let fields = [(
        Arc::from("station"),
        Value::Text(Arc::from("Beijing South")),
    )]
    .into_iter()
    .collect();
    record(
        &engine(),
        id,
        person(subject),
        "transport.fare_evasion",
        "2026-03-01",
        fields,
    )
}

fn audit(detail: String) -> AuditDraft {
    AuditDraft {
        at_ms: 1_772_000_000_000,
        actor: "provider.city".into(),
        role: "provider".into(),
        purpose: "concurrency test".into(),
        action: "ingest".into(),
        subject: None,
        detail,
    }
}

/// The batches one store sends: every shared record (in `order`), and its
/// side of each clashing key, split among its writers.
fn batches(shared: &[Record], order: &[usize], clashes: Vec<Record>) -> Vec<Vec<Vec<Record>>> {
    let mut items: Vec<Record> = order.iter().map(|&i| shared[i].clone()).collect();
    // Interleave the clashes so that both stores send them early and late.
    for (n, clash) in clashes.into_iter().enumerate() {
        let at = (n * items.len() / CLASHES).min(items.len());
        items.insert(at, clash);
    }
    let chunks: Vec<Vec<Record>> = items.chunks(BATCH).map(<[Record]>::to_vec).collect();
    let mut writers = vec![Vec::new(); WRITERS];
    for (n, chunk) in chunks.into_iter().enumerate() {
        writers[n % WRITERS].push(chunk);
    }
    writers
}

type Sent = Vec<(RecordKey, Outcome)>;

async fn send(store: PostgresStore, writer: Vec<Vec<Record>>, name: String) -> (Sent, usize) {
    let engine = engine();
    let mut sent = Vec::new();
    let mut calls = 0;
    for (n, chunk) in writer.into_iter().enumerate() {
        let keys: Vec<RecordKey> = chunk.iter().map(|r| r.key.clone()).collect();
        let batch = chunk
            .into_iter()
            .map(|record| Submission {
                item: Item::Record(record),
                submitted_by: "provider.city".into(),
                review: ReviewNeed::NotRequired,
            })
            .collect();
        let outcomes = store
            .ingest(&engine, batch, vec![audit(format!("{name} batch {n}"))])
            .await
            .unwrap_or_else(|error| panic!("{name} batch {n}: {error}"));
        calls += 1;
        sent.extend(keys.into_iter().zip(outcomes));
    }
    (sent, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_ingesting_one_database_store_each_key_once() {
    let Some((first, url)) = crate::harness::fresh_store().await else {
        return;
    };
    let second = PostgresStore::connect_with(&url, PostgresOptions::default())
        .await
        .expect("a second store on the same database");

    let shared: Vec<Record> = (0..RECORDS)
        .map(|i| fare(&format!("r{i}"), (i % SUBJECTS) as u16))
        .collect();
    // The same key for another subject on each side.
    let clash = |offset: u16| {
        (0..CLASHES)
            .map(|i| fare(&format!("clash-{i}"), offset + i as u16))
            .collect::<Vec<_>>()
    };
    let forward: Vec<usize> = (0..RECORDS).collect();
    let backward: Vec<usize> = (0..RECORDS).rev().collect();
    let mut tasks = Vec::new();
    for (store, order, side, name) in [
        (&first, &forward, clash(100), "first"),
        (&second, &backward, clash(200), "second"),
    ] {
        for (n, writer) in batches(&shared, order, side).into_iter().enumerate() {
            tasks.push(tokio::spawn(send(
                store.clone(),
                writer,
                format!("{name}.{n}"),
            )));
        }
    }
    let mut by_key: BTreeMap<RecordKey, Vec<Outcome>> = BTreeMap::new();
    let mut calls = 0;
    for task in tasks {
        let (sent, made) = task.await.expect("a writer task");
        calls += made;
        for (key, outcome) in sent {
            by_key.entry(key).or_default().push(outcome);
        }
    }

    assert_eq!(by_key.len(), RECORDS + CLASHES);
    for (key, outcomes) in &by_key {
        let stored = outcomes.iter().filter(|o| **o == Outcome::Stored).count();
        assert_eq!(stored, 1, "{}/{}: {outcomes:?}", key.provider, key.id);
        assert_eq!(outcomes.len(), 2, "each key is sent once by each store");
        let other = outcomes.iter().find(|o| **o != Outcome::Stored);
        if key.id.starts_with("clash-") {
            assert!(
                matches!(other, Some(Outcome::Conflict { .. })),
                "{}: {outcomes:?}",
                key.id
            );
        } else {
            assert_eq!(other, Some(&Outcome::Duplicate), "{}", key.id);
        }
    }

    let counts = second.counts().await.expect("counts");
    assert_eq!(counts.records, (RECORDS + CLASHES) as u64);
    assert_eq!(counts.subjects, (SUBJECTS + CLASHES) as u64);
    assert_eq!(counts.audit_entries, calls as u64);

    let entries = first.audit(0, 10_000).await.expect("audit");
    assert_eq!(entries.len(), calls);
    assert_eq!(verify_chain(&entries), Ok(()));
    let head = second.audit_head().await.expect("head");
    assert_eq!(head, entries.last().map(|e| (e.seq, e.hash.clone())));

    let engine = engine();
    for store in [&first, &second] {
        let mismatches = verify_states(store, &engine).await.expect("verify");
        assert_eq!(mismatches, Vec::new());
    }
    let evader = first
        .state(person(0))
        .await
        .expect("state")
        .expect("a state");
    assert_eq!(evader.records.len(), RECORDS / SUBJECTS);
}

/// Waits until `count` backends of this database wait for a lock (other
/// tests use other databases of the shared cluster).
async fn until_waiting(client: &tokio_postgres::Client, count: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE wait_event_type = 'Lock' AND datname = current_database()",
                &[],
            )
            .await
            .expect("read pg_stat_activity");
        if row.get::<_, i64>(0) >= count {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} writers never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Two servers send one key at the same moment, forced to overlap: the
/// first holds the audit chain head while the second reads the key as
/// free. For one subject, the second waits for the subject's lock and then
/// sees a duplicate; for two subjects, its claim of the key fails, it runs
/// again and sees the conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_sent_by_two_servers_at_once_is_stored_once() {
    let Some((first, url)) = crate::harness::fresh_store().await else {
        return;
    };
    let second = PostgresStore::connect_with(&url, PostgresOptions::default())
        .await
        .expect("a second store on the same database");
    let (blocker, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("a blocking connection");
    tokio::spawn(connection);
    let engine = engine();
    for (case, other_subject) in [("same", 1u16), ("other", 2u16)] {
        let submit = |subject: u16| Submission {
            item: Item::Record(fare(&format!("{case}-key"), subject)),
            submitted_by: "provider.city".into(),
            review: ReviewNeed::NotRequired,
        };
        blocker
            .batch_execute("BEGIN; SELECT * FROM audit_head FOR UPDATE")
            .await
            .expect("hold the chain head");
        let early = {
            let (store, engine, batch) = (first.clone(), engine.clone(), vec![submit(1)]);
            tokio::spawn(async move {
                store
                    .ingest(&engine, batch, vec![audit(format!("{case} early"))])
                    .await
            })
        };
        until_waiting(&blocker, 1).await;
        let late = {
            let (store, engine) = (second.clone(), engine.clone());
            let batch = vec![submit(other_subject)];
            tokio::spawn(async move {
                store
                    .ingest(&engine, batch, vec![audit(format!("{case} late"))])
                    .await
            })
        };
        until_waiting(&blocker, 2).await;
        blocker.batch_execute("COMMIT").await.expect("release");
        let early = early.await.expect("task").expect("early ingest");
        let late = late.await.expect("task").expect("late ingest");
        assert_eq!(early, vec![Outcome::Stored], "{case}");
        match case {
            "same" => assert_eq!(late, vec![Outcome::Duplicate]),
            _ => assert!(
                matches!(&late[..], [Outcome::Conflict { reason }] if reason.contains("other-key")),
                "{late:?}"
            ),
        }
    }
    assert_eq!(first.counts().await.expect("counts").records, 2);
    let entries = second.audit(0, 100).await.expect("audit");
    assert_eq!(entries.len(), 4);
    assert_eq!(verify_chain(&entries), Ok(()));
    assert_eq!(
        verify_states(&first, &engine).await.expect("verify"),
        Vec::new()
    );
}
