//! The operator's endpoints: principals and their tokens (which is how
//! providers and agencies are registered), and the rulebook.
//!
//! A principal's scope is what its role is limited to: a provider's
//! provider id (with the record types it may send), an agency's agency id
//! (the measures naming it are the ones it may ask about), a subject's
//! identifier. A token is shown once, when the principal is created or
//! replaced; the store keeps only its SHA-256.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use socred_store::{hash_token, Principal, Role, RulebookVersion, StoreError};

use crate::auth::Caller;
use crate::body::{media_type, parse_json, unsupported, RawBody, Segment};
use crate::error::ApiError;
use crate::routes::{audit_draft, held, parse_subject};
use crate::state::{AppState, Current};
use crate::token::new_token;

/// Longest principal id, provider id or agency id, in bytes.
const ID_BYTES_MAX: usize = 128;
/// Longest principal name, in bytes.
const NAME_BYTES_MAX: usize = 256;

#[derive(Serialize)]
pub struct PrincipalList {
    principals: Vec<Principal>,
}

pub async fn principals(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PrincipalList>, ApiError> {
    caller.require(&[Role::Admin])?;
    Ok(Json(PrincipalList {
        principals: state.store().principals().await?,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalBody {
    id: String,
    name: String,
    role: Role,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    record_types: Vec<String>,
    /// The last day the token works (`YYYY-MM-DD`, the registry's day);
    /// absent: until it is revoked or replaced.
    #[serde(default)]
    valid_until: Option<String>,
}

#[derive(Serialize)]
pub struct IssuedToken {
    principal: Principal,
    /// The bearer token. Shown this once: the registry keeps only its hash.
    token: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

fn invalid(message: String) -> ApiError {
    ApiError::bad_request("invalid_principal", message)
}

fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= ID_BYTES_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
    if ok {
        return Ok(());
    }
    Err(invalid(format!(
        "{what} `{id}` must be 1 to {ID_BYTES_MAX} characters of letters, digits, `.`, `_`, `-` and `:`"
    )))
}

/// Checks a principal against the rulebook in force; returns it normalised
/// with any warnings.
fn checked_principal(
    current: &Current,
    today: socred_core::Day,
    body: PrincipalBody,
) -> Result<(Principal, Vec<String>), ApiError> {
    check_id("principal id", &body.id)?;
    let valid_until = match body.valid_until.as_deref() {
        None => None,
        Some(text) => {
            let day = socred_core::Day::parse_date(text).map_err(|_| {
                invalid(format!(
                    "`valid_until` must be a date, YYYY-MM-DD (the last day the token works), not {}",
                    serde_json::Value::from(text)
                ))
            })?;
            if day < today {
                return Err(invalid(format!(
                    "`valid_until` {day} is before today ({today}): the token would never work"
                )));
            }
            Some(day)
        }
    };
    if body.name.trim().is_empty()
        || body.name.len() > NAME_BYTES_MAX
        || body.name.chars().any(char::is_control)
    {
        return Err(invalid(format!(
            "`name` must be 1 to {NAME_BYTES_MAX} bytes without control characters"
        )));
    }
    let mut warnings = Vec::new();
    let scope = match (body.role, body.scope) {
        (Role::Provider | Role::Agency, Some(scope)) => {
            check_id("scope", &scope)?;
            Some(scope)
        }
        (Role::Subject, Some(scope)) => Some(parse_subject(&scope)?.to_string()),
        (Role::Provider | Role::Agency | Role::Subject, None) => {
            return Err(invalid(format!(
                "{} {} principal needs a `scope`: the provider id, agency id or subject identifier it acts for",
                article(body.role),
                body.role
            )))
        }
        (role, Some(_)) => {
            return Err(invalid(format!(
                "{} {role} principal has no scope",
                article(role)
            )))
        }
        (_, None) => None,
    };
    if body.role == Role::Provider {
        if body.record_types.is_empty() {
            return Err(invalid(
                "a provider needs `record_types`: the record types it may send".into(),
            ));
        }
        let unknown: Vec<&str> = body
            .record_types
            .iter()
            .filter(|t| current.rulebook().record_type(t).is_none())
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::bad_request(
                "unknown_record_type",
                format!(
                    "rulebook {} has no record type {}",
                    current.label,
                    unknown.join(", ")
                ),
            ));
        }
    } else if !body.record_types.is_empty() {
        return Err(invalid(format!(
            "only providers have `record_types`, not {} {}",
            article(body.role),
            body.role
        )));
    }
    if let (Role::Agency, Some(agency)) = (body.role, &scope) {
        let implements = current
            .rulebook()
            .measures
            .iter()
            .any(|m| m.agencies.iter().any(|a| **a == **agency));
        if !implements {
            warnings.push(format!(
                "no measure of rulebook {} names agency `{agency}`: it can ask about nothing",
                current.label
            ));
        }
    }
    let mut record_types = body.record_types;
    record_types.sort();
    record_types.dedup();
    let principal = Principal {
        id: body.id,
        name: body.name,
        role: body.role,
        scope,
        record_types,
        revoked: false,
        valid_until,
    };
    Ok((principal, warnings))
}

/// "a" or "an" before a role's name.
fn article(role: Role) -> &'static str {
    match role {
        Role::Admin | Role::Agency | Role::Auditor => "an",
        Role::Provider | Role::Reviewer | Role::Subject => "a",
    }
}

/// The subject a subject's principal opens the file of: issuing and
/// revoking its token are logged where that subject sees it, since the
/// token reads the whole file.
pub(crate) fn subject_of(principal: &Principal) -> Option<socred_core::SubjectId> {
    match (principal.role, principal.scope.as_deref()) {
        (Role::Subject, Some(scope)) => parse_subject(scope).ok(),
        _ => None,
    }
}

/// Creates a principal, or replaces one (with a new token: the old one stops working).
pub async fn put_principal(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    let admin = caller.require(&[Role::Admin])?;
    let request: PrincipalBody = parse_json(&headers, &body)?;
    let (principal, warnings) = checked_principal(&state.current(), state.today(), request)?;
    // As with revoking: the last operator must not lock everyone out.
    if principal.id == admin.id && principal.role != Role::Admin {
        return Err(ApiError::conflict(
            "cannot_demote_self",
            format!(
                "an operator cannot give its own principal another role ({}); another admin must",
                principal.role
            ),
        ));
    }
    // Nor give its own token a last day: past it, the registry could be
    // left with no operator able to issue tokens.
    if let (true, Some(day)) = (principal.id == admin.id, principal.valid_until) {
        return Err(ApiError::conflict(
            "cannot_expire_self",
            format!("an operator cannot give its own token a last day ({day}); another admin must"),
        ));
    }
    let token = new_token().map_err(|error| ApiError::internal("issuing a token", &error))?;
    let detail = format!(
        "principal {} ({}, scope {}) issued a token{}",
        principal.id,
        principal.role,
        principal.scope.as_deref().unwrap_or("none"),
        match principal.valid_until {
            Some(day) => format!(" valid until {day}"),
            None => String::new(),
        }
    );
    let mut audit = vec![audit_draft(
        &state,
        caller.actor(),
        "administration",
        "put_principal",
        subject_of(&principal),
        detail,
    )];
    // A principal replaced takes its old token with it: when that token
    // opened another subject's file, that subject sees it revoked, as it
    // would see a revocation.
    let replaced = state.store().principal(&principal.id).await?;
    if let Some(old) = replaced.as_ref().and_then(subject_of) {
        if subject_of(&principal) != Some(old) {
            audit.push(audit_draft(
                &state,
                caller.actor(),
                "administration",
                "revoke",
                Some(old),
                // Not which subject: this entry is in the old subject's
                // log, and another person's number is none of its business.
                format!(
                    "revoked principal {}: replaced by one for {}",
                    principal.id,
                    match principal.role {
                        Role::Subject => "another subject".to_string(),
                        role => format!("the role {role}"),
                    }
                ),
            ));
        }
    }
    state
        .store()
        .put_principal(&principal, &hash_token(&token), audit)
        .await?;
    state.inner.principals.clear();
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            principal,
            token,
            warnings,
        }),
    ))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    id: Segment,
) -> Result<Json<serde_json::Value>, ApiError> {
    let admin = caller.require(&[Role::Admin])?;
    let id = id.text()?;
    let unknown =
        || ApiError::not_found("unknown_principal", format!("there is no principal `{id}`"));
    // An id no principal could have names none; it goes no further.
    if check_id("principal id", id).is_err() {
        return Err(unknown());
    }
    if admin.id == id {
        return Err(ApiError::conflict(
            "cannot_revoke_self",
            "an operator cannot revoke its own token; another admin must",
        ));
    }
    // A subject's token no longer opens its file: logged where it sees it.
    let revoked = state.store().principal(id).await?;
    let audit = vec![audit_draft(
        &state,
        caller.actor(),
        "administration",
        "revoke",
        revoked.as_ref().and_then(subject_of),
        format!("revoked principal {id}"),
    )];
    match state.store().revoke(id, audit).await {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => return Err(unknown()),
        Err(other) => return Err(other.into()),
    }
    state.inner.principals.clear();
    Ok(Json(json!({ "revoked": id })))
}

