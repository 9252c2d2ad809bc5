//! The rulebook file as written: TOML tables deserialized with serde, with
//! the source span of every value a problem may point at.
//!
//! These types are the single description of the file's shape. The JSON
//! Schema (`docs/rulebook.schema.json`) is derived from them, and the shape
//! check that reports unknown keys and wrong types walks that same schema, so
//! the published schema and the loader cannot drift apart. Doc comments here
//! become descriptions in the schema: they are written for rulebook authors.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Range;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};

/// A value with the byte range it came from in the rulebook text.
///
/// Transparent in the JSON Schema: it describes `T`.
#[derive(Clone, Debug)]
pub struct Located<T> {
    pub value: T,
    pub span: Range<usize>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = toml::Spanned::<T>::deserialize(deserializer)?;
        let span = spanned.span();
        Ok(Located {
            value: spanned.into_inner(),
            span,
        })
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T>()
    }
}

// Map keys (field names) are compared by their text only.
impl<T: PartialEq> PartialEq for Located<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Located<T> {}

impl<T: Ord> PartialOrd for Located<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> Ord for Located<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}

/// A socred rulebook: the catalog of record types, scoring models, lists and
/// measures, with the legal basis of each. See docs/rulebook.md.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "socred rulebook")]
pub struct RulebookFile {
    pub rulebook: Header,
    #[serde(default)]
    pub policy: Option<Policy>,
    /// The catalog: the kinds of record that may exist at all.
    #[serde(default)]
    pub record_type: Vec<RecordType>,
    /// Scoring models: points per record, grades, caps and expectations.
    #[serde(default)]
    pub model: Vec<Model>,
    /// Black and red lists, with entry, duration and exit rules.
    #[serde(default)]
    pub list: Vec<List>,
    /// Joint rewards and punishments that agencies apply.
    #[serde(default)]
    pub measure: Vec<Measure>,
    /// Public holidays and adjusted working weekend days, for counting
    /// working days (list exits).
    #[serde(default)]
    pub calendar: Option<Calendar>,
}

/// Working days where the rulebook applies. Working days are Monday to
/// Friday, less `holidays`, plus `working_weekends`. Operators fill in their
/// jurisdiction's published arrangements.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// Public holidays (`YYYY-MM-DD`): not working days.
    #[serde(default)]
    pub holidays: Vec<Located<String>>,
    /// Saturdays or Sundays worked to make up for a holiday (`YYYY-MM-DD`).
    #[serde(default)]
    pub working_weekends: Vec<Located<String>>,
}

/// Names and versions the rulebook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Stable identifier, e.g. `socred-default`.
    pub id: Located<String>,
    /// Version of this rulebook, e.g. `2026.1`; shown in every decision.
    pub version: Located<String>,
    /// Human-readable title.
    pub title: Located<String>,
    /// Version of the rulebook file format. Only `1` exists; omitted means `1`.
    #[serde(default)]
    pub format: Option<Located<u32>>,
}

/// Rulebook-wide switches.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Allows punishment measures that follow from a score or grade alone.
    /// Not enough on its own: each such measure must also set
    /// `score_only_opt_in = true`.
    #[serde(default)]
    pub allow_score_only_punishment: Option<Located<bool>>,
    /// How long a reviewer has to resolve a subject's objection, from the
    /// day it was made: an ISO 8601 duration (`P20D` when left out).
    #[serde(default)]
    pub objection_deadline: Option<Located<String>>,
    /// How long an audit entry is kept, from the day it was appended: an
    /// ISO 8601 duration of at least six months (the Cybersecurity Law's
    /// minimum for network logs). Left out, entries are kept for good.
    #[serde(default)]
    pub audit_retention: Option<Located<String>>,
}

/// The kind of a credit subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A natural person (Resident Identity Card number).
    Person,
    /// An organisation (Unified Social Credit Code).
    Organisation,
}

/// How serious records of a type are.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Minor,
    General,
    /// Serious records that put a subject on a black list go through the
    /// two-person review.
    Serious,
}

/// What happens to a disputed record's effects until the dispute is resolved.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisputePolicy {
    /// Effects do not count while the dispute is open.
    Suspended,
    /// Effects keep counting; the record is marked disputed.
    Standing,
}

