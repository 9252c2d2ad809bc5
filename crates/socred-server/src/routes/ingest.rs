//! `POST /v1/records`: records and later facts in bulk, as NDJSON (one item
//! a line) or a JSON array, and records alone as CSV (one a row under a
//! header, as providers export them from spreadsheets and databases).
//!
//! Every item gets a result, in order: the store's outcome, or why it was
//! refused before storing (it does not parse, or the caller may not send
//! it). All items that pass go to the store in one call and commit
//! together, with the audit entry of the request. Refused items are
//! reported, never dropped silently.
//!
//! Who may send what (least privilege):
//! - a provider: records of its own provider id and registered record
//!   types, and `retracted` / `corrected` facts about its own records;
//! - a reviewer: `resolved` and `repaired` facts (the outcome of an
//!   objection or a repair application), reported `by` itself.
//!
//! A record of a serious type that puts its subject on a list needing
//! review waits for a second person; so does a reviewer's fact that would
//! take such a record's entry away (a repair, a resolution that retracts or
//! corrects).

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use socred_core::record::Outcome as Resolution;
use socred_core::{Day, FactKind, SubjectId};
use socred_schema::wire::{self, LineParser, LineResult, Rejection};
use socred_store::{Item, Outcome, Principal, ReviewNeed, Role, Submission};

use crate::auth::Caller;
use crate::body::{json_error, media_type, unsupported, Params, RawBody};
use crate::error::ApiError;
use crate::metrics::INGEST_STATUSES;
use crate::routes::audit_draft;
use crate::state::{AppState, Current};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// A result for every item.
    #[default]
    All,
    /// Results only for items that were not stored or already stored
    /// (counts still cover everything): for large batches.
    Problems,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestQuery {
    #[serde(default)]
    report: Report,
}

/// The result of one item.
#[derive(Debug, Serialize)]
pub struct ItemResult {
    /// NDJSON: the 1-based line number. CSV: the 1-based line number (the
    /// header is line 1). JSON: the 0-based array index.
    index: usize,
    /// stored, duplicate, conflict, pending_review, unknown_record, rejected.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    stored: u64,
    duplicate: u64,
    conflict: u64,
    pending_review: u64,
    unknown_record: u64,
    rejected: u64,
}

#[derive(Debug, Serialize)]
pub struct IngestResponse {
    counts: Counts,
    results: Vec<ItemResult>,
}

/// One parsed item or its rejection, with its index.
enum Slot {
    Item {
        index: usize,
        item: wire::Item,
        warning: Option<String>,
    },
    Refused {
        index: usize,
        rejection: Rejection,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Json,
    /// Records only, one a row under a header (`docs/records.md`).
    Csv,
}

impl Format {
    fn describe(self) -> &'static str {
        match self {
            Format::Ndjson => "NDJSON",
            Format::Json => "a JSON array",
            Format::Csv => "CSV",
        }
    }
}

/// The media types `POST /v1/records` takes, for error messages.
const INGEST_MEDIA_TYPES: &str = "application/x-ndjson, application/json or text/csv";

