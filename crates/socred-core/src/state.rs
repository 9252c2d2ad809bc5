//! A subject's folded state: every record still known about it, what the
//! later facts did to each, and the effects (points, list entries) that the
//! rules made of them, each with its own interval.
//!
//! The state depends on what is *known* (records decided and facts dated up
//! to `known_at`) but not on the day it is read: reading the file as of a
//! day only filters intervals (see `evaluate`). This is what lets a store
//! keep one state per subject and answer for any day without a batch job.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::id::SubjectId;
use crate::name::Name;
use crate::record::{Fields, RecordKey};
use crate::time::Day;

/// A half-open span of days `[start, end)`; `end == Day::MAX` means open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Span {
    pub start: Day,
    pub end: Day,
}

impl Span {
    pub fn contains(&self, day: Day) -> bool {
        self.start <= day && day < self.end
    }
}

/// A record as it stands in the file after its later facts.
///
/// What disputes, statements, corrections and repair added is held behind
/// one pointer (`amended`), absent for most records: a state holds one of
/// these per record, and at 120 bytes instead of 168 a record state is
/// built and moved without a call to `memcpy` (the fold builds one per
/// record of a batch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordState {
    #[serde(flatten)]
    pub key: RecordKey,
    #[serde(rename = "type")]
    pub type_id: Name,
    pub occurred_at: Day,
    pub decided_at: Day,
    pub fields: Fields,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Arc<str>>,
    /// The record leaves the file on this day (its retention ends).
    pub retained_until: Day,
    /// The record is public until this day (None: never public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_until: Option<Day>,
    /// Whether its effects pause while disputed (the record type's policy).
    #[serde(default)]
    pub suspend_when_disputed: bool,
    /// Records of this type count only while the subject consents.
    #[serde(default)]
    pub consent_required: bool,
    /// What later facts added; None when they added nothing (never an
    /// empty `Amendments`, see [`Amendments::boxed`]).
    #[serde(flatten, deserialize_with = "Amendments::deserialize_boxed")]
    pub amended: Option<Box<Amendments>>,
}

/// What later facts added to a record beyond new fields and dates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Amendments {
    /// Spans during which the record was disputed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disputes: Vec<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_at: Option<Day>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repaired_at: Option<Day>,
}

impl Amendments {
    pub fn is_empty(&self) -> bool {
        self.disputes.is_empty()
            && self.statement.is_none()
            && self.corrected_at.is_none()
            && self.repaired_at.is_none()
    }

    /// These amendments as a record state holds them: None when empty, so
    /// that two record states alike compare equal.
    pub fn boxed(self) -> Option<Box<Amendments>> {
        if self.is_empty() {
            None
        } else {
            Some(Box::new(self))
        }
    }

    fn deserialize_boxed<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Box<Amendments>>, D::Error> {
        Ok(Amendments::deserialize(deserializer)?.boxed())
    }
}

impl RecordState {
    /// Spans during which the record was disputed.
    pub fn disputes(&self) -> &[Span] {
        self.amended.as_ref().map_or(&[], |a| &a.disputes)
    }

    /// The subject's statement about the record, if any.
    pub fn statement(&self) -> Option<&Arc<str>> {
        self.amended.as_ref().and_then(|a| a.statement.as_ref())
    }

    pub fn corrected_at(&self) -> Option<Day> {
        self.amended.as_ref().and_then(|a| a.corrected_at)
    }

    pub fn repaired_at(&self) -> Option<Day> {
        self.amended.as_ref().and_then(|a| a.repaired_at)
    }

    pub fn disputed_on(&self, day: Day) -> bool {
        self.disputes().iter().any(|span| span.contains(day))
    }

    /// Whether the record's effects are suspended on `day` by a dispute.
    pub fn suspended_on(&self, day: Day) -> bool {
        self.suspend_when_disputed && self.disputed_on(day)
    }

    pub fn present_on(&self, day: Day) -> bool {
        self.decided_at <= day && day < self.retained_until
    }
}

/// What made an effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Source {
    /// A scoring rule (`model`, `rule` are rulebook ids).
    Rule { model: Name, rule: Name },
    /// A list's entry rule.
    ListEntry { list: Name },
}

/// Why a list entry ended before its maximum duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Expiry,
    /// A later record (e.g. the judgment was fulfilled).
    ExitRecord,
    Repair,
}

/// One effect of one record: points, or a list entry.
///
/// What escalation and caps did to a rule's points is held behind one
/// pointer (`adjusted`), absent for most effects: at 64 bytes instead of
/// 88, a state's effects take a quarter less memory to write and to read
/// back. It reads and writes as JSON as it always did (`EffectWire`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "EffectWire", into = "EffectWire")]
pub struct Effect {
    /// Index into [`SubjectState::records`].
    pub record: u32,
    pub source: Source,
    pub span: Span,
    /// Points, for a rule's effect (0 for list entries).
    pub points: i64,
    pub end_reason: Option<EndReason>,
    /// How escalation and caps changed the rule's points; None when they
    /// did not (never an adjustment that changes nothing, see
    /// [`Adjustment::of`]).
    pub adjusted: Option<Box<Adjustment>>,
}

