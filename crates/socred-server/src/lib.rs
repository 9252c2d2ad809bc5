//! socred's HTTP server: the registry as a JSON API. Providers send records
//! in, agencies ask for decisions, subjects read their own file and who
//! read it, the public looks companies and lists up, auditors check the
//! hash-chained log, and the operator manages principals and the rulebook.
//!
//! Architecture invariant: this is the only crate that knows HTTP. The core
//! computes, the store keeps; a handler authenticates the caller, checks
//! that its role and scope allow the request, asks the core and the store,
//! appends the audit entries, and maps every error to a status with a
//! stable machine code (`error::ApiError`). No `StatusCode` exists below
//! this crate, and nothing here decides anything about credit.
//!
//! The entry points are [`app`] (the router, for tests and embedding),
//! [`serve`] (`socred serve`) and [`verify`] (`socred verify`).
//! `docs/api.md` is the reference of the API; `docs/operations.md` explains
//! how to run it.

mod audit_log;
mod auth;
mod backup;
mod body;
pub mod client;
mod clock;
mod cursor;
mod erasure;
mod error;
pub mod listen;
mod metrics;
mod openapi;
pub mod portal;
mod publication;
mod routes;
mod serve;
mod state;
mod token;
mod verify;

pub use auth::PRINCIPAL_CACHE_TTL;
pub use backup::{backup, BackupReport};
pub use clock::{china_day, Clock, FixedClock, SystemClock};
pub use error::ApiError;
pub use openapi::openapi_json;
pub use publication::{publish_due, Publication};
pub use routes::{app, route_table};
pub use serve::{
    demo, demo_config, open_state, serve, serve_blocking, Demo, DemoPrincipal, DemoReport,
    ServeConfig, FIRST_ADMIN_ID,
};
pub use socred_store_sqlite::HISTORY_RECORDS_DEFAULT;
pub use state::{AppState, Limits};
pub use token::new_token;
pub use verify::{verify, verify_store, VerifyReport};
