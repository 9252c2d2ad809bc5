//! The PostgreSQL store against throwaway clusters started from the server
//! binaries: the shared conformance suite, two stores (as two servers)
//! sharing one database, PostgreSQL restarting under a store, connection
//! strings that are wrong, states across schema versions, and `verify`
//! catching rows edited behind the store's back.
//!
//! Without the binaries every test that needs a server skips with a loud
//! message, unless `SOCRED_REQUIRE_POSTGRES=1`, which makes it fail.

mod concurrent;
mod connect;
mod harness;
mod migrate;
mod restart;
mod suite;
mod tls;
mod verify;
