//! What a new rulebook must keep valid before it is installed: the records
//! the registry already holds. A record acknowledged under one rulebook
//! stays in its subject's file under the next, so the next must still
//! describe it: its type must stay in the catalog, and its fields must
//! still be what that type takes.

use std::collections::{BTreeMap, BTreeSet};

use socred_core::{Fact, FactKind, Record, RecordKey, Rulebook};
use socred_schema::wire;
use socred_store::{Item, PendingItem};

use crate::error::ApiError;
use crate::state::{AppState, Current};

/// Subjects (or review items) read from the store at a time.
const PAGE: usize = 1000;

/// Refuses a rulebook whose catalog leaves out a record type that the
/// registry still holds records of: they would drop out of their subjects'
/// files unseen, and erasure could no longer tell when their retention
/// ends. Such a type stays in the catalog (providers can be unregistered
/// from it) until its records are erased.
pub(super) async fn refuse_dropping_held_types(
    state: &AppState,
    next: &Current,
) -> Result<(), ApiError> {
    let held = state.store().held_record_types().await?;
    let dropped: Vec<String> = held
        .iter()
        .filter(|(type_id, _)| next.rulebook().record_type(type_id).is_none())
        .map(|(type_id, count)| format!("`{type_id}` ({})", records(*count)))
        .collect();
    if dropped.is_empty() {
        return Ok(());
    }
    Err(ApiError::conflict(
        "record_types_still_held",
        format!(
            "rulebook {} leaves out record types that the registry still holds records of: {}; \
             keep them in its catalog, whose legal basis and retention govern those records, \
             until the records are erased at the end of their retention",
            next.label,
            dropped.join(", ")
        ),
    ))
}

/// Refuses a rulebook under which records the registry holds would no
/// longer be valid: a record type whose fields or subject kinds changed so
/// that a record in effect, a correction of one, or a record or correction
/// waiting for review would be refused if it were sent now (a field that
/// became required, changed its type or went away). Such records would
/// stay in their files with fields that their type no longer describes,
/// and rules would read them wrong, where a draft's impact report counts
/// them as `refused`. Only the types whose definition changed are checked,
/// so a rulebook that keeps every type's fields reads nothing.
pub(super) async fn refuse_invalidating_held_records(
    state: &AppState,
    current: &Current,
    next: &Current,
) -> Result<(), ApiError> {
    let changed = changed_types(current.rulebook(), next.rulebook());
    if changed.is_empty() {
        return Ok(());
    }
    let mut found = Invalid::default();
    let mut after = None;
    loop {
        let subjects = state.store().subjects(after, PAGE).await?;
        let histories = state
            .store()
            .records_of(&current.engine.rulebook, &subjects)
            .await?;
        found = check_page(next, &changed, found, move |check| {
            for (records, facts) in &histories {
                check.history(records, facts);
            }
        })
        .await?;
        match subjects.get(PAGE - 1) {
            Some(last) => after = Some(*last),
            None => break,
        }
    }
    let mut after = None;
    loop {
        let waiting = state
            .store()
            .pending(&current.engine.rulebook, after, PAGE)
            .await?;
        after = waiting.last().map(|item| item.seq);
        let full = waiting.len() == PAGE;
        found = check_page(next, &changed, found, move |check| {
            for item in &waiting {
                check.waiting(item);
            }
        })
        .await?;
        if !full {
            break;
        }
    }
    if found.by_type.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = found
        .by_type
        .iter()
        .map(|(type_id, refused)| format!("`{type_id}` ({})", refused.describe()))
        .collect();
    Err(ApiError::conflict(
        "records_no_longer_valid",
        format!(
            "rulebook {} changes record types so that records the registry holds would no longer \
             be valid: {}; keep each field a held record uses, with its type and the values its \
             bounds allow, and make new fields optional, until those records are erased at the \
             end of their retention",
            next.label,
            named.join(", ")
        ),
    ))
}

/// The record types of `next` whose fields or subject kinds differ from
/// the same type's in `current` (types new to `next` hold no records yet).
fn changed_types(current: &Rulebook, next: &Rulebook) -> BTreeSet<String> {
    next.catalog
        .iter()
        .filter(|new| {
            current
                .record_type(&new.id)
                .and_then(|index| current.catalog.get(index as usize))
                .is_some_and(|old| {
                    old.fields != new.fields || old.subject_kinds != new.subject_kinds
                })
        })
        .map(|new| new.id.to_string())
        .collect()
}

