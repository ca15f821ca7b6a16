//! The runner (SPEC §9): each admitted execution runs its workflow program as
//! a child process ([`crate::process`]), supervised by one tokio task that
//! passes on what the engine asks (cancel, force-cancel, the manager's stop),
//! stores and announces the program's output in batches, and reports the end
//! to the engine, with the last batch, in one transaction.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use shared::execution::{dropped_marker, ExecutionEvent, OutputStream, MAX_KEPT_BYTES, MAX_KEPT_LINES};
use shared::{Execution, ExecutionStatus, Timestamp};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::output::{OutputBatch, OutputLog};
use crate::process::{self, Launch, OutputLine, ProcessControl, ProcessEnd, Stream};
use crate::workflows::Catalog;

/// The longest pause between attempts to record an execution's end.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);
/// The pause before trying again when the engine's queue was full.
const OVERLOADED_PAUSE: Duration = Duration::from_millis(20);
/// Output is stored at least this often while a program writes…
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// …and at once when this many lines wait.
const FLUSH_LINES: usize = 256;
/// Lines in flight between the program's pipes and this task.
const OUTPUT_CHANNEL: usize = 1024;

/// What the engine asks of a running execution; the latest request wins,
/// except that nothing softens a force-cancel (the engine sees to that).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Request {
    /// Keep running.
    #[default]
    Run,
    /// SIGTERM to its group, SIGKILL after the grace; ends `cancelled`.
    Cancel,
    /// SIGTERM to its group; the drain deadline force-cancels it at the grace
    /// (SIGKILL here only as a late backstop); ends `cancelled`.
    Terminate,
    /// SIGKILL to its group now; ends `cancelled`.
    ForceCancel,
    /// The manager is stopping: end it as a cancel, record it `failed` with this reason.
    Shutdown(String),
    /// This replica lost its lease: SIGKILL now, record it `failed` with this reason.
    Fence(String),
}

/// Why a report to the engine did not go through.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The store is busy: try again soon, without alarm.
    #[error("the store is busy")]
    Busy,
    /// The store cannot hold some of the text (the database's encoding):
    /// retrying it as it is would fail for ever.
    #[error("{0}")]
    Unstorable(String),
    /// Anything else: try again with backoff.
    #[error("{0}")]
    Failed(String),
}

/// A report's future.
pub type Reported<'a> = Pin<Box<dyn Future<Output = Result<(), ReportError>> + Send + 'a>>;

/// What the runner tells whoever started the executions (the engine): the
/// narrow interface the runner knows it by.
pub trait Reports: Send + Sync {
    /// Execution `id`'s program ended as `end`, with the last lines `tail`:
    /// recorded in one transaction.
    fn finished(&self, id: Uuid, end: ProcessEnd, tail: Arc<OutputBatch>) -> Reported<'_>;
    /// Execution `id`'s program runs as process group `identity` (for a start after a crash).
    fn started(&self, id: Uuid, identity: process::ProcessIdentity) -> Reported<'_>;
}

/// What every execution's run needs.
#[derive(Clone)]
pub struct RunnerConfig {
    /// Where the programs are.
    pub catalog: Catalog,
    /// The data dir; programs run in `executions/<id>/` under it.
    pub data_dir: PathBuf,
    /// Between SIGTERM and SIGKILL on a cancel.
    pub cancel_grace: Duration,
    /// Where output goes.
    pub output: OutputLog,
}

/// Starts execution tasks on the server's runtime. The tasks hold only a weak
/// reference to the engine, so a dropped engine (a stopped test app) ends them.
pub struct Runner {
    engine: Weak<dyn Reports>,
    runtime: Handle,
    config: RunnerConfig,
}

impl Runner {
    /// A runner that reports to `engine` and spawns on `runtime`.
    pub fn new(engine: Weak<dyn Reports>, runtime: Handle, config: RunnerConfig) -> Self {
        Self { engine, runtime, config }
    }

