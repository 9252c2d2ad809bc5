//! The router: every path, its method and its handler, in one table that
//! also feeds [`route_table`] (the OpenAPI test checks that the
//! description and the table agree, so no route goes undocumented).

pub(crate) mod admin;
mod audit;
mod decisions;
mod health;
mod held;
mod ingest;
mod me;
mod public;
mod review;
pub(crate) mod subjects;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::{panic_response, ApiError};
use crate::state::{AppState, Limits};

/// Declares the routes once: builds the router and the table of
/// (method, path) pairs from the same list.
macro_rules! routes {
    ($limits:ident, $state:ident; $( $method:ident $path:literal => $handler:path $([$($layer:expr),+])? ),* $(,)?) => {
        /// Every (method, path) the router serves, paths in axum's
        /// `{param}` syntax (which is also OpenAPI's).
        pub fn route_table() -> &'static [(&'static str, &'static str)] {
            &[ $( (stringify!($method), $path) ),* ]
        }

        fn add_routes(router: Router<AppState>, $limits: Limits, $state: &AppState) -> Router<AppState> {
            let mut router = router;
            $( router = router.route($path, axum::routing::$method($handler) $($(.layer($layer))+)?); )*
            router
        }
    };
}

/// The layer of [`follow_on_change`] over `state`.
macro_rules! follow {
    ($state:ident) => {
        axum::middleware::from_fn_with_state($state.clone(), follow_on_change)
    };
}

// Writes that fold carry `follow!(state)` (see `follow_on_change`); the
// rest, decisions above all, do without the layer.
routes! { limits, state;
    get "/healthz" => health::healthz,
    get "/readyz" => health::readyz,
    get "/metrics" => health::metrics,
    get "/openapi.json" => health::openapi,

    get "/v1/me" => me::me,

    get "/v1/rulebook" => public::rulebook,
    get "/v1/public/companies/{uscc}" => public::company,
    get "/v1/public/lists" => public::lists,
    get "/v1/public/lists/{id}" => public::list_members,

    post "/v1/records" => ingest::post_records [DefaultBodyLimit::max(limits.ingest_body_bytes_max), follow!(state)],

    get "/v1/review/pending" => review::pending,
    post "/v1/review/approve" => review::approve [follow!(state)],
    post "/v1/review/reject" => review::reject [follow!(state)],
    get "/v1/review/objections" => review::objections,

    post "/v1/decisions" => decisions::post_decisions,
    get "/v1/decisions" => decisions::get_decision,

    get "/v1/subjects/{id}" => subjects::file,
    get "/v1/subjects/{id}/explanation" => subjects::explanation,
    get "/v1/subjects/{id}/access-log" => subjects::access_log,
    post "/v1/subjects/{id}/consent" => subjects::consent [follow!(state)],
    post "/v1/subjects/{id}/objections" => subjects::object [follow!(state)],
    post "/v1/subjects/{id}/repair-applications" => subjects::apply_for_repair [follow!(state)],

    get "/v1/audit" => audit::entries,
    get "/v1/audit/verify" => audit::verify,

    get "/v1/admin/principals" => admin::principals,
    post "/v1/admin/principals" => admin::put_principal,
    delete "/v1/admin/principals/{id}" => admin::revoke,
    get "/v1/admin/dashboard" => admin::dashboard,
    get "/v1/admin/rulebooks" => admin::rulebooks,
    put "/v1/admin/rulebook" => admin::put_rulebook [follow!(state)],
    post "/v1/admin/rulebook/impact" => admin::rulebook_impact,
    post "/v1/admin/erasure" => admin::erase [follow!(state)],
}

/// The registry's HTTP API over `state`.
pub fn app(state: AppState) -> Router {
    let limits = state.limits();
    add_routes(Router::new(), limits, &state)
        .route_layer(axum::middleware::from_fn(refuse_unexpected_query))
        .route_layer(axum::middleware::from_fn(refuse_anonymous_writes))
        .merge(crate::portal::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_bytes_max))
        .layer(axum::middleware::from_fn(answer_headers))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

/// Takes the rulebook in force, before the answer leaves, when the store
/// refused a write because another server installed it
/// (`error::RulebookChanged`): the caller's request sent again is then
/// folded with it, without waiting for the periodic look.
async fn follow_on_change(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let response = next.run(request).await;
    if response
        .extensions()
        .get::<crate::error::RulebookChanged>()
        .is_some()
    {
        match state.follow_rulebook().await {
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "cannot follow the rulebook in force"),
        }
    }
    response
}

