//! `POST /v1/records`: formats, per-item results, idempotency, and what a
//! provider may send.

use axum::http::{Method, StatusCode};
use serde_json::json;
use socred_server::Limits;

use crate::harness::*;

/// Posts `body` to `uri` as the metro provider; the answer must be 200.
async fn post_records(
    h: &Harness,
    uri: &str,
    media_type: &str,
    body: impl Into<axum::body::Body>,
) -> serde_json::Value {
    h.send(Method::POST, uri, Some(METRO), Some(media_type), body)
        .await
        .expect(StatusCode::OK)
        .json()
}

/// (index, status, code) of every result of an ingest answer.
fn seen(json: &serde_json::Value) -> Vec<(u64, &str, &str)> {
    json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["status"].as_str().unwrap(),
                r["code"].as_str().unwrap_or(""),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_replay_says_duplicate_and_other_content_under_the_same_key_is_a_conflict() {
    let h = Harness::new().await;
    let line = fare_evasion("fe-1", alice(), "2026-05-20");
    let reply = h.ingest(METRO, &[&line]).await.expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["stored"]);
    assert_eq!(reply.json()["counts"]["stored"], 1);

    let reply = h.ingest(METRO, &[line]).await.expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["duplicate"]);

    let changed = fare_evasion("fe-1", alice(), "2026-05-21");
    let reply = h.ingest(METRO, &[changed]).await.expect(StatusCode::OK);
    let result = &reply.json()["results"][0];
    assert_eq!(result["status"], "conflict");
    assert!(
        result["message"].as_str().unwrap().contains("fe-1"),
        "{result}"
    );
    assert!(h.applies(RAIL, alice(), "no_rail_tickets").await);
}

#[tokio::test]
async fn every_item_gets_a_result_and_bad_ones_are_reported_with_their_index() {
    let h = Harness::new().await;
    let good = fare_evasion("fe-1", alice(), "2026-05-20");
    let bad_subject = fare_evasion("fe-2", alice(), "2026-05-20")
        .replace(&alice().to_string(), "11010519850714123Y");
    let unknown_type = fare_evasion("fe-3", bob(), "2026-05-20")
        .replace("transport.fare_evasion", "transport.jaywalking");
    let unknown_key = fare_evasion("fe-4", bob(), "2026-05-20")
        .replace("\"fields\"", "\"severity\": \"high\", \"fields\"");

    // NDJSON: the index is the 1-based line number; blank lines count.
    let body = [
        good.clone(),
        String::new(),
        bad_subject.clone(),
        "{not json".into(),
        unknown_type.clone(),
    ]
    .join("\n");
    let json = post_records(&h, "/v1/records", "application/x-ndjson", body).await;
    let results = json["results"].as_array().unwrap();
    assert_eq!(
        seen(&json),
        [
            (1, "stored", ""),
            (3, "rejected", "invalid_subject"),
            (4, "rejected", "malformed_json"),
            (5, "rejected", "unknown_record_type")
        ]
    );
    assert_eq!(results[1]["field"], "subject");
    assert_eq!(json["counts"]["rejected"], 3);

    // JSON array: the index is 0-based.
    let body = format!("[{good},{unknown_key},{bad_subject}]");
    let json = post_records(&h, "/v1/records", "application/json", body).await;
    assert_eq!(
        seen(&json),
        [
            (0, "duplicate", ""),
            (1, "rejected", "unknown_key"),
            (2, "rejected", "invalid_subject")
        ]
    );

    // A byte-order mark before the array is read past, as before a line.
    let body = format!("\u{feff}[{good}]");
    let json = post_records(&h, "/v1/records", "application/json", body).await;
    assert_eq!(seen(&json), [(0, "duplicate", "")]);

    // `report=problems` leaves out what went in.
    let body = format!("[{good},{unknown_key}]");
    let json = post_records(&h, "/v1/records?report=problems", "application/json", body).await;
    assert_eq!(json["results"].as_array().unwrap().len(), 1);
    assert_eq!(json["counts"]["duplicate"], 1);
}

