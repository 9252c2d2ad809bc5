//! Crash test: `socred serve` is killed with SIGKILL at random moments while
//! a client ingests batches over HTTP, several times, then restarted. Every
//! batch the server acknowledged must still be stored (a replay of it
//! answers `duplicate` for every item), and `socred verify` must find the
//! audit chain intact and every subject's state equal to its records.
//!
//! Bounded: five kills, each within two seconds of the start of ingestion.
//! The moments come from a seed printed on failure (`SOCRED_CRASH_SEED`
//! repeats a run).

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{batch, ingest, register_provider, start, subjects, BATCH_RECORDS};
use socred_server::client::Connection;

const KILLS: usize = 5;

/// A small linear congruential generator: enough for kill moments.
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, max: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % max
    }
}

#[test]
fn acknowledged_records_survive_kill_9_and_verify_passes() {
    let seed = std::env::var("SOCRED_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("crash test seed {seed} (set SOCRED_CRASH_SEED={seed} to repeat)");
    let mut moments = Moments(seed);
    let data = tempfile::tempdir().unwrap();
    let subjects = Arc::new(subjects());
    let mut server = start(data.path(), true);
    let token = register_provider(&server);
    // (round, batch) of every batch the server acknowledged.
    let acknowledged: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();

    for round in 0..KILLS {
        if round > 0 {
            server = start(data.path(), false);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let (addr, token, subjects, acknowledged, stop) = (
                server.addr,
                token.clone(),
                subjects.clone(),
                acknowledged.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let Ok(mut connection) = Connection::open(addr) else {
                    return;
                };
                for number in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match ingest(&mut connection, &token, &batch(round, number, &subjects)) {
                        Ok(reply) => {
                            assert_eq!(
                                reply["counts"]["stored"], BATCH_RECORDS,
                                "batch {round}/{number}: {reply}"
                            );
                            acknowledged.lock().unwrap().push((round, number));
                        }
                        // The server died under the request: not acknowledged.
                        Err(_) => return,
                    }
                }
            })
        };
        let started = Instant::now();
        let delay = Duration::from_millis(100 + moments.next_ms(1900));
        std::thread::sleep(delay);
        server.child.kill().expect("cannot kill the server");
        server.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        sender.join().expect("the sending thread failed");
        eprintln!("round {round}: killed after {:?}", started.elapsed());
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        !acknowledged.is_empty(),
        "no batch was acknowledged before the kills (seed {seed})"
    );
    let server = start(data.path(), false);
    let mut connection = Connection::open(server.addr).unwrap();
    for &(round, number) in &acknowledged {
        let reply = ingest(&mut connection, &token, &batch(round, number, &subjects)).unwrap();
        assert_eq!(
            reply["counts"]["duplicate"], BATCH_RECORDS,
            "acknowledged batch {round}/{number} was lost (seed {seed}): {reply}"
        );
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_socred"))
        .args(["verify", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "socred verify failed (seed {seed}):\n{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("hash chain intact"), "{report}");
    eprintln!(
        "{} acknowledged batches survived {KILLS} kills\n{report}",
        acknowledged.len()
    );
}
