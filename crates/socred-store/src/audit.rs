//! The tamper-evident audit log: entries numbered without gaps from 1, each
//! carrying `hash = SHA-256(previous hash || canonical entry)`, so that
//! editing, inserting, reordering or deleting an entry breaks the chain at
//! that point. The chain order never depends on one process's memory: a
//! backend reads the head inside the transaction that appends.
//!
//! The canonical form of an entry is the JSON array
//! `[seq, at_ms, actor, role, purpose, action, subject or null, detail]`
//! (serde_json, no whitespace): fixed positions, so no two entries share it,
//! and any JSON library can recompute it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use socred_core::SubjectId;

/// The hash before the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit entry as its writer describes it; the store numbers and chains it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDraft {
    /// When it happened, in milliseconds since the Unix epoch (UTC).
    pub at_ms: i64,
    /// The principal id (or `anonymous`).
    pub actor: String,
    /// The actor's role.
    pub role: String,
    /// Why (e.g. `ticket_sale`, `own_file`, `review`).
    pub purpose: String,
    /// What was done (e.g. `ingest`, `read_file`, `decide`).
    pub action: String,
    /// The subject whose file was touched, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<SubjectId>,
    /// Free text: counts, keys, measure ids.
    pub detail: String,
}

/// A stored audit entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    #[serde(flatten)]
    pub entry: AuditDraft,
    /// Hex SHA-256 of the previous entry's hash and this entry's canonical form.
    pub hash: String,
}

/// Where and why a chain does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at entry {seq}: {reason}")]
pub struct ChainBreak {
    pub seq: u64,
    pub reason: String,
}

/// The hash of the entry `seq` holding `draft`, following `prev_hash`.
pub fn audit_hash(prev_hash: &str, seq: u64, draft: &AuditDraft) -> String {
    let mut text = Vec::with_capacity(256);
    hash_into(&mut text, prev_hash, seq, draft)
}

/// [`audit_hash`] writing the canonical form into `text` (cleared first),
/// so that a caller hashing many entries reuses one buffer.
fn hash_into(text: &mut Vec<u8>, prev_hash: &str, seq: u64, draft: &AuditDraft) -> String {
    let canonical = (
        seq,
        draft.at_ms,
        &draft.actor,
        &draft.role,
        &draft.purpose,
        &draft.action,
        draft.subject.as_ref().map(SubjectId::as_str),
        &draft.detail,
    );
    text.clear();
    // A tuple of integers, strings and an option always serialises.
    let _ = serde_json::to_writer(&mut *text, &canonical);
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(&text[..]);
    sha256_hex(hasher)
}

/// The digest of `hasher` as lower-case hex. `hex::encode` builds its
/// string a character at a time; one of these is made for every audit
/// entry and every request's token, so the 64 bytes are written at once.
pub(crate) fn sha256_hex(hasher: Sha256) -> String {
    let digest = hasher.finalize();
    let mut out = [0u8; 64];
    // 32 bytes always fit in 64 hex digits, which are ASCII.
    let _ = hex::encode_to_slice(digest, &mut out);
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

/// Checks a chain page by page: feed entries in order with [`push`], then
/// compare with the stored head with [`finish`].
///
/// [`push`]: ChainVerifier::push
/// [`finish`]: ChainVerifier::finish
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    next_seq: u64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier::new()
    }
}

impl ChainVerifier {
    /// Starts before entry 1.
    pub fn new() -> ChainVerifier {
        ChainVerifier {
            next_seq: 1,
            prev_hash: GENESIS_HASH.to_string(),
        }
    }

    /// The next entry must be the one after `seq`, whose hash was `hash`.
    pub fn resume(seq: u64, hash: &str) -> ChainVerifier {
        ChainVerifier {
            next_seq: seq.saturating_add(1),
            prev_hash: hash.to_string(),
        }
    }

