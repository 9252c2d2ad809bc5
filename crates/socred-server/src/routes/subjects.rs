//! A subject's own endpoints: its full credit file, the explanation of
//! every point, the access log of who read the file and why, and consent.
//! A subject token reads only the file of the subject it was issued for.
//! Every read of the file is logged before it is answered, where the
//! subject sees it (`access-log`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use socred_core::file::{CreditFile, Detail};
use socred_core::{Day, Fact, FactKind, RecordKey, SubjectId, SubjectState};
use socred_store::{
    empty_state, AuditEntry, Item, Outcome, Principal, ReviewNeed, Role, Submission,
};

use crate::auth::Caller;
use crate::body::{parse_json, Params, RawBody};
use crate::error::ApiError;
use crate::routes::{audit_draft, page_limit, parse_subject};
use crate::state::AppState;

/// The subject named in the path, when the caller is that subject.
fn own_subject<'c>(caller: &'c Caller, id: &str) -> Result<(&'c Principal, SubjectId), ApiError> {
    let principal = caller.require(&[Role::Subject])?;
    let subject = parse_subject(id)?;
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

/// Something about the file that is still open.
#[derive(Serialize)]
pub struct OpenItem {
    /// `dispute`: the subject objected to the record and no reviewer has resolved it yet.
    kind: &'static str,
    record: RecordKey,
    since: Day,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement: Option<Arc<str>>,
}

#[derive(Serialize)]
pub struct FileView {
    #[serde(flatten)]
    file: CreditFile,
    open_items: Vec<OpenItem>,
}

fn open_items(state: &SubjectState, today: Day) -> Vec<OpenItem> {
    let mut items = Vec::new();
    for record in &state.records {
        for span in &record.disputes {
            if span.contains(today) {
                items.push(OpenItem {
                    kind: "dispute",
                    record: record.key.clone(),
                    since: span.start,
                    statement: record.statement.clone(),
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
    id: &str,
    action: &str,
) -> Result<(CreditFile, Vec<OpenItem>), ApiError> {
    let (_, subject) = own_subject(caller, id)?;
    let subject_state = load(state, subject).await?;
    let current = state.current();
    let today = state.today();
    let standing = current.engine.evaluate(&subject_state, today);
    let file = current.engine.credit_file(&standing, Detail::Full);
    let open = open_items(&subject_state, today);
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
    Path(id): Path<String>,
) -> Result<Json<FileView>, ApiError> {
    let (file, open_items) = read_file(&state, &caller, &id, "read_file").await?;
    Ok(Json(FileView { file, open_items }))
}

pub async fn explanation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
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
    Path(id): Path<String>,
    query: Params<LogQuery>,
) -> Result<Json<AccessLog>, ApiError> {
    let (_, subject) = own_subject(&caller, &id)?;
    let query = query.get()?;
    let limit = page_limit(query.limit);
    let entries = state
        .store()
        .audit_for_subject(subject, query.after.unwrap_or(0), limit)
        .await?;
    let next_after = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
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
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<ConsentView>, ApiError> {
    let (principal, subject) = own_subject(&caller, &id)?;
    let request: ConsentBody = parse_json(&headers, &body)?;
    let today = state.today();
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
    let submission = Submission {
        item: Item::Fact {
            fact,
            record_type: None,
        },
        submitted_by: principal.id.clone(),
        review: ReviewNeed::NotRequired,
    };
    let word = if request.granted {
        "granted"
    } else {
        "withdrawn"
    };
    let audit = vec![audit_draft(
        &state,
        caller.actor(),
        "own_file",
        "consent",
        Some(subject),
        format!("consent {word} from {today}"),
    )];
    let _gate = state.inner.write_gate.read().await;
    let current = state.current();
    let outcomes = state
        .store()
        .ingest(&current.engine, vec![submission], audit)
        .await?;
    let outcome = match outcomes.first() {
        Some(Outcome::Stored) => "stored",
        Some(Outcome::Duplicate) => "duplicate",
        Some(other) => {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "conflict",
                format!("the consent change was not recorded: {other:?}"),
            ))
        }
        None => {
            return Err(ApiError::internal(
                "consent",
                &"the store answered no outcome",
            ))
        }
    };
    let consent = load(&state, subject).await?.consent_on(today);
    Ok(Json(ConsentView {
        subject,
        granted: request.granted,
        outcome,
        consent,
    }))
}
