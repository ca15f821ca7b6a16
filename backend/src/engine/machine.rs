//! The rules of SPEC §1 as pure functions: what the maintenance state and an
//! execution's status are now, plus what is asked → what to write, or a
//! refusal. No I/O, no clock, no locks: each store reads the facts inside the
//! transaction that serializes the decision (SQLite: the engine's lock;
//! PostgreSQL: the maintenance row's lock), asks these functions, and writes
//! their answer in that same transaction.

use shared::{
    ErrorCode, Execution, ExecutionAction, ExecutionStatus, HistoryEvent, MaintenanceMode, MaintenanceState,
    MaintenanceTransition, NewExecution, Timestamp,
};
use uuid::Uuid;

pub use crate::model::Change;
use crate::model::{DrainStage, MaintenanceRecord};

/// What an activation asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Activation {
    /// Who asks (an admin, or a window's author).
    pub by: String,
    /// Shown to everyone while maintenance is on.
    pub reason: String,
    /// Full or read-only.
    pub mode: MaintenanceMode,
    /// Seconds `activating` may last before the remaining executions are cancelled.
    pub drain_deadline_seconds: Option<u64>,
    /// The window whose start this is.
    pub window_id: Option<Uuid>,
}

impl Activation {
    /// A full activation by `by`, without reason or deadline.
    pub fn by(by: impl Into<String>) -> Self {
        Self { by: by.into(), ..Self::default() }
    }
}

/// `at` plus `seconds` (saturating: validation keeps both far from the end of time).
pub fn after(at: Timestamp, seconds: u64) -> Timestamp {
    let delta = chrono::TimeDelta::try_milliseconds(i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX))
        .unwrap_or(chrono::TimeDelta::MAX);
    Timestamp::from_datetime(
        at.as_datetime().checked_add_signed(delta).unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
    )
}

/// `at` minus `seconds`.
pub fn before(at: Timestamp, seconds: u64) -> Timestamp {
    let delta = chrono::TimeDelta::try_milliseconds(i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX))
        .unwrap_or(chrono::TimeDelta::MAX);
    Timestamp::from_datetime(
        at.as_datetime().checked_sub_signed(delta).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
    )
}

/// What a new execution becomes, given the state at the instant of its
/// creation: `started`, `queued` (asked to wait out maintenance), or refused
/// with the code of the state. An admin's bypass starts it in any state.
pub fn admit(
    state: MaintenanceState,
    mode: MaintenanceMode,
    bypass: bool,
    queue: bool,
) -> Result<ExecutionStatus, ErrorCode> {
    match (state, bypass, queue) {
        (MaintenanceState::Deactivated, _, _) | (_, true, _) => Ok(ExecutionStatus::Started),
        (_, false, true) => Ok(ExecutionStatus::Queued),
        (MaintenanceState::Activating, false, false) => Err(ErrorCode::EnteringMaintenanceMode),
        (MaintenanceState::Activated, false, false) => Err(match mode {
            MaintenanceMode::Full => ErrorCode::MaintenanceModeActive,
            MaintenanceMode::ReadOnly => ErrorCode::MaintenanceModeReadOnly,
        }),
    }
}

/// The execution `new` becomes when admitted as `status` at `now` (a new id;
/// started at once unless queued).
pub fn new_execution(new: NewExecution, created_by: String, status: ExecutionStatus, now: Timestamp) -> Execution {
    Execution {
        id: Uuid::new_v4(),
        parameters: new.parameters_map(),
        workflow_id: new.workflow_id,
        deployment_id: new.deployment_id,
        status,
        created_at: now,
        started_at: (status == ExecutionStatus::Started).then_some(now),
        ended_at: None,
        created_by,
        error: String::new(),
        replica: String::new(),
    }
}

