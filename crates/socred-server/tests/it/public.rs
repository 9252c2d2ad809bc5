//! What anyone may see: the rulebook, public lists inside their window, a
//! company's public information, and never a person's file.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use axum::http::StatusCode;
use serde_json::json;
use socred_core::SubjectId;
use socred_server::{AppState, Limits};
use socred_store::Store;

use crate::harness::*;

#[tokio::test]
async fn the_rulebook_is_public() {
    let h = Harness::new().await;
    let reply = h
        .get("/v1/rulebook", None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(reply["label"]
        .as_str()
        .unwrap()
        .starts_with("socred-default@"));
    assert!(reply["text"].as_str().unwrap().contains("[[measure]]"));
}

#[tokio::test]
async fn only_public_lists_are_listed_and_paged() {
    let h = Harness::new().await;
    let lists = h
        .get("/v1/public/lists", None)
        .await
        .expect(StatusCode::OK)
        .json();
    let ids: Vec<&str> = lists["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"judgment_defaulters") && ids.contains(&"rail_ticket_ban"),
        "{ids:?}"
    );
    assert!(
        !ids.contains(&"tax_grade_d"),
        "a list that is not public is listed: {ids:?}"
    );
    h.get("/v1/public/lists/tax_grade_d", None)
        .await
        .expect_error(StatusCode::NOT_FOUND, "unknown_list");
    h.get("/v1/public/lists/nope", None)
        .await
        .expect_error(StatusCode::NOT_FOUND, "unknown_list");

    // Three current entries, and one whose 180 days are over.
    let lines = [
        fare_evasion("fe-1", alice(), "2026-05-20"),
        fare_evasion("fe-2", bob(), "2026-05-21"),
        fare_evasion("fe-3", carol(), "2026-05-22"),
        fare_evasion("fe-old", SubjectIdExt::dave(), "2025-10-01"),
    ];
    h.ingest(METRO, &lines).await.expect(StatusCode::OK);
    let page = h
        .get("/v1/public/lists/rail_ticket_ban?limit=2", None)
        .await
        .expect(StatusCode::OK)
        .json();
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(page["as_of"], TODAY);
    let after = page["next_after"].as_str().unwrap().to_string();
    let page = h
        .get(
            &format!("/v1/public/lists/rail_ticket_ban?limit=2&after={after}"),
            None,
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let rest = page["entries"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert!(page.get("next_after").is_none());
    // A page that holds the last entry, and is full, is the last page.
    let whole = h
        .get("/v1/public/lists/rail_ticket_ban?limit=3", None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(whole["entries"].as_array().unwrap().len(), 3);
    assert!(whole.get("next_after").is_none(), "{whole}");
    // Persons appear without their month and day of birth, in identifier order.
    let all: Vec<String> = entries
        .iter()
        .chain(rest)
        .map(|e| e["subject"].as_str().unwrap().to_string())
        .collect();
    let mut people = [alice(), bob(), carol()];
    people.sort();
    assert_eq!(all, people.map(|p| p.public_form()));
    assert!(all[0].contains("****"), "{all:?}");
    assert!(entries.iter().all(|e| e["kind"] == "person"));
    assert_eq!(entries[0]["until"].as_str().map(str::len), Some(10));
    assert!(
        !shows_an_identifier(&after, &people),
        "the cursor shows an identifier: {after}"
    );

    // Only a cursor this server gave out for this list is taken back: not
    // an identifier (paging from guesses would find the hidden digits), not
    // another list's cursor, not junk.
    for bad in [people[0].to_string(), "junk".to_string()] {
        h.get(
            &format!("/v1/public/lists/rail_ticket_ban?after={bad}"),
            None,
        )
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_cursor");
    }
    h.get(
        &format!("/v1/public/lists/judgment_defaulters?after={after}"),
        None,
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "invalid_cursor");
    h.get("/v1/public/lists/rail_ticket_ban?limit=-1", None)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query");

    // The key is the registry's: another server on the same store (or this
    // one restarted) takes the cursor, and a server of another registry
    // does not.
    let next = format!("/v1/public/lists/rail_ticket_ban?limit=2&after={after}");
    let same_store = Harness::over(h.store.clone(), Limits::default()).await;
    let page = same_store
        .get(&next, None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(page["entries"].as_array().unwrap(), rest);
    Harness::new()
        .await
        .get(&next, None)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_cursor");
}

/// Acme's public view, which must show neither alice's number nor bob's.
async fn masked_company_view(h: &Harness) -> serde_json::Value {
    let view = h
        .get(&format!("/v1/public/companies/{}", acme()), None)
        .await
        .expect(StatusCode::OK);
    assert!(
        !shows_an_identifier(&view.text, &[alice(), bob()]),
        "a person's whole number is public: {}",
        view.text
    );
    view.json()
}

fn shows_an_identifier(text: &str, people: &[socred_core::SubjectId]) -> bool {
    people.iter().any(|p| text.contains(p.as_str()))
}

/// Another person, for the expired entry.
struct SubjectIdExt;

impl SubjectIdExt {
    fn dave() -> socred_core::SubjectId {
        socred_core::SubjectId::person(320102, 1968, 4, 5, 77).unwrap()
    }
}

#[tokio::test]
async fn a_company_shows_its_grade_public_records_and_public_entries_only() {
    let h = Harness::new().await;
    let lines = [
        admin_penalty("p-1", acme(), "2026-03-01"),
        grade_d("d-1", acme(), "2026-04-01"),
    ];
    let reply = h.ingest(COURT, &lines).await.expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["stored", "stored"]);
    let view = h
        .get(&format!("/v1/public/companies/{}", acme()), None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(view["subject"], acme().to_string());
    assert!(
        view.get("score").is_none(),
        "the score is not published: {view}"
    );
    assert!(view["grade"].is_string(), "{view}");
    // Both records are inside their publicity windows; the tax_grade_d list is not public.
    let records: Vec<&str> = view["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(records, ["p-1", "d-1"]);
    assert_eq!(view["list_entries"], json!([]));

    // A person is never looked up here, and an unknown company is 404.
    let person = format!("/v1/public/companies/{}", alice());
    h.get(&person, None)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "not_an_organisation");
    let unknown = socred_core::SubjectId::organisation(*b"91", 310101, *b"MA02XY3W").unwrap();
    h.get(&format!("/v1/public/companies/{unknown}"), None)
        .await
        .expect_error(StatusCode::NOT_FOUND, "unknown_subject");
    h.get("/v1/public/companies/91110105MA01BC2D0X", None)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_subject");
    // A name that does not decode to text gets a code like every refusal.
    for uri in ["/v1/public/companies/%FF%FE", "/v1/public/lists/%C3"] {
        h.get(uri, None)
            .await
            .expect_error(StatusCode::BAD_REQUEST, "invalid_path");
    }
}

#[tokio::test]
async fn a_company_on_a_public_list_shows_the_entry() {
    let h = Harness::new().await;
    h.ingest(COURT, &[judgment_default("j-9", acme(), "2026-05-01")])
        .await
        .expect(StatusCode::OK);
    approve(&h, REVIEWER_1, COURT_ID, "j-9")
        .await
        .expect(StatusCode::OK);
    let view = h
        .get(&format!("/v1/public/companies/{}", acme()), None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(view["list_entries"][0]["list"], "judgment_defaulters");
    assert_eq!(view["list_entries"][0]["public"], true);
}

#[tokio::test]
async fn a_companys_legal_representative_is_published_without_birth_day() {
    let h = Harness::new().await;
    let body = json!({"id": "samr", "name": "Market regulator", "role": "provider",
        "scope": "samr.beijing", "record_types": ["registry.company_registration"]});
    let reply = h
        .post_json("/v1/admin/principals", Some(ADMIN), &body)
        .await
        .expect(StatusCode::CREATED)
        .json();
    let token = reply["token"].as_str().unwrap().to_string();
    let line = json!({"provider": "samr.beijing", "id": "reg-1", "subject": acme().to_string(),
        "type": "registry.company_registration", "occurred_at": "2020-01-02", "decided_at": "2020-01-02",
        "fields": {"name": "Acme Trading Co.", "legal_representative": alice().to_string()}})
    .to_string();
    let reply = h.ingest(&token, &[&line]).await.expect(StatusCode::OK);
    assert_eq!(Harness::statuses(&reply), ["stored"], "{}", reply.text);

    let view = h
        .get(&format!("/v1/public/companies/{}", acme()), None)
        .await
        .expect(StatusCode::OK);
    assert!(
        !view.text.contains(alice().as_str()),
        "a person's whole number is public: {}",
        view.text
    );
    let view = view.json();
    let fields = &view["records"][0]["fields"];
    assert_eq!(fields["legal_representative"], alice().public_form());
    assert_eq!(fields["name"], "Acme Trading Co.");

    // A number quoted anywhere in a public record's text, or its id, is
    // published the same way: not only a field that holds one alone.
    let quoted = json!({"provider": COURT_ID, "id": format!("{}-1", bob()), "subject": acme().to_string(),
        "type": "market.administrative_penalty", "occurred_at": "2026-03-01", "decided_at": "2026-03-01",
        "document": format!("decision against the manager {} and {}", alice(), bob()),
        "fields": {"decision_no": format!("{} ", alice()), "penalty_yuan": 20000}})
    .to_string();
    assert_eq!(h.ingested(COURT, &[&quoted]).await, ["stored"]);
    let view = masked_company_view(&h).await;
    let penalty = view["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "market.administrative_penalty")
        .unwrap();
    assert_eq!(
        penalty["document"],
        format!(
            "decision against the manager {} and {}",
            alice().public_form(),
            bob().public_form()
        )
    );
    assert_eq!(penalty["id"], format!("{}-1", bob().public_form()));
    assert_eq!(
        penalty["fields"]["decision_no"],
        format!("{} ", alice().public_form())
    );
    assert_eq!(penalty["fields"]["penalty_yuan"], 20000.0);

    // The same number in the id of a record that puts the company on a
    // public list: the entry names the record by that id, masked too.
    let id = format!("zhi-{}", bob());
    let default = judgment_default(&id, acme(), "2026-05-01");
    assert_eq!(h.ingested(COURT, &[default]).await, ["pending_review"]);
    approve(&h, REVIEWER_1, COURT_ID, &id)
        .await
        .expect(StatusCode::OK);
    let entries = masked_company_view(&h).await["list_entries"].clone();
    assert_eq!(
        entries[0]["record"]["id"],
        format!("zhi-{}", bob().public_form()),
        "{entries}"
    );
}

/// The public form of the identifiers on a page of a list.
fn page_subjects(page: &serde_json::Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap().to_string())
        .collect()
}

/// Publishes what is due; the weekly red list's publications.
async fn publish_red(h: &Harness) -> Vec<socred_server::Publication> {
    let editions = socred_server::publish_due(&h.state).await.unwrap();
    let red = editions
        .into_iter()
        .filter(|e| e.list == "exemplary_residents");
    red.collect()
}

/// The weekly red list of exemplary residents is entered by grade: nobody
/// is on it until an edition is published, then its page names the
/// subjects graded AAA on the publication day, each as its file reads
/// today (a subject black-listed since drops off at once), and the next
/// week's edition keeps that subject for the day its entry ends.
#[tokio::test]
async fn a_weekly_red_list_is_published_in_editions_and_read_as_of_today() {
    let h = Harness::new().await;
    // Alice and Bob consent to scoring and earn 50 points (1050, AAA);
    // Carol earns as much without consent, and is not scored.
    make_exemplary(&h, &[alice(), bob()]).await;
    let carol_honours = [
        honour("h-carol-1", carol(), "national"),
        honour("h-carol-2", carol(), "provincial"),
    ];
    h.ingest(HONOURS, &carol_honours)
        .await
        .expect(StatusCode::OK);
    let uri = "/v1/public/lists/exemplary_residents";

    let page = h.get(uri, None).await.expect(StatusCode::OK).json();
    assert_eq!(page_subjects(&page), Vec::<String>::new(), "{page}");
    assert!(page.get("published").is_none(), "no edition yet: {page}");

    // TODAY (2026-06-01) is a Monday: the week's publication day
    // (and of the month, for the monthly list of A-grade taxpayers).
    let editions = publish_red(&h).await;
    assert_eq!(editions.len(), 1, "{editions:?}");
    assert_eq!(
        (
            editions[0].named,
            editions[0].left_off,
            editions[0].published
        ),
        (2, 0, true)
    );
    assert_eq!(editions[0].day.to_string(), TODAY);
    assert_eq!(
        socred_server::publish_due(&h.state).await.unwrap(),
        Vec::new(),
        "an edition is published once a publication day"
    );
    let page = h.get(uri, None).await.expect(StatusCode::OK).json();
    let mut named = vec![alice().public_form(), bob().public_form()];
    named.sort();
    assert_eq!(page_subjects(&page), named, "{page}");
    assert_eq!(page["published"], TODAY);
    assert_eq!(page["entries"][0]["since"], TODAY);
    // The operator watches the editions in the metrics.
    let metrics = h.get("/metrics", Some(ADMIN)).await.expect(StatusCode::OK);
    let drawn = socred_core::Day::parse(TODAY).unwrap().0 as i64 * 86_400;
    for line in [
        "socred_edition_subjects{list=\"exemplary_residents\"} 2".to_string(),
        format!("socred_edition_drawn_timestamp_seconds{{list=\"exemplary_residents\"}} {drawn}"),
    ] {
        assert!(metrics.text.contains(&line), "{line} in {}", metrics.text);
    }
    assert_eq!(page["entries"][0]["until"], "2026-06-08");
    let lists = h
        .get("/v1/public/lists", None)
        .await
        .expect(StatusCode::OK)
        .json();
    let listed = |id: &str| {
        lists["lists"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == id)
            .cloned()
            .unwrap()
    };
    let red = listed("exemplary_residents");
    assert_eq!(
        (&red["schedule"], &red["published"]),
        (&json!("weekly"), &json!(TODAY))
    );
    let rail = listed("rail_ticket_ban");
    assert!(rail.get("schedule").is_none(), "{rail}");

    // A page at a time, with the sealed cursor.
    let first = h
        .get(&format!("{uri}?limit=1"), None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(page_subjects(&first), named[..1]);
    let after = first["next_after"].as_str().unwrap();
    let second = h
        .get(&format!("{uri}?limit=1&after={after}"), None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(page_subjects(&second), named[1..]);
    assert!(second.get("next_after").is_none(), "{second}");

    // Each subject named sees it in its access log.
    let logged = h.logged(ALICE, alice(), "publish_list").await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0]["detail"]
        .as_str()
        .unwrap()
        .contains("exemplary_residents"));

    // Bob evades a fare: on the rail ticket ban, a black list that
    // excludes the red one, he is off the page at once.
    h.ingest(METRO, &[fare_evasion("fe-bob", bob(), TODAY)])
        .await
        .expect(StatusCode::OK);
    let page = h.get(uri, None).await.expect(StatusCode::OK).json();
    assert_eq!(page_subjects(&page), vec![alice().public_form()], "{page}");

    // The next Monday's edition names Alice and keeps Bob, left off while
    // the ban is in force.
    h.clock
        .set_day(socred_core::Day::parse("2026-06-08").unwrap());
    let editions = publish_red(&h).await;
    assert_eq!(
        (
            editions[0].day.to_string().as_str(),
            editions[0].named,
            editions[0].left_off
        ),
        ("2026-06-08", 1, 1),
        "{editions:?}"
    );
    let page = h.get(uri, None).await.expect(StatusCode::OK).json();
    assert_eq!(page_subjects(&page), vec![alice().public_form()], "{page}");
    assert_eq!(page["published"], "2026-06-08");

    // A rulebook that keeps the list private: its edition is withdrawn,
    // and the store keeps no subject for it.
    let text = rulebook_text(&h).await;
    let (head, tail) = text.split_at(text.find("id = \"exemplary_residents\"").unwrap());
    let private = format!(
        "{head}{}",
        tail.replacen("public = true", "public = false", 1)
    );
    let version = text.lines().find(|l| l.starts_with("version = ")).unwrap();
    let private = private.replacen(version, "version = \"test.private\"", 1);
    put_rulebook(&h, private).await.expect(StatusCode::OK);
    let editions = publish_red(&h).await;
    assert_eq!(
        editions
            .iter()
            .map(|e| (e.list.as_str(), e.withdrawn, e.published))
            .collect::<Vec<_>>(),
        vec![("exemplary_residents", true, true)],
        "{editions:?}"
    );
    assert_eq!(
        h.store
            .edition_members("exemplary_residents", None, 10)
            .await
            .unwrap()
            .map(|page| page.members),
        Some(Vec::new())
    );
    h.get(uri, None)
        .await
        .expect_error(StatusCode::NOT_FOUND, "unknown_list");
    assert_eq!(
        socred_server::publish_due(&h.state).await.unwrap(),
        Vec::new(),
        "withdrawn once"
    );
}

/// No edition is drawn while the files are being recomputed with the
/// rulebook in force: it would read files folded with the one before.
#[tokio::test]
async fn no_edition_is_drawn_while_the_files_are_recomputed() {
    let h = Harness::new().await;
    let newer = with_version(&rulebook_text(&h).await, "test.newer");
    // What an upload commits before it recomputes the files.
    h.store
        .put_rulebook("socred-default@test.newer", &newer, "admin", Vec::new())
        .await
        .unwrap();
    h.state.follow_rulebook().await.unwrap();
    assert_eq!(
        socred_server::publish_due(&h.state).await.unwrap(),
        Vec::new()
    );
    assert_eq!(h.store.edition("exemplary_residents").await.unwrap(), None);
    h.store
        .recompute_all(&h.state.current().engine)
        .await
        .unwrap();
    let editions = socred_server::publish_due(&h.state).await.unwrap();
    assert_eq!(editions.len(), 2, "both red lists: {editions:?}");
}

/// A server that has not yet taken the rulebook another installed leaves
/// the editions to the servers that have: it would publish under the
/// rulebook before, and the others would publish again.
#[tokio::test]
async fn a_server_behind_the_rulebook_publishes_no_edition() {
    let h = Harness::new().await;
    let behind = Harness::over(h.store.clone(), Limits::default()).await;
    let newer = with_version(&rulebook_text(&h).await, "test.newer");
    put_rulebook(&h, newer).await.expect(StatusCode::OK);
    assert_eq!(
        socred_server::publish_due(&behind.state).await.unwrap(),
        Vec::new()
    );
    assert_eq!(h.store.edition("exemplary_residents").await.unwrap(), None);
    let editions = socred_server::publish_due(&h.state).await.unwrap();
    assert_eq!(editions.len(), 2, "both red lists: {editions:?}");
    assert!(
        editions
            .iter()
            .all(|e| e.rulebook == "socred-default@test.newer"),
        "{editions:?}"
    );
    // Once it follows, it finds the edition published.
    behind.state.follow_rulebook().await.unwrap();
    assert_eq!(
        socred_server::publish_due(&behind.state).await.unwrap(),
        Vec::new()
    );
}

/// The monthly red list of A-grade taxpayers names a company graded A by
/// its annual evaluation on the first of the month, with its whole code
/// (company credit is public), until a grade D is assigned to it.
#[tokio::test]
async fn a_grade_taxpayers_are_published_monthly() {
    const TAX: &str = "token-tax-bureau-00000000000";
    const CENTRE: &str = "token-service-centre-0000000";
    let h = Harness::new().await;
    use socred_store::Role::{Agency, Provider};
    let tax = ["tax.credit_evaluation"];
    let principals = [
        (
            principal("tax-bureau", Provider, Some("tax.beijing"), &tax),
            TAX,
        ),
        (
            principal("centre", Agency, Some("admin_service_centre"), &[]),
            CENTRE,
        ),
    ];
    for (principal, token) in principals {
        let hash = socred_store::hash_token(token);
        h.store
            .put_principal(&principal, &hash, Vec::new())
            .await
            .unwrap();
    }
    let evaluation =
        json!({"provider": "tax.beijing", "id": "te-2025", "subject": acme().to_string(),
        "type": "tax.credit_evaluation", "occurred_at": "2026-04-01", "decided_at": "2026-04-15",
        "fields": {"year": 2025, "points": 92}})
        .to_string();
    h.ingest(TAX, &[evaluation]).await.expect(StatusCode::OK);
    // TODAY (2026-06-01) is the first of the month.
    socred_server::publish_due(&h.state).await.unwrap();
    let uri = "/v1/public/lists/a_grade_taxpayers";
    let page = h.get(uri, None).await.expect(StatusCode::OK).json();
    assert_eq!(page_subjects(&page), vec![acme().to_string()], "{page}");
    assert_eq!(page["entries"][0]["until"], "2026-07-01");
    assert!(h.applies(CENTRE, acme(), "green_channel").await);
    // The company's public credit shows the same entry.
    let company = format!("/v1/public/companies/{}", acme());
    let view = h.get(&company, None).await.expect(StatusCode::OK).json();
    assert_eq!(
        view["list_entries"][0]["list"], "a_grade_taxpayers",
        "{view}"
    );
    // The grade is public, never the score behind it (92 points).
    for shown in [view.to_string(), page.to_string()] {
        assert!(
            !shown.contains("score") && !shown.contains(":92"),
            "{shown}"
        );
    }

    h.ingest(COURT, &[grade_d("td-1", acme(), TODAY)])
        .await
        .expect(StatusCode::OK);
    let page = h.get(uri, None).await.expect(StatusCode::OK).json();
    assert_eq!(page_subjects(&page), Vec::<String>::new(), "{page}");
    assert!(!h.applies(CENTRE, acme(), "green_channel").await);
}

/// An edition is drawn again each day until the next publication day: a
/// record that arrives late and raises a grade on the publication day
/// puts its subject on the page by the next day's drawing, as the file
/// and every decision say at once. Subjects already named are not logged
/// again.
#[tokio::test]
async fn a_late_record_shows_in_the_next_days_drawing() {
    let h = Harness::new().await;
    make_exemplary(&h, &[alice()]).await;
    // Bob consents and has a national honour: 1030 points, AA.
    consents(&h, bob(), BOB).await;
    h.ingest(HONOURS, &[honour("late-1", bob(), "national")])
        .await
        .expect(StatusCode::OK);
    socred_server::publish_due(&h.state).await.unwrap();
    let uri = "/v1/public/lists/exemplary_residents";
    let page = h.get(uri, None).await.expect(StatusCode::OK).json();
    assert_eq!(page_subjects(&page), vec![alice().public_form()], "{page}");

    // On Tuesday a provincial honour conferred before Monday arrives.
    h.clock
        .set_day(socred_core::Day::parse("2026-06-02").unwrap());
    h.ingest(HONOURS, &[honour("late-2", bob(), "provincial")])
        .await
        .expect(StatusCode::OK);
    let editions = publish_red(&h).await;
    let red: Vec<_> = editions
        .iter()
        .map(|e| (e.day.to_string(), e.named, e.published))
        .collect();
    assert_eq!(red, vec![(TODAY.to_string(), 2, true)], "{editions:?}");
    let page = h.get(uri, None).await.expect(StatusCode::OK).json();
    let mut named = vec![alice().public_form(), bob().public_form()];
    named.sort();
    assert_eq!(page_subjects(&page), named, "{page}");
    assert_eq!(page["published"], TODAY);
    assert_eq!(h.logged(ALICE, alice(), "publish_list").await.len(), 1);
    assert_eq!(h.logged(BOB, bob(), "publish_list").await.len(), 1);
    assert_eq!(
        socred_server::publish_due(&h.state).await.unwrap(),
        Vec::new(),
        "drawn once a day"
    );
}

#[tokio::test]
async fn a_subject_left_off_is_told_when_a_later_drawing_names_it() {
    let h = Harness::new().await;
    make_exemplary(&h, &[alice(), bob()]).await;
    // Bob evades a fare on the publication day: the rail ticket ban,
    // which excludes the red list, leaves him off the edition.
    h.ingest(METRO, &[fare_evasion("fe-bob", bob(), TODAY)])
        .await
        .expect(StatusCode::OK);
    let red = |editions: Vec<socred_server::Publication>| {
        let counts = editions
            .iter()
            .map(|e| (e.day.to_string(), e.named, e.left_off));
        counts.collect::<Vec<_>>()
    };
    assert_eq!(red(publish_red(&h).await), vec![(TODAY.to_string(), 1, 1)]);
    assert_eq!(h.logged(BOB, bob(), "publish_list").await.len(), 0);
    let uri = "/v1/public/lists/exemplary_residents";
    let page = h.get(uri, None).await.expect(StatusCode::OK).json();
    assert_eq!(page_subjects(&page), vec![alice().public_form()], "{page}");

    // The metro retracts the fare evasion: as if it never was, Bob is on
    // the page at once, and the next day's drawing names him and tells him.
    let retraction = json!({"fact": "retracted", "provider": METRO_ID, "record": "fe-bob",
                            "subject": bob().to_string(), "at": TODAY});
    h.ingest(METRO, &[retraction.to_string()])
        .await
        .expect(StatusCode::OK);
    let page = h.get(uri, None).await.expect(StatusCode::OK).json();
    let mut both = vec![alice().public_form(), bob().public_form()];
    both.sort();
    assert_eq!(page_subjects(&page), both, "{page}");
    h.clock
        .set_day(socred_core::Day::parse("2026-06-02").unwrap());
    assert_eq!(red(publish_red(&h).await), vec![(TODAY.to_string(), 2, 0)]);
    let told = h.logged(BOB, bob(), "publish_list").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(h.logged(ALICE, alice(), "publish_list").await.len(), 1);
}

/// Waits until the stores' clock has moved past the last write, so that
/// what comes next is stamped later.
async fn next_millisecond() {
    let now = socred_store::now_ms();
    while socred_store::now_ms() <= now {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Drawn again for the same publication day, an edition reads only its
/// own subjects and those a write changed since the drawing before, and
/// comes out as a drawing of every subject would.
#[tokio::test]
async fn a_drawing_again_reads_the_edition_and_what_changed() {
    let limits = Limits {
        redraw_margin_ms: 0,
        ..Limits::default()
    };
    let h = Harness::with_limits(limits).await;
    make_exemplary(&h, &[alice(), bob()]).await;
    // Others with files of their own, whom neither edition names.
    let other = |n: u16| socred_core::SubjectId::person(110105, 1990, 1, 1, 11 + 2 * n).unwrap();
    let others: Vec<String> = (0..5)
        .map(|n| fare_evasion(&format!("fe-{n}"), other(n), "2026-03-02"))
        .collect();
    h.ingest(METRO, &others).await.expect(StatusCode::OK);
    next_millisecond().await;
    let first = publish_red(&h).await;
    let counts = |editions: &[socred_server::Publication]| {
        let counts = editions.iter().map(|e| (e.named, e.left_off, e.read));
        counts.collect::<Vec<_>>()
    };
    assert_eq!(
        counts(&first),
        vec![(2, 0, 7)],
        "every subject, the first time"
    );

    // After it: Bob evades a fare on the publication day, Carol, who had
    // no file, consents and is honoured before it, and the metro retracts
    // one of the others' fare evasions.
    next_millisecond().await;
    h.ingest(METRO, &[fare_evasion("fe-bob", bob(), TODAY)])
        .await
        .expect(StatusCode::OK);
    make_exemplary(&h, &[carol()]).await;
    let retraction = json!({"fact": "retracted", "provider": METRO_ID, "record": "fe-0",
                            "subject": other(0).to_string(), "at": TODAY});
    h.ingest(METRO, &[retraction.to_string()])
        .await
        .expect(StatusCode::OK);
    next_millisecond().await;
    h.clock
        .set_day(socred_core::Day::parse("2026-06-02").unwrap());
    let again = publish_red(&h).await;
    assert_eq!(
        counts(&again),
        vec![(2, 1, 4)],
        "the edition's Alice and Bob, and the changed Bob, Carol and other: \
         Alice and Carol named, Bob left off"
    );
    let page = h
        .get("/v1/public/lists/exemplary_residents", None)
        .await
        .expect(StatusCode::OK)
        .json();
    let mut named = vec![alice().public_form(), carol().public_form()];
    named.sort();
    assert_eq!(page_subjects(&page), named, "{page}");

    // Nothing changed since: the next day reads the edition's three.
    h.clock
        .set_day(socred_core::Day::parse("2026-06-03").unwrap());
    assert_eq!(counts(&publish_red(&h).await), vec![(2, 1, 3)]);

    // The next publication day's edition reads every subject again.
    h.clock
        .set_day(socred_core::Day::parse("2026-06-08").unwrap());
    assert_eq!(counts(&publish_red(&h).await), vec![(2, 1, 8)]);
}

/// The edition of the weekly red list as a drawing of every subject
/// would make it on the publication day `day`: (named, left off).
async fn red_list_of_everyone(h: &Harness, day: &str) -> (Vec<SubjectId>, Vec<SubjectId>) {
    let current = h.state.current();
    let engine = &current.engine;
    let day = socred_core::Day::parse(day).unwrap();
    let list = (engine.rulebook.lists.iter())
        .position(|l| *l.id == *"exemplary_residents")
        .unwrap() as u32;
    let subjects = h.store.subjects(None, 1000).await.unwrap();
    let files = h.store.states_of(&subjects).await.unwrap();
    let (mut named, mut left_off) = (Vec::new(), Vec::new());
    for (subject, file) in subjects.into_iter().zip(files) {
        let file = file.unwrap();
        let standing = engine.evaluate(&file, day);
        if standing.entries.iter().any(|e| e.list == list) {
            named.push(subject);
        } else if standing.left_off.iter().any(|l| l.list == list) {
            left_off.push(subject);
        }
    }
    (named, left_off)
}

/// The stored edition of the weekly red list: (named, left off).
async fn red_list_edition(h: &Harness) -> (Vec<SubjectId>, Vec<SubjectId>) {
    let page = h.store.edition_members("exemplary_residents", None, 1000);
    let members = page.await.unwrap().unwrap().members;
    let (named, left_off): (Vec<_>, Vec<_>) = members.into_iter().partition(|m| m.named);
    let subjects = |members: Vec<socred_store::EditionMember>| {
        members.into_iter().map(|m| m.subject).collect::<Vec<_>>()
    };
    (subjects(named), subjects(left_off))
}

/// Fare evasions decided around the publication day, honours before it,
/// and retractions of either, at random, each round followed by the next
/// day's drawing again: every edition is the one a drawing of every
/// subject would make.
#[tokio::test]
async fn drawings_again_agree_with_drawings_of_everyone() {
    use rand::{RngExt, SeedableRng};
    let monday = socred_core::Day::parse(TODAY).unwrap();
    for seed in 0..4 {
        let limits = Limits {
            redraw_margin_ms: 0,
            ..Limits::default()
        };
        let h = Harness::with_limits(limits).await;
        let subjects: Vec<SubjectId> = (0..8)
            .map(|n| SubjectId::person(110105, 1990, 1, 1, 11 + 2 * n).unwrap())
            .collect();
        // All consent, and are honoured twice (AAA); half lose an honour
        // (AA), so that the first edition names only the others.
        make_exemplary(&h, &subjects).await;
        let retract = |provider: &str, id: &str, subject: SubjectId| {
            json!({"fact": "retracted", "provider": provider, "record": id,
                   "subject": subject.to_string(), "at": TODAY})
            .to_string()
        };
        let mut honours: Vec<(String, SubjectId)> = Vec::new();
        for (n, subject) in subjects.iter().enumerate() {
            let id = format!("honour-{subject}-2");
            if n % 2 == 0 {
                let line = retract("civil.affairs", &id, *subject);
                h.ingest(HONOURS, &[line]).await.expect(StatusCode::OK);
            } else {
                honours.push((id, *subject));
            }
        }
        next_millisecond().await;
        assert_eq!(publish_red(&h).await.len(), 1);
        assert_eq!(red_list_edition(&h).await.0.len(), 4, "seed {seed}");

        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut evasions: Vec<(String, SubjectId)> = Vec::new();
        let mut reads = Vec::new();
        for step in 1..=6 {
            for n in 0..rng.random_range(1..4) {
                let subject = subjects[rng.random_range(0..subjects.len())];
                let id = format!("{step}-{n}");
                match rng.random_range(0..4) {
                    0 if !evasions.is_empty() => {
                        let (id, subject) = evasions.remove(rng.random_range(0..evasions.len()));
                        let line = retract(METRO_ID, &id, subject);
                        h.ingest(METRO, &[line]).await.expect(StatusCode::OK);
                    }
                    1 if !honours.is_empty() => {
                        let (id, subject) = honours.remove(rng.random_range(0..honours.len()));
                        let line = retract("civil.affairs", &id, subject);
                        h.ingest(HONOURS, &[line]).await.expect(StatusCode::OK);
                    }
                    2 => {
                        let id = format!("honour-{id}");
                        let line = honour(&id, subject, "provincial");
                        h.ingest(HONOURS, &[line]).await.expect(StatusCode::OK);
                        honours.push((id, subject));
                    }
                    _ => {
                        // From half a year before the publication day (the
                        // ban then ends before it) to a few days after.
                        let decided = monday.add_days(rng.random_range(-200..4)).to_string();
                        let id = format!("fe-{id}");
                        let line = fare_evasion(&id, subject, &decided);
                        h.ingest(METRO, &[line]).await.expect(StatusCode::OK);
                        evasions.push((id, subject));
                    }
                }
            }
            next_millisecond().await;
            h.clock.set_day(monday.add_days(step));
            let drawn = publish_red(&h).await;
            assert_eq!(drawn.len(), 1, "seed {seed}, step {step}");
            reads.push(drawn[0].read);
            assert_eq!(
                red_list_edition(&h).await,
                red_list_of_everyone(&h, TODAY).await,
                "seed {seed}, step {step}"
            );
        }
        assert!(reads.iter().any(|&read| read < 8), "seed {seed}: {reads:?}");
    }
}

/// Publishes what is due, and checks that the weekly red list's edition
/// is among it, naming one subject.
async fn publishes_the_red_list_naming_one(h: &Harness) {
    let editions = socred_server::publish_due(&h.state).await.unwrap();
    assert!(
        editions
            .iter()
            .any(|e| e.list == "exemplary_residents" && e.published && e.named == 1),
        "{editions:?}"
    );
}

/// The clock of a server from which another takes the drawing's lease
/// mid-drawing. Until this server holds the lease, it reads as set. From
/// the first reading after, each reading moves it on by more than a lease
/// lasts, and at each the other server (`server-b`) takes the lease, or
/// renews it: as if this server had stalled between two pages, long
/// enough for its lease to run out and the other to step in.
struct StalledClock {
    now_ms: AtomicI64,
    store: Arc<dyn Store>,
    stalled: AtomicBool,
}

/// More than the drawing's lease lasts (five minutes).
const STALL_MS: i64 = 301_000;

impl socred_server::Clock for StalledClock {
    fn now_ms(&self) -> i64 {
        let now = self.now_ms.load(Ordering::SeqCst);
        if !self.stalled.load(Ordering::SeqCst) {
            // Whether another holds the lease: a probe takes a free one
            // only for this instant, so that it stays free.
            if lease_at_once(&*self.store, "probe", now, now) {
                return now;
            }
            self.stalled.store(true, Ordering::SeqCst);
        }
        let now = self.now_ms.fetch_add(STALL_MS, Ordering::SeqCst) + STALL_MS;
        lease_at_once(&*self.store, "server-b", now, now + 300_000);
        now
    }
}

/// `Store::lease` on the in-memory store, which answers without waiting
/// (a clock cannot wait).
fn lease_at_once(store: &dyn Store, holder: &str, now_ms: i64, until_ms: i64) -> bool {
    let mut lease = store.lease("publication", holder, now_ms, until_ms);
    let mut context = Context::from_waker(Waker::noop());
    match lease.as_mut().poll(&mut context) {
        Poll::Ready(taken) => taken.unwrap(),
        Poll::Pending => panic!("the in-memory store answers a lease at once"),
    }
}

#[tokio::test]
async fn a_drawing_stops_when_another_server_takes_its_lease_midway() {
    let h = Harness::new().await;
    make_exemplary(&h, &[alice()]).await;
    let now = h.state.now_ms();
    let clock = Arc::new(StalledClock {
        now_ms: AtomicI64::new(now),
        store: h.store.clone(),
        stalled: AtomicBool::new(false),
    });
    // This server (another instance on the same store) takes the lease,
    // starts drawing, and finds at its next renewal that the other server
    // holds the lease: it stops, and publishes nothing.
    let stalled = AppState::open(h.store.clone(), clock.clone(), Limits::default())
        .await
        .unwrap();
    let editions = socred_server::publish_due(&stalled).await.unwrap();
    assert!(clock.stalled.load(Ordering::SeqCst), "it held the lease");
    assert_eq!(editions, Vec::new(), "left to the server that took over");
    assert_eq!(h.store.edition("exemplary_residents").await.unwrap(), None);
    let took_over_until = clock.now_ms.load(Ordering::SeqCst) + 300_000;
    assert!(
        !h.store
            .lease(
                "publication",
                "a-third-server",
                took_over_until - 1,
                took_over_until
            )
            .await
            .unwrap(),
        "the other server holds the lease"
    );
    // The other server stops too: once its lease has run out, any
    // server draws the edition, once.
    h.clock.set_ms(took_over_until);
    publishes_the_red_list_naming_one(&h).await;
}

#[tokio::test]
async fn one_server_draws_while_its_lease_runs() {
    let h = Harness::new().await;
    make_exemplary(&h, &[alice()]).await;
    // Another server of the store is drawing, its lease five minutes long.
    let now = h.state.now_ms();
    assert!(h
        .store
        .lease("publication", "another-server", now, now + 300_000)
        .await
        .unwrap());
    let editions = socred_server::publish_due(&h.state).await.unwrap();
    assert_eq!(editions, Vec::new(), "left to the other server");
    assert_eq!(h.store.edition("exemplary_residents").await.unwrap(), None);

    // It stopped: once its lease has run out, this server draws, and
    // gives the lease up when done.
    h.clock.set_ms(now + 300_000);
    publishes_the_red_list_naming_one(&h).await;
    let later = h.state.now_ms();
    assert!(
        h.store
            .lease("publication", "another-server", later, later + 300_000)
            .await
            .unwrap(),
        "given up at the end of the drawing"
    );
}
