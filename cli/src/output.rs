//! What cfy prints, as pure functions of the API's answers, so tests can
//! assert the exact lines (SPEC §6: the reference CLI's wording).

use serde::Serialize;
use serde_json::{Map, Value};
use shared::window::{Window, WindowState};
use shared::{MaintenanceMode, MaintenanceState, MaintenanceStatus, MaintenanceTransition};

use crate::table;

mod status;
mod webhooks;
pub use status::{retrieving, status_table};
pub use webhooks::{webhooks_lines, DEFAULT_RECENT};

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
        // SPEC §10: shown only when set, so the reference output stays as it was.
        (
            "Mode",
            if status.mode == Some(MaintenanceMode::ReadOnly) {
                MaintenanceMode::ReadOnly.to_string()
            } else {
                String::new()
            },
        ),
        ("Drain Deadline", time(status.drain_deadline_at)),
        ("Upcoming Window", status.upcoming.as_ref().map(upcoming).unwrap_or_default()),
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
        let columns = ["id", "deployment_id", "workflow_id", "status"];
        lines.extend(table::print_data(&columns, &[], &objects(remaining), "Remaining executions:", Some(50)));
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

/// `<starts_at> - <ends_at>`, or `- no end`: a window's span, in UTC as served.
pub fn window_span(window: &Window) -> String {
    let end = window.ends_at.map_or_else(|| "no end".to_owned(), |at| at.to_string());
    format!("{} - {end}", window.starts_at)
}

/// The status row of the window in its notice period (or the active one):
/// its span and, if it has one, its reason.
fn upcoming(window: &Window) -> String {
    let span = window_span(window);
    if window.reason.is_empty() {
        span
    } else {
        format!("{span} ({})", window.reason)
    }
}

/// `cfy maintenance-mode schedule`.
pub fn window_scheduled(window: &Window) -> String {
    format!("Maintenance window {} scheduled: {}.", window.id, window_span(window))
}

/// `cfy maintenance-mode cancel-window`: a scheduled window is cancelled, an active one ended.
pub fn window_cancelled(window: &Window) -> String {
    match window.state {
        WindowState::Cancelled => format!("Maintenance window {} cancelled.", window.id),
        WindowState::Ended => format!("Maintenance window {} ended; maintenance mode is off.", window.id),
        state => format!("Maintenance window {} is {state}.", window.id),
    }
}

/// Columns of `cfy maintenance-mode windows`.
const WINDOW_COLUMNS: [&str; 7] = ["id", "state", "starts_at", "ends_at", "mode", "reason", "created_by"];
/// Columns of `cfy maintenance-mode history`.
const HISTORY_COLUMNS: [&str; 7] = ["at", "event", "from", "to", "requested_by", "reason", "detail"];
/// Free text (reasons, details) wraps at this width, as `cfy executions get` does.
const TEXT_WIDTH: usize = 50;

/// Rows as JSON objects, for the table's cell rules.
fn objects<T: Serialize>(rows: &[T]) -> Vec<Map<String, Value>> {
    rows.iter()
        .filter_map(|row| match serde_json::to_value(row) {
            Ok(Value::Object(object)) => Some(object),
            _ => None,
        })
        .collect()
}

/// `cfy maintenance-mode windows`: the table and the count, as `executions list` prints them.
pub fn windows_table(windows: &[Window], total: u64) -> Vec<String> {
    let mut lines =
        table::print_data(&WINDOW_COLUMNS, &[], &objects(windows), "Maintenance windows:", Some(TEXT_WIDTH));
    lines.push(format!("Showing {} of {total} maintenance windows", windows.len()));
    lines
}

