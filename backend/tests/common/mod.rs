//! Helpers for black-box tests: a real manager on 127.0.0.1:0 (in-process or
//! as a child process), a real SQLite file in a temp dir, real HTTP.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::StreamExt;
use manager::config::Config;
use manager::Manager;
use serde_json::{json, Value};
use shared::sse::{SseBuffer, SseEvent};
use shared::{ApiError, ErrorCode, Execution, MaintenanceStatus};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod binary;
pub mod metrics;
pub mod receiver;
pub mod tls;

/// How long a test waits for something that should happen at once; generous
/// so a loaded 2-core CI machine does not flake.
pub const PATIENCE: Duration = Duration::from_secs(20);
/// An execution that will not end by itself during a test.
pub const LONG: f64 = 600.0;
/// The first admin's password in every test manager.
pub const ADMIN_PASSWORD: &str = "admin password for tests";

/// A client for one manager, signed in with a token (or anonymous).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Api {
    /// An anonymous client.
    pub fn anonymous(address: SocketAddr) -> Self {
        // Idle connections are given up before the server closes them (its
        // request-head timeout, 10 s): reusing one at the moment the server
        // closes it fails the request (a reset), which a loaded machine made
        // happen between the rounds of the replica race test.
        let http = reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(5)).build().expect("HTTP client");
        Self { base: format!("http://{address}"), http, token: None }
    }

    /// A client signed in as `username` (a token from `POST /tokens`).
    pub async fn signed_in(&self, username: &str, password: &str) -> Self {
        let response = self
            .http
            .post(self.url("/tokens"))
            .basic_auth(username, Some(password))
            .send()
            .await
            .expect("POST /tokens");
        assert_eq!(response.status(), 200, "sign in as {username}");
        let token: shared::TokenResponse = response.json().await.expect("token JSON");
        Self { token: Some(token.value), ..self.clone() }
    }

    /// `path` under the API prefix.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, shared::api::path(path))
    }

    /// A request to an API path with this client's token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => request.header(shared::api::TOKEN_HEADER, token),
            None => request,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> reqwest::Response {
        let request = self.request(reqwest::Method::POST, path);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        request.send().await.expect("POST")
    }

    pub async fn status(&self) -> MaintenanceStatus {
        let response = self.get("/maintenance").await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("status JSON")
    }

    /// Activates and returns the status of the 200 response.
    pub async fn activate(&self, reason: Option<&str>) -> MaintenanceStatus {
        let body = reason.map(|reason| json!({ "reason": reason }));
        let response = self.post("/maintenance/activate", body).await;
        assert_eq!(response.status(), 200, "activate");
        response.json().await.expect("status JSON")
    }

    pub async fn deactivate(&self) -> MaintenanceStatus {
        let response = self.post("/maintenance/deactivate", None).await;
        assert_eq!(response.status(), 200, "deactivate");
        response.json().await.expect("status JSON")
    }

    /// `POST /executions` with the given duration and queue flag.
    pub async fn create(&self, duration_seconds: f64, queue: bool) -> reqwest::Response {
        let body = json!({
            "workflow_id": "install",
            "deployment_id": "web",
            "parameters": { "duration_seconds": duration_seconds },
            "queue": queue,
        });
        self.post("/executions", Some(body)).await
    }

    /// Creates an execution that must be admitted (201).
    pub async fn start(&self, duration_seconds: f64) -> Execution {
        let response = self.create(duration_seconds, false).await;
        assert_eq!(response.status(), 201, "create execution");
        response.json().await.expect("execution JSON")
    }

    /// Reads an execution in any maintenance state, with the admin bypass header.
    pub async fn execution(&self, id: uuid::Uuid) -> Execution {
        let request = self.request(reqwest::Method::GET, &format!("/executions/{id}"));
        let response = request.header(shared::api::BYPASS_HEADER, "true").send().await.expect("GET");
        assert_eq!(response.status(), 200);
        response.json().await.expect("execution JSON")
    }

    /// Waits until execution `id` is `status` (released executions wait for a slot first).
    pub async fn wait_for_execution(&self, id: uuid::Uuid, status: shared::ExecutionStatus) -> Execution {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let execution = self.execution(id).await;
            if execution.status == status {
                return execution;
            }
            assert!(tokio::time::Instant::now() < deadline, "{id} is still {} after {PATIENCE:?}", execution.status);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn cancel(&self, id: uuid::Uuid) -> Execution {
        let response = self.post(&format!("/executions/{id}"), Some(json!({"action": "cancel"}))).await;
        assert_eq!(response.status(), 200, "cancel");
        response.json().await.expect("execution JSON")
    }

    pub async fn force_cancel(&self, id: uuid::Uuid) -> Execution {
        let response = self.post(&format!("/executions/{id}"), Some(json!({"action": "force-cancel"}))).await;
        assert_eq!(response.status(), 200, "force-cancel");
        response.json().await.expect("execution JSON")
    }

    /// Polls until execution `id` has ended; panics after [`PATIENCE`].
    pub async fn wait_for_end(&self, id: uuid::Uuid) -> Execution {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let execution = self.execution(id).await;
            if execution.status.is_end() {
                return execution;
            }
            assert!(tokio::time::Instant::now() < deadline, "never ended: {execution:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until `done` holds for the status; panics after [`PATIENCE`].
    pub async fn wait_for_status(&self, done: impl Fn(&MaintenanceStatus) -> bool) -> MaintenanceStatus {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "gave up waiting; last status {status:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET /maintenance` with the epoch from its header.
    pub async fn status_with_epoch(&self) -> (u64, MaintenanceStatus) {
        epoch_and_status(self.get("/maintenance").await).await
    }

    /// Opens `GET /maintenance/events`.
    pub async fn events(&self) -> Events {
        Events::from_response(self.get("/maintenance/events").await)
    }
}

/// A 200 status answer's epoch header and body.
pub async fn epoch_and_status(response: reqwest::Response) -> (u64, MaintenanceStatus) {
    assert_eq!(response.status(), 200, "status answer of {}", response.url());
    let epoch = response.headers()[shared::api::EPOCH_HEADER].to_str().unwrap().parse().expect("a numeric epoch");
    (epoch, response.json().await.expect("status JSON"))
}

/// Asserts an error response: status, JSON body with the code, no traceback.
pub async fn assert_error(response: reqwest::Response, status: u16, code: ErrorCode) -> ApiError {
    assert_eq!(response.status(), status, "status of {}", response.url());
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/json"), "error content type");
    let text = response.text().await.expect("body");
    for leak in ["Traceback", "panicked", "backtrace", "src/", "rusqlite"] {
        assert!(!text.contains(leak), "error body leaks {leak:?}: {text}");
    }
    let body: ApiError = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not an error body ({e}): {text}"));
    assert_eq!(body.error_code, code, "{text}");
    assert!(!body.message.is_empty());
    body
}

/// A parsed Server-Sent Events stream of `status` events.
pub struct Events {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: SseBuffer,
}

impl Events {
    /// Reads an open event stream (asserts that it is one).
    pub fn from_response(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200, "event stream of {}", response.url());
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        Self { body: Box::pin(response.bytes_stream()), buffer: SseBuffer::default() }
    }

    /// The next `status` event; panics after [`PATIENCE`] or if the stream ends.
    pub async fn next(&mut self) -> MaintenanceStatus {
        tokio::time::timeout(PATIENCE, self.next_or_end()).await.expect("no event in time").expect("stream ended")
    }

    /// The next `status` event, or `None` when the server ended the stream.
    pub async fn next_or_end(&mut self) -> Option<MaintenanceStatus> {
        self.next_named("status").await.map(|event| serde_json::from_str(&event.data).expect("status event JSON"))
    }

    /// The next `status` event with its epoch (the event's `id:`).
    pub async fn next_with_epoch(&mut self) -> (u64, MaintenanceStatus) {
        let event = tokio::time::timeout(PATIENCE, self.next_named("status")).await.expect("no event in time");
        let event = event.expect("stream ended");
        let epoch = event.id.as_deref().expect("a status event has an id").parse().expect("the id is a number");
        (epoch, serde_json::from_str(&event.data).expect("status event JSON"))
    }

    /// The next `execution` event (skipping others); panics after [`PATIENCE`].
    pub async fn next_execution(&mut self) -> Execution {
        let event = tokio::time::timeout(PATIENCE, self.next_named("execution")).await.expect("no event in time");
        serde_json::from_str(&event.expect("stream ended").data).expect("execution event JSON")
    }

    /// The next event of any name, or `None` when the server ended the stream.
    pub async fn next_any(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.buffer.next_event() {
                return Some(event);
            }
            let chunk = self.body.next().await?.ok()?;
            self.buffer.push(&chunk);
        }
    }

    async fn next_named(&mut self, wanted: &str) -> Option<SseEvent> {
        loop {
            while let Some(event) = self.buffer.next_event() {
                if event.name == wanted {
                    return Some(event);
                }
            }
            let chunk = self.body.next().await?.ok()?;
            self.buffer.push(&chunk);
        }
    }
}

/// The store every black-box test runs against: the embedded SQLite
/// database (the default), or with `MANAGER_TEST_STORE=postgres` a database
/// of its own on this test binary's throwaway PostgreSQL server (pg-harness).
/// The tests are the same; `scripts/test` runs them once per store. A data
/// dir keeps its database across restarts (its URL is kept in the dir).
pub fn test_database(data_dir: &Path) -> Option<String> {
    match std::env::var("MANAGER_TEST_STORE").as_deref() {
        Ok("postgres") => {}
        Ok("sqlite") | Err(_) => return None,
        Ok(other) => panic!("MANAGER_TEST_STORE={other}: use `sqlite` or `postgres`"),
    }
    let kept = data_dir.join("test-database-url");
    if let Ok(url) = std::fs::read_to_string(&kept) {
        return Some(url);
    }
    let url = pg_harness::shared().fresh_database().expect("a fresh PostgreSQL database");
    std::fs::write(&kept, &url).expect("keep the database URL in the data dir");
    Some(url)
}

/// Whether the tests run on PostgreSQL (see [`test_database`]).
pub fn on_postgres() -> bool {
    std::env::var("MANAGER_TEST_STORE").as_deref() == Ok("postgres")
}

/// The replica name of every test manager (so a restart is the same replica).
pub const TEST_REPLICA: &str = "test-replica";

/// Runs `manager users …` on the store of the manager in `data_dir`.
pub fn users(data_dir: &Path, command: manager::users::UsersCommand, input: &str) -> anyhow::Result<String> {
    manager::users::run(&TestApp::config(data_dir), command, &mut input.as_bytes())
}

/// A manager running inside the test process.
pub struct TestApp {
    pub api: Api,
    /// The manager's shared state, to look inside (e.g. count password checks).
    pub state: manager::state::AppState,
    pub data_dir: TempDir,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with_dist(Path::new("/nonexistent-dist")).await
    }

    pub async fn spawn_with_dist(dist: &Path) -> Self {
        Self::spawn_with(dist, 36_000).await
    }

    /// A manager whose tokens live `token_ttl_seconds`.
    pub async fn spawn_with(dist: &Path, token_ttl_seconds: u64) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config = Config { dist: dist.to_owned(), token_ttl_seconds, ..Self::config(data_dir.path()) };
        Self::spawn_config(data_dir, config).await
    }

    /// A manager running the workflows in `workflows`, cancelling with `grace_seconds`.
    pub async fn spawn_with_workflows(workflows: &Path, grace_seconds: u64) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            workflows: workflows.to_owned(),
            cancel_grace_seconds: grace_seconds,
            ..Self::config(data_dir.path())
        };
        Self::spawn_config(data_dir, config).await
    }

    /// A manager serving the panel in `dist` and running the workflows in `workflows`.
    pub async fn spawn_with_dist_and_workflows(dist: &Path, workflows: &Path) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config = Config { dist: dist.to_owned(), workflows: workflows.to_owned(), ..Self::config(data_dir.path()) };
        Self::spawn_config(data_dir, config).await
    }

    /// The tests' defaults: the shipped workflows, no panel, the test admin.
    pub fn config(data_dir: &Path) -> Config {
        Self::config_on(data_dir, test_database(data_dir))
    }

    /// [`TestApp::config`] on the database at `url` (SQLite in the data dir if none).
    pub fn config_on(data_dir: &Path, url: Option<String>) -> Config {
        Config {
            dist: "/nonexistent-dist".into(),
            admin_password: Some(ADMIN_PASSWORD.into()),
            workflows: manager::workflows::EXAMPLES.into(),
            database: url,
            replica_id: Some(TEST_REPLICA.into()),
            ..Config::local(data_dir.to_owned())
        }
    }

    /// A manager running `config` on `data_dir`, signed in as the first admin.
    pub async fn spawn_config(data_dir: TempDir, config: Config) -> Self {
        let manager = Manager::open(&config).await.expect("open manager");
        let state = manager.state().clone();
        let listener = TcpListener::bind(&config.bind).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(manager.serve(listener, shutdown.clone()));
        let api = Api::anonymous(address).signed_in("admin", ADMIN_PASSWORD).await;
        Self { api, state, data_dir, shutdown, server }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) -> TempDir {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.server).await.expect("graceful stop in time").unwrap().unwrap();
        self.data_dir
    }
}