/// What the operator watches: the registry's size, its review queue, the
/// audit log's head and what this process has answered since it started.
#[derive(Serialize)]
pub struct Dashboard {
    as_of: socred_core::Day,
    rulebook: String,
    /// Totals kept by every write (no table scans): subjects, records and
    /// facts in effect, items waiting for review, audit entries,
    /// principals, rulebook versions.
    store: socred_store::Counts,
    /// The newest audit entry's number and hash: write it down to check
    /// later that nothing before it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_head: Option<AuditHead>,
    /// Counters since this process started.
    since_start: crate::metrics::Summary,
}

#[derive(Serialize)]
struct AuditHead {
    seq: u64,
    hash: String,
}

pub async fn dashboard(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Dashboard>, ApiError> {
    caller.require(&[Role::Admin])?;
    let store = state.store().counts().await?;
    let audit_head = state
        .store()
        .audit_head()
        .await?
        .map(|(seq, hash)| AuditHead { seq, hash });
    Ok(Json(Dashboard {
        as_of: state.today(),
        rulebook: state.current().label.clone(),
        store,
        audit_head,
        since_start: state.inner.metrics.summary(),
    }))
}

#[derive(Serialize)]
pub struct RulebookVersions {
    current: String,
    versions: Vec<RulebookVersion>,
}

pub async fn rulebooks(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<RulebookVersions>, ApiError> {
    caller.require(&[Role::Admin])?;
    let versions = state.store().rulebooks().await?;
    Ok(Json(RulebookVersions {
        current: state.current().label.clone(),
        versions,
    }))
}

#[derive(Serialize)]
pub struct Uploaded {
    label: String,
    /// Subjects whose files were recomputed with it.
    recomputed: u64,
}

/// Validates and installs a rulebook: the previous versions stay stored,
/// every file is recomputed, and the new rulebook takes over at once.
pub async fn put_rulebook(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Uploaded>, ApiError> {
    let admin = caller.require(&[Role::Admin])?;
    let (rulebook, text) = uploaded_rulebook(&headers, &body)?;
    let label = rulebook.label();
    let current = Arc::new(Current::new(rulebook, text.into()));
    let engine = current.engine.clone();
    let audit = vec![audit_draft(
        &state,
        caller.actor(),
        "administration",
        "put_rulebook",
        None,
        format!("installed rulebook {label}"),
    )];
    // Alone while what the registry holds is checked against it, it is
    // stored and it is put in force here: no batch is folded meanwhile.
    let gate = state.inner.write_gate.write().await;
    held::refuse_dropping_held_types(&state, &current).await?;
    held::refuse_invalidating_held_records(&state, &state.current(), &current).await?;
    state
        .store()
        .put_rulebook(&label, text, &admin.id, audit)
        .await
        .map_err(|error| match error {
            StoreError::Conflict(reason) => ApiError::conflict("rulebook_conflict", reason),
            other => other.into(),
        })?;
    // In force here at once, as it is in the store: this server's writes
    // fold with it from now on and go on while the files are recomputed;
    // each file is read with the rulebook that folded it (the one before is
    // kept) until the recomputation reaches it. Should the recomputation
    // stop half-way, a start, or another server, finishes it.
    state.swap_current(current);
    drop(gate);
    let recomputed = state.store().recompute_all(&engine).await;
    // Unless another server's upload came after it and is in force now,
    // which the route's layer takes instead.
    if let Err(StoreError::RulebookChanged(why)) = &recomputed {
        let audit = vec![audit_draft(
            &state,
            caller.actor(),
            "administration",
            "put_rulebook_superseded",
            None,
            format!(
                "rulebook {label} was stored, but another upload was installed after it before \
                 its files were recomputed ({why}); it is not in force"
            ),
        )];
        state.inner.audit.append(audit).await?;
        return Err(ApiError::conflict(
            crate::error::RULEBOOK_SUPERSEDED,
            format!(
                "rulebook {label} was stored as a version (GET /v1/admin/rulebooks lists it), \
                 but another upload (at this server or another) was installed after it before \
                 its files were recomputed ({why}): that one is in force, not {label}. Upload {label} \
                 again to put it in force over the other"
            ),
        ));
    }
    let recomputed = recomputed?;
    Ok(Json(Uploaded { label, recomputed }))
}

/// A rulebook sent as the body of a request: TOML, UTF-8, and valid, or
/// every problem with its line and column (`invalid_rulebook`).
fn uploaded_rulebook<'b>(
    headers: &HeaderMap,
    body: &'b [u8],
) -> Result<(socred_core::Rulebook, &'b str), ApiError> {
    match media_type(headers).as_deref() {
        Some("application/toml" | "text/plain" | "text/x-toml") => {}
        other => return Err(unsupported(other, "application/toml (the rulebook file)")),
    }
    let rulebook = socred_schema::load_rulebook_bytes("rulebook", body).map_err(|errors| {
        let problems: Vec<_> = errors
            .problems
            .iter()
            .map(|p| json!({ "line": p.line, "column": p.column, "message": p.message }))
            .collect();
        ApiError::bad_request(
            "invalid_rulebook",
            format!("the rulebook does not load: {} problems", problems.len()),
        )
        .with_detail("problems", serde_json::Value::Array(problems))
    })?;
    // It loaded, so it is UTF-8.
    let text = std::str::from_utf8(body).unwrap_or_default();
    Ok((rulebook, text))
}

/// The fewest subjects a group of an impact report over HTTP may count,
/// and the default.
const GROUP_MIN: u64 = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpactQuery {
    /// The fewest subjects a group of the report may count (10 when absent).
    group_min: Option<u64>,
}

/// What a rulebook would do if it were installed.
#[derive(Serialize)]
pub struct Impact {
    #[serde(flatten)]
    comparison: socred_core::whatif::Comparison,
    /// Records in effect that the draft's catalog refuses (a type it lacks,
    /// or fields its schema does not take): they count under the rulebook
    /// in force only.
    refused: u64,
}

/// Subjects whose records are read from the store at a time.
const IMPACT_PAGE: usize = 1000;

/// What a draft rulebook would make of the registry's history today,
/// against the rulebook in force: the what-if report of
/// `socred_core::whatif`, counts only, with small groups pooled. Nothing
/// is installed or changed; one audit entry (`rulebook_impact`) says who
/// asked and what it found.
///
/// Groups count [`GROUP_MIN`] subjects at least.
pub async fn rulebook_impact(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: crate::body::Params<ImpactQuery>,
    RawBody(body): RawBody,
) -> Result<Json<Impact>, ApiError> {
    caller.require(&[Role::Admin])?;
    // The operator reads counts, never a file: a group small enough to
    // be one person would be that person's file, a draft at a time.
    let group_min = match query.get()?.group_min {
        None => GROUP_MIN,
        Some(n) if n < GROUP_MIN => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "group_min: at least {GROUP_MIN} (the fewest subjects a group of the report \
                     may count; smaller groups would single people out)"
                ),
            ))
        }
        Some(n) => n,
    };
    let (draft, _) = uploaded_rulebook(&headers, &body)?;
    let current = state.current();
    let day = state.today();
    let draft = Arc::new(socred_core::Engine::new(Arc::new(draft)));
    // The registry's history is read twice, a page of subjects at a time,
    // so that the report needs memory for a page and not for the history
    // (see `PagedComparison`): first for the entries that reach related
    // subjects, then to count. A write may land between two pages: the
    // report reads the history as it stood while it was read.
    let paged = socred_core::whatif::PagedComparison::new(
        current.engine.clone(),
        draft.clone(),
        day,
        group_min,
    );
    let (paged, _) = read_registry(&state, &current, &draft, paged, Reading::Gather).await?;
    let (paged, refused) = read_registry(&state, &current, &draft, paged, Reading::Count).await?;
    let comparison = paged.finish();
    let audit = vec![audit_draft(
        &state,
        caller.actor(),
        "administration",
        "rulebook_impact",
        None,
        format!(
            "impact of rulebook {} against {}: {} subjects, {} changed",
            comparison.other.rulebook,
            comparison.base.rulebook,
            comparison.subjects,
            comparison.changes.changed
        ),
    )];
    state.inner.audit.append(audit).await?;
    Ok(Json(Impact {
        comparison,
        refused,
    }))
}

