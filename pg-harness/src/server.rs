//! [`PgServer`]: one cluster in a directory of its own, and its `postgres`.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::command::{client_command, run, server_command};
use crate::postmaster::Postmaster;
use crate::scratch::Scratch;
use crate::user::ServerUser;
use crate::{bin_dir, HarnessError};

/// The port in the socket's name (`.s.PGSQL.5432`); no TCP port is opened.
/// Every server has a socket directory of its own, so they can all use
/// libpq's default, and clients need no `-p`.
pub const PORT: u16 = 5432;

/// The superuser, owner of every database; trust authentication, no password.
pub const SUPERUSER: &str = "postgres";

/// How long a server may take to accept connections: a loaded two-core
/// machine running tests beside it is slow, and a failing test's time is cheap.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of the server's log quoted in an error.
const LOG_TAIL_LINES: usize = 30;

/// Numbers [`PgServer::fresh_database`]'s names, across all servers of the process.
static FRESH_DATABASES: AtomicU64 = AtomicU64::new(0);

/// Whether a server's commits wait for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `fsync=off`, `full_page_writes=off`: nothing waits for the disk and
    /// nothing survives a crash of the machine. What tests want.
    #[default]
    Off,
    /// PostgreSQL's own defaults (`fsync=on`, `full_page_writes=on`,
    /// `synchronous_commit=on`): each commit waits for its WAL to be flushed,
    /// as on a production server. For benchmarks that want what users get.
    Durable,
}

/// A PostgreSQL server of its own in a temp dir, on a private Unix socket
/// directory; stopped on drop, and with the test process however it ends.
#[derive(Debug)]
pub struct PgServer {
    // First, so dropped first: the server stops before its directory goes.
    postmaster: Postmaster,
    bin_dir: PathBuf,
    user: Option<ServerUser>,
    scratch: Scratch,
    durability: Durability,
}

impl PgServer {
    /// Creates a cluster (`initdb`, about a second) and starts its server
    /// with [`Durability::Off`]; returns once it accepts connections. As
    /// root, both run as `nobody`.
    pub fn start() -> Result<PgServer, HarnessError> {
        Self::start_with(Durability::Off)
    }

