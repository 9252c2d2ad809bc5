//! `socred serve`: opens the registry's data directory (the embedded SQLite
//! store, created on first start with the default rulebook), listens, and
//! shuts down gracefully on SIGINT or SIGTERM: requests in flight finish,
//! and every acknowledged write is already durable.
//!
//! `--demo` fills an empty store with a synthetic city from `socred-sim`
//! and issues one token per role, printed with ready-to-run `curl` lines,
//! so that a newcomer can try every part of the API at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use socred_core::rulebook::ListKind;
use socred_core::{Day, SubjectId, SubjectKind};
use socred_schema::wire::{self, LineParser};
use socred_sim::GenConfig;
use socred_store::{
    hash_token, AuditDraft, Item, MemoryStore, Principal, ReviewNeed, Role, Store, Submission,
};
use tokio::sync::mpsc;

use crate::clock::SystemClock;
use crate::state::{AppState, Current, Limits};
use crate::token::new_token;

/// `println!` and `eprintln!` for a server: a line that nobody reads any
/// more (its standard output or error closed, `socred serve --demo | head`)
/// is dropped, and the server goes on serving.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// How `socred serve` runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    /// Where the embedded store keeps its files (created when missing).
    pub data_dir: PathBuf,
    /// Address to listen on, e.g. `127.0.0.1:8080` (port 0: any free port).
    pub listen: String,
    /// Fill an empty store with a synthetic city and issue a token per role.
    pub demo: bool,
    /// Another store than the embedded one in `data_dir`: `sqlite:DIR`, or
    /// `memory:` (nothing kept).
    pub store: Option<String>,
    /// Records the embedded store's writer keeps decoded (see
    /// [`socred_store_sqlite::SqliteOptions`]).
    pub history_cache: usize,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            data_dir: PathBuf::from("socred-data"),
            listen: "127.0.0.1:8080".into(),
            demo: false,
            store: None,
            history_cache: socred_store_sqlite::HISTORY_RECORDS_DEFAULT,
        }
    }
}

/// Opens (creating if needed) the embedded store in `dir`.
pub(crate) async fn open_store(
    dir: &Path,
    options: socred_store_sqlite::SqliteOptions,
) -> anyhow::Result<Arc<dyn Store>> {
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!(
            "{} is not a directory: --data names the directory of the embedded store",
            dir.display()
        );
    }
    // A backup that was stopped leaves its copy under a temporary name:
    // such a directory is no registry, and must not become an empty one.
    let (file, partial) = (
        socred_store_sqlite::FILE_NAME,
        socred_store_sqlite::PARTIAL_SUFFIX,
    );
    if !dir.join(file).exists() && dir.join(format!("{file}{partial}")).exists() {
        anyhow::bail!(
            "{} holds only {file}{partial}, the copy of a backup that was stopped before it \
             finished: it is no registry. Take the backup again (into a new directory), or \
             give --data the registry's own directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let dir = dir.to_path_buf();
    let store = tokio::task::spawn_blocking(move || {
        socred_store_sqlite::SqliteStore::open_with(&dir, options)
    })
    .await
    .context("opening the store stopped unexpectedly")?
    .context("cannot open the store")?;
    Ok(Arc::new(store))
}

/// Where a store is: the data directory of the embedded store, or what a
/// `--store` URL names instead.
pub(crate) enum StoreLocation<'a> {
    Dir(&'a Path),
    Memory,
    Postgres(&'a str),
}

impl<'a> StoreLocation<'a> {
    /// `url` when given (`sqlite:DIR`, `memory:`, `postgres://…`), else
    /// `data_dir`.
    pub(crate) fn new(data_dir: &'a Path, url: Option<&'a str>) -> anyhow::Result<Self> {
        let Some(url) = url else {
            return Ok(StoreLocation::Dir(data_dir));
        };
        if let Some(dir) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            return Ok(StoreLocation::Dir(Path::new(dir)));
        }
        if url == "memory:" {
            return Ok(StoreLocation::Memory);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreLocation::Postgres(url));
        }
        anyhow::bail!(
            "unsupported store `{url}`: use sqlite:DIR, memory: or postgres://user@host:port/db"
        )
    }
}

