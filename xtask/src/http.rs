//! HTTP load benchmarks of `socred serve`: single decisions over keep-alive
//! connections (`bench-http-decide`) and durable batch ingest
//! (`bench-http-ingest`).
//!
//! The server runs as a child process (`target/release/socred serve`, built
//! first) on 127.0.0.1 with a fresh temporary data directory, so that the
//! load generator and the server compete for the machine's cores as they
//! would in a same-machine test. The load generator is one thread: a tokio
//! current-thread runtime driving hand-written HTTP/1.1 keep-alive
//! connections (no pipelining), so that it takes as little CPU from the
//! server as possible. Both benchmarks are bounded: by a duration, or by a
//! record count, and only ever talk to 127.0.0.1.
//!
//! `bench-http-decide --peer` measures a peer in the same run: after each
//! run of decisions, as many connections (opened afresh) ask `GET /healthz`, which goes
//! through the same HTTP stack and middleware but reads no state and
//! writes no audit entry. Its rate is what this machine's HTTP path and
//! load generator allow at all; the decisions' rate is given as a ratio
//! of it.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::{RngExt as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use socred_core::{Day, Period};

/// The agency scope and measure the decision benchmark asks about: airlines
/// implement `no_air_travel` in the default rulebook.
const AGENCY: &str = "airline";
const MEASURE: &str = "no_air_travel";
/// The provider id every benchmark record is sent under.
const BENCH_PROVIDER: &str = "bench.load";
/// How long the server may take to start and print its token.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest response head read, in bytes.
const HEAD_BYTES_MAX: usize = 64 << 10;
/// Largest response body read, in bytes.
const BODY_BYTES_MAX: usize = 64 << 20;

/// `cargo xtask bench-http-decide`.
#[derive(clap::Args, Debug)]
pub struct DecideArgs {
    /// Measured seconds per run (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Unmeasured seconds before each run.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Records of the population loaded before the runs (as the demo city).
    #[arg(long, default_value_t = 300_000)]
    pub records: u64,
    #[arg(long, default_value_t = 30_000)]
    pub subjects: u64,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The server binary (default: build and use target/release/socred).
    #[arg(long)]
    pub server: Option<PathBuf>,
    /// After each run, the same load against `GET /healthz` (which
    /// answers without reading the store or writing the audit log) for as
    /// long: the HTTP path's own ceiling on this machine, as a peer in the
    /// same run.
    #[arg(long)]
    pub peer: bool,
}

/// `cargo xtask bench-http-ingest`.
#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// Record lines per run.
    #[arg(long, default_value_t = 500_000)]
    pub records: u64,
    /// Records per request.
    #[arg(long, default_value_t = 5_000)]
    pub batch: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// Runs, each against a fresh server and data directory.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The server binary (default: build and use target/release/socred).
    #[arg(long)]
    pub server: Option<PathBuf>,
}

