//! Decisions for agencies: only their measures, the decision and its
//! reasons, never the file; refused queries leave nothing behind.

use axum::http::StatusCode;
use serde_json::json;
use socred_core::SubjectId;
use socred_server::Limits;
use socred_store::{hash_token, Role};

use crate::harness::*;

#[tokio::test]
async fn a_batch_answers_in_query_order_with_reasons() {
    let h = Harness::new().await;
    h.ingest(METRO, &[fare_evasion("fe-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let body = json!({"purpose": "ticket_sale", "queries": [
        {"subject": alice().to_string(), "measure": "no_rail_tickets"},
        {"subject": bob().to_string(), "measure": "no_rail_tickets"},
        {"subject": alice().to_string(), "measure": "no_g_train_or_emu_first_class"},
    ]});
    let reply = h
        .post_json("/v1/decisions", Some(RAIL), &body)
        .await
        .expect(StatusCode::OK);
    let json = reply.json();
    let decisions = json["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 3);
    let first = &decisions[0];
    assert_eq!(first["subject"], alice().to_string());
    assert_eq!(first["applies"], true);
    assert_eq!(first["as_of"], TODAY);
    assert!(first["rulebook"]
        .as_str()
        .unwrap()
        .starts_with("socred-default@"));
    assert_eq!(first["reasons"][0]["reason"], "applies");
    let ground = &first["reasons"][0]["grounds"][0];
    assert_eq!(ground["list"], "rail_ticket_ban");
    assert_eq!(
        ground["record"],
        json!({"provider": METRO_ID, "id": "fe-1"})
    );
    assert_eq!(decisions[1]["applies"], false);
    assert_eq!(decisions[1]["reasons"][0]["reason"], "no_condition_holds");
    assert_eq!(decisions[2]["measure"], "no_g_train_or_emu_first_class");
    assert_eq!(decisions[2]["applies"], false);
    // The decision, not the file.
    for key in ["records", "effects", "score", "list_entries"] {
        assert!(first.get(key).is_none(), "a decision carries `{key}`");
    }
    let metrics = h.get("/metrics", Some(ADMIN)).await.expect(StatusCode::OK);
    assert!(
        metrics
            .text
            .contains("socred_decisions_total{applies=\"true\"} 1"),
        "{}",
        metrics.text
    );
    assert!(metrics
        .text
        .contains("socred_decisions_total{applies=\"false\"} 2"));
}

#[tokio::test]
async fn an_agency_asks_only_about_the_measures_it_implements() {
    let h = Harness::new().await;
    let uri = ticket_sale(alice(), "no_rail_tickets");
    let reply = h
        .get(&uri, Some(AIRLINE))
        .await
        .expect_error(StatusCode::FORBIDDEN, "measure_not_allowed");
    assert!(reply.text.contains("airline"), "{}", reply.text);
    // One forbidden query refuses the whole batch, and nothing is logged about anyone.
    let body = json!({"purpose": "ticket_sale", "queries": [
        {"subject": alice().to_string(), "measure": "no_air_travel"},
        {"subject": bob().to_string(), "measure": "no_rail_tickets"},
    ]});
    h.post_json("/v1/decisions", Some(AIRLINE), &body)
        .await
        .expect_error(StatusCode::FORBIDDEN, "measure_not_allowed");
    let log = h
        .get(&format!("/v1/subjects/{}/access-log", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK);
    assert_eq!(log.json()["entries"].as_array().unwrap().len(), 0);
}

/// A measure that names its purposes is asked about for those only: any
/// other purpose is refused before anything is read or logged, for one
/// query or a whole batch. Measures that name none take any purpose.
#[tokio::test]
async fn an_agency_asks_only_for_the_purposes_a_measure_names() {
    let h = Harness::new().await;
    let text = h.get("/v1/rulebook", None).await.json()["text"]
        .as_str()
        .unwrap()
        .to_string();
    let version = text.lines().find(|l| l.starts_with("version = ")).unwrap();
    let (before, after) = text.split_once("id = \"no_air_travel\"").unwrap();
    let (measure, rest) = after.split_once("agencies = [\"airline\"]").unwrap();
    let limited = format!(
        "{before}id = \"no_air_travel\"{measure}agencies = [\"airline\"]\npurposes = [\"ticket_sale\", \"boarding_check\"]{rest}"
    )
    .replacen(version, "version = \"purposes.1\"", 1);
    h.send(
        axum::http::Method::PUT,
        "/v1/admin/rulebook",
        Some(ADMIN),
        Some("application/toml"),
        limited,
    )
    .await
    .expect(StatusCode::OK);
    let rulebook = h.get("/v1/rulebook", None).await.json();
    assert_eq!(rulebook["label"], "socred-default@purposes.1");

    let ask = |measure: &str, purpose: &str| {
        format!(
            "/v1/decisions?subject={}&measure={measure}&purpose={purpose}",
            alice()
        )
    };
    for purpose in ["ticket_sale", "boarding_check"] {
        h.get(&ask("no_air_travel", purpose), Some(AIRLINE))
            .await
            .expect(StatusCode::OK);
    }
    let reply = h
        .get(&ask("no_air_travel", "marketing"), Some(AIRLINE))
        .await
        .expect_error(StatusCode::FORBIDDEN, "purpose_not_allowed");
    let message = reply.json()["error"]["message"].to_string();
    assert!(
        message.contains("`ticket_sale` or `boarding_check`") && message.contains("marketing"),
        "{message}"
    );
    // A measure that names no purpose takes any.
    h.get(&ask("no_rail_tickets", "marketing"), Some(RAIL))
        .await
        .expect(StatusCode::OK);
    // One query for another purpose refuses the batch, and nothing is logged.
    let logged = || async {
        h.get(&format!("/v1/subjects/{}/access-log", bob()), Some(BOB))
            .await
            .expect(StatusCode::OK)
            .json()["entries"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = logged().await;
    let body = json!({"purpose": "marketing", "queries": [
        {"subject": bob().to_string(), "measure": "no_air_travel"},
    ]});
    h.post_json("/v1/decisions", Some(AIRLINE), &body)
        .await
        .expect_error(StatusCode::FORBIDDEN, "purpose_not_allowed");
    let after = logged().await;
    assert_eq!(before, after, "a refused question is no read of the file");
}

#[tokio::test]
async fn bad_decision_requests_are_4xx_with_codes() {
    let h = Harness::with_limits(Limits {
        queries_max: 2,
        ..Limits::default()
    })
    .await;
    let a = alice().to_string();
    let cases = [
        (
            json!({"purpose": "t", "queries": [{"subject": a, "measure": "no_such_measure"}]}),
            StatusCode::BAD_REQUEST,
            "unknown_measure",
        ),
        (
            json!({"purpose": "t", "queries": [{"subject": "12345", "measure": "no_air_travel"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_subject",
        ),
        (
            json!({"purpose": "", "queries": [{"subject": a, "measure": "no_air_travel"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_purpose",
        ),
        (
            json!({"queries": [{"subject": a, "measure": "no_air_travel"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"purpose": "t", "queries": [{"subject": a, "measure": "no_air_travel", "as_of": "2020-01-01"}]}),
            StatusCode::BAD_REQUEST,
            "unknown_field",
        ),
        (
            json!({"purpose": "t", "queries": "all"}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"purpose": "t", "queries": [{"subject": a, "measure": "no_air_travel"}, {"subject": a, "measure": "no_air_travel"}, {"subject": a, "measure": "no_air_travel"}]}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_queries",
        ),
    ];
    for (body, status, code) in cases {
        h.post_json("/v1/decisions", Some(AIRLINE), &body)
            .await
            .expect_error(status, code);
    }
    let reply = h
        .send(
            axum::http::Method::POST,
            "/v1/decisions",
            Some(AIRLINE),
            Some("application/json"),
            "{\"purpose\": \"t\",",
        )
        .await;
    reply.expect_error(StatusCode::BAD_REQUEST, "malformed_json");
    let reply = h
        .get("/v1/decisions?subject=x", Some(AIRLINE))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query");
    assert_eq!(
        reply.json()["error"]["message"],
        "the query string is not understood: missing field `measure`"
    );
    let uri = format!("/v1/decisions?subject={a}&measure=no_air_travel&purpose=t&extra=1");
    let reply = h
        .get(&uri, Some(AIRLINE))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query");
    let message = reply.json()["error"]["message"].to_string();
    assert!(
        message.contains("the query string is not understood: extra: unknown field `extra`"),
        "{message}"
    );
}

#[tokio::test]
async fn only_agencies_decide() {
    let h = Harness::new().await;
    let uri = format!(
        "/v1/decisions?subject={}&measure=no_air_travel&purpose=curiosity",
        alice()
    );
    h.get(&uri, None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    for token in [ADMIN, COURT, REVIEWER_1, ALICE, AUDITOR] {
        h.get(&uri, Some(token))
            .await
            .expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
    h.get(&uri, Some("not-a-real-token-at-all-000"))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "invalid_token");
    h.get(&uri, Some("x"))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "invalid_token");
    // The scheme's name in any case; another scheme is refused.
    for (scheme, status) in [
        ("BEARER", StatusCode::OK),
        ("bearer", StatusCode::OK),
        ("Basic", StatusCode::UNAUTHORIZED),
    ] {
        let request = axum::http::Request::get(&uri)
            .header("authorization", format!("{scheme} {AIRLINE}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = tower::ServiceExt::oneshot(h.app.clone(), request)
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{scheme}");
    }
    // A purpose that is not text once decoded is refused, not shown to the
    // subject as replacement characters.
    let bad = format!(
        "/v1/decisions?subject={}&measure=no_air_travel&purpose=%FF%FE",
        alice()
    );
    h.get(&bad, Some(AIRLINE))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query");
    let chinese = format!(
        "/v1/decisions?subject={}&measure=no_air_travel&purpose=%E5%94%AE%E7%A5%A8",
        alice()
    );
    h.get(&chinese, Some(AIRLINE)).await.expect(StatusCode::OK);
    // A body that is an array is not taken for the object it should be.
    let queries = json!(["ticket_sale", [[alice().to_string(), "no_air_travel"]]]);
    h.post_json("/v1/decisions", Some(AIRLINE), &queries)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body");
}

/// A reward that rests on a grade names the grade among its grounds, never
/// the score behind it: the score is part of the file, which only its
/// subject reads.
#[tokio::test]
async fn an_agency_learns_a_grade_but_not_the_score() {
    let h = Harness::new().await;
    let dora = SubjectId::person(320102, 1975, 8, 9, 21).unwrap();
    make_exemplary(&h, &[dora]).await;
    let security = principal(
        "airport-security",
        Role::Agency,
        Some("airport_security"),
        &[],
    );
    h.store
        .put_principal(
            &security,
            &hash_token("token-airport-security-0000"),
            Vec::new(),
        )
        .await
        .unwrap();
    // The express security lane, as airport security asks about it.
    let lane = |subject: SubjectId| {
        let h = &h;
        async move {
            let uri = format!(
                "/v1/decisions?subject={subject}&measure=express_security_lane&purpose=boarding"
            );
            h.get(&uri, Some("token-airport-security-0000"))
                .await
                .expect(StatusCode::OK)
                .json()
        }
    };
    let decision = lane(dora).await;
    assert_eq!(decision["applies"], true, "{decision}");
    let ground = &decision["reasons"][0]["grounds"][0];
    assert_eq!(ground["ground"], "grade", "{decision}");
    assert_eq!(ground["grade"], "AAA", "{decision}");
    assert!(ground.get("score").is_none(), "{decision}");
    // Dora's own file has the score.
    let file = h
        .get(
            &format!("/v1/subjects/{dora}"),
            Some(&format!("token-subject-{dora}")),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(file["score"].as_i64().is_some(), "{file}");
    // Of a person who has not consented to scoring, the agency learns only
    // that no condition holds: whether a person consents is theirs to tell.
    let erin = SubjectId::person(320102, 1980, 2, 3, 31).unwrap();
    h.ingest(METRO, &[fare_evasion("fe-e", erin, "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let decision = lane(erin).await;
    assert_eq!(decision["applies"], false, "{decision}");
    assert_eq!(
        decision["reasons"],
        json!([{"reason": "no_condition_holds"}]),
        "{decision}"
    );
}

/// While the files are recomputed after an upload that adds a measure, a
/// file already refolded (or new) is decided under the new rulebook; one
/// not yet refolded is asked about again in a moment (`503
/// rulebook_changing`), never told that the measure does not exist.
#[tokio::test]
async fn a_measure_an_upload_adds_is_decided_while_the_files_are_recomputed() {
    let h = Harness::new().await;
    h.ingest(METRO, &[fare_evasion("fe-1", alice(), "2026-05-20")])
        .await
        .expect(StatusCode::OK);
    let text = with_version(&rulebook_text(&h).await, "2026.3-x")
        + "\n[[measure]]\nid = \"no_rail_tickets_x\"\ntitle = \"No train tickets, again\"\n\
         kind = \"punishment\"\nlegal_basis = \"the same as no_rail_tickets\"\n\
         agencies = [\"rail\"]\nsubject_kinds = [\"person\"]\n[[measure.applies]]\n\
         id = \"rail_ban\"\nlists = [\"rail_ticket_ban\"]\n";
    let label = "socred-default@2026.3-x";
    // Stored and in force, no file recomputed yet.
    h.store
        .put_rulebook(label, &text, "admin", Vec::new())
        .await
        .unwrap();
    h.state.follow_rulebook().await.unwrap();
    let ask = |subject: SubjectId| {
        format!("/v1/decisions?subject={subject}&measure=no_rail_tickets_x&purpose=ticket_sale")
    };
    // Alice's file is still folded with the rulebook before, which lacks
    // the measure: ask again in a moment.
    h.get(&ask(alice()), Some(RAIL))
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, "rulebook_changing");
    // Bob has no file: decided under the rulebook in force.
    let decision = h
        .get(&ask(bob()), Some(RAIL))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(decision["rulebook"], label, "{decision}");
    assert_eq!(decision["applies"], false, "{decision}");
    // Alice's file recomputed: decided under the new rulebook.
    h.store
        .recompute_all(&h.state.current().engine)
        .await
        .unwrap();
    let decision = h
        .get(&ask(alice()), Some(RAIL))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(decision["rulebook"], label, "{decision}");
    assert_eq!(decision["applies"], true, "{decision}");
}
