//! One attempt at each write of the store, in one transaction. The store
//! runs an attempt again when it met a conflict ([`crate::PostgresStore`]'s
//! `run`); an attempt that fails leaves nothing behind (the transaction is
//! rolled back when dropped).

use std::collections::BTreeSet;
use std::sync::Arc;

use socred_core::{Day, Engine, RecordKey, SubjectId};
use socred_store::{
    about_subject, now_ms, AuditDraft, Drawing, Erasure, FactKey, Item, ItemKey, Outcome,
    PendingItem, Principal, ReviewNeed, RulebookVersion, StoreError, Submission, Writer,
};

use crate::codec::subject_of;
use crate::overlay::Overlay;
use crate::pool::{decode, pg, Fault, Session};
use crate::write::{self, Totals, Tx};
use crate::{in_memory, PostgresStore, RECOMPUTE_BATCH};

/// Runs `$body` with `$s`, a session in a new transaction on a pooled
/// connection, and commits; `?` in the body returns at once, which rolls
/// the transaction back. A connection that breaks at `BEGIN` has changed
/// nothing, so that failure may be replayed.
macro_rules! in_transaction {
    ($store:expr, $what:literal, |$s:ident| $body:block) => {{
        let mut lease = $store.shared.pool.get().await?;
        let (client, cache) = lease.parts()?;
        let tx = client
            .transaction()
            .await
            .map_err(pg(concat!("begin ", $what)))
            .map_err(Fault::replayable)?;
        let mut session: Tx<'_, '_> = Session::new(&tx, cache);
        let value = {
            let $s = &mut session;
            $body
        };
        tx.commit().await.map_err(pg(concat!("commit ", $what)))?;
        value
    }};
}

/// The keys an item makes the writer ask about: its own, and the record a
/// fact names.
fn keys_of<'a>(items: impl Iterator<Item = &'a Item>) -> (BTreeSet<RecordKey>, BTreeSet<FactKey>) {
    let mut records = BTreeSet::new();
    let mut facts = BTreeSet::new();
    for item in items {
        match item {
            Item::Record(record) => {
                records.insert(record.key.clone());
            }
            Item::Fact { fact, .. } => {
                if let Some(key) = fact.record() {
                    records.insert(key.clone());
                }
                facts.insert(FactKey::of(fact));
            }
        }
    }
    (records, facts)
}

/// How a review ends.
#[derive(Clone, Debug)]
pub(crate) enum Decision {
    /// Approve, on the registry's day (for the retention check).
    Approve(Day),
    Reject(String),
}

impl PostgresStore {
    /// Locks the batch's subjects, fetches what the writer will ask about,
    /// runs the writer in memory and flushes what it wrote.
    pub(crate) async fn try_ingest(
        &self,
        engine: &Arc<Engine>,
        batch: &[Submission],
        audit: &[AuditDraft],
    ) -> Result<Vec<Outcome>, Fault> {
        Ok(in_transaction!(self, "a write", |s| {
            let subjects: BTreeSet<SubjectId> = batch.iter().map(|s| s.item.subject()).collect();
            let mut overlay = Overlay::new(write::lock_subjects(s, &subjects).await?);
            write::check_rulebook(s, engine).await?;
            let (record_keys, fact_keys) = keys_of(batch.iter().map(|s| &s.item));
            write::fetch(s, &mut overlay, &record_keys, &fact_keys).await?;
            let reviews = batch
                .iter()
                .filter(|s| s.review == ReviewNeed::Required)
                .count();
            if reviews > 0 {
                overlay.set_pending_seqs(write::take_pending_seqs(s, reviews).await?);
            }
            let engine = engine.clone();
            let batch = batch.to_vec();
            let (overlay, outcomes) = in_memory(overlay, move |overlay| {
                Writer::new(&engine, now_ms()).ingest(overlay, batch, &[])
            })
            .await?;
            let totals = Totals::of(overlay.delta, audit.len());
            write::flush(s, &overlay, totals, audit).await?;
            outcomes
        }))
    }

