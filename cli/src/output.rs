//! What cfy prints, as pure functions of the API's answers, so tests can
//! assert the exact lines (SPEC §6: the reference CLI's wording).

use serde_json::{Map, Value};
use shared::{MaintenanceState, MaintenanceStatus};

use crate::table;

/// The line after a successful `activate` without `--wait`.
pub const RUN_STATUS_HINT: &str = "Run 'cfy maintenance-mode status' to check the maintenance mode's status.";
/// The line before waiting.
pub const WILL_ENTER: &str =
    "Cloudify manager will enter Maintenance mode once there are no running or pending executions...";

/// `cfy maintenance-mode status`: only non-empty fields, tab-separated.
pub fn status_lines(status: &MaintenanceStatus, verbose: bool) -> Vec<String> {
    let time = |at: Option<shared::Timestamp>| at.map(|at| at.to_string()).unwrap_or_default();
    let fields = [
        ("Status", status.status.to_string()),
        ("Requested By", status.requested_by.clone()),
        ("Activated At", time(status.activated_at)),
        ("Activation Requested At", time(status.activation_requested_at)),
        ("Reason", status.reason.clone()),
    ];
    let mut lines = vec![String::new(), "Maintenance Mode Status:".to_owned()];
    lines.extend(
        fields.iter().filter(|(_, value)| !value.is_empty()).map(|(name, value)| format!("\t{name}:\t{value}")),
    );
    lines.push(String::new());
    let remaining = &status.remaining_executions;
    match remaining.len() {
        0 => {}
        1 => lines.push(
            "Cloudify Manager currently has one running or pending execution. Waiting for it to finish before \
             entering maintenance mode."
                .to_owned(),
        ),
        count => lines.push(format!(
            "Cloudify Manager currently has {count} running or pending executions. Waiting for all executions to \
             finish before entering maintenance mode."
        )),
    }
    if verbose && !remaining.is_empty() {
        let items: Vec<Map<String, Value>> = remaining
            .iter()
            .filter_map(|execution| match serde_json::to_value(execution) {
                Ok(Value::Object(item)) => Some(item),
                _ => None,
            })
            .collect();
        let columns = ["id", "deployment_id", "workflow_id", "status"];
        lines.extend(table::print_data(&columns, &[], &items, "Remaining executions:", Some(50)));
    }
    if status.status == MaintenanceState::Activated {
        // The reference ends this line with its own "\n": an empty line follows.
        lines.push(
            "INFO - Cloudify Manager is currently in maintenance mode. Most requests will be blocked.".to_owned(),
        );
        lines.push(String::new());
    }
    lines
}

/// What `activate` says when the manager answered 304: the truth about where it is.
pub fn already_active(status: &MaintenanceStatus) -> String {
    match status.status {
        MaintenanceState::Activated => {
            let since = status.activated_at.map(|at| format!(" since {at}")).unwrap_or_default();
            format!("Maintenance mode is already on: the manager has been in maintenance mode{since}.")
        }
        MaintenanceState::Activating => format!(
            "Maintenance mode is already being activated: waiting for {} to finish.",
            executions_count(status.remaining_executions.len())
        ),
        MaintenanceState::Deactivated => "Maintenance mode was turned off meanwhile; run the command again.".to_owned(),
    }
}

/// "one running or pending execution" / "3 running or pending executions".
pub fn executions_count(count: usize) -> String {
    match count {
        1 => "one running or pending execution".to_owned(),
        count => format!("{count} running or pending executions"),
    }
}

/// Columns of `cfy executions list`, as Cloudify's client shows them.
const LIST_COLUMNS: [&str; 11] = [
    "id",
    "workflow_id",
    "status_display",
    "is_dry_run",
    "deployment_id",
    "created_at",
    "started_at",
    "scheduled_for",
    "visibility",
    "tenant_name",
    "created_by",
];
/// Columns of `cfy executions get`.
const GET_COLUMNS: [&str; 14] = [
    "id",
    "workflow_id",
    "status_display",
    "is_dry_run",
    "deployment_id",
    "blueprint_id",
    "created_at",
    "ended_at",
    "error",
    "visibility",
    "tenant_name",
    "created_by",
    "started_at",
    "scheduled_for",
];
const LABELS: [(&str, &str); 1] = [("status_display", "status")];
const CANCELLING_NOTE: &str = "NOTE: Executions currently in a \"canceling/force-canceling\" status may take a while \
                               to change into \"cancelled\"";

fn is_cancelling(execution: &Map<String, Value>) -> bool {
    matches!(execution.get("status").and_then(Value::as_str), Some("cancelling" | "force_cancelling"))
}

/// The first line of `cfy executions list`, printed before the request.
pub fn listing(deployment: Option<&str>) -> String {
    match deployment {
        Some(deployment) => format!("Listing executions for deployment {deployment}..."),
        None => "Listing all executions...".to_owned(),
    }
}

