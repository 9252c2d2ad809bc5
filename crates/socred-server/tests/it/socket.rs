//! The server over a real TCP socket, with a real (minimal) HTTP client:
//! ingest, then decide, on one keep-alive connection; and clients that
//! stall in the middle of a request, or never read the answers, are not
//! waited for past the limits, not even when the server stops.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socred_server::client::Connection;
use socred_server::listen::{serve, Timeouts};

use crate::harness::*;

/// Serves `h` on a socket of its own with `timeouts`, until the test ends.
async fn on_a_socket(h: &Harness, timeouts: Timeouts) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.app.clone();
    tokio::spawn(serve(listener, app, timeouts, std::future::pending()));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_decide_over_a_socket() {
    let h = Harness::new().await;
    let addr = on_a_socket(&h, Timeouts::default()).await;
    let subject = alice();
    let replies = tokio::task::spawn_blocking(move || {
        let mut connection = Connection::open(addr).unwrap();
        let body = [
            fare_evasion("fe-1", subject, "2026-05-20"),
            fare_evasion("fe-2", subject, "2026-05-21"),
        ]
        .join("\n");
        let auth = format!("Bearer {METRO}");
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/x-ndjson"),
        ];
        let ingest = connection
            .send("POST", "/v1/records", &headers, body.as_bytes())
            .unwrap();
        let auth = format!("Bearer {RAIL}");
        let uri =
            format!("/v1/decisions?subject={subject}&measure=no_rail_tickets&purpose=ticket_sale");
        let decision = connection
            .send("GET", &uri, &[("authorization", auth.as_str())], b"")
            .unwrap();
        let missing = connection.send("GET", "/v1/nowhere", &[], b"").unwrap();
        (ingest, decision, missing)
    })
    .await
    .unwrap();
    let (ingest, decision, missing) = replies;
    assert_eq!(ingest.status, 200, "{}", ingest.text());
    assert_eq!(ingest.json().unwrap()["counts"]["stored"], 2);
    assert_eq!(decision.status, 200, "{}", decision.text());
    assert_eq!(decision.header("content-type"), Some("application/json"));
    assert_eq!(decision.json().unwrap()["applies"], true);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json().unwrap()["error"]["code"], "no_such_endpoint");
}