pub fn bench_http_decide(args: &DecideArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    anyhow::ensure!(args.seconds > 0, "--seconds must be at least 1");
    let binary = server_binary(args.server.as_deref())?;
    let batches = record_batches(args.records, args.subjects, args.seed, 5_000)?;
    anyhow::ensure!(
        !batches.subjects.is_empty(),
        "the generated population has no subject with a record"
    );
    let runtime = runtime()?;
    let server = Server::start(&binary)?;
    let (agency_token, loaded) = runtime.block_on(async {
        let mut admin = Conn::open(server.addr).await?;
        let provider = register_provider(&mut admin, &server.admin_token).await?;
        let agency = register(
            &mut admin,
            &server.admin_token,
            &serde_json::json!({
                "id": "bench-airline", "name": "Benchmark airline", "role": "agency", "scope": AGENCY,
            }),
        )
        .await?;
        let started = Instant::now();
        let loaded = ingest(server.addr, &provider, &batches.bodies, 2).await?;
        anyhow::ensure!(
            loaded.failures() == 0,
            "loading the population failed: {loaded:?}"
        );
        eprintln!(
            "loaded {} records about {} subjects in {:.1} s",
            loaded.acknowledged,
            batches.subjects.len(),
            started.elapsed().as_secs_f64()
        );
        anyhow::Ok((agency, loaded))
    })?;
    let requests = Arc::new(decision_requests(
        server.addr,
        &agency_token,
        &batches.subjects,
    ));
    let peer_requests = Arc::new(vec![format!(
        "GET /healthz HTTP/1.1\r\nhost: {}\r\n\r\n",
        server.addr
    )
    .into_bytes()]);
    let mut runs = Vec::with_capacity(args.runs);
    let mut peers = Vec::with_capacity(args.runs);
    // One load of `requests` on fresh connections for `seconds`.
    let load = |requests: &Arc<Vec<Vec<u8>>>, seconds: u64, seed: u64| {
        runtime.block_on(decide_load(
            server.addr,
            requests,
            args.connections,
            Duration::from_secs(seconds),
            seed,
        ))
    };
    for run in 1..=args.runs {
        if args.warmup > 0 {
            load(&requests, args.warmup, args.seed ^ 0x5eed_0000 ^ run as u64)?;
        }
        let result = load(&requests, args.seconds, args.seed ^ run as u64)?;
        eprintln!("run {run}: {}", result.summary("decisions"));
        runs.push(result);
        if args.peer {
            let peer = load(&peer_requests, args.seconds, args.seed ^ run as u64)?;
            eprintln!("run {run}, peer GET /healthz: {}", peer.summary("requests"));
            peers.push(peer);
        }
    }
    drop(server);
    let rate = median(runs.iter().map(DecideRun::rate).collect());
    let p50 = median(runs.iter().map(|r| r.percentile_ms(0.50)).collect());
    let p99 = median(runs.iter().map(|r| r.percentile_ms(0.99)).collect());
    let p999 = median(runs.iter().map(|r| r.percentile_ms(0.999)).collect());
    let errors: u64 = runs.iter().map(|r| r.errors).sum();
    println!(
        "HTTP decisions: {rate:.0} single decisions/s, p50 {p50:.2} ms, p99 {p99:.2} ms, p99.9 {p999:.2} ms, \
         {errors} errors (median of {} runs of {} s, {} keep-alive connections, GET /v1/decisions, \
         {} subjects from {} records; server a child process `socred serve` with {}, load generator one thread)",
        args.runs, args.seconds, args.connections, batches.subjects.len(), loaded.acknowledged,
        store_label()
    );
    if !peers.is_empty() {
        let peer_rate = median(peers.iter().map(DecideRun::rate).collect());
        let peer_p99 = median(peers.iter().map(|r| r.percentile_ms(0.99)).collect());
        let ratios: Vec<f64> = runs
            .iter()
            .zip(&peers)
            .map(|(run, peer)| run.rate() / peer.rate())
            .collect();
        println!(
            "peer GET /healthz, after each run, as many connections: {peer_rate:.0} requests/s, p99 {peer_p99:.2} ms; \
             decisions at {:.2}x the peer's rate (median of the runs' ratios)",
            median(ratios)
        );
    }
    println!("{}", machine());
    println!(
        "reproduce: cargo xtask bench-http-decide --seconds {} --warmup {} --connections {} --runs {}{}",
        args.seconds,
        args.warmup,
        args.connections,
        args.runs,
        if args.peer { " --peer" } else { "" }
    );
    let peer_errors: u64 = peers.iter().map(|r| r.errors).sum();
    anyhow::ensure!(errors == 0, "{errors} decision requests failed");
    anyhow::ensure!(peer_errors == 0, "{peer_errors} /healthz requests failed");
    Ok(())
}

pub fn bench_http_ingest(args: &IngestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let binary = server_binary(args.server.as_deref())?;
    let subjects = (args.records / 10).max(1);
    let batches = record_batches(args.records, subjects, args.seed, args.batch)?;
    let runtime = runtime()?;
    let mut rates = Vec::with_capacity(args.runs);
    let mut failures = 0u64;
    for run in 1..=args.runs {
        let server = Server::start(&binary)?;
        let result = runtime.block_on(async {
            let mut admin = Conn::open(server.addr).await?;
            let provider = register_provider(&mut admin, &server.admin_token).await?;
            ingest(server.addr, &provider, &batches.bodies, args.connections).await
        })?;
        drop(server);
        let rate = result.acknowledged as f64 / result.elapsed.as_secs_f64();
        eprintln!(
            "run {run}: {rate:.0} records/s ({} acknowledged in {:.2} s, {} of them waiting for review; \
             not acknowledged: {} duplicate, {} conflict, {} rejected, {} unknown record, {} failed requests)",
            result.acknowledged,
            result.elapsed.as_secs_f64(),
            result.pending_review,
            result.duplicate,
            result.conflict,
            result.rejected,
            result.unknown_record,
            result.failed_requests,
        );
        failures += result.failures();
        rates.push(rate);
    }
    println!(
        "HTTP ingest: {:.0} durable records/s (median of {} runs; {} records in NDJSON batches of {} over {} \
         keep-alive connections, POST /v1/records, counted from 200 answers; SQLite WAL synchronous=FULL; \
         server a child process `socred serve`, load generator one thread)",
        median(rates),
        args.runs,
        batches.records,
        args.batch,
        args.connections
    );
    println!("{}", machine());
    println!(
        "reproduce: cargo xtask bench-http-ingest --records {} --batch {} --connections {} --runs {}",
        args.records, args.batch, args.connections, args.runs
    );
    anyhow::ensure!(failures == 0, "{failures} records were not acknowledged");
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the load generator's runtime")
}

