//! `cargo xtask`: benchmark workloads. Benchmarks are not tests: they print
//! figures (medians of several runs) for BENCHMARKS.md, with the machine.
//!
//! - `cargo xtask bench-fold --records 10000000` — the fold through the
//!   default rulebook, records per second per core;
//! - `cargo xtask bench-decide` — in-process decisions per second per core;
//! - `cargo xtask bench-http-decide` / `bench-http-ingest` — load tests of
//!   `socred serve` over HTTP on 127.0.0.1 (see `http.rs`).

mod http;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use socred_core::record::Fields;
use socred_core::{Day, Engine, Fact, Record, RecordKey, Value};
use socred_schema::wire::{self, Item};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Every workload is a benchmark, and the subcommands say so (`bench-…`).
#[allow(clippy::enum_variant_names)]
#[derive(Subcommand)]
enum Command {
    /// Folds generated records through the default rulebook.
    BenchFold {
        #[arg(long, default_value_t = 10_000_000)]
        records: u64,
        #[arg(long, default_value_t = 1_000_000)]
        subjects: u64,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Also time the fold of the same records handed over subject by
        /// subject, each subject's records together in memory, as a store
        /// reads them (a second figure; holds a second copy of the records).
        #[arg(long)]
        grouped: bool,
        /// Time only the grouped figure (to profile the fold as a store
        /// runs it, without the end-to-end runs in the same samples).
        #[arg(long, requires = "grouped")]
        grouped_only: bool,
        /// Also print a digest of what the fold gives (every state as JSON,
        /// its standing, its full credit file and every decision), to check
        /// that a change to the fold leaves its output byte for byte alike.
        #[arg(long)]
        digest: bool,
    },
    /// Decides every measure for generated subjects, in process.
    BenchDecide {
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        #[arg(long, default_value_t = 100_000)]
        subjects: u64,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Single decisions over HTTP against `socred serve` on 127.0.0.1.
    BenchHttpDecide(http::DecideArgs),
    /// Durable NDJSON batch ingest over HTTP against `socred serve` on 127.0.0.1.
    BenchHttpIngest(http::IngestArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::BenchFold {
            records,
            subjects,
            runs,
            seed,
            grouped,
            grouped_only,
            digest,
        } => bench_fold(
            records,
            subjects,
            runs,
            seed,
            (grouped, grouped_only),
            digest,
        ),
        Command::BenchDecide {
            records,
            subjects,
            runs,
            seed,
        } => bench_decide(records, subjects, runs, seed),
        Command::BenchHttpDecide(args) => http::bench_http_decide(&args),
        Command::BenchHttpIngest(args) => http::bench_http_ingest(&args),
    }
}

/// The day every benchmark reads files as of.
fn as_of() -> Day {
    Day::parse("2026-11-01").unwrap_or(Day(20_758))
}

/// Generates and parses a population (not timed), with one parser for the
/// whole stream as `socred` reads a file: provider names are shared
/// between records, as they are in the CLI and the server.
fn population(records: u64, subjects: u64, seed: u64) -> anyhow::Result<(Vec<Record>, Vec<Fact>)> {
    let rulebook = socred_schema::default_rulebook();
    let config = socred_sim::GenConfig {
        seed,
        subjects,
        records,
        start: Day::parse("2021-01-01").context("start")?,
        end: Day::parse("2026-10-31").context("end")?,
    };
    let mut out_records = Vec::with_capacity(records as usize);
    let mut out_facts = Vec::new();
    let mut rejected = 0u64;
    let mut line_no = 0usize;
    let started = Instant::now();
    let mut parser = wire::LineParser::new(&rulebook);
    socred_sim::generate(&config, &mut |line: &str| {
        line_no += 1;
        match parser.parse(line_no, line) {
            Ok((Item::Record(record), _)) => out_records.push(record),
            Ok((Item::Fact { fact, .. }, _)) => out_facts.push(fact),
            Err(_) => rejected += 1,
        }
    });
    anyhow::ensure!(rejected == 0, "{rejected} generated lines were rejected");
    eprintln!(
        "generated and parsed {} records and {} facts in {:.1}s",
        out_records.len(),
        out_facts.len(),
        started.elapsed().as_secs_f64()
    );
    Ok((out_records, out_facts))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// Time this thread has run on a processor, in seconds, from
/// /proc/thread-self/schedstat (Linux only). On a shared machine the wall
/// clock also counts the time other processes held the cores; this does not.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(nanos / 1e9)
}

/// Processor seconds since `started` (NaN when /proc cannot say).
fn cpu_seconds_since(started: Option<f64>) -> f64 {
    match (started, thread_cpu_seconds()) {
        (Some(started), Some(now)) => now - started,
        _ => f64::NAN,
    }
}

/// Peak resident memory of this process, from /proc (Linux only).
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The fold end to end: from the parsed records and facts of a whole batch
/// to the evaluated file of every subject (`Engine::fold_all`, then
/// `Engine::evaluate` of each state). With `grouped`, a second figure: the
/// same work when the records come subject by subject, each subject's
/// records together in memory, as a store hands them over.
fn bench_fold(
    records: u64,
    subjects: u64,
    runs: usize,
    seed: u64,
    (grouped, grouped_only): (bool, bool),
    digest: bool,
) -> anyhow::Result<()> {
    let (records_v, facts) = population(records, subjects, seed)?;
    let engine = Engine::new(Arc::new(socred_schema::default_rulebook()));
    let day = as_of();
    if digest {
        println!(
            "digest of the fold, files and decisions: {:016x}",
            fold_digest(&engine, &records_v, &facts, day)?
        );
    }
    let mut rates = Vec::new();
    let mut cpu_rates = Vec::new();
    let mut states_len = 0;
    let end_to_end_runs = if grouped_only { 0 } else { runs.max(1) };
    for run in 0..end_to_end_runs {
        let started = Instant::now();
        let cpu_started = thread_cpu_seconds();
        let states = engine.fold_all(&records_v, &facts, day);
        let mut scored = 0usize;
        for state in &states {
            let standing = engine.evaluate(state, day);
            scored += usize::from(standing.score().is_some());
        }
        let seconds = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds_since(cpu_started);
        let rate = records_v.len() as f64 / seconds;
        let cpu_rate = records_v.len() as f64 / cpu;
        eprintln!(
            "run {run}: {} subjects ({scored} scored) in {seconds:.2}s = {rate:.0} records/s ({cpu:.2}s on a core = {cpu_rate:.0} records/s)",
            states.len()
        );
        states_len = states.len();
        rates.push(rate);
        cpu_rates.push(cpu_rate);
        drop(states);
    }
    if end_to_end_runs > 0 {
        println!(
            "fold: {} records, {} facts, {} subjects, 1 thread: median {:.0} records/s over {} runs ({:.0} records/s of processor time); peak memory {:.0} MiB",
            records_v.len(),
            facts.len(),
            states_len,
            median(rates),
            end_to_end_runs,
            median(cpu_rates),
            peak_memory_mib().unwrap_or(f64::NAN)
        );
    }
    if grouped {
        bench_fold_grouped(&engine, &records_v, &facts, runs, day);
    }
    Ok(())
}

/// A hash of everything the fold of `records` and `facts` gives: each
/// state as JSON (its keys in sorted order, so that moving a field within
/// a struct leaves the digest alone), its full credit file and each decision (as their debug
/// text), in subject order. (The standing, an intermediate, is left out
/// since 2026-11-24: it holds only the expectation penalties that bear on
/// the day, the full file all of them.) `DefaultHasher::new` has fixed keys,
/// so the digest is the same from run to run and build to build.
fn fold_digest(
    engine: &Engine,
    records: &[Record],
    facts: &[Fact],
    day: Day,
) -> anyhow::Result<u64> {
    use std::hash::Hasher as _;
    let mut hasher = std::hash::DefaultHasher::new();
    for state in engine.fold_all(records, facts, day) {
        hasher.write(&serde_json::to_vec(&serde_json::to_value(&state)?)?);
        let standing = engine.evaluate(&state, day);
        let file = engine.credit_file(&standing, socred_core::Detail::Full);
        hasher.write(format!("{file:?}").as_bytes());
        for measure in &engine.rulebook.measures {
            hasher.write(format!("{:?}", engine.decide(&standing, measure)).as_bytes());
        }
    }
    Ok(hasher.finish())
}

/// The second figure of [`bench_fold`]: the records copied subject by
/// subject (fresh allocations, so that each subject's records, ids and
/// fields lie together, as when a store decodes a page of subjects), then,
/// timed, `Engine::fold_all_unreached` (which groups such a batch in one
/// pass), `Engine::pass_on_reach` and `Engine::evaluate` of every state:
/// `fold_all` and the evaluation, split in three.
fn bench_fold_grouped(engine: &Engine, records: &[Record], facts: &[Fact], runs: usize, day: Day) {
    let mut order: Vec<&Record> = records.iter().collect();
    order.sort_by_key(|r| r.subject);
    let copied: Vec<Record> = order.into_iter().map(deep_copy).collect();
    let mut facts_sorted: Vec<Fact> = facts.to_vec();
    facts_sorted.sort_by_key(|f| f.subject);
    let mut rates = Vec::new();
    let mut cpu_rates = Vec::new();
    for run in 0..runs.max(1) {
        let started = Instant::now();
        let cpu_started = thread_cpu_seconds();
        let mut states = engine.fold_all_unreached(&copied, &facts_sorted, day);
        let folded = started.elapsed().as_secs_f64();
        engine.pass_on_reach(&mut states, day);
        let reached = started.elapsed().as_secs_f64();
        let mut scored = 0usize;
        for state in &states {
            scored += usize::from(engine.evaluate(state, day).score().is_some());
        }
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "grouped run {run}: fold {folded:.2}s, pass on reach {:.2}s, evaluate {:.2}s",
            reached - folded,
            seconds - reached
        );
        let cpu = cpu_seconds_since(cpu_started);
        let rate = copied.len() as f64 / seconds;
        let cpu_rate = copied.len() as f64 / cpu;
        eprintln!(
            "grouped run {run}: {} subjects ({scored} scored) in {seconds:.2}s = {rate:.0} records/s ({cpu:.2}s on a core = {cpu_rate:.0} records/s)",
            states.len()
        );
        rates.push(rate);
        cpu_rates.push(cpu_rate);
    }
    println!(
        "fold of records grouped by subject (as a store hands them over), 1 thread: median {:.0} records/s over {} runs ({:.0} records/s of processor time); peak memory {:.0} MiB (with both copies)",
        median(rates),
        runs.max(1),
        median(cpu_rates),
        peak_memory_mib().unwrap_or(f64::NAN)
    );
}

