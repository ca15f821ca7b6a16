//! The maintenance row as the rules read and write it.

use shared::{MaintenanceMode, MaintenanceState, MaintenanceStatus, RemainingExecution, Timestamp};
use uuid::Uuid;

/// The persisted part of the maintenance status (everything but the
/// remaining executions, which are derived from the executions table).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaintenanceRecord {
    /// The state.
    pub status: MaintenanceState,
    /// Who requested activation.
    pub requested_by: String,
    /// When activation was requested.
    pub activation_requested_at: Option<Timestamp>,
    /// When `activated` was reached.
    pub activated_at: Option<Timestamp>,
    /// The reason given on activation.
    pub reason: String,
    /// How much is closed (SPEC §10); `Full` while deactivated.
    pub mode: MaintenanceMode,
    /// When `activating` gives up waiting for the remaining executions.
    pub drain_deadline_at: Option<Timestamp>,
    /// How far the drain deadline went.
    pub drain_stage: DrainStage,
    /// When the executions the deadline cancelled are force-cancelled (stage `Cancelled`).
    pub drain_force_at: Option<Timestamp>,
    /// The active window: its end deactivates.
    pub window_id: Option<Uuid>,
    /// The window the status object announces (`upcoming`): in its notice period, or active.
    pub upcoming_id: Option<Uuid>,
}

/// How far a drain deadline went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DrainStage {
    /// The deadline is to come (or there is none).
    #[default]
    Waiting,
    /// The deadline passed: the remaining executions were cancelled.
    Cancelled,
    /// The cancel grace passed too: those still alive were force-cancelled.
    ForceCancelled,
}

impl DrainStage {
    /// The stored number.
    pub fn code(self) -> i64 {
        match self {
            Self::Waiting => 0,
            Self::Cancelled => 1,
            Self::ForceCancelled => 2,
        }
    }

    /// Reads the stored number.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Waiting),
            1 => Some(Self::Cancelled),
            2 => Some(Self::ForceCancelled),
            _ => None,
        }
    }
}

/// The stored text of the columns of SPEC §10 (see [`MaintenanceRecord::extra_values`]).
pub type ExtraValues = (&'static str, Option<String>, i64, Option<String>, Option<String>, Option<String>);

impl MaintenanceRecord {
    /// The status object of this row, as the API shows it: the `remaining`
    /// executions and the `upcoming` window only while maintenance is on
    /// (the window in any state).
    pub fn status(&self, remaining: &[RemainingExecution], upcoming: Option<shared::Window>) -> MaintenanceStatus {
        let on = self.status != MaintenanceState::Deactivated;
        MaintenanceStatus {
            status: self.status,
            requested_by: self.requested_by.clone(),
            activated_at: self.activated_at,
            activation_requested_at: self.activation_requested_at,
            remaining_executions: if on { remaining.to_vec() } else { Vec::new() },
            reason: self.reason.clone(),
            mode: on.then_some(self.mode),
            drain_deadline_at: self.drain_deadline_at,
            upcoming,
        }
    }

    /// The columns after `status, requested_by, activation_requested_at,
    /// activated_at, reason` as stored text: mode, drain_deadline_at,
    /// drain_stage, drain_force_at, window_id, upcoming_id.
    pub fn extra_values(&self) -> ExtraValues {
        (
            self.mode.as_str(),
            self.drain_deadline_at.map(|at| at.to_string()),
            self.drain_stage.code(),
            self.drain_force_at.map(|at| at.to_string()),
            self.window_id.map(|id| id.to_string()),
            self.upcoming_id.map(|id| id.to_string()),
        )
    }
}