/// The server binary: the one given, or target/release/socred built now
/// (a no-op when it is up to date).
fn server_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the server: cargo build --release --package socred-cli");
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--package",
            "socred-cli",
            "--bin",
            "socred",
        ])
        .status()
        .context("cannot run cargo to build the server")?;
    anyhow::ensure!(status.success(), "building the server failed: {status}");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    Ok(target.join("release").join("socred"))
}

/// A `socred serve` child process on a fresh data directory; killed and
/// its directory removed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    admin_token: String,
    _data: tempfile::TempDir,
}

impl Server {
    fn start(binary: &Path) -> anyhow::Result<Server> {
        let data = tempfile::Builder::new()
            .prefix("socred-bench-")
            .tempdir()
            .context("cannot create a temporary data directory")?;
        let log = std::fs::File::create(data.path().join("server.log"))
            .context("cannot create the server log")?;
        let mut child = Command::new(binary)
            .arg("serve")
            .arg("--data")
            .arg(data.path().join("store"))
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            anyhow::bail!("the server's stdout was not captured");
        };
        // Read the banner in a thread that then keeps draining stdout, so
        // that the server never blocks on a full pipe.
        let (sender, receiver) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = sender.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut addr = None;
        let mut token = None;
        while addr.is_none() || token.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match receiver.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    anyhow::bail!(
                        "the server did not print its address and operator token within {} s (log: {})",
                        START_TIMEOUT.as_secs(),
                        std::fs::read_to_string(data.path().join("server.log")).unwrap_or_default()
                    );
                }
            };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let text = rest.split_whitespace().next().unwrap_or_default();
                addr = Some(
                    text.parse::<SocketAddr>()
                        .with_context(|| format!("bad address in `{line}`"))?,
                );
            }
            if let Some(rest) = line.split("(shown once): ").nth(1) {
                token = Some(rest.trim().to_string());
            }
        }
        let (Some(addr), Some(admin_token)) = (addr, token) else {
            anyhow::bail!("the server's banner had no address or token");
        };
        Ok(Server {
            child,
            addr,
            admin_token,
            _data: data,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 keep-alive connection; one request in flight at a time.
struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet consumed: `buf[..filled]`.
    buf: Vec<u8>,
    filled: usize,
    host: String,
}

/// A response: status and body.
struct Response {
    status: u16,
    body: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
        Ok(Conn {
            stream,
            buf: vec![0; 16 << 10],
            filled: 0,
            host: addr.to_string(),
        })
    }

    /// Sends a request with a body and reads the whole response.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Response> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n",
            self.host,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes()).await?;
        self.stream.write_all(body).await?;
        let (status, range) = self.read_response().await?;
        let body = self.buf.get(range.clone()).unwrap_or_default().to_vec();
        self.consume(range.end);
        Ok(Response { status, body })
    }

    /// Sends prepared request bytes; returns the status, discarding the body.
    async fn send_raw(&mut self, request: &[u8]) -> anyhow::Result<u16> {
        self.stream.write_all(request).await?;
        let (status, range) = self.read_response().await?;
        self.consume(range.end);
        Ok(status)
    }

    fn consume(&mut self, end: usize) {
        self.buf.copy_within(end..self.filled, 0);
        self.filled -= end;
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.filled == self.buf.len() {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        let read = self.stream.read(&mut self.buf[self.filled..]).await?;
        anyhow::ensure!(read > 0, "the server closed the connection");
        self.filled += read;
        Ok(())
    }

    /// Reads one response into the buffer: its status and the body's range.
    async fn read_response(&mut self) -> anyhow::Result<(u16, std::ops::Range<usize>)> {
        let head_end = loop {
            if let Some(at) = find(&self.buf[..self.filled], b"\r\n\r\n") {
                break at + 4;
            }
            anyhow::ensure!(
                self.filled < HEAD_BYTES_MAX,
                "response head longer than {HEAD_BYTES_MAX} bytes"
            );
            self.fill().await?;
        };
        let head =
            std::str::from_utf8(&self.buf[..head_end]).context("the response head is not UTF-8")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("bad status line `{status_line}`"))?;
        let mut length = 0usize;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.eq_ignore_ascii_case("content-length") {
                length = value
                    .trim()
                    .parse()
                    .with_context(|| format!("bad content-length `{value}`"))?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                anyhow::bail!("chunked responses are not expected from this endpoint");
            }
        }
        anyhow::ensure!(
            length <= BODY_BYTES_MAX,
            "response body of {length} bytes is too large"
        );
        let end = head_end + length;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        while self.filled < end {
            self.fill().await?;
        }
        Ok((status, head_end..end))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Creates a principal through the admin API; returns its token.
