//! The audit log for auditors: every write and every read of a file is in
//! it, and its hash chain catches an edit.

use axum::http::StatusCode;

use crate::harness::*;

#[tokio::test]
async fn writes_and_reads_are_logged_and_the_chain_verifies() {
    let h = Harness::new().await;
    h.ingest(METRO, &[fare_evasion("fe-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let decision = format!(
        "/v1/decisions?subject={}&measure=no_rail_tickets&purpose=ticket_sale",
        alice()
    );
    h.get(&decision, Some(RAIL)).await.expect(StatusCode::OK);

    let page = h
        .get("/v1/audit", Some(AUDITOR))
        .await
        .expect(StatusCode::OK)
        .json();
    let entries = page["entries"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    // The default rulebook installed on first start, the batch, the decision.
    assert_eq!(
        actions,
        [
            ("socred", "put_rulebook"),
            ("metro", "ingest"),
            ("rail", "decide")
        ]
    );
    assert_eq!(entries[2]["subject"], alice().to_string());
    assert_eq!(entries[2]["purpose"], "ticket_sale");
    assert_eq!(entries[1]["hash"].as_str().unwrap().len(), 64);

    let verdict = h
        .get("/v1/audit/verify", Some(AUDITOR))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(verdict["ok"], true, "{verdict}");
    // The three, and the auditor's read of them.
    assert_eq!(verdict["entries"], 4);
    let reads = h
        .get("/v1/audit?after=3", Some(AUDITOR))
        .await
        .expect(StatusCode::OK)
        .json();
    let read: Vec<(&str, &str, &str)> = reads["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["detail"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            ("auditor", "read_audit", "3 entries, 1 to 3"),
            ("auditor", "verify_audit", "chain of 4 entries holds")
        ],
        "the auditor's reads are in the log: {reads}"
    );

    // One subject's entries: its access log, as it reads it; the
    // auditor's read of them is then in that log too.
    let about = h
        .get(&format!("/v1/audit?subject={}", alice()), Some(AUDITOR))
        .await
        .expect(StatusCode::OK)
        .json();
    let subjects: Vec<&str> = about["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(subjects, [alice().to_string()], "{about}");
    let read = h.logged(ALICE, alice(), "read_audit").await;
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(
        read[0]["detail"],
        format!("1 entry about {}, 3 to 3", alice())
    );
    h.get("/v1/audit?subject=nobody", Some(AUDITOR))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_subject");

    let page = h
        .get("/v1/audit?after=1&limit=1", Some(AUDITOR))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(page["entries"][0]["seq"], 2);
    assert_eq!(page["next_after"], 2);

    for token in [ADMIN, METRO, RAIL, ALICE, REVIEWER_1] {
        h.get("/v1/audit", Some(token))
            .await
            .expect_error(StatusCode::FORBIDDEN, "forbidden");
        h.get("/v1/audit/verify", Some(token))
            .await
            .expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
    h.get("/v1/audit", None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn an_edited_entry_breaks_the_chain() {
    let h = Harness::new().await;
    let decision = format!(
        "/v1/decisions?subject={}&measure=no_air_travel&purpose=ticket_sale",
        alice()
    );
    h.get(&decision, Some(AIRLINE)).await.expect(StatusCode::OK);
    h.get(&decision, Some(AIRLINE)).await.expect(StatusCode::OK);
    let memory = h.memory.as_ref().unwrap();
    assert!(memory.alter_audit_entry_for_tests(2, "nobody asked"));
    let verdict = h
        .get("/v1/audit/verify", Some(AUDITOR))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(verdict["ok"], false);
    assert_eq!(verdict["broken"]["seq"], 2, "{verdict}");
    let report = socred_server::verify_store(h.store.as_ref()).await.unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.chain_break.map(|b| b.seq), Some(2));
}
