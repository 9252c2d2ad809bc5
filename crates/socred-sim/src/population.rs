//! The synthetic population: persons and organisations with valid, unique
//! identifiers in real regions, each with the few attributes the record
//! stream needs (profession, kind of organisation, whether the subject is
//! one of the "troubled" few that attract most negative records).
//!
//! Subjects are laid out so that every ninth one is an organisation (about
//! one organisation per eight persons), which keeps the layout a pure
//! function of the index.

use std::collections::HashSet;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use socred_core::{Day, Period, SubjectId};

use crate::json::Dates;
use crate::regions::REGIONS;

/// Stream of the seed's generator that draws the population; the record
/// stream uses another, so the population does not depend on `records`.
const POPULATION_STREAM: u64 = 1;

/// Professions a registry record may carry. The first [`KEY_GROUPS`] are the
/// "key groups" that rules may single out.
pub const PROFESSIONS: [&str; 12] = [
    "lawyer",
    "accountant",
    "teacher",
    "journalist",
    "doctor",
    "civil_servant",
    "engineer",
    "farmer",
    "worker",
    "merchant",
    "student",
    "retired",
];
const PROFESSION_WEIGHTS: [u32; 12] = [1, 2, 6, 1, 4, 4, 8, 15, 20, 10, 8, 12];
pub const KEY_GROUPS: usize = 6;
const STUDENT: u8 = 10;
const RETIRED: u8 = 11;
/// A person without a registered profession.
pub const NO_PROFESSION: u8 = u8::MAX;

/// Kinds of organisation: registration authority and type (USCC positions
/// 1-2), relative weight, and whether new-style `MA` codes are issued.
pub const ORG_CLASSES: [([u8; 2], u32); 8] = [
    (*b"91", 700), // enterprise
    (*b"92", 150), // individually owned business
    (*b"93", 30),  // farmers' cooperative
    (*b"12", 40),  // public institution
    (*b"11", 20),  // government body
    (*b"52", 30),  // private non-enterprise unit
    (*b"51", 20),  // social group
    (*b"53", 10),  // foundation
];

/// Share of persons and organisations that are "troubled", in thousandths.
const TROUBLED_PERSONS_PER_MILLE: u32 = 40;
const TROUBLED_ORGS_PER_MILLE: u32 = 60;
/// Share of persons who are "civic-minded", in thousandths (none of them
/// troubled): they get a large share of all positive conduct (see the
/// record stream), and are the few whom a red list of exemplary
/// residents names.
const CIVIC_PERSONS_PER_MILLE: u64 = 10;
/// Share of persons with a registered profession, in thousandths.
const PROFESSION_PER_MILLE: u32 = 850;

/// Tries to draw an identifier that is not taken yet before accepting a
/// duplicate. With ~5·10⁹ possible person numbers this only matters for
/// populations far beyond what one machine simulates; the bound keeps the
/// generator from ever hanging.
const DRAWS_MAX: u32 = 1000;

/// The most subjects whose room is reserved before drawing them.
const RESERVE_MAX: usize = 1 << 26;

const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// One subject as the record stream needs it. Everything the stream looks up
/// for a randomly chosen subject sits in one 24-byte row: one cache miss per
/// record instead of one per attribute.
#[derive(Clone, Copy, Debug)]
pub struct Subject {
    pub id: SubjectId,
    /// Index into [`REGIONS`].
    pub region: u16,
    /// A person's index into [`PROFESSIONS`] (or [`NO_PROFESSION`]); an
    /// organisation's index into [`ORG_CLASSES`].
    pub attribute: u8,
    pub troubled: bool,
}

pub struct Population {
    /// Every subject, by index; index % 9 == 8 is an organisation.
    pub subjects: Vec<Subject>,
    pub persons: Vec<u32>,
    pub orgs: Vec<u32>,
    pub troubled_persons: Vec<u32>,
    pub troubled_orgs: Vec<u32>,
    /// Civic-minded persons.
    pub civic_persons: Vec<u32>,
    /// Persons whose profession is in a key group.
    pub key_group_persons: Vec<u32>,
}

pub fn is_org_index(index: u64) -> bool {
    index % 9 == 8
}

