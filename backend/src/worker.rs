//! A dedicated OS thread that runs synchronous jobs (SQLite) one at a time
//! for async callers.
//!
//! Each SQLite connection is used by one caller at a time anyway, so giving it
//! a thread of its own costs no parallelism. It replaces `spawn_blocking` +
//! a mutex, under which concurrent requests queued up on the mutex inside
//! dozens of blocking-pool threads; glibc gives each such thread an arena of
//! its own and keeps what they free, and the soak's RSS kept climbing for as
//! long as it ran (BENCHMARKS.md, "What changed").
//!
//! The queue is bounded: a job submitted while it is full is refused at once
//! ([`WorkerError::Overloaded`], answered 503 `overloaded`), so a flood of
//! requests costs a bounded amount of memory instead of a growing backlog.

use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The job did not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The queue was full: the job was refused and never ran.
    #[error("the {0} thread has {1} jobs queued already")]
    Overloaded(&'static str, usize),
    /// It panicked (logged), or the thread has stopped.
    #[error("the {0} thread's job panicked or the thread has stopped")]
    Failed(&'static str),
}

/// Runs jobs in submission order on its own thread; clones queue to the same
/// thread, which ends when every clone is dropped and the queued jobs are done.
#[derive(Clone)]
pub struct Worker {
    name: &'static str,
    capacity: usize,
    jobs: mpsc::SyncSender<Job>,
}

impl Worker {
    /// Starts the thread; at most `capacity` jobs wait for it (at least one).
    pub fn spawn(name: &'static str, capacity: usize) -> std::io::Result<Self> {
        let capacity = capacity.max(1);
        let (jobs, queue) = mpsc::sync_channel::<Job>(capacity);
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            for job in queue {
                // A panicking job drops its reply sender, which its caller
                // sees as an error; the thread serves the next job.
                if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(job)) {
                    tracing::error!(thread = name, "a job panicked: {}", panic_message(&*panic));
                }
            }
        })?;
        Ok(Self { name, capacity, jobs })
    }

    /// Queues `job` at once and returns its result when it has run. The job
    /// runs to the end even if the caller stops waiting (a dropped request),
    /// so a change it commits is never half done. A full queue refuses it
    /// ([`WorkerError::Overloaded`]): it never runs.
    pub fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> impl Future<Output = Result<R, WorkerError>> + Send + 'static {
        let (reply, result) = oneshot::channel();
        let queued = self.jobs.try_send(Box::new(move || {
            // The caller may have stopped waiting; the job is done either way.
            let _ = reply.send(job());
        }));
        let (name, capacity) = (self.name, self.capacity);
        async move {
            queued.map_err(|refused| match refused {
                mpsc::TrySendError::Full(_) => WorkerError::Overloaded(name, capacity),
                mpsc::TrySendError::Disconnected(_) => WorkerError::Failed(name),
            })?;
            result.await.map_err(|_| WorkerError::Failed(name))
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
        let worker = Worker::spawn("test-worker", 16).unwrap();
        let first = worker.run(|| std::thread::current().name().map(str::to_owned)).await.unwrap();
        assert_eq!(first.as_deref(), Some("test-worker"));

        let panicked = worker.run(|| -> u32 { panic!("job failed") }).await;
        assert!(panicked.is_err());

        // Still serving, in order.
        let (a, b) = tokio::join!(worker.run(|| 1), worker.run(|| 2));
        assert_eq!((a.unwrap(), b.unwrap()), (1, 2));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_jobs_at_once_and_runs_every_accepted_one() {
        let worker = Worker::spawn("test-worker", 4).unwrap();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let busy = worker.run(move || {
            started.send(()).unwrap();
            blocked.recv().is_ok()
        });
        running.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        // The thread is busy and the queue empty: four jobs fit, the fifth is refused.
        let accepted: Vec<_> = (0..4).map(|n| worker.run(move || n)).collect();
        let refused = worker.run(|| 99);
        assert!(matches!(refused.await, Err(WorkerError::Overloaded("test-worker", 4))));
        release.send(()).unwrap();
        assert!(busy.await.unwrap());
        for (n, job) in accepted.into_iter().enumerate() {
            assert_eq!(job.await.unwrap(), n, "every accepted job ran, in order");
        }
    }

    #[tokio::test]
    async fn a_job_runs_even_if_its_caller_never_waits() {
        let worker = Worker::spawn("test-worker", 16).unwrap();
        let (done, ran) = std::sync::mpsc::channel();
        drop(worker.run(move || done.send(()).unwrap()));
        ran.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    }
}
