//! One execution's workflow program as a child process (SPEC §9): started in
//! a session and process group of its own, in a fresh working directory, with
//! a cleared environment; its output read line by line; cancelled through its
//! group; its end mapped to an execution status.
//!
//! [`spawn`] starts the program and a supervising task; the caller gets a
//! [`RunningProcess`] to wait for the [`ProcessEnd`] and any number of
//! [`ProcessControl`]s to cancel it from other tasks. No process of an
//! execution outlives it: when the program ends, for whatever reason, its
//! whole group is killed, so background processes it left behind go too.

mod group;
mod output;
#[cfg(test)]
mod tests;

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{getpid, getppid, set_parent_process_death_signal, setsid, Signal};
use serde_json::{Map, Value};
use shared::ExecutionStatus;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use group::{group_gone, kill_group_if_same, wait_group_gone, GroupError, ProcessIdentity};
pub use output::{OutputLine, Stream, MAX_LINE_BYTES};

/// How long a cancelled program may take to exit after SIGTERM before its
/// group gets SIGKILL (`--cancel-grace-seconds`, SPEC §9).
pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(30);

/// The only `PATH` a program gets: the manager's own may point anywhere.
pub const PROGRAM_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Everything needed to start one execution's program.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The execution; also names its working directory.
    pub execution_id: Uuid,
    /// The workflow, passed on as `WORKFLOW_ID`.
    pub workflow_id: String,
    /// The deployment, passed on as `DEPLOYMENT_ID`.
    pub deployment_id: String,
    /// The program, from [`crate::workflows::Catalog::find`].
    pub program: PathBuf,
    /// The execution's parameters: JSON on stdin and in `EXECUTION_PARAMETERS`.
    pub parameters: Map<String, Value>,
    /// The manager's data dir; the program runs in `<data_dir>/executions/<id>/`.
    pub data_dir: PathBuf,
    /// How long a cancel waits after SIGTERM before SIGKILL.
    pub cancel_grace: Duration,
}

/// How a program ended, as the execution records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessEnd {
    /// `terminated`, `failed` or `cancelled`.
    pub status: ExecutionStatus,
    /// Why it failed (`exited with status 3`); `""` unless `failed`.
    pub error: String,
}

