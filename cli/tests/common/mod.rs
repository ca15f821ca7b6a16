//! What the CLI tests share: a real manager on 127.0.0.1:0 and ways to run
//! our `cfy` against it and read what it printed.
#![allow(dead_code)] // Each test binary uses its own part of this.

use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use manager::config::Config;
use manager::Manager;
use serde_json::json;
use shared::{Execution, MaintenanceStatus};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// The test CA and its certificates, shared with the manager's tests.
#[path = "../../../backend/tests/common/tls.rs"]
pub mod tls;

pub const PASSWORD: &str = "cli test password";
pub const LONG: f64 = 600.0;

pub struct TestManager {
    pub url: String,
    pub http: reqwest::Client,
    /// What it was started with (its data directory, for `manager users`).
    pub config: Config,
    _data: TempDir,
    _stop: tokio_util::sync::DropGuard,
}

impl TestManager {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A manager with settings of the test's own (`--webhook`, …).
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config {
            dist: "/nonexistent".into(),
            admin_password: Some(PASSWORD.into()),
            workflows: manager::workflows::EXAMPLES.into(),
            ..Config::local(data.path().to_owned())
        };
        configure(&mut config);
        let manager = Manager::open(&config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if config.tls_cert.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        tokio::spawn(manager.serve(listener, stop.clone()));
        Self { url, http: reqwest::Client::new(), config, _data: data, _stop: stop.drop_guard() }
    }

    /// Adds a user with this role, as `manager users add NAME --role R --password-stdin` does.
    pub fn add_user(&self, name: &str, role: shared::Role, password: &str) {
        let command = manager::users::UsersCommand::Add { name: name.into(), role, password_stdin: true };
        manager::users::run(&self.config, command, &mut format!("{password}\n").as_bytes()).unwrap();
    }

    /// Runs `cfy` with this manager and the admin's credentials.
    pub async fn cfy(&self, args: &[&str]) -> Output {
        run_cfy(&self.url, PASSWORD, args).await
    }

    pub async fn api_post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        let url = format!("{}/api/v3.1{path}", self.url);
        self.http.post(url).basic_auth("admin", Some(PASSWORD)).json(&body).send().await.unwrap()
    }

    pub async fn api_get(&self, path: &str) -> reqwest::Response {
        let url = format!("{}/api/v3.1{path}", self.url);
        self.http.get(url).basic_auth("admin", Some(PASSWORD)).send().await.unwrap()
    }

    pub async fn api_delete(&self, path: &str) -> reqwest::Response {
        let url = format!("{}/api/v3.1{path}", self.url);
        self.http.delete(url).basic_auth("admin", Some(PASSWORD)).send().await.unwrap()
    }

    /// Waits until the maintenance state is `state`.
    pub async fn wait_for_state(&self, state: shared::MaintenanceState) -> MaintenanceStatus {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.status().await;
            if status.status == state {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "never {state}: {status:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn start(&self, duration: f64) -> Execution {
        let body =
            json!({"workflow_id": "install", "deployment_id": "web", "parameters": {"duration_seconds": duration}});
        let response = self.api_post("/executions", body).await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// Waits until execution `id` has ended.
    pub async fn wait_for_end(&self, id: &str) -> Execution {
        let url = format!("{}/api/v3.1/executions/{id}", self.url);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let execution: Execution =
                self.http.get(&url).basic_auth("admin", Some(PASSWORD)).send().await.unwrap().json().await.unwrap();
            if execution.status.is_end() {
                return execution;
            }
            assert!(tokio::time::Instant::now() < deadline, "never ended: {execution:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn status(&self) -> MaintenanceStatus {
        let url = format!("{}/api/v3.1/maintenance", self.url);
        self.http.get(url).basic_auth("admin", Some(PASSWORD)).send().await.unwrap().json().await.unwrap()
    }
}

pub async fn run_cfy(url: &str, password: &str, args: &[&str]) -> Output {
    run_cfy_with(url, password, args, &[]).await
}

/// `run_cfy` with more environment variables (`TZ`).
pub async fn run_cfy_with(url: &str, password: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::cargo_bin("cfy").unwrap();
    command.envs(env.iter().copied());
    command.env("CFY_MANAGER", url).env("CFY_PASSWORD", password).env_remove("CFY_USERNAME").args(args);
    command.timeout(Duration::from_secs(60));
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

pub fn assert_failure(output: &Output, message: &str) {
    assert_eq!(output.status.code(), Some(1), "stdout:\n{}\nstderr:\n{}", stdout(output), stderr(output));
    let err = stderr(output);
    assert!(err.contains(message), "stderr should contain {message:?}:\n{err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
}