    /// Erases under the subjects' locks what the end of retention allows
    /// on `today` (see `Writer::erase`).
    pub(crate) async fn try_erase(
        &self,
        engine: &Arc<Engine>,
        subjects: &[SubjectId],
        today: Day,
        audit: &AuditDraft,
    ) -> Result<Erasure, Fault> {
        Ok(in_transaction!(self, "an erasure", |s| {
            let locked: BTreeSet<SubjectId> = subjects.iter().copied().collect();
            let mut overlay = Overlay::new(write::lock_subjects(s, &locked).await?);
            write::check_rulebook(s, engine).await?;
            write::fetch(s, &mut overlay, &BTreeSet::new(), &BTreeSet::new()).await?;
            write::fetch_not_in_effect(s, &mut overlay).await?;
            let engine = engine.clone();
            let (list, audit) = (subjects.to_vec(), audit.clone());
            let (overlay, (erasure, entries)) = in_memory(overlay, move |overlay| {
                Writer::new(&engine, now_ms()).erase(overlay, list, today, &audit)
            })
            .await?;
            let totals = Totals::of(overlay.delta, entries.len());
            write::flush(s, &overlay, totals, &entries).await?;
            erasure
        }))
    }

    /// Approves or rejects a pending item under its subject's lock.
    pub(crate) async fn try_review(
        &self,
        engine: &Arc<Engine>,
        key: &ItemKey,
        reviewer: &str,
        decision: &Decision,
        audit: &[AuditDraft],
    ) -> Result<PendingItem, Fault> {
        Ok(in_transaction!(self, "a review", |s| {
            let mut record_keys = BTreeSet::new();
            let mut fact_keys = BTreeSet::new();
            let subject = match key {
                ItemKey::Record(record) => {
                    record_keys.insert(record.clone());
                    let held = write::claims(s, &record_keys).await?;
                    *held
                        .get(record)
                        .ok_or_else(|| StoreError::NotFound(key.to_string()))?
                }
                ItemKey::Fact(fact) => {
                    fact_keys.insert(fact.clone());
                    fact.subject
                }
            };
            let mut overlay =
                Overlay::new(write::lock_subjects(s, &BTreeSet::from([subject])).await?);
            write::check_rulebook(s, engine).await?;
            write::fetch(s, &mut overlay, &record_keys, &fact_keys).await?;
            // Approving a fact checks the record it names: fetch that one too.
            if let ItemKey::Fact(fact) = key {
                let named = overlay
                    .fact_row(fact)
                    .and_then(|row| row.key.record.clone());
                if let Some(named) = named {
                    write::fetch(s, &mut overlay, &BTreeSet::from([named]), &BTreeSet::new())
                        .await?;
                }
            }
            let engine = engine.clone();
            let (key, reviewer, decision) = (key.clone(), reviewer.to_string(), decision.clone());
            let (overlay, item) = in_memory(overlay, move |overlay| {
                let writer = Writer::new(&engine, now_ms());
                match &decision {
                    Decision::Approve(today) => {
                        writer.approve(overlay, &key, &reviewer, *today, &[])
                    }
                    Decision::Reject(reason) => {
                        writer.reject(overlay, &key, &reviewer, reason, &[])
                    }
                }
            })
            .await?;
            let totals = Totals::of(overlay.delta, audit.len());
            write::flush(s, &overlay, totals, &about_subject(audit, subject)).await?;
            item
        }))
    }

