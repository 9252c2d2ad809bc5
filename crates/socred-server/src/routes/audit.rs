//! The audit log for auditors: its entries in order, and a check of its
//! hash chain from the first entry to the stored head. An auditor's reads
//! are themselves in the log, so that whoever reads the log later sees who
//! read it: about no subject when they read the whole log, about the
//! subject when they read one subject's entries (its access log).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use socred_store::{AuditEntry, Role};

use crate::auth::Caller;
use crate::body::Params;
use crate::error::ApiError;
use crate::routes::{audit_draft, cut_page, page_limit};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<u64>,
    limit: Option<usize>,
    /// Only the entries about this subject (its access log, as it reads
    /// it): the auditor's read is then logged where the subject sees it.
    subject: Option<String>,
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
    let after = query.after.unwrap_or(0);
    let subject = query
        .subject
        .as_deref()
        .map(crate::routes::parse_subject)
        .transpose()?;
    let entries = match subject {
        Some(subject) => {
            state
                .store()
                .audit_for_subject(subject, after, limit + 1)
                .await?
        }
        None => state.store().audit(after, limit + 1).await?,
    };
    let (entries, more) = cut_page(entries, limit);
    let next_after = entries.last().map(|e| e.seq).filter(|_| more);
    let about = subject.map_or(String::new(), |s| format!(" about {s}"));
    let detail = match (entries.first(), entries.last()) {
        (Some(first), Some(last)) => {
            let n = entries.len();
            let noun = if n == 1 { "entry" } else { "entries" };
            format!("{n} {noun}{about}, {} to {}", first.seq, last.seq)
        }
        _ => format!("no entry{about} after {after}"),
    };
    log_read(&state, &caller, subject, "read_audit", detail).await?;
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
    log_read(&state, &caller, None, "verify_audit", detail).await?;
    Ok(Json(ChainReport {
        ok: broken.is_none(),
        entries,
        broken,
    }))
}

/// Appends an auditor's read of the log, after the read it describes;
/// about `subject` when only its entries were read.
async fn log_read(
    state: &AppState,
    caller: &Caller,
    subject: Option<socred_core::SubjectId>,
    action: &str,
    detail: String,
) -> Result<(), ApiError> {
    let entry = audit_draft(state, caller.actor(), "audit", action, subject, detail);
    state.inner.audit.append(vec![entry]).await?;
    Ok(())
}