/// Refuses a query string on an API operation that takes no query
/// parameters (`invalid_query`), as those that take some refuse one they do
/// not know: a caller who adds `?as_of=…` to its file learns that the
/// registry did not read it, rather than getting today's file. The
/// machines' endpoints (`/healthz`, `/metrics`, …) keep their conventions.
async fn refuse_unexpected_query(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let query = request.uri().query().unwrap_or_default();
    if !query.is_empty() {
        if let Some(path) = request.extensions().get::<axum::extract::MatchedPath>() {
            let path = path.as_str();
            // A HEAD is the GET of the same route without its body.
            let method = match request.method().as_str() {
                "HEAD" => "GET",
                method => method,
            };
            if path.starts_with("/v1/") && !crate::openapi::takes_query(method, path) {
                let first = query.split('&').next().unwrap_or_default();
                let name: String = first
                    .split('=')
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(64)
                    .collect();
                return ApiError::bad_request(
                    "invalid_query",
                    format!("`{method} {path}` takes no query parameters; got `{name}`"),
                )
                .into_response();
            }
        }
    }
    next.run(request).await
}

/// Refuses a write without a token before its body is read: every
/// operation that takes a body needs a principal, and reading up to the
/// body limit (64 MiB for records) for a caller who will be refused
/// anyway would let anyone make the server hold that much memory per
/// connection. A caller with a token is refused by its handler, as ever.
async fn refuse_anonymous_writes(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header::AUTHORIZATION, Method};
    use axum::response::IntoResponse;
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    if !reads && !request.headers().contains_key(AUTHORIZATION) {
        return crate::auth::unauthenticated().into_response();
    }
    if let Some(refused) = encoded_body(request.headers()) {
        return refused.into_response();
    }
    next.run(request).await
}

/// `415` for a body sent compressed (`Content-Encoding: gzip`): bodies are
/// read as they are, and a compressed one would otherwise be judged line
/// by line as text that is not UTF-8.
fn encoded_body(headers: &axum::http::HeaderMap) -> Option<ApiError> {
    let encoding = headers.get(axum::http::header::CONTENT_ENCODING)?;
    let encoding = String::from_utf8_lossy(encoding.as_bytes());
    if encoding.trim().eq_ignore_ascii_case("identity") {
        return None;
    }
    Some(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "the body is sent with Content-Encoding `{}`; send it as it is (no Content-Encoding)",
            socred_core::printable::printable(&encoding)
        ),
    ))
}

/// Headers on every answer that sets none of its own: `nosniff`, so that
/// a browser never runs an answer (a text explanation, an error echoing
/// input) as something other than its type; and, on an answer to a caller
/// with a token, `Cache-Control: no-store`, so that a credit file or an
/// access log is kept by no browser or proxy cache. The portal's files
/// set their own.
async fn answer_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
    use axum::http::HeaderValue;
    let private = request.headers().contains_key(AUTHORIZATION);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    if private {
        headers
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    // A body refused unread (too large, stalled) leaves the connection with
    // bytes that are no request: the server closes it, and says so, so that
    // a client does not send its next request on it.
    let status = response.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::REQUEST_TIMEOUT {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
    }
    response
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(
        "no_such_endpoint",
        format!(
            "there is no endpoint at `{}`; see /openapi.json",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("`{}` does not take {method}; see /openapi.json", uri.path()),
    )
}

/// Parses a subject identifier from a path or a body (`invalid_subject`, 400).
pub(crate) fn parse_subject(text: &str) -> Result<socred_core::SubjectId, ApiError> {
    socred_core::SubjectId::parse(text)
        .map(|parsed| parsed.id)
        .map_err(|error| {
            ApiError::bad_request(
                "invalid_subject",
                format!("`{text}` is not a valid subject identifier: {error}"),
            )
        })
}

/// An audit entry by `actor` (a principal id or `anonymous`) in `role`, now.
pub(crate) fn audit_draft(
    state: &AppState,
    (actor, role): (&str, &str),
    purpose: &str,
    action: &str,
    subject: Option<socred_core::SubjectId>,
    detail: String,
) -> socred_store::AuditDraft {
    socred_store::AuditDraft {
        at_ms: state.now_ms(),
        actor: actor.to_string(),
        role: role.to_string(),
        purpose: purpose.to_string(),
        action: action.to_string(),
        subject,
        detail,
    }
}

/// Rows per page when the client does not say.
pub(crate) const PAGE_DEFAULT: usize = 100;
/// Most rows per page, whatever the client asks.
pub(crate) const PAGE_MAX: usize = 1000;

pub(crate) fn page_limit(limit: Option<usize>) -> usize {
    limit.unwrap_or(PAGE_DEFAULT).clamp(1, PAGE_MAX)
}

/// A page cut from `rows`, read with one more than `limit` asked for, and
/// whether more follow: a full last page then gives no `next_after` that
/// leads to an empty one.
pub(crate) fn cut_page<T>(mut rows: Vec<T>, limit: usize) -> (Vec<T>, bool) {
    let more = rows.len() > limit;
    rows.truncate(limit);
    (rows, more)
}
