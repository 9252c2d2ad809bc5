//! `socred verify` on PostgreSQL sees what is kept beside the states: list
//! rows (which public lists and list members are answered from) and
//! entries passed on to related subjects, edited behind the store's back
//! with plain SQL.

use socred_core::SubjectId;
use socred_store::conformance::{company_reaching_its_representative, engine, person};
use socred_store::{verify_states, StateMismatch, Store};
use socred_store_postgres::PostgresStore;
use tokio_postgres::Client;

async fn edit(client: &Client, sql: &str, subject: SubjectId) -> u64 {
    client
        .execute(sql, &[&subject.as_str()])
        .await
        .unwrap_or_else(|error| panic!("`{sql}` for {subject}: {error}"))
}

async fn verify(store: &PostgresStore) -> Vec<StateMismatch> {
    verify_states(store, &engine()).await.expect("verify")
}

/// Plants a row for `subject` with `sql`, then returns what `verify` says
/// about that subject.
async fn plant_and_verify(
    store: &PostgresStore,
    client: &Client,
    sql: &str,
    subject: SubjectId,
) -> String {
    assert_eq!(
        edit(client, sql, subject).await,
        1,
        "`{sql}` planted one row"
    );
    let mismatches = verify(store).await;
    mismatches
        .into_iter()
        .find(|m| m.subject == subject)
        .unwrap_or_else(|| panic!("what `{sql}` planted for {subject} is caught"))
        .reason
}

/// What `verify` compares: the rows stored from a source, in the order of
/// `ListRow` (its own row and the one its entry gives the subject it
/// reaches), and the subjects stored entries reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_says_which_list_rows_and_targets_it_keeps() {
    let Some((store, _)) = crate::harness::fresh_store().await else {
        return;
    };
    let (org, rep, _) = company_reaching_its_representative(&store).await;
    let stored = store
        .list_rows_of(org)
        .await
        .expect("read the company's list rows")
        .expect("the store says which rows it keeps");
    let subjects: Vec<SubjectId> = stored.iter().map(|row| row.subject).collect();
    let mut expected = vec![org, rep];
    expected.sort();
    assert_eq!(subjects, expected, "{stored:?}");
    assert!(stored.iter().all(|row| row.source == org), "{stored:?}");
    let rep_rows = store
        .list_rows_of(rep)
        .await
        .expect("read the representative's list rows");
    assert_eq!(rep_rows, Some(Vec::new()), "nothing is listed from {rep}");
    assert_eq!(
        store.derived_targets().await.expect("read the targets"),
        Some(vec![rep])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_edited_behind_the_stores_back_are_caught() {
    let Some((store, _)) = crate::harness::fresh_store().await else {
        return;
    };
    let (org, rep, _) = company_reaching_its_representative(&store).await;
    assert_eq!(verify(&store).await, Vec::new());
    let client = crate::harness::raw(&store).await;

    // The representative taken off the list: the company's rows differ.
    let deleted = edit(&client, "DELETE FROM list_entries WHERE subject = $1", rep).await;
    assert_eq!(deleted, 1);
    let mismatches = verify(&store).await;
    let caught: Vec<SubjectId> = mismatches.iter().map(|m| m.subject).collect();
    assert_eq!(caught, vec![org], "{mismatches:?}");
    assert!(
        mismatches.iter().all(|m| m.reason.contains("list rows")),
        "{mismatches:?}"
    );

    // Someone put on the list by a row from a subject with no state.
    let planted = edit(
        &client,
        "INSERT INTO list_entries (subject, list, source, from_day, until_day, entry_from, entry_until) \
         SELECT $1, list, $1, from_day, until_day, entry_from, entry_until FROM list_entries LIMIT 1",
        person(9),
    )
    .await;
    assert_eq!(planted, 1);
    let mismatches = verify(&store).await;
    let mut caught: Vec<SubjectId> = mismatches.iter().map(|m| m.subject).collect();
    caught.sort();
    let mut expected = vec![org, person(9)];
    expected.sort();
    assert_eq!(caught, expected, "{mismatches:?}");
    let found = mismatches
        .iter()
        .find(|m| m.subject == person(9))
        .unwrap_or_else(|| panic!("the planted row is caught: {mismatches:?}"));
    assert!(found.reason.contains("no state"), "{}", found.reason);

    // An entry passed on to someone no fresh fold reaches, who has no state.
    let reason = plant_and_verify(
        &store,
        &client,
        "INSERT INTO derived (target, source, n, entry) \
         SELECT $1, source, n, entry FROM derived LIMIT 1",
        person(8),
    )
    .await;
    assert!(reason.contains("reach it"), "{reason}");

    // A record in effect about someone with no state: no fold reads it.
    let reason = plant_and_verify(
        &store,
        &client,
        "INSERT INTO records (subject, provider, id, type, occurred_at, decided_at, fields, document, \
         status, submitted_by, submitted_at_ms, pending_seq, reviewed_by, review_note) \
         SELECT $1, provider, id || '-planted', type, occurred_at, decided_at, fields, document, \
         status, submitted_by, submitted_at_ms, pending_seq, reviewed_by, review_note \
         FROM records WHERE status = 0 LIMIT 1",
        person(7),
    )
    .await;
    assert!(
        reason.contains("in effect but its subject has no state"),
        "{reason}"
    );
}

/// A subject's access log is read through `audit_subjects`: rows deleted
/// from it (the log emptied for one subject) or planted in it, behind the
/// store's back, are caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_log_edited_behind_the_stores_back_is_caught() {
    let Some((store, _)) = crate::harness::fresh_store().await else {
        return;
    };
    let (watched, other) = (person(1), person(2));
    let seqs = store
        .append_audit(vec![
            socred_store::conformance::audit("read_file", Some(watched)),
            socred_store::conformance::audit("decide", Some(watched)),
            socred_store::conformance::audit("put_principal", None),
        ])
        .await
        .expect("append");
    assert_eq!(
        store.check_audit_by_subject().await.expect("check"),
        Vec::<String>::new()
    );
    let client = crate::harness::raw(&store).await;
    let deleted = edit(
        &client,
        "DELETE FROM audit_subjects WHERE subject = $1",
        watched,
    )
    .await;
    assert_eq!(deleted, 2);
    let problems = store.check_audit_by_subject().await.expect("check");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains(&format!(
            "lacks 2 entries of the audit log about subjects (the first: entry {}, about {watched})",
            seqs[0]
        )),
        "{problems:?}"
    );
    let planted = client
        .execute(
            "INSERT INTO audit_subjects (subject, seq) VALUES ($1, $2)",
            &[&other.as_str(), &i64::try_from(seqs[2]).unwrap()],
        )
        .await
        .expect("plant a row");
    assert_eq!(planted, 1);
    let problems = store.check_audit_by_subject().await.expect("check");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[1].contains(&format!(
            "has 1 rows that the audit log does not bear out (the first: entry {} filed under {other})",
            seqs[2]
        )),
        "{problems:?}"
    );
}
