//! The scheduler (SPEC §10): sleeps until the next thing due (a window's
//! notice, start or end; a drain deadline's step), then asks the engine to do
//! what is due. It decides nothing itself: [`Engine::tick`] reads the facts
//! and decides in the store's transaction (on PostgreSQL under the decision
//! lock), so a start is written once however many replicas wake for it. It
//! wakes for nothing else than those times and changes of what it waits for:
//! no polling.

use std::sync::Arc;
use std::time::Duration;

use shared::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;

/// The longest sleep: the wall clock may be set meanwhile, so plan again at least this often.
const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// After a failed tick (the database unreachable), try again this soon.
const RETRY: Duration = Duration::from_secs(1);

/// Runs the scheduler of `engine` until `shutdown`.
pub fn spawn(engine: Arc<Engine>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        // Whether the last wake was the timer of a time due (not a change).
        let mut due = false;
        loop {
            let wait = match engine.tick(due).await {
                Ok(Some(due)) => until(due),
                Ok(None) => MAX_SLEEP,
                Err(error) => {
                    tracing::warn!(%error, "the scheduler could not do what is due; trying again shortly");
                    RETRY
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => due = wait < MAX_SLEEP,
                () = engine.schedule_changed() => due = false,
                () = shutdown.cancelled() => return,
            }
        }
    });
}

/// How long until `due` by the wall clock (zero if it passed), at most [`MAX_SLEEP`].
fn until(due: Timestamp) -> Duration {
    let wait = due.as_datetime().signed_duration_since(Timestamp::now().as_datetime());
    wait.to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_passed_is_due_now_and_a_far_one_is_planned_again_within_the_hour() {
        assert_eq!(
            until(Timestamp::from_datetime(Timestamp::now().as_datetime() - chrono::TimeDelta::seconds(5))),
            Duration::ZERO
        );
        let soon = until(Timestamp::from_datetime(Timestamp::now().as_datetime() + chrono::TimeDelta::seconds(5)));
        assert!(soon <= Duration::from_secs(5) && soon > Duration::from_secs(4), "{soon:?}");
        assert_eq!(
            until(Timestamp::from_datetime(Timestamp::now().as_datetime() + chrono::TimeDelta::days(3))),
            MAX_SLEEP
        );
    }
}
