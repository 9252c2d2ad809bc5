//! The web portal in a real browser: Debian's `chromium`, headless, driven
//! through `chromedriver` (W3C WebDriver) against the server on a real
//! socket over a SQLite store. The public reads the lists and a company's
//! credit; a subject signs in, reads its file, the explanation and its
//! access log (which shows the portal's own reads), grants consent,
//! objects to a record, applies for its repair and signs out; a token for
//! another subject is refused; text a provider sent is shown as text,
//! never run as markup; a reviewer approves a record, upholds one
//! objection and corrects another at the review desk; an operator reads
//! the dashboard, registers a provider, revokes it and is shown a
//! rulebook's problems by line; an auditor reads the audit log and checks
//! its chain.
//!
//! Needs `chromium` and `chromedriver` (`scripts/ensure-browser` installs
//! them); without them each test says so loudly and passes, unless
//! `SOCRED_REQUIRE_BROWSER=1` (as in CI).
//!
//! The WebDriver calls are a handful of JSON requests, made with the
//! server's own minimal client: a WebDriver client crate would bring some
//! sixty crates (URL parsing, Unicode tables, cookies) into the build for
//! them.

use std::net::{SocketAddr, TcpListener};

use socred_server::listen::Timeouts;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{json, Value};
use socred_core::SubjectId;
use socred_server::client::Connection;
use socred_server::Limits;
use socred_store::Store;
use socred_store_sqlite::SqliteStore;

use crate::harness::*;

/// Riders put on the rail ban, past the portal's page of 50.
const RIDERS: u16 = 60;

/// How long a page may take to show what a test waits for.
const WAIT: Duration = Duration::from_secs(15);

/// A `chromedriver` process on a free loopback port.
struct Driver {
    process: Child,
    addr: SocketAddr,
    browser: PathBuf,
    profile: tempfile::TempDir,
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

impl Driver {
    /// Starts chromedriver, or says why it cannot.
    fn start() -> Result<Driver, String> {
        let browser = on_path(&["chromium", "chromium-browser", "google-chrome"])
            .ok_or("no chromium on PATH")?;
        let driver = on_path(&["chromedriver"]).ok_or("no chromedriver on PATH")?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let process = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("chromedriver does not start: {e}"))?;
        let mut driver = Driver {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            browser,
            profile: tempfile::tempdir().map_err(|e| e.to_string())?,
        };
        let started = Instant::now();
        loop {
            let ready = Connection::open(driver.addr)
                .and_then(|mut c| c.send("GET", "/status", &[], b""))
                .ok()
                .and_then(|r| r.json().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return Ok(driver);
            }
            if started.elapsed() > WAIT {
                let _ = driver.process.kill();
                return Err("chromedriver never became ready".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A new headless browser session.
    fn session(&self) -> Session<'_> {
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.browser,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--window-size=1280,900",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ]
            }
        }}});
        let reply = call(self.addr, "POST", "/session", Some(&capabilities));
        let id = reply["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {reply}"))
            .to_string();
        let session = Session { driver: self, id };
        session.post("timeouts", &json!({"implicit": WAIT.as_millis() as u64}));
        session
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// One WebDriver command; panics with the driver's own message on error.
fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(Value::to_string).unwrap_or_default();
    let headers = [("content-type", "application/json")];
    let response = Connection::open(addr)
        .and_then(|mut c| c.send(method, path, &headers, body.as_bytes()))
        .unwrap_or_else(|e| panic!("chromedriver: {method} {path}: {e}"));
    let reply = response.json().unwrap_or(Value::Null);
    assert_eq!(
        response.status, 200,
        "chromedriver refused {method} {path}: {reply}"
    );
    reply["value"].clone()
}

/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Session<'d> {
    driver: &'d Driver,
    id: String,
}