async fn register(
    admin: &mut Conn,
    admin_token: &str,
    body: &serde_json::Value,
) -> anyhow::Result<String> {
    let auth = format!("Bearer {admin_token}");
    let response = admin
        .request(
            "POST",
            "/v1/admin/principals",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
        .await?;
    let text = String::from_utf8_lossy(&response.body).into_owned();
    anyhow::ensure!(
        response.status == 201,
        "registering {body} answered {}: {text}",
        response.status
    );
    let answer: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("bad answer `{text}`"))?;
    answer
        .get("token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("no token in `{text}`"))
}

/// The provider every benchmark record is sent under, registered for
/// every record type the generator emits.
async fn register_provider(admin: &mut Conn, admin_token: &str) -> anyhow::Result<String> {
    register(
        admin,
        admin_token,
        &serde_json::json!({
            "id": "bench-provider", "name": "Benchmark provider", "role": "provider",
            "scope": BENCH_PROVIDER, "record_types": socred_sim::record_types(),
        }),
    )
    .await
}

/// Generated record lines as NDJSON request bodies, and the subjects they
/// are about.
struct Batches {
    bodies: Arc<Vec<Vec<u8>>>,
    records: u64,
    subjects: Vec<String>,
}

/// Generates `records` record lines (facts are left out: providers may
/// send only their own retractions and corrections) and rewrites each to
/// the benchmark provider, keeping keys unique by prefixing the record id
/// with the generated provider id.
fn record_batches(records: u64, subjects: u64, seed: u64, batch: usize) -> anyhow::Result<Batches> {
    // Records the registry may still hold: decided in the five years of
    // retention before today, less a month (it refuses a record past its
    // retention at the door), up to yesterday.
    let today = today_in_china();
    let (start, end) = (
        Period::years(5).before(today).add_days(31),
        today.add_days(-1),
    );
    let config = socred_sim::GenConfig {
        seed,
        subjects,
        records,
        start,
        end,
    };
    let started = Instant::now();
    let mut bodies = Vec::new();
    let mut body = Vec::new();
    let mut in_body = 0usize;
    let mut count = 0u64;
    let mut unexpected = 0u64;
    let mut seen = std::collections::HashSet::new();
    let mut subject_ids = Vec::new();
    socred_sim::generate(&config, &mut |line: &str| {
        let Some(rest) = line.strip_prefix("{\"provider\":\"") else {
            return;
        };
        let Some((provider, rest)) = rest.split_once("\",\"id\":\"") else {
            unexpected += 1;
            return;
        };
        if let Some(subject) = rest
            .split_once("\"subject\":\"")
            .and_then(|(_, s)| s.split_once('"'))
            .map(|(s, _)| s)
        {
            if seen.insert(subject.to_string()) {
                subject_ids.push(subject.to_string());
            }
        }
        body.extend_from_slice(b"{\"provider\":\"");
        body.extend_from_slice(BENCH_PROVIDER.as_bytes());
        body.extend_from_slice(b"\",\"id\":\"");
        body.extend_from_slice(provider.as_bytes());
        body.push(b'/');
        body.extend_from_slice(rest.as_bytes());
        body.push(b'\n');
        count += 1;
        in_body += 1;
        if in_body == batch {
            bodies.push(std::mem::take(&mut body));
            in_body = 0;
        }
    });
    if !body.is_empty() {
        bodies.push(body);
    }
    anyhow::ensure!(
        unexpected == 0,
        "{unexpected} generated records did not start with provider and id"
    );
    eprintln!(
        "generated {count} records in {} requests in {:.1} s",
        bodies.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Batches {
        bodies: Arc::new(bodies),
        records: count,
        subjects: subject_ids,
    })
}

/// What an ingest pass got back.
#[derive(Debug, Default)]
struct Ingested {
    /// Records stored (or waiting for review: stored too) by 200 answers.
    acknowledged: u64,
    pending_review: u64,
    duplicate: u64,
    conflict: u64,
    rejected: u64,
    unknown_record: u64,
    /// Requests that did not answer 200 (their records are not counted).
    failed_requests: u64,
    elapsed: Duration,
}

impl Ingested {
    fn failures(&self) -> u64 {
        self.duplicate + self.conflict + self.rejected + self.unknown_record + self.failed_requests
    }
}

/// Posts every body over `connections` connections, each taking the next
/// unsent body, and adds up the counts of the answers.
async fn ingest(
    addr: SocketAddr,
    token: &str,
    bodies: &Arc<Vec<Vec<u8>>>,
    connections: usize,
) -> anyhow::Result<Ingested> {
    let next = Arc::new(AtomicUsize::new(0));
    let auth = Arc::new(format!("Bearer {token}"));
    let started = Instant::now();
    let workers = (0..connections).map(|_| {
        let (next, auth, bodies) = (next.clone(), auth.clone(), bodies.clone());
        tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut total = Ingested::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(index) else { break };
                let response = conn
                    .request(
                        "POST",
                        "/v1/records?report=problems",
                        &[
                            ("authorization", auth.as_str()),
                            ("content-type", "application/x-ndjson"),
                        ],
                        body,
                    )
                    .await?;
                if response.status != 200 {
                    total.failed_requests += 1;
                    eprintln!(
                        "ingest request {index} answered {}: {}",
                        response.status,
                        String::from_utf8_lossy(response.body.get(..500).unwrap_or(&response.body))
                    );
                    continue;
                }
                let answer: serde_json::Value = serde_json::from_slice(&response.body)
                    .context("the ingest answer is not JSON")?;
                let count = |key: &str| {
                    answer
                        .get("counts")
                        .and_then(|c| c.get(key))
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0)
                };
                total.acknowledged += count("stored") + count("pending_review");
                total.pending_review += count("pending_review");
                total.duplicate += count("duplicate");
                total.conflict += count("conflict");
                total.rejected += count("rejected");
                total.unknown_record += count("unknown_record");
            }
            anyhow::Ok(total)
        })
    });
    let mut sum = Ingested::default();
    for part in join_all(workers).await? {
        let part = part?;
        sum.acknowledged += part.acknowledged;
        sum.pending_review += part.pending_review;
        sum.duplicate += part.duplicate;
        sum.conflict += part.conflict;
        sum.rejected += part.rejected;
        sum.unknown_record += part.unknown_record;
        sum.failed_requests += part.failed_requests;
    }
    sum.elapsed = started.elapsed();
    Ok(sum)
}