    /// Between SIGTERM and SIGKILL on a cancel (`--cancel-grace-seconds`).
    pub fn cancel_grace(&self) -> Duration {
        self.config.cancel_grace
    }

    /// Where output goes (the routes read it live).
    pub fn output(&self) -> &OutputLog {
        &self.config.output
    }

    /// Runs `execution`'s program until it ends, following `requests`, then
    /// tells the engine how it ended.
    pub fn start(&self, execution: &Execution, requests: watch::Receiver<Request>) {
        let run = Run {
            engine: self.engine.clone(),
            config: self.config.clone(),
            execution: execution.clone(),
            requests,
            kept: Kept::default(),
        };
        // A runtime task, never the blocking pool: see `process::spawn`.
        let supervisor = self.runtime.spawn(run.run());
        // Should the supervisor panic (a bug), the execution must still end,
        // or `activating` would wait for it forever; its program's group was
        // killed when the supervisor's guard dropped.
        let (engine, output, id) = (self.engine.clone(), self.config.output.clone(), execution.id);
        self.runtime.spawn(async move {
            if let Err(error) = supervisor.await {
                if error.is_panic() {
                    tracing::error!(%id, "the supervisor of an execution panicked; recording it failed");
                    let end = ProcessEnd {
                        status: ExecutionStatus::Failed,
                        error: "The manager's supervision of this execution failed (see the manager's log); its \
                                processes were stopped."
                            .into(),
                    };
                    let nothing = Arc::new(OutputBatch { execution_id: id, first: 0, events: Vec::new() });
                    record_end(&engine, &output, id, end, nothing).await;
                }
            }
        });
    }
}

/// One execution's supervision.
struct Run {
    engine: Weak<dyn Reports>,
    config: RunnerConfig,
    execution: Execution,
    requests: watch::Receiver<Request>,
    kept: Kept,
}

/// The output kept so far and what waits to be stored.
#[derive(Default)]
struct Kept {
    /// Lines stored or waiting; the next line's number.
    lines: u64,
    bytes: u64,
    dropped_lines: u64,
    dropped_bytes: u64,
    /// Numbered from `lines - pending.len()`.
    pending: Vec<ExecutionEvent>,
}

impl Kept {
    /// Keeps `line` within the caps, or counts it as dropped.
    fn take(&mut self, line: OutputLine) {
        let size = line.line.len() as u64;
        if self.lines < MAX_KEPT_LINES && self.bytes + size <= MAX_KEPT_BYTES {
            self.lines += 1;
            self.bytes += size;
            let stream = match line.stream {
                Stream::Stdout => OutputStream::Stdout,
                Stream::Stderr => OutputStream::Stderr,
            };
            self.pending.push(ExecutionEvent { at: line.at, stream, line: line.line });
        } else {
            self.dropped_lines += 1;
            self.dropped_bytes += size;
        }
    }

    /// The waiting lines, with the number of the first.
    fn batch(&mut self, execution_id: Uuid) -> OutputBatch {
        let events = std::mem::take(&mut self.pending);
        OutputBatch { execution_id, first: self.lines - events.len() as u64, events }
    }

    /// Puts a batch that could not be stored back in front of what came since.
    fn put_back(&mut self, batch: OutputBatch) {
        let mut events = batch.events;
        events.append(&mut self.pending);
        self.pending = events;
    }

    /// The last lines and, if output was dropped, the marker saying how much.
    fn tail(&mut self, execution_id: Uuid) -> OutputBatch {
        if self.dropped_lines > 0 {
            self.lines += 1;
            self.pending.push(ExecutionEvent {
                at: Timestamp::now(),
                stream: OutputStream::Manager,
                line: dropped_marker(self.dropped_lines, self.dropped_bytes),
            });
        }
        self.batch(execution_id)
    }
}

