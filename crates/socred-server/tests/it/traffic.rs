//! Seeded random traffic from every role at once, good and bad requests
//! mixed as a registry meets them: records and facts (some dated after the
//! registry's day, some about others' records), objections and repair
//! applications, consent back and forth, approvals and rejections (some by
//! the submitter), resolutions, decisions (some about measures the agency
//! does not implement), files read by their subjects and by others, the
//! audit log, erasure and the days going by.
//!
//! What must hold whatever the sequence: no answer is a 500 and no handler
//! panics (the harness checks every answer); every refusal carries a
//! stable code and a message; every decision answered about a subject is
//! in that subject's access log; and at the end the audit chain verifies
//! and every stored state equals a fresh fold of its records.

use axum::http::{Method, StatusCode};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use socred_core::{Day, SubjectId};

use crate::harness::*;

/// Sequences, and requests in each.
const SEEDS: u64 = 6;
const STEPS: usize = 300;

struct Traffic {
    rng: ChaCha8Rng,
    /// The registry's day.
    today: Day,
    /// (provider token, provider id, record id, subject) of records sent.
    sent: Vec<(&'static str, &'static str, String, SubjectId)>,
    /// Decisions answered about each subject with a token (alice, bob).
    decided: [usize; 2],
    next_id: usize,
}

impl Traffic {
    fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn subject(&mut self) -> SubjectId {
        [alice(), bob(), carol(), acme()][self.below(4)]
    }

    fn person(&mut self) -> SubjectId {
        [alice(), bob(), carol()][self.below(3)]
    }

    /// A day within the last two years, now and then after today.
    fn day(&mut self) -> String {
        let back = self.below(730) as i32;
        let ahead = if self.chance(5) { 3 } else { 0 };
        self.today.add_days(ahead - back).to_string()
    }

    /// Lines from the court or the metro: records, and facts about records
    /// sent before (their own or not).
    fn lines(&mut self) -> (&'static str, Vec<String>) {
        let (token, provider) = if self.chance(50) {
            (COURT, COURT_ID)
        } else {
            (METRO, METRO_ID)
        };
        let count = 1 + self.below(5);
        let mut lines = Vec::new();
        for _ in 0..count {
            if self.chance(30) && !self.sent.is_empty() {
                let pick = self.below(self.sent.len());
                let (_, of, id, subject) = self.sent[pick].clone();
                let at = self.day();
                let fact = if self.chance(50) {
                    json!({"fact": "retracted", "provider": of, "record": id,
                        "subject": subject.to_string(), "at": at})
                } else {
                    let mut fact = json!({"fact": "corrected", "provider": of, "record": id,
                        "subject": subject.to_string(), "at": at,
                        "type": "transport.fare_evasion", "fields": {"station": "Hongqiao"}});
                    // Now and then a new date alone, possible or not.
                    if self.chance(30) {
                        let key = ["occurred_at", "decided_at"][self.below(2)];
                        fact[key] = json!(self.day());
                    }
                    fact
                };
                lines.push(fact.to_string());
                continue;
            }
            self.next_id += 1;
            let id = format!("r{}", self.next_id % 40);
            let decided = self.day();
            let line = match (provider, self.below(3)) {
                (METRO_ID, _) => {
                    let subject = if self.chance(90) {
                        self.person()
                    } else {
                        acme()
                    };
                    self.sent.push((token, provider, id.clone(), subject));
                    fare_evasion(&id, subject, &decided)
                }
                (_, 0) => {
                    let subject = self.subject();
                    self.sent.push((token, provider, id.clone(), subject));
                    judgment_default(&id, subject, &decided)
                }
                (_, 1) => {
                    self.sent.push((token, provider, id.clone(), acme()));
                    admin_penalty(&id, acme(), &decided)
                }
                _ => {
                    // The judgment fulfilled, for a case of a judgment sent
                    // before (or none).
                    let subject = self.subject();
                    let case = self.below(40);
                    self.sent.push((token, provider, id.clone(), subject));
                    json!({"provider": COURT_ID, "id": id, "subject": subject.to_string(),
                        "type": "judicial.judgment_fulfilled", "occurred_at": decided,
                        "decided_at": decided,
                        "fields": {"case_no": format!("(2026) Jing 01 Zhi r{case}")}})
                    .to_string()
                }
            };
            lines.push(line);
        }
        if self.chance(10) {
            lines.push("{not json".to_string());
        }
        (token, lines)
    }