impl Session<'_> {
    fn post(&self, command: &str, body: &Value) -> Value {
        let path = format!("/session/{}/{command}", self.id);
        call(self.driver.addr, "POST", &path, Some(body))
    }

    fn get(&self, command: &str) -> Value {
        let path = format!("/session/{}/{command}", self.id);
        call(self.driver.addr, "GET", &path, None)
    }

    fn open(&self, url: &str) {
        self.post("url", &json!({ "url": url }));
    }

    /// The element `css` selects, waiting for it to appear.
    fn find(&self, css: &str) -> String {
        let found = self.post("element", &json!({"using": "css selector", "value": css}));
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element for `{css}`: {found}"))
            .to_string()
    }

    fn text(&self, css: &str) -> String {
        let element = self.find(css);
        self.get(&format!("element/{element}/text"))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the text of `css` satisfies `ok`, and returns it.
    fn text_when(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let text = self.script(&format!(
                "const e = document.querySelector({}); return e ? e.innerText : null;",
                Value::from(css)
            ));
            if let Some(text) = text.as_str() {
                if ok(text) {
                    return text.to_string();
                }
            }
            assert!(
                started.elapsed() < WAIT,
                "`{css}` never showed {what}; it shows {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `script` returns `expected`.
    fn until(&self, what: &str, script: &str, expected: Value) {
        let started = Instant::now();
        loop {
            let got = self.script(script);
            if got == expected {
                return;
            }
            assert!(
                started.elapsed() < WAIT,
                "never saw {what}: {got} where {expected} was awaited"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.post(
            &format!("element/{element}/value"),
            &json!({ "text": text }),
        );
    }

    fn clear(&self, css: &str) {
        let element = self.find(css);
        self.post(&format!("element/{element}/clear"), &json!({}));
    }

    fn click(&self, css: &str) {
        let element = self.find(css);
        self.post(&format!("element/{element}/click"), &json!({}));
    }

    fn script(&self, body: &str) -> Value {
        self.post("execute/sync", &json!({"script": body, "args": []}))
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.id);
        let _ =
            Connection::open(self.driver.addr).and_then(|mut c| c.send("DELETE", &path, &[], b""));
    }
}

/// Starts chromedriver, or returns None after saying why the test cannot run.
fn driver_or_skip() -> Option<Driver> {
    match Driver::start() {
        Ok(driver) => Some(driver),
        Err(why) => {
            assert!(
                std::env::var_os("SOCRED_REQUIRE_BROWSER").is_none(),
                "a browser is required: {why}"
            );
            eprintln!("\n########## SKIPPED: no headless browser ({why}) ##########\n");
            None
        }
    }
}

/// A registry over SQLite, served on a real loopback socket, with alice a
/// judgment defaulter (approved), the company acme penalised, and bob
/// holding a record whose text looks like markup.
async fn served_registry(
    dir: &std::path::Path,
) -> (Harness, SocketAddr, tokio::task::JoinHandle<()>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).unwrap());
    let h = Harness::over(store, Limits::default()).await;
    h.ingest(
        COURT,
        &[
            judgment_default("jd-1", alice(), "2026-05-02"),
            admin_penalty("pen-1", acme(), "2026-04-10"),
        ],
    )
    .await
    .expect(StatusCode::OK);
    approve(&h, REVIEWER_1, COURT_ID, "jd-1")
        .await
        .expect(StatusCode::OK);
    let markup = json!({
        "provider": METRO_ID, "id": "fe-markup", "subject": bob().to_string(),
        "type": "transport.fare_evasion", "occurred_at": "2026-05-20", "decided_at": "2026-05-20",
        "fields": {"station": "<img src=x onerror=\"document.title='pwned'\">"}
    })
    .to_string();
    h.ingest(METRO, &[markup]).await.expect(StatusCode::OK);
    // Bob has consented to scoring since New Year's Day 2024, has a record
    // in his file since 2023 (a fare evaded, which gives no points), and
    // has gained nothing since: the yearly expectation of the default
    // rulebook takes points for 2024 and for 2025.
    h.ingest(METRO, &[fare_evasion("fe-2023", bob(), "2023-06-01")])
        .await
        .expect(StatusCode::OK);
    let today = socred_server::Clock::now_ms(&*h.clock);
    h.clock.set_ms(1_704_067_200_000);
    consents(&h, bob(), BOB).await;
    h.clock.set_ms(today);
    // More riders on the rail ban than one page of the list shows.
    let riders: Vec<String> = (1..=RIDERS)
        .map(|n| {
            let rider = SubjectId::person(310104, 1985, 3, 1, n).unwrap();
            fare_evasion(&format!("fe-rider-{n}"), rider, "2026-05-25")
        })
        .collect();
    h.ingest(METRO, &riders).await.expect(StatusCode::OK);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.app.clone();
    let server = tokio::spawn(async move {
        let forever = std::future::pending();
        socred_server::listen::serve(listener, app, Timeouts::default(), forever).await;
    });
    (h, addr, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_reads_lists_and_a_company_in_a_browser() {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (h, addr, server) = served_registry(dir.path()).await;
    // Dora is graded AAA, and named in the weekly red list's edition.
    let dora = SubjectId::person(320102, 1975, 8, 9, 21).unwrap();
    make_exemplary(&h, &[dora]).await;
    socred_server::publish_due(&h.state).await.unwrap();
    // Acme objects to its penalty: the public page shows the statement.
    let principal = json!({"id": "acme", "name": "Acme", "role": "subject",
        "scope": acme().to_string()});
    let issued = h
        .post_json("/v1/admin/principals", Some(ADMIN), &principal)
        .await
        .expect(StatusCode::CREATED)
        .json();
    h.post_json(
        &format!("/v1/subjects/{}/objections", acme()),
        issued["token"].as_str(),
        &json!({"record": {"provider": COURT_ID, "id": "pen-1"},
            "statement": "The fine was paid on the day."}),
    )
    .await
    .expect(StatusCode::OK);
    let (alice, acme, bob_id) = (alice().to_string(), acme().to_string(), bob().to_string());
    // Lists show persons without their month and day of birth.
    let (alice_public, bob_public) = (crate::harness::alice().public_form(), bob().public_form());
    let dora_public = dora.public_form();
    tokio::task::spawn_blocking(move || {
        let browser = driver.session();
        let base = format!("http://{addr}/");

        browser.open(&base);
        browser.click("#nav-lists");
        let lists = browser.text_when("#lists", "the public lists", |t| {
            t.contains("List of dishonest judgment defaulters")
        });
        assert!(!lists.contains("tax_grade_d"), "{lists}");
        assert!(
            lists.contains("red list, weekly (edition of 2026-06-01)"),
            "{lists}"
        );

        browser.click("#lists a[href='#/lists/judgment_defaulters']");
        let members = browser.text_when("#members", "alice", |t| t.contains(&alice_public));
        assert!(members.contains("2026-05-02"), "{members}");
        assert!(!members.contains(&alice), "{members}");

        // The rail ban has bob and the riders: one page, then the rest.
        browser.open(&format!("{base}#/lists/rail_ticket_ban"));
        let rows = "return document.querySelectorAll('#members tbody tr').length;";
        // (The defaulters' table stays until the new list has loaded.)
        browser.until("the first page", rows, json!(50));
        browser.click("#more");
        browser.until("the second page", rows, json!(usize::from(RIDERS) + 1));
        let members = browser.text("#members");
        assert!(members.contains(&bob_public), "{members}");
        assert!(!members.contains(&bob_id), "{members}");
        assert_eq!(
            browser.script("return document.getElementById('more').hidden;"),
            json!(true)
        );

        // The red list names Dora in the edition of its publication day.
        browser.open(&format!("{base}#/lists/exemplary_residents"));
        let members = browser.text_when("#members", "dora", |t| t.contains(&dora_public));
        assert!(
            members.contains("2026-06-08"),
            "until the next edition: {members}"
        );
        let note = browser.text("#list-note");
        assert!(note.contains("edition of 2026-06-01"), "{note}");

        browser.click("#nav-company");
        browser.type_into("#uscc", &acme);
        browser.click("#company-form button");
        let company = browser.text_when("#company", "acme's grade", |t| t.contains(&acme));
        assert!(company.contains("Grade"), "{company}");
        let records = browser.text("#company-records");
        assert!(records.contains("penalty pen-1"), "{records}");
        assert!(
            records.contains("Disputed by the company: The fine was paid on the day."),
            "{records}"
        );
        // The same code looked up again is read again.
        let reads = "return performance.getEntriesByType('resource')\
            .filter(e => e.name.includes('/v1/public/companies/')).length;";
        let before = browser.script(reads);
        browser.click("#company-form button");
        browser.until("a second read", reads, json!(before.as_u64().unwrap() + 1));

        // A malformed escape in the address is reported, not thrown.
        browser.open(&format!("{base}#/company/%E0%A4%A"));
        let refused = browser.text_when(".error", "the refusal", |t| !t.is_empty());
        assert!(refused.contains("invalid_address"), "{refused}");

        // The rulebook in force, as text.
        browser.click("#nav-rulebook");
        let label = browser.text_when("#rulebook-label", "the label", |t| !t.is_empty());
        assert!(label.starts_with("socred-default@"), "{label}");
        assert!(browser.text("#rulebook-text").contains("[[measure]]"));

        // A person's identifier is not a company: the API's refusal shows.
        browser.open(&format!("{base}#/company/{alice}"));
        let refused = browser.text_when(".error", "the refusal", |t| !t.is_empty());
        assert!(refused.contains("not_an_organisation"), "{refused}");
        drop(browser);
        drop(driver);
    })
    .await
    .unwrap();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_reads_its_own_file_in_a_browser() {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (h, addr, server) = served_registry(dir.path()).await;
    // 01:30 in Beijing on the harness's day, still the day before in UTC:
    // the access log shows the time in Beijing, on the registry's day.
    h.clock.set_ms(1_780_248_600_000);
    let (alice_id, bob_id) = (alice().to_string(), bob().to_string());
    tokio::task::spawn_blocking(move || {
        let browser = driver.session();
        browser.open(&format!("http://{addr}/#/me"));
        let form = browser.text_when("#view", "the sign-in form", |t| t.contains("Sign in"));
        assert!(!form.contains("null"), "{form}");

        // Bob's token does not open alice's file: the form comes back
        // with the API's reason.
        browser.type_into("#identity", &alice_id);
        browser.type_into("#token", BOB);
        browser.click("#sign-in-submit");
        let refused = browser.text_when(".error", "the refusal", |t| !t.is_empty());
        assert!(refused.contains("not_your_file"), "{refused}");
        browser.find("#sign-in");

        browser.type_into("#identity", &alice_id.to_lowercase());
        browser.type_into("#token", ALICE);
        browser.click("#sign-in-submit");
        let lists = browser.text_when("#lists", "the defaulter list", |t| {
            t.contains("judgment_defaulters")
        });
        assert_eq!(lists, "judgment_defaulters");
        assert!(browser.text("#measures").contains("no_air_travel"));
        // Alice never consented to scoring: no score, until she grants it.
        assert_eq!(browser.text("#consent"), "not granted");
        assert_eq!(browser.text("#score"), "not scored");
        let entries = browser.text("#list-entries");
        assert!(entries.contains("court.beijing-1/jd-1"), "{entries}");
        let log = browser.text_when("#access-log", "the portal's read", |t| {
            t.contains("read_file")
        });
        assert!(log.contains("own_file"), "{log}");
        assert!(log.contains("2026-06-01 01:30:00 (UTC+8)"), "{log}");

        browser.click("#explain");
        let explanation = browser.text_when("#explanation", "the explanation", |t| {
            t.contains("Credit file of")
        });
        assert!(explanation.contains(&alice_id), "{explanation}");

        browser.click("#consent-toggle");
        browser.text_when("#consent", "her consent", |t| t == "granted");
        let score = browser.text("#score");
        assert!(
            score.parse::<i64>().is_ok(),
            "scored once she consents: {score}"
        );

        // A statement of 1,400 Chinese characters is 4,200 bytes, over the
        // API's 4,096: the form says so and sends nothing.
        browser.type_into("#objection-statement", &"债".repeat(1400));
        let said = browser
            .script("return document.getElementById('objection-statement').validationMessage;");
        assert!(
            said.as_str().is_some_and(|s| s.contains("4096 bytes")),
            "{said}"
        );
        browser.click("#objection-submit");
        assert!(
            browser
                .text("#open-items")
                .contains("No objection of yours is open"),
            "an objection was sent"
        );
        browser.clear("#objection-statement");
        // She objects to the judgment default; the objection is open.
        browser.type_into("#objection-statement", "The debt was paid on 2026-05-10.");
        browser.click("#objection-submit");
        let open = browser.text_when("#open-items", "her objection", |t| {
            t.contains("court.beijing-1/jd-1")
        });
        assert!(
            open.contains("2026-06-21") && open.contains("within time"),
            "{open}"
        );
        assert!(open.contains("The debt was paid on 2026-05-10."), "{open}");
        let records = browser.text("#records");
        assert!(records.contains("disputed"), "{records}");
        assert!(
            browser.script("return document.getElementById('objection-form') === null;")
                == json!(true)
        );

        // And applies for its repair: a reviewer will decide.
        browser.type_into("#repair-correction", "Paid in full; receipt 2026-0042.");
        browser.type_into("#repair-commitment", "I will honour every judgment.");
        browser.click("#repair-submit");
        let notice = browser.text_when("#repair-notice", "the notice", |t| !t.is_empty());
        assert!(notice.contains("waits for a reviewer"), "{notice}");
        // The file, read again, shows the application waiting, and offers
        // no second one for the same record.
        let pending = browser.text("#pending");
        assert!(
            pending.contains("your repair application") && pending.contains("court.beijing-1/jd-1"),
            "{pending}"
        );
        assert!(
            pending.contains("Paid in full; receipt 2026-0042."),
            "{pending}"
        );
        assert_eq!(
            browser.script("return document.getElementById('repair-form') === null;"),
            json!(true)
        );

        browser.click("#sign-out");
        browser.find("#sign-in");
        let stored = browser.script("return sessionStorage.length;");
        assert_eq!(stored, json!(0), "signing out forgets the token");

        // Bob's file holds text that looks like markup: it shows as text.
        browser.type_into("#identity", &bob_id);
        browser.type_into("#token", BOB);
        browser.click("#sign-in-submit");
        let records = browser.text_when("#records", "bob's record", |t| t.contains("fe-markup"));
        assert!(records.contains("<img src=x"), "{records}");
        let images = browser.script("return document.querySelectorAll('img').length;");
        assert_eq!(images, json!(0), "a field's text became markup");
        // The points his unmet expectations took, each with its basis.
        let penalties = browser.text("#penalties");
        assert!(penalties.contains("rongcheng / yearly_gain"), "{penalties}");
        assert!(penalties.contains("2024-01-01"), "{penalties}");
        assert!(penalties.contains("2025-01-01"), "{penalties}");
        assert!(penalties.contains("-5"), "{penalties}");
        assert!(penalties.contains("Illustrative only"), "{penalties}");
        let title = browser.script("return document.title;");
        assert_eq!(title, json!("socred — credit registry"));
        drop(browser);
        drop(driver);
    })
    .await
    .unwrap();
    // Every read the page made is in the audit log, by alice as herself.
    let log = h.store.audit(0, 1000).await.unwrap();
    let reads: Vec<_> = log
        .iter()
        .filter(|e| e.entry.actor == "alice" && e.entry.subject == Some(alice()))
        .map(|e| e.entry.action.as_str())
        .collect();
    assert!(reads.contains(&"read_file"), "{reads:?}");
    assert!(reads.contains(&"read_explanation"), "{reads:?}");
    assert!(reads.contains(&"consent"), "{reads:?}");
    assert!(reads.contains(&"object"), "{reads:?}");
    assert!(reads.contains(&"apply_repair"), "{reads:?}");
    // The application waits in the reviewers' queue, with its text.
    let rulebook = h.state.current().rulebook().clone();
    let pending = h.store.pending(&rulebook, None, 100).await.unwrap();
    let applied = pending
        .iter()
        .find(|p| matches!(&p.key, socred_store::ItemKey::Fact(k) if k.kind == "repaired"))
        .expect("the repair application waits for review");
    assert_eq!(applied.submitted_by, "alice");
    let socred_store::Item::Fact { fact, .. } = &applied.item else {
        panic!("a repair application is a fact: {:?}", applied.item)
    };
    assert!(
        matches!(&fact.kind, socred_core::FactKind::Repaired { statement: Some(text), .. }
            if text.contains("Paid in full; receipt 2026-0042.") && text.contains("I will honour every judgment.")),
        "{:?}",
        fact.kind
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_decides_at_the_review_desk_in_a_browser() {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (h, addr, server) = served_registry(dir.path()).await;
    // Alice objects to her judgment default; a second one, about carol,
    // waits for review.
    h.post_json(
        &format!("/v1/subjects/{}/objections", alice()),
        Some(ALICE),
        &json!({"record": {"provider": COURT_ID, "id": "jd-1"}, "statement": "Paid before the ruling."}),
    )
    .await
    .expect(StatusCode::OK);
    h.ingest(COURT, &[judgment_default("jd-2", carol(), "2026-05-03")])
        .await
        .expect(StatusCode::OK);
    // The reviewer's own repair of alice's judgment waits for another one.
    let repair = json!({"fact": "repaired", "provider": COURT_ID, "record": "jd-1",
        "subject": alice().to_string(), "at": TODAY, "by": "reviewer-2"});
    let sent = h
        .ingest(REVIEWER_2, &[repair.to_string()])
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        Harness::statuses(&sent),
        ["pending_review"],
        "{}",
        sent.text
    );
    // Bob objects to his fare evasion, whose station is a piece of markup.
    h.post_json(
        &format!("/v1/subjects/{}/objections", bob()),
        Some(BOB),
        &json!({"record": {"provider": METRO_ID, "id": "fe-markup"}, "statement": "Wrong station."}),
    )
    .await
    .expect(StatusCode::OK);
    let (alice_id, carol_id) = (alice().to_string(), carol().to_string());
    tokio::task::spawn_blocking(move || {
        let browser = driver.session();
        browser.open(&format!("http://{addr}/#/review"));

        // An agency's token opens no review desk.
        browser.type_into("#review-token", AIRLINE);
        browser.click("#review-sign-in-submit");
        let refused = browser.text_when(".error", "the refusal", |t| !t.is_empty());
        assert!(refused.contains("not a reviewer"), "{refused}");

        browser.type_into("#review-token", REVIEWER_2);
        browser.click("#review-sign-in-submit");
        let pending = browser.text_when("#pending", "carol's record", |t| t.contains(&carol_id));
        assert!(
            pending.contains("judicial.judgment_default court.beijing-1/jd-2"),
            "{pending}"
        );
        let objections = browser.text("#objections");
        assert!(
            objections.contains(&alice_id) && objections.contains("Paid before the ruling."),
            "{objections}"
        );

        // Its own submission offers no decision: another reviewer decides.
        assert!(pending.contains("Your own submission"), "{pending}");
        let buttons = browser.script(
            "return document.querySelectorAll('#pending button[id^=\"approve-\"]').length;",
        );
        assert_eq!(buttons, json!(1), "one decision to make: carol's record");

        browser.click("#pending button[id^='approve-']");
        let said = browser.text_when("#review-status", "the approval", |t| !t.is_empty());
        assert!(
            said.starts_with("Approved: judicial.judgment_default"),
            "{said}"
        );
        browser.text_when("#pending", "only its own submission", |t| {
            !t.contains(&carol_id) && t.contains("Your own submission")
        });

        // Bob's record shows its fields as text, markup included.
        let objections = browser.text("#objections");
        assert!(objections.contains("station: <img src=x"), "{objections}");
        let images = browser.script("return document.querySelectorAll('img').length;");
        assert_eq!(images, json!(0), "a field's text became markup");

        // Alice's comes first (identifier order): it is upheld.
        browser.click("#upheld-0");
        let said = browser.text_when("#review-status", "the resolution", |t| t.contains("upheld"));
        assert!(said.contains("court.beijing-1/jd-1"), "{said}");

        // Bob's is resolved by correcting the station.
        browser.text_when("#objections", "bob's objection alone", |t| {
            !t.contains(&alice_id) && t.contains("fe-markup")
        });
        let shown = "return getComputedStyle(document.getElementById('correction-0')).display;";
        assert_eq!(
            browser.script(shown),
            json!("none"),
            "hidden until asked for"
        );
        browser.click("#correct-0");
        assert_ne!(browser.script(shown), json!("none"));
        browser.clear("#correct-0-station");
        browser.type_into("#correct-0-station", "Xujiahui");
        browser.click("#corrected-0");
        let said = browser.text_when("#review-status", "the correction", |t| {
            t.contains("corrected")
        });
        assert!(said.contains("metro.shanghai/fe-markup"), "{said}");
        browser.text_when("#objections", "no open objection", |t| {
            t.contains("No objection is open")
        });

        // More waiting than one page: the desk shows them a page at a time.
        let more: Vec<String> = (1..=55)
            .map(|n| {
                let debtor = SubjectId::person(310104, 1980, 1, 2, n).unwrap();
                judgment_default(&format!("jd-more-{n}"), debtor, "2026-05-10")
            })
            .collect();
        let sent = Connection::open(addr)
            .and_then(|mut c| {
                c.send(
                    "POST",
                    "/v1/records",
                    &[
                        ("content-type", "application/x-ndjson"),
                        ("authorization", &format!("Bearer {COURT}")),
                    ],
                    more.join("\n").as_bytes(),
                )
            })
            .unwrap();
        assert_eq!(sent.status, 200, "{}", sent.text());
        browser.open(&format!("http://{addr}/#/"));
        browser.open(&format!("http://{addr}/#/review"));
        let rows = "return document.querySelectorAll('#pending tbody tr').length;";
        browser.until("the first page of the queue", rows, json!(50));
        browser.click("#pending-more");
        // The 55 and the reviewer's own repair.
        browser.until("the whole queue", rows, json!(56));
        assert_eq!(
            browser.script("return document.getElementById('pending-more').hidden;"),
            json!(true)
        );
        drop(browser);
        drop(driver);
    })
    .await
    .unwrap();
    // The registry agrees: carol is listed, alice's objection is resolved
    // by the reviewer who signed in.
    assert!(h.applies(AIRLINE, carol(), "no_air_travel").await);
    let file = h
        .get(&format!("/v1/subjects/{}", alice()), Some(ALICE))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(file["open_items"], json!([]), "{file}");
    // Bob's record now carries the corrected station, and nothing is open.
    let file = h
        .get(&format!("/v1/subjects/{}", bob()), Some(BOB))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(file["open_items"], json!([]), "{file}");
    let record = file["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "fe-markup")
        .cloned()
        .unwrap_or_else(|| panic!("no fe-markup: {file}"));
    assert_eq!(record["fields"], json!({"station": "Xujiahui"}), "{record}");
    let log = h.store.audit(0, 1000).await.unwrap();
    assert!(log
        .iter()
        .any(|e| e.entry.actor == "reviewer-2" && e.entry.action == "approve"));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_and_an_auditor_work_at_their_desks_in_a_browser() {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (h, addr, server) = served_registry(dir.path()).await;
    let counts = h.store.counts().await.unwrap();
    let arrears = json!({"provider": "bank.national", "id": "a-1", "subject": alice().to_string(),
        "type": "commercial.bank_arrears", "occurred_at": "2026-05-01", "decided_at": "2026-05-02",
        "fields": {"cycles": 2}})
    .to_string();
    let line = arrears.clone();
    let alice_id = alice().to_string();
    let clock = h.clock.clone();
    let token = tokio::task::spawn_blocking(move || {
        let browser = driver.session();
        browser.open(&format!("http://{addr}/#/operator"));
        // A reviewer's token opens no operator's desk.
        browser.type_into("#operator-token", REVIEWER_1);
        browser.click("#operator-sign-in-submit");
        let refused = browser.text_when(".error", "the refusal", |t| !t.is_empty());
        assert!(refused.contains("not an operator"), "{refused}");

        browser.type_into("#operator-token", ADMIN);
        browser.click("#operator-sign-in-submit");
        let records = browser.text_when("#board-records", "the dashboard", |t| !t.is_empty());
        // Figures are written with thousands separators.
        let figure = |n: u64| {
            let digits = n.to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            out
        };
        assert_eq!(records, figure(counts.records));
        assert_eq!(browser.text("#board-subjects"), figure(counts.subjects));
        assert_eq!(browser.text("#board-rulebook"), "socred-default@2026.3");
        assert_eq!(browser.text("#board-failed"), "0");

        // Registers a bank as a provider of bank arrears: its token is
        // shown once.
        browser.type_into("#principal-id", "bank");
        browser.type_into("#principal-name", "National bank");
        browser.script("document.getElementById('principal-role').value = 'provider';");
        browser.type_into("#principal-scope", "bank.national");
        browser.type_into("#principal-record-types", "commercial.bank_arrears");
        browser.script("document.getElementById('principal-valid-until').value = '2099-12-31';");
        browser.click("#principal-submit");
        let token = browser.text_when("#issued-token", "the new token", |t| t.len() == 64);
        let principals = browser.text("#principals");
        assert!(principals.contains("National bank"), "{principals}");
        assert!(
            principals.contains("active until 2099-12-31"),
            "{principals}"
        );
        assert!(
            !principals.contains(&token),
            "a token is shown once, never listed"
        );

        // The token works, for what the bank was registered for.
        let bearer = format!("Bearer {token}");
        let sent = socred_server::client::request(
            addr,
            "POST",
            "/v1/records",
            &[
                ("authorization", &bearer),
                ("content-type", "application/x-ndjson"),
            ],
            line.as_bytes(),
        )
        .unwrap();
        assert_eq!(sent.status, 200, "{}", sent.text());
        assert!(sent.text().contains("\"stored\""), "{}", sent.text());

        // A rulebook that does not load: its problems, by line.
        browser.type_into("#rulebook-text", "[rulebook]\nid = \"broken\"\n");
        browser.click("#rulebook-submit");
        let problems = browser.text_when("#rulebook-problems", "the problems", |t| !t.is_empty());
        assert!(problems.contains("line "), "{problems}");
        assert!(browser.text("#operator-status").contains("does not load"));

        // What a draft would do before it is installed: with train-ticket
        // bans of three days, every rider's ban of May is over.
        let rulebook = socred_server::client::request(addr, "GET", "/v1/rulebook", &[], b"")
            .unwrap()
            .text();
        let rulebook: Value = serde_json::from_str(&rulebook).unwrap();
        let current = rulebook["text"]
            .as_str()
            .unwrap()
            .replace("duration_max = \"P180D\"", "duration_max = \"P3D\"")
            .replacen("version = \"2026.3\"", "version = \"2026.3-draft\"", 1);
        assert!(current.contains("P3D") && current.contains("2026.3-draft"));
        browser.script(&format!(
            "document.getElementById('rulebook-text').value = {};",
            serde_json::to_string(&current).unwrap()
        ));
        browser.click("#rulebook-impact");
        let said = browser.text_when("#operator-status", "the impact", |t| {
            t.contains("would change")
        });
        assert!(said.contains("socred-default@2026.3-draft"), "{said}");
        assert!(said.contains("Nothing was installed"), "{said}");
        let moves = browser.text("#impact-moves");
        let left = format!("list rail_ticket_ban: 0 would enter, {} would leave", RIDERS + 1);
        assert!(moves.contains(&left), "{moves}");
        // The draft stays in the form, to install next.
        let kept = browser.script("return document.getElementById('rulebook-text').value;");
        assert!(kept.as_str().unwrap_or("").contains("2026.3-draft"));
        assert_eq!(browser.text("#board-rulebook"), "socred-default@2026.3");

        // A visitor's token whose last day is today; on the next day the
        // desk, read again after the revocation, shows it expired.
        let admin = format!("Bearer {ADMIN}");
        let visitor = json!({"id": "visitor", "name": "Visitor", "role": "auditor", "valid_until": TODAY});
        let issued = socred_server::client::request(
            addr,
            "POST",
            "/v1/admin/principals",
            &[("authorization", &admin), ("content-type", "application/json")],
            visitor.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(issued.status, 201, "{}", issued.text());
        let today = socred_core::Day::parse(TODAY).unwrap();
        clock.set_day(today.add_days(1));
        browser.click("#revoke-bank");
        let said = browser.text_when("#operator-status", "the revocation", |t| {
            t.contains("Revoked")
        });
        assert!(said.contains("bank"), "{said}");
        let principals = browser.text("#principals");
        assert!(principals.contains("revoked"), "{principals}");
        assert!(
            principals.contains(&format!("expired (its last day was {TODAY})")),
            "{principals}"
        );
        clock.set_day(today);

        // A fare evasion of 2019, sent then and long past its retention
        // now, is erased when the operator asks, and the dashboard counts
        // the run.
        let old = fare_evasion("fe-2019", alice(), "2019-03-01");
        let metro = format!("Bearer {METRO}");
        clock.set_day(socred_core::Day::parse("2019-03-02").unwrap());
        let sent = socred_server::client::request(
            addr,
            "POST",
            "/v1/records",
            &[
                ("authorization", &metro),
                ("content-type", "application/x-ndjson"),
            ],
            old.as_bytes(),
        )
        .unwrap();
        clock.set_day(socred_core::Day::parse(TODAY).unwrap());
        assert!(sent.text().contains("\"stored\""), "{}", sent.text());
        browser.click("#erase-now");
        let erased = browser.text_when("#operator-status", "the erasure", |t| t.contains("Erased"));
        assert!(erased.contains(": 1 records and 0 facts"), "{erased}");
        let board = browser.text_when("#board-erasure", "the erasure count", |t| t.starts_with("1 runs"));
        assert!(board.contains("1 records"), "{board}");

        // The auditor's desk: the log, and the chain checked.
        browser.open(&format!("http://{addr}/#/audit"));
        browser.type_into("#audit-token", AUDITOR);
        browser.click("#audit-sign-in-submit");
        let log = browser.text_when("#audit-entries", "the log", |t| t.contains("ingest"));
        assert!(log.contains("admin"), "{log}");
        browser.click("#verify-chain");
        let chain = browser.text_when("#chain", "the verdict", |t| {
            t.contains("holds") || t.contains("broken")
        });
        assert!(chain.contains("The chain holds"), "{chain}");

        // One subject's entries; a bad identifier is answered with the
        // API's reason, and the auditor stays signed in.
        browser.type_into("#audit-subject", &alice_id);
        browser.click("#audit-filter-submit");
        let about = browser.text_when("h2", "the filtered log", |t| t.contains(&alice_id));
        assert!(about.starts_with("Audit log about"), "{about}");
        let rows = browser.script(
            "return [...document.querySelectorAll('#audit-entries tbody tr')].map(r => r.children[6].textContent);",
        );
        let subjects = rows.as_array().cloned().unwrap_or_default();
        assert!(!subjects.is_empty(), "alice's entries");
        assert!(subjects.iter().all(|s| *s == json!(alice_id)), "{subjects:?}");
        browser.clear("#audit-subject");
        browser.type_into("#audit-subject", "nobody");
        browser.click("#audit-filter-submit");
        let refused = browser.text_when(".error", "the refusal", |t| !t.is_empty());
        assert!(refused.contains("nobody"), "{refused}");
        assert_eq!(
            browser.script("return sessionStorage.getItem('socred.auditor') !== null;"),
            json!(true),
            "still signed in"
        );
        drop(browser);
        drop(driver);
        token
    })
    .await
    .unwrap();
    // Revoked at the desk: the bank's token no longer works.
    h.ingest(&token, &[&arrears])
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "invalid_token");
    let log = h.store.audit(0, 10_000).await.unwrap();
    for action in ["put_principal", "revoke"] {
        assert!(
            log.iter()
                .any(|e| e.entry.actor == "admin" && e.entry.action == action),
            "no {action} by the operator"
        );
    }
    server.abort();
}
