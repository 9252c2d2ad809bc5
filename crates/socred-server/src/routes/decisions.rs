//! Decisions for consuming agencies: does measure M apply to subject X
//! today, and why. An agency may ask only about the measures whose
//! `agencies` name it, and learns the decision with its reasons, never the
//! file. Each answer is a read of the subject's file: it is logged with the
//! agency, its purpose and the measure, where the subject sees it, and the
//! answer goes out only once that entry is durable.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use socred_core::rulebook::Measure;
use socred_core::{Decision, SubjectId};
use socred_store::{empty_state, AuditDraft, Principal, ReadMark, Role, StoreError};

use crate::auth::Caller;
use crate::body::{parse_json, Params, RawBody};
use crate::error::ApiError;
use crate::routes::{audit_draft, parse_subject};
use crate::state::{AppState, Current};

/// Longest purpose, in bytes.
const PURPOSE_BYTES_MAX: usize = 128;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Why the agency asks (e.g. `ticket_sale`); shown to the subject.
    purpose: String,
    queries: Vec<QueryBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    subject: String,
    measure: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionParams {
    subject: String,
    measure: String,
    purpose: String,
}

#[derive(Serialize)]
pub struct DecisionsResponse {
    decisions: Vec<Decision>,
}

pub async fn post_decisions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<DecisionsResponse>, ApiError> {
    let principal = caller.require(&[Role::Agency])?;
    let request: DecisionRequest = parse_json(&headers, &body)?;
    if request.queries.len() > state.limits().queries_max {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_queries",
            format!(
                "{} queries in one request; at most {}",
                request.queries.len(),
                state.limits().queries_max
            ),
        ));
    }
    let queries: Vec<(&str, &str)> = request
        .queries
        .iter()
        .map(|q| (q.subject.as_str(), q.measure.as_str()))
        .collect();
    let decisions = decide(&state, &caller, principal, &request.purpose, &queries).await?;
    Ok(Json(DecisionsResponse { decisions }))
}

pub async fn get_decision(
    State(state): State<AppState>,
    caller: Caller,
    params: Params<DecisionParams>,
) -> Result<Json<Decision>, ApiError> {
    let principal = caller.require(&[Role::Agency])?;
    let params = params.get()?;
    let queries = [(params.subject.as_str(), params.measure.as_str())];
    let decision = decide(&state, &caller, principal, &params.purpose, &queries)
        .await?
        .pop();
    decision
        .map(Json)
        .ok_or_else(|| ApiError::internal("decide", &"no decision for one query"))
}

/// Checks every query first (so that a refused one leaves no trace but the
/// error), then decides, logs and answers in query order.
async fn decide(
    state: &AppState,
    caller: &Caller,
    principal: &Principal,
    purpose: &str,
    queries: &[(&str, &str)],
) -> Result<Vec<Decision>, ApiError> {
    check_purpose(purpose)?;
    let agency = Caller::scope(principal)?;
    let current = state.current();
    let rulebook = current.rulebook();
    let mut checked = Vec::with_capacity(queries.len());
    for (subject, measure_id) in queries {
        let subject = parse_subject(subject)?;
        let Some(measure) = rulebook.measure(measure_id) else {
            return Err(ApiError::bad_request(
                "unknown_measure",
                format!("rulebook {} has no measure `{measure_id}`", current.label),
            ));
        };
        if !measure.agencies.iter().any(|a| **a == *agency) {
            return Err(ApiError::forbidden(
                "measure_not_allowed",
                format!("agency `{agency}` does not implement measure `{measure_id}`, so it may not ask about it"),
            ));
        }
        // Purpose limitation: a measure that names its purposes is asked
        // about for those only.
        if !measure.purposes.is_empty() && !measure.purposes.iter().any(|p| **p == *purpose) {
            let allowed: Vec<String> = measure.purposes.iter().map(|p| format!("`{p}`")).collect();
            return Err(ApiError::forbidden(
                "purpose_not_allowed",
                format!(
                    "measure `{measure_id}` may be asked about only for {}, not for {}",
                    allowed.join(" or "),
                    serde_json::Value::from(purpose)
                ),
            ));
        }
        checked.push((subject, measure));
    }
    // Decided from states the store may hold in memory; should it notice
    // meanwhile that another process wrote (its audit append refuses the
    // answer), the answer is worked out again from fresh reads.
    for _ in 0..DECIDE_ATTEMPTS {
        let (decisions, audit, counts, mark) =
            decide_once(state, caller, purpose, &current, &checked).await?;
        if state.inner.audit.append_marked(audit, mark).await? {
            state.inner.metrics.decisions(counts.0, counts.1);
            return Ok(decisions);
        }
    }
    Err(ApiError::from(StoreError::Unavailable(format!(
        "the registry changed under {DECIDE_ATTEMPTS} attempts at this answer; ask again"
    ))))
}