impl Run {
    async fn run(mut self) {
        let id = self.execution.id;
        let end = self.supervise().await;
        let tail = Arc::new(self.kept.tail(id));
        record_end(&self.engine, &self.config.output, id, end, tail).await;
    }

    /// Runs the program to its end, or says why it could not run.
    async fn supervise(&mut self) -> ProcessEnd {
        let failed = |error: String| ProcessEnd { status: ExecutionStatus::Failed, error };
        if *self.requests.borrow() != Request::Run {
            // Cancelled before it could start: nothing to stop.
            return ProcessEnd { status: ExecutionStatus::Cancelled, error: String::new() };
        }
        let workflow = &self.execution.workflow_id;
        let program = match self.config.catalog.find(workflow) {
            Ok(Some(program)) => program,
            Ok(None) => {
                return failed(format!(
                    "workflow `{workflow}` is not in the catalog ({}) any more",
                    self.config.catalog.dir().display()
                ))
            }
            Err(error) => return failed(format!("could not read the workflow catalog: {error}")),
        };
        let launch = Launch {
            execution_id: self.execution.id,
            workflow_id: workflow.clone(),
            deployment_id: self.execution.deployment_id.clone(),
            program,
            parameters: self.execution.parameters.clone(),
            data_dir: self.config.data_dir.clone(),
            cancel_grace: self.config.cancel_grace,
        };
        let (sender, mut lines) = mpsc::channel(OUTPUT_CHANNEL);
        let running = match process::spawn(launch, sender) {
            Ok(running) => running,
            Err(error) => return failed(format!("could not start workflow `{workflow}`: {error}")),
        };
        self.record_process(running.identity()).await;
        let control = running.control();
        pass_on(&self.requests.borrow_and_update(), &control);
        let wait = running.wait();
        tokio::pin!(wait);
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        // A runner that waited for the database must not make up for missed
        // ticks with a burst of tiny batches (each a commit).
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut lines_open, mut requests_open) = (true, true);
        let end = loop {
            tokio::select! {
                end = &mut wait => break end,
                line = lines.recv(), if lines_open => match line {
                    Some(line) => {
                        self.kept.take(line);
                        if self.kept.pending.len() >= FLUSH_LINES {
                            self.flush().await;
                        }
                    }
                    // Both pipes are closed; the program may still run.
                    None => lines_open = false,
                },
                changed = self.requests.changed(), if requests_open => match changed {
                    Ok(()) => pass_on(&self.requests.borrow_and_update(), &control),
                    // The engine is gone; the program runs to its end.
                    Err(_) => requests_open = false,
                },
                _ = flush.tick() => self.flush().await,
            }
        };
        // Every line was sent before the end was: take the rest.
        while let Ok(line) = lines.try_recv() {
            self.kept.take(line);
        }
        end
    }

    /// Stores and announces the waiting lines; on failure keeps them for the next try.
    async fn flush(&mut self) {
        if self.kept.pending.is_empty() {
            return;
        }
        let batch = self.kept.batch(self.execution.id);
        if let Err(error) = self.config.output.append(batch.clone()).await {
            tracing::warn!(id = %self.execution.id, %error, "could not store output; keeping it for the next try");
            self.kept.put_back(batch);
        }
    }

    async fn record_process(&self, identity: process::ProcessIdentity) {
        let Some(engine) = self.engine.upgrade() else { return };
        if let Err(error) = engine.started(self.execution.id, identity).await {
            // Without it a crash could leave this program running: say so loudly.
            tracing::error!(id = %self.execution.id, %error, pgid = identity.pgid,
                "could not record an execution's process group; a crash would not find it");
        }
    }
}

