//! A subject's own file, explanation, access log, consent and objections.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::harness::*;

#[tokio::test]
async fn a_subject_reads_its_own_file_and_no_other() {
    let h = Harness::new().await;
    h.ingest(METRO, &[fare_evasion("fe-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let uri = format!("/v1/subjects/{}", alice());
    let file = h.get(&uri, Some(ALICE)).await.expect(StatusCode::OK).json();
    assert_eq!(file["subject"], alice().to_string());
    assert_eq!(file["as_of"], TODAY);
    assert_eq!(file["lists"], json!(["rail_ticket_ban"]));
    assert_eq!(file["records"][0]["id"], "fe-1");
    assert_eq!(file["effects"][0]["status"], "in_force");
    assert_eq!(file["open_items"], json!([]));
    let queue = h
        .get("/v1/review/objections", Some(REVIEWER_1))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(queue["objections"], json!([]), "{queue}");

    h.get(&uri, Some(BOB))
        .await
        .expect_error(StatusCode::FORBIDDEN, "not_your_file");
    h.get(&format!("{uri}/explanation"), Some(BOB))
        .await
        .expect_error(StatusCode::FORBIDDEN, "not_your_file");
    h.get(&format!("{uri}/access-log"), Some(BOB))
        .await
        .expect_error(StatusCode::FORBIDDEN, "not_your_file");
    h.get(&uri, None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    // A path that does not decode: the token is asked for first.
    h.get("/v1/subjects/%FF", None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    h.get("/v1/subjects/%FF", Some(ALICE))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_path");
    for token in [ADMIN, METRO, REVIEWER_1, AIRLINE, AUDITOR] {
        h.get(&uri, Some(token))
            .await
            .expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
    h.get("/v1/subjects/11010519850714123Y", Some(ALICE))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_subject");

    // A subject the registry knows nothing about has an empty file.
    let file = h
        .get(&format!("/v1/subjects/{}", bob()), Some(BOB))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(file["records"], json!([]));
}

#[tokio::test]
async fn the_explanation_is_text_for_a_person() {
    let h = Harness::new().await;
    h.ingest(METRO, &[fare_evasion("fe-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let reply = h
        .get(
            &format!("/v1/subjects/{}/explanation", alice()),
            Some(ALICE),
        )
        .await
        .expect(StatusCode::OK);
    assert!(reply.content_type.starts_with("text/plain"));
    assert!(
        reply
            .text
            .starts_with(&format!("Credit file of {}", alice())),
        "{}",
        reply.text
    );
    assert!(reply.text.contains("rail_ticket_ban"));
    assert!(reply.text.contains("metro.shanghai/fe-1"));
}

#[tokio::test]
async fn the_access_log_shows_who_read_the_file_and_why() {
    let h = Harness::new().await;
    let decision = ticket_sale(alice(), "no_air_travel");
    h.get(&decision, Some(AIRLINE)).await.expect(StatusCode::OK);
    h.get(&format!("/v1/subjects/{}", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK);
    // Bob's file is read too; it must not show in Alice's log.
    h.get(&ticket_sale(bob(), "no_air_travel"), Some(AIRLINE))
        .await
        .expect(StatusCode::OK);

    let log = h
        .get(&format!("/v1/subjects/{}/access-log", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK)
        .json();
    let entries = log["entries"].as_array().unwrap();
    let seen: Vec<(&str, &str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["role"].as_str().unwrap(),
                e["purpose"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("airline", "agency", "ticket_sale", "decide"),
            ("alice", "subject", "own_file", "read_file")
        ]
    );
    assert!(entries[0]["detail"]
        .as_str()
        .unwrap()
        .contains("no_air_travel"));
    assert!(entries[0]["at_ms"].as_i64().unwrap() > 0);

    // Paging.
    let uri = format!("/v1/subjects/{}/access-log?limit=1", alice());
    let page = h.get(&uri, Some(ALICE)).await.expect(StatusCode::OK).json();
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    let after = page["next_after"].as_u64().unwrap();
    let uri = format!("/v1/subjects/{}/access-log?after={after}&limit=1", alice());
    let page = h.get(&uri, Some(ALICE)).await.expect(StatusCode::OK).json();
    assert_eq!(page["entries"][0]["action"], "read_file");
    // That full page holds the last entry: it is the last page.
    assert!(page.get("next_after").is_none(), "{page}");
}

#[tokio::test]
async fn consent_is_granted_and_withdrawn_by_the_subject() {
    let h = Harness::new().await;
    let uri = format!("/v1/subjects/{}/consent", alice());
    let reply = h
        .post_json(&uri, Some(ALICE), &json!({"granted": true}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        reply,
        json!({"subject": alice().to_string(), "granted": true, "outcome": "stored", "consent": true})
    );
    let reply = h
        .post_json(&uri, Some(ALICE), &json!({"granted": true}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(reply["outcome"], "duplicate");
    let file = h
        .get(&format!("/v1/subjects/{}", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(file["consent"], true);
    assert!(
        file["score"].is_i64(),
        "a consenting person is scored: {file}"
    );

    h.clock
        .set_day(socred_core::Day::parse("2026-06-02").unwrap());
    let reply = h
        .post_json(&uri, Some(ALICE), &json!({"granted": false}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(reply["consent"], false);
    let file = h
        .get(&format!("/v1/subjects/{}", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(file["score"].is_null(), "{file}");

    // Granted and withdrawn again the same day: the withdrawal holds.
    h.clock
        .set_day(socred_core::Day::parse("2026-06-03").unwrap());
    let reply = h
        .post_json(&uri, Some(ALICE), &json!({"granted": true}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(reply["consent"], true, "{reply}");
    let reply = h
        .post_json(&uri, Some(ALICE), &json!({"granted": false}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(reply["consent"], false, "{reply}");
    let file = h
        .get(&format!("/v1/subjects/{}", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(
        file["score"].is_null(),
        "withdrawn today, not scored: {file}"
    );
    // A grant after that, the same day, would change nothing: refused.
    h.post_json(&uri, Some(ALICE), &json!({"granted": true}))
        .await
        .expect_error(StatusCode::CONFLICT, "withdrawn_today");

    h.post_json(&uri, Some(BOB), &json!({"granted": true}))
        .await
        .expect_error(StatusCode::FORBIDDEN, "not_your_file");
    h.post_json(&uri, Some(ALICE), &json!({"granted": "yes"}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body");
    h.post_json(&uri, Some(ALICE), &json!({"granted": true, "scope": "all"}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "unknown_field");
    let log = h
        .get(&format!("/v1/subjects/{}/access-log", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK)
        .json();
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "consent",
            "consent",
            "read_file",
            "consent",
            "read_file",
            "consent",
            "consent",
            "read_file"
        ]
    );
}

/// Grants and withdrawals sent at once: whichever way they interleave, no
/// grant is stored after a withdrawal of the same day (it would change
/// nothing and is refused), and each answer's `consent` is the file's. On
/// the embedded store, whose calls run on other threads and let requests
/// interleave between a check and its write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_changes_sent_at_once_are_taken_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = socred_store_sqlite::SqliteStore::open(dir.path()).unwrap();
    let h = Harness::over(std::sync::Arc::new(store), socred_server::Limits::default()).await;
    let uri = format!("/v1/subjects/{}/consent", alice());
    let requests = (0..12).map(|i| {
        let body = json!({"granted": i % 2 == 0});
        let (h, uri) = (&h, &uri);
        async move { h.post_json(uri, Some(ALICE), &body).await }
    });
    let replies = futures_util::future::join_all(requests).await;
    for reply in &replies {
        if reply.status == StatusCode::CONFLICT {
            assert_eq!(reply.code(), "withdrawn_today");
            continue;
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        // A grant taken found no withdrawal of the day, and one taken
        // holds over the day's grants.
        let answer = reply.json();
        assert_eq!(answer["consent"], answer["granted"], "{answer}");
    }
    let log = h
        .get(&format!("/v1/subjects/{}/access-log", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK)
        .json();
    let details: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "consent")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    let first_withdrawal = details
        .iter()
        .position(|d| d.starts_with("consent withdrawn"))
        .expect("a withdrawal was stored");
    assert!(
        details[first_withdrawal..]
            .iter()
            .all(|d| !d.starts_with("consent granted")),
        "a grant stored after the day's withdrawal: {details:?}"
    );
    assert_eq!(alice_file(&h).await["consent"], false);
}

/// Alice's file, read by alice.
async fn alice_file(h: &Harness) -> Value {
    h.get(&format!("/v1/subjects/{}", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK)
        .json()
}

#[tokio::test]
async fn a_subject_objects_to_a_record_and_a_reviewer_resolves_it() {
    let h = Harness::new().await;
    h.ingest(METRO, &[fare_evasion("fe-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    assert!(h.applies(RAIL, alice(), "no_rail_tickets").await);
    let uri = format!("/v1/subjects/{}/objections", alice());
    let record = json!({"provider": METRO_ID, "id": "fe-1"});
    let odd = json!({"record": {"provider": METRO_ID, "id": "fe-1", "x": 1}});
    h.post_json(&uri, Some(ALICE), &odd)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "unknown_field");

    let reply = h
        .post_json(
            &uri,
            Some(ALICE),
            &json!({"record": record, "statement": "I had a valid ticket;\nthe gate was broken."}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        reply,
        json!({"subject": alice().to_string(), "record": record, "outcome": "stored",
               "since": TODAY, "resolve_by": "2026-06-21"})
    );
    // A fare evasion's effects are suspended while it is disputed.
    assert!(!h.applies(RAIL, alice(), "no_rail_tickets").await);
    let file = alice_file(&h).await;
    assert_eq!(
        file["open_items"],
        json!([{"kind": "dispute", "record": record, "since": TODAY, "resolve_by": "2026-06-21",
                "overdue": false, "statement": "I had a valid ticket;\nthe gate was broken."}])
    );

    // Once is enough while it is open; refusals name what is wrong.
    h.post_json(&uri, Some(ALICE), &json!({"record": record}))
        .await
        .expect_error(StatusCode::CONFLICT, "already_disputed");
    h.post_json(
        &uri,
        Some(ALICE),
        &json!({"record": {"provider": METRO_ID, "id": "fe-404"}}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND, "unknown_record");
    h.post_json(&uri, Some(BOB), &json!({"record": record}))
        .await
        .expect_error(StatusCode::FORBIDDEN, "not_your_file");
    h.post_json(&uri, Some(RAIL), &json!({"record": record}))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    h.post_json(
        &uri,
        Some(ALICE),
        &json!({"record": record, "statement": "x".repeat(4097)}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "text_too_long");
    h.post_json(
        &uri,
        Some(ALICE),
        &json!({"record": record, "statement": "bell\u{7}"}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "invalid_text");

    // Reviewers find it in their queue of open objections; nobody else may.
    let queue = h
        .get("/v1/review/objections", Some(REVIEWER_1))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        queue,
        json!({"as_of": TODAY, "objections": [{"subject": alice().to_string(), "record": record,
            "record_type": "transport.fare_evasion", "fields": {"station": "Xujiahui"},
            "since": TODAY, "resolve_by": "2026-06-21",
            "overdue": false, "statement": "I had a valid ticket;\nthe gate was broken."}]})
    );
    // A full page of the one subject is the last page.
    let page = h
        .get("/v1/review/objections?limit=1", Some(REVIEWER_1))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(page["objections"].as_array().unwrap().len(), 1);
    assert!(page.get("next_after").is_none(), "{page}");
    h.get("/v1/review/objections", Some(AIRLINE))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    h.get("/v1/review/objections", Some(ALICE))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    h.get("/v1/review/objections", None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    h.get("/v1/review/objections?after=nope", Some(REVIEWER_1))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_subject");

    // Past its deadline the objection shows as overdue.
    h.clock
        .set_day(socred_core::Day::parse("2026-06-22").unwrap());
    let file = alice_file(&h).await;
    assert_eq!(file["open_items"][0]["overdue"], true, "{file}");

    // A reviewer upholds the record: it counts again, and nothing is open.
    let resolved = json!({"fact": "resolved", "provider": METRO_ID, "record": "fe-1",
        "subject": alice().to_string(), "at": "2026-06-22", "by": "reviewer-1", "outcome": "upheld"});
    h.ingest(REVIEWER_1, &[resolved.to_string()])
        .await
        .expect(StatusCode::OK);
    assert!(h.applies(RAIL, alice(), "no_rail_tickets").await);
    let file = alice_file(&h).await;
    assert_eq!(file["open_items"], json!([]));
    // Sent again, it changes nothing and says so, as any item does; another
    // reviewer's resolution of the resolved objection is refused.
    let reply = h
        .ingest(REVIEWER_1, &[resolved.to_string()])
        .await
        .expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["duplicate"], "{}", reply.text);
    let other = json!({"fact": "resolved", "provider": METRO_ID, "record": "fe-1",
        "subject": alice().to_string(), "at": "2026-06-22", "by": "reviewer-2", "outcome": "upheld"});
    let reply = h
        .ingest(REVIEWER_2, &[other.to_string()])
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply.json()["results"][0]["code"], "no_open_objection");

    // She may object again, but not on the day one was resolved: a day's
    // objection would read as resolved by that day's resolution. The
    // refusal leaves no trace; the next day it is stored and open.
    h.post_json(&uri, Some(ALICE), &json!({"record": record}))
        .await
        .expect_error(StatusCode::CONFLICT, "resolved_today");
    h.clock
        .set_day(socred_core::Day::parse("2026-06-23").unwrap());
    let again = h
        .post_json(&uri, Some(ALICE), &json!({"record": record}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        (again["outcome"].as_str(), again["since"].as_str()),
        (Some("stored"), Some("2026-06-23"))
    );
    let file = alice_file(&h).await;
    assert_eq!(file["open_items"][0]["since"], "2026-06-23", "{file}");
    let resolved_again = json!({"fact": "resolved", "provider": METRO_ID, "record": "fe-1",
        "subject": alice().to_string(), "at": "2026-06-23", "by": "reviewer-2", "outcome": "upheld"});
    h.ingest(REVIEWER_2, &[resolved_again.to_string()])
        .await
        .expect(StatusCode::OK);
    h.post_json(&uri, Some(ALICE), &json!({"record": record}))
        .await
        .expect_error(StatusCode::CONFLICT, "resolved_today");
    let queue = h
        .get("/v1/review/objections", Some(REVIEWER_1))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(queue["objections"], json!([]), "{queue}");

    // The objection is in the subject's access log.
    let objections = h.logged(ALICE, alice(), "object").await;
    // Each objection stored is logged (on 2026-06-01 and 2026-06-23); the
    // refusals left no trace, like every refusal.
    assert_eq!(objections.len(), 2, "{objections:?}");
    // So is each of the reviewer's two looks at it (the queue, then its
    // page of one), with its purpose.
    let looked = h.logged(ALICE, alice(), "read_objection").await;
    assert_eq!(looked.len(), 2, "{looked:?}");
    assert_eq!(looked[0]["actor"], "reviewer-1");
    assert_eq!(looked[0]["purpose"], "review");
    assert_eq!(
        objections[0]["detail"],
        format!("objection to record {METRO_ID}/fe-1 from {TODAY}")
    );
}

/// A `resolved` fact decides an objection: about a record its subject has
/// not disputed on that day, it is refused, since it would retract or
/// correct the record on a reviewer's word alone; once the subject
/// objects, the same resolution is stored.
#[tokio::test]
async fn a_reviewer_resolves_only_open_objections() {
    let h = Harness::new().await;
    h.ingest(METRO, &[fare_evasion("fe-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let resolution = |at: &str| {
        json!({"fact": "resolved", "provider": METRO_ID, "record": "fe-1",
            "subject": alice().to_string(), "at": at, "by": "reviewer-1", "outcome": "retracted"})
        .to_string()
    };
    let reply = h
        .ingest(REVIEWER_1, &[resolution(TODAY)])
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(reply["results"][0]["code"], "no_open_objection", "{reply}");
    assert_eq!(reply["results"][0]["field"], "record", "{reply}");
    assert!(h.applies(RAIL, alice(), "no_rail_tickets").await);
    assert_eq!(h.store.counts().await.unwrap().facts, 0);

    let uri = format!("/v1/subjects/{}/objections", alice());
    h.post_json(
        &uri,
        Some(ALICE),
        &json!({"record": {"provider": METRO_ID, "id": "fe-1"}}),
    )
    .await
    .expect(StatusCode::OK);
    // Not before the objection was made.
    let reply = h
        .ingest(REVIEWER_1, &[resolution("2026-05-31")])
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(reply["results"][0]["code"], "no_open_objection", "{reply}");
    let reply = h
        .ingest(REVIEWER_1, &[resolution(TODAY)])
        .await
        .expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["stored"]);
    assert!(!h.applies(RAIL, alice(), "no_rail_tickets").await);
    // She reads who decided her objection, and how; the refusals left no trace.
    let resolved = h.logged(ALICE, alice(), "resolve").await;
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(resolved[0]["actor"], "reviewer-1");
    assert_eq!(resolved[0]["purpose"], "review");
    assert_eq!(
        resolved[0]["detail"],
        format!("resolution of the objection to record {METRO_ID}/fe-1 sent: retracted")
    );
}

#[tokio::test]
async fn a_subject_applies_for_repair_and_a_reviewer_grants_it() {
    let h = Harness::new().await;
    h.ingest(COURT, &[judgment_default("jd-1", alice(), "2026-01-10")])
        .await
        .expect(StatusCode::OK);
    // The judgment waits for a reviewer: Alice sees it pending in her file.
    let pending_keys = |file: &Value| -> Vec<Value> {
        file["pending"]
            .as_array()
            .unwrap_or_else(|| panic!("no pending items: {file}"))
            .iter()
            .map(|item| item["key"].clone())
            .collect()
    };
    let file = alice_file(&h).await;
    assert_eq!(
        pending_keys(&file),
        vec![json!({"item": "record", "provider": COURT_ID, "id": "jd-1"})],
        "{file}"
    );
    assert_eq!(
        file["pending"][0]["item"]["type"],
        "judicial.judgment_default"
    );
    approve(&h, REVIEWER_1, COURT_ID, "jd-1")
        .await
        .expect(StatusCode::OK);
    assert_eq!(pending_keys(&alice_file(&h).await), Vec::<Value>::new());
    h.ingest(METRO, &[fare_evasion("fe-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let judgment = json!({"provider": COURT_ID, "id": "jd-1"});
    let public = |file: &Value| {
        file["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == "jd-1")
            .map(|r| r["public"].clone())
    };
    assert_eq!(public(&alice_file(&h).await), Some(json!(true)));
    let uri = format!("/v1/subjects/{}/repair-applications", alice());
    let application = json!({"record": judgment, "correction": "Paid in full on 2026-05-02; court receipt 2026-0042.",
        "commitment": "I will honour every judgment against me."});

    // What is refused, and why.
    h.post_json(
        &uri,
        Some(ALICE),
        &json!({"record": judgment, "correction": "paid", "commitment": " "}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "incomplete_application");
    h.post_json(
        &uri,
        Some(ALICE),
        &json!({"record": judgment, "correction": "paid"}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "incomplete_application");
    h.post_json(
        &uri,
        Some(ALICE),
        &json!({"record": {"provider": COURT_ID, "id": "jd-404"}, "correction": "paid", "commitment": "yes"}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND, "unknown_record");
    // A fare evasion is not public, and repair does not end the rail ban.
    h.post_json(
        &uri,
        Some(ALICE),
        &json!({"record": {"provider": METRO_ID, "id": "fe-1"}, "correction": "paid the fare", "commitment": "yes"}),
    )
    .await
    .expect_error(StatusCode::CONFLICT, "nothing_to_repair");
    h.post_json(&uri, Some(BOB), &application)
        .await
        .expect_error(StatusCode::FORBIDDEN, "not_your_file");

    let reply = h
        .post_json(&uri, Some(ALICE), &application)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(reply["outcome"], "pending_review", "{reply}");
    let key = reply["key"].clone();
    assert_eq!(key["kind"], "repaired", "{key}");
    // Nothing changes until a reviewer decides; her file shows it waiting,
    // and Bob's shows nothing of hers.
    let file = alice_file(&h).await;
    assert_eq!(public(&file), Some(json!(true)));
    assert_eq!(pending_keys(&file), vec![key.clone()], "{file}");
    let bobs = h
        .get(&format!("/v1/subjects/{}", bob()), Some(BOB))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(bobs["pending"], json!([]), "{bobs}");
    assert!(h.applies(AIRLINE, alice(), "no_air_travel").await);
    let queue = h
        .get("/v1/review/pending", Some(REVIEWER_2))
        .await
        .expect(StatusCode::OK)
        .json();
    let waiting: Vec<&Value> = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["key"] == key)
        .collect();
    assert_eq!(waiting.len(), 1, "{queue}");
    assert_eq!(
        waiting[0]["item"]["statement"],
        "Correction: Paid in full on 2026-05-02; court receipt 2026-0042.\nCommitment: I will honour every judgment against me."
    );

    // A reviewer refuses it, with a reason the subject reads in its
    // access log; the subject applies again the next day.
    h.post_json(
        "/v1/review/reject",
        Some(REVIEWER_2),
        &json!({"key": key, "reason": "the receipt does not name the case"}),
    )
    .await
    .expect(StatusCode::OK);
    let file = alice_file(&h).await;
    assert_eq!(public(&file), Some(json!(true)));
    assert_eq!(
        pending_keys(&file),
        Vec::<Value>::new(),
        "a refused application leaves"
    );
    // Not again the day it was refused: the application of the day is
    // decided.
    let refused = h
        .post_json(&uri, Some(ALICE), &application)
        .await
        .expect_error(StatusCode::CONFLICT, "applied_today");
    assert!(refused.text.contains("tomorrow"), "{}", refused.text);
    h.clock
        .set_day(socred_core::Day::parse("2026-06-02").unwrap());
    let reply = h
        .post_json(&uri, Some(ALICE), &application)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(reply["outcome"], "pending_review", "{reply}");
    let key = reply["key"].clone();
    // Sent again as it was, it is the same application, still waiting;
    // with other words, a second one that day is refused.
    let again = h
        .post_json(&uri, Some(ALICE), &application)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        (&again["outcome"], &again["key"]),
        (&json!("pending_review"), &key)
    );
    assert_eq!(pending_keys(&alice_file(&h).await), vec![key.clone()]);
    let mut reworded = application.clone();
    reworded["commitment"] = json!("I promise.");
    h.post_json(&uri, Some(ALICE), &reworded)
        .await
        .expect_error(StatusCode::CONFLICT, "applied_today");

    // A reviewer grants it: the record stops being public from the day of
    // the application, and a second application is refused.
    h.post_json("/v1/review/approve", Some(REVIEWER_2), &json!({"key": key}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(public(&alice_file(&h).await), Some(json!(false)));
    // Its defaulter entry ends too (past its three-month minimum).
    assert!(!h.applies(AIRLINE, alice(), "no_air_travel").await);
    h.post_json(&uri, Some(ALICE), &application)
        .await
        .expect_error(StatusCode::CONFLICT, "already_repaired");
    let log = h
        .get(&format!("/v1/subjects/{}/access-log", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK)
        .json();
    let entries = log["entries"].as_array().unwrap();
    let by_action = |action: &str| -> Vec<&Value> {
        entries.iter().filter(|e| e["action"] == action).collect()
    };
    // Both applications, and the attempt on the day of the refusal (the
    // store saw it); not the one sent again while waiting, nor the
    // reworded one, refused before anything was written.
    let applied: Vec<&str> = by_action("apply_repair")
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        applied,
        [
            "repair of record court.beijing-1/jd-1 applied for on 2026-06-01",
            "repair of record court.beijing-1/jd-1 applied for on 2026-06-01",
            "repair of record court.beijing-1/jd-1 applied for on 2026-06-02"
        ],
        "{log}"
    );
    // The reviewer's look at the queue is a read of what was about to
    // enter her file.
    let looked = by_action("read_pending");
    assert_eq!(looked.len(), 1, "{log}");
    assert_eq!(
        (&looked[0]["actor"], &looked[0]["purpose"]),
        (&json!("reviewer-2"), &json!("review"))
    );
    assert!(
        looked[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("fact repaired of "),
        "{}",
        looked[0]
    );
    // The reviewers' decisions are in the subject's own access log.
    let rejected = by_action("reject");
    assert_eq!(rejected.len(), 1, "{log}");
    assert_eq!(rejected[0]["actor"], "reviewer-2");
    assert!(
        rejected[0]["detail"]
            .as_str()
            .unwrap()
            .ends_with("the receipt does not name the case"),
        "{}",
        rejected[0]
    );
    // Both approvals: of the judgment about her, and of her repair.
    let approved: Vec<&str> = by_action("approve")
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(approved, ["reviewer-1", "reviewer-2"], "{log}");
}