/// How escalation and caps made a rule's points differ from what the rule
/// gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Adjustment {
    /// Points the rule gave before escalation and caps.
    pub points_base: i64,
    /// How many occurrences the escalation window counted, this one
    /// included, when the points escalated.
    pub escalation: Option<u32>,
    /// The cap that cut them.
    pub capped_by: Option<Arc<str>>,
}

impl Adjustment {
    /// The adjustment of an effect of `points`, as an effect holds it: None
    /// when there is none, so that two effects alike compare equal.
    pub fn of(
        points: i64,
        points_base: i64,
        escalation: Option<u32>,
        capped_by: Option<Arc<str>>,
    ) -> Option<Box<Adjustment>> {
        if points_base == points && escalation.is_none() && capped_by.is_none() {
            None
        } else {
            Some(Box::new(Adjustment {
                points_base,
                escalation,
                capped_by,
            }))
        }
    }
}

impl Effect {
    /// Points the rule gave before escalation and caps.
    pub fn points_base(&self) -> i64 {
        self.adjusted
            .as_ref()
            .map_or(self.points, |a| a.points_base)
    }

    pub fn escalation(&self) -> Option<u32> {
        self.adjusted.as_ref().and_then(|a| a.escalation)
    }

    pub fn capped_by(&self) -> Option<&Arc<str>> {
        self.adjusted.as_ref().and_then(|a| a.capped_by.as_ref())
    }
}

/// An [`Effect`] as JSON has it, every field in the open.
#[derive(Serialize, Deserialize)]
struct EffectWire {
    record: u32,
    #[serde(flatten)]
    source: Source,
    #[serde(flatten)]
    span: Span,
    #[serde(default)]
    points: i64,
    #[serde(default)]
    points_base: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    escalation: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    capped_by: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_reason: Option<EndReason>,
}

impl From<EffectWire> for Effect {
    fn from(wire: EffectWire) -> Effect {
        Effect {
            record: wire.record,
            source: wire.source,
            span: wire.span,
            points: wire.points,
            end_reason: wire.end_reason,
            adjusted: Adjustment::of(
                wire.points,
                wire.points_base,
                wire.escalation,
                wire.capped_by,
            ),
        }
    }
}

impl From<Effect> for EffectWire {
    fn from(effect: Effect) -> EffectWire {
        EffectWire {
            record: effect.record,
            points_base: effect.points_base(),
            escalation: effect.escalation(),
            capped_by: effect.capped_by().cloned(),
            source: effect.source,
            span: effect.span,
            points: effect.points,
            end_reason: effect.end_reason,
        }
    }
}

/// A list entry that reaches this subject through another one (a company's
/// legal representative while the company is a listed defaulter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DerivedEntry {
    pub list: Name,
    pub via: SubjectId,
    pub relation: Arc<str>,
    pub record: RecordKey,
    #[serde(flatten)]
    pub span: Span,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspended: Vec<Span>,
}

/// A relation named by a record of this subject (`legal_representative` →
/// a person), the latest of each name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relation {
    pub name: Arc<str>,
    pub subject: SubjectId,
}

/// A subject's folded state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubjectState {
    pub subject: SubjectId,
    pub known_at: Day,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profession: Option<Arc<str>>,
    /// Consent changes in order: (day, granted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consent: Vec<(Day, bool)>,
    pub records: Vec<RecordState>,
    pub effects: Vec<Effect>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<Relation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<DerivedEntry>,
    /// Facts that named a record this subject does not have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orphan_facts: Vec<RecordKey>,
    /// The label of the rulebook this state was folded with (`id@version`);
    /// None for a state nobody folded ([`Self::empty`]) or one stored
    /// before states carried it. A reader evaluates a state with the
    /// rulebook that folded it, so that what it answers and the rulebook it
    /// names agree while an upload's recomputation is under way. Not part
    /// of the state's JSON, which describes the file, not its making.
    #[serde(skip)]
    pub rulebook: Option<Arc<str>>,
}

impl SubjectState {
    /// The state of a subject nothing is known about.
    pub fn empty(subject: SubjectId, known_at: Day) -> SubjectState {
        SubjectState {
            subject,
            known_at,
            profession: None,
            consent: Vec::new(),
            records: Vec::new(),
            effects: Vec::new(),
            relations: Vec::new(),
            derived: Vec::new(),
            orphan_facts: Vec::new(),
            rulebook: None,
        }
    }

