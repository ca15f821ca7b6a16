//! One release: [`QUEUED`] executions of a program that exits at once are
//! queued while maintenance is on, then one deactivate releases them all
//! (SPEC §8: a change touching any number of executions commits in well
//! under 2 s; §12: `queued` becomes `pending` and the dispatchers of the
//! replicas with free slots start them, at most `--max-running` each).
//!
//! The managers are the release `manager` as child processes, each with a
//! workflows dir of its own whose `quick` program appends its execution id
//! to that replica's log: so the bench sees which replica ran each one, and
//! that each ran once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use futures_util::StreamExt;
use serde_json::{json, Value};
use shared::api::ListResponse;
use shared::{Execution, ExecutionStatus, MaintenanceState, MaintenanceStatus, Timestamp};

use super::{Setup, Store, MAX_RUNNING};
use crate::replicas::cpu::{server_seconds, ticks_per_second};
use crate::windows::{load_average, timestamp_ns, wall_ns};
use crate::workflows::manager_process::{answer, ManagerProcess};

/// Executions queued, then released by one deactivate.
pub const QUEUED: usize = 10_000;
/// Admissions in flight at once while queueing.
const CLIENTS: usize = 64;
/// The bound on queueing them all.
const QUEUE_BOUND: Duration = Duration::from_secs(600);
/// The bound on their runs, from the deactivate to the last end.
pub const RUN_BOUND: Duration = Duration::from_secs(900);
/// How often the stored counts are read while they run.
const POLL: Duration = Duration::from_millis(200);
/// A 503 `overloaded` admission is tried again this many times.
const RETRIES: usize = 200;

/// What one release measured.
pub struct Release {
    /// The first minute's load average just before queueing.
    pub load_before: String,
    /// Queueing [`QUEUED`] executions.
    pub queued_in: Duration,
    /// Admissions answered 503 and sent again.
    pub retries: usize,
    /// The deactivate: sent → its 200.
    pub answered: Duration,
    /// Ends stored within [`RUN_BOUND`] (by status; each execution once).
    pub terminated: usize,
    pub failed_or_cancelled: usize,
    /// Milliseconds from sending the deactivate to the first and the last
    /// stored `ended_at` (the manager's clock: this machine's, or the
    /// database server's on this machine).
    pub first_end_ms: Option<f64>,
    pub last_end_ms: Option<f64>,
    /// Per replica: the programs it ran (its log's lines), and the most
    /// `manager_running_processes` seen at a poll.
    pub per_replica: Vec<(usize, f64)>,
    /// Execution ids found more than once in the logs (a program run twice).
    pub ran_twice: usize,
    /// CPU seconds of the managers (user + system), of their programs
    /// (reaped children) and of the PostgreSQL server, from the deactivate
    /// to the last end.
    pub manager_cpu: f64,
    pub programs_cpu: f64,
    pub postgres_cpu: f64,
    /// Each manager's warnings and errors.
    pub complaints: Vec<String>,
}

impl Release {
    /// Every queued execution ended within the bound.
    pub fn finished(&self) -> bool {
        self.terminated + self.failed_or_cancelled == QUEUED
    }
}

