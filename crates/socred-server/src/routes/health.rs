//! Liveness, readiness, metrics and the OpenAPI description.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use socred_store::Role;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// The process is up (no store access: a slow disk must not get it killed).
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The store answers.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let counts = state.store().counts().await?;
    Ok(Json(
        json!({ "status": "ready", "rulebook": state.current().label, "subjects": counts.subjects }),
    ))
}

/// Prometheus metrics, for the operator.
pub async fn metrics(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let mut text = state.metrics_text();
    let counts = state.store().counts().await?;
    let gauges = [
        (
            "socred_subjects",
            "Subjects with a stored state.",
            counts.subjects,
        ),
        ("socred_records", "Records in effect.", counts.records),
        ("socred_facts", "Later facts in effect.", counts.facts),
        (
            "socred_pending_items",
            "Items waiting for review.",
            counts.pending,
        ),
        (
            "socred_audit_entries",
            "Entries in the audit log.",
            counts.audit_entries,
        ),
        (
            "socred_principals",
            "Principals, revoked ones included.",
            counts.principals,
        ),
    ];
    for (name, help, value) in gauges {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    }
    // The editions of lists published on a schedule: an alert on the day
    // of the last drawing notices a publication that stopped. List ids are
    // rulebook ids (lower-case letters, digits, `_`, `.`, `-`): nothing in
    // them needs escaping in a label.
    let editions = state.store().editions().await?;
    text.push_str(
        "# HELP socred_edition_subjects Subjects kept in the last edition of a list published on a schedule.\n\
         # TYPE socred_edition_subjects gauge\n",
    );
    for (list, edition) in &editions {
        text.push_str(&format!(
            "socred_edition_subjects{{list=\"{list}\"}} {}\n",
            edition.members
        ));
    }
    text.push_str(
        "# HELP socred_edition_drawn_timestamp_seconds Start (UTC) of the day the last edition of a list was drawn.\n\
         # TYPE socred_edition_drawn_timestamp_seconds gauge\n",
    );
    for (list, edition) in &editions {
        text.push_str(&format!(
            "socred_edition_drawn_timestamp_seconds{{list=\"{list}\"}} {}\n",
            i64::from(edition.drawn.0) * 86_400
        ));
    }
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}

/// The OpenAPI 3.1 description of this API.
pub async fn openapi() -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "application/json")],
        crate::openapi::openapi_json(),
    )
        .into_response()
}
