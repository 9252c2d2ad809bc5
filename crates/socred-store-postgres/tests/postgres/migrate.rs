//! How states are kept across schema versions: schema 2 writes the binary
//! form of `socred_store::codec` into a `bytea` column; a schema 1
//! database (JSON text) is migrated through to the current version when a
//! store connects (schema 3 adds an index of list rows by source), its JSON
//! states still read, equal to a fresh fold, and each becomes binary when
//! its subject is written again. A state in neither form is refused, naming
//! its subject.

use std::sync::Arc;

use socred_core::record::Value;
use socred_core::{Day, Record, SubjectId, SubjectState};
use socred_store::conformance::{engine, person, record};
use socred_store::{
    close_open_ends, verify_states, Item, ReviewNeed, Store, StoreError, Submission, STATE_FORMAT,
};
use socred_store_postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION};
use tokio_postgres::Client;

/// The first byte of a compressed binary state (`socred_store::codec`
/// writes `STATE_FORMAT` for a plain one and this from 512 bytes on).
const COMPRESSED: u8 = STATE_FORMAT + 1;

fn is_binary(first: Option<u8>) -> bool {
    first == Some(STATE_FORMAT) || first == Some(COMPRESSED)
}

fn fare(id: &str, subject: SubjectId, decided: &str) -> Record {
    let fields = [(
        Arc::from("station"),
        Value::Text(Arc::from("Beijing South")),
    )]
    .into_iter()
    .collect();
    record(
        &engine(),
        id,
        subject,
        "transport.fare_evasion",
        decided,
        fields,
    )
}

async fn ingest(store: &PostgresStore, records: Vec<Record>) {
    let batch = records
        .into_iter()
        .map(|record| Submission {
            item: Item::Record(record),
            submitted_by: "provider.city".into(),
            review: ReviewNeed::NotRequired,
        })
        .collect();
    store
        .ingest(&engine(), batch, Vec::new())
        .await
        .expect("ingest");
}

/// The bytes stored for `subject`.
async fn stored(client: &Client, subject: SubjectId) -> Vec<u8> {
    let row = client
        .query_one(
            "SELECT state FROM states WHERE subject = $1",
            &[&subject.as_str()],
        )
        .await
        .expect("read a stored state");
    row.get(0)
}