/// The type of a record field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Bool,
    /// A whole number.
    Int,
    /// Any number.
    Number,
    Text,
    /// A calendar day, `YYYY-MM-DD`.
    Date,
    /// Another subject's identifier (a relation such as a legal
    /// representative).
    Subject,
}

/// One entry of the catalog.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordType {
    /// Stable identifier, `category.name` by convention, e.g.
    /// `judicial.judgment_default`.
    pub id: Located<String>,
    pub title: Located<String>,
    /// Which kinds of subject records of this type may be about.
    pub subject_kinds: Located<Vec<SubjectKind>>,
    /// Free-form category (caps are per category). Protected categories are
    /// refused.
    pub category: Located<String>,
    pub severity: Severity,
    /// The law, regulation or published document that allows collecting it.
    pub legal_basis: Located<String>,
    /// ISO 8601 period the record stays in the file after it was decided,
    /// e.g. `P5Y`.
    pub retention: Located<String>,
    /// ISO 8601 period the record is public after it was decided; omitted:
    /// never public.
    #[serde(default)]
    pub publicity: Option<Located<String>>,
    /// ISO 8601 period the record stays public after it was decided even
    /// when a repair is granted earlier (the minimum publicity period);
    /// omitted: none. Needs `publicity`, and is not longer.
    #[serde(default)]
    pub publicity_min: Option<Located<String>>,
    /// Records of this type count only while the subject's consent is granted.
    #[serde(default)]
    pub consent_required: bool,
    /// Default `suspended`.
    #[serde(default)]
    pub dispute_policy: Option<DisputePolicy>,
    /// A text field whose value, when present, sets the subject's profession.
    #[serde(default)]
    pub profession_field: Option<Located<String>>,
    /// Fields of type `subject` that name a related subject, e.g.
    /// `legal_representative`.
    #[serde(default)]
    pub relation_fields: Vec<Located<String>>,
    /// The record's fields by name.
    #[serde(default)]
    pub fields: BTreeMap<Located<String>, Field>,
}

/// A record field.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Records without this field are refused.
    #[serde(default)]
    pub required: bool,
    /// For `int` and `number` fields: the least value a record may give
    /// (inclusive). A record below it is refused (`out_of_range`): an
    /// arrears record of `-3` cycles would otherwise raise a score.
    #[serde(default)]
    pub min: Option<Located<f64>>,
    /// For `int` and `number` fields: the greatest value a record may give
    /// (inclusive).
    #[serde(default)]
    pub max: Option<Located<f64>>,
    /// For `text` fields: the only values a record may give, spelled
    /// exactly (`not_one_of` otherwise), e.g. the six triggers of the
    /// defaulters' list or the levels of an honour.
    #[serde(default)]
    pub values: Option<Located<Vec<String>>>,
}

/// A scoring model.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub id: Located<String>,
    pub title: Located<String>,
    /// Which kinds of subject the model scores.
    pub subject_kinds: Located<Vec<SubjectKind>>,
    /// The score every subject starts from, e.g. 1000.
    pub base_points: i64,
    /// Subjects of these kinds are scored only while they consent.
    #[serde(default)]
    pub consent_required_for: Vec<SubjectKind>,
    /// Subjects with no record that one of the model's rules matches are not
    /// scored at all (no score, no grade).
    #[serde(default)]
    pub requires_records: bool,
    /// Provenance and caveats, shown with the model.
    #[serde(default)]
    pub note: String,
    /// Grade bands; kept sorted from the highest.
    #[serde(default)]
    pub grades: Vec<Located<Grade>>,
    /// Points per record.
    #[serde(default)]
    pub rule: Vec<Located<Rule>>,
    /// Limits on points per category and calendar period.
    #[serde(default)]
    pub cap: Vec<Located<Cap>>,
    /// "Gain at least so many points each period, or else".
    #[serde(default)]
    pub expectation: Vec<Located<Expectation>>,
    /// Grades that records assign whatever the points (tax credit grade M
    /// for a new taxpayer, grade D assigned directly).
    #[serde(default)]
    pub assigned_grade: Vec<Located<AssignedGrade>>,
}

