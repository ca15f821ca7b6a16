//! Real servers, checked from outside: `psql` on the socket, processes in /proc.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use pg_harness::{Durability, HarnessError, PgServer, PORT, SUPERUSER};

/// Set in the environment of the test binary re-run by
/// `a_killed_test_process_takes_its_server_along`.
const CHILD_MARKER: &str = "PG_HARNESS_TEST_CHILD";

/// `psql -h <socket> -U postgres -d <database> -Atc <sql>`, as a test would type it.
fn psql(socket_dir: &Path, database: &str, sql: &str) -> Output {
    Command::new(pg_harness::bin_dir().unwrap().join("psql"))
        .arg("-X")
        .arg("-h")
        .arg(socket_dir)
        .args(["-p", &PORT.to_string(), "-U", SUPERUSER, "-d", database, "-Atc", sql])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// What `psql` printed; panics with its stderr if it failed.
fn psql_ok(socket_dir: &Path, database: &str, sql: &str) -> String {
    let output = psql(socket_dir, database, sql);
    assert!(output.status.success(), "psql {sql:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim_end().to_owned()
}

fn database_of(url: &str) -> &str {
    url.split_once("@/").and_then(|(_, rest)| rest.split_once('?')).unwrap().0
}

/// The process's state letter in /proc, `None` once it is reaped.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next())
}

/// Whether `pid` has exited (reaped, or a zombie nobody reaps) within `patience`.
fn exits_within(pid: u32, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    loop {
        if matches!(process_state(pid), None | Some('Z' | 'X')) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The pids whose parent is `pid`: a postmaster's backends and helpers.
fn children_of(pid: u32) -> Vec<u32> {
    let parent = pid.to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)) == Some(parent.as_str())
        })
        .collect()
}

fn uid_of_process(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn a_server_serves_two_databases_on_its_private_socket() {
    let server = PgServer::start().unwrap();
    let alpha = server.create_database("alpha").unwrap();
    let fresh = server.fresh_database().unwrap();
    let socket = server.socket_dir();

    assert_eq!(alpha, format!("postgresql://postgres@/alpha?host={}", socket.display()));
    assert_eq!(psql_ok(socket, "alpha", "select 1"), "1");
    assert_eq!(psql_ok(socket, database_of(&fresh), "select 1"), "1");
    assert_ne!(database_of(&fresh), "alpha");
    // The URL as libpq reads it.
    for (url, name) in [(&alpha, "alpha"), (&fresh, database_of(&fresh))] {
        let output = Command::new(pg_harness::bin_dir().unwrap().join("psql"))
            .args(["-X", "-Atc", "select current_database(), current_user", url])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(String::from_utf8(output.stdout).unwrap().trim(), format!("{name}|postgres"));
    }
    assert_eq!(psql_ok(socket, "alpha", "show listen_addresses"), "", "no TCP");
    assert_eq!(psql_ok(socket, "alpha", "show max_connections"), "300");
    assert_eq!(psql_ok(socket, "alpha", "show fsync"), "off");
    assert_eq!(psql_ok(socket, "alpha", "show server_encoding"), "UTF8");

    let socket_meta = std::fs::metadata(socket).unwrap();
    for dir in [socket, server.data_dir().parent().unwrap()] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is private", dir.display());
    }
    let owner = socket_meta.uid();
    let pid = server.pid().unwrap();
    assert_eq!(uid_of_process(pid), owner, "postgres runs as the owner of its directories");
    for dir in [server.data_dir(), server.data_dir().parent().unwrap()] {
        assert_eq!(std::fs::metadata(dir).unwrap().uid(), owner, "{}", dir.display());
    }
    if uid_of_process(std::process::id()) == 0 {
        assert_ne!(owner, 0, "as root, the server runs as an unprivileged user");
    }
}

#[test]
fn stop_makes_the_database_unavailable_and_start_again_keeps_its_data() {
    let server = PgServer::start().unwrap();
    let url = server.fresh_database().unwrap();
    let database = database_of(&url);
    let socket = server.socket_dir();
    psql_ok(socket, database, "create table kept (note text); insert into kept values ('before the stop')");
    let first_pid = server.pid().unwrap();

    server.stop().unwrap();
    assert!(exits_within(first_pid, Duration::ZERO), "stop waits for the exit");
    assert_eq!(server.pid(), None);
    let refused = psql(socket, database, "select 1");
    assert!(!refused.status.success(), "psql must fail while the server is stopped");
    assert!(server.fresh_database().is_err());
    server.stop().unwrap();

    server.start_again().unwrap();
    assert_eq!(psql_ok(socket, database, "select note from kept"), "before the stop");
    let second_pid = server.pid().unwrap();
    assert_ne!(second_pid, first_pid);
    server.start_again().unwrap();
    assert_eq!(server.pid(), Some(second_pid), "start_again leaves a running server alone");
}

#[test]
fn a_durable_server_keeps_postgres_defaults_across_a_restart() {
    let server = PgServer::start_with(Durability::Durable).unwrap();
    let url = server.fresh_database().unwrap();
    let database = database_of(&url);
    let socket = server.socket_dir();
    let settings = "select current_setting('fsync') || ' ' || current_setting('full_page_writes') || ' ' || \
                    current_setting('synchronous_commit')";
    assert_eq!(psql_ok(socket, database, settings), "on on on");
    server.stop().unwrap();
    server.start_again().unwrap();
    assert_eq!(psql_ok(socket, database, settings), "on on on", "start_again keeps the durability");
    assert_eq!(psql_ok(socket, database, "show max_connections"), "300");
}