    /// A record of `subject` sent before, as `{"provider", "id"}`.
    fn record_of(&mut self, subject: SubjectId) -> Value {
        let theirs: Vec<_> = self
            .sent
            .iter()
            .filter(|(_, _, _, s)| *s == subject)
            .cloned()
            .collect();
        match theirs.get(self.below(theirs.len().max(1))) {
            Some((_, provider, id, _)) => json!({"provider": provider, "id": id}),
            None => json!({"provider": METRO_ID, "id": "none"}),
        }
    }
}

/// The principal id behind a reviewer's token, for a fact's `by`.
fn reviewer_id(token: &str) -> &'static str {
    if token == REVIEWER_1 {
        "reviewer-1"
    } else {
        "reviewer-2"
    }
}

/// A refusal names a stable code and says what is wrong.
#[track_caller]
fn check_refusal(reply: &Reply, what: &str) {
    if reply.status.is_client_error() {
        let json = reply.json();
        let code = json["error"]["code"].as_str().unwrap_or_default();
        let message = json["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !code.is_empty() && !message.is_empty(),
            "{what}: a refusal without code or message: {}",
            reply.text
        );
    } else {
        assert!(
            reply.status.is_success(),
            "{what}: {} {}",
            reply.status,
            reply.text
        );
    }
}

async fn step(h: &Harness, t: &mut Traffic) {
    let who = [(ALICE, alice()), (BOB, bob())];
    match t.below(14) {
        0..=3 => {
            let (token, lines) = t.lines();
            let reply = h.ingest(token, &lines).await;
            check_refusal(&reply, "ingest");
        }
        4 | 5 => {
            let (token, subject) = who[t.below(2)];
            let other = if t.chance(20) { t.subject() } else { subject };
            let record = t.record_of(other);
            let uri = format!("/v1/subjects/{other}/objections");
            let body = json!({"record": record, "statement": "not me"});
            let reply = h.post_json(&uri, Some(token), &body).await;
            check_refusal(&reply, "objection");
        }
        6 => {
            let (token, subject) = who[t.below(2)];
            let record = t.record_of(subject);
            let uri = format!("/v1/subjects/{subject}/repair-applications");
            let body =
                json!({"record": record, "correction": "paid", "commitment": "will keep it"});
            let reply = h.post_json(&uri, Some(token), &body).await;
            check_refusal(&reply, "repair application");
        }
        7 => {
            let (token, subject) = who[t.below(2)];
            let uri = format!("/v1/subjects/{subject}/consent");
            let granted = t.chance(60);
            let reply = h
                .post_json(&uri, Some(token), &json!({"granted": granted}))
                .await;
            check_refusal(&reply, "consent");
        }
        8 | 9 => {
            let reviewer = [REVIEWER_1, REVIEWER_2][t.below(2)];
            let pending = h
                .get("/v1/review/pending?limit=50", Some(reviewer))
                .await
                .expect(StatusCode::OK)
                .json();
            let items = pending["items"].as_array().cloned().unwrap_or_default();
            if let Some(item) = items.get(t.below(items.len().max(1))) {
                let key = item["key"].clone();
                let reply = if t.chance(75) {
                    h.post_json("/v1/review/approve", Some(reviewer), &json!({"key": key}))
                        .await
                } else {
                    let body = json!({"key": key, "reason": "not proven"});
                    h.post_json("/v1/review/reject", Some(reviewer), &body)
                        .await
                };
                check_refusal(&reply, "review");
            }
            let open = h
                .get("/v1/review/objections", Some(reviewer))
                .await
                .expect(StatusCode::OK)
                .json();
            let open = open["objections"].as_array().cloned().unwrap_or_default();
            if let Some(objection) = open.get(t.below(open.len().max(1))) {
                let id = reviewer_id(reviewer);
                let outcome = ["upheld", "retracted"][t.below(2)];
                let fact = json!({"fact": "resolved", "provider": objection["record"]["provider"],
                    "record": objection["record"]["id"], "subject": objection["subject"],
                    "at": t.today.to_string(), "by": id, "outcome": outcome});
                let reply = h.ingest(reviewer, &[fact.to_string()]).await;
                check_refusal(&reply, "resolution");
            }
            if t.chance(20) {
                // Repair granted directly, about any record sent (the
                // subject's or not, public or not).
                let subject = t.subject();
                let record = t.record_of(subject);
                let id = reviewer_id(reviewer);
                let fact = json!({"fact": "repaired", "provider": record["provider"],
                    "record": record["id"], "subject": subject.to_string(),
                    "at": t.today.to_string(), "by": id});
                let reply = h.ingest(reviewer, &[fact.to_string()]).await;
                check_refusal(&reply, "repair");
            }
        }
        10 | 11 => {
            let (agency, measure) = [
                (AIRLINE, "no_air_travel"),
                (RAIL, "no_rail_tickets"),
                (RAIL, "no_air_travel"),
                (AIRLINE, "no_g_train_or_emu_first_class"),
            ][t.below(4)];
            let subject = t.subject();
            let uri = format!("/v1/decisions?subject={subject}&measure={measure}&purpose=traffic");
            let reply = h.get(&uri, Some(agency)).await;
            check_refusal(&reply, "decision");
            if reply.status.is_success() {
                if let Some(n) = who.iter().position(|(_, s)| *s == subject) {
                    t.decided[n] += 1;
                }
            }
        }
        12 => {
            let (token, subject) = who[t.below(2)];
            let other = if t.chance(30) { t.subject() } else { subject };
            let path = ["", "/explanation", "/access-log"][t.below(3)];
            let reply = h
                .get(&format!("/v1/subjects/{other}{path}"), Some(token))
                .await;
            check_refusal(&reply, "file");
            assert_eq!(
                reply.status.is_success(),
                other == subject,
                "a subject reads its own file and no other"
            );
        }
        _ => {
            if t.chance(30) {
                let reply = h
                    .send(Method::POST, "/v1/admin/erasure", Some(ADMIN), None, "")
                    .await;
                check_refusal(&reply, "erasure");
            }
            // A day or a few go by.
            t.today = t.today.add_days(1 + t.below(20) as i32);
            h.clock.set_day(t.today);
        }
    }
}

