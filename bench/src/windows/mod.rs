//! The `windows` section (issue 15): maintenance windows (SPEC §10).
//!
//! - Firing latency: 50 short windows one after the other on one manager
//!   (SQLite; PostgreSQL with one replica; three replicas on one PostgreSQL
//!   database), nothing running. For each: its history's `window_started` and
//!   `window_ended` rows' `at` (the time the scheduler's tick decided) against
//!   its `starts_at` and `ends_at`, and when a client streaming
//!   `/maintenance/events` receives the `activated` status of that window.
//!   The managers run in this process, served as the binary serves them
//!   (scheduler included).
//! - Idle cost: the release `manager` as a child process, with one window a
//!   day ahead so that its scheduler has something to wait for: CPU time and
//!   context switches (wake-ups) over a quiet period, on either store.
//!
//! Same machine, same clock: the manager's times (SQLite: its own clock;
//! PostgreSQL: the database server's, on this machine) are compared with
//! the bench's wall clock.

mod firing;
mod idle;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::bail;
use shared::Timestamp;

use crate::Options;

/// Runs the section; SIGINT or SIGTERM (a `timeout`) ends it early, and the
/// child managers with it.
pub async fn figures(root: &Path, options: Options) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        done = measure(root, options) => done,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = terminate.recv() => bail!("terminated"),
    }
}

async fn measure(root: &Path, options: Options) -> anyhow::Result<()> {
    let binary = root.join("target/release/manager");
    if !binary.is_file() {
        bail!("build the release binaries first: cargo build --release -p manager");
    }
    println!("## Maintenance windows (SPEC §10)\n");
    println!("load average before: {} (1, 5, 15 min)\n", load_average());
    firing::figures().await?;
    println!("load average between the two parts: {} (1, 5, 15 min)\n", load_average());
    idle::figures(&binary, options).await?;
    println!("load average after: {} (1, 5, 15 min)\n", load_average());
    Ok(())
}

/// `/proc/loadavg`'s three averages.
pub(crate) fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// The wall clock in nanoseconds since the Unix epoch.
pub(crate) fn wall_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos() as i128)
}

/// A manager's timestamp (milliseconds) in nanoseconds since the epoch.
pub(crate) fn timestamp_ns(at: &Timestamp) -> i128 {
    i128::from(at.as_datetime().timestamp_millis()) * 1_000_000
}