    /// Entries checked so far (the last `seq`).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    pub fn push(&mut self, entry: &AuditEntry) -> Result<(), ChainBreak> {
        if entry.seq != self.next_seq {
            let reason = if entry.seq > self.next_seq {
                format!("entries {} to {} are missing", self.next_seq, entry.seq - 1)
            } else {
                format!(
                    "expected entry {} next, found {} again or out of order",
                    self.next_seq, entry.seq
                )
            };
            return Err(ChainBreak {
                seq: self.next_seq,
                reason,
            });
        }
        let expected = audit_hash(&self.prev_hash, entry.seq, &entry.entry);
        if expected != entry.hash {
            return Err(ChainBreak {
                seq: entry.seq,
                reason: format!(
                    "stored hash {} does not match the entry's content (expected {expected}): the entry \
                     or the one before it was altered",
                    entry.hash
                ),
            });
        }
        self.prev_hash = expected;
        self.next_seq += 1;
        Ok(())
    }

    /// Compares the end of the checked chain with the stored head: entries
    /// deleted from the end are detected here.
    pub fn finish(&self, head: Option<&(u64, String)>) -> Result<(), ChainBreak> {
        let last = self.last_seq();
        match head {
            None if last == 0 => Ok(()),
            None => Err(ChainBreak {
                seq: last,
                reason: "the log has entries but no chain head".into(),
            }),
            Some((seq, _)) if *seq != last => Err(ChainBreak {
                seq: last.min(*seq) + 1,
                reason: format!(
                    "the chain head is at entry {seq} but the log ends at entry {last}"
                ),
            }),
            Some((_, hash)) if *hash != self.prev_hash => Err(ChainBreak {
                seq: last,
                reason: "the chain head's hash differs from the last entry's".into(),
            }),
            Some(_) => Ok(()),
        }
    }
}

/// The action of the entry that records a removal at the end of the
/// log's retention; its detail is [`prune_detail`]'s.
pub const PRUNE_ACTION: &str = "prune_audit";

/// What a removal's entry says: the last entry removed, its hash (from
/// which the first entry held chains) and the retention's cutoff.
pub fn prune_detail(through: u64, hash: &str, cutoff: &str) -> String {
    format!(
        "removed the audit entries up to entry {through}, appended before {cutoff} \
         (the end of the log's retention); entry {through} had hash {hash}"
    )
}

/// The last entry a removal's entry says it removed.
pub fn pruned_through(detail: &str) -> Option<u64> {
    let rest = detail.strip_prefix("removed the audit entries up to entry ")?;
    let digits = rest.split(',').next()?;
    digits.parse().ok()
}

/// Checks a whole chain from entry 1.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<(), ChainBreak> {
    let mut verifier = ChainVerifier::new();
    for entry in entries {
        verifier.push(entry)?;
    }
    Ok(())
}

/// Numbers and chains drafts after the head (`seq`, `hash`); returns the
/// entries and the new head. Backends call this inside the transaction that
/// stores the entries, with the head read in that transaction.
pub fn chain_drafts(head: (u64, &str), drafts: &[AuditDraft]) -> (Vec<AuditEntry>, (u64, String)) {
    let hashes = chain_hashes(head, drafts);
    let (seq, prev) = head;
    let new_head = (
        seq + drafts.len() as u64,
        hashes
            .last()
            .map_or_else(|| prev.to_string(), String::clone),
    );
    let entries = drafts
        .iter()
        .zip(hashes)
        .enumerate()
        .map(|(i, (draft, hash))| AuditEntry {
            seq: seq + 1 + i as u64,
            entry: draft.clone(),
            hash,
        })
        .collect();
    (entries, new_head)
}

