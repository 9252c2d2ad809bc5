//! The web portal's files through the router: served with their types and
//! a policy that forbids inline and foreign scripts and framing; every
//! file the page names exists; and the script never writes markup (the
//! browser tests in `browser` show the page itself at work).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

use crate::harness::*;

/// (status, content type, content security policy, body) of a GET.
async fn fetch(h: &Harness, path: &str) -> (StatusCode, String, String, String) {
    let request = Request::builder().uri(path).body(Body::empty()).unwrap();
    let response = h.app.clone().oneshot(request).await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (status, content_type, policy) = (
        response.status(),
        header("content-type"),
        header("content-security-policy"),
    );
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        content_type,
        policy,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn the_page_and_its_files_are_served_under_a_strict_policy() {
    let h = Harness::new().await;
    let (status, content_type, policy, page) = fetch(&h, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/html; charset=utf-8");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} missing: {policy}");
    }
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));

    // Every file the page loads is there, with the right type.
    let mut named = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in page.match_indices(attribute) {
            let rest = &page[at + attribute.len()..];
            let value = &rest[..rest.find('"').unwrap()];
            if value.starts_with('/') && !value.starts_with("/openapi") {
                named.push(value.to_string());
            }
        }
    }
    named.sort();
    assert_eq!(named, ["/portal.css", "/portal.js"]);
    for (path, expected) in [
        ("/portal.js", "text/javascript; charset=utf-8"),
        ("/portal.css", "text/css; charset=utf-8"),
    ] {
        let (status, content_type, policy, body) = fetch(&h, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(content_type, expected, "{path}");
        assert!(!policy.is_empty(), "{path} has no policy");
        assert!(!body.is_empty(), "{path} is empty");
    }
    // No script or style inline, which the policy would block anyway.
    assert!(!page.contains("<script>") && !page.contains("<style") && !page.contains(" on"));
}

#[tokio::test]
async fn the_script_writes_text_never_markup() {
    let h = Harness::new().await;
    let (_, _, _, script) = fetch(&h, "/portal.js").await;
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "localStorage",
        "document.cookie",
    ] {
        assert!(!script.contains(sink), "the portal's script uses {sink}");
    }
    assert!(script.contains("textContent") && script.contains("sessionStorage"));
}

#[tokio::test]
async fn the_portal_takes_no_writes_and_leaves_the_api_alone() {
    let h = Harness::new().await;
    h.send(Method::POST, "/", None, None, Body::empty())
        .await
        .expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    h.get("/portal.html", None)
        .await
        .expect_error(StatusCode::NOT_FOUND, "no_such_endpoint");
    // The API answers as before next to it.
    h.get("/v1/public/lists", None).await.expect(StatusCode::OK);
}