    /// Refolds one page of subjects after `after`; returns the last one and
    /// how many there were.
    pub(crate) async fn try_recompute_page(
        &self,
        engine: &Arc<Engine>,
        after: &str,
    ) -> Result<(Option<String>, u64), Fault> {
        Ok(in_transaction!(self, "a recompute", |s| {
            let rows = s
                .query(
                    "list subjects to recompute",
                    "SELECT subject FROM states WHERE subject > $1 AND state IS NOT NULL \
                     ORDER BY subject LIMIT $2",
                    &[&after, &(RECOMPUTE_BATCH as i64)],
                )
                .await?;
            let get = decode("read a subject");
            let mut subjects = BTreeSet::new();
            let mut last = None;
            for row in &rows {
                let text: &str = row.try_get(0).map_err(&get)?;
                subjects.insert(subject_of(text)?);
                last = Some(text.to_string());
            }
            let count = subjects.len() as u64;
            if !subjects.is_empty() {
                let mut overlay = Overlay::new(write::lock_subjects(s, &subjects).await?);
                write::check_rulebook(s, engine).await?;
                write::fetch(s, &mut overlay, &BTreeSet::new(), &BTreeSet::new()).await?;
                let engine = engine.clone();
                let list: Vec<SubjectId> = subjects.into_iter().collect();
                let (overlay, ()) = in_memory(overlay, move |overlay| {
                    Writer::new(&engine, now_ms()).recompute(overlay, list)
                })
                .await?;
                write::flush(s, &overlay, Totals::of(overlay.delta, 0), &[]).await?;
            }
            let label = engine.rulebook.label();
            match &last {
                Some(last) => {
                    s.execute(
                        "record the recomputation's progress",
                        "UPDATE recompute SET last_subject = $2 WHERE rulebook = $1",
                        &[&label, last],
                    )
                    .await?
                }
                None => {
                    s.execute(
                        "record the recomputation's end",
                        "DELETE FROM recompute WHERE rulebook = $1",
                        &[&label],
                    )
                    .await?
                }
            };
            (last, count)
        }))
    }