pub async fn post_records(
    State(state): State<AppState>,
    caller: Caller,
    query: Params<IngestQuery>,
    headers: HeaderMap,
    request: Request,
) -> Result<Json<IngestResponse>, ApiError> {
    let principal = caller.require(&[Role::Provider, Role::Reviewer])?.clone();
    let query = query.get()?;
    let format = match media_type(&headers).as_deref() {
        Some("application/x-ndjson" | "application/ndjson" | "application/jsonl") => Format::Ndjson,
        Some("application/json") => Format::Json,
        Some("text/csv") => Format::Csv,
        other => return Err(unsupported(other, INGEST_MEDIA_TYPES)),
    };
    // Read only now: a caller refused above does not make the server
    // take in up to 64 MiB first, nor one that says it sends more.
    let RawBody(body) =
        RawBody::read(request, &state, state.limits().ingest_body_bytes_max).await?;
    let scope = match principal.role {
        Role::Provider => Some(Caller::scope(&principal)?.to_string()),
        _ => None,
    };
    // Shared: a rulebook upload waits until this batch is stored (and the
    // batch is parsed and folded with the rulebook that is current).
    let _gate = state.inner.write_gate.read().await;
    let current = state.current();
    let parse_current = current.clone();
    let slots = tokio::task::spawn_blocking(move || parse_body(&parse_current, &body, format))
        .await
        .map_err(|error| ApiError::internal("parsing a batch", &error))??;

    let mut results: Vec<Option<ItemResult>> = Vec::with_capacity(slots.len());
    let mut submissions = Vec::with_capacity(slots.len());
    let mut positions = Vec::with_capacity(slots.len());
    let mut lookups = Lookups::default();
    for slot in slots {
        match slot {
            Slot::Refused { index, rejection } => results.push(Some(rejected(index, rejection))),
            Slot::Item {
                index,
                item,
                warning,
            } => {
                match admit(
                    &state,
                    &current,
                    &principal,
                    scope.as_deref(),
                    item,
                    &mut lookups,
                )
                .await?
                {
                    Ok(submission) => {
                        positions.push((results.len(), index, warning));
                        results.push(None);
                        submissions.push(submission);
                    }
                    Err(rejection) => {
                        let mut result = rejected(index, rejection);
                        result.warning = warning;
                        results.push(Some(result));
                    }
                }
            }
        }
    }
    let refused = results.len() - submissions.len();
    let detail = format!(
        "{} items sent as {}, {} refused before storing",
        results.len(),
        format.describe(),
        refused
    );
    let mut audit = vec![audit_draft(
        &state,
        caller.actor(),
        "ingest",
        "ingest",
        None,
        detail,
    )];
    audit.extend(facts_for_their_subjects(&state, &caller, &submissions));
    let outcomes = if submissions.is_empty() {
        Vec::new()
    } else {
        state
            .store()
            .ingest(&current.engine, submissions, audit)
            .await?
    };
    if outcomes.len() != positions.len() {
        return Err(ApiError::internal(
            "ingest",
            &format!(
                "the store answered {} outcomes for {} items",
                outcomes.len(),
                positions.len()
            ),
        ));
    }
    for ((slot, index, warning), outcome) in positions.into_iter().zip(outcomes) {
        let mut result = stored(index, outcome);
        result.warning = warning;
        if let Some(place) = results.get_mut(slot) {
            *place = Some(result);
        }
    }
    let results: Vec<ItemResult> = results.into_iter().flatten().collect();
    let counts = count(&state, &results);
    let results = match query.report {
        Report::All => results,
        Report::Problems => results
            .into_iter()
            .filter(|r| !matches!(r.status, "stored" | "duplicate"))
            .collect(),
    };
    Ok(Json(IngestResponse { counts, results }))
}

fn count(state: &AppState, results: &[ItemResult]) -> Counts {
    let mut counts = Counts::default();
    for result in results {
        let slot = match result.status {
            "stored" => &mut counts.stored,
            "duplicate" => &mut counts.duplicate,
            "conflict" => &mut counts.conflict,
            "pending_review" => &mut counts.pending_review,
            "unknown_record" => &mut counts.unknown_record,
            _ => &mut counts.rejected,
        };
        *slot += 1;
    }
    let values = [
        counts.stored,
        counts.duplicate,
        counts.conflict,
        counts.pending_review,
        counts.unknown_record,
        counts.rejected,
    ];
    for (status, value) in values.into_iter().enumerate().take(INGEST_STATUSES.len()) {
        state.inner.metrics.ingest(status, value);
    }
    counts
}

fn rejected(index: usize, rejection: Rejection) -> ItemResult {
    ItemResult {
        index,
        status: "rejected",
        code: Some(rejection.code),
        field: rejection.field,
        message: Some(rejection.message),
        warning: None,
    }
}

fn stored(index: usize, outcome: Outcome) -> ItemResult {
    let (status, code, message) = match outcome {
        Outcome::Stored => ("stored", None, None),
        Outcome::Duplicate => ("duplicate", None, None),
        Outcome::PendingReview => ("pending_review", None, None),
        Outcome::Conflict { reason } => ("conflict", Some("conflict"), Some(reason)),
        Outcome::UnknownRecord => (
            "unknown_record",
            Some("unknown_record"),
            Some("the fact names a record that is not in effect for this subject (unknown, another subject's, or waiting for review)".to_string()),
        ),
    };
    ItemResult {
        index,
        status,
        code,
        field: None,
        message,
        warning: None,
    }
}

