//! A dedicated OS thread that runs synchronous jobs (SQLite) one at a time
//! for async callers.
//!
//! Each SQLite connection is used by one caller at a time anyway, so giving it
//! a thread of its own costs no parallelism. It replaces `spawn_blocking` +
//! a mutex, under which concurrent requests queued up on the mutex inside
//! dozens of blocking-pool threads; glibc gives each such thread an arena of
//! its own and keeps what they free, and the soak's RSS kept climbing for as
//! long as it ran (BENCHMARKS.md, "What changed").

use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The job could not run to completion: it panicked, or the thread is gone.
#[derive(Debug, thiserror::Error)]
#[error("the {0} thread's job panicked or the thread has stopped")]
pub struct WorkerError(&'static str);

/// Runs jobs in submission order on its own thread; clones queue to the same
/// thread, which ends when every clone is dropped and the queued jobs are done.
#[derive(Clone)]
pub struct Worker {
    name: &'static str,
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts the thread.
    pub fn spawn(name: &'static str) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            for job in queue {
                // A panicking job drops its reply sender, which its caller
                // sees as an error; the thread serves the next job.
                if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(job)) {
                    tracing::error!(thread = name, "a job panicked: {}", panic_message(&*panic));
                }
            }
        })?;
        Ok(Self { name, jobs })
    }

    /// Queues `job` at once and returns its result when it has run. The job
    /// runs to the end even if the caller stops waiting (a dropped request),
    /// so a change it commits is never half done.
    pub fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> impl Future<Output = Result<R, WorkerError>> + Send + 'static {
        let (reply, result) = oneshot::channel();
        let queued = self.jobs.send(Box::new(move || {
            // The caller may have stopped waiting; the job is done either way.
            let _ = reply.send(job());
        }));
        let name = self.name;
        async move {
            queued.map_err(|_| WorkerError(name))?;
            result.await.map_err(|_| WorkerError(name))
        }
    }
}

/// The text a panic was raised with, if it was text.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not text)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_in_order_and_survives_a_panic() {
        let worker = Worker::spawn("test-worker").unwrap();
        let first = worker.run(|| std::thread::current().name().map(str::to_owned)).await.unwrap();
        assert_eq!(first.as_deref(), Some("test-worker"));

        let panicked = worker.run(|| -> u32 { panic!("job failed") }).await;
        assert!(panicked.is_err());

        // Still serving, in order.
        let (a, b) = tokio::join!(worker.run(|| 1), worker.run(|| 2));
        assert_eq!((a.unwrap(), b.unwrap()), (1, 2));
    }

    #[tokio::test]
    async fn a_job_runs_even_if_its_caller_never_waits() {
        let worker = Worker::spawn("test-worker").unwrap();
        let (done, ran) = std::sync::mpsc::channel();
        drop(worker.run(move || done.send(()).unwrap()));
        ran.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    }
}