/// Refuses a directory that holds no embedded store, saying which: for the
/// commands that read an existing registry and must not make one.
pub(crate) fn require_data_dir(dir: &Path) -> anyhow::Result<()> {
    let file = socred_store_sqlite::FILE_NAME;
    if !dir.exists() {
        anyhow::bail!(
            "{} is not a socred data directory (it does not exist)",
            dir.display()
        );
    }
    if !dir.is_dir() {
        anyhow::bail!(
            "{} is not a socred data directory (it is not a directory)",
            dir.display()
        );
    }
    if !dir.join(file).is_file() {
        anyhow::bail!(
            "{} is not a socred data directory (it has no {file})",
            dir.display()
        );
    }
    Ok(())
}

/// Connects to the PostgreSQL store at `url`.
pub(crate) async fn connect_postgres(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let store = socred_store_postgres::PostgresStore::connect(url)
        .await
        .context("cannot open the PostgreSQL store")?;
    Ok(Arc::new(store))
}

async fn open_configured_store(config: &ServeConfig) -> anyhow::Result<Arc<dyn Store>> {
    let options = socred_store_sqlite::SqliteOptions {
        history_records: config.history_cache,
    };
    match StoreLocation::new(&config.data_dir, config.store.as_deref())? {
        StoreLocation::Dir(dir) => open_store(dir, options).await,
        StoreLocation::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreLocation::Postgres(url) => connect_postgres(url).await,
    }
}

/// Opens the configured store and the server state over it.
pub async fn open_state(config: &ServeConfig) -> anyhow::Result<AppState> {
    let store = open_configured_store(config).await?;
    AppState::open(store, Arc::new(SystemClock), Limits::default()).await
}

/// How often a server looks whether another server of its database
/// installed a rulebook.
const RULEBOOK_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Takes every rulebook another server of the same store installs, within
/// [`RULEBOOK_POLL`], for as long as the server runs. Meanwhile the store
/// refuses this server's writes that fold with the rulebook before
/// (`rulebook_changed`), so no file is written under it.
async fn follow_rulebook(state: AppState) {
    let mut seen = None;
    loop {
        tokio::time::sleep(RULEBOOK_POLL).await;
        match state.follow_rulebook().await {
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "cannot follow the rulebook in force"),
        }
        if let Err(error) = state
            .finish_stalled_recompute(&mut seen, RECOMPUTE_STALLED)
            .await
        {
            tracing::error!("{error:#}");
        }
    }
}

/// How long the recomputation that a rulebook upload left may make no
/// progress before a server takes it over: a batch takes well under a
/// second, so this long without one means its server is gone.
const RECOMPUTE_STALLED: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let state = open_state(&config).await?;
    // Bind before issuing any token: a second start on a busy port must
    // fail without replacing the tokens of the server already running.
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let demo_report = if config.demo {
        Some(demo(&state, &demo_config(state.today())).await?)
    } else {
        None
    };
    let first_admin = match demo_report {
        Some(_) => None,
        None => first_operator(&state).await?,
    };
    let addr = listener
        .local_addr()
        .context("cannot read the address listened on")?;
    say!(
        "socred {} listening on http://{addr} (rulebook {})",
        env!("CARGO_PKG_VERSION"),
        state.current().label
    );
    if let Some(report) = demo_report {
        let text = report.instructions(addr);
        say!("{}", text.trim_end_matches('\n'));
    }
    if let Some(token) = first_admin {
        say!("first start: operator token of principal `{FIRST_ADMIN_ID}` (shown once): {token}");
        say!(
            "  register principals with: curl -s -H 'Authorization: Bearer {token}' \\
    \
             -H 'content-type: application/json' -d '{{...}}' http://{addr}/v1/admin/principals  (see docs/api.md)"
        );
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    tokio::spawn(crate::erasure::daily(state.clone()));
    tokio::spawn(crate::publication::keep_published(state.clone()));
    tokio::spawn(follow_rulebook(state.clone()));
    crate::listen::serve(
        listener,
        crate::routes::app(state),
        crate::listen::Timeouts::default(),
        shutdown_signal(),
    )
    .await;
    tracing::info!("socred stopped");
    Ok(())
}