/// Parses the whole body; a JSON body that is not JSON at all is a 400.
/// The items of a body. A line of NDJSON or a row of CSV that is not
/// UTF-8 is rejected alone, as a file's is; a JSON body is one document
/// and must be UTF-8 whole.
fn parse_body(current: &Current, body: &[u8], format: Format) -> Result<Vec<Slot>, ApiError> {
    let mut parser = LineParser::new(current.rulebook());
    let mut slots = Vec::new();
    match format {
        Format::Ndjson => {
            for (number, line) in body.split(|&byte| byte == b'\n').enumerate() {
                let index = number + 1;
                if let Some(result) = parser.ndjson_bytes(index, line) {
                    slots.push(slot(index, result));
                }
            }
        }
        Format::Csv => {
            // Reading from a byte slice cannot fail with an I/O error.
            let _ = wire::read_csv_rows(current.rulebook(), body, |line, result| {
                slots.push(slot(line, result))
            });
        }
        Format::Json => {
            let text = std::str::from_utf8(body).map_err(|error| {
                ApiError::bad_request(
                    "malformed_json",
                    format!(
                        "the body is not valid UTF-8 (byte {} is not)",
                        error.valid_up_to() + 1
                    ),
                )
            })?;
            // A byte-order mark, as an NDJSON or CSV body may start with.
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            let trimmed = text.trim_ascii_start();
            if trimmed.starts_with('{') {
                // One object: a body that is not JSON at all is refused
                // whole, as an array that is not would be.
                match parser.parse(1, text) {
                    Err(rejection) if rejection.code == "malformed_json" => {
                        return Err(ApiError::bad_request(
                            "malformed_json",
                            format!("the body is {}", rejection.message),
                        ));
                    }
                    result => slots.push(slot(0, result)),
                }
            } else {
                let elements: Vec<&RawValue> = serde_json::from_str(text).map_err(|error| {
                    let mut api = json_error(&error);
                    if api.code != "malformed_json" {
                        api = ApiError::bad_request(
                            "malformed_json",
                            format!("the body must be a JSON array of items: {error}"),
                        );
                    }
                    api
                })?;
                for (index, element) in elements.into_iter().enumerate() {
                    slots.push(slot(index, parser.parse(index + 1, element.get())));
                }
            }
        }
    }
    Ok(slots)
}

fn slot(index: usize, result: LineResult) -> Slot {
    match result {
        Ok((item, warning)) => Slot::Item {
            index,
            item,
            warning: warning.map(|w| w.message),
        },
        Err(rejection) => Slot::Refused { index, rejection },
    }
}

fn refuse(code: &'static str, field: &str, message: String) -> Rejection {
    Rejection {
        line: 0,
        field: Some(field.to_string()),
        code,
        message,
    }
}

/// What this request already looked up about subjects for the facts it
/// admits: whether each record in effect was reviewed, for the review
/// need of reviewers' facts; stored states, for the objections reviewers
/// resolve and the dates providers correct; and facts in effect, for a
/// resolution sent again.
#[derive(Default)]
struct Lookups {
    histories: BTreeMap<SubjectId, History>,
    states: BTreeMap<SubjectId, Option<std::sync::Arc<socred_core::SubjectState>>>,
}

/// Checks that `principal` may send `item`, that nothing in it is dated
/// after the registry's day, and decides whether it waits for review. The
/// outer error is the store failing; the inner one refuses the item.
async fn admit(
    state: &AppState,
    current: &Current,
    principal: &Principal,
    scope: Option<&str>,
    item: wire::Item,
    lookups: &mut Lookups,
) -> Result<Result<Submission, Rejection>, ApiError> {
    let admitted = admit_by_role(state, current, principal, scope, item, lookups).await?;
    Ok(admitted.and_then(
        |submission| match dated_after(&submission.item, state.today()) {
            Some(rejection) => Err(rejection),
            None => Ok(submission),
        },
    ))
}

