//! The real `manager` binary with a command line of the test's own (its
//! working directory, log format, no `--dist`), every stderr line kept.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{test_database, ADMIN_PASSWORD, PATIENCE, TEST_REPLICA};

/// A running `manager` process.
pub struct Binary {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stderr line read so far.
    seen: Vec<String>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _data_dir: TempDir,
}

impl Binary {
    /// `manager --bind 127.0.0.1:0 --data-dir DIR` with the tests' admin,
    /// workflows, replica name and store; more arguments and the working
    /// directory are the caller's.
    pub fn command(data_dir: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_manager"));
        command
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .env("MANAGER_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("MANAGER_WORKFLOWS", manager::workflows::EXAMPLES)
            .env("MANAGER_REPLICA_ID", TEST_REPLICA)
            .env_remove("MANAGER_DIST")
            .env_remove("MANAGER_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = test_database(data_dir) {
            command.env("MANAGER_DATABASE_URL", url);
        }
        command
    }

    /// Starts `command` (from [`Binary::command`] on `data_dir`) and waits
    /// until it says where it listens (in text or JSON).
    pub fn start(mut command: Command, data_dir: TempDir) -> Self {
        let mut child = command.spawn().expect("spawn manager");
        let stderr = child.stderr.take().expect("stderr");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let address = loop {
            let line = lines.recv_timeout(PATIENCE).expect("the manager did not say where it listens");
            seen.push(line.clone());
            if let Some((_, rest)) = line.split_once("listening on http://") {
                let address: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
                break address.parse::<SocketAddr>().expect("listen address");
            }
        };
        Self { child, lines, seen, base: format!("http://{address}"), _data_dir: data_dir }
    }

    /// SIGTERM, a clean exit, and every line it wrote.
    pub fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM").success());
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "no exit within {PATIENCE:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{status}");
        // The reader thread ends with the pipe.
        let mut seen = std::mem::take(&mut self.seen);
        seen.extend(self.lines.iter());
        seen
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
