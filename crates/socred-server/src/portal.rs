//! The web portal: one page, a script and a style sheet, compiled into the
//! binary and served at `/`. The page reads the JSON API from the browser,
//! as any client does, so it holds no data, no privilege and no logic of
//! its own: the public sees the public lists and a company's public
//! credit; a subject signs in with its identity number and token and reads
//! its own file, the explanation of every point and who read the file
//! (each read logged like any other), and grants or withdraws consent.
//!
//! Why a static page over the API rather than pages rendered here: every
//! rule about who may see what stays in one place (the API's handlers),
//! and the portal cannot show anything the API would refuse.
//!
//! The token lives in the tab's `sessionStorage` and goes out only in the
//! `Authorization` header of the page's own requests: no cookie, so no
//! request forged from another site carries it. The responses forbid
//! inline and foreign scripts, framing and MIME sniffing, and the script
//! writes every value from the API as text, never as markup.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../portal/index.html");
const PORTAL_JS: &str = include_str!("../portal/portal.js");
const PORTAL_CSS: &str = include_str!("../portal/portal.css");

/// What the page may load and do: its own script, style and API, nothing
/// inline, nothing from elsewhere, never inside another site's frame.
pub const CONTENT_SECURITY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The portal's paths: the page at `/` and its two files.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/portal.js", get(script))
        .route("/portal.css", get(style))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_SECURITY_POLICY, CONTENT_SECURITY),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (X_FRAME_OPTIONS, "DENY"),
            (REFERRER_POLICY, "no-referrer"),
            // The files change with the binary: ask again each time (they
            // are small), so that an upgrade never runs an old script.
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", PORTAL_JS)
}

async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", PORTAL_CSS)
}
