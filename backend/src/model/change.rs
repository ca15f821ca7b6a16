//! What one decision changes in the maintenance row, its history and windows.

use shared::{MaintenanceState, MaintenanceTransition, Window};
use uuid::Uuid;

use super::MaintenanceRecord;

/// A change of the maintenance row: the row as it becomes, and the history
/// rows that lead to it, in order (activating with nothing remaining is two:
/// `deactivated → activating → activated`, at the same instant); with the
/// windows it writes and the executions a drain deadline stops.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Change {
    /// The row after the change.
    pub record: MaintenanceRecord,
    /// The rows to append to the history, oldest first.
    pub transitions: Vec<MaintenanceTransition>,
    /// The row as it was right after each of `transitions` (what its webhook
    /// event reports; same length).
    pub after: Vec<MaintenanceRecord>,
    /// Windows to insert or update.
    pub windows: Vec<Window>,
    /// Remaining executions the drain deadline cancels (SIGTERM; the deadline's own force-cancel follows).
    pub cancel: Vec<Uuid>,
    /// Remaining executions the drain deadline force-cancels.
    pub force_cancel: Vec<Uuid>,
}

impl Change {
    /// Whether this change turns maintenance mode off (the queued executions start).
    pub fn deactivates(&self, before: &MaintenanceRecord) -> bool {
        before.status != MaintenanceState::Deactivated && self.record.status == MaintenanceState::Deactivated
    }

    /// The change to `record` that `row` leads to.
    pub fn step(record: MaintenanceRecord, row: MaintenanceTransition) -> Self {
        Self { after: vec![record.clone()], transitions: vec![row], record, ..Self::default() }
    }

    /// Appends a history row, the row being as it is now.
    pub fn push(&mut self, row: MaintenanceTransition) {
        self.transitions.push(row);
        self.after.push(self.record.clone());
    }

    /// Appends `next`, a change made on top of this one.
    pub fn then(&mut self, next: Change) {
        self.record = next.record;
        self.transitions.extend(next.transitions);
        self.after.extend(next.after);
        self.windows.extend(next.windows);
        self.cancel.extend(next.cancel);
        self.force_cancel.extend(next.force_cancel);
    }
}
