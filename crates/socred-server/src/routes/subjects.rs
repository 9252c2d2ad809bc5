//! A subject's own endpoints: its full credit file, the explanation of
//! every point, the access log of who read the file and why, and consent.
//! A subject token reads only the file of the subject it was issued for.
//! Every read of the file is logged before it is answered, where the
//! subject sees it (`access-log`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use socred_core::file::{CreditFile, Detail};
use socred_core::{Day, Fact, FactKind, RecordKey, Rulebook, SubjectId, SubjectState};
use socred_schema::wire::{control_character, Controls};
use socred_store::{
    empty_state, AuditDraft, AuditEntry, FactKey, Item, ItemKey, Outcome, Principal, ReviewNeed,
    Role, Submission,
};

use crate::auth::Caller;
use crate::body::{parse_json, strict_record_key, Params, RawBody, Segment};
use crate::error::ApiError;
use crate::routes::review::{self, PendingView};
use crate::routes::{audit_draft, cut_page, page_limit, parse_subject};
use crate::state::AppState;

/// The subject named in the path, when the caller is that subject.
fn own_subject<'c>(
    caller: &'c Caller,
    id: &Segment,
) -> Result<(&'c Principal, SubjectId), ApiError> {
    let principal = caller.require(&[Role::Subject])?;
    let subject = parse_subject(id.text()?)?;
    let scope = Caller::scope(principal)?;
    if scope != subject.as_str() {
        return Err(ApiError::forbidden(
            "not_your_file",
            format!("this token is for subject {scope}; it may not read or change the file of {subject}"),
        ));
    }
    Ok((principal, subject))
}

async fn load(state: &AppState, subject: SubjectId) -> Result<Arc<SubjectState>, ApiError> {
    Ok(state
        .store()
        .state(subject)
        .await?
        .unwrap_or_else(|| empty_state(subject).into()))
}

/// The day by which a reviewer should resolve an objection made on
/// `since`, by the rulebook's `objection_deadline`. Past it the objection
/// is `overdue`, to the subject and to reviewers; the record's effects stay
/// as the dispute policy left them.
pub(crate) fn resolve_by(rulebook: &Rulebook, since: Day) -> Day {
    rulebook.objection_deadline.after(since)
}

/// Something about the file that is still open.
#[derive(Serialize)]
pub struct OpenItem {
    /// `dispute`: the subject objected to the record and no reviewer has resolved it yet.
    kind: &'static str,
    record: RecordKey,
    since: Day,
    /// The day by which a reviewer should have resolved it.
    resolve_by: Day,
    /// Today is past `resolve_by`.
    overdue: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement: Option<Arc<str>>,
}

#[derive(Serialize)]
pub struct FileView {
    #[serde(flatten)]
    file: CreditFile,
    open_items: Vec<OpenItem>,
    /// What waits for a reviewer about the subject, oldest first: records
    /// a provider sent that take effect only once approved, and the
    /// subject's own repair applications. At most [`PENDING_SHOWN_MAX`].
    pending: Vec<PendingView>,
}

/// Pending items a file shows at most (the oldest).
pub const PENDING_SHOWN_MAX: usize = 100;

fn open_items(rulebook: &Rulebook, state: &SubjectState, today: Day) -> Vec<OpenItem> {
    let mut items = Vec::new();
    for record in &state.records {
        for span in record.disputes() {
            if span.contains(today) {
                let resolve_by = resolve_by(rulebook, span.start);
                items.push(OpenItem {
                    kind: "dispute",
                    record: record.key.clone(),
                    since: span.start,
                    resolve_by,
                    overdue: today > resolve_by,
                    statement: record.statement().cloned(),
                });
            }
        }
    }
    items
}

