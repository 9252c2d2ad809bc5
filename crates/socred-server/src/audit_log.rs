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

use socred_store::{AuditDraft, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

/// Most entries appended in one store call.
const GROUP_ENTRIES_MAX: usize = 4096;

struct Job {
    drafts: Vec<AuditDraft>,
    done: oneshot::Sender<Result<(), StoreError>>,
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
        if drafts.is_empty() {
            return Ok(());
        }
        self.start_worker();
        let (done, wait) = oneshot::channel();
        let stopped = || {
            ApiError::from(StoreError::Unavailable(
                "the audit log's writer has stopped".into(),
            ))
        };
        self.sender
            .send(Job { drafts, done })
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
        let mut drafts = first.drafts;
        let mut waiting = vec![first.done];
        while drafts.len() < GROUP_ENTRIES_MAX {
            let Ok(job) = receiver.try_recv() else { break };
            drafts.extend(job.drafts);
            waiting.push(job.done);
        }
        let result = store.append_audit(drafts).await.map(|_| ());
        for done in waiting {
            // A request that went away no longer waits; its entries are stored all the same.
            let _ = done.send(result.clone());
        }
    }
}
