//! Random sequences of writes, applied to the backend under test and to
//! the in-memory fake ([`MemoryStore`]) side by side: every outcome,
//! every state, the review queue, the lists, the counts and the records
//! read back must agree after every step, and every stored state must
//! equal a fresh fold of its records at the end.
//!
//! The examples of the rest of the suite each show one behaviour; these
//! sequences mix them as traffic does: records sent late and out of
//! order, keys reused with other content, replays, facts about records
//! that wait for review or belong to someone else, corrections of
//! corrected records, disputes resolved either way, consent going back
//! and forth, a company's legal representative changing, approvals and
//! rejections (some by the submitter), a rulebook change and erasure at
//! the end of retention. Each sequence is seeded, so a failure names its
//! seed and step and replays the same way.

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use socred_core::record::Outcome as Resolution;
use socred_core::record::{Fields, Value};
use socred_core::{Engine, Fact, FactKind, Record, SubjectId};

use super::{
    day, engine_with, fields, judgment_fields, organisation, person, record, text, DEFAULTERS,
    FARE_EVASION, FULFILLED, JUDGMENT, REGISTRATION, VOLUNTEER,
};
use crate::{verify_states, AuditDraft, Item, ItemKey, MemoryStore, ReviewNeed, Store, Submission};

/// Sequences run against one store, each about subjects of its own.
const SEEDS: u64 = 6;
/// Steps in a sequence.
const STEPS: usize = 40;
/// Persons and organisations in a sequence.
const PERSONS: u64 = 4;
const ORGANISATIONS: u64 = 2;
/// Record ids a provider reuses within a sequence, so that keys collide.
const IDS: u64 = 48;

/// Seeded choices: a failure replays the same way.
struct Dice(ChaCha8Rng);

impl Dice {
    /// A number below `n` (which is not zero).
    fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len().max(1) as u64) as usize)
    }
}

/// One sequence's subjects and what it has sent so far.
struct Sequence {
    seed: u64,
    dice: Dice,
    persons: Vec<SubjectId>,
    organisations: Vec<SubjectId>,
    /// Every submission sent, for replays and for facts about records.
    sent: Vec<Submission>,
}

impl Sequence {
    fn new(seed: u64) -> Sequence {
        let persons = (0..PERSONS)
            .map(|n| person(700 + (seed * PERSONS + n) as u16))
            .collect();
        let organisations = (0..ORGANISATIONS)
            .map(|n| organisation(500 + (seed * ORGANISATIONS + n) as u32))
            .collect();
        Sequence {
            seed,
            dice: Dice(ChaCha8Rng::seed_from_u64(seed)),
            persons,
            organisations,
            sent: Vec::new(),
        }
    }

    fn subjects(&self) -> Vec<SubjectId> {
        let mut all: Vec<SubjectId> = self
            .persons
            .iter()
            .chain(&self.organisations)
            .copied()
            .collect();
        all.sort();
        all
    }

    /// A day between 2025-01-01 and 2026-06-23.
    fn day(&mut self) -> socred_core::Day {
        day("2025-01-01").add_days(self.dice.below(540) as i32)
    }

    fn case_no(&mut self) -> String {
        format!("case-{}-{}", self.seed, self.dice.below(3))
    }

    /// A record of a random type about a fitting subject, under an id that
    /// earlier records of this sequence may have used.
    fn record(&mut self, engine: &Engine) -> Submission {
        let id = format!("s{}-r{}", self.seed, self.dice.below(IDS));
        let decided = self.day().to_string();
        let person = *self.dice.pick(&self.persons).unwrap_or(&self.persons[0]);
        let org = *self
            .dice
            .pick(&self.organisations)
            .unwrap_or(&self.organisations[0]);
        let (record, review) = match self.dice.below(5) {
            0 => {
                let subject = if self.dice.chance(50) { person } else { org };
                let case_no = self.case_no();
                let amount = 1000 * (1 + self.dice.below(50) as i64);
                let record = record(
                    engine,
                    &id,
                    subject,
                    JUDGMENT,
                    &decided,
                    judgment_fields(&case_no, amount),
                );
                let review = if self.dice.chance(40) {
                    ReviewNeed::Required
                } else {
                    ReviewNeed::NotRequired
                };
                (record, review)
            }
            1 => {
                let subject = if self.dice.chance(50) { person } else { org };
                let case_no = self.case_no();
                let fields = fields(&[("case_no", text(&case_no))]);
                let record = record(engine, &id, subject, FULFILLED, &decided, fields);
                (record, ReviewNeed::NotRequired)
            }
            2 => {
                let fields = fields(&[("legal_representative", text(person.as_str()))]);
                let record = record(engine, &id, org, REGISTRATION, &decided, fields);
                (record, ReviewNeed::NotRequired)
            }
            3 => {
                let station = self.station();
                let fields = fields(&[("station", text(&station))]);
                let record = record(engine, &id, person, FARE_EVASION, &decided, fields);
                (record, ReviewNeed::NotRequired)
            }
            _ => {
                let hours = Value::Int(1 + self.dice.below(8) as i64);
                let fields = fields(&[("hours", hours)]);
                let record = record(engine, &id, person, VOLUNTEER, &decided, fields);
                (record, ReviewNeed::NotRequired)
            }
        };
        Submission {
            item: Item::Record(record),
            submitted_by: "provider.clerk".into(),
            review,
        }
    }