/// The rest of `cfy executions list`: the table and the count.
pub fn executions_table(executions: &[Map<String, Value>], total: u64) -> Vec<String> {
    let mut lines = table::print_data(&LIST_COLUMNS, &LABELS, executions, "Executions:", None);
    lines.push(format!("Showing {} of {total} executions", executions.len()));
    if executions.iter().any(is_cancelling) {
        lines.push(CANCELLING_NOTE.to_owned());
    }
    lines
}

/// `cfy executions list --json`: Cloudify's client's JSON lines.
pub fn executions_json(executions: &[Map<String, Value>]) -> Vec<String> {
    table::json_lines(&LIST_COLUMNS, &LABELS, executions)
}

/// `cfy executions get --json`: the table's columns and the parameters, on one line.
pub fn execution_json(execution: &Map<String, Value>) -> String {
    let mut columns = GET_COLUMNS.to_vec();
    columns.push("parameters");
    table::json_object(&columns, &LABELS, execution)
}

/// `cfy executions get` after its first line (`Retrieving execution ID`).
pub fn execution_lines(execution: &Map<String, Value>) -> Vec<String> {
    let mut lines = table::print_data(&GET_COLUMNS, &LABELS, std::slice::from_ref(execution), "Execution:", Some(50));
    let parameters = execution.get("parameters").and_then(Value::as_object).cloned().unwrap_or_default();
    lines.extend(table::print_details(&parameters, "Execution Parameters:"));
    if is_cancelling(execution) {
        lines.push(CANCELLING_NOTE.to_owned());
    }
    lines.push(String::new());
    lines
}

/// `cfy events list -e ID`: Cloudify's client's warning about the option.
pub const EXECUTION_OPTION_DEPRECATED: &str =
    "Providing the execution ID as an option (using '-e') is now deprecated. \
                                               Please provide the execution ID as a positional argument.";

/// The last line of `cfy events list`.
pub const DEBUG_HINT: &str = "Debug messages are only shown when you use very verbose mode (-vv)";

/// `cfy workflows list`: the catalog as a Cloudify table.
pub fn workflows_table(workflows: &[shared::api::Workflow]) -> Vec<String> {
    let items: Vec<Map<String, Value>> = workflows
        .iter()
        .filter_map(|workflow| match serde_json::to_value(workflow) {
            Ok(Value::Object(item)) => Some(item),
            _ => None,
        })
        .collect();
    let mut lines = vec!["Listing workflows...".to_owned()];
    lines.extend(table::print_data(&["id", "description"], &[], &items, "Workflows:", None));
    lines.push(format!("Showing {} workflows", workflows.len()));
    lines
}

/// The first line of `cfy executions start`.
pub fn executing(workflow: &str, deployment: &str, timeout: u64) -> String {
    format!("Executing workflow `{workflow}` on deployment `{deployment}` [timeout={timeout} seconds]")
}

/// `cfy executions start` when maintenance mode queued the execution.
pub const QUEUED: &str = "Execution is being queued. It will automatically start when possible.";

/// One event as Cloudify's client prints it while following an execution
/// (`cloudify.event.Event.__str__`, no worker names); `None` for debug logs.
pub fn event_line(event: &Map<String, Value>) -> Option<String> {
    let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or_default();
    let is_log = text("type").contains("cloudify_log");
    let level = text("level").to_uppercase();
    if is_log && level == "DEBUG" {
        return None;
    }
    let timestamp = ["@timestamp", "reported_timestamp", "timestamp"]
        .into_iter()
        .map(text)
        .find(|time| !time.is_empty())
        .unwrap_or_default()
        .replace('T', " ")
        .replace('Z', "");
    let message = if is_log { format!("{level}: {}", text("message")) } else { text("message").to_owned() };
    let indicator = if is_log { "LOG" } else { "CFY" };
    let node = event.get("node_instance_id").and_then(Value::as_str).filter(|node| !node.is_empty());
    let operation = text("operation").rsplit('.').next().unwrap_or_default();
    let info = match (node, operation.is_empty()) {
        (Some(node), false) => format!("[{node}.{operation}] "),
        (Some(node), true) => format!("[{node}] "),
        (None, _) => String::new(),
    };
    Some(format!("{timestamp}  {indicator} <{}> {info}{message}", text("deployment_id")))
}

fn events_hint(id: &str) -> String {
    format!("* Run 'cfy events list {id}' to retrieve the execution's events/logs")
}

/// The end of `cfy executions start` for an execution that ended without an error.
pub fn finished(workflow: &str, deployment: &str, id: &str) -> Vec<String> {
    vec![format!("Finished executing workflow {workflow} on deployment {deployment}"), events_hint(id)]
}

