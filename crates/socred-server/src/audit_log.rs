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
    /// that serves requests.
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
}

impl AuditLog {
    pub fn new(store: Arc<dyn Store>) -> AuditLog {
        let (sender, receiver) = mpsc::unbounded_channel();
        AuditLog {
            store,
            sender,
            receiver: Mutex::new(Some(receiver)),
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
        if let Some(receiver) = receiver {
            tokio::spawn(worker(self.store.clone(), receiver));
        }
    }
}

async fn worker(store: Arc<dyn Store>, mut receiver: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = receiver.recv().await {
        let mut entries = first.drafts.len();
        let mut groups = vec![(first.drafts, first.mark)];
        let mut waiting = vec![first.done];
        while entries < GROUP_ENTRIES_MAX {
            let Ok(job) = receiver.try_recv() else { break };
            entries += job.drafts.len();
            groups.push((job.drafts, job.mark));
            waiting.push(job.done);
        }
        match store.append_audit_marked(groups).await {
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
}
