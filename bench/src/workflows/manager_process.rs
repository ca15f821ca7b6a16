//! The release `manager` as a child process: started on a fresh data dir over
//! the bench's workflows, signed in with a token, read from `/proc`, stopped
//! with SIGTERM (and killed if the bench gives up on it).

use std::fmt::Display;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use shared::api::{ListResponse, API_PREFIX, TOKEN_HEADER};
use shared::execution::ExecutionEvent;
use shared::{Execution, MaintenanceStatus};

use super::PATIENCE;
use crate::PASSWORD;

/// How long a manager may take to exit after SIGTERM.
const STOP_BOUND: Duration = Duration::from_secs(60);
/// What every manager here logs and is not a problem: it serves no panel.
const EXPECTED_WARNING: &str = "no admin panel there";

/// The JSON body of a response with status `wanted`, or an error naming what came.
pub async fn expect(response: reqwest::Response, wanted: u16) -> anyhow::Result<Value> {
    let status = response.status();
    let url = response.url().path().to_owned();
    let body = response.text().await?;
    ensure!(status.as_u16() == wanted, "{url}: {status} (wanted {wanted}): {body}");
    serde_json::from_str(&body).with_context(|| format!("{url}: {body}"))
}

/// A typed answer: the JSON body of a response with status `wanted`, as the
/// type the caller binds it to.
macro_rules! answer {
    ($response:expr, $wanted:expr) => {
        serde_json::from_value($crate::workflows::manager_process::expect($response, $wanted).await?)
            .context("an unexpected answer")
    };
}
pub(crate) use answer;

/// What the manager logged at WARN or ERROR (the first few, and how many).
#[derive(Default)]
struct Complaints {
    count: usize,
    first: Vec<String>,
}

/// CPU time of one thread name (the engine, the output writer, the tokio workers…).
pub struct ThreadCpu {
    /// The thread's name (`comm`); threads of one name are added up.
    pub name: String,
    /// User and system seconds.
    pub user: f64,
    pub system: f64,
}

/// The release `manager` as a child process, signed in with a token.
pub struct ManagerProcess {
    child: Child,
    base: String,
    token: String,
    client: reqwest::Client,
    complaints: Arc<Mutex<Complaints>>,
    data: tempfile::TempDir,
}

impl ManagerProcess {
    /// Starts `binary` on a fresh data dir in `data_parent` over `workflows`
    /// and takes a token.
    pub async fn start(binary: &Path, workflows: &Path, data_parent: &Path) -> anyhow::Result<Self> {
        Self::start_with(binary, workflows, data_parent, &[]).await
    }

    /// [`ManagerProcess::start`] with more command-line arguments (`--database URL`…).
    pub async fn start_with(
        binary: &Path,
        workflows: &Path,
        data_parent: &Path,
        more: &[String],
    ) -> anyhow::Result<Self> {
        let data = tempfile::tempdir_in(data_parent)?;
        let mut child = Command::new(binary)
            .args(["--bind", "127.0.0.1:0", "--dist", "/nonexistent", "--cancel-grace-seconds", "10", "--data-dir"])
            .arg(data.path())
            .arg("--workflows")
            .arg(workflows)
            .args(more)
            .env("MANAGER_ADMIN_PASSWORD", PASSWORD)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stderr = child.stderr.take().context("stderr")?;
        let complaints = Arc::new(Mutex::new(Complaints::default()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let kept = Arc::clone(&complaints);
        // Reads the log to its end (the manager's exit): the manager must
        // never find its stderr closed (it then cannot log, nor stop on SIGTERM).
        std::thread::spawn(move || {
            let mut address = Some(address_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((_, rest)) = line.split_once("listening on http://") {
                    if let Some(sender) = address.take() {
                        let _ = sender.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
                    }
                } else if (line.contains(" WARN ") || line.contains(" ERROR ")) && !line.contains(EXPECTED_WARNING) {
                    let mut kept = kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    kept.count += 1;
                    if kept.first.len() < 3 {
                        kept.first.push(line);
                    }
                }
            }
        });
        let address = match tokio::task::spawn_blocking(move || address_rx.recv_timeout(PATIENCE)).await? {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the manager did not start listening within {PATIENCE:?}");
            }
        };
        let base = format!("http://{address}");
        let client = reqwest::Client::builder().pool_max_idle_per_host(1024).timeout(PATIENCE).build()?;
        let mut manager = Self { child, base, token: String::new(), client, complaints, data };
        // A token: Basic auth would cost an argon2id check on every request.
        let request = manager.client.post(manager.url("/tokens")).basic_auth("admin", Some(PASSWORD));
        let token: shared::TokenResponse = answer!(request.send().await?, 200)?;
        manager.token = token.value;
        Ok(manager)
    }

    /// The manager's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its data dir.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{API_PREFIX}{path}", self.base)
    }