/// Facts that change what a subject's file holds, each logged where its
/// subject sees it, as approvals and rejections are: a reviewer's
/// decisions (who resolved the subject's objection and how, who granted
/// repair of its record) and a provider's retractions and corrections. They
/// commit with the batch; the answer says, item by item, whether each was
/// stored. New records need no entry of their own: the file shows each
/// with its provider.
fn facts_for_their_subjects(
    state: &AppState,
    caller: &Caller,
    submissions: &[Submission],
) -> Vec<socred_store::AuditDraft> {
    let waits = |submission: &Submission, whom: &str| {
        if submission.review == ReviewNeed::Required {
            format!(", waiting for {whom}")
        } else {
            String::new()
        }
    };
    submissions
        .iter()
        .filter_map(|submission| {
            let Item::Fact { fact, .. } = &submission.item else {
                return None;
            };
            let (action, detail) = match &fact.kind {
                FactKind::Resolved {
                    record, outcome, ..
                } => {
                    let outcome = match outcome {
                        Resolution::Upheld => "upheld",
                        Resolution::Corrected => "corrected",
                        Resolution::Retracted => "retracted",
                    };
                    let detail = format!(
                        "resolution of the objection to record {}/{} sent: {outcome}",
                        record.provider, record.id
                    );
                    ("resolve", detail)
                }
                FactKind::Repaired { record, .. } => {
                    let detail = format!(
                        "repair of record {}/{} from {} sent{}",
                        record.provider,
                        record.id,
                        fact.at,
                        waits(submission, "a second reviewer")
                    );
                    ("repair", detail)
                }
                FactKind::Retracted { record } => {
                    let detail = format!(
                        "retraction of record {}/{} sent by its provider",
                        record.provider, record.id
                    );
                    ("retract", detail)
                }
                FactKind::Corrected { record, .. } => {
                    let detail = format!(
                        "correction of record {}/{} sent by its provider{}",
                        record.provider,
                        record.id,
                        waits(submission, "a reviewer")
                    );
                    ("correct", detail)
                }
                _ => return None,
            };
            let purpose = match &fact.kind {
                FactKind::Retracted { .. } | FactKind::Corrected { .. } => "ingest",
                _ => "review",
            };
            Some(audit_draft(
                state,
                caller.actor(),
                purpose,
                action,
                Some(fact.subject),
                detail,
            ))
        })
        .collect()
}

/// Refuses an item dated after `today`: a record decided, or a fact
/// reported, on a day that has not come. Stored, it would take effect on
/// that day, and until then its subject could not see it in the file.
fn dated_after(item: &Item, today: Day) -> Option<Rejection> {
    let late = |field: &str, what: &str, day: Day| {
        (day > today).then(|| {
            refuse(
                "dated_in_future",
                field,
                format!(
                    "{field} {day} is after the registry's day, {today} (China Standard Time): \
                     {what}"
                ),
            )
        })
    };
    match item {
        Item::Record(record) => late(
            "decided_at",
            "a record is sent once it has been decided",
            record.decided_at,
        ),
        Item::Fact { fact, .. } => late("at", "a fact is sent once it has happened", fact.at)
            .or_else(|| match &fact.kind {
                FactKind::Corrected {
                    decided_at: Some(decided_at),
                    ..
                } => late(
                    "decided_at",
                    "a correction may not date a record after today",
                    *decided_at,
                ),
                _ => None,
            }),
    }
}

