//! The rulebook as the fold uses it: validated, references resolved to
//! indices, CEL compiled. The human-readable TOML form lives in
//! `socred-schema`, which lowers into these types.
//!
//! Architecture invariant: a `Rulebook` value is always valid. Every record
//! type and measure has a legal basis, no record type is in a protected
//! category, every reference resolves. Code that folds never re-checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::expr::Program;
use crate::id::SubjectKind;
use crate::name::Name;
use crate::record::FieldType;
use crate::time::{Calendar, Day, Period};

pub type RecordTypeIndex = u32;
pub type ListIndex = u32;

/// How serious a record type is. Serious records that put a subject on a
/// black list go through the two-person review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Minor,
    General,
    Serious,
}

/// What happens to a disputed record's effects until the dispute is resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputePolicy {
    /// Effects do not count while the dispute is open.
    #[default]
    Suspended,
    /// Effects keep counting; the record is marked disputed.
    Standing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    Black,
    Red,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureKind {
    Reward,
    Punishment,
}

/// A set of subject kinds (empty never happens after validation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub struct KindSet {
    pub person: bool,
    pub organisation: bool,
}

impl KindSet {
    pub const ALL: KindSet = KindSet {
        person: true,
        organisation: true,
    };

    pub fn contains(&self, kind: SubjectKind) -> bool {
        match kind {
            SubjectKind::Person => self.person,
            SubjectKind::Organisation => self.organisation,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldDef {
    pub name: Arc<str>,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub required: bool,
    /// Int and number fields: the least value a record may give.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Int and number fields: the greatest value a record may give.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Text fields: the only values a record may give.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Arc<str>>>,
}

impl FieldDef {
    /// A field of `field_type`, without bounds or a list of values.
    pub fn new(name: &str, field_type: FieldType, required: bool) -> FieldDef {
        FieldDef {
            name: Arc::from(name),
            field_type,
            required,
            min: None,
            max: None,
            values: None,
        }
    }
}

/// A catalog entry: a kind of record that may exist at all.
#[derive(Clone, Debug, Serialize)]
pub struct RecordType {
    pub id: Name,
    pub title: String,
    pub subject_kinds: KindSet,
    pub category: String,
    pub severity: Severity,
    pub legal_basis: String,
    pub fields: Vec<FieldDef>,
    /// How long the record stays in the file after it was decided.
    pub retention: Period,
    /// How long the record is public after it was decided (None: never public).
    pub publicity: Option<Period>,
    /// How long it stays public even when a repair is granted earlier (the
    /// minimum publicity period; zero: none).
    pub publicity_min: Period,
    /// Records of this type count only while the subject's consent is granted.
    pub consent_required: bool,
    /// A field whose value, when present, sets the subject's profession.
    pub profession_field: Option<Arc<str>>,
    /// Fields holding the identifier of a related subject, by relation name
    /// (e.g. `legal_representative`).
    pub relation_fields: Vec<Arc<str>>,
    pub dispute_policy: DisputePolicy,
}

/// Points given by a rule: a constant or a CEL expression of the record.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Points {
    Constant(i64),
    Expression(Program),
}

/// Repeat conduct within `window` (counted by `occurred_at`, same rule) is
/// multiplied from the `from_count`-th occurrence on.
#[derive(Clone, Debug, Serialize)]
pub struct Escalation {
    pub window: Period,
    pub from_count: u32,
    pub multiplier: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScoreRule {
    pub id: Name,
    pub record_type: RecordTypeIndex,
    pub condition: Option<Program>,
    pub points: Points,
    /// Bounds on the points one record can give (before escalation).
    pub points_min: Option<i64>,
    pub points_max: Option<i64>,
    /// How long the points count after the record was decided.
    pub validity: Period,
    pub escalation: Option<Escalation>,
    pub subject_kinds: KindSet,
    /// When non-empty, the rule applies only to subjects with one of these professions.
    pub professions: Vec<Arc<str>>,
}

/// Calendar period used to bucket caps and expectations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarPeriod {
    Month,
    Quarter,
    Year,
}

/// Caps the points that records of one catalog category can give in one
/// calendar period (by the day the points start).
#[derive(Clone, Debug, Serialize)]
pub struct Cap {
    pub id: Arc<str>,
    pub category: String,
    pub per: CalendarPeriod,
    /// Most points gained in one period (positive side).
    pub gain_max: Option<i64>,
    /// Most points lost in one period, as a positive number.
    pub loss_max: Option<i64>,
}

/// "Gain at least `gain_min` points each `per`, or else `points`".
#[derive(Clone, Debug, Serialize)]
pub struct Expectation {
    pub id: Arc<str>,
    pub per: CalendarPeriod,
    pub gain_min: i64,
    pub points: i64,
    pub validity: Period,
    pub legal_basis: Arc<str>,
    pub subject_kinds: KindSet,
}

/// A grade band: scores at or above `points_min` get `grade` (bands are kept
/// sorted from the highest).
#[derive(Clone, Debug, Serialize)]
pub struct GradeBand {
    pub grade: Arc<str>,
    pub points_min: i64,
}

/// A grade that records of one type assign, whatever the points: tax
/// credit grade M while a taxpayer is new, grade D assigned directly for a
/// serious violation.
///
/// An assignment starts on the day its record was decided and is in force
/// while that record is in the file, counts (not retracted, not suspended by
/// a dispute, consented to where its type needs consent), and has not ended:
/// by `validity`, by a record of an `until` type decided on or after that
/// day (while that record counts), or by a repair when `exit_on_repair`.
/// When several are in force, the one whose record type is the most severe
/// wins, then the one from the latest decided record, then the one from the
/// record later in content order: a grade D assigned for a serious
/// violation beats a grade M for a new taxpayer.
#[derive(Clone, Debug, Serialize)]
pub struct AssignedGrade {
    /// The record type whose records assign the grade.
    pub record_type: RecordTypeIndex,
    /// One of the model's band labels or a label of its own (`M`).
    pub grade: Arc<str>,
    /// A record of one of these types ends the assignment (the first full
    /// evaluation ends grade M).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub until: Vec<RecordTypeIndex>,
    /// Longest the assignment lasts after its record was decided; None:
    /// while the record is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity: Option<Period>,
    /// An approved repair of the record ends the assignment.
    pub exit_on_repair: bool,
    /// The entry's own legal basis, or else its record type's.
    pub legal_basis: Arc<str>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScoringModel {
    pub id: Name,
    pub subject_kinds: KindSet,
    pub base_points: i64,
    /// Persons are scored only while they consent.
    pub consent_required_for: KindSet,
    pub grades: Vec<GradeBand>,
    pub rules: Vec<ScoreRule>,
    pub caps: Vec<Cap>,
    pub expectations: Vec<Expectation>,
    /// Subjects with no record that the model counts are not scored (tax
    /// credit grades only taxpayers that were evaluated).
    pub requires_records: bool,
    /// Grades assigned by records, which replace the points' grade while in
    /// force (and give a grade to a subject the model does not score for
    /// want of records). Most models have none, and pay nothing for them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assigned_grades: Vec<AssignedGrade>,
    pub note: String,
}

/// How a record puts a subject on a list.
#[derive(Clone, Debug, Serialize)]
pub struct RecordEntry {
    pub record_type: RecordTypeIndex,
    pub condition: Option<Program>,
}

/// A later record that takes a subject off a list: a record of `record_type`
/// whose `match_field` equals the entry record's (e.g. the same case number),
/// effective `working_days` working days after it was decided.
#[derive(Clone, Debug, Serialize)]
pub struct RecordExit {
    pub record_type: RecordTypeIndex,
    pub match_field: Option<Arc<str>>,
    pub working_days: u32,
}

/// Publication schedule of a list that is published periodically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Published each Monday; membership is decided by the grade on that day.
    Weekly,
    Monthly,
}

#[derive(Clone, Debug, Serialize)]
pub struct ListDef {
    pub id: Name,
    pub title: String,
    pub kind: ListKind,
    pub legal_basis: String,
    pub subject_kinds: KindSet,
    pub record_entries: Vec<RecordEntry>,
    /// Grades that put a subject on the list (grade lists need a schedule).
    pub grade_entries: Vec<Arc<str>>,
    /// The scoring model whose grade `grade_entries` refers to.
    pub grade_model: Option<u32>,
    pub duration_min: Period,
    pub duration_max: Option<Period>,
    pub exits: Vec<RecordExit>,
    pub exit_on_repair: bool,
    pub public: bool,
    pub schedule: Option<Schedule>,
    /// Relations (names of catalog relation fields) whose subjects are
    /// restricted too while an organisation is on this list.
    pub reach: Vec<Arc<str>>,
    /// The law under which `reach` restricts the related subjects, shown
    /// with each entry that reaches one (None: the list's own basis).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reach_legal_basis: Option<Arc<str>>,
    /// Entries need a second person's approval before they take effect.
    pub review_required: bool,
    /// Lists that exclude this one: a subject with an entry in force on any
    /// of them on a day is not on this list that day (a red list never
    /// names a subject who is black-listed at the same time). Acyclic, and
    /// never the list itself.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excluded_by: Vec<ListIndex>,
}

impl ListDef {
    /// The schedule of a list whose entries come from grades: such a list
    /// is decided on its publication days, and published as an edition
    /// for each of them. None for a list entered by records.
    pub fn edition_schedule(&self) -> Option<Schedule> {
        self.schedule
            .filter(|_| self.grade_model.is_some() && !self.grade_entries.is_empty())
    }
}

/// A trigger or an exception of a measure. All given parts must hold.
#[derive(Clone, Debug, Serialize)]
pub struct Condition {
    pub id: Arc<str>,
    /// On any of these lists.
    pub lists: Vec<ListIndex>,
    /// On any list of this kind.
    pub list_kind: Option<ListKind>,
    /// Graded one of these.
    pub grades: Vec<Arc<str>>,
    /// A CEL condition over the subject (`subject`, `score`, `grade`, `lists`).
    pub when: Option<Program>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Measure {
    pub id: Arc<str>,
    pub title: String,
    pub kind: MeasureKind,
    pub legal_basis: String,
    pub agencies: Vec<Arc<str>>,
    /// The purposes an agency may ask about it for (purpose limitation);
    /// empty: any purpose it states.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<Arc<str>>,
    pub subject_kinds: KindSet,
    /// The measure applies when any of these holds …
    pub applies: Vec<Condition>,
    /// … unless any of these holds (an exception always wins).
    pub exceptions: Vec<Condition>,
    /// The scoring model whose grade the conditions refer to.
    pub model: Option<u32>,
    /// A punishment that follows from score or grade alone: refused at load
    /// unless this is set, and shown in every decision it makes.
    pub score_only_opt_in: bool,
}

/// A loaded, valid rulebook.
#[derive(Clone, Debug, Serialize)]
pub struct Rulebook {
    pub id: Arc<str>,
    pub version: Arc<str>,
    pub catalog: Vec<RecordType>,
    pub models: Vec<ScoringModel>,
    pub lists: Vec<ListDef>,
    pub measures: Vec<Measure>,
    /// Working days for list exits: weekends, holidays and adjusted
    /// working weekends. Empty unless the rulebook has a `[calendar]`.
    #[serde(skip_serializing_if = "Calendar::is_empty")]
    pub calendar: Calendar,
    /// How long a reviewer has to resolve a subject's objection, from the
    /// day it was made ([`Rulebook::OBJECTION_DEADLINE_DEFAULT`] unless the
    /// rulebook's `[policy]` sets `objection_deadline`).
    pub objection_deadline: Period,
    /// How long the registry keeps an audit entry, from the day it was
    /// appended (None: for good). The rulebook's `[policy]` sets it as
    /// `audit_retention`, at least [`Rulebook::AUDIT_RETENTION_MIN`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_retention: Option<Period>,
    #[serde(skip)]
    pub catalog_index: BTreeMap<Name, RecordTypeIndex>,
}

impl Rulebook {
    /// Twenty days: the deadline PRODUCT.md gives reviewers by default.
    pub const OBJECTION_DEADLINE_DEFAULT: Period = Period::days(20);

    /// Six months: the shortest time network logs may be kept under the
    /// Cybersecurity Law of the PRC (2016), art. 21 (3).
    pub const AUDIT_RETENTION_MIN: Period = Period {
        years: 0,
        months: 6,
        days: 0,
    };

    /// The last decision day whose record, of some type in the catalog, is
    /// past its retention on `today` (None: an empty catalog). A record
    /// decided after it is past retention on `today` whatever its type:
    /// erasure need not look at it.
    pub fn retention_cutoff(&self, today: Day) -> Option<Day> {
        self.catalog
            .iter()
            .map(|record_type| {
                let retention = record_type.retention;
                // Subtracting and adding a period by the calendar clamp the
                // day of the month, so they are not exact inverses: step to
                // the exact day, a few days at most.
                let mut day = retention.before(today);
                for _ in 0..64 {
                    if retention.after(day) <= today {
                        break;
                    }
                    day = day.add_days(-1);
                }
                for _ in 0..64 {
                    if retention.after(day.add_days(1)) > today {
                        break;
                    }
                    day = day.add_days(1);
                }
                day
            })
            .max()
    }

    pub fn record_type(&self, id: &str) -> Option<RecordTypeIndex> {
        self.catalog_index.get(id).copied()
    }

    pub fn measure(&self, id: &str) -> Option<&Measure> {
        self.measures.iter().find(|m| &*m.id == id)
    }

    /// "id@version", as shown in every file and decision.
    pub fn label(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}
