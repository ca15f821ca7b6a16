//! The thread that owns a server's `postgres` process: it spawns it, stops it,
//! and is the process's parent for as long as the server exists.
//!
//! Linux sends a child its parent-death signal when the *thread* that spawned
//! it ends, not the process. A test's thread ends with the test, while a server
//! in a `static` ([`crate::shared`]) must live on; so every `postgres` is
//! spawned here, on a thread that ends only when its [`Postmaster`] is dropped
//! (never, for a `static`: then it ends with the process, and so does the server).

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

use crate::command::describe;
use crate::HarnessError;

type Job = Box<dyn FnOnce(&mut Option<Child>) + Send>;

/// How a server is stopped: fast shutdown (sessions ended, a checkpoint);
/// then immediate; then SIGKILL. Each waits this long for the exit.
const SHUTDOWN: [(Signal, Duration); 3] = [
    (Signal::INT, Duration::from_secs(60)),
    (Signal::QUIT, Duration::from_secs(10)),
    (Signal::KILL, Duration::from_secs(10)),
];

/// The handle of the thread that owns one server's `postgres` process.
#[derive(Debug)]
pub(crate) struct Postmaster {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Postmaster {
    /// Starts the thread; no server runs yet.
    pub(crate) fn new() -> Result<Postmaster, HarnessError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = thread::Builder::new()
            .name("pg-harness-postmaster".to_owned())
            .spawn(move || {
                let mut postgres = None;
                for job in queue {
                    job(&mut postgres);
                }
                // The handle was dropped: the server goes with it.
                if let Err(error) = stop(&mut postgres) {
                    eprintln!("pg-harness: a postgres did not stop: {error}");
                }
            })
            .map_err(HarnessError::io("starting the postmaster thread"))?;
        Ok(Postmaster { jobs: Some(jobs), thread: Some(thread) })
    }

    /// The running server's pid, after spawning it with `command` if none runs.
    pub(crate) fn start(&self, mut command: Command) -> Result<u32, HarnessError> {
        self.call(move |postgres| {
            if let Some(running) = postgres.as_mut() {
                if matches!(running.try_wait(), Ok(None)) {
                    return Ok(running.id());
                }
            }
            let child = command.spawn().map_err(HarnessError::io(format!("spawning {}", describe(&command))))?;
            let pid = child.id();
            *postgres = Some(child);
            Ok(pid)
        })?
    }

    /// How the server ended, if it has (it is then forgotten); `None` while it runs or if none was started.
    pub(crate) fn exit_status(&self) -> Result<Option<ExitStatus>, HarnessError> {
        self.call(|postgres| {
            let Some(child) = postgres.as_mut() else { return Ok(None) };
            let status =
                child.try_wait().map_err(HarnessError::io(format!("waiting for postgres (pid {})", child.id())))?;
            if status.is_some() {
                *postgres = None;
            }
            Ok(status)
        })?
    }

    /// The server's pid while it has not been stopped.
    pub(crate) fn pid(&self) -> Result<Option<u32>, HarnessError> {
        self.call(|postgres| postgres.as_ref().map(Child::id))
    }

    /// Stops the server and waits for its exit; nothing to do if none runs.
    pub(crate) fn stop(&self) -> Result<(), HarnessError> {
        self.call(|postgres| stop(postgres).map_err(HarnessError::io("stopping postgres")))?
    }

    /// Runs `job` on the thread, with the process it owns, and returns its result.
    fn call<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Option<Child>) -> R + Send + 'static,
    ) -> Result<R, HarnessError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let jobs = self.jobs.as_ref().ok_or(HarnessError::OwnerGone)?;
        jobs.send(Box::new(move |postgres| {
            let _ = reply.send(job(postgres));
        }))
        .map_err(|_| HarnessError::OwnerGone)?;
        // A job that panicked ended the thread (and with it the server) and dropped `reply`.
        answer.recv().map_err(|_| HarnessError::OwnerGone)
    }
}

impl Drop for Postmaster {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop; it stops the server on its way out.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Signals `postgres` ever harder until it has exited, and reaps it.
fn stop(postgres: &mut Option<Child>) -> io::Result<()> {
    let Some(child) = postgres.as_mut() else { return Ok(()) };
    for (signal, patience) in SHUTDOWN {
        if child.try_wait()?.is_some() {
            break;
        }
        match kill_process(Pid::from_child(child), signal) {
            // Exited between the two calls: reaped by the next try_wait.
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(error) => return Err(error.into()),
        }
        let deadline = Instant::now() + patience;
        while child.try_wait()?.is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
    }
    if child.try_wait()?.is_none() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, format!("pid {} survived SIGKILL", child.id())));
    }
    *postgres = None;
    Ok(())
}
