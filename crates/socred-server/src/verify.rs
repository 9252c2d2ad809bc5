//! `socred verify`: checks a registry's data behind the server's back. The
//! audit log's hash chain must hold from its first entry (or the anchor
//! its retention left) to the stored head, and every subject's stored
//! state must equal a fresh fold of its records with the current rulebook.
//! Every difference is reported.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use socred_core::Engine;

use crate::serve::StoreLocation;
use socred_store::{
    pruned_through, verify_states, ChainBreak, ChainVerifier, StateMismatch, Store, StoreError,
    UnfinishedRecompute, PRUNE_ACTION,
};

/// Audit entries read per page.
const PAGE: usize = 5000;
/// Times the check reads the head again when the log grew past it while
/// it read (a server still answering).
const HEAD_ROUNDS: usize = 3;

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub rulebook: String,
    /// Audit entries whose chain verified.
    pub audit_entries: u64,
    /// The first break of the chain, if any.
    pub chain_break: Option<ChainBreak>,
    /// Subjects checked.
    pub subjects: u64,
    pub mismatches: Vec<StateMismatch>,
    /// The recomputation of every file that the last rulebook upload left
    /// undone (the server stopped during it, or the store was copied
    /// then): the files after it differ from a fresh fold until a start
    /// of the server finishes it.
    pub unfinished: Option<UnfinishedRecompute>,
    /// Where the index of the log by subject, from which each subject's
    /// access log is read, disagrees with the log.
    pub audit_by_subject: Vec<String>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.chain_break.is_none()
            && self.mismatches.is_empty()
            && self.unfinished.is_none()
            && self.audit_by_subject.is_empty()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.chain_break {
            None => writeln!(
                f,
                "audit log: {} entries, hash chain intact",
                self.audit_entries
            )?,
            Some(broken) => writeln!(f, "audit log: {broken}")?,
        }
        for problem in &self.audit_by_subject {
            writeln!(f, "access logs: {problem}")?;
        }
        if let Some(unfinished) = &self.unfinished {
            let done = match unfinished.after.as_str() {
                "" => "no file".to_string(),
                after => format!("the files up to subject {after}"),
            };
            writeln!(
                f,
                "rulebook upload unfinished: {done} recomputed with {}, the rest still \
                 folded with the rulebook before; `socred serve` on this store finishes it \
                 at start, before it serves",
                unfinished.rulebook
            )?;
        }
        writeln!(
            f,
            "subjects: {} checked against a fresh fold with rulebook {}",
            self.subjects, self.rulebook
        )?;
        for mismatch in &self.mismatches {
            writeln!(f, "  subject {}: {}", mismatch.subject, mismatch.reason)?;
        }
        if self.is_ok() {
            write!(f, "ok: the registry is consistent")
        } else {
            write!(
                f,
                "FAILED: {} problem(s)",
                self.mismatches.len()
                    + usize::from(self.chain_break.is_some())
                    + usize::from(self.unfinished.is_some())
                    + self.audit_by_subject.len()
            )
        }
    }
}