/// A grade that records of one type assign, whatever the points. It is in
/// force from the day the record was decided while the record counts, until
/// its validity ends or a later record of an `until` type is decided; when
/// several are in force, the most severe record type wins, then the latest
/// record. A subject the model does not score for want of records is
/// graded too (with no score).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignedGrade {
    /// The record type whose records assign the grade; one entry per record
    /// type in a model.
    pub record_type: Located<String>,
    /// One of the model's grades, or a label of its own (e.g. `M`).
    pub grade: Located<String>,
    /// Record types of which a record decided on or after the assigning one
    /// ends the assignment (e.g. the first annual evaluation ends grade M).
    #[serde(default)]
    pub until: Vec<Located<String>>,
    /// ISO 8601 period the assignment lasts at most after its record was
    /// decided; omitted: as long as the record is kept.
    #[serde(default)]
    pub validity: Option<Located<String>>,
    /// An approved repair of the record ends the assignment.
    #[serde(default)]
    pub exit_on_repair: bool,
    /// The rule the assignment rests on; omitted: the record type's.
    #[serde(default)]
    pub legal_basis: Option<Located<String>>,
}

/// A grade band: scores at or above `min` get `grade`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grade {
    pub grade: Located<String>,
    /// Lowest score of the band. One band may leave it out: it takes every
    /// score below the other bands.
    #[serde(default)]
    pub min: Option<Located<i64>>,
}

/// Points: a whole number, or a CEL expression over the record.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Points {
    Constant(i64),
    /// CEL, e.g. `-10 * fields.cycles`; a double result is truncated toward
    /// zero.
    Expression(String),
}

/// Gives points for records of one type.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: Located<String>,
    pub record_type: Located<String>,
    /// CEL condition over the record (`fields.*`, `record.*`, `subject.*`).
    #[serde(default)]
    pub when: Option<Located<String>>,
    pub points: Located<Points>,
    /// Least points one record can give (before escalation).
    #[serde(default)]
    pub points_min: Option<Located<i64>>,
    /// Most points one record can give (before escalation).
    #[serde(default)]
    pub points_max: Option<Located<i64>>,
    /// ISO 8601 period the points count after the record was decided.
    pub validity: Located<String>,
    #[serde(default)]
    pub escalation: Option<Located<Escalation>>,
    /// Default: the record type's kinds that the model scores.
    #[serde(default)]
    pub subject_kinds: Option<Located<Vec<SubjectKind>>>,
    /// When given, the rule applies only to subjects with one of these
    /// professions.
    #[serde(default)]
    pub professions: Vec<Located<String>>,
}

/// Repeat conduct within `window` is multiplied from the `from_count`-th
/// occurrence on.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// ISO 8601 period, counted back from the conduct.
    pub window: Located<String>,
    pub from_count: Located<u32>,
    pub multiplier: Located<i64>,
}

/// A calendar period for caps and expectations.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CalendarPeriod {
    Month,
    Quarter,
    Year,
}

/// Caps the points records of one category give in one calendar period.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    pub id: Located<String>,
    /// A category used by the catalog.
    pub category: Located<String>,
    pub per: CalendarPeriod,
    /// Most points gained per period.
    #[serde(default)]
    pub gain_max: Option<Located<i64>>,
    /// Most points lost per period, as a positive number.
    #[serde(default)]
    pub loss_max: Option<Located<i64>>,
}

/// "Gain at least `gain_min` points each `per`, or else `points`".
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub id: Located<String>,
    pub per: CalendarPeriod,
    pub gain_min: Located<i64>,
    /// Points given when the expectation is not met (usually negative).
    pub points: i64,
    /// ISO 8601 period those points count.
    pub validity: Located<String>,
    pub legal_basis: Located<String>,
    /// Default: the model's kinds.
    #[serde(default)]
    pub subject_kinds: Option<Located<Vec<SubjectKind>>>,
}

/// Black or red.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    Black,
    Red,
}

/// Publication schedule of a periodically published list.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Published each Monday, by the grade on that day.
    Weekly,
    /// Published on the first day of each month.
    Monthly,
}