    /// [`PgServer::start`] with the given durability, which
    /// [`PgServer::start_again`] keeps.
    pub fn start_with(durability: Durability) -> Result<PgServer, HarnessError> {
        let bin_dir = bin_dir()?;
        let user = ServerUser::for_this_process()?;
        let scratch = Scratch::create(user)?;
        // SIGKILL if the test process dies meanwhile: the directory is swept later anyway.
        let mut initdb = server_command(&bin_dir.join("initdb"), user, scratch.root(), Signal::KILL);
        initdb.arg("-D").arg(&scratch.data_dir);
        initdb.args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]);
        run(&mut initdb)?;
        let server = PgServer { postmaster: Postmaster::new()?, bin_dir, user, scratch, durability };
        server.launch()?;
        Ok(server)
    }

    /// Creates the database `name` (1 to 63 ASCII letters, digits and
    /// underscores, case kept) and returns its libpq URL, as [`PgServer::url`].
    pub fn create_database(&self, name: &str) -> Result<String, HarnessError> {
        let valid = (1..=63).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(HarnessError::InvalidDatabaseName(name.to_owned()));
        }
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url(name))
    }

    /// Creates a database no other call (of any server in this process)
    /// returns, named `t_<counter>_<pid>`: one database per test. Its URL.
    pub fn fresh_database(&self) -> Result<String, HarnessError> {
        let number = FRESH_DATABASES.fetch_add(1, Ordering::Relaxed);
        self.create_database(&format!("t_{number}_{}", std::process::id()))
    }

    /// The libpq URL of `database` as the superuser over the server's socket:
    /// `postgresql://postgres@/NAME?host=/tmp/pg-harness-…/socket`.
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://{SUPERUSER}@/{database}?host={}", self.socket_dir().display())
    }

    /// Runs `sql` with `psql` in `database` as the superuser and returns what it
    /// printed: unaligned, rows only (`-At`), one line per row, columns split by `|`.
    /// An SQL error is an error.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, HarnessError> {
        let mut psql = client_command(&self.bin_dir.join("psql"));
        psql.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"]).arg(self.socket_dir());
        psql.args(["-p", &PORT.to_string(), "-U", SUPERUSER, "-d", database, "-c", sql]);
        run(&mut psql)
    }

    /// Stops the server (fast shutdown: sessions end, data is kept) and waits
    /// for its exit; the databases are unavailable until [`PgServer::start_again`].
    /// Nothing to do if it is stopped.
    pub fn stop(&self) -> Result<(), HarnessError> {
        self.postmaster.stop().map_err(|error| self.server_error(format!("did not stop: {error}")))
    }

    /// Starts the server again on the same data and socket, and returns once it
    /// accepts connections; nothing to do if it runs.
    pub fn start_again(&self) -> Result<(), HarnessError> {
        self.launch()
    }

    /// The server's (postmaster's) pid, while it is not stopped.
    pub fn pid(&self) -> Option<u32> {
        self.postmaster.pid().ok().flatten()
    }

    /// The directory holding the server's socket (`.s.PGSQL.5432`): libpq's `host`.
    pub fn socket_dir(&self) -> &Path {
        &self.scratch.socket_dir
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.scratch.data_dir
    }

    /// The server's log (its stderr, across restarts).
    pub fn log_file(&self) -> &Path {
        &self.scratch.log_file
    }

    /// Spawns `postgres` on the postmaster thread unless it runs, and waits until it accepts connections.
    fn launch(&self) -> Result<(), HarnessError> {
        let log = OpenOptions::new()
            .append(true)
            .open(self.log_file())
            .map_err(HarnessError::io(format!("opening {}", self.log_file().display())))?;
        let log_again = log.try_clone().map_err(HarnessError::io("duplicating the log's descriptor"))?;
        let mut postgres = server_command(&self.bin_dir.join("postgres"), self.user, self.scratch.root(), Signal::QUIT);
        postgres.arg("-D").arg(self.data_dir()).arg("-k").arg(self.socket_dir());
        postgres.args(["-p", &PORT.to_string(), "-c", "listen_addresses="]);
        // Tests open many pools and replicas.
        postgres.args(["-c", "max_connections=300"]);
        if self.durability == Durability::Off {
            // Nothing here must survive a crash of the machine.
            postgres.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
        }
        postgres.stdout(log).stderr(log_again);
        let pid = self.postmaster.start(postgres)?;
        self.wait_until_ready(pid).inspect_err(|_| {
            let _ = self.postmaster.stop();
        })
    }

    fn wait_until_ready(&self, pid: u32) -> Result<(), HarnessError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.accepts_connections(pid) {
                return Ok(());
            }
            if let Some(status) = self.postmaster.exit_status()? {
                return Err(self.server_error(format!("exited while starting ({status})")));
            }
            if Instant::now() >= deadline {
                return Err(self.server_error(format!("did not accept connections within {READY_TIMEOUT:?}")));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether server `pid` says it accepts connections: the 8th line of
    /// `postmaster.pid` is its state, `ready` once it does (what `pg_ctl -w` reads).
    fn accepts_connections(&self, pid: u32) -> bool {
        let Ok(pid_file) = fs::read_to_string(self.data_dir().join("postmaster.pid")) else { return false };
        let lines: Vec<&str> = pid_file.lines().map(str::trim).collect();
        lines.first() == Some(&pid.to_string().as_str()) && lines.get(7) == Some(&"ready")
    }

    fn server_error(&self, what: String) -> HarnessError {
        let log = self.log_file().to_path_buf();
        let text = fs::read(&log).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        HarnessError::Server { what, log, tail }
    }
}
