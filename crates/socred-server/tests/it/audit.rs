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
    let decision = ticket_sale(alice(), "no_rail_tickets");
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
    // A full page that ends with the last entry is the last page. Each
    // read of the log is logged after it is read.
    let whole = h
        .get("/v1/audit?limit=1000", Some(AUDITOR))
        .await
        .expect(StatusCode::OK)
        .json();
    let last = whole["entries"].as_array().unwrap().last().unwrap()["seq"]
        .as_u64()
        .unwrap();
    let page = h
        .get(
            &format!("/v1/audit?after={}&limit=2", last - 1),
            Some(AUDITOR),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(page["entries"].as_array().unwrap().len(), 2, "{page}");
    assert!(page.get("next_after").is_none(), "{page}");

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
    let decision = ticket_sale(alice(), "no_air_travel");
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

/// Past the rulebook's `audit_retention` (ten years in the default
/// rulebook) the erasure run removes the oldest entries: after an entry
/// that records the removal, so that the chain still verifies from its new
/// start; the subject's access log no longer shows them; and entries
/// deleted from the start without such an entry are caught.
#[tokio::test]
async fn entries_leave_the_log_at_the_end_of_its_retention() {
    let h = Harness::new().await;
    let decision = ticket_sale(alice(), "no_rail_tickets");
    h.get(&decision, Some(RAIL)).await.expect(StatusCode::OK);
    h.get(&format!("/v1/subjects/{}", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK);
    // The rulebook's installation, the decision and the file's read.
    let old = 3;
    assert_eq!(h.logged(ALICE, alice(), "decide").await.len(), 1);

    // Ten years and a day later, by the registry's day.
    h.clock
        .set_day(socred_core::Day::parse("2036-06-02").unwrap());
    h.get(&decision, Some(RAIL)).await.expect(StatusCode::OK);
    for token in [METRO, AUDITOR, ALICE] {
        h.post_json("/v1/admin/erasure", Some(token), &serde_json::json!({}))
            .await
            .expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
    let run = h
        .post_json("/v1/admin/erasure", Some(ADMIN), &serde_json::json!({}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(run["audit_entries_removed"], old, "{run}");

    let page = h
        .get("/v1/audit", Some(AUDITOR))
        .await
        .expect(StatusCode::OK)
        .json();
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries[0]["seq"], old + 1, "{page}");
    let removal = entries
        .iter()
        .find(|e| e["action"] == "prune_audit")
        .expect("the removal's entry");
    assert_eq!(removal["actor"], "admin");
    let detail = removal["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!(
            "removed the audit entries up to entry {old}, appended before 2026-06-02"
        )),
        "{detail}"
    );
    let verdict = h
        .get("/v1/audit/verify", Some(AUDITOR))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(verdict["ok"], true, "{verdict}");

    // The subject sees the decision of today only.
    let decided = h.logged(ALICE, alice(), "decide").await;
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert!(decided[0]["seq"].as_u64().unwrap() > old);
    assert!(h.logged(ALICE, alice(), "read_file").await.is_empty());

    // Nothing more is due today.
    let again = h
        .post_json("/v1/admin/erasure", Some(ADMIN), &serde_json::json!({}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(again["audit_entries_removed"], 0, "{again}");

    // Entries deleted from the start behind the log's back: the removal's
    // entry vouches for entries up to 3 only.
    h.memory
        .as_ref()
        .unwrap()
        .remove_audit_entries_for_tests(old + 1);
    let verdict = h
        .get("/v1/audit/verify", Some(AUDITOR))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(verdict["ok"], false, "{verdict}");
    let reason = verdict["broken"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("entries were deleted from its start"),
        "{reason}"
    );
}