impl Population {
    /// Draws `subjects` subjects; persons are 18 to 85 years old on `as_of`.
    pub fn new(seed: u64, subjects: u64, as_of: Day) -> Population {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(POPULATION_STREAM);
        let births = BirthRange::new(as_of);
        // Reserve up front, but never more than a sane amount: an absurd
        // request should fail by running out of memory gradually, not by
        // overflowing a capacity at once.
        let count = usize::try_from(subjects)
            .unwrap_or(usize::MAX)
            .min(RESERVE_MAX);
        let mut population = Population {
            subjects: Vec::with_capacity(count),
            persons: Vec::new(),
            orgs: Vec::new(),
            troubled_persons: Vec::new(),
            troubled_orgs: Vec::new(),
            civic_persons: Vec::new(),
            key_group_persons: Vec::new(),
        };
        let mut taken = HashSet::with_capacity(count);
        for index in 0..subjects {
            let Ok(index32) = u32::try_from(index) else {
                break;
            };
            if is_org_index(index) {
                population.add_org(&mut rng, &mut taken, index32);
            } else {
                population.add_person(&mut rng, &mut taken, &births, index32);
            }
        }
        population.civic_persons = (population.persons.iter().copied())
            .filter(|&index| !population.is_troubled(index) && civic(seed, index))
            .collect();
        population
    }

    fn add_person(
        &mut self,
        rng: &mut ChaCha8Rng,
        taken: &mut HashSet<SubjectId>,
        births: &BirthRange,
        index: u32,
    ) {
        let mut draws = 0;
        let (id, region, age_years) = loop {
            draws += 1;
            let region = rng.random_range(0..REGIONS.len());
            let birth = Day(rng.random_range(births.first.0..=births.last.0));
            let (year, month, day) = births.dates.parts(birth);
            let sequence = rng.random_range(0..1000u16);
            let code = REGIONS.get(region).map_or(110105, |r| r.code);
            let Some(id) = SubjectId::person(code, year, month, day, sequence) else {
                continue;
            };
            if taken.insert(id) || draws >= DRAWS_MAX {
                break (id, region, (births.as_of.0 - birth.0) / 365);
            }
        };
        let profession = draw_profession(rng, age_years);
        let troubled = rng.random_range(0..1000) < TROUBLED_PERSONS_PER_MILLE;
        self.push(id, region, profession, troubled);
        self.persons.push(index);
        if troubled {
            self.troubled_persons.push(index);
        }
        if (profession as usize) < KEY_GROUPS {
            self.key_group_persons.push(index);
        }
    }

    fn add_org(&mut self, rng: &mut ChaCha8Rng, taken: &mut HashSet<SubjectId>, index: u32) {
        let class = pick_weighted(rng, ORG_CLASSES.iter().map(|(_, weight)| *weight));
        let (registration, _) = ORG_CLASSES.get(class).copied().unwrap_or((*b"91", 1));
        let mut draws = 0;
        let (id, region) = loop {
            draws += 1;
            let region = rng.random_range(0..REGIONS.len());
            let code = REGIONS.get(region).map_or(110105, |r| r.code);
            let body = draw_org_body(rng, registration[0] == b'9');
            let Some(id) = SubjectId::organisation(registration, code, body) else {
                continue;
            };
            if taken.insert(id) || draws >= DRAWS_MAX {
                break (id, region);
            }
        };
        let troubled = rng.random_range(0..1000) < TROUBLED_ORGS_PER_MILLE;
        self.push(id, region, class as u8, troubled);
        self.orgs.push(index);
        if troubled {
            self.troubled_orgs.push(index);
        }
    }

    fn push(&mut self, id: SubjectId, region: usize, attribute: u8, troubled: bool) {
        let region = u16::try_from(region).unwrap_or(0);
        self.subjects.push(Subject {
            id,
            region,
            attribute,
            troubled,
        });
    }

    /// The subject at `index` (indices come from this population's own
    /// lists; a stray one reads as an empty row rather than panicking).
    pub fn get(&self, index: u32) -> Option<&Subject> {
        self.subjects.get(index as usize)
    }

    pub fn id_text(&self, index: u32) -> &str {
        self.get(index).map_or("", |s| s.id.as_str())
    }

    pub fn region_of(&self, index: u32) -> usize {
        self.get(index).map_or(0, |s| usize::from(s.region))
    }

    pub fn attribute_of(&self, index: u32) -> u8 {
        self.get(index).map_or(NO_PROFESSION, |s| s.attribute)
    }

    pub fn is_troubled(&self, index: u32) -> bool {
        self.get(index).is_some_and(|s| s.troubled)
    }

    /// The identifiers, in subject order.
    pub fn ids(&self) -> Vec<SubjectId> {
        self.subjects.iter().map(|s| s.id).collect()
    }
}

