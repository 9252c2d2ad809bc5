//! Measures generator throughput: 10 million records for a million subjects
//! over three years, written to a sink that only counts bytes (so the figure
//! is the generator's, not the disk's).
//!
//! Run: `cargo run --release -p socred-sim --example gen_speed [records] [subjects]`

use std::time::Instant;

use socred_core::Day;
use socred_sim::{generate, population, GenConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let records = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000u64);
    let subjects = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000u64);
    let (Ok(start), Ok(end)) = (Day::parse("2024-01-01"), Day::parse("2026-12-31")) else {
        eprintln!("gen_speed: the built-in dates do not parse");
        std::process::exit(1);
    };
    let config = GenConfig {
        seed: 1,
        subjects,
        records,
        start,
        end,
    };
    let began = Instant::now();
    let subjects_drawn = population(config.seed, config.subjects, config.start).len();
    let population_s = began.elapsed().as_secs_f64();
    println!("population of {subjects_drawn} subjects alone: {population_s:.2} s");
    let mut bytes = 0u64;
    let began = Instant::now();
    let summary = generate(&config, &mut |line| bytes += line.len() as u64 + 1);
    let seconds = began.elapsed().as_secs_f64();
    let lines = summary.lines();
    println!(
        "{} records + {} facts = {lines} lines, {:.1} MB in {seconds:.2} s",
        summary.records,
        summary.facts,
        bytes as f64 / 1e6
    );
    println!(
        "{:.2} M lines/s, {:.1} MB/s (population of {} persons and {} organisations included)",
        lines as f64 / seconds / 1e6,
        bytes as f64 / seconds / 1e6,
        summary.persons,
        summary.organisations
    );
}