/// [`admit`]'s checks of role and scope.
async fn admit_by_role(
    state: &AppState,
    current: &Current,
    principal: &Principal,
    scope: Option<&str>,
    item: wire::Item,
    lookups: &mut Lookups,
) -> Result<Result<Submission, Rejection>, ApiError> {
    let submitted_by = principal.id.clone();
    match (principal.role, item) {
        (Role::Provider, wire::Item::Record(record)) => {
            let provider = scope.unwrap_or_default();
            if *record.key.provider != *provider {
                return Ok(Err(refuse(
                    "provider_mismatch",
                    "provider",
                    format!(
                        "this token sends records of provider `{provider}`, not `{}`",
                        record.key.provider
                    ),
                )));
            }
            if !principal
                .record_types
                .iter()
                .any(|t| **t == *record.type_id)
            {
                return Ok(Err(refuse(
                    "record_type_not_allowed",
                    "type",
                    format!(
                        "provider `{provider}` is not registered for record type `{}`",
                        record.type_id
                    ),
                )));
            }
            if let Some(rejection) =
                past_retention(current, record.type_index, record.decided_at, state.today())
            {
                return Ok(Err(rejection));
            }
            let review = if current.needs_review(&record) {
                ReviewNeed::Required
            } else {
                ReviewNeed::NotRequired
            };
            Ok(Ok(Submission {
                item: Item::Record(record),
                submitted_by,
                review,
            }))
        }
        (Role::Provider, wire::Item::Fact { fact, record_type }) => {
            let provider = scope.unwrap_or_default();
            if !matches!(
                fact.kind,
                FactKind::Retracted { .. } | FactKind::Corrected { .. }
            ) {
                return Ok(Err(refuse(
                    "fact_not_allowed",
                    "fact",
                    "a provider may send records and retract or correct its own records; other facts come from \
                     subjects and reviewers"
                        .to_string(),
                )));
            }
            if let Some(key) = fact.record() {
                if *key.provider != *provider {
                    return Ok(Err(refuse(
                        "not_own_record",
                        "provider",
                        format!(
                            "record {}/{} belongs to another provider than `{provider}`",
                            key.provider, key.id
                        ),
                    )));
                }
            }
            if *fact.by != *provider {
                return Ok(Err(refuse(
                    "by_mismatch",
                    "by",
                    format!("this token reports as `{provider}`, not `{}`", fact.by),
                )));
            }
            // Only records of a type it is registered for, as it may send
            // only those: the record as the file holds it, and the type a
            // correction gives it. A record the file does not hold is left
            // to the store (`unknown_record`).
            let registered = |type_id: &str| principal.record_types.iter().any(|t| **t == *type_id);
            let held_type = match fact.record() {
                Some(key) => history(state, current, fact.subject, lookups)
                    .await?
                    .records
                    .get(key)
                    .map(|record| record.type_id),
                None => None,
            };
            let refused_type = held_type
                .iter()
                .chain(record_type.iter())
                .find(|type_id| !registered(type_id));
            if let Some(type_id) = refused_type {
                return Ok(Err(refuse(
                    "record_type_not_allowed",
                    "record",
                    format!(
                        "provider `{provider}` is not registered for record type `{type_id}`, so \
                         this token may not retract or correct such a record"
                    ),
                )));
            }
            if let Some(rejection) =
                corrected_dates_refused(state, current, &fact, record_type, lookups).await?
            {
                return Ok(Err(rejection));
            }
            // A correction of a record that entered a reviewed list, or
            // that would make it enter one, puts an entry there or takes it
            // away: a second person decides, as for the record itself.
            // A correction names its record's type (the store refuses it
            // otherwise): one of a type no reviewed list takes reads
            // nothing more.
            let may_need_review = record_type
                .as_ref()
                .and_then(|name| current.rulebook().record_type(name))
                .is_some_and(|index| current.may_need_review(index));
            let mut review = ReviewNeed::NotRequired;
            if let (true, FactKind::Corrected { record, fields, .. }) =
                (may_need_review, &fact.kind)
            {
                let history = history(state, current, fact.subject, lookups).await?;
                if history.reviewed(current, record)
                    || history
                        .records
                        .get(record)
                        .is_some_and(|stored| current.meets_reviewed_entry(stored, fields))
                {
                    review = ReviewNeed::Required;
                }
            }
            Ok(Ok(Submission {
                item: Item::Fact { fact, record_type },
                submitted_by,
                review,
            }))
        }
        (Role::Reviewer, wire::Item::Fact { fact, record_type }) => {
            let takes_entry_away = match &fact.kind {
                FactKind::Repaired { .. } => true,
                FactKind::Resolved { outcome, .. } => *outcome != Resolution::Upheld,
                _ => {
                    return Ok(Err(refuse(
                        "fact_not_allowed",
                        "fact",
                        "a reviewer sends `resolved` and `repaired` facts only".to_string(),
                    )))
                }
            };
            if *fact.by != *principal.id {
                return Ok(Err(refuse(
                    "by_mismatch",
                    "by",
                    format!(
                        "this token reports as `{}`, not `{}`: set `by` to it",
                        principal.id, fact.by
                    ),
                )));
            }
            if let FactKind::Resolved { record, .. } = &fact.kind {
                if let Some(rejection) =
                    resolves_nothing(state, current, &fact, record, lookups).await?
                {
                    return Ok(Err(rejection));
                }
            }
            let mut review = ReviewNeed::NotRequired;
            if let (true, Some(key)) = (takes_entry_away, fact.record()) {
                if reviewed(state, current, fact.subject, key, lookups).await? {
                    review = ReviewNeed::Required;
                }
            }
            Ok(Ok(Submission {
                item: Item::Fact { fact, record_type },
                submitted_by,
                review,
            }))
        }
        (_, wire::Item::Record(_)) => Ok(Err(refuse(
            "record_not_allowed",
            "type",
            format!(
                "principal `{}` ({}) may not send records; providers do",
                principal.id, principal.role
            ),
        ))),
        (_, wire::Item::Fact { .. }) => Ok(Err(refuse(
            "fact_not_allowed",
            "fact",
            format!(
                "principal `{}` ({}) may not send this fact",
                principal.id, principal.role
            ),
        ))),
    }
}

