//! Measures NDJSON parse throughput on one core: a synthetic file of
//! records and later facts (seeded, in memory) is read with
//! `wire::read_ndjson` on a pool of one thread, and, as a
//! peer in the same run, merely parsed into `serde_json::Value` per line.
//!
//! Run: `cargo run --release -p socred-schema --example parse_speed [lines]`
//! (default 1,000,000 lines).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use socred_core::record::FieldType;
use socred_core::rulebook::{FieldDef, KindSet, RecordType, Severity};
use socred_core::time::Period;
use socred_core::{Rulebook, SubjectId};
use socred_schema::wire;

fn record_type(id: &str, subject_kinds: KindSet, fields: &[(&str, FieldType, bool)]) -> RecordType {
    RecordType {
        id: socred_core::Name::new(id),
        title: id.to_string(),
        subject_kinds,
        category: "bench".to_string(),
        severity: Severity::General,
        legal_basis: "bench".to_string(),
        fields: fields
            .iter()
            .map(|&(name, field_type, required)| FieldDef::new(name, field_type, required))
            .collect(),
        retention: Period::years(5),
        publicity: None,
        publicity_min: Period::default(),
        consent_required: false,
        profession_field: None,
        relation_fields: Vec::new(),
        dispute_policy: Default::default(),
    }
}

fn rulebook() -> Rulebook {
    let catalog = vec![
        record_type(
            "judicial.judgment_default",
            KindSet::ALL,
            &[
                ("amount_yuan", FieldType::Int, true),
                ("case_no", FieldType::Text, true),
            ],
        ),
        record_type(
            "transport.fare_evasion",
            KindSet {
                person: true,
                organisation: false,
            },
            &[
                ("station", FieldType::Text, false),
                ("fare_yuan", FieldType::Number, false),
            ],
        ),
    ];
    let catalog_index: BTreeMap<socred_core::Name, u32> = catalog
        .iter()
        .enumerate()
        .map(|(index, rt)| (rt.id, index as u32))
        .collect();
    Rulebook {
        id: Arc::from("bench"),
        version: Arc::from("1"),
        catalog,
        models: Vec::new(),
        lists: Vec::new(),
        measures: Vec::new(),
        calendar: Default::default(),
        objection_deadline: socred_core::rulebook::Rulebook::OBJECTION_DEADLINE_DEFAULT,
        audit_retention: None,
        catalog_index,
    }
}

/// A small xorshift generator: the file is the same on every run.
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn synthetic(lines: usize) -> String {
    let mut rng = Seeded(0x5eed_cafe);
    let subjects: Vec<SubjectId> = (0..10_000)
        .filter_map(|i| {
            let year = 1950 + (i % 60) as i16;
            SubjectId::person(
                110_105,
                year,
                1 + (i % 12) as i8,
                1 + (i % 28) as i8,
                (i % 1000) as u16,
            )
        })
        .collect();
    let mut text = String::with_capacity(lines * 300);
    for n in 0..lines {
        let subject = subjects[rng.below(subjects.len() as u64) as usize];
        let day = 1 + rng.below(28);
        let line = match rng.below(10) {
            0..=5 => format!(
                r#"{{"provider": "court.beijing-{}", "id": "2026-zhi-{n:08}", "subject": "{subject}", "type": "judicial.judgment_default", "occurred_at": "2026-03-{day:02}", "decided_at": "2026-04-{day:02}", "fields": {{"amount_yuan": {}, "case_no": "(2026) Jing 01 Zhi {n}"}}, "document": "court decision (2026) Jing 01 Zhi {n}"}}"#,
                rng.below(20),
                rng.below(1_000_000)
            ),
            6..=8 => format!(
                r#"{{"provider": "metro.shanghai", "id": "fe-{n}", "subject": "{subject}", "type": "transport.fare_evasion", "occurred_at": "2026-03-{day:02}T08:15:00+08:00", "decided_at": "2026-03-{day:02}", "fields": {{"station": "People's Square", "fare_yuan": 4.5}}}}"#
            ),
            _ => format!(
                r#"{{"fact": "retracted", "provider": "court.beijing-1", "record": "2026-zhi-{n:08}", "subject": "{subject}", "at": "2026-05-{day:02}"}}"#
            ),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

fn main() {
    let lines: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(1_000_000);
    let rulebook = rulebook();
    let text = synthetic(lines);
    println!(
        "{lines} lines, {:.1} MiB",
        text.len() as f64 / (1024.0 * 1024.0)
    );

    // On one thread, as the peer below: the figure is per core
    // (`read_ndjson` parses on every thread of the pool it runs in).
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a thread pool");
    let start = Instant::now();
    let mut items = 0u64;
    let counts = one_thread
        .install(|| wire::read_ndjson(&rulebook, text.as_bytes(), |_| items += 1, |_| {}, |_| {}));
    let wire_s = start.elapsed().as_secs_f64();
    let counts = counts.unwrap_or_default();
    assert_eq!(counts.rejections, 0, "the synthetic file is valid");
    println!(
        "wire::read_ndjson:          {:>10.0} lines/s ({} items, {:.2} s)",
        lines as f64 / wire_s,
        items,
        wire_s
    );

    let start = Instant::now();
    let mut objects = 0u64;
    for line in text.lines() {
        if let Ok(serde_json::Value::Object(_)) = serde_json::from_str::<serde_json::Value>(line) {
            objects += 1;
        }
    }
    let value_s = start.elapsed().as_secs_f64();
    println!(
        "peer: serde_json::Value:    {:>10.0} lines/s ({} objects, {:.2} s)",
        lines as f64 / value_s,
        objects,
        value_s
    );
    println!("ratio (wire / peer time):   {:.2}", wire_s / value_s);
}
