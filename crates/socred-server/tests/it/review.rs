//! The two-person rule: a serious record that puts its subject on the
//! judgment defaulters list waits for a reviewer, and a reviewer's repair
//! that takes the entry away waits for another reviewer.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::*;

async fn public_defaulters(h: &Harness) -> usize {
    let reply = h
        .get("/v1/public/lists/judgment_defaulters", None)
        .await
        .expect(StatusCode::OK);
    reply.json()["entries"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_serious_record_takes_effect_only_when_a_reviewer_approves_it() {
    let h = Harness::new().await;
    let reply = h
        .ingest(COURT, &[judgment_default("j-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["pending_review"]);
    // A replay while it waits says so again.
    let reply = h
        .ingest(COURT, &[judgment_default("j-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["pending_review"]);
    assert!(!h.applies(AIRLINE, alice(), "no_air_travel").await);
    assert_eq!(public_defaulters(&h).await, 0);

    let pending = h
        .get("/v1/review/pending", Some(REVIEWER_1))
        .await
        .expect(StatusCode::OK)
        .json();
    let items = pending["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["key"],
        json!({"item": "record", "provider": COURT_ID, "id": "j-1"})
    );
    assert_eq!(items[0]["submitted_by"], "court");
    assert_eq!(items[0]["item"]["type"], "judicial.judgment_default");
    // A full page that holds the last item is the last page.
    let page = h
        .get("/v1/review/pending?limit=1", Some(REVIEWER_1))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page.get("next_after").is_none(), "{page}");
    h.get("/v1/review/pending", Some(COURT))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");

    // A provider cannot approve, even someone else's record.
    approve(&h, COURT, COURT_ID, "j-1")
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    let reply = approve(&h, REVIEWER_1, COURT_ID, "j-1")
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply.json()["status"], "approved");
    assert!(h.applies(AIRLINE, alice(), "no_air_travel").await);
    assert_eq!(public_defaulters(&h).await, 1);
    // Approved once is approved.
    approve(&h, REVIEWER_2, COURT_ID, "j-1")
        .await
        .expect_error(StatusCode::CONFLICT, "review_refused");
    approve(&h, REVIEWER_2, COURT_ID, "j-404")
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_pending");
    let reply = h
        .ingest(COURT, &[judgment_default("j-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["duplicate"]);
}

#[tokio::test]
async fn a_reviewer_cannot_approve_its_own_repair_and_a_second_one_can() {
    let h = Harness::new().await;
    h.ingest(COURT, &[judgment_default("j-1", alice(), "2025-11-03")])
        .await
        .expect(StatusCode::OK);
    approve(&h, REVIEWER_2, COURT_ID, "j-1")
        .await
        .expect(StatusCode::OK);
    assert!(h.applies(AIRLINE, alice(), "no_air_travel").await);

    // Reviewer 1 grants the repair application: ending a reviewed entry needs a second person.
    let repair = json!({"fact": "repaired", "provider": COURT_ID, "record": "j-1", "subject": alice().to_string(),
        "at": TODAY, "by": "reviewer-1"})
    .to_string();
    let reply = h
        .ingest(REVIEWER_1, &[&repair])
        .await
        .expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["pending_review"]);
    // `by` must be the reviewer itself.
    let spoofed = repair.replace("reviewer-1", "reviewer-2");
    let reply = h
        .ingest(REVIEWER_1, &[spoofed])
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply.json()["results"][0]["code"], "by_mismatch");

    let pending = h
        .get("/v1/review/pending", Some(REVIEWER_1))
        .await
        .expect(StatusCode::OK)
        .json();
    let key = pending["items"][0]["key"].clone();
    assert_eq!(key["item"], "fact");
    // The item as its provider sent it, a line of the wire format.
    let sent: serde_json::Value = serde_json::from_str(&repair).unwrap();
    assert_eq!(pending["items"][0]["item"], sent, "{pending}");
    // A key with a key of its own that no key has, at any depth, is
    // refused as every body's unknown key is.
    let mut extra = key.clone();
    extra["extra"] = json!(1);
    let mut nested = key.clone();
    nested["record"]["extra"] = json!(1);
    for key in [extra, nested] {
        h.post_json("/v1/review/approve", Some(REVIEWER_2), &json!({"key": key}))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "unknown_field");
    }
    let reply = h
        .post_json("/v1/review/approve", Some(REVIEWER_1), &json!({"key": key}))
        .await;
    let reply = reply.expect_error(StatusCode::CONFLICT, "review_refused");
    assert!(reply.text.contains("second person"), "{}", reply.text);
    assert!(h.applies(AIRLINE, alice(), "no_air_travel").await);
    assert_eq!(public_defaulters(&h).await, 1);

    h.post_json("/v1/review/approve", Some(REVIEWER_2), &json!({"key": key}))
        .await
        .expect(StatusCode::OK);
    assert!(!h.applies(AIRLINE, alice(), "no_air_travel").await);
    assert_eq!(public_defaulters(&h).await, 0);
    // Alice reads who granted the repair, and who approved it.
    let granted = h.logged(ALICE, alice(), "repair").await;
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert_eq!(granted[0]["actor"], "reviewer-1");
    assert_eq!(
        granted[0]["detail"],
        format!("repair of record {COURT_ID}/j-1 from {TODAY} sent, waiting for a second reviewer")
    );
    let approved = h.logged(ALICE, alice(), "approve").await;
    assert!(
        approved.iter().any(|e| e["actor"] == "reviewer-2"),
        "{approved:?}"
    );
}

#[tokio::test]
async fn a_rejected_record_never_takes_effect_and_its_key_stays_taken() {
    let h = Harness::new().await;
    h.ingest(COURT, &[judgment_default("j-1", bob(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let key = json!({"item": "record", "provider": COURT_ID, "id": "j-1"});
    h.post_json(
        "/v1/review/reject",
        Some(REVIEWER_1),
        &json!({"key": key, "reason": " "}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "invalid_reason");
    h.post_json("/v1/review/reject", Some(REVIEWER_1), &json!({"key": key}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body");
    let reply = h
        .post_json(
            "/v1/review/reject",
            Some(REVIEWER_1),
            &json!({"key": key, "reason": "wrong case number"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply.json()["status"], "rejected");
    assert!(!h.applies(AIRLINE, bob(), "no_air_travel").await);
    let reply = h
        .ingest(COURT, &[judgment_default("j-1", bob(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let result = &reply.json()["results"][0];
    assert_eq!(result["status"], "conflict");
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("wrong case number"),
        "{result}"
    );
}

/// A record whose retention ends while it waits may not take effect: the
/// approval is refused with the day it was kept until, nothing applies,
/// and the reviewer can still reject it.
#[tokio::test]
async fn a_record_past_retention_while_it_waits_cannot_be_approved() {
    let h = Harness::new().await;
    h.ingest(COURT, &[judgment_default("j-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    // Five years and a day later, by the registry's day.
    h.clock
        .set_day(socred_core::Day::parse("2031-05-21").unwrap());
    let reply = approve(&h, REVIEWER_1, COURT_ID, "j-1")
        .await
        .expect_error(StatusCode::CONFLICT, "review_refused");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("kept for P5Y, through 2031-05-19") && message.contains("reject it"),
        "{message}"
    );
    assert!(!h.applies(AIRLINE, alice(), "no_air_travel").await);
    let key = json!({"item": "record", "provider": COURT_ID, "id": "j-1"});
    let reply = h
        .post_json(
            "/v1/review/reject",
            Some(REVIEWER_1),
            &json!({"key": key, "reason": "past retention"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply.json()["status"], "rejected");
}

/// Only a record that meets its entry on a reviewed list waits: a food
/// safety violation enters the serious untrustworthy list when it is
/// serious (`when = "fields.serious"`), so one that is not takes effect at
/// once, and a reviewer's repair of it needs no second reviewer.
#[tokio::test]
async fn a_record_that_meets_no_reviewed_entry_does_not_wait() {
    let h = Harness::new().await;
    let body = json!({"id": "samr", "name": "Market regulator", "role": "provider",
        "scope": "samr.beijing", "record_types": ["market.food_safety_violation"]});
    let reply = h
        .post_json("/v1/admin/principals", Some(ADMIN), &body)
        .await
        .expect(StatusCode::CREATED)
        .json();
    let samr = reply["token"].as_str().unwrap().to_string();
    let violation = |id: &str, serious: Option<bool>| {
        let mut fields = json!({"decision_no": format!("decision {id}")});
        if let Some(serious) = serious {
            fields["serious"] = json!(serious);
        }
        json!({"provider": "samr.beijing", "id": id, "subject": acme().to_string(),
            "type": "market.food_safety_violation", "occurred_at": "2026-05-01",
            "decided_at": "2026-05-02", "fields": fields})
        .to_string()
    };
    let lines = [
        violation("fs-1", Some(true)),
        violation("fs-2", Some(false)),
        violation("fs-3", None),
    ];
    let reply = h.ingest(&samr, &lines).await.expect(StatusCode::OK);
    assert_eq!(
        Harness::statuses(&reply),
        ["pending_review", "stored", "stored"],
        "{}",
        reply.text
    );
    let repair = |id: &str| {
        json!({"fact": "repaired", "provider": "samr.beijing", "record": id,
            "subject": acme().to_string(), "at": TODAY, "by": "reviewer-1"})
        .to_string()
    };
    assert_eq!(h.ingested(REVIEWER_1, &[repair("fs-2")]).await, ["stored"]);
    // The serious one, once approved, is reviewed again when repaired.
    approve(&h, REVIEWER_2, "samr.beijing", "fs-1")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        h.ingested(REVIEWER_1, &[repair("fs-1")]).await,
        ["pending_review"]
    );

    // A correction that makes a record meet the reviewed entry is reviewed
    // as the record would have been; so is a repair of it afterwards. No
    // one person puts a company on the list or takes it off.
    let correction = json!({"fact": "corrected", "provider": "samr.beijing", "record": "fs-3",
        "subject": acme().to_string(), "at": TODAY, "by": "samr.beijing",
        "type": "market.food_safety_violation",
        "fields": {"decision_no": "decision fs-3", "serious": true}})
    .to_string();
    assert_eq!(h.ingested(&samr, &[correction]).await, ["pending_review"]);
    let pending = h
        .get("/v1/review/pending", Some(REVIEWER_2))
        .await
        .expect(StatusCode::OK)
        .json();
    let key = pending["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["key"]["kind"] == "corrected")
        .map(|item| item["key"].clone())
        .expect("the correction waits");
    h.post_json("/v1/review/approve", Some(REVIEWER_2), &json!({"key": key}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        h.ingested(REVIEWER_1, &[repair("fs-3")]).await,
        ["pending_review"]
    );
}
