//! The semantic checks of a rulebook, and its lowering into the
//! `socred-core` model: ids resolved to indices, periods parsed, CEL compiled.
//!
//! Checking and lowering are one pass so that each rule is written once. The
//! pass goes on after a problem, to report every problem of the file; a
//! `Rulebook` is only assembled when there was none. References to an
//! element that exists in the file but was dropped for its shape (its
//! problem is already reported) are not reported again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use socred_core::expr::{Outcome, Scope};
use socred_core::id::SubjectKind;
use socred_core::record::{FieldType, Fields, Value};
use socred_core::rulebook::{
    AssignedGrade, CalendarPeriod, Cap, Condition, DisputePolicy, Escalation, Expectation,
    FieldDef, GradeBand, KindSet, ListDef, ListKind, Measure, MeasureKind, Points, RecordEntry,
    RecordExit, RecordType, Rulebook, Schedule, ScoreRule, ScoringModel, Severity,
};
use socred_core::time::{Calendar, Day, Period};

use super::cel::{self, ScopeFields};
use super::raw::{self, Located};
use super::shape::suggestion;
use super::source::Diagnostics;

/// The file's sections after the shape check, ready for the semantic checks.
pub(crate) struct Sections {
    pub header: Option<raw::Header>,
    pub policy: Option<raw::Policy>,
    pub calendar: Option<raw::Calendar>,
    pub record_types: Vec<Located<raw::RecordType>>,
    pub models: Vec<Located<raw::Model>>,
    pub lists: Vec<Located<raw::List>>,
    pub measures: Vec<Located<raw::Measure>>,
    pub declared: Declared,
}

/// Ids written in the file, including those of elements dropped for their
/// shape: a reference to one of them is not "unknown".
#[derive(Default)]
pub(crate) struct Declared {
    pub record_types: BTreeSet<String>,
    pub models: BTreeSet<String>,
    pub lists: BTreeSet<String>,
}

/// What the other sections need to know of a record type.
struct TypeInfo {
    kinds: Option<KindSet>,
    fields: ScopeFields,
}

struct Catalog {
    types: Vec<Option<RecordType>>,
    info: Vec<TypeInfo>,
    by_id: BTreeMap<String, usize>,
    categories: BTreeSet<String>,
    relation_fields: BTreeSet<String>,
    has_profession_field: bool,
}

struct ModelInfo {
    id: String,
    kinds: Option<KindSet>,
    /// Every grade the model gives: its bands', then those only records
    /// assign (M).
    grades: Vec<String>,
    /// How many of `grades` are bands, which points can give.
    bands: usize,
}

struct Models {
    lowered: Vec<Option<ScoringModel>>,
    info: Vec<ModelInfo>,
    by_id: BTreeMap<String, usize>,
}

struct ListInfo {
    kind: ListKind,
    /// Subjects get on the list by their grade.
    by_grade: bool,
}

struct Lists {
    lowered: Vec<Option<ListDef>>,
    info: Vec<ListInfo>,
    by_id: BTreeMap<String, usize>,
}

/// The record types of a list's entries (catalog index, as written).
type EntryTypes<'r> = Vec<(usize, &'r Located<String>)>;

/// Whether a grade's name is letters (of any script), digits, `+` and `-`,
/// at most 16 characters: a name with a space, a line break or another
/// invisible character would show as another grade, or break a line of a
/// report.
fn grade_name_is_plain(name: &str) -> bool {
    name.chars().count() <= 16
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '+' || c == '-')
}

/// A day to compare periods on: any day does, these are whole-period rules.
const REFERENCE_DAY: Day = Day(10_957); // 2000-01-01

pub(crate) fn lower(sections: &Sections, diag: &mut Diagnostics<'_>) -> Option<Rulebook> {
    let mut cx = Lowering {
        diag,
        declared: &sections.declared,
    };
    let header = sections
        .header
        .as_ref()
        .and_then(|header| cx.header(header));
    let allow_score_only = sections
        .policy
        .as_ref()
        .and_then(|policy| policy.allow_score_only_punishment.as_ref())
        .is_some_and(|flag| flag.value);
    let calendar = match &sections.calendar {
        Some(calendar) => cx.calendar(calendar),
        None => Some(Calendar::default()),
    };
    let objection_deadline = match sections
        .policy
        .as_ref()
        .and_then(|policy| policy.objection_deadline.as_ref())
    {
        Some(deadline) => cx.period(deadline, "objection_deadline", "[policy]"),
        None => Some(Rulebook::OBJECTION_DEADLINE_DEFAULT),
    };
    let audit_retention = match sections
        .policy
        .as_ref()
        .and_then(|policy| policy.audit_retention.as_ref())
    {
        Some(retention) => cx.audit_retention(retention).map(Some),
        None => Some(None),
    };
    let catalog = cx.catalog(&sections.record_types);
    let models = cx.models(&sections.models, &catalog);
    let lists = cx.lists(&sections.lists, &catalog, &models);
    let measures: Vec<Option<Measure>> = sections
        .measures
        .iter()
        .map(|measure| cx.measure(measure, &lists, &models, allow_score_only))
        .collect();

    let (id, version) = header?;
    let catalog_types: Option<Vec<RecordType>> = catalog.types.into_iter().collect();
    let catalog_types = catalog_types?;
    let mut catalog_index = BTreeMap::new();
    for (index, record_type) in catalog_types.iter().enumerate() {
        catalog_index.insert(record_type.id, u32::try_from(index).ok()?);
    }
    Some(Rulebook {
        id,
        version,
        catalog: catalog_types,
        models: models.lowered.into_iter().collect::<Option<_>>()?,
        lists: lists.lowered.into_iter().collect::<Option<_>>()?,
        measures: measures.into_iter().collect::<Option<_>>()?,
        calendar: calendar?,
        objection_deadline: objection_deadline?,
        audit_retention: audit_retention?,
        catalog_index,
    })
}

struct Lowering<'a, 'd, 't> {
    diag: &'a mut Diagnostics<'t>,
    declared: &'d Declared,
}

