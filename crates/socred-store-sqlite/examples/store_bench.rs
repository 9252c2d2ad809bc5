//! Measures the SQLite store on its own, without HTTP: durable ingestion in
//! batches, single-subject state reads (one at a time, first right after
//! the ingest and then the same subjects again; and from several tasks),
//! audit appends in groups as the server's group commit makes them, and
//! the removal of those entries at the end of the log's retention, 10,000
//! to a transaction as the erasure run removes them. The workload is the
//! one of `socred-store-postgres`'s `compare` example (fare evasion
//! records spread over a population by a fixed xorshift), so the figures
//! line up with it.
//!
//! `cargo run --release -p socred-store-sqlite --example store_bench -- [records] [batch] [subjects] [reads] [runs] [audit appends] [entries per append]`
//!
//! Each run uses a fresh store in a temporary directory; medians are
//! printed last.

use std::sync::Arc;
use std::time::Instant;

use socred_core::record::Value;
use socred_core::{Day, Record, RecordKey, SubjectId};
use socred_store::conformance::{engine, read_concurrently};
use socred_store::{AuditDraft, Item, ReviewNeed, Store, Submission};
use socred_store_sqlite::SqliteStore;

fn arg(index: usize, default: usize) -> usize {
    std::env::args()
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Concurrent reader tasks in the throughput measure.
const READERS: usize = 8;

struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Clone, Copy, Debug)]
struct Measure {
    ingest_records_per_s: f64,
    read_latency_us: f64,
    read_again_latency_us: f64,
    reads_per_s: f64,
    audit_entries_per_s: f64,
    audit_removed_per_s: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total = arg(1, 100_000);
    let batch_size = arg(2, 1_000).max(1);
    let population = arg(3, 20_000);
    let reads = arg(4, 20_000);
    let runs = arg(5, 3).max(1);
    let audit_appends = arg(6, 300);
    // A decision each, as the server's group commit gathers them under load.
    let audit_group = arg(7, 32).max(1);
    let engine = engine();
    let fare = engine
        .rulebook
        .record_type("transport.fare_evasion")
        .ok_or("no fare type")?;
    let type_id = engine
        .rulebook
        .catalog
        .get(fare as usize)
        .ok_or("no fare type")?
        .id;
    let subjects: Vec<SubjectId> = (0..population)
        .filter_map(|n| {
            SubjectId::person(
                110_000 + (n / 1000) as u32,
                1980,
                1 + (n % 12) as i8,
                1,
                (n % 1000) as u16,
            )
        })
        .collect();
    if subjects.is_empty() {
        return Err("the population must hold at least one subject".into());
    }
    let pick = |r: u64| subjects[(r % subjects.len() as u64) as usize];
    let station: Arc<str> = Arc::from("Beijing South");
    let provider: Arc<str> = Arc::from("transport.rail");
    let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
    let mut batches = Vec::new();
    let mut sent = 0;
    while sent < total {
        let mut items = Vec::with_capacity(batch_size);
        for _ in 0..batch_size.min(total - sent) {
            let r = rng.next();
            let decided = Day(19_000 + (r >> 40) as i32 % 1500);
            items.push(Submission {
                item: Item::Record(Record {
                    key: RecordKey {
                        provider: provider.clone(),
                        id: format!("r{sent}").into(),
                    },
                    subject: pick(r),
                    type_index: fare,
                    type_id,
                    occurred_at: decided.add_days(-3),
                    decided_at: decided,
                    fields: [(Arc::from("station"), Value::Text(station.clone()))]
                        .into_iter()
                        .collect(),
                    document: None,
                }),
                submitted_by: "transport.rail".into(),
                review: ReviewNeed::NotRequired,
            });
            sent += 1;
        }
        batches.push(items);
    }
    let read_subjects: Vec<SubjectId> = (0..reads).map(|_| pick(rng.next())).collect();
    println!(
        "{total} records in batches of {batch_size} over {} subjects, {reads} state reads \
         ({READERS} tasks for throughput), {audit_appends} audit appends of {audit_group}, {runs} runs",
        subjects.len()
    );

    let mut measures = Vec::new();
    for run in 0..runs {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(dir.path())?;

        let start = Instant::now();
        for batch in &batches {
            store.ingest(&engine, batch.clone(), Vec::new()).await?;
        }
        let ingest = start.elapsed();

        let start = Instant::now();
        let mut found = 0usize;
        for subject in &read_subjects {
            found += usize::from(store.state(*subject).await?.is_some());
        }
        let sequential = start.elapsed();
        if found == 0 && reads > 0 {
            return Err("no subject read has a state".into());
        }
        // The same subjects again: what a read costs once its state has
        // been decoded (a store may keep it).
        let start = Instant::now();
        for subject in &read_subjects {
            store.state(*subject).await?;
        }
        let again = start.elapsed();

        let concurrent = read_concurrently(&store, &read_subjects, READERS).await?;

        let start = Instant::now();
        for n in 0..audit_appends {
            let drafts = (0..audit_group)
                .map(|i| AuditDraft {
                    at_ms: 1_767_225_600_000 + n as i64,
                    actor: "agency.rail".into(),
                    role: "agency".into(),
                    purpose: "ticket_sale".into(),
                    action: "decide".into(),
                    subject: Some(pick((n * audit_group + i) as u64 * 7919)),
                    detail: "measure no_rail_tickets: does not apply (rulebook test@1)".into(),
                })
                .collect();
            store.append_audit(drafts).await?;
        }
        let audit = start.elapsed();

        let start = Instant::now();
        let mut removed = 0;
        loop {
            let batch = store.prune_audit(u64::MAX, 10_000).await?;
            if batch == 0 {
                break;
            }
            removed += batch;
        }
        let removal = start.elapsed();

        let m = Measure {
            ingest_records_per_s: total as f64 / ingest.as_secs_f64(),
            read_latency_us: sequential.as_secs_f64() * 1e6 / reads.max(1) as f64,
            read_again_latency_us: again.as_secs_f64() * 1e6 / reads.max(1) as f64,
            reads_per_s: reads as f64 / concurrent.as_secs_f64(),
            audit_entries_per_s: (audit_appends * audit_group) as f64 / audit.as_secs_f64(),
            audit_removed_per_s: removed as f64 / removal.as_secs_f64(),
        };
        println!("run {run}: {m:?}");
        if run == 0 {
            let conn = rusqlite::Connection::open(store.path())?;
            for (what, sql) in [
                (
                    "average state bytes",
                    "SELECT CAST(AVG(LENGTH(state)) AS INTEGER) FROM states",
                ),
                ("subjects", "SELECT COUNT(*) FROM states"),
                ("database pages", "PRAGMA page_count"),
            ] {
                let value: i64 = conn.query_row(sql, [], |row| row.get(0))?;
                println!("  {what}: {value}");
            }
        }
        measures.push(m);
    }
    let med = |f: fn(&Measure) -> f64| median(measures.iter().map(f).collect());
    println!(
        "medians: ingest {:.0} records/s, state read {:.2} µs (again {:.2} µs), {:.0} reads/s with \
         {READERS} tasks, audit {:.0} entries/s in appends of {audit_group}, {:.0} removed/s",
        med(|m| m.ingest_records_per_s),
        med(|m| m.read_latency_us),
        med(|m| m.read_again_latency_us),
        med(|m| m.reads_per_s),
        med(|m| m.audit_entries_per_s),
        med(|m| m.audit_removed_per_s),
    );
    Ok(())
}
