//! `socred backup` while `socred serve` ingests: the copy is one consistent
//! snapshot (`socred verify` passes on it), it holds every batch that was
//! acknowledged before the backup began, a server started on it answers
//! the tokens of the original, and both audit logs record the backup. And
//! `socred verify`, which checks backups, never makes a store of its own.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{batch, ingest, register_auditor, register_provider, start, subjects, BATCH_RECORDS};
use socred_server::client::Connection;

fn socred(args: &[&str], paths: &[&Path]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_socred"));
    command.args(args);
    for path in paths {
        command.arg(path);
    }
    command.output().expect("cannot run socred")
}

/// `socred backup --data DATA --to TO`.
fn run_backup(data: &Path, to: &Path) -> Output {
    socred(&["backup", "--to"], &[to, Path::new("--data"), data])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The audit log's entries as the auditor reads them.
fn audit_entries(addr: std::net::SocketAddr, auditor: &str) -> Vec<serde_json::Value> {
    let auth = format!("Bearer {auditor}");
    let response = socred_server::client::request(
        addr,
        "GET",
        "/v1/audit?limit=1000",
        &[("authorization", auth.as_str())],
        b"",
    )
    .expect("cannot read the audit log");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json().unwrap()["entries"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_backup_taken_while_the_server_ingests_verifies_and_serves() {
    let data = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let to = backups.path().join("backup-1");
    let subjects = Arc::new(subjects());
    let mut server = start(data.path(), true);
    let provider = register_provider(&server);
    let auditor = register_auditor(&server);
    let mut connection = Connection::open(server.addr).unwrap();
    let first = ingest(&mut connection, &provider, &batch(0, 0, &subjects)).unwrap();
    assert_eq!(first["counts"]["stored"], BATCH_RECORDS, "{first}");

    // Batches keep arriving while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (addr, provider, subjects, stop, sent) = (
            server.addr,
            provider.clone(),
            subjects.clone(),
            stop.clone(),
            sent.clone(),
        );
        std::thread::spawn(move || {
            let mut connection = Connection::open(addr).unwrap();
            let mut number = 1;
            while !stop.load(Ordering::Relaxed) {
                let reply =
                    ingest(&mut connection, &provider, &batch(0, number, &subjects)).unwrap();
                assert_eq!(reply["counts"]["stored"], BATCH_RECORDS, "{reply}");
                sent.fetch_add(1, Ordering::Relaxed);
                number += 1;
            }
        })
    };
    while sent.load(Ordering::Relaxed) < 2 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = socred(&["backup", "--data"], &[data.path()]);
    assert!(!output.status.success(), "--to is required");
    let output = run_backup(data.path(), &to);
    let report = text(&output.stdout);
    assert!(output.status.success(), "{report}{}", text(&output.stderr));
    assert!(report.contains("backup written to"), "{report}");
    let during = sent.load(Ordering::Relaxed);
    while sent.load(Ordering::Relaxed) < during + 2 {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("the sending thread failed");

    // The server's own log records the backup, naming where it went.
    let entries = audit_entries(server.addr, &auditor);
    let backup = entries
        .iter()
        .find(|entry| entry["action"] == "backup")
        .unwrap_or_else(|| panic!("no backup entry in {entries:?}"));
    assert_eq!(backup["actor"], "socred");
    assert!(
        backup["detail"].as_str().unwrap().contains("backup-1"),
        "{backup}"
    );
    let entry = backup["seq"].as_u64().unwrap();
    assert!(
        report.contains(&format!("audit entry {entry} recording it")),
        "{report}"
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // The copy is consistent: the chain holds and every state equals a
    // fresh fold of its records.
    let output = socred(&["verify", "--data"], &[&to]);
    let verified = text(&output.stdout);
    assert!(
        output.status.success(),
        "{verified}{}",
        text(&output.stderr)
    );
    assert!(
        verified.contains("ok: the registry is consistent"),
        "{verified}"
    );

    // Served, it holds the batch acknowledged before the backup (a replay is
    // all duplicates), knows the original's tokens, and its log ends with
    // the backup's own entry.
    let copy = start(&to, false);
    let mut connection = Connection::open(copy.addr).unwrap();
    let replay = ingest(&mut connection, &provider, &batch(0, 0, &subjects)).unwrap();
    assert_eq!(replay["counts"]["duplicate"], BATCH_RECORDS, "{replay}");
    let copied = audit_entries(copy.addr, &auditor);
    let position = copied
        .iter()
        .position(|e| e["action"] == "backup")
        .unwrap_or_else(|| panic!("no backup entry in the copy: {copied:?}"));
    assert_eq!(copied[position]["seq"], entry);
    assert_eq!(copied[position]["hash"], backup["hash"]);
    // After it, only what the copy's own server did: the replay.
    assert!(
        copied[position + 1..]
            .iter()
            .all(|e| e["actor"] == "crash-provider" || e["role"] == "auditor"),
        "{copied:?}"
    );
    drop(copy);

    // A backup goes into a new directory, from a real data directory.
    let output = run_backup(data.path(), &to);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("is not empty: a backup goes into a new directory"),
        "{}",
        text(&output.stderr)
    );
    let output = socred(
        &["backup", "--data"],
        &[
            backups.path(),
            Path::new("--to"),
            &backups.path().join("b2"),
        ],
    );
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("is not a socred data directory"),
        "{}",
        text(&output.stderr)
    );
}

/// `socred verify` checks a data directory as it finds it: one without a
/// store is refused, and left without one; a file in its place is named.
#[test]
fn verify_refuses_a_directory_without_a_store_and_leaves_it_empty() {
    let empty = tempfile::tempdir().unwrap();
    let output = socred(&["verify", "--data"], &[empty.path()]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        text(&output.stderr).contains("is not a socred data directory (it has no socred.sqlite)"),
        "{}",
        text(&output.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(empty.path()).unwrap().collect();
    assert!(left.is_empty(), "verify wrote {left:?}");

    // A file where the directory should be is named as what it is, by
    // verify and by serve alike.
    let file = empty.path().join("socred-data");
    std::fs::write(&file, "not a store").unwrap();
    let output = socred(&["verify", "--data"], &[&file]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        text(&output.stderr).contains("is not a socred data directory (it is not a directory)"),
        "{}",
        text(&output.stderr)
    );
    let output = socred(&["serve", "--listen", "127.0.0.1:0", "--data"], &[&file]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        text(&output.stderr).contains("is not a directory: --data names"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a store");

    // A directory a stopped backup left holds its copy under a temporary
    // name: serve does not make a new registry beside it.
    let stopped = tempfile::tempdir().unwrap();
    std::fs::write(stopped.path().join("socred.sqlite.partial"), "half a copy").unwrap();
    let output = socred(
        &["serve", "--listen", "127.0.0.1:0", "--data"],
        &[stopped.path()],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        text(&output.stderr).contains("a backup that was stopped before it finished"),
        "{}",
        text(&output.stderr)
    );
    assert!(!stopped.path().join("socred.sqlite").exists());
}