/// Reads the caller's own file as of today, logging the read.
async fn read_file(
    state: &AppState,
    caller: &Caller,
    id: &Segment,
    action: &str,
) -> Result<(CreditFile, Vec<OpenItem>), ApiError> {
    let (_, subject) = own_subject(caller, id)?;
    let subject_state = load(state, subject).await?;
    // Read with the rulebook that folded it, which the file then names.
    let current = state.current_for(&subject_state).await?;
    let today = state.today();
    let standing = current.engine.evaluate(&subject_state, today);
    let file = current.engine.credit_file(&standing, Detail::Full);
    let open = open_items(current.rulebook(), &subject_state, today);
    let detail = format!("full file as of {today} (rulebook {})", current.label);
    let audit = vec![audit_draft(
        state,
        caller.actor(),
        "own_file",
        action,
        Some(subject),
        detail,
    )];
    state.inner.audit.append(audit).await?;
    Ok((file, open))
}

pub async fn file(
    State(state): State<AppState>,
    caller: Caller,
    id: Segment,
) -> Result<Json<FileView>, ApiError> {
    let (file, open_items) = read_file(&state, &caller, &id, "read_file").await?;
    let pending = state
        .store()
        .pending_about(state.current().rulebook(), file.subject, PENDING_SHOWN_MAX)
        .await?
        .into_iter()
        .map(review::view)
        .collect();
    Ok(Json(FileView {
        file,
        open_items,
        pending,
    }))
}

