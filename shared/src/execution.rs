//! Workflow executions as the API shows them (SPEC §2).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::time::{empty_if_none, Timestamp};

mod create;
mod output;
pub use create::CreateExecution;
pub use output::{dropped_marker, ExecutionEvent, OutputStream, MAX_KEPT_BYTES, MAX_KEPT_LINES, UNSTORABLE_MARKER};

/// The longest workflow or deployment id accepted.
pub const MAX_ID_LEN: usize = 256;

/// The life cycle of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Admitted, not yet running.
    Pending,
    /// Running.
    Started,
    /// A cancel was requested; ends `cancelled`.
    Cancelling,
    /// A force-cancel was requested; ends `cancelled`.
    ForceCancelling,
    /// Ended normally.
    Terminated,
    /// Ended with an error (see `error`).
    Failed,
    /// Ended by a cancel.
    Cancelled,
    /// Stored during maintenance; starts when maintenance is deactivated.
    Queued,
}

impl ExecutionStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [Self; 8] = [
        Self::Pending,
        Self::Started,
        Self::Cancelling,
        Self::ForceCancelling,
        Self::Terminated,
        Self::Failed,
        Self::Cancelled,
        Self::Queued,
    ];

    /// The wire name (`"force_cancelling"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Started => "started",
            Self::Cancelling => "cancelling",
            Self::ForceCancelling => "force_cancelling",
            Self::Terminated => "terminated",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Queued => "queued",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// `terminated`, `failed` and `cancelled`: the execution will not change again.
    pub fn is_end(self) -> bool {
        matches!(self, Self::Terminated | Self::Failed | Self::Cancelled)
    }

    /// The statuses [`Self::is_remaining`] holds of.
    pub const REMAINING: [Self; 4] = [Self::Pending, Self::Started, Self::Cancelling, Self::ForceCancelling];

    /// Not ended and not queued: keeps maintenance mode in `activating`.
    pub fn is_remaining(self) -> bool {
        !self.is_end() && self != Self::Queued
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One workflow execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Execution {
    /// Its id.
    pub id: Uuid,
    /// The workflow it runs (`install`, `uninstall`, …).
    pub workflow_id: String,
    /// The deployment it runs on.
    pub deployment_id: String,
    /// Where it is in its life cycle.
    pub status: ExecutionStatus,
    /// The parameters it was started with (`duration_seconds` and any others).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: Map<String, Value>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it started running; `""` until then.
    #[serde(with = "empty_if_none", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub started_at: Option<Timestamp>,
    /// When it reached an end state; `""` until then.
    #[serde(with = "empty_if_none", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ended_at: Option<Timestamp>,
    /// The user who created it.
    pub created_by: String,
    /// Why it failed; `""` otherwise.
    #[serde(default)]
    pub error: String,
    /// The replica that runs (or ran) it (SPEC §12; `local` on one process); `""` until one claims it.
    #[serde(default)]
    pub replica: String,
}

/// Parameters of a new execution: the workflow's, kept and passed on as given
/// (the manager reads none of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutionParameters {
    /// How long the example workflows take (they read it; default 5): our
    /// clients' shorthand, sent as a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub duration_seconds: Option<f64>,
    /// Any other workflow parameters, stored and shown as given.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub other: Map<String, Value>,
}

/// Body of `POST /executions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewExecution {
    /// The workflow to run.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256, pattern = r"\S"))]
    pub workflow_id: String,
    /// The deployment to run it on.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256, pattern = r"\S"))]
    pub deployment_id: String,
    /// Workflow parameters.
    #[serde(default)]
    pub parameters: ExecutionParameters,
    /// During maintenance, store the execution as `queued` instead of refusing it.
    #[serde(default)]
    pub queue: bool,
}

impl NewExecution {
    /// Checks what serde cannot: ids present and short. The error names the
    /// field. Parameters are the workflow's to check.
    pub fn validate(&self) -> Result<(), String> {
        for (field, value) in [("workflow_id", &self.workflow_id), ("deployment_id", &self.deployment_id)] {
            if value.trim().is_empty() {
                return Err(format!("{field}: must not be empty"));
            }
            if value.len() > MAX_ID_LEN {
                return Err(format!("{field}: longer than {MAX_ID_LEN} bytes"));
            }
        }
        Ok(())
    }