/// Subjects with one record, and one with enough records that its binary
/// state is compressed.
fn population() -> (Vec<SubjectId>, Vec<Record>) {
    let subjects: Vec<SubjectId> = (0..6).map(person).collect();
    let mut records = Vec::new();
    for (n, subject) in subjects.iter().enumerate() {
        records.push(fare(&format!("r{n}"), *subject, "2026-03-01"));
    }
    for n in 0..30 {
        let day = format!("2025-{:02}-{:02}", 1 + n % 12, 1 + n / 12);
        records.push(fare(&format!("many-{n}"), person(0), &day));
    }
    (subjects, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_are_written_in_the_binary_form() {
    let Some((store, _)) = crate::harness::fresh_store().await else {
        return;
    };
    let (subjects, records) = population();
    ingest(&store, records).await;
    let client = crate::harness::raw(&store).await;
    let mut compressed = 0;
    for subject in &subjects {
        let bytes = stored(&client, *subject).await;
        let first = bytes.first().copied();
        assert!(
            is_binary(first),
            "the state of {subject} starts with {first:?}, not a binary format byte"
        );
        compressed += usize::from(first == Some(COMPRESSED));
    }
    assert_eq!(
        compressed, 1,
        "only the subject with many records passes the compression threshold"
    );
    assert!(verify_states(&store, &engine())
        .await
        .expect("verify")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_1_database_is_migrated_and_its_json_states_still_read() {
    let Some((store, url)) = crate::harness::fresh_store().await else {
        return;
    };
    let (subjects, records) = population();
    ingest(&store, records).await;
    let mut expected: Vec<Arc<SubjectState>> = Vec::new();
    for subject in &subjects {
        expected.push(store.state(*subject).await.expect("read").expect("a state"));
    }

    // Put the database back as schema 1 left it: states as JSON text, open
    // ends closed at 9999-12-31, no index of list rows by source, no day
    // or stamp beside each state, no entry for migrations 2 and later. The
    // editions table stays, without its mark (schema 14), holding one
    // edition drawn before it.
    let client = crate::harness::raw(&store).await;
    client
        .batch_execute(
            "ALTER TABLE states ALTER COLUMN state TYPE text USING NULL; \
             DROP INDEX list_entries_by_source; \
             ALTER TABLE states DROP COLUMN retention_ends; \
             ALTER TABLE states DROP COLUMN changed_ms; \
             ALTER TABLE editions DROP COLUMN mark_ms; \
             INSERT INTO editions (list, day, rulebook, drawn, members) \
             VALUES ('old', 19999, 'rb@0', 19999, 0); \
             DELETE FROM socred_schema WHERE version >= 2",
        )
        .await
        .expect("go back to schema 1");
    for state in &expected {
        let mut old = SubjectState::clone(state);
        close_open_ends(&mut old);
        let json = serde_json::to_string(&old).expect("JSON");
        let changed = client
            .execute(
                "UPDATE states SET state = $2 WHERE subject = $1",
                &[&state.subject.as_str(), &json],
            )
            .await
            .expect("write a schema 1 state");
        assert_eq!(changed, 1);
    }
    drop(store);

    let store = PostgresStore::connect_with(&url, PostgresOptions::default())
        .await
        .expect("connect to a schema 1 database");
    let version: i32 = client
        .query_one("SELECT MAX(version) FROM socred_schema", &[])
        .await
        .expect("read the schema version")
        .get(0);
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 16);
    // Schema 11: the editions of scheduled lists; schema 12 marks their
    // subjects named or left off; schema 13: leases; schema 14: the mark
    // of each drawing, unknown for one drawn before; schema 15: the
    // recomputation an upload left, none here.
    assert_eq!(
        store
            .unfinished_recompute()
            .await
            .expect("read the recompute"),
        None
    );
    let old = socred_store::Edition {
        day: Day(19_999),
        rulebook: "rb@0".into(),
        drawn: Day(19_999),
        members: 0,
        mark_ms: None,
    };
    assert_eq!(
        store.editions().await.expect("read the editions"),
        vec![("old".to_string(), old)]
    );
    let member = socred_store::EditionMember {
        subject: socred_store::conformance::person(1),
        named: false,
    };
    let red = socred_store::Drawing {
        day: Day(20_000),
        rulebook: "rb@1",
        drawn: Day(20_000),
        mark_ms: 1_780_000_000_000,
    };
    assert!(store
        .publish_edition("red", red, vec![member], Vec::new())
        .await
        .expect("publish an edition"));
    assert_eq!(
        store
            .edition("red")
            .await
            .expect("read the edition")
            .and_then(|edition| edition.mark_ms),
        Some(1_780_000_000_000)
    );
    // Schema 14 does not know when the states stored before were written:
    // each is stamped 0, changed since any mark.
    let mut unstamped: Vec<SubjectId> = subjects.to_vec();
    unstamped.sort();
    assert_eq!(
        store
            .subjects_changed(0, None, 1000)
            .await
            .expect("subjects changed"),
        unstamped
    );
    assert_eq!(
        store
            .subjects_changed(1, None, 1000)
            .await
            .expect("subjects changed"),
        Vec::new()
    );
    assert_eq!(
        store
            .edition_members("red", None, 10)
            .await
            .expect("read the edition")
            .map(|page| page.members),
        Some(vec![member])
    );
    assert!(store
        .lease("publication", "a", 0, 1)
        .await
        .expect("take a lease"));
    let index = client
        .query_opt(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'list_entries' \
             AND indexname = 'list_entries_by_source'",
            &[],
        )
        .await
        .expect("look up the index of list rows by source");
    let definition: Option<String> = index.map(|row| row.get(0));
    assert!(
        definition
            .as_deref()
            .is_some_and(|d| d.ends_with("(source)")),
        "migration 3 indexes list rows by source: {definition:?}"
    );
    let objections: Option<String> = client
        .query_opt(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'facts' \
             AND indexname = 'facts_disputed'",
            &[],
        )
        .await
        .expect("look up the index of objections")
        .map(|row| row.get(0));
    assert!(
        objections
            .as_deref()
            .is_some_and(|d| d.contains("(subject)") && d.contains("'disputed'")),
        "migration 4 indexes the objections in effect: {objections:?}"
    );
    for state in &expected {
        assert_eq!(
            stored(&client, state.subject).await.first(),
            Some(&b'{'),
            "the migration keeps the JSON of {}",
            state.subject
        );
        let read = store
            .state(state.subject)
            .await
            .expect("read")
            .expect("a state");
        // The JSON does not say which rulebook folded the state.
        let state = socred_core::SubjectState {
            rulebook: None,
            ..(**state).clone()
        };
        assert_eq!(*read, state, "{} reads back as before", state.subject);
    }
    assert!(verify_states(&store, &engine())
        .await
        .expect("verify")
        .is_empty());
    // Migration 7 does not know when the retention of the states stored
    // before ends: each is due at once, for erasure to examine and set.
    let today = socred_store::conformance::day("2026-06-01");
    let mut unknown: Vec<(Day, SubjectId)> =
        expected.iter().map(|s| (Day::MIN, s.subject)).collect();
    unknown.sort();
    assert_eq!(
        store
            .subjects_past_retention(today, None, 1000)
            .await
            .expect("subjects past retention"),
        unknown
    );
    // Examined, with nothing to erase, each gets its day: none is due.
    let examined = store
        .erase(
            &engine(),
            subjects.clone(),
            today,
            socred_store::conformance::audit("erase", None),
        )
        .await
        .expect("erase");
    assert_eq!(
        (examined.subjects_examined, examined.records),
        (subjects.len() as u64, 0)
    );
    assert_eq!(
        store
            .subjects_past_retention(today, None, 1000)
            .await
            .expect("subjects past retention"),
        Vec::new()
    );

    // A write about one subject turns its state binary; the others stay JSON.
    let [first, second, ..] = subjects[..] else {
        panic!("too few subjects");
    };
    ingest(&store, vec![fare("later", second, "2026-04-01")]).await;
    assert_eq!(stored(&client, second).await.first(), Some(&STATE_FORMAT));
    assert_eq!(stored(&client, first).await.first(), Some(&b'{'));
    let after = store.state(second).await.expect("read").expect("a state");
    assert_eq!(after.records.len(), 2);
    assert!(verify_states(&store, &engine())
        .await
        .expect("verify")
        .is_empty());

    // recompute_all turns the rest binary.
    store.recompute_all(&engine()).await.expect("recompute");
    for subject in &subjects {
        let first = stored(&client, *subject).await.first().copied();
        assert!(
            is_binary(first),
            "{subject} is still {first:?} after recompute_all"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_in_an_unknown_form_is_refused_naming_its_subject() {
    let Some((store, _)) = crate::harness::fresh_store().await else {
        return;
    };
    let subject = person(3);
    ingest(&store, vec![fare("r1", subject, "2026-03-01")]).await;
    let client = crate::harness::raw(&store).await;
    for bytes in [&b"\x07garbage"[..], &b"{\"not\": \"a state\"}"[..], &[][..]] {
        client
            .execute(
                "UPDATE states SET state = $2 WHERE subject = $1",
                &[&subject.as_str(), &bytes],
            )
            .await
            .expect("tamper");
        match store.state(subject).await {
            Err(StoreError::Corrupt(message)) => {
                assert!(message.contains(subject.as_str()), "{message}")
            }
            other => panic!("{bytes:?} read as {other:?}"),
        }
    }
}