/// Runs one release on `setup` (`database`: a fresh database for
/// PostgreSQL, on the server whose postmaster is `postmaster`).
pub async fn run(
    binary: &Path,
    setup: Setup,
    database: Option<&str>,
    postmaster: Option<u32>,
) -> anyhow::Result<Release> {
    let dir = tempfile::tempdir()?;
    let mut managers = Vec::new();
    let mut logs = Vec::new();
    for index in 1..=setup.replicas {
        let name = format!("r{index}");
        let (workflows, log) = quick_workflow(dir.path(), &name)?;
        let mut arguments = vec!["--max-running".to_owned(), MAX_RUNNING.to_string()];
        if let Store::Postgres(_) = setup.store {
            let database = database.context("a PostgreSQL setup without a database")?;
            arguments.extend(["--database".to_owned(), database.to_owned(), "--replica-id".to_owned(), name]);
        }
        let manager = ManagerProcess::start_with(binary, &workflows, &std::env::temp_dir(), &arguments).await?;
        managers.push(manager);
        logs.push(log);
    }
    let first = &managers[0];
    let status = first.maintenance("activate").await?;
    ensure!(status.status == MaintenanceState::Activated, "activate with nothing running: {:?}", status.status);

    let load_before = load_average().split_whitespace().next().unwrap_or("?").to_owned();
    let queueing = Instant::now();
    let retries = tokio::time::timeout(QUEUE_BOUND, queue(&managers))
        .await
        .with_context(|| format!("queueing {QUEUED} executions took over {QUEUE_BOUND:?}"))??;
    let queued_in = queueing.elapsed();

    let ticks = ticks_per_second();
    let cpu_before = cpu(&managers, postmaster, ticks)?;
    let sent_ns = wall_ns();
    let sent = Instant::now();
    let status: MaintenanceStatus = answer!(first.post("/maintenance/deactivate").send().await?, 200)?;
    let answered = sent.elapsed();
    ensure!(status.status == MaintenanceState::Deactivated, "deactivate answered {:?}", status.status);

    let most_running = run_to_the_end(&managers, sent).await?;
    let cpu_after = cpu(&managers, postmaster, ticks)?;
    let ends = read_ends(first).await?;
    let since_sent = |at: i128| (at - sent_ns) as f64 / 1e6;

    let mut seen = HashSet::new();
    let mut ran_twice = 0;
    let mut per_replica = Vec::new();
    for (log, most) in logs.iter().zip(most_running) {
        // A replica that ran nothing has no log.
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let mut ran = 0;
        for id in text.lines() {
            ran += 1;
            if !seen.insert(id.to_owned()) {
                ran_twice += 1;
            }
        }
        per_replica.push((ran, most));
    }
    let complaints = managers.iter().map(ManagerProcess::complaints).collect();
    for manager in managers {
        manager.stop().await?;
    }
    Ok(Release {
        load_before,
        queued_in,
        retries,
        answered,
        terminated: ends.terminated,
        failed_or_cancelled: ends.failed_or_cancelled,
        first_end_ms: ends.first.map(since_sent),
        last_end_ms: ends.last.map(since_sent),
        per_replica,
        ran_twice,
        manager_cpu: cpu_after.0 - cpu_before.0,
        programs_cpu: cpu_after.1 - cpu_before.1,
        postgres_cpu: cpu_after.2 - cpu_before.2,
        complaints,
    })
}

/// Writes replica `name`'s workflows dir under `dir`, holding `quick`: it
/// appends its execution id to the replica's log (one short write with
/// `O_APPEND`: lines of concurrent programs never interleave) and exits.
/// Returns the dir and the log's path.
fn quick_workflow(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let workflows = dir.join(format!("workflows-{name}"));
    std::fs::create_dir(&workflows)?;
    let log = dir.join(format!("ran-{name}.log"));
    let program = workflows.join("quick");
    std::fs::write(&program, format!("#!/bin/sh\necho \"$EXECUTION_ID\" >> '{}'\n", log.display()))?;
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755))?;
    Ok((workflows, log))
}

/// Queues [`QUEUED`] executions of `quick`, [`CLIENTS`] at a time, spread
/// over the managers in turn (as a load balancer would); returns how many
/// 503 answers were sent again.
async fn queue(managers: &[ManagerProcess]) -> anyhow::Result<usize> {
    let mut retries = 0;
    let mut admissions = futures_util::stream::iter(0..QUEUED)
        .map(|n| admit(&managers[n % managers.len()], n))
        .buffer_unordered(CLIENTS);
    while let Some(admitted) = admissions.next().await {
        retries += admitted?;
    }
    Ok(retries)
}