/// Refuses a resolution of an objection that is not open on its day: a
/// reviewer decides objections, and a `resolved` fact about a record its
/// subject did not dispute would retract or correct it on the reviewer's
/// word alone, which only the record's provider may do. A record the file
/// does not hold is left to the store (`unknown_record`).
async fn resolves_nothing(
    state: &AppState,
    current: &Current,
    fact: &socred_core::Fact,
    key: &socred_core::RecordKey,
    lookups: &mut Lookups,
) -> Result<Option<Rejection>, ApiError> {
    let (subject, at) = (fact.subject, fact.at);
    let record = stored_record(state, subject, key, lookups).await?;
    let open = |record: &socred_core::state::RecordState| {
        record.disputes().iter().any(|span| span.contains(at))
    };
    if record.as_ref().is_some_and(|record| !open(record))
        && already_in_effect(state, current, fact, lookups).await?
    {
        // The same resolution sent again: the store answers `duplicate`.
        return Ok(None);
    }
    Ok(match record {
        Some(record) if !open(&record) => Some(refuse(
            "no_open_objection",
            "record",
            format!(
                "record {}/{} of {subject} has no objection open on {at}: a reviewer resolves \
                 objections (GET /v1/review/objections); the provider retracts or corrects its \
                 own records",
                key.provider, key.id
            ),
        )),
        _ => None,
    })
}

/// What a provider's or reviewer's fact needs to know of its subject's
/// records and facts in effect.
struct History {
    records: BTreeMap<socred_core::RecordKey, socred_core::Record>,
    facts: Vec<socred_core::Fact>,
}

impl History {
    /// Whether the record `key` needed review, as sent or as a correction
    /// of it made it (a fact that takes its entry away needs it too); false
    /// for a record not in effect.
    fn reviewed(&self, current: &Current, key: &socred_core::RecordKey) -> bool {
        let Some(record) = self.records.get(key) else {
            return false;
        };
        current.needs_review(record)
            || self.facts.iter().any(|fact| match &fact.kind {
                FactKind::Corrected {
                    record: corrected,
                    fields,
                    ..
                }
                | FactKind::Resolved {
                    record: corrected,
                    fields: Some(fields),
                    ..
                } => corrected == key && current.meets_reviewed_entry(record, fields),
                _ => false,
            })
    }
}