/// Runs tasks to completion on the runtime and returns their outputs in
/// order.
async fn join_all<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> anyhow::Result<Vec<T>> {
    let mut outputs = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        outputs.push(task.await.context("a load task stopped unexpectedly")?);
    }
    Ok(outputs)
}

/// One prepared GET request per subject.
fn decision_requests(addr: SocketAddr, token: &str, subjects: &[String]) -> Vec<Vec<u8>> {
    subjects
        .iter()
        .map(|subject| {
            format!(
                "GET /v1/decisions?subject={subject}&measure={MEASURE}&purpose=benchmark HTTP/1.1\r\n\
                 host: {addr}\r\nauthorization: Bearer {token}\r\n\r\n"
            )
            .into_bytes()
        })
        .collect()
}

/// What one decision run measured.
struct DecideRun {
    /// Latency of every answered request, in nanoseconds, sorted.
    latencies: Vec<u64>,
    errors: u64,
    elapsed: Duration,
}

impl DecideRun {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((self.latencies.len() as f64 * q).ceil() as usize).max(1) - 1;
        let ns = self
            .latencies
            .get(rank.min(self.latencies.len() - 1))
            .copied()
            .unwrap_or(0);
        ns as f64 / 1e6
    }

    /// The run's figures, `what` per second first.
    fn summary(&self, what: &str) -> String {
        format!(
            "{:.0} {what}/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms, {} errors",
            self.rate(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
            self.percentile_ms(0.999),
            self.latencies.last().copied().unwrap_or(0) as f64 / 1e6,
            self.errors
        )
    }
}

