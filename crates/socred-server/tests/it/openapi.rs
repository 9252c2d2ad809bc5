//! The OpenAPI description matches the router: the same paths and
//! methods, and each operation's roles are what the endpoint enforces.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::Value;
use socred_server::route_table;

use crate::harness::*;

fn described() -> Value {
    serde_json::from_str(socred_server::openapi_json()).unwrap()
}

#[tokio::test]
async fn every_route_is_described_and_every_description_is_a_route() {
    let h = Harness::new().await;
    let served = h
        .get("/openapi.json", None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(served, described());
    assert_eq!(served["openapi"], "3.1.0");

    let mut in_document = BTreeSet::new();
    for (path, methods) in served["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            in_document.insert((method.to_uppercase(), path.clone()));
        }
    }
    let in_router: BTreeSet<(String, String)> = route_table()
        .iter()
        .map(|(method, path)| (method.to_uppercase(), path.to_string()))
        .collect();
    assert_eq!(in_document, in_router);
}

/// A concrete URI for a route template.
fn concrete(path: &str) -> String {
    path.replace("{id}", &alice().to_string())
        .replace("{uscc}", &acme().to_string())
}

#[tokio::test]
async fn anonymous_callers_reach_exactly_the_public_operations() {
    let h = Harness::new().await;
    let document = described();
    for (method, path) in route_table() {
        let operation = &document["paths"][*path][*method];
        let roles = operation["x-roles"].as_array().map(Vec::len).unwrap_or(0);
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let reply = h
            .send(
                method.clone(),
                &concrete(path),
                None,
                Some("application/json"),
                "{}",
            )
            .await;
        if roles == 0 {
            assert_eq!(
                operation["security"],
                serde_json::json!([]),
                "{method} {path}"
            );
            assert_ne!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} is public but refused: {}",
                reply.text
            );
        } else {
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} answered anonymously: {}",
                reply.text
            );
            assert_eq!(reply.code(), "unauthenticated");
        }
    }
}