/// On the in-memory store.
#[tokio::test]
async fn random_traffic_keeps_every_invariant() {
    for seed in 0..SEEDS {
        traffic(&Harness::new().await, seed).await;
    }
}

/// On the embedded SQLite store, with its caches of states and histories.
#[tokio::test]
async fn random_traffic_on_sqlite_keeps_every_invariant() {
    for seed in SEEDS..SEEDS + 2 {
        let dir = tempfile::tempdir().unwrap();
        let store = socred_store_sqlite::SqliteStore::open(dir.path()).unwrap();
        let h = Harness::over(std::sync::Arc::new(store), socred_server::Limits::default()).await;
        traffic(&h, seed).await;
    }
}

/// One seeded sequence of [`STEPS`] requests, then the checks at its end.
async fn traffic(h: &Harness, seed: u64) {
    let mut t = Traffic {
        rng: ChaCha8Rng::seed_from_u64(seed),
        today: Day::parse(TODAY).unwrap(),
        sent: Vec::new(),
        decided: [0, 0],
        next_id: 0,
    };
    for _ in 0..STEPS {
        step(h, &mut t).await;
    }
    for (n, (token, subject)) in [(ALICE, alice()), (BOB, bob())].into_iter().enumerate() {
        let uri = format!("/v1/subjects/{subject}/access-log?limit=1000");
        let log = h.get(&uri, Some(token)).await.expect(StatusCode::OK).json();
        let entries = log["entries"].as_array().cloned().unwrap_or_default();
        assert!(entries.len() < 1000, "seed {seed}: one page holds the log");
        let logged = entries.iter().filter(|e| e["action"] == "decide").count();
        assert_eq!(
            logged, t.decided[n],
            "seed {seed}: every decision about {subject} is in its access log"
        );
    }
    let verified = h
        .get("/v1/audit/verify", Some(AUDITOR))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(verified["ok"], true, "seed {seed}: {verified}");
    let report = socred_server::verify_store(h.store.as_ref()).await.unwrap();
    assert!(report.is_ok(), "seed {seed}: {report:?}");
    let counts = h.store.counts().await.unwrap();
    assert!(
        counts.records > 10 && counts.audit_entries > 50,
        "seed {seed}: the traffic did something: {counts:?}"
    );
}
