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