impl Lowering<'_, '_, '_> {
    // ----- building blocks -------------------------------------------------

    /// Ids are lower-case ASCII so that they are the same in URLs, files and
    /// CEL everywhere: letters, digits, `_`, `.`, `-`, starting with a letter.
    fn id(&mut self, id: &Located<String>, what: &str) -> Option<Arc<str>> {
        let text = id.value.as_str();
        let starts_well = text.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
        if starts_well && rest_ok {
            return Some(Arc::from(text));
        }
        self.diag.error(
            &id.span,
            format!(
                "{what} id `{text}` must start with a lower-case letter and hold only lower-case \
                 letters, digits, `_`, `.` and `-`"
            ),
        );
        None
    }

    /// Reports every id that was used before in the same namespace.
    fn unique_ids<'x>(&mut self, ids: impl Iterator<Item = &'x Located<String>>, what: &str) {
        let mut first: BTreeMap<&str, usize> = BTreeMap::new();
        for id in ids {
            match first.get(id.value.as_str()) {
                Some(&offset) => {
                    let line = self.diag.line_of(offset);
                    self.diag.error(
                        &id.span,
                        format!(
                            "duplicate {what} id `{}` (first defined on line {line})",
                            id.value
                        ),
                    );
                }
                None => {
                    first.insert(id.value.as_str(), id.span.start);
                }
            }
        }
    }

    fn text(&mut self, text: &Located<String>, key: &str, what: &str) -> Option<String> {
        if text.value.trim().is_empty() {
            self.diag
                .error(&text.span, format!("{what} has an empty `{key}`"));
            return None;
        }
        Some(text.value.clone())
    }

    fn legal_basis(&mut self, basis: &Located<String>, what: &str) -> Option<String> {
        if basis.value.trim().is_empty() {
            self.diag.error(
                &basis.span,
                format!(
                    "{what} has an empty `legal_basis`: every record type, list, measure and \
                     expectation must name the law or published rule it rests on"
                ),
            );
            return None;
        }
        Some(basis.value.clone())
    }

    fn period(&mut self, period: &Located<String>, key: &str, what: &str) -> Option<Period> {
        match period.value.parse::<Period>() {
            Ok(parsed) if parsed.is_zero() => {
                self.diag.error(
                    &period.span,
                    format!("`{key}` of {what} is an empty period"),
                );
                None
            }
            Ok(parsed) => Some(parsed),
            Err(error) => {
                self.diag
                    .error(&period.span, format!("`{key}` of {what}: {error}"));
                None
            }
        }
    }

    /// `[policy] audit_retention`: a period no shorter than six months from
    /// any day of the year (a leap year's days are all tried).
    fn audit_retention(&mut self, retention: &Located<String>) -> Option<Period> {
        let period = self.period(retention, "audit_retention", "[policy]")?;
        let minimum = Rulebook::AUDIT_RETENTION_MIN;
        let start = Day::from_civil(2024, 1, 1);
        let short = (0..366)
            .map(|offset| start.add_days(offset))
            .any(|day| period.after(day) < minimum.after(day));
        if short {
            self.diag.error(
                &retention.span,
                "`audit_retention` of [policy] is shorter than six months: the \
                 Cybersecurity Law of the PRC (art. 21) has network logs kept for \
                 at least six months",
            );
            return None;
        }
        Some(period)
    }

    fn kinds(&mut self, kinds: &Located<Vec<raw::SubjectKind>>, what: &str) -> Option<KindSet> {
        let set = kind_set(&kinds.value);
        if set.is_empty() {
            // A kind the shape check refused is left out: not empty then.
            if !self.diag.reported_within(&kinds.span) {
                self.diag
                    .error(&kinds.span, format!("{what} has an empty `subject_kinds`"));
            }
            return None;
        }
        Some(set)
    }

    fn record_type(
        &mut self,
        catalog: &Catalog,
        name: &Located<String>,
        what: &str,
    ) -> Option<usize> {
        if let Some(&index) = catalog.by_id.get(&name.value) {
            return Some(index);
        }
        if !self.declared.record_types.contains(&name.value) {
            let hint = suggestion(&name.value, catalog.by_id.keys().map(String::as_str));
            self.diag.error(
                &name.span,
                format!("{what} names unknown record type `{}`{hint}", name.value),
            );
        }
        None
    }

    fn model_ref(&mut self, models: &Models, name: &Located<String>, what: &str) -> Option<usize> {
        if let Some(&index) = models.by_id.get(&name.value) {
            return Some(index);
        }
        if !self.declared.models.contains(&name.value) {
            let hint = suggestion(&name.value, models.by_id.keys().map(String::as_str));
            self.diag.error(
                &name.span,
                format!("{what} names unknown model `{}`{hint}", name.value),
            );
        }
        None
    }

    /// Checks grade names against the model's bands (when the model is
    /// known: an unknown model is reported where it is named).
    fn grades(
        &mut self,
        grades: &[Located<String>],
        model: Option<&ModelInfo>,
        what: &str,
    ) -> Option<Vec<Arc<str>>> {
        let mut ok = true;
        let mut out = Vec::new();
        for grade in grades {
            if let Some(model) = model {
                if !model.grades.contains(&grade.value) {
                    let message = format!(
                        "{what} names grade `{}`, which model `{}` does not define (its grades: {})",
                        grade.value,
                        model.id,
                        model.grades.join(", ")
                    );
                    self.diag.error(&grade.span, message);
                    ok = false;
                    continue;
                }
            }
            out.push(Arc::from(grade.value.as_str()));
        }
        ok.then_some(out)
    }

    fn cel_record(
        &mut self,
        source: &Located<String>,
        fields: &ScopeFields,
        gives: cel::Gives,
        what: &str,
    ) -> Option<socred_core::expr::Program> {
        cel::compile(self.diag, source, Scope::Record { fields }, gives, what)
    }

    /// Reports an expression about a record that fails (or gives no value
    /// of its kind) on every record of the type among a few sample values
    /// of its fields (within their bounds and values): at run time a
    /// failure counts as false or as no points, and the rule would do
    /// nothing in silence. `fields.cycles / 0` is caught here;
    /// `100 / fields.cycles`, which fails on one value only, is not.
    fn fails_on_samples(
        &mut self,
        program: &socred_core::expr::Program,
        record_type: &RecordType,
        gives: cel::Gives,
        span: &std::ops::Range<usize>,
        what: &str,
    ) {
        const TRIED_MAX: usize = 64;
        let samples: Vec<(Arc<str>, Vec<Option<Value>>)> = record_type
            .fields
            .iter()
            .map(|def| (def.name.clone(), field_samples(def)))
            .collect();
        let kind = if record_type.subject_kinds.contains(SubjectKind::Person) {
            SubjectKind::Person
        } else {
            SubjectKind::Organisation
        };
        let combinations = samples
            .iter()
            .try_fold(1usize, |n, (_, values)| n.checked_mul(values.len()))
            .unwrap_or(usize::MAX)
            .min(TRIED_MAX);
        let mut failure = None;
        for mut index in 0..combinations {
            let fields: Fields = samples
                .iter()
                .filter_map(|(name, values)| {
                    let value = values[index % values.len()].clone();
                    index /= values.len();
                    Some((name.clone(), value?))
                })
                .collect();
            let context = socred_core::expr::Context {
                fields: Some(&fields),
                record_type: &record_type.id,
                provider: "",
                subject_kind: kind,
                profession: "",
                score: None,
                grade: "",
                lists: &[],
            };
            let shown = || {
                let given: Vec<String> = fields
                    .iter()
                    .map(|(name, value)| format!("{name} = {}", sample_text(value)))
                    .collect();
                if given.is_empty() {
                    "no field given".to_string()
                } else {
                    given.join(", ")
                }
            };
            match (program.eval(&context), gives) {
                (Ok(Outcome::Bool(_)), cel::Gives::Bool)
                | (Ok(Outcome::Int(_)), cel::Gives::Number) => return,
                (Ok(Outcome::Double(x)), cel::Gives::Number) if x.is_finite() => return,
                (Ok(other), _) => {
                    failure.get_or_insert_with(|| format!("with {} it gives {other:?}", shown()));
                }
                (Err(message), _) => {
                    failure.get_or_insert_with(|| format!("with {}: {message}", shown()));
                }
            }
        }
        if let Some(failure) = failure {
            self.diag.error(
                span,
                format!(
                    "{what} fails on every record tried ({combinations} sets of field values, \
                     within their bounds), e.g. {failure}; at run time a failure counts as no \
                     points or as false, so the rule would do nothing in silence"
                ),
            );
        }
    }

    // ----- header ----------------------------------------------------------

    fn header(&mut self, header: &raw::Header) -> Option<(Arc<str>, Arc<str>)> {
        let id = self.id(&header.id, "rulebook");
        let version = self.text(&header.version, "version", "the rulebook");
        let title = self.text(&header.title, "title", "the rulebook");
        if let Some(format) = &header.format {
            if format.value != 1 {
                self.diag.error(
                    &format.span,
                    format!(
                        "rulebook format {} is not known: this socred reads format 1",
                        format.value
                    ),
                );
                return None;
            }
        }
        title?;
        Some((id?, Arc::from(version?.as_str())))
    }

    // ----- catalog ---------------------------------------------------------

    fn catalog(&mut self, record_types: &[Located<raw::RecordType>]) -> Catalog {
        let mut catalog = Catalog {
            types: Vec::new(),
            info: Vec::new(),
            by_id: BTreeMap::new(),
            categories: BTreeSet::new(),
            relation_fields: BTreeSet::new(),
            has_profession_field: false,
        };
        for (index, record_type) in record_types.iter().enumerate() {
            let raw = &record_type.value;
            catalog.by_id.entry(raw.id.value.clone()).or_insert(index);
            catalog.categories.insert(raw.category.value.clone());
            catalog
                .relation_fields
                .extend(raw.relation_fields.iter().map(|f| f.value.clone()));
            catalog.has_profession_field |= raw.profession_field.is_some();
            let fields: ScopeFields = raw
                .fields
                .iter()
                .map(|(name, field)| (Arc::from(name.value.as_str()), field_type(field.field_type)))
                .collect();
            catalog.info.push(TypeInfo {
                kinds: Some(kind_set(&raw.subject_kinds.value)),
                fields,
            });
            let lowered = self.record_type_entry(record_type);
            catalog.types.push(lowered);
        }
        catalog
    }

    fn record_type_entry(&mut self, record_type: &Located<raw::RecordType>) -> Option<RecordType> {
        let raw = &record_type.value;
        let what = format!("record type `{}`", raw.id.value);
        let id = self.id(&raw.id, "record type");
        let title = self.text(&raw.title, "title", &what);
        let kinds = self.kinds(&raw.subject_kinds, &what);
        let category = self.text(&raw.category, "category", &what);
        let legal_basis = self.legal_basis(&raw.legal_basis, &what);
        let retention = self.period(&raw.retention, "retention", &what);
        let publicity = match &raw.publicity {
            Some(publicity) => self.period(publicity, "publicity", &what).map(Some),
            None => Some(None),
        };
        let publicity_min = self.publicity_min(raw, publicity.flatten(), &what);
        let fields = self.field_defs(raw, &what);
        let profession_field = match &raw.profession_field {
            Some(name) => {
                let wanted = (raw::FieldType::Text, "a text field");
                self.typed_field(raw, name, wanted, "profession_field", &what)
                    .map(Some)
            }
            None => Some(None),
        };
        let mut relation_fields = Vec::new();
        let mut relations_ok = true;
        for name in &raw.relation_fields {
            let wanted = (raw::FieldType::Subject, "of type \"subject\"");
            match self.typed_field(raw, name, wanted, "relation field", &what) {
                Some(name) => relation_fields.push(name),
                None => relations_ok = false,
            }
        }
        relations_ok.then_some(())?;
        Some(RecordType {
            id: id?.into(),
            title: title?,
            subject_kinds: kinds?,
            category: category?,
            severity: severity(raw.severity),
            legal_basis: legal_basis?,
            fields: fields?,
            retention: retention?,
            publicity: publicity?,
            publicity_min: publicity_min?,
            consent_required: raw.consent_required,
            profession_field: profession_field?,
            relation_fields,
            dispute_policy: match raw.dispute_policy {
                Some(raw::DisputePolicy::Standing) => DisputePolicy::Standing,
                Some(raw::DisputePolicy::Suspended) | None => DisputePolicy::Suspended,
            },
        })
    }

    /// The fields of a record type; None when a name is not a CEL identifier.
    fn field_defs(&mut self, raw: &raw::RecordType, what: &str) -> Option<Vec<FieldDef>> {
        let mut ok = true;
        let mut fields = Vec::new();
        for (name, field) in &raw.fields {
            if !is_field_name(&name.value) {
                self.diag.error(
                    &name.span,
                    format!(
                        "field `{}` of {what}: field names are lower-case letters, digits and `_`, \
                         starting with a letter or `_`, so that CEL can say `fields.<name>`",
                        name.value
                    ),
                );
                ok = false;
            }
            let Some((min, max, values)) = self.field_constraints(name, field, what) else {
                ok = false;
                continue;
            };
            fields.push(FieldDef {
                name: Arc::from(name.value.as_str()),
                field_type: field_type(field.field_type),
                required: field.required,
                min,
                max,
                values,
            });
        }
        ok.then_some(fields)
    }

    /// A field's bounds (`min`, `max`: int and number fields) and allowed
    /// values (`values`: text fields); None after a problem.
    #[allow(clippy::type_complexity)]
    fn field_constraints(
        &mut self,
        name: &Located<String>,
        field: &raw::Field,
        what: &str,
    ) -> Option<(Option<f64>, Option<f64>, Option<Vec<Arc<str>>>)> {
        let numeric = matches!(
            field.field_type,
            raw::FieldType::Int | raw::FieldType::Number
        );
        let mut ok = true;
        for (key, bound) in [("min", &field.min), ("max", &field.max)] {
            let Some(bound) = bound else { continue };
            if !numeric {
                let message = format!(
                    "`{key}` of field `{}` of {what}: bounds apply to `int` and `number` fields only",
                    name.value
                );
                self.diag.error(&bound.span, message);
                ok = false;
            } else if !bound.value.is_finite() {
                let message = format!("`{key}` of field `{}` of {what} must be finite", name.value);
                self.diag.error(&bound.span, message);
                ok = false;
            } else if field.field_type == raw::FieldType::Int && bound.value.abs() > INT_BOUND_MAX {
                // Beyond it a double is no longer exact, and the comparison
                // with a record's int would be off.
                let message = format!(
                    "`{key}` of int field `{}` of {what} is beyond ±2^53 ({INT_BOUND_MAX}), \
                     the largest bound compared exactly",
                    name.value
                );
                self.diag.error(&bound.span, message);
                ok = false;
            }
        }
        if let (Some(min), Some(max)) = (&field.min, &field.max) {
            if min.value > max.value {
                let message = format!(
                    "field `{}` of {what}: `min` ({}) is above `max` ({})",
                    name.value, min.value, max.value
                );
                self.diag.error(&min.span, message);
                ok = false;
            }
        }
        if let Some(values) = &field.values {
            let mut problem = None;
            if field.field_type != raw::FieldType::Text {
                problem = Some("a list of values applies to `text` fields only".to_string());
            } else if values.value.is_empty() {
                problem = Some("the list of values is empty: no record could give one".to_string());
            } else if let Some(blank) = values.value.iter().find(|value| value.trim().is_empty()) {
                problem = Some(format!("the list of values holds a blank value {blank:?}"));
            } else if let Some(twice) = values
                .value
                .iter()
                .enumerate()
                .find(|(at, value)| values.value[..*at].contains(value))
            {
                problem = Some(format!("the list of values holds {:?} twice", twice.1));
            }
            if let Some(problem) = problem {
                let message = format!("`values` of field `{}` of {what}: {problem}", name.value);
                self.diag.error(&values.span, message);
                ok = false;
            }
        }
        ok.then(|| {
            (
                field.min.as_ref().map(|bound| bound.value),
                field.max.as_ref().map(|bound| bound.value),
                field.values.as_ref().map(|values| {
                    values
                        .value
                        .iter()
                        .map(|value| Arc::from(value.as_str()))
                        .collect()
                }),
            )
        })
    }

    /// A field of the record type named by `key`, which must have the
    /// wanted type.
    fn typed_field(
        &mut self,
        raw: &raw::RecordType,
        name: &Located<String>,
        (wanted, wanted_text): (raw::FieldType, &str),
        key: &str,
        what: &str,
    ) -> Option<Arc<str>> {
        let found = raw
            .fields
            .iter()
            .find(|(field, _)| field.value == name.value);
        match found.map(|(_, field)| field.field_type) {
            Some(field_type) if field_type == wanted => Some(Arc::from(name.value.as_str())),
            Some(_) => {
                let message = format!("{key} `{}` of {what} must be {wanted_text}", name.value);
                self.diag.error(&name.span, message);
                None
            }
            None => {
                let message = format!("{key} `{}` is not a field of {what}", name.value);
                self.diag.error(&name.span, message);
                None
            }
        }
    }

    // ----- models ----------------------------------------------------------

    fn models(&mut self, models: &[Located<raw::Model>], catalog: &Catalog) -> Models {
        let mut out = Models {
            lowered: Vec::new(),
            info: Vec::new(),
            by_id: BTreeMap::new(),
        };
        for (index, model) in models.iter().enumerate() {
            let raw = &model.value;
            out.by_id.entry(raw.id.value.clone()).or_insert(index);
            // Measures and lists may name an assigned grade's own label
            // (M) as they name a band's.
            let mut grades: Vec<String> = raw
                .grades
                .iter()
                .map(|g| g.value.grade.value.clone())
                .collect();
            let bands = grades.len();
            for assigned in &raw.assigned_grade {
                if !grades.contains(&assigned.value.grade.value) {
                    grades.push(assigned.value.grade.value.clone());
                }
            }
            out.info.push(ModelInfo {
                id: raw.id.value.clone(),
                kinds: Some(kind_set(&raw.subject_kinds.value)).filter(|k| !k.is_empty()),
                grades,
                bands,
            });
            let lowered = self.model(raw, catalog);
            out.lowered.push(lowered);
        }
        out
    }

    fn model(&mut self, raw: &raw::Model, catalog: &Catalog) -> Option<ScoringModel> {
        let what = format!("model `{}`", raw.id.value);
        let id = self.id(&raw.id, "model");
        let title = self.text(&raw.title, "title", &what);
        let kinds = self.kinds(&raw.subject_kinds, &what);
        let grades = self.grade_bands(&raw.grades, &what);
        // Rules, caps and expectations of one model share one namespace: an
        // effect names the rule that made it.
        let ids = raw
            .rule
            .iter()
            .map(|r| &r.value.id)
            .chain(raw.cap.iter().map(|c| &c.value.id))
            .chain(raw.expectation.iter().map(|e| &e.value.id));
        self.unique_ids(ids, &format!("rule, cap or expectation of {what}"));
        let mut rules = Vec::new();
        let mut rules_ok = true;
        for rule in &raw.rule {
            match self.rule(&rule.value, kinds, catalog, &what) {
                Some(lowered) => rules.push(lowered),
                None => rules_ok = false,
            }
        }
        let mut caps = Vec::new();
        for cap in &raw.cap {
            match self.cap(&cap.value, catalog, &what) {
                Some(lowered) => caps.push(lowered),
                None => rules_ok = false,
            }
        }
        let mut expectations = Vec::new();
        for expectation in &raw.expectation {
            match self.expectation(&expectation.value, kinds, &what) {
                Some(lowered) => expectations.push(lowered),
                None => rules_ok = false,
            }
        }
        let assigned_grades = self.assigned_grades(&raw.assigned_grade, kinds, catalog, &what);
        rules_ok &= assigned_grades.is_some();
        if !rules_ok {
            return None;
        }
        title?;
        Some(ScoringModel {
            id: id?.into(),
            subject_kinds: kinds?,
            base_points: raw.base_points,
            consent_required_for: kind_set(&raw.consent_required_for),
            grades: grades?,
            rules,
            caps,
            expectations,
            requires_records: raw.requires_records,
            assigned_grades: assigned_grades?,
            note: raw.note.clone(),
        })
    }

    /// The grades a model's records assign; None when one is wrong. One
    /// entry per record type: two would leave no rule to choose between
    /// them.
    fn assigned_grades(
        &mut self,
        assigned: &[Located<raw::AssignedGrade>],
        model_kinds: Option<KindSet>,
        catalog: &Catalog,
        model: &str,
    ) -> Option<Vec<AssignedGrade>> {
        let mut ok = true;
        let mut out = Vec::with_capacity(assigned.len());
        let mut first: BTreeMap<&str, usize> = BTreeMap::new();
        for entry in assigned {
            let record_type = &entry.value.record_type;
            match first.get(record_type.value.as_str()) {
                Some(&offset) => {
                    let line = self.diag.line_of(offset);
                    self.diag.error(
                        &record_type.span,
                        format!(
                            "{model} assigns a grade by record type `{}` twice (first on line \
                             {line}): give one `assigned_grade` per record type",
                            record_type.value
                        ),
                    );
                    ok = false;
                }
                None => {
                    first.insert(record_type.value.as_str(), record_type.span.start);
                }
            }
            match self.assigned_grade(&entry.value, model_kinds, catalog, model) {
                Some(lowered) => out.push(lowered),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn assigned_grade(
        &mut self,
        assigned: &raw::AssignedGrade,
        model_kinds: Option<KindSet>,
        catalog: &Catalog,
        model: &str,
    ) -> Option<AssignedGrade> {
        let what = format!(
            "assigned grade `{}` (by `{}`) of {model}",
            assigned.grade.value, assigned.record_type.value
        );
        let grade = self.text(&assigned.grade, "grade", &what);
        let index = self.record_type(catalog, &assigned.record_type, &what);
        let mut ok = true;
        let type_kinds = index
            .and_then(|i| catalog.info.get(i))
            .and_then(|i| i.kinds);
        if let (Some(type_kinds), Some(model_kinds)) = (type_kinds, model_kinds) {
            if intersect(type_kinds, model_kinds).is_empty() {
                self.diag.error(
                    &assigned.record_type.span,
                    format!(
                        "{what}: record type `{}` is about {} and the model grades {}: it could \
                         never assign the grade",
                        assigned.record_type.value,
                        describe_kinds(type_kinds),
                        describe_kinds(model_kinds)
                    ),
                );
                ok = false;
            }
        }
        let mut until = Vec::with_capacity(assigned.until.len());
        let until_what = format!("`until` of {what}");
        for name in &assigned.until {
            match self.record_type(catalog, name, &until_what) {
                Some(index) => match u32::try_from(index) {
                    Ok(index) if !until.contains(&index) => until.push(index),
                    Ok(_) => {}
                    Err(_) => ok = false,
                },
                None => ok = false,
            }
        }
        let validity = match &assigned.validity {
            Some(validity) => self.period(validity, "validity", &what).map(Some),
            None => Some(None),
        };
        // The record type's own basis, when it loaded (its problems are
        // reported where it is defined).
        let legal_basis = match &assigned.legal_basis {
            Some(basis) => self.legal_basis(basis, &what),
            None => index
                .and_then(|i| catalog.types.get(i))
                .and_then(Option::as_ref)
                .map(|t| t.legal_basis.clone()),
        };
        ok.then_some(())?;
        Some(AssignedGrade {
            record_type: u32::try_from(index?).ok()?,
            grade: Arc::from(grade?.as_str()),
            until,
            validity: validity?,
            exit_on_repair: assigned.exit_on_repair,
            legal_basis: Arc::from(legal_basis?.as_str()),
        })
    }

    fn grade_bands(
        &mut self,
        grades: &[Located<raw::Grade>],
        what: &str,
    ) -> Option<Vec<GradeBand>> {
        let mut bands: Vec<GradeBand> = Vec::new();
        let mut ok = true;
        let mut open_band: Option<&Located<raw::Grade>> = None;
        let mut mins: BTreeMap<i64, &str> = BTreeMap::new();
        self.unique_ids(
            grades.iter().map(|g| &g.value.grade),
            &format!("grade of {what}"),
        );
        for grade in grades {
            let name = &grade.value.grade;
            if name.value.trim().is_empty() {
                self.diag
                    .error(&name.span, format!("{what} has a grade with an empty name"));
                ok = false;
            } else if !grade_name_is_plain(&name.value) {
                self.diag.error(
                    &name.span,
                    format!(
                        "grade `{}` of {what} must be letters, digits, `+` and `-` (at most 16 characters), as it is shown and compared",
                        name.value.escape_debug()
                    ),
                );
                ok = false;
            }
            let points_min = match &grade.value.min {
                Some(min) => {
                    if let Some(other) = mins.insert(min.value, &name.value) {
                        self.diag.error(
                            &min.span,
                            format!(
                                "grades `{other}` and `{}` of {what} both start at {}",
                                name.value, min.value
                            ),
                        );
                        ok = false;
                    }
                    min.value
                }
                None if self.diag.reported_within(&grade.span) => {
                    // Its `min` was refused and left out: not missing.
                    ok = false;
                    i64::MIN
                }
                None => {
                    if let Some(first) = open_band {
                        self.diag.error(
                            &grade.span,
                            format!(
                                "grades `{}` and `{}` of {what} both leave out `min`: only the lowest band may",
                                first.value.grade.value, name.value
                            ),
                        );
                        ok = false;
                    }
                    open_band = Some(grade);
                    i64::MIN
                }
            };
            bands.push(GradeBand {
                grade: Arc::from(name.value.as_str()),
                points_min,
            });
        }
        bands.sort_by_key(|band| std::cmp::Reverse(band.points_min));
        ok.then_some(bands)
    }

    fn rule(
        &mut self,
        rule: &raw::Rule,
        model_kinds: Option<KindSet>,
        catalog: &Catalog,
        model: &str,
    ) -> Option<ScoreRule> {
        let what = format!("rule `{}` of {model}", rule.id.value);
        let id = self.id(&rule.id, "rule");
        let type_index = self.record_type(catalog, &rule.record_type, &what);
        let info = type_index.and_then(|index| catalog.info.get(index));
        let fields: &[(Arc<str>, FieldType)] = info.map_or(&[], |info| info.fields.as_slice());
        let fields: ScopeFields = fields.to_vec();

        let condition = match &rule.when {
            Some(when) if info.is_some() => self
                .cel_record(
                    when,
                    &fields,
                    cel::Gives::Bool,
                    &format!("`when` of {what}"),
                )
                .map(Some),
            Some(_) => None,
            None => Some(None),
        };
        let record_type = type_index.and_then(|index| catalog.types.get(index)?.as_ref());
        if let (Some(Some(program)), Some(when), Some(record_type)) =
            (&condition, &rule.when, record_type)
        {
            self.fails_on_samples(
                program,
                record_type,
                cel::Gives::Bool,
                &when.span,
                &format!("`when` of {what}"),
            );
        }
        let points = match &rule.points.value {
            raw::Points::Constant(points) => Some(Points::Constant(*points)),
            raw::Points::Expression(source) if info.is_some() => {
                let located = Located {
                    value: source.clone(),
                    span: rule.points.span.clone(),
                };
                let program = self.cel_record(
                    &located,
                    &fields,
                    cel::Gives::Number,
                    &format!("`points` of {what}"),
                );
                if let (Some(program), Some(record_type)) = (&program, record_type) {
                    self.fails_on_samples(
                        program,
                        record_type,
                        cel::Gives::Number,
                        &located.span,
                        &format!("`points` of {what}"),
                    );
                }
                program.map(Points::Expression)
            }
            raw::Points::Expression(_) => None,
        };
        let mut ok = true;
        if let (Some(min), Some(max)) = (&rule.points_min, &rule.points_max) {
            if min.value > max.value {
                self.diag.error(
                    &min.span,
                    format!(
                        "{what} has points_min {} above points_max {}",
                        min.value, max.value
                    ),
                );
                ok = false;
            }
        }
        let validity = self.period(&rule.validity, "validity", &what);
        let escalation = match &rule.escalation {
            Some(escalation) => self.escalation(&escalation.value, &what).map(Some),
            None => Some(None),
        };
        let kinds = self.rule_kinds(
            rule.subject_kinds.as_ref(),
            info.and_then(|i| i.kinds),
            model_kinds,
            &rule.record_type,
            &what,
        );
        let mut professions = Vec::new();
        if let (false, Some(first)) = (catalog.has_profession_field, rule.professions.first()) {
            self.diag.error(
                &first.span,
                format!("{what} is limited to professions, but no record type of the catalog sets a profession (`profession_field`)"),
            );
            ok = false;
        }
        for profession in &rule.professions {
            match self.id(profession, "profession") {
                Some(profession) => professions.push(profession),
                None => ok = false,
            }
        }
        ok.then_some(())?;
        Some(ScoreRule {
            id: id?.into(),
            record_type: u32::try_from(type_index?).ok()?,
            condition: condition?,
            points: points?,
            points_min: rule.points_min.as_ref().map(|m| m.value),
            points_max: rule.points_max.as_ref().map(|m| m.value),
            validity: validity?,
            escalation: escalation?,
            subject_kinds: kinds?,
            professions,
        })
    }

    /// A rule's subject kinds: those given (which the record type and the
    /// model must both allow), or else what both allow.
    fn rule_kinds(
        &mut self,
        given: Option<&Located<Vec<raw::SubjectKind>>>,
        type_kinds: Option<KindSet>,
        model_kinds: Option<KindSet>,
        record_type: &Located<String>,
        what: &str,
    ) -> Option<KindSet> {
        let (type_kinds, model_kinds) = (type_kinds?, model_kinds?);
        let allowed = intersect(type_kinds, model_kinds);
        match given {
            Some(given) => {
                let kinds = self.kinds(given, what)?;
                if !subset(kinds, allowed) {
                    self.diag.error(
                        &given.span,
                        format!(
                            "{what} is for {}, but this model scores `{}` records of {} only",
                            describe_kinds(kinds),
                            record_type.value,
                            describe_kinds(allowed)
                        ),
                    );
                    return None;
                }
                Some(kinds)
            }
            None if allowed.is_empty() => {
                self.diag.error(
                    &record_type.span,
                    format!(
                        "{what}: record type `{}` is about {} and the model scores {}: the rule could never apply",
                        record_type.value,
                        describe_kinds(type_kinds),
                        describe_kinds(model_kinds)
                    ),
                );
                None
            }
            None => Some(allowed),
        }
    }

    fn escalation(&mut self, escalation: &raw::Escalation, what: &str) -> Option<Escalation> {
        let window = self.period(&escalation.window, "escalation.window", what);
        let mut ok = true;
        if escalation.from_count.value < 2 {
            self.diag.error(
                &escalation.from_count.span,
                format!("escalation.from_count of {what} must be 2 or more (the first occurrence is never a repeat)"),
            );
            ok = false;
        }
        if escalation.multiplier.value < 2 {
            self.diag.error(
                &escalation.multiplier.span,
                format!("escalation.multiplier of {what} must be 2 or more"),
            );
            ok = false;
        }
        ok.then_some(())?;
        Some(Escalation {
            window: window?,
            from_count: escalation.from_count.value,
            multiplier: escalation.multiplier.value,
        })
    }

    fn cap(&mut self, cap: &raw::Cap, catalog: &Catalog, model: &str) -> Option<Cap> {
        let what = format!("cap `{}` of {model}", cap.id.value);
        let id = self.id(&cap.id, "cap");
        let mut ok = true;
        if !catalog.categories.contains(&cap.category.value) {
            let hint = suggestion(
                &cap.category.value,
                catalog.categories.iter().map(String::as_str),
            );
            self.diag.error(
                &cap.category.span,
                format!(
                    "{what} names category `{}`, which no record type has{hint}",
                    cap.category.value
                ),
            );
            ok = false;
        }
        for (bound, key) in [(&cap.gain_max, "gain_max"), (&cap.loss_max, "loss_max")] {
            if let Some(bound) = bound {
                if bound.value < 0 {
                    self.diag.error(&bound.span, format!("`{key}` of {what} must not be negative (loss_max is a positive number of points)"));
                    ok = false;
                }
            }
        }
        if cap.gain_max.is_none() && cap.loss_max.is_none() {
            self.diag.error(
                &cap.id.span,
                format!("{what} sets neither gain_max nor loss_max"),
            );
            ok = false;
        }
        ok.then_some(())?;
        Some(Cap {
            id: id?,
            category: cap.category.value.clone(),
            per: calendar(cap.per),
            gain_max: cap.gain_max.as_ref().map(|b| b.value),
            loss_max: cap.loss_max.as_ref().map(|b| b.value),
        })
    }

    fn expectation(
        &mut self,
        expectation: &raw::Expectation,
        model_kinds: Option<KindSet>,
        model: &str,
    ) -> Option<Expectation> {
        let what = format!("expectation `{}` of {model}", expectation.id.value);
        let id = self.id(&expectation.id, "expectation");
        let validity = self.period(&expectation.validity, "validity", &what);
        let legal_basis = self.legal_basis(&expectation.legal_basis, &what);
        let mut ok = true;
        if expectation.gain_min.value < 1 {
            self.diag.error(
                &expectation.gain_min.span,
                format!("`gain_min` of {what} must be at least 1"),
            );
            ok = false;
        }
        let kinds = match (&expectation.subject_kinds, model_kinds) {
            (Some(given), Some(model_kinds)) => {
                let kinds = self.kinds(given, &what)?;
                if !subset(kinds, model_kinds) {
                    self.diag.error(
                        &given.span,
                        format!(
                            "{what} is for {}, whom the model does not score",
                            describe_kinds(kinds)
                        ),
                    );
                    return None;
                }
                Some(kinds)
            }
            (None, model_kinds) => model_kinds,
            (Some(_), None) => None,
        };
        ok.then_some(())?;
        Some(Expectation {
            id: id?,
            per: calendar(expectation.per),
            gain_min: expectation.gain_min.value,
            points: expectation.points,
            validity: validity?,
            legal_basis: Arc::from(legal_basis?),
            subject_kinds: kinds?,
        })
    }

    // ----- calendar --------------------------------------------------------

    /// Holidays and working weekend days: plain dates, working weekend days
    /// on a Saturday or Sunday, and no day both.
    fn calendar(&mut self, calendar: &raw::Calendar) -> Option<Calendar> {
        // The dates that parse are checked further even when one does not,
        // so that every problem is reported at once.
        let (holidays, holidays_ok) = self.dates(&calendar.holidays, "holidays");
        let (working_weekends, weekends_ok) =
            self.dates(&calendar.working_weekends, "working_weekends");
        let mut ok = holidays_ok && weekends_ok;
        for (day, text) in &working_weekends {
            if day.weekday_from_monday() < 5 {
                self.diag.error(
                    &text.span,
                    format!(
                        "`working_weekends` of `[calendar]` names {}, which is not a Saturday \
                         or Sunday: weekdays are working days already",
                        text.value
                    ),
                );
                ok = false;
            }
            if holidays.iter().any(|(holiday, _)| holiday == day) {
                self.diag.error(
                    &text.span,
                    format!(
                        "{} is in both `holidays` and `working_weekends` of `[calendar]`",
                        text.value
                    ),
                );
                ok = false;
            }
        }
        ok.then_some(())?;
        Some(Calendar::new(
            holidays.into_iter().map(|(day, _)| day).collect(),
            working_weekends.into_iter().map(|(day, _)| day).collect(),
        ))
    }

    /// The dates that parse, and whether all did.
    fn dates<'r>(
        &mut self,
        dates: &'r [Located<String>],
        key: &str,
    ) -> (Vec<(Day, &'r Located<String>)>, bool) {
        let mut ok = true;
        let mut out = Vec::with_capacity(dates.len());
        for text in dates {
            match Day::parse_date(&text.value) {
                Ok(day) => out.push((day, text)),
                Err(_) => {
                    self.diag.error(
                        &text.span,
                        format!(
                            "`{key}` of `[calendar]`: `{}` is not a date (YYYY-MM-DD)",
                            text.value
                        ),
                    );
                    ok = false;
                }
            }
        }
        (out, ok)
    }

    // ----- lists -----------------------------------------------------------

    fn lists(&mut self, lists: &[Located<raw::List>], catalog: &Catalog, models: &Models) -> Lists {
        let mut out = Lists {
            lowered: Vec::new(),
            info: Vec::new(),
            by_id: BTreeMap::new(),
        };
        for (index, list) in lists.iter().enumerate() {
            let raw = &list.value;
            out.by_id.entry(raw.id.value.clone()).or_insert(index);
            out.info.push(ListInfo {
                kind: list_kind(raw.kind),
                by_grade: raw.grade_entry.is_some(),
            });
            let lowered = self.list(list, catalog, models);
            out.lowered.push(lowered);
        }
        let excluded_by = self.exclusions(lists, &out.by_id);
        for (lowered, excluded_by) in out.lowered.iter_mut().zip(excluded_by) {
            match (lowered.as_mut(), excluded_by) {
                (Some(list), Some(excluded_by)) => list.excluded_by = excluded_by,
                (Some(_), None) => *lowered = None,
                (None, _) => {}
            }
        }
        out
    }

    /// Resolves every list's `excluded_by` (None for a list where one is
    /// wrong): the ids must name other lists, and no list may end up
    /// excluding itself through others, or no day would settle who is on it.
    fn exclusions(
        &mut self,
        lists: &[Located<raw::List>],
        by_id: &BTreeMap<String, usize>,
    ) -> Vec<Option<Vec<u32>>> {
        let mut resolved: Vec<Option<Vec<u32>>> = Vec::with_capacity(lists.len());
        for (index, list) in lists.iter().enumerate() {
            let raw = &list.value;
            let what = format!("`excluded_by` of list `{}`", raw.id.value);
            let mut ok = true;
            let mut indices = Vec::new();
            for other in &raw.excluded_by {
                match by_id.get(&other.value) {
                    Some(&other_index) if other_index == index => {
                        self.diag.error(
                            &other.span,
                            format!("{what} names the list itself: a list cannot exclude itself"),
                        );
                        ok = false;
                    }
                    Some(&other_index) => match u32::try_from(other_index) {
                        Ok(other_index) if !indices.contains(&other_index) => {
                            indices.push(other_index)
                        }
                        Ok(_) => {}
                        Err(_) => ok = false,
                    },
                    None => {
                        if !self.declared.lists.contains(&other.value) {
                            let hint = suggestion(&other.value, by_id.keys().map(String::as_str));
                            self.diag.error(
                                &other.span,
                                format!("{what} names unknown list `{}`{hint}", other.value),
                            );
                        }
                        ok = false;
                    }
                }
            }
            resolved.push(ok.then_some(indices));
        }
        self.exclusion_cycles(lists, &mut resolved);
        resolved
    }

    /// Reports each cycle of exclusions once, at the reference that closes
    /// it, and drops the lists on it.
    fn exclusion_cycles(
        &mut self,
        lists: &[Located<raw::List>],
        resolved: &mut [Option<Vec<u32>>],
    ) {
        // Depth-first search: 0 unvisited, 1 on the current path, 2 done.
        let mut mark = vec![0u8; resolved.len()];
        let mut on_cycle = vec![false; resolved.len()];
        for start in 0..resolved.len() {
            if mark[start] != 0 {
                continue;
            }
            // (list, next position in its excluded_by)
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            mark[start] = 1;
            while let Some(&mut (list, ref mut next)) = path.last_mut() {
                let targets = resolved[list].as_deref().unwrap_or(&[]);
                let Some(&target) = targets.get(*next) else {
                    mark[list] = 2;
                    path.pop();
                    continue;
                };
                *next += 1;
                let target = target as usize;
                match mark.get(target) {
                    Some(0) => {
                        mark[target] = 1;
                        path.push((target, 0));
                    }
                    Some(1) => {
                        let from = path.iter().position(|&(l, _)| l == target).unwrap_or(0);
                        let names: Vec<&str> = path[from..]
                            .iter()
                            .map(|&(l, _)| lists[l].value.id.value.as_str())
                            .chain(std::iter::once(lists[target].value.id.value.as_str()))
                            .collect();
                        for &(l, _) in &path[from..] {
                            on_cycle[l] = true;
                        }
                        let reference = lists[list]
                            .value
                            .excluded_by
                            .iter()
                            .find(|r| r.value == lists[target].value.id.value);
                        let span = reference.map_or(&lists[list].span, |r| &r.span);
                        self.diag.error(
                            span,
                            format!(
                                "`excluded_by` forms a cycle ({}): lists that exclude each \
                                 other leave no way to tell who is on them",
                                names.join(" is excluded by ")
                            ),
                        );
                    }
                    _ => {}
                }
            }
        }
        for (list, cyclic) in on_cycle.into_iter().enumerate() {
            if cyclic {
                resolved[list] = None;
            }
        }
    }

    fn list(
        &mut self,
        list: &Located<raw::List>,
        catalog: &Catalog,
        models: &Models,
    ) -> Option<ListDef> {
        let raw = &list.value;
        let what = format!("list `{}`", raw.id.value);
        let id = self.id(&raw.id, "list");
        let title = self.text(&raw.title, "title", &what);
        let legal_basis = self.legal_basis(&raw.legal_basis, &what);
        let kinds = self.kinds(&raw.subject_kinds, &what);
        if raw.entry.is_empty() && raw.grade_entry.is_none() {
            self.diag.error(
                &list.span,
                format!("{what} has no way in: give `entry` records or a `grade_entry`"),
            );
        }
        let has_entry = !(raw.entry.is_empty() && raw.grade_entry.is_none());
        let (record_entries, entry_types) = self.list_entries(raw, kinds, catalog, &what);
        let grade_entry = match &raw.grade_entry {
            Some(grade_entry) => self.grade_entry(grade_entry, raw, kinds, models, &what),
            None => Some((Vec::new(), None)),
        };
        let durations = self.durations(raw, &what);
        let mut exits_ok = true;
        let mut exits = Vec::new();
        for exit in &raw.exit {
            match self.exit(&exit.value, &entry_types, catalog, &what) {
                Some(lowered) => exits.push(lowered),
                None => exits_ok = false,
            }
        }
        let reach = self.reach(raw, kinds, catalog, &what);
        let reach_legal_basis = match &raw.reach_legal_basis {
            Some(basis) => self
                .legal_basis(basis, &format!("the reach of {what}"))
                .map(|basis| Some(Arc::from(basis))),
            None => Some(None),
        };
        let (grade_entries, grade_model) = grade_entry?;
        let (duration_min, duration_max) = durations?;
        (exits_ok && has_entry).then_some(())?;
        Some(ListDef {
            id: id?.into(),
            title: title?,
            kind: list_kind(raw.kind),
            legal_basis: legal_basis?,
            subject_kinds: kinds?,
            record_entries: record_entries?,
            grade_entries,
            grade_model,
            duration_min,
            duration_max,
            exits,
            exit_on_repair: raw.exit_on_repair,
            public: raw.public,
            schedule: raw.schedule.map(|s| match s {
                raw::Schedule::Weekly => Schedule::Weekly,
                raw::Schedule::Monthly => Schedule::Monthly,
            }),
            reach: reach?,
            reach_legal_basis: reach_legal_basis?,
            review_required: raw.review,
            // Resolved once every list's id is known (see `exclusions`).
            excluded_by: Vec::new(),
        })
    }

    /// The record entries of a list (None when one is wrong), and the
    /// resolved entry record types that exits match against.
    fn list_entries<'r>(
        &mut self,
        raw: &'r raw::List,
        kinds: Option<KindSet>,
        catalog: &Catalog,
        what: &str,
    ) -> (Option<Vec<RecordEntry>>, EntryTypes<'r>) {
        let mut ok = true;
        let mut entries = Vec::new();
        let mut entry_types = Vec::new();
        for entry in &raw.entry {
            let record_type = &entry.value.record_type;
            let entry_what = format!("entry of {what}");
            let Some(index) = self.record_type(catalog, record_type, &entry_what) else {
                ok = false;
                continue;
            };
            entry_types.push((index, record_type));
            let info = catalog.info.get(index);
            if let (Some(list_kinds), Some(type_kinds)) = (kinds, info.and_then(|i| i.kinds)) {
                if intersect(list_kinds, type_kinds).is_empty() {
                    self.diag.error(
                        &record_type.span,
                        format!(
                            "{entry_what}: record type `{}` is about {} but the list holds {}",
                            record_type.value,
                            describe_kinds(type_kinds),
                            describe_kinds(list_kinds)
                        ),
                    );
                    ok = false;
                }
            }
            let mut condition = None;
            if let (Some(when), Some(info)) = (&entry.value.when, info) {
                let label = format!("`when` of the `{}` {entry_what}", record_type.value);
                condition = self.cel_record(when, &info.fields, cel::Gives::Bool, &label);
                ok &= condition.is_some();
            }
            match u32::try_from(index) {
                Ok(record_type) => entries.push(RecordEntry {
                    record_type,
                    condition,
                }),
                Err(_) => ok = false,
            }
        }
        (ok.then_some(entries), entry_types)
    }

    /// The grades of a model that put a subject on a list, and the model.
    fn grade_entry(
        &mut self,
        grade_entry: &Located<raw::GradeEntry>,
        list: &raw::List,
        kinds: Option<KindSet>,
        models: &Models,
        what: &str,
    ) -> Option<(Vec<Arc<str>>, Option<u32>)> {
        let entry = &grade_entry.value;
        let entry_what = format!("grade_entry of {what}");
        let mut ok = true;
        let model = self.model_ref(models, &entry.model, &entry_what);
        let info = model.and_then(|index| models.info.get(index));
        if let (Some(list_kinds), Some(model_kinds)) = (kinds, info.and_then(|i| i.kinds)) {
            if !subset(list_kinds, model_kinds) {
                self.diag.error(
                    &entry.model.span,
                    format!(
                        "{entry_what}: model `{}` scores {}, but the list holds {}",
                        entry.model.value,
                        describe_kinds(model_kinds),
                        describe_kinds(list_kinds)
                    ),
                );
                ok = false;
            }
        }
        let grades = self.grades(&entry.grades, info, &entry_what);
        if entry.grades.is_empty() {
            self.diag
                .error(&grade_entry.span, format!("{entry_what} names no grades"));
            ok = false;
        }
        if list.schedule.is_none() {
            self.diag.error(
                &grade_entry.span,
                format!(
                    "{what} is entered by grade but has no `schedule`: a grade changes every \
                     day, so membership is decided on publication days (weekly or monthly)"
                ),
            );
            ok = false;
        }
        ok.then_some(())?;
        Some((grades?, Some(u32::try_from(model?).ok()?)))
    }

    /// `publicity_min` of a record type (default: none), which needs a
    /// `publicity` at least as long.
    fn publicity_min(
        &mut self,
        raw: &raw::RecordType,
        publicity: Option<Period>,
        what: &str,
    ) -> Option<Period> {
        let Some(min_text) = &raw.publicity_min else {
            return Some(Period::default());
        };
        let min = self.period(min_text, "publicity_min", what)?;
        match (&raw.publicity, publicity) {
            (None, _) => {
                self.diag.error(
                    &min_text.span,
                    format!("{what} has a `publicity_min` but no `publicity`: it is never public"),
                );
                None
            }
            (Some(_), Some(publicity))
                if publicity.after(REFERENCE_DAY) < min.after(REFERENCE_DAY) =>
            {
                self.diag.error(
                    &min_text.span,
                    format!(
                        "publicity_min {min} of {what} is longer than its publicity {publicity}"
                    ),
                );
                None
            }
            // A publicity that did not lower is reported already.
            (Some(_), None) => None,
            (Some(_), Some(_)) => Some(min),
        }
    }

    /// `duration_min` (default: none) and `duration_max` of a list.
    fn durations(&mut self, list: &raw::List, what: &str) -> Option<(Period, Option<Period>)> {
        let min = match &list.duration_min {
            Some(period) => self.period(period, "duration_min", what),
            None => Some(Period::default()),
        };
        let Some(max_text) = &list.duration_max else {
            return Some((min?, None));
        };
        let max = self.period(max_text, "duration_max", what);
        let (min, max) = (min?, max?);
        if max.after(REFERENCE_DAY) < min.after(REFERENCE_DAY) {
            self.diag.error(
                &max_text.span,
                format!("duration_max {max} of {what} is shorter than its duration_min {min}"),
            );
            return None;
        }
        Some((min, Some(max)))
    }

    /// The relations a list reaches: relation fields of the catalog, on a
    /// list that holds organisations.
    fn reach(
        &mut self,
        list: &raw::List,
        kinds: Option<KindSet>,
        catalog: &Catalog,
        what: &str,
    ) -> Option<Vec<Arc<str>>> {
        let mut ok = true;
        let mut reach = Vec::new();
        for relation in &list.reach {
            if !catalog.relation_fields.contains(&relation.value) {
                let known: Vec<&str> = catalog.relation_fields.iter().map(String::as_str).collect();
                let listing = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                self.diag.error(
                    &relation.span,
                    format!(
                        "{what} reaches `{}`, which is not a relation field of any record type \
                         (relation fields: {listing})",
                        relation.value
                    ),
                );
                ok = false;
            } else if kinds.is_some_and(|k| !k.organisation) {
                self.diag.error(
                    &relation.span,
                    format!(
                        "{what} holds persons only, so `reach` (relations of an organisation) \
                         never applies"
                    ),
                );
                ok = false;
            } else {
                reach.push(Arc::from(relation.value.as_str()));
            }
        }
        ok.then_some(reach)
    }

    fn exit(
        &mut self,
        exit: &raw::Exit,
        entry_types: &[(usize, &Located<String>)],
        catalog: &Catalog,
        list: &str,
    ) -> Option<RecordExit> {
        let what = format!("exit of {list}");
        let index = self.record_type(catalog, &exit.record_type, &what)?;
        let mut match_field = None;
        if let Some(field) = &exit.match_field {
            let type_of = |index: usize| {
                catalog.info.get(index).and_then(|info| {
                    info.fields
                        .iter()
                        .find(|(name, _)| name.as_ref() == field.value)
                        .map(|(_, t)| *t)
                })
            };
            let exit_type = type_of(index);
            let mut ok = true;
            if exit_type.is_none() {
                self.diag.error(
                    &field.span,
                    format!(
                        "match_field `{}` of {what} is not a field of exit record type `{}`",
                        field.value, exit.record_type.value
                    ),
                );
                ok = false;
            }
            if entry_types.is_empty() {
                self.diag.error(
                    &field.span,
                    format!(
                        "match_field `{}` of {what} needs entry records to match against",
                        field.value
                    ),
                );
                ok = false;
            }
            for (entry_index, entry_name) in entry_types {
                match type_of(*entry_index) {
                    None => {
                        self.diag.error(
                            &field.span,
                            format!("match_field `{}` of {what} is not a field of entry record type `{}`", field.value, entry_name.value),
                        );
                        ok = false;
                    }
                    Some(entry_type) if exit_type.is_some_and(|t| t != entry_type) => {
                        self.diag.error(
                            &field.span,
                            format!(
                                "match_field `{}` of {what} has different types in `{}` and `{}`",
                                field.value, entry_name.value, exit.record_type.value
                            ),
                        );
                        ok = false;
                    }
                    Some(_) => {}
                }
            }
            ok.then_some(())?;
            match_field = Some(Arc::from(field.value.as_str()));
        }
        Some(RecordExit {
            record_type: u32::try_from(index).ok()?,
            match_field,
            working_days: exit.working_days,
        })
    }

    // ----- measures --------------------------------------------------------

    fn measure(
        &mut self,
        measure: &Located<raw::Measure>,
        lists: &Lists,
        models: &Models,
        allow_score_only: bool,
    ) -> Option<Measure> {
        let raw = &measure.value;
        let what = format!("measure `{}`", raw.id.value);
        let id = self.id(&raw.id, "measure");
        let title = self.text(&raw.title, "title", &what);
        let legal_basis = self.legal_basis(&raw.legal_basis, &what);
        let kinds = self.kinds(&raw.subject_kinds, &what);
        let agencies = self.agencies(&raw.agencies, &what);
        let purposes = self.purposes(raw.purposes.as_ref(), &what);
        let model = self.measure_model(measure, models, &what);
        let model_info = model.flatten().and_then(|index| models.info.get(index));
        self.unique_ids(
            raw.applies.iter().chain(&raw.except).map(|c| &c.value.id),
            &format!("condition of {what}"),
        );
        if raw.applies.is_empty() {
            self.diag.error(
                &measure.span,
                format!("{what} has no `applies` condition, so it would never apply"),
            );
        }
        let applies = self.conditions(&raw.applies, lists, model_info, &what);
        let exceptions = self.conditions(&raw.except, lists, model_info, &what);
        let score_only_ok = self.score_only_rule(raw, lists, model_info, allow_score_only, &what);
        (score_only_ok && !raw.applies.is_empty()).then_some(())?;
        Some(Measure {
            id: id?,
            title: title?,
            kind: match raw.kind {
                raw::MeasureKind::Reward => MeasureKind::Reward,
                raw::MeasureKind::Punishment => MeasureKind::Punishment,
            },
            legal_basis: legal_basis?,
            agencies: agencies?,
            purposes: purposes?,
            subject_kinds: kinds?,
            applies: applies?,
            exceptions: exceptions?,
            model: match model? {
                Some(index) => Some(u32::try_from(index).ok()?),
                None => None,
            },
            score_only_opt_in: raw
                .score_only_opt_in
                .as_ref()
                .is_some_and(|flag| flag.value),
        })
    }

    /// The agencies that implement a measure: at least one, each a valid id.
    fn agencies(
        &mut self,
        agencies: &Located<Vec<Located<String>>>,
        what: &str,
    ) -> Option<Vec<Arc<str>>> {
        let mut ok = true;
        if agencies.value.is_empty() {
            let message = format!("{what} names no agency that implements it");
            self.diag.error(&agencies.span, message);
            ok = false;
        }
        let mut out = Vec::new();
        for agency in &agencies.value {
            match self.id(agency, "agency") {
                Some(agency) => out.push(agency),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The purposes an agency may ask about a measure for: none given, any;
    /// given, at least one, each a valid id, none twice.
    fn purposes(
        &mut self,
        purposes: Option<&Located<Vec<Located<String>>>>,
        what: &str,
    ) -> Option<Vec<Arc<str>>> {
        let Some(purposes) = purposes else {
            return Some(Vec::new());
        };
        let mut ok = true;
        if purposes.value.is_empty() {
            let message = format!(
                "{what} names no purpose to ask about it for; leave `purposes` out to allow any"
            );
            self.diag.error(&purposes.span, message);
            ok = false;
        }
        self.unique_ids(purposes.value.iter(), &format!("purpose of {what}"));
        let mut out = Vec::new();
        for purpose in &purposes.value {
            match self.id(purpose, "purpose") {
                Some(purpose) => out.push(purpose),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The model whose grades a measure's conditions name: the one given,
    /// or the only model of the rulebook. None when it cannot be resolved;
    /// `Some(None)` when the measure needs none.
    fn measure_model(
        &mut self,
        measure: &Located<raw::Measure>,
        models: &Models,
        what: &str,
    ) -> Option<Option<usize>> {
        let raw = &measure.value;
        let uses_grades = raw
            .applies
            .iter()
            .chain(&raw.except)
            .any(|c| !c.value.grades.is_empty());
        match &raw.model {
            Some(model) => self.model_ref(models, model, what).map(Some),
            // With one model there is nothing to choose.
            None if uses_grades && models.info.len() == 1 => Some(Some(0)),
            None if uses_grades => {
                self.diag.error(
                    &measure.span,
                    format!(
                        "{what} uses grades but does not name the `model` whose grades they are"
                    ),
                );
                None
            }
            None => Some(None),
        }
    }

    fn conditions(
        &mut self,
        conditions: &[Located<raw::Condition>],
        lists: &Lists,
        model: Option<&ModelInfo>,
        measure: &str,
    ) -> Option<Vec<Condition>> {
        let mut ok = true;
        let mut out = Vec::new();
        for condition in conditions {
            match self.condition(condition, lists, model, measure) {
                Some(lowered) => out.push(lowered),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn condition(
        &mut self,
        condition: &Located<raw::Condition>,
        lists: &Lists,
        model: Option<&ModelInfo>,
        measure: &str,
    ) -> Option<Condition> {
        let raw = &condition.value;
        let what = format!("condition `{}` of {measure}", raw.id.value);
        let id = self.id(&raw.id, "condition");
        let mut ok = true;
        if raw.lists.is_empty()
            && raw.list_kind.is_none()
            && raw.grades.is_empty()
            && raw.when.is_none()
        {
            self.diag.error(
                &condition.span,
                format!("{what} is empty: it would hold for every subject"),
            );
            ok = false;
        }
        let mut list_indices = Vec::new();
        for list in &raw.lists {
            match lists.by_id.get(&list.value) {
                Some(&index) => list_indices.push(u32::try_from(index).ok()?),
                None => {
                    if !self.declared.lists.contains(&list.value) {
                        let hint = suggestion(&list.value, lists.by_id.keys().map(String::as_str));
                        self.diag.error(
                            &list.span,
                            format!("{what} names unknown list `{}`{hint}", list.value),
                        );
                    }
                    ok = false;
                }
            }
        }
        let grades = self.grades(&raw.grades, model, &what);
        let when = match &raw.when {
            Some(when) => {
                let program = cel::compile(
                    self.diag,
                    when,
                    Scope::Subject,
                    cel::Gives::Bool,
                    &format!("`when` of {what}"),
                );
                ok &= program.is_some();
                program
            }
            None => None,
        };
        ok.then_some(())?;
        Some(Condition {
            id: id?,
            lists: list_indices,
            list_kind: raw.list_kind.map(list_kind),
            grades: grades?,
            when,
        })
    }

    /// A punishment follows from a list entry grounded in records, never from
    /// a score or grade alone, unless both the rulebook and the measure opt in.
    fn score_only_rule(
        &mut self,
        measure: &raw::Measure,
        lists: &Lists,
        model: Option<&ModelInfo>,
        allow_score_only: bool,
        what: &str,
    ) -> bool {
        let opt_in = measure.score_only_opt_in.as_ref().filter(|flag| flag.value);
        let mut score_only: Vec<(&Located<raw::Condition>, String)> = Vec::new();
        for condition in &measure.applies {
            if let Some(reason) = rests_on_score(&condition.value, lists, model) {
                score_only.push((condition, reason));
            }
        }
        let punishment = measure.kind == raw::MeasureKind::Punishment;
        match opt_in {
            None if punishment => {
                for (condition, reason) in &score_only {
                    self.diag.error(
                        &condition.span,
                        format!(
                            "punishment {what} would follow from score or grade alone: condition `{}` {reason}. \
                             A punishment must follow from a list entry grounded in records; to opt in \
                             explicitly and visibly, set `score_only_opt_in = true` on the measure and \
                             `allow_score_only_punishment = true` under [policy]",
                            condition.value.id.value
                        ),
                    );
                }
                score_only.is_empty()
            }
            None => true,
            Some(flag) if !punishment => {
                self.diag.error(
                    &flag.span,
                    format!("{what} is a reward: `score_only_opt_in` is for punishments only"),
                );
                false
            }
            Some(flag) if score_only.is_empty() => {
                self.diag.error(
                    &flag.span,
                    format!("{what} sets `score_only_opt_in` but every condition rests on a list grounded in records: remove it"),
                );
                false
            }
            Some(flag) if !allow_score_only => {
                self.diag.error(
                    &flag.span,
                    format!(
                        "{what} opts in to punishment by score alone, but the rulebook does not: \
                         set `allow_score_only_punishment = true` under [policy] as well"
                    ),
                );
                false
            }
            Some(_) => true,
        }
    }
}

/// Why a condition rests on score or grade alone, if it does.
fn rests_on_score(
    condition: &raw::Condition,
    lists: &Lists,
    model: Option<&ModelInfo>,
) -> Option<String> {
    if condition.lists.is_empty() && condition.list_kind.is_none() {
        // Grades that no band gives (M) come only from the records that
        // assign them, and a `when` could read the score.
        let assigned_only = model.is_some_and(|model| {
            let bands = model.grades.get(..model.bands).unwrap_or_default();
            condition.when.is_none()
                && !condition.grades.is_empty()
                && condition
                    .grades
                    .iter()
                    .all(|grade| !bands.contains(&grade.value))
        });
        if assigned_only {
            return None;
        }
        return Some("names no list and no list kind".to_string());
    }
    for list in &condition.lists {
        let by_grade = lists
            .by_id
            .get(&list.value)
            .and_then(|&index| lists.info.get(index))
            .is_some_and(|info| info.by_grade);
        if by_grade {
            return Some(format!(
                "names list `{}`, which subjects enter by grade",
                list.value
            ));
        }
    }
    if let Some(kind) = condition.list_kind {
        let kind = list_kind(kind);
        if lists
            .info
            .iter()
            .any(|info| info.kind == kind && info.by_grade)
        {
            let kind = match kind {
                ListKind::Black => "black",
                ListKind::Red => "red",
            };
            return Some(format!(
                "names any {kind} list, and a {kind} list is entered by grade"
            ));
        }
    }
    None
}

fn is_field_name(name: &str) -> bool {
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    starts_well
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn kind_set(kinds: &[raw::SubjectKind]) -> KindSet {
    KindSet {
        person: kinds.contains(&raw::SubjectKind::Person),
        organisation: kinds.contains(&raw::SubjectKind::Organisation),
    }
}

trait KindSetExt {
    fn is_empty(&self) -> bool;
}

impl KindSetExt for KindSet {
    fn is_empty(&self) -> bool {
        !self.person && !self.organisation
    }
}

fn intersect(a: KindSet, b: KindSet) -> KindSet {
    KindSet {
        person: a.person && b.person,
        organisation: a.organisation && b.organisation,
    }
}

fn subset(a: KindSet, b: KindSet) -> bool {
    (!a.person || b.person) && (!a.organisation || b.organisation)
}

fn describe_kinds(kinds: KindSet) -> &'static str {
    match (kinds.person, kinds.organisation) {
        (true, true) => "persons and organisations",
        (true, false) => "persons",
        (false, true) => "organisations",
        (false, false) => "no subjects",
    }
}

/// The largest bound an int field may give: 2^53, up to which a double
/// holds every integer exactly.
const INT_BOUND_MAX: f64 = 9_007_199_254_740_992.0;

/// A few values of a field for [`Lowering::fails_on_samples`], inside its
/// bounds and values; `None` (left out) too when it is optional.
fn field_samples(def: &FieldDef) -> Vec<Option<Value>> {
    let within = |x: f64| def.min.is_none_or(|min| x >= min) && def.max.is_none_or(|max| x <= max);
    let numbers = || {
        let mut numbers: Vec<f64> = [1.0, 0.0, 2.5, 1000.0, -1.0]
            .into_iter()
            .chain(def.min)
            .chain(def.max)
            .filter(|&x| within(x))
            .collect();
        numbers.dedup();
        numbers
    };
    let mut values: Vec<Option<Value>> = match def.field_type {
        FieldType::Int => {
            let mut ints: Vec<i64> = numbers()
                .into_iter()
                .map(|x| x.ceil() as i64)
                .filter(|&n| within(n as f64))
                .collect();
            ints.dedup();
            ints.into_iter().map(|n| Some(Value::Int(n))).collect()
        }
        FieldType::Number => numbers()
            .into_iter()
            .map(|x| Some(Value::Number(x)))
            .collect(),
        FieldType::Bool => vec![Some(Value::Bool(true)), Some(Value::Bool(false))],
        FieldType::Text => match &def.values {
            Some(values) => values
                .iter()
                .map(|v| Some(Value::Text(v.clone())))
                .collect(),
            None => vec![Some(Value::Text("a".into())), Some(Value::Text("".into()))],
        },
        FieldType::Date => vec![Some(Value::Text("2026-01-01".into()))],
        FieldType::Subject => vec![Some(Value::Text("11010519491231002X".into()))],
    };
    if values.is_empty() || !def.required {
        values.push(None);
    }
    values
}

fn sample_text(value: &Value) -> String {
    match value {
        Value::Bool(b) => b.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Number(x) => x.to_string(),
        Value::Text(text) => format!("{text:?}"),
    }
}

fn field_type(field_type: raw::FieldType) -> FieldType {
    match field_type {
        raw::FieldType::Bool => FieldType::Bool,
        raw::FieldType::Int => FieldType::Int,
        raw::FieldType::Number => FieldType::Number,
        raw::FieldType::Text => FieldType::Text,
        raw::FieldType::Date => FieldType::Date,
        raw::FieldType::Subject => FieldType::Subject,
    }
}

fn severity(severity: raw::Severity) -> Severity {
    match severity {
        raw::Severity::Minor => Severity::Minor,
        raw::Severity::General => Severity::General,
        raw::Severity::Serious => Severity::Serious,
    }
}

fn calendar(period: raw::CalendarPeriod) -> CalendarPeriod {
    match period {
        raw::CalendarPeriod::Month => CalendarPeriod::Month,
        raw::CalendarPeriod::Quarter => CalendarPeriod::Quarter,
        raw::CalendarPeriod::Year => CalendarPeriod::Year,
    }
}

fn list_kind(kind: raw::ListKind) -> ListKind {
    match kind {
        raw::ListKind::Black => ListKind::Black,
        raw::ListKind::Red => ListKind::Red,
    }
}