/// `cfy maintenance-mode history`: the table (newest first, as served) and the count.
pub fn history_table(rows: &[MaintenanceTransition], total: u64) -> Vec<String> {
    let mut lines =
        table::print_data(&HISTORY_COLUMNS, &[], &objects(rows), "Maintenance mode history:", Some(TEXT_WIDTH));
    lines.push(format!("Showing {} of {total} history events", rows.len()));
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
    let mut lines = vec!["Listing workflows...".to_owned()];
    lines.extend(table::print_data(&["id", "description"], &[], &objects(workflows), "Workflows:", None));
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

    fn window(reason: &str, ends_at: Option<&str>) -> Window {
        Window {
            id: "6f1c2b7e-0000-4000-8000-000000000001".parse().unwrap(),
            state: WindowState::Scheduled,
            starts_at: "2030-01-01T08:00:00.000Z".parse().unwrap(),
            ends_at: ends_at.map(|at| at.parse().unwrap()),
            reason: reason.into(),
            notice_seconds: 3600,
            drain_deadline_seconds: None,
            mode: MaintenanceMode::Full,
            created_by: "admin".into(),
            created_at: "2029-12-31T08:00:00.000Z".parse().unwrap(),
            ended_at: None,
        }
    }

    #[test]
    fn status_adds_mode_drain_deadline_and_upcoming_rows_after_the_reason_only_when_set() {
        let mut status = activated();
        status.status = MaintenanceState::Activating;
        status.activated_at = None;
        status.reason = "upgrade".into();
        status.mode = Some(MaintenanceMode::ReadOnly);
        status.drain_deadline_at = Some("2017-04-04T05:26:21.407Z".parse().unwrap());
        status.upcoming = Some(window("kernel", Some("2030-01-01T10:00:00.000Z")));
        assert_eq!(
            status_lines(&status, false)[2..8],
            [
                "\tStatus:\tactivating".to_owned(),
                "\tRequested By:\tadmin".into(),
                "\tActivation Requested At:\t2017-04-04T05:16:21.407Z".into(),
                "\tReason:\tupgrade".into(),
                "\tMode:\tread_only".into(),
                "\tDrain Deadline:\t2017-04-04T05:26:21.407Z".into(),
            ]
        );
        assert_eq!(
            status_lines(&status, false)[8],
            "\tUpcoming Window:\t2030-01-01T08:00:00.000Z - 2030-01-01T10:00:00.000Z (kernel)"
        );

        // `full` is the default: no row, the reference output.
        let mut full = activated();
        full.mode = Some(MaintenanceMode::Full);
        assert_eq!(status_lines(&full, false), status_lines(&activated(), false));
    }

    #[test]
    fn deactivated_status_shows_the_upcoming_window_without_an_end_or_reason() {
        let status = MaintenanceStatus { upcoming: Some(window("", None)), ..MaintenanceStatus::default() };
        assert_eq!(
            status_lines(&status, false),
            [
                "",
                "Maintenance Mode Status:",
                "\tStatus:\tdeactivated",
                "\tUpcoming Window:\t2030-01-01T08:00:00.000Z - no end",
                ""
            ]
        );
    }

    #[test]
    fn schedule_and_cancel_window_lines() {
        let mut window = window("kernel", Some("2030-01-01T10:00:00.000Z"));
        assert_eq!(
            window_scheduled(&window),
            "Maintenance window 6f1c2b7e-0000-4000-8000-000000000001 scheduled: 2030-01-01T08:00:00.000Z - \
             2030-01-01T10:00:00.000Z."
        );
        window.ends_at = None;
        assert_eq!(
            window_scheduled(&window),
            "Maintenance window 6f1c2b7e-0000-4000-8000-000000000001 scheduled: 2030-01-01T08:00:00.000Z - no end."
        );
        window.state = WindowState::Cancelled;
        assert_eq!(window_cancelled(&window), "Maintenance window 6f1c2b7e-0000-4000-8000-000000000001 cancelled.");
        window.state = WindowState::Ended;
        assert_eq!(
            window_cancelled(&window),
            "Maintenance window 6f1c2b7e-0000-4000-8000-000000000001 ended; maintenance mode is off."
        );
    }

    #[test]
    fn windows_table_is_a_cloudify_table_with_its_count() {
        let lines = windows_table(&[window("kernel", None)], 1);
        assert_eq!(
            lines[..3],
            [
                "",
                "Maintenance windows:",
                &format!(
                    "+{}+",
                    [
                        "-".repeat(38),
                        "-".repeat(11),
                        "-".repeat(26),
                        "-".repeat(9),
                        "-".repeat(6),
                        "-".repeat(8),
                        "-".repeat(12)
                    ]
                    .join("+")
                )
            ]
        );
        assert_eq!(
            lines[3],
            "|                  id                  |   state   |        starts_at         | ends_at | mode | reason | created_by |"
        );
        assert_eq!(
            lines[5],
            "| 6f1c2b7e-0000-4000-8000-000000000001 | scheduled | 2030-01-01 08:00:00.000  |         | full | kernel |   admin    |"
        );
        assert_eq!(lines[7..], ["", "Showing 1 of 1 maintenance windows"]);

        let empty = windows_table(&[], 0);
        assert_eq!(empty[3], "| id | state | starts_at | ends_at | mode | reason | created_by |");
        assert_eq!(empty[4], empty[5], "headers only: the rule under them closes the table");
        assert_eq!(empty[6..], ["", "Showing 0 of 0 maintenance windows"]);
    }

    #[test]
    fn history_table_lists_each_event_with_wrapped_details() {
        let row = MaintenanceTransition {
            at: "2030-01-01T08:00:00.000Z".parse().unwrap(),
            from: MaintenanceState::Activating,
            to: MaintenanceState::Activating,
            requested_by: "admin".into(),
            reason: String::new(),
            event: shared::HistoryEvent::DrainCancel,
            window_id: None,
            detail: "cancelled 6f1c2b7e-0000-4000-8000-000000000001 and 6f1c2b7e-0000-4000-8000-000000000002".into(),
        };
        let lines = history_table(&[row], 7);
        assert_eq!(lines[1], "Maintenance mode history:");
        assert_eq!(
            lines[3],
            "|            at            |    event     |    from    |     to     | requested_by | reason |                       detail                       |"
        );
        assert_eq!(
            lines[5],
            "| 2030-01-01 08:00:00.000  | drain_cancel | activating | activating |    admin     |        | cancelled 6f1c2b7e-0000-4000-8000-000000000001 and |"
        );
        assert_eq!(
            lines[6],
            "|                          |              |            |            |              |        |        6f1c2b7e-0000-4000-8000-000000000002        |"
        );
        assert_eq!(lines[8..], ["", "Showing 1 of 7 history events"]);
    }

    #[test]
    fn already_active_tells_the_state() {
        assert!(already_active(&activated()).contains("already on"));
        let mut activating = activated();
        activating.status = MaintenanceState::Activating;
        assert!(already_active(&activating).contains("already being activated"));
    }
}
