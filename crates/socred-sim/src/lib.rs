//! Synthetic populations and record streams for socred: seeded, with valid
//! identifiers in real administrative regions and a realistic mix of
//! records, for demos, benchmarks and research.
//!
//! [`generate`] writes NDJSON lines in socred's wire format (records, and
//! later facts about records and subjects) to a sink, in a deterministic order:
//! the same [`GenConfig`] gives byte-identical output. The population is
//! held in memory (about 30 bytes per subject); records are never held.
//!
//! What the stream looks like:
//! - about one organisation per eight persons; persons are 18 to 85 years old
//!   on the first day;
//! - in the first 30 days, a profession record for most persons, a company
//!   registration for every organisation, and a consent grant for about 70 %
//!   of persons;
//! - every April, tax credit evaluations of the previous year;
//! - every day, an even share of conduct records: mostly positive conduct and
//!   minor commercial and social matters; judgment defaults about 2-3 % of all
//!   records, transport about 2 %, serious ones rare, and most negative
//!   records going to a few "troubled" subjects, and a large share of
//!   persons' positive conduct to a civic-minded few (one person in a
//!   hundred), whom a red list of exemplary residents names;
//! - follow-ups: most judgment defaults are fulfilled weeks or months later,
//!   a few records are disputed (and resolved), retracted or repaired, a few
//!   consents are withdrawn;
//! - about 0.1 % of records arrive late (dated months before their
//!   neighbours in the stream).

mod catalog;
mod json;
mod names;
mod population;
pub mod regions;
mod stream;

use std::collections::BTreeMap;

use socred_core::{Day, SubjectId};

/// The most subjects a population can have: each is numbered by a `u32`.
pub const SUBJECTS_MAX: u64 = 1 << 32;

/// The days a population may be drawn as of (the first day of the
/// records): persons are 18 to 85 years old that day, and a person number
/// carries a birth year from 1900 to 2099. 1986-01-01 and 2117-12-31.
pub const START_RANGE: (Day, Day) = (Day(5844), Day(54_055));

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenConfig {
    pub seed: u64,
    /// Persons and organisations together: at most [`SUBJECTS_MAX`], and
    /// in practice what fits in memory at about 70 bytes each (ten million
    /// take 0.7 GB).
    pub subjects: u64,
    /// Record lines; later facts come in addition.
    pub records: u64,
    /// First day of the stream; persons' ages are counted on it.
    pub start: Day,
    /// Last day of the stream (a day before `start` counts as `start`).
    pub end: Day,
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenSummary {
    pub persons: u64,
    pub organisations: u64,
    pub records: u64,
    pub facts: u64,
    /// Records dated well before the records around them in the stream.
    pub late_records: u64,
    /// Record lines per record type id.
    pub records_by_type: BTreeMap<&'static str, u64>,
}

impl GenSummary {
    pub fn lines(&self) -> u64 {
        self.records + self.facts
    }
}

/// Streams NDJSON lines (records and later facts, each line without the
/// trailing newline) to `sink`, in deterministic order; the same config gives
/// byte-identical output. Returns counts.
///
/// Exactly `config.records` record lines are written when there is at least
/// one subject, none otherwise.
pub fn generate(config: &GenConfig, sink: &mut dyn FnMut(&str)) -> GenSummary {
    stream::Generator::new(config, sink).run()
}

/// The population that [`generate`] uses for `seed` and `subjects` when its
/// range starts on `as_of`: persons and organisations in subject order (every
/// ninth one is an organisation).
pub fn population(seed: u64, subjects: u64, as_of: Day) -> Vec<SubjectId> {
    population::Population::new(seed, subjects, as_of).ids()
}

/// A data provider that the generator may name, with the record types it
/// reports: what an operator registers before loading generated records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderSpec {
    pub id: String,
    pub record_types: Vec<&'static str>,
}

/// Every provider the generator may name, in a stable order.
pub fn providers() -> Vec<ProviderSpec> {
    catalog::provider_names()
        .into_iter()
        .map(|(id, family)| {
            let record_types = catalog::ALL_TYPES
                .iter()
                .filter(|ty| ty.family() == family)
                .map(|ty| ty.id())
                .collect();
            ProviderSpec { id, record_types }
        })
        .collect()
}

/// Every record type id the generator may emit.
pub fn record_types() -> Vec<&'static str> {
    catalog::ALL_TYPES.iter().map(|ty| ty.id()).collect()
}

#[cfg(test)]
mod start_range_tests {
    use super::*;

    #[test]
    fn the_start_range_is_the_days_it_says() {
        assert_eq!(
            START_RANGE,
            (
                Day::from_ymd(1986, 1, 1).unwrap(),
                Day::from_ymd(2117, 12, 31).unwrap()
            )
        );
    }
}
