//! A registry on the in-memory store with one principal per role, a fixed
//! day (2026-06-01) and helpers to send requests and build wire lines.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use socred_core::{Day, SubjectId};
use socred_server::{app, AppState, FixedClock, Limits};
use socred_store::{hash_token, MemoryStore, Principal, Role, Store};
use tower::ServiceExt;

pub const TODAY: &str = "2026-06-01";

pub const ADMIN: &str = "token-admin-0000000000000000";
pub const COURT: &str = "token-court-0000000000000000";
pub const METRO: &str = "token-metro-0000000000000000";
pub const REVIEWER_1: &str = "token-reviewer-1-00000000000";
pub const REVIEWER_2: &str = "token-reviewer-2-00000000000";
pub const AIRLINE: &str = "token-airline-00000000000000";
pub const RAIL: &str = "token-rail-000000000000000000";
pub const ALICE: &str = "token-alice-00000000000000000";
pub const BOB: &str = "token-bob-0000000000000000000";
pub const AUDITOR: &str = "token-auditor-000000000000000";

/// The court provider's id.
pub const COURT_ID: &str = "court.beijing-1";
pub const METRO_ID: &str = "metro.shanghai";

pub fn alice() -> SubjectId {
    SubjectId::person(110105, 1985, 7, 14, 123).unwrap()
}

pub fn bob() -> SubjectId {
    SubjectId::person(310101, 1990, 2, 3, 456).unwrap()
}

pub fn carol() -> SubjectId {
    SubjectId::person(440305, 1979, 11, 30, 11).unwrap()
}

pub fn acme() -> SubjectId {
    SubjectId::organisation(*b"91", 110105, *b"MA01BC2D").unwrap()
}

pub struct Harness {
    pub app: Router,
    pub state: AppState,
    pub store: Arc<dyn Store>,
    pub clock: Arc<FixedClock>,
    /// The in-memory store, when the harness runs on one.
    pub memory: Option<Arc<MemoryStore>>,
}

/// A response as the tests read it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The stable error code of an error response.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Reply {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Expects an error with `status` and `code`, and a message.
    #[track_caller]
    pub fn expect_error(self, status: StatusCode, code: &str) -> Reply {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(self.code(), code, "unexpected code; body: {}", self.text);
        assert!(!self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty());
        self
    }
}

