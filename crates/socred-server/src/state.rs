//! What every handler shares: the store, the rulebook in force (as an
//! engine that is swapped whole when a new rulebook is uploaded), the
//! clock, the principal cache, the metrics and the audit batcher.

use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use socred_core::expr::Context;
use socred_core::record::Fields;
use socred_core::rulebook::Severity;
use socred_core::{Engine, Record, Rulebook, SubjectId};
use socred_store::{AuditDraft, Store};

use crate::audit_log::AuditLog;
use crate::auth::PrincipalCache;
use crate::clock::Clock;
use crate::cursor::CursorSeal;
use crate::metrics::Metrics;

/// Limits on what one request may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest body of `POST /v1/records`, in bytes.
    pub ingest_body_bytes_max: usize,
    /// Largest body of every other request, in bytes (a rulebook upload
    /// included).
    pub body_bytes_max: usize,
    /// Most (subject, measure) queries in one decision request.
    pub queries_max: usize,
    /// How long before a drawing of a scheduled list's edition began the
    /// next drawing of the same publication day reads the changes from
    /// (`Store::subjects_changed`): a write stamped earlier but committed
    /// after the drawing read its subjects (a write open that long, or a
    /// server whose clock is that far behind) would otherwise go unseen.
    pub redraw_margin_ms: i64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            ingest_body_bytes_max: 64 << 20,
            body_bytes_max: 4 << 20,
            queries_max: 1000,
            redraw_margin_ms: 10 * 60 * 1000,
        }
    }
}

/// The rulebook in force, with what the server derives from it once.
#[derive(Debug)]
pub struct Current {
    pub engine: Arc<Engine>,
    /// `id@version`.
    pub label: String,
    /// The TOML text as uploaded, served by `/v1/rulebook`.
    pub text: Arc<str>,
    /// By record type index: whether a record of the type waits for a
    /// second person (a serious type that puts a subject on a list whose
    /// entries need review).
    review_by_type: Vec<bool>,
}

impl Current {
    pub fn new(rulebook: Rulebook, text: Arc<str>) -> Current {
        let review_by_type = review_by_type(&rulebook);
        let label = rulebook.label();
        Current {
            engine: Arc::new(Engine::new(Arc::new(rulebook))),
            label,
            text,
            review_by_type,
        }
    }

    pub fn rulebook(&self) -> &Rulebook {
        &self.engine.rulebook
    }

    /// Whether a record of the type at `type_index` may need review: some
    /// of them do (see [`Current::needs_review`]).
    pub fn may_need_review(&self, type_index: u32) -> bool {
        self.review_by_type
            .get(type_index as usize)
            .copied()
            .unwrap_or(false)
    }

    /// Whether `record` waits for a second person: a record of a serious
    /// type that meets its type's entry on a list with `review = true`
    /// (the entry's condition holds for it, its subject is of a kind the
    /// list takes). A condition that reads the subject's profession, which
    /// the record alone does not tell, is taken to hold.
    pub fn needs_review(&self, record: &Record) -> bool {
        self.meets_reviewed_entry(record, &record.fields)
    }

    /// [`Current::needs_review`] of `record` with `fields` in place of its
    /// own (a correction's).
    pub fn meets_reviewed_entry(&self, record: &Record, fields: &Fields) -> bool {
        if !self.may_need_review(record.type_index) {
            return false;
        }
        let kind = record.subject.kind();
        let context = Context {
            fields: Some(fields),
            record_type: &record.type_id,
            provider: &record.key.provider,
            subject_kind: kind,
            profession: "",
            score: None,
            grade: "",
            lists: &[],
        };
        self.rulebook()
            .lists
            .iter()
            .filter(|list| list.review_required && list.subject_kinds.contains(kind))
            .flat_map(|list| &list.record_entries)
            .filter(|entry| entry.record_type == record.type_index)
            .any(|entry| {
                entry.condition.as_ref().is_none_or(|condition| {
                    condition.reads_profession() || condition.test(&context)
                })
            })
    }
}