/// `deactivated → activating` (and on to `activated` when no execution
/// remains), requested by `by` at `now`; `None` when already activating or
/// activated.
pub fn activate(
    record: &MaintenanceRecord,
    remaining: usize,
    activation: &Activation,
    now: Timestamp,
) -> Option<Change> {
    if record.status != MaintenanceState::Deactivated {
        return None;
    }
    let activating = MaintenanceRecord {
        status: MaintenanceState::Activating,
        requested_by: activation.by.clone(),
        activation_requested_at: Some(now),
        activated_at: None,
        reason: activation.reason.clone(),
        mode: activation.mode,
        drain_deadline_at: activation.drain_deadline_seconds.map(|seconds| after(now, seconds)),
        drain_stage: DrainStage::Waiting,
        drain_force_at: None,
        window_id: activation.window_id,
        upcoming_id: record.upcoming_id,
    };
    let mut row = transition(&activating, MaintenanceState::Deactivated, now, &activation.by);
    row.window_id = activation.window_id;
    row.detail = [
        (activation.mode == MaintenanceMode::ReadOnly).then(|| "read-only".to_owned()),
        activation.drain_deadline_seconds.map(|seconds| format!("drain deadline {seconds} s")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    let mut change = Change::step(activating, row);
    if let Some(completed) = complete(&change.record, remaining, now) {
        change.then(completed);
    }
    Some(change)
}

/// `activating → activated` at `now`, when no execution remains; `None`
/// otherwise (not activating, or executions still running).
pub fn complete(record: &MaintenanceRecord, remaining: usize, now: Timestamp) -> Option<Change> {
    if record.status != MaintenanceState::Activating || remaining > 0 {
        return None;
    }
    let activated =
        MaintenanceRecord { status: MaintenanceState::Activated, activated_at: Some(now), ..record.clone() };
    let mut row = transition(&activated, MaintenanceState::Activating, now, &record.requested_by);
    row.window_id = record.window_id;
    Some(Change::step(activated, row))
}

/// Back to `deactivated`, requested by `by` at `now`; `None` when already
/// deactivated. The row of a deactivated manager keeps no requester, reason,
/// mode or deadline; the history row keeps who turned it off. The active
/// window, if any, is left to the caller ([`super::schedule::deactivate`] ends it).
pub fn deactivate(record: &MaintenanceRecord, by: &str, now: Timestamp) -> Option<Change> {
    if record.status == MaintenanceState::Deactivated {
        return None;
    }
    let deactivated = MaintenanceRecord { upcoming_id: record.upcoming_id, ..MaintenanceRecord::default() };
    let mut row = transition(&deactivated, record.status, now, by);
    row.window_id = record.window_id;
    Some(Change::step(deactivated, row))
}

/// What a cancel or force-cancel does to an execution in `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// It is running: it becomes `status` (a force-cancel is never softened
    /// by a later cancel) and its program is asked to stop as `action` says.
    Running {
        /// The status to store (unchanged if it already is this).
        status: ExecutionStatus,
    },
    /// It was queued or pending and never started: it ends `cancelled` now.
    Queued,
}

/// Decides a cancel or force-cancel of an execution in `status`; an ended
/// execution has nothing to cancel (the error names its end state).
pub fn cancel(status: ExecutionStatus, action: ExecutionAction) -> Result<Cancel, ExecutionStatus> {
    if status.is_end() {
        return Err(status);
    }
    if matches!(status, ExecutionStatus::Queued | ExecutionStatus::Pending) {
        return Ok(Cancel::Queued);
    }
    let status = match (status, action) {
        (ExecutionStatus::ForceCancelling, _) | (_, ExecutionAction::ForceCancel) => ExecutionStatus::ForceCancelling,
        (_, ExecutionAction::Cancel) => ExecutionStatus::Cancelling,
    };
    Ok(Cancel::Running { status })
}

fn transition(to: &MaintenanceRecord, from: MaintenanceState, at: Timestamp, by: &str) -> MaintenanceTransition {
    MaintenanceTransition {
        at,
        from,
        to: to.status,
        requested_by: by.to_owned(),
        reason: to.reason.clone(),
        event: HistoryEvent::of_transition(to.status),
        window_id: None,
        detail: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-30T12:00:00.000Z".parse().unwrap()
    }

    fn by_ops(reason: &str) -> Activation {
        Activation { by: "ops".into(), reason: reason.into(), ..Activation::default() }
    }

    fn record(status: MaintenanceState) -> MaintenanceRecord {
        match status {
            MaintenanceState::Deactivated => MaintenanceRecord::default(),
            _ => MaintenanceRecord {
                status,
                requested_by: "admin".into(),
                activation_requested_at: Some(now()),
                activated_at: (status == MaintenanceState::Activated).then(now),
                reason: "upgrade".into(),
                ..MaintenanceRecord::default()
            },
        }
    }

    #[test]
    fn admission_follows_the_state_bypass_and_queue() {
        use ExecutionStatus::{Queued, Started};
        use MaintenanceState::{Activated, Activating, Deactivated};
        let table = [
            (Deactivated, false, false, Ok(Started)),
            (Deactivated, false, true, Ok(Started)),
            (Deactivated, true, false, Ok(Started)),
            (Activating, false, false, Err(ErrorCode::EnteringMaintenanceMode)),
            (Activating, false, true, Ok(Queued)),
            (Activating, true, false, Ok(Started)),
            (Activating, true, true, Ok(Started)),
            (Activated, false, false, Err(ErrorCode::MaintenanceModeActive)),
            (Activated, false, true, Ok(Queued)),
            (Activated, true, false, Ok(Started)),
            (Activated, true, true, Ok(Started)),
        ];
        for (state, bypass, queue, expected) in table {
            assert_eq!(
                admit(state, MaintenanceMode::Full, bypass, queue),
                expected,
                "{state} bypass={bypass} queue={queue}"
            );
        }
        let read_only = |state, bypass, queue| admit(state, MaintenanceMode::ReadOnly, bypass, queue);
        assert_eq!(read_only(Activated, false, false), Err(ErrorCode::MaintenanceModeReadOnly));
        assert_eq!(read_only(Activating, false, false), Err(ErrorCode::EnteringMaintenanceMode));
        assert_eq!(read_only(Activated, false, true), Ok(Queued));
        assert_eq!(read_only(Activated, true, false), Ok(Started));
    }

    #[test]
    fn activating_with_executions_left_waits_and_without_completes_at_once() {
        let waiting = activate(&MaintenanceRecord::default(), 2, &by_ops("upgrade"), now()).unwrap();
        assert_eq!(waiting.record.status, MaintenanceState::Activating);
        assert_eq!(waiting.record.requested_by, "ops");
        assert_eq!(waiting.record.activation_requested_at, Some(now()));
        assert_eq!(waiting.record.activated_at, None);
        assert_eq!(waiting.transitions.len(), 1);
        assert_eq!(
            (waiting.transitions[0].from, waiting.transitions[0].to),
            (MaintenanceState::Deactivated, MaintenanceState::Activating)
        );

        let at_once = activate(&MaintenanceRecord::default(), 0, &by_ops("upgrade"), now()).unwrap();
        assert_eq!(at_once.record.status, MaintenanceState::Activated);
        assert_eq!(at_once.record.activated_at, Some(now()));
        let steps: Vec<_> = at_once.transitions.iter().map(|t| (t.from, t.to, t.reason.as_str())).collect();
        assert_eq!(
            steps,
            [
                (MaintenanceState::Deactivated, MaintenanceState::Activating, "upgrade"),
                (MaintenanceState::Activating, MaintenanceState::Activated, "upgrade"),
            ]
        );
    }

    #[test]
    fn activate_and_deactivate_do_nothing_twice() {
        assert_eq!(activate(&record(MaintenanceState::Activating), 0, &by_ops(""), now()), None);
        assert_eq!(activate(&record(MaintenanceState::Activated), 0, &by_ops(""), now()), None);
        assert_eq!(deactivate(&MaintenanceRecord::default(), "ops", now()), None);
    }

    #[test]
    fn completion_needs_activating_and_nothing_left() {
        assert_eq!(complete(&record(MaintenanceState::Activating), 1, now()), None);
        assert_eq!(complete(&record(MaintenanceState::Deactivated), 0, now()), None);
        assert_eq!(complete(&record(MaintenanceState::Activated), 0, now()), None);
        let done = complete(&record(MaintenanceState::Activating), 0, now()).unwrap();
        assert_eq!(done.record, record(MaintenanceState::Activated));
        assert_eq!(done.transitions[0].requested_by, "admin", "the requester of the activation");
    }

    #[test]
    fn deactivate_clears_the_row_and_records_who() {
        for from in [MaintenanceState::Activating, MaintenanceState::Activated] {
            let change = deactivate(&record(from), "ops", now()).unwrap();
            assert_eq!(change.record, MaintenanceRecord::default());
            let step = &change.transitions[0];
            assert_eq!((step.from, step.to, step.requested_by.as_str()), (from, MaintenanceState::Deactivated, "ops"));
        }
    }

    #[test]
    fn cancels_by_status_and_action() {
        use ExecutionAction::{Cancel as Soft, ForceCancel as Force};
        use ExecutionStatus::*;
        let running = |status| Ok(Cancel::Running { status });
        let table = [
            (Pending, Soft, Ok(Cancel::Queued)),
            (Pending, Force, Ok(Cancel::Queued)),
            (Started, Soft, running(Cancelling)),
            (Started, Force, running(ForceCancelling)),
            (Cancelling, Soft, running(Cancelling)),
            (Cancelling, Force, running(ForceCancelling)),
            (ForceCancelling, Soft, running(ForceCancelling)),
            (ForceCancelling, Force, running(ForceCancelling)),
            (Queued, Soft, Ok(Cancel::Queued)),
            (Queued, Force, Ok(Cancel::Queued)),
            (Terminated, Soft, Err(Terminated)),
            (Failed, Force, Err(Failed)),
            (Cancelled, Soft, Err(Cancelled)),
        ];
        for (status, action, expected) in table {
            assert_eq!(cancel(status, action), expected, "{status} {action:?}");
        }
    }
}
