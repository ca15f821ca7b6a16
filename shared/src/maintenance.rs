//! The maintenance-mode state machine's public face (SPEC §1–2).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::execution::ExecutionStatus;
use crate::time::{empty_if_none, Timestamp};
use crate::window::Window;

/// The longest drain deadline accepted, in seconds (a week).
pub const MAX_DRAIN_DEADLINE_SECONDS: u64 = 7 * 24 * 3600;

/// Where the manager is in the maintenance-mode cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MaintenanceState {
    /// Normal operation: nothing is gated.
    #[default]
    Deactivated,
    /// New executions are refused; waiting for the remaining ones to end.
    Activating,
    /// Most requests are refused until an admin deactivates.
    Activated,
}

impl MaintenanceState {
    /// The wire name (`"activating"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deactivated => "deactivated",
            Self::Activating => "activating",
            Self::Activated => "activated",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Deactivated, Self::Activating, Self::Activated].into_iter().find(|state| state.as_str() == text)
    }
}

impl fmt::Display for MaintenanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much maintenance mode closes (SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceMode {
    /// Most requests are refused (SPEC §3).
    #[default]
    Full,
    /// Reads (GET, HEAD) pass everywhere; other methods are refused.
    ReadOnly,
}

impl MaintenanceMode {
    /// The wire name (`"read_only"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::ReadOnly => "read_only",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Full, Self::ReadOnly].into_iter().find(|mode| mode.as_str() == text)
    }
}

impl fmt::Display for MaintenanceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serde for the status object's `mode`: `""` while deactivated.
pub mod mode_or_empty {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::MaintenanceMode;

    /// Writes `None` as `""`.
    pub fn serialize<S: Serializer>(value: &Option<MaintenanceMode>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.map(MaintenanceMode::as_str).unwrap_or_default())
    }

    /// Reads `""` (or `null`) as `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MaintenanceMode>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) if text.is_empty() => Ok(None),
            Some(text) => MaintenanceMode::parse(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown mode {text:?}"))),
        }
    }
}

/// Reads an optional number of seconds that JSON may write as `60` or `60.0`
/// (both are the integer 60 to JSON Schema); a fraction, a negative number or
/// anything else is an error.
pub fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Whole(u64),
        Float(f64),
    }
    match Option::<Number>::deserialize(d)? {
        None => Ok(None),
        Some(Number::Whole(seconds)) => Ok(Some(seconds)),
        Some(Number::Float(seconds)) if seconds.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&seconds) => {
            Ok(Some(seconds as u64))
        }
        Some(Number::Float(seconds)) => {
            Err(serde::de::Error::custom(format!("{seconds} is not a whole, non-negative number of seconds")))
        }
    }
}

/// An execution that keeps the manager in `activating`, as the status lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemainingExecution {
    /// The execution's id.
    pub id: Uuid,
    /// Its current status (never an end state).
    pub status: ExecutionStatus,
    /// The deployment it runs on.
    pub deployment_id: String,
    /// The workflow it runs.
    pub workflow_id: String,
}

impl RemainingExecution {
    /// How the status lists `execution`.
    pub fn of(execution: &crate::Execution) -> Self {
        Self {
            id: execution.id,
            status: execution.status,
            deployment_id: execution.deployment_id.clone(),
            workflow_id: execution.workflow_id.clone(),
        }
    }
}

/// The status object of `GET /maintenance`. Field order is the contract's:
/// the CLI prints the fields in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaintenanceStatus {
    /// The current state.
    pub status: MaintenanceState,
    /// The admin who requested activation; `""` when deactivated.
    #[serde(default)]
    pub requested_by: String,
    /// When `activated` was reached; `""` until then.
    #[serde(with = "empty_if_none", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub activated_at: Option<Timestamp>,
    /// When activation was requested; `""` when deactivated.
    #[serde(with = "empty_if_none", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub activation_requested_at: Option<Timestamp>,
    /// Executions not yet in an end state, oldest first.
    #[serde(default)]
    pub remaining_executions: Vec<RemainingExecution>,
    /// The reason the admin gave on activation; `""` if none.
    #[serde(default)]
    pub reason: String,
    /// `full` or `read_only`; `""` when deactivated (SPEC §10).
    #[serde(with = "mode_or_empty", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub mode: Option<MaintenanceMode>,
    /// When the drain deadline falls: remaining executions are then cancelled,
    /// and force-cancelled after the cancel grace; `""` if none.
    #[serde(with = "empty_if_none", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub drain_deadline_at: Option<Timestamp>,
    /// The window in its notice period, or the active one; `null` otherwise.
    #[serde(default)]
    pub upcoming: Option<Window>,
}