/// The principal issued on a first start, so that someone can administer.
pub const FIRST_ADMIN_ID: &str = "admin";

/// On a store without any principal, issues an operator token: without
/// it nobody could register the first provider or agency. Returns it.
async fn first_operator(state: &AppState) -> anyhow::Result<Option<String>> {
    let principals = state
        .store()
        .principals()
        .await
        .context("cannot read the principals")?;
    if !principals.is_empty() {
        return Ok(None);
    }
    let token = new_token()?;
    let principal = Principal {
        id: FIRST_ADMIN_ID.into(),
        name: "Operator (issued on first start)".into(),
        role: Role::Admin,
        scope: None,
        record_types: Vec::new(),
        revoked: false,
        valid_until: None,
    };
    let audit = vec![AuditDraft {
        at_ms: state.now_ms(),
        actor: "socred".into(),
        role: "system".into(),
        purpose: "first_start".into(),
        action: "put_principal".into(),
        subject: None,
        detail: format!("principal {FIRST_ADMIN_ID} (admin) issued a token on first start"),
    }];
    state
        .store()
        .put_principal(&principal, &hash_token(&token), audit)
        .await
        .context("cannot store the first operator")?;
    Ok(Some(token))
}

/// [`serve`] on a runtime of its own, for the command line.
pub fn serve_blocking(config: ServeConfig) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(serve(config))
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

/// The synthetic city of `--demo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Demo {
    pub generate: GenConfig,
    /// Items per store call.
    pub batch_items: usize,
}

/// The demo city: 30,000 subjects and 300,000 records over the five years
/// up to `today`.
pub fn demo_config(today: Day) -> Demo {
    Demo {
        generate: GenConfig {
            seed: 2026,
            subjects: 30_000,
            records: 300_000,
            start: today.add_days(-5 * 365),
            end: today,
        },
        batch_items: 100_000,
    }
}

/// A principal issued by the demo, with its token.
#[derive(Clone, Debug)]
pub struct DemoPrincipal {
    pub principal: Principal,
    pub token: String,
}

/// The record type of the printed example that waits for review.
const REVIEW_EXAMPLE_TYPE: &str = "judicial.judgment_default";

/// What the demo did and the tokens it issued.
#[derive(Clone, Debug)]
pub struct DemoReport {
    /// Items stored by this start (0 when the store already held data).
    pub items_loaded: u64,
    pub principals: Vec<DemoPrincipal>,
    /// A person with an interesting file (on a black list when there is one).
    pub subject: Option<SubjectId>,
    /// A measure the first agency implements, for the example decision.
    pub measure: Option<(String, String)>,
    /// The day the demo started, for the example record.
    pub today: Day,
    /// Whether the rulebook has judgment defaults that wait for review, for
    /// the example of the two-person rule.
    pub review_example: bool,
    /// A record of `subject`'s file, for the example objection.
    pub objection_example: Option<socred_core::RecordKey>,
}

impl DemoReport {
    fn token(&self, role: Role) -> Option<&DemoPrincipal> {
        self.principals.iter().find(|p| p.principal.role == role)
    }

