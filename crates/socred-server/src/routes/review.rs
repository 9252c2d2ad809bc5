//! The two-person review: reviewers list what waits, and approve or reject
//! it. The submitter of an item can never decide on it (the store refuses
//! that too, whatever the caller).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use socred_core::{RecordKey, SubjectId};
use socred_schema::wire::{self, control_character, Controls};
use socred_store::{Item, ItemKey, PendingItem, Role, StoreError};

use crate::auth::Caller;
use crate::body::{parse_json, strict_item_key, Params, RawBody};
use crate::error::ApiError;
use crate::routes::{audit_draft, cut_page, page_limit};
use crate::state::AppState;

/// Longest rejection reason, in bytes.
const REASON_BYTES_MAX: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct PendingView {
    /// Position in the queue (use as `after` to page).
    seq: u64,
    key: ItemKey,
    subject: SubjectId,
    /// The record or the later fact, in the wire shape.
    item: Value,
    submitted_by: String,
    submitted_at_ms: i64,
}

#[derive(Serialize)]
pub struct PendingList {
    items: Vec<PendingView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<u64>,
}

/// An item as its provider sent it: a line of the wire format
/// (docs/records.md), a correction with its `type`.
fn item_json(item: &Item) -> Value {
    let wire = match item {
        Item::Record(record) => wire::Item::Record(record.clone()),
        Item::Fact { fact, record_type } => wire::Item::Fact {
            fact: fact.clone(),
            record_type: *record_type,
        },
    };
    serde_json::from_str(&wire::to_line(&wire)).unwrap_or(Value::Null)
}

pub(crate) fn view(pending: PendingItem) -> PendingView {
    PendingView {
        seq: pending.seq,
        subject: pending.item.subject(),
        item: item_json(&pending.item),
        key: pending.key,
        submitted_by: pending.submitted_by,
        submitted_at_ms: pending.submitted_at_ms,
    }
}