    /// Whether nothing is known about the subject: what [`Self::empty`]
    /// gives, whatever the day (a batch folded as known on a day before
    /// any of a subject's records gives such a state).
    pub fn is_empty(&self) -> bool {
        self.profession.is_none()
            && self.consent.is_empty()
            && self.records.is_empty()
            && self.effects.is_empty()
            && self.relations.is_empty()
            && self.derived.is_empty()
            && self.orphan_facts.is_empty()
    }

    /// The first day on which a record of the file is past its retention
    /// (None: no record). A store keeps it beside the state, so that
    /// erasure finds the subjects it has work for without reading every
    /// state.
    pub fn retention_ends(&self) -> Option<Day> {
        self.records.iter().map(|r| r.retained_until).min()
    }

    pub fn consent_on(&self, day: Day) -> bool {
        let mut granted = false;
        for &(at, value) in &self.consent {
            if at > day {
                break;
            }
            granted = value;
        }
        granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(amended: Option<Box<Amendments>>) -> RecordState {
        RecordState {
            key: RecordKey {
                provider: Arc::from("court.beijing"),
                id: "r1".into(),
            },
            type_id: Name::new("judgment.defaulter"),
            occurred_at: Day::parse_date("2024-02-29").expect("day"),
            decided_at: Day::parse_date("2024-03-01").expect("day"),
            fields: Fields::new(),
            document: None,
            retained_until: Day::MAX,
            public_until: None,
            suspend_when_disputed: true,
            consent_required: false,
            amended,
        }
    }

    #[test]
    fn amendments_read_and_write_as_fields_of_the_record() {
        let plain = record(None);
        let json = serde_json::to_value(&plain).expect("json");
        for absent in [
            "disputes",
            "statement",
            "corrected_at",
            "repaired_at",
            "amended",
        ] {
            assert!(json.get(absent).is_none(), "{absent} in {json}");
        }
        let back: RecordState = serde_json::from_value(json).expect("back");
        assert_eq!(back, plain);
        assert!(
            back.amended.is_none(),
            "no amendments read back as none, not empty"
        );

        let disputed = record(
            Amendments {
                disputes: vec![Span {
                    start: Day::parse_date("2025-01-01").expect("day"),
                    end: Day::MAX,
                }],
                statement: Some(Arc::from("I paid")),
                corrected_at: None,
                repaired_at: Some(Day::parse_date("2026-01-01").expect("day")),
            }
            .boxed(),
        );
        let json = serde_json::to_value(&disputed).expect("json");
        assert_eq!(json["statement"], "I paid");
        assert_eq!(json["repaired_at"], "2026-01-01");
        assert_eq!(json["disputes"][0]["start"], "2025-01-01");
        assert!(json.get("corrected_at").is_none());
        let back: RecordState = serde_json::from_value(json).expect("back");
        assert_eq!(back, disputed);
        assert!(back.disputed_on(Day::parse_date("2025-06-01").expect("day")));
        assert!(back.suspended_on(Day::parse_date("2025-06-01").expect("day")));
        assert_eq!(back.repaired_at(), Day::parse_date("2026-01-01").ok());
    }

    #[test]
    fn empty_amendments_are_none() {
        assert!(Amendments::default().boxed().is_none());
        let statement = Amendments {
            statement: Some(Arc::from("I paid")),
            ..Amendments::default()
        };
        assert!(statement.boxed().is_some());
    }

    #[test]
    fn effects_read_and_write_their_adjustment_as_fields() {
        let span = Span {
            start: Day::parse_date("2024-03-01").expect("day"),
            end: Day::MAX,
        };
        let source = Source::Rule {
            model: Name::new("rongcheng"),
            rule: Name::new("breach"),
        };
        let plain = Effect {
            record: 0,
            source: source.clone(),
            span,
            points: -20,
            end_reason: None,
            adjusted: Adjustment::of(-20, -20, None, None),
        };
        assert!(plain.adjusted.is_none(), "no adjustment held for none");
        let json = serde_json::to_value(&plain).expect("json");
        assert_eq!(json["points_base"], -20);
        assert!(json.get("escalation").is_none() && json.get("capped_by").is_none());
        assert_eq!(serde_json::from_value::<Effect>(json).expect("back"), plain);

        let capped = Effect {
            adjusted: Adjustment::of(-30, -40, Some(3), Some(Arc::from("yearly"))),
            points: -30,
            ..plain.clone()
        };
        assert_eq!(capped.points_base(), -40);
        let json = serde_json::to_value(&capped).expect("json");
        assert_eq!(json["points"], -30);
        assert_eq!(json["points_base"], -40);
        assert_eq!(json["escalation"], 3);
        assert_eq!(json["capped_by"], "yearly");
        assert_eq!(json["by"], "rule");
        assert_eq!(
            serde_json::from_value::<Effect>(json).expect("back"),
            capped
        );
    }
}