/// A record in fresh allocations (its id, fields and field values), so
/// that records copied one after another lie together in memory. Names
/// shared by every record (provider, type, field names) stay shared.
fn deep_copy(record: &Record) -> Record {
    let fields: Fields = record
        .fields
        .iter()
        .map(|(name, value)| {
            let value = match value {
                Value::Text(text) => Value::Text(Arc::from(&**text)),
                other => other.clone(),
            };
            (name.clone(), value)
        })
        .collect();
    Record {
        key: RecordKey {
            provider: record.key.provider.clone(),
            id: socred_core::RecordId::from(&*record.key.id),
        },
        subject: record.subject,
        type_index: record.type_index,
        type_id: record.type_id,
        occurred_at: record.occurred_at,
        decided_at: record.decided_at,
        fields,
        document: record.document.as_deref().map(Arc::from),
    }
}

fn bench_decide(records: u64, subjects: u64, runs: usize, seed: u64) -> anyhow::Result<()> {
    let (records_v, facts) = population(records, subjects, seed)?;
    let engine = Engine::new(Arc::new(socred_schema::default_rulebook()));
    let day = as_of();
    let states = engine.fold_all(&records_v, &facts, day);
    let standings: Vec<_> = states.iter().map(|s| engine.evaluate(s, day)).collect();
    let measures = &engine.rulebook.measures;
    let mut rates = Vec::new();
    let mut applied = 0u64;
    for run in 0..runs.max(1) {
        let started = Instant::now();
        let mut decisions = 0u64;
        applied = 0;
        for standing in &standings {
            for measure in measures {
                let decision = engine.decide(standing, measure);
                applied += u64::from(decision.applies);
                decisions += 1;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let rate = decisions as f64 / seconds;
        eprintln!(
            "run {run}: {decisions} decisions ({applied} apply) in {seconds:.2}s = {rate:.0}/s"
        );
        rates.push(rate);
    }
    println!(
        "decide: {} subjects x {} measures, 1 thread: median {:.0} decisions/s over {} runs ({} apply); peak memory {:.0} MiB",
        standings.len(),
        measures.len(),
        median(rates),
        runs.max(1),
        applied,
        peak_memory_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}