    pub(crate) async fn try_put_rulebook(
        &self,
        version: &RulebookVersion,
        text: &str,
        audit: &[AuditDraft],
    ) -> Result<RulebookVersion, Fault> {
        Ok(in_transaction!(self, "a rulebook upload", |s| {
            // The numbering row first: two uploads of one label take turns,
            // so the second sees the first's text.
            let seq = s
                .query_opt(
                    "number a rulebook",
                    "UPDATE numbering SET value = value + 1 WHERE name = 'rulebook_seq' RETURNING value",
                    &[],
                )
                .await?
                .ok_or_else(|| {
                    StoreError::Corrupt("the numbering table has no rulebook_seq row".into())
                })?;
            let seq: i64 = seq.try_get(0).map_err(decode("number a rulebook"))?;
            let clash = s
                .query_opt(
                    "read rulebook versions",
                    "SELECT 1 FROM rulebooks WHERE label = $1 AND body <> $2 LIMIT 1",
                    &[&version.label, &text],
                )
                .await?;
            if clash.is_some() {
                return Err(StoreError::Conflict(format!(
                    "rulebook {} was uploaded before with other text: give the new text a new version",
                    version.label
                ))
                .into());
            }
            s.execute(
                "store a rulebook",
                "INSERT INTO rulebooks (seq, label, body, uploaded_at_ms, uploaded_by) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &seq,
                    &version.label,
                    &text,
                    &version.uploaded_at_ms,
                    &version.uploaded_by,
                ],
            )
            .await?;
            let totals = Totals {
                rulebooks: 1,
                audit_entries: audit.len() as i64,
                ..Totals::default()
            };
            s.execute(
                "record the recomputation to do",
                "INSERT INTO recompute (one, rulebook, last_subject) VALUES (1, $1, '') \
                 ON CONFLICT (one) DO UPDATE SET rulebook = excluded.rulebook, last_subject = ''",
                &[&version.label],
            )
            .await?;
            write::bump_totals(s, totals).await?;
            write::append_audit(s, audit).await?;
            version.clone()
        }))
    }

    pub(crate) async fn try_publish_edition(
        &self,
        list: &str,
        drawing: Drawing<'_>,
        (subjects, named): (&Vec<&str>, &Vec<bool>),
        audit: &[AuditDraft],
    ) -> Result<bool, Fault> {
        let (day, rulebook, drawn, mark_ms) = (
            drawing.day,
            drawing.rulebook,
            drawing.drawn,
            drawing.mark_ms,
        );
        Ok(in_transaction!(self, "a publication", |s| {
            // The row's lock orders two servers publishing the same list.
            s.execute(
                "lock a list's edition",
                "INSERT INTO editions (list, day, rulebook, drawn, members) \
                 VALUES ($1, -1, '', -1, 0) ON CONFLICT (list) DO NOTHING",
                &[&list],
            )
            .await?;
            let row = s
                .query_opt(
                    "read a list's edition",
                    "SELECT day, rulebook, drawn FROM editions WHERE list = $1 FOR UPDATE",
                    &[&list],
                )
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("the edition of `{list}` went away")))?;
            let get = decode("read a list's edition");
            let was_day: i32 = row.try_get(0).map_err(&get)?;
            let was_rulebook: String = row.try_get(1).map_err(&get)?;
            let was_drawn: i32 = row.try_get(2).map_err(&get)?;
            if was_day == day.0 && was_rulebook == rulebook && was_drawn == drawn.0 {
                false
            } else {
                s.execute(
                    "publish a list's edition",
                    "DELETE FROM edition_members WHERE list = $1",
                    &[&list],
                )
                .await?;
                let count = s
                    .execute(
                        "publish a list's edition",
                        "INSERT INTO edition_members (subject, named, list) \
                         SELECT *, $3 FROM unnest($1::text[], $2::boolean[])",
                        &[subjects, named, &list],
                    )
                    .await?;
                s.execute(
                    "publish a list's edition",
                    "UPDATE editions SET day = $2, rulebook = $3, drawn = $4, members = $5, \
                     mark_ms = $6 WHERE list = $1",
                    &[
                        &list,
                        &day.0,
                        &rulebook,
                        &drawn.0,
                        &(count as i64),
                        &mark_ms,
                    ],
                )
                .await?;
                let totals = Totals {
                    audit_entries: audit.len() as i64,
                    ..Totals::default()
                };
                write::bump_totals(s, totals).await?;
                write::append_audit(s, audit).await?;
                true
            }
        }))
    }

    pub(crate) async fn try_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, Fault> {
        in_transaction!(self, "keeping a secret", |s| {
            s.execute(
                "keep a secret",
                "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &fresh],
            )
            .await?;
            let row = s
                .query_opt(
                    "read a secret",
                    "SELECT value FROM secrets WHERE name = $1",
                    &[&name],
                )
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("the secret `{name}` went away")))?;
            let value: Vec<u8> = row.try_get(0).map_err(decode("read a secret"))?;
            Ok(value)
        })
    }

    pub(crate) async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, Fault> {
        in_transaction!(self, "taking a lease", |s| {
            // The row's lock orders two servers after the same lease; the
            // condition is checked again on the row as the first left it.
            let taken = s
                .execute(
                    "take a lease",
                    "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $4) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     until_ms = excluded.until_ms \
                     WHERE leases.holder = excluded.holder OR leases.until_ms <= $3",
                    &[&name, &holder, &now_ms, &until_ms],
                )
                .await?;
            Ok(taken == 1)
        })
    }

    pub(crate) async fn try_put_principal(
        &self,
        principal: &Principal,
        token_hash: &str,
        audit: &[AuditDraft],
    ) -> Result<(), Fault> {
        let record_types =
            serde_json::to_string(&principal.record_types).unwrap_or_else(|_| "[]".into());
        let valid_until: Option<i32> = principal.valid_until.map(|day| day.0);
        in_transaction!(self, "a principal change", |s| {
            let holder = s
                .query_opt(
                    "look up a token hash",
                    "SELECT id FROM principals WHERE token_hash = $1",
                    &[&token_hash],
                )
                .await?;
            if let Some(row) = holder {
                let holder: String = row.try_get(0).map_err(decode("look up a token hash"))?;
                if holder != principal.id {
                    return Err(StoreError::Conflict(format!(
                        "principal `{holder}` already holds this token"
                    ))
                    .into());
                }
            }
            // A token hash taken meanwhile fails the unique index: the
            // transaction runs again and finds the holder.
            let inserted = s
                .execute(
                    "store a principal",
                    "INSERT INTO principals (id, name, role, scope, record_types, token_hash, revoked, valid_until) \
                     VALUES ($1, $2, $3, $4, $5, $6, false, $7) ON CONFLICT (id) DO NOTHING",
                    &[
                        &principal.id,
                        &principal.name,
                        &principal.role.as_str(),
                        &principal.scope,
                        &record_types,
                        &token_hash,
                        &valid_until,
                    ],
                )
                .await?;
            if inserted == 0 {
                s.execute(
                    "store a principal",
                    "UPDATE principals SET name = $2, role = $3, scope = $4, record_types = $5, \
                     token_hash = $6, revoked = false, valid_until = $7 WHERE id = $1",
                    &[
                        &principal.id,
                        &principal.name,
                        &principal.role.as_str(),
                        &principal.scope,
                        &record_types,
                        &token_hash,
                        &valid_until,
                    ],
                )
                .await?;
            }
            let totals = Totals {
                principals: i64::try_from(inserted).unwrap_or(0),
                audit_entries: audit.len() as i64,
                ..Totals::default()
            };
            write::bump_totals(s, totals).await?;
            write::append_audit(s, audit).await?;
        });
        Ok(())
    }

    pub(crate) async fn try_revoke(&self, id: &str, audit: &[AuditDraft]) -> Result<(), Fault> {
        in_transaction!(self, "a revocation", |s| {
            let changed = s
                .execute(
                    "revoke a principal",
                    "UPDATE principals SET revoked = true WHERE id = $1",
                    &[&id],
                )
                .await?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("principal `{id}`")).into());
            }
            let totals = Totals {
                audit_entries: audit.len() as i64,
                ..Totals::default()
            };
            write::bump_totals(s, totals).await?;
            write::append_audit(s, audit).await?;
        });
        Ok(())
    }

    /// Removes the oldest entries, at most `limit`, none after `through`,
    /// with their rows in the subject index, and moves the anchor.
    pub(crate) async fn try_prune_audit(&self, through: i64, limit: i64) -> Result<u64, Fault> {
        Ok(in_transaction!(self, "an audit removal", |s| {
            // The head's lock keeps appends out while the start moves.
            s.query_opt(
                "lock the audit chain head",
                "SELECT seq FROM audit_head WHERE one = 1 FOR UPDATE",
                &[],
            )
            .await?;
            let last = s
                .query_opt(
                    "read the audit log",
                    "SELECT seq, hash FROM (SELECT seq, hash FROM audit WHERE seq <= $1 \
                     ORDER BY seq LIMIT $2) oldest ORDER BY seq DESC LIMIT 1",
                    &[&through, &limit],
                )
                .await?;
            match last {
                None => 0,
                Some(row) => {
                    let get = decode("read the audit log");
                    let seq: i64 = row.try_get(0).map_err(&get)?;
                    let hash: String = row.try_get(1).map_err(&get)?;
                    let removed = s
                        .execute(
                            "remove audit entries",
                            "DELETE FROM audit WHERE seq <= $1",
                            &[&seq],
                        )
                        .await?;
                    s.execute(
                        "remove audit entries",
                        "DELETE FROM audit_subjects WHERE seq <= $1",
                        &[&seq],
                    )
                    .await?;
                    s.execute(
                        "move the audit chain's anchor",
                        "INSERT INTO audit_anchor (one, seq, hash) VALUES (1, $1, $2) \
                         ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                        &[&seq, &hash],
                    )
                    .await?;
                    let totals = Totals {
                        audit_entries: -i64::try_from(removed).unwrap_or(0),
                        ..Totals::default()
                    };
                    write::bump_totals(s, totals).await?;
                    removed
                }
            }
        }))
    }

    pub(crate) async fn try_append_audit(&self, entries: &[AuditDraft]) -> Result<Vec<u64>, Fault> {
        Ok(in_transaction!(self, "an audit append", |s| {
            let totals = Totals {
                audit_entries: entries.len() as i64,
                ..Totals::default()
            };
            write::bump_totals(s, totals).await?;
            write::append_audit(s, entries).await?
        }))
    }
}
