//! Erasure at the end of retention: the operator runs it at will
//! (`POST /v1/admin/erasure`) and the server runs it once a day.
//!
//! A run pages through the subjects whose state holds a record whose
//! retention has ended on or before the registry's day (the store keeps
//! that day beside each state, by day: a run reads only the subjects it
//! has work for), and asks the store to erase them, a batch of subjects to
//! a transaction, so that ingestion goes on between batches; then does the
//! same for the subjects with records no file shows (waiting for
//! review, rejected in it, or retracted). What the
//! store erases, and what it holds back, is `socred_core::erase`'s
//! decision. Each subject that lost records gets an audit entry, which its
//! access log shows.
//!
//! A run then removes the audit entries older than the rulebook's
//! `audit_retention` (none when it sets none): the oldest first, a batch
//! to a transaction, after an entry that records the removal, names the
//! last entry removed and its hash, and so vouches for the log's new
//! start (`socred verify` takes it on no other word).

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use socred_core::{Day, SubjectId};
use socred_store::{prune_detail, AuditDraft, Erasure, StoreError, PRUNE_ACTION};

use crate::state::AppState;

/// Subjects listed per page while looking for records past retention.
const PAGE: usize = 1000;
/// Subjects erased in one store transaction.
const BATCH: usize = 200;
/// Audit entries removed in one store transaction: short enough that the
/// appends of answers waiting behind it wait little.
const AUDIT_BATCH: usize = 10_000;
/// The first daily run starts this long after the server, then one a day.
const FIRST_RUN_AFTER: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// What one run did, as of the registry's day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ErasureRun {
    pub as_of: Day,
    #[serde(flatten)]
    pub erasure: Erasure,
    /// Audit entries removed at the end of the log's retention.
    pub audit_entries_removed: u64,
}

/// Erases what the end of retention allows today, on behalf of `actor` in
/// `role` (the entries of the subjects that lost records name them).
pub async fn erase_due(
    state: &AppState,
    (actor, role): (&str, &str),
) -> Result<ErasureRun, StoreError> {
    let today = state.today();
    // As ingestion does: the rulebook is not swapped during a run.
    let _gate = state.inner.write_gate.read().await;
    let engine = state.current().engine.clone();
    let audit = AuditDraft {
        at_ms: state.now_ms(),
        actor: actor.to_string(),
        role: role.to_string(),
        purpose: "retention".into(),
        action: "erase".into(),
        subject: None,
        detail: String::new(),
    };
    let store = state.store();
    let mut total = Erasure::default();
    // Each subject is looked at once in a run, so that it is counted once.
    let mut examined: BTreeSet<SubjectId> = BTreeSet::new();
    let mut after: Option<(Day, SubjectId)> = None;
    loop {
        let page = store.subjects_past_retention(today, after, PAGE).await?;
        let Some(&last) = page.last() else { break };
        after = Some(last);
        // A subject erased on an earlier page whose file still holds a
        // record past retention (held back) comes again, later in the
        // order: it was examined already.
        let due: Vec<SubjectId> = page
            .into_iter()
            .map(|(_, subject)| subject)
            .filter(|subject| examined.insert(*subject))
            .collect();
        for batch in due.chunks(BATCH) {
            let done = store
                .erase(&engine, batch.to_vec(), today, audit.clone())
                .await?;
            add(&mut total, done);
        }
    }
    // Records no file shows (waiting for review, rejected in it, or
    // retracted) are in no state: their subjects come from the store's
    // list of them, of those decided early enough that some type's
    // retention has ended (none when the catalog is empty).
    if let Some(decided_by) = engine.rulebook.retention_cutoff(today) {
        let mut after: Option<SubjectId> = None;
        loop {
            let page = store
                .subjects_not_in_effect(after, decided_by, BATCH)
                .await?;
            let Some(&last) = page.last() else { break };
            after = Some(last);
            let fresh: Vec<SubjectId> =
                page.into_iter().filter(|s| !examined.contains(s)).collect();
            if !fresh.is_empty() {
                let done = store.erase(&engine, fresh, today, audit.clone()).await?;
                add(&mut total, done);
            }
        }
    }
    state.inner.metrics.erasure(&total);
    let audit_entries_removed = prune_audit(state, &engine, (actor, role), today).await?;
    Ok(ErasureRun {
        as_of: today,
        erasure: total,
        audit_entries_removed,
    })
}

/// Removes the audit entries appended before the first day that the
/// rulebook's `audit_retention` keeps as of `today`; returns how many.
async fn prune_audit(
    state: &AppState,
    engine: &socred_core::Engine,
    (actor, role): (&str, &str),
    today: Day,
) -> Result<u64, StoreError> {
    let Some(retention) = engine.rulebook.audit_retention else {
        return Ok(0);
    };
    let kept_from = retention.before(today);
    let store = state.store();
    let before_ms = crate::clock::china_day_start_ms(kept_from);
    let Some(through) = store.audit_before(before_ms).await? else {
        return Ok(0);
    };
    let last = store.audit(through.saturating_sub(1), 1).await?;
    let Some(last) = last.first().filter(|entry| entry.seq == through) else {
        return Err(StoreError::Corrupt(format!(
            "audit entry {through} is not in the log it was found in"
        )));
    };
    let entry = AuditDraft {
        at_ms: state.now_ms(),
        actor: actor.to_string(),
        role: role.to_string(),
        purpose: "retention".into(),
        action: PRUNE_ACTION.into(),
        subject: None,
        detail: prune_detail(through, &last.hash, &kept_from.to_string()),
    };
    store.append_audit(vec![entry]).await?;
    let mut removed = 0;
    loop {
        let batch = store.prune_audit(through, AUDIT_BATCH).await?;
        if batch == 0 {
            return Ok(removed);
        }
        removed += batch;
    }
}

fn add(total: &mut Erasure, done: Erasure) {
    total.subjects_examined += done.subjects_examined;
    total.subjects += done.subjects;
    total.records += done.records;
    total.facts += done.facts;
    total.rejected += done.rejected;
    total.pending += done.pending;
    total.held_back += done.held_back;
}

/// [`erase_due`]; and when another server of the store installed a
/// rulebook that this one has not taken yet (the store refuses a run under
/// the rulebook before), takes it and runs again, rather than failing the
/// operator's call or waiting a day.
pub async fn erase_due_in_force(
    state: &AppState,
    actor: (&str, &str),
) -> Result<ErasureRun, StoreError> {
    match erase_due(state, actor).await {
        Err(StoreError::RulebookChanged(reason)) => {
            if let Err(error) = state.follow_rulebook().await {
                tracing::error!(%error, "cannot follow the rulebook in force");
                return Err(StoreError::RulebookChanged(reason));
            }
            erase_due(state, actor).await
        }
        other => other,
    }
}

/// Runs [`erase_due_in_force`] a minute after the start and then once a day, for
/// as long as the server runs; each run's figures go to the log.
pub async fn daily(state: AppState) {
    tokio::time::sleep(FIRST_RUN_AFTER).await;
    loop {
        match erase_due_in_force(&state, ("socred", "system")).await {
            Ok(run) => tracing::info!(
                as_of = %run.as_of,
                subjects = run.erasure.subjects,
                records = run.erasure.records,
                facts = run.erasure.facts,
                rejected = run.erasure.rejected,
                pending = run.erasure.pending,
                held_back = run.erasure.held_back,
                audit_entries = run.audit_entries_removed,
                "erased records and audit entries past their retention"
            ),
            Err(error) => {
                tracing::error!(%error, "erasure at the end of retention failed; next try in a day")
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}