/// A reading of the registry for a draft's impact.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// The first: the entries that reach related subjects.
    Gather,
    /// The second: every subject, counted.
    Count,
}

/// One reading of the registry into `paged`, a page of subjects at a
/// time, each page folded on a blocking thread; with the records in effect
/// that the draft refuses (counted when counting).
async fn read_registry(
    state: &AppState,
    current: &Current,
    draft: &Arc<socred_core::Engine>,
    mut paged: socred_core::whatif::PagedComparison,
    reading: Reading,
) -> Result<(socred_core::whatif::PagedComparison, u64), ApiError> {
    let mut refused = 0u64;
    let mut after = None;
    loop {
        let subjects = state.store().subjects(after, IMPACT_PAGE).await?;
        // The first reading needs only those who may pass entries on
        // (organisations, with the default rulebook).
        let read: Vec<socred_core::SubjectId> = subjects
            .iter()
            .copied()
            .filter(|subject| reading == Reading::Count || paged.gathers(subject.kind()))
            .collect();
        let (mut records, mut facts) = (Vec::new(), Vec::new());
        for (mut r, mut f) in state
            .store()
            .records_of(&current.engine.rulebook, &read)
            .await?
        {
            records.append(&mut r);
            facts.append(&mut f);
        }
        let last = if subjects.len() < IMPACT_PAGE {
            None
        } else {
            subjects.last().copied()
        };
        let draft = draft.clone();
        let (page_refused, back) = tokio::task::spawn_blocking(move || {
            let (draft_records, refused) = as_draft_reads(&draft, &records, &facts);
            let (base, other) = ((&records[..], &facts[..]), (&draft_records[..], &facts[..]));
            match reading {
                Reading::Gather => paged.gather(base, other),
                Reading::Count => paged.count(base, other, last),
            }
            (refused, paged)
        })
        .await
        .map_err(|error| ApiError::internal("the rulebook impact", &error))?;
        paged = back;
        refused += page_refused;
        match last {
            Some(last) => after = Some(last),
            None => return Ok((paged, refused)),
        }
    }
}

