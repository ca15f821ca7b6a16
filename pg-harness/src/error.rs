//! What went wrong, said so that a failing test's output is enough to act on.

use std::io;
use std::path::PathBuf;

/// A server could not be set up, started, stopped or used.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No directory with PostgreSQL's programs.
    #[error(
        "PostgreSQL's programs (initdb, postgres, psql) not found: {looked}; \
         run scripts/setup (it installs Debian's `postgresql` package) or set PG_BIN to their directory"
    )]
    BinariesNotFound {
        /// Where they were looked for.
        looked: String,
    },
    /// Running as root, and no unprivileged user to run PostgreSQL as (it refuses root).
    #[error("running as root and PostgreSQL refuses to: cannot run it as `{user}`: {reason}")]
    NoServerUser {
        /// The user looked up.
        user: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A file system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// The operation, with its path.
        what: String,
        /// The system's error.
        source: io::Error,
    },
    /// A program (initdb, psql) could not be started or exited with an error.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status, or why it did not start.
        status: String,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
    /// The server did not start or stop as it should.
    #[error("postgres {what}; the end of its log ({log}):\n{tail}")]
    Server {
        /// What happened (e.g. "exited while starting (exit status: 1)").
        what: String,
        /// The server's log file.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// A database name the harness does not accept.
    #[error("invalid database name {0:?}: use 1 to 63 ASCII letters, digits and underscores")]
    InvalidDatabaseName(String),
    /// The thread that owns the `postgres` process has ended (a panic in it).
    #[error("the thread owning the postgres process has ended")]
    OwnerGone,
}

impl HarnessError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> HarnessError {
        let what = what.into();
        move |source| HarnessError::Io { what, source }
    }
}