/// Reads what the server sends on `stream` until it closes it; the text,
/// and how long that took from `since`.
fn until_closed(mut stream: TcpStream, since: Instant) -> (String, Duration) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        since.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stall_are_not_waited_for() {
    let h = Harness::new().await;
    let limit = Duration::from_millis(600);
    let addr = on_a_socket(
        &h,
        Timeouts {
            head: limit,
            body_idle: limit,
            ..Timeouts::default()
        },
    )
    .await;
    let (head, body, idle) = tokio::task::spawn_blocking(move || {
        // Half a request head, then nothing: the connection is closed.
        let mut stream = TcpStream::connect(addr).unwrap();
        let start = Instant::now();
        stream
            .write_all(b"GET /v1/rulebook HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let head = until_closed(stream, start);
        // A whole head and part of the body it announces: 408.
        let mut stream = TcpStream::connect(addr).unwrap();
        let start = Instant::now();
        let auth = format!("Authorization: Bearer {RAIL}\r\n");
        let request = format!(
            "POST /v1/decisions HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n{{\"purpose\""
        );
        stream.write_all(request.as_bytes()).unwrap();
        let body = until_closed(stream, start);
        // A connection opened and never used is closed too.
        let stream = TcpStream::connect(addr).unwrap();
        let idle = until_closed(stream, Instant::now());
        (head, body, idle)
    })
    .await
    .unwrap();
    for (what, (text, took)) in [("head", &head), ("body", &body), ("idle", &idle)] {
        assert!(
            *took >= limit && *took < limit * 10,
            "{what}: closed after {took:?} ({text})"
        );
    }
    assert!(
        head.0.is_empty() || head.0.starts_with("HTTP/1.1 408"),
        "{}",
        head.0
    );
    assert!(body.0.starts_with("HTTP/1.1 408"), "{}", body.0);
    assert!(body.0.contains("\"request_timeout\""), "{}", body.0);

    // A request that arrives whole is answered as ever.
    let answer = tokio::task::spawn_blocking(move || {
        let mut connection = Connection::open(addr).unwrap();
        connection.send("GET", "/healthz", &[], b"").unwrap()
    })
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
}

/// Serves `h` with `timeouts` until `stop` is sent; the task ends when
/// the server has stopped.
async fn stoppable(
    h: &Harness,
    timeouts: Timeouts,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, h.app.clone(), timeouts, async {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

/// Sends `REQUESTS` requests for the OpenAPI description in one go and
/// reads nothing: far more answer than the sockets between hold.
const REQUESTS: usize = 2_000;

fn send_and_never_read(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(&b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(REQUESTS))
        .unwrap();
    stream
}

/// Stops the server while a client that sent its requests and reads
/// nothing holds its connection open; how long the server took to stop.
async fn stop_while_one_holds(
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
) -> Duration {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let client = tokio::task::spawn_blocking(move || {
        let stream = send_and_never_read(addr);
        let _ = wait.recv_timeout(Duration::from_secs(20));
        drop(stream);
    });
    // Time for the answers to stall.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .unwrap();
    let took = asked.elapsed();
    done.send(()).unwrap();
    client.await.unwrap();
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_are_not_waited_for() {
    let h = Harness::new().await;
    let limit = Duration::from_millis(600);
    let (addr, stop, server) = stoppable(
        &h,
        Timeouts {
            write_idle: limit,
            ..Timeouts::default()
        },
    )
    .await;
    // The answers stall once the sockets are full; the connection is
    // closed `limit` later, with most answers never written.
    let answers = tokio::task::spawn_blocking(move || {
        let stream = send_and_never_read(addr);
        std::thread::sleep(limit * 4);
        let (text, _) = until_closed(stream, Instant::now());
        text.matches("HTTP/1.1 200").count()
    })
    .await
    .unwrap();
    assert!(
        answers > 0 && answers < REQUESTS,
        "{answers} of {REQUESTS} answers came before the connection closed"
    );

    // Another such client does not keep the server from stopping.
    let took = stop_while_one_holds(addr, stop, server).await;
    assert!(took < limit * 5, "stopped after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_waits_at_most_the_drain_limit() {
    let h = Harness::new().await;
    let drain = Duration::from_millis(600);
    // Writes may stall for as long as they like here: only the drain
    // limit ends the wait for the client below.
    let (addr, stop, server) = stoppable(
        &h,
        Timeouts {
            write_idle: Duration::from_secs(3600),
            drain,
            ..Timeouts::default()
        },
    )
    .await;
    let took = stop_while_one_holds(addr, stop, server).await;
    assert!(took >= drain && took < drain * 5, "stopped after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_will_be_refused_are_refused_before_their_body() {
    let h = Harness::new().await;
    let addr = on_a_socket(&h, Timeouts::default()).await;
    // Each announces 50 MB of records (or more) and sends none: the answer
    // must not wait for them (it would wait 30 seconds, then say 408).
    let over = (h.state.limits().ingest_body_bytes_max + 1).to_string();
    let cases = [
        (
            "POST /v1/records",
            "",
            "application/x-ndjson",
            "",
            "401",
            "unauthenticated",
        ),
        (
            "POST /v1/decisions",
            "",
            "application/json",
            "",
            "401",
            "unauthenticated",
        ),
        (
            "PUT /v1/admin/rulebook",
            "",
            "text/plain",
            "",
            "401",
            "unauthenticated",
        ),
        (
            "POST /v1/records",
            ALICE,
            "application/x-ndjson",
            "",
            "403",
            "forbidden",
        ),
        (
            "POST /v1/records",
            COURT,
            "application/pdf",
            "",
            "415",
            "unsupported_media_type",
        ),
        // Compressed: read as it is, it would be rejected line by line.
        (
            "POST /v1/records",
            COURT,
            "application/x-ndjson",
            "Content-Encoding: gzip\r\n",
            "415",
            "unsupported_media_type",
        ),
        // Over the limit by its own account: told at once, and the
        // connection is closed, as the answer says.
        (
            "POST /v1/records",
            COURT,
            "application/x-ndjson",
            "over",
            "413",
            "body_too_large",
        ),
        // The same on a route of the smaller limit (4 MiB; 50 MB is over).
        (
            "POST /v1/decisions",
            RAIL,
            "application/json",
            "",
            "413",
            "body_too_large",
        ),
    ];
    for (line, token, media, extra, status, code) in cases {
        let auth = if token.is_empty() {
            String::new()
        } else {
            format!("Authorization: Bearer {token}\r\n")
        };
        let (extra, length) = match extra {
            "over" => (String::new(), over.clone()),
            extra => (extra.to_string(), "50000000".to_string()),
        };
        let answer = tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .write_all(
                    format!(
                        "{line} HTTP/1.1\r\nHost: x\r\n{auth}{extra}Content-Type: {media}\r\n\
                         Content-Length: {length}\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut answer = vec![0; 4096];
            let read = stream.read(&mut answer).unwrap_or(0);
            String::from_utf8_lossy(&answer[..read]).into_owned()
        })
        .await
        .unwrap();
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{line} with {media}: {answer}"
        );
        assert!(answer.contains(&format!("\"{code}\"")), "{line}: {answer}");
        if status == "413" {
            assert!(
                answer.to_ascii_lowercase().contains("connection: close"),
                "{answer}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_to_a_caller_with_a_token_are_not_cached() {
    let h = Harness::new().await;
    let addr = on_a_socket(&h, Timeouts::default()).await;
    let subject = alice();
    let answers = tokio::task::spawn_blocking(move || {
        let mut connection = Connection::open(addr).unwrap();
        let auth = [("Authorization", format!("Bearer {ALICE}"))];
        let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
        [
            format!("/v1/subjects/{subject}"),
            format!("/v1/subjects/{subject}/explanation"),
            format!("/v1/subjects/{subject}/access-log"),
            "/v1/rulebook".to_string(),
        ]
        .map(|uri| {
            (
                uri.clone(),
                connection.send("GET", &uri, &auth, b"").unwrap(),
            )
        })
    })
    .await
    .unwrap();
    for (uri, answer) in &answers {
        assert_eq!(answer.status, 200, "{uri}: {}", answer.text());
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{uri}");
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{uri}"
        );
    }
    // Anonymous public answers may be cached; they are not sniffed either.
    let public = tokio::task::spawn_blocking(move || {
        let mut connection = Connection::open(addr).unwrap();
        connection
            .send("GET", "/v1/public/lists", &[], b"")
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(public.header("cache-control"), None);
    assert_eq!(public.header("x-content-type-options"), Some("nosniff"));
}

/// A body that cannot be read says why: chunks that do not parse, or a
/// body cut short by the client closing its side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_body_says_why() {
    let h = Harness::new().await;
    let addr = on_a_socket(&h, Timeouts::default()).await;
    let head = format!(
        "POST /v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {COURT}\r\n\
         Content-Type: application/x-ndjson\r\n"
    );
    let cases = [
        (
            format!("{head}Transfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"),
            false,
            "chunked transfer encoding is malformed",
        ),
        (
            format!("{head}Content-Length: 100\r\n\r\n{{\"provider\":"),
            true,
            "ended before it was whole",
        ),
    ];
    // A client that closes its side of the connection still reads the
    // answer on the other.
    for (request, half_close, says) in cases {
        let answer = tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            if half_close {
                stream.shutdown(std::net::Shutdown::Write).unwrap();
            }
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        })
        .await
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("\"invalid_body\""), "{answer}");
        assert!(answer.contains(says), "{answer}");
    }
}
