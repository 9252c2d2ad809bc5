//! Durable ingestion and single-subject state reads, PostgreSQL next to
//! SQLite: the same workload on both in the same run, each measured on a
//! fresh store, several runs, medians reported.
//!
//! PostgreSQL is a throwaway cluster started from the server binaries
//! (fsync on, over TCP on 127.0.0.1); SQLite is the embedded store in a
//! temporary directory (WAL, synchronous = FULL). Both acknowledge a batch
//! only once it is on disk. After each PostgreSQL run it also prints the
//! mean size of a stored state next to the mean size of its JSON (what
//! schema 1 stored), which unlike the timings does not depend on the load
//! of the machine.
//!
//! `cargo run --release -p socred-store-postgres --example compare -- [records] [batch] [subjects] [reads] [runs]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use socred_core::record::Value;
use socred_core::{Day, Engine, Record, RecordKey, SubjectId};
use socred_store::conformance::{engine, read_concurrently};
use socred_store::{close_open_ends, Item, ReviewNeed, Store, Submission};
use socred_store_postgres::cluster::Cluster;
use socred_store_postgres::{PostgresOptions, PostgresStore};
use socred_store_sqlite::SqliteStore;

fn arg(index: usize, default: usize) -> usize {
    std::env::args()
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Concurrent readers in the throughput measure.
const READERS: usize = 8;

struct Workload {
    subjects: Vec<SubjectId>,
    batches: Vec<Vec<Submission>>,
    /// Subjects read, in order.
    reads: Vec<SubjectId>,
}

/// Fare evasion records spread over a population by a fixed xorshift, as
/// the SQLite store's own ingest benchmark does.
fn workload(
    engine: &Engine,
    total: usize,
    batch: usize,
    population: usize,
    reads: usize,
) -> Result<Workload, String> {
    let fare = engine
        .rulebook
        .record_type("transport.fare_evasion")
        .ok_or("the rulebook has no fare evasion type")?;
    let type_id = engine.rulebook.catalog[fare as usize].id;
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
    let station: Arc<str> = Arc::from("Beijing South");
    let provider: Arc<str> = Arc::from("transport.rail");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut batches = Vec::new();
    let mut sent = 0;
    while sent < total {
        let mut items = Vec::with_capacity(batch);
        for _ in 0..batch.min(total - sent) {
            let r = next();
            let decided = Day(19_000 + (r >> 40) as i32 % 1500);
            let record = Record {
                key: RecordKey {
                    provider: provider.clone(),
                    id: format!("r{sent}").into(),
                },
                subject: subjects[(r % subjects.len() as u64) as usize],
                type_index: fare,
                type_id,
                occurred_at: decided.add_days(-3),
                decided_at: decided,
                fields: [(Arc::from("station"), Value::Text(station.clone()))]
                    .into_iter()
                    .collect(),
                document: None,
            };
            items.push(Submission {
                item: Item::Record(record),
                submitted_by: "transport.rail".into(),
                review: ReviewNeed::NotRequired,
            });
            sent += 1;
        }
        batches.push(items);
    }
    let reads = (0..reads)
        .map(|_| subjects[(next() % subjects.len() as u64) as usize])
        .collect();
    Ok(Workload {
        subjects,
        batches,
        reads,
    })
}

/// What one run measured on one store.
#[derive(Clone, Copy, Debug)]
struct Measure {
    ingest_records_per_s: f64,
    read_latency_us: f64,
    reads_per_s: f64,
}

async fn measure<S: Store + Clone>(
    store: S,
    engine: &Arc<Engine>,
    work: &Workload,
) -> Result<Measure, Box<dyn std::error::Error>> {
    let records: usize = work.batches.iter().map(Vec::len).sum();
    let start = Instant::now();
    for batch in &work.batches {
        store.ingest(engine, batch.clone(), Vec::new()).await?;
    }
    let ingest = start.elapsed();

    let start = Instant::now();
    let mut found = 0usize;
    for subject in &work.reads {
        found += usize::from(store.state(*subject).await?.is_some());
    }
    let sequential = start.elapsed();
    if found == 0 {
        return Err("no subject read has a state".into());
    }

    let concurrent = read_concurrently(&store, &work.reads, READERS).await?;
    let reads = work.reads.len() as f64;
    Ok(Measure {
        ingest_records_per_s: records as f64 / ingest.as_secs_f64(),
        read_latency_us: sequential.as_secs_f64() * 1e6 / reads,
        reads_per_s: reads / concurrent.as_secs_f64(),
    })
}

/// Mean bytes of a stored state, and of the same states as JSON, over
/// every subject of the workload that has one.
async fn state_sizes(
    url: &str,
    store: &PostgresStore,
    work: &Workload,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*), COALESCE(sum(octet_length(state)), 0)::int8 FROM states \
             WHERE state IS NOT NULL",
            &[],
        )
        .await?;
    let (count, stored): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    let (mut states, mut json) = (0usize, 0usize);
    for subject in &work.subjects {
        if let Some(state) = store.state(*subject).await? {
            // As schema 1 stored it: without the entries reaching it.
            let mut state = (*state).clone();
            state.derived.clear();
            close_open_ends(&mut state);
            json += serde_json::to_string(&state)?.len();
            states += 1;
        }
    }
    if count == 0 || states == 0 {
        return Err("no subject has a stored state".into());
    }
    Ok((stored as f64 / count as f64, json as f64 / states as f64))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total = arg(1, 100_000);
    let batch = arg(2, 1_000);
    let population = arg(3, 20_000);
    let reads = arg(4, 20_000);
    let runs = arg(5, 3);
    let engine = engine();
    let work = workload(&engine, total, batch, population, reads)?;
    let cluster = Cluster::start()?;
    println!(
        "{total} records in batches of {batch} over {} subjects, {reads} state reads ({READERS} readers for throughput), {runs} runs",
        work.subjects.len()
    );
    let mut sqlite = Vec::new();
    let mut postgres = Vec::new();
    for run in 0..runs {
        // Alternate which store goes first: the machine is shared and noisy.
        for first in [run % 2 == 0, run % 2 != 0] {
            if first {
                let dir = tempfile::tempdir()?;
                let store = SqliteStore::open(dir.path())?;
                let m = measure(store, &engine, &work).await?;
                println!("run {run} sqlite:   {m:?}");
                sqlite.push(m);
            } else {
                let url = cluster.create_database(&format!("compare_{run}")).await?;
                let store = PostgresStore::connect_with(&url, PostgresOptions::default()).await?;
                let m = measure(store.clone(), &engine, &work).await?;
                println!("run {run} postgres: {m:?}");
                let (stored, json) = state_sizes(&url, &store, &work).await?;
                println!(
                    "run {run} postgres: a stored state is {stored:.0} bytes on average, \
                     its JSON {json:.0} bytes ({:.2} of it)",
                    stored / json
                );
                postgres.push(m);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let pick = |ms: &[Measure], f: fn(&Measure) -> f64| median(ms.iter().map(f).collect());
    println!("\nmedians of {runs} runs        sqlite      postgres    postgres/sqlite");
    for (name, f) in [
        (
            "ingest, records/s      ",
            (|m: &Measure| m.ingest_records_per_s) as fn(&Measure) -> f64,
        ),
        ("state read latency, µs ", |m: &Measure| m.read_latency_us),
        ("state reads/s, 8 tasks ", |m: &Measure| m.reads_per_s),
    ] {
        let (s, p) = (pick(&sqlite, f), pick(&postgres, f));
        println!("{name} {s:>11.1} {p:>13.1} {:>12.2}", p / s);
    }
    Ok(())
}