/// Times a decision is worked out at most when the store keeps noticing
/// other writers (each attempt after the first reads afresh).
const DECIDE_ATTEMPTS: usize = 3;

/// Decisions with their audit drafts, (applies, does not apply) counts and
/// the mark of the reads they rest on.
type Decided = (Vec<Decision>, Vec<AuditDraft>, (u64, u64), ReadMark);

async fn decide_once(
    state: &AppState,
    caller: &Caller,
    purpose: &str,
    current: &Arc<Current>,
    checked: &[(SubjectId, &Measure)],
) -> Result<Decided, ApiError> {
    // Each subject once, read together.
    let mut index: HashMap<SubjectId, usize> = HashMap::new();
    let mut subjects = Vec::new();
    for &(subject, _) in checked {
        index.entry(subject).or_insert_with(|| {
            subjects.push(subject);
            subjects.len() - 1
        });
    }
    let (read, mark) = match subjects.as_slice() {
        // One subject (a single decision, the hot path): no vectors.
        &[subject] => {
            let (read, mark) = state.store().state_marked(subject).await?;
            (vec![read], mark)
        }
        _ => state.store().states_marked(&subjects).await?,
    };
    let states: Vec<_> = subjects
        .iter()
        .zip(read)
        .map(|(&subject, read)| read.unwrap_or_else(|| empty_state(subject).into()))
        .collect();
    // Each file is read with the rulebook that folded it, which the
    // decision then names: while an upload's recomputation is under way,
    // some files are folded with the rulebook before and some with the new
    // one, and an answer must never be one rulebook's under the other's
    // name. Nearly always every file is folded with the one in force.
    let mut rulebooks = Vec::with_capacity(states.len());
    for file in &states {
        let folded_with = match state.folded_with_in(current, file) {
            Some(found) => found,
            None => state.current_for(file).await?,
        };
        rulebooks.push(folded_with);
    }
    let today = state.today();
    let standings: Vec<_> = states
        .iter()
        .zip(&rulebooks)
        .map(|(s, rulebook)| rulebook.engine.evaluate(s, today))
        .collect();
    let mut decisions = Vec::with_capacity(checked.len());
    let mut audit = Vec::with_capacity(checked.len());
    let (mut applies, mut not_applies) = (0, 0);
    for &(subject, measure) in checked {
        let Some((standing, rulebook)) = index
            .get(&subject)
            .and_then(|&i| Some((standings.get(i)?, rulebooks.get(i)?)))
        else {
            return Err(ApiError::internal(
                "decide",
                &format!("no standing loaded for {subject}"),
            ));
        };
        let decision = if Arc::ptr_eq(rulebook, current) {
            rulebook.engine.decide(standing, measure)
        } else {
            // The measure as the rulebook that folded the file has it.
            let Some(measure) = rulebook.rulebook().measure(&measure.id) else {
                return Err(changing(subject, &measure.id, &rulebook.label));
            };
            rulebook.engine.decide(standing, measure)
        }
        .for_agency();
        let verdict = if decision.applies {
            applies += 1;
            "applies"
        } else {
            not_applies += 1;
            "does not apply"
        };
        let detail = format!(
            "measure {}: {verdict} (rulebook {})",
            measure.id, decision.rulebook
        );
        audit.push(audit_draft(
            state,
            caller.actor(),
            purpose,
            "decide",
            Some(subject),
            detail,
        ));
        decisions.push(decision);
    }
    Ok((decisions, audit, (applies, not_applies), mark))
}

/// A decision that cannot be made while the files are recomputed: the
/// rulebook that folded the subject's file has no such measure.
fn changing(subject: SubjectId, measure: &str, rulebook: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "rulebook_changing",
        format!(
            "the file of {subject} is still folded with rulebook {rulebook}, which has no \
             measure `{measure}`: the files are being recomputed after a rulebook upload; ask \
             again in a moment"
        ),
    )
}

fn check_purpose(purpose: &str) -> Result<(), ApiError> {
    let ok = !purpose.trim().is_empty()
        && purpose.len() <= PURPOSE_BYTES_MAX
        && purpose.chars().all(|c| !c.is_control());
    if ok {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "invalid_purpose",
        format!(
            "`purpose` must say why the agency asks (shown to the subject): 1 to {PURPOSE_BYTES_MAX} bytes, not \
             only spaces, without control characters"
        ),
    ))
}