/// Whether the person at `index` is civic-minded: from a hash of the seed
/// and the index, which takes nothing from the population's generator, so
/// that the identifiers and other attributes stay what they were before
/// civic-minded persons existed.
fn civic(seed: u64, index: u32) -> bool {
    // SplitMix64's finaliser: every bit of the input moves the output.
    let mut z = seed ^ (u64::from(index) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z % 1000 < CIVIC_PERSONS_PER_MILLE
}

/// The days persons may be born on, with their calendar parts precomputed.
struct BirthRange {
    as_of: Day,
    first: Day,
    last: Day,
    dates: Dates,
}

impl BirthRange {
    /// Ages 18 to 85 on `as_of`. The reference day is clamped to
    /// [`crate::START_RANGE`] so that the whole range lies in 1900-2099,
    /// the birth years a person number may carry: the range never
    /// collapses, whatever day is asked for (`socred gen` refuses a first
    /// day outside it, where the ages would not hold).
    fn new(as_of: Day) -> BirthRange {
        let (earliest, latest) = crate::START_RANGE;
        let as_of = as_of.clamp(earliest, latest);
        let first = Period::years(86).before(as_of).add_days(1);
        let last = Period::years(18).before(as_of);
        BirthRange {
            as_of,
            first,
            last,
            dates: Dates::new(first, last),
        }
    }
}

fn draw_profession(rng: &mut ChaCha8Rng, age_years: i32) -> u8 {
    if rng.random_range(0..1000) >= PROFESSION_PER_MILLE {
        return NO_PROFESSION;
    }
    // Students are young and the retired old, whatever the overall mix says.
    if age_years < 23 && rng.random_bool(0.6) {
        return STUDENT;
    }
    if age_years >= 62 && rng.random_bool(0.7) {
        return RETIRED;
    }
    pick_weighted(rng, PROFESSION_WEIGHTS.iter().copied()) as u8
}

/// Eight body characters of an organisation code: new-style `MA…` codes for
/// most market entities, all-digit codes converted from the old system for
/// the rest.
fn draw_org_body(rng: &mut ChaCha8Rng, market_entity: bool) -> [u8; 8] {
    let mut body = [b'0'; 8];
    if market_entity && rng.random_range(0..10) < 8 {
        body[0] = b'M';
        body[1] = b'A';
        for slot in &mut body[2..] {
            *slot = USCC_ALPHABET
                .get(rng.random_range(0..31usize))
                .copied()
                .unwrap_or(b'0');
        }
    } else {
        for slot in &mut body {
            *slot = b'0' + rng.random_range(0..10u8);
        }
    }
    body
}

/// Picks an index with probability proportional to its weight.
pub fn pick_weighted(rng: &mut ChaCha8Rng, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = weights.clone().sum();
    if total == 0 {
        return 0;
    }
    let mut target = rng.random_range(0..total);
    let mut last = 0;
    for (index, weight) in weights.enumerate() {
        if target < weight {
            return index;
        }
        target -= weight;
        last = index;
    }
    last
}

#[cfg(test)]
mod tests {
    use socred_core::SubjectKind;

    use super::*;

    #[test]
    fn population_is_valid_unique_and_shaped() {
        let as_of = Day::parse("2026-01-01").expect("date");
        let population = Population::new(7, 9_000, as_of);
        let ids = population.ids();
        assert_eq!(ids.len(), 9_000);
        assert_eq!(population.orgs.len(), 1_000);
        assert_eq!(std::mem::size_of::<Subject>(), 24);
        let unique: HashSet<&SubjectId> = ids.iter().collect();
        assert_eq!(unique.len(), 9_000);
        for (index, id) in ids.iter().enumerate() {
            let parsed = SubjectId::parse(id.as_str()).expect("valid");
            assert_eq!(parsed.warning, None);
            let expected = if is_org_index(index as u64) {
                SubjectKind::Organisation
            } else {
                SubjectKind::Person
            };
            assert_eq!(parsed.id.kind(), expected, "{id}");
            if let Some((year, month, day)) = id.birth_date() {
                let birth = Day::from_ymd(year, month, day).expect("real date");
                let age_days = as_of.0 - birth.0;
                assert!(
                    (18 * 365..86 * 366).contains(&age_days),
                    "{id} is {age_days} days old"
                );
            }
        }
        let troubled = population.troubled_persons.len() as f64 / population.persons.len() as f64;
        assert!((0.02..0.07).contains(&troubled), "{troubled}");
        let civic = population.civic_persons.len() as f64 / population.persons.len() as f64;
        assert!((0.005..0.02).contains(&civic), "{civic}");
        assert!(population
            .civic_persons
            .iter()
            .all(|&index| !population.is_troubled(index) && !is_org_index(u64::from(index))));
        assert!(!population.key_group_persons.is_empty());
    }

    #[test]
    fn far_away_reference_days_still_give_valid_persons() {
        for text in ["1901-06-01", "2200-01-01"] {
            let population = Population::new(1, 50, Day::parse(text).expect("date"));
            assert_eq!(population.subjects.len(), 50);
        }
    }
}
