//! PostgreSQL going away under a store: a write caught in flight fails
//! with `Unavailable` and leaves nothing behind (after crash recovery),
//! calls fail promptly while the server is down, and the same store object
//! works again once the server is back, without being recreated.

use std::sync::Arc;
use std::time::{Duration, Instant};

use socred_core::record::Value;
use socred_core::Record;
use socred_store::conformance::{engine, person, record};
use socred_store::{
    verify_chain, AuditDraft, Item, Outcome, ReviewNeed, Store, StoreError, Submission,
};
use socred_store_postgres::cluster::Cluster;
use socred_store_postgres::{PostgresOptions, PostgresStore};

fn fare(id: &str, subject: u16) -> Submission {
    let fields = [(
        Arc::from("station"),
        Value::Text(Arc::from("Beijing South")),
    )]
    .into_iter()
    .collect();
    let record: Record = record(
        &engine(),
        id,
        person(subject),
        "transport.fare_evasion",
        "2026-03-01",
        fields,
    );
    Submission {
        item: Item::Record(record),
        submitted_by: "provider.city".into(),
        review: ReviewNeed::NotRequired,
    }
}

fn audit(detail: &str) -> Vec<AuditDraft> {
    vec![AuditDraft {
        at_ms: 1_772_000_000_000,
        actor: "provider.city".into(),
        role: "provider".into(),
        purpose: "restart test".into(),
        action: "ingest".into(),
        subject: None,
        detail: detail.into(),
    }]
}

/// Waits until some backend waits for a lock (the write held at the head).
async fn until_blocked(client: &tokio_postgres::Client) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE wait_event_type = 'Lock' AND datname = current_database()",
                &[],
            )
            .await
            .expect("read pg_stat_activity");
        if row.get::<_, i64>(0) > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the write never reached the chain head"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) -> String {
    match result {
        Err(StoreError::Unavailable(message)) => message,
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_survives_a_postgres_restart() {
    // Its own cluster: stopping the shared one would break other tests.
    let cluster = match Cluster::start() {
        Ok(cluster) => cluster,
        Err(why) => {
            crate::harness::missing(&why);
            return;
        }
    };
    let url = cluster
        .create_database("restart")
        .await
        .expect("a database");
    let store = PostgresStore::connect_with(&url, PostgresOptions::default())
        .await
        .expect("connect");
    let engine = engine();
    let stored = store
        .ingest(&engine, vec![fare("before", 1)], audit("before"))
        .await
        .expect("ingest");
    assert_eq!(stored, vec![Outcome::Stored]);

    // Hold the audit chain head, so that the next write stops at its last
    // statement, after its records and states are written.
    let (blocker, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("a blocking connection");
    tokio::spawn(connection);
    blocker
        .batch_execute("BEGIN; SELECT * FROM audit_head FOR UPDATE")
        .await
        .expect("lock the head");
    let in_flight = {
        let (store, engine) = (store.clone(), engine.clone());
        tokio::spawn(async move {
            store
                .ingest(&engine, vec![fare("in-flight", 2)], audit("in flight"))
                .await
        })
    };
    until_blocked(&blocker).await;

    // An immediate stop, as in a crash: no backend gets to finish (a fast
    // stop could end the blocker first and let the write commit).
    let stop = tokio::task::spawn_blocking(move || (cluster.kill(), cluster));
    let (stopped, cluster) = stop.await.expect("stop task");
    stopped.expect("stop the cluster");
    let result = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the write in flight fails promptly")
        .expect("the write task");
    unavailable(result, "the write in flight");

    // While the server is down, every call fails at once.
    let started = Instant::now();
    let message = unavailable(store.state(person(1)).await, "a read while down");
    assert!(
        message.contains(&format!("127.0.0.1:{}", cluster.port())),
        "{message}"
    );
    unavailable(
        store
            .ingest(&engine, vec![fare("while-down", 3)], Vec::new())
            .await,
        "a write while down",
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "calls took {:?} to fail",
        started.elapsed()
    );

    let cluster = tokio::task::spawn_blocking(move || cluster.start_again().map(|()| cluster))
        .await
        .expect("start task")
        .expect("start the cluster again");

    // The same store object works again; the interrupted write left nothing.
    assert!(store.state(person(1)).await.expect("read").is_some());
    assert_eq!(store.state(person(2)).await.expect("read"), None);
    let counts = store.counts().await.expect("counts");
    assert_eq!(
        (counts.records, counts.subjects, counts.audit_entries),
        (1, 1, 1)
    );
    let again = store
        .ingest(&engine, vec![fare("in-flight", 2)], audit("after"))
        .await
        .expect("ingest after the restart");
    assert_eq!(again, vec![Outcome::Stored]);
    let entries = store.audit(0, 100).await.expect("audit");
    assert_eq!(entries.len(), 2);
    assert_eq!(verify_chain(&entries), Ok(()));
    drop(cluster);
}