/// A black or red list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct List {
    pub id: Located<String>,
    pub title: Located<String>,
    pub kind: ListKind,
    pub legal_basis: Located<String>,
    pub subject_kinds: Located<Vec<SubjectKind>>,
    /// Entries are shown to the public.
    #[serde(default)]
    pub public: bool,
    /// Entries need a second person's approval before they take effect.
    #[serde(default)]
    pub review: bool,
    /// Records that put a subject on the list.
    #[serde(default)]
    pub entry: Vec<Located<Entry>>,
    /// Grades that put a subject on the list (needs `schedule`).
    #[serde(default)]
    pub grade_entry: Option<Located<GradeEntry>>,
    /// ISO 8601 period an entry lasts at least before a repair can end it.
    #[serde(default)]
    pub duration_min: Option<Located<String>>,
    /// ISO 8601 period after which an entry ends by itself.
    #[serde(default)]
    pub duration_max: Option<Located<String>>,
    /// Later records that take a subject off the list.
    #[serde(default)]
    pub exit: Vec<Located<Exit>>,
    /// An approved repair ends the entry.
    #[serde(default)]
    pub exit_on_repair: bool,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// Relations (relation fields of the catalog) whose subjects are
    /// restricted too while an organisation is on the list.
    #[serde(default)]
    pub reach: Vec<Located<String>>,
    /// The law under which `reach` restricts the related subjects (for the
    /// defaulters' list, Fa Shi [2015] No. 17, art. 3), shown with every
    /// entry that reaches one. Without `reach` it has nothing to say.
    #[serde(default)]
    pub reach_legal_basis: Option<Located<String>>,
    /// Ids of lists that exclude this one: a subject with an entry in force
    /// on any of them on a day is not on this list that day (e.g. a red
    /// list excluded by the black lists). Not the list itself, and no cycles.
    #[serde(default)]
    pub excluded_by: Vec<Located<String>>,
}

/// A record type that puts a subject on a list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub record_type: Located<String>,
    /// CEL condition over the record.
    #[serde(default)]
    pub when: Option<Located<String>>,
}

/// Grades of a model that put a subject on a list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GradeEntry {
    pub model: Located<String>,
    pub grades: Vec<Located<String>>,
}

/// A later record that takes a subject off a list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exit {
    pub record_type: Located<String>,
    /// A field both records carry that must be equal (e.g. `case_no`).
    #[serde(default)]
    pub match_field: Option<Located<String>>,
    /// The exit takes effect this many working days after the exit record
    /// was decided: at most 366, since the fold counts them one by one.
    #[serde(default)]
    #[schemars(range(max = 366))]
    pub working_days: u32,
}

/// Reward or punishment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MeasureKind {
    Reward,
    Punishment,
}

/// A joint reward or punishment.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    pub id: Located<String>,
    pub title: Located<String>,
    pub kind: MeasureKind,
    pub legal_basis: Located<String>,
    /// Ids of the agencies that implement it, e.g. `airline`.
    pub agencies: Located<Vec<Located<String>>>,
    /// The purposes an agency may ask about it for, e.g. `ticket_sale`
    /// (purpose limitation); absent: any purpose the agency states.
    #[serde(default)]
    pub purposes: Option<Located<Vec<Located<String>>>>,
    pub subject_kinds: Located<Vec<SubjectKind>>,
    /// The scoring model whose grade the conditions refer to.
    #[serde(default)]
    pub model: Option<Located<String>>,
    /// Declares that this punishment may follow from a score or grade alone.
    /// Needs `[policy] allow_score_only_punishment = true` as well.
    #[serde(default)]
    pub score_only_opt_in: Option<Located<bool>>,
    /// The measure applies when any of these holds …
    pub applies: Vec<Located<Condition>>,
    /// … unless any of these holds: an exception always wins.
    #[serde(default)]
    pub except: Vec<Located<Condition>>,
}

/// A trigger or an exception of a measure. All given parts must hold.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub id: Located<String>,
    /// On any of these lists.
    #[serde(default)]
    pub lists: Vec<Located<String>>,
    /// On any list of this kind.
    #[serde(default)]
    pub list_kind: Option<ListKind>,
    /// Graded one of these by the measure's model.
    #[serde(default)]
    pub grades: Vec<Located<String>>,
    /// CEL condition over the subject (`subject.*`, `score`, `grade`,
    /// `lists`).
    #[serde(default)]
    pub when: Option<Located<String>>,
}
