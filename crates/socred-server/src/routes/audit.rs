//! The audit log for auditors: its entries in order, and a check of its
//! hash chain from the first entry to the stored head. An auditor's reads
//! are themselves in the log (about no subject: what they read is the log,
//! not a file), so that whoever reads the log later sees who read it.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use socred_store::{AuditEntry, Role};

use crate::auth::Caller;
use crate::body::Params;
use crate::error::ApiError;
use crate::routes::{audit_draft, page_limit};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct AuditPage {
    entries: Vec<AuditEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<u64>,
}

pub async fn entries(
    State(state): State<AppState>,
    caller: Caller,
    query: Params<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require(&[Role::Auditor])?;
    let query = query.get()?;
    let limit = page_limit(query.limit);
    let entries = state.store().audit(query.after.unwrap_or(0), limit).await?;
    let next_after = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    let detail = match (entries.first(), entries.last()) {
        (Some(first), Some(last)) => format!("entries {} to {}", first.seq, last.seq),
        _ => format!("no entry after {}", query.after.unwrap_or(0)),
    };
    log_read(&state, &caller, "read_audit", detail).await?;
    Ok(Json(AuditPage {
        entries,
        next_after,
    }))
}

#[derive(Serialize)]
pub struct ChainReport {
    /// Whether every entry and the head verify.
    ok: bool,
    /// Entries checked.
    entries: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    broken: Option<Broken>,
}

/// Where the chain breaks first.
#[derive(Serialize)]
pub struct Broken {
    seq: u64,
    reason: String,
}

pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ChainReport>, ApiError> {
    caller.require(&[Role::Auditor])?;
    let (entries, outcome) = crate::verify::check_chain(state.store().as_ref()).await?;
    let broken = outcome.err().map(|b| Broken {
        seq: b.seq,
        reason: b.reason,
    });
    let detail = match &broken {
        None => format!("chain of {entries} entries holds"),
        Some(b) => format!("chain broken at entry {}: {}", b.seq, b.reason),
    };
    log_read(&state, &caller, "verify_audit", detail).await?;
    Ok(Json(ChainReport {
        ok: broken.is_none(),
        entries,
        broken,
    }))
}

/// Appends an auditor's read of the log, after the read it describes.
async fn log_read(
    state: &AppState,
    caller: &Caller,
    action: &str,
    detail: String,
) -> Result<(), ApiError> {
    let entry = audit_draft(state, caller.actor(), "audit", action, None, detail);
    state.inner.audit.append(vec![entry]).await?;
    Ok(())
}
