//! Integration tests of the socred server: most go through the router
//! (`app(state).oneshot(request)`) on the in-memory store with the clock
//! fixed; `socket` talks to a real listener, `tamper` edits a SQLite file
//! behind the server's back, `traffic` sends seeded random requests from
//! every role and checks what must hold whatever they are. Every response is checked not to be a 500 and
//! the panic counter to stay at zero: the catch-panic layer must never fire.

mod admin;
mod audit;
mod browser;
mod decisions;
mod errors;
mod harness;
mod ingest;
mod openapi;
mod portal;
mod public;
mod review;
mod socket;
mod subjects;
mod tamper;
mod traffic;
