//! What Cloudify's own client (`cfy`, PyPI `cloudify` 7.0.5) reads besides the
//! maintenance API: how the manager describes itself when a profile is made
//! (`/provider/context`, `/managers`, `/brokers`, `/db-nodes`), executions with
//! Cloudify's extra fields, execution events (`GET /events`) and the services
//! of `GET /status` (services.rs).

pub mod services;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::execution::{Execution, ExecutionEvent, ExecutionStatus, OutputStream};
use crate::time::Timestamp;

/// The one tenant of this manager; Cloudify's client names it in every request.
pub const DEFAULT_TENANT: &str = "default_tenant";
/// The header in which Cloudify's client names the tenant.
pub const TENANT_HEADER: &str = "Tenant";
/// The Cloudify release whose client (and REST API v3.1) the manager is tested against.
pub const CLOUDIFY_VERSION: &str = "7.0.5";
/// How the manager's edition reads to Cloudify's client (`cfy --version`).
pub const EDITION: &str = "community";

/// Body of `GET /provider/context`: what Cloudify stores at bootstrap. This
/// manager is configured by flags, so the context is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderContext {
    /// `provider`, as Cloudify names it.
    pub name: String,
    /// The stored context (always `{}` here).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub context: Map<String, Value>,
}

/// One manager process (`GET /managers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ManagerNode {
    /// 1 for the first manager.
    pub id: u32,
    /// The host name of its machine.
    pub hostname: String,
    /// The address it serves on.
    pub private_ip: String,
    /// The same address (no separate public one is known).
    pub public_ip: String,
    /// The manager's version.
    pub version: String,
    /// [`EDITION`].
    pub edition: String,
    /// The operating system's id (`/etc/os-release` `ID`), or `""`.
    pub distribution: String,
    /// Its release (`VERSION_CODENAME`), or `""`.
    pub distro_release: String,
    /// A unique name for this node: the host name and port.
    pub node_id: String,
    /// When the manager last answered (now, for the one answering).
    pub last_seen: Timestamp,
    /// The networks it is reachable on (`{"default": address}`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub networks: Map<String, Value>,
}

/// The component that hands executions to their runners (`GET /brokers`).
/// Cloudify uses RabbitMQ; this manager runs executions itself, so it is its
/// own broker, on its own address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BrokerNode {
    /// The node's name (the manager's host name).
    pub name: String,
    /// Its address (the manager's).
    pub host: String,
    /// The address it is managed on (the same).
    pub management_host: String,
    /// The manager's port.
    pub port: u16,
    /// The same node id as the manager's.
    pub node_id: String,
    /// `false`: part of the manager.
    pub is_external: bool,
    /// The networks it is reachable on.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub networks: Map<String, Value>,
}

/// The database the manager stores everything in (`GET /db-nodes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DbNode {
    /// The node's name (the manager's host name for the embedded SQLite).
    pub name: String,
    /// Where it runs (the manager's address for the embedded SQLite).
    pub host: String,
    /// The same node id as the manager's when embedded.
    pub node_id: String,
    /// `false` for the embedded SQLite.
    pub is_external: bool,
}

/// What Cloudify shows for a status: `terminated` reads `completed`.
pub fn status_display(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Terminated => "completed",
        status => status.as_str(),
    }
}

/// An execution as the API returns it: ours, plus the fields Cloudify's
/// client prints (`status_display`, `tenant_name`, …), each true of this manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutionView {
    /// The execution.
    #[serde(flatten)]
    pub execution: Execution,
    /// Cloudify's display name of the status (`terminated` reads `completed`).
    pub status_display: String,
    /// Always `false`: dry runs are refused.
    pub is_dry_run: bool,
    /// Always `null`: executions run on deployments, not blueprints.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub blueprint_id: Option<String>,
    /// Always `null`: scheduling is done by maintenance windows, not executions.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub scheduled_for: Option<String>,
    /// `tenant`: every user of the tenant sees it.
    pub visibility: String,
    /// [`DEFAULT_TENANT`].
    pub tenant_name: String,
}

impl From<Execution> for ExecutionView {
    fn from(execution: Execution) -> Self {
        Self {
            status_display: status_display(execution.status).to_owned(),
            execution,
            is_dry_run: false,
            blueprint_id: None,
            scheduled_for: None,
            visibility: "tenant".to_owned(),
            tenant_name: DEFAULT_TENANT.to_owned(),
        }
    }
}

/// One event of an execution, in Cloudify's shape (`GET /events`), so
/// Cloudify's client prints it as it prints its own manager's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CloudifyEvent {
    /// When it happened.
    pub timestamp: Timestamp,
    /// When the manager stored it.
    pub reported_timestamp: Timestamp,
    /// `cloudify_event` (a step of the workflow) or `cloudify_log` (a line it wrote).
    #[serde(rename = "type")]
    pub kind: String,
    /// For events: `workflow_started`, `workflow_succeeded`, `workflow_failed`, `workflow_cancelled`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub event_type: Option<String>,
    /// For logs: `info` or `error`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub level: Option<String>,
    /// What happened, in words.
    pub message: String,
    /// The execution.
    pub execution_id: String,
    /// Its deployment.
    pub deployment_id: String,
    /// Its workflow.
    pub workflow_id: String,
    /// Always `null`: no blueprints here.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub blueprint_id: Option<String>,
    /// Always `null`: workflows here have no node instances.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub node_instance_id: Option<String>,
    /// Always `null`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub node_name: Option<String>,
    /// Always `null`: no operations.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub operation: Option<String>,
    /// Always `null`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub error_causes: Option<Vec<Value>>,
}

