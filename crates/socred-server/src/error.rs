//! The API's one error type. A user error is a 4xx with a stable snake_case
//! `code` and a message naming the problem; an internal error is logged
//! here and answered with a bare 500 that leaks nothing; an unavailable
//! store is a 503 worth retrying. Every error body has the same shape:
//! `{"error": {"code": "...", "message": "...", ...}}`, documented with the
//! full list of codes in `docs/api.md`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use socred_store::StoreError;

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra keys of the error object (e.g. the problems of a rulebook).
    pub details: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Map::new(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 409: the request is well formed but the registry's state refuses it.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// Logs `what` with its cause and answers a 500 that says nothing of it.
    pub fn internal(what: &str, cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!("internal error: {what}: {cause}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server failed; the failure was logged",
        )
    }

    pub fn with_detail(mut self, key: &str, value: Value) -> ApiError {
        self.details.insert(key.to_string(), value);
        self
    }

    /// The error's JSON body.
    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), Value::from(self.code));
        error.insert("message".into(), Value::from(self.message.clone()));
        for (key, value) in &self.details {
            error.insert(key.clone(), value.clone());
        }
        json!({ "error": error })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

/// Marks a response refused because the store names another rulebook as
/// in force than this server's: the layer that sees it
/// (`routes::follow_on_change`) takes that rulebook before the answer
/// leaves, so that the request sent again is taken.
#[derive(Clone, Copy, Debug)]
pub struct RulebookChanged;

/// The code of that refusal.
pub const RULEBOOK_CHANGED: &str = "rulebook_changed";
/// The code of an upload that another server's upload overtook before its
/// files were recomputed: this server takes the one in force too.
pub const RULEBOOK_SUPERSEDED: &str = "rulebook_superseded";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let changed = self.code == RULEBOOK_CHANGED || self.code == RULEBOOK_SUPERSEDED;
        let mut response = (self.status, Json(self.body())).into_response();
        if changed {
            response.extensions_mut().insert(RulebookChanged);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound(what) => {
                ApiError::not_found("not_found", format!("not found: {what}"))
            }
            StoreError::Conflict(what) => ApiError::new(StatusCode::CONFLICT, "conflict", what),
            StoreError::Unavailable(what) => {
                tracing::warn!("store unavailable: {what}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the registry's store cannot serve right now; retry later",
                )
            }
            StoreError::Corrupt(what) => ApiError::internal("store data is corrupt", &what),
            StoreError::RulebookChanged(what) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                RULEBOOK_CHANGED,
                format!(
                    "another server installed a rulebook while this request was handled \
                     ({what}); nothing was written: send it again, this server has taken \
                     the rulebook in force now"
                ),
            ),
        }
    }
}

/// The 500 answered when a handler panicked. A panic is a bug: the catch
/// layer is the last line of defence, never the plan.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    };
    crate::metrics::record_panic();
    ApiError::internal("a request handler panicked", &message).into_response()
}