#[test]
fn dropping_the_server_ends_postgres_its_sessions_and_its_directory() {
    let server = PgServer::start().unwrap();
    let url = server.fresh_database().unwrap();
    let database = database_of(&url).to_owned();
    let pid = server.pid().unwrap();
    let root = server.data_dir().parent().unwrap().to_path_buf();
    // A session busy for longer than the test: dropping must not wait for it.
    let mut session = Command::new(pg_harness::bin_dir().unwrap().join("psql"))
        .arg("-X")
        .arg("-h")
        .arg(server.socket_dir())
        .args(["-U", SUPERUSER, "-d", &database, "-c", "select pg_sleep(600)"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let busy = "select count(*) from pg_stat_activity where query = 'select pg_sleep(600)'";
    let deadline = Instant::now() + Duration::from_secs(10);
    while psql_ok(server.socket_dir(), &database, busy) != "1" {
        assert!(Instant::now() < deadline, "the session did not start");
        thread::sleep(Duration::from_millis(20));
    }
    let helpers = children_of(pid);
    assert!(helpers.len() >= 2, "backends and helpers: {helpers:?}");

    let dropping = Instant::now();
    drop(server);

    assert!(dropping.elapsed() < Duration::from_secs(30), "drop took {:?}", dropping.elapsed());
    assert!(exits_within(pid, Duration::from_secs(10)), "postmaster {pid} outlived its PgServer");
    for helper in helpers {
        assert!(exits_within(helper, Duration::from_secs(10)), "postgres process {helper} outlived its PgServer");
    }
    assert!(!root.exists(), "{} was not removed", root.display());
    let ended = session.wait().unwrap();
    assert!(!ended.success(), "the session was cut off");
}

#[test]
fn shared_is_one_server_for_the_whole_process() {
    let first = pg_harness::shared();
    let second = thread::spawn(pg_harness::shared).join().unwrap();

    assert!(std::ptr::eq(first, second));
    let url = first.fresh_database().unwrap();
    assert_eq!(first.psql(database_of(&url), "select 40 + 2").unwrap().trim(), "42");
}

#[test]
fn errors_say_what_failed() {
    let server = pg_harness::shared();

    let invalid = server.create_database("no-dashes").unwrap_err();
    assert!(matches!(invalid, HarnessError::InvalidDatabaseName(ref name) if name == "no-dashes"));
    let url = server.fresh_database().unwrap();
    let again = server.create_database(database_of(&url)).unwrap_err().to_string();
    assert!(again.contains("CREATE DATABASE") && again.contains("already exists"), "{again}");
    let bad_sql = server.psql(database_of(&url), "select * from no_such_table").unwrap_err().to_string();
    assert!(bad_sql.contains("no_such_table"), "{bad_sql}");
}

/// Run only by `a_killed_test_process_takes_its_server_along`, as a child process.
#[test]
#[ignore = "a helper: run as a child process by a_killed_test_process_takes_its_server_along"]
fn child_process_holding_the_shared_server() {
    if std::env::var_os(CHILD_MARKER).is_none() {
        return;
    }
    // Started from a thread that ends at once: the server must not end with it.
    let server = thread::spawn(pg_harness::shared).join().unwrap();
    thread::sleep(Duration::from_millis(300));
    assert_eq!(server.psql("postgres", "select 1").unwrap().trim(), "1");
    println!("postmaster pid {}", server.pid().unwrap());
    println!("data dir {}", server.data_dir().display());
    // Killed long before this ends.
    thread::sleep(Duration::from_secs(120));
}

/// A child process killed when the test ends, failed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_killed_test_process_takes_its_server_along() {
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["child_process_holding_the_shared_server", "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD_MARKER, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let (lines, received) = mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut pid = None;
    let mut data_dir = None;
    while pid.is_none() || data_dir.is_none() {
        let line = received.recv_timeout(Duration::from_secs(120)).expect("the child printed no postmaster pid");
        // libtest prints `test <name> ... ` before the test's first line.
        if let Some((_, number)) = line.split_once("postmaster pid ") {
            pid = Some(number.parse::<u32>().unwrap());
        } else if let Some((_, path)) = line.split_once("data dir ") {
            data_dir = Some(PathBuf::from(path));
        }
    }
    let (pid, data_dir) = (pid.unwrap(), data_dir.unwrap());
    let root = data_dir.parent().unwrap().to_owned();
    assert!(root.exists());
    assert!(!exits_within(pid, Duration::ZERO), "the postmaster runs while its test process does");
    let helpers = children_of(pid);

    child.0.kill().unwrap(); // SIGKILL: no destructor, no cleanup runs in the child
    child.0.wait().unwrap();

    assert!(exits_within(pid, Duration::from_secs(10)), "postmaster {pid} outlived its killed test process");
    for helper in helpers {
        assert!(exits_within(helper, Duration::from_secs(10)), "postgres process {helper} outlived the postmaster");
    }
    // The killed process's directory is left behind; the next start removes
    // it (another test of this binary starting a server meanwhile may have).
    let _next = PgServer::start().unwrap();
    assert!(!root.exists(), "{} was not removed by the next start", root.display());
}
