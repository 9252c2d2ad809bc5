//! Two `socred serve` processes on one PostgreSQL database ingest
//! overlapping batches at the same time. Nothing unique lives in a server's
//! memory, so every record is stored exactly once (the other server answers
//! `duplicate`), the audit chain stays one valid chain, and every subject's
//! state equals a fresh fold of its records, as `socred verify --store`
//! says on the database; an entry edited behind their backs it catches.
//! A public list paged at one server pages on at the other, and a rulebook
//! installed at one is taken by the other, which writes nothing under the
//! rulebook before meanwhile. The red lists' first editions, which both
//! look for at their start, are published once.
//!
//! And text that PostgreSQL cannot hold (a NUL) is refused item by item,
//! at the door, with the rest of its batch stored: never a failed batch
//! answered "retry later".
//!
//! Needs the PostgreSQL server binaries; without them the test says so
//! loudly and passes, unless `SOCRED_REQUIRE_POSTGRES=1` (as in CI).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use serde_json::json;
use socred_server::client::{request, Connection};
use socred_store_postgres::cluster::Cluster;

const BATCHES: usize = 12;
const BATCH_RECORDS: usize = 100;

struct Server(Child, SocketAddr, Option<String>);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(url: &str, first: bool) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_socred"))
        .args(["serve", "--listen", "127.0.0.1:0", "--store", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start socred serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines.next().unwrap().unwrap();
    let addr = listening
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let token = first.then(|| {
        let line = lines.next().unwrap().unwrap();
        line.split("(shown once): ")
            .nth(1)
            .unwrap()
            .trim()
            .to_string()
    });
    std::thread::spawn(move || for _ in lines {});
    Server(child, addr.parse().unwrap(), token)
}

fn batch(number: usize) -> String {
    (0..BATCH_RECORDS)
        .map(|i| {
            let subject = socred_core::SubjectId::person(110105, 1970, 1 + (i % 12) as i8, 1 + (i % 28) as i8, (number * 7 + i) as u16 % 500 + 1)
                .unwrap();
            json!({"provider": "metro.two", "id": format!("b{number}-{i}"), "subject": subject.to_string(),
                "type": "transport.fare_evasion", "occurred_at": "2026-03-01", "decided_at": "2026-03-02",
                "fields": {"station": "Two"}})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends `body` of `content_type` to `addr` with `method` and bearer `token`.
fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    content_type: &str,
    body: &[u8],
) -> socred_server::client::Response {
    let auth = format!("Bearer {token}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", content_type),
    ];
    request(addr, method, path, &headers, body).unwrap()
}

/// Registers the principal `body` at `addr` as the operator `admin`;
/// returns its token.
fn issue(addr: SocketAddr, admin: &str, body: serde_json::Value) -> String {
    let body = body.to_string();
    let response = send(
        addr,
        "POST",
        "/v1/admin/principals",
        admin,
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    response.json().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Sends batches `range` to `addr`; returns (stored, duplicate) counts.
fn ingest(addr: SocketAddr, token: String, range: std::ops::Range<usize>) -> (u64, u64) {
    let mut connection = Connection::open(addr).unwrap();
    let auth = format!("Bearer {token}");
    let (mut stored, mut duplicate) = (0, 0);
    for number in range {
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/x-ndjson"),
        ];
        let response = connection
            .send("POST", "/v1/records", &headers, batch(number).as_bytes())
            .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        let reply = response.json().unwrap();
        stored += reply["counts"]["stored"].as_u64().unwrap();
        duplicate += reply["counts"]["duplicate"].as_u64().unwrap();
    }
    (stored, duplicate)
}

/// A cluster of its own for a test, or None (said loudly) when the
/// machine has no PostgreSQL and CI does not require it.
fn cluster() -> Option<Cluster> {
    match Cluster::start() {
        Ok(cluster) => Some(cluster),
        Err(why) => {
            assert!(
                std::env::var_os("SOCRED_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL required: {why}"
            );
            eprintln!("\n########## SKIPPED: no PostgreSQL server binaries ({why}) ##########\n");
            None
        }
    }
}

/// A database `name` on a cluster of the test's own, with a runtime for
/// the test's own statements and the database's URL.
fn database(name: &str) -> Option<(Cluster, tokio::runtime::Runtime, String)> {
    let cluster = cluster()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = runtime.block_on(cluster.create_database(name)).unwrap();
    Some((cluster, runtime, url))
}

/// `socred verify --store url`: its exit code, and its report followed
/// by anything it said on standard error.
fn verify(url: &str) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_socred"))
        .args(["verify", "--store", url])
        .output()
        .expect("cannot run socred verify");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), report)
}

#[test]
fn two_servers_share_one_database() {
    let Some((cluster, runtime, url)) = database("two_servers") else {
        return;
    };
    let a = start(&url, true);
    let b = start(&url, false);
    assert!(
        b.2.is_none(),
        "the second server finds the principals of the first"
    );
    let admin = a.2.clone().unwrap();
    let token = issue(
        a.1,
        &admin,
        json!({"id": "two-provider", "name": "Two servers", "role": "provider", "scope": "metro.two",
            "record_types": ["transport.fare_evasion"]}),
    );

    // Batches 4..8 go to both servers at once.
    let (addr_a, addr_b, token_a, token_b) = (a.1, b.1, token.clone(), token.clone());
    let first = std::thread::spawn(move || ingest(addr_a, token_a, 0..8));
    let second = std::thread::spawn(move || ingest(addr_b, token_b, 4..BATCHES));
    let (stored_a, duplicate_a) = first.join().unwrap();
    let (stored_b, duplicate_b) = second.join().unwrap();
    let records = (BATCHES * BATCH_RECORDS) as u64;
    let overlap = (4 * BATCH_RECORDS) as u64;
    assert_eq!(
        stored_a + stored_b,
        records,
        "every record stored exactly once"
    );
    assert_eq!(
        duplicate_a + duplicate_b,
        overlap,
        "the other server said duplicate"
    );
    // A public list paged at one server pages on at the other: the cursor
    // key is the database's, not a process's. Two fare evasions of
    // yesterday (by the machine's clock, which is never ahead of the
    // registry's Chinese day) put two persons on the rail ban list today.
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let yesterday = socred_core::Day((seconds / 86_400) as i32 - 1).to_string();
    let recent: Vec<String> = (0..2)
        .map(|i| {
            let subject = socred_core::SubjectId::person(110105, 1980, 1, 1 + i, 7).unwrap();
            json!({"provider": "metro.two", "id": format!("recent-{i}"), "subject": subject.to_string(),
                "type": "transport.fare_evasion", "occurred_at": yesterday, "decided_at": yesterday,
                "fields": {"station": "Two"}})
            .to_string()
        })
        .collect();
    let response = send(
        a.1,
        "POST",
        "/v1/records",
        &token,
        "application/x-ndjson",
        recent.join("\n").as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json().unwrap()["counts"]["stored"], 2);
    let first_page = request(
        a.1,
        "GET",
        "/v1/public/lists/rail_ticket_ban?limit=1",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(first_page.status, 200, "{}", first_page.text());
    let first_page = first_page.json().unwrap();
    let after = first_page["next_after"]
        .as_str()
        .expect("more than one entry")
        .to_string();
    let next = request(
        b.1,
        "GET",
        &format!("/v1/public/lists/rail_ticket_ban?limit=1&after={after}"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(next.status, 200, "{}", next.text());
    let next = next.json().unwrap();
    assert_ne!(
        next["entries"][0]["subject"],
        first_page["entries"][0]["subject"]
    );
    // Both servers looked at their start whether the red lists were due
    // their first editions: the database has one of each, published once.
    let auditor = issue(
        a.1,
        &admin,
        json!({"id": "two-auditor", "name": "Auditor", "role": "auditor"}),
    );
    let mut editions = Vec::new();
    let mut after = 0;
    loop {
        let uri = format!("/v1/audit?after={after}&limit=1000");
        let page = send(b.1, "GET", &uri, &auditor, "application/json", b"");
        assert_eq!(page.status, 200, "{}", page.text());
        let page = page.json().unwrap();
        editions.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["action"] == "publish_list" && e["subject"].is_null())
                .map(|e| e["detail"].as_str().unwrap().to_string()),
        );
        match page["next_after"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
    }
    editions.sort();
    assert_eq!(editions.len(), 2, "one edition a list: {editions:?}");
    assert!(
        editions[0].contains("`a_grade_taxpayers`")
            && editions[1].contains("`exemplary_residents`"),
        "{editions:?}"
    );

    // A rulebook installed at one server: the other refuses writes under
    // the rulebook before (`rulebook_changed`) until it follows, within
    // seconds, and then answers with the new one.
    let text = request(a.1, "GET", "/v1/rulebook", &[], b"")
        .unwrap()
        .json()
        .unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    let version = text
        .lines()
        .find(|line| line.starts_with("version = "))
        .unwrap();
    let newer = text.replacen(version, "version = \"2026.3-two\"", 1);
    let response = send(
        a.1,
        "PUT",
        "/v1/admin/rulebook",
        &admin,
        "application/toml",
        newer.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    // At most one refusal: the second server takes the rulebook in force
    // before it answers one (or had taken it already, by its periodic
    // look), and the same batch sent again is taken.
    let send_batch = || {
        send(
            b.1,
            "POST",
            "/v1/records",
            &token,
            "application/x-ndjson",
            batch(BATCHES).as_bytes(),
        )
    };
    let mut response = send_batch();
    let refused = response.status != 200;
    if refused {
        assert_eq!(response.status, 503, "{}", response.text());
        assert!(
            response.text().contains("rulebook_changed"),
            "{}",
            response.text()
        );
        response = send_batch();
    }
    assert_eq!(response.status, 200, "{}", response.text());
    let label = request(b.1, "GET", "/v1/rulebook", &[], b"")
        .unwrap()
        .json()
        .unwrap()["label"]
        .clone();
    assert_eq!(
        label, "socred-default@2026.3-two",
        "refused first: {refused}"
    );
    drop((a, b));

    // The operator's check, on the database itself.
    let (code, report) = verify(&url);
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.contains("hash chain intact") && report.contains("ok: the registry is consistent"),
        "one valid audit chain, states equal to their folds: {report}"
    );
    let subjects: u64 = report
        .lines()
        .find_map(|line| line.strip_prefix("subjects: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the subjects checked");
    assert!(subjects > 0, "{report}");

    // An audit entry edited behind the servers' backs is caught.
    runtime
        .block_on(cluster.admin_in(
            "two_servers",
            "UPDATE audit SET detail = 'nothing happened here' WHERE seq = 2",
        ))
        .unwrap();
    let (code, report) = verify(&url);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains("entry 2") && report.contains("FAILED"),
        "{report}"
    );
}

#[test]
fn text_postgresql_cannot_hold_is_refused_item_by_item() {
    let Some((_cluster, _runtime, url)) = database("control_characters") else {
        return;
    };
    let server = start(&url, true);
    let (addr, admin) = (server.1, server.2.clone().unwrap());
    let provider = issue(
        addr,
        &admin,
        json!({"id": "nul-provider", "name": "Provider", "role": "provider", "scope": "metro.two",
            "record_types": ["transport.fare_evasion"]}),
    );
    let reviewer = issue(
        addr,
        &admin,
        json!({"id": "nul-reviewer", "name": "Reviewer", "role": "reviewer"}),
    );
    let line = |id: &str, document: &str, station: &str| {
        json!({"provider": "metro.two", "id": id, "subject": "11010519491231002X",
            "type": "transport.fare_evasion", "occurred_at": "2026-03-01", "decided_at": "2026-03-02",
            "document": document, "fields": {"station": station}})
        .to_string()
    };
    let body = [
        line("ok-1", "ticket inspection", "People's Square"),
        line("nul-\u{0}", "ticket inspection", "Two"),
        line("nul-doc", "inspection\u{0}", "Two"),
        line("nul-field", "ticket inspection", "Two\u{0}"),
        line("ok-2", "page 1\npage 2", "Two"),
    ]
    .join("\n");
    let response = send(
        addr,
        "POST",
        "/v1/records",
        &provider,
        "application/x-ndjson",
        body.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let reply = response.json().unwrap();
    assert_eq!(reply["counts"]["stored"], 2, "{reply}");
    assert_eq!(reply["counts"]["rejected"], 3, "{reply}");
    let refused: Vec<(u64, &str, &str)> = reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "rejected")
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["code"].as_str().unwrap(),
                r["field"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            (2, "control_character", "id"),
            (3, "control_character", "document"),
            (4, "control_character", "fields.station"),
        ]
    );

    // Review and revocation take keys and reasons from the caller too.
    let review = |path: &str, body: serde_json::Value| {
        send(
            addr,
            "POST",
            path,
            &reviewer,
            "application/json",
            body.to_string().as_bytes(),
        )
    };
    let key = json!({"item": "record", "provider": "metro.two", "id": "nul-\u{0}"});
    let approve = review("/v1/review/approve", json!({"key": key}));
    assert_eq!(approve.status, 404, "{}", approve.text());
    assert_eq!(approve.json().unwrap()["error"]["code"], "not_pending");
    let reject = review("/v1/review/reject", json!({"key": key, "reason": "no"}));
    assert_eq!(reject.status, 404, "{}", reject.text());
    let held = json!({"item": "record", "provider": "metro.two", "id": "ok-1"});
    let reason = review(
        "/v1/review/reject",
        json!({"key": held, "reason": "wrong\u{0}"}),
    );
    assert_eq!(reason.status, 400, "{}", reason.text());
    assert_eq!(reason.json().unwrap()["error"]["code"], "invalid_reason");
    let revoke = send(
        addr,
        "DELETE",
        "/v1/admin/principals/nul-provider%00",
        &admin,
        "application/json",
        b"",
    );
    assert_eq!(revoke.status, 404, "{}", revoke.text());
    assert_eq!(revoke.json().unwrap()["error"]["code"], "unknown_principal");

    // The store serves on, and the good records' subject is consistent.
    let again = send(
        addr,
        "POST",
        "/v1/records",
        &provider,
        "application/x-ndjson",
        line("ok-3", "ticket inspection", "Two").as_bytes(),
    );
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json().unwrap()["counts"]["stored"], 1);
    let (code, report) = verify(&url);
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.contains("subjects: 1 checked") && report.contains("ok: the registry is consistent"),
        "{report}"
    );
}
