//! What cfy prints, as pure functions of the API's answers, so tests can
//! assert the exact lines (SPEC §6: the reference CLI's wording).

use shared::{Execution, MaintenanceState, MaintenanceStatus};

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
        lines.push("Remaining executions:".to_owned());
        let rows = remaining
            .iter()
            .map(|e| vec![e.id.to_string(), e.deployment_id.clone(), e.workflow_id.clone(), e.status.to_string()])
            .collect::<Vec<_>>();
        lines.extend(table(&["id", "deployment_id", "workflow_id", "status"], &rows));
    }
    if status.status == MaintenanceState::Activated {
        lines.push(
            "INFO - Cloudify Manager is currently in maintenance mode. Most requests will be blocked.".to_owned(),
        );
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

/// `cfy executions list`.
pub fn executions_table(executions: &[Execution]) -> Vec<String> {
    if executions.is_empty() {
        return vec!["There are no executions.".to_owned()];
    }
    let rows = executions
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.workflow_id.clone(),
                e.deployment_id.clone(),
                e.status.to_string(),
                e.created_at.to_string(),
                e.created_by.clone(),
            ]
        })
        .collect::<Vec<_>>();
    let mut lines = vec!["Executions:".to_owned()];
    lines.extend(table(&["id", "workflow_id", "deployment_id", "status", "created_at", "created_by"], &rows));
    lines
}

/// `cfy executions get`.
pub fn execution_lines(execution: &Execution) -> Vec<String> {
    let time = |at: Option<shared::Timestamp>| at.map(|at| at.to_string()).unwrap_or_default();
    let parameters = serde_json::Value::Object(execution.parameters.clone()).to_string();
    [
        ("id", execution.id.to_string()),
        ("workflow_id", execution.workflow_id.clone()),
        ("deployment_id", execution.deployment_id.clone()),
        ("status", execution.status.to_string()),
        ("parameters", parameters),
        ("created_at", execution.created_at.to_string()),
        ("started_at", time(execution.started_at)),
        ("ended_at", time(execution.ended_at)),
        ("created_by", execution.created_by.clone()),
        ("error", execution.error.clone()),
    ]
    .into_iter()
    .map(|(name, value)| format!("{name}:\t{value}"))
    .collect()
}

/// A bordered table, as the reference CLI draws them.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| rows.iter().map(|r| r[i].chars().count()).chain([h.len()]).max().unwrap_or(0))
        .collect();
    let rule = format!("+{}+", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!(" {c:<w$} ")).collect();
        format!("|{}|", padded.join("|"))
    };
    let mut lines = vec![rule.clone(), line(headers.to_vec()), rule.clone()];
    lines.extend(rows.iter().map(|row| line(row.iter().map(String::as_str).collect())));
    lines.push(rule);
    lines
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
        }
    }

    #[test]
    fn activated_status_is_the_reference_output() {
        assert_eq!(
            status_lines(&activated(), false).join("\n"),
            "\nMaintenance Mode Status:\n\tStatus:\tactivated\n\tRequested By:\tadmin\n\
             \tActivated At:\t2017-04-04T05:16:21.407Z\n\tActivation Requested At:\t2017-04-04T05:16:21.407Z\n\n\
             INFO - Cloudify Manager is currently in maintenance mode. Most requests will be blocked."
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
        assert!(verbose[table_start + 2].contains("| id "));
        assert!(verbose[table_start + 4].contains("| web "));
    }

    #[test]
    fn already_active_tells_the_state() {
        assert!(already_active(&activated()).contains("already on"));
        let mut activating = activated();
        activating.status = MaintenanceState::Activating;
        assert!(already_active(&activating).contains("already being activated"));
    }
}
