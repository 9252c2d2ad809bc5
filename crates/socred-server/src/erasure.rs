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

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use socred_core::{Day, SubjectId};
use socred_store::{AuditDraft, Erasure, StoreError};

use crate::state::AppState;

/// Subjects listed per page while looking for records past retention.
const PAGE: usize = 1000;
/// Subjects erased in one store transaction.
const BATCH: usize = 200;
/// The first daily run starts this long after the server, then one a day.
const FIRST_RUN_AFTER: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// What one run did, as of the registry's day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ErasureRun {
    pub as_of: Day,
    #[serde(flatten)]
    pub erasure: Erasure,
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
    Ok(ErasureRun {
        as_of: today,
        erasure: total,
    })
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

/// Runs [`erase_due`] a minute after the start and then once a day, for
/// as long as the server runs; each run's figures go to the log.
pub async fn daily(state: AppState) {
    tokio::time::sleep(FIRST_RUN_AFTER).await;
    loop {
        match erase_due(&state, ("socred", "system")).await {
            Ok(run) => tracing::info!(
                as_of = %run.as_of,
                subjects = run.erasure.subjects,
                records = run.erasure.records,
                facts = run.erasure.facts,
                rejected = run.erasure.rejected,
                pending = run.erasure.pending,
                held_back = run.erasure.held_back,
                "erased records past their retention"
            ),
            Err(error) => {
                tracing::error!(%error, "erasure at the end of retention failed; next try in a day")
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}
