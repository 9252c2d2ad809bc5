//! Integration tests of the socred server.