/// Keeps `connections` connections busy with single decisions on random
/// subjects for `duration`, recording the latency of each.
async fn decide_load(
    addr: SocketAddr,
    requests: &Arc<Vec<Vec<u8>>>,
    connections: usize,
    duration: Duration,
    seed: u64,
) -> anyhow::Result<DecideRun> {
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(Conn::open(addr).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let workers = conns.into_iter().enumerate().map(|(n, mut conn)| {
        let requests = requests.clone();
        tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(
                seed.wrapping_mul(0x9e37_79b9).wrapping_add(n as u64 + 1),
            );
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut errors = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= deadline {
                    break;
                }
                let index = rng.random_range(0..requests.len());
                let Some(request) = requests.get(index) else {
                    continue;
                };
                match conn.send_raw(request).await {
                    Ok(200) => latencies.push(sent.elapsed().as_nanos() as u64),
                    Ok(status) => {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("a request answered {status}");
                        }
                    }
                    Err(error) => {
                        eprintln!("a load connection failed: {error:#}");
                        errors += 1;
                        break;
                    }
                }
            }
            (latencies, errors)
        })
    });
    let outputs = join_all(workers).await?;
    let elapsed = started.elapsed();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for (part, part_errors) in outputs {
        latencies.extend(part);
        errors += part_errors;
    }
    latencies.sort_unstable();
    Ok(DecideRun {
        latencies,
        errors,
        elapsed,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The machine line for BENCHMARKS.md: cores, CPU model, date (UTC).
fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    format!(
        "machine: {cores} cores (nproc), {model}, {} (UTC)",
        Day(days as i32)
    )
}

/// Which store the server runs on: the child inherits `SOCRED_STORE`.
fn store_label() -> &'static str {
    match std::env::var("SOCRED_STORE") {
        Ok(url) if url.starts_with("postgres") => "PostgreSQL (SOCRED_STORE)",
        Ok(_) => "the store in SOCRED_STORE",
        Err(_) => "SQLite",
    }
}

/// Today in China Standard Time (UTC+08:00), the day the server reads
/// files and retention as of.
fn today_in_china() -> Day {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let days = (seconds + 8 * 3_600) / 86_400;
    Day(i32::try_from(days).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_records_are_rewritten_to_the_benchmark_provider_with_unique_ids() {
        let batches = record_batches(2_000, 200, 3, 500).unwrap();
        assert_eq!(batches.records, 2_000);
        assert_eq!(batches.bodies.len(), 4);
        let rulebook = socred_schema::default_rulebook();
        let mut keys = std::collections::HashSet::new();
        let mut line_no = 0;
        for body in batches.bodies.iter() {
            for line in std::str::from_utf8(body).unwrap().lines() {
                line_no += 1;
                let (item, _) = socred_schema::wire::parse_line(&rulebook, line_no, line)
                    .unwrap_or_else(|e| panic!("{line}: {e:?}"));
                let socred_schema::wire::Item::Record(record) = item else {
                    panic!("not a record: {line}");
                };
                assert_eq!(&*record.key.provider, BENCH_PROVIDER);
                assert!(
                    keys.insert(record.key.id.to_string()),
                    "duplicate id in {line}"
                );
            }
        }
        assert!(!batches.subjects.is_empty());
    }

    #[test]
    fn percentiles_pick_the_rank_that_covers_the_quantile() {
        let run = DecideRun {
            latencies: (1..=1000).map(|ms| ms * 1_000_000).collect(),
            errors: 0,
            elapsed: Duration::from_secs(1),
        };
        assert_eq!(run.percentile_ms(0.50), 500.0);
        assert_eq!(run.percentile_ms(0.99), 990.0);
        assert_eq!(run.percentile_ms(0.999), 999.0);
        assert_eq!(run.rate(), 1000.0);
    }

    #[test]
    fn median_is_the_middle_value() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