    /// A signed-in GET of an API path.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).header(TOKEN_HEADER, &self.token)
    }

    /// A signed-in POST to an API path.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).header(TOKEN_HEADER, &self.token)
    }

    /// `POST /executions` of `workflow`, sent when the caller sends it.
    pub fn create_request(&self, workflow: &str) -> reqwest::RequestBuilder {
        self.post("/executions").json(&json!({"workflow_id": workflow, "deployment_id": "bench", "parameters": {}}))
    }

    /// Creates an execution; a 503 `overloaded` is retried (bounded) and counted.
    pub async fn create(&self, workflow: &str) -> anyhow::Result<(Execution, usize)> {
        for retries in 0..200 {
            let response = self.create_request(workflow).send().await?;
            if response.status() == 503 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            return Ok((answer!(response, 201)?, retries));
        }
        bail!("POST /executions: still 503 after 200 tries")
    }

    /// `GET /executions/{id}`.
    pub async fn execution(&self, id: impl Display) -> anyhow::Result<Execution> {
        answer!(self.get(&format!("/executions/{id}")).send().await?, 200)
    }

    /// Polls the execution every `every` until it has ended (bounded by [`PATIENCE`]).
    pub async fn ended(&self, id: impl Display + Copy, every: Duration) -> anyhow::Result<Execution> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            tokio::time::sleep(every).await;
            let execution = self.execution(id).await?;
            if execution.status.is_end() {
                return Ok(execution);
            }
            ensure!(Instant::now() < deadline, "execution {id} did not end within {PATIENCE:?}");
        }
    }

    /// A page of an execution's output.
    pub async fn events(
        &self,
        id: impl Display,
        offset: u64,
        size: u32,
    ) -> anyhow::Result<ListResponse<ExecutionEvent>> {
        answer!(self.get(&format!("/executions/{id}/events?_offset={offset}&_size={size}")).send().await?, 200)
    }

    /// Polls the stored output every 10 ms until the program has written `line`.
    pub async fn wait_for_line(&self, id: impl Display + Copy, line: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.events(id, 0, 100).await?.items.iter().any(|event| event.line == line) {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "execution {id} did not print {line:?} within {PATIENCE:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `GET /maintenance`.
    pub async fn status(&self) -> anyhow::Result<MaintenanceStatus> {
        answer!(self.get("/maintenance").send().await?, 200)
    }

    /// `GET /metrics` (open on loopback): the Prometheus text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let response = self.client.get(format!("{}/metrics", self.base)).send().await?;
        ensure!(response.status() == 200, "GET /metrics: {}", response.status());
        Ok(response.text().await?)
    }

    /// `POST /maintenance/activate` or `…/deactivate`.
    pub async fn maintenance(&self, action: &str) -> anyhow::Result<MaintenanceStatus> {
        answer!(self.post(&format!("/maintenance/{action}")).send().await?, 200)
    }

    /// CPU seconds of each of the manager's threads, by name (`/proc/<pid>/task/*/stat`).
    pub fn thread_cpu(&self, ticks_per_second: f64) -> anyhow::Result<Vec<ThreadCpu>> {
        let mut threads: Vec<ThreadCpu> = Vec::new();
        for task in std::fs::read_dir(format!("/proc/{}/task", self.pid()))? {
            let Ok(stat) = std::fs::read_to_string(task?.path().join("stat")) else { continue };
            let (name, user, system, _, _) = parse_stat(&stat)?;
            let (user, system) = (user / ticks_per_second, system / ticks_per_second);
            match threads.iter_mut().find(|thread| thread.name == name) {
                Some(thread) => {
                    thread.user += user;
                    thread.system += system;
                }
                None => threads.push(ThreadCpu { name, user, system }),
            }
        }
        Ok(threads)
    }

    /// CPU seconds of the manager (user, system) and of its reaped children
    /// (the programs), from `/proc/<pid>/stat`.
    pub fn cpu_seconds(&self, ticks_per_second: f64) -> anyhow::Result<(f64, f64, f64)> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        let (_, user, system, children_user, children_system) = parse_stat(&stat)?;
        Ok((user / ticks_per_second, system / ticks_per_second, (children_user + children_system) / ticks_per_second))
    }

    /// Bytes the manager caused to be written to storage (`/proc/<pid>/io`).
    pub fn written_bytes(&self) -> anyhow::Result<u64> {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.pid()))?;
        io.lines()
            .find_map(|line| line.strip_prefix("write_bytes: "))
            .and_then(|value| value.trim().parse().ok())
            .context("write_bytes in /proc io")
    }

    /// A `kB` line of `/proc/<pid>/status` (VmRSS, VmHWM), in MiB.
    pub fn memory_mib(&self, name: &str) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("{name} in /proc status"))?;
        Ok(kib / 1024.0)
    }

    /// SIGTERM, then waits (bounded) for a clean exit; returns how long it took.
    pub async fn stop(mut self) -> anyhow::Result<Duration> {
        let asked = Instant::now();
        let sent = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status()?;
        ensure!(sent.success(), "kill -TERM {}: {sent}", self.pid());
        loop {
            if let Some(status) = self.child.try_wait()? {
                ensure!(status.success(), "the manager exited with {status} after SIGTERM");
                return Ok(asked.elapsed());
            }
            ensure!(asked.elapsed() < STOP_BOUND, "the manager did not exit within {STOP_BOUND:?} of SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The warnings and errors it logged, beyond the expected one.
    pub fn complaints(&self) -> String {
        let complaints = self.complaints.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match complaints.count {
            0 => "none".to_owned(),
            n => format!("{n}, the first: {}", complaints.first.join(" / ")),
        }
    }
}

impl Drop for ManagerProcess {
    /// A section that failed or was interrupted half-way must not leave the
    /// manager (and its programs) running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `(comm, utime, stime, cutime, cstime)` of a `/proc/…/stat` line, in clock ticks.
pub(crate) fn parse_stat(stat: &str) -> anyhow::Result<(String, f64, f64, f64, f64)> {
    // The name may hold spaces and parentheses: it ends at the last ") ".
    let (head, rest) = stat.rsplit_once(") ").context("a /proc stat line")?;
    let name = head.split_once(" (").map_or(head, |(_, name)| name).to_owned();
    // `rest` starts at field 3 (the state).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<f64> { Ok(fields.get(n - 3).context("a /proc stat field")?.parse()?) };
    Ok((name, field(14)?, field(15)?, field(16)?, field(17)?))
}