fn review_by_type(rulebook: &Rulebook) -> Vec<bool> {
    let mut review = vec![false; rulebook.catalog.len()];
    for list in rulebook.lists.iter().filter(|list| list.review_required) {
        for entry in &list.record_entries {
            let index = entry.record_type as usize;
            let serious = rulebook
                .catalog
                .get(index)
                .is_some_and(|t| t.severity == Severity::Serious);
            if let (true, Some(slot)) = (serious, review.get_mut(index)) {
                *slot = true;
            }
        }
    }
    review
}

/// Locks by subject, striped: subjects that share a stripe wait for each
/// other, which for a person's own changes (a few a year) costs nothing.
pub(crate) struct SubjectLocks([tokio::sync::Mutex<()>; SubjectLocks::STRIPES]);

impl SubjectLocks {
    const STRIPES: usize = 64;

    pub async fn lock(&self, subject: SubjectId) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(subject);
        self.0[(hash % Self::STRIPES as u64) as usize].lock().await
    }
}

impl Default for SubjectLocks {
    fn default() -> SubjectLocks {
        SubjectLocks(std::array::from_fn(|_| tokio::sync::Mutex::new(())))
    }
}

/// The server's shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Shared>,
}

pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    current: RwLock<Arc<Current>>,
    /// Rulebooks before the one in force that stored states may still be
    /// folded with while an upload's recomputation is under way. The most
    /// recent few, newest last.
    others: RwLock<Vec<Arc<Current>>>,
    /// Writes that fold (ingest, review) hold it shared; a rulebook upload
    /// holds it alone while it recomputes every file and swaps the engine,
    /// so that no state is ever written with a rulebook that is not current.
    pub write_gate: tokio::sync::RwLock<()>,
    /// A subject's own changes to its file (consent, objections, repair
    /// applications) check what the file holds and then write: one at a
    /// time per subject, so that two at once both see what the other did.
    pub own_file: SubjectLocks,
    pub clock: Arc<dyn Clock>,
    pub principals: PrincipalCache,
    pub metrics: Metrics,
    pub audit: AuditLog,
    pub limits: Limits,
    /// Seals the public lists' page cursors (`cursor.rs`).
    pub cursors: CursorSeal,
    /// This process among the servers of its store: the holder of the
    /// leases it takes (`Store::lease`).
    pub instance: String,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("rulebook", &self.current().label)
            .finish_non_exhaustive()
    }
}

/// Finishes the recomputation of every file that the last rulebook upload
/// left undone (the server stopped during it, or the store is a copy made
/// then), before anything is served: until then some files are folded
/// with the rulebook before, which no longer is in force.
async fn finish_recompute(store: &dyn Store, current: &Current) -> anyhow::Result<()> {
    let Some(unfinished) = store
        .unfinished_recompute()
        .await
        .context("cannot read whether a recomputation is unfinished")?
    else {
        return Ok(());
    };
    let refolded = store
        .recompute_all(&current.engine)
        .await
        .context("cannot finish recomputing the files with the rulebook in force")?;
    // None on a first start: the default rulebook was installed on an
    // empty store.
    if refolded > 0 {
        let from = match unfinished.after.as_str() {
            "" => "the first subject".to_string(),
            after => format!("the subject after {after}"),
        };
        tracing::warn!(
            rulebook = %unfinished.rulebook,
            refolded,
            "the last rulebook upload had stopped before every file was recomputed with it; \
             recomputed them now, from {from}"
        );
    }
    Ok(())
}

