//! The outbox (SPEC §11): the maintenance history is it. Each history row is
//! written in the transaction of its change together with what its webhook
//! event reports, so there is no event without its change and no change
//! without its event; deliveries read the rows after their URL's cursor.

use shared::{ExecutionStatus, HistoryEvent, MaintenanceStatus, RemainingExecution, Timestamp, WebhookEvent, Window};
use uuid::Uuid;

use super::Change;

/// What a history row's event reports, as stored beside it (JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The status object right after the event.
    pub status: String,
    /// The event's window as the change left it, if it has one.
    pub window: Option<String>,
}

/// The reports of `change`'s history rows, in order. `remaining` is what
/// the store holds as remaining executions in the change's transaction (the
/// drain's cancels are applied here, whether or not they are written yet);
/// `live` the windows scheduled or active before the change.
pub fn reports(change: &Change, remaining: &[RemainingExecution], live: &[Window]) -> Vec<Report> {
    let remaining: Vec<RemainingExecution> = remaining
        .iter()
        .map(|execution| {
            let status = if change.force_cancel.contains(&execution.id) {
                ExecutionStatus::ForceCancelling
            } else if change.cancel.contains(&execution.id) && execution.status != ExecutionStatus::ForceCancelling {
                ExecutionStatus::Cancelling
            } else {
                execution.status
            };
            RemainingExecution { status, ..execution.clone() }
        })
        .collect();
    // The change's own writes win; the last write of a window is how it became.
    let window = |id: Uuid| -> Option<&Window> {
        change.windows.iter().rev().find(|window| window.id == id).or_else(|| live.iter().find(|w| w.id == id))
    };
    change
        .transitions
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let record = change.after.get(index).unwrap_or(&change.record);
            let status = record.status(&remaining, record.upcoming_id.and_then(window).cloned());
            Report {
                status: serde_json::to_string(&status).unwrap_or_default(),
                window: row.window_id.and_then(window).and_then(|window| serde_json::to_string(window).ok()),
            }
        })
        .collect()
}

/// A stored event whose body cannot be made (its row is damaged).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CorruptEvent(pub String);

/// A history row as its webhook event: its number, event and time, and the
/// reports stored beside it (`None` for rows written before webhooks existed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The row's number: the event's id.
    pub seq: u64,
    /// What happened.
    pub event: HistoryEvent,
    /// When (the change's commit).
    pub at: Timestamp,
    /// The stored status, if any.
    pub status: Option<String>,
    /// The stored window, if any.
    pub window: Option<String>,
}

impl StoredEvent {
    /// The body to POST: the JSON of SPEC §11, the same bytes on every attempt.
    pub fn body(&self) -> Result<Vec<u8>, CorruptEvent> {
        let corrupt = CorruptEvent;
        let status: MaintenanceStatus = match &self.status {
            Some(text) => serde_json::from_str(text).map_err(|e| corrupt(format!("status_after: {e}")))?,
            None => return Err(corrupt(format!("row {} has no status_after", self.seq))),
        };
        let window: Option<Window> = match &self.window {
            Some(text) => Some(serde_json::from_str(text).map_err(|e| corrupt(format!("window_after: {e}")))?),
            None => None,
        };
        let event = WebhookEvent { id: self.seq, event: self.event, at: self.at, status, window };
        serde_json::to_vec(&event).map_err(|e| corrupt(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use shared::MaintenanceState;

    use super::*;
    use crate::engine::machine::{self, Activation};
    use crate::model::MaintenanceRecord;

    fn now() -> Timestamp {
        "2026-11-30T12:00:00.000Z".parse().unwrap()
    }

    fn status(report: &Report) -> MaintenanceStatus {
        serde_json::from_str(&report.status).unwrap()
    }

    #[test]
    fn an_activation_with_nothing_remaining_reports_activating_then_activated() {
        let change = machine::activate(&MaintenanceRecord::default(), 0, &Activation::by("ops"), now()).unwrap();
        let reports = reports(&change, &[], &[]);
        let states: Vec<_> = reports.iter().map(|report| status(report).status).collect();
        assert_eq!(states, [MaintenanceState::Activating, MaintenanceState::Activated]);
        assert_eq!(status(&reports[0]).activated_at, None);
        assert_eq!(status(&reports[1]).activated_at, Some(now()));
        assert!(reports.iter().all(|report| report.window.is_none()));
    }

    #[test]
    fn remaining_executions_show_while_on_with_the_drain_s_cancels() {
        let id = Uuid::new_v4();
        let running = RemainingExecution {
            id,
            status: ExecutionStatus::Started,
            deployment_id: "d".into(),
            workflow_id: "install".into(),
        };
        let mut change = machine::activate(&MaintenanceRecord::default(), 1, &Activation::by("ops"), now()).unwrap();
        let listed = status(&reports(&change, std::slice::from_ref(&running), &[])[0]).remaining_executions;
        assert_eq!(listed, std::slice::from_ref(&running));
        change.cancel.push(id);
        let cancelling = status(&reports(&change, std::slice::from_ref(&running), &[])[0]).remaining_executions;
        assert_eq!(cancelling[0].status, ExecutionStatus::Cancelling);
        let off = machine::deactivate(&change.record, "ops", now()).unwrap();
        assert!(status(&reports(&off, &[running], &[])[0]).remaining_executions.is_empty());
    }

    #[test]
    fn a_body_is_the_same_bytes_every_time_and_reads_back() {
        let change = machine::activate(&MaintenanceRecord::default(), 0, &Activation::by("ops"), now()).unwrap();
        let report = reports(&change, &[], &[]).remove(1);
        let stored = StoredEvent {
            seq: 9,
            event: HistoryEvent::Activated,
            at: now(),
            status: Some(report.status),
            window: None,
        };
        let body = stored.body().unwrap();
        assert_eq!(body, stored.body().unwrap());
        let event: WebhookEvent = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (event.id, event.event, event.status.status),
            (9, HistoryEvent::Activated, MaintenanceState::Activated)
        );
        assert!(StoredEvent { status: None, ..stored }.body().is_err());
    }
}