/// Why a program could not be started. Nothing of it keeps running.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The working directory could not be made (it must not exist yet).
    #[error("cannot create the working directory {}: {source}", path.display())]
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The program could not be started (missing, not executable, bad interpreter, …).
    #[error("cannot start {}: {source}", program.display())]
    Start {
        /// The program.
        program: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The started program's identity could not be read; it was killed.
    #[error("cannot identify the started program: {0}")]
    Identity(#[from] GroupError),
}

/// A started program: wait for its end here, control it through [`Self::control`].
/// Dropping it does not stop the program; its supervising task runs on.
#[derive(Debug)]
pub struct RunningProcess {
    identity: ProcessIdentity,
    work_dir: PathBuf,
    control: ProcessControl,
    supervisor: JoinHandle<ProcessEnd>,
}

/// Cancels a running program from any task; cheap to clone.
#[derive(Debug, Clone)]
pub struct ProcessControl {
    requests: watch::Sender<Requests>,
}

/// What was asked of a program, and whether its end was already decided.
/// Shared by the controls and the supervisor in one watch channel, so a
/// request and the end exclude each other: a request either arrives first
/// (and decides the outcome) or finds the end decided (and is refused).
#[derive(Debug, Clone, Default)]
struct Requests {
    cancel: bool,
    /// A cancel whose force-cancel someone else sends at the grace (a drain
    /// deadline): the SIGKILL here waits [`HELD_KILL_SLACK`] longer, as a backstop.
    hold_kill: bool,
    force: bool,
    /// The manager is stopping: end as a cancel, record `failed` with this reason.
    shutdown: Option<String>,
    ended: bool,
}

impl Requests {
    /// SIGTERM now, SIGKILL after the grace.
    fn wants_term(&self) -> bool {
        self.cancel || self.shutdown.is_some()
    }
}

/// Starts `launch`'s program and the task that supervises it; its output
/// lines go to `output` (a bounded channel: a slow consumer slows the reading,
/// and with it the program once the pipe is full, but loses nothing). Every
/// line is sent before [`RunningProcess::wait`] returns.
///
/// Must be called from a tokio runtime's task, not from `spawn_blocking`: the
/// program's parent-death signal fires when the *thread* that started it ends,
/// and blocking-pool threads end when idle, while runtime workers live as long
/// as the runtime.
pub fn spawn(launch: Launch, output: mpsc::Sender<OutputLine>) -> Result<RunningProcess, SpawnError> {
    // The child changes directory before exec, so a relative program path would
    // be looked up in the working directory.
    let program = std::path::absolute(&launch.program)
        .map_err(|source| SpawnError::Start { program: launch.program.clone(), source })?;
    let work_dir = make_work_dir(&launch.data_dir, launch.execution_id)?;
    let parameters = Value::Object(launch.parameters).to_string();

    let mut command = Command::new(&program);
    command
        .current_dir(&work_dir)
        .env_clear()
        .env("PATH", PROGRAM_PATH)
        .env("HOME", &work_dir)
        .env("LANG", "C.UTF-8")
        .env("EXECUTION_ID", launch.execution_id.to_string())
        .env("WORKFLOW_ID", &launch.workflow_id)
        .env("DEPLOYMENT_ID", &launch.deployment_id)
        .env("EXECUTION_PARAMETERS", &parameters)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let manager = getpid();
    // SAFETY: the closure runs in the forked child before exec and only makes
    // raw system calls (no allocation, no locks), which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            // A session and group of its own: one signal reaches everything it starts,
            // and a terminal's or the manager's group signals do not reach it.
            setsid()?;
            // If the manager dies, the program dies with it (SPEC: nothing outlives the manager).
            set_parent_process_death_signal(Some(Signal::KILL))?;
            // The manager may have died before the line above: then no signal will come.
            if getppid() != Some(manager) {
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(source) => {
            // Nothing ran in it; do not leave an empty directory per failed start.
            let _ = std::fs::remove_dir(&work_dir);
            return Err(SpawnError::Start { program, source });
        }
    };
    // The child is not reaped until the supervisor waits for it, so its pid and
    // `/proc` entry are still its own here even if it has already exited; `id()`
    // is `None` only after that reaping.
    let pid = child.id().and_then(|pid| i32::try_from(pid).ok()).unwrap_or(0);
    let identity = match ProcessIdentity::of_leader(pid) {
        Ok(identity) => identity,
        Err(error) => {
            let _ = group::signal_group(pid, Signal::KILL);
            // Reaped by tokio's orphan queue once dropped.
            let _ = child.start_kill();
            return Err(error.into());
        }
    };

    let (requests, _) = watch::channel(Requests::default());
    let control = ProcessControl { requests };
    let supervisor = tokio::spawn(supervise(
        child,
        identity.pgid,
        parameters,
        control.requests.clone(),
        launch.cancel_grace,
        output,
    ));
    Ok(RunningProcess { identity, work_dir, control, supervisor })
}

impl RunningProcess {
    /// The program's group and start time, to record for recovery after a crash
    /// ([`kill_group_if_same`]).
    pub fn identity(&self) -> ProcessIdentity {
        self.identity
    }

    /// The program's working directory, `<data_dir>/executions/<id>/`.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// A control for cancelling the program from another task.
    pub fn control(&self) -> ProcessControl {
        self.control.clone()
    }

    /// Waits for the program's end, after which no process of its group runs
    /// and every output line has been sent.
    pub async fn wait(self) -> ProcessEnd {
        match self.supervisor.await {
            Ok(end) => end,
            // The supervisor panicked or its runtime is stopping; its guard has
            // killed the group on the way out.
            Err(error) => {
                tracing::error!(pgid = self.identity.pgid, %error, "lost the supervisor of a workflow program");
                ProcessEnd { status: ExecutionStatus::Failed, error: "the manager lost track of the program".into() }
            }
        }
    }
}

impl ProcessControl {
    /// Cancel: SIGTERM to the program's group, SIGKILL after the grace; the end
    /// will be `cancelled`. False if the end was already decided (the cancel came too late).
    pub fn cancel(&self) -> bool {
        self.request(|requests| requests.cancel = true)
    }

    /// Cancel whose force-cancel comes from the caller at the grace (a drain
    /// deadline, which records it): SIGTERM now, and SIGKILL only
    /// [`HELD_KILL_SLACK`] after the grace if the caller's never came.
    pub fn terminate(&self) -> bool {
        self.request(|requests| {
            requests.cancel = true;
            requests.hold_kill = true;
        })
    }

    /// Force-cancel: SIGKILL to the group at once; the end will be `cancelled`.
    /// False if the end was already decided.
    pub fn force_cancel(&self) -> bool {
        self.request(|requests| requests.force = true)
    }

    /// The manager is stopping: end the program as a cancel, but record it
    /// `failed` with `reason` (the first reason given wins). False if the end
    /// was already decided.
    pub fn shutdown(&self, reason: impl Into<String>) -> bool {
        let reason = reason.into();
        self.request(move |requests| {
            requests.shutdown.get_or_insert(reason);
        })
    }

    /// The replica lost its lease: SIGKILL to the group at once (no grace: a
    /// survivor may take the execution over at the lease's expiry); the end
    /// will be `failed` with `reason`. False if the end was already decided.
    pub fn kill(&self, reason: impl Into<String>) -> bool {
        let reason = reason.into();
        self.request(move |requests| {
            requests.shutdown.get_or_insert(reason);
            requests.force = true;
        })
    }

    fn request(&self, change: impl FnOnce(&mut Requests)) -> bool {
        self.requests.send_if_modified(|requests| {
            if requests.ended {
                return false;
            }
            change(requests);
            true
        })
    }
}

/// Makes `<data_dir>/executions/<id>/`, private to the manager's user. It must
/// be new: an execution id runs once, so an existing directory is not ours to reuse.
/// Absolute, because it is also the program's `HOME` (the data dir may be given
/// relative, as the default `./data` is).
fn make_work_dir(data_dir: &Path, execution_id: Uuid) -> Result<PathBuf, SpawnError> {
    let executions = data_dir.join("executions");
    let path = executions.join(execution_id.to_string());
    let path = std::path::absolute(&path).map_err(|source| SpawnError::WorkDir { path: path.clone(), source })?;
    let made = DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&executions)
        .and_then(|()| DirBuilder::new().mode(0o700).create(&path));
    match made {
        Ok(()) => Ok(path),
        Err(source) => Err(SpawnError::WorkDir { path, source }),
    }
}