impl AppState {
    /// The state over `store`, with the store's current rulebook in force.
    /// A store without one gets the default rulebook first (a first start).
    pub async fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> anyhow::Result<AppState> {
        let (label, text) = match store
            .current_rulebook()
            .await
            .context("cannot read the current rulebook")?
        {
            Some(current) => current,
            None => {
                let rulebook = socred_schema::default_rulebook();
                let label = rulebook.label();
                let audit = vec![AuditDraft {
                    at_ms: clock.now_ms(),
                    actor: "socred".into(),
                    role: "system".into(),
                    purpose: "first_start".into(),
                    action: "put_rulebook".into(),
                    subject: None,
                    detail: format!("installed the default rulebook {label}"),
                }];
                store
                    .put_rulebook(
                        &label,
                        socred_schema::DEFAULT_RULEBOOK_TOML,
                        "socred",
                        audit,
                    )
                    .await
                    .context("cannot store the default rulebook")?;
                (label, socred_schema::DEFAULT_RULEBOOK_TOML.to_string())
            }
        };
        let rulebook = socred_schema::load_rulebook(&label, &text).map_err(|errors| {
            anyhow::anyhow!("the stored rulebook {label} does not load:\n{errors}")
        })?;
        let current = Arc::new(Current::new(rulebook, text.into()));
        finish_recompute(store.as_ref(), &current).await?;
        let cursors = CursorSeal::kept_by(store.as_ref()).await?;
        let audit = AuditLog::new(store.clone());
        let instance = instance_id().context("cannot draw this server's instance id")?;
        Ok(AppState {
            inner: Arc::new(Shared {
                store,
                current: RwLock::new(current),
                others: RwLock::new(Vec::new()),
                write_gate: tokio::sync::RwLock::new(()),
                own_file: SubjectLocks::default(),
                clock,
                principals: PrincipalCache::default(),
                metrics: Metrics::default(),
                audit,
                limits,
                cursors,
                instance,
            }),
        })
    }

    /// This process among the servers of its store (random, drawn at
    /// start): the holder of the leases it takes.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Finishes the recomputation of every file that another server's
    /// rulebook upload left when it has made no progress for `stalled`:
    /// that server stopped (or was killed) during it, and would finish it
    /// only at its next start. `seen` is what the last look found, and
    /// since when; a look that finds the same again `stalled` later takes
    /// the recomputation over. Returns how many files it recomputed. A
    /// server that took over beside a live one only refolds files again:
    /// both fold with the rulebook in force.
    pub async fn finish_stalled_recompute(
        &self,
        seen: &mut Option<(socred_store::UnfinishedRecompute, std::time::Instant)>,
        stalled: std::time::Duration,
    ) -> anyhow::Result<u64> {
        let found = self
            .store()
            .unfinished_recompute()
            .await
            .context("cannot read whether a recomputation is unfinished")?;
        let Some(found) = found else {
            *seen = None;
            return Ok(0);
        };
        // Until this server has taken the rulebook, it cannot fold with it.
        if found.rulebook != self.current().label {
            *seen = None;
            return Ok(0);
        }
        let since = match seen.take() {
            Some((before, since)) if before == found => since,
            _ => std::time::Instant::now(),
        };
        if since.elapsed() < stalled {
            *seen = Some((found, since));
            return Ok(0);
        }
        // Not during this server's own upload (which holds the gate alone),
        // and only if nothing moved while it waited for that to end.
        // Shared, unlike an upload: this server's writes fold with the
        // rulebook in force, the one the recomputation folds with, so they
        // go on meanwhile rather than wait for every file.
        let _gate = self.inner.write_gate.read().await;
        let now = self
            .store()
            .unfinished_recompute()
            .await
            .context("cannot read whether a recomputation is unfinished")?;
        if now.as_ref() != Some(&found) {
            return Ok(0);
        }
        let engine = self.current().engine.clone();
        let refolded = self
            .store()
            .recompute_all(&engine)
            .await
            .context("cannot finish the recomputation another server left")?;
        tracing::warn!(
            rulebook = %found.rulebook,
            after = %found.after,
            refolded,
            "the recomputation of every file after a rulebook upload had made no progress; \
             this server finished it"
        );
        Ok(refolded)
    }

    /// Takes the rulebook that the store names as in force when it is not
    /// the one this server holds: another server of the same database
    /// installed it. Returns its label when one was taken.
    pub async fn follow_rulebook(&self) -> anyhow::Result<Option<String>> {
        let Some(label) = self.label_in_force().await? else {
            return Ok(None);
        };
        if label == self.current().label {
            return Ok(None);
        }
        // Not while this server's own upload recomputes the files (it takes
        // the new rulebook itself after), nor under a write in flight.
        let _gate = self.inner.write_gate.write().await;
        let Some((label, text)) = self.store().current_rulebook().await? else {
            return Ok(None);
        };
        if label == self.current().label {
            return Ok(None);
        }
        let rulebook = socred_schema::load_rulebook(&label, &text).map_err(|errors| {
            anyhow::anyhow!("the rulebook in force, {label}, does not load:\n{errors}")
        })?;
        self.swap_current(Current::new(rulebook, text.into()));
        // Logged here, whoever asked: the periodic look, a write the store
        // refused, or a reader that met a file folded with it.
        tracing::info!(%label, "took the rulebook another server installed");
        Ok(Some(label))
    }

