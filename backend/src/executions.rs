//! The execution runner: each admitted execution is a tokio task that "works"
//! for its `duration_seconds` and then reports its end to the engine.

use std::sync::Weak;
use std::time::Duration;

use shared::execution::DEFAULT_DURATION_SECONDS;
use shared::{Execution, ExecutionStatus};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::maintenance::{Engine, EngineError};
use crate::worker::WorkerError;

/// The longest pause between attempts to record an execution's end.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);
/// The pause before trying again when the engine's queue was full.
const OVERLOADED_PAUSE: Duration = Duration::from_millis(20);

/// Starts execution tasks on the server's runtime. The tasks hold only a weak
/// reference to the engine, so a dropped engine (a stopped test app) ends them.
pub struct Runner {
    engine: Weak<Engine>,
    runtime: Handle,
}

impl Runner {
    /// A runner that reports to `engine` and spawns on `runtime`.
    pub fn new(engine: Weak<Engine>, runtime: Handle) -> Self {
        Self { engine, runtime }
    }

    /// Runs `execution` until its duration has passed or `cancel` fires, then
    /// tells the engine how it ended.
    pub fn start(&self, execution: &Execution, cancel: CancellationToken) {
        let id = execution.id;
        let work = duration_of(execution);
        let engine = self.engine.clone();
        self.runtime.spawn(async move {
            let outcome = tokio::select! {
                () = tokio::time::sleep(work) => ExecutionStatus::Terminated,
                () = cancel.cancelled() => ExecutionStatus::Cancelled,
            };
            // The end must be recorded, or `activating` would wait forever for
            // an execution that no longer runs: retry (e.g. SQLITE_BUSY) until it commits.
            let mut pause = Duration::from_millis(50);
            loop {
                let Some(engine) = engine.upgrade() else { return };
                match engine.finish(id, outcome).await {
                    Ok(()) => return,
                    // A full queue empties by itself: retry soon, without alarm.
                    Err(EngineError::Task(WorkerError::Overloaded(..))) => {
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
        });
    }
}

/// The run time stored in the execution's parameters (validated on creation).
fn duration_of(execution: &Execution) -> Duration {
    let seconds = execution
        .parameters
        .get("duration_seconds")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(DEFAULT_DURATION_SECONDS);
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::execution;

    fn with_parameters(parameters: serde_json::Value) -> Execution {
        execution(ExecutionStatus::Started, parameters)
    }

    #[test]
    fn duration_comes_from_the_parameters_or_the_default() {
        let given = with_parameters(serde_json::json!({"duration_seconds": 0.25}));
        assert_eq!(duration_of(&given), Duration::from_millis(250));
        let missing = with_parameters(serde_json::json!({}));
        assert_eq!(duration_of(&missing), Duration::from_secs(5));
        let negative = with_parameters(serde_json::json!({"duration_seconds": -3}));
        assert_eq!(duration_of(&negative), Duration::ZERO);
    }
}
