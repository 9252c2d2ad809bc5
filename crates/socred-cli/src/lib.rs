//! The `socred` command's library: each subcommand is one function here, so
//! that the binary stays thin glue and the commands can be tested in-process.

pub mod commands;
pub mod exit;