/// Body of `POST /maintenance/activate`; the body itself is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// Shown to everyone while maintenance is on (banner, 503 bodies' readers).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub reason: Option<String>,
    /// Seconds `activating` may last before the remaining executions are
    /// cancelled (then force-cancelled after the cancel grace); none: no deadline.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "whole_seconds")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 604800))]
    pub drain_deadline_seconds: Option<u64>,
    /// `full` (the default) or `read_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MaintenanceMode>,
}

/// What a history row records (SPEC §10): a transition of the state, a step
/// of a drain deadline, or something that happened to a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HistoryEvent {
    /// `deactivated → activating` (an admin, or a window's start).
    Activate,
    /// `activating → activated`: nothing remained.
    Activated,
    /// Back to `deactivated` (an admin, or a window's end).
    Deactivated,
    /// The drain deadline passed: the remaining executions were cancelled.
    DrainCancel,
    /// The cancel grace after the deadline passed: the ones still alive were force-cancelled.
    DrainForceCancel,
    /// A window was scheduled.
    WindowScheduled,
    /// A window's end was moved.
    WindowExtended,
    /// A scheduled window was cancelled.
    WindowCancelled,
    /// A window's start came: maintenance mode is its.
    WindowStarted,
    /// A window's end came, or it was ended early.
    WindowEnded,
    /// The manager was down for a whole window: it never started.
    WindowMissed,
}

impl HistoryEvent {
    /// Every event, in declaration order.
    pub const ALL: [Self; 11] = [
        Self::Activate,
        Self::Activated,
        Self::Deactivated,
        Self::DrainCancel,
        Self::DrainForceCancel,
        Self::WindowScheduled,
        Self::WindowExtended,
        Self::WindowCancelled,
        Self::WindowStarted,
        Self::WindowEnded,
        Self::WindowMissed,
    ];

    /// The wire name (`"drain_cancel"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activate => "activate",
            Self::Activated => "activated",
            Self::Deactivated => "deactivated",
            Self::DrainCancel => "drain_cancel",
            Self::DrainForceCancel => "drain_force_cancel",
            Self::WindowScheduled => "window_scheduled",
            Self::WindowExtended => "window_extended",
            Self::WindowCancelled => "window_cancelled",
            Self::WindowStarted => "window_started",
            Self::WindowEnded => "window_ended",
            Self::WindowMissed => "window_missed",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == text)
    }

    /// The event of a plain state transition into `to`.
    pub fn of_transition(to: MaintenanceState) -> Self {
        match to {
            MaintenanceState::Activating => Self::Activate,
            MaintenanceState::Activated => Self::Activated,
            MaintenanceState::Deactivated => Self::Deactivated,
        }
    }
}