/// Kills the group when dropped unless disarmed: if the supervising task is
/// dropped (a panic, the runtime stopping) the program must not run on unwatched.
struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    /// The group was killed on purpose; after that its id is not ours any more.
    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            let _ = group::signal_group(pgid, Signal::KILL);
        }
    }
}

/// Runs the program to its end: feeds stdin, reads both outputs, carries out
/// requests, then kills what is left of the group and maps the end.
async fn supervise(
    mut child: Child,
    pgid: i32,
    parameters: String,
    requests: watch::Sender<Requests>,
    grace: Duration,
    output: mpsc::Sender<OutputLine>,
) -> ProcessEnd {
    let mut guard = GroupGuard { pgid: Some(pgid) };
    let exited = CancellationToken::new();
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    let run = async {
        let exit = watch_child(&mut child, pgid, &requests, grace).await;
        // Decide the end and close the door to new requests in one step.
        let mut asked = Requests::default();
        requests.send_modify(|requests| {
            requests.ended = true;
            asked = requests.clone();
        });
        // Whatever the program left running in its group goes with it. Its pid
        // (= the group id) was just reaped, but the number cannot be reused while
        // a process of the group remains, so this reaches only what is ours.
        if let Err(error) = group::signal_group(pgid, Signal::KILL) {
            tracing::warn!(pgid, %error, "cannot kill what a workflow program left behind");
        }
        exited.cancel();
        (exit, asked)
    };
    let stdout = async {
        if let Some(pipe) = stdout {
            output::read_lines(pipe, Stream::Stdout, &output, &exited).await;
        }
    };
    let stderr = async {
        if let Some(pipe) = stderr {
            output::read_lines(pipe, Stream::Stderr, &output, &exited).await;
        }
    };
    let ((exit, asked), (), (), ()) = tokio::join!(run, stdout, stderr, feed_stdin(stdin, parameters, &exited));
    guard.disarm();
    end_of(&exit, &asked)
}