/// `records` as the draft reads them: its catalog checks each again (each
/// written back to the wire format and parsed under the draft), and
/// numbers the record types its own way. Also the count of those it
/// refuses (a type it lacks, or fields its schema does not take). Records
/// that `facts` retract are left out, and not counted.
fn as_draft_reads(
    draft: &socred_core::Engine,
    records: &[socred_core::Record],
    facts: &[socred_core::Fact],
) -> (Vec<socred_core::Record>, u64) {
    // A retracted record is in no file under either rulebook: it is not
    // read again, nor counted as refused.
    let retracted: std::collections::HashSet<&socred_core::RecordKey> = facts
        .iter()
        .filter_map(socred_core::Fact::retracts)
        .collect();
    let mut refused = 0u64;
    let read = records
        .iter()
        .filter(|record| !retracted.contains(&record.key))
        .filter_map(|record| {
            let line =
                socred_schema::wire::to_line(&socred_schema::wire::Item::Record(record.clone()));
            match socred_schema::wire::parse_line(&draft.rulebook, 1, &line) {
                Ok((socred_schema::wire::Item::Record(record), _)) => Some(record),
                _ => {
                    refused += 1;
                    None
                }
            }
        })
        .collect();
    (read, refused)
}

/// Erases now what the end of retention allows on the registry's day (the
/// server also does it once a day): records past their retention leave a
/// tombstone, the facts about them go, and each subject that lost records
/// gets an audit entry. The figures say what was erased and what was held
/// back because a record still in the file depends on it.
pub async fn erase(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<crate::erasure::ErasureRun>, ApiError> {
    caller.require(&[Role::Admin])?;
    Ok(Json(
        crate::erasure::erase_due_in_force(&state, caller.actor()).await?,
    ))
}