    /// What to print for a newcomer.
    pub fn instructions(&self, addr: SocketAddr) -> String {
        use std::fmt::Write as _;
        let url = format!("http://{addr}");
        let mut out =
            String::from("\nDemo tokens (each shown once; a new --demo start issues new ones):\n");
        for issued in &self.principals {
            let scope = issued
                .principal
                .scope
                .as_deref()
                .map(|s| format!(" scope {s}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<9} {:<18}{scope}\n            {}",
                issued.principal.role.as_str(),
                issued.principal.id,
                issued.token
            );
        }
        out.push_str("\nTry:\n");
        let _ = writeln!(out, "  curl -s {url}/v1/public/lists");
        if let (Some(agency), Some(subject), Some((measure, _))) =
            (self.token(Role::Agency), self.subject, &self.measure)
        {
            let _ = writeln!(
                out,
                "  curl -s -H 'Authorization: Bearer {}' '{url}/v1/decisions?subject={subject}&measure={measure}&purpose=ticket_sale'",
                agency.token
            );
        }
        if let (Some(person), Some(subject)) = (self.token(Role::Subject), self.subject) {
            let _ = writeln!(
                out,
                "  curl -s -H 'Authorization: Bearer {}' {url}/v1/subjects/{subject}/explanation",
                person.token
            );
            let _ = writeln!(
                out,
                "  curl -s -H 'Authorization: Bearer {}' {url}/v1/subjects/{subject}/access-log",
                person.token
            );
            if let Some(record) = &self.objection_example {
                let _ = writeln!(
                    out,
                    "  curl -s -H 'Authorization: Bearer {}' -H 'content-type: application/json' -d \\\n    \
                     '{{\"record\": {{\"provider\": \"{}\", \"id\": \"{}\"}}, \"statement\": \"I was not there.\"}}' \
                     {url}/v1/subjects/{subject}/objections",
                    person.token, record.provider, record.id
                );
            }
        }
        if let (true, Some(provider), Some(subject)) = (
            self.review_example,
            self.token(Role::Provider),
            self.subject,
        ) {
            let scope = provider.principal.scope.as_deref().unwrap_or_default();
            let _ = writeln!(
                out,
                "  curl -s -H 'Authorization: Bearer {}' -H 'content-type: application/json' -d \\\n    \
                 '{{\"provider\": \"{scope}\", \"id\": \"try-1\", \"subject\": \"{subject}\", \
                 \"type\": \"{REVIEW_EXAMPLE_TYPE}\", \"occurred_at\": \"{today}\", \"decided_at\": \"{today}\", \
                 \"fields\": {{\"case_no\": \"(demo) 1\"}}}}' {url}/v1/records",
                provider.token,
                today = self.today
            );
        }
        if let Some(reviewer) = self.token(Role::Reviewer) {
            let _ = writeln!(
                out,
                "  curl -s -H 'Authorization: Bearer {}' {url}/v1/review/pending",
                reviewer.token
            );
        }
        if let Some(auditor) = self.token(Role::Auditor) {
            let _ = writeln!(
                out,
                "  curl -s -H 'Authorization: Bearer {}' {url}/v1/audit/verify",
                auditor.token
            );
        }
        if let Some(admin) = self.token(Role::Admin) {
            let _ = writeln!(
                out,
                "  curl -s -H 'Authorization: Bearer {}' {url}/v1/admin/dashboard",
                admin.token
            );
        }
        let _ = writeln!(
            out,
            "\nThe API is described at {url}/openapi.json and in docs/api.md."
        );
        let _ = writeln!(
            out,
            "The web portal is at {url}/ (public lists, company lookup; under \"My file\" the \
             subject's identifier and token above open its file; \"Review\", \"Operator\" and \
             \"Audit log\" open with the reviewer's, admin's and auditor's tokens)."
        );
        out
    }
}

/// Fills an empty store with the demo city, then issues a token per role.
pub async fn demo(state: &AppState, demo: &Demo) -> anyhow::Result<DemoReport> {
    let counts = state
        .store()
        .counts()
        .await
        .context("cannot read the store's counts")?;
    let items_loaded = if counts.records == 0 {
        load_city(state, demo).await?
    } else {
        // Loading the city again would mix it with what the store holds;
        // say so, since a fill that was stopped looks like this too.
        tracing::warn!(
            "--demo fills only an empty store, and this one holds {} records: the city was not \
             loaded again (if an earlier --demo was stopped while it loaded the city, remove the \
             data directory and start again)",
            counts.records
        );
        0
    };
    let subject = interesting_person(state).await?;
    let mut principals = Vec::new();
    for principal in demo_principals(state, subject) {
        let token = new_token()?;
        let audit = vec![AuditDraft {
            at_ms: state.now_ms(),
            actor: "socred".into(),
            role: "system".into(),
            purpose: "demo".into(),
            action: "put_principal".into(),
            subject: crate::routes::admin::subject_of(&principal),
            detail: format!(
                "demo principal {} ({}) issued a token",
                principal.id, principal.role
            ),
        }];
        state
            .store()
            .put_principal(&principal, &hash_token(&token), audit)
            .await
            .with_context(|| format!("cannot store demo principal {}", principal.id))?;
        principals.push(DemoPrincipal { principal, token });
    }
    state.inner.principals.clear();
    let measure = principals
        .iter()
        .find(|p| p.principal.role == Role::Agency)
        .and_then(|p| p.principal.scope.clone())
        .and_then(|agency| {
            let current = state.current();
            let measure = current.rulebook().measures.iter().find(|m| {
                m.agencies.iter().any(|a| **a == *agency)
                    && m.subject_kinds.contains(SubjectKind::Person)
            })?;
            Some((measure.id.to_string(), agency))
        });
    let review_example = {
        let current = state.current();
        current
            .rulebook()
            .record_type(REVIEW_EXAMPLE_TYPE)
            .is_some_and(|t| current.may_need_review(t))
    };
    let objection_example = match subject {
        Some(subject) => state
            .store()
            .state(subject)
            .await
            .context("cannot read the demo subject's file")?
            .and_then(|file| file.records.first().map(|r| r.key.clone())),
        None => None,
    };
    Ok(DemoReport {
        items_loaded,
        principals,
        subject,
        measure,
        today: state.today(),
        review_example,
        objection_example,
    })
}

fn demo_principals(state: &AppState, subject: Option<SubjectId>) -> Vec<Principal> {
    let current = state.current();
    let rulebook = current.rulebook();
    let principal = |id: &str, name: &str, role: Role, scope: Option<String>| Principal {
        id: id.into(),
        name: name.into(),
        role,
        scope,
        record_types: Vec::new(),
        revoked: false,
        valid_until: None,
    };
    let mut principals = vec![principal("demo-admin", "Demo operator", Role::Admin, None)];
    let mut provider = principal(
        "demo-provider",
        "Demo data provider",
        Role::Provider,
        Some("demo.registry".into()),
    );
    provider.record_types = rulebook.catalog.iter().map(|t| t.id.to_string()).collect();
    principals.push(provider);
    principals.push(principal(
        "demo-reviewer-1",
        "Demo reviewer 1",
        Role::Reviewer,
        None,
    ));
    principals.push(principal(
        "demo-reviewer-2",
        "Demo reviewer 2",
        Role::Reviewer,
        None,
    ));
    let mut agencies: Vec<String> = Vec::new();
    for measure in &rulebook.measures {
        for agency in &measure.agencies {
            if !agencies.iter().any(|a| **a == **agency) {
                agencies.push(agency.to_string());
            }
        }
    }
    // Airline and rail when the rulebook has them (they ask the most), else the first two.
    let preferred: Vec<String> = ["airline", "rail"]
        .iter()
        .filter(|a| agencies.iter().any(|b| b == *a))
        .map(|a| a.to_string())
        .collect();
    let chosen = if preferred.is_empty() {
        agencies.into_iter().take(2).collect()
    } else {
        preferred
    };
    for agency in chosen {
        principals.push(principal(
            &format!("demo-{agency}"),
            &format!("Demo agency {agency}"),
            Role::Agency,
            Some(agency),
        ));
    }
    if let Some(subject) = subject {
        principals.push(principal(
            "demo-subject",
            "Demo subject",
            Role::Subject,
            Some(subject.to_string()),
        ));
    }
    principals.push(principal(
        "demo-auditor",
        "Demo auditor",
        Role::Auditor,
        None,
    ));
    principals
}

/// A person on a black list today, or else any subject with a file.
async fn interesting_person(state: &AppState) -> anyhow::Result<Option<SubjectId>> {
    let current = state.current();
    let today = state.today();
    for list in current
        .rulebook()
        .lists
        .iter()
        .filter(|l| l.kind == ListKind::Black)
    {
        let mut after = None;
        for _ in 0..20 {
            let page = state
                .store()
                .list_members(&list.id, today, after, 500)
                .await?;
            if let Some((person, _)) = page.iter().find(|(s, _)| s.kind() == SubjectKind::Person) {
                return Ok(Some(*person));
            }
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
        }
    }
    let subjects = state.store().subjects(None, 100).await?;
    Ok(subjects
        .iter()
        .find(|s| s.kind() == SubjectKind::Person)
        .or(subjects.first())
        .copied())
}

/// Generates the city and stores it in batches; returns the items stored.
async fn load_city(state: &AppState, demo: &Demo) -> anyhow::Result<u64> {
    let started = Instant::now();
    let current = state.current();
    let (sender, mut receiver) = mpsc::channel::<Vec<Submission>>(2);
    let generate = demo.generate.clone();
    let batch_items = demo.batch_items.max(1);
    let parse_current = current.clone();
    let review_from = generate.end.add_days(-DEMO_REVIEW_DAYS);
    say_err!(
        "demo: generating a city of {} subjects and {} records from {} to {}",
        generate.subjects,
        generate.records,
        generate.start,
        generate.end
    );
    let producer = tokio::task::spawn_blocking(move || {
        let mut parser = LineParser::new(parse_current.rulebook());
        let mut batch = Vec::with_capacity(batch_items);
        let mut line_no = 0usize;
        let mut refused = 0u64;
        let mut closed = false;
        socred_sim::generate(&generate, &mut |line: &str| {
            line_no += 1;
            if closed {
                return;
            }
            match parser.parse(line_no, line) {
                Ok((item, _)) => batch.push(demo_submission(item, &parse_current, review_from)),
                Err(_) => refused += 1,
            }
            if batch.len() >= batch_items {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_items));
                closed = sender.blocking_send(full).is_err();
            }
        });
        if !batch.is_empty() && !closed {
            let _ = sender.blocking_send(batch);
        }
        refused
    });
    let mut stored = 0u64;
    let mut batches = 0u64;
    while let Some(batch) = receiver.recv().await {
        batches += 1;
        let items = batch.len();
        let audit = vec![AuditDraft {
            at_ms: state.now_ms(),
            actor: "socred".into(),
            role: "system".into(),
            purpose: "demo".into(),
            action: "ingest".into(),
            subject: None,
            detail: format!("demo city batch {batches}: {items} generated items"),
        }];
        let outcomes = state
            .store()
            .ingest(&current.engine, batch, audit)
            .await
            .context("cannot store the demo city")?;
        stored += outcomes
            .iter()
            .filter(|o| matches!(o, socred_store::Outcome::Stored))
            .count() as u64;
        say_err!(
            "demo: {stored} items stored ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
    }
    let refused = producer
        .await
        .context("the demo generator stopped unexpectedly")?;
    if refused > 0 {
        say_err!(
            "demo: {refused} generated lines did not parse against the rulebook and were left out"
        );
    }
    say_err!(
        "demo: city stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(stored)
}

/// Days before the demo's last day from which its records that need a
/// second person still wait for one.
const DEMO_REVIEW_DAYS: i32 = 14;

/// The demo's history is loaded as the operator's import of reviewed
/// records, except its last [`DEMO_REVIEW_DAYS`] days: records decided then
/// that need a second person (serious ones entering a reviewed list) wait
/// in the review queue, so that a newcomer's reviewer has something to
/// decide. A later fact about one of them is refused like any fact about
/// a record not in effect.
fn demo_submission(item: wire::Item, current: &Current, review_from: Day) -> Submission {
    let review = match &item {
        wire::Item::Record(record)
            if record.decided_at >= review_from && current.needs_review(record) =>
        {
            ReviewNeed::Required
        }
        _ => ReviewNeed::NotRequired,
    };
    let item = match item {
        wire::Item::Record(record) => Item::Record(record),
        wire::Item::Fact { fact, record_type } => Item::Fact { fact, record_type },
    };
    Submission {
        item,
        submitted_by: "socred-demo".into(),
        review,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(id: &str, role: Role, scope: Option<&str>) -> DemoPrincipal {
        DemoPrincipal {
            principal: Principal {
                id: id.into(),
                name: id.into(),
                role,
                scope: scope.map(str::to_string),
                record_types: Vec::new(),
                revoked: false,
                valid_until: None,
            },
            token: format!("token-of-{id}"),
        }
    }

    /// The demo's recent serious records wait for a reviewer; older ones,
    /// and records that need no second person, are loaded as reviewed.
    #[test]
    fn the_demos_recent_serious_records_wait_for_review() {
        let rulebook = socred_schema::default_rulebook();
        let text = socred_schema::DEFAULT_RULEBOOK_TOML;
        let current = Current::new(rulebook, text.into());
        let mut parser = wire::LineParser::new(current.rulebook());
        let review_from = Day::parse("2026-05-18").unwrap();
        let line = |id: &str, kind: &str, decided: &str, fields: &str| {
            format!(
                r#"{{"provider": "court.beijing-1", "id": "{id}", "subject": "11010519491231002X", "type": "{kind}", "occurred_at": "{decided}", "decided_at": "{decided}", "fields": {fields}}}"#
            )
        };
        let judgment = r#"{"amount_yuan": 52000, "case_no": "(2026) Jing 01 Zhi 1"}"#;
        let fare = r#"{"station": "Xujiahui"}"#;
        for (n, (kind, decided, fields, waits)) in [
            ("judicial.judgment_default", "2026-05-20", judgment, true),
            ("judicial.judgment_default", "2026-05-18", judgment, true),
            ("judicial.judgment_default", "2026-05-17", judgment, false),
            ("transport.fare_evasion", "2026-05-30", fare, false),
        ]
        .into_iter()
        .enumerate()
        {
            let (item, _) = parser
                .parse(n + 1, &line(&format!("r{n}"), kind, decided, fields))
                .unwrap_or_else(|e| panic!("{e:?}"));
            let submission = demo_submission(item, &current, review_from);
            let expected = if waits {
                ReviewNeed::Required
            } else {
                ReviewNeed::NotRequired
            };
            assert_eq!(submission.review, expected, "{kind} decided {decided}");
        }
    }

    #[test]
    fn the_printed_example_record_is_valid_and_waits_for_review() {
        let subject = SubjectId::person(110105, 1985, 7, 14, 123).unwrap();
        let today = Day::parse("2026-06-01").unwrap();
        let report = DemoReport {
            items_loaded: 0,
            principals: vec![
                issued("demo-provider", Role::Provider, Some("demo.registry")),
                issued("demo-airline", Role::Agency, Some("airline")),
                issued("demo-subject", Role::Subject, Some(subject.as_str())),
            ],
            subject: Some(subject),
            measure: Some(("no_air_travel".into(), "airline".into())),
            today,
            review_example: true,
            objection_example: Some(socred_core::RecordKey {
                provider: "railway.jinan".into(),
                id: "2022-rw-00015".into(),
            }),
        };
        let text = report.instructions("127.0.0.1:8080".parse().unwrap());
        assert!(text.contains(&format!(
            "subject={subject}&measure=no_air_travel&purpose=ticket_sale"
        )));
        // Each printed body, with the path it goes to.
        let bodies: Vec<(&str, &str)> = text
            .split("-d \\\n    '")
            .skip(1)
            .filter_map(|rest| {
                let (body, after) = rest.split_once('\'')?;
                Some((body, after.lines().next()?.trim()))
            })
            .collect();
        let objection = bodies
            .iter()
            .find(|(_, to)| to.ends_with(&format!("/v1/subjects/{subject}/objections")))
            .map(|(body, _)| serde_json::from_str::<serde_json::Value>(body).unwrap())
            .expect("an example objection");
        assert_eq!(
            objection["record"],
            serde_json::json!({"provider": "railway.jinan", "id": "2022-rw-00015"})
        );
        let body = bodies
            .iter()
            .find(|(_, to)| to.ends_with("/v1/records"))
            .map(|(body, _)| *body)
            .expect("an example record");
        let rulebook = socred_schema::default_rulebook();
        let (item, _) = wire::parse_line(&rulebook, 1, body).unwrap();
        let wire::Item::Record(record) = item else {
            panic!("not a record: {body}")
        };
        assert_eq!(&*record.key.provider, "demo.registry");
        let current = crate::state::Current::new(rulebook, "".into());
        assert!(current.needs_review(&record));
    }
}