impl CloudifyEvent {
    /// A line the execution's program wrote, as a Cloudify log: `info` from
    /// stdout, `warning` from stderr and from the manager's truncation marker
    /// (stderr carries progress and notices as often as errors).
    pub fn from_output(execution: &Execution, event: &ExecutionEvent) -> Self {
        let level = match event.stream {
            OutputStream::Stdout => "info",
            OutputStream::Stderr | OutputStream::Manager => "warning",
        };
        Self {
            timestamp: event.at,
            reported_timestamp: event.at,
            kind: "cloudify_log".to_owned(),
            event_type: None,
            level: Some(level.to_owned()),
            message: event.line.clone(),
            execution_id: execution.id.to_string(),
            deployment_id: execution.deployment_id.clone(),
            workflow_id: execution.workflow_id.clone(),
            blueprint_id: None,
            node_instance_id: None,
            node_name: None,
            operation: None,
            error_causes: None,
        }
    }

    /// The workflow events an execution's record implies, oldest first:
    /// `workflow_started` once it started, then how it ended.
    pub fn lifecycle_of(execution: &Execution) -> Vec<Self> {
        let workflow = &execution.workflow_id;
        let event = |at: Timestamp, event_type: &str, message: String| Self {
            timestamp: at,
            reported_timestamp: at,
            kind: "cloudify_event".to_owned(),
            event_type: Some(event_type.to_owned()),
            level: None,
            message,
            execution_id: execution.id.to_string(),
            deployment_id: execution.deployment_id.clone(),
            workflow_id: workflow.clone(),
            blueprint_id: None,
            node_instance_id: None,
            node_name: None,
            operation: None,
            error_causes: None,
        };
        let mut events = Vec::with_capacity(2);
        if let Some(started) = execution.started_at {
            events.push(event(started, "workflow_started", format!("Starting '{workflow}' workflow execution")));
        }
        if let Some(ended) = execution.ended_at {
            let (event_type, message) = match execution.status {
                ExecutionStatus::Terminated => {
                    ("workflow_succeeded", format!("'{workflow}' workflow execution succeeded"))
                }
                ExecutionStatus::Cancelled => {
                    ("workflow_cancelled", format!("'{workflow}' workflow execution cancelled"))
                }
                _ => ("workflow_failed", format!("'{workflow}' workflow execution failed: {}", execution.error)),
            };
            events.push(event(ended, event_type, message));
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execution(status: ExecutionStatus, started: bool, ended: bool) -> Execution {
        let at: Timestamp = serde_json::from_str("\"2026-11-30T10:00:00.000Z\"").expect("a timestamp");
        Execution {
            id: uuid::Uuid::new_v4(),
            workflow_id: "install".into(),
            deployment_id: "web".into(),
            status,
            parameters: Map::new(),
            created_at: at,
            started_at: started.then_some(at),
            ended_at: ended.then_some(at),
            created_by: "admin".into(),
            error: if status == ExecutionStatus::Failed { "exited with status 3".into() } else { String::new() },
            replica: String::new(),
        }
    }

    #[test]
    fn terminated_reads_completed_and_the_rest_read_as_they_are() {
        assert_eq!(status_display(ExecutionStatus::Terminated), "completed");
        for status in ExecutionStatus::ALL.into_iter().filter(|s| *s != ExecutionStatus::Terminated) {
            assert_eq!(status_display(status), status.as_str());
        }
    }

    #[test]
    fn the_view_adds_cloudify_fields_beside_ours() {
        let view = ExecutionView::from(execution(ExecutionStatus::Terminated, true, true));
        let json = serde_json::to_value(&view).expect("serializes");
        assert_eq!(json["status"], "terminated");
        assert_eq!(json["status_display"], "completed");
        assert_eq!(json["tenant_name"], DEFAULT_TENANT);
        assert_eq!(json["is_dry_run"], false);
        assert!(json["blueprint_id"].is_null());
        let back: Execution = serde_json::from_value(json).expect("our clients read it as an Execution");
        assert_eq!(back, view.execution);
    }

    #[test]
    fn lifecycle_events_follow_the_record() {
        assert!(CloudifyEvent::lifecycle_of(&execution(ExecutionStatus::Pending, false, false)).is_empty());
        let running = CloudifyEvent::lifecycle_of(&execution(ExecutionStatus::Started, true, false));
        assert_eq!(running.len(), 1);
        assert_eq!(running[0].message, "Starting 'install' workflow execution");
        let messages = |status| {
            CloudifyEvent::lifecycle_of(&execution(status, true, true))
                .into_iter()
                .map(|event| (event.event_type.unwrap_or_default(), event.message))
                .collect::<Vec<_>>()
        };
        assert_eq!(messages(ExecutionStatus::Terminated)[1].1, "'install' workflow execution succeeded");
        assert_eq!(messages(ExecutionStatus::Cancelled)[1].0, "workflow_cancelled");
        assert_eq!(messages(ExecutionStatus::Failed)[1].1, "'install' workflow execution failed: exited with status 3");
        // A queued execution that was cancelled never started: only its end.
        assert_eq!(CloudifyEvent::lifecycle_of(&execution(ExecutionStatus::Cancelled, false, true)).len(), 1);
    }
}
