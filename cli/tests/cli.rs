//! The real `cfy` binary against a real manager on 127.0.0.1:0: the exact
//! lines of SPEC §6, exit codes, and errors a person can act on.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use shared::{
    Execution, MaintenanceMode, MaintenanceState, MaintenanceStatus, MaintenanceTransition, Webhooks, Window,
    WindowState,
};

#[tokio::test(flavor = "multi_thread")]
async fn status_prints_the_reference_lines_in_all_three_states() {
    let manager = TestManager::spawn().await;
    let off = manager.cfy(&["maintenance-mode", "status"]).await;
    assert_success(&off);
    assert_eq!(stdout(&off), "\nMaintenance Mode Status:\n\tStatus:\tdeactivated\n\n");

    let execution = manager.start(LONG).await;
    manager.api_post("/maintenance/activate", json!({})).await;
    let status = manager.status().await;
    let requested = status.activation_requested_at.unwrap();
    let activating = manager.cfy(&["maintenance-mode", "status"]).await;
    assert_success(&activating);
    assert_eq!(
        stdout(&activating),
        format!(
            "\nMaintenance Mode Status:\n\tStatus:\tactivating\n\tRequested By:\tadmin\n\
             \tActivation Requested At:\t{requested}\n\n\
             Cloudify Manager currently has one running or pending execution. Waiting for it to finish before entering maintenance mode.\n"
        )
    );
    let verbose = stdout(&manager.cfy(&["maintenance-mode", "status", "-v"]).await);
    assert!(verbose.contains("Remaining executions:"), "{verbose}");
    assert!(verbose.contains(&execution.id.to_string()) && verbose.contains("| started |"), "{verbose}");

    manager.api_post(&format!("/executions/{}", execution.id), json!({"action": "cancel"})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while manager.status().await.status != MaintenanceState::Activated {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let activated_at = manager.status().await.activated_at.unwrap();
    let on = manager.cfy(&["maintenance-mode", "status"]).await;
    assert_success(&on);
    assert_eq!(
        stdout(&on),
        format!(
            "\nMaintenance Mode Status:\n\tStatus:\tactivated\n\tRequested By:\tadmin\n\tActivated At:\t{activated_at}\n\
             \tActivation Requested At:\t{requested}\n\n\
             INFO - Cloudify Manager is currently in maintenance mode. Most requests will be blocked.\n\n"
        )
    );
    let json: MaintenanceStatus =
        serde_json::from_str(&stdout(&manager.cfy(&["maintenance-mode", "status", "--json"]).await)).unwrap();
    assert_eq!(json.status, MaintenanceState::Activated);
}

/// `cfy status`: Cloudify's services table, then the maintenance mode unless it is off.
#[tokio::test(flavor = "multi_thread")]
async fn status_prints_the_services_as_cloudifys_table() {
    let manager = TestManager::spawn().await;
    let table = "\nServices:\n\
                 +--------------------------------+--------+\n\
                 |            service             | status |\n\
                 +--------------------------------+--------+\n\
                 | Manager Rest-Service           | Active |\n\
                 | SQLite                         | Active |\n\
                 | Workflow Runner                | Active |\n\
                 +--------------------------------+--------+\n\n";
    let off = manager.cfy(&["status"]).await;
    assert_success(&off);
    assert_eq!(stdout(&off), format!("Retrieving manager services status... [ip=127.0.0.1]\n{table}"));
    manager.api_post("/maintenance/activate", json!({})).await;
    let on = manager.cfy(&["status"]).await;
    assert_success(&on);
    assert_eq!(
        stdout(&on),
        format!("Retrieving manager services status... [ip=127.0.0.1]\n{table}Maintenance mode is activated.\n\n")
    );
    let json: shared::api::ServerStatus =
        serde_json::from_str(&stdout(&manager.cfy(&["status", "--json"]).await)).unwrap();
    assert_eq!(json.services.0.len(), 3);
    assert_failure(&run_cfy("http://127.0.0.1:9", PASSWORD, &["status"]).await, "Cannot reach the manager");
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_without_wait_then_304_then_deactivate_twice() {
    let manager = TestManager::spawn().await;
    let activate = manager.cfy(&["maintenance-mode", "activate", "--reason", "kernel upgrade"]).await;
    assert_success(&activate);
    assert_eq!(
        stdout(&activate),
        "Entering maintenance mode...\nRun 'cfy maintenance-mode status' to check the maintenance mode's status.\n\n"
    );
    let status = manager.status().await;
    assert_eq!((status.status, status.reason.as_str()), (MaintenanceState::Activated, "kernel upgrade"));

    let again = manager.cfy(&["maintenance-mode", "activate"]).await;
    assert_success(&again);
    assert_eq!(
        stdout(&again),
        format!(
            "Entering maintenance mode...\nMaintenance mode is already on: the manager has been in maintenance mode since {}.\n",
            status.activated_at.unwrap()
        )
    );

    let off = manager.cfy(&["maintenance-mode", "deactivate"]).await;
    assert_success(&off);
    assert_eq!(stdout(&off), "Turning off maintenance mode...\nMaintenance mode is off.\n");
    let off_again = manager.cfy(&["maintenance-mode", "deactivate"]).await;
    assert_success(&off_again);
    assert_eq!(stdout(&off_again), "Turning off maintenance mode...\nMaintenance mode is already off.\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_wait_returns_once_the_running_execution_ends() {
    let manager = TestManager::spawn().await;
    // Long enough that cfy surely activates first, even on a loaded machine.
    let execution = manager.start(4.0).await;
    let wait = manager.cfy(&["maintenance-mode", "activate", "--wait", "--timeout", "60"]).await;
    assert_success(&wait);
    assert_eq!(
        stdout(&wait),
        "Entering maintenance mode...\n\
         Cloudify manager will enter Maintenance mode once there are no running or pending executions...\n\n\
         Manager is in maintenance mode.\nWhile in maintenance mode most requests will be blocked.\n"
    );
    // It followed the remaining count on stderr while it waited.
    assert!(stderr(&wait).contains("Waiting for one running or pending execution to finish"), "{}", stderr(&wait));
    let status = manager.status().await;
    assert_eq!(status.status, MaintenanceState::Activated);
    let url = format!("{}/api/v3.1/executions/{}", manager.url, execution.id);
    let ended: Execution = manager
        .http
        .get(url)
        .basic_auth("admin", Some(PASSWORD))
        .header("X-BYPASS-MAINTENANCE", "true")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status.activated_at, ended.ended_at, "cfy returned after the execution's end, not before");
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_wait_timeout_expires_with_the_reference_message() {
    let manager = TestManager::spawn().await;
    manager.start(LONG).await;
    let timed_out = manager.cfy(&["maintenance-mode", "activate", "--wait", "--timeout", "1"]).await;
    assert_failure(
        &timed_out,
        "Timed out while entering maintenance mode. Note that the manager is still entering maintenance mode in the \
         background. You can run 'cfy maintenance-mode status' to check the status.",
    );
    assert_eq!(
        stdout(&timed_out),
        "Entering maintenance mode...\n\
         Cloudify manager will enter Maintenance mode once there are no running or pending executions...\n\n"
    );
    assert_eq!(manager.status().await.status, MaintenanceState::Activating);
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_without_wait_is_refused_before_anything_is_sent() {
    let manager = TestManager::spawn().await;
    let output = manager.cfy(&["maintenance-mode", "activate", "--timeout", "5"]).await;
    assert_failure(&output, "'--timeout' was used without '--wait'.");
    assert_eq!(stdout(&output), "");
    assert_eq!(manager.status().await.status, MaintenanceState::Deactivated);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_and_unreachable_manager_are_one_clear_line() {
    let manager = TestManager::spawn().await;
    let wrong = run_cfy(&manager.url, "not the password", &["maintenance-mode", "status"]).await;
    assert_failure(&wrong, "Wrong username or password");

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nowhere = format!("http://127.0.0.1:{port}");
    let unreachable = run_cfy(&nowhere, PASSWORD, &["maintenance-mode", "status"]).await;
    assert_failure(&unreachable, &format!("Cannot reach the manager at {nowhere}"));
    assert_eq!(stderr(&unreachable).lines().count(), 1, "{}", stderr(&unreachable));
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_start_follows_to_the_end_list_get_cancel_and_queue_during_maintenance() {
    let manager = TestManager::spawn().await;
    let started = manager.cfy(&["executions", "start", "install", "-d", "web", "-p", "duration_seconds=0.2"]).await;
    assert_success(&started);
    let lines: Vec<String> = stdout(&started).lines().map(str::to_owned).collect();
    assert_eq!(lines[0], "Executing workflow `install` on deployment `web` [timeout=900 seconds]");
    assert!(lines[1].ends_with("  CFY <web> Starting 'install' workflow execution"), "{lines:?}");
    // The program's own lines, as Cloudify logs, in the order it wrote them.
    let logged: Vec<&str> =
        lines[2..].iter().filter_map(|line| line.split_once("  LOG <web> INFO: ")).map(|(_, text)| text).collect();
    assert_eq!(logged.len(), 8, "{lines:?}");
    assert_eq!(logged[2], "install: step 1/5 create resources");
    assert_eq!(logged[7], "install: done");
    let n = lines.len();
    assert!(lines[n - 3].ends_with("  CFY <web> 'install' workflow execution succeeded"), "{lines:?}");
    assert_eq!(lines[n - 2], "Finished executing workflow install on deployment web");
    let finished = lines[n - 1].split(' ').nth(5).unwrap().to_owned();

    let running = manager.start(LONG).await;
    let id = running.id.to_string();
    let list = stdout(&manager.cfy(&["executions", "list"]).await);
    assert!(list.starts_with("Listing all executions...\n\nExecutions:\n"), "{list}");
    assert!(list.contains(&id) && list.contains("| completed |") && list.contains("|  started  |"), "{list}");
    assert!(list.ends_with("\nShowing 2 of 2 executions\n"), "{list}");
    assert!(list.find(&finished) < list.find(&id), "oldest first, as Cloudify's client sorts: {list}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&manager.cfy(&["executions", "list", "--descending", "--json"]).await)).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    let get = stdout(&manager.cfy(&["executions", "get", &id]).await);
    assert!(get.starts_with(&format!("Retrieving execution {id}\n\nExecution:\n")), "{get}");
    assert!(get.ends_with("Execution Parameters:\n\tduration_seconds:     600.0\n\n"), "{get}");

    let cancel = manager.cfy(&["executions", "cancel", &id]).await;
    assert_success(&cancel);
    assert_eq!(
        stdout(&cancel),
        format!("Cancelling execution {id}\nA cancel request for execution {id} has been sent. To track the execution's status, use:\ncfy executions get {id}\n")
    );

    let waiting = manager.start(LONG).await;
    let timed_out =
        manager.cfy(&["executions", "start", "install", "-d", "web", "--duration", "600", "--timeout", "0"]).await;
    assert_eq!(timed_out.status.code(), Some(1));
    assert_eq!(stderr(&timed_out), "", "the reason is on stdout, as Cloudify's client prints it");
    assert!(stdout(&timed_out).contains("was instructed to wait up to 0 seconds for its completion."));
    let still_running = stdout(&timed_out).split("cfy executions cancel ").nth(1).unwrap()[..36].to_owned();
    for id in [waiting.id.to_string(), still_running] {
        manager.api_post(&format!("/executions/{id}"), json!({"action": "force-cancel"})).await;
    }

    manager.api_post("/maintenance/activate", json!({})).await;
    let refused = manager.cfy(&["executions", "start", "install", "-d", "web"]).await;
    assert_failure(&refused, "Your request was rejected since the manager is currently in maintenance mode");
    let queued = manager.cfy(&["executions", "start", "install", "-d", "web", "--queue"]).await;
    assert_success(&queued);
    assert!(stdout(&queued).ends_with("\nExecution is being queued. It will automatically start when possible.\n"));
    let gated = manager.cfy(&["executions", "list"]).await;
    assert_failure(&gated, "maintenance mode");
    let bad_id = manager.cfy(&["executions", "get", "not-a-uuid"]).await;
    assert_eq!(bad_id.status.code(), Some(2), "clap rejects it before any request");
}

#[tokio::test(flavor = "multi_thread")]
async fn start_refuses_bad_parameters_naming_them() {
    let manager = TestManager::spawn().await;
    let catalog = manager.cfy(&["workflows", "list"]).await;
    assert_success(&catalog);
    assert!(stdout(&catalog).starts_with("Listing workflows...\n\nWorkflows:\n"), "{}", stdout(&catalog));
    assert!(stdout(&catalog).contains("|  install  |   Installs a deployment:"), "{}", stdout(&catalog));
    assert!(stdout(&catalog).ends_with("\nShowing 5 workflows\n"));
    let unknown = manager.cfy(&["executions", "start", "deploy-everything", "-d", "web"]).await;
    assert_failure(&unknown, "Workflow `deploy-everything` is not in the catalog");
    let malformed = manager.cfy(&["executions", "start", "install", "-d", "web", "-p", "novalue"]).await;
    assert_failure(&malformed, "the expected format is: 'key1=value1;key2=value2'");
}

#[tokio::test(flavor = "multi_thread")]
async fn very_verbose_logs_each_request_to_stderr() {
    let manager = TestManager::spawn().await;
    let output = manager.cfy(&["maintenance-mode", "status", "-vvv"]).await;
    assert_success(&output);
    assert!(
        stderr(&output).contains(&format!("GET {}/api/v3.1/maintenance -> 200 OK", manager.url)),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains("Maintenance Mode Status:"));
}

// SPEC §10: drain deadline, read-only mode, windows, history.

const REFERENCE_ACTIVATE: &str =
    "Entering maintenance mode...\nRun 'cfy maintenance-mode status' to check the maintenance mode's status.\n\n";

/// The window the manager has with this id (through the API, not through cfy).
async fn window(manager: &TestManager, id: &str) -> Window {
    let list: serde_json::Value = manager.api_get("/maintenance/windows?_size=1000").await.json().await.unwrap();
    let item = list["items"].as_array().unwrap().iter().find(|item| item["id"] == id).cloned();
    serde_json::from_value(item.unwrap_or_else(|| panic!("no window {id}: {list}"))).unwrap()
}

/// The id in `Maintenance window <id> scheduled: …`.
fn scheduled_id(output: &std::process::Output) -> String {
    let out = stdout(output);
    let id = out.strip_prefix("Maintenance window ").and_then(|rest| rest.split(' ').next());
    id.unwrap_or_else(|| panic!("not a scheduled line: {out:?}")).to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_is_byte_identical_to_the_reference_when_mode_is_full_and_nothing_is_scheduled() {
    let manager = TestManager::spawn().await;
    let off = manager.cfy(&["maintenance-mode", "status"]).await;
    assert_success(&off);
    assert_eq!(stdout(&off), "\nMaintenance Mode Status:\n\tStatus:\tdeactivated\n\n");

    let activate = manager.cfy(&["maintenance-mode", "activate"]).await;
    assert_success(&activate);
    assert_eq!(stdout(&activate), REFERENCE_ACTIVATE);
    let status = manager.wait_for_state(MaintenanceState::Activated).await;
    assert_eq!(status.mode, Some(MaintenanceMode::Full), "the manager says full; cfy prints no row for it");
    assert_eq!((status.drain_deadline_at, &status.upcoming), (None, &None));
    let on = manager.cfy(&["maintenance-mode", "status"]).await;
    assert_success(&on);
    assert_eq!(
        stdout(&on),
        format!(
            "\nMaintenance Mode Status:\n\tStatus:\tactivated\n\tRequested By:\tadmin\n\tActivated At:\t{}\n\
             \tActivation Requested At:\t{}\n\n\
             INFO - Cloudify Manager is currently in maintenance mode. Most requests will be blocked.\n\n",
            status.activated_at.unwrap(),
            status.activation_requested_at.unwrap()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_read_only_is_sent_shown_in_status_and_lets_reads_through() {
    let manager = TestManager::spawn().await;
    let activate = manager.cfy(&["maintenance-mode", "activate", "--read-only"]).await;
    assert_success(&activate);
    assert_eq!(stdout(&activate), REFERENCE_ACTIVATE);
    let status = manager.wait_for_state(MaintenanceState::Activated).await;
    assert_eq!(status.mode, Some(MaintenanceMode::ReadOnly));
    let on = manager.cfy(&["maintenance-mode", "status"]).await;
    assert_success(&on);
    assert_eq!(
        stdout(&on),
        format!(
            "\nMaintenance Mode Status:\n\tStatus:\tactivated\n\tRequested By:\tadmin\n\tActivated At:\t{}\n\
             \tActivation Requested At:\t{}\n\tMode:\tread_only\n\n\
             INFO - Cloudify Manager is currently in maintenance mode. Most requests will be blocked.\n\n",
            status.activated_at.unwrap(),
            status.activation_requested_at.unwrap()
        )
    );
    // Read-only: a read passes the gate, a change does not.
    let list = manager.cfy(&["executions", "list"]).await;
    assert_success(&list);
    assert!(stdout(&list).ends_with("\nShowing 0 of 0 executions\n"), "{}", stdout(&list));
    let start = manager.cfy(&["executions", "start", "install", "-d", "web"]).await;
    assert_failure(&start, "maintenance mode");
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_with_a_drain_deadline_shows_it_in_status() {
    let manager = TestManager::spawn().await;
    manager.start(LONG).await;
    let activate = manager.cfy(&["maintenance-mode", "activate", "--drain-deadline", "600", "--reason", "r"]).await;
    assert_success(&activate);
    assert_eq!(stdout(&activate), REFERENCE_ACTIVATE);
    let status = manager.status().await;
    assert_eq!(status.status, MaintenanceState::Activating);
    let requested = status.activation_requested_at.unwrap();
    let deadline = status.drain_deadline_at.expect("the drain deadline was sent");
    assert_eq!((deadline.as_datetime() - requested.as_datetime()).num_seconds(), 600);
    let shown = manager.cfy(&["maintenance-mode", "status"]).await;
    assert_success(&shown);
    assert_eq!(
        stdout(&shown),
        format!(
            "\nMaintenance Mode Status:\n\tStatus:\tactivating\n\tRequested By:\tadmin\n\
             \tActivation Requested At:\t{requested}\n\tReason:\tr\n\tDrain Deadline:\t{deadline}\n\n\
             Cloudify Manager currently has one running or pending execution. Waiting for it to finish before entering maintenance mode.\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn schedule_reads_offsets_local_and_relative_times_and_windows_lists_them() {
    let manager = TestManager::spawn().await;
    let empty = manager.cfy(&["maintenance-mode", "windows"]).await;
    assert_success(&empty);
    assert_eq!(
        stdout(&empty),
        "\nMaintenance windows:\n\
         +----+-------+-----------+---------+------+--------+------------+\n\
         | id | state | starts_at | ends_at | mode | reason | created_by |\n\
         +----+-------+-----------+---------+------+--------+------------+\n\
         +----+-------+-----------+---------+------+--------+------------+\n\
         \nShowing 0 of 0 maintenance windows\n"
    );

    let offset = manager
        .cfy(&["maintenance-mode", "schedule", "--start", "2030-01-01T10:00:00+02:00", "--end", "2030-01-01T12:00:00Z"])
        .await;
    assert_success(&offset);
    let first = scheduled_id(&offset);
    assert_eq!(
        stdout(&offset),
        format!("Maintenance window {first} scheduled: 2030-01-01T08:00:00.000Z - 2030-01-01T12:00:00.000Z.\n")
    );

    // No offset: local time; Etc/GMT-2 is two hours ahead of UTC all year.
    let local = run_cfy_with(
        &manager.url,
        PASSWORD,
        &["maintenance-mode", "schedule", "--start", "2031-06-01 10:00", "--reason", "kernel", "--read-only"],
        &[("TZ", "Etc/GMT-2")],
    )
    .await;
    assert_success(&local);
    let second = scheduled_id(&local);
    assert_eq!(stdout(&local), format!("Maintenance window {second} scheduled: 2031-06-01T08:00:00.000Z - no end.\n"));
    let stored = window(&manager, &second).await;
    assert_eq!((stored.reason.as_str(), stored.mode, stored.ends_at), ("kernel", MaintenanceMode::ReadOnly, None));

    let before = chrono::Utc::now();
    let relative = manager
        .cfy(&[
            "maintenance-mode",
            "schedule",
            "--start",
            "+1d",
            "--end",
            "+25h",
            "--notice",
            "60",
            "--drain-deadline",
            "300",
            "--json",
        ])
        .await;
    assert_success(&relative);
    let after = chrono::Utc::now();
    let json: Window = serde_json::from_str(&stdout(&relative)).unwrap();
    assert!(stdout(&relative).starts_with("{\n  \"id\": "), "pretty JSON: {}", stdout(&relative));
    let start = json.starts_at.as_datetime();
    assert!(before + chrono::TimeDelta::days(1) - chrono::TimeDelta::seconds(1) <= start, "{start}");
    assert!(start <= after + chrono::TimeDelta::days(1), "{start}");
    assert_eq!(json.ends_at.map(|end| (end.as_datetime() - start).num_seconds()), Some(3600));
    assert_eq!((json.notice_seconds, json.drain_deadline_seconds), (60, Some(300)));
    assert_eq!((json.state, json.mode), (WindowState::Scheduled, MaintenanceMode::Full));

    let windows = manager.cfy(&["maintenance-mode", "windows"]).await;
    assert_success(&windows);
    let out = stdout(&windows);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["", "Maintenance windows:"], "{out}");
    assert!(lines[3].starts_with("|                  id                  |   state   |"), "{out}");
    assert!(out.ends_with("\n\nShowing 3 of 3 maintenance windows\n"), "{out}");
    let row = |id: &str| lines.iter().position(|line| line.contains(id)).unwrap_or_else(|| panic!("{id}: {out}"));
    let relative_id = json.id.to_string();
    assert!(row(&second) < row(&first) && row(&first) < row(&relative_id), "newest start first: {out}");
    assert!(
        lines[row(&second)].contains("| 2031-06-01 08:00:00.000  |") && lines[row(&second)].contains("| read_only |")
    );
    assert!(lines[row(&second)].contains("| kernel |") && lines[row(&second)].ends_with("|   admin    |"), "{out}");
    let listed: Vec<Window> =
        serde_json::from_str(&stdout(&manager.cfy(&["maintenance-mode", "windows", "--json"]).await)).unwrap();
    let order: Vec<String> = listed.iter().map(|window| window.id.to_string()).collect();
    assert_eq!(order, [second, first, relative_id]);
}

#[tokio::test(flavor = "multi_thread")]
async fn schedule_refuses_unreadable_times_naming_the_flag_and_overlaps_with_the_managers_message() {
    let manager = TestManager::spawn().await;
    let bad_start = manager.cfy(&["maintenance-mode", "schedule", "--start", "tomorrow"]).await;
    assert_failure(&bad_start, "Invalid --start: \"tomorrow\" is not a time");
    assert_eq!(stdout(&bad_start), "");
    let bad_end = manager.cfy(&["maintenance-mode", "schedule", "--start", "+1h", "--end", "+2x"]).await;
    assert_failure(&bad_end, "Invalid --end: \"+2x\" is not a time from now");
    let missing = manager.cfy(&["maintenance-mode", "schedule"]).await;
    assert_eq!(missing.status.code(), Some(2), "clap: --start is required");
    let windows: serde_json::Value = manager.api_get("/maintenance/windows").await.json().await.unwrap();
    assert_eq!(windows["items"], json!([]), "nothing was sent");

    let past = manager.cfy(&["maintenance-mode", "schedule", "--start", "2001-01-01T00:00:00Z"]).await;
    assert_failure(&past, "starts_at");

    let first = manager
        .cfy(&["maintenance-mode", "schedule", "--start", "2030-06-01T10:00:00Z", "--end", "2030-06-01T12:00:00Z"])
        .await;
    assert_success(&first);
    let overlap = manager
        .cfy(&["maintenance-mode", "schedule", "--start", "2030-06-01T11:00:00Z", "--end", "2030-06-01T13:00:00Z"])
        .await;
    // The same request through the API: its message is what cfy must have printed.
    let answer = manager
        .api_post(
            "/maintenance/windows",
            json!({"starts_at": "2030-06-01T11:00:00Z", "ends_at": "2030-06-01T13:00:00Z", "reason": ""}),
        )
        .await;
    assert_eq!(answer.status(), 409);
    let refusal: shared::ApiError = answer.json().await.unwrap();
    assert_eq!(refusal.error_code, shared::ErrorCode::WindowOverlaps);
    assert_failure(&overlap, "");
    assert_eq!(stderr(&overlap), format!("{}\n", refusal.message), "the manager's own message, alone");
    assert_eq!(stdout(&overlap), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_window_cancels_a_scheduled_one_and_refuses_twice_and_unknown_ids() {
    let manager = TestManager::spawn().await;
    let scheduled = manager.cfy(&["maintenance-mode", "schedule", "--start", "+2h"]).await;
    assert_success(&scheduled);
    let id = scheduled_id(&scheduled);
    let cancel = manager.cfy(&["maintenance-mode", "cancel-window", &id]).await;
    assert_success(&cancel);
    assert_eq!(stdout(&cancel), format!("Maintenance window {id} cancelled.\n"));
    assert_eq!(window(&manager, &id).await.state, WindowState::Cancelled);

    let again = manager.cfy(&["maintenance-mode", "cancel-window", &id, "--json"]).await;
    let answer = manager.api_delete(&format!("/maintenance/windows/{id}")).await;
    assert_eq!(answer.status(), 409);
    let refusal: shared::ApiError = answer.json().await.unwrap();
    assert_failure(&again, "");
    assert_eq!(stderr(&again), format!("{}\n", refusal.message));
    assert_eq!(stdout(&again), "");

    let unknown = uuid::Uuid::new_v4().to_string();
    let missing = manager.cfy(&["maintenance-mode", "cancel-window", &unknown]).await;
    let answer = manager.api_delete(&format!("/maintenance/windows/{unknown}")).await;
    assert_eq!(answer.status(), 404);
    let refusal: shared::ApiError = answer.json().await.unwrap();
    assert_failure(&missing, "");
    assert_eq!(stderr(&missing), format!("{}\n", refusal.message));
    let not_an_id = manager.cfy(&["maintenance-mode", "cancel-window", "nope"]).await;
    assert_eq!(not_an_id.status.code(), Some(2), "clap rejects it before any request");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upcoming_window_shows_in_status_and_cancel_window_ends_it_once_active() {
    let manager = TestManager::spawn().await;
    let scheduled =
        manager.cfy(&["maintenance-mode", "schedule", "--start", "+5s", "--end", "+1h", "--reason", "patch"]).await;
    assert_success(&scheduled);
    let id = scheduled_id(&scheduled);
    let window = window(&manager, &id).await;
    let (start, end) = (window.starts_at, window.ends_at.unwrap());

    // In its notice period (the default hour): deactivated, with the window announced.
    let upcoming = manager.cfy(&["maintenance-mode", "status"]).await;
    assert_success(&upcoming);
    assert_eq!(
        stdout(&upcoming),
        format!("\nMaintenance Mode Status:\n\tStatus:\tdeactivated\n\tUpcoming Window:\t{start} - {end} (patch)\n\n")
    );

    let status = manager.wait_for_state(MaintenanceState::Activated).await;
    assert_eq!(status.upcoming.as_ref().map(|window| window.state), Some(WindowState::Active));
    let active = manager.cfy(&["maintenance-mode", "status"]).await;
    assert!(stdout(&active).contains(&format!("\tReason:\tpatch\n\tUpcoming Window:\t{start} - {end} (patch)\n")));

    let end_it = manager.cfy(&["maintenance-mode", "cancel-window", &id]).await;
    assert_success(&end_it);
    assert_eq!(stdout(&end_it), format!("Maintenance window {id} ended; maintenance mode is off.\n"));
    assert_eq!(manager.status().await.status, MaintenanceState::Deactivated);
}

#[tokio::test(flavor = "multi_thread")]
async fn history_lists_transitions_and_drain_steps_newest_first() {
    let manager = TestManager::spawn().await;
    let empty = manager.cfy(&["maintenance-mode", "history"]).await;
    assert_success(&empty);
    assert!(stdout(&empty).starts_with("\nMaintenance mode history:\n"), "{}", stdout(&empty));
    assert!(stdout(&empty).ends_with("| at | event | from | to | requested_by | reason | detail |\n+----+-------+------+----+--------------+--------+--------+\n+----+-------+------+----+--------------+--------+--------+\n\nShowing 0 of 0 history events\n"), "{}", stdout(&empty));

    // A drain deadline of a second cancels the long execution, then the manager is activated.
    manager.start(LONG).await;
    assert_success(&manager.cfy(&["maintenance-mode", "activate", "--drain-deadline", "1", "--reason", "db"]).await);
    manager.wait_for_state(MaintenanceState::Activated).await;
    assert_success(&manager.cfy(&["maintenance-mode", "deactivate"]).await);

    let history = manager.cfy(&["maintenance-mode", "history"]).await;
    assert_success(&history);
    let out = stdout(&history);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["", "Maintenance mode history:"], "{out}");
    assert!(lines[3].starts_with("|            at            |") && lines[3].contains(" event "), "{out}");
    // The event is the second column: `| at | event | from | …`.
    let row_of = |event: &str| lines.iter().position(|line| line.split('|').nth(2).map(str::trim) == Some(event));
    let rows: Vec<Option<usize>> = ["deactivated", "activated", "drain_cancel", "activate"].map(row_of).into();
    assert!(rows.iter().all(Option::is_some), "{rows:?}\n{out}");
    assert!(rows.windows(2).all(|pair| pair[0] < pair[1]), "newest first: {out}");
    let json: Vec<MaintenanceTransition> =
        serde_json::from_str(&stdout(&manager.cfy(&["maintenance-mode", "history", "--json"]).await)).unwrap();
    let names: Vec<&str> = json.iter().map(|row| row.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"deactivated"), "newest first: {names:?}");
    assert_eq!(names.last(), Some(&"activate"), "{names:?}");
    assert!(names.contains(&"drain_cancel"), "{names:?}");
    assert!(out.ends_with(&format!("\n\nShowing {0} of {0} history events\n", json.len())), "{out}");
    assert_eq!(json.last().map(|row| (row.reason.as_str(), row.requested_by.as_str())), Some(("db", "admin")));

    let one = manager.cfy(&["maintenance-mode", "history", "--size", "1"]).await;
    assert_success(&one);
    assert!(stdout(&one).ends_with(&format!("\n\nShowing 1 of {} history events\n", json.len())), "{}", stdout(&one));
    let first_row = stdout(&one).lines().nth(5).map(|line| line.split('|').nth(2).map(str::trim).map(str::to_owned));
    assert_eq!(first_row.flatten().as_deref(), Some("deactivated"), "{}", stdout(&one));
    let too_many = manager.cfy(&["maintenance-mode", "history", "--size", "1001"]).await;
    assert_eq!(too_many.status.code(), Some(2));
}

// SPEC §11: webhooks.

/// What a receiver got: each body, in the order it came.
type Received = std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>;

/// A webhook receiver on 127.0.0.1:0 that answers 204: its URL and what it got.
async fn receiver() -> (String, Received) {
    use axum::extract::State;
    let received = Received::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(|State(received): State<Received>, body: axum::body::Bytes| async move {
                received.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or_default());
                axum::http::StatusCode::NO_CONTENT
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// `GET /maintenance/webhooks` once `done` holds of it.
async fn webhooks_when(manager: &TestManager, done: impl Fn(&Webhooks) -> bool) -> Webhooks {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer: Webhooks = manager.api_get("/maintenance/webhooks").await.json().await.unwrap();
        if done(&answer) {
            return answer;
        }
        assert!(tokio::time::Instant::now() < deadline, "never came: {answer:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A table's row as its cells, trimmed.
fn cells(line: &str) -> Vec<&str> {
    let inner = line.strip_prefix('|').and_then(|line| line.strip_suffix('|'));
    inner.unwrap_or_else(|| panic!("not a table row: {line:?}")).split('|').map(str::trim).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_shows_each_urls_counts_next_attempt_and_recent_deliveries() {
    let (hook, received) = receiver().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = format!("http://127.0.0.1:{port}/nobody");
    let manager = TestManager::spawn_with(|config| {
        config.webhooks = vec![hook.clone(), dead.clone()];
        config.webhook_secret = Some(manager::webhooks::Secret::new("cli test secret"));
    })
    .await;
    let empty_table = "\nRecent deliveries:\n\
        +----+-------+---------+----+----------+------+---------+\n\
        | id | event | outcome | at | attempts | http | latency |\n\
        +----+-------+---------+----+----------+------+---------+\n\
        +----+-------+---------+----+----------+------+---------+\n\n\
        Showing 0 of 0 recent deliveries\n";
    let before = manager.cfy(&["maintenance-mode", "webhooks"]).await;
    assert_success(&before);
    assert_eq!(
        stdout(&before),
        format!(
            "\nWebhook {hook}:\n\tBacklog:\t0 events\n\tDelivered:\t0 events\n\tFailed:\t0 events\n{empty_table}\
             \nWebhook {dead}:\n\tBacklog:\t0 events\n\tDelivered:\t0 events\n\tFailed:\t0 events\n{empty_table}"
        )
    );

    // Nothing runs: `activate` then `activated`, both delivered to the receiver, both failing at the dead URL.
    manager.api_post("/maintenance/activate", json!({})).await;
    manager.wait_for_state(MaintenanceState::Activated).await;
    let answer = webhooks_when(&manager, |answer| {
        answer.webhooks[0].delivered == 2 && answer.webhooks[1].attempts >= 1 && answer.webhooks[1].backlog == 2
    })
    .await;
    let events: Vec<serde_json::Value> = received.lock().unwrap().iter().map(|body| body["event"].clone()).collect();
    assert_eq!(events, ["activate", "activated"]);
    let (good, bad) = (&answer.webhooks[0], &answer.webhooks[1]);

    let after = manager.cfy(&["maintenance-mode", "webhooks"]).await;
    assert_success(&after);
    let out = stdout(&after);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..7],
        [
            "",
            &format!("Webhook {hook}:"),
            "\tBacklog:\t0 events",
            "\tDelivered:\t2 events",
            "\tFailed:\t0 events",
            "",
            "Recent deliveries:"
        ],
        "{out}"
    );
    let header = lines[8];
    assert!(
        header.starts_with("| ")
            && header.ends_with(" id |   event   |  outcome  |            at            | attempts | http | latency |"),
        "{out}"
    );
    let rule = lines[7];
    assert_eq!((lines[9], lines[12]), (rule, rule), "{out}");
    assert!(rule.starts_with("+-") && rule.len() == header.len(), "{out}");
    for (line, delivery) in lines[10..12].iter().zip(&good.recent) {
        assert_eq!(line.len(), header.len(), "{out}");
        let row = cells(line);
        let at = delivery.at.to_string().replace(['T', 'Z'], " ");
        let id = delivery.event_id.to_string();
        assert_eq!(row[..6], [id.as_str(), delivery.event.as_str(), "delivered", at.trim(), "1", "204"], "{out}");
        assert_eq!(row[6], format!("{} ms", delivery.latency_ms), "{out}");
    }
    assert_eq!(cells(lines[10])[1], "activated", "newest first: {out}");
    assert_eq!(lines[13..15], ["", "Showing 2 of 2 recent deliveries"], "{out}");
    // The dead URL: its backlog from the event it stopped after, and when it tries next.
    assert_eq!(
        lines[15..20],
        [
            "",
            &format!("Webhook {dead}:"),
            &format!("\tBacklog:\t2 events (after event {})", bad.delivered_through),
            "\tDelivered:\t0 events",
            "\tFailed:\t0 events",
        ],
        "{out}"
    );
    let next = lines[20].strip_prefix("\tNext Attempt:\t").unwrap_or_else(|| panic!("{out}"));
    assert!(next.contains(" (attempt ") && next.contains("; last error: ") && next.ends_with(')'), "{out}");
    assert_eq!(lines[21..], empty_table.lines().collect::<Vec<_>>(), "{out}");

    // --recent N: N rows at most; 0: no table.
    let one = stdout(&manager.cfy(&["maintenance-mode", "webhooks", "--recent", "1"]).await);
    let one: Vec<&str> = one.lines().collect();
    assert_eq!((cells(one[10])[1], one[11], one[13]), ("activated", rule, "Showing 1 of 2 recent deliveries"));
    let none = manager.cfy(&["maintenance-mode", "webhooks", "--recent", "0"]).await;
    assert_success(&none);
    let none = stdout(&none);
    assert!(
        none.starts_with(&format!(
            "\nWebhook {hook}:\n\tBacklog:\t0 events\n\tDelivered:\t2 events\n\tFailed:\t0 events\n\nWebhook {dead}:\n"
        )),
        "{none}"
    );
    assert!(none.ends_with(")\n") && !none.contains("Recent deliveries"), "{none}");
    // -v: each delivery's error too (none here).
    let verbose = stdout(&manager.cfy(&["maintenance-mode", "webhooks", "-v"]).await);
    assert!(verbose.lines().nth(8).unwrap().ends_with("| latency | error |"), "{verbose}");
    let json: Webhooks =
        serde_json::from_str(&stdout(&manager.cfy(&["maintenance-mode", "webhooks", "--json"]).await)).unwrap();
    assert_eq!((json.webhooks[0].url.as_str(), &json.webhooks[0].recent), (hook.as_str(), &good.recent));
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_says_when_none_is_configured_and_refuses_non_admins() {
    let manager = TestManager::spawn().await;
    let none = manager.cfy(&["maintenance-mode", "webhooks"]).await;
    assert_success(&none);
    assert_eq!(stdout(&none), "No webhooks are configured.\n");

    manager.add_user("viewer", shared::Role::User, "viewer password");
    let refused = run_cfy(&manager.url, "viewer password", &["maintenance-mode", "webhooks", "-u", "viewer"]).await;
    assert_failure(&refused, "User `viewer` is not an admin; this needs the admin role");
    assert_eq!(stdout(&refused), "");
    assert_eq!(stderr(&refused).lines().count(), 1, "{}", stderr(&refused));
}

// SPEC §13: over HTTPS.

#[tokio::test(flavor = "multi_thread")]
async fn over_https_with_ssl_and_rest_certificate_cfy_prints_the_reference_lines() {
    let ca = tls::TestCa::new("cfy test CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca_file) =
        (dir.path().join("manager.crt"), dir.path().join("manager.key"), dir.path().join("ca.pem"));
    ca.issue(1).write(&cert, &key);
    ca.write(&ca_file);
    let manager = TestManager::spawn_with(|config| {
        config.tls_cert = Some(cert.clone());
        config.tls_key = Some(key.clone());
    })
    .await;
    assert!(manager.url.starts_with("https://"), "{}", manager.url);
    let ca_path = ca_file.to_str().unwrap();
    // --ssl takes the http:// URL as https:// (Cloudify's flag switches the protocol only).
    let plain_url = manager.url.replacen("https://", "http://", 1);
    let over_tls = |args: &'static [&'static str]| {
        let mut all = vec!["--ssl", "--rest-certificate", ca_path];
        all.extend_from_slice(args);
        let url = plain_url.clone();
        async move { run_cfy(&url, PASSWORD, &all).await }
    };
    let off = over_tls(&["maintenance-mode", "status"]).await;
    assert_success(&off);
    assert_eq!(stdout(&off), "\nMaintenance Mode Status:\n\tStatus:\tdeactivated\n\n");
    let activated = over_tls(&["maintenance-mode", "activate"]).await;
    assert_success(&activated);
    assert_eq!(stdout(&activated), REFERENCE_ACTIVATE);
    let deactivated = over_tls(&["maintenance-mode", "deactivate"]).await;
    assert_success(&deactivated);
    assert_eq!(stdout(&deactivated), "Turning off maintenance mode...\nMaintenance mode is off.\n");
    // The same from the environment.
    let env = [("CFY_SSL", "true"), ("CFY_REST_CERTIFICATE", ca_path)];
    let by_env = run_cfy_with(&plain_url, PASSWORD, &["maintenance-mode", "status"], &env).await;
    assert_success(&by_env);
    assert_eq!(stdout(&by_env), "\nMaintenance Mode Status:\n\tStatus:\tdeactivated\n\n");

    // Without the CA (the system's roots do not know it), or trusting another: one line.
    let status = ["maintenance-mode", "status"];
    let untrusted = run_cfy(&manager.url, PASSWORD, &status).await;
    assert_failure(&untrusted, &format!("Cannot reach the manager at {}: invalid peer certificate", manager.url));
    let other = dir.path().join("other-ca.pem");
    tls::TestCa::new("another CA").write(&other);
    let other_ca =
        run_cfy(&manager.url, PASSWORD, &["--rest-certificate", other.to_str().unwrap(), "maintenance-mode", "status"])
            .await;
    assert_failure(&other_ca, "invalid peer certificate");
    // A certificate file that cannot be read, or holds none: one line naming it.
    let missing = dir.path().join("missing.pem");
    let unreadable = run_cfy(
        &manager.url,
        PASSWORD,
        &["--rest-certificate", missing.to_str().unwrap(), "maintenance-mode", "status"],
    )
    .await;
    assert_failure(
        &unreadable,
        &format!("Cannot read --rest-certificate {}: No such file or directory", missing.display()),
    );
    let not_a_certificate =
        run_cfy(&manager.url, PASSWORD, &["--rest-certificate", key.to_str().unwrap(), "maintenance-mode", "status"])
            .await;
    assert_failure(&not_a_certificate, &format!("--rest-certificate {}: no certificate in it", key.display()));
    for failed in [&untrusted, &other_ca, &unreadable, &not_a_certificate] {
        assert_eq!(stderr(failed).lines().count(), 1, "{}", stderr(failed));
    }
}