/// The hashes of `drafts` appended after the head (`seq`, `hash`): entry
/// `seq + 1 + i` holds `drafts[i]` and `hashes[i]`. What [`chain_drafts`]
/// computes, for a backend that stores the drafts without copying them.
pub fn chain_hashes(head: (u64, &str), drafts: &[AuditDraft]) -> Vec<String> {
    let (mut seq, first) = head;
    let mut hashes: Vec<String> = Vec::with_capacity(drafts.len());
    let mut text = Vec::with_capacity(256);
    for draft in drafts {
        seq += 1;
        let prev = hashes.last().map_or(first, String::as_str);
        let hash = hash_into(&mut text, prev, seq, draft);
        hashes.push(hash);
    }
    hashes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_lower_case_hex() {
        // FIPS 180-2's example: SHA-256 of "abc".
        assert_eq!(
            crate::hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_removals_entry_names_the_last_entry_removed() {
        let detail = prune_detail(41_235, "ab12", "2016-11-24");
        assert_eq!(pruned_through(&detail), Some(41_235));
        assert_eq!(
            pruned_through("removed the audit entries up to entry x, …"),
            None
        );
        assert_eq!(pruned_through("installed the default rulebook"), None);
    }

    fn draft(detail: &str) -> AuditDraft {
        AuditDraft {
            at_ms: 1_770_000_000_000,
            actor: "agency.rail".into(),
            role: "agency".into(),
            purpose: "ticket_sale".into(),
            action: "decide".into(),
            subject: SubjectId::parse("11010519491231002X").ok().map(|p| p.id),
            detail: detail.into(),
        }
    }

    #[test]
    fn the_canonical_form_is_stable() {
        // A golden hash: changing the canonical form breaks every stored chain.
        let hash = audit_hash(GENESIS_HASH, 1, &draft("measure no_rail_ticket"));
        assert_eq!(
            hash,
            audit_hash(GENESIS_HASH, 1, &draft("measure no_rail_ticket"))
        );
        let mut hasher = Sha256::new();
        hasher.update(GENESIS_HASH.as_bytes());
        hasher.update(
            br#"[1,1770000000000,"agency.rail","agency","ticket_sale","decide","11010519491231002X","measure no_rail_ticket"]"#,
        );
        assert_eq!(hash, hex::encode(hasher.finalize()));
    }

    #[test]
    fn a_chain_verifies_and_every_kind_of_edit_is_caught() {
        let drafts: Vec<AuditDraft> = (0..5).map(|i| draft(&format!("read {i}"))).collect();
        let (entries, head) = chain_drafts((0, GENESIS_HASH), &drafts);
        assert_eq!(verify_chain(&entries), Ok(()));
        let mut verifier = ChainVerifier::new();
        entries.iter().try_for_each(|e| verifier.push(e)).unwrap();
        assert_eq!(verifier.finish(Some(&head)), Ok(()));

        let mut edited = entries.clone();
        edited[2].entry.detail = "nothing to see".into();
        assert_eq!(verify_chain(&edited).map_err(|b| b.seq), Err(3));

        let mut deleted = entries.clone();
        deleted.remove(1);
        let error = verify_chain(&deleted).unwrap_err();
        assert_eq!(
            (error.seq, error.reason.as_str()),
            (2, "entries 2 to 2 are missing")
        );

        let mut swapped = entries.clone();
        swapped.swap(1, 2);
        assert_eq!(verify_chain(&swapped).map_err(|b| b.seq), Err(2));

        // Truncating the tail is invisible to the entries, not to the head.
        let mut verifier = ChainVerifier::new();
        entries[..4]
            .iter()
            .try_for_each(|e| verifier.push(e))
            .unwrap();
        assert_eq!(verifier.finish(Some(&head)).map_err(|b| b.seq), Err(5));
    }

    /// Hashing without copying the drafts gives the chain that numbering
    /// and chaining them gives, from any head.
    #[test]
    fn chain_hashes_are_the_chain() {
        let drafts: Vec<AuditDraft> = (0..4).map(|i| draft(&format!("read {i}"))).collect();
        let (entries, head) = chain_drafts((7, "ab"), &drafts);
        let hashes = chain_hashes((7, "ab"), &drafts);
        assert_eq!(
            hashes,
            entries.iter().map(|e| e.hash.clone()).collect::<Vec<_>>()
        );
        assert_eq!(entries[0].hash, audit_hash("ab", 8, &drafts[0]));
        assert_eq!(
            entries[3].hash,
            audit_hash(&entries[2].hash, 11, &drafts[3])
        );
        assert_eq!(head, (11, entries[3].hash.clone()));
        assert_eq!(chain_drafts((7, "ab"), &[]).1, (7, "ab".to_string()));
    }

    #[test]
    fn a_resumed_verifier_checks_a_later_page() {
        let drafts: Vec<AuditDraft> = (0..4).map(|i| draft(&format!("read {i}"))).collect();
        let (entries, _) = chain_drafts((0, GENESIS_HASH), &drafts);
        let mut verifier = ChainVerifier::resume(entries[1].seq, &entries[1].hash);
        assert_eq!(
            entries[2..].iter().try_for_each(|e| verifier.push(e)),
            Ok(())
        );
        assert_eq!(verifier.last_seq(), 4);
    }
}