impl fmt::Display for HistoryEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the maintenance audit, as `GET /maintenance/history` lists it:
/// a state change, a drain escalation or a window's event (`from == to` for
/// the last two unless they changed the state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaintenanceTransition {
    /// When it happened.
    pub at: Timestamp,
    /// The state before.
    pub from: MaintenanceState,
    /// The state after.
    pub to: MaintenanceState,
    /// The admin whose request caused it (for `activating → activated`, the one who activated;
    /// for a window's start and end, the window's author).
    pub requested_by: String,
    /// The reason given on activation (or the window's); `""` if none.
    pub reason: String,
    /// What happened.
    pub event: HistoryEvent,
    /// The window it belongs to, if any.
    #[serde(default)]
    pub window_id: Option<Uuid>,
    /// Details in words (which executions a drain step cancelled, a window's new end…); `""` if none.
    #[serde(default)]
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_serializes_fields_in_contract_order_with_empty_unset_fields() {
        let status = MaintenanceStatus {
            status: MaintenanceState::Activating,
            requested_by: "admin".into(),
            activated_at: None,
            activation_requested_at: Some("2017-04-04T05:16:21.407Z".parse().unwrap()),
            remaining_executions: vec![],
            reason: String::new(),
            ..MaintenanceStatus::default()
        };
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(
            json,
            r#"{"status":"activating","requested_by":"admin","activated_at":"","activation_requested_at":"2017-04-04T05:16:21.407Z","remaining_executions":[],"reason":"","mode":"","drain_deadline_at":"","upcoming":null}"#
        );
        assert_eq!(serde_json::from_str::<MaintenanceStatus>(&json).unwrap(), status);
    }

    #[test]
    fn status_round_trips_with_remaining_executions() {
        let status = MaintenanceStatus {
            status: MaintenanceState::Activated,
            requested_by: "admin".into(),
            activated_at: Some("2017-04-04T05:16:21.407Z".parse().unwrap()),
            activation_requested_at: Some("2017-04-04T05:16:21.407Z".parse().unwrap()),
            remaining_executions: vec![RemainingExecution {
                id: Uuid::new_v4(),
                status: ExecutionStatus::Started,
                deployment_id: "dep".into(),
                workflow_id: "install".into(),
            }],
            reason: "upgrade to 7.1".into(),
            mode: Some(MaintenanceMode::ReadOnly),
            drain_deadline_at: Some("2017-04-04T05:26:21.407Z".parse().unwrap()),
            upcoming: None,
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["remaining_executions"][0]["status"], "started");
        assert_eq!(json["mode"], "read_only");
        assert_eq!(serde_json::from_value::<MaintenanceStatus>(json).unwrap(), status);
    }

    #[test]
    fn state_names_are_the_wire_names() {
        for state in [MaintenanceState::Deactivated, MaintenanceState::Activating, MaintenanceState::Activated] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
            assert_eq!(MaintenanceState::parse(state.as_str()), Some(state));
        }
        assert_eq!(MaintenanceState::parse("on"), None);
    }

    #[test]
    fn activate_body_reason_is_optional_and_strict() {
        assert_eq!(serde_json::from_str::<ActivateRequest>("{}").unwrap(), ActivateRequest::default());
        let with = serde_json::from_str::<ActivateRequest>(r#"{"reason":"upgrade"}"#).unwrap();
        assert_eq!(with.reason.as_deref(), Some("upgrade"));
        assert!(serde_json::from_str::<ActivateRequest>(r#"{"reson":"typo"}"#).is_err());
        let full =
            serde_json::from_str::<ActivateRequest>(r#"{"reason":"r","drain_deadline_seconds":60,"mode":"read_only"}"#)
                .unwrap();
        assert_eq!((full.drain_deadline_seconds, full.mode), (Some(60), Some(MaintenanceMode::ReadOnly)));
        assert!(serde_json::from_str::<ActivateRequest>(r#"{"mode":"readonly"}"#).is_err());
        let whole = serde_json::from_str::<ActivateRequest>(r#"{"drain_deadline_seconds":60.0}"#).unwrap();
        assert_eq!(whole.drain_deadline_seconds, Some(60));
        for bad in ["60.5", "-1", "\"60\"", "1e30"] {
            let body = format!(r#"{{"drain_deadline_seconds":{bad}}}"#);
            assert!(serde_json::from_str::<ActivateRequest>(&body).is_err(), "{bad}");
        }
    }

    #[test]
    fn history_event_names_are_the_wire_names() {
        for event in HistoryEvent::ALL {
            assert_eq!(serde_json::to_string(&event).unwrap(), format!("\"{event}\""));
            assert_eq!(HistoryEvent::parse(event.as_str()), Some(event));
        }
    }
}
