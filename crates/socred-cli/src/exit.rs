//! Exit codes of `socred`, stable for scripts.

/// A small wrapper so commands can return a meaningful exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code(pub u8);

impl From<Code> for std::process::ExitCode {
    fn from(code: Code) -> Self {
        std::process::ExitCode::from(code.0)
    }
}

/// Everything went through.
pub const OK: Code = Code(0);
/// The command failed (invalid identifier, rulebook with problems, unreadable file…).
pub const FAILURE: Code = Code(1);
/// Usage error (reported by the argument parser).
pub const USAGE: Code = Code(2);
/// The command ran, but some input lines were rejected (counted on stderr).
pub const REJECTED: Code = Code(3);

/// Arguments that each read, but contradict each other (`--end` before
/// `--start`): a usage error, exit [`USAGE`].
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}