    /// The label of the rulebook that the store names as in force (the last
    /// installed), which another server may have installed; None before
    /// the first.
    pub(crate) async fn label_in_force(&self) -> Result<Option<String>, socred_store::StoreError> {
        let versions = self.store().rulebooks().await?;
        Ok(versions.into_iter().last().map(|version| version.label))
    }

    /// The rulebook in force now. Hold on to the `Arc` for the whole
    /// request: a concurrent upload swaps in a new one without disturbing it.
    pub fn current(&self) -> Arc<Current> {
        match self.inner.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn swap_current(&self, current: impl Into<Arc<Current>>) {
        let current = current.into();
        let before = match self.inner.current.write() {
            Ok(mut guard) => std::mem::replace(&mut *guard, current),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), current),
        };
        // Files not yet refolded are still folded with it.
        self.remember(before);
    }

    /// Keeps `rulebook`, the one before the one in force, to read the files
    /// still folded with it.
    pub(crate) fn remember(&self, rulebook: Arc<Current>) {
        /// Uploads in a row whose files may still be mixed.
        const KEPT: usize = 4;
        let mut others = match self.inner.others.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        others.retain(|kept| kept.label != rulebook.label);
        others.push(rulebook);
        let extra = others.len().saturating_sub(KEPT);
        others.drain(..extra);
    }

    /// The rulebook, among those this server holds, that folded `file`:
    /// the one in force, or one before it while an upload's recomputation
    /// has not reached the file. A file
    /// stored before files named their rulebook is read with the one in
    /// force. None when this server holds none of that label.
    pub(crate) fn folded_with(&self, file: &socred_core::SubjectState) -> Option<Arc<Current>> {
        self.folded_with_in(&self.current(), file)
    }

    /// [`Self::folded_with`] for a reader that holds `current`, the
    /// rulebook in force as it read it (a decision's hot path reads it
    /// once for all its files).
    pub(crate) fn folded_with_in(
        &self,
        current: &Arc<Current>,
        file: &socred_core::SubjectState,
    ) -> Option<Arc<Current>> {
        let Some(label) = file.rulebook.as_deref() else {
            return Some(current.clone());
        };
        if label == current.label {
            return Some(current.clone());
        }
        let others = match self.inner.others.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        others.iter().find(|kept| kept.label == label).cloned()
    }

    /// [`Self::folded_with`], taking the rulebook in force first when the
    /// file names one this server does not hold (another server installed
    /// it since this one last looked). What a reader answers is then read
    /// with the rulebook that folded the file, and names it: never one
    /// rulebook's answer under another's name.
    pub(crate) async fn current_for(
        &self,
        file: &socred_core::SubjectState,
    ) -> Result<Arc<Current>, crate::error::ApiError> {
        if let Some(found) = self.folded_with(file) {
            return Ok(found);
        }
        self.follow_rulebook()
            .await
            .map_err(|error| crate::error::ApiError::internal("following the rulebook", &error))?;
        self.folded_with(file).ok_or_else(|| {
            crate::error::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "rulebook_changing",
                format!(
                    "the file of {} was folded with rulebook {}, which this server does not \
                     hold: the files are being recomputed after a rulebook upload; ask again in a \
                     moment",
                    file.subject,
                    file.rulebook.as_deref().unwrap_or("?")
                ),
            )
        })
    }

    pub(crate) fn cursors(&self) -> &CursorSeal {
        &self.inner.cursors
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    pub fn today(&self) -> socred_core::Day {
        self.inner.clock.today()
    }

    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The metrics in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        self.inner.metrics.render()
    }

    /// How many request handlers have panicked (always 0 unless there is a bug).
    pub fn panics(&self) -> u64 {
        crate::metrics::panics()
    }
}

/// A random id for this process, 16 hexadecimal digits.
fn instance_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}