/// A `manager` child process, for restarts and kills.
pub struct ManagerProcess {
    pub api: Api,
    child: Child,
    /// The log lines the process wrote after it started listening.
    pub log: mpsc::Receiver<String>,
    /// The log lines up to and including the "listening" line.
    pub startup_log: Vec<String>,
}

impl ManagerProcess {
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with_dist(data_dir, Path::new("/nonexistent-dist"))
    }

    pub fn start_with_dist(data_dir: &Path, dist: &Path) -> Self {
        Self::start_full(data_dir, dist, &[])
    }

    /// Starts with extra environment variables (overriding the defaults).
    pub fn start_with_env(data_dir: &Path, envs: &[(&str, &str)]) -> Self {
        Self::start_full(data_dir, Path::new("/nonexistent-dist"), envs)
    }

    /// Starts with this open-file limit (soft, hard), as `ulimit -n` would set it.
    pub fn start_with_open_files(data_dir: &Path, soft: u64, hard: u64, envs: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_manager"));
        // SAFETY: setrlimit is async-signal-safe and touches nothing of the parent's.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                rlimit::setrlimit(rlimit::Resource::NOFILE, soft, hard)
            });
        }
        Self::start_command(command, data_dir, Path::new("/nonexistent-dist"), envs)
    }

    fn start_full(data_dir: &Path, dist: &Path, envs: &[(&str, &str)]) -> Self {
        Self::start_command(Command::new(env!("CARGO_BIN_EXE_manager")), data_dir, dist, envs)
    }

    fn start_command(mut command: Command, data_dir: &Path, dist: &Path, envs: &[(&str, &str)]) -> Self {
        command
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--dist")
            .arg(dist)
            .env("RUST_LOG", "info")
            .env("MANAGER_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("MANAGER_WORKFLOWS", manager::workflows::EXAMPLES)
            .env("MANAGER_REPLICA_ID", TEST_REPLICA)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = test_database(data_dir) {
            command.env("MANAGER_DATABASE_URL", url);
        }
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn manager");
        let stderr = child.stderr.take().expect("stderr");
        let (lines, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut startup_log = Vec::new();
        let address = loop {
            let line = log
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|error| panic!("manager did not say where it listens ({error}): {startup_log:#?}"));
            startup_log.push(line.clone());
            // `https://` with --tls-cert: the test brings a client that trusts its CA.
            let listening = ["http", "https"].into_iter().find_map(|scheme| {
                let (_, rest) = line.split_once(&format!("listening on {scheme}://"))?;
                Some((scheme, rest.split_whitespace().next().unwrap_or_default().to_owned()))
            });
            if let Some((scheme, address)) = listening {
                break (scheme, address.parse::<SocketAddr>().expect("listen address"));
            }
        };
        let (scheme, address) = address;
        let api = Api { base: format!("{scheme}://{address}"), ..Api::anonymous(address) };
        Self { api, child, log, startup_log }
    }

    /// Signs the client in as the first admin.
    pub async fn signed_in(mut self) -> Self {
        self.api = self.api.signed_in("admin", ADMIN_PASSWORD).await;
        self
    }

    /// The log lines written since start-up, waiting `quiet` for stragglers.
    pub fn drain_log(&self, quiet: Duration) -> Vec<String> {
        let mut lines = self.startup_log.clone();
        while let Ok(line) = self.log.recv_timeout(quiet) {
            lines.push(line);
        }
        lines
    }

    /// The process id (to read /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        assert!(sent.success());
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("manager did not stop within {PATIENCE:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ManagerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether process `pid` runs (a zombie, dead but not yet reaped, does not).
pub fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()).unwrap_or('X');
    !matches!(state, 'Z' | 'X')
}

/// Waits until process `pid` no longer runs; panics after [`PATIENCE`].
pub async fn wait_gone(pid: i32) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while alive(pid) {
        assert!(tokio::time::Instant::now() < deadline, "process {pid} is still alive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes an executable workflow program `name` into `dir`.
pub fn write_workflow(dir: &Path, name: &str, program: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, program).expect("write a workflow");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("make it executable");
}
