//! socred's embedded default store: bundled SQLite in WAL mode behind the
//! `socred_store::Store` trait.
