//! Appends the audit entries of reads (file reads, decisions) in groups.
//!
//! A decision is answered only once the entry saying who asked, about whom
//! and why is durable. One store transaction per request would make the
//! commit the bottleneck of the decision path, so requests hand their
//! entries to one worker task that appends whatever has queued up while the
//! previous append ran, in one call (group commit). When the server is idle
//! a request's entries go out at once; under load many requests share a
//! commit. Writes (ingest, review, admin) do not come through here: their
//! entries commit in the same transaction as the write.

use std::sync::{Arc, Mutex};

use socred_store::{AuditDraft, ReadMark, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

/// Most entries appended in one store call.
const GROUP_ENTRIES_MAX: usize = 4096;

struct Job {
    drafts: Vec<AuditDraft>,
    /// The reads the request's answer rests on (`Store::state_marked`).
    mark: ReadMark,
    /// Whether the entries were appended (false: the mark was refused).
    done: oneshot::Sender<Result<bool, StoreError>>,
}

pub(crate) struct AuditLog {
    store: Arc<dyn Store>,
    sender: mpsc::UnboundedSender<Job>,
    /// Taken by the first append, which starts the worker on the runtime
    /// that serves requests (or on a thread of its own).
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    /// The worker's own thread, joined when the log is dropped so that the
    /// store it holds is gone by then (a next store may open the same files).
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has appended what
        // is queued.
        let (closed, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.sender, closed));
        let thread = match self.thread.get_mut() {
            Ok(slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl AuditLog {
    pub fn new(store: Arc<dyn Store>) -> AuditLog {
        let (sender, receiver) = mpsc::unbounded_channel();
        AuditLog {
            store,
            sender,
            receiver: Mutex::new(Some(receiver)),
            thread: Mutex::new(None),
        }
    }

    /// Appends `drafts` and returns once they are durable.
    pub async fn append(&self, drafts: Vec<AuditDraft>) -> Result<(), ApiError> {
        if self.append_marked(drafts, ReadMark::FRESH).await? {
            return Ok(());
        }
        Err(ApiError::internal(
            "append audit entries",
            &"the store refused entries of fresh reads",
        ))
    }

    /// Appends the entries of an answer resting on reads marked `mark` and
    /// returns once they are durable: true, or false when the store refused
    /// the mark (it noticed another writer since) and appended nothing. The
    /// answer must then be worked out again before it leaves.
    pub async fn append_marked(
        &self,
        drafts: Vec<AuditDraft>,
        mark: ReadMark,
    ) -> Result<bool, ApiError> {
        if drafts.is_empty() {
            return Ok(true);
        }
        self.start_worker();
        let (done, wait) = oneshot::channel();
        let stopped = || {
            ApiError::from(StoreError::Unavailable(
                "the audit log's writer has stopped".into(),
            ))
        };
        self.sender
            .send(Job { drafts, mark, done })
            .map_err(|_| stopped())?;
        match wait.await {
            Ok(result) => result.map_err(ApiError::from),
            Err(_) => Err(stopped()),
        }
    }

    fn start_worker(&self) {
        let receiver = match self.receiver.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(receiver) = receiver else { return };
        if self.store.blocking_audit().is_some() {
            let store = self.store.clone();
            let spawned = std::thread::Builder::new()
                .name("socred-audit-log".into())
                .spawn(move || thread_worker(store, receiver));
            match spawned {
                Ok(thread) => match self.thread.lock() {
                    Ok(mut slot) => *slot = Some(thread),
                    Err(poisoned) => *poisoned.into_inner() = Some(thread),
                },
                // Appends then fail with "stopped": no answer leaves unlogged.
                Err(error) => tracing::error!(%error, "cannot start the audit log's thread"),
            }
            return;
        }
        tokio::spawn(worker(self.store.clone(), receiver));
    }
}

/// The entries of `first` and of every job queued behind it, up to
/// [`GROUP_ENTRIES_MAX`] entries, with who waits for them.
fn gather(first: Job, receiver: &mut mpsc::UnboundedReceiver<Job>) -> (Groups, Waiting) {
    let mut entries = first.drafts.len();
    let mut groups = vec![(first.drafts, first.mark)];
    let mut waiting = vec![first.done];
    while entries < GROUP_ENTRIES_MAX {
        let Ok(job) = receiver.try_recv() else { break };
        entries += job.drafts.len();
        groups.push((job.drafts, job.mark));
        waiting.push(job.done);
    }
    (groups, waiting)
}

/// Tells each waiting request whether its entries were appended.
fn answer(waiting: Waiting, result: Result<Vec<bool>, StoreError>) {
    match result {
        Ok(appended) => {
            for (done, appended) in waiting.into_iter().zip(appended) {
                // A request that went away no longer waits; its entries are stored all the same.
                let _ = done.send(Ok(appended));
            }
        }
        Err(error) => {
            for done in waiting {
                let _ = done.send(Err(error.clone()));
            }
        }
    }
}

type Groups = Vec<(Vec<AuditDraft>, ReadMark)>;
type Waiting = Vec<oneshot::Sender<Result<bool, StoreError>>>;

/// The group commit through the store's asynchronous call.
async fn worker(store: Arc<dyn Store>, mut receiver: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = receiver.recv().await {
        let (groups, waiting) = gather(first, &mut receiver);
        answer(waiting, store.append_audit_marked(groups).await);
    }
}

/// The group commit on a thread of its own, for a store that appends on
/// the calling thread. Ends when the log is dropped.
fn thread_worker(store: Arc<dyn Store>, mut receiver: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = receiver.blocking_recv() {
        let (groups, waiting) = gather(first, &mut receiver);
        let result = match store.blocking_audit() {
            Some(log) => log.append_audit_marked_now(groups),
            None => Err(StoreError::Unavailable(
                "the store no longer appends on the audit log's thread".into(),
            )),
        };
        answer(waiting, result);
    }
}
