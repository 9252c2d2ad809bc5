//! The operator: principals and tokens, registrations, rulebook upload.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn the_admin_registers_a_provider_whose_token_then_works() {
    let h = Harness::new().await;
    let body = json!({"id": "bank", "name": "National bank", "role": "provider", "scope": "bank.national",
        "record_types": ["commercial.bank_arrears"]});
    let reply = issue(&h, &body).await;
    let token = reply["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    assert_eq!(reply["principal"]["scope"], "bank.national");
    let line = json!({"provider": "bank.national", "id": "a-1", "subject": alice().to_string(), "type": "commercial.bank_arrears",
        "occurred_at": "2026-05-01", "decided_at": "2026-05-02", "fields": {"cycles": 3}})
    .to_string();
    let reply = h.ingest(&token, &[&line]).await.expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["stored"], "{}", reply.text);

    // Listed without any token.
    let list = h
        .get("/v1/admin/principals", Some(ADMIN))
        .await
        .expect(StatusCode::OK);
    assert!(list.text.contains("\"bank\"") && !list.text.contains(&token));

    // Replacing the principal issues a new token; the old one stops at once.
    let reply = issue(&h, &body).await;
    let new_token = reply["token"].as_str().unwrap().to_string();
    assert_ne!(new_token, token);
    h.ingest(&token, &[&line])
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "invalid_token");
    let reply = h.ingest(&new_token, &[&line]).await.expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["duplicate"]);

    // Revoked: the token no longer authenticates.
    h.send(
        Method::DELETE,
        "/v1/admin/principals/bank",
        Some(ADMIN),
        None,
        "",
    )
    .await
    .expect(StatusCode::OK);
    h.ingest(&new_token, &[line])
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "invalid_token");
    h.send(
        Method::DELETE,
        "/v1/admin/principals/nobody",
        Some(ADMIN),
        None,
        "",
    )
    .await
    .expect_error(StatusCode::NOT_FOUND, "unknown_principal");
    h.send(
        Method::DELETE,
        "/v1/admin/principals/admin",
        Some(ADMIN),
        None,
        "",
    )
    .await
    .expect_error(StatusCode::CONFLICT, "cannot_revoke_self");
    // Nor may it give its own principal another role: the registry would
    // be left without an operator. Replacing it as an admin (a new token)
    // is fine.
    let demoted = json!({"id": "admin", "name": "Operator", "role": "auditor"});
    let reply = h
        .post_json("/v1/admin/principals", Some(ADMIN), &demoted)
        .await;
    let message = reply.json()["error"]["message"].to_string();
    reply.expect_error(StatusCode::CONFLICT, "cannot_demote_self");
    assert!(message.contains("auditor"), "{message}");
    h.get("/v1/admin/principals", Some(ADMIN))
        .await
        .expect(StatusCode::OK);
    let renewed = json!({"id": "admin", "name": "Operator", "role": "admin"});
    let reply = issue(&h, &renewed).await;
    let renewed_token = reply["token"].as_str().unwrap();
    h.get("/v1/admin/principals", Some(renewed_token))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn registrations_are_checked_against_the_rulebook() {
    let h = Harness::new().await;
    let cases = [
        (
            json!({"id": "p", "name": "P", "role": "provider", "scope": "p.1", "record_types": ["no.such_type"]}),
            "unknown_record_type",
        ),
        (
            json!({"id": "p", "name": "P", "role": "provider", "scope": "p.1"}),
            "invalid_principal",
        ),
        (
            json!({"id": "p", "name": "P", "role": "agency"}),
            "invalid_principal",
        ),
        (
            json!({"id": "p", "name": "P", "role": "auditor", "scope": "x"}),
            "invalid_principal",
        ),
        (
            json!({"id": "p", "name": "P", "role": "subject", "scope": "12345"}),
            "invalid_subject",
        ),
        (
            json!({"id": "has space", "name": "P", "role": "auditor"}),
            "invalid_principal",
        ),
        (
            json!({"id": "p", "name": "P", "role": "emperor"}),
            "invalid_body",
        ),
        (
            json!({"id": "p", "name": "P", "role": "auditor", "token": "mine"}),
            "unknown_field",
        ),
    ];
    for (body, code) in cases {
        h.post_json("/v1/admin/principals", Some(ADMIN), &body)
            .await
            .expect_error(StatusCode::BAD_REQUEST, code);
    }
    // A key of the wrong type or value is named, as well as placed.
    for (body, key) in [
        (json!({"id": "p", "name": "P", "role": "emperor"}), "`role`"),
        (
            json!({"id": "p", "name": "P", "role": "auditor", "valid_until": 5}),
            "`valid_until`",
        ),
        (
            json!({"id": "p", "name": "P", "role": "provider", "scope": "s", "record_types": [1]}),
            "`record_types[0]`",
        ),
    ] {
        let reply = h
            .post_json("/v1/admin/principals", Some(ADMIN), &body)
            .await;
        let message = reply.json()["error"]["message"].to_string();
        reply.expect_error(StatusCode::BAD_REQUEST, "invalid_body");
        assert!(message.starts_with(&format!("\"{key}: ")), "{message}");
        assert!(message.contains("line 1 column"), "{message}");
    }
    // Two values in one body are malformed.
    let reply = h
        .send(
            axum::http::Method::POST,
            "/v1/admin/principals",
            Some(ADMIN),
            Some("application/json"),
            r#"{"id": "p", "name": "P", "role": "auditor"} {"id": "q"}"#,
        )
        .await;
    reply.expect_error(StatusCode::BAD_REQUEST, "malformed_json");
    // An agency no measure names can ask about nothing: accepted with a warning.
    let body = json!({"id": "zoo", "name": "Zoo", "role": "agency", "scope": "zoo"});
    let reply = issue(&h, &body).await;
    assert!(reply["warnings"][0].as_str().unwrap().contains("zoo"));
    // Subject scopes are normalised to upper case.
    let lower = alice().to_string().to_lowercase();
    let body = json!({"id": "alice2", "name": "Alice", "role": "subject", "scope": lower});
    let reply = issue(&h, &body).await;
    assert_eq!(reply["principal"]["scope"], alice().to_string());
    for token in [COURT, AUDITOR, ALICE] {
        h.post_json("/v1/admin/principals", Some(token), &body)
            .await
            .expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
}

#[tokio::test]
async fn a_rulebook_upload_is_validated_kept_and_recomputes_every_file() {
    let h = Harness::new().await;
    h.ingest(METRO, &[fare_evasion("fe-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    assert!(h.applies(RAIL, alice(), "no_rail_tickets").await);
    let original = rulebook_text(&h).await;

    // Broken: every problem with its line and column.
    let broken = original.replace(
        "[[measure]]\nid = \"no_air_travel\"",
        "[[measure]]\nid = \"no_air_travel\"\nbogus = 1",
    );
    let reply = put_rulebook(&h, broken).await;
    let reply = reply.expect_error(StatusCode::BAD_REQUEST, "invalid_rulebook");
    let problem = &reply.json()["error"]["problems"][0];
    assert!(
        problem["line"].as_u64().unwrap() > 1 && problem["column"].as_u64().unwrap() >= 1,
        "{problem}"
    );
    // Not UTF-8 (saved as Latin-1, say): a problem where the byte stands.
    let mut latin1 = original.clone().into_bytes();
    latin1.extend_from_slice(b"\n# caf\xe9\n");
    let reply = h
        .send(
            Method::PUT,
            "/v1/admin/rulebook",
            Some(ADMIN),
            Some("application/toml"),
            latin1,
        )
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_rulebook");
    let problem = &reply.json()["error"]["problems"][0];
    let last_line = original.lines().count() as u64 + 2;
    assert_eq!(problem["line"], last_line, "{problem}");
    assert_eq!(problem["column"], 6, "{problem}");

    // A new version where fare evasion bans for 7 days only: Alice's entry of 2026-05-20 is over.
    let shorter = seven_day_bans(&original, "test.2");
    let reply = put_rulebook(&h, shorter.clone())
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(reply["label"], "socred-default@test.2");
    assert!(reply["recomputed"].as_u64().unwrap() >= 1);
    assert!(!h.applies(RAIL, alice(), "no_rail_tickets").await);
    assert_eq!(
        h.get("/v1/rulebook", None).await.json()["label"],
        "socred-default@test.2"
    );
    let versions = h
        .get("/v1/admin/rulebooks", Some(ADMIN))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);
    assert_eq!(versions["current"], "socred-default@test.2");

    // The same label with other text is a conflict.
    let clash = shorter.replace("duration_max = \"P7D\"", "duration_max = \"P8D\"");
    put_rulebook(&h, clash)
        .await
        .expect_error(StatusCode::CONFLICT, "rulebook_conflict");
    h.send(
        Method::PUT,
        "/v1/admin/rulebook",
        Some(ADMIN),
        Some("application/json"),
        "{}",
    )
    .await
    .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    h.send(
        Method::PUT,
        "/v1/admin/rulebook",
        Some(COURT),
        Some("application/toml"),
        original,
    )
    .await
    .expect_error(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn every_token_reads_whom_it_stands_for_and_nothing_more() {
    let h = Harness::new().await;
    for (token, id, role) in [
        (ADMIN, "admin", "admin"),
        (COURT, "court", "provider"),
        (REVIEWER_1, "reviewer-1", "reviewer"),
        (AIRLINE, "airline", "agency"),
        (ALICE, "alice", "subject"),
        (AUDITOR, "auditor", "auditor"),
    ] {
        let me = h
            .get("/v1/me", Some(token))
            .await
            .expect(StatusCode::OK)
            .json();
        assert_eq!(
            (me["id"].as_str(), me["role"].as_str()),
            (Some(id), Some(role)),
            "{me}"
        );
        assert!(me.get("token_hash").is_none(), "{me}");
    }
    let me = h.get("/v1/me", Some(ALICE)).await.json();
    assert_eq!(me["scope"], alice().to_string());
    h.get("/v1/me", None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    h.get("/v1/me", Some("not-a-token"))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn the_operator_watches_the_dashboard_and_nobody_else_does() {
    let h = Harness::new().await;
    let before = h
        .get("/v1/admin/dashboard", Some(ADMIN))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(before["as_of"], TODAY);
    assert_eq!(before["rulebook"], "socred-default@2026.3");
    let records = before["store"]["records"].as_u64().unwrap();
    let pending = before["store"]["pending"].as_u64().unwrap();

    // One record in effect, one waiting for a second person, one refused.
    let unknown = json!({"provider": METRO_ID, "id": "x-1", "subject": alice().to_string(),
        "type": "no.such_type", "occurred_at": "2026-05-01", "decided_at": "2026-05-01", "fields": {}})
    .to_string();
    h.ingest(
        METRO,
        &[fare_evasion("fe-1", alice(), "2026-05-20"), unknown],
    )
    .await
    .expect(StatusCode::OK);
    h.ingest(COURT, &[judgment_default("jd-1", bob(), "2026-05-02")])
        .await
        .expect(StatusCode::OK);
    assert!(h.applies(RAIL, alice(), "no_rail_tickets").await);
    assert!(!h.applies(RAIL, bob(), "no_rail_tickets").await);
    h.get("/v1/admin/dashboard", Some(ALICE))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");

    let after = h
        .get("/v1/admin/dashboard", Some(ADMIN))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        after["store"]["records"].as_u64().unwrap(),
        records + 1,
        "{after}"
    );
    assert_eq!(
        after["store"]["pending"].as_u64().unwrap(),
        pending + 1,
        "{after}"
    );
    let since = &after["since_start"];
    assert_eq!(since["ingest"]["stored"].as_u64().unwrap(), 1, "{after}");
    assert_eq!(
        since["ingest"]["pending_review"].as_u64().unwrap(),
        1,
        "{after}"
    );
    assert_eq!(since["ingest"]["rejected"].as_u64().unwrap(), 1, "{after}");
    assert_eq!(
        since["decisions"],
        json!({"applies": 1, "does_not_apply": 1})
    );
    assert!(
        since["requests"]["refused"].as_u64().unwrap() >= 1,
        "{after}"
    );
    assert_eq!(since["requests"]["failed"], 0);
    assert_eq!(since["panics"], 0);
    let head = after["audit_head"]["seq"].as_u64().unwrap();
    assert_eq!(
        after["store"]["audit_entries"].as_u64().unwrap(),
        head,
        "{after}"
    );

    for token in [COURT, AIRLINE, REVIEWER_1, AUDITOR] {
        h.get("/v1/admin/dashboard", Some(token))
            .await
            .expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
    h.get("/v1/admin/dashboard", None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn a_token_issued_for_a_subject_is_in_that_subjects_access_log() {
    let h = Harness::new().await;
    let body = json!({"id": "alice-kiosk", "name": "Alice at the service hall", "role": "subject",
        "scope": alice().to_string()});
    h.post_json("/v1/admin/principals", Some(ADMIN), &body)
        .await
        .expect(StatusCode::CREATED);
    let provider = json!({"id": "bank", "name": "National bank", "role": "provider",
        "scope": "bank.national", "record_types": ["commercial.bank_arrears"]});
    h.post_json("/v1/admin/principals", Some(ADMIN), &provider)
        .await
        .expect(StatusCode::CREATED);
    let issued = h.logged(ALICE, alice(), "put_principal").await;
    assert_eq!(
        issued.len(),
        1,
        "only the token that opens her file: {issued:?}"
    );
    assert_eq!(issued[0]["actor"], "admin");
    assert!(
        issued[0]["detail"]
            .as_str()
            .unwrap()
            .contains("alice-kiosk"),
        "{}",
        issued[0]
    );
    // Revoking it is in her log too; revoking the bank's is not.
    for id in ["alice-kiosk", "bank"] {
        h.send(
            Method::DELETE,
            &format!("/v1/admin/principals/{id}"),
            Some(ADMIN),
            None,
            "",
        )
        .await
        .expect(StatusCode::OK);
    }
    let revoked: Vec<String> = h
        .logged(ALICE, alice(), "revoke")
        .await
        .iter()
        .map(|e| e["detail"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(revoked, ["revoked principal alice-kiosk"]);

    // A principal replaced by one for another subject, or another role,
    // takes its token with it: the subject it opened sees that too.
    let for_alice = json!({"id": "kiosk", "name": "Service hall", "role": "subject",
        "scope": alice().to_string()});
    h.post_json("/v1/admin/principals", Some(ADMIN), &for_alice)
        .await
        .expect(StatusCode::CREATED);
    let moved = json!({"id": "kiosk", "name": "Service hall", "role": "subject",
        "scope": bob().to_string()});
    h.post_json("/v1/admin/principals", Some(ADMIN), &moved)
        .await
        .expect(StatusCode::CREATED);
    let auditor = json!({"id": "kiosk", "name": "Service hall", "role": "auditor"});
    h.post_json("/v1/admin/principals", Some(ADMIN), &auditor)
        .await
        .expect(StatusCode::CREATED);
    let details = |entries: Vec<serde_json::Value>| -> Vec<String> {
        entries
            .iter()
            .map(|e| e["detail"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        details(h.logged(ALICE, alice(), "revoke").await),
        [
            "revoked principal alice-kiosk".to_string(),
            "revoked principal kiosk: replaced by one for another subject".to_string()
        ]
    );
    // Alice's log never names the person the principal now acts for.
    let log = h
        .get(&format!("/v1/subjects/{}/access-log", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK);
    assert!(!log.text.contains(bob().as_str()), "{}", log.text);
    assert_eq!(
        details(h.logged(BOB, bob(), "revoke").await),
        ["revoked principal kiosk: replaced by one for the role auditor"]
    );
    // Issued again for the same subject: a new token, logged as issued.
    h.post_json("/v1/admin/principals", Some(ADMIN), &moved)
        .await
        .expect(StatusCode::CREATED);
    h.post_json("/v1/admin/principals", Some(ADMIN), &moved)
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(h.logged(BOB, bob(), "revoke").await.len(), 1);
    assert_eq!(h.logged(BOB, bob(), "put_principal").await.len(), 3);
}

/// The operator erases records past their retention: only the admin may;
/// the old record leaves the subject's history (its file did not show it
/// already), a resent copy is refused, the subject's access log says what
/// went, and the audit chain still verifies. Each old record was sent
/// while it was still within its retention (the clock set back): one sent
/// once it is past is refused at the door.
#[tokio::test]
async fn the_admin_erases_records_past_their_retention() {
    let h = Harness::new().await;
    let on = |day: &str| h.clock.set_day(socred_core::Day::parse(day).unwrap());
    let old = fare_evasion("fe-2021", alice(), "2021-03-01");
    let recent = fare_evasion("fe-2026", alice(), "2026-03-01");
    let reply = h.ingest(METRO, &[&old]).await.expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["rejected"], "{}", reply.text);
    assert!(reply.text.contains("past_retention"), "{}", reply.text);
    on("2021-03-02");
    let reply = h.ingest(METRO, &[&old]).await.expect(StatusCode::OK);
    on(TODAY);
    let reply_recent = h.ingest(METRO, &[&recent]).await.expect(StatusCode::OK);
    assert_eq!(
        [Harness::statuses(&reply), Harness::statuses(&reply_recent)].concat(),
        ["stored", "stored"],
        "{} {}",
        reply.text,
        reply_recent.text
    );
    // A fare evasion of 2020 that the metro retracted: it goes with its
    // retraction, though no file ever showed it.
    let retracted = fare_evasion("fe-2020", carol(), "2020-01-10");
    let retraction = json!({"fact": "retracted", "provider": METRO_ID, "record": "fe-2020",
        "subject": carol().to_string(), "at": "2020-02-01"})
    .to_string();
    on("2020-02-01");
    let reply = h
        .ingest(METRO, &[&retracted, &retraction])
        .await
        .expect(StatusCode::OK);
    on(TODAY);
    // Alice has a retracted record too, within its retention: listed for
    // it, she is still looked at once.
    let also = fare_evasion("fe-2024", alice(), "2024-01-11");
    let also_retracted = json!({"fact": "retracted", "provider": METRO_ID, "record": "fe-2024",
        "subject": alice().to_string(), "at": "2024-02-01"})
    .to_string();
    let reply_also = h
        .ingest(METRO, &[&also, &also_retracted])
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        [Harness::statuses(&reply), Harness::statuses(&reply_also)].concat(),
        ["stored", "stored", "stored", "stored"],
        "{} {}",
        reply.text,
        reply_also.text
    );
    // A judgment of 2019 that a reviewer rejected: past the five years its
    // type is kept, it goes too.
    let rejected = judgment_default("j-2019", bob(), "2019-03-01");
    on("2019-03-02");
    let reply = h.ingest(COURT, &[&rejected]).await.expect(StatusCode::OK);
    assert_eq!(
        Harness::statuses(&reply),
        ["pending_review"],
        "{}",
        reply.text
    );
    h.post_json(
        "/v1/review/reject",
        Some(REVIEWER_1),
        &json!({"key": {"item": "record", "provider": COURT_ID, "id": "j-2019"}, "reason": "another person"}),
    )
    .await
    .expect(StatusCode::OK);
    on(TODAY);
    let file_before = h
        .get(&format!("/v1/subjects/{}", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK)
        .json();

    for token in [METRO, AUDITOR, ALICE] {
        h.post_json("/v1/admin/erasure", Some(token), &json!({}))
            .await
            .expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
    let run = h
        .post_json("/v1/admin/erasure", Some(ADMIN), &json!({}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(run["as_of"], TODAY);
    assert_eq!(
        (
            &run["subjects_examined"],
            &run["subjects"],
            &run["records"],
            &run["facts"],
            &run["rejected"],
            &run["held_back"]
        ),
        (
            &json!(3),
            &json!(3),
            &json!(2),
            &json!(1),
            &json!(1),
            &json!(0)
        ),
        "{run}"
    );
    // A resent copy is past its retention still.
    let reply = h.ingest(COURT, &[&rejected]).await.expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["rejected"], "{}", reply.text);
    assert!(reply.text.contains("past_retention"), "{}", reply.text);

    // The file as of today is what it was: the record had left it already.
    let file_after = h
        .get(&format!("/v1/subjects/{}", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK)
        .json();
    for key in ["score", "grade", "lists", "measures"] {
        assert_eq!(file_after[key], file_before[key], "{key}");
    }
    let explanation = h
        .get(
            &format!("/v1/subjects/{}/explanation", alice()),
            Some(ALICE),
        )
        .await
        .expect(StatusCode::OK);
    assert!(
        !explanation.text.contains("fe-2021"),
        "{}",
        explanation.text
    );

    let reply = h.ingest(METRO, &[&old]).await.expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["rejected"], "{}", reply.text);
    assert!(reply.text.contains("past_retention"), "{}", reply.text);

    let erased = h.logged(ALICE, alice(), "erase").await;
    assert_eq!(erased.len(), 1, "{erased:?}");
    assert_eq!(erased[0]["actor"], "admin");
    assert!(erased[0]["detail"].as_str().unwrap().contains("fe-2021"));
    let verified = h
        .get("/v1/audit/verify", Some(AUDITOR))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(verified["ok"], true, "{verified}");

    // Nothing more to erase today.
    let again = h
        .post_json("/v1/admin/erasure", Some(ADMIN), &json!({}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        (&again["records"], &again["rejected"]),
        (&json!(0), &json!(0))
    );

    // The operator sees both runs on the dashboard and in the metrics.
    let dashboard = h
        .get("/v1/admin/dashboard", Some(ADMIN))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        dashboard["since_start"]["erasure"],
        json!({"runs": 2, "records": 2, "facts": 1, "rejected": 1, "pending": 0, "held_back": 0})
    );
    let metrics = h.get("/metrics", Some(ADMIN)).await.expect(StatusCode::OK);
    for line in [
        "socred_erasure_runs_total 2",
        "socred_erased_total{kind=\"record\"} 2",
        "socred_erased_total{kind=\"rejected_record\"} 1",
    ] {
        assert!(metrics.text.contains(line), "{line} in {}", metrics.text);
    }
}

/// The operator asks what a draft rulebook would do before installing it:
/// the report counts who would leave the list and lose the measure, the
/// records the draft's catalog refuses are counted apart, nothing is
/// installed, the question is in the audit log, and only the operator may
/// ask.
#[tokio::test]
async fn the_operator_sees_a_drafts_impact_before_installing_it() {
    let h = Harness::new().await;
    h.ingest(
        METRO,
        &[
            fare_evasion("fe-1", alice(), "2026-05-20"),
            fare_evasion("fe-2", bob(), "2026-05-21"),
        ],
    )
    .await
    .expect(StatusCode::OK);
    assert!(h.applies(RAIL, alice(), "no_rail_tickets").await);
    // Fare evasion bans for 7 days only: both bans of May are over.
    let shorter = seven_day_bans(&rulebook_text(&h).await, "draft.1");
    let impact = |draft: String, query: &'static str, token: &'static str| {
        let h = &h;
        async move {
            h.send(
                Method::POST,
                &format!("/v1/admin/rulebook/impact{query}"),
                Some(token),
                Some("application/toml"),
                draft,
            )
            .await
        }
    };
    let report = impact(shorter.clone(), "?group_min=10", ADMIN)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(report["other"]["rulebook"], "socred-default@draft.1");
    assert_eq!(report["group_min"], 10);
    assert_eq!(report["subjects"], 2, "{report}");
    assert_eq!(report["base"]["lists"]["rail_ticket_ban"], 2, "{report}");
    assert_eq!(
        report["lists"]["rail_ticket_ban"],
        json!({"entered": 0, "left": 2}),
        "{report}"
    );
    assert_eq!(report["measures"]["no_rail_tickets"]["left"], 2, "{report}");
    assert_eq!(report["refused"], 0);
    // Nothing was installed.
    assert!(h.applies(RAIL, alice(), "no_rail_tickets").await);
    assert_ne!(
        h.get("/v1/rulebook", None).await.json()["label"],
        "socred-default@draft.1"
    );
    // With the default minimum the two subjects are one pooled group.
    let pooled = impact(shorter.clone(), "", ADMIN)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(pooled["group_min"], 10);
    assert_eq!(
        pooled["groups"]["kind"],
        json!({"other": {"subjects": 2, "changed": 2, "lowered": 0, "raised": 0,
                         "punished_before": 2, "punished_after": 0}}),
        "{pooled}"
    );
    // A draft whose catalog wants a train number refuses both records.
    let stricter = shorter.replace(
        "fields = { train_no = { type = \"text\" }, station",
        "fields = { train_no = { type = \"text\", required = true }, station",
    );
    assert_ne!(stricter, shorter);
    let strict = impact(stricter, "", ADMIN)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(strict["refused"], 2, "{strict}");
    assert_eq!(strict["lists"]["rail_ticket_ban"]["left"], 2, "{strict}");

    // The question is in the audit log.
    let audit = h.get("/v1/audit", Some(AUDITOR)).await.json();
    let asked = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "rulebook_impact")
        .count();
    assert_eq!(asked, 3, "{audit}");

    // Only the operator asks, with a valid rulebook, as TOML.
    for token in [COURT, AUDITOR, ALICE, RAIL, REVIEWER_1, METRO] {
        impact(shorter.clone(), "", token)
            .await
            .expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
    let broken = shorter.replace("duration_max = \"P7D\"", "duration_max = \"seven days\"");
    impact(broken, "", ADMIN)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_rulebook");
    // Groups small enough to single a person out are not asked for.
    for query in [
        "?group_min=-1",
        "?group_min=0",
        "?group_min=1",
        "?group_min=9",
    ] {
        impact(shorter.clone(), query, ADMIN)
            .await
            .expect_error(StatusCode::BAD_REQUEST, "invalid_query");
    }
    impact(shorter.clone(), "?bogus=1", ADMIN)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query");
    h.send(
        Method::POST,
        "/v1/admin/rulebook/impact",
        Some(ADMIN),
        Some("application/json"),
        "{}",
    )
    .await
    .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
}

/// A token issued with a last day works through that day, China time, and
/// is refused from the next with `token_expired`, naming the principal and
/// the day; replacing the principal issues a new one. A last day already
/// past, or not a date, is refused at issue.
#[tokio::test]
async fn a_token_works_until_its_last_day() {
    let h = Harness::new().await;
    let today = socred_core::Day::parse(TODAY).unwrap();
    let last = today.add_days(30);
    let body = json!({"id": "visiting-auditor", "name": "Visiting auditor", "role": "auditor",
        "valid_until": last.to_string()});
    let reply = issue(&h, &body).await;
    assert_eq!(reply["principal"]["valid_until"], last.to_string());
    let token = reply["token"].as_str().unwrap().to_string();
    let listed = h
        .get("/v1/admin/principals", Some(ADMIN))
        .await
        .expect(StatusCode::OK)
        .json();
    let visiting = listed["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "visiting-auditor")
        .cloned()
        .unwrap();
    assert_eq!(visiting["valid_until"], last.to_string());

    h.clock.set_day(last);
    h.get("/v1/audit", Some(&token))
        .await
        .expect(StatusCode::OK);
    h.clock.set_day(last.add_days(1));
    let reply = h
        .get("/v1/audit", Some(&token))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "token_expired");
    let message = reply.json()["error"]["message"].to_string();
    assert!(
        message.contains("visiting-auditor") && message.contains(&last.to_string()),
        "{message}"
    );
    // Tokens without a last day go on working.
    h.get("/v1/audit", Some(AUDITOR))
        .await
        .expect(StatusCode::OK);

    // Replaced without a last day: a new token that keeps working.
    let body = json!({"id": "visiting-auditor", "name": "Visiting auditor", "role": "auditor"});
    let reply = issue(&h, &body).await;
    assert!(reply["principal"].get("valid_until").is_none(), "{reply}");
    let token = reply["token"].as_str().unwrap().to_string();
    h.get("/v1/audit", Some(&token))
        .await
        .expect(StatusCode::OK);

    // Issued already past, or with a day that is no date.
    let today = last.add_days(1);
    for (valid_until, says) in [
        (today.add_days(-1).to_string(), "is before today"),
        ("2027-02-30".to_string(), "must be a date"),
        ("next year".to_string(), "must be a date"),
    ] {
        let body =
            json!({"id": "late", "name": "Late", "role": "auditor", "valid_until": valid_until});
        let reply = h
            .post_json("/v1/admin/principals", Some(ADMIN), &body)
            .await;
        let message = reply.json()["error"]["message"].to_string();
        reply.expect_error(StatusCode::BAD_REQUEST, "invalid_principal");
        assert!(message.contains(says), "{message}");
    }
    // The operator may not give its own token a last day: past it, no one
    // might be left to issue tokens.
    let own =
        json!({"id": "admin", "name": "Operator", "role": "admin", "valid_until": "2099-01-01"});
    h.post_json("/v1/admin/principals", Some(ADMIN), &own)
        .await
        .expect_error(StatusCode::CONFLICT, "cannot_expire_self");
    h.get("/v1/admin/principals", Some(ADMIN))
        .await
        .expect(StatusCode::OK);
    // Issued for today only: it works today.
    let body = json!({"id": "today", "name": "Today", "role": "auditor", "valid_until": today.to_string()});
    let reply = issue(&h, &body).await;
    let token = reply["token"].as_str().unwrap().to_string();
    h.get("/v1/audit", Some(&token))
        .await
        .expect(StatusCode::OK);
}

/// A rulebook that leaves out a record type the registry holds records of
/// is refused, naming the type: those records would drop out of their
/// files unseen and past any retention. Without such records it installs.
#[tokio::test]
async fn a_rulebook_may_not_drop_a_record_type_still_held() {
    let h = Harness::new().await;
    let original = rulebook_text(&h).await;
    let start = original
        .find("[[record_type]]\nid = \"market.administrative_penalty\"")
        .unwrap();
    let end = start + original[start..].find("\n# --- tax").unwrap();
    let without = seven_day_bans(&original, "test.4").replace(&original[start..end], "");
    assert!(!without.contains("id = \"market.administrative_penalty\""));

    h.ingest(COURT, &[admin_penalty("ap-1", acme(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let reply = put_rulebook(&h, without.clone())
        .await
        .expect_error(StatusCode::CONFLICT, "record_types_still_held");
    let message = reply.json()["error"]["message"].to_string();
    assert!(
        message.contains("`market.administrative_penalty` (1 record)"),
        "{message}"
    );
    assert_eq!(
        h.get("/v1/rulebook", None).await.json()["label"],
        "socred-default@2026.3",
        "nothing installed"
    );

    // Once the record is erased at the end of its retention, it may go.
    h.clock
        .set_day(socred_core::Day::parse("2031-06-01").unwrap());
    h.send(Method::POST, "/v1/admin/erasure", Some(ADMIN), None, "")
        .await
        .expect(StatusCode::OK);
    put_rulebook(&h, without).await.expect(StatusCode::OK);
    assert_eq!(
        h.get("/v1/rulebook", None).await.json()["label"],
        "socred-default@test.4"
    );
}

/// A rulebook that changes a record type's fields so that records the
/// registry holds (or their corrections) would be refused if sent now is
/// refused, naming the type, the counts and each problem by code and key,
/// never a record's values. A change that keeps them valid installs.
#[tokio::test]
async fn a_rulebook_may_not_invalidate_records_still_held() {
    let h = Harness::new().await;
    let original = rulebook_text(&h).await;
    let fields = "fields = { decision_no = { type = \"text\", required = true }, penalty_yuan = { type = \"number\", min = 0 } }";
    assert!(original.contains(fields));
    let with_fields = |version: &str, new: &str| {
        seven_day_bans(&original, version).replace(fields, &format!("fields = {{ {new} }}"))
    };
    h.ingest(COURT, &[admin_penalty("ap-1", acme(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let correction = json!({
        "fact": "corrected", "provider": COURT_ID, "record": "ap-1", "subject": acme().to_string(),
        "type": "market.administrative_penalty", "at": "2026-05-25",
        "fields": {"decision_no": "penalty ap-1 (corrected)", "penalty_yuan": 15000}
    });
    h.ingest(COURT, &[correction.to_string()])
        .await
        .expect(StatusCode::OK);

    // The amount becomes text: the record and its correction would be refused.
    let reply = put_rulebook(&h, with_fields(
        "test.5",
        "decision_no = { type = \"text\", required = true }, penalty_yuan = { type = \"text\" }",
    ))
    .await
    .expect_error(StatusCode::CONFLICT, "records_no_longer_valid");
    let message = reply.json()["error"]["message"].to_string();
    assert!(
        message.contains(
            "`market.administrative_penalty` (1 record and 1 correction: field_type at `fields.penalty_yuan`)"
        ),
        "{message}"
    );
    assert!(
        !message.contains("15000") && !message.contains("20000"),
        "{message}"
    );
    // A bound that the corrected amount (15,000 yuan) falls below.
    let message = put_rulebook(&h, with_fields(
        "test.5",
        "decision_no = { type = \"text\", required = true }, penalty_yuan = { type = \"number\", min = 16000 }",
    ))
    .await
    .expect_error(StatusCode::CONFLICT, "records_no_longer_valid")
    .json()["error"]["message"]
        .to_string();
    assert!(
        message.contains("(1 correction: out_of_range at `fields.penalty_yuan`)"),
        "{message}"
    );
    // A new required field, and a field dropped.
    let reply = put_rulebook(&h, with_fields(
        "test.5",
        "decision_no = { type = \"text\", required = true }, penalty_yuan = { type = \"number\" }, officer = { type = \"text\", required = true }",
    ))
    .await
    .expect_error(StatusCode::CONFLICT, "records_no_longer_valid");
    let message = reply.json()["error"]["message"].to_string();
    assert!(
        message.contains("missing_field at `fields.officer`"),
        "{message}"
    );
    put_rulebook(
        &h,
        with_fields(
            "test.5",
            "decision_no = { type = \"text\", required = true }",
        ),
    )
    .await
    .expect_error(StatusCode::CONFLICT, "records_no_longer_valid");
    assert_eq!(
        h.get("/v1/rulebook", None).await.json()["label"],
        "socred-default@2026.3",
        "nothing installed"
    );

    // Records waiting for review are held too.
    let reply = h
        .ingest(COURT, &[judgment_default("j-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        reply.json()["results"][0]["status"],
        "pending_review",
        "{reply:?}"
    );
    let trigger = original
        .lines()
        .find(|line| line.starts_with("trigger = "))
        .expect("the trigger field");
    assert_eq!(original.matches(trigger).count(), 1);
    let message = put_rulebook(
        &h,
        seven_day_bans(&original, "test.5")
            .replace(trigger, "trigger = { type = \"text\", required = true }"),
    )
    .await
    .expect_error(StatusCode::CONFLICT, "records_no_longer_valid")
    .json()["error"]["message"]
        .to_string();
    assert!(
        message
            .contains("`judicial.judgment_default` (1 record: missing_field at `fields.trigger`)"),
        "{message}"
    );

    // A new optional field keeps every held record valid.
    put_rulebook(&h, with_fields(
        "test.5",
        "decision_no = { type = \"text\", required = true }, penalty_yuan = { type = \"number\", min = 0 }, officer = { type = \"text\" }",
    ))
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        h.get("/v1/rulebook", None).await.json()["label"],
        "socred-default@test.5"
    );
}

/// The operator registers the principal `body`: the answer, with its token.
async fn issue(h: &Harness, body: &serde_json::Value) -> serde_json::Value {
    h.post_json("/v1/admin/principals", Some(ADMIN), body)
        .await
        .expect(StatusCode::CREATED)
        .json()
}

/// The operator uploads `text` as the rulebook.
/// Two servers on one store: a rulebook installed at one is refused to
/// the other's writes under the rulebook before (`rulebook_changed`,
/// nothing written), and that refusal makes the other server take the
/// rulebook in force before it answers (as its periodic look would within
/// seconds); the same request sent again is then taken, and its answers
/// are the new rulebook's.
#[tokio::test]
async fn a_server_follows_the_rulebook_another_installed() {
    let h = Harness::new().await;
    let other = Harness::over(h.store.clone(), socred_server::Limits::default()).await;
    assert_eq!(other.state.follow_rulebook().await.unwrap(), None);
    // The periodic look, called by hand: it takes an upload at the other.
    let look = Harness::over(h.store.clone(), socred_server::Limits::default()).await;
    let shorter = seven_day_bans(&rulebook_text(&h).await, "test.2");
    put_rulebook(&h, shorter).await.expect(StatusCode::OK);

    let line = fare_evasion("fe-1", alice(), "2026-05-20");
    assert_eq!(
        look.state.follow_rulebook().await.unwrap().as_deref(),
        Some("socred-default@test.2")
    );
    let reply = other
        .ingest(METRO, std::slice::from_ref(&line))
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, "rulebook_changed");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("socred-default@test.2"),
        "{}",
        reply.text
    );
    assert!(!h.applies(RAIL, alice(), "no_rail_tickets").await);
    assert_eq!(h.store.counts().await.unwrap().records, 0);

    assert_eq!(other.state.current().label, "socred-default@test.2");
    assert_eq!(other.state.follow_rulebook().await.unwrap(), None);
    assert_eq!(
        other.get("/v1/rulebook", None).await.json()["label"],
        "socred-default@test.2"
    );
    other.ingest(METRO, &[line]).await.expect(StatusCode::OK);
    // Seven days' ban, over by today at either server.
    assert!(!other.applies(RAIL, alice(), "no_rail_tickets").await);

    // An erasure run at a server behind, with a record past retention,
    // takes the rulebook in force first and then erases.
    let third = Harness::over(h.store.clone(), socred_server::Limits::default()).await;
    put_rulebook(&h, seven_day_bans(&rulebook_text(&h).await, "test.3"))
        .await
        .expect(StatusCode::OK);
    third
        .clock
        .set_day(socred_core::Day::parse("2032-01-01").unwrap());
    let run = third
        .post_json("/v1/admin/erasure", Some(ADMIN), &json!({}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(run["records"], 1, "{run}");
    assert_eq!(third.state.current().label, "socred-default@test.3");
    let report = socred_server::verify_store(h.store.as_ref()).await.unwrap();
    assert!(report.is_ok(), "{report}");
}

/// `rulebook` as version `version`, with train-ticket bans of 7 days
/// instead of 180.
fn seven_day_bans(rulebook: &str, version: &str) -> String {
    with_bans_of(rulebook, 7, version)
}

/// Two servers of one store, after Alice's fare evasion of 2026-05-20 (a
/// ban of 180 days under the default rulebook): the store, A and B.
async fn two_servers_with_a_ban() -> (std::sync::Arc<dyn socred_store::Store>, Harness, Harness) {
    let store: std::sync::Arc<dyn socred_store::Store> =
        std::sync::Arc::new(socred_store::MemoryStore::new());
    let a = Harness::over(store.clone(), socred_server::Limits::default()).await;
    a.ingest(METRO, &[fare_evasion("fe-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let b = Harness::over(store.clone(), socred_server::Limits::default()).await;
    (store, a, b)
}

/// A server stopped during its upload's recomputation leaves it noted in
/// the store; another server of the store, once it has taken the
/// rulebook, finishes it when it has made no progress for a while.
#[tokio::test]
async fn a_recomputation_left_by_a_stopped_server_is_finished_by_another() {
    let (store, a, b) = two_servers_with_a_ban().await;
    let (label, text) = thirty_day_bans(&a).await;
    // What A's upload commits before it recomputes; then A is gone.
    store
        .put_rulebook(label, &text, "admin", Vec::new())
        .await
        .unwrap();
    assert_eq!(
        b.state.follow_rulebook().await.unwrap().as_deref(),
        Some(label)
    );
    let mut seen = None;
    let hour = std::time::Duration::from_secs(3600);
    // The first look only notes it; one that finds no progress since
    // takes it over.
    assert_eq!(
        b.state
            .finish_stalled_recompute(&mut seen, hour)
            .await
            .unwrap(),
        0
    );
    assert!(store.unfinished_recompute().await.unwrap().is_some());
    let refolded = b
        .state
        .finish_stalled_recompute(&mut seen, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(refolded, 1);
    assert_eq!(store.unfinished_recompute().await.unwrap(), None);
    let file = b
        .get(&format!("/v1/subjects/{}", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(rail_ban_until(&file).as_str() <= "2026-06-19", "{file}");
    let report = socred_server::verify_store(store.as_ref()).await.unwrap();
    assert!(report.is_ok(), "{report}");
}

/// The rulebook a rail decision about Alice names, and the end of the
/// ban it rests on.
async fn decide(h: &Harness) -> (serde_json::Value, serde_json::Value) {
    let uri = ticket_sale(alice(), "no_rail_tickets");
    let decision = h.get(&uri, Some(RAIL)).await.expect(StatusCode::OK).json();
    let until = decision["reasons"][0]["grounds"][0]["until"].clone();
    (decision["rulebook"].clone(), until)
}

/// While the files are recomputed after an upload, each file is read with
/// the rulebook that folded it, and a decision names that rulebook: a
/// file not yet refolded is answered under the rulebook before, one
/// refolded under the new one, never one's answer under the other's name.
#[tokio::test]
async fn a_decision_names_the_rulebook_that_folded_the_file() {
    let (store, a, b) = two_servers_with_a_ban().await;
    let before = b.get("/v1/rulebook", None).await.json()["label"].clone();
    let (label, text) = thirty_day_bans(&a).await;
    // Stored, not yet recomputed, and taken by B: Alice's file is still
    // folded with the rulebook before, and is answered under it.
    store
        .put_rulebook(label, &text, "admin", Vec::new())
        .await
        .unwrap();
    b.state.follow_rulebook().await.unwrap();
    assert_eq!(b.get("/v1/rulebook", None).await.json()["label"], label);
    assert_eq!(decide(&b).await, (before.clone(), json!("2026-11-16")));
    // Recomputed: answered under the new one, with its 30-day ban.
    store
        .recompute_all(&b.state.current().engine)
        .await
        .unwrap();
    assert_eq!(decide(&b).await, (json!(label), json!("2026-06-19")));
    // A, which has not looked yet, takes the rulebook that folded the file
    // rather than answer it under the one before.
    assert_eq!(decide(&a).await, (json!(label), json!("2026-06-19")));
    assert_eq!(a.get("/v1/rulebook", None).await.json()["label"], label);
}

/// A retracted record is as if it never existed: it binds no rulebook, and
/// a draft's impact does not count it as refused.
#[tokio::test]
async fn a_retracted_record_binds_no_rulebook() {
    let h = Harness::new().await;
    h.ingest(COURT, &[admin_penalty("ap-9", acme(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let original = rulebook_text(&h).await;
    let unbounded = "penalty_yuan = { type = \"number\", min = 0 }";
    assert!(original.contains(unbounded));
    // The penalty was 20,000 yuan: a draft that allows at most 100 refuses it.
    let bounded = with_version(&original, "test.9").replace(
        unbounded,
        "penalty_yuan = { type = \"number\", min = 0, max = 100 }",
    );
    let refused = |text: String| {
        let send = h.send(
            Method::POST,
            "/v1/admin/rulebook/impact",
            Some(ADMIN),
            Some("application/toml"),
            text,
        );
        async move { send.await.expect(StatusCode::OK).json()["refused"].clone() }
    };
    assert_eq!(refused(bounded.clone()).await, 1);
    put_rulebook(&h, bounded.clone())
        .await
        .expect_error(StatusCode::CONFLICT, "records_no_longer_valid");

    let retraction = json!({"fact": "retracted", "provider": COURT_ID, "record": "ap-9",
        "subject": acme().to_string(), "at": "2026-05-25"});
    h.ingest(COURT, &[retraction.to_string()])
        .await
        .expect(StatusCode::OK);
    assert_eq!(refused(bounded.clone()).await, 0);
    put_rulebook(&h, bounded).await.expect(StatusCode::OK);
}
