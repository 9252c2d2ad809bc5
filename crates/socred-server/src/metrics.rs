//! A small Prometheus registry, by hand: request counts by route, method
//! and status, a latency histogram per route, ingest outcomes and decision
//! answers. A metrics crate would bring a dependency tree for what is a few
//! counters behind one mutex; the text format is simple and stable.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use crate::state::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS_S: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Ingest outcomes, in the order of [`Metrics::ingest`]'s counters.
pub const INGEST_STATUSES: [&str; 6] = [
    "stored",
    "duplicate",
    "conflict",
    "pending_review",
    "unknown_record",
    "rejected",
];

static PANICS: AtomicU64 = AtomicU64::new(0);

pub fn record_panic() {
    PANICS.fetch_add(1, Ordering::Relaxed);
}

pub fn panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

/// What [`Metrics::summary`] gives.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub requests: RequestClasses,
    /// Items sent to `POST /v1/records`, by outcome.
    pub ingest: BTreeMap<&'static str, u64>,
    pub decisions: Decisions,
    /// What erasure at the end of retention did.
    pub erasure: Erased,
    /// Request handlers that panicked (a bug each).
    pub panics: u64,
}

/// Erasure runs since the start and what they erased; `held_back` is the
/// last run's (held-back records are counted again by every run).
#[derive(Debug, Default, Serialize)]
pub struct Erased {
    pub runs: u64,
    pub records: u64,
    pub facts: u64,
    pub rejected: u64,
    pub pending: u64,
    pub held_back: u64,
}

/// HTTP requests answered, by class of status.
#[derive(Debug, Default, Serialize)]
pub struct RequestClasses {
    /// 2xx and 3xx.
    pub success: u64,
    /// 4xx: refused as the caller's doing (bad input, no right).
    pub refused: u64,
    /// 5xx: the registry failed.
    pub failed: u64,
}

/// Decisions answered, by verdict.
#[derive(Debug, Serialize)]
pub struct Decisions {
    pub applies: u64,
    pub does_not_apply: u64,
}

#[derive(Default)]
struct Route {
    by_status: BTreeMap<(&'static str, u16), u64>,
    /// Count per bucket (not cumulative), then the overflow.
    buckets: [u64; BUCKETS_S.len() + 1],
    sum_s: f64,
    count: u64,
}

#[derive(Default)]
pub(crate) struct Metrics {
    routes: Mutex<BTreeMap<String, Route>>,
    ingest: [AtomicU64; INGEST_STATUSES.len()],
    decisions_applies: AtomicU64,
    decisions_not_applies: AtomicU64,
    erased: Mutex<Erased>,
}

impl Metrics {
    fn record(&self, route: &str, method: &'static str, status: u16, elapsed: Duration) {
        let Ok(mut routes) = self.routes.lock() else {
            return;
        };
        if !routes.contains_key(route) {
            routes.insert(route.to_string(), Route::default());
        }
        let Some(entry) = routes.get_mut(route) else {
            return;
        };
        *entry.by_status.entry((method, status)).or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS_S
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS_S.len());
        if let Some(slot) = entry.buckets.get_mut(bucket) {
            *slot += 1;
        }
        entry.sum_s += seconds;
        entry.count += 1;
    }

    /// Counts one ingest outcome (an index into [`INGEST_STATUSES`]).
    pub fn ingest(&self, status: usize, count: u64) {
        if let Some(counter) = self.ingest.get(status) {
            counter.fetch_add(count, Ordering::Relaxed);
        }
    }

    pub fn decisions(&self, applies: u64, not_applies: u64) {
        self.decisions_applies.fetch_add(applies, Ordering::Relaxed);
        self.decisions_not_applies
            .fetch_add(not_applies, Ordering::Relaxed);
    }

    /// Counts one erasure run.
    pub fn erasure(&self, run: &socred_store::Erasure) {
        let mut erased = match self.erased.lock() {
            Ok(erased) => erased,
            Err(poisoned) => poisoned.into_inner(),
        };
        erased.runs += 1;
        erased.records += run.records;
        erased.facts += run.facts;
        erased.rejected += run.rejected;
        erased.pending += run.pending;
        erased.held_back = run.held_back;
    }

    fn erased(&self) -> Erased {
        let erased = match self.erased.lock() {
            Ok(erased) => erased,
            Err(poisoned) => poisoned.into_inner(),
        };
        Erased {
            runs: erased.runs,
            records: erased.records,
            facts: erased.facts,
            rejected: erased.rejected,
            pending: erased.pending,
            held_back: erased.held_back,
        }
    }