/// How much longer than the grace a held kill ([`ProcessControl::terminate`]) waits.
pub const HELD_KILL_SLACK: Duration = Duration::from_secs(5);

/// Waits for the program to exit while carrying out cancel requests:
/// SIGTERM to the group, SIGKILL after `grace`; force-cancel: SIGKILL at once.
async fn watch_child(
    child: &mut Child,
    pgid: i32,
    requests: &watch::Sender<Requests>,
    grace: Duration,
) -> io::Result<ExitStatus> {
    let mut changes = requests.subscribe();
    let mut term_sent = false;
    let mut kill_sent = false;
    let mut kill_at: Option<Instant> = None;
    let send = |signal: Signal| {
        if let Err(error) = group::signal_group(pgid, signal) {
            tracing::warn!(pgid, %error, ?signal, "cannot signal a workflow program");
        }
    };
    loop {
        // Requests made before `subscribe` are in the current value, so look before waiting.
        let asked = changes.borrow_and_update().clone();
        if asked.force && !kill_sent {
            send(Signal::KILL);
            kill_sent = true;
        } else if asked.wants_term() && !term_sent && !kill_sent {
            send(Signal::TERM);
            term_sent = true;
            let slack = if asked.hold_kill { HELD_KILL_SLACK } else { Duration::ZERO };
            kill_at = Some(Instant::now() + grace + slack);
        }
        let kill_due = async {
            match kill_at {
                Some(at) if !kill_sent => tokio::time::sleep_until(at).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            exit = child.wait() => return exit,
            // Cannot fail: `requests` (a sender) outlives this loop.
            _ = changes.changed() => {}
            () = kill_due => {
                send(Signal::KILL);
                kill_sent = true;
            }
        }
    }
}

/// Writes the parameters and a newline to the program's stdin, then closes it.
/// A program that does not read them is fine: the write is given up when the
/// program ends (and a closed pipe is not an error).
async fn feed_stdin(stdin: Option<ChildStdin>, parameters: String, exited: &CancellationToken) {
    let Some(mut stdin) = stdin else { return };
    let write = async {
        stdin.write_all(parameters.as_bytes()).await?;
        stdin.write_all(b"\n").await?;
        stdin.shutdown().await
    };
    tokio::select! {
        written = write => {
            if let Err(error) = written {
                if error.kind() != io::ErrorKind::BrokenPipe {
                    tracing::debug!(%error, "cannot write a workflow program's parameters to its stdin");
                }
            }
        }
        () = exited.cancelled() => {}
    }
}

/// SPEC §9's mapping of a program's end to an execution's, pure so it is tested
/// on its own: any end after a request to stop is that request's outcome, even a
/// clean exit 0 from a trap; otherwise the exit status decides.
fn end_of(exit: &io::Result<ExitStatus>, asked: &Requests) -> ProcessEnd {
    let failed = |error: String| ProcessEnd { status: ExecutionStatus::Failed, error };
    if let Some(reason) = &asked.shutdown {
        return failed(reason.clone());
    }
    if asked.cancel || asked.force {
        return ProcessEnd { status: ExecutionStatus::Cancelled, error: String::new() };
    }
    match exit {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(0), _) => ProcessEnd { status: ExecutionStatus::Terminated, error: String::new() },
            (Some(code), _) => failed(format!("exited with status {code}")),
            (None, Some(signal)) => failed(match group::signal_name(signal) {
                Some(name) => format!("killed by signal {signal} ({name})"),
                None => format!("killed by signal {signal}"),
            }),
            (None, None) => failed(format!("ended with {status}")),
        },
        Err(error) => failed(format!("cannot wait for the program: {error}")),
    }
}