/// Items waiting for review, oldest first. Each item listed is a read of
/// what is about to enter its subject's file (a record, or the subject's
/// own application): it is logged where the subject sees it, as the
/// objections' queue is.
pub async fn pending(
    State(state): State<AppState>,
    caller: Caller,
    query: Params<PendingQuery>,
) -> Result<Json<PendingList>, ApiError> {
    caller.require(&[Role::Reviewer])?;
    let query = query.get()?;
    let limit = page_limit(query.limit);
    let current = state.current();
    let items = state
        .store()
        .pending(current.rulebook(), query.after, limit + 1)
        .await?;
    let (items, more) = cut_page(items, limit);
    let audit: Vec<_> = items
        .iter()
        .map(|pending| {
            audit_draft(
                &state,
                caller.actor(),
                "review",
                "read_pending",
                Some(pending.item.subject()),
                format!("{} listed for review", pending.key),
            )
        })
        .collect();
    if !audit.is_empty() {
        state.inner.audit.append(audit).await?;
    }
    let next_after = items.last().map(|p| p.seq).filter(|_| more);
    Ok(Json(PendingList {
        items: items.into_iter().map(view).collect(),
        next_after,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    #[serde(deserialize_with = "strict_item_key")]
    key: ItemKey,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    #[serde(deserialize_with = "strict_item_key")]
    key: ItemKey,
    reason: String,
}

#[derive(Serialize)]
pub struct Reviewed {
    /// `approved` or `rejected`.
    status: &'static str,
    #[serde(flatten)]
    item: PendingView,
}

/// Whether `key` could name an item at all: the wire refuses control
/// characters in ids and names, so a key holding one names nothing (and
/// is never sent on to a store, some of which cannot even hold it).
fn could_be_stored(key: &ItemKey) -> bool {
    let clean = |text: &str| control_character(text, Controls::None).is_none();
    let record_clean = |key: &RecordKey| clean(&key.provider) && clean(&key.id);
    match key {
        ItemKey::Record(key) => record_clean(key),
        ItemKey::Fact(key) => {
            clean(&key.kind) && clean(&key.by) && key.record.as_ref().is_none_or(record_clean)
        }
    }
}

/// The answer for a key that names nothing waiting.
fn not_pending(key: &ItemKey) -> ApiError {
    review_error(StoreError::NotFound(key.to_string()))
}

/// A store conflict in review says why (self-approval, not waiting).
fn review_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict(reason) => ApiError::conflict("review_refused", reason),
        StoreError::NotFound(what) => ApiError::not_found(
            "not_pending",
            format!("nothing waits for review under {what}"),
        ),
        other => other.into(),
    }
}

pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Reviewed>, ApiError> {
    let principal = caller.require(&[Role::Reviewer])?;
    let request: ApproveBody = parse_json(&headers, &body)?;
    if !could_be_stored(&request.key) {
        return Err(not_pending(&request.key));
    }
    let audit = vec![audit_draft(
        &state,
        caller.actor(),
        "review",
        "approve",
        None,
        format!("approved {}", request.key),
    )];
    let _gate = state.inner.write_gate.read().await;
    let current = state.current();
    let approved = state
        .store()
        .approve(
            &current.engine,
            &request.key,
            &principal.id,
            state.today(),
            audit,
        )
        .await
        .map_err(review_error)?;
    Ok(Json(Reviewed {
        status: "approved",
        item: view(approved),
    }))
}

pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Reviewed>, ApiError> {
    let principal = caller.require(&[Role::Reviewer])?;
    let request: RejectBody = parse_json(&headers, &body)?;
    if request.reason.trim().is_empty()
        || request.reason.len() > REASON_BYTES_MAX
        || control_character(&request.reason, Controls::Breaks).is_some()
    {
        return Err(ApiError::bad_request(
            "invalid_reason",
            format!(
                "`reason` must say why the item is rejected, 1 to {REASON_BYTES_MAX} bytes \
                 with no control characters but line breaks and tabs"
            ),
        ));
    }
    if !could_be_stored(&request.key) {
        return Err(not_pending(&request.key));
    }
    let detail = format!("rejected {}: {}", request.key, request.reason);
    let audit = vec![audit_draft(
        &state,
        caller.actor(),
        "review",
        "reject",
        None,
        detail,
    )];
    let _gate = state.inner.write_gate.read().await;
    let current = state.current();
    let rejected = state
        .store()
        .reject(
            &current.engine,
            &request.key,
            &principal.id,
            &request.reason,
            audit,
        )
        .await
        .map_err(review_error)?;
    Ok(Json(Reviewed {
        status: "rejected",
        item: view(rejected),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectionsQuery {
    /// Subjects after this identifier.
    after: Option<String>,
    /// Subjects per page.
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct ObjectionView {
    subject: SubjectId,
    record: socred_core::RecordKey,
    record_type: std::sync::Arc<str>,
    /// The record's fields as they stand: what a `corrected` resolution
    /// sends again, with the disputed values changed.
    fields: socred_core::record::Fields,
    /// The record counts as disputed from this day.
    since: socred_core::Day,
    /// The day by which a reviewer should have resolved it.
    resolve_by: socred_core::Day,
    /// Today is past `resolve_by`.
    overdue: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement: Option<std::sync::Arc<str>>,
}

#[derive(Serialize)]
pub struct ObjectionList {
    as_of: socred_core::Day,
    objections: Vec<ObjectionView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<SubjectId>,
}

/// Open objections, for reviewers to resolve (`POST /v1/records` with a
/// `resolved` fact): a page of subjects in identifier order, each with its
/// records disputed today. Each subject listed is a read of part of its
/// file (the record and the statement): it is logged where the subject
/// sees it.
pub async fn objections(
    State(state): State<AppState>,
    caller: Caller,
    query: Params<ObjectionsQuery>,
) -> Result<Json<ObjectionList>, ApiError> {
    caller.require(&[Role::Reviewer])?;
    let query = query.get()?;
    let limit = page_limit(query.limit);
    let after = query
        .after
        .as_deref()
        .map(crate::routes::parse_subject)
        .transpose()?;
    let subjects = state.store().disputed_subjects(after, limit + 1).await?;
    let (subjects, more) = cut_page(subjects, limit);
    let today = state.today();
    let current = state.current();
    let mut objections = Vec::new();
    let mut audit = Vec::new();
    for &subject in &subjects {
        let Some(file) = state.store().state(subject).await? else {
            continue;
        };
        for record in &file.records {
            let Some(open) = record.disputes().iter().find(|span| span.contains(today)) else {
                continue;
            };
            let resolve_by = crate::routes::subjects::resolve_by(current.rulebook(), open.start);
            audit.push(audit_draft(
                &state,
                caller.actor(),
                "review",
                "read_objection",
                Some(subject),
                format!(
                    "open objection to record {}/{} listed for review",
                    record.key.provider, record.key.id
                ),
            ));
            objections.push(ObjectionView {
                subject,
                record: record.key.clone(),
                record_type: record.type_id.into(),
                fields: record.fields.clone(),
                since: open.start,
                resolve_by,
                overdue: today > resolve_by,
                statement: record.statement().cloned(),
            });
        }
    }
    if !audit.is_empty() {
        state.inner.audit.append(audit).await?;
    }
    let next_after = subjects.last().copied().filter(|_| more);
    Ok(Json(ObjectionList {
        as_of: today,
        objections,
        next_after,
    }))
}
