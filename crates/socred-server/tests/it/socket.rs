//! The server over a real TCP socket, with a real (minimal) HTTP client:
//! ingest, then decide, on one keep-alive connection.

use socred_server::client::Connection;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_decide_over_a_socket() {
    let h = Harness::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.app.clone();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
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
    server.abort();
}
