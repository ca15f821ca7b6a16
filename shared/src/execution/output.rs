//! What an execution's program wrote (SPEC §9): one event per line, with its
//! time and stream, numbered from 0 in the order the manager read them.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// The program's standard output.
    Stdout,
    /// The program's standard error.
    Stderr,
    /// The manager itself (the marker saying how much output was dropped).
    Manager,
}

impl OutputStream {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::Manager => "manager",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Stdout, Self::Stderr, Self::Manager].into_iter().find(|stream| stream.as_str() == text)
    }
}

/// One line of an execution's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutionEvent {
    /// When the manager read it.
    pub at: Timestamp,
    /// Where it came from.
    pub stream: OutputStream,
    /// The text, without its line end.
    pub line: String,
}

/// Lines kept per execution; beyond them (or [`MAX_KEPT_BYTES`]) output is
/// counted, not kept, and one `manager` event says how much was dropped.
pub const MAX_KEPT_LINES: u64 = 10_000;
/// Bytes of text kept per execution.
pub const MAX_KEPT_BYTES: u64 = 4 * 1024 * 1024;

/// The text of the event that stands in for a line the database refused
/// (SPEC §8: e.g. a character a PostgreSQL database's encoding lacks). ASCII,
/// which every database encoding holds, so the marker itself is always stored.
pub const UNSTORABLE_MARKER: &str =
    "output line not stored: the database cannot hold its text (a character its encoding lacks); see the manager's log";

/// The text of the event that says how much output was dropped.
pub fn dropped_marker(lines: u64, bytes: u64) -> String {
    format!(
        "output truncated: {lines} more lines ({bytes} bytes) were dropped; at most {MAX_KEPT_LINES} lines or {} MiB \
         of output are kept per execution",
        MAX_KEPT_BYTES / (1024 * 1024)
    )
}
