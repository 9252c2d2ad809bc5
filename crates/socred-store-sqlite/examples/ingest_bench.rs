//! Measures durable ingestion into the SQLite store: batches of fare
//! evasion records spread over a population, each batch one transaction.
//!
//! `cargo run --release -p socred-store-sqlite --example ingest_bench -- [records] [batch] [subjects]`
//! (set `SOCRED_BENCH_DIR` to keep the database there).

use std::sync::Arc;
use std::time::Instant;

use socred_core::record::Value;
use socred_core::{Day, Record, RecordKey, SubjectId};
use socred_store::conformance::engine;
use socred_store::{Item, ReviewNeed, Store, Submission};
use socred_store_sqlite::SqliteStore;

fn arg(index: usize, default: usize) -> usize {
    std::env::args()
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total = arg(1, 500_000);
    let batch_size = arg(2, 5_000);
    let population = arg(3, 100_000);
    // SOCRED_BENCH_DIR keeps the database for a look afterwards (it must
    // not hold one yet); otherwise a temporary directory is used.
    let kept = std::env::var_os("SOCRED_BENCH_DIR").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir()?;
    let store = SqliteStore::open(kept.as_deref().unwrap_or(temp.path()))?;
    let engine = engine();
    let fare = engine
        .rulebook
        .record_type("transport.fare_evasion")
        .ok_or("no fare type")?;
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
    let station: Arc<str> = Arc::from("Beijing South");
    let provider: Arc<str> = Arc::from("transport.rail");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        let mut batch = Vec::with_capacity(batch_size);
        for _ in 0..batch_size.min(total - sent) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let subject = subjects[(rng % subjects.len() as u64) as usize];
            let decided = Day(19_000 + (rng >> 40) as i32 % 1500);
            let record = Record {
                key: RecordKey {
                    provider: provider.clone(),
                    id: Arc::from(format!("r{sent}")),
                },
                subject,
                type_index: fare,
                type_id: engine.rulebook.catalog[fare as usize].id.clone(),
                occurred_at: decided.add_days(-3),
                decided_at: decided,
                fields: [(Arc::from("station"), Value::Text(station.clone()))]
                    .into_iter()
                    .collect(),
                document: None,
            };
            batch.push(Submission {
                item: Item::Record(record),
                submitted_by: "transport.rail".into(),
                review: ReviewNeed::NotRequired,
            });
            sent += 1;
        }
        store.ingest(&engine, batch, Vec::new()).await?;
    }
    let elapsed = start.elapsed();
    println!(
        "{total} records in batches of {batch_size} over {population} subjects: {:.2} s, {:.0} records/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
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
        println!("{what}: {value}");
    }
    Ok(())
}
