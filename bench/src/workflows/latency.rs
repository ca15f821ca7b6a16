//! One execution at a time on an otherwise idle manager: POST → the program
//! runs, cancel → its TERM trap, its exit → `activated`. Each program prints
//! `date +%s%N` at the moment measured; samples are in milliseconds.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use futures_util::StreamExt;
use serde_json::json;
use shared::{Execution, ExecutionStatus, MaintenanceState, MaintenanceStatus};
use tokio::sync::mpsc;

use super::manager_process::{answer, expect, ManagerProcess};
use super::{ns_to_ms, printed_ns, timestamp_ns, wall_ns, PATIENCE};

/// Sequential starts timed.
pub const STARTS: usize = 200;
/// Sequential cancels timed.
pub const CANCELS: usize = 100;
/// Activations completed by a program's exit, per manager.
pub const ACTIVATIONS: usize = 50;

/// The floor of the start latency: the bench itself spawning the same
/// program (fork, exec of sh, exec of date) and reading its first line.
pub fn start_floor(program: &Path) -> anyhow::Result<Vec<f64>> {
    let mut samples = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let before = wall_ns();
        let output = Command::new(program).stdin(Stdio::null()).output()?;
        ensure!(output.status.success(), "{}: {}", program.display(), output.status);
        let text = String::from_utf8_lossy(&output.stdout);
        samples.push(ns_to_ms(printed_ns(text.lines().next().unwrap_or_default())? - before));
    }
    Ok(samples)
}

/// Samples of one request and what it set off.
#[derive(Default)]
pub struct Timed {
    /// Request sent → the program's `date`.
    pub reached: Vec<f64>,
    /// Request sent → its answer.
    pub answered: Vec<f64>,
    /// Executions that did not end as expected.
    pub unexpected: usize,
}

/// POST /executions → the program's first action, one start at a time.
pub async fn start_latency(manager: &ManagerProcess) -> anyhow::Result<Timed> {
    // Warm the connection and the catalog's directory entries.
    manager.create("first-line").await?;
    let mut starts = Timed::default();
    for _ in 0..STARTS {
        let request = manager.create_request("first-line");
        let sent = wall_ns();
        let sent_at = Instant::now();
        let execution: Execution = answer!(request.send().await?, 201)?;
        starts.answered.push(sent_at.elapsed().as_secs_f64() * 1000.0);
        let ended = manager.ended(execution.id, Duration::from_millis(10)).await?;
        starts.unexpected += usize::from(ended.status != ExecutionStatus::Terminated);
        let output = manager.events(execution.id, 0, 10).await?;
        let first = output.items.first().with_context(|| format!("execution {}: no output", execution.id))?;
        starts.reached.push(ns_to_ms(printed_ns(&first.line)? - sent));
    }
    Ok(starts)
}

/// Cancel → the program's TERM trap, one at a time.
pub async fn cancel_latency(manager: &ManagerProcess) -> anyhow::Result<Timed> {
    let mut cancels = Timed::default();
    for _ in 0..CANCELS {
        let (execution, _) = manager.create("term-trap").await?;
        // The trap is set before `ready` is printed.
        manager.wait_for_line(execution.id, "ready").await?;
        let request = manager.post(&format!("/executions/{}", execution.id)).json(&json!({"action": "cancel"}));
        let sent = wall_ns();
        let sent_at = Instant::now();
        expect(request.send().await?, 200).await?;
        cancels.answered.push(sent_at.elapsed().as_secs_f64() * 1000.0);
        let ended = manager.ended(execution.id, Duration::from_millis(10)).await?;
        cancels.unexpected += usize::from(ended.status != ExecutionStatus::Cancelled);
        let output = manager.events(execution.id, 0, 10).await?;
        let trapped = output
            .items
            .iter()
            .skip_while(|event| event.line != "ready")
            .nth(1)
            .with_context(|| format!("execution {}: no line from the trap", execution.id))?;
        cancels.reached.push(ns_to_ms(printed_ns(&trapped.line)? - sent));
    }
    Ok(cancels)
}

/// Exit → `activated` samples of one manager.
#[derive(Default)]
pub struct Activations {
    /// The program's last `date` → the manager's `activated_at`.
    pub recorded: Vec<f64>,
    /// The same → a client of /maintenance/events has the `activated` event.
    pub seen: Vec<f64>,
    /// A 4 KiB write + fdatasync in the data dir, once after each round.
    pub fsync: Vec<f64>,
    /// Rounds where `activated_at` equalled the execution's `ended_at`.
    pub equal: usize,
    /// Rounds where the program had ended before the activate came.
    pub skipped: usize,
}