    fn station(&mut self) -> String {
        ["Beijing South", "Tianjin", "Xiong'an"][self.dice.below(3) as usize].to_string()
    }

    /// New fields for a record of this type.
    fn new_fields(&mut self, record: &Record) -> Fields {
        let type_id = record.type_id.as_str();
        if type_id == JUDGMENT {
            let case_no = self.case_no();
            judgment_fields(&case_no, 500 * (1 + self.dice.below(100) as i64))
        } else if type_id == FARE_EVASION {
            let station = self.station();
            fields(&[("station", text(&station))])
        } else if type_id == VOLUNTEER {
            fields(&[("hours", Value::Int(1 + self.dice.below(8) as i64))])
        } else if type_id == FULFILLED {
            let case_no = self.case_no();
            fields(&[("case_no", text(&case_no))])
        } else {
            let person = *self.dice.pick(&self.persons).unwrap_or(&self.persons[0]);
            fields(&[("legal_representative", text(person.as_str()))])
        }
    }

    /// A later fact: about a record sent before (now and then under the
    /// wrong subject), or a person's consent.
    fn fact(&mut self) -> Submission {
        let records: Vec<Record> = self
            .sent
            .iter()
            .filter_map(|s| match &s.item {
                Item::Record(record) => Some(record.clone()),
                Item::Fact { .. } => None,
            })
            .collect();
        let about = self.dice.pick(&records).cloned();
        let Some(about) = about.filter(|_| !self.dice.chance(15)) else {
            let person = *self.dice.pick(&self.persons).unwrap_or(&self.persons[0]);
            let kind = if self.dice.chance(60) {
                FactKind::ConsentGranted
            } else {
                FactKind::ConsentWithdrawn
            };
            let at = self.day();
            return plain(Fact {
                subject: person,
                at,
                by: Arc::from(person.as_str()),
                kind,
            });
        };
        let subject = if self.dice.chance(10) {
            *self.dice.pick(&self.persons).unwrap_or(&about.subject)
        } else {
            about.subject
        };
        let at = about.decided_at.add_days(self.dice.below(400) as i32);
        let record = about.key.clone();
        let statement = |dice: &mut Dice| {
            dice.chance(50)
                .then(|| Arc::from(format!("statement {}", dice.below(4))))
        };
        let mut review = ReviewNeed::NotRequired;
        let mut record_type = None;
        let (by, kind) = match self.dice.below(5) {
            0 => (about.key.provider.clone(), FactKind::Retracted { record }),
            1 => {
                record_type = Some(about.type_id);
                let fields = self.new_fields(&about);
                let decided_at = self
                    .dice
                    .chance(30)
                    .then(|| about.decided_at.add_days(-(self.dice.below(60) as i32)));
                let kind = FactKind::Corrected {
                    record,
                    fields,
                    occurred_at: None,
                    decided_at,
                };
                (about.key.provider.clone(), kind)
            }
            2 => {
                let statement = statement(&mut self.dice);
                let kind = FactKind::Disputed { record, statement };
                (Arc::from(subject.as_str()), kind)
            }
            3 => {
                let (outcome, fields) = match self.dice.below(3) {
                    0 => (Resolution::Upheld, None),
                    1 => {
                        record_type = Some(about.type_id);
                        (Resolution::Corrected, Some(self.new_fields(&about)))
                    }
                    _ => (Resolution::Retracted, None),
                };
                let kind = FactKind::Resolved {
                    record,
                    outcome,
                    fields,
                };
                (Arc::from("reviewer.wang"), kind)
            }
            _ => {
                if self.dice.chance(30) {
                    review = ReviewNeed::Required;
                }
                let statement = statement(&mut self.dice);
                let kind = FactKind::Repaired { record, statement };
                (Arc::from(subject.as_str()), kind)
            }
        };
        Submission {
            item: Item::Fact {
                fact: Fact {
                    subject,
                    at,
                    by,
                    kind,
                },
                record_type,
            },
            submitted_by: "provider.clerk".into(),
            review,
        }
    }

