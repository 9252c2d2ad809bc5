//! `socred backup`: a consistent copy of the embedded store, taken while
//! the server runs, into a directory that `socred serve --data` and
//! `socred verify --data` open as they are.
//!
//! A backup is a copy of every credit file, so it is written to the audit
//! log first: the entry (action `backup`, by `socred` in role `system`,
//! naming the directory) is in the copy it records, and in the registry.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use socred_store::{AuditDraft, Store as _};
use socred_store_sqlite::{SqliteStore, FILE_NAME};

use crate::clock::{Clock as _, SystemClock};

/// What `socred backup` wrote.
#[derive(Debug)]
pub struct BackupReport {
    /// The directory holding the copy.
    pub to: PathBuf,
    /// The copy's size.
    pub bytes: u64,
    /// The audit entry that records the backup (in the copy too, followed
    /// only by what the server appended before the copy's snapshot).
    pub audit_entry: u64,
}

impl fmt::Display for BackupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let copy = self.to.join(FILE_NAME);
        writeln!(
            f,
            "backup written to {} ({:.1} MiB), with audit entry {} recording it",
            copy.display(),
            self.bytes as f64 / (1024.0 * 1024.0),
            self.audit_entry
        )?;
        write!(
            f,
            "check it with `socred verify --data {dir}`; serve it with `socred serve --data {dir}`",
            dir = self.to.display()
        )
    }
}

/// Copies the registry in `data_dir` into the new directory `to` (it must
/// not exist, or be empty). The server may keep running: the copy is one
/// snapshot, with every write acknowledged before it began.
pub fn backup(data_dir: &Path, to: &Path) -> anyhow::Result<BackupReport> {
    crate::serve::require_data_dir(data_dir)?;
    let empty = match std::fs::read_dir(to) {
        Ok(mut entries) => entries.next().is_none(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => true,
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", to.display()));
        }
    };
    if !empty {
        anyhow::bail!(
            "{} is not empty: a backup goes into a new directory",
            to.display()
        );
    }
    if same_directory(data_dir, to) {
        anyhow::bail!("the backup cannot go into the data directory itself");
    }
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    // The audit entry names where the copy went wherever it was started.
    let to = to
        .canonicalize()
        .with_context(|| format!("cannot read {}", to.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let dir = data_dir.to_path_buf();
        let store =
            tokio::task::spawn_blocking(move || SqliteStore::open_with(&dir, Default::default()))
                .await
                .context("opening the store stopped unexpectedly")?
                .context("cannot open the store")?;
        let entry = AuditDraft {
            at_ms: SystemClock.now_ms(),
            actor: "socred".into(),
            role: "system".into(),
            purpose: "backup".into(),
            action: "backup".into(),
            subject: None,
            detail: format!("backup of the registry begun, to {}", to.display()),
        };
        let audit_entry = store
            .append_audit(vec![entry])
            .await
            .context("cannot record the backup in the audit log")?
            .first()
            .copied()
            .context("the audit log did not number the backup's entry")?;
        let bytes = store
            .backup_into(&to.join(FILE_NAME))
            .await
            .context("cannot write the backup")?;
        Ok(BackupReport {
            to: to.clone(),
            bytes,
            audit_entry,
        })
    })
}

/// Whether `a` and `b` name the same directory (`b` may not exist yet).
fn same_directory(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