/// The history of `subject` in effect, read once a request.
async fn history<'l>(
    state: &AppState,
    current: &Current,
    subject: SubjectId,
    lookups: &'l mut Lookups,
) -> Result<&'l History, ApiError> {
    Ok(match lookups.histories.entry(subject) {
        Entry::Occupied(read) => read.into_mut(),
        Entry::Vacant(slot) => {
            let (records, facts) = state.store().records(current.rulebook(), subject).await?;
            let records = records
                .into_iter()
                .map(|record| (record.key.clone(), record))
                .collect();
            slot.insert(History { records, facts })
        }
    })
}

/// Whether `fact` itself is among its subject's facts in effect.
async fn already_in_effect(
    state: &AppState,
    current: &Current,
    fact: &socred_core::Fact,
    lookups: &mut Lookups,
) -> Result<bool, ApiError> {
    let history = history(state, current, fact.subject, lookups).await?;
    Ok(history.facts.contains(fact))
}

/// The record `key` as `subject`'s stored file holds it (after the later
/// facts about it), or None; each subject's state is read once a request.
async fn stored_record(
    state: &AppState,
    subject: SubjectId,
    key: &socred_core::RecordKey,
    lookups: &mut Lookups,
) -> Result<Option<socred_core::state::RecordState>, ApiError> {
    if let Entry::Vacant(slot) = lookups.states.entry(subject) {
        slot.insert(state.store().state(subject).await?);
    }
    Ok(lookups
        .states
        .get(&subject)
        .and_then(Option::as_ref)
        .and_then(|file| file.records.iter().find(|r| r.key == *key))
        .cloned())
}

/// Refuses a correction whose dates a record may not have: one that moves
/// `decided_at` back past the end of the record type's retention (the
/// registry may not hold such a record, as for a record sent so), and one
/// that changes a single date so that the record would have been decided
/// before its conduct occurred (checked against the other date as the
/// file holds it). A record the file does not hold is left to the store.
async fn corrected_dates_refused(
    state: &AppState,
    current: &Current,
    fact: &socred_core::Fact,
    record_type: Option<socred_core::Name>,
    lookups: &mut Lookups,
) -> Result<Option<Rejection>, ApiError> {
    let FactKind::Corrected {
        record,
        occurred_at,
        decided_at,
        ..
    } = &fact.kind
    else {
        return Ok(None);
    };
    let catalog_type = record_type.and_then(|t| current.rulebook().record_type(&t));
    if let (Some(decided_at), Some(index)) = (decided_at, catalog_type) {
        if let Some(rejection) = past_retention(current, index, *decided_at, state.today()) {
            return Ok(Some(rejection));
        }
    }
    if occurred_at.is_some() == decided_at.is_some() {
        // Both or neither: the wire format checked their order already.
        return Ok(None);
    }
    let Some(stored) = stored_record(state, fact.subject, record, lookups).await? else {
        return Ok(None);
    };
    let occurred = occurred_at.unwrap_or(stored.occurred_at);
    let decided = decided_at.unwrap_or(stored.decided_at);
    Ok((occurred > decided).then(|| {
        let field = if occurred_at.is_some() {
            "occurred_at"
        } else {
            "decided_at"
        };
        refuse(
            "dates_out_of_order",
            field,
            format!(
                "record {}/{} would have occurred on {occurred}, after it was decided on \
                 {decided}: correct both dates together",
                record.provider, record.id
            ),
        )
    }))
}

/// Refuses a record of type `type_index` decided on `decided_at` whose
/// retention has ended by `today`: the registry may not hold it at all, and
/// storing it to erase it at the next run would be holding it.
fn past_retention(
    current: &Current,
    type_index: u32,
    decided_at: Day,
    today: Day,
) -> Option<Rejection> {
    let record_type = current.rulebook().catalog.get(type_index as usize)?;
    socred_store::past_retention(record_type, decided_at, today)
        .map(|reason| refuse("past_retention", "decided_at", reason))
}

/// Whether a stored record in effect needed review (a fact that takes its
/// entry away needs it too); false for a record not in effect.
async fn reviewed(
    state: &AppState,
    current: &Current,
    subject: SubjectId,
    key: &socred_core::RecordKey,
    lookups: &mut Lookups,
) -> Result<bool, ApiError> {
    let history = history(state, current, subject, lookups).await?;
    Ok(history.reviewed(current, key))
}