/// Records the end with the last batch of output, then announces the batch;
/// retries until it commits (or `activating` would wait forever). Text the
/// database cannot hold is not retried as it is: the last lines are then
/// stored on their own (a marker in place of each line refused) and the end
/// recorded without them; an error text is then made ASCII.
async fn record_end(
    engine: &Weak<dyn Reports>,
    output: &OutputLog,
    id: Uuid,
    mut end: ProcessEnd,
    mut tail: Arc<OutputBatch>,
) {
    let mut pause = Duration::from_millis(50);
    loop {
        let Some(engine) = engine.upgrade() else { return };
        match engine.finished(id, end.clone(), Arc::clone(&tail)).await {
            Ok(()) => {
                if !tail.events.is_empty() {
                    output.announce(tail);
                }
                return;
            }
            Err(ReportError::Unstorable(detail)) if !tail.events.is_empty() => {
                tracing::warn!(%id, %detail, "the last output lines could not be stored with the end; storing them alone");
                let rest =
                    OutputBatch { execution_id: id, first: tail.first + tail.events.len() as u64, events: Vec::new() };
                match output.append(OutputBatch::clone(&tail)).await {
                    Ok(()) => {
                        tail = Arc::new(rest);
                        continue;
                    }
                    Err(error) => {
                        tracing::error!(%id, %error, "could not store the last output lines; retrying in {pause:?}")
                    }
                }
            }
            Err(ReportError::Unstorable(detail)) if !end.error.is_ascii() => {
                tracing::warn!(%id, %detail, "the error of an execution could not be stored; storing it as ASCII");
                end.error = end.error.chars().map(|c| if c.is_ascii() { c } else { '?' }).collect();
                continue;
            }
            // A full queue empties by itself: retry soon, without alarm.
            Err(ReportError::Busy) => {
                tracing::debug!(%id, "the engine is busy; recording the end of an execution shortly");
                drop(engine);
                tokio::time::sleep(OVERLOADED_PAUSE).await;
                continue;
            }
            Err(error) => {
                tracing::error!(%id, %error, "could not record the end of an execution; retrying in {pause:?}");
            }
        }
        drop(engine);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY_PAUSE);
    }
}

/// Passes the engine's request on to the program.
fn pass_on(request: &Request, control: &ProcessControl) {
    match request {
        Request::Run => {}
        Request::Cancel => {
            control.cancel();
        }
        Request::Terminate => {
            control.terminate();
        }
        Request::ForceCancel => {
            control.force_cancel();
        }
        Request::Shutdown(reason) => {
            control.shutdown(reason.clone());
        }
        Request::Fence(reason) => {
            control.kill(reason.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> OutputLine {
        OutputLine { at: Timestamp::now(), stream: Stream::Stdout, line: text.into() }
    }

    #[test]
    fn output_beyond_the_line_cap_is_counted_and_marked() {
        let mut kept = Kept::default();
        for n in 0..MAX_KEPT_LINES + 5 {
            kept.take(line(&format!("{n}")));
        }
        let id = Uuid::new_v4();
        let first = kept.batch(id);
        assert_eq!((first.first, first.events.len() as u64), (0, MAX_KEPT_LINES));
        let tail = kept.tail(id);
        assert_eq!(tail.first, MAX_KEPT_LINES);
        assert_eq!(tail.events.len(), 1);
        assert_eq!(tail.events[0].stream, OutputStream::Manager);
        assert!(tail.events[0].line.starts_with("output truncated: 5 more lines (25 bytes) were dropped"));
    }

    #[test]
    fn output_beyond_the_byte_cap_is_dropped_and_a_failed_store_is_retried_in_order() {
        let mut kept = Kept::default();
        let big = "x".repeat(1024 * 1024);
        for _ in 0..5 {
            kept.take(line(&big));
        }
        assert_eq!(kept.pending.len(), 4, "4 MiB kept");
        let id = Uuid::new_v4();
        let batch = kept.batch(id);
        kept.take(line(""));
        kept.put_back(batch);
        let again = kept.batch(id);
        assert_eq!((again.first, again.events.len()), (0, 5));
        assert_eq!(kept.tail(id).events[0].line, dropped_marker(1, 1024 * 1024));
    }
}