    /// A batch of one to six items: new records, facts and replays.
    fn batch(&mut self, engine: &Engine) -> Vec<Submission> {
        let size = 1 + self.dice.below(6);
        let mut batch = Vec::new();
        for _ in 0..size {
            let roll = self.dice.below(100);
            let submission = if roll < 15 && !self.sent.is_empty() {
                let replay = self.dice.pick(&self.sent).cloned();
                replay.unwrap_or_else(|| self.record(engine))
            } else if roll < 45 && !self.sent.is_empty() {
                self.fact()
            } else {
                self.record(engine)
            };
            batch.push(submission);
        }
        self.sent.extend(batch.iter().cloned());
        batch
    }
}

fn plain(fact: Fact) -> Submission {
    Submission {
        item: Item::Fact {
            fact,
            record_type: None,
        },
        submitted_by: "provider.clerk".into(),
        review: ReviewNeed::NotRequired,
    }
}

fn audit(seed: u64, step: usize, action: &str) -> Vec<AuditDraft> {
    vec![AuditDraft {
        at_ms: 1_772_000_000_000 + step as i64,
        actor: "provider.clerk".into(),
        role: "provider".into(),
        purpose: "conformance".into(),
        action: action.into(),
        subject: None,
        detail: format!("seed {seed} step {step}: {action}"),
    }]
}

/// The backend and the fake, with the sequence's position for messages.
struct Pair<'a> {
    store: &'a dyn Store,
    model: &'a MemoryStore,
}

impl Pair<'_> {
    /// Everything the two stores say about `subjects` and their lists.
    async fn compare(&self, engine: &Engine, subjects: &[SubjectId], at: &str) {
        let (store, model) = (self.store, self.model);
        for &subject in subjects {
            let ours = store.state(subject).await;
            let theirs = model.state(subject).await;
            assert_eq!(
                ours.as_ref().map(|s| s.as_deref()),
                theirs.as_ref().map(|s| s.as_deref()),
                "{at}: the state of {subject} differs from the memory store's"
            );
            let ours = store.records(&engine.rulebook, subject).await;
            let theirs = model.records(&engine.rulebook, subject).await;
            assert_eq!(
                ours.map(sorted_history),
                theirs.map(sorted_history),
                "{at}: the records of {subject} differ"
            );
            let ours = store.pending_about(&engine.rulebook, subject, 100).await;
            let theirs = model.pending_about(&engine.rulebook, subject, 100).await;
            assert_eq!(
                ours.map(|p| p.into_iter().map(|i| i.key).collect::<Vec<_>>()),
                theirs.map(|p| p.into_iter().map(|i| i.key).collect::<Vec<_>>()),
                "{at}: what waits for review about {subject} differs"
            );
        }
        assert_eq!(
            store.counts().await,
            model.counts().await,
            "{at}: the counts differ"
        );
        assert_eq!(
            store.held_record_types().await,
            model.held_record_types().await,
            "{at}: the records held by type differ"
        );
        let ours = store.pending(&engine.rulebook, None, 10_000).await;
        let theirs = model.pending(&engine.rulebook, None, 10_000).await;
        assert_eq!(
            ours.map(|p| p.into_iter().map(|i| (i.key, i.item)).collect::<Vec<_>>()),
            theirs.map(|p| p.into_iter().map(|i| (i.key, i.item)).collect::<Vec<_>>()),
            "{at}: the review queue differs"
        );
        for on in ["2025-06-01", "2026-01-01", "2026-09-01", "2027-06-01"] {
            let ours = store.list_members(DEFAULTERS, day(on), None, 10_000).await;
            let theirs = model.list_members(DEFAULTERS, day(on), None, 10_000).await;
            assert_eq!(ours, theirs, "{at}: the defaulters on {on} differ");
        }
        assert_eq!(
            store.disputed_subjects(None, 10_000).await,
            model.disputed_subjects(None, 10_000).await,
            "{at}: the subjects with open objections differ"
        );
    }
}

/// Records and facts in a fixed order: a store may return them in any.
fn sorted_history((mut records, mut facts): (Vec<Record>, Vec<Fact>)) -> (Vec<Record>, Vec<Fact>) {
    records.sort_by(|a, b| a.key.cmp(&b.key));
    facts.sort_by_key(|f| format!("{f:?}"));
    (records, facts)
}