/// A client of `GET /maintenance/events`: each `status` event with the wall
/// clock when its bytes arrived.
struct Subscriber {
    seen: mpsc::UnboundedReceiver<(MaintenanceState, i128)>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Subscriber {
    fn connect(manager: &ManagerProcess) -> Self {
        let (sender, seen) = mpsc::unbounded_channel();
        // A stream stays open for the whole section, beyond the client's request timeout.
        let request = manager.get("/maintenance/events").timeout(Duration::from_secs(3600));
        let task = tokio::spawn(async move {
            let response = request.send().await?;
            ensure!(response.status() == 200, "/maintenance/events: {}", response.status());
            let mut body = response.bytes_stream();
            let mut buffer = shared::sse::SseBuffer::default();
            while let Some(chunk) = body.next().await {
                let at = wall_ns();
                buffer.push(&chunk?);
                while let Some(event) = buffer.next_event() {
                    if event.name == "status" {
                        let status: MaintenanceStatus = serde_json::from_str(&event.data)?;
                        if sender.send((status.status, at)).is_err() {
                            return Ok(());
                        }
                    }
                }
            }
            Ok(())
        });
        Self { seen, task }
    }

    /// When the stream next reported `wanted` (other states are skipped).
    async fn next(&mut self, wanted: MaintenanceState) -> anyhow::Result<i128> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let next = tokio::time::timeout_at(deadline, self.seen.recv()).await.context("a status event")?;
            let (state, at) = next.context("the event stream ended")?;
            if state == wanted {
                return Ok(at);
            }
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A program's exit → `activated`, in the manager's record and at a
/// streaming client; rounds alternate between `managers` so that machine
/// noise falls on each alike.
pub async fn exit_to_activated(managers: &[&ManagerProcess]) -> anyhow::Result<Vec<Activations>> {
    let mut subscribers = Vec::new();
    let mut probes = Vec::new();
    for manager in managers {
        let mut subscriber = Subscriber::connect(manager);
        // The stream's first event is the current status.
        subscriber.next(MaintenanceState::Deactivated).await?;
        subscribers.push(subscriber);
        probes.push(File::create(manager.data_dir().join("bench-fsync-probe"))?);
    }
    let mut results: Vec<Activations> = managers.iter().map(|_| Activations::default()).collect();
    for _ in 0..ACTIVATIONS {
        for (((manager, subscriber), probe), into) in
            managers.iter().zip(&mut subscribers).zip(&mut probes).zip(&mut results)
        {
            activation_round(manager, subscriber, into).await?;
            let started = Instant::now();
            probe.write_all(&[0; 4096])?;
            probe.sync_data()?;
            into.fsync.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    for result in &results {
        ensure!(!result.seen.is_empty(), "every activation found its execution already ended");
    }
    Ok(results)
}

async fn activation_round(
    manager: &ManagerProcess,
    subscriber: &mut Subscriber,
    into: &mut Activations,
) -> anyhow::Result<()> {
    let (execution, _) = manager.create("last-line").await?;
    let activating = manager.maintenance("activate").await?;
    if activating.status != MaintenanceState::Activating {
        into.skipped += 1;
        manager.maintenance("deactivate").await?;
        subscriber.next(MaintenanceState::Deactivated).await?;
        return Ok(());
    }
    let seen = subscriber.next(MaintenanceState::Activated).await?;
    let status = manager.status().await?;
    // Executions cannot be read while activated: deactivate first.
    manager.maintenance("deactivate").await?;
    subscriber.next(MaintenanceState::Deactivated).await?;
    let ended = manager.ended(execution.id, Duration::from_millis(1)).await?;
    let output = manager.events(execution.id, 0, 10).await?;
    let exited = printed_ns(&output.items.last().context("no output")?.line)?;
    let activated_at = status.activated_at.context("activated without activated_at")?;
    into.equal += usize::from(ended.ended_at == Some(activated_at));
    into.recorded.push(ns_to_ms(timestamp_ns(&activated_at) - exited));
    into.seen.push(ns_to_ms(seen - exited));
    Ok(())
}