#[tokio::test]
async fn csv_records_get_a_result_per_row_by_line_number() {
    let h = Harness::new().await;
    let body = format!(
        "provider,id,subject,type,occurred_at,decided_at,fields.station\r\n\
         {METRO_ID},fe-1,{alice},transport.fare_evasion,2026-05-20,2026-05-20,\"People's Square \"\"Line 2\"\"\"\r\n\
         {METRO_ID},fe-2,11010519850714123Y,transport.fare_evasion,2026-05-20,2026-05-20,Xujiahui\r\n\
         {METRO_ID},fe-3,{bob},transport.fare_evasion,2026-05-20\r\n\
         court.beijing-1,fe-4,{bob},transport.fare_evasion,2026-05-20,2026-05-20,Xujiahui\r\n",
        alice = alice(),
        bob = bob(),
    );
    let json = post_records(&h, "/v1/records", "text/csv; charset=utf-8", body).await;
    // The header is line 1; the good row went in beside the bad ones.
    assert_eq!(
        seen(&json),
        [
            (2, "stored", ""),
            (3, "rejected", "invalid_subject"),
            (4, "rejected", "malformed_csv"),
            (5, "rejected", "provider_mismatch"),
        ]
    );
    assert!(h.applies(RAIL, alice(), "no_rail_tickets").await);

    // A header naming a column no record type has rejects line 1 alone.
    let reply = h
        .send(
            Method::POST,
            "/v1/records",
            Some(METRO),
            Some("text/csv"),
            format!("provider,id,subject,type,occurred_at,decided_at,fields.colour\n{METRO_ID},fe-9,{},transport.fare_evasion,2026-05-20,2026-05-20,red\n", bob()),
        )
        .await
        .expect(StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["results"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(json["results"][0]["index"], 1);
    assert_eq!(json["results"][0]["status"], "rejected");
    assert!(!h.applies(RAIL, bob(), "no_rail_tickets").await);
}

#[tokio::test]
async fn a_body_that_is_not_json_at_all_is_a_400() {
    let h = Harness::new().await;
    let reply = h
        .send(
            Method::POST,
            "/v1/records",
            Some(METRO),
            Some("application/json"),
            "[{\"provider\": ",
        )
        .await;
    reply.expect_error(StatusCode::BAD_REQUEST, "malformed_json");
    let reply = h
        .send(
            Method::POST,
            "/v1/records",
            Some(METRO),
            Some("application/json"),
            "42",
        )
        .await;
    reply.expect_error(StatusCode::BAD_REQUEST, "malformed_json");
    let reply = h
        .send(
            Method::POST,
            "/v1/records",
            Some(METRO),
            Some("application/json"),
            vec![b'[', 0xff, b']'],
        )
        .await;
    reply.expect_error(StatusCode::BAD_REQUEST, "malformed_json");
    // One object that is not JSON, or two, are refused whole as well.
    for body in ["{bad", "{} {}"] {
        h.send(
            Method::POST,
            "/v1/records",
            Some(METRO),
            Some("application/json"),
            body,
        )
        .await
        .expect_error(StatusCode::BAD_REQUEST, "malformed_json");
    }
}

/// A line of NDJSON or a row of CSV that is not UTF-8 is rejected alone,
/// as in a file, and the good ones beside it are stored.
#[tokio::test]
async fn bytes_that_are_not_utf8_reject_their_line_alone() {
    let h = Harness::new().await;
    let mut body = fare_evasion("fe-1", alice(), "2026-05-20").into_bytes();
    body.extend_from_slice(b"\n{\"provider\": \"\xff\xfe\"}\n");
    body.extend_from_slice(fare_evasion("fe-2", bob(), "2026-05-20").as_bytes());
    let json = post_records(&h, "/v1/records", "application/x-ndjson", body).await;
    assert_eq!(
        seen(&json),
        [
            (1, "stored", ""),
            (2, "rejected", "malformed_json"),
            (3, "stored", "")
        ]
    );

    let mut body = format!(
        "provider,id,subject,type,occurred_at,decided_at,fields.station\n\
         \n\
         {METRO_ID},fe-3,{alice},transport.fare_evasion,2026-05-21,2026-05-21,A",
        alice = alice()
    )
    .into_bytes();
    body.extend_from_slice(b"\xff\n\n\n");
    body.extend_from_slice(
        format!(
            "{METRO_ID},fe-4,{},transport.fare_evasion,2026-05-21,2026-05-21,B\n",
            bob()
        )
        .as_bytes(),
    );
    let json = post_records(&h, "/v1/records", "text/csv", body).await;
    // Physical lines: the blank ones count.
    assert_eq!(
        seen(&json),
        [(3, "rejected", "malformed_csv"), (6, "stored", "")]
    );
}

#[tokio::test]
async fn nothing_a_provider_sends_becomes_an_interned_name() {
    // Interned names are never freed (socred_core::Name): a provider that
    // sends new provider names, types, ids or field values, refused or
    // stored, must not grow them.
    let h = Harness::new().await;
    let provider = "unheard.of.provider-7c1e";
    let record_type = "transport.no_such_type-7c1e";
    let stored = fare_evasion("fe-7c1e", alice(), "2026-05-20").replace("Xujiahui", "Station-7c1e");
    let lines = [
        fare_evasion("fe-1", alice(), "2026-05-20").replace(METRO_ID, provider),
        fare_evasion("fe-2", alice(), "2026-05-20").replace("transport.fare_evasion", record_type),
        stored,
    ];
    let reply = h.ingest(METRO, &lines).await.expect(StatusCode::OK);
    assert_eq!(
        seen(&reply.json()),
        [
            (1, "rejected", "provider_mismatch"),
            (2, "rejected", "unknown_record_type"),
            (3, "stored", ""),
        ]
    );
    // The stored record is folded and read back as the subject's file.
    let file = h
        .get(&format!("/v1/subjects/{}", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(file.to_string().contains("Station-7c1e"), "{file}");
    for text in [provider, record_type, METRO_ID, "fe-7c1e", "Station-7c1e"] {
        assert!(
            !socred_core::Name::is_interned(text),
            "`{text}` was interned"
        );
    }
    assert!(socred_core::Name::is_interned("transport.fare_evasion"));
}

#[tokio::test]
async fn a_provider_sends_only_its_registered_types_under_its_own_name() {
    let h = Harness::new().await;
    // The metro is not registered for judgment defaults …
    let other_type = judgment_default("j-1", alice(), "2026-05-20").replace(COURT_ID, METRO_ID);
    // … and may not send records in the court's name.
    let other_name = fare_evasion("fe-1", alice(), "2026-05-20").replace(METRO_ID, COURT_ID);
    let reply = h
        .ingest(METRO, &[other_type, other_name])
        .await
        .expect(StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["results"][0]["code"], "record_type_not_allowed");
    assert_eq!(json["results"][0]["field"], "type");
    assert_eq!(json["results"][1]["code"], "provider_mismatch");
    assert_eq!(json["counts"]["rejected"], 2);
    assert_eq!(h.store.counts().await.unwrap().records, 0);
}

#[tokio::test]
async fn a_provider_retracts_only_its_own_records() {
    let h = Harness::new().await;
    h.ingest(METRO, &[fare_evasion("fe-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    assert!(h.applies(RAIL, alice(), "no_rail_tickets").await);
    let retraction = json!({"fact": "retracted", "provider": METRO_ID, "record": "fe-1",
        "subject": alice().to_string(), "at": "2026-05-25"})
    .to_string();

    // The court names the metro's record: refused, whatever `by` says.
    let reply = h.ingest(COURT, &[&retraction]).await.expect(StatusCode::OK);
    assert_eq!(reply.json()["results"][0]["code"], "not_own_record");
    let spoofed = json!({"fact": "retracted", "provider": METRO_ID, "record": "fe-1",
        "subject": alice().to_string(), "at": "2026-05-25", "by": "court.beijing-1"})
    .to_string();
    let reply = h.ingest(COURT, &[spoofed]).await.expect(StatusCode::OK);
    assert_eq!(reply.json()["results"][0]["code"], "not_own_record");
    assert!(h.applies(RAIL, alice(), "no_rail_tickets").await);

    // Facts that are not the provider's to send.
    let repair = json!({"fact": "repaired", "provider": METRO_ID, "record": "fe-1",
        "subject": alice().to_string(), "at": "2026-05-25"})
    .to_string();
    let reply = h.ingest(METRO, &[repair]).await.expect(StatusCode::OK);
    assert_eq!(reply.json()["results"][0]["code"], "fact_not_allowed");

    // A fact about a record that does not exist.
    let unknown = retraction.replace("fe-1", "fe-404");
    let reply = h.ingest(METRO, &[unknown]).await.expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["unknown_record"]);

    let reply = h.ingest(METRO, &[retraction]).await.expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["stored"]);
    assert!(!h.applies(RAIL, alice(), "no_rail_tickets").await);
}

/// The metro's correction of Alice's record `fe-1` on day `at`, with the
/// keys of `extra` (new dates) added.
fn corrected_fe1(at: &str, extra: serde_json::Value) -> String {
    let mut fact = json!({"fact": "corrected", "provider": METRO_ID, "record": "fe-1",
        "subject": alice().to_string(), "at": at, "type": "transport.fare_evasion",
        "fields": {"station": "Hongqiao"}});
    if let (Some(fact), Some(extra)) = (fact.as_object_mut(), extra.as_object()) {
        fact.extend(extra.clone());
    }
    fact.to_string()
}

/// A record decided, or a fact reported, after the registry's day is
/// refused: stored, it would wait unseen in its subject's file until that
/// day. Today itself is fine, and the rest of the request is stored.
#[tokio::test]
async fn nothing_dated_after_the_registrys_day_is_stored() {
    let h = Harness::new().await;
    let tomorrow = "2026-06-02";
    assert!(TODAY < tomorrow);
    let late_record = fare_evasion("fe-late", alice(), tomorrow);
    let reply = h
        .ingest(METRO, &[late_record, fare_evasion("fe-1", alice(), TODAY)])
        .await
        .expect(StatusCode::OK);
    let json = reply.json();
    assert_eq!(
        seen(&json),
        [(1, "rejected", "dated_in_future"), (2, "stored", "")]
    );
    let message = json["results"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(tomorrow) && message.contains(TODAY),
        "names the day and today: {message}"
    );
    assert_eq!(json["results"][0]["field"], "decided_at");

    let fact = corrected_fe1;
    let reply = h
        .ingest(
            METRO,
            &[
                fact(tomorrow, json!({})),
                fact(TODAY, json!({"decided_at": tomorrow, "occurred_at": TODAY})),
            ],
        )
        .await
        .expect(StatusCode::OK);
    let json = reply.json();
    assert_eq!(
        seen(&json),
        [
            (1, "rejected", "dated_in_future"),
            (2, "rejected", "dated_in_future")
        ]
    );
    assert_eq!(json["results"][0]["field"], "at");
    assert_eq!(json["results"][1]["field"], "decided_at");
    let counts = h.store.counts().await.unwrap();
    assert_eq!((counts.records, counts.facts), (1, 0));

    // The same day passes once the registry's day has come.
    h.clock.set_day(socred_core::Day::parse(tomorrow).unwrap());
    let reply = h
        .ingest(METRO, &[fare_evasion("fe-late", alice(), tomorrow)])
        .await
        .expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["stored"]);
}

/// A correction may not give a record dates it may not have: decided so
/// long ago that its retention has ended, or, changing one date alone,
/// decided before its conduct occurred.
#[tokio::test]
async fn a_correction_keeps_a_records_dates_possible() {
    let h = Harness::new().await;
    h.ingest(METRO, &[fare_evasion("fe-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let correction = |dates: serde_json::Value| corrected_fe1(TODAY, dates);
    let reply = h
        .ingest(
            METRO,
            &[
                correction(json!({"occurred_at": "2019-12-01", "decided_at": "2020-01-01"})),
                correction(json!({"decided_at": "2026-05-01"})),
                correction(json!({"occurred_at": "2026-05-25"})),
            ],
        )
        .await
        .expect(StatusCode::OK);
    let json = reply.json();
    assert_eq!(
        seen(&json),
        [
            (1, "rejected", "past_retention"),
            (2, "rejected", "dates_out_of_order"),
            (3, "rejected", "dates_out_of_order"),
        ]
    );
    let fields: Vec<&str> = (0..3)
        .map(|i| json["results"][i]["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["decided_at", "decided_at", "occurred_at"]);
    let message = json["results"][1]["message"].as_str().unwrap();
    assert!(
        message.contains("2026-05-20") && message.contains("2026-05-01"),
        "names both dates: {message}"
    );
    assert_eq!(h.store.counts().await.unwrap().facts, 0);

    // A later decision day alone is possible.
    let reply = h
        .ingest(METRO, &[correction(json!({"decided_at": "2026-05-25"}))])
        .await
        .expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["stored"]);
}

#[tokio::test]
async fn only_providers_and_reviewers_ingest() {
    let h = Harness::new().await;
    let line = fare_evasion("fe-1", alice(), "2026-05-20");
    h.send(
        Method::POST,
        "/v1/records",
        None,
        Some("application/x-ndjson"),
        line.clone(),
    )
    .await
    .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    for token in [ADMIN, RAIL, ALICE, AUDITOR] {
        h.send(
            Method::POST,
            "/v1/records",
            Some(token),
            Some("application/x-ndjson"),
            line.clone(),
        )
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
    // A reviewer sends decisions on objections and repairs, not records.
    let reply = h.ingest(REVIEWER_1, &[line]).await.expect(StatusCode::OK);
    assert_eq!(reply.json()["results"][0]["code"], "record_not_allowed");
}

#[tokio::test]
async fn an_oversized_body_is_413_and_an_unknown_media_type_415() {
    let limits = Limits {
        ingest_body_bytes_max: 2048,
        body_bytes_max: 512,
        ..Limits::default()
    };
    let h = Harness::with_limits(limits).await;
    let lines: Vec<String> = (0..20)
        .map(|i| fare_evasion(&format!("fe-{i}"), alice(), "2026-05-20"))
        .collect();
    h.ingest(METRO, &lines)
        .await
        .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    h.ingest(METRO, &lines[..2]).await.expect(StatusCode::OK);
    // Other endpoints have their own, smaller limit.
    let queries: Vec<_> = (0..40)
        .map(|_| json!({"subject": alice().to_string(), "measure": "no_air_travel"}))
        .collect();
    h.post_json(
        "/v1/decisions",
        Some(AIRLINE),
        &json!({"purpose": "ticket_sale", "queries": queries}),
    )
    .await
    .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");

    h.send(
        Method::POST,
        "/v1/records",
        Some(METRO),
        Some("text/plain"),
        "provider,id\n",
    )
    .await
    .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    h.send(Method::POST, "/v1/records", Some(METRO), None, "{}")
        .await
        .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
}

#[tokio::test]
async fn ingest_is_counted_in_the_metrics() {
    let h = Harness::new().await;
    h.ingest(
        METRO,
        &[fare_evasion("fe-1", alice(), "2026-05-20"), "{}".into()],
    )
    .await
    .expect(StatusCode::OK);
    let metrics = h.get("/metrics", Some(ADMIN)).await.expect(StatusCode::OK);
    assert!(metrics.content_type.starts_with("text/plain"));
    assert!(
        metrics
            .text
            .contains("socred_ingest_items_total{status=\"stored\"} 1"),
        "{}",
        metrics.text
    );
    assert!(metrics
        .text
        .contains("socred_ingest_items_total{status=\"rejected\"} 1"));
    assert!(metrics.text.contains(
        "socred_http_requests_total{route=\"/v1/records\",method=\"POST\",status=\"200\"} 1"
    ));
    assert!(metrics
        .text
        .contains("socred_http_request_duration_seconds_count{route=\"/v1/records\"} 1"));
    assert!(metrics.text.contains("socred_records 1"));
    h.get("/metrics", Some(AUDITOR))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    h.get("/metrics", None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
}

/// A provider retracts or corrects only records of the types it is
/// registered for, as it sends only those: a token of the same court
/// registered for fulfilment notices alone may not lift a judgment
/// default. A retraction stored is logged where the subject sees it.
#[tokio::test]
async fn a_provider_retracts_and_corrects_only_types_it_is_registered_for() {
    let h = Harness::new().await;
    h.ingest(COURT, &[admin_penalty("pen-1", acme(), "2026-04-10")])
        .await
        .expect(StatusCode::OK);
    let narrow = json!({"id": "court-clerk", "name": "Clerk", "role": "provider",
        "scope": COURT_ID, "record_types": ["judicial.judgment_fulfilled"]});
    let issued = h
        .post_json("/v1/admin/principals", Some(ADMIN), &narrow)
        .await
        .expect(StatusCode::CREATED)
        .json();
    let clerk = issued["token"].as_str().unwrap().to_string();
    let retraction = json!({"fact": "retracted", "provider": COURT_ID, "record": "pen-1",
        "subject": acme().to_string(), "at": TODAY, "by": COURT_ID})
    .to_string();
    let correction = json!({"fact": "corrected", "provider": COURT_ID, "record": "pen-1",
        "subject": acme().to_string(), "at": TODAY, "by": COURT_ID,
        "type": "market.administrative_penalty",
        "fields": {"decision_no": "penalty pen-1", "penalty_yuan": 1}})
    .to_string();
    let reply = h
        .ingest(&clerk, &[retraction.clone(), correction])
        .await
        .expect(StatusCode::OK);
    let results = reply.json()["results"].clone();
    for result in results.as_array().unwrap() {
        assert_eq!(result["code"], "record_type_not_allowed", "{results}");
        assert!(
            result["message"]
                .as_str()
                .unwrap()
                .contains("market.administrative_penalty"),
            "{results}"
        );
    }
    // The court's own token, registered for penalties, retracts it; the
    // company finds the retraction in its access log.
    let reply = h.ingest(COURT, &[retraction]).await.expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["stored"]);
    let company = json!({"id": "acme", "name": "Acme", "role": "subject",
        "scope": acme().to_string()});
    let issued = h
        .post_json("/v1/admin/principals", Some(ADMIN), &company)
        .await
        .expect(StatusCode::CREATED)
        .json();
    let logged = h
        .logged(issued["token"].as_str().unwrap(), acme(), "retract")
        .await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(
        logged[0]["detail"],
        format!("retraction of record {COURT_ID}/pen-1 sent by its provider")
    );
}
