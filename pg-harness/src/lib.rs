//! Throwaway real PostgreSQL servers for tests: no mocks, no docker.
//!
//! [`PgServer::start`] runs `initdb` in a fresh directory under the system's
//! temp dir and starts `postgres` on a private Unix socket (no TCP); each test
//! then takes a database of its own with [`PgServer::fresh_database`]. A test
//! binary usually shares one server between its tests ([`shared`]); tests that
//! stop the server ([`PgServer::stop`], [`PgServer::start_again`]) start their own.
//!
//! No server outlives its test process, however that process ends: `postgres`
//! gets a parent-death signal (SIGQUIT, its immediate shutdown) from a thread
//! that lives as long as the [`PgServer`] (see `postmaster.rs`). Directories
//! left behind by killed runs are removed by the next start (see `scratch.rs`).
//!
//! Servers run with `fsync=off` (nothing in a test must survive a crash of the
//! machine); [`PgServer::start_with`]`(`[`Durability::Durable`]`)` keeps
//! PostgreSQL's defaults, for figures of what users get.
//!
//! PostgreSQL refuses to run as root; when the tests do, the server runs as the
//! `nobody` user, which owns its directory.
//!
//! ```no_run
//! // A test of another crate, with `pg-harness.workspace = true` under [dev-dependencies]:
//! let url = pg_harness::shared().fresh_database().unwrap();
//! // postgresql://postgres@/t_0_1234?host=/tmp/pg-harness-1234-AbC9xy/socket
//! // for tokio-postgres, sqlx or psql; `PgServer::psql` runs SQL for checks.
//!
//! // A test that takes the database away and brings it back:
//! let server = pg_harness::PgServer::start().unwrap();
//! let url = server.fresh_database().unwrap();
//! server.stop().unwrap();
//! server.start_again().unwrap();
//! ```

#![warn(missing_docs)]

mod bin_dir;
mod command;
mod error;
mod postmaster;
mod scratch;
mod server;
mod user;

use std::sync::OnceLock;

pub use bin_dir::bin_dir;
pub use error::HarnessError;
pub use server::{Durability, PgServer, PORT, SUPERUSER};

/// One server per test binary, started on first use and never stopped before
/// the process exits (its `postgres` ends with the process). Do not stop it:
/// other tests use it.
///
/// # Panics
/// If the server does not start; the message is the [`HarnessError`]'s. The
/// next call tries again.
pub fn shared() -> &'static PgServer {
    static SHARED: OnceLock<PgServer> = OnceLock::new();
    SHARED.get_or_init(|| match PgServer::start() {
        Ok(server) => server,
        Err(error) => panic!("the shared PostgreSQL server did not start: {error}"),
    })
}
