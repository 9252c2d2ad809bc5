//! Measures the stored state form on one core: every state of a generated
//! population (`socred gen` data through the default rulebook, as the
//! store keeps them) is encoded with `encode_state` and read back with
//! `decode_state`; as a peer in the same run, each state is written as
//! JSON with `serde_json`.
//!
//! Run: `cargo run --release -p socred-store --example codec_speed [records] [runs]`
//! (default 300,000 records about 30,000 subjects, 5 runs).

use std::time::Instant;

use socred_core::{Day, Engine, Record};
use socred_schema::wire::{self, Item};
use socred_store::{decode_state, encode_state};

fn arg(index: usize, default: u64) -> u64 {
    std::env::args()
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let records = arg(1, 300_000);
    let runs = arg(2, 5).max(1);
    let rulebook = socred_schema::default_rulebook();
    let (Ok(start), Ok(end)) = (Day::parse("2021-01-01"), Day::parse("2026-10-31")) else {
        unreachable!("fixed dates parse")
    };
    let config = socred_sim::GenConfig {
        seed: 7,
        subjects: (records / 10).max(1),
        records,
        start,
        end,
    };
    let mut batch: Vec<Record> = Vec::new();
    let mut facts = Vec::new();
    let mut parser = wire::LineParser::new(&rulebook);
    let mut line_no = 0;
    socred_sim::generate(&config, &mut |line: &str| {
        line_no += 1;
        match parser.parse(line_no, line) {
            Ok((Item::Record(record), _)) => batch.push(record),
            Ok((Item::Fact { fact, .. }, _)) => facts.push(fact),
            Err(_) => {}
        }
    });
    let engine = Engine::new(rulebook.into());
    let states = engine.fold_all(&batch, &facts, end);
    let encoded: Vec<Vec<u8>> = states.iter().map(encode_state).collect();
    let bytes: usize = encoded.iter().map(Vec::len).sum();
    let json_bytes: usize = states
        .iter()
        .map(|s| serde_json::to_vec(s).map_or(0, |v| v.len()))
        .sum();
    println!(
        "{} states of {} records: {:.0} bytes a state encoded, {:.0} as JSON",
        states.len(),
        batch.len(),
        bytes as f64 / states.len() as f64,
        json_bytes as f64 / states.len() as f64
    );
    let (mut encode, mut decode, mut json) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let mut total = 0usize;
        for state in &states {
            total += encode_state(state).len();
        }
        encode.push(states.len() as f64 / started.elapsed().as_secs_f64());
        assert_eq!(total, bytes);

        let started = Instant::now();
        for (state, bytes) in states.iter().zip(&encoded) {
            let back = decode_state(state.subject, bytes).map(|s| s.records.len());
            assert_eq!(back.ok(), Some(state.records.len()));
        }
        decode.push(states.len() as f64 / started.elapsed().as_secs_f64());

        let started = Instant::now();
        let mut total = 0usize;
        for state in &states {
            total += serde_json::to_vec(state).map_or(0, |v| v.len());
        }
        json.push(states.len() as f64 / started.elapsed().as_secs_f64());
        assert_eq!(total, json_bytes);
    }
    let (encode, decode, json) = (median(encode), median(decode), median(json));
    println!(
        "encode_state: {encode:.0} states/s; decode_state: {decode:.0} states/s; \
         serde_json::to_vec (peer): {json:.0} states/s; encode takes {:.2}× the peer's time \
         (medians of {runs} runs)",
        json / encode
    );
}