/// One queued admission (deployment `d<n>`); a 503 is sent again (bounded).
async fn admit(manager: &ManagerProcess, n: usize) -> anyhow::Result<usize> {
    let body = json!({"workflow_id": "quick", "deployment_id": format!("d{n}"), "queue": true});
    for retries in 0..RETRIES {
        let response = manager.post("/executions").json(&body).send().await?;
        if response.status() == 503 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let execution: Execution = answer!(response, 201)?;
        ensure!(execution.status == ExecutionStatus::Queued, "admitted as {}, not queued", execution.status);
        return Ok(retries);
    }
    bail!("POST /executions: still 503 after {RETRIES} tries")
}

/// Polls the stored counts (cluster-wide: every replica reads the same
/// database) until every queued execution has ended or [`RUN_BOUND`] has
/// passed since `sent`; returns the most programs each replica was seen running.
async fn run_to_the_end(managers: &[ManagerProcess], sent: Instant) -> anyhow::Result<Vec<f64>> {
    let mut most = vec![0.0_f64; managers.len()];
    loop {
        let mut ended = 0.0;
        for (index, manager) in managers.iter().enumerate() {
            let metrics = manager.metrics().await?;
            most[index] = most[index].max(sample(&metrics, "manager_running_processes").unwrap_or(0.0));
            if index == 0 {
                for status in ["terminated", "failed", "cancelled"] {
                    ended += sample(&metrics, &format!("manager_executions{{status=\"{status}\"}}")).unwrap_or(0.0);
                }
            }
        }
        if ended >= QUEUED as f64 || sent.elapsed() > RUN_BOUND {
            return Ok(most);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The value of the series `name` (with its labels, as printed) in Prometheus text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The stored ends.
struct Ends {
    terminated: usize,
    failed_or_cancelled: usize,
    /// The earliest and the latest `ended_at`, in nanoseconds since the epoch.
    first: Option<i128>,
    last: Option<i128>,
}

/// Reads every execution's status and `ended_at`, a page of 1 000 at a time.
async fn read_ends(manager: &ManagerProcess) -> anyhow::Result<Ends> {
    let mut ends = Ends { terminated: 0, failed_or_cancelled: 0, first: None, last: None };
    let mut offset = 0;
    loop {
        // Sorted by a unique key too: pages of rows created in one millisecond do not overlap.
        let path =
            format!("/executions?_size=1000&_offset={offset}&_sort=created_at&_sort=id&_include=status,ended_at");
        let page: ListResponse<Value> = answer!(manager.get(&path).send().await?, 200)?;
        for item in &page.items {
            let status: ExecutionStatus = serde_json::from_value(item["status"].clone())?;
            match status {
                ExecutionStatus::Terminated => ends.terminated += 1,
                ExecutionStatus::Failed | ExecutionStatus::Cancelled => ends.failed_or_cancelled += 1,
                _ => continue,
            }
            let ended: Timestamp = serde_json::from_value(item["ended_at"].clone()).context("an end's ended_at")?;
            let at = timestamp_ns(&ended);
            ends.first = Some(ends.first.map_or(at, |first| first.min(at)));
            ends.last = Some(ends.last.map_or(at, |last| last.max(at)));
        }
        offset += page.items.len();
        if page.items.is_empty() || offset >= QUEUED {
            return Ok(ends);
        }
    }
}

/// CPU seconds so far: the managers' own, their reaped programs', and the
/// PostgreSQL server's (whose postmaster is `postmaster`).
fn cpu(managers: &[ManagerProcess], postmaster: Option<u32>, ticks: f64) -> anyhow::Result<(f64, f64, f64)> {
    let mut total = (0.0, 0.0, 0.0);
    for manager in managers {
        let (user, system, children) = manager.cpu_seconds(ticks)?;
        total.0 += user + system;
        total.1 += children;
    }
    if let Some(postmaster) = postmaster {
        total.2 = server_seconds(postmaster, ticks)?;
    }
    Ok(total)
}
