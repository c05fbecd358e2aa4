//! What can go wrong in a client command, and the exit code each cause gets.

use std::process::ExitCode;

/// A client command's failure. Each cause has its own exit code (see
/// [`code`](Self::code)), documented in `docs/cli.md`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line or its input is wrong (a flag, a JSON value, a file).
    #[error("{0}")]
    Usage(String),
    /// The server answered with an error.
    #[error("{code}: {message} (HTTP {status})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The server's stable code (`not_found`, `unauthorized`, …).
        code: String,
        /// Its message.
        message: String,
    },
    /// The server could not be reached.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// What was watched ended without succeeding (failed, cancelled, timed out).
    #[error("{0}")]
    Unsuccessful(String),
    /// A local file (the profiles) could not be read or written.
    #[error("{0}")]
    Local(String),
}

/// Exit codes: 0 on success, then one per cause.
pub mod exit {
    /// Anything else: a local file, an unexpected answer.
    pub const OTHER: u8 = 1;
    /// A usage error or bad input (also what the server refused as invalid).
    pub const USAGE: u8 = 2;
    /// Missing, unknown or revoked credentials, or a missing scope.
    pub const AUTH: u8 = 3;
    /// No such record.
    pub const NOT_FOUND: u8 = 4;
    /// The record is not in a state that allows it.
    pub const CONFLICT: u8 = 5;
    /// The server failed, is unavailable, or could not be reached.
    pub const SERVER: u8 = 6;
    /// What was watched ended without succeeding.
    pub const UNSUCCESSFUL: u8 = 7;
}

impl CliError {
    /// The process exit code for this failure.
    pub fn code(&self) -> u8 {
        match self {
            Self::Usage(_) => exit::USAGE,
            Self::Api { status, code, .. } => match (*status, code.as_str()) {
                (401 | 403, _) | (_, "unauthorized" | "forbidden") => exit::AUTH,
                (404, _) => exit::NOT_FOUND,
                (409, _) => exit::CONFLICT,
                (400 | 413 | 415 | 422, _) => exit::USAGE,
                _ => exit::SERVER,
            },
            Self::Unreachable { .. } => exit::SERVER,
            Self::Unsuccessful(_) => exit::UNSUCCESSFUL,
            Self::Local(_) => exit::OTHER,
        }
    }

    /// The exit code as the process returns it.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }
}
