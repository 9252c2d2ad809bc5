//! What the tests that run `socred serve` as a child process share: start
//! it, register principals, and send batches of records.

#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::json;
use socred_core::SubjectId;
use socred_server::client::Connection;

pub const BATCH_RECORDS: usize = 200;
pub const PROVIDER: &str = "metro.crash";

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The operator token, printed on the first start only.
    pub admin_token: Option<String>,
}

/// A server left running when its test ends, passes or panics would
/// outlive it: it is killed (again, if the test killed it already).
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `socred serve` on a free port; on the first start, also reads
/// the operator token it prints.
pub fn start(data: &Path, first: bool) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_socred"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start socred serve");
    let stdout = child.stdout.take().expect("no stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut next = || {
        lines
            .next()
            .and_then(Result::ok)
            .expect("socred serve stopped before it was listening")
    };
    let listening = next();
    let text = listening
        .split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next());
    let addr = text
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no address in `{listening}`"));
    let admin_token = first.then(|| {
        let line = next();
        let token = line
            .split("(shown once): ")
            .nth(1)
            .unwrap_or_else(|| panic!("no operator token in `{line}`"));
        token.trim().to_string()
    });
    // Keep reading, so that the server never writes to a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        addr,
        admin_token,
    }
}

pub fn subjects() -> Vec<SubjectId> {
    (0..300)
        .filter_map(|i| {
            SubjectId::person(
                110105,
                1960 + (i % 40) as i16,
                1 + (i % 12) as i8,
                1 + (i % 28) as i8,
                i as u16 + 1,
            )
        })
        .collect()
}

pub fn batch(round: usize, number: usize, subjects: &[SubjectId]) -> String {
    let mut lines = Vec::with_capacity(BATCH_RECORDS);
    for i in 0..BATCH_RECORDS {
        let subject = subjects[(number * 7 + i) % subjects.len()];
        let day = format!("2026-0{}-{:02}", 1 + (i % 5), 1 + (i % 28));
        lines.push(
            json!({"provider": PROVIDER, "id": format!("r{round}-b{number}-{i}"), "subject": subject.to_string(),
                "type": "transport.fare_evasion", "occurred_at": day, "decided_at": day, "fields": {"station": "Crash"}})
            .to_string(),
        );
    }
    lines.join("\n")
}

pub fn ingest(
    connection: &mut Connection,
    token: &str,
    body: &str,
) -> std::io::Result<serde_json::Value> {
    let auth = format!("Bearer {token}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/x-ndjson"),
    ];
    let response = connection.send(
        "POST",
        "/v1/records?report=problems",
        &headers,
        body.as_bytes(),
    )?;
    if response.status != 200 {
        return Err(std::io::Error::other(format!(
            "status {}: {}",
            response.status,
            response.text()
        )));
    }
    response.json()
}

/// Registers a provider of fare evasions in scope [`PROVIDER`]; its token.
pub fn register_provider(server: &Server) -> String {
    register(
        server,
        json!({"id": "crash-provider", "name": "Crash test provider", "role": "provider", "scope": PROVIDER,
            "record_types": ["transport.fare_evasion"]}),
    )
}

/// Registers an auditor; its token.
pub fn register_auditor(server: &Server) -> String {
    register(
        server,
        json!({"id": "test-auditor", "name": "Test auditor", "role": "auditor"}),
    )
}

/// Registers the principal `body` with the operator token of the first
/// start; the token issued.
fn register(server: &Server, body: serde_json::Value) -> String {
    let token = server
        .admin_token
        .as_deref()
        .expect("the first start prints an operator token");
    let body = body.to_string();
    let auth = format!("Bearer {token}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let response = socred_server::client::request(
        server.addr,
        "POST",
        "/v1/admin/principals",
        &headers,
        body.as_bytes(),
    )
    .expect("cannot register the principal");
    assert_eq!(response.status, 201, "{}", response.text());
    response.json().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}
