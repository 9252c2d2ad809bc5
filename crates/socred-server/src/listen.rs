//! The HTTP/1.1 loop: the router served on each accepted connection, with
//! the time limits `axum::serve` does not set. A client that opens a
//! connection and then sends its request's head or body slowly, or not at
//! all, would otherwise hold the connection (and what the server keeps for
//! it) for as long as it likes; a few thousand such clients take a server
//! out of service.
//!
//! - The head of every request (its line and headers) must arrive within
//!   [`Timeouts::head`] of the server starting to wait for it. That also
//!   closes a kept-alive connection left idle for as long.
//! - A body must not stall for longer than [`Timeouts::body_idle`]
//!   between two pieces; one that does is refused with `408
//!   request_timeout` (`body.rs`). A large body sent steadily takes as
//!   long as it needs.
//! - An answer the client does not read (its socket takes nothing more for
//!   [`Timeouts::write_idle`]) ends the connection. Otherwise a client
//!   that sends requests and never reads what comes back holds its
//!   connection, and the answers waiting in it, forever.
//!
//! Stopping ([`serve`]'s `shutdown`) stops accepting, lets each request
//! under way finish and then closes its connection; requests still under
//! way after [`Timeouts::drain`] are dropped unanswered. Nothing is lost
//! by that: an item is acknowledged only once it is committed, and an
//! unanswered one is sent again by its provider.

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt as _;
use tower_http::timeout::TimeoutBody;

/// How long the server waits on a client.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// For a request's whole head, from when the server starts reading it
    /// (on a kept-alive connection: from the end of the previous answer).
    pub head: Duration,
    /// For the next piece of a request's body.
    pub body_idle: Duration,
    /// For the client's socket to take the next piece of an answer.
    pub write_idle: Duration,
    /// For the requests under way once the server is told to stop.
    pub drain: Duration,
}

impl Default for Timeouts {
    /// 30 seconds for each wait on a client: far longer than any client on
    /// a working network needs, short enough that stalled connections do
    /// not pile up. A minute to drain: a batch of records that takes
    /// longer to commit than that is far larger than any provider sends.
    fn default() -> Timeouts {
        Timeouts {
            head: Duration::from_secs(30),
            body_idle: Duration::from_secs(30),
            write_idle: Duration::from_secs(30),
            drain: Duration::from_secs(60),
        }
    }
}

/// Serves `app` on every connection `listener` accepts until `shutdown`
/// completes, then waits for the requests under way, for at most
/// [`Timeouts::drain`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.head)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    pause_after(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small and written whole: send them at once rather
        // than let Nagle's algorithm hold them for the client's delayed
        // ACK.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on a connection: {error}");
        }
        let mut tcp = TimeoutStream::new(tcp);
        tcp.set_write_timeout(Some(timeouts.write_idle));
        let app = app.clone();
        let body_idle = timeouts.body_idle;
        let service = tower::service_fn(move |request: Request<Incoming>| {
            let request = request.map(|body| Body::new(TimeoutBody::new(body_idle, body)));
            app.clone().oneshot(request)
        });
        let connection = http.serve_connection(
            TokioIo::new(Box::pin(tcp)),
            TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!("a connection ended with an error: {error}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(timeouts.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "stopping with requests still under way after {:?}; they are not answered",
            timeouts.drain
        );
    }
}

/// After a failed accept: errors that concern one connection (it was reset
/// before it was taken) are passed over; others (out of file descriptors)
/// are logged, and the loop waits a moment rather than spin.
async fn pause_after(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!("cannot accept a connection: {error}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
