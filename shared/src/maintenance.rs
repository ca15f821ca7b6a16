//! The maintenance-mode state machine's public face (SPEC §1–2).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::execution::ExecutionStatus;
use crate::time::{empty_if_none, Timestamp};

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
}

/// One state change of maintenance mode, as `GET /maintenance/history` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaintenanceTransition {
    /// When it happened.
    pub at: Timestamp,
    /// The state before.
    pub from: MaintenanceState,
    /// The state after.
    pub to: MaintenanceState,
    /// The admin whose request caused it (for `activating → activated`, the one who activated).
    pub requested_by: String,
    /// The reason given on activation; `""` if none.
    pub reason: String,
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
        };
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(
            json,
            r#"{"status":"activating","requested_by":"admin","activated_at":"","activation_requested_at":"2017-04-04T05:16:21.407Z","remaining_executions":[],"reason":""}"#
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
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["remaining_executions"][0]["status"], "started");
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
    }
}
