//! Errors every endpoint shares: unknown paths and methods, health checks.

use axum::http::{Method, StatusCode};

use crate::harness::*;

#[tokio::test]
async fn unknown_paths_and_methods_answer_json_errors() {
    let h = Harness::new().await;
    h.get("/v1/nothing-here", None)
        .await
        .expect_error(StatusCode::NOT_FOUND, "no_such_endpoint");
    h.get("/v2/records", Some(METRO))
        .await
        .expect_error(StatusCode::NOT_FOUND, "no_such_endpoint");
    let reply = h
        .send(Method::DELETE, "/v1/records", Some(METRO), None, "")
        .await;
    reply.expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let reply = h.send(Method::PATCH, "/v1/rulebook", None, None, "").await;
    reply.expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn health_and_readiness() {
    let h = Harness::new().await;
    assert_eq!(
        h.get("/healthz", None).await.expect(StatusCode::OK).json()["status"],
        "ok"
    );
    let ready = h.get("/readyz", None).await.expect(StatusCode::OK).json();
    assert_eq!(ready["status"], "ready");
    assert!(ready["rulebook"]
        .as_str()
        .unwrap()
        .starts_with("socred-default@"));
}

#[tokio::test]
async fn a_malformed_authorization_header_is_refused_even_on_public_endpoints() {
    let h = Harness::new().await;
    let request = axum::http::Request::builder()
        .uri("/v1/rulebook")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(h.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    h.get("/v1/rulebook", Some("unknown-token-000000000000"))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "invalid_token");
}

/// The token of the harness's principal of `role` (the subject is alice).
fn token_of(role: &str) -> &'static str {
    match role {
        "admin" => ADMIN,
        "provider" => COURT,
        "reviewer" => REVIEWER_1,
        "agency" => AIRLINE,
        "subject" => ALICE,
        "auditor" => AUDITOR,
        other => panic!("a role the harness lacks: {other}"),
    }
}

/// Every refusal is a JSON error with a stable code and a message; the
/// harness fails on any 500 or handler panic.
#[track_caller]
fn assert_named_refusal(reply: &Reply, what: &str) -> bool {
    if !reply.status.is_client_error() {
        return false;
    }
    assert!(
        reply.content_type.starts_with("application/json"),
        "{what}: {} as {:?}: {}",
        reply.status,
        reply.content_type,
        reply.text
    );
    let body = reply.json();
    let code = body["error"]["code"].as_str().unwrap_or_default();
    assert!(
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "{what}: code {code:?} in {}",
        reply.text
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{what}: no message in {}", reply.text);
    true
}

/// Every operation of the OpenAPI description, called by each role it
/// admits (anonymously when public), with bodies and queries that are wrong
/// in the usual ways: broken, unbalanced or deeply nested JSON, unknown
/// keys, numbers out of range, control characters, a media type it does
/// not take, unknown or out-of-range query parameters, bytes that are not
/// UTF-8. Nothing answers 500 or panics, every refusal names its problem
/// in a JSON error, and nothing takes such input for valid: ingestion
/// answers with every item rejected, and only operations that read no
/// body or query (the erasure run; the machines' endpoints) succeed.
#[tokio::test]
async fn every_operation_refuses_malformed_input_with_a_named_error() {
    let h = Harness::new().await;
    let document: serde_json::Value = serde_json::from_str(socred_server::openapi_json()).unwrap();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies = [
        ("application/json", "{".to_string()),
        ("application/json", "[1, 2".to_string()),
        ("application/json", "null".to_string()),
        ("application/json", r#"{"no_such_key": true}"#.to_string()),
        (
            "application/json",
            r#"{"subject": 1e999, "id": -1}"#.to_string(),
        ),
        ("application/json", "\"\u{1}\u{0}\"".to_string()),
        ("application/json", deep),
        ("application/x-ndjson", "{\n[\n\"x\"\n".to_string()),
        ("application/toml", "[[[".to_string()),
        ("text/plain", "hello".to_string()),
    ];
    let queries = [
        "?no_such_parameter=1",
        "?limit=-1",
        "?limit=99999999999999999999999",
        "?after=%FF%FE",
        "?subject=%00&measure=&purpose=%0A",
        "?as_of=2026-02-30",
    ];
    // Operations that read neither body nor query.
    let reads_nothing = |method: &Method, path: &str| {
        (method == Method::POST && path == "/v1/admin/erasure") || !path.starts_with("/v1/")
    };
    let concrete = |path: &str| {
        path.replace("{id}", &alice().to_string())
            .replace("{uscc}", &acme().to_string())
    };
    let mut calls = 0;
    for (method, path) in socred_server::route_table() {
        let operation = &document["paths"][*path][*method];
        let roles: Vec<&str> = operation["x-roles"]
            .as_array()
            .map(|roles| roles.iter().filter_map(|r| r.as_str()).collect())
            .unwrap_or_default();
        let tokens: Vec<Option<&str>> = if roles.is_empty() {
            vec![None]
        } else {
            roles.iter().map(|role| Some(token_of(role))).collect()
        };
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let uri = concrete(path);
        let mut sends: Vec<(String, Option<&str>, String)> = queries
            .iter()
            .map(|query| (format!("{uri}{query}"), None, String::new()))
            .collect();
        if method != Method::GET {
            sends.extend(
                bodies
                    .iter()
                    .map(|(content_type, body)| (uri.clone(), Some(*content_type), body.clone())),
            );
        }
        for token in tokens {
            for (target, content_type, body) in &sends {
                let reply = h
                    .send(method.clone(), target, token, *content_type, body.clone())
                    .await;
                let what =
                    format!("{method} {target} as {token:?} with {content_type:?} {body:.40}");
                calls += 1;
                if assert_named_refusal(&reply, &what) {
                    continue;
                }
                if method == Method::POST && *path == "/v1/records" && content_type.is_some() {
                    // Ingestion answers item by item: each rejected, with
                    // its code.
                    let results = reply.json()["results"].clone();
                    let results = results.as_array().cloned().unwrap_or_default();
                    assert!(!results.is_empty(), "{what}: {}", reply.text);
                    for result in results {
                        assert_eq!(result["status"], "rejected", "{what}: {result}");
                        assert!(
                            result["code"].as_str().is_some_and(|c| !c.is_empty()),
                            "{what}: {result}"
                        );
                    }
                    continue;
                }
                assert!(
                    reads_nothing(&method, path),
                    "{what} was taken for valid: {} {}",
                    reply.status,
                    reply.text
                );
            }
        }
    }
    assert!(calls > 300, "{calls} calls");
}

/// A HEAD reads its route's query as the GET does: refused where the GET
/// takes no parameters, accepted where it does.
#[tokio::test]
async fn a_head_request_reads_the_query_as_its_get_does() {
    let h = Harness::new().await;
    let reply = h
        .send(
            Method::HEAD,
            "/v1/public/lists/judgment_defaulters?limit=5",
            None,
            None,
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let reply = h
        .send(Method::HEAD, "/v1/public/lists?limit=5", None, None, "")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}