/// Walks the audit log from its start (entry 1, or the entry after the
/// anchor that the end of its retention left) and compares its end with
/// the stored head. An anchor must be vouched for by an entry the log
/// holds that records the removal (`PRUNE_ACTION`) up to it or beyond:
/// entries deleted from the start behind the log's back are caught so.
/// Returns the entries checked and the first break.
pub(crate) async fn check_chain(
    store: &dyn Store,
) -> Result<(u64, Result<(), ChainBreak>), StoreError> {
    // The head first, then the log up to it. Entries past it may have been
    // appended, with their head, while the check read (a server still
    // answering): the head is read again and the walk goes on to it, a few
    // times. Entries past a head that did not move are what they would be
    // without a server: entries added behind its back.
    let mut head = store.audit_head().await?;
    let mut end = head.as_ref().map_or(0, |(seq, _)| *seq);
    let mut rounds = 0;
    let anchor = store.audit_anchor().await?;
    let (mut verifier, start) = match &anchor {
        Some((seq, hash)) => (ChainVerifier::resume(*seq, hash), *seq),
        None => (ChainVerifier::new(), 0),
    };
    let mut vouched = anchor.is_none();
    let mut after = start;
    loop {
        if after >= end {
            let grew = !store.audit(end, 1).await?.is_empty();
            let moved = store.audit_head().await?;
            let moved_on = moved.as_ref().map_or(0, |(seq, _)| *seq);
            if !grew || rounds == HEAD_ROUNDS {
                break;
            }
            rounds += 1;
            if moved_on > end {
                (head, end) = (moved, moved_on);
                continue;
            }
            // Entries after a head that stays: read them, and `finish`
            // says the log runs past its head.
            end = u64::MAX;
        }
        let page = store.audit(after, PAGE).await?;
        if page.is_empty() {
            break;
        }
        // Up to the head read: what lies past it is read in a round of its
        // own, or not at all.
        let before = after;
        after = page
            .iter()
            .map(|entry| entry.seq)
            .take_while(|&seq| seq <= end)
            .last()
            .unwrap_or(end);
        if after == before {
            after = end;
        }
        for entry in page.iter().filter(|entry| entry.seq <= end) {
            if let Err(broken) = verifier.push(entry) {
                return Ok((verifier.last_seq() - start, Err(broken)));
            }
            vouched = vouched
                || (entry.entry.action == PRUNE_ACTION
                    && pruned_through(&entry.entry.detail).is_some_and(|through| through >= start));
        }
    }
    let checked = verifier.last_seq() - start;
    if !vouched {
        return Ok((
            checked,
            Err(ChainBreak {
                seq: start + 1,
                reason: format!(
                    "the log starts after entry {start}, but no entry it holds records \
                     removing the entries up to {start} at the end of the log's retention: \
                     entries were deleted from its start"
                ),
            }),
        ));
    }
    Ok((checked, verifier.finish(head.as_ref())))
}

/// Verifies any store: the chain, then every subject's state.
pub async fn verify_store(store: &dyn Store) -> anyhow::Result<VerifyReport> {
    let (label, text) = store
        .current_rulebook()
        .await
        .context("cannot read the current rulebook")?
        .ok_or_else(|| anyhow::anyhow!("the store holds no rulebook: it was never started"))?;
    let rulebook = socred_schema::load_rulebook(&label, &text).map_err(|errors| {
        anyhow::anyhow!("the stored rulebook {label} does not load:\n{errors}")
    })?;
    let engine = Engine::new(Arc::new(rulebook));
    let (audit_entries, chain) = check_chain(store)
        .await
        .context("cannot read the audit log")?;
    let audit_by_subject = store
        .check_audit_by_subject()
        .await
        .context("cannot compare the audit log by subject with the log")?;
    let unfinished = store
        .unfinished_recompute()
        .await
        .context("cannot read whether a recomputation is unfinished")?;
    let mismatches = verify_states(store, &engine)
        .await
        .context("cannot read the stored states")?;
    let subjects = store
        .counts()
        .await
        .context("cannot read the store's counts")?
        .subjects;
    Ok(VerifyReport {
        rulebook: label,
        audit_entries,
        chain_break: chain.err(),
        subjects,
        mismatches,
        unfinished,
        audit_by_subject,
    })
}

/// `socred verify`: opens the registry in `data_dir`, or at the `--store`
/// URL `store` (as `socred serve` takes it), and verifies it.
pub fn verify(data_dir: &Path, store: Option<&str>) -> anyhow::Result<VerifyReport> {
    let location = StoreLocation::new(data_dir, store)?;
    if let StoreLocation::Dir(dir) = location {
        // Never a store made afresh: opening one where there is none
        // would create it.
        crate::serve::require_data_dir(dir)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = match location {
            StoreLocation::Dir(dir) => crate::serve::open_store(dir, Default::default()).await?,
            StoreLocation::Postgres(url) => crate::serve::connect_postgres(url).await?,
            StoreLocation::Memory => {
                anyhow::bail!("a `memory:` store is empty when opened: there is nothing to verify")
            }
        };
        verify_store(store.as_ref()).await
    })
}