    /// The counters since this process started, for the operator's
    /// dashboard.
    pub fn summary(&self) -> Summary {
        let mut requests = RequestClasses::default();
        if let Ok(routes) = self.routes.lock() {
            for entry in routes.values() {
                for (&(_, status), &count) in &entry.by_status {
                    match status {
                        200..=399 => requests.success += count,
                        400..=499 => requests.refused += count,
                        _ => requests.failed += count,
                    }
                }
            }
        }
        Summary {
            requests,
            ingest: INGEST_STATUSES
                .iter()
                .zip(self.ingest.iter())
                .map(|(status, counter)| (*status, counter.load(Ordering::Relaxed)))
                .collect(),
            decisions: Decisions {
                applies: self.decisions_applies.load(Ordering::Relaxed),
                does_not_apply: self.decisions_not_applies.load(Ordering::Relaxed),
            },
            erasure: self.erased(),
            panics: panics(),
        }
    }

    /// Everything in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP socred_http_requests_total HTTP requests answered, by route, method and status.\n");
        out.push_str("# TYPE socred_http_requests_total counter\n");
        let routes = match self.routes.lock() {
            Ok(routes) => routes,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (route, entry) in routes.iter() {
            for ((method, status), count) in &entry.by_status {
                let _ = writeln!(
                    out,
                    "socred_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP socred_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE socred_http_request_duration_seconds histogram\n");
        for (route, entry) in routes.iter() {
            let route = escape(route);
            let mut cumulative = 0;
            for (bound, count) in BUCKETS_S.iter().zip(entry.buckets.iter()) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "socred_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "socred_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                entry.count
            );
            let _ = writeln!(
                out,
                "socred_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                entry.sum_s
            );
            let _ = writeln!(
                out,
                "socred_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                entry.count
            );
        }
        drop(routes);
        out.push_str(
            "# HELP socred_ingest_items_total Items sent to POST /v1/records, by outcome.\n",
        );
        out.push_str("# TYPE socred_ingest_items_total counter\n");
        for (status, counter) in INGEST_STATUSES.iter().zip(self.ingest.iter()) {
            let _ = writeln!(
                out,
                "socred_ingest_items_total{{status=\"{status}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP socred_decisions_total Decisions answered, by whether the measure applies.\n",
        );
        out.push_str("# TYPE socred_decisions_total counter\n");
        let _ = writeln!(
            out,
            "socred_decisions_total{{applies=\"true\"}} {}\nsocred_decisions_total{{applies=\"false\"}} {}",
            self.decisions_applies.load(Ordering::Relaxed),
            self.decisions_not_applies.load(Ordering::Relaxed)
        );
        let erased = self.erased();
        out.push_str("# HELP socred_erasure_runs_total Erasure runs at the end of retention.\n");
        out.push_str("# TYPE socred_erasure_runs_total counter\n");
        let _ = writeln!(out, "socred_erasure_runs_total {}", erased.runs);
        out.push_str("# HELP socred_erased_total Items erased at the end of retention, by kind.\n");
        out.push_str("# TYPE socred_erased_total counter\n");
        let _ = writeln!(
            out,
            "socred_erased_total{{kind=\"record\"}} {}\nsocred_erased_total{{kind=\"fact\"}} {}\nsocred_erased_total{{kind=\"rejected_record\"}} {}\nsocred_erased_total{{kind=\"pending_record\"}} {}",
            erased.records, erased.facts, erased.rejected, erased.pending
        );
        out.push_str(
            "# HELP socred_erasure_held_back Records past retention the last run held back.\n",
        );
        out.push_str("# TYPE socred_erasure_held_back gauge\n");
        let _ = writeln!(out, "socred_erasure_held_back {}", erased.held_back);
        out.push_str("# HELP socred_panics_total Request handlers that panicked (a bug each).\n");
        out.push_str("# TYPE socred_panics_total counter\n");
        let _ = writeln!(out, "socred_panics_total {}", panics());
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: times every request and counts it under its route template
/// (`/v1/subjects/{id}`, never the concrete path: identifiers stay out of
/// the metrics and the label set stays small).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_string(),
        None => "unmatched".to_string(),
    };
    let method = method_name(request.method());
    let response = next.run(request).await;
    state.inner.metrics.record(
        &route,
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

fn method_name(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