    /// The parameters as stored on the execution and given to its program.
    pub fn parameters_map(&self) -> Map<String, Value> {
        let mut map = self.parameters.other.clone();
        if let Some(seconds) = self.parameters.duration_seconds {
            map.insert("duration_seconds".into(), Value::from(seconds));
        }
        map
    }
}

/// What `POST /executions/{id}` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ExecutionAction {
    /// Stop the execution; it ends `cancelled`.
    #[serde(rename = "cancel")]
    Cancel,
    /// Stop it at once, whatever it is doing; it ends `cancelled`. Cloudify's
    /// `kill` (stop the workflow and everything it started) is the same here.
    #[serde(rename = "force-cancel", alias = "kill")]
    ForceCancel,
}

/// Body of `POST /executions/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExecutionActionRequest {
    /// `cancel` or `force-cancel`.
    pub action: ExecutionAction,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_names_round_trip() {
        for status in ExecutionStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{status}\""));
            assert_eq!(ExecutionStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ExecutionStatus::ForceCancelling.as_str(), "force_cancelling");
    }

    #[test]
    fn end_and_remaining_states_follow_the_spec() {
        let ends: Vec<_> = ExecutionStatus::ALL.into_iter().filter(|s| s.is_end()).collect();
        assert_eq!(ends, [ExecutionStatus::Terminated, ExecutionStatus::Failed, ExecutionStatus::Cancelled]);
        assert!(!ExecutionStatus::Queued.is_remaining());
        assert!(ExecutionStatus::Cancelling.is_remaining());
    }

    #[test]
    fn new_execution_defaults_and_keeps_other_parameters() {
        let new: NewExecution = serde_json::from_value(json!({
            "workflow_id": "install", "deployment_id": "web",
            "parameters": {"retries": 3}
        }))
        .unwrap();
        assert!(!new.queue);
        assert_eq!(new.parameters_map()["retries"], 3);
        assert!(!new.parameters_map().contains_key("duration_seconds"), "no default is made up");
        assert!(new.validate().is_ok());
    }

    #[test]
    fn validation_names_the_field() {
        let mut new: NewExecution =
            serde_json::from_value(json!({"workflow_id": " ", "deployment_id": "web"})).unwrap();
        assert!(new.validate().unwrap_err().starts_with("workflow_id"));
        new.workflow_id = "install".into();
        new.deployment_id = "x".repeat(MAX_ID_LEN + 1);
        assert!(new.validate().unwrap_err().starts_with("deployment_id"));
    }

    #[test]
    fn actions_use_the_wire_names() {
        let cancel: ExecutionActionRequest = serde_json::from_str(r#"{"action":"cancel"}"#).unwrap();
        assert_eq!(cancel.action, ExecutionAction::Cancel);
        let force: ExecutionActionRequest = serde_json::from_str(r#"{"action":"force-cancel"}"#).unwrap();
        assert_eq!(force.action, ExecutionAction::ForceCancel);
        assert!(serde_json::from_str::<ExecutionActionRequest>(r#"{"action":"resume"}"#).is_err());
    }

    #[test]
    fn execution_round_trips() {
        let execution = Execution {
            id: Uuid::new_v4(),
            workflow_id: "install".into(),
            deployment_id: "web".into(),
            status: ExecutionStatus::Started,
            parameters: Map::new(),
            created_at: "2017-04-04T05:16:21.407Z".parse().unwrap(),
            started_at: Some("2017-04-04T05:16:21.407Z".parse().unwrap()),
            ended_at: None,
            created_by: "admin".into(),
            error: String::new(),
            replica: "r1".into(),
        };
        let json = serde_json::to_value(&execution).unwrap();
        assert_eq!(json["ended_at"], "");
        assert_eq!(serde_json::from_value::<Execution>(json).unwrap(), execution);
    }
}