/// The end of `cfy executions start` for an execution that failed (exit 1).
pub fn failed(workflow: &str, deployment: &str, id: &str, error: &str, ignore_failure: bool) -> Vec<String> {
    let mut lines = vec![
        format!("Execution of workflow {workflow} for deployment {deployment} failed. [error={error}]"),
        events_hint(id),
    ];
    if workflow == "uninstall" && !ignore_failure {
        lines.push(format!(
            "Note that, for the {workflow} workflow, you can use the 'ignore_failure' parameter to ignore operation \
             failures and continue the execution (for example: 'cfy executions start {workflow} -d {deployment} -p \
             ignore_failure=true'). If your blueprint imports Cloudify's global definitions (types.yaml) of a version \
             prior to 4.0, you will also need to include '--allow-custom-parameters' in the command line."
        ));
    }
    lines
}

/// `cfy executions start` when `--timeout` ran out (exit 1; the execution goes on).
pub fn start_timed_out(workflow: &str, deployment: &str, id: &str, timeout: u64) -> Vec<String> {
    vec![
        format!(
            "Timed out waiting for workflow '{workflow}' of deployment '{deployment}' to end. The execution may \
             still be running properly; however, the command-line utility was instructed to wait up to {timeout} \
             seconds for its completion."
        ),
        String::new(),
        "* Run 'cfy executions list' to determine the execution's status.".to_owned(),
        format!("* Run 'cfy executions cancel {id}' to cancel the running workflow."),
        format!("* Run 'cfy events list --tail {id}' to retrieve the execution's events/logs"),
    ]
}

/// `cfy executions cancel`: before the request, then after it.
pub fn cancelling(id: &str, force: bool, kill: bool) -> (String, Vec<String>) {
    let verb = if kill {
        "Killing"
    } else if force {
        "Force-cancelling"
    } else {
        "Cancelling"
    };
    (
        format!("{verb} execution {id}"),
        vec![
            format!("A cancel request for execution {id} has been sent. To track the execution's status, use:"),
            format!("cfy executions get {id}"),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{ExecutionStatus, RemainingExecution};

    fn activated() -> MaintenanceStatus {
        let at: shared::Timestamp = "2017-04-04T05:16:21.407Z".parse().unwrap();
        MaintenanceStatus {
            status: MaintenanceState::Activated,
            requested_by: "admin".into(),
            activated_at: Some(at),
            activation_requested_at: Some(at),
            remaining_executions: vec![],
            reason: String::new(),
            ..MaintenanceStatus::default()
        }
    }

    #[test]
    fn activated_status_is_the_reference_output() {
        assert_eq!(
            status_lines(&activated(), false).join("\n"),
            "\nMaintenance Mode Status:\n\tStatus:\tactivated\n\tRequested By:\tadmin\n\
             \tActivated At:\t2017-04-04T05:16:21.407Z\n\tActivation Requested At:\t2017-04-04T05:16:21.407Z\n\n\
             INFO - Cloudify Manager is currently in maintenance mode. Most requests will be blocked.\n"
        );
    }

    #[test]
    fn deactivated_status_shows_only_the_state() {
        let lines = status_lines(&MaintenanceStatus::default(), true);
        assert_eq!(lines, ["", "Maintenance Mode Status:", "\tStatus:\tdeactivated", ""]);
    }

    #[test]
    fn activating_status_counts_and_with_verbose_lists_the_remaining() {
        let mut status = activated();
        status.status = MaintenanceState::Activating;
        status.activated_at = None;
        status.reason = "upgrade".into();
        let execution = RemainingExecution {
            id: uuid::Uuid::nil(),
            status: ExecutionStatus::Started,
            deployment_id: "web".into(),
            workflow_id: "install".into(),
        };
        status.remaining_executions = vec![execution.clone()];
        let lines = status_lines(&status, false);
        assert_eq!(lines[2..], [
            "\tStatus:\tactivating".to_owned(),
            "\tRequested By:\tadmin".into(),
            "\tActivation Requested At:\t2017-04-04T05:16:21.407Z".into(),
            "\tReason:\tupgrade".into(),
            String::new(),
            "Cloudify Manager currently has one running or pending execution. Waiting for it to finish before entering maintenance mode.".into(),
        ]);
        status.remaining_executions.push(execution);
        let verbose = status_lines(&status, true);
        assert!(verbose.contains(&"Cloudify Manager currently has 2 running or pending executions. Waiting for all executions to finish before entering maintenance mode.".to_owned()));
        let table_start = verbose.iter().position(|l| l == "Remaining executions:").unwrap();
        assert_eq!(verbose[table_start - 1], "", "print_data starts with an empty line");
        assert_eq!(
            verbose[table_start + 2],
            "|                  id                  | deployment_id | workflow_id |  status |"
        );
        assert!(verbose[table_start + 4].contains("|      web      |"), "{}", verbose[table_start + 4]);
    }

    #[test]
    fn already_active_tells_the_state() {
        assert!(already_active(&activated()).contains("already on"));
        let mut activating = activated();
        activating.status = MaintenanceState::Activating;
        assert!(already_active(&activating).contains("already being activated"));
    }
}