pub async fn explanation(
    State(state): State<AppState>,
    caller: Caller,
    id: Segment,
) -> Result<Response, ApiError> {
    let (file, _) = read_file(&state, &caller, &id, "read_explanation").await?;
    Ok((
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        file.explain(),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Entries after this audit sequence number.
    after: Option<u64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct AccessLog {
    subject: SubjectId,
    entries: Vec<AuditEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<u64>,
}

/// Who read the file and why: every audit entry about the subject.
pub async fn access_log(
    State(state): State<AppState>,
    caller: Caller,
    id: Segment,
    query: Params<LogQuery>,
) -> Result<Json<AccessLog>, ApiError> {
    let (_, subject) = own_subject(&caller, &id)?;
    let query = query.get()?;
    let limit = page_limit(query.limit);
    let entries = state
        .store()
        .audit_for_subject(subject, query.after.unwrap_or(0), limit + 1)
        .await?;
    let (entries, more) = cut_page(entries, limit);
    let next_after = entries.last().map(|e| e.seq).filter(|_| more);
    Ok(Json(AccessLog {
        subject,
        entries,
        next_after,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    granted: bool,
}

#[derive(Serialize)]
pub struct ConsentView {
    subject: SubjectId,
    /// What was asked.
    granted: bool,
    /// `stored`, or `duplicate` when the same change was already recorded today.
    outcome: &'static str,
    /// Whether consent is granted today, after the change.
    consent: bool,
}

/// Grants or withdraws the subject's consent from today on.
pub async fn consent(
    State(state): State<AppState>,
    caller: Caller,
    id: Segment,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<ConsentView>, ApiError> {
    let (principal, subject) = own_subject(&caller, &id)?;
    let _one_at_a_time = state.inner.own_file.lock(subject).await;
    let request: ConsentBody = parse_json(&headers, &body)?;
    let today = state.today();
    // Facts are dated by the day and a day's withdrawal holds over that
    // day's grants: a grant after one would change nothing.
    if request.granted
        && load(&state, subject)
            .await?
            .consent
            .iter()
            .any(|&(at, granted)| at == today && !granted)
    {
        return Err(ApiError::conflict(
            "withdrawn_today",
            format!("consent was withdrawn today ({today}); grant it again from tomorrow"),
        ));
    }
    let kind = if request.granted {
        FactKind::ConsentGranted
    } else {
        FactKind::ConsentWithdrawn
    };
    let fact = Fact {
        subject,
        at: today,
        by: principal.id.as_str().into(),
        kind,
    };
    let word = if request.granted {
        "granted"
    } else {
        "withdrawn"
    };
    let audit = audit_draft(
        &state,
        caller.actor(),
        "own_file",
        "consent",
        Some(subject),
        format!("consent {word} from {today}"),
    );
    let outcome = submit_own_fact(
        &state,
        principal,
        fact,
        ReviewNeed::NotRequired,
        audit,
        "consent change",
    )
    .await?;
    let consent = load(&state, subject).await?.consent_on(today);
    Ok(Json(ConsentView {
        subject,
        granted: request.granted,
        outcome,
        consent,
    }))
}

/// Longest statement an objection may carry, in bytes (as for a `disputed`
/// fact sent in a batch, docs/records.md).
const STATEMENT_BYTES_MAX: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectionBody {
    /// The record objected to, as the file names it.
    #[serde(deserialize_with = "strict_record_key")]
    record: RecordKey,
    /// Why, in the subject's words; it travels with the record.
    statement: Option<String>,
}

#[derive(Serialize)]
pub struct ObjectionView {
    subject: SubjectId,
    record: RecordKey,
    /// `stored` (an objection on the day another to the record was resolved
    /// is refused as `resolved_today`).
    outcome: &'static str,
    /// The record counts as disputed from this day.
    since: Day,
    /// The day by which a reviewer should have resolved it.
    resolve_by: Day,
}

/// The subject objects to one of its records: the record is disputed from
/// today (its effects follow the rulebook's dispute policy) until a
/// reviewer resolves the objection (`POST /v1/records` with a `resolved`
/// fact), and the statement travels with it.
pub async fn object(
    State(state): State<AppState>,
    caller: Caller,
    id: Segment,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<ObjectionView>, ApiError> {
    let (principal, subject) = own_subject(&caller, &id)?;
    let _one_at_a_time = state.inner.own_file.lock(subject).await;
    let request: ObjectionBody = parse_json(&headers, &body)?;
    let statement = match &request.statement {
        Some(text) => subject_text("statement", text, STATEMENT_BYTES_MAX)?,
        None => None,
    }
    .map(Arc::<str>::from);
    let today = state.today();
    let key = request.record;
    let file = load(&state, subject).await?;
    let (_, record) = record_in_file(&file, &key)?;
    if let Some(open) = record.disputes().iter().find(|span| span.contains(today)) {
        return Err(ApiError::conflict("already_disputed",
            format!(
                "record {}/{} is already disputed since {}; a reviewer resolves that objection first",
                key.provider, key.id, open.start
            ),
        ));
    }
    // Facts are dated by the day, and a day's objection comes before its
    // resolution whichever arrived first: an objection made on the day
    // another was resolved would read as resolved by it. Refused, like the
    // objection still open, before anything is written or logged.
    if record.disputes().iter().any(|span| span.end == today) {
        return Err(resolved_today(&key));
    }
    let fact = Fact {
        subject,
        at: today,
        by: principal.id.as_str().into(),
        kind: FactKind::Disputed {
            record: key.clone(),
            statement,
        },
    };
    let audit = audit_draft(
        &state,
        caller.actor(),
        "own_file",
        "object",
        Some(subject),
        format!(
            "objection to record {}/{} from {today}",
            key.provider, key.id
        ),
    );
    let outcome = submit_own_fact(
        &state,
        principal,
        fact,
        ReviewNeed::NotRequired,
        audit,
        "objection",
    )
    .await?;
    // The same objection was stored and resolved today since the file was
    // read: storing it again changed nothing.
    if outcome == "duplicate" {
        return Err(resolved_today(&key));
    }
    Ok(Json(ObjectionView {
        subject,
        record: key,
        outcome,
        since: today,
        resolve_by: resolve_by(state.current().rulebook(), today),
    }))
}

fn resolved_today(key: &RecordKey) -> ApiError {
    ApiError::conflict(
        "resolved_today",
        format!(
            "an objection to record {}/{} was resolved today; object again from tomorrow",
            key.provider, key.id
        ),
    )
}

/// Longest correction or commitment in a repair application, in bytes
/// (together they travel as the fact's statement, at most 4,096 bytes).
const APPLICATION_PART_BYTES_MAX: usize = 2000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepairBody {
    /// The record whose publicity or list entries the subject asks to end.
    #[serde(deserialize_with = "strict_record_key")]
    record: RecordKey,
    /// How the conduct was corrected, with its proof (a receipt, a court's
    /// certificate of performance). Left out, as empty: the application is
    /// `incomplete_application`.
    #[serde(default)]
    correction: String,
    /// The subject's credit commitment.
    #[serde(default)]
    commitment: String,
}

#[derive(Serialize)]
pub struct RepairView {
    subject: SubjectId,
    record: RecordKey,
    /// `pending_review` (a reviewer decides; the same application sent
    /// again that day is the same item, still waiting).
    outcome: &'static str,
    /// The application in the review queue: a reviewer approves or rejects
    /// it by this key (`POST /v1/review/approve`, `/reject`).
    key: ItemKey,
}

/// One part of a repair application: present, and text as
/// [`subject_text`] takes it.
fn application_part(name: &str, text: &str) -> Result<String, ApiError> {
    subject_text(name, text, APPLICATION_PART_BYTES_MAX)?.ok_or_else(|| {
        ApiError::bad_request(
            "incomplete_application",
            format!("`{name}` is empty: a repair application needs the correction made, with its proof, and a credit commitment"),
        )
    })
}

/// Text a subject writes (a statement, an application), trimmed: None when
/// empty; refused when longer than `max` bytes or holding control
/// characters other than line breaks and tabs.
fn subject_text(name: &str, text: &str, max: usize) -> Result<Option<String>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > max {
        return Err(ApiError::bad_request(
            "text_too_long",
            format!("`{name}` is {} bytes; at most {max}", text.len()),
        ));
    }
    if control_character(text, Controls::Breaks).is_some() {
        return Err(ApiError::bad_request(
            "invalid_text",
            format!("`{name}` may hold line breaks and tabs but no other control characters"),
        ));
    }
    Ok(Some(text.to_string()))
}

/// The record of `file` with `key`, and its position.
fn record_in_file<'f>(
    file: &'f SubjectState,
    key: &RecordKey,
) -> Result<(usize, &'f socred_core::state::RecordState), ApiError> {
    file.records
        .iter()
        .enumerate()
        .find(|(_, r)| r.key == *key)
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_record",
                format!(
                    "the file of {} holds no record {}/{}",
                    file.subject, key.provider, key.id
                ),
            )
        })
}

/// The subject applies for repair of one of its records: with the
/// correction made and a credit commitment, it asks that the record's
/// publicity and the list entries it made end early. The application waits
/// in the review queue; a reviewer other than the subject grants it
/// (approve: the repair counts from the day of the application, and list
/// entries end no earlier than their minimum duration) or refuses it
/// (reject, with a reason).
pub async fn apply_for_repair(
    State(state): State<AppState>,
    caller: Caller,
    id: Segment,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<RepairView>, ApiError> {
    let (principal, subject) = own_subject(&caller, &id)?;
    let _one_at_a_time = state.inner.own_file.lock(subject).await;
    let request: RepairBody = parse_json(&headers, &body)?;
    let correction = application_part("correction", &request.correction)?;
    let commitment = application_part("commitment", &request.commitment)?;
    let today = state.today();
    let key = request.record;
    let file = load(&state, subject).await?;
    let (index, record) = record_in_file(&file, &key)?;
    if let Some(day) = record.repaired_at() {
        return Err(ApiError::conflict(
            "already_repaired",
            format!("record {}/{} was repaired on {day}", key.provider, key.id),
        ));
    }
    let public = record.public_until.is_some_and(|until| until > today);
    let current = state.current();
    let rulebook = current.rulebook();
    let listed = file.effects.iter().any(|effect| match &effect.source {
        socred_core::state::Source::ListEntry { list } => {
            effect.record as usize == index
                && effect.span.end > today
                && rulebook
                    .lists
                    .iter()
                    .any(|l| l.id == *list && l.exit_on_repair)
        }
        socred_core::state::Source::Rule { .. } => false,
    });
    if !public && !listed {
        return Err(ApiError::conflict("nothing_to_repair",
            format!(
                "record {}/{} is not public and puts you on no list that repair ends: repair would change nothing",
                key.provider, key.id
            ),
        ));
    }
    let fact = Fact {
        subject,
        at: today,
        by: principal.id.as_str().into(),
        kind: FactKind::Repaired {
            record: key.clone(),
            statement: Some(Arc::from(format!(
                "Correction: {correction}\nCommitment: {commitment}"
            ))),
        },
    };
    let item_key = ItemKey::Fact(FactKey::of(&fact));
    // Today's application already waiting: the same again is that item,
    // other words a second one; either way nothing is written or logged.
    let waiting = state
        .store()
        .pending_about(rulebook, subject, PENDING_SHOWN_MAX)
        .await?
        .into_iter()
        .find(|item| item.key == item_key);
    if let Some(item) = waiting {
        let same = matches!(&item.item, Item::Fact { fact: held, .. } if *held == fact);
        if !same {
            return Err(applied_today(&key));
        }
        return Ok(Json(RepairView {
            subject,
            record: key,
            outcome: "pending_review",
            key: item_key,
        }));
    }
    let audit = audit_draft(
        &state,
        caller.actor(),
        "own_file",
        "apply_repair",
        Some(subject),
        format!(
            "repair of record {}/{} applied for on {today}",
            key.provider, key.id
        ),
    );
    // The day's application is the fact's key: another one that day, while
    // it waits with other words or once it was refused, is the same key.
    let outcome = submit_own_fact(
        &state,
        principal,
        fact,
        ReviewNeed::Required,
        audit,
        "repair application",
    )
    .await
    .map_err(|error| match error.code {
        // Refused today: the attempt is logged, as every write attempt
        // the store sees.
        "conflict" => applied_today(&key),
        _ => error,
    })?;
    Ok(Json(RepairView {
        subject,
        record: key,
        outcome,
        key: item_key,
    }))
}

fn applied_today(key: &RecordKey) -> ApiError {
    ApiError::conflict("applied_today",
        format!(
            "you already applied today for the repair of record {}/{} (it waits for a reviewer, or was \
             refused today); apply again from tomorrow",
            key.provider, key.id
        ),
    )
}

/// Stores a fact the subject reports about its own file, with its audit
/// entry, in one store call; answers `stored` or `duplicate` (the same fact
/// already recorded today). `what` names the change in a conflict.
async fn submit_own_fact(
    state: &AppState,
    principal: &Principal,
    fact: Fact,
    review: ReviewNeed,
    audit: AuditDraft,
    what: &str,
) -> Result<&'static str, ApiError> {
    let submission = Submission {
        item: Item::Fact {
            fact,
            record_type: None,
        },
        submitted_by: principal.id.clone(),
        review,
    };
    let _gate = state.inner.write_gate.read().await;
    let current = state.current();
    let outcomes = state
        .store()
        .ingest(&current.engine, vec![submission], vec![audit])
        .await?;
    match outcomes.first() {
        Some(Outcome::Stored) => Ok("stored"),
        Some(Outcome::Duplicate) => Ok("duplicate"),
        Some(Outcome::PendingReview) => Ok("pending_review"),
        Some(Outcome::UnknownRecord) => Err(ApiError::not_found(
            "unknown_record",
            format!("the {what} names a record that is not in effect in this file"),
        )),
        Some(Outcome::Conflict { reason }) => Err(ApiError::conflict(
            "conflict",
            format!("the {what} was not recorded: {reason}"),
        )),
        None => Err(ApiError::internal(what, &"the store answered no outcome")),
    }
}