/// Runs `check` over one page on a blocking thread (parsing every record
/// of a changed type again is processor work), adding to `found`.
async fn check_page(
    next: &Current,
    changed: &BTreeSet<String>,
    found: Invalid,
    check: impl FnOnce(&mut Check<'_>) + Send + 'static,
) -> Result<Invalid, ApiError> {
    let rulebook = next.engine.rulebook.clone();
    let changed = changed.clone();
    tokio::task::spawn_blocking(move || {
        let mut page = Check {
            rulebook: &rulebook,
            changed: &changed,
            found,
        };
        check(&mut page);
        page.found
    })
    .await
    .map_err(|error| ApiError::internal("checking held records", &error))
}

/// What was found invalid so far: by record type, the records and the
/// corrections refused and the distinct problems, each as its code and the
/// key at fault (never a value: the operator does not read files).
#[derive(Default)]
struct Invalid {
    by_type: BTreeMap<String, Refused>,
}

#[derive(Default)]
struct Refused {
    records: u64,
    corrections: u64,
    problems: BTreeSet<String>,
}

impl Refused {
    fn describe(&self) -> String {
        let mut counts = Vec::new();
        if self.records > 0 {
            counts.push(records(self.records));
        }
        if self.corrections > 0 {
            let s = if self.corrections == 1 { "" } else { "s" };
            counts.push(format!("{} correction{s}", self.corrections));
        }
        let problems: Vec<&str> = self.problems.iter().map(String::as_str).collect();
        format!("{}: {}", counts.join(" and "), problems.join(", "))
    }
}

struct Check<'a> {
    rulebook: &'a Rulebook,
    changed: &'a BTreeSet<String>,
    found: Invalid,
}

impl Check<'_> {
    /// A subject's records in effect and the corrections of them: a
    /// retracted record is as if it never existed, and binds no rulebook.
    fn history(&mut self, records: &[Record], facts: &[Fact]) {
        let retracted: Vec<&RecordKey> = facts.iter().filter_map(Fact::retracts).collect();
        let in_effect = |record: &&Record| !retracted.contains(&&record.key);
        for record in records.iter().filter(in_effect) {
            self.record(record);
        }
        for fact in facts {
            let Some(key) = correction_of(fact) else {
                continue;
            };
            if let Some(record) = records.iter().filter(in_effect).find(|r| r.key == *key) {
                self.fact(fact, &record.type_id);
            }
        }
    }

    /// A record or fact waiting for review.
    fn waiting(&mut self, item: &PendingItem) {
        match &item.item {
            Item::Record(record) => self.record(record),
            Item::Fact {
                fact,
                record_type: Some(type_id),
            } => self.fact(fact, type_id),
            Item::Fact { .. } => {}
        }
    }

    fn record(&mut self, record: &Record) {
        if self.changed.contains(&*record.type_id) {
            let line = wire::to_line(&wire::Item::Record(record.clone()));
            self.parse(&record.type_id, &line, false);
        }
    }

    fn fact(&mut self, fact: &Fact, type_id: &str) {
        if self.changed.contains(type_id) && correction_of(fact).is_some() {
            let line = wire::to_line(&wire::Item::Fact {
                fact: fact.clone(),
                record_type: Some(type_id.into()),
            });
            self.parse(type_id, &line, true);
        }
    }

    fn parse(&mut self, type_id: &str, line: &str, correction: bool) {
        if let Err(rejection) = wire::parse_line(self.rulebook, 1, line) {
            let refused = self.found.by_type.entry(type_id.to_string()).or_default();
            if correction {
                refused.corrections += 1;
            } else {
                refused.records += 1;
            }
            refused.problems.insert(match rejection.field {
                Some(field) => format!("{} at `{field}`", rejection.code),
                None => rejection.code.to_string(),
            });
        }
    }
}

/// The record whose fields a fact gives anew: a correction, or a dispute
/// resolved as corrected.
fn correction_of(fact: &Fact) -> Option<&RecordKey> {
    match &fact.kind {
        FactKind::Corrected { record, .. } => Some(record),
        FactKind::Resolved {
            record,
            fields: Some(_),
            ..
        } => Some(record),
        _ => None,
    }
}

fn records(count: u64) -> String {
    let s = if count == 1 { "" } else { "s" };
    format!("{count} record{s}")
}