pub fn principal(id: &str, role: Role, scope: Option<&str>, types: &[&str]) -> Principal {
    Principal {
        id: id.into(),
        name: format!("test {id}"),
        role,
        scope: scope.map(str::to_string),
        record_types: types.iter().map(|t| t.to_string()).collect(),
        revoked: false,
        valid_until: None,
    }
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with_limits(Limits::default()).await
    }

    pub async fn with_limits(limits: Limits) -> Harness {
        let memory = Arc::new(MemoryStore::new());
        let mut harness = Harness::over(memory.clone(), limits).await;
        harness.memory = Some(memory);
        harness
    }

    /// A harness over `store` (principals are put again, with the same tokens).
    pub async fn over(store: Arc<dyn Store>, limits: Limits) -> Harness {
        let clock = Arc::new(FixedClock::at_day(Day::parse(TODAY).unwrap()));
        let state = AppState::open(store.clone(), clock.clone(), limits)
            .await
            .unwrap();
        let alice = alice().to_string();
        let bob = bob().to_string();
        let principals = [
            (principal("admin", Role::Admin, None, &[]), ADMIN),
            (
                principal(
                    "court",
                    Role::Provider,
                    Some(COURT_ID),
                    &[
                        "judicial.judgment_default",
                        "judicial.judgment_fulfilled",
                        "market.administrative_penalty",
                        "tax.grade_d_assignment",
                    ],
                ),
                COURT,
            ),
            (
                principal(
                    "metro",
                    Role::Provider,
                    Some(METRO_ID),
                    &["transport.fare_evasion"],
                ),
                METRO,
            ),
            (
                principal("reviewer-1", Role::Reviewer, None, &[]),
                REVIEWER_1,
            ),
            (
                principal("reviewer-2", Role::Reviewer, None, &[]),
                REVIEWER_2,
            ),
            (
                principal("airline", Role::Agency, Some("airline"), &[]),
                AIRLINE,
            ),
            (principal("rail", Role::Agency, Some("rail"), &[]), RAIL),
            (principal("alice", Role::Subject, Some(&alice), &[]), ALICE),
            (principal("bob", Role::Subject, Some(&bob), &[]), BOB),
            (principal("auditor", Role::Auditor, None, &[]), AUDITOR),
        ];
        for (principal, token) in principals {
            store
                .put_principal(&principal, &hash_token(token), Vec::new())
                .await
                .unwrap();
        }
        Harness {
            app: app(state.clone()),
            state,
            store,
            clock,
            memory: None,
        }
    }

    /// Sends a request through the router.
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{uri} answered 500: {text}"
        );
        assert_eq!(self.state.panics(), 0, "a handler panicked");
        Reply {
            status,
            content_type,
            text,
        }
    }

    pub async fn get(&self, uri: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, uri, token, None, Body::empty())
            .await
    }

    /// The entries with `action` in `subject`'s access log, as the subject
    /// reads it with its `token`.
    pub async fn logged(&self, token: &str, subject: SubjectId, action: &str) -> Vec<Value> {
        let log = self
            .get(&format!("/v1/subjects/{subject}/access-log"), Some(token))
            .await
            .expect(StatusCode::OK)
            .json();
        log["entries"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["action"] == action)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn post_json(&self, uri: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send(
            Method::POST,
            uri,
            token,
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    /// Sends NDJSON lines to `/v1/records`.
    /// The status of each item of `lines` ingested as `token` (the answer
    /// must be 200).
    pub async fn ingested<S: AsRef<str>>(&self, token: &str, lines: &[S]) -> Vec<String> {
        let reply = self.ingest(token, lines).await.expect(StatusCode::OK);
        Harness::statuses(&reply)
    }

    pub async fn ingest<S: AsRef<str>>(&self, token: &str, lines: &[S]) -> Reply {
        let lines: Vec<&str> = lines.iter().map(AsRef::as_ref).collect();
        let body = lines.join("\n");
        self.send(
            Method::POST,
            "/v1/records",
            Some(token),
            Some("application/x-ndjson"),
            body,
        )
        .await
    }

    /// Statuses of an ingest reply, in order.
    pub fn statuses(reply: &Reply) -> Vec<String> {
        let json = reply.json();
        json["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_string())
            .collect()
    }

    /// Whether `measure` applies to `subject`, asked by `agency`.
    pub async fn applies(&self, agency: &str, subject: SubjectId, measure: &str) -> bool {
        let uri = format!("/v1/decisions?subject={subject}&measure={measure}&purpose=test");
        let reply = self.get(&uri, Some(agency)).await.expect(StatusCode::OK);
        reply.json()["applies"].as_bool().unwrap()
    }
}

/// The decision an airline or railway asks for at a ticket sale.
pub fn ticket_sale(subject: SubjectId, measure: &str) -> String {
    format!("/v1/decisions?subject={subject}&measure={measure}&purpose=ticket_sale")
}

/// A judgment default by the Beijing court: serious, puts the subject on
/// the judgment defaulters list (which needs review).
pub fn judgment_default(id: &str, subject: SubjectId, decided: &str) -> String {
    json!({
        "provider": COURT_ID, "id": id, "subject": subject.to_string(), "type": "judicial.judgment_default",
        "occurred_at": decided, "decided_at": decided,
        "fields": {"case_no": format!("(2026) Jing 01 Zhi {id}"), "amount_yuan": 52000},
        "document": format!("court decision {id}")
    })
    .to_string()
}

/// A fare evasion by the Shanghai metro: puts a person on the rail ban (no review).
pub fn fare_evasion(id: &str, subject: SubjectId, decided: &str) -> String {
    json!({
        "provider": METRO_ID, "id": id, "subject": subject.to_string(), "type": "transport.fare_evasion",
        "occurred_at": decided, "decided_at": decided, "fields": {"station": "Xujiahui"}
    })
    .to_string()
}

/// An administrative penalty of a company: public for three years.
pub fn admin_penalty(id: &str, subject: SubjectId, decided: &str) -> String {
    json!({
        "provider": COURT_ID, "id": id, "subject": subject.to_string(), "type": "market.administrative_penalty",
        "occurred_at": decided, "decided_at": decided, "fields": {"decision_no": format!("penalty {id}"), "penalty_yuan": 20000}
    })
    .to_string()
}

/// Approves the record `provider/id` as `reviewer`.
pub async fn approve(h: &Harness, reviewer: &str, provider: &str, id: &str) -> Reply {
    let body = json!({"key": {"item": "record", "provider": provider, "id": id}});
    h.post_json("/v1/review/approve", Some(reviewer), &body)
        .await
}

/// A tax grade D of a company: puts it on the (non-public) tax_grade_d list.
pub fn grade_d(id: &str, subject: SubjectId, decided: &str) -> String {
    json!({
        "provider": COURT_ID, "id": id, "subject": subject.to_string(), "type": "tax.grade_d_assignment",
        "occurred_at": decided, "decided_at": decided, "fields": {"reason": "invoice fraud"}
    })
    .to_string()
}

/// The token of the civil affairs bureau, a provider of honours (put by
/// [`make_exemplary`]).
pub const HONOURS: &str = "token-honours-000000000000000";

/// A national, provincial… honour conferred on `subject` on 2026-05-04.
pub fn honour(id: &str, subject: SubjectId, level: &str) -> String {
    json!({"provider": "civil.affairs", "id": id, "subject": subject.to_string(),
           "type": "positive.honour", "occurred_at": "2026-05-04", "decided_at": "2026-05-04",
           "fields": {"level": level}})
    .to_string()
}

/// `subject` grants its consent to scoring, with its own `token`, on the
/// registry's day.
pub async fn consents(h: &Harness, subject: SubjectId, token: &str) {
    h.post_json(
        &format!("/v1/subjects/{subject}/consent"),
        Some(token),
        &json!({"granted": true}),
    )
    .await
    .expect(StatusCode::OK);
}

/// Registers the civil affairs bureau ([`HONOURS`]); then makes each of
/// `subjects` grade AAA under the default rulebook: it consents to scoring
/// (with a subject token of its own) and is conferred a national and a
/// provincial honour (1000 + 30 + 20 points).
pub async fn make_exemplary(h: &Harness, subjects: &[SubjectId]) {
    let honours = principal(
        "civil-affairs",
        Role::Provider,
        Some("civil.affairs"),
        &["positive.honour"],
    );
    h.store
        .put_principal(&honours, &hash_token(HONOURS), Vec::new())
        .await
        .unwrap();
    let mut lines = Vec::new();
    for subject in subjects {
        let scope = subject.to_string();
        let token = format!("token-subject-{subject}");
        let own = principal(
            &format!("subject-{subject}"),
            Role::Subject,
            Some(&scope),
            &[],
        );
        h.store
            .put_principal(&own, &hash_token(&token), Vec::new())
            .await
            .unwrap();
        consents(h, *subject, &token).await;
        lines.push(honour(&format!("honour-{subject}-1"), *subject, "national"));
        lines.push(honour(
            &format!("honour-{subject}-2"),
            *subject,
            "provincial",
        ));
    }
    h.ingest(HONOURS, &lines).await.expect(StatusCode::OK);
}

/// Installs the rulebook `text` as the operator.
pub async fn put_rulebook(h: &Harness, text: String) -> Reply {
    h.send(
        Method::PUT,
        "/v1/admin/rulebook",
        Some(ADMIN),
        Some("application/toml"),
        text,
    )
    .await
}

/// The text of the rulebook in force.
pub async fn rulebook_text(h: &Harness) -> String {
    h.get("/v1/rulebook", None).await.json()["text"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `rulebook` as `version`.
pub fn with_version(rulebook: &str, version: &str) -> String {
    let line = rulebook
        .lines()
        .find(|l| l.starts_with("version = "))
        .unwrap();
    rulebook.replacen(line, &format!("version = \"{version}\""), 1)
}

/// `rulebook` as `version`, with rail ticket bans of `days` at most (180
/// in the default).
pub fn with_bans_of(rulebook: &str, days: u32, version: &str) -> String {
    let draft = with_version(rulebook, version).replace(
        "duration_max = \"P180D\"",
        &format!("duration_max = \"P{days}D\""),
    );
    assert!(draft.contains(&format!("\"P{days}D\"")) && draft.contains(version));
    draft
}

/// The rulebook in force with rail ticket bans of 30 days at most, as a
/// new version: its label and text.
pub async fn thirty_day_bans(h: &Harness) -> (&'static str, String) {
    let text = with_bans_of(&rulebook_text(h).await, 30, "2026.3-p30");
    ("socred-default@2026.3-p30", text)
}

/// The last day of the rail ticket ban in `file` (a subject's file).
pub fn rail_ban_until(file: &Value) -> String {
    let ban = file["list_entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["list"] == "rail_ticket_ban")
        .cloned()
        .unwrap_or_else(|| panic!("no ban: {file}"));
    ban["until"].as_str().unwrap().to_string()
}