/// See the module docs.
pub async fn check_random_operations(store: &dyn Store) {
    let model = MemoryStore::new();
    let pair = Pair {
        store,
        model: &model,
    };
    let mut engine = engine_with(-5);
    for seed in 0..SEEDS {
        let mut sequence = Sequence::new(seed);
        let subjects = sequence.subjects();
        for step in 0..STEPS {
            let at = format!("seed {seed}, step {step}");
            let roll = sequence.dice.below(100);
            if roll < 12 {
                review_one(&pair, &engine, &mut sequence, step, &at).await;
            } else if roll < 14 {
                // The rulebook changes what a fare evasion costs.
                let points = if engine.rulebook.version.ends_with("-5") {
                    -7
                } else {
                    -5
                };
                engine = engine_with(points);
                let ours = store.recompute_all(&engine).await;
                let theirs = model.recompute_all(&engine).await;
                assert_eq!(ours, theirs, "{at}: recompute_all");
            } else {
                let batch = sequence.batch(&engine);
                let ours = store
                    .ingest(&engine, batch.clone(), audit(seed, step, "ingest"))
                    .await;
                let theirs = model
                    .ingest(&engine, batch.clone(), audit(seed, step, "ingest"))
                    .await;
                assert_eq!(ours, theirs, "{at}: the outcomes of {batch:#?}");
                assert!(ours.is_ok(), "{at}: {ours:?}");
            }
            pair.compare(&engine, &subjects, &at).await;
        }
        // The end of retention: records of 2025 are past five years in
        // 2030, those of 2026 not yet.
        let today = day("2030-01-01").add_days(sequence.dice.below(365) as i32);
        let draft = audit(seed, STEPS, "erase").remove(0);
        let ours = store
            .erase(&engine, subjects.clone(), today, draft.clone())
            .await;
        let theirs = model.erase(&engine, subjects.clone(), today, draft).await;
        assert_eq!(ours, theirs, "seed {seed}: erasure on {today}");
        pair.compare(&engine, &subjects, &format!("seed {seed}, after erasure"))
            .await;
    }
    for (name, backend) in [
        ("the store", store),
        ("the memory store", &model as &dyn Store),
    ] {
        let mismatches = verify_states(backend, &engine)
            .await
            .unwrap_or_else(|e| panic!("verify {name}: {e}"));
        assert_eq!(
            mismatches,
            Vec::new(),
            "{name}: stored states must equal a fresh fold of their records"
        );
    }
}

/// Approves or rejects an item waiting for review, now and then by the
/// person who sent it (refused by both stores).
async fn review_one(
    pair: &Pair<'_>,
    engine: &Arc<Engine>,
    sequence: &mut Sequence,
    step: usize,
    at: &str,
) {
    let pending = pair
        .store
        .pending(&engine.rulebook, None, 10_000)
        .await
        .unwrap_or_else(|e| panic!("{at}: pending: {e}"));
    let Some(item) = sequence.dice.pick(&pending) else {
        return;
    };
    let key: ItemKey = item.key.clone();
    let reviewer = if sequence.dice.chance(20) {
        item.submitted_by.clone()
    } else {
        "reviewer.wang".to_string()
    };
    let drafts = audit(sequence.seed, step, "review");
    if sequence.dice.chance(70) {
        // Records are decided in 2025 and 2026 and kept five years: some
        // approvals come after the end of retention, and are refused.
        let today = day("2029-06-01").add_days(sequence.dice.below(1000) as i32);
        let ours = pair
            .store
            .approve(engine, &key, &reviewer, today, drafts.clone())
            .await;
        let theirs = pair
            .model
            .approve(engine, &key, &reviewer, today, drafts)
            .await;
        assert_eq!(
            ours.map(|i| (i.key, i.item, i.submitted_by)),
            theirs.map(|i| (i.key, i.item, i.submitted_by)),
            "{at}: approval of {key} by {reviewer}"
        );
    } else {
        let reason = "not grounded in a final judgment";
        let ours = pair
            .store
            .reject(engine, &key, &reviewer, reason, drafts.clone())
            .await;
        let theirs = pair
            .model
            .reject(engine, &key, &reviewer, reason, drafts)
            .await;
        assert_eq!(
            ours.map(|i| (i.key, i.item, i.submitted_by)),
            theirs.map(|i| (i.key, i.item, i.submitted_by)),
            "{at}: rejection of {key} by {reviewer}"
        );
    }
}
